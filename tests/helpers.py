"""Small pieces several test modules need: a free loopback port, the `chroma` executable, a
`briefing serve` process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_executable() -> str:
    beside = Path(sys.executable).parent / "chroma"
    if beside.exists():
        return str(beside)
    found = shutil.which("chroma")
    if found is None:
        pytest.fail(f"no `chroma` executable next to {sys.executable} or on PATH")
    return found


@contextlib.contextmanager
def serve_process(env: dict[str, str], log_path: Path, *args: str, wait_for: str = "/healthz",
                  timeout: float = 180.0) -> Iterator[str]:
    """`briefing serve --host 127.0.0.1 --port FREE [args]` as a process of its own; yields its URL once
    `wait_for` answers 200, and stops it (SIGTERM, then SIGKILL) afterwards."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    briefing = str(Path(sys.executable).parent / "briefing")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [briefing, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"briefing serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + wait_for, timeout=5, trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{url}{wait_for} not 200 within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
