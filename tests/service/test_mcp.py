"""The MCP server, through the SDK's own client: over stdio (a real `briefing mcp` process) and over
streamable HTTP (a real `briefing serve`, /mcp, with an API key), both on one store made with
`briefing ingest`. Plus, in process, the failures no real store shows on demand (loading, a store
being changed by another process)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.helpers import serve_process

ROOT = Path(__file__).resolve().parents[2]
BRIEFING = str(Path(sys.executable).parent / "briefing")
DEV_GOLD = ROOT / "eval" / "gold" / "dev.jsonl"
BUNDLED = "north-korea-russia-2017"
KEY = "mcp-test-key-5d1e"
TOOLS = {"ask", "search", "list_briefings", "list_sources", "read_passage"}
CITATION_KEYS = {"n", "doc_id", "briefing", "title", "start", "end", "quote"}
TRANSPORTS = ["stdio", "http"]
QUESTION = "What did Chinese TV news praise at the end of March 2017?"


# ---------------------------------------------------------------------------------------
# One store, one `briefing serve` on it, and clients of either transport
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, subprocess_env: dict[str, str]) -> dict[str, str]:
    """The bundled briefing ingested by `briefing ingest` into a store of the module's own."""
    import subprocess

    store = tmp_path_factory.mktemp("mcp") / "store"
    env = {**subprocess_env, "BRIEFING_STORE_DIR": str(store), "BRIEFING_RATE_LIMIT_PER_MINUTE": "0"}
    proc = subprocess.run([BRIEFING, "ingest", "--json"], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return env


@pytest.fixture(scope="module")
def served(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`briefing serve` with an API key, ready."""
    log = tmp_path_factory.mktemp("mcp-serve") / "serve.log"
    keyed = {**env, "BRIEFING_API_KEY": KEY}
    with serve_process(keyed, log, "--log-level", "warning", wait_for="/readyz") as url:
        yield url


@pytest.fixture(scope="module")
def v1(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=120, headers={"Authorization": f"Bearer {KEY}"}) as http:
        yield http


@pytest.fixture
def connect(env: dict[str, str], served: str, tmp_path: Path) -> Callable[..., Any]:
    """connect(transport, key=KEY) -> an async context manager giving a connected `mcp.Client`."""

    @contextlib.asynccontextmanager
    async def open_client(transport: str, key: str | None = KEY) -> AsyncIterator[Any]:
        from mcp import Client

        if transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(command=BRIEFING, args=["mcp"], env=env)
            with (tmp_path / "mcp-stdio.log").open("w") as errlog:
                async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=300) as client:
                    yield client
        else:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            headers = {"Authorization": f"Bearer {key}"} if key else {}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=120) as http,
                Client(streamable_http_client(f"{served}/mcp", http_client=http)) as client,
            ):
                yield client

    return open_client


def run(fn: Callable[[], Any]) -> Any:
    return anyio.run(fn)


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


def dev_questions() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEV_GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


def body_of(gold: dict[str, Any]) -> dict[str, Any]:
    """A gold question as /v1/ask and the ask tool take it (a question may name its briefing)."""
    return {"question": gold["question"], **({"briefing": gold["briefing"]} if gold.get("briefing") else {})}


def without_latency(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "latency_ms"}


slow = pytest.mark.slow  # server processes


# ---------------------------------------------------------------------------------------
# Listed with their schemas
# ---------------------------------------------------------------------------------------


@slow
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tools_and_resources_are_listed_with_their_schemas(
    connect: Callable[..., Any], v1: httpx.Client, transport: str
) -> None:
    async def go() -> tuple[Any, Any, Any, Any]:
        async with connect(transport) as client:
            tools = (await client.list_tools()).tools
            resources = (await client.list_resources()).resources
            templates = (await client.list_resource_templates()).resource_templates
            article = await client.read_resource(f"briefing://{BUNDLED}/article")
            return tools, resources, templates, article

    tools, resources, templates, article = run(go)
    by_name = {t.name: t for t in tools}
    assert set(by_name) == TOOLS
    for tool in tools:
        assert tool.input_schema["type"] == "object", tool.name
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
        assert tool.description, tool.name
        assert tool.annotations is not None and tool.annotations.read_only_hint is True, tool.name
    ask_in = by_name["ask"].input_schema
    assert ask_in["required"] == ["question"]
    assert {"question", "briefing", "history"} <= set(ask_in["properties"])
    assert set(by_name["read_passage"].input_schema["required"]) == {"doc_id", "start", "end"}
    ask_out = by_name["ask"].output_schema
    assert {"answer", "refused", "question_kind", "citations"} <= set(ask_out["required"])
    citation = ask_out["$defs"]["CitationOut"]
    assert set(citation["required"]) >= CITATION_KEYS

    uris = [str(r.uri) for r in resources]
    assert uris == [f"briefing://{BUNDLED}/article"]
    assert resources[0].title == "How Russia Could Help Solve the North Korea Crisis"
    assert [t.uri_template for t in templates] == ["briefing://{briefing}/article"]

    (contents,) = article.contents
    stored = v1.get(f"/v1/documents/{contents.meta['doc_id']}").json()
    assert contents.text == stored["text"]
    assert contents.mime_type == "text/plain"
    assert contents.meta["briefing"] == BUNDLED
    assert contents.meta["title"] == resources[0].title


# ---------------------------------------------------------------------------------------
# The same answers and citations as /v1/ask
# ---------------------------------------------------------------------------------------


@slow
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_dev_gold_set_through_ask_gives_what_v1_ask_gives(
    connect: Callable[..., Any], v1: httpx.Client, transport: str
) -> None:
    questions = dev_questions()
    expected = []
    for q in questions:
        r = v1.post("/v1/ask", json=body_of(q))
        assert r.status_code == 200, r.text
        expected.append(r.json())

    async def go() -> list[Any]:
        out = []
        async with connect(transport) as client:
            for q in questions:
                out.append(await client.call_tool("ask", body_of(q)))
        return out

    results = run(go)
    cited = 0
    for q, want, got in zip(questions, expected, results, strict=True):
        assert not got.is_error, (q["id"], text_of(got))
        assert without_latency(got.structured_content) == without_latency(want), q["id"]
        text = text_of(got)
        assert text.startswith(want["answer"]), q["id"]
        for c in want["citations"]:
            assert f"[{c['n']}]" in text and c["quote"] in text, q["id"]
        cited += len(want["citations"])
    # The set is worth comparing: answers with citations and refusals both.
    assert cited > 10
    assert any(r["refused"] for r in expected) and not all(r["refused"] for r in expected)


@slow
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_citation_and_a_search_hit_read_back_in_context(
    connect: Callable[..., Any], v1: httpx.Client, transport: str
) -> None:
    question = QUESTION

    async def go() -> tuple[Any, list[Any], Any, list[Any]]:
        async with connect(transport) as client:
            answer = await client.call_tool("ask", {"question": question, "briefing": BUNDLED})
            reads = [await client.call_tool("read_passage", {"doc_id": c["doc_id"], "start": c["start"],
                                                               "end": c["end"], "context_chars": 80})
                     for c in answer.structured_content["citations"]]
            found = await client.call_tool("search", {"query": "Pacific Fleet sortie", "k": 3})
            hits = [await client.call_tool("read_passage", {"doc_id": p["doc_id"], "start": p["start"],
                                                             "end": p["end"], "context_chars": 0})
                    for p in found.structured_content["passages"]]
            return answer, reads, found, hits

    answer, reads, found, hits = run(go)
    citations = answer.structured_content["citations"]
    assert citations
    for c, read in zip(citations, reads, strict=True):
        out = read.structured_content
        assert out["text"] == c["quote"]
        assert 0 < len(out["before"]) <= 80 or c["start"] == 0
        assert f"[[{c['quote']}]]" in text_of(read)
    passages = found.structured_content["passages"]
    assert len(passages) == 3
    assert all(p["doc_id"] and p["end"] > p["start"] and isinstance(p["score"], float) for p in passages)
    assert [h.structured_content["text"] for h in hits] == [p["text"] for p in passages]


@slow
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_listings_are_the_v1_listings(connect: Callable[..., Any], v1: httpx.Client, transport: str) -> None:
    async def go() -> tuple[Any, Any]:
        async with connect(transport) as client:
            return await client.call_tool("list_briefings", {}), await client.call_tool("list_sources", {})

    briefings, sources = run(go)
    assert briefings.structured_content == v1.get("/v1/briefings").json()
    assert sources.structured_content == {"sources": v1.get("/v1/sources").json()}
    assert BUNDLED in text_of(briefings)


# ---------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------


@slow
def test_mcp_over_http_refuses_a_missing_or_wrong_key(served: str, connect: Callable[..., Any]) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=served, timeout=30) as http:
        missing = http.post("/mcp", json=initialize, headers=headers)
        wrong = http.post("/mcp", json=initialize, headers={**headers, "Authorization": "Bearer nope"})
        right = http.post("/mcp", json=initialize, headers={**headers, "Authorization": f"Bearer {KEY}"})
    assert missing.status_code == 401 and "API key is required" in missing.json()["error"]
    assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]
    assert missing.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200, right.text

    async def go(key: str | None) -> None:
        async with connect("http", key=key) as client:
            await client.list_tools()

    from mcp.shared.exceptions import MCPError

    # The SDK's client cannot connect: its first request is answered with the 401.
    for key in (None, "nope"):
        with pytest.raises(BaseException) as refused:
            run(lambda key=key: go(key))
        assert any(isinstance(e, MCPError) for e in leaves(refused.value)), repr(refused.value)
    run(lambda: go(KEY))


def leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for e in error.exceptions for leaf in leaves(e)]
    return [error]


@slow
def test_mcp_on_loopback_refuses_a_foreign_host_or_origin(served: str) -> None:
    """A web page that rebinds its own name to 127.0.0.1 sends its name as Host and Origin."""
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=served, timeout=30) as http:
        host = http.post("/mcp", json=ping, headers={**headers, "Host": "attacker.example"})
        origin = http.post("/mcp", json=ping, headers={**headers, "Origin": "http://attacker.example"})
        own = http.post("/mcp", json=ping, headers={**headers, "Origin": served})
    assert host.status_code == 421
    assert origin.status_code == 403
    assert own.status_code == 200, own.text


# ---------------------------------------------------------------------------------------
# Bad input: a tool error naming the problem; the server goes on; the store is untouched
# ---------------------------------------------------------------------------------------

BAD_CALLS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("ask", {"question": "Who wrote the article?", "briefing": "no-such-briefing"},
     ("no-such-briefing", BUNDLED)),
    ("ask", {"question": ""}, ("question", "at least 1 character")),
    ("ask", {"question": "   "}, ("question", "at least 1 character")),
    ("ask", {"question": "why " * 600}, ("question", "at most 2000 characters")),
    ("ask", {"question": "Who?", "briefing": "Not An Id!"}, ("briefing", "pattern")),
    ("search", {"query": "fleet", "briefing": "no-such-briefing"}, ("no-such-briefing",)),
    ("search", {"query": "fleet", "k": 0}, ("k", "greater than or equal to 1")),
    ("list_sources", {"briefing": "no-such-briefing"}, ("no-such-briefing",)),
    ("read_passage", {"doc_id": "no-such-doc", "start": 0, "end": 10}, ("no-such-doc",)),
    ("read_passage", {"doc_id": "@ARTICLE", "start": 0, "end": 10_000_000}, ("outside", "characters")),
    ("read_passage", {"doc_id": "@ARTICLE", "start": 50, "end": 40}, ("end (40)", "start (50)")),
    ("read_passage", {"doc_id": "@ARTICLE", "start": -1, "end": 40}, ("start", "greater than or equal to 0")),
]


@slow
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_input_is_a_tool_error_naming_the_problem_and_changes_nothing(
    connect: Callable[..., Any], v1: httpx.Client, transport: str
) -> None:
    documents_before = v1.get("/v1/documents").json()
    article = v1.get("/v1/briefings").json()["briefings"][0]["article"]

    async def go() -> tuple[list[Any], Any, Any, Any]:
        async with connect(transport) as client:
            before = await client.call_tool("list_briefings", {})
            results = []
            for name, args, _ in BAD_CALLS:
                args = {k: (article if v == "@ARTICLE" else v) for k, v in args.items()}
                results.append(await client.call_tool(name, args))
            missing = None
            with contextlib.suppress(Exception):
                missing = await client.read_resource("briefing://no-such-briefing/article")
            after_answer = await client.call_tool("ask", {"question": QUESTION})
            after = await client.call_tool("list_briefings", {})
            return results, (before, after), after_answer, missing

    results, (before, after), after_answer, missing = run(go)
    for (name, args, words), result in zip(BAD_CALLS, results, strict=True):
        message = text_of(result)
        assert result.is_error, (name, args, message)
        for word in words:
            assert word in message, (name, args, message)
        assert "Traceback" not in message
    assert missing is None  # an unknown briefing's article is a protocol error, not content
    assert not after_answer.is_error and after_answer.structured_content["citations"]
    assert after.structured_content == before.structured_content
    assert v1.get("/v1/documents").json() == documents_before


@slow
def test_an_unknown_article_resource_names_the_known_briefings(connect: Callable[..., Any]) -> None:
    from mcp.shared.exceptions import MCPError

    async def go() -> None:
        async with connect("http") as client:
            await client.read_resource("briefing://no-such-briefing/article")

    with pytest.raises(BaseException) as raised:
        run(go)
    (error,) = [e for e in leaves(raised.value) if isinstance(e, MCPError)]
    assert "no-such-briefing" in str(error) and BUNDLED in str(error)


# ---------------------------------------------------------------------------------------
# In process: a service still loading, a store being changed by another process
# ---------------------------------------------------------------------------------------


class _StoreBeingRebuilt:
    """A store whose every read meets another process's rebuild, as briefing_core.store reports it."""

    def __getattr__(self, name: str) -> Any:
        from briefing_core.errors import StoreUnavailable

        def fail(*args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailable("the store at /tmp/store is being changed by another process and could "
                                   "not be read consistently; retry in a moment")

        return fail


class _QAOnARebuild:
    def __init__(self) -> None:
        self.store = _StoreBeingRebuilt()
        self.searcher = self

    def load(self) -> Any:
        return self

    def briefings(self) -> list[str]:
        return self.store.document_metadata()

    def ask(self, *args: Any, **kwargs: Any) -> Any:
        return self.store.query()


def _call_all(server: Any) -> list[Any]:
    from mcp import Client

    async def go() -> list[Any]:
        async with Client(server) as client:
            out = [await client.call_tool("ask", {"question": "Who wrote the article?"}),
                   await client.call_tool("search", {"query": "fleet"}),
                   await client.call_tool("list_briefings", {}),
                   await client.call_tool("list_sources", {}),
                   await client.call_tool("read_passage", {"doc_id": "x", "start": 0, "end": 1})]
            out.append(await client.list_tools())
            return out

    return run(go)


def test_a_store_being_rebuilt_is_a_tool_error_and_the_server_goes_on(tmp_settings: Any) -> None:
    from service.shell.mcp_server import make_server
    from service.shell.state import ServiceState

    state = ServiceState(tmp_settings, qa=_QAOnARebuild())
    state.ready.set()
    *results, listed = _call_all(make_server(state))
    for result in results:
        assert result.is_error
        assert "being changed by another process" in text_of(result), text_of(result)
    assert {t.name for t in listed.tools} == TOOLS


def test_listing_articles_of_a_store_being_rebuilt_says_why(tmp_settings: Any) -> None:
    from mcp import Client
    from mcp.shared.exceptions import MCPError

    from service.shell.mcp_server import make_server
    from service.shell.state import ServiceState

    state = ServiceState(tmp_settings, qa=_QAOnARebuild())
    state.ready.set()
    server = make_server(state)

    async def go() -> tuple[list[BaseException], Any]:
        errors: list[BaseException] = []
        async with Client(server) as client:
            for call in (client.list_resources,
                         lambda: client.read_resource(f"briefing://{BUNDLED}/article")):
                try:
                    await call()
                except MCPError as exc:
                    errors.append(exc)
            return errors, await client.call_tool("list_briefings", {})

    errors, after = run(go)
    assert len(errors) == 2
    assert all("being changed by another process" in str(e) for e in errors), errors
    assert after.is_error and "being changed" in text_of(after)


def test_a_service_still_loading_says_so(tmp_settings: Any) -> None:
    from service.shell.mcp_server import make_server
    from service.shell.state import ServiceState

    state = ServiceState(tmp_settings, qa=_QAOnARebuild())  # never loaded: ready is not set
    *results, _ = _call_all(make_server(state))
    for result in results:
        assert result.is_error and "still loading" in text_of(result), text_of(result)


def test_the_endpoint_serves_again_after_the_app_restarts(tmp_settings: Any) -> None:
    """Each lifespan cycle of the app runs a session manager of its own (one runs only once)."""
    from fastapi.testclient import TestClient

    from service.shell.app import create_app

    app = create_app(tmp_settings, qa=_QAOnARebuild())
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for _ in range(2):
        with TestClient(app, base_url="http://127.0.0.1:8000") as http:
            r = http.post("/mcp", json=ping, headers={"Accept": "application/json, text/event-stream"})
            assert r.status_code == 200, r.text
            assert r.json()["id"] == 1


def test_a_listed_origin_may_send_the_mcp_headers(settings_factory: Callable[..., Any]) -> None:
    from fastapi.testclient import TestClient

    from service.shell.app import create_app

    origin = "http://127.0.0.1:6274"
    app = create_app(settings_factory(cors_origins=[origin]), qa=_QAOnARebuild())
    with TestClient(app, base_url="http://127.0.0.1:8000") as http:
        r = http.options("/mcp", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "mcp-protocol-version, content-type",
        })
    assert r.status_code == 200, r.text
    assert "mcp-protocol-version" in r.headers["access-control-allow-headers"].lower()
    assert r.headers["access-control-allow-origin"] == origin
