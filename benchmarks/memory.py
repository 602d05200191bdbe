"""Benchmark peak memory of partitioning a city with and without household rows, in one run.

    python benchmarks/memory.py [--buildings 50000] [--unit-area 71] [--seed 0] [--out-dir DIR]
                                [--baseline-src DIR] [--also-buildings N ...]

``synth_city`` draws each city once into ``--out-dir`` (a pickle; ``--unit-area`` m² per
household: 71 gives ~1.32 M household rows on 50,000 buildings). Then a fresh subprocess
(so the peak is its own) reads it, ``validate_layers`` checks it, the raw layers are
dropped (as the CLI drops them), and ``partition`` makes the plan. A thread samples the
resident set (``/proc/self/statm``) every 5 ms, so each stage's peak is reported, besides
the process's ``ru_maxrss`` (Maximum resident set size, as ``/usr/bin/time -v`` reports it).
The same city is run twice, once with its household rows and once without
(``with_households=False``: the buildings carry the counts), and the ratios are printed.

Issue #11 figures: 1.9 GB peak in the main process with 1.35 M household rows (2.5x the
city without them); 1.16 GB before the households' grids were looked up by position and
freed C heap pages were given back after each geometric stage of the assembly; target <= 1 GB,
and linear in the rows.
With ``--baseline-src DIR`` (a folder holding another version's ``gridmap/`` package, e.g.
``git archive HEAD gridmap | tar -x -C DIR``) the city with household rows runs a third time
with that version. With ``--also-buildings N`` (repeatable, e.g. 25000) a city of N buildings
with household rows is run too, and the peaks are set against the household rows: MB per
100,000 rows between the sizes, and what a straight line through them leaves at 0 rows (the
process without the rows' share: imports, buildings, the plan). A JSON line per run is
appended to ``--out-dir``/memory.jsonl (default: a temporary folder, removed at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_SYNTH = r"""
import pickle, sys
from gridmap.synth import synth_city
n, seed = int(sys.argv[1]), int(sys.argv[2])
with_hh, unit_area = sys.argv[3] == "1", float(sys.argv[4])
raw = synth_city(n_buildings=n, seed=seed, unit_area=unit_area, with_households=with_hh)
with open(sys.argv[5], "wb") as f:
    pickle.dump(raw, f, protocol=5)
"""

_CHILD = r"""
import gc, json, os, pickle, resource, sys, threading, time

page = os.sysconf("SC_PAGE_SIZE")
stage, peaks, stop = ["start"], {}, threading.Event()


def sample():
    with open("/proc/self/statm") as f:
        while not stop.is_set():
            f.seek(0)
            rss = int(f.read().split()[1]) * page / 2**20
            peaks[stage[0]] = max(peaks.get(stage[0], 0.0), rss)
            time.sleep(0.005)


threading.Thread(target=sample, daemon=True).start()
from gridmap.partition import partition
from gridmap.validation import validate_layers

cpu = {}
stage[0] = "read"
t = time.process_time()
with open(sys.argv[1], "rb") as f:
    raw = pickle.load(f)
