"""Maps as HTML pages (folium, from :mod:`gridmap.maps`): a plan, a located point, a diff.

* ``GET /maps/plans/{id}`` — the plan map (viewer, like ``GET /plans/{id}``);
  ``?kind=quality`` gives the quality map instead;
* ``GET /maps/locate?lon=&lat=&crs=`` — the incident map of a point (viewer,
  like ``GET /locate``: the grid's chief and workers with phone numbers only for
  dispatchers and up);
* ``GET /maps/plans/{a}/diff/{b}`` — two plans overlaid (viewer, like
  ``GET /plans/{a}/diff/{b}``);
* ``GET /maps/cases?from=&to=&status=&category=`` — the cases (事件工单) the key
  may see, like ``GET /cases``, clustered over the grids (cases per 1,000
  households); the locate page above also lists the open cases near the point,
  likely duplicates first (``?radius=``, ``?category=``).

Viewers never get personal data in a page: staff names and phones, and the
callers, descriptions and addresses of cases, are only written into the HTML
for dispatchers and up. The base map is OpenStreetMap
unless the deployment sets ``GRIDMAP_MAP_TILES`` (a preset of
:data:`gridmap.maps.TILE_PRESETS` or a ``{z}/{x}/{y}`` URL template, with
``GRIDMAP_MAP_TILES_ATTR``, ``GRIDMAP_MAP_TILES_KEY`` and
``GRIDMAP_MAP_TILES_CRS``); a request may pick another preset with ``?tiles=``.
AMap and Tencent tiles are GCJ-02 and every overlay is shifted to match.

The pages work on an intranet without internet: they load Leaflet, jQuery and
the plugins from this server, ``GET /maps/static/{path}`` (public, no key: the
files shipped in ``gridmap/static/vendor/``, cached for a year). The deployment
may choose ``GRIDMAP_MAP_ASSETS=inline`` (embedded in each page), ``cdn``
(public CDNs) or a URL prefix of its own mirror; a request may ask for
``?assets=inline`` (a page to save as one file) or ``?assets=cdn``.
"""

from __future__ import annotations

import hashlib
import mimetypes
from functools import lru_cache
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool

from gridmap.api.deps import LocatorDep, StoreDep, ViewerDep
from gridmap.api.errors import PROBLEM_RESPONSES
from gridmap.api.locator import Area
from gridmap.api.schemas import CRS_HELP
from gridmap.api.security import Principal
from gridmap.maps.assets import check_assets, vendored_file

__all__ = ["router", "MapSettings", "get_map_settings", "staffed_plan", "STATIC_CACHE"]

router = APIRouter(prefix="/maps", tags=["maps"], responses=PROBLEM_RESPONSES)


