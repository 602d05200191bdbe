from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from gridmap.cases import duplicate_pairs, find_duplicates
from gridmap.errors import CRSError, LayerError

T = pd.Timestamp("2026-09-18 10:00", tz="Asia/Shanghai")
X0, Y0 = 350000.0, 3460000.0


def open_cases() -> pd.DataFrame:
    rows = [
        ("A", "noise", 0, 30.0, 0.0),  # 30 m, same day
        ("B", "noise", -6, 0.0, 49.9),  # 49.9 m, 6 days before
        ("C", "noise", 0, 50.1, 0.0),  # just outside 50 m
        ("D", "road", 0, 5.0, 0.0),  # other category
        ("E", "noise", -8, 10.0, 0.0),  # 8 days before
        ("F", "noise", 2, 0.0, -30.0),  # 30 m, ties A by distance: sorted by id
        ("N1", "noise", 0, 0.0, 0.0),  # the new case itself, already stored
    ]
    return pd.DataFrame(
        {
            "id": [r[0] for r in rows],
            "category": [r[1] for r in rows],
            "received_at": [T + pd.Timedelta(days=r[2]) for r in rows],
            "x": [X0 + r[3] for r in rows],
            "y": [Y0 + r[4] for r in rows],
        }
    )


def new_cases() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["N1", "N2", "N3"],
            "category": ["noise", "road", "water"],
            "received_at": [T, T, T],
            "x": [X0, X0 + 5.0, X0],
            "y": [Y0, Y0, Y0],
        },
        index=[10, 11, 12],
    )


def test_exact_candidates():
    out = find_duplicates(new_cases(), open_cases())
    assert out.index.tolist() == [10, 11, 12]
    assert out.tolist() == [["A", "F", "B"], ["D"], []]


def test_parameters():
    out = find_duplicates(new_cases(), open_cases(), radius=51, days=9)
    assert out.iloc[0] == ["E", "A", "F", "B", "C"]
    anyc = find_duplicates(new_cases(), open_cases(), same_category=False)
    assert anyc.iloc[0] == ["D", "A", "F", "B"]
    assert find_duplicates(new_cases(), open_cases(), days=1).iloc[0] == ["A"]
    assert find_duplicates(new_cases(), open_cases().iloc[:0]).tolist() == [[], [], []]


def test_naive_times_are_local():
    o = open_cases()
    o["received_at"] = o["received_at"].dt.tz_localize(None)
    assert find_duplicates(new_cases(), o).iloc[0] == ["A", "F", "B"]


def test_geodataframes_and_crs_guards():
    o, n = open_cases(), new_cases()
    og = gpd.GeoDataFrame(
        o.drop(columns=["x", "y"]), geometry=gpd.points_from_xy(o.x, o.y), crs=32651
    )
    ng = gpd.GeoDataFrame(
        n.drop(columns=["x", "y"]), geometry=gpd.points_from_xy(n.x, n.y), crs=32651
    )
    assert find_duplicates(ng, og).tolist() == [["A", "F", "B"], ["D"], []]
    with pytest.raises(CRSError, match="projected CRS"):
        find_duplicates(ng.to_crs(4326), og.to_crs(4326))
    with pytest.raises(CRSError, match="reproject one"):
        find_duplicates(ng, og.to_crs(32650))
    deg = n.assign(x=121.4, y=31.2)
    with pytest.raises(CRSError, match="look like degrees"):
        find_duplicates(deg, o)
    with pytest.raises(LayerError, match=r"lacks column\(s\) \['category'\]"):
        find_duplicates(n.drop(columns="category"), o)
    with pytest.raises(LayerError, match="missing or infinite"):
        find_duplicates(n.assign(x=float("nan")), o)


def brute_force(new, open_, *, radius, days, same_category=True, earlier_only=False):
    """The rule written out pair by pair (the reference the tree search must match)."""
    out = []
    for _, a in new.iterrows():
        hits = []
        for _, b in open_.iterrows():
            d = float(np.hypot(a.x - b.x, a.y - b.y))
            dt = abs((a.received_at - b.received_at).total_seconds())
            if a.id == b.id or d > radius or dt > days * 86400:
                continue
            if same_category and a.category != b.category:
                continue
            if earlier_only and not (
                b.received_at < a.received_at or (b.received_at == a.received_at and b.id < a.id)
            ):
                continue
            hits.append((d, b.id))
        out.append([i for _, i in sorted(hits)])
    return out


