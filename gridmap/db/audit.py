"""The audit log (审计日志): who did what, when, with the state before and after.

Every change the repository makes writes its audit row in the same transaction
as the change itself, so the log never claims an edit that did not happen (and
never misses one that did). Reads of personal data are written too: residents
near a point (``read_residents``, with the households disclosed), a case's
reporter (``read.personal``), exports (``export``, ``export.personal``), key
changes (entity ``api_key``), publishes, sign-ins and reads of the log itself.

The table is append-only: database triggers refuse every UPDATE, and every
DELETE of a row that no retention archive covers. :func:`archive_audit` is the
only way rows leave: it writes them to a file first, records the archive
(file, SHA-256, rows up to an id) in ``audit_archives`` and only then deletes
them. Audit rows are read with :func:`query_audit` (filters, paging) or
:func:`list_audit`; they are never written to :mod:`logging`, since
before/after may hold personal data.

Kinds (the ``kind`` filter)
---------------------------
=============  ===================================================================
kind           rows
=============  ===================================================================
``personal``   every read or export of personal data (residents, case reporters)
``residents``  residents near a point (``/locate?radius=``)
``export``     plan and case exports (``export``, ``export.personal``)
``keys``       key creation, revocation, rotation (entity ``api_key``)
``sessions``   browser sign-ins and sign-outs (entity ``session``)
``publish``    plans published
other          an action (``import``, ``edit.lock`` …), an action group (``edit``
               for ``edit.*``) or an entity (``plan``, ``case``)
=============  ===================================================================
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.db.bulk import jsonable
from gridmap.db.models import AuditArchive, AuditHousehold, AuditLog, table, utcnow
from gridmap.db.session import Store, transaction
from gridmap.errors import InputError

__all__ = [
    "write_audit",
    "audit_export",
    "list_audit",
    "query_audit",
    "audit_csv",
    "archive_audit",
    "parse_when",
    "AuditPage",
    "ArchiveResult",
    "AUDIT_KINDS",
    "MIN_RETENTION_DAYS",
]

_AUDIT = table(AuditLog)
_HH = table(AuditHousehold)
_ARCH = table(AuditArchive)
_BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

#: Named kinds: ``(column, values)`` matched by the ``kind`` filter.
AUDIT_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "personal": ("action", ("read_residents", "read.personal", "export.personal")),
    "residents": ("action", ("read_residents",)),
    "export": ("action", ("export", "export.personal")),
    "keys": ("entity", ("api_key",)),
    "sessions": ("entity", ("session",)),
    "publish": ("action", ("publish",)),
}

#: The shortest retention :func:`archive_audit` accepts (days): China's Cybersecurity
#: Law (网络安全法, art. 21) asks network operators to keep logs at least six months.
MIN_RETENTION_DAYS = 180.0

_COLUMNS = [
    "id",
    "at",
    "actor",
    "action",
    "entity",
    "entity_id",
    "grid_code",
    "households",
    "before",
    "after",
]


def write_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int,
    before: Any = None,
    after: Any = None,
    grid_code: str | None = None,
    households: Iterable[Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append an audit row inside the caller's transaction.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The session doing the change.
    actor : str
        Who (user name, service name).
    action : str
        What (``import``, ``create``, ``update``, ``publish``, ``archive`` …).
    entity, entity_id : str
        On what (``plan``/``12``, ``import``/``3`` …).
    before, after : object, optional
        JSON-compatible state before and after the change.
    grid_code : str, optional
        The grid the row is about (``gridmap audit --grid``).
    households : iterable, optional
        Ids of households whose personal data was disclosed (``--household``).
    at : datetime, optional
        When (now by default).

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> with store.session() as s:
    ...     write_audit(s, actor="li", action="note", entity="plan", entity_id=1, after={"x": 1})
    >>> list_audit(store)[["actor", "action", "entity_id", "after"]].to_dict("records")
    [{'actor': 'li', 'action': 'note', 'entity_id': '1', 'after': {'x': 1}}]
    """
    if not actor or not str(actor).strip():
        raise ValueError("every change needs an author; pass author='<user name>'")
    row = _AUDIT.insert().values(
        at=at or utcnow(),
        actor=str(actor),
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before=jsonable(before),
        after=jsonable(after),
        grid_code=None if grid_code is None else str(grid_code),
    )
    ids = sorted({str(h) for h in households}) if households is not None else []
    if ids and session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # loaded with the connection's dialect

        # the row and its households in one statement (one round trip; an executemany
        # would be one INSERT per household on the server: hundreds for a residents read)
        new = row.returning(_AUDIT.c.id).cte("new_audit")
        session.execute(
            _HH.insert().from_select(
                ["audit_id", "household_id"],
                sa.select(new.c.id, sa.func.unnest(sa.literal(ids, postgresql.ARRAY(sa.String)))),
            )
        )
        return
    audit_id = session.execute(row.returning(_AUDIT.c.id)).scalar_one()
    if ids:  # SQLite: in-process, executemany is one prepared statement
        session.execute(_HH.insert(), [{"audit_id": audit_id, "household_id": h} for h in ids])


