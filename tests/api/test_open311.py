"""Open311 GeoReport v2 (gridmap.api.routes.open311) on the hand-made city, SQLite and PostGIS.

Two kinds of client: the ``TestClient`` with requests written from the spec's own
examples (http://wiki.open311.org/GeoReport_v2: the form-encoded ``POST
requests.json`` with ``api_key``, ``jurisdiction_id``, ``service_code``, ``lat``,
``long``; ``GET requests.json?start_date=…&end_date=…&status=open``; the
``<service_requests><request>`` and ``<errors><error>`` XML shapes), and the
independent ``georeport`` package (a maintained GeoReport v2 client on PyPI)
talking to a real uvicorn server.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import apidata
import pytest
from casedesk import staff_tokens, ticket

from gridmap.api import Settings, create_app
from gridmap.api.routes.open311 import Open311Settings, get_open311_settings

BASE = "/open311/v2"
CODES = [
    "noise",
    "garbage",
    "road",
    "parking",
    "dispute",
    "elderly",
    "water",
    "fire",
    "rental",
    "other",
]


def form(x: float = 100, y: float = 300, **kw) -> dict[str, str]:
    """The spec's POST example, on our city: service_code, lat, long, description …"""
    lon, lat = apidata.lonlat(x, y)
    return {
        "service_code": "road",
        "lat": f"{lat:.8f}",
        "long": f"{lon:.8f}",
        "description": "路面塌陷，有坑 pothole",
        **kw,
    }


def errors(r) -> list[dict]:
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert isinstance(body, list) and set(body[0]) == {"code", "description"}, body
    assert body[0]["code"] == r.status_code
    return body


@pytest.fixture
def desk(published):
    store, client, headers, _ = published
    tokens = staff_tokens(store, {"g1": f"grid:{apidata.G1}", "g2": f"grid:{apidata.G2}"})

    def key(who: str) -> str:
        return tokens[who] if who in tokens else headers(who)["X-API-Key"]

    return store, client, key


