"""The HTTP service through a real HTTP client (httpx via TestClient; uvicorn for the openai package)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from briefing_core.errors import StoreUnavailable
from briefing_core.settings import BUNDLED_MANIFEST
from service.shell.answers import answer_pieces
from service.shell.routes.documents import safe_filename

from .conftest import ADMIN_KEY, API_KEY, wait_ready

QUESTION = "What did Chinese TV news praise at the end of March 2017?"
ARTICLE = "how-russia-could-help-solve-the-north-korea-crisis"
RESULT_KEYS = {
    "question", "answer", "refused", "citations", "retrieved", "answerer", "latency_ms", "standalone_query",
    "language", "answerability", "notes", "fallback", "unsupported", "question_kind", "parts", "briefing", "briefings",
    "direct_answer",
}
CITATION_KEYS = {
    "n", "doc_id", "title", "outlet", "start", "end", "quote", "kind", "source_id", "attributed_to",
    "language", "date", "support", "briefing",
}


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """(event, parsed data) for each server-sent event of a body."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            raw = "\n".join(data)
            events.append((name, raw if raw == "[DONE]" else json.loads(raw)))
    return events


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------------------------------
# Small real classes standing in for the answering chain
# ---------------------------------------------------------------------------------------


class GatedQA:
    """The real QA object, whose load() waits until the test opens the gate."""

    def __init__(self, inner: Any, gate: threading.Event) -> None:
        self.inner = inner
        self.gate = gate
        self.settings = inner.settings

    def load(self) -> Any:
        self.gate.wait(60)
        return self.inner.load()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class DeadStore:
    def ping(self) -> None:
        raise StoreUnavailable("Chroma server at http://127.0.0.1:9 does not answer")


class UnreachableStoreQA:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.store = DeadStore()

    def load(self) -> UnreachableStoreQA:
        return self


class FineStore:
    def ping(self) -> None:
        return None


