"""Stored cases as one DataFrame (for maps and analysts), scoped and filtered in SQL.

:func:`case_frame` reads the cases an actor may see (一级录入、三级知晓: the scope
of :func:`gridmap.db.cases.list_cases`) in one query, as columns rather than
records, so that 100,000 cases load in about a second. Personal data (the
description, address and the caller's name and phone) is only read when asked
for, only for operators, dispatchers and admins, and every such read writes an
audit row naming the filters and how many cases it returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import STATES, TZ, Actor, default_catalogue, to_local
from gridmap.db.audit import write_audit
from gridmap.db.cases import _db_time, _scope_clause, overdue_states
from gridmap.db.models import CaseRow, table
from gridmap.db.session import Store, transaction
from gridmap.errors import InputError, PermissionDeniedError, ScopeError

__all__ = ["CASE_FRAME_COLUMNS", "PERSONAL_COLUMNS", "case_frame"]

_C = table(CaseRow)

#: Columns of :func:`case_frame` (without personal data).
CASE_FRAME_COLUMNS: tuple[str, ...] = (
    "id",
    "ticket",
    "source",
    "category",
    "urgency",
    "status",
    "level",
    "grid_code",
    "community_id",
    "subdistrict",
    "lon",
    "lat",
    "received_at",
    "due_at",
    "overdue",
)
#: Columns added by ``personal=True``.
PERSONAL_COLUMNS: tuple[str, ...] = ("description", "address", "reporter_name", "reporter_phone")
#: Case roles that may read the personal columns of many cases at once.
_PERSONAL_ROLES = frozenset({"dispatcher", "admin"})


def _times(values: Any) -> pd.Series:
    """Return stored times (UTC; naive on SQLite) as Asia/Shanghai."""
    s = pd.to_datetime(pd.Series(list(values), dtype=object), utc=True, format="mixed")
    return s.dt.tz_convert("Asia/Shanghai")


def _statuses(value: str | Sequence[str] | None) -> list[str]:
    values = [value] if isinstance(value, str) else list(value or [])
    bad = [v for v in values if v not in STATES]
    if bad:
        raise InputError(f"unknown case status {bad}; the states are {', '.join(STATES)}")
    return values


def _categories(value: str | Sequence[str] | None) -> list[str]:
    """Return category codes (Chinese names and aliases accepted; unknown ones refused)."""
    values = [value] if isinstance(value, str) else list(value or [])
    book = default_catalogue()
    return [book.category(v).code for v in values]


_UNIT_RANK = {"grid": 0, "community": 1, "subdistrict": 2}


def _check_units(
    actor: Actor | None, *, grid: str | None, community: str | None, subdistrict: str | None
) -> None:
    """Refuse a unit filter the actor's scope does not cover (a broader or another unit)."""
    kind = actor.unit_kind if actor is not None else None
    if actor is None or kind not in _UNIT_RANK:
        return  # operators, dispatchers, admins, viewers, departments: SQL scope is enough
    for asked, value in (("grid", grid), ("community", community), ("subdistrict", subdistrict)):
        if not value:
            continue
        broader = _UNIT_RANK[asked] > _UNIT_RANK[kind]
        if broader or (asked == kind and value != actor.unit):
            raise ScopeError(
                f"{asked} {value!r} is outside your scope ({kind} {actor.unit!r}); ask for "
                f"your own {kind} or a unit inside it, or ask a dispatcher"
            )


