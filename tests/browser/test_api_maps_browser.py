"""The API's map pages (``/maps/...``) served by a real uvicorn, opened in headless Chromium."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import shapely
from clirun import free_port
from conftest import FIND_MAP, TILE_HOSTS, OpenedMap, _attach

from gridmap.crs import transform

pytestmark = pytest.mark.browser

COUNT_FEATURES = """([name, key]) => {
    let n = 0;
    window[name].eachLayer(l => {
        if (l.feature && l.feature.properties && key in l.feature.properties) n++;
    });
    return n;
}"""

GRID_SCREEN_POINT = """([name, code, lat, lon]) => {
    const map = window[name];
    map.setView([lat, lon], 17, {animate: false});
    const pt = map.latLngToContainerPoint([lat, lon]);
    const r = map.getContainer().getBoundingClientRect();
    return [r.left + pt.x, r.top + pt.y];
}"""


@dataclass
class Service:
    base: str
    keys: dict[str, str]
    plan_id: int
    n_grids: int
    n_buildings: int
    inside: tuple[str, float, float]  # a grid code and a WGS84 point well inside it
    chief: str


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A small synthetic city partitioned, staffed and published; the API on a free port."""
    uvicorn = pytest.importorskip("uvicorn")
    from gridmap.api import Settings, create_app
    from gridmap.db import Store, save_layers, save_plan
    from gridmap.db.keys import create_key
    from gridmap.partition import partition
    from gridmap.staffing import assign_staff
    from gridmap.synth import synth_city
    from gridmap.validation import validate_layers

    layers, _ = validate_layers(synth_city(n_buildings=300, seed=2))
    plan = partition(layers, seed=0)
    plan = assign_staff(plan, layers.staff).to_plan(plan)
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'gridmap.db'}"
    store = Store.from_url(url)
    save_layers(store, layers, author="pytest")
    rec = save_plan(store, plan, author="pytest", status="published")
    keys = {
        r: create_key(store, name=r, role=r, author="pytest")[1] for r in ("viewer", "dispatcher")
    }
    staffed = plan.assignments.dropna(subset=["staff_id"])
    chiefs = staffed[staffed["role"] == "chief"]
    code = str(chiefs["grid_code"].iloc[0])
    geom = plan.grids.set_index("grid_code").geometry[code]
    p = shapely.get_point(shapely.maximum_inscribed_circle(geom), 0)  # far from the edges
    lon, lat = transform(p.x, p.y, plan.crs, "wgs84")

    port = free_port()
    app = create_app(Settings(database_url=url), store=store)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "uvicorn did not start"
    try:
        yield Service(
            base=f"http://127.0.0.1:{port}",
            keys=keys,
            plan_id=rec.id,
            n_grids=plan.n_grids,
            n_buildings=len(layers.buildings),
            inside=(code, float(lon), float(lat)),
            chief=str(chiefs["name"].iloc[0]),
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()


def assert_clean(opened) -> None:
    assert opened.page_errors == []
    assert opened.console_errors == []
    assert opened.unexpected == []


def test_plan_map_page_of_the_api(service, open_url, artifacts: Path) -> None:
    opened = open_url(
        f"{service.base}/maps/plans/{service.plan_id}", {"X-API-Key": service.keys["viewer"]}
    )
    assert_clean(opened)
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "boundary_desc"]) == service.n_grids
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "building_id"]) == (
        service.n_buildings
    )
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "street_code"]) == 1
    code, lon, lat = service.inside
    opened.page.screenshot(path=str(artifacts / "api_plan_map.png"))
    x, y = opened.evaluate(GRID_SCREEN_POINT, [opened.map_name, code, lat, lon])
    opened.page.locator(".leaflet-control-layers").hover()
    opened.page.locator(".leaflet-control-layers-overlays label", has_text="楼栋 Buildings").click()
    opened.page.mouse.click(x, y)
    popup = opened.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    assert code in popup.inner_text() and "四至 Boundaries" in popup.inner_text()
    assert service.chief not in opened.page.content()  # viewers get no staff names
    assert_clean(opened)


