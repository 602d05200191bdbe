"""Incident maps: one located incident with its grid and staff; many, clustered by grid."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.crs import check_lonlat, transform
from gridmap.errors import CoordinateError, LayerError, NotFoundError
from gridmap.maps.assets import check_assets
from gridmap.maps.display import (
    _adjacency_colours,
    _check_plan,
    _collection,
    _simplify,
    _to_display,
)
from gridmap.maps.page import _VACANT, _chiefs, _finish, _new_map, _staff_table
from gridmap.maps.plan import _add_labels
from gridmap.maps.style import _GREY, _esc, _GeoJsonLayer, _HtmlControl, _swatch
from gridmap.maps.tiles import _tile_config

if TYPE_CHECKING:
    from gridmap.partition.plan import Plan

__all__ = ["incident_map", "incidents_map"]

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- incidents


def _locate(grids: gpd.GeoDataFrame, crs: pyproj.CRS, lon: np.ndarray, lat: np.ndarray) -> list:
    """Grid code holding each WGS84 point (smallest code on shared boundaries), or None."""
    tr = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    x, y = tr.transform(lon, lat)
    pts = shapely.points(np.asarray(x, float), np.asarray(y, float))
    qi, ti = grids.sindex.query(pts, predicate="intersects")
    codes = grids["grid_code"].astype(str).to_numpy()
    out: list[str | None] = [None] * len(pts)
    for i, j in zip(qi.tolist(), ti.tolist(), strict=True):
        c = codes[j]
        if out[i] is None or c < out[i]:
            out[i] = c
    return out


def _present(value: Any) -> bool:
    return value is not None and bool(pd.notna(value))


def _staff_html(rows: pd.DataFrame) -> str:
    if len(rows) == 0:
        return "<tr><td colspan=2>未配备人员 No staff assigned</td></tr>"
    out = []
    order = {"chief": 0, "worker": 1}
    rows = rows.assign(_o=rows["role"].map(order).fillna(2)).sort_values(
        ["_o", "name"], na_position="last"
    )
    for r in rows.itertuples(index=False):
        role = {"chief": "网格长 Grid chief", "worker": "网格员 Grid worker"}.get(
            str(r.role), _esc(r.role)
        )
        phone = f" ☎ {_esc(r.phone)}" if _present(r.phone) else ""
        name = _esc(r.name) if _present(r.name) else _VACANT
        out.append(f"<tr><td>{role}</td><td><b>{name}</b>{phone}</td></tr>")
    return "".join(out)


def incident_map(
    plan: Plan,
    lon: float,
    lat: float,
    *,
    grid_code: str | None = None,
    staff_visible: bool = True,
    coord_system: str = "wgs84",
    incident_id: str | None = None,
    description: str | None = None,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    simplify_tolerance: float = 2.0,
    assets: str = "cdn",
) -> folium.Map:
    """Map one incident: the marker, its grid with chief and workers, and the neighbouring grids.

    Parameters
    ----------
    plan : Plan
        The plan, in any projected CRS.
    lon, lat : float
        Incident position in ``coord_system`` (WGS84 by default).
    grid_code : str, optional
        The incident's grid, if already located; else found by point-in-polygon
        (the smallest code wins on a shared boundary).
    staff_visible : bool, default True
        Show the grid chief and workers with phone numbers. Pass False for
        roles that may not see staff: then no name or phone is in the HTML.
    coord_system : str, default "wgs84"
        CRS of ``lon``/``lat`` ("wgs84", "gcj02", "bd09", an EPSG code …).
    incident_id, description : str, optional
        Shown in the marker popup.
    tiles, attr, tiles_key, tiles_crs, simplify_tolerance
        As in :func:`plan_map`.

    assets : str, default "cdn"
        Where the page gets Leaflet, jQuery and the plugins: ``"cdn"`` (public
        CDNs: small, needs the internet), ``"inline"`` (embedded, 270–310 kB
        more: the file works offline) or a URL prefix serving
        ``gridmap/static/vendor/`` (see :func:`gridmap.maps.assets.use_assets`).

    Returns
    -------
    folium.Map

    Raises
    ------
    CoordinateError
        If ``lon``/``lat`` are NaN, infinite or out of range.
    NotFoundError
        If ``grid_code`` is not a grid of the plan.

    Examples
    --------
    >>> from gridmap.maps.examples import _example_plan
    >>> m = incident_map(_example_plan(), 118.781, 32.0495)
    >>> "网格 Grid: <b>320106001001001</b>" in m.get_root().render()
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    grids, crs = _check_plan(plan)
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError) as exc:
        raise CoordinateError(
            f"incident coordinate must be numbers, got lon={lon!r}, lat={lat!r}"
        ) from exc
    if not (np.isfinite(lon_f) and np.isfinite(lat_f)):
        raise CoordinateError(
            f"incident coordinate is not finite (lon={lon_f}, lat={lat_f}); pass the incident's "
            "longitude and latitude in degrees (WGS84 unless coord_system= says otherwise)"
        )
    wlon, wlat = transform(lon_f, lat_f, coord_system, "wgs84")
    check_lonlat(wlon, wlat)
    codes = grids["grid_code"].astype(str)
    if grid_code is None:
        grid_code = _locate(grids, crs, np.array([wlon]), np.array([wlat]))[0]
    elif str(grid_code) not in set(codes):
        raise NotFoundError(
            f"grid_code {grid_code!r} is not a grid of this plan; pass one of its grid codes "
            "or grid_code=None to locate the incident by coordinate"
        )
    grid_code = None if grid_code is None else str(grid_code)

    # the incident grid and its neighbours (sharing a boundary, within 1 m)
    if grid_code is not None:
        idx = int(np.flatnonzero(codes.to_numpy() == grid_code)[0])
        near = grids.sindex.query(grids.geometry.iloc[idx], predicate="dwithin", distance=1.0)
        near = sorted(set(near.tolist()) - {idx})
    else:
        idx = -1
        tr = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
        pt = shapely.Point(*tr.transform(wlon, wlat))
        near = sorted(grids.sindex.query(pt, predicate="dwithin", distance=500.0).tolist())
    keep = ([idx] if idx >= 0 else []) + near
    sub = grids.iloc[keep]
    simple = _simplify(sub.geometry.to_numpy(), crs, simplify_tolerance, coverage=True)
    disp = _to_display(simple, crs, gcj=cfg.gcj)
    ilon, ilat = (
        transform(wlon, wlat, "wgs84", "gcj02", validate=False) if cfg.gcj else (wlon, wlat)
    )
    ilon, ilat = round(float(ilon), 6), round(float(ilat), 6)
    marker_geom = np.array([shapely.Point(ilon, ilat)])
    m = _new_map(
        cfg,
        np.concatenate([disp, marker_geom]) if len(disp) else marker_geom,
        title="事件定位 Incident",
        assets=assets,
    )

    staff = _staff_table(plan)
    sub_codes = sub["grid_code"].astype(str)
    props = pd.DataFrame(
        {
            "grid_code": sub_codes.to_numpy(dtype=object),
            "name": sub["name"].astype(object).to_numpy() if "name" in sub.columns else None,
            "households": pd.to_numeric(sub["households"], errors="coerce")
            .astype(object)
            .to_numpy(),
        }
    )
    fields = ["grid_code", "name", "households"]
    aliases = ["网格编码 Grid code", "名称 Name", "户数 Households"]
    if staff_visible:
        chiefs = _chiefs(plan)
        props["chief"] = [chiefs.get(c, "—") for c in sub_codes]
        fields.append("chief")
        aliases.append("网格长 Grid chief")
    if "boundary_desc" in sub.columns:
        props["boundary_desc"] = sub["boundary_desc"].astype(object).fillna("—").to_numpy()
        fields.append("boundary_desc")
        aliases.append("四至 Boundaries")
    n_main = 1 if idx >= 0 else 0
    if n_main:
        _GeoJsonLayer(
            _collection(disp[:1], props.iloc[:1], "grid_code"),
            name="事发网格 Incident grid",
            style_function=lambda f: {
                "color": "#b2182b",
                "weight": 4,
                "fillColor": "#ef8a62",
                "fillOpacity": 0.35,
            },
            tooltip=folium.GeoJsonTooltip(fields, aliases=aliases, sticky=True),
            popup=folium.GeoJsonPopup(fields, aliases=aliases, max_width=360),
        ).add_to(m)
    if len(keep) > n_main:
        _GeoJsonLayer(
            _collection(disp[n_main:], props.iloc[n_main:], "grid_code"),
            name="相邻网格 Neighbouring grids",
            style_function=lambda f: {
                "color": "#2166ac",
                "weight": 1.5,
                "dashArray": "5 4",
                "fillColor": "#d1e5f0",
                "fillOpacity": 0.25,
            },
            tooltip=folium.GeoJsonTooltip(fields, aliases=aliases, sticky=True),
            popup=folium.GeoJsonPopup(fields, aliases=aliases, max_width=360),
        ).add_to(m)
    if len(keep):
        _add_labels(m, sub, sub_codes, plan_crs=crs, gcj=cfg.gcj, min_zoom=0)

    # incident marker and info panel
    head = "<h4>事件 Incident" + (f" {_esc(incident_id)}" if incident_id else "") + "</h4>"
    lines = [head]
    if description:
        lines.append(f"<div>{_esc(description)}</div>")
    lines.append(f"<div>经纬度 Lon/lat (WGS84): {wlon:.6f}, {wlat:.6f}</div>")
    if grid_code is None:
        lines.append("<div><b>不在任何网格内 Outside every grid</b></div>")
    else:
        gname = grids["name"].iloc[idx] if "name" in grids.columns else None
        lines.append(
            f"<div>网格 Grid: <b>{_esc(grid_code)}</b> {_esc(gname if pd.notna(gname) else '')}"
            "</div>"
        )
        if staff_visible:
            rows = staff[staff["grid_code"].astype(str) == grid_code]
            lines.append(f"<table>{_staff_html(rows)}</table>")
        else:
            lines.append("<div><i></i>人员信息不可见 Staff hidden for your role</div>")
    info = "".join(lines)
    folium.Marker(
        [ilat, ilon],
        popup=folium.Popup(info, max_width=360),
        tooltip="事件 Incident",
    ).add_to(m)
    _HtmlControl(info, position="bottomright", css_class="gridmap-info").add_to(m)
    return _finish(m)


