"""A map page: the folium map with its controls, and the staff and report tables its popups show."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import folium
import folium.plugins
import numpy as np
import pandas as pd
from branca.element import Element, Figure

from gridmap.maps.assets import use_assets
from gridmap.maps.display import _bounds
from gridmap.maps.encoding import _DECODER_JS
from gridmap.maps.style import _CSS, _esc, _SearchPopup
from gridmap.maps.tiles import _TileConfig

if TYPE_CHECKING:
    from gridmap.partition.plan import Plan

__all__: list[str] = []

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- the map


def _new_map(
    cfg: _TileConfig,
    geoms: np.ndarray,
    *,
    title: str,
    prefer_canvas: bool = False,
    assets: str = "cdn",
) -> folium.Map:
    m = folium.Map(
        location=None,
        tiles=None,
        control_scale=True,
        prefer_canvas=prefer_canvas,
        max_zoom=max(cfg.max_zoom, 19),
    )
    use_assets(m, assets)
    root = m.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(Element(f"<title>{_esc(title)}</title>"), name="gridmap_title")
    root.header.add_child(Element(_CSS), name="gridmap_css")
    root.header.add_child(Element(_DECODER_JS), name="gridmap_decode")
    if cfg.url is not None:
        folium.TileLayer(
            tiles=cfg.url,
            attr=cfg.attr,
            name=f"底图 Base map ({cfg.name})",
            subdomains=cfg.subdomains,
            max_zoom=max(cfg.max_zoom, 19),
            max_native_zoom=cfg.max_zoom,
            overlay=False,
            control=True,
        ).add_to(m)
        if cfg.labels_url is not None:
            folium.TileLayer(
                tiles=cfg.labels_url,
                attr=cfg.attr,
                name="注记 Map labels",
                subdomains=cfg.subdomains,
                max_zoom=max(cfg.max_zoom, 19),
                max_native_zoom=cfg.max_zoom,
                overlay=True,
                control=True,
            ).add_to(m)
    if len(geoms):
        m.fit_bounds(_bounds(geoms))
    else:
        m.location = [0.0, 0.0]
    return m


def _finish(m: folium.Map, *, search_layer: folium.GeoJson | None = None) -> folium.Map:
    if search_layer is not None:
        folium.plugins.Search(
            layer=search_layer,
            search_label="grid_code",
            geom_type="Polygon",
            placeholder="网格编码 Grid code",
            collapsed=False,
            search_zoom=17,
            position="topright",
            color="#e31a1c",
            weight=4,
        ).add_to(m)
        _SearchPopup(search_layer.get_name()).add_to(m)
    folium.plugins.Fullscreen(
        position="topleft", title="全屏 Fullscreen", title_cancel="退出全屏 Exit fullscreen"
    ).add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    return m


def _staff_table(plan: Plan) -> pd.DataFrame:
    """Return assignments as rows grid_code, role, name, phone (empty when unstaffed)."""
    a = getattr(plan, "assignments", None)
    cols = ["grid_code", "role", "name", "phone"]
    if a is None or len(a) == 0 or "grid_code" not in a.columns or "role" not in a.columns:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    out = pd.DataFrame({"grid_code": a["grid_code"].astype(object), "role": a["role"]})
    if "name" in a.columns:
        names = a["name"].astype(object)
        if "staff_id" in a.columns:
            names = names.where(names.notna(), a["staff_id"].astype(object))
        out["name"] = names
    else:
        out["name"] = a["staff_id"].astype(object) if "staff_id" in a.columns else None
    out["phone"] = a["phone"].astype(object) if "phone" in a.columns else None
    return out


def _chiefs(plan: Plan) -> dict[str, str]:
    s = _staff_table(plan)
    s = s[(s["role"] == "chief") & s["grid_code"].notna()]
    names = s["name"].astype(object).where(s["name"].notna(), _VACANT)
    return {str(k): "、".join(map(str, v)) for k, v in names.groupby(s["grid_code"].astype(str))}


_VACANT = "空缺 Vacant"


#: Per-grid report figures shown in popups, in this order (others follow, up to 10 in all).
_REPORT_ALIASES = {
    "polsby_popper": "紧凑度 Compactness (Polsby–Popper)",
    "in_band": "户数在带内 In band",
    "band_exempt": "社区总户数不足 Community below band",
    "n_parts": "部分数 Parts",
    "is_enclave": "飞地 Enclave",
    "enclave": "飞地 Enclave",
    "share_boundary_on_roads": "沿路边界占比 Boundary on roads",
    "n_split_buildings": "拆分楼栋 Split buildings",
    "stability": "稳定性 Stability",
    "area_m2": "面积 Area (m²)",
    "persons": "人口 Persons",
    "n_buildings": "楼栋 Buildings",
    "perimeter_m": "周长 Perimeter (m)",
}
_MAX_FIGURES = 10


def _report_figures(plan: Plan, codes: pd.Series) -> pd.DataFrame:
    """Return the quality figures of each grid (plan.report.grids), rounded, aligned to codes."""
    report = getattr(plan, "report", None)
    rg = getattr(report, "grids", None)
    if rg is None or len(rg) == 0 or "grid_code" not in rg.columns:
        return pd.DataFrame(index=range(len(codes)))
    rg = rg.drop_duplicates("grid_code")
    rg = rg.set_axis(rg["grid_code"].astype(str).to_numpy(), axis=0)
    shown = [
        c
        for c in rg.columns
        if c not in ("grid_code", "community_id", "name", "households", "boundary_desc")
        and (pd.api.types.is_numeric_dtype(rg[c]) or pd.api.types.is_bool_dtype(rg[c]))
        and bool(rg[c].notna().any())  # a figure no grid has (stability of a first plan)
    ]
    rank = {c: k for k, c in enumerate(_REPORT_ALIASES)}
    keep = sorted(shown, key=lambda c: rank.get(c, len(rank)))[:_MAX_FIGURES]
    out = rg.reindex(codes.astype(str).to_numpy())[keep].reset_index(drop=True)
    for c in keep:
        if pd.api.types.is_float_dtype(out[c]):
            big = out[c].abs().max(skipna=True) >= 10
            out[c] = out[c].round(0 if big else 3)
        out[c] = out[c].astype(object)
    return out.rename(columns={c: f"q_{c}" for c in keep})


def _alias(col: str) -> str:
    return _REPORT_ALIASES.get(col, col.replace("_", " "))
