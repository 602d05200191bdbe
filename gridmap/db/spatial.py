"""Spatial queries on the store: which grid covers a point, what lies near a point.

PostGIS answers in SQL (``ST_Covers`` and ``&&`` on the GiST indexes); SQLite, which
has no spatial functions without SpatiaLite, answers with shapely over the plan's
grids (an ``STRtree``) and, for buildings, over compact bounding-box arrays held by
the caller (:class:`BuildingBoxes`, ~40 bytes a building, no Python object per row).
Both count boundaries as covered and break ties the same way, so they give the same
answers.

What the HTTP service reads on demand instead of keeping in memory lives here too:
the buildings and households near a point (:func:`buildings_in_box`,
:func:`households_of`), a published plan without its household memberships
(:func:`load_served_plan`) and some layers of some communities
(:func:`load_area_layers`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.crs import transform_geometries
from gridmap.db.bulk import decode_geoms, geom_select, in_chunks, rows_frame
from gridmap.db.layers import _choose_crs, _merged_schema, _select_layer, _to_frame
from gridmap.db.models import LAYER_TABLES, Import, table
from gridmap.db.plans import (
    _A,
    _ASSIGNMENT_NATIVE,
    _BUILDING_NATIVE,
    _GRID_NATIVE,
    _P,
    _PB,
    _PC,
    _frame,
    _grid_state,
    _row,
)
from gridmap.db.session import Store, transaction
from gridmap.errors import InputError, NotFoundError
from gridmap.partition.plan import Plan, QualityReport

__all__ = [
    "locate_sql",
    "BuildingBoxes",
    "building_boxes",
    "buildings_in_box",
    "households_of",
    "near_point",
    "BUILDING_FEATURE_COLUMNS",
    "building_features",
    "buildings_extent",
    "load_served_plan",
    "load_area_layers",
    "newest_import",
    "RESIDENT_COLUMNS",
]

_B = table(LAYER_TABLES["buildings"])
_H = table(LAYER_TABLES["households"])
_S = table(LAYER_TABLES["staff"])

#: Household columns a residents-near answer carries (personal data: the sensitive flags).
RESIDENT_COLUMNS: tuple[str, ...] = (
    "household_id",
    "building_id",
    "unit",
    "floor",
    "persons",
    "elderly_living_alone",
    "disabled",
    "on_assistance",
    "floating_population",
    "unemployed",
)


def _grid_tree(store_or_s: Store | Session, s: Session, plan_id: int) -> tuple[Any, np.ndarray]:
    version = s.execute(sa.select(_P.c.version).where(_P.c.id == int(plan_id))).scalar()
    cache = store_or_s._cache if isinstance(store_or_s, Store) else {}
    key = ("grids", int(plan_id), version)
    if key not in cache:
        for k in [k for k in cache if k[:2] == ("grids", int(plan_id))]:
            del cache[k]
        df = _grid_state(s, plan_id)
        cache[key] = (shapely.STRtree(df["geom"].to_numpy()), df["grid_code"].to_numpy(object))
    return cache[key]


def locate_sql(
    target: Store | Session,
    plan_id: int,
    lon: float | Sequence[float] | np.ndarray,
    lat: float | Sequence[float] | np.ndarray,
) -> str | None | np.ndarray:
    """Return the grid code covering each WGS84 point (boundaries included), in the database.

    PostGIS answers with ``ST_Covers`` on the GiST index; SQLite with a shapely
    ``STRtree`` over the plan's grids (cached per plan version). A point on a
    boundary shared by several grids gets the smallest grid code of them, so
    both backends give the same answers.

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        The plan.
    lon, lat : float or array-like
        WGS84 longitude and latitude.

    Returns
    -------
    str or None, or numpy.ndarray of object
        Grid code(s); ``None`` outside every grid.

    Raises
    ------
    NotFoundError
        Unknown plan.
    """
    scalar = np.ndim(lon) == 0
    xs = np.atleast_1d(np.asarray(lon, dtype=float))
    ys = np.atleast_1d(np.asarray(lat, dtype=float))
    if xs.shape != ys.shape:
        raise InputError(f"lon and lat differ in length ({xs.size} vs {ys.size})")
    out = np.full(xs.size, None, dtype=object)
    with transaction(target) as s:
        _row(s, plan_id)
        if s.get_bind().dialect.name == "postgresql":
            # GiST only: "+ 0" keeps the planner off the (plan_id, grid_code) b-tree, which
            # it would otherwise AND with the spatial index for every point.
            pts = sa.text(
                """
                SELECT p.i, min(g.grid_code)
                FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[]))
                     WITH ORDINALITY AS p(x, y, i)
                LEFT JOIN grids g
                  ON (g.plan_id + 0) = :pid
                 AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))
                GROUP BY p.i
                """
            )
            s.execute(sa.text("SET LOCAL jit = off"))  # compiling costs more than it saves
            for i, code in s.execute(
                pts, {"pid": int(plan_id), "xs": xs.tolist(), "ys": ys.tolist()}
            ):
                out[int(i) - 1] = code
        else:
            tree, codes = _grid_tree(target, s, plan_id)
            ip, ig = tree.query(shapely.points(xs, ys), predicate="intersects")
            if ip.size:
                hit = pd.Series(codes[ig]).groupby(ip).min()
                out[hit.index.to_numpy()] = hit.to_numpy()
    return out[0] if scalar else out


# ----------------------------------------------------------------------------- near a point


@dataclass(frozen=True)
class BuildingBoxes:
    """Bounding boxes of a plan's buildings in WGS84, as columns (the SQLite stand-in for GiST).

    The rows are sorted by the boxes' centre longitude; a query cuts the slice
    whose centres can reach the query box (``searchsorted`` with the widest
    half-width) and tests only those boxes, so a query costs O(log n + slice).
    About 40 bytes a building (4 floats, the centre, the id), shared with no Python
    object per row.

    Attributes
    ----------
    ids : numpy.ndarray of str
        ``building_id`` of each row.
    bounds : numpy.ndarray, shape (n, 4)
        ``minx, miny, maxx, maxy`` (degrees).

    Examples
    --------
    >>> import numpy as np
    >>> boxes = BuildingBoxes.build(
    ...     np.array(["b2", "b1"]), np.array([[1.0, 0.0, 2.0, 1.0], [0.0, 0.0, 0.5, 0.5]])
    ... )
    >>> boxes.query((0.4, 0.4, 1.1, 0.6)).tolist(), boxes.query((3.0, 0.0, 4.0, 1.0)).tolist()
    (['b1', 'b2'], [])
    """

    ids: np.ndarray
    bounds: np.ndarray
    centre_x: np.ndarray
    half_width: float

    @classmethod
    def build(cls, ids: np.ndarray, bounds: np.ndarray) -> BuildingBoxes:
        """Sort the rows by centre longitude and keep the widest half-width."""
        bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
        ok = np.isfinite(bounds).all(axis=1)  # empty geometries have NaN bounds
        ids, bounds = np.asarray(ids)[ok], bounds[ok]
        cx = (bounds[:, 0] + bounds[:, 2]) / 2
        order = np.argsort(cx, kind="stable")
        half = float(((bounds[:, 2] - bounds[:, 0]) / 2).max()) if len(bounds) else 0.0
        return cls(
            ids=np.asarray(ids[order]).astype(str),
            bounds=np.ascontiguousarray(bounds[order]),
            centre_x=np.ascontiguousarray(cx[order]),
            half_width=half,
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return int(self.ids.nbytes + self.bounds.nbytes + self.centre_x.nbytes)

    def query(self, box: tuple[float, float, float, float]) -> np.ndarray:
        """Return the ids of the buildings whose box meets ``box`` (WGS84), in id order."""
        x0, y0, x1, y1 = box
        lo = int(np.searchsorted(self.centre_x, x0 - self.half_width, side="left"))
        hi = int(np.searchsorted(self.centre_x, x1 + self.half_width, side="right"))
        b = self.bounds[lo:hi]
        hit = (b[:, 2] >= x0) & (b[:, 0] <= x1) & (b[:, 3] >= y0) & (b[:, 1] <= y1)
        return np.sort(self.ids[lo:hi][hit])

    def split(self, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Return the ids of the boxes inside ``box`` and of those crossing its edge.

        A building whose box lies inside ``box`` meets it; one whose box crosses its
        edge may or may not (test its outline).

        Examples
        --------
        >>> boxes = BuildingBoxes.build(
        ...     np.array(["b2", "b1"]), np.array([[1.0, 0.0, 2.0, 1.0], [0.0, 0.0, 0.5, 0.5]])
        ... )
        >>> [a.tolist() for a in boxes.split((-1.0, -1.0, 1.5, 1.5))]
        [['b1'], ['b2']]
        """
        x0, y0, x1, y1 = box
        lo = int(np.searchsorted(self.centre_x, x0 - self.half_width, side="left"))
        hi = int(np.searchsorted(self.centre_x, x1 + self.half_width, side="right"))
        b = self.bounds[lo:hi]
        hit = (b[:, 2] >= x0) & (b[:, 0] <= x1) & (b[:, 3] >= y0) & (b[:, 1] <= y1)
        inside = hit & (b[:, 0] >= x0) & (b[:, 2] <= x1) & (b[:, 1] >= y0) & (b[:, 3] <= y1)
        ids = self.ids[lo:hi]
        return np.sort(ids[inside]), np.sort(ids[hit & ~inside])

    @property
    def extent(self) -> tuple[float, float, float, float] | None:
        """``minx, miny, maxx, maxy`` of all the boxes (None when there are none)."""
        if not len(self.bounds):
            return None
        b = self.bounds
        return (
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        )


