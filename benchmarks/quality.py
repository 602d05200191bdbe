"""Time the quality report, grid codes and 四至 on box lattices of growing size.

Run: ``python benchmarks/quality.py``. The baseline is the smallest lattice
(~500 grids) measured in the same run; the ratio column shows how time grows
with the number of grids (4× the grids → ~4× the time means linear).

Each lattice is n×n cells of 100 m (one grid each), grouped into communities of
9×9 cells, with a named road along every third cell line and a wall along every
fifth, one building per grid, and a "previous" plan in which every tenth
building sat in another grid.
"""

from __future__ import annotations

import time
from functools import partial

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
from shapely import LineString, box

from gridmap.layers import Layers
from gridmap.partition.codes import assign_codes, boundary_descriptions
from gridmap.partition.plan import Plan, QualityReport
from gridmap.partition.quality import quality_report

CRS = pyproj.CRS.from_epsg(32650)
X0, Y0 = 400_000.0, 3_500_000.0


def lattice(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    cells, cids = [], []
    for r in range(n):
        for c in range(n):
            cells.append(box(X0 + c * 100, Y0 + r * 100, X0 + c * 100 + 100, Y0 + r * 100 + 100))
            cids.append(f"c{r // 9:02d}{c // 9:02d}")
    cid_list = sorted(set(cids))
    comm_geoms = []
    for cid in cid_list:
        r, c = int(cid[1:3]), int(cid[3:5])
        comm_geoms.append(
            box(
                X0 + c * 900,
                Y0 + r * 900,
                X0 + min(n, c * 9 + 9) * 100,
                Y0 + min(n, r * 9 + 9) * 100,
            )
        )
    comms = gpd.GeoDataFrame(
        {
            "community_id": cid_list,
            "name": [f"{c}社区" for c in cid_list],
            "code": [None] * len(cid_list),
        },
        geometry=comm_geoms,
        crs=CRS,
    )
    hh = rng.integers(200, 500, len(cells))
    bids = [f"b{i}" for i in range(len(cells))]
    blds = gpd.GeoDataFrame(
        {"building_id": bids, "households": hh, "community_id": cids},
        geometry=[g.centroid.buffer(10, quad_segs=1) for g in cells],
        crs=CRS,
    )
    roads, names = [], []
    for k in range(0, n + 1, 3):
        roads.append(LineString([(X0 + k * 100, Y0), (X0 + k * 100, Y0 + n * 100)]))
        names.append(f"经{k}路")
        roads.append(LineString([(X0, Y0 + k * 100), (X0 + n * 100, Y0 + k * 100)]))
        names.append(f"纬{k}路")
    walls = [
        LineString([(X0 + k * 100 + 2, Y0), (X0 + k * 100 + 2, Y0 + n * 100)])
        for k in range(0, n + 1, 5)
    ]
    layers = Layers(
        communities=comms,
        buildings=blds,
        roads=gpd.GeoDataFrame(
            {"name": names, "class": [None] * len(names)}, geometry=roads, crs=CRS
        ),
        barriers=gpd.GeoDataFrame({"kind": ["wall"] * len(walls)}, geometry=walls, crs=CRS),
        crs=CRS,
    )
    grids = gpd.GeoDataFrame({"community_id": cids, "households": hh}, geometry=cells, crs=CRS)
    grids = assign_codes(grids, comms)
    rows = pd.DataFrame(
        {"building_id": bids, "grid_code": grids["grid_code"], "households": hh, "part": None}
    )
    prev_codes = grids["grid_code"].to_numpy().copy()
    prev_codes[::10] = np.roll(prev_codes[::10], 1)
    previous = Plan(
        grids,
        rows.assign(grid_code=prev_codes),
        None,
        QualityReport(pd.DataFrame(), pd.DataFrame()),
        {},
        CRS,
    )
    return grids, rows, layers, previous


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    rows_out = []
    base: dict[str, float] = {}
    for n in (22, 32, 45):
        grids, rows, layers, previous = lattice(n)
        timings = {
            "quality_report": best_of(
                partial(
                    quality_report,
                    grids,
                    rows,
                    layers,
                    min_households=200,
                    max_households=500,
                    previous=previous,
                )
            ),
            "assign_codes": best_of(partial(assign_codes, grids, layers.communities)),
            "boundary_descriptions": best_of(partial(boundary_descriptions, grids, layers.roads)),
        }
        for name, t in timings.items():
            base.setdefault(name, t)
            rows_out.append((n * n, name, t, t / base[name]))
    rep = quality_report(
        grids, rows, layers, min_households=200, max_households=500, previous=previous
    )
    print(f"{'grids':>6} {'function':<22} {'seconds':>8} {'ratio':>6}")
    for n_grids, name, t, ratio in rows_out:
        print(f"{n_grids:>6} {name:<22} {t:>8.3f} {ratio:>6.2f}")
    o = rep.overall
    print(
        f"\nlargest lattice: share on roads {o['share_boundary_on_roads']:.3f}, "
        f"stability {o['stability']:.3f}, PP mean {o['mean_polsby_popper']:.4f}"
    )
    print("sample 四至:", boundary_descriptions(grids.iloc[:50], layers.roads).iloc[10])


if __name__ == "__main__":
    main()
