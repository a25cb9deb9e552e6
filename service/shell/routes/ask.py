"""POST /v1/ask and its server-sent-events stream, POST /v1/ask/stream."""

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from service.shell.answers import answer_pieces, ask_qa, to_json
from service.shell.deps import QADep, StateDep
from service.shell.models import BriefingId, Filters, Turn, question_type


def ask_request_model(max_chars: int) -> type[BaseModel]:
    """The body of both routes; the question's bound is a setting (BRIEFING_MAX_QUESTION_CHARS), so
    the model, and the OpenAPI schema with it, is made for the app's settings."""
    Question = question_type(max_chars)

    class AskRequest(BaseModel):
        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [{"question": "What did Chinese TV news praise?"}]},
        )
        question: Question
        history: list[Turn] = Field(default_factory=list, max_length=100)
        filters: Filters | None = None
        answerer: Literal["extractive", "llm"] | None = None
        briefing: BriefingId | None = Field(
            None, description="Ask this briefing only (GET /v1/briefings): its article, author and sources. "
                              "Absent: every briefing the store holds.")

    return AskRequest


def make_router(max_question_chars: int) -> APIRouter:
    AskRequest = ask_request_model(max_question_chars)
    router = APIRouter(tags=["answering"])

    @router.post("/ask", summary="Answer a question, with citations")
    async def ask(body: AskRequest, qa: QADep, state: StateDep) -> JSONResponse:  # type: ignore[valid-type]
        """The result object: answer with `[n]` markers, citations (`n`, `doc_id`, `start`, `end`,
        `quote`, `attributed_to` ...), the retrieved passages, and whether the answer is a refusal."""
        result = await ask_qa(state, qa, body.question, [t.model_dump() for t in body.history],
                              body.filters, body.answerer, body.briefing)
        return JSONResponse(result)

    @router.post(
        "/ask/stream", summary="Answer a question as server-sent events", response_class=EventSourceResponse,
    )
    async def ask_stream(  # type: ignore[valid-type]
        body: AskRequest, qa: QADep, state: StateDep, request: Request
    ) -> EventSourceResponse:
        """Events: `meta` (the retrieved passages), `delta` (`{"text"}` pieces of the answer), `citations`
        (the whole result, numbered as `/v1/ask` numbers it), then `done`. The result is computed
        before the first event, so errors arrive as ordinary JSON responses."""
        result = await ask_qa(state, qa, body.question, [t.model_dump() for t in body.history],
                              body.filters, body.answerer, body.briefing)
        rid = getattr(request.state, "request_id", "")

        async def events() -> AsyncIterator[dict[str, str]]:
            meta = {k: result.get(k) for k in ("question", "standalone_query", "language", "retrieved")}
            yield {"event": "meta", "data": to_json(meta)}
            for piece in answer_pieces(result["answer"]):
                yield {"event": "delta", "data": to_json({"text": piece})}
                await asyncio.sleep(0)
            yield {"event": "citations", "data": to_json(result)}
            yield {"event": "done", "data": to_json({"request_id": rid})}

        return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})

    return router