def building_boxes(target: Store | Session, plan_id: int) -> BuildingBoxes:
    """Read the bounding boxes of the buildings of a plan's communities (WGS84).

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        The plan: its communities' buildings are read.

    Returns
    -------
    BuildingBoxes
    """
    with transaction(target) as s:
        backend = s.get_bind().dialect.name
        q = sa.select(_B.c.building_id, geom_select(_B.c.geom, backend)).join(
            _PC, sa.and_(_PC.c.community_id == _B.c.area_id, _PC.c.plan_id == int(plan_id))
        )
        ids: list[str] = []
        bounds: list[np.ndarray] = []
        for part in s.execute(q).partitions(50_000):  # a city at a time would hold its WKB
            ids.extend(str(r[0]) for r in part)
            bounds.append(shapely.bounds(decode_geoms([r[1] for r in part])))
    arr = np.concatenate(bounds) if bounds else np.empty((0, 4))
    return BuildingBoxes.build(np.array(ids, dtype=object), arr)


def _first_grid(plan_id: int) -> Any:
    """Select a building's grid in a plan: its first membership (a split building's first part)."""
    return (
        sa.select(_PB.c.grid_code)
        .where(_PB.c.plan_id == int(plan_id), _PB.c.building_id == _B.c.building_id)
        .order_by(_PB.c.seq)
        .limit(1)
        .scalar_subquery()
    )


