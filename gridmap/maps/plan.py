"""The plan map (:func:`plan_map`): grids by households against the band, communities, buildings."""

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

from gridmap.errors import CRSError
from gridmap.maps.assets import check_assets
from gridmap.maps.display import (
    _adjacency_colours,
    _band,
    _check_plan,
    _clean,
    _collection,
    _simplify,
    _to_display,
)
from gridmap.maps.page import _alias, _chiefs, _finish, _new_map, _report_figures
from gridmap.maps.style import (
    _GREY,
    _band_colour,
    _band_legend,
    _GeoJsonLayer,
    _HtmlControl,
    _Labels,
)
from gridmap.maps.tiles import _tile_config

if TYPE_CHECKING:
    from gridmap.layers import Layers
    from gridmap.partition.plan import Plan

__all__ = ["plan_map"]

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- plan map


def _grid_layer_data(
    plan: Plan,
    *,
    simplify_tolerance: float,
    gcj: bool,
) -> tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray]:
    """Return (grids in plan CRS, simplified projected geoms, display geoms)."""
    grids, crs = _check_plan(plan)
    simple = _simplify(grids.geometry.to_numpy(), crs, simplify_tolerance, coverage=True)
    return grids, simple, _to_display(simple, crs, gcj=gcj)


def _community_layers(
    m: folium.Map,
    grids: gpd.GeoDataFrame,
    simple: np.ndarray,
    layers: Layers | None,
    *,
    simplify_tolerance: float,
    gcj: bool,
) -> dict[str, str]:
    """Add community (and sub-district) boundaries; return community_id → name."""
    names: dict[str, str] = {}
    comm = getattr(layers, "communities", None) if layers is not None else None
    if comm is not None and len(comm):
        if comm.crs is None:
            raise CRSError("layers.communities has no CRS; validate layers first")
        ccrs = pyproj.CRS.from_user_input(comm.crs)
        if "name" in comm.columns:
            names = {
                str(k): str(v)
                for k, v in zip(comm["community_id"], comm["name"], strict=True)
                if pd.notna(v)
            }
        cgeoms = _simplify(comm.geometry.to_numpy(), ccrs, simplify_tolerance, coverage=False)
        props = pd.DataFrame(
            {
                "community_id": comm["community_id"].astype(object).to_numpy(),
                "name": [names.get(str(c), str(c)) for c in comm["community_id"]],
            }
        )
        street = comm["street_code"] if "street_code" in comm.columns else None
        if street is not None and street.notna().any():
            sub = comm.loc[street.notna()]
            streets = sub.geometry.groupby(sub["street_code"].astype(str)).agg(shapely.union_all)
            sgeoms = _simplify(streets.to_numpy(), ccrs, simplify_tolerance, coverage=False)
            sname = (
                sub.groupby(sub["street_code"].astype(str))["street"].first()
                if "street" in sub.columns
                else pd.Series(dtype=object)
            )
            sprops = pd.DataFrame(
                {
                    "street_code": streets.index.to_numpy(dtype=object),
                    "street": [_clean(sname.get(c, c)) for c in streets.index],
                }
            )
            _GeoJsonLayer(
                _collection(_to_display(sgeoms, ccrs, gcj=gcj), sprops, None),
                name="街道边界 Sub-district boundaries",
                style_function=lambda f: {
                    "color": "#6a3d9a",
                    "weight": 4,
                    "fill": False,
                    "dashArray": "8 4",
                },
                tooltip=folium.GeoJsonTooltip(
                    ["street", "street_code"], aliases=["街道 Sub-district", "代码 Code"]
                ),
            ).add_to(m)
    else:
        crs = pyproj.CRS.from_user_input(grids.crs)
        cid = grids["community_id"].astype(str) if "community_id" in grids.columns else None
        if cid is None:
            return names
        merged = (
            pd.Series(list(simple), index=cid.to_numpy())
            .groupby(level=0)
            .agg(lambda s: shapely.union_all(np.asarray(list(s))))
        )
        cgeoms = merged.to_numpy()
        ccrs = crs
        props = pd.DataFrame(
            {
                "community_id": merged.index.to_numpy(dtype=object),
                "name": merged.index.to_numpy(dtype=object),
            }
        )
    _GeoJsonLayer(
        _collection(_to_display(cgeoms, ccrs, gcj=gcj), props, None),
        name="社区边界 Community boundaries",
        style_function=lambda f: {"color": "#000000", "weight": 2.5, "fill": False},
        interactive=False,
    ).add_to(m)
    return names


def _building_grids(pb: pd.DataFrame | None) -> pd.Series:
    """Return building_id → its grid code(s), comma-joined and sorted when split."""
    if pb is None or len(pb) == 0:
        return pd.Series(dtype=object)
    pairs = (
        pd.DataFrame(
            {
                "building_id": pb["building_id"].astype(str).to_numpy(dtype=object),
                "grid_code": pb["grid_code"].to_numpy(dtype=object),
            }
        )
        .dropna()
        .astype({"grid_code": str})
        .drop_duplicates()
        .sort_values(["building_id", "grid_code"], kind="stable")
    )
    split = pairs["building_id"].duplicated(keep=False).to_numpy()
    one = pairs[~split].set_index("building_id")["grid_code"]
    many = pairs[split].groupby("building_id")["grid_code"].agg(",".join)
    return pd.concat([one, many]).astype(object)