def list_audit(
    target: Store | Session,
    *,
    entity: str | None = None,
    entity_id: str | int | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Return audit rows, oldest first, as a DataFrame.

    Parameters
    ----------
    target : Store or Session
        The store.
    entity, entity_id, actor : optional
        Filters.
    limit : int, optional
        Return at most the newest ``limit`` rows.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, at, actor, action, entity, entity_id, before, after``.

    Examples
    --------
    >>> list_audit(Store.from_url("sqlite://")).columns.tolist()
    ['id', 'at', 'actor', 'action', 'entity', 'entity_id', 'before', 'after']
    """
    cols = ["id", "at", "actor", "action", "entity", "entity_id", "before", "after"]
    q = sa.select(*[_AUDIT.c[c] for c in cols])
    if entity is not None:
        q = q.where(_AUDIT.c.entity == entity)
    if entity_id is not None:
        q = q.where(_AUDIT.c.entity_id == str(entity_id))
    if actor is not None:
        q = q.where(_AUDIT.c.actor == actor)
    q = q.order_by(_AUDIT.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    with transaction(target) as s:
        rows = s.execute(q).mappings().all()
    frame = pd.DataFrame([dict(r) for r in reversed(rows)], columns=cols)
    return frame.astype({"before": object, "after": object})


def parse_when(value: str | datetime | None, *, end: bool = False) -> datetime | None:
    """Read a time filter: a date (Beijing; ``end`` → the end of that day) or a date-time.

    Raises
    ------
    InputError
        Not a date or date-time.

    Examples
    --------
    >>> parse_when("2026-12-01").isoformat(), parse_when("2026-12-01", end=True).isoformat()
    ('2026-12-01T00:00:00+08:00', '2026-12-01T23:59:59.999999+08:00')
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=_BEIJING)
    text = str(value).strip()
    try:
        when = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    except ValueError:
        raise InputError(
            f"{value!r} is not a date (2026-12-01) or a date-time (2026-12-01T09:30+08:00)"
        ) from None
    if len(text) == 10 and end:
        when = when + timedelta(days=1) - timedelta(microseconds=1)
    return when if when.tzinfo is not None else when.replace(tzinfo=_BEIJING)


@dataclass(frozen=True)
class AuditPage:
    """One page of audit rows and the number of rows matching the filters.

    Attributes
    ----------
    rows : list of dict
        ``id, at, actor, action, entity, entity_id, grid_code, households,
        before, after``, oldest first.
    total : int
        Rows matching the filters (all pages).
    """

    rows: list[dict[str, Any]]
    total: int


def _kind_clause(kind: str) -> Any:
    kind = kind.strip()
    if kind in AUDIT_KINDS:
        column, values = AUDIT_KINDS[kind]
        return _AUDIT.c[column].in_(values)
    return sa.or_(
        _AUDIT.c.action == kind,
        _AUDIT.c.entity == kind,
        _AUDIT.c.action.startswith(kind + ".", autoescape=True),
    )


