"""Benchmark start-up: ``gridmap --help`` and ``gridmap locate LON LAT`` against ``python -c pass``.

    python benchmarks/startup.py [--repeat 5] [--out-dir DIR] [--keep] [--baseline-src DIR]

Runs ``gridmap run`` once in ``--out-dir`` (default: a temporary folder) to make a
store with a published plan of the bundled sample city, then times, ``--repeat``
times each in alternating rounds (so that all see the same background load), whole
processes of:

* ``python -c pass`` (the baseline: the interpreter alone);
* ``gridmap --help``;
* ``gridmap locate LON LAT`` of a point inside a grid of the stored plan;
* ``python -c "import gridmap.cli.locate, <what the locate command imports>"`` —
  the import part of the command alone (with the interpreter's exit: its last garbage
  collections, ~0.2 s after these imports, which the ``gridmap`` command skips by
  freezing the collector as it exits);
* with ``--baseline-src DIR`` (a folder holding another version's ``gridmap/`` package,
  e.g. ``git archive HEAD gridmap | tar -x -C DIR``), the last three again with that
  version, in the same rounds, so that before/after ratios come from one run.

Compiled modules are cached (in ``--out-dir``/pycache, not beside the sources), as on
an installed system; a store already in ``--out-dir`` is reused. Reported: medians of wall
seconds and of CPU seconds (user + system of the child: steadier than wall time on a
loaded machine) and their ratios to the baseline. Targets: ``gridmap --help`` ~0.3 s,
``gridmap locate`` under 1 s. Then the modules the locate command must not load (Alembic,
folium, FastAPI, the partitioner) are checked, and its heaviest imports
(``python -X importtime``) are listed.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def _gridmap(src: Path | None = None) -> list[str]:
    exe = shutil.which("gridmap")
    return [exe] if exe and src is None else [sys.executable, "-m", "gridmap"]


_UNWANTED = ("alembic", "folium", "fastapi", "scipy", "gridmap.partition.partition")


def _time(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one whole process."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _unwanted(cwd: Path, env: dict[str, str]) -> list[str]:
    code = (
        f"import sys; {_LOCATE_IMPORTS}; "
        f"print(' '.join(m for m in {_UNWANTED!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.split()


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
    ap.add_argument(
        "--baseline-src", type=Path, default=None, help="folder with another gridmap/ to compare"
    )
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
        if not (cwd / "gridmap.db").exists():
            t = time.perf_counter()
            subprocess.run([*_gridmap(), "run"], cwd=cwd, env=env, check=True, capture_output=True)
            print(f"gridmap run (store in {cwd}): {time.perf_counter() - t:.1f} s")
        lon, lat = _point(cwd, env)
        gm = _gridmap()
        runs: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            "gridmap --help": ([*gm, "--help"], env),
            f"gridmap locate {lon:.5f} {lat:.5f}": ([*gm, "locate", repr(lon), repr(lat)], env),
            "imports of gridmap locate": ([sys.executable, "-c", _LOCATE_IMPORTS], env),
        }
        if args.baseline_src is not None:
            src = args.baseline_src.resolve()
            benv = {**env, "PYTHONPATH": str(src), "PYTHONPYCACHEPREFIX": str(cwd / "pycache-b")}
            bm = _gridmap(src)
            runs["baseline: gridmap --help"] = ([*bm, "--help"], benv)
            runs["baseline: gridmap locate"] = ([*bm, "locate", repr(lon), repr(lat)], benv)
            runs["baseline: imports of gridmap locate"] = (
                [sys.executable, "-c", _LOCATE_IMPORTS],
                benv,
            )
        for name, (cmd, cenv) in runs.items():
            if "locate" in name and "imports" not in name:
                out = subprocess.run(
                    cmd, cwd=cwd, env=cenv, check=True, capture_output=True, text=True
                ).stdout
                assert "grid_code" in out, out
        for cmd, cenv in runs.values():  # warm the file cache
            _time(cmd, cwd, cenv)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, (cmd, cenv) in runs.items():
                times[name].append(_time(cmd, cwd, cenv))
        base_wall, base_cpu = np.median(np.array(times["python -c pass"]), axis=0)
        print(f"\nwhole processes, median of {args.repeat} alternating rounds")
        print(f"{'command':<44}{'wall s':>8}{'x pass':>8}{'CPU s':>8}{'- pass':>8}{'x pass':>8}")
        for name, ts in times.items():
            wall, cpu = (float(v) for v in np.median(np.array(ts), axis=0))
            print(
                f"{name:<44}{wall:>8.3f}{wall / base_wall:>8.1f}"
                f"{cpu:>8.3f}{cpu - base_cpu:>8.3f}{cpu / base_cpu:>8.1f}"
            )
        if args.baseline_src is not None:
            cpu = {n: float(np.median(np.array(ts)[:, 1])) for n, ts in times.items()}
            for what in ("gridmap --help", "gridmap locate", "imports of gridmap locate"):
                this = next(v for n, v in cpu.items() if n.startswith(what))
                print(f"{what}: CPU {this / cpu['baseline: ' + what]:.2f}x the baseline's")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print("targets: gridmap --help ~0.3 s; gridmap locate under 1 s")
        bad = _unwanted(cwd, env)
        print(f"modules the locate command must not load: {', '.join(bad) if bad else 'none'}")
        print("\nheaviest imports of gridmap locate (cumulative s, python -X importtime):")
        for sec, name in _importtime(cwd, env):
            print(f"  {sec:6.3f}  {name}")
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
