"""Performance figures and the workload report over the stored cases.

The definitions and the counting are the core's (:mod:`gridmap.cases.stats`); here the
store reads what they need: the cases received in the period, within the actor's scope
(the same scope as :func:`gridmap.db.cases.list_cases`), with the first answer and the
last reply from their lines in the append-only log (``case_log``, through its
``(case_id, to_state, at)`` index) — on PostgreSQL one ``LATERAL`` query read by ``COPY``,
on SQLite two queries joined in pandas (see :func:`_facts`). They are counted with
:func:`gridmap.cases.stats.stats_counts` and :func:`gridmap.cases.stats.stats_durations`,
so stored and in-memory figures agree.

Households per unit come from the published plans' grids (communities and
sub-districts sum their grids); workers per grid from those plans' staffed posts.

A unit asked for (``grid=``, ``community=``, ``subdistrict=``) that the actor's
scope does not cover, or ``by`` a level above the actor's unit, is a
:class:`~gridmap.errors.ScopeError` (HTTP 403).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import TZ, Actor, WorkCalendar, to_local
from gridmap.cases.stats import (
    FINISHED_STATES,
    answer_stages,
    check_by,
    month_count,
    states_from_stage,
    stats_counts,
    stats_durations,
    stats_period,
    stats_table,
    workload_table,
)
from gridmap.db.cases import _db_time, _scope_clause, store_calendar
from gridmap.db.models import (
    Assignment,
    CaseHandler,
    CaseLog,
    CaseRow,
    Community,
    GridRow,
    PlanRow,
    table,
)
from gridmap.db.session import Store, transaction
from gridmap.errors import InputError, ScopeError

__all__ = ["store_case_stats", "store_workload", "check_stats_scope"]

_C = table(CaseRow)
_H = table(CaseHandler)
_L = table(CaseLog)
_G = table(GridRow)
_P = table(PlanRow)
_A = table(Assignment)
_CM = table(Community)

_LEVELS = ("grid", "community", "subdistrict")
_ACTOR_LEVEL = {
    "grid_worker": "grid",
    "grid_chief": "grid",
    "community": "community",
    "subdistrict": "subdistrict",
}


# ----------------------------------------------------------------------------- scope


def _published_grids(s: Session) -> pd.DataFrame:
    """Grid code, community, sub-district and households of the published plans' grids."""
    rows = s.execute(
        sa.select(_G.c.grid_code, _G.c.community_id, _G.c.households)
        .join(_P, _P.c.id == _G.c.plan_id)
        .where(_P.c.status == "published")
    ).all()
    comm = {
        str(r.community_id): (r.street_code or (r.code[:9] if r.code else None))
        for r in s.execute(sa.select(_CM.c.community_id, _CM.c.street_code, _CM.c.code))
    }
    df = pd.DataFrame(rows, columns=["grid_code", "community_id", "households"])
    df["subdistrict"] = df["community_id"].map(lambda c: comm.get(str(c)))
    df["households"] = pd.to_numeric(df["households"], errors="coerce")
    return df


def _ancestors(s: Session, level: str, code: str) -> set[str]:
    """Codes of the units that contain ``code`` (itself included), from grids and cases."""
    out = {code}
    if level == "grid":
        comms = {
            str(c)
            for c in s.execute(
                sa.select(_G.c.community_id).where(_G.c.grid_code == code).distinct()
            ).scalars()
            if c is not None
        }
        row = s.execute(
            sa.select(_C.c.community_id, _C.c.subdistrict).where(_C.c.grid_code == code).limit(1)
        ).first()
        if row is not None:
            out |= {str(v) for v in row if v is not None}
        out |= comms
        for c in comms:
            out |= _ancestors(s, "community", c)
    elif level == "community":
        for r in s.execute(
            sa.select(_CM.c.street_code, _CM.c.code).where(_CM.c.community_id == code)
        ):
            sub = r.street_code or (r.code[:9] if r.code else None)
            if sub:
                out.add(str(sub))
        row = s.execute(
            sa.select(_C.c.subdistrict).where(_C.c.community_id == code).limit(1)
        ).scalar()
        if row:
            out.add(str(row))
    return out


