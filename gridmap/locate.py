"""Point → grid lookup: :class:`GridIndex`, vectorised and deterministic on boundaries.

A dispatcher gets an incident coordinate (often GCJ-02 from a phone) and needs its
grid in well under a second; an analyst assigns a day's tickets in one call. Both
go through :class:`GridIndex`, a shapely :class:`~shapely.STRtree` over the grid
polygons of a plan (projected CRS, metres).

Rules
-----
* **Covers, not contains**: a point on a grid's edge belongs to that grid, so a
  point on a shared edge or vertex always finds a grid.
* **Deterministic primary**: of the grids covering a point, the one with the
  smallest code (string order) is ``grid_code``. A point covered by no grid but
  within ``tolerance`` of one (geometric noise such as a sliver gap between
  grids) is snapped to the nearest such grid (ties: smallest code).
* ``candidates`` lists, sorted by code, every grid that covers the point or lies
  within ``tolerance``; more than one candidate means the point is on (or within
  ``tolerance`` of) a shared edge, and ``on_boundary`` is true.
* Points farther than ``tolerance`` from every grid get ``grid_code=None``;
  ``nearest_grid``/``nearest_distance`` say which grid is closest and how far.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.crs import Method, check_lonlat, parse_crs, transform
from gridmap.errors import CoordinateError, CRSError, LayerError

__all__ = ["GridIndex", "LOCATE_COLUMNS", "ready_tree"]

#: Columns of the frame returned by :meth:`GridIndex.locate`.
LOCATE_COLUMNS: tuple[str, ...] = (
    "grid_code",
    "inside",
    "on_boundary",
    "candidates",
    "distance_to_boundary",
    "nearest_grid",
    "nearest_distance",
)


def _group_lists(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Object array whose item ``i`` is ``list(values[starts[i]:starts[i] + counts[i]])``."""
    out = np.empty(len(counts), dtype=object)
    rows = np.flatnonzero(counts == 0)
    out[rows] = np.fromiter(([] for _ in range(len(rows))), dtype=object, count=len(rows))
    rows = np.flatnonzero(counts == 1)
    singles = zip(values[starts[rows]].tolist(), strict=True)
    out[rows] = np.fromiter(map(list, singles), dtype=object, count=len(rows))
    rows = np.flatnonzero(counts > 1)
    vals = values.tolist()
    spans = zip(starts[rows].tolist(), counts[rows].tolist(), strict=True)
    out[rows] = np.fromiter((vals[s : s + c] for s, c in spans), dtype=object, count=len(rows))
    return out


def ready_tree(geoms: Any) -> shapely.STRtree:
    """Return an STRtree over ``geoms`` that is built now, not at its first query.

    GEOS builds a tree lazily, at the first query, without a lock: two threads
    querying a fresh tree at once would build it twice over the same memory. A
    tree that threads share is made here, complete before anyone shares it; after
    that, queries only read it.

    Examples
    --------
    >>> tree = ready_tree([shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)])
    >>> tree.query(shapely.Point(2.5, 0.5)).tolist()
    [1]
    """
    tree = shapely.STRtree(geoms)
    tree.query(shapely.Point(0.0, 0.0))  # the first query builds the tree
    return tree


