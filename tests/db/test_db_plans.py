"""Plans ↔ store: round trip, numbering, optimistic locking, publishing, locate (both backends)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
import shapely
import sqlalchemy as sa
from dbfactories import make_layers, make_plan
from test_db_layers import snapshot

from gridmap.db import (
    Store,
    archive_plan,
    get_plan,
    list_audit,
    list_plans,
    load_plan,
    locate_sql,
    plan_history,
    publish_plan,
    published_plan,
    save_assignments,
    save_layers,
    save_plan,
    update_plan,
    update_plan_grids,
)
from gridmap.db import plans as plans_mod
from gridmap.db.models import PlanRow
from gridmap.errors import ConflictError, InputError, NotFoundError
from gridmap.partition.plan import QualityReport


@pytest.fixture
def layers():
    return make_layers(nx=2, ny=1)


@pytest.fixture
def plan(layers):
    return make_plan(layers)


def assert_plans_equal(a, b) -> None:
    assert a.crs.equals(b.crs)
    gname = a.grids.geometry.name
    pdt.assert_frame_equal(
        pd.DataFrame(a.grids.drop(columns=gname)), pd.DataFrame(b.grids.drop(columns=gname))
    )
    d = shapely.hausdorff_distance(a.grids.geometry.values, b.grids.geometry.values)
    assert float(np.max(d)) < 0.01
    pdt.assert_frame_equal(a.buildings, b.buildings)
    if a.households is None:
        assert b.households is None
    else:
        pdt.assert_frame_equal(a.households, b.households)
    if a.assignments is None:
        assert b.assignments is None
    else:
        pdt.assert_frame_equal(a.assignments, b.assignments)
    assert a.params == b.params
    assert a.report.to_dict() == b.report.to_dict()


def test_plan_roundtrip(store: Store, layers, plan) -> None:
    save_layers(store, layers, author="a")
    rec = save_plan(store, plan, author="li", name="first cut")
    assert (rec.number, rec.version, rec.status) == (1, 1, "draft")
    assert rec.community_ids == ("c0", "c1")
    assert (rec.n_grids, rec.households) == (8, int(layers.buildings["households"].sum()))
    back = load_plan(store, rec.id)
    assert_plans_equal(plan, back)
    # a plan without households, with assignments and a split building part
    staffed = plan.replace(
        households=None,
        assignments=pd.DataFrame(
            {
                "staff_id": ["s0", "s1", "s2"],
                "grid_code": ["320104001001001", "320104001001001", "320104001002003"],
                "role": ["chief", "worker", "chief"],
                "distance_m": [12.5, np.nan, 40.0],
            }
        ),
    )
    bl = staffed.buildings.copy()
    bl["part"] = bl["part"].astype(object)
    bl.loc[0, "part"] = "units 1-2"
    staffed = staffed.replace(buildings=bl)
    rec2 = save_plan(store, staffed, author="li", parent_id=rec.id)
    assert (rec2.number, rec2.parent_id) == (2, rec.id)
    assert_plans_equal(staffed, load_plan(store, rec2.id))


def test_plan_figures_are_the_grids_without_outlines(store: Store, layers, plan) -> None:
    save_layers(store, layers, author="a")
    pid = save_plan(store, plan, author="li").id
    figures, report = plans_mod.plan_figures(store, pid)
    stored = load_plan(store, pid)
    gname = stored.grids.geometry.name
    pdt.assert_frame_equal(figures, pd.DataFrame(stored.grids.drop(columns=gname)))
    assert gname not in figures.columns and len(figures) == 8
    assert figures["grid_code"].tolist()[:2] == ["320104001001001", "320104001001002"]
    assert report.to_dict() == stored.report.to_dict()
    bare = save_plan(store, plan.replace(report=None), author="li").id
    assert plans_mod.plan_figures(store, bare)[1] is None


def test_unknown_ids(store: Store, plan) -> None:
    for call in (
        lambda: load_plan(store, 99),
        lambda: plans_mod.plan_figures(store, 99),
        lambda: get_plan(store, 99),
        lambda: publish_plan(store, 99, author="x"),
        lambda: archive_plan(store, 99, author="x"),
        lambda: update_plan(store, 99, plan, author="x", expected_version=1),
        lambda: save_assignments(
            store, 99, pd.DataFrame(columns=["staff_id", "grid_code", "role"]), author="x"
        ),
        lambda: locate_sql(store, 99, 118.78, 32.05),
        lambda: plan_history(store, 99),
        lambda: save_plan(store, plan, author="x", parent_id=99),
    ):
        with pytest.raises(NotFoundError, match="no plan with id 99"):
            call()
    rec = save_plan(store, plan, author="x")
    with pytest.raises(NotFoundError, match="has no grid.*XX"):
        update_plan_grids(store, rec.id, {"XX": {"name": "a"}}, author="x", expected_version=1)
    with pytest.raises(NotFoundError, match="has no grid.*YY"):
        save_assignments(
            store,
            rec.id,
            pd.DataFrame({"staff_id": ["s"], "grid_code": ["YY"], "role": ["chief"]}),
            author="x",
        )


def test_optimistic_locking_two_sessions(store: Store, store_url, plan) -> None:
    rec = save_plan(store, plan, author="a")
    other = Store.from_url(store_url[0], schema=store_url[1])
    try:
        mine = get_plan(store, rec.id)  # both read version 1
        theirs = get_plan(other, rec.id)
        assert mine.version == theirs.version == 1
        code = plan.grids["grid_code"].iloc[0]
        done = update_plan_grids(
            other, rec.id, {code: {"name": "东区"}}, author="b", expected_version=theirs.version
        )
        assert done.version == 2
        before = snapshot(store)
        with pytest.raises(ConflictError, match="at version 2, not 1") as err:
            update_plan_grids(
                store, rec.id, {code: {"name": "西区"}}, author="a", expected_version=mine.version
            )
        assert err.value.current_version == 2
        assert snapshot(store) == before  # no change, no audit row
        with pytest.raises(ConflictError, match="at version 2, not 1"):
            update_plan(store, rec.id, plan, author="a", expected_version=1)
        with pytest.raises(ConflictError) as err:
            publish_plan(store, rec.id, author="a", expected_version=1)
        assert err.value.current_version == 2
        # reload and retry works
        again = update_plan_grids(
            store, rec.id, {code: {"name": "西区"}}, author="a", expected_version=2
        )
        assert again.version == 3
        assert load_plan(other, rec.id).grids["name"].iloc[0] == "西区"
    finally:
        other.close()


def test_concurrent_sessions_postgres_row_lock(store: Store, plan) -> None:
    """Two open transactions: the second waits for the first, then sees a stale version."""
    rec = save_plan(store, plan, author="a")
    code = plan.grids["grid_code"].iloc[0]
    with store.session(write=True) as s1:
        update_plan_grids(s1, rec.id, {code: {"locked": False}}, author="a", expected_version=1)
        if store.backend == "postgresql":
            import threading

            errors: list[BaseException] = []

            def other() -> None:
                try:
                    update_plan_grids(
                        store, rec.id, {code: {"locked": True}}, author="b", expected_version=1
                    )
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            th = threading.Thread(target=other)
            th.start()
            th.join(0.5)
            assert th.is_alive()  # blocked on the row lock until s1 commits
    if store.backend == "postgresql":
        th.join(10)
        assert isinstance(errors[0], ConflictError) and errors[0].current_version == 2
    assert get_plan(store, rec.id).version == 2
    assert bool(load_plan(store, rec.id).grids["locked"].iloc[0]) is False


def test_edits_are_audited(store: Store, plan) -> None:
    rec = save_plan(store, plan, author="a")
    code = plan.grids["grid_code"].iloc[1]
    poly = shapely.box(*plan.grids.geometry.iloc[1].bounds).buffer(-1.0, join_style="mitre")
    r = update_plan_grids(
        store,
        rec.id,
        {code: {"boundary_desc": "东至长江路", "geometry": poly}},
        author="b",
        expected_version=1,
    )
    assert r.version == 2
    back = load_plan(store, rec.id)
    assert back.grids["boundary_desc"].iloc[1] == "东至长江路"
    assert shapely.hausdorff_distance(back.grids.geometry.iloc[1], poly) < 0.01
    edited = plan.replace(grids=back.grids.iloc[:-1].reset_index(drop=True))
    r = update_plan(store, rec.id, edited, author="c", expected_version=2)
    assert (r.version, r.n_grids) == (3, 7)
    hist = plan_history(store, rec.id)
    assert hist["action"].tolist() == ["create", "edit_grids", "update"]
    assert hist["actor"].tolist() == ["a", "b", "c"]
    eg = hist.iloc[1]
    assert eg["before"]["grids"][code]["boundary_desc"] == plan.grids["boundary_desc"].iloc[1]
    assert eg["after"]["grids"][code]["boundary_desc"] == "东至长江路"
    assert eg["before"]["version"] == 1 and eg["after"]["version"] == 2
    up = hist.iloc[2]
    removed = plan.grids["grid_code"].iloc[-1]
    assert list(up["before"]["grids"]) == [removed] and up["after"]["grids"] == {}
    with pytest.raises(InputError, match="cannot edit \\['households'\\]"):
        update_plan_grids(store, rec.id, {code: {"households": 1}}, author="x", expected_version=3)


def test_publish_archives_previous(store: Store, plan, layers) -> None:
    p1 = save_plan(store, plan, author="a")
    p2 = save_plan(store, plan, author="a", parent_id=p1.id)
    other_area = make_plan(layers.subset(["c1"]))
    p3 = save_plan(store, other_area, author="a")
    assert [p.number for p in (p1, p2, p3)] == [1, 2, 1]
    r1 = publish_plan(store, p1.id, author="boss", expected_version=1)
    assert (r1.status, r1.version) == ("published", 2)
    assert publish_plan(store, p1.id, author="boss").version == 2  # idempotent
    r2 = publish_plan(store, p2.id, author="boss")
    assert r2.status == "published"
    a1 = get_plan(store, p1.id)
    assert (a1.status, a1.version) == ("archived", 3)
    assert [p.id for p in list_plans(store, status="published")] == [p2.id]
    # c1 alone overlaps p2's area: publishing it would leave c0 with no published grids
    before = [(p.id, p.status, p.version) for p in list_plans(store)]
    with pytest.raises(ConflictError, match=r"leaving 1 community outside plan \d+ .*: c0\. "):
        publish_plan(store, p3.id, author="boss")
    assert [(p.id, p.status, p.version) for p in list_plans(store)] == before  # nothing changed
    # …unless the planner withdraws c0 on purpose: p2 is archived as well
    publish_plan(store, p3.id, author="boss", allow_uncovered=True)
    assert [p.id for p in list_plans(store, status="published")] == [p3.id]
    assert published_plan(store, "c1").id == p3.id
    assert published_plan(store, "c0") is None
    # roll back: re-publish the archived p1
    publish_plan(store, p1.id, author="boss")
    assert [p.id for p in list_plans(store, status="published")] == [p1.id]
    assert [p.id for p in list_plans(store, community_id="c1")] == [p1.id, p2.id, p3.id]
    assert [p.id for p in list_plans(store, area=["c1", "c0"])] == [p1.id, p2.id]
    # published plans cannot be edited in place
    with pytest.raises(ConflictError, match="is published; edits are allowed only on a draft"):
        update_plan(store, p1.id, plan, author="x", expected_version=get_plan(store, p1.id).version)
    audit = list_audit(store, entity="plan", entity_id=p2.id)
    assert audit["action"].tolist() == ["create", "publish", "archive"]
    assert audit["after"].iloc[2]["superseded_by"] == p3.id
    r = archive_plan(store, p1.id, author="boss")
    assert r.status == "archived" and list_plans(store, status="published") == []


def test_partial_unique_index(store: Store, plan) -> None:
    p1 = save_plan(store, plan, author="a", status="published")
    p2 = save_plan(store, plan, author="a")
    assert get_plan(store, p1.id).status == "published"
    t = PlanRow.__table__
    with pytest.raises(sa.exc.IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(sa.update(t).where(t.c.id == p2.id).values(status="published"))
    # drafts and archived plans of one area are unlimited
    with store.engine.begin() as conn:
        conn.execute(sa.update(t).where(t.c.id == p1.id).values(status="archived"))
        conn.execute(sa.update(t).where(t.c.id == p2.id).values(status="published"))
    with pytest.raises(sa.exc.IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(sa.update(t).where(t.c.id == p1.id).values(status="bogus"))


def test_save_assignments(store: Store, plan) -> None:
    rec = save_plan(store, plan, author="a", status="published")
    posts = pd.DataFrame(
        {
            "staff_id": ["s0", "s1"],
            "grid_code": plan.grids["grid_code"].iloc[:2].tolist(),
            "role": ["chief", "worker"],
        }
    )
    r = save_assignments(store, rec.id, posts, author="hr", expected_version=2)
    assert r.version == 3
    pdt.assert_frame_equal(load_plan(store, rec.id).assignments, posts)
    with pytest.raises(ConflictError, match="at version 3, not 2"):
        save_assignments(store, rec.id, posts.iloc[:1], author="hr", expected_version=2)
    hist = plan_history(store, rec.id)
    assert hist["action"].tolist()[-1] == "assign"
    assert hist["after"].iloc[-1]["assignments"][0] == [
        "s0",
        plan.grids["grid_code"].iloc[0],
        "chief",
    ]


def locate_points(plan) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Interior points, shared corners, edge points and outside points, with pinned answers."""
    g = plan.grids.to_crs(4326)
    codes = g["grid_code"].tolist()
    pts = []
    for geom in g.geometry:
        pts.append(geom.representative_point())
        pts.extend(shapely.Point(c) for c in list(geom.exterior.coords)[:4])
    pts.append(shapely.Point(100.0, 30.0))
    xs = np.array([p.x for p in pts])
    ys = np.array([p.y for p in pts])
    expected: list[str | None] = []
    for p in pts:
        hits = [c for c, geom in zip(codes, g.geometry, strict=True) if geom.covers(p)]
        expected.append(min(hits) if hits else None)
    return xs, ys, expected


