"""The timer sweep: warnings, overdue, 催办, 督办 and escalation events, written once."""

from __future__ import annotations

import datetime as dt
from json.encoder import encode_basestring
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from gridmap.cases import OPEN_STATES, ORG_LEVELS, STAGE, TZ, WorkCalendar, sweep, to_local
from gridmap.db.bulk import bulk_insert_columns, in_chunks, rows_frame
from gridmap.db.cases.calendar_store import store_calendar
from gridmap.db.cases.records import (
    _C,
    _D,
    _E,
    _H,
    _L,
    _LOG_COLS,
    _RESOLVE,
    SweepResult,
    _db_time,
    _large_cache,
    _times_out,
    _times_text,
)
from gridmap.db.models import utcnow
from gridmap.db.session import Store, transaction

__all__ = ["sweep_cases"]

# ----------------------------------------------------------------------------- sweep


def _clock_frame(s: Session) -> pd.DataFrame:
    """Return the running clocks of the open cases (one row per case and clock).

    The resolve clock of a case is its ``cases.due_at`` (the intake writes no
    ``case_deadlines`` row for it); a ``case_deadlines`` row for it (written by an action
    that changed the deadlines) says the same and wins. The other clocks come from
    ``case_deadlines``, the handlers' and summoned departments' from ``case_handlers``.
    """
    open_ = list(OPEN_STATES)
    names = ["case_id", "clock", "policy", "start", "due", "level", "cycle", "status", "version"]
    # one pass over the open cases (found by the status index) with their stored clocks
    q = (
        sa.select(
            _C.c.id,
            _D.c.clock,
            _C.c.policy,
            _C.c.received_at,
            _D.c.due_at,
            _C.c.due_at.label("case_due"),
            _C.c.level,
            _C.c.reopened,
            _C.c.status,
            _C.c.version,
        )
        .select_from(_C.outerjoin(_D, _D.c.case_id == _C.c.id))
        .where(_C.c.status.in_(open_))
    )
    got = rows_frame(s.execute(q).all(), [*names[:5], "case_due", *names[5:]])
    has_clock = got["clock"].notna().to_numpy()
    stored = got.loc[has_clock, names]
    resolve = got.loc[got["case_due"].notna().to_numpy()].drop_duplicates("case_id")
    resolve = resolve.assign(clock=_RESOLVE, due=resolve["case_due"])[names]
    if len(stored) and (stored["clock"] == _RESOLVE).any():
        has_row = set(stored.loc[stored["clock"] == _RESOLVE, "case_id"].tolist())
        resolve = resolve[~resolve["case_id"].isin(has_row)]
    base = pd.concat([resolve, stored], ignore_index=True) if len(stored) else resolve
    base = base.reset_index(drop=True)
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
            _C.c.version,
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
                "version": r.version,
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
            written = _insert_events(s, events, stamp)
            escalate = events[events["kind"] == "escalate"]
            if written == len(events):
                # every event is this sweep's: its escalations are known without reading them back
                fresh = _known_escalations(escalate, clocks)
            else:  # another sweep wrote some meanwhile: only those written here count
                fresh = _stored_escalations(s, escalate, stamp)
            _raise_levels(s, fresh)
    return SweepResult(when, int(written), events)


_ESCALATION_COLS = ["key", "case_id", "target", "level", "version", "status"]


def _known_escalations(escalate: pd.DataFrame, clocks: pd.DataFrame) -> pd.DataFrame:
    """Return this sweep's escalations with their case's level, version and state (all new).

    The case columns come from the clock frame, read at the start of the sweep's
    transaction. On SQLite that transaction holds the write lock since it began
    (``BEGIN IMMEDIATE``), so they are as read; on PostgreSQL a concurrent action may have
    changed a case since, and :func:`_raise_levels` updates only cases whose version is
    still the one read (the others are read again, locked, and done then).
    """
    if escalate.empty:
        return pd.DataFrame(columns=_ESCALATION_COLS)
    ev = pd.DataFrame(
        {
            "key": escalate["key"].to_numpy(),
            "case_id": escalate["case_id"].astype("int64").to_numpy(),
            "target": escalate["target"].to_numpy(),
        }
    )
    cases = clocks[["case_id", "level", "version", "status"]].drop_duplicates("case_id")
    cases = cases.assign(case_id=cases["case_id"].astype("int64"))
    return ev.merge(cases, on="case_id", how="inner")[_ESCALATION_COLS]


