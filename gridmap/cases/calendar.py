"""Working-day calendar of mainland China, and deadlines counted on it.

Case deadlines (事件工单时限) are counted in working days, which follow the State
Council's yearly holiday notice: public holidays, and make-up workdays (调休) on
weekends. :class:`WorkCalendar` holds that table.

Where the data come from
------------------------
* **Official years** come from the pinned ``chinesecalendar`` package (which
  transcribes each notice) or from a CSV of a notice loaded with
  :meth:`WorkCalendar.with_year` / :func:`load_year_csv`.
* A year no official table knows (e.g. 2027 before the notice is out) falls back
  to rule-based holidays from the ``holidays`` package (weekends off, no make-up
  days). Every day of such a year is **provisional**: deadlines that count one
  carry ``provisional=True`` and should be recomputed when the notice is loaded.
  An unknown year never raises.

Deadline rules
--------------
* ``N`` working days end at 23:59:59 Asia/Shanghai of the ``N``-th working day
  counted from the day *after* reception; ``N = 0`` means the end of the
  reception day itself ("same day").
* An hour limit is wall-clock hours from reception.
* Naive datetimes are read as Asia/Shanghai local time.

The calendar is immutable: :meth:`WorkCalendar.with_year` returns a new one. It
keeps a dense day table (built lazily, replaced atomically) so that arrays of
deadlines are computed with ``numpy.searchsorted`` rather than a loop.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from gridmap.errors import CalendarError

__all__ = [
    "TZ",
    "CALENDAR_COLUMNS",
    "CalendarDay",
    "Deadline",
    "WorkingTime",
    "WorkCalendar",
    "default_calendar",
    "load_year_csv",
    "to_local",
]

#: Time zone every deadline is expressed in.
TZ = ZoneInfo("Asia/Shanghai")

#: Columns of :meth:`WorkCalendar.to_frame` (and of the table the DB layer stores).
CALENDAR_COLUMNS: tuple[str, ...] = ("date", "is_workday", "name", "source")

_PACKAGE = "chinesecalendar"
_NOTICE = "notice"
_RULE = "holidays"
_END_OF_DAY = dt.timedelta(hours=23, minutes=59, seconds=59)
_MAX_YEARS = 300  # how far a table may grow while counting working days

_HEADER_ALIASES: dict[str, str] = {
    "date": "date",
    "日期": "date",
    "day": "date",
    "kind": "kind",
    "type": "kind",
    "类型": "kind",
    "is_workday": "is_workday",
    "workday": "is_workday",
    "是否上班": "is_workday",
    "name": "name",
    "名称": "name",
    "节日": "name",
    "holiday": "name",
    "source": "source",
    "来源": "source",
}
_KIND_VALUES: dict[str, bool] = {
    "holiday": False,
    "off": False,
    "休": False,
    "假": False,
    "假日": False,
    "休息": False,
    "放假": False,
    "节假日": False,
    "workday": True,
    "work": True,
    "班": True,
    "上班": True,
    "补班": True,
    "调休上班": True,
    "工作日": True,
}
_BOOL_VALUES: dict[str, bool] = {
    "true": True,
    "1": True,
    "yes": True,
    "是": True,
    "false": False,
    "0": False,
    "no": False,
    "否": False,
}


@dataclass(frozen=True)
class CalendarDay:
    """One day of a calendar table that differs from (or confirms) the weekend rule.

    Attributes
    ----------
    date : datetime.date
    is_workday : bool
        False for a holiday, True for a (make-up) workday.
    name : str
        Holiday name ("National Day", "国庆节" …), may be empty.
    source : str
        ``"chinesecalendar"``, ``"notice"`` (a loaded State Council notice) or
        ``"holidays"`` (rule-based fallback, provisional).
    """

    date: dt.date
    is_workday: bool
    name: str = ""
    source: str = _NOTICE


@dataclass(frozen=True)
class Deadline:
    """An absolute deadline and whether it rests on a provisional calendar year.

    Attributes
    ----------
    due : datetime.datetime
        Time-zone aware (Asia/Shanghai).
    provisional : bool
        True if any day counted, or the due day, lies in a provisional year.
    """

    due: dt.datetime
    provisional: bool = False


class WorkingTime(NamedTuple):
    """Working time elapsed between two instants (see :meth:`WorkCalendar.working_time_between`)."""

    days: int
    hours: float
    provisional: bool


def to_local(value: Any) -> dt.datetime:
    """Return ``value`` as an aware Asia/Shanghai datetime (naive values are read as local).

    Examples
    --------
    >>> to_local("2026-09-18 10:30")
    datetime.datetime(2026, 9, 18, 10, 30, tzinfo=zoneinfo.ZoneInfo(key='Asia/Shanghai'))
    >>> to_local(dt.datetime(2026, 9, 18, 2, 30, tzinfo=dt.timezone.utc)).hour
    10
    """
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    elif isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise CalendarError(
                f"cannot read {value!r} as a date/time; use ISO format such as "
                "'2026-09-18 10:30' or '2026-09-18T10:30:00+08:00'"
            ) from exc
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise CalendarError(f"expected a datetime, got {type(value).__name__} {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=TZ)
    return value.astimezone(TZ)


def _as_date(value: Any, where: str = "") -> dt.date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return to_local(value).date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    text = str(value).strip().replace("/", "-").replace(".", "-")
    for fmt in ("%Y-%m-%d", "%Y年%m月%d日", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise CalendarError(
        f"{where}cannot read date {value!r}; write dates as YYYY-MM-DD (e.g. 2027-01-01)"
    )


def _epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _rule_holidays(year: int) -> dict[dt.date, str]:
    """Rule-based holidays of ``year`` from the ``holidays`` package (empty if it fails)."""
    import holidays

    try:
        table = holidays.China(years=year)
        return {d: str(n) for d, n in table.items() if d.year == year}
    except Exception:  # noqa: BLE001 - an unknown year must never crash a deadline
        return {}


class _Table(NamedTuple):
    origin: int  # epoch day of the first row
    first_year: int
    last_year: int
    work: np.ndarray  # bool per day
    cum: np.ndarray  # int64 cumulative working days, inclusive
    cprov: np.ndarray  # int64 cumulative provisional days, inclusive


class WorkCalendar:
    """The mainland-China working-day calendar.

    Parameters
    ----------
    rows : iterable or pandas.DataFrame, optional
        Explicit days: :class:`CalendarDay` objects, ``(date, is_workday, name,
        source)`` tuples, mappings with those keys, or a DataFrame with the
        columns :data:`CALENDAR_COLUMNS` (as :meth:`to_frame` writes). Days not
        listed follow the rule Monday–Friday work, weekend off.
    official_years : iterable of int or mapping of year to source, optional
        Years whose rows are complete and official. By default every year that
        has a row whose source is not ``"holidays"``.
    fallback : bool, default True
        Use the ``holidays`` package for years that are not official. With
        False such years are weekends-only (still provisional).

    Examples
    --------
    >>> cal = WorkCalendar.from_package()
    >>> cal.is_workday(dt.date(2026, 9, 20))  # Sunday, make-up workday
    True
    >>> cal.add_working_days(dt.date(2026, 9, 18), 7)
    (datetime.date(2026, 9, 29), False)
    >>> cal.add_working_days(dt.date(2026, 12, 28), 5)
    (datetime.date(2027, 1, 5), True)
    """

    def __init__(
        self,
        rows: Iterable[Any] | pd.DataFrame = (),
        *,
        official_years: Iterable[int] | Mapping[int, str] | None = None,
        fallback: bool = True,
    ) -> None:
        days: dict[dt.date, CalendarDay] = {}
        for i, row in enumerate(_iter_rows(rows)):
            day = _coerce_row(row, where=f"calendar row {i}: ")
            days[day.date] = day
        self._days = days
        if official_years is None:
            official: dict[int, str] = {}
            for d in days.values():
                if d.source != _RULE:
                    official.setdefault(d.date.year, d.source)
        elif isinstance(official_years, Mapping):
            official = {int(y): str(s) for y, s in official_years.items()}
        else:
            official = {}
            for y in official_years:
                srcs = {d.source for d in days.values() if d.date.year == int(y)}
                official[int(y)] = sorted(srcs)[0] if srcs else _NOTICE
        # rule rows of non-official years are not kept: they are recomputed
        self._days = {k: v for k, v in days.items() if k.year in official}
        self._official = official
        self._fallback = fallback
        self._table: _Table | None = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_package(cls, *, fallback: bool = True) -> WorkCalendar:
        """Build the calendar from the pinned ``chinesecalendar`` package.

        Examples
        --------
        >>> cal = WorkCalendar.from_package()
        >>> int(cal.status().loc[2026, "official"]), str(cal.status().loc[2026, "source"])
        (1, 'chinesecalendar')
        """
        import chinese_calendar.constants as cc

        rows = [CalendarDay(d, False, str(n), _PACKAGE) for d, n in cc.holidays.items()]
        rows += [CalendarDay(d, True, str(n), _PACKAGE) for d, n in cc.workdays.items()]
        years = {d.date.year for d in rows}
        return cls(rows, official_years={y: _PACKAGE for y in years}, fallback=fallback)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, fallback: bool = True) -> WorkCalendar:
        """Build a calendar from a table as :meth:`to_frame` writes it (e.g. read from the DB).

        Examples
        --------
        >>> cal = WorkCalendar.from_package()
        >>> again = WorkCalendar.from_frame(cal.to_frame())
        >>> again.add_working_days(dt.date(2026, 2, 13), 3)
        (datetime.date(2026, 2, 25), False)
        """
        missing = [c for c in ("date", "is_workday") if c not in frame.columns]
        if missing:
            raise CalendarError(
                f"calendar table lacks column(s) {missing}; expected {list(CALENDAR_COLUMNS)}"
            )
        return cls(frame, fallback=fallback)

    def to_frame(self, *, include_provisional: bool = False) -> pd.DataFrame:
        """Return the explicit days as a DataFrame with :data:`CALENDAR_COLUMNS`.

        Parameters
        ----------
        include_provisional : bool, default False
            Also list the rule-based holidays of provisional years already used
            (source ``"holidays"``).

        Examples
        --------
        >>> frame = WorkCalendar.from_package().to_frame()
        >>> frame.columns.tolist()
        ['date', 'is_workday', 'name', 'source']
        >>> frame[frame["date"] == dt.date(2026, 9, 20)].iloc[0].astype(str).tolist()
        ['2026-09-20', 'True', 'National Day', 'chinesecalendar']
        """
        rows = list(self._days.values())
        if include_provisional and self._table is not None:
            for year in range(self._table.first_year, self._table.last_year + 1):
                if year not in self._official and self._fallback:
                    rows += [
                        CalendarDay(d, False, n, _RULE) for d, n in _rule_holidays(year).items()
                    ]
        rows.sort(key=lambda r: r.date)
        return pd.DataFrame(
            {
                "date": [r.date for r in rows],
                "is_workday": np.array([r.is_workday for r in rows], dtype=bool),
                "name": [r.name for r in rows],
                "source": [r.source for r in rows],
            },
            columns=list(CALENDAR_COLUMNS),
        )

    def with_year(
        self,
        rows: Iterable[Any] | pd.DataFrame | str | Path,
        *,
        year: int | None = None,
        source: str = _NOTICE,
    ) -> WorkCalendar:
        """Return a new calendar in which ``year`` is official, from a notice table.

        Parameters
        ----------
        rows : DataFrame, iterable of rows, or path of a CSV file
            The year's holidays and make-up workdays (see :func:`load_year_csv`).
        year : int, optional
            The year; by default the (single) year of the rows.
        source : str, default "notice"

        Raises
        ------
        CalendarError
            If the rows are empty or span another year than ``year``.

        Examples
        --------
        >>> cal = WorkCalendar.from_package()
        >>> cal.is_provisional(dt.date(2027, 3, 1))
        True
        >>> notice = pd.DataFrame({"日期": ["2027-01-01", "2027-02-20"], "类型": ["休", "班"]})
        >>> cal2 = cal.with_year(notice)
        >>> cal2.is_provisional(dt.date(2027, 3, 1)), cal2.is_workday(dt.date(2027, 2, 20))
        (False, True)
        """
        if isinstance(rows, str | Path):
            frame = load_year_csv(rows, source=source)
        elif isinstance(rows, pd.DataFrame):
            frame = _normalise_frame(rows, source=source)
        else:
            frame = pd.DataFrame([_coerce_row(r, where=f"row {i}: ") for i, r in enumerate(rows)])
        if frame.empty:
            raise CalendarError(
                "the notice table has no rows; list the year's holidays and workdays"
            )
        years = sorted({d.year for d in frame["date"]})
        target = year if year is not None else years[0]
        if years != [target]:
            bad = next(i for i, d in enumerate(frame["date"]) if d.year != target)
            raise CalendarError(
                f"row {bad} ({frame['date'].iloc[bad]}) is not in {target}; a notice table holds "
                f"one year (found {years})"
            )
        kept = [d for d in self._days.values() if d.date.year != target]
        new = [
            CalendarDay(_as_date(d), bool(w), str(nm), source)
            for d, w, nm in zip(frame["date"], frame["is_workday"], frame["name"], strict=True)
        ]
        official = dict(self._official)
        official[target] = source
        return WorkCalendar(kept + new, official_years=official, fallback=self._fallback)

    # ------------------------------------------------------------------ queries
    def status(self, years: Iterable[int] | None = None) -> pd.DataFrame:
        """Which years are official and where their data come from.

        Parameters
        ----------
        years : iterable of int, optional
            Years to report; by default every official year and the year after
            the last one.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``year`` with columns ``official`` (bool) and ``source``
            (``"chinesecalendar"``, ``"notice"`` or ``"holidays"``/``"weekends"``
            for provisional years).

        Examples
        --------
        >>> st = WorkCalendar.from_package().status([2026, 2027])
        >>> st["official"].to_dict(), st["source"].to_dict()
        ({2026: True, 2027: False}, {2026: 'chinesecalendar', 2027: 'holidays'})
        """
        if years is None:
            ys = set(self._official)
            if ys:
                ys.add(max(ys) + 1)
        else:
            ys = {int(y) for y in years}
        prov = _RULE if self._fallback else "weekends"
        out = pd.DataFrame(
            {
                "official": [y in self._official for y in sorted(ys)],
                "source": [self._official.get(y, prov) for y in sorted(ys)],
            },
            index=pd.Index(sorted(ys), name="year"),
        )
        return out

    @property
    def official_years(self) -> tuple[int, ...]:
        """The official years, sorted."""
        return tuple(sorted(self._official))

    def day(self, day: Any) -> CalendarDay:
        """Return what the calendar says about ``day`` (explicit row or the rule).

        Examples
        --------
        >>> WorkCalendar.from_package().day("2026-09-25")
        CalendarDay(date=datetime.date(2026, 9, 25), is_workday=False,
                    name='Mid-autumn Festival', source='chinesecalendar')
        """
        d = _as_date(day)
        if d in self._days:
            return self._days[d]
        if d.year not in self._official and self._fallback:
            name = _rule_holidays(d.year).get(d)
            if name is not None:
                return CalendarDay(d, False, name, _RULE)
        source = self._official.get(d.year, _RULE if self._fallback else "weekends")
        return CalendarDay(d, d.weekday() < 5, "", source)

    def is_workday(self, day: Any) -> bool:
        """Whether ``day`` is a working day."""
        d = _as_date(day)
        t = self._ensure(d.year, d.year)
        return bool(t.work[_epoch_day(d) - t.origin])

    def is_provisional(self, day: Any) -> bool:
        """Whether ``day`` lies in a year no official table covers."""
        return _as_date(day).year not in self._official

    # ------------------------------------------------------------------ table
    def _ensure(self, lo: int, hi: int) -> _Table:
        t = self._table
        if t is not None and t.first_year <= lo and hi <= t.last_year:
            return t
        if t is not None:
            lo, hi = min(lo, t.first_year), max(hi, t.last_year)
        else:
            known = list(self._official) or [lo]
            lo, hi = min(lo, min(known)), max(hi, max(known))
        if hi - lo > _MAX_YEARS * 2:
            raise CalendarError(
                f"dates {lo}–{hi} span more than {_MAX_YEARS * 2} years; check the input dates"
            )
        start = _epoch_day(dt.date(lo, 1, 1))
        stop = _epoch_day(dt.date(hi + 1, 1, 1))
        epoch = np.arange(start, stop, dtype=np.int64)
        work = ((epoch + 3) % 7) < 5  # 1970-01-01 was a Thursday (weekday 3)
        years = np.arange(lo, hi + 1)
        first = np.array([_epoch_day(dt.date(int(y), 1, 1)) for y in years]) - start
        year_of = np.repeat(years, np.diff(np.append(first, stop - start)))
        prov = ~np.isin(year_of, np.array(sorted(self._official), dtype=np.int64))
        for d, row in self._days.items():
            if lo <= d.year <= hi:
                work[_epoch_day(d) - start] = row.is_workday
        if self._fallback:
            for y in years[~np.isin(years, list(self._official))]:
                for d in _rule_holidays(int(y)):
                    work[_epoch_day(d) - start] = False
        table = _Table(
            start,
            lo,
            hi,
            work,
            np.cumsum(work, dtype=np.int64),
            np.cumsum(prov, dtype=np.int64),
        )
        self._table = table  # replaced whole: readers see the old or the new table
        return table

    def _index(self, epoch_days: np.ndarray, extra_years: int = 0) -> tuple[_Table, np.ndarray]:
        lo = int(pd.Timestamp(int(epoch_days.min()), unit="D").year)
        hi = int(pd.Timestamp(int(epoch_days.max()), unit="D").year) + extra_years
        t = self._ensure(lo, hi)
        return t, epoch_days - t.origin

    # ------------------------------------------------------------------ arithmetic
    def add_working_days_array(self, days: Any, n: Any) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised :meth:`add_working_days`.

        Parameters
        ----------
        days : array-like of datetime64[D] (or anything numpy casts to it)
        n : int or array-like of int, each 0 or more

        Returns
        -------
        tuple of numpy.ndarray
            The ``datetime64[D]`` result days and a bool ``provisional`` array.

        Examples
        --------
        >>> cal = WorkCalendar.from_package()
        >>> out, prov = cal.add_working_days_array(["2026-09-18", "2026-09-30"], [7, 5])
        >>> out.astype(str).tolist(), prov.tolist()
        (['2026-09-29', '2026-10-13'], [False, False])
        """
        d = np.asarray(days, dtype="datetime64[D]")
        counts = np.broadcast_to(np.asarray(n, dtype=np.int64), d.shape)
        if d.size == 0:
            return d.copy(), np.zeros(d.shape, dtype=bool)
        if (counts < 0).any():
            raise CalendarError("working-day counts must be 0 or more")
        epoch = d.astype(np.int64)
        extra = 1 + int(counts.max()) // 240
        while True:
            t, idx = self._index(epoch, extra)
            target = t.cum[idx] + counts
            if (target <= t.cum[-1]).all():
                break
            extra += 1
            if extra > _MAX_YEARS:
                raise CalendarError("too many working days to count; check the limit")
        j = np.searchsorted(t.cum, target, side="left")
        j = np.where(counts == 0, idx, j)
        own = (t.cprov[idx] - np.where(idx > 0, t.cprov[idx - 1], 0)) > 0
        prov = np.where(counts == 0, own, (t.cprov[j] - t.cprov[idx]) > 0)
        return (j + t.origin).astype("datetime64[D]"), prov.astype(bool)

    def add_working_days(self, day: Any, n: int) -> tuple[dt.date, bool]:
        """Return the ``n``-th working day after ``day`` and whether it is provisional.

        ``n = 0`` returns ``day`` itself. Counting starts the day after ``day``.

        Examples
        --------
        >>> cal = WorkCalendar.from_package()
        >>> cal.add_working_days(dt.date(2026, 9, 30), 5)
        (datetime.date(2026, 10, 13), False)
        """
        out, prov = self.add_working_days_array([np.datetime64(_as_date(day), "D")], [int(n)])
        return pd.Timestamp(out[0]).date(), bool(prov[0])

    def due(
        self,
        received_at: Any,
        *,
        working_days: int | None = None,
        hours: float | None = None,
    ) -> Deadline:
        """Deadline of a limit given in working days *or* hours from ``received_at``.

        Examples
        --------
        >>> cal = WorkCalendar.from_package()
        >>> d = cal.due("2026-09-18 10:00", working_days=7)
        >>> d.due.isoformat(), d.provisional
        ('2026-09-29T23:59:59+08:00', False)
        >>> cal.due("2026-09-18 22:30", hours=3).due.isoformat()
        '2026-09-19T01:30:00+08:00'
        >>> cal.due("2026-09-18 10:00", working_days=0).due.isoformat()
        '2026-09-18T23:59:59+08:00'
        """
        if (working_days is None) == (hours is None):
            raise CalendarError("give exactly one of working_days= or hours=")
        start = to_local(received_at)
        if hours is not None:
            if hours < 0:
                raise CalendarError(f"hours must be 0 or more, got {hours}")
            return Deadline((start + dt.timedelta(hours=hours)).astimezone(TZ), False)
        assert working_days is not None
        if working_days < 0:
            raise CalendarError(f"working_days must be 0 or more, got {working_days}")
        day, prov = self.add_working_days(start.date(), working_days)
        due = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=TZ)
        return Deadline(due, prov)

    def due_array(
        self,
        received_at: Any,
        *,
        working_days: Any = None,
        hours: Any = None,
    ) -> pd.DataFrame:
        """Vectorised :meth:`due`: per row either working days or hours (the other NaN).

        Parameters
        ----------
        received_at : array-like of datetimes
            Aware or naive (read as Asia/Shanghai).
        working_days, hours : scalar or array-like, optional
            Per-row limits; a row uses ``hours`` where ``working_days`` is NaN.

        Returns
        -------
        pandas.DataFrame
            Columns ``due`` (datetime64, Asia/Shanghai) and ``provisional``.

        Examples
        --------
        >>> cal = WorkCalendar.from_package()
        >>> out = cal.due_array(["2026-02-13 09:00", "2026-02-13 09:00"],
        ...                     working_days=[3, np.nan], hours=[np.nan, 3])
        >>> out["due"].astype(str).tolist()
        ['2026-02-25 23:59:59+08:00', '2026-02-13 12:00:00+08:00']
        """
        ts = _local_index(received_at)
        n = len(ts)
        wd = np.broadcast_to(
            np.asarray(np.nan if working_days is None else working_days, float), (n,)
        )
        hr = np.broadcast_to(np.asarray(np.nan if hours is None else hours, float), (n,))
        use_days = ~np.isnan(wd)
        if (~use_days & np.isnan(hr)).any():
            raise CalendarError("every row needs a working_days or an hours limit")
        local_days = ts.tz_localize(None).normalize().to_numpy().astype("datetime64[D]")
        due_days, prov = self.add_working_days_array(
            local_days, np.where(use_days, wd, 0).astype(np.int64)
        )
        by_days = pd.DatetimeIndex(due_days.astype("datetime64[ns]")) + _END_OF_DAY
        by_days = by_days.tz_localize(TZ).as_unit("ns")
        by_hours = ts + pd.to_timedelta(np.where(use_days, 0.0, hr), unit="h")
        due = np.where(use_days, by_days.asi8, by_hours.asi8)
        return pd.DataFrame(
            {
                "due": pd.DatetimeIndex(due.astype("datetime64[ns]"))
                .tz_localize("UTC")
                .tz_convert(TZ),
                "provisional": np.where(use_days, prov, False),
            }
        )

    def working_days_between(self, start: Any, end: Any) -> np.ndarray:
        """Vectorised count of working days after ``start``'s day up to ``end``'s day.

        Consistent with deadlines: a case received on day ``d`` and finished on
        its ``N``-working-day due day took ``N`` working days. Negative when
        ``end`` is before ``start``.

        Examples
        --------
        >>> cal = WorkCalendar.from_package()
        >>> cal.working_days_between(["2026-09-18"], ["2026-09-29"]).tolist()
        [7]
        """
        s = _local_index(start).tz_localize(None).normalize().to_numpy().astype("datetime64[D]")
        e = _local_index(end).tz_localize(None).normalize().to_numpy().astype("datetime64[D]")
        both = np.concatenate([s.astype(np.int64), e.astype(np.int64)])
        if both.size == 0:
            return np.zeros(0, dtype=np.int64)
        t, _ = self._index(both)
        return t.cum[e.astype(np.int64) - t.origin] - t.cum[s.astype(np.int64) - t.origin]

    def working_time_between(self, start: Any, end: Any) -> WorkingTime:
        """Working time between two instants, for statistics.

        Returns
        -------
        WorkingTime
            ``days``: working days after ``start``'s day up to ``end``'s day (as
            deadlines count them); ``hours``: wall-clock hours of ``[start, end)``
            that fall on working days; ``provisional``: a counted day lies in a
            provisional year.

        Examples
        --------
        >>> cal = WorkCalendar.from_package()
        >>> cal.working_time_between("2026-09-30 18:00", "2026-10-09 10:00")
        WorkingTime(days=2, hours=40.0, provisional=False)
        """
        s, e = to_local(start), to_local(end)
        if e < s:
            raise CalendarError(f"end {e.isoformat()} is before start {s.isoformat()}")
        sd, ed = s.date(), e.date()
        t = self._ensure(sd.year, ed.year)
        i, j = _epoch_day(sd) - t.origin, _epoch_day(ed) - t.origin
        days = int(t.cum[j] - t.cum[i])
        prov = bool(t.cprov[j] - (t.cprov[i - 1] if i > 0 else 0) > 0)
        midnight_s = dt.datetime.combine(sd, dt.time(), tzinfo=TZ)
        midnight_e = dt.datetime.combine(ed, dt.time(), tzinfo=TZ)
        if i == j:
            hours = (e - s).total_seconds() / 3600 if t.work[i] else 0.0
        else:
            hours = 0.0
            if t.work[i]:
                hours += (midnight_s + dt.timedelta(days=1) - s).total_seconds() / 3600
            if t.work[j]:
                hours += (e - midnight_e).total_seconds() / 3600
            hours += 24.0 * float(t.cum[j - 1] - t.cum[i])
        return WorkingTime(days, round(hours, 6), prov)


