"""A synthetic city end to end: partition → store → publish → locate over HTTP, both backends."""

from __future__ import annotations

import numpy as np
import pytest

from gridmap.db import locate_sql, save_layers, save_plan
from gridmap.partition import partition
from gridmap.synth import synth_city
from gridmap.validation import validate_layers


@pytest.fixture(scope="module")
def synth_plan():
    layers, _ = validate_layers(synth_city(n_buildings=400, seed=0))
    return layers, partition(layers, seed=0)


def test_synthetic_city(store_and_client, synth_plan) -> None:
    store, client, headers = store_and_client
    layers, plan = synth_plan
    save_layers(store, layers, author="setup")
    rec = save_plan(store, plan, author="setup", status="published")
    client.app.state.locator.refresh()
    assert client.get("/health").json()["grids"] == plan.n_grids

    # every building's representative point lies in the grid the plan gave it
    b = layers.buildings.merge(plan.buildings.drop_duplicates("building_id"), on="building_id")
    pts = b.geometry.representative_point().to_crs(4326)
    body = {
        "points": [
            {"id": i, "lon": p.x, "lat": p.y} for i, p in zip(b["building_id"], pts, strict=True)
        ]
    }
    r = client.post("/locate/batch", json=body, headers=headers("viewer"))
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    got = np.array([x["grid_code"] for x in rows], dtype=object)
    assert (got == b["grid_code"].to_numpy(object)).mean() > 0.99
    assert r.json()["outside"] == 0

    # the database (PostGIS ST_Covers / SQLite) agrees on random points and grid vertices
    rng = np.random.default_rng(0)
    g = plan.grids_wgs84()
    x0, y0, x1, y1 = g.total_bounds
    lon = rng.uniform(x0, x1, 300)
    lat = rng.uniform(y0, y1, 300)
    served = client.post(
        "/locate/batch",
        json={"points": [{"lon": a, "lat": c} for a, c in zip(lon, lat, strict=True)]},
        headers=headers("viewer"),
    ).json()["results"]
    assert [x["grid_code"] for x in served] == list(locate_sql(store, rec.id, lon, lat))

    one = client.get(
        "/locate", params={"lon": lon[0], "lat": lat[0]}, headers=headers("dispatcher")
    ).json()
    assert (one["grid"] or {}).get("grid_code") == served[0]["grid_code"]
    if one["grid"] is not None:
        assert one["community"]["community_id"] == one["grid"]["community_id"]
