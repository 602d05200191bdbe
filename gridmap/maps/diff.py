"""Plan differences: tables (:func:`plan_diff`, :func:`moved_buildings`) and :func:`diff_map`."""

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

from gridmap.errors import CRSError, LayerError
from gridmap.maps.assets import check_assets
from gridmap.maps.display import _check_plan, _clean, _collection, _simplify, _to_display
from gridmap.maps.page import _finish, _new_map
from gridmap.maps.plan import _add_labels, _building_grids
from gridmap.maps.style import _GeoJsonLayer, _HtmlControl, _swatch
from gridmap.maps.tiles import _tile_config

if TYPE_CHECKING:
    from gridmap.layers import Layers
    from gridmap.partition.plan import Plan

__all__ = ["plan_diff", "moved_buildings", "diff_map"]

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- diff


def plan_diff(plan_a: Plan, plan_b: Plan, *, area_tolerance: float = 1.0) -> pd.DataFrame:
    """Compare two plans grid by grid.

    Parameters
    ----------
    plan_a, plan_b : Plan
        The old and the new plan (any projected CRSs; ``plan_b`` is compared in
        ``plan_a``'s CRS).
    area_tolerance : float, default 1.0
        A grid's geometry counts as changed when the area of the symmetric
        difference exceeds this many square metres.

    Returns
    -------
    pandas.DataFrame
        One row per grid code in either plan, sorted by code: ``grid_code``,
        ``status`` ("added", "removed", "changed", "unchanged"),
        ``geometry_changed``, ``households_changed`` (bool),
        ``households_a``, ``households_b`` and ``changed_area_m2``.

    Examples
    --------
    >>> from gridmap.maps.examples import _example_plan
    >>> a = _example_plan()
    >>> plan_diff(a, a)["status"].tolist()
    ['unchanged', 'unchanged']
    """
    ga, crs_a = _check_plan(plan_a, "plan_a")
    gb, _ = _check_plan(plan_b, "plan_b")
    gb = gb.to_crs(crs_a)
    a = ga.set_index(ga["grid_code"].astype(str))
    b = gb.set_index(gb["grid_code"].astype(str))
    for name, frame in (("plan_a", a), ("plan_b", b)):
        if frame.index.has_duplicates:
            dup = frame.index[frame.index.duplicated()].unique().tolist()[:5]
            raise LayerError(f"{name} has duplicate grid codes {dup}; codes must be unique")
    all_codes = sorted(set(a.index) | set(b.index))
    rows = []
    for code in all_codes:
        in_a, in_b = code in a.index, code in b.index
        ha = _clean(a.at[code, "households"]) if in_a else None
        hb = _clean(b.at[code, "households"]) if in_b else None
        if in_a and in_b:
            ga_, gb_ = a.at[code, "geometry"], b.at[code, "geometry"]
            area = float(shapely.area(shapely.symmetric_difference(ga_, gb_)))
            geo = area > area_tolerance
            hh = ha != hb
            status = "changed" if geo or hh else "unchanged"
        else:
            area = float((a.at[code, "geometry"] if in_a else b.at[code, "geometry"]).area)
            geo, hh = True, True
            status = "removed" if in_a else "added"
        rows.append(
            {
                "grid_code": code,
                "status": status,
                "geometry_changed": geo,
                "households_changed": hh,
                "households_a": ha,
                "households_b": hb,
                "changed_area_m2": round(area, 1),
            }
        )
    cols = [
        "grid_code",
        "status",
        "geometry_changed",
        "households_changed",
        "households_a",
        "households_b",
        "changed_area_m2",
    ]
    out = pd.DataFrame(rows, columns=cols)
    for c in ("households_a", "households_b"):
        vals = pd.to_numeric(out[c], errors="coerce")
        if bool(((vals.dropna() % 1) == 0).all()):
            out[c] = vals.astype("Int64")
    return out


