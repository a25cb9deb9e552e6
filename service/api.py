"""The HTTP service: question answering with citations, an OpenAI-compatible endpoint, the catalog,
admin ingest/delete, health checks and the analyst chat page.

    uvicorn --factory service.api:create_app      (or `briefing serve`)

Nothing heavy happens at import or in `create_app`: the answering chain, the embedder and the store
load in a background thread started by the lifespan, so /healthz answers at once and /readyz says
503 until the models are loaded and the store answers.

Auth (both keys optional, compared in constant time):

    BRIEFING_API_KEY     every /v1 route needs `Authorization: Bearer KEY` or `X-API-Key: KEY`
                         (the admin key is accepted there too)
    BRIEFING_ADMIN_KEY   POST /v1/ingest and DELETE /v1/documents/{id} need this key. When it is not
                         set and the service listens on a loopback address (BRIEFING_HOST), those
                         routes need the API key if that is set, and are open otherwise (a single-user
                         local install); listening on any other address, they answer 403.

Errors are `{"error": message, "request_id": id}` (500s carry no message); every response has an
X-Request-ID header.
"""

import asyncio
import functools
import json
import logging
import re
import shutil
import tempfile
import threading
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sse_starlette import EventSourceResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from briefing_core.errors import (
    BriefingError,
    EmbedderMismatch,
    NotFoundError,
    SystemFailure,
    UserError,
)
from service.http_limits import (
    BodySizeLimitMiddleware,
    HeaderSizeLimitMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
    is_loopback_host,
    key_matches,
    presented_key,
)
from briefing_core.settings import Settings, get_settings

log = logging.getLogger("service.api")

WEB_DIR = Path(__file__).resolve().parent / "web"
MODEL_ID = "briefing-qa"
INGEST_PATH = "/v1/ingest"
MAX_UPLOAD_FILES = 50
_FILE_FIELDS = ("files", "file", "files[]")


# ---------------------------------------------------------------------------------------
# Errors the HTTP layer adds to briefing_core.errors
# ---------------------------------------------------------------------------------------


class Unauthorized(UserError):
    """Missing or wrong key (401)."""


class Forbidden(UserError):
    """A route this service's configuration does not allow anyone to use (403)."""


class Unprocessable(UserError):
    """A well-formed request whose content cannot be used (422)."""


class ServiceLoading(SystemFailure):
    """The models or the store are not ready yet (503)."""


def status_for(exc: BriefingError) -> int:
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Unprocessable):
        return 422
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, UserError):
        return 400
    return 503  # SystemFailure: store locked or unreachable, embedder mismatch, LLM down, loading


# ---------------------------------------------------------------------------------------
# Service state: the QA object, loaded in the background
# ---------------------------------------------------------------------------------------


