"""The service's in-memory view of the published plans: grid indexes and staff, little else.

:class:`Locator` loads every published plan from the store (one per area) and keeps
for each a :class:`~gridmap.locate.GridIndex` (a shapely STRtree over the grid
polygons), the grid attributes, the staff posts and the communities: a few
thousand rows in a whole city. ``/locate`` and ``/locate/batch`` are answered from
this snapshot, so locating a point never touches the database.

What is large and rarely read is not held as Python objects: households (millions
in a city), residents near a point and buildings are read from the store when
asked (:meth:`Area.buildings_near`, :meth:`Area.residents`, :attr:`Area.buildings`;
PostGIS: ``&&`` on the GiST index; SQLite: compact bounding-box arrays,
:class:`~gridmap.db.spatial.BuildingBoxes`, then the primary key), and so is a
plan's building membership (:attr:`Area.plan`, loaded for a map on first use).

:meth:`Locator.refresh` rebuilds the snapshot (the lifespan calls it at start-up;
the plans router after a publish; a watcher when another process publishes) and
swaps it in atomically: a request in flight keeps the snapshot it started with.
An area whose plan version did not change is kept as it is, so a publish rebuilds
only the plan it changed, and the old areas are freed (and their memory given
back to the system) right after the swap.

Several worker processes share one snapshot when they are forked from a parent
that loaded it (:func:`preload`, then :func:`adopt` in each worker: ``gridmap
serve --workers N``): its arrays and trees are shared copy-on-write, and each
worker rebuilds in its own memory only the plans published after the fork.

Several published plans (areas) are searched together: a point on the edge
between two areas gets the candidates of both, and the same deterministic rules
as :class:`~gridmap.locate.GridIndex` (covering grid with the smallest code; else
the nearest grid, ties to the smallest code).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import gc
import logging
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.crs import (
    CRSSpec,
    parse_crs,
    transform,
    transform_geometries,
    transformer,
)
from gridmap.db import Store, get_plan, list_plans
from gridmap.db.plans import PlanRecord
from gridmap.db.spatial import (
    RESIDENT_COLUMNS,
    BuildingBoxes,
    building_boxes,
    buildings_in_box,
    households_of,
    load_area_layers,
    load_served_plan,
    near_point,
    newest_import,
)
from gridmap.errors import CoordinateError, CRSError, NotFoundError
from gridmap.locate import LOCATE_COLUMNS, GridIndex

__all__ = [
    "Area",
    "Locator",
    "Snapshot",
    "ID_MAX",
    "adopt",
    "api_crs",
    "check_coordinates",
    "preload",
]

_log = logging.getLogger(__name__)

_GRID_ATTRS = ("grid_code", "community_id", "name", "households", "boundary_desc")
#: Largest id of a stored row (the id columns are 32-bit integers on PostgreSQL).
ID_MAX = 2**31 - 1

#: Columns of :meth:`Area.buildings_near`.
_NEAR_COLUMNS = ["building_id", "name", "use", "households", "grid_code", "distance_m"]

#: Stand-in coordinate (m) for points that cannot be projected into a plan's CRS.
_FAR = 1e12

_COMMUNITY_ATTRS = (
    "community_id",
    "name",
    "code",
    "street",
    "street_code",
    "district",
    "district_code",
)


@functools.lru_cache(maxsize=256)
def _parse_crs_cached(name: str) -> CRSSpec:
    return parse_crs(name)


@functools.lru_cache(maxsize=64)
def _to_wgs84(name: str) -> pyproj.Transformer:
    """Return the transformer from a CRS named in a request (pyproj kinds) to WGS84."""
    return transformer(api_crs(name).pyproj_crs, 4326)


def api_crs(crs: Any) -> CRSSpec:
    """Parse the CRS of a located point; refuse CRSs without horizontal x/y (or lon/lat).

    Parameters
    ----------
    crs : str, int or CRSSpec
        ``wgs84``, ``gcj02``, ``bd09``, ``cgcs2000`` or ``EPSG:nnnn`` (names cached).

    Returns
    -------
    CRSSpec

    Raises
    ------
    CRSError
        Unknown CRS, or one that is vertical, geocentric or otherwise not 2D
        horizontal (e.g. ``EPSG:5773``, a height system).

    Examples
    --------
    >>> api_crs("gcj02").name
    'gcj02'
    >>> api_crs("EPSG:5773")
    Traceback (most recent call last):
    ...
    gridmap.errors.CRSError: EPSG:5773 (EGM96 height) is not a horizontal CRS; ...
    """
    spec = _parse_crs_cached(crs) if isinstance(crs, str) else parse_crs(crs)
    pc = spec.pyproj_crs
    if spec.kind == "pyproj" and pc is not None:
        if pc.is_geocentric or not (pc.is_geographic or pc.is_projected):
            raise CRSError(
                f"{spec.name} ({pc.name}) is not a horizontal CRS; a point is located from "
                "lon/lat or projected x/y: use wgs84, gcj02, bd09, cgcs2000 or the EPSG code "
                "of a geographic or projected CRS"
            )
    return spec


def check_coordinates(lon: np.ndarray, lat: np.ndarray, spec: CRSSpec) -> np.ndarray:
    """Return one message per point (``""`` when valid): NaN, out of range, swapped.

    Parameters
    ----------
    lon, lat : numpy.ndarray
        Coordinates (longitude/x first).
    spec : CRSSpec
        Their CRS (range checks only for geographic CRSs).

    Returns
    -------
    numpy.ndarray of str

    Examples
    --------
    >>> import numpy as np
    >>> from gridmap.crs import parse_crs
    >>> check_coordinates(np.array([118.8, 32.0]), np.array([32.0, 118.8]), parse_crs("wgs84"))[1]
    'latitude 118.8 is out of [-90, 90]; looks like lat/lon are swapped: pass lon first'
    """
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    out = np.full(x.shape, "", dtype=object)
    finite = np.isfinite(x) & np.isfinite(y)
    out[~finite] = "coordinate is NaN or infinite; send numbers for lon and lat"
    if spec.is_geographic:
        with np.errstate(invalid="ignore"):
            lat_bad = finite & (np.abs(y) > 90)
            lon_bad = finite & (np.abs(x) > 180) & ~lat_bad
            swappable = (np.abs(x) <= 90) & (np.abs(y) <= 180)
        for i in np.flatnonzero(lat_bad):
            msg = f"latitude {float(y[i])!r} is out of [-90, 90]"
            out[i] = msg + (
                "; looks like lat/lon are swapped: pass lon first"
                if swappable[i]
                else "; are these projected metres? then pass their EPSG code as crs"
            )
        for i in np.flatnonzero(lon_bad):
            out[i] = (
                f"longitude {float(x[i])!r} is out of [-180, 180]; are these projected metres? "
                "then pass their EPSG code as crs"
            )
    elif finite.any():  # projected x/y: they must map to a place on Earth
        with np.errstate(invalid="ignore", over="ignore"):
            wx, wy = transform(
                np.where(finite, x, 0.0), np.where(finite, y, 0.0), spec, "wgs84", validate=False
            )
            wx, wy = np.asarray(wx, np.float64), np.asarray(wy, np.float64)
            off = finite & ~(np.isfinite(wx) & np.isfinite(wy) & (np.abs(wy) <= 90))
        for i in np.flatnonzero(off):
            out[i] = (
                f"x={float(x[i])!r}, y={float(y[i])!r} is outside the area {spec.name} can "
                "describe; check the crs and that x (easting) comes first"
            )
    return out


@dataclass
class Area:
    """One published (or requested) plan and what the service keeps of it in memory.

    Grids, staff posts and communities are held (a few per thousand households);
    buildings, households and the plan's building memberships are read from the
    store when asked.

    Attributes
    ----------
    record : PlanRecord
        The stored plan's metadata.
    crs : pyproj.CRS
        The plan's projected CRS.
    index : GridIndex
        Point → grid index over the plan's grids.
    grids : geopandas.GeoDataFrame
        Grids (projected) with their attributes, in index order.
    grids_wgs84 : geopandas.GeoDataFrame
        The same in WGS84, for GeoJSON.
    communities : geopandas.GeoDataFrame or None
        The plan's communities (WGS84) with names and codes.
    staff : dict
        ``grid_code`` → list of ``{staff_id, name, phone, role}`` (chief first).
    store : Store or None
        Where buildings, households and memberships are read from.
    assignments : pandas.DataFrame or None
        The plan's staff posts (``staff_id, grid_code, role``).
    boxes : BuildingBoxes or None
        Bounding boxes of the buildings (SQLite only: PostGIS has its GiST index).
    """

    record: PlanRecord
    crs: pyproj.CRS
    index: GridIndex
    grids: gpd.GeoDataFrame
    grids_wgs84: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame | None = None
    staff: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    store: Store | None = None
    assignments: pd.DataFrame | None = None
    boxes: BuildingBoxes | None = None
    _community_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    _to_plan_crs: pyproj.Transformer | None = None
    _to_wgs84: pyproj.Transformer | None = None
    _plan: Any = None
    _plan_lock: threading.Lock = field(default_factory=threading.Lock)

    def _transformer(self) -> pyproj.Transformer:
        """WGS84 → plan CRS (:func:`gridmap.crs.transformer`: one per process and pair)."""
        if self._to_plan_crs is None:
            self._to_plan_crs = transformer(4326, self.crs)
        return self._to_plan_crs

    def _from_plan_crs(self) -> pyproj.Transformer:
        """Plan CRS → WGS84 (as :meth:`_transformer`)."""
        if self._to_wgs84 is None:
            self._to_wgs84 = transformer(self.crs, 4326)
        return self._to_wgs84

    def locate_xy(self, x: float, y: float) -> dict[str, Any]:
        """Locate one projected point with the rules of :meth:`GridIndex.locate` (no pandas).

        Returns
        -------
        dict
            ``row`` (of ``grid_code``, else of the nearest grid), ``found``,
            ``inside``, ``candidates`` (rows, by code), ``distance_to_boundary``,
            ``nearest_distance``.
        """
        # thread safety: the index's tree, boundaries and ranks are only read; the
        # point-in-polygon tests run on prepared polygons leased to this call
        index = self.index
        tree, boundaries, rank = index.tree, index.boundaries, index.rank
        pt = shapely.points(np.array((x, y)))  # as shapely.Point(x, y), in 2/3 of the time
        tol = self.index.tolerance
        # the common case first: deep inside the grid(s) covering it (bounding boxes, then
        # the prepared polygons); no other grid can then be within the tolerance. The tree
        # is asked with a one-point array (a scalar costs it 2 µs of wrapping, per request)
        one = np.empty(1, dtype=object)
        one[0] = pt
        box = tree.query(one)[1]
        if len(box):
            hits = box[index.covers_xy(box, x, y)]
            if len(hits) == 1:  # one grid: no ranking by code
                row = int(hits[0])
                d = float(boundaries[row].distance(pt))
                if d > tol:
                    return {
                        "row": row,
                        "found": True,
                        "inside": True,
                        "candidates": [row],
                        "distance_to_boundary": d,
                        "nearest_distance": 0.0,
                    }
            elif len(hits):
                db = shapely.distance(boundaries[hits], pt)
                if db.min() > tol:
                    k = int(np.argmin(rank[hits]))
                    return {
                        "row": int(hits[k]),
                        "found": True,
                        "inside": True,
                        "candidates": [int(h) for h in hits[np.argsort(rank[hits])]],
                        "distance_to_boundary": float(db[k]),
                        "nearest_distance": 0.0,
                    }
        if tol > 0:
            hits = tree.query(pt, predicate="dwithin", distance=tol)
        else:
            hits = tree.query(pt, predicate="intersects")
        if len(hits):
            cov = index.covers_xy(hits, x, y)
            db = shapely.distance(boundaries[hits], pt)
            dpoly = np.where(cov, 0.0, db)
            order = np.lexsort((rank[hits], dpoly, ~cov))
            k = int(order[0])
            return {
                "row": int(hits[k]),
                "found": True,
                "inside": bool(cov[k]),
                "candidates": [int(h) for h in hits[np.argsort(rank[hits])]],
                "distance_to_boundary": float(db[k]),
                "nearest_distance": float(dpoly[k]),
            }
        gi, dist = tree.query_nearest(pt, return_distance=True, all_matches=True)
        k = int(np.argmin(rank[gi]))
        return {
            "row": int(gi[k]),
            "found": False,
            "inside": False,
            "candidates": [],
            "distance_to_boundary": float("nan"),
            "nearest_distance": float(dist[k]),
        }

    def same_crs(self, name: str | None, spec: CRSSpec) -> bool:
        """Whether points given in ``spec`` are already in the plan's CRS (cached by name)."""
        # several request threads may fill this cache at once: single dict operations are
        # atomic under the GIL, and a lost race only computes the same answer twice
        cache = self.__dict__.setdefault("_same_crs", {})
        hit = cache.get(name) if name is not None else None
        if hit is None:
            hit = spec.pyproj_crs is not None and spec.pyproj_crs == self.crs
            if name is not None:
                cache[name] = hit
        return bool(hit)

    @property
    def plan_id(self) -> int:
        """Id of the plan."""
        return self.record.id

    def community_info(self, community_id: Any) -> dict[str, Any]:
        """Names and codes of a community, its sub-district and district (``{}`` if unknown)."""
        if community_id is None:
            return {}
        return self._community_info.get(str(community_id), {})

    @property
    def plan(self) -> Any:
        """The plan (:class:`~gridmap.partition.Plan`) for maps, without household memberships.

        Loaded from the store on first use (grids, building memberships, staff posts,
        report) and kept with the snapshot; ``plan.households`` is None.
        """
        if self._plan is None:
            with self._plan_lock:  # one load, even when two map requests come at once
                if self._plan is None:
                    plan = load_served_plan(self._store(), self.plan_id)
                    # the grids served are the snapshot's (same rows, same order)
                    self._plan = plan.replace(grids=self.grids, assignments=self.assignments)
        return self._plan

    @property
    def buildings(self) -> gpd.GeoDataFrame | None:
        """The plan's buildings (projected) with ``grid_code``, read from the store on each access.

        For maps and the OGC API (which keep what they build); None when the
        plan's communities are not in the store.
        """
        try:
            frames = load_area_layers(
                self._store(), list(self.record.community_ids), ["buildings"], crs=self.crs
            )
        except NotFoundError:
            return None
        b = frames.get("buildings")
        if b is None:
            return None
        members = self.plan.buildings
        if members is not None and len(members):
            first = members.drop_duplicates("building_id").set_index("building_id")
            codes = first["grid_code"].reindex(b["building_id"].to_numpy()).to_numpy()
            return b.assign(grid_code=codes).reset_index(drop=True)
        return b.assign(grid_code=None).reset_index(drop=True)

    def _store(self) -> Store:
        if self.store is None:
            raise NotFoundError(
                f"plan {self.plan_id} is served without its store; build it with build_area"
            )
        return self.store

    def _wgs84_box(self, x: float, y: float, radius: float) -> tuple[float, float, float, float]:
        """WGS84 box holding the projected square of side ``2 radius`` around (x, y)."""
        t = np.linspace(-1.0, 1.0, 9)
        edge = np.concatenate([t, np.ones(9), -t, -np.ones(9)])
        other = np.concatenate([-np.ones(9), t, np.ones(9), -t])
        lon, lat = self._from_plan_crs().transform(x + radius * edge, y + radius * other)
        lon, lat = np.asarray(lon), np.asarray(lat)
        pad_x = 0.01 * float(lon.max() - lon.min()) + 1e-7  # the edges bulge between samples
        pad_y = 0.01 * float(lat.max() - lat.min()) + 1e-7
        return (
            float(lon.min()) - pad_x,
            float(lat.min()) - pad_y,
            float(lon.max()) + pad_x,
            float(lat.max()) + pad_y,
        )

    def buildings_near(self, x: float, y: float, radius: float) -> pd.DataFrame:
        """Return the buildings within ``radius`` metres of a projected point, nearest first.

        Read from the store: on PostGIS the GiST index finds the buildings whose
        box meets the search square; on SQLite the area's :class:`BuildingBoxes`
        name them and the primary key reads them. Distances are measured in the
        plan's CRS, to the building's outline (0 inside it).

        Returns
        -------
        pandas.DataFrame
            ``building_id, name, use, households, grid_code, distance_m``.
        """
        if self.store is None:
            return pd.DataFrame(columns=_NEAR_COLUMNS)
        with self.store.session() as s:
            return self._buildings_near(s, x, y, radius)

    def nearby(
        self,
        x: float,
        y: float,
        radius: float,
        *,
        audit: Callable[[Any, pd.DataFrame, pd.DataFrame], None] | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return the buildings near a projected point and their households.

        As :meth:`buildings_near` then :meth:`residents`, with fewer round trips to
        the store: on PostGIS one query reads both (:func:`~gridmap.db.spatial.near_point`)
        and ``audit`` writes its row in the same transaction; on SQLite the box
        arrays name the buildings, the primary key and the ``building_id`` index read
        them, and ``audit`` runs in a write transaction of its own after the read.

        Parameters
        ----------
        x, y : float
            The point in the plan's CRS.
        radius : float
            Metres.
        audit : callable, optional
            ``audit(session, buildings, households)``: writes the audit row of the read
            (the answer is given only once it is written).

        Returns
        -------
        (pandas.DataFrame, pandas.DataFrame)
            The buildings (nearest first) and their households (stored order).
        """
        if self.store is None:
            near = pd.DataFrame(columns=_NEAR_COLUMNS)
            return near, pd.DataFrame(columns=list(RESIDENT_COLUMNS))
        if self.store.backend == "postgresql":
            lon, lat = self._from_plan_crs().transform(x, y)
            with self.store.session(write=audit is not None) as s:
                found, hh = near_point(
                    s,
                    self.plan_id,
                    self._wgs84_box(x, y, radius),
                    centre=(float(lon), float(lat)),
                    radius=radius,
                    communities=self._communities(),
                )
                near = self._within(found, x, y, radius)
                hh = hh[hh["building_id"].isin(set(near["building_id"]))].reset_index(drop=True)
                if audit is not None:
                    audit(s, near, hh)
            return near, hh
        with self.store.session() as s:
            near = self._buildings_near(s, x, y, radius)
            if len(near):
                ids = [str(b) for b in near["building_id"]]
                hh = households_of(s, self.plan_id, ids, communities=self._communities())
            else:
                hh = pd.DataFrame(columns=list(RESIDENT_COLUMNS))
        if audit is not None:
            with self.store.session(write=True) as s:
                audit(s, near, hh)
        return near, hh

    def _communities(self) -> frozenset[str]:
        return frozenset(str(c) for c in self.record.community_ids)

    def _buildings_near(self, s: Any, x: float, y: float, radius: float) -> pd.DataFrame:
        box = self._wgs84_box(x, y, radius)
        comms = self._communities()
        if s.get_bind().dialect.name == "postgresql":
            found = buildings_in_box(s, self.plan_id, box, communities=comms)
        else:
            ids = self.boxes.query(box) if self.boxes is not None else np.array([])
            if not len(ids):
                return pd.DataFrame(columns=_NEAR_COLUMNS)
            found = buildings_in_box(s, self.plan_id, box, ids=ids.tolist(), communities=comms)
        return self._within(found, x, y, radius)

    def _within(self, found: pd.DataFrame, x: float, y: float, radius: float) -> pd.DataFrame:
        """Keep the buildings within ``radius`` of (x, y) in the plan's CRS, nearest first."""
        if not len(found):
            return pd.DataFrame(columns=_NEAR_COLUMNS)
        geoms = shapely.transform(
            np.asarray(found["geom"].to_numpy(), dtype=object),
            self._transformer().transform,
            interleaved=False,
        )
        dist = shapely.distance(geoms, shapely.Point(x, y))
        keep = dist <= radius
        if not keep.any():
            return pd.DataFrame(columns=_NEAR_COLUMNS)
        out = found.loc[keep, _NEAR_COLUMNS[:-1]].assign(distance_m=np.round(dist[keep], 2))
        return out.sort_values(["distance_m", "building_id"], kind="stable").reset_index(drop=True)

    def residents(self, building_ids: Any) -> pd.DataFrame:
        """Return the households of some of the plan's buildings, read from the store.

        Personal data (the sensitive flags): the caller checks the role and audits.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`~gridmap.db.spatial.RESIDENT_COLUMNS`, in stored order.
        """
        ids = [str(b) for b in building_ids]
        if self.store is None or not ids:
            return pd.DataFrame(columns=list(RESIDENT_COLUMNS))
        return households_of(self.store, self.plan_id, ids, communities=self._communities())


def _community_table(communities: gpd.GeoDataFrame | None) -> dict[str, dict[str, Any]]:
    if communities is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for row in pd.DataFrame(communities.drop(columns=communities.geometry.name)).to_dict("records"):
        out[str(row["community_id"])] = {
            k: (None if _missing(row.get(k)) else str(row.get(k))) for k in _COMMUNITY_ATTRS
        }
    return out


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _staff_posts(plan: Any, staff: gpd.GeoDataFrame | None) -> dict[str, list[dict[str, Any]]]:
    """``grid_code`` → staff posts (chief first, then workers by staff id)."""
    people: dict[str, dict[Any, Any]] = {}
    if staff is not None and len(staff):
        for row in pd.DataFrame(staff.drop(columns=staff.geometry.name)).to_dict("records"):
            people[str(row["staff_id"])] = row
    posts: list[tuple[str, str, str]] = []
    assignments = getattr(plan, "assignments", None)
    if assignments is not None and len(assignments):
        for sid, code, role in assignments[["staff_id", "grid_code", "role"]].itertuples(
            index=False
        ):
            if not _missing(sid) and not _missing(code):
                posts.append((str(code), str(sid), "worker" if _missing(role) else str(role)))
    elif staff is not None and "current_grid" in staff.columns:
        for sid, code, role in staff[["staff_id", "current_grid", "current_role"]].itertuples(
            index=False
        ):
            if not _missing(code):
                posts.append((str(code), str(sid), "worker" if _missing(role) else str(role)))
    out: dict[str, list[dict[str, Any]]] = {}
    for code, sid, role in sorted(posts, key=lambda p: (p[0], p[2] != "chief", p[1])):
        person = people.get(sid, {})
        out.setdefault(code, []).append(
            {
                "staff_id": sid,
                "role": role,
                "name": None if _missing(person.get("name")) else str(person["name"]),
                "phone": None if _missing(person.get("phone")) else str(person["phone"]),
            }
        )
    return out


def build_area(store: Store, record: PlanRecord, *, tolerance: float = 0.01) -> Area:
    """Load a stored plan into an :class:`Area`: grids, staff posts, communities.

    Neither households nor buildings are loaded (SQLite: the buildings' bounding
    boxes are, as arrays); nor the plan's memberships.
    """
    plan = load_served_plan(store, record.id, memberships=False, report=False)
    crs = pyproj.CRS(plan.crs)
    grids = plan.grids
    if grids.crs is None:
        grids = grids.set_crs(crs)
    grids = grids.reset_index(drop=True)
    index = GridIndex(grids, tolerance=tolerance)
    try:
        layers = load_area_layers(
            store, list(record.community_ids), ["communities", "staff"], crs=crs
        )
    except NotFoundError:
        layers = {}
    communities = _to_wgs84_frame(layers["communities"]) if "communities" in layers else None
    boxes = None
    if layers and store.backend != "postgresql":
        boxes = building_boxes(store, record.id)
    area = Area(
        record=record,
        crs=crs,
        index=index,
        grids=grids,
        grids_wgs84=_to_wgs84_frame(grids),
        communities=communities,
        staff=_staff_posts(plan, layers.get("staff")),
        store=store,
        assignments=plan.assignments,
        boxes=boxes,
    )
    area._community_info = _community_table(communities)
    area._transformer()  # made at start-up (~50 ms a pair), not by the first request
    area._from_plan_crs()
    return area


def _to_wgs84_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame.to_crs(4326)`` through the process's cached transformer (no new PROJ search)."""
    geoms = transform_geometries(frame.geometry.values, frame.crs, 4326)
    name = frame.geometry.name
    return frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=4326, name=name))