def moved_buildings(plan_a: Plan, plan_b: Plan) -> pd.DataFrame:
    """List the buildings whose grid differs between two plans.

    A building split over several grids is compared by its set of grids; a
    building present in only one plan counts as moved (to or from nothing).

    Parameters
    ----------
    plan_a, plan_b : Plan
        The old and the new plan.

    Returns
    -------
    pandas.DataFrame
        ``building_id``, ``grid_a``, ``grid_b`` (comma-joined codes, None when
        absent), sorted by building id.

    Examples
    --------
    >>> from gridmap.maps.examples import _example_plan
    >>> a = _example_plan()
    >>> len(moved_buildings(a, a))
    0
    """
    sa, sb = _building_grids(plan_a.buildings), _building_grids(plan_b.buildings)
    ids = sorted(set(sa.index) | set(sb.index))
    rows = []
    for bid in ids:
        ca, cb = sa.get(bid), sb.get(bid)
        if ca != cb:
            rows.append({"building_id": bid, "grid_a": ca, "grid_b": cb})
    return pd.DataFrame(rows, columns=["building_id", "grid_a", "grid_b"])


_STATUS_STYLE = {
    "added": ("#1a9850", "新增 Added"),
    "removed": ("#d73027", "删除 Removed"),
    "changed": ("#fdae61", "改变 Changed"),
    "unchanged": ("#e0e0e0", "未变 Unchanged"),
}


