"""Plans in the store: save, load, list, publish, edit with optimistic locking, locate.

A plan's *area* is the set of communities its grids cover. Plans of one area
are numbered 1, 2, 3 …; each plan also has an edit ``version`` (1 when saved,
+1 on every change) used for optimistic locking: an edit names the version it
was based on and is refused with :class:`~gridmap.errors.ConflictError` when
the stored version moved on. Publishing a plan archives any published plan
sharing a community with it; the database itself allows one published plan
per area (a partial unique index). Every change writes its audit row in the
same transaction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import pandas as pd
import pyproj
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.crs import transform_geometries
from gridmap.db.audit import write_audit
from gridmap.db.bulk import (
    bulk_insert,
    column_values,
    decode_geoms,
    encode_geoms,
    extras_json,
    frame_schema,
    geom_select,
    jsonable,
    restore_dtypes,
    rows_frame,
)
from gridmap.db.models import (
    PLAN_STATUSES,
    Assignment,
    GridRow,
    PlanBuilding,
    PlanCommunity,
    PlanHousehold,
    PlanRow,
    table,
    utcnow,
)
from gridmap.db.session import Store, transaction
from gridmap.errors import ConflictError, InputError, LayerError, NotFoundError
from gridmap.partition.plan import Plan, QualityReport

__all__ = [
    "PlanRecord",
    "area_key",
    "save_plan",
    "load_plan",
    "plan_figures",
    "get_plan",
    "list_plans",
    "published_plan",
    "publish_plan",
    "archive_plan",
    "update_plan",
    "update_plan_grids",
    "save_assignments",
]

_log = logging.getLogger(__name__)
_P = table(PlanRow)
_G = table(GridRow)
_PB = table(PlanBuilding)
_PH = table(PlanHousehold)
_PC = table(PlanCommunity)
_A = table(Assignment)

#: Grid columns with their own database column (the rest go to ``figures`` JSON).
_GRID_NATIVE: dict[str, type] = {
    "grid_code": str,
    "community_id": str,
    "name": str,
    "households": int,
    "persons": float,
    "n_buildings": int,
    "boundary_desc": str,
    "locked": bool,
}
_BUILDING_NATIVE: dict[str, type] = {
    "building_id": str,
    "grid_code": str,
    "households": int,
    "part": str,
}
_HOUSEHOLD_NATIVE: dict[str, type] = {"household_id": str, "building_id": str, "grid_code": str}
_ASSIGNMENT_NATIVE: dict[str, type] = {"staff_id": str, "grid_code": str, "role": str}
#: PostgreSQL advisory lock (any fixed 64-bit key) held while a transaction publishes.
_PUBLISH_LOCK = 0x67726964_6D6170
#: Grid fields :func:`update_plan_grids` may change.
EDITABLE_GRID_FIELDS: tuple[str, ...] = ("name", "boundary_desc", "locked", "persons", "geometry")


@dataclass(frozen=True)
class PlanRecord:
    """A stored plan's metadata (what ``gridmap plans`` lists).

    Attributes
    ----------
    id : int
        Plan id (unique in the store).
    number : int
        Sequence number of the plan within its area (1, 2, 3 …).
    version : int
        Edit version, for optimistic locking (1 when saved).
    status : str
        ``draft``, ``published`` or ``archived``.
    area_key : str
        Hash of the sorted community ids the plan covers.
    community_ids : tuple of str
        The communities the plan covers.
    name : str or None
        Optional label.
    author : str
        Who saved it.
    created_at, updated_at : datetime
        When saved, when last changed (UTC).
    published_at, archived_at : datetime or None
        When last published / archived.
    parent_id : int or None
        The plan this one was derived from.
    n_grids, households : int
        Size of the plan.
    params : dict
        Parameters the plan was made with.
    """

    id: int
    number: int
    version: int
    status: str
    area_key: str
    community_ids: tuple[str, ...]
    name: str | None
    author: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    archived_at: datetime | None
    parent_id: int | None
    n_grids: int
    households: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-compatible values (times as ISO strings)."""
        return jsonable(asdict(self))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _record(row: Any) -> PlanRecord:
    m = row._mapping
    return PlanRecord(
        id=int(m["id"]),
        number=int(m["number"]),
        version=int(m["version"]),
        status=m["status"],
        area_key=m["area_key"],
        community_ids=tuple(m["community_ids"] or ()),
        name=m["name"],
        author=m["author"],
        created_at=_utc(m["created_at"]),  # type: ignore[arg-type]
        updated_at=_utc(m["updated_at"]),  # type: ignore[arg-type]
        published_at=_utc(m["published_at"]),
        archived_at=_utc(m["archived_at"]),
        parent_id=m["parent_id"],
        n_grids=int(m["n_grids"]),
        households=int(m["households"]),
        params=dict(m["params"] or {}),
    )


