"""OGC API – Features over HTTP (both backends), and GDAL's OAPIF driver on a real server."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from apidata import G1, G2, G3, G4, G5, lonlat
from clirun import free_port

from gridmap.api import Settings, create_app

GEOJSON = "application/geo+json"


def test_landing_and_conformance_are_open(city) -> None:
    _, client, _, _ = city
    r = client.get("/")
    assert r.status_code == 200
    rels = {link["rel"]: link["href"] for link in r.json()["links"]}
    assert set(rels) >= {"self", "service-desc", "service-doc", "conformance", "data"}
    assert rels["data"].endswith("/collections")
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_collections_need_a_viewer_key(city) -> None:
    _, client, headers, _ = city
    for path in ("/collections", "/collections/grids", "/collections/grids/items"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["content-type"].startswith("application/problem+json")
        assert client.get(path, headers=headers("viewer")).status_code == 200


def test_collections_list(city) -> None:
    _, client, headers, _ = city
    body = client.get("/collections", headers=headers("viewer")).json()
    assert [c["id"] for c in body["collections"]] == ["grids", "communities", "buildings"]
    grids = body["collections"][0]
    x0, y0, x1, y1 = grids["extent"]["spatial"]["bbox"][0]
    corners = [lonlat(x, y) for x in (0, 800) for y in (0, 400)]
    assert x0 == pytest.approx(min(c[0] for c in corners), abs=1e-9)
    assert y1 == pytest.approx(max(c[1] for c in corners), abs=1e-9)
    assert x1 > x0 and y1 > y0
    assert any(link["rel"] == "items" for link in grids["links"])


def test_items_paging_and_item(city) -> None:
    _, client, headers, pid = city
    r = client.get("/collections/grids/items", params={"limit": 2}, headers=headers("viewer"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(GEOJSON)
    page = r.json()
    assert page["type"] == "FeatureCollection"
    assert page["numberMatched"] == 5 and page["numberReturned"] == 2
    assert [f["id"] for f in page["features"]] == [G1, f"{G1[:-1]}2"]
    feat = page["features"][0]
    assert feat["geometry"]["type"] == "Polygon"
    assert feat["properties"]["plan_id"] == pid
    assert feat["properties"]["boundary_desc"].startswith("东至")
    ids = [f["id"] for f in page["features"]]
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    while nxt:
        page = client.get(nxt, headers=headers("viewer")).json()
        ids += [f["id"] for f in page["features"]]
        nxt = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(ids) == 5 and ids[-1] == G5
    r = client.get(f"/collections/grids/items/{G3}", headers=headers("viewer"))
    assert r.json()["id"] == G3 and r.json()["properties"]["community_id"] == "c1"
    r = client.get("/collections/communities/items/c2", headers=headers("viewer"))
    assert r.json()["properties"]["code"] == "320104001002"
    r = client.get("/collections/buildings/items", params={"limit": 100}, headers=headers("viewer"))
    props = r.json()["features"][0]["properties"]
    assert r.json()["numberMatched"] == 8
    assert set(props) == {
        "building_id",
        "name",
        "use",
        "households",
        "levels",
        "community_id",
        "grid_code",
    }


def test_items_bbox(city) -> None:
    _, client, headers, _ = city
    a = lonlat(420, 20)
    b = lonlat(780, 380)
    bbox = f"{a[0]},{a[1]},{b[0]},{b[1]}"
    page = client.get(
        "/collections/grids/items", params={"bbox": bbox}, headers=headers("viewer")
    ).json()
    assert [f["id"] for f in page["features"]] == [G5]
    page = client.get(
        "/collections/buildings/items", params={"bbox": bbox}, headers=headers("viewer")
    ).json()
    assert sorted(f["id"] for f in page["features"]) == ["b20", "b21", "b30", "b31"]


@pytest.mark.parametrize(
    ("path", "params", "status", "match"),
    [
        ("/collections/roads", {}, 404, "no collection 'roads'"),
        ("/collections/grids/items/nope", {}, 404, "no feature 'nope'"),
        ("/collections/grids/items", {"bbox": "1,2,3"}, 400, "4 (or 6) finite numbers"),
        ("/collections/grids/items", {"bbox": "a,b,c,d"}, 400, "not 4 numbers"),
        ("/collections/grids/items", {"bbox": "32,118,33,119"}, 400, "swapped"),
        ("/collections/grids/items", {"limit": 0}, 422, "limit"),
        ("/collections/grids/items", {"colour": "red"}, 400, "unknown query parameter(s) colour"),
        ("/collections/grids/items", {"crs": "EPSG:3857"}, 400, "is not served"),
        ("/collections/grids/items", {"f": "html"}, 400, "GeoJSON"),
        (f"/collections/grids/items/{G1}", {"bbox": "1,2,3,4"}, 400, "unknown query"),
    ],
)
def test_items_errors(city, path, params, status, match) -> None:
    _, client, headers, _ = city
    r = client.get(path, params=params, headers=headers("viewer"))
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    assert match in r.json()["detail"]


def test_conformance_classes_match_the_api_definition(city) -> None:
    _, client, _, _ = city
    conf = client.get("/conformance").json()["conformsTo"]
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert not any(c.endswith("/conf/oas30") for c in conf)  # the document is OpenAPI 3.1
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conf
    desc = next(x for x in client.get("/").json()["links"] if x["rel"] == "service-desc")
    assert desc["type"].endswith("version=3.1")
    params = doc["paths"]["/collections/{collection_id}/items"]["get"]["parameters"]
    limit = next(p for p in params if p["name"] == "limit")["schema"]
    assert (limit["default"], limit["minimum"], limit["maximum"]) == (100, 1, 10_000)
    assert {p["name"] for p in params} >= {"bbox", "bbox-crs", "crs", "datetime", "offset"}


def test_a_limit_above_the_maximum_is_served_as_the_maximum(city) -> None:
    _, client, headers, _ = city
    r = client.get("/collections/grids/items", params={"limit": 10**9}, headers=headers("viewer"))
    assert r.status_code == 200
    page = r.json()
    assert page["numberMatched"] == page["numberReturned"] == 5
    assert "limit=10000" in page["links"][0]["href"]


def test_queryables_and_property_filters(city) -> None:
    _, client, headers, _ = city
    r = client.get("/collections/grids/queryables", headers=headers("viewer"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/schema+json")
    props = r.json()["properties"]
    assert props["households"]["type"] == "integer"
    assert props["community_id"]["type"] == "string"
    page = client.get(
        "/collections/grids/items",
        params={"community_id": "c1", "limit": 3},
        headers=headers("viewer"),
    ).json()
    assert page["numberMatched"] == 4 and page["numberReturned"] == 3
    assert {f["properties"]["community_id"] for f in page["features"]} == {"c1"}
    nxt = next(x["href"] for x in page["links"] if x["rel"] == "next")
    assert "community_id=c1" in nxt  # filters carry over to the next page
    rest = client.get(nxt, headers=headers("viewer")).json()
    assert [f["id"] for f in rest["features"]] == [G4]
    none = client.get(
        "/collections/grids/items", params={"grid_code": "nope"}, headers=headers("viewer")
    ).json()
    assert none["numberMatched"] == 0 and none["features"] == []


def test_items_in_cgcs2000_are_latitude_first(city) -> None:
    _, client, headers, _ = city
    cgcs = "http://www.opengis.net/def/crs/EPSG/0/4490"
    coll = client.get("/collections/grids", headers=headers("viewer")).json()
    assert cgcs in coll["crs"]
    plain = client.get(f"/collections/grids/items/{G3}", headers=headers("viewer"))
    assert plain.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    r = client.get(
        f"/collections/grids/items/{G3}", params={"crs": cgcs}, headers=headers("viewer")
    )
    assert r.headers["content-crs"] == f"<{cgcs}>"
    lon, lat = plain.json()["geometry"]["coordinates"][0][0]
    assert r.json()["geometry"]["coordinates"][0][0] == [lat, lon]
    # a bbox in CGCS2000 is latitude first too
    a, b = lonlat(420, 20), lonlat(780, 380)
    page = client.get(
        "/collections/grids/items",
        params={"bbox": f"{a[1]},{a[0]},{b[1]},{b[0]}", "bbox-crs": cgcs},
        headers=headers("viewer"),
    ).json()
    assert [f["id"] for f in page["features"]] == [G5]


def test_buildings_are_paged_from_the_store(city) -> None:
    _, client, headers, _ = city
    h = headers("viewer")

    def get(**params):
        r = client.get("/collections/buildings/items", params=params, headers=h)
        assert r.status_code == 200, r.text
        return r.json()

    def ids(page):
        return [f["id"] for f in page["features"]]

    # every page is a query: the service keeps no building (only the extent, once)
    seen, page = [], get(limit=3)
    while True:
        assert page["numberMatched"] == 8
        seen += ids(page)
        nxt = next((x["href"] for x in page["links"] if x["rel"] == "next"), None)
        if nxt is None:
            break
        page = client.get(nxt, headers=h).json()
    assert seen == [f"b{gx}{gy}" for gx in range(4) for gy in range(2)]
    kept = client.app.state.ogc_cache[2]["buildings"]
    assert not hasattr(kept, "records") and not hasattr(kept, "geoms")
    # property filters: the grid (the plan's membership), numbers, the community
    assert ids(get(grid_code=G5)) == ["b20", "b21", "b30", "b31"]
    assert ids(get(grid_code=G3)) == ["b00"]
    assert ids(get(households="70")) == ids(get(households="70.0")) == ["b10"]
    assert get(households="many")["numberMatched"] == 0
    page = get(community_id="c1", limit=2, offset=1)
    assert (page["numberMatched"], ids(page)) == (4, ["b01", "b10"])
    # a bbox holding b00 whole and crossing the edge of b10 (x 230..290, y 30..70)
    a, b = lonlat(20, 20), lonlat(250, 80)
    box = f"{a[0]},{a[1]},{b[0]},{b[1]}"
    assert ids(get(bbox=box)) == ["b00", "b10"]
    assert ids(get(bbox=box, grid_code=G4)) == ["b10"]
    page = get(bbox=box, limit=1, offset=1)
    assert (page["numberMatched"], ids(page)) == (2, ["b10"])
    a, b = lonlat(100, 100), lonlat(190, 190)  # between the buildings
    assert get(bbox=f"{a[0]},{a[1]},{b[0]},{b[1]}")["numberMatched"] == 0
    # one building; one that is not there
    r = client.get("/collections/buildings/items/b21", headers=h).json()
    assert r["geometry"]["type"] == "Polygon"
    props = r["properties"]
    assert (props["grid_code"], props["households"], props["community_id"]) == (G5, 81, "c2")
    r = client.get("/collections/buildings/items/nope", headers=h)
    assert r.status_code == 404 and "no feature 'nope'" in r.json()["detail"]
    # the extent is the buildings' (x 30..690, y 30..270), not the communities'
    coll = client.get("/collections/buildings", headers=h).json()
    x0, y0, x1, y1 = coll["extent"]["spatial"]["bbox"][0]
    corners = [lonlat(x, y) for x in (30, 690) for y in (30, 270)]
    assert x0 == pytest.approx(min(c[0] for c in corners), abs=1e-7)
    assert y1 == pytest.approx(max(c[1] for c in corners), abs=1e-7)
    queryables = client.get("/collections/buildings/queryables", headers=h).json()
    assert queryables["properties"]["households"]["type"] == "integer"


# ----------------------------------------------------------------------------- GDAL


@pytest.fixture
def live_server(city):
    """A real uvicorn server on 127.0.0.1 over the same store."""
    store, _, headers, _ = city
    port = free_port()
    app = create_app(Settings(database_url="sqlite://"), store=store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", headers
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="ogrinfo (gdal-bin) not installed")
def test_gdal_oapif_reads_grids(live_server) -> None:
    base, headers = live_server
    key = headers("viewer")["X-API-Key"]
    cmd = [
        "ogrinfo",
        "-ro",
        "-so",
        "--config",
        "GDAL_HTTP_HEADERS",
        f"X-API-Key: {key}",
        f"OAPIF:{base}/",
        "grids",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Feature Count: 5" in out.stdout
    assert "grid_code" in out.stdout and "boundary_desc" in out.stdout
    full = subprocess.run(
        [c for c in cmd if c != "-so"] + ["-where", f"grid_code = '{G3}'"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert full.returncode == 0, full.stderr
    assert "幸福社区" not in full.stdout  # grids carry codes, not community names
    assert G3 in full.stdout
    # without a key the collections are refused
    denied = subprocess.run(
        ["ogrinfo", "-ro", "-so", f"OAPIF:{base}/", "grids"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert denied.returncode != 0


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="ogrinfo (gdal-bin) not installed")
def test_gdal_oapif_follows_next_links_and_bbox(live_server) -> None:
    """GDAL pages through every grid 2 at a time (``next`` links) and filters by bbox."""
    base, headers = live_server
    key = headers("viewer")["X-API-Key"]
    common = ["ogrinfo", "-ro", "-q", "--config", "GDAL_HTTP_HEADERS", f"X-API-Key: {key}"]
    out = subprocess.run(
        [*common, "-oo", "PAGE_SIZE=2", f"OAPIF:{base}/", "grids"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    codes = [ln.split("=")[-1].strip() for ln in out.stdout.splitlines() if "grid_code (" in ln]
    assert sorted(codes) == [G1, G2, G3, G4, G5]  # 3 pages of 2
    lon0, lat0 = lonlat(20, 20)
    lon1, lat1 = lonlat(120, 120)  # inside grid 3 only
    out = subprocess.run(
        [
            *common,
            "-spat",
            repr(lon0),
            repr(lat0),
            repr(lon1),
            repr(lat1),
            f"OAPIF:{base}/",
            "grids",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    codes = [ln.split("=")[-1].strip() for ln in out.stdout.splitlines() if "grid_code (" in ln]
    assert codes == [G3]


def test_owslib_reads_every_grid_and_filters(live_server) -> None:
    """OWSLib, an independent OGC client, reads the collections and pages of items."""
    from owslib.ogcapi.features import Features

    base, headers = live_server
    api = Features(base + "/", headers=headers("viewer"))
    assert {"grids", "communities", "buildings"} <= {
        c["id"] for c in api.collections()["collections"]
    }
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in api.conformance()["conformsTo"]
    )
    page = api.collection_items("grids", limit=10)
    assert sorted(f["id"] for f in page["features"]) == [G1, G2, G3, G4, G5]
    assert page["numberMatched"] == 5
    q = api.collection_queryables("grids")
    assert "grid_code" in q["properties"]
    c1 = api.collection_items("communities", community_id="c1")
    assert [f["properties"]["name"] for f in c1["features"]] == ["幸福社区"]


QGIS_PYTHON = os.environ.get("GRIDMAP_QGIS_PYTHON", "/usr/bin/python3")


def _has_qgis() -> bool:
    if not Path(QGIS_PYTHON).exists():
        return False
    probe = subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, timeout=60)
    return probe.returncode == 0


def _qgis_read(base: str, collection: str, key: str, mode: str) -> dict:
    script = Path(__file__).with_name("qgis_read.py")
    out = subprocess.run(
        [QGIS_PYTHON, str(script), base, collection, key, mode],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.qgis
def test_qgis_loads_the_collections_with_its_basic_authentication(live_server) -> None:
    """Real PyQGIS (the Debian LTR): Basic authentication with the key as password."""
    if not _has_qgis():
        pytest.skip(f"PyQGIS not available for {QGIS_PYTHON} (Debian: apt install python3-qgis)")
    base, headers = live_server
    key = headers("viewer")["X-API-Key"]
    grids = _qgis_read(base, "grids", key, "basic")
    assert grids["valid"] and grids["count"] == 5
    assert "grid_code" in grids["fields"] and "boundary_desc" in grids["fields"]
    communities = _qgis_read(base, "communities", key, "basic")
    assert communities["count"] == 2
    assert sorted(communities["names"]) == sorted(["幸福社区", "和平社区"])  # Chinese intact
    buildings = _qgis_read(base, "buildings", key, "url")  # the key in the URL
    assert buildings["valid"] and buildings["count"] == 8
    wrong = _qgis_read(base, "grids", "not-a-key", "basic")
    assert not wrong["valid"] or wrong["count"] == 0


def test_basic_authentication_and_url_keys_are_for_reading_only(city) -> None:
    _, client, headers, _ = city
    key = headers("viewer")["X-API-Key"]
    basic = {"Authorization": "Basic " + base64.b64encode(f"qgis:{key}".encode()).decode()}
    assert client.get("/collections/grids", headers=basic).status_code == 200
    r = client.get("/collections/grids/items", params={"api_key": key, "limit": 2})
    assert r.status_code == 200 and r.json()["numberReturned"] == 2
    nxt = next(x["href"] for x in r.json()["links"] if x["rel"] == "next")
    assert f"api_key={key}" in nxt  # QGIS and GDAL follow next links as given
    wrong = {"Authorization": "Basic " + base64.b64encode(b"qgis:nope").decode()}
    r = client.get("/collections/grids", headers=wrong)
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]
    admin = headers("admin")["X-API-Key"]
    admin_basic = {"Authorization": "Basic " + base64.b64encode(f"x:{admin}".encode()).decode()}
    # a request that changes something never takes the key from Basic or the URL
    assert (
        client.post("/keys", headers=admin_basic, json={"name": "n", "role": "viewer"}).status_code
        == 401
    )
    assert (
        client.post(
            "/keys", params={"api_key": admin}, json={"name": "n", "role": "viewer"}
        ).status_code
        == 401
    )
