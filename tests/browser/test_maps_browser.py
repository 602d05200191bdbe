"""gridmap.maps pages in a real headless Chromium, off the network.

CDN links are answered with the product's own vendored files (see conftest);
``assets="inline"`` pages are opened with every non-local request blocked.
"""

from __future__ import annotations

import json

import geopandas as gpd
import maphtml
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from conftest import TILE_HOSTS
from maphtml import features

from gridmap.crs import transform
from gridmap.layers import Layers
from gridmap.maps import diff_map, incident_map, incidents_map, plan_map, quality_map
from gridmap.partition.plan import Plan, QualityReport

pytestmark = pytest.mark.browser

CRS = "EPSG:4549"
X0, Y0 = transform(118.78, 32.05, "wgs84", CRS)
CODE = "320106001001"

COUNT_FEATURES = """([name, key]) => {
    const map = window[name];
    let n = 0;
    map.eachLayer(l => {
        if (l.feature && l.feature.properties && key in l.feature.properties) n++;
    });
    return n;
}"""

GRID_SCREEN_POINT = """([name, code]) => {
    const map = window[name];
    let target = null;
    map.eachLayer(l => {
        const p = l.feature && l.feature.properties;
        if (p && p.boundary_desc !== undefined && p.grid_code === code) target = l;
    });
    const c = target.getBounds().getCenter();
    const pt = map.latLngToContainerPoint(c);
    const r = map.getContainer().getBoundingClientRect();
    return [r.left + pt.x, r.top + pt.y];
}"""


def make_plan(nx: int = 3, ny: int = 3, size: float = 200.0) -> Plan:
    geoms = [
        shapely.box(X0 + i * size, Y0 - (j + 1) * size, X0 + (i + 1) * size, Y0 - j * size)
        for j in range(ny)
        for i in range(nx)
    ]
    n = len(geoms)
    codes = [f"{CODE}{k + 1:03d}" for k in range(n)]
    hh = [120, 250, 300, 350, 420, 480, 520, 300, 300, 260, 310, 330][:n]
    hh += [300] * (n - len(hh))
    grids = gpd.GeoDataFrame(
        {
            "grid_code": codes,
            "community_id": "c1",
            "name": [f"幸福社区第{c[-3:]}网格" for c in codes],
            "households": hh,
            "persons": float("nan"),
            "n_buildings": 1,
            "boundary_desc": [
                f"东至中山路，南至第{c[-3:]}巷，西至建设路，北至长江路" for c in codes
            ],
            "locked": False,
        },
        geometry=geoms,
        crs=CRS,
    )
    staff = pd.DataFrame(
        [
            {"grid_code": c, "staff_id": f"s{k}{r}", "name": nm, "role": r, "phone": f"13{k:09d}"}
            for k, c in enumerate(codes)
            for r, nm in (("chief", f"王秀英{k}"), ("worker", f"陈志强{k}"))
        ]
    )
    report = pd.DataFrame(
        {"grid_code": codes, "polsby_popper": 0.785, "in_band": [200 <= h <= 500 for h in hh]}
    )
    return Plan(
        grids=grids,
        buildings=pd.DataFrame(
            {
                "building_id": [f"b{c[-3:]}" for c in codes],
                "grid_code": codes,
                "households": hh,
                "part": None,
            }
        ),
        households=None,
        report=QualityReport(grids=report, communities=pd.DataFrame({"community_id": ["c1"]})),
        params={"min_households": 200, "max_households": 500},
        crs=pyproj.CRS.from_user_input(CRS),
        assignments=staff,
    )


def make_layers(plan: Plan) -> Layers:
    comm = gpd.GeoDataFrame(
        {
            "community_id": ["c1"],
            "name": ["幸福社区"],
            "street": ["玄武门街道"],
            "street_code": ["320102001"],
        },
        geometry=[shapely.union_all(plan.grids.geometry.to_numpy())],
        crs=CRS,
    )
    blds = []
    for code, g in zip(plan.grids["grid_code"], plan.grids.geometry, strict=True):
        c = g.centroid
        blds.append(
            {
                "building_id": f"b{code[-3:]}",
                "households": 80,
                "geometry": shapely.box(c.x + 30, c.y + 30, c.x + 70, c.y + 60),
            }
        )
    return Layers(
        communities=comm,
        buildings=gpd.GeoDataFrame(blds, geometry="geometry", crs=CRS),
        crs=pyproj.CRS.from_user_input(CRS),
    )


