from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from shapely import LineString, MultiPolygon, Polygon, box

from gridmap.errors import CRSError, InfeasibleError, LayerError
from gridmap.layers import Layers
from gridmap.partition.plan import Plan, QualityReport
from gridmap.partition.quality import add_notes, quality_report, summary_text

CRS = pyproj.CRS.from_epsg(3857)
PI4 = math.pi / 4


def _layers(
    communities: list[tuple[str, object]],
    buildings: list[tuple[str, int, str]] | None = None,
    roads: list[LineString] | None = None,
    barriers: list[object] | None = None,
) -> Layers:
    comms = gpd.GeoDataFrame(
        {
            "community_id": [c for c, _ in communities],
            "name": [f"{c}社区" for c, _ in communities],
            "code": [None] * len(communities),
        },
        geometry=[g for _, g in communities],
        crs=CRS,
    )
    buildings = buildings or []
    blds = gpd.GeoDataFrame(
        {
            "building_id": [b for b, _, _ in buildings],
            "households": [h for _, h, _ in buildings],
            "community_id": [c for _, _, c in buildings],
        },
        geometry=[box(i, 0, i + 1, 1) for i in range(len(buildings))],
        crs=CRS,
    )
    rds = (
        None
        if roads is None
        else gpd.GeoDataFrame({"name": ["r"] * len(roads)}, geometry=roads, crs=CRS)
    )
    bars = (
        None
        if barriers is None
        else gpd.GeoDataFrame({"kind": ["wall"] * len(barriers)}, geometry=barriers, crs=CRS)
    )
    return Layers(communities=comms, buildings=blds, roads=rds, barriers=bars, crs=CRS)


def _grids(geoms: list[object], households: list[float], community: str = "c1") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "grid_code": [f"g{i + 1}" for i in range(len(geoms))],
            "community_id": [community] * len(geoms),
            "households": households,
        },
        geometry=geoms,
        crs=CRS,
    )