class _PreparedCopies:
    """Prepared copies of polygons, each used by one thread at a time.

    GEOS prepared geometries are not thread-safe (libgeos/geos#825): a prepared
    polygon builds its point locator and segment index lazily and keeps working
    state in them while it tests, so two threads testing points against the same
    prepared polygon corrupt the heap — glibc aborts (``tcache_thread_shutdown``,
    ``free(): corrupted unsorted chunks``), or, worse, a point gets a wrong grid.
    Warming them up first does not help. So no prepared polygon is ever shared: a
    call leases a copy for as long as it runs and hands it back; a new copy
    (cloned through WKB, exact) is made only when every copy is in use, so there
    are as many copies as calls that ever ran at once.
    """

    def __init__(self, geoms: np.ndarray) -> None:
        self._source = geoms  # never prepared, never used for predicates
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self) -> np.ndarray:
        """Take a copy for this caller alone (hand it back with :meth:`give`)."""
        with self._lock:
            copy = self._free.pop() if self._free else None
        if copy is None:
            copy = shapely.from_wkb(shapely.to_wkb(self._source))
            shapely.prepare(copy)
        return copy

    def give(self, copy: np.ndarray) -> None:
        """Hand back a copy from :meth:`take`."""
        with self._lock:
            self._free.append(copy)

    @contextmanager
    def lease(self) -> Iterator[np.ndarray]:
        copy = self.take()
        try:
            yield copy
        finally:
            self.give(copy)


class _Answer:
    """Per-point answer arrays of :meth:`GridIndex.locate` (grid rows, -1 for none)."""

    __slots__ = (
        "grid_idx",
        "inside",
        "on_boundary",
        "candidates",
        "dist_boundary",
        "near_idx",
        "near_dist",
    )

    def __init__(
        self,
        grid_idx: np.ndarray,
        inside: np.ndarray,
        on_boundary: np.ndarray,
        candidates: np.ndarray,
        dist_boundary: np.ndarray,
        near_idx: np.ndarray,
        near_dist: np.ndarray,
    ) -> None:
        self.grid_idx = grid_idx
        self.inside = inside
        self.on_boundary = on_boundary
        self.candidates = candidates
        self.dist_boundary = dist_boundary
        self.near_idx = near_idx
        self.near_dist = near_dist

    @classmethod
    def empty(cls, n: int) -> _Answer:
        return cls(
            np.full(n, -1, dtype=np.int64),
            np.zeros(n, dtype=bool),
            np.zeros(n, dtype=bool),
            np.empty(n, dtype=object),
            np.full(n, np.nan),
            np.full(n, -1, dtype=np.int64),
            np.full(n, np.nan),
        )

    @classmethod
    def concat(cls, parts: list[_Answer]) -> _Answer:
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in cls.__slots__))

    def put(self, rows: np.ndarray, other: _Answer) -> None:
        """Write ``other``'s answers at ``rows``."""
        for name in self.__slots__:
            getattr(self, name)[rows] = getattr(other, name)


_PIECE = 8  # segments per boundary piece in the nearest-grid tree
# a grid's shrunk copy is the grid buffered by -_SHRINK x tolerance, and must clear its
# boundary by _CHECK x tolerance (buffers draw arcs as chords: 0.5 % short at most)
_SHRINK = 1.2
_CHECK = 1.05
_INNER_MIN_POINTS = 2_000  # fewer points in a call: no shrunk grids (built at first use)
_THREADS = min(os.cpu_count() or 1, 4)  # threads for a large batch of points
_THREAD_MIN_POINTS = 20_000  # points per thread, at least


