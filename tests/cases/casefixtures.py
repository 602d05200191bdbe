"""Tiny grid fixtures for the cases tests: six 400 m grids near Shanghai (UTM 51N)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import geopandas as gpd
import pyproj
import shapely

from gridmap.cases import TZ, Case, Deadline, Handler, Placement, Summons

COMMUNITY = "310101001001"
SUBDISTRICT = "310101001"
CRS = 32651


def grids() -> gpd.GeoDataFrame:
    boxes, codes = [], []
    for row in range(2):
        for col in range(3):
            x0, y0 = 350000 + 400 * col, 3460400 - 400 * row
            boxes.append(shapely.box(x0, y0, x0 + 400, y0 + 400))
            codes.append(f"{COMMUNITY}{row * 3 + col + 1:03d}")
    return gpd.GeoDataFrame(
        {"grid_code": codes, "community_id": COMMUNITY}, geometry=boxes, crs=CRS
    )


def locator(frame: gpd.GeoDataFrame | None = None):
    """locate(lon, lat) in WGS84 → Placement, like a wrapper over GridIndex would be."""
    g = grids() if frame is None else frame
    to_xy = pyproj.Transformer.from_crs(4326, CRS, always_xy=True)
    tree = shapely.STRtree(g.geometry.to_numpy())
    codes = g["grid_code"].tolist()

    def locate(lon: float, lat: float) -> Placement | None:
        x, y = to_xy.transform(lon, lat)
        hits = sorted(codes[i] for i in tree.query(shapely.Point(x, y), predicate="intersects"))
        if not hits:
            return None
        return Placement(hits[0], COMMUNITY, SUBDISTRICT, "plan-1", 2)

    return locate


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


GRID = f"{COMMUNITY}001"


def case_in(state: str, **changes) -> Case:
    """A case in ``state`` with everything the table's actions may need."""
    base = Case(
        id="C1",
        source="hotline",
        category="road",
        urgency="ordinary",
        description="人行道地砖破损",
        policy="12345",
        received_at=at("2026-09-18T10:00:00"),
        status=state,
        version=3,
        grid_code=GRID,
        community_id=COMMUNITY,
        subdistrict=SUBDISTRICT,
        deadlines={"resolve": Deadline(at("2026-09-24T23:59:59"), False)},
        handlers=(Handler(GRID, "grid"),),
        summons=(Summons("D1", at("2026-09-18T11:00:00"), Deadline(at("2026-09-19T11:00:00"))),),
        satisfaction="unsatisfied" if state == "callback" else None,
    )
    return replace(base, **changes)
