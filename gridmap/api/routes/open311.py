"""Open311 GeoReport v2 over the cases (事件工单): for a city's existing apps.

======  ========================================  =========================================
method  path (``.json`` or ``.xml``)              what
======  ========================================  =========================================
GET     /open311/v2/discovery.json                the service discovery document (public)
GET     /open311/v2/services.json                 the category catalogue as services (public)
GET     /open311/v2/services/{service_code}.json  a service definition (no attributes)
GET     /open311/v2/requests.json                 requests, with the spec's filters (viewer+)
POST    /open311/v2/requests.json                 a new request → a case (case-taking roles)
GET     /open311/v2/requests/{id}.json            one request (viewer+)
======  ========================================  =========================================

**Keys.** The spec's ``api_key`` parameter works (in the query of a GET, in the form
body of a POST) as do our ``Authorization: Bearer`` and ``X-API-Key`` headers. A POST
needs a key that may take cases in (not a viewer); the lists hold only the cases in
the key's unit (:func:`gridmap.db.keys.case_role`), a request outside it is ``403``.
The reporter's name and contact (extensions ``reporter_name``, ``reporter_phone``) are
only in ``GET requests/{id}`` for the roles that see them in ``GET /cases/{id}``
(dispatchers, admins, the handlers), and each such read is audited.

**Requests.** ``service_code`` is a category code (``GET services.json``); ``lat`` /
``long`` are WGS84 (extension: ``crs=gcj02`` for WeChat/AMap clients); a point outside
every published grid is refused (``400``), a request with only ``address_string`` is
taken in ``unlocated`` for a dispatcher to place. A case is stored with source
``GRIDMAP_OPEN311_SOURCE`` (``app`` by default). ``status`` is ``open`` or ``closed``;
``status_notes`` gives our state in Chinese and English; ``agency_responsible`` the
lead handler (else the grid); ``expected_datetime`` the resolve deadline. Without
dates ``GET requests`` covers the last 90 days (a range may not span more); at most
``GRIDMAP_OPEN311_MAX_REQUESTS`` (1000) per page, with the common ``page`` /
``page_size`` extension. ``service_request_id`` (comma list) overrides the other
filters; an unknown id is ``404``.

**Errors** are the spec's list of ``{code, description}`` (``<errors><error>`` in
XML) with the HTTP status: ``400`` bad input (unknown ``service_code``, no location,
a point outside the plan, bad dates), ``401`` no or unknown key, ``403`` role or
scope, ``404`` unknown request, service or ``jurisdiction_id`` (checked against
``GRIDMAP_OPEN311_JURISDICTION_ID`` when set).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Awaitable, Callable
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import get_store, optional_principal
from gridmap.api.errors import NotAuthenticatedError, status_for
from gridmap.api.routes.cases import actor_of
from gridmap.api.security import MISS, Principal, client_address
from gridmap.cases import TZ, Actor, can_see, default_catalogue
from gridmap.cases.open311 import (
    FORMATS,
    MEDIA_TYPES,
    SPEC_URL,
    error_list,
    find_service,
    parse_datetime,
    service_definition,
    service_notice,
    service_request,
    services,
    states_for,
    ticket_from_request,
    to_xml,
    w3c,
)
from gridmap.crs import transform
from gridmap.db import Store
from gridmap.db.cases import case_locator, create_case, get_case, list_cases
from gridmap.db.open311 import case_summaries
from gridmap.errors import (
    CaseError,
    CoordinateError,
    GridmapError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    ScopeError,
)

__all__ = ["router", "Open311Settings", "get_open311_settings"]

router = APIRouter(prefix="/open311/v2", tags=["open311"])

_DAYS = 90
_AUTH_HEADERS = {"WWW-Authenticate": 'Bearer realm="gridmap", ApiKey header="X-API-Key"'}
_ERRORS: dict[str, Any] = {
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "integer"},
                        "description": {"type": "string"},
                    },
                },
            }
        }
    }
}
#: With ``.xml`` every answer, errors included, is GeoReport v2 XML.
_XML: dict[str, Any] = {
    "text/xml": {"schema": {"type": "string", "description": "the same answer in XML"}}
}
_ERRORS["content"].update(_XML)
_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, **_ERRORS}
    for code, text in (
        (400, "Bad input: unknown service_code, no location, a point outside the plan, bad dates"),
        (401, "No or unknown api_key"),
        (403, "The key's role or scope does not allow this"),
        (404, "Unknown request, service, format or jurisdiction_id"),
        (429, "Too many wrong keys from this address or for this key (see Retry-After)"),
    )
}


def _responses(ok: int = 200) -> dict[int | str, dict[str, Any]]:
    """Return the documented answers of a route that succeeds with ``ok``: JSON or XML."""
    return {ok: {"content": {"application/json": {}, **_XML}}, **_RESPONSES}


class Open311Settings(BaseSettings):
    """The Open311 face (environment variables ``GRIDMAP_OPEN311_*``).

    Attributes
    ----------
    jurisdiction_id : str or None
        The jurisdiction this endpoint serves (e.g. ``qinhuai.nanjing.gov.cn``); a
        request naming another is ``404``. None: any ``jurisdiction_id`` is accepted.
    source : str
        The case source (intake channel) of requests posted here (``app``).
    contact, key_service : str
        The discovery document's contact and where to ask for a key.
    max_requests : int
        Most requests in one ``GET requests`` answer (the spec's 1000).

    Examples
    --------
    >>> Open311Settings(jurisdiction_id="qinhuai.example").max_requests
    1000
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_OPEN311_", extra="ignore")

    jurisdiction_id: str | None = None
    source: str = "app"
    contact: str = "the 12345 hotline office of the city (gridmap service)"
    key_service: str = "ask an admin for a key: gridmap keys create --role dispatcher"
    max_requests: int = Field(default=1000, gt=0, le=10_000)


@lru_cache
def get_open311_settings() -> Open311Settings:
    """Return the Open311 settings read from the environment (cached; override in tests)."""
    return Open311Settings()


SettingsDep = Annotated[Open311Settings, Depends(get_open311_settings)]
Jurisdiction = Annotated[
    str | None, Query(description="the jurisdiction served (GRIDMAP_OPEN311_JURISDICTION_ID)")
]
ApiKey = Annotated[
    str | None, Query(description="the API key (or Authorization / X-API-Key headers)")
]


# ----------------------------------------------------------------------------- plumbing


def _reply(fmt: str, root: str, value: Any, *, status: int = 200, **headers: str) -> Response:
    if fmt == "xml":
        body = to_xml(root, value)
    else:
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type=MEDIA_TYPES[fmt], headers=headers)


