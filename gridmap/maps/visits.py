"""Visit maps: one worker's walking route for a day (numbered stops, the path, the grid)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import folium
import numpy as np
import pandas as pd
import pyproj
import shapely
from branca.element import Element, Figure

from gridmap.errors import CRSError, InputError, NotFoundError
from gridmap.maps.assets import check_assets
from gridmap.maps.display import _check_plan, _collection, _simplify, _to_display
from gridmap.maps.page import _finish, _new_map
from gridmap.maps.style import _esc, _GeoJsonLayer, _HtmlControl
from gridmap.maps.tiles import _tile_config

if TYPE_CHECKING:
    from gridmap.partition.plan import Plan
    from gridmap.visits.route import Route

__all__ = ["visit_route_map"]

_log = logging.getLogger(__name__)

_ROUTE = "#d7301f"
_STOP_CSS = """<style>
.gridmap-stop { background: transparent; border: none; }
.gridmap-stop span { display: inline-block; transform: translate(-50%, -50%);
  min-width: 20px; height: 20px; padding: 0 3px; border-radius: 10px; box-sizing: border-box;
  background: #d7301f; color: #fff; border: 2px solid #fff; box-shadow: 0 1px 3px rgba(0,0,0,.5);
  font: 700 11px/16px sans-serif; text-align: center; }
