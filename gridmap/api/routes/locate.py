"""Coordinate positioning (坐标式定位): ``GET /locate`` and ``POST /locate/batch``.

Grids come from the in-memory grid indexes of the published plans
(:class:`gridmap.api.locator.Locator`), never from a table scan; buildings and
residents near a point from the store's spatial index, when asked.

* ``GET /locate?lon=…&lat=…&crs=…[&plan=…][&radius=…]`` → the grid (code, name,
  四至), its community, sub-district and district, its staff (names and phones
  for dispatchers and up), the distance to the grid boundary; on a shared edge
  ``status="on_boundary"`` with every candidate grid (the primary one is the
  smallest code); outside every grid ``status="outside"``, ``grid=null`` and the
  nearest grid with its distance. ``radius`` (metres, dispatcher and up) adds
  the buildings and residents (with their sensitive flags) around the point;
  every such read is written to the audit log.
* ``POST /locate/batch`` takes JSON (``{"crs": …, "points": [{id, lon, lat,
  crs?}]}`` or a bare list), GeoJSON (a FeatureCollection of Points) or CSV
  (columns ``lon``/``lat`` and optional ``id``/``crs``), up to
  ``GRIDMAP_MAX_BATCH_POINTS`` points, and answers one row per point as JSON or
  CSV (``?format=`` or ``Accept``).

``GET /locate`` is the hot path: :func:`locate_asgi` answers it in front of the
app's middleware and router (:class:`gridmap.api.app.HotRoutesMiddleware`), with
the same checks, answers, headers and errors; :func:`locate` documents it.
"""

from __future__ import annotations

import gc
import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from starlette.types import Receive, Scope, Send

from gridmap.api.batch import _clean, locate_rows, parse_batch
from gridmap.api.deps import (
    SECURITY,
    LocatorDep,
    RequestContext,
    SettingsDep,
    ViewerContextDep,
    ViewerDep,
    require_context,
)
from gridmap.api.errors import PROBLEM_RESPONSES, PayloadTooLargeError, error_response
from gridmap.api.headers import NOSNIFF
from gridmap.api.locator import Area, api_crs
from gridmap.api.schemas import (
    CRS_HELP,
    BatchPublic,
    LocatePublic,
    NearbyBuilding,
    NearbyPublic,
    Resident,
)
from gridmap.api.security import Principal
from gridmap.db import write_audit
from gridmap.errors import (
    GridmapError,
    InputError,
    PermissionDeniedError,
)

try:  # optional speed-up for 100 k-row answers
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]


def _dumps(body: Any) -> bytes:
    """Return JSON bytes (orjson when installed)."""
    if _orjson is not None:
        return _orjson.dumps(body)
    return json.dumps(body, ensure_ascii=False).encode()


def _json_response(body: Any) -> Response:
    """Return a JSON response (orjson when installed)."""
    return Response(_dumps(body), media_type="application/json")


__all__ = ["router", "parse_batch", "locate_rows", "locate_fast", "locate_asgi"]

router = APIRouter(tags=["locate"], responses=PROBLEM_RESPONSES)


def _grid_dict(area: Area, row: int) -> dict[str, Any]:
    """Return a grid as answered by ``/locate`` (cached per area and row)."""
    cache = area.__dict__.setdefault("_grid_json", {})
    hit = cache.get(row)
    if hit is None:
        g = area.grids.iloc[row]
        hh = _clean(g.get("households"))
        hit = {
            "grid_code": str(g["grid_code"]),
            "name": _clean(g.get("name")),
            "community_id": _clean(g.get("community_id")),
            "households": None if hh is None else int(hh),
            "boundary_desc": _clean(g.get("boundary_desc")),
            "plan_id": area.plan_id,
        }
        cache[row] = hit
    return hit


def _staff_dict(area: Area, code: str) -> dict[str, Any]:
    posts = area.staff.get(code, [])
    chief = next((p for p in posts if p["role"] == "chief"), None)
    return {"chief": chief, "workers": [p for p in posts if p is not chief]}