class ServiceState:
    """What the routes share: settings, the (lazily built) QA object, readiness, the writer lock."""

    def __init__(
        self, settings: Settings, qa: Any = None, qa_factory: Callable[[Settings], Any] | None = None
    ) -> None:
        self.settings = settings
        self.qa = qa
        self._qa_factory = qa_factory
        self.ready = threading.Event()
        self.error: str | None = None
        self.failed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # One writer at a time inside this process; ingest also takes the store's file lock.
        self.write_lock = threading.Lock()
        self.limiter: anyio.CapacityLimiter | None = None

    # -- loading ----------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        if self.ready.is_set() or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._load_loop, name="briefing-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _load_loop(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                if self.qa is None:
                    factory = self._qa_factory or _default_qa_factory
                    self.qa = factory(self.settings)
                self.qa.load()
                self.qa.store.ping()
                self._warm_llm()
            except EmbedderMismatch as exc:  # needs the operator: retrying cannot help
                self.error, self.failed = self.scrub(str(exc)), True
                log.error("cannot start: %s", self.error)
                return
            except SystemFailure as exc:  # store down or locked: try again with back-off
                self.error = self.scrub(str(exc))
                log.warning("not ready yet, retrying in %.0f s: %s", delay, self.error)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            except BriefingError as exc:
                self.error, self.failed = self.scrub(str(exc)), True
                log.error("cannot start: %s", self.error)
                return
            except Exception:
                log.exception("loading the answering chain failed")
                self.error, self.failed = "loading failed; see the server log", True
                return
            self.error = None
            self.ready.set()
            log.info("ready")
            return

    def _warm_llm(self) -> None:
        """With the LLM answerer configured, load a local model now rather than on the first question.
        A failure is only logged: the chain falls back to the extractive answer."""
        if self.settings.answerer != "llm" or not hasattr(self.qa, "warm_llm"):
            return
        try:
            self.qa.warm_llm()
        except Exception as exc:
            log.warning("the LLM could not be loaded (answers fall back to extractive): %s",
                        self.scrub(str(exc)))

    def require_qa(self) -> Any:
        if self.ready.is_set():
            return self.qa
        if self.failed:
            raise ServiceLoading(f"the service could not start: {self.error}")
        raise ServiceLoading("the service is still loading its models; retry in a few seconds")

    # -- secrets never leave in a message ---------------------------------------------------
    def scrub(self, text: str) -> str:
        s = self.settings
        for secret in (s.api_key, s.admin_key, s.llm_api_key):
            value = secret.get_secret_value() if secret is not None else ""
            if len(value) >= 4 and value != "none":
                text = text.replace(value, "***")
        return text


def _default_qa_factory(settings: Settings) -> Any:
    from service.engine.chain import BriefingQA

    return BriefingQA(settings)


# ---------------------------------------------------------------------------------------
# Dependencies
# ---------------------------------------------------------------------------------------


def _state(request: Request) -> ServiceState:
    return request.app.state.briefing


StateDep = Annotated[ServiceState, Depends(_state)]


def _ready_qa(state: StateDep) -> Any:
    return state.require_qa()


QADep = Annotated[Any, Depends(_ready_qa)]

# Declared for the OpenAPI page's "Authorize" button; the check itself reads the headers directly.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
_x_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
HeaderKeyDep = Annotated[str | None, Depends(_x_api_key)]

_KEY_HINT = "send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"


def require_client(request: Request, state: StateDep, _b: BearerDep, _h: HeaderKeyDep) -> None:
    """Every /v1 route: the API key when one is configured (the admin key also opens these routes)."""
    s = state.settings
    if s.api_key is None:
        return
    key = presented_key(request.scope)
    if key is None:
        raise Unauthorized(f"an API key is required: {_KEY_HINT}")
    if not (key_matches(key, s.api_key) or key_matches(key, s.admin_key)):
        raise Unauthorized("the API key is not valid")


SHARED_WITHOUT_ADMIN_KEY = (
    "ingest and delete are turned off: the service listens on an address other machines can reach "
    "and no admin key is set; the operator must set BRIEFING_ADMIN_KEY to use them"
)


def writes_refused(settings: Settings) -> bool:
    """Shared without an admin key: the writing routes answer 403 rather than fall back to the API
    key (which every reader holds) or stay open."""
    return settings.admin_key is None and not is_loopback_host(settings.host)


def require_admin(request: Request, state: StateDep) -> None:
    """Ingest and delete: the admin key; without one configured, the API key; without either, open —
    on a loopback address. Listening elsewhere without an admin key: refused."""
    s = state.settings
    if writes_refused(s):
        raise Forbidden(SHARED_WITHOUT_ADMIN_KEY)
    secret = s.admin_key if s.admin_key is not None else s.api_key
    if secret is None:
        return
    key = presented_key(request.scope)
    if key is None:
        raise Unauthorized(f"this route needs the admin key: {_KEY_HINT}")
    if not key_matches(key, secret):
        raise Unauthorized("the admin key is not valid")


ClientAuth = Depends(require_client)
AdminAuth = Depends(require_admin)


# ---------------------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------------------


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

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v}


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


