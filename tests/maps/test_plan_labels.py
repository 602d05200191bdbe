"""Maps for people: community names, grid labels, colours, formatted popups, staff, chiefs.

Three grids in two communities (幸福社区: 001, 002; 和平社区: 001), 200 m boxes west→east:

- 幸福 001: 1,234 households (above band), chief 张三, workers 李四、王五;
- 幸福 002: 300 households, chief post vacant, worker 赵六 and one vacant worker post;
- 和平 001: 250 households, no posts at all.
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from maphtml import collections, decode

from gridmap.crs import transform
from gridmap.layers import Layers
from gridmap.maps import plan_map, quality_flags, quality_map
from gridmap.maps.style import _ABOVE, _BELOW, _BUILDING_COLOURS, _GREY, _IN_BAND, _NO_CHIEF
from gridmap.partition.plan import Plan, QualityReport

CRS = "EPSG:4549"
X0, Y0 = transform(118.78, 32.05, "wgs84", CRS)
XF, HP = "320106001001", "320106001002"  # community codes of 幸福社区 and 和平社区
CODES = [f"{XF}001", f"{XF}002", f"{HP}001"]


def boxes() -> list[shapely.Polygon]:
    return [shapely.box(X0 + 200 * i, Y0 - 200, X0 + 200 * (i + 1), Y0) for i in range(3)]


def posts() -> pd.DataFrame:
    rows = [
        (CODES[0], "chief", 1, "s1", "张三"),
        (CODES[0], "worker", 1, "s2", "李四"),
        (CODES[0], "worker", 2, "s3", "王五"),
        (CODES[1], "chief", 1, None, None),
        (CODES[1], "worker", 1, "s4", "赵六"),
        (CODES[1], "worker", 2, None, None),
    ]
    return pd.DataFrame(rows, columns=["grid_code", "role", "slot", "staff_id", "name"])


def make_plan(assignments: pd.DataFrame | None = None) -> Plan:
    grids = gpd.GeoDataFrame(
        {
            "grid_code": CODES,
            "community_id": ["C0001", "C0001", "C0002"],
            "name": ["幸福社区第001网格", "幸福社区第002网格", "和平社区第001网格"],
            "households": [1234, 300, 250],
            "persons": [float("nan")] * 3,
            "n_buildings": [1, 1, 1],
            "boundary_desc": ["东至中山路"] * 3,
            "locked": [False] * 3,
        },
        geometry=boxes(),
        crs=CRS,
    )
    report = pd.DataFrame(
        {
            "grid_code": CODES,
            "polsby_popper": [0.785398] * 3,
            "in_band": [False, True, True],
            "share_boundary_on_roads": [0.725, 1.0, np.nan],
            "area_m2": [40000.0] * 3,
        }
    )
    return Plan(
        grids=grids,
        buildings=pd.DataFrame(
            {
                "building_id": ["b1", "b2", "b3"],
                "grid_code": CODES,
                "households": [1234, 300, 250],
                "part": None,
            }
        ),
        households=None,
        report=QualityReport(grids=report, communities=pd.DataFrame({"community_id": []})),
        params={"min_households": 200, "max_households": 500},
        crs=pyproj.CRS.from_user_input(CRS),
        assignments=assignments,
    )


def make_layers() -> Layers:
    g = boxes()
    communities = gpd.GeoDataFrame(
        {"community_id": ["C0001", "C0002"], "name": ["幸福社区", "和平社区"]},
        geometry=[shapely.union_all(g[:2]), g[2]],
        crs=CRS,
    )
    buildings = gpd.GeoDataFrame(
        {"building_id": ["b1", "b2", "b3"], "households": [1234, 300, 250]},
        geometry=[
            shapely.box(b.centroid.x - 20, b.centroid.y - 20, b.centroid.x + 20, b.centroid.y + 20)
            for b in g
        ],
        crs=CRS,
    )
    return Layers(communities=communities, buildings=buildings, crs=pyproj.CRS.from_user_input(CRS))


def grid_props(html: str) -> dict[str, dict]:
    (layer,) = [
        c
        for c in collections(html)
        if c["features"] and "boundary_desc" in c["features"][0]["properties"]
    ]
    return {f["id"]: f["properties"] for f in layer["features"]}


def grid_label_rows(html: str) -> list[list]:
    chunks = re.findall(r"\}\)\(grid_labels_\w+, (\[.*?\]), map_\w+,", html, flags=re.S)
    return [r for chunk in chunks for r in json.loads(chunk)]


def place_rows(html: str) -> list[list]:
    chunks = re.findall(r"\}\)\(place_labels_\w+, (\[.*?\]), map_\w+,", html, flags=re.S)
    return [r for chunk in chunks for r in json.loads(chunk)]


def popup_fields(html: str) -> tuple[list[str], list[str]]:
    """Fields and aliases of the grid layer's popup (the one that shows 四至)."""
    for fields, aliases in re.findall(
        r"let fields = (\[.*?\]);\s*let aliases = (\[.*?\]);", html, flags=re.S
    ):
        if "boundary_desc" in json.loads(fields):
            return json.loads(fields), json.loads(aliases)
    raise AssertionError("no popup with boundary_desc")


