"""Cases over HTTP (gridmap.api.routes.cases) on the hand-made city, SQLite and PostGIS."""

from __future__ import annotations

import apidata
import pytest
from casedesk import desk_headers, staff_tokens, ticket


@pytest.fixture
def desk(published):
    store, client, headers, _ = published
    tokens = staff_tokens(
        store,
        {
            "g1": f"grid:{apidata.G1}",
            "g2": f"grid:{apidata.G2}",
            "c1": "community:c1",
            "sub": "subdistrict:320104001",
        },
    )
    return client, desk_headers(tokens, headers)


def test_intake_flow_and_precondition_errors(desk):
    client, h = desk
    r = client.post("/cases", json=ticket(ticket_no="T1"), headers=h("dispatcher"))
    assert r.status_code == 201 and r.json()["grid_code"] == apidata.G1
    cid = r.json()["id"]
    again = client.post("/cases", json=ticket(ticket_no="T1"), headers=h("dispatcher"))
    assert again.status_code == 200 and again.json()["id"] == cid
    clash = client.post(
        "/cases", json=ticket(ticket_no="T1", description="别的"), headers=h("dispatcher")
    )
    assert clash.status_code == 409
    assert client.post(f"/cases/{cid}/accept", headers=h("dispatcher")).status_code == 428
    r = client.post(f"/cases/{cid}/close", headers=h("dispatcher", 1))
    assert r.status_code == 409 and r.json()["allowed"] == ["accept", "reject", "merge"]
    assert client.post(f"/cases/{cid}/accept", headers=h("dispatcher", 1)).status_code == 200
    stale = client.post(f"/cases/{cid}/accept", headers=h("dispatcher", 1))
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    body = {"handler": f"grid:{apidata.G1}"}
    r = client.post(f"/cases/{cid}/dispatch", json=body, headers=h("dispatcher", 2))
    assert r.status_code == 200 and r.headers["etag"] == '"3"'
    assert client.post(f"/cases/{cid}/start", headers=h("g2", 3)).status_code == 403
    assert client.post(f"/cases/{cid}/start", headers=h("g1", 3)).status_code == 200
    r = client.post(f"/cases/{cid}/reply", json={}, headers=h("g1", 4))
    assert r.status_code == 400 and "requires note" in r.json()["detail"]
    log = client.get(f"/cases/{cid}/log", headers=h("g1")).json()
    assert [e["action"] for e in log["data"]] == ["intake", "accept", "dispatch", "start"]


def test_scopes_per_role(desk):
    client, h = desk
    a = client.post("/cases", json=ticket(100, 300), headers=h("dispatcher")).json()["id"]
    b = client.post("/cases", json=ticket(300, 300, category="road"), headers=h("g2")).json()["id"]
    c = client.post("/cases", json=ticket(600, 100, category="garbage"), headers=h("dispatcher"))
    assert c.json()["grid_code"] == apidata.G5
    totals = {
        who: client.get("/cases", headers=h(who)).json()["total"]
        for who in ("viewer", "g1", "g2", "c1", "sub", "dispatcher", "planner", "admin")
    }
    assert totals == {
        "viewer": 3,
        "g1": 1,
        "g2": 1,
        "c1": 2,
        "sub": 3,
        "dispatcher": 3,
        "planner": 3,
        "admin": 3,
    }
    assert client.get(f"/cases/{a}", headers=h("g2")).status_code == 403
    assert client.get(f"/cases/{b}", headers=h("g2")).json()["reporter_phone"] == "13812345678"
    assert client.get(f"/cases/{b}", headers=h("viewer")).json()["reporter_phone"] == "138****5678"
    assert client.post("/cases", json=ticket(), headers=h("viewer")).status_code == 403
    assert client.get("/cases", headers=h(None)).status_code == 401


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"category": "外星人"}, 400, "unknown category"),
        ({"source": "pigeon"}, 400, "unknown source"),
        ({"crs": "mars2000"}, 400, "unknown CRS"),
        ({"description": "  "}, 400, "description is empty"),
        ({"swap": True}, 400, "swapped"),
    ],
)
def test_bad_tickets_say_what_to_fix(desk, change, status, words):
    client, h = desk
    body = ticket(**{k: v for k, v in change.items() if k != "swap"})
    if "swap" in change:
        body["lon"], body["lat"] = body["lat"], body["lon"]
    r = client.post("/cases", json=body, headers=h("dispatcher"))
    assert r.status_code == status and words in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")


def test_import_list_formats_and_limits(desk):
    client, h = desk
    lon, lat = apidata.lonlat(100, 300)
    csv = (
        "工单编号,来电时间,经度,纬度,坐标系,诉求类别,诉求内容,来源\n"
        f"A1,2026-09-18 10:00,{lon},{lat},wgs84,noise,吵,hotline\n"
        f"A2,2026-09-18 11:00,{lon},{lat},wgs84,bad,吵,hotline\n"
    ).encode("gbk")
    hdr = {**h("dispatcher"), "Content-Type": "text/csv"}
    r = client.post("/cases/import", content=csv, headers=hdr)
    assert r.status_code == 422 and r.json()["rows"][0]["line"] == 3
    assert client.get("/cases", headers=h("dispatcher")).json()["total"] == 0
    r = client.post("/cases/import?skip_bad=true", content=csv, headers=hdr)
    assert r.status_code == 200 and r.json()["created"] == 1
    again = client.post("/cases/import?skip_bad=true", content=csv, headers=hdr).json()
    assert again["created"] == 0 and again["unchanged"] == 1
    text = client.get("/cases?format=csv&overdue=true", headers=h("dispatcher")).content
    assert text.startswith("\ufeffid,ticket".encode()) and b"A1" in text
    gj = client.get("/cases?format=geojson", headers=h("dispatcher")).json()
    assert gj["features"][0]["geometry"]["type"] == "Point"
    page = client.get("/cases?limit=1&offset=0&status=received", headers=h("dispatcher")).json()
    assert page["total"] == 1 and page["count"] == 1
    big = client.post("/cases/import", content=b"x" * (3 * 1024 * 1024), headers=hdr)
    assert big.status_code == 413 and "limit" in big.json()["detail"]
    cal = client.get("/calendar/status", headers=h("viewer")).json()
    assert any(not y["official"] for y in cal["years"])
