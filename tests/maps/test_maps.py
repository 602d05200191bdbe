"""Tests for gridmap.maps: parse the rendered HTML and check what it holds."""

from __future__ import annotations

import json
import re
import warnings

import geopandas as gpd
import maphtml
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from maphtml import collections, external, resources
from scipy.spatial import cKDTree

from gridmap.crs import transform
from gridmap.errors import CoordinateError, CRSError, InputError, LayerError, NotFoundError
from gridmap.layers import Layers
from gridmap.maps import (
    TILE_PRESETS,
    diff_map,
    incident_map,
    incidents_map,
    moved_buildings,
    plan_diff,
    plan_map,
    quality_flags,
    quality_map,
)
from gridmap.maps.assets import CDN_FILES, vendored_file
from gridmap.maps.display import _collection
from gridmap.maps.encoding import _encode_collection
from gridmap.partition.plan import Plan, QualityReport

CRS = "EPSG:4549"  # CGCS2000 / 3-degree Gauss-Kruger CM 120E, covers Nanjing
X0, Y0 = transform(118.78, 32.05, "wgs84", CRS)
CODE = "320106001001"


# --------------------------------------------------------------------------- builders


def make_plan(
    geoms: list,
    households: list[int] | None = None,
    *,
    codes: list[str] | None = None,
    crs: str = CRS,
    assignments: pd.DataFrame | None = None,
    buildings: pd.DataFrame | None = None,
    report: pd.DataFrame | None = None,
    params: dict | None = None,
) -> Plan:
    n = len(geoms)
    codes = codes or [f"{CODE}{k + 1:03d}" for k in range(n)]
    hh = households if households is not None else [300] * n
    grids = gpd.GeoDataFrame(
        {
            "grid_code": codes,
            "community_id": ["c1"] * n,
            "name": [f"幸福社区第{c[-3:]}网格" for c in codes],
            "households": hh,
            "persons": [float("nan")] * n,
            "n_buildings": [1] * n,
            "boundary_desc": [
                f"东至中山路{c[-3:]}号，南至社区边界，西至建设路，北至长江路" for c in codes
            ],
            "locked": [False] * n,
        },
        geometry=geoms,
        crs=crs,
    )
    if buildings is None:
        buildings = pd.DataFrame(
            {"building_id": [f"b{c[-3:]}" for c in codes], "grid_code": codes, "households": hh}
        )
        buildings["part"] = None
    if report is None:
        report = pd.DataFrame(
            {
                "grid_code": codes,
                "polsby_popper": np.round(4 * np.pi * grids.area / grids.length**2, 6),
                "in_band": [200 <= h <= 500 for h in hh],
                "area_m2": grids.area.round(1),
            }
        )
    return Plan(
        grids=grids,
        buildings=buildings,
        households=None,
        report=QualityReport(grids=report, communities=pd.DataFrame({"community_id": ["c1"]})),
        params=params or {"min_households": 200, "max_households": 500, "seed": 0},
        crs=pyproj.CRS.from_user_input(crs),
        assignments=assignments,
    )


def lattice(nx: int, ny: int, size: float = 200.0) -> list:
    """Boxes west→east, north→south, starting at (X0, Y0) as the north-west corner."""
    return [
        shapely.box(X0 + i * size, Y0 - (j + 1) * size, X0 + (i + 1) * size, Y0 - j * size)
        for j in range(ny)
        for i in range(nx)
    ]


def voronoi_plan(n: int, per: int = 40, seed: int = 0) -> Plan:
    """A valid coverage of n jagged grids: fine Voronoi cells merged by nearest site."""
    rng = np.random.default_rng(seed)
    side = (n * 250.0 * 250.0) ** 0.5
    box = shapely.box(X0, Y0, X0 + side, Y0 + side)
    sites = np.column_stack([X0 + rng.uniform(0, side, n), Y0 + rng.uniform(0, side, n)])
    fine = np.vstack(
        [
            sites,
            np.column_stack(
                [X0 + rng.uniform(0, side, n * per), Y0 + rng.uniform(0, side, n * per)]
            ),
        ]
    )
    cells = np.asarray(
        shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(fine), extend_to=box))
    )
    cells = shapely.intersection(cells, box)
    label = cKDTree(sites).query(shapely.get_coordinates(shapely.point_on_surface(cells)))[1]
    merged = (
        pd.Series(list(cells))
        .groupby(label)
        .agg(lambda g: shapely.coverage_union_all(np.asarray(list(g))))
    )
    hh = rng.integers(150, 560, len(merged)).tolist()
    return make_plan(list(merged.to_numpy()), hh)


def staff(codes: list[str]) -> pd.DataFrame:
    rows = []
    for k, c in enumerate(codes):
        rows.append(
            {
                "grid_code": c,
                "staff_id": f"s{k}c",
                "name": f"张网格长{k}",
                "role": "chief",
                "phone": f"1380000{k:04d}",
            }
        )
        rows.append(
            {
                "grid_code": c,
                "staff_id": f"s{k}w",
                "name": f"李网格员{k}",
                "role": "worker",
                "phone": f"1390000{k:04d}",
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- HTML parsing


def layer_with(html: str, key: str) -> list[dict]:
    """Features of the (single) collection whose first feature has property ``key``."""
    found = [
        c["features"]
        for c in collections(html)
        if c["features"] and key in c["features"][0]["properties"]
    ]
    assert len(found) == 1, f"{len(found)} collections have property {key!r}"
    return found[0]


def js(s: str) -> str:
    """How folium (Jinja tojson) writes a Python string into the page."""
    return json.dumps(s)


def label_rows(html: str) -> list[list]:
    rows = re.findall(r"\}\)\(grid_labels_\w+, (\[.*?\]), map_\w+,", html, flags=re.S)
    return [r for chunk in rows for r in json.loads(chunk)]


def all_coords(features: list[dict]) -> np.ndarray:
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in features])
    return shapely.get_coordinates(geoms)


def render(m) -> str:
    return m.get_root().render()


# --------------------------------------------------------------------------- plan_map


@pytest.fixture(scope="module")
def plan9() -> Plan:
    hh = [120, 250, 300, 350, 420, 480, 520, 300, 300]
    geoms = lattice(3, 3)
    codes = [f"{CODE}{k + 1:03d}" for k in range(9)]
    return make_plan(geoms, hh, assignments=staff(codes[:4]))


@pytest.fixture(scope="module")
def plan9_html(plan9) -> str:
    return render(plan_map(plan9))