def _local_index(values: Any) -> pd.DatetimeIndex:
    """Values as an Asia/Shanghai DatetimeIndex (naive values read as local)."""
    if isinstance(values, pd.DatetimeIndex) and values.tz is not None:  # fast path: typed
        return values.as_unit("ns").tz_convert(TZ)
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(values).astype(object), format="mixed"))
    idx = idx.as_unit("ns")
    if idx.tz is None:
        return idx.tz_localize(TZ)
    return idx.tz_convert(TZ)


def _iter_rows(rows: Iterable[Any] | pd.DataFrame) -> Iterable[Any]:
    if isinstance(rows, pd.DataFrame):
        return rows.to_dict("records")
    return rows


def _coerce_row(row: Any, *, where: str = "") -> CalendarDay:
    if isinstance(row, CalendarDay):
        return row
    if isinstance(row, Mapping):
        if "date" not in row or "is_workday" not in row:
            raise CalendarError(f"{where}needs 'date' and 'is_workday', got keys {sorted(row)}")
        date, work = row["date"], row["is_workday"]
        name, source = row.get("name", ""), row.get("source", _NOTICE)
    elif isinstance(row, tuple | list) and 2 <= len(row) <= 4:
        date, work, *rest = row
        name = rest[0] if rest else ""
        source = rest[1] if len(rest) > 1 else _NOTICE
    else:
        raise CalendarError(f"{where}expected (date, is_workday, name, source), got {row!r}")
    return CalendarDay(
        _as_date(date, where),
        _as_bool(work, where),
        "" if name is None or (isinstance(name, float) and np.isnan(name)) else str(name),
        str(source) if source else _NOTICE,
    )


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _BOOL_VALUES:
        return _BOOL_VALUES[text]
    if text in _KIND_VALUES:
        return _KIND_VALUES[text]
    raise CalendarError(f"{where}is_workday must be true/false, got {value!r}")