def check_stats_scope(
    target: Store | Session,
    actor: Actor | None,
    *,
    by: str = "grid",
    grid: str | None = None,
    community: str | None = None,
    subdistrict: str | None = None,
) -> None:
    """Raise :class:`~gridmap.errors.ScopeError` if the actor may not see these figures.

    Dispatchers, admins and unscoped viewers see everything. A grid, community
    or sub-district key sees figures by its own level or below, of units inside
    its own; a department key sees the cases it was sent to.
    """
    check_by(by)
    if actor is None or actor.role in ("dispatcher", "admin"):
        return
    unit = actor.unit
    if unit is None:  # an unscoped viewer
        return
    level = _ACTOR_LEVEL.get(actor.role)
    if level is not None and by in _LEVELS and _LEVELS.index(by) > _LEVELS.index(level):
        raise ScopeError(
            f"a {level} key ({unit}) sees figures by its {level} or below, not by={by}; "
            f"use by={level} or ask a dispatcher for the {by} figures"
        )
    asked = [(lv, v) for lv, v in (("grid", grid), ("community", community)) if v]
    asked += [("subdistrict", subdistrict)] if subdistrict else []
    if actor.role == "department" or not asked:
        return
    with transaction(target) as s:
        for lv, code in asked:
            if level is not None and _LEVELS.index(lv) > _LEVELS.index(level):
                covered = False
            else:
                covered = unit in _ancestors(s, lv, str(code))
            if not covered:
                raise ScopeError(
                    f"{lv} {code!r} is outside your key's unit {unit!r}; ask for a unit "
                    f"inside it (or leave {lv}= out to see all of yours)"
                )


# ----------------------------------------------------------------------------- queries


def _period_where(
    backend: str,
    *,
    actor: Actor | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    category: str | None,
    grid: str | None,
    community: str | None,
    subdistrict: str | None,
) -> list[Any]:
    conds = [_scope_clause(actor)]
    if start is not None:
        conds.append(_C.c.received_at >= _db_time(start, backend))
    if end is not None:
        conds.append(_C.c.received_at < _db_time(end, backend))
    for col, value in (
        ("category", category),
        ("grid_code", grid),
        ("community_id", community),
        ("subdistrict", subdistrict),
    ):
        if value:
            conds.append(_C.c[col] == value)
    return conds


def _log_times(where: list[Any]) -> Any:
    """One pass over the log lines of the period's cases: first answers by stage, last reply.

    A grouped join (``case_log`` read through its ``(case_id, to_state, at)`` index), not a
    correlated sub-query per case and clock: PostgreSQL runs those once per row.
    Columns: ``cid``, ``a<stage>`` (first line reaching each answer stage) and ``rep``
    (the last reply, 办结).
    """
    return (
        sa.select(_C.c.id.label("cid"), *_stage_times(_stages()))
        .select_from(_C.join(_L, _L.c.case_id == _C.c.id))
        .where(*where)
        .group_by(_C.c.id)
        .subquery("log_times")
    )


def _stage_times(stages: list[int]) -> list[Any]:
    """``a<stage>``: the first log line reaching each answer stage; ``rep``: the last reply."""
    cols = [
        sa.func.min(sa.case((_L.c.to_state.in_(states_from_stage(k)), _L.c.at))).label(f"a{k}")
        for k in stages
    ]
    return [*cols, sa.func.max(sa.case((_L.c.to_state == "replied", _L.c.at))).label("rep")]


def _raw_time(col: Any) -> Any:
    """Read a time column as the driver gives it (text on SQLite: pandas parses it in one go)."""
    return sa.type_coerce(col, sa.String)


def _unit_source(by: str, actor: Actor | None) -> tuple[Any, Any]:
    """Return the unit column and the FROM clause (cases, with handlers for departments/staff)."""
    if by in ("grid", "community", "subdistrict"):
        col = {
            "grid": _C.c.grid_code,
            "community": _C.c.community_id,
            "subdistrict": _C.c.subdistrict,
        }
        return col[by], _C
    if by == "department":
        q = sa.select(_H.c.case_id, _H.c.unit).where(_H.c.kind == "department")
        if actor is not None and actor.role == "department":
            q = q.where(_H.c.unit == actor.unit)
    else:
        q = sa.select(_H.c.case_id, _H.c.person.label("unit")).where(_H.c.person.is_not(None))
    pairs = q.distinct().subquery("pairs")
    return pairs.c.unit, _C.join(pairs, pairs.c.case_id == _C.c.id)