def query_audit(
    target: Store | Session,
    *,
    actor: str | None = None,
    household: str | None = None,
    grid: str | None = None,
    kind: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> AuditPage:
    """Return audit rows matching every filter given, oldest first, with the total.

    Parameters
    ----------
    target : Store or Session
        The store.
    actor : str, optional
        Part of the actor's name (``"key 3"``, ``"desk"``).
    household : str, optional
        A household id: the reads that disclosed that household.
    grid : str, optional
        A grid code: rows about that grid.
    kind : str, optional
        A kind of :data:`AUDIT_KINDS`, an action, an action group or an entity.
    since, until : str or datetime, optional
        The period (dates are Beijing days, ``until`` inclusive).
    limit, offset : int
        Paging (``limit=None``: every row).

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> with store.session() as s:
    ...     write_audit(s, actor="desk (key 2)", action="read_residents", entity="grid",
    ...                 entity_id="G1", grid_code="G1", households=["H7", "H8"])
    ...     write_audit(s, actor="admin (key 1)", action="publish", entity="plan", entity_id=3)
    >>> page = query_audit(store, household="H7")
    >>> page.total, page.rows[0]["actor"], page.rows[0]["households"]
    (1, 'desk (key 2)', ['H7', 'H8'])
    >>> query_audit(store, kind="publish").rows[0]["entity_id"]
    '3'
    """
    where: list[Any] = []
    if actor:
        where.append(_AUDIT.c.actor.contains(actor.strip(), autoescape=True))
    if household:
        where.append(
            _AUDIT.c.id.in_(
                sa.select(_HH.c.audit_id).where(_HH.c.household_id == str(household).strip())
            )
        )
    if grid:
        code = str(grid).strip()
        where.append(
            sa.or_(
                _AUDIT.c.grid_code == code,
                sa.and_(_AUDIT.c.entity == "grid", _AUDIT.c.entity_id == code),
            )
        )
    if kind:
        where.append(_kind_clause(kind))
    start, stop = parse_when(since), parse_when(until, end=True)
    if start is not None and stop is not None and stop < start:
        raise InputError(f"the period ends ({until}) before it starts ({since}); swap them")
    if start is not None:
        where.append(_AUDIT.c.at >= start.astimezone(UTC))
    if stop is not None:
        where.append(_AUDIT.c.at <= stop.astimezone(UTC))
    with transaction(target) as s:
        total = s.execute(sa.select(sa.func.count()).select_from(_AUDIT).where(*where)).scalar()
        rows = _fetch(s, where, limit=limit, offset=offset)
    return AuditPage(rows=rows, total=int(total or 0))


def _fetch(s: Session, where: list[Any], *, limit: int | None, offset: int) -> list[dict[str, Any]]:
    q = sa.select(_AUDIT).where(*where).order_by(_AUDIT.c.id)
    if limit is not None:
        q = q.limit(int(limit))
    if offset:
        q = q.offset(int(offset))
    rows = [dict(r) for r in s.execute(q).mappings()]
    ids = [r["id"] for r in rows]
    disclosed: dict[int, list[str]] = {}
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        for audit_id, hh in s.execute(
            sa.select(_HH.c.audit_id, _HH.c.household_id)
            .where(_HH.c.audit_id.in_(part))
            .order_by(_HH.c.audit_id, _HH.c.household_id)
        ):
            disclosed.setdefault(audit_id, []).append(hh)
    for r in rows:
        at = r["at"]
        r["at"] = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        r["households"] = disclosed.get(r["id"], [])
    return [{c: r[c] for c in _COLUMNS} for r in rows]


def audit_csv(rows: list[dict[str, Any]]) -> bytes:
    """Return audit rows as CSV for Excel: UTF-8 with BOM, times in Beijing time.

    ``households`` are joined by spaces, ``before``/``after`` are JSON text.

    Examples
    --------
    >>> rows = [{"id": 1, "at": datetime(2026, 12, 1, 1, 30, tzinfo=UTC), "actor": "李",
    ...          "action": "publish", "entity": "plan", "entity_id": "3", "grid_code": None,
    ...          "households": [], "before": None, "after": {"version": 2}}]
    >>> audit_csv(rows).decode("utf-8-sig").splitlines()[1]
    '1,2026-12-01T09:30:00+08:00,李,publish,plan,3,,,,"{""version"": 2}"'
    """
    out = []
    for r in rows:
        at = r["at"]
        out.append(
            {
                **r,
                "at": at.astimezone(_BEIJING).isoformat(),
                "households": " ".join(r["households"]),
                "before": ""
                if r["before"] is None
                else json.dumps(r["before"], ensure_ascii=False),
                "after": "" if r["after"] is None else json.dumps(r["after"], ensure_ascii=False),
            }
        )
    buf = io.StringIO()
    pd.DataFrame(out, columns=_COLUMNS).to_csv(buf, index=False)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


@dataclass(frozen=True)
class ArchiveResult:
    """What :func:`archive_audit` did.

    Attributes
    ----------
    rows : int
        Audit rows archived and deleted (0: nothing was old enough; no file written).
    upto_id : int or None
        The last archived row id.
    path : Path or None
        The archive file (JSON Lines, gzip when it ends with ``.gz``).
    sha256 : str or None
        SHA-256 of the file, also kept in ``audit_archives``.
    cutoff : datetime
        Rows older than this were archived.
    """

    rows: int
    upto_id: int | None
    path: Path | None
    sha256: str | None
    cutoff: datetime


def archive_audit(
    store: Store,
    path: str | Path,
    *,
    older_than_days: float,
    actor: str,
    now: datetime | None = None,
    min_days: float = MIN_RETENTION_DAYS,
) -> ArchiveResult:
    """Move audit rows older than the retention to a file (the only way rows leave the log).

    The rows (with the households they disclosed) are written to ``path`` as JSON
    Lines (gzip when the name ends with ``.gz``), flushed to disk, then recorded
    in ``audit_archives`` (path, SHA-256, row count, last id) and deleted, in one
    transaction; the archive itself is audited (action ``archive``, entity
    ``audit``). If the file cannot be written nothing is deleted; if the
    transaction fails the file stays and the log is unchanged.

    Parameters
    ----------
    store : Store
        The store.
    path : str or Path
        The archive file; it must not exist yet.
    older_than_days : float
        The retention: rows older than this many days go.
    actor : str
        Who archives (audit log).
    now : datetime, optional
        The current time (tests).
    min_days : float, default :data:`MIN_RETENTION_DAYS`
        The shortest retention accepted.

    Raises
    ------
    InputError
        A retention shorter than ``min_days``, or ``path`` exists already.
    """
    if not older_than_days >= min_days:
        raise InputError(
            f"a retention of {older_than_days:g} days is shorter than {min_days:g} days; logs are "
            "kept at least six months (网络安全法 art. 21). Pass --older-than-days "
            f"{min_days:g} or more (GRIDMAP_AUDIT_RETENTION_DAYS)"
        )
    target = Path(path)
    if target.exists():
        raise InputError(f"{target} exists already; give a new file name for this archive")
    now = now or utcnow()
    cutoff = now - timedelta(days=float(older_than_days))
    with transaction(store) as s:
        first_kept = s.execute(
            sa.select(sa.func.min(_AUDIT.c.id)).where(_AUDIT.c.at >= cutoff)
        ).scalar()
        bound = _AUDIT.c.id < first_kept if first_kept is not None else sa.true()
        upto = s.execute(
            sa.select(sa.func.max(_AUDIT.c.id)).where(bound, _AUDIT.c.at < cutoff)
        ).scalar()
    if upto is None:
        return ArchiveResult(0, None, None, None, cutoff)
    with transaction(store) as s:
        rows = _fetch(s, [_AUDIT.c.id <= upto], limit=None, offset=0)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    raw = "".join(
        json.dumps(jsonable({**r, "at": r["at"].isoformat()}), ensure_ascii=False) + "\n"
        for r in rows
    ).encode("utf-8")
    data = gzip.compress(raw, mtime=0) if target.suffix == ".gz" else raw
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    digest = hashlib.sha256(data).hexdigest()
    with store.session(write=True) as s:
        s.execute(
            _ARCH.insert().values(
                archived_at=now,
                actor=actor,
                upto_id=int(upto),
                cutoff=cutoff,
                rows=len(rows),
                path=str(target.resolve()),
                sha256=digest,
            )
        )
        s.execute(sa.delete(_HH).where(_HH.c.audit_id <= upto))
        s.execute(sa.delete(_AUDIT).where(_AUDIT.c.id <= upto))
        write_audit(
            s,
            actor=actor,
            action="archive",
            entity="audit",
            entity_id=int(upto),
            after={
                "rows": len(rows),
                "cutoff": cutoff,
                "path": str(target.resolve()),
                "sha256": digest,
            },
        )
    return ArchiveResult(len(rows), int(upto), target, digest, cutoff)


def audit_export(
    target: Store | Session,
    *,
    actor: str,
    entity: str,
    entity_id: str | int,
    fmt: str,
    personal: bool,
    rows: int | None = None,
) -> None:
    """Write the audit row of an export: ``export.personal`` when it holds personal data.

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> audit_export(store, actor="li", entity="plan", entity_id=2, fmt="gpkg", personal=True)
    >>> query_audit(store, kind="personal").rows[0]["action"]
    'export.personal'
    """
    with transaction(target, write=True) as s:
        write_audit(
            s,
            actor=actor,
            action="export.personal" if personal else "export",
            entity=entity,
            entity_id=entity_id,
            after={"format": fmt, "personal": personal, **({"rows": rows} if rows else {})},
        )
