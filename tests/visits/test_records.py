import pandas as pd
import pytest

from gridmap.cases import Placement, intake
from gridmap.errors import (
    CaseError,
    PermissionDeniedError,
    RowsError,
    VisitRecordError,
    VisitScopeError,
)
from gridmap.visits.examples import G1, _example
from gridmap.visits.records import check_record, check_records, follow_up_ticket


@pytest.fixture(scope="module")
def ex():
    return _example()


def rec(**kw):
    base = {"staff_id": "S2", "household_id": "H05", "visited_at": "2026-09-10 15:00"}
    base.update(kw)
    return base


def test_a_good_record(ex):
    r = check_record(rec(outcome="未遇", notes="敲门无人"), plan=ex.plan, now="2026-09-18")
    assert (r.grid_code, r.outcome, r.counts, r.building_id) == (G1, "not_home", False, "B2")
    org = check_record(rec(household_id=None, building_id="B3"), plan=ex.plan, now="2026-09-18")
    assert org.grid_code == G1 and org.household_id is None


def test_household_of_another_grid_is_a_scope_error(ex):
    with pytest.raises(VisitScopeError, match="household 'H09' is in grid") as info:
        check_record(rec(household_id="H09"), plan=ex.plan, now="2026-09-18")
    assert isinstance(info.value, PermissionDeniedError)
    with pytest.raises(VisitScopeError, match="serves no grid"):
        check_record(rec(staff_id="S99"), plan=ex.plan, now="2026-09-18")


def test_dates(ex):
    with pytest.raises(VisitRecordError, match="in the future"):
        check_record(rec(visited_at="2026-09-18 12:01"), plan=ex.plan, now="2026-09-18 12:00")
    hh = ex.households.assign(registered_at=pd.Timestamp("2026-09-12"))
    with pytest.raises(VisitRecordError, match="before household 'H05' was registered"):
        check_record(rec(), plan=ex.plan, now="2026-09-18", households=hh)
    ok = check_record(
        rec(visited_at="2026-09-12 08:00"), plan=ex.plan, now="2026-09-18", households=hh
    )
    assert ok.visited_at.day == 12
    with pytest.raises(VisitRecordError, match="cannot read"):
        check_record(rec(visited_at="tomorrow"), plan=ex.plan, now="2026-09-18")


def test_other_guards(ex):
    with pytest.raises(VisitRecordError, match="outcome 'great'"):
        check_record(rec(outcome="great"), plan=ex.plan, now="2026-09-18")
    with pytest.raises(VisitRecordError, match="not in the plan"):
        check_record(rec(household_id="H99"), plan=ex.plan, now="2026-09-18")
    with pytest.raises(VisitRecordError, match="follow_up_text is empty"):
        check_record(rec(follow_up="是"), plan=ex.plan, now="2026-09-18")
    with pytest.raises(VisitRecordError, match="staff_id is empty"):
        check_record(rec(staff_id=" "), plan=ex.plan, now="2026-09-18")


def test_table_reports_lines(ex):
    df = pd.DataFrame([rec(), rec(outcome="??"), rec(visited_at="2027-01-01")])
    with pytest.raises(RowsError) as info:
        check_records(df, plan=ex.plan, now="2026-09-18")
    assert [line for line, _ in info.value.rows] == [3, 4]
    with pytest.raises(VisitScopeError, match="line 2"):
        check_records(pd.DataFrame([rec(household_id="H10")]), plan=ex.plan, now="2026-09-18")
    good = check_records(
        pd.DataFrame([rec(), rec(household_id="H06")]), plan=ex.plan, now="2026-09-18"
    )
    assert good["grid_code"].tolist() == [G1, G1]


def test_follow_up_ticket_goes_through_intake(ex):
    r = check_record(rec(follow_up_text="邻里因漏水发生争执"), plan=ex.plan, now="2026-09-18")
    assert r.follow_up
    hh = ex.households.set_index("household_id").loc["H05"].to_dict()
    t = follow_up_ticket(r, hh, crs=ex.households.crs, category="邻里纠纷")
    assert t["category"] == "dispute" and t["source"] == "patrol" and t["crs"] == "wgs84"
    assert 119 < t["lon"] < 121 and 31 < t["lat"] < 33
    case = intake(t, case_id="C1", locate=Placement(G1, "C1", "320104001"))
    assert (case.status, case.grid_code, case.category) == ("received", G1, "dispute")
    with pytest.raises(CaseError):
        follow_up_ticket(r, hh, crs=ex.households.crs, category="no such category")
    with pytest.raises(VisitRecordError, match="no follow_up_text"):
        follow_up_ticket(check_record(rec(), plan=ex.plan, now="2026-09-18"))
    with pytest.raises(VisitRecordError, match="crs"):
        follow_up_ticket(r, hh)