def _area_key(record: PlanRecord) -> tuple[int, int]:
    return (record.id, record.version)


@dataclass(frozen=True)
class Snapshot:
    """Areas loaded once in a parent process, for worker processes forked from it.

    ``gridmap serve --workers N`` loads the published plans before it forks its
    workers: their pages (grid trees, building boxes, the interpreter's modules)
    are then shared copy-on-write instead of loaded N times. A worker's locator
    starts from them (:func:`adopt`) and rebuilds only the plans changed since.

    Attributes
    ----------
    areas : tuple of Area
        The published areas, bound to the store they were read from (whose
        connections the parent closes before it forks; a locator over another
        store rebinds them to it).
    layers : int or None
        The newest layer import when they were loaded.
    tolerance : float
        The edge tolerance their indexes were built with.
    """

    areas: tuple[Area, ...]
    layers: int | None
    tolerance: float


#: Store → snapshot its first locator starts from (one use; see :func:`adopt`).
_ADOPTED: weakref.WeakKeyDictionary[Store, Snapshot] = weakref.WeakKeyDictionary()


def preload(store: Store, *, tolerance: float = 0.01) -> Snapshot:
    """Load the published plans into a :class:`Snapshot` (in the parent, before forking).

    Parameters
    ----------
    store : Store
        The store to read the plans from.
    tolerance : float, default 0.01
        Edge tolerance in metres (as :class:`Locator`).

    Returns
    -------
    Snapshot

    Examples
    --------
    >>> from gridmap.db import Store
    >>> preload(Store.from_url("sqlite://")).areas
    ()
    """
    loc = Locator(store, tolerance=tolerance)
    loc.refresh()
    return Snapshot(areas=loc.areas, layers=loc._layers, tolerance=loc.tolerance)


