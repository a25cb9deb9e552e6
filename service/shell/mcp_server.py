"""The briefing store as a Model Context Protocol server, for analysts' own assistants: answers with
their citations, search, the catalog and the cited text as tools, each briefing's article as a resource.

    briefing mcp                  over stdio, for a client that launches the server itself
    briefing serve  ->  /mcp      streamable HTTP, behind the API key like /v1 (app.py mounts it)

Tools (each with an input and an output schema; the result is structured content plus a text form):

    ask(question, briefing?, history?)               the result object of POST /v1/ask
    search(query, briefing?, k?)                      retrieved passages: document, offsets, score
    list_briefings()                                  GET /v1/briefings
    list_sources(briefing?)                           GET /v1/sources
    read_passage(doc_id, start, end, context_chars?)  the stored text around a cited span

Resources: `briefing://{id}/article`, each briefing's article (text, with its metadata in `_meta`).

The server is built on the same `ServiceState` as the HTTP routes and asks through the same function
(answers.ask_qa), so `ask` returns what /v1/ask returns. No tool writes to the store. A mistake of the
caller or a failure of the system (briefing_core.errors) is a tool error carrying its message; the
server goes on serving.
"""

import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, CallToolResult, TextContent, ToolAnnotations
from mcp_types import Resource as MCPResource
from mcp_types import ResourceTemplate as MCPResourceTemplate
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from briefing_core.errors import BriefingError
from service.shell.answers import ask_qa
from service.shell.deps import check_client
from service.shell.http_errors import Unauthorized
from service.shell.http_limits import is_loopback_host, request_id, send_json
from service.shell.models import BriefingId, Turn, question_type
from service.shell.state import ServiceState, run_blocking

MCP_PATH = "/mcp"
ARTICLE_URI = "briefing://{briefing}/article"
_ARTICLE_URI = re.compile(r"briefing://(?P<briefing>[^/]+)/article")
MAX_PASSAGE_CHARS = 20_000
"""The longest span read_passage returns: a citation is a sentence or a few, not a document."""
STDIO_READY_WAIT_S = 180.0
"""How long a tool called over stdio waits for the models to load: the client launched the server a
moment ago and has no other way to know when it is ready."""

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                             open_world_hint=False)


# ---------------------------------------------------------------------------------------
# Output schemas: the shapes of docs/api.md, fields as /v1 gives them
# ---------------------------------------------------------------------------------------


class _Out(BaseModel):
    # The /v1 shapes may gain fields (docs/api.md): the schema names those there are and lets more through.
    model_config = ConfigDict(extra="allow")


class CitationOut(_Out):
    n: int = Field(description="The [n] marker in the answer.")
    doc_id: str
    briefing: str | None = Field(description="The briefing of the cited document (null outside any).")
    title: str
    outlet: str
    start: int = Field(description="Character (code point) offset of the span in the document's text.")
    end: int
    quote: str = Field(description="The cited span, exactly the document's text[start:end].")
    kind: str
    source_id: str
    attributed_to: str | None
    language: str
    date: str
    support: float


class PassageOut(_Out):
    doc_id: str
    start: int
    end: int
    score: float
    text: str
    title: str | None
    kind: str | None
    briefing: str | None


class AskOut(_Out):
    """The result object of POST /v1/ask."""

    question: str
    answer: str = Field(description="The answer, with [n] markers; a refusal says the sources do not say.")
    refused: bool
    question_kind: str
    citations: list[CitationOut]
    retrieved: list[PassageOut]
    answerer: str
    latency_ms: float
    standalone_query: str
    language: str
    answerability: float
    notes: list[str]
    fallback: str | None
    unsupported: list[str]
    parts: list[dict[str, Any]]
    briefing: str | None
    briefings: list[dict[str, Any]]


class SearchOut(_Out):
    query: str
    briefing: str | None
    passages: list[PassageOut]


class BriefingOut(_Out):
    id: str
    title: str | None
    subtitle: str | None
    outlet: str | None
    date: str | None
    author: str | None
    url: str | None
    language: str | None
    article: str | None = Field(description="The article's doc_id.")
    sources: int
    documents: int
    chunks: int


class BriefingsOut(_Out):
    briefings: list[BriefingOut]


class SourceOut(_Out):
    """An entry of GET /v1/sources."""

    source_id: str
    briefing: str | None
    kind: str = Field(description="article or cited")
    title: str | None
    language: str
    full_text: bool
    documents: list[str]


class SourcesOut(_Out):
    sources: list[SourceOut]


class PassageText(_Out):
    doc_id: str
    briefing: str | None
    title: str
    kind: str
    start: int
    end: int
    text: str = Field(description="The document's text[start:end].")
    before: str = Field(description="Up to context_chars characters before start.")
    after: str = Field(description="Up to context_chars characters after end.")
    document_chars: int


# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------


class BriefingMCP(MCPServer):
    """MCPServer with the briefings' articles as resources: listed from the store as it is now (a
    briefing ingested while serving is listed at once), read with their metadata."""

    def __init__(self, state: ServiceState, ready_qa: Callable[[], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._state = state
        self._ready_qa = ready_qa

    async def _briefings(self) -> list[dict[str, Any]]:
        from service.engine.catalog import list_briefings

        try:
            qa = await self._ready_qa()
            return await run_blocking(self._state, list_briefings, self._state.settings, store=qa.store)
        except (BriefingError, ToolError) as exc:
            # A protocol error with the message: resources/list has no error result of its own, and the
            # SDK would answer an unexpected exception with a bare "internal error".
            raise MCPError(INTERNAL_ERROR, self._state.scrub(str(exc))) from None

    async def list_resources(self) -> list[MCPResource]:
        out = []
        for b in await self._briefings():
            if not b["article"]:
                continue
            byline = ", ".join(str(b[k]) for k in ("author", "outlet", "date") if b.get(k))
            out.append(MCPResource(
                uri=ARTICLE_URI.format(briefing=b["id"]), name=f"{b['id']}/article", title=b["title"],
                description=f"The article of briefing {b['id']}" + (f" ({byline})" if byline else ""),
                mime_type="text/plain", _meta=_article_meta(b),
            ))
        return out

    async def list_resource_templates(self) -> list[MCPResourceTemplate]:
        return [MCPResourceTemplate(
            uri_template=ARTICLE_URI, name="briefing-article", title="A briefing's article",
            description="The text of a briefing's article, its metadata in _meta (list_briefings gives ids).",
            mime_type="text/plain",
        )]

    async def read_resource(self, uri: Any, context: Any = None) -> Iterable[ReadResourceContents] | Any:
        match = _ARTICLE_URI.fullmatch(str(uri))
        if match is None:
            return await super().read_resource(uri, context)
        briefings = {b["id"]: b for b in await self._briefings()}
        entry = briefings.get(match["briefing"])
        if entry is None or not entry["article"]:
            known = ", ".join(briefings) or "none"
            raise ResourceNotFoundError(
                f"no briefing with id {match['briefing']!r}; the store holds: {known}")
        qa = await self._ready_qa()
        try:
            record = await run_blocking(self._state, qa.store.get_document, entry["article"])
        except BriefingError as exc:
            raise ResourceError(self._state.scrub(str(exc))) from None
        return [ReadResourceContents(content=record.text, mime_type="text/plain", meta=_article_meta(entry))]


def _article_meta(briefing: dict[str, Any]) -> dict[str, Any]:
    meta = {k: briefing.get(k) for k in ("title", "subtitle", "outlet", "date", "author", "url", "language")}
    return {"briefing": briefing["id"], "doc_id": briefing["article"], **meta}


def make_server(state: ServiceState, ready_wait_s: float = 0.0,
                lifespan: Callable[[Any], Any] | None = None) -> BriefingMCP:
    """The MCP server over `state`. `ready_wait_s`: how long a tool waits for the models to load before
    answering that the service is still loading (0 answers at once, as /v1 does)."""
    settings = state.settings

    async def ready_qa() -> Any:
        deadline = time.monotonic() + ready_wait_s
        while not state.ready.is_set() and not state.failed and time.monotonic() < deadline:
            await anyio.sleep(0.1)
        try:
            return state.require_qa()
        except BriefingError as exc:
            raise ToolError(str(exc)) from None

    async def blocking(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_blocking(state, fn, *args, **kwargs)
        except BriefingError as exc:
            raise ToolError(state.scrub(str(exc))) from None

    # MCPServer sets up the root logger (logging.basicConfig, a rich handler); the service's logs are
    # uvicorn's and its own, so the root logger is put back as it was.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server = BriefingMCP(
        state, ready_qa, name="briefing", title="Briefing QA",
        instructions=(
            "Questions about briefing articles and the sources they cite. `ask` answers with citations "
            "(doc_id, start, end, quote); `read_passage` shows a cited span in its context. "
            "`list_briefings` gives the ids that `briefing` arguments take."
        ),
        lifespan=lifespan, log_level="WARNING",
    )
    root.handlers[:] = handlers
    root.setLevel(level)
    Question = question_type(settings.max_question_chars)
    BriefingArg = Annotated[
        BriefingId | None, Field(description="Only this briefing (list_briefings gives the ids).")]

    @server.tool(annotations=_READ_ONLY, structured_output=True)
    async def ask(
        question: Annotated[Question, Field(description="The question, in English, Chinese or Russian.")],
        briefing: Annotated[BriefingId | None, Field(
            description="Ask this briefing only: its article, author and sources. Absent: every briefing.",
        )] = None,
        history: Annotated[list[Turn] | None, Field(
            max_length=100, description="Earlier turns of the conversation, oldest first.")] = None,
    ) -> Annotated[CallToolResult, AskOut]:
        """Answer a question from the briefings, every claim tied to the passage it comes from, or say
        that the sources do not say. The same result as POST /v1/ask."""
        qa = await ready_qa()
        try:
            turns = [t.model_dump() for t in history or []]
            result = await ask_qa(state, qa, question, turns, None, None, briefing)
        except BriefingError as exc:
            raise ToolError(state.scrub(str(exc))) from None
        return _result(result, ask_text(result))

    @server.tool(annotations=_READ_ONLY, structured_output=True)
    async def search(
        query: Annotated[Question, Field(description="What to look for.")],
        briefing: BriefingArg = None,
        k: Annotated[int, Field(ge=1, le=50, description="How many passages.")] = settings.k,
    ) -> Annotated[CallToolResult, SearchOut]:
        """The passages the store holds that best match the query (hybrid dense and keyword search),
        each with its document, character offsets and score."""
        from service.engine.catalog import check_briefing

        qa = await ready_qa()

        def run() -> list[Any]:
            check_briefing(qa.searcher.briefings(), briefing)
            return qa.searcher.search(query, k=k, filters={"briefing": [briefing]} if briefing else None)

        passages = [p.to_dict() for p in await blocking(run)]
        out = {"query": query, "briefing": briefing, "passages": passages}
        return _result(out, search_text(out))

    @server.tool(annotations=_READ_ONLY, structured_output=True)
    async def list_briefings() -> Annotated[CallToolResult, BriefingsOut]:
        """The briefings the store holds: id, article (title, outlet, date, author) and how many sources,
        documents and chunks of each are stored. As GET /v1/briefings."""
        from service.engine.catalog import list_briefings as listing

        qa = await ready_qa()
        out = {"briefings": await blocking(listing, settings, store=qa.store)}
        return _result(out, briefings_text(out["briefings"]))

    @server.tool(annotations=_READ_ONLY, structured_output=True)
    async def list_sources(briefing: BriefingArg = None) -> Annotated[CallToolResult, SourcesOut]:
        """The articles and the sources they cite, each briefing's article first, with whether the full
        text of a source is stored. As GET /v1/sources."""
        from service.engine.catalog import list_sources as listing

        qa = await ready_qa()
        out = {"sources": await blocking(listing, settings, store=qa.store, briefing=briefing)}
        return _result(out, sources_text(out["sources"]))

    @server.tool(annotations=_READ_ONLY, structured_output=True)
    async def read_passage(
        doc_id: Annotated[str, Field(min_length=1, max_length=256, description="A citation's doc_id.")],
        start: Annotated[int, Field(ge=0, description="A citation's start.")],
        end: Annotated[int, Field(ge=1, description="A citation's end.")],
        context_chars: Annotated[
            int, Field(ge=0, le=5000, description="Characters shown either side.")] = 300,
    ) -> Annotated[CallToolResult, PassageText]:
        """The stored text of a span (a citation's doc_id, start and end) with the text around it, to
        check a citation in context."""
        qa = await ready_qa()
        record = await blocking(qa.store.get_document, doc_id)
        out = passage_in_context(record, start, end, context_chars)
        return _result(out, passage_text(out))

    return server


def _result(structured: dict[str, Any], text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=text)], structured_content=structured)


