"""Build ``data/nanjing_xinjiekou.gpkg`` from the shared OpenStreetMap extract of central Nanjing.

Run from the repository root (the shared data sits beside the checkout)::

    python data/make_nanjing.py ../shared/data/real/nanjing-central/nanjing_central.gpkg

What it does, all with gridmap's public API plus shapely:

1. reads the extract with the ``osm`` preset (buildings, roads without tunnels, the city
   wall, residential landuse as compounds) and keeps what lies in the extract's query box;
2. OpenStreetMap has no community (社区) boundaries here, so it *derives* community areas:
   the query box is cut into blocks by the main roads (trunk/primary/secondary/tertiary), and
   neighbouring blocks are merged, smallest first, until each holds at least 1,500 estimated
   households. They are labelled "派生片区" (derived area) and carry no statistical code — they
   stand in for real 社区 boundaries;
3. writes the canonical layers in WGS84. Households are left for validation to estimate (levels ×
   footprint / 90 m², residential buildings only), so the estimate stays a parameter.

Data © OpenStreetMap contributors, ODbL 1.0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gridmap.crs import local_crs
from gridmap.datasets import attribution
from gridmap.io import read_layer, read_layers, write_layers
from gridmap.layers import estimate_households

MAIN_ROADS = {"trunk", "primary", "secondary", "tertiary"}
MIN_COMMUNITY_HOUSEHOLDS = 1500


def derive_communities(
    area: shapely.Polygon, roads: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Cut ``area`` by main roads into blocks and merge blocks up to the household floor."""
    main = roads[roads["class"].isin(MAIN_ROADS)].geometry.values
    lines = shapely.union_all([*main, area.boundary])
    blocks = [
        b
        for b in shapely.get_parts(shapely.polygonize([lines]))
        if area.contains(b.representative_point())
    ]
    blocks = [b.intersection(area) for b in blocks if b.area > 1.0]
    rep = buildings.geometry.representative_point().values
    tree = shapely.STRtree(np.array(blocks, dtype=object))
    bi, ki = tree.query(rep, predicate="within")
    weights = buildings["households"].to_numpy()[bi]
    households = np.bincount(ki, weights=weights, minlength=len(blocks))
    groups = [{i} for i in range(len(blocks))]
    geoms = list(blocks)
    hh = list(households)
    while True:
        small = [
            g
            for g in range(len(geoms))
            if geoms[g] is not None and hh[g] < MIN_COMMUNITY_HOUSEHOLDS
        ]
        alive = [g for g in range(len(geoms)) if geoms[g] is not None]
        if not small or len(alive) == 1:
            break
        g = min(small, key=lambda k: (hh[k], k))
        best, best_len = None, 0.0
        for other in alive:
            if other == g:
                continue
            shared = geoms[g].boundary.intersection(geoms[other].boundary).length
            if shared > best_len:
                best, best_len = other, shared
        if best is None:
            break
        geoms[best] = shapely.union_all([geoms[best], geoms[g]])
        hh[best] += hh[g]
        groups[best] |= groups[g]
        geoms[g] = None
    kept = [(geom, h) for geom, h in zip(geoms, hh, strict=True) if geom is not None]
    kept.sort(key=lambda t: (-t[0].centroid.y, t[0].centroid.x))  # north→south, west→east
    return gpd.GeoDataFrame(
        {
            "community_id": [f"NJXJK{i + 1:02d}" for i in range(len(kept))],
            "name": [f"新街口派生片区{i + 1:02d}" for i in range(len(kept))],
            "street": "新街口街道",
            "district": "南京市中心城区",
        },
        geometry=[shapely.make_valid(geom) for geom, _ in kept],
        crs=buildings.crs,
    )


def main() -> None:
    """Read the extract, derive community areas, write the canonical GeoPackage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--out", type=Path, default=Path("data/nanjing_xinjiekou.gpkg"))
    args = parser.parse_args()

    raw = read_layers(args.source, preset="osm")
    bbox = read_layer(args.source, layer="query_bbox")
    crs = local_crs(bbox)
    area = bbox.to_crs(crs).geometry.iloc[0]
    blds = raw["buildings"].to_crs(crs)
    blds = blds[blds.geometry.representative_point().within(area)].copy()
    blds["households"] = estimate_households(blds)  # only to size the derived communities
    roads = raw["roads"].to_crs(crs)
    roads = roads[roads.intersects(area)].copy()
    roads["geometry"] = roads.geometry.intersection(area)
    roads = roads[~roads.geometry.is_empty]
    comms = derive_communities(area, roads, blds)

    def clip(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        gdf = gdf.to_crs(crs)
        gdf = gdf[gdf.intersects(area)].copy()
        gdf["geometry"] = gdf.geometry.intersection(area)
        return gdf[~gdf.geometry.is_empty]

    out = {
        "communities": comms,
        "buildings": blds[["building_id", "levels", "use", "name", "geometry"]],
        "roads": roads[["name", "class", "geometry"]].explode(index_parts=False),
        "barriers": clip(raw["barriers"])[["kind", "name", "geometry"]].explode(index_parts=False),
        "compounds": clip(raw["compounds"])[["compound_id", "name", "geometry"]],
    }
    out["roads"] = out["roads"][out["roads"].geom_type == "LineString"]
    out["barriers"] = out["barriers"][out["barriers"].geom_type == "LineString"]
    polygonal = out["compounds"].geom_type.isin(["Polygon", "MultiPolygon"])
    out["compounds"] = out["compounds"][polygonal]
    out = {name: gdf.to_crs(4326) for name, gdf in out.items()}
    for name in ("communities", "compounds"):  # stay valid once written in degrees
        geoms = out[name].geometry.values
        out[name]["geometry"] = shapely.make_valid(geoms, method="structure", keep_collapsed=False)
    write_layers(out, args.out, description=attribution("nanjing"))
    est = int(blds["households"].sum())
    print(  # noqa: T201
        f"wrote {args.out}: {len(comms)} derived communities, {len(blds)} buildings, "
        f"~{est} households"
    )


if __name__ == "__main__":
    main()