def case_frame(
    target: Store | Session,
    *,
    actor: Actor | None = None,
    author: str = "system",
    personal: bool = False,
    status: str | Sequence[str] | None = None,
    category: str | Sequence[str] | None = None,
    grid: str | None = None,
    community: str | None = None,
    subdistrict: str | None = None,
    received_from: Any = None,
    received_to: Any = None,
    near: tuple[float, float, float] | None = None,
    now: Any = None,
) -> pd.DataFrame:
    """Return the stored cases ``actor`` may see as a DataFrame, oldest first.

    Parameters
    ----------
    target : Store or Session
    actor : Actor, optional
        Limits the cases to the actor's org unit (None: every case, as an operator).
    author : str, default "system"
        Who reads (written to the audit log with ``personal=True``).
    personal : bool, default False
        Add :data:`PERSONAL_COLUMNS`. Only for ``actor=None`` (an operator),
        dispatchers and admins; the read is audited.
    status, category : str or list of str, optional
        Only these states / categories (codes or Chinese names such as 噪音扰民).
    grid, community, subdistrict : str, optional
        Only this unit (refused when the actor's scope does not cover it).
    received_from, received_to : datetime or str, optional
        ``received_from <= received_at < received_to`` (naive = Asia/Shanghai).
    near : (lon, lat, radius_m), optional
        Only cases in the box around a WGS84 point that holds the circle
        (the caller measures exact distances).
    now : datetime, optional
        When ``overdue`` is computed (default: now).

    Returns
    -------
    pandas.DataFrame
        :data:`CASE_FRAME_COLUMNS` (times aware, Asia/Shanghai), then the
        personal columns if asked for.

    Raises
    ------
    InputError
        An unknown status or category (the message lists the known ones).
    PermissionDeniedError
        ``personal=True`` for a role below dispatcher; a unit outside the
        actor's scope (:class:`~gridmap.errors.ScopeError`).

    Examples
    --------
    >>> from gridmap.db import Store
    >>> case_frame(Store.from_url("sqlite://")).columns[:4].tolist()
    ['id', 'ticket', 'source', 'category']
    """
    statuses = _statuses(status)
    categories = _categories(category)
    _check_units(actor, grid=grid, community=community, subdistrict=subdistrict)
    if personal and actor is not None and actor.role not in _PERSONAL_ROLES:
        raise PermissionDeniedError(
            f"role {actor.role!r} may not read callers' personal data on a map of many cases; "
            "it needs a dispatcher or admin key (personal data stays off the map otherwise)"
        )
    when = to_local(now) if now is not None else pd.Timestamp.now(tz=TZ).to_pydatetime()
    with transaction(target, write=personal) as s:
        backend = s.get_bind().dialect.name
        conds: list[Any] = [_scope_clause(actor)]
        if statuses:
            conds.append(_C.c.status.in_(statuses))
        if categories:
            conds.append(_C.c.category.in_(categories))
        for col, value in (("grid_code", grid), ("community_id", community)):
            if value:
                conds.append(_C.c[col] == value)
        if subdistrict:
            conds.append(_C.c.subdistrict == subdistrict)
        if received_from is not None:
            conds.append(_C.c.received_at >= _db_time(received_from, backend))
        if received_to is not None:
            conds.append(_C.c.received_at < _db_time(received_to, backend))
        if near is not None:
            lon, lat, radius = (float(v) for v in near)
            if not (radius > 0 and math.isfinite(radius)):
                raise InputError(f"radius must be a positive number of metres, got {radius}")
            dlat = radius / 111_000.0
            dlon = radius / (111_000.0 * max(math.cos(math.radians(lat)), 0.01))
            conds += [
                _C.c.lon.between(lon - dlon, lon + dlon),
                _C.c.lat.between(lat - dlat, lat + dlat),
            ]
        late = sa.and_(
            _C.c.status.in_(overdue_states()),
            _C.c.due_at.is_not(None),
            _C.c.due_at < _db_time(when, backend),
        )
        cols = [
            _C.c.id,
            _C.c.ticket_no,
            _C.c.source,
            _C.c.category,
            _C.c.urgency,
            _C.c.status,
            _C.c.level,
            _C.c.grid_code,
            _C.c.community_id,
            _C.c.subdistrict,
            _C.c.lon,
            _C.c.lat,
            _C.c.received_at,
            _C.c.due_at,
            sa.case((late, True), else_=False).label("overdue"),
        ]
        names = list(CASE_FRAME_COLUMNS)
        if personal:
            cols += [_C.c.description, _C.c.address, _C.c.reporter_name, _C.c.reporter_phone]
            names += list(PERSONAL_COLUMNS)
        q = sa.select(*cols).where(sa.and_(*conds)).order_by(_C.c.received_at, _C.c.id)
        rows = s.execute(q).all()
        if personal and rows:
            write_audit(
                s,
                actor=author,
                action="read.personal",
                entity="cases",
                entity_id="frame",
                after={
                    "fields": list(PERSONAL_COLUMNS),
                    "cases": len(rows),
                    "role": actor.role if actor is not None else "operator",
                    "filters": {
                        "status": status,
                        "category": category,
                        "grid": grid,
                        "community": community,
                        "subdistrict": subdistrict,
                        "received_from": None if received_from is None else str(received_from),
                        "received_to": None if received_to is None else str(received_to),
                        "near": list(near) if near is not None else None,
                    },
                },
            )
    frame = pd.DataFrame.from_records(rows, columns=names)
    frame["id"] = frame["id"].astype("int64")
    frame["lon"] = frame["lon"].astype(float)
    frame["lat"] = frame["lat"].astype(float)
    frame["overdue"] = frame["overdue"].astype(bool)
    frame["received_at"] = _times(frame["received_at"])
    frame["due_at"] = _times(frame["due_at"])
    return frame