def _check_radius(radius: float | None, principal: Principal, limit: float) -> None:
    if radius is None:
        return
    if not principal.allows("dispatcher"):
        raise PermissionDeniedError(
            "residents and buildings near a point (radius=) are personal data for the "
            f"dispatcher role and up; your key {principal.name!r} has role {principal.role!r}. "
            "Drop radius= or use a dispatcher key"
        )
    if not (radius > 0 and np.isfinite(radius)):
        raise InputError(f"radius must be a positive number of metres, not {radius}")
    if radius > limit:
        raise InputError(
            f"radius {radius:g} m is larger than the limit of {limit:g} m; ask for a smaller "
            "radius (the limit is GRIDMAP_MAX_RADIUS_M)"
        )


def _nearby(
    area: Area,
    x: float,
    y: float,
    radius: float,
    *,
    store: Any,
    principal: Principal,
    grid_code: str | None,
    lonlat: tuple[float, float],
) -> NearbyPublic:
    # read from the store (GiST on PostGIS, box arrays and primary keys on SQLite): the
    # service keeps no household in memory. The audit row is written before the answer
    # is given (on PostGIS in the transaction of the read itself).
    cols = list(Resident.model_fields)

    def audit(s: Any, near: pd.DataFrame, hh: pd.DataFrame) -> None:
        write_audit(
            s,
            actor=principal.actor,
            action="read_residents",
            entity="grid",
            entity_id=grid_code or "-",
            grid_code=grid_code,
            households=hh["household_id"].astype(str).tolist() if len(hh) else [],
            after={
                "plan_id": area.plan_id,
                "lon_wgs84": round(lonlat[0], 7),
                "lat_wgs84": round(lonlat[1], 7),
                "radius_m": radius,
                "buildings": near["building_id"].astype(str).tolist(),
                "households": len(hh),
            },
        )

    near, hh = area.nearby(x, y, radius, audit=audit)
    residents: list[Resident] = []
    if len(hh):
        present = [c for c in cols if c in hh.columns]
        for row in hh[present].itertuples(index=False, name=None):
            residents.append(Resident(**{c: _clean(v) for c, v in zip(present, row, strict=True)}))
    return NearbyPublic(
        radius_m=radius,
        buildings=[
            NearbyBuilding(**{str(k): _clean(v) for k, v in rec.items()})
            for rec in near.to_dict("records")
        ],
        residents=residents,
        n_households=len(residents),
    )


_PARAMETERS = [
    {
        "name": "lon",
        "in": "query",
        "required": True,
        "schema": {"type": "number"},
        "description": "longitude (or x of a projected CRS)",
    },
    {
        "name": "lat",
        "in": "query",
        "required": True,
        "schema": {"type": "number"},
        "description": "latitude (or y of a projected CRS)",
    },
    {
        "name": "crs",
        "in": "query",
        "schema": {"type": "string", "default": "wgs84"},
        "description": CRS_HELP,
    },
    {
        "name": "plan",
        "in": "query",
        "schema": {"type": "integer"},
        "description": "a plan id (default: the published plans)",
    },
    {
        "name": "radius",
        "in": "query",
        "schema": {"type": "number", "exclusiveMinimum": 0},
        "description": "metres: also list buildings and residents (dispatcher and up; audited)",
    },
]


def _number(params: Any, name: str, kind: type, required: bool) -> Any:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise InputError(
                f"{name} is required: /locate?lon=118.78&lat=32.05[&crs=gcj02] (degrees, lon first)"
            )
        return None
    try:
        return kind(raw)
    except ValueError:
        raise InputError(
            f"{name}={raw!r} is not a{'n integer' if kind is int else ' number'}"
        ) from None


def _query_dict(raw: bytes) -> dict[str, str]:
    """Return the parameters of a query string (the last value of a repeated name wins).

    As Starlette's ``request.query_params``, in a fifth of the time on the hot path.

    Examples
    --------
    >>> _query_dict(b"lon=118.78&lat=32.05&crs=EPSG%3A4490&name=a+b&lat=1")
    {'lon': '118.78', 'lat': '1', 'crs': 'EPSG:4490', 'name': 'a b'}
    """
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    out: dict[str, str] = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            out[name] = value
    return out