def test_locate_sql_same_on_both_backends(store: Store, plan) -> None:
    rec = save_plan(store, plan, author="a")
    xs, ys, expected = locate_points(plan)
    got = locate_sql(store, rec.id, xs, ys)
    assert got.tolist() == expected
    # shared corner of the 4 grids of community c0 goes to the smallest code
    assert expected.count(None) >= 1
    assert locate_sql(store, rec.id, float(xs[0]), float(ys[0])) == expected[0]
    assert locate_sql(store, rec.id, 100.0, 30.0) is None
    # pinned: the 2×2 grids of c0 meet at one vertex, covered by all four
    c0 = plan.grids[plan.grids["community_id"] == "c0"].to_crs(4326)
    corner = shapely.intersection_all(c0.geometry.values)
    assert corner.geom_type == "Point"
    assert locate_sql(store, rec.id, corner.x, corner.y) == "320104001001001"
    with pytest.raises(InputError, match="differ in length"):
        locate_sql(store, rec.id, [1.0, 2.0], [1.0])


@pytest.mark.parametrize("area", ["same area", "overlapping area"])
def test_concurrent_publishers_leave_one_published(store: Store, layers, area: str) -> None:
    """A second publisher waits for the first to commit, then archives its plan.

    Without serialising publishers, on PostgreSQL two plans of overlapping areas
    (different ``area_key``) were both published, and one of the same area failed.
    """
    import threading

    first = save_plan(store, make_plan(layers), author="a")  # c0 + c1
    other = make_plan(layers if area == "same area" else layers.subset(["c1"]))
    second = save_plan(store, other, author="b")
    errors: list[BaseException] = []

    def publish_second() -> None:
        try:
            publish_plan(store, second.id, author="t2", allow_uncovered=True)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    with store.session(write=True) as s1:
        publish_plan(s1, first.id, author="t1")
        th = threading.Thread(target=publish_second)
        th.start()
        th.join(0.5)
        assert th.is_alive()  # waits until t1 commits
    th.join(30)
    assert not th.is_alive() and errors == []
    assert [p.id for p in list_plans(store, status="published")] == [second.id]
    assert get_plan(store, first.id).status == "archived"
    archived = list_audit(store, entity="plan", entity_id=first.id)
    assert archived["action"].tolist() == ["create", "publish", "archive"]
    assert archived["after"].iloc[-1]["superseded_by"] == second.id


