from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from invariants import assert_same_plan, assert_valid_plan
from lattice import lattice, make_layers
from shapely import LineString, box

from gridmap.errors import CRSError, InfeasibleError, InputError, NotFoundError
from gridmap.partition import GRID_COLUMNS, Plan, partition

# ----------------------------------------------------------------------------- lattices


def test_lattice_pinned():
    layers = lattice(6, 4, households=100, road_every=2)  # 2400 households, roads every 100 m
    plan = partition(layers, min_households=200, max_households=500, target=400)
    assert isinstance(plan, Plan)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert plan.grids["households"].tolist() == [400] * 6
    # every grid is one 100 x 100 road block: cuts run on the roads only
    assert sorted(plan.grids.area.round(6).tolist()) == [10000.0] * 6
    assert plan.report.overall["share_boundary_on_roads"] == pytest.approx(1.0)
    assert plan.report.overall["mean_polsby_popper"] == pytest.approx(np.pi / 4)
    assert plan.grids["grid_code"].tolist() == [f"320508019000{i:03d}" for i in range(1, 7)]
    # codes run west→east in rows north→south
    first = plan.grids.geometry.iloc[0].centroid
    assert (first.x, first.y) == pytest.approx((50, 150))
    assert list(plan.grids.columns[: len(GRID_COLUMNS)]) == list(GRID_COLUMNS)
    assert plan.params["min_households"] == 200 and plan.params["target"] == 400
    assert plan.buildings["part"].isna().all()


def test_deterministic_and_n_jobs_invariant():
    a = lattice(6, 4, households=np.arange(24).reshape(4, 6) * 5 + 60, cid="x")
    b = lattice(4, 4, households=90, cid="y")
    layers = a.replace(
        communities=pd.concat(
            [
                a.communities,
                b.communities.assign(
                    geometry=b.communities.translate(1000), code="320508019000999"
                ),
            ],
            ignore_index=True,
        ),
        buildings=pd.concat(
            [
                a.buildings,
                b.buildings.assign(
                    geometry=b.buildings.translate(1000),
                    building_id="y" + b.buildings["building_id"],
                ),
            ],
            ignore_index=True,
        ),
    )
    p1 = partition(layers, seed=3)
    p1b = partition(layers, seed=3)
    p2 = partition(layers, seed=3, n_jobs=2)
    assert_same_plan(p1, p1b)
    assert_same_plan(p1, p2)
    assert_valid_plan(p1, layers, min=200, max=500)


def test_progress_callback_and_n_grids_dict():
    layers = lattice(6, 4)
    calls = []
    plan = partition(layers, n_grids={"c1": 3}, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 1)]
    assert plan.n_grids == 3
    assert plan.grids["households"].tolist() == [800, 800, 800]
    assert plan.params["n_grids"] == {"c1": 3}


# ----------------------------------------------------------------------------- edge cases


def test_tiny_community_is_one_grid_flagged():
    layers = lattice(2, 1, households=50)
    plan = partition(layers)
    assert plan.n_grids == 1 and plan.grids["households"].tolist() == [100]
    assert_valid_plan(plan, layers, min=200, max=500)
    note = plan.report.communities.set_index("community_id").loc["c1", "notes"]
    assert "below the minimum 200" in note