@pytest.fixture
def three(desk):
    """Three cases taken in through POST /cases at fixed times; the road one rejected."""
    store, client, key = desk
    h = {"X-API-Key": key("dispatcher")}
    a = client.post("/cases", json=ticket(100, 300), headers=h).json()["id"]
    b = client.post(
        "/cases",
        json=ticket(300, 300, category="road", received_at="2026-09-20 09:30"),
        headers=h,
    ).json()["id"]
    c = client.post(
        "/cases",
        json=ticket(600, 100, category="garbage", received_at="2026-10-10 16:00", address="和平路"),
        headers=h,
    ).json()["id"]
    r = client.post(
        f"/cases/{b}/reject", json={"reason": "不属于本单位"}, headers={**h, "If-Match": '"1"'}
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/cases/{c}/accept", headers={**h, "If-Match": '"1"'})
    body = {"handler": "department:城管局", "co_handlers": [f"grid:{apidata.G5}"]}
    r = client.post(f"/cases/{c}/dispatch", json=body, headers={**h, "If-Match": '"2"'})
    assert r.status_code == 200, r.text
    return client, key, (a, b, c)


# ----------------------------------------------------------------------------- services


def test_discovery_and_services_are_public_in_json_and_xml(store_and_client):
    _, client, _ = store_and_client
    d = client.get(f"{BASE}/discovery.json")
    assert d.status_code == 200 and d.headers["content-type"] == "application/json; charset=utf-8"
    (endpoint,) = d.json()["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert d.json()["changeset"].endswith("+08:00")
    x = ET.fromstring(client.get(f"{BASE}/discovery.xml").content)
    assert [f.text for f in x.iter("format")] == ["text/xml", "application/json"]

    s = client.get(f"{BASE}/services.json")
    assert s.status_code == 200
    assert [v["service_code"] for v in s.json()] == CODES
    assert s.json()[0] == {
        "service_code": "noise",
        "service_name": "噪音扰民 (noise)",
        "description": "噪音扰民: noise. 一般事项 ordinary; 时限标准 SLA policy 12345 "
        "(working days follow the State Council holiday notice)",
        "metadata": False,
        "type": "realtime",
        "keywords": "噪音扰民,noise,噪音,扰民",
        "group": "一般 ordinary",
    }
    assert s.json()[7]["group"] == "紧急 urgent"  # fire
    sx = client.get(f"{BASE}/services.xml")
    assert sx.headers["content-type"] == "text/xml; charset=utf-8"
    assert sx.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(sx.content)
    assert root.tag == "services"
    assert [e.findtext("service_code") for e in root.findall("service")] == CODES
    assert root.find("service").findtext("metadata") == "false"
    assert root.find("service").findtext("service_name") == "噪音扰民 (noise)"

    one = client.get(f"{BASE}/services/water.json")
    assert one.json() == {"service_code": "water", "attributes": []}
    ox = ET.fromstring(client.get(f"{BASE}/services/water.xml").content)
    assert ox.tag == "service_definition" and ox.findtext("service_code") == "water"
    missing = client.get(f"{BASE}/services/ufo.json")
    assert missing.status_code == 404
    assert "unknown service_code 'ufo'" in errors(missing)[0]["description"]
    assert client.get(f"{BASE}/services.csv").status_code == 404


def test_jurisdiction_id_is_checked_against_the_configured_one(store_and_client):
    _, client, headers = store_and_client
    app = client.app
    app.dependency_overrides[get_open311_settings] = lambda: Open311Settings(  # type: ignore[attr-defined]
        jurisdiction_id="qinhuai.example"
    )
    try:
        ok = client.get(f"{BASE}/services.json?jurisdiction_id=qinhuai.example")
        assert ok.status_code == 200 and len(ok.json()) == 10
        assert client.get(f"{BASE}/services.json").status_code == 200  # optional
        bad = client.get(f"{BASE}/services.json?jurisdiction_id=sfgov.org")
        assert bad.status_code == 404
        assert "'sfgov.org' is not served here" in errors(bad)[0]["description"]
        post = client.post(
            f"{BASE}/requests.json",
            data=form(jurisdiction_id="sfgov.org", api_key=headers("dispatcher")["X-API-Key"]),
        )
        assert post.status_code == 404
    finally:
        app.dependency_overrides.clear()  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- POST / GET


def test_post_then_get_round_trip(desk):
    store, client, key = desk
    body = form(
        api_key=key("dispatcher"),
        jurisdiction_id="anything",  # not configured: accepted
        first_name="三",
        last_name="张",
        phone="13812345678",
        email="zhang@example.cn",
        media_url="https://img.example.cn/pothole.jpg",
        address_string="幸福路 12 号",
    )
    r = client.post(f"{BASE}/requests.json", data=body)
    assert r.status_code == 201, r.text
    (made,) = r.json()
    rid = made["service_request_id"]
    assert set(made) == {"service_request_id", "service_notice", "account_id"}
    assert made["account_id"] is None and made["service_notice"].startswith("办结时限")
    assert r.headers["location"] == f"{BASE}/requests/{rid}.json"

    case = client.get(f"/cases/{rid}", headers={"X-API-Key": key("dispatcher")}).json()
    assert case["source"] == "app" and case["category"] == "road"
    assert case["grid_code"] == apidata.G1 and case["status"] == "received"
    assert case["reporter_name"] == "张三"
    assert case["reporter_phone"] == "13812345678 / zhang@example.cn"

    got = client.get(f"{BASE}/requests/{rid}.json", params={"api_key": key("dispatcher")})
    assert got.status_code == 200
    (req,) = got.json()
    lon, lat = apidata.lonlat(100, 300)
    assert req["service_request_id"] == rid
    assert req["status"] == "open" and req["status_notes"] == "已接收 received"
    assert req["service_code"] == "road" and req["service_name"] == "道路破损 (damaged road)"
    assert req["description"] == "路面塌陷，有坑 pothole"
    assert req["media_url"] == "https://img.example.cn/pothole.jpg"
    assert req["address"] == "幸福路 12 号"
    assert req["agency_responsible"] == f"网格 {apidata.G1}"
    assert req["lat"] == pytest.approx(lat, abs=1e-8)
    assert req["long"] == pytest.approx(lon, abs=1e-8)
    assert req["requested_datetime"].endswith("+08:00")
    assert req["expected_datetime"] == case["due_at"]  # the resolve deadline, 23:59:59+08:00
    assert req["reporter_name"] == "张三"  # a dispatcher sees the reporter
    viewer = client.get(f"{BASE}/requests/{rid}.json", headers={"X-API-Key": key("viewer")})
    assert "reporter_name" not in viewer.json()[0] and "reporter_phone" not in viewer.json()[0]

    x = client.get(f"{BASE}/requests/{rid}.xml", headers={"Authorization": f"Bearer {key('g1')}"})
    root = ET.fromstring(x.content)
    assert root.tag == "service_requests"
    (item,) = root.findall("request")
    assert item.findtext("service_request_id") == rid
    assert item.findtext("status_notes") == "已接收 received"
    assert item.findtext("zipcode") == ""  # empty element for null


def test_post_xml_and_address_only_and_gcj02(desk):
    _, client, key = desk
    r = client.post(
        f"{BASE}/requests.xml",
        data={
            "api_key": key("g2"),
            "service_code": "garbage",
            "address_string": "和平路 3 号",
            "description": "垃圾满溢",
        },
    )
    assert r.status_code == 201 and r.headers["content-type"] == "text/xml; charset=utf-8"
    item = ET.fromstring(r.content).find("request")
    rid = item.findtext("service_request_id")
    assert item.findtext("service_notice").startswith("待调度员定位")
    req = client.get(f"{BASE}/requests/{rid}.json", params={"api_key": key("dispatcher")}).json()
    assert req[0]["status_notes"] == "待定位 awaiting location by a dispatcher"
    assert req[0]["agency_responsible"] == "调度中心 dispatch centre"
    assert req[0]["lat"] is None and req[0]["address"] == "和平路 3 号"

    from gridmap.crs import transform

    lon, lat = apidata.lonlat(300, 100)
    glon, glat = transform(lon, lat, "wgs84", "gcj02")
    body = {"service_code": "water", "lat": str(glat), "long": str(glon), "crs": "gcj02"}
    body["description"] = "漏水"
    j = client.post(f"{BASE}/requests.json", json=body, headers={"X-API-Key": key("dispatcher")})
    assert j.status_code == 201, j.text
    got = client.get(
        f"{BASE}/requests/{j.json()[0]['service_request_id']}.json",
        params={"api_key": key("dispatcher")},
    ).json()[0]
    assert got["agency_responsible"] == f"网格 {apidata.G4}"
    assert got["lat"] == pytest.approx(lat, abs=1e-6)


def test_get_requests_filters(three):
    client, key, (a, b, c) = three
    k = {"api_key": key("dispatcher")}
    window = {"start_date": "2026-09-01T00:00:00+08:00", "end_date": "2026-10-15T00:00:00Z"}

    def ids(**params) -> list[str]:
        r = client.get(f"{BASE}/requests.json", params={**k, **params})
        assert r.status_code == 200, r.text
        return [x["service_request_id"] for x in r.json()]

    assert ids(**window) == [str(c), str(b), str(a)]  # newest first
    assert ids(**window, status="closed") == [str(b)]
    assert ids(**window, status="open") == [str(c), str(a)]
    assert ids(**window, status="open,closed") == [str(c), str(b), str(a)]
    assert ids(**window, service_code="noise,road") == [str(b), str(a)]
    assert ids(**window, service_code="garbage", status="closed") == []
    # end_date is inclusive, to the second; naive times are +08:00
    assert ids(start_date="2026-09-18T10:00:00", end_date="2026-09-18T10:00:00+08:00") == [str(a)]
    assert ids(start_date="2026-09-18T10:00:01+08:00", end_date="2026-09-20") == []
    assert ids(start_date="2026-09-19T00:00:00+08:00") == [str(c), str(b)]  # +90 days
    assert ids(end_date="2026-09-19T00:00:00+08:00") == [str(a)]  # 90 days back
    # without dates: the last 90 days before now
    h = {"X-API-Key": key("dispatcher")}
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
    recent, old = (
        client.post(
            "/cases",
            json=ticket(100, 100, ticket_no=f"T{d}", received_at=(now - d).isoformat()),
            headers=h,
        ).json()["id"]
        for d in (dt.timedelta(days=1), dt.timedelta(days=120))
    )
    assert str(recent) in ids() and str(old) not in ids()
    assert ids(service_request_id=f"{c},{a}", status="closed") == [str(c), str(a)]  # overrides
    assert ids(**window, page_size="2") == [str(c), str(b)]
    assert ids(**window, page_size="2", page="2") == [str(a)]

    r = client.get(f"{BASE}/requests.json", params={**k, **window, "status": "closed"}).json()
    (rej,) = r
    assert rej["status"] == "closed" and rej["status_notes"] == "不予受理 rejected"
    assert rej["service_notice"] is None
    assert rej["requested_datetime"] == "2026-09-20T09:30:00+08:00"
    assert rej["expected_datetime"] == "2026-09-28T23:59:59+08:00"  # 09-25 is Mid-Autumn
    first = client.get(f"{BASE}/requests/{a}.json", params=k).json()[0]
    assert first["requested_datetime"] == "2026-09-18T10:00:00+08:00"
    assert first["expected_datetime"] == "2026-09-22T23:59:59+08:00"
    assert first["status_notes"] == "已接收 received; 已超期 overdue"  # due 09-22, long past
    assert "reporter_name" not in r[0]  # lists never carry personal data

    listed = client.get(f"{BASE}/requests.json", params={**k, **window}).json()
    assert listed[0]["agency_responsible"] == "部门 城管局"  # the lead handler
    assert listed[0]["status_notes"].startswith("已派单 dispatched")
    assert listed[0]["address"] == "和平路"
    for item in listed:  # a page (read in bulk) says what each request (read alone) says
        alone = client.get(
            f"{BASE}/requests/{item['service_request_id']}.json",
            headers={"X-API-Key": key("viewer")},
        ).json()[0]
        assert alone == item

    x = client.get(f"{BASE}/requests.xml", params={**k, **window})
    root = ET.fromstring(x.content)
    assert [e.findtext("service_request_id") for e in root.findall("request")] == [
        str(c),
        str(b),
        str(a),
    ]
    assert root.findall("request")[1].findtext("status") == "closed"


def test_scopes_follow_the_key(three):
    client, key, (a, b, c) = three
    window = {"start_date": "2026-09-01T00:00:00+08:00", "end_date": "2026-10-15T00:00:00+08:00"}

    def ids(who: str) -> list[str]:
        r = client.get(f"{BASE}/requests.json", params=window, headers={"X-API-Key": key(who)})
        return [x["service_request_id"] for x in r.json()]

    assert ids("g1") == [str(a)]
    assert ids("g2") == [str(b)]
    assert ids("viewer") == [str(c), str(b), str(a)]
    other = client.get(f"{BASE}/requests/{c}.json", headers={"X-API-Key": key("g1")})
    assert other.status_code == 403 and "outside" in errors(other)[0]["description"]
    listed = client.get(
        f"{BASE}/requests.json",
        params={"service_request_id": f"{a},{c}"},
        headers={"X-API-Key": key("g1")},
    )
    assert listed.status_code == 403
    own = client.get(f"{BASE}/requests/{a}.json", headers={"X-API-Key": key("g1")})
    assert own.json()[0]["reporter_phone"] == "13812345678"  # the grid handles it


# ----------------------------------------------------------------------------- 4xx


def _count(client, key) -> int:
    return client.get("/cases", headers={"X-API-Key": key("admin")}).json()["total"]


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"service_code": "ufo"}, 400, "unknown service_code 'ufo'; use one of noise"),
        ({"service_code": None}, 400, "service_code is missing"),
        ({"lat": None, "long": None}, 400, "no location: send lat and long"),
        ({"long": None}, 400, "send both lat and long"),
        ({"lat": "north"}, 400, "lat 'north' is not a number"),
        ({"lat": "95"}, 400, "outside [-90.0, 90.0]"),
        ({"lat": "32.2", "long": "118.9"}, 400, "outside every grid of the published plans"),
        ({"description": None}, 400, "description is missing"),
        ({"email": "zhang"}, 400, "not an e-mail address"),
        ({"media_url": "C:/photo.jpg"}, 400, "not an http(s) URL"),
        ({"colour": "red"}, 400, "unknown parameter(s) ['colour']"),
        ({"crs": "mars2000"}, 400, "mars2000"),
        ({"api_key": None}, 401, "needs an API key"),
        ({"api_key": "gm_nope_nope"}, 401, "the API key is unknown"),
        ({"api_key": "viewer"}, 403, "viewer keys cannot create requests"),
    ],
)
def test_bad_posts_are_4xx_and_store_nothing(desk, change, status, words):
    _, client, key = desk
    body = form(api_key=key("dispatcher"))
    for k, v in change.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = key(v) if (k == "api_key" and v == "viewer") else v
    before = _count(client, key)
    r = client.post(f"{BASE}/requests.json", data=body)
    assert r.status_code == status, r.text
    assert words in errors(r)[0]["description"]
    if status == 401:
        assert "WWW-Authenticate" in r.headers
    assert _count(client, key) == before
    rx = client.post(f"{BASE}/requests.xml", data=body)
    err = ET.fromstring(rx.content).find("error")
    assert rx.status_code == status and err.findtext("code") == str(status)


