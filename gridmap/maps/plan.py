"""The plan map (:func:`plan_map`): grids by households against the band, communities, buildings."""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
from gridmap.maps.page import (
    _alias,
    _chiefs,
    _finish,
    _new_map,
    _report_figures,
    _staff_table,
)
from gridmap.maps.style import (
    _BUILDING_COLOURS,
    _GREY,
    _band_colour,
    _band_legend,
    _fmt_figure,
    _fmt_number,
    _GeoJsonLayer,
    _HtmlControl,
    _Labels,
    _PlaceLabels,
)
from gridmap.maps.tiles import _tile_config

if TYPE_CHECKING:
    from gridmap.layers import Layers
    from gridmap.partition.plan import Plan

__all__ = ["ROAD_STYLES", "plan_map"]

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
) -> tuple[dict[str, str], list[list[Any]]]:
    """Add community (and sub-district) boundaries.

    Return community_id → name (from ``layers``) and the rows ``[lat, lon, name]``
    of the community name labels (the id where there is no name).
    """
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
            return names, []
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
    spots = _to_display(
        shapely.point_on_surface(np.asarray(cgeoms, dtype=object)), ccrs, gcj=gcj, decimals=6
    )
    rows = [
        [float(shapely.get_y(p)), float(shapely.get_x(p)), str(n)]
        for p, n in zip(spots, props["name"], strict=True)
        if p is not None and not shapely.is_empty(p)
    ]
    return names, rows


#: Endings dropped from a community's name in grid labels ("幸福社区" → "幸福-003").
_NAME_ENDINGS = (
    "社区居民委员会",
    "居民委员会",
    "社区居委会",
    "居委会",
    "村民委员会",
    "村委会",
    "社区",
)


def _short_name(name: str) -> str:
    """Return a community's short name for grid labels (at least two characters kept).

    Examples
    --------
    >>> [_short_name(n) for n in ("幸福社区", "新村社区居委会", "C0001", "东社区")]
    ['幸福', '新村', 'C0001', '东社区']
    """
    for end in _NAME_ENDINGS:
        if name.endswith(end) and len(name) - len(end) >= 2:
            return name[: -len(end)]
    return name


def _staff_columns(plan: Plan, codes: pd.Series, *, names: bool) -> pd.DataFrame:
    """Per grid: 网格员 names (``workers``) and vacant posts (``vacant``), aligned to codes.

    Empty (no columns) when the plan carries no assignments. Grids with no post
    at all show "—"; ``workers`` only with ``names``.
    """
    s = _staff_table(plan)
    s = s[s["grid_code"].notna()]
    if len(s) == 0:
        return pd.DataFrame(index=range(len(codes)))
    s = s.assign(grid_code=s["grid_code"].astype(str), vacant=s["name"].isna())
    has_posts = set(s["grid_code"])
    filled = s[~s["vacant"] & (s["role"] == "worker")]
    workers = filled.groupby("grid_code")["name"].agg(lambda v: "、".join(map(str, v)))
    open_posts = s[s["vacant"]].groupby(["grid_code", "role"]).size()
    role_names = {"chief": "网格长", "worker": "网格员"}

    def vacancies(code: str) -> str:
        if code not in has_posts:
            return "—"
        parts = [
            f"{role_names[r]} {int(open_posts[(code, r)])}"
            for r in ("chief", "worker")
            if (code, r) in open_posts.index
        ]
        return "、".join(parts) if parts else "无 None"

    out = pd.DataFrame(index=range(len(codes)))
    if names:
        out["workers"] = [workers.get(c, "—" if c not in has_posts else "无 None") for c in codes]
    out["vacant"] = [vacancies(c) for c in codes]
    return out


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
                [
                    _fmt_number(h) if pd.notna(h) else None
                    for h in pd.to_numeric(b["households"], errors="coerce")
                ]
                if "households" in b.columns
                else None
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


