"""Tiny synthetic fixtures built in code: box lattices with the contract-2 columns."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely import LineString, Polygon, box

from gridmap.layers import Layers

CRS = 32650  # UTM 50N, metres

__all__ = ["CRS", "lattice", "make_layers", "one_community"]


def make_layers(
    communities: list[tuple[str, Polygon]],
    buildings: list[tuple[str, Polygon, int, str]],
    *,
    roads: list[LineString] | None = None,
    barriers: list[LineString] | None = None,
    compounds: list[tuple[str, Polygon]] | None = None,
    households: pd.DataFrame | None = None,
    compound_of: dict[str, str] | None = None,
    levels: dict[str, float] | None = None,
) -> Layers:
    comms = gpd.GeoDataFrame(
        {
            "community_id": [c for c, _ in communities],
            "name": [f"社区{c}" for c, _ in communities],
            "code": [f"32050801900{i}" for i in range(len(communities))],
            "street": None,
            "street_code": None,
            "district": None,
            "district_code": None,
        },
        geometry=[g for _, g in communities],
        crs=CRS,
    )
    compound_of = compound_of or {}
    levels = levels or {}
    blds = gpd.GeoDataFrame(
        {
            "building_id": [b for b, *_ in buildings],
            "households": np.array([h for _, _, h, _ in buildings], dtype=np.int64),
            "households_estimated": False,
            "levels": [levels.get(b, np.nan) for b, *_ in buildings],
            "use": "residential",
            "name": None,
            "community_id": [c for *_, c in buildings],
            "compound_id": [compound_of.get(b) for b, *_ in buildings],
        },
        geometry=[g for _, g, _, _ in buildings],
        crs=CRS,
    )
    road_gdf = (
        gpd.GeoDataFrame(
            {"name": [f"路{i}" for i in range(len(roads))], "class": "residential"},
            geometry=roads,
            crs=CRS,
        )
        if roads
        else None
    )
    barrier_gdf = (
        gpd.GeoDataFrame({"kind": "wall"}, geometry=barriers, crs=CRS) if barriers else None
    )
    comp_gdf = (
        gpd.GeoDataFrame(
            {"compound_id": [c for c, _ in compounds], "name": [f"小区{c}" for c, _ in compounds]},
            geometry=[g for _, g in compounds],
            crs=CRS,
        )
        if compounds
        else None
    )
    hh = None
    if households is not None:
        hh = gpd.GeoDataFrame(
            households,
            geometry=gpd.points_from_xy(np.zeros(len(households)), np.zeros(len(households))),
            crs=CRS,
        )
    return Layers(
        communities=comms,
        buildings=blds,
        households=hh,
        roads=road_gdf,
        barriers=barrier_gdf,
        compounds=comp_gdf,
        crs=gpd.GeoSeries([], crs=CRS).crs,
    )


def lattice(
    nx: int = 6,
    ny: int = 4,
    *,
    cell: float = 50.0,
    households: int | np.ndarray = 100,
    road_every: int = 2,
    cid: str = "c1",
) -> Layers:
    """A community of nx × ny building plots; roads between every ``road_every`` plots."""
    w, h = nx * cell, ny * cell
    hh = np.broadcast_to(np.asarray(households), (ny, nx))
    blds = []
    for j in range(ny):
        for i in range(nx):
            x0, y0 = i * cell, j * cell
            g = box(x0 + 10, y0 + 10, x0 + cell - 10, y0 + cell - 10)
            blds.append((f"b{j:02d}{i:02d}", g, int(hh[j, i]), cid))
    roads = [
        LineString([(i * cell, -5), (i * cell, h + 5)]) for i in range(road_every, nx, road_every)
    ]
    roads += [
        LineString([(-5, j * cell), (w + 5, j * cell)]) for j in range(road_every, ny, road_every)
    ]
    return make_layers([(cid, box(0, 0, w, h))], blds, roads=roads)


def one_community(community, buildings, roads=(), barriers=(), *, crs: int = 4549) -> Layers:
    """One community 幸福社区 with ``(geometry, households)`` buildings, ``(geometry, class)``
    roads and ``(geometry, kind)`` barriers (empty layers are left out)."""
    comms = gpd.GeoDataFrame(
        {"community_id": ["c1"], "name": ["幸福社区"], "code": ["320508019044"]},
        geometry=[community],
        crs=crs,
    )
    blds = gpd.GeoDataFrame(
        {
            "building_id": [f"b{i}" for i in range(len(buildings))],
            "households": [h for _, h in buildings],
            "community_id": ["c1"] * len(buildings),
        },
        geometry=[g for g, _ in buildings],
        crs=crs,
    )
    rds = gpd.GeoDataFrame(
        {"name": [f"r{i}" for i in range(len(roads))], "class": [c for _, c in roads]},
        geometry=[g for g, _ in roads],
        crs=crs,
    )
    bars = gpd.GeoDataFrame(
        {"kind": [k for _, k in barriers]}, geometry=[g for g, _ in barriers], crs=crs
    )
    return Layers(
        communities=comms,
        buildings=blds,
        roads=rds if len(roads) else None,
        barriers=bars if len(barriers) else None,
        crs=comms.crs,
    )
