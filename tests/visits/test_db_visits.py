"""Visits in the store (gridmap.db.visits) on SQLite and PostGIS: state after each action."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from visitdata import G1, G2

from gridmap.cases import Actor
from gridmap.db import list_audit, save_plan
from gridmap.db.models import CaseRow, VisitRecordRow, table
from gridmap.db.visits import (
    day_route,
    due_list,
    grid_register,
    list_visits,
    record_visit,
    redraw_visits,
    visible_grids,
)
from gridmap.errors import (
    CaseError,
    NotFoundError,
    VisitRecordError,
    VisitRulesError,
    VisitScopeError,
)
from gridmap.visits.examples import _example

NOW = "2026-09-20 12:00"


def counts(store) -> tuple[int, int]:
    with store.session() as s:
        v = s.execute(sa.select(sa.func.count()).select_from(table(VisitRecordRow))).scalar_one()
        c = s.execute(sa.select(sa.func.count()).select_from(table(CaseRow))).scalar_one()
    return int(v), int(c)


def status(store, grid=G1, as_of=NOW):
    due = due_list(store, grid=grid, month="2026-09", author="t", as_of=as_of)
    key = due["household_id"].fillna(due["building_id"])
    return dict(zip(key, due["status"], strict=True)), due


def test_due_lists_of_the_published_plan(vstore):
    st, due = status(vstore)
    assert st == {"H01": "due", "H02": "due", "H05": "due", "B3": "due"}
    assert set(due["staff_id"]) == {"S1"} and set(due["staff_name"]) == {"张伟"}
    assert due.loc[due["household_id"] == "H02", "categories"].item() == "migrant;unemployed"
    st2, due2 = status(vstore, G2)
    assert st2 == {"H09": "due", "H10": "due", "H11": "due"}
    assert set(due2["staff_id"]) == {"S4"}
    # after the month nothing done is overdue
    late, _ = status(vstore, as_of="2026-10-02")
    assert set(late.values()) == {"overdue"}
    with pytest.raises(NotFoundError, match="not a grid of a published plan"):
        due_list(vstore, grid="320104001001999", month="2026-09", author="t")
    with pytest.raises(VisitRulesError, match="unknown visit category 'elderly'"):
        due_list(vstore, grid=G1, month="2026-09", author="t", categories=["elderly"])
    # every read of the households' categories is audited, per grid
    reads = list_audit(vstore, entity="grid")
    reads = reads[reads["action"] == "read.personal"]
    assert reads["entity_id"].tolist().count(G1) == 2 and G2 in reads["entity_id"].tolist()
    assert reads["after"].iloc[0]["what"] == "visits.due"


def test_records_change_the_due_list_step_by_step(vstore):
    assert counts(vstore) == (0, 0)
    rec = record_visit(
        vstore,
        {"staff_id": "S1", "household_id": "H01", "visited_at": "2026-09-10 10:00"},
        author="t",
        now=NOW,
    )
    assert (rec["id"], rec["grid_code"], rec["plan_id"], rec["outcome"]) == (1, G1, 1, "visited")
    assert rec["visited_at"] == "2026-09-10T10:00:00+08:00" and rec["case_id"] is None
    st, due = status(vstore)
    assert st == {"H01": "done", "H02": "due", "H05": "due", "B3": "due"}
    h01 = due[due["household_id"] == "H01"].iloc[0]
    assert h01["visited_at"] == pd.Timestamp("2026-09-10") and h01["attempts"] == 1
    # nobody at home: an attempt, not a visit
    record_visit(
        vstore,
        {
            "staff_id": "S1",
            "household_id": "H05",
            "visited_at": "2026-09-12 09:00",
            "outcome": "未遇",
            "notes": "敲门无人",
        },
        author="t",
        now=NOW,
    )
    st, due = status(vstore)
    assert st["H05"] == "due"
    assert due.loc[due["household_id"] == "H05", "attempts"].item() == 1
    # the organisation (a shop) by its building
    record_visit(
        vstore,
        {"staff_id": "S1", "building_id": "B3", "visited_at": "2026-09-13 15:00"},
        author="t",
        now=NOW,
    )
    assert status(vstore)[0] == {"H01": "done", "H02": "due", "H05": "due", "B3": "done"}
    assert counts(vstore) == (3, 0)
    rows = list_visits(vstore, author="t")
    assert [r["household_id"] or r["building_id"] for r in rows] == ["B3", "H05", "H01"]
    assert rows[1]["outcome"] == "not_home" and rows[1]["notes"] == "敲门无人"
    audit = list_audit(vstore, entity="visit")
    assert audit["action"].tolist() == ["visit.record"] * 3


def test_a_follow_up_opens_a_case_in_the_same_step(vstore):
    rec = record_visit(
        vstore,
        {
            "staff_id": "S1",
            "household_id": "H02",
            "visited_at": "2026-09-11 10:00",
            "follow_up_text": "楼道堆放杂物，消防通道堵塞",
        },
        author="t",
        now=NOW,
        case_category="消防隐患",
    )
    assert rec["case_id"] == 1 and rec["follow_up"] is True
    with vstore.session() as s:
        case = s.execute(sa.select(table(CaseRow)).where(table(CaseRow).c.id == 1)).one()
    assert (case.source, case.category, case.grid_code, case.status) == (
        "patrol",
        "fire",
        G1,
        "received",
    )
    reg = grid_register(vstore, grids=[G1], as_of="2026-09-30", header="code")
    assert reg["open_hazards"].tolist() == [1]
    # a case that cannot be taken in stores nothing: neither the visit nor a case
    before = counts(vstore)
    with pytest.raises(CaseError):
        record_visit(
            vstore,
            {
                "staff_id": "S1",
                "household_id": "H05",
                "visited_at": "2026-09-11 11:00",
                "follow_up_text": "漏水",
            },
            author="t",
            now=NOW,
            case_category="no such category",
        )
    assert counts(vstore) == before == (1, 1)
    with pytest.raises(VisitRecordError, match="open_case needs a follow-up"):
        record_visit(
            vstore,
            {"staff_id": "S1", "household_id": "H05", "visited_at": "2026-09-11 11:00"},
            author="t",
            now=NOW,
            open_case=True,
        )
    assert counts(vstore) == (1, 1)


def test_bad_records_store_nothing(vstore):
    def rec(**kw):
        base = {"staff_id": "S1", "household_id": "H01", "visited_at": "2026-09-10 10:00"}
        return record_visit(vstore, {**base, **kw}, author="t", now=NOW)

    with pytest.raises(VisitScopeError, match="household 'H09' is in grid 320104001001002"):
        rec(household_id="H09")
    with pytest.raises(VisitRecordError, match="in the future"):
        rec(visited_at="2026-09-21 08:00")
    with pytest.raises(VisitRecordError, match="before household 'H14' was registered"):
        record_visit(
            vstore,
            {"staff_id": "S4", "household_id": "H14", "visited_at": "2026-09-10 10:00"},
            author="t",
            now=NOW,
        )
    with pytest.raises(VisitRecordError, match="not in a published plan"):
        rec(household_id="H99")
    with pytest.raises(VisitRecordError, match="outcome 'great'"):
        rec(outcome="great")
    # the recorder's unit: a grid-001 key cannot record in grid 002
    with pytest.raises(VisitScopeError, match="outside grid_worker"):
        record_visit(
            vstore,
            {"staff_id": "S4", "household_id": "H09", "visited_at": "2026-09-10 10:00"},
            author="t",
            now=NOW,
            actor=Actor("w", "grid_worker", G1),
        )
    assert counts(vstore) == (0, 0)
    ok = record_visit(
        vstore,
        {"staff_id": "S4", "household_id": "H14", "visited_at": "2026-09-15 10:00"},
        author="t",
        now=NOW,
    )
    assert ok["grid_code"] == G2


def test_scopes(vstore):
    assert visible_grids(vstore) == [G1, G2]
    assert visible_grids(vstore, Actor("c", "community", "C1")) == [G1, G2]
    assert visible_grids(vstore, Actor("s", "subdistrict", "320104001")) == [G1, G2]
    assert visible_grids(vstore, Actor("w", "grid_worker", G2)) == [G2]
    for who in (Actor("v", "viewer"), Actor("d", "department", "城管")):
        with pytest.raises(VisitScopeError, match="personal data"):
            due_list(vstore, grid=G1, month="2026-09", author="t", actor=who)
        with pytest.raises(VisitScopeError):
            list_visits(vstore, author="t", actor=who)
    with pytest.raises(VisitScopeError, match="outside grid_worker"):
        due_list(vstore, grid=G1, month="2026-09", author="t", actor=Actor("w", "grid_worker", G2))
    # the register holds counts only: a viewer reads it
    assert grid_register(vstore, actor=Actor("v", "viewer"), header="code")[
        "grid_code"
    ].tolist() == [G1, G2]


def test_day_route(vstore):
    record_visit(
        vstore,
        {"staff_id": "S1", "household_id": "H01", "visited_at": "2026-09-10 10:00"},
        author="t",
        now=NOW,
    )
    r = day_route(vstore, staff_id="S1", date="2026-09-20", author="t")
    d = r.to_dict()
    assert [s["building_id"] for s in d["stops"]] == ["B1", "B3", "B2"]
    assert [s["household_ids"] for s in d["stops"]] == [["H02"], [], ["H05"]]
    assert (d["total_m"], d["list_order_m"], d["lower_bound_m"]) == (650.0, 650.0, 620.0)
    assert d["home"] is True and d["staff_name"] == "张伟"
    assert [s["cum_m"] for s in d["stops"]] == [0.0, 230.0, 390.0]
    assert 119 < d["stops"][0]["lon"] < 121
    # at most two stops: the first by period end then id
    assert len(day_route(vstore, staff_id="S1", date="2026-09-20", author="t", limit=2).stops) == 2
    # a worker with nothing due: an empty route, not an error
    empty = day_route(vstore, staff_id="S2", date="2026-09-20", author="t").to_dict()
    assert (empty["stops"], empty["total_m"]) == ([], 0.0)
    with pytest.raises(NotFoundError, match="holds no post"):
        day_route(vstore, staff_id="S99", date="2026-09-20", author="t")
    with pytest.raises(VisitScopeError):
        day_route(
            vstore,
            staff_id="S1",
            date="2026-09-20",
            author="t",
            actor=Actor("w", "grid_worker", G2),
        )


def test_register(vstore):
    for hh, outcome in (("H01", "visited"), ("H05", "not_home"), ("H06", "visited")):
        record_visit(
            vstore,
            {
                "staff_id": "S2",
                "household_id": hh,
                "visited_at": "2026-09-10 10:00",
                "outcome": outcome,
            },
            author="t",
            now=NOW,
        )
    reg = grid_register(vstore, as_of="2026-09-30", header="code")
    assert reg[
        ["grid_code", "households", "persons", "must_visit", "n_organisation"]
    ].values.tolist() == [
        [G1, 8, 19, 3, 1],
        [G2, 6, 11, 3, 0],
    ]
    assert reg["visited"].tolist() == [2, 0]
    assert reg["share_visited"].tolist()[0] == 0.25
    assert reg["share_must_visit_visited"].tolist()[0] == pytest.approx(0.3333)
    zh = grid_register(vstore, grids=[G2], as_of="2026-09-30", header="zh")
    assert list(zh.columns[:4]) == ["网格编码", "网格名称", "社区", "户数"]
    with pytest.raises(NotFoundError):
        grid_register(vstore, grids=["320104001001999"])


def test_due_lists_follow_a_redraw(vstore):
    record_visit(
        vstore,
        {"staff_id": "S1", "household_id": "H05", "visited_at": "2026-09-10 10:00"},
        author="t",
        now=NOW,
    )
    plan = _example().plan

    def to_g2(d):  # building B2 (H05–H08) moves to grid 002
        return d.assign(grid_code=d["grid_code"].where(d["building_id"] != "B2", G2))

    new = plan.replace(buildings=to_g2(plan.buildings), households=to_g2(plan.households))
    rec = save_plan(vstore, new, author="t", status="published")
    assert rec.id == 2
    st2, due2 = status(vstore, G2)
    assert st2 == {"H05": "done", "H09": "due", "H10": "due", "H11": "due"}
    assert due2.loc[due2["household_id"] == "H05", "staff_id"].item() == "S4"
    assert "H05" not in status(vstore, G1)[0]
    moved = redraw_visits(
        vstore, old_plan_id=1, new_plan_id=2, month="2026-09", author="t", as_of=NOW
    )
    m = moved[moved["moved"]]
    assert m[
        [
            "household_id",
            "previous_grid_code",
            "grid_code",
            "previous_staff_id",
            "staff_id",
            "status",
        ]
    ].values.tolist() == [["H05", G1, G2, "S1", "S4", "done"]]
    # S1 may no longer record H05; S4 may
    with pytest.raises(VisitScopeError):
        record_visit(
            vstore,
            {"staff_id": "S1", "household_id": "H06", "visited_at": "2026-09-11 10:00"},
            author="t",
            now=NOW,
        )
