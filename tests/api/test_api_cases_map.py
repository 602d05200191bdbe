"""Case maps over HTTP: GET /maps/cases scoped like GET /cases, and the locate page's cases.

On the hand-made city (:mod:`apidata`), SQLite and PostGIS.
"""

from __future__ import annotations

import datetime as dt
import re

import apidata
import pytest
from casedesk import desk_headers, staff_tokens, ticket
from maphtml import cases_data, external, features

from gridmap.cases import TZ
from gridmap.db import list_audit


@pytest.fixture
def desk(published):
    """Three cases (G1 noise, G2 road, G5 garbage) and staff keys for g1 and community c1."""
    store, client, headers, pid = published
    tokens = staff_tokens(store, {"g1": f"grid:{apidata.G1}", "c1": "community:c1"})
    h = desk_headers(tokens, headers)
    for x, y, cat, name in ((100, 300, "噪音扰民", "张三"), (300, 300, "road", "李四")) + (
        (600, 100, "garbage", "王五"),
    ):
        r = client.post(
            "/cases", json=ticket(x, y, category=cat, reporter_name=name), headers=h("dispatcher")
        )
        assert r.status_code == 201, r.text
    return store, client, h


def test_cases_map_is_scoped_like_the_case_list(desk) -> None:
    _, client, h = desk
    counts = {}
    for who in ("viewer", "g1", "c1", "dispatcher", "admin"):
        r = client.get("/maps/cases?assets=inline", headers=h(who))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        counts[who] = cases_data(r.text)["n"]
        assert external(r.text) == []
    assert counts == {"viewer": 3, "g1": 1, "c1": 2, "dispatcher": 3, "admin": 3}
    assert client.get("/maps/cases").status_code == 401


def test_no_caller_in_any_page_dispatchers_fetch_each_on_click(desk) -> None:
    """The page holds no personal data; a dispatcher's popup reads GET /cases/{id} (audited)."""
    store, client, h = desk
    before = len(list_audit(store, entity="cases")), len(list_audit(store, entity="case"))
    pages = {}
    for who in ("viewer", "g1", "c1", "dispatcher", "admin"):
        text = client.get("/maps/cases", headers=h(who)).text
        assert "张三" not in text and "13812345678" not in text and "夜间施工" not in text
        pages[who] = text
    # drawing the map reads no personal data: nothing audited
    after = len(list_audit(store, entity="cases")), len(list_audit(store, entity="case"))
    assert after == before
    # dispatchers' and admins' popups are told where to fetch a case; the others' are not
    tail = re.compile(r"\}, [^,]+,\s*\{\"breaks\".*?\}, (\"/cases/\"|null)\);", re.S)
    fetch = {who: tail.search(text).group(1) for who, text in pages.items()}
    assert fetch == {
        "viewer": "null",
        "g1": "null",
        "c1": "null",
        "dispatcher": '"/cases/"',
        "admin": '"/cases/"',
    }
    # what the popup fetches: the caller, for a dispatcher, and that read is audited
    cid = cases_data(pages["dispatcher"])["ids"][0]
    r = client.get(f"/cases/{cid}", headers=h("dispatcher"))
    assert r.status_code == 200 and r.json()["reporter_name"] == "张三"
    assert r.json()["reporter_phone"] == "13812345678"
    audit = list_audit(store, entity="case")
    assert len(audit) == before[1] + 1
    assert audit.iloc[-1]["action"] == "read.personal"
    assert str(audit.iloc[-1]["entity_id"]) == str(cid)
    # a viewer's key gets the caller masked there
    masked = client.get(f"/cases/{cid}", headers=h("viewer")).json()
    assert masked["reporter_name"] == "张*" and "13812345678" not in str(masked)


