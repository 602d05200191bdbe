"""Cases in the store (gridmap.db.cases), on SQLite and PostGIS."""

from __future__ import annotations

import io
import threading

import pandas as pd
import pytest
import sqlalchemy as sa

from gridmap.cases import Actor, synth_cases
from gridmap.db import save_plan
from gridmap.db.audit import list_audit
from gridmap.db.cases import (
    act,
    calendar_status,
    case_log,
    get_case,
    import_cases,
    list_cases,
    load_calendar,
    reroute_cases,
    sweep_cases,
)
from gridmap.errors import ConflictError, RowsError, ScopeError, TransitionError

NOW = "2026-12-31 12:00"
DISPATCHER = Actor("d1", "dispatcher")


@pytest.fixture(scope="module")
def year(sample):
    return synth_cases(sample[1], n=1500, seed=3)


def tickets(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["true_grid", "resolve_due", "replied_at", "late"])


def test_synthetic_year_overdue_and_sweep(city, year):
    res = import_cases(city, tickets(year), author="t")
    assert len(res.created) == len(year) and res.unlocated == 0
    now = pd.Timestamp(NOW, tz="Asia/Shanghai")
    expected = int((year["resolve_due"] < now).sum())  # independent: the generator's deadlines
    _, total = list_cases(city, overdue=True, now=NOW, limit=1)
    assert total == expected
    rows, _ = list_cases(city, limit=None)
    placed = {r["ticket"]: r["grid_code"] for r in rows}
    assert [placed[t] for t in year["ticket_no"]] == year["true_grid"].tolist()
    first = sweep_cases(city, now=NOW)
    assert first.written == len(first.events) > 0
    overdue = first.events[
        (first.events["kind"] == "overdue") & (first.events["clock"] == "resolve")
    ]
    assert len(overdue) == expected
    assert sweep_cases(city, now=NOW).written == 0  # idempotent


def test_bad_file_stores_nothing_and_lists_lines(city, year):
    t = tickets(year.head(6)).astype(object)
    t.loc[1, "category"] = "nope"
    t.loc[4, "lon"], t.loc[4, "lat"] = t.loc[4, "lat"], t.loc[4, "lon"]
    with pytest.raises(RowsError, match="nothing was stored") as err:
        import_cases(city, t, author="t")
    assert [line for line, _ in err.value.rows] == [3, 6]
    assert "swapped" in err.value.rows[1][1]
    assert list_cases(city)[1] == 0
    res = import_cases(city, t, author="t", skip_bad=True)
    assert len(res.created) == 4 and [ln for ln, _ in res.rejected] == [3, 6]


def test_reimport_is_idempotent_and_conflicts(city, year):
    t = tickets(year.head(20))
    assert len(import_cases(city, t, author="t").created) == 20
    again = import_cases(city, t, author="t")
    assert again.created == [] and len(again.unchanged) == 20
    assert "nothing changed" in again.summary()
    changed = t.copy()
    changed.loc[0, "description"] = "另一件事"
    with pytest.raises(RowsError, match="already stored as case") as err:
        import_cases(city, changed, author="t")
    assert err.value.conflict
    assert list_cases(city)[1] == 20