def adopt(snapshot: Snapshot, store: Store) -> None:
    """Let the first :meth:`Locator.refresh` over ``store`` start from ``snapshot``.

    The refresh keeps each area of the snapshot whose plan (id and version) is
    still published and whose layers were not re-imported since, rebound to
    ``store`` (its arrays and trees shared, not copied); it builds the others. A
    snapshot is adopted once; a locator with a different tolerance ignores it.

    Parameters
    ----------
    snapshot : Snapshot
        From :func:`preload` (in this process or in the parent it was forked from).
    store : Store
        The store of the locator that adopts it (this process's own).

    Examples
    --------
    >>> from gridmap.db import Store
    >>> store = Store.from_url("sqlite://")
    >>> adopt(preload(store), store)
    >>> Locator(store).refresh()
    0
    """
    _ADOPTED[store] = snapshot


def _rebind(area: Area, store: Store) -> Area:
    """Return the same area (arrays, trees and frames shared) reading from another store."""
    out = dataclasses.replace(
        area,
        store=store,
        _to_plan_crs=None,
        _to_wgs84=None,
        _plan=None,
        _plan_lock=threading.Lock(),
    )
    out._transformer()  # this process's own transformers (as build_area)
    out._from_plan_crs()
    return out


def _give_back_memory(*, collect: bool = True) -> None:
    """Collect the old snapshot and hand freed heap pages back to the system (glibc).

    ``collect=False`` skips the garbage collection (~60 ms with the web stack loaded)
    where no snapshot was dropped: the loading's scratch memory is freed as it goes.
    """
    if collect:
        gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the pages are reused by the next snapshot
        pass