class IngestJSON(BaseModel):
    model_config = ConfigDict(extra="forbid")
    manifest: str = Field(min_length=1, max_length=4096, description="A manifest path on the server (.yaml).")


def _ask_request_model(max_chars: int) -> type[BaseModel]:
    Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_chars)]

    class AskRequest(BaseModel):
        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [{"question": "What did Chinese TV news praise?"}]},
        )
        question: Question
        history: list[Turn] = Field(default_factory=list, max_length=100)
        filters: Filters | None = None
        answerer: Literal["extractive", "llm"] | None = None

    return AskRequest


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def _json(data: Any) -> str:
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


def _rough_tokens(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str | None, index: int) -> str:
    """A file name made from the client's, never a path: last component only, ASCII letters, digits,
    '.', '_' and '-', no leading dot."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKC", base)
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("-", stem).strip(".-_")[:80] or f"upload-{index}"
    suffix = _UNSAFE.sub("", suffix).lower()[:10]
    return f"{stem}.{suffix}" if suffix else stem


async def _run(state: ServiceState, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run blocking work in a worker thread, a few at a time (the machine has few cores)."""
    if state.limiter is None:
        state.limiter = anyio.CapacityLimiter(4)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=state.limiter)


async def _ask(state: ServiceState, qa: Any, question: str, history: list[dict[str, str]],
               filters: Filters | None, answerer: str | None) -> dict[str, Any]:
    result = await _run(
        state, qa.ask, question, history=history,
        filters=filters.to_dict() if filters else None, answerer=answerer,
    )
    return result.to_dict()


def _error_body(request: Request, message: str) -> dict[str, Any]:
    return {"error": message, "request_id": getattr(request.state, "request_id", "")}


# ---------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------


