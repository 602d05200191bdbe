"""Tests for gridmap.partition.cells: exact answers on tiny fixtures (the per-cell
helpers they replaced against them on whole cities: benchmarks/cells.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from shapely import GeometryCollection, LineString, MultiPolygon, Polygon, box

import gridmap.partition.cells as C  # noqa: N812


def wkb(geoms: list | np.ndarray) -> list[bytes]:
    return list(shapely.to_wkb(np.asarray(list(geoms) + [None], dtype=object)[:-1]))


def cells_wkb(out: list) -> list[tuple[bytes, int]]:
    return [(shapely.to_wkb(p), g) for p, g in out]


# --------------------------------------------------------------------------- parts


def test_polys_flattens_collections_in_order() -> None:
    a, b, c = box(0, 0, 1, 1), box(2, 0, 4, 1), box(5, 0, 8, 1)
    flat = Polygon([(0, 0), (1, 0), (2, 0), (0, 0)])  # no area
    gc = GeometryCollection([MultiPolygon([b, c]), a, LineString([(0, 0), (1, 1)]), flat])
    assert [p.area for p in C._polys(gc)] == [1.0, 2.0, 3.0]  # plain parts first
    assert [p.area for p in C._polys(a)] == [1.0]
    assert C._polys(flat) == []
    assert C._polys(Polygon()) == []


def test_polygonal_keeps_polygons_only() -> None:
    gc = GeometryCollection([box(0, 0, 2, 1), LineString([(2, 0), (3, 0)])])
    out = C._polygonal(np.array([gc, box(0, 0, 1, 1), LineString([(0, 0), (1, 1)])]))
    assert [g.area for g in out] == [2.0, 1.0, 0.0]
    assert out[2].is_empty and out[2].geom_type == "Polygon"


def test_assign_parts_largest_keeps_group() -> None:
    parts = [(box(0, 0, 1, 1), 3), (box(2, 0, 5, 1), 3), (box(6, 0, 8, 1), 3)]
    assert [g for _, g in C._assign_parts(parts, 3)] == [-1, 3, -1]
    assert C._assign_parts(parts[:1], 3) == parts[:1]


def test_dissolve_coverage_and_fallback() -> None:
    two = np.array([box(0, 0, 1, 1), box(1, 0, 3, 1)])
    assert C._dissolve(two).equals(box(0, 0, 3, 1))
    # not a coverage (different vertices along the shared edge): robust union with check
    odd = np.array([box(0, 0, 1, 2), Polygon([(1, 0), (2, 0), (2, 2), (1, 2), (1, 1), (1, 0)])])
    odd[0] = Polygon([(0, 0), (1, 0), (1, 2), (0, 2), (0, 0)])
    got = C._dissolve(odd, check=True)
    assert got.area == 4.0 and got.geom_type == "Polygon"


def test_dissolve_rows_matches_one_call_per_row() -> None:
    rows = [
        [box(0, 0, 1, 1)],
        [box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)],
        [box(0, 0, 1, 1), box(5, 5, 6, 6)],  # apart: a MultiPolygon
        [box(0, 0, 2, 2), box(1, 1, 3, 3)],  # overlapping: coverage union loses area
    ]
    geoms = np.array([g for r in rows for g in r], dtype=object)
    row = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    out = C._dissolve_rows(geoms, row, len(rows))
    assert [g.area for g in out] == [1.0, 3.0, 2.0, 7.0]
    assert [g.geom_type for g in out] == ["Polygon", "Polygon", "MultiPolygon", "Polygon"]
    for got, r in zip(out, rows, strict=True):
        assert shapely.to_wkb(got) == shapely.to_wkb(C._dissolve(np.array(r, dtype=object)))


def test_dissolve_rows_checked_matches_one_call_per_row() -> None:
    # pieces clipped from different faces: the rows that are not a valid coverage
    # (other vertices along the shared edge) take the robust union, as _dissolve does
    odd = Polygon([(1, 0), (2, 0), (2, 2), (1, 2), (1, 1), (1, 0)])
    rows = [
        [box(0, 0, 1, 2), odd],  # not a coverage
        [box(5, 0, 6, 1)],
        [box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)],  # a coverage
        [box(0, 0, 1, 2), odd, box(2, 0, 3, 2)],  # not a coverage, wider row
        [box(0, 0, 1, 1), box(5, 5, 6, 6)],  # apart: a MultiPolygon
    ]
    assert not shapely.coverage_is_valid(np.array(rows[0], dtype=object))
    geoms = np.array([g for r in rows for g in r], dtype=object)
    row = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    out = C._dissolve_rows(geoms, row, len(rows), check=True)
    assert [g.area for g in out] == [4.0, 1.0, 3.0, 6.0, 2.0]
    for got, r in zip(out, rows, strict=True):
        one = C._dissolve(np.array(r, dtype=object), check=True)
        assert shapely.to_wkb(got) == shapely.to_wkb(one)
    # all rows invalid coverages, or all single
    both = np.array(rows[0] + rows[3], dtype=object)
    two = C._dissolve_rows(both, np.repeat([0, 1], [2, 3]), 2, check=True)
    assert wkb(two) == wkb([C._dissolve(np.array(r), check=True) for r in (rows[0], rows[3])])
    assert wkb(C._dissolve_rows(geoms[2:3], np.array([0]), 1, check=True)) == wkb(geoms[2:3])


def test_dissolve_checked_joins_pieces_apart_by_a_gap_of_no_width() -> None:
    # the clips of two faces put a point of one piece a few ulps off the other's
    # segment: a valid coverage whose union, robust or not, falls apart in two
    a = Polygon([(0, 0), (1, 0), (1 - 1e-12, 1), (1, 2), (0, 2)])
    pieces = np.array([a, box(1, 0, 2, 2)], dtype=object)
    assert shapely.coverage_is_valid(pieces)
    assert shapely.union_all(pieces).geom_type == "MultiPolygon"
    out = C._dissolve_rows(pieces, np.array([0, 0]), 1, check=True)
    assert out[0].geom_type == "Polygon" and round(out[0].area, 9) == 4.0
    assert wkb(out) == wkb([C._dissolve(pieces, check=True)])
    assert C._dissolve(pieces).geom_type == "MultiPolygon"  # unchecked: as before


# --------------------------------------------------------------------------- seeds


def test_row_groups_like_numpy_unique() -> None:
    key = np.array([[1.0, 2.0], [0.0, 5.0], [1.0, 2.0], [-0.0, 5.0], [1.0, 1.0]])
    order, gid = C._row_groups(key)
    assert order.tolist() == [1, 3, 4, 0, 2]
    assert gid.tolist() == [0, 0, 1, 2, 2]
    assert C._first_of_rows(key).tolist() == [0, 1, 4]
    _, first = np.unique(key, axis=0, return_index=True)
    assert C._first_of_rows(key).tolist() == sorted(first.tolist())


def test_seed_points_exact() -> None:
    # a 12 m square: perimeter 48, one point every 4 m, the closing one dropped
    xy, g = C._seed_points(np.array([box(0, 0, 12, 12)]), np.array([7]))
    assert len(xy) == 12 and g.tolist() == [7] * 12
    corners = np.round(xy, 2)
    assert np.abs(corners[0] - [12 - 0.3 / np.sqrt(2) * 1, 0.3 / np.sqrt(2)]).max() < 0.01
    # touching and overlapping buildings: one seed per place, the first building keeps it
    geoms = np.array([box(0, 0, 10, 10), box(10, 0, 20, 10), box(5, 5, 15, 15)])
    xy, g = C._seed_points(geoms, np.array([0, 1, 1]))
    assert len(np.unique(xy, axis=0)) == len(xy)
    assert set(g.tolist()) == {0, 1}


# --------------------------------------------------------------------------- cells


def test_cells_of_block_two_buildings_halve_the_block() -> None:
    blk = box(0, 0, 20, 10)
    seeds = np.array([[2.0, 5.0], [4.0, 5.0], [16.0, 5.0], [18.0, 5.0]])
    out = C._cells_of_block(
        blk, np.array([blk]), seeds, np.array([0, 0, 1, 1]), np.zeros(4, dtype=int)
    )
    assert [(round(p.area, 9), g) for p, g in out] == [(100.0, 0), (100.0, 1)]
    assert [round(p.bounds[2], 9) for p, _ in out] == [10.0, 20.0]


def test_cells_of_block_degenerate_blocks() -> None:
    blk = MultiPolygon([box(0, 0, 10, 10), box(20, 0, 23, 10)])
    faces = np.array(list(blk.geoms))
    empty = C._cells_of_block(blk, faces, np.empty((0, 2)), np.empty(0, int), np.empty(0, int))
    assert [(p.area, g) for p, g in empty] == [(100.0, -1), (30.0, -1)]
    one = C._cells_of_block(blk, faces, np.array([[5.0, 5.0]]), np.array([4]), np.array([0]))
    assert [(p.area, g) for p, g in one] == [(100.0, 4), (30.0, -1)]


def test_cells_of_block_faces_compounds_and_empty_face() -> None:
    # block 0..40 x 0..20 cut in four faces: a compound (0..20 x 10..20) with two
    # buildings, the strip below it (one building), a walled park without buildings
    # (20..40 x 10..20) and a face with one building (20..40 x 0..10)
    blk = box(0, 0, 40, 20)
    faces = np.array(
        [box(0, 10, 20, 20), box(0, 0, 20, 10), box(20, 10, 40, 20), box(20, 0, 40, 10)]
    )
    compound = np.array([True, False, False, False])
    seeds = np.array(
        [[4.0, 15.0], [6.0, 15.0], [14.0, 15.0], [16.0, 15.0], [10.0, 4.0], [30.0, 5.0]]
    )
    group = np.array([0, 0, 1, 1, 2, 3])
    face = np.array([0, 0, 0, 0, 1, 3])
    out = C._cells_of_block(blk, faces, seeds, group, face, compound)
    assert [g for _, g in out] == [0, 1, 2, 3]
    assert round(sum(p.area for p, _ in out), 9) == 800.0
    cell = {g: p for p, g in out}
    # the compound is shared by its two buildings along x = 10
    assert cell[0].covers(box(0, 10, 10, 20)) and cell[1].covers(box(10, 10, 20, 20))
    # the strip goes to the nearest of its own building and the compound's
    assert cell[2].contains(shapely.Point(10, 1)) and cell[0].contains(shapely.Point(1, 9.9))
    # the park is shared by all buildings of the block; face 3 touches the compound
    # at (20, 10), so the compound's buildings compete for it too
    assert cell[3].contains(shapely.Point(39, 19)) and cell[1].contains(shapely.Point(21, 19))
    assert cell[3].contains(shapely.Point(30, 1))


def test_cells_of_block_draws_a_shared_diagram_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # two walled parks without buildings (faces 1 and 3) both take every seed of
    # the block: one diagram, and the cells are those of one diagram per face
    blk = box(0, 0, 60, 20)
    faces = np.array(
        [box(0, 0, 20, 20), box(20, 0, 30, 20), box(30, 0, 50, 20), box(50, 0, 60, 20)]
    )
    seeds = np.array([[4.0, 5.0], [6.0, 15.0], [14.0, 9.0], [34.0, 5.0], [36.0, 15.0], [44.0, 9.0]])
    group = np.array([0, 0, 1, 2, 2, 3])
    face = np.array([0, 0, 0, 2, 2, 2])
    calls: list[np.ndarray] = []
    real = C._same_diagram

    def spy(*args: Any) -> np.ndarray:
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(C, "_same_diagram", spy)
    shared = C._cells_of_block(blk, faces, seeds, group, face)
    assert calls[-1].tolist() == [0, 1, 2, 1]  # jobs: faces 0, 1, 2, 3; face 3 reuses face 1's
    monkeypatch.setattr(C, "_same_diagram", lambda u: np.arange(len(u)))
    each = C._cells_of_block(blk, faces, seeds, group, face)
    assert cells_wkb(shared) == cells_wkb(each)
    assert [g for _, g in shared] == [0, 1, 2, 3]
    assert round(sum(p.area for p, _ in shared), 9) == 1200.0


def test_same_diagram_shares_jobs_with_the_same_sites() -> None:
    use = [np.arange(3), np.arange(3), np.array([0, 2, 1]), np.array([0, 1]), np.arange(3)]
    assert C._same_diagram(use).tolist() == [0, 0, 2, 3, 0]
    assert C._same_diagram(use[:1]).tolist() == [0]


def test_framed_sites_keep_the_land_of_the_block() -> None:
    # the frame sites close the cells of the hull sites without moving the land
    # inside the block, here one reaching far beyond the sites on one side
    xy = np.random.default_rng(3).uniform(0, 10, size=(12, 2))
    block = box(-30, -5, 40, 12)
    framed, of, real = C._framed_sites(
        xy, np.array([12]), np.array([-30.0, -5.0]), np.array([40.0, 12.0])
    )
    assert of.tolist() == [0] * 16 and real.tolist() == [True] * 12 + [False] * 4
    closed = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(framed), ordered=True))
    plain = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=block, ordered=True)
    )
    a = shapely.intersection(closed[real], block)
    b = shapely.intersection(plain, block)
    assert shapely.area(shapely.symmetric_difference(a, b)).max() < 1e-9
    assert round(float(shapely.area(a).sum()), 9) == block.area


def test_empty_block_cells_split_between_neighbours() -> None:
    out = C._empty_block_cells(box(0, 0, 10, 10), np.array([[-1.0, 5.0], [11.0, 5.0]]))
    assert sorted(round(p.area, 1) for p in out) == [50.0, 50.0]
    assert sorted(round(p.bounds[0], 2) for p in out) == [0.0, 5.0]  # split near x = 5


# --------------------------------------------------------------------------- clean-up


def test_clean_cells_nodes_shared_edges() -> None:
    # the right cell carries a vertex at (10, 5) that the left one lacks; a crumb sliver
    left = box(0, 0, 10, 10)
    right = Polygon([(10, 0), (20, 0), (20, 10), (10, 10), (10, 5), (10, 0)])
    crumb = box(20, 0, 20.5, 1)
    cells = np.array([left, right, crumb])
    out, blk, mem, clean = C._clean_cells(cells, np.array([0, 1, 1]), [0, 1])
    assert clean and mem == [0, 1] and blk.tolist() == [0, 1]
    assert [round(c.area, 6) for c in out] == [100.0, 100.5]
    assert shapely.coverage_is_valid(np.asarray(out, dtype=object))


def test_clean_cells_splits_multipart_cells_largest_first() -> None:
    cell = MultiPolygon([box(0, 0, 1, 10), box(1, 0, 20, 10)])  # two touching parts
    parts = np.array([MultiPolygon([box(0, 0, 2, 10), box(3, 0, 10, 10)]), box(2, 0, 3, 10)])
    out, blk, mem, clean = C._clean_cells(parts, np.array([5, 6]), [0, 1])
    assert [c.area for c in out] == [70.0, 10.0, 20.0]  # largest part keeps the index
    assert blk.tolist() == [5, 6, 5] and mem == [0, 1] and clean
    assert cell.area == 200.0


def test_merge_crumbs_joins_longest_shared_edge() -> None:
    cells = np.array([box(0, 0, 10, 10), box(10, 0, 10.5, 1), box(10.5, 0, 20, 10)])
    out, blk, mem = C._merge_crumbs(cells, np.array([0, 0, 1]), np.array([0, 2]))
    # the crumb shares 1 m with both neighbours: the first one takes it
    assert [round(c.area, 6) for c in out] == [100.5, 95.0] and blk.tolist() == [0, 1]
    assert mem.tolist() == [0, 1]


# --------------------------------------------------------------------------- shared edges


def test_point_segment_distance_is_geos_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(-50, 50, size=(2000, 2)) + 4.0e5
    a = rng.uniform(-50, 50, size=(2000, 2)) + 4.0e5
    b = a + rng.uniform(-20, 20, size=(2000, 2))
    b[:20] = a[:20]  # zero-length segments
    got = C._point_segment_distance(p, a, b)
    want = shapely.distance(shapely.points(p), shapely.linestrings(np.stack([a, b], axis=1)))
    assert np.array_equal(got, want)


def test_near_guides_exact_and_like_strtree() -> None:
    pts = shapely.points([[0, 4], [0, 6], [20, 1], [0, 5], [-15, 3]])
    roads = np.array(
        [
            LineString([(-10, 0), (10, 0)]),
            LineString([(20, -5), (20, 5)]),
            shapely.MultiLineString([[(-14, 0), (-14, 20)], [(-30, 0), (-20, 0)]]),
        ]
    )
    cost, art = np.array([0.15, 0.05, 0.2]), np.array([False, True, False])
    hit, c, a = C._near_guides(pts, roads, cost, art)
    assert hit.tolist() == [True, False, True, True, True]
    assert c.tolist() == [0.15, 0.0, 0.05, 0.15, 0.2]
    assert a.tolist() == [False, False, True, False, False]
    rng = np.random.default_rng(0)
    many = shapely.points(rng.uniform(-40, 40, size=(3000, 2)))
    hit, c, a = C._near_guides(many, roads, cost, art)
    # brute force over every (point, guide) pair: near = within 5 m, the cheapest near one
    near = shapely.distance(many[:, None], roads[None, :]) <= 5.0
    assert hit.tolist() == near.any(axis=1).tolist()
    assert (
        c.tolist()
        == np.where(near, cost, np.inf)
        .min(axis=1, initial=np.inf)
        .clip(max=np.where(near.any(axis=1), np.inf, 0.0))
        .tolist()
    )
    assert a.tolist() == (near & art).any(axis=1).tolist()
    # polygons among the guides: the STRtree path
    poly = np.array([box(-1, -1, 1, 1)])
    hit, c, a = C._near_guides(pts, poly, np.array([0.3]), np.array([False]))
    assert hit.tolist() == [True, True, False, True, False]  # (0, 6) is 5 m off: on it
    assert c.tolist() == [0.3, 0.3, 0.0, 0.3, 0.0]


def test_shared_edges_exact_values() -> None:
    top = Polygon([(0, 10), (10, 10), (20, 10), (20, 12), (0, 12)])  # vertex at (10, 10)
    cells = np.array([box(0, 0, 10, 10), box(10, 0, 20, 10), top])
    road = np.array([LineString([(10, -5), (10, 3)])])
    i, j, length, on_road, cost, art = C._shared_edges_exact(
        cells, road, np.array([0.15]), np.array([True])
    )
    assert i.tolist() == [0, 0, 1] and j.tolist() == [1, 2, 2]
    assert length.tolist() == [10.0, 10.0, 10.0]
    # samples at y = 1, 5, 9 on x = 10: the first two lie within 5 m of the road
    assert on_road.round(9).tolist() == [round(20 / 3, 9), 0.0, 0.0]
    assert cost.round(9).tolist() == [1.0, 0.0, 0.0]
    assert art.round(9).tolist() == [round(20 / 3, 9), 0.0, 0.0]


def test_shared_edge_sampled_along_its_length_not_per_vertex() -> None:
    # one 100 m segment between two cells, a road on its first 38 m: three samples on
    # every 10 m (the 12 up to x = 39 and the one at x = 41 within 5 m of the road)
    cells = np.array([box(0, 0, 100, 50), box(0, 50, 100, 100)])
    road = np.array([LineString([(0, 50), (38, 50)])])
    args = (road, np.array([0.15]), np.array([True]))
    _, _, length, on_road, _, art = C._shared_edges_exact(cells, *args)
    assert length.tolist() == [100.0]
    assert on_road.round(9).tolist() == art.round(9).tolist() == [round(130 / 3, 9)]
    # the same edge with a vertex every 5 m: the same share (samples on each 5 m)
    dense = shapely.segmentize(cells, 5.0)
    assert C._shared_edges_exact(dense, *args)[3].round(9).tolist() == [round(130 / 3, 9)]


def test_shared_edges_exact_without_guides() -> None:
    cells = np.array([box(0, 0, 1, 1), box(1, 0, 2, 1)])
    out = C._shared_edges_exact(cells, np.empty(0, dtype=object), np.empty(0), np.empty(0, bool))
    assert [x.tolist() for x in out] == [[0], [1], [1.0], [0.0], [0.0], [0.0]]