def hotspot_cases(n: int, seed: int) -> pd.DataFrame:
    """Cases crowded at three hotspots over a month (many pairs close in space, few in time)."""
    rng = np.random.default_rng(seed)
    spot = rng.integers(0, 3, n)
    return pd.DataFrame(
        {
            "id": [f"K{i:04d}" for i in range(n)],
            "category": rng.choice(["noise", "road"], n),
            "received_at": T + pd.to_timedelta(rng.integers(0, 30 * 24, n), unit="h"),
            "x": X0 + spot * 500.0 + rng.normal(0, 30, n).round(),
            "y": Y0 + rng.normal(0, 30, n).round(),
        }
    )


@pytest.mark.parametrize(
    ("radius", "days", "same_category"), [(50, 7, True), (40, 2, False), (60, 0, True)]
)
def test_space_time_search_matches_the_rule_pair_by_pair(radius, days, same_category):
    pool = hotspot_cases(300, seed=1)
    new = pool.iloc[::3]
    got = find_duplicates(new, pool, radius=radius, days=days, same_category=same_category)
    want = brute_force(new, pool, radius=radius, days=days, same_category=same_category)
    assert got.tolist() == want
    assert sum(map(len, want)) > (50 if days else 0)  # hotspots: real work for the search


def test_earlier_only_leaves_the_first_of_a_cluster_clean():
    pool = hotspot_cases(200, seed=2)
    pool.loc[1, "received_at"] = pool.loc[0, "received_at"]  # a tie: the smaller id is earlier
    pool.loc[1, ["x", "y", "category"]] = pool.loc[0, ["x", "y", "category"]]
    got = find_duplicates(pool, pool, radius=50, days=7, earlier_only=True)
    assert got.tolist() == brute_force(pool, pool, radius=50, days=7, earlier_only=True)
    assert "K0000" in got.iloc[1] and "K0001" not in got.iloc[0]
    first = pool["received_at"].idxmin()
    assert got.loc[first] == []


@pytest.mark.parametrize(("limit", "days"), [(None, 7), (3, 7), (1, 2), (5, 0)])
def test_duplicate_pairs_nearest_first_bounded_and_counted(limit, days):
    """The pool searching itself: the rule pair by pair, the nearest ``limit`` and the total."""
    pool = hotspot_cases(400, seed=3)
    pool.loc[1, "received_at"] = pool.loc[0, "received_at"]  # same instant: by id
    pool.loc[1, ["x", "y", "category"]] = pool.loc[0, ["x", "y", "category"]]
    pool.loc[5:9, ["x", "y", "category"]] = pool.loc[4, ["x", "y", "category"]].to_numpy()
    want = brute_force(pool, pool, radius=50, days=days, earlier_only=True)
    new = np.zeros(len(pool), dtype=bool)
    new[::2] = True
    got = duplicate_pairs(pool, new=new, radius=50, days=days, limit=limit)
    lists: list[list[str]] = [[] for _ in range(len(pool))]
    totals = [0] * len(pool)
    for row, cand, rank, total in got[["row", "candidate", "rank", "total"]].itertuples(
        index=False
    ):
        assert rank == len(lists[row])
        lists[row].append(pool["id"].iloc[cand])
        totals[row] = total
    for i, w in enumerate(want):
        if new[i]:
            assert lists[i] == (w if limit is None else w[:limit]), i
            assert totals[i] == len(w), i
        else:
            assert lists[i] == [] and totals[i] == 0
    if days:  # hotspots: many cases have more candidates than are kept
        assert sum(len(w) > (limit or 0) for w in want[::2]) > (10 if limit else 0)


