"""The errors the HTTP layer adds to briefing_core.errors, their status codes and the error body."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from briefing_core.errors import BriefingError, NotFoundError, SystemFailure, UserError


class Unauthorized(UserError):
    """Missing or wrong key (401)."""


class Forbidden(UserError):
    """A route this service's configuration does not allow anyone to use (403)."""


class Unprocessable(UserError):
    """A well-formed request whose content cannot be used (422)."""


class ServiceLoading(SystemFailure):
    """The models or the store are not ready yet (503)."""


def status_for(exc: BriefingError) -> int:
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Unprocessable):
        return 422
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, UserError):
        return 400
    return 503  # SystemFailure: store locked or unreachable, embedder mismatch, LLM down, loading


def error_body(request: Request, message: str) -> dict[str, Any]:
    return {"error": message, "request_id": getattr(request.state, "request_id", "")}
