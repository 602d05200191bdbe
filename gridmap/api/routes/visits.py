"""Visits (走访) over HTTP: due lists, records, a worker's day route, the 四清 register.

=======  =================================================  ======================================
method   path                                               what
=======  =================================================  ======================================
GET      /visits/due?grid=…&month=…                         the grid's visits due that month, with
                                                            who holds each and done/overdue/due
POST     /visits                                            record a visit → ``201``; a follow-up
                                                            can open a case (``open_case``)
GET      /visits                                            stored records (filters), newest first
GET      /visits/route?staff=…&date=…                       the worker's walk for the day (JSON:
                                                            ordered stops + lengths;
                                                            ``format=html``: the map)
GET      /visits/register?grid=…                            the 四清 register (JSON or CSV with
                                                            Chinese headers, UTF-8 with BOM)
=======  =================================================  ======================================

**Who may read.** Households, their must-visit categories and visit notes are
personal data: only a staff key bound to the grid (or its community or
sub-district), dispatchers and admins read them — viewers and departments get
``403`` — and every such read is audited. The register holds counts only (any
key, within its unit). A visit is recorded for a household of the key's unit by
the staff member serving the household's grid (else ``403``); a visit in the
future, before the household was registered, with an unknown outcome or an
unknown visit category gives ``422``. A worker with nothing open gets an empty
route, not an error.

Visit rules come from the shipped file, or from ``GRIDMAP_VISIT_RULES`` (a JSON
file merged over it, see :func:`gridmap.visits.load_rules`).
"""

from __future__ import annotations

import datetime as dt
import io
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridmap.api.deps import StoreDep, ViewerDep
from gridmap.api.errors import PROBLEM_RESPONSES
from gridmap.api.routes.cases import actor_of
from gridmap.api.security import Principal
from gridmap.cases import TZ
from gridmap.errors import InputError

__all__ = ["router", "VisitSettings", "get_visit_settings", "VisitCreate"]

router = APIRouter(tags=["visits"], responses=PROBLEM_RESPONSES)


