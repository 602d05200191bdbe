"""The second generator: gated superblocks between arterials and a ring of natural villages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from gridmap.errors import InputError
from gridmap.layers import LAYER_NAMES, OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from gridmap.partition.roads import ARTERIAL, road_ranks
from gridmap.partition.villages import SETTLEMENT_GAP, settlements
from gridmap.synth_rural import synth_rural_city
from gridmap.validation import validate_layers


@pytest.fixture(scope="module")
def town() -> dict:
    return synth_rural_city(core_blocks=(3, 2), n_villages=6, seed=5)


def test_layers_have_the_canonical_columns_and_one_crs(town: dict) -> None:
    assert tuple(sorted(town)) == tuple(sorted(LAYER_NAMES))
    crs = town["buildings"].crs
    assert crs.to_epsg() == 4549 and crs.axis_info[0].unit_name == "metre"
    for name, frame in town.items():
        assert frame.crs == crs, name
        missing = set(REQUIRED_COLUMNS[name]) | set(OPTIONAL_COLUMNS[name])
        assert missing <= set(frame.columns), (name, missing - set(frame.columns))
        assert len(frame) > 0, name
    assert town["buildings"]["building_id"].is_unique
    assert town["households"]["household_id"].is_unique
    counts = town["households"].groupby("building_id").size()
    hh = town["buildings"].set_index("building_id")["households"]
    assert counts.reindex(hh.index, fill_value=0).equals(hh.astype(counts.dtype))
    assert town["communities"]["code"].str.fullmatch(r"\d{12}").all()
    assert town["communities"]["code"].is_unique


def test_validates_without_a_finding(town: dict) -> None:
    _, report = validate_layers(town)
    assert report.findings == []


def test_geometry_invariants(town: dict) -> None:
    comms, blds, roads = town["communities"], town["buildings"], town["roads"]
    geoms = comms.geometry.array
    assert shapely.is_valid(geoms).all() and set(comms.geom_type) == {"Polygon"}
    union = shapely.union_all(geoms)
    assert union.area == pytest.approx(shapely.area(geoms).sum(), abs=1.0)  # no overlaps
    # no gaps: the (rotated) town is one square
    assert union.geom_type == "Polygon"
    assert sum(shapely.Polygon(r).area for r in union.interiors) < 1e-3
    assert union.area == pytest.approx(shapely.oriented_envelope(union).area, rel=1e-9)
    bi, ci = shapely.STRtree(geoms).query(blds.geometry.array, predicate="within")
    assert np.array_equal(np.sort(bi), np.arange(len(blds)))
    assert (comms["community_id"].to_numpy()[ci] == blds["community_id"].to_numpy()[bi]).all()
    a, b = shapely.STRtree(blds.geometry.array).query(blds.geometry.array, predicate="intersects")
    assert (a == b).all()  # no overlapping buildings
    lines = np.concatenate([roads.geometry.array, town["barriers"].geometry.array])
    assert len(shapely.STRtree(lines).query(blds.geometry.array, predicate="intersects")[0]) == 0


def test_core_has_arterials_and_compounds_with_sparse_roads(town: dict) -> None:
    roads, comps = town["roads"], town["compounds"]
    ranks = road_ranks(roads["class"])
    assert (ranks == ARTERIAL).sum() == (3 + 1) + (2 + 1)  # the core's grid lines
    assert set(roads.loc[ranks == ARTERIAL, "class"]) == {"primary", "secondary"}
    # one dead-end service road per compound: it never crosses its compound
    service = roads[roads["class"] == "service"].geometry.array
    assert len(service) == len(comps)
    for poly in comps.geometry.array:
        inside = shapely.intersection(service, poly)
        assert (shapely.length(inside) > 0).sum() == 1
        assert (~shapely.is_empty(shapely.intersection(poly.exterior, service))).sum() == 1
    hh = town["buildings"].groupby("compound_id")["households"].sum()
    assert (hh > 500).sum() >= len(comps) // 2  # most compounds hold more than one grid


def test_villages_are_settlements_separated_by_fields(town: dict) -> None:
    blds = town["buildings"]
    vil = blds[blds["village"].notna()]
    assert vil["village"].nunique() == 6
    assert (vil["levels"] <= 3).all() and vil["households"].between(0, 4).all()
    # the settlements found by the partitioner are exactly the villages
    lab = settlements(vil.geometry.array, gap=SETTLEMENT_GAP)
    pairs = pd.crosstab(lab, vil["village"].to_numpy())
    assert ((pairs > 0).sum(axis=1) == 1).all() and ((pairs > 0).sum(axis=0) == 1).all()
    # village communities (村) hold two or three villages each
    per = vil.groupby("community_id")["village"].nunique()
    assert per.between(2, 4).all()
    assert town["communities"]["name"].str.endswith("村").sum() == len(per)
    classes = set(town["roads"]["class"])
    assert {"track", "unclassified"} <= classes
    assert "water" in set(town["barriers"]["kind"])


def test_same_seed_same_frames_other_seed_other_town() -> None:
    a = synth_rural_city(core_blocks=(2, 1), n_villages=3, seed=11)
    b = synth_rural_city(core_blocks=(2, 1), n_villages=3, seed=11)
    for name in a:
        assert_geodataframe_equal(a[name], b[name])
    c = synth_rural_city(core_blocks=(2, 1), n_villages=3, seed=12)
    assert not c["buildings"].geometry.equals(a["buildings"].geometry)


def test_villages_only_and_core_only() -> None:
    rural = synth_rural_city(core_blocks=(0, 0), n_villages=4, seed=3)
    assert rural["buildings"]["village"].notna().all() and len(rural["compounds"]) == 0
    core = synth_rural_city(core_blocks=(2, 2), n_villages=0, seed=3)
    assert core["buildings"]["village"].isna().all()
    assert len(core["communities"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"core_blocks": (2, 0)}, "core_blocks must be two positive integers"),
        ({"n_villages": -1}, "n_villages must be an integer >= 0"),
        ({"core_blocks": (0, 0), "n_villages": 0}, "nothing to draw"),
        ({"block_size": 50.0}, "block_size must be between 200 and 2000"),
        ({"unit_area": 0}, "must be positive"),
        ({"center": (118.9, 80.0)}, "outside China"),
        ({"center": (10.0, 31.0)}, "Gauss-Krüger"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        synth_rural_city(**kwargs)
