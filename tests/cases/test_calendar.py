from __future__ import annotations

import datetime as dt

import chinese_calendar
import numpy as np
import pandas as pd
import pytest

from gridmap.cases import TZ, WorkCalendar, default_calendar, load_year_csv
from gridmap.errors import CalendarError

D = dt.date


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar.from_package()


# received date, N working days, due date, provisional
REQUIRED = [
    (D(2026, 9, 18), 7, D(2026, 9, 29), False),  # Sun 09-20 make-up workday, 09-25 Mid-Autumn
    (D(2026, 2, 13), 3, D(2026, 2, 25), False),  # Spring Festival; Sat 02-14 is a workday
    (D(2026, 9, 30), 5, D(2026, 10, 13), False),  # National Day; Sat 10-10 is a workday
    (D(2026, 12, 28), 5, D(2027, 1, 5), True),  # 2027 not in chinesecalendar 1.11.0
]


@pytest.mark.parametrize(("received", "n", "due", "provisional"), REQUIRED)
def test_required_deadlines(cal, received, n, due, provisional):
    assert cal.add_working_days(received, n) == (due, provisional)
    d = cal.due(dt.datetime.combine(received, dt.time(15, 30)), working_days=n)
    assert d.due == dt.datetime.combine(due, dt.time(23, 59, 59), tzinfo=TZ)
    assert d.provisional is provisional


def test_package_knows_2026_make_up_days():
    assert chinese_calendar.is_workday(D(2026, 9, 20))  # Sunday
    assert chinese_calendar.is_holiday(D(2026, 9, 25))
    for day in (D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9), D(2026, 10, 10)):
        assert day.weekday() >= 5 and chinese_calendar.is_workday(day)


def test_calendar_agrees_with_package_for_every_day(cal):
    days = pd.date_range("2024-01-01", "2026-12-31", freq="D").date
    ours = [cal.is_workday(d) for d in days]
    theirs = [chinese_calendar.is_workday(d) for d in days]
    assert ours == theirs


def test_counting_starts_the_day_after_and_zero_is_same_day(cal):
    # received on a Sunday make-up workday: that day does not count
    assert cal.add_working_days(D(2026, 9, 20), 1) == (D(2026, 9, 21), False)
    d = cal.due("2026-09-26 20:00", working_days=0)  # a Saturday: still the same day
    assert d.due.isoformat() == "2026-09-26T23:59:59+08:00"


def test_provisional_flag_follows_the_counted_days(cal):
    assert cal.add_working_days(D(2026, 12, 30), 1) == (D(2026, 12, 31), False)
    assert cal.add_working_days(D(2026, 12, 31), 1) == (D(2027, 1, 4), True)
    assert cal.add_working_days(D(2027, 3, 1), 0) == (D(2027, 3, 1), True)
    assert cal.due("2026-12-31 09:00", working_days=0).provisional is False


def test_unknown_year_never_crashes_and_is_provisional(cal):
    day, prov = cal.add_working_days(D(2031, 6, 1), 10)
    assert prov and day.year == 2031
    assert cal.is_provisional(D(2031, 1, 1))
    assert not cal.is_workday(D(2031, 1, 1))  # New Year by rule (holidays package)
    assert cal.day(D(2031, 1, 1)).source == "holidays"
    # no make-up days in a rule-based year: every weekend is off
    weekends = [d for d in pd.date_range("2031-01-01", "2031-12-31").date if d.weekday() >= 5]
    assert not any(cal.is_workday(d) for d in weekends)
    assert cal.status([2031]).loc[2031].tolist() == [False, "holidays"]
    # far outside what any package knows: weekends only, still no crash
    assert cal.add_working_days(D(2300, 1, 1), 1) == (D(2300, 1, 2), True)


def test_without_fallback_unknown_years_are_weekends_only():
    cal = WorkCalendar.from_package(fallback=False)
    assert cal.is_workday(D(2027, 1, 1))  # a Friday, no rule holidays
    assert cal.status([2027]).loc[2027, "source"] == "weekends"


NOTICE_2027 = """日期,类型,名称
2027-01-01,休,元旦
2027-02-05,休,春节
2027-02-06,休,春节
2027-02-07,休,春节
2027-02-08,休,春节
2027-02-09,休,春节
2027-02-10,休,春节
2027-02-11,休,春节
2027-02-20,班,春节
"""


def test_loading_a_year_from_csv_makes_it_official(cal, tmp_path):
    path = tmp_path / "2027.csv"
    path.write_text(NOTICE_2027, encoding="utf-8-sig")
    frame = load_year_csv(path)
    assert frame.columns.tolist() == ["date", "is_workday", "name", "source"]
    cal2 = cal.with_year(path)
    assert cal2.status([2026, 2027])["official"].tolist() == [True, True]
    assert cal2.status([2027]).loc[2027, "source"] == "notice"
    assert cal2.add_working_days(D(2026, 12, 28), 5) == (D(2027, 1, 5), False)
    assert cal2.is_workday(D(2027, 2, 20))  # Saturday make-up day
    assert cal2.add_working_days(D(2027, 2, 4), 1) == (D(2027, 2, 12), False)
    # the original calendar is unchanged
    assert cal.is_provisional(D(2027, 1, 5)) and not cal.is_workday(D(2027, 2, 20))


