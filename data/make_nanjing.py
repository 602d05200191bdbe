"""Build ``data/nanjing_xinjiekou.gpkg`` from the shared OpenStreetMap extract of central Nanjing.

Run from the repository root (the shared data sits beside the checkout)::

    python data/make_nanjing.py ../shared/data/real/nanjing-central/nanjing_central.gpkg

What it does, all with gridmap's public API plus shapely:

1. reads the extract with the ``osm`` preset (buildings, roads without tunnels, the city
   wall, the rivers and district borders as barriers, residential landuse as compounds) and
   keeps what lies in the extract's query box;
2. OpenStreetMap has no community (社区) boundaries here, so it *derives* community areas with
   :func:`gridmap.areas.derive_communities`: the query box is cut into blocks by the main roads
   (trunk/primary/secondary/tertiary), the rivers and the district borders, and neighbouring
   blocks are merged, smallest first, until each holds at least 1,500 estimated households
   (never across a river or a district border). They are labelled "新街口派生片区" (derived
   area) and carry no statistical code — they stand in for real 社区 boundaries;
3. writes the canonical layers in WGS84. Households are left for validation to estimate (levels ×
   footprint / 90 m², residential buildings only), so the estimate stays a parameter.

Data © OpenStreetMap contributors, ODbL 1.0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import shapely

from gridmap.areas import DERIVED_ATTR, derive_communities
from gridmap.crs import local_crs
from gridmap.datasets import attribution
from gridmap.io import read_layer, read_layers, write_layers

MIN_COMMUNITY_HOUSEHOLDS = 1500


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

    def clip(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        gdf = gdf.to_crs(crs)
        gdf = gdf[gdf.intersects(area)].copy()
        gdf["geometry"] = gdf.geometry.intersection(area)
        return gdf[~gdf.geometry.is_empty]

    roads = clip(raw["roads"])
    derived = derive_communities(
        {"buildings": blds, "roads": roads, "barriers": clip(raw["barriers"])},
        outline=bbox,
        min_households=MIN_COMMUNITY_HOUSEHOLDS,
    ).to_crs(crs)
    households = derived.attrs[DERIVED_ATTR]["households"]
    number = range(1, len(derived) + 1)  # the ids and names this file has always used
    comms = gpd.GeoDataFrame(
        {
            "community_id": [f"NJXJK{i:02d}" for i in number],
            "name": [f"新街口派生片区{i:02d}" for i in number],
            "street": "新街口街道",
            "district": "南京市中心城区",
        },
        geometry=derived.geometry.values,
        crs=crs,
    )
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
    est = sum(households.values())
    print(  # noqa: T201
        f"wrote {args.out}: {len(comms)} derived communities "
        f"({min(households.values())}–{max(households.values())} households), "
        f"{len(blds)} buildings, ~{est} households"
    )


if __name__ == "__main__":
    main()
