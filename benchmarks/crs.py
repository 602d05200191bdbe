"""Benchmark the exact GCJ-02 and BD-09 inverses against their forward formulas.

    python benchmarks/crs.py [--points 1000000] [--repeat 3] [--seed 0]

Draws ``--points`` WGS84 points in the China rectangle and times, in CPU seconds per
million points (best of ``--repeat``):

* the forward formulas ``wgs84_to_gcj02``, ``gcj02_to_bd09`` and ``wgs84_to_bd09``;
* the exact inverses ``gcj02_to_wgs84``, ``bd09_to_gcj02`` and ``bd09_to_wgs84``
  (``method="iter"``, Newton's method);
* the old inverse as a baseline, implemented here: the one-step guess, then fixed-point
  iteration ``x <- x - (forward(x) - target)`` on the points not yet converged, until the
  step is below 1e-12 deg, with the forward formulas of ``gridmap.crs``.

It prints each inverse's ratio to its forward formula, measured in the same run, and the
round-trip error (WGS84 -> GCJ-02/BD-09 -> WGS84) of both inverses in metres.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from gridmap import crs

EARTH_R = 6_371_008.8
TOL_DEG = 1e-12


def fixed_point(forward: Callable, onestep: Callable, tx: np.ndarray, ty: np.ndarray):
    """The inverse gridmap.crs used before Newton's method (its ``_invert``)."""
    x, y = onestep(tx, ty)
    active = np.isfinite(x) & np.isfinite(y)
    for _ in range(50):
        if not active.any():
            break
        ax, ay = x[active], y[active]
        fx, fy = forward(ax, ay)
        ex = fx - tx[active]
        ey = fy - ty[active]
        x[active] = ax - ex
        y[active] = ay - ey
        moving = (np.abs(ex) > TOL_DEG) | (np.abs(ey) > TOL_DEG)
        idx = np.flatnonzero(active)
        active[idx[~moving]] = False
    return x, y


def old_gcj_to_wgs(lon: np.ndarray, lat: np.ndarray):
    return crs._masked(
        lambda a, b: fixed_point(crs._wgs_to_gcj, crs._gcj_to_wgs_onestep, a, b), lon, lat
    )


def old_bd_to_gcj(lon: np.ndarray, lat: np.ndarray):
    return crs._masked(
        lambda a, b: fixed_point(crs._gcj_to_bd, crs._bd_to_gcj_onestep, a, b), lon, lat
    )


def old_bd_to_wgs(lon: np.ndarray, lat: np.ndarray):
    def both(a: np.ndarray, b: np.ndarray):
        gx, gy = fixed_point(crs._gcj_to_bd, crs._bd_to_gcj_onestep, a, b)
        return fixed_point(crs._wgs_to_gcj, crs._gcj_to_wgs_onestep, gx, gy)

    return crs._masked(both, lon, lat)


def cpu_seconds(fn: Callable, repeat: int):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2 - lon1)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_R * np.arcsin(np.sqrt(a))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    w, s, e, n = crs.CHINA_BOUNDS
    lon = rng.uniform(w + 0.05, e - 0.05, args.points)
    lat = rng.uniform(s + 0.05, n - 0.05, args.points)
    gcj = crs.wgs84_to_gcj02(lon, lat)
    bd = crs.wgs84_to_bd09(lon, lat)
    per_million = 1e6 / args.points

    cases = [
        ("gcj02 -> wgs84", lambda: crs.wgs84_to_gcj02(lon, lat), gcj, crs.gcj02_to_wgs84,
         old_gcj_to_wgs, (lon, lat)),
        ("bd09 -> gcj02", lambda: crs.gcj02_to_bd09(*gcj), bd, crs.bd09_to_gcj02,
         old_bd_to_gcj, gcj),
        ("bd09 -> wgs84", lambda: crs.wgs84_to_bd09(lon, lat), bd, crs.bd09_to_wgs84,
         old_bd_to_wgs, (lon, lat)),
    ]  # fmt: skip
    print(f"{args.points} points in China, best of {args.repeat}, CPU s per million points")
    head = f"{'inverse':<15} {'forward':>8} {'old inv':>8} {'new inv':>8}"
    print(
        f"{head} {'old/fwd':>8} {'new/fwd':>8} {'old/new':>8} {'old err m':>10} {'new err m':>10}"
    )
    for name, forward, target, new, old, truth in cases:
        t_fwd, _ = cpu_seconds(forward, args.repeat)
        t_old, got_old = cpu_seconds(lambda: old(*target), args.repeat)  # noqa: B023
        t_new, got_new = cpu_seconds(lambda: new(*target), args.repeat)  # noqa: B023
        err_old = metres(*truth, *got_old).max()
        err_new = metres(*truth, *got_new).max()
        f, o, w_ = (t * per_million for t in (t_fwd, t_old, t_new))
        print(
            f"{name:<15} {f:8.3f} {o:8.3f} {w_:8.3f} {o / f:8.2f} {w_ / f:8.2f} {o / w_:8.2f}"
            f" {err_old:10.1e} {err_new:10.1e}"
        )


if __name__ == "__main__":
    main()