def _buildings_layer(
    m: folium.Map,
    plan: Plan,
    layers: Layers,
    colours: dict[str, str],
    *,
    simplify_tolerance: float,
    gcj: bool,
) -> int:
    """Add the buildings coloured by grid (canvas-drawn when there are many); return how many."""
    b = layers.buildings
    if b is None or len(b) == 0:
        return 0
    if b.crs is None:
        raise CRSError("layers.buildings has no CRS; validate layers first")
    bcrs = pyproj.CRS.from_user_input(b.crs)
    by_building = _building_grids(plan.buildings)
    bid = b["building_id"].astype(str)
    code = bid.map(by_building)
    props = pd.DataFrame(
        {
            "building_id": bid.to_numpy(dtype=object),
            "grid_code": code.astype(object).where(code.notna(), None).to_numpy(),
            "households": (
                b["households"].astype(object).to_numpy() if "households" in b.columns else None
            ),
        }
    )
    geoms = _simplify(b.geometry.to_numpy(), bcrs, simplify_tolerance / 2, coverage=False)
    data = _collection(_to_display(geoms, bcrs, gcj=gcj), props, None)

    def style(f: dict[str, Any]) -> dict[str, Any]:
        c = colours.get(f["properties"]["grid_code"] or "", _GREY)
        return {"color": "#333333", "weight": 0.6, "fillColor": c, "fillOpacity": 0.8}

    for i, f in enumerate(data["features"]):
        f["id"] = i
    _GeoJsonLayer(
        data,
        name="楼栋 Buildings",
        style_function=style,
        tooltip=folium.GeoJsonTooltip(
            ["building_id", "grid_code", "households"],
            aliases=["楼栋 Building", "网格 Grid", "户数 Households"],
        ),
        show=len(b) <= _HIDE_BUILDINGS_ABOVE,
    ).add_to(m)
    return len(b)


#: With more buildings than this the whole map is drawn on one canvas (SVG slows down past
#: ~10^4 paths; one shared canvas keeps the hit-testing order: a building over its grid).
_CANVAS_ABOVE = 3000
#: More buildings than this start switched off (the map opens fast; the layer control shows them).
_HIDE_BUILDINGS_ABOVE = 20_000