.gridmap-stop.home span { background: #2166ac; }
</style>"""


def visit_route_map(
    route: Route,
    *,
    plan: Plan | None = None,
    grid_code: str | None = None,
    title: str | None = None,
    labels: pd.Series | list[str] | None = None,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    assets: str = "cdn",
) -> folium.Map:
    """Map a day's walking route: numbered stops, the path on the streets, the grid.

    Parameters
    ----------
    route : Route
        From :func:`gridmap.visits.plan_route` (in a projected CRS).
    plan : Plan, optional
        With ``grid_code``: the grid's outline is drawn.
    grid_code : str, optional
        The worker's grid.
    title : str, optional
        Shown in the info panel (e.g. the worker's name and the day).
    labels : sequence of str, optional
        Popup text per stop, in the route's stop order (default: the stop id).
    tiles, attr, tiles_key, tiles_crs
        Base map, as in :func:`gridmap.maps.plan_map`.
    assets : str, default "cdn"
        ``"cdn"``, ``"inline"`` (works offline) or a URL prefix serving
        ``gridmap/static/vendor/`` (see :func:`gridmap.maps.assets.use_assets`).

    Returns
    -------
    folium.Map

    Raises
    ------
    CRSError
        The route has no CRS.
    NotFoundError
        ``grid_code`` is not a grid of ``plan``.

    Examples
    --------
    >>> from gridmap.visits import plan_route
    >>> from gridmap.visits.examples import _example
    >>> ex = _example()
    >>> r = plan_route(ex.buildings.geometry.iloc[[0, 1, 2]], ex.roads,
    ...                ids=["B1", "B2", "B3"], home=ex.staff.geometry.iloc[0])
    >>> m = visit_route_map(r, plan=ex.plan, grid_code="320104001001001", assets="inline")
    >>> html = m.get_root().render()
    >>> "走访路线 Visit route" in html and "unpkg.com" not in html
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    crs = route.crs
    if crs is None and plan is not None:
        crs = pyproj.CRS.from_user_input(plan.crs)
    if crs is None:
        raise CRSError(
            "the route has no CRS; plan it from stops with a CRS (a GeoSeries/GeoDataFrame) "
            "or pass plan= so the plan's CRS is used"
        )
    crs = pyproj.CRS.from_user_input(crs)
    grid_geom: list[Any] = []
    grid_props = pd.DataFrame({"grid_code": [], "name": []})
    if grid_code is not None:
        if plan is None:
            raise InputError("grid_code needs plan= (the plan holding the grid)")
        grids, gcrs = _check_plan(plan)
        hit = grids[grids["grid_code"].astype(str) == str(grid_code)]
        if not len(hit):
            raise NotFoundError(f"grid_code {grid_code!r} is not a grid of this plan")
        simple = _simplify(hit.geometry.to_numpy(), gcrs, 2.0, coverage=False)
        grid_geom = list(_to_display(simple, gcrs, gcj=cfg.gcj))
        grid_props = pd.DataFrame(
            {
                "grid_code": [str(grid_code)],
                "name": [hit["name"].iloc[0] if "name" in hit.columns else None],
            }
        )
    legs = [g for g in route.leg_geometries if g is not None]
    legs_disp: Any = _to_display(np.asarray(legs, dtype=object), crs, gcj=cfg.gcj) if legs else []
    stops = route.stops
    stop_disp = (
        _to_display(stops.geometry.to_numpy(), crs, gcj=cfg.gcj)
        if len(stops)
        else np.zeros(0, dtype=object)
    )
    start_disp = (
        _to_display(np.asarray([route.start], dtype=object), crs, gcj=cfg.gcj)
        if route.start is not None
        else np.zeros(0, dtype=object)
    )
    every = np.concatenate(
        [
            np.asarray(grid_geom, dtype=object),
            np.asarray(legs_disp, dtype=object),
            stop_disp,
            start_disp,
        ]
    )
    m = _new_map(cfg, every, title="走访路线 Visit route", assets=assets)
    root = m.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(Element(_STOP_CSS), name="gridmap_stop_css")

    if grid_geom:
        _GeoJsonLayer(
            _collection(np.asarray(grid_geom, dtype=object), grid_props, "grid_code"),
            name="网格 Grid",
            style_function=lambda f: {
                "color": "#2166ac",
                "weight": 2,
                "dashArray": "6 4",
                "fillColor": "#d1e5f0",
                "fillOpacity": 0.15,
            },
            tooltip=folium.GeoJsonTooltip(
                ["grid_code", "name"], aliases=["网格编码 Grid code", "名称 Name"]
            ),
        ).add_to(m)
    if len(legs_disp):
        props = pd.DataFrame(
            {
                "leg": np.arange(1, len(legs_disp) + 1),
                "length_m": np.round(route.legs_m[: len(legs_disp)], 1),
            }
        )
        _GeoJsonLayer(
            _collection(np.asarray(legs_disp, dtype=object), props, None),
            name="路线 Path",
            style_function=lambda f: {"color": _ROUTE, "weight": 4, "opacity": 0.85},
            tooltip=folium.GeoJsonTooltip(
                ["leg", "length_m"], aliases=["段 Leg", "长度 Length (m)"]
            ),
        ).add_to(m)
    group = folium.FeatureGroup(name="走访点 Stops").add_to(m)
    texts = list(labels) if labels is not None else [str(i) for i in stops["id"]]
    if len(texts) != len(stops):
        raise InputError(f"{len(texts)} labels for {len(stops)} stops")
    for pt, seq, text, leg in zip(stop_disp, stops["seq"], texts, stops["leg_m"], strict=True):
        folium.Marker(
            [float(shapely.get_y(pt)), float(shapely.get_x(pt))],
            icon=folium.DivIcon(html=f"<span>{int(seq)}</span>", class_name="gridmap-stop"),
            tooltip=f"{int(seq)}. {_esc(text)}",
            popup=folium.Popup(
                f"<b>{int(seq)}. {_esc(text)}</b><br>上一段 Leg: {float(leg):,.0f} m",
                max_width=300,
            ),
        ).add_to(group)
    if route.home and len(start_disp):
        p = start_disp[0]
        folium.Marker(
            [float(shapely.get_y(p)), float(shapely.get_x(p))],
            icon=folium.DivIcon(html="<span>家</span>", class_name="gridmap-stop home"),
            tooltip="起点/终点 Start and end (home)",
        ).add_to(m)
    s = route.summary()
    lines = ["<h4>走访路线 Visit route</h4>"]
    if title:
        lines.append(f"<div><b>{_esc(title)}</b></div>")
    if grid_code is not None:
        lines.append(f"<div>网格 Grid: {_esc(grid_code)}</div>")
    lines.append(f"<div>走访点 Stops: {s['stops']}</div>")
    lines.append(f"<div>全程 Total: {s['total_m']:,.0f} m</div>")
    if s["vs_list_order"] is not None:
        lines.append(
            f"<div>按清单顺序 In list order: {s['list_order_m']:,.0f} m</div>"
            f"<div>下界 Lower bound (MST): {s['lower_bound_m']:,.0f} m</div>"
        )
    if s["stops"] == 0:
        lines.append("<div>今日无待访 Nothing due today</div>")
    _HtmlControl("".join(lines), position="bottomright", css_class="gridmap-info").add_to(m)
    return _finish(m)