def _facts(s: Session, unit: Any, source: Any, where: list[Any]) -> pd.DataFrame:
    """Return the period's cases as a facts frame (``unit`` plus what the counts need).

    The counting then is the pure core's (:func:`~gridmap.cases.stats.stats_counts`), the
    same code that counts a frame in memory. A month of a large district is some 100,000
    cases; how they are read depends on the backend:

    * PostgreSQL: one query — each case with its log's times from a ``LATERAL`` aggregate
      (an index-only scan of ``case_log(case_id, to_state, at)`` per case, whatever the
      planner thinks of a join over the whole log) — written out by ``COPY … TO STDOUT``
      as CSV with times as integer microseconds and read by pandas' C parser: no row
      objects, no ``datetime`` objects, exact times.
    * SQLite: two queries — the cases and one grouped pass over their log lines
      (:func:`_log_times`) — joined in pandas; times are SQLite's UTC text.
    """
    if s.get_bind().dialect.name == "postgresql":
        frame = _copy_facts(s, unit, source, where)
    else:
        frame = _sqlite_facts(s, unit, source, where)
    stages = _stages()
    answered = frame["a1"].copy()
    for policy, k in answer_stages().items():
        pick = (frame["policy"] == policy).to_numpy()
        answered[pick] = frame.loc[pick, f"a{k}"]
    frame["answered_at"] = answered
    frame["replied_at"] = frame["rep"]
    frame["satisfaction"] = frame["satisfaction"].where(frame["satisfaction"].notna(), None)
    frame["reopened"] = pd.to_numeric(frame["reopened"]).fillna(0).astype("int64")
    return frame.drop(columns=[*(f"a{k}" for k in stages), "rep"])


def _stages() -> list[int]:
    """Return the answer stages whose first line the figures need (1 always: the default)."""
    return sorted(set(answer_stages().values()) | {1})


def _sqlite_facts(s: Session, unit: Any, source: Any, where: list[Any]) -> pd.DataFrame:
    """Read the cases and their log's times in two queries, joined in pandas (SQLite)."""
    rows = s.execute(
        sa.select(
            _C.c.id,
            unit.label("unit"),
            _C.c.policy,
            _C.c.status,
            _raw_time(_C.c.received_at).label("received_at"),
            _raw_time(_C.c.due_at).label("due_at"),
            _C.c.satisfaction,
            _C.c.reopened,
        )
        .select_from(source)
        .where(*where)
    ).all()
    cols = ["id", "unit", "policy", "status", "received_at", "due_at", "satisfaction", "reopened"]
    frame = _frame(rows, cols)
    stages = _stages()
    lt = _log_times(where)
    times = _frame(
        s.execute(
            sa.select(lt.c.cid, *(_raw_time(lt.c[f"a{k}"]) for k in stages), _raw_time(lt.c.rep))
        ).all(),
        ["id", *(f"a{k}" for k in stages), "rep"],
    )
    frame = frame.merge(times, on="id", how="left")
    for col in ("received_at", "due_at", "rep", *(f"a{k}" for k in stages)):
        frame[col] = _times(frame[col].tolist())
    return frame


def _micros(col: Any) -> Any:
    """Return a timestamptz as integer microseconds since the epoch (exact; NULL stays NULL)."""
    return sa.cast(sa.extract("epoch", col) * 1_000_000, sa.BigInteger)


