"""Performance figures of cases (工单绩效) and the workload report, as DataFrames.

Who asks what: a community secretary "which of my grids is late, and why?", a
sub-district head "what is our on-time rate this month, by community?". The
figures are counted per unit — grid, community, sub-district (the placement
frozen at intake), department or staff member (the handlers a case was sent to;
a case sent to two departments counts for each) — over the cases **received**
in a period ``[start, end)`` (Asia/Shanghai):

=========================  ==============================================================
column                     definition
=========================  ==============================================================
``unit``                   the grid code, community id, sub-district, department or
                           person (None: cases with no unit at that level, e.g. unlocated)
``received``               cases received in the period
``open``                   of those, not closed, rejected or merged now
``overdue``                open, not replied, and past the ``resolve`` deadline at ``now``
``due``                    应办结: with a resolve deadline, not rejected/merged, and either
                           finished (replied, callback, closed) or past the deadline
``on_time``                finished with the (last) reply at or before the deadline
``on_time_rate``           按时办结率 = ``on_time / due``
``answered``               cases with a first answer: the first log entry reaching the
                           stop state of the policy's ``answer`` clock (``accepted`` for
                           357, ``in_progress`` for 12345; ``accepted`` when a policy has
                           no answer clock); rejections and merges are not answers
``answer_hours_median``,   working hours from reception to that answer: wall-clock hours
``answer_hours_p90``       that fall on working days (:meth:`WorkCalendar.working_time_between`)
``resolved``               finished cases with a reply in the log
``resolve_days_median``,   working days from reception to the (last) reply, counted as
``resolve_days_p90``       deadlines count them (a reply on the N-th working day = N)
``rated``                  cases with a callback result (回访)
``satisfied``              rated 满意 or 基本满意
``satisfaction_rate``      满意率 = ``satisfied / rated``
``replied``                cases replied at least once (the log has a reply)
``reopened``               cases reopened at least once (重办)
``reopen_rate``            ``reopened / replied``
``households``             households of the unit (grids, communities, sub-districts only)
``per_1000_households``    ``received / households × 1000``
=========================  ==============================================================

Medians and the 90th percentile are pandas' (linear interpolation); rates are
NaN when their denominator is 0. :data:`STATS_LABELS_ZH` gives the Chinese
column headers for CSV and Excel (``to_csv(..., encoding="utf-8-sig")``).

The workload report (:func:`workload`) counts cases per staffed worker per month
by grid and names the grids whose load is more than ``factor`` (1.5) times the
median of their community's grids.

The same figures come from the store in SQL (:func:`gridmap.db.case_stats.store_case_stats`);
both share :func:`stats_durations` and :func:`stats_table`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from gridmap.cases.calendar import TZ, WorkCalendar, default_calendar, to_local
from gridmap.cases.model import Case
from gridmap.cases.policies import Policies, default_policies
from gridmap.cases.states import LogEntry
from gridmap.cases.vocabulary import OPEN_STATES, STAGE
from gridmap.errors import InputError

__all__ = [
    "STATS_BY",
    "STATS_COLUMNS",
    "STATS_LABELS_ZH",
    "COUNT_COLUMNS",
    "FACT_COLUMNS",
    "FINISHED_STATES",
    "WORKLOAD_COLUMNS",
    "WORKLOAD_LABELS_ZH",
    "stats_period",
    "check_by",
    "answer_stages",
    "late_states",
    "states_from_stage",
    "case_facts",
    "stats_counts",
    "stats_durations",
    "stats_table",
    "case_stats",
    "month_count",
    "workload_table",
    "workload",
    "label_columns",
]

#: Units the figures can be counted by.
STATS_BY: tuple[str, ...] = ("grid", "community", "subdistrict", "department", "staff")
#: States of a finished case (办结 and after).
FINISHED_STATES: tuple[str, ...] = ("replied", "callback", "closed")
#: Counts aggregated per unit (in SQL by the store).
COUNT_COLUMNS: tuple[str, ...] = (
    "received",
    "open",
    "overdue",
    "due",
    "on_time",
    "rated",
    "satisfied",
    "replied",
    "reopened",
)
#: Columns of :func:`case_stats`, in order.
STATS_COLUMNS: tuple[str, ...] = (
    "unit",
    "received",
    "open",
    "overdue",
    "due",
    "on_time",
    "on_time_rate",
    "answered",
    "answer_hours_median",
    "answer_hours_p90",
    "resolved",
    "resolve_days_median",
    "resolve_days_p90",
    "rated",
    "satisfied",
    "satisfaction_rate",
    "replied",
    "reopened",
    "reopen_rate",
    "households",
    "per_1000_households",
)
#: Chinese headers of :data:`STATS_COLUMNS` for CSV/Excel exports.
STATS_LABELS_ZH: Mapping[str, str] = {
    "unit": "单位",
    "received": "受理量",
    "open": "未结案",
    "overdue": "当前超期",
    "due": "应办结",
    "on_time": "按时办结",
    "on_time_rate": "按时办结率",
    "answered": "已响应",
    "answer_hours_median": "响应用时中位数(工作小时)",
    "answer_hours_p90": "响应用时P90(工作小时)",
    "resolved": "已办结",
    "resolve_days_median": "办结用时中位数(工作日)",
    "resolve_days_p90": "办结用时P90(工作日)",
    "rated": "已回访",
    "satisfied": "满意及基本满意",
    "satisfaction_rate": "满意率",
    "replied": "曾办结",
    "reopened": "重办",
    "reopen_rate": "重办率",
    "households": "户数",
    "per_1000_households": "每千户工单量",
}
#: Per-case columns :func:`case_facts` returns (the input of :func:`case_stats`).
FACT_COLUMNS: tuple[str, ...] = (
    "case_id",
    "grid_code",
    "community_id",
    "subdistrict",
    "category",
    "policy",
    "status",
    "received_at",
    "due_at",
    "answered_at",
    "replied_at",
    "satisfaction",
    "reopened",
)
#: Columns of :func:`workload`.
WORKLOAD_COLUMNS: tuple[str, ...] = (
    "grid_code",
    "community_id",
    "cases",
    "workers",
    "months",
    "cases_per_worker_month",
    "community_median",
    "ratio",
    "far_above",
)
#: Chinese headers of :data:`WORKLOAD_COLUMNS`.
WORKLOAD_LABELS_ZH: Mapping[str, str] = {
    "grid_code": "网格编码",
    "community_id": "社区",
    "cases": "工单量",
    "workers": "网格员人数",
    "months": "月数",
    "cases_per_worker_month": "人均月工单量",
    "community_median": "社区中位数",
    "ratio": "与社区中位数之比",
    "far_above": "明显偏高",
}

_UNIT_COLUMN = {"grid": "grid_code", "community": "community_id", "subdistrict": "subdistrict"}
_NOT_ANSWERS = ("rejected", "merged")
_SATISFIED = ("satisfied", "fairly_satisfied")
_HOUR = 3600.0


# ----------------------------------------------------------------------------- guards


def check_by(by: str) -> str:
    """Return ``by`` if it is one of :data:`STATS_BY`, else raise with the choices.

    Examples
    --------
    >>> check_by("grid")
    'grid'
    >>> check_by("street")
    Traceback (most recent call last):
    ...
    gridmap.errors.InputError: by='street' is not one of grid, community, subdistrict, ...
    """
    if by not in STATS_BY:
        raise InputError(
            f"by={by!r} is not one of {', '.join(STATS_BY)}; e.g. by=grid for each grid's figures"
        )
    return by


def _day_or_time(value: Any, name: str) -> tuple[dt.datetime, bool]:
    """Parse a period bound; return it (Asia/Shanghai) and whether it was a date only."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(), tzinfo=TZ), True
    text = str(value).strip()
    try:
        when = to_local(value)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the caller's input
        raise InputError(
            f"{name}={text!r} is not a date; give YYYY-MM-DD (or an ISO time YYYY-MM-DDTHH:MM)"
        ) from exc
    return when, isinstance(value, str) and len(text) == 10


