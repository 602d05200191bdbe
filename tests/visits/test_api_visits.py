"""Visits over HTTP (/visits …) on SQLite and PostGIS: scopes, records, routes, register."""

from __future__ import annotations

import io

import pandas as pd
from visitdata import G1, G2


def post(client, key, **body):
    base = {"staff_id": "S1", "household_id": "H01", "visited_at": "2026-09-10 10:00"}
    return client.post("/visits", json={**base, **body}, headers=key)


def test_due_records_and_register(vclient):
    store, client, keys = vclient
    url = f"/visits/due?grid={G1}&month=2026-09&as_of=2026-09-20"
    r = client.get(url, headers=keys["staff:1"])
    assert r.status_code == 200
    body = r.json()
    assert (body["total"], body["done"], body["due"], body["overdue"]) == (4, 0, 4, 0)
    assert [d["household_id"] or d["building_id"] for d in body["data"]] == [
        "H01",
        "H02",
        "H05",
        "B3",
    ]
    assert body["data"][0]["period_start"] == "2026-09-01" and body["data"][0]["staff_id"] == "S1"
    r = post(client, keys["staff:1"], notes="身体尚好")
    assert r.status_code == 201, r.text
    assert r.json()["grid_code"] == G1 and r.json()["outcome_zh"] == "已走访"
    body = client.get(url, headers=keys["staff:1"]).json()
    assert (body["done"], body["due"]) == (1, 3)
    assert body["data"][0]["visited_at"] == "2026-09-10"
    # the records, with the notes, for the grid's staff and the community
    for who in ("staff:1", "community", "dispatcher"):
        rows = client.get("/visits", headers=keys[who]).json()
        assert [(d["household_id"], d["notes"]) for d in rows["data"]] == [("H01", "身体尚好")]
    assert client.get("/visits", headers=keys["staff:2"]).json()["count"] == 0
    # the register: JSON codes, and Excel-ready CSV (BOM, Chinese headers)
    reg = client.get(f"/visits/register?grid={G1}&as_of=2026-09-30", headers=keys["viewer"])
    assert reg.status_code == 200
    row = reg.json()["data"][0]
    assert (row["households"], row["must_visit"], row["visited"]) == (8, 3, 1)
    assert reg.json()["columns"]["must_visit"]["zh"] == "六必访户数"
    csv = client.get("/visits/register?format=csv&as_of=2026-09-30", headers=keys["dispatcher"])
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.content.startswith(b"\xef\xbb\xbf")
    frame = pd.read_csv(io.BytesIO(csv.content), encoding="utf-8-sig", dtype={0: str})
    assert frame.columns[0] == "网格编码 Grid code"
    assert frame["网格编码 Grid code"].tolist() == [G1, G2]
    assert frame["户数 Households"].tolist() == [8, 6]


def test_personal_data_only_for_the_grid_staff_and_up(vclient):
    store, client, keys = vclient
    url = f"/visits/due?grid={G1}&month=2026-09"
    assert client.get(url).status_code == 401
    for who in ("viewer", "department", "staff:2"):
        r = client.get(url, headers=keys[who])
        assert r.status_code == 403, who
        assert r.headers["content-type"].startswith("application/problem+json")
    for who in ("staff:1", "community", "dispatcher", "admin"):
        assert client.get(url, headers=keys[who]).status_code == 200, who
    assert (
        client.get("/visits/route?staff=S1&date=2026-09-20", headers=keys["staff:2"]).status_code
        == 403
    )
    assert client.get("/visits", headers=keys["viewer"]).status_code == 403
    # the register holds counts only: any key, within its unit
    reg = client.get("/visits/register", headers=keys["staff:2"]).json()
    assert [r["grid_code"] for r in reg["data"]] == [G2]
    assert client.get("/visits/register", headers=keys["department"]).status_code == 404
    # every personal read is in the audit log, with who read it
    from gridmap.db import list_audit

    reads = list_audit(store, entity="grid")
    assert len(reads[reads["action"] == "read.personal"]) == 4
    assert reads["actor"].str.contains("staff:1").any()


