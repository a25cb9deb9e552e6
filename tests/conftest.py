"""Fixtures shared by the whole test tree.

* `settings_factory` / `tmp_settings`: `Settings` on a fresh store under `tmp_path`, with no
  `BRIEFING_*` variable of the caller's shell leaking in.
* `chroma_server`: a real `chroma run` server (one a session) on a free loopback port; yields its URL.
* `subprocess_env`: an environment for child processes (the `briefing` CLI, helper scripts) that
  carries the same network guard as the test process.
* An autouse guard: any connection to a non-loopback address (or lookup of a non-local host
  name) raises `NetworkBlocked`, so no test can download something without failing loudly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import chroma_executable, free_port

# ---------------------------------------------------------------------------------------
# Network guard (also written into child processes as a sitecustomize module)
# ---------------------------------------------------------------------------------------

_GUARD = r'''
import ipaddress, socket

class NetworkBlocked(RuntimeError):
    """A test tried to reach the network."""

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


def _is_local_host(host):
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).split("%")[0].strip("[]")
    if host.lower() in _LOCAL_NAMES or host == socket.gethostname():
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _check(address):
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return
    if isinstance(address, tuple) and address and not _is_local_host(address[0]):
        raise NetworkBlocked(f"test tried to connect to {address!r}: tests must not use the network")


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def guarded_connect(self, address):
    _check(address)
    return _real_connect(self, address)


def guarded_connect_ex(self, address):
    _check(address)
    return _real_connect_ex(self, address)


def guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_local_host(host):
        raise NetworkBlocked(f"test tried to resolve {host!r}: tests must not use the network")
    return _real_getaddrinfo(host, *args, **kwargs)


def install():
    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket.getaddrinfo = guarded_getaddrinfo
'''

_guard: dict[str, Any] = {}
exec(compile(_GUARD, "<network guard>", "exec"), _guard)
NetworkBlocked = _guard["NetworkBlocked"]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guard["guarded_connect"])
    monkeypatch.setattr(socket.socket, "connect_ex", _guard["guarded_connect_ex"])
    monkeypatch.setattr(socket, "getaddrinfo", _guard["guarded_getaddrinfo"])


@pytest.fixture(scope="session")
def subprocess_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A base environment for child processes: no BRIEFING_* settings from the caller, no
    downloads (HF offline), no telemetry, and the network guard loaded through sitecustomize.
    Copy it and add what a test needs: `env = {**subprocess_env, "BRIEFING_STORE_DIR": ...}`."""
    guard_dir = tmp_path_factory.mktemp("netguard")
    (guard_dir / "sitecustomize.py").write_text(_GUARD + "\ninstall()\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIEFING_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(guard_dir), env.get("PYTHONPATH")]))
    env.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
        PYTHONUNBUFFERED="1", NO_COLOR="1",
    )
    return env


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------


@pytest.fixture
def settings_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """`make(name="store", **fields)` -> Settings(store_dir=tmp_path/name, **fields)."""
    for key in list(os.environ):
        if key.startswith("BRIEFING_"):
            monkeypatch.delenv(key)
    from briefing_core.settings import Settings

    def make(name: str = "store", **fields: Any) -> Settings:
        fields.setdefault("store_dir", tmp_path / name)
        return Settings(**fields)

    return make


@pytest.fixture
def tmp_settings(settings_factory: Callable[..., Any]) -> Any:
    return settings_factory()


# ---------------------------------------------------------------------------------------
# A real Chroma server
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory, subprocess_env: dict[str, str]) -> Iterator[str]:
    """URL of a real Chroma server (`chroma run`) on a free loopback port, for the session."""
    import httpx

    base = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = base / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [chroma_executable(), "run", "--path", str(base / "data"), "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=subprocess_env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma server exited with {proc.returncode}:\n{_tail(log_path)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=2, trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"chroma server at {url} did not answer within 60 s:\n{_tail(log_path)}")
            time.sleep(0.2)
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
