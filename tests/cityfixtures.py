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


def broken_raw() -> dict[str, gpd.GeoDataFrame]:
    """The tiny city with one of every problem validation must report (see ``BROKEN_FINDINGS``).

    Rows (buildings): 0 C1-B0, 1 C2-B0, 2 C1-B1, 3 C2-B1, 4 C1-B2, 5 C2-B2, 6 C1-B3, 7 C2-B3.
    """
    raw = tiny_raw()
    comms = raw["communities"].copy()
    geoms = comms.geometry.values.copy()
    geoms[1] = box(195, 0, 400, 200)  # overlaps C1 by a 5 m strip: 1,000 m²
    raw["communities"] = comms.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    blds = raw["buildings"].copy()
    geoms = blds.geometry.values.copy()
    bow_tie = [(20, 20), (70, 50), (70, 20), (20, 50)]
    geoms[0] = shapely.Polygon([(X0 + x, Y0 + y) for x, y in bow_tie])  # invalid: repaired
    geoms[2] = box(500, 500, 540, 530)  # C1-B1 outside every community: rejected
    geoms[4] = box(170, 120, 240, 150)  # C1-B2 straddles C1/C2, 140 m from its households
    blds = blds.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    blds["households"] = [None, 3, 3, 3, -2, 3, None, 3]  # C1-B2 negative: error
    blds.loc[5, "building_id"] = "C2-B3"  # duplicate id: error
    raw["buildings"] = blds
    hh = raw["households"].copy()
    hh["building_id"] = hh["building_id"].astype(object)
    hh["persons"] = hh["persons"].astype(float)
    geoms = hh.geometry.values.copy()
    hh.loc[0, "building_id"] = "ghost"  # unknown building, point inside C1-B0: matched
    hh.loc[1, "building_id"] = None  # 10 m outside C1-B0: snapped
    geoms[1] = shapely.Point(X0 + 45, Y0 + 10)
    hh.loc[2, "building_id"] = None  # far from every building: rejected
    geoms[2] = shapely.Point(X0 + 95, Y0 + 90)
    hh.loc[3, "persons"] = -1  # negative count: error
    raw["households"] = hh.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    raw["staff"] = raw["staff"].iloc[:0]  # empty layer
    return raw


#: code → (severity, count) of every finding validation must make on :func:`broken_raw`.
BROKEN_FINDINGS: dict[str, tuple[str, int]] = {
    "duplicate_id": ("error", 1),
    "invalid_geometry": ("repaired", 1),
    "empty_layer": ("warning", 0),
    "overlapping_communities": ("error", 1),
    "negative_households": ("error", 1),
    "outside_communities": ("rejected", 1),
    "straddles_communities": ("warning", 1),
    "overlapping_buildings": ("warning", 1),
    "building_left_out": ("rejected", 3),
    "snapped_to_building": ("repaired", 1),
    "unknown_building": ("warning", 4),
    "far_from_building": ("repaired", 6),
    "no_building": ("rejected", 1),
    "negative_persons": ("error", 1),
    # C1-B2 (-2 given, 3 in the household layer) and the second C2-B3 row, whose households
    # the first C2-B3 takes (ids are made unique, C2-B3#2, only to finish the report)
    "households_count_mismatch": ("repaired", 2),
}