def test_wrong_body_keys_are_counted_and_locked_out_like_header_keys(desk):
    _, client, key = desk
    seen = [
        client.post(f"{BASE}/requests.json", data=form(api_key=f"gm_guess{i}_x")).status_code
        for i in range(12)
    ]
    assert seen[0] == 401 and seen[-1] == 429
    right = client.post(f"{BASE}/requests.json", data=form(api_key=key("dispatcher")))
    assert right.status_code == 429  # locked out: even the right key waits
    assert int(right.headers["Retry-After"]) > 0
    assert "too many wrong API keys" in errors(right)[0]["description"]


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"start_date": "yesterday"}, 400, "start_date 'yesterday' is not a W3C date-time"),
        ({"end_date": "2026-13-01"}, 400, "end_date '2026-13-01' is not a W3C date-time"),
        (
            {"start_date": "2026-10-01", "end_date": "2026-09-01"},
            400,
            "is before start_date",
        ),
        ({"start_date": "2026-01-01", "end_date": "2026-06-01"}, 400, "at most 90"),
        ({"status": "pending"}, 400, "status pending is not open or closed"),
        ({"service_code": "noise,ufo"}, 400, "unknown service_code 'ufo'"),
        ({"service_request_id": "1,x"}, 400, "'x' is not a request id"),
        ({"service_request_id": "999"}, 404, "no case 999"),
        ({"page_size": "5000"}, 400, "page_size '5000' must be a whole number from 1 to 1000"),
        ({"api_key": None}, 401, "needs an API key"),
    ],
)
def test_bad_gets_are_4xx(desk, params, status, words):
    _, client, key = desk
    query = {"api_key": key("viewer"), **params}
    query = {k: v for k, v in query.items() if v is not None}
    r = client.get(f"{BASE}/requests.json", params=query)
    assert r.status_code == status, r.text
    assert words in errors(r)[0]["description"]


