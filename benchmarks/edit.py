"""Edit latency and robustness on a synthetic city (plain script, not a test).

Partitions a seeded synthetic city, then moves every building that lies on a
grid boundary to the neighbouring grid (one edit each, on the original plan),
and reports: edits applied / refused (by check), the worst gap and overlap of
the applied edits' communities, and the time per edit against the time of a
full quality report (the baseline measured in the same run).

Run: ``python benchmarks/edit.py [n_buildings] [max_edits]``
"""

from __future__ import annotations

import sys
import time
from collections import Counter

import numpy as np
import shapely

from gridmap.partition import partition
from gridmap.partition.edit import merge_grids, move_buildings
from gridmap.partition.quality import quality_report
from gridmap.synth import synth_city
from gridmap.validation import validate_layers


def main(n_buildings: int = 1500, max_edits: int = 40) -> None:
    raw = synth_city(n_buildings=n_buildings, seed=0)
    layers, _ = validate_layers(raw)
    t = time.perf_counter()
    plan = partition(layers, seed=0)
    t_part = time.perf_counter() - t
    g = plan.grids
    t = time.perf_counter()
    quality_report(
        g,
        plan.buildings,
        layers,
        min_households=200,
        max_households=500,
        households=plan.households,
    )
    t_report = time.perf_counter() - t
    # candidate moves: a building whose footprint lies within 30 m of another grid of its community
    b2g = plan.buildings.drop_duplicates("building_id").set_index("building_id")["grid_code"]
    foot = layers.buildings.set_index(layers.buildings["building_id"].astype(str)).geometry
    geoms = dict(zip(g["grid_code"], g.geometry, strict=True))
    comm = dict(zip(g["grid_code"], g["community_id"], strict=True))
    tree = shapely.STRtree(np.asarray(g.geometry.array, dtype=object))
    cands = []
    for bid, code in b2g.items():
        if bid not in foot.index:
            continue
        fp = foot[bid]
        for j in tree.query(fp.buffer(30), predicate="intersects"):
            other = g["grid_code"].iloc[j]
            if other != code and comm[other] == comm[code] and not geoms[other].touches(fp):
                cands.append((bid, other))
                break
        if len(cands) >= max_edits:
            break
    outcomes: Counter[str] = Counter()
    times = []
    worst_gap = worst_overlap = 0.0
    for bid, other in cands:
        t = time.perf_counter()
        r = move_buildings(plan, layers, [bid], other)
        times.append(time.perf_counter() - t)
        if r.ok:
            outcomes["applied"] += 1
            c = r.figures.communities
            worst_gap = max(worst_gap, float(c["gap_area_m2"].max()))
            worst_overlap = max(worst_overlap, float(c["overlap_area_m2"].max()))
        else:
            for check in sorted({v["check"] for v in r.errors}):
                outcomes[f"refused:{check}"] += 1
    pairs = []
    for code, geom in list(geoms.items())[:10]:
        for j in tree.query(geom, predicate="touches"):
            other = g["grid_code"].iloc[j]
            if comm[other] == comm[code]:
                pairs.append((code, other))
                break
    t = time.perf_counter()
    for a, b in pairs:
        merge_grids(plan, layers, [a, b])
    t_merge = (time.perf_counter() - t) / max(len(pairs), 1)
    rows = [
        ("buildings / grids", f"{len(layers.buildings)} / {len(g)}"),
        ("partition (s)", f"{t_part:.2f}"),
        ("quality report, whole plan (s) [baseline]", f"{t_report:.3f}"),
        ("move edits tried", str(len(cands))),
        *[(k, str(v)) for k, v in sorted(outcomes.items())],
        (
            "move: median s (ratio to baseline)",
            f"{np.median(times):.3f} ({np.median(times) / t_report:.1f}x)",
        ),
        ("move: max s", f"{max(times):.3f}"),
        ("merge: mean s (ratio)", f"{t_merge:.3f} ({t_merge / t_report:.1f}x)"),
        ("worst gap / overlap after applied moves (m²)", f"{worst_gap:.3f} / {worst_overlap:.3f}"),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")  # noqa: T201


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
