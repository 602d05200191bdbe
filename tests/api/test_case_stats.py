"""GET /cases/stats and /cases/workload on the hand-made city (SQLite and PostGIS)."""

from __future__ import annotations

import csv
import io

import apidata
import pytest
from casedesk import desk_headers, staff_tokens


def ticket(x: float, y: float, **kw):
    lon, lat = apidata.lonlat(x, y)
    base = {
        "source": "online",  # 357: answer in 3 hours, resolve in 5 working days
        "category": "road",
        "description": "路面坑洼",
        "lon": lon,
        "lat": lat,
        "crs": "wgs84",
        "received_at": "2026-11-02 09:00",
    }
    return {**base, **kw}


@pytest.fixture
def desk(published):
    store, client, headers, _ = published
    h = desk_headers(
        staff_tokens(store, {"g1": f"grid:{apidata.G1}", "c1": "community:c1"}), headers
    )

    # G1: one replied on time (accepted after 1 h), one open; G2 one open; G5 (c2) one open
    ids = [
        client.post("/cases", json=ticket(x, y), headers=h("dispatcher")).json()["id"]
        for x, y in ((100, 300), (110, 310), (300, 300), (600, 100))
    ]
    a = ids[0]
    steps = [
        ("accept", {"at": "2026-11-02 10:00"}),
        ("dispatch", {"handler": f"grid:{apidata.G1}", "at": "2026-11-02 10:30"}),
        ("start", {"at": "2026-11-02 11:00"}),
        ("reply", {"note": "已修复", "at": "2026-11-04 16:00"}),
    ]
    for version, (action, body) in enumerate(steps, start=1):
        r = client.post(f"/cases/{a}/{action}", json=body, headers=h("admin", version))
        assert r.status_code == 200, r.text
    return client, h


def test_stats_json_by_grid(desk):
    client, h = desk
    r = client.get("/cases/stats?by=grid&month=2026-11", headers=h("dispatcher"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["by"] == "grid" and body["from"].startswith("2026-11-01")
    rows = {d["unit"]: d for d in body["data"]}
    assert set(rows) == {apidata.G1, apidata.G2, apidata.G5}
    g1 = rows[apidata.G1]
    assert (g1["received"], g1["open"], g1["on_time"], g1["answered"]) == (2, 2, 1, 1)
    assert g1["answer_hours_median"] == 1.0 and g1["resolve_days_median"] == 2.0
    assert g1["satisfaction_rate"] is None  # nothing rated: null, not NaN
    assert body["labels_zh"]["on_time_rate"] == "按时办结率"
    # the received date range: from/to inclusive days give the same figures
    same = client.get("/cases/stats?from=2026-11-01&to=2026-11-30", headers=h("dispatcher"))
    assert same.json()["data"] == body["data"]
    empty = client.get("/cases/stats?month=2026-10", headers=h("dispatcher")).json()
    assert empty["data"] == [] and empty["count"] == 0


def test_stats_csv_has_bom_and_chinese_headers(desk):
    client, h = desk
    r = client.get("/cases/stats?by=community&month=2026-11&format=csv", headers=h("dispatcher"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["单位", "受理量", "未结案"] and "按时办结率" in rows[0]
    assert {row[0]: row[1] for row in rows[1:]} == {"c1": "3", "c2": "1"}
    by_accept = client.get(
        "/cases/stats?by=community&month=2026-11", headers={**h("dispatcher"), "Accept": "text/csv"}
    )
    assert by_accept.content == r.content


def test_stats_scopes(desk):
    client, h = desk
    mine = client.get("/cases/stats?by=grid&month=2026-11", headers=h("c1")).json()
    assert {d["unit"] for d in mine["data"]} == {apidata.G1, apidata.G2}
    g1 = client.get("/cases/stats?by=grid&month=2026-11", headers=h("g1")).json()
    assert [d["unit"] for d in g1["data"]] == [apidata.G1]
    outside = client.get(f"/cases/stats?grid={apidata.G5}&month=2026-11", headers=h("c1"))
    assert outside.status_code == 403 and "outside your key's unit" in outside.json()["detail"]
    above = client.get("/cases/stats?by=subdistrict&month=2026-11", headers=h("c1"))
    assert above.status_code == 403 and "not by=subdistrict" in above.json()["detail"]
    inside = client.get(f"/cases/stats?grid={apidata.G2}&month=2026-11", headers=h("c1"))
    assert inside.status_code == 200 and [d["unit"] for d in inside.json()["data"]] == [apidata.G2]
    assert client.get("/cases/stats", headers=h(None)).status_code == 401


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("by=street", "by='street' is not one of grid"),
        ("month=2026-13", "is not a month"),
        ("from=2026-11-30&to=2026-11-01", "not after from"),
        ("from=yesterday", "is not a date"),
        ("month=2026-11&from=2026-11-01", "either a month or from/to"),
    ],
)
def test_stats_bad_input_is_422(desk, query, words):
    client, h = desk
    r = client.get(f"/cases/stats?{query}", headers=h("dispatcher"))
    assert r.status_code == 422 and words in r.json()["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")


def test_workload(desk):
    client, h = desk
    r = client.get("/cases/workload?month=2026-11", headers=h("dispatcher"))
    assert r.status_code == 200, r.text
    body = r.json()
    rows = {d["grid_code"]: d for d in body["data"]}
    assert rows[apidata.G1]["cases"] == 2 and rows[apidata.G2]["cases"] == 1
    assert all(d["months"] == 1.0 for d in body["data"])
    assert body["far_above"] == [d["grid_code"] for d in body["data"] if d["far_above"]]
    csv_r = client.get("/cases/workload?month=2026-11&format=csv", headers=h("c1"))
    assert csv_r.content.startswith(b"\xef\xbb\xbf") and "人均月工单量" in csv_r.text
    assert client.get("/cases/workload?month=2026-11&factor=0", headers=h("c1")).status_code == 422
    assert client.get("/cases/workload?month=x", headers=h("c1")).status_code == 422