def assert_clean(opened) -> None:
    assert opened.page_errors == []
    assert opened.console_errors == []
    assert opened.unexpected == []


@pytest.fixture(scope="module")
def plan() -> Plan:
    return make_plan()


def test_plan_map_loads_offline_and_shows_every_grid(plan, open_map, artifacts):
    opened = open_map(plan_map(plan, layers=make_layers(plan)), "plan_map")
    assert_clean(opened)
    assert any("leaflet.js" in u for u in opened.served)
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "boundary_desc"]) == 9
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "building_id"]) == 9
    page = opened.page
    # labels readable at this zoom, controls present
    assert page.evaluate(f"() => window.{opened.map_name}.getZoom()") >= 15
    labels = page.locator(".gridmap-label span")
    assert labels.count() == 9
    assert labels.first.is_visible()
    assert page.locator(".gridmap-place span").all_inner_texts() == ["幸福社区"]
    assert page.locator(".gridmap-legend").inner_text().startswith("户数 Households")
    assert page.locator(".leaflet-control-search").count() == 1
    assert page.locator(".leaflet-control-zoom-fullscreen").count() == 1
    assert page.locator(".leaflet-control-scale").count() == 1
    assert page.locator(".leaflet-control-layers").count() == 1
    page.screenshot(path=str(artifacts / "plan_map.png"))


def test_labels_hide_when_zoomed_out(plan, open_map):
    opened = open_map(plan_map(plan), "labels")
    page = opened.page
    page.evaluate(f"() => window.{opened.map_name}.setZoom(13, {{animate: false}})")
    page.wait_for_timeout(200)
    assert page.locator(".gridmap-hide-labels").count() == 1
    assert not page.locator(".gridmap-label span").first.is_visible()
    # zoom 15-16: the community and the 3-digit sequence; from 17: the full code
    page.evaluate(f"() => window.{opened.map_name}.setZoom(15, {{animate: false}})")
    page.wait_for_timeout(200)
    short = page.locator(".gridmap-label em.s:visible")
    assert sorted(short.all_inner_texts()) == [f"c1-{k:03d}" for k in range(1, 10)]
    page.evaluate(f"() => window.{opened.map_name}.setZoom(17, {{animate: false}})")
    page.wait_for_timeout(200)
    assert page.locator(".gridmap-label em.s:visible").count() == 0
    assert f"{CODE}005" in page.locator(".gridmap-label em.f:visible").all_inner_texts()


def test_clicking_a_grid_opens_its_popup(plan, open_map):
    opened = open_map(plan_map(plan), "click")
    x, y = opened.evaluate(GRID_SCREEN_POINT, [opened.map_name, f"{CODE}005"])
    opened.page.mouse.click(x, y)
    popup = opened.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    text = popup.inner_text()
    assert f"{CODE}005" in text
    assert "四至 Boundaries" in text and "东至中山路，南至第005巷" in text
    assert "紧凑度 Compactness (Polsby–Popper)" in text
    # staff and formatted figures: 是/否, not true/false
    assert "网格员 Grid workers" in text and "陈志强4" in text and "王秀英4" in text
    assert "户数在带内 In band\t是" in text and "true" not in text
    assert_clean(opened)


def test_hover_tooltip_shows_the_chief(plan, open_map):
    opened = open_map(plan_map(plan), "hover")
    x, y = opened.evaluate(GRID_SCREEN_POINT, [opened.map_name, f"{CODE}002"])
    opened.page.mouse.move(x + 20, y + 20)
    tip = opened.page.locator(".leaflet-tooltip", has_text="网格长 Grid chief")
    tip.wait_for(timeout=5000)
    assert "王秀英1" in tip.inner_text()


def test_search_by_grid_code_opens_the_grid(plan, open_map):
    opened = open_map(plan_map(plan), "search")
    page = opened.page
    page.locator(".leaflet-control-search input.search-input").press_sequentially(
        f"{CODE}008", delay=20
    )
    tip = page.locator(".search-tip", has_text=f"{CODE}008")
    tip.first.wait_for(timeout=5000)
    tip.first.click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    assert f"{CODE}008" in popup.inner_text()
    assert_clean(opened)


