"""diff_plans exactness on a small hand-made case, lineage and history (both backends)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from dbfactories import make_layers, make_plan

from gridmap.db import Store, diff_plans, plan_lineage, save_plan
from gridmap.errors import NotFoundError

C = "320104001001"


def edited(plan):
    """Plan B: grid 001 reshaped, building c0-b0 moved 003 → 004, grid 002 renamed 005."""
    grids = plan.grids.copy()
    i1 = grids.index[grids["grid_code"] == C + "001"][0]
    grids.loc[i1, "geometry"] = grids.geometry[i1].buffer(-2.0, join_style="mitre")
    grids.loc[grids["grid_code"] == C + "002", "grid_code"] = C + "005"
    b = plan.buildings.copy()
    b.loc[b["building_id"] == "c0-b0", "grid_code"] = C + "004"
    b.loc[b["grid_code"] == C + "002", "grid_code"] = C + "005"
    h = None
    if plan.households is not None:
        h = plan.households.copy()
        h.loc[h["building_id"] == "c0-b0", "grid_code"] = C + "004"
        h.loc[h["grid_code"] == C + "002", "grid_code"] = C + "005"
    return plan.replace(grids=grids, buildings=b, households=h)


@pytest.mark.parametrize("with_households", [True, False])
def test_diff_exact(store: Store, with_households: bool) -> None:
    layers = make_layers(nx=1, households=with_households)
    a = make_plan(layers)
    b = edited(a)
    ra = save_plan(store, a, author="x")
    rb = save_plan(store, b, author="x", parent_id=ra.id)
    d = diff_plans(store, ra.id, rb.id)
    assert d.unit == ("households" if with_households else "buildings")
    hh = a.grids.set_index("grid_code")["households"]
    assert d.grids_added.to_dict("records") == [
        {"grid_code": C + "005", "community_id": "c0", "households": hh[C + "002"]}
    ]
    assert d.grids_removed["grid_code"].tolist() == [C + "002"]
    assert d.grids_changed.to_dict("records") == [
        {
            "grid_code": C + "001",
            "geometry_changed": True,
            "membership_changed": False,
            "households_a": hh[C + "001"],
            "households_b": hh[C + "001"],
        },
        {
            "grid_code": C + "003",
            "geometry_changed": False,
            "membership_changed": True,
            "households_a": hh[C + "003"],
            "households_b": hh[C + "003"],
        },
        {
            "grid_code": C + "004",
            "geometry_changed": False,
            "membership_changed": True,
            "households_a": hh[C + "004"],
            "households_b": hh[C + "004"],
        },
    ]
    if with_households:
        src = a.households
        m = src["building_id"] == "c0-b0"
        m002 = src["grid_code"] == C + "002"
        expected = pd.concat(
            [
                pd.DataFrame(
                    {
                        "unit_id": src.loc[m, "household_id"],
                        "building_id": "c0-b0",
                        "grid_a": C + "003",
                        "grid_b": C + "004",
                    }
                ),
                pd.DataFrame(
                    {
                        "unit_id": src.loc[m002, "household_id"],
                        "building_id": src.loc[m002, "building_id"],
                        "grid_a": C + "002",
                        "grid_b": C + "005",
                    }
                ),
            ]
        )
    else:
        src = a.buildings
        m002 = src["grid_code"] == C + "002"
        expected = pd.concat(
            [
                pd.DataFrame(
                    {
                        "unit_id": ["c0-b0"],
                        "building_id": ["c0-b0"],
                        "grid_a": [C + "003"],
                        "grid_b": [C + "004"],
                    }
                ),
                pd.DataFrame(
                    {
                        "unit_id": src.loc[m002, "building_id"],
                        "building_id": src.loc[m002, "building_id"],
                        "grid_a": C + "002",
                        "grid_b": C + "005",
                    }
                ),
            ]
        )
    expected = expected.sort_values("unit_id").reset_index(drop=True)
    assert d.moved.astype(object).to_dict("records") == expected.astype(object).to_dict("records")
    assert d.summary()["moved"] == len(expected)
    assert not d.unchanged
    assert diff_plans(store, ra.id, ra.id).unchanged


def test_lineage_and_unknown(store: Store) -> None:
    plan = make_plan(make_layers(nx=1, households=False))
    r1 = save_plan(store, plan, author="x")
    r2 = save_plan(store, plan, author="x", parent_id=r1.id)
    r3 = save_plan(store, plan, author="x", parent_id=r2.id)
    assert [r.id for r in plan_lineage(store, r3.id)] == [r3.id, r2.id, r1.id]
    with pytest.raises(NotFoundError, match="no plan with id 42"):
        diff_plans(store, r1.id, 42)
    with pytest.raises(NotFoundError, match="no plan with id 42"):
        plan_lineage(store, 42)


def test_geometry_noise_is_not_a_change(store: Store) -> None:
    plan = make_plan(make_layers(nx=1, households=False))
    g = plan.grids.copy()
    g["geometry"] = shapely.set_precision(g.geometry.values, 1e-6)  # sub-mm rounding
    ra = save_plan(store, plan, author="x")
    rb = save_plan(store, plan.replace(grids=g), author="x")
    assert diff_plans(store, ra.id, rb.id).unchanged
    # the same outlines with an extra vertex on each edge and 0.1 mm of noise
    rng = np.random.default_rng(0)
    noisy = []
    for poly in plan.grids.geometry.values:
        corners = np.asarray(poly.exterior.coords)
        ring = [
            c
            for a, b in zip(corners[:-1], corners[1:], strict=True)
            for c in (a, a + 0.02 * (b - a))
        ]
        ring = np.array(ring + [ring[0]]) + rng.normal(0, 1e-4, (len(ring) + 1, 2))
        ring[-1] = ring[0]
        noisy.append(shapely.Polygon(ring))
    noisy = np.array(noisy, dtype=object)
    assert (
        shapely.get_num_coordinates(noisy) > shapely.get_num_coordinates(g.geometry.values)
    ).all()
    rc = save_plan(store, plan.replace(grids=plan.grids.set_geometry(noisy)), author="x")
    assert diff_plans(store, ra.id, rc.id).unchanged
    # a real move of one corner by 0.5 m is a change, of that grid only
    moved = noisy.copy()
    ring = np.asarray(moved[0].exterior.coords)
    ring[[0, -1]] += 0.5
    moved[0] = shapely.Polygon(ring)
    rd = save_plan(store, plan.replace(grids=plan.grids.set_geometry(moved)), author="x")
    d = diff_plans(store, ra.id, rd.id)
    assert d.grids_changed["grid_code"].tolist() == [plan.grids["grid_code"].iloc[0]]
    assert d.grids_changed["geometry_changed"].tolist() == [True]


@pytest.mark.parametrize("with_households", [True, False])
def test_diff_ignores_units_outside_the_other_plans_communities(
    store: Store, with_households: bool
) -> None:
    layers = make_layers(nx=2, households=with_households)  # communities c0, c1
    both = save_plan(store, make_plan(layers), author="x")
    one = save_plan(store, make_plan(layers.subset(["c0"]), shift=6), author="x")
    d = diff_plans(store, both.id, one.id)
    # c1's units are only in the first plan: not compared, not "moving"
    assert (
        d.moved["grid_a"]
        .str.startswith(layers.communities.set_index("community_id").loc["c0", "code"])
        .all()
    )
    assert len(d.moved) > 0  # c0's inner cut moved: those units do change grid
    same = save_plan(store, make_plan(layers.subset(["c0"])), author="x")
    assert len(diff_plans(store, both.id, same.id).moved) == 0  # c0 unchanged, c1 ignored
