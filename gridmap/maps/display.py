"""Geometry for display: checks, coverage simplification, GCJ-02 shift, WGS84 collections."""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.crs import transform
from gridmap.errors import CRSError, InputError, LayerError
from gridmap.maps.style import _CATEGORICAL

if TYPE_CHECKING:
    from gridmap.partition.plan import Plan

__all__: list[str] = []

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- geometry


def _check_plan(plan: Plan, name: str = "plan") -> tuple[gpd.GeoDataFrame, pyproj.CRS]:
    grids = getattr(plan, "grids", None)
    if not isinstance(grids, gpd.GeoDataFrame):
        raise InputError(f"{name} must be a gridmap Plan with a GeoDataFrame of grids")
    crs = grids.crs if grids.crs is not None else getattr(plan, "crs", None)
    if crs is None:
        raise CRSError(
            f"{name} has no CRS; set it with plan.replace(grids=plan.grids.set_crs(...), "
            "crs=...) using the projected CRS the grids were made in (e.g. 'EPSG:4549')"
        )
    missing = [c for c in ("grid_code", "households") if c not in grids.columns]
    if missing:
        raise LayerError(f"{name}.grids lacks column(s) {missing}; it has {list(grids.columns)}")
    if grids["grid_code"].isna().any():
        raise LayerError(f"{name}.grids has grids without grid_code; assign codes first")
    if grids.crs is None:
        grids = grids.set_crs(crs)
    return grids, pyproj.CRS.from_user_input(crs)


def _band(plan: Plan, band: tuple[float, float] | None) -> tuple[float, float]:
    if band is None:
        params = getattr(plan, "params", None) or {}
        band = (params.get("min_households", 200), params.get("max_households", 500))
    lo, hi = float(band[0]), float(band[1])
    if not lo <= hi:
        raise InputError(f"household band min={lo:g} > max={hi:g}; pass band=(min, max)")
    return lo, hi


def _simplify(
    geoms: np.ndarray, crs: pyproj.CRS, tolerance: float, *, coverage: bool
) -> np.ndarray:
    """Simplify in the layer's own CRS (tolerance in metres, or converted for degrees).

    With ``coverage=True`` the grids are simplified together so that neighbours
    keep one shared edge. Grids that are *nearly* a coverage (vertices a few
    nanometres apart across an edge, T-junctions, zero-width slits or rings
    that collapsed, slivers of overlap) are first rebuilt as an exact one (see
    :func:`_as_coverage`); only grids that really overlap or leave real gaps are
    simplified one by one, which is logged (the quality report is where such a
    plan is flagged, not the map).
    """
    if not tolerance or tolerance <= 0 or len(geoms) == 0:
        return geoms
    tol = tolerance / 111_320.0 if crs.is_geographic else tolerance
    if coverage:
        polys = np.array([g.geom_type in ("Polygon", "MultiPolygon") for g in geoms])
        if polys.all():
            exact = _as_coverage(geoms, tol, grid_size=1e-8 if crs.is_geographic else 1e-3)
            if exact is not None:
                return np.asarray(shapely.coverage_simplify(exact, tol))
        _log.warning(
            "%d grids do not form a coverage (they overlap or leave gaps wider than the %g m "
            "display tolerance); each grid is simplified on its own, so shared edges may not "
            "line up exactly on the map — the plan's quality report gives the overlap and gap "
            "areas",
            len(geoms),
            tolerance,
        )
    return np.asarray(shapely.simplify(geoms, tol, preserve_topology=True))


def _as_coverage(geoms: np.ndarray, tolerance: float, *, grid_size: float) -> np.ndarray | None:
    """Return the grids as an exact polygonal coverage, or None if they are far from one.

    A valid coverage is returned unchanged. Otherwise every grid is made valid
    (keeping its area), all boundaries are noded together on a ``grid_size``
    grid and polygonized; each face goes to the lowest-numbered grid that holds
    it (faces in no grid, i.e. gaps, are dropped) and each grid becomes the
    union of its faces. Faces of one polygonization share their edges exactly,
    so the result is always a coverage. It is used only if no grid changed by
    more than ``tolerance`` on average along its boundary (area of the
    symmetric difference ≤ ``tolerance`` × perimeter): repairs of numerical
    noise are accepted, real overlaps and gaps are not hidden.
    """
    if bool(shapely.coverage_is_valid(geoms)) and bool(shapely.is_valid(geoms).all()):
        return geoms
    valid = np.asarray(shapely.make_valid(geoms, method="structure", keep_collapsed=False))
    valid = np.array(
        [g if g.geom_type in ("Polygon", "MultiPolygon") else _polygonal(g) for g in valid],
        dtype=object,
    )
    lines = shapely.union_all(shapely.boundary(valid), grid_size=grid_size)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))))
    if len(faces) == 0:
        return None
    tree = shapely.STRtree(valid)
    fi, gi = tree.query(shapely.point_on_surface(faces), predicate="intersects")
    owner = np.full(len(faces), len(valid), dtype=np.int64)
    np.minimum.at(owner, fi, gi)
    order = np.argsort(owner, kind="stable")
    starts = np.searchsorted(owner[order], np.arange(len(valid) + 1))
    rebuilt = np.empty(len(valid), dtype=object)
    for k in range(len(valid)):
        mine = faces[order[starts[k] : starts[k + 1]]]
        if len(mine) == 0:
            return None  # a grid thinner than grid_size: not something to repair silently
        rebuilt[k] = mine[0] if len(mine) == 1 else shapely.coverage_union_all(mine)
    moved = shapely.area(shapely.symmetric_difference(rebuilt, valid))
    if not bool((moved <= tolerance * shapely.length(valid) + grid_size).all()):
        return None
    if not bool(shapely.coverage_is_valid(rebuilt)):  # pragma: no cover - faces always tile
        return None
    _log.info(
        "grids were not an exact coverage (unmatched vertices, slits or slivers); "
        "their shared edges were rebuilt for display (largest change %.3g m²)",
        float(moved.max()),
    )
    return rebuilt


