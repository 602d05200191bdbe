"""Case records in the store: tables, times as stored, result records, the system's log line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import OPEN_STATES, STAGE, TZ, Case, Deadline, to_local
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

__all__ = ["CASE_LIST_COLUMNS", "CaseRecord", "ImportResult", "SweepResult", "overdue_states"]

_C = table(CaseRow)
_D = table(CaseDeadline)
_H = table(CaseHandler)
_L = table(CaseLog)
_E = table(CaseEvent)
_CAL = table(CalendarDayRow)
_G = table(GridRow)
_P = table(PlanRow)
_CM = table(Community)

#: Columns of a case_log row as the bulk writers (intake, sweep) give them, in order.
_LOG_COLS = (
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
)

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
    "duplicate_count",
)
#: Roles that see the reporter's name and phone (the others get them masked).
_PERSONAL_ROLES = frozenset(
    {"grid_worker", "grid_chief", "community", "subdistrict", "department", "dispatcher", "admin"}
)

_RESOLVE = "resolve"


def _deadlines(rows: Any, due_at: Any, provisional: Any) -> dict[str, Deadline]:
    """Return a case's deadlines: its ``case_deadlines`` rows and the resolve one from ``cases``.

    The resolve deadline is ``cases.due_at`` with ``cases.provisional`` (the intake writes
    no ``case_deadlines`` row for it: the other clock, ``answer``, counts a subset of its
    days, so the case's flag is the resolve clock's); a ``case_deadlines`` row for it, as
    written by an action that changed the deadlines, says the same and wins.

    Parameters
    ----------
    rows : iterable
        The case's ``case_deadlines`` rows (``clock``, ``due_at``, ``provisional``).
    due_at, provisional
        The case's ``cases.due_at`` and ``cases.provisional``.
    """
    out = {
        str(d.clock): Deadline(_from_db(d.due_at), bool(d.provisional))  # type: ignore[arg-type]
        for d in rows
    }
    if _RESOLVE not in out and due_at is not None:
        out[_RESOLVE] = Deadline(_from_db(due_at), bool(provisional))  # type: ignore[arg-type]
    return out


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
    """Encode a tz-aware Series for :func:`bulk_insert` (UTC text as SQLAlchemy writes it).

    Formatted in one vectorised call (Arrow's cast of naive UTC microsecond times to text:
    ``YYYY-MM-DD HH:MM:SS.ffffff``, as SQLite stores them; about 13x faster than its
    ``strftime``, which goes through the C library per value), not row by row; missing
    times are None.

    Examples
    --------
    >>> t = pd.Series(pd.to_datetime(["2026-09-18 09:30:00.25", None]).tz_localize(TZ))
    >>> _times_out(t, "sqlite")
    ['2026-09-18 01:30:00.250000', None]
    >>> _times_out(t, "postgresql")[0]
    '2026-09-18 01:30:00.250000+00'
    """
    return list(_times_text(values, backend).to_pylist())


def _times_text(values: pd.Series, backend: str) -> Any:
    """Return :func:`_times_out`'s texts as an Arrow string array (for a ``COPY`` by Arrow).

    Arrow's CSV writer formats a tz-aware time about 20x slower than a text.

    Examples
    --------
    >>> t = pd.Series(pd.to_datetime(["2026-09-18 09:30:00"]).tz_localize(TZ))
    >>> _times_text(t, "postgresql").to_pylist()
    ['2026-09-18 01:30:00.000000+00']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    s = pd.Series(values)
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        s = pd.to_datetime(s, utc=True)
    naive = s.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("us")
    text = pa.array(naive, from_pandas=True).cast(pa.string())
    if backend != "sqlite":
        text = pc.binary_join_element_wise(text, "+00", "")
    return text


@contextmanager
def _large_cache(s: Session, large: bool) -> Iterator[None]:
    """On SQLite, give a large write (an import, a sweep) a page cache for the indexes it grows.

    Each case goes into seven indexes of ``cases`` (and two of the log), each sweep event
    into the unique key index; with the default 2 MB cache their pages are written out and
    read back over and over. The cache grows only as pages are used, up to 256 MB, and is
    set back afterwards. Elsewhere (or for a small write) nothing changes.
    """
    if not large or s.get_bind().dialect.name != "sqlite":
        yield
        return
    before = int(s.execute(sa.text("PRAGMA cache_size")).scalar_one())
    s.execute(sa.text("PRAGMA cache_size = -262144"))
    try:
        yield
    finally:
        s.execute(sa.text(f"PRAGMA cache_size = {before}"))


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
        Likely duplicates (open cases nearby, same category, within days), nearest
        first: all of them from :func:`~gridmap.db.cases.get_case`, the nearest few
        (the import's ``duplicate_limit``) as stored.
    duplicate_count : int
        How many likely duplicates the intake found.
    created_at, updated_at : datetime
    personal : bool
        Whether the reporter's name and phone are shown (else masked).
    """

    case: Case
    suggested_grid: str | None = None
    reroute_grid: str | None = None
    reroute_plan_id: int | None = None
    duplicate_of: list[str] = field(default_factory=list)
    duplicate_count: int = 0
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
            "duplicate_count": max(self.duplicate_count, len(self.duplicate_of)),
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