class Locator:
    """Grid indexes of the published plans, rebuilt on demand.

    Parameters
    ----------
    store : Store
        The store to read plans from.
    tolerance : float, default 0.01
        Edge tolerance in metres (see :class:`gridmap.locate.GridIndex`).
    cache_size : int, default 4
        How many non-published plans (``?plan=`` on a draft) to keep loaded.

    Examples
    --------
    >>> from gridmap.db import Store
    >>> loc = Locator(Store.from_url("sqlite://"))
    >>> loc.refresh()
    0
    """

    def __init__(self, store: Store, *, tolerance: float = 0.01, cache_size: int = 4) -> None:
        self.store = store
        self.tolerance = float(tolerance)
        self._areas: tuple[Area, ...] = ()
        self._lock = threading.Lock()
        self._extra: OrderedDict[tuple[int, int], Area] = OrderedDict()
        self._cache_size = int(cache_size)
        self._key: tuple[tuple[int, int], ...] | None = None  # published (id, version) served
        self._layers: int | None = None  # newest layer import when the snapshot was built

    @property
    def areas(self) -> tuple[Area, ...]:
        """The published areas of the current snapshot."""
        return self._areas

    def refresh(self) -> int:
        """Reload the published plans; return how many areas are served.

        Safe to call from any thread; the new snapshot replaces the old one in
        one assignment. An area whose plan (id and version) is unchanged is kept,
        so a publish rebuilds only the plan it changed; the memory of the areas
        dropped is freed right after the swap (peak: the old snapshot plus the
        areas rebuilt, for the time of one rebuild). Thread safety: the new areas
        are built in the calling thread and shared only once complete (their trees
        built, no prepared polygon shared: see :class:`~gridmap.locate.GridIndex`);
        requests in flight keep the old tuple.
        """
        with self._lock:
            records = list_plans(self.store, status="published")
            layers = newest_import(self.store)
            current, layers_before = self._areas, self._layers
            seed = _ADOPTED.pop(self.store, None) if not current else None
            if seed is not None and seed.tolerance == self.tolerance:
                # loaded before the fork: kept areas share the parent's pages
                current, layers_before = seed.areas, seed.layers
            # a re-import may change any plan's buildings and staff: then rebuild them all
            kept = {_area_key(a.record): a for a in current} if layers == layers_before else {}
            areas = []
            reused = 0
            for rec in records:
                old = kept.get(_area_key(rec))
                if old is not None:
                    if old.store is not self.store:  # adopted from a snapshot
                        old = _rebind(old, self.store)
                    old.record = rec
                    areas.append(old)
                    reused += 1
                    continue
                try:
                    areas.append(build_area(self.store, rec, tolerance=self.tolerance))
                except Exception as exc:  # one broken plan must not take the service down
                    from gridmap.api.errors import log_exception  # the web stack, only here

                    log_exception(_log, exc, "cannot index published plan %s", rec.id)
            dropped, built = len(current) - reused, len(areas) - reused
            self._areas = tuple(areas)
            self._key = _published_key(records)
            self._layers = layers
            self._extra.clear()
            del kept
        if dropped or built:  # the loading's scratch memory and the old areas go back
            _give_back_memory(collect=dropped > 0)
        _log.info(
            "locator: %d published plan(s), %d grids",
            len(areas),
            sum(len(a.grids) for a in areas),
        )
        return len(areas)

    def refresh_if_changed(self) -> bool:
        """Reload the snapshot if the published plans changed since the last refresh.

        Another process (``gridmap publish``, another uvicorn worker) may publish a
        plan; the service polls this cheap check (one small query) and rebuilds its
        indexes only when the published plans or their versions changed.

        Returns
        -------
        bool
            Whether the snapshot was rebuilt.

        Examples
        --------
        >>> from gridmap.db import Store
        >>> loc = Locator(Store.from_url("sqlite://"))
        >>> loc.refresh_if_changed(), loc.refresh_if_changed()
        (True, False)
        """
        key = _published_key(list_plans(self.store, status="published"))
        if key == self._key and newest_import(self.store) == self._layers:
            return False
        self.refresh()
        return True

    def area(self, plan_id: int) -> Area:
        """Return the area of a plan: published ones from the snapshot, others loaded on demand.

        Raises
        ------
        NotFoundError
            Unknown plan.
        """
        for a in self._areas:
            if a.plan_id == int(plan_id):
                return a
        if not 0 < int(plan_id) <= ID_MAX:  # the database would fail on such an id
            raise NotFoundError(f"no plan with id {plan_id}; list the plans with GET /plans")
        rec = get_plan(self.store, int(plan_id))
        key = (rec.id, rec.version)
        with self._lock:
            hit = self._extra.get(key)
            if hit is not None:
                self._extra.move_to_end(key)
                return hit
        area = build_area(self.store, rec, tolerance=self.tolerance)
        with self._lock:
            for k in [k for k in self._extra if k[0] == rec.id]:
                del self._extra[k]
            self._extra[key] = area
            while len(self._extra) > self._cache_size:
                self._extra.popitem(last=False)
        return area

    def select(self, plan_id: int | None = None) -> tuple[Area, ...]:
        """Return the areas to search: one plan, or every published plan.

        Raises
        ------
        NotFoundError
            No plan is published (and none was named), or the named plan is unknown.
        """
        if plan_id is not None:
            return (self.area(plan_id),)
        areas = self._areas
        if not areas:
            raise NotFoundError(
                "no plan is published yet, so there is no grid to locate in; publish one "
                "(POST /plans/{id}/publish or `gridmap publish`) or name a plan with ?plan=ID"
            )
        return areas

    def find_grid(self, grid_code: str, plan_id: int | None = None) -> tuple[Area, int]:
        """Return the area and row of a grid code among the served plans.

        Raises
        ------
        NotFoundError
            No served plan has this grid.
        """
        for a in self.select(plan_id):
            rows = np.flatnonzero(a.index.codes == str(grid_code))
            if len(rows):
                return a, int(rows[0])
        raise NotFoundError(
            f"no grid {grid_code!r} in the published plan(s); list the grids with "
            "GET /collections/grids/items"
        )

    def locate_one(
        self, lon: float, lat: float, crs: Any = "wgs84", *, plan_id: int | None = None
    ) -> dict[str, Any]:
        """Locate one point: the fast path of :meth:`locate` (same answers, no pandas).

        Returns
        -------
        dict
            ``area`` (:class:`Area` of the grid, else of the nearest grid),
            ``row``, ``found``, ``inside``, ``on_boundary``, ``candidates``
            (``(area, row)`` pairs by code), ``distance_to_boundary``,
            ``nearest_distance``, ``x``/``y`` (in the area's CRS),
            ``lon_wgs84``/``lat_wgs84`` and ``crs`` (the parsed input CRS).

        Raises
        ------
        CoordinateError, CRSError, NotFoundError
            As :meth:`locate`.
        """
        spec = api_crs(crs)
        lon, lat = float(lon), float(lat)
        name = crs if isinstance(crs, str) else None  # names cache transformers
        ok = math.isfinite(lon) and math.isfinite(lat)
        if spec.is_geographic:
            ok = ok and abs(lon) <= 180 and abs(lat) <= 90
        if ok:
            if spec.kind == "wgs84":
                wx, wy = lon, lat
            elif spec.kind == "pyproj" and name is not None:
                wx, wy = _to_wgs84(name).transform(lon, lat)
            else:
                wx, wy = transform(lon, lat, spec, "wgs84", validate=False)
            ok = math.isfinite(wx) and math.isfinite(wy) and abs(wy) <= 90
        if not ok:
            msg = check_coordinates(np.array([lon]), np.array([lat]), spec)[0]
            raise CoordinateError(f"point 0: {msg or 'not a place on Earth in ' + spec.name}")
        areas = self.select(plan_id)
        answers = []
        for a in areas:
            if spec.kind == "pyproj" and a.same_crs(name, spec):
                x, y = lon, lat
            else:
                x, y = a._transformer().transform(wx, wy)
            if not (math.isfinite(x) and math.isfinite(y)):
                raise CoordinateError(
                    f"point 0: lon={wx!r}, lat={wy!r} (WGS84) cannot be projected into the CRS "
                    f"of plan {a.plan_id} ({a.crs.name}); it is too far from the plan's area: "
                    "check the coordinates and their crs"
                )
            r = a.locate_xy(x, y)  # a fresh dict
            r["area"], r["x"], r["y"] = a, x, y
            answers.append(r)
        if len(answers) == 1:  # one plan: its rows come in code order, each code once
            out = answers[0]
            out["candidates"] = [(out["area"], c) for c in out["candidates"]]
        else:  # the GridIndex rules across plans (the first of equals wins)
            out = min(
                answers,
                key=lambda r: (
                    not r["found"],
                    not r["inside"],
                    r["nearest_distance"],
                    str(r["area"].index.codes[r["row"]]),
                ),
            )
            cands = sorted(
                (
                    (str(r["area"].index.codes[c]), r["area"], c)
                    for r in answers
                    for c in r["candidates"]
                ),
                key=lambda t: t[0],
            )
            seen: set[str] = set()
            out["candidates"] = [
                (a, c)
                for code, a, c in cands
                if not (code in seen or seen.add(code))  # type: ignore[func-returns-value]
            ]
        out["on_boundary"] = len(out["candidates"]) > 1
        out["lon_wgs84"], out["lat_wgs84"] = float(wx), float(wy)
        out["crs"] = spec
        return out

    def locate(
        self,
        lon: Any,
        lat: Any,
        crs: Any = "wgs84",
        *,
        plan_id: int | None = None,
    ) -> pd.DataFrame:
        """Locate points (given in ``crs``) in the served plans.

        Parameters
        ----------
        lon, lat : float or array-like
            Coordinates, longitude/x first.
        crs : str, int or CRSSpec, default "wgs84"
            ``wgs84``, ``gcj02``, ``bd09``, ``cgcs2000`` or ``EPSG:nnnn``.
        plan_id : int, optional
            Search only this plan (any status); default: every published plan.

        Returns
        -------
        pandas.DataFrame
            One row per point: ``plan_id`` (of ``grid_code``, else of
            ``nearest_grid``), ``row`` (grid row in that plan), ``x``/``y``
            (projected in that plan's CRS), ``lon_wgs84``/``lat_wgs84`` and the
            columns of :data:`gridmap.locate.LOCATE_COLUMNS` and ``error``: a
            message for points too far from the plans to be projected into their
            CRS (those have no grid and no nearest grid), else ``None``.

        Raises
        ------
        CoordinateError
            NaN, out-of-range or swapped coordinates.
        CRSError
            Unknown ``crs``.
        NotFoundError
            Nothing to search (see :meth:`select`).
        """
        spec = api_crs(crs)
        px = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        py = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        if px.shape != py.shape or px.ndim != 1:
            raise CoordinateError(
                f"lon and lat must have the same length, got {px.shape} and {py.shape}"
            )
        msgs = check_coordinates(px, py, spec)
        bad = np.flatnonzero(msgs != "")
        if len(bad):
            shown = "; ".join(f"point {i}: {msgs[i]}" for i in bad[:3])
            raise CoordinateError(shown + (f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""))
        areas = self.select(plan_id)
        n = len(px)
        if spec.kind == "wgs84":
            wx, wy = px, py
        else:
            wx, wy = transform(px, py, spec, "wgs84", validate=False)
            wx, wy = np.asarray(wx, np.float64), np.asarray(wy, np.float64)
        projected = []
        lost = np.zeros(n, dtype=bool)  # too far from an area to be projected into its CRS
        for a in areas:
            if spec.kind == "pyproj" and spec.pyproj_crs is not None and spec.pyproj_crs == a.crs:
                x, y = px, py
            else:
                with np.errstate(invalid="ignore", over="ignore"):
                    x, y = transform(wx, wy, "wgs84", a.crs, validate=False)
                x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
            lost |= ~(np.isfinite(x) & np.isfinite(y))
            projected.append((x, y))
        results = []
        for a, (x, y) in zip(areas, projected, strict=True):
            if lost.any():  # located far away, then flagged below
                x, y = np.where(lost, _FAR, x), np.where(lost, _FAR, y)
            df = a.index.locate(x, y)
            df["x"], df["y"] = x, y
            results.append(df)
        out = _merge(areas, results, n, wx, wy)
        out["error"] = pd.Series(np.full(n, None, dtype=object), dtype=object)
        if lost.any():
            rows = np.flatnonzero(lost)
            for col in ("grid_code", "nearest_grid"):
                out.loc[rows, col] = None
            out.loc[rows, ["distance_to_boundary", "nearest_distance"]] = np.nan
            out.loc[rows, "row"] = -1
            out.loc[rows, "error"] = (
                "the point cannot be projected into the CRS of the plan(s): it is too far from "
                "their area; check the coordinates and their crs"
            )
        return out


