"""Benchmark gridmap.synth.synth_city: time, throughput and peak memory per city size.

Each size runs in a fresh subprocess (so peak RSS is that run's own), ``--repeat``
times, keeping the fastest. The first size is the baseline; the "linearity" column
is ``seconds / (baseline seconds × size / baseline size)`` (1.0 = perfectly linear).

    python benchmarks/synth.py                       # 10k, 50k, 200k buildings
    python benchmarks/synth.py --sizes 2000 20000 --repeat 3
    python benchmarks/synth.py --no-households       # skip the households layer
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, time
from gridmap.synth import synth_city
n, seed, with_hh = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
t0 = time.perf_counter()
city = synth_city(n_buildings=n, seed=seed, with_households=with_hh)
dt = time.perf_counter() - t0
print(json.dumps({
    "seconds": dt,
    "buildings": len(city["buildings"]),
    "households": int(city["buildings"]["households"].sum()),
    "household_rows": len(city["households"]),
    "communities": len(city["communities"]),
    "roads": len(city["roads"]),
    "staff": len(city["staff"]),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def _run(n: int, seed: int, with_households: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n), str(seed), "1" if with_households else "0"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (fastest kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-households", action="store_true", help="skip the households layer")
    args = parser.parse_args()

    rows = []
    for n in args.sizes:
        runs = [_run(n, args.seed, not args.no_households) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        best["size"] = n
        rows.append(best)
        print(f"  done {n:>8,} buildings in {best['seconds']:.2f} s", file=sys.stderr)

    base = rows[0]
    header = (
        f"{'buildings':>10} {'seconds':>8} {'bldg/s':>9} {'households':>11} {'communities':>11} "
        f"{'roads':>6} {'staff':>7} {'peak RSS MB':>11} {'linearity':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        linear = r["seconds"] / (base["seconds"] * r["buildings"] / base["buildings"])
        print(
            f"{r['buildings']:>10,} {r['seconds']:>8.2f} {r['buildings'] / r['seconds']:>9,.0f} "
            f"{r['households']:>11,} {r['communities']:>11,} {r['roads']:>6,} {r['staff']:>7,} "
            f"{r['peak_rss_mb']:>11,.0f} {linear:>9.2f}"
        )
    print(
        f"baseline: {base['buildings']:,} buildings; linearity = seconds / (baseline seconds × "
        "size ratio); budget: 200,000 buildings < 180 s"
    )


if __name__ == "__main__":
    main()
