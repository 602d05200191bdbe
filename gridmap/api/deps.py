"""Dependencies shared by the routers, declared once as ``Annotated`` aliases.

``StoreDep``, ``SettingsDep`` and ``LocatorDep`` hand out what the lifespan put on
``app.state``; ``ViewerDep`` … ``AdminDep`` authenticate the caller's API key (or
a browser's session, for reads) and check its role (``viewer < dispatcher <
planner < admin``): no or an unknown key is ``401`` (with ``WWW-Authenticate``),
too many wrong keys ``429``, a role too low ``403``. ``AuditorDep`` admits the
``auditor`` and ``admin`` roles only (the audit log).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gridmap.api.errors import NotAuthenticatedError
from gridmap.api.locator import ID_MAX, Locator
from gridmap.api.security import Authenticator, KeyCache, Principal
from gridmap.api.settings import Settings
from gridmap.db import Store
from gridmap.db.keys import AUDIT_ROLES, ROLES, role_rank
from gridmap.errors import PermissionDeniedError, StorageError

__all__ = [
    "Principal",
    "get_store",
    "get_settings_dep",
    "get_locator",
    "get_key_cache",
    "require_role",
    "optional_principal",
    "StoreDep",
    "SettingsDep",
    "LocatorDep",
    "ViewerDep",
    "DispatcherDep",
    "PlannerDep",
    "AdminDep",
    "AuditorDep",
    "require_auditor",
    "OptionalPrincipalDep",
    "RequestContext",
    "require_context",
    "SECURITY",
    "ViewerContextDep",
    "ID_MAX",
    "PlanId",
    "KeyId",
]

# only for the OpenAPI "Authorize" button; the key itself is read by token_from_request
_bearer = HTTPBearer(auto_error=False, description="API key as `Authorization: Bearer <key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def _state(request: Request, name: str) -> object:
    value = getattr(request.app.state, name, None)
    if value is None:
        raise StorageError(
            f"the service is not started ({name} missing); run it with `gridmap serve` or "
            "inside the app lifespan (e.g. `with TestClient(create_app()) as client:`)"
        )
    return value


async def get_store(request: Request) -> Store:
    """Return the store opened by the app lifespan (``app.state.store``)."""
    return _state(request, "store")  # type: ignore[return-value]


async def get_settings_dep(request: Request) -> Settings:
    """Return the app settings (``app.state.settings``)."""
    return _state(request, "settings")  # type: ignore[return-value]


async def get_locator(request: Request) -> Locator:
    """Return the locator of the published plans (``app.state.locator``)."""
    return _state(request, "locator")  # type: ignore[return-value]


async def require_auditor(principal: OptionalPrincipalDep) -> Principal:
    """Admit the ``auditor`` and ``admin`` roles only (401 without a key, else 403)."""
    if principal is None:
        raise NotAuthenticatedError(
            "the audit log needs an auditor or admin key; send it as `Authorization: Bearer "
            "<key>` or `X-API-Key: <key>` (`gridmap keys create --role auditor`)"
        )
    if principal.role not in AUDIT_ROLES:
        raise PermissionDeniedError(
            f"the audit log is for the auditor and admin roles; your key {principal.name!r} has "
            f"role {principal.role!r}. Ask an admin for an auditor key"
        )
    return principal


async def get_key_cache(request: Request) -> KeyCache:
    """Return the verified-key cache (``app.state.key_cache``)."""
    return _state(request, "key_cache")  # type: ignore[return-value]


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
LocatorDep = Annotated[Locator, Depends(get_locator)]


async def optional_principal(
    request: Request,
    _b: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
    _h: Annotated[str | None, Depends(_header)] = None,
) -> Principal | None:
    """Return the caller of a request with a valid key or session, ``None`` without either.

    Raises
    ------
    NotAuthenticatedError
        A key was sent but it is unknown, revoked or expired; or the session ended.
    TooManyRequestsError
        Too many wrong keys from this address or for this key prefix (429).
    """
    auth: Authenticator = _state(request, "authenticator")  # type: ignore[assignment]
    principal = await auth.principal(request)
    if principal is not None:
        request.scope.setdefault("state", {})["principal"] = principal  # request.state.principal
    return principal


OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def require_role(min_role: str) -> Callable[..., Any]:
    """Return a dependency that authenticates the caller and requires ``min_role`` or higher.

    Parameters
    ----------
    min_role : {"viewer", "dispatcher", "planner", "admin"}
        The lowest role allowed.

    Returns
    -------
    callable
        A FastAPI dependency returning the :class:`Principal`.
    """
    check = _role_check(min_role)

    async def dependency(principal: OptionalPrincipalDep) -> Principal:
        return check(principal)

    dependency.__name__ = f"require_{min_role}"
    return dependency


def _role_check(min_role: str) -> Callable[[Principal | None], Principal]:
    """Return the check of :func:`require_role` as a plain function (401 / 403, else the caller)."""
    rank = role_rank(min_role)

    def check(principal: Principal | None) -> Principal:
        if principal is None:
            raise NotAuthenticatedError(
                "this needs an API key; send it as `Authorization: Bearer <key>` or "
                "`X-API-Key: <key>` (an admin creates one with `gridmap keys create --role "
                f"{min_role}`)"
            )
        if role_rank(principal.role) < rank:
            raise PermissionDeniedError(
                f"this needs the {min_role} role or higher (one of "
                f"{', '.join(ROLES[rank:])}); your key {principal.name!r} has role "
                f"{principal.role!r}. Ask an admin for a key with the right role"
            )
        return principal

    return check


@dataclass(frozen=True)
class RequestContext:
    """Everything a hot route needs, resolved by one dependency (see :func:`require_context`)."""

    principal: Principal
    store: Store
    locator: Locator
    settings: Settings


def require_context(min_role: str) -> Callable[..., Any]:
    """Like :func:`require_role`, but one dependency returning a :class:`RequestContext`.

    FastAPI resolves every dependency per request; on the hot ``/locate`` path one
    dependency instead of eight saves a third of the request time. Routes using it
    declare their security in ``openapi_extra=SECURITY`` for the docs.
    """
    check = _role_check(min_role)

    async def dependency(request: Request) -> RequestContext:
        principal = check(await optional_principal(request))
        state = request.app.state
        return RequestContext(principal, state.store, state.locator, state.settings)

    dependency.__name__ = f"context_{min_role}"
    return dependency


#: OpenAPI security requirement of routes using :func:`require_context`.
SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}, {"APIKeyHeader": []}]}

ViewerDep = Annotated[Principal, Depends(require_role("viewer"))]
DispatcherDep = Annotated[Principal, Depends(require_role("dispatcher"))]
PlannerDep = Annotated[Principal, Depends(require_role("planner"))]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]

AuditorDep = Annotated[Principal, Depends(require_auditor)]

ViewerContextDep = Annotated[RequestContext, Depends(require_context("viewer"))]

#: A plan id in a path (``/plans/{plan_id}``); out-of-range ids are refused with 422.
PlanId = Annotated[int, Path(ge=1, le=ID_MAX, description="a plan id (GET /plans lists them)")]
#: An API key id in a path.
KeyId = Annotated[int, Path(ge=1, le=ID_MAX, description="an API key id (GET /keys)")]