def stats_period(
    *, month: str | None = None, start: Any = None, end: Any = None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Return the period ``[start, end)`` (aware, Asia/Shanghai) from a month or bounds.

    A date-only ``end`` includes that whole day; a time is exclusive. ``month``
    (``YYYY-MM``) cannot be combined with ``start``/``end``. Missing bounds are None
    (open-ended).

    Examples
    --------
    >>> s, e = stats_period(month="2026-11")
    >>> s.isoformat(), e.isoformat()
    ('2026-11-01T00:00:00+08:00', '2026-12-01T00:00:00+08:00')
    >>> [t.isoformat() for t in stats_period(start="2026-11-01", end="2026-11-30")]
    ['2026-11-01T00:00:00+08:00', '2026-12-01T00:00:00+08:00']
    >>> stats_period(month="2026-13")
    Traceback (most recent call last):
    ...
    gridmap.errors.InputError: month='2026-13' is not a month; give YYYY-MM, e.g. 2026-11
    """
    if month is not None:
        if start is not None or end is not None:
            raise InputError("give either a month or from/to, not both")
        text = str(month).strip()
        try:
            first = dt.datetime.strptime(text, "%Y-%m").replace(tzinfo=TZ)
        except ValueError:
            raise InputError(f"month={text!r} is not a month; give YYYY-MM, e.g. 2026-11") from None
        nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return first, nxt
    lo = hi = None
    if start is not None and str(start).strip():
        lo, _ = _day_or_time(start, "from")
    if end is not None and str(end).strip():
        hi, day_only = _day_or_time(end, "to")
        if day_only:
            hi = hi + dt.timedelta(days=1)
    if lo is not None and hi is not None and hi <= lo:
        raise InputError(
            f"the period is empty: to ({hi.isoformat()}) is not after from ({lo.isoformat()}); "
            "swap them or widen the period"
        )
    return lo, hi


def answer_stages(policies: Policies | None = None) -> dict[str, int]:
    """Stage (:data:`~gridmap.cases.STAGE`) at which each policy counts a case answered.

    Examples
    --------
    >>> answer_stages()
    {'12345': 3, '357': 1}
    """
    pols = policies or default_policies()
    out: dict[str, int] = {}
    for name in pols:
        pol = pols[name]
        stop = next((c.stop for c in pol.clocks if c.name == "answer"), "accepted")
        out[name] = STAGE[stop]
    return out


def late_states() -> tuple[str, ...]:
    """Open states in which a passed resolve deadline makes a case overdue (not replied yet).

    Examples
    --------
    >>> "in_progress" in late_states(), "replied" in late_states()
    (True, False)
    """
    return tuple(s for s in OPEN_STATES if STAGE[s] < STAGE["replied"])


def states_from_stage(stage: int) -> tuple[str, ...]:
    """States at ``stage`` or later that count as an answer (not rejected or merged)."""
    return tuple(s for s, k in STAGE.items() if k >= stage and s not in _NOT_ANSWERS)


# ----------------------------------------------------------------------------- facts


def _times(values: Any) -> pd.Series:
    s = pd.Series(values)
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        s = pd.to_datetime(s.astype(object), utc=True, format="mixed")
    return s.dt.tz_convert(TZ).astype(pd.DatetimeTZDtype("ns", TZ))


def _log_frame(log: Any) -> pd.DataFrame:
    if isinstance(log, pd.DataFrame):
        need = {"case_id", "at", "to_state"}
        if not need <= set(log.columns):
            raise InputError(
                f"log lacks column(s) {sorted(need - set(log.columns))}; give case_id, at, to_state"
            )
        return log[["case_id", "at", "to_state"]]
    rows = [
        (e.case_id, e.at, e.to_state) if isinstance(e, LogEntry) else tuple(e)[:3]
        for e in (log or [])
    ]
    return pd.DataFrame(rows, columns=["case_id", "at", "to_state"])


def _handlers_of(cases: list[Case]) -> pd.DataFrame:
    rows = [(c.id, h.kind, h.unit, h.person) for c in cases for h in c.handlers]
    rows += [(c.id, "department", m.department, None) for c in cases for m in c.summons]
    return pd.DataFrame(rows, columns=["case_id", "kind", "unit", "person"])


def case_facts(
    cases: Iterable[Case] | pd.DataFrame,
    log: Any = None,
    *,
    policies: Policies | None = None,
) -> pd.DataFrame:
    """Return one row per case with :data:`FACT_COLUMNS`, times from the log.

    Parameters
    ----------
    cases : iterable of Case, or DataFrame
        A frame needs ``case_id`` (or ``id``), ``status``, ``received_at`` and
        the placement columns; ``due_at`` (the resolve deadline),
        ``satisfaction``, ``reopened``, ``policy``, ``category`` are optional.
        It may carry ``answered_at`` and ``replied_at`` itself instead of a log.
    log : DataFrame or iterable of LogEntry, optional
        Columns ``case_id``, ``at``, ``to_state``. ``answered_at`` is the first
        entry reaching the stage of the policy's answer clock stop;
        ``replied_at`` the last entry to ``replied``.
    policies : Policies, optional

    Returns
    -------
    pandas.DataFrame
        :data:`FACT_COLUMNS`; ``attrs["handlers"]`` holds the handlers of Case
        records (``case_id``, ``kind``, ``unit``, ``person``).
    """
    handlers = None
    if isinstance(cases, pd.DataFrame):
        df = cases.copy()
        if "case_id" not in df.columns and "id" in df.columns:
            df = df.rename(columns={"id": "case_id"})
    else:
        recs = list(cases)
        handlers = _handlers_of(recs)
        df = pd.DataFrame(
            {
                "case_id": [c.id for c in recs],
                "grid_code": [c.grid_code for c in recs],
                "community_id": [c.community_id for c in recs],
                "subdistrict": [c.subdistrict for c in recs],
                "category": [c.category for c in recs],
                "policy": [c.policy for c in recs],
                "status": [c.status for c in recs],
                "received_at": [c.received_at for c in recs],
                "due_at": [
                    c.deadlines["resolve"].due if "resolve" in c.deadlines else None for c in recs
                ],
                "satisfaction": [c.satisfaction for c in recs],
                "reopened": [c.reopened for c in recs],
            }
        )
    missing = [c for c in ("case_id", "status", "received_at") if c not in df.columns]
    if missing:
        raise InputError(f"cases lack column(s) {missing}; see gridmap.cases.stats.FACT_COLUMNS")
    for col in FACT_COLUMNS:
        if col not in df.columns:
            df[col] = 0 if col == "reopened" else None
    unknown = sorted(set(df["status"].astype(str)) - set(STAGE))
    if unknown:
        raise InputError(f"unknown case status(es) {unknown}; states: {list(STAGE)}")
    df["case_id"] = df["case_id"].astype(str)
    for col in ("received_at", "due_at", "answered_at", "replied_at"):
        df[col] = _times(df[col])
    if df["received_at"].isna().any():
        raise InputError("every case needs a received_at time")
    df["reopened"] = pd.to_numeric(df["reopened"]).fillna(0).astype(np.int64)
    if log is not None:
        lg = _log_frame(log)
        lg = pd.DataFrame(
            {
                "case_id": lg["case_id"].astype(str).to_numpy(),
                "at": _times(lg["at"]).to_numpy(),
                "to_state": lg["to_state"].astype(str).to_numpy(),
            }
        )
        replied = lg[lg["to_state"] == "replied"].groupby("case_id")["at"].max()
        df["replied_at"] = _times(df["case_id"].map(replied))
        stages = answer_stages(policies)
        want = df["policy"].map(stages).fillna(STAGE["accepted"]).astype(int)
        lg["stage"] = lg["to_state"].map(STAGE)
        lg = lg[~lg["to_state"].isin(_NOT_ANSWERS)]
        need = lg["case_id"].map(pd.Series(want.to_numpy(), index=df["case_id"].to_numpy()))
        first = lg[lg["stage"] >= need].groupby("case_id")["at"].min()
        df["answered_at"] = _times(df["case_id"].map(first))
    out = df[list(FACT_COLUMNS)].reset_index(drop=True)
    if handlers is not None:
        out.attrs["handlers"] = handlers
    return out


# ----------------------------------------------------------------------------- figures


def _filter(facts: pd.DataFrame, start: Any, end: Any, category: str | None) -> pd.DataFrame:
    keep = np.ones(len(facts), dtype=bool)
    if start is not None:
        keep &= (facts["received_at"] >= pd.Timestamp(to_local(start))).to_numpy()
    if end is not None:
        keep &= (facts["received_at"] < pd.Timestamp(to_local(end))).to_numpy()
    if category is not None:
        keep &= (facts["category"] == category).to_numpy()
    return facts[keep]


def _units(facts: pd.DataFrame, by: str, handlers: pd.DataFrame | None) -> pd.DataFrame:
    """Facts with a ``unit`` column; one row per (case, unit) for departments and staff."""
    if by in _UNIT_COLUMN:
        out = facts.copy()
        out["unit"] = facts[_UNIT_COLUMN[by]].astype(object)
        return out
    if handlers is None:
        raise InputError(
            f"by={by!r} needs the cases' handlers (case_id, kind, unit, person): pass "
            "handlers=... or Case records"
        )
    h = handlers.copy()
    h["case_id"] = h["case_id"].astype(str)
    if by == "department":
        pairs = h.loc[h["kind"] == "department", ["case_id", "unit"]]
    else:
        pairs = h.loc[h["person"].notna(), ["case_id", "person"]].rename(columns={"person": "unit"})
    pairs = pairs.drop_duplicates()
    return facts.merge(pairs, on="case_id", how="inner")


def stats_counts(frame: pd.DataFrame, *, now: Any) -> pd.DataFrame:
    """Count :data:`COUNT_COLUMNS` per ``unit`` of a facts frame (pandas; the store does it in SQL).

    Parameters
    ----------
    frame : pandas.DataFrame
        :data:`FACT_COLUMNS` plus ``unit``.
    now : datetime
        The time "overdue" and "due" are judged at.
    """
    now_ts = pd.Timestamp(to_local(now))
    status = frame["status"].astype(str)
    due_at = frame["due_at"]
    finished = status.isin(FINISHED_STATES)
    gone = status.isin(_NOT_ANSWERS)
    has_due = due_at.notna()
    passed = has_due & (due_at < now_ts)
    flags = pd.DataFrame(
        {
            "unit": frame["unit"].astype(object).to_numpy(),
            "received": 1,
            "open": status.isin(OPEN_STATES).to_numpy(),
            "overdue": (status.isin(late_states()) & passed).to_numpy(),
            "due": (has_due & ~gone & (finished | passed)).to_numpy(),
            "on_time": (
                finished & has_due & frame["replied_at"].notna() & (frame["replied_at"] <= due_at)
            ).to_numpy(),
            "rated": frame["satisfaction"].notna().to_numpy(),
            "satisfied": frame["satisfaction"].isin(_SATISFIED).to_numpy(),
            "replied": frame["replied_at"].notna().to_numpy(),
            "reopened": (frame["reopened"] > 0).to_numpy(),
        }
    )
    out = flags.groupby("unit", dropna=False, sort=False)[list(COUNT_COLUMNS)].sum()
    return out.astype(np.int64).reset_index()


def _local_days(values: pd.Series) -> np.ndarray:
    return values.dt.tz_localize(None).dt.normalize().to_numpy().astype("datetime64[D]")


class _DayTable:
    """Working-day flags of a span of days, for vectorised counting (built once per call).

    ``count(s, e)`` is the number of working days after day ``s`` up to day ``e``
    (as :meth:`WorkCalendar.working_days_between` counts them); ``work(d)`` whether
    ``d`` is one. One calendar call over the span instead of one per case.
    """

    def __init__(self, cal: WorkCalendar, days: np.ndarray) -> None:
        one = np.timedelta64(1, "D")
        self.origin = days.min() - one
        span = np.arange(self.origin, days.max() + one, dtype="datetime64[D]")
        flags: Any = cal.working_days_between(span[:-1], span[1:]) if len(span) > 1 else []
        self.cum = np.concatenate([[0], np.cumsum(np.asarray(flags, dtype=np.int64))])

    def _i(self, days: np.ndarray) -> np.ndarray:
        return (days - self.origin).astype(np.int64)

    def count(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        return self.cum[self._i(end)] - self.cum[self._i(start)]

    def work(self, days: np.ndarray) -> np.ndarray:
        i = self._i(days)
        return (self.cum[i] - self.cum[i - 1]) == 1


def _working_hours(table: _DayTable, start: pd.Series, end: pd.Series) -> np.ndarray:
    """Vectorised ``working_time_between(start, end).hours`` (hours on working days)."""
    if len(start) == 0:
        return np.zeros(0)
    sd = _local_days(start)
    ed = _local_days(end)
    one = np.timedelta64(1, "D")
    work_s = table.work(sd)
    work_e = table.work(ed)
    s_ns = start.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype(np.int64)
    e_ns = end.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype(np.int64)
    midnight = pd.DatetimeIndex(sd.astype("datetime64[ns]")).tz_localize(TZ).asi8
    midnight_e = pd.DatetimeIndex(ed.astype("datetime64[ns]")).tz_localize(TZ).asi8
    same = sd == ed
    first = np.where(work_s, (midnight + 86400 * 10**9 - s_ns) / 1e9 / _HOUR, 0.0)
    last = np.where(work_e, (e_ns - midnight_e) / 1e9 / _HOUR, 0.0)
    middle = np.where(same, 0, table.count(sd, np.where(same, ed, ed - one)))
    hours = np.where(same, np.where(work_s, (e_ns - s_ns) / 1e9 / _HOUR, 0.0), 0.0)
    hours = np.where(same, hours, first + last + 24.0 * middle)
    return np.round(hours.astype(float), 6)


def stats_durations(frame: pd.DataFrame, *, calendar: WorkCalendar | None = None) -> pd.DataFrame:
    """Answer and resolve times per ``unit``: count, median and p90.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``unit``, ``received_at``, ``answered_at`` and ``replied_at``
        (the reply of *finished* cases only; NaT otherwise).
    calendar : WorkCalendar, optional

    Returns
    -------
    pandas.DataFrame
        ``unit``, ``answered``, ``answer_hours_median``, ``answer_hours_p90``,
        ``resolved``, ``resolve_days_median``, ``resolve_days_p90``.

    Examples
    --------
    >>> f = pd.DataFrame({"unit": ["G1", "G1"],
    ...     "received_at": pd.to_datetime(["2026-09-18 10:00", "2026-09-18 10:00"]).tz_localize(TZ),
    ...     "answered_at": pd.to_datetime(["2026-09-18 12:00", "2026-09-21 10:00"]).tz_localize(TZ),
    ...     "replied_at": pd.to_datetime(["2026-09-29 09:00", None]).tz_localize(TZ)})
    >>> row = stats_durations(f).iloc[0]
    >>> int(row["answered"]), float(row["answer_hours_median"]), float(row["answer_hours_p90"])
    (2, 25.0, 43.4)
    >>> int(row["resolved"]), float(row["resolve_days_median"])
    (1, 7.0)
    """
    cal = calendar or default_calendar()
    cols = ["unit", "answered", "answer_hours_median", "answer_hours_p90"]
    cols += ["resolved", "resolve_days_median", "resolve_days_p90"]
    units = frame["unit"].astype(object)
    rec = _times(frame["received_at"])
    ans = _times(frame["answered_at"])
    rep = _times(frame["replied_at"])
    a = ans.notna().to_numpy()
    r = rep.notna().to_numpy()
    parts = []
    if a.any() or r.any():
        days_seen = np.concatenate(
            [_local_days(rec[a | r]), _local_days(ans[a]), _local_days(rep[r])]
        )
        table = _DayTable(cal, days_seen)
    if a.any():
        hours = _working_hours(table, rec[a].reset_index(drop=True), ans[a].reset_index(drop=True))
        g = pd.Series(hours).groupby(units[a].to_numpy(), dropna=False, sort=False)
        parts.append(
            pd.DataFrame(
                {
                    "answered": g.size(),
                    "answer_hours_median": g.median(),
                    "answer_hours_p90": g.quantile(0.9),
                }
            )
        )
    if r.any():
        days = table.count(_local_days(rec[r]), _local_days(rep[r]))
        g = pd.Series(days.astype(float)).groupby(units[r].to_numpy(), dropna=False, sort=False)
        parts.append(
            pd.DataFrame(
                {
                    "resolved": g.size(),
                    "resolve_days_median": g.median(),
                    "resolve_days_p90": g.quantile(0.9),
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {c: pd.Series([], dtype=object if c == "unit" else float) for c in cols}
        )
    out = pd.concat(parts, axis=1)
    out.index.name = "unit"
    out = out.reset_index()
    for c in cols:
        if c not in out.columns:
            out[c] = np.nan
    return out[cols]


def _households_by(households: Any, by: str) -> pd.Series | None:
    if households is None:
        return None
    if isinstance(households, pd.DataFrame):
        col = _UNIT_COLUMN.get(by)
        if col is None or col not in households.columns or "households" not in households:
            return None
        return households.groupby(col)["households"].sum().astype(float)
    return pd.Series(dict(households), dtype=float)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    n = num.astype(float)
    d = den.astype(float)
    return (n / d.where(d > 0)).astype(float)


def stats_table(
    counts: pd.DataFrame,
    durations: pd.DataFrame,
    *,
    households: Any = None,
    by: str = "grid",
) -> pd.DataFrame:
    """Join counts and durations per unit, add the rates; :data:`STATS_COLUMNS`, sorted by unit.

    Parameters
    ----------
    counts : pandas.DataFrame
        ``unit`` and :data:`COUNT_COLUMNS` (from :func:`stats_counts` or SQL).
    durations : pandas.DataFrame
        From :func:`stats_durations`.
    households : mapping, Series or DataFrame, optional
        Households per unit (``{unit: households}``), or a grids frame
        (``grid_code``, ``community_id``[, ``subdistrict``], ``households``)
        summed to the ``by`` level.
    by : str
    """
    c = counts.copy()
    c["unit"] = c["unit"].astype(object).where(c["unit"].notna(), None)
    d = durations.copy()
    d["unit"] = d["unit"].astype(object).where(d["unit"].notna(), None)
    key_c = c["unit"].map(lambda u: "\x00" if u is None else str(u))
    key_d = d["unit"].map(lambda u: "\x00" if u is None else str(u))
    d = d.drop(columns="unit").set_axis(key_d.to_numpy(), axis=0)
    out = c.set_axis(key_c.to_numpy(), axis=0).join(d, how="left")
    for col in COUNT_COLUMNS:
        out[col] = out[col].fillna(0).astype(np.int64)
    for col in ("answered", "resolved"):
        out[col] = out[col].fillna(0).astype(np.int64)
    out["on_time_rate"] = _ratio(out["on_time"], out["due"])
    out["satisfaction_rate"] = _ratio(out["satisfied"], out["rated"])
    out["reopen_rate"] = _ratio(out["reopened"], out["replied"])
    hh = _households_by(households, by)
    if hh is not None:
        out["households"] = out["unit"].map(lambda u: np.nan if u is None else hh.get(u, np.nan))
    else:
        out["households"] = np.nan
    out["households"] = out["households"].astype(float)
    out["per_1000_households"] = _ratio(out["received"] * 1000, out["households"])
    out = out.sort_values("unit", key=lambda s: s.map(lambda u: (u is None, str(u))))
    out = out[list(STATS_COLUMNS)].reset_index(drop=True)
    out.attrs["by"] = by
    return out


def case_stats(
    cases: Iterable[Case] | pd.DataFrame,
    log: Any = None,
    *,
    by: str = "grid",
    start: Any = None,
    end: Any = None,
    month: str | None = None,
    category: str | None = None,
    now: Any = None,
    calendar: WorkCalendar | None = None,
    policies: Policies | None = None,
    households: Any = None,
    handlers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Count the performance figures per unit of the cases received in a period.

    Returns a frame with :data:`STATS_COLUMNS` (see the module docstring), one row
    per unit, sorted by unit.

    Parameters
    ----------
    cases : iterable of Case, or DataFrame
        See :func:`case_facts`.
    log : DataFrame or iterable of LogEntry, optional
        The cases' log (``case_id``, ``at``, ``to_state``); without it the frame
        must carry ``answered_at`` and ``replied_at``.
    by : {"grid", "community", "subdistrict", "department", "staff"}
    start, end : date or datetime, optional
        The period ``[start, end)`` of reception (a date-only ``end`` string
        includes that day); or ``month="2026-11"``.
    category : str, optional
        Only this category code.
    now : datetime, optional
        When "overdue" is judged (default: the current time).
    calendar, policies : optional
        Default: the shipped ones.
    households : mapping, Series or DataFrame, optional
        For ``per_1000_households`` (see :func:`stats_table`).
    handlers : DataFrame, optional
        ``case_id``, ``kind``, ``unit``, ``person`` for ``by="department"`` or
        ``"staff"`` (taken from Case records when those are given).

    Examples
    --------
    >>> from gridmap.cases import Placement, apply, intake, Actor
    >>> d = Actor("d", "dispatcher")
    >>> c = intake({"source": "hotline", "category": "road", "description": "坑",
    ...             "address": "幸福路", "received_at": "2026-11-02 10:00"},
    ...            case_id="1", locate=Placement("G1", "C1", "S1"))
    >>> log = []
    >>> w = Actor("w", "grid_worker", "G1")
    >>> for action, who, kw in [("accept", d, {}), ("dispatch", d, {"handler": ("grid", "G1")}),
    ...                         ("start", w, {}), ("reply", w, {"note": "补好了"})]:
    ...     c, e = apply(c, action, who, at="2026-11-04 09:00", **kw)
    ...     log.append(e)
    >>> t = case_stats([c], log, month="2026-11", now="2026-12-01")
    >>> t[["unit", "received", "due", "on_time", "on_time_rate", "resolve_days_median"]
    ...   ].values.tolist()
    [['G1', 1, 1, 1, 1.0, 2.0]]
    """
    check_by(by)
    if month is not None:
        start, end = stats_period(month=month)
    elif isinstance(start, str) or isinstance(end, str):
        start, end = stats_period(start=start, end=end)
    when = to_local(now) if now is not None else dt.datetime.now(TZ)
    facts = case_facts(cases, log, policies=policies)
    hand = handlers if handlers is not None else facts.attrs.get("handlers")
    facts = _filter(facts, start, end, category)
    frame = _units(facts, by, hand)
    counts = stats_counts(frame, now=when)
    durations = stats_durations(
        pd.DataFrame(
            {
                "unit": frame["unit"].to_numpy(),
                "received_at": frame["received_at"].to_numpy(),
                "answered_at": frame["answered_at"],
                "replied_at": frame["replied_at"].where(
                    frame["status"].isin(FINISHED_STATES).to_numpy()
                ),
            }
        ),
        calendar=calendar,
    )
    out = stats_table(counts, durations, households=households, by=by)
    out.attrs.update(
        {
            "by": by,
            "start": None if start is None else to_local(start).isoformat(),
            "end": None if end is None else to_local(end).isoformat(),
            "now": when.isoformat(),
            "category": category,
        }
    )
    return out


# ----------------------------------------------------------------------------- workload


def month_count(start: Any, end: Any) -> float:
    """Calendar months in ``[start, end)``, partial months by their share of days.

    Examples
    --------
    >>> month_count("2026-11-01", "2026-12-01"), month_count("2026-01-01", "2027-01-01")
    (1.0, 12.0)
    >>> month_count("2026-11-16", "2026-12-01")
    0.5
    """
    lo = pd.Timestamp(to_local(start)).tz_localize(None)
    hi = pd.Timestamp(to_local(end)).tz_localize(None)
    if hi <= lo:
        raise InputError("the workload period is empty; give a month or from < to")
    total = 0.0
    cur = lo
    while cur < hi:
        first = cur.replace(day=1, hour=0, minute=0, second=0, microsecond=0, nanosecond=0)
        nxt = first + pd.offsets.MonthBegin(1)
        seg_end = min(nxt, hi)
        total += (seg_end - cur) / (nxt - first)
        cur = seg_end
    return round(total, 9)


def workload_table(
    counts: pd.DataFrame,
    workers: Mapping[str, int] | pd.Series,
    *,
    months: float,
    factor: float = 1.5,
) -> pd.DataFrame:
    """Cases per worker per month by grid, with the community's median (:data:`WORKLOAD_COLUMNS`).

    Parameters
    ----------
    counts : pandas.DataFrame
        ``grid_code``, ``community_id``, ``cases`` — every grid to report,
        those with no case with 0.
    workers : mapping or Series
        Staffed posts per grid code (chief and workers); a grid without any
        has NaN load and is left out of the median.
    months : float
        Length of the period in months (:func:`month_count`).
    factor : float, default 1.5
        A grid is ``far_above`` when its load is more than ``factor`` times
        the median load of its community's grids.

    Examples
    --------
    >>> c = pd.DataFrame({"grid_code": ["G1", "G2", "G3"], "community_id": ["C"] * 3,
    ...                   "cases": [30, 30, 90]})
    >>> t = workload_table(c, {"G1": 3, "G2": 3, "G3": 3}, months=1.0)
    >>> t[["grid_code", "cases_per_worker_month", "ratio", "far_above"]].values.tolist()
    [['G1', 10.0, 1.0, False], ['G2', 10.0, 1.0, False], ['G3', 30.0, 3.0, True]]
    """
    if not (isinstance(factor, int | float) and math.isfinite(factor) and factor > 0):
        raise InputError(f"factor must be a positive number (e.g. 1.5), got {factor!r}")
    if months <= 0:
        raise InputError(f"months must be positive, got {months}")
    out = counts[["grid_code", "community_id", "cases"]].copy()
    out["grid_code"] = out["grid_code"].astype(str)
    w = pd.Series(dict(workers) if not isinstance(workers, pd.Series) else workers, dtype=float)
    out["workers"] = out["grid_code"].map(w).fillna(0).astype(np.int64)
    out["cases"] = out["cases"].fillna(0).astype(np.int64)
    out["months"] = float(months)
    load = out["cases"] / out["workers"].where(out["workers"] > 0) / float(months)
    out["cases_per_worker_month"] = load.astype(float).round(6)
    out["community_median"] = (
        out.groupby("community_id", dropna=False)["cases_per_worker_month"]
        .transform("median")
        .astype(float)
    )
    out["ratio"] = _ratio(out["cases_per_worker_month"], out["community_median"]).round(6)
    out["far_above"] = (out["ratio"] > factor).fillna(False).astype(bool)
    out = out.sort_values(["community_id", "grid_code"]).reset_index(drop=True)
    out.attrs.update({"factor": float(factor), "months": float(months)})
    return out[list(WORKLOAD_COLUMNS)]


def workload(
    cases: Iterable[Case] | pd.DataFrame,
    staff: pd.DataFrame | Mapping[str, int],
    *,
    grids: pd.DataFrame | None = None,
    start: Any = None,
    end: Any = None,
    month: str | None = None,
    category: str | None = None,
    factor: float = 1.5,
) -> pd.DataFrame:
    """Report the workload: cases per worker per month by grid, grids far above named.

    Parameters
    ----------
    cases : iterable of Case, or DataFrame
        With ``grid_code``, ``community_id`` and ``received_at``.
    staff : DataFrame or mapping
        Posts (one row per staffed post with ``grid_code``; rows without a
        ``staff_id`` — vacant posts — are not counted), or ``{grid: workers}``.
    grids : DataFrame, optional
        ``grid_code`` and ``community_id`` of every grid to report (e.g.
        ``plan.grids``); default: the grids that have cases.
    start, end, month : optional
        The period (required: the load is per month).
    category : str, optional
    factor : float, default 1.5
        "Far above" means more than ``factor`` × the community's median load.

    Returns
    -------
    pandas.DataFrame
        :data:`WORKLOAD_COLUMNS`; ``far_above`` names the grids.
    """
    lo, hi = (
        stats_period(month=month)
        if month is not None
        else (
            stats_period(start=start, end=end)
            if isinstance(start, str) or isinstance(end, str)
            else (start, end)
        )
    )
    if lo is None or hi is None:
        raise InputError("the workload needs a period: give month='2026-11' or start and end")
    facts = _filter(case_facts(cases), lo, hi, category)
    counts = (
        facts.dropna(subset=["grid_code"])
        .groupby(["grid_code", "community_id"], dropna=False)
        .size()
        .rename("cases")
        .reset_index()
    )
    if grids is not None:
        g = pd.DataFrame(
            {
                "grid_code": grids["grid_code"].astype(str).to_numpy(),
                "community_id": grids["community_id"].to_numpy(),
            }
        )
        n = counts.set_index("grid_code")["cases"]
        g["cases"] = g["grid_code"].map(n).fillna(0).astype(np.int64)
        extra = counts[~counts["grid_code"].isin(g["grid_code"])]
        counts = pd.concat([g, extra], ignore_index=True)
    if isinstance(staff, pd.DataFrame):
        posts = staff
        if "staff_id" in posts.columns:
            posts = posts[posts["staff_id"].notna()]
        workers: Any = posts.groupby(posts["grid_code"].astype(str)).size()
    else:
        workers = staff
    return workload_table(counts, workers, months=month_count(lo, hi), factor=factor)


def label_columns(frame: pd.DataFrame, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Return a copy with Chinese headers (for CSV/Excel: ``to_csv(..., encoding="utf-8-sig")``).

    Examples
    --------
    >>> label_columns(pd.DataFrame({"unit": ["G1"], "on_time_rate": [0.5]})).columns.tolist()
    ['单位', '按时办结率']
    """
    book = {**STATS_LABELS_ZH, **WORKLOAD_LABELS_ZH, **(labels or {})}
    return frame.rename(columns={c: book.get(c, c) for c in frame.columns})
