"""Benchmark ``validate_layers`` and its id work against plain pandas, in the same run.

    python benchmarks/validation.py [--buildings 50000] [--rounds 3] [--seed 0]
                                    [--baseline FILE [--baseline FILE ...]]

Draws a synthetic city (``synth_city``, with household rows: ~1.07 M for 50,000
buildings), then times, in alternating rounds (CPU seconds, medians):

* ``validate_layers`` on the raw layers (the whole validation);
* gridmap's id work alone: ``_id_strings`` (ids as text, ``12.0`` -> ``"12"``,
  stripped, ``None`` where missing) on every id and reference column it converts
  (communities, buildings, households, staff);
* the plain pandas baseline doing the same id work: ``astype(str).str.strip()`` on
  the same columns, and ``map`` of the households' ``building_id`` to building rows;
* with ``--baseline FILE`` (another version's ``validation.py``, e.g. from
  ``git show HEAD~1:gridmap/validation.py > /tmp/validation_before.py``; repeat the option
  for several), that version's ``validate_layers`` on the same layers, in the same rounds;
  its findings must be the same as this version's (checked), and the ratio is printed.

Issue #11 figure, measured once before the change (row-by-row ``_id_str`` through
``Series.map``, ~3.5 M calls): ``validate_layers`` 3.6 s CPU on this city (median of 3);
that code is ``git show 0d9c637:gridmap/validation.py`` (target: a third of its CPU).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gridmap.synth import synth_city
from gridmap.validation import _id_strings, validate_layers

_COLUMNS = {
    "communities": ("community_id",),
    "buildings": ("building_id", "community_id", "compound_id", "name"),
    "households": ("household_id", "building_id", "unit"),
    "staff": ("staff_id",),
}


def _cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def _findings(report) -> list[tuple]:
    return [
        (f.layer, f.severity, f.code, f.message, f.count, tuple(f.ids)) for f in report.findings
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--buildings", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--baseline", type=Path, action="append", default=[], help="another validation.py to time"
    )
    args = ap.parse_args()
    raw = synth_city(n_buildings=args.buildings, seed=args.seed)
    cols = [
        raw[layer][c]
        for layer, names in _COLUMNS.items()
        if raw.get(layer) is not None
        for c in names
        if c in raw[layer].columns
    ]
    n_values = sum(len(c) for c in cols)
    hh = raw["households"]
    print(
        f"{len(raw['buildings']):,} buildings, {len(hh):,} households; "
        f"{len(cols)} id columns, {n_values:,} values"
    )
    b_ids = raw["buildings"]["building_id"]
    index = pd.Series(np.arange(len(b_ids)), index=b_ids.astype(str).str.strip())

    def gridmap_ids() -> None:
        for c in cols:
            _id_strings(c)
        pd.Index(_id_strings(b_ids)).get_indexer(_id_strings(hh["building_id"]))

    def pandas_ids() -> None:
        for c in cols:
            c.astype(str).str.strip()
        hh["building_id"].astype(str).str.strip().map(index)

    runs = {
        "validate_layers": lambda: validate_layers(raw),
        "id work: gridmap _id_strings": gridmap_ids,
        "id work: pandas astype(str) + map": pandas_ids,
    }
    new_findings = _findings(validate_layers(raw)[1]) if args.baseline else []
    for k, path in enumerate(args.baseline):
        spec = importlib.util.spec_from_file_location(f"baseline_validation_{k}", path)
        assert spec is not None and spec.loader is not None
        old = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = old  # (dataclasses look their module up there)
        spec.loader.exec_module(old)
        assert _findings(old.validate_layers(raw)[1]) == new_findings, f"findings differ: {path}"
        runs[f"baseline {k + 1}: validate_layers"] = functools.partial(old.validate_layers, raw)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            times[name].append(_cpu(fn))
    base = np.array(times["id work: pandas astype(str) + map"])
    print(f"\nCPU seconds, median of {args.rounds} alternating rounds")
    print(f"{'run':<40}{'cpu s':>8}{'x pandas ids':>14}")
    for name, ts in times.items():
        arr = np.array(ts)
        print(f"{name:<40}{np.median(arr):>8.3f}{np.median(arr / base):>14.2f}")
    for k, path in enumerate(args.baseline):
        base_t = np.array(times[f"baseline {k + 1}: validate_layers"])
        ratio = np.array(times["validate_layers"]) / base_t
        print(
            f"validate_layers: {np.median(ratio):.2f}x the CPU of baseline {k + 1} ({path}), "
            "median of the per-round ratios"
        )
    print("before the change: validate_layers 3.6 s CPU on the 50,000-building city (target 3x)")


if __name__ == "__main__":
    main()