_RECORD_COLS = [c for c in _P.c if c.name not in ("report", "schema", "crs")]


def area_key(community_ids: Sequence[str]) -> str:
    """Return the key of an area (a set of community ids), independent of order.

    Examples
    --------
    >>> area_key(["c2", "c1"]) == area_key(["c1", "c2", "c1"])
    True
    >>> len(area_key(["c1"]))
    40
    """
    ids = sorted({str(c) for c in community_ids})
    return hashlib.sha1("\x1f".join(ids).encode("utf-8")).hexdigest()


def _crs_text(crs: Any) -> str:
    c = pyproj.CRS.from_user_input(crs)
    epsg = c.to_epsg()
    return f"EPSG:{epsg}" if epsg else c.to_wkt()


def _row(
    s: Session, plan_id: int, *, lock: bool = False, columns: Sequence[Any] = _RECORD_COLS
) -> Any:
    """Return the plan's row (``columns`` of it), or raise :class:`NotFoundError`."""
    q = sa.select(*columns).where(_P.c.id == int(plan_id))
    if lock and s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    row = s.execute(q).first()
    if row is None:
        raise NotFoundError(
            f"no plan with id {plan_id}; list the stored plans with list_plans(store) "
            "or `gridmap plans`"
        )
    return row


def _bump(s: Session, plan_id: int, expected: int | None, *, lock_row: Any = None) -> int:
    """Increase the plan's version if it still is ``expected``; return the new version."""
    row = lock_row if lock_row is not None else _row(s, plan_id, lock=True)
    current = int(row._mapping["version"])
    exp = current if expected is None else int(expected)
    res = s.execute(
        sa.update(_P)
        .where(_P.c.id == int(plan_id), _P.c.version == exp)
        .values(version=_P.c.version + 1, updated_at=utcnow())
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        now = s.execute(sa.select(_P.c.version).where(_P.c.id == int(plan_id))).scalar()
        raise ConflictError(
            f"plan {plan_id} is at version {now}, not {exp}: someone changed it since you "
            f"loaded it; reload it (get_plan / load_plan) and apply your edit again",
            current_version=None if now is None else int(now),
        )
    return exp + 1


def _check_version(plan_id: int, row: Any, expected: int | None) -> None:
    current = int(row._mapping["version"])
    if expected is not None and int(expected) != current:
        raise ConflictError(
            f"plan {plan_id} is at version {current}, not {expected}: someone changed it since "
            "you loaded it; reload it (get_plan / load_plan) and apply your edit again",
            current_version=current,
        )


def _require_status(plan_id: int, row: Any, allowed: Sequence[str], what: str) -> None:
    status = row._mapping["status"]
    if status not in allowed:
        raise ConflictError(
            f"plan {plan_id} is {status}; {what} only on a {' or '.join(allowed)} plan. Save an "
            f"edited copy as a new draft with save_plan(store, plan, parent_id={plan_id}, ...)",
            current_version=int(row._mapping["version"]),
        )


def _rows(frame: pd.DataFrame, native: Mapping[str, type]) -> tuple[list[str], list[list[Any]]]:
    cols = list(native)
    values = [column_values(frame, c, k) for c, k in native.items()]
    extras = [c for c in frame.columns if c not in native]
    return cols, [*values, extras_json(frame, extras)]


def _check_plan(plan: Plan) -> None:
    if not isinstance(plan, Plan):
        raise InputError(f"expected a gridmap Plan, got {type(plan).__name__}")
    g = plan.grids
    if len(g) == 0:
        raise LayerError("the plan has no grids; nothing to store")
    if "grid_code" not in g.columns or g["grid_code"].isna().any():
        raise LayerError("every grid needs a grid_code; assign codes with gridmap.partition.codes")
    dup = g["grid_code"][g["grid_code"].duplicated()]
    if len(dup):
        raise LayerError(
            f"duplicate grid codes {', '.join(map(str, dup.unique()[:5]))}; codes must be unique "
            "within a plan"
        )


def _write_content(
    s: Session,
    plan_id: int,
    plan: Plan,
    backend: str,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write grids, memberships and assignments of a plan; return its schema JSON."""
    crs = pyproj.CRS.from_user_input(plan.crs)
    grids = plan.grids if plan.grids.crs is not None else plan.grids.set_crs(crs)
    gname = grids.geometry.name
    attrs = pd.DataFrame(grids.drop(columns=gname))
    cols, values = _rows(attrs, _GRID_NATIVE)
    n = len(grids)
    parts = (plan.buildings, plan.households, plan.assignments)
    total = n + sum(len(f) for f in parts if f is not None)
    done = 0

    def tick(base: int) -> Callable[[int], None] | None:
        if progress is None:
            return None
        return lambda k: progress(base + k, total)

    geoms = encode_geoms(grids.geometry.to_crs(4326).values, backend)
    bulk_insert(
        s,
        _G,
        ["plan_id", "seq", *cols, "figures", "geom"],
        zip([plan_id] * n, range(n), *values, geoms, strict=True),
        progress=tick(done),
    )
    done += n
    schema: dict[str, Any] = {"geometry": gname, "grids": frame_schema(grids)}
    for key, frame, tbl, native in (
        ("buildings", plan.buildings, _PB, _BUILDING_NATIVE),
        ("households", plan.households, _PH, _HOUSEHOLD_NATIVE),
        ("assignments", plan.assignments, _A, _ASSIGNMENT_NATIVE),
    ):
        if frame is None:
            schema[key] = None
            continue
        cols, values = _rows(frame, native)
        m = len(frame)
        bulk_insert(
            s,
            tbl,
            ["plan_id", "seq", *cols, "attrs"],
            zip([plan_id] * m, range(m), *values, strict=True),
            progress=tick(done),
        )
        done += m
        schema[key] = frame_schema(frame)
    return schema


def _area(plan: Plan) -> list[str]:
    ids = sorted({str(c) for c in plan.grids.get("community_id", pd.Series()).dropna()})
    if not ids:
        area = plan.params.get("area")
        if not area:
            raise LayerError(
                "the plan's grids have no community_id, so its area is unknown; fill "
                "grids.community_id (or give params['area'] as a list of community ids)"
            )
        ids = sorted({str(a) for a in area})
    return ids


def save_plan(
    target: Store | Session,
    plan: Plan,
    *,
    author: str,
    parent_id: int | None = None,
    status: str = "draft",
    name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PlanRecord:
    """Store a plan (grids, memberships, assignments, report) as a new plan record.

    One transaction: on any failure (or a killed process) the store keeps its
    previous state exactly. The plan gets the next number of its area and
    version 1. With ``status="published"`` it is published at once (see
    :func:`publish_plan`).

    Parameters
    ----------
    target : Store or Session
        The store.
    plan : gridmap.partition.Plan
        The plan, in its projected CRS.
    author : str
        Who saves it (audit log).
    parent_id : int, optional
        The plan this one derives from (e.g. an edited copy).
    status : {"draft", "published"}
        Initial status.
    name : str, optional
        A label.
    progress : callable, optional
        ``progress(rows_done, rows_total)`` while grids, memberships and
        assignments are written.

    Returns
    -------
    PlanRecord

    Raises
    ------
    NotFoundError
        ``parent_id`` is unknown.
    LayerError
        Grids without codes or with duplicate codes.
    """
    if status not in ("draft", "published"):
        raise InputError(f"status must be 'draft' or 'published', not {status!r}")
    _check_plan(plan)
    ids = _area(plan)
    key = area_key(ids)
    grids = plan.grids
    total = int(pd.to_numeric(grids.get("households", pd.Series([0])), errors="coerce").sum())
    with transaction(target, write=True) as s:
        backend = s.get_bind().dialect.name
        if parent_id is not None:
            _row(s, parent_id)
        number = (
            s.execute(sa.select(sa.func.max(_P.c.number)).where(_P.c.area_key == key)).scalar() or 0
        ) + 1
        now = utcnow()
        plan_id = s.execute(
            _P.insert()
            .values(
                number=number,
                version=1,
                status="draft",
                area_key=key,
                community_ids=ids,
                name=name,
                params=jsonable(plan.params),
                crs=_crs_text(plan.crs),
                schema={},
                report=plan.report.to_dict() if plan.report is not None else None,
                n_grids=len(grids),
                households=total,
                author=author,
                created_at=now,
                updated_at=now,
                parent_id=parent_id,
            )
            .returning(_P.c.id)
        ).scalar_one()
        s.execute(_PC.insert(), [{"plan_id": plan_id, "community_id": c} for c in ids])
        schema = _write_content(s, plan_id, plan, backend, progress)
        s.execute(sa.update(_P).where(_P.c.id == plan_id).values(schema=schema))
        write_audit(
            s,
            actor=author,
            action="create",
            entity="plan",
            entity_id=plan_id,
            after={
                "number": number,
                "version": 1,
                "n_grids": len(grids),
                "households": total,
                "community_ids": ids,
                "parent_id": parent_id,
            },
        )
        if status == "published":
            _publish(s, plan_id, author=author, expected_version=None)
        rec = _record(_row(s, plan_id))
    _log.info("saved plan %s (area %s, number %s)", rec.id, key[:8], rec.number)
    return rec


def get_plan(target: Store | Session, plan_id: int) -> PlanRecord:
    """Return a plan's metadata record.

    Raises
    ------
    NotFoundError
        Unknown ``plan_id``.
    """
    with transaction(target) as s:
        return _record(_row(s, plan_id))


def list_plans(
    target: Store | Session,
    *,
    status: str | None = None,
    community_id: str | None = None,
    area: Sequence[str] | None = None,
) -> list[PlanRecord]:
    """Return plan records, oldest first, optionally filtered.

    Parameters
    ----------
    target : Store or Session
        The store.
    status : str, optional
        ``draft``, ``published`` or ``archived``.
    community_id : str, optional
        Only plans covering this community.
    area : sequence of str, optional
        Only plans of exactly this set of communities.

    Returns
    -------
    list of PlanRecord

    Raises
    ------
    InputError
        ``status`` is not one of ``draft``, ``published``, ``archived``.

    Examples
    --------
    >>> list_plans(Store.from_url("sqlite://"))
    []
    >>> list_plans(Store.from_url("sqlite://"), status="live")
    Traceback (most recent call last):
    ...
    gridmap.errors.InputError: unknown plan status 'live'; choose one of draft, published, archived
    """
    if status is not None and status not in PLAN_STATUSES:
        raise InputError(
            f"unknown plan status {status!r}; choose one of {', '.join(PLAN_STATUSES)}"
        )
    q = sa.select(*_RECORD_COLS).order_by(_P.c.id)
    if status is not None:
        q = q.where(_P.c.status == status)
    if community_id is not None:
        q = q.where(
            _P.c.id.in_(sa.select(_PC.c.plan_id).where(_PC.c.community_id == str(community_id)))
        )
    if area is not None:
        q = q.where(_P.c.area_key == area_key(area))
    with transaction(target) as s:
        return [_record(r) for r in s.execute(q)]


def published_plan(target: Store | Session, community_id: str) -> PlanRecord | None:
    """Return the published plan covering ``community_id``, or ``None``."""
    plans = list_plans(target, status="published", community_id=community_id)
    return plans[-1] if plans else None


def load_plan(target: Store | Session, plan_id: int) -> Plan:
    """Load a stored plan back into a :class:`~gridmap.partition.Plan` (grids in its CRS).

    Raises
    ------
    NotFoundError
        Unknown ``plan_id``.
    """
    with transaction(target) as s:
        backend = s.get_bind().dialect.name
        meta = _row(s, plan_id, columns=(_P.c.crs, _P.c.schema, _P.c.params, _P.c.report))
        gcols = [c for c in _G.c if c.name not in ("geom", "id", "plan_id")]
        res = s.execute(
            sa.select(*gcols, geom_select(_G.c.geom, backend))
            .where(_G.c.plan_id == int(plan_id))
            .order_by(_G.c.seq)
        )
        gdf = rows_frame(res.all(), list(res.keys()))
        parts: dict[str, pd.DataFrame | None] = {}
        for key, table, native in (
            ("buildings", _PB, _BUILDING_NATIVE),
            ("households", _PH, _HOUSEHOLD_NATIVE),
            ("assignments", _A, _ASSIGNMENT_NATIVE),
        ):
            if meta.schema.get(key) is None:
                parts[key] = None
                continue
            cols = [table.c[c] for c in native] + [table.c.attrs]
            res = s.execute(
                sa.select(*cols).where(table.c.plan_id == int(plan_id)).order_by(table.c.seq)
            )
            parts[key] = _frame(
                rows_frame(res.all(), list(res.keys())),
                native,
                meta.schema[key],
                "attrs",
            )
    crs = pyproj.CRS.from_user_input(meta.crs)
    gname = meta.schema.get("geometry", "geometry")
    attrs = _frame(gdf, _GRID_NATIVE, [c for c in meta.schema["grids"] if c[0] != gname], "figures")
    attrs[gname] = transform_geometries(decode_geoms(gdf["geom"].tolist()), 4326, crs)
    order = [c for c, _ in meta.schema["grids"]]
    grids = gpd.GeoDataFrame(attrs[order], geometry=gname, crs=crs)
    report = QualityReport.from_dict(meta.report) if meta.report is not None else None
    return Plan(
        grids=grids,
        buildings=parts["buildings"],  # type: ignore[arg-type]  # always stored
        households=parts["households"],
        report=report,  # type: ignore[arg-type]
        params=dict(meta.params or {}),
        crs=crs,
        assignments=parts["assignments"],
    )


def plan_figures(
    target: Store | Session, plan_id: int
) -> tuple[pd.DataFrame, QualityReport | None]:
    """Return a stored plan's grids without their outlines, and its quality report.

    What a plan's page shows (``GET /plans/{id}``): one row per grid with every
    stored column but the geometry, in stored order, as :func:`load_plan` gives
    them; neither the outlines nor the memberships (a row per building and per
    household, millions in a city) are read.

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        The plan.

    Returns
    -------
    (pandas.DataFrame, QualityReport or None)
        The grid attributes and the report (None when none was stored).

    Raises
    ------
    NotFoundError
        Unknown ``plan_id``.
    """
    with transaction(target) as s:
        meta = _row(s, plan_id, columns=(_P.c.schema, _P.c.report))
        cols = [_G.c[c] for c in _GRID_NATIVE] + [_G.c.figures]
        res = s.execute(sa.select(*cols).where(_G.c.plan_id == int(plan_id)).order_by(_G.c.seq))
        df = rows_frame(res.all(), list(res.keys()))
    gname = meta.schema.get("geometry", "geometry")
    schema = [c for c in meta.schema["grids"] if c[0] != gname]
    attrs = _frame(df, _GRID_NATIVE, schema, "figures")
    report = QualityReport.from_dict(meta.report) if meta.report is not None else None
    return attrs[[c for c, _ in schema]], report


def _frame(
    df: pd.DataFrame, native: Mapping[str, type], schema: Sequence[Sequence[str]], extra: str
) -> pd.DataFrame:
    data = {c: df[c].reset_index(drop=True) for c in native if c in df.columns}
    wanted = [c for c, _ in schema]
    extras = [c for c in wanted if c not in native]
    if extras:
        recs = [a if isinstance(a, dict) else {} for a in df[extra]]
        for c in extras:
            data[c] = pd.Series([r.get(c) for r in recs], dtype=object)
    return restore_dtypes(pd.DataFrame(data, index=pd.RangeIndex(len(df))), schema)


def _publish(
    s: Session,
    plan_id: int,
    *,
    author: str,
    expected_version: int | None,
    allow_uncovered: bool = False,
) -> None:
    if s.get_bind().dialect.name == "postgresql":
        # Publishers take turns (SQLite's BEGIN IMMEDIATE does the same), so each one sees
        # and archives the plan published just before it: the partial unique index only
        # guards one area, while two plans of overlapping areas could otherwise both be
        # published by concurrent transactions that cannot see each other's rows.
        s.execute(sa.select(sa.func.pg_advisory_xact_lock(_PUBLISH_LOCK)))
    row = _row(s, plan_id, lock=True)
    _check_version(plan_id, row, expected_version)
    if row._mapping["status"] == "published":
        return
    now = utcnow()
    others = s.execute(
        sa.select(_P.c.id, _P.c.version)
        .where(
            _P.c.status == "published",
            _P.c.id != int(plan_id),
            _P.c.id.in_(
                sa.select(_PC.c.plan_id).where(
                    _PC.c.community_id.in_(
                        sa.select(_PC.c.community_id).where(_PC.c.plan_id == int(plan_id))
                    )
                )
            ),
        )
        .order_by(_P.c.id)
    ).all()
    if others and not allow_uncovered:
        _refuse_uncovering(s, plan_id, [int(o) for o, _ in others])
    for oid, over in others:
        s.execute(
            sa.update(_P)
            .where(_P.c.id == oid)
            .values(status="archived", archived_at=now, version=over + 1, updated_at=now)
        )
        write_audit(
            s,
            actor=author,
            action="archive",
            entity="plan",
            entity_id=oid,
            before={"status": "published", "version": over},
            after={"status": "archived", "version": over + 1, "superseded_by": int(plan_id)},
        )
    version = int(row._mapping["version"])
    try:
        with s.begin_nested():
            res = s.execute(
                sa.update(_P)
                .where(_P.c.id == int(plan_id), _P.c.version == version)
                .values(
                    status="published",
                    published_at=now,
                    archived_at=None,
                    version=version + 1,
                    updated_at=now,
                )
            )
    except sa.exc.IntegrityError as exc:
        raise ConflictError(
            f"another plan of the same area was published at the same time as plan {plan_id}; "
            "reload the plans and publish again",
            current_version=version,
        ) from exc
    if res.rowcount != 1:  # type: ignore[attr-defined]
        _bump(s, plan_id, version)  # raises ConflictError with the current version
    write_audit(
        s,
        actor=author,
        action="publish",
        entity="plan",
        entity_id=plan_id,
        before={"status": row._mapping["status"], "version": version},
        after={
            "status": "published",
            "version": version + 1,
            "archived": [int(o) for o, _ in others],
        },
    )


def _refuse_uncovering(s: Session, plan_id: int, archived: list[int]) -> None:
    """Raise ConflictError when archiving ``archived`` would leave communities unpublished."""
    mine = sa.select(_PC.c.community_id).where(_PC.c.plan_id == int(plan_id))
    bare = s.execute(
        sa.select(_PC.c.plan_id, _PC.c.community_id)
        .where(_PC.c.plan_id.in_(archived), _PC.c.community_id.not_in(mine))
        .order_by(_PC.c.plan_id, _PC.c.community_id)
    ).all()
    if not bare:
        return
    ids = sorted({str(c) for _, c in bare})
    old = sorted({int(p) for p, _ in bare})
    shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
    raise ConflictError(
        f"publishing plan {plan_id} would archive published plan(s) "
        f"{', '.join(map(str, old))}, leaving {len(ids)} communit{'y' if len(ids) == 1 else 'ies'} "
        f"outside plan {plan_id} with no published grids (dispatch could not locate "
        f"incidents there): {shown}. Publish a plan that covers them too (edit plan "
        f"{old[0]} instead, or re-partition with the other communities locked), or publish "
        "with allow_uncovered (CLI --allow-uncovered, HTTP ?allow_uncovered=true) to withdraw "
        "them on purpose"
    )


def publish_plan(
    target: Store | Session,
    plan_id: int,
    *,
    author: str,
    expected_version: int | None = None,
    allow_uncovered: bool = False,
) -> PlanRecord:
    """Publish a plan; archive the published plan(s) sharing a community with it.

    A draft or an archived plan (roll-back) can be published. Publishing an
    already published plan changes nothing. Dispatch answers from the published
    plans, so a publish that would archive a plan covering communities the new
    plan does not cover is refused unless ``allow_uncovered`` says so.

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        The plan.
    author : str
        Who publishes (audit log).
    expected_version : int, optional
        Refuse with :class:`ConflictError` unless the plan is at this version.
    allow_uncovered : bool, default False
        Publish even if communities of an archived plan are left with no
        published plan (otherwise :class:`ConflictError`, naming them).

    Returns
    -------
    PlanRecord
        The published plan (its version increased by one).
    """
    with transaction(target, write=True) as s:
        _publish(
            s,
            plan_id,
            author=author,
            expected_version=expected_version,
            allow_uncovered=allow_uncovered,
        )
        return _record(_row(s, plan_id))


def archive_plan(
    target: Store | Session,
    plan_id: int,
    *,
    author: str,
    expected_version: int | None = None,
) -> PlanRecord:
    """Archive a plan (withdraw a published plan, or shelve a draft)."""
    with transaction(target, write=True) as s:
        row = _row(s, plan_id, lock=True)
        _check_version(plan_id, row, expected_version)
        if row._mapping["status"] == "archived":
            return _record(row)
        version = _bump(s, plan_id, None, lock_row=row)
        s.execute(
            sa.update(_P)
            .where(_P.c.id == int(plan_id))
            .values(status="archived", archived_at=utcnow())
        )
        write_audit(
            s,
            actor=author,
            action="archive",
            entity="plan",
            entity_id=plan_id,
            before={"status": row._mapping["status"], "version": version - 1},
            after={"status": "archived", "version": version},
        )
        return _record(_row(s, plan_id))


def _grid_state(s: Session, plan_id: int, codes: Sequence[str] | None = None) -> pd.DataFrame:
    backend = s.get_bind().dialect.name
    cols = [_G.c[c] for c in _GRID_NATIVE] + [_G.c.figures]
    q = sa.select(*cols, geom_select(_G.c.geom, backend)).where(_G.c.plan_id == int(plan_id))
    if codes is not None:
        q = q.where(_G.c.grid_code.in_(list(codes)))
    res = s.execute(q.order_by(_G.c.seq))
    df = rows_frame(res.all(), list(res.keys()))
    df["geom"] = decode_geoms(df["geom"].tolist()) if len(df) else []
    return df


def _grid_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = {c: jsonable(row[c]) for c in _GRID_NATIVE}
    g = row["geom"]
    out["geometry_wgs84"] = None if g is None else shapely.to_wkt(g, rounding_precision=8)
    return out


def update_plan(
    target: Store | Session,
    plan_id: int,
    plan: Plan,
    *,
    author: str,
    expected_version: int,
) -> PlanRecord:
    """Replace the content of a draft plan (grids, memberships, report) — an edit.

    The audit row holds, for every grid added, removed or changed, its state
    before and after (attributes and WGS84 geometry as WKT).

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        A draft plan.
    plan : gridmap.partition.Plan
        The edited plan (same communities).
    author : str
        Who edits.
    expected_version : int
        The version the edit was based on.

    Returns
    -------
    PlanRecord

    Raises
    ------
    ConflictError
        The plan moved on from ``expected_version`` (``current_version`` says
        where it is), or it is not a draft.
    """
    _check_plan(plan)
    ids = _area(plan)
    with transaction(target, write=True) as s:
        backend = s.get_bind().dialect.name
        row = _row(s, plan_id, lock=True)
        _check_version(plan_id, row, expected_version)
        _require_status(plan_id, row, ("draft",), "edits are allowed")
        if area_key(ids) != row._mapping["area_key"]:
            raise InputError(
                f"the edited plan covers communities {ids}, plan {plan_id} covers "
                f"{list(row._mapping['community_ids'])}; save it as a new plan with save_plan"
            )
        before = _grid_state(s, plan_id)
        version = _bump(s, plan_id, expected_version, lock_row=row)
        for t in (_G, _PB, _PH, _A):
            s.execute(sa.delete(t).where(t.c.plan_id == int(plan_id)))
        schema = _write_content(s, plan_id, plan, backend)
        total = int(pd.to_numeric(plan.grids["households"], errors="coerce").sum())
        s.execute(
            sa.update(_P)
            .where(_P.c.id == int(plan_id))
            .values(
                schema=schema,
                params=jsonable(plan.params),
                crs=_crs_text(plan.crs),
                report=plan.report.to_dict() if plan.report is not None else None,
                n_grids=len(plan.grids),
                households=total,
            )
        )
        after = _grid_state(s, plan_id)
        b = {r["grid_code"]: r for r in before.to_dict("records")}
        a = {r["grid_code"]: r for r in after.to_dict("records")}
        changed = [
            c
            for c in sorted(set(a) | set(b))
            if c not in a or c not in b or _grid_json(a[c]) != _grid_json(b[c])
        ]
        write_audit(
            s,
            actor=author,
            action="update",
            entity="plan",
            entity_id=plan_id,
            before={
                "version": version - 1,
                "grids": {c: _grid_json(b[c]) for c in changed if c in b},
            },
            after={"version": version, "grids": {c: _grid_json(a[c]) for c in changed if c in a}},
        )
        return _record(_row(s, plan_id))


def update_plan_grids(
    target: Store | Session,
    plan_id: int,
    changes: Mapping[str, Mapping[str, Any]],
    *,
    author: str,
    expected_version: int,
) -> PlanRecord:
    """Edit fields of some grids of a draft plan (name, 四至, lock, persons, geometry).

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        A draft plan.
    changes : mapping
        ``{grid_code: {field: value}}`` with fields among
        ``name, boundary_desc, locked, persons, geometry`` (a shapely polygon in
        the plan's CRS).
    author : str
        Who edits.
    expected_version : int
        The version the edit was based on.

    Returns
    -------
    PlanRecord

    Raises
    ------
    NotFoundError
        Unknown plan or grid code.
    ConflictError
        Stale ``expected_version`` or the plan is not a draft.
    InputError
        A field that cannot be edited.
    """
    for code, fields in changes.items():
        bad = [f for f in fields if f not in EDITABLE_GRID_FIELDS]
        if bad:
            raise InputError(
                f"grid {code}: cannot edit {bad}; editable fields are {list(EDITABLE_GRID_FIELDS)}"
            )
    with transaction(target, write=True) as s:
        row = _row(s, plan_id, lock=True)
        _check_version(plan_id, row, expected_version)
        _require_status(plan_id, row, ("draft",), "edits are allowed")
        crs = pyproj.CRS.from_user_input(
            s.execute(sa.select(_P.c.crs).where(_P.c.id == int(plan_id))).scalar_one()
        )
        codes = [str(c) for c in changes]
        before = _grid_state(s, plan_id, codes)
        missing = sorted(set(codes) - set(before["grid_code"]))
        if missing:
            raise NotFoundError(
                f"plan {plan_id} has no grid(s) {', '.join(missing)}; see load_plan(store, "
                f"{plan_id}).grids for its codes"
            )
        version = _bump(s, plan_id, expected_version, lock_row=row)
        for code, fields in changes.items():
            values = {k: v for k, v in fields.items() if k != "geometry"}
            if "geometry" in fields:
                geom = gpd.GeoSeries([fields["geometry"]], crs=crs).to_crs(4326).iloc[0]
                values["geom"] = geom
            s.execute(
                sa.update(_G)
                .where(_G.c.plan_id == int(plan_id), _G.c.grid_code == str(code))
                .values(**values)
            )
        after = _grid_state(s, plan_id, codes)
        write_audit(
            s,
            actor=author,
            action="edit_grids",
            entity="plan",
            entity_id=plan_id,
            before={
                "version": version - 1,
                "grids": {r["grid_code"]: _grid_json(r) for r in before.to_dict("records")},
            },
            after={
                "version": version,
                "grids": {r["grid_code"]: _grid_json(r) for r in after.to_dict("records")},
            },
        )
        return _record(_row(s, plan_id))


def save_assignments(
    target: Store | Session,
    plan_id: int,
    assignments: pd.DataFrame,
    *,
    author: str,
    expected_version: int | None = None,
) -> PlanRecord:
    """Replace a plan's staff posts (staff → grid, role); allowed on drafts and published plans.

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        The plan.
    assignments : pandas.DataFrame
        ``staff_id``, ``grid_code``, ``role`` (``chief``/``worker``) and any other
        columns (kept).
    author : str
        Who assigns.
    expected_version : int, optional
        Refuse with :class:`ConflictError` unless the plan is at this version.

    Returns
    -------
    PlanRecord

    Raises
    ------
    NotFoundError
        Unknown plan, or a grid code the plan does not have.
    """
    missing_cols = [c for c in ("staff_id", "grid_code", "role") if c not in assignments.columns]
    if missing_cols:
        raise InputError(f"assignments lack column(s) {missing_cols}")
    with transaction(target, write=True) as s:
        row = _row(s, plan_id, lock=True)
        _check_version(plan_id, row, expected_version)
        _require_status(plan_id, row, ("draft", "published"), "staff can be assigned")
        codes = set(
            s.execute(sa.select(_G.c.grid_code).where(_G.c.plan_id == int(plan_id))).scalars()
        )
        unknown = sorted(set(assignments["grid_code"].dropna().astype(str)) - codes)
        if unknown:
            raise NotFoundError(
                f"plan {plan_id} has no grid(s) {', '.join(unknown[:10])}; assign staff to the "
                "plan's own grid codes"
            )
        before = s.execute(
            sa.select(_A.c.staff_id, _A.c.grid_code, _A.c.role)
            .where(_A.c.plan_id == int(plan_id))
            .order_by(_A.c.seq)
        ).all()
        version = _bump(s, plan_id, expected_version, lock_row=row)
        s.execute(sa.delete(_A).where(_A.c.plan_id == int(plan_id)))
        cols, values = _rows(assignments, _ASSIGNMENT_NATIVE)
        m = len(assignments)
        bulk_insert(
            s,
            _A,
            ["plan_id", "seq", *cols, "attrs"],
            zip([int(plan_id)] * m, range(m), *values, strict=True),
        )
        schema = dict(s.execute(sa.select(_P.c.schema).where(_P.c.id == int(plan_id))).scalar_one())
        schema["assignments"] = frame_schema(assignments)
        s.execute(sa.update(_P).where(_P.c.id == int(plan_id)).values(schema=schema))
        write_audit(
            s,
            actor=author,
            action="assign",
            entity="plan",
            entity_id=plan_id,
            before={"version": version - 1, "assignments": [list(r) for r in before]},
            after={
                "version": version,
                "assignments": [
                    [a, b, c] for a, b, c in zip(values[0], values[1], values[2], strict=True)
                ],
            },
        )
        return _record(_row(s, plan_id))
