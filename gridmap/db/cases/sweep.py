"""The timer sweep: warnings, overdue, 催办, 督办 and escalation events, written once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import OPEN_STATES, ORG_LEVELS, STAGE, TZ, WorkCalendar, sweep, to_local
from gridmap.db.bulk import bulk_insert, in_chunks, rows_frame
from gridmap.db.cases.calendar_store import store_calendar
from gridmap.db.cases.records import (
    _C,
    _D,
    _E,
    _H,
    _L,
    _LOG_COLS,
    SweepResult,
    _db_time,
    _large_cache,
    _times_out,
)
from gridmap.db.models import utcnow
from gridmap.db.session import Store, transaction

__all__ = ["sweep_cases"]

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
            # naive values (SQLite) are UTC, which is what utc=True reads them as
            frame[col] = pd.to_datetime(vals.tolist(), utc=True)
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
        with _large_cache(s, len(events) >= 10_000):
            _insert_events(s, events, stamp)
            swept = _E.c.swept_at == _db_time(stamp, backend)
            counted = sa.select(sa.func.count()).select_from(_E).where(swept)
            written = s.execute(counted).scalar_one()
            # this sweep's escalations with their case's level, version and state, one query
            fresh = (
                sa.select(
                    _E.c.key, _E.c.case_id, _E.c.target, _C.c.level, _C.c.version, _C.c.status
                )
                .join(_C, _C.c.id == _E.c.case_id)
                .where(swept, _E.c.kind == "escalate")
            )
            if backend == "postgresql":
                fresh = fresh.with_for_update(of=_C)
            _raise_levels(s, s.execute(fresh).all())
    return SweepResult(when, int(written), events)


_EVENT_COLS = ("key", "case_id", "clock", "kind", "level", "at", "due", "target", "swept_at")


def _insert_events(s: Session, events: pd.DataFrame, stamp: dt.datetime) -> None:
    """Insert the sweep's events, skipping keys already stored (``ON CONFLICT DO NOTHING``).

    Values are encoded column by column (times as the UTC text SQLAlchemy writes);
    SQLite takes them in one ``executemany``, PostgreSQL by ``COPY`` into a temporary
    table and one ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
    """
    backend = s.get_bind().dialect.name
    n = len(events)
    target = events["target"]
    columns = [
        events["key"].astype(str).tolist(),
        events["case_id"].astype("int64").tolist(),
        events["clock"].astype(str).tolist(),
        events["kind"].astype(str).tolist(),
        events["level"].astype("int64").tolist(),
        _times_out(events["at"], backend),
        _times_out(events["due"], backend),
        target.astype(object).where(target.notna(), None).tolist(),
        _times_out(pd.Series([stamp]), backend) * n,
    ]
    rows = list(zip(*columns, strict=True))
    cols = ", ".join(f'"{c}"' for c in _EVENT_COLS)
    conn = s.connection()
    if backend == "postgresql":
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS _sweep_events (key text, case_id integer, "
            "clock text, kind text, level integer, at timestamptz, due timestamptz, "
            "target text, swept_at timestamptz) ON COMMIT DROP"
        )
        conn.exec_driver_sql("TRUNCATE _sweep_events")
        temp = sa.Table("_sweep_events", sa.MetaData(), *(sa.Column(c) for c in _EVENT_COLS))
        bulk_insert(s, temp, list(_EVENT_COLS), rows)
        conn.exec_driver_sql(
            f'INSERT INTO "{_E.name}" ({cols}) SELECT {cols} FROM _sweep_events '
            "ON CONFLICT (key) DO NOTHING"
        )
        return
    marks = ", ".join("?" for _ in _EVENT_COLS)
    stmt = f'INSERT INTO "{_E.name}" ({cols}) VALUES ({marks}) ON CONFLICT (key) DO NOTHING'
    for chunk in in_chunks(rows, 20_000):
        conn.exec_driver_sql(stmt, list(chunk))


def _raise_levels(s: Session, escalations: Sequence[Any]) -> int:
    """Raise each escalated case to the level its policy names (grid → community → sub-district).

    Only events this sweep wrote count (another process's sweep raises its own), and a level is
    only ever raised: a case a person already escalated further keeps its level. Each raise
    bumps the case's version (its ETag changes, so a stale edit gets 412) and appends an
    ``auto_escalate`` line to its log — in bulk: ``escalations`` carry each case's level,
    version and state (read, and on PostgreSQL locked, with the events), the highest target
    of each case is picked in pandas, the cases are updated in one statement and logged
    with one bulk insert.
    """
    if not escalations:
        return 0
    rank = {lv: i for i, lv in enumerate(ORG_LEVELS)}
    # column by column (a frame built from Row objects probes each row's attributes)
    ev = rows_frame(escalations, ["key", "case_id", "target", "level", "version", "status"])
    ev["t_rank"] = ev["target"].map(rank)
    ev = ev[ev["t_rank"].notna()]
    if ev.empty:
        return 0
    # per case the highest target (equal targets: the first event by key, as before)
    ev = ev.sort_values(["case_id", "t_rank", "key"], ascending=[True, False, True])
    top = ev.drop_duplicates("case_id", keep="first")
    now_rank = top["level"].map(rank).fillna(0).to_numpy(float)
    todo = top[
        top["status"].isin(list(OPEN_STATES)).to_numpy() & (now_rank < top["t_rank"].to_numpy())
    ]
    if todo.empty:
        return 0
    backend = s.get_bind().dialect.name
    stamp = utcnow()
    (stamp_text,) = _times_out(pd.Series([stamp]), backend)
    cids = todo["case_id"].astype("int64").tolist()
    versions = todo["version"].astype("int64").tolist()
    targets = todo["target"].astype(str).tolist()
    was = todo["level"].astype(str).tolist()
    status = todo["status"].astype(str).tolist()
    keys = todo["key"].astype(str).tolist()
    changes = list(zip(cids, versions, targets, strict=True))
    conn = s.connection()
    if backend == "postgresql":  # COPY the changes, then one UPDATE … FROM
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS _sweep_levels (id integer, version integer, "
            "level text) ON COMMIT DROP"
        )
        conn.exec_driver_sql("TRUNCATE _sweep_levels")
        temp = sa.Table("_sweep_levels", sa.MetaData(), *(sa.Column(c) for c in _LEVEL_COLS))
        bulk_insert(s, temp, list(_LEVEL_COLS), changes)
        conn.exec_driver_sql(
            f'UPDATE "{_C.name}" AS c SET level = u.level, version = u.version + 1, '
            "updated_at = %(at)s::timestamptz FROM _sweep_levels AS u "
            "WHERE c.id = u.id AND c.version = u.version",
            {"at": stamp_text},
        )
    else:
        conn.exec_driver_sql(
            f'UPDATE "{_C.name}" SET level = ?, version = ? + 1, updated_at = ? '
            "WHERE id = ? AND version = ?",
            [(lv, v, stamp_text, cid, v) for cid, v, lv in changes],
        )
    # the JSON of each line, as json.dumps(..., ensure_ascii=False) writes it, built from
    # the strings' JSON forms (the C encoder) rather than a dumps call per line
    enc = encode_basestring
    rows = [
        (
            cid,
            v + 1,
            stamp_text,
            "system:sweep",
            "system",
            None,
            "auto_escalate",
            st,
            st,
            f"超时升级: overdue, escalated {w} → {lv} by the policy",
            f'{{"from":{enc(w)},"level":{enc(lv)},"event":{enc(k)}}}',
        )
        for cid, v, lv, w, st, k in zip(cids, versions, targets, was, status, keys, strict=True)
    ]
    bulk_insert(s, _L, list(_LOG_COLS), rows)
    return len(rows)


_LEVEL_COLS = ("id", "version", "level")