def _locked_escalations(s: Session, escalations: pd.DataFrame) -> pd.DataFrame:
    """Return ``escalations`` with their cases' level, version and state read again, locked.

    PostgreSQL (``FOR UPDATE``); cases gone meanwhile drop out.
    """
    ids = sorted(set(escalations["case_id"].astype("int64").tolist()))
    q = (
        sa.select(_C.c.id, _C.c.level, _C.c.version, _C.c.status)
        .where(_C.c.id == sa.func.any(sa.bindparam("ids", ids, type_=ARRAY(sa.Integer))))
        .with_for_update()
    )
    cases = rows_frame(s.execute(q).all(), ["case_id", "level", "version", "status"])
    cases["case_id"] = cases["case_id"].astype("int64")
    ev = escalations[["key", "case_id", "target"]].assign(
        case_id=escalations["case_id"].astype("int64")
    )
    return ev.merge(cases, on="case_id", how="inner")[_ESCALATION_COLS]


def _stored_escalations(s: Session, escalate: pd.DataFrame, stamp: dt.datetime) -> pd.DataFrame:
    """Return this sweep's escalations as stored (looked up by key), with their case's columns."""
    backend = s.get_bind().dialect.name
    rows: list[Any] = []
    for chunk in in_chunks(escalate["key"].astype(str).tolist(), 500):
        q = (
            sa.select(_E.c.key, _E.c.case_id, _E.c.target, _C.c.level, _C.c.version, _C.c.status)
            .join(_C, _C.c.id == _E.c.case_id)
            .where(_E.c.key.in_(chunk), _E.c.swept_at == _db_time(stamp, backend))
        )
        if backend == "postgresql":
            q = q.with_for_update(of=_C)
        rows.extend(s.execute(q).all())
    return rows_frame(rows, _ESCALATION_COLS)


_EVENT_COLS = ("key", "case_id", "clock", "kind", "level", "at", "due", "target", "swept_at")


def _insert_events(s: Session, events: pd.DataFrame, stamp: dt.datetime) -> int:
    """Insert the sweep's events, skipping keys already stored (``ON CONFLICT DO NOTHING``).

    Returns how many were written (the skipped ones are not counted).

    Values are taken column by column, in key order. SQLite takes them as Python values
    (times as the UTC text SQLAlchemy writes) in ``executemany`` (its row count says how
    many were new); PostgreSQL as arrays, written as CSV by Arrow, by one ``COPY``
    straight into the table, or — when a concurrent sweep
    wrote some of the keys meanwhile and the COPY is refused — by ``COPY`` into a
    temporary table and one ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
    """
    backend = s.get_bind().dialect.name
    # in key order: the unique index is then grown page after page, not at random places
    # (Arrow sorts the keys; the columns are taken in that order)
    keys = events["key"].to_numpy(dtype=object)
    order = np.asarray(pc.sort_indices(pa.array(keys, type=pa.string())))
    n = len(order)
    target = events["target"].to_numpy(dtype=object)[order]
    arrays: list[Any] = [
        keys[order],
        events["case_id"].astype("int64").to_numpy()[order],
        events["clock"].to_numpy(dtype=object)[order],
        events["kind"].to_numpy(dtype=object)[order],
        events["level"].astype("int64").to_numpy()[order],
        events["at"].take(order),
        events["due"].take(order),
        np.where(pd.isna(target), None, target),
    ]
    if backend == "postgresql":
        # as arrays: Arrow writes them as CSV for COPY (times as UTC text), no Python list
        values: list[Any] = [
            _times_text(v, backend) if isinstance(v, pd.Series) else v for v in arrays
        ]
        (swept,) = _times_out(pd.Series([stamp]), backend)
        values.append(pa.array(np.full(n, swept, dtype=object), type=pa.string()))
    else:  # plain Python values for executemany, times as the UTC text SQLAlchemy writes
        values = [
            _times_out(v, backend) if isinstance(v, pd.Series) else v.tolist() for v in arrays
        ]
        values.append(_times_out(pd.Series([stamp]), backend) * n)
    columns = dict(zip(_EVENT_COLS, values, strict=True))
    cols = ", ".join(f'"{c}"' for c in _EVENT_COLS)
    conn = s.connection()
    if backend == "postgresql":
        # the keys read at the start are not written again, so COPY straight into the table
        # (once, no ON CONFLICT probe per row); if a concurrent sweep wrote some meanwhile,
        # the unique key refuses the COPY: back to the savepoint, and skip them one by one
        from psycopg.errors import UniqueViolation

        try:
            with s.begin_nested():
                return bulk_insert_columns(s, _E, columns)
        except UniqueViolation:
            pass
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS _sweep_events (key text, case_id integer, "
            "clock text, kind text, level integer, at timestamptz, due timestamptz, "
            "target text, swept_at timestamptz) ON COMMIT DROP"
        )
        conn.exec_driver_sql("TRUNCATE _sweep_events")
        temp = sa.Table("_sweep_events", sa.MetaData(), *(sa.Column(c) for c in _EVENT_COLS))
        bulk_insert_columns(s, temp, columns)
        res = conn.exec_driver_sql(
            f'INSERT INTO "{_E.name}" ({cols}) SELECT {cols} FROM _sweep_events '
            "ON CONFLICT (key) DO NOTHING"
        )
        return int(res.rowcount)
    rows = list(zip(*values, strict=True))
    marks = ", ".join("?" for _ in _EVENT_COLS)
    stmt = f'INSERT INTO "{_E.name}" ({cols}) VALUES ({marks}) ON CONFLICT (key) DO NOTHING'
    written = 0
    for chunk in in_chunks(rows, 20_000):
        # sqlite3 counts the rows an executemany changed: the skipped keys are not among them
        written += int(conn.exec_driver_sql(stmt, list(chunk)).rowcount)
    return written


