"""Benchmark the building cells: ``build_units`` with the previous per-cell helpers and today's.

    python benchmarks/cells.py [--buildings 50000] [--seed 0] [--small 3000]
                               [--small-seeds 1 2 3] [--share] [--out-dir DIR]
                               [--baseline-rev 5fc2365]

Draws a synthetic city (``synth_city``), validates it and cuts it into the tasks
``partition`` makes (one per community, bands 200-500, target 350). Then every
community's units are built twice, in alternating order (old first on even
communities, new first on odd ones, so both see the same machine load):

* ``new``: :func:`gridmap.partition.units.build_units` as it is, with the array
  helpers of :mod:`gridmap.partition.cells`;
* ``old``: the same function with the per-cell helpers of units.py at
  ``--baseline-rev`` (the last revision before cells.py; read with ``git show`` and
  loaded as a module of its own) swapped in (``_cells_of_block``, ``_seed_points``,
  ``_clean_cells``, ``_merge_crumbs``, ``_shared_edges_exact``, ``_near_guides``,
  ``_polys``, ``_dissolve``, ``_polygonal``, ``_assign_parts``,
  ``_empty_block_cells``), by setting the module attributes in this process only.

It prints CPU seconds (``time.process_time``) of ``build_units`` over all
communities and of the swapped helpers alone (the cell building), with the ratio
old/new measured in the same run, and compares the two ``Units``: cells byte for
byte (WKB), every array exactly, members, household parts and notes. A change
to the tessellation (other outline seeds, Voronoi land dissolved before it is
clipped …) draws other cells: the communities that differ are counted
(``communities_differ``, ``fields_differ``) and, where they differ, the
invariants of both helper sets' cells are checked instead (``invariants_old`` /
``invariants_new``): communities whose cells are not a valid coverage, the
largest gap or overlap between the cells' union and the community (m²), and
buildings whose cells leave more than 1 % of the building's land in the
community uncovered. The run fails only when the new cells break an invariant
more often than the old ones. Run it against another tree with
``PYTHONPATH=TREE python benchmarks/cells.py`` (the baseline is still read from
this checkout's git history).

With ``--small N`` (default 3000 buildings; 0 skips) whole ``partition`` runs on
small cities (``--small-seeds``) are compared: grid codes, households per grid,
grid geometries (``shapely.equals_exact(..., 1e-6)``) and building → grid rows
(reported in ``plan_differs``; other cells give other plans, whose quality
``benchmarks/partition.py --targets`` compares).
``--share`` also partitions the big city twice (old, new) and reports the CPU
share of ``build_units`` in ``partition`` and the partition ratio (slow: minutes).

Issue #11 baseline (50,000 buildings, seed 0, before cells.py): ``build_units``
took 37.7 CPU-s of 63.5 CPU-s of ``partition`` (59 %, 283 calls with the retries).
A JSON line per run is appended to ``--out-dir``/cells.jsonl (default: a temporary
folder, removed at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import shapely

import gridmap.partition.cells as cells_mod
import gridmap.partition.units as units_mod
from gridmap.synth import synth_city
from gridmap.validation import validate_layers

partition_mod = importlib.import_module("gridmap.partition.partition")

SWAPPED = (
    "_cells_of_block",
    "_seed_points",
    "_clean_cells",
    "_merge_crumbs",
    "_shared_edges_exact",
    "_near_guides",
    "_polys",
    "_dissolve",
    "_polygonal",
    "_assign_parts",
    "_empty_block_cells",
)
# the helpers build_units calls itself: their CPU is the cell building
TIMED = ("_cells_of_block", "_seed_points", "_clean_cells", "_shared_edges_exact")
MIN, MAX, TARGET = 200, 500, 350.0


BASELINE: Any = None  # the units.py of --baseline-rev, loaded by main()


def load_baseline(rev: str) -> types.ModuleType:
    """Load ``gridmap/partition/units.py`` as it was at ``rev`` as a module of its own."""
    root = Path(__file__).resolve().parent.parent
    try:
        source = subprocess.run(
            ["git", "show", f"{rev}:gridmap/partition/units.py"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"cannot read units.py at {rev!r} (a git checkout with that revision?): {exc}")
    module = types.ModuleType("gridmap_units_baseline")
    module.__file__ = f"units.py@{rev}"
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


@contextlib.contextmanager
def helpers(new: bool, clock: dict[str, float]) -> Iterator[None]:
    """Install the old or new helpers in units.py, timing the top-level ones."""
    # units.py calls some helpers itself; the others only through the ones it calls
    saved = {name: getattr(units_mod, name) for name in SWAPPED if hasattr(units_mod, name)}
    src = cells_mod if new else BASELINE

    def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                clock["cells"] += time.process_time() - t

        return run

    try:
        for name in saved:
            fn = getattr(src, name)
            setattr(units_mod, name, timed(fn) if name in TIMED else fn)
        yield
    finally:
        for name, fn in saved.items():
            setattr(units_mod, name, fn)


def community_calls(layers: Any) -> list[dict[str, Any]]:
    """Keyword arguments of the ``build_units`` call partition makes per community."""
    tasks = partition_mod._tasks(
        layers,
        min_households=MIN,
        max_households=MAX,
        target=TARGET,
        n_grids=None,
        seed=0,
        previous=None,
        locked=[],
    )
    out = []
    for t in tasks:
        geom = t["geometry"]
        if not shapely.is_valid(geom):
            geom = shapely.make_valid(geom)
        out.append(
            {
                "community": geom,
                "buildings": t["buildings"],
                "households": t["households"],
                "roads": t["roads"],
                "barriers": t["barriers"],
                "compounds": t["compounds"],
                "min_households": MIN,
                "max_households": MAX,
                "target": TARGET,
                "road_classes": t["road_classes"],
            }
        )
    return out


def units_diff(a: Any, b: Any) -> list[str]:
    """Names of the ``Units`` fields that differ (empty: identical)."""
    bad = []
    for name in (
        "cells",
        "cell_unit",
        "households",
        "area",
        "perimeter",
        "exterior",
        "cx",
        "cy",
        "edges",
        "edge_length",
        "edge_cost",
        "edge_road",
        "edge_arterial",
        "compound",
        "block",
        "outer",
    ):
        x, y = getattr(a, name), getattr(b, name)
        if name == "cells":
            same = len(x) == len(y) and list(shapely.to_wkb(x)) == list(shapely.to_wkb(y))
        elif x is None or y is None:
            same = x is None and y is None
        elif x.dtype == object:
            same = x.tolist() == y.tolist()
        else:
            same = x.shape == y.shape and bool(np.array_equal(x, y))
        if not same:
            bad.append(name)
    if not a.members.equals(b.members):
        bad.append("members")
    if a.household_parts != b.household_parts:
        bad.append("household_parts")
    if a.notes != b.notes:
        bad.append("notes")
    return bad


def plan_diff(a: Any, b: Any) -> list[str]:
    """What differs between two plans: codes, households, geometries, building rows."""
    ga = a.grids.sort_values("grid_code").reset_index(drop=True)
    gb = b.grids.sort_values("grid_code").reset_index(drop=True)
    if ga["grid_code"].tolist() != gb["grid_code"].tolist():
        return ["grid codes"]
    bad = []
    if ga["households"].tolist() != gb["households"].tolist():
        bad.append("households per grid")
    geo_a, geo_b = np.asarray(ga.geometry.array), np.asarray(gb.geometry.array)
    if not shapely.equals_exact(geo_a, geo_b, 1e-6).all():
        bad.append("grid geometries")
    cols = ["building_id", "part", "grid_code", "households"]
    ba = a.buildings[cols].sort_values(cols[:2]).reset_index(drop=True)
    bb = b.buildings[cols].sort_values(cols[:2]).reset_index(drop=True)
    if not ba.equals(bb):
        bad.append("buildings")
    return bad


def invariants(units: Any, kw: dict[str, Any]) -> dict[str, Any]:
    """Invariants of one community's cells: they tile it, each building's cells cover it.

    Returns whether the cells form a valid coverage, the area of the gaps and
    overlaps between their union and the community (m²), and the buildings whose
    cells (the cells of all their parts) leave more than 1 % of the building's land
    in the community uncovered.
    """
    cells = np.asarray(units.cells, dtype=object)
    community = kw["community"]
    try:
        union = shapely.coverage_union_all(cells)
    except shapely.errors.GEOSException:  # not a coverage: the robust union
        union = shapely.union_all(cells)
    mismatch = float(shapely.area(shapely.symmetric_difference(union, community)))
    overlap = float(shapely.area(cells).sum()) - float(shapely.area(union))
    b = kw["buildings"].reset_index(drop=True)
    bgeom = shapely.make_valid(np.asarray(b["geometry"], dtype=object))
    land = shapely.intersection(bgeom, community)
    rows = units.members.groupby("building_id", sort=False)["cell"].apply(list)
    own = np.array(
        [shapely.union_all(cells[rows[str(i)]]) for i in b["building_id"].astype(str)],
        dtype=object,
    )
    missing = shapely.area(shapely.difference(land, own))
    uncovered = int((missing > 0.01 * np.maximum(shapely.area(land), 1e-9)).sum())
    return {
        "coverage": bool(shapely.coverage_is_valid(cells)),
        "gap_overlap_m2": round(max(mismatch, abs(overlap)), 4),
        "uncovered": uncovered,
    }


def run_units(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Build every community's units with both helper sets, alternating the order.

    Where the two differ, the invariants of both are checked (:func:`invariants`).
    """
    cpu = {"old": 0.0, "new": 0.0}
    cells = {"old": {"cells": 0.0}, "new": {"cells": 0.0}}
    differ: list[tuple[int, list[str]]] = []
    inv: dict[str, dict[str, Any]] = {
        w: {"not_coverage": 0, "gap_overlap_m2_max": 0.0, "uncovered": 0} for w in ("old", "new")
    }
    for i, kw in enumerate(calls):
        got = {}
        for which in ("old", "new") if i % 2 == 0 else ("new", "old"):
            with helpers(which == "new", cells[which]):
                t = time.process_time()
                got[which] = units_mod.build_units(**kw)
                cpu[which] += time.process_time() - t
        bad = units_diff(got["old"], got["new"])
        if not bad:
            continue
        differ.append((i, bad))
        for which in ("old", "new"):
            one = invariants(got[which], kw)
            inv[which]["not_coverage"] += int(not one["coverage"])
            inv[which]["gap_overlap_m2_max"] = max(
                inv[which]["gap_overlap_m2_max"], one["gap_overlap_m2"]
            )
            inv[which]["uncovered"] += one["uncovered"]
    return {
        "communities": len(calls),
        "build_units_old_cpu_s": round(cpu["old"], 2),
        "build_units_new_cpu_s": round(cpu["new"], 2),
        "build_units_ratio": round(cpu["old"] / max(cpu["new"], 1e-9), 2),
        "cells_old_cpu_s": round(cells["old"]["cells"], 2),
        "cells_new_cpu_s": round(cells["new"]["cells"], 2),
        "cells_ratio": round(cells["old"]["cells"] / max(cells["new"]["cells"], 1e-9), 2),
        "communities_differ": len(differ),
        "fields_differ": sorted({name for _, names in differ for name in names}),
        "invariants_old": inv["old"] if differ else None,
        "invariants_new": inv["new"] if differ else None,
    }


