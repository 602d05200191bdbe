"""Plans over HTTP: list, read, create (background partition), edit, publish, diff, export.

=======  ===================================  ======================================
method   path                                 what
=======  ===================================  ======================================
GET      /plans                               list (``status``, ``community_id``, ``area``)
POST     /plans                               run the partitioner → ``202`` + ``Location``
GET      /plans/jobs/{job_id}                 job status, progress, result or problem
GET      /plans/{id}                          metadata + quality figures; ``ETag``
GET      /plans/{id}/grids                    grids as GeoJSON (WGS84)
POST     /plans/{id}/edits                    one edit ``{op: …}``; ``If-Match`` required
POST     /plans/{id}/publish                  publish; ``If-Match`` required
GET      /plans/{a}/diff/{b}                  what changed from ``a`` to ``b``
GET      /plans/{id}/export?format=…          gpkg, geojson, shp (zipped), parquet, csv
=======  ===================================  ======================================

**Versions.** A plan's ``ETag`` is its edit version (``"3"``). Every edit and
publish must send ``If-Match`` with the version it was based on: a missing
header is ``428 Precondition Required``; a stale one is ``412 Precondition
Failed`` (nothing is written, never a silent overwrite) — reload and retry.

**Edits** go through one route, ``POST /plans/{id}/edits``, with a body
discriminated by ``op`` (``move_buildings``, ``merge``, ``split``, ``lock``,
``unlock``, ``repartition``, ``restaff``; see
:mod:`gridmap.api.plan_schemas`) and are applied by
:mod:`gridmap.partition.edit` on a **draft** plan (a published plan answers
``409``: save an edited copy as a new plan). Every edit is validated (band,
contiguity, tiling, community, locks): an edit breaking a hard rule is
refused with ``422`` and the violations, and the stored plan is untouched;
band violations are warnings returned with the applied edit. An applied edit
writes the new content and two audit rows in one transaction: ``update``
(grids before/after, by the storage layer) and ``edit.<op>`` (the request,
the versions and the violations).

**Jobs.** ``POST /plans`` runs the partitioner in the background (see
:mod:`gridmap.api.jobs`; one at a time, ``n_jobs=1``); jobs live in memory
and do not survive a restart.

**Roles.** Viewers read plans, figures, grids, diffs and exports without
personal data (no staff, no household rows); planners create, edit and
publish, and their GeoPackage export holds the full plan.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any

import geopandas as gpd
import pandas as pd
import shapely
from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from gridmap.api.deps import LocatorDep, PlanId, PlannerDep, Principal, StoreDep, ViewerDep
from gridmap.api.errors import problem
from gridmap.api.jobs import get_runner
from gridmap.api.plan_schemas import (
    EditPublic,
    JobPublic,
    PlanCreate,
    PlanDetail,
    PlanDiffPublic,
    PlanEdit,
    PlanPublic,
    PlansPublic,
)
from gridmap.db import (
    diff_plans,
    get_plan,
    list_plans,
    load_layers,
    load_plan,
    publish_plan,
    save_plan,
    update_plan,
    write_audit,
)
from gridmap.db.audit import audit_export
from gridmap.db.plans import PlanRecord, plan_figures
from gridmap.db.spatial import load_served_plan
from gridmap.errors import ConflictError, InputError
from gridmap.partition.plan import GRID_COLUMNS, Plan, jsonable

__all__ = ["router"]

router = APIRouter(prefix="/plans", tags=["plans"])

_MEDIA = {
    "gpkg": ("application/geopackage+sqlite3", ".gpkg"),
    "geojson": ("application/geo+json", ".geojson"),
    "shp": ("application/zip", ".zip"),
    "parquet": ("application/vnd.apache.parquet", ".parquet"),
    "csv": ("text/csv; charset=utf-8", ".csv"),
}
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
#: Per-grid figures shown to every role (no personal data in any of them).
_GRID_FIELDS = (
    *GRID_COLUMNS,
    "area_m2",
    "polsby_popper",
    "n_parts",
    "is_enclave",
    "in_band",
    "band_exempt",
    "share_boundary_on_roads",
    "stability",
)


# ----------------------------------------------------------------------------- helpers


def _problem(
    status_code: int,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return problem(status_code, detail, title=title, headers=headers, **jsonable(extra))


def _records(frame: pd.DataFrame | None, columns: Any = None) -> list[dict[str, Any]]:
    if frame is None or len(frame) == 0:
        return []
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    return jsonable(frame.astype(object).to_dict(orient="records"))


def _etag(version: int) -> str:
    return f'"{int(version)}"'


def _public(rec: PlanRecord) -> PlanPublic:
    d = rec.to_dict()
    d["community_ids"] = list(rec.community_ids)
    return PlanPublic.model_validate(d)


def _actor(principal: Principal) -> str:
    return principal.actor


def _is_planner(principal: Principal) -> bool:
    return principal.allows("planner")


def _expected_version(if_match: str | None) -> int | JSONResponse | None:
    """Parse ``If-Match``: a version, ``None`` for ``*``, or a 428 problem when missing."""
    if if_match is None or not if_match.strip():
        return _problem(
            428,
            "Precondition Required",
            'send If-Match with the plan\'s ETag (its version, e.g. If-Match: "3") from '
            "GET /plans/{id}, so that concurrent edits are never silently overwritten",
        )
    if if_match.strip() == "*":
        return None
    m = _ETAG.match(if_match.split(",")[0])
    if not m:
        return _problem(
            400,
            "Bad Request",
            f"If-Match {if_match!r} is not a plan version; send the ETag of GET /plans/{{id}}, "
            'e.g. If-Match: "3"',
        )
    return int(m.group(1))


def _stale(plan_id: int, expected: int, current: int) -> JSONResponse:
    return _problem(
        412,
        "Precondition Failed",
        f"plan {plan_id} is at version {current}, not {expected}: someone changed it since "
        "you loaded it; reload it (GET /plans/{id}) and apply your change again",
        headers={"ETag": _etag(current)},
        current_version=current,
    )


# ----------------------------------------------------------------------------- list / create


@router.get("", response_model=PlansPublic, summary="List plans")
def list_plans_route(
    store: StoreDep,
    _viewer: ViewerDep,
    status_: Annotated[
        str | None, Query(alias="status", pattern="^(draft|published|archived)$")
    ] = None,
    community_id: str | None = None,
    area: Annotated[
        str | None, Query(description="Comma-separated community ids: plans of exactly this area")
    ] = None,
) -> PlansPublic:
    """List stored plans, oldest first, filtered by status, community or area."""
    ids = [a.strip() for a in area.split(",") if a.strip()] if area else None
    recs = list_plans(store, status=status_, community_id=community_id, area=ids)
    return PlansPublic(data=[_public(r) for r in recs], count=len(recs))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    summary="Partition stored layers into a new draft plan (background job)",
)
def create_plan(
    body: PlanCreate, request: Request, response: Response, store: StoreDep, planner: PlannerDep
) -> JobPublic:
    """Queue a partition run; poll ``Location`` for progress and the new plan's id."""
    from gridmap.partition import partition

    author = _actor(planner)
    params = body.model_dump()
    _check_create(store, body)  # an unknown parent: 404 now, not a failed job

    def run(progress: Any) -> dict[str, Any]:
        layers = load_layers(store, params["community_ids"])
        progress(0, len(layers.communities))
        plan = partition(
            layers,
            min_households=params["min_households"],
            max_households=params["max_households"],
            target=params["target"],
            n_grids=params["n_grids"],
            seed=params["seed"],
            n_jobs=1,
            progress=progress,
        )
        rec = save_plan(
            store, plan, author=author, name=params["name"], parent_id=params["parent_id"]
        )
        return {"plan_id": rec.id, "version": rec.version, "url": f"/plans/{rec.id}"}

    job = get_runner(request.app).submit(
        run, kind="partition", author=author, total=len(body.community_ids or [])
    )
    response.headers["Location"] = f"/plans/jobs/{job.id}"
    return JobPublic.model_validate(job.to_dict())


