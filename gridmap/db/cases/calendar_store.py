"""The working-day calendar in the store: read it, report it, load a notice and recompute."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import OPEN_STATES, WorkCalendar, default_calendar, default_policies
from gridmap.db.audit import write_audit
from gridmap.db.cases.records import (
    _C,
    _CAL,
    _D,
    _RESOLVE,
    _db_time,
    _deadlines,
    _from_db,
    _system_line,
)
from gridmap.db.session import Store, transaction

__all__ = ["store_calendar", "calendar_status", "load_calendar"]

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


def _recompute_provisional(s: Session, cal: WorkCalendar, *, author: str) -> int:
    pols = default_policies()
    backend = s.get_bind().dialect.name
    rows = s.execute(
        sa.select(
            _C.c.id,
            _C.c.policy,
            _C.c.category,
            _C.c.urgency,
            _C.c.hard,
            _C.c.received_at,
            _C.c.due_at,
            _C.c.provisional,
        ).where(_C.c.provisional.is_(True), _C.c.status.in_(OPEN_STATES))
    ).all()
    changed = 0
    for r in rows:
        received = _from_db(r.received_at)
        dls = pols.get(r.policy).deadlines(
            received, category=r.category, urgency=r.urgency, hard=bool(r.hard), calendar=cal
        )
        stored = _deadlines(
            s.execute(sa.select(_D).where(_D.c.case_id == r.id)), r.due_at, r.provisional
        )
        old = {k: (v.due, v.provisional) for k, v in stored.items()}
        new = {k: (v.due, v.provisional) for k, v in dls.items()}
        if new == old:
            continue
        # the resolve deadline lives on the case (due_at, provisional), the others here
        s.execute(_D.delete().where(_D.c.case_id == r.id))
        others = [
            {"case_id": r.id, "clock": k, "due_at": _db_time(d, backend), "provisional": p}
            for k, (d, p) in new.items()
            if k != _RESOLVE
        ]
        if others:
            s.execute(_D.insert(), others)
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