def test_gbk_csv_and_xlsx(city, year):
    t = tickets(year.head(5)).copy()
    t["received_at"] = t["received_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    zh = t.rename(
        columns={
            "ticket_no": "工单编号",
            "received_at": "来电时间",
            "lon": "经度",
            "lat": "纬度",
            "crs": "坐标系",
            "category": "诉求类别",
            "description": "诉求内容",
            "source": "来源",
            "reporter_name": "联系人",
            "reporter_phone": "联系电话",
            "address": "地址",
        }
    )
    data = zh.to_csv(index=False).encode("gbk")
    res = import_cases(city, data, author="t")
    assert len(res.created) == 5
    buf = io.BytesIO()
    more = tickets(year.iloc[5:9]).copy()
    more["received_at"] = more["received_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    more.rename(columns={"lon": "X坐标"}).to_excel(buf, index=False)
    res = import_cases(city, buf.getvalue(), author="t", mapping=["lon=X坐标"])
    assert len(res.created) == 4
    rec = get_case(city, res.created[0], actor=DISPATCHER, author="t")
    assert rec.case.grid_code == year["true_grid"].iloc[5]


def test_unlocated_gets_the_nearest_grid(city, year):
    t = tickets(year.head(1)).copy()
    t["lon"] = t["lon"] + 0.2  # ~20 km east: outside every grid, still in China
    res = import_cases(city, t, author="t")
    rec = get_case(city, res.created[0])
    assert rec.case.status == "unlocated" and rec.case.grid_code is None
    assert rec.suggested_grid is not None


def test_concurrent_actions_one_wins(city, year):
    res = import_cases(city, tickets(year.head(1)), author="t")
    cid = res.created[0]
    outcome: list[str] = []
    barrier = threading.Barrier(2)

    def go() -> None:
        barrier.wait()
        try:
            act(city, cid, "accept", actor=DISPATCHER, author="d1", expected_version=1)
            outcome.append("won")
        except ConflictError:
            outcome.append("conflict")

    threads = [threading.Thread(target=go) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcome) == ["conflict", "won"]
    rec = get_case(city, cid)
    assert rec.case.version == 2 and [e["action"] for e in case_log(city, cid)] == [
        "intake",
        "accept",
    ]


def test_sweeps_at_once_write_each_event_once_and_escalate_once(city, year):
    """A sweep that finds some of its events written by another one meanwhile.

    Sweep A (at 08:00: warning, overdue) holds its transaction open while sweep B (at
    12:00: the same, 催办 and the escalation to the community) starts: on PostgreSQL B's
    write waits for A's keys and, once A commits, skips them (the fast path's COPY is
    refused and the sweep falls back); on SQLite B waits for A's write lock. B writes only
    催办 and the escalation, raises the level once and logs it once.
    """
    t = tickets(year.head(1)).copy()
    t["ticket_no"] = "ESC-2"
    t["source"] = "hotline"
    t["category"] = "noise"
    t["urgency"] = "ordinary"
    t["received_at"] = pd.Timestamp("2026-11-02 10:00", tz="Asia/Shanghai")
    (case_id,) = import_cases(city, t, author="t").created
    result: list[int] = []
    errors: list[BaseException] = []

    b_pids: list[int] = []

    def sweep_b() -> None:
        try:
            result.append(sweep_cases(city, now="2026-11-06 12:00").written)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def note_pid(dbapi_conn, _record, _proxy) -> None:  # the backend B's sweep checks out
        if threading.current_thread().name == "sweep-b" and city.backend == "postgresql":
            b_pids.append(dbapi_conn.info.backend_pid)

    sa.event.listen(city.engine, "checkout", note_pid)
    with city.session(write=True) as s:
        first = sweep_cases(s, now="2026-11-06 08:00")
        assert first.written == 2  # warning, overdue
        b = threading.Thread(target=sweep_b, name="sweep-b")
        b.start()
        if city.backend == "postgresql":  # hold A until B waits on its keys
            # (a loaded machine may take a while to bring B to its insert: wait up to 5 min;
            # each poll in its own transaction, as pg_stat_activity is read once per transaction)
            state = None
            with city.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for _ in range(6000):
                    if b_pids:
                        state = conn.exec_driver_sql(
                            "SELECT wait_event_type, wait_event, state, query "
                            "FROM pg_stat_activity WHERE pid = %(pid)s",
                            {"pid": b_pids[-1]},
                        ).first()
                        if state is not None and state[0] == "Lock":
                            break
                    if not b.is_alive():
                        break
                    threading.Event().wait(0.05)
            assert not errors, f"the second sweep failed: {errors[0]!r}"
            assert state is not None and state[0] == "Lock", (
                "the second sweep never waited for the first one's keys: "
                f"alive={b.is_alive()} written={result} backend={b_pids} last seen={state}"
            )
        else:
            b.join(0.3)
    sa.event.remove(city.engine, "checkout", note_pid)
    b.join()
    assert not errors, f"the second sweep failed: {errors[0]!r}"
    assert result == [2]  # 催办 and the escalation only
    rec = get_case(city, case_id, actor=DISPATCHER)
    assert rec.case.level == "community"
    log = case_log(city, case_id, actor=DISPATCHER)
    assert [e["action"] for e in log].count("auto_escalate") == 1
    assert rec.case.version == log[-1]["version"]
    with city.engine.connect() as conn:
        kinds = conn.exec_driver_sql(
            "SELECT kind, count(*) FROM case_events GROUP BY kind ORDER BY kind"
        ).all()
    assert [tuple(k) for k in kinds] == [
        ("escalate", 1),
        ("overdue", 1),
        ("remind", 1),
        ("warning", 1),
    ]
    assert sweep_cases(city, now="2026-11-06 12:00").written == 0


def test_sweep_decides_anew_for_cases_changed_while_it_ran(city, year, monkeypatch):
    """PostgreSQL: the sweep reads the open cases without locking them; a case an action
    changes before the sweep raises its level is read again, locked, and decided anew.

    Both cases are due to go to the community. While the sweep writes its events, A is
    escalated by hand to the sub-district (it keeps that level: no ``auto_escalate``) and
    B is accepted (it is still raised, after the acceptance, once).
    """
    if city.backend != "postgresql":
        pytest.skip(
            "SQLite's sweep holds the write lock from its first read: nothing comes between"
        )
    import gridmap.db.cases.sweep as sweep_mod

    t = tickets(year.head(2)).copy()
    t["ticket_no"] = ["RACE-A", "RACE-B"]
    t["source"], t["category"], t["urgency"] = "hotline", "noise", "ordinary"
    t["received_at"] = pd.Timestamp("2026-11-02 10:00", tz="Asia/Shanghai")
    a, b = import_cases(city, t, author="t").created
    admin = Actor("root", "admin")
    grid = get_case(city, a).case.grid_code
    original = sweep_mod._insert_events

    def insert_then_act(s, events, stamp):  # the actions commit on their own connections
        written = original(s, events, stamp)
        act(city, a, "accept", actor=admin, author="root", expected_version=1)
        act(
            city,
            a,
            "dispatch",
            actor=admin,
            author="root",
            expected_version=2,
            handler=f"grid:{grid}",
        )
        act(city, a, "start", actor=admin, author="root", expected_version=3)
        act(city, a, "escalate", actor=admin, author="root", expected_version=4, reason="大事")
        act(city, a, "escalate", actor=admin, author="root", expected_version=5, reason="更大")
        act(city, b, "accept", actor=admin, author="root", expected_version=1)
        return written

    monkeypatch.setattr(sweep_mod, "_insert_events", insert_then_act)
    swept = sweep_cases(city, now="2026-11-06 12:00")
    assert (swept.events["kind"] == "escalate").sum() == 2
    rec_a, rec_b = (get_case(city, c, actor=DISPATCHER) for c in (a, b))
    assert (rec_a.case.level, rec_a.case.version) == ("subdistrict", 6)
    assert (rec_b.case.level, rec_b.case.version) == ("community", 3)
    log_a, log_b = (case_log(city, c, actor=DISPATCHER) for c in (a, b))
    assert "auto_escalate" not in [e["action"] for e in log_a]
    assert [(e["version"], e["action"]) for e in log_b][-2:] == [
        (2, "accept"),
        (3, "auto_escalate"),
    ]


def test_flow_scopes_and_personal_data_audit(city, year):
    cid = import_cases(city, tickets(year.head(1)), author="t").created[0]
    grid = get_case(city, cid).case.grid_code
    with pytest.raises(TransitionError, match="allowed: accept"):
        act(city, cid, "close", actor=DISPATCHER, author="d1", expected_version=1)
    act(city, cid, "accept", actor=DISPATCHER, author="d1", expected_version=1)
    act(
        city,
        cid,
        "dispatch",
        actor=DISPATCHER,
        author="d1",
        expected_version=2,
        handler=f"grid:{grid}",
    )
    worker = Actor("w", "grid_worker", grid)
    other = Actor("x", "grid_worker", "999")
    with pytest.raises(ScopeError):
        act(city, cid, "start", actor=other, author="x", expected_version=3)
    with pytest.raises(ScopeError):
        get_case(city, cid, actor=other, author="x")
    act(city, cid, "start", actor=worker, author="w", expected_version=3)
    rec = act(city, cid, "reply", actor=worker, author="w", expected_version=4, note="已处理")
    assert rec.case.status == "replied" and rec.personal
    assert list_cases(city, actor=worker)[1] == 1 and list_cases(city, actor=other)[1] == 0
    viewer = get_case(city, cid, actor=Actor("v", "viewer"), author="v")
    assert viewer.case.reporter_phone.count("*") == 4 and not viewer.personal
    reads = list_audit(city, entity="case", entity_id=cid)
    assert (reads["action"] == "read.personal").sum() >= 2


def test_log_is_append_only(city, year):
    import_cases(city, tickets(year.head(1)), author="t")
    with city.engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text("UPDATE case_log SET note = 'x'"))
        conn.rollback()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text("DELETE FROM case_log"))
        conn.rollback()


