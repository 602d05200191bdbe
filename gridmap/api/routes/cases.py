"""Cases (事件工单) over HTTP: intake, import, lists, the log, actions, calendar status.

=======  ===============================  ==============================================
method   path                             what
=======  ===============================  ==============================================
POST     /cases                           one ticket → ``201`` (``200`` if already stored)
POST     /cases/import                    a CSV/XLSX body of tickets, one transaction
GET      /cases                           filters + paging + ``total``; JSON, CSV, GeoJSON
GET      /cases/stats                     performance figures by unit (JSON, CSV with BOM)
GET      /cases/workload                  cases per worker per month by grid
GET      /cases/{id}                      one case; ``ETag`` is its version
GET      /cases/{id}/log                  办理轨迹 (append-only)
POST     /cases/{id}/{action}             an action of the state machine; ``If-Match``
POST     /cases/reroute                   flag open cases another grid covers now
POST     /cases/sweep                     sweep the timers now (admin)
GET      /calendar/status                 official / provisional years of the calendar
=======  ===============================  ==============================================

**Roles and scope.** A key acts on cases with the role its key role and scope give
(:func:`gridmap.db.keys.case_role`): a ``staff`` key bound to ``grid:<code>`` is
that grid's worker, and so on; dispatchers and planners are dispatchers, admins
admins. Lists only hold cases in the key's unit; a case outside it is ``403``.
Viewers get the reporter's name and phone masked; every unmasked read is audited.

**Actions** need ``If-Match`` with the case's version (``428`` without it, ``412``
when stale: reload and retry). An action the state does not allow is ``409`` with
the ``allowed`` ones; a role that may not take it, ``403``.
"""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import ID_MAX, AdminDep, Principal, StoreDep, ViewerDep
from gridmap.api.errors import PROBLEM_RESPONSES, PayloadTooLargeError, problem
from gridmap.cases import ACTIONS, TZ, Actor
from gridmap.db.cases import (
    act,
    calendar_status,
    case_log,
    create_case,
    get_case,
    import_cases,
    list_cases,
    reroute_cases,
    sweep_cases,
)
from gridmap.db.keys import case_role
from gridmap.errors import ConflictError, InputError, PermissionDeniedError

__all__ = ["router", "actor_of"]

router = APIRouter(tags=["cases"], responses=PROBLEM_RESPONSES)

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
CaseId = Annotated[int, Path(ge=1, le=ID_MAX, description="a case id (GET /cases lists them)")]


def actor_of(principal: Principal) -> Actor:
    """Return the case actor of an API key (role from key role and scope)."""
    role = case_role(principal.role, principal.scope_level)
    return Actor(principal.actor, role, principal.scope_code)


def _actor(principal: ViewerDep) -> Actor:
    return actor_of(principal)


ActorDep = Annotated[Actor, Depends(_actor)]


def _not_viewer(actor: Actor, what: str) -> None:
    if actor.role == "viewer":
        raise PermissionDeniedError(
            f"viewers cannot {what}; ask an admin for a dispatcher key or a staff key bound "
            "to your unit (gridmap keys create --role staff --scope grid:<code>)"
        )


class TicketCreate(BaseModel):
    """Body of ``POST /cases``: one ticket (Chinese values accepted: 热线, 噪音扰民 …)."""

    ticket_no: str | None = Field(default=None, max_length=64, description="工单编号")
    received_at: str | None = Field(default=None, description="来电时间, ISO; naive = +08:00")
    source: str = Field(description="hotline | app | patrol | online | walkin (or 12345 …)")
    category: str = Field(description="noise, garbage, road … (or 噪音扰民 …)")
    urgency: str | None = Field(default=None, description="urgent | ordinary (紧急/一般)")
    hard: bool = False
    policy: str | None = None
    description: str = Field(description="诉求内容")
    reporter_name: str | None = None
    reporter_phone: str | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str | None = Field(default=None, description="wgs84 | gcj02 | bd09 | cgcs2000 | EPSG:…")
    address: str | None = None


class ActionBody(BaseModel):
    """Body of ``POST /cases/{id}/{action}`` (what the action requires)."""

    note: str | None = None
    reason: str | None = None
    satisfaction: str | None = Field(default=None, description="satisfied | fairly_satisfied …")
    handler: str | None = Field(default=None, description="KIND:UNIT, e.g. grid:320104001001001")
    co_handlers: list[str] = Field(default_factory=list, description="KIND:UNIT[@DUE] each")
    due: str | None = Field(default=None, description="new deadline / sign-in deadline, ISO")
    departments: list[str] = Field(default_factory=list)
    grid: str | None = Field(default=None, description="place: the published grid code")
    into: int | None = Field(default=None, description="merge: the case this one duplicates")
    at: str | None = Field(default=None, description="when it happened (default: now)")


