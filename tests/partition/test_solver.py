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