def plan_map(
    plan: Plan,
    *,
    layers: Layers | None = None,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    show_buildings: bool = True,
    simplify_tolerance: float = 2.0,
    label_min_zoom: int = 15,
    band: tuple[float, float] | None = None,
    prefer_canvas: bool = False,
    staff_visible: bool = True,
    assets: str = "cdn",
) -> folium.Map:
    """Map a plan: grids coloured by households against the band, with labels and tooltips.

    Parameters
    ----------
    plan : Plan
        The plan, in any projected CRS.
    layers : Layers, optional
        Validated layers; gives community and sub-district (``street_code``)
        boundaries and the buildings layer. Without it, community boundaries are
        the union of each community's grids.
    tiles : str or None, default "osm"
        A preset of :data:`TILE_PRESETS`, a ``{z}/{x}/{y}`` URL template (needs
        ``attr``) or None for no base map.
    attr : str, optional
        Attribution of a custom tile URL (overrides a preset's).
    tiles_key : str, optional
        API key for presets that need one (天地图 Tianditu).
    tiles_crs : {"wgs84", "gcj02"}, optional
        Datum of the tiles; defaults to the preset's (GCJ-02 for AMap and
        Tencent, WGS84 otherwise). With GCJ-02 every overlay is shifted.
    show_buildings : bool, default True
        Add the (simplified) buildings of ``layers``, coloured by grid, as a
        layer that can be switched off. Above 3,000 buildings the map is
        drawn on a canvas; above 20,000 the layer starts switched off (the
        legend says so), so that a city-wide map opens and zooms quickly.
    simplify_tolerance : float, default 2.0
        Display simplification in metres (0 keeps every vertex). Grids are
        simplified as a coverage so neighbours keep their shared edges.
    label_min_zoom : int, default 15
        Grid-code labels show from this zoom level on.
    band : (float, float), optional
        Household band; defaults to ``plan.params`` min/max_households.
    prefer_canvas : bool, default False
        Draw with a canvas instead of SVG (automatic above 3,000 buildings).
    staff_visible : bool, default True
        Name the grid chief in tooltips. Pass False for roles that may not
        see staff: then no staff name is in the HTML.

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
    CRSError
        If the plan has no CRS.
    InputError
        For an unknown tile preset or a bad band.

    Examples
    --------
    >>> from gridmap.maps.examples import _example_plan
    >>> m = plan_map(_example_plan())
    >>> "户数 Households" in m.get_root().render()
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    lo, hi = _band(plan, band)
    grids, simple, disp = _grid_layer_data(plan, simplify_tolerance=simplify_tolerance, gcj=cfg.gcj)
    blds = getattr(layers, "buildings", None) if show_buildings and layers is not None else None
    many = blds is not None and len(blds) > _CANVAS_ABOVE
    m = _new_map(
        cfg, disp, title="网格方案 Grid plan", prefer_canvas=prefer_canvas or many, assets=assets
    )

    codes = grids["grid_code"].astype(str)
    hh = pd.to_numeric(grids["households"], errors="coerce").to_numpy(dtype=float)
    fill = pd.Series([_band_colour(h, lo, hi) for h in hh])
    chiefs = _chiefs(plan) if staff_visible else {}
    props = pd.DataFrame(
        {
            "grid_code": codes.to_numpy(dtype=object),
            "name": (grids["name"].astype(object).to_numpy() if "name" in grids.columns else None),
            "households": [None if not np.isfinite(h) else int(h) for h in hh],
            "chief": [chiefs.get(c, "—") for c in codes] if staff_visible else None,
            "boundary_desc": (
                grids["boundary_desc"].astype(object).fillna("—").to_numpy()
                if "boundary_desc" in grids.columns
                else "—"
            ),
        }
    )
    props["_c"] = fill.to_numpy(dtype=object)
    figures = _report_figures(plan, codes)
    props = pd.concat([props, figures], axis=1)

    community_names = _community_layers(
        m, grids, simple, layers, simplify_tolerance=simplify_tolerance, gcj=cfg.gcj
    )
    if community_names and "community_id" in grids.columns:
        props.insert(
            2,
            "community",
            [community_names.get(str(c), str(c)) for c in grids["community_id"]],
        )
    data = _collection(disp, props, "grid_code")
    for f in data["features"]:
        del f["properties"]["_c"]
        if not staff_visible:
            del f["properties"]["chief"]
    colour_of = dict(zip(codes, fill, strict=True))

    tip_fields = ["grid_code", "name", "households"]
    tip_alias = ["网格编码 Grid code", "名称 Name", "户数 Households"]
    if staff_visible:
        tip_fields.append("chief")
        tip_alias.append("网格长 Grid chief")
    if "community" in props.columns:
        tip_fields.insert(2, "community")
        tip_alias.insert(2, "社区 Community")
    pop_fields = ["grid_code", "name", "households", "boundary_desc", *figures.columns]
    pop_alias = [
        "网格编码 Grid code",
        "名称 Name",
        "户数 Households",
        "四至 Boundaries",
        *(_alias(c[2:]) for c in figures.columns),
    ]
    grid_layer = _GeoJsonLayer(
        data,
        name="网格 Grids",
        style_function=lambda f: {
            "color": "#444444",
            "weight": 1.2,
            "fillColor": colour_of[f["id"]],
            "fillOpacity": 0.55,
        },
        highlight_function=lambda f: {"weight": 3, "color": "#000000", "fillOpacity": 0.7},
        tooltip=folium.GeoJsonTooltip(tip_fields, aliases=tip_alias, sticky=True),
        popup=folium.GeoJsonPopup(pop_fields, aliases=pop_alias, max_width=360),
    )
    grid_layer.add_to(m)
    n_buildings = 0
    if show_buildings and layers is not None and getattr(layers, "buildings", None) is not None:
        n_buildings = _buildings_layer(
            m,
            plan,
            layers,
            _adjacency_colours(grids),
            simplify_tolerance=simplify_tolerance,
            gcj=cfg.gcj,
        )
    _add_labels(
        m, grids, codes, plan_crs=_check_plan(plan)[1], gcj=cfg.gcj, min_zoom=label_min_zoom
    )
    counts = fill.value_counts()
    legend = _band_legend(lo, hi, counts)
    if n_buildings:
        legend += f"<div>楼栋按网格着色 Buildings coloured by grid · {n_buildings:,}</div>"
        if n_buildings > _HIDE_BUILDINGS_ABOVE:
            legend += "<div>（楼栋图层默认关闭 switch buildings on in the layer control）</div>"
    _HtmlControl(legend, css_class="gridmap-legend").add_to(m)
    return _finish(m, search_layer=grid_layer)


def _add_labels(
    m: folium.Map,
    grids: gpd.GeoDataFrame,
    codes: pd.Series,
    *,
    plan_crs: pyproj.CRS,
    gcj: bool,
    min_zoom: int,
    name: str = "网格编码 Grid codes",
) -> None:
    pts = _to_display(
        shapely.point_on_surface(grids.geometry.to_numpy()), plan_crs, gcj=gcj, decimals=6
    )
    rows = [
        [float(shapely.get_y(p)), float(shapely.get_x(p)), c, c[-3:] if len(c) > 6 else c]
        for p, c in zip(pts, codes.astype(str), strict=True)
    ]
    _Labels(rows, map_name=m.get_name(), min_zoom=min_zoom, name=name).add_to(m)
