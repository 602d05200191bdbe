"""The road network as a graph, for walking distances between visits.

:class:`RoadNetwork` nodes the roads layer at every intersection
(:func:`shapely.union_all`), keeps every vertex as a graph node and every
segment between consecutive vertices as an undirected edge weighted by its
length, in a :mod:`scipy.sparse` matrix. :meth:`RoadNetwork.distances` snaps
points to their nearest segment (a straight connector, its length included),
splits the segments at the snapped positions and runs
:func:`scipy.sparse.csgraph.dijkstra` from every point: the result is the
walking-distance matrix and the paths (as node chains) for drawing.

Points closer than ``direct_within`` metres to each other (two households of
one building or courtyard) walk straight, and so do points whose snapped
positions are not connected by roads; without roads every distance is a
straight line. The network is immutable once built, so one instance may be
shared by threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from gridmap.errors import CRSError, LayerError

__all__ = ["RoadNetwork", "Distances"]


@dataclass(frozen=True)
class Distances:
    """Walking distances between points and what is needed to draw the paths.

    Attributes
    ----------
    matrix : numpy.ndarray
        ``(k, k)`` symmetric distances in metres.
    straight : numpy.ndarray
        ``(k, k)`` bool: the pair walks a straight line (close, or not connected).
    points : numpy.ndarray
        ``(k, 2)`` coordinates of the points.
    """

    matrix: np.ndarray
    straight: np.ndarray
    points: np.ndarray
    _snap: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 2)))
    _node_xy: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 2)))
    _source: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    _pred: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0), np.int64))

    def path(self, i: int, j: int) -> shapely.LineString:
        """Return the walked line from point ``i`` to point ``j`` (connectors included)."""
        a, b = self.points[i], self.points[j]
        if i == j:
            return shapely.LineString([a, a])
        if self.straight[i, j] or len(self._pred) == 0:
            return shapely.LineString([a, b])
        src, dst = int(self._source[i]), int(self._source[j])
        chain = [dst]
        pred = self._pred[i]
        while chain[-1] != src:
            p = int(pred[chain[-1]])
            if p < 0:  # pragma: no cover - straight covers unreachable pairs
                return shapely.LineString([a, b])
            chain.append(p)
        xy = self._node_xy[chain[::-1]]
        coords = np.vstack([a[None, :], xy, b[None, :]])
        keep = np.r_[True, np.any(np.diff(coords, axis=0) != 0, axis=1)]
        coords = coords[keep]
        if len(coords) < 2:
            coords = np.vstack([coords, coords])
        return shapely.LineString(coords)


@dataclass(frozen=True)
class RoadNetwork:
    """Roads noded at intersections, as an undirected weighted graph (metres).

    Build it once with :meth:`from_roads` and reuse it for many routes.

    Attributes
    ----------
    nodes : numpy.ndarray
        ``(n, 2)`` node coordinates.
    edges : numpy.ndarray
        ``(m, 2)`` node indexes of each segment (``a < b``, unique).
    lengths : numpy.ndarray
        ``(m,)`` segment lengths.
    crs : pyproj.CRS or None

    Examples
    --------
    >>> import shapely
    >>> net = RoadNetwork.from_roads([shapely.LineString([(0, 0), (200, 0)]),
    ...                               shapely.LineString([(100, -100), (100, 100)])])
    >>> len(net.nodes), len(net.edges)
    (5, 4)
    >>> d = net.distances([(0, 10), (110, 100)], direct_within=0)
    >>> round(float(d.matrix[0, 1]), 1)
    220.0
    """

    nodes: np.ndarray
    edges: np.ndarray
    lengths: np.ndarray
    crs: pyproj.CRS | None = None
    _tree: shapely.STRtree | None = field(default=None, repr=False, compare=False)
    _segments: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=object), repr=False, compare=False
    )

    @classmethod
    def from_roads(cls, roads: Any, *, grid_size: float = 0.01) -> RoadNetwork:
        """Node a roads layer at its intersections and build the graph.

        Parameters
        ----------
        roads : GeoDataFrame, GeoSeries or sequence of LineStrings
            Road centre lines in a projected CRS (metres); MultiLineStrings are split.
        grid_size : float, default 0.01
            Precision of noding (metres): vertices closer than this merge.

        Raises
        ------
        CRSError
            If the roads are in a geographic CRS (degrees).
        """
        crs = getattr(roads, "crs", None)
        if crs is not None and pyproj.CRS.from_user_input(crs).is_geographic:
            raise CRSError(
                "roads are in a geographic CRS (degrees); reproject to the plan's projected "
                "CRS first, e.g. roads.to_crs(plan.crs)"
            )
        geoms = np.asarray(
            roads.geometry.to_numpy() if hasattr(roads, "geometry") else list(roads), dtype=object
        )
        geoms = geoms[[g is not None and not g.is_empty for g in geoms]] if len(geoms) else geoms
        if len(geoms):
            kinds = set(shapely.get_type_id(geoms).tolist())
            if not kinds <= {1, 5}:  # LineString, MultiLineString
                raise LayerError("roads must be LineStrings or MultiLineStrings")
        empty = np.zeros((0, 2))
        if len(geoms) == 0:
            return cls(empty, np.zeros((0, 2), np.int64), np.zeros(0), _crs(crs))
        noded = shapely.union_all(shapely.get_parts(geoms), grid_size=grid_size)
        parts = shapely.get_parts(noded)
        parts = parts[shapely.get_type_id(parts) == 1]
        xy, idx = shapely.get_coordinates(parts, return_index=True)
        same = idx[1:] == idx[:-1]
        key = np.round(xy / grid_size).astype(np.int64)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        nodes = np.zeros((len(uniq), 2))
        nodes[inv] = xy
        a, b = inv[:-1][same], inv[1:][same]
        ok = a != b
        a, b = np.minimum(a, b)[ok], np.maximum(a, b)[ok]
        length = np.hypot(*(nodes[a] - nodes[b]).T)
        order = np.lexsort((length, b, a))
        a, b, length = a[order], b[order], length[order]
        first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
        edges = np.column_stack([a[first], b[first]]).astype(np.int64)
        lengths = length[first]
        segs = shapely.linestrings(np.stack([nodes[edges[:, 0]], nodes[edges[:, 1]]], axis=1))
        return cls(nodes, edges, lengths, _crs(crs), shapely.STRtree(segs), np.asarray(segs))

    def __len__(self) -> int:
        return len(self.edges)

    def clip(self, bounds: tuple[float, float, float, float], margin: float) -> RoadNetwork:
        """Return the sub-network of segments within ``margin`` of ``bounds`` (a day's area)."""
        if self._tree is None or len(self.edges) == 0:
            return self
        x0, y0, x1, y1 = bounds
        box = shapely.box(x0 - margin, y0 - margin, x1 + margin, y1 + margin)
        keep = np.sort(self._tree.query(box, predicate="intersects"))
        used, inv = np.unique(self.edges[keep], return_inverse=True)
        edges = inv.reshape(-1, 2).astype(np.int64)
        segs = self._segments[keep]
        return RoadNetwork(
            self.nodes[used], edges, self.lengths[keep], self.crs, shapely.STRtree(segs), segs
        )

    def distances(self, points: Any, *, direct_within: float = 50.0) -> Distances:
        """Compute walking distances between points over the network (see the module docstring).

        Parameters
        ----------
        points : array-like of shape (k, 2) or sequence of Points
            In the network's CRS.
        direct_within : float, default 50.0
            Pairs closer than this (metres) walk straight.

        Returns
        -------
        Distances
        """
        pts = _xy(points)
        k = len(pts)
        euclid = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
        if k == 0 or self._tree is None or len(self.edges) == 0:
            return Distances(euclid, np.ones((k, k), dtype=bool), pts)
        geoms = shapely.points(pts)
        seg = self._tree.query_nearest(geoms, all_matches=False, return_distance=False)[1]
        lines = self._segments[seg]
        t = shapely.line_locate_point(lines, geoms)
        snap_pts = shapely.line_interpolate_point(lines, t)
        snap = shapely.get_coordinates(snap_pts)
        connector = np.hypot(*(pts - snap).T)
        n = len(self.nodes)
        # split snapped segments: chain a → snapped points (by t) → b
        virt = n + np.arange(k)
        order = np.lexsort((np.arange(k), t, seg))
        s_sorted, t_sorted, v_sorted = seg[order], t[order], virt[order]
        cut = np.unique(seg)
        keep_edges = np.ones(len(self.edges), dtype=bool)
        keep_edges[cut] = False
        ea = [self.edges[keep_edges, 0]]
        eb = [self.edges[keep_edges, 1]]
        ew = [self.lengths[keep_edges]]
        starts = np.r_[0, np.flatnonzero(s_sorted[1:] != s_sorted[:-1]) + 1]
        ends = np.r_[starts[1:], len(s_sorted)]
        for s0, s1 in zip(starts.tolist(), ends.tolist(), strict=True):
            sid = int(s_sorted[s0])
            a, b = self.edges[sid]
            pos = np.r_[0.0, t_sorted[s0:s1], self.lengths[sid]]
            chain = np.r_[a, v_sorted[s0:s1], b]
            ea.append(chain[:-1])
            eb.append(chain[1:])
            ew.append(np.maximum(np.diff(pos), 1e-9))  # explicit zeros would drop the edge
        a_all = np.concatenate(ea)
        b_all = np.concatenate(eb)
        w_all = np.concatenate(ew)
        g = sparse.coo_matrix((w_all, (a_all, b_all)), shape=(n + k, n + k)).tocsr()
        dist, pred = csgraph.dijkstra(g, directed=False, indices=virt, return_predecessors=True)
        net = dist[:, virt]
        matrix = connector[:, None] + net + connector[None, :]
        straight = ~np.isfinite(matrix) | (euclid <= direct_within)
        matrix = np.where(straight, euclid, matrix)
        np.fill_diagonal(matrix, 0.0)
        matrix = np.minimum(matrix, matrix.T)  # exact symmetry against rounding
        node_xy = np.vstack([self.nodes, snap])
        return Distances(matrix, straight, pts, snap, node_xy, virt, pred.astype(np.int64))


def _crs(crs: Any) -> pyproj.CRS | None:
    return None if crs is None else pyproj.CRS.from_user_input(crs)


def _xy(points: Any) -> np.ndarray:
    if isinstance(points, gpd.GeoDataFrame | gpd.GeoSeries):
        geoms = points.geometry.to_numpy()
    else:
        if len(points) == 0:
            return np.zeros((0, 2))
        arr = np.asarray(points, dtype=object)
        if arr.ndim == 2 and arr.shape[1] == 2 and not isinstance(arr.flat[0], shapely.Geometry):
            return np.asarray(arr, dtype=float)
        geoms = np.asarray(list(points), dtype=object)
    if len(geoms) == 0:
        return np.zeros((0, 2))
    if any(g is None or g.is_empty for g in geoms):
        raise LayerError("a stop has no geometry; every stop needs a point (or a building)")
    pts = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.centroid(geoms))
    return shapely.get_coordinates(pts.astype(object))