def test_reroute_after_publish(city, sample, year):
    layers, plan = sample
    ids = import_cases(city, tickets(year.head(30)), author="t").created
    assert reroute_cases(city, author="t") == 0
    shifted = plan.grids.copy()
    codes = shifted["grid_code"].tolist()
    shifted["grid_code"] = codes[1:] + codes[:1]  # every grid renamed: a new plan
    from dataclasses import replace

    save_plan(city, replace(plan, grids=shifted), author="t", status="published")
    flagged = reroute_cases(city, author="t")
    assert flagged == 30
    rec = get_case(city, ids[0])
    assert rec.case.grid_code == year["true_grid"].iloc[0]  # frozen
    assert rec.reroute_grid is not None and rec.reroute_grid != rec.case.grid_code


def test_calendar_load_recomputes_provisional(city, sample):
    t = tickets(synth_cases(sample[1], n=10, start="2027-09-20", days=5, seed=1))
    import_cases(city, t, author="t")
    assert calendar_status(city, [2027]).attrs["open_provisional"] == 10
    notice = pd.DataFrame(
        {
            "日期": [f"2027-10-0{d}" for d in range(1, 8)] + ["2027-09-26"],
            "类型": ["休"] * 7 + ["班"],
        }
    )
    out = load_calendar(city, notice, author="t", year=2027)
    assert out["recomputed"] == 10
    st = calendar_status(city, [2027])
    assert bool(st["official"].iloc[0]) and st.attrs["open_provisional"] == 0
    assert (list_audit(city, entity="case")["action"] == "deadline.recompute").sum() == 10
    rows, _ = list_cases(city, limit=None)
    for row in rows:  # and each case's 办理轨迹 says so, with the deadlines before and after
        last = case_log(city, row["id"])[-1]
        assert (last["action"], last["role"], last["to"]) == ("recompute", "system", "received")
        assert last["data"]["before"]["resolve"][1] is True  # was provisional
        assert last["data"]["after"]["resolve"][1] is False


