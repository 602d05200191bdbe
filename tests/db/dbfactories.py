"""Hand-built Layers and Plans for the storage tests (shapely boxes in EPSG:4549).

Also used by the kill -9 worker and, as a fallback, by ``benchmarks/storage.py``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.layers import SENSITIVE_FLAGS, Layers
from gridmap.partition.plan import Plan, QualityReport

CRS = pyproj.CRS.from_epsg(4549)
X0, Y0 = 384_800.0, 3_548_000.0  # about lon 118.78, lat 32.05


def make_layers(
    *,
    nx: int = 2,
    ny: int = 1,
    side: int = 6,
    size: float = 600.0,
    seed: int = 0,
    households: bool = True,
    prefix: str = "",
    x0: float = X0,
    y0: float = Y0,
) -> Layers:
    """``nx × ny`` square communities, each with ``side × side`` buildings (boxes)."""
    rng = np.random.default_rng(seed)
    comm_rows, comm_geoms = [], []
    b_rows, b_geoms = [], []
    step = size / side
    for j in range(ny):
        for i in range(nx):
            k = j * nx + i
            cid = f"{prefix}c{k}"
            cx, cy = x0 + i * size, y0 + j * size
            comm_rows.append(
                {
                    "community_id": cid,
                    "name": f"幸福{prefix}{k}社区",
                    "code": f"320104{(k // 4) + 1:03d}{k + 1:03d}",
                    "street": f"街道{k // 4}",
                    "street_code": f"320104{(k // 4) + 1:03d}",
                    "district": "秦淮区",
                    "district_code": "320104",
                }
            )
            comm_geoms.append(shapely.box(cx, cy, cx + size, cy + size))
            for b in range(side * side):
                bx = cx + (b % side) * step + 0.2 * step
                by = cy + (b // side) * step + 0.25 * step
                b_rows.append(
                    {
                        "building_id": f"{cid}-b{b}",
                        "households": int(rng.integers(3, 40)),
                        "households_estimated": bool(b % 3 == 0),
                        "levels": float(rng.integers(2, 18)) if b % 5 else np.nan,
                        "use": "residential" if b % 7 else "mixed",
                        "name": f"{b}号楼" if b % 2 else None,
                        "community_id": cid,
                        "compound_id": f"{cid}-x{b % 2}" if b % 4 else None,
                    }
                )
                b_geoms.append(shapely.box(bx, by, bx + 0.55 * step, by + 0.4 * step))
    comms = gpd.GeoDataFrame(pd.DataFrame(comm_rows), geometry=comm_geoms, crs=CRS)
    blds = gpd.GeoDataFrame(pd.DataFrame(b_rows), geometry=b_geoms, crs=CRS)
    blds["name"] = blds["name"].astype("str")
    hh = None
    if households:
        n = blds["households"].to_numpy()
        rep = np.repeat(np.arange(len(blds)), n)
        seqs = np.concatenate([np.arange(k) for k in n]) if len(n) else np.array([], int)
        bids = blds["building_id"].to_numpy()[rep]
        pts = shapely.centroid(blds.geometry.values)[rep]
        hh = gpd.GeoDataFrame(
            {
                "household_id": [f"{b}-h{s}" for b, s in zip(bids, seqs, strict=True)],
                "building_id": bids,
                "unit": [str(1 + s % 3) if s % 5 else None for s in seqs],
                "floor": np.where(seqs % 6 == 0, np.nan, 1.0 + seqs // 3),
                "persons": rng.integers(1, 6, len(rep)).astype(float),
                **{f: rng.random(len(rep)) < 0.1 for f in SENSITIVE_FLAGS},
            },
            geometry=pts,
            crs=CRS,
        )
        hh["unit"] = hh["unit"].astype("str")
    xs = [x0 + i * size for i in range(nx + 1)]
    ys = [y0 + j * size for j in range(ny + 1)]
    lines = [shapely.LineString([(x, ys[0] - 50), (x, ys[-1] + 50)]) for x in xs]
    lines += [shapely.LineString([(xs[0] - 50, y), (xs[-1] + 50, y)]) for y in ys]
    roads = gpd.GeoDataFrame(
        {
            "name": [f"{prefix}中山路{k}" if k % 2 else None for k in range(len(lines))],
            "class": ["primary"] * len(lines),
            "lanes": [2 + k for k in range(len(lines))],  # an extra column, kept as JSON
        },
        geometry=lines,
        crs=CRS,
    )
    roads["name"] = roads["name"].astype("str")
    barriers = gpd.GeoDataFrame(
        {"kind": ["wall"]},
        geometry=[shapely.LineString([(x0 + 10, y0 + 10), (x0 + 100, y0 + 10)])],
        crs=CRS,
    )
    compounds = gpd.GeoDataFrame(
        {"compound_id": [f"{prefix}c0-x1"], "name": ["金陵小区"]},
        geometry=[shapely.box(x0 + 5, y0 + 5, x0 + 200, y0 + 200)],
        crs=CRS,
    )
    staff_b = blds.iloc[:: max(1, len(blds) // 8)]
    staff = gpd.GeoDataFrame(
        {
            "staff_id": [f"{prefix}s{k}" for k in range(len(staff_b))],
            "name": [f"张{k}" for k in range(len(staff_b))],
            "phone": [f"1390000{k:04d}" for k in range(len(staff_b))],
            "home_building_id": staff_b["building_id"].to_numpy(),
            "can_be_chief": [k % 2 == 0 for k in range(len(staff_b))],
            "max_posts": [1] * len(staff_b),
            "current_grid": [None] * len(staff_b),
            "current_role": [None] * len(staff_b),
        },
        geometry=shapely.centroid(staff_b.geometry.values),
        crs=CRS,
    )
    return Layers(
        communities=comms,
        buildings=blds,
        households=hh,
        roads=roads,
        barriers=barriers,
        compounds=compounds,
        staff=staff,
        crs=CRS,
    )


def make_plan(layers: Layers, *, cells: int = 2, seed: int = 0, shift: int = 0) -> Plan:
    """Fake plan: each community cut into ``cells × cells`` squares; buildings by centroid.

    ``shift`` moves the inner cut lines (in building steps) to make a different plan.
    """
    grid_rows, grid_geoms, memb = [], [], []
    comms = layers.communities
    blds = layers.buildings
    cent = shapely.centroid(blds.geometry.values)
    for _, c in comms.iterrows():
        x0, y0, x1, y1 = c.geometry.bounds
        step = (x1 - x0) / cells
        cuts = [x0 + k * step + (shift * 10.0 if 0 < k < cells else 0) for k in range(cells + 1)]
        ycuts = [y0 + k * step for k in range(cells + 1)]
        seq = 0
        for j in range(cells - 1, -1, -1):  # north → south, west → east
            for i in range(cells):
                seq += 1
                code = f"{c['code']}{seq:03d}"
                poly = shapely.box(cuts[i], ycuts[j], cuts[i + 1], ycuts[j + 1])
                inside = (blds["community_id"] == c["community_id"]).to_numpy() & shapely.covers(
                    poly, cent
                )
                sel = blds[inside]
                for bid in sel["building_id"]:
                    memb.append((bid, code))
                hh = int(sel["households"].sum())
                grid_rows.append(
                    {
                        "grid_code": code,
                        "community_id": c["community_id"],
                        "name": f"{c['name']}第{seq:03d}网格",
                        "households": hh,
                        "persons": float(hh) * 2.5 if seq % 2 else np.nan,
                        "n_buildings": len(sel),
                        "boundary_desc": f"东至{i}路, 南至{j}街",
                        "locked": seq == 1,
                        "area_m2": float(poly.area),
                        "polsby_popper": float(4 * np.pi * poly.area / poly.length**2),
                        "in_band": bool(200 <= hh <= 500),
                    }
                )
                grid_geoms.append(poly)
    grids = gpd.GeoDataFrame(pd.DataFrame(grid_rows), geometry=grid_geoms, crs=layers.crs)
    bmap = dict(memb)
    buildings = pd.DataFrame(
        {
            "building_id": blds["building_id"].to_numpy(),
            "grid_code": [bmap.get(b) for b in blds["building_id"]],
            "households": blds["households"].to_numpy(),
            "part": [None] * len(blds),
        }
    )
    buildings["grid_code"] = buildings["grid_code"].astype("str")
    buildings["part"] = buildings["part"].astype(object)
    households = None
    if layers.households is not None:
        h = layers.households
        households = pd.DataFrame(
            {
                "household_id": h["household_id"].to_numpy(),
                "building_id": h["building_id"].to_numpy(),
                "grid_code": pd.Series([bmap.get(b) for b in h["building_id"]], dtype="str"),
            }
        )
    report = QualityReport(
        grids=grids[["grid_code", "households", "polsby_popper", "in_band"]].copy(),
        communities=pd.DataFrame(
            {
                "community_id": comms["community_id"],
                "n_grids": cells * cells,
                "notes": [""] * len(comms),
            }
        ),
        overall={"share_in_band": float(grids["in_band"].mean()), "n_grids": len(grids)},
    )
    params = {"min_households": 200, "max_households": 500, "seed": seed, "cells": cells}
    return Plan(
        grids=grids,
        buildings=buildings,
        households=households,
        report=report,
        params=params,
        crs=layers.crs,
    )