def test_many_concurrent_publishers(store: Store, store_url, layers) -> None:
    """Threads with their own connections publish overlapping plans at once: one survives."""
    import threading

    plans = [make_plan(layers), make_plan(layers.subset(["c1"])), make_plan(layers.subset(["c0"]))]
    ids = [save_plan(store, p, author="a").id for p in plans * 2]
    stores = [Store.from_url(store_url[0], schema=store_url[1]) for _ in ids]
    start = threading.Barrier(len(ids))
    errors: list[BaseException] = []

    def publish(st: Store, pid: int) -> None:
        start.wait()
        try:
            publish_plan(st, pid, author=f"t{pid}", allow_uncovered=True)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [
        threading.Thread(target=publish, args=(st, pid))
        for st, pid in zip(stores, ids, strict=True)
    ]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
    finally:
        for st in stores:
            st.close()
    assert errors == []
    published = list_plans(store, status="published")
    # every community has at most one published plan, and the last publisher won
    for cid in ("c0", "c1"):
        assert len([p for p in published if cid in p.community_ids]) <= 1
    last = max(
        (
            r
            for r in list_audit(store, entity="plan").to_dict("records")
            if r["action"] == "publish"
        ),
        key=lambda r: r["id"],
    )
    assert int(last["entity_id"]) in [p.id for p in published]
    assert len(list_audit(store, entity="plan").query("action == 'publish'")) == len(ids)