def buildings_in_box(
    target: Store | Session,
    plan_id: int,
    box: tuple[float, float, float, float],
    *,
    ids: Sequence[str] | None = None,
    communities: Collection[str] | None = None,
) -> pd.DataFrame:
    """Return the buildings of a plan's communities whose bounding box meets ``box`` (WGS84).

    PostGIS answers with ``geom && ST_MakeEnvelope(...)`` on the GiST index of
    ``buildings``; on SQLite pass the candidate ``ids`` (from
    :meth:`BuildingBoxes.query`), read by primary key.

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        The plan (its communities bound the search; its memberships give ``grid_code``).
    box : (float, float, float, float)
        ``minlon, minlat, maxlon, maxlat``.
    ids : sequence of str, optional
        Candidate building ids (required on SQLite; on PostGIS they replace the box).
    communities : collection of str, optional
        The plan's community ids, when the caller knows them (saves a query).

    Returns
    -------
    pandas.DataFrame
        ``building_id, name, use, households, grid_code, geom`` (shapely, WGS84),
        by ``building_id``; the caller measures exact distances.
    """
    cols = [_B.c.building_id, _B.c.name, _B.c.use, _B.c.households]
    names = ["building_id", "name", "use", "households", "grid_code", "geom", "area_id"]
    with transaction(target) as s:
        backend = s.get_bind().dialect.name
        area = _plan_communities(s, plan_id) if communities is None else set(communities)
        q = sa.select(
            *cols,
            _first_grid(plan_id).label("grid_code"),
            geom_select(_B.c.geom, backend),
            _B.c.area_id,
        )
        rows: list[Any] = []
        if ids is not None:
            for chunk in in_chunks(list(ids)):
                rows.extend(s.execute(q.where(_B.c.building_id.in_(chunk))).all())
        elif backend == "postgresql":
            env = sa.func.ST_MakeEnvelope(*(float(v) for v in box), 4326)
            rows = list(s.execute(q.where(_B.c.geom.op("&&")(env))).all())
        else:
            raise InputError(
                "on SQLite, buildings_in_box needs the candidate ids= from BuildingBoxes.query"
            )
    # the plan's communities are checked here, not joined: a join lets SQLite's planner
    # walk every building of the plan instead of the few asked for
    df = rows_frame([r for r in rows if r[-1] in area], names).drop(columns=["area_id"])
    df["geom"] = decode_geoms(df["geom"].tolist()) if len(df) else []
    return df.sort_values("building_id", kind="stable").reset_index(drop=True)