def _v1_router(settings: Settings) -> APIRouter:
    AskRequest = _ask_request_model(settings.max_question_chars)
    router = APIRouter(prefix="/v1", dependencies=[ClientAuth])

    # -- answering -------------------------------------------------------------------------
    @router.post("/ask", tags=["answering"], summary="Answer a question, with citations")
    async def ask(body: AskRequest, qa: QADep, state: StateDep) -> JSONResponse:  # type: ignore[valid-type]
        """The result object: answer with `[n]` markers, citations (`n`, `doc_id`, `start`, `end`,
        `quote`, `attributed_to` ...), the retrieved passages, and whether the answer is a refusal."""
        result = await _ask(state, qa, body.question, [t.model_dump() for t in body.history],
                            body.filters, body.answerer)
        return JSONResponse(result)

    @router.post(
        "/ask/stream", tags=["answering"], summary="Answer a question as server-sent events",
        response_class=EventSourceResponse,
    )
    async def ask_stream(  # type: ignore[valid-type]
        body: AskRequest, qa: QADep, state: StateDep, request: Request
    ) -> EventSourceResponse:
        """Events: `meta` (the retrieved passages), `delta` (`{"text"}` pieces of the answer), `citations`
        (the whole result, numbered as `/v1/ask` numbers it), then `done`. The result is computed
        before the first event, so errors arrive as ordinary JSON responses."""
        result = await _ask(state, qa, body.question, [t.model_dump() for t in body.history],
                            body.filters, body.answerer)
        rid = getattr(request.state, "request_id", "")

        async def events() -> AsyncIterator[dict[str, str]]:
            meta = {k: result.get(k) for k in ("question", "standalone_query", "language", "retrieved")}
            yield {"event": "meta", "data": _json(meta)}
            for piece in answer_pieces(result["answer"]):
                yield {"event": "delta", "data": _json({"text": piece})}
                await asyncio.sleep(0)
            yield {"event": "citations", "data": _json(result)}
            yield {"event": "done", "data": _json({"request_id": rid})}

        return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})

    # -- OpenAI compatible -----------------------------------------------------------------
    @router.get("/models", tags=["openai"], summary="The one model this service offers")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card()]}

    @router.get("/models/{model_id}", tags=["openai"], include_in_schema=False)
    async def model(model_id: str) -> dict[str, Any]:
        if model_id != MODEL_ID:
            raise NotFoundError(f"no model {model_id!r}; this service offers {MODEL_ID!r}")
        return _model_card()

    @router.post("/chat/completions", tags=["openai"], summary="OpenAI-compatible chat completions")
    async def chat_completions(body: ChatRequest, qa: QADep, state: StateDep) -> Any:
        """The last message is the question (it must be the user's); earlier user and assistant messages
        are the history. The reply's content carries `[n]` markers; the citations ride in an extra
        top-level `citations` field (and the whole result in `briefing`); streamed, they come in the
        final chunk before `data: [DONE]`."""
        last = body.messages[-1]
        if last.role != "user":
            raise Unprocessable("the last message must be the user's question")
        question = last.text().strip()
        if not question:
            raise Unprocessable("the question is empty")
        if len(question) > settings.max_question_chars:
            raise Unprocessable(
                f"the question is {len(question)} characters; the limit is {settings.max_question_chars}"
            )
        history = [
            {"role": m.role, "content": m.text()}
            for m in body.messages[:-1] if m.role in ("user", "assistant") and m.text().strip()
        ]
        result = await _ask(state, qa, question, history, body.filters, body.answerer)
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
            return f"data: {_json(data)}\n\n"

        async def lines() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""}, None)
            for piece in answer_pieces(result["answer"]):
                yield chunk({"content": piece}, None)
                await asyncio.sleep(0)
            yield chunk({}, "stop", citations=result["citations"], briefing=result)
            if include_usage:
                data = {"id": cid, "object": "chat.completion.chunk", "created": created,
                        "model": MODEL_ID, "choices": [], "usage": usage}
                yield f"data: {_json(data)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(
            lines(), media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # -- catalog ---------------------------------------------------------------------------
    @router.get("/sources", tags=["catalog"], summary="The article and the sources it cites")
    async def sources(qa: QADep, state: StateDep) -> JSONResponse:
        from service.engine.catalog import list_sources

        return JSONResponse(await _run(state, list_sources, state.settings, store=qa.store))

    @router.get("/documents", tags=["catalog"], summary="The stored documents")
    async def documents(qa: QADep, state: StateDep, with_text: bool = False) -> JSONResponse:
        from service.engine.catalog import list_documents

        return JSONResponse(await _run(state, list_documents, state.settings, with_text, store=qa.store))

    @router.get("/documents/{doc_id}", tags=["catalog"], summary="One document's stored text and metadata")
    async def document(doc_id: str, qa: QADep, state: StateDep) -> JSONResponse:
        """Citations' `start`/`end` are character (code point) offsets into `text`."""
        from service.engine.catalog import show_document

        return JSONResponse(await _run(state, show_document, state.settings, doc_id, store=qa.store))

    # -- admin -----------------------------------------------------------------------------
    @router.post(
        "/ingest", tags=["admin"], summary="Ingest uploaded files and/or a manifest on the server",
        dependencies=[AdminAuth], openapi_extra=_INGEST_OPENAPI,
    )
    async def ingest_route(request: Request, qa: QADep, state: StateDep) -> JSONResponse:
        """`multipart/form-data` with `files` (one or more; .txt .md .html .pdf), optional `source_id`
        (link the files as that cited source's full text) and optional `manifest`; or JSON
        `{"manifest": "path/on/server.yaml"}`. Returns the ingest report; a file that cannot be read
        is an entry in `errors`, the rest is still ingested."""
        content_type = request.headers.get("content-type", "").lower()
        manifest: str | None = None
        source_id: str | None = None
        tmpdir = Path(tempfile.mkdtemp(prefix="briefing-upload-"))
        try:
            uploads: list[tuple[str, Path]] = []
            if content_type.startswith("multipart/form-data"):
                form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=20)
                used: set[str] = set()
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile) and key in _FILE_FIELDS:
                        name = _unique(safe_filename(value.filename, len(uploads) + 1), used)
                        target = tmpdir / name
                        with target.open("wb") as out:
                            while block := await value.read(1 << 20):
                                out.write(block)
                        await value.close()
                        uploads.append((name, target))
                    elif key == "source_id" and isinstance(value, str):
                        source_id = value.strip() or None
                    elif key == "manifest" and isinstance(value, str):
                        manifest = value.strip() or None
                    else:
                        if isinstance(value, UploadFile):
                            await value.close()
                        raise Unprocessable(
                            f"unknown form field {key[:40]!r}; use files, source_id, manifest"
                        )
            elif content_type.startswith("application/json"):
                try:
                    manifest = IngestJSON.model_validate_json(await request.body()).manifest
                except ValidationError as exc:
                    raise RequestValidationError(exc.errors(include_input=False)) from None
            else:
                raise Unprocessable("send multipart/form-data with files, or JSON {\"manifest\": path}")
            if not uploads and not manifest:
                raise Unprocessable("nothing to ingest: upload files or name a manifest")
            if manifest and Path(manifest).suffix.lower() not in (".yaml", ".yml"):
                raise Unprocessable("the manifest must be a .yaml or .yml file")
            report = await _run(state, _ingest_sync, state, qa, uploads, manifest, source_id)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return JSONResponse(_clean_report(report, tmpdir))

    @router.delete(
        "/documents/{doc_id}", tags=["admin"], summary="Remove a document and its chunks",
        dependencies=[AdminAuth],
    )
    async def delete_document(doc_id: str, qa: QADep, state: StateDep) -> JSONResponse:
        removed = await _run(state, _delete_sync, state, qa, doc_id)
        return JSONResponse({"doc_id": doc_id, "deleted": True, "chunks_removed": removed})

    return router


