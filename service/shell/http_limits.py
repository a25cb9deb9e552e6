"""Pure ASGI middleware for the HTTP service: request ids, last-resort errors, body size, rate limit.

Outermost first, as `service.shell.app.create_app` stacks them:

    RequestContextMiddleware   X-Request-ID on every response, security headers, 500 without details
    HeaderSizeLimitMiddleware  a request head over its limit -> 431
    CORSMiddleware             (Starlette's, only when BRIEFING_CORS_ORIGINS lists origins)
    RateLimitMiddleware        token bucket per client on /v1 routes and /mcp -> 429 + Retry-After
    BodySizeLimitMiddleware    counts request bytes as they stream in -> 413

Each is plain ASGI (no BaseHTTPMiddleware), so streamed responses pass through untouched.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("service.shell")

REQUEST_ID_HEADER = "x-request-id"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# The chat page loads nothing from elsewhere and runs no inline script.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# The /docs page (Swagger UI) starts itself with an inline script; it and its assets get no CSP.
_NO_CSP_PATHS = ("/docs", "/redoc")


def request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


# ---------------------------------------------------------------------------------------
# Request id, security headers, and the last-resort 500
# ---------------------------------------------------------------------------------------


class RequestContextMiddleware:
    """Gives each request an id (a sane client X-Request-ID is kept), echoes it on every response,
    adds security headers, and turns any unhandled exception into a bare 500.

    The 500 body is `{"error": "internal error", "request_id": ...}`: no message, path or traceback.
    The full traceback goes to the server log under the same request id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, REQUEST_ID_HEADER.encode())
        rid = given if given and _CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        path = scope.get("path", "")
        extra = [
            (b"x-request-id", rid.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if not path.startswith(_NO_CSP_PATHS):
            extra.append((b"content-security-policy", PAGE_CSP.encode()))
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", scope.get("method"), path, rid)
            if started:
                raise  # the response is under way; all we can do is drop the connection
            await send_json(send_with_headers, 500, {"error": "internal error", "request_id": rid})


# ---------------------------------------------------------------------------------------
# Header size
# ---------------------------------------------------------------------------------------


def head_size(scope: Scope) -> int:
    """Bytes of a request's head as the client sent it, near enough: target and header lines."""
    target = len(scope.get("raw_path") or scope.get("path", "").encode("utf-8"))
    target += len(scope.get("query_string", b""))
    return target + sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))


class HeaderSizeLimitMiddleware:
    """431 for a request whose head (request line and headers) is over `limit` bytes.

    The parser has already read such a head by then. `briefing serve` runs uvicorn's h11 parser with
    the same bound on a head still arriving, so a slow or endless head is cut off before it fills
    memory; h11 only bounds incomplete heads, though, and one that arrives whole in a single read
    (up to a read buffer's size) reaches the app, which refuses it here. uvicorn's default httptools
    parser has no bound at all, so this also covers a plain `uvicorn` run, after the fact.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and head_size(scope) > self.limit:
            await send_json(
                send, 431,
                {"error": f"request headers too large: the limit is {self.limit} bytes",
                 "request_id": request_id(scope)},
                {"connection": "close"},
            )
            return
        await self.app(scope, receive, send)


# ---------------------------------------------------------------------------------------
# Body size
# ---------------------------------------------------------------------------------------


class _BodyTooLarge(Exception):
    """Raised inside the app's receive() when the body passes its limit."""


class BodySizeLimitMiddleware:
    """413 for a request body over its limit: at once from Content-Length, or as soon as the bytes
    of a chunked body (no Content-Length) pass the limit.

    `limit_for(path)` gives the limit per route (uploads have a larger one). When the body overflows
    while the app reads it, whatever the app then tries to answer is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        body_error = {
            "error": f"request body too large: the limit is {limit} bytes",
            "request_id": request_id(scope),
        }
        declared = header(scope, b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                bad = {"error": "invalid Content-Length", "request_id": request_id(scope)}
                await send_json(send, 400, bad)
                return
            if size > limit:
                await send_json(send, 413, body_error, {"connection": "close"})
                return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The app turned the overflow into some other answer (e.g. a 400): send the 413 instead.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await send_json(send, 413, body_error, {"connection": "close"})
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not started:
                started = True
                await send_json(send, 413, body_error, {"connection": "close"})
        except Exception:
            if exceeded and not started:
                # The overflow surfaced as another exception (wrapped by a parser).
                started = True
                await send_json(send, 413, body_error, {"connection": "close"})
                return
            raise


# ---------------------------------------------------------------------------------------
# Rate limit
# ---------------------------------------------------------------------------------------


class TokenBuckets:
    """One token bucket per client: `per_minute` tokens of burst, refilled at per_minute / 60 a second."""

    MAX_CLIENTS = 10_000

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may go ahead; otherwise the seconds until a token is available."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[client] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if len(self._buckets) > self.MAX_CLIENTS:
                self._forget_idle(now)
            return wait

    def _forget_idle(self, now: float) -> None:
        """Drop clients whose bucket has refilled: forgetting them changes nothing."""
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]


def presented_key(scope: Scope) -> str | None:
    """The key a request carries: `Authorization: Bearer KEY` or `X-API-Key: KEY`."""
    auth = header(scope, b"authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = header(scope, b"x-api-key")
    return key.strip() if key and key.strip() else None


def is_loopback_host(host: str) -> bool:
    """Whether a listening address only takes connections from this machine: 127.0.0.0/8, ::1 or
    localhost. Anything else (0.0.0.0, ::, a LAN address, a host name) may be reached by others."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def key_matches(presented: str | None, secret: SecretStr | None) -> bool:
    if presented is None or secret is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), secret.get_secret_value().encode("utf-8"))


class RateLimitMiddleware:
    """429 with Retry-After once a client has used its tokens, on paths under `prefixes`.

    A client is its API key when it presents one of the configured keys (so clients behind one
    proxy address do not share a bucket), else its IP address. A wrong key counts against the IP,
    so guessing keys does not buy fresh buckets.
    """

    def __init__(
        self, app: ASGIApp, per_minute: int, keys: list[SecretStr | None],
        prefixes: tuple[str, ...] = ("/v1/",), clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.prefixes = prefixes
        self.keys = [k for k in keys if k is not None]
        self.buckets = TokenBuckets(per_minute, clock) if per_minute > 0 else None

    def client_of(self, scope: Scope) -> str:
        key = presented_key(scope)
        if key is not None and any(key_matches(key, secret) for secret in self.keys):
            return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
        client = scope.get("client")
        return "ip:" + (client[0] if client else "unknown")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.buckets is None
            or scope["type"] != "http"
            or scope.get("method") == "OPTIONS"
            or not scope.get("path", "").startswith(self.prefixes)
        ):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self.client_of(scope))
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            await send_json(
                send, 429,
                {"error": f"rate limit exceeded: retry in {seconds} s", "request_id": request_id(scope)},
                {"retry-after": str(seconds)},
            )
            return
        await self.app(scope, receive, send)
