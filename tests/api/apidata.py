"""A small hand-made city and plan for the API tests (EPSG:4549, near Nanjing).

Community ``c1`` is a 400 m square cut into four 200 m grids (2 × 2); community
``c2`` is the 400 m square east of it, one grid. Grid polygons are densified
every 100 m, so that points on shared edges are vertices of both neighbours
(exact in every CRS, hence identical answers from shapely and PostGIS).

::

    y=400 +---------+---------+---------+
          | …001    | …002    |         |
    y=200 +---------+---------+  …(c2)  |
          | …003    | …004    |  001    |
    y=0   +---------+---------+---------+
         x=0      x=200     x=400     x=800
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.crs import transform
from gridmap.layers import SENSITIVE_FLAGS
from gridmap.partition.plan import Plan, QualityReport
from gridmap.validation import validate_layers

CRS = pyproj.CRS.from_epsg(4549)
X0, Y0 = 384_800.0, 3_548_000.0
C1, C2 = "320104001001", "320104001002"
G1, G2, G3, G4 = (f"{C1}{k:03d}" for k in (1, 2, 3, 4))
G5 = f"{C2}001"


def _box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.segmentize(shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1), 100.0)


def lonlat(x: float, y: float) -> tuple[float, float]:
    """WGS84 lon/lat of a point given in metres from the city origin."""
    lon, lat = transform(X0 + x, Y0 + y, CRS, "wgs84")
    return float(lon), float(lat)


def raw_layers() -> dict[str, gpd.GeoDataFrame]:
    comms = gpd.GeoDataFrame(
        {
            "community_id": ["c1", "c2"],
            "name": ["幸福社区", "和平社区"],
            "code": [C1, C2],
            "street": ["夫子庙街道", "夫子庙街道"],
            "street_code": ["320104001", "320104001"],
            "district": ["秦淮区", "秦淮区"],
            "district_code": ["320104", "320104"],
        },
        geometry=[_box(0, 0, 400, 400), _box(400, 0, 800, 400)],
        crs=CRS,
    )
    rows = []
    for gx in range(4):
        for gy in range(2):
            x, y = 30 + gx * 200, 30 + gy * 200
            rows.append((f"b{gx}{gy}", _box(x, y, x + 60, y + 40), 60 + 10 * gx + gy))
    blds = gpd.GeoDataFrame(
        {
            "building_id": [r[0] for r in rows],
            "households": [r[2] for r in rows],
            "use": ["residential"] * len(rows),
            "name": [f"{r[0]}号楼" for r in rows],
        },
        geometry=[r[1] for r in rows],
        crs=CRS,
    )
    hh_rows = []
    for bid, geom, n in rows:
        c = geom.centroid
        for k in range(n):
            hh_rows.append(
                {
                    "household_id": f"{bid}-h{k}",
                    "building_id": bid,
                    "unit": str(1 + k % 2),
                    "floor": float(1 + k // 4),
                    "persons": float(1 + k % 4),
                    **{f: bool((k + j) % 9 == 0) for j, f in enumerate(SENSITIVE_FLAGS)},
                    "geometry": c,
                }
            )
    hh = gpd.GeoDataFrame(pd.DataFrame(hh_rows), geometry="geometry", crs=CRS)
    staff = gpd.GeoDataFrame(
        {
            "staff_id": ["s1", "s2", "s3", "s4"],
            "name": ["王网格", "李一", "赵二", "钱三"],
            "phone": ["13900000001", "13900000002", "13900000003", "13900000004"],
            "home_building_id": ["b00", "b00", "b10", "b20"],
            "can_be_chief": [True, False, True, False],
        },
        geometry=[
            rows[0][1].centroid,
            rows[0][1].centroid,
            rows[2][1].centroid,
            rows[4][1].centroid,
        ],
        crs=CRS,
    )
    return {"communities": comms, "buildings": blds, "households": hh, "staff": staff}


def make_layers():
    layers, _ = validate_layers(raw_layers(), target_crs=CRS)
    return layers


def make_plan(layers) -> Plan:
    cells = [
        (G1, "c1", _box(0, 200, 200, 400)),
        (G2, "c1", _box(200, 200, 400, 400)),
        (G3, "c1", _box(0, 0, 200, 200)),
        (G4, "c1", _box(200, 0, 400, 200)),
        (G5, "c2", _box(400, 0, 800, 400)),
    ]
    b = layers.buildings
    rp = b.geometry.representative_point()
    codes = np.full(len(b), None, dtype=object)
    for code, _, poly in cells:
        codes[shapely.covers(poly, np.asarray(rp.values, dtype=object))] = code
    hh_by_grid = pd.Series(b["households"].to_numpy()).groupby(codes).sum()
    grids = gpd.GeoDataFrame(
        {
            "grid_code": [c[0] for c in cells],
            "community_id": [c[1] for c in cells],
            "name": [f"第{k + 1:03d}网格" for k in range(len(cells))],
            "households": [int(hh_by_grid.get(c[0], 0)) for c in cells],
            "persons": [np.nan] * len(cells),
            "n_buildings": [int((codes == c[0]).sum()) for c in cells],
            "boundary_desc": [f"东至{k}路, 南至{k}街, 西至{k}巷, 北至{k}河" for k in range(5)],
            "locked": [False] * len(cells),
        },
        geometry=[c[2] for c in cells],
        crs=CRS,
    )
    buildings = pd.DataFrame(
        {
            "building_id": b["building_id"].to_numpy(),
            "grid_code": pd.Series(codes, dtype="str"),
            "households": b["households"].to_numpy(),
            "part": pd.Series([None] * len(b), dtype=object),
        }
    )
    households = None
    if layers.households is not None:
        bmap = dict(zip(buildings["building_id"], buildings["grid_code"], strict=True))
        h = layers.households
        households = pd.DataFrame(
            {
                "household_id": h["household_id"].to_numpy(),
                "building_id": h["building_id"].to_numpy(),
                "grid_code": pd.Series([bmap[x] for x in h["building_id"]], dtype="str"),
            }
        )
    assignments = pd.DataFrame(
        {
            "staff_id": ["s1", "s2", "s3", "s4"],
            "grid_code": [G3, G3, G4, G5],
            "role": ["chief", "worker", "chief", "worker"],
        }
    )
    report = QualityReport(
        grids=pd.DataFrame({"grid_code": grids["grid_code"]}),
        communities=pd.DataFrame({"community_id": ["c1", "c2"], "notes": ["", ""]}),
        overall={"n_grids": len(grids)},
    )
    return Plan(
        grids=grids,
        buildings=buildings,
        households=households,
        report=report,
        params={"min_households": 50, "max_households": 500, "seed": 0},
        crs=CRS,
        assignments=assignments,
    )
