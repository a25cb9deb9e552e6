"""Request-body parts more than one route accepts: a turn of the conversation and retrieval filters.
(Each route's own body lives beside it in routes/.)"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from briefing_core.store import ID_PATTERN

BriefingId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A briefing's id as its manifest gives it (see GET /v1/briefings)."""


def question_type(max_chars: int) -> Any:
    """A question as /v1/ask and the MCP `ask` tool take it: stripped, not empty, at most `max_chars`
    (BRIEFING_MAX_QUESTION_CHARS) characters."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_chars)]


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


_Values = str | list[str]


class Filters(BaseModel):
    """Restrict retrieval; each key takes one value or a list."""

    model_config = ConfigDict(extra="forbid")
    doc_id: _Values | None = None
    source_id: _Values | None = None
    language: _Values | None = None
    kind: _Values | None = None
    briefing: _Values | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v}
