"""The quality map (:func:`quality_map`) and the flags it shows (:func:`quality_flags`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.errors import CRSError
from gridmap.maps.assets import check_assets
from gridmap.maps.display import _band, _check_plan, _collection
from gridmap.maps.page import _finish, _new_map
from gridmap.maps.plan import _add_labels, _grid_layer_data
from gridmap.maps.style import _ABOVE, _BELOW, _GeoJsonLayer, _HtmlControl, _swatch
from gridmap.maps.tiles import _tile_config

if TYPE_CHECKING:
    from gridmap.partition.plan import Plan

__all__ = ["quality_flags", "quality_map"]

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- quality


def _enclosing(grids: gpd.GeoDataFrame) -> list[str | None]:
    """Code of the grid that encloses each grid (lies in one of its holes), or None."""
    geoms = grids.geometry.to_numpy()
    codes = grids["grid_code"].astype(str).to_numpy()
    filled = np.array(
        [
            shapely.Polygon(g.exterior)
            if g.geom_type == "Polygon"
            else shapely.MultiPolygon([shapely.Polygon(p.exterior) for p in g.geoms])
            if g.geom_type == "MultiPolygon"
            else g
            for g in geoms
        ],
        dtype=object,
    )
    tree = shapely.STRtree(filled)
    qi, ti = tree.query(geoms, predicate="within")
    out: list[str | None] = [None] * len(geoms)
    for i, j in zip(qi.tolist(), ti.tolist(), strict=True):
        if i != j and geoms[j].geom_type in ("Polygon", "MultiPolygon"):
            holes = (
                shapely.get_num_interior_rings(geoms[j]) if geoms[j].geom_type == "Polygon" else 1
            )
            if holes and (out[i] is None or codes[j] < out[i]):
                out[i] = codes[j]
    return out


def _band_exempt(plan: Plan) -> set[str]:
    """Return the codes of grids the report marks ``band_exempt`` (community below the band)."""
    rg = getattr(getattr(plan, "report", None), "grids", None)
    if rg is None or "band_exempt" not in rg.columns or "grid_code" not in rg.columns:
        return set()
    flag = rg["band_exempt"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return set(rg.loc[flag, "grid_code"].astype(str))


def quality_flags(
    plan: Plan, *, min_compactness: float = 0.3, band: tuple[float, float] | None = None
) -> pd.DataFrame:
    """Check every grid: household band, contiguity (parts, enclave) and compactness.

    Figures are computed from the grid geometry in the plan's CRS, so the
    flags hold for any plan, with or without a quality report.

    Parameters
    ----------
    plan : Plan
        The plan.
    min_compactness : float, default 0.3
        Polsby–Popper 4πA/P² below this fails.
    band : (float, float), optional
        Household band; defaults to ``plan.params`` min/max_households.

    Returns
    -------
    pandas.DataFrame
        One row per grid in plan order: ``grid_code``, ``households``,
        ``n_parts``, ``enclosed_by``, ``polsby_popper``, bool columns
        ``below_band``, ``above_band``, ``not_contiguous``, ``enclave``,
        ``not_compact``, ``failed`` and ``reasons`` (bilingual text, "" when
        the grid passes).

    Examples
    --------
    >>> from gridmap.maps.examples import _example_plan
    >>> quality_flags(_example_plan())["failed"].tolist()
    [False, False]
    """
    grids, crs = _check_plan(plan)
    if crs.is_geographic:
        raise CRSError(
            f"plan CRS {crs.name!r} is geographic; quality figures need metres — "
            "reproject the plan to a projected CRS (gridmap.crs.local_crs)"
        )
    lo, hi = _band(plan, band)
    geoms = grids.geometry.to_numpy()
    hh = pd.to_numeric(grids["households"], errors="coerce").to_numpy(dtype=float)
    n_parts = np.asarray(shapely.get_num_geometries(geoms), dtype=int)
    perim = np.asarray(shapely.length(geoms), dtype=float)
    area = np.asarray(shapely.area(geoms), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perim > 0, 4 * np.pi * area / perim**2, 0.0)
    enc = _enclosing(grids)
    below = ~(hh >= lo)
    above = hh > hi
    split = n_parts > 1
    enclave = np.array([e is not None for e in enc])
    loose = pp < min_compactness
    exempt = _band_exempt(plan)
    codes = grids["grid_code"].astype(str).to_numpy()
    reasons = []
    for i in range(len(grids)):
        r = []
        if below[i]:
            note = "; 社区总户数不足 whole community below band" if codes[i] in exempt else ""
            r.append(f"户数低于下限 Below band ({hh[i]:g} < {lo:g}{note})")
        if above[i]:
            r.append(f"户数超过上限 Above band ({hh[i]:g} > {hi:g})")
        if split[i]:
            r.append(f"不连续 Not contiguous ({n_parts[i]} parts)")
        if enclave[i]:
            r.append(f"飞地 Enclave (inside {enc[i]})")
        if loose[i]:
            r.append(f"不紧凑 Not compact (PP {pp[i]:.2f} < {min_compactness:g})")
        reasons.append("; ".join(r))
    return pd.DataFrame(
        {
            "grid_code": codes.astype(object),
            "households": hh,
            "n_parts": n_parts,
            "enclosed_by": pd.Series(enc, dtype=object).to_numpy(),
            "polsby_popper": np.round(pp, 4),
            "below_band": below,
            "above_band": above,
            "not_contiguous": split,
            "enclave": enclave,
            "not_compact": loose,
            "failed": below | above | split | enclave | loose,
            "reasons": reasons,
        }
    )


_QUALITY_STYLE = (
    ("below_band", _BELOW, "户数低于下限 Below band"),
    ("above_band", _ABOVE, "户数超过上限 Above band"),
    ("not_contiguous", "#762a83", "不连续 Not contiguous"),
    ("enclave", "#c51b7d", "飞地 Enclave"),
    ("not_compact", "#fdb863", "不紧凑 Not compact"),
)


def quality_map(
    plan: Plan,
    *,
    min_compactness: float = 0.3,
    band: tuple[float, float] | None = None,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    simplify_tolerance: float = 2.0,
    assets: str = "cdn",
) -> folium.Map:
    """Map the grids that fail a quality check, with the reason.

    Checks are those of :func:`quality_flags`; a failing grid is coloured by
    its first failed check (band, contiguity, enclave, compactness) and lists
    every reason in its tooltip and popup. Passing grids are light grey.

    Parameters
    ----------
    plan : Plan
        The plan.
    min_compactness : float, default 0.3
        Polsby–Popper threshold.
    band : (float, float), optional
        Household band; defaults to ``plan.params``.
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
    >>> m = quality_map(_example_plan())
    >>> "通过 Passed · 2" in m.get_root().render()
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    flags = quality_flags(plan, min_compactness=min_compactness, band=band)
    grids, simple, disp = _grid_layer_data(plan, simplify_tolerance=simplify_tolerance, gcj=cfg.gcj)
    m = _new_map(cfg, disp, title="网格质量 Grid quality", assets=assets)
    colour = []
    for r in flags.itertuples(index=False):
        c = next((col for key, col, _ in _QUALITY_STYLE if getattr(r, key)), "#f0f0f0")
        colour.append(c)
    colour_of = dict(zip(flags["grid_code"], colour, strict=True))
    props = pd.DataFrame(
        {
            "grid_code": flags["grid_code"].to_numpy(dtype=object),
            "name": grids["name"].astype(object).to_numpy() if "name" in grids.columns else None,
            "households": [None if not np.isfinite(h) else int(h) for h in flags["households"]],
            "polsby_popper": flags["polsby_popper"].round(3).to_numpy(dtype=object),
            "failed": flags["failed"].to_numpy(dtype=object),
            "reasons": [r or "通过 Passed" for r in flags["reasons"]],
        }
    )
    fields = ["grid_code", "name", "households", "polsby_popper", "reasons"]
    aliases = [
        "网格编码 Grid code",
        "名称 Name",
        "户数 Households",
        "紧凑度 Compactness (Polsby–Popper)",
        "问题 Problems",
    ]
    layer = _GeoJsonLayer(
        _collection(disp, props, "grid_code"),
        name="网格质量 Grid quality",
        style_function=lambda f: {
            "color": "#444444",
            "weight": 2.5 if f["properties"]["failed"] else 0.8,
            "fillColor": colour_of[f["id"]],
            "fillOpacity": 0.7 if f["properties"]["failed"] else 0.3,
        },
        tooltip=folium.GeoJsonTooltip(fields, aliases=aliases, sticky=True),
        popup=folium.GeoJsonPopup(fields, aliases=aliases, max_width=360),
    )
    layer.add_to(m)
    _add_labels(
        m, grids, flags["grid_code"], plan_crs=_check_plan(plan)[1], gcj=cfg.gcj, min_zoom=15
    )
    lo, hi = _band(plan, band)
    legend = [f"<h4>质量检查 Quality checks</h4><div>户数带 Band {lo:g}–{hi:g}</div>"]
    for key, col, label in _QUALITY_STYLE:
        legend.append(_swatch(col, f"{label} · {int(flags[key].sum())}"))
    legend.append(_swatch("#f0f0f0", f"通过 Passed · {int((~flags['failed']).sum())}"))
    _HtmlControl("".join(legend), css_class="gridmap-legend").add_to(m)
    return _finish(m, search_layer=layer)