def test_locate_map_page_shows_staff_to_dispatchers(service, open_url, artifacts: Path) -> None:
    code, lon, lat = service.inside
    glon, glat = transform(lon, lat, "wgs84", "gcj02")
    url = f"{service.base}/maps/locate?lon={glon}&lat={glat}&crs=gcj02&incident_id=12345-1"
    opened = open_url(url, {"X-API-Key": service.keys["dispatcher"]})
    assert_clean(opened)
    info = opened.page.locator(".gridmap-info").inner_text()
    assert code in info and "网格长 Grid chief" in info and service.chief in info
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "boundary_desc"]) >= 2
    opened.page.screenshot(path=str(artifacts / "api_locate_map.png"))
    viewer = open_url(url, {"X-API-Key": service.keys["viewer"]})
    assert_clean(viewer)
    text = viewer.page.locator(".gridmap-info").inner_text()
    assert code in text and service.chief not in text and "Staff hidden" in text


def test_diff_map_page_of_the_api(service, open_url) -> None:
    pid = service.plan_id
    opened = open_url(
        f"{service.base}/maps/plans/{pid}/diff/{pid}", {"X-API-Key": service.keys["viewer"]}
    )
    assert_clean(opened)
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "moved_in"]) == service.n_grids
    legend = opened.page.locator(".gridmap-legend").inner_text()
    assert f"未变 Unchanged · {service.n_grids}" in legend


MARKER_IMAGES = """() => [...document.querySelectorAll('img.leaflet-marker-icon')]
    .map(img => [img.complete && img.naturalWidth > 0, new URL(img.src).pathname])"""


def assert_offline_clean(opened) -> None:
    """No script error, and the only requests that tried to leave the machine were tiles."""
    assert opened.page_errors == [] and opened.console_errors == []
    assert opened.served == [] and opened.unexpected == []
    assert opened.blocked and all(TILE_HOSTS.search(u) for u in opened.blocked), opened.blocked


def test_api_map_pages_work_with_the_network_blocked(service, open_url, artifacts: Path) -> None:
    opened = open_url(
        f"{service.base}/maps/plans/{service.plan_id}",
        {"X-API-Key": service.keys["viewer"]},
        offline=True,
    )
    assert_offline_clean(opened)
    static = {u.removeprefix(service.base) for u in opened.local if "/maps/static/" in u}
    assert {
        "/maps/static/leaflet-1.9.3/dist/leaflet.js",
        "/maps/static/jquery-3.7.1/dist/jquery.min.js",
        "/maps/static/leaflet-search-2.9.7/dist/leaflet-search.min.js",
        "/maps/static/leaflet.fullscreen-3.0.0/Control.FullScreen.js",
        "/maps/static/leaflet-search-2.9.7/images/search-icon.png",  # from the stylesheet
    } <= static
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "boundary_desc"]) == service.n_grids
    code, lon, lat = service.inside
    x, y = opened.evaluate(GRID_SCREEN_POINT, [opened.map_name, code, lat, lon])
    opened.page.mouse.click(x, y)
    popup = opened.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    assert code in popup.inner_text() and "四至 Boundaries" in popup.inner_text()
    assert_offline_clean(opened)
    opened.page.screenshot(path=str(artifacts / "api_plan_map_offline.png"))

    # the incident page: Leaflet's marker image comes from this server too
    url = f"{service.base}/maps/locate?lon={lon}&lat={lat}&incident_id=12345-2"
    located = open_url(url, {"X-API-Key": service.keys["dispatcher"]}, offline=True)
    assert_offline_clean(located)
    assert located.evaluate(MARKER_IMAGES) == [
        [True, "/maps/static/leaflet-1.9.3/dist/images/marker-icon.png"]
    ]
    assert service.chief in located.page.locator(".gridmap-info").inner_text()


def test_static_route_refuses_raw_dot_dot_paths(service) -> None:
    """Through a real server, which does not clean ``..`` out of the path like clients do."""
    host, port = service.base.removeprefix("http://").split(":")
    for path in (
        "/maps/static/../../map_assets.py",
        "/maps/static/leaflet-1.9.3/../../../pyproject.toml",
        "/maps/static/..%2f..%2fmap_assets.py",
        "/maps/static//etc/passwd",
    ):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        conn.close()
        assert r.status == 404 and b"no vendored map file" in body, path
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/maps/static/leaflet-1.9.3/LICENSE")
    r = conn.getresponse()
    assert r.status == 200 and b"BSD" in r.read()
    conn.close()


