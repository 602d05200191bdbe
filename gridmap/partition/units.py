"""Units of a community: blocks, building cells and their adjacency graph.

The partitioner never cuts through a building and prefers to cut along
streets. This module prepares the pieces it works with, for one community:

1. **Blocks.** The community polygon is cut by road centrelines, barrier lines
   (walls, water) and compound (小区) outlines: ``polygonize`` of the noded
   linework, keeping the faces inside the community (holes such as lakes stay
   holes). A main road that stops short of a cross street (at most
   :data:`ARTERIAL_GAP_M`) or of the community edge (at most
   :data:`ARTERIAL_EDGE_GAP_M`, through no building) is carried on to it, so
   that it cuts the land (:func:`_arterial_connectors`).
2. **Cells.** Inside a block, every building (or group of overlapping buildings)
   gets the land nearest to its outline: points sampled along the outlines,
   ``shapely.voronoi_polygons`` clipped to the block and dissolved per building,
   as in momepy's morphological tessellation. Land in a walled face without
   buildings goes to the nearest building of its block; a block without
   buildings is split among the buildings of the blocks around it across
   streets (empty cells); across a main road it stays whole, so a median strip
   is not split down the middle. A main road that still ends inside a block
   cuts its cells (carried on to the cell's edge): no cell straddles it.
   ``coverage_clean`` makes shared edges identical, so cells tile the
   community exactly and adjacency comes from matching edges; the cuts
   between the buildings of a block are then drawn smooth
   (``coverage_simplify``, the streets round the block untouched:
   :func:`_smooth_cuts`).
3. **Split towers.** A building holding more households than the maximum is
   sliced, geometrically, into parts proportional to their households (by
   unit/entrance when the household layer has it, else by floor ranges).
4. **Adjacency.** Cells sharing a boundary are neighbours; each edge carries
   the shared length and a cutting cost: cheap along a road or barrier, medium
   along a compound outline, full price between two buildings of one block.
5. **Units.** Cells of a compound whose households fit under the maximum are
   merged into one unit, so a compound stays whole — on each side of a main
   road apart (an outline drawn across one, as OSM landuse often is, makes
   one unit per side).

Everything is vectorised with shapely 2 arrays, ``STRtree`` and
``scipy.sparse``; the only Python loops run over blocks and cell groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from gridmap.partition.cells import (
    _MIN_EDGE,
    _ROAD_TOLERANCE,
    _cells_of_block,
    _clean_cells,
    _empty_block_cells,
    _near_guides,
    _polys,
    _seed_points,
    _shared_edges_exact,
)
from gridmap.partition.cells import (
    _dissolve as _dissolve,
)
from gridmap.partition.pieces import on_arterial
from gridmap.partition.precision import SNAP_GRID_M
from gridmap.partition.roads import ARTERIAL, STREET, road_ranks
from gridmap.partition.towers import _n_parts, _slice_cell, _tower_parts

__all__ = ["EDGE_COST", "Units", "build_units"]

#: Cost per metre of cutting along each kind of shared boundary: along an arterial,
#: a (vehicle) street, a path (footway, cycleway …), another line of the roads
#: layer (rail), a barrier (wall, water); across land, between compounds or faces
#: (``compound``) and between two buildings of one face (``block``).
EDGE_COST: dict[str, float] = {
    "arterial": 0.05,
    "road": 0.15,
    "path": 0.4,
    "other": 0.3,
    "barrier": 0.2,
    "compound": 0.5,
    "block": 1.0,
}
_RANK_COST = np.array(
    [EDGE_COST["arterial"], EDGE_COST["road"], EDGE_COST["path"], EDGE_COST["other"]]
)

# Ends of cut lines this close (metres) to another line are moved onto it before noding:
# the input is snapped to a ~1 mm grid (gridmap.partition.precision), so a street that
# ended exactly on another may now stop a grid step short of it or cross it (_snap_ends)
_NODE_SNAP = 5e-3
#: A main road ending this close (metres, straight ahead) to another line, or half as
#: close to one off its axis, is carried on to it (:func:`_arterial_connectors`).
ARTERIAL_GAP_M = 30.0
#: … and one heading out of the area, straight to the community edge this close (metres),
#: is carried on to the edge: the extract or the community ends before the road does.
ARTERIAL_EDGE_GAP_M = 250.0
# An empty block narrower than this on average (2 × area / perimeter, metres) is a strip
# along the roads (a median, a verge), not a field or a park
_STRIP_WIDTH_M = 40.0


@dataclass
class Units:
    """Cells and units of one community (or of its unlocked part).

    Attributes
    ----------
    cells : numpy.ndarray
        Polygon per cell; together they tile the community.
    cell_unit : numpy.ndarray
        Unit index of every cell.
    members : pandas.DataFrame
        One row per building (or building part): ``building_id``, ``part``
        (None or a label such as ``"units 1-2"``), ``households``, ``cell``.
    household_parts : dict
        ``household_id`` → row index in ``members`` for households of split
        buildings.
    households, area, perimeter, exterior, cx, cy : numpy.ndarray
        Per unit: households, area (m²), perimeter (m), boundary length not
        shared with another unit (community edge, holes, locked grids), and
        area-weighted centroid.
    outer : numpy.ndarray or None
        Per unit, the part of ``exterior`` on the outer edge of the area
        (``exterior`` minus the length along holes such as lakes). A grid that
        touches the outer edge cannot be enclosed by another; one touching only
        a lake can. None means "same as ``exterior``".
    edges : numpy.ndarray
        ``(m, 2)`` int array of unit pairs ``i < j`` sharing a boundary.
    edge_length, edge_cost, edge_road : numpy.ndarray
        Shared length (m), cutting cost (length × :data:`EDGE_COST`) and the
        length lying on a road or barrier.
    edge_arterial : numpy.ndarray or None
        Shared length lying on an arterial road (None: unknown, no arterials).
    notes : list of str
        What was done that the report should say.
    compound : numpy.ndarray or None
        Compound id per unit (None outside compounds).
    block : numpy.ndarray or None
        Road block (face of the road network) per unit.
    """

    cells: np.ndarray
    cell_unit: np.ndarray
    members: pd.DataFrame
    household_parts: dict[str, int]
    households: np.ndarray
    area: np.ndarray
    perimeter: np.ndarray
    exterior: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    edges: np.ndarray
    edge_length: np.ndarray
    edge_cost: np.ndarray
    edge_road: np.ndarray
    edge_arterial: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    compound: np.ndarray | None = None
    block: np.ndarray | None = None
    outer: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.households)


# --------------------------------------------------------------------------- blocks


def _lines_of(geoms: np.ndarray) -> np.ndarray:
    """Linework of lines and polygon outlines (polygons give their boundary).

    Examples
    --------
    >>> from shapely import GeometryCollection, LineString, Point, box
    >>> clip = GeometryCollection([LineString([(0, 5), (10, 5)]), Point(3, 0)])
    >>> [g.wkt for g in _lines_of(np.array([clip, box(0, 0, 1, 1), Point(2, 2)]))]
    ['MULTILINESTRING ((0 5, 10 5))', 'LINESTRING (1 0, 1 1, 0 1, 0 0, 1 0)', 'POINT (2 2)']
    """
    if len(geoms) == 0:
        return np.empty(0, dtype=object)
    geoms = np.asarray(geoms, dtype=object)
    kinds = shapely.get_type_id(geoms)
    poly = (kinds == 3) | (kinds == 6)
    out = geoms.copy()
    if poly.any():
        out[poly] = shapely.boundary(geoms[poly])
    coll = np.flatnonzero(kinds == 7)
    if len(coll):
        # a collection keeps its lines and polygon outlines: a road running into the area
        # that also touches its edge at a point elsewhere is clipped to a line and a point,
        # and the road must still cut the land
        parts, owner = shapely.get_parts(geoms[coll], return_index=True)
        pk = shapely.get_type_id(parts)
        pp = (pk == 3) | (pk == 6)
        parts[pp] = shapely.boundary(parts[pp])
        lines, at = shapely.get_parts(parts, return_index=True)
        ok = np.isin(shapely.get_type_id(lines), [1, 2])  # line strings and rings
        lines, owner = lines[ok], owner[at[ok]]
        kept = np.full(len(coll), None, dtype=object)
        if len(lines):
            has, rank = np.unique(owner, return_inverse=True)
            kept[has] = shapely.multilinestrings(lines, indices=rank)
        out[coll] = kept
    return out[~shapely.is_empty(out) & ~shapely.is_missing(out)]


def _on_grid(geom: Any) -> bool:
    """Whether every coordinate of ``geom`` is a multiple of :data:`SNAP_GRID_M`."""
    xy = shapely.get_coordinates(geom) / SNAP_GRID_M
    return bool(np.array_equal(xy, np.round(xy)))


def _snap_ends(lines: np.ndarray, targets: np.ndarray, distance: float) -> np.ndarray:
    """Move every open line end lying within ``distance`` of another line onto that line.

    A street that ends on another (a T junction) or on the community edge meets
    it only if its end point lies exactly on that line, a test that a millimetre
    of rounding decides either way: it may stop a hair short (no junction, the
    block is not closed) or cross it. An end within ``distance`` of another line
    (of ``lines`` or ``targets``) but not on it moves to the nearest point of
    that line, which the snap-rounding noder of :func:`_blocks` then nodes.

    Examples
    --------
    >>> from shapely import LineString
    >>> ls = np.array([LineString([(0, 0), (10, 0)]), LineString([(5, 0.003), (5, 8)])])
    >>> [g.wkt for g in _snap_ends(ls, np.empty(0, dtype=object), 0.005)]
    ['LINESTRING (0 0, 10 0)', 'LINESTRING (5 0, 5 8)']
    """
    lines = np.asarray(lines, dtype=object)
    if len(lines) == 0:
        return lines
    xy, idx = shapely.get_coordinates(lines, return_index=True)
    n = np.bincount(idx, minlength=len(lines))
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    end = start + n - 1
    ok = (n >= 2) & (shapely.get_type_id(lines) == 1)
    ok[ok] &= ~(xy[start[ok]] == xy[end[ok]]).all(axis=1)  # closed: no ends
    if not ok.any():
        return lines
    sel = np.flatnonzero(ok)
    at = np.concatenate([start[sel], end[sel]])
    own = np.concatenate([sel, sel])
    pool = np.concatenate([lines, np.asarray(targets, dtype=object)])
    pts = shapely.points(xy[at])
    pi, li = shapely.STRtree(pool).query(pts, predicate="dwithin", distance=distance)
    keep = li != own[pi]
    pi, li = pi[keep], li[keep]
    if len(pi) == 0:
        return lines
    d = shapely.distance(pts[pi], pool[li])
    # per end, the nearest other line (ties: the first); ends already on a line stay
    order = np.lexsort((li, d, pi))
    pi, li, d = pi[order], li[order], d[order]
    first = np.r_[True, pi[1:] != pi[:-1]]
    pi, li, d = pi[first], li[first], d[first]
    move = d > 0
    pi, li = pi[move], li[move]
    if len(pi) == 0:
        return lines
    near = shapely.line_interpolate_point(pool[li], shapely.line_locate_point(pool[li], pts[pi]))
    xy = xy.copy()
    xy[at[pi]] = shapely.get_coordinates(near)
    out = lines.copy()
    changed = np.unique(own[pi])
    m = np.isin(idx, changed)
    out[changed] = shapely.linestrings(xy[m], indices=np.searchsorted(changed, idx[m]))
    return out


def _line_ends(parts: np.ndarray, back: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both ends of every LineString, the unit vector pointing out of the line at each, owner.

    The direction is taken over the last ``back`` metres (or the whole line when
    shorter), so a stub of a last segment does not turn the ray.
    """
    n = len(parts)
    length = shapely.length(parts)
    ends = np.concatenate(
        [shapely.get_point(parts, 0), shapely.get_point(parts, -1)]
    )  # starts, then ends
    inner = np.concatenate(
        [
            shapely.line_interpolate_point(parts, np.minimum(back, length)),
            shapely.line_interpolate_point(parts, np.maximum(length - back, 0.0)),
        ]
    )
    vec = shapely.get_coordinates(ends) - shapely.get_coordinates(inner)
    norm = np.hypot(vec[:, 0], vec[:, 1])
    vec = vec / np.where(norm > 0, norm, 1.0)[:, None]
    return ends, vec, np.concatenate([np.arange(n), np.arange(n)])


