"""Plans over HTTP on SQLite and PostGIS: create → poll → get → edit → publish → diff → export.

The app, store and API keys come from ``store_and_client`` (``tests/api/conftest.py``).
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely import LineString, box

from gridmap.db import list_audit, load_plan, save_layers
from gridmap.validation import validate_layers

X0, Y0 = 500_000.0, 3_545_000.0
G1, G2 = "320508019044001", "320508019044002"
H1 = "320508019045001"


def _b(x0: float, y0: float, x1: float, y1: float):
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def _layers():
    """Two 400 m × 100 m communities, 8 buildings of 100 households each."""
    comms = gpd.GeoDataFrame(
        {
            "community_id": ["c1", "c2"],
            "name": ["幸福社区", "和平社区"],
            "code": ["320508019044", "320508019045"],
        },
        geometry=[_b(0, 0, 400, 100), _b(400, 0, 800, 100)],
        crs=4549,
    )
    rows = [
        (f"c{k + 1}b{i}", _b(400 * k + 10 + 50 * i, 30, 400 * k + 40 + 50 * i, 70))
        for k in range(2)
        for i in range(8)
    ]
    blds = gpd.GeoDataFrame(
        {
            "building_id": [r[0] for r in rows],
            "households": [100] * len(rows),
            "use": ["residential"] * len(rows),
        },
        geometry=[r[1] for r in rows],
        crs=4549,
    )
    layers, _ = validate_layers({"communities": comms, "buildings": blds}, target_crs=4549)
    return layers


@pytest.fixture
def api(store_and_client):
    """``store_and_client`` of ``tests/api/conftest.py`` with the two-community layers stored."""
    store, client, headers = store_and_client
    save_layers(store, _layers(), author="setup")
    return store, client, headers


def _create(client, headers, **body) -> int:
    body = {"community_ids": ["c1", "c2"], "min_households": 200, "max_households": 500, **body}
    r = client.post("/plans", json=body, headers=headers("planner"))
    assert r.status_code == 202, r.text
    loc = r.headers["location"]
    assert loc.startswith("/plans/jobs/")
    assert r.json()["status"] in ("queued", "running", "done")
    for _ in range(600):
        job = client.get(loc, headers=headers("viewer")).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert job["status"] == "done", job
    assert job["progress"] == {"done": 2, "total": 2}
    return int(job["result"]["plan_id"])


def test_full_cycle(api):
    store, client, headers = api
    pid = _create(client, headers)
    P, V = headers("planner"), headers("viewer")

    r = client.get(f"/plans/{pid}", headers=V)
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    body = r.json()
    assert body["status"] == "draft" and body["n_grids"] == 4 and body["households"] == 1600
    assert [g["grid_code"] for g in body["grids"]] == [G1, G2, H1, "320508019045002"]
    assert [g["households"] for g in body["grids"]] == [400] * 4
    assert body["overall"]["share_in_band"] == 1.0
    assert client.get(f"/plans/{pid}", headers={**V, "If-None-Match": '"1"'}).status_code == 304

    listed = client.get("/plans?status=draft", headers=V).json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == pid
    assert client.get("/plans?status=published", headers=V).json()["count"] == 0
    assert client.get("/plans?area=c1", headers=V).json()["count"] == 0
    assert client.get("/plans?area=c2,c1", headers=V).json()["count"] == 1

    move = {"op": "move_buildings", "building_ids": ["c1b3"], "to_grid": G2}
    # edits need If-Match, and a planner
    r = client.post(f"/plans/{pid}/edits", json=move, headers=P)
    assert r.status_code == 428
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (
        client.post(f"/plans/{pid}/edits", json=move, headers={**V, "If-Match": '"1"'}).status_code
        == 403
    )

    r = client.post(f"/plans/{pid}/edits", json=move, headers={**P, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    out = r.json()
    assert out["ok"] and out["plan"]["version"] == 2
    assert out["affected"] == [G1, G2] and out["violations"] == []
    figs = {g["grid_code"]: g for g in out["figures"]["grids"]}
    assert figs[G1]["households"] == 300 and figs[G2]["households"] == 500
    assert round(figs[G1]["area_m2"], -1) == 15000.0
    assert out["figures"]["communities"][0]["gap_area_m2"] < 1.0

    # a stale edit is refused with 412 and changes nothing
    r = client.post(
        f"/plans/{pid}/edits",
        json={"op": "merge", "codes": [G1, G2]},
        headers={**P, "If-Match": '"1"'},
    )
    assert r.status_code == 412
    assert r.headers["etag"] == '"2"' and r.json()["current_version"] == 2

    # a refused edit (contiguity) leaves the stored plan identical
    before = load_plan(store, pid)
    n_audit = len(list_audit(store))
    bad = {"op": "move_buildings", "building_ids": ["c1b0"], "to_grid": G2}
    r = client.post(f"/plans/{pid}/edits", json=bad, headers={**P, "If-Match": '"2"'})
    assert r.status_code == 422
    problem = r.json()
    assert problem["title"] == "Edit refused"
    assert {(v["check"], v["grid_code"]) for v in problem["violations"]} >= {("contiguity", G2)}
    after = load_plan(store, pid)
    pd.testing.assert_frame_equal(before.grids, after.grids)
    pd.testing.assert_frame_equal(before.buildings, after.buildings)
    assert before.grids.geometry.to_wkb().tolist() == after.grids.geometry.to_wkb().tolist()
    assert before.report.to_json() == after.report.to_json()
    assert len(list_audit(store)) == n_audit
    assert client.get(f"/plans/{pid}", headers=V).headers["etag"] == '"2"'

    # a split along a line drawn in WGS84
    line = gpd.GeoSeries(
        [LineString([(X0 + 100, Y0 - 10), (X0 + 100, Y0 + 110)])], crs=4549
    ).to_crs(4326)
    geo = shapely.geometry.mapping(line.iloc[0])
    r = client.post(
        f"/plans/{pid}/edits",
        json={"op": "split", "code": G1, "line": geo},
        headers={**P, "If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["affected"] == [G1, "320508019044003"]
    assert r.headers["etag"] == '"3"'

    # audit: storage's update rows and our edit rows, with before/after versions
    audit = list_audit(store, entity="plan", entity_id=pid)
    edits = audit[audit["action"].str.startswith("edit.")]
    assert edits["action"].tolist() == ["edit.move_buildings", "edit.split"]
    first = edits.iloc[0]
    assert first["before"] == {"version": 1}
    assert first["after"]["version"] == 2 and first["after"]["request"]["to_grid"] == G2
    assert audit["action"].tolist().count("update") == 2

    # publish needs If-Match, refreshes the locator
    assert client.post(f"/plans/{pid}/publish", headers=P).status_code == 428
    assert client.post(f"/plans/{pid}/publish", headers={**P, "If-Match": '"2"'}).status_code == 412
    r = client.post(f"/plans/{pid}/publish", headers={**P, "If-Match": '"3"'})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "published" and r.headers["etag"] == '"4"'
    assert client.get("/plans?status=published", headers=V).json()["count"] == 1
    # the locator serves the published plan at once
    assert [a.plan_id for a in client.app.state.locator.areas] == [pid]
    # a published plan is not edited in place
    r = client.post(
        f"/plans/{pid}/edits", json={"op": "lock", "codes": [G1]}, headers={**P, "If-Match": '"4"'}
    )
    assert r.status_code == 409

    # diff against a fresh run of the same area
    pid2 = _create(client, headers)
    r = client.get(f"/plans/{pid2}/diff/{pid}", headers=V)
    assert r.status_code == 200
    d = r.json()
    assert d["summary"]["grids_added"] == 1 and d["summary"]["grids_removed"] == 0
    assert [g["grid_code"] for g in d["grids_added"]] == ["320508019044003"]
    moved = {(m["building_id"], m["grid_a"], m["grid_b"]) for m in d["moved_buildings"]}
    assert ("c1b3", G1, G2) in moved


def _read_export(fmt: str, content: bytes, name: str, tmp_path: Path, pid: int):
    path = tmp_path / name
    path.write_bytes(content)
    if fmt == "shp":
        assert name == f"plan-{pid}-v1.zip"
        members = zipfile.ZipFile(io.BytesIO(content)).namelist()
        assert {Path(m).suffix for m in members} >= {".shp", ".shx", ".dbf", ".prj", ".cpg"}
        zipfile.ZipFile(path).extractall(tmp_path / "shp")
        return pyogrio.read_dataframe(tmp_path / "shp" / f"plan-{pid}-v1.shp")
    if fmt == "gpkg":
        layers = {row[0] for row in pyogrio.list_layers(path)}
        assert {"grids", "buildings", "plan_meta"} <= layers
        # a viewer's export holds no personal data
        assert "assignments" not in layers and "households" not in layers
        return pyogrio.read_dataframe(path, layer="grids")
    if fmt == "parquet":
        return gpd.read_parquet(path)
    if fmt == "csv":
        table = pd.read_csv(path)
        assert {"wkt", "lon", "lat"} <= set(table.columns)
        return table
    return pyogrio.read_dataframe(path)


def test_export_every_format(api, tmp_path: Path):
    store, client, headers = api
    pid = _create(client, headers)
    for fmt, media in [
        ("gpkg", "application/geopackage+sqlite3"),
        ("geojson", "application/geo+json"),
        ("shp", "application/zip"),
        ("parquet", "application/vnd.apache.parquet"),
        ("csv", "text/csv"),
    ]:
        r = client.get(f"/plans/{pid}/export", params={"format": fmt}, headers=headers("viewer"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(media)
        name = r.headers["content-disposition"].split("filename=")[1].strip('"')
        grids = _read_export(fmt, r.content, name, tmp_path, pid)
        assert len(grids) == 4, fmt
        assert sorted(grids["grid_code"].astype(str)) == [G1, G2, H1, "320508019045002"]
        if fmt != "csv":
            assert grids.crs.to_epsg() == 4326
    r = client.get(f"/plans/{pid}/export", params={"format": "kml"}, headers=headers("viewer"))
    assert r.status_code == 422


def test_grids_geojson_and_guards(api):
    store, client, headers = api
    pid = _create(client, headers)
    V, P = headers("viewer"), headers("planner")
    r = client.get(f"/plans/{pid}/grids", headers=V)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 4
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert 119.9 < lon < 120.1 and 31.9 < lat < 32.1
    assert fc["features"][0]["properties"]["name"] == "幸福社区第001网格"
    assert client.get("/plans/999", headers=V).status_code == 404
    assert client.get("/plans/jobs/nope", headers=V).status_code == 404
    assert client.post("/plans", json={"community_ids": ["c1"]}, headers=V).status_code == 403
    r = client.post(f"/plans/{pid}/edits", json={"op": "paint"}, headers={**P, "If-Match": '"1"'})
    assert r.status_code == 422
    r = client.post(
        f"/plans/{pid}/edits",
        json={"op": "move_buildings", "building_ids": ["zz"], "to_grid": G1},
        headers={**P, "If-Match": '"1"'},
    )
    assert r.status_code == 404
    # a failing job reports its problem
    r = client.post("/plans", json={"community_ids": ["nope"]}, headers=P)
    loc = r.headers["location"]
    for _ in range(200):
        job = client.get(loc, headers=V).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert job["status"] == "failed" and job["error"]["status"] == 404
    assert "nope" in job["error"]["detail"]


def test_lock_repartition_restaff_over_http(api):
    store, client, headers = api
    pid = _create(client, headers)
    P = headers("planner")
    r = client.post(
        f"/plans/{pid}/edits", json={"op": "lock", "codes": [G1]}, headers={**P, "If-Match": '"1"'}
    )
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    assert load_plan(store, pid).grids["locked"].tolist() == [True, False, False, False]
    r = client.post(
        f"/plans/{pid}/edits",
        json={"op": "merge", "codes": [G1, G2]},
        headers={**P, "If-Match": '"2"'},
    )
    assert r.status_code == 422 and r.json()["violations"][0]["check"] == "locked"
    r = client.post(
        f"/plans/{pid}/edits",
        json={"op": "repartition", "community_ids": ["c1"]},
        headers={**P, "If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    plan = load_plan(store, pid)
    assert plan.grids["households"].tolist() == [400] * 4
    r = client.post(f"/plans/{pid}/edits", json={"op": "restaff"}, headers={**P, "If-Match": '"3"'})
    assert r.status_code == 400  # no staff roster stored
    assert "staff" in r.json()["detail"]


def test_edit_racing_another_writer_gets_412(api, monkeypatch):
    """Another writer commits between our version check and our write: 412, nothing lost."""
    import gridmap.partition.edit as edit_mod
    from gridmap.db import update_plan_grids

    store, client, headers = api
    pid = _create(client, headers)
    real = edit_mod.apply_edit

    def racing(plan, layers, op, **params):
        result = real(plan, layers, op, **params)
        update_plan_grids(
            store, pid, {G1: {"name": "其他人改的"}}, author="someone else", expected_version=1
        )
        return result

    monkeypatch.setattr(edit_mod, "apply_edit", racing)
    move = {"op": "move_buildings", "building_ids": ["c1b3"], "to_grid": G2}
    r = client.post(
        f"/plans/{pid}/edits", json=move, headers={**headers("planner"), "If-Match": '"1"'}
    )
    assert r.status_code == 412
    assert r.json()["current_version"] == 2
    plan = load_plan(store, pid)
    assert plan.grids["name"].iloc[0] == "其他人改的"  # the other writer's change survives
    assert plan.grids["households"].tolist() == [400] * 4  # ours was not written
    actions = list_audit(store, entity="plan", entity_id=pid)["action"].tolist()
    assert not any(a.startswith("edit.") for a in actions)


def test_edits_that_change_nothing_keep_the_version(api):
    store, client, headers = api
    pid = _create(client, headers)
    P = headers("planner")
    lock = {"op": "lock", "codes": [G1]}
    r = client.post(f"/plans/{pid}/edits", json=lock, headers={**P, "If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    n_audit = len(list_audit(store))
    r = client.post(f"/plans/{pid}/edits", json=lock, headers={**P, "If-Match": '"2"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"' and r.json()["plan"]["version"] == 2
    assert r.json()["affected"] == [] and "nothing changed" in r.json()["notes"][-1]
    stay = {"op": "move_buildings", "building_ids": ["c1b5"], "to_grid": G2}  # c1b5 is in G2
    r = client.post(f"/plans/{pid}/edits", json=stay, headers={**P, "If-Match": '"2"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    assert client.get(f"/plans/{pid}", headers=P).headers["etag"] == '"2"'
    assert len(list_audit(store)) == n_audit  # nothing written


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"community_ids": []}, "community_ids: List should have at least 1 item"),
        ({"min_households": 600, "max_households": 500}, "min_households (600) is above"),
        ({"n_grids": 0}, "n_grids"),
        ({"n_grids": {"c1": 0}}, "n_grids"),
        ({"seed": -1}, "seed"),
        ({"target": "nan"}, "target"),
        ({"parent_id": 2**40}, "parent_id"),
    ],
)
def test_create_refuses_bad_parameters_before_queuing(api, body, match):
    _, client, headers = api
    r = client.post("/plans", json=body, headers=headers("planner"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert match in r.json()["detail"]


def test_create_under_an_unknown_parent_is_404(api):
    _, client, headers = api
    r = client.post("/plans", json={"parent_id": 77}, headers=headers("planner"))
    assert r.status_code == 404 and "no plan with id 77" in r.json()["detail"]


def test_out_of_range_ids_are_refused_not_500(api):
    _, client, headers = api
    V, P, A = headers("viewer"), headers("planner"), headers("admin")
    big = 2**31
    for path in (
        f"/plans/{big}",
        f"/plans/{big}/grids",
        f"/plans/1/diff/{big}",
        f"/plans/{big}/export",
    ):
        r = client.get(path, headers=V)
        assert r.status_code == 422, (path, r.text)
        assert "less than or equal to 2147483647" in r.json()["detail"]
    r = client.post(f"/plans/{big}/publish", headers={**P, "If-Match": '"1"'})
    assert r.status_code == 422
    r = client.post(
        f"/plans/{2**70}/edits", json={"op": "lock", "codes": [G1]}, headers={**P, "If-Match": "*"}
    )
    assert r.status_code == 422
    assert client.delete(f"/keys/{big}", headers=A).status_code == 422
    assert client.get("/plans/0", headers=V).status_code == 422


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ({"type": "LineString", "coordinates": [[120.0, 32.0]]}, "line is not a GeoJSON geometry"),
        ({"type": "LineString", "coordinates": [["a", 1], [2, 3]]}, "not a GeoJSON geometry"),
        ({"coordinates": [[120.0, 32.0], [120.1, 32.1]]}, "not a GeoJSON geometry"),
        ({"type": "Point", "coordinates": [120.0, 32.0]}, "must be a LineString"),
    ],
)
def test_split_with_a_malformed_line_is_400(api, line, match):
    _, client, headers = api
    pid = _create(client, headers)
    r = client.post(
        f"/plans/{pid}/edits",
        json={"op": "split", "code": G1, "line": line},
        headers={**headers("planner"), "If-Match": '"1"'},
    )
    assert r.status_code == 400, r.text
    assert match in r.json()["detail"]


def test_publish_that_would_uncover_communities_is_409_until_allowed(api):
    store, client, headers = api
    P, V = headers("planner"), headers("viewer")
    whole = _create(client, headers)
    r = client.post(f"/plans/{whole}/publish", headers={**P, "If-Match": '"1"'})
    assert r.status_code == 200
    body = {"community_ids": ["c1"], "min_households": 200, "max_households": 500}
    r = client.post("/plans", json=body, headers=P)
    assert r.status_code == 202, r.text
    for _ in range(600):
        job = client.get(r.headers["location"], headers=V).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    part = int(job["result"]["plan_id"])
    r = client.post(f"/plans/{part}/publish", headers={**P, "If-Match": '"1"'})
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "leaving 1 community" in r.json()["detail"] and ": c2." in r.json()["detail"]
    assert "?allow_uncovered=true" in r.json()["detail"]
    # nothing changed: the whole plan is still the published one, the part still a draft
    assert client.get(f"/plans/{whole}", headers=V).json()["status"] == "published"
    assert client.get(f"/plans/{part}", headers=V).json()["status"] == "draft"
    r = client.post(f"/plans/{part}/publish?allow_uncovered=true", headers={**P, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["status"] == "published"
    assert client.get(f"/plans/{whole}", headers=V).json()["status"] == "archived"
