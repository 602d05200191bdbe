"""Map pages: a plan, a located point (staff only for dispatchers), a diff."""

from __future__ import annotations

import re

import pytest
from apidata import G1, G3, G5, lonlat
from maphtml import external, features, resources
from pydantic import ValidationError

from gridmap.api.routes.maps import STATIC_CACHE, MapSettings, get_map_settings
from gridmap.maps.assets import CDN_FILES, vendored_file


def marker(html: str) -> tuple[float, float]:
    """(lon, lat) of the page's one incident marker."""
    ((lat, lon),) = re.findall(r"L\.marker\(\s*\[([-\d.]+), ([-\d.]+)\]", html)
    return float(lon), float(lat)


def test_plan_and_diff_maps(city) -> None:
    _, client, headers, pid = city
    r = client.get(f"/maps/plans/{pid}", headers=headers("viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert G1 in r.text and "13900000001" not in r.text
    r = client.get(f"/maps/diff/{pid}/{pid}", headers=headers("viewer"))
    assert r.status_code == 200
    assert client.get(f"/maps/plans/{pid}").status_code == 401
    assert client.get("/maps/plans/999", headers=headers("viewer")).status_code == 404


def test_plan_map_has_every_layer_and_staff_by_role(city) -> None:
    _, client, headers, pid = city
    viewer = client.get(f"/maps/plans/{pid}", headers=headers("viewer")).text
    grids = features(viewer, "boundary_desc")
    assert sorted(f["id"] for f in grids) == sorted([G1, G3, G5, f"{G1[:-3]}002", f"{G1[:-3]}004"])
    # community and sub-district boundaries and the 8 buildings come from the stored layers
    assert {f["properties"]["name"] for f in features(viewer, "community_id")} == {
        "幸福社区",
        "和平社区",
    }
    assert [f["properties"]["street_code"] for f in features(viewer, "street_code")] == [
        "320104001"
    ]
    assert len(features(viewer, "building_id")) == 8
    # viewers: no chief in the tooltips and no staff name anywhere in the page
    assert "chief" not in grids[0]["properties"] and "王网格" not in viewer
    dispatcher = client.get(f"/maps/plans/{pid}", headers=headers("dispatcher")).text
    chiefs = {f["id"]: f["properties"]["chief"] for f in features(dispatcher, "boundary_desc")}
    assert "王网格" in chiefs.values()
    bare = client.get(f"/maps/plans/{pid}?buildings=false", headers=headers("viewer")).text
    assert '"building_id"' not in bare
    quality = client.get(f"/maps/plans/{pid}?kind=quality", headers=headers("viewer")).text
    assert len(features(quality, "reasons")) == 5


def test_plan_map_leaves_out_the_buildings_of_a_large_plan_and_says_so(city, monkeypatch) -> None:
    from gridmap.api.routes import maps as map_routes

    _, client, headers, pid = city
    (area,) = client.app.state.locator.areas
    assert map_routes._building_count(area) == 8
    monkeypatch.setattr(map_routes, "MAP_BUILDINGS_MAX", 7)
    page = client.get(f"/maps/plans/{pid}", headers=headers("viewer")).text
    assert '"building_id"' not in page
    assert "Buildings not drawn: 8 is more than 7" in page
    assert len(features(page, "boundary_desc")) == 5  # the grids and communities stay
    assert {f["properties"]["name"] for f in features(page, "community_id")} == {
        "幸福社区",
        "和平社区",
    }
    monkeypatch.setattr(map_routes, "MAP_BUILDINGS_MAX", 8)
    page = client.get(f"/maps/plans/{pid}", headers=headers("viewer")).text
    assert len(features(page, "building_id")) == 8 and "Buildings not drawn" not in page


def test_diff_map_under_the_plans_path(city) -> None:
    _, client, headers, pid = city
    r = client.get(f"/maps/plans/{pid}/diff/{pid}", headers=headers("viewer"))
    assert r.status_code == 200, r.text
    status = {f["id"]: f["properties"]["status"] for f in features(r.text, "moved_in")}
    assert set(status.values()) == {"unchanged"} and len(status) == 5
    assert client.get(f"/maps/plans/{pid}/diff/{pid}").status_code == 401
    r = client.get(f"/maps/plans/{pid}/diff/999", headers=headers("viewer"))
    assert r.status_code == 404
    schema = client.get("/openapi.json").json()["paths"]
    assert {"/maps/plans/{plan_id}", "/maps/locate", "/maps/plans/{a}/diff/{b}"} <= set(schema)


@pytest.mark.parametrize("path", ["/maps/locate", "/maps/incident"])
def test_incident_map_staff_by_role(city, path) -> None:
    _, client, headers, _ = city
    lon, lat = lonlat(50, 50)
    params = {"lon": lon, "lat": lat, "incident_id": "T-1"}
    r = client.get(path, params=params, headers=headers("dispatcher"))
    assert r.status_code == 200, r.text
    assert G3 in r.text and "13900000001" in r.text
    r = client.get(path, params=params, headers=headers("viewer"))
    assert G3 in r.text and "13900000001" not in r.text and "王网格" not in r.text
    r = client.get(path, params={"lon": lat, "lat": lon}, headers=headers("viewer"))
    assert r.status_code == 400 and "swapped" in r.json()["detail"]
    assert client.get(path, params=params).status_code == 401


def test_locate_map_reads_gcj02_and_shifts_for_amap_tiles(city) -> None:
    from gridmap.crs import transform

    _, client, headers, _ = city
    lon, lat = lonlat(50, 50)
    glon, glat = transform(lon, lat, "wgs84", "gcj02")
    params = {"lon": glon, "lat": glat, "crs": "gcj02"}
    osm = client.get("/maps/locate", params=params, headers=headers("viewer")).text
    assert f"网格 Grid: <b>{G3}</b>" in osm
    assert marker(osm) == pytest.approx((lon, lat), abs=2e-6)  # de-offset to WGS84 for OSM
    amap = client.get(
        "/maps/locate", params={**params, "tiles": "amap"}, headers=headers("viewer")
    ).text
    assert "autonavi.com" in amap and "openstreetmap" not in amap
    assert marker(amap) == pytest.approx((glon, glat), abs=2e-6)  # as the phone reported it
    assert features(osm, "boundary_desc")[0]["id"] == G3  # the incident's grid comes first
    grid_osm = features(osm, "boundary_desc")[0]["geometry"]["coordinates"][0][0]
    grid_amap = features(amap, "boundary_desc")[0]["geometry"]["coordinates"][0][0]
    # the GCJ-02 overlay is shifted by the public offset (hundreds of metres)
    assert grid_amap == pytest.approx(transform(*grid_osm, "wgs84", "gcj02"), abs=2e-6)
    assert abs(grid_amap[0] - grid_osm[0]) > 0.004
    r = client.get("/maps/locate", params={**params, "tiles": "nope"}, headers=headers("viewer"))
    assert r.status_code == 400 and "unknown tiles preset" in r.json()["detail"]


def test_base_map_is_configurable_for_the_deployment(city) -> None:
    _, client, headers, pid = city
    local = MapSettings(
        tiles="http://tiles.local/{z}/{x}/{y}.png", tiles_attr="&copy; 本地瓦片 Local tiles"
    )
    client.app.dependency_overrides[get_map_settings] = lambda: local
    try:
        page = client.get(f"/maps/plans/{pid}", headers=headers("viewer")).text
        assert "http://tiles.local/{z}/{x}/{y}.png" in page and "openstreetmap" not in page
        # a request can still pick a preset
        page = client.get(f"/maps/plans/{pid}?tiles=osm", headers=headers("viewer")).text
        assert "tile.openstreetmap.org" in page
    finally:
        client.app.dependency_overrides.pop(get_map_settings)
    assert MapSettings().tiles == "osm"


def test_map_settings_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("GRIDMAP_MAP_TILES", "amap")
    monkeypatch.setenv("GRIDMAP_MAP_TILES_KEY", "k")
    s = MapSettings()
    assert s.options() == {
        "tiles": "amap",
        "attr": None,
        "tiles_key": "k",
        "tiles_crs": None,
        "assets": "/maps/static/",
    }
    assert s.options("none")["tiles"] is None


# --------------------------------------------------------------------------- offline pages


def test_map_pages_load_leaflet_from_this_server_without_a_key(city) -> None:
    _, client, headers, pid = city
    lon, lat = lonlat(50, 50)
    pages = [
        f"/maps/plans/{pid}",
        f"/maps/plans/{pid}?kind=quality",
        f"/maps/plans/{pid}/diff/{pid}",
        f"/maps/locate?lon={lon}&lat={lat}",
        f"/maps/incident?lon={lon}&lat={lat}",
        f"/maps/diff/{pid}/{pid}",
    ]
    fetched = set()
    for page in pages:
        html = client.get(page, headers=headers("viewer")).text
        refs = resources(html)
        assert external(html) == [] and len(refs) >= 5, page
        assert all(r.startswith("/maps/static/") for r in refs), page
        fetched.update(refs)
    assert len(fetched) == 7  # leaflet, jquery, search, fullscreen: js + css
    for ref in sorted(fetched):
        r = client.get(ref)  # no key: these are public libraries
        assert r.status_code == 200, ref
        assert r.headers["cache-control"] == STATIC_CACHE == "public, max-age=31536000, immutable"
        assert r.content == vendored_file(ref.removeprefix("/maps/static/")).read_bytes()
    # stylesheets find their images next to them
    for ref in ("leaflet-1.9.3/dist/images/layers.png", "leaflet-search-2.9.7/images/loader.gif"):
        assert client.get(f"/maps/static/{ref}").status_code == 200
    schema = client.get("/openapi.json").json()["paths"]
    assert "security" not in schema["/maps/static/{path}"]["get"]
    assert "security" in schema["/maps/plans/{plan_id}"]["get"]


def test_static_files_have_types_etags_and_stay_in_their_folder(city) -> None:
    _, client, _, _ = city
    base = "/maps/static/"
    r = client.get(base + "leaflet-1.9.3/dist/leaflet.js")
    assert r.headers["content-type"] == "text/javascript; charset=utf-8" and len(r.content) > 1e5
    again = client.get(
        base + "leaflet-1.9.3/dist/leaflet.js", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["cache-control"] == STATIC_CACHE
    for rel, media in [
        ("leaflet-1.9.3/dist/leaflet.css", "text/css; charset=utf-8"),
        ("leaflet.fullscreen-3.0.0/icon-fullscreen.svg", "image/svg+xml"),
        ("leaflet-1.9.3/dist/images/marker-icon.png", "image/png"),
    ]:
        assert client.get(base + rel).headers["content-type"] == media
    for bad in (
        "..%2F..%2Fmap_assets.py",
        "%2e%2e/%2e%2e/map_assets.py",
        "leaflet-1.9.3/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        "%2Fetc%2Fpasswd",
        "..%5C..%5Cmap_assets.py",
        "leaflet-1.9.3/dist/",
        "leaflet-1.9.3/dist/leaflet.js.map",
    ):
        r = client.get(base + bad)
        assert r.status_code == 404, bad
        assert r.headers["content-type"] == "application/problem+json"
        assert "no vendored map file" in r.json()["detail"]


def test_assets_of_a_page_by_request_and_by_deployment(city, monkeypatch) -> None:
    _, client, headers, pid = city
    page = f"/maps/plans/{pid}"
    inline = client.get(f"{page}?assets=inline", headers=headers("viewer")).text
    assert "<script src=" not in inline and external(inline) == []
    assert "Leaflet 1.9.3" in inline and len(inline) > 250_000
    cdn = client.get(f"{page}?assets=cdn", headers=headers("viewer")).text
    assert len(external(cdn)) == 7 and set(external(cdn)) <= set(CDN_FILES)
    bad = client.get(f"{page}?assets=elsewhere", headers=headers("viewer"))
    assert bad.status_code == 422
    mirror = MapSettings(assets="http://gis.intranet/gridmap-static")
    client.app.dependency_overrides[get_map_settings] = lambda: mirror
    try:
        html = client.get(page, headers=headers("viewer")).text
        assert (
            resources(html)[0] == "http://gis.intranet/gridmap-static/leaflet-1.9.3/dist/leaflet.js"
        )
        served = client.get(f"{page}?assets=served", headers=headers("viewer")).text
        assert resources(served)[0] == "/maps/static/leaflet-1.9.3/dist/leaflet.js"
    finally:
        client.app.dependency_overrides.pop(get_map_settings)
    monkeypatch.setenv("GRIDMAP_MAP_ASSETS", "offline")
    with pytest.raises(ValidationError, match="neither 'cdn', 'inline' nor a URL prefix"):
        MapSettings()
    monkeypatch.setenv("GRIDMAP_MAP_ASSETS", "INLINE")
    assert MapSettings().options()["assets"] == "inline"
