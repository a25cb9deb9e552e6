"""The HTTP service's app factory: question answering with citations, an OpenAI-compatible endpoint,
the catalog, admin ingest/delete, health checks, the analyst chat page and the MCP endpoint.

    uvicorn --factory service.shell.app:create_app      (or `briefing serve`)

Nothing heavy happens at import or in `create_app`: the answering chain, the embedder and the store
load in a background thread started by the lifespan (state.py), so /healthz answers at once and
/readyz says 503 until the models are loaded and the store answers.

The routes live in routes/, one module a resource, and the MCP endpoint /mcp in mcp_server.py; what
they share (the state, the loaded QA object, the key checks) in deps.py; the middleware in
http_limits.py. Auth is described in deps.py.

Errors are `{"error": message, "request_id": id}` (500s carry no message); every response has an
X-Request-ID header.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from briefing_core.errors import BriefingError
from briefing_core.settings import Settings, get_settings
from service.shell import mcp_server
from service.shell.deps import ClientAuth, writes_refused
from service.shell.http_errors import error_body, status_for
from service.shell.http_limits import (
    BodySizeLimitMiddleware,
    HeaderSizeLimitMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
)
from service.shell.routes import ask, chat, documents, health, page
from service.shell.state import ServiceState

log = logging.getLogger("service.shell")


def create_app(settings: Settings | None = None, qa: Any = None) -> FastAPI:
    """The ASGI app. `qa` (a loaded or unloaded `BriefingQA`, or anything with `load()`, `store`,
    `searcher` and `ask()`) is built from `settings` in the background when not given."""
    if settings is None:
        settings = qa.settings if qa is not None and hasattr(qa, "settings") else get_settings()
    state = ServiceState(settings, qa)
    mcp = mcp_server.HTTPEndpoint(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if writes_refused(settings):
            log.warning("listening on %s without BRIEFING_ADMIN_KEY: ingest and delete answer 403",
                        settings.host)
        state.limiter = anyio.CapacityLimiter(4)
        state.start()
        try:
            async with mcp.run():
                yield
        finally:
            state.stop()

    # FastAPI's own /docs page loads Swagger UI from a CDN and is blank without the internet; this
    # one serves the same page from files inside the fastapi-offline package.
    app = FastAPIOffline(
        title="Briefing QA",
        version="0.1.0",
        summary="Questions about a briefing article and its cited sources, with span-level citations.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs-assets",
    )
    app.state.briefing = state
    _add_error_handlers(app, state)

    # Every /v1 route needs the API key when one is set; the admin routes add their own check.
    v1 = APIRouter(prefix="/v1", dependencies=[ClientAuth])
    v1.include_router(ask.make_router(settings.max_question_chars))
    v1.include_router(chat.router)
    v1.include_router(documents.router)
    app.include_router(v1)
    # The MCP endpoint (streamable HTTP) takes the API key as /v1 does; see mcp_server.py.
    app.router.routes.append(Route(mcp_server.MCP_PATH, mcp.app))
    app.include_router(health.router)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=page.WEB_DIR), name="static")

    _add_middleware(app, settings)
    return app


def _add_error_handlers(app: FastAPI, state: ServiceState) -> None:
    @app.exception_handler(BriefingError)
    async def briefing_error(request: Request, exc: BriefingError) -> JSONResponse:
        status = status_for(exc)
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        elif status == 503:
            headers["Retry-After"] = "5"
        return JSONResponse(error_body(request, state.scrub(str(exc))), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in list(exc.errors())[:20]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append({"field": where[:200], "message": str(err.get("msg", "invalid"))[:300]})
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        body = error_body(request, f"invalid request: {summary}")
        body["details"] = problems
        return JSONResponse(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(error_body(request, detail), exc.status_code, headers=exc.headers)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """The last added runs first: see http_limits.py for the order a request meets them in."""

    def limit_for(path: str) -> int:
        return settings.max_upload_bytes if path == documents.INGEST_PATH else settings.max_body_bytes

    app.add_middleware(BodySizeLimitMiddleware, limit_for=limit_for)
    app.add_middleware(
        RateLimitMiddleware, per_minute=settings.rate_limit_per_minute,
        keys=[settings.api_key, settings.admin_key], prefixes=("/v1/", mcp_server.MCP_PATH),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=False,  # keys travel in headers, never cookies
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            # The MCP headers let a page of a listed origin use /mcp.
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID",
                           "Mcp-Protocol-Version", "Mcp-Session-Id", "Last-Event-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "Mcp-Session-Id"],
            max_age=600,
        )
    app.add_middleware(HeaderSizeLimitMiddleware, limit=settings.max_header_bytes)
    app.add_middleware(RequestContextMiddleware)
