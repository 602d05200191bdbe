"""Arterials on real-city shapes (issue 14, item 1): hand-made fixtures with exact answers.

Sites between main roads stay apart (:mod:`gridmap.partition.pieces`); an arterial
running along a community's outer edge a few metres off it is counted apart from one
running through a grid (:func:`gridmap.partition.quality._arterials_inside`).
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

from gridmap.layers import Layers
from gridmap.partition import partition
from gridmap.partition.pieces import arterial_pieces
from gridmap.partition.quality import quality_report

CRS = 4549


_layers = one_community  # one community 幸福社区 (tests/partition/lattice.py)


def _two_schools() -> Layers:
    # homes (600 households) west of a secondary road at x = 200; two school sites of
    # 3 ha each (below the 5 ha of a dedicated piece) either side of a primary road at x = 350
    homes = [(box(20 + 45 * k, 60, 45 + 45 * k, 140), 150) for k in range(4)]
    school_a = [(box(240, 50, 310, 150), 0)]
    school_b = [(box(390, 50, 460, 150), 0)]
    roads = [
        (LineString([(200, -10), (200, 210)]), "secondary"),
        (LineString([(350, -10), (350, 210)]), "primary"),
    ]
    return _layers(box(0, 0, 500, 200), homes + school_a + school_b, roads=roads)


def test_two_school_sites_across_a_primary_road_are_two_dedicated_grids():
    layers = _two_schools()
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    g = plan.grids
    ded = g[g["kind"] == "dedicated"].sort_values("grid_code")
    assert len(ded) == 2 and (ded["households"] == 0).all()
    # each school has its own land between the roads, exactly
    assert sorted(round(a) for a in ded.area) == [30_000, 30_000]
    assert sorted(round(b[0]) for b in ded.geometry.bounds.to_numpy()) == [200, 350]
    res = g[g["kind"] == "residential"]
    assert sorted(res["households"]) == [300, 300]
    assert res.geometry.bounds["maxx"].max() == pytest.approx(200.0)  # homes stop at the road
    o = plan.report.overall
    assert o["n_grids_arterial_inside"] == 0 and o["arterial_inside_m"] == pytest.approx(0.0)
    assert o["n_dedicated"] == 2


def test_empty_site_between_arterials_is_its_own_piece_but_a_median_strip_is_shared():
    # units in a row: homes | road | 3 ha site | road | homes, and a 10 m median strip
    from types import SimpleNamespace

    u = SimpleNamespace(
        households=np.array([300, 0, 300, 0]),
        area=np.array([40_000.0, 30_000.0, 40_000.0, 2_000.0]),
        perimeter=np.array([800.0, 700.0, 800.0, 420.0]),
        edges=np.array([[0, 1], [1, 2], [2, 3]]),
        edge_length=np.array([200.0, 200.0, 200.0]),
        edge_arterial=np.array([200.0, 200.0, 200.0]),
    )
    p = arterial_pieces(u, min_households=200, dedicated_area=50_000.0)
    assert p.piece.tolist() == [0, 1, 2, 2]  # the strip (width 2·2000/420 < 20 m) joins
    assert p.dedicated.tolist() == [False, True, False, False]
    # without dedicated grids the site is shared out as before
    p0 = arterial_pieces(u, min_households=200, dedicated_area=None)
    assert p0.dedicated is None and len(np.unique(p0.piece)) == 2


def test_arterial_cell_edge_partly_on_the_road_is_a_border():
    # two units sharing a 100 m edge of which 30 m runs along the arterial: above
    # the 20 m floor, so it is a border although less than half the edge
    from types import SimpleNamespace

    u = SimpleNamespace(
        households=np.array([300, 300]),
        area=np.full(2, 1e4),
        perimeter=np.full(2, 400.0),
        edges=np.array([[0, 1]]),
        edge_length=np.array([100.0]),
        edge_arterial=np.array([30.0]),
    )
    assert arterial_pieces(u, min_households=200).piece.tolist() == [0, 1]
    u.edge_arterial = np.array([15.0])
    assert arterial_pieces(u, min_households=200) is None


def test_arterial_along_the_community_edge_is_counted_apart():
    # a community whose outer edge (a district line) runs 10 m north of a primary
    # road's centreline; a second primary road runs through the western grid
    comm = box(0, 0, 400, 200)
    roads = [
        (LineString([(-10, 10), (410, 10)]), "primary"),  # 10 m inside the southern edge
        (LineString([(100, 60), (100, 140)]), "secondary"),  # 80 m through grid g1
    ]
    layers = _layers(comm, [(box(40, 80, 60, 120), 250), (box(240, 80, 260, 120), 250)], roads)
    grids = gpd.GeoDataFrame(
        {"grid_code": ["g1", "g2"], "community_id": ["c1", "c1"], "households": [250, 250]},
        geometry=[box(0, 0, 200, 200), box(200, 0, 400, 200)],
        crs=CRS,
    )
    rows = pd.DataFrame(
        {"building_id": ["b0", "b1"], "grid_code": ["g1", "g2"], "households": [250, 250]}
    )
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    g = rep.grids.set_index("grid_code")
    # the edge road: 200 m per grid less 5 m at each internal border / outer edge
    assert g.loc["g1", "arterial_along_edge_m"] == pytest.approx(190.0)
    assert g.loc["g2", "arterial_along_edge_m"] == pytest.approx(190.0)
    assert g.loc["g1", "arterial_inside_m"] == pytest.approx(80.0)
    assert g.loc["g2", "arterial_inside_m"] == pytest.approx(0.0)
    o = rep.overall
    assert o["n_grids_arterial_inside"] == 1
    assert o["n_grids_arterial_along_edge"] == 2
    assert o["arterial_along_edge_m"] == pytest.approx(380.0)


def _two_grid_report(comm, roads, split: float = 200.0, west=None):
    """The report of two grids (250 households each) over ``roads``: ``west`` and the rest
    of ``comm`` (default: split at x = ``split``)."""
    if west is None:
        west = box(0, 0, split, comm.bounds[3])
    layers = _layers(comm, [(box(40, 80, 60, 120), 250), (box(340, 80, 360, 120), 250)], roads)
    grids = gpd.GeoDataFrame(
        {"grid_code": ["g1", "g2"], "community_id": ["c1", "c1"], "households": [250, 250]},
        geometry=[west, shapely.difference(comm, west)],
        crs=CRS,
    )
    rows = pd.DataFrame(
        {"building_id": ["b0", "b1"], "grid_code": ["g1", "g2"], "households": [250, 250]}
    )
    return quality_report(grids, rows, layers, min_households=200, max_households=500)


@pytest.mark.parametrize(
    ("offset", "through", "along"),
    [(15.0, 0.0, 190.0), (30.0, 0.0, 190.0), (38.0, 0.0, 190.0), (45.0, 190.0, 0.0)],
)
def test_dual_carriageway_on_a_border_is_along_it_up_to_40_m(offset, through, along):
    # the border x = 200 lies on one carriageway; the other runs north–south `offset`
    # metres east of it, parallel: within 20 m, and parallel up to 40 m (the medians of
    # Shanghai's 延安东路 or 张杨路 are 20–28 m), it is the same road along the border
    comm = box(0, 0, 400, 200)
    roads = [
        (LineString([(200, -10), (200, 210)]), "primary"),
        (LineString([(200 + offset, -10), (200 + offset, 210)]), "primary"),
    ]
    g = _two_grid_report(comm, roads).grids.set_index("grid_code")
    assert g.loc["g2", "arterial_inside_m"] == pytest.approx(through)
    assert g.loc["g2", "arterial_along_edge_m"] == pytest.approx(along)
    assert g.loc["g1", "arterial_inside_m"] == pytest.approx(0.0)


def test_road_30_m_inside_a_border_off_the_roads_runs_through():
    # one primary road 30 m east of the border x = 200, which lies on no road: the border
    # runs beside the street instead of on it, and the road runs through grid g2
    comm = box(0, 0, 400, 200)
    rep = _two_grid_report(comm, [(LineString([(230, -10), (230, 210)]), "primary")])
    g = rep.grids.set_index("grid_code")
    assert g.loc["g2", "arterial_inside_m"] == pytest.approx(190.0)
    assert rep.overall["n_grids_arterial_inside"] == 1


def test_road_going_on_past_the_border_into_the_grid_runs_through():
    # a primary road runs north along x = 200; the border lies on it, but steps 50 m west
    # between y = 60 and 150: there g2 lies on both sides of the road for 80 m (as where a
    # grid straddles a main road). The road there goes on from the border's stretches in
    # line with them, not beside them: it runs through g2 (counted beside them, the 40 m
    # near their ends would hide it)
    comm = box(0, 0, 400, 200)
    west = shapely.difference(box(0, 0, 200, 200), box(150, 60, 200, 150))
    rep = _two_grid_report(comm, [(LineString([(200, -10), (200, 210)]), "primary")], west=west)
    g = rep.grids.set_index("grid_code")
    assert g.loc["g2", "arterial_inside_m"] == pytest.approx(80.0)  # 90 m less the rims
    assert rep.overall["n_grids_arterial_inside"] == 1


def test_carriageway_crossing_a_narrow_grid_runs_through():
    # a 60 m wide grid between two dual carriageways (on its borders x = 200 and 260);
    # a primary road crosses it west–east, 60 m long: within 40 m of both borders but
    # across them, so it runs through the grid
    comm = box(0, 0, 460, 200)
    roads = [
        (LineString([(200, -10), (200, 210)]), "primary"),
        (LineString([(260, -10), (260, 210)]), "primary"),
        (LineString([(200, 100), (260, 100)]), "secondary"),
    ]
    layers = _layers(comm, [(box(40, 80, 60, 120), 250), (box(340, 80, 360, 120), 250)], roads)
    grids = gpd.GeoDataFrame(
        {"grid_code": ["g1", "g2", "g3"], "community_id": ["c1"] * 3, "households": [250, 0, 250]},
        geometry=[box(0, 0, 200, 200), box(200, 0, 260, 200), box(260, 0, 460, 200)],
        crs=CRS,
    )
    rows = pd.DataFrame(
        {"building_id": ["b0", "b1"], "grid_code": ["g1", "g3"], "households": [250, 250]}
    )
    rep = quality_report(grids, rows, layers, min_households=200, max_households=500)
    g = rep.grids.set_index("grid_code")
    assert g.loc["g2", "arterial_inside_m"] == pytest.approx(50.0)  # 60 m less 5 m each end


# --------------------------------------------------------------------------- dangling ends


def _units(comm, buildings, roads):
    """build_units on ``(geometry, households)`` buildings and ``(line, class)`` roads."""
    from gridmap.partition.units import build_units

    b = pd.DataFrame(
        {
            "building_id": [f"b{i}" for i in range(len(buildings))],
            "households": [h for _, h in buildings],
            "geometry": [g for g, _ in buildings],
        }
    )
    return build_units(
        comm,
        b,
        roads=np.array([g for g, _ in roads], dtype=object),
        road_classes=[c for _, c in roads],
    )


def _sides(u, x: float) -> list[str]:
    """Per cell, "W"/"E" when it lies wholly on one side of x, else "both"."""
    b = np.array([c.bounds for c in u.cells])
    return ["W" if hi <= x + 1e-6 else "E" if lo >= x - 1e-6 else "both" for lo, hi in b[:, [0, 2]]]


_HOMES = [
    (box(20, 20, 60, 80), 150),
    (box(140, 20, 180, 80), 150),
]


@pytest.mark.parametrize("ahead", ["edge", "street"])
def test_arterial_ending_8_m_short_still_cuts_the_block(ahead):
    # a secondary road from the southern edge stops 8 m short of the northern edge (or of
    # a street at y = 80 crossing the community): carried on, it splits the land in two
    comm = box(0, 0, 200, 100)
    roads = [(LineString([(100, -10), (100, 92 if ahead == "edge" else 72)]), "secondary")]
    if ahead == "street":
        roads.append((LineString([(-10, 80), (210, 80)]), "residential"))
    homes = (
        _HOMES if ahead == "edge" else [(box(20, 20, 60, 60), 150), (box(140, 20, 180, 60), 150)]
    )
    u = _units(comm, homes, roads)
    assert any("carried on" in n for n in u.notes)
    south = [s for s, c in zip(_sides(u, 100.0), u.cells, strict=True) if c.bounds[1] < 80 - 1e-6]
    assert "both" not in south
    # the border between the two homes lies wholly on the road (its end carried on)
    k = int(np.argmax(u.edge_arterial))
    full = 100.0 if ahead == "edge" else 80.0
    assert u.edge_length[k] == pytest.approx(full)
    assert u.edge_arterial[k] == pytest.approx(full)
    # a street stopping short is a dead end like any other: not carried on
    u2 = _units(comm, _HOMES, [(LineString([(100, -10), (100, 92)]), "residential")])
    assert not any("carried on" in n for n in u2.notes)
    assert "both" in _sides(u2, 100.0)


def test_arterial_dead_end_never_inside_a_cell_and_its_grid_is_named():
    # a primary road runs 130 m into a 200 x 300 block and stops; straight ahead a
    # building stands in the way to the edge, so nothing carries it on: it cuts no land,
    # but no cell straddles it, and the one grid holding it is named as forced
    comm = box(0, 0, 200, 300)
    road = LineString([(100, -10), (100, 130)])
    homes = [
        (box(30, 40, 70, 100), 150),
        (box(130, 40, 170, 100), 150),
        (box(90, 200, 110, 220), 0),
    ]
    u = _units(comm, homes, [(road, "primary")])
    assert not any("carried on" in n for n in u.notes)
    inside = shapely.difference(
        shapely.intersection(road, u.cells), shapely.buffer(shapely.boundary(u.cells), 0.05)
    )
    assert shapely.length(inside).max() == pytest.approx(0.0)
    # 130 m of road in the community, all of it on cell borders (edges are sampled at three
    # points on every piece of at most 10 m: the cell edge carried on past the road's end
    # counts up to 5 m more, and the piece those 5 m end in up to a third of its length)
    assert 130.0 - 1.0 <= float(u.edge_arterial.sum()) <= 130.0 + 5.0 + 10.0 / 3.0

    layers = _layers(comm, homes, [(road, "primary")])
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert len(plan.grids) == 1 and bool(plan.grids["arterial_forced"].iloc[0])
    code = plan.grids["grid_code"].iloc[0]
    note = plan.report.communities.set_index("community_id").loc["c1", "notes"]
    assert f"grid {code} a main road ends inside the grid (13" in str(note)
    o = plan.report.overall
    assert o["n_grids_arterial_inside"] == 0 and o["n_grids_arterial_forced"] == 1


def test_empty_median_between_carriageways_stays_whole():
    # a dual carriageway (x = 100 and x = 115) with a 15 m median: the median is not split
    # down the middle between the homes either side (that would put both carriageways
    # inside grids); it stays one cell and joins one side, its far carriageway along
    comm = box(0, 0, 215, 100)
    roads = [
        (LineString([(100, -10), (100, 110)]), "primary"),
        (LineString([(115, -10), (115, 110)]), "primary"),
    ]
    homes = [
        (box(20, 10, 80, 40), 150),
        (box(20, 60, 80, 90), 150),
        (box(135, 10, 195, 40), 150),
        (box(135, 60, 195, 90), 150),
    ]
    u = _units(comm, homes, roads)
    median = [c for c in u.cells if c.bounds[0] >= 100 - 1e-6 and c.bounds[2] <= 115 + 1e-6]
    assert len(median) == 1
    assert median[0].area == pytest.approx(1500.0)
    layers = _layers(comm, homes, roads)
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    assert sorted(plan.grids["households"]) == [300, 300]
    o = plan.report.overall
    assert o["n_grids_arterial_inside"] == 0 and o["arterial_inside_m"] == pytest.approx(0.0)
    assert o["arterial_along_edge_m"] == pytest.approx(90.0)


@pytest.mark.parametrize(("peak", "through"), [(223.0, 0.0), (235.0, 317.0)])
def test_carriageways_parting_at_a_junction_stay_along_the_border(peak, through):
    # the border x = 200 lies on one carriageway; the other runs 15 m east of it and bulges
    # out for 16 m of its course: to 23 m off (8.5 m of it out of the 20 m zone, within the
    # 10 m slack) it still runs along the border; to 35 m off it runs through the grid
    comm = box(0, 0, 400, 300)
    roads = [
        (LineString([(200, -10), (200, 310)]), "primary"),
        (LineString([(215, -10), (215, 140), (peak, 148), (215, 156), (215, 310)]), "primary"),
    ]
    rep = _two_grid_report(comm, roads)
    g = rep.grids.set_index("grid_code")
    assert g.loc["g2", "arterial_inside_m"] == pytest.approx(through, abs=0.5)
    assert rep.overall["n_grids_arterial_inside"] == (1 if through else 0)


@pytest.mark.parametrize(("outer", "through", "along"), [(True, 0.0, 290.0), (False, 290.0, 0.0)])
def test_carriageway_beside_a_border_on_a_path_in_the_median_is_along_it(outer, through, along):
    # a dual carriageway x = 200 (outer) and x = 215 (inner, in g2); the border lies on the
    # outer one up to y = 200, then steps 7 m east onto a cycle path in the median (on no
    # arterial): there the inner carriageway runs 8 m from the border, beside the outer
    # one 15 m off outside the grid, for 60 m out of the 20 m zone; it is the same road
    # along the border. Without the outer carriageway the border runs 8–15 m beside a
    # single road on no road, and the road runs through g2 (300 m less 5 m at each edge)
    comm = box(0, 0, 400, 300)
    roads = [(LineString([(215, -10), (215, 310)]), "primary")]
    if outer:
        roads.append((LineString([(200, -10), (200, 310)]), "primary"))
    roads.append((LineString([(207, 200), (207, 310)]), "cycleway"))
    west = shapely.union(box(0, 0, 200, 300), box(200, 200, 207, 300))
    rep = _two_grid_report(comm, roads, west=west)
    g = rep.grids.set_index("grid_code")
    assert g.loc["g2", "arterial_inside_m"] == pytest.approx(through)
    assert g.loc["g2", "arterial_along_edge_m"] == pytest.approx(along)
    assert g.loc["g1", "arterial_inside_m"] == pytest.approx(0.0)
    assert rep.overall["n_grids_arterial_inside"] == (1 if through else 0)


def test_compound_drawn_across_a_main_road_is_one_unit_on_each_side():
    # a compound outline (OSM landuse) drawn across a secondary road at x = 100: its
    # homes west (150 households) and east (150) are two units, never one across the road
    from gridmap.partition.units import build_units

    comm = box(0, 0, 200, 100)
    b = pd.DataFrame(
        {
            "building_id": ["w", "e"],
            "households": [150, 150],
            "compound_id": ["k", "k"],
            "geometry": [box(20, 20, 60, 80), box(140, 20, 180, 80)],
        }
    )
    comp = pd.DataFrame({"compound_id": ["k"], "geometry": [box(0, 0, 200, 100)]})
    road = LineString([(100, -10), (100, 110)])
    u = build_units(comm, b, roads=np.array([road]), road_classes=["secondary"], compounds=comp)
    assert u.n == 2 and sorted(u.households.tolist()) == [150, 150]
    assert u.compound.tolist() == ["k", "k"]
    assert u.edge_arterial.tolist() == pytest.approx([100.0])
    # along a residential street the compound stays one unit
    u2 = build_units(comm, b, roads=np.array([road]), road_classes=["residential"], compounds=comp)
    assert u2.n == 1 and u2.households.tolist() == [300]


def test_strip_beside_a_main_road_joins_the_side_it_borders_off_the_road():
    # units: homes A (0) | arterial | strip (1) ; the strip touches site B (2) along a
    # 150 m edge of which only 40 m runs on the road (it wraps round the road's end), and
    # borders A for 200 m all on the road: it joins B, on its own side, not A across
    from types import SimpleNamespace

    u = SimpleNamespace(
        households=np.array([300, 0, 0]),
        area=np.array([40_000.0, 2_000.0, 30_000.0]),
        perimeter=np.array([800.0, 420.0, 700.0]),
        exterior=np.zeros(3),
        edges=np.array([[0, 1], [1, 2], [0, 2]]),
        edge_length=np.array([200.0, 150.0, 200.0]),
        edge_arterial=np.array([200.0, 40.0, 200.0]),
    )
    p = arterial_pieces(u, min_households=200, dedicated_area=50_000.0)
    assert p.piece.tolist() == [0, 1, 1]
    assert p.dedicated.tolist() == [False, True, True]
    # a median strip, on the road on both sides, still joins the side it borders longest
    u.edge_arterial = np.array([200.0, 150.0, 200.0])
    assert arterial_pieces(u, min_households=200, dedicated_area=50_000.0).piece.tolist() == [
        0,
        0,
        1,
    ]


def test_strips_between_carriageways_that_end_inside_a_piece_are_a_dead_end():
    # a dual carriageway with a median (unit 1) and a slip lane strip (unit 2) runs into
    # piece 0 and stops: the strips border piece 0 only (and each other), so the 300 m of
    # road around them separate no land and the grid holding them is named as forced
    from types import SimpleNamespace

    from gridmap.partition.pieces import DEAD_END_REASON, forced_grids

    u = SimpleNamespace(
        households=np.array([300, 0, 0]),
        area=np.array([40_000.0, 1_500.0, 1_000.0]),
        perimeter=np.array([800.0, 330.0, 320.0]),
        exterior=np.array([100.0, 0.0, 0.0]),
        edges=np.array([[0, 1], [0, 2], [1, 2]]),
        edge_length=np.array([170.0, 160.0, 150.0]),
        edge_arterial=np.array([150.0, 150.0, 150.0]),
    )
    p = arterial_pieces(u, min_households=200)
    assert p.piece.tolist() == [0, 0, 0]
    why = forced_grids(np.zeros(3, dtype=int), p, u.households)
    assert list(why) == [0] and why[0].startswith(f"{DEAD_END_REASON} (450 m")
    # the same median between piece 0 and a second inhabited piece 3 separates land: no name
    u2 = SimpleNamespace(
        households=np.array([300, 0, 0, 300]),
        area=np.array([40_000.0, 1_500.0, 1_000.0, 40_000.0]),
        perimeter=np.array([800.0, 330.0, 320.0, 800.0]),
        exterior=np.array([100.0, 0.0, 0.0, 100.0]),
        edges=np.array([[0, 1], [0, 2], [1, 2], [1, 3]]),
        edge_length=np.array([170.0, 160.0, 150.0, 150.0]),
        edge_arterial=np.array([150.0, 150.0, 150.0, 150.0]),
    )
    p2 = arterial_pieces(u2, min_households=200)
    assert p2.inner_edges is None
    assert forced_grids(np.array([0, 0, 0, 1]), p2, u2.households) == {}


def test_island_between_forking_main_roads_is_named_and_a_median_is_not():
    # a secondary road x = 200 runs north-south; a primary road forks off it at (200, 100)
    # and runs 28.8° off it to the community's southern edge at (255, 0). The empty
    # island between them (2,750 m², below a 0.5 ha site) has to join a grid on one side:
    # the primary road then runs through that grid (diverging, not a median beside its
    # border), and the grid is named as forced with the reason
    comm = box(0, 0, 400, 300)
    roads = [
        (LineString([(200, -10), (200, 310)]), "secondary"),
        (LineString([(200, 100), (260.5, -10)]), "primary"),
    ]
    homes = [
        (box(40, 60, 100, 120), 150),
        (box(40, 180, 100, 240), 150),
        (box(300, 100, 360, 160), 150),
        (box(300, 200, 360, 260), 150),
    ]
    layers = _layers(comm, homes, roads)
    plan = partition(layers, min_households=200, max_households=500)
    assert_valid_plan(plan, layers, min=200, max=500)
    g = plan.grids.sort_values("grid_code")
    assert sorted(g["households"]) == [300, 300]
    assert sorted(round(a) for a in g.area) == [60_000, 60_000]
    east = g[g.geometry.bounds["minx"] >= 200 - 1e-6].iloc[0]
    west = g[g.geometry.bounds["maxx"] <= 200 + 1e-6].iloc[0]
    # the island joins the east grid, across the 114.1 m primary road, less the 5 m rims
    # of the border it leaves at 28.8° (10.4 m) and of the edge it meets at 61.2° (5.7 m)
    assert east["arterial_inside_m"] == pytest.approx(98.0, abs=0.1)
    assert bool(east["arterial_forced"]) and not bool(west["arterial_forced"])
    note = str(plan.report.communities.set_index("community_id").loc["c1", "notes"])
    assert f"grid {east['grid_code']} land without households across a main road" in note
    assert "joined the grid (98 m of it inside): a verge, a median or the island" in note
    o = plan.report.overall
    assert o["n_grids_arterial_inside"] == 0 and o["n_grids_arterial_forced"] == 1

    # a median between parallel carriageways joined the same way is along the border:
    # nothing to name
    roads2 = [
        (LineString([(200, -10), (200, 310)]), "primary"),
        (LineString([(215, -10), (215, 310)]), "primary"),
    ]
    plan2 = partition(_layers(comm, homes, roads2), min_households=200, max_households=500)
    assert not plan2.grids["arterial_forced"].any()
    assert plan2.report.overall["n_grids_arterial_inside"] == 0
    assert "land without households" not in str(plan2.report.communities["notes"].tolist())


def test_island_given_to_a_dedicated_site_across_a_main_road_is_named():
    # the fork of the test above with no homes east of x = 200: the east land is a site
    # of its own (专属网格, 6 ha without households); the island joins it across the
    # primary road, which then runs 98.0 m through the site's grid: named there too
    comm = box(0, 0, 400, 300)
    roads = [
        (LineString([(200, -10), (200, 310)]), "secondary"),
        (LineString([(200, 100), (260.5, -10)]), "primary"),
    ]
    homes = [(box(40, 60, 100, 120), 150), (box(40, 180, 100, 240), 150)]
    layers = _layers(comm, homes, roads)
    plan = partition(layers, min_households=200, max_households=500)
    g = plan.grids.set_index("kind")
    assert sorted(plan.grids["kind"]) == ["dedicated", "residential"]
    assert g.loc["dedicated", "geometry"].area == pytest.approx(60_000.0)
    assert g.loc["dedicated", "arterial_inside_m"] == pytest.approx(98.0, abs=0.1)
    assert bool(g.loc["dedicated", "arterial_forced"])
    assert not bool(g.loc["residential", "arterial_forced"])
    o = plan.report.overall
    assert o["n_grids_arterial_inside"] == 0 and o["n_grids_arterial_forced"] == 1
