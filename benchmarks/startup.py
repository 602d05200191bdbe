"""Benchmark start-up: ``gridmap --help`` and ``gridmap locate LON LAT`` against ``python -c pass``.

    python benchmarks/startup.py [--repeat 5] [--out-dir DIR] [--keep]

Runs ``gridmap run`` once in ``--out-dir`` (default: a temporary folder) to make a
store with a published plan of the bundled sample city, then times, ``--repeat``
times each in alternating rounds (so that all see the same background load), whole
processes of:

* ``python -c pass`` (the baseline: the interpreter alone);
* ``gridmap --help``;
* ``gridmap locate LON LAT`` of a point inside a grid of the stored plan;
* ``python -c "import gridmap.cli.locate, <what the locate command imports>"`` —
  the import part of the command alone.

Compiled modules are cached (in ``--out-dir``/pycache, not beside the sources), as on
an installed system. Reported: medians of wall seconds and their ratio to the baseline. Targets:
``gridmap --help`` ~0.3 s, ``gridmap locate`` under 1 s of import. The heaviest
imports of the locate command (``python -X importtime``) are listed last.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_LOCATE_IMPORTS = (
    "import gridmap.cli.app, gridmap.cli.locate, pandas; "
    "from gridmap.api.batch import locate_rows, parse_batch; "
    "from gridmap.api.locator import Locator; from gridmap.db import Store, database_url"
)


def _gridmap() -> list[str]:
    exe = shutil.which("gridmap")
    return [exe] if exe else [sys.executable, "-m", "gridmap"]


def _time(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def _point(cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    code = (
        "from gridmap.db import Store, database_url, list_plans, load_plan\n"
        "with Store.from_url(database_url(None)) as s:\n"
        "    plan = load_plan(s, list_plans(s, status='published')[0].id)\n"
        "p = plan.grids_wgs84().geometry.iloc[0].representative_point()\n"
        "print(repr(p.x), repr(p.y))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def _importtime(cwd: Path, env: dict[str, str], top: int = 12) -> list[tuple[float, str]]:
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _LOCATE_IMPORTS],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    rows = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]) / 1e6, parts[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out-dir", type=Path, default=None, help="folder for the store")
    ap.add_argument("--keep", action="store_true", help="keep a temporary --out-dir")
    args = ap.parse_args()
    tmp = None
    if args.out_dir is None:
        tmp = tempfile.mkdtemp(prefix="gridmap-startup-")
        args.out_dir = Path(tmp)
    cwd = args.out_dir
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GRIDMAP_DATABASE_URL": f"sqlite:///{cwd / 'gridmap.db'}"}
    # compiled modules cached as on an installed system, but kept out of the source tree
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cwd / "pycache")
    try:
        t = time.perf_counter()
        subprocess.run([*_gridmap(), "run"], cwd=cwd, env=env, check=True, capture_output=True)
        print(f"gridmap run (store in {cwd}): {time.perf_counter() - t:.1f} s")
        lon, lat = _point(cwd, env)
        runs = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "gridmap --help": [*_gridmap(), "--help"],
            f"gridmap locate {lon:.5f} {lat:.5f}": [*_gridmap(), "locate", repr(lon), repr(lat)],
            "imports of gridmap locate": [sys.executable, "-c", _LOCATE_IMPORTS],
        }
        out = subprocess.run(
            list(runs.values())[2], cwd=cwd, env=env, check=True, capture_output=True, text=True
        ).stdout
        assert "grid_code" in out, out
        for cmd in runs.values():  # warm the file cache
            _time(cmd, cwd, env)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, cmd in runs.items():
                times[name].append(_time(cmd, cwd, env))
        base = np.median(times["python -c pass"])
        print(f"\nwhole processes, median of {args.repeat} alternating rounds")
        print(f"{'command':<44}{'wall s':>8}{'- pass s':>10}{'x pass':>8}")
        for name, ts in times.items():
            med = float(np.median(ts))
            print(f"{name:<44}{med:>8.3f}{med - base:>10.3f}{med / base:>8.1f}")
        print("targets: gridmap --help ~0.3 s; gridmap locate under 1 s of import")
        print("\nheaviest imports of gridmap locate (cumulative s, python -X importtime):")
        for sec, name in _importtime(cwd, env):
            print(f"  {sec:6.3f}  {name}")
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