def _copy_facts(s: Session, unit: Any, source: Any, where: list[Any]) -> pd.DataFrame:
    """Read the cases and their log's times in one PostgreSQL query, by ``COPY`` as CSV."""
    stages = _stages()
    log = (
        sa.select(*_stage_times(stages))
        .where(_L.c.case_id == _C.c.id)
        .correlate(_C)
        .lateral("log_times")
    )
    times = ["received_at", "due_at", *(f"a{k}" for k in stages), "rep"]
    q = (
        sa.select(
            _C.c.id,
            unit.label("unit"),
            _C.c.policy,
            _C.c.status,
            _C.c.satisfaction,
            _C.c.reopened,
            _micros(_C.c.received_at),
            _micros(_C.c.due_at),
            *(_micros(log.c[f"a{k}"]) for k in stages),
            _micros(log.c.rep),
        )
        .select_from(source.join(log, sa.true()))
        .where(*where)
    )
    compiled = q.compile(dialect=s.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    raw = s.connection().connection.driver_connection
    buf = io.BytesIO()
    with raw.cursor() as cur:  # type: ignore[union-attr]
        # JIT compiling this short query costs more than it saves (up to 0.5 s when the
        # planner's estimate of the log is high): off for it, as it was afterwards
        jit = cur.execute("SELECT current_setting('jit')").fetchone()
        cur.execute("SET LOCAL jit = off")
        with cur.copy(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)", compiled.params) as copy:
            for block in copy:
                buf.write(block)
        if jit is not None:
            cur.execute("SELECT set_config('jit', %s, true)", (jit[0],))
    buf.seek(0)
    names = ["id", "unit", "policy", "status", "satisfaction", "reopened", *times]
    text: dict[str, Any] = dict.fromkeys(["unit", "policy", "status", "satisfaction"], object)
    frame = pd.read_csv(
        buf,
        header=None,
        names=names,
        dtype={**text, "id": "int64", "reopened": "float64", **dict.fromkeys(times, "float64")},
        keep_default_na=False,
        na_values={c: [""] for c in names},
    )
    for col in ("unit", "policy", "status", "satisfaction"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    for col in times:
        frame[col] = _micros_times(frame[col].to_numpy())
    return frame


def _micros_times(values: np.ndarray) -> pd.Series:
    """Integer microseconds since the epoch (float, NaN for none) as Asia/Shanghai times.

    Float64 holds the integers exactly (they are below 2**53 until the year 2255).
    """
    missing = np.isnan(values)
    us = np.where(missing, 0, values).astype(np.int64).astype("datetime64[us]")
    us[missing] = np.datetime64("NaT")
    out = pd.DatetimeIndex(us.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(TZ)
    return pd.Series(out)


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """Build a frame from result rows column by column (not row objects one by one)."""
    data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(columns, data, strict=True)})


def _times(values: list[Any]) -> pd.Series:
    """Return stored times (UTC text on SQLite, aware on PostgreSQL) in Asia/Shanghai."""
    s = pd.Series(values, dtype=object)
    out = pd.to_datetime(s, utc=True, format="ISO8601")
    return out.dt.tz_convert(TZ)


def _resolve_period(
    month: str | None, start: Any, end: Any
) -> tuple[dt.datetime | None, dt.datetime | None]:
    if month is not None or isinstance(start, str) or isinstance(end, str):
        return stats_period(month=month, start=start, end=end)
    return (
        to_local(start) if start is not None else None,
        to_local(end) if end is not None else None,
    )


def store_case_stats(
    target: Store | Session,
    *,
    by: str = "grid",
    month: str | None = None,
    start: Any = None,
    end: Any = None,
    category: str | None = None,
    grid: str | None = None,
    community: str | None = None,
    subdistrict: str | None = None,
    actor: Actor | None = None,
    now: Any = None,
    calendar: WorkCalendar | None = None,
) -> pd.DataFrame:
    """Return the performance figures of the stored cases (:data:`~gridmap.cases.STATS_COLUMNS`).

    Parameters
    ----------
    by : {"grid", "community", "subdistrict", "department", "staff"}
    month : str, optional
        ``YYYY-MM``; or ``start``/``end`` (a date-only ``end`` includes its day).
        No period: every stored case.
    category, grid, community, subdistrict : str, optional
        Only cases of this category / in this unit.
    actor : Actor, optional
        Limits the figures to the actor's unit (as ``list_cases``); a unit
        outside it is a :class:`~gridmap.errors.ScopeError`.
    now : datetime, optional
        When "overdue" is judged (default: the current time).
    calendar : WorkCalendar, optional
        Default: the store's calendar.

    Returns
    -------
    pandas.DataFrame
        One row per unit, figures as :func:`gridmap.cases.case_stats` computes
        them; ``attrs`` carry ``by``, ``start``, ``end``, ``now``.

    Examples
    --------
    >>> from gridmap.db import Store
    >>> store_case_stats(Store.from_url("sqlite://"), month="2026-11").columns[:4].tolist()
    ['unit', 'received', 'open', 'overdue']
    """
    check_by(by)
    lo, hi = _resolve_period(month, start, end)
    when = to_local(now) if now is not None else dt.datetime.now(TZ)
    check_stats_scope(target, actor, by=by, grid=grid, community=community, subdistrict=subdistrict)
    with transaction(target) as s:
        backend = s.get_bind().dialect.name
        cal = calendar or store_calendar(s)
        where = _period_where(
            backend,
            actor=actor,
            start=lo,
            end=hi,
            category=category,
            grid=grid,
            community=community,
            subdistrict=subdistrict,
        )
        unit, source = _unit_source(by, actor)
        facts = _facts(s, unit, source, where)
        counts = stats_counts(facts, now=when)
        durations = stats_durations(
            pd.DataFrame(
                {
                    "unit": facts["unit"].to_numpy(),
                    "received_at": facts["received_at"],
                    "answered_at": facts["answered_at"],
                    "replied_at": facts["replied_at"].where(
                        facts["status"].isin(FINISHED_STATES).to_numpy()
                    ),
                }
            ),
            calendar=cal,
        )
        households = _published_grids(s) if by in _LEVELS else None
    out = stats_table(counts, durations, households=households, by=by)
    out.attrs.update(
        {
            "by": by,
            "start": None if lo is None else lo.isoformat(),
            "end": None if hi is None else hi.isoformat(),
            "now": when.isoformat(),
            "category": category,
        }
    )
    return out


def store_workload(
    target: Store | Session,
    *,
    month: str | None = None,
    start: Any = None,
    end: Any = None,
    category: str | None = None,
    community: str | None = None,
    actor: Actor | None = None,
    factor: float = 1.5,
) -> pd.DataFrame:
    """Return the workload report of the stored cases (:data:`~gridmap.cases.WORKLOAD_COLUMNS`).

    Cases per staffed worker (the published plans' posts with a person) per
    month by grid; ``far_above`` names the grids above ``factor`` × their
    community's median. Every published grid in scope is listed, with 0 cases
    if none.

    Examples
    --------
    >>> from gridmap.db import Store
    >>> len(store_workload(Store.from_url("sqlite://"), month="2026-11"))
    0
    """
    lo, hi = _resolve_period(month, start, end)
    if lo is None or hi is None:
        raise InputError("the workload needs a period: give a month (2026-11) or from and to")
    check_stats_scope(target, actor, by="grid", community=community)
    with transaction(target) as s:
        backend = s.get_bind().dialect.name
        where = _period_where(
            backend,
            actor=actor,
            start=lo,
            end=hi,
            category=category,
            grid=None,
            community=community,
            subdistrict=None,
        )
        where.append(_C.c.grid_code.is_not(None))
        rows = s.execute(
            sa.select(_C.c.grid_code, _C.c.community_id, sa.func.count().label("cases"))
            .where(*where)
            .group_by(_C.c.grid_code, _C.c.community_id)
        ).all()
        counts = pd.DataFrame(rows, columns=["grid_code", "community_id", "cases"])
        grids = _published_grids(s)
        posts = s.execute(
            sa.select(_A.c.grid_code, sa.func.count().label("n"))
            .join(_P, _P.c.id == _A.c.plan_id)
            .where(_P.c.status == "published", _A.c.staff_id.is_not(None))
            .group_by(_A.c.grid_code)
        ).all()
    grids = _grids_in_scope(grids, actor, community)
    have = counts.set_index("grid_code")["cases"] if len(counts) else pd.Series(dtype="int64")
    listed = grids[["grid_code", "community_id"]].copy()
    listed["cases"] = listed["grid_code"].map(have).fillna(0).astype("int64")
    extra = counts[~counts["grid_code"].isin(listed["grid_code"])]
    allc = pd.concat([listed, extra], ignore_index=True) if len(extra) else listed
    workers = {str(g): int(k) for g, k in posts if g is not None}
    return workload_table(allc, workers, months=month_count(lo, hi), factor=factor)


def _grids_in_scope(
    grids: pd.DataFrame, actor: Actor | None, community: str | None
) -> pd.DataFrame:
    keep = pd.Series(True, index=grids.index)
    if community:
        keep &= grids["community_id"] == community
    if actor is not None and actor.role not in ("dispatcher", "admin") and actor.unit:
        level = _ACTOR_LEVEL.get(actor.role)
        if level == "grid":
            keep &= grids["grid_code"] == actor.unit
        elif level == "community":
            keep &= grids["community_id"] == actor.unit
        elif level == "subdistrict":
            keep &= grids["subdistrict"] == actor.unit
        elif actor.role == "viewer":
            keep &= (
                (grids["grid_code"] == actor.unit)
                | (grids["community_id"] == actor.unit)
                | (grids["subdistrict"] == actor.unit)
            )
        else:  # a department: only the grids of the cases it was sent to
            keep &= False
    return grids[keep]
