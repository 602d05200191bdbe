"""Maps as HTML pages (folium, from :mod:`gridmap.maps`): a plan, an incident, a diff.

Viewers get maps without personal data; dispatchers and up also see the staff
(names and phones) of the plan and of the incident's grid.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import LocatorDep, ViewerDep
from gridmap.api.errors import PROBLEM_RESPONSES
from gridmap.api.locator import Area
from gridmap.api.schemas import CRS_HELP
from gridmap.api.security import Principal

__all__ = ["router"]

router = APIRouter(prefix="/maps", tags=["maps"], responses=PROBLEM_RESPONSES)


def _plan_for(area: Area, principal: Principal) -> Any:
    """Return the plan with staff names/phones for dispatchers, without staff for viewers."""
    plan = area.plan
    if not principal.allows("dispatcher") or plan.assignments is None:
        return plan.replace(assignments=None)
    people = {p["staff_id"]: p for posts in area.staff.values() for p in posts if p.get("staff_id")}
    a = plan.assignments.copy()
    ids = a["staff_id"].astype(object)
    a["name"] = pd.Series([people.get(str(i), {}).get("name") for i in ids], dtype=object)
    a["phone"] = pd.Series([people.get(str(i), {}).get("phone") for i in ids], dtype=object)
    return plan.replace(assignments=a)


def _html(m: Any) -> HTMLResponse:
    return HTMLResponse(m.get_root().render())


@router.get("/plans/{plan_id}", response_class=HTMLResponse, summary="Map of a plan (viewer)")
async def plan_map_route(plan_id: int, locator: LocatorDep, principal: ViewerDep) -> HTMLResponse:
    """Map the plan's grids coloured by households, with labels and tooltips."""
    from gridmap.maps import plan_map

    area = await run_in_threadpool(locator.area, plan_id)
    plan = _plan_for(area, principal)
    return _html(await run_in_threadpool(plan_map, plan))


@router.get("/incident", response_class=HTMLResponse, summary="Map of an incident (viewer)")
async def incident_map_route(
    lon: float,
    lat: float,
    locator: LocatorDep,
    principal: ViewerDep,
    crs: Annotated[str, Query(description=CRS_HELP)] = "wgs84",
    plan: Annotated[int | None, Query(description="a plan id (default: published)")] = None,
    incident_id: str | None = None,
) -> HTMLResponse:
    """Map the incident, its grid (chief and workers for dispatchers) and the neighbours."""
    from gridmap.maps import incident_map

    r = await run_in_threadpool(locator.locate_one, lon, lat, crs, plan_id=plan)
    area: Area = r["area"]
    code = str(area.index.codes[r["row"]]) if r["found"] else None
    staff_visible = principal.allows("dispatcher")
    m = await run_in_threadpool(
        incident_map,
        _plan_for(area, principal),
        lon,
        lat,
        grid_code=code,
        staff_visible=staff_visible,
        coord_system=r["crs"].name,
        incident_id=incident_id,
    )
    return _html(m)


@router.get("/diff/{a}/{b}", response_class=HTMLResponse, summary="Map of two plans' differences")
async def diff_map_route(a: int, b: int, locator: LocatorDep, principal: ViewerDep) -> HTMLResponse:
    """Map the grids of ``b`` coloured by status against ``a`` (added, changed, unchanged)."""
    from gridmap.maps import diff_map

    area_a = await run_in_threadpool(locator.area, a)
    area_b = await run_in_threadpool(locator.area, b)
    m = await run_in_threadpool(
        diff_map, area_a.plan.replace(assignments=None), area_b.plan.replace(assignments=None)
    )
    return _html(m)
