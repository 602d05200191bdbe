"""Grids balanced on workload as well as households (issue 13): exact answers on small fixtures."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from invariants import assert_valid_plan
from shapely import Point, box

from gridmap.errors import InputError
from gridmap.layers import SENSITIVE_FLAGS, Layers
from gridmap.partition import partition
from gridmap.partition.load import building_loads, parse_balance
from gridmap.partition.quality import summary_text
from gridmap.partition.solver import balance_load, load_balance

CRS = 3857


def strip(care: dict[int, int], n: int = 8) -> Layers:
    """A 400 m × 100 m community with 8 buildings of 100 households in a row.

    ``care`` gives, per building index, how many of its households are flagged
    (elderly living alone).
    """
    comms = gpd.GeoDataFrame(
        {"community_id": ["c1"], "name": ["幸福社区"], "code": ["320508019044"]},
        geometry=[box(0, 0, 50 * n, 100)],
        crs=CRS,
    )
    blds = gpd.GeoDataFrame(
        {
            "building_id": [f"b{i}" for i in range(n)],
            "households": [100] * n,
            "community_id": ["c1"] * n,
        },
        geometry=[box(10 + 50 * i, 30, 40 + 50 * i, 70) for i in range(n)],
        crs=CRS,
    )
    rows = []
    for i in range(n):
        for k in range(100):
            rows.append(
                {
                    "household_id": f"h{i}-{k}",
                    "building_id": f"b{i}",
                    **{f: False for f in SENSITIVE_FLAGS},
                    "elderly_living_alone": k < care.get(i, 0),
                    "geometry": Point(25 + 50 * i, 50),
                }
            )
    hh = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)
    return Layers(communities=comms, buildings=blds, households=hh, crs=comms.crs)


def members(plan) -> list[list[str]]:
    b = plan.buildings.sort_values("building_id")
    return [sorted(g["building_id"]) for _, g in b.groupby("grid_code", sort=True)]


# --------------------------------------------------------------------------- the weights


def test_parse_balance() -> None:
    assert parse_balance("households,cases=0.2,care=2") == {
        "households": 1.0,
        "cases": 0.2,
        "care": 2.0,
    }
    assert parse_balance(" care = 3 , households ") == {"care": 3.0, "households": 1.0}
    with pytest.raises(InputError, match="weight 'x' of 'cases' is not a number; write e.g."):
        parse_balance("cases=x")
    with pytest.raises(InputError, match="must be a number >= 0"):
        parse_balance("cases=-1")
    with pytest.raises(InputError, match="'care' is given twice"):
        parse_balance("care,care=2")
    with pytest.raises(InputError, match="is not a term"):
        parse_balance("cases:0.2")
    with pytest.raises(InputError, match="--balance is empty"):
        parse_balance(" , ")


def test_building_loads_counts_every_term() -> None:
    layers = strip({0: 60, 1: 5})
    b = layers.buildings.assign(levels=[6.0] * 8)
    layers = layers.replace(buildings=b)
    cases = gpd.GeoDataFrame(
        geometry=[
            Point(20, 50),  # inside b0
            Point(25, 75),  # 5 m north of b0: nearest is b0
            Point(70, 50),  # inside b1
            Point(5000, 50),  # far from every building: unlocated
        ],
        crs=CRS,
    ).to_crs(4326)  # any CRS: converted to the layers'
    out = building_loads(
        layers, {"households": 1, "cases": 0.5, "care": 2, "levels": 0.1}, cases=cases
    )
    assert out["cases"].tolist()[:3] == [2.0, 1.0, 0.0]
    assert out["care"].tolist()[:3] == [60.0, 5.0, 0.0]
    assert out["load"].tolist()[:3] == [100 + 1 + 120 + 0.6, 100 + 0.5 + 10 + 0.6, 100.6]
    assert out.attrs["unlocated_cases"] == 1 and out.attrs["n_cases"] == 4
    # cases given by building id
    by_id = building_loads(layers, {"cases": 1}, cases=pd.DataFrame({"building_id": ["b7"] * 3}))
    assert by_id["load"].tolist() == [0.0] * 7 + [3.0]


def test_building_loads_refuses_what_it_cannot_count() -> None:
    layers = strip({})
    with pytest.raises(InputError, match="unknown load term 'noise'; use households, cases"):
        building_loads(layers, {"noise": 1})
    with pytest.raises(InputError, match="names 'cases' but no cases were given"):
        building_loads(layers, {"cases": 1})
    with pytest.raises(InputError, match="no households layer"):
        building_loads(layers.replace(households=None), {"care": 1})
    with pytest.raises(InputError, match="must be a number >= 0"):
        building_loads(layers, {"households": -1})
    with pytest.raises(InputError, match="point geometry with a CRS"):
        building_loads(layers, {"cases": 1}, cases=pd.DataFrame({"x": [1]}))


# --------------------------------------------------------------------------- the solver


def test_load_balance_figures() -> None:
    cv, top = load_balance(np.array([0, 0, 1]), np.array([320.0, 320.0, 400.0]))
    assert round(cv, 4) == round(120 / 520, 4) and top == 640 / 520


def test_balance_load_keeps_the_band() -> None:
    from types import SimpleNamespace

    u = SimpleNamespace(
        households=np.full(6, 100), area=np.full(6, 100.0),
        exterior=np.array([30.0, 20, 20, 20, 20, 30]), cx=np.arange(6) * 10.0 + 5,
        cy=np.full(6, 5.0), edges=np.array([[i, i + 1] for i in range(5)]),
        edge_length=np.full(5, 10.0), edge_cost=np.full(5, 10.0),
    )  # fmt: skip
    load = np.array([100.0, 100, 100, 100, 100, 400])
    start = np.array([0, 0, 0, 1, 1, 1])
    # 150-450: unit 3 moves (grids of 400 and 200 households), loads 400 | 500
    moved = balance_load(u, start, load, min_households=150, max_households=450)
    assert moved.tolist() == [0, 0, 0, 0, 1, 1]
    # 250-350: moving any unit takes a grid out of the band, so nothing moves
    kept = balance_load(u, start, load, min_households=250, max_households=350)
    assert kept.tolist() == start.tolist()


# --------------------------------------------------------------------------- the partitioner


def test_balancing_on_care_moves_a_building_and_the_load_cv_drops() -> None:
    layers = strip({0: 60, 1: 60})  # the west end holds 120 care households
    plain = partition(layers, min_households=200, max_households=500)
    assert members(plain) == [["b0", "b1", "b2", "b3"], ["b4", "b5", "b6", "b7"]]
    assert "load" not in plain.report.grids and "load_cv" not in plain.report.overall

    plan = partition(
        layers, min_households=200, max_households=500, load_weights={"households": 1, "care": 2}
    )
    assert_valid_plan(plan, layers, min=200, max=500)
    # b3 moves east: loads 640 | 400 become 540 | 500, the band still holds (300 | 500)
    assert members(plan) == [["b0", "b1", "b2"], ["b3", "b4", "b5", "b6", "b7"]]
    assert plan.grids["households"].tolist() == [300, 500]
    assert plan.report.grids["load"].tolist() == [540.0, 500.0]
    o = plan.report.overall
    assert o["load_weights"] == "households=1,care=2"
    assert o["load_cv_before"] == pytest.approx(120 / 520)
    assert o["load_cv"] == pytest.approx(20 / 520)
    assert o["load_max_median_before"] == pytest.approx(640 / 520)
    assert o["load_max_median"] == pytest.approx(540 / 520)
    assert plan.params["load_weights"] == {"households": 1, "care": 2}
    text = summary_text(plan.report)
    assert "Workload 工作量 (households=1,care=2): CV 0.231 -> 0.038, max/median 1.23 -> 1.04" in (
        text
    )
    assert "balanced on workload: 1 unit(s) moved between grids" in text


def test_the_household_band_is_not_given_up_for_load() -> None:
    layers = strip({0: 60, 1: 60})
    plan = partition(
        layers, min_households=200, max_households=450, load_weights={"households": 1, "care": 2}
    )
    # moving b3 would make a grid of 500 > 450: the grids stay, and the report says so
    assert members(plan) == [["b0", "b1", "b2", "b3"], ["b4", "b5", "b6", "b7"]]
    o = plan.report.overall
    assert o["load_cv"] == pytest.approx(o["load_cv_before"]) == pytest.approx(120 / 520)


def test_balancing_on_cases_from_points() -> None:
    layers = strip({})
    # 300 cases at b7 (the east end): its grid's load is 400 + 0.5 * 300 = 550
    cases = gpd.GeoDataFrame(geometry=[Point(375, 50)] * 300, crs=CRS)
    plan = partition(
        layers,
        min_households=200,
        max_households=500,
        load_weights={"households": 1, "cases": 0.5},
        cases=cases,
    )
    assert members(plan) == [["b0", "b1", "b2", "b3", "b4"], ["b5", "b6", "b7"]]
    assert plan.report.grids["load"].tolist() == [500.0, 450.0]
    assert plan.report.overall["load_cv_before"] == pytest.approx(75 / 475)