def _normalise_frame(frame: pd.DataFrame, *, source: str, offset: int = 0) -> pd.DataFrame:
    """Map header aliases and kind values; ``offset`` turns row positions into line numbers."""
    rename = {}
    for col in frame.columns:
        key = str(col).strip().lstrip("\ufeff").lower()
        if key in _HEADER_ALIASES:
            rename[col] = _HEADER_ALIASES[key]
    df = frame.rename(columns=rename)
    if "date" not in df.columns or not ({"kind", "is_workday"} & set(df.columns)):
        raise CalendarError(
            f"a notice table needs a date column (date/日期) and a kind column "
            f"(kind/类型: holiday|workday, 休|班), got columns {list(frame.columns)}"
        )
    out = []
    for pos, rec in enumerate(df.to_dict("records")):
        where = f"line {pos + offset}: " if offset else f"row {pos}: "
        if "kind" in df.columns:
            kind = str(rec["kind"]).strip().lower()
            if kind not in _KIND_VALUES:
                raise CalendarError(
                    f"{where}kind {rec['kind']!r} is neither a holiday nor a workday; use "
                    "holiday/workday (or 休/班)"
                )
            work = _KIND_VALUES[kind]
        else:
            work = _as_bool(rec["is_workday"], where)
        name = rec.get("name", "")
        out.append(
            CalendarDay(
                _as_date(rec["date"], where),
                work,
                "" if name is None or (isinstance(name, float) and np.isnan(name)) else str(name),
                source,
            )
        )
    return pd.DataFrame(out, columns=list(CALENDAR_COLUMNS))