def _raise_levels(s: Session, escalations: pd.DataFrame) -> int:
    """Raise each escalated case to the level its policy names (grid → community → sub-district).

    Only events this sweep wrote count (another process's sweep raises its own), and a level is
    only ever raised: a case a person already escalated further keeps its level. Each raise
    bumps the case's version (its ETag changes, so a stale edit gets 412) and appends an
    ``auto_escalate`` line to its log — in bulk: ``escalations`` carry each case's level,
    version and state as read, the highest target of each case is picked in pandas, the
    cases are updated in one statement (only where the version is still the one read) and
    logged with one bulk insert. On PostgreSQL a case changed meanwhile is read again,
    locked, and decided anew.
    """
    if escalations.empty:
        return 0
    rank = {lv: i for i, lv in enumerate(ORG_LEVELS)}
    ev = escalations.copy()
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
    conn = s.connection()
    if backend == "postgresql":
        # by id, in slices of arrays: the planner then probes the primary key for each
        # (one statement for 100,000 cases would hash-join a scan of the whole table)
        done: set[int] = set()
        for i in range(0, len(cids), _LEVEL_SLICE):
            res = conn.exec_driver_sql(
                f'UPDATE "{_C.name}" AS c SET level = u.level, version = u.version + 1, '
                "updated_at = %(at)s::timestamptz FROM unnest(%(ids)s::integer[], "
                "%(versions)s::integer[], %(levels)s::text[]) AS u(id, version, level) "
                "WHERE c.id = u.id AND c.version = u.version RETURNING c.id",
                {
                    "at": stamp_text,
                    "ids": cids[i : i + _LEVEL_SLICE],
                    "versions": versions[i : i + _LEVEL_SLICE],
                    "levels": targets[i : i + _LEVEL_SLICE],
                },
            )
            done.update(int(r[0]) for r in res)
        if len(done) < len(cids):
            # changed since the clock frame was read (an action, another sweep): log only the
            # cases raised here, then read the others again, locked, and decide anew
            pick = [i for i, c in enumerate(cids) if c in done]
            missed = set(cids) - done
            stale = escalations[escalations["case_id"].astype("int64").isin(missed)]
            m = _log_escalations(
                s,
                [cids[i] for i in pick],
                [versions[i] for i in pick],
                [targets[i] for i in pick],
                [was[i] for i in pick],
                [status[i] for i in pick],
                [keys[i] for i in pick],
                stamp_text,
            )
            return m + _raise_levels(s, _locked_escalations(s, stale))
    else:
        conn.exec_driver_sql(
            f'UPDATE "{_C.name}" SET level = ?, version = ? + 1, updated_at = ? '
            "WHERE id = ? AND version = ?",
            [
                (lv, v, stamp_text, cid, v)
                for cid, v, lv in zip(cids, versions, targets, strict=True)
            ],
        )
    return _log_escalations(s, cids, versions, targets, was, status, keys, stamp_text)


def _log_escalations(
    s: Session,
    cids: list[int],
    versions: list[int],
    targets: list[str],
    was: list[str],
    status: list[str],
    keys: list[str],
    stamp_text: str,
) -> int:
    """Append the ``auto_escalate`` line of each raised case (one bulk insert)."""
    # the JSON of each line, as json.dumps(..., ensure_ascii=False) writes it, built from
    # the strings' JSON forms (the C encoder) rather than a dumps call per line
    enc = encode_basestring
    m = len(cids)
    log: dict[str, list[Any]] = {
        "case_id": cids,
        "version": [v + 1 for v in versions],
        "at": [stamp_text] * m,
        "actor": ["system:sweep"] * m,
        "role": ["system"] * m,
        "unit": [None] * m,
        "action": ["auto_escalate"] * m,
        "from_state": status,
        "to_state": status,
        "note": [
            f"超时升级: overdue, escalated {w} → {lv} by the policy"
            for w, lv in zip(was, targets, strict=True)
        ],
        "data": [
            f'{{"from":{enc(w)},"level":{enc(lv)},"event":{enc(k)}}}'
            for w, lv, k in zip(was, targets, keys, strict=True)
        ],
    }
    bulk_insert_columns(s, _L, {c: log[c] for c in _LOG_COLS})
    return m


#: Cases raised per UPDATE on PostgreSQL.
_LEVEL_SLICE = 10_000
