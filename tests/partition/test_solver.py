from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gridmap.partition.solver import Weights, choose_k, solve


def grid_graph(nx: int, ny: int, hh: int | np.ndarray = 100, road_cols: tuple[int, ...] = ()):
    """nx × ny unit squares of 10 m; edges crossing a column in road_cols are cheap."""
    n = nx * ny
    idx = np.arange(n).reshape(ny, nx)
    horiz = np.column_stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()])
    vert = np.column_stack([idx[:-1, :].ravel(), idx[1:, :].ravel()])
    edges = np.vstack([horiz, vert])
    length = np.full(len(edges), 10.0)
    cost = length.copy()
    col = np.r_[np.tile(np.arange(1, nx), ny), np.full(len(vert), -1)]
    cost[np.isin(col, road_cols)] *= 0.15
    deg = np.bincount(edges.ravel(), minlength=n)
    xs, ys = np.meshgrid(np.arange(nx) * 10.0 + 5, np.arange(ny) * 10.0 + 5)
    return SimpleNamespace(
        households=np.broadcast_to(np.asarray(hh), (n,)).astype(np.int64).copy(),
        area=np.full(n, 100.0),
        exterior=(4 - deg) * 10.0,
        cx=xs.ravel(),
        cy=ys.ravel(),
        edges=edges,
        edge_length=length,
        edge_cost=cost,
    )


@pytest.mark.parametrize(
    ("h", "lo", "hi", "t", "k"),
    [
        (5500, 200, 500, 350, 16),
        (150, 200, 500, 350, 1),
        (0, 200, 500, 350, 1),
        (1000, 200, 500, 350, 3),
        (520, 300, 500, 400, 2),
        (1100, 400, 500, 450, 3),
    ],
)
def test_choose_k(h, lo, hi, t, k):
    assert choose_k(h, lo, hi, t) == k


def test_strip_pinned():
    u = grid_graph(4, 1)
    labels, notes = solve(u, min_households=150, max_households=250)
    assert labels.tolist() == [0, 0, 1, 1]
    assert notes == []


def test_lattice_in_band_contiguous_and_cuts_on_road():
    u = grid_graph(8, 4, road_cols=(4,))
    labels, _ = solve(u, min_households=1000, max_households=2000, seed=0)
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1] * 4  # the cut runs along the road
    h = np.bincount(labels, weights=u.households)
    assert h.tolist() == [1600, 1600]


def test_every_grid_contiguous_and_in_band_on_bigger_lattice():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(5)
    u = grid_graph(20, 15, hh=rng.integers(10, 60, 300))
    labels, notes = solve(u, min_households=200, max_households=500, seed=3)
    h = np.bincount(labels, weights=u.households)
    assert ((h >= 200) & (h <= 500)).all()
    assert len(h) == choose_k(int(u.households.sum()), 200, 500, 350)
    for g in range(len(h)):
        nodes = np.flatnonzero(labels == g)
        pos = {v: i for i, v in enumerate(nodes)}
        e = [(pos[a], pos[b]) for a, b in u.edges if a in pos and b in pos]
        m = coo_matrix((np.ones(len(e)), tuple(np.array(e).T)), shape=(len(nodes),) * 2)
        assert connected_components(m, directed=False)[0] == 1


def test_deterministic_for_seed():
    u = grid_graph(12, 9, hh=np.random.default_rng(1).integers(10, 60, 108))
    a, _ = solve(u, min_households=200, max_households=500, seed=7)
    b, _ = solve(u, min_households=200, max_households=500, seed=7)
    assert a.tolist() == b.tolist()


def test_fixed_number_of_grids():
    u = grid_graph(6, 6)
    labels, _ = solve(u, min_households=100, max_households=3600, n_grids=4)
    assert len(np.unique(labels)) == 4
    assert np.bincount(labels, weights=u.households).tolist() == [900] * 4


def test_separate_pieces_are_solved_on_their_own():
    u = grid_graph(4, 1)
    u.edges = np.array([[0, 1], [2, 3]])
    u.edge_length = u.edge_cost = np.full(2, 10.0)
    labels, notes = solve(u, min_households=150, max_households=250)
    assert labels.tolist() == [0, 0, 1, 1]
    assert "2 separate pieces" in notes[0]


