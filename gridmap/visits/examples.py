"""A tiny hand-made staffed plan with households, streets and visit records, for the examples.

Two 200 m × 200 m grids side by side (EPSG:4549, metres) on a 100 m street
lattice; grid ``…001`` holds buildings B1, B2 (residential) and B3 (a shop),
grid ``…002`` holds B4 and B5. Households H01–H08 live in grid 001, H09–H14 in
grid 002; six of them carry a must-visit flag. S1 chiefs grid 001 with workers
S2 and S3; S4 chiefs grid 002 with worker S5. One visit is recorded (H01 on
2026-09-10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import pyproj
import shapely

if TYPE_CHECKING:
    from gridmap.partition.plan import Plan

__all__: list[str] = []

X0, Y0 = 500_000.0, 3_545_000.0
CRS = 4549
G1, G2 = "320104001001001", "320104001001002"


@dataclass(frozen=True)
class _Example:
    plan: Plan
    households: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    staff: gpd.GeoDataFrame
    records: pd.DataFrame


def _lattice(n: int = 5, step: float = 100.0) -> gpd.GeoDataFrame:
    """Streets on an ``n × n`` lattice of ``step`` metres (full-length lines, not noded)."""
    lines = []
    names = []
    for k in range(n):
        lines.append(
            shapely.LineString([(X0, Y0 + k * step), (X0 + (n - 1) * step, Y0 + k * step)])
        )
        names.append(f"横{k + 1}路")
        lines.append(
            shapely.LineString([(X0 + k * step, Y0), (X0 + k * step, Y0 + (n - 1) * step)])
        )
        names.append(f"纵{k + 1}路")
    return gpd.GeoDataFrame({"name": names, "class": "residential"}, geometry=lines, crs=CRS)


def _example() -> _Example:
    from gridmap.partition.plan import Plan, QualityReport

    def box(x: float, y: float) -> shapely.Polygon:
        return shapely.box(X0 + x, Y0 + y, X0 + x + 30, Y0 + y + 20)

    grids = gpd.GeoDataFrame(
        {
            "grid_code": [G1, G2],
            "community_id": ["C1", "C1"],
            "name": ["幸福社区第001网格", "幸福社区第002网格"],
            "households": [8, 6],
        },
        geometry=[
            shapely.box(X0, Y0, X0 + 200, Y0 + 200),
            shapely.box(X0 + 200, Y0, X0 + 400, Y0 + 200),
        ],
        crs=CRS,
    )
    buildings = gpd.GeoDataFrame(
        {
            "building_id": ["B1", "B2", "B3", "B4", "B5"],
            "households": [4, 4, 0, 3, 3],
            "use": ["residential", "residential", "commercial", "residential", "residential"],
            "name": ["幸福小区1栋", "幸福小区2栋", "横1路超市", "和平小区1栋", "和平小区2栋"],
        },
        geometry=[box(20, 20), box(120, 120), box(20, 120), box(220, 20), box(320, 120)],
        crs=CRS,
    )
    bgrid = {"B1": G1, "B2": G1, "B3": G1, "B4": G2, "B5": G2}
    bld_of = ["B1"] * 4 + ["B2"] * 4 + ["B4"] * 3 + ["B5"] * 3
    hid = [f"H{k + 1:02d}" for k in range(14)]
    flags = {
        "elderly_living_alone": {"H01", "H10"},
        "disabled": {"H05"},
        "on_assistance": {"H09"},
        "floating_population": {"H02", "H11"},
        "unemployed": {"H02"},
    }
    cen = buildings.set_index("building_id").geometry.centroid
    households = gpd.GeoDataFrame(
        {
            "household_id": hid,
            "building_id": bld_of,
            "persons": [1, 3, 2, 2, 2, 4, 3, 2, 1, 1, 2, 3, 2, 2],
            **{f: [h in ids for h in hid] for f, ids in flags.items()},
        },
        geometry=[cen[b] for b in bld_of],
        crs=CRS,
    )
    plan_buildings = pd.DataFrame(
        {
            "building_id": buildings["building_id"],
            "grid_code": buildings["building_id"].map(bgrid),
            "households": buildings["households"],
            "part": None,
        }
    )
    plan_households = pd.DataFrame(
        {"household_id": hid, "building_id": bld_of, "grid_code": [bgrid[b] for b in bld_of]}
    )
    assignments = pd.DataFrame(
        {
            "grid_code": [G1, G1, G1, G2, G2],
            "role": ["chief", "worker", "worker", "chief", "worker"],
            "slot": [1, 1, 2, 1, 1],
            "staff_id": ["S1", "S2", "S3", "S4", "S5"],
            "name": ["张伟", "李娜", "王芳", "刘洋", "陈静"],
            "phone": ["13800000001", "13800000002", "13800000003", "13800000004", "13800000005"],
        }
    )
    staff = gpd.GeoDataFrame(
        assignments[["staff_id", "name", "phone"]].assign(
            home_building_id=["B1", "B2", "B2", "B4", "B5"]
        ),
        geometry=[cen[b] for b in ["B1", "B2", "B2", "B4", "B5"]],
        crs=CRS,
    )
    plan = Plan(
        grids=grids,
        buildings=plan_buildings,
        households=plan_households,
        report=QualityReport(pd.DataFrame({"grid_code": [G1, G2]}), pd.DataFrame()),
        params={"min_households": 1, "max_households": 500},
        crs=pyproj.CRS.from_epsg(CRS),
        assignments=assignments,
    )
    records = pd.DataFrame(
        {
            "household_id": ["H01"],
            "staff_id": ["S1"],
            "visited_at": [pd.Timestamp("2026-09-10 10:00")],
            "outcome": ["visited"],
        }
    )
    return _Example(plan, households, buildings, _lattice(), staff, records)
