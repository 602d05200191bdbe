"""The hand-made visits example (:mod:`gridmap.visits.examples`) stored, its plan published.

Two grids of community ``C1`` (EPSG:4549): grid …001 holds B1, B2 (residential)
and B3 (a shop, an organisation), grid …002 holds B4 and B5. Must-visit
households: H01 (elderly alone), H02 (migrant, unemployed), H05 (disabled) in
grid 001; H09 (assistance), H10 (elderly alone), H11 (migrant) in grid 002.
S1 chiefs grid 001 (workers S2, S3), S4 chiefs grid 002 (worker S5). H14 was
registered on 2026-09-15.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from gridmap.db import Store, save_layers, save_plan
from gridmap.layers import Layers
from gridmap.visits.examples import CRS, G1, G2, X0, Y0, _example

__all__ = ["G1", "G2", "make_layers", "store_example"]


def make_layers() -> Layers:
    ex = _example()
    comm = gpd.GeoDataFrame(
        {
            "community_id": ["C1"],
            "name": ["幸福社区"],
            "code": ["320104001001"],
            "street": ["幸福街道"],
            "street_code": ["320104001"],
            "district": ["秦淮区"],
            "district_code": ["320104"],
        },
        geometry=[shapely.box(X0, Y0, X0 + 400, Y0 + 200)],
        crs=CRS,
    )
    b = ex.buildings.assign(community_id="C1", levels=6.0, households_estimated=False)
    hh = ex.households.copy()
    for f in (
        "elderly_living_alone",
        "disabled",
        "on_assistance",
        "floating_population",
        "unemployed",
    ):
        hh[f] = hh[f].astype(bool)
    hh["registered_at"] = pd.Series([None] * 13 + ["2026-09-15"], dtype=object)
    staff = ex.staff.assign(can_be_chief=True)
    return Layers(
        communities=comm, buildings=b, households=hh, roads=ex.roads, staff=staff, crs=ex.plan.crs
    )


def store_example(store: Store) -> int:
    """Store the layers and publish the example plan; return its id."""
    save_layers(store, make_layers(), author="setup")
    return save_plan(store, _example().plan, author="setup", status="published").id