class MapSettings(BaseSettings):
    """Base map of the service's map pages (environment variables ``GRIDMAP_MAP_*``).

    Attributes
    ----------
    tiles : str
        A preset of :data:`gridmap.maps.TILE_PRESETS` (``osm``, ``tianditu``,
        ``amap``, ``tencent`` …), a ``{z}/{x}/{y}`` URL template (a local tile
        server) or ``none``.
    tiles_attr : str or None
        Attribution; required with a URL template.
    tiles_key : str or None
        Key of services that need one (Tianditu). Kept on the server side of
        the configuration, but note that it ends up in the page's tile URLs.
    tiles_crs : {"wgs84", "gcj02"} or None
        Datum of a URL template's tiles (presets know theirs).
    assets : str
        Where the pages load Leaflet, jQuery and the plugins from: ``served``
        (default: this server's ``/maps/static/``, works without internet),
        ``inline`` (embedded in every page, ~300 kB more each), ``cdn`` (public
        CDNs) or the URL prefix of a server holding ``gridmap/static/vendor/``.
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_MAP_", extra="ignore")

    tiles: str = "osm"
    tiles_attr: str | None = None
    tiles_key: str | None = None
    tiles_crs: Literal["wgs84", "gcj02"] | None = None
    assets: str = "served"

    @field_validator("assets")
    @classmethod
    def _check_assets(cls, value: str) -> str:
        return "served" if value.strip().lower() == "served" else check_assets(value)

    def options(
        self,
        tiles: str | None = None,
        *,
        assets: str | None = None,
        static_url: str = "/maps/static/",
    ) -> dict[str, Any]:
        """Keyword arguments for the :mod:`gridmap.maps` builders.

        ``tiles`` and ``assets`` override the settings; ``static_url`` is
        where this server answers ``GET /maps/static/{path}`` (for ``served``).
        """
        name = tiles or self.tiles
        same = tiles is None or tiles == self.tiles
        mode = assets or self.assets
        return {
            "tiles": None if name.strip().lower() == "none" else name,
            "attr": self.tiles_attr if same else None,
            "tiles_key": self.tiles_key,
            "tiles_crs": self.tiles_crs if same else None,
            "assets": static_url if mode == "served" else mode,
        }


@lru_cache
def get_map_settings() -> MapSettings:
    """Return the map settings read from the environment (cached; override in tests)."""
    return MapSettings()


MapSettingsDep = Annotated[MapSettings, Depends(get_map_settings)]
TilesQuery = Annotated[
    str | None,
    Query(
        description="Base map preset: osm, tianditu, amap, tencent … or none "
        "(default: the service's GRIDMAP_MAP_TILES)",
        pattern=r"^[A-Za-z_]+$",
    ),
]
AssetsQuery = Annotated[
    Literal["served", "inline", "cdn"] | None,
    Query(
        description="Where the page loads Leaflet and the plugins: served (from this server, "
        "works without internet), inline (embedded: save the page as one file) or cdn "
        "(default: the service's GRIDMAP_MAP_ASSETS)"
    ),
]

#: Cache-Control of the vendored files: their paths carry the library version.
STATIC_CACHE = "public, max-age=31536000, immutable"


def _plan_for(area: Area, principal: Principal) -> Any:
    """Return the plan with staff names/phones for dispatchers, without staff for viewers."""
    return staffed_plan(area, see_staff=principal.allows("dispatcher"))


def staffed_plan(area: Area, *, see_staff: bool) -> Any:
    """Return an area's plan with its posts' names and phones, or without any staff.

    Parameters
    ----------
    area : Area
        A served plan (:meth:`gridmap.api.locator.Locator.area`).
    see_staff : bool
        False drops the assignments, so that no map built from the plan holds
        personal data.
    """
    plan = area.plan
    if not see_staff or plan.assignments is None:
        return plan.replace(assignments=None)
    people = {p["staff_id"]: p for posts in area.staff.values() for p in posts if p.get("staff_id")}
    a = plan.assignments.copy()
    ids = a["staff_id"].astype(object)
    a["name"] = pd.Series([people.get(str(i), {}).get("name") for i in ids], dtype=object)
    a["phone"] = pd.Series([people.get(str(i), {}).get("phone") for i in ids], dtype=object)
    return plan.replace(assignments=a)


#: A plan map leaves the buildings out above this many (and says so on the map): the page
#: would carry megabytes of outlines, the service read a whole city for one page, and the
#: map starts with them switched off anyway (``gridmap.maps.plan``). OGC API clients page them.
MAP_BUILDINGS_MAX = 20_000


def _layers_for(area: Area, *, buildings: bool = True) -> Any:
    """Return the plan's communities (with sub-districts) and buildings as map layers.

    The buildings are read from the store once (``buildings=False``: not at all, the
    layer is left empty); None when the plan's layers are not stored.
    """
    if area.communities is None:
        return None
    import geopandas as gpd

    from gridmap.layers import Layers

    if buildings:
        blds = area.buildings
        if blds is None:
            return None
    else:
        blds = gpd.GeoDataFrame({"building_id": [], "households": []}, geometry=[], crs=area.crs)
    return Layers(communities=area.communities, buildings=blds, crs=area.crs)


def _building_count(area: Area) -> int:
    """Count the plan's buildings (SQLite: its box arrays; PostGIS: a query)."""
    if area.boxes is not None:
        return len(area.boxes)
    if area.store is None or area.store.backend != "postgresql":
        return 0
    from gridmap.db.spatial import building_features

    return building_features(area.store, [area.plan_id], limit=0)[0]