def test_failed_plan_save_keeps_previous_state(store: Store, layers, plan, monkeypatch) -> None:
    save_layers(store, layers, author="a")
    old = save_plan(store, plan, author="a", status="published")
    before = snapshot(store)
    real = plans_mod.bulk_insert

    def crashing(session, table, *args, **kwargs):
        if table.name == "plan_households":
            raise RuntimeError("disk on fire")
        return real(session, table, *args, **kwargs)

    monkeypatch.setattr(plans_mod, "bulk_insert", crashing)
    for status in ("draft", "published"):
        with pytest.raises(RuntimeError, match="disk on fire"):
            save_plan(store, make_plan(layers, shift=1), author="b", status=status)
        assert snapshot(store) == before
    draft = save_plan(store, plan.replace(households=None), author="c")
    before = snapshot(store)
    with pytest.raises(RuntimeError, match="disk on fire"):  # an edit that fails midway
        update_plan(store, draft.id, plan, author="c", expected_version=1)
    assert snapshot(store) == before
    assert get_plan(store, old.id).status == "published"


def test_json_documents_keep_their_order(store: Store, plan) -> None:
    """Parameters, report tables and audit rows come back in the order they were written.

    PostgreSQL's jsonb re-orders object keys (shortest first); the store uses json.
    """
    params = {"seed": 3, "min_households": 200, "max_households": 500, "area": ["c1", "c0"]}
    report = plan.report
    grids = report.grids[["polsby_popper", "in_band", "households", "grid_code"]]
    odd = plan.replace(
        params=params, report=QualityReport(grids, report.communities, {"z": 1, "a": 2})
    )
    rec = save_plan(store, odd, author="a")
    assert list(get_plan(store, rec.id).params) == list(params)
    back = load_plan(store, rec.id)
    assert list(back.params) == list(params)
    assert back.report.grids.columns.tolist() == grids.columns.tolist()
    assert list(back.report.overall) == ["z", "a"]
    assert list(plan_history(store, rec.id)["after"].iloc[0]) == [
        "number",
        "version",
        "n_grids",
        "households",
        "community_ids",
        "parent_id",
    ]