def test_sweep_escalation_raises_the_level_and_logs_it(city, year):
    from gridmap.cases import LogEntry, replay

    t = tickets(year.head(1)).copy()
    t["ticket_no"] = "ESC-1"
    t["source"] = "hotline"
    t["category"] = "noise"  # 3 working days under the 12345 policy
    t["urgency"] = "ordinary"
    t["received_at"] = pd.Timestamp("2026-11-02 10:00", tz="Asia/Shanghai")  # a Monday
    (case_id,) = import_cases(city, t, author="t").created
    assert get_case(city, case_id, actor=DISPATCHER).case.level == "grid"
    # due Thu 11-05 23:59:59; escalation to the community 1 working day later at 09:00
    assert sweep_cases(city, now="2026-11-06 08:00").written > 0  # overdue: still the grid's
    assert get_case(city, case_id, actor=DISPATCHER).case.level == "grid"
    sweep_cases(city, now="2026-11-06 12:00")
    rec = get_case(city, case_id, actor=DISPATCHER)
    assert rec.case.level == "community"
    assert sweep_cases(city, now="2026-11-06 12:00").written == 0  # idempotent, no new line
    # … and to the sub-district 3 working days after the due day (Tue 11-10, 09:00)
    sweep_cases(city, now="2026-11-10 08:59")
    assert get_case(city, case_id, actor=DISPATCHER).case.level == "community"
    sweep_cases(city, now="2026-11-10 09:00")
    rec = get_case(city, case_id, actor=DISPATCHER)
    assert rec.case.level == "subdistrict" and rec.case.status == "received"
    log = case_log(city, case_id, actor=DISPATCHER)
    lines = [(e["action"], e["data"].get("level"), e["role"]) for e in log]
    assert lines[-2:] == [
        ("auto_escalate", "community", "system"),
        ("auto_escalate", "subdistrict", "system"),
    ]
    assert [e["version"] for e in log] == list(range(1, len(log) + 1))
    assert rec.case.version == log[-1]["version"]  # the ETag moved with the level
    entries = [
        LogEntry(
            str(case_id),
            e["version"],
            e["at"],
            e["actor"],
            e["role"],
            e["unit"],
            e["action"],
            e["from"],
            e["to"],
            e["note"],
            e["data"],
        )
        for e in log
    ]
    assert entries[0].from_state is None  # the intake line
    assert replay(entries[1:]) == "received"  # system lines keep the state