def _html(m: Any) -> HTMLResponse:
    return HTMLResponse(m.get_root().render())


def _opts(
    request: Request, settings: MapSettings, tiles: str | None = None, assets: str | None = None
) -> dict[str, Any]:
    """Builder options, with the vendored files served by this app (whatever its root path)."""
    static_url = request.url_for("map_static_file", path="").path
    return settings.options(tiles, assets=assets, static_url=static_url)


@lru_cache(maxsize=64)
def _static(path: str) -> tuple[bytes, str, str]:
    """Return a vendored file's bytes, media type and ETag (read once: they never change)."""
    file = vendored_file(path)
    body = file.read_bytes()
    media = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if media.startswith("text/") or media.endswith("javascript"):
        media += "; charset=utf-8"
    return body, media, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@router.get(
    "/static/{path:path}",
    name="map_static_file",
    response_class=Response,
    summary="Leaflet, jQuery and the plugins of the map pages (public)",
    responses={200: {"content": {"application/javascript": {}, "text/css": {}, "image/png": {}}}},
)
def static_file(path: str, request: Request) -> Response:
    """Return a front-end file the map pages load, so that they need no internet.

    No key is needed: these are public libraries (versions, sources and
    licences in ``gridmap/static/vendor/README.md``, which this route serves
    too). Only the shipped files are served (anything else, ``..`` included,
    is 404); their paths carry the library's version, so browsers keep them for
    a year.
    """
    body, media, etag = _static(path)
    headers = {"Cache-Control": STATIC_CACHE, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media, headers=headers)


@router.get("/plans/{plan_id}", response_class=HTMLResponse, summary="Map of a plan (viewer)")
async def plan_map_route(
    plan_id: int,
    request: Request,
    locator: LocatorDep,
    principal: ViewerDep,
    settings: MapSettingsDep,
    kind: Annotated[
        Literal["plan", "quality"],
        Query(description="plan: grids by households; quality: grids failing a check"),
    ] = "plan",
    buildings: Annotated[bool, Query(description="add the buildings layer")] = True,
    tiles: TilesQuery = None,
    assets: AssetsQuery = None,
) -> HTMLResponse:
    """Map the plan's grids coloured by households (or by failed check), with labels and popups.

    Community and sub-district boundaries and the buildings come from the
    plan's stored layers; the grid chief is named in tooltips for dispatchers
    and up only.
    """
    from gridmap.maps import plan_map, quality_map

    area = await run_in_threadpool(locator.area, plan_id)
    opts = _opts(request, settings, tiles, assets)
    if kind == "quality":
        m = await run_in_threadpool(quality_map, area.plan.replace(assignments=None), **opts)
    else:
        n = await run_in_threadpool(_building_count, area) if buildings else 0
        draw = buildings and n <= MAP_BUILDINGS_MAX
        layers = await run_in_threadpool(_layers_for, area, buildings=draw)
        m = await run_in_threadpool(
            plan_map,
            _plan_for(area, principal),
            layers=layers,
            show_buildings=draw and layers is not None,
            staff_visible=principal.allows("dispatcher"),
            **opts,
        )
        if buildings and not draw:
            import folium

            note = (
                f'<div class="gridmap-note" style="position:fixed;bottom:8px;left:8px;'
                f"z-index:1000;background:#fff;padding:4px 8px;border:1px solid #999;"
                f'font:12px sans-serif">楼栋未显示 Buildings not drawn: {n:,} is more than '
                f"{MAP_BUILDINGS_MAX:,} for one page; read them by area from "
                f"/collections/buildings/items?bbox=… (QGIS, GDAL)</div>"
            )
            m.get_root().html.add_child(folium.Element(note))  # type: ignore[attr-defined]
    return _html(m)