def _plan_communities(s: Session, plan_id: int) -> set[str]:
    return {
        str(c)
        for c in s.execute(
            sa.select(_PC.c.community_id).where(_PC.c.plan_id == int(plan_id))
        ).scalars()
    }


def households_of(
    target: Store | Session,
    plan_id: int,
    building_ids: Iterable[str],
    *,
    columns: Sequence[str] = RESIDENT_COLUMNS,
    communities: Collection[str] | None = None,
) -> pd.DataFrame:
    """Return the households of some buildings of a plan's communities (personal data).

    Read through the ``building_id`` index, in stored order (import, then row).

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        The plan whose communities' households are read.
    building_ids : iterable of str
        The buildings.
    columns : sequence of str
        Household columns (default :data:`RESIDENT_COLUMNS`).
    communities : collection of str, optional
        The plan's community ids, when the caller knows them (saves a query).

    Returns
    -------
    pandas.DataFrame
    """
    unknown = [c for c in columns if c not in _H.c]
    if unknown:
        raise InputError(f"households has no column(s) {unknown}; use some of {list(_H.c.keys())}")
    ids = [str(b) for b in building_ids]
    rows: list[Any] = []
    with transaction(target) as s:
        area = _plan_communities(s, plan_id) if communities is None else set(communities)
        q = sa.select(*(_H.c[c] for c in columns), _H.c.import_id, _H.c.seq, _H.c.area_id)
        for chunk in in_chunks(ids):
            rows.extend(s.execute(q.where(_H.c.building_id.in_(chunk))).all())
    # the plan's communities are checked here, not joined (see buildings_in_box)
    df = rows_frame([r for r in rows if r[-1] in area], [*columns, "_import", "_seq", "_area"])
    df = df.sort_values(["_import", "_seq"], kind="stable")
    return df.drop(columns=["_import", "_seq", "_area"]).reset_index(drop=True)