def test_plan_map_has_one_feature_per_grid(plan9, plan9_html):
    feats = layer_with(plan9_html, "boundary_desc")
    assert [f["id"] for f in feats] == plan9.grids["grid_code"].tolist()
    # formatted for people (thousands separators), as the tooltip and popup show them
    assert [f["properties"]["households"] for f in feats] == [
        f"{h:,}" for h in plan9.grids["households"]
    ]
    assert {f["geometry"]["type"] for f in feats} == {"Polygon"}
    # minimal properties: what the tooltip/popup shows, nothing more
    assert {k for k in feats[0]["properties"] if k != "_s"} == {
        "grid_code",
        "name",
        "households",
        "chief",
        "workers",
        "vacant",
        "boundary_desc",
        "q_polsby_popper",
        "q_in_band",
        "q_area_m2",
    }


def test_plan_map_chief_in_tooltip(plan9_html):
    feats = {f["id"]: f["properties"] for f in layer_with(plan9_html, "boundary_desc")}
    assert feats[f"{CODE}001"]["chief"] == "张网格长0"
    assert feats[f"{CODE}004"]["chief"] == "张网格长3"
    assert feats[f"{CODE}005"]["chief"] == "—"  # unstaffed grid
    tip = re.search(r"let fields = (\[.*?\]);\s*let aliases = (\[.*?\]);", plan9_html)
    assert "chief" in json.loads(tip.group(1))
    assert "网格长 Grid chief" in json.loads(tip.group(2))
    assert "李网格员0" not in json.loads(tip.group(1))  # workers: in the popup, not the tooltip


def test_plan_map_popup_holds_boundaries_and_quality(plan9_html):
    assert ".bindPopup(" in plan9_html
    assert js("四至 Boundaries") in plan9_html
    assert js("紧凑度 Compactness (Polsby–Popper)") in plan9_html
    feats = {f["id"]: f["properties"] for f in layer_with(plan9_html, "boundary_desc")}
    p = feats[f"{CODE}002"]
    assert p["boundary_desc"] == "东至中山路002号，南至社区边界，西至建设路，北至长江路"
    assert p["q_polsby_popper"] == "0.785"
    assert p["q_in_band"] == "是"  # not a raw true/false
    assert p["q_area_m2"] == "40,000"


def test_popup_skips_figures_no_grid_has(plan9):
    # a first plan has no stability figure: no empty "稳定性 Stability" row in the popups
    rg = plan9.report.grids.assign(stability=np.nan)
    plan = plan9.replace(report=QualityReport(grids=rg, communities=plan9.report.communities))
    html = render(plan_map(plan))
    props = layer_with(html, "boundary_desc")[0]["properties"]
    assert "q_stability" not in props and "q_polsby_popper" in props
    assert js("稳定性 Stability") not in html
    rg = rg.assign(stability=[0.9] + [np.nan] * 8)
    plan = plan9.replace(report=QualityReport(grids=rg, communities=plan9.report.communities))
    props = layer_with(render(plan_map(plan)), "boundary_desc")[0]["properties"]
    assert props["q_stability"] == "90.0%"


def test_plan_map_colours_by_band(plan9_html):
    from gridmap.maps.style import _ABOVE, _BELOW, _IN_BAND

    feats = layer_with(plan9_html, "boundary_desc")
    # the grid layer's style table precedes its data
    at = plan9_html.index('"boundary_desc"')
    var = re.findall(r"var (\w+)_styles = (\[.*?\]);\n", plan9_html[:at])[-1]
    table = json.loads(var[1])

    def colour_of(code: str) -> str:
        f = next(f for f in feats if f["id"] == code)
        return table[f["properties"].get("_s", 0)]["fillColor"]

    assert colour_of(f"{CODE}001") == _BELOW  # 120 < 200
    assert colour_of(f"{CODE}007") == _ABOVE  # 520 > 500
    assert colour_of(f"{CODE}002") == _IN_BAND[0]  # 250: first quarter of 200–500
    assert colour_of(f"{CODE}006") == _IN_BAND[3]  # 480: last quarter
    assert len({colour_of(f"{CODE}{k:03d}") for k in range(1, 10)}) == 6


def test_plan_map_legend_controls_and_utf8(plan9_html):
    html = plan9_html
    assert '<meta http-equiv="content-type" content="text/html; charset=UTF-8" />' in html
    assert "<title>网格方案 Grid plan</title>" in html
    # bilingual legend, written literally (UTF-8) with counts
    assert "<h4>户数 Households</h4>" in html
    assert "低于下限 Below band (&lt; 200) · 1" in html
    assert "超过上限 Above band (&gt; 500) · 1" in html
    assert "带内 In band 7" in html
    # search by grid code, fullscreen, scale bar, layer control
    assert "new L.Control.Search(" in html
    assert "propertyName: 'grid_code'" in html
    assert "L.control.fullscreen(" in html
    assert "L.control.scale(" in html
    assert "L.control.layers(" in html
    # a label per grid, shown from zoom 15 on
    rows = label_rows(html)
    assert sorted(r[2] for r in rows) == [f"{CODE}{k:03d}" for k in range(1, 10)]


def test_plan_map_reprojects_from_any_projected_crs(plan9):
    g3857 = plan9.grids.to_crs(3857)
    other = plan9.replace(grids=g3857, crs=pyproj.CRS.from_epsg(3857))
    a = all_coords(layer_with(render(plan_map(plan9, simplify_tolerance=0)), "boundary_desc"))
    b = all_coords(layer_with(render(plan_map(other, simplify_tolerance=0)), "boundary_desc"))
    assert a.shape == b.shape
    assert np.abs(a - b).max() < 2e-6
    expected = shapely.get_coordinates(plan9.grids.to_crs(4326).geometry.to_numpy())
    assert np.abs(np.sort(a, axis=0) - np.sort(expected, axis=0)).max() < 1e-6
    assert 118.77 < a[:, 0].min() < a[:, 0].max() < 118.80
    assert 32.03 < a[:, 1].min() < a[:, 1].max() < 32.06


def test_plan_map_does_not_mutate_the_plan(plan9):
    before = plan9.grids.copy()
    plan_map(plan9, tiles="amap")
    pd.testing.assert_frame_equal(plan9.grids, before)


def test_simplified_grids_keep_shared_edges_and_round_coordinates():
    plan = voronoi_plan(40, per=40)
    raw = plan.grids.geometry.to_numpy()
    html = render(plan_map(plan, simplify_tolerance=10.0))
    feats = layer_with(html, "boundary_desc")
    assert len(feats) == 40
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in feats])
    assert shapely.get_num_coordinates(geoms).sum() < 0.85 * shapely.get_num_coordinates(raw).sum()
    # coverage still valid: no slivers/overlaps between neighbours after simplification
    assert bool(shapely.coverage_is_valid(shapely.make_valid(geoms), gap_width=0.0))
    # at most 6 decimals in every coordinate of the page's geometry
    text = json.dumps([f["geometry"] for f in feats])
    decimals = [len(m) for m in re.findall(r"\d+\.(\d+)", text)]
    assert max(decimals) <= 6


