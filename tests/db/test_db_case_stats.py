"""Performance figures in SQL (gridmap.db.case_stats) equal the pandas ones (SQLite, PostGIS)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from gridmap.cases import Actor, Handler, case_stats, synth_cases, workload
from gridmap.db import save_layers, save_plan
from gridmap.db.case_stats import store_case_stats, store_workload
from gridmap.db.cases import act, import_cases
from gridmap.errors import InputError, ScopeError

NOW = "2026-12-10 09:00"
ADMIN = Actor("a", "admin")


@pytest.fixture(scope="module")
def sample():
    from gridmap.datasets import get_path
    from gridmap.io import read_layers
    from gridmap.partition import partition
    from gridmap.staffing import assign_staff
    from gridmap.validation import validate_layers

    layers, _ = validate_layers(read_layers(get_path("sample")))
    plan = partition(layers, seed=0)
    return layers, assign_staff(plan, layers.staff).to_plan(plan)


@pytest.fixture(scope="module")
def tickets(sample):
    frame = synth_cases(sample[1], n=36, start="2026-11-01", days=30, seed=5)
    return frame.drop(columns=["true_grid", "resolve_due", "replied_at", "late"])


def _step(store, cid, action, at, **kw):
    return act(store, cid, action, actor=ADMIN, author="t", expected_version=None, at=at, **kw)


@pytest.fixture
def handled(store, sample, tickets):
    """36 stored cases, handled six ways (on time, late, reopened, open, rejected, untouched)."""
    layers, plan = sample
    save_layers(store, layers, author="setup")
    save_plan(store, plan, author="setup", status="published")
    res = import_cases(store, tickets, author="t")
    rec = tickets["received_at"].reset_index(drop=True)
    for i, cid in enumerate(res.created):
        t0 = rec[i].to_pydatetime()
        kind = i % 6
        if kind == 5:
            continue  # untouched: received only
        if kind == 4:
            _step(store, cid, "reject", t0 + dt.timedelta(minutes=30), reason="重复")
            continue
        grid = _step(store, cid, "accept", t0 + dt.timedelta(hours=1 + i % 5)).case.grid_code
        co = [Handler(f"D{i % 2}", "department", lead=False)] if i % 3 == 0 else []
        _step(
            store,
            cid,
            "dispatch",
            t0 + dt.timedelta(hours=2 + i % 5),
            handler=Handler(grid, "grid", person=f"W{i % 4}"),
            co_handlers=co,
        )
        _step(store, cid, "start", t0 + dt.timedelta(hours=3 + i % 5))
        if kind == 3:
            continue  # still in progress
        days = {0: 1 + i % 3, 1: 9 + i % 4, 2: 2}[kind]
        reply = t0 + dt.timedelta(days=days)
        _step(store, cid, "reply", reply, note="已处理")
        sat = ("satisfied", "fairly_satisfied", "unsatisfied")[i % 3]
        _step(store, cid, "callback", reply + dt.timedelta(hours=2), satisfaction=sat)
        if kind == 2:
            _step(store, cid, "reopen", reply + dt.timedelta(days=1), reason="没修好")
        elif sat != "unsatisfied":
            _step(store, cid, "close", reply + dt.timedelta(days=1))
    return store


def _tables(store):
    with store.engine.connect() as conn:
        cases = pd.read_sql(
            "SELECT id AS case_id, grid_code, community_id, subdistrict, category, policy, "
            "status, received_at, due_at, satisfaction, reopened FROM cases",
            conn,
        )
        log = pd.read_sql("SELECT case_id, at, to_state FROM case_log", conn)
        handlers = pd.read_sql("SELECT case_id, kind, unit, person FROM case_handlers", conn)
    return cases, log, handlers


def test_sql_equals_pandas(handled, sample):
    cases, log, handlers = _tables(handled)
    grids = sample[1].grids[["grid_code", "community_id", "households"]].copy()
    grids["subdistrict"] = "320104001"
    for by in ("grid", "community", "subdistrict", "department", "staff"):
        sql = store_case_stats(handled, by=by, month="2026-11", now=NOW)
        mem = case_stats(
            cases, log, by=by, month="2026-11", now=NOW, handlers=handlers, households=grids
        )
        assert len(sql) > 0
        if by in ("grid", "community"):
            assert int(sql["received"].sum()) == 36
        pd.testing.assert_frame_equal(sql, mem, check_dtype=False, check_exact=False, rtol=1e-9)


def test_figures_make_sense(handled):
    t = store_case_stats(handled, by="community", month="2026-11", now=NOW)
    total = t[["received", "open", "overdue", "due", "on_time", "replied", "reopened"]].sum()
    assert total["received"] == 36
    # 6 of each kind: 6 rejected, 6 reopened, 18 replied at least once
    assert total["reopened"] == 6 and total["replied"] == 18
    assert total["on_time"] <= total["due"] <= 36 - 6
    assert (t["per_1000_households"] > 0).all()
    cat = store_case_stats(handled, by="community", month="2026-11", now=NOW, category="noise")
    assert 0 < cat["received"].sum() < 36
    assert len(store_case_stats(handled, month="2026-10", now=NOW)) == 0


def test_scope(handled, sample):
    plan = sample[1]
    mine = plan.grids["community_id"].iloc[0]
    other_grid = plan.grids.loc[plan.grids["community_id"] != mine, "grid_code"].iloc[0]
    own_grid = plan.grids.loc[plan.grids["community_id"] == mine, "grid_code"].iloc[0]
    boss = Actor("c", "community", mine)
    t = store_case_stats(handled, by="grid", month="2026-11", now=NOW, actor=boss)
    assert set(t["unit"]) <= set(plan.grids.loc[plan.grids["community_id"] == mine, "grid_code"])
    assert len(t) > 0
    assert len(store_case_stats(handled, grid=own_grid, month="2026-11", actor=boss)) <= 1
    with pytest.raises(ScopeError, match="outside your key's unit"):
        store_case_stats(handled, grid=other_grid, month="2026-11", actor=boss)
    with pytest.raises(ScopeError, match="not by=subdistrict"):
        store_case_stats(handled, by="subdistrict", month="2026-11", actor=boss)
    worker = Actor("w", "grid_worker", own_grid)
    with pytest.raises(ScopeError, match="not by=community"):
        store_case_stats(handled, by="community", month="2026-11", actor=worker)
    w = store_case_stats(handled, by="grid", month="2026-11", now=NOW, actor=worker)
    assert set(w["unit"]) <= {own_grid}


def test_workload_equals_core(handled, sample):
    plan = sample[1]
    cases, _, _ = _tables(handled)
    sql = store_workload(handled, month="2026-11")
    mem = workload(cases, plan.assignments, grids=plan.grids, month="2026-11")
    pd.testing.assert_frame_equal(sql, mem, check_dtype=False)
    assert len(sql) == len(plan.grids) and int(sql["cases"].sum()) == 36
    strict = store_workload(handled, month="2026-11", factor=1.0)
    assert strict["far_above"].sum() >= sql["far_above"].sum()
    mine = plan.grids["community_id"].iloc[0]
    own = store_workload(handled, month="2026-11", actor=Actor("c", "community", mine))
    assert set(own["community_id"]) == {mine}
    with pytest.raises(InputError, match="needs a period"):
        store_workload(handled)


def test_a_reply_at_the_deadline_is_on_time_to_the_microsecond(store, sample, tickets):
    """Times are read exactly (PostgreSQL: integer microseconds): due vs due + 1 µs."""
    layers, plan = sample
    save_layers(store, layers, author="setup")
    save_plan(store, plan, author="setup", status="published")
    res = import_cases(store, tickets.head(2), author="t")
    cases, _, _ = _tables(store)
    due = pd.to_datetime(cases.set_index("case_id")["due_at"], utc=True, format="ISO8601")
    for k, cid in enumerate(res.created):
        t0 = pd.Timestamp(tickets["received_at"].iloc[k]).to_pydatetime()
        grid = _step(store, cid, "accept", t0 + dt.timedelta(hours=1)).case.grid_code
        handler = Handler(grid, "grid", person="W1")
        _step(store, cid, "dispatch", t0 + dt.timedelta(hours=2), handler=handler)
        _step(store, cid, "start", t0 + dt.timedelta(hours=3))
        reply = due[cid].to_pydatetime() + dt.timedelta(microseconds=k)  # k=1: 1 µs late
        _step(store, cid, "reply", reply, note="已处理")
        _step(store, cid, "callback", reply + dt.timedelta(hours=1), satisfaction="satisfied")
        _step(store, cid, "close", reply + dt.timedelta(days=1))
    t = store_case_stats(store, by="subdistrict", now=NOW)
    assert int(t["due"].sum()) == 2 and int(t["on_time"].sum()) == 1
    cases, log, handlers = _tables(store)
    mem = case_stats(cases, log, by="subdistrict", now=NOW, handlers=handlers)
    assert int(mem["on_time"].sum()) == 1
