"""``gridmap visits`` through the real entry point, on a SQLite store holding the example."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from clirun import gridmap
from visitdata import G1, G2, store_example

from gridmap.db import Store


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "gridmap.db"
    store = Store.from_url(f"sqlite:///{path}")
    store_example(store)
    store.close()
    return f"sqlite:///{path}"


def test_record_due_route_register(db, tmp_path):
    r = gridmap(
        "visits",
        "record",
        "--db",
        db,
        "--staff",
        "S1",
        "--household",
        "H01",
        "--at",
        "2026-09-10 10:00",
        "--notes",
        "身体尚好",
        "--now",
        "2026-09-20",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["grid_code"] == G1
    r = gridmap(
        "visits",
        "due",
        "--db",
        db,
        "--grid",
        G1,
        "--month",
        "2026-09",
        "--as-of",
        "2026-09-20",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["data"]
    assert [(d["household_id"] or d["building_id"], d["status"]) for d in rows] == [
        ("H01", "done"),
        ("H02", "due"),
        ("H05", "due"),
        ("B3", "due"),
    ]
    page = tmp_path / "route.html"
    r = gridmap(
        "visits", "route", "--db", db, "--staff", "S1", "--date", "2026-09-20", "--map", page
    )
    assert r.returncode == 0, r.stderr
    assert "walk 650 m (list order 650 m, lower bound 620 m)" in r.stdout
    html = page.read_text(encoding="utf-8")
    assert "走访路线 Visit route" in html and "unpkg.com" not in html  # offline by default
    r = gridmap("visits", "route", "--db", db, "--staff", "S2", "--date", "2026-09-20")
    assert r.returncode == 0 and "an empty route" in r.stdout
    out = tmp_path / "register.csv"
    r = gridmap("visits", "register", "--db", db, "--as-of", "2026-09-30", "--csv", out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    reg = pd.read_csv(out, encoding="utf-8-sig", dtype={0: str})
    assert reg["网格编码 Grid code"].tolist() == [G1, G2]
    assert reg["近期已走访户数 Households visited"].tolist() == [1, 0]


def test_bad_input_exits_1_with_the_reason(db, tmp_path):
    def record(*extra):
        return gridmap(
            "visits",
            "record",
            "--db",
            db,
            "--staff",
            "S1",
            "--at",
            "2026-09-10 10:00",
            "--now",
            "2026-09-20",
            *extra,
        )

    r = record("--household", "H09")
    assert r.returncode == 1 and "household 'H09' is in grid 320104001001002" in r.stderr
    r = gridmap(
        "visits",
        "record",
        "--db",
        db,
        "--staff",
        "S4",
        "--household",
        "H14",
        "--at",
        "2026-09-10 10:00",
        "--now",
        "2026-09-20",
    )
    assert r.returncode == 1 and "before household 'H14' was registered" in r.stderr
    r = record("--household", "H01", "--at", "2026-09-21 10:00")
    assert r.returncode == 1 and "in the future" in r.stderr
    rules = tmp_path / "rules.json"
    rules.write_text('{"categories": {"elderly_along": {"cadence": "weekly"}}}', "utf-8")
    r = gridmap("visits", "due", "--db", db, "--grid", G1, "--month", "2026-09", "--rules", rules)
    assert r.returncode == 1 and "unknown category 'elderly_along'" in r.stderr
    r = gridmap("visits", "due", "--db", db, "--grid", G1, "--month", "2026-09", "--as", "viewer")
    assert r.returncode == 1 and "personal data" in r.stderr
    r = gridmap("visits", "route", "--db", db, "--staff", "S1", "--date", "18/09/2026")
    assert r.returncode == 1 and "YYYY-MM-DD" in r.stderr
    r = gridmap("visits", "due", "--db", db, "--grid", G1, "--month", "2026-09", "--json")
    assert r.returncode == 0
    assert all(
        d["status"] == "overdue" or d["status"] == "due" for d in json.loads(r.stdout)["data"]
    )


def test_moved_after_a_redraw(db, tmp_path):
    from gridmap.db import save_plan
    from gridmap.visits.examples import _example

    plan = _example().plan

    def to_g2(d):  # building B2 (H05–H08) moves to grid 002
        return d.assign(grid_code=d["grid_code"].where(d["building_id"] != "B2", G2))

    store = Store.from_url(db)
    save_plan(
        store,
        plan.replace(buildings=to_g2(plan.buildings), households=to_g2(plan.households)),
        author="t",
        status="published",
    )
    store.close()
    out = tmp_path / "moved.csv"
    r = gridmap("visits", "moved", "1", "2", "--db", db, "--month", "2026-09", "--csv", out)
    assert r.returncode == 0, r.stderr
    assert "7 visits in 2026-09: 1 moved to another grid" in r.stdout
    moved = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    assert moved[["household_id", "previous_staff_id", "staff_id"]].values.tolist() == [
        ["H05", "S1", "S4"]
    ]