def test_incident_map_in_browser(plan, open_map, artifacts):
    c = plan.grids.geometry.iloc[4].centroid
    lon, lat = transform(c.x + 20, c.y + 20, CRS, "wgs84")
    opened = open_map(
        incident_map(plan, lon, lat, incident_id="12345-0001", description="楼道堆物"), "incident"
    )
    assert_clean(opened)
    page = opened.page
    assert (
        opened.evaluate(COUNT_FEATURES, [opened.map_name, "boundary_desc"]) == 9
    )  # 1 + 8 neighbours
    assert page.locator(".leaflet-marker-icon:not(.gridmap-label)").count() == 1
    info = page.locator(".gridmap-info").inner_text()
    assert f"{CODE}005" in info and "网格长 Grid chief" in info and "王秀英4" in info
    page.screenshot(path=str(artifacts / "incident_map.png"))


def test_incidents_map_clusters_every_incident(plan, open_map):
    rows = []
    for k, g in enumerate(plan.grids.geometry):
        for j in range(k % 3 + 1):
            lon, lat = transform(g.centroid.x + 10 * j, g.centroid.y, CRS, "wgs84")
            rows.append(
                {
                    "id": f"e{k}-{j}",
                    "lon": lon,
                    "lat": lat,
                    "grid_code": plan.grids["grid_code"].iloc[k],
                }
            )
    df = pd.DataFrame(rows)
    opened = open_map(incidents_map(plan, df), "incidents")
    assert_clean(opened)
    n = opened.evaluate(
        """(name) => { let n = -1; window[name].eachLayer(l => {
               if (l instanceof L.MarkerClusterGroup) n = l.getLayers().length; }); return n; }""",
        opened.map_name,
    )
    assert n == len(df) == 18


def test_diff_and_quality_maps_load(plan, open_map, artifacts):
    grids_b = plan.grids.copy()
    grids_b.loc[0, "households"] = 150
    b = plan.replace(grids=grids_b)
    opened = open_map(diff_map(plan, b), "diff")
    assert_clean(opened)
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "moved_in"]) == 9
    opened = open_map(quality_map(plan), "quality")
    assert_clean(opened)
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "reasons"]) == 9
    opened.page.screenshot(path=str(artifacts / "quality_map.png"))


def test_gcj_tiles_map_loads(plan, open_map):
    opened = open_map(plan_map(plan, tiles="amap"), "amap")
    assert_clean(opened)
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "boundary_desc"]) == 9


DUMP_FEATURES = """([name, key]) => {
    const out = [];
    window[name].eachLayer(l => {
        if (l.feature && l.feature.properties && key in l.feature.properties) out.push(l.feature);
    });
    return out;
}"""


def test_page_decodes_the_embedded_layers_exactly(plan, open_map):
    """The compact encoding round-trips: the browser gets the plan's own coordinates."""
    layers = make_layers(plan)
    opened = open_map(plan_map(plan, layers=layers, simplify_tolerance=0), "decode")
    assert_clean(opened)
    html = opened.path.read_text(encoding="utf-8")
    for key in ("boundary_desc", "building_id", "street_code"):
        in_browser = opened.evaluate(DUMP_FEATURES, [opened.map_name, key])
        assert sorted(in_browser, key=json.dumps) == sorted(features(html, key), key=json.dumps)
    grids = {f["id"]: f for f in opened.evaluate(DUMP_FEATURES, [opened.map_name, "boundary_desc"])}
    expected = plan.grids.to_crs(4326).set_index("grid_code").geometry
    for code, geom in expected.items():
        got = shapely.geometry.shape(grids[code]["geometry"]).normalize()
        assert got.equals_exact(geom.normalize(), 1.5e-6), code
    blds = opened.evaluate(DUMP_FEATURES, [opened.map_name, "building_id"])
    want = layers.buildings.to_crs(4326).set_index("building_id").geometry
    for f in blds:
        got = shapely.geometry.shape(f["geometry"]).normalize()
        assert got.equals_exact(want[f["properties"]["building_id"]].normalize(), 1.5e-6)
        assert f["properties"]["grid_code"] == f"{CODE}{f['properties']['building_id'][1:]}"