def _published_key(records: list[PlanRecord]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted((r.id, r.version) for r in records))


def _merge(
    areas: tuple[Area, ...], results: list[pd.DataFrame], n: int, wx: np.ndarray, wy: np.ndarray
) -> pd.DataFrame:
    """Combine per-area answers with the GridIndex rules."""
    first = results[0]
    if len(areas) == 1:
        out = first.copy()
        area_idx = np.zeros(n, dtype=np.int64)
    else:
        k_areas = len(areas)
        found = np.stack([r["grid_code"].notna().to_numpy() for r in results])
        inside = np.stack([r["inside"].to_numpy(bool) for r in results])
        near_d = np.stack([r["nearest_distance"].to_numpy(float) for r in results])
        key = np.stack(
            [
                np.where(r["grid_code"].notna(), r["grid_code"], r["nearest_grid"]).astype(str)
                for r in results
            ]
        )
        _, code_rank = np.unique(key.ravel(), return_inverse=True)
        code_rank = code_rank.reshape(key.shape)
        point = np.broadcast_to(np.arange(n), (k_areas, n))
        order = np.lexsort(
            (code_rank.ravel(), near_d.ravel(), ~inside.ravel(), ~found.ravel(), point.ravel())
        )
        area_idx = (order // n)[::k_areas]  # first (best) area of each point
        cols = {}
        for col in first.columns:
            vals = first[col].to_numpy().copy()
            for k in range(1, k_areas):
                sel = np.flatnonzero(area_idx == k)
                vals[sel] = results[k][col].to_numpy()[sel]
            cols[col] = pd.Series(vals, dtype=first[col].dtype)
        out = pd.DataFrame(cols)
        multi = np.flatnonzero(found.sum(axis=0) > 1)
        if len(multi):
            cands = out["candidates"].to_numpy(object).copy()
            lists = [r["candidates"].to_numpy(object) for r in results]
            for i in multi:
                cands[i] = sorted({c for lst in lists for c in lst[i]})
            out["candidates"] = pd.Series(cands, dtype=object)
            out.loc[multi, "on_boundary"] = [len(cands[i]) > 1 for i in multi]
    plan_ids = np.array([a.plan_id for a in areas], dtype=np.int64)
    out.insert(0, "plan_id", plan_ids[area_idx])
    out["area"] = area_idx
    code_col = np.where(
        out["grid_code"].notna().to_numpy(), out["grid_code"], out["nearest_grid"]
    ).astype(object)
    row = np.full(n, -1, dtype=np.int64)
    for k, a in enumerate(areas):
        sel = np.flatnonzero(area_idx == k)
        if len(sel):
            lookup = pd.Index(a.index.codes)
            row[sel] = lookup.get_indexer(code_col[sel].astype(str))
    out["row"] = row
    out["lon_wgs84"], out["lat_wgs84"] = wx, wy
    return out[["plan_id", "area", "row", "x", "y", "lon_wgs84", "lat_wgs84", *LOCATE_COLUMNS]]
