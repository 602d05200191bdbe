import numpy as np
import pandas as pd
import pytest

from gridmap.errors import InputError, LayerError, VisitRulesError
from gridmap.layers import SENSITIVE_FLAGS
from gridmap.synth import synth_city
from gridmap.visits.due import DUE_COLUMNS, due_summary, due_visits, follow_redraw, visit_window
from gridmap.visits.examples import G1, G2, _example
from gridmap.visits.rules import load_rules


@pytest.fixture(scope="module")
def ex():
    return _example()


def test_counts_on_the_tiny_plan(ex):
    due = due_visits(
        ex.plan,
        ex.households,
        ex.buildings,
        period="2026-09",
        records=ex.records,
        as_of="2026-09-20",
    )
    assert list(due.columns) == list(DUE_COLUMNS)
    # H01, H02, H05, B3 in grid 1; H09, H10, H11 in grid 2: monthly, not over on the 20th
    assert due.groupby(["grid_code", "status"]).size().to_dict() == {
        (G1, "done"): 1,
        (G1, "due"): 3,
        (G2, "due"): 3,
    }
    h02 = due[due["household_id"] == "H02"].iloc[0]
    assert h02["categories"] == "migrant;unemployed"
    org = due[due["target_kind"] == "building"].iloc[0]
    assert (org["building_id"], org["target_name"], org["categories"]) == (
        "B3",
        "横1路超市",
        "organisation",
    )
    assert set(due.loc[due["grid_code"] == G1, "staff_id"]) == {"S1"}
    assert set(due.loc[due["grid_code"] == G2, "staff_id"]) == {"S4"}
    done = due[due["status"] == "done"].iloc[0]
    assert done["household_id"] == "H01"
    assert done["visited_at"] == pd.Timestamp("2026-09-10")
    # after the month: the rest is overdue
    late = due_visits(ex.plan, ex.households, ex.buildings, period="2026-09", records=ex.records)
    assert (late["status"] == "overdue").sum() == 6
    s = due_summary(late, by=["grid_code", "staff_id"])
    assert s[["total", "done", "overdue"]].values.tolist() == [[4, 1, 3], [3, 0, 3]]


def test_not_home_is_an_attempt_not_a_visit(ex):
    rec = pd.DataFrame(
        {
            "household_id": ["H02", "H02"],
            "visited_at": ["2026-09-03", "2026-08-30"],
            "outcome": ["not_home", "visited"],
        }
    )
    due = due_visits(ex.plan, ex.households, ex.buildings, period="2026-09", records=rec)
    row = due[due["household_id"] == "H02"].iloc[0]
    assert (row["status"], row["attempts"]) == ("overdue", 1)


def test_weekly_team_cadence_and_worker_split(ex):
    rules = load_rules(
        {"categories": {"elderly_alone": {"team": "self_governance", "responsible": "worker"}}}
    )
    due = due_visits(
        ex.plan,
        ex.households,
        ex.buildings,
        period="2026-09",
        rules=rules,
        categories=["elderly_alone"],
    )
    # Sept 2026: weeks starting Aug 31, Sep 7, 14, 21, 28 overlap the month
    assert sorted(due.loc[due["household_id"] == "H01", "period_start"].dt.day) == [
        7,
        14,
        21,
        28,
        31,
    ]
    assert set(due["role"]) == {"worker"}
    assert set(due.loc[due["grid_code"] == G1, "staff_id"]) <= {"S2", "S3"}
    assert set(due.loc[due["grid_code"] == G2, "staff_id"]) == {"S5"}
    # a grid without workers falls back to its chief
    plan = ex.plan.replace(assignments=ex.plan.assignments[ex.plan.assignments["role"] == "chief"])
    fb = due_visits(
        plan,
        ex.households,
        ex.buildings,
        period="2026-09",
        rules=rules,
        categories=["elderly_alone"],
    )
    assert set(fb["role"]) == {"chief"} and set(fb["staff_id"]) == {"S1", "S4"}


