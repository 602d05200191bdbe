from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import LineString, Point, box

from gridmap.partition.units import EDGE_COST, build_units


def frame(rows):
    return pd.DataFrame(
        {
            "building_id": [r[0] for r in rows],
            "geometry": [r[1] for r in rows],
            "households": [r[2] for r in rows],
            "compound_id": [r[3] if len(r) > 3 else None for r in rows],
        }
    )


def row_of_three():
    return frame(
        [
            ("a", box(10, 10, 30, 30), 50),
            ("b", box(60, 10, 80, 30), 60),
            ("c", box(110, 10, 130, 30), 70),
        ]
    )


def test_cells_tile_the_community_and_keep_buildings_whole():
    comm = box(0, 0, 140, 40)
    u = build_units(comm, row_of_three(), roads=[LineString([(100, -5), (100, 45)])])
    assert u.n == 3
    assert shapely.area(u.cells).sum() == pytest.approx(5600, abs=1e-6)
    union = shapely.union_all(u.cells)
    assert shapely.area(shapely.symmetric_difference(union, comm)) < 1e-6
    b = row_of_three()
    for bid, geom in zip(b["building_id"], b["geometry"], strict=True):
        cell = u.cells[u.members.set_index("building_id").loc[bid, "cell"]]
        assert shapely.area(shapely.difference(geom, cell)) < 1e-6  # never cut
    assert sorted(u.households.tolist()) == [50, 60, 70]


def test_edge_costs_cheap_along_roads():
    u = build_units(box(0, 0, 140, 40), row_of_three(), roads=[LineString([(100, -5), (100, 45)])])
    # one edge along the road (40 m, cheap), one between buildings (40 m, full price)
    assert sorted(u.edge_length.tolist()) == pytest.approx([40.0, 40.0], abs=1e-2)
    assert sorted(u.edge_cost.tolist()) == pytest.approx([40 * EDGE_COST["road"], 40.0], abs=1e-2)
    assert sorted(u.edge_road.tolist()) == pytest.approx([0.0, 40.0], abs=1e-2)
    assert u.exterior.sum() == pytest.approx(2 * 140 + 2 * 40)


def test_road_that_also_touches_the_edge_at_a_point_still_cuts():
    # the road crosses at x = 100, runs round outside and comes back to touch the bottom
    # edge at (120, 0): clipped to the community it is a line and a point, and the line
    # still cuts the land (it was dropped with the point, leaving one block)
    road = LineString([(100, -5), (100, 45), (150, 45), (150, -20), (120, -20), (120, 0)])
    assert shapely.intersection(road, box(0, 0, 140, 40)).geom_type == "GeometryCollection"
    u = build_units(box(0, 0, 140, 40), row_of_three(), roads=[road])
    assert sorted(u.edge_road.tolist()) == pytest.approx([0.0, 40.0], abs=1e-2)
    assert sorted(u.edge_cost.tolist()) == pytest.approx([40 * EDGE_COST["road"], 40.0], abs=1e-2)
    cells_crossed = shapely.length(
        shapely.difference(
            shapely.intersection(LineString([(100, 0), (100, 40)]), u.cells),
            shapely.buffer(shapely.boundary(u.cells), 0.01),
        )
    )
    assert cells_crossed.max() == pytest.approx(0.0)


def test_lake_stays_a_hole():
    comm = box(0, 0, 200, 100).difference(box(80, 30, 120, 70))
    b = frame([("a", box(10, 10, 40, 40), 10), ("b", box(150, 60, 180, 90), 10)])
    u = build_units(comm, b)
    assert shapely.area(u.cells).sum() == pytest.approx(comm.area)
    assert shapely.area(shapely.intersection(shapely.union_all(u.cells), box(81, 31, 119, 69))) == 0


def test_overlapping_buildings_share_one_cell_and_crossing_ones_are_clipped():
    comm = box(0, 0, 100, 50)
    b = frame(
        [
            ("a", box(10, 10, 30, 30), 20),
            ("a2", box(25, 10, 45, 30), 20),  # overlaps a
            ("c", box(90, 10, 120, 30), 30),  # crosses the community edge
        ]
    )
    u = build_units(comm, b)
    m = u.members.set_index("building_id")
    assert m.loc["a", "cell"] == m.loc["a2", "cell"]
    assert u.n == 2
    assert any("overlapping" in n for n in u.notes)
    assert any("cross the community boundary" in n for n in u.notes)
    assert shapely.area(u.cells).sum() == pytest.approx(comm.area)