async def _locate_map(
    lon: float,
    lat: float,
    crs: str,
    plan: int | None,
    incident_id: str | None,
    locator: Any,
    principal: Principal,
    opts: dict[str, Any],
    *,
    store: Any = None,
    radius: float = 300.0,
    category: str | None = None,
) -> HTMLResponse:
    from gridmap.maps import incident_map

    r = await run_in_threadpool(locator.locate_one, lon, lat, crs, plan_id=plan)
    area: Area = r["area"]
    code = str(area.index.codes[r["row"]]) if r["found"] else None
    if store is not None:  # the dispatcher's page: the open cases near the point too
        m = await run_in_threadpool(
            _nearby_map,
            store,
            principal,
            _plan_for(area, principal),
            lon,
            lat,
            r["crs"].name,
            code,
            incident_id,
            radius,
            category,
            opts,
        )
        return _html(m)
    m = await run_in_threadpool(
        incident_map,
        _plan_for(area, principal),
        lon,
        lat,
        grid_code=code,
        staff_visible=principal.allows("dispatcher"),
        coord_system=r["crs"].name,
        incident_id=incident_id,
        **opts,
    )
    return _html(m)


def _nearby_map(
    store: Any,
    principal: Principal,
    plan: Any,
    lon: float,
    lat: float,
    crs_name: str,
    code: str | None,
    incident_id: str | None,
    radius: float,
    category: str | None,
    opts: dict[str, Any],
) -> Any:
    """Map the point with the open cases the key may see within ``radius`` of it."""
    from gridmap.api.routes.cases import actor_of
    from gridmap.cases import OPEN_STATES
    from gridmap.crs import transform
    from gridmap.db.case_frames import case_frame
    from gridmap.maps.cases import nearby_cases_map

    actor = actor_of(principal)
    personal = actor.role in ("dispatcher", "admin")
    wlon, wlat = transform(float(lon), float(lat), crs_name, "wgs84")
    cases = case_frame(
        store,
        actor=actor,
        author=principal.actor,
        personal=personal,
        status=list(OPEN_STATES),
        near=(float(wlon), float(wlat), radius),
    )
    return nearby_cases_map(
        plan,
        lon,
        lat,
        cases,
        radius=radius,
        category=category,
        personal=personal,
        staff_visible=principal.allows("dispatcher"),
        coord_system=crs_name,
        grid_code=code,
        incident_id=incident_id,
        **opts,
    )


@router.get(
    "/locate",
    response_class=HTMLResponse,
    summary="Map of a located point (viewer; staff ≥ dispatcher)",
)
@router.get("/incident", response_class=HTMLResponse, include_in_schema=False)  # former name
async def locate_map_route(
    lon: float,
    lat: float,
    request: Request,
    locator: LocatorDep,
    principal: ViewerDep,
    settings: MapSettingsDep,
    store: StoreDep,
    crs: Annotated[str, Query(description=CRS_HELP)] = "wgs84",
    plan: Annotated[int | None, Query(description="a plan id (default: published)")] = None,
    incident_id: Annotated[str | None, Query(description="shown in the marker")] = None,
    tiles: TilesQuery = None,
    assets: AssetsQuery = None,
    cases: Annotated[
        bool, Query(description="also list the open cases near the point (事件工单)")
    ] = True,
    radius: Annotated[
        float, Query(gt=0, le=5000, description="metres around the point searched for cases")
    ] = 300.0,
    category: Annotated[
        str | None,
        Query(
            max_length=64,
            description="the call's category: same-category cases nearby "
            "are listed first as likely duplicates (noise, 噪音扰民 …)",
        ),
    ] = None,
) -> HTMLResponse:
    """Map the point (an incident), its grid and the neighbouring grids.

    The grid's chief and workers with phone numbers are shown for dispatchers
    and up, as in ``GET /locate``; viewers see the grid without them. The open
    cases the key may see within ``radius`` metres are drawn and listed, likely
    duplicates (same ``category``, received within 7 days) first; their callers
    and descriptions only for dispatchers and up.
    """
    return await _locate_map(
        lon,
        lat,
        crs,
        plan,
        incident_id,
        locator,
        principal,
        _opts(request, settings, tiles, assets),
        store=store if cases else None,
        radius=radius,
        category=category,
    )


async def _diff_map(a: int, b: int, locator: Any, opts: dict[str, Any]) -> HTMLResponse:
    from gridmap.maps import diff_map

    area_a = await run_in_threadpool(locator.area, a)
    area_b = await run_in_threadpool(locator.area, b)
    m = await run_in_threadpool(
        diff_map,
        area_a.plan.replace(assignments=None),
        area_b.plan.replace(assignments=None),
        layers=_layers_for(area_b) or _layers_for(area_a),
        **opts,
    )
    return _html(m)