def _check_create(store: Any, body: PlanCreate) -> None:
    """Refuse a partition run under an unknown parent plan before queuing it."""
    if body.parent_id is not None:
        get_plan(store, body.parent_id)  # NotFoundError -> 404


@router.get("/jobs/{job_id}", response_model=JobPublic, summary="Poll a background job")
def get_job(job_id: str, request: Request, _viewer: ViewerDep) -> JobPublic:
    """Return a job's status, progress and result (or error problem)."""
    return JobPublic.model_validate(get_runner(request.app).get(job_id).to_dict())


# ----------------------------------------------------------------------------- read


@router.get(
    "/{plan_id}",
    response_model=PlanDetail,
    summary="A plan with its figures",
    responses={304: {"description": "Not modified: If-None-Match is the plan's ETag"}},
)
def get_plan_route(
    plan_id: PlanId,
    store: StoreDep,
    _viewer: ViewerDep,
    response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    """Return a plan's metadata and quality figures; ``ETag`` is its version."""
    rec = get_plan(store, plan_id)
    if if_none_match is not None and if_none_match.strip() == _etag(rec.version):
        return Response(status_code=304, headers={"ETag": _etag(rec.version)})
    # the grids' figures and the report only: neither the outlines nor the memberships (a
    # row per household, millions in a city, gigabytes in memory) are shown here
    grids, rep = plan_figures(store, plan_id)
    detail = PlanDetail(
        **_public(rec).model_dump(),
        overall=jsonable(dict(rep.overall)) if rep is not None else {},
        communities=_records(rep.communities) if rep is not None else [],
        grids=_records(grids, _GRID_FIELDS),
    )
    response.headers["ETag"] = _etag(rec.version)
    return detail


@router.get(
    "/{plan_id}/grids",
    summary="The plan's grids as GeoJSON (WGS84)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def get_grids(plan_id: PlanId, store: StoreDep, _viewer: ViewerDep) -> Response:
    """Return the grids as a GeoJSON FeatureCollection in WGS84 lon/lat."""
    rec = get_plan(store, plan_id)
    plan = load_served_plan(store, plan_id, memberships=False, report=False)
    g = plan.grids_wgs84()
    keep = [c for c in _GRID_FIELDS if c in g.columns]
    g = gpd.GeoDataFrame(g[keep], geometry=g.geometry, crs=4326)
    text = g.to_json(na="null", drop_id=True, ensure_ascii=False)
    return Response(
        content=text.encode("utf-8"),
        media_type="application/geo+json",
        headers={"ETag": _etag(rec.version)},
    )


@router.get("/{a}/diff/{b}", response_model=PlanDiffPublic, summary="Compare two plans")
def diff_route(a: PlanId, b: PlanId, store: StoreDep, _viewer: ViewerDep) -> PlanDiffPublic:
    """Grids added, removed, changed and buildings that change grid from plan ``a`` to ``b``."""
    d = diff_plans(store, a, b)
    moved = d.moved
    if len(moved):
        moved = (
            moved.assign(
                grid_a=moved["grid_a"].astype(object).where(moved["grid_a"].notna(), None),
                grid_b=moved["grid_b"].astype(object).where(moved["grid_b"].notna(), None),
            )
            .groupby(["building_id", "grid_a", "grid_b"], dropna=False, sort=True)
            .size()
            .rename(d.unit)
            .reset_index()
        )
    return PlanDiffPublic(
        a=a,
        b=b,
        summary=jsonable(d.summary()),
        grids_added=_records(d.grids_added),
        grids_removed=_records(d.grids_removed),
        grids_changed=_records(d.grids_changed),
        moved_buildings=_records(moved),
    )


@router.get(
    "/{plan_id}/export",
    summary="Download the plan as a file",
    response_class=FileResponse,
    responses={200: {"content": {m: {} for m, _ in _MEDIA.values()}}},
)
def export_route(
    plan_id: PlanId,
    store: StoreDep,
    viewer: ViewerDep,
    format: Annotated[str, Query(pattern="^(gpkg|geojson|shp|parquet|csv)$")] = "gpkg",  # noqa: A002
) -> FileResponse:
    """Export with :func:`gridmap.io.export_plan`; a Shapefile comes zipped with its sidecars."""
    from gridmap.io import FORMATS, export_plan

    rec = get_plan(store, plan_id)
    plan = load_plan(store, plan_id)
    if not _is_planner(viewer):
        plan = plan.replace(assignments=None, households=None)
    personal = plan.assignments is not None or plan.households is not None
    media, suffix = _MEDIA[format]
    stem = f"plan-{plan_id}-v{rec.version}"
    tmp = Path(tempfile.mkdtemp(prefix="gridmap-export-"))
    try:
        path = export_plan(plan, tmp / f"{stem}{FORMATS[format]}", fmt=format)
        if format == "shp":
            zpath = tmp / f"{stem}.zip"
            with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
                for part in sorted(tmp.glob(f"{stem}.*")):
                    if part.suffix != ".zip":
                        zf.write(part, arcname=part.name)
            path = zpath
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    audit_export(
        store, actor=_actor(viewer), entity="plan", entity_id=plan_id, fmt=format, personal=personal
    )
    return FileResponse(
        path,
        media_type=media,
        filename=f"{stem}{suffix}",
        headers={"ETag": _etag(rec.version)},
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
    )


# ----------------------------------------------------------------------------- publish


@router.post(
    "/{plan_id}/publish",
    response_model=PlanPublic,
    summary="Publish a plan",
    responses={
        409: {"description": "Publishing would leave communities without published grids"},
        412: {"description": "Stale If-Match: the plan changed since you loaded it"},
        428: {"description": "If-Match missing"},
    },
)
def publish_route(
    plan_id: PlanId,
    store: StoreDep,
    planner: PlannerDep,
    locator: LocatorDep,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(
            description='Required: the ETag of GET /plans/{id} (its version, e.g. "3"). '
            "Without it: 428; stale: 412."
        ),
    ] = None,
    allow_uncovered: Annotated[
        bool,
        Query(
            description="Publish even if communities of the plan it replaces are left "
            "without published grids (otherwise 409 naming them)."
        ),
    ] = False,
) -> Any:
    """Publish (archiving the published plan of the same communities); needs ``If-Match``."""
    expected = _expected_version(if_match)
    if isinstance(expected, JSONResponse):
        return expected
    rec = get_plan(store, plan_id)
    if expected is not None and rec.version != expected:
        return _stale(plan_id, expected, rec.version)
    try:
        rec = publish_plan(
            store,
            plan_id,
            author=_actor(planner),
            expected_version=expected,
            allow_uncovered=allow_uncovered,
        )
    except ConflictError as exc:
        if exc.current_version is None:  # not a version race: e.g. it would uncover communities
            raise
        return _stale(plan_id, expected or rec.version, exc.current_version or rec.version)
    locator.refresh()
    response.headers["ETag"] = _etag(rec.version)
    return _public(rec)


# ----------------------------------------------------------------------------- edits


def _edit_params(body: Any, plan: Plan) -> dict[str, Any]:
    """Turn an edit body into keyword arguments of :func:`gridmap.partition.edit.apply_edit`."""
    data = body.model_dump(exclude={"op"}, exclude_none=True)
    if body.op == "split" and body.line is not None:
        try:
            geom = shapely.geometry.shape(body.line)
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            shapely.errors.ShapelyError,
        ) as exc:
            raise InputError(
                f"line is not a GeoJSON geometry ({exc}); send "
                '{"type": "LineString", "coordinates": [[lon, lat], ...]} in WGS84'
            ) from exc
        data["line"] = gpd.GeoSeries([geom], crs=4326).to_crs(plan.crs).iloc[0]
    if body.op == "restaff":
        data = {k: v for k, v in data.items() if v is not None}
    return data