def test_notice_csv_in_gbk_with_english_kinds(tmp_path):
    path = tmp_path / "2027-gbk.csv"
    path.write_bytes("date,kind,name\n2027-01-01,holiday,元旦\n".encode("gb18030"))
    assert load_year_csv(path).iloc[0]["name"] == "元旦"


def test_bad_notice_rows_name_the_line(cal, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("日期,类型\n2027-01-01,休\n2027-02-20,加班吧\n", encoding="utf-8")
    with pytest.raises(CalendarError, match=r"line 3: kind '加班吧'"):
        load_year_csv(path)
    path.write_text("日期,类型\n2027-13-01,休\n", encoding="utf-8")
    with pytest.raises(CalendarError, match=r"line 2: cannot read date '2027-13-01'"):
        load_year_csv(path)
    path.write_text("day_of,类型\n2027-01-01,休\n", encoding="utf-8")
    with pytest.raises(CalendarError, match="needs a date column"):
        load_year_csv(path)
    two_years = pd.DataFrame({"date": ["2027-01-01", "2028-01-01"], "kind": ["休", "休"]})
    with pytest.raises(CalendarError, match="one year"):
        cal.with_year(two_years)
    with pytest.raises(CalendarError, match="does not exist"):
        load_year_csv(tmp_path / "missing.csv")


def test_frame_round_trip_keeps_the_calendar(cal):
    frame = cal.to_frame()
    assert frame["source"].eq("chinesecalendar").all()
    again = WorkCalendar.from_frame(frame)
    assert again.official_years == cal.official_years
    days = pd.date_range("2025-01-01", "2027-12-31").date
    assert [again.is_workday(d) for d in days] == [cal.is_workday(d) for d in days]
    rows = list(frame.head(3).itertuples(index=False, name=None))
    assert WorkCalendar(rows).to_frame().equals(frame.head(3))
    with pytest.raises(CalendarError, match="lacks column"):
        WorkCalendar.from_frame(frame.drop(columns="is_workday"))


def test_to_frame_with_provisional_lists_rule_holidays(cal):
    cal.add_working_days(D(2026, 12, 28), 5)  # touch 2027
    frame = cal.to_frame(include_provisional=True)
    rule = frame[frame["source"] == "holidays"]
    assert D(2027, 1, 1) in set(rule["date"])


def test_hour_limits_are_wall_clock(cal):
    d = cal.due("2026-09-30 22:30", hours=3)  # into the National Day holiday
    assert d.due.isoformat() == "2026-10-01T01:30:00+08:00" and not d.provisional
    utc = dt.datetime(2026, 9, 30, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai
    assert cal.due(utc, hours=3).due == d.due
    with pytest.raises(CalendarError, match="exactly one"):
        cal.due("2026-09-30 22:30", hours=3, working_days=1)
    with pytest.raises(CalendarError, match="0 or more"):
        cal.due("2026-09-30 22:30", working_days=-1)


def test_due_array_matches_scalar_due(cal):
    rng = np.random.default_rng(5)
    start = pd.Timestamp("2025-06-01", tz=TZ)
    times = start + pd.to_timedelta(rng.integers(0, 600 * 86400, 300), unit="s")
    n = rng.integers(0, 8, 300).astype(float)
    hours = np.where(rng.random(300) < 0.3, 3.0, np.nan)
    n[~np.isnan(hours)] = np.nan
    out = cal.due_array(times, working_days=n, hours=hours)
    for t, k, h, due, prov in zip(times, n, hours, out["due"], out["provisional"], strict=True):
        kw = {"hours": h} if np.isnan(k) else {"working_days": int(k)}
        expect = cal.due(t, **kw)
        assert (due, bool(prov)) == (pd.Timestamp(expect.due), expect.provisional)


def test_working_time_between(cal):
    wt = cal.working_time_between("2026-09-30 18:00", "2026-10-09 10:00")
    # 09-30 18:00-24:00 (6 h) + 10-08 (24 h) + 10-09 00:00-10:00 (10 h)
    assert wt.days == 2 and wt.hours == 40.0 and not wt.provisional
    assert cal.working_time_between("2026-09-18 10:00", "2026-09-18 12:30").hours == 2.5
    assert cal.working_time_between("2026-09-19 10:00", "2026-09-19 12:00").hours == 0.0
    assert cal.working_time_between("2026-12-31 10:00", "2027-01-04 10:00").provisional
    with pytest.raises(CalendarError, match="before start"):
        cal.working_time_between("2026-10-09", "2026-10-08")
    counts = cal.working_days_between(["2026-09-18", "2026-02-13"], ["2026-09-29", "2026-02-25"])
    assert counts.tolist() == [7, 3]


def test_default_calendar_is_shared():
    assert default_calendar() is default_calendar()
