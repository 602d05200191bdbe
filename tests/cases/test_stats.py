"""Performance figures and the workload report (gridmap.cases.stats) on a hand-built fixture.

Six cases of the online office's 357 policy (answer in 3 hours, resolve in 5
working days), all received Monday 2026-11-02 09:00 (resolve due 2026-11-09
23:59:59; no holiday in between), judged at 2026-12-01 09:00:

====  ====  =====================================================  =========
case  grid  what happened                                          status
====  ====  =====================================================  =========
1     G1    accepted 10:00, replied 11-04 (2 wd), 满意, closed      closed
2     G1    accepted 11:00, replied 11-09 (5 wd), 基本满意            callback
3     G1    accepted 15:00, replied 11-11 (7 wd, late), 不满意, closed closed
4     G2    accepted 12:00, replied 11-06 (4 wd), 不满意, reopened   reopened
5     G2    accepted 11-03 09:00 (24 working hours), in progress    in_progress
6     G2    rejected (duplicate)                                    rejected
====  ====  =====================================================  =========
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from gridmap.cases import (
    STATS_COLUMNS,
    STATS_LABELS_ZH,
    Actor,
    Handler,
    Placement,
    apply,
    case_facts,
    case_stats,
    intake,
    label_columns,
    stats_period,
    workload,
)
from gridmap.cases.stats import month_count, workload_table
from gridmap.errors import InputError

ADMIN = Actor("a", "admin")
NOW = "2026-12-01 09:00"
RECEIVED = "2026-11-02 09:00"


def _case(cid: str, grid: str):
    return intake(
        {
            "source": "online",
            "category": "road",
            "description": "路面坑洼",
            "address": "幸福路",
            "received_at": RECEIVED,
        },
        case_id=cid,
        locate=Placement(grid, "C1", "S1"),
    )


def _run(case, steps):
    log = []
    for action, at, kw in steps:
        case, entry = apply(case, action, ADMIN, at=at, **kw)
        log.append(entry)
    return case, log


def _handled(cid, grid, accept_at, reply_at, satisfaction=None, then=(), person="W1", dept=None):
    handler = Handler(grid, "grid", person=person)
    co = [Handler(dept, "department", lead=False)] if dept else []
    steps = [
        ("accept", accept_at, {}),
        ("dispatch", accept_at, {"handler": handler, "co_handlers": co}),
        ("start", accept_at, {}),
    ]
    if reply_at:
        steps.append(("reply", reply_at, {"note": "已处理"}))
    if satisfaction:
        steps.append(("callback", reply_at, {"satisfaction": satisfaction}))
    steps += list(then)
    return _run(_case(cid, grid), steps)


@pytest.fixture(scope="module")
def six():
    out = [
        _handled(
            "1",
            "G1",
            "2026-11-02 10:00",
            "2026-11-04 10:00",
            "satisfied",
            [("close", "2026-11-05 09:00", {})],
            dept="D1",
        ),
        _handled(
            "2",
            "G1",
            "2026-11-02 11:00",
            "2026-11-09 16:00",
            "fairly_satisfied",
            person="W2",
            dept="D1",
        ),
        _handled(
            "3",
            "G1",
            "2026-11-02 15:00",
            "2026-11-11 10:00",
            "unsatisfied",
            [("close", "2026-11-12 09:00", {"reason": "已解释"})],
        ),
        _handled(
            "4",
            "G2",
            "2026-11-02 12:00",
            "2026-11-06 10:00",
            "unsatisfied",
            [("reopen", "2026-11-10 09:00", {"reason": "没修好"})],
            person="W3",
        ),
        _handled("5", "G2", "2026-11-03 09:00", None, person="W3", dept="D2"),
        _run(_case("6", "G2"), [("reject", "2026-11-02 09:30", {"reason": "重复"})]),
    ]
    cases = [c for c, _ in out]
    log = [e for _, entries in out for e in entries]
    return cases, log


def test_states_of_the_fixture(six):
    cases, _ = six
    assert [c.status for c in cases] == [
        "closed",
        "callback",
        "closed",
        "reopened",
        "in_progress",
        "rejected",
    ]


def test_figures_by_grid_exact(six):
    cases, log = six
    t = case_stats(
        cases, log, by="grid", month="2026-11", now=NOW, households={"G1": 300, "G2": 200}
    )
    assert t.columns.tolist() == list(STATS_COLUMNS)
    g1, g2 = (t.set_index("unit").loc[g] for g in ("G1", "G2"))
    assert (g1["received"], g1["open"], g1["overdue"], g1["due"], g1["on_time"]) == (3, 1, 0, 3, 2)
    assert g1["on_time_rate"] == pytest.approx(2 / 3)
    # answer: 1, 2 and 6 working hours → median 2, p90 2 + 0.8 × 4
    assert (g1["answered"], g1["answer_hours_median"]) == (3, 2.0)
    assert g1["answer_hours_p90"] == pytest.approx(5.2)
    # resolve: 2, 5 and 7 working days
    assert (g1["resolved"], g1["resolve_days_median"]) == (3, 5.0)
    assert g1["resolve_days_p90"] == pytest.approx(6.6)
    assert (g1["rated"], g1["satisfied"]) == (3, 2)
    assert g1["satisfaction_rate"] == pytest.approx(2 / 3)
    assert (g1["replied"], g1["reopened"], g1["reopen_rate"]) == (3, 0, 0.0)
    assert (g1["households"], g1["per_1000_households"]) == (300.0, 10.0)

    # G2: case 4 reopened (new deadline passed), case 5 never replied → both overdue;
    # the rejected case 6 is neither open nor due nor answered
    assert (g2["received"], g2["open"], g2["overdue"], g2["due"], g2["on_time"]) == (3, 2, 2, 2, 0)
    assert g2["on_time_rate"] == 0.0
    # answer: 3 h, and 24 h for case 5 (15 h left of Monday + 9 h of Tuesday)
    assert (g2["answered"], g2["answer_hours_median"]) == (2, 13.5)
    assert g2["answer_hours_p90"] == pytest.approx(21.9)
    assert g2["resolved"] == 0 and math.isnan(g2["resolve_days_median"])
    # reopening clears the callback result (and the handlers): nothing rated in G2 now
    assert (g2["rated"], g2["satisfied"]) == (0, 0) and math.isnan(g2["satisfaction_rate"])
    assert (g2["replied"], g2["reopened"], g2["reopen_rate"]) == (1, 1, 1.0)
    assert g2["per_1000_households"] == 15.0


def test_by_community_and_totals(six):
    cases, log = six
    t = case_stats(cases, log, by="community", month="2026-11", now=NOW)
    row = t.iloc[0]
    assert t["unit"].tolist() == ["C1"]
    assert (row["received"], row["due"], row["on_time"]) == (6, 5, 2)
    assert row["on_time_rate"] == pytest.approx(0.4)
    # answers 1, 2, 3, 6, 24 working hours
    assert row["answer_hours_median"] == 3.0
    assert math.isnan(row["households"])


def test_by_department_and_staff(six):
    cases, log = six
    d = case_stats(cases, log, by="department", month="2026-11", now=NOW).set_index("unit")
    assert d["received"].to_dict() == {"D1": 2, "D2": 1}
    assert d.loc["D1", "on_time_rate"] == 1.0
    assert d.loc["D2", "overdue"] == 1
    s = case_stats(cases, log, by="staff", month="2026-11", now=NOW).set_index("unit")
    assert s["received"].to_dict() == {"W1": 2, "W2": 1, "W3": 1}  # case 4: reopened, undispatched


def test_period_and_category_filter(six):
    cases, log = six
    assert len(case_stats(cases, log, month="2026-10", now=NOW)) == 0
    t = case_stats(cases, log, start="2026-11-02", end="2026-11-02", now=NOW)
    assert t["received"].sum() == 6  # a date-only end includes its day
    assert len(case_stats(cases, log, month="2026-11", category="noise", now=NOW)) == 0


def test_overdue_depends_on_now(six):
    cases, log = six
    early = case_stats(cases, log, by="grid", month="2026-11", now="2026-11-05 09:00")
    g2 = early.set_index("unit").loc["G2"]
    # on 11-05 nothing was due yet in G2 (case 4 not yet reopened, but at this `now` the
    # stored state is still the final one: reopened with a deadline in the future)
    assert g2["overdue"] == 0 and g2["due"] == 0 and math.isnan(g2["on_time_rate"])


def test_frame_input_equals_records(six):
    cases, log = six
    facts = case_facts(cases, log)
    handlers = facts.attrs["handlers"]
    a = case_stats(cases, log, by="staff", month="2026-11", now=NOW)
    b = case_stats(facts, by="staff", month="2026-11", now=NOW, handlers=handlers)
    pd.testing.assert_frame_equal(a, b)


def test_chinese_headers():
    t = label_columns(pd.DataFrame({c: [] for c in STATS_COLUMNS}))
    assert t.columns.tolist() == [STATS_LABELS_ZH[c] for c in STATS_COLUMNS]
    assert "按时办结率" in t.columns and "满意率" in t.columns


def test_guards(six):
    cases, log = six
    with pytest.raises(InputError, match="by='street' is not one of grid"):
        case_stats(cases, log, by="street")
    with pytest.raises(InputError, match="month='2026-13' is not a month"):
        stats_period(month="2026-13")
    with pytest.raises(InputError, match="not after from"):
        stats_period(start="2026-11-30", end="2026-11-01")
    with pytest.raises(InputError, match="either a month or from/to"):
        stats_period(month="2026-11", start="2026-11-01")
    with pytest.raises(InputError, match="is not a date"):
        stats_period(start="yesterday")
    bare = case_facts(cases, log)
    bare.attrs.clear()
    with pytest.raises(InputError, match="needs the cases' handlers"):
        case_stats(bare, by="department")


def test_month_count():
    assert month_count("2026-02-01", "2026-03-01") == 1.0
    assert month_count("2026-11-01", "2027-02-01") == 3.0
    assert month_count("2026-02-15", "2026-03-01") == 0.5


def test_workload_names_far_grids():
    # community C1: loads 10, 12, 30 cases per worker-month → median 12, 30 / 12 = 2.5 > 1.5
    rows = []
    for grid, n in (("G1", 20), ("G2", 24), ("G3", 60), ("G4", 5)):
        rows += [
            {
                "case_id": f"{grid}-{i}",
                "grid_code": grid,
                "community_id": "C2" if grid == "G4" else "C1",
                "status": "closed",
                "received_at": "2026-11-10 10:00",
            }
            for i in range(n)
        ]
    cases = pd.DataFrame(rows)
    staff = pd.DataFrame(
        {
            "grid_code": ["G1", "G1", "G2", "G2", "G3", "G3", "G4", "G4", "G4"],
            "staff_id": ["a", "b", "c", "d", "e", "f", "g", "h", None],
        }
    )
    grids = pd.DataFrame(
        {
            "grid_code": ["G1", "G2", "G3", "G4", "G5"],
            "community_id": ["C1", "C1", "C1", "C2", "C2"],
        }
    )
    t = workload(cases, staff, grids=grids, month="2026-11").set_index("grid_code")
    assert t["cases"].to_dict() == {"G1": 20, "G2": 24, "G3": 60, "G4": 5, "G5": 0}
    assert t["workers"].to_dict() == {"G1": 2, "G2": 2, "G3": 2, "G4": 2, "G5": 0}
    assert t.loc["G3", "cases_per_worker_month"] == 30.0
    assert t.loc["G1", "community_median"] == 12.0
    assert t.loc["G3", "ratio"] == 2.5
    assert t.index[t["far_above"]].tolist() == ["G3"]
    assert math.isnan(t.loc["G5", "cases_per_worker_month"])  # no staff: no load, not far
    # a stricter factor names more; two months halve the load
    # factor 0.5: every staffed grid above half its median (G1 at 10/12 too)
    assert workload(cases, staff, grids=grids, month="2026-11", factor=0.5)["far_above"].sum() == 4
    two = workload(cases, staff, grids=grids, start="2026-11-01", end="2026-12-31")
    assert two.set_index("grid_code").loc["G3", "cases_per_worker_month"] == 15.0


def test_workload_guards():
    c = pd.DataFrame({"grid_code": ["G1"], "community_id": ["C1"], "cases": [1]})
    with pytest.raises(InputError, match="factor must be a positive number"):
        workload_table(c, {"G1": 1}, months=1.0, factor=0)
    with pytest.raises(InputError, match="needs a period"):
        workload(pd.DataFrame({"case_id": [], "status": [], "received_at": []}), {})