def passage_in_context(record: Any, start: int, end: int, context_chars: int) -> dict[str, Any]:
    text = record.text
    size = len(text)
    if end <= start:
        raise ToolError(f"end ({end}) must be greater than start ({start})")
    if end > size:
        raise ToolError(f"offsets {start}-{end} are outside document {record.doc_id!r}, "
                        f"which has {size} characters")
    if end - start > MAX_PASSAGE_CHARS:
        raise ToolError(f"the span {start}-{end} is {end - start} characters; read_passage returns at most "
                        f"{MAX_PASSAGE_CHARS}")
    meta = record.metadata
    return {
        "doc_id": record.doc_id, "briefing": meta.get("briefing") or None,
        "title": str(meta.get("title") or record.doc_id), "kind": str(meta.get("kind") or "document"),
        "start": start, "end": end, "text": text[start:end],
        "before": text[max(0, start - context_chars):start], "after": text[end:end + context_chars],
        "document_chars": size,
    }


# ---------------------------------------------------------------------------------------
# The text forms (what a client shows when it does not read structured content)
# ---------------------------------------------------------------------------------------


def ask_text(result: dict[str, Any]) -> str:
    several = len({c["briefing"] for c in result["citations"]}) > 1
    lines = [result["answer"]]
    for c in result["citations"]:
        where = f"{c['briefing']}: {c['doc_id']}" if several else c["doc_id"]
        lines.append(f"  [{c['n']}] {c['title']} ({where} {c['start']}-{c['end']}): {c['quote']}")
    return "\n".join(lines)