def test_below_minimum_is_one_grid_with_a_note():
    u = grid_graph(2, 1, hh=50)
    labels, notes = solve(u, min_households=200, max_households=500)
    assert labels.tolist() == [0, 0]
    assert "below the minimum 200" in notes[-1]


def test_warm_start_keeps_grids_and_repairs_band():
    u = grid_graph(8, 2)
    initial = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 2)
    # unchanged data: nothing moves
    labels, _ = solve(u, min_households=500, max_households=900, initial=initial)
    assert labels.tolist() == initial.tolist()
    # growth on the left pushes grid 0 above the maximum: only a little moves
    u.households[[0, 8, 1, 9]] = 150
    labels, _ = solve(u, min_households=500, max_households=1000, initial=initial)
    h = np.bincount(labels, weights=u.households)
    assert ((h >= 500) & (h <= 1000)).all()
    kept = (labels == initial) * u.households
    assert kept.sum() / u.households.sum() >= 0.8


def test_weights_are_a_parameter():
    u = grid_graph(6, 1)
    a, _ = solve(u, min_households=150, max_households=450, weights=Weights(balance=0.0))
    assert len(np.unique(a)) == 2


def ring_and_courtyard(ring_hh: int, court_hh: int) -> SimpleNamespace:
    """Unit 0: a compound kept whole that surrounds unit 1, a courtyard compound."""
    return SimpleNamespace(
        households=np.array([ring_hh, court_hh]),
        area=np.array([8000.0, 1000.0]),
        exterior=np.array([400.0, 0.0]),
        cx=np.array([50.0, 50.0]),
        cy=np.array([50.0, 50.0]),
        edges=np.array([[0, 1]]),
        edge_length=np.array([120.0]),
        edge_cost=np.array([120.0]),
    )


def test_enclave_that_fits_the_band_joins_its_encloser():
    # a warm start with the courtyard as its own grid: merging is in band, so no enclave
    u = ring_and_courtyard(150, 100)
    labels, notes = solve(u, min_households=100, max_households=400, initial=np.array([0, 1]))
    assert labels.tolist() == [0, 0]
    assert not any("enclave" in n or "enclosed" in n for n in notes)


def test_unavoidable_enclave_says_why():
    u = ring_and_courtyard(400, 300)  # 700 households: two grids, the courtyard inside
    labels, notes = solve(u, min_households=200, max_households=500)
    assert labels.tolist() == [0, 1] or labels.tolist() == [1, 0]
    assert notes == [
        "enclave unavoidable: a grid of 300 households lies inside a grid of 400 households "
        "(together 700 > maximum 500): the land around it is one indivisible unit (a compound "
        "or building kept whole), so no way out can be opened"
    ]


def test_grid_wrapped_around_a_lake_is_opened():
    import pandas as pd
    import shapely
    from shapely import box

    from gridmap.partition.units import build_units

    # 5 x 5 plots of 50 m around a lake (the centre plot); b12, on the lake's
    # south shore, is a grid of its own inside grid 0 — it touches the lake, not
    # the outside, so it is an enclave (before: the lake shore counted as outside)
    comm = box(0, 0, 250, 250).difference(box(100, 100, 150, 150))
    rows = [
        (f"b{j}{i}", box(50 * i + 10, 50 * j + 10, 50 * i + 40, 50 * j + 40), 100)
        for j in range(5)
        for i in range(5)
        if (i, j) != (2, 2)
    ]
    b = pd.DataFrame(
        {
            "building_id": [r[0] for r in rows],
            "geometry": [r[1] for r in rows],
            "households": [300 if r[0] == "b12" else r[2] for r in rows],
        }
    )
    u = build_units(comm, b)
    unit = dict(zip(u.members["building_id"], u.cell_unit[u.members["cell"]], strict=True))
    initial = np.zeros(u.n, dtype=np.int64)
    initial[unit["b12"]] = 1
    labels, _ = solve(u, min_households=200, max_households=2300, target=1000, initial=initial)
    cells = labels[u.cell_unit]
    grids = [shapely.union_all(u.cells[cells == g]) for g in np.unique(cells)]
    assert len(grids) == 2
    assert [shapely.get_type_id(g) for g in grids] == [3, 3]
    assert [len(g.interiors) for g in grids] == [0, 0]  # nobody wraps lake + grid
    h = np.bincount(labels, weights=u.households)
    assert ((h >= 200) & (h <= 2300)).all()