@pytest.mark.parametrize("limit", [1, 3, 4, 6])
def test_duplicate_pairs_ties_where_the_nearest_are_cut(limit):
    """Candidates at the exact edges of the distance bins (radius / 16) and tied: same answer."""
    step = 48.0 / 16  # radius 48: the bins are 3 m wide
    at = [(step, 0.0), (0.0, step), (-2 * step, 0.0), (0.0, 2 * step), (0.0, -2 * step)]
    at += [(3 * step, 0.0), (0.0, 16 * step), (16 * step, 0.0), (-15 * step, 0.0)]
    ids = ["K7", "K2", "K9", "K1", "K5", "K3", "K8", "K4", "K6"]
    pool = pd.DataFrame(
        {
            "id": [*ids, "Z0"],
            "category": ["noise"] * (len(at) + 1),
            "received_at": [T - pd.Timedelta(hours=len(at) - i) for i in range(len(at))] + [T],
            "x": [X0 + dx for dx, _ in at] + [X0],
            "y": [Y0 + dy for _, dy in at] + [Y0],
        }
    )
    want = brute_force(pool, pool, radius=48, days=1, earlier_only=True)
    got = duplicate_pairs(pool, radius=48, days=1, limit=limit)
    last = got[got["row"] == len(at)]
    assert pool["id"].iloc[last["candidate"]].tolist() == want[-1][:limit]
    assert (last["total"] == len(want[-1])).all() and len(want[-1]) == len(at)
    assert last["distance"].tolist() == sorted(last["distance"].tolist())


@pytest.mark.parametrize("spread", [0.0, 1e8])
def test_duplicate_pairs_on_the_edges_of_cells_and_windows(spread):
    """Cases on a lattice of ``radius`` steps (pairs exactly ``radius`` apart, on the edges
    of the search's cells), whole ``days`` apart (exactly at the window) or at the same
    instant; with ``spread``, half of them so far away that the cells are wider than the
    radius (their number per side is bounded): the rule pair by pair, every candidate."""
    n, radius = 240, 50.0
    rng = np.random.default_rng(5)
    far = (np.arange(n) % 2) * spread
    pool = pd.DataFrame(
        {
            "id": [f"E{i:03d}" for i in rng.permutation(n)],
            "category": rng.choice(["noise", "road"], n),
            "received_at": T + pd.to_timedelta(rng.integers(0, 4, n) * 2, unit="D"),
            "x": X0 + far + rng.integers(-2, 3, n) * radius,
            "y": Y0 + rng.integers(-2, 3, n) * radius * 0.6,
        }
    )
    want = brute_force(pool, pool, radius=radius, days=2, earlier_only=True)
    got = duplicate_pairs(pool, radius=radius, days=2, limit=None)
    lists: list[list[str]] = [[] for _ in range(n)]
    for row, cand in got[["row", "candidate"]].itertuples(index=False):
        lists[row].append(pool["id"].iloc[cand])
    assert lists == want
    assert sum(map(len, want)) > 500


def test_duplicate_pairs_guards():
    pool = hotspot_cases(10, seed=4)
    with pytest.raises(ValueError, match="limit must be ≥ 1"):
        duplicate_pairs(pool, limit=0)
    with pytest.raises(ValueError, match="radius must be > 0"):
        duplicate_pairs(pool, radius=0)
    with pytest.raises(ValueError, match="new has 3 flags for 10 cases"):
        duplicate_pairs(pool, new=np.ones(3, dtype=bool))
    with pytest.raises(LayerError, match="lacks column"):
        duplicate_pairs(pool.drop(columns="category"))
    assert duplicate_pairs(pool.iloc[:1]).empty


@pytest.mark.parametrize("limit", [None, 5])
def test_duplicate_pairs_in_threads_equal_one_by_one(monkeypatch, limit):
    """Large searches take the categories in two threads: the same pairs, in the same order."""
    import gridmap.cases.duplicates as dup_mod

    pool = hotspot_cases(3000, seed=4)
    pool["category"] = np.random.default_rng(4).choice(["noise", "road", "water", "fire"], 3000)
    monkeypatch.setattr(dup_mod, "_PARALLEL_FROM", 10**9)
    one_by_one = duplicate_pairs(pool, radius=50, days=7, limit=limit)
    monkeypatch.setattr(dup_mod, "_PARALLEL_FROM", 0)
    threaded = duplicate_pairs(pool, radius=50, days=7, limit=limit)
    assert len(one_by_one) > 3000  # hotspots: every category has real work
    pd.testing.assert_frame_equal(threaded, one_by_one)
