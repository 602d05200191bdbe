"""The case import's bulk path (gridmap.db.cases.intake), on SQLite and PostGIS.

A large import (10,000 tickets or more) pauses the garbage collector, rebuilds the plain
indexes of a smaller ``cases`` table on SQLite and copies the log lines from the cases;
the resolve deadline lives on ``cases`` only (revision 0009). Behaviour must not change.
"""

from __future__ import annotations

import gc
import threading

import pandas as pd
import pytest
import sqlalchemy as sa

import gridmap.db.cases.intake as intake_mod
from gridmap.cases import Actor, synth_cases
from gridmap.db import Store, downgrade, save_layers, save_plan, upgrade
from gridmap.db.cases import act, case_log, get_case, import_cases, list_cases, sweep_cases
from gridmap.errors import RowsError

DISPATCHER = Actor("d1", "dispatcher")


@pytest.fixture(scope="module")
def big(sample):
    frame = synth_cases(sample[1], n=12_000, seed=5)
    return frame.drop(columns=["true_grid", "resolve_due", "replied_at", "late"])


def _indexes(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        if store.backend == "sqlite":
            q = (
                "SELECT name || ':' || sql FROM sqlite_master "
                "WHERE tbl_name = 'cases' AND sql IS NOT NULL AND type = 'index'"
            )
        else:
            q = (
                "SELECT indexname || ':' || indexdef FROM pg_indexes "
                "WHERE tablename = 'cases' AND schemaname = current_schema()"
            )
        return set(conn.exec_driver_sql(q).scalars())


def _count(store: Store, sql: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql(sql).scalar_one())


def test_large_import_writes_cases_log_and_indexes(city, big):
    before = _indexes(city)
    assert gc.isenabled()
    res = import_cases(city, big, author="bulk")
    assert gc.isenabled()  # switched back on
    assert len(res.created) == len(big) and not res.rejected
    assert _indexes(city) == before  # rebuilt as they were
    assert _count(city, "SELECT count(*) FROM case_log") == len(big)
    lines = pd.read_sql(
        "SELECT l.case_id, l.version, l.actor, l.role, l.action, l.from_state, l.to_state, "
        "l.note, l.unit, l.at, c.status, c.created_at FROM case_log AS l "
        "JOIN cases AS c ON c.id = l.case_id",
        city.engine,
    )
    assert sorted(lines["case_id"]) == sorted(res.created)
    assert (lines["version"] == 1).all() and (lines["actor"] == "bulk").all()
    assert (lines["role"] == "intake").all() and (lines["action"] == "intake").all()
    assert lines["from_state"].isna().all() and lines["note"].isna().all()
    assert lines["unit"].isna().all()
    assert (lines["to_state"] == lines["status"]).all()
    assert (lines["at"].astype(str) == lines["created_at"].astype(str)).all()
    # the resolve deadline is the case's due_at: no duplicate row
    assert _count(city, "SELECT count(*) FROM case_deadlines WHERE clock = 'resolve'") == 0
    rows, _ = list_cases(city, limit=3)
    for r in rows:
        rec = get_case(city, r["id"])
        assert rec.case.deadlines["resolve"].due.isoformat() == r["due_at"]
        assert rec.case.deadlines["resolve"].provisional == r["provisional"]
        assert case_log(city, r["id"])[0]["action"] == "intake"
    # the same tickets again: nothing changes, and it says so
    again = import_cases(city, big, author="bulk")
    assert again.created == [] and len(again.unchanged) == len(big)
    assert "nothing changed" in again.summary()
    assert _count(city, "SELECT count(*) FROM case_log") == len(big)


def test_large_import_failing_late_leaves_the_store_as_it_was(city, big, monkeypatch):
    before = _indexes(city)

    def boom(s):
        raise RuntimeError("disk full")

    monkeypatch.setattr(intake_mod, "_refresh_statistics", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        import_cases(city, big, author="bulk")
    assert gc.isenabled()
    assert _count(city, "SELECT count(*) FROM cases") == 0
    assert _count(city, "SELECT count(*) FROM case_log") == 0
    assert _count(city, "SELECT count(*) FROM case_deadlines") == 0
    assert _indexes(city) == before


@pytest.mark.parametrize("where", ["_content_hash", "duplicate_search", "_case_columns"])
def test_large_import_failing_in_or_beside_a_worker_leaves_the_store_as_it_was(
    city, big, monkeypatch, where
):
    """The content hash and the duplicate search run in worker threads: an error in one of
    them, or in this thread while one runs, is raised by the import, which stores nothing
    and leaves no thread behind."""
    before = _indexes(city)

    def boom(*args, **kwargs):
        raise RuntimeError("worker failed")

    if where == "duplicate_search":  # the search itself fails (the store is read before)
        monkeypatch.setattr(intake_mod, where, lambda *args, **kwargs: boom)
    else:
        monkeypatch.setattr(intake_mod, where, boom)
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="worker failed"):
        import_cases(city, big, author="bulk")
    assert threading.active_count() == threads
    assert gc.isenabled()
    assert _count(city, "SELECT count(*) FROM cases") == 0
    assert _count(city, "SELECT count(*) FROM case_log") == 0
    assert _count(city, "SELECT count(*) FROM case_deadlines") == 0
    assert _indexes(city) == before
    monkeypatch.undo()
    assert len(import_cases(city, big.head(50), author="bulk").created) == 50


def test_repeated_numbers_in_one_table(city, big):
    t = big.head(4).reset_index(drop=True)
    same = pd.concat([t, t.iloc[[1]]], ignore_index=True)  # line 6 repeats line 3
    res = import_cases(city, same, author="t")
    assert len(res.created) == 4 and not res.rejected and not res.unchanged
    other = pd.concat([big.iloc[4:7], big.iloc[[4]]], ignore_index=True)
    other.loc[3, "description"] = "另一件事"
    with pytest.raises(RowsError, match="repeats line 2 with other content") as err:
        import_cases(city, other, author="t")
    assert err.value.conflict and [ln for ln, _ in err.value.rows] == [5]
    partial = import_cases(city, other, author="t", skip_bad=True)
    assert len(partial.created) == 3 and [ln for ln, _ in partial.rejected] == [5]
    changed = t.copy()
    changed.loc[0, "description"] = "改过的内容"
    res2 = import_cases(city, changed, author="t", skip_bad=True)
    assert res2.created == [] and len(res2.unchanged) == 3
    assert [ln for ln, _ in res2.rejected] == [2]
    assert "already stored as case" in res2.rejected[0][1]


def test_extension_keeps_one_resolve_clock(city, big):
    t = big.head(1).copy()
    t["received_at"] = pd.Timestamp("2026-09-18 10:00", tz="Asia/Shanghai")
    cid = import_cases(city, t, author="t").created[0]
    rec = get_case(city, cid)
    due = rec.case.deadlines["resolve"].due
    grid = rec.case.grid_code
    at = "2026-09-18 11:00"
    act(city, cid, "accept", actor=DISPATCHER, author="d", expected_version=1, at=at)
    act(
        city,
        cid,
        "dispatch",
        actor=DISPATCHER,
        author="d",
        expected_version=2,
        handler=f"grid:{grid}",
        at=at,
    )
    worker = Actor("w", "grid_worker", grid)
    act(city, cid, "start", actor=worker, author="w", expected_version=3, at=at)
    later = (due + pd.Timedelta(days=20)).isoformat()
    act(
        city,
        cid,
        "request_extension",
        actor=worker,
        author="w",
        expected_version=4,
        at=at,
        reason="需要采购",
        due=later,
    )
    rec = act(
        city,
        cid,
        "approve_extension",
        actor=DISPATCHER,
        author="d",
        expected_version=5,
        at=at,
        due=later,
    )
    new_due = rec.case.deadlines["resolve"].due
    assert new_due > due
    assert get_case(city, cid).case.deadlines["resolve"].due == new_due
    # the new deadline is stored on the case only, never as a resolve row
    assert _count(city, "SELECT count(*) FROM case_deadlines WHERE clock = 'resolve'") == 0
    with city.engine.connect() as conn:
        stored = conn.exec_driver_sql(f"SELECT due_at FROM cases WHERE id = {int(cid)}").scalar()
    stored = pd.Timestamp(stored)
    if stored.tzinfo is None:  # SQLite keeps UTC as naive text
        stored = stored.tz_localize("UTC")
    assert stored == pd.Timestamp(new_due)
    row, _ = list_cases(city, limit=1)
    assert row[0]["due_at"] == new_due.isoformat()
    # between the old and the new deadline: the resolve clock runs on the new one only
    swept = sweep_cases(city, now=(due + pd.Timedelta(days=1)).isoformat())
    ev = swept.events
    assert not ((ev["clock"] == "resolve") & (ev["kind"] == "overdue")).any()


def test_migration_0009_moves_the_resolve_rows(tmp_path, big, sample):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = Store.from_url(url)
    layers, plan = sample
    save_layers(store, layers, author="setup")
    save_plan(store, plan, author="setup", status="published")
    res = import_cases(store, big.head(50), author="t")
    n_due = _count(store, "SELECT count(*) FROM cases WHERE due_at IS NOT NULL")
    assert n_due == len(res.created)
    answers = _count(store, "SELECT count(*) FROM case_deadlines")
    store.close()
    downgrade(url, revision="0008")
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        resolve = conn.exec_driver_sql(
            "SELECT count(*) FROM case_deadlines AS d JOIN cases AS c ON c.id = d.case_id "
            "WHERE d.clock = 'resolve' AND d.due_at = c.due_at AND d.provisional = c.provisional"
        ).scalar_one()
    assert resolve == n_due
    upgrade(url)
    with eng.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM case_deadlines").scalar_one()
    eng.dispose()
    assert rows == answers
    store = Store.from_url(url)
    rec = get_case(store, res.created[0])
    assert "resolve" in rec.case.deadlines
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def test_migration_0010_keys_the_events_and_keeps_them(request, tmp_path, big, sample, backend):
    if backend == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'm.db'}", None
    else:
        url, schema = (
            request.getfixturevalue("postgis_url"),
            request.getfixturevalue("fresh_schema"),
        )
        upgrade(url, schema=schema)
    store = Store.from_url(url, schema=schema)
    layers, plan = sample
    save_layers(store, layers, author="setup")
    save_plan(store, plan, author="setup", status="published")
    import_cases(store, big.head(40), author="t")
    now = "2027-01-05 09:00"
    first = sweep_cases(store, now=now)
    assert first.written > 40
    store.close()

    def events() -> list[tuple]:
        eng = sa.create_engine(url)
        if schema:
            eng = eng.execution_options(schema_translate_map={None: schema})
        with eng.connect() as conn:
            if schema:
                conn.exec_driver_sql(f'SET search_path TO "{schema}", public')
            rows = conn.exec_driver_sql(
                "SELECT key, case_id, clock, kind, level, target FROM case_events ORDER BY key"
            ).all()
            cols = conn.exec_driver_sql("SELECT * FROM case_events LIMIT 1").keys()
        eng.dispose()
        return [tuple(r) for r in rows], list(cols)

    kept, cols = events()
    assert len(kept) == first.written and "id" not in cols
    downgrade(url, schema=schema, revision="0009")
    back, cols = events()
    assert back == kept and "id" in cols
    upgrade(url, schema=schema)
    again, cols = events()
    assert again == kept and "id" not in cols
    store = Store.from_url(url, schema=schema)
    assert sweep_cases(store, now=now).written == 0  # the keys still make the sweep idempotent
    store.close()