def test_filters_and_the_grid_choropleth(desk) -> None:
    _, client, h = desk

    def statuses(query: str) -> list[str]:
        r = client.get(f"/maps/cases?{query}", headers=h("viewer"))
        assert r.status_code == 200, r.text
        return sorted(cases_data(r.text)["status"])

    assert statuses("category=噪音扰民") == ["received"]
    assert statuses("category=road&category=garbage") == ["received", "received"]
    assert len(statuses("month=2026-09")) == 3 and statuses("month=2026-10") == []
    assert len(statuses("from=2026-09-18&to=2026-09-18")) == 3  # both days included
    assert statuses("from=2026-09-19") == []
    assert statuses("status=closed") == []
    html = client.get("/maps/cases", headers=h("viewer")).text
    grids = {f["id"]: f["properties"] for f in features(html, "per_1000")}
    g1 = grids[apidata.G1]
    assert g1["cases"] == 1 and g1["per_1000"] == round(1000 / g1["households"], 1)
    assert grids[apidata.G3]["cases"] == 0


@pytest.mark.parametrize(
    ("who", "query", "status", "words"),
    [
        ("viewer", "status=finished", 400, "unknown case status"),
        ("viewer", "category=外星人", 400, "unknown category"),
        ("viewer", "month=2026-13", 400, "is not a month"),
        ("viewer", "from=2026-09-20&to=2026-09-01", 400, "the period is empty"),
        ("viewer", "from=yesterday", 400, "is not a date"),
        ("g1", "community=c1", 403, "outside your scope"),
        ("g1", f"grid={apidata.G2}", 403, "outside your scope"),
        ("c1", "community=c2", 403, "outside your scope"),
        ("viewer", "plan=999", 404, "no plan"),
    ],
)
def test_bad_filters_are_clear_4xx(desk, who, query, status, words) -> None:
    _, client, h = desk
    r = client.get(f"/maps/cases?{query}", headers=h(who))
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_a_unit_inside_the_scope_is_fine(desk) -> None:
    _, client, h = desk
    r = client.get(f"/maps/cases?grid={apidata.G1}", headers=h("c1"))
    assert r.status_code == 200 and cases_data(r.text)["n"] == 1


def test_locate_page_lists_open_cases_near_the_point(desk) -> None:
    _, client, h = desk
    recent = (dt.datetime.now(TZ) - dt.timedelta(hours=1)).isoformat()
    body = ticket(100, 320, reporter_name="周九", received_at=recent, ticket_no="NEW1")
    new_id = client.post("/cases", json=body, headers=h("dispatcher")).json()["id"]
    lon, lat = apidata.lonlat(110, 310)  # 14 m from both noise cases, 190 m from the road case
    url = f"/maps/locate?lon={lon}&lat={lat}&radius=250&category=noise"
    disp = client.get(url, headers=h("dispatcher")).text
    assert "附近未结事件 Open cases within 250 m: 3" in disp
    # only the case received within the last 7 days is a likely duplicate, and it comes first
    assert "疑似重复 Likely duplicates: 1" in disp and "周九" in disp and "张三" in disp
    items = re.findall(r"<li>(\d+) · ([^<]*)", disp)
    assert [int(i) for i, _ in items][0] == new_id and len(items) == 3
    assert "道路破损" in items[-1][1]
    viewer = client.get(url, headers=h("viewer")).text
    assert "附近未结事件 Open cases within 250 m: 3" in viewer
    assert "张三" not in viewer and "周九" not in viewer and "夜间施工" not in viewer
    g1 = client.get(url, headers=h("g1")).text  # the road case is G2's: not listed
    assert "附近未结事件 Open cases within 250 m: 2" in g1
    plain = client.get(f"/maps/locate?lon={lon}&lat={lat}&cases=false", headers=h("viewer"))
    assert plain.status_code == 200 and "附近未结事件" not in plain.text
    assert client.get(f"{url}&radius=0", headers=h("viewer")).status_code == 422
    bad = client.get(f"/maps/locate?lon={lon}&lat={lat}&category=外星人", headers=h("viewer"))
    assert bad.status_code == 400 and "unknown category" in bad.json()["detail"]
