"""Tiny hand-made cities built in code (EPSG:4549, metres), shared by the tests."""

from __future__ import annotations

import geopandas as gpd
import shapely

CRS = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E: Nanjing, Shanghai
X0, Y0 = 500_000.0, 3_545_000.0  # about lon 120.0, lat 32.0


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def tiny_raw(n_households_per_building: int = 3) -> dict[str, gpd.GeoDataFrame]:
    """Two 200 m × 200 m communities side by side, 8 buildings, households, staff, a road."""
    comms = gpd.GeoDataFrame(
        {
            "community_id": ["C1", "C2"],
            "name": ["幸福社区", "和平社区"],
            "code": ["320104001001", "320104001002"],
        },
        geometry=[box(0, 0, 200, 200), box(200, 0, 400, 200)],
        crs=CRS,
    )
    rows = []
    for i, (x, y) in enumerate([(20, 20), (120, 20), (20, 120), (120, 120)]):
        for c, dx in (("C1", 0), ("C2", 200)):
            rows.append({"building_id": f"{c}-B{i}", "x": x + dx, "y": y})
    blds = gpd.GeoDataFrame(
        {
            "building_id": [r["building_id"] for r in rows],
            "use": ["residential"] * len(rows),
            "levels": [6.0] * len(rows),
        },
        geometry=[box(r["x"], r["y"], r["x"] + 50, r["y"] + 30) for r in rows],
        crs=CRS,
    )
    hh_rows = []
    for r in rows:
        for k in range(n_households_per_building):
            hh_rows.append(
                {
                    "household_id": f"{r['building_id']}-H{k}",
                    "building_id": r["building_id"],
                    "floor": k + 1,
                    "persons": 2,
                    "elderly_living_alone": k == 0,
                    "x": X0 + r["x"] + 10 + k,
                    "y": Y0 + r["y"] + 10,
                }
            )
    hh = gpd.GeoDataFrame(
        [{k: v for k, v in h.items() if k not in ("x", "y")} for h in hh_rows],
        geometry=gpd.points_from_xy([h["x"] for h in hh_rows], [h["y"] for h in hh_rows]),
        crs=CRS,
    )
    roads = gpd.GeoDataFrame(
        {"name": ["中山路"], "class": ["primary"]},
        geometry=[shapely.LineString([(X0 + 200, Y0), (X0 + 200, Y0 + 200)])],
        crs=CRS,
    )
    staff = gpd.GeoDataFrame(
        {
            "staff_id": ["S1", "S2"],
            "name": ["张伟", "李娜"],
            "phone": ["13800000001", "13800000002"],
            "home_building_id": ["C1-B0", "C2-B1"],
            "can_be_chief": ["是", "否"],
        },
        geometry=gpd.GeoSeries([None, None]),
        crs=CRS,
    )
    return {
        "communities": comms,
        "buildings": blds,
        "households": hh,
        "roads": roads,
        "staff": staff,
    }


def tiny_plan(layers):
    """A hand-made plan over the tiny city: each community is one grid."""
    import pandas as pd

    from gridmap.partition.plan import Plan, QualityReport

    comms = layers.communities
    grids = gpd.GeoDataFrame(
        {
            "grid_code": [c + "001" for c in comms["code"]],
            "community_id": comms["community_id"].tolist(),
            "name": [n + "第001网格" for n in comms["name"]],
            "households": [12, 12],
            "persons": [24.0, 24.0],
            "n_buildings": [4, 4],
            "boundary_desc": ["东至中山路，南至社区边界，西至社区边界，北至社区边界", "西至中山路"],
            "locked": [False, True],
        },
        geometry=comms.geometry.values,
        crs=layers.crs,
    )
    code_of = dict(zip(grids["community_id"], grids["grid_code"], strict=True))
    b = layers.buildings
    buildings = pd.DataFrame(
        {
            "building_id": b["building_id"],
            "grid_code": b["community_id"].map(code_of),
            "households": b["households"],
            "part": None,
        }
    )
    hh = layers.households
    households = pd.DataFrame(
        {
            "household_id": hh["household_id"],
            "building_id": hh["building_id"],
            "grid_code": hh["building_id"].map(
                dict(zip(b["building_id"], buildings["grid_code"], strict=True))
            ),
        }
    )
    report = QualityReport(
        grids=pd.DataFrame({"grid_code": grids["grid_code"], "polsby_popper": [0.785, 0.785]}),
        communities=pd.DataFrame({"community_id": ["C1", "C2"], "notes": ["", "单一网格"]}),
        overall={"share_in_band": 0.0, "n_grids": 2},
    )
    return Plan(
        grids=grids,
        buildings=buildings,
        households=households,
        report=report,
        params={"min_households": 10, "max_households": 20, "seed": 0},
        crs=layers.crs,
    )