@router.post(
    "/{plan_id}/edits",
    response_model=EditPublic,
    summary="Apply one edit to a draft plan",
    responses={
        409: {"description": "The plan is not a draft"},
        412: {"description": "Stale If-Match: the plan changed since you loaded it"},
        422: {"description": "Edit refused: the violations say which rules it breaks"},
        428: {"description": "If-Match missing"},
    },
)
def edit_route(
    plan_id: PlanId,
    body: PlanEdit,
    store: StoreDep,
    planner: PlannerDep,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(
            description='Required: the ETag of GET /plans/{id} (its version, e.g. "3"). '
            "Without it: 428; stale: 412."
        ),
    ] = None,
) -> Any:
    """Validate and apply an edit; refused edits (422) and stale ones (412) change nothing."""
    from gridmap.partition.edit import apply_edit

    expected = _expected_version(if_match)
    if isinstance(expected, JSONResponse):
        return expected
    rec = get_plan(store, plan_id)
    if expected is None:
        expected = rec.version
    if rec.version != expected:
        return _stale(plan_id, expected, rec.version)
    if rec.status != "draft":
        return _problem(
            409,
            "Conflict",
            f"plan {plan_id} is {rec.status}; only draft plans are edited. Create a new draft "
            "(POST /plans with parent_id) and edit that",
            current_version=rec.version,
        )
    plan = load_plan(store, plan_id)
    layers = load_layers(store, list(rec.community_ids), crs=plan.crs)
    result = apply_edit(plan, layers, body.op, **_edit_params(body, plan))
    outcome = jsonable(result.to_dict())
    author = _actor(planner)
    if not result.ok:
        return _problem(
            422,
            "Edit refused",
            "; ".join(v["message"] for v in result.errors[:5]),
            op=body.op,
            violations=outcome["violations"],
            figures=outcome["figures"],
            current_version=rec.version,
        )
    if result.plan is plan:  # nothing to change (e.g. locking a locked grid): no new version
        response.headers["ETag"] = _etag(rec.version)
        return EditPublic(
            plan=_public(rec),
            op=body.op,
            ok=True,
            affected=[],
            removed=[],
            violations=outcome["violations"],
            notes=[*result.notes, f"nothing changed; the plan stays at version {rec.version}"],
            figures=outcome["figures"],
            staffing=outcome["staffing"],
        )
    try:
        with store.session(write=True) as s:
            new = update_plan(s, plan_id, result.plan, author=author, expected_version=expected)
            write_audit(
                s,
                actor=author,
                action=f"edit.{body.op}",
                entity="plan",
                entity_id=plan_id,
                before={"version": expected},
                after={
                    "version": new.version,
                    "request": json.loads(body.model_dump_json()),
                    "affected": result.affected,
                    "removed": result.removed,
                    "violations": outcome["violations"],
                    "notes": result.notes,
                },
            )
    except ConflictError as exc:
        current = exc.current_version
        if current is not None and current != expected:
            return _stale(plan_id, expected, current)
        raise
    response.headers["ETag"] = _etag(new.version)
    return EditPublic(
        plan=_public(new),
        op=body.op,
        ok=True,
        affected=result.affected,
        removed=result.removed,
        violations=outcome["violations"],
        notes=result.notes,
        figures=outcome["figures"],
        staffing=outcome["staffing"],
    )
