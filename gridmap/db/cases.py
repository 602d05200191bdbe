"""Cases (事件工单) in the store: intake, bulk import, lists, actions, sweep, re-route, calendar.

Everything a case goes through is decided by the pure core (:mod:`gridmap.cases`):
intake checks and times a ticket, :func:`gridmap.cases.apply` applies an action
from the state-machine table, :func:`gridmap.cases.sweep` finds the timer events
due. This module keeps the results:

* **Placement**: points are located on the *published* plans with
  :class:`gridmap.locate.GridIndex` (one per published plan, cached per plan
  version); the grid, community and sub-district are frozen on the case with the
  plan id and version. A point outside every grid is ``unlocated`` with the
  nearest grid suggested (``suggested_grid``), never assigned silently.
* **Import** (:func:`import_cases`) is one transaction: a file with a bad row
  stores nothing and names every bad row by its spreadsheet line; with
  ``skip_bad=True`` the good rows go in and the rejects come back. Re-importing
  the same tickets changes nothing (and says so); the same ticket number with
  other content is a conflict.
* **Actions** (:func:`act`) take the version the caller read: of two concurrent
  actions on a case exactly one wins, the other gets a
  :class:`~gridmap.errors.ConflictError`. The log (``case_log``) is append-only.
* **Sweep** (:func:`sweep_cases`) writes events with unique keys
  (``INSERT … ON CONFLICT DO NOTHING``): a second sweep — in this process or
  another — writes nothing.
* **Personal data**: the reporter's name and phone are returned only to roles
  that handle cases, and every such read writes an audit row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import (
    OPEN_STATES,
    ORG_LEVELS,
    STAGE,
    TZ,
    Actor,
    Case,
    Deadline,
    Handler,
    Placement,
    Summons,
    WorkCalendar,
    apply,
    can_see,
    default_calendar,
    default_policies,
    intake,
    sweep,
    to_local,
)
from gridmap.cases.batch import TICKET_ALIASES, TICKET_FIELDS, intake_frame
from gridmap.db.audit import write_audit
from gridmap.db.bulk import bulk_insert, dumps, encode_geoms, in_chunks, rows_frame
from gridmap.db.models import (
    CalendarDayRow,
    CaseDeadline,
    CaseEvent,
    CaseHandler,
    CaseLog,
    CaseRow,
    Community,
    GridRow,
    PlanRow,
    table,
    utcnow,
)
from gridmap.db.session import Store, transaction
from gridmap.errors import (
    CaseError,
    ConflictError,
    InputError,
    NotFoundError,
    RowsError,
    ScopeError,
)

__all__ = [
    "CASE_LIST_COLUMNS",
    "CaseRecord",
    "ImportResult",
    "SweepResult",
    "CaseLocator",
    "case_locator",
    "create_case",
    "import_cases",
    "get_case",
    "list_cases",
    "case_log",
    "act",
    "sweep_cases",
    "reroute_cases",
    "store_calendar",
    "load_calendar",
    "calendar_status",
    "overdue_states",
]

_C = table(CaseRow)
_D = table(CaseDeadline)
_H = table(CaseHandler)
_L = table(CaseLog)
_E = table(CaseEvent)
_CAL = table(CalendarDayRow)
_G = table(GridRow)
_P = table(PlanRow)
_CM = table(Community)

#: Columns of :func:`list_cases` records (no personal data).
CASE_LIST_COLUMNS: tuple[str, ...] = (
    "id",
    "ticket",
    "source",
    "category",
    "urgency",
    "status",
    "level",
    "version",
    "grid_code",
    "community_id",
    "subdistrict",
    "plan_id",
    "plan_version",
    "lon",
    "lat",
    "address",
    "received_at",
    "due_at",
    "provisional",
    "overdue",
    "suggested_grid",
    "reroute_grid",
    "duplicate_of",
)
#: Roles that see the reporter's name and phone (the others get them masked).
_PERSONAL_ROLES = frozenset(
    {"grid_worker", "grid_chief", "community", "subdistrict", "department", "dispatcher", "admin"}
)
_RESOLVE = "resolve"
#: Imports larger than this skip the likely-duplicate search (its cost grows with clusters).
_DUPLICATES_MAX = 20_000


def overdue_states() -> tuple[str, ...]:
    """States in which a case whose ``resolve`` deadline passed counts as overdue.

    Examples
    --------
    >>> "in_progress" in overdue_states(), "replied" in overdue_states()
    (True, False)
    """
    return tuple(s for s in OPEN_STATES if STAGE[s] < STAGE["replied"])


# ----------------------------------------------------------------------------- time helpers


def _db_time(value: Any, backend: str) -> dt.datetime:
    """Return a time as bound to a query: UTC (naive on SQLite, which stores UTC text)."""
    t = to_local(value).astimezone(UTC)
    return t.replace(tzinfo=None) if backend == "sqlite" else t


def _from_db(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(TZ)


def _times_out(values: pd.Series, backend: str) -> list[Any]:
    """Encode a tz-aware Series for :func:`bulk_insert` (UTC text as SQLAlchemy writes it)."""
    s = pd.Series(values)
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        s = pd.to_datetime(s, utc=True)
    utc = s.dt.tz_convert("UTC")
    fmt = "%Y-%m-%d %H:%M:%S.%f" if backend == "sqlite" else "%Y-%m-%d %H:%M:%S.%f+00"
    text = utc.dt.strftime(fmt)
    return text.astype(object).where(s.notna(), None).tolist()


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class CaseRecord:
    """A stored case: the core record and what the store adds.

    Attributes
    ----------
    case : Case
        The core record (``id`` is the store's id as text).
    suggested_grid : str or None
        For an unlocated case with a point: the nearest grid.
    reroute_grid, reroute_plan_id : str, int or None
        Set after a publish when another grid now covers the case's point.
    duplicate_of : list of str
        Likely duplicates (open cases nearby, same category, within days).
    created_at, updated_at : datetime
    personal : bool
        Whether the reporter's name and phone are shown (else masked).
    """

    case: Case
    suggested_grid: str | None = None
    reroute_grid: str | None = None
    reroute_plan_id: int | None = None
    duplicate_of: list[str] = field(default_factory=list)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    personal: bool = True

    @property
    def id(self) -> int:
        """The case id."""
        return int(self.case.id)

    def overdue(self, now: Any = None) -> bool:
        """Whether the ``resolve`` deadline passed while the case is not replied."""
        due = self.case.deadlines.get(_RESOLVE)
        when = to_local(now) if now is not None else dt.datetime.now(TZ)
        return due is not None and self.case.status in overdue_states() and due.due < when

    def to_dict(self, now: Any = None) -> dict[str, Any]:
        """JSON-compatible view of the case."""
        c = self.case
        due = c.deadlines.get(_RESOLVE)
        return {
            "id": self.id,
            "ticket": c.ticket_no,
            "source": c.source,
            "category": c.category,
            "urgency": c.urgency,
            "hard": c.hard,
            "policy": c.policy,
            "description": c.description,
            "status": c.status,
            "version": c.version,
            "level": c.level,
            "reporter_name": c.reporter_name,
            "reporter_phone": c.reporter_phone,
            "personal": self.personal,
            "lon_given": c.lon_given,
            "lat_given": c.lat_given,
            "crs_given": c.crs_given,
            "lon": c.lon,
            "lat": c.lat,
            "address": c.address,
            "grid_code": c.grid_code,
            "community_id": c.community_id,
            "subdistrict": c.subdistrict,
            "plan_id": int(c.plan_id) if c.plan_id is not None else None,
            "plan_version": c.plan_version,
            "received_at": c.received_at.isoformat(),
            "due_at": due.due.isoformat() if due else None,
            "provisional": c.provisional,
            "overdue": self.overdue(now),
            "deadlines": {
                k: {"due": d.due.isoformat(), "provisional": d.provisional}
                for k, d in c.deadlines.items()
            },
            "handlers": [
                {
                    "kind": h.kind,
                    "unit": h.unit,
                    "lead": h.lead,
                    "person": h.person,
                    "due": h.due.due.isoformat() if h.due else None,
                }
                for h in c.handlers
            ],
            "summons": [
                {
                    "department": s.department,
                    "summoned_at": s.summoned_at.isoformat(),
                    "due": s.due.due.isoformat(),
                    "signed_in_at": s.signed_in_at.isoformat() if s.signed_in_at else None,
                }
                for s in c.summons
            ],
            "satisfaction": c.satisfaction,
            "merged_into": c.merged_into,
            "reopened": c.reopened,
            "suggested_grid": self.suggested_grid,
            "reroute_grid": self.reroute_grid,
            "reroute_plan_id": self.reroute_plan_id,
            "duplicate_of": list(self.duplicate_of),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


@dataclass(frozen=True)
class ImportResult:
    """What an import did.

    Attributes
    ----------
    created : list of int
        Ids of the new cases.
    unchanged : list of int
        Ids of tickets already stored with the same content (nothing written).
    rejected : list of (int, str)
        ``(line, message)`` of every bad row (with ``skip_bad=True``).
    unlocated : int
        New cases outside every grid (or without a point).
    """

    created: list[int]
    unchanged: list[int]
    rejected: list[tuple[int, str]]
    unlocated: int = 0

    def summary(self) -> str:
        """One line saying what happened."""
        parts = [f"{len(self.created)} cases created"]
        if self.unlocated:
            parts.append(f"{self.unlocated} of them unlocated (outside every grid or no point)")
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} already stored with the same content (unchanged)")
        if self.rejected:
            parts.append(f"{len(self.rejected)} rows rejected")
        if not self.created and self.unchanged and not self.rejected:
            parts.append("nothing changed")
        return "; ".join(parts)


@dataclass(frozen=True)
class SweepResult:
    """What a sweep wrote: the events (``written`` of them new) at ``now``."""

    now: dt.datetime
    written: int
    events: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """Count the new events per kind."""
        return {str(k): int(v) for k, v in self.events["kind"].value_counts().items()}


# ----------------------------------------------------------------------------- placement


class CaseLocator:
    """Point → :class:`~gridmap.cases.Placement` over the published plans (WGS84 in).

    Built by :func:`case_locator` (cached per set of published plan versions);
    only read afterwards, so it may be shared by threads (each
    :class:`~gridmap.locate.GridIndex` leases its prepared geometries per call,
    and a transformer is created per call because pyproj's are not thread-safe).
    """

    def __init__(self, parts: list[tuple[Any, dict[str, Placement]]], key: Any) -> None:
        self.parts = parts
        self.key = key

    def __len__(self) -> int:
        return sum(len(idx) for idx, _ in self.parts)

    def locate_many(
        self, lon: np.ndarray, lat: np.ndarray
    ) -> tuple[list[Placement | None], list[str | None]]:
        """Placement (or None) and nearest grid code of each WGS84 point."""
        import pyproj

        n = len(lon)
        found: list[Placement | None] = [None] * n
        nearest: list[str | None] = [None] * n
        best = np.full(n, np.inf)
        for index, places in self.parts:
            tf = pyproj.Transformer.from_crs(4326, index.crs, always_xy=True)
            x, y = tf.transform(np.asarray(lon, float), np.asarray(lat, float))
            res = index.locate(np.asarray(x), np.asarray(y))
            codes = res["grid_code"].to_numpy(object)
            near = res["nearest_grid"].to_numpy(object)
            dist = res["nearest_distance"].to_numpy(float)
            for i in np.flatnonzero(pd.notna(codes)):
                if found[i] is None:
                    found[i] = places[str(codes[i])]
            closer = np.flatnonzero(np.nan_to_num(dist, nan=np.inf) < best)
            for i in closer:
                best[i] = dist[i]
                nearest[i] = None if near[i] is None else str(near[i])
        return found, nearest

    def locate(self, lon: float, lat: float) -> Placement | None:
        """Placement of one WGS84 point (the core's ``Locator``)."""
        return self.locate_many(np.array([lon]), np.array([lat]))[0][0]

    def placement(self, grid_code: str) -> Placement:
        """Placement of a grid by code (for a dispatcher's ``place``)."""
        for _, places in self.parts:
            if grid_code in places:
                return places[grid_code]
        raise NotFoundError(
            f"no published grid {grid_code!r}; GET /plans?status=published lists the plans"
        )


def case_locator(target: Store | Session) -> CaseLocator:
    """Return the locator of the published plans (cached on the store per plan versions)."""
    import geopandas as gpd

    from gridmap.db.plans import _grid_state
    from gridmap.locate import GridIndex

    with transaction(target) as s:
        pub = s.execute(
            sa.select(_P.c.id, _P.c.version, _P.c.crs)
            .where(_P.c.status == "published")
            .order_by(_P.c.id)
        ).all()
        key = ("case_locator", tuple((int(r.id), int(r.version)) for r in pub))
        cache = target._cache if isinstance(target, Store) else {}
        if key in cache:
            return cache[key]
        comm = {
            str(r.community_id): (r.street_code or (r.code[:9] if r.code else None) or "")
            for r in s.execute(sa.select(_CM.c.community_id, _CM.c.street_code, _CM.c.code))
        }
        parts = []
        for r in pub:
            df = _grid_state(s, r.id)
            if len(df) == 0:
                continue
            gdf = gpd.GeoDataFrame(
                {"grid_code": df["grid_code"].astype(str)}, geometry=df["geom"].tolist(), crs=4326
            ).to_crs(r.crs)
            places = {
                str(g): Placement(
                    str(g), str(c or ""), comm.get(str(c), ""), str(r.id), int(r.version)
                )
                for g, c in zip(df["grid_code"], df["community_id"], strict=True)
            }
            parts.append((GridIndex(gdf), places))
    loc = CaseLocator(parts, key)
    if isinstance(target, Store):
        stale = [k for k in target._cache if isinstance(k, tuple) and k[:1] == ("case_locator",)]
        for k in stale:
            del target._cache[k]
        target._cache[key] = loc
    return loc


# ----------------------------------------------------------------------------- calendar


def store_calendar(target: Store | Session) -> WorkCalendar:
    """Return the working-day calendar of the store (the package's until a notice is loaded).

    Examples
    --------
    >>> store_calendar(Store.from_url("sqlite://")).official_years[-1] >= 2026
    True
    """
    with transaction(target) as s:
        rows = s.execute(
            sa.select(_CAL.c.date, _CAL.c.is_workday, _CAL.c.name, _CAL.c.source)
        ).all()
    if not rows:
        return default_calendar()
    frame = pd.DataFrame(rows, columns=["date", "is_workday", "name", "source"])
    frame["date"] = [
        d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for d in frame["date"]
    ]
    frame["name"] = frame["name"].fillna("")
    return WorkCalendar.from_frame(frame)


def calendar_status(target: Store | Session, years: Sequence[int] | None = None) -> pd.DataFrame:
    """Which years are official in the store's calendar (see ``WorkCalendar.status``).

    Adds ``open_provisional``: open cases whose deadlines rest on a provisional year.
    """
    cal = store_calendar(target)
    if years is None:
        this = dt.date.today().year
        years = sorted(set(cal.official_years[-3:]) | {this, this + 1})
    st = cal.status(years).reset_index()
    with transaction(target) as s:
        n = s.execute(
            sa.select(sa.func.count())
            .select_from(_C)
            .where(_C.c.provisional.is_(True), _C.c.status.in_(OPEN_STATES))
        ).scalar_one()
    st.attrs["open_provisional"] = int(n)
    return st


def load_calendar(
    target: Store | Session,
    notice: pd.DataFrame | str | Path,
    *,
    author: str,
    year: int | None = None,
    source: str = "notice",
) -> dict[str, Any]:
    """Load a year's State Council notice; recompute the provisional deadlines of open cases.

    Every recomputed deadline is logged (audit ``deadline.recompute`` with before/after).

    Returns
    -------
    dict
        ``year``, ``days`` (rows of that year) and ``recomputed`` (cases changed).
    """
    from gridmap.cases import load_year_csv

    table_ = load_year_csv(notice, source=source) if isinstance(notice, str | Path) else notice
    with transaction(target, write=True) as s:
        cal = store_calendar(s)
        new = cal.with_year(table_, year=year, source=source)
        frame = new.to_frame()
        if year is not None:
            target_year = int(year)
        else:
            first = table_.iloc[0, 0] if len(table_) else None
            target_year = int(pd.Timestamp(str(first)).year) if first is not None else 0
        s.execute(_CAL.delete())
        s.execute(
            _CAL.insert(),
            [
                {"date": d, "is_workday": bool(w), "name": n or None, "source": src}
                for d, w, n, src in frame.itertuples(index=False)
            ],
        )
        write_audit(
            s,
            actor=author,
            action="calendar.load",
            entity="calendar",
            entity_id=target_year,
            after={"year": target_year, "source": source},
        )
        changed = _recompute_provisional(s, new, author=author)
    days = int(sum(1 for d in frame["date"] if d.year == target_year))
    return {"year": target_year, "days": days, "recomputed": changed}


def _system_line(
    s: Session,
    case_id: int,
    *,
    action: str,
    actor: str,
    note: str,
    data: dict[str, Any],
    values: dict[str, Any],
) -> bool:
    """Change a case's record on the system's behalf and log it (a line that keeps the state).

    Locks the case row, bumps its version (its ETag changes, so a stale edit gets 412) and
    appends the 办理轨迹 line; returns False when the case is gone or closed meanwhile.
    """
    backend = s.get_bind().dialect.name
    q = sa.select(_C.c.version, _C.c.status).where(_C.c.id == case_id)
    if backend == "postgresql":
        q = q.with_for_update()
    row = s.execute(q).first()
    if row is None or row.status not in OPEN_STATES:
        return False
    version = int(row.version) + 1
    s.execute(
        _C.update()
        .where(_C.c.id == case_id, _C.c.version == row.version)
        .values(version=version, updated_at=utcnow(), **values)
    )
    s.execute(
        _L.insert().values(
            case_id=case_id,
            version=version,
            at=_db_time(utcnow(), backend),
            actor=actor,
            role="system",
            unit=None,
            action=action,
            from_state=row.status,
            to_state=row.status,
            note=note,
            data=data,
        )
    )
    return True


def _recompute_provisional(s: Session, cal: WorkCalendar, *, author: str) -> int:
    pols = default_policies()
    backend = s.get_bind().dialect.name
    rows = s.execute(
        sa.select(
            _C.c.id, _C.c.policy, _C.c.category, _C.c.urgency, _C.c.hard, _C.c.received_at
        ).where(_C.c.provisional.is_(True), _C.c.status.in_(OPEN_STATES))
    ).all()
    changed = 0
    for r in rows:
        received = _from_db(r.received_at)
        dls = pols.get(r.policy).deadlines(
            received, category=r.category, urgency=r.urgency, hard=bool(r.hard), calendar=cal
        )
        old = {
            str(d.clock): (_from_db(d.due_at), bool(d.provisional))
            for d in s.execute(sa.select(_D).where(_D.c.case_id == r.id))
        }
        new = {k: (v.due, v.provisional) for k, v in dls.items()}
        if new == old:
            continue
        s.execute(_D.delete().where(_D.c.case_id == r.id))
        s.execute(
            _D.insert(),
            [
                {"case_id": r.id, "clock": k, "due_at": _db_time(d, backend), "provisional": p}
                for k, (d, p) in new.items()
            ],
        )
        resolve = new.get(_RESOLVE)
        before = {k: [d.isoformat() if d else None, p] for k, (d, p) in old.items()}
        after = {k: [d.isoformat(), p] for k, (d, p) in new.items()}
        _system_line(
            s,
            int(r.id),
            action="recompute",
            actor=author,
            note="期限重算: provisional deadlines recomputed with the official calendar",
            data={"before": before, "after": after},
            values={
                "due_at": _db_time(resolve[0], backend) if resolve else None,
                "provisional": any(p for _, p in new.values()),
            },
        )
        write_audit(
            s,
            actor=author,
            action="deadline.recompute",
            entity="case",
            entity_id=r.id,
            before=before,
            after=after,
        )
        changed += 1
    return changed


# ----------------------------------------------------------------------------- writing


_CASE_COLS = (
    "id",
    "ticket_no",
    "source",
    "category",
    "urgency",
    "hard",
    "policy",
    "description",
    "reporter_name",
    "reporter_phone",
    "lon_given",
    "lat_given",
    "crs_given",
    "lon",
    "lat",
    "geom",
    "address",
    "grid_code",
    "community_id",
    "subdistrict",
    "plan_id",
    "plan_version",
    "received_at",
    "status",
    "version",
    "level",
    "reopened",
    "due_at",
    "provisional",
    "suggested_grid",
    "duplicate_of",
    "content_hash",
    "created_at",
    "updated_at",
)


def _content_hash(frame: pd.DataFrame) -> list[str]:
    """Return a digest of each ticket's intake fields (same content → same digest)."""
    cols = [c for c in TICKET_FIELDS if c in frame.columns]
    parts = []
    for c in cols:
        s = frame[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            text = s.dt.tz_convert(TZ).dt.strftime("%Y-%m-%dT%H:%M:%S")
        else:
            text = s.astype(object).where(s.notna(), "").astype(str).str.strip()
            if c == "received_at":
                text = text.str.replace(" ", "T", regex=False).str.replace(
                    r"(\+08:00|\.0+)$", "", regex=True
                )
        parts.append(c + "=" + text)
    if not parts:
        return ["" for _ in range(len(frame))]
    joined = parts[0]
    for p in parts[1:]:
        joined = joined + "\x1f" + p
    return [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in joined.tolist()]


def _reserve_ids(s: Session, n: int) -> list[int]:
    if n == 0:
        return []
    if s.get_bind().dialect.name == "postgresql":
        return [
            int(v)
            for v in s.execute(
                sa.text(
                    "SELECT nextval(pg_get_serial_sequence('cases', 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": n},
            ).scalars()
        ]
    start = int(s.execute(sa.select(sa.func.coalesce(sa.func.max(_C.c.id), 0))).scalar_one())
    return list(range(start + 1, start + 1 + n))


def _write_cases(s: Session, cases: pd.DataFrame, *, author: str) -> None:
    """Insert intake rows (from :func:`intake_frame`) with deadlines and the intake log line."""
    backend = s.get_bind().dialect.name
    n = len(cases)
    if n == 0:
        return
    now = utcnow()
    now_text = _times_out(pd.Series([now] * n), backend)
    lon = cases["lon"].to_numpy(float)
    lat = cases["lat"].to_numpy(float)
    has = np.isfinite(lon) & np.isfinite(lat)
    import shapely

    geoms = np.full(n, None, dtype=object)
    if has.any():
        enc = encode_geoms(shapely.points(lon[has], lat[has]), backend)
        geoms[np.flatnonzero(has)] = np.asarray(enc + [None], dtype=object)[:-1]
    due_col = f"due:{_RESOLVE}"
    due = cases[due_col] if due_col in cases else pd.Series([pd.NaT] * n)
    prov_cols = [c for c in cases.columns if c.startswith("prov:")]
    prov = np.zeros(n, dtype=bool)
    if prov_cols:
        prov = np.asarray(cases[prov_cols].to_numpy(bool).any(axis=1), dtype=bool)

    def col(name: str, kind: type | None = None) -> list[Any]:
        s_ = cases[name]
        vals = s_.astype(object).where(s_.notna(), None).tolist()
        return vals if kind is None else [None if v is None else kind(v) for v in vals]

    dup = cases["duplicate_of"] if "duplicate_of" in cases else pd.Series([None] * n)
    columns = {
        "id": col("id", int),
        "ticket_no": col("ticket_no"),
        "source": col("source"),
        "category": col("category"),
        "urgency": col("urgency"),
        "hard": [bool(v) for v in cases["hard"]],
        "policy": col("policy"),
        "description": col("description"),
        "reporter_name": col("reporter_name"),
        "reporter_phone": col("reporter_phone"),
        "lon_given": col("lon_given", float),
        "lat_given": col("lat_given", float),
        "crs_given": col("crs_given"),
        "lon": col("lon", float),
        "lat": col("lat", float),
        "geom": geoms.tolist(),
        "address": col("address"),
        "grid_code": col("grid_code"),
        "community_id": col("community_id"),
        "subdistrict": col("subdistrict"),
        "plan_id": col("plan_id", int),
        "plan_version": col("plan_version", int),
        "received_at": _times_out(cases["received_at"], backend),
        "status": col("status"),
        "version": [1] * n,
        "level": ["grid"] * n,
        "reopened": [0] * n,
        "due_at": _times_out(due, backend),
        "provisional": [bool(v) for v in prov],
        "suggested_grid": col("nearest_grid"),
        "duplicate_of": [dumps(v) if v else None for v in dup.tolist()],
        "content_hash": col("content_hash"),
        "created_at": now_text,
        "updated_at": now_text,
    }
    bulk_insert(s, _C, list(_CASE_COLS), zip(*(columns[c] for c in _CASE_COLS), strict=True))
    ids = columns["id"]
    d_rows: list[tuple[Any, ...]] = []
    for c in [c[4:] for c in cases.columns if c.startswith("due:")]:
        dues = _times_out(cases[f"due:{c}"], backend)
        provs = cases[f"prov:{c}"].to_numpy(bool)
        d_rows += [
            (i, c, d, bool(p)) for i, d, p in zip(ids, dues, provs, strict=True) if d is not None
        ]
    bulk_insert(s, _D, ["case_id", "clock", "due_at", "provisional"], d_rows)
    actor = str(author)
    log_rows = (
        (i, 1, t, actor, "intake", None, "intake", None, st, None, None)
        for i, t, st in zip(ids, now_text, columns["status"], strict=True)
    )
    bulk_insert(
        s,
        _L,
        [
            "case_id",
            "version",
            "at",
            "actor",
            "role",
            "unit",
            "action",
            "from_state",
            "to_state",
            "note",
            "data",
        ],
        log_rows,
    )


def _existing(
    s: Session, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, str]]:
    """Return the stored (source, ticket) → (id, content hash)."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    tickets = sorted({t for _, t in keys})
    if not tickets:
        return out
    total = s.execute(sa.select(sa.func.count()).select_from(_C)).scalar_one()
    q = sa.select(_C.c.source, _C.c.ticket_no, _C.c.id, _C.c.content_hash).where(
        _C.c.ticket_no.is_not(None)
    )
    if len(tickets) > 20_000 or total < 50_000:
        if total == 0:
            return out
        rows = s.execute(q).all()
    else:
        rows = []
        for chunk in in_chunks(tickets, 1000):
            rows += s.execute(q.where(_C.c.ticket_no.in_(list(chunk)))).all()
    want = set(keys)
    for src, t, i, h in rows:
        if (src, t) in want:
            out[(src, t)] = (int(i), str(h))
    return out


def _duplicates(
    s: Session, cases: pd.DataFrame, *, radius: float = 50.0, days: float = 7.0
) -> pd.Series:
    """Likely duplicates of each new case: open cases (stored or in the batch) nearby."""
    import pyproj

    from gridmap.cases import find_duplicates

    out: pd.Series = pd.Series([[] for _ in range(len(cases))], index=cases.index, dtype=object)
    has = np.isfinite(cases["lon"].to_numpy(float))
    if not has.any() or len(cases) > _DUPLICATES_MAX:
        return out
    new = cases[has]
    lo = pd.Timestamp(new["received_at"].min()) - pd.Timedelta(days=days)
    hi = pd.Timestamp(new["received_at"].max()) + pd.Timedelta(days=days)
    backend = s.get_bind().dialect.name
    stored = s.execute(
        sa.select(_C.c.id, _C.c.category, _C.c.received_at, _C.c.lon, _C.c.lat).where(
            _C.c.status.in_(OPEN_STATES),
            _C.c.lon.is_not(None),
            _C.c.received_at >= _db_time(lo.to_pydatetime(), backend),
            _C.c.received_at <= _db_time(hi.to_pydatetime(), backend),
        )
    ).all()
    old = pd.DataFrame(stored, columns=["id", "category", "received_at", "lon", "lat"])
    old["received_at"] = pd.to_datetime(
        pd.Series([_from_db(v) for v in old["received_at"]], dtype=object), utc=True
    )
    batch = new[["id", "category", "received_at", "lon", "lat"]].copy()
    batch["received_at"] = pd.to_datetime(batch["received_at"], utc=True)
    pool = pd.concat([old.astype({"id": str}), batch.astype({"id": str})], ignore_index=True)
    zone = int((float(np.nanmean(new["lon"])) + 180) // 6) + 1
    tf = pyproj.Transformer.from_crs(4326, 32600 + zone, always_xy=True)
    for frame in (pool, batch):
        frame["x"], frame["y"] = tf.transform(
            frame["lon"].to_numpy(float), frame["lat"].to_numpy(float)
        )
    batch = batch.astype({"id": str})
    found = find_duplicates(batch, pool, radius=radius, days=days)
    ids = batch["id"].tolist()
    # a new case points only at cases received before it (the first of a cluster stays clean)
    order = {i: t for i, t in zip(pool["id"], pool["received_at"], strict=True)}
    cleaned = [
        [c for c in cands if order[c] < order[me] or (order[c] == order[me] and c < me)]
        for me, cands in zip(ids, found.tolist(), strict=True)
    ]
    out.loc[new.index] = pd.Series(cleaned, index=new.index, dtype=object)
    return out


def _prepare(
    s: Session,
    frame: pd.DataFrame,
    lines: np.ndarray,
    *,
    calendar: WorkCalendar | None,
) -> tuple[pd.DataFrame, list[tuple[int, str]], list[int], bool]:
    """Intake a table: (cases to write, rejects, ids unchanged, any conflict)."""
    n = len(frame)
    hashes = np.asarray(_content_hash(frame), dtype=object)
    cal = calendar or store_calendar(s)
    loc = case_locator(s)
    ids = _reserve_ids(s, n)
    cases, errors = intake_frame(
        frame, ids=[str(i) for i in ids], locate_many=loc.locate_many, calendar=cal
    )
    rejects = [(int(lines[r]), m) for r, m in errors]
    cases["content_hash"] = hashes[cases["row"].to_numpy(int)]
    unchanged: list[int] = []
    conflict = False
    keep = np.ones(len(cases), dtype=bool)
    tick = cases["ticket_no"].to_numpy(object)
    src = cases["source"].to_numpy(object)
    keyed = np.flatnonzero(pd.notna(tick))
    keys = [(str(src[i]), str(tick[i])) for i in keyed]
    stored = _existing(s, keys)
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    rows = cases["row"].to_numpy(int)
    content = cases["content_hash"].to_numpy(object)
    for i, k in zip(keyed, keys, strict=True):
        h = str(content[i])
        line = int(lines[rows[i]])
        if k in stored:
            keep[i] = False
            if stored[k][1] == h:
                unchanged.append(stored[k][0])
            else:
                conflict = True
                rejects.append(
                    (
                        line,
                        f"ticket {k[1]!r} of source {k[0]!r} is already stored as case "
                        f"{stored[k][0]} with other content; a ticket number is unique per "
                        "source — correct the number, or act on the stored case",
                    )
                )
        elif k in seen:
            keep[i] = False
            if seen[k][1] != h:
                conflict = True
                rejects.append(
                    (
                        line,
                        f"ticket {k[1]!r} of source {k[0]!r} repeats line {seen[k][0]} with other "
                        "content; a ticket number is unique per source",
                    )
                )
        else:
            seen[k] = (line, h)
    rejects.sort()
    out = cases[keep].reset_index(drop=True)
    if len(out):
        out["duplicate_of"] = _duplicates(s, out).tolist()
    return out, rejects, unchanged, conflict


def import_cases(
    target: Store | Session,
    tickets: pd.DataFrame | str | Path | bytes,
    *,
    author: str,
    skip_bad: bool = False,
    mapping: Mapping[str, str] | Sequence[str] | None = None,
    calendar: WorkCalendar | None = None,
    name: str | None = None,
) -> ImportResult:
    """Import a table of tickets in one transaction.

    Parameters
    ----------
    target : Store or Session
    tickets : DataFrame, path or bytes
        Canonical columns (:data:`gridmap.cases.batch.TICKET_FIELDS`), or a
        CSV/XLSX file read with :func:`gridmap.tables.read_table` (Chinese or
        English headers, UTF-8/GBK).
    author : str
        Who imports (log and audit).
    skip_bad : bool, default False
        Store the good rows and return the rejects; by default any bad row
        stores nothing and raises.
    mapping : mapping or ``CANONICAL=SOURCE`` strings, optional
        Column mapping for files whose headers the aliases do not know.
    calendar : WorkCalendar, optional
        Default: the store's.
    name : str, optional
        The file's name in messages.

    Returns
    -------
    ImportResult

    Raises
    ------
    RowsError
        Some rows are bad (every one listed by line) and ``skip_bad`` is False;
        ``conflict`` is True when a ticket number is reused with other content.

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> rows = pd.DataFrame({"ticket_no": ["T1"], "source": ["hotline"], "category": ["noise"],
    ...                      "description": ["夜间施工"], "address": ["幸福路1号"],
    ...                      "received_at": ["2026-09-18 10:00"]})
    >>> import_cases(store, rows, author="li").summary()
    '1 cases created; 1 of them unlocated (outside every grid or no point)'
    >>> import_cases(store, rows, author="li").summary()
    '0 cases created; 1 already stored with the same content (unchanged); nothing changed'
    """
    from gridmap.tables import read_table

    if isinstance(tickets, pd.DataFrame):
        frame = tickets.reset_index(drop=True)
        lines = np.arange(len(frame), dtype=np.int64) + 2
    else:
        read = read_table(tickets, aliases=TICKET_ALIASES, mapping=mapping, name=name)
        frame, lines = read.frame, read.lines
        unknown = [c for c in frame.columns if c not in TICKET_FIELDS]
        frame = frame.drop(columns=unknown)
    if len(frame) == 0:
        raise InputError(f"{name or 'the ticket table'} has no rows")
    with transaction(target, write=True) as s:
        cases, rejects, unchanged, conflict = _prepare(s, frame, lines, calendar=calendar)
        if rejects and not skip_bad:
            shown = "; ".join(f"line {ln}: {m}" for ln, m in rejects[:5])
            more = f" (and {len(rejects) - 5} more)" if len(rejects) > 5 else ""
            raise RowsError(
                f"{len(rejects)} of {len(frame)} rows are bad; nothing was stored. {shown}{more}. "
                "Fix them, or import the good rows with skip_bad (--skip-bad)",
                rows=rejects,
                conflict=conflict,
            )
        _write_cases(s, cases, author=author)
        created = pd.to_numeric(cases["id"]).astype("int64").tolist() if len(cases) else []
        if created or rejects:
            write_audit(
                s,
                actor=author,
                action="import",
                entity="cases",
                entity_id=f"{created[0]}-{created[-1]}" if created else "-",
                after={
                    "created": len(created),
                    "unchanged": len(unchanged),
                    "rejected": len(rejects),
                },
            )
    unlocated = int((cases["status"] == "unlocated").sum()) if len(cases) else 0
    return ImportResult(created, unchanged, rejects, unlocated)


def create_case(
    target: Store | Session,
    ticket: Mapping[str, Any],
    *,
    author: str,
    calendar: WorkCalendar | None = None,
) -> tuple[CaseRecord, bool]:
    """Take in one ticket; return the stored case and whether it is new.

    The same ticket (source + number, same content) sent again returns the
    stored case unchanged (``False``); other content under that number is a
    :class:`~gridmap.errors.ConflictError`.

    Raises
    ------
    CaseError, CRSError, CoordinateError
        The ticket cannot be taken in (the message says what to fix).
    ConflictError
        The ticket number is already stored with other content.
    """
    unknown = sorted(set(ticket) - set(TICKET_FIELDS))
    if unknown:
        raise CaseError(f"unknown ticket field(s) {unknown}; fields: {list(TICKET_FIELDS)}")
    frame = pd.DataFrame([{k: ticket.get(k) for k in TICKET_FIELDS}])
    with transaction(target, write=True) as s:
        cal = calendar or store_calendar(s)
        loc = case_locator(s)
        intake(ticket, case_id="0", locate=loc.locate, calendar=cal)  # typed errors
        cases, rejects, unchanged, conflict = _prepare(s, frame, np.array([1]), calendar=cal)
        if unchanged:
            return _load(s, unchanged[0]), False
        if rejects:
            if conflict:
                raise ConflictError(rejects[0][1])
            raise CaseError(rejects[0][1])
        _write_cases(s, cases, author=author)
        rec = _load(s, int(cases["id"].iloc[0]))
    return rec, True


# ----------------------------------------------------------------------------- reading


def _load(s: Session, case_id: int, *, lock: bool = False) -> CaseRecord:
    q = sa.select(_C).where(_C.c.id == int(case_id))
    if lock and s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    row = s.execute(q).mappings().first()
    if row is None:
        raise NotFoundError(f"no case {case_id}; GET /cases (gridmap cases list) lists them")
    deadlines = {
        str(d.clock): Deadline(_from_db(d.due_at), bool(d.provisional))  # type: ignore[arg-type]
        for d in s.execute(sa.select(_D).where(_D.c.case_id == int(case_id)))
    }
    handlers: list[Handler] = []
    summons: list[Summons] = []
    for h in s.execute(sa.select(_H).where(_H.c.case_id == int(case_id)).order_by(_H.c.id)):
        due = Deadline(_from_db(h.due_at), bool(h.due_provisional)) if h.due_at else None  # type: ignore[arg-type]
        if h.role == "summoned":
            summons.append(
                Summons(h.unit, _from_db(h.summoned_at), due, _from_db(h.signed_in_at))  # type: ignore[arg-type]
            )
        else:
            handlers.append(Handler(h.unit, h.kind, h.role == "lead", due, h.person))
    case = Case(
        id=str(row["id"]),
        source=row["source"],
        category=row["category"],
        urgency=row["urgency"],
        description=row["description"],
        policy=row["policy"],
        received_at=_from_db(row["received_at"]),  # type: ignore[arg-type]
        status=row["status"],
        version=int(row["version"]),
        ticket_no=row["ticket_no"],
        reporter_name=row["reporter_name"],
        reporter_phone=row["reporter_phone"],
        lon_given=row["lon_given"],
        lat_given=row["lat_given"],
        crs_given=row["crs_given"],
        lon=row["lon"],
        lat=row["lat"],
        address=row["address"],
        grid_code=row["grid_code"],
        community_id=row["community_id"],
        subdistrict=row["subdistrict"],
        plan_id=None if row["plan_id"] is None else str(row["plan_id"]),
        plan_version=row["plan_version"],
        deadlines=deadlines,
        hard=bool(row["hard"]),
        level=row["level"],
        handlers=tuple(handlers),
        summons=tuple(summons),
        satisfaction=row["satisfaction"],
        merged_into=row["merged_into"],
        reopened=int(row["reopened"]),
    )
    return CaseRecord(
        case,
        suggested_grid=row["suggested_grid"],
        reroute_grid=row["reroute_grid"],
        reroute_plan_id=row["reroute_plan_id"],
        duplicate_of=list(row["duplicate_of"] or []),
        created_at=_from_db(row["created_at"]),
        updated_at=_from_db(row["updated_at"]),
    )


def _visible(actor: Actor | None, rec: CaseRecord, *, author: str, s: Session) -> CaseRecord:
    if actor is None:
        return rec
    if not can_see(actor, rec.case):
        raise ScopeError(
            f"case {rec.id} is outside {actor.role} {actor.unit!r}'s unit; ask a dispatcher "
            "or the unit in charge"
        )
    if actor.role not in _PERSONAL_ROLES:
        return replace(rec, case=rec.case.redacted(), personal=False)
    if rec.case.reporter_name or rec.case.reporter_phone:
        write_audit(
            s,
            actor=author,
            action="read.personal",
            entity="case",
            entity_id=rec.id,
            grid_code=rec.case.grid_code,
            after={"fields": ["reporter_name", "reporter_phone"], "role": actor.role},
        )
    return rec


def get_case(
    target: Store | Session, case_id: int, *, actor: Actor | None = None, author: str = "system"
) -> CaseRecord:
    """Return a stored case as ``actor`` may see it (reads of personal data are audited).

    Raises
    ------
    NotFoundError
        Unknown id.
    ScopeError
        The case is outside the actor's org unit.
    """
    with transaction(target, write=actor is not None) as s:
        return _visible(actor, _load(s, case_id), author=author, s=s)


def _scope_clause(actor: Actor | None) -> Any:
    if actor is None or actor.role in ("dispatcher", "admin"):
        return sa.true()
    unit = actor.unit
    handled = sa.select(_H.c.case_id).where(_H.c.unit == unit)
    if actor.role == "viewer":
        if unit is None:
            return sa.true()
        return sa.or_(_C.c.grid_code == unit, _C.c.community_id == unit, _C.c.subdistrict == unit)
    kind = actor.unit_kind
    col = {"grid": _C.c.grid_code, "community": _C.c.community_id, "subdistrict": _C.c.subdistrict}
    if kind in col:
        return sa.or_(col[kind] == unit, _C.c.id.in_(handled))
    return _C.c.id.in_(handled)


def list_cases(
    target: Store | Session,
    *,
    actor: Actor | None = None,
    status: str | Sequence[str] | None = None,
    grid: str | None = None,
    community: str | None = None,
    subdistrict: str | None = None,
    category: str | None = None,
    source: str | None = None,
    overdue: bool | None = None,
    due_before: Any = None,
    received_from: Any = None,
    received_to: Any = None,
    now: Any = None,
    limit: int | None = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """List cases (no personal data), newest first, with the total matching count.

    Parameters
    ----------
    actor : Actor, optional
        Limits the list to the actor's org unit.
    status, grid, community, subdistrict, category, source : optional
        Filters (``status`` may be a list).
    overdue : bool, optional
        Only cases whose resolve deadline passed before ``now`` while not
        replied (or only the others, with False).
    due_before, received_from, received_to : datetime, optional
    now : datetime, optional
        Default: the current time.
    limit, offset : int
        Paging (``limit=None``: everything).

    Returns
    -------
    (list of dict, int)
        Records with :data:`CASE_LIST_COLUMNS`, and the total.
    """
    when = to_local(now) if now is not None else dt.datetime.now(TZ)
    with transaction(target) as s:
        backend = s.get_bind().dialect.name
        now_db = _db_time(when, backend)
        conds = [_scope_clause(actor)]
        if status:
            sts = [status] if isinstance(status, str) else list(status)
            conds.append(_C.c.status.in_(sts))
        for colname, value in (
            ("grid_code", grid),
            ("community_id", community),
            ("subdistrict", subdistrict),
            ("category", category),
            ("source", source),
        ):
            if value:
                conds.append(_C.c[colname] == value)
        late = sa.and_(
            _C.c.status.in_(overdue_states()), _C.c.due_at.is_not(None), _C.c.due_at < now_db
        )
        if overdue is True:
            conds.append(late)
        elif overdue is False:
            conds.append(sa.not_(late))
        if due_before is not None:
            conds.append(_C.c.due_at < _db_time(due_before, backend))
        if received_from is not None:
            conds.append(_C.c.received_at >= _db_time(received_from, backend))
        if received_to is not None:
            conds.append(_C.c.received_at < _db_time(received_to, backend))
        where = sa.and_(*conds)
        total = s.execute(sa.select(sa.func.count()).select_from(_C).where(where)).scalar_one()
        cols = [
            _C.c.id,
            _C.c.ticket_no,
            _C.c.source,
            _C.c.category,
            _C.c.urgency,
            _C.c.status,
            _C.c.level,
            _C.c.version,
            _C.c.grid_code,
            _C.c.community_id,
            _C.c.subdistrict,
            _C.c.plan_id,
            _C.c.plan_version,
            _C.c.lon,
            _C.c.lat,
            _C.c.address,
            _C.c.received_at,
            _C.c.due_at,
            _C.c.provisional,
            sa.case((late, True), else_=False).label("overdue"),
            _C.c.suggested_grid,
            _C.c.reroute_grid,
            _C.c.duplicate_of,
        ]
        q = sa.select(*cols).where(where).order_by(_C.c.received_at.desc(), _C.c.id.desc())
        if limit is not None:
            q = q.limit(int(limit))
        if offset:
            q = q.offset(int(offset))
        rows = s.execute(q).all()
    out = []
    for r in rows:
        rec = dict(zip(CASE_LIST_COLUMNS, r, strict=True))
        rec["received_at"] = _from_db(rec["received_at"]).isoformat()  # type: ignore[union-attr]
        due = _from_db(rec["due_at"])
        rec["due_at"] = due.isoformat() if due else None
        rec["provisional"] = bool(rec["provisional"])
        rec["overdue"] = bool(rec["overdue"])
        rec["duplicate_of"] = list(rec["duplicate_of"] or [])
        out.append(rec)
    return out, int(total)


def case_log(
    target: Store | Session, case_id: int, *, actor: Actor | None = None
) -> list[dict[str, Any]]:
    """Return the 办理轨迹 of a case, oldest first (who, role, when, from → to, note)."""
    with transaction(target) as s:
        rec = _load(s, case_id)
        if actor is not None and not can_see(actor, rec.case):
            raise ScopeError(f"case {case_id} is outside {actor.role} {actor.unit!r}'s unit")
        rows = s.execute(
            sa.select(_L).where(_L.c.case_id == int(case_id)).order_by(_L.c.version)
        ).mappings()
        out = []
        for r in rows:
            d = {k: r[k] for k in ("version", "actor", "role", "unit", "action", "note")}
            d["at"] = _from_db(r["at"]).isoformat()  # type: ignore[union-attr]
            d["from"] = r["from_state"]
            d["to"] = r["to_state"]
            d["data"] = r["data"] or {}
            out.append(d)
    return out


# ----------------------------------------------------------------------------- acting


def _handler(value: Any) -> Handler:
    if isinstance(value, Handler):
        return value
    text = str(value)
    due = None
    if "@" in text:
        text, _, when = text.partition("@")
        due = Deadline(to_local(when), False)
    kind, sep, unit = text.partition(":")
    if not sep:
        raise CaseError(f"a handler is KIND:UNIT (e.g. grid:320104001001001), got {value!r}")
    return Handler(unit.strip(), kind.strip(), due=due)


def _save(s: Session, old: CaseRecord, new: Case, entry: Any) -> None:
    backend = s.get_bind().dialect.name
    resolve = new.deadlines.get(_RESOLVE)
    res = s.execute(
        _C.update()
        .where(_C.c.id == old.id, _C.c.version == old.case.version)
        .values(
            status=new.status,
            version=new.version,
            level=new.level,
            satisfaction=new.satisfaction,
            merged_into=new.merged_into,
            reopened=new.reopened,
            grid_code=new.grid_code,
            community_id=new.community_id,
            subdistrict=new.subdistrict,
            plan_id=None if new.plan_id is None else int(new.plan_id),
            plan_version=new.plan_version,
            due_at=_db_time(resolve.due, backend) if resolve else None,
            provisional=new.provisional,
            updated_at=utcnow(),
        )
    )
    if getattr(res, "rowcount", 1) != 1:
        raise ConflictError(
            f"case {old.id} changed while you acted on it; reload it and try again",
            current_version=None,
        )
    if new.deadlines != old.case.deadlines:
        s.execute(_D.delete().where(_D.c.case_id == old.id))
        s.execute(
            _D.insert(),
            [
                {
                    "case_id": old.id,
                    "clock": k,
                    "due_at": _db_time(d.due, backend),
                    "provisional": d.provisional,
                }
                for k, d in new.deadlines.items()
            ],
        )
    if new.handlers != old.case.handlers or new.summons != old.case.summons:
        s.execute(_H.delete().where(_H.c.case_id == old.id))
        rows = [
            {
                "case_id": old.id,
                "kind": h.kind,
                "unit": h.unit,
                "role": "lead" if h.lead else "co",
                "person": h.person,
                "due_at": _db_time(h.due.due, backend) if h.due else None,
                "due_provisional": bool(h.due.provisional) if h.due else False,
                "summoned_at": None,
                "signed_in_at": None,
            }
            for h in new.handlers
        ] + [
            {
                "case_id": old.id,
                "kind": "department",
                "unit": m.department,
                "role": "summoned",
                "person": None,
                "due_at": _db_time(m.due.due, backend),
                "due_provisional": bool(m.due.provisional),
                "summoned_at": _db_time(m.summoned_at, backend),
                "signed_in_at": _db_time(m.signed_in_at, backend) if m.signed_in_at else None,
            }
            for m in new.summons
        ]
        if rows:
            s.execute(_H.insert(), rows)
    try:
        with s.begin_nested():
            s.execute(
                _L.insert().values(
                    case_id=old.id,
                    version=entry.version,
                    at=_db_time(entry.at, backend),
                    actor=entry.actor_id,
                    role=entry.role,
                    unit=entry.unit,
                    action=entry.action,
                    from_state=entry.from_state,
                    to_state=entry.to_state,
                    note=entry.note,
                    data=dict(entry.data) or None,
                )
            )
    except sa.exc.IntegrityError:
        raise ConflictError(
            f"case {old.id} was changed by someone else at the same moment; reload and retry"
        ) from None


def act(
    target: Store | Session,
    case_id: int,
    action: str,
    *,
    actor: Actor,
    author: str,
    expected_version: int | None,
    at: Any = None,
    note: str | None = None,
    reason: str | None = None,
    satisfaction: str | None = None,
    handler: Any = None,
    co_handlers: Sequence[Any] = (),
    due: Any = None,
    departments: Sequence[str] = (),
    grid: str | None = None,
    into: int | str | None = None,
) -> CaseRecord:
    """Apply an action of the state machine to a stored case.

    Parameters
    ----------
    case_id, action : int, str
    actor : Actor
        Who acts (role and org unit).
    author : str
        How the actor is named in the log.
    expected_version : int or None
        The version the caller read (``None``: no check — the CLI's ``--force``).
    at : datetime, optional
        Default: now.
    note, reason, satisfaction, due, departments :
        As :func:`gridmap.cases.apply`.
    handler, co_handlers : str or Handler
        ``"KIND:UNIT"`` (``grid:320104001001001``), optionally ``@DUE`` for a
        co-handler's own deadline.
    grid : str, optional
        For ``place``: the published grid to put the case in.
    into : int, optional
        For ``merge``.

    Raises
    ------
    TransitionError, PermissionDeniedError, ScopeError, CaseError
        From the core's table (see :func:`gridmap.cases.apply`).
    ConflictError
        The case moved on since ``expected_version`` (or concurrently).
    """
    when = to_local(at) if at is not None else dt.datetime.now(TZ)
    with transaction(target, write=True) as s:
        rec = _load(s, case_id, lock=True)
        if expected_version is not None and expected_version != rec.case.version:
            raise ConflictError(  # stale first: whatever the action, the caller must reload
                f"case {case_id} is at version {rec.case.version}, not {expected_version}: "
                "someone acted on it since you loaded it; reload it and try again",
                current_version=rec.case.version,
            )
        placement = None
        if action == "place" and grid:
            placement = case_locator(s).placement(grid)
        if into is not None:
            _load(s, int(into))
        deadlines = None
        if action == "reopen":
            c = rec.case
            deadlines = (
                default_policies()
                .get(c.policy)
                .deadlines(
                    when,
                    category=c.category,
                    urgency=c.urgency,
                    hard=c.hard,
                    calendar=store_calendar(s),
                )
            )
        new, entry = apply(
            rec.case,
            action,
            replace(actor, id=author),
            at=when,
            note=note,
            reason=reason,
            satisfaction=satisfaction,
            handler=_handler(handler) if handler is not None else None,
            co_handlers=[_handler(h) for h in co_handlers],
            due=due,
            departments=list(departments),
            placement=placement,
            into=str(into) if into is not None else None,
            deadlines=deadlines,
            expected_version=expected_version,
        )
        _save(s, rec, new, entry)
        return _visible(actor, _load(s, case_id), author=author, s=s)


# ----------------------------------------------------------------------------- sweep


def _clock_frame(s: Session) -> pd.DataFrame:
    open_ = list(OPEN_STATES)
    q = (
        sa.select(
            _C.c.id,
            _D.c.clock,
            _C.c.policy,
            _C.c.received_at,
            _D.c.due_at,
            _C.c.level,
            _C.c.reopened,
            _C.c.status,
        )
        .join(_D, _D.c.case_id == _C.c.id)
        .where(_C.c.status.in_(open_))
    )
    rows = s.execute(q).all()
    base = rows_frame(
        rows, ["case_id", "clock", "policy", "start", "due", "level", "cycle", "status"]
    )
    base["follow_up"] = True
    hq = (
        sa.select(
            _C.c.id,
            _H.c.role,
            _H.c.unit,
            _C.c.policy,
            _C.c.received_at,
            _H.c.summoned_at,
            _H.c.due_at,
            _C.c.level,
            _C.c.reopened,
            _C.c.status,
        )
        .join(_H, _H.c.case_id == _C.c.id)
        .where(
            _C.c.status.in_(open_),
            _H.c.due_at.is_not(None),
            _H.c.role != "lead",
            _H.c.signed_in_at.is_(None),
        )
    )
    extra = []
    for r in s.execute(hq):
        if r.role == "co" and STAGE[r.status] >= STAGE["replied"]:
            continue
        summoned = r.role == "summoned"
        extra.append(
            {
                "case_id": r.id,
                "clock": f"{'report_in' if summoned else 'handler'}:{r.unit}",
                "policy": r.policy,
                "start": r.summoned_at if summoned else r.received_at,
                "due": r.due_at,
                "level": r.level,
                "cycle": r.reopened,
                "status": r.status,
                "follow_up": False,
            }
        )
    frame = pd.concat([base, pd.DataFrame(extra, columns=base.columns)], ignore_index=True)
    for col in ("start", "due"):
        vals = frame[col]
        if len(vals) and isinstance(vals.iloc[0], str):
            frame[col] = pd.to_datetime(vals, utc=True, format="ISO8601")
        else:
            frame[col] = pd.to_datetime(
                [v if v is None or v.tzinfo else v.replace(tzinfo=UTC) for v in vals], utc=True
            )
    frame["case_id"] = frame["case_id"].astype(str)
    frame["cycle"] = frame["cycle"].astype("int64")
    return frame


def sweep_cases(
    target: Store | Session,
    *,
    now: Any = None,
    calendar: WorkCalendar | None = None,
) -> SweepResult:
    """Write the timer events due at ``now`` (warnings, overdue, 催办, 督办, escalation).

    Idempotent, and safe with several processes: each event has a unique key
    and is inserted with ``ON CONFLICT DO NOTHING``, so a second sweep (here or
    elsewhere) writes nothing.

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> sweep_cases(store, now="2026-09-23 09:00").written
    0
    """
    when = to_local(now) if now is not None else dt.datetime.now(TZ)
    with transaction(target, write=True) as s:
        backend = s.get_bind().dialect.name
        cal = calendar or store_calendar(s)
        clocks = _clock_frame(s)
        if len(clocks) == 0:
            return SweepResult(when, 0, sweep(clocks, when, cal))
        done = set(
            s.execute(
                sa.select(_E.c.key)
                .join(_C, _C.c.id == _E.c.case_id)
                .where(_C.c.status.in_(list(OPEN_STATES)))
            ).scalars()
        )
        events = sweep(clocks, when, cal, already=done)
        if len(events) == 0:
            return SweepResult(when, 0, events)
        stamp = utcnow()
        rows = [
            {
                "key": k,
                "case_id": int(c),
                "clock": cl,
                "kind": kd,
                "level": int(lv),
                "at": _db_time(a.to_pydatetime(), backend),
                "due": _db_time(d.to_pydatetime(), backend),
                "target": tg,
                "swept_at": _db_time(stamp, backend),
            }
            for k, c, cl, kd, lv, a, d, tg in zip(
                events["key"],
                events["case_id"],
                events["clock"],
                events["kind"],
                events["level"],
                events["at"],
                events["due"],
                events["target"],
                strict=True,
            )
        ]
        if backend == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt: Any = pg_insert(_E).on_conflict_do_nothing(index_elements=["key"])
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(_E).on_conflict_do_nothing(index_elements=["key"])
        for chunk in in_chunks(rows, 5000):
            s.execute(stmt, list(chunk))
        fresh = s.execute(
            sa.select(_E.c.key, _E.c.case_id, _E.c.kind, _E.c.target).where(
                _E.c.swept_at == _db_time(stamp, backend)
            )
        ).all()
        _raise_levels(s, [r for r in fresh if r.kind == "escalate"])
    return SweepResult(when, len(fresh), events)


def _raise_levels(s: Session, escalations: Sequence[Any]) -> int:
    """Raise each escalated case to the level its policy names (grid → community → sub-district).

    Only events this sweep wrote count (another process's sweep raises its own), and a level is
    only ever raised: a case a person already escalated further keeps its level.
    """
    rank = {lv: i for i, lv in enumerate(ORG_LEVELS)}
    top: dict[int, tuple[str, str]] = {}
    for r in escalations:
        if r.target in rank and rank[r.target] > rank[top.get(int(r.case_id), ("grid", ""))[0]]:
            top[int(r.case_id)] = (str(r.target), str(r.key))
    raised = 0
    for case_id, (level, key) in sorted(top.items()):
        now = s.execute(sa.select(_C.c.level).where(_C.c.id == case_id)).scalar_one_or_none()
        if now is None or rank.get(str(now), 0) >= rank[level]:
            continue
        raised += _system_line(
            s,
            case_id,
            action="auto_escalate",
            actor="system:sweep",
            note=f"超时升级: overdue, escalated {now} → {level} by the policy",
            data={"from": str(now), "level": level, "event": key},
            values={"level": level},
        )
    return raised


# ----------------------------------------------------------------------------- re-route


def reroute_cases(target: Store | Session, *, author: str) -> int:
    """Flag open cases whose point another grid now covers (after a publish).

    The frozen placement stays; ``reroute_grid``/``reroute_plan_id`` name the
    grid that covers the point in the published plans now (cleared when it is
    the frozen one again). Returns how many cases are flagged.
    """
    with transaction(target, write=True) as s:
        loc = case_locator(s)
        rows = s.execute(
            sa.select(_C.c.id, _C.c.lon, _C.c.lat, _C.c.grid_code, _C.c.reroute_grid).where(
                _C.c.status.in_(list(OPEN_STATES)), _C.c.lon.is_not(None)
            )
        ).all()
        if not rows:
            return 0
        frame = pd.DataFrame(rows, columns=["id", "lon", "lat", "grid", "flag"])
        found, _ = loc.locate_many(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
        flagged = 0
        updates = []
        for (cid, grid, flag), place in zip(
            frame[["id", "grid", "flag"]].itertuples(index=False), found, strict=True
        ):
            now_grid = place.grid_code if place is not None else None
            want = now_grid if (grid is not None and now_grid != grid) else None
            if want is not None:
                flagged += 1
            if want != flag:
                updates.append(
                    {
                        "cid": int(cid),
                        "g": want,
                        "p": int(place.plan_id) if want and place and place.plan_id else None,
                    }
                )
        if updates:
            s.execute(
                _C.update()
                .where(_C.c.id == sa.bindparam("cid"))
                .values(reroute_grid=sa.bindparam("g"), reroute_plan_id=sa.bindparam("p")),
                updates,
            )
            write_audit(
                s,
                actor=author,
                action="reroute",
                entity="cases",
                entity_id=len(updates),
                after={"flagged": flagged, "changed": [u["cid"] for u in updates][:1000]},
            )
    return flagged