def _error(fmt: str, status: int, description: str, retry_after: float | None = None) -> Response:
    headers = dict(_AUTH_HEADERS) if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return _reply(fmt, "errors", error_list(status, description), status=status, **headers)


async def _guard(fmt: str, work: Callable[[], Awaitable[Response]]) -> Response:
    """Run a route's work; answer a domain error in the spec's error format."""
    if fmt not in FORMATS:
        return _error(
            "json",
            404,
            f"no format .{fmt}; GeoReport v2 answers .json or .xml (e.g. services.json)",
        )
    try:
        return await work()
    except GridmapError as exc:
        status = status_for(exc)[0]
        return _error(fmt, status, str(exc), getattr(exc, "retry_after", None))


def _jurisdiction(settings: Open311Settings, given: str | None) -> None:
    want = settings.jurisdiction_id
    if want and given and given.strip() and given.strip() != want:
        raise NotFoundError(
            f"jurisdiction_id {given.strip()!r} is not served here; this endpoint serves "
            f"{want!r} (or leave jurisdiction_id out)"
        )


async def _principal(request: Request, body_key: str | None = None) -> Principal:
    """Authenticate the caller as every route does, or by the ``api_key`` of a POST body.

    Our headers, a GET's ``api_key`` and a signed-in browser go through
    :func:`gridmap.api.deps.optional_principal`; a key in a POST body is checked by
    the same authenticator (wrong keys are counted, and locked out, alike).
    """
    found = await optional_principal(request)
    token = body_key.strip() if body_key else ""
    if found is None and token:
        auth = request.app.state.authenticator
        found = auth.cache.lookup(token)
        if found is MISS or found is None:
            address = client_address(request, auth.trusted)
            found = await run_in_threadpool(auth.check_key, token, address)
        request.state.principal = found
    if found is None:
        raise NotAuthenticatedError(
            "this needs an API key: send api_key (query of a GET, form body of a POST) or the "
            "header `Authorization: Bearer <key>`; an admin creates one with "
            "`gridmap keys create --role dispatcher`"
        )
    return found


