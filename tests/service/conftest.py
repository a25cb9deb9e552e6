"""Fixtures for the HTTP service: one store with the bundled briefing, an app built on it, a real
uvicorn server on 127.0.0.1 for the clients that need a socket (the `openai` package, Chromium)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.shell.app import create_app
from briefing_core.settings import Settings

ARCTIC_MANIFEST = Path(__file__).resolve().parents[1] / "fixtures" / "arctic" / "manifest.yaml"
"""The second briefing of the tests (not in the default corpus)."""
API_KEY = "test-api-key-7f3a"
ADMIN_KEY = "test-admin-key-91c2"
READY_TIMEOUT_S = 120.0


def make_settings(store_dir: Path, **overrides: Any) -> Settings:
    """Settings for one test app; HTTP fields are explicit so the machine's BRIEFING_* cannot leak in."""
    values: dict[str, Any] = {
        "store_dir": store_dir,
        "chroma_url": None,
        "collection": "briefing",
        "embedder": "use-multilingual",
        "answerer": "extractive",
        "api_key": None,
        "admin_key": None,
        "cors_origins": [],
        "rate_limit_per_minute": 0,
        "lock_timeout_s": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


def wait_ready(client: Any, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = client.get("/readyz")
        if last.status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"service not ready in {timeout:.0f} s: {last.status_code if last else None} "
                         f"{last.text if last else ''}")


def with_briefings(settings: Settings, embedder: Any, *manifests: Path) -> Settings:
    """The bundled briefing, then each manifest's, ingested into the settings' store."""
    from ingest.pipeline import ingest

    for manifest in (None, *manifests):
        report = ingest(settings, manifest_path=manifest, embedder=embedder, overlap=False)
        assert not report.errors, report.errors
    return settings


@contextlib.contextmanager
def serving(app: Any) -> Iterator[LiveServer]:
    """A real uvicorn server for the app, ready, stopped afterwards."""
    import httpx

    server = LiveServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            wait_ready(http)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("briefing-store")


@pytest.fixture(scope="session")
def base_settings(store_dir: Path) -> Settings:
    """The bundled briefing, ingested into a fresh store."""
    from ingest.pipeline import ingest

    settings = make_settings(store_dir)
    report = ingest(settings)
    assert report.documents >= 7, report.to_dict()
    assert not report.errors, report.errors
    return settings


@pytest.fixture(scope="session")
def app(base_settings: Settings) -> Any:
    return create_app(base_settings)


@pytest.fixture(scope="session")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture(scope="session")
def loaded_qa(client: TestClient) -> Any:
    """The BriefingQA the main app loaded; other test apps share it instead of loading models again."""
    return client.app.state.briefing.qa


@contextlib.contextmanager
def app_client(settings: Settings, qa: Any, wait: bool = True, **client_kwargs: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings, qa=qa), **client_kwargs) as test_client:
        if wait:
            wait_ready(test_client)
        yield test_client


@pytest.fixture
def make_client(store_dir: Path, loaded_qa: Any) -> Any:
    """make_client(**settings_overrides) -> a context manager giving a TestClient on a new app."""

    def factory(qa: Any = None, wait: bool = True, **overrides: Any) -> Any:
        return app_client(make_settings(store_dir, **overrides), qa or loaded_qa, wait=wait)

    return factory


class LiveServer:
    """uvicorn in a thread, on a free port of 127.0.0.1 chosen by the OS."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="uvicorn-test", daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@pytest.fixture(scope="session")
def live_server(store_dir: Path, loaded_qa: Any) -> Iterator[LiveServer]:
    """A real server with an API key and an admin key."""
    settings = make_settings(store_dir, api_key=API_KEY, admin_key=ADMIN_KEY, rate_limit_per_minute=600)
    with serving(create_app(settings, qa=loaded_qa)) as server:
        yield server