#: How each rank of road (:func:`gridmap.partition.roads.road_ranks`) is drawn on plan maps:
#: arterials thick, vehicle streets medium, paths thin and dashed, other lines (rail) grey.
ROAD_STYLES: dict[str, dict[str, Any]] = {
    "arterial": {"color": "#8c2d04", "weight": 5, "opacity": 0.9},
    "street": {"color": "#525252", "weight": 2.5, "opacity": 0.9},
    "path": {"color": "#737373", "weight": 1, "opacity": 0.9, "dashArray": "4 3"},
    "other": {"color": "#969696", "weight": 1.5, "opacity": 0.9},
}
_RANK_NAMES = ("arterial", "street", "path", "other")


def _roads_layer(m: folium.Map, layers: Layers, *, simplify_tolerance: float, gcj: bool) -> int:
    """Add the roads layer drawn by class (under the grids); return how many roads."""
    from gridmap.partition.roads import road_ranks

    r = getattr(layers, "roads", None)
    if r is None or len(r) == 0:
        return 0
    if r.crs is None:
        raise CRSError("layers.roads has no CRS; validate layers first")
    rcrs = pyproj.CRS.from_user_input(r.crs)
    cls = r["class"] if "class" in r.columns else pd.Series([None] * len(r), index=r.index)
    ranks = road_ranks(cls)
    props = pd.DataFrame(
        {
            "name": (
                [_clean(v) if pd.notna(v) else None for v in r["name"]]
                if "name" in r.columns
                else None
            ),
            "class": [str(v) if pd.notna(v) else None for v in cls],
            "rank": [_RANK_NAMES[int(k)] for k in ranks],
        }
    )
    geoms = _simplify(r.geometry.to_numpy(), rcrs, simplify_tolerance / 2, coverage=False)
    data = _collection(_to_display(geoms, rcrs, gcj=gcj), props, None)
    # arterials last, so that they are drawn over the streets they cross
    data["features"].sort(key=lambda f: -_RANK_NAMES.index(f["properties"]["rank"]))
    _GeoJsonLayer(
        data,
        name="道路 Roads",
        style_function=lambda f: ROAD_STYLES[f["properties"]["rank"]],
        interactive=False,
    ).add_to(m)
    return len(r)


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

    Grids are labelled with their community and sequence ("幸福-003"; the
    community id without ``layers``), the full code when zoomed in; each
    community's name is written on it. Popups give the grid's community, 四至,
    网格长 and 网格员 and vacant posts (when the plan carries assignments) and
    the quality figures, formatted for people: 是/否, shares as percentages,
    thousands separators. Buildings take a palette of their own (neighbouring
    grids differ), never the band's colours.

    Parameters
    ----------
    plan : Plan
        The plan, in any projected CRS.
    layers : Layers, optional
        Validated layers; gives community and sub-district (``street_code``)
        boundaries, the buildings layer and the roads, drawn under the grids by
        class (arterials thick, streets medium, paths thin: see :data:`ROAD_STYLES`)
        so that without base-map tiles one still sees whether borders follow
        streets. Without it, community boundaries are the union of each
        community's grids.
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
        Grid labels show from this zoom level on (the full code from two
        levels more); community names from three levels less.
    band : (float, float), optional
        Household band; defaults to ``plan.params`` min/max_households.
    prefer_canvas : bool, default False
        Draw with a canvas instead of SVG (automatic above 3,000 buildings).
    staff_visible : bool, default True
        Name the grid chief in tooltips and popups, the grid workers in
        popups. Pass False for roles that may not see staff: then no staff
        name is in the HTML (vacant posts are still counted).

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
            "households": [None if not np.isfinite(h) else _fmt_number(h) for h in hh],
            "chief": [chiefs.get(c, "—") for c in codes] if staff_visible else None,
            "boundary_desc": (
                grids["boundary_desc"].astype(object).fillna("—").to_numpy()
                if "boundary_desc" in grids.columns
                else "—"
            ),
        }
    )
    props["_c"] = fill.to_numpy(dtype=object)
    staff = _staff_columns(plan, codes, names=staff_visible)
    figures = _report_figures(plan, codes)
    for c in figures.columns:  # 是/否, percentages for shares, thousands separators
        figures[c] = [_fmt_figure(c[2:], v) for v in figures[c]]
    props = pd.concat([props, staff, figures], axis=1)

    community_names, place_rows = _community_layers(
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
    pop_fields = ["grid_code", "name", "households", "boundary_desc"]
    pop_alias = ["网格编码 Grid code", "名称 Name", "户数 Households", "四至 Boundaries"]
    if "community" in props.columns:
        pop_fields.insert(2, "community")
        pop_alias.insert(2, "社区 Community")
    if staff_visible and "vacant" in staff.columns:
        pop_fields += ["chief", "workers"]
        pop_alias += ["网格长 Grid chief", "网格员 Grid workers"]
    if "vacant" in staff.columns:
        pop_fields.append("vacant")
        pop_alias.append("空缺岗位 Vacant posts")
    pop_fields += list(figures.columns)
    pop_alias += [_alias(c[2:]) for c in figures.columns]
    n_roads = (
        _roads_layer(m, layers, simplify_tolerance=simplify_tolerance, gcj=cfg.gcj)
        if layers is not None
        else 0
    )
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
            _adjacency_colours(grids, _BUILDING_COLOURS),
            simplify_tolerance=simplify_tolerance,
            gcj=cfg.gcj,
        )
    _add_labels(
        m,
        grids,
        codes,
        plan_crs=_check_plan(plan)[1],
        gcj=cfg.gcj,
        min_zoom=label_min_zoom,
        community_names=community_names,
    )
    if place_rows:
        _PlaceLabels(
            place_rows,
            map_name=m.get_name(),
            min_zoom=max(label_min_zoom - 3, 0),
            name="社区名称 Community names",
        ).add_to(m)
    counts = fill.value_counts()
    legend = _band_legend(lo, hi, counts)
    if n_buildings:
        swatches = "".join(
            f'<i style="background:{c};opacity:.8;width:8px;margin-right:1px"></i>'
            for c in _BUILDING_COLOURS
        )
        legend += (
            f"<div>{swatches}相邻网格不同色 neighbouring grids differ</div>"
            f"<div>楼栋按网格着色 Buildings coloured by grid · {n_buildings:,}</div>"
        )
        if n_buildings > _HIDE_BUILDINGS_ABOVE:
            legend += "<div>（楼栋图层默认关闭 switch buildings on in the layer control）</div>"
    if n_roads:
        legend += "".join(
            f'<div><i style="background:{ROAD_STYLES[k]["color"]};height:'
            f'{max(ROAD_STYLES[k]["weight"], 1)}px;width:18px;margin:6px 4px 0 0"></i>{label}</div>'
            for k, label in (
                ("arterial", "主次干路 Arterials"),
                ("street", "街巷 Streets"),
                ("path", "步道 Paths"),
            )
        )
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
    community_names: Mapping[str, str] | None = None,
) -> None:
    """Label each grid with its community and sequence ("幸福-003", "C0001-003").

    The full grid code shows when zoomed in (see :class:`_Labels`).
    """
    pts = _to_display(
        shapely.point_on_surface(grids.geometry.to_numpy()), plan_crs, gcj=gcj, decimals=6
    )
    names = community_names or {}
    cids = (
        grids["community_id"].to_numpy(dtype=object)
        if "community_id" in grids.columns
        else [None] * len(grids)
    )
    rows = []
    for p, c, cid in zip(pts, codes.astype(str), cids, strict=True):
        seq = c[-3:] if len(c) > 6 else c
        if cid is not None and not pd.isna(cid):
            seq = f"{_short_name(names.get(str(cid), str(cid)))}-{seq}"
        rows.append([float(shapely.get_y(p)), float(shapely.get_x(p)), c, seq])
    _Labels(rows, map_name=m.get_name(), min_zoom=min_zoom, name=name).add_to(m)
