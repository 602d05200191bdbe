"""A day's walking route: the order in which one worker visits the day's households.

:func:`plan_route` orders the stops (buildings of the day's due visits, as
points) into a closed walk that starts and ends at the worker's home (or, with
no home, at the first stop), keeping the walk short on the road network
(:class:`~gridmap.visits.network.RoadNetwork`):

1. the walking-distance matrix over the network (straight connectors from each
   stop to its nearest road; straight lines where no road connects, and
   between stops closer than ``direct_within``);
2. a nearest-neighbour tour from the start, and the tour in list order;
3. each improved by 2-opt (reverse a stretch) and Or-opt (move a run of 1–3
   stops, either way round) until no move shortens it — best improvement first,
   ties to the lowest index, so the result is deterministic;
4. the shorter of the two improved tours (so the route is never longer than
   visiting in list order).

The :class:`Route` carries its own yardsticks: ``list_order_m`` (the walk in
the given order) and ``lower_bound_m`` (the minimum spanning tree over the
same distance matrix: no closed walk through every stop can be shorter).
With 40 stops this takes a few tens of milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.sparse.csgraph import minimum_spanning_tree

from gridmap.errors import CRSError, LayerError
from gridmap.visits.network import Distances, RoadNetwork, _xy

__all__ = [
    "Route",
    "plan_route",
    "route_stops",
    "tour_length",
    "mst_bound",
]

_EPS = 1e-7


@dataclass(frozen=True)
class Route:
    """A closed walking route through one day's stops.

    Attributes
    ----------
    order : numpy.ndarray
        Indexes into the given stops, in visiting order.
    ids : list
        The stops' ids in visiting order.
    legs_m : numpy.ndarray
        Leg lengths (metres): start → first stop, …, last stop → start.
    total_m : float
        Sum of ``legs_m``.
    list_order_m : float
        Length of the same closed walk visiting the stops in the given order.
    lower_bound_m : float
        Minimum spanning tree of the start and the stops (a lower bound).
    geometry : shapely.MultiLineString
        The walked path, one line per leg (empty without legs).
    start : shapely.Point or None
        The home (or the first stop).
    home : bool
        Whether the walk starts at the worker's home.
    stops : geopandas.GeoDataFrame
        The stops in visiting order: ``seq`` (1-based), ``stop`` (input index),
        ``id``, ``leg_m`` (walk to this stop), ``cum_m`` and the point.
    crs : pyproj.CRS or None
    """

    order: np.ndarray
    ids: list[Any]
    legs_m: np.ndarray
    total_m: float
    list_order_m: float
    lower_bound_m: float
    geometry: shapely.MultiLineString
    start: shapely.Point | None
    home: bool
    stops: gpd.GeoDataFrame
    crs: pyproj.CRS | None = None
    leg_geometries: list[shapely.LineString] = field(default_factory=list, repr=False)

    @property
    def n_stops(self) -> int:
        """Number of stops."""
        return len(self.order)

    def summary(self) -> dict[str, Any]:
        """Figures for a report or an API response (lengths in metres, rounded).

        Examples
        --------
        >>> s = plan_route([]).summary()
        >>> s["stops"], s["total_m"], s["vs_list_order"]
        (0, 0.0, None)
        """
        return {
            "stops": self.n_stops,
            "total_m": round(self.total_m, 1),
            "list_order_m": round(self.list_order_m, 1),
            "lower_bound_m": round(self.lower_bound_m, 1),
            "vs_list_order": round(self.total_m / self.list_order_m, 4)
            if self.list_order_m > 0
            else None,
            "vs_lower_bound": round(self.total_m / self.lower_bound_m, 4)
            if self.lower_bound_m > 0
            else None,
        }


# --------------------------------------------------------------------------- tours


def tour_length(matrix: np.ndarray, tour: Sequence[int] | np.ndarray) -> float:
    """Length of the closed tour ``tour`` (returning to its first node).

    Examples
    --------
    >>> import numpy as np
    >>> d = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]], dtype=float)
    >>> tour_length(d, [0, 1, 2]), tour_length(d, [0, 2, 1])
    (4.0, 4.0)
    """
    t = np.asarray(tour, dtype=np.int64)
    if len(t) < 2:
        return 0.0
    return float(matrix[t, np.roll(t, -1)].sum())


def mst_bound(matrix: np.ndarray) -> float:
    """Weight of a minimum spanning tree of the complete graph ``matrix`` (a tour lower bound).

    Examples
    --------
    >>> import numpy as np
    >>> mst_bound(np.array([[0, 3, 4], [3, 0, 5], [4, 5, 0]], dtype=float))
    7.0
    """
    k = len(matrix)
    if k < 2:
        return 0.0
    m = np.array(matrix, dtype=float)
    off = ~np.eye(k, dtype=bool)
    m[off & (m <= 0)] = 1e-12  # csgraph reads zeros as "no edge"
    return float(minimum_spanning_tree(np.triu(m)).sum())


def _nearest_neighbour(d: np.ndarray) -> np.ndarray:
    k = len(d)
    tour = [0]
    free = np.ones(k, dtype=bool)
    free[0] = False
    for _ in range(k - 1):
        row = np.where(free, d[tour[-1]], np.inf)
        nxt = int(np.argmin(row))  # ties: lowest index
        tour.append(nxt)
        free[nxt] = False
    return np.asarray(tour, dtype=np.int64)


def _two_opt(d: np.ndarray, tour: np.ndarray) -> tuple[np.ndarray, bool]:
    """One best-improvement 2-opt move (reverse tour[i..j], 1 ≤ i < j ≤ n-1), if any."""
    n = len(tour)
    if n < 4:
        return tour, False
    nxt = np.roll(tour, -1)
    prv = np.roll(tour, 1)
    delta = (
        d[prv[:, None], tour[None, :]]
        + d[tour[:, None], nxt[None, :]]
        - d[prv, tour][:, None]
        - d[tour, nxt][None, :]
    )
    i, j = np.indices((n, n))
    valid = (i >= 1) & (j > i)
    delta = np.where(valid, delta, np.inf)
    flat = int(np.argmin(delta))
    if not delta.flat[flat] < -_EPS:
        return tour, False
    a, b = divmod(flat, n)
    out = tour.copy()
    out[a : b + 1] = out[a : b + 1][::-1]
    return out, True


def _or_opt(d: np.ndarray, tour: np.ndarray) -> tuple[np.ndarray, bool]:
    """One best-improvement Or-opt move (a run of 1–3 stops moved, either way round), if any."""
    n = len(tour)
    best = -_EPS
    move: tuple[int, int, int, bool] | None = None
    for length in (1, 2, 3):
        if n - 1 - length < 1:
            break
        for i in range(1, n - length + 1):
            seg = tour[i : i + length]
            p, q = tour[i - 1], tour[(i + length) % n]
            s0, s1 = seg[0], seg[-1]
            gain = d[p, s0] + d[s1, q] - d[p, q]
            rest = np.concatenate([tour[:i], tour[i + length :]])
            x = rest
            y = np.roll(rest, -1)
            fwd = d[x, s0] + d[s1, y] - d[x, y]
            rev = d[x, s1] + d[s0, y] - d[x, y]
            pos = np.arange(len(rest))
            allowed = pos != (i - 1)  # putting it back where it was
            cost = np.minimum(fwd, rev)
            delta = np.where(allowed, cost - gain, np.inf)
            k = int(np.argmin(delta))
            if delta[k] < best:
                best = float(delta[k])
                move = (i, length, k, bool(rev[k] < fwd[k]))
    if move is None:
        return tour, False
    i, length, k, reverse = move
    seg = tour[i : i + length]
    rest = np.concatenate([tour[:i], tour[i + length :]])
    seg = seg[::-1] if reverse else seg
    out = np.concatenate([rest[: k + 1], seg, rest[k + 1 :]])
    return out.astype(np.int64), True


def _improve(d: np.ndarray, tour: np.ndarray, max_rounds: int) -> np.ndarray:
    for _ in range(max_rounds):
        tour, a = _two_opt(d, tour)
        if a:
            continue
        tour, b = _or_opt(d, tour)
        if not b:
            break
    return tour


# --------------------------------------------------------------------------- routes


def _ids(stops: Any, ids: Sequence[Any] | None, n: int) -> list[Any]:
    if ids is not None:
        out = list(ids)
        if len(out) != n:
            raise LayerError(f"{len(out)} ids for {n} stops")
        return out
    if isinstance(stops, gpd.GeoDataFrame) and "stop_id" in stops.columns:
        return stops["stop_id"].tolist()
    return list(range(n))


def plan_route(
    stops: Any,
    roads: RoadNetwork | gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    *,
    home: Any = None,
    ids: Sequence[Any] | None = None,
    direct_within: float = 50.0,
    margin: float = 1000.0,
    max_rounds: int = 10_000,
) -> Route:
    """Order one worker's stops for the day into a short closed walk.

    Parameters
    ----------
    stops : GeoDataFrame, GeoSeries, sequence of Points/Polygons or (k, 2) array
        The day's stops in a projected CRS (metres); polygons (buildings) are
        replaced by their centroids. Empty → an empty route.
    roads : RoadNetwork, GeoDataFrame or GeoSeries, optional
        The road network (build a :class:`RoadNetwork` once to reuse it), or
        the roads layer (clipped to the stops ± ``margin`` and noded here).
        None: straight lines.
    home : Point or (x, y), optional
        The worker's home; without it the walk starts and ends at the first stop.
    ids : sequence, optional
        Stop ids (default: ``stops["stop_id"]`` if present, else positions).
    direct_within : float, default 50.0
        Stops closer than this walk straight (same building or courtyard).
    margin : float, default 1000.0
        Roads farther than this from every stop are ignored.
    max_rounds : int, default 10000
        Cap on improving moves (never reached in practice).

    Returns
    -------
    Route

    Raises
    ------
    CRSError
        Stops and roads in different CRSs, or in degrees.

    Examples
    --------
    >>> from gridmap.visits.examples import _lattice
    >>> roads = _lattice()  # 100 m street lattice
    >>> x0, y0 = roads.total_bounds[:2]
    >>> stops = [(x0 + 100, y0 + 200), (x0 + 200, y0 + 100), (x0 + 100, y0 + 100),
    ...          (x0 + 200, y0 + 200)]
    >>> r = plan_route(stops, roads, home=(x0 + 100, y0 + 100 - 20))
    >>> r.order.tolist(), round(r.total_m), round(r.list_order_m)
    ([2, 0, 3, 1], 440, 840)
    >>> plan_route([], roads).total_m
    0.0
    """
    crs = getattr(stops, "crs", None)
    pts = _xy(stops)
    n = len(pts)
    stop_ids = _ids(stops, ids, n)
    net: RoadNetwork | None
    if roads is None:
        net = None
    else:
        rcrs = roads.crs
        if crs is not None and rcrs is not None and not pyproj.CRS(crs).equals(pyproj.CRS(rcrs)):
            raise CRSError(
                f"stops are in {pyproj.CRS(crs).name} but roads in {pyproj.CRS(rcrs).name}; "
                "reproject one of them (e.g. roads.to_crs(stops.crs))"
            )
        crs = crs if crs is not None else rcrs
        net = roads if isinstance(roads, RoadNetwork) else None
    if crs is not None and pyproj.CRS.from_user_input(crs).is_geographic:
        raise CRSError("stops are in degrees; reproject to the plan's projected CRS (metres)")
    crs = None if crs is None else pyproj.CRS.from_user_input(crs)
    if n == 0:
        return _empty_route(crs)
    h = None if home is None else _xy([home] if not isinstance(home, tuple) else [home])
    allpts = pts if h is None else np.vstack([h, pts])
    if roads is not None and not isinstance(roads, RoadNetwork) and len(roads):
        x0, y0 = allpts.min(axis=0)
        x1, y1 = allpts.max(axis=0)
        box = shapely.box(x0 - margin, y0 - margin, x1 + margin, y1 + margin)
        near = roads.iloc[np.sort(roads.sindex.query(box, predicate="intersects"))]
        net = RoadNetwork.from_roads(near)
    elif net is not None:
        x0, y0 = allpts.min(axis=0)
        x1, y1 = allpts.max(axis=0)
        net = net.clip((x0, y0, x1, y1), margin)
    dist = (
        net.distances(allpts, direct_within=direct_within)
        if net is not None
        else RoadNetwork(np.zeros((0, 2)), np.zeros((0, 2), np.int64), np.zeros(0)).distances(
            allpts
        )
    )
    d = dist.matrix
    off = 1 if h is not None else 0
    listed = np.arange(len(allpts), dtype=np.int64)
    if len(allpts) <= 3:
        best = listed
    else:
        a = _improve(d, _nearest_neighbour(d), max_rounds)
        b = _improve(d, listed, max_rounds)
        best = a if tour_length(d, a) <= tour_length(d, b) + _EPS else b
    return _route(best, dist, off, stop_ids, crs, h is not None, pts)


def _empty_route(crs: pyproj.CRS | None) -> Route:
    stops = gpd.GeoDataFrame(
        {
            "seq": pd.Series([], dtype=np.int64),
            "stop": pd.Series([], dtype=np.int64),
            "id": pd.Series([], dtype=object),
            "leg_m": pd.Series([], dtype=float),
            "cum_m": pd.Series([], dtype=float),
        },
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )
    return Route(
        order=np.zeros(0, dtype=np.int64),
        ids=[],
        legs_m=np.zeros(0),
        total_m=0.0,
        list_order_m=0.0,
        lower_bound_m=0.0,
        geometry=shapely.MultiLineString(),
        start=None,
        home=False,
        stops=stops,
        crs=crs,
    )


def _route(
    tour: np.ndarray,
    dist: Distances,
    off: int,
    stop_ids: list[Any],
    crs: pyproj.CRS | None,
    home: bool,
    pts: np.ndarray,
) -> Route:
    d = dist.matrix
    k = len(d)
    nxt = np.roll(tour, -1)
    legs = d[tour, nxt] if k > 1 else np.zeros(0)
    geoms = [dist.path(int(a), int(b)) for a, b in zip(tour, nxt, strict=True)] if k > 1 else []
    order = tour[off:] - off if home else tour.copy()
    # the leg arriving at each stop; with no home the walk starts at the first stop (0 m)
    if home:
        arrive = legs[:-1]
    else:
        arrive = np.r_[0.0, legs[:-1]] if k > 1 else np.zeros(1)
    frame = gpd.GeoDataFrame(
        {
            "seq": np.arange(1, len(order) + 1, dtype=np.int64),
            "stop": order.astype(np.int64),
            "id": [stop_ids[i] for i in order],
            "leg_m": arrive[: len(order)],
            "cum_m": np.cumsum(arrive[: len(order)]),
        },
        geometry=list(shapely.points(pts[order])),
        crs=crs,
    )
    return Route(
        order=order.astype(np.int64),
        ids=[stop_ids[i] for i in order],
        legs_m=np.asarray(legs, dtype=float),
        total_m=float(np.sum(legs)),
        list_order_m=tour_length(d, np.arange(k)),
        lower_bound_m=mst_bound(d),
        geometry=shapely.MultiLineString(geoms) if geoms else shapely.MultiLineString(),
        start=shapely.Point(dist.points[0]),
        home=home,
        stops=frame,
        crs=crs,
        leg_geometries=geoms,
    )


def route_stops(
    due: pd.DataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    staff_id: str,
    statuses: Sequence[str] = ("due", "overdue"),
    limit: int | None = None,
) -> gpd.GeoDataFrame:
    """Return the stops of one person's open visits: one per building, at the building's centroid.

    Parameters
    ----------
    due : pandas.DataFrame
        Output of :func:`gridmap.visits.due.due_visits`.
    buildings : geopandas.GeoDataFrame
        The buildings layer (``building_id``, footprints).
    staff_id : str
        The person.
    statuses : sequence of str, default ("due", "overdue")
        Which rows to visit.
    limit : int, optional
        At most this many stops (overdue first, then by period end, then
        building id), e.g. a day's worth.

    Returns
    -------
    geopandas.GeoDataFrame
        ``stop_id`` (the building id), ``visits`` (rows served), ``visit_ids``
        and ``household_ids`` (joined by ';'), point geometry. Empty when the
        person has nothing open (then :func:`plan_route` gives an empty route).

    Examples
    --------
    >>> from gridmap.visits.due import due_visits
    >>> from gridmap.visits.examples import _example
    >>> ex = _example()
    >>> due = due_visits(ex.plan, ex.households, ex.buildings, period="2026-09",
    ...                  records=ex.records)
    >>> route_stops(due, ex.buildings, staff_id="S1")[["stop_id", "visits"]].values.tolist()
    [['B1', 1], ['B2', 1], ['B3', 1]]
    """
    rows = due[(due["staff_id"] == staff_id) & due["status"].isin(list(statuses))]
    cols = ["stop_id", "visits", "visit_ids", "household_ids"]
    if len(rows) == 0:
        return gpd.GeoDataFrame(
            {c: pd.Series([], dtype=object) for c in cols},
            geometry=gpd.GeoSeries([], crs=buildings.crs),
            crs=buildings.crs,
        )
    rows = rows.assign(_over=(rows["status"] != "overdue").astype(int))
    g = rows.groupby("building_id", sort=True)
    out = pd.DataFrame(
        {
            "stop_id": g.size().index.astype(str),
            "visits": g.size().to_numpy(),
            "visit_ids": g["visit_id"].agg(";".join).to_numpy(),
            "household_ids": g["household_id"]
            .agg(lambda s: ";".join(s.dropna().astype(str)))
            .to_numpy(),
            "_over": g["_over"].min().to_numpy(),
            "_end": g["period_end"].min().to_numpy(),
        }
    )
    out = out.sort_values(["_over", "_end", "stop_id"], kind="stable")
    if limit is not None:
        out = out.head(limit)
    out = out.sort_values("stop_id", kind="stable")
    pos = pd.Index(buildings["building_id"].astype(str)).get_indexer(out["stop_id"])
    if (pos < 0).any():
        raise LayerError(
            f"buildings {out['stop_id'][pos < 0].tolist()[:5]} of the due list are not in the "
            "buildings layer; pass the buildings the plan was made from"
        )
    geom = buildings.geometry.iloc[pos].centroid.to_numpy()
    return gpd.GeoDataFrame(
        out[cols].reset_index(drop=True), geometry=list(geom), crs=buildings.crs
    )