def _etag(version: int) -> str:
    return f'"{int(version)}"'


def _author(principal: Principal) -> str:
    return principal.actor


@router.post(
    "/cases",
    status_code=status.HTTP_201_CREATED,
    summary="Take in one ticket (located on the published plans)",
    responses={
        200: {
            "description": "The ticket was taken in before (same ticket_no): the stored case",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        409: {"description": "The ticket_no is taken by another ticket of that source"},
    },
)
def create_route(
    body: TicketCreate, response: Response, store: StoreDep, principal: ViewerDep
) -> dict[str, Any]:
    """Check, locate and time a ticket; ``200`` with the stored case when it is already in."""
    actor = actor_of(principal)
    _not_viewer(actor, "take in tickets")
    ticket = body.model_dump(exclude_none=True)
    ticket.setdefault("received_at", datetime.now(TZ).isoformat())  # received now
    rec, new = create_case(store, ticket, author=_author(principal))
    if not new:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/cases/{rec.id}"
    response.headers["ETag"] = _etag(rec.case.version)
    return rec.to_dict()


@router.post("/cases/import", summary="Import a CSV or XLSX file of tickets (one transaction)")
async def import_route(
    request: Request,
    store: StoreDep,
    principal: ViewerDep,
    skip_bad: Annotated[
        bool, Query(description="store the good rows and list the rejects")
    ] = False,
    column: Annotated[
        list[str] | None, Query(description="map a column: CANONICAL=SOURCE (repeatable)")
    ] = None,
) -> dict[str, Any]:
    """Import the body: a CSV (``text/csv``) or the ``.xlsx`` bytes.

    A bad row stores nothing (422 listing every bad row by line) unless
    ``skip_bad``; a reused ticket number is 409.
    """
    actor = actor_of(principal)
    _not_viewer(actor, "import tickets")
    limit = request.app.state.settings.max_body_bytes
    body = await request.body()
    if len(body) > limit:  # pragma: no cover - the middleware answers first
        raise PayloadTooLargeError(f"the file is larger than {limit} bytes", limit=limit)
    if not body:
        raise InputError("the request has no body; send the CSV or XLSX file")
    result = await run_in_threadpool(
        lambda: import_cases(
            store,
            body,
            author=_author(principal),
            skip_bad=skip_bad,
            mapping=column,
            name="the uploaded file",
        )
    )
    return {
        "created": len(result.created),
        "unchanged": len(result.unchanged),
        "unlocated": result.unlocated,
        "rejected": [{"line": ln, "error": m} for ln, m in result.rejected],
        "ids": result.created,
        "summary": result.summary(),
    }


#: The 200 answer of a figures table: JSON, or CSV (UTF-8 with BOM, Chinese headers) on request.
_TABLE_ANSWERS: dict[str, Any] = {
    "description": "The table as JSON, or as CSV (UTF-8 with BOM) with format=csv or Accept",
    "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
}


@router.get(
    "/cases",
    summary="List cases (filters, paging, JSON/CSV/GeoJSON)",
    responses={
        200: {
            "description": "A page of cases: JSON (default), GeoJSON or CSV (UTF-8 with BOM)",
            "content": {
                "application/json": {},
                "application/geo+json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def list_route(
    store: StoreDep,
    actor: ActorDep,
    status_: Annotated[list[str] | None, Query(alias="status")] = None,
    grid: str | None = None,
    community: str | None = None,
    subdistrict: str | None = None,
    category: str | None = None,
    source: str | None = None,
    overdue: bool | None = None,
    due_before: str | None = None,
    received_from: str | None = None,
    received_to: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,  # a database integer
    format: Annotated[str, Query(pattern="^(json|csv|geojson)$")] = "json",
) -> Any:
    """Cases in the key's unit, newest first; ``total`` counts every match."""
    records, total = list_cases(
        store,
        actor=actor,
        status=status_,
        grid=grid,
        community=community,
        subdistrict=subdistrict,
        category=category,
        source=source,
        overdue=overdue,
        due_before=due_before,
        received_from=received_from,
        received_to=received_to,
        limit=limit,
        offset=offset,
    )
    headers = {"X-Total-Count": str(total)}
    if format == "csv":
        frame = pd.DataFrame(records)
        if len(frame):
            frame["duplicate_of"] = frame["duplicate_of"].map(lambda v: " ".join(map(str, v)))
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        return Response(
            ("\ufeff" + buf.getvalue()).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={**headers, "Content-Disposition": 'attachment; filename="cases.csv"'},
        )
    if format == "geojson":
        feats = [
            {
                "type": "Feature",
                "id": r["id"],
                "geometry": None
                if r["lon"] is None
                else {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                "properties": {k: v for k, v in r.items() if k not in ("lon", "lat")},
            }
            for r in records
        ]
        return Response(
            json.dumps(
                {"type": "FeatureCollection", "features": feats, "numberMatched": total},
                ensure_ascii=False,
            ),
            media_type="application/geo+json",
            headers=headers,
        )
    return JSONResponse(
        {"data": records, "count": len(records), "total": total, "limit": limit, "offset": offset},
        headers=headers,
    )


def _stats_period(month: str | None, from_: str | None, to: str | None) -> Any:
    """Return the period of a stats request (default: this month), or a 422 problem."""
    from gridmap.cases.stats import stats_period

    if month is None and not from_ and not to:
        month = datetime.now(TZ).strftime("%Y-%m")
    try:
        return stats_period(month=month, start=from_ or None, end=to or None)
    except InputError as exc:
        return problem(422, str(exc), title="Bad period")


def _table_response(
    frame: pd.DataFrame, *, want_csv: bool, name: str, meta: dict[str, Any]
) -> Response:
    from gridmap.cases import label_columns

    if want_csv:
        buf = io.StringIO()
        label_columns(frame).to_csv(buf, index=False)
        return Response(
            ("\ufeff" + buf.getvalue()).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return JSONResponse({**meta, "count": len(records), "data": records})


def _wants_csv(request: Request, format: str | None) -> bool:
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


_FormatQ = Annotated[
    str | None, Query(pattern="^(json|csv)$", description="json (default) or csv (UTF-8 with BOM)")
]


@router.get(
    "/cases/stats",
    summary="Performance figures by grid, community, sub-district, department or staff",
    responses={200: _TABLE_ANSWERS},
)
def stats_route(
    request: Request,
    store: StoreDep,
    actor: ActorDep,
    by: Annotated[str, Query(description="grid | community | subdistrict | department | staff")] = (
        "grid"
    ),
    month: Annotated[str | None, Query(description="YYYY-MM (default: this month)")] = None,
    from_: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    to: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")] = None,
    category: str | None = None,
    grid: str | None = None,
    community: str | None = None,
    subdistrict: str | None = None,
    format: _FormatQ = None,
) -> Any:
    """Return 按时办结率, answer/resolve times, 满意率, reopen rate, cases per 1,000 households.

    Over the cases received in the period, within the key's unit (a unit outside
    it, or ``by`` a level above it, is 403). ``format=csv`` (or ``Accept:
    text/csv``) gives Chinese headers, UTF-8 with BOM for Excel.
    """
    from gridmap.cases import STATS_COLUMNS, STATS_LABELS_ZH
    from gridmap.cases.stats import check_by
    from gridmap.db.case_stats import store_case_stats

    try:
        check_by(by)
    except InputError as exc:
        return problem(422, str(exc), title="Unknown by")
    period = _stats_period(month, from_, to)
    if isinstance(period, Response):
        return period
    lo, hi = period
    frame = store_case_stats(
        store,
        by=by,
        start=lo,
        end=hi,
        category=category,
        grid=grid,
        community=community,
        subdistrict=subdistrict,
        actor=actor,
    )
    meta = {
        "by": by,
        "from": lo.isoformat() if lo else None,
        "to": hi.isoformat() if hi else None,
        "now": frame.attrs.get("now"),
        "category": category,
        "columns": list(STATS_COLUMNS),
        "labels_zh": dict(STATS_LABELS_ZH),
    }
    return _table_response(
        frame, want_csv=_wants_csv(request, format), name=f"case-stats-{by}", meta=meta
    )


@router.get(
    "/cases/workload",
    summary="Cases per worker per month by grid; grids far above",
    responses={200: _TABLE_ANSWERS},
)
def workload_route(
    request: Request,
    store: StoreDep,
    actor: ActorDep,
    month: Annotated[str | None, Query(description="YYYY-MM (default: this month)")] = None,
    from_: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    to: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")] = None,
    category: str | None = None,
    community: str | None = None,
    factor: Annotated[
        float, Query(gt=0, le=100, description="far above: > factor × community median")
    ] = 1.5,
    format: _FormatQ = None,
) -> Any:
    """Return the workload report; ``far_above`` names grids above ``factor`` × the median."""
    from gridmap.cases import WORKLOAD_COLUMNS, WORKLOAD_LABELS_ZH
    from gridmap.db.case_stats import store_workload

    period = _stats_period(month, from_, to)
    if isinstance(period, Response):
        return period
    lo, hi = period
    if lo is None or hi is None:
        return problem(422, "the workload needs both from and to (or a month)", title="Bad period")
    frame = store_workload(
        store, start=lo, end=hi, category=category, community=community, actor=actor, factor=factor
    )
    meta = {
        "from": lo.isoformat(),
        "to": hi.isoformat(),
        "factor": factor,
        "far_above": frame.loc[frame["far_above"], "grid_code"].tolist(),
        "columns": list(WORKLOAD_COLUMNS),
        "labels_zh": dict(WORKLOAD_LABELS_ZH),
    }
    return _table_response(
        frame, want_csv=_wants_csv(request, format), name="case-workload", meta=meta
    )


@router.get("/cases/{case_id}", summary="One case; ETag is its version")
def get_route(
    case_id: CaseId, response: Response, store: StoreDep, principal: ViewerDep
) -> dict[str, Any]:
    """Return the case as your key may see it (reporter masked for viewers; reads audited)."""
    rec = get_case(store, case_id, actor=actor_of(principal), author=_author(principal))
    response.headers["ETag"] = _etag(rec.case.version)
    return rec.to_dict()


@router.get("/cases/{case_id}/log", summary="The case's 办理轨迹 (append-only)")
def log_route(case_id: CaseId, store: StoreDep, actor: ActorDep) -> dict[str, Any]:
    """Who did what when: role, from → to, note."""
    entries = case_log(store, case_id, actor=actor)
    return {"data": entries, "count": len(entries)}


@router.post("/cases/reroute", summary="Flag open cases another published grid covers now")
def reroute_route(store: StoreDep, principal: ViewerDep) -> dict[str, Any]:
    """After a publish: open cases keep their frozen grid and get ``reroute_grid``."""
    actor = actor_of(principal)
    if actor.role not in ("dispatcher", "admin"):
        raise PermissionDeniedError("re-routing needs a dispatcher or admin key")
    return {"flagged": reroute_cases(store, author=_author(principal))}


@router.post("/cases/sweep", summary="Sweep the case timers now (admin)")
def sweep_route(store: StoreDep, _admin: AdminDep) -> dict[str, Any]:
    """Write the warnings, overdue notices, 催办, 督办 and escalations due now (idempotent)."""
    res = sweep_cases(store)
    return {"now": res.now.isoformat(), "written": res.written, "counts": res.counts()}


@router.post(
    "/cases/{case_id}/{action}",
    summary="Act on a case (If-Match: its version)",
    responses={
        409: {"description": "The state does not allow the action (lists the allowed ones)"},
        412: {"description": "Stale If-Match: the case changed since you loaded it"},
        428: {"description": "If-Match missing"},
    },
)
def act_route(
    case_id: CaseId,
    action: Annotated[str, Path(description=f"one of {', '.join(ACTIONS)}")],
    store: StoreDep,
    principal: ViewerDep,
    response: Response,
    body: ActionBody | None = None,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    """Apply an action of the state machine (accept, dispatch, start, reply, callback …)."""
    if action not in ACTIONS:
        return problem(
            404,
            f"no action {action!r}; actions: {', '.join(ACTIONS)}",
            instance=f"/cases/{case_id}/{action}",
        )
    if if_match is None or not if_match.strip():
        return problem(
            428,
            'send If-Match with the case\'s ETag (its version, e.g. If-Match: "3") from '
            "GET /cases/{id}, so that two people never act on one case unknowingly",
            title="Precondition Required",
        )
    m = _ETAG.match(if_match.split(",")[0])
    if not m:
        return problem(400, f'If-Match {if_match!r} is not a case version, e.g. If-Match: "3"')
    b = body or ActionBody()
    try:
        rec = act(
            store,
            case_id,
            action,
            actor=actor_of(principal),
            author=_author(principal),
            expected_version=int(m.group(1)),
            at=b.at,
            note=b.note,
            reason=b.reason,
            satisfaction=b.satisfaction,
            handler=b.handler,
            co_handlers=b.co_handlers,
            due=b.due,
            departments=b.departments,
            grid=b.grid,
            into=b.into,
        )
    except ConflictError as exc:
        headers = {"ETag": _etag(exc.current_version)} if exc.current_version else None
        return problem(
            412,
            str(exc),
            title="Precondition Failed",
            headers=headers,
            current_version=exc.current_version,
        )
    response.headers["ETag"] = _etag(rec.case.version)
    return rec.to_dict()


@router.get("/calendar/status", summary="Official and provisional years of the calendar")
def calendar_route(store: StoreDep, _viewer: ViewerDep) -> dict[str, Any]:
    """Which years follow a State Council notice; open cases with provisional deadlines."""
    st = calendar_status(store)
    return {
        "years": [
            {"year": int(y), "official": bool(o), "source": str(src)}
            for y, o, src in st[["year", "official", "source"]].itertuples(index=False)
        ],
        "open_provisional": st.attrs.get("open_provisional", 0),
    }
