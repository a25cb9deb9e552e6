"""GET /healthz (the process is up) and GET /readyz (the models are loaded and the store answers)."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from briefing_core.errors import BriefingError
from service.shell.deps import StateDep
from service.shell.state import run_blocking

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Models loaded and the store answering")
async def readyz(state: StateDep) -> JSONResponse:
    if not state.ready.is_set():
        status = "unavailable" if state.failed or state.error else "loading"
        body: dict[str, Any] = {"status": status}
        if state.error:
            body["error"] = state.error
        return JSONResponse(body, 503, headers={"Retry-After": "5"})
    try:
        await run_blocking(state, state.qa.store.ping)
    except BriefingError as exc:
        return JSONResponse({"status": "unavailable", "error": state.scrub(str(exc))}, 503,
                            headers={"Retry-After": "5"})
    return JSONResponse({"status": "ready"})
