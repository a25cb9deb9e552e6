"""The answer as the routes hand it out: asked in a worker thread and returned as the result
object's dict, as JSON text, and in small pieces for the two streams (SSE and chat completions)."""

import json
import re
from typing import Any

from service.shell.models import Filters
from service.shell.state import ServiceState, run_blocking


def to_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


_TOKEN = re.compile(r"\S+\s*|\s+")


def answer_pieces(text: str, words: int = 4, max_chars: int = 32) -> list[str]:
    """The answer in small pieces (word groups; runs of unspaced script cut by length).
    The pieces join back to exactly `text`."""
    pieces: list[str] = []
    current, count = "", 0
    for token in _TOKEN.findall(text):
        while len(token) > max_chars:
            if current:
                pieces.append(current)
                current, count = "", 0
            pieces.append(token[:max_chars])
            token = token[max_chars:]
        current += token
        count += 1
        if count >= words or len(current) >= max_chars:
            pieces.append(current)
            current, count = "", 0
    if current:
        pieces.append(current)
    return pieces


async def ask_qa(state: ServiceState, qa: Any, question: str, history: list[dict[str, str]],
                 filters: Filters | None, answerer: str | None, briefing: str | None = None) -> dict[str, Any]:
    result = await run_blocking(
        state, qa.ask, question, history=history,
        filters=filters.to_dict() if filters else None, answerer=answerer, briefing=briefing,
    )
    return result.to_dict()