def test_import_flags_likely_duplicates_like_the_rule(city, year):
    """Every import searches duplicates (no size cap): checked pair by pair, independently.

    The list keeps the nearest 5 with the count of all; ``get_case`` lists every one.
    """
    import numpy as np
    import pyproj

    t = tickets(year.head(400)).copy()
    t.loc[1:40, ["lon", "lat", "category"]] = t.loc[0, ["lon", "lat", "category"]].to_numpy()
    res = import_cases(city, t, author="t")
    rows, _ = list_cases(city, limit=None)
    by_ticket = {r["ticket"]: r for r in rows}
    ids = {r["ticket"]: str(r["id"]) for r in rows}
    zone = int((float(t["lon"].mean()) + 180) // 6) + 1
    x, y = pyproj.Transformer.from_crs(4326, 32600 + zone, always_xy=True).transform(
        t["lon"].to_numpy(float), t["lat"].to_numpy(float)
    )
    when = pd.to_datetime(t["received_at"]).to_numpy()
    cat, tick = t["category"].to_numpy(), t["ticket_no"].to_numpy()
    flagged = deep = 0
    for a in range(len(t)):
        hits = []
        for b in range(len(t)):
            d = float(np.hypot(x[a] - x[b], y[a] - y[b]))
            gap = abs(when[a] - when[b]) / np.timedelta64(1, "s")
            earlier = when[b] < when[a] or (when[b] == when[a] and ids[tick[b]] < ids[tick[a]])
            if a != b and cat[a] == cat[b] and d <= 50 and gap <= 7 * 86400 and earlier:
                hits.append((d, ids[tick[b]]))
        want = [i for _, i in sorted(hits)]
        listed = by_ticket[tick[a]]
        # stored and listed: the nearest 5 and the count; opened: every one, by query
        assert listed["duplicate_of"] == want[:5], tick[a]
        assert listed["duplicate_count"] == len(want), tick[a]
        if len(want) > 5:
            opened = get_case(city, listed["id"])
            assert opened.duplicate_of == want, tick[a]
            assert opened.to_dict()["duplicate_count"] == len(want)
            deep += 1
        flagged += bool(want)
    assert flagged >= 20 and deep >= 20 and len(res.created) == 400


def test_large_import_refreshes_planner_statistics(city, year, monkeypatch):
    """After a large import the planner knows the grid index beats the status index."""
    monkeypatch.setattr("gridmap.db.cases.intake._ANALYZE_AFTER", 100)
    import_cases(city, tickets(year), author="t")
    with city.engine.connect() as conn:
        if city.backend == "sqlite":
            stat = conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'cases'")
            assert stat.scalar_one() > 0
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM cases WHERE status IN ('received') "
                "AND grid_code = ? ORDER BY received_at DESC, id DESC LIMIT 50",
                (year["true_grid"].iloc[0],),
            ).all()
            assert "ix_cases_grid_status_received" in " ".join(str(r[-1]) for r in plan)
        else:
            analyzed = conn.exec_driver_sql(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'cases' "
                "AND schemaname = current_schema()"
            ).scalar_one()
            assert analyzed is not None


