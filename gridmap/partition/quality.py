"""The quality report of a plan (``DESIGN.md`` §4): per grid, per community, overall.

:func:`quality_report` measures a set of grids against the field's rules —
households within the band, one connected polygon per grid and no enclaves,
seamless coverage of each community, buildings kept whole, compact shapes,
boundaries that follow roads and walls, balanced sizes and (after a re-run)
stable membership. Every figure is defined in the docstring of
:func:`quality_report`; :func:`summary_text` turns a report into a few lines
for the command line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.errors import CRSError, InfeasibleError, LayerError
from gridmap.partition.plan import QualityReport
from gridmap.partition.precision import SNAP_GRID_M

if TYPE_CHECKING:
    from gridmap.layers import Layers
    from gridmap.partition.plan import Plan

__all__ = [
    "EDGE_TOLERANCE",
    "AREA_TOLERANCE",
    "area_tolerance",
    "ARTERIAL_LIMIT",
    "quality_report",
    "add_notes",
    "summary_text",
]

#: Two grids share an edge where their boundaries are within this distance (metres).
EDGE_TOLERANCE = 0.01

#: Default distance (metres) within which a border lies on a road (``road_tolerance``).
ROAD_TOLERANCE = 5.0

#: A grid with more arterial road than this (metres) inside it is "crossed" by the arterial.
ARTERIAL_LIMIT = 50.0

#: A stretch of arterial inside a grid that stays, over its whole length, within this
#: distance (metres) of its community's outer edge or of a stretch of the grid's
#: border lying on an arterial runs *along* the border, not through the grid: OSM
#: roads are centrelines, a dual carriageway is two lines 10–40 m apart (the border on
#: one, the other parallel inside), and a community edge is an input (a district line
#: 5–20 m off a main road's centreline) no grid border can move. Counted apart
#: (``arterial_along_edge_m``), never in ``arterial_inside_m``; a road crossing a grid
#: leaves the zone and counts whole. Wider medians: :data:`ARTERIAL_DUAL_MAX`.
ARTERIAL_EDGE_OFFSET = 20.0

#: A stretch leaving that zone by at most this many metres still runs along the border
#: (where two carriageways part at a junction the inner one leaves the zone for a few
#: metres). A road crossing a grid is inside the zone only within the offset of either
#: border, so one longer than :data:`ARTERIAL_LIMIT` leaves it by more than
#: ``ARTERIAL_LIMIT - 2 * ARTERIAL_EDGE_OFFSET`` (10 m): it is never counted as along.
ARTERIAL_ZONE_SLACK = ARTERIAL_LIMIT - 2 * ARTERIAL_EDGE_OFFSET

#: The other carriageway of a wide dual carriageway (Chinese boulevards have medians and
#: green strips of 20–40 m: 延安东路, 东方路, 张杨路) lies beyond the offset. Up to this
#: distance (metres) from a stretch of the grid's border lying on an arterial, or from
#: arterial road beside the grid (outside it, not farther in than the tolerance: the
#: border may leave the carriageway for a cycle path or a verge in the median), arterial
#: road *parallel* to and beside that stretch (within :data:`ARTERIAL_PARALLEL_DEG`) runs
#: along the border too. A road crossing the grid meets its border at a wide angle and
#: goes on from a road outside in line with it, not beside it, so the angle, not the
#: distance, tells the two apart; a border 20–40 m off a single road inside the grid is
#: not on an arterial and has no such zone.
ARTERIAL_DUAL_MAX = 40.0

#: Largest angle (degrees) between a carriageway and the border's carriageway for the
#: two to count as one road (see :data:`ARTERIAL_DUAL_MAX`).
ARTERIAL_PARALLEL_DEG = 20.0

#: Gap or overlap areas below this (m²) are float noise: not noted, reported as computed.
AREA_TOLERANCE = 1.0


def area_tolerance(perimeter: float) -> float:
    """Gap or overlap (m²) a community of this perimeter (m) has from the millimetre grid alone.

    The partitioner nodes the streets with the community's edge on the grid of
    :data:`~gridmap.partition.precision.SNAP_GRID_M`: where a street or a track
    meets an edge between two of its vertices, the node is rounded by up to half
    the grid's diagonal (0.69 mm), and the land between the edge and its rounded
    copy is thin triangles holding at most 0.35 mm times the edge's length. The
    tolerance is half a step (0.49 mm) times the perimeter, and never less than
    :data:`AREA_TOLERANCE`: 1 m² up to a perimeter of 2 km, 5.9 m² round a village
    community of 12 km (rural seed 5's C0006: a gap of 1.4 m²).

    Examples
    --------
    >>> area_tolerance(1_500.0), round(area_tolerance(12_000.0), 2)
    (1.0, 5.86)
    """
    return max(AREA_TOLERANCE, perimeter * SNAP_GRID_M / 2.0)


_POLYGON = 3
_MULTIPOLYGON = 6
_COLLECTION = 7


# ----------------------------------------------------------------------------- guards


def _require_columns(frame: pd.DataFrame, name: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LayerError(
            f"{name} lacks column(s) {missing}; it has {list(frame.columns)}. "
            f"Pass the frame the partitioner produced (Plan.{name}) or add the column(s)."
        )


def _check_inputs(
    grids: gpd.GeoDataFrame,
    buildings: pd.DataFrame,
    layers: Layers,
    min_households: int,
    max_households: int,
    road_tolerance: float,
) -> None:
    if not isinstance(grids, gpd.GeoDataFrame):
        raise LayerError(
            f"grids must be a GeoDataFrame, got {type(grids).__name__}; "
            "pass Plan.grids or gpd.GeoDataFrame(..., geometry=..., crs=...)."
        )
    if grids.crs is None:
        raise CRSError(
            "grids have no CRS; set the projected CRS of the layers with grids.set_crs(layers.crs)."
        )
    if grids.crs.is_geographic:
        raise CRSError(
            f"grids are in the geographic CRS {grids.crs.name!r}; areas and lengths need "
            "metres: reproject with grids.to_crs(layers.crs)."
        )
    if layers.crs is not None and not grids.crs.equals(layers.crs):
        raise CRSError(
            f"grids are in {grids.crs.name!r} but the layers in {layers.crs.name!r}; "
            "reproject with grids.to_crs(layers.crs)."
        )
    _require_columns(grids, "grids", ("grid_code", "community_id"))
    _require_columns(buildings, "buildings", ("building_id", "grid_code", "households"))
    if min_households < 0 or max_households <= 0:
        raise InfeasibleError(
            f"min_households={min_households} and max_households={max_households} must be "
            "non-negative and positive; use e.g. min_households=200, max_households=500."
        )
    if min_households > max_households:
        raise InfeasibleError(
            f"min_households={min_households} is above max_households={max_households}; "
            "swap them or widen the band."
        )
    if not road_tolerance >= 0:
        raise InfeasibleError(f"road_tolerance={road_tolerance} must be >= 0 metres (default 5.0).")
    codes = grids["grid_code"]
    if codes.isna().any():
        raise LayerError(
            f"{int(codes.isna().sum())} grid(s) have no grid_code; give every grid a code "
            "(gridmap.partition.codes.assign_codes) before the report."
        )
    dup = codes.duplicated(keep=False)
    if dup.any():
        raise LayerError(
            f"grid codes {sorted(set(codes[dup].astype(str)))[:5]} are used by more than one "
            "grid; every grid needs its own code (gridmap.partition.codes.assign_codes)."
        )
    known = set(layers.communities["community_id"].astype(str))
    cids = grids["community_id"].astype(object)
    unknown = sorted({str(c) for c in cids if pd.isna(c) or str(c) not in known})
    if unknown:
        raise LayerError(
            f"grids refer to community id(s) {unknown[:5]} that are not in "
            "layers.communities; every grid needs a community_id of the layers."
        )
    bcodes = buildings["grid_code"].dropna().astype(str)
    stray = sorted(set(bcodes) - set(codes.astype(str)))
    if stray:
        raise LayerError(
            f"buildings are assigned to grid code(s) {stray[:5]} that are not in grids; "
            "pass the buildings and grids of the same plan."
        )


# ----------------------------------------------------------------------------- geometry


def _n_parts(geoms: np.ndarray) -> np.ndarray:
    """Count connected polygon parts per geometry (parts sharing an edge are dissolved first)."""
    types = shapely.get_type_id(geoms)
    out = np.where(shapely.is_empty(geoms) | shapely.is_missing(geoms), 0, 1).astype(np.int64)
    for i in np.flatnonzero((types == _MULTIPOLYGON) | (types == _COLLECTION)):
        parts = shapely.get_parts(geoms[i])
        parts = parts[np.isin(shapely.get_type_id(parts), [_POLYGON, _MULTIPOLYGON])]
        if len(parts) == 0:
            out[i] = 0
            continue
        merged = shapely.union_all(parts)
        polys = shapely.get_parts(merged)
        out[i] = int(np.sum(shapely.get_type_id(polys) == _POLYGON))
    return out


def _filled(geom: Any) -> Any:
    """Return the geometry with every hole filled."""
    polys = shapely.get_parts(geom)
    polys = polys[shapely.get_type_id(polys) == _POLYGON]
    shells = shapely.polygons(shapely.get_exterior_ring(polys))
    return shapely.union_all(shells) if len(shells) > 1 else shells[0]


def _enclaves(geoms: np.ndarray, community: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Index of the (smallest) grid enclosing each grid, or -1."""
    n = len(geoms)
    enclosed_by = np.full(n, -1, dtype=np.int64)
    parts_holes = np.zeros(n, dtype=bool)
    types = shapely.get_type_id(geoms)
    poly = types == _POLYGON
    parts_holes[poly] = shapely.get_num_interior_rings(geoms[poly]) > 0
    for i in np.flatnonzero((types == _MULTIPOLYGON) | (types == _COLLECTION)):
        parts = shapely.get_parts(geoms[i])
        parts = parts[shapely.get_type_id(parts) == _POLYGON]
        parts_holes[i] = bool(np.any(shapely.get_num_interior_rings(parts) > 0))
    hosts = np.flatnonzero(parts_holes)
    if len(hosts) == 0:
        return enclosed_by
    filled = np.array([_filled(geoms[i]) for i in hosts], dtype=object)
    filled = shapely.buffer(filled, EDGE_TOLERANCE, quad_segs=2)
    tree = shapely.STRtree(geoms)
    h_idx, g_idx = tree.query(filled, predicate="covers")
    host = hosts[h_idx]
    ok = (host != g_idx) & (community[host] == community[g_idx])
    host, g_idx = host[ok], g_idx[ok]
    if len(host) == 0:
        return enclosed_by
    order = np.lexsort((host, areas[host], g_idx))
    host, g_idx = host[order], g_idx[order]
    first = np.r_[True, g_idx[1:] != g_idx[:-1]]
    enclosed_by[g_idx[first]] = host[first]
    return enclosed_by


def _line_kinds(layers: Layers) -> dict[str, np.ndarray]:
    """Split the road and barrier lines by kind (see :mod:`gridmap.partition.roads`).

    Kinds: ``streets`` (vehicle), ``roads`` (all), ``walls``, ``water``, ``lines``
    (every road and barrier line) and ``arterials``.
    """
    from gridmap.partition.roads import ARTERIAL, OTHER, PATH, barrier_groups, road_ranks

    empty = np.empty(0, dtype=object)
    out = {k: empty for k in ("streets", "roads", "walls", "water", "lines", "arterials")}
    found: list[np.ndarray] = []
    roads = layers.roads
    if roads is not None and len(roads):
        g = np.asarray(roads.geometry.array, dtype=object)
        ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
        ranks = road_ranks(roads["class"] if "class" in roads.columns else [None] * len(roads))[ok]
        g = _outlines(g[ok])
        out["streets"] = g[ranks < PATH]
        out["roads"] = g[ranks < OTHER]
        out["arterials"] = g[ranks == ARTERIAL]
        found.append(g)
    bars = layers.barriers
    if bars is not None and len(bars):
        g = np.asarray(bars.geometry.array, dtype=object)
        ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
        groups = barrier_groups(bars["kind"] if "kind" in bars.columns else [None] * len(bars))[ok]
        g = _outlines(g[ok])
        out["walls"] = g[groups == "wall"]
        out["water"] = g[groups == "water"]
        found.append(g)
    if found:
        out["lines"] = np.concatenate(found)
    return out


def _outlines(g: np.ndarray) -> np.ndarray:
    types = shapely.get_type_id(g)
    polygonal = np.isin(types, [_POLYGON, _MULTIPOLYGON])
    return np.where(polygonal, shapely.boundary(g), g) if polygonal.any() else g


_THREADS = min(os.cpu_count() or 1, 4)
_THREAD_MIN = 2_000  # elements per thread, at least


def in_threads(
    fn: Callable[..., np.ndarray], *arrays: Any, chunk: int = _THREAD_MIN, **kwargs: Any
) -> np.ndarray:
    """Apply an element-wise shapely function over slices of its arrays in threads.

    The first argument must be an array; other arrays are sliced alike, scalars
    passed to every slice; ``chunk`` is the least number of elements worth a
    thread (lower for heavy operations such as a community-wide overlay).

    shapely releases the GIL in its vectorised functions, so a plan-wide overlay
    (a city's thousands of grids) uses every core; the result is the same as
    ``fn(*arrays, **kwargs)``. Small inputs run in the calling thread.

    Thread safety: the threads share the input geometries (one may appear in
    several slices) and only read them — overlays, buffers and distances keep no
    state in their inputs — and each writes only its own result slice. Prepared
    geometries do keep state while a predicate uses them (GEOS's prepared
    geometries are not thread-safe; see :mod:`gridmap.locate`), so inputs holding
    any run in the calling thread instead.
    """
    n = len(arrays[0])
    parts = min(_THREADS, n // max(chunk, 1))
    if parts >= 2 and any(
        isinstance(a, np.ndarray) and a.dtype == object and shapely.is_prepared(a).any()
        for a in arrays
    ):
        parts = 1
    if parts < 2:
        return np.asarray(fn(*arrays, **kwargs))
    cuts = np.linspace(0, n, parts + 1).astype(np.int64)

    def part(lo: int, hi: int) -> Any:  # arrays are sliced, scalars passed as they are
        return fn(*(a[lo:hi] if isinstance(a, np.ndarray) else a for a in arrays), **kwargs)

    with ThreadPoolExecutor(max_workers=parts) as pool:
        out = pool.map(part, cuts[:-1], cuts[1:])
        return np.concatenate([np.asarray(o) for o in out])


def _internal_edges(geoms: np.ndarray, community: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Edges shared by two grids of the same community.

    Returns one row per neighbour pair ``i < j``: ``i``, ``j``, ``length``
    (metres of ``i``'s boundary within :data:`EDGE_TOLERANCE` of grid ``j``), and
    the shared linework of each row.
    """
    empty = pd.DataFrame(
        {"i": np.empty(0, np.int64), "j": np.empty(0, np.int64), "length": np.empty(0)}
    )
    if len(geoms) < 2:
        return empty, np.empty(0, dtype=object)
    tree = shapely.STRtree(geoms)
    i_idx, j_idx = tree.query(geoms, predicate="dwithin", distance=EDGE_TOLERANCE)
    keep = (i_idx < j_idx) & (community[i_idx] == community[j_idx])
    i_idx, j_idx = i_idx[keep], j_idx[keep]
    if len(i_idx) == 0:
        return empty, np.empty(0, dtype=object)
    uniq_j, inv = np.unique(j_idx, return_inverse=True)
    grown = in_threads(shapely.buffer, geoms[uniq_j], EDGE_TOLERANCE, quad_segs=2)
    bound_i = shapely.boundary(geoms[i_idx])
    shared = in_threads(shapely.intersection, bound_i, grown[inv])
    length = shapely.length(shared)
    # the tolerant (buffered) edge spills ~EDGE_TOLERANCE around each end; where the
    # boundaries coincide exactly up to that spill, take the exact shared edge.
    exact = in_threads(shapely.intersection, bound_i, shapely.boundary(geoms[j_idx]))
    exact_len = shapely.length(exact)
    use_exact = (exact_len > 0) & (length - exact_len <= 10 * EDGE_TOLERANCE)
    shared = np.where(use_exact, exact, shared)
    length = np.where(use_exact, exact_len, length)
    real = length > 10 * EDGE_TOLERANCE
    i_idx, j_idx, shared, length = i_idx[real], j_idx[real], shared[real], length[real]
    # one linear geometry per edge (drop stray points of the intersection)
    shared = np.asarray(shared, dtype=object)
    mixed = ~np.isin(shapely.get_type_id(shared), [1, 5])
    for k in np.flatnonzero(mixed):
        parts = shapely.get_parts(shared[k])
        parts = parts[np.isin(shapely.get_type_id(parts), [1, 2, 5])]
        shared[k] = shapely.line_merge(shapely.multilinestrings(parts)) if len(parts) else parts
    return pd.DataFrame({"i": i_idx, "j": j_idx, "length": length}), shared


def _on_lines(
    shared: np.ndarray, kinds: Mapping[str, np.ndarray], tolerance: float
) -> dict[str, np.ndarray]:
    """Metres of every edge within ``tolerance`` of each kind of line (one merged buffer each)."""
    from gridmap.partition.roads import length_near

    out = {
        k: length_near(shared, kinds[k], tolerance) for k in ("roads", "walls", "water", "lines")
    }
    out["streets"], out["off_street"] = length_near(
        shared, kinds["streets"], tolerance, outside=True
    )
    return out


def _arterials_inside(
    geoms: np.ndarray,
    arterials: np.ndarray,
    tolerance: float,
    community: np.ndarray | None = None,
    only: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Metres of arterial road inside each grid, farther than ``tolerance`` from its boundary.

    ``only`` (a mask) measures those grids alone (0 for the others); the community
    edges still come from every grid given.

    Returns ``(through, along_edge)``: a connected stretch lying wholly within
    :data:`ARTERIAL_EDGE_OFFSET` of its community's outer edge (the union of
    the community's grids) or of the grid's border where that lies on an
    arterial (the other carriageway of a dual carriageway) runs along the
    border and goes to ``along_edge`` (leaving that zone by at most
    :data:`ARTERIAL_ZONE_SLACK` metres, where two carriageways part at a
    junction, or by more only where it runs parallel to and beside such a border,
    or an arterial outside the grid, within :data:`ARTERIAL_DUAL_MAX`: the far
    carriageway of a wide boulevard, or the inner one where the border runs on a
    path in the median); every other stretch, whole, to ``through``.

    Examples
    --------
    >>> import shapely
    >>> grids = np.array([shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)])
    >>> roads = np.array([shapely.LineString([(50, -10), (50, 110)]),   # through grid 0
    ...                   shapely.LineString([(110, 90), (190, 90)])])  # 10 m off the edge
    >>> through, along = _arterials_inside(grids, roads, 5.0, np.array(["c", "c"]))
    >>> through.round().tolist(), along.round().tolist()
    ([90.0, 0.0], [0.0, 80.0])
    >>> # a dual carriageway: the border x = 100 on one line, the other 15 m east
    >>> duals = np.array([shapely.LineString([(100, -10), (100, 110)]),
    ...                   shapely.LineString([(115, -10), (115, 110)])])
    >>> through, along = _arterials_inside(grids, duals, 5.0, np.array(["c", "c"]))
    >>> through.round().tolist(), along.round().tolist()
    ([0.0, 0.0], [0.0, 90.0])
    >>> # the inner carriageway bulges to 23 m off the border (8.5 m out of the zone):
    >>> # along; bulging to 35 m (42 m out of the zone) it runs through the grid
    >>> tall = np.array([shapely.box(0, 0, 100, 300), shapely.box(100, 0, 200, 300)])
    >>> def bulge(x):
    ...     return np.array([shapely.LineString([(100, -10), (100, 310)]), shapely.LineString(
    ...         [(115, -10), (115, 140), (x, 148), (115, 156), (115, 310)])])
    >>> [_arterials_inside(tall, bulge(x), 5.0, np.array(["c", "c"]))[0].round().tolist()
    ...  for x in (123, 135)]
    [[0.0, 0.0], [0.0, 317.0]]
    >>> # the border's carriageway 0.01 m outside grid 1 (west of x = 100): still along it
    >>> duals2 = np.array([shapely.LineString([(99.99, -10), (99.99, 110)]),
    ...                    shapely.LineString([(115, -10), (115, 110)])])
    >>> _arterials_inside(grids, duals2, 5.0, np.array(["c", "c"]))[0].round().tolist()
    [0.0, 0.0]
    >>> # the border leaves the outer carriageway (x = 100) for a path 7 m east of it
    >>> # north of y = 150: each carriageway inside a grid, beside the other outside it,
    >>> # is along (the outer one in grid 0 there, the inner one in grid 1)
    >>> west = shapely.union(shapely.box(0, 0, 100, 300), shapely.box(100, 150, 107, 300))
    >>> stepped = np.array([west, shapely.difference(shapely.box(0, 0, 200, 300), west)])
    >>> duals3 = np.array([shapely.LineString([(100, -10), (100, 310)]),
    ...                    shapely.LineString([(115, -10), (115, 310)])])
    >>> [x.round().tolist() for x in _arterials_inside(stepped, duals3, 5.0, np.array(["c", "c"]))]
    [[0.0, 0.0], [140.0, 290.0]]
    """
    n = len(geoms)
    through, along = np.zeros(n), np.zeros(n)
    if n == 0 or len(arterials) == 0:
        return through, along
    tree = shapely.STRtree(arterials)
    g_idx, a_idx = tree.query(geoms, predicate="intersects")
    if only is not None:
        keep = np.asarray(only, dtype=bool)[g_idx]
        g_idx, a_idx = g_idx[keep], a_idx[keep]
    if len(g_idx) == 0:
        return through, along
    rim = shapely.buffer(shapely.boundary(geoms[g_idx]), tolerance, quad_segs=4)
    inside = shapely.difference(shapely.intersection(arterials[a_idx], geoms[g_idx]), rim)
    if community is None:
        return np.bincount(g_idx, weights=shapely.length(inside), minlength=n), along
    # the outer edge of every community, grown by the offset
    zone_of: dict[Any, Any] = {}
    for c in np.unique(community[g_idx]):
        outer = shapely.boundary(shapely.union_all(geoms[community == c]))
        zone_of[c] = shapely.buffer(outer, ARTERIAL_EDGE_OFFSET, quad_segs=4)
    # and the grid's border where it lies on an arterial, grown by the offset
    border_zone: dict[int, Any] = {}
    for k, geom in enumerate(inside):
        parts = shapely.get_parts(geom)
        parts = parts[np.isin(shapely.get_type_id(parts), [1, 2])]  # lines, not touching points
        if len(parts) == 0:
            continue
        g = g_idx[k]
        if g not in border_zone:
            # every arterial within the tolerance of the grid, also one just outside it
            # (a carriageway the border follows a few centimetres off)
            close = tree.query(geoms[g], predicate="dwithin", distance=tolerance)
            # (only the roads' stretches by the grid: buffering whole roads per grid is slow)
            x0, y0, x1, y1 = shapely.bounds(geoms[g]) + np.array([-1, -1, 1, 1]) * (tolerance + 1)
            near = shapely.buffer(
                shapely.clip_by_rect(shapely.union_all(arterials[close]), x0, y0, x1, y1),
                tolerance,
                quad_segs=4,
            )
            on = shapely.intersection(shapely.boundary(geoms[g]), near)
            # the carriageways beside the grid: arterial on its border or outside it (not
            # farther in than the tolerance), within the widest median
            wide = tree.query(geoms[g], predicate="dwithin", distance=ARTERIAL_DUAL_MAX)
            beside = shapely.difference(
                shapely.union_all(arterials[wide]), shapely.buffer(geoms[g], -tolerance)
            )
            border_zone[g] = (
                shapely.union(
                    zone_of[community[g]], shapely.buffer(on, ARTERIAL_EDGE_OFFSET, quad_segs=4)
                ),
                shapely.union(on, beside),
            )
        zone, on = border_zone[g]
        for part in shapely.get_parts(shapely.line_merge(shapely.multilinestrings(parts))):
            length = shapely.length(part)
            rest = shapely.difference(part, zone)
            off = shapely.length(rest)
            if off > ARTERIAL_ZONE_SLACK:  # beyond the offset: the other carriageway?
                off -= _parallel_length(rest, on)
            if off <= ARTERIAL_ZONE_SLACK:
                along[g] += length
            else:
                through[g] += length
    return through, along


def _parallel_length(lines: Any, on: Any, step: float = 2.0) -> float:
    """Metres of ``lines`` within :data:`ARTERIAL_DUAL_MAX` of a parallel stretch of ``on``.

    ``lines`` is cut into pieces of at most ``step`` metres; a piece counts when a
    segment of ``on`` within that distance of its midpoint runs at most
    :data:`ARTERIAL_PARALLEL_DEG` off its direction (either way: the two carriageways of
    a road run opposite ways) and has the midpoint beside it (its projection falls on
    the segment: a road going on straight past the border's end is not beside it). Any
    segment, not only the nearest: by a corner of the grid the nearest may be the other
    side.

    Examples
    --------
    >>> import shapely
    >>> border = shapely.LineString([(0, 0), (0, 300)])
    >>> far = shapely.LineString([(30, 0), (30, 300)])   # the other carriageway, 30 m off
    >>> cross = shapely.LineString([(0, 150), (100, 150)])  # a road leaving the border
    >>> ahead = shapely.LineString([(0, 300), (0, 330)])  # going on past the border's end
    >>> [round(_parallel_length(x, border)) for x in (far, cross, ahead)]
    [300, 0, 0]
    >>> round(_parallel_length(shapely.LineString([(45, 0), (45, 300)]), border))  # too far
    0
    """
    from gridmap.partition.cells import _guide_segments

    def segments(g: Any) -> tuple[np.ndarray, np.ndarray]:
        parts = shapely.get_parts(g)
        got = _guide_segments(parts[np.isin(shapely.get_type_id(parts), [1, 2])])
        if got is None:
            return np.empty((0, 2)), np.empty((0, 2))
        p0, p1, _ = got
        keep = (p0 != p1).any(axis=1)
        return p0[keep], p1[keep]

    a0, a1 = segments(shapely.segmentize(lines, step))
    b0, b1 = segments(on)
    if len(a0) == 0 or len(b0) == 0:
        return 0.0
    mid = (a0 + a1) / 2.0
    tree = shapely.STRtree(shapely.linestrings(np.stack([b0, b1], axis=1)))
    s_idx, r_idx = tree.query(shapely.points(mid), predicate="dwithin", distance=ARTERIAL_DUAL_MAX)
    if len(s_idx) == 0:
        return 0.0
    da, db = (a1 - a0)[s_idx], (b1 - b0)[r_idx]
    turn = np.abs(np.arctan2(da[:, 1], da[:, 0]) - np.arctan2(db[:, 1], db[:, 0])) % np.pi
    turn = np.degrees(np.minimum(turn, np.pi - turn))
    # beside the border's segment, not beyond its end: a road that leaves the border and
    # goes on straight into the grid (the grid lies on both sides of it) is not beside it
    t = np.einsum("ij,ij->i", mid[s_idx] - b0[r_idx], db) / np.einsum("ij,ij->i", db, db)
    ok = np.unique(s_idx[(turn <= ARTERIAL_PARALLEL_DEG) & (t >= 0) & (t <= 1)])
    return float(np.hypot(*(a1 - a0)[ok].T).sum())


def _street_blocks(
    cgeom: Any, streets: np.ndarray, reps: np.ndarray, bhh: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Faces of a community cut by its vehicle streets, and the households in each."""
    from gridmap.partition.units import _blocks

    near = streets[shapely.intersects(streets, cgeom)] if len(streets) else streets
    blocks = _blocks(cgeom, near)
    hh = np.zeros(len(blocks))
    if len(blocks) and len(reps):
        p_idx, b_idx = shapely.STRtree(blocks).query(reps, predicate="within")
        np.add.at(hh, b_idx, bhh[p_idx])
    return blocks, hh


def _band_forces_cut(
    block_hh: np.ndarray, total: float, min_households: int, max_households: int
) -> np.ndarray:
    """Per block: whether no banded plan of the community can hold it in one grid.

    A block above the maximum is cut by any plan. So is one that leaves too few
    households for the other grids, whatever their number: a village of 440 in a
    community of 504 with grids of 200–500 needs two grids (one cannot hold 504,
    three would need 600), and the second would get at most 64, so the village
    must be cut, roads or none. The test lets the other households split anywhere
    (it knows nothing of their blocks), so it names a cut forced only when it is.
    A community the band cannot fit forces only the blocks above the maximum.

    Examples
    --------
    >>> _band_forces_cut(np.array([440.0, 64.0, 600.0]), 504.0, 200, 500).tolist()
    [True, False, True]
    >>> _band_forces_cut(np.array([440.0]), 844.0, 200, 500).tolist()
    [False]
    """
    h = np.asarray(block_hh, dtype=float)
    out = h > max_households
    if not _band_feasible(total, min_households, max_households):
        return out
    rest = total - h
    fits = np.zeros(len(h), dtype=bool)
    k_lo = max(1, math.ceil(total / max_households))
    k_hi = math.floor(total / min_households) if min_households > 0 else k_lo
    for k in range(k_lo, max(k_lo, k_hi) + 1):
        # the block's grid takes x households more; the other k - 1 grids hold rest - x
        x_lo = np.maximum.reduce(
            [np.zeros_like(h), min_households - h, rest - (k - 1) * max_households]
        )
        x_hi = np.minimum(max_households - h, rest - (k - 1) * min_households)
        fits |= x_lo <= x_hi
    return out | ~fits


def _forced_off_street(
    off: np.ndarray, blocks: np.ndarray, block_hh: np.ndarray, forced_block: np.ndarray
) -> tuple[float, list[tuple[float, float]]]:
    """Metres of off-street border inside street blocks no plan can leave whole.

    Returns the forced length and, per such block, (households, metres of cuts).
    """
    if len(off) == 0 or len(blocks) == 0:
        return 0.0, []
    parts = shapely.get_parts(off)
    parts = parts[np.isin(shapely.get_type_id(parts), [1, 2])]
    if len(parts) == 0:
        return 0.0, []
    mid = shapely.line_interpolate_point(parts, 0.5, normalized=True)
    p_idx, b_idx = shapely.STRtree(blocks).query(mid, predicate="intersects")
    first = np.unique(p_idx, return_index=True)[1]
    p_idx, b_idx = p_idx[first], b_idx[first]
    big = forced_block[b_idx]
    lens = shapely.length(parts[p_idx])
    per_block: dict[int, float] = {}
    for b, ln in zip(b_idx[big], lens[big], strict=True):
        per_block[int(b)] = per_block.get(int(b), 0.0) + float(ln)
    forced = float(lens[big].sum())
    return forced, sorted(((float(block_hh[b]), m) for b, m in per_block.items()), reverse=True)


# ----------------------------------------------------------------------------- figures


def _cv(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return math.nan
    mean = float(values.mean())
    if mean == 0:
        return math.nan
    return float(values.std(ddof=0) / mean)


def _band_feasible(total: float, lo: int, hi: int) -> bool:
    """Whether some number of grids k >= 1 has k*lo <= total <= k*hi."""
    k_lo = max(1, math.ceil(total / hi))
    k_hi = math.inf if lo == 0 else math.floor(total / lo)
    return k_lo <= k_hi


def _stability(
    grids_codes: pd.Series,
    buildings: pd.DataFrame,
    households: pd.DataFrame | None,
    previous: Plan,
) -> tuple[pd.DataFrame, str]:
    """Kept and compared households per current grid_code, and the basis used."""
    prev_hh = previous.households
    if (
        households is not None
        and prev_hh is not None
        and {"household_id", "grid_code"} <= set(households.columns)
        and {"household_id", "grid_code"} <= set(prev_hh.columns)
    ):
        cur = households[["household_id", "grid_code"]].astype({"household_id": str})
        old = prev_hh[["household_id", "grid_code"]].astype({"household_id": str})
        both = cur.merge(old, on="household_id", how="inner", suffixes=("", "_prev"))
        both = both[both["grid_code"].notna()]
        same = both["grid_code"].astype(str) == both["grid_code_prev"].astype(str)
        same &= both["grid_code_prev"].notna()
        frame = pd.DataFrame(
            {
                "grid_code": both["grid_code"].astype(str).to_numpy(),
                "kept": same.to_numpy(dtype=float),
                "compared": np.ones(len(both)),
            }
        )
        basis = "households"
    else:
        cur = buildings[buildings["grid_code"].notna()]
        cur = (
            cur.assign(
                building_id=cur["building_id"].astype(str), grid_code=cur["grid_code"].astype(str)
            )
            .groupby(["building_id", "grid_code"], sort=True)["households"]
            .sum()
            .rename("cur")
            .reset_index()
        )
        pb = previous.buildings
        pb = pb[pb["grid_code"].notna()]
        pb = (
            pb.assign(
                building_id=pb["building_id"].astype(str), grid_code=pb["grid_code"].astype(str)
            )
            .groupby(["building_id", "grid_code"], sort=True)["households"]
            .sum()
            .rename("prev")
            .reset_index()
        )
        cur = cur[cur["building_id"].isin(set(pb["building_id"]))]
        both = cur.merge(pb, on=["building_id", "grid_code"], how="left")
        both["prev"] = both["prev"].fillna(0)
        frame = pd.DataFrame(
            {
                "grid_code": both["grid_code"].to_numpy(),
                "kept": np.minimum(both["cur"].to_numpy(float), both["prev"].to_numpy(float)),
                "compared": both["cur"].to_numpy(dtype=float),
            }
        )
        basis = "buildings"
    per_grid = frame.groupby("grid_code", sort=False)[["kept", "compared"]].sum()
    return per_grid.reindex(grids_codes.astype(str).to_numpy(), fill_value=0.0), basis


def _share(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else math.nan


def _nanmean(values: np.ndarray) -> float:
    """Mean of the values that are not NaN; NaN when there are none (no warning)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else math.nan


def _pyval(value: Any) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def quality_report(
    grids: gpd.GeoDataFrame,
    buildings: pd.DataFrame,
    layers: Layers,
    *,
    min_households: int,
    max_households: int,
    previous: Plan | None = None,
    households: pd.DataFrame | None = None,
    road_tolerance: float = ROAD_TOLERANCE,
    notes: Mapping[str, Iterable[str]] | None = None,
    area_cap_m2: float | None = None,
    load: pd.Series | None = None,
) -> QualityReport:
    """Measure a set of grids against the rules of a good partition (``DESIGN.md`` §4).

    Figures, per grid (``report.grids``, one row per grid in the order of
    ``grids``), per community (``report.communities``, one row per community
    of the layers, including communities without grids) and overall
    (``report.overall``):

    households in band
        ``in_band``: ``min_households <= households <= max_households``.
        ``band_exempt``: the grid's community holds fewer than
        ``min_households`` in total (it is one grid, flagged with a note).
        Per community ``n_in_band``/``share_in_band``, ``below_min`` and
        ``band_feasible`` (some number of grids k has ``k*min <= total <=
        k*max``); overall ``share_in_band`` over all grids.
    contiguity
        ``n_parts``: connected polygons of the grid after dissolving parts that
        share an edge (parts touching at a point only count separately); 1 is
        contiguous (``n_enclaves`` per community and overall counts residential
        enclaves; a dedicated grid — a campus ringed by main roads — inside
        another is counted apart, ``n_dedicated_enclosed``, and noted).
        ``is_enclave``/``enclosed_by``: a grid *A* is an enclave
        when it lies inside a hole of another grid *B* of the same community —
        *A* is covered by *B* with its holes filled (within
        :data:`EDGE_TOLERANCE`) — so every way out of *A* crosses *B*;
        ``enclosed_by`` is the code of the smallest such *B*.
    seamless coverage
        Per community ``gap_area_m2 = area(community − ∪grids)``,
        ``overlap_area_m2 = Σ area(grid) − area(∪grids)`` and
        ``outside_area_m2 = area(∪grids − community)``; overall sums.
    building integrity
        A building is *split* when its rows in ``buildings`` carry more than one
        ``grid_code``; the split is *justified* when the building's households
        (sum over its rows) exceed ``max_households``. ``n_split_buildings`` and
        ``n_unjustified_splits`` per grid, community (buildings touching its
        grids) and overall (distinct buildings); ``n_unassigned_buildings`` /
        ``unassigned_households``: layer buildings with no grid.
    compactness
        ``polsby_popper = 4πA/P²`` (area and perimeter incl. holes, projected
        CRS); 1 for a disc, π/4 for a square. Mean and minimum per community
        and overall; overall also the mean of residential and of dedicated grids
        apart (``mean_polsby_popper_residential`` / ``_dedicated``, NaN without
        such grids): a dedicated grid's outline is the land between main roads
        it stands on, not a shape the partitioner chose.
    boundary on roads
        Internal boundary: the parts of a grid's boundary within
        :data:`EDGE_TOLERANCE` of another grid **of the same community**
        (community borders are not the partition's choice). Its length lying
        within ``road_tolerance`` of a road or barrier line (polygon barriers:
        their outline) is ``boundary_on_roads_m``;
        ``share_boundary_on_roads`` is their ratio (NaN without internal
        boundary, 0 without road and barrier layers). Each edge counts once per
        community and overall, and for both of its grids.
    balance
        ``households_cv``: coefficient of variation (population standard
        deviation / mean) of households per grid, per community and overall.
    workload (``load`` given)
        ``load`` per grid (the weighted workload of
        :mod:`gridmap.partition.load`); overall, over residential grids,
        ``load_cv`` (coefficient of variation) and ``load_max_median`` (the
        heaviest grid's load / the median), and the same figures ``_before``
        for the grids the partitioner had before it balanced on load
        (``load.attrs["before"]``: their loads), ``load_weights`` and
        ``unlocated_cases``.
    stability (``previous`` given)
        Share of households that keep their grid, *keep* meaning the same
        ``grid_code`` in both plans (locked grids keep their code, see
        :func:`gridmap.partition.codes.assign_codes`). With a household table
        in both plans (``households`` and ``previous.households``) it counts
        households present in both by ``household_id``; otherwise it compares
        buildings present in both plans, weighting each by its current
        households (for a building in parts, per grid the smaller of its
        current and previous households there). Per grid it is the share of
        the grid's compared households; ``overall["stability_basis"]`` says
        which basis was used. NaN when ``previous`` is None.
    validity
        ``is_valid`` per grid (an invalid polygon, e.g. self-intersecting, is
        repaired with :func:`shapely.make_valid` before measuring and noted);
        ``overall["n_invalid"]``.
    sizes
        ``households``, ``persons`` (NaN when unknown), ``n_buildings``,
        ``area_m2``, ``perimeter_m`` per grid; totals per community and overall.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        ``grid_code``, ``community_id``, geometry (projected CRS of ``layers``);
        ``households`` (else summed from ``buildings``) and ``persons`` are used
        when present.
    buildings : pandas.DataFrame
        Building → grid rows: ``building_id``, ``grid_code``, ``households``
        and optionally ``part``.
    layers : gridmap.layers.Layers
        The validated layers (communities, buildings, roads, barriers …).
    min_households, max_households : int
        The household band.
    previous : Plan, optional
        An earlier plan, for stability.
    households : pandas.DataFrame, optional
        Household → grid rows (``household_id``, ``grid_code``).
    road_tolerance : float, default 5.0
        Distance (metres) within which a boundary counts as on a road.
    notes : mapping, optional
        Extra notes per community id (e.g. from the solver), appended to the
        computed ones; see also :func:`add_notes`.

    Returns
    -------
    QualityReport
        ``grids`` and ``communities`` DataFrames and the ``overall`` dict.

    Raises
    ------
    CRSError
        Grids without a CRS, in a geographic CRS or in another CRS than layers.
    LayerError
        Missing columns, duplicate or missing grid codes, unknown community
        ids, buildings assigned to grids that do not exist.
    InfeasibleError
        A band with ``min_households > max_households`` or negative bounds.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely import box
    >>> from gridmap.layers import Layers
    >>> comms = gpd.GeoDataFrame({"community_id": ["c1"], "name": ["幸福社区"]},
    ...                          geometry=[box(0, 0, 200, 100)], crs=3857)
    >>> blds = gpd.GeoDataFrame({"building_id": ["b1", "b2"], "households": [250, 300]},
    ...                         geometry=[box(10, 10, 20, 20), box(110, 10, 120, 20)], crs=3857)
    >>> layers = Layers(communities=comms, buildings=blds, crs=comms.crs)
    >>> grids = gpd.GeoDataFrame({"grid_code": ["g1", "g2"], "community_id": ["c1", "c1"],
    ...                           "households": [250, 300]},
    ...                          geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)], crs=3857)
    >>> rows = pd.DataFrame({"building_id": ["b1", "b2"], "grid_code": ["g1", "g2"],
    ...                      "households": [250, 300]})
    >>> rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    >>> rep.overall["share_in_band"], round(rep.overall["mean_polsby_popper"], 4)
    (1.0, 0.7854)
    >>> rep.overall["gap_area_m2"], rep.overall["internal_boundary_m"]
    (0.0, 100.0)
    """
    _check_inputs(grids, buildings, layers, min_households, max_households, road_tolerance)
    n = len(grids)
    geoms = np.asarray(grids.geometry.array, dtype=object)
    if shapely.is_missing(geoms).any():
        raise LayerError(
            f"{int(shapely.is_missing(geoms).sum())} grid(s) have no geometry; give every "
            "grid a polygon."
        )
    valid = shapely.is_valid(geoms)
    if not valid.all():
        geoms = np.where(valid, geoms, shapely.make_valid(geoms))
    codes = grids["grid_code"].astype(str).to_numpy(dtype=object)
    community = grids["community_id"].astype(str).to_numpy(dtype=object)
    code_pos = {c: k for k, c in enumerate(codes)}

    # --- buildings -------------------------------------------------------------------
    brows = buildings[["building_id", "grid_code", "households"]].copy()
    brows["building_id"] = brows["building_id"].astype(str)
    brows["households"] = pd.to_numeric(brows["households"]).fillna(0).astype(float)
    assigned = brows[brows["grid_code"].notna()].copy()
    assigned["grid_code"] = assigned["grid_code"].astype(str)
    per_building = assigned.groupby("building_id", sort=True).agg(n_grids=("grid_code", "nunique"))
    totals = brows.groupby("building_id", sort=True)["households"].sum()
    per_building["households"] = totals.reindex(per_building.index)
    per_building["split"] = per_building["n_grids"] > 1
    per_building["unjustified"] = per_building["split"] & (
        per_building["households"] <= max_households
    )
    assigned = assigned.join(per_building[["split", "unjustified"]], on="building_id")
    pair = assigned.drop_duplicates(["building_id", "grid_code"])
    grid_pos = pair["grid_code"].map(code_pos).to_numpy(dtype=np.int64)
    n_buildings = np.bincount(grid_pos, minlength=n)
    n_split = np.bincount(grid_pos, weights=pair["split"].to_numpy(float), minlength=n)
    n_unjust = np.bincount(grid_pos, weights=pair["unjustified"].to_numpy(float), minlength=n)

    if "households" in grids.columns:
        hh = pd.to_numeric(grids["households"]).fillna(0).to_numpy(dtype=float)
    else:
        hh = np.bincount(
            assigned["grid_code"].map(code_pos).to_numpy(dtype=np.int64),
            weights=assigned["households"].to_numpy(float),
            minlength=n,
        )
    if "persons" in grids.columns:
        persons = pd.to_numeric(grids["persons"]).to_numpy(dtype=float)
    else:
        persons = np.full(n, np.nan)

    layer_b = layers.buildings
    layer_ids = layer_b["building_id"].astype(str)
    unassigned_mask = ~layer_ids.isin(set(assigned["building_id"]))
    layer_hh = (
        pd.to_numeric(layer_b["households"]).fillna(0).astype(float)
        if "households" in layer_b.columns
        else pd.Series(0.0, index=layer_b.index)
    )
    layer_cid = (
        layer_b["community_id"].astype(object).map(lambda v: None if pd.isna(v) else str(v))
        if "community_id" in layer_b.columns
        else pd.Series([None] * len(layer_b), index=layer_b.index, dtype=object)
    )
    unassigned = pd.DataFrame(
        {"cid": layer_cid[unassigned_mask].to_numpy(), "hh": layer_hh[unassigned_mask].to_numpy()}
    )

    # --- geometry ----------------------------------------------------------------------
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perimeter > 0, 4.0 * np.pi * area / perimeter**2, np.nan)
    n_parts = _n_parts(geoms)
    enclosed = _enclaves(geoms, community, area)
    is_enclave = enclosed >= 0
    enclosed_by = np.where(is_enclave, codes[np.maximum(enclosed, 0)], None)

    kinds = _line_kinds(layers)
    edges, shared = _internal_edges(geoms, community)
    ei, ej = edges["i"].to_numpy(), edges["j"].to_numpy()
    elen = edges["length"].to_numpy()
    on = _on_lines(shared, kinds, road_tolerance)
    eroad = on["roads"]

    def per_grid(values: np.ndarray) -> np.ndarray:
        return np.bincount(ei, values, n) + np.bincount(ej, values, n)

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    internal = per_grid(elen)
    on_roads = per_grid(eroad)
    on_streets = per_grid(on["streets"])
    on_walls = per_grid(on["walls"])
    on_water = per_grid(on["water"])
    on_lines = per_grid(on["lines"])
    share_roads = ratio(on_roads, internal)
    art_inside, art_edge = _arterials_inside(geoms, kinds["arterials"], road_tolerance, community)
    art_forced = (
        grids["arterial_forced"].fillna(False).to_numpy(dtype=bool)
        if "arterial_forced" in grids.columns
        else np.zeros(n, dtype=bool)
    )
    art_bad = art_inside > ARTERIAL_LIMIT

    kind = (
        grids["kind"].fillna("residential").astype(str).to_numpy(dtype=object)
        if "kind" in grids.columns
        else np.full(n, "residential", dtype=object)
    )
    dedicated = kind == "dedicated"
    in_band = (hh >= min_households) & (hh <= max_households)
    over_cap = (
        ~dedicated & (area > area_cap_m2) if area_cap_m2 is not None else np.zeros(n, dtype=bool)
    )

    stab_kept = np.zeros(n)
    stab_cmp = np.zeros(n)
    basis = None
    if previous is not None:
        per, basis = _stability(grids["grid_code"], buildings, households, previous)
        stab_kept = per["kept"].to_numpy(dtype=float)
        stab_cmp = per["compared"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        stability = np.where(stab_cmp > 0, stab_kept / stab_cmp, np.nan)
    if previous is None:
        stability = np.full(n, np.nan)

    # --- communities -------------------------------------------------------------------
    comms = layers.communities
    comm_ids = comms["community_id"].astype(str).to_numpy(dtype=object)
    comm_geoms = np.asarray(comms.geometry.array, dtype=object)
    comm_ok = shapely.is_missing(comm_geoms) | shapely.is_valid(comm_geoms)
    if not comm_ok.all():
        comm_geoms = np.where(comm_ok, comm_geoms, shapely.make_valid(comm_geoms))
    comm_names = (
        comms["name"].astype(object).to_numpy()
        if "name" in comms.columns
        else np.full(len(comms), None, dtype=object)
    )
    comm_total = pd.Series(hh).groupby(community).sum()
    exempt = np.array([comm_total.get(c, 0.0) < min_households for c in community], dtype=bool)
    exempt |= dedicated

    grid_df = pd.DataFrame(
        {
            "grid_code": codes,
            "community_id": community,
            "kind": kind,
            "households": hh,
            "persons": persons,
            "n_buildings": n_buildings.astype(np.int64),
            "area_m2": area,
            "perimeter_m": perimeter,
            "polsby_popper": pp,
            "n_parts": n_parts,
            "is_valid": valid,
            "is_enclave": is_enclave,
            "enclosed_by": pd.Series(enclosed_by, dtype=object),
            "in_band": in_band,
            "band_exempt": exempt,
            "n_split_buildings": n_split.astype(np.int64),
            "n_unjustified_splits": n_unjust.astype(np.int64),
            "internal_boundary_m": internal,
            "boundary_on_streets_m": on_streets,
            "share_boundary_on_streets": ratio(on_streets, internal),
            "boundary_on_roads_m": on_roads,
            "share_boundary_on_roads": share_roads,
            "boundary_on_walls_m": on_walls,
            "boundary_on_water_m": on_water,
            "boundary_on_lines_m": on_lines,
            "share_boundary_on_lines": ratio(on_lines, internal),
            "arterial_inside_m": art_inside,
            "arterial_along_edge_m": art_edge,
            "arterial_forced": art_forced,
            "households_per_km2": ratio(hh * 1e6, area),
            "over_area_cap": over_cap,
            "stability": stability,
        }
    )
    if "households" in grids.columns and np.allclose(hh, np.round(hh)):
        grid_df["households"] = np.round(hh).astype(np.int64)
    if load is not None:
        grid_df["load"] = pd.Series(codes).astype(str).map(load).fillna(0.0).to_numpy(float)

    members = pd.Series(np.arange(n)).groupby(community).apply(lambda s: s.to_numpy())
    edge_comm = community[ei] if len(ei) else np.empty(0, dtype=object)
    sums = ["length", "roads", "streets", "walls", "water", "lines"]
    edge_frame = pd.DataFrame({"cid": edge_comm, "length": elen, **{k: on[k] for k in sums[1:]}})
    edge_sums = edge_frame.groupby("cid")[sums].sum()
    off_of = {
        str(c): on["off_street"][np.flatnonzero(edge_comm == c)] for c in np.unique(edge_comm)
    }
    lb = layers.buildings
    if "community_id" in lb.columns and len(lb):
        b_reps = shapely.point_on_surface(np.asarray(lb.geometry.array, dtype=object))
        b_cid = lb["community_id"].astype(str).to_numpy(dtype=object)
        b_hh = layer_hh.to_numpy(dtype=float)
    else:
        b_reps, b_cid, b_hh = np.empty(0, dtype=object), np.empty(0, dtype=object), np.empty(0)
    split_by_comm = assigned.assign(cid=assigned["grid_code"].map(lambda c: community[code_pos[c]]))
    split_by_comm = split_by_comm.drop_duplicates(["cid", "building_id"])
    split_counts = split_by_comm.groupby("cid")[["split", "unjustified"]].sum()
    unassigned_counts = unassigned.groupby("cid", dropna=False).agg(
        n=("hh", "size"), hh=("hh", "sum")
    )

    extra_notes = {str(k): [str(v) for v in vs] for k, vs in (notes or {}).items()}
    rows: list[dict[str, Any]] = []
    # seamless coverage: area(U - C) by one overlay per community, in threads; then
    # area(C - U) = area(C) - area(U) + area(U - C), without a second overlay
    unions = np.array(
        [
            shapely.union_all(geoms[members[cid]]) if cid in members.index else None
            for cid in comm_ids
        ],
        dtype=object,
    )
    union_areas = shapely.area(unions)
    outsides = shapely.area(in_threads(shapely.difference, unions, comm_geoms, chunk=8))
    for c, (cid, cgeom, cname) in enumerate(zip(comm_ids, comm_geoms, comm_names, strict=True)):
        idx = members.get(cid, np.empty(0, dtype=np.int64))
        k = len(idx)
        total = float(hh[idx].sum()) if k else 0.0
        comm_area = float(shapely.area(cgeom)) if cgeom is not None else math.nan
        if k:
            union_area = float(union_areas[c])
            outside = float(outsides[c])
            gap = max(0.0, comm_area - union_area + outside)
            overlap = max(0.0, float(area[idx].sum()) - union_area)
        else:
            gap, outside, overlap = comm_area, 0.0, 0.0
        il = float(edge_sums["length"].get(cid, 0.0))
        ir = float(edge_sums["roads"].get(cid, 0.0))
        ist = float(edge_sums["streets"].get(cid, 0.0))
        forced_off, big_blocks, res_total = 0.0, list[tuple[float, float]](), total
        if il - ist > 0.5 and cgeom is not None and cid in off_of and len(kinds["streets"]):
            mine = b_cid == cid
            blocks, block_hh = _street_blocks(cgeom, kinds["streets"], b_reps[mine], b_hh[mine])
            res_total = float(hh[idx[~dedicated[idx]]].sum()) if k else 0.0
            must_cut = _band_forces_cut(block_hh, res_total, min_households, max_households)
            forced_off, big_blocks = _forced_off_street(off_of[cid], blocks, block_hh, must_cut)
        n_in = int(in_band[idx].sum()) if k else 0
        below = total < min_households
        feasible = _band_feasible(total, min_households, max_households)
        s_split = int(split_counts["split"].get(cid, 0))
        s_unjust = int(split_counts["unjustified"].get(cid, 0))
        un_n = int(unassigned_counts["n"].get(cid, 0))
        un_hh = float(unassigned_counts["hh"].get(cid, 0.0))
        kept, cmp_ = float(stab_kept[idx].sum()), float(stab_cmp[idx].sum())
        pers = persons[idx]
        text: list[str] = []
        if k == 0:
            text.append("no grids")
        elif below:
            if k == 1:
                text.append(
                    f"total {total:g} households is below min {min_households}: one grid (flagged)"
                )
            else:
                text.append(
                    f"total {total:g} households is below min {min_households} "
                    f"but split into {k} grids"
                )
        elif not feasible:
            text.append(
                f"no number of grids fits {total:g} households into "
                f"[{min_households}, {max_households}]: some grid must fall outside the band"
            )
        noise = (
            area_tolerance(float(shapely.length(cgeom))) if cgeom is not None else AREA_TOLERANCE
        )
        if k and gap > noise:
            text.append(f"gap of {gap:.1f} m² not covered by grids")
        if k and overlap > noise:
            text.append(f"grids overlap by {overlap:.1f} m²")
        if k and outside > noise:
            text.append(f"grids extend {outside:.1f} m² beyond the community")
        multi = [codes[i] for i in idx if n_parts[i] > 1]
        if multi:
            text.append(f"grid(s) in several parts: {', '.join(multi[:5])}")
        bad = [codes[i] for i in idx if not valid[i]]
        if bad:
            text.append(f"invalid grid geometry (repaired with make_valid): {', '.join(bad[:5])}")
        encl = [
            f"{codes[i]} inside {enclosed_by[i]}" for i in idx if is_enclave[i] and not dedicated[i]
        ]
        ringed = [
            f"{codes[i]} inside {enclosed_by[i]}" for i in idx if is_enclave[i] and dedicated[i]
        ]
        if ringed:
            text.append(f"dedicated grid(s) ringed by another grid: {', '.join(ringed[:5])}")
        if encl:
            text.append(f"enclave(s): {', '.join(encl[:5])}")
        if s_unjust:
            text.append(f"{s_unjust} building(s) split across grids without need")
        if un_n:
            text.append(f"{un_n} building(s) ({un_hh:g} households) in no grid")
        for bh, metres in [b for b in big_blocks if b[1] >= 50.0][:3]:
            why = (
                ""
                if bh > max_households
                else (
                    f", which the band cannot leave whole ({res_total:,.0f} households in grids of "
                    f"{min_households}-{max_households})"
                )
            )
            text.append(
                f"a block of {bh:,.0f} households with no internal street{why}: "
                f"{metres / 1000:.1f} km of cuts between buildings"
            )
        unforced = il - ist - forced_off
        if k and unforced > 0.5 and len(kinds["streets"]):
            text.append(
                f"{unforced / 1000:.2f} km of border off the streets where the blocks allowed "
                "streets"
            )
        caps = [f"{codes[i]} ({area[i] / 1e6:.2f} km²)" for i in idx if over_cap[i]]
        if caps and area_cap_m2 is not None:
            text.append(
                f"residential grid(s) above the area cap of {area_cap_m2 / 1e6:g} km²: "
                f"{', '.join(caps[:5])}"
            )
        art_names = [codes[i] for i in idx if art_bad[i] and not art_forced[i]]
        if art_names:
            text.append(
                f"arterial road inside grid(s) {', '.join(art_names[:5])} (> {ARTERIAL_LIMIT:g} m)"
            )
        text.extend(extra_notes.pop(cid, []))
        rows.append(
            {
                "community_id": cid,
                "name": None if cname is None or pd.isna(cname) else str(cname),
                "n_grids": k,
                "households": total,
                "persons": float(np.nansum(pers)) if k and not np.isnan(pers).all() else math.nan,
                "area_m2": comm_area,
                "below_min": bool(below),
                "band_feasible": bool(feasible),
                "n_in_band": n_in,
                "share_in_band": _share(n_in, k),
                "n_multipart": int((n_parts[idx] > 1).sum()) if k else 0,
                "n_enclaves": int((is_enclave & ~dedicated)[idx].sum()) if k else 0,
                "gap_area_m2": gap,
                "overlap_area_m2": overlap,
                "outside_area_m2": outside,
                "n_split_buildings": s_split,
                "n_unjustified_splits": s_unjust,
                "n_unassigned_buildings": un_n,
                "unassigned_households": un_hh,
                "mean_polsby_popper": float(np.nanmean(pp[idx])) if k else math.nan,
                "min_polsby_popper": float(np.nanmin(pp[idx])) if k else math.nan,
                "internal_boundary_m": il,
                "boundary_on_streets_m": ist,
                "share_boundary_on_streets": _share(ist, il),
                "boundary_on_roads_m": ir,
                "share_boundary_on_roads": _share(ir, il),
                "boundary_on_walls_m": float(edge_sums["walls"].get(cid, 0.0)),
                "boundary_on_water_m": float(edge_sums["water"].get(cid, 0.0)),
                "boundary_on_lines_m": float(edge_sums["lines"].get(cid, 0.0)),
                "share_boundary_on_lines": _share(float(edge_sums["lines"].get(cid, 0.0)), il),
                "off_street_m": max(il - ist, 0.0),
                "forced_off_street_m": forced_off,
                "share_boundary_on_streets_allowed": _share(ist, il - forced_off),
                "arterial_inside_m": float(art_inside[idx].sum()) if k else 0.0,
                "n_grids_arterial_inside": int((art_bad[idx] & ~art_forced[idx]).sum()) if k else 0,
                "n_grids_arterial_forced": int((art_bad[idx] & art_forced[idx]).sum()) if k else 0,
                "households_cv": _cv(hh[idx]),
                "stability": _share(kept, cmp_) if previous is not None else math.nan,
                "notes": "; ".join(text),
            }
        )
    if extra_notes:
        raise LayerError(
            f"notes refer to community id(s) {sorted(extra_notes)[:5]} that are not in "
            "layers.communities; key notes by community_id."
        )
    comm_df = pd.DataFrame(rows)
    if comm_df.empty:
        comm_df = pd.DataFrame(columns=["community_id", "notes"])

    # --- overall -----------------------------------------------------------------------
    total_split = int(per_building["split"].sum())
    total_unjust = int(per_building["unjustified"].sum())
    pers_known = not np.isnan(persons).all() if n else False
    overall: dict[str, Any] = {
        "n_communities": len(comm_ids),
        "n_grids": n,
        "households": float(hh.sum()),
        "persons": float(np.nansum(persons)) if pers_known else math.nan,
        "min_households": min_households,
        "max_households": max_households,
        "n_in_band": int(in_band.sum()),
        "share_in_band": _share(int(in_band.sum()), n),
        "n_dedicated": int(dedicated.sum()),
        "n_residential_in_band": int((in_band & ~dedicated).sum()),
        "share_residential_in_band": _share(
            int((in_band & ~dedicated).sum()), int((~dedicated).sum())
        ),
        "area_cap_m2": area_cap_m2,
        "n_over_area_cap": int(over_cap.sum()),
        "n_band_exempt": int(exempt.sum()),
        "n_communities_below_min": int(comm_df["below_min"].sum()) if len(rows) else 0,
        "n_multipart": int((n_parts > 1).sum()),
        "n_invalid": int((~valid).sum()),
        "n_enclaves": int((is_enclave & ~dedicated).sum()),
        "n_dedicated_enclosed": int((is_enclave & dedicated).sum()),
        "gap_area_m2": float(comm_df["gap_area_m2"].sum()) if len(rows) else 0.0,
        "overlap_area_m2": float(comm_df["overlap_area_m2"].sum()) if len(rows) else 0.0,
        "outside_area_m2": float(comm_df["outside_area_m2"].sum()) if len(rows) else 0.0,
        "n_split_buildings": total_split,
        "n_unjustified_splits": total_unjust,
        "n_unassigned_buildings": int(len(unassigned)),
        "n_unknown_buildings": int(
            len(set(brows["building_id"]) - set(layers.buildings["building_id"].astype(str)))
        ),
        "unassigned_households": float(unassigned["hh"].sum()),
        "mean_polsby_popper": _nanmean(pp),
        "min_polsby_popper": float(np.nanmin(pp)) if n and not np.isnan(pp).all() else math.nan,
        # a dedicated grid's outline is the land between main roads it stands on, not a
        # shape the partitioner chose: the two kinds' compactness apart
        "mean_polsby_popper_residential": _nanmean(pp[~dedicated]),
        "mean_polsby_popper_dedicated": _nanmean(pp[dedicated]),
        "internal_boundary_m": float(elen.sum()),
        "boundary_on_streets_m": float(on["streets"].sum()),
        "share_boundary_on_streets": _share(float(on["streets"].sum()), float(elen.sum())),
        "boundary_on_roads_m": float(eroad.sum()),
        "share_boundary_on_roads": _share(float(eroad.sum()), float(elen.sum())),
        "boundary_on_walls_m": float(on["walls"].sum()),
        "boundary_on_water_m": float(on["water"].sum()),
        "boundary_on_lines_m": float(on["lines"].sum()),
        "share_boundary_on_lines": _share(float(on["lines"].sum()), float(elen.sum())),
        "forced_off_street_m": float(comm_df["forced_off_street_m"].sum()) if len(rows) else 0.0,
        "share_boundary_on_streets_allowed": _share(
            float(on["streets"].sum()),
            float(elen.sum()) - (float(comm_df["forced_off_street_m"].sum()) if len(rows) else 0.0),
        ),
        "arterial_inside_m": float(art_inside.sum()),
        "arterial_along_edge_m": float(art_edge.sum()),
        "n_grids_arterial_along_edge": int((art_edge > ARTERIAL_LIMIT).sum()),
        "n_grids_arterial_inside": int((art_bad & ~art_forced).sum()),
        "n_grids_arterial_forced": int((art_bad & art_forced).sum()),
        "arterial_limit_m": ARTERIAL_LIMIT,
        "road_tolerance_m": float(road_tolerance),
        "households_cv": _cv(hh),
        "stability": _share(stab_kept.sum(), stab_cmp.sum()) if previous is not None else math.nan,
        "stability_basis": basis,
    }
    if load is not None:
        attrs = {str(k): v for k, v in load.attrs.items()}
        overall.update(_load_figures(grid_df["load"].to_numpy(float)[~dedicated], attrs))
    overall = {k: _pyval(v) for k, v in overall.items()}
    return QualityReport(grids=grid_df, communities=comm_df, overall=overall)


def _max_median(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    if len(values) == 0 or float(np.median(values)) <= 0:
        return math.nan
    return float(values.max() / np.median(values))


def _load_figures(after: np.ndarray, attrs: Mapping[str, Any]) -> dict[str, Any]:
    before = np.asarray(attrs.get("before", []), dtype=float)
    weights = attrs.get("weights") or {}
    return {
        "load_weights": ",".join(f"{k}={float(v):g}" for k, v in weights.items()),
        "load_cv": _cv(after),
        "load_max_median": _max_median(after),
        "load_cv_before": _cv(before) if len(before) else math.nan,
        "load_max_median_before": _max_median(before) if len(before) else math.nan,
        "unlocated_cases": int(attrs.get("unlocated_cases", 0)),
    }


def add_notes(report: QualityReport, notes: Mapping[str, Iterable[str]]) -> QualityReport:
    """Return a copy of ``report`` with notes appended to some communities.

    Parameters
    ----------
    report : QualityReport
        A report from :func:`quality_report`.
    notes : mapping
        Community id → notes (strings), appended after the existing notes with
        ``"; "``.

    Returns
    -------
    QualityReport
        A new report; ``report`` is unchanged.

    Raises
    ------
    LayerError
        A community id that is not in the report.

    Examples
    --------
    >>> import pandas as pd
    >>> from gridmap.partition.plan import QualityReport
    >>> rep = QualityReport(pd.DataFrame(), pd.DataFrame({"community_id": ["c1"], "notes": [""]}))
    >>> add_notes(rep, {"c1": ["locked grid kept"]}).communities["notes"].tolist()
    ['locked grid kept']
    """
    comms = report.communities.copy()
    if "notes" not in comms.columns:
        comms["notes"] = ""
    ids = comms["community_id"].astype(str)
    unknown = sorted(set(map(str, notes)) - set(ids))
    if unknown:
        raise LayerError(
            f"notes refer to community id(s) {unknown[:5]} that are not in the report; "
            "key notes by community_id."
        )
    values = comms["notes"].astype(object).map(lambda v: "" if v is None or pd.isna(v) else v)
    merged = []
    for cid, current in zip(ids, values, strict=True):
        extra = [str(t) for t in notes.get(cid, [])]
        parts = ([current] if current else []) + extra
        merged.append("; ".join(parts))
    comms["notes"] = pd.Series(merged, index=comms.index, dtype=object)
    return QualityReport(grids=report.grids, communities=comms, overall=dict(report.overall))


def _fmt_share(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * float(value):.1f}%"


def _fmt_num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.{digits}f}"


def summary_text(report: QualityReport) -> str:
    """Summarise a report in a few lines of English with the Chinese terms, for the CLI.

    Parameters
    ----------
    report : QualityReport
        A report from :func:`quality_report`.

    Returns
    -------
    str
        One figure per line; communities with notes are listed at the end.

    Examples
    --------
    >>> from gridmap.partition.plan import QualityReport
    >>> import pandas as pd
    >>> rep = QualityReport(pd.DataFrame(), pd.DataFrame(),
    ...                     {"n_grids": 2, "households": 550.0, "share_in_band": 1.0})
    >>> print(summary_text(rep).splitlines()[0])
    Grids 网格: 2 in 0 communities 社区, 550 households 户
    """
    o = report.overall
    lines = [
        f"Grids 网格: {o.get('n_grids', 0)} in {o.get('n_communities', 0)} communities 社区, "
        f"{_fmt_num(o.get('households'), 0)} households 户"
        + (
            f", {_fmt_num(o.get('persons'), 0)} persons 人"
            if o.get("persons") is not None and not _isnan(o.get("persons"))
            else ""
        ),
        f"Households in band 户数达标 [{o.get('min_households', '?')}, "
        f"{o.get('max_households', '?')}]: {_fmt_share(o.get('share_in_band'))} "
        f"({o.get('n_band_exempt', 0)} grid(s) exempt: small communities and "
        f"{o.get('n_dedicated', 0)} dedicated grid(s) 专属网格); residential grids "
        f"{_fmt_share(o.get('share_residential_in_band'))}",
        f"Grid area 面积: {o.get('n_over_area_cap', 0)} residential grid(s) above the cap of "
        f"{_fmt_num((o.get('area_cap_m2') or math.nan) / 1e6, 2)} km²",
        f"Contiguity 连片: {o.get('n_multipart', 0)} grid(s) in several parts, "
        f"{o.get('n_enclaves', 0)} enclave(s) 飞地",
        f"Seamless coverage 无缝覆盖: gap 空隙 {_fmt_num(o.get('gap_area_m2'), 1)} m², "
        f"overlap 重叠 {_fmt_num(o.get('overlap_area_m2'), 1)} m²",
        f"Building integrity 楼栋完整: {o.get('n_split_buildings', 0)} split, "
        f"{o.get('n_unjustified_splits', 0)} without need; "
        f"{o.get('n_unassigned_buildings', 0)} building(s) in no grid",
        f"Compactness 紧凑度 (Polsby–Popper): mean {_fmt_num(o.get('mean_polsby_popper'))}, "
        f"min {_fmt_num(o.get('min_polsby_popper'))}"
        + (
            f"; residential grids {_fmt_num(o.get('mean_polsby_popper_residential'))}, "
            f"dedicated grids {_fmt_num(o.get('mean_polsby_popper_dedicated'))} "
            "(the land between main roads they stand on)"
            if o.get("n_dedicated")
            else ""
        ),
        f"Boundary on streets 沿街边界: {_fmt_share(o.get('share_boundary_on_streets'))} of "
        f"{_fmt_num(o.get('internal_boundary_m'), 0)} m internal boundary on vehicle streets "
        f"(within {_fmt_num(o.get('road_tolerance_m'), 0)} m), "
        f"{_fmt_share(o.get('share_boundary_on_streets_allowed'))} where blocks allow "
        f"({_fmt_num(o.get('forced_off_street_m'), 0)} m cut through blocks without streets)",
        f"Boundary on roads 沿路边界: {_fmt_share(o.get('share_boundary_on_roads'))} "
        f"(any road, footways included); walls/fences 围墙 "
        f"{_fmt_num(o.get('boundary_on_walls_m'), 0)} m, water 水系 "
        f"{_fmt_num(o.get('boundary_on_water_m'), 0)} m; on any line "
        f"{_fmt_share(o.get('share_boundary_on_lines'))}",
        f"Arterials 干道: {o.get('n_grids_arterial_inside', 0)} grid(s) with > "
        f"{_fmt_num(o.get('arterial_limit_m', ARTERIAL_LIMIT), 0)} m of arterial road inside, "
        f"{o.get('n_grids_arterial_forced', 0)} forced (named in the notes); "
        f"{_fmt_num(o.get('arterial_inside_m'), 0)} m inside grids in all; "
        f"{_fmt_num(o.get('arterial_along_edge_m'), 0)} m along borders (within "
        f"{ARTERIAL_EDGE_OFFSET:g} m, or parallel within {ARTERIAL_DUAL_MAX:g} m: the far "
        f"carriageway) ({o.get('n_grids_arterial_along_edge', 0)} grid(s) > "
        f"{_fmt_num(o.get('arterial_limit_m', ARTERIAL_LIMIT), 0)} m)",
        f"Balance 均衡 (CV of households): {_fmt_num(o.get('households_cv'))}",
    ]
    if o.get("load_weights") is not None:
        lines.append(
            f"Workload 工作量 ({o.get('load_weights')}): CV {_fmt_num(o.get('load_cv_before'))} "
            f"-> {_fmt_num(o.get('load_cv'))}, max/median "
            f"{_fmt_num(o.get('load_max_median_before'), 2)} -> "
            f"{_fmt_num(o.get('load_max_median'), 2)} (before -> after balancing on it)"
            + (
                f"; {o.get('unlocated_cases')} case(s) near no building, not counted"
                if o.get("unlocated_cases")
                else ""
            )
        )
    if o.get("stability") is not None and not _isnan(o.get("stability")):
        lines.append(
            f"Stability 稳定性: {_fmt_share(o.get('stability'))} of households keep their grid "
            f"(by {o.get('stability_basis')})"
        )
    comms = report.communities
    if len(comms) and "notes" in comms.columns:
        noted = comms[comms["notes"].astype(object).map(lambda v: bool(v) and not pd.isna(v))]
        for cid, text in zip(noted["community_id"], noted["notes"], strict=True):
            lines.append(f"  {cid}: {text}")
    return "\n".join(lines)


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
