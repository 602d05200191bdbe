"""Case timers: which warnings, overdue notices, 催办, 督办 and escalations are due now.

:func:`sweep` is pure and vectorised. It takes a *clock frame* — one row per
running clock of an open case (:data:`CLOCK_COLUMNS`; :func:`clock_frame` builds
it from :class:`~gridmap.cases.model.Case` records, the DB layer can select it
directly) — a time ``now``, the calendar, the policies and the keys of the
events already written, and returns the events due at ``now`` that are not
written yet.

Events per clock (times in Asia/Shanghai; ``D`` is the due day):

========== ===== ==========================================================
kind       level fires at
========== ===== ==========================================================
warning    0     start + ``warn_at`` × (due − start) (wall-clock share)
overdue    0     due + 1 s (for a working-day limit: 00:00 the day after D)
remind     0     催办: ``remind.at`` on the ``remind.after_working_days``-th
                 working day after D
supervise  0     督办: ``supervise.at`` ``supervise.after_working_days``
                 working days after the reminder day
escalate   k≥1   step k of ``escalation``: ``after_working_days`` after D at
                 ``remind.at`` (0: when overdue); only to a level above the
                 case's current ``level``
========== ===== ==========================================================

Sub-clocks (co-handler deadlines ``handler:<unit>``, department sign-ins
``report_in:<dept>``) have ``follow_up=False``: they warn and go overdue only.

Every event has a stable key ``"<case_id>|<clock>|<kind>|<level>"`` (plus
``"|<cycle>"`` when the clock's ``cycle`` — e.g. the reopen count — is not 0),
so a sweep repeated at the same ``now`` with the events already written yields
nothing: sweeps are idempotent and may be run as often as wanted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gridmap.cases.calendar import TZ, WorkCalendar, default_calendar, to_local
from gridmap.cases.model import Case
from gridmap.cases.policies import Policies, default_policies
from gridmap.cases.vocabulary import OPEN_STATES, ORG_LEVELS, STAGE
from gridmap.errors import CaseError

__all__ = [
    "CLOCK_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "event_key",
    "clock_frame",
    "sweep",
]

#: Columns of a clock frame (``cycle`` and ``status`` are optional).
CLOCK_COLUMNS: tuple[str, ...] = (
    "case_id",
    "clock",
    "policy",
    "start",
    "due",
    "level",
    "follow_up",
    "cycle",
    "status",
)
#: Columns of the events :func:`sweep` returns.
EVENT_COLUMNS: tuple[str, ...] = (
    "key",
    "case_id",
    "clock",
    "kind",
    "level",
    "at",
    "due",
    "target",
)
#: Event kinds in the order they happen.
EVENT_KINDS: tuple[str, ...] = ("warning", "overdue", "remind", "supervise", "escalate")

_REQUIRED = ("case_id", "clock", "policy", "start", "due")
_SECOND = 1_000_000_000


def event_key(case_id: str, clock: str, kind: str, level: int = 0, cycle: int = 0) -> str:
    """Return the stable key of an event.

    Examples
    --------
    >>> event_key("C1", "resolve", "overdue")
    'C1|resolve|overdue|0'
    >>> event_key("C1", "resolve", "escalate", 2, cycle=1)
    'C1|resolve|escalate|2|1'
    """
    key = f"{case_id}|{clock}|{kind}|{int(level)}"
    return f"{key}|{int(cycle)}" if cycle else key


def clock_frame(cases: Iterable[Case], policies: Policies | None = None) -> pd.DataFrame:
    """Return the running clocks of open cases, one row each (:data:`CLOCK_COLUMNS`).

    A policy clock runs until the case reaches its ``stop`` state's stage; a
    co-handler's own deadline (``handler:<unit>``) until the case is replied;
    a summoned department's sign-in (``report_in:<dept>``) until it reports in.

    Examples
    --------
    >>> from gridmap.cases.model import intake, Placement
    >>> c = intake({"source": "online", "category": "road", "description": "坑",
    ...             "address": "幸福路", "received_at": "2026-09-18 10:00"}, case_id="C1")
    >>> clock_frame([c])[["case_id", "clock", "policy"]].values.tolist()
    [['C1', 'answer', '357'], ['C1', 'resolve', '357']]
    """
    pols = policies or default_policies()
    rows: list[dict[str, Any]] = []
    for c in cases:
        if c.status not in OPEN_STATES:
            continue
        stage = STAGE[c.status]
        pol = pols.get(c.policy)
        base = {
            "case_id": c.id,
            "policy": c.policy,
            "level": c.level,
            "cycle": c.reopened,
            "status": c.status,
        }
        for name, dl in c.deadlines.items():
            if stage >= STAGE[pol.clock(name).stop]:
                continue
            rows.append(
                {**base, "clock": name, "start": c.received_at, "due": dl.due, "follow_up": True}
            )
        if stage < STAGE["replied"]:
            for h in c.handlers:
                if not h.lead and h.due is not None:
                    rows.append(
                        {
                            **base,
                            "clock": f"handler:{h.unit}",
                            "start": c.received_at,
                            "due": h.due.due,
                            "follow_up": False,
                        }
                    )
        for s in c.summons:
            if s.signed_in_at is None:
                rows.append(
                    {
                        **base,
                        "clock": f"report_in:{s.department}",
                        "start": s.summoned_at,
                        "due": s.due.due,
                        "follow_up": False,
                    }
                )
    frame = pd.DataFrame(rows, columns=list(CLOCK_COLUMNS))
    for col in ("start", "due"):
        frame[col] = pd.to_datetime(frame[col], utc=True).dt.tz_convert(TZ)
    return frame


def _utc_ns(values: pd.Series, name: str) -> np.ndarray:
    s = (
        pd.to_datetime(values, utc=True)
        if not isinstance(values.dtype, pd.DatetimeTZDtype)
        else values
    )
    if s.isna().any():
        raise CaseError(
            f"clock frame column {name!r} has missing times at rows "
            f"{np.flatnonzero(s.isna().to_numpy())[:5].tolist()}"
        )
    return (
        s.dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .to_numpy()
        .astype("datetime64[ns]")
        .astype(np.int64)
    )


def _local_days(ns: np.ndarray) -> np.ndarray:
    idx = pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(TZ)
    return idx.tz_localize(None).normalize().to_numpy().astype("datetime64[D]")


def _at_time(days: np.ndarray, when: dt.time) -> np.ndarray:
    offset = pd.Timedelta(hours=when.hour, minutes=when.minute, seconds=when.second)
    idx = (pd.DatetimeIndex(days.astype("datetime64[ns]")) + offset).tz_localize(TZ)
    return idx.as_unit("ns").asi8


def sweep(
    clocks: pd.DataFrame,
    now: Any,
    calendar: WorkCalendar | None = None,
    policies: Policies | None = None,
    *,
    already: Iterable[str] = (),
) -> pd.DataFrame:
    """Events due at ``now`` (at or before it) that are not in ``already``.

    Parameters
    ----------
    clocks : pandas.DataFrame
        A clock frame (:data:`CLOCK_COLUMNS`): ``case_id``, ``clock``,
        ``policy``, ``start``, ``due`` required; ``level`` (default "grid"),
        ``follow_up`` (default: the clock is a clock of the policy), ``cycle``
        (default 0) and ``status`` (rows whose status stopped the clock are
        dropped) optional.
    now : datetime
        Naive = Asia/Shanghai.
    calendar, policies : optional
        Default: the shipped ones.
    already : iterable of str
        Keys of events already written (:func:`event_key`).

    Returns
    -------
    pandas.DataFrame
        :data:`EVENT_COLUMNS`, sorted by time, case, clock and kind. ``at`` is
        when the event fell due; ``target`` the level escalated to.

    Examples
    --------
    >>> clocks = pd.DataFrame({"case_id": ["C1"], "clock": ["resolve"], "policy": ["12345"],
    ...                        "start": [pd.Timestamp("2026-09-18 10:00", tz=TZ)],
    ...                        "due": [pd.Timestamp("2026-09-22 23:59:59", tz=TZ)]})
    >>> ev = sweep(clocks, "2026-09-23 09:00")
    >>> ev[["kind", "at"]].astype(str).values.tolist()
    [['warning', '2026-09-22 02:00:00+08:00'],
     ['overdue', '2026-09-23 00:00:00+08:00'],
     ['remind', '2026-09-23 09:00:00+08:00'],
     ['escalate', '2026-09-23 09:00:00+08:00']]
    >>> len(sweep(clocks, "2026-09-23 09:00", already=ev["key"]))
    0
    """
    cal = calendar or default_calendar()
    pols = policies or default_policies()
    missing = [c for c in _REQUIRED if c not in clocks.columns]
    if missing:
        raise CaseError(
            f"clock frame lacks column(s) {missing}; see gridmap.cases.clocks.CLOCK_COLUMNS"
        )
    df = clocks.reset_index(drop=True)
    n = len(df)
    if n == 0:
        return _empty()
    policy = df["policy"].astype(str).to_numpy()
    clock = df["clock"].astype(str).to_numpy()
    unknown = sorted({str(p) for p in policy} - set(pols))
    if unknown:
        raise CaseError(f"clock frame names unknown policies {unknown}; defined: {sorted(pols)}")
    level = df["level"].astype(str).to_numpy() if "level" in df else np.full(n, "grid")
    bad_levels = sorted({str(lv) for lv in level} - set(ORG_LEVELS))
    if bad_levels:
        raise CaseError(f"unknown level(s) {bad_levels}; use one of {list(ORG_LEVELS)}")
    cycle = (
        df["cycle"].fillna(0).astype(np.int64).to_numpy()
        if "cycle" in df
        else np.zeros(n, np.int64)
    )

    # per (policy, clock): warn share, whether it is a policy clock, its stop stage
    share = np.empty(n)
    is_policy_clock = np.zeros(n, dtype=bool)
    stop_stage = np.full(n, STAGE["replied"])
    pair = pd.Series(policy) + "\x00" + pd.Series(clock)
    for key in pair.unique():
        p_name, c_name = key.split("\x00", 1)
        pol = pols[p_name]
        rows = (pair == key).to_numpy()
        names = {c.name for c in pol.clocks}
        if c_name in names:
            share[rows] = pol.warn_share(c_name)
            is_policy_clock[rows] = True
            stop_stage[rows] = STAGE[pol.clock(c_name).stop]
        else:
            share[rows] = pol.warn_at
    keep = np.ones(n, dtype=bool)
    if "status" in df:
        status = df["status"].astype(str)
        unknown_states = sorted(set(status) - set(STAGE))
        if unknown_states:
            raise CaseError(f"unknown status(es) {unknown_states}")
        st = status.map(STAGE).to_numpy()
        keep = status.isin(OPEN_STATES).to_numpy() & (st < stop_stage)
    follow = (
        df["follow_up"].fillna(False).astype(bool).to_numpy()
        if "follow_up" in df
        else is_policy_clock
    )

    start = _utc_ns(df["start"], "start")
    due = _utc_ns(df["due"], "due")
    now_ns = pd.Timestamp(to_local(now)).as_unit("ns").value
    idx_all: list[np.ndarray] = []
    kind_all: list[np.ndarray] = []
    level_all: list[np.ndarray] = []
    at_all: list[np.ndarray] = []
    target_all: list[np.ndarray] = []

    def add(
        mask: np.ndarray,
        rows: np.ndarray,
        kind: str,
        lvl: int,
        at: np.ndarray,
        target: str | None = None,
    ) -> None:
        # kinds and targets as small codes (into EVENT_KINDS, ORG_LEVELS; -1: none)
        hit = mask & (at <= now_ns)
        m = int(hit.sum())
        if m:
            idx_all.append(rows[hit])
            kind_all.append(np.full(m, EVENT_KINDS.index(kind), dtype=np.int8))
            level_all.append(np.full(m, lvl, dtype=np.int64))
            at_all.append(at[hit])
            code = ORG_LEVELS.index(target) if target is not None else -1
            target_all.append(np.full(m, code, dtype=np.int8))

    rows_all = np.arange(n)
    allowed_s = (due - start) / _SECOND
    warn_at = start + np.ceil(allowed_s * share).astype(np.int64) * _SECOND  # whole seconds
    add(keep & (warn_at < due), rows_all, "warning", 0, warn_at)
    over_at = due + _SECOND
    add(keep, rows_all, "overdue", 0, over_at)

    late = keep & follow & (over_at <= now_ns)
    due_day = _local_days(due)
    rank = pd.Series(level).map({lv: i for i, lv in enumerate(ORG_LEVELS)}).to_numpy()
    for p_name in np.unique(policy[late]):
        pol = pols[str(p_name)]
        rows = np.flatnonzero(late & (policy == p_name))
        days = due_day[rows]
        rday, _ = cal.add_working_days_array(days, pol.remind.after_working_days)
        ones = np.ones(len(rows), dtype=bool)
        add(ones, rows, "remind", 0, _at_time(rday, pol.remind.at))
        sday, _ = cal.add_working_days_array(rday, pol.supervise.after_working_days)
        add(ones, rows, "supervise", 0, _at_time(sday, pol.supervise.at))
        for k, step in enumerate(pol.escalation, start=1):
            above = rank[rows] < ORG_LEVELS.index(step.to)
            if step.after_working_days == 0:
                at = over_at[rows]
            else:
                eday, _ = cal.add_working_days_array(days, step.after_working_days)
                at = _at_time(eday, pol.remind.at)
            add(above, rows, "escalate", k, at, step.to)

    if not idx_all:
        return _empty()
    idx = np.concatenate(idx_all)
    kinds = np.concatenate(kind_all)
    levels = np.concatenate(level_all)
    at = np.concatenate(at_all)
    targets = np.concatenate(target_all)
    # the keys, joined column-wise by Arrow (no Python string per part)
    cid_obj = df["case_id"].astype(str).to_numpy(dtype=object)
    case_ids = pa.array(cid_obj, type=pa.string())
    clocks_ = pa.array(clock, type=pa.string())
    parts = [
        case_ids.take(idx),
        clocks_.take(idx),
        pa.array(EVENT_KINDS, type=pa.string()).take(kinds),
        pc.cast(pa.array(levels), pa.string()),
    ]
    keys = pc.binary_join_element_wise(*parts, "|")
    cyc = cycle[idx]
    if (cyc != 0).any():
        suffix = np.where(cyc != 0, pd.Series(cyc).astype(str).radd("|").to_numpy(), "")
        keys = pc.binary_join_element_wise(keys, pa.array(suffix, type=pa.string()), "")
    done = already if isinstance(already, set | frozenset) else set(already)
    if done:
        fresh = ~np.asarray(pc.is_in(keys, value_set=pa.array(list(done), type=pa.string())))
    else:
        fresh = np.ones(len(keys), dtype=bool)
    # sorted by time, case, clock, kind and level; the strings by their ranks among the
    # clocks (fewer than the events), then one lexsort of integers
    case_rank = np.asarray(pc.rank(case_ids, tiebreaker="dense"))[idx]
    clock_rank = np.asarray(pc.rank(clocks_, tiebreaker="dense"))[idx]
    sel = np.flatnonzero(fresh)
    sel = sel[np.lexsort((levels[sel], kinds[sel], clock_rank[sel], case_rank[sel], at[sel]))]
    take = pa.array(sel)
    rows = idx[sel]
    return pd.DataFrame(
        {
            "key": pd.Series(np.asarray(keys.take(take).to_pylist(), dtype=object), dtype=object),
            "case_id": pd.Series(cid_obj[rows], dtype=object),
            "clock": pd.Series(clock[rows], dtype=object),
            "kind": pd.Series(np.asarray(EVENT_KINDS, dtype=object)[kinds[sel]], dtype=object),
            "level": levels[sel],
            "at": _local_times(at[sel]),
            "due": _local_times(due[rows]),
            "target": pd.Series(
                np.asarray(list(ORG_LEVELS) + [None], dtype=object)[targets[sel]], dtype=object
            ),
        }
    )


def _local_times(ns: np.ndarray) -> pd.DatetimeIndex:
    """Return UTC nanoseconds as times in Asia/Shanghai."""
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(TZ)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "key": pd.Series([], dtype=object),
            "case_id": pd.Series([], dtype=object),
            "clock": pd.Series([], dtype=object),
            "kind": pd.Series([], dtype=object),
            "level": pd.Series([], dtype=np.int64),
            "at": pd.Series([], dtype=pd.DatetimeTZDtype("ns", TZ)),
            "due": pd.Series([], dtype=pd.DatetimeTZDtype("ns", TZ)),
            "target": pd.Series([], dtype=object),
        }
    )