def _query(request: Request) -> tuple[float, float, str, int | None, float | None]:
    """Parse the query of ``/locate`` by hand (FastAPI's per-parameter validation is slow)."""
    q = _query_dict(request.scope.get("query_string", b""))
    return (
        _number(q, "lon", float, True),
        _number(q, "lat", float, True),
        q.get("crs") or "wgs84",
        _number(q, "plan", int, False),
        _number(q, "radius", float, False),
    )


@router.get(
    "/locate",
    response_model=LocatePublic,
    summary="Locate a point: its grid, community, staff (坐标式定位)",
    openapi_extra={**SECURITY, "parameters": _PARAMETERS},
)
async def locate(ctx: ViewerContextDep, request: Request) -> Response:
    """Locate one point in the published plan(s).

    Viewers see grids and codes; dispatchers and up also see the staff with
    phones and, with ``radius``, the buildings and residents nearby.
    """
    return _json_response(await _locate(ctx, request))


_viewer_context = require_context("viewer")


async def locate_fast(request: Request) -> Response:
    """``GET /locate`` without FastAPI's per-request dependency solving.

    Mounted as a plain Starlette route in front of the documented :func:`locate`
    (see :func:`gridmap.api.app.create_app`); same checks, same answer. It serves
    what :func:`locate_asgi` passes on (``HEAD``, a request with a body).
    """
    return _json_response(await _locate(await _viewer_context(request), request))


