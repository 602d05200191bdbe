"""The service keeps grids in memory and reads buildings and households from the store.

Exact answers on the hand-made city (:mod:`apidata`): buildings near a point as a
brute force over the stored layers finds them, residents in stored order, the plan
for maps loaded on first use without its household memberships, and a refresh
that rebuilds only what changed. Both backends (PostGIS: ``&&`` on the GiST index;
SQLite: the buildings' bounding boxes as arrays).
"""

from __future__ import annotations

import re

import apidata
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from geopandas.testing import assert_geodataframe_equal

from gridmap.db import load_layers, load_plan, publish_plan, save_layers, save_plan
from gridmap.db.spatial import BuildingBoxes, buildings_in_box, load_served_plan
from gridmap.errors import InputError


def _area(client):
    (area,) = client.app.state.locator.areas
    return area


def _reference(b: gpd.GeoDataFrame, x: float, y: float, radius: float) -> list[tuple[str, float]]:
    """Buildings within ``radius`` of (x, y) by brute force over the stored buildings."""
    d = shapely.distance(np.asarray(b.geometry.values, dtype=object), shapely.Point(x, y))
    rows = sorted(
        (round(float(dd), 2), str(i))
        for i, dd in zip(b["building_id"], d, strict=True)
        if dd <= radius
    )
    return [(i, dd) for dd, i in rows]


def test_area_holds_no_household_and_no_building_rows(city) -> None:
    store, client, _, _ = city
    area = _area(client)
    assert not {"households", "buildings", "plan"} & set(vars(area))
    assert area._plan is None  # the plan's memberships wait for a map
    if store.backend == "postgresql":
        assert area.boxes is None  # the GiST index answers
    else:
        assert len(area.boxes) == 8 and area.boxes.nbytes < 8 * 64
        assert sorted(area.boxes.ids) == sorted(f"b{gx}{gy}" for gx in range(4) for gy in range(2))


def test_buildings_near_equal_a_brute_force(city) -> None:
    store, client, _, _ = city
    area = _area(client)
    stored = load_layers(store, ["c1", "c2"], crs=apidata.CRS).buildings
    x0, y0 = apidata.X0, apidata.Y0
    # 20 m west of b00 (x 30..90, y 30..70): exactly one building, 20 m away
    near = area.buildings_near(x0 + 10, y0 + 50, 25)
    assert near[["building_id", "distance_m"]].values.tolist() == [["b00", 20.0]]
    assert near.loc[0, "grid_code"] == apidata.G3 and near.loc[0, "households"] == 60
    checked = n_households = 0
    for x in np.arange(-40.0, 860.0, 61.0):
        for y in np.arange(-40.0, 460.0, 53.0):
            for radius in (5.0, 45.0, 160.0):
                got = area.buildings_near(x0 + x, y0 + y, radius)
                want = _reference(stored, x0 + x, y0 + y, radius)
                assert list(zip(got["building_id"], got["distance_m"], strict=True)) == want
                checked += len(want)
                # what /locate?radius= reads (PostGIS: one query, ST_DWithin on the spheroid
                # then the exact distance here): the same buildings, with their households
                near, hh = area.nearby(x0 + x, y0 + y, radius)
                pd.testing.assert_frame_equal(near, got)
                want_hh = area.residents([b for b, _ in want])
                assert hh["household_id"].tolist() == want_hh["household_id"].tolist()
                if len(hh):
                    pd.testing.assert_frame_equal(hh, want_hh)
                n_households += len(hh)
    assert checked == 298  # the lattice meets buildings, not only empty ground
    assert n_households == 22_602


def test_residents_come_from_the_store_in_stored_order(city) -> None:
    _, client, _, _ = city
    area = _area(client)
    hh = area.residents(["b10", "b00"])
    assert hh["household_id"].tolist() == [f"b00-h{k}" for k in range(60)] + [
        f"b10-h{k}" for k in range(70)
    ]
    first = hh.iloc[0]
    assert first["elderly_living_alone"] is True and first["disabled"] is False
    assert (first["unit"], first["floor"], first["persons"]) == ("1", 1.0, 1.0)
    assert area.residents([]).empty and area.residents(["nowhere"]).empty
    # what /locate?radius= reads: both in one transaction, the same answers
    near, households = area.nearby(apidata.X0 + 200, apidata.Y0 + 50, 120)
    assert near["building_id"].tolist() == ["b10", "b00"]  # 30 m, then 110 m away
    assert near["distance_m"].tolist() == [30.0, 110.0]
    pd.testing.assert_frame_equal(households, area.residents(["b00", "b10"]))


def test_plan_for_maps_is_loaded_once_without_households(city) -> None:
    store, client, _, pid = city
    area = _area(client)
    stored = load_plan(store, pid)
    plan = area.plan
    assert plan is area.plan and plan.households is None and plan.grids is area.grids
    pd.testing.assert_frame_equal(plan.buildings, stored.buildings)
    assert plan.report.to_dict() == stored.report.to_dict()
    b = area.buildings  # read from the store, with each building's grid
    assert dict(zip(b["building_id"], b["grid_code"], strict=True)) == dict(
        zip(stored.buildings["building_id"], stored.buildings["grid_code"], strict=True)
    )
    layers = load_layers(store, ["c1", "c2"], crs=apidata.CRS)
    assert b.geometry.geom_equals_exact(layers.buildings.geometry, 0).all()