def _model_card() -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "briefing-qa"}


_INGEST_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "source_id": {"type": "string", "description": "Link the files to this source."},
                        "manifest": {"type": "string", "description": "A manifest path on the server."},
                    },
                }
            },
            "application/json": {"schema": IngestJSON.model_json_schema()},
        },
    }
}


def _unique(name: str, used: set[str]) -> str:
    """File names (and so document ids) distinct within one upload."""
    from ingest.pipeline import slugify

    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    candidate, n = name, 1
    while slugify(Path(candidate).stem) in used:
        n += 1
        candidate = f"{stem}-{n}" + (f".{suffix}" if suffix else "")
    used.add(slugify(Path(candidate).stem))
    return candidate


_PROTECTED_KINDS = {"article", "quoted excerpt", "cited source"}


def _ingest_sync(state: ServiceState, qa: Any, uploads: list[tuple[str, Path]], manifest: str | None,
                 source_id: str | None) -> dict[str, Any]:
    from ingest.pipeline import IngestReport, ingest, slugify

    with state.write_lock:
        errors: list[dict[str, str]] = []
        accepted: list[tuple[str, Path]] = []
        known = qa.store.document_metadata() if uploads and source_id is None else {}
        for name, path in uploads:
            doc_id = source_id or slugify(path.stem)
            kind = known.get(doc_id, {}).get("kind")
            if source_id is None and kind in _PROTECTED_KINDS:
                # An upload must not silently replace the briefing's own records.
                problem = f"would replace the {kind} {doc_id!r}; rename the file"
                errors.append({"path": name, "error": problem})
                continue
            accepted.append((doc_id, path))
        if not accepted and not manifest:
            report = IngestReport(errors=errors)
        else:
            report = ingest(
                state.settings, [p for _, p in accepted], Path(manifest).expanduser() if manifest else None,
                source_id=source_id, store=qa.store, embedder=qa.searcher.embedder,
                # Forking a process with live server threads can leave the child on a lock no
                # thread will release.
                overlap=False,
            )
            report.errors[:0] = errors
    qa.searcher.refresh(force=True)
    failed = {e.get("path") for e in report.errors}
    out = report.to_dict()
    out["doc_ids"] = list(dict.fromkeys(d for d, p in accepted if str(p) not in failed))
    return out


