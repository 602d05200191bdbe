"""The partitioner on the two shared OpenStreetMap areas, against METIS, scored by one report.

Run::

    python benchmarks/real_areas.py            # needs ../shared/data/real beside the checkout

Both areas are read with the ``osm`` preset, communities derived from the main roads
(:func:`gridmap.areas.derive_communities`), households estimated. ``gridmap`` is
:func:`gridmap.partition.partition`; ``metis`` cuts the same units (pymetis, contiguous,
household vertex weights, road-weighted edges) with k = round(total / 350). Both are
scored by :func:`gridmap.partition.quality.quality_report` (the METIS grids carry no
``kind``: all residential). Columns: seconds, grids, dedicated grids, % residential
grids in band, % internal boundary on vehicle streets (all; where blocks allow), grids
with > 50 m of arterial inside (unnamed / forced), residential grids above 1 km²,
mean Polsby–Popper of all grids and of residential grids (a dedicated grid's outline is
the land between main roads it stands on).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
from partition import MAX, MIN, community_units, label_metis, score

from gridmap.areas import derive_communities
from gridmap.io import read_layers
from gridmap.partition import partition
from gridmap.validation import validate_layers

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
AREAS = {
    "nanjing": REAL / "nanjing-central" / "nanjing_central.gpkg",
    "shanghai": REAL / "shanghai-huangpu-lujiazui" / "shanghai_huangpu_lujiazui.gpkg",
}


def row(area: str, method: str, secs: float, o: dict[str, Any]) -> dict[str, Any]:
    def pct(v: Any) -> float:
        return round(100 * float(v), 1) if v is not None else float("nan")

    return {
        "area": area,
        "method": method,
        "seconds": round(secs, 2),
        "grids": int(o["n_grids"]),
        "dedicated": int(o.get("n_dedicated", 0)),
        "% res in band": pct(o.get("share_residential_in_band", o["share_in_band"])),
        "% on streets": pct(o["share_boundary_on_streets"]),
        "% streets where blocks allow": pct(o["share_boundary_on_streets_allowed"]),
        "% on roads": pct(o["share_boundary_on_roads"]),
        "arterial >50m": int(o["n_grids_arterial_inside"]),
        "forced": int(o["n_grids_arterial_forced"]),
        "over 1 km²": int(o.get("n_over_area_cap", 0)),
        "mean PP": round(o["mean_polsby_popper"], 3),
        "PP res": round(o.get("mean_polsby_popper_residential", o["mean_polsby_popper"]), 3),
    }


def main() -> None:
    rows = []
    for name, path in AREAS.items():
        if not path.exists():
            print(f"{path} is missing; skipped")
            continue
        raw = read_layers(path, preset="osm")
        layers, _ = validate_layers({**raw, "communities": derive_communities(raw)})
        t0 = time.perf_counter()
        plan = partition(layers, min_households=MIN, max_households=MAX)
        rows.append(row(name, "gridmap", time.perf_counter() - t0, plan.report.overall))
        t0 = time.perf_counter()
        units = community_units(layers)
        res = [(cid, u, label_metis(u)) for cid, u in units]
        secs = time.perf_counter() - t0
        o = score(layers, res)
        rows.append(row(name, "metis", secs, o))
    pd.set_option("display.width", 220)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