cpu["read"] = time.process_time() - t
rows = len(raw["households"]) if raw.get("households") is not None else 0
households = int(raw["buildings"]["households"].sum())
stage[0] = "validate"
t = time.process_time()
layers, _ = validate_layers(raw)
del raw
gc.collect()
cpu["validate"] = time.process_time() - t
stage[0] = "partition"
t = time.process_time()
plan = partition(layers, seed=0)
cpu["partition"] = time.process_time() - t
stage[0] = "end"
time.sleep(0.02)
stop.set()
print(json.dumps({
    "household_rows": rows,
    "households": households,
    "grids": len(plan.grids),
    "peak_mb": peaks,
    "cpu_s": cpu,
    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def _run(
    n: int,
    seed: int,
    with_households: bool,
    unit_area: float,
    folder: Path,
    src: Path | None = None,
) -> dict:
    """Draw the city into ``folder`` (once), then read, validate and partition it."""
    env = {**os.environ, "PYTHONPATH": str(src.resolve())} if src is not None else None
    city = folder / f"city-{n}-{seed}-{int(with_households)}-{unit_area:g}.pickle"
    if not city.exists():
        args = (n, seed, int(with_households), unit_area, city)
        subprocess.run([sys.executable, "-c", _SYNTH, *map(str, args)], check=True)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(city)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--buildings", type=int, default=50_000)
    ap.add_argument("--unit-area", type=float, default=71.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", type=Path, default=None, help="folder for cities and results")
    ap.add_argument("--baseline-src", type=Path, default=None, help="another gridmap/ to run")
    ap.add_argument(
        "--also-buildings",
        type=int,
        action="append",
        default=[],
        help="another city size (with household rows) to show how the peak grows",
    )
    args = ap.parse_args()
    tmp = None
    if args.out_dir is None:
        tmp = tempfile.mkdtemp(prefix="gridmap-memory-")
        args.out_dir = Path(tmp)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        _report(args)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _report(args: argparse.Namespace) -> None:
    city = (args.buildings, args.seed)
    runs = {
        "with household rows": _run(*city, True, args.unit_area, args.out_dir),
        "without household rows": _run(*city, False, args.unit_area, args.out_dir),
    }
    if args.baseline_src is not None:
        runs["baseline, with rows"] = _run(
            *city, True, args.unit_area, args.out_dir, args.baseline_src
        )
    with_, without = runs["with household rows"], runs["without household rows"]
    print(
        f"{args.buildings:,} buildings, {with_['households']:,} households "
        f"({with_['household_rows']:,} household rows in the first run), "
        f"{with_['grids']:,} / {without['grids']:,} grids"
    )
    stages = ("read", "validate", "partition")
    head = "".join(f"{s + ' MB':>14}" for s in stages)
    print(f"\n{'run':<26}{head}{'maxrss MB':>12}" + "".join(f"{s + ' CPU s':>16}" for s in stages))
    for name, r in runs.items():
        peaks = "".join(f"{r['peak_mb'].get(s, 0.0):>14,.0f}" for s in stages)
        cpus = "".join(f"{r['cpu_s'][s]:>16.2f}" for s in stages)
        print(f"{name:<26}{peaks}{r['maxrss_mb']:>12,.0f}{cpus}")
    ratios = "".join(
        f"{with_['peak_mb'].get(s, 0.0) / max(without['peak_mb'].get(s, 1.0), 1.0):>14.2f}"
        for s in stages
    )
    print(f"{'ratio with / without':<26}{ratios}{with_['maxrss_mb'] / without['maxrss_mb']:>12.2f}")
    if args.baseline_src is not None:
        base = runs["baseline, with rows"]
        ratios = "".join(
            f"{with_['peak_mb'].get(s, 0.0) / max(base['peak_mb'].get(s, 1.0), 1.0):>14.2f}"
            for s in stages
        )
        print(
            f"{'ratio this / baseline':<26}{ratios}{with_['maxrss_mb'] / base['maxrss_mb']:>12.2f}"
        )
    if args.also_buildings:
        sizes = {args.buildings: with_}
        for n in args.also_buildings:
            sizes[n] = _run(n, args.seed, True, args.unit_area, args.out_dir)
            runs[f"with household rows, {n:,} buildings"] = sizes[n]
        print(f"\n{'buildings':>10}{'household rows':>16}{'peak MB':>10}{'maxrss MB':>11}")
        for n, r in sorted(sizes.items()):
            peak = max(r["peak_mb"].values())
            print(f"{n:>10,}{r['household_rows']:>16,}{peak:>10,.0f}{r['maxrss_mb']:>11,.0f}")
        rows = np.array([r["household_rows"] for _, r in sorted(sizes.items())], dtype=float)
        peaks = np.array([r["maxrss_mb"] for _, r in sorted(sizes.items())], dtype=float)
        slope, intercept = np.polyfit(rows, peaks, 1)
        print(
            f"maxrss grows {slope * 1e5:,.1f} MB per 100,000 household rows; the line through "
            f"the sizes meets 0 rows at {intercept:,.0f} MB"
        )
    print("target: peak <= 1,024 MB with ~1.35 M household rows (issue #11)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with open(args.out_dir / "memory.jsonl", "a", encoding="utf-8") as f:
        for name, r in runs.items():
            f.write(json.dumps({"run": name, "buildings": args.buildings, **r}) + "\n")


if __name__ == "__main__":
    main()