@pytest.mark.parametrize("with_units", [True, False])
def test_tower_above_max_is_split_and_reported(with_units):
    comm = box(0, 0, 300, 100)
    blds = [
        ("t", box(120, 30, 180, 70), 600, "c1"),
        ("s", box(20, 30, 60, 70), 100, "c1"),
        ("r", box(240, 30, 280, 70), 100, "c1"),
    ]
    hh = None
    if with_units:
        hh = pd.DataFrame(
            {
                "household_id": [f"t{i}" for i in range(600)]
                + [f"s{i}" for i in range(100)]
                + [f"r{i}" for i in range(100)],
                "building_id": ["t"] * 600 + ["s"] * 100 + ["r"] * 100,
                "unit": [str(1 + i // 100) for i in range(600)] + [None] * 200,
                "floor": [float(1 + i % 20) for i in range(600)] + [1.0] * 200,
                "persons": 2.0,
            }
        )
    layers = make_layers([("c1", comm)], blds, households=hh, levels={"t": 30.0})
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    parts = plan.buildings[plan.buildings["building_id"] == "t"]
    assert parts["households"].tolist() == [300, 300]
    expected = ["units 1-3", "units 4-6"] if with_units else ["floors 1-15", "floors 16-30"]
    assert sorted(parts["part"].tolist()) == expected
    assert parts["grid_code"].nunique() == 2
    assert plan.report.overall["n_split_buildings"] == 1
    assert plan.report.overall["n_unjustified_splits"] == 0
    note = plan.report.communities["notes"].iloc[0]
    assert "building t holds 600 households" in note
    if with_units:
        h = plan.households.set_index("household_id")
        assert h.loc["t0", "grid_code"] != h.loc["t599", "grid_code"]
        assert plan.grids["persons"].sum() == 1600.0


def test_lake_hole_and_two_part_community():
    lake = box(150, 150, 250, 250)
    main = box(0, 0, 400, 400).difference(lake)
    island = box(600, 0, 700, 100)
    comm = shapely.MultiPolygon([main, island])
    blds = []
    for i in range(8):
        for j in range(8):
            g = box(10 + 50 * i, 10 + 50 * j, 35 + 50 * i, 35 + 50 * j)
            if not g.intersects(lake):
                blds.append((f"b{i}{j}", g, 60, "c1"))
    blds.append(("isl", box(620, 20, 680, 80), 250, "c1"))
    roads = [LineString([(200, -5), (200, 150)]), LineString([(200, 250), (200, 405)])]
    layers = make_layers([("c1", comm)], blds, roads=roads)
    plan = partition(layers)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert shapely.area(shapely.union_all(plan.grids.geometry)) == pytest.approx(comm.area)
    isl = plan.grids[plan.grids.intersects(island)]
    assert len(isl) == 1 and isl["households"].iloc[0] == 250
    note = plan.report.communities["notes"].iloc[0]
    assert "2 separate pieces" in note


def test_overlapping_and_crossing_buildings_no_roads():
    comm = box(0, 0, 300, 100)
    blds = [(f"b{i}", box(10 + 40 * i, 20, 40 + 40 * i, 60), 80, "c1") for i in range(7)]
    blds.append(("dup", box(15, 25, 45, 65), 40, "c1"))  # overlaps b0
    blds.append(("edge", box(285, 20, 330, 60), 40, "c1"))  # crosses the boundary
    layers = make_layers([("c1", comm)], blds)
    plan = partition(layers, min_households=200, max_households=400)
    assert_valid_plan(plan, layers, min=200, max=400)
    b = plan.buildings.set_index("building_id")["grid_code"]
    assert b["dup"] == b["b0"]
    assert (plan.grids.within(comm.buffer(1e-6))).all()
    note = plan.report.communities["notes"].iloc[0]
    assert "overlapping" in note and "cross the community boundary" in note


# ----------------------------------------------------------------------------- re-runs


def test_locks_kept_exactly_and_rest_repartitioned():
    layers = lattice(6, 4, households=100)
    first = partition(layers)
    code = first.grids["grid_code"].iloc[2]
    b = layers.buildings.copy()
    b["households"] = b["households"] + 20  # everything grows
    changed = layers.replace(buildings=b)
    second = partition(changed, previous=first, locked=[code])
    assert_valid_plan(second, changed, min=200, max=500)
    old = first.grids.set_index("grid_code").loc[code]
    new = second.grids.set_index("grid_code").loc[code]
    assert shapely.equals_exact(old.geometry, new.geometry, 0)
    assert bool(new["locked"]) and second.grids["locked"].sum() == 1
    m_old = set(first.buildings.loc[first.buildings["grid_code"] == code, "building_id"])
    m_new = set(second.buildings.loc[second.buildings["grid_code"] == code, "building_id"])
    assert m_old == m_new
    assert "locked grid(s) kept" in second.report.communities["notes"].iloc[0]


def test_rerun_same_data_keeps_everything_and_growth_keeps_most():
    rng = np.random.default_rng(0)
    layers = lattice(10, 8, households=rng.integers(30, 90, (8, 10)))
    first = partition(layers)
    again = partition(layers, previous=first)
    assert again.grids["grid_code"].tolist() == first.grids["grid_code"].tolist()
    assert again.report.overall["stability"] == 1.0
    b = layers.buildings.copy()
    grow = b["building_id"].isin([f"b{j:02d}{i:02d}" for j in range(3) for i in range(3)])
    b.loc[grow, "households"] = (b.loc[grow, "households"] * 1.6).round().astype(np.int64)
    changed = layers.replace(buildings=b)
    second = partition(changed, previous=first)
    assert_valid_plan(second, changed, min=200, max=500)
    assert second.report.overall["stability"] >= 0.9


# ----------------------------------------------------------------------------- guards


def test_min_above_max_is_infeasible():
    with pytest.raises(InfeasibleError, match="min_households=600 is above max_households=500"):
        partition(lattice(2, 2), min_households=600, max_households=500)


def test_target_outside_band():
    with pytest.raises(InfeasibleError, match="target=900 lies outside the band"):
        partition(lattice(2, 2), target=900)


def test_locked_needs_previous_and_known_codes():
    layers = lattice(6, 4)
    with pytest.raises(InputError, match="pass previous=<Plan>"):
        partition(layers, locked=["x"])
    plan = partition(layers)
    with pytest.raises(NotFoundError, match="not in the previous plan"):
        partition(layers, previous=plan, locked=["nope"])


def test_geographic_crs_rejected():
    layers = lattice(2, 2)
    with pytest.raises(CRSError, match="projected CRS"):
        partition(layers.replace(crs=layers.communities.crs.geodetic_crs))


def test_bad_n_grids():
    with pytest.raises(InputError, match="n_grids must be whole numbers"):
        partition(lattice(2, 2), n_grids=0)


# ----------------------------------------------------------------------------- synthetic


def synth_layers(n_buildings: int, seed: int):
    synth = pytest.importorskip("gridmap.synth")
    from gridmap.validation import validate_layers

    raw = synth.synth_city(n_buildings=n_buildings, seed=seed, community_households=(5000, 6000))
    return validate_layers(raw)[0]


def test_synthetic_city_invariants():
    layers = synth_layers(700, seed=4)
    plan = partition(layers)
    assert_valid_plan(plan, layers, min=200, max=500)
    o = plan.report.overall
    assert o["n_multipart"] == 0 and o["n_enclaves"] == 0
    assert o["mean_polsby_popper"] >= 0.6
    assert o["share_boundary_on_roads"] >= 0.6


@pytest.mark.slow
def test_synthetic_city_quality_and_stability():
    layers = synth_layers(1800, seed=1)
    plan = partition(layers, n_jobs=2)
    assert_valid_plan(plan, layers, min=200, max=500)
    o = plan.report.overall
    assert o["share_residential_in_band"] == 1.0  # a park between main roads: dedicated
    assert o["mean_polsby_popper"] >= 0.65
    assert o["share_boundary_on_roads"] >= 0.6
    b = layers.buildings.copy()
    cid = b["community_id"].iloc[0]
    mine = b.index[b["community_id"] == cid][:40]
    b.loc[mine, "households"] = (b.loc[mine, "households"] * 1.25).round().astype(np.int64)
    changed = layers.replace(buildings=b, households=None)
    second = partition(changed, previous=plan, n_jobs=2)
    assert second.report.overall["stability"] >= 0.9


def test_real_nanjing_area():
    datasets = pytest.importorskip("gridmap.datasets")
    io = pytest.importorskip("gridmap.io")
    from gridmap.validation import validate_layers

    try:
        raw = io.read_layers(datasets.get_path("nanjing"))
    except InputError as exc:  # the data folder ships with the source tree only
        pytest.skip(str(exc))
    layers = validate_layers(raw)[0]
    plan = partition(layers)
    assert_valid_plan(plan, layers, min=200, max=500)
    o = plan.report.overall
    assert o["share_residential_in_band"] == 1.0
    assert o["n_multipart"] == 0 and o["n_enclaves"] == 0
    assert o["share_boundary_on_roads"] >= 0.6
    notes = " ".join(plan.report.communities["notes"])
    assert "cross the community boundary" in notes and "overlapping" in notes


def sample_v1(community_id: str):
    """One community of the first bundled sample (tests/data/sample_v1_c0001-3.gpkg)."""
    io = pytest.importorskip("gridmap.io")
    from gridmap.validation import validate_layers

    path = Path(__file__).resolve().parents[1] / "data" / "sample_v1_c0001-3.gpkg"
    return validate_layers(io.read_layers(path))[0].subset([community_id])


def test_first_sample_narrow_community_gets_compact_grids():
    # C0003 of the first bundled sample is a narrow L of walled compounds; its grids used to
    # snake along it (mean Polsby–Popper 0.51, one grid at 0.15)
    layers = sample_v1("C0003")
    plan = partition(layers)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert plan.report.overall["mean_polsby_popper"] >= 0.6
    assert plan.report.overall["share_boundary_on_lines"] >= 0.8  # roads and walls


def test_first_sample_community_without_enclave_and_as_a_valid_coverage():
    # C0001 of the first bundled sample: cleaning its cells left one cell in two pieces,
    # so cleaning was dropped; a grid then dissolved into two pieces and the
    # detached one, moved to the neighbour, enclosed a compound's grid
    layers = sample_v1("C0001")
    plan = partition(layers)
    assert_valid_plan(plan, layers, min=200, max=500)
    o = plan.report.overall
    assert o["n_enclaves"] == 0 and o["n_multipart"] == 0
    assert o["share_residential_in_band"] == 1.0  # 1.4 ha without homes between main roads
    assert "detached" not in plan.report.communities["notes"].iloc[0]
    geoms = np.asarray(plan.grids.geometry.array, dtype=object)
    assert [len(g.interiors) for g in geoms] == [0] * len(geoms)


def test_first_sample_strip_outside_compounds_does_not_ring_a_grid():
    # C0002 of the first bundled sample: the open land between its compounds' walls and
    # the roads went to the nearest buildings outside the compounds only, making
    # ring-shaped cells; the grid built of them enclosed three others
    layers = sample_v1("C0002")
    plan = partition(layers)
    assert_valid_plan(plan, layers, min=200, max=500)
    o = plan.report.overall
    assert o["n_enclaves"] == 0 and o["n_multipart"] == 0 and o["share_in_band"] == 1.0
    geoms = np.asarray(plan.grids.geometry.array, dtype=object)
    assert [len(g.interiors) for g in geoms] == [0] * len(geoms)


def test_grids_of_neighbouring_communities_share_their_vertices():
    # grid boundaries meet the shared community edge at different points on
    # either side; the plan must still be one valid coverage (maps simplify it
    # as one, QGIS topology checks expect it)
    north = [(f"n{i}", box(10 + 60 * i, 120, 50 + 60 * i, 180), 150, "n") for i in range(5)]
    south = [(f"s{i}", box(10 + 75 * i, 20, 60 + 75 * i, 80), 190, "s") for i in range(4)]
    layers = make_layers([("n", box(0, 100, 300, 200)), ("s", box(0, 0, 300, 100))], north + south)
    plan = partition(layers, min_households=200, max_households=500)
    assert plan.grids.groupby("community_id").size().to_dict() == {"n": 2, "s": 2}
    assert_valid_plan(plan, layers, min=200, max=500)
    assert shapely.coverage_is_valid(np.asarray(plan.grids.geometry.array, dtype=object))


REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"


@pytest.mark.skipif(not REAL.is_dir(), reason=f"the shared OSM extracts are not at {REAL}")
def test_real_shanghai_area_with_derived_communities_and_estimated_households():
    from gridmap.areas import derive_communities
    from gridmap.io import read_layers
    from gridmap.validation import validate_layers

    path = REAL / "shanghai-huangpu-lujiazui" / "shanghai_huangpu_lujiazui.gpkg"
    raw = dict(read_layers(path, preset="osm"))  # no households: estimated from levels
    raw["communities"] = derive_communities(raw)
    layers = validate_layers(raw)[0]
    plan = partition(layers)
    assert_valid_plan(plan, layers, min=200, max=500)
    o = plan.report.overall
    assert o["share_residential_in_band"] == 1.0
    assert o["n_multipart"] == 0 and o["n_enclaves"] == 0
    assert o["share_boundary_on_roads"] >= 0.6
    notes = " ".join(plan.report.communities["notes"])
    assert "overlapping" in notes and "split into 2 parts by floor ranges" in notes