def test_compound_that_fits_is_one_unit_else_split():
    comm = box(0, 0, 200, 50)
    comp = pd.DataFrame({"compound_id": ["k1"], "geometry": [box(0, 0, 100, 50)]})
    rows = [
        ("a", box(10, 10, 30, 30), 100, "k1"),
        ("b", box(60, 10, 80, 30), 100, "k1"),
        ("c", box(120, 10, 140, 30), 100),
        ("d", box(160, 10, 180, 30), 100),
    ]
    u = build_units(comm, frame(rows), compounds=comp, max_households=500)
    assert u.n == 3 and sorted(u.households.tolist()) == [100, 100, 200]
    u2 = build_units(comm, frame(rows), compounds=comp, min_households=50, max_households=150)
    assert u2.n == 4
    assert any("compound(s) above 150" in n for n in u2.notes)


def test_tower_split_by_units_proportionally():
    comm = box(0, 0, 100, 100)
    b = frame([("t", box(30, 30, 70, 50), 600)])
    hh = pd.DataFrame(
        {
            "household_id": [f"h{i}" for i in range(600)],
            "building_id": "t",
            "unit": [str(1 + i // 150) for i in range(600)],
            "floor": [float(1 + (i % 150) // 5) for i in range(600)],
        }
    )
    u = build_units(comm, b, households=hh, min_households=200, max_households=500)
    m = u.members
    assert m["part"].tolist() == ["units 1-2", "units 3-4"]
    assert m["households"].tolist() == [300, 300]
    areas = shapely.area(u.cells[m["cell"].to_numpy()])
    assert areas[0] == pytest.approx(areas[1], rel=1e-6)
    assert shapely.area(u.cells).sum() == pytest.approx(comm.area)
    assert len(u.household_parts) == 600
    assert u.household_parts["h0"] == 0 and u.household_parts["h599"] == 1
    assert any("split into 2 parts by unit/entrance" in n for n in u.notes)


def test_tower_split_by_floors_without_household_layer():
    b = frame([("t", box(30, 30, 70, 50), 600)]).assign(levels=24.0)
    u = build_units(box(0, 0, 100, 100), b, min_households=200, max_households=500)
    assert u.members["part"].tolist() == ["floors 1-12", "floors 13-24"]
    assert any("floor ranges" in n for n in u.notes)


def test_no_buildings_no_roads_is_one_empty_unit():
    u = build_units(box(0, 0, 50, 50), frame([]))
    assert u.n == 1 and u.households.tolist() == [0]
    assert len(u.edges) == 0


def test_walled_strip_goes_to_nearest_buildings_not_a_ring():
    # a compound wall inset from the block edge must not create an enclosing ring cell
    comm = box(0, 0, 200, 100)
    wall = box(20, 20, 180, 80)
    comp = pd.DataFrame({"compound_id": ["k"], "geometry": [wall]})
    rows = [("a", box(40, 40, 60, 60), 100, "k"), ("b", box(140, 40, 160, 60), 100, "k")]
    u = build_units(
        comm,
        frame(rows),
        compounds=comp,
        barriers=[wall.exterior],
        min_households=50,
        max_households=150,
    )
    assert u.n == 2
    assert (u.exterior > 0).all()  # both touch the community edge: no ring around them
    assert shapely.area(u.cells).sum() == pytest.approx(comm.area)


def test_multipolygon_community_parts_are_all_covered():
    comm = shapely.MultiPolygon([box(0, 0, 50, 50), box(100, 0, 150, 50)])
    b = frame([("a", box(10, 10, 20, 20), 10), ("b", box(110, 10, 120, 20), 10)])
    u = build_units(comm, b)
    assert shapely.area(u.cells).sum() == pytest.approx(comm.area)
    assert len(u.edges) == 0
    assert np.isclose(u.area, 2500).all()


def test_point_geometry_is_not_needed():
    # households points are optional for the tessellation
    b = frame([("a", box(10, 10, 20, 20), 10)])
    assert build_units(Point(0, 0).buffer(100), b).n == 1


def test_cleaning_that_leaves_a_cell_in_pieces_still_gives_a_valid_coverage():
    from gridmap.partition.units import _clean_cells

    # a's tail runs under b into a gap between c and d: cleaning hands the part
    # under b to b and leaves a in two pieces (before: cleaning was dropped
    # and the cells stayed an invalid coverage, so grids came out in pieces)
    a = box(0, 0, 10, 10).union(box(10, 4, 30, 6))
    cells = np.array(
        [a, box(10, 0, 20, 10), box(20, 0, 30, 3.9), box(20, 6.1, 30, 10)], dtype=object
    )
    assert not shapely.coverage_is_valid(cells)
    out, block, mem, valid = _clean_cells(cells, np.zeros(4, dtype=np.int64), [0, 1, 2, 3])
    assert valid and shapely.coverage_is_valid(out)
    assert (shapely.get_type_id(out) == 3).all()
    assert len(out) == 5 and mem == [0, 1, 2, 3] and block.tolist() == [0] * 5
    assert shapely.equals(out[0], box(0, 0, 10, 10))  # a keeps its main piece
    assert shapely.equals(out[4], box(20, 4, 30, 6))  # the cut-off tail is an empty cell
    assert shapely.area(out).sum() == pytest.approx(2 * 100 + 2 * 39 + 20, abs=1e-9)


def test_outer_edge_leaves_out_the_lake_shore():
    comm = box(0, 0, 200, 100).difference(box(80, 30, 120, 70))
    b = frame([("a", box(10, 10, 40, 40), 10), ("b", box(150, 60, 180, 90), 10)])
    u = build_units(comm, b)
    assert u.exterior.sum() == pytest.approx(600 + 160)  # outer edge + lake shore
    assert u.outer.sum() == pytest.approx(600, abs=0.1)


def test_polygons_nested_in_a_collection_are_kept():
    from gridmap.partition.units import _polys

    # make_valid may answer a GeometryCollection holding a MultiPolygon; taking
    # only its top-level parts lost those polygons and left a gap in the plan
    inner = shapely.MultiPolygon([box(0, 0, 1, 1), box(2, 0, 3, 1)])
    geom = shapely.GeometryCollection([inner, box(5, 0, 6, 1), LineString([(0, 2), (1, 2)])])
    polys = _polys(geom)
    assert len(polys) == 3
    assert sum(p.area for p in polys) == pytest.approx(3.0)


def test_dissolve_keeps_the_area_of_pieces_that_do_not_share_vertices():
    from gridmap.partition.units import _dissolve

    # two faces meet along an edge where only one of them has a vertex in the middle:
    # coverage union assumes shared vertices; the dissolve must give one polygon, all the area
    left = shapely.Polygon([(0, 0), (10, 0), (10, 5), (10, 10), (0, 10)])
    right = box(10, 0, 20, 10)
    out = _dissolve(np.array([left, right], dtype=object))
    assert shapely.area(out) == pytest.approx(200.0)
    assert shapely.get_type_id(out) == 3


def test_the_cut_between_two_buildings_of_a_block_is_drawn_smooth():
    # two round buildings (8 segments a quarter): the Voronoi cut between their
    # outlines zigzags round the sampled points (21 vertices unsmoothed)
    b = frame([("a", Point(25, 30).buffer(12, 8), 50), ("b", Point(72, 26).buffer(14, 8), 60)])
    comm = box(0, 0, 100, 60)
    u = build_units(comm, b)
    assert u.n == 2
    cut = shapely.line_merge(shapely.intersection(*shapely.boundary(u.cells)))
    assert shapely.get_type_id(cut) == 1  # one line from edge to edge
    assert len(shapely.get_coordinates(cut)) <= 4
    union = shapely.union_all(u.cells)
    assert shapely.area(shapely.symmetric_difference(union, comm)) < 1e-6
    for bid, geom in zip(b["building_id"], b["geometry"], strict=True):
        cell = u.cells[u.members.set_index("building_id").loc[bid, "cell"]]
        assert shapely.area(shapely.difference(geom, cell)) < 1e-6
