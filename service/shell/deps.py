"""The dependencies the routes share, as `Annotated` types (the FastAPI full-stack template's
`deps.py`): the service state, the loaded question-answering object, and the two key checks.

Auth (both keys optional, compared in constant time):

    BRIEFING_API_KEY     every /v1 route and the MCP endpoint /mcp need `Authorization: Bearer KEY`
                         or `X-API-Key: KEY` (the admin key is accepted there too)
    BRIEFING_ADMIN_KEY   POST /v1/ingest and DELETE /v1/documents/{id} need this key. When it is not
                         set and the service listens on a loopback address (BRIEFING_HOST), those
                         routes need the API key if that is set, and are open otherwise (a single-user
                         local install); listening on any other address, they answer 403.
"""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from briefing_core.settings import Settings
from service.shell.http_errors import Forbidden, Unauthorized
from service.shell.http_limits import is_loopback_host, key_matches, presented_key
from service.shell.state import ServiceState


def get_state(request: Request) -> ServiceState:
    return request.app.state.briefing


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_ready_qa(state: StateDep) -> Any:
    return state.require_qa()


QADep = Annotated[Any, Depends(get_ready_qa)]

# Declared for the OpenAPI page's "Authorize" button; the check itself reads the headers directly.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
_x_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
HeaderKeyDep = Annotated[str | None, Depends(_x_api_key)]

_KEY_HINT = "send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"


def check_client(settings: Settings, scope: Scope) -> None:
    """The API key when one is configured (the admin key also opens the reading routes): every /v1
    route, and /mcp."""
    if settings.api_key is None:
        return
    key = presented_key(scope)
    if key is None:
        raise Unauthorized(f"an API key is required: {_KEY_HINT}")
    if not (key_matches(key, settings.api_key) or key_matches(key, settings.admin_key)):
        raise Unauthorized("the API key is not valid")


def require_client(request: Request, state: StateDep, _b: BearerDep, _h: HeaderKeyDep) -> None:
    """Every /v1 route: see `check_client`."""
    check_client(state.settings, request.scope)


SHARED_WITHOUT_ADMIN_KEY = (
    "ingest and delete are turned off: the service listens on an address other machines can reach "
    "and no admin key is set; the operator must set BRIEFING_ADMIN_KEY to use them"
)


def writes_refused(settings: Settings) -> bool:
    """Shared without an admin key: the writing routes answer 403 rather than fall back to the API
    key (which every reader holds) or stay open."""
    return settings.admin_key is None and not is_loopback_host(settings.host)


def require_admin(request: Request, state: StateDep) -> None:
    """Ingest and delete: the admin key; without one configured, the API key; without either, open —
    on a loopback address. Listening elsewhere without an admin key: refused."""
    s = state.settings
    if writes_refused(s):
        raise Forbidden(SHARED_WITHOUT_ADMIN_KEY)
    secret = s.admin_key if s.admin_key is not None else s.api_key
    if secret is None:
        return
    key = presented_key(request.scope)
    if key is None:
        raise Unauthorized(f"this route needs the admin key: {_KEY_HINT}")
    if not key_matches(key, secret):
        raise Unauthorized("the admin key is not valid")


ClientAuth = Depends(require_client)
AdminAuth = Depends(require_admin)
