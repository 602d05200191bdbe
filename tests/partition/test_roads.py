"""Road hierarchy (issue 14): arterials as borders, dedicated grids, honest boundary figures.

Hand-made fixtures with exact answers, for :mod:`gridmap.partition.roads`,
:mod:`gridmap.partition.pieces` and the figures of the quality report built on them.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from invariants import assert_valid_plan
from lattice import one_community
from shapely import LineString, box

from gridmap.partition import partition
from gridmap.partition.quality import quality_report
from gridmap.partition.roads import barrier_groups, length_near, road_ranks

CRS = 4549


_layers = one_community  # one community 幸福社区 (tests/partition/lattice.py)


def test_road_ranks_and_barrier_groups():
    assert road_ranks(
        ["trunk", "secondary", "tertiary", "residential", "cycleway", None]
    ).tolist() == [
        0,
        0,
        0,
        1,
        2,
        1,
    ]
    assert barrier_groups(["fence", "canal", "boundary"]).tolist() == ["wall", "water", "other"]


def test_length_near_one_merged_buffer():
    # an edge of 158.7 m; two overlapping roads along it cover 0–123.8 m within 5 m
    edge = np.array([LineString([(0, 0), (158.7, 0)])])
    roads = np.array([LineString([(-20, 0), (90, 0)]), LineString([(30, 0), (118.8, 0)])])
    assert length_near(edge, roads, 5.0)[0] == pytest.approx(123.8)


def test_quality_counts_overlapping_buffers_once():
    # the double-counting case of issue 14: 123.8 of 158.7 m on roads, not 153
    comm = box(0, -50, 158.7, 50)
    layers = _layers(
        comm,
        [(box(10, -40, 20, -30), 250), (box(10, 30, 20, 40), 250)],
        roads=[
            (LineString([(-20, 0), (90, 0)]), "residential"),
            (LineString([(30, 0), (118.8, 0)]), "footway"),
        ],
        barriers=[
            (LineString([(100, 1), (150, 1)]), "wall"),
            (LineString([(0, 3), (5, 3)]), "river"),
        ],
    )
    grids = gpd.GeoDataFrame(
        {"grid_code": ["g1", "g2"], "community_id": ["c1", "c1"], "households": [250, 250]},
        geometry=[box(0, -50, 158.7, 0), box(0, 0, 158.7, 50)],
        crs=CRS,
    )
    rows = pd.DataFrame(
        {"building_id": ["b0", "b1"], "grid_code": ["g1", "g2"], "households": [250, 250]}
    )
    o = quality_report(grids, rows, layers, min_households=200, max_households=500).overall
    assert o["internal_boundary_m"] == pytest.approx(158.7)
    assert o["boundary_on_roads_m"] == pytest.approx(123.8)
    assert o["boundary_on_streets_m"] == pytest.approx(95.0)  # the footway is no street
    assert o["boundary_on_walls_m"] == pytest.approx(50.0 + 2 * np.sqrt(25 - 1), abs=0.05)
    assert o["boundary_on_water_m"] == pytest.approx(5.0 + np.sqrt(25 - 9), abs=0.05)
    assert o["boundary_on_lines_m"] == pytest.approx(150.0 + np.sqrt(24), abs=0.05)
    assert o["share_boundary_on_roads"] == pytest.approx(123.8 / 158.7)


def _two_sides(left: list[int], right: list[int], road_class: str):
    """A 400 × 200 m community with a road at x = 200 and buildings on both sides."""
    blds = []
    for k, h in enumerate(left):
        x = 20 + 45 * k
        blds.append((box(x, 80, x + 25, 120), h))
    for k, h in enumerate(right):
        x = 220 + 45 * k
        blds.append((box(x, 80, x + 25, 120), h))
    road = (LineString([(200, -10), (200, 210)]), road_class)
    return _layers(box(0, 0, 400, 200), blds, roads=[road])


def test_arterial_through_a_block_becomes_a_border():
    # 450 | 250 households: a balanced cut (350 | 350) would run west of the road; a
    # primary road must be the border instead, as both sides fit the band
    layers = _two_sides([150, 150, 150], [125, 125], "primary")
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert sorted(plan.grids["households"]) == [250, 450]
    o = plan.report.overall
    assert o["n_grids_arterial_inside"] == 0 and o["arterial_inside_m"] == pytest.approx(0.0)
    west = plan.grids.loc[plan.grids["households"] == 450].geometry.iloc[0]
    assert west.bounds[2] == pytest.approx(200.0)


def test_arterial_crossing_forced_and_named():
    # 150 households east of the primary road cannot be a grid alone: the grid spans
    # the road, and the report names it as forced
    layers = _two_sides([150, 150, 150], [75, 75], "primary")
    plan = partition(layers, min_households=200, max_households=500, dedicated_area_m2=None)
    assert_valid_plan(plan, layers, min=200, max=500)
    o = plan.report.overall
    assert o["n_grids_arterial_inside"] == 0
    assert o["n_grids_arterial_forced"] == 1
    notes = plan.report.communities["notes"].iloc[0]
    assert "spans a main road" in notes and "150" in notes
    assert plan.grids["arterial_forced"].sum() == 1


def test_school_and_hospital_become_dedicated_grids():
    # three pieces between two primary roads: homes (600), a school campus, a hospital
    homes = [(box(20 + 45 * k, 80, 45 + 45 * k, 220), 150) for k in range(4)]
    school = [(box(260, 40, 360, 260), 0)]
    hospital = [(box(460, 40, 560, 260), 0)]
    roads = [
        (LineString([(220, -10), (220, 310)]), "primary"),
        (LineString([(420, -10), (420, 310)]), "secondary"),
    ]
    layers = _layers(box(0, 0, 620, 300), homes + school + hospital, roads=roads)
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    g = plan.grids.sort_values("grid_code")
    assert sorted(g["kind"]) == ["dedicated", "dedicated", "residential", "residential"]
    ded = g[g["kind"] == "dedicated"]
    assert (ded["households"] == 0).all()
    assert sorted(round(a) for a in ded.area) == [200 * 300 - 0, 200 * 300]
    o = plan.report.overall
    assert o["n_dedicated"] == 2 and o["share_residential_in_band"] == 1.0
    assert o["n_grids_arterial_inside"] == 0
    rep = plan.report.grids
    assert rep.loc[rep["kind"] == "dedicated", "band_exempt"].all()
    # without dedicated grids the campus joins a residential grid across the road
    plain = partition(layers, dedicated_area_m2=None)
    assert (plain.grids["kind"] == "residential").all()


def test_area_cap_is_reported():
    layers = _two_sides([150, 150, 150], [125, 125], "primary")
    plan = partition(layers, area_cap_m2=30_000.0)
    o = plan.report.overall
    assert o["n_over_area_cap"] == 2
    assert "above the area cap" in plan.report.communities["notes"].iloc[0]
    assert (plan.grids["households_per_km2"] > 0).all()


def test_off_street_cuts_forced_by_a_block_without_streets():
    # one block of 900 households and no internal street: the cut between buildings is forced
    blds = [(box(20 + 45 * k, 80, 45 + 45 * k, 120), 150) for k in range(6)]
    ring = [(shapely.LineString([(0, 0), (300, 0), (300, 200), (0, 200), (0, 0)]), "residential")]
    layers = _layers(box(0, 0, 300, 200), blds, roads=ring)
    plan = partition(layers)
    o = plan.report.overall
    assert o["share_boundary_on_streets"] < 0.5
    assert o["forced_off_street_m"] == pytest.approx(
        o["internal_boundary_m"] - o["boundary_on_streets_m"]
    )
    assert (
        "a block of 900 households with no internal street"
        in plan.report.communities["notes"].iloc[0]
    )
