"""The OpenAI-compatible routes: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions."""

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from briefing_core.errors import NotFoundError
from service.shell.answers import answer_pieces, ask_qa, to_json
from service.shell.deps import QADep, StateDep
from service.shell.http_errors import Unprocessable
from service.shell.models import BriefingId, Filters

MODEL_ID = "briefing-qa"

router = APIRouter(tags=["openai"])


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = [
            p.get("text", "") for p in self.content or [] if isinstance(p, dict) and p.get("type") == "text"
        ]
        return "\n".join(str(p) for p in parts)


class ChatRequest(BaseModel):
    """OpenAI chat completions. Sampling options are accepted and ignored; any model name answers."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    answerer: Literal["extractive", "llm"] | None = None
    filters: Filters | None = None
    briefing: BriefingId | None = None
    """Ask this briefing only (the response's top-level `briefing` stays the whole result)."""


def _model_card() -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "briefing-qa"}


def _rough_tokens(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


@router.get("/models", summary="The one model this service offers")
async def models() -> dict[str, Any]:
    return {"object": "list", "data": [_model_card()]}


@router.get("/models/{model_id}", include_in_schema=False)
async def model(model_id: str) -> dict[str, Any]:
    if model_id != MODEL_ID:
        raise NotFoundError(f"no model {model_id!r}; this service offers {MODEL_ID!r}")
    return _model_card()


@router.post("/chat/completions", summary="OpenAI-compatible chat completions")
async def chat_completions(body: ChatRequest, qa: QADep, state: StateDep) -> Any:
    """The last message is the question (it must be the user's); earlier user and assistant messages
    are the history. The reply's content carries `[n]` markers; the citations ride in an extra
    top-level `citations` field (and the whole result in `briefing`); streamed, they come in the
    final chunk before `data: [DONE]`."""
    max_chars = state.settings.max_question_chars
    last = body.messages[-1]
    if last.role != "user":
        raise Unprocessable("the last message must be the user's question")
    question = last.text().strip()
    if not question:
        raise Unprocessable("the question is empty")
    if len(question) > max_chars:
        raise Unprocessable(f"the question is {len(question)} characters; the limit is {max_chars}")
    history = [
        {"role": m.role, "content": m.text()}
        for m in body.messages[:-1] if m.role in ("user", "assistant") and m.text().strip()
    ]
    result = await ask_qa(state, qa, question, history, body.filters, body.answerer, body.briefing)
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    usage = {
        "prompt_tokens": sum(_rough_tokens(m.text()) for m in body.messages),
        "completion_tokens": _rough_tokens(result["answer"]),
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if not body.stream:
        return JSONResponse({
            "id": cid, "object": "chat.completion", "created": created, "model": MODEL_ID,
            "choices": [{
                "index": 0, "message": {"role": "assistant", "content": result["answer"]},
                "finish_reason": "stop", "logprobs": None,
            }],
            "usage": usage,
            "citations": result["citations"],
            "briefing": result,
        })
    include_usage = bool((body.stream_options or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
        data = {
            "id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        return f"data: {to_json(data)}\n\n"

    async def lines() -> AsyncIterator[str]:
        yield chunk({"role": "assistant", "content": ""}, None)
        for piece in answer_pieces(result["answer"]):
            yield chunk({"content": piece}, None)
            await asyncio.sleep(0)
        yield chunk({}, "stop", citations=result["citations"], briefing=result)
        if include_usage:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created,
                    "model": MODEL_ID, "choices": [], "usage": usage}
            yield f"data: {to_json(data)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(
        lines(), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