def run_partition(layers: Any) -> dict[str, Any]:
    """Partition twice (old, new helpers): CPU, build_units share, identity of the plans."""
    out: dict[str, Any] = {}
    plans = {}
    inner = partition_mod.build_units
    for which in ("old", "new"):
        spent = [0.0]

        def timed(*args: Any, _spent: list[float] = spent, **kwargs: Any) -> Any:
            t = time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                _spent[0] += time.process_time() - t

        partition_mod.build_units = timed
        try:
            with helpers(which == "new", {"cells": 0.0}):
                t = time.process_time()
                plans[which] = partition_mod.partition(layers, seed=0)
                total = time.process_time() - t
        finally:
            partition_mod.build_units = inner
        out[f"partition_{which}_cpu_s"] = round(total, 2)
        out[f"build_units_{which}_share"] = round(spent[0] / total, 3)
    out["partition_ratio"] = round(out["partition_old_cpu_s"] / out["partition_new_cpu_s"], 2)
    out["grids"] = len(plans["old"].grids)
    out["plan_differs"] = plan_diff(plans["old"], plans["new"])
    return out


def main() -> None:
    """Run the benchmark and print one JSON line per city."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buildings", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small", type=int, default=3000, help="buildings of the small cities")
    ap.add_argument("--small-seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--share", action="store_true", help="also partition the big city twice")
    ap.add_argument("--out-dir", type=Path, default=None)
    ap.add_argument(
        "--baseline-rev",
        default="5fc2365",
        help="git revision whose units.py gives the old per-cell helpers (before cells.py)",
    )
    args = ap.parse_args()
    global BASELINE
    BASELINE = load_baseline(args.baseline_rev)
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="gridmap-cells-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for seed in args.small_seeds if args.small else []:
            layers, _ = validate_layers(synth_city(n_buildings=args.small, seed=seed))
            row = {"city": f"{args.small} buildings, seed {seed}", **run_partition(layers)}
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
        layers, _ = validate_layers(synth_city(n_buildings=args.buildings, seed=args.seed))
        row = {
            "city": f"{args.buildings} buildings, seed {args.seed}",
            **run_units(community_calls(layers)),
        }
        if args.share:
            row.update(run_partition(layers))
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
        with open(out_dir / "cells.jsonl", "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    finally:
        if args.out_dir is None:
            shutil.rmtree(out_dir, ignore_errors=True)
    broken = [
        r["city"]
        for r in rows
        if r.get("invariants_new")
        and (
            r["invariants_new"]["not_coverage"] > r["invariants_old"]["not_coverage"]
            or r["invariants_new"]["gap_overlap_m2_max"]
            > max(r["invariants_old"]["gap_overlap_m2_max"], 0.01)
            or r["invariants_new"]["uncovered"] > r["invariants_old"]["uncovered"]
        )
    ]
    if broken:
        raise SystemExit(f"the new cells break the invariants in: {', '.join(broken)}")


if __name__ == "__main__":
    main()