def _arterial_connectors(
    lines: np.ndarray,
    rank: np.ndarray,
    others: np.ndarray,
    community: Any,
    gap: float = ARTERIAL_GAP_M,
    *,
    edge_gap: float = ARTERIAL_EDGE_GAP_M,
    obstacles: np.ndarray | None = None,
) -> np.ndarray:
    """Segments closing the gap from every dangling arterial end to the line it stops short of.

    An arterial must cut the land it runs through, but in the noded linework a
    main road only bounds a block when both its ends meet another line: one
    that stops a few metres short of the cross street (vector-tile extracts
    simplify away the junction node) or of the community edge (the extract is
    clipped) leaves one block on both sides of it. Every end of an arterial
    inside ``community`` that touches no other line is carried on, straight
    ahead, to the first road, barrier or community edge within ``gap`` metres;
    failing that, to the nearest one within ``gap / 2``; failing that, when the
    first line straight ahead is the community edge, within ``edge_gap`` metres
    and the way there crosses none of ``obstacles`` (buildings), to the edge:
    the road runs on out of the area (the extract ends before the road does).
    Other ends (a road that really ends, at a tunnel portal say) stay as they
    are.

    Returns the connecting segments (to be cut along as arterials).

    Examples
    --------
    >>> from shapely import LineString, box
    >>> roads = np.array([LineString([(50, 0), (50, 92)]), LineString([(0, 50), (48, 50)])])
    >>> segs = _arterial_connectors(roads, np.array([0, 0]), np.empty(0), box(0, 0, 100, 100))
    >>> [s.wkt for s in segs]
    ['LINESTRING (50 92, 50 100)', 'LINESTRING (48 50, 50 50)']
    """
    empty = np.empty(0, dtype=object)
    art = np.asarray(lines, dtype=object)[np.asarray(rank) == ARTERIAL]
    if len(art) == 0:
        return empty
    parts = shapely.get_parts(art)
    parts = parts[(shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)]
    if len(parts) == 0:
        return empty
    rest = np.asarray(lines, dtype=object)[np.asarray(rank) != ARTERIAL]
    pool = np.concatenate(
        [
            parts,
            shapely.get_parts(rest) if len(rest) else empty,
            shapely.get_parts(np.asarray(others, dtype=object)) if len(others) else empty,
            shapely.get_parts(shapely.boundary(community)),
        ]
    )
    n_edge_from = len(pool) - int(shapely.get_num_geometries(shapely.boundary(community)))
    tree = shapely.STRtree(pool)
    ends, vec, own = _line_ends(parts, back=10.0)
    # only ends inside the community that touch no other line
    ends_in = shapely.contains_properly(community, ends)
    ei, pj = tree.query(ends, predicate="dwithin", distance=2 * _NODE_SNAP)
    touching = np.zeros(len(ends), dtype=bool)
    touching[ei[pj != own[ei]]] = True
    loose = np.flatnonzero(ends_in & ~touching & (np.hypot(vec[:, 0], vec[:, 1]) > 0))
    if len(loose) == 0:
        return empty
    xy = shapely.get_coordinates(ends[loose])
    reach = max(gap, edge_gap)
    rays = shapely.linestrings(
        np.stack([xy, xy + reach * vec[loose]], axis=1).reshape(-1, 2),
        indices=np.repeat(np.arange(len(loose)), 2),
    )
    target = np.full(len(loose), None, dtype=object)
    has = np.zeros(len(loose), dtype=bool)
    to_edge = np.zeros(len(loose), dtype=bool)
    ri, pj = tree.query(rays, predicate="intersects")
    keep = pj != own[loose[ri]]
    ri, pj = ri[keep], pj[keep]
    if len(ri):
        hits = shapely.intersection(rays[ri], pool[pj])
        d = shapely.distance(ends[loose[ri]], hits)
        order = np.lexsort((pj, d, ri))
        ri, pj, hits, d = ri[order], pj[order], hits[order], d[order]
        first = np.r_[True, ri[1:] != ri[:-1]]
        ri, pj, hits, d = ri[first], pj[first], hits[first], d[first]
        near = d <= gap
        target[ri[near]] = hits[near]
        has[ri[near]] = True
        edge = ~near & (pj >= n_edge_from) & (d <= edge_gap)
        target[ri[edge]] = hits[edge]
        to_edge[ri[edge]] = True
    miss = np.flatnonzero(~has)
    if len(miss):
        mi, pj = tree.query(ends[loose[miss]], predicate="dwithin", distance=gap / 2)
        keep = pj != own[loose[miss[mi]]]
        mi, pj = mi[keep], pj[keep]
        if len(mi):
            d = shapely.distance(ends[loose[miss[mi]]], pool[pj])
            order = np.lexsort((pj, d, mi))
            mi, pj = mi[order], pj[order]
            first = np.r_[True, mi[1:] != mi[:-1]]
            target[miss[mi[first]]] = pool[pj[first]]
            has[miss[mi[first]]] = True
    # out to the edge, unless the way there runs through a building
    edge_only = np.flatnonzero(to_edge & ~has)
    if len(edge_only):
        segs = shapely.shortest_line(ends[loose[edge_only]], np.asarray(list(target[edge_only])))
        clear = np.ones(len(edge_only), dtype=bool)
        if obstacles is not None and len(obstacles):
            si, _ = shapely.STRtree(np.asarray(obstacles, dtype=object)).query(
                segs, predicate="intersects"
            )
            clear[si] = False
        has[edge_only[clear]] = True
    found = np.flatnonzero(has)
    if len(found) == 0:
        return empty
    segs = shapely.shortest_line(ends[loose[found]], np.asarray(list(target[found])))
    return segs[shapely.length(segs) > 0]