def test_dispatcher_types_a_map_address_signs_in_and_locates(
    service, chromium, artifacts: Path
) -> None:
    """No headers: the browser is sent to the sign-in form, then on to the page it asked for."""
    code, lon, lat = service.inside
    context = chromium.new_context(viewport={"width": 1100, "height": 800}, locale="zh-CN")
    try:
        page = context.new_page()
        opened = OpenedMap(page=page, map_name="", path=Path(service.base))
        _attach(page, opened, offline=True)
        url = f"{service.base}/maps/locate?lon={lon}&lat={lat}&crs=wgs84"
        page.goto(url, wait_until="load")
        assert page.url.startswith(f"{service.base}/login?next=")
        page.screenshot(path=str(artifacts / "api_sign_in_form.png"))
        page.fill("#key", "gm_wrong_key")
        page.click("button[type=submit]")
        assert "unknown or revoked" in page.locator(".error").inner_text()
        assert [m for m in opened.console_errors if "401" not in m] == []  # the refused form
        opened.console_errors.clear()
        page.fill("#key", service.keys["dispatcher"])
        page.click("button[type=submit]")
        # a selector wait, not a polled script: the pages' CSP forbids eval
        page.wait_for_selector(".leaflet-container", state="attached")
        page.wait_for_load_state("load")
        page.wait_for_function(f"({FIND_MAP})() !== null")
        assert page.url == url
        info = page.locator(".gridmap-info").inner_text()
        assert code in info and service.chief in info  # a dispatcher sees the chief
        page.screenshot(path=str(artifacts / "api_sign_in_locate.png"))
        # the signed-in home page: the published plan's map and a locate form
        page.goto(f"{service.base}/login", wait_until="load")
        assert "dispatcher" in page.locator("body").inner_text()
        page.screenshot(path=str(artifacts / "api_signed_in.png"))
        page.fill("#lon", str(lon))
        page.fill("#lat", str(lat))
        page.click("form[action='/maps/locate'] button[type=submit]")
        # a selector wait, not a polled script: the pages' CSP forbids eval
        page.wait_for_selector(".leaflet-container", state="attached")
        page.wait_for_load_state("load")
        page.wait_for_function(f"({FIND_MAP})() !== null")
        assert code in page.locator(".gridmap-info").inner_text()
        page.goto(f"{service.base}/login", wait_until="load")
        page.click(f"a[href='/maps/plans/{service.plan_id}']")
        # a selector wait, not a polled script: the pages' CSP forbids eval
        page.wait_for_selector(".leaflet-container", state="attached")
        page.wait_for_load_state("load")
        page.wait_for_function(f"({FIND_MAP})() !== null")
        assert opened.page_errors == [] and opened.console_errors == []
        assert opened.served == [] and opened.unexpected == []
        # signing out (a POST from the signed-in page) forgets the key
        page.goto(f"{service.base}/login", wait_until="load")
        page.click("form[action='/logout'] button[type=submit]")
        page.wait_for_url(f"{service.base}/login")
        page.goto(f"{service.base}/maps/plans/{service.plan_id}", wait_until="load")
        assert page.url.startswith(f"{service.base}/login?next=")
    finally:
        context.close()


def test_api_documentation_pages_work_with_the_network_blocked(
    service, chromium, artifacts: Path
) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` render every operation from this server alone."""
    context = chromium.new_context(viewport={"width": 1200, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        opened = OpenedMap(page=page, map_name="", path=Path("/docs"))
        _attach(page, opened, offline=True)
        response = page.goto(f"{service.base}/docs", wait_until="load")
        assert response is not None and response.status == 200
        page.wait_for_selector(".opblock", timeout=30_000)
        assert page.locator(".opblock").count() > 20  # every documented operation
        assert "/locate/batch" in page.locator(".swagger-ui").inner_text()
        page.screenshot(path=str(artifacts / "api_docs_offline.png"))
        response = page.goto(f"{service.base}/redoc", wait_until="load")
        assert response is not None and response.status == 200
        page.wait_for_selector("[data-section-id]", timeout=30_000)
        assert page.locator("[data-section-id]").count() > 5
        # nothing asked of the internet but ReDoc's own "powered by" logo (it has no option
        # to leave it out; the page works without it)
        assert set(opened.blocked) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, opened.blocked
        assert opened.page_errors == [], opened.page_errors
    finally:
        context.close()
