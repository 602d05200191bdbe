from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from gridmap.crs import gk_zone_epsg
from gridmap.errors import InputError
from gridmap.layers import LAYER_NAMES, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, SENSITIVE_FLAGS
from gridmap.synth import gauss_kruger_epsg, synth_city, synth_community
from gridmap.validation import validate_layers

N = 2500


@pytest.fixture(scope="module")
def city() -> dict:
    return synth_city(n_buildings=N, seed=7)


def _check_city(city: dict, n: int) -> None:
    """Invariants every synthetic city satisfies (shared by the small and the slow test)."""
    comms, blds, hh = city["communities"], city["buildings"], city["households"]
    roads = city["roads"]

    # about n buildings
    assert abs(len(blds) - n) <= 0.1 * n

    # every building lies within exactly one community, the one it names
    tree = shapely.STRtree(comms.geometry.array)
    bi, ci = tree.query(blds.geometry.array, predicate="within")
    assert np.array_equal(np.sort(bi), np.arange(len(blds)))
    assert (comms["community_id"].to_numpy()[ci] == blds["community_id"].to_numpy()[bi]).all()

    # no building touches a road centreline
    rtree = shapely.STRtree(roads.geometry.array)
    assert len(rtree.query(blds.geometry.array, predicate="intersects")[0]) == 0

    # buildings do not overlap each other
    btree = shapely.STRtree(blds.geometry.array)
    a, b = btree.query(blds.geometry.array, predicate="intersects")
    assert (a == b).all()

    # communities tile the city: no overlaps, no gaps, all valid Polygons
    geoms = comms.geometry.array
    assert shapely.is_valid(geoms).all()
    assert set(comms.geom_type) == {"Polygon"}
    union = shapely.union_all(geoms)
    assert abs(union.area - shapely.area(geoms).sum()) < 1.0
    hull = shapely.box(*comms.total_bounds)
    assert abs(union.area - hull.area) < 1.0  # the city is a rectangle

    # households: count per building matches the layer, points inside their building
    counts = hh.groupby("building_id").size()
    expected = blds.set_index("building_id")["households"]
    assert counts.reindex(expected.index, fill_value=0).equals(expected.astype(counts.dtype))
    sample = hh.iloc[:: max(1, len(hh) // 5000)]
    home = blds.set_index("building_id").geometry.loc[sample["building_id"]].array
    assert shapely.contains(home, sample.geometry.array).all()


def test_layers_have_canonical_columns_and_projected_crs(city: dict) -> None:
    assert tuple(sorted(city)) == tuple(sorted(LAYER_NAMES))
    crs = city["buildings"].crs
    assert crs.is_projected and crs.to_epsg() == 4549
    assert crs.axis_info[0].unit_name == "metre"
    for name, frame in city.items():
        assert frame.crs == crs, name
        missing = set(REQUIRED_COLUMNS[name]) | set(OPTIONAL_COLUMNS[name])
        assert missing <= set(frame.columns), (name, missing - set(frame.columns))
        assert frame.index.equals(pd.RangeIndex(len(frame)))
        assert len(frame) > 0, name
    for name, column in (
        ("communities", "community_id"),
        ("buildings", "building_id"),
        ("households", "household_id"),
        ("compounds", "compound_id"),
        ("staff", "staff_id"),
    ):
        assert city[name][column].is_unique
    assert set(city["roads"].geom_type) <= {"LineString", "MultiLineString"}
    assert set(city["barriers"]["kind"]) <= {"wall", "water"}
    assert city["buildings"]["building_id"].iloc[0] == "B000001"
    assert city["households"]["household_id"].iloc[0] == "H0000001"
    assert city["staff"]["staff_id"].iloc[0] == "S00001"


def test_geometric_invariants(city: dict) -> None:
    _check_city(city, N)


def test_community_households_in_band_and_codes(city: dict) -> None:
    comms, blds = city["communities"], city["buildings"]
    assert len(comms) >= 5
    totals = blds.groupby("community_id")["households"].sum()
    assert totals.between(1500, 8000).all(), totals.describe()
    assert set(totals.index) == set(comms["community_id"])
    assert comms["code"].str.fullmatch(r"\d{12}").all()
    assert comms["district_code"].str.fullmatch(r"\d{6}").all()
    assert comms["street_code"].str.fullmatch(r"\d{9}").all()
    for _, row in comms.iterrows():
        assert row["street_code"].startswith(row["district_code"])
        assert row["code"].startswith(row["street_code"])
        assert 1 <= int(row["street_code"][6:]) <= 99
    assert comms["code"].is_unique
    assert comms["name"].str.endswith("社区").all() and comms["name"].is_unique
    assert comms["street"].str.endswith("街道").all()
    assert comms["district"].str.endswith("区").all()


def test_building_mix(city: dict) -> None:
    blds = city["buildings"]
    res = blds[blds["use"] == "residential"]
    towers = res[res["levels"] >= 18]
    assert len(towers) > 0 and towers["households"].between(80, 400).all()
    assert towers["levels"].max() <= 33
    lowrise = res[res["levels"] <= 2]
    assert len(lowrise) > 0 and lowrise["households"].between(1, 12).all()
    # courtyards of one family up to a dozen (大杂院), not only what the footprint allows
    assert (lowrise["households"] <= 2).any() and (lowrise["households"] >= 9).any()
    slabs = res[res["levels"].between(5, 18) & (res["levels"] < 18)]
    assert len(slabs) > 0 and slabs["households"].between(24, 120).all()
    nonres = blds[blds["use"].isin(["commercial", "public", "industrial"])]
    assert len(nonres) > 0 and (nonres["households"] == 0).all()
    assert {"residential", "commercial", "public"} <= set(blds["use"])
    assert blds["households"].dtype.kind == "i"
    # compound buildings are named after their compound and lie inside it
    comp = city["compounds"].set_index("compound_id")
    inc = blds[blds["compound_id"].notna()]
    assert len(inc) > 0
    names = comp["name"].loc[inc["compound_id"]].to_numpy()
    assert all(
        n.startswith(c) and n.endswith("栋") for n, c in zip(inc["name"], names, strict=True)
    )
    assert shapely.within(inc.geometry.array, comp.geometry.loc[inc["compound_id"]].array).all()
    assert (city["barriers"]["kind"] == "wall").sum() == len(comp)
    roads = city["roads"]
    assert roads["name"].is_unique
    assert set(roads["class"]) >= {"primary", "residential"}
    assert roads["name"].str.contains("[路街巷道]$").all()


def test_households_and_flags(city: dict) -> None:
    hh = city["households"]
    n = len(hh)
    assert n > 20_000
    expect = {
        "elderly_living_alone": 0.05,
        "disabled": 0.02,
        "on_assistance": 0.02,
        "floating_population": 0.10,
        "unemployed": 0.03,
    }
    for flag in SENSITIVE_FLAGS:
        assert hh[flag].dtype == bool
        assert abs(hh[flag].mean() - expect[flag]) < 0.01, flag
    assert hh["persons"].between(1, 5).all()
    assert (hh.loc[hh["elderly_living_alone"], "persons"] == 1).all()
    units = hh["unit"].dropna()
    assert set(units) <= {"1", "2", "3", "4", "5", "6"} and len(units) > 0.5 * n
    levels = city["buildings"].set_index("building_id")["levels"].loc[hh["building_id"]]
    assert (hh["floor"].to_numpy() >= 1).all()
    assert (hh["floor"].to_numpy() <= levels.to_numpy()).all()


def test_staff_roster(city: dict) -> None:
    staff, hh, blds = city["staff"], city["households"], city["buildings"]
    assert abs(len(staff) - len(hh) / 60) <= 2
    assert staff["phone"].str.fullmatch(r"13\d{9}").all()
    assert staff["name"].str.len().between(2, 3).all()
    assert 0.3 < staff["can_be_chief"].mean() < 0.5
    homes = blds.set_index("building_id").loc[staff["home_building_id"]]
    assert (homes["households"] > 0).all()
    assert shapely.contains(homes.geometry.array, staff.geometry.array).all()
    # some communities are short of candidates
    per = (
        staff.merge(
            blds[["building_id", "community_id"]],
            left_on="home_building_id",
            right_on="building_id",
        )
        .groupby("community_id")
        .size()
    )
    ratio = blds.groupby("community_id")["households"].sum() / per.reindex(
        blds["community_id"].unique(), fill_value=0
    ).clip(lower=1)
    assert ratio.min() < 80 and ratio.max() > 120


def test_deterministic_and_seed_sensitive(city: dict) -> None:
    again = synth_city(n_buildings=N, seed=7)
    for name in LAYER_NAMES:
        assert_geodataframe_equal(city[name], again[name], check_less_precise=False)
        assert (
            shapely.to_wkb(city[name].geometry.array) == shapely.to_wkb(again[name].geometry.array)
        ).all()
    other = synth_city(n_buildings=N, seed=8)
    assert not city["buildings"].geometry.geom_equals(other["buildings"].geometry.iloc[:N]).all()
    rng_city = synth_city(n_buildings=200, seed=np.random.default_rng(3))
    assert len(rng_city["buildings"]) == 200


def test_validates_without_findings(city: dict) -> None:
    layers, report = validate_layers(city)
    assert report.findings == [], report.summary()
    assert layers.crs.to_epsg() == 4549
    assert len(layers.buildings) == len(city["buildings"])
    assert len(layers.households) == len(city["households"])
    mine = city["buildings"].set_index("building_id")["compound_id"]
    theirs = layers.buildings.set_index("building_id")["compound_id"].reindex(mine.index)
    assert (mine.fillna("-") == theirs.fillna("-")).all()


def test_synth_community_is_one_community() -> None:
    town = synth_community(n_buildings=120, seed=2)
    assert len(town["communities"]) == 1
    assert (town["buildings"]["community_id"] == "C0001").all()
    _check_city(town, 120)


def test_other_centre_uses_its_zone() -> None:
    city = synth_city(n_buildings=100, seed=0, center=(116.40, 39.90))
    assert city["roads"].crs.to_epsg() == 4548
    x, y = city["communities"].to_crs(4326).union_all().centroid.xy
    assert abs(x[0] - 116.40) < 0.05 and abs(y[0] - 39.90) < 0.05


def test_without_households_keeps_counts() -> None:
    city = synth_city(n_buildings=150, seed=4, with_households=False)
    assert len(city["households"]) == 0
    assert list(city["households"].columns)[0] == "household_id"
    assert city["buildings"]["households"].sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_buildings": 0}, "n_buildings must be a positive integer"),
        ({"community_households": (500, 100)}, "0 < low < high"),
        ({"center": (10.0, 50.0)}, "outside the CGCS2000"),
        ({"center": (118.0, 80.0)}, "outside China"),
        ({"unit_area": 0}, "must be positive"),
    ],
)
def test_guards(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        synth_city(**kwargs)


def test_gauss_kruger_epsg() -> None:
    assert gauss_kruger_epsg(118.78) == 4549
    # zone edges agree with gridmap.crs (half-way longitudes go east), so a synthetic city
    # lies in the zone validation picks for it
    for lon in (76.5, 118.5, 121.5, 130.5):
        assert gauss_kruger_epsg(lon) == gk_zone_epsg(lon)
    assert gauss_kruger_epsg(118.5) == 4549
    assert gauss_kruger_epsg(75.0) == 4534
    assert gauss_kruger_epsg(135.0) == 4554
    with pytest.raises(InputError, match="inside China"):
        gauss_kruger_epsg(float("nan"))


@pytest.mark.slow
def test_large_city_invariants() -> None:
    city = synth_city(n_buildings=20_000, seed=11)
    _check_city(city, 20_000)
    totals = city["buildings"].groupby("community_id")["households"].sum()
    assert totals.between(1500, 8000).all()
    assert len(city["communities"]) > 50
    assert (city["barriers"]["kind"] == "water").any()


def test_synth_command_same_seed_same_file(tmp_path) -> None:
    # "same seed, same file": byte for byte, not only equal frames
    paths = [tmp_path / "a.gpkg", tmp_path / "b.gpkg", tmp_path / "c.gpkg"]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        out = subprocess.run(
            [sys.executable, "-m", "gridmap", "synth", str(path), "-n", "150", "--seed", str(seed)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