def load_year_csv(path: str | Path, *, source: str = _NOTICE) -> pd.DataFrame:
    """Read a State Council notice table from CSV (UTF-8, UTF-8 with BOM or GB18030).

    Columns: ``date``/``日期``; ``kind``/``类型`` with ``holiday``/``workday`` (or
    ``休``/``班``, ``放假``/``上班``) or a boolean ``is_workday``; optional
    ``name``/``名称``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CALENDAR_COLUMNS`.

    Raises
    ------
    CalendarError
        Naming the line (as a spreadsheet shows it) of a bad row.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "2027.csv")
    ...     text = chr(10).join(["日期,类型,名称", "2027-01-01,休,元旦"])
    ...     _ = open(path, "w", encoding="utf-8").write(text)
    ...     load_year_csv(path).iloc[0].astype(str).tolist()
    ['2027-01-01', 'False', '元旦', 'notice']
    """
    p = Path(path)
    if not p.exists():
        raise CalendarError(f"calendar file {p} does not exist")
    raw = p.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise CalendarError(f"{p}: cannot decode; save it as UTF-8")
    import io

    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    return _normalise_frame(frame, source=source, offset=2)


@functools.lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    """Return the calendar of the pinned ``chinesecalendar`` package (cached, immutable).

    Examples
    --------
    >>> default_calendar() is default_calendar()
    True
    """
    return WorkCalendar.from_package()
