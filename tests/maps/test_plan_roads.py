"""Plan maps draw the roads by class under the grids (issue 14: maps checked offline)."""

from __future__ import annotations

import json
import re

import pytest
from maphtml import decode

from gridmap.maps import plan_map
from gridmap.maps.plan import ROAD_STYLES
from gridmap.partition import partition
from gridmap.synth_rural import synth_rural_city
from gridmap.validation import validate_layers


@pytest.fixture(scope="module")
def town():
    raw = synth_rural_city(core_blocks=(2, 1), n_villages=3, seed=2, with_households=False)
    layers, _ = validate_layers(raw)
    plan = partition(layers, min_households=200, max_households=500)
    return layers, plan


def _layers_of(html: str) -> dict[str, tuple[int, list, dict]]:
    """Every compact GeoJSON layer: name → (position in page, style table, collection)."""
    dec = json.JSONDecoder()
    out = {}
    for m in re.finditer(r"var (geo_json_\w+)_styles = ", html):
        name = m.group(1)
        styles = dec.raw_decode(html, m.end())[0]
        add = re.search(re.escape(name) + r"\.addData\(gridmapDecode\(\{", html[m.end() :])
        coll = decode(dec.raw_decode(html, m.end() + add.end() - 1)[0])
        out[name] = (m.start(), styles, coll)
    return out


def test_roads_are_drawn_by_class_under_the_grids(town):
    layers, plan = town
    html = plan_map(plan, layers=layers, tiles=None).get_root().render()
    found = _layers_of(html)
    (roads,) = [
        v
        for v in found.values()
        if v[2]["features"] and "rank" in v[2]["features"][0]["properties"]
    ]
    (grids,) = [
        v
        for v in found.values()
        if v[2]["features"] and "boundary_desc" in v[2]["features"][0]["properties"]
    ]
    pos, styles, coll = roads
    assert pos < grids[0]  # added first: drawn under the grids
    feats = coll["features"]
    assert len(feats) == len(layers.roads)
    by_class = {}
    for f in feats:
        p = f["properties"]
        by_class.setdefault(p["class"], set()).add((p["rank"], styles[p.get("_s") or 0]["weight"]))
    assert by_class["primary"] == {("arterial", 5)}
    assert by_class["secondary"] == {("arterial", 5)}
    assert by_class["service"] == {("street", 2.5)}
    assert by_class["track"] == {("street", 2.5)}
    # arterials are drawn last (over the streets that meet them) and thickest
    ranks = [f["properties"]["rank"] for f in feats]
    assert ranks.index("arterial") > max(i for i, r in enumerate(ranks) if r == "street")
    assert ROAD_STYLES["arterial"]["weight"] > ROAD_STYLES["street"]["weight"]
    assert ROAD_STYLES["street"]["weight"] > ROAD_STYLES["path"]["weight"]
    assert "\\u9053\\u8def Roads" in html  # the layer control (JSON-escaped)
    assert "主次干路 Arterials" in html  # the legend


def test_no_roads_layer_without_roads(town):
    layers, plan = town
    html = plan_map(plan, layers=layers.replace(roads=None), tiles=None).get_root().render()
    found = _layers_of(html)
    assert not [
        v
        for v in found.values()
        if v[2]["features"] and "rank" in v[2]["features"][0]["properties"]
    ]
    assert "\\u9053\\u8def Roads" not in html and "主次干路 Arterials" not in html