def near_point(
    target: Store | Session,
    plan_id: int,
    box: tuple[float, float, float, float],
    *,
    centre: tuple[float, float],
    radius: float,
    communities: Collection[str],
    columns: Sequence[str] = RESIDENT_COLUMNS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the buildings near a WGS84 point and their households, in one PostGIS query.

    What ``/locate?radius=`` reads on PostGIS, in one round trip: the buildings whose
    box meets ``box`` (``&&`` on the GiST index) and lie within a little more than
    ``radius`` metres of ``centre`` on the spheroid (``ST_DWithin`` on geography:
    the caller measures the exact distance in its projected CRS and keeps those
    within ``radius``), each with its households (``json_agg`` through the
    ``building_id`` index). SQLite has no spatial SQL: use :func:`buildings_in_box`
    with the candidate ids, then :func:`households_of`.

    Parameters
    ----------
    target : Store or Session
        The store (PostGIS).
    plan_id : int
        The plan (its memberships give ``grid_code``).
    box : (float, float, float, float)
        ``minlon, minlat, maxlon, maxlat`` holding the search circle.
    centre : (float, float)
        WGS84 longitude and latitude of the point.
    radius : float
        Metres; buildings up to ``1.02 * radius + 1`` m away are returned.
    communities : collection of str
        The plan's community ids (buildings and households outside them are left out).
    columns : sequence of str
        Household columns (default :data:`RESIDENT_COLUMNS`).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The buildings (``building_id, name, use, households, grid_code, geom``,
        shapely WGS84, by ``building_id``) and their households (``columns``, in
        stored order: import, then row).

    Raises
    ------
    InputError
        Not a PostGIS store, or an unknown household column.
    """
    unknown = [c for c in columns if c not in _H.c]
    if unknown:
        raise InputError(f"households has no column(s) {unknown}; use some of {list(_H.c.keys())}")
    area = set(communities)
    hh_cols = [*columns, "import_id", "seq", "area_id"]
    households = (
        sa.select(sa.func.json_agg(sa.func.json_build_array(*(_H.c[c] for c in hh_cols))))
        .where(_H.c.building_id == _B.c.building_id)
        .scalar_subquery()
    )
    point = sa.func.ST_SetSRID(sa.func.ST_MakePoint(float(centre[0]), float(centre[1])), 4326)
    q = sa.select(
        _B.c.building_id,
        _B.c.name,
        _B.c.use,
        _B.c.households,
        _first_grid(plan_id).label("grid_code"),
        geom_select(_B.c.geom, "postgresql"),
        _B.c.area_id,
        households.label("hh"),
    ).where(
        _B.c.geom.op("&&")(sa.func.ST_MakeEnvelope(*(float(v) for v in box), 4326)),
        sa.func.ST_DWithin(
            sa.func.geography(_B.c.geom),
            sa.func.geography(point),
            1.02 * float(radius) + 1.0,
        ),
    )
    with transaction(target) as s:
        if s.get_bind().dialect.name != "postgresql":
            raise InputError(
                "near_point needs PostGIS; on SQLite use buildings_in_box(ids=...) and "
                "households_of"
            )
        rows = [r for r in s.execute(q).all() if r.area_id in area]
    names = ["building_id", "name", "use", "households", "grid_code", "geom"]
    near = rows_frame([tuple(r)[:6] for r in rows], names)
    near["geom"] = decode_geoms(near["geom"].tolist()) if len(near) else []
    near = near.sort_values("building_id", kind="stable").reset_index(drop=True)
    members = [h for r in rows for h in (r.hh or ()) if h[-1] in area]
    hh = rows_frame(members, hh_cols)
    hh = hh.sort_values(["import_id", "seq"], kind="stable")
    return near, hh[list(columns)].reset_index(drop=True)


# ----------------------------------------------------------------------------- features

#: Columns of :func:`building_features` (the OGC API buildings collection), ``geom`` aside.
BUILDING_FEATURE_COLUMNS: tuple[str, ...] = (
    "building_id",
    "name",
    "use",
    "households",
    "levels",
    "community_id",
    "grid_code",
)

#: Numeric columns of :data:`BUILDING_FEATURE_COLUMNS` (filters compare numbers).
_NUMERIC = ("households", "levels")


def _grid_of(plan_ids: Sequence[int]) -> Any:
    """Select a building's grid in the first plan (of ``plan_ids``) holding its community."""
    if not plan_ids:
        return sa.null()
    return sa.case(
        *[
            (
                _B.c.area_id.in_(sa.select(_PC.c.community_id).where(_PC.c.plan_id == int(p))),
                _first_grid(p),
            )
            for p in plan_ids
        ],
        else_=sa.null(),
    )


def _feature_filters(plan_ids: Sequence[int], equals: dict[str, str]) -> list[Any]:
    pids = [int(p) for p in plan_ids]
    where: list[Any] = [
        _B.c.area_id.in_(sa.select(_PC.c.community_id).where(_PC.c.plan_id.in_(pids)))
    ]
    for col, value in equals.items():
        if col == "grid_code":
            # the membership index narrows; the first membership decides (a split building)
            where.append(
                _B.c.building_id.in_(
                    sa.select(_PB.c.building_id).where(
                        _PB.c.plan_id.in_(pids), _PB.c.grid_code == value
                    )
                )
            )
            where.append(_grid_of(pids) == value)
        elif col in _NUMERIC:
            try:
                number = float(value)
            except ValueError:
                where.append(sa.false())
                continue
            where.append(_B.c[col] == number)
        elif col in BUILDING_FEATURE_COLUMNS:
            where.append(_B.c["area_id" if col == "community_id" else col] == value)
        else:
            raise InputError(
                f"buildings cannot be filtered by {col!r}; use some of {BUILDING_FEATURE_COLUMNS}"
            )
    return where


def building_features(
    target: Store | Session,
    plan_ids: Sequence[int],
    *,
    box: tuple[float, float, float, float] | None = None,
    candidates: tuple[Sequence[str], Sequence[str]] | None = None,
    equals: dict[str, str] | None = None,
    limit: int = 100,
    offset: int = 0,
    building_id: str | None = None,
) -> tuple[int, pd.DataFrame]:
    """Return one page of the buildings of some plans' communities, read from the store.

    What the OGC API buildings collection serves, without holding the city in
    memory: the buildings of the plans' communities (each with its grid in the
    first plan holding its community), those whose outline meets ``box`` (PostGIS:
    ``ST_Intersects`` on the GiST index; SQLite: give the ``candidates`` from the
    plans' :class:`BuildingBoxes`, then outlines crossing the box's edge are tested
    with shapely), equal to ``equals`` (compared as text; as numbers for
    ``households`` and ``levels``), by ``building_id`` in the store's order.

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_ids : sequence of int
        The plans, in the order that decides a building's grid.
    box : (float, float, float, float), optional
        ``minlon, minlat, maxlon, maxlat``.
    candidates : (sequence of str, sequence of str), optional
        SQLite with ``box``: ids of the buildings whose bounding box lies inside
        ``box`` (they meet it) and of those whose bounding box crosses its edge.
    equals : dict, optional
        Column of :data:`BUILDING_FEATURE_COLUMNS` → value.
    limit, offset : int
        The page.
    building_id : str, optional
        Only this building (one feature).

    Returns
    -------
    (int, pandas.DataFrame)
        The number matched and the page: :data:`BUILDING_FEATURE_COLUMNS` and
        ``geom`` (shapely, WGS84).

    Raises
    ------
    InputError
        A filter on another column, or a box on SQLite without ``candidates``.
    """
    pids = [int(p) for p in plan_ids]
    names = [*BUILDING_FEATURE_COLUMNS, "geom"]
    if not pids:
        return 0, pd.DataFrame(columns=names)
    where = _feature_filters(pids, dict(equals or {}))
    if building_id is not None:
        where.append(_B.c.building_id == str(building_id))
    with transaction(target) as s:
        backend = s.get_bind().dialect.name
        cols = [
            _B.c.building_id,
            _B.c.name,
            _B.c.use,
            _B.c.households,
            _B.c.levels,
            _B.c.area_id.label("community_id"),
            _grid_of(pids).label("grid_code"),
            geom_select(_B.c.geom, backend),
        ]
        if box is not None and backend == "postgresql":
            env = sa.func.ST_MakeEnvelope(*(float(v) for v in box), 4326)
            where.append(sa.func.ST_Intersects(_B.c.geom, env))
        elif box is not None:
            if candidates is None:
                raise InputError(
                    "on SQLite, building_features with box= needs the candidates= of the "
                    "plans' BuildingBoxes"
                )
            ids = _meeting(s, where, box, candidates)
            page = ids[offset : offset + limit]
            rows: list[Any] = []
            for chunk in in_chunks(page):
                rows.extend(s.execute(sa.select(*cols).where(_B.c.building_id.in_(chunk))))
            df = _features_frame(rows, names)
            order = {b: i for i, b in enumerate(page)}
            df = df.iloc[np.argsort([order[b] for b in df["building_id"]], kind="stable")]
            return len(ids), df.reset_index(drop=True)
        matched = s.execute(sa.select(sa.func.count()).select_from(_B).where(*where)).scalar()
        q = sa.select(*cols).where(*where).order_by(_B.c.building_id)
        rows = list(s.execute(q.limit(int(limit)).offset(int(offset))))
    return int(matched or 0), _features_frame(rows, names)


def _meeting(
    s: Session,
    where: list[Any],
    box: tuple[float, float, float, float],
    candidates: tuple[Sequence[str], Sequence[str]],
) -> list[str]:
    """SQLite: the ids (sorted) of the candidates passing ``where`` whose outline meets ``box``."""
    inside, edge = (sorted({str(i) for i in c}) for c in candidates)
    out: list[str] = []
    for chunk in in_chunks(inside):
        q = sa.select(_B.c.building_id).where(_B.c.building_id.in_(chunk), *where)
        out.extend(str(r[0]) for r in s.execute(q))
    clip = shapely.box(*box)
    for chunk in in_chunks(edge):
        q = sa.select(_B.c.building_id, geom_select(_B.c.geom, "sqlite")).where(
            _B.c.building_id.in_(chunk), *where
        )
        rows = s.execute(q).all()
        if rows:
            hit = shapely.intersects(decode_geoms([r[1] for r in rows]), clip)
            out.extend(str(r[0]) for r, h in zip(rows, hit, strict=True) if h)
    return sorted(out)


def _features_frame(rows: Sequence[Any], names: list[str]) -> pd.DataFrame:
    df = rows_frame(list(rows), names)
    df["geom"] = decode_geoms(df["geom"].tolist()) if len(df) else []
    return df


def buildings_extent(
    target: Store | Session, plan_ids: Sequence[int]
) -> tuple[float, float, float, float] | None:
    """Return the WGS84 extent of the buildings of some plans' communities (None: none).

    PostGIS reads it with ``ST_Extent``; on SQLite the service takes it from its
    :class:`BuildingBoxes` instead (this reads every outline).
    """
    pids = [int(p) for p in plan_ids]
    if not pids:
        return None
    where = _feature_filters(pids, {})
    with transaction(target) as s:
        if s.get_bind().dialect.name == "postgresql":
            q = sa.select(
                sa.func.ST_XMin(sa.func.ST_Extent(_B.c.geom)),
                sa.func.ST_YMin(sa.func.ST_Extent(_B.c.geom)),
                sa.func.ST_XMax(sa.func.ST_Extent(_B.c.geom)),
                sa.func.ST_YMax(sa.func.ST_Extent(_B.c.geom)),
            ).where(*where)
            row = s.execute(q).one()
            return None if row[0] is None else tuple(float(v) for v in row)  # type: ignore[return-value]
        geoms = [r[0] for r in s.execute(sa.select(geom_select(_B.c.geom, "sqlite")).where(*where))]
    if not geoms:
        return None
    return tuple(float(v) for v in shapely.total_bounds(decode_geoms(geoms)))  # type: ignore[return-value]


# ----------------------------------------------------------------------------- served plans


def load_served_plan(
    target: Store | Session, plan_id: int, *, memberships: bool = True, report: bool = True
) -> Plan:
    """Load a stored plan as :func:`gridmap.db.load_plan` does, without household memberships.

    A served plan needs its grids and staff posts; its household memberships (one
    row per household: millions in a city) are read where needed instead.

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        The plan.
    memberships : bool, default True
        Load the building memberships (``plan.buildings``); otherwise that frame is
        empty (with its columns).
    report : bool, default True
        Load the quality report (``plan.report``; otherwise None).

    Returns
    -------
    Plan
        With ``households=None``.

    Raises
    ------
    NotFoundError
        Unknown plan.
    """
    with transaction(target) as s:
        _row(s, plan_id)
        cols = [_P.c.crs, _P.c.schema, _P.c.params] + ([_P.c.report] if report else [])
        meta = s.execute(sa.select(*cols).where(_P.c.id == int(plan_id))).one()
        gdf = _grid_state(s, plan_id)
        parts: dict[str, pd.DataFrame | None] = {}
        for key, tbl, native, load in (
            ("buildings", _PB, _BUILDING_NATIVE, memberships),
            ("assignments", _A, _ASSIGNMENT_NATIVE, True),
        ):
            if meta.schema.get(key) is None:
                parts[key] = None
                continue
            sel = [tbl.c[c] for c in native] + [tbl.c.attrs]
            q = sa.select(*sel).where(tbl.c.plan_id == int(plan_id)).order_by(tbl.c.seq)
            if not load:
                q = q.limit(0)
            res = s.execute(q)
            parts[key] = _frame(
                rows_frame(res.all(), list(res.keys())), native, meta.schema[key], "attrs"
            )
    crs = pyproj.CRS.from_user_input(meta.crs)
    gname = meta.schema.get("geometry", "geometry")
    attrs = _frame(
        gdf.drop(columns=["geom"]),
        _GRID_NATIVE,
        [c for c in meta.schema["grids"] if c[0] != gname],
        "figures",
    )
    attrs[gname] = transform_geometries(gdf["geom"].to_numpy(), 4326, crs)
    order = [c for c, _ in meta.schema["grids"]]
    grids = gpd.GeoDataFrame(attrs[order], geometry=gname, crs=crs)
    rep = meta.report if report else None
    return Plan(
        grids=grids,
        buildings=parts["buildings"],  # type: ignore[arg-type]  # always stored
        households=None,
        report=QualityReport.from_dict(rep) if rep is not None else None,  # type: ignore[arg-type]
        params=dict(meta.params or {}),
        crs=crs,
        assignments=parts["assignments"],
    )


def load_area_layers(
    target: Store | Session, community_ids: Sequence[str], names: Sequence[str], *, crs: Any
) -> dict[str, gpd.GeoDataFrame]:
    """Load some layers of some communities, as :func:`gridmap.db.load_layers` does.

    The service reads the communities and staff of a plan at start-up and the
    buildings when asked, never the households of a whole plan.

    Parameters
    ----------
    target : Store or Session
        The store.
    community_ids : sequence of str
        The communities.
    names : sequence of str
        Layer names (``communities``, ``buildings``, ``staff``; not the context layers
        roads, barriers and compounds).
    crs : Any
        Projected CRS of the frames.

    Returns
    -------
    dict
        Layer name → GeoDataFrame (layers never imported are left out).

    Raises
    ------
    NotFoundError
        A community is not stored.
    """
    ids = [str(c) for c in community_ids]
    it = table(Import)
    ct = table(LAYER_TABLES["communities"])
    with transaction(target) as s:
        found: dict[str, int] = {}
        for chunk in in_chunks(ids):
            q = sa.select(ct.c.community_id, ct.c.import_id).where(ct.c.community_id.in_(chunk))
            found.update({r[0]: r[1] for r in s.execute(q)})
        unknown = [c for c in ids if c not in found]
        if unknown or not ids:
            raise NotFoundError(
                f"unknown community id(s): {', '.join(unknown[:10]) or '(none given)'}; list "
                "the stored ones with gridmap.db.list_communities(store)"
            )
        imp_ids = sorted(set(found.values()))
        imports = list(s.execute(sa.select(it).where(it.c.id.in_(imp_ids)).order_by(it.c.id)))
        frames = {name: _select_layer(s, name, ids, None) for name in names}
    target_crs = _choose_crs(crs, imports, frames.get("communities", pd.DataFrame()))
    out: dict[str, gpd.GeoDataFrame] = {}
    for name, df in frames.items():
        merged = _merged_schema(imports, name)
        if merged is not None:
            out[name] = _to_frame(name, df, merged[0], merged[1], target_crs)
    return out


def newest_import(target: Store | Session) -> int | None:
    """Return the id of the newest layer import (None before any).

    A re-import replaces buildings, households and staff: whoever keeps something
    read from them (the service's snapshot) compares this number.

    Examples
    --------
    >>> newest_import(Store.from_url("sqlite://")) is None
    True
    """
    with transaction(target) as s:
        return s.execute(sa.select(sa.func.max(table(Import).c.id))).scalar()