def test_plan_map_with_layers_draws_communities_streets_and_buildings(plan9):
    communities = gpd.GeoDataFrame(
        {
            "community_id": ["c1"],
            "name": ["幸福社区"],
            "code": [CODE],
            "street": ["玄武门街道"],
            "street_code": ["320102001"],
        },
        geometry=[shapely.box(X0, Y0 - 600, X0 + 600, Y0)],
        crs=CRS,
    )
    # two buildings per grid, one split over grids 001/002
    centres = [g.centroid for g in plan9.grids.geometry]
    bgeoms, bids, bcodes = [], [], []
    for c, code in zip(centres, plan9.grids["grid_code"], strict=True):
        for k, dx in enumerate((-40, 40)):
            bgeoms.append(shapely.box(c.x + dx - 10, c.y - 10, c.x + dx + 10, c.y + 10))
            bids.append(f"{code[-3:]}-{k}")
            bcodes.append(code)
    blds = gpd.GeoDataFrame(
        {"building_id": bids, "households": [50] * len(bids), "community_id": ["c1"] * len(bids)},
        geometry=bgeoms,
        crs=CRS,
    )
    pb = pd.DataFrame({"building_id": bids, "grid_code": bcodes, "households": 50, "part": None})
    pb = pd.concat(
        [
            pb,
            pd.DataFrame(
                [
                    {
                        "building_id": "001-1",
                        "grid_code": f"{CODE}002",
                        "households": 10,
                        "part": "units 3-4",
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    plan = plan9.replace(buildings=pb)
    layers = Layers(communities=communities, buildings=blds, crs=pyproj.CRS.from_user_input(CRS))
    html = render(plan_map(plan, layers=layers))
    assert js("社区边界 Community boundaries") in html
    assert js("街道边界 Sub-district boundaries") in html
    street = layer_with(html, "street_code")
    assert [f["properties"]["street"] for f in street] == ["玄武门街道"]
    grids = {f["id"]: f["properties"] for f in layer_with(html, "boundary_desc")}
    assert grids[f"{CODE}001"]["community"] == "幸福社区"
    b = {f["properties"]["building_id"]: f["properties"] for f in layer_with(html, "building_id")}
    assert len(b) == 18
    assert b["001-1"]["grid_code"] == f"{CODE}001,{CODE}002"
    assert b["005-0"]["grid_code"] == f"{CODE}005"
    assert js("楼栋 Buildings") in html
    html_nob = render(plan_map(plan, layers=layers, show_buildings=False))
    assert js("楼栋 Buildings") not in html_nob


def test_plan_map_without_layers_derives_community_boundaries(plan9_html):
    comm = layer_with(plan9_html, "community_id")
    assert len(comm) == 1
    ring = shapely.from_geojson(json.dumps(comm[0]["geometry"]))
    assert ring.geom_type == "Polygon" and len(ring.interiors) == 0


def test_1000_grid_html_under_5_mb():
    plan = voronoi_plan(1000, per=40, seed=1)
    html = render(plan_map(plan))
    size = len(html.encode("utf-8"))
    assert len(layer_with(html, "boundary_desc")) == 1000
    assert size < 5_000_000, f"{size / 1e6:.2f} MB"


@pytest.mark.slow
def test_1000_grid_html_with_30000_buildings_under_5_mb():
    """The default map (buildings on, as `gridmap map` and `gridmap run` draw it) stays light."""
    plan = voronoi_plan(1000, per=40, seed=1)
    minx, miny, maxx, maxy = plan.grids.total_bounds
    gx, gy = np.meshgrid(np.arange(minx + 20, maxx, 45.0), np.arange(miny + 20, maxy, 45.0))
    x, y = gx.ravel(), gy.ravel()
    ids = [f"B{i}" for i in range(len(x))]
    blds = gpd.GeoDataFrame(
        {"building_id": ids, "households": 12},
        geometry=shapely.box(x - 12, y - 8, x + 12, y + 8),
        crs=CRS,
    )
    hit = gpd.sjoin(
        gpd.GeoDataFrame(geometry=shapely.points(x, y), crs=CRS),
        plan.grids[["grid_code", "geometry"]],
    )
    hit = hit[~hit.index.duplicated()]
    pb = pd.DataFrame(
        {"building_id": [ids[i] for i in hit.index], "grid_code": hit["grid_code"].to_numpy()}
    ).assign(households=12, part=None)
    comm = plan.grids.dissolve("community_id").reset_index()[["community_id", "geometry"]]
    layers = Layers(communities=comm, buildings=blds, crs=plan.crs)
    html = render(plan_map(plan.replace(buildings=pb), layers=layers))
    size = len(html.encode("utf-8"))
    assert len(blds) > 30_000
    assert len(layer_with(html, "building_id")) == len(blds)
    assert size < 5_000_000, f"{size / 1e6:.2f} MB"
    # so many buildings are drawn on a canvas and start switched off, as the legend says
    assert re.search(r"L\.map\([^)]*\"preferCanvas\": true", html, flags=re.S)
    (name,) = [
        n
        for n in re.findall(r"var (geo_json_\w+) = L\.geoJson", html)
        if '"building_id"' in html[html.index(f"{n}.addData") :][:300]
    ]
    assert f"{name}.addTo(" not in html
    assert f"Buildings coloured by grid · {len(blds):,}" in html
    assert "switch buildings on in the layer control" in html


def test_buildings_layer_is_svg_and_shown_for_a_community(plan9):
    layers = Layers(
        communities=gpd.GeoDataFrame(
            {"community_id": ["c1"]},
            geometry=[shapely.union_all(plan9.grids.geometry.to_numpy())],
            crs=CRS,
        ),
        buildings=gpd.GeoDataFrame(
            {"building_id": ["b001"], "households": [80]},
            geometry=[shapely.box(X0 + 20, Y0 - 60, X0 + 60, Y0 - 20)],
            crs=CRS,
        ),
        crs=pyproj.CRS.from_user_input(CRS),
    )
    html = render(plan_map(plan9, layers=layers))
    assert '"preferCanvas": false' in html
    (name,) = [
        n
        for n in re.findall(r"var (geo_json_\w+) = L\.geoJson", html)
        if '"building_id"' in html[html.index(f"{n}.addData") :][:300]
    ]
    assert f"{name}.addTo(" in html
    assert "Buildings coloured by grid · 1<" in html
    assert "switch buildings on" not in html


# --------------------------------------------------------------------------- tiles and GCJ-02


def test_tile_presets_and_custom_urls(plan9):
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in render(plan_map(plan9))
    amap = render(plan_map(plan9, tiles="amap"))
    assert "webrd0{s}.is.autonavi.com/appmaptile" in amap and '"subdomains": "1234"' in amap
    assert "rt{s}.map.gtimg.com" in render(plan_map(plan9, tiles="tencent"))
    tdt = render(plan_map(plan9, tiles="tianditu", tiles_key="abc123"))
    assert "tianditu.gov.cn/vec_w/wmts" in tdt and "tk=abc123" in tdt
    assert "tianditu.gov.cn/cva_w/wmts" in tdt  # annotation overlay
    custom = render(
        plan_map(plan9, tiles="https://tiles.example.cn/{z}/{x}/{y}.png", attr="© 示例")
    )
    assert "https://tiles.example.cn/{z}/{x}/{y}.png" in custom
    none = render(plan_map(plan9, tiles=None))
    assert "L.tileLayer(" not in none
    assert set(TILE_PRESETS) >= {"osm", "tianditu", "amap", "tencent"}


def test_tile_guards(plan9):
    with pytest.raises(
        InputError, match=r"unknown tiles preset 'googel'.*'amap'.*'osm'.*'tencent'.*'tianditu'"
    ):
        plan_map(plan9, tiles="googel")
    with pytest.raises(InputError, match="needs an API key; pass tiles_key="):
        plan_map(plan9, tiles="tianditu")
    with pytest.raises(InputError, match="needs an attribution; pass attr="):
        plan_map(plan9, tiles="https://tiles.example.cn/{z}/{x}/{y}.png")
    with pytest.raises(InputError, match="tiles_crs='bd09' is not supported"):
        plan_map(plan9, tiles_crs="bd09")


def test_gcj_shift_applied_for_amap_and_tencent_not_osm(plan9):
    osm = all_coords(layer_with(render(plan_map(plan9, simplify_tolerance=0)), "boundary_desc"))
    wgs = shapely.get_coordinates(plan9.grids.to_crs(4326).geometry.to_numpy())
    assert np.abs(osm - np.round(wgs, 6)).max() < 1e-9  # OSM: WGS84, unshifted
    glon, glat = transform(wgs[:, 0], wgs[:, 1], "wgs84", "gcj02")
    for kwargs in ({"tiles": "amap"}, {"tiles": "tencent"}, {"tiles": "osm", "tiles_crs": "gcj02"}):
        got = all_coords(
            layer_with(render(plan_map(plan9, simplify_tolerance=0, **kwargs)), "boundary_desc")
        )
        assert np.abs(got - np.column_stack([glon, glat]).round(6)).max() < 1e-9
        shift = got - osm
        # Nanjing: GCJ-02 is ~0.0049° east and ~0.0022° south of WGS84 (~500 m)
        assert 0.004 < shift[:, 0].mean() < 0.006 and -0.003 < shift[:, 1].mean() < -0.001
    tdt = all_coords(
        layer_with(
            render(plan_map(plan9, simplify_tolerance=0, tiles="tianditu", tiles_key="k")),
            "boundary_desc",
        )
    )
    assert np.abs(tdt - osm).max() < 1e-9  # CGCS2000 = WGS84 at map scale
    # labels shift with the grids
    lab_osm = np.array([r[:2] for r in label_rows(render(plan_map(plan9)))])
    lab_amap = np.array([r[:2] for r in label_rows(render(plan_map(plan9, tiles="amap")))])
    assert 0.004 < (lab_amap - lab_osm)[:, 1].mean() < 0.006


# --------------------------------------------------------------------------- guards


def test_plan_without_crs_is_rejected(plan9):
    bare = plan9.replace(grids=plan9.grids.set_crs(None, allow_override=True), crs=None)
    for fn in (plan_map, quality_map):
        with pytest.raises(CRSError, match="plan has no CRS; set it with"):
            fn(bare)
    with pytest.raises(CRSError, match="plan has no CRS"):
        incident_map(bare, 118.781, 32.049)
    with pytest.raises(CRSError, match="plan_b has no CRS"):
        diff_map(plan9, bare)
    assert issubclass(CRSError, InputError)


@pytest.mark.parametrize(
    ("lon", "lat", "match"),
    [
        (float("nan"), 32.05, "not finite"),
        (118.78, float("inf"), "not finite"),
        (None, 32.05, "must be numbers"),
        (118.78, 132.05, "latitude out of"),
        (32.05, 118.78, "swapped"),
    ],
)
def test_incident_map_rejects_bad_coordinates(plan9, lon, lat, match):
    with pytest.raises(CoordinateError, match=match):
        incident_map(plan9, lon, lat)


def test_incidents_map_guards(plan9):
    df = pd.DataFrame(
        {"id": ["a", "b", "c"], "lon": [118.781, np.nan, 118.782], "lat": [32.049, 32.049, 32.048]}
    )
    with pytest.raises(CoordinateError, match=r"NaN or infinite.*incident ids \['b'\]"):
        incidents_map(plan9, df)
    with pytest.raises(LayerError, match=r"lacks column\(s\) \['lat'\]"):
        incidents_map(plan9, df.drop(columns="lat"))


def test_unknown_grid_code_is_not_found(plan9):
    with pytest.raises(NotFoundError, match="'999' is not a grid of this plan"):
        incident_map(plan9, 118.781, 32.049, grid_code="999")


# --------------------------------------------------------------------------- incidents


def grid_centre_lonlat(plan: Plan, code: str) -> tuple[float, float]:
    c = plan.grids.set_index("grid_code").geometry[code].centroid
    return transform(c.x, c.y, CRS, "wgs84")


def test_incident_map_highlights_grid_staff_and_neighbours(plan9):
    lon, lat = grid_centre_lonlat(plan9, f"{CODE}001")
    html = render(incident_map(plan9, lon, lat, incident_id="T-17", description="漏水 Water leak"))
    cols = collections(html)
    main = [c["features"] for c in cols if len(c["features"]) == 1]
    assert [f["id"] for f in main[0]] == [f"{CODE}001"]
    neighbours = [c["features"] for c in cols if len(c["features"]) == 3]
    # corner grid 001 touches 002 (east), 004 (south) and 005 (corner)
    assert sorted(f["id"] for f in neighbours[0]) == [f"{CODE}002", f"{CODE}004", f"{CODE}005"]
    assert js("事发网格 Incident grid") in html and js("相邻网格 Neighbouring grids") in html
    assert "网格 Grid: <b>320106001001001</b> 幸福社区第001网格" in html
    assert "<b>张网格长0</b> ☎ 13800000000" in html
    assert "<b>李网格员0</b> ☎ 13900000000" in html
    assert "事件 Incident T-17" in html and "漏水 Water leak" in html
    assert "L.marker(" in html


def test_incident_map_hides_staff_when_not_visible(plan9):
    lon, lat = grid_centre_lonlat(plan9, f"{CODE}002")
    html = render(incident_map(plan9, lon, lat, staff_visible=False))
    for secret in ("张网格长", "李网格员", "1380000", "1390000"):
        assert secret not in html
        assert js(secret)[1:-1] not in html
    assert "人员信息不可见 Staff hidden for your role" in html
    assert all("chief" not in f["properties"] for c in collections(html) for f in c["features"])


def test_incident_map_centre_grid_has_eight_neighbours_and_locates_gcj_input(plan9):
    lon, lat = grid_centre_lonlat(plan9, f"{CODE}005")
    glon, glat = transform(lon, lat, "wgs84", "gcj02")
    html = render(incident_map(plan9, glon, glat, coord_system="gcj02"))
    main = [c["features"] for c in collections(html) if len(c["features"]) == 1]
    assert main[0][0]["id"] == f"{CODE}005"
    assert max(len(c["features"]) for c in collections(html)) == 8


def test_incident_map_outside_every_grid(plan9):
    html = render(incident_map(plan9, 118.70, 32.10))
    assert "不在任何网格内 Outside every grid" in html
    assert js("事发网格 Incident grid") not in html


def test_incident_map_marker_shifted_for_gcj_tiles(plan9):
    lon, lat = grid_centre_lonlat(plan9, f"{CODE}005")
    pat = r"L\.marker\(\s*\[([-\d.]+), ([-\d.]+)\]"
    lat0, lon0 = map(float, re.search(pat, render(incident_map(plan9, lon, lat))).groups())
    lat1, lon1 = map(
        float, re.search(pat, render(incident_map(plan9, lon, lat, tiles="amap"))).groups()
    )
    glon, glat = transform(lon, lat, "wgs84", "gcj02")
    assert (lon0, lat0) == (round(lon, 6), round(lat, 6))
    assert (lon1, lat1) == pytest.approx((glon, glat), abs=2e-6)


def test_incidents_map_clusters_and_colours_by_grid(plan9):
    pts = []
    for k, code in enumerate([f"{CODE}001"] * 3 + [f"{CODE}005"] * 2 + [f"{CODE}009"]):
        lon, lat = grid_centre_lonlat(plan9, code)
        pts.append({"id": f"e{k}", "lon": lon + 1e-4 * k, "lat": lat, "grid_code": code})
    pts.append({"id": "far", "lon": 118.70, "lat": 32.10, "grid_code": None})
    df = pd.DataFrame(pts)
    html = render(incidents_map(plan9, df))
    assert "L.markerClusterGroup(" in html
    data = json.loads(re.search(r"var data = (\[.*?\]);\n", html, flags=re.S).group(1))
    assert [r[3] for r in data] == df["id"].tolist()
    colours = {r[4]: r[2] for r in data}
    assert len({colours[f"{CODE}001"], colours[f"{CODE}005"], colours[f"{CODE}009"]}) >= 2
    assert colours["—"] == "#9e9e9e"
    grids = {f["id"]: f["properties"]["incidents"] for f in layer_with(html, "incidents")}
    assert (grids[f"{CODE}001"], grids[f"{CODE}005"], grids[f"{CODE}009"], grids[f"{CODE}002"]) == (
        3,
        2,
        1,
        0,
    )
    assert "<h4>事件 Incidents: 7</h4>" in html
    assert "不在网格内 Outside every grid · 1" in html
    # without grid_code the incidents are located here
    located = render(incidents_map(plan9, df.drop(columns="grid_code")))
    data2 = json.loads(re.search(r"var data = (\[.*?\]);\n", located, flags=re.S).group(1))
    assert [r[4] for r in data2] == [r[4] for r in data]


# --------------------------------------------------------------------------- diff


@pytest.fixture(scope="module")
def diff_pair() -> tuple[Plan, Plan]:
    a_geoms = lattice(3, 2)
    a = make_plan(a_geoms, [300, 300, 300, 300, 300, 300])
    b_geoms = list(a_geoms)
    # 001/002: boundary moved 50 m east (both change geometry and households)
    b_geoms[0] = shapely.box(X0, Y0 - 200, X0 + 250, Y0)
    b_geoms[1] = shapely.box(X0 + 250, Y0 - 200, X0 + 400, Y0)
    # 003: same shape, ring starting at another vertex (must count as unchanged)
    ring = list(a_geoms[2].exterior.coords)[:-1]
    b_geoms[2] = shapely.Polygon(ring[2:] + ring[:2])
    codes_b = [f"{CODE}{k:03d}" for k in (1, 2, 3, 4, 5, 7)]  # 006 removed, 007 added
    bb = pd.DataFrame(
        {
            "building_id": ["b001", "b002", "b003", "b004", "b005", "b006"],
            "grid_code": [
                f"{CODE}002",
                f"{CODE}002",
                f"{CODE}003",
                f"{CODE}004",
                f"{CODE}005",
                f"{CODE}007",
            ],
            "households": 300,
            "part": None,
        }
    )
    b = make_plan(b_geoms, [340, 260, 300, 320, 300, 300], codes=codes_b, buildings=bb)
    return a, b


def test_plan_diff_flags_exactly_the_changed_grids(diff_pair):
    a, b = diff_pair
    d = plan_diff(a, b).set_index("grid_code")["status"].to_dict()
    assert d == {
        f"{CODE}001": "changed",
        f"{CODE}002": "changed",
        f"{CODE}003": "unchanged",
        f"{CODE}004": "changed",  # households 300 → 320 only
        f"{CODE}005": "unchanged",
        f"{CODE}006": "removed",
        f"{CODE}007": "added",
    }
    row = plan_diff(a, b).set_index("grid_code").loc[f"{CODE}001"]
    assert row["changed_area_m2"] == 10_000.0 and bool(row["geometry_changed"])
    row4 = plan_diff(a, b).set_index("grid_code").loc[f"{CODE}004"]
    assert not row4["geometry_changed"] and row4["households_changed"]
    mv = moved_buildings(a, b)
    assert mv.to_dict("records") == [
        {"building_id": "b001", "grid_a": f"{CODE}001", "grid_b": f"{CODE}002"},
        {"building_id": "b006", "grid_a": f"{CODE}006", "grid_b": f"{CODE}007"},
    ]


def test_diff_map_html_marks_the_same_grids(diff_pair):
    a, b = diff_pair
    html = render(diff_map(a, b))
    plan_b_layer = [
        c["features"]
        for c in collections(html)
        if c["features"] and "moved_in" in c["features"][0]["properties"]
    ][0]
    status = {f["id"]: f["properties"]["status"] for f in plan_b_layer}
    assert {k for k, v in status.items() if v != "unchanged"} == {
        f"{CODE}001",
        f"{CODE}002",
        f"{CODE}004",
        f"{CODE}007",
    }
    removed = [
        c["features"]
        for c in collections(html)
        if c["features"] and c["features"][0]["properties"].get("status") == "removed"
    ]
    assert [f["id"] for f in removed[0]] == [f"{CODE}006"]
    p = {f["id"]: f["properties"] for f in plan_b_layer}
    assert p[f"{CODE}002"]["moved_in"] == 1 and p[f"{CODE}001"]["moved_out"] == 1
    assert p[f"{CODE}004"]["change"] == "户数 Households 300 → 320"
    assert "新增 Added · 1" in html and "删除 Removed · 1" in html and "改变 Changed · 3" in html
    assert "未变 Unchanged · 2" in html and "迁移楼栋 Moved buildings · 2" in html
    assert js("方案A边界 Plan A boundaries") in html


def test_diff_map_draws_moved_buildings_from_layers(diff_pair):
    a, b = diff_pair
    cents = [g.centroid for g in a.grids.geometry]
    blds = gpd.GeoDataFrame(
        {"building_id": [f"b{k + 1:03d}" for k in range(6)], "households": 300},
        geometry=[shapely.box(c.x - 5, c.y - 5, c.x + 5, c.y + 5) for c in cents],
        crs=CRS,
    )
    comm = gpd.GeoDataFrame(
        {"community_id": ["c1"]}, geometry=[shapely.box(X0, Y0 - 400, X0 + 600, Y0)], crs=CRS
    )
    layers = Layers(communities=comm, buildings=blds, crs=pyproj.CRS.from_user_input(CRS))
    html = render(diff_map(a, b, layers=layers))
    moved = layer_with(html, "grid_a")
    assert sorted(f["properties"]["building_id"] for f in moved) == ["b001", "b006"]
    assert js("迁移楼栋 Moved buildings") in html


def test_diff_map_accepts_plans_in_different_crs(diff_pair):
    a, b = diff_pair
    b3857 = b.replace(grids=b.grids.to_crs(3857), crs=pyproj.CRS.from_epsg(3857))
    d = plan_diff(a, b3857).set_index("grid_code")["status"]
    assert d[f"{CODE}003"] == "unchanged" and d[f"{CODE}001"] == "changed"


# --------------------------------------------------------------------------- quality


@pytest.fixture(scope="module")
def quality_plan() -> Plan:
    s = 200.0
    geoms = lattice(3, 1, s)  # 001..003 plain squares
    # 004: donut with a 100 m hole holding 005 (an enclave)
    outer = shapely.box(X0, Y0 - 500, X0 + 300, Y0 - 200)
    hole = shapely.box(X0 + 100, Y0 - 400, X0 + 200, Y0 - 300)
    geoms += [outer.difference(hole), hole]
    # 006: two separate parts; 007: a 400 × 20 m strip (Polsby–Popper 0.14)
    geoms.append(
        shapely.MultiPolygon(
            [
                shapely.box(X0 + 300, Y0 - 300, X0 + 400, Y0 - 200),
                shapely.box(X0 + 500, Y0 - 300, X0 + 600, Y0 - 200),
            ]
        )
    )
    geoms.append(shapely.box(X0 + 300, Y0 - 520, X0 + 700, Y0 - 500))
    hh = [100, 700, 300, 300, 300, 300, 300]
    return make_plan(geoms, hh)


def test_quality_flags_exactly_the_failing_grids(quality_plan):
    f = quality_flags(quality_plan).set_index("grid_code")
    failed = f.index[f["failed"]].tolist()
    assert failed == [f"{CODE}001", f"{CODE}002", f"{CODE}005", f"{CODE}006", f"{CODE}007"]
    assert f.loc[f"{CODE}001", "reasons"] == "户数低于下限 Below band (100 < 200)"
    assert f.loc[f"{CODE}002", "reasons"] == "户数超过上限 Above band (700 > 500)"
    assert f.loc[f"{CODE}005", "reasons"] == f"飞地 Enclave (inside {CODE}004)"
    assert f.loc[f"{CODE}006", "reasons"] == "不连续 Not contiguous (2 parts)"
    assert f.loc[f"{CODE}007", "reasons"] == "不紧凑 Not compact (PP 0.14 < 0.3)"
    assert f.loc[f"{CODE}007", "polsby_popper"] == pytest.approx(
        4 * np.pi * 8000 / 840**2, abs=1e-4
    )
    # the donut itself passes (PP 0.39) and so do the squares
    assert f.loc[f"{CODE}004", "polsby_popper"] == pytest.approx(0.3927, abs=1e-4)
    # a stricter threshold also flags the donut and the two-part grid's compactness
    strict = quality_flags(quality_plan, min_compactness=0.5).set_index("grid_code")
    assert strict.index[strict["not_compact"]].tolist() == [
        f"{CODE}004",
        f"{CODE}006",
        f"{CODE}007",
    ]
    # band from parameters
    wide = quality_flags(quality_plan, band=(50, 800)).set_index("grid_code")
    assert not wide.loc[f"{CODE}001", "failed"] and not wide.loc[f"{CODE}002", "failed"]


def test_quality_map_html(quality_plan):
    html = render(quality_map(quality_plan))
    feats = {f["id"]: f["properties"] for f in layer_with(html, "reasons")}
    assert len(feats) == 7
    assert {k for k, p in feats.items() if p["failed"]} == {
        f"{CODE}{k:03d}" for k in (1, 2, 5, 6, 7)
    }
    assert feats[f"{CODE}003"]["reasons"] == "通过 Passed"
    assert feats[f"{CODE}006"]["reasons"] == "不连续 Not contiguous (2 parts)"
    assert (
        "通过 Passed · 2" in html
        and "飞地 Enclave · 1" in html
        and "不紧凑 Not compact · 1" in html
    )
    assert js("问题 Problems") in html
    assert "new L.Control.Search(" in html


def test_quality_flags_need_a_projected_crs(quality_plan):
    geo = quality_plan.replace(
        grids=quality_plan.grids.to_crs(4326), crs=pyproj.CRS.from_epsg(4326)
    )
    with pytest.raises(CRSError, match="is geographic; quality figures need metres"):
        quality_flags(geo)


def test_quality_flags_explain_band_exempt_communities(quality_plan):
    rg = quality_plan.report.grids.assign(band_exempt=[True] + [False] * 6)
    plan = quality_plan.replace(report=QualityReport(grids=rg, communities=pd.DataFrame()))
    f = quality_flags(plan).set_index("grid_code")
    assert f.loc[f"{CODE}001", "reasons"] == (
        "户数低于下限 Below band (100 < 200; 社区总户数不足 whole community below band)"
    )
    assert bool(f.loc[f"{CODE}001", "failed"])


# --------------------------------------------------------------------------- robustness


def test_vacant_chief_and_unescaped_text_are_shown_safely(plan9):
    a = staff([f"{CODE}001", f"{CODE}002"])
    a.loc[
        (a["grid_code"] == f"{CODE}002") & (a["role"] == "chief"), ["staff_id", "name", "phone"]
    ] = None
    grids = plan9.grids.copy()
    grids.loc[0, "name"] = "<img src=x onerror=alert(1)>"
    plan = plan9.replace(assignments=a, grids=grids)
    html = render(plan_map(plan))
    feats = {f["id"]: f["properties"] for f in layer_with(html, "boundary_desc")}
    assert feats[f"{CODE}002"]["chief"] == "空缺 Vacant"
    assert feats[f"{CODE}001"]["name"] == "&lt;img src=x onerror=alert(1)&gt;"
    assert "<img src=x" not in html
    lon, lat = grid_centre_lonlat(plan, f"{CODE}002")
    inc = render(incident_map(plan, lon, lat))
    assert "<tr><td>网格长 Grid chief</td><td><b>空缺 Vacant</b></td></tr>" in inc
    assert "<b>李网格员1</b> ☎ 13900000001" in inc


def test_nearly_matching_edges_are_snapped_before_simplifying(recwarn, caplog):
    # grids whose shared vertices differ by nanometres, plus a T-junction
    geoms = lattice(2, 2)
    a = shapely.transform(geoms[0], lambda c: c + 1e-7)
    big = shapely.box(X0, Y0 - 400, X0 + 400, Y0 - 200)  # spans 003 and 004 below
    plan = make_plan([a, geoms[1], big], [300, 300, 300])
    with caplog.at_level("INFO", logger="gridmap.maps"):
        html = render(plan_map(plan, simplify_tolerance=2.0))
    assert not [w for w in recwarn if "coverage" in str(w.message)]
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert "shared edges were rebuilt" in caplog.text
    feats = layer_with(html, "boundary_desc")
    assert len(feats) == 3
    # overlapping grids cannot be a coverage: each is simplified alone, and that is logged
    # (not a Python warning: the quality report, not the map, is where overlaps are flagged)
    caplog.clear()
    over = make_plan([geoms[0], shapely.box(X0 + 100, Y0 - 200, X0 + 300, Y0)], [300, 300])
    with caplog.at_level("WARNING", logger="gridmap.maps"):
        feats = layer_with(render(plan_map(over)), "boundary_desc")
    assert "2 grids do not form a coverage" in caplog.text
    assert not [w for w in recwarn if "coverage" in str(w.message)]
    # the overlap is still drawn: neither grid was cut back
    areas = shapely.area(
        gpd.GeoSeries(shapely.from_geojson([json.dumps(f["geometry"]) for f in feats]), crs=4326)
        .to_crs(CRS)
        .to_numpy()
    )
    assert areas == pytest.approx([40000, 40000], rel=1e-3)


def test_partitioner_defects_are_repaired_for_display(caplog):
    """Slits, collapsed holes and nanometre overlaps (seen in partitioner output) draw cleanly."""
    g = lattice(2, 2)
    x0, y0, x1, y1 = g[0].bounds
    ym = (y0 + y1) / 2
    # 001: a zero-width slit cut 80 m into the grid from its east edge (a "ring self-intersection")
    slit = shapely.Polygon(
        [(x0, y0), (x1, y0), (x1, ym), (x1 - 80, ym), (x1, ym), (x1, y1), (x0, y1)]
    )
    # 002: a hole that collapsed to a line ("too few points in geometry component")
    bx0, by0, bx1, by1 = g[1].bounds
    collapsed = shapely.Polygon(
        shapely.get_coordinates(g[1].exterior),
        [
            [
                (bx0 + 50, by0 + 50),
                (bx0 + 120, by0 + 90),
                (bx0 + 120, by0 + 90),
                (bx0 + 50, by0 + 50),
            ]
        ],
    )
    # 003: overlaps 004 by a nanometre-thin sliver
    thick = shapely.box(*(np.asarray(g[2].bounds) + [0, 0, 1e-7, 0]))
    assert not shapely.is_valid(slit) and not shapely.is_valid(collapsed)
    plan = make_plan([slit, collapsed, thick, g[3]], [300] * 4)
    with caplog.at_level("INFO", logger="gridmap.maps"), warnings.catch_warnings():
        warnings.simplefilter("error")
        html = render(plan_map(plan))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    feats = layer_with(html, "boundary_desc")
    shown = gpd.GeoSeries(
        shapely.from_geojson([json.dumps(f["geometry"]) for f in feats]), crs=4326
    ).to_crs(CRS)
    # every grid is drawn as a plain valid 200 m square: no slit, no hole, no sliver
    assert shown.is_valid.all()
    assert [len(p.interiors) for p in shown] == [0, 0, 0, 0]
    assert shown.area.to_numpy() == pytest.approx([40000] * 4, rel=1e-3)
    assert shapely.get_num_coordinates(shown.to_numpy()).tolist() == [5, 5, 5, 5]
    # the neighbours share their edges exactly (one coverage)
    assert bool(
        shapely.coverage_is_valid(shapely.from_geojson([json.dumps(f["geometry"]) for f in feats]))
    )


@pytest.mark.slow
def test_maps_of_a_partitioned_synthetic_city(recwarn, caplog):
    from gridmap.partition import partition
    from gridmap.staffing import assign_staff
    from gridmap.synth import synth_city
    from gridmap.validation import validate_layers

    layers, _ = validate_layers(synth_city(n_buildings=600, seed=1))
    plan = partition(layers, seed=0)
    plan = assign_staff(plan, layers.staff, buildings=layers.buildings).to_plan(plan)
    with caplog.at_level("WARNING", logger="gridmap.maps"):
        html = render(plan_map(plan, layers=layers))
    assert not [w for w in recwarn if "coverage" in str(w.message)]
    assert "coverage" not in caplog.text
    feats = layer_with(html, "boundary_desc")
    assert len(feats) == plan.n_grids
    chiefs = plan.assignments.query("role == 'chief'").set_index("grid_code")["name"]
    chiefs = chiefs.astype(object).where(chiefs.notna(), "空缺 Vacant")
    for f in feats:
        assert f["properties"]["chief"] == chiefs.get(f["id"], "—")
    assert len(layer_with(html, "building_id")) == len(layers.buildings)
    assert "q_polsby_popper" in feats[0]["properties"]
    flags = quality_flags(plan).set_index("grid_code")
    rg = plan.report.grids.set_index("grid_code")
    assert (flags["n_parts"] == rg.loc[flags.index, "n_parts"]).all()
    assert flags["polsby_popper"].to_numpy() == pytest.approx(
        rg.loc[flags.index, "polsby_popper"].to_numpy(), abs=1e-3
    )
    c = plan.grids.geometry.iloc[0].representative_point()
    lon, lat = transform(c.x, c.y, plan.crs, "wgs84")
    inc = render(incident_map(plan, lon, lat))
    assert f"网格 Grid: <b>{plan.grids['grid_code'].iloc[0]}</b>" in inc


# --------------------------------------------------------------------------- page encoding


def mixed_collection() -> dict:
    """Every geometry type the maps draw, with holes, multi-parts, a missing geometry."""
    x, y = 118.78, 32.05
    hole = shapely.Polygon(
        [(x, y), (x + 0.01, y), (x + 0.01, y + 0.01), (x, y + 0.01)],
        [[(x + 0.002, y + 0.002), (x + 0.004, y + 0.002), (x + 0.004, y + 0.004)]],
    )
    geoms = [
        hole,
        shapely.MultiPolygon([hole, shapely.box(x + 0.02, y, x + 0.021, y + 0.001)]),
        shapely.LineString([(x, y), (x + 0.0015, y - 0.0007)]),
        shapely.MultiLineString([[(x, y), (x + 0.001, y)], [(x, y + 0.001), (x - 0.001, y)]]),
        shapely.Point(x + 0.123456, y - 0.000001),
        None,
    ]
    props = pd.DataFrame(
        {
            "grid_code": [f"{CODE}001"] * 3 + [f"{CODE}002"] * 2 + [None],
            "households": [1, 2, None, 4, 5, 6],
            "name": ["东<至>", "b", "c", "d", "e", "f"],
        }
    )
    return _collection(np.array(geoms, dtype=object), props, "name")


def test_page_encoding_round_trips_every_geometry_type():
    data = mixed_collection()
    enc = _encode_collection(data)
    text = json.dumps(enc, ensure_ascii=False)
    assert text.count(f"{CODE}001") == 1  # repeated codes are written once
    back = maphtml.decode(json.loads(text))["features"]
    assert [f["id"] for f in back] == ["东&lt;至&gt;", "b", "c", "d", "e", "f"]
    assert [f["properties"]["grid_code"] for f in back] == [f"{CODE}001"] * 3 + [
        f"{CODE}002"
    ] * 2 + [None]
    assert [f["properties"]["households"] for f in back] == [1, 2, None, 4, 5, 6]
    for f, want in zip(back, data["features"], strict=True):
        if want["geometry"] is None:
            assert f["geometry"] is None
            continue
        got = shapely.from_geojson(json.dumps(f["geometry"]))
        assert got.geom_type == want["geometry"].geom_type
        assert got.equals_exact(want["geometry"], 1e-9)
    # micro-degree steps from the previous vertex; a ring's closing vertex is implied
    assert enc["g"][0] == [
        "P",
        [[118780000, 32050000, 10000, 0, 0, 10000, -10000, 0], [2000, -8000, 2000, 0, 0, 2000]],
    ]
    assert enc["g"][2][1][2:] == [1500, -700]


# --------------------------------------------------------------------------- offline assets


def every_map_kind(plan9, diff_pair, quality_plan, **kw) -> dict[str, str]:
    lon, lat = grid_centre_lonlat(plan9, f"{CODE}005")
    incidents = pd.DataFrame(
        {"id": ["e1", "e2"], "lon": [lon, lon + 1e-4], "lat": [lat, lat], "grid_code": None}
    )
    return {
        "plan": render(plan_map(plan9, **kw)),
        "incident": render(incident_map(plan9, lon, lat, **kw)),
        "incidents": render(incidents_map(plan9, incidents, **kw)),
        "diff": render(diff_map(*diff_pair, **kw)),
        "quality": render(quality_map(quality_plan, **kw)),
    }


def test_inline_maps_load_nothing_from_the_internet_but_tiles(plan9, diff_pair, quality_plan):
    cdn = every_map_kind(plan9, diff_pair, quality_plan)
    inline = every_map_kind(plan9, diff_pair, quality_plan, assets="inline")
    for kind, html in inline.items():
        assert external(html) == [], kind
        assert "<script src=" not in html and "<link rel=" not in html, kind
        # what a page still fetches is its tiles, built by Leaflet from the template
        assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in html, kind
        assert [u for u in resources(html) if not u.startswith("data:")] == [
            "#default#VML"  # leaflet.css's old-IE behaviour, not a request
        ], kind
        # the libraries the CDN page links, and nothing else, are in the page
        for url in external(cdn[kind]):
            assert url in CDN_FILES, (kind, url)
            head = vendored_file(CDN_FILES[url]).read_text(encoding="utf-8")[:30]
            assert head.strip() in html, (kind, url)
    assert (
        "L.markerClusterGroup(" in inline["incidents"]
        and "MarkerClusterGroup=" in (inline["incidents"])
    )
    assert "markercluster" not in inline["plan"].lower()
    # the same map, the same grids: only the <head> differs
    assert collections(inline["plan"]) == collections(cdn["plan"])
    # about 270-310 kB more per page (a 9-grid plan is ~17 kB with CDN links)
    extra = {k: len(inline[k].encode()) - len(cdn[k].encode()) for k in cdn}
    assert all(260_000 < v < 320_000 for v in extra.values()), extra


def test_served_maps_load_the_vendored_files_from_the_prefix(plan9, diff_pair, quality_plan):
    cdn = every_map_kind(plan9, diff_pair, quality_plan)
    for prefix in ("/maps/static/", "http://gis.intranet/gridmap-static/"):
        served = every_map_kind(plan9, diff_pair, quality_plan, assets=prefix.rstrip("/"))
        for kind, html in served.items():
            want = [prefix + CDN_FILES[u] for u in external(cdn[kind])]
            assert resources(html) == want, kind
            assert "cdn.jsdelivr" not in html and "cdnjs" not in html, kind
    assert external(served["plan"]) == [
        "http://gis.intranet/gridmap-static/" + p
        for p in (
            "leaflet-1.9.3/dist/leaflet.js",
            "jquery-3.7.1/dist/jquery.min.js",
            "leaflet-1.9.3/dist/leaflet.css",
            "leaflet-search-2.9.7/dist/leaflet-search.min.js",
            "leaflet-search-2.9.7/dist/leaflet-search.min.css",
            "leaflet.fullscreen-3.0.0/Control.FullScreen.js",
            "leaflet.fullscreen-3.0.0/Control.FullScreen.css",
        )
    ]


def test_cdn_maps_link_only_what_they_use(plan9_html):
    links = external(plan9_html)
    assert len(links) == 7 and all(u in CDN_FILES for u in links)
    for unused in ("bootstrap", "fontawesome", "glyphicons", "awesome-markers"):
        assert unused not in plan9_html


def test_maps_reject_an_unknown_assets_mode(plan9):
    with pytest.raises(InputError, match="neither 'cdn', 'inline' nor a URL prefix"):
        plan_map(plan9, assets="offline")
