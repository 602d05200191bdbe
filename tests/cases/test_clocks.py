from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from importlib import resources

import chinese_calendar
import pandas as pd
import pytest
from casefixtures import GRID, at, case_in, grids, locator

from gridmap.cases import (
    TZ,
    Deadline,
    Handler,
    clock_frame,
    event_key,
    intake_many,
    sweep,
    synth_cases,
)
from gridmap.errors import CaseError


def frame(**over) -> pd.DataFrame:
    row = {
        "case_id": "C1",
        "clock": "resolve",
        "policy": "12345",
        "start": pd.Timestamp("2026-09-18 10:00", tz=TZ),
        "due": pd.Timestamp("2026-09-24 23:59:59", tz=TZ),  # road: 5 working days
        "level": "grid",
    }
    row.update(over)
    return pd.DataFrame([row])


def kinds(events: pd.DataFrame) -> list[tuple[str, int, str]]:
    return [
        (k, lv, str(t))
        for k, lv, t in zip(events["kind"], events["level"], events["at"], strict=True)
    ]


def test_events_fire_at_exact_times():
    f = frame()
    assert sweep(f, "2026-09-23 16:23:59").empty
    assert kinds(sweep(f, "2026-09-23 16:24:00")) == [("warning", 0, "2026-09-23 16:24:00+08:00")]
    assert kinds(sweep(f, "2026-09-24 23:59:59")) == [("warning", 0, "2026-09-23 16:24:00+08:00")]
    assert kinds(sweep(f, "2026-09-25 00:00:00"))[-1] == ("overdue", 0, "2026-09-25 00:00:00+08:00")
    assert len(sweep(f, "2026-09-28 08:59:59")) == 2
    # 催办 on the next working day (09-25 Mid-Autumn, 09-26/27 weekend) and escalation
    # to the community one working day after the due day
    assert kinds(sweep(f, "2026-09-28 09:00:00"))[2:] == [
        ("remind", 0, "2026-09-28 09:00:00+08:00"),
        ("escalate", 1, "2026-09-28 09:00:00+08:00"),
    ]
    # 督办 two working days after the reminder; sub-district three working days after due
    assert kinds(sweep(f, "2026-09-30 08:59:59"))[4:] == []
    assert kinds(sweep(f, "2026-09-30 09:00:00"))[4:] == [
        ("supervise", 0, "2026-09-30 09:00:00+08:00"),
        ("escalate", 2, "2026-09-30 09:00:00+08:00"),
    ]
    ev = sweep(f, "2026-09-30 09:00:00")
    assert ev.loc[ev["kind"] == "escalate", "target"].tolist() == ["community", "subdistrict"]
    assert ev["key"].tolist() == [
        "C1|resolve|warning|0",
        "C1|resolve|overdue|0",
        "C1|resolve|remind|0",
        "C1|resolve|escalate|1",
        "C1|resolve|supervise|0",
        "C1|resolve|escalate|2",
    ]


def test_sweep_is_idempotent_and_incremental_sweeps_add_up():
    f = frame()
    written: set[str] = set()
    for now in pd.date_range("2026-09-18", "2026-10-10", freq="7h", tz=TZ):
        ev = sweep(f, now, already=written)
        assert sweep(f, now, already=written | set(ev["key"])).empty
        assert not (set(ev["key"]) & written)
        written |= set(ev["key"])
    assert written == set(sweep(f, "2026-10-10")["key"])
    assert len(written) == 6


def test_level_and_status_and_follow_up():
    now = "2026-10-10"
    assert sweep(frame(level="community"), now)["level"].tolist() == [0, 0, 0, 0, 2]
    assert sweep(frame(level="subdistrict"), now)["kind"].tolist().count("escalate") == 0
    assert sweep(frame(status="replied"), now).empty  # the resolve clock stopped
    assert sweep(frame(status="closed"), now).empty
    assert len(sweep(frame(status="extension_requested"), now)) == 6
    sub = sweep(frame(clock="report_in:城管", follow_up=False), now)
    assert sub["kind"].tolist() == ["warning", "overdue"]
    assert sweep(frame(cycle=1), now)["key"].iloc[0] == "C1|resolve|warning|0|1"
    assert event_key("C1", "resolve", "warning", 0, 1) == "C1|resolve|warning|0|1"