def test_vacant_chief_keeps_the_row(ex):
    a = ex.plan.assignments
    plan = ex.plan.replace(
        assignments=a.assign(staff_id=a["staff_id"].where(a["staff_id"] != "S4"))
    )
    due = due_visits(plan, ex.households, ex.buildings, period="2026-09")
    assert due.loc[due["grid_code"] == G2, "staff_id"].isna().all()
    assert len(due) == 7


def test_guards(ex):
    with pytest.raises(InputError, match="cannot read period"):
        visit_window("2026-13")
    with pytest.raises(VisitRulesError, match="unknown visit category"):
        due_visits(ex.plan, ex.households, ex.buildings, period="2026-09", categories=["x"])
    with pytest.raises(LayerError, match="flag column 'disabled'"):
        due_visits(ex.plan, ex.households.drop(columns="disabled"), ex.buildings, period="2026-09")
    stranger = ex.households.iloc[:1].assign(household_id="HX", building_id="BX")
    with pytest.raises(LayerError, match="cannot be placed"):
        due_visits(ex.plan, pd.concat([ex.households, stranger]), ex.buildings, period="2026-09")
    with pytest.raises(LayerError, match="unknown outcome"):
        due_visits(
            ex.plan,
            ex.households,
            ex.buildings,
            period="2026-09",
            records=ex.records.assign(outcome="maybe"),
        )


def test_nothing_due_gives_empty_frame(ex):
    hh = ex.households.assign(**{f: False for f in SENSITIVE_FLAGS})
    due = due_visits(ex.plan, hh, ex.buildings, period="2026-09", categories=["migrant"])
    assert len(due) == 0 and list(due.columns) == list(DUE_COLUMNS)


def test_follow_redraw_moves_households_with_their_status(ex):
    due = due_visits(ex.plan, ex.households, ex.buildings, period="2026-09", records=ex.records)

    def to_g2(d):
        return d.assign(grid_code=d["grid_code"].where(d["building_id"] != "B1", G2))

    new = ex.plan.replace(buildings=to_g2(ex.plan.buildings), households=to_g2(ex.plan.households))
    moved = follow_redraw(due, new, ex.buildings)
    m = moved[moved["moved"]].set_index("household_id")
    assert sorted(m.index) == ["H01", "H02"]
    assert set(m["staff_id"]) == {"S4"} and set(m["previous_staff_id"]) == {"S1"}
    assert m.loc["H01", "status"] == "done"
    same = follow_redraw(due, new, ex.buildings, records=ex.records)
    assert same["status"].tolist() == moved["status"].tolist()


def test_synth_city_matches_an_independent_count():
    city = synth_city(n_buildings=600, seed=4)
    from gridmap.partition import partition
    from gridmap.staffing import assign_staff
    from gridmap.validation import validate_layers

    layers, _ = validate_layers(city)
    plan = partition(layers)
    plan = assign_staff(plan, layers.staff, buildings=layers.buildings).to_plan(plan)
    due = due_visits(plan, layers.households, layers.buildings, period="2026-09")
    hh = layers.households
    flagged = hh[hh[list(SENSITIVE_FLAGS)].any(axis=1)]
    got = due[due["target_kind"] == "household"]
    assert len(got) == len(flagged) and got["household_id"].is_unique
    # per grid, against plan.households
    expect = plan.households.set_index("household_id").loc[flagged["household_id"], "grid_code"]
    assert got.groupby("grid_code").size().to_dict() == expect.value_counts().to_dict()
    orgs = layers.buildings["use"].isin(["commercial", "public", "industrial"])
    assert int((due["target_kind"] == "building").sum()) == int(orgs.sum())
    chiefs = plan.assignments[plan.assignments["role"] == "chief"].set_index("grid_code")[
        "staff_id"
    ]
    assert (
        due["staff_id"].fillna("-") == chiefs.reindex(due["grid_code"]).fillna("-").to_numpy()
    ).all()
    # same input, same output
    again = due_visits(plan, layers.households, layers.buildings, period="2026-09")
    pd.testing.assert_frame_equal(due, again)
    assert np.all(due["visit_id"].is_unique)