def incidents_map(
    plan: Plan,
    incidents: pd.DataFrame,
    *,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    simplify_tolerance: float = 2.0,
    assets: str = "cdn",
) -> folium.Map:
    """Map many incidents, clustered and coloured by grid, over the plan's grids.

    Parameters
    ----------
    plan : Plan
        The plan, in any projected CRS.
    incidents : pandas.DataFrame
        Columns ``id``, ``lon``, ``lat`` (WGS84 degrees) and ``grid_code``
        (null for incidents outside every grid; located here when the column
        is missing). Every row is drawn.
    tiles, attr, tiles_key, tiles_crs, simplify_tolerance
        As in :func:`plan_map`.

    assets : str, default "cdn"
        Where the page gets Leaflet, jQuery and the plugins: ``"cdn"`` (public
        CDNs: small, needs the internet), ``"inline"`` (embedded, 270–310 kB
        more: the file works offline) or a URL prefix serving
        ``gridmap/static/vendor/`` (see :func:`gridmap.maps.assets.use_assets`).

    Returns
    -------
    folium.Map

    Raises
    ------
    LayerError
        If a column is missing.
    CoordinateError
        If any ``lon``/``lat`` is NaN or out of range (the message lists rows).

    Examples
    --------
    >>> import pandas as pd
    >>> from gridmap.maps.examples import _example_plan
    >>> df = pd.DataFrame({"id": ["a", "b"], "lon": [118.7805, 118.781], "lat": [32.0505, 32.05]})
    >>> m = incidents_map(_example_plan(), df)
    >>> "事件 Incidents" in m.get_root().render()
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    grids, crs = _check_plan(plan)
    missing = [c for c in ("id", "lon", "lat") if c not in incidents.columns]
    if missing:
        raise LayerError(
            f"incidents lacks column(s) {missing}; it has {list(incidents.columns)}. "
            "Pass a DataFrame with id, lon, lat (WGS84) and grid_code"
        )
    lon = pd.to_numeric(incidents["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(incidents["lat"], errors="coerce").to_numpy(dtype=float)
    try:
        check_lonlat(lon, lat)
    except CoordinateError as exc:
        bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
        ids = incidents["id"].iloc[np.flatnonzero(bad)[:5]].tolist()
        raise CoordinateError(f"incidents: {exc} (incident ids {ids})") from exc
    if "grid_code" in incidents.columns:
        inc_codes = [None if pd.isna(c) else str(c) for c in incidents["grid_code"]]
    else:
        inc_codes = _locate(grids, crs, lon, lat)
    codes = grids["grid_code"].astype(str)
    colours = _adjacency_colours(grids)
    counts = pd.Series([c for c in inc_codes if c is not None], dtype=object).value_counts()

    simple = _simplify(grids.geometry.to_numpy(), crs, simplify_tolerance, coverage=True)
    disp = _to_display(simple, crs, gcj=cfg.gcj)
    if cfg.gcj:
        plon, plat = transform(lon, lat, "wgs84", "gcj02", validate=False)
    else:
        plon, plat = lon, lat
    plon, plat = np.round(plon, 6), np.round(plat, 6)
    pts = shapely.points(plon, plat)
    m = _new_map(cfg, np.concatenate([disp, pts]), title="事件分布 Incidents", assets=assets)

    props = pd.DataFrame(
        {
            "grid_code": codes.to_numpy(dtype=object),
            "name": grids["name"].astype(object).to_numpy() if "name" in grids.columns else None,
            "incidents": [int(counts.get(c, 0)) for c in codes],
        }
    )
    _GeoJsonLayer(
        _collection(disp, props, "grid_code"),
        name="网格 Grids",
        style_function=lambda f: {
            "color": colours.get(f["id"], _GREY),
            "weight": 2,
            "fillColor": colours.get(f["id"], _GREY),
            "fillOpacity": 0.12,
        },
        tooltip=folium.GeoJsonTooltip(
            ["grid_code", "name", "incidents"],
            aliases=["网格编码 Grid code", "名称 Name", "事件数 Incidents"],
        ),
    ).add_to(m)
    rows = [
        [float(y), float(x), colours.get(c, _GREY) if c else _GREY, str(i), c or "—"]
        for y, x, c, i in zip(plat, plon, inc_codes, incidents["id"], strict=True)
    ]
    callback = """function (row) {
        var m = L.circleMarker(new L.LatLng(row[0], row[1]), {
            radius: 7, color: "#222", weight: 1, fillColor: row[2], fillOpacity: 0.9});
        var box = document.createElement("div");
        var a = document.createElement("b"); a.textContent = "事件 Incident " + row[3];
        var b = document.createElement("div"); b.textContent = "网格 Grid: " + row[4];
        box.appendChild(a); box.appendChild(b);
        m.bindPopup(box);
        m.feature = {properties: {id: row[3], grid_code: row[4]}};
        return m;
    }"""
    folium.plugins.FastMarkerCluster(rows, callback=callback, name="事件 Incidents").add_to(m)
    _add_labels(m, grids, codes, plan_crs=crs, gcj=cfg.gcj, min_zoom=15)
    n_out = sum(c is None for c in inc_codes)
    legend = (
        f"<h4>事件 Incidents: {len(rows)}</h4>"
        f"<div>按网格着色 Coloured by grid · 涉及网格 Grids: {int((counts > 0).sum())}</div>"
        + (_swatch(_GREY, f"不在网格内 Outside every grid · {n_out}") if n_out else "")
    )
    _HtmlControl(legend, css_class="gridmap-legend").add_to(m)
    return _finish(m)