def test_hour_clock_of_the_online_office():
    f = frame(
        policy="357",
        clock="answer",
        start=pd.Timestamp("2026-09-18 22:30", tz=TZ),
        due=pd.Timestamp("2026-09-19 01:30", tz=TZ),
    )
    ev = sweep(f, "2026-09-20 09:00")
    assert kinds(ev) == [
        ("warning", 0, "2026-09-19 00:54:00+08:00"),
        ("overdue", 0, "2026-09-19 01:30:01+08:00"),
        ("remind", 0, "2026-09-20 09:00:00+08:00"),  # Sunday 09-20 is a make-up workday
        ("escalate", 1, "2026-09-20 09:00:00+08:00"),
    ]
    assert sweep(f.assign(status="accepted"), "2026-09-20 09:00").empty  # answered


def test_clock_frame_from_cases():
    c = case_in(
        "in_progress",
        deadlines={
            "answer": Deadline(at("2026-09-18T23:59:59")),
            "resolve": Deadline(at("2026-09-24T23:59:59")),
        },
        handlers=(
            Handler(GRID, "grid"),
            Handler("城管", "department", lead=False, due=Deadline(at("2026-09-22T23:59:59"))),
        ),
    )
    f = clock_frame([c, case_in("closed", id="C2")])
    assert f["clock"].tolist() == ["resolve", "handler:城管", "report_in:D1"]
    assert f["follow_up"].tolist() == [True, False, False]
    assert str(f["due"].dtype) == "datetime64[ns, Asia/Shanghai]" or f["due"].dt.tz is not None
    ev = sweep(f, "2026-10-10")
    assert set(ev["clock"]) == {"resolve", "handler:城管", "report_in:D1"}
    assert clock_frame([replace(c, status="replied")])["clock"].tolist() == ["report_in:D1"]


def test_bad_frames_are_refused():
    with pytest.raises(CaseError, match=r"lacks column\(s\) \['due'\]"):
        sweep(frame().drop(columns="due"), "2026-10-01")
    with pytest.raises(CaseError, match="unknown policies"):
        sweep(frame(policy="999"), "2026-10-01")
    with pytest.raises(CaseError, match="unknown level"):
        sweep(frame(level="city"), "2026-10-01")
    assert sweep(frame().iloc[:0], "2026-10-01").columns.tolist()[:3] == ["key", "case_id", "clock"]


def _independent_due(received: dt.datetime, days: int) -> dt.datetime:
    """Step day by day with chinesecalendar itself (not our table)."""
    day = received.date()
    left = days
    while left:
        day += dt.timedelta(days=1)
        if chinese_calendar.is_workday(day):
            left -= 1
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=TZ)


def _independent_overdue(tickets: pd.DataFrame, now: pd.Timestamp, raw: dict) -> int:
    count = 0
    for row in tickets.itertuples():
        if row.received_at > now or row.replied_at <= now:
            continue  # not yet received, or already replied (the clock stopped)
        rule = raw[row.policy]["clocks"]["resolve"]
        if row.hard and "hard" in rule:
            lim = rule["hard"]
        elif row.urgency == "urgent" and "urgent" in rule:
            lim = rule["urgent"]
        else:
            lim = rule.get("categories", {}).get(row.category, rule["limit"])
        due = _independent_due(row.received_at.to_pydatetime(), lim["working_days"])
        count += now > due
    return count


def test_overdue_count_on_a_synthetic_year_matches_an_independent_count():
    g = grids()
    tickets = synth_cases(g, n=2000, start="2026-01-01", days=330, seed=11, late_share=0.3)
    all_cases = intake_many(tickets, locate=locator(g))
    # limits read straight from the JSON, days counted with chinesecalendar day by day
    raw = json.loads(
        (resources.files("gridmap.cases") / "data" / "policies.json").read_text("utf-8")
    )["policies"]
    total = 0
    for now in pd.date_range("2026-01-15 12:00", "2026-11-25 12:00", freq="10D", tz=TZ):
        arrived = (tickets["received_at"] <= now).to_numpy()
        still = (tickets["replied_at"] > now).to_numpy()
        cases = [
            replace(c, status="in_progress" if s else "replied")
            for c, a, s in zip(all_cases, arrived, still, strict=True)
            if a
        ]
        ev = sweep(clock_frame(cases), now)
        ours = int(((ev["kind"] == "overdue") & (ev["clock"] == "resolve")).sum())
        assert ours == _independent_overdue(tickets, now, raw), now
        total += ours
        # the answer clocks stopped: every open case is in progress
        assert not (ev["clock"] == "answer").any()
    assert total > 50  # the fixture does exercise overdue cases
