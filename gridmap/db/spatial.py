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
    attrs[gname] = (
        gpd.GeoSeries(np.asarray(gdf["geom"].to_numpy(), dtype=object), crs=4326).to_crs(crs).values
    )
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