def diff_map(
    plan_a: Plan,
    plan_b: Plan,
    *,
    layers: Layers | None = None,
    area_tolerance: float = 1.0,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    simplify_tolerance: float = 2.0,
    assets: str = "cdn",
) -> folium.Map:
    """Overlay two plans, highlighting changed grids and moved buildings.

    Grids of ``plan_b`` are coloured by status (added, changed, unchanged);
    grids only in ``plan_a`` are drawn as removed; ``plan_a``'s boundaries are
    a dashed overlay. Moved buildings (:func:`moved_buildings`) are drawn from
    ``layers.buildings`` when given; otherwise each grid's tooltip counts the
    buildings that moved in and out.

    Parameters
    ----------
    plan_a, plan_b : Plan
        The old and the new plan.
    layers : Layers, optional
        For the building footprints of moved buildings.
    area_tolerance : float, default 1.0
        See :func:`plan_diff`.
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

    Examples
    --------
    >>> from gridmap.maps.examples import _example_plan
    >>> m = diff_map(_example_plan(), _example_plan())
    >>> "未变 Unchanged" in m.get_root().render()
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    diff = plan_diff(plan_a, plan_b, area_tolerance=area_tolerance).set_index("grid_code")
    moved = moved_buildings(plan_a, plan_b)
    ga, crs_a = _check_plan(plan_a, "plan_a")
    gb, crs_b = _check_plan(plan_b, "plan_b")
    disp_a = _to_display(
        _simplify(ga.geometry.to_numpy(), crs_a, simplify_tolerance, coverage=True),
        crs_a,
        gcj=cfg.gcj,
    )
    disp_b = _to_display(
        _simplify(gb.geometry.to_numpy(), crs_b, simplify_tolerance, coverage=True),
        crs_b,
        gcj=cfg.gcj,
    )
    m = _new_map(
        cfg, np.concatenate([disp_a, disp_b]), title="方案对比 Plan comparison", assets=assets
    )

    def count(col: str) -> pd.Series:
        parts = moved[col].dropna().str.split(",").explode()
        return parts.value_counts()

    moved_out, moved_in = count("grid_a"), count("grid_b")

    def props_for(grids: gpd.GeoDataFrame) -> pd.DataFrame:
        codes = grids["grid_code"].astype(str)
        d = diff.loc[codes.to_numpy()]
        reasons = []
        for r in d.itertuples():
            if r.status in ("added", "removed"):
                reasons.append(_STATUS_STYLE[r.status][1])
                continue
            bits = []
            if r.geometry_changed:
                bits.append(f"边界 Boundary (Δ {r.changed_area_m2:g} m²)")
            if r.households_changed:
                bits.append(f"户数 Households {r.households_a} → {r.households_b}")
            reasons.append("; ".join(bits) or "—")
        return pd.DataFrame(
            {
                "grid_code": codes.to_numpy(dtype=object),
                "status": d["status"].to_numpy(dtype=object),
                "change": reasons,
                "households_a": d["households_a"].astype(object).to_numpy(),
                "households_b": d["households_b"].astype(object).to_numpy(),
                "moved_in": [int(moved_in.get(c, 0)) for c in codes],
                "moved_out": [int(moved_out.get(c, 0)) for c in codes],
            }
        )

    fields = [
        "grid_code",
        "status",
        "change",
        "households_a",
        "households_b",
        "moved_in",
        "moved_out",
    ]
    aliases = [
        "网格编码 Grid code",
        "状态 Status",
        "变化 Change",
        "原户数 Households (A)",
        "新户数 Households (B)",
        "迁入楼栋 Buildings in",
        "迁出楼栋 Buildings out",
    ]

    def style(f: dict[str, Any]) -> dict[str, Any]:
        colour = _STATUS_STYLE[f["properties"]["status"]][0]
        return {"color": "#555555", "weight": 1, "fillColor": colour, "fillOpacity": 0.6}

    pb = props_for(gb)
    _GeoJsonLayer(
        _collection(disp_b, pb, "grid_code"),
        name="方案B网格 Plan B grids",
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields, aliases=aliases, sticky=True),
        popup=folium.GeoJsonPopup(fields, aliases=aliases),
    ).add_to(m)
    removed = diff.index[diff["status"] == "removed"]
    if len(removed):
        mask = ga["grid_code"].astype(str).isin(removed).to_numpy()
        _GeoJsonLayer(
            _collection(disp_a[mask], props_for(ga[mask]), "grid_code"),
            name="删除的网格 Removed grids",
            style_function=lambda f: {
                "color": "#d73027",
                "weight": 2,
                "dashArray": "4 3",
                "fillColor": "#d73027",
                "fillOpacity": 0.35,
            },
            tooltip=folium.GeoJsonTooltip(fields, aliases=aliases, sticky=True),
        ).add_to(m)
    _GeoJsonLayer(
        _collection(
            disp_a,
            pd.DataFrame({"grid_code": ga["grid_code"].astype(str).to_numpy(dtype=object)}),
            None,
        ),
        name="方案A边界 Plan A boundaries",
        style_function=lambda f: {
            "color": "#000000",
            "weight": 1.5,
            "dashArray": "6 4",
            "fill": False,
        },
        interactive=False,
    ).add_to(m)
    n_moved_drawn = 0
    bl = getattr(layers, "buildings", None) if layers is not None else None
    if bl is not None and len(moved):
        if bl.crs is None:
            raise CRSError("layers.buildings has no CRS; validate layers first")
        bcrs = pyproj.CRS.from_user_input(bl.crs)
        sel = bl[bl["building_id"].astype(str).isin(moved["building_id"])]
        if len(sel):
            mv = moved.set_index("building_id")
            bids = sel["building_id"].astype(str)
            props = pd.DataFrame(
                {
                    "building_id": bids.to_numpy(dtype=object),
                    "grid_a": mv.loc[bids.to_numpy(), "grid_a"].fillna("—").to_numpy(dtype=object),
                    "grid_b": mv.loc[bids.to_numpy(), "grid_b"].fillna("—").to_numpy(dtype=object),
                }
            )
            geoms = _simplify(sel.geometry.to_numpy(), bcrs, simplify_tolerance / 2, coverage=False)
            _GeoJsonLayer(
                _collection(_to_display(geoms, bcrs, gcj=cfg.gcj), props, None),
                name="迁移楼栋 Moved buildings",
                style_function=lambda f: {
                    "color": "#40004b",
                    "weight": 1.5,
                    "fillColor": "#9970ab",
                    "fillOpacity": 0.9,
                },
                tooltip=folium.GeoJsonTooltip(
                    ["building_id", "grid_a", "grid_b"],
                    aliases=["楼栋 Building", "原网格 Grid (A)", "新网格 Grid (B)"],
                ),
            ).add_to(m)
            n_moved_drawn = len(sel)
    _add_labels(m, gb, gb["grid_code"].astype(str), plan_crs=crs_b, gcj=cfg.gcj, min_zoom=15)
    counts = diff["status"].value_counts()
    legend = ["<h4>方案对比 Plan A → B</h4>"]
    for key, (colour, label) in _STATUS_STYLE.items():
        legend.append(_swatch(colour, f"{label} · {int(counts.get(key, 0))}"))
    legend.append(_swatch("#000000", "方案A边界 Plan A boundaries", outline=True))
    legend.append(
        _swatch("#9970ab", f"迁移楼栋 Moved buildings · {len(moved)}")
        + (
            ""
            if n_moved_drawn == len(moved)
            else f"<div>(地图上 drawn: {n_moved_drawn}; 其余见网格提示 rest counted per grid)</div>"
        )
    )
    _HtmlControl("".join(legend), css_class="gridmap-legend").add_to(m)
    return _finish(m)