def search_text(out: dict[str, Any]) -> str:
    if not out["passages"]:
        return "No passage matches."
    return "\n".join(f"{p['score']:.3f} {p['doc_id']} {p['start']}-{p['end']} ({p['title']}): {p['text']}"
                     for p in out["passages"])


def briefings_text(items: list[dict[str, Any]]) -> str:
    if not items:
        return "The store holds no briefing."
    lines = []
    for b in items:
        details = ", ".join(str(b[k]) for k in ("outlet", "date") if b.get(k))
        lines.append(f"{b['id']}: {b['title'] or ''}" + (f" ({details})" if details else "")
                     + f"; {b['sources']} sources, {b['documents']} documents, {b['chunks']} chunks")
    return "\n".join(lines)


def sources_text(items: list[dict[str, Any]]) -> str:
    lines = []
    for s in items:
        full = "full text" if s["full_text"] else "quoted only"
        lines.append(f"{s['briefing']}/{s['source_id']} ({s['kind']}, {s['language']}, {full}): "
                     f"{s.get('outlet') or ''}: {s['title'] or ''}")
    return "\n".join(lines) or "No sources."


def passage_text(out: dict[str, Any]) -> str:
    before = ("..." if out["start"] - len(out["before"]) > 0 else "") + out["before"]
    after = out["after"] + ("..." if out["end"] + len(out["after"]) < out["document_chars"] else "")
    return (f"{out['title']} ({out['doc_id']} {out['start']}-{out['end']}):\n"
            f"{before}[[{out['text']}]]{after}")


# ---------------------------------------------------------------------------------------
# Streamable HTTP, inside the service's app
# ---------------------------------------------------------------------------------------


def transport_security(state: ServiceState) -> TransportSecuritySettings:
    """On a loopback address the service is a single-user install, often without a key: requests whose
    Host or Origin is not this machine's (a web page's, through DNS rebinding) are refused. Elsewhere
    the API key guards /mcp as it guards /v1."""
    s = state.settings
    if not is_loopback_host(s.host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = ["127.0.0.1", "localhost", "[::1]"]
    bind = s.host.strip().strip("[]")
    bind = f"[{bind}]" if ":" in bind else bind
    if bind not in names:
        names.append(bind)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{n}:*" for n in names] + names,
        allowed_origins=[f"http://{n}:*" for n in names] + [f"http://{n}" for n in names]
        + list(s.cors_origins),
    )


class _ClientAuth:
    """/mcp takes the API key as /v1 does (deps.check_client); 401 in the service's error shape."""

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            check_client(self.state.settings, scope)
        except Unauthorized as exc:
            body = {"error": str(exc), "request_id": request_id(scope)}
            await send_json(send, 401, body, {"WWW-Authenticate": "Bearer"})
            return
        await self.app(scope, receive, send)


class HTTPEndpoint:
    """The /mcp endpoint of the service: an ASGI app (`app`), and `run()`, which the app's lifespan
    enters. A session manager runs once, so each lifespan cycle gets its own."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.server = make_server(state)
        self.manager: Any = None
        self.app = _ClientAuth(self._handle, state)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        # Stateless, with JSON responses: every request stands alone, so `briefing serve --workers N`
        # can hand consecutive requests of one client to different processes. (The Starlette app this
        # returns is not used: its session manager is served from the service's own app.)
        self.server.streamable_http_app(
            streamable_http_path=MCP_PATH, json_response=True, stateless_http=True,
            transport_security=transport_security(self.state),
            max_request_body_size=self.state.settings.max_body_bytes,
        )
        manager = self.server.session_manager
        async with manager.run():
            self.manager = manager
            try:
                yield
            finally:
                self.manager = None

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.manager is None:
            await send_json(send, 503, {"error": "the service is starting or stopping",
                                        "request_id": request_id(scope)}, {"Retry-After": "5"})
            return
        await self.manager.handle_request(scope, receive, send)


# ---------------------------------------------------------------------------------------
# stdio
# ---------------------------------------------------------------------------------------


def serve_stdio(state: ServiceState) -> None:
    """`briefing mcp`: serve over stdin/stdout until the client closes them. The models load in the
    background from the start; a tool called before they are ready waits for them."""

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            state.stop()

    make_server(state, ready_wait_s=STDIO_READY_WAIT_S, lifespan=lifespan).run("stdio")