def _blocks(community: Any, cut_lines: np.ndarray) -> np.ndarray:
    """Cut the community by lines into faces (blocks) that tile it."""
    parts = shapely.get_parts(community)
    if len(cut_lines) == 0:
        return parts
    inside = shapely.intersection(cut_lines, community)
    inside = inside[~shapely.is_empty(inside)]
    inside = _lines_of(inside)
    keep = np.isin(shapely.get_type_id(inside), [1, 2, 5])
    inside = inside[keep]
    if len(inside) == 0:
        return parts
    edge = shapely.boundary(community)
    inside = _snap_ends(shapely.get_parts(inside), shapely.get_parts(edge), _NODE_SNAP)
    linework = np.concatenate([inside, [edge]])
    # snap rounding on the input grid (when the community is on it): a line passing
    # within half a grid step of a vertex goes through it, so a street that runs along the
    # community edge through its (rounded) corners leaves no sliver between the two
    on_grid = _on_grid(community)
    noded = shapely.union_all(linework, grid_size=SNAP_GRID_M if on_grid else None)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(faces) == 0:
        return parts
    reps = shapely.point_on_surface(faces)
    faces = faces[shapely.contains(community, reps) & (shapely.area(faces) > 0)]
    # guard: faces must tile the community; otherwise fall back to its parts
    whole = shapely.area(community)
    if abs(shapely.area(faces).sum() - whole) > 0.5 + 1e-7 * whole:
        return parts
    return _merge_slivers(faces)


def _merge_slivers(faces: np.ndarray, width: float = 0.5) -> np.ndarray:
    """Merge thin faces (noding artefacts, e.g. a road along the boundary) into a neighbour."""
    faces = faces.copy()
    thin = 2 * shapely.area(faces) / np.maximum(shapely.length(faces), 1e-9) < width
    if not thin.any() or thin.all():
        return faces
    alive = np.ones(len(faces), dtype=bool)
    tree = shapely.STRtree(faces)
    for i in np.flatnonzero(thin):
        cand = [j for j in tree.query(faces[i], predicate="intersects") if j != i and alive[j]]
        cand = [j for j in cand if not thin[j]] or cand
        if not cand:
            continue
        shared = shapely.length(
            shapely.intersection(shapely.boundary(faces[i]), shapely.boundary(faces[cand]))
        )
        k = int(np.argmax(shared))
        if shared[k] <= 0:
            continue
        j = cand[k]
        merged = shapely.union(faces[j], faces[i])
        if shapely.get_type_id(merged) != 3:
            continue
        faces[j] = merged
        alive[i] = False
    return faces[alive]


# --------------------------------------------------------------------------- cells