def test_list_total_on_every_page_and_past_the_end(city, year):
    """Every page carries the total (counted apart when the page does not tell it)."""
    import_cases(city, tickets(year.head(120)), author="t")
    grid = year["true_grid"].head(120).value_counts().index[0]
    want = int((year["true_grid"].head(120) == grid).sum())
    pages = [list_cases(city, grid=grid, limit=5, offset=o) for o in (0, 5, want - 1, want + 10)]
    assert [t for _, t in pages] == [want] * 4
    assert [len(r) for r, _ in pages] == [min(5, want), min(5, max(want - 5, 0)), 1, 0]
    assert list_cases(city, grid="no-such-grid") == ([], 0)
    everything, total = list_cases(city, grid=grid, limit=None)
    assert len(everything) == total == want


def test_full_duplicate_list_on_opening_counts_cases_open_at_intake(city, year):
    """Stored: the nearest 2 and the count; opened: all that were open when it came in.

    Eight reports of one spot an hour apart (equal distances: ordered by id); the second
    is rejected before the ninth arrives (not a candidate of the ninth), the third after
    it (still one: it was open).
    """
    base = tickets(year.head(1))
    spot = pd.concat([base] * 9, ignore_index=True)
    t0 = pd.Timestamp(spot["received_at"].iloc[0])
    spot["received_at"] = [t0 + pd.Timedelta(hours=h) for h in range(9)]
    spot["ticket_no"] = [f"DUP{h}" for h in range(9)]
    first = import_cases(city, spot.head(8), author="t", duplicate_limit=2).created
    act(city, first[1], "reject", actor=DISPATCHER, author="d1", expected_version=1, reason="dup")
    (ninth,) = import_cases(city, spot.tail(1), author="t", duplicate_limit=2).created
    act(city, first[2], "reject", actor=DISPATCHER, author="d1", expected_version=1, reason="dup")
    rows, _ = list_cases(city, limit=None)
    listed = {r["id"]: r for r in rows}
    ids = [str(i) for i in first]
    assert listed[first[7]]["duplicate_of"] == sorted(ids[:7])[:2]  # same spot: ties by id
    assert listed[first[7]]["duplicate_count"] == 7
    assert listed[ninth]["duplicate_count"] == 7  # 8 before it, one of them rejected
    assert get_case(city, first[7]).duplicate_of == sorted(ids[:7])
    opened = get_case(city, ninth)
    assert opened.duplicate_of == sorted(i for i in ids if i != ids[1])
    assert opened.to_dict()["duplicate_count"] == 7
    assert get_case(city, first[1]).duplicate_of == [ids[0]]  # ≤ 2: as stored
