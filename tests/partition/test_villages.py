"""Settlements (natural villages): detection, and villages kept whole by the partitioner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from invariants import assert_valid_plan
from lattice import make_layers
from shapely import LineString, box

from gridmap.errors import InputError
from gridmap.partition import partition
from gridmap.partition.units import build_units
from gridmap.partition.villages import keep_settlements_whole, settlements


def _village(name: str, x0: float, *, households: int, cols: int = 6, rows: int = 5) -> list:
    """Houses 12 × 10 m every 25 m from x0 (rows from y=100), households spread evenly."""
    n = cols * rows
    hh = np.full(n, households // n)
    hh[: households - int(hh.sum())] += 1
    out = []
    for k in range(n):
        i, j = k % cols, k // cols
        x, y = x0 + 25 * i, 100 + 25 * j
        out.append((f"{name}{k:02d}", box(x, y, x + 12, y + 10), int(hh[k]), "c1"))
    return out


def _grid_of(plan) -> pd.Series:
    return plan.buildings.groupby(plan.buildings["building_id"].str[0])["grid_code"].nunique()


def test_settlements_link_buildings_within_the_gap():
    houses = [box(0, 0, 10, 10), box(50, 0, 60, 10), box(150, 0, 160, 10), box(500, 0, 510, 10)]
    # 40 m, 90 m and 340 m between outlines
    assert settlements(houses, gap=80).tolist() == [0, 0, 1, 2]
    assert settlements(houses, gap=100).tolist() == [0, 0, 0, 1]
    assert settlements([], gap=80).tolist() == []
    with pytest.raises(InputError, match="gap must be a positive number"):
        settlements(houses, gap=0)


def test_three_villages_each_whole_though_the_target_would_cut_the_middle_one():
    # 250 + 250 + 250 households, 300 m of fields between villages; the target 375 would
    # be met exactly by cutting the middle village in two
    blds = (
        _village("a", 50, households=250)
        + _village("b", 500, households=250)
        + _village("c", 950, households=250)
    )
    layers = make_layers([("c1", box(0, 0, 1150, 300))], blds)
    plan = partition(layers, min_households=200, max_households=500, target=375)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert _grid_of(plan).to_dict() == {"a": 1, "b": 1, "c": 1}
    assert sorted(plan.grids["households"].tolist()) == [250, 500]
    note = plan.report.communities.set_index("community_id").loc["c1", "notes"]
    assert "3 settlements (natural villages) kept whole" in note


def test_a_village_is_cut_only_when_the_band_needs_it():
    # 150 + 350 + 150: whole villages give a grid of 150 (below the minimum), so the
    # middle village is cut, and only it
    blds = (
        _village("a", 50, households=150)
        + _village("b", 500, households=350)
        + _village("c", 950, households=150)
    )
    layers = make_layers([("c1", box(0, 0, 1150, 300))], blds)
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert _grid_of(plan).to_dict() == {"a": 1, "b": 2, "c": 1}
    assert sorted(plan.grids["households"].tolist()) == [324, 326]
    note = plan.report.communities.set_index("community_id").loc["c1", "notes"]
    assert "could not all be kept whole in the band" in note
    # re-run on the same data from this plan (warm start): every household keeps its grid
    again = partition(layers, min_households=200, max_households=500, previous=plan)
    assert again.report.overall["stability"] == pytest.approx(1.0)
    assert sorted(again.grids["households"].tolist()) == [324, 326]


def test_two_small_villages_are_grouped_into_one_grid():
    blds = _village("a", 50, households=120) + _village("b", 500, households=110)
    layers = make_layers([("c1", box(0, 0, 700, 300))], blds)
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert plan.n_grids == 1 and plan.grids["households"].tolist() == [230]


def test_border_across_the_fields_follows_the_track():
    # two villages of 300 households; a track 80 m from the first, 370 m from the second
    blds = _village("a", 50, households=300) + _village("b", 650, households=300)
    track = LineString([(280, -5), (280, 305)])
    layers = make_layers([("c1", box(0, 0, 900, 300))], blds, roads=[track])
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert _grid_of(plan).to_dict() == {"a": 1, "b": 1}
    assert sorted(plan.grids.area.round(3).tolist()) == [280 * 300.0, 620 * 300.0]
    assert plan.report.overall["share_boundary_on_roads"] == pytest.approx(1.0)


def test_a_big_village_is_split_but_its_neighbour_stays_whole():
    # 800 households must be two grids; the 300 beside it stay one
    blds = _village("a", 50, households=800, cols=8, rows=6) + _village("b", 700, households=300)
    layers = make_layers([("c1", box(0, 0, 900, 300))], blds)
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert _grid_of(plan).to_dict() == {"a": 2, "b": 1}
    assert plan.n_grids == 3


def test_units_of_a_village_merge_and_keep_totals():
    blds = _village("a", 50, households=250) + _village("b", 500, households=250)
    layers = make_layers([("c1", box(0, 0, 700, 300))], blds)
    b = layers.buildings
    units = build_units(box(0, 0, 700, 300), b)
    merged, notes = keep_settlements_whole(units, b, max_households=500)
    assert (units.n, merged.n) == (60, 2)
    assert merged.households.tolist() == [250, 250]
    assert merged.area.sum() == pytest.approx(700 * 300)
    assert len(merged.edges) == 1 and merged.edge_length[0] == pytest.approx(300.0, abs=0.01)
    # boundaries add up: outer boundary kept, the inner edges between houses gone
    assert merged.exterior.sum() == pytest.approx(units.exterior.sum())
    assert merged.perimeter.sum() - 2 * merged.edge_length.sum() == pytest.approx(
        units.perimeter.sum() - 2 * units.edge_length.sum()
    )
    assert shapely.union_all(merged.cells).area == pytest.approx(700 * 300)
    assert notes == ["2 settlements (natural villages) kept whole, each in one grid"]
    # one village: nothing to do
    one, notes1 = keep_settlements_whole(
        build_units(box(0, 0, 300, 300), b.iloc[:30]), b.iloc[:30], max_households=500
    )
    assert one.n == 30 and notes1 == []


@pytest.fixture(scope="module")
def rural_seed5():
    from gridmap.synth_rural import synth_rural_city
    from gridmap.validation import validate_layers

    layers, _ = validate_layers(synth_rural_city(core_blocks=(3, 3), n_villages=8, seed=5))
    return layers


def test_among_fields_the_border_takes_the_track_over_the_rounder_balance(rural_seed5):
    # C0006 of the second generator: villages of 421, 73 and 350 households; the west and
    # the middle one share a field block, a track parts the middle one from the east one.
    # Balanced grids (421 | 73 + 350) need 1.3 km of border across the fields; 494 | 350
    # has its whole border on the track and the community's lanes
    layers = rural_seed5.subset(["C0006"])
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert sorted(plan.grids["households"].tolist()) == [350, 494]
    o = plan.report.overall
    assert o["share_boundary_on_streets"] == pytest.approx(1.0)
    assert o["internal_boundary_m"] == pytest.approx(2462.1, abs=0.1)
    # 1.4 m² of millimetre-grid slivers along its 12 km edge are not a gap worth a note
    note = plan.report.communities.set_index("community_id").loc["C0006", "notes"]
    assert "gap of" not in note and "beyond the community" not in note


def test_a_village_the_band_cannot_leave_whole_is_a_forced_cut(rural_seed5):
    # C0004: 504 households in villages of 427, 41 and 36; two grids of 200-500 leave at
    # most 77 beside the big village, so it must be cut though it holds fewer than 500
    layers = rural_seed5.subset(["C0004"])
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    o = plan.report.overall
    assert o["forced_off_street_m"] == pytest.approx(
        o["internal_boundary_m"] - o["boundary_on_streets_m"]
    )
    assert o["share_boundary_on_streets_allowed"] == pytest.approx(1.0)
    note = plan.report.communities.set_index("community_id").loc["C0004", "notes"]
    assert (
        "a block of 427 households with no internal street, which the band cannot leave whole "
        "(504 households in grids of 200-500)"
    ) in note
