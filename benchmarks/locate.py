"""Benchmark GridIndex.locate against naive baselines measured in the same run.

    python benchmarks/locate.py [--grids 2000] [--points 100000] [--loop-points 2000] [--seed 0]
                                [--thread-points 1000000] [--pairs 3]
                                [--bare-grids 1549] [--bare-points 1000000] [--segment 20]
                                [--rounds 3] [--only-bare]

Builds a seamless synthetic tiling of jittered Voronoi cells (EPSG:4549, metres),
then times:

* ``GridIndex`` construction and ``GridIndex.locate`` on all points;
* ``geopandas.sjoin(points, grids, predicate="within")`` on all points;
* a per-point Python loop (``STRtree.query(point, predicate="covered_by")`` per
  point, smallest code kept) on ``--loop-points`` points, extrapolated;
* a brute-force per-point loop over every polygon (``polygon.covers(point)``) on
  a tenth of ``--loop-points``, extrapolated.

It also checks that all methods agree on the grid of every point they saw, and
times what the threads of ``GridIndex.locate`` buy: one thread against the
default on ``--thread-points`` points, in alternating pairs (wall and CPU
seconds, medians, and the ratio pair by pair).

Last, the figure of issue #11: ``GridIndex.locate`` against a bare shapely query, on
``--bare-points`` uniform points (all inside a grid) over ``--bare-grids`` grids
segmentized to ``--segment`` metres (~100 vertices each, like real grids). The
baseline is ``shapely.points`` + ``STRtree.query(points, predicate="intersects")`` +
the smallest code of each point's hits (one call, as a user would write it); it
answers the grid code only. ``GridIndex.locate`` runs with its default threads,
with and without ``boundary_distance``. Wall and CPU seconds, medians of
``--rounds`` alternating rounds, and the ratios to the baseline (target <= 1.1x
without the boundary distance).
"""

from __future__ import annotations

import argparse
import time

import geopandas as gpd
import numpy as np
import shapely

from gridmap.locate import GridIndex, ready_tree


def tiling(n_grids: int, seed: int, size: float = 20_000.0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_grids)))
    step = size / side
    gx, gy = np.meshgrid(np.arange(side) + 0.5, np.arange(side) + 0.5)
    pts = np.column_stack([gx.ravel(), gy.ravel()])[:n_grids] * step
    pts += rng.uniform(-0.35, 0.35, pts.shape) * step
    frame = shapely.box(0, 0, size, size)
    cells = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame)
    cells = shapely.intersection(np.asarray(shapely.get_parts(cells)), frame)
    cells = cells[shapely.area(cells) > 0]
    x0, y0 = 470_000.0, 3_540_000.0  # around Nanjing in EPSG:4549
    cells = shapely.transform(cells, lambda c: c + [x0, y0])
    codes = [
        f"320102001001{i:03d}" if i < 1000 else f"320102001002{i - 1000:03d}"
        for i in range(len(cells))
    ]
    return gpd.GeoDataFrame({"grid_code": codes}, geometry=cells, crs=4549)


