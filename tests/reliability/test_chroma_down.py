"""The Chroma server goes away under a running service (server mode, BRIEFING_CHROMA_URL).

A real `chroma run` on a loopback port and a data directory this module controls, so it can be
stopped and started again on the same port and path:

* up: ingest, /readyz 200, /v1/ask 200;
* stopped: /readyz 503 and /v1/ask 503 (and the catalog routes 503) with `{error, request_id}` saying
  the store does not answer, each within a few seconds; /healthz stays 200; every Store method raises
  StoreUnavailable, never a transport error (which would be a 500);
* started again on the same port and path: the same service (no restart) answers /readyz 200 and
  /v1/ask 200 with the same answer;
* frozen (SIGSTOP: the port accepts connections but nothing answers): the same 503s, within the HTTP
  timeout the store sets on the Chroma client; after SIGCONT it recovers;
* a service started while the server is down says 503 until the server comes up, then 200.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.pipeline import ingest
from service.shell.app import create_app
from briefing_core.errors import StoreUnavailable

from .conftest import ChromaServer, record_figures, service_settings, wait_status

pytestmark = [pytest.mark.slow, pytest.mark.chroma_server, pytest.mark.timeout(900)]

QUESTION = "What did Chinese TV news praise at the end of March 2017?"
DOWN_ANSWER_S = 10.0  # a 503 must come back well within this (connection refused is immediate)
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, subprocess_env: dict[str, str]
) -> Iterator[ChromaServer]:
    base = tmp_path_factory.mktemp("chroma-down")
    srv = ChromaServer(base / "data", subprocess_env)
    FIGURES["first_start_s"] = round(srv.start(), 2)
    try:
        yield srv
    finally:
        srv.stop()
        record_figures("chroma-down", FIGURES)


@pytest.fixture(scope="module")
def settings(server: ChromaServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    local = tmp_path_factory.mktemp("unused-local")
    s = service_settings(local, chroma_url=server.url, collection="down-test")
    report = ingest(s)
    assert report.errors == [] and report.chunks_added > 0
    return s


def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def _assert_unavailable(r: Any, elapsed: float) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert "does not answer" in body["error"], body
    assert r.headers.get("retry-after")
    assert elapsed < DOWN_ANSWER_S, f"took {elapsed:.1f} s"


def test_stopped_server_gives_503_then_the_service_recovers_without_a_restart(
    server: ChromaServer, settings: Any
) -> None:
    with TestClient(create_app(settings)) as c:
        wait_status(c, "/readyz", 200, 120)
        first = c.post("/v1/ask", json={"question": QUESTION})
        assert first.status_code == 200 and not first.json()["refused"], first.text

        server.stop()
        r, readyz_s = _timed(lambda: c.get("/readyz"))
        _assert_unavailable(r, readyz_s)
        assert r.json()["status"] == "unavailable"
        asks = []
        # Right after a question (keyword index fresh: the vector query fails) and more than a second
        # later (the generation check fails first): both are 503.
        searcher = c.app.state.briefing.qa.searcher
        for pause in (0.0, 1.2, 0.0, 1.2):
            time.sleep(pause)
            if pause == 0.0:
                searcher._checked_at = time.monotonic()  # as if the index had just been checked
            r, elapsed = _timed(lambda: c.post("/v1/ask", json={"question": QUESTION}))
            _assert_unavailable(r, elapsed)
            assert set(r.json()) == {"error", "request_id"}
            asks.append(round(elapsed, 3))
        for path in ("/v1/documents", "/v1/sources", f"/v1/documents/{settings.collection}"):
            r, elapsed = _timed(lambda path=path: c.get(path))
            _assert_unavailable(r, elapsed)
        assert c.get("/healthz").status_code == 200
        FIGURES["stopped"] = {"readyz_s": round(readyz_s, 3), "ask_s": asks, "error": r.json()["error"]}

        restart_s = server.start()
        started = time.monotonic()
        wait_status(c, "/readyz", 200, 30)
        again = c.post("/v1/ask", json={"question": QUESTION})
        recovered_s = time.monotonic() - started
        assert again.status_code == 200, again.text
        assert again.json()["answer"] == first.json()["answer"]
        FIGURES["restarted"] = {
            "server_start_s": round(restart_s, 2), "service_recovered_s": round(recovered_s, 2),
        }


def test_every_store_call_maps_a_dead_server_to_store_unavailable(
    server: ChromaServer, settings: Any
) -> None:
    from briefing_core.store import open_store

    store = open_store(settings)
    doc_id = next(iter(store.document_metadata()))
    server.stop()
    try:
        calls = {
            "ping": store.ping, "generation": store.generation, "count_chunks": store.count_chunks,
            "document_metadata": store.document_metadata, "documents": store.documents,
            "get_document": lambda: store.get_document(doc_id),
            "chunk_ids_for": lambda: store.chunk_ids_for(doc_id),
            "all_chunk_metadata": store.all_chunk_metadata, "query": lambda: store.query([0.1] * 512, 3),
            "delete_chunks": lambda: store.delete_chunks(["nope"]),
        }
        for name, call in calls.items():
            with pytest.raises(StoreUnavailable, match="does not answer"):
                call()
                pytest.fail(f"{name} did not raise")
    finally:
        server.start()
    assert store.count_chunks() > 0, "the same Store object works again once the server is back"


def test_frozen_server_gives_503_within_the_http_timeout(
    server: ChromaServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import briefing_core.store

    monkeypatch.setattr(briefing_core.store, "CHROMA_HTTP_TIMEOUT_S", 3.0)
    with TestClient(create_app(settings)) as c:
        wait_status(c, "/readyz", 200, 120)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGSTOP)
        try:
            r, readyz_s = _timed(lambda: c.get("/readyz"))
            _assert_unavailable(r, readyz_s)
            time.sleep(1.2)
            r, ask_s = _timed(lambda: c.post("/v1/ask", json={"question": QUESTION}))
            _assert_unavailable(r, ask_s)
        finally:
            server.proc.send_signal(signal.SIGCONT)
        wait_status(c, "/readyz", 200, 30)
        assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 200
        FIGURES["frozen"] = {"http_timeout_s": 3.0, "readyz_s": round(readyz_s, 2), "ask_s": round(ask_s, 2)}


def test_service_started_while_the_server_is_down_becomes_ready_when_it_is_up(
    server: ChromaServer, settings: Any
) -> None:
    server.stop()
    try:
        with TestClient(create_app(settings)) as c:
            r = wait_status(c, "/readyz", 503, 30)
            deadline = time.monotonic() + 30
            while "error" not in r.json() and time.monotonic() < deadline:
                time.sleep(0.2)
                r = c.get("/readyz")
            assert "does not answer" in r.json().get("error", ""), r.json()
            assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 503
            server.start()
            started = time.monotonic()
            wait_status(c, "/readyz", 200, 60)  # the loader retries with a back-off of at most 30 s
            FIGURES["started_while_down"] = {"ready_after_server_up_s": round(time.monotonic() - started, 2)}
            assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 200
    finally:
        if server.proc is None:
            server.start()


def test_down_server_is_a_clear_cli_error(server: ChromaServer, settings: Any, subprocess_env: dict[str, str],
                                          tmp_path: Path) -> None:
    from .conftest import run_cli

    env = {**subprocess_env, "BRIEFING_CHROMA_URL": server.url, "BRIEFING_COLLECTION": settings.collection,
           "BRIEFING_STORE_DIR": str(tmp_path)}
    server.stop()
    try:
        proc, elapsed = _timed(lambda: run_cli(env, "docs", "--json", timeout=60))
    finally:
        server.start()
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert "does not answer" in proc.stderr and "Traceback" not in proc.stderr
    assert elapsed < 30