class ExplodingQA:
    """Loads fine; every question fails with an exception whose text must never reach the client."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.store = FineStore()

    def load(self) -> ExplodingQA:
        return self

    def ask(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret /etc/path")


# ---------------------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------------------


def test_healthz_and_request_id(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert len(r.headers["x-request-id"]) >= 16
    r = client.get("/healthz", headers={"X-Request-ID": "trace-abc.123"})
    assert r.headers["x-request-id"] == "trace-abc.123"
    r = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert r.headers["x-request-id"] != "bad id <script>"


def test_readyz_when_loaded(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_readyz_503_while_loading_then_200(make_client: Any, loaded_qa: Any) -> None:
    gate = threading.Event()
    with make_client(qa=GatedQA(loaded_qa, gate), wait=False) as c:
        try:
            assert c.get("/healthz").status_code == 200
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["status"] == "loading"
            r = c.post("/v1/ask", json={"question": QUESTION})
            assert r.status_code == 503 and "loading" in r.json()["error"]
            assert r.headers["retry-after"]
        finally:
            gate.set()
        wait_ready(c)
        assert c.get("/readyz").json() == {"status": "ready"}
        assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 200


def test_readyz_503_when_store_does_not_answer(make_client: Any, store_dir: Any) -> None:
    from .conftest import make_settings

    with make_client(qa=UnreachableStoreQA(make_settings(store_dir)), wait=False) as c:
        deadline = time.monotonic() + 10
        while True:
            r = c.get("/readyz")
            if r.json().get("error") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status_code == 503
        assert r.json()["status"] == "unavailable"
        assert "does not answer" in r.json()["error"]
        assert c.get("/v1/sources").status_code == 503


# ---------------------------------------------------------------------------------------
# Answering
# ---------------------------------------------------------------------------------------


def test_ask_returns_the_result_object(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": QUESTION})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == RESULT_KEYS
    assert not body["refused"]
    assert "Pacific Fleet" in body["answer"] and "[1]" in body["answer"]
    first = body["citations"][0]
    assert set(first) == CITATION_KEYS and first["n"] == 1
    assert first["attributed_to"] == "Chinese TV news"
    assert body["retrieved"] and {"doc_id", "start", "end", "score", "text"} <= set(body["retrieved"][0])


def test_ask_follow_up_uses_history_and_filters(client: TestClient) -> None:
    earlier = "What did Finance and Economics conclude at the end of 2014?"
    first = client.post("/v1/ask", json={"question": earlier})
    assert first.status_code == 200
    history = [
        {"role": "user", "content": earlier},
        {"role": "assistant", "content": first.json()["answer"]},
    ]
    r = client.post("/v1/ask", json={"question": "What did it conclude?", "history": history})
    assert r.status_code == 200
    body = r.json()
    assert "Finance and Economics" in body["standalone_query"]
    assert not body["refused"]
    r = client.post("/v1/ask", json={
        "question": QUESTION, "filters": {"doc_id": [ARTICLE]},
    })
    assert r.status_code == 200
    assert {p["doc_id"] for p in r.json()["retrieved"]} == {ARTICLE}


def test_refusal_is_a_normal_answer(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": "Who won the 2018 football world cup?"})
    assert r.status_code == 200
    assert r.json()["refused"] is True and r.json()["citations"] == []


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "x" * 2001}, "question"),
        ({}, "question"),
        ({"question": QUESTION, "history": [{"role": "system", "content": "hi"}]}, "history"),
        ({"question": QUESTION, "filters": {"color": ["red"]}}, "filters"),
        ({"question": QUESTION, "answerer": "oracle"}, "answerer"),
    ],
)
def test_ask_rejects_bad_bodies_with_422(client: TestClient, payload: dict[str, Any], field: str) -> None:
    r = client.post("/v1/ask", json=payload)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"].startswith("invalid request") and field in body["error"]
    assert "x" * 100 not in r.text  # an over-long question is not echoed back


def test_ask_rejects_broken_json(client: TestClient) -> None:
    r = client.post("/v1/ask", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert "error" in r.json()


def test_stream_final_citations_equal_the_plain_answer(client: TestClient) -> None:
    plain = client.post("/v1/ask", json={"question": QUESTION}).json()
    with client.stream("POST", "/v1/ask/stream", json={"question": QUESTION}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.read().decode("utf-8"))
    names = [name for name, _ in events]
    assert names[0] == "meta" and names[-2:] == ["citations", "done"]
    assert set(names[1:-2]) == {"delta"} and len(names) > 4
    assert events[0][1]["retrieved"] == plain["retrieved"]
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    final = events[-2][1]
    assert streamed == final["answer"] == plain["answer"]
    assert final["citations"] == plain["citations"]
    assert final["refused"] is plain["refused"] is False


def test_stream_validates_like_ask(client: TestClient) -> None:
    r = client.post("/v1/ask/stream", json={"question": "x" * 5000})
    assert r.status_code == 422


def test_answer_pieces_join_back() -> None:
    samples = ["", "One two three four five six seven [1]", "资料中没有提到这一点。" * 9 + "[2]", "a  b\n\nc"]
    for text in samples:
        pieces = answer_pieces(text)
        assert "".join(pieces) == text
        assert all(len(p) <= 64 for p in pieces)


# ---------------------------------------------------------------------------------------
# OpenAI-compatible routes
# ---------------------------------------------------------------------------------------


def test_models_lists_briefing_qa(client: TestClient) -> None:
    r = client.get("/v1/models")
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == ["briefing-qa"]
    assert client.get("/v1/models/briefing-qa").json()["id"] == "briefing-qa"
    assert client.get("/v1/models/gpt-4").status_code == 404


def test_importing_the_app_loads_nothing_heavy(subprocess_env: dict[str, str]) -> None:
    import subprocess
    import sys

    code = (
        "import sys, service.shell.app\n"
        "app = service.shell.app.create_app(service.shell.app.Settings(store_dir='/nonexistent'))\n"
        "names = ('chromadb', 'torch', 'sentence_transformers', 'service.engine.chain')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True,
                         timeout=120, cwd=str(BUNDLED_MANIFEST.parents[2]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_chat_completions_plain_and_streamed(client: TestClient) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    r = client.post("/v1/chat/completions", json={"model": "briefing-qa", "messages": messages})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "briefing-qa"
    content = body["choices"][0]["message"]["content"]
    assert "[1]" in content and body["choices"][0]["finish_reason"] == "stop"
    assert body["citations"][0]["n"] == 1 and body["briefing"]["answer"] == content
    assert body["usage"]["total_tokens"] > 0

    with client.stream("POST", "/v1/chat/completions",
                       json={"model": "briefing-qa", "messages": messages, "stream": True}) as s:
        assert s.status_code == 200
        events = parse_sse(s.read().decode("utf-8"))
    assert events[-1][1] == "[DONE]"
    chunks = [data for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == content
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["citations"] == body["citations"]


def test_chat_completions_errors(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "hello"}]})
    assert r.status_code == 422 and "last message" in r.json()["error"]
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "y" * 2500}]})
    assert r.status_code == 422 and "y" * 50 not in r.text
    r = client.post("/v1/chat/completions", json={"messages": []})
    assert r.status_code == 422


def test_openai_client_against_a_real_server(live_server: Any) -> None:
    from openai import AuthenticationError, OpenAI

    ai = OpenAI(base_url=f"{live_server.url}/v1", api_key=API_KEY, max_retries=0, timeout=60)
    assert [m.id for m in ai.models.list()] == ["briefing-qa"]
    reply = ai.chat.completions.create(model="briefing-qa", messages=[{"role": "user", "content": QUESTION}])
    content = reply.choices[0].message.content or ""
    assert "[1]" in content and "Pacific Fleet" in content
    extra = reply.model_extra or {}
    assert extra["citations"][0]["n"] == 1

    pieces: list[str] = []
    final: dict[str, Any] = {}
    stream = ai.chat.completions.create(
        model="briefing-qa", stream=True,
        messages=[{"role": "user", "content": "What did the Izvestiya headline say?"},
                  {"role": "assistant", "content": "It named a threat."},
                  {"role": "user", "content": QUESTION}],
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.model_extra and "citations" in chunk.model_extra:
            final = chunk.model_extra
    assert "[1]" in "".join(pieces)
    assert "".join(pieces) == content
    assert final["citations"] == extra["citations"]

    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{live_server.url}/v1", api_key="wrong", max_retries=0).models.list()


# ---------------------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------------------


def test_sources(client: TestClient) -> None:
    r = client.get("/v1/sources")
    assert r.status_code == 200
    items = {s["source_id"]: s for s in r.json()}
    assert items[ARTICLE]["kind"] == "article"
    assert items[ARTICLE]["full_text"] is True
    izvestiya = items["izvestiya-missile-defense"]
    assert izvestiya["full_text"] is False
    assert izvestiya["original_title"] == "Генштаб: система ПРО США угрожает ядерным силам РФ и КНР"


def test_documents_list_and_show(client: TestClient) -> None:
    r = client.get("/v1/documents")
    assert r.status_code == 200
    ids = [d["doc_id"] for d in r.json()]
    assert ids[0] == ARTICLE
    assert "izvestiya-missile-defense.quoted" in ids
    assert "text" not in r.json()[0]
    assert "text" in client.get("/v1/documents", params={"with_text": "true"}).json()[0]

    answer = client.post("/v1/ask", json={"question": QUESTION}).json()
    cite = answer["citations"][0]
    doc = client.get(f"/v1/documents/{cite['doc_id']}").json()
    assert doc["text"][cite["start"]:cite["end"]] == cite["quote"]
    assert doc["metadata"]["title"] == cite["title"]


def test_unknown_document_is_404(client: TestClient) -> None:
    r = client.get("/v1/documents/no-such-doc")
    assert r.status_code == 404
    assert r.json()["error"] == "no document with id 'no-such-doc'"
    assert r.json()["request_id"] == r.headers["x-request-id"]
    assert client.get("/v1/nothing-here").status_code == 404


# ---------------------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------------------


def test_api_key_required_when_configured(make_client: Any) -> None:
    with make_client(api_key=API_KEY) as c:
        for method, path, kw in [
            ("GET", "/v1/sources", {}), ("GET", "/v1/documents", {}), ("GET", "/v1/models", {}),
            ("POST", "/v1/ask", {"json": {"question": QUESTION}}),
            ("POST", "/v1/ask/stream", {"json": {"question": QUESTION}}),
            ("POST", "/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": QUESTION}]}}),
        ]:
            missing = c.request(method, path, **kw)
            assert missing.status_code == 401, path
            assert missing.headers["www-authenticate"] == "Bearer"
            assert "API key" in missing.json()["error"]
            wrong = c.request(method, path, headers=auth("not-the-key"), **kw)
            assert wrong.status_code == 401, path
            assert c.request(method, path, headers=auth(API_KEY), **kw).status_code == 200, path
        assert c.get("/v1/sources", headers={"X-API-Key": API_KEY}).status_code == 200
        assert c.get("/v1/sources", headers={"Authorization": f"Basic {API_KEY}"}).status_code == 401
        # Health, readiness and the page stay open.
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/").status_code == 200


def test_admin_key_guards_ingest_and_delete(make_client: Any) -> None:
    with make_client(api_key=API_KEY, admin_key=ADMIN_KEY) as c:
        upload = {"files": ("note.txt", b"A short note about nothing in particular.", "text/plain")}
        for headers in ({}, auth(API_KEY), auth("wrong")):
            assert c.post("/v1/ingest", files=upload, headers=headers).status_code == 401
            assert c.delete("/v1/documents/anything", headers=headers).status_code == 401
        # The admin key passes both checks (unknown id -> 404 means auth succeeded).
        assert c.delete("/v1/documents/anything", headers=auth(ADMIN_KEY)).status_code == 404
        assert c.get("/v1/sources", headers=auth(ADMIN_KEY)).status_code == 200


def test_admin_routes_fall_back_to_the_api_key_then_open(make_client: Any) -> None:
    with make_client(api_key=API_KEY) as c:
        assert c.delete("/v1/documents/anything").status_code == 401
        assert c.delete("/v1/documents/anything", headers=auth(API_KEY)).status_code == 404
    with make_client() as c:
        assert c.delete("/v1/documents/anything").status_code == 404
    with make_client(admin_key=ADMIN_KEY) as c:
        assert c.get("/v1/sources").status_code == 200
        assert c.delete("/v1/documents/anything").status_code == 401
        assert c.delete("/v1/documents/anything", headers={"X-API-Key": ADMIN_KEY}).status_code == 404


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "briefing.example"])
def test_writes_refused_when_shared_without_an_admin_key(make_client: Any, host: str) -> None:
    upload = {"files": ("shared-note.txt", b"A note about the harbour cranes of Rason.", "text/plain")}
    with make_client(host=host) as c:
        for r in (c.post("/v1/ingest", files=upload), c.delete("/v1/documents/anything"),
                  c.post("/v1/ingest", json={"manifest": str(BUNDLED_MANIFEST)})):
            assert r.status_code == 403, r.text
            assert set(r.json()) == {"error", "request_id"}
            assert "BRIEFING_ADMIN_KEY" in r.json()["error"]
        assert "shared-note" not in [d["doc_id"] for d in c.get("/v1/documents").json()]
        # Reading stays as configured: open here.
        assert c.get("/v1/sources").status_code == 200
        assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 200
    with make_client(host=host, api_key=API_KEY) as c:
        # The API key, which every reader holds, no longer opens the writing routes.
        assert c.delete("/v1/documents/anything", headers=auth(API_KEY)).status_code == 403
        assert c.delete("/v1/documents/anything").status_code == 401
        assert c.post("/v1/ask", json={"question": QUESTION}, headers=auth(API_KEY)).status_code == 200


def test_writes_work_when_shared_with_an_admin_key(make_client: Any) -> None:
    upload = {"files": ("shared-note.txt", b"A note about the 44 harbour cranes of Rason.", "text/plain")}
    with make_client(host="0.0.0.0", admin_key=ADMIN_KEY) as c:
        assert c.post("/v1/ingest", files=upload).status_code == 401
        r = c.post("/v1/ingest", files=upload, headers=auth(ADMIN_KEY))
        assert r.status_code == 200 and r.json()["doc_ids"] == ["shared-note"], r.text
        try:
            assert c.get("/v1/documents/shared-note").status_code == 200
        finally:
            r = c.delete("/v1/documents/shared-note", headers=auth(ADMIN_KEY))
        assert r.status_code == 200 and r.json()["deleted"] is True
        assert c.delete("/v1/documents/shared-note", headers=auth(ADMIN_KEY)).status_code == 404


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_writes_on_a_loopback_address_are_as_before(make_client: Any, host: str) -> None:
    with make_client(host=host) as c:
        assert c.delete("/v1/documents/anything").status_code == 404  # open: auth passed
    with make_client(host=host, api_key=API_KEY) as c:
        assert c.delete("/v1/documents/anything").status_code == 401
        assert c.delete("/v1/documents/anything", headers=auth(API_KEY)).status_code == 404


def test_loopback_hosts() -> None:
    from service.shell.http_limits import is_loopback_host

    for host in ("127.0.0.1", "127.255.0.9", "::1", "[::1]", "localhost", "LocalHost", "::ffff:127.0.0.1"):
        assert is_loopback_host(host), host
    for host in ("0.0.0.0", "::", "", "10.0.0.5", "192.168.1.20", "fe80::1", "briefing.example",
                 "localhost.evil.example"):
        assert not is_loopback_host(host), host


def test_serve_warns_and_passes_the_bind_address_and_header_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from service.shell.cli import app as cli_app

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    for key in ("BRIEFING_CHROMA_URL", "BRIEFING_ADMIN_KEY", "BRIEFING_API_KEY", "BRIEFING_MAX_HEADER_BYTES"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("BRIEFING_STORE_DIR", str(tmp_path))
    monkeypatch.setenv("BRIEFING_HOST", "127.0.0.1")  # restored after the test; serve overwrites it

    shared = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0"])
    assert shared.exit_code == 0, shared.output
    assert "warning: listening on 0.0.0.0" in shared.output and "BRIEFING_ADMIN_KEY" in shared.output
    assert calls[-1]["host"] == "0.0.0.0"
    # The app factory runs in the server (and in each worker process) and reads the address from here.
    import os

    assert os.environ["BRIEFING_HOST"] == "0.0.0.0"
    assert calls[-1]["http"] == "h11" and calls[-1]["h11_max_incomplete_event_size"] == 65536

    monkeypatch.setenv("BRIEFING_ADMIN_KEY", ADMIN_KEY)
    keyed = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0"])
    assert keyed.exit_code == 0 and "warning" not in keyed.output
    monkeypatch.delenv("BRIEFING_ADMIN_KEY")
    local = CliRunner().invoke(cli_app, ["serve", "--host", "127.0.0.1"])
    assert local.exit_code == 0 and "warning" not in local.output
    assert os.environ["BRIEFING_HOST"] == "127.0.0.1"


# ---------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------


def test_header_limit_answers_431(make_client: Any) -> None:
    with make_client() as c:
        big = c.get("/v1/models", headers={"X-Padding": "a" * 70_000})
        assert big.status_code == 431
        assert "65536" in big.json()["error"] and big.headers["x-request-id"] == big.json()["request_id"]
        many = c.get("/v1/models", headers={f"X-Pad-{i}": "b" * 100 for i in range(700)})
        assert many.status_code == 431
        assert c.get("/v1/models", headers={"X-Padding": "a" * 60_000}).status_code == 200
        assert c.get("/healthz", headers={"X-Padding": "a" * 70_000}).status_code == 431


def test_body_limit_with_content_length(make_client: Any) -> None:
    with make_client(max_body_bytes=2048) as c:
        body = json.dumps({"question": "q", "history": [{"role": "user", "content": "z" * 4000}]}).encode()
        r = c.post("/v1/ask", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert "2048" in r.json()["error"]
        assert r.headers["x-request-id"]


def test_body_limit_for_a_chunked_body(make_client: Any) -> None:
    def body() -> Any:
        yield b'{"question": "q", "history": [{"role": "user", "content": "'
        for _ in range(50):
            yield b"z" * 1000
        yield b'"}]}'

    with make_client(max_body_bytes=4096) as c:
        r = c.post("/v1/ask", content=body(), headers={"Content-Type": "application/json"})
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert r.request.headers["transfer-encoding"] == "chunked"
        assert r.status_code == 413
        assert "4096" in r.json()["error"]


def test_body_limit_stops_reading_once_passed() -> None:
    """At the ASGI level: chunks are counted as they arrive and reading stops at the limit."""
    import asyncio

    from service.shell.http_limits import BodySizeLimitMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    pulled: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        pulled.append(1)
        return {"type": "http.request", "body": b"z" * 1000, "more_body": len(pulled) < 100}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/ask", "headers": []}
    asyncio.run(BodySizeLimitMiddleware(app, limit_for=lambda path: 4096)(scope, receive, send))
    assert sent[0]["status"] == 413
    assert len(pulled) == 5  # the fifth chunk passed 4096 bytes; nothing more was read


def test_upload_limit(make_client: Any) -> None:
    with make_client(max_upload_bytes=4096) as c:
        big = {"files": ("big.txt", b"word " * 3000, "text/plain")}
        assert c.post("/v1/ingest", files=big).status_code == 413


def test_rate_limit_answers_429_with_retry_after(make_client: Any) -> None:
    with make_client(rate_limit_per_minute=3) as c:
        codes = [c.get("/v1/models").status_code for _ in range(4)]
        assert codes[:3] == [200, 200, 200]
        assert codes[3] == 429
        r = c.get("/v1/models")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert "rate limit" in r.json()["error"]
        # Only /v1 routes are limited.
        assert c.get("/healthz").status_code == 200


def test_rate_limit_buckets_per_key(make_client: Any) -> None:
    with make_client(rate_limit_per_minute=2, api_key=API_KEY, admin_key=ADMIN_KEY) as c:
        assert [c.get("/v1/models", headers=auth(API_KEY)).status_code for _ in range(3)] == [200, 200, 429]
        assert c.get("/v1/models", headers=auth(ADMIN_KEY)).status_code == 200


def test_cors_only_for_configured_origins(make_client: Any) -> None:
    with make_client(cors_origins=["http://analyst.example"]) as c:
        pre = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        ok = c.options("/v1/ask", headers={"Origin": "http://analyst.example", **pre})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://analyst.example"
        assert "access-control-allow-credentials" not in ok.headers
        other = c.options("/v1/ask", headers={"Origin": "http://evil.example", **pre})
        assert other.headers.get("access-control-allow-origin") is None
    with make_client() as c:
        r = c.get("/v1/models", headers={"Origin": "http://analyst.example"})
        assert "access-control-allow-origin" not in r.headers


# ---------------------------------------------------------------------------------------
# Errors never leak
# ---------------------------------------------------------------------------------------


def test_unexpected_error_is_a_bare_500(make_client: Any, store_dir: Any) -> None:
    from .conftest import make_settings

    with make_client(qa=ExplodingQA(make_settings(store_dir))) as c:
        r = c.post("/v1/ask", json={"question": QUESTION})
        assert r.status_code == 500
        body = r.json()
        assert set(body) == {"error", "request_id"}
        assert body["error"] == "internal error"
        assert body["request_id"] == r.headers["x-request-id"]
        for leaked in ("secret", "/etc/path", "Traceback", "RuntimeError", "api.py"):
            assert leaked not in r.text


def test_secrets_never_in_error_bodies(make_client: Any, store_dir: Any) -> None:
    from .conftest import make_settings

    bodies: list[str] = []
    limits = {"max_body_bytes": 2048, "rate_limit_per_minute": 30}
    with make_client(api_key=API_KEY, admin_key=ADMIN_KEY, **limits) as c:
        bodies.append(c.get("/v1/sources").text)
        bodies.append(c.get("/v1/sources", headers=auth(API_KEY + "x")).text)
        bodies.append(c.post("/v1/ingest", headers=auth(API_KEY), json={"manifest": "x.yaml"}).text)
        bodies.append(c.get("/v1/documents/nope", headers=auth(API_KEY)).text)
        bodies.append(c.post("/v1/ask", headers=auth(API_KEY), json={"question": ""}).text)
        bodies.append(c.post("/v1/ask", headers=auth(API_KEY), content=b"x" * 5000).text)
        bodies.append(c.post("/v1/ingest", headers=auth(ADMIN_KEY), json={"manifest": "/nope/m.txt"}).text)
    with make_client(qa=ExplodingQA(make_settings(store_dir)), api_key=API_KEY) as c:
        bodies.append(c.post("/v1/ask", headers=auth(API_KEY), json={"question": QUESTION}).text)
    assert len(bodies) == 8
    for text in bodies:
        assert API_KEY not in text and ADMIN_KEY not in text
        assert "error" in json.loads(text)


# ---------------------------------------------------------------------------------------
# Ingest and delete
# ---------------------------------------------------------------------------------------

FERRY = (
    "Zelenograd ferry log\n\n"
    "The Zelenograd ferry carried 340 crates of apples from Vladivostok to Rason in May 2017.\n"
)
FERRY_QUESTION = "What did the Zelenograd ferry carry to Rason?"


def test_upload_makes_a_document_answerable_and_delete_removes_it(client: TestClient) -> None:
    upload = ("../../etc/ferry log.txt", FERRY.encode(), "text/plain")
    r = client.post("/v1/ingest", files=[("files", upload)])
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["documents"] == 1 and report["chunks_added"] >= 1 and report["errors"] == []
    assert report["doc_ids"] == ["ferry-log"]
    try:
        assert "ferry-log" in [d["doc_id"] for d in client.get("/v1/documents").json()]
        stored = client.get("/v1/documents/ferry-log").json()
        assert stored["text"] == FERRY
        assert "/etc/" not in stored["metadata"].get("path", "")
        answer = client.post("/v1/ask", json={"question": FERRY_QUESTION}).json()
        assert not answer["refused"] and "340 crates" in answer["answer"]
        assert answer["citations"][0]["doc_id"] == "ferry-log"
        # Ingesting the same file again changes nothing.
        again = client.post("/v1/ingest", files={"files": ("ferry log.txt", FERRY.encode())}).json()
        assert again["chunks_added"] == 0 and again["chunks_unchanged"] >= 1
    finally:
        r = client.delete("/v1/documents/ferry-log")
    assert r.status_code == 200 and r.json()["deleted"] is True and r.json()["chunks_removed"] >= 1
    assert client.get("/v1/documents/ferry-log").status_code == 404
    assert client.delete("/v1/documents/ferry-log").status_code == 404
    after = client.post("/v1/ask", json={"question": FERRY_QUESTION}).json()
    assert all(c["doc_id"] != "ferry-log" for c in after["citations"])


def test_bad_files_are_per_file_errors(client: TestClient) -> None:
    r = client.post("/v1/ingest", files=[
        ("files", ("blob.txt", bytes(range(256)) * 16, "text/plain")),
        ("files", ("empty.md", b"", "text/markdown")),
        ("files", ("program.exe", b"MZ\x90\x00", "application/octet-stream")),
        ("files", (f"{ARTICLE}.txt", b"replacement text", "text/plain")),
    ])
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["documents"] == 0 and report["doc_ids"] == []
    errors = {e["path"]: e["error"] for e in report["errors"]}
    assert set(errors) == {"blob.txt", "empty.md", "program.exe", f"{ARTICLE}.txt"}
    assert "binary" in errors["blob.txt"]
    assert "replace the article" in errors[f"{ARTICLE}.txt"]
    assert "briefing-upload-" not in r.text  # the server's temporary folder is not shown
    # The article is untouched.
    assert "replacement text" not in client.get(f"/v1/documents/{ARTICLE}").json()["text"]


def test_ingest_manifest_on_the_server_is_idempotent(client: TestClient) -> None:
    r = client.post("/v1/ingest", json={"manifest": str(BUNDLED_MANIFEST)})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["documents"] >= 7 and report["chunks_added"] == 0 and report["errors"] == []


def test_ingest_request_errors(client: TestClient) -> None:
    assert client.post("/v1/ingest", json={}).status_code == 422
    assert client.post("/v1/ingest", json={"manifest": "a.yaml", "extra": 1}).status_code == 422
    assert client.post("/v1/ingest", json={"manifest": "/etc/passwd"}).status_code == 422
    plain = client.post("/v1/ingest", content=b"hello", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 422
    stray = client.post("/v1/ingest", data={"source_id": "x"}, files={"other": ("a.txt", b"a")})
    assert stray.status_code == 422 and "unknown form field" in stray.json()["error"]
    r = client.post("/v1/ingest", data={"source_id": "no-such-source"},
                    files={"files": ("a.txt", b"Some text here.", "text/plain")})
    assert r.status_code == 400 and "unknown source id" in r.json()["error"]
    r = client.post("/v1/ingest", json={"manifest": "/nonexistent/manifest.yaml"})
    assert r.status_code == 200 and r.json()["errors"]


def test_upload_linked_to_a_cited_source(client: TestClient) -> None:
    text = ("Известия\n\nГенштаб: система ПРО США угрожает ядерным силам РФ и КНР. "
            "Представители Генштаба заявили о новой угрозе.\n")
    r = client.post("/v1/ingest", data={"source_id": "izvestiya-missile-defense"},
                    files={"files": ("izvestiya.txt", text.encode(), "text/plain")})
    assert r.status_code == 200, r.text
    assert r.json()["doc_ids"] == ["izvestiya-missile-defense"]
    try:
        sources = {s["source_id"]: s for s in client.get("/v1/sources").json()}
        assert sources["izvestiya-missile-defense"]["full_text"] is True
    finally:
        assert client.delete("/v1/documents/izvestiya-missile-defense").status_code == 200
    sources = {s["source_id"]: s for s in client.get("/v1/sources").json()}
    assert sources["izvestiya-missile-defense"]["full_text"] is False


def test_safe_filename() -> None:
    assert safe_filename("../../etc/passwd", 1) == "passwd"
    assert safe_filename("..\\..\\win\\Evil Name.TXT", 1) == "Evil-Name.txt"
    assert safe_filename(".hidden.md", 1) == "hidden.md"
    assert safe_filename("环球时报.txt", 3) == "upload-3.txt"
    assert safe_filename(None, 2) == "upload-2"
    assert "/" not in safe_filename("a/b/../../c.txt", 1)


# ---------------------------------------------------------------------------------------
# Page, static files, OpenAPI, serve
# ---------------------------------------------------------------------------------------


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/v1/ask", "/v1/ask/stream", "/v1/chat/completions", "/v1/models", "/v1/sources",
                 "/v1/documents", "/v1/documents/{doc_id}", "/v1/ingest", "/healthz", "/readyz"):
        assert path in spec["paths"], path
    assert spec["paths"]["/v1/ask"]["post"]["requestBody"]
    assert client.get("/docs").status_code == 200


def test_serve_refuses_several_workers_on_a_local_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from service.shell.cli import app as cli_app

    monkeypatch.delenv("BRIEFING_CHROMA_URL", raising=False)
    monkeypatch.setenv("BRIEFING_STORE_DIR", str(tmp_path))
    result = CliRunner().invoke(cli_app, ["serve", "--workers", "3"])
    assert result.exit_code == 2
    assert "BRIEFING_CHROMA_URL" in result.output and "one writer" in result.output


def test_live_server_answers_over_a_socket(live_server: Any) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/v1/sources").status_code == 401
        with http.stream("POST", "/v1/ask/stream", headers=auth(API_KEY), json={"question": QUESTION}) as r:
            events = parse_sse(r.read().decode("utf-8"))
        assert [n for n, _ in events][-2:] == ["citations", "done"]