def timed(fn, repeat: int = 3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grids", type=int, default=2000)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--loop-points", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--thread-points", type=int, default=1_000_000)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--bare-grids", type=int, default=1549)
    ap.add_argument("--bare-points", type=int, default=1_000_000)
    ap.add_argument("--segment", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only-bare", action="store_true", help="only the bare-query figure")
    args = ap.parse_args()
    if args.only_bare:
        bare_figure(args.bare_grids, args.bare_points, args.segment, args.rounds, args.seed)
        return

    grids = tiling(args.grids, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    minx, miny, maxx, maxy = grids.total_bounds
    n = args.points
    x = rng.uniform(minx - 200, maxx + 200, n)  # a few percent fall outside every grid
    y = rng.uniform(miny - 200, maxy + 200, n)
    n_vertices = int(shapely.get_num_coordinates(grids.geometry.values).sum())
    print(f"{len(grids)} grids ({n_vertices} vertices), {n} points, seed {args.seed}")

    t_build, index = timed(lambda: GridIndex(grids), repeat=3)
    t_locate, res = timed(lambda: index.locate(x, y), repeat=3)

    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=grids.crs)
    t_sjoin, joined = timed(
        lambda: gpd.sjoin(pts, grids[["grid_code", "geometry"]], predicate="within", how="left"),
        repeat=3,
    )

    def sjoin_from_xy():
        p = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=grids.crs)
        return gpd.sjoin(p, grids[["grid_code", "geometry"]], predicate="within", how="left")

    t_sjoin_xy, _ = timed(sjoin_from_xy, repeat=3)

    tree = shapely.STRtree(grids.geometry.values)
    codes = grids["grid_code"].to_numpy()
    point_objs = shapely.points(x, y)
    m = min(args.loop_points, n)

    def loop_tree() -> list:
        out = []
        for p in point_objs[:m]:
            hits = tree.query(p, predicate="covered_by")
            out.append(min(codes[hits]) if len(hits) else None)
        return out

    t_loop, loop_codes = timed(loop_tree, repeat=1)
    polys = list(grids.geometry.values)
    mb = max(m // 10, 1)

    def loop_brute() -> list:
        out = []
        for p in point_objs[:mb]:
            hit = [c for c, poly in zip(codes, polys, strict=True) if poly.covers(p)]
            out.append(min(hit) if hit else None)
        return out

    t_brute, brute_codes = timed(loop_brute, repeat=1)

    # agreement
    got = res["grid_code"].tolist()
    assert got[:m] == loop_codes, "GridIndex disagrees with the per-point loop"
    assert got[:mb] == brute_codes, "GridIndex disagrees with the brute-force loop"
    sj = joined.reset_index().groupby("index")["grid_code"].min()  # within: interior only
    interior = ~res["on_boundary"].to_numpy() & res["inside"].to_numpy()
    sj_codes = sj.reindex(range(n)).to_numpy(dtype=object)
    assert all(sj_codes[interior] == np.asarray(got, dtype=object)[interior])

    t_loop_x = t_loop * n / m
    t_brute_x = t_brute * n / mb
    rows = [
        ("GridIndex.locate", n, t_locate, t_locate),
        ("geopandas.sjoin within, from x/y arrays", n, t_sjoin_xy, t_sjoin_xy),
        ("geopandas.sjoin within, points pre-built", n, t_sjoin, t_sjoin),
        (f"per-point STRtree loop ({m} pts, extrapolated)", n, t_loop, t_loop_x),
        (f"per-point brute-force loop ({mb} pts, extrapolated)", n, t_brute, t_brute_x),
    ]
    print(f"index build: {t_build * 1000:.1f} ms")
    print(f"{'method':<52} {'measured s':>11} {'for N s':>9} {'pts/s':>12} {'x slower':>9}")
    for name, _, meas, full in rows:
        print(f"{name:<52} {meas:>11.3f} {full:>9.3f} {n / full:>12,.0f} {full / t_locate:>9.1f}")
    print(
        f"outside every grid: {int((res['grid_code'].isna()).sum())}, "
        f"on a shared edge: {int(res['on_boundary'].sum())}"
    )
    threads_figure(index, grids, args.thread_points, args.pairs, args.seed)
    bare_figure(args.bare_grids, args.bare_points, args.segment, args.rounds, args.seed)


def threads_figure(
    index: GridIndex, grids: gpd.GeoDataFrame, n: int, pairs: int, seed: int
) -> None:
    """One thread against the default thread count, in alternating pairs."""
    rng = np.random.default_rng(seed + 2)
    minx, miny, maxx, maxy = grids.total_bounds
    x, y = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
    index.locate(x[:1000], y[:1000])
    figures: dict[str, list[tuple[float, float]]] = {"1 thread": [], "default": []}
    for _ in range(pairs):
        for name, threads in (("1 thread", 1), ("default", None)):
            wall, cpu = time.perf_counter(), time.process_time()
            index.locate(x, y, threads=threads)
            figures[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    one, dflt = np.array(figures["1 thread"]), np.array(figures["default"])
    print(f"\nthreads, {n:,} points, {pairs} alternating pairs (medians):")
    for name, arr in (("1 thread", one), ("default threads", dflt)):
        print(f"  {name:<16} wall {np.median(arr[:, 0]):.3f} s   cpu {np.median(arr[:, 1]):.3f} s")
    speedup = np.median(one[:, 0] / dflt[:, 0])
    cost = np.median(dflt[:, 1] / one[:, 1])
    print(f"  wall speed-up (1 thread / default, pair by pair): {speedup:.2f}x")
    print(f"  CPU cost of the threads (default / 1 thread):      {cost:.2f}x")


def bare_figure(n_grids: int, n: int, segment: float, rounds: int, seed: int) -> None:
    """GridIndex.locate against a bare STRtree query with smallest-code ties."""
    grids = tiling(n_grids, seed)
    grids = grids.set_geometry(shapely.segmentize(grids.geometry.values, segment))
    n_vertices = shapely.get_num_coordinates(grids.geometry.values).mean()
    rng = np.random.default_rng(seed + 3)
    minx, miny, maxx, maxy = grids.total_bounds
    x, y = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
    index = GridIndex(grids)
    tree = ready_tree(grids.geometry.values)
    codes = grids["grid_code"].to_numpy(dtype=object)
    rank = np.argsort(np.argsort(codes, kind="stable"), kind="stable")

    def bare() -> np.ndarray:
        pi, gi = tree.query(shapely.points(x, y), predicate="intersects")
        order = np.lexsort((rank[gi], pi))  # smallest code first
        pi, gi = pi[order], gi[order]
        first = np.ones(len(pi), dtype=bool)
        first[1:] = pi[1:] != pi[:-1]
        out = np.full(n, None, dtype=object)
        out[pi[first]] = codes[gi[first]]
        return out

    runs = {
        "bare STRtree.query(points, intersects)": bare,
        "GridIndex.locate": lambda: index.locate(x, y),
        "GridIndex.locate(boundary_distance=False)": lambda: index.locate(
            x, y, boundary_distance=False
        ),
    }
    index.locate(x[:50_000], y[:50_000])  # builds what is built at the first large call
    want = bare()
    got = index.locate(x, y, boundary_distance=False)["grid_code"].to_numpy(dtype=object)
    assert (got == want).all(), "GridIndex.locate disagrees with the bare query"
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            figures[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    base = np.array(figures["bare STRtree.query(points, intersects)"])
    print(
        f"\nbare query: {n:,} uniform points (all inside), {len(grids)} grids of "
        f"{n_vertices:.0f} vertices on average, {rounds} alternating rounds (medians)"
    )
    print(f"{'method':<44}{'wall s':>8}{'cpu s':>8}{'wall x':>8}{'cpu x':>8}")
    for name in runs:
        arr = np.array(figures[name])
        print(
            f"{name:<44}{np.median(arr[:, 0]):>8.3f}{np.median(arr[:, 1]):>8.3f}"
            f"{np.median(arr[:, 0] / base[:, 0]):>8.2f}{np.median(arr[:, 1] / base[:, 1]):>8.2f}"
        )
    print("x: ratio to the bare query, round by round; target <= 1.1x without boundary_distance")


if __name__ == "__main__":
    main()
