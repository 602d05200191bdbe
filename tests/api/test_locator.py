"""The service's snapshot of the published plans follows publishes made elsewhere.

``gridmap publish`` or another uvicorn worker publishes through the store, not
through this process: the lifespan polls the published plans and rebuilds the
grid indexes when they changed.
"""

from __future__ import annotations

import time

import apidata
from fastapi.testclient import TestClient

from gridmap.api import Settings, create_app
from gridmap.db import load_plan, publish_plan, save_plan
from gridmap.db.keys import create_key


def _recoded_draft(store, pid: int) -> int:
    """A draft copy of plan ``pid`` whose grid codes end in 9xx instead of 0xx."""
    plan = load_plan(store, pid)
    grids = plan.grids.copy()
    grids["grid_code"] = grids["grid_code"].str.replace("001001", "001009", regex=False)
    return save_plan(store, plan.replace(grids=grids, assignments=None), author="t").id


def test_refresh_if_changed(published) -> None:
    store, client, headers, pid = published
    locator = client.app.state.locator
    assert locator.refresh_if_changed() is False  # nothing changed since start-up
    draft = _recoded_draft(store, pid)
    assert locator.refresh_if_changed() is False  # a draft is not served
    publish_plan(store, draft, author="another process")
    assert locator.refresh_if_changed() is True
    assert [a.plan_id for a in locator.areas] == [draft]
    lon, lat = apidata.lonlat(50, 50)
    r = client.get("/locate", params={"lon": lon, "lat": lat}, headers=headers("viewer"))
    assert r.json()["grid"]["grid_code"] == apidata.G3.replace("001001", "001009")
    assert locator.refresh_if_changed() is False


def test_service_picks_up_a_plan_published_by_another_process(api_store) -> None:
    from gridmap.db import save_layers

    layers = apidata.make_layers()
    save_layers(api_store, layers, author="setup")
    pid = save_plan(api_store, apidata.make_plan(layers), author="setup", status="published").id
    _, token = create_key(api_store, name="v", role="viewer", author="t")
    app = create_app(Settings(database_url="sqlite://", refresh_seconds=0.05), store=api_store)
    with TestClient(app) as client:
        assert client.get("/health").json()["published_plans"] == [pid]
        draft = _recoded_draft(api_store, pid)
        publish_plan(api_store, draft, author="gridmap publish")  # not through this service
        for _ in range(200):
            if client.get("/health").json()["published_plans"] == [draft]:
                break
            time.sleep(0.05)
        assert client.get("/health").json()["published_plans"] == [draft]
        lon, lat = apidata.lonlat(50, 50)
        r = client.get("/locate", params={"lon": lon, "lat": lat}, headers={"X-API-Key": token})
        assert r.json()["grid"]["plan_id"] == draft


def test_locator_and_batch_import_no_web_stack() -> None:
    """``gridmap locate`` reads the store through these two modules without FastAPI."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, gridmap.api, gridmap.api.batch, gridmap.api.locator\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout.splitlines()[-1])}
    assert not loaded & {"fastapi", "starlette", "uvicorn"}


def test_a_worker_adopts_the_loaded_snapshot_and_rebuilds_only_what_changed(api_store) -> None:
    """``gridmap serve --workers N`` loads once, forks, and each worker adopts that snapshot."""
    from gridmap.api.locator import Locator, adopt, preload
    from gridmap.db import Store, save_layers

    layers = apidata.make_layers()
    save_layers(api_store, layers, author="setup")
    pid = save_plan(api_store, apidata.make_plan(layers), author="setup", status="published").id
    snapshot = preload(api_store)
    (loaded,) = snapshot.areas
    assert loaded.plan_id == pid and loaded.store is api_store
    worker = Store(api_store.engine)  # the worker's own store (its own engine after a fork)
    adopt(snapshot, worker)
    locator = Locator(worker)
    assert locator.refresh() == 1
    (area,) = locator.areas
    # the same index, frames and boxes (shared pages), read through the worker's store
    assert area is not loaded and area.store is worker
    assert area.index is loaded.index and area.grids is loaded.grids
    assert area.boxes is loaded.boxes and area._plan is None
    lon, lat = apidata.lonlat(50, 50)
    assert locator.locate_one(lon, lat)["area"] is area
    assert area.index.codes[locator.locate_one(lon, lat)["row"]] == apidata.G3
    near, hh = area.nearby(*area._transformer().transform(lon, lat), 30)
    assert near["building_id"].tolist() == ["b00"] and len(hh) == 60
    # adopted once: a second locator over the store builds its own areas
    again = Locator(worker)
    assert again.refresh() == 1 and again.areas[0].index is not loaded.index

    # a plan published between the load and the fork is rebuilt, the others kept
    snapshot = preload(api_store)
    draft = _recoded_draft(api_store, pid)
    publish_plan(api_store, draft, author="another process")
    adopt(snapshot, worker)
    locator = Locator(worker)
    assert locator.refresh() == 1 and [a.plan_id for a in locator.areas] == [draft]
    assert locator.areas[0].index is not snapshot.areas[0].index
    # a snapshot built with another tolerance is not adopted
    adopt(preload(api_store, tolerance=0.5), worker)
    locator = Locator(worker)
    locator.refresh()
    assert locator.areas[0].index.tolerance == 0.01