def test_page_decodes_every_geometry_type(open_map):
    from gridmap.maps.display import _collection
    from gridmap.maps.encoding import _encode_collection
    from gridmap.maps.page import _new_map
    from gridmap.maps.style import _GeoJsonLayer
    from gridmap.maps.tiles import _tile_config

    x, y = transform(X0 + 100, Y0 - 100, CRS, "wgs84")
    geoms = [
        shapely.Polygon(
            [(x, y), (x + 0.01, y), (x + 0.01, y + 0.01), (x, y + 0.01)],
            [[(x + 0.002, y + 0.002), (x + 0.004, y + 0.002), (x + 0.004, y + 0.004)]],
        ),
        shapely.MultiPolygon(
            [
                shapely.box(x, y, x + 0.001, y + 0.001),
                shapely.box(x + 0.02, y, x + 0.021, y + 0.001),
            ]
        ),
        shapely.LineString([(x, y), (x + 0.0015, y - 0.0007)]),
        shapely.MultiLineString([[(x, y), (x + 0.001, y)], [(x, y + 0.001), (x - 0.001, y)]]),
        shapely.Point(x + 0.0012, y - 0.0003),
    ]
    geoms = [shapely.set_precision(g, 1e-6) for g in geoms]
    props = pd.DataFrame({"probe": ["a", "b", "c", "d", "e"], "grid_code": [f"{CODE}001"] * 5})
    data = _collection(pd.Series(geoms).to_numpy(dtype=object), props, None)
    expected = maphtml.decode(json.loads(json.dumps(_encode_collection(data))))["features"]
    m = _new_map(_tile_config("osm", None, None, None), np.array(geoms), title="probe")
    _GeoJsonLayer(data, name="probe").add_to(m)
    opened = open_map(m, "mixed")
    assert_clean(opened)
    got = opened.evaluate(DUMP_FEATURES, [opened.map_name, "probe"])
    assert got == expected
    for f, g in zip(got, geoms, strict=True):
        assert shapely.from_geojson(json.dumps(f["geometry"])).equals_exact(g, 1e-9)


def test_many_buildings_on_a_canvas_switched_on_from_the_layer_control(
    plan, open_map, monkeypatch, artifacts
):
    import gridmap.maps.plan as plan_module

    monkeypatch.setattr(plan_module, "_CANVAS_ABOVE", 0)
    monkeypatch.setattr(plan_module, "_HIDE_BUILDINGS_ABOVE", 0)
    opened = open_map(plan_map(plan, layers=make_layers(plan)), "canvas")
    assert_clean(opened)
    page = opened.page
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "building_id"]) == 0  # off at first
    assert (
        "switch buildings on in the layer control" in page.locator(".gridmap-legend").inner_text()
    )
    page.locator(".leaflet-control-layers").hover()
    page.locator(".leaflet-control-layers-overlays label", has_text="楼栋 Buildings").click()
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "building_id"]) == 9
    # one canvas for grids and buildings (an SVG over a canvas would swallow its events)
    assert page.locator(".leaflet-overlay-pane canvas").count() == 1
    assert page.locator(".leaflet-overlay-pane svg").count() == 0
    # canvas hit-testing: hovering a building shows its tooltip
    g = plan.grids.geometry.iloc[4].centroid
    lon, lat = transform(g.x + 50, g.y + 45, CRS, "wgs84")
    x, y = opened.evaluate(
        """([name, lat, lon]) => { const m = window[name];
            const p = m.latLngToContainerPoint([lat, lon]);
            const r = m.getContainer().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y]; }""",
        [opened.map_name, lat, lon],
    )
    page.mouse.move(x, y, steps=5)
    page.wait_for_timeout(100)  # Leaflet's canvas handles hover at most every 32 ms
    page.mouse.move(x + 1, y)
    tip = page.locator(".leaflet-tooltip", has_text="楼栋 Building")
    tip.wait_for(timeout=5000)
    assert "b005" in tip.inner_text()
    page.screenshot(path=str(artifacts / "plan_map_canvas_buildings.png"))
    # off the building, the grid answers: tooltip on hover, popup on click
    x, y = opened.evaluate(GRID_SCREEN_POINT, [opened.map_name, f"{CODE}005"])
    page.mouse.move(x, y, steps=5)
    page.wait_for_timeout(100)
    page.mouse.move(x + 1, y)
    page.locator(".leaflet-tooltip", has_text="网格长 Grid chief").wait_for(timeout=5000)
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    assert f"{CODE}005" in popup.inner_text() and "四至 Boundaries" in popup.inner_text()
    assert_clean(opened)