def _clean_report(report: dict[str, Any], tmpdir: Path) -> dict[str, Any]:
    """Error paths name the uploaded file, not the server's temporary folder."""
    prefix = str(tmpdir) + "/"
    for err in report.get("errors", []):
        for key in ("path", "error"):
            err[key] = str(err.get(key, "")).replace(prefix, "").replace(str(tmpdir), "")
    return report


def _delete_sync(state: ServiceState, qa: Any, doc_id: str) -> int:
    from briefing_core.store import write_lock

    with state.write_lock, write_lock(state.settings):
        store = qa.store
        store.get_document(doc_id)  # NotFoundError -> 404
        removed = store.delete_document(doc_id)
        store.bump_generation()
    qa.searcher.refresh(force=True)
    return int(removed)


# ---------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, qa: Any = None) -> FastAPI:
    """The ASGI app. `qa` (a loaded or unloaded `BriefingQA`, or anything with `load()`, `store`,
    `searcher` and `ask()`) is built from `settings` in the background when not given."""
    if settings is None:
        settings = qa.settings if qa is not None and hasattr(qa, "settings") else get_settings()
    state = ServiceState(settings, qa)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if writes_refused(settings):
            log.warning("listening on %s without BRIEFING_ADMIN_KEY: ingest and delete answer 403",
                        settings.host)
        state.limiter = anyio.CapacityLimiter(4)
        state.start()
        try:
            yield
        finally:
            state.stop()

    # FastAPI's own /docs page loads Swagger UI from a CDN and is blank without the internet; this
    # one serves the same page from files inside the fastapi-offline package.
    app = FastAPIOffline(
        title="Briefing QA",
        version="0.1.0",
        summary="Questions about a briefing article and its cited sources, with span-level citations.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs-assets",
    )
    app.state.briefing = state

    # -- errors --------------------------------------------------------------------------
    @app.exception_handler(BriefingError)
    async def briefing_error(request: Request, exc: BriefingError) -> JSONResponse:
        status = status_for(exc)
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        elif status == 503:
            headers["Retry-After"] = "5"
        return JSONResponse(_error_body(request, state.scrub(str(exc))), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in list(exc.errors())[:20]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append({"field": where[:200], "message": str(err.get("msg", "invalid"))[:300]})
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        body = _error_body(request, f"invalid request: {summary}")
        body["details"] = problems
        return JSONResponse(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(_error_body(request, detail), exc.status_code, headers=exc.headers)

    # -- routes --------------------------------------------------------------------------
    app.include_router(_v1_router(settings))

    @app.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Models loaded and the store answering")
    async def readyz(state: StateDep) -> JSONResponse:
        if not state.ready.is_set():
            status = "unavailable" if state.failed or state.error else "loading"
            body: dict[str, Any] = {"status": status}
            if state.error:
                body["error"] = state.error
            return JSONResponse(body, 503, headers={"Retry-After": "5"})
        try:
            await _run(state, state.qa.store.ping)
        except BriefingError as exc:
            return JSONResponse({"status": "unavailable", "error": state.scrub(str(exc))}, 503,
                                headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready"})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(
            WEB_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
        )

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    # -- middleware (the last added runs first) ------------------------------------------
    def limit_for(path: str) -> int:
        return settings.max_upload_bytes if path == INGEST_PATH else settings.max_body_bytes

    app.add_middleware(BodySizeLimitMiddleware, limit_for=limit_for)
    app.add_middleware(
        RateLimitMiddleware, per_minute=settings.rate_limit_per_minute,
        keys=[settings.api_key, settings.admin_key],
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=False,  # keys travel in headers, never cookies
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(HeaderSizeLimitMiddleware, limit=settings.max_header_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app