def test_recombine_recuts_two_grids_straight():
    from gridmap.partition.solver import _Solver

    # 4 x 4 units of 100 households, two grids of 800 meeting along a staircase
    u = grid_graph(4, 4)
    stairs = np.array([[0, 0, 0, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 1, 1]]).ravel()
    s = _Solver(
        u,
        min_households=700,
        max_households=900,
        target=800,
        weights=Weights(),
        rng=np.random.default_rng(0),
    )
    out = s.recombine(stairs)
    assert s.objective(out) < s.objective(stairs)
    halves = {tuple([0, 0, 1, 1] * 4), tuple([1, 1, 0, 0] * 4)}
    halves |= {tuple([0] * 8 + [1] * 8), tuple([1] * 8 + [0] * 8)}
    assert tuple(out.tolist()) in halves
    assert np.bincount(out, weights=u.households).tolist() == [800, 800]


def test_fixed_number_of_grids_says_why_grids_miss_the_band():
    u = grid_graph(3, 1)  # 300 households: one grid of 200-500 would do
    labels, notes = solve(u, min_households=200, max_households=500, n_grids=5)
    assert labels.tolist() == [0, 1, 2]
    assert notes == [
        "3 grid(s) outside the band: the number of grids is fixed (n_grids=5)",
        "n_grids=5 asked for, but only 3 grid(s) possible: the community has 3 indivisible "
        "unit(s) (buildings, building groups or compounds kept whole)",
    ]


def test_ring_grid_around_two_grids_is_opened():
    from gridmap.partition.solver import _Solver

    # 4 x 4 units: grid 0 is the outer ring, grids 1 and 2 the two halves of the
    # centre — enclosed together (they touch each other, so neither alone is an
    # "enclave" of the ring); a corridor through the ring opens them
    u = grid_graph(4, 4)
    ring = np.array([[0, 0, 0, 0], [0, 1, 2, 0], [0, 1, 2, 0], [0, 0, 0, 0]]).ravel()
    s = _Solver(
        u,
        min_households=100,
        max_households=1300,
        target=700,
        weights=Weights(),
        rng=np.random.default_rng(0),
    )
    assert s.enclosed(ring) == {1: 0, 2: 0}
    out = s.fix_holes(ring)
    assert s.enclosed(out) == {}
    assert (out != ring).sum() <= 2  # a corridor of one unit per enclosed grid at most
    h = np.bincount(out, weights=u.households)
    assert ((h >= 100) & (h <= 1300)).all()


def test_enclave_kept_when_the_number_of_grids_is_fixed():
    u = ring_and_courtyard(150, 100)
    labels, notes = solve(u, min_households=100, max_households=400, n_grids=2)
    assert sorted(labels.tolist()) == [0, 1]
    assert notes[-1] == (
        "enclave unavoidable: a grid of 100 households lies inside a grid of 150 households "
        "(together 250, within the maximum 400, but the number of grids is fixed)"
    )


def test_solve_leaves_no_pair_of_grids_to_recut():
    """Pair re-cuts run to a fixed point: no straight re-cut of two grids still scores better."""
    from gridmap.partition.solver import _Solver

    # 6 x 6 units of 20-119 households, streets along columns 1 and 4
    hh = np.random.default_rng(23).integers(20, 120, 36)
    u = grid_graph(6, 6, hh, road_cols=(1, 4))
    labels, notes = solve(u, min_households=200, max_households=500)
    assert notes == []
    h = np.bincount(labels, weights=u.households)
    assert len(h) == 6 and ((h >= 200) & (h <= 500)).all()
    s = _Solver(
        u,
        min_households=200,
        max_households=500,
        target=350,
        weights=Weights(),
        rng=np.random.default_rng(0),
    )
    assert all(s.g.connected(np.flatnonzero(labels == g)) for g in range(len(h)))
    assert np.array_equal(s.recombine(labels), labels)
    assert s.objective(labels) < -12.5  # one round of re-cuts stopped at -10.6