def _changeset() -> str:
    """Return when the catalogue last changed (the discovery document's ``changeset``)."""
    path = resources.files("gridmap.cases") / "data" / "categories.json"
    try:
        stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, TZ)  # type: ignore[attr-defined]
    except (OSError, AttributeError):  # pragma: no cover - a zipped install
        stamp = dt.datetime(2026, 1, 1, tzinfo=TZ)
    return w3c(stamp) or ""


# ----------------------------------------------------------------------------- discovery, services


@router.get("/discovery.{fmt}", summary="Service discovery (public)", responses=_responses())
async def discovery_route(request: Request, fmt: str, settings: SettingsDep) -> Response:
    """Return the endpoints of this jurisdiction, the spec followed and the formats."""

    async def work() -> Response:
        changed = _changeset()
        base = str(request.base_url).rstrip("/") + router.prefix
        doc = {
            "changeset": changed,
            "contact": settings.contact,
            "key_service": settings.key_service,
            "endpoints": [
                {
                    "specification": SPEC_URL,
                    "url": base,
                    "changeset": changed,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }
        return _reply(fmt, "discovery", doc)

    return await _guard(fmt, work)


@router.get(
    "/services.{fmt}", summary="The category catalogue as services (public)", responses=_responses()
)
async def services_route(
    fmt: str, settings: SettingsDep, jurisdiction_id: Jurisdiction = None
) -> Response:
    """List every category: code, Chinese and English name, keywords, group (urgency)."""

    async def work() -> Response:
        _jurisdiction(settings, jurisdiction_id)
        return _reply(fmt, "services", services(default_catalogue()))

    return await _guard(fmt, work)


@router.get(
    "/services/{service_code}.{fmt}",
    summary="A service definition (no attributes: metadata is false)",
    responses=_responses(),
)
async def service_route(
    service_code: str, fmt: str, settings: SettingsDep, jurisdiction_id: Jurisdiction = None
) -> Response:
    """Return a service definition: ours ask nothing more, so ``attributes`` is empty."""

    async def work() -> Response:
        _jurisdiction(settings, jurisdiction_id)
        return _reply(
            fmt, "service_definition", service_definition(default_catalogue(), service_code)
        )

    return await _guard(fmt, work)


# ----------------------------------------------------------------------------- requests


def _ids(text: str, most: int) -> list[int]:
    out = []
    for part in text.split(","):
        p = part.strip()
        if not p:
            continue
        if not p.isdigit() or not 0 < int(p) < 2**63:
            raise CaseError(
                f"service_request_id {p!r} is not a request id; send ids as "
                "service_request_id=12,15"
            )
        out.append(int(p))
    if len(out) > most:
        raise CaseError(f"{len(out)} service_request_id given; ask for at most {most} at once")
    return list(dict.fromkeys(out))


def _page(value: str | None, name: str, default: int, most: int) -> int:
    if value is None or not value.strip():
        return default
    v = value.strip()
    if not v.isdigit() or not 1 <= int(v) <= most:
        raise CaseError(f"{name} {value!r} must be a whole number from 1 to {most}")
    return int(v)


def _window(
    start: str | None, end: str | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end]`` of ``requested_datetime``; the last 90 days by default."""
    span = dt.timedelta(days=_DAYS)
    t0 = parse_datetime(start, name="start_date") if start and start.strip() else None
    t1 = parse_datetime(end, name="end_date") if end and end.strip() else None
    if t0 is None and t1 is None:
        return now - span, now
    if t0 is None:
        assert t1 is not None
        return t1 - span, t1
    if t1 is None:
        return t0, t0 + span
    if t1 < t0:
        raise CaseError(f"end_date {end!r} is before start_date {start!r}; swap them")
    if t1 - t0 > span:
        raise CaseError(
            f"start_date to end_date spans {(t1 - t0).days} days; the spec allows at most "
            f"{_DAYS}: split the range into several requests"
        )
    return t0, t1


def _find(
    store: Store,
    actor: Actor,
    *,
    ids: list[int],
    codes: list[str],
    states: list[str] | None,
    window: tuple[dt.datetime, dt.datetime],
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """Return the cases asked for, as ``actor`` may see them (no personal data).

    One read transaction: the list and the cases it names are one snapshot.
    """
    cat = default_catalogue()
    with store.session() as s:
        if ids:
            out = []
            for i in ids:
                rec = get_case(s, i)
                if not can_see(actor, rec.case):
                    raise ScopeError(
                        f"request {i} is outside your key's unit; ask a dispatcher or the unit "
                        "in charge"
                    )
                out.append(service_request(rec.to_dict(), cat))
            return out
        rows: list[dict[str, Any]] = []
        t0, t1 = window
        wanted: list[str | None] = list(codes) if codes else [None]
        for code in wanted:
            found, _ = list_cases(
                s,
                actor=actor,
                status=states,
                category=code,
                received_from=t0,
                received_to=t1 + dt.timedelta(microseconds=1),  # end_date is inclusive
                limit=offset + limit,
            )
            rows.extend(found)
        rows.sort(key=lambda r: (r["received_at"], r["id"]), reverse=True)
        page = rows[offset : offset + limit]
        return [service_request(c, cat) for c in case_summaries(s, [int(r["id"]) for r in page])]


@router.get(
    "/requests.{fmt}",
    summary="Service requests (cases) with the spec's filters (viewer+)",
    responses=_responses(),
)
async def requests_route(
    request: Request,
    fmt: str,
    settings: SettingsDep,
    service_request_id: Annotated[
        str | None, Query(description="comma list of ids; overrides the other filters")
    ] = None,
    service_code: Annotated[str | None, Query(description="comma list of codes")] = None,
    start_date: Annotated[str | None, Query(description="W3C date-time, e.g. …+08:00")] = None,
    end_date: Annotated[str | None, Query(description="W3C date-time (inclusive)")] = None,
    status: Annotated[str | None, Query(description="open, closed or open,closed")] = None,
    page: Annotated[str | None, Query(description="extension: page number from 1")] = None,
    page_size: Annotated[str | None, Query(description="extension: at most 1000")] = None,
    jurisdiction_id: Jurisdiction = None,
    api_key: ApiKey = None,
) -> Response:
    """List requests newest first: the last 90 days unless dates say otherwise; your unit only."""

    async def work() -> Response:
        _jurisdiction(settings, jurisdiction_id)
        store = await get_store(request)
        actor = actor_of(await _principal(request))
        most = settings.max_requests
        ids = _ids(service_request_id, most) if service_request_id else []
        codes: list[str] = []
        if not ids and service_code:
            cat = default_catalogue()
            codes = [find_service(cat, c).code for c in service_code.split(",") if c.strip()]
        states = None if ids else states_for(status)
        window = _window(start_date, end_date, dt.datetime.now(TZ))
        size = _page(page_size, "page_size", most, most)
        number = _page(page, "page", 1, 1_000_000)
        found = await run_in_threadpool(
            lambda: _find(
                store,
                actor,
                ids=ids,
                codes=list(dict.fromkeys(codes)),
                states=states,
                window=window,
                limit=size,
                offset=(number - 1) * size,
            )
        )
        return _reply(fmt, "service_requests", found)

    return await _guard(fmt, work)


@router.get(
    "/requests/{service_request_id}.{fmt}",
    summary="One service request (viewer+)",
    responses=_responses(),
)
async def request_route(
    request: Request,
    service_request_id: str,
    fmt: str,
    settings: SettingsDep,
    jurisdiction_id: Jurisdiction = None,
    api_key: ApiKey = None,
) -> Response:
    """Return a list of one request (the spec's shape); reporter fields for roles that see them."""

    async def work() -> Response:
        _jurisdiction(settings, jurisdiction_id)
        store = await get_store(request)
        principal = await _principal(request)
        rid = service_request_id.strip()
        if not rid.isdigit() or not 0 < int(rid) < 2**63:
            raise NotFoundError(
                f"no request {service_request_id!r}; ids are numbers (GET requests.json lists them)"
            )
        rec = await run_in_threadpool(
            lambda: get_case(store, int(rid), actor=actor_of(principal), author=principal.actor)
        )
        one = service_request(rec.to_dict(), default_catalogue(), personal=rec.personal)
        return _reply(fmt, "service_requests", [one])

    return await _guard(fmt, work)


async def _params(request: Request) -> dict[str, str]:
    """Return the parameters of a POST: a form (the spec), or a JSON object (an extension)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            data = json.loads(await request.body() or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(
                f"the body is not valid JSON ({exc}); send a form or an object"
            ) from None
        if not isinstance(data, dict):
            raise InputError("the JSON body must be an object of the request's parameters")
        return {str(k): "" if v is None else str(v) for k, v in data.items()}
    if kind in ("", "application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form()
        except Exception as exc:  # noqa: BLE001 - python-multipart's parse errors
            raise InputError(f"the form body cannot be read ({type(exc).__name__})") from None
        out: dict[str, str] = {}
        for key, value in form.multi_items():
            if not isinstance(value, str):
                raise InputError(
                    f"{key} is a file; upload the picture elsewhere and send its media_url"
                )
            out.setdefault(key, value)
        return out
    raise InputError(
        f"content type {kind!r} is not read here; send application/x-www-form-urlencoded "
        "(the spec), multipart/form-data or application/json"
    )


def _inside(store: Store, ticket: dict[str, Any]) -> None:
    """Refuse a point outside every published grid (before anything is written)."""
    if "lon" not in ticket:
        return
    lon, lat = transform(ticket["lon"], ticket["lat"], ticket["crs"], "wgs84")
    loc = case_locator(store)
    found, nearest = loc.locate_many(np.array([float(lon)]), np.array([float(lat)]))
    if found[0] is not None:
        return
    where = f"lat {ticket['lat']}, long {ticket['lon']}"
    if len(loc) == 0:
        raise CoordinateError(
            f"{where} cannot be placed: no plan is published yet; send address_string only "
            "and a dispatcher will place the request"
        )
    hint = f" (the nearest grid is {nearest[0]})" if nearest[0] else ""
    raise CoordinateError(
        f"{where} is outside every grid of the published plans{hint}; check the point "
        "(lat/long are WGS84; say crs=gcj02 for WeChat or AMap coordinates), or send "
        "address_string only and a dispatcher will place it"
    )


@router.post(
    "/requests.{fmt}",
    summary="Create a service request: a case located on the published plans",
    status_code=201,
    responses=_responses(201),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["service_code", "description"],
                        "properties": {
                            k: {"type": "string"}
                            for k in (
                                "api_key",
                                "jurisdiction_id",
                                "service_code",
                                "lat",
                                "long",
                                "address_string",
                                "description",
                                "email",
                                "phone",
                                "first_name",
                                "last_name",
                                "media_url",
                                "crs",
                            )
                        },
                    }
                }
            }
        }
    },
)
async def create_route(request: Request, fmt: str, settings: SettingsDep) -> Response:
    """Answer ``201`` with ``[{service_request_id, service_notice, account_id}]``.

    Nothing is stored when the request is refused.
    """

    async def work() -> Response:
        store = await get_store(request)
        params = await _params(request)
        _jurisdiction(settings, params.get("jurisdiction_id"))
        principal = await _principal(request, params.get("api_key"))
        if actor_of(principal).role == "viewer":
            raise PermissionDeniedError(
                "viewer keys cannot create requests; use a dispatcher key or a staff key bound "
                "to your unit (gridmap keys create --role staff --scope grid:<code>)"
            )
        ticket = ticket_from_request(params, catalogue=default_catalogue(), source=settings.source)
        ticket["received_at"] = dt.datetime.now(TZ).isoformat()

        def save() -> dict[str, Any]:
            _inside(store, ticket)
            rec, _ = create_case(store, ticket, author=principal.actor)
            return rec.to_dict()

        case = await run_in_threadpool(save)
        answer = [
            {
                "service_request_id": str(case["id"]),
                "service_notice": service_notice(case),
                "account_id": None,
            }
        ]
        where = f"{router.prefix}/requests/{case['id']}.{fmt}"
        return _reply(fmt, "service_requests", answer, status=201, Location=where)

    return await _guard(fmt, work)