def test_bad_input_is_a_clear_4xx(vclient):
    store, client, keys = vclient
    staff = keys["staff:1"]
    r = post(client, staff, household_id="H09", staff_id="S4")  # a grid-001 key, grid 002
    assert r.status_code == 403 and "outside grid_worker" in r.json()["detail"]
    r = post(client, keys["admin"], household_id="H09")  # S1 does not serve grid 002
    assert r.status_code == 403 and "serves ['320104001001001']" in r.json()["detail"]
    r = post(client, staff, visited_at="2999-01-01 10:00")
    assert r.status_code == 422 and "in the future" in r.json()["detail"]
    r = post(client, keys["admin"], staff_id="S4", household_id="H14")
    assert r.status_code == 422 and "before household 'H14' was registered" in r.json()["detail"]
    assert r.json()["type"].endswith("bad-visit-record")
    r = post(client, staff, outcome="great")
    assert r.status_code == 422 and "outcome 'great'" in r.json()["detail"]
    r = post(client, staff, household_id="H99")
    assert r.status_code == 422
    r = post(client, staff, visited_at="yesterday")
    assert r.status_code == 422 and "cannot read" in r.json()["detail"]
    r = client.post("/visits", json={"household_id": "H01"}, headers=staff)
    assert r.status_code == 422  # the request schema: staff_id, visited_at missing
    r = client.get(f"/visits/due?grid={G1}&month=2026-09&category=elderly", headers=staff)
    assert r.status_code == 422 and "unknown visit category 'elderly'" in r.json()["detail"]
    r = client.get(f"/visits/due?grid={G1}&month=2026-13", headers=staff)
    assert r.status_code == 400 and "YYYY-MM" in r.json()["detail"]
    r = client.get("/visits/due?grid=320104001001999&month=2026-09", headers=staff)
    assert r.status_code == 404
    r = client.get("/visits/route?staff=S1&date=20-09-2026", headers=staff)
    assert r.status_code == 400
    r = client.get("/visits/route?staff=S99&date=2026-09-20", headers=keys["admin"])
    assert r.status_code == 404
    r = post(client, staff, notes="a\x00b")
    assert r.status_code == 400 and "NUL" in r.json()["detail"]
    assert client.get("/visits/due?grid=a%00b&month=2026-09", headers=staff).status_code == 400
    # nothing was stored by the refused writes
    assert client.get("/visits", headers=keys["admin"]).json()["count"] == 0


def test_rules_file_with_an_unknown_category_is_422(vclient, tmp_path, monkeypatch):
    from gridmap.api.routes import visits as routes

    store, client, keys = vclient
    bad = tmp_path / "rules.json"
    bad.write_text('{"categories": {"elderly_along": {"cadence": "weekly"}}}', encoding="utf-8")
    monkeypatch.setenv("GRIDMAP_VISIT_RULES", str(bad))
    routes.get_visit_settings.cache_clear()
    try:
        r = client.get(f"/visits/due?grid={G1}&month=2026-09", headers=keys["staff:1"])
        assert r.status_code == 422
        assert "unknown category 'elderly_along'" in r.json()["detail"]
        good = tmp_path / "weekly.json"
        good.write_text('{"categories": {"elderly_alone": {"cadence": "weekly"}}}', "utf-8")
        monkeypatch.setenv("GRIDMAP_VISIT_RULES", str(good))
        routes.get_visit_settings.cache_clear()
        r = client.get(f"/visits/due?grid={G1}&month=2026-09", headers=keys["staff:1"])
        weekly = [d for d in r.json()["data"] if d["cadence"] == "weekly"]
        assert {d["household_id"] for d in weekly} == {"H01"} and len(weekly) == 5  # 5 weeks
    finally:
        routes.get_visit_settings.cache_clear()


def test_route_json_and_map(vclient):
    store, client, keys = vclient
    r = client.get("/visits/route?staff=S1&date=2026-09-20", headers=keys["staff:1"])
    assert r.status_code == 200
    d = r.json()
    assert [s["building_id"] for s in d["stops"]] == ["B1", "B3", "B2"]
    assert (d["total_m"], d["list_order_m"], d["lower_bound_m"]) == (650.0, 650.0, 620.0)
    html = client.get(
        "/visits/route?staff=S1&date=2026-09-20&format=html&assets=inline", headers=keys["staff:1"]
    )
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "走访路线 Visit route" in html.text and "幸福小区2栋" in html.text
    # a worker without due visits: an empty route (200), and its map says so
    r = client.get("/visits/route?staff=S5&date=2026-09-20", headers=keys["staff:2"])
    assert r.status_code == 200 and r.json()["stops"] == [] and r.json()["total_m"] == 0.0
    html = client.get("/visits/route?staff=S5&date=2026-09-20&format=html", headers=keys["staff:2"])
    assert html.status_code == 200 and "Nothing due today" in html.text


def test_follow_up_opens_a_case(vclient):
    store, client, keys = vclient
    r = post(
        client,
        keys["staff:1"],
        household_id="H02",
        follow_up_text="邻居反映噪音扰民",
        case_category="噪音扰民",
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["case_id"]
    case = client.get(f"/cases/{case_id}", headers=keys["staff:1"]).json()
    assert (case["source"], case["category"], case["grid_code"]) == ("patrol", "noise", G1)
    r = post(client, keys["staff:1"], household_id="H05", follow_up_text="x", case_category="??")
    assert r.status_code in (400, 422)
    assert client.get("/visits", headers=keys["admin"]).json()["count"] == 1