def test_unknown_single_request_is_404(desk):
    _, client, key = desk
    for rid in ("999", "abc"):
        r = client.get(f"{BASE}/requests/{rid}.json", params={"api_key": key("viewer")})
        assert r.status_code == 404 and "no " in errors(r)[0]["description"]


# ----------------------------------------------------------------------------- georeport client


@pytest.fixture
def served(three) -> Iterator[tuple[str, str, tuple[int, int, int]]]:
    """A real uvicorn server over the same store as ``three``; yields (root, key, ids)."""
    import uvicorn

    client, key, ids = three
    store = client.app.state.store  # type: ignore[attr-defined]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(database_url="sqlite://", cases_sweep_seconds=0), store=store)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}{BASE}", key("dispatcher"), ids
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_georeport_client_reads_services_and_requests(served, monkeypatch):
    georeport = pytest.importorskip("georeport")
    import georeport.georeport as client_module
    import requests

    root, key, (a, b, c) = served

    class Keyed:
        """The client sends no key on GETs: add ours as the spec's api_key parameter."""

        @staticmethod
        def get(url, params=None, **kw):
            return requests.get(url, params={**(params or {}), "api_key": key}, **kw)

    monkeypatch.setattr(client_module, "requests", Keyed)
    window = {"start_date": "2026-09-01T00:00:00+08:00", "end_date": "2026-10-15T00:00:00+08:00"}
    for fmt in ("json", "xml"):
        gr = georeport.GeoReport(root, output_format=fmt)
        assert [s["service_code"] for s in gr.get_service_list()] == CODES
        assert gr.get_service_definition("road")["service_code"] == "road"
        listed = gr.get_service_requests(**window)
        assert [r["service_request_id"] for r in listed] == [str(c), str(b), str(a)]
        closed = gr.get_service_requests(status="closed", **window)
        if fmt == "xml":  # xmltodict gives a dict, not a list, for one element
            closed = [closed]
        assert [(r["service_request_id"], r["status"]) for r in closed] == [(str(b), "closed")]
        one = gr.get_service_request(str(a))
        assert one["status_notes"] == "已接收 received; 已超期 overdue"
        assert one["expected_datetime"] == "2026-09-22T23:59:59+08:00"


def test_the_document_gives_each_answer_in_json_and_xml(store_and_client):
    """Every Open311 answer a ``.xml`` call can get is documented as ``text/xml`` too."""
    _, client, headers = store_and_client
    doc = client.get("/openapi.json").json()
    ops = [
        (f"{method.upper()} {path}", op)
        for path, item in doc["paths"].items()
        if path.startswith(BASE)
        for method, op in item.items()
    ]
    assert len(ops) == 6
    for label, op in ops:
        ok = "201" if label.startswith("POST") else "200"
        for code in (ok, "400", "401", "403", "404", "429"):
            media = set(op["responses"][code]["content"])
            assert media == {"application/json", "text/xml"}, (label, code, media)
    # and what a .xml call gets is what the document says
    missing = client.get(f"{BASE}/requests/999.xml", headers=headers("viewer"))
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/xml")
