"""`briefing serve` as its own process: what the server itself (uvicorn as the command configures it),
not only the app, does with an over-long request head."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import serve_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, subprocess_env: dict[str, str]) -> Iterator[str]:
    base = tmp_path_factory.mktemp("serve-process")
    env = {**subprocess_env, "BRIEFING_STORE_DIR": str(base / "store")}
    with serve_process(env, base / "serve.log", "--log-level", "warning") as url:
        yield url


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def send_raw(port: int, data: bytes, piece: int = 0, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Send `data` (in pieces of `piece` bytes with a pause between, when given); return what the
    server answered and whether it closed the connection (rather than leaving us waiting until
    `timeout`). A server that closes while the head is still being sent answers nothing."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            if piece:
                for i in range(0, len(data), piece):
                    sock.sendall(data[i : i + piece])
                    time.sleep(0.002)
            else:
                sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            return out, False
        except ConnectionResetError:
            pass
    return out, True


def status_of(answer: bytes) -> int:
    line = answer.split(b"\r\n", 1)[0]
    return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else 0


def head(*lines: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + b"".join(lines) + b"\r\n"


def test_serve_refuses_a_100_kb_header_and_goes_on_serving(served: str) -> None:
    port = _port(served)
    big = b"X-Big: " + b"a" * 100_000 + b"\r\n"
    many = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"b" * 90) for i in range(1_000))  # 100 KB in small lines
    answers = {
        "one 100 KB header, sent at once": send_raw(port, head(big)),
        "one 100 KB header, sent in 4 KB pieces": send_raw(port, head(big), piece=4096),
        "1000 headers of 100 bytes, sent at once": send_raw(port, head(many)),
        "1000 headers of 100 bytes, sent in 4 KB pieces": send_raw(port, head(many), piece=4096),
    }
    for name, (answer, closed) in answers.items():
        status = status_of(answer)
        # A refusal: 431 from the app for a head that arrived whole, 400 (or a closed connection)
        # from h11 for one still arriving past the limit. Never an answer, never a 5xx.
        assert status in (0, 400, 431), (name, answer[:300])
        assert closed, f"{name}: the server kept the connection open"
        if status == 431:
            assert b'"error": "request headers too large' in answer, answer
    assert any(status_of(a) for a, _ in answers.values()), "at least one refusal is an HTTP answer"

    # A head that never ends can only be stopped by the server's parser (the app never sees it):
    # without a bound, uvicorn's default parser buffers it all and waits for more.
    started = time.monotonic()
    endless = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"a" * 1_000_000
    answer, closed = send_raw(port, endless, piece=16_384)
    assert closed and status_of(answer) in (0, 400), answer[:300]
    assert time.monotonic() - started < 10

    # The server goes on: a normal request, and one with a large header under the limit.
    assert httpx.get(f"{served}/healthz", timeout=10).status_code == 200
    under = head(b"X-Big: " + b"a" * 30_000 + b"\r\n")
    assert status_of(send_raw(port, under)[0]) == 200
    assert status_of(send_raw(port, under, piece=4096)[0]) == 200