async def locate_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /locate`` as a bare ASGI app: the hot path, in front of the app's middleware.

    :func:`gridmap.api.app.create_app` sends a ``GET /locate`` without a body here
    before the app's own middleware and router (which cost as much CPU as the
    locating itself). It does what they would do: the same key and role checks
    (and wrong-key limits), the same answer and audit, ``nosniff`` on every
    answer, errors as problem+json through :func:`gridmap.api.errors.error_response`
    (an unexpected one as a logged 500).

    Parameters
    ----------
    scope, receive, send
        The ASGI call (``scope["app"]`` is the gridmap app, started).
    """
    request = Request(scope, receive)
    try:
        content = _dumps(await _locate(await _viewer_context(request), request))
    except Exception as exc:  # noqa: BLE001 - answered as the app's handlers would
        response = error_response(request, exc)
        response.raw_headers.append(NOSNIFF)
        await response(scope, receive, send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(content)).encode()),
                (b"content-type", b"application/json"),
                NOSNIFF,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


async def _locate(ctx: RequestContext, request: Request) -> dict[str, Any]:
    """Return the answer of ``GET /locate`` (a JSON-ready dict of :class:`LocatePublic`)."""
    lon, lat, crs, plan, radius = _query(request)
    principal, locator = ctx.principal, ctx.locator
    _check_radius(radius, principal, ctx.settings.max_radius_m)
    if plan is not None and not any(a.plan_id == plan for a in locator.areas):
        r = await _run(locator.locate_one, lon, lat, crs, plan_id=plan)  # may load a plan
    else:
        r = locator.locate_one(lon, lat, crs, plan_id=plan)
    area: Area = r["area"]
    row = r["row"]
    found = r["found"]
    grid = _grid_dict(area, row) if found else None
    info = area.community_info(grid["community_id"]) if grid is not None else {}
    code = grid["grid_code"] if grid is not None else None
    status = "outside" if not found else ("on_boundary" if r["on_boundary"] else "inside")
    body: dict[str, Any] = {
        "query": {
            "lon": lon,
            "lat": lat,
            "crs": r["crs"].name,
            "lon_wgs84": r["lon_wgs84"],
            "lat_wgs84": r["lat_wgs84"],
        },
        "status": status,
        "grid": grid,
        "on_boundary": r["on_boundary"],
        "candidates": [_grid_dict(a, c) for a, c in r["candidates"]],
        "distance_to_boundary_m": round(r["distance_to_boundary"], 3) if found else None,
        "outside": not found,
        "nearest": None if found else _grid_dict(area, row),
        "nearest_distance_m": None if found else round(r["nearest_distance"], 3),
        "community": (
            {
                "community_id": str(grid["community_id"]),
                "code": info.get("code"),
                "name": info.get("name"),
            }
            if grid is not None and grid["community_id"] is not None
            else None
        ),
        "street": {"code": info.get("street_code"), "name": info.get("street")} if info else None,
        "district": (
            {"code": info.get("district_code"), "name": info.get("district")} if info else None
        ),
        "staff": (
            _staff_dict(area, str(code)) if found and principal.allows("dispatcher") else None
        ),
        "nearby": None,
        "hint": None if found else _hint(locator, lon, lat, r["crs"], plan, r["nearest_distance"]),
    }
    if radius is not None:
        nearby = await _run(
            _nearby,
            area,
            r["x"],
            r["y"],
            float(radius),
            store=ctx.store,
            principal=principal,
            grid_code=code,
            lonlat=(r["lon_wgs84"], r["lat_wgs84"]),
        )
        body["nearby"] = nearby.model_dump()
    return body


def _hint(
    locator: Any, lon: float, lat: float, spec: Any, plan: int | None, distance: float
) -> str | None:
    """Say why a point may fall outside every grid: swapped axes, or the wrong CRS.

    Tries the point with lon/lat swapped and, for WGS84/GCJ-02/BD-09 input, in
    the other two systems (phone apps give GCJ-02 or BD-09, 300–700 m off);
    names the first reading that lands in a grid.
    """
    tries: list[tuple[str, float, float, str]] = []
    if spec.kind in ("wgs84", "gcj02", "bd09"):
        for other in ("gcj02", "bd09", "wgs84"):
            if other != spec.kind:
                tries.append(
                    (f"if these are {other.upper()} coordinates, pass crs={other}", lon, lat, other)
                )
    if abs(lat) <= 180 and abs(lon) <= 90 or not spec.is_geographic:
        tries.append(("lon/lat (x/y) look swapped: send lon (x) first", lat, lon, spec.name))
    for text, x, y, crs in tries:
        try:
            r = locator.locate_one(x, y, crs, plan_id=plan)
        except GridmapError:
            continue
        if r["found"]:
            return f"{text}: the point then lies in grid {r['area'].index.codes[r['row']]}"
    if not spec.is_geographic and abs(lon) <= 180 and abs(lat) <= 90:
        return f"these look like degrees, not {spec.name} metres: pass crs=wgs84 (or gcj02, bd09)"
    if distance > 10_000:
        return (
            f"the nearest grid is {distance / 1000:,.0f} km away: check the coordinates and their "
            "crs (GCJ-02 from AMap/Tencent/WeChat, BD-09 from Baidu)"
        )
    return None


# ----------------------------------------------------------------------------- batch


def _wants_csv(fmt: str | None, accept: str) -> bool:
    if fmt is not None:
        return fmt == "csv"
    accept = accept.lower()
    return "text/csv" in accept and "application/json" not in accept.split("text/csv")[0]


@router.post(
    "/locate/batch",
    response_model=BatchPublic,
    summary="Locate many points (JSON, GeoJSON or CSV in; JSON or CSV out)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/BatchRequest"},
                    "example": {
                        "crs": "gcj02",
                        "points": [{"id": "t1", "lon": 118.7907, "lat": 32.0525}],
                    },
                },
                "application/geo+json": {"schema": {"type": "object"}},
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "id,lon,lat\nt1,118.79,32.05\n",
                },
            },
        }
    },
)
async def locate_batch(
    request: Request,
    locator: LocatorDep,
    settings: SettingsDep,
    principal: ViewerDep,
    crs: Annotated[str | None, Query(description=CRS_HELP + " (default of every point)")] = None,
    plan: Annotated[int | None, Query(description="a plan id (default: published)")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="answer format")] = None,  # noqa: A002
    errors: Annotated[
        Literal["fail", "report"],
        Query(description="fail: 400 on any bad point; report: an error per row"),
    ] = "fail",
) -> Response:
    """Locate up to ``GRIDMAP_MAX_BATCH_POINTS`` points in one call (a day's 12345 tickets).

    Each row has ``status`` (``inside`` / ``on_boundary`` / ``outside`` /
    ``error``), the grid, candidates, distances, community, sub-district and
    district; dispatchers and up also get the chief and workers with phones.
    """
    body = await request.body()
    started, cpu = time.perf_counter(), time.process_time()
    content, media = await _run(
        _answer_batch,
        body,
        request.headers.get("content-type", ""),
        locator=locator,
        limit=settings.max_batch_points,
        crs=crs,
        plan=plan,
        see_staff=principal.allows("dispatcher"),
        report_errors=errors == "report",
        csv_out=_wants_csv(format, request.headers.get("accept", "")),
    )
    wall = (time.perf_counter() - started) * 1000
    cpu = (time.process_time() - cpu) * 1000
    timing = f"locate;dur={wall:.1f}, cpu;dur={cpu:.1f}"
    return Response(content, media_type=media, headers={"Server-Timing": timing})


_GC_LOCK = threading.Lock()
_GC_PAUSES = [0, False]  # batches running, whether the collector was enabled before


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch runs.

    A 100 k-point batch makes millions of short-lived objects (points, rows,
    strings); each allocation burst triggers collections that walk every live
    object of the process (the served plans included) and would double the
    batch's time. Nothing a batch makes is cyclic garbage, so pausing is safe;
    the collector resumes when the last running batch ends.
    """
    with _GC_LOCK:
        if _GC_PAUSES[0] == 0:
            _GC_PAUSES[1] = gc.isenabled()
            gc.disable()
        _GC_PAUSES[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_PAUSES[0] -= 1
            if _GC_PAUSES[0] == 0 and _GC_PAUSES[1]:
                gc.enable()


def _answer_batch(
    body: bytes,
    content_type: str,
    *,
    locator: Any,
    limit: int,
    crs: str | None,
    plan: int | None,
    see_staff: bool,
    report_errors: bool,
    csv_out: bool,
) -> tuple[bytes, str]:
    """Parse, check, locate and serialise a batch (in a worker thread)."""
    with _gc_paused():
        points, body_crs = parse_batch(body, content_type)
        if len(points) > limit:
            raise PayloadTooLargeError(
                f"{len(points)} points is more than the limit of {limit} per call; split the "
                "batch (the limit is GRIDMAP_MAX_BATCH_POINTS)",
                limit=limit,
            )
        default_crs = crs or body_crs or "wgs84"
        api_crs(default_crs)  # unknown CRS -> 400 before any work
        frame = locate_rows(
            locator,
            points,
            default_crs,
            plan_id=plan,
            see_staff=see_staff,
            report_errors=report_errors,
        )
        if csv_out:
            return _dump_csv(frame), "text/csv; charset=utf-8"
        return _dump_json(frame), "application/json"


async def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)


def _dump_csv(frame: pd.DataFrame) -> bytes:
    """CSV text of the batch answer (pyarrow's writer: ~10x pandas on object columns)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    arrays, names = [], []
    for name in frame.columns:
        col = frame[name]
        if name == "candidates":
            values = [";".join(c) for c in col.tolist()]
            arrays.append(pa.array(values, type=pa.string()))
        elif col.dtype.kind in "fb":
            arrays.append(pa.array(col.to_numpy(), from_pandas=True))
        elif name == "plan_id":
            arrays.append(pa.array(col.tolist(), type=pa.int64()))
        else:
            arrays.append(pa.array(col.tolist(), type=pa.string(), from_pandas=True))
        names.append(name)
    sink = io.BytesIO()
    pacsv.write_csv(
        pa.table(arrays, names=names),
        sink,
        write_options=pacsv.WriteOptions(quoting_style="needed"),
    )
    return sink.getvalue()


def _dump_json(frame: pd.DataFrame) -> bytes:
    st = frame["status"].to_numpy(object)
    summary = {
        "count": len(frame),
        "located": int(np.isin(st, ("inside", "on_boundary")).sum()),
        "on_boundary": int((st == "on_boundary").sum()),
        "outside": int((st == "outside").sum()),
        "errors": int((st == "error").sum()),
    }
    # pandas' C encoder writes the records (NaN as null) without building 100 k dicts
    records = frame.to_json(orient="records", force_ascii=False, double_precision=15)
    head = json.dumps(summary)[:-1]
    return f'{head}, "results": {records}}}'.encode()