def _polygonal(geom: Any) -> Any:
    """Return the polygonal part of a geometry collection (an empty polygon if none)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _gcj_shift(geoms: np.ndarray) -> np.ndarray:
    def shift(coords: np.ndarray) -> np.ndarray:
        lon, lat = transform(coords[:, 0], coords[:, 1], "wgs84", "gcj02", validate=False)
        return np.column_stack([lon, lat])

    return np.asarray(shapely.transform(geoms, shift))


def _to_display(geoms: Any, crs: pyproj.CRS, *, gcj: bool, decimals: int = 6) -> np.ndarray:
    """Reproject to WGS84 (then GCJ-02 if asked) and round coordinates."""
    arr = np.asarray(gpd.GeoSeries(np.asarray(geoms), crs=crs).to_crs(4326).array, dtype=object)
    if gcj:
        arr = _gcj_shift(arr)
    rounded = shapely.transform(arr, lambda c: np.round(c, decimals))
    out = np.empty(len(rounded), dtype=object)
    try:
        out[:] = shapely.remove_repeated_points(rounded, 0.0)
    except shapely.errors.GEOSException:  # a ring down to 2 points: GEOS refuses to build it
        for k, geom in enumerate(rounded):
            try:
                out[k] = shapely.remove_repeated_points(geom, 0.0)
            except shapely.errors.GEOSException:
                out[k] = None
    # rounding collapsed a small ring (a hole, a sliver part): snap those geometries to the same
    # grid of coordinates with GEOS, which drops collapsed rings and keeps the output valid
    broken = shapely.is_missing(out) | (~shapely.is_valid(out) & shapely.is_valid(arr))
    if broken.any():
        out[broken] = shapely.set_precision(arr[broken], 10.0**-decimals)
    return out


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not np.isfinite(value) else value
    return value


def _collection(geoms: np.ndarray, props: pd.DataFrame, id_col: str | None) -> dict[str, Any]:
    cols = list(props.columns)
    features = []
    for geom, row in zip(geoms, props.itertuples(index=False, name=None), strict=True):
        rec = {c: _clean(v) for c, v in zip(cols, row, strict=True)}
        for c, v in rec.items():
            if isinstance(v, str):
                rec[c] = html.escape(v, quote=False)  # tooltips/popups use innerHTML
        feat: dict[str, Any] = {"type": "Feature"}
        if id_col is not None:
            feat["id"] = rec[id_col]
        feat["properties"] = rec
        feat["geometry"] = geom  # a shapely geometry: encoded by _GeoJsonLayer
        features.append(feat)
    return {"type": "FeatureCollection", "features": features}


def _bounds(geoms: np.ndarray) -> list[list[float]]:
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


def _adjacency_colours(
    grids: gpd.GeoDataFrame, palette: tuple[str, ...] = _CATEGORICAL
) -> dict[str, str]:
    """Greedy colouring so that touching grids get different colours (deterministic)."""
    codes = grids["grid_code"].astype(str).to_numpy()
    order = np.argsort(codes, kind="stable")
    left, right = grids.sindex.query(grids.geometry.to_numpy(), predicate="intersects")
    neighbours: dict[int, set[int]] = {}
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i != j:
            neighbours.setdefault(i, set()).add(j)
    colour: dict[int, int] = {}
    for i in order.tolist():
        used = {colour[j] for j in neighbours.get(i, ()) if j in colour}
        colour[i] = next(k for k in range(len(palette) + len(used) + 1) if k not in used)
    return {codes[i]: palette[k % len(palette)] for i, k in colour.items()}