def _rows(pairs: list[tuple[str, str | None, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "building_id": [b for b, _, _ in pairs],
            "grid_code": pd.array([g for _, g, _ in pairs], dtype=object),
            "households": [h for _, _, h in pairs],
            "part": [None] * len(pairs),
        }
    )


LATTICE = [
    box(0, 100, 100, 200),
    box(100, 100, 200, 200),
    box(0, 0, 100, 100),
    box(100, 0, 200, 100),
]
HH = [250, 300, 350, 300]


def _lattice_case(**layer_kwargs: object) -> tuple[gpd.GeoDataFrame, pd.DataFrame, Layers]:
    layers = _layers(
        [("c1", box(0, 0, 200, 200))],
        [(f"b{i + 1}", h, "c1") for i, h in enumerate(HH)],
        **layer_kwargs,  # type: ignore[arg-type]
    )
    grids = _grids(LATTICE, HH)
    rows = _rows([(f"b{i + 1}", f"g{i + 1}", h) for i, h in enumerate(HH)])
    return grids, rows, layers


def test_lattice_exact_figures() -> None:
    grids, rows, layers = _lattice_case()
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    g = rep.grids
    assert g["grid_code"].tolist() == ["g1", "g2", "g3", "g4"]
    np.testing.assert_allclose(g["polsby_popper"], [PI4] * 4)
    np.testing.assert_allclose(g["area_m2"], [10_000.0] * 4)
    np.testing.assert_allclose(g["perimeter_m"], [400.0] * 4)
    assert g["n_parts"].tolist() == [1, 1, 1, 1]
    assert not g["is_enclave"].any()
    assert g["in_band"].all()
    assert g["n_buildings"].tolist() == [1, 1, 1, 1]
    np.testing.assert_allclose(g["internal_boundary_m"], [200.0] * 4)
    np.testing.assert_allclose(g["boundary_on_roads_m"], [0.0] * 4)
    assert g["stability"].isna().all()
    c = rep.communities.iloc[0]
    assert c["community_id"] == "c1" and c["name"] == "c1社区"
    assert c["n_grids"] == 4 and c["households"] == 1200
    assert c["gap_area_m2"] == pytest.approx(0.0, abs=1e-9)
    assert c["overlap_area_m2"] == pytest.approx(0.0, abs=1e-9)
    assert c["outside_area_m2"] == pytest.approx(0.0, abs=1e-9)
    assert c["notes"] == ""
    expected_cv = math.sqrt(1250.0) / 300.0
    assert c["households_cv"] == pytest.approx(expected_cv)
    o = rep.overall
    assert o["n_grids"] == 4 and o["households"] == 1200.0
    assert o["share_in_band"] == 1.0
    assert o["mean_polsby_popper"] == pytest.approx(PI4)
    assert o["min_polsby_popper"] == pytest.approx(PI4)
    assert o["internal_boundary_m"] == pytest.approx(400.0)
    assert o["share_boundary_on_roads"] == 0.0
    assert o["households_cv"] == pytest.approx(expected_cv)
    assert o["n_split_buildings"] == 0 and o["n_unassigned_buildings"] == 0
    assert math.isnan(o["stability"]) and o["stability_basis"] is None
    assert math.isnan(o["persons"])


def test_report_is_json_serialisable_and_round_trips() -> None:
    grids, rows, layers = _lattice_case()
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    text = rep.to_json()
    data = json.loads(text)
    assert data["overall"]["stability"] is None
    assert data["grids"][0]["polsby_popper"] == pytest.approx(PI4)
    back = QualityReport.from_dict(data)
    assert back.grids["grid_code"].tolist() == ["g1", "g2", "g3", "g4"]
    assert back.overall["n_grids"] == 4


def test_compactness_of_residential_and_dedicated_grids_apart() -> None:
    # two 100 m squares of homes above a 200 m x 25 m strip of offices (a dedicated grid)
    layers = _layers(
        [("c1", box(0, 0, 200, 125))],
        [("b1", 300, "c1"), ("b2", 300, "c1"), ("b3", 0, "c1")],
    )
    grids = _grids(
        [box(0, 25, 100, 125), box(100, 25, 200, 125), box(0, 0, 200, 25)], [300, 300, 0]
    )
    grids["kind"] = ["residential", "residential", "dedicated"]
    rows = _rows([("b1", "g1", 300), ("b2", "g2", 300), ("b3", "g3", 0)])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    o = rep.overall
    strip = 4 * math.pi * 5_000 / 450**2  # 0.3103
    assert o["mean_polsby_popper_residential"] == pytest.approx(PI4)
    assert o["mean_polsby_popper_dedicated"] == pytest.approx(strip)
    assert o["mean_polsby_popper"] == pytest.approx((2 * PI4 + strip) / 3)
    assert o["min_polsby_popper"] == pytest.approx(strip)
    assert "residential grids 0.785, dedicated grids 0.310" in summary_text(rep)
    # without dedicated grids: the residential mean is the mean, the dedicated one NaN
    lattice = quality_report(*_lattice_case(), min_households=200, max_households=500)
    assert lattice.overall["mean_polsby_popper_residential"] == pytest.approx(PI4)
    assert math.isnan(lattice.overall["mean_polsby_popper_dedicated"])
    assert "dedicated grids" not in summary_text(lattice).split("Compactness")[1].split("\n")[0]


def test_households_taken_from_buildings_when_grids_lack_them() -> None:
    grids, rows, layers = _lattice_case()
    rep = quality_report(
        grids.drop(columns="households"), rows, layers, min_households=200, max_households=500
    )
    assert rep.grids["households"].tolist() == HH


def test_persons_totals() -> None:
    grids, rows, layers = _lattice_case()
    grids = grids.assign(persons=[800.0, np.nan, 1000.0, 900.0])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    assert rep.communities.loc[0, "persons"] == 2700.0
    assert rep.overall["persons"] == 2700.0


@pytest.mark.parametrize(
    ("road", "share"),
    [
        (LineString([(100, -50), (100, 150)]), 1.0),  # exactly along the internal edge
        (LineString([(103, -50), (103, 150)]), 1.0),  # 3 m off: within 5 m
        (LineString([(110, -50), (110, 150)]), 0.0),  # 10 m away
        (LineString([(100, 0), (100, 50)]), 0.55),  # half of it, plus the 5 m round cap
    ],
)
def test_boundary_on_roads_two_grids(road: LineString, share: float) -> None:
    layers = _layers(
        [("c1", box(0, 0, 200, 100))],
        [("b1", 250, "c1"), ("b2", 300, "c1")],
        roads=[road],
    )
    grids = _grids([box(0, 0, 100, 100), box(100, 0, 200, 100)], [250, 300])
    rows = _rows([("b1", "g1", 250), ("b2", "g2", 300)])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    assert rep.overall["internal_boundary_m"] == pytest.approx(100.0)
    assert rep.overall["share_boundary_on_roads"] == pytest.approx(share, abs=1e-9)
    assert rep.communities.loc[0, "share_boundary_on_roads"] == pytest.approx(share, abs=1e-9)
    np.testing.assert_allclose(rep.grids["share_boundary_on_roads"], [share, share], atol=1e-9)


def test_boundary_on_roads_lattice_with_cross_and_barrier_polygon() -> None:
    # vertical road on x=100 (200 m of internal edge) + a wall polygon whose edge is y=100
    road = LineString([(100, -10), (100, 210)])
    wall = Polygon([(0, 100), (200, 100), (200, 101), (0, 101)])
    grids, rows, layers = _lattice_case(roads=[road], barriers=[wall])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    # the wall is a line a border may follow, but not a road: counted apart
    assert rep.overall["share_boundary_on_lines"] == pytest.approx(1.0)
    assert rep.overall["boundary_on_roads_m"] == pytest.approx(210.0)
    assert rep.overall["boundary_on_walls_m"] == pytest.approx(211.0)  # 200 + 11 across y=100
    # only the road: the horizontal edges are on roads only 5 m either side of x=100
    grids, rows, layers = _lattice_case(roads=[road])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    assert rep.overall["boundary_on_roads_m"] == pytest.approx(200.0 + 10.0)
    np.testing.assert_allclose(rep.grids["boundary_on_roads_m"], [105.0] * 4)


def test_overlapping_road_and_barrier_not_counted_twice() -> None:
    road = LineString([(100, -10), (100, 110)])
    wall = LineString([(101, -10), (101, 110)])
    layers = _layers(
        [("c1", box(0, 0, 200, 100))], [("b1", 250, "c1"), ("b2", 300, "c1")], [road], [wall]
    )
    grids = _grids([box(0, 0, 100, 100), box(100, 0, 200, 100)], [250, 300])
    rows = _rows([("b1", "g1", 250), ("b2", "g2", 300)])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    assert rep.overall["boundary_on_roads_m"] == pytest.approx(100.0)


def test_gap_and_overlap_areas() -> None:
    layers = _layers([("c1", box(0, 0, 200, 100))], [("b1", 250, "c1"), ("b2", 300, "c1")])
    rows = _rows([("b1", "g1", 250), ("b2", "g2", 300)])
    gapped = _grids([box(0, 0, 90, 100), box(100, 0, 200, 100)], [250, 300])
    rep = quality_report(gapped, rows, layers, min_households=200, max_households=500)
    c = rep.communities.iloc[0]
    assert c["gap_area_m2"] == pytest.approx(1000.0)
    assert c["overlap_area_m2"] == pytest.approx(0.0, abs=1e-9)
    assert "gap of 1000.0 m²" in c["notes"]
    assert rep.overall["internal_boundary_m"] == 0.0  # 10 m apart: no shared edge
    assert math.isnan(rep.overall["share_boundary_on_roads"])

    overlapping = _grids([box(0, 0, 110, 100), box(100, 0, 210, 100)], [250, 300])
    rep = quality_report(overlapping, rows, layers, min_households=200, max_households=500)
    c = rep.communities.iloc[0]
    assert c["gap_area_m2"] == pytest.approx(0.0, abs=1e-9)
    assert c["overlap_area_m2"] == pytest.approx(1000.0)
    assert c["outside_area_m2"] == pytest.approx(1000.0)
    assert "overlap by 1000.0 m²" in c["notes"]
    assert rep.overall["overlap_area_m2"] == pytest.approx(1000.0)


def test_multipart_grids() -> None:
    corner = MultiPolygon([box(0, 0, 100, 100), box(100, 100, 200, 200)])  # touch at a point
    apart = MultiPolygon([box(0, 0, 100, 100), box(150, 0, 200, 100)])
    edge = MultiPolygon([box(0, 0, 100, 100), box(100, 0, 200, 50)])  # L, parts share an edge
    layers = _layers(
        [("c1", box(0, 0, 300, 300))], [("b1", 250, "c1"), ("b2", 250, "c1"), ("b3", 250, "c1")]
    )
    grids = _grids([corner, apart, edge], [250, 250, 250])
    rows = _rows([("b1", "g1", 250), ("b2", "g2", 250), ("b3", "g3", 250)])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    assert rep.grids["n_parts"].tolist() == [2, 2, 1]
    assert rep.communities.loc[0, "n_multipart"] == 2
    assert rep.overall["n_multipart"] == 2
    assert "several parts: g1, g2" in rep.communities.loc[0, "notes"]


def test_enclave_ring() -> None:
    ring = box(0, 0, 300, 300).difference(box(100, 100, 200, 200))
    inner = box(100, 100, 200, 200)
    layers = _layers([("c1", box(0, 0, 300, 300))], [("b1", 250, "c1"), ("b2", 300, "c1")])
    grids = _grids([ring, inner], [250, 300])
    rows = _rows([("b1", "g1", 250), ("b2", "g2", 300)])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    assert rep.grids["is_enclave"].tolist() == [False, True]
    assert rep.grids["enclosed_by"].tolist() == [None, "g1"]
    assert rep.overall["n_enclaves"] == 1
    assert "g2 inside g1" in rep.communities.loc[0, "notes"]
    assert rep.overall["internal_boundary_m"] == pytest.approx(400.0)
    assert rep.overall["gap_area_m2"] == pytest.approx(0.0, abs=1e-9)


def test_u_shape_open_to_the_community_edge_is_no_enclave() -> None:
    u_shape = box(0, 0, 300, 300).difference(box(100, 100, 200, 300))
    inner = box(100, 100, 200, 300)
    layers = _layers([("c1", box(0, 0, 300, 300))], [("b1", 250, "c1"), ("b2", 300, "c1")])
    grids = _grids([u_shape, inner], [250, 300])
    rows = _rows([("b1", "g1", 250), ("b2", "g2", 300)])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    assert not rep.grids["is_enclave"].any()


def test_enclave_in_other_community_is_not_counted() -> None:
    ring = box(0, 0, 300, 300).difference(box(100, 100, 200, 200))
    inner = box(100, 100, 200, 200)
    layers = _layers([("c1", ring), ("c2", inner)], [("b1", 250, "c1"), ("b2", 300, "c2")])
    grids = pd.concat([_grids([ring], [250], "c1"), _grids([inner], [300], "c2")])
    grids = grids.assign(grid_code=["g1", "g2"]).reset_index(drop=True)
    rows = _rows([("b1", "g1", 250), ("b2", "g2", 300)])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    assert not rep.grids["is_enclave"].any()
    # community borders are not internal boundary
    assert rep.overall["internal_boundary_m"] == 0.0


def test_building_integrity() -> None:
    layers = _layers(
        [("c1", box(0, 0, 200, 100))],
        [("big", 600, "c1"), ("small", 100, "c1"), ("whole", 200, "c1"), ("lost", 40, "c1")],
    )
    grids = _grids([box(0, 0, 100, 100), box(100, 0, 200, 100)], [400, 500])
    rows = _rows(
        [
            ("big", "g1", 300),
            ("big", "g2", 300),
            ("small", "g1", 50),
            ("small", "g2", 50),
            ("whole", "g2", 200),
        ]
    )
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    assert rep.grids["n_buildings"].tolist() == [2, 3]
    assert rep.grids["n_split_buildings"].tolist() == [2, 2]
    assert rep.grids["n_unjustified_splits"].tolist() == [1, 1]
    c = rep.communities.iloc[0]
    assert c["n_split_buildings"] == 2 and c["n_unjustified_splits"] == 1
    assert c["n_unassigned_buildings"] == 1 and c["unassigned_households"] == 40.0
    assert "1 building(s) split across grids without need" in c["notes"]
    assert "1 building(s) (40 households) in no grid" in c["notes"]
    o = rep.overall
    assert (o["n_split_buildings"], o["n_unjustified_splits"]) == (2, 1)
    assert (o["n_unassigned_buildings"], o["unassigned_households"]) == (1, 40.0)


def test_parts_in_one_grid_are_not_a_split() -> None:
    layers = _layers([("c1", box(0, 0, 100, 100))], [("b1", 300, "c1")])
    grids = _grids([box(0, 0, 100, 100)], [300])
    rows = _rows([("b1", "g1", 150), ("b1", "g1", 150)]).assign(part=["units 1-2", "units 3-4"])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    assert rep.overall["n_split_buildings"] == 0
    assert rep.grids["n_buildings"].tolist() == [1]


def test_band_flags_and_notes() -> None:
    layers = _layers(
        [
            ("small", box(0, 0, 100, 100)),
            ("odd", box(200, 0, 400, 100)),
            ("empty", box(0, 200, 50, 250)),
        ],
        [("b1", 120, "small"), ("b2", 300, "odd"), ("b3", 300, "odd")],
    )
    grids = gpd.GeoDataFrame(
        {
            "grid_code": ["s1", "o1", "o2"],
            "community_id": ["small", "odd", "odd"],
            "households": [120, 300, 300],
        },
        geometry=[box(0, 0, 100, 100), box(200, 0, 300, 100), box(300, 0, 400, 100)],
        crs=CRS,
    )
    rows = _rows([("b1", "s1", 120), ("b2", "o1", 300), ("b3", "o2", 300)])
    rep = quality_report(grids, rows, layers, min_households=400, max_households=500)
    assert rep.grids["in_band"].tolist() == [False, False, False]
    assert rep.grids["band_exempt"].tolist() == [True, False, False]
    comms = rep.communities.set_index("community_id")
    assert (
        bool(comms.loc["small", "below_min"]) and bool(comms.loc["small", "band_feasible"]) is False
    )
    assert (
        comms.loc["small", "notes"] == "total 120 households is below min 400: one grid (flagged)"
    )
    assert not comms.loc["odd", "below_min"] and not comms.loc["odd", "band_feasible"]
    assert "no number of grids fits 600 households into [400, 500]" in comms.loc["odd", "notes"]
    assert comms.loc["empty", "n_grids"] == 0
    assert comms.loc["empty", "gap_area_m2"] == pytest.approx(2500.0)
    assert comms.loc["empty", "notes"] == "no grids"
    assert math.isnan(comms.loc["empty", "share_in_band"])
    assert rep.overall["n_band_exempt"] == 1
    assert rep.overall["n_communities_below_min"] == 2
    assert rep.overall["share_in_band"] == 0.0


def test_single_grid_cv_is_zero() -> None:
    layers = _layers([("c1", box(0, 0, 100, 100))], [("b1", 300, "c1")])
    grids = _grids([box(0, 0, 100, 100)], [300])
    rep = quality_report(
        grids, _rows([("b1", "g1", 300)]), layers, min_households=200, max_households=500
    )
    assert rep.communities.loc[0, "households_cv"] == 0.0


def _plan(grids: gpd.GeoDataFrame, rows: pd.DataFrame, households: pd.DataFrame | None) -> Plan:
    report = QualityReport(pd.DataFrame(), pd.DataFrame(), {})
    return Plan(grids, rows, households, report, {}, CRS)


def test_stability_by_buildings() -> None:
    grids, rows, layers = _lattice_case()
    # previously the 350 households of b3 were in g1
    prev_rows = _rows([("b1", "g1", 250), ("b2", "g2", 300), ("b3", "g1", 350), ("b4", "g4", 300)])
    previous = _plan(grids, prev_rows, None)
    rep = quality_report(
        grids, rows, layers, min_households=200, max_households=500, previous=previous
    )
    assert rep.overall["stability"] == pytest.approx(850 / 1200)
    assert rep.overall["stability_basis"] == "buildings"
    np.testing.assert_allclose(rep.grids["stability"], [1.0, 1.0, 0.0, 1.0])
    assert rep.communities.loc[0, "stability"] == pytest.approx(850 / 1200)
    assert "Stability 稳定性: 70.8%" in summary_text(rep)


def test_stability_by_buildings_in_parts_and_new_buildings() -> None:
    grids, _, layers = _lattice_case()
    # b1 now half in g1 and half in g2 (was all in g1); b4 is new (not in the previous plan)
    rows = _rows(
        [
            ("b1", "g1", 125),
            ("b1", "g2", 125),
            ("b2", "g2", 300),
            ("b3", "g3", 350),
            ("b4", "g4", 300),
        ]
    )
    prev_rows = _rows([("b1", "g1", 250), ("b2", "g2", 300), ("b3", "g3", 350)])
    rep = quality_report(
        grids,
        rows,
        layers,
        min_households=0,
        max_households=500,
        previous=_plan(grids, prev_rows, None),
    )
    assert rep.overall["stability"] == pytest.approx((125 + 300 + 350) / 900)
    assert rep.grids["stability"].tolist()[:3] == pytest.approx([1.0, 300 / 425, 1.0])
    assert math.isnan(rep.grids["stability"].iloc[3])


def test_stability_by_households() -> None:
    grids, rows, layers = _lattice_case()
    cur = pd.DataFrame(
        {
            "household_id": ["h1", "h2", "h3", "h4"],
            "building_id": ["b1"] * 4,
            "grid_code": ["g1", "g1", "g2", "g3"],
        }
    )
    old = pd.DataFrame(
        {
            "household_id": ["h1", "h2", "h3", "h5"],
            "building_id": ["b1"] * 4,
            "grid_code": ["g1", "g2", "g2", "g3"],
        }
    )
    previous = _plan(grids, rows, old)
    rep = quality_report(
        grids,
        rows,
        layers,
        min_households=200,
        max_households=500,
        previous=previous,
        households=cur,
    )
    # h4 is new: compared h1, h2, h3; h2 moved
    assert rep.overall["stability"] == pytest.approx(2 / 3)
    assert rep.overall["stability_basis"] == "households"
    assert rep.grids["stability"].tolist()[:2] == pytest.approx([0.5, 1.0])


def test_notes_parameter_and_add_notes() -> None:
    grids, rows, layers = _lattice_case()
    rep = quality_report(
        grids,
        rows,
        layers,
        min_households=200,
        max_households=500,
        notes={"c1": ["2 grids locked"]},
    )
    assert rep.communities.loc[0, "notes"] == "2 grids locked"
    rep2 = add_notes(rep, {"c1": ["re-run with seed 3"]})
    assert rep2.communities.loc[0, "notes"] == "2 grids locked; re-run with seed 3"
    assert rep.communities.loc[0, "notes"] == "2 grids locked"  # unchanged
    with pytest.raises(LayerError, match="not in the report"):
        add_notes(rep, {"nope": ["x"]})
    with pytest.raises(LayerError, match="not in layers.communities"):
        quality_report(
            grids, rows, layers, min_households=200, max_households=500, notes={"nope": ["x"]}
        )


def test_summary_text() -> None:
    grids, rows, layers = _lattice_case()
    text = summary_text(quality_report(grids, rows, layers, min_households=200, max_households=500))
    assert text.splitlines()[0] == "Grids 网格: 4 in 1 communities 社区, 1200 households 户"
    assert "Households in band 户数达标 [200, 500]: 100.0%" in text
    assert "Polsby–Popper): mean 0.785, min 0.785" in text
    assert "Stability" not in text


def test_guards() -> None:
    grids, rows, layers = _lattice_case()
    kw = {"min_households": 200, "max_households": 500}
    with pytest.raises(CRSError, match="no CRS"):
        quality_report(grids.set_crs(None, allow_override=True), rows, layers, **kw)
    with pytest.raises(CRSError, match="geographic"):
        quality_report(grids.set_crs(4326, allow_override=True), rows, layers, **kw)
    with pytest.raises(CRSError, match="reproject"):
        quality_report(grids.set_crs(32650, allow_override=True), rows, layers, **kw)
    with pytest.raises(LayerError, match=r"grids lacks column\(s\) \['community_id'\]"):
        quality_report(grids.drop(columns="community_id"), rows, layers, **kw)
    with pytest.raises(LayerError, match=r"buildings lacks column\(s\) \['households'\]"):
        quality_report(grids, rows.drop(columns="households"), layers, **kw)
    with pytest.raises(LayerError, match="GeoDataFrame"):
        quality_report(pd.DataFrame(grids), rows, layers, **kw)
    with pytest.raises(InfeasibleError, match="above max_households"):
        quality_report(grids, rows, layers, min_households=600, max_households=500)
    with pytest.raises(LayerError, match="used by more than one grid"):
        quality_report(grids.assign(grid_code=["g1", "g1", "g3", "g4"]), rows, layers, **kw)
    with pytest.raises(LayerError, match=r"community id\(s\) \['zz'\]"):
        quality_report(grids.assign(community_id="zz"), rows, layers, **kw)
    with pytest.raises(LayerError, match=r"grid code\(s\) \['g9'\]"):
        quality_report(grids, rows.assign(grid_code="g9"), layers, **kw)
    # building ids unknown to the layers are counted, not fatal (layers may be a subset)
    rep = quality_report(grids, rows.assign(building_id=["bx", "b2", "b3", "b4"]), layers, **kw)
    assert rep.overall["n_unknown_buildings"] == 1
    assert rep.overall["n_unassigned_buildings"] == 1


def test_near_coincident_edges_still_count_as_shared() -> None:
    # g2 starts 1 mm east of g1: the boundaries do not touch exactly
    layers = _layers(
        [("c1", box(0, 0, 200, 100))],
        [("b1", 250, "c1"), ("b2", 300, "c1")],
        roads=[LineString([(100, -50), (100, 150)])],
    )
    grids = _grids([box(0, 0, 100, 100), box(100.001, 0, 200, 100)], [250, 300])
    rows = _rows([("b1", "g1", 250), ("b2", "g2", 300)])
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    # tolerant edge: 100 m plus at most EDGE_TOLERANCE of spill at each end
    assert rep.overall["internal_boundary_m"] == pytest.approx(100.0, abs=0.03)
    assert rep.overall["share_boundary_on_roads"] == pytest.approx(1.0)
    assert rep.communities.loc[0, "gap_area_m2"] == pytest.approx(0.1)


def test_invalid_grid_is_repaired_and_flagged() -> None:
    bowtie = Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    layers = _layers([("c1", box(0, 0, 100, 100))], [("b1", 250, "c1")])
    grids = _grids([bowtie], [250])
    rep = quality_report(
        grids, _rows([("b1", "g1", 250)]), layers, min_households=200, max_households=500
    )
    assert rep.grids["is_valid"].tolist() == [False]
    assert rep.grids["area_m2"].iloc[0] == pytest.approx(5000.0)
    assert rep.grids["n_parts"].iloc[0] == 2
    assert rep.overall["n_invalid"] == 1
    assert "invalid grid geometry (repaired with make_valid): g1" in rep.communities.loc[0, "notes"]


def test_in_threads_matches_the_direct_call():
    from gridmap.partition.quality import in_threads

    rng = np.random.default_rng(0)
    a = shapely.points(rng.uniform(0, 100, (5000, 2))).astype(object)
    b = shapely.buffer(shapely.points(rng.uniform(0, 100, (5000, 2))), 3.0)
    direct = shapely.distance(a, b)
    threaded = in_threads(shapely.distance, a, b, chunk=1000)  # 4 slices
    np.testing.assert_array_equal(threaded, direct)
    # scalars go to every slice as they are; tiny inputs stay in this thread
    grown = in_threads(shapely.buffer, b, 1.0, chunk=1000, quad_segs=2)
    assert shapely.equals_exact(grown, shapely.buffer(b, 1.0, quad_segs=2), 0.0).all()
    assert len(in_threads(shapely.area, b[:3])) == 3