def _shared_edges_overlay(
    cells: np.ndarray, guides: np.ndarray, gcost: np.ndarray, gart: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Shared boundary by boundary intersection (for coverages that could not be cleaned)."""
    tol = 0.05  # metres: edges of an imperfect coverage that run this close count as shared
    ti, tj = shapely.STRtree(cells).query(cells, predicate="dwithin", distance=tol)
    sel = ti < tj
    ti, tj = ti[sel], tj[sel]
    bnd = shapely.boundary(cells)
    near = shapely.buffer(bnd, tol, quad_segs=1)
    shared = shapely.intersection(bnd[ti], near[tj])
    length = shapely.length(shared)
    ok = length > _MIN_EDGE
    ti, tj, shared, length = ti[ok], tj[ok], shared[ok], length[ok]
    on = np.zeros(len(ti))
    won = np.zeros(len(ti))
    aon = np.zeros(len(ti))
    fr = (0.1, 0.3, 0.5, 0.7, 0.9)
    for f in fr:
        pts = shapely.line_interpolate_point(shared, f, normalized=True)
        hit, cost, art = _near_guides(pts, guides, gcost, gart)
        on += hit
        won += cost
        aon += art
    k = len(fr)
    return ti, tj, length, length * on / k, length * won / k, length * aon / k


def _split_cells_along(
    cells: list[tuple[Any, int]],
    block: Any,
    lines: np.ndarray,
    seeds: np.ndarray,
    seed_group: np.ndarray,
) -> list[tuple[Any, int]]:
    """Cut the cells of a block along the lines running inside it (not on its edge).

    A piece keeps the cell's group when it holds most of the group's seed
    points (its building); the other pieces become empty cells.

    Examples
    --------
    >>> from shapely import LineString, box
    >>> cells = [(box(0, 0, 100, 100), 0)]
    >>> out = _split_cells_along(cells, box(0, 0, 100, 100),
    ...     np.array([LineString([(50, 0), (50, 100)])]), np.array([[80.0, 50.0]]),
    ...     np.array([0]))
    >>> sorted((round(g.bounds[0]), grp) for g, grp in out)
    [(0, -1), (50, 0)]
    """
    inner = shapely.intersection(shapely.union_all(lines), block)
    parts = shapely.get_parts(inner)
    parts = parts[shapely.get_type_id(parts) == 1]
    if len(parts) == 0:
        return cells
    parts = shapely.get_parts(shapely.line_merge(shapely.union_all(parts)))
    rim = shapely.buffer(shapely.boundary(block), 0.01, quad_segs=2)
    off = shapely.length(shapely.difference(parts, rim)) > 1.0  # not along the block's edge
    if not off.any():
        return cells
    inner = shapely.union_all(parts[off])
    shapely.prepare(inner)
    out: list[tuple[Any, int]] = []
    pts = shapely.points(seeds) if len(seeds) else np.empty(0, dtype=object)
    for geom, g in cells:
        if not shapely.intersects(inner, geom):
            out.append((geom, g))
            continue
        cut = shapely.intersection(inner, geom)
        parts = _faces_cut(geom, cut)
        if len(parts) < 2:  # the road ends in the cell: carried on to the cell's edge
            parts = _faces_cut(geom, shapely.union(cut, _to_edge(cut, geom)))
        if len(parts) < 2:
            out.append((geom, g))
            continue
        owner = -1
        if g >= 0 and len(pts):
            mine = pts[seed_group == g]
            counts = [int(shapely.contains(p, mine).sum()) for p in parts]
            owner = int(np.argmax(counts))
        out.extend((p, g if i == owner else -1) for i, p in enumerate(parts))
    return out


def _faces_cut(cell: Any, lines: Any) -> np.ndarray:
    """Faces of ``cell`` cut by ``lines`` (just the cell when they do not cut it through)."""
    noded = shapely.union_all([shapely.boundary(cell), lines])
    parts = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    parts = parts[shapely.area(parts) > 0]
    if abs(float(shapely.area(parts).sum()) - cell.area) > 1e-6 * max(cell.area, 1.0):
        return np.array([cell], dtype=object)
    return parts


def _to_edge(lines: Any, cell: Any) -> Any:
    """Segments carrying every end of ``lines`` inside ``cell`` straight on to its edge."""
    parts = shapely.get_parts(lines)
    parts = parts[(shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)]
    if len(parts) == 0:
        return shapely.GeometryCollection()
    edge = shapely.boundary(cell)
    ends, vec, _ = _line_ends(parts, back=10.0)
    free = ~shapely.dwithin(ends, edge, 0.01)
    if not free.any():
        return shapely.GeometryCollection()
    x0, y0, x1, y1 = shapely.bounds(cell)
    reach = float(np.hypot(x1 - x0, y1 - y0))
    xy = shapely.get_coordinates(ends[free])
    rays = shapely.linestrings(
        np.stack([xy, xy + reach * vec[free]], axis=1).reshape(-1, 2),
        indices=np.repeat(np.arange(len(xy)), 2),
    )
    hits = shapely.intersection(rays, edge)
    ok = ~shapely.is_empty(hits)
    if not ok.any():
        return shapely.GeometryCollection()
    return shapely.union_all(shapely.shortest_line(ends[free][ok], hits[ok]))


def _across_streets(
    block: Any, others: np.ndarray, arterials: np.ndarray, tree: shapely.STRtree
) -> np.ndarray:
    """Whether each of ``others`` shares more than a metre of boundary with ``block`` off arterials.

    Examples
    --------
    >>> from shapely import LineString, box
    >>> art = np.array([LineString([(10, -5), (10, 25)])])
    >>> ok = _across_streets(box(10, 0, 20, 20), np.array([box(0, 0, 10, 20),
    ...     box(20, 0, 30, 20)]), art, shapely.STRtree(art))
    >>> ok.tolist()  # west across the main road, east across a street
    [False, True]
    """
    shared = shapely.intersection(shapely.boundary(block), shapely.boundary(others))
    near = tree.query(block, predicate="dwithin", distance=1.0)
    if len(near) == 0:
        return np.asarray(shapely.length(shared) > 1.0)
    zone = shapely.buffer(shapely.union_all(arterials[near]), 1.0, quad_segs=2)
    return np.asarray(shapely.length(shapely.difference(shared, zone)) > 1.0)


def _smooth_cuts(
    cells: np.ndarray,
    cblock: np.ndarray,
    blocks: np.ndarray,
    lines: np.ndarray,
    mem_cell: np.ndarray,
    mem_geom: np.ndarray,
    *,
    tolerance: float = 2.0,
) -> np.ndarray:
    """Cells with the cuts between the buildings of a block smoothed.

    The Voronoi edges between two buildings' cells zigzag round the points
    sampled on their outlines; a plan draws such a cut as a smooth line. Per
    block, the edges inside it are simplified together (``coverage_simplify``
    within ``tolerance`` metres, shared edges kept shared), its outline (the
    streets round it) untouched. A block keeps its cells as they were when a
    line of the data runs through it (a road ending inside it, a wall, a
    compound outline: edges along it stay on it), or when the smoothed cells
    would cover a building (``mem_geom``, one per member; None for parts of a
    split tower) less than before by more than 0.5 m².

    Examples
    --------
    >>> from shapely import Polygon, box
    >>> zig = [(10, 0), (10, 2), (10.6, 4), (10, 6), (10.6, 8), (10, 10)]
    >>> a = Polygon([(0, 0)] + zig + [(0, 10)])
    >>> b = Polygon(zig + [(20, 10), (20, 0)])
    >>> homes = np.array([box(2, 2, 6, 8), box(14, 2, 18, 8)], dtype=object)
    >>> out = _smooth_cuts(np.array([a, b]), np.zeros(2, dtype=int), np.array([box(0, 0, 20, 10)]),
    ...     np.empty(0, dtype=object), np.array([0, 1]), homes)
    >>> [len(c.exterior.coords) for c in out], round(out[0].area + out[1].area)
    ([5, 5], 200)
    """
    out = cells.copy()
    if len(cells) < 2 or tolerance <= 0:
        return out
    busy = np.zeros(len(blocks), dtype=bool)
    if len(lines):
        inner = shapely.buffer(blocks, -0.5)
        through, _ = shapely.STRtree(lines).query(inner, predicate="intersects")
        busy[through] = True
    order = np.argsort(cblock, kind="stable")
    cuts = np.flatnonzero(np.r_[True, cblock[order][1:] != cblock[order][:-1], True])
    has_geom = np.array([g is not None for g in mem_geom], dtype=bool)
    for s_, t_ in zip(cuts[:-1], cuts[1:], strict=True):
        sel = order[s_:t_]
        if len(sel) < 2 or busy[cblock[sel[0]]]:
            continue
        try:
            simp = np.asarray(
                shapely.coverage_simplify(cells[sel], tolerance, simplify_boundary=False),
                dtype=object,
            )
        except shapely.errors.GEOSException:  # pragma: no cover - GEOS edge cases
            continue
        if not (shapely.is_valid(simp).all() and (shapely.get_type_id(simp) == 3).all()):
            continue
        loc = np.full(len(cells), -1)
        loc[sel] = np.arange(len(sel))
        rows = np.flatnonzero((loc[mem_cell] >= 0) & has_geom)
        if len(rows):
            g = mem_geom[rows]
            after = shapely.area(shapely.difference(g, simp[loc[mem_cell[rows]]]))
            # the smoothed cells cover a building less than before by more than 0.5 m²
            # only where over 0.5 m² of it lies outside them: the cover before is
            # computed only for those buildings
            lost = np.flatnonzero(after > 0.5)
            if len(lost):
                before = shapely.area(shapely.difference(g[lost], cells[mem_cell[rows[lost]]]))
                if (after[lost] > before + 0.5).any():
                    continue
        out[sel] = simp
    return out


def _clip(geoms: np.ndarray, area: Any) -> np.ndarray:
    """``geoms ∩ area``, computed only for the geometries not already inside ``area``."""
    shapely.prepare(area)
    out = np.asarray(geoms, dtype=object).copy()
    cross = ~shapely.contains_properly(area, out)
    if cross.any():
        out[cross] = shapely.intersection(out[cross], area)
    return out


def _on_holes(cells: np.ndarray, area: Any) -> np.ndarray:
    """Length of each cell's boundary lying on a hole (interior ring) of ``area``."""
    out = np.zeros(len(cells))
    parts = _polys(area)
    holes = [r for p in parts for r in p.interiors]
    if not holes or len(cells) == 0:
        return out
    ring = shapely.buffer(shapely.multilinestrings(holes), 0.01, quad_segs=1)
    shapely.prepare(ring)
    near = np.flatnonzero(shapely.intersects(ring, cells))
    if len(near):
        out[near] = shapely.length(shapely.intersection(shapely.boundary(cells[near]), ring))
    return out


# --------------------------------------------------------------------------- main


def _across_main_road(
    cells: np.ndarray,
    ti: np.ndarray,
    tj: np.ndarray,
    length: np.ndarray,
    art_len: np.ndarray,
    among: np.ndarray,
    arterials: np.ndarray,
) -> np.ndarray:
    """Edges (of those in ``among``) lying on a main road of the data.

    An edge on an arterial (:func:`~gridmap.partition.pieces.on_arterial`) counts
    only for the part along a road of the data, not along a connector the
    partitioner drew where a main road stops short (a guess that a compound
    need not be split for).

    Examples
    --------
    >>> from shapely import LineString, box
    >>> cells = np.array([box(0, 0, 10, 30), box(10, 0, 20, 30)])
    >>> road = np.array([LineString([(10, -5), (10, 35)])])
    >>> args = (cells, np.array([0]), np.array([1]), np.array([30.0]), np.array([30.0]),
    ...     np.array([True]))
    >>> _across_main_road(*args, road).tolist(), _across_main_road(*args, road[:0]).tolist()
    ([True], [False])
    """
    out = np.zeros(len(ti), dtype=bool)
    cand = np.flatnonzero(among & on_arterial(length, art_len))
    if len(cand) == 0 or len(arterials) == 0:
        return out
    shared = shapely.intersection(
        shapely.boundary(cells[ti[cand]]), shapely.boundary(cells[tj[cand]])
    )
    parts, owner = shapely.get_parts(shared, return_index=True)
    lines = shapely.get_type_id(parts) == 1
    parts, owner = parts[lines], owner[lines]
    # points every ~2 m along each shared line
    plen = shapely.length(parts)
    step = np.maximum(np.ceil(plen / 2.0), 1).astype(np.int64)
    which = np.repeat(np.arange(len(parts)), step)
    start = np.repeat(np.cumsum(step) - step, step)
    frac = (np.arange(len(which)) - start + 0.5) / np.repeat(step, step)
    pts = shapely.line_interpolate_point(parts[which], frac, normalized=True)
    hit = np.zeros(len(pts), dtype=bool)
    q, _ = shapely.STRtree(arterials).query(pts, predicate="dwithin", distance=_ROAD_TOLERANCE)
    hit[q] = True
    seg = np.repeat(plen / step, step)
    on_road = np.bincount(owner[which], weights=seg * hit, minlength=len(cand))
    total = np.maximum(np.bincount(owner[which], weights=seg, minlength=len(cand)), 1e-9)
    share = on_road / total
    out[cand] = on_arterial(length[cand], share * length[cand])
    return out


def build_units(
    community: Any,
    buildings: pd.DataFrame,
    *,
    households: pd.DataFrame | None = None,
    roads: np.ndarray | None = None,
    barriers: np.ndarray | None = None,
    compounds: pd.DataFrame | None = None,
    min_households: int = 200,
    max_households: int = 500,
    target: float | None = None,
    split_compounds: frozenset[str] | set[str] = frozenset(),
    road_classes: Any = None,
) -> Units:
    """Tessellate one community into building cells and group them into units.

    Parameters
    ----------
    community : shapely.Polygon or shapely.MultiPolygon
        The area to tile (a community, or the part of it outside locked grids).
    buildings : pandas.DataFrame
        ``building_id``, ``households``, ``compound_id`` (optional), ``levels``
        (optional) and ``geometry`` (Polygons) of the buildings whose
        representative point lies in ``community``.
    households : pandas.DataFrame, optional
        ``household_id``, ``building_id``, ``unit``, ``floor`` of those
        buildings; used to split a building above the maximum by entrance or
        floors.
    roads, barriers : numpy.ndarray of shapely geometries, optional
        Road centrelines and barrier lines (or polygons) near the community.
    compounds : pandas.DataFrame, optional
        ``compound_id`` and ``geometry`` of compounds (小区) near the community.
    min_households, max_households : int
        The household band.
    target : float, optional
        Households a grid should hold; default the middle of the band.
    split_compounds : set of str, optional
        Compounds to leave as separate cells even though they fit under the
        maximum (the partitioner asks for this when a whole compound makes the
        band unreachable).
    road_classes : array-like of str, optional
        ``class`` of each road (OpenStreetMap ``highway`` or a Chinese grade);
        it sets the cost of a border along the road (:data:`EDGE_COST`,
        :mod:`gridmap.partition.roads`). None: every road is a street.

    Returns
    -------
    Units

    Examples
    --------
    >>> import pandas as pd
    >>> from shapely import box, LineString
    >>> b = pd.DataFrame({"building_id": ["a", "b", "c"], "households": [50, 60, 70],
    ...                   "geometry": [box(10, 10, 30, 30), box(60, 10, 80, 30),
    ...                                box(110, 10, 130, 30)]})
    >>> u = build_units(box(0, 0, 140, 40), b, roads=[LineString([(100, -5), (100, 45)])])
    >>> u.n, int(u.households.sum()), round(float(u.area.sum()))
    (3, 180, 5600)
    >>> u.edge_cost.round(1).tolist()  # c|b along the road, a|b between buildings
    [6.0, 40.0]
    """
    if target is None:
        target = (min_households + max_households) / 2
    community = shapely.make_valid(community) if not shapely.is_valid(community) else community
    notes: list[str] = []
    road_arr = np.asarray(roads if roads is not None else [], dtype=object)
    road_rank = (
        road_ranks(road_classes) if road_classes is not None else np.full(len(road_arr), STREET)
    )
    if len(road_rank) != len(road_arr):
        raise ValueError(
            f"road_classes has {len(road_rank)} values for {len(road_arr)} roads; pass one "
            "class per road (or None)"
        )
    present = ~(shapely.is_empty(road_arr) | shapely.is_missing(road_arr)) if len(road_arr) else []
    road_rank = road_rank[present] if len(road_arr) else road_rank
    road_lines = _lines_of(road_arr)
    barrier_lines = _lines_of(np.asarray(barriers if barriers is not None else [], dtype=object))
    # main roads stopping short of a cross street or the edge are carried on to it
    connectors = _arterial_connectors(
        road_lines,
        road_rank,
        barrier_lines,
        community,
        obstacles=np.asarray(buildings["geometry"], dtype=object) if len(buildings) else None,
    )
    real_arterials = road_lines[road_rank == ARTERIAL]  # roads in the data, not connectors
    if len(connectors):
        road_lines = np.concatenate([road_lines, connectors])
        road_rank = np.concatenate([road_rank, np.full(len(connectors), ARTERIAL)])
        notes.append(
            f"{len(connectors)} main-road end(s) stopping short of a cross street "
            f"(at most {ARTERIAL_GAP_M:g} m) or of the community edge (at most "
            f"{ARTERIAL_EDGE_GAP_M:g} m) carried on to it, so that the road cuts the land"
        )
    comp_geoms = (
        np.asarray(compounds["geometry"], dtype=object)
        if compounds is not None and len(compounds)
        else np.empty(0, dtype=object)
    )
    comp_ids = (
        compounds["compound_id"].astype(str).to_numpy()
        if compounds is not None and len(compounds)
        else np.empty(0, dtype=object)
    )
    comp_lines = _lines_of(comp_geoms)
    blocks = _blocks(community, road_lines)
    sub_lines = np.concatenate([barrier_lines, comp_lines])
    face_list: list[Any] = []
    face_block_list: list[int] = []
    if len(sub_lines):
        sub_tree = shapely.STRtree(sub_lines)
    for k, blk in enumerate(blocks):
        near = sub_tree.query(blk, predicate="intersects") if len(sub_lines) else []
        fs = _blocks(blk, sub_lines[np.sort(near)]) if len(near) else np.array([blk])
        face_list.extend(fs)
        face_block_list.extend([k] * len(fs))
    faces = np.asarray(face_list, dtype=object)
    face_block = np.asarray(face_block_list, dtype=np.int64)
    face_tree = shapely.STRtree(faces)
    face_compound = np.zeros(len(faces), dtype=bool)  # faces inside a compound (小区)
    if len(comp_geoms) and len(faces):
        inside, _ = shapely.STRtree(comp_geoms).query(
            shapely.point_on_surface(faces), predicate="within"
        )
        face_compound[inside] = True

    # ---- buildings: clip, locate block, overlap groups
    b = buildings.reset_index(drop=True)
    nb = len(b)
    bgeom = np.asarray(b["geometry"], dtype=object) if nb else np.empty(0, dtype=object)
    bhh = b["households"].to_numpy(dtype=np.int64) if nb else np.empty(0, dtype=np.int64)
    bids = b["building_id"].astype(str).to_numpy() if nb else np.empty(0, dtype=object)
    bcomp = (
        b["compound_id"].astype(object).where(b["compound_id"].notna(), None).to_numpy()
        if nb and "compound_id" in b.columns
        else np.full(nb, None, dtype=object)
    )
    blevels = (
        b["levels"].to_numpy(dtype=float) if nb and "levels" in b.columns else np.full(nb, np.nan)
    )
    if nb:
        clipped = _clip(shapely.make_valid(bgeom), community)
        clipped = np.where(
            shapely.area(clipped) > 0, clipped, shapely.buffer(shapely.point_on_surface(bgeom), 0.5)
        )
        crossing = int((shapely.area(clipped) < shapely.area(bgeom) - 0.5).sum())
        if crossing:
            notes.append(f"{crossing} building(s) cross the community boundary; clipped to it")
        reps = shapely.point_on_surface(clipped)
        hit_b, hit_k = face_tree.query(reps, predicate="intersects")
        bface = np.full(nb, -1, dtype=np.int64)
        bface[hit_b[::-1]] = hit_k[::-1]  # first hit wins
        miss = bface < 0
        if miss.any():
            bface[miss] = face_tree.query_nearest(reps[miss], return_distance=False)[1]
        bblock = face_block[bface]
        seedgeom = clipped.copy()
        for f in np.unique(bface):
            sel = np.flatnonzero(bface == f)
            seedgeom[sel] = _clip(clipped[sel], faces[f])
        seedgeom = np.where(shapely.area(seedgeom) > 0.01, seedgeom, clipped)
        # overlapping buildings in one block form one tessellation seed
        ia, ib = shapely.STRtree(seedgeom).query(seedgeom, predicate="intersects")
        keep = (ia < ib) & (bface[ia] == bface[ib])
        ia, ib = ia[keep], ib[keep]
        if len(ia):
            inter = shapely.area(shapely.intersection(seedgeom[ia], seedgeom[ib]))
            small = np.minimum(shapely.area(seedgeom[ia]), shapely.area(seedgeom[ib]))
            ov = inter > 0.05 * small
            ia, ib = ia[ov], ib[ov]
        adj = sparse.coo_matrix((np.ones(len(ia)), (ia, ib)), shape=(nb, nb))
        _, group = connected_components(adj, directed=False)
        gh = np.bincount(group, weights=bhh)
        gsize = np.bincount(group)
        big = (gh[group] > max_households) & (gsize[group] > 1)
        if big.any():
            group = group.copy()
            group[big] = group.max() + 1 + np.arange(int(big.sum()))
        _, group = np.unique(group, return_inverse=True)
        n_overlap = int((np.bincount(group) > 1).sum())
        if n_overlap:
            notes.append(
                f"{n_overlap} group(s) of overlapping buildings tessellated as one cell each"
            )
        seeds, seed_g = _seed_points(seedgeom, group)
        seed_face = bface[np.unique(group, return_index=True)[1]][seed_g]
        seed_block = face_block[seed_face]
    else:
        group = np.empty(0, dtype=np.int64)
        bblock = np.empty(0, dtype=np.int64)
        seeds = np.empty((0, 2))
        seed_g = np.empty(0, dtype=np.int64)
        seed_face = np.empty(0, dtype=np.int64)
        seed_block = np.empty(0, dtype=np.int64)

    # ---- cells per block
    order = np.argsort(seed_block, kind="stable")
    sb = seed_block[order]
    starts = np.searchsorted(sb, np.arange(len(blocks)))
    ends = np.searchsorted(sb, np.arange(len(blocks)), side="right")
    cell_geoms: list[Any] = []
    cell_group: list[int] = []
    cell_block: list[int] = []
    block_faces = pd.Series(np.arange(len(faces))).groupby(face_block).apply(list).to_dict()
    # an empty block is shared out by the nearest buildings of the blocks around it,
    # so a park or a ring of land does not become one cell enclosing its neighbours
    if len(seeds):
        gids = np.unique(seed_g)
        g_xy = np.column_stack(
            [
                np.bincount(seed_g, weights=seeds[:, 0])[gids] / np.bincount(seed_g)[gids],
                np.bincount(seed_g, weights=seeds[:, 1])[gids] / np.bincount(seed_g)[gids],
            ]
        )
        g_block = seed_block[np.unique(seed_g, return_index=True)[1]]
        bl_tree = shapely.STRtree(blocks)
    art_lines = road_lines[road_rank == ARTERIAL]
    art_tree = shapely.STRtree(art_lines) if len(art_lines) else None
    for k, blk in enumerate(blocks):
        sel = order[starts[k] : ends[k]]
        if len(sel) == 0 and len(seeds):
            # a strip (a median, a verge) is shared out only by the buildings of blocks
            # across a street: across a main road it stays whole (split down the middle
            # it would put both carriageways inside grids); wider land (a field, a
            # park) is shared out by the buildings all round
            touching = bl_tree.query(blk, predicate="intersects")
            touching = touching[touching != k]
            strip = 2.0 * shapely.area(blk) / max(shapely.length(blk), 1e-9) < _STRIP_WIDTH_M
            if strip and art_tree is not None and len(touching):
                touching = touching[_across_streets(blk, blocks[touching], art_lines, art_tree)]
            near = np.isin(g_block, touching)
            if near.sum() >= 2 and shapely.area(blk) > 400.0:
                for piece in _empty_block_cells(blk, g_xy[near]):
                    cell_geoms.append(piece)
                    cell_group.append(-1)
                    cell_block.append(k)
                continue
        fidx = np.asarray(block_faces.get(k, []), dtype=np.int64)
        local = np.full(len(faces), -1, dtype=np.int64)
        local[fidx] = np.arange(len(fidx))
        block_cells = _cells_of_block(
            blk, faces[fidx], seeds[sel], seed_g[sel], local[seed_face[sel]], face_compound[fidx]
        )
        if art_tree is not None:
            # a main road ending inside the block (a dead end, a road the extract cuts
            # short) does not cut it, but no cell straddles it either
            near = art_tree.query(blk, predicate="intersects")
            if len(near):
                block_cells = _split_cells_along(
                    block_cells, blk, art_lines[near], seeds[sel], seed_g[sel]
                )
        for geom, g in block_cells:
            cell_geoms.append(geom)
            cell_group.append(g)
            cell_block.append(k)
    cells = np.asarray(cell_geoms, dtype=object)
    cgroup = np.asarray(cell_group, dtype=np.int64)
    cblock = np.asarray(cell_block, dtype=np.int64)
    ngroups = int(group.max()) + 1 if nb else 0
    group_cell = np.full(ngroups, -1, dtype=np.int64)
    has = cgroup >= 0
    group_cell[cgroup[has]] = np.flatnonzero(has)
    lost = np.flatnonzero(group_cell < 0)
    if len(lost):  # a group whose cell vanished (degenerate block): give it the block's cell
        for lg in lost:
            bi = np.flatnonzero(group == lg)[0]
            cand = np.flatnonzero(cblock == bblock[bi])
            group_cell[lg] = cand[np.argmax(shapely.area(cells[cand]))]

    # ---- members (one row per building or building part)
    mem_bid: list[str] = []
    mem_part: list[str | None] = []
    mem_hh: list[int] = []
    mem_cell: list[int] = []
    hh_parts: dict[str, int] = {}
    mem_geom: list[Any] = []
    cell_list = list(cells)
    cell_block_list = list(cblock)
    hh_by_b: dict[str, pd.DataFrame] = {}
    towers = [
        i for i in range(nb) if bhh[i] > max_households and (np.bincount(group)[group[i]] == 1)
    ]
    if towers and households is not None and len(households):
        hsub = households[households["building_id"].astype(str).isin(set(bids[towers]))]
        hh_by_b = {str(k): v for k, v in hsub.groupby("building_id", sort=False)}
    tower_set = set(towers)
    for i in range(nb):
        c = int(group_cell[group[i]])
        if i not in tower_set:
            mem_bid.append(str(bids[i]))
            mem_part.append(None)
            mem_hh.append(int(bhh[i]))
            mem_cell.append(c)
            mem_geom.append(clipped[i])
            continue
        n_parts = _n_parts(int(bhh[i]), min_households, max_households, target)
        sizes, labels, hh_ids = _tower_parts(
            int(bhh[i]), n_parts, hh_by_b.get(str(bids[i])), float(blevels[i])
        )
        tot = max(sum(sizes), 1)
        pieces = _slice_cell(cell_list[c], [s / tot for s in sizes])
        how = "unit/entrance" if labels[0].startswith("unit") else "floor ranges"
        notes.append(
            f"building {bids[i]} holds {int(bhh[i])} households (> {max_households}); "
            f"split into {len(sizes)} parts by {how}"
        )
        for k, (piece, size, label, ids) in enumerate(
            zip(pieces, sizes, labels, hh_ids, strict=True)
        ):
            polys = _polys(piece)
            polys.sort(key=lambda p: -shapely.area(p))
            if k == 0:
                cell_list[c] = polys[0]
                idx = c
            else:
                cell_list.append(polys[0])
                cell_block_list.append(cell_block_list[c])
                idx = len(cell_list) - 1
            for extra in polys[1:]:
                cell_list.append(extra)
                cell_block_list.append(cell_block_list[c])
            row = len(mem_bid)
            mem_bid.append(str(bids[i]))
            mem_part.append(label)
            mem_hh.append(int(size))
            mem_cell.append(idx)
            mem_geom.append(None)
            for h in ids:
                hh_parts[h] = row
    cells = np.asarray(cell_list, dtype=object)
    cblock = np.asarray(cell_block_list, dtype=np.int64)
    # make shared edges identical (cells of different blocks/faces were clipped apart)
    cells, cblock, mem_cell, clean = _clean_cells(cells, cblock, mem_cell)
    if clean:
        # the cuts between buildings of a block drawn smooth (the streets round it kept)
        cells = _smooth_cuts(
            cells,
            cblock,
            blocks,
            np.concatenate([road_lines, sub_lines]),
            np.asarray(mem_cell, dtype=np.int64),
            np.asarray(mem_geom + [None], dtype=object)[:-1],
        )
    nc = len(cells)
    members = pd.DataFrame(
        {
            "building_id": pd.Series(mem_bid, dtype=object),
            "part": pd.Series(mem_part, dtype=object),
            "households": np.asarray(mem_hh, dtype=np.int64),
            "cell": np.asarray(mem_cell, dtype=np.int64),
        }
    )
    chh = np.bincount(members["cell"].to_numpy(), weights=members["households"], minlength=nc)

    # ---- compound of every cell (its buildings', else where an empty cell lies)
    ccomp = np.full(nc, None, dtype=object)
    empty = np.ones(nc, dtype=bool)
    empty[members["cell"].to_numpy()] = False
    if len(comp_geoms) and empty.any():
        ei = np.flatnonzero(empty)
        hit_k, hit_c = shapely.STRtree(comp_geoms).query(
            shapely.point_on_surface(cells[ei]), predicate="within"
        )
        ccomp[ei[hit_k[::-1]]] = comp_ids[hit_c[::-1]]
    if nb:
        mb = members.merge(
            pd.DataFrame({"building_id": bids, "compound_id": bcomp}), on="building_id"
        )
        for cid, cell in zip(mb["compound_id"], mb["cell"], strict=True):
            if cid is not None and not (isinstance(cid, float) and math.isnan(cid)):
                ccomp[cell] = str(cid)

    # ---- adjacency between cells
    guides = np.concatenate([road_lines, barrier_lines])
    gcost = np.concatenate(
        [_RANK_COST[road_rank], np.full(len(barrier_lines), EDGE_COST["barrier"])]
    )
    gart = np.concatenate([road_rank == ARTERIAL, np.zeros(len(barrier_lines), dtype=bool)])
    if clean:
        ti, tj, length, road_len, road_cost, art_len = _shared_edges_exact(
            cells, guides, gcost, gart
        )
    else:
        ti, tj, length, road_len, road_cost, art_len = _shared_edges_overlay(
            cells, guides, gcost, gart
        )
    cross = cblock[ti] != cblock[tj]
    kind_cost = np.where(cross, EDGE_COST["compound"], EDGE_COST["block"])
    cost = road_cost + (length - road_len) * kind_cost

    # ---- units: merge compounds that fit under the maximum
    cunit = np.arange(nc)
    comp_keys = pd.Series(ccomp, dtype=object)
    if comp_keys.notna().any():
        same = np.array(
            [a is not None and a == b for a, b in zip(ccomp[ti], ccomp[tj], strict=True)],
            dtype=bool,
        )
        # a compound outline drawn across a main road is one compound on each side
        same &= ~_across_main_road(cells, ti, tj, length, art_len, same, real_arterials)
        g = sparse.coo_matrix((np.ones(int(same.sum())), (ti[same], tj[same])), shape=(nc, nc))
        _, comp_lab = connected_components(g, directed=False)
        comp_hh = np.bincount(comp_lab, weights=chh)
        has_comp = np.array([c is not None for c in ccomp])
        merge = has_comp & (comp_hh[comp_lab] <= max_households)
        if split_compounds:
            merge &= ~np.isin(ccomp.astype(str), list(split_compounds))
        cunit = np.where(merge, nc + comp_lab, cunit)
        n_split = len({c for c, m, h in zip(ccomp, merge, has_comp, strict=True) if h and not m})
        if n_split:
            notes.append(
                f"{n_split} compound(s) above {max_households} households split along "
                "their internal roads"
            )
    _, cunit = np.unique(cunit, return_inverse=True)
    nu = int(cunit.max()) + 1
    ucomp = np.full(nu, None, dtype=object)
    for c_i in np.flatnonzero(np.array([c is not None for c in ccomp], dtype=bool)):
        ucomp[cunit[c_i]] = ccomp[c_i]
    carea = shapely.area(cells)
    cper = shapely.length(cells)
    ublock = np.zeros(nu, dtype=np.int64)
    ublock[cunit[::-1]] = cblock[::-1]  # block of each unit's first cell
    cc = shapely.get_coordinates(shapely.centroid(cells))
    uarea = np.bincount(cunit, weights=carea, minlength=nu)
    uhh = np.rint(np.bincount(cunit, weights=chh, minlength=nu)).astype(np.int64)
    ucx = np.bincount(cunit, weights=carea * cc[:, 0], minlength=nu) / np.maximum(uarea, 1e-9)
    ucy = np.bincount(cunit, weights=carea * cc[:, 1], minlength=nu) / np.maximum(uarea, 1e-9)
    ui, uj = cunit[ti], cunit[tj]
    inner = ui == uj
    uper = np.bincount(cunit, weights=cper, minlength=nu) - 2 * np.bincount(
        ui[inner], weights=length[inner], minlength=nu
    )
    a, bb = np.minimum(ui, uj)[~inner], np.maximum(ui, uj)[~inner]
    key = a * nu + bb
    uniq, inv = np.unique(key, return_inverse=True)
    e_len = np.bincount(inv, weights=length[~inner])
    e_cost = np.bincount(inv, weights=cost[~inner])
    e_road = np.bincount(inv, weights=road_len[~inner])
    e_art = np.bincount(inv, weights=art_len[~inner])
    edges = np.column_stack([uniq // nu, uniq % nu]).astype(np.int64)
    shared_sum = np.bincount(edges[:, 0], weights=e_len, minlength=nu) + np.bincount(
        edges[:, 1], weights=e_len, minlength=nu
    )
    exterior = np.maximum(uper - shared_sum, 0.0)
    outer = np.maximum(
        exterior - np.bincount(cunit, weights=_on_holes(cells, community), minlength=nu), 0.0
    )
    return Units(
        cells=cells,
        cell_unit=cunit,
        members=members,
        household_parts=hh_parts,
        households=uhh,
        area=uarea,
        perimeter=uper,
        exterior=exterior,
        cx=ucx,
        cy=ucy,
        edges=edges,
        edge_length=e_len,
        edge_cost=e_cost,
        edge_road=e_road,
        edge_arterial=e_art,
        notes=notes,
        compound=ucomp,
        block=ublock,
        outer=outer,
    )