def test_served_plan_equals_the_stored_plan_without_memberships(city) -> None:
    store, _, _, pid = city
    stored = load_plan(store, pid)
    light = load_served_plan(store, pid, memberships=False, report=False)
    assert_geodataframe_equal(light.grids, stored.grids)
    pd.testing.assert_frame_equal(light.assignments, stored.assignments)
    assert light.households is None and light.report is None
    assert light.buildings.empty and list(light.buildings.columns) == list(stored.buildings.columns)


def test_sqlite_needs_candidate_ids(city) -> None:
    store, _, _, pid = city
    if store.backend == "postgresql":
        found = buildings_in_box(store, pid, (0.0, 0.0, 180.0, 90.0))
        assert len(found) == 8 and found["building_id"].is_monotonic_increasing
    else:
        with pytest.raises(InputError, match="candidate ids= from BuildingBoxes.query"):
            buildings_in_box(store, pid, (0.0, 0.0, 180.0, 90.0))


def test_building_boxes_query() -> None:
    boxes = BuildingBoxes.build(
        np.array(["wide", "a", "b", "empty"], dtype=object),
        np.array(
            [
                [0.0, 0.0, 10.0, 1.0],  # centre at 5, reaches x=10
                [9.5, 0.0, 9.6, 0.1],
                [20.0, 0.0, 21.0, 1.0],
                [np.nan] * 4,  # an empty geometry has no box
            ]
        ),
    )
    assert len(boxes) == 3 and boxes.half_width == 5.0
    assert boxes.query((9.9, 0.5, 11.0, 0.6)).tolist() == ["wide"]  # found from its far centre
    assert boxes.query((9.0, 0.0, 20.0, 0.05)).tolist() == ["a", "b", "wide"]  # edges count
    assert boxes.query((22.0, 0.0, 23.0, 1.0)).tolist() == []
    assert boxes.query((0.0, 2.0, 30.0, 3.0)).tolist() == []


def test_refresh_rebuilds_only_what_changed(published) -> None:
    store, client, headers, pid = published
    locator = client.app.state.locator
    before = _area(client)
    assert locator.refresh() == 1 and _area(client) is before  # same plan version: kept
    plan = load_plan(store, pid)
    grids = plan.grids.assign(name=plan.grids["name"] + "·新")
    draft = save_plan(store, plan.replace(grids=grids), author="t").id
    publish_plan(store, draft, author="another process")
    assert locator.refresh_if_changed() is True
    after = _area(client)
    assert after is not before and after.plan_id == draft
    assert after.grids["name"].str.endswith("·新").all()
    # a re-import (new buildings, staff, households) rebuilds even an unchanged plan
    layers = apidata.make_layers()
    save_layers(store, layers, author="re-import")
    assert locator.refresh_if_changed() is True and _area(client) is not after
    assert locator.refresh_if_changed() is False
    lon, lat = apidata.lonlat(50, 50)
    r = client.get(
        "/locate", params={"lon": lon, "lat": lat, "radius": 30}, headers=headers("dispatcher")
    )
    assert r.status_code == 200 and r.json()["nearby"]["n_households"] == 60


def _tables_read(statements: list[str]) -> dict[str, list[str]]:
    """Table name → the statements reading it (``FROM``/``JOIN``, schema stripped)."""
    out: dict[str, list[str]] = {}
    for sql in statements:
        for name in re.findall(r'(?:FROM|JOIN)\s+(?:"?\w+"?\.)?"?(\w+)"?', sql):
            out.setdefault(name, []).append(sql)
    return out


def test_reading_and_publishing_a_plan_reads_no_household_row(published) -> None:
    """GET /plans/{id}, its grids and a publish (with the snapshot's swap) skip the memberships.

    Those are a row per household and per building (millions in a city): the plan's
    figures and grids do not need them, and the snapshot reads buildings when asked.
    """
    store, client, headers, pid = published
    planner = headers("planner")
    stored = load_plan(store, pid)
    draft = save_plan(store, stored, author="t").id
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        r = client.get(f"/plans/{draft}", headers=planner)
        assert r.status_code == 200 and r.headers["etag"] == '"1"'
        body = r.json()
        assert body["households"] == 604 and body["n_grids"] == 5
        want = [[apidata.G1, 61], [apidata.G2, 71], [apidata.G3, 60], [apidata.G4, 70]]
        want.append([apidata.G5, 342])
        assert [[g["grid_code"], g["households"]] for g in body["grids"]] == want
        assert body["overall"] == stored.report.overall  # the stored report
        grids = client.get(f"/plans/{draft}/grids", headers=planner).json()
        assert [
            [f["properties"]["grid_code"], f["properties"]["households"]] for f in grids["features"]
        ] == want
        r = client.post(f"/plans/{draft}/publish", headers={**planner, "If-Match": '"1"'})
        assert r.status_code == 200 and r.json()["status"] == "published"
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    (area,) = client.app.state.locator.areas  # the route swapped the new snapshot in
    assert area.plan_id == draft and area.grids["grid_code"].tolist() == [g for g, _ in want]
    read = _tables_read(statements)
    assert "grids" in read and "plans" in read  # the listener saw the reads
    assert not {"plan_households", "households"} & set(read)
    assert "buildings" not in read or store.backend != "postgresql"  # SQLite: the boxes
    # the building memberships are only asked for their columns (LIMIT 0)
    assert all(re.search(r"LIMIT\b", sql) for sql in read.get("plan_buildings", []))