def styles_of(html: str, key: str) -> list[dict]:
    """The style of each feature of the layer whose features have property ``key``."""
    dec = json.JSONDecoder()
    for name, table in re.findall(r"var (\w+)_styles = (\[.*?\]);\n", html):
        at = re.search(re.escape(name) + r"\.addData\(gridmapDecode\(\{", html)
        layer = decode(dec.raw_decode(html, at.end() - 1)[0])
        if layer["features"] and key in layer["features"][0]["properties"]:
            styles = json.loads(table)
            return [styles[f["properties"].get("_s", 0)] for f in layer["features"]]
    raise AssertionError(f"no layer with {key!r}")


def render(m) -> str:
    return m.get_root().render()


@pytest.fixture(scope="module")
def staffed_html() -> str:
    return render(plan_map(make_plan(posts()), layers=make_layers()))


# --------------------------------------------------------------------------- labels


def test_grid_labels_name_their_community(staffed_html):
    rows = {r[2]: r[3] for r in grid_label_rows(staffed_html)}
    assert rows == {CODES[0]: "幸福-001", CODES[1]: "幸福-002", CODES[2]: "和平-001"}


def test_grid_labels_without_layers_use_the_community_id():
    rows = {r[2]: r[3] for r in grid_label_rows(render(plan_map(make_plan())))}
    assert rows == {CODES[0]: "C0001-001", CODES[1]: "C0001-002", CODES[2]: "C0002-001"}


def test_community_names_are_labelled_inside_their_community(staffed_html):
    rows = place_rows(staffed_html)
    assert sorted(r[2] for r in rows) == ["和平社区", "幸福社区"]
    comms = make_layers().communities.to_crs(4326).set_index("name").geometry
    for lat, lon, name in rows:
        assert comms[name].contains(shapely.Point(lon, lat)), name
    assert json.dumps("社区名称 Community names") in staffed_html  # its layer in the control
    # without layers the communities are the union of their grids, named by id
    assert sorted(r[2] for r in place_rows(render(plan_map(make_plan())))) == ["C0001", "C0002"]


# --------------------------------------------------------------------------- popups


def test_popup_values_are_formatted_for_people(staffed_html):
    p = grid_props(staffed_html)
    assert [p[c]["households"] for c in CODES] == ["1,234", "300", "250"]
    assert [p[c]["q_in_band"] for c in CODES] == ["否", "是", "是"]
    assert [p[c]["q_share_boundary_on_roads"] for c in CODES] == ["72.5%", "100.0%", "—"]
    assert p[CODES[0]]["q_area_m2"] == "40,000"
    assert p[CODES[0]]["q_polsby_popper"] == "0.785"
    # no raw booleans or fractions left anywhere in the grid layer
    values = [v for props in p.values() for k, v in props.items() if k != "_s"]
    assert not any(isinstance(v, bool | float) for v in values)
    fields, aliases = popup_fields(staffed_html)
    assert aliases[fields.index("q_share_boundary_on_roads")] == "沿路边界占比 Boundary on roads"