class GridIndex:
    """Spatial index of grid polygons for locating points.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        One Polygon (or MultiPolygon) per grid, in a projected CRS in metres, as
        in ``Plan.grids``.
    code_column : str, default "grid_code"
        Column holding each grid's unique code.
    tolerance : float, default 0.01
        Distance in metres (1 cm) within which a grid edge counts as touching
        the point. It absorbs geometric noise (rounding, sliver gaps between
        grids), not GPS error: keep it small.

    Raises
    ------
    CRSError
        If ``grids`` has no CRS or a geographic one.
    LayerError
        If ``grids`` is empty, lacks ``code_column``, has missing or duplicate
        codes, or missing/non-polygon geometries.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame(
    ...     {"grid_code": ["A", "B"]},
    ...     geometry=[shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)],
    ...     crs=4549,
    ... )
    >>> index = GridIndex(grids)
    >>> index.locate([5, 10, 25], [5, 5, 5])[["grid_code", "on_boundary", "nearest_grid"]]
      grid_code  on_boundary nearest_grid
    0         A        False            A
    1         A         True            A
    2      None        False            B
    """

    def __init__(
        self,
        grids: gpd.GeoDataFrame,
        *,
        code_column: str = "grid_code",
        tolerance: float = 0.01,
    ) -> None:
        if not isinstance(grids, gpd.GeoDataFrame):
            raise LayerError(
                f"grids must be a GeoDataFrame, not {type(grids).__name__}; pass plan.grids"
            )
        if grids.crs is None:
            raise CRSError(
                "grids has no CRS; set the projected CRS it is in with grids.set_crs(...)"
            )
        if not grids.crs.is_projected:
            raise CRSError(
                f"grids is in a geographic CRS ({grids.crs.name}); project it to metres first, "
                "e.g. grids.to_crs(gridmap.crs.local_crs(grids))"
            )
        if not (tolerance >= 0 and np.isfinite(tolerance)):
            raise ValueError(f"tolerance must be a finite distance >= 0 in metres, not {tolerance}")
        if len(grids) == 0:
            raise LayerError("grids is empty; build the index from a plan with at least one grid")
        if code_column not in grids.columns:
            raise LayerError(
                f"grids has no column {code_column!r}; pass code_column= one of "
                f"{[c for c in grids.columns if c != grids.geometry.name]}"
            )
        codes = grids[code_column]
        if codes.isna().any():
            rows = np.flatnonzero(codes.isna().to_numpy())[:5].tolist()
            raise LayerError(
                f"grids has missing {code_column} at rows {rows}; give every grid a code"
            )
        codes_arr = np.array([str(c) for c in codes], dtype=object)
        uniq, counts = np.unique(codes_arr, return_counts=True)
        if (counts > 1).any():
            raise LayerError(
                f"grids has duplicate {code_column}: {uniq[counts > 1][:5].tolist()}; "
                "grid codes must be unique"
            )
        geoms = np.asarray(grids.geometry.values, dtype=object)
        kinds = shapely.get_type_id(geoms)
        bad = (
            shapely.is_missing(geoms) | shapely.is_empty(geoms) | ~np.isin(kinds, (3, 6))
        )  # 3 Polygon, 6 MultiPolygon
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise LayerError(
                f"grids has missing, empty or non-polygon geometries at rows {rows}; "
                "every grid must be a Polygon"
            )

        self.crs: pyproj.CRS = pyproj.CRS(grids.crs)
        self.tolerance = float(tolerance)
        self.code_column = code_column
        self.codes: np.ndarray = codes_arr
        # Thread safety: everything built here is only read afterwards (the tree is
        # built now, not at its first query); prepared polygons, which GEOS mutates
        # while testing, are leased per call from `_prepared`; the nearest-grid tree
        # is built once under `_edge_lock` before any thread reads it.
        self.geometries: np.ndarray = shapely.from_wkb(shapely.to_wkb(geoms))  # own, unprepared
        self.boundaries: np.ndarray = shapely.boundary(self.geometries)
        self.tree: shapely.STRtree = ready_tree(self.geometries)
        # rank of each grid's code in string order: the deterministic tie-breaker
        self.rank: np.ndarray = np.empty(len(codes_arr), dtype=np.int64)
        self.rank[np.argsort(codes_arr, kind="stable")] = np.arange(len(codes_arr))
        self._prepared = _PreparedCopies(self.geometries)
        self._codes_none = np.array([*codes_arr.tolist(), None], dtype=object)  # -1 -> None
        self._edge_tree: tuple[shapely.STRtree, np.ndarray] | None = None  # built when needed
        self._inner: _PreparedCopies | None = None  # shrunk grids, built when needed
        self._edge_lock = threading.Lock()

    @classmethod
    def from_plan(cls, plan: Any, *, tolerance: float = 0.01) -> GridIndex:
        """Build the index of a :class:`gridmap.partition.plan.Plan`'s grids.

        Parameters
        ----------
        plan : Plan
            A partition plan (its ``grids`` frame is used).
        tolerance : float, default 0.01
            See :class:`GridIndex`.

        Returns
        -------
        GridIndex

        Examples
        --------
        >>> import types, geopandas as gpd, shapely
        >>> grids = gpd.GeoDataFrame(
        ...     {"grid_code": ["A"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4549
        ... )
        >>> len(GridIndex.from_plan(types.SimpleNamespace(grids=grids)))
        1
        """
        return cls(plan.grids, tolerance=tolerance)

    def __len__(self) -> int:
        return len(self.codes)

    def __repr__(self) -> str:
        return (
            f"GridIndex({len(self)} grids, crs=EPSG:{self.crs.to_epsg()}, "
            f"tolerance={self.tolerance} m)"
        )

    def _edges(self) -> tuple[shapely.STRtree, np.ndarray]:
        """Return a tree of short boundary pieces and the grid owning each piece.

        The distance from a point outside every grid to a grid is its distance to
        the grid's boundary; pieces of at most ``_PIECE`` segments have small boxes,
        so the nearest search prunes well and each distance is cheap (a query on the
        whole polygons measures every vertex of each candidate).
        """
        with self._edge_lock:
            if self._edge_tree is not None:
                return self._edge_tree
            lines, owner = shapely.get_parts(self.boundaries, return_index=True)
            xy, line = shapely.get_coordinates(lines, return_index=True)
            n = np.bincount(line, minlength=len(lines))  # coordinates per ring (>= 2)
            start = np.cumsum(n) - n
            t = np.arange(len(xy)) - start[line]  # position along its ring
            last = (n - 2) // _PIECE  # index of each ring's last piece
            first_piece = np.cumsum(last + 1) - (last + 1)
            piece = first_piece[line] + np.minimum(t // _PIECE, last[line])
            # a vertex where two pieces meet ends one piece and starts the next
            joint = (t % _PIECE == 0) & (t > 0) & (t < n[line] - 1)
            rows = np.concatenate([np.arange(len(xy)), np.flatnonzero(joint)])
            ids = np.concatenate([piece, piece[joint] - 1])
            order = np.lexsort((rows, ids))
            geoms = shapely.linestrings(xy[rows[order]], indices=ids[order])
            self._edge_tree = (ready_tree(geoms), np.repeat(owner, last + 1))
            return self._edge_tree

    # ------------------------------------------------------------------
    def locate(
        self, x: Any, y: Any, *, threads: int | None = None, boundary_distance: bool = True
    ) -> pd.DataFrame:
        """Find the grid of each point (coordinates in the index CRS).

        Parameters
        ----------
        x, y : float or array-like
            Projected coordinates in metres, in :attr:`crs`.
        threads : int, optional
            Threads for a large batch (at least 20,000 points per thread); default
            one per core, at most 4. ``1`` runs in the calling thread. The answer
            does not depend on it.
        boundary_distance : bool, default True
            Measure ``distance_to_boundary`` for every located point. ``False``
            measures it only where the rules need it (points within about
            ``tolerance`` of an edge) and leaves NaN elsewhere: the other columns
            are the same, and a large batch is about a third faster.

        Returns
        -------
        pandas.DataFrame
            One row per point, in input order, with columns
            ``grid_code`` (str or None), ``inside`` (covered by a grid),
            ``on_boundary`` (within ``tolerance`` of two or more grids),
            ``candidates`` (sorted list of codes within ``tolerance``),
            ``distance_to_boundary`` (metres to the boundary of ``grid_code``;
            NaN without a grid), ``nearest_grid`` and ``nearest_distance``
            (the located grid and its distance — 0 when inside — or, for points
            outside every grid, the nearest grid and its distance; ties go to the
            smallest code).

        Raises
        ------
        CoordinateError
            For NaN/infinite coordinates or arrays of different shapes.

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> grids = gpd.GeoDataFrame(
        ...     {"grid_code": ["A", "B", "C", "D"]},
        ...     geometry=[shapely.box(x, y, x + 10, y + 10) for y in (10, 0) for x in (0, 10)],
        ...     crs=4549,
        ... )
        >>> row = GridIndex(grids).locate([10.0], [10.0]).iloc[0]
        >>> row.grid_code, row.candidates, bool(row.on_boundary)
        ('A', ['A', 'B', 'C', 'D'], True)
        """
        px = np.atleast_1d(np.asarray(x, dtype=np.float64))
        py = np.atleast_1d(np.asarray(y, dtype=np.float64))
        if px.shape != py.shape or px.ndim != 1:
            raise CoordinateError(
                f"x and y must be 1-d with the same length, got shapes {px.shape} and {py.shape}"
            )
        finite = np.isfinite(px) & np.isfinite(py)
        if not finite.all():
            idx = np.flatnonzero(~finite)
            shown = ", ".join(f"[{i}] ({px[i]}, {py[i]})" for i in idx[:3])
            raise CoordinateError(
                f"{len(idx)} point(s) have NaN or infinite coordinates: {shown}"
                f"{' …' if len(idx) > 3 else ''}; drop or fix those rows before locating"
            )
        most = _THREADS if threads is None else max(int(threads), 1)
        parts = min(most, len(px) // _THREAD_MIN_POINTS)
        if parts < 2:
            return self._frame(self._locate(px, py, boundary_distance))
        # shapely releases the GIL: big batches run in threads, one slice each (a point's
        # answer does not depend on the others, so the result is the same). Thread safety:
        # each slice leases its own prepared polygons (grids and shrunk grids); the trees,
        # boundaries, codes and ranks are built before and only read; each thread writes
        # only its own arrays.
        self._edges()  # built once, before the threads share it
        self._inner_prepared()  # likewise
        cuts = np.linspace(0, len(px), parts + 1).astype(np.int64)
        with ThreadPoolExecutor(max_workers=parts) as pool:
            answers = list(
                pool.map(
                    lambda ab: self._locate(
                        px[ab[0] : ab[1]], py[ab[0] : ab[1]], boundary_distance
                    ),
                    zip(cuts[:-1], cuts[1:], strict=True),
                )
            )
        return self._frame(_Answer.concat(answers))

    def covers_xy(self, rows: Any, x: Any, y: Any) -> np.ndarray:
        """Whether grid ``rows[i]`` covers the point ``(x[i], y[i])`` (index CRS).

        Safe from any thread: the test runs on prepared polygons leased to this
        call alone.

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> grids = gpd.GeoDataFrame(
        ...     {"grid_code": ["A"]}, geometry=[shapely.box(0, 0, 10, 10)], crs=4549
        ... )
        >>> GridIndex(grids).covers_xy([0, 0], [5.0, 10.0], [5.0, 11.0]).tolist()
        [True, False]
        """
        pool = self._prepared  # take/give, not lease(): this runs once per /locate request
        prepared = pool.take()
        try:
            return np.asarray(shapely.intersects_xy(prepared[np.asarray(rows)], x, y), dtype=bool)
        finally:
            pool.give(prepared)

    def _locate(self, px: np.ndarray, py: np.ndarray, boundary_distance: bool) -> _Answer:
        """:meth:`locate` on checked coordinate arrays."""
        # a few points take the exact path: cheaper than building the shrunk grids
        inner = self._inner_prepared() if len(px) >= _INNER_MIN_POINTS else None
        with self._prepared.lease() as prepared:
            if inner is None:
                return self._locate_with(prepared, None, px, py, boundary_distance)
            with inner.lease() as inner_copy:
                return self._locate_with(prepared, inner_copy, px, py, boundary_distance)

    def _inner_prepared(self) -> _PreparedCopies | None:
        """Return the grids shrunk by a bit more than ``tolerance`` (built at the first call).

        A point inside grid ``g``'s shrunk copy is farther than ``tolerance`` from
        ``g``'s boundary, and, when no other grid's interior overlaps ``g``, from every
        other grid: its answer is ``g`` alone, with no distance or wider query needed.
        Grids that overlap another grid, are invalid, or whose shrunk copy fails the
        check below get an empty copy (their points take the exact path). ``None``
        when ``tolerance`` is 0 (there the exact path decides every point).
        """
        if self.tolerance <= 0:
            return None
        with self._edge_lock:
            if self._inner is not None:
                return self._inner
            # own copies: the tree and polygons that other threads read stay untouched
            geoms = shapely.from_wkb(shapely.to_wkb(self.geometries))
            tol = self.tolerance
            unsafe = ~shapely.is_valid(geoms)
            a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
            pair = (a < b) & ~unsafe[a] & ~unsafe[b]
            unsafe[a[~pair & unsafe[b]]] = True  # next to an invalid grid: no shortcut
            a, b = a[pair], b[pair]
            overlap = shapely.relate_pattern(geoms[a], geoms[b], "T********")
            a, b = (
                np.concatenate([a[overlap], b[overlap]]),
                np.concatenate([b[overlap], a[overlap]]),
            )
            inner = np.full(len(geoms), shapely.Polygon(), dtype=object)
            rows = np.flatnonzero(~unsafe)
            inner[rows] = shapely.buffer(geoms[rows], -tol * _SHRINK)
            # grids whose interiors overlap (often by slivers of a square millimetre): a
            # point in the overlap has two grids, so the shrunk copy of each keeps clear of
            # the other, one neighbour at a time
            o = np.lexsort((b, a))
            a, b = a[o], b[o]
            nth = np.arange(len(a)) - np.searchsorted(a, a)
            for k in range(int(nth.max()) + 1 if len(a) else 0):
                sel = nth == k
                grown = shapely.buffer(geoms[b[sel]], tol * _SHRINK)
                inner[a[sel]] = shapely.difference(inner[a[sel]], grown)
            # a safety net under the buffer's arithmetic: inside the grid and (arcs drawn
            # as chords included) clear of its boundary and of overlapping grids by more
            # than the tolerance; a copy that fails is dropped (its points take the exact path)
            ok = shapely.is_empty(inner) | (
                shapely.within(inner, geoms)
                & (shapely.distance(shapely.boundary(inner), self.boundaries) >= tol * _CHECK)
            )
            ok[a[shapely.distance(inner[a], geoms[b]) < tol * _CHECK]] = False
            inner[~ok] = shapely.Polygon()
            self._inner = _PreparedCopies(inner)
            return self._inner

    def _locate_with(
        self,
        prepared: np.ndarray,
        inner: np.ndarray | None,
        px: np.ndarray,
        py: np.ndarray,
        boundary_distance: bool,
    ) -> _Answer:
        """:meth:`locate` with prepared copies of the grids that this call alone uses."""
        n = len(px)
        points = shapely.points(px, py)
        # bounding boxes from the tree, then the prepared polygons (faster than the tree's
        # own `intersects` predicate, which does not use the prepared geometries)
        pi, gi = self.tree.query(points)
        if inner is None:
            return self._exact(prepared, px, py, points, pi, gi)
        # the common case: deep inside one grid (inside its shrunk copy)
        hit = shapely.intersects_xy(inner[gi], px[pi], py[pi])
        deep_p, deep_g = pi[hit], gi[hit]
        deep = np.zeros(n, dtype=bool)
        deep[deep_p] = True
        if len(deep_p) == n:
            rest = np.empty(0, dtype=np.int64)
        else:
            rest = np.flatnonzero(~deep)
        ans = _Answer.empty(n)
        ans.grid_idx[deep_p] = deep_g
        ans.near_idx[deep_p] = deep_g
        ans.inside[deep_p] = True
        ans.near_dist[deep_p] = 0.0
        codes = self.codes[deep_g].tolist()
        ans.candidates[deep_p] = np.fromiter(
            map(list, zip(codes, strict=True)), dtype=object, count=len(codes)
        )
        if boundary_distance:
            ans.dist_boundary[deep_p] = shapely.distance(self.boundaries[deep_g], points[deep_p])
        if len(rest):
            local = np.full(n, -1, dtype=np.int64)
            local[rest] = np.arange(len(rest))
            keep = ~deep[pi]
            sub = self._exact(
                prepared,
                px[rest],
                py[rest],
                points[rest],
                local[pi[keep]],
                gi[keep],
            )
            ans.put(rest, sub)
        return ans

    def _exact(
        self,
        prepared: np.ndarray,
        px: np.ndarray,
        py: np.ndarray,
        points: np.ndarray,
        pi: np.ndarray,
        gi: np.ndarray,
    ) -> _Answer:
        """Answer points from their bounding-box pairs ``(pi, gi)``, every rule applied."""
        n = len(px)
        # covering pairs (for a point, intersects == covered by), then the few points
        # near an edge or outside every grid get the wider `dwithin` query
        hit = shapely.intersects_xy(prepared[gi], px[pi], py[pi])
        pi, gi = pi[hit], gi[hit]
        covered = np.ones(len(pi), dtype=bool)
        dist_b = shapely.distance(self.boundaries[gi], points[pi])
        if self.tolerance > 0:
            need = np.ones(n, dtype=bool)
            need[pi[dist_b > self.tolerance]] = False  # deep inside a covering grid
            need[pi[dist_b <= self.tolerance]] = True
            rows = np.flatnonzero(need)
            if len(rows):
                qi, qg = self.tree.query(points[rows], predicate="dwithin", distance=self.tolerance)
                qi = rows[qi]
                keep = ~need[pi]
                pi = np.concatenate([pi[keep], qi])
                gi = np.concatenate([gi[keep], qg])
                covered = np.concatenate(
                    [covered[keep], shapely.intersects(prepared[qg], points[qi])]
                )
                dist_b = np.concatenate(
                    [dist_b[keep], shapely.distance(self.boundaries[qg], points[qi])]
                )
        dist_poly = np.where(covered, 0.0, dist_b)
        rank = self.rank[gi]
        ans = _Answer.empty(n)

        # candidates: grouped by point, sorted by code (lists built in C for 0/1 hits)
        order = np.lexsort((rank, pi))
        codes_s = self.codes[gi[order]]
        counts = np.bincount(pi, minlength=n)
        starts = np.cumsum(counts) - counts
        ans.candidates[:] = _group_lists(codes_s, starts, counts)
        ans.on_boundary[:] = counts > 1

        # primary: covering grid with the smallest code, else nearest within tolerance
        order = np.lexsort((rank, dist_poly, ~covered, pi))
        pi_p = pi[order]
        first = np.ones(len(pi_p), dtype=bool)
        first[1:] = pi_p[1:] != pi_p[:-1]
        sel = order[first]
        found = np.zeros(n, dtype=bool)
        found[pi[sel]] = True
        ans.grid_idx[pi[sel]] = gi[sel]
        ans.inside[pi[sel]] = covered[sel]
        ans.dist_boundary[pi[sel]] = dist_b[sel]
        ans.near_idx[pi[sel]] = gi[sel]
        ans.near_dist[pi[sel]] = dist_poly[sel]

        # points outside every grid: nearest grid, ties to the smallest code
        lost = np.flatnonzero(~found)
        if len(lost):
            tree, owner = self._edges()
            (qi, qe), qd = tree.query_nearest(points[lost], return_distance=True, all_matches=True)
            qg = owner[qe]
            o = np.lexsort((self.rank[qg], qi))
            keep = np.ones(len(o), dtype=bool)
            keep[1:] = qi[o][1:] != qi[o][:-1]
            o = o[keep]
            ans.near_idx[lost[qi[o]]] = qg[o]
            ans.near_dist[lost[qi[o]]] = qd[o]
        return ans

    def _frame(self, ans: _Answer) -> pd.DataFrame:
        """Return the :meth:`locate` frame of an answer."""
        return pd.DataFrame(
            {
                "grid_code": pd.Series(self._codes_none[ans.grid_idx], dtype=object),
                "inside": ans.inside,
                "on_boundary": ans.on_boundary,
                "candidates": pd.Series(ans.candidates, dtype=object),
                "distance_to_boundary": ans.dist_boundary,
                "nearest_grid": pd.Series(self._codes_none[ans.near_idx], dtype=object),
                "nearest_distance": ans.near_dist,
            }
        )

    def locate_lonlat(
        self, lon: Any, lat: Any, crs: Any = "wgs84", *, method: Method = "iter"
    ) -> pd.DataFrame:
        """Find the grid of each lon/lat point given in any geographic CRS.

        Coordinates are validated (:func:`gridmap.crs.check_lonlat`), converted
        to WGS84 (GCJ-02 and BD-09 de-offset, CGCS2000 taken as WGS84) and then
        projected to the index CRS.

        Parameters
        ----------
        lon, lat : float or array-like
            Degrees, longitude first.
        crs : str, int, pyproj.CRS, default "wgs84"
            CRS of the input: ``"wgs84"``, ``"gcj02"`` (AMap, Tencent, WeChat),
            ``"bd09"`` (Baidu), ``"cgcs2000"`` or an EPSG code.
        method : {"iter", "onestep"}
            Inverse used for GCJ-02/BD-09 (see :func:`gridmap.crs.transform`).

        Returns
        -------
        pandas.DataFrame
            As :meth:`locate`.

        Raises
        ------
        CoordinateError
            For NaN, out-of-range or swapped coordinates.

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> from gridmap.crs import from_wgs84
        >>> x0, y0 = from_wgs84(118.780, 32.050, 4549)
        >>> x1, y1 = from_wgs84(118.790, 32.060, 4549)
        >>> cell = shapely.box(x0, y0, x1, y1)
        >>> index = GridIndex(gpd.GeoDataFrame({"grid_code": ["N1"]}, geometry=[cell], crs=4549))
        >>> index.locate_lonlat(118.7907, 32.0525, "gcj02").grid_code.tolist()
        ['N1']
        """
        spec = parse_crs(crs)
        if spec.is_geographic:
            check_lonlat(lon, lat)
        x, y = transform(lon, lat, spec, self.crs, method=method, validate=False)
        return self.locate(x, y)

    def locate_one(self, x: float, y: float) -> dict[str, Any]:
        """Locate a single point (index CRS); a dict with the :meth:`locate` columns.

        Parameters
        ----------
        x, y : float
            Projected coordinates in metres.

        Returns
        -------
        dict

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> grids = gpd.GeoDataFrame(
        ...     {"grid_code": ["A"]}, geometry=[shapely.box(0, 0, 10, 10)], crs=4549
        ... )
        >>> GridIndex(grids).locate_one(13.0, 14.0)["nearest_distance"]
        5.0
        """
        if np.ndim(x) != 0 or np.ndim(y) != 0:
            raise CoordinateError("locate_one takes one point (two floats); use locate for arrays")
        row = self.locate([x], [y]).iloc[0]
        out: dict[str, Any] = {}
        for col in LOCATE_COLUMNS:
            v = row[col]
            if isinstance(v, np.bool_):
                v = bool(v)
            elif isinstance(v, np.floating):
                v = float(v)
            elif col == "candidates":
                v = list(v)
            out[col] = v
        return out
