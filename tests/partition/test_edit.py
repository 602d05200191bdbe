"""Edits of a plan on small box lattices, with exact answers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import box

from gridmap.errors import InputError, NotFoundError
from gridmap.layers import Layers
from gridmap.partition import partition
from gridmap.partition.edit import (
    EditRefusedError,
    apply_edit,
    lock_grids,
    merge_grids,
    move_buildings,
    repartition,
    restaff,
    split_grid,
)

X0, Y0 = 500_000.0, 3_545_000.0
G1, G2 = "320508019044001", "320508019044002"
H1 = "320508019045001"  # first grid of the second community


def b(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def lattice(n_communities: int = 1, with_households: bool = False) -> Layers:
    """Communities of 400 m × 100 m side by side; 8 buildings of 100 households each."""
    comms = gpd.GeoDataFrame(
        {
            "community_id": [f"c{k + 1}" for k in range(n_communities)],
            "name": ["幸福社区", "和平社区"][:n_communities],
            "code": ["320508019044", "320508019045"][:n_communities],
        },
        geometry=[b(400 * k, 0, 400 * k + 400, 100) for k in range(n_communities)],
        crs=4549,
    )
    rows = []
    for k in range(n_communities):
        for i in range(8):
            x = 400 * k + 10 + 50 * i
            rows.append((f"c{k + 1}b{i}", f"c{k + 1}", b(x, 30, x + 30, 70)))
    blds = gpd.GeoDataFrame(
        {
            "building_id": [r[0] for r in rows],
            "households": [100] * len(rows),
            "community_id": [r[1] for r in rows],
        },
        geometry=[r[2] for r in rows],
        crs=4549,
    )
    hh = None
    if with_households:
        ids = np.repeat(blds["building_id"].to_numpy(), 100)
        pts = np.repeat(np.asarray(blds.geometry.centroid.array, dtype=object), 100)
        hh = gpd.GeoDataFrame(
            {
                "household_id": [f"{x}-h{j % 100}" for j, x in enumerate(ids)],
                "building_id": ids,
                "persons": [2.0] * len(ids),
            },
            geometry=list(pts),
            crs=4549,
        )
    return Layers(communities=comms, buildings=blds, households=hh, crs=comms.crs)


@pytest.fixture(scope="module")
def one() -> tuple:
    layers = lattice(1)
    return partition(layers, min_households=200, max_households=500), layers


@pytest.fixture(scope="module")
def two() -> tuple:
    layers = lattice(2)
    return partition(layers, min_households=200, max_households=500), layers


def test_partition_fixture_is_two_grids_of_four_buildings(one):
    plan, _ = one
    assert plan.grids["grid_code"].tolist() == [G1, G2]
    assert plan.grids["households"].tolist() == [400, 400]
    assert plan.grids.area.round().tolist() == [20000.0, 20000.0]


def test_move_carries_land_and_keeps_tiling(one):
    plan, layers = one
    before = plan.grids.copy()
    r = move_buildings(plan, layers, ["c1b3"], G2)
    assert r.ok and r.violations == []
    g = r.plan.grids
    assert g["households"].tolist() == [300, 500]
    assert g["n_buildings"].tolist() == [3, 5]
    assert g.area.round(-1).tolist() == [15000.0, 25000.0]
    assert abs(g.area.sum() - 40000.0) < 0.01
    assert (g.geometry.geom_type == "Polygon").all()
    # the boundary moved to the midline between c1b2 and c1b3 (x = 150 m)
    assert abs(g.geometry.iloc[0].bounds[2] - (X0 + 150)) < 0.5
    rb = r.plan.buildings.set_index("building_id")["grid_code"]
    assert rb["c1b3"] == G2 and rb["c1b2"] == G1
    comm = r.figures.communities.iloc[0]
    assert comm["gap_area_m2"] < 0.01 and comm["overlap_area_m2"] < 0.01
    assert r.figures.grids["grid_code"].tolist() == [G1, G2]
    assert r.affected == [G1, G2] and r.removed == []
    # the input plan is untouched
    pd.testing.assert_frame_equal(plan.grids, before)


def test_move_into_a_grid_it_does_not_touch_is_refused(one):
    plan, layers = one
    r = move_buildings(plan, layers, ["c1b0"], G2)
    assert not r.ok
    assert r.plan is plan
    checks = {(v["check"], v["grid_code"], v["severity"]) for v in r.violations}
    assert ("contiguity", G2, "error") in checks
    with pytest.raises(EditRefusedError, match="contiguity|separate parts") as exc:
        move_buildings(plan, layers, ["c1b0"], G2, strict=True)
    assert isinstance(exc.value, InputError)
    assert exc.value.violations[0]["check"] == "contiguity"


def test_move_that_cuts_the_source_in_two_is_refused(one):
    plan, layers = one
    r = move_buildings(plan, layers, ["c1b1"], G2)
    assert not r.ok
    bad = {v["grid_code"] for v in r.errors if v["check"] == "contiguity"}
    assert bad == {G1, G2}


def test_moving_two_buildings_keeps_land_whole(one):
    plan, layers = one
    r = move_buildings(plan, layers, ["c1b2", "c1b3"], G2)
    assert r.ok
    assert r.plan.grids["households"].tolist() == [200, 600]
    assert r.plan.grids.area.round(-1).tolist() == [10000.0, 30000.0]
    band = [v for v in r.violations if v["check"] == "band"]
    assert [(v["grid_code"], v["severity"]) for v in band] == [(G2, "warning")]


def test_moving_every_building_dissolves_the_source(one):
    plan, layers = one
    r = move_buildings(plan, layers, [f"c1b{i}" for i in range(4)], G2)
    assert r.ok
    assert r.removed == [G1]
    assert r.plan.grids["grid_code"].tolist() == [G2]
    assert r.plan.grids["households"].tolist() == [800]
    assert round(r.plan.grids.area.iloc[0]) == 40000


def test_move_across_communities_and_into_locked_grid_refused(two):
    plan, layers = two
    r = move_buildings(plan, layers, ["c1b7"], H1)
    assert not r.ok
    assert [v["check"] for v in r.errors] == ["community"]
    assert "c1b7" in r.errors[0]["message"]
    locked = lock_grids(plan, layers, [G2]).plan
    r = move_buildings(locked, layers, ["c1b3"], G2)
    assert [v["check"] for v in r.errors] == ["locked"]
    assert "unlock" in r.errors[0]["message"]
    unlocked = apply_edit(locked, layers, "unlock", codes=[G2]).plan
    assert move_buildings(unlocked, layers, ["c1b3"], G2).ok


def test_move_guards(one):
    plan, layers = one
    with pytest.raises(NotFoundError, match="in no grid of this plan"):
        move_buildings(plan, layers, ["nope"], G2)
    with pytest.raises(NotFoundError, match="has no grid 'X'"):
        move_buildings(plan, layers, ["c1b3"], "X")
    with pytest.raises(InputError, match="building_ids is empty"):
        move_buildings(plan, layers, [], G2)


def test_move_updates_households_and_persons():
    layers = lattice(1, with_households=True)
    plan = partition(layers, min_households=200, max_households=500)
    r = move_buildings(plan, layers, ["c1b3"], G2)
    hh = r.plan.households
    assert (hh.loc[hh["building_id"] == "c1b3", "grid_code"] == G2).all()
    assert hh.groupby("grid_code").size().to_dict() == {G1: 300, G2: 500}
    assert r.plan.grids["persons"].tolist() == [600.0, 1000.0]


def test_merge(one, two):
    plan, layers = one
    r = merge_grids(plan, layers, [G2, G1])
    assert r.ok
    assert r.plan.grids["grid_code"].tolist() == [G2]
    assert r.plan.grids["households"].tolist() == [800]
    assert r.plan.grids.geometry.iloc[0].geom_type == "Polygon"
    assert round(r.plan.grids.area.iloc[0]) == 40000
    assert [(v["check"], v["severity"]) for v in r.violations] == [("band", "warning")]
    assert set(r.plan.buildings["grid_code"]) == {G2}
    plan2, layers2 = two
    r = merge_grids(plan2, layers2, [G2, H1])
    assert not r.ok and [v["check"] for v in r.errors] == ["community"]
    with pytest.raises(InputError, match="two or more"):
        merge_grids(plan, layers, [G1, G1])


def test_split_along_line(one):
    plan, layers = one
    line = f"LINESTRING ({X0 + 100} {Y0 - 10}, {X0 + 100} {Y0 + 110})"
    r = split_grid(plan, layers, G1, line=line)
    assert r.ok
    g = r.plan.grids
    assert g[["grid_code", "households"]].values.tolist() == [
        [G1, 200],
        [G2, 400],
        ["320508019044003", 200],
    ]
    assert g["name"].tolist()[2] == "幸福社区第003网格"
    assert g.area.round().tolist() == [10000.0, 20000.0, 10000.0]
    members = r.plan.buildings.groupby("grid_code")["building_id"].apply(sorted).to_dict()
    assert members["320508019044003"] == ["c1b2", "c1b3"]


def test_split_line_through_a_building(one):
    plan, layers = one
    line = f"LINESTRING ({X0 + 25} {Y0 - 10}, {X0 + 25} {Y0 + 110})"
    r = split_grid(plan, layers, G1, line=line)
    assert not r.ok
    assert r.errors[0]["check"] == "building_cut"
    assert "c1b0" in r.errors[0]["message"]
    # assign by larger part: the line at x=30 leaves most of c1b0 (10-40) on the west side
    line = f"LINESTRING ({X0 + 30} {Y0 - 10}, {X0 + 30} {Y0 + 110})"
    r = split_grid(plan, layers, G1, line=line, cut="larger")
    assert r.ok
    assert r.plan.grids["households"].tolist() == [300, 400, 100]
    assert any("larger side" in n for n in r.notes)


def test_split_guards(one):
    plan, layers = one
    with pytest.raises(InputError, match="does not cut"):
        split_grid(plan, layers, G1, line=f"LINESTRING ({X0 + 5} {Y0 + 5}, {X0 + 6} {Y0 + 6})")
    with pytest.raises(InputError, match="every building"):
        split_grid(plan, layers, G1, line=f"LINESTRING ({X0 + 5} {Y0 - 5}, {X0 + 5} {Y0 + 105})")
    with pytest.raises(InputError, match="cut must be"):
        split_grid(plan, layers, G1, line="LINESTRING (0 0, 1 1)", cut="half")


def test_split_by_repartition(one):
    plan, layers = one
    merged = merge_grids(plan, layers, [G1, G2]).plan
    r = split_grid(merged, layers, G1, n_grids=2)
    assert r.ok
    assert sorted(r.plan.grids["households"].tolist()) == [400, 400]
    assert r.plan.grids["grid_code"].tolist() == [G1, G2]
    assert round(r.plan.grids.area.sum()) == 40000
    assert r.figures.communities.iloc[0]["gap_area_m2"] < 0.01


def test_repartition_keeps_locked_grids(one):
    plan, layers = one
    moved = move_buildings(plan, layers, ["c1b2", "c1b3"], G2).plan
    locked = lock_grids(moved, layers, [G1]).plan
    r = repartition(locked, layers)
    # G1 is locked at 200; the rest (600 > max 500) is repaired into two grids
    assert r.plan.grids["households"].tolist() == [200, 400, 200]
    assert r.plan.grids["locked"].tolist() == [True, False, False]
    assert r.plan.grids["grid_code"].tolist() == [G1, G2, "320508019044003"]
    assert r.plan.grids.geometry.iloc[0].equals(locked.grids.geometry.iloc[0])
    assert r.ok and r.removed == []
    # unlocked: grids start from their membership and are only repaired into the band
    r = repartition(lock_grids(locked, layers, [G1], locked=False).plan, layers)
    assert r.plan.grids["households"].tolist() == [300, 500]
    assert r.ok and r.violations == []


def test_restaff():
    layers = lattice(1)
    plan = partition(layers, min_households=200, max_households=500)
    blds = layers.buildings
    staff = gpd.GeoDataFrame(
        {
            "staff_id": ["S1", "S2", "S3"],
            "name": ["张伟", "李娜", "王芳"],
            "phone": ["1", "2", "3"],
            "home_building_id": ["c1b0", "c1b1", "c1b5"],
            "can_be_chief": [True, False, True],
        },
        geometry=list(blds.geometry.iloc[[0, 1, 5]].centroid),
        crs=4549,
    )
    r = restaff(plan, layers.replace(staff=staff))
    assert r.ok
    a = r.plan.assignments
    chiefs = a[a["role"] == "chief"].set_index("grid_code")["staff_id"].to_dict()
    assert chiefs == {G1: "S1", G2: "S3"}
    assert r.staffing["filled"] == 3  # three people, one post each
    assert {v["check"] for v in r.violations} == {"staffing"}
    with pytest.raises(Exception, match="no staff roster"):
        restaff(plan, layers)


def staffed_lattice():
    """The one-community lattice staffed: S1 chief of G1 (home c1b0), S4 chief of G2 (c1b5)."""
    layers = lattice(1)
    blds = layers.buildings
    homes = [0, 1, 2, 5, 6, 7]
    staff = gpd.GeoDataFrame(
        {
            "staff_id": [f"S{i + 1}" for i in range(6)],
            "name": ["张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊"],
            "phone": [str(i) for i in range(6)],
            "home_building_id": [f"c1b{h}" for h in homes],
            "can_be_chief": [True, False, False, True, False, False],
        },
        geometry=list(blds.geometry.iloc[homes].centroid),
        crs=4549,
    )
    layers = layers.replace(staff=staff)
    plan = restaff(partition(layers, min_households=200, max_households=500), layers).plan
    return plan, layers


def test_merge_hands_serving_staff_to_the_merged_grid_and_restaff_moves_them_with_reasons():
    plan, layers = staffed_lattice()
    posts = plan.assignments.dropna(subset=["staff_id"])
    assert posts.groupby("grid_code")["staff_id"].apply(sorted).to_dict() == {
        G1: ["S1", "S2", "S3"],
        G2: ["S4", "S5", "S6"],
    }
    r = merge_grids(plan, layers, [G2, G1])
    carried = r.plan.assignments.dropna(subset=["staff_id"])
    assert set(carried["grid_code"]) == {G2}
    assert sorted(carried["staff_id"]) == ["S1", "S2", "S3", "S4", "S5", "S6"]
    staffing = [v for v in r.violations if v["check"] == "staffing"]
    assert len(staffing) == 1 and staffing[0]["severity"] == "warning"
    assert "2 chiefs 网格长 (S1, S4)" in staffing[0]["message"]
    assert "4 workers" in staffing[0]["message"] and "restaff" in staffing[0]["message"]
    # re-staffing keeps one chief and three workers (800 households > 350) and says why
    # the others leave; before, they were dropped with the grid and came back as newcomers
    from gridmap.staffing import assign_staff

    res = assign_staff(r.plan, layers.staff, buildings=layers.buildings)
    kept = res.assignments.dropna(subset=["staff_id"])
    assert (kept["role"] == "chief").sum() == 1 and (kept["role"] == "worker").sum() == 3
    assert not kept["changed"].any()
    assert sorted(res.moves["staff_id"]) == ["S4", "S6"]
    assert res.moves["reason"].str.contains("holders").all()


def test_move_that_takes_the_chiefs_home_away_warns():
    plan, layers = staffed_lattice()
    r = move_buildings(plan, layers, ["c1b4", "c1b5"], G1)
    assert r.ok
    msgs = [v["message"] for v in r.violations if v["check"] == "staffing"]
    assert msgs == [
        f"grid {G2}: its chief S4 no longer lives in it after this edit; re-run staffing "
        "(restaff) to settle its posts, keeping serving people where the rules allow"
    ]
    after = restaff(r.plan, layers).plan.assignments
    chief_of_g2 = after.loc[(after["grid_code"] == G2) & (after["role"] == "chief"), "staff_id"]
    assert chief_of_g2.isna().all()  # no chief-eligible resident left in G2: vacant, not S4


def test_apply_edit_unknown_op(one):
    plan, layers = one
    with pytest.raises(InputError, match="unknown edit op"):
        apply_edit(plan, layers, "paint")
    with pytest.raises(InputError, match="bad parameters"):
        apply_edit(plan, layers, "merge", nope=1)


def test_edits_that_change_nothing_return_the_plan_itself(one):
    plan, layers = one
    locked = lock_grids(plan, layers, [G1]).plan
    again = lock_grids(locked, layers, [G1, G2])
    assert again.affected == [G2]  # only the grid whose flag changed
    assert again.notes == ["1 grid(s) locked", f"1 grid(s) already locked: {G1}"]
    same = lock_grids(locked, layers, [G1])
    assert same.ok and same.plan is locked and same.affected == []
    assert same.notes == ["0 grid(s) locked", f"1 grid(s) already locked: {G1}"]
    still = move_buildings(plan, layers, ["c1b0"], G1)  # c1b0 is in G1 already
    assert still.ok and still.plan is plan and still.affected == [] and still.removed == []
    assert still.notes == [f"every named building is already in grid {G1}; nothing moved"]