def test_popup_names_chief_workers_and_vacancies(staffed_html):
    p = grid_props(staffed_html)
    assert [p[c]["chief"] for c in CODES] == ["张三", "空缺 Vacant", "—"]
    assert [p[c]["workers"] for c in CODES] == ["李四、王五", "赵六", "—"]
    assert [p[c]["vacant"] for c in CODES] == ["无 None", "网格长 1、网格员 1", "—"]
    assert [p[c]["community"] for c in CODES] == ["幸福社区", "幸福社区", "和平社区"]
    fields, aliases = popup_fields(staffed_html)
    assert fields[:8] == [
        "grid_code",
        "name",
        "community",
        "households",
        "boundary_desc",
        "chief",
        "workers",
        "vacant",
    ]
    assert aliases[5:8] == ["网格长 Grid chief", "网格员 Grid workers", "空缺岗位 Vacant posts"]


def test_roles_that_may_not_see_staff_get_vacancies_but_no_names():
    html = render(plan_map(make_plan(posts()), layers=make_layers(), staff_visible=False))
    p = grid_props(html)
    assert [p[c]["vacant"] for c in CODES] == ["无 None", "网格长 1、网格员 1", "—"]
    assert not {"chief", "workers"} & set(p[CODES[0]])
    for name in ("张三", "李四", "王五", "赵六"):
        assert name not in html


def test_a_plan_without_assignments_has_no_staff_rows():
    html = render(plan_map(make_plan()))
    p = grid_props(html)
    assert not {"workers", "vacant"} & set(p[CODES[0]])
    assert p[CODES[0]]["chief"] == "—"
    fields, _ = popup_fields(html)
    assert "vacant" not in fields and "workers" not in fields


# --------------------------------------------------------------------------- colours


def _lab(hex_colour: str) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB colour."""
    c = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ c / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_building_colours_never_look_like_the_band(staffed_html):
    band = [_BELOW, *_IN_BAND, _ABOVE, _GREY]
    fills = [s["fillColor"] for s in styles_of(staffed_html, "building_id")]
    assert len(fills) == 3 and set(fills) <= set(_BUILDING_COLOURS)
    assert fills[0] != fills[1] != fills[2]  # neighbouring grids differ
    for c in _BUILDING_COLOURS:
        nearest = min(float(np.linalg.norm(_lab(c) - _lab(b))) for b in band)
        assert nearest >= 25, (c, nearest)
    # the grids themselves keep the band colours
    grid_fills = [s["fillColor"] for s in styles_of(staffed_html, "boundary_desc")]
    assert grid_fills[0] == _ABOVE and set(grid_fills[1:]) <= set(_IN_BAND)


# --------------------------------------------------------------------------- chiefs


def test_quality_flags_grids_without_a_chief():
    f = quality_flags(make_plan(posts()), band=(200, 2000)).set_index("grid_code")
    assert f["no_chief"].tolist() == [False, True, True]
    assert f["failed"].tolist() == [False, True, True]
    assert f.loc[CODES[1], "reasons"] == "无网格长 No grid chief"
    # a plan not staffed yet is not failed for it, unless asked
    assert not quality_flags(make_plan(), band=(200, 2000))["no_chief"].any()
    forced = quality_flags(make_plan(), band=(200, 2000), require_chief=True)
    assert forced["no_chief"].tolist() == [True, True, True]


def test_quality_map_outlines_and_counts_grids_without_a_chief():
    html = render(quality_map(make_plan(posts()), band=(200, 2000)))
    styles = dict(zip(CODES, styles_of(html, "reasons"), strict=True))
    assert styles[CODES[0]]["color"] != _NO_CHIEF and "dashArray" not in styles[CODES[0]]
    for code in CODES[1:]:
        assert styles[code]["color"] == _NO_CHIEF and styles[code]["dashArray"] == "8 5"
    assert "无网格长 No grid chief · 2" in html
    assert "通过 Passed · 1" in html
    assert f"border:2px dashed {_NO_CHIEF}" in html
    props = {
        f["id"]: f["properties"]
        for c in collections(html)
        if c["features"] and "reasons" in c["features"][0]["properties"]
        for f in c["features"]
    }
    assert props[CODES[2]]["reasons"] == "无网格长 No grid chief"
    assert props[CODES[0]]["households"] == "1,234"
    unstaffed = render(quality_map(make_plan(), band=(200, 2000)))
    assert "Not staffed: chiefs not checked" in unstaffed and "通过 Passed · 3" in unstaffed