@router.get(
    "/plans/{a}/diff/{b}", response_class=HTMLResponse, summary="Map of two plans' differences"
)
@router.get("/diff/{a}/{b}", response_class=HTMLResponse, include_in_schema=False)  # former name
async def diff_map_route(
    a: int,
    b: int,
    request: Request,
    locator: LocatorDep,
    principal: ViewerDep,
    settings: MapSettingsDep,
    tiles: TilesQuery = None,
    assets: AssetsQuery = None,
) -> HTMLResponse:
    """Map the grids of ``b`` coloured by status against ``a``, and the buildings that moved."""
    return await _diff_map(a, b, locator, _opts(request, settings, tiles, assets))


@router.get(
    "/cases",
    response_class=HTMLResponse,
    summary="Map of cases (viewer, scoped like GET /cases; callers ≥ dispatcher)",
)
async def cases_map_route(
    request: Request,
    store: StoreDep,
    locator: LocatorDep,
    principal: ViewerDep,
    settings: MapSettingsDep,
    from_: Annotated[
        str | None,
        Query(alias="from", max_length=32, description="received from (YYYY-MM-DD, included)"),
    ] = None,
    to: Annotated[
        str | None,
        Query(max_length=32, description="received up to (YYYY-MM-DD, included)"),
    ] = None,
    month: Annotated[
        str | None, Query(max_length=7, description="a month YYYY-MM instead of from/to")
    ] = None,
    status: Annotated[list[str] | None, Query(description="only these states (repeatable)")] = None,
    category: Annotated[
        list[str] | None, Query(description="only these categories (noise, 噪音扰民 …)")
    ] = None,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    community: Annotated[str | None, Query(max_length=64)] = None,
    subdistrict: Annotated[str | None, Query(max_length=64)] = None,
    plan: Annotated[
        int | None, Query(description="grids of this plan beneath (default: the published)")
    ] = None,
    tiles: TilesQuery = None,
    assets: AssetsQuery = None,
) -> HTMLResponse:
    """Map the cases the key may see: clustered, coloured by status, red when overdue.

    Scoped like ``GET /cases`` (a staff key sees its unit's cases; a unit
    filter outside it is ``403``). The page filters further by period, status,
    category and overdue; the grids beneath show cases per 1,000 households.
    No personal data is written into the page: for dispatchers and admins a
    popup fetches the ticket, description, address and caller of its case from
    ``GET /cases/{id}`` when opened (the browser's session; each read is
    checked and audited there). A bad filter is ``400`` saying what to send.
    """
    from gridmap.cases import stats_period

    start, end = stats_period(month=month, start=from_, end=to)
    opts = _opts(request, settings, tiles, assets)
    opts["details"] = f"{request.scope.get('root_path', '')}/cases/"
    areas = await run_in_threadpool(locator.select, plan) if plan is not None else locator.areas
    plans = [a.plan.replace(assignments=None) for a in areas]
    m = await run_in_threadpool(
        _cases_map,
        store,
        principal,
        plans,
        {
            "status": status,
            "category": category,
            "grid": grid,
            "community": community,
            "subdistrict": subdistrict,
            "received_from": start,
            "received_to": end,
        },
        opts,
    )
    return _html(m)


def _cases_map(
    store: Any,
    principal: Principal,
    plans: list[Any],
    filters: dict[str, Any],
    opts: dict[str, Any],
) -> Any:
    """Read the cases the key may see and map them (in a worker thread).

    The callers' data stay in the store: dispatchers' popups fetch each case's on click.
    """
    from gridmap.api.routes.cases import actor_of
    from gridmap.db.case_frames import case_frame
    from gridmap.maps.cases import cases_map

    actor = actor_of(principal)
    personal = actor.role in ("dispatcher", "admin")
    frame = case_frame(store, actor=actor, author=principal.actor, personal=False, **filters)
    return cases_map(frame, plans or None, personal=personal, **opts)