class VisitSettings(BaseSettings):
    """Visit settings (environment variables ``GRIDMAP_VISIT_*``).

    Attributes
    ----------
    rules : Path or None
        A visit rules JSON file merged over the shipped rules (categories,
        cadences, teams); a bad file is reported on every visits request (422).
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_VISIT_", extra="ignore")

    rules: Path | None = None


@lru_cache
def get_visit_settings() -> VisitSettings:
    """Return the visit settings read from the environment (cached)."""
    return VisitSettings()


def _rules() -> Any:
    from gridmap.visits import default_rules, load_rules

    path = get_visit_settings().rules
    return default_rules() if path is None else load_rules(path)


def _month(value: str | None) -> str:
    if value is None:
        return dt.datetime.now(TZ).strftime("%Y-%m")
    import re

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise InputError(f"month {value!r} is not a month; use YYYY-MM, e.g. 2026-09")
    return value


class VisitCreate(BaseModel):
    """Body of ``POST /visits``: one visit (outcomes also in Chinese: 已走访, 未遇, 拒访 …)."""

    staff_id: str = Field(description="who visited (a staff id of the grid)", max_length=64)
    visited_at: str = Field(description="when, ISO; naive = Beijing time (+08:00)")
    household_id: str | None = Field(default=None, max_length=64, description="住户编号")
    building_id: str | None = Field(
        default=None, max_length=64, description="for an organisation: its building"
    )
    outcome: str = Field(default="visited", description="visited | not_home | refused | moved_out")
    notes: str | None = Field(default=None, max_length=4000, description="走访情况")
    follow_up: bool = False
    follow_up_text: str | None = Field(default=None, max_length=4000, description="需跟进事项")
    open_case: bool | None = Field(
        default=None,
        description="open a case (事件工单) for the follow-up in the same step "
        "(default: when follow_up_text is given)",
    )
    case_category: str = Field(
        default="other", description="the case's category (noise, 消防隐患 …)"
    )


def _author(principal: Principal) -> str:
    return principal.actor


def _plain_text(**values: Any) -> None:
    """Refuse text with NUL characters (PostgreSQL cannot store them) with a clear 400."""
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in items):
            raise InputError(f"{name} contains a NUL character (\\x00); send plain text")


def _records(frame: Any) -> list[dict[str, Any]]:
    out = frame.copy()
    for c in ("period_start", "period_end", "visited_at"):
        if c in out.columns:
            out[c] = out[c].dt.strftime("%Y-%m-%d").astype(object).where(out[c].notna(), None)
    if "attempts" in out.columns:
        out["attempts"] = out["attempts"].astype(int)
    out = out.astype(object).where(out.notna(), None)
    return [dict(r) for r in out.to_dict("records")]


@router.get("/visits/due", summary="Visits due in a grid for a month (staff of the grid and up)")
def due_route(
    store: StoreDep,
    principal: ViewerDep,
    grid: Annotated[str, Query(description="a grid code of a published plan", max_length=64)],
    month: Annotated[str | None, Query(description="YYYY-MM (default: this month)")] = None,
    category: Annotated[
        list[str] | None, Query(description="only these visit categories (repeatable)")
    ] = None,
    as_of: Annotated[
        str | None, Query(description="judge overdue at this date (default: now)")
    ] = None,
) -> dict[str, Any]:
    """One row per household (or organisation) and period: categories, who holds it, status."""
    from gridmap.db.visits import due_list
    from gridmap.visits import due_summary

    _plain_text(grid=grid, month=month, category=category, as_of=as_of)
    due = due_list(
        store,
        grid=grid,
        month=_month(month),
        author=_author(principal),
        actor=actor_of(principal),
        as_of=as_of,
        rules=_rules(),
        categories=category,
    )
    summary = due_summary(due) if len(due) else None
    counts = (
        {k: int(summary[k].iloc[0]) for k in ("total", "done", "overdue", "due")}
        if summary is not None
        else {"total": 0, "done": 0, "overdue": 0, "due": 0}
    )
    return {"grid_code": grid, "month": _month(month), **counts, "data": _records(due)}


@router.post(
    "/visits",
    status_code=status.HTTP_201_CREATED,
    summary="Record a visit (a follow-up can open a case in the same step)",
)
def create_route(
    body: VisitCreate, response: Response, store: StoreDep, principal: ViewerDep
) -> dict[str, Any]:
    """Check the visit against the published plan and store it with its audit row."""
    from gridmap.db.visits import record_visit

    data = body.model_dump()
    _plain_text(**data)
    open_case = data.pop("open_case")
    category = data.pop("case_category")
    rec = record_visit(
        store,
        data,
        author=_author(principal),
        actor=actor_of(principal),
        open_case=open_case,
        case_category=category,
    )
    response.headers["Location"] = f"/visits?household={rec['household_id'] or ''}"
    return rec


@router.get("/visits", summary="Stored visit records, newest first (staff of the grid and up)")
def list_route(
    store: StoreDep,
    principal: ViewerDep,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    staff: Annotated[str | None, Query(max_length=64)] = None,
    household: Annotated[str | None, Query(max_length=64)] = None,
    since: str | None = None,
    until: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    """List the records in your unit (audited: they hold notes about households)."""
    from gridmap.db.visits import list_visits

    _plain_text(grid=grid, staff=staff, household=household, since=since, until=until)
    rows = list_visits(
        store,
        author=_author(principal),
        actor=actor_of(principal),
        grid=grid,
        staff_id=staff,
        household_id=household,
        since=since,
        until=until,
        limit=limit,
    )
    return {"data": rows, "count": len(rows)}


@router.get(
    "/visits/route",
    summary="A worker's walking route for a day (JSON, or format=html for the map)",
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
def route_route(
    request: Request,
    store: StoreDep,
    principal: ViewerDep,
    staff: Annotated[str, Query(description="the worker's staff id", max_length=64)],
    date: Annotated[str | None, Query(description="the day, YYYY-MM-DD (default: today)")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="at most this many stops")] = 20,
    format: Annotated[Literal["json", "html"], Query()] = "json",
    assets: Annotated[Literal["served", "inline", "cdn"] | None, Query()] = None,
) -> Any:
    """Order the stops into a walk (overdue first chosen), with the walk's length in metres.

    ``list_order_m`` is the same walk in the listed order and ``lower_bound_m``
    the minimum spanning tree (no walk can be shorter). Nothing open → no stops.
    """
    from gridmap.db.visits import day_route

    _plain_text(staff=staff, date=date)
    day = date or dt.datetime.now(TZ).date().isoformat()
    try:
        when = dt.date.fromisoformat(day)
    except ValueError:
        raise InputError(f"date {day!r} is not a day; use YYYY-MM-DD, e.g. 2026-09-18") from None
    res = day_route(
        store,
        staff_id=staff,
        date=when,
        author=_author(principal),
        actor=actor_of(principal),
        limit=limit,
        rules=_rules(),
    )
    if format == "json":
        return JSONResponse(res.to_dict())
    from gridmap.api.routes.maps import get_map_settings
    from gridmap.maps import visit_route_map

    static_url = request.url_for("map_static_file", path="").path
    opts = get_map_settings().options(None, assets=assets, static_url=static_url)
    labels = [
        f"{b} {n or ''} ({v} 户/处)".strip()
        for b, n, v in zip(
            res.stops["building_id"], res.stops["name"], res.stops["visits"], strict=True
        )
    ]
    m = visit_route_map(
        res.route,
        plan=res.plan,
        grid_code=res.grids[0] if res.grids else None,
        title=f"{res.staff_name or res.staff_id} {res.date.isoformat()}",
        labels=labels,
        **opts,
    )
    return HTMLResponse(m.get_root().render())


@router.get(
    "/visits/register",
    summary="The 四清 register per grid (JSON, or CSV with Chinese headers)",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def register_route(
    store: StoreDep,
    principal: ViewerDep,
    grid: Annotated[
        list[str] | None, Query(description="grid codes (default: every grid of your unit)")
    ] = None,
    as_of: Annotated[str | None, Query(description="the register date (default: now)")] = None,
    window_days: Annotated[int, Query(ge=1, le=366)] = 30,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """Count per grid: households, must-visit kinds, buildings, open hazards, visits.

    Buildings by use, open hazards and disputes, and the share of households
    visited in the last ``window_days`` days.
    """
    from gridmap.db.visits import grid_register

    _plain_text(grid=grid, as_of=as_of)
    reg = grid_register(
        store,
        actor=actor_of(principal),
        grids=grid,
        as_of=as_of,
        window_days=window_days,
        rules=_rules(),
        header="code" if format == "json" else "both",
    )
    if format == "csv":
        buf = io.StringIO()
        reg.to_csv(buf, index=False)
        return Response(
            ("\ufeff" + buf.getvalue()).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="register.csv"'},
        )
    from gridmap.visits import register_labels

    labels = register_labels(_rules())
    return {
        "columns": {c: {"zh": labels[c][0], "en": labels[c][1]} for c in reg.columns},
        "data": _records(reg),
        "count": len(reg),
    }
