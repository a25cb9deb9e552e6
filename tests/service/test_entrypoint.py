"""The container's start script, run directly (no Docker engine runs here), and the Dockerfile's shape."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_entrypoint_ingests_the_bundled_briefing_and_serves_it(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "BRIEFING_STORE_DIR": str(tmp_path / "store"),
        "BRIEFING_HOST": "127.0.0.1",
        "BRIEFING_PORT": str(port),
    }
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(["sh", str(ROOT / "service" / "shell" / "docker-entrypoint.sh")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready:
                break
            time.sleep(0.5)
        assert ready, (tmp_path / "server.log").read_text()[-3000:]
        answer = httpx.post(f"{base}/v1/ask", json={"question": "What did Chinese TV news praise?"}, timeout=30)
        assert answer.status_code == 200
        assert "Pacific Fleet" in answer.json()["answer"]
        sources = httpx.get(f"{base}/v1/sources", timeout=10).json()
        assert len([s for s in sources if s["kind"] == "cited"]) == 6
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_dockerfile_installs_dependencies_before_the_code_and_checks_health() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip()]
    first_code_copy = next(i for i, ln in enumerate(lines) if ln.startswith("COPY service"))
    dependency_install = next(i for i, ln in enumerate(lines) if "pip install -r" in ln)
    assert dependency_install < first_code_copy, "the dependency layer must come before the code"
    assert any(ln.startswith("COPY pyproject.toml") for ln in lines[:dependency_install])
    assert any("torch==2.13.0" in ln for ln in lines[:dependency_install]), "torch pinned and first"
    assert any(ln.startswith("HEALTHCHECK") for ln in lines)
    assert any(ln.startswith("ENTRYPOINT") and "docker-entrypoint.sh" in ln for ln in lines)
    assert any(ln.startswith("COPY corpus") for ln in lines), "the image serves the bundled briefing"
    assert os.access(ROOT / "service" / "shell" / "docker-entrypoint.sh", os.X_OK)
