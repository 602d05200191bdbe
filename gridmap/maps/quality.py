"""The quality map (:func:`quality_map`) and the flags it shows (:func:`quality_flags`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.errors import CRSError
from gridmap.maps.assets import check_assets
from gridmap.maps.display import _band, _check_plan, _collection
from gridmap.maps.page import _finish, _new_map, _staff_table
from gridmap.maps.plan import _add_labels, _grid_layer_data
from gridmap.maps.style import (
    _ABOVE,
    _BELOW,
    _NO_CHIEF,
    _fmt_figure,
    _fmt_number,
    _GeoJsonLayer,
    _HtmlControl,
    _swatch,
)
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


def _is_staffed(plan: Plan) -> bool:
    """Whether the plan carries assignments (posts, filled or vacant)."""
    return len(_staff_table(plan)) > 0


def _chief_held(plan: Plan, codes: np.ndarray) -> np.ndarray:
    """Whether each grid has a grid chief (网格长): a chief post held by someone."""
    s = _staff_table(plan)
    held = set(s.loc[(s["role"] == "chief") & s["name"].notna(), "grid_code"].astype(str))
    return np.array([c in held for c in codes], dtype=bool)


def quality_flags(
    plan: Plan,
    *,
    min_compactness: float = 0.3,
    band: tuple[float, float] | None = None,
    require_chief: bool | None = None,
) -> pd.DataFrame:
    """Check every grid: household band, contiguity (parts, enclave), compactness, chief.

    Figures are computed from the grid geometry in the plan's CRS, so the
    flags hold for any plan, with or without a quality report. A grid fails
    ``no_chief`` when no one holds its grid chief (网格长) post (vacant, or no
    post at all): every grid needs one chief.

    Parameters
    ----------
    plan : Plan
        The plan.
    min_compactness : float, default 0.3
        Polsby–Popper 4πA/P² below this fails.
    band : (float, float), optional
        Household band; defaults to ``plan.params`` min/max_households.
    require_chief : bool, optional
        Check that every grid has a chief. By default, when the plan carries
        assignments (a plan not staffed yet is not failed for having none).

    Returns
    -------
    pandas.DataFrame
        One row per grid in plan order: ``grid_code``, ``households``,
        ``n_parts``, ``enclosed_by``, ``polsby_popper``, bool columns
        ``below_band``, ``above_band``, ``not_contiguous``, ``enclave``,
        ``not_compact``, ``no_chief`` (False when not checked), ``failed`` and
        ``reasons`` (bilingual text, "" when the grid passes).

    Examples
    --------
    >>> from gridmap.maps.examples import _example_plan
    >>> quality_flags(_example_plan())["failed"].tolist()
    [False, False]
    >>> quality_flags(_example_plan(), require_chief=True)["reasons"].tolist()
    ['无网格长 No grid chief', '无网格长 No grid chief']
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
    if require_chief is None:
        require_chief = _is_staffed(plan)
    no_chief = ~_chief_held(plan, codes) if require_chief else np.zeros(len(codes), dtype=bool)
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
        if no_chief[i]:
            r.append("无网格长 No grid chief")
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
            "no_chief": no_chief,
            "failed": below | above | split | enclave | loose | no_chief,
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


def _quality_style(props: dict[str, Any], fill: str) -> dict[str, Any]:
    """Fill by the first failed check; a thick dashed magenta outline when there is no chief."""
    style: dict[str, Any] = {
        "color": "#444444",
        "weight": 2.5 if props["failed"] else 0.8,
        "fillColor": fill,
        "fillOpacity": 0.7 if props["failed"] else 0.3,
    }
    if props["no_chief"]:
        style.update(color=_NO_CHIEF, weight=4, dashArray="8 5")
    return style


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
    require_chief: bool | None = None,
) -> folium.Map:
    """Map the grids that fail a quality check, with the reason.

    Checks are those of :func:`quality_flags`; a failing grid is coloured by
    its first failed check (band, contiguity, enclave, compactness) and lists
    every reason in its tooltip and popup. A grid without a grid chief
    (网格长) gets a thick dashed magenta outline whatever its fill. Grids that
    pass are light grey; the legend counts every check.

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
    require_chief : bool, optional
        As in :func:`quality_flags`: by default when the plan carries
        assignments; otherwise the legend says that chiefs were not checked.

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
    staffed = _is_staffed(plan)
    checked = staffed if require_chief is None else require_chief
    flags = quality_flags(plan, min_compactness=min_compactness, band=band, require_chief=checked)
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
            "households": [
                None if not np.isfinite(h) else _fmt_number(h) for h in flags["households"]
            ],
            "polsby_popper": [_fmt_figure("polsby_popper", v) for v in flags["polsby_popper"]],
            "failed": flags["failed"].to_numpy(dtype=object),
            "no_chief": flags["no_chief"].to_numpy(dtype=object),
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
        style_function=lambda f: _quality_style(f["properties"], colour_of[f["id"]]),
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
    if checked:
        n_no_chief = int(flags["no_chief"].sum())
        legend.append(
            _swatch(_NO_CHIEF, f"无网格长 No grid chief · {n_no_chief}", outline=True, dashed=True)
        )
    else:
        legend.append("<div>未配置人员，未查网格长 Not staffed: chiefs not checked</div>")
    legend.append(_swatch("#f0f0f0", f"通过 Passed · {int((~flags['failed']).sum())}"))
    _HtmlControl("".join(legend), css_class="gridmap-legend").add_to(m)
    return _finish(m, search_layer=layer)