# --------------------------------------------------------------------------- without internet

ICON_LOADED = """() => [
    ...document.querySelectorAll('img.leaflet-marker-icon, img.leaflet-marker-shadow')
]
    .map(img => [img.complete && img.naturalWidth > 0, img.src.slice(0, 21)])"""

CONTROL_IMAGES = """() => [
    '.leaflet-control-layers-toggle',
    '.leaflet-control-search .search-button',
    '.leaflet-control-zoom-fullscreen',
].map(sel => {
        const el = document.querySelector(sel);
        return el ? getComputedStyle(el).backgroundImage.slice(0, 26) : null;
    })"""


def assert_offline_clean(opened) -> None:
    """No script error, and the only requests that tried to leave the machine were tiles."""
    assert opened.page_errors == []
    assert opened.console_errors == []
    assert opened.served == [] and opened.unexpected == []
    assert opened.blocked and all(TILE_HOSTS.search(u) for u in opened.blocked), opened.blocked


def test_inline_plan_map_file_works_with_the_network_blocked(plan, open_map, tmp_path, artifacts):
    path = tmp_path / "plan_offline.html"
    plan_map(plan, layers=make_layers(plan), assets="inline").save(str(path))
    opened = open_map(path, offline=True)
    assert_offline_clean(opened)
    assert [u for u in opened.local if not u.startswith("data:")] == [path.as_uri()]
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "boundary_desc"]) == 9
    assert opened.evaluate(COUNT_FEATURES, [opened.map_name, "building_id"]) == 9
    page = opened.page
    assert page.locator(".gridmap-label span").count() == 9
    # the controls, with their icons (embedded images, not broken links)
    assert page.evaluate(CONTROL_IMAGES) == ['url("data:image/png;base64'] * 2 + [
        'url("data:image/svg+xml;ba'
    ]
    x, y = opened.evaluate(GRID_SCREEN_POINT, [opened.map_name, f"{CODE}005"])
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    assert f"{CODE}005" in popup.inner_text() and "四至 Boundaries" in popup.inner_text()
    # search (leaflet-search) works from the embedded copy too
    page.locator(".leaflet-control-search input.search-input").press_sequentially(
        f"{CODE}008", delay=20
    )
    page.locator(".search-tip", has_text=f"{CODE}008").first.click(timeout=5000)
    page.locator(".leaflet-popup-content", has_text=f"{CODE}008").wait_for(timeout=5000)
    assert_offline_clean(opened)
    page.screenshot(path=str(artifacts / "plan_map_offline.png"))


def test_inline_incident_maps_work_with_the_network_blocked(plan, open_map, tmp_path):
    c = plan.grids.geometry.iloc[4].centroid
    lon, lat = transform(c.x + 20, c.y + 20, CRS, "wgs84")
    path = tmp_path / "incident_offline.html"
    incident_map(plan, lon, lat, incident_id="12345-0001", assets="inline").save(str(path))
    opened = open_map(path, offline=True)
    assert_offline_clean(opened)
    # Leaflet's default marker and its shadow come from the page, not from a CDN folder
    assert opened.evaluate(ICON_LOADED) == [[True, "data:image/png;base64"]] * 2
    opened.page.locator("img.leaflet-marker-icon").click()
    popup = opened.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    assert f"{CODE}005" in popup.inner_text() and "王秀英4" in popup.inner_text()
    df = pd.DataFrame(
        {"id": ["a", "b", "c"], "lon": [lon] * 3, "lat": [lat, lat + 1e-5, lat + 2e-5]}
    ).assign(grid_code=f"{CODE}005")
    path = tmp_path / "incidents_offline.html"
    incidents_map(plan, df, assets="inline").save(str(path))
    opened = open_map(path, offline=True)
    assert_offline_clean(opened)
    clusters = opened.page.locator(".marker-cluster")
    assert clusters.count() == 1 and clusters.inner_text() == "3"
