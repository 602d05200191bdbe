"""Workers reading the PostGIS store: each loads only its communities, the plan is the local one."""

from __future__ import annotations

import os
import uuid

import pandas as pd
import pytest
import shapely

pytest.importorskip("distributed")
sa = pytest.importorskip("sqlalchemy")

pytestmark = [pytest.mark.slow, pytest.mark.postgis]


@pytest.fixture(scope="module")
def store_url(sample_layers):
    """A fresh PostGIS database holding the sample city's layers (dropped afterwards)."""
    base = os.environ.get("GRIDMAP_TEST_POSTGIS_URL")
    if not base:
        pytest.skip("set GRIDMAP_TEST_POSTGIS_URL to run the PostGIS tests")
    from storefixtures import ensure_postgis_db

    from gridmap.db import Store, save_layers

    u = sa.make_url(base)
    name = f"gridmap_scale_{uuid.uuid4().hex[:10]}"
    url = u.set(database=name).render_as_string(hide_password=False)
    reason = ensure_postgis_db(url)
    if reason:
        pytest.skip(reason)
    try:
        with Store.from_url(url) as store, store.session(write=True) as s:
            save_layers(s, sample_layers, author="test")
        yield url
    finally:
        admin = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module")
def store_plan(store_url):
    """The local run from the store: `gridmap partition --db URL` in one process."""
    from gridmap.db import Store, load_layers
    from gridmap.partition import partition

    with Store.from_url(store_url) as store:
        layers = load_layers(store)
    return partition(layers, min_households=200, max_households=500, seed=0)


def test_a_worker_reads_only_its_community(store_url):
    from gridmap.db import Store, load_layers
    from gridmap.scale.partition import _read_store

    with Store.from_url(store_url) as store:
        whole = load_layers(store)
    one = _read_store(store_url, ["C0002"], whole.crs)
    assert one.communities["community_id"].tolist() == ["C0002"]
    b = whole.buildings
    pd.testing.assert_frame_equal(
        one.buildings, b[b["community_id"] == "C0002"].reset_index(drop=True)
    )
    # context lines: a bounding box around the community, not the whole city
    geom = one.communities.geometry.iloc[0]
    near = shapely.intersects(whole.roads.geometry.values, geom.buffer(50))
    assert len(one.roads) < len(whole.roads)
    wkb = shapely.to_wkb(whole.roads.geometry.values)
    assert near.any() and set(wkb[near]) <= set(shapely.to_wkb(one.roads.geometry.values))


def test_workers_reading_postgis_give_the_local_plan(client, store_url, store_plan):
    from test_scale_partition import assert_same_plan

    from gridmap.scale import partition_on_cluster

    seen = []
    plan = partition_on_cluster(store_url, scheduler=client, seed=0, progress=seen.append)
    assert_same_plan(store_plan, plan)
    assert seen[-1].done == seen[-1].total == 5 and seen[-1].failed == 0
    # the workers opened the store (each reads its own communities)
    opened = client.run(lambda: len(__import__("gridmap.scale.partition").scale.partition._STORES))
    assert sum(opened.values()) >= 1


def test_some_communities_of_the_store(client, store_url):
    from gridmap.db import Store, load_layers
    from gridmap.partition import partition
    from gridmap.scale import partition_on_cluster

    with Store.from_url(store_url) as store:
        layers = load_layers(store, ["C0001", "C0003"])
    local = partition(layers, seed=0)
    plan = partition_on_cluster(store_url, scheduler=client, communities=["C0003", "C0001"], seed=0)
    assert plan.grids["grid_code"].tolist() == local.grids["grid_code"].tolist()
    assert plan.report.to_json() == local.report.to_json()
