"""Tiny hand-made plans for the examples in the docstrings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import pyproj
import shapely

from gridmap.crs import transform

if TYPE_CHECKING:
    from gridmap.partition.plan import Plan

__all__: list[str] = []

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- doctest data


def _example_plan(
    nx: int = 2, ny: int = 1, size: float = 200.0, households: Sequence[int] | None = None
) -> Plan:
    """Return a tiny hand-made plan (a box lattice in EPSG:4549 at Nanjing) for examples."""
    from gridmap.partition.plan import Plan, QualityReport

    x0, y0 = transform(118.78, 32.05, "wgs84", "EPSG:4549")
    boxes: list[shapely.Polygon] = []
    codes: list[str] = []
    for j in range(ny):
        for i in range(nx):
            boxes.append(
                shapely.box(x0 + i * size, y0 - (j + 1) * size, x0 + (i + 1) * size, y0 - j * size)
            )
            codes.append(f"320106001001{len(codes) + 1:03d}")
    n = len(boxes)
    hh = list(households) if households is not None else [300] * n
    grids = gpd.GeoDataFrame(
        {
            "grid_code": codes,
            "community_id": ["c1"] * n,
            "name": [f"幸福社区第{k + 1:03d}网格" for k in range(n)],
            "households": hh,
            "persons": [float("nan")] * n,
            "n_buildings": [1] * n,
            "boundary_desc": ["东至中山路，南至社区边界，西至建设路，北至社区边界"] * n,
            "locked": [False] * n,
        },
        geometry=boxes,
        crs="EPSG:4549",
    )
    buildings = pd.DataFrame(
        {
            "building_id": [f"b{k}" for k in range(n)],
            "grid_code": codes,
            "households": hh,
            "part": [None] * n,
        }
    )
    report = QualityReport(
        grids=pd.DataFrame({"grid_code": codes, "polsby_popper": [0.785] * n}),
        communities=pd.DataFrame({"community_id": ["c1"]}),
    )
    return Plan(
        grids=grids,
        buildings=buildings,
        households=None,
        report=report,
        params={"min_households": 200, "max_households": 500},
        crs=pyproj.CRS.from_epsg(4549),
    )
