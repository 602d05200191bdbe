"""``/locate`` and ``/locate/batch`` over HTTP on SQLite and PostGIS."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from apidata import G1, G2, G3, G4, G5, X0, Y0, lonlat

from gridmap.crs import transform
from gridmap.db import list_audit, locate_sql

PROBLEM = "application/problem+json"


def _get(client, headers, role, x, y, **params):
    lon, lat = lonlat(x, y)
    return client.get("/locate", params={"lon": lon, "lat": lat, **params}, headers=headers(role))


def test_inside_gives_grid_community_and_staff(city) -> None:
    _, client, headers, pid = city
    r = _get(client, headers, "dispatcher", 50, 50)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "inside" and not body["outside"] and not body["on_boundary"]
    assert body["grid"]["grid_code"] == G3
    assert body["grid"]["plan_id"] == pid
    assert body["grid"]["boundary_desc"] == "东至2路, 南至2街, 西至2巷, 北至2河"
    assert body["distance_to_boundary_m"] == pytest.approx(50.0, abs=0.01)
    assert body["community"] == {"community_id": "c1", "code": "320104001001", "name": "幸福社区"}
    assert body["street"] == {"code": "320104001", "name": "夫子庙街道"}
    assert body["district"] == {"code": "320104", "name": "秦淮区"}
    assert body["staff"]["chief"] == {
        "staff_id": "s1",
        "role": "chief",
        "name": "王网格",
        "phone": "13900000001",
    }
    assert [w["phone"] for w in body["staff"]["workers"]] == ["13900000002"]


def test_viewer_sees_grids_and_codes_only(city) -> None:
    _, client, headers, _ = city
    body = _get(client, headers, "viewer", 50, 50).json()
    assert body["grid"]["grid_code"] == G3
    assert body["staff"] is None
    assert "1390000" not in json.dumps(body)


@pytest.mark.parametrize(
    ("xy", "primary", "candidates"),
    [
        ((200, 100), G3, [G3, G4]),  # shared edge (a vertex of both neighbours)
        ((100, 200), G1, [G1, G3]),
        ((200, 200), G1, [G1, G2, G3, G4]),  # 4-grid corner
        ((400, 300), G2, [G2, G5]),  # edge between two communities
        ((400, 200), G2, [G2, G4, G5]),
    ],
)
def test_point_on_shared_edges(city, xy, primary, candidates) -> None:
    _, client, headers, _ = city
    body = _get(client, headers, "viewer", *xy).json()
    assert body["status"] == "on_boundary"
    assert body["on_boundary"] is True
    assert body["grid"]["grid_code"] == primary
    assert [c["grid_code"] for c in body["candidates"]] == candidates
    assert body["distance_to_boundary_m"] == pytest.approx(0.0, abs=1e-6)


def test_outside_every_grid_is_flagged_with_nearest(city) -> None:
    _, client, headers, _ = city
    body = _get(client, headers, "dispatcher", -500, 50).json()
    assert body["status"] == "outside" and body["outside"] is True
    assert body["grid"] is None and body["candidates"] == []
    assert body["nearest"]["grid_code"] == G3
    assert body["nearest_distance_m"] == pytest.approx(500.0, abs=0.01)
    assert body["staff"] is None and body["community"] is None


def test_gcj02_and_bd09_input(city) -> None:
    _, client, headers, _ = city
    lon, lat = lonlat(300, 300)
    for crs in ("gcj02", "bd09"):
        glon, glat = transform(lon, lat, "wgs84", crs)
        r = client.get(
            "/locate", params={"lon": glon, "lat": glat, "crs": crs}, headers=headers("viewer")
        )
        body = r.json()
        assert body["grid"]["grid_code"] == G2, crs
        assert body["query"]["crs"] == crs
        assert body["query"]["lon_wgs84"] == pytest.approx(lon, abs=1e-8)
    # the raw GCJ-02 coordinate read as WGS84 lands hundreds of metres away: outside
    r = client.get("/locate", params={"lon": glon, "lat": glat}, headers=headers("viewer"))
    assert r.json()["status"] == "outside"
    # a projected CRS (the plan's own)
    x, y = transform(lon, lat, "wgs84", 4549)
    r = client.get(
        "/locate", params={"lon": x, "lat": y, "crs": "EPSG:4549"}, headers=headers("viewer")
    )
    assert r.json()["grid"]["grid_code"] == G2


def test_radius_residents_for_dispatchers_and_audited(city) -> None:
    store, client, headers, _ = city
    n0 = len(list_audit(store, entity="grid"))
    r = _get(client, headers, "dispatcher", 50, 50, radius=30)
    assert r.status_code == 200, r.text
    near = r.json()["nearby"]
    assert [b["building_id"] for b in near["buildings"]] == ["b00"]
    assert near["n_households"] == 60 == len(near["residents"])
    first = near["residents"][0]
    assert first["household_id"] == "b00-h0" and first["elderly_living_alone"] is True
    audit = list_audit(store, entity="grid").tail(1)
    assert audit["action"].tolist() == ["read_residents"]
    assert audit["entity_id"].tolist() == [G3]
    assert audit["actor"].iat[0].startswith("test-dispatcher")
    assert audit["after"].iat[0]["buildings"] == ["b00"]
    assert audit["after"].iat[0]["households"] == 60
    # a bigger radius reaches the next building too
    near = _get(client, headers, "planner", 50, 50, radius=250).json()["nearby"]
    assert [b["building_id"] for b in near["buildings"]][:2] == ["b00", "b01"]
    assert len(list_audit(store, entity="grid")) == n0 + 2


def test_radius_refused_for_viewers_and_limited(city) -> None:
    store, client, headers, _ = city
    n0 = len(list_audit(store, entity="grid"))
    r = _get(client, headers, "viewer", 50, 50, radius=30)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "dispatcher" in r.json()["detail"]
    r = _get(client, headers, "dispatcher", 50, 50, radius=5000)
    assert r.status_code == 400
    assert "limit of 1000 m" in r.json()["detail"]
    assert len(list_audit(store, entity="grid")) == n0


@pytest.mark.parametrize(
    ("role", "status"), [(None, 401), ("viewer", 200), ("dispatcher", 200), ("admin", 200)]
)
def test_locate_roles(city, role, status) -> None:
    _, client, headers, _ = city
    r = _get(client, headers, role, 50, 50)
    assert r.status_code == status
    if status == 401:
        assert r.headers["content-type"].startswith(PROBLEM)
        assert "Bearer" in r.headers["www-authenticate"]


def test_bad_key_and_bearer_header(city) -> None:
    _, client, headers, _ = city
    lon, lat = lonlat(50, 50)
    r = client.get("/locate", params={"lon": lon, "lat": lat}, headers={"X-API-Key": "gm_x_y"})
    assert r.status_code == 401 and "unknown or revoked" in r.json()["detail"]
    token = headers("viewer")["X-API-Key"]
    r = client.get(
        "/locate", params={"lon": lon, "lat": lat}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("params", "status", "match"),
    [
        ({"lon": 32.05, "lat": 118.78}, 400, "looks like lat/lon are swapped"),
        ({"lon": "nan", "lat": 32.0}, 400, "NaN"),
        ({"lon": 500000.0, "lat": 3548000.0}, 400, "projected metres"),
        ({"lon": 118.78, "lat": 32.05, "crs": "mars2000"}, 400, "unknown CRS 'mars2000'"),
        ({"lon": 118.78, "lat": 32.05, "crs": "EPSG:999999"}, 400, "unknown EPSG code"),
        ({"lon": 118.78, "lat": 32.05, "plan": 999}, 404, "no plan with id 999"),
        ({"lon": "abc", "lat": 32.05}, 400, "lon='abc' is not a number"),
        ({"lat": 32.05}, 400, "lon is required"),
        ({"lon": 118.78, "lat": 32.05, "plan": "x"}, 400, "plan='x' is not an integer"),
    ],
)
def test_bad_input_is_a_problem_not_a_500(city, params, status, match) -> None:
    _, client, headers, _ = city
    r = client.get("/locate", params=params, headers=headers("viewer"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["instance"] == "/locate"
    assert match in body["detail"]


def test_no_published_plan_is_404(store_and_client) -> None:
    _, client, headers = store_and_client
    r = client.get("/locate", params={"lon": 118.78, "lat": 32.05}, headers=headers("viewer"))
    assert r.status_code == 404
    assert "no plan is published" in r.json()["detail"]


# ----------------------------------------------------------------------------- batch

BOUNDARY_XY = [(50, 50), (200, 100), (200, 200), (400, 300), (-500, 50), (0, 0), (800, 400)]


def _points(xy=BOUNDARY_XY):
    return [
        {"id": f"p{i}", **dict(zip(("lon", "lat"), lonlat(*p), strict=True))}
        for i, p in enumerate(xy)
    ]


def test_batch_json_matches_single_answers(city) -> None:
    _, client, headers, _ = city
    r = client.post("/locate/batch", json={"points": _points()}, headers=headers("dispatcher"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 7 and body["outside"] == 1 and body["errors"] == 0
    rows = body["results"]
    assert [x["grid_code"] for x in rows] == [G3, G3, G1, G2, None, G3, G5]
    assert [x["status"] for x in rows] == [
        "inside",
        "on_boundary",
        "on_boundary",
        "on_boundary",
        "outside",
        "inside",
        "inside",
    ]
    assert rows[2]["candidates"] == [G1, G2, G3, G4]
    assert rows[4]["nearest_grid"] == G3 and rows[4]["nearest_distance_m"] == pytest.approx(500)
    assert rows[0]["chief_phone"] == "13900000001" and rows[0]["community_name"] == "幸福社区"
    for p, row in zip(_points(), rows, strict=True):
        single = client.get(
            "/locate", params={"lon": p["lon"], "lat": p["lat"]}, headers=headers("viewer")
        ).json()
        assert row["grid_code"] == (single["grid"] or {}).get("grid_code")
        assert row["candidates"] == [c["grid_code"] for c in single["candidates"]]


def test_batch_viewer_has_no_contacts(city) -> None:
    _, client, headers, _ = city
    r = client.post("/locate/batch", json=_points(), headers=headers("viewer"))
    assert r.status_code == 200
    assert "chief_phone" not in r.json()["results"][0]
    assert "1390000" not in r.text


def test_batch_geojson_and_csv_in_csv_out(city) -> None:
    _, client, headers, _ = city
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": p["id"],
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
            }
            for p in _points()
        ],
    }
    r = client.post(
        "/locate/batch",
        content=json.dumps(fc),
        headers={**headers("viewer"), "Content-Type": "application/geo+json"},
    )
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["results"]] == [f"p{i}" for i in range(7)]
    assert r.json()["results"][3]["grid_code"] == G2
    csv_in = "id,lon,lat,crs\n" + "".join(
        f"{p['id']},{p['lon']!r},{p['lat']!r},wgs84\n" for p in _points()
    )
    r = client.post(
        "/locate/batch",
        content=csv_in,
        headers={**headers("dispatcher"), "Content-Type": "text/csv", "Accept": "text/csv"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    out = pd.read_csv(io.StringIO(r.text), dtype=str)
    assert out["grid_code"].fillna("").tolist() == [G3, G3, G1, G2, "", G3, G5]
    assert out["candidates"].iat[2] == ";".join([G1, G2, G3, G4])
    assert out["chief_name"].iat[0] == "王网格"
    r = client.post(
        "/locate/batch?format=json",
        content=csv_in,
        headers={**headers("viewer"), "Content-Type": "text/csv"},
    )
    assert r.json()["count"] == 7


def test_batch_per_point_crs(city) -> None:
    _, client, headers, _ = city
    lon, lat = lonlat(300, 300)
    glon, glat = transform(lon, lat, "wgs84", "gcj02")
    pts = [{"lon": lon, "lat": lat}, {"lon": glon, "lat": glat, "crs": "gcj02"}]
    r = client.post(
        "/locate/batch", json={"crs": "wgs84", "points": pts}, headers=headers("viewer")
    )
    assert [x["grid_code"] for x in r.json()["results"]] == [G2, G2]


@pytest.mark.parametrize(
    ("content", "ctype", "match"),
    [
        ("id,lon,lat\n1,abc,32.0\n", "text/csv", "not a number"),
        ("id,x_coord,y_coord\n1,118,32\n", "text/csv", "needs lon and lat"),
        ("", "text/csv", "CSV body is empty"),
        ('{"points": [', "application/json", "not valid JSON"),
        ('{"points": [1, 2]}', "application/json", "is not an object"),
        ('{"pts": []}', "application/json", 'needs a \\"points\\" list'),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [{"type": "Feature", "geometry": {"type": "LineString"}}],
                }
            ),
            "application/geo+json",
            "not a Point",
        ),
        ('{"points": [{"lon": 32.05, "lat": 118.78}]}', "application/json", "swapped"),
        ('{"crs": "nope", "points": []}', "application/json", "unknown CRS"),
    ],
)
def test_batch_malformed_bodies(city, content, ctype, match) -> None:
    _, client, headers, _ = city
    r = client.post(
        "/locate/batch", content=content, headers={**headers("viewer"), "Content-Type": ctype}
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert match.replace("\\", "") in r.json()["detail"]


def test_batch_errors_report_mode(city) -> None:
    _, client, headers, _ = city
    pts = _points()[:2] + [{"id": "bad", "lon": float("nan"), "lat": 32.0}]
    body = json.dumps({"points": pts}).replace("NaN", "null")
    r = client.post(
        "/locate/batch?errors=report",
        content=body,
        headers={**headers("viewer"), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    assert [x["status"] for x in rows] == ["inside", "on_boundary", "error"]
    assert "NaN" in rows[2]["error"] and r.json()["errors"] == 1
    r = client.post(
        "/locate/batch",
        content=body,
        headers={**headers("viewer"), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "point 3 (id bad)" in r.json()["detail"]


def test_batch_limits(city) -> None:
    _, client, headers, _ = city
    client.app.state.settings.max_batch_points = 5
    try:
        r = client.post("/locate/batch", json=_points(), headers=headers("viewer"))
    finally:
        client.app.state.settings.max_batch_points = 100_000
    assert r.status_code == 413
    assert r.json()["limit"] == 5 and "limit of 5 per call" in r.json()["detail"]
    big = b"id,lon,lat\n" + b"1,118.78,32.05\n" * 200_000  # ~3 MB > the 2 MiB test limit
    r = client.post(
        "/locate/batch", content=big, headers={**headers("viewer"), "Content-Type": "text/csv"}
    )
    assert r.status_code == 413
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "GRIDMAP_MAX_BODY_BYTES" in r.json()["detail"]

    def chunks():
        for _ in range(40):
            yield b"1,118.78,32.05\n" * 5000

    r = client.post(
        "/locate/batch", content=chunks(), headers={**headers("viewer"), "Content-Type": "text/csv"}
    )
    assert r.status_code == 413  # streamed without Content-Length


def test_batch_100k_points(city) -> None:
    _, client, headers, _ = city
    rng = np.random.default_rng(0)
    x = rng.uniform(-100, 900, 100_000)
    y = rng.uniform(-100, 500, 100_000)
    lon, lat = transform(x + 384_800.0, y + 3_548_000.0, 4549, "wgs84")
    csv_in = pd.DataFrame({"id": np.arange(len(x)), "lon": lon, "lat": lat}).to_csv(index=False)
    client.app.state.settings.max_body_bytes = 20 * 1024 * 1024
    try:
        r = client.post(
            "/locate/batch?format=csv",
            content=csv_in,
            headers={**headers("viewer"), "Content-Type": "text/csv"},
        )
    finally:
        client.app.state.settings.max_body_bytes = 2 * 1024 * 1024
    assert r.status_code == 200
    out = pd.read_csv(io.StringIO(r.text), dtype=str)
    assert len(out) == 100_000
    inside = (x > 0) & (x < 800) & (y > 0) & (y < 400)
    # within the 1 cm edge tolerance a point just outside is snapped to the grid
    far = (x < -0.01) | (x > 800.01) | (y < -0.01) | (y > 400.01)
    status = out["status"].to_numpy()
    assert (status[inside] != "outside").all()
    assert (status[far] == "outside").all()
    assert ((status == "outside") == ~inside).mean() > 0.9999


# ----------------------------------------------------------------------------- backends agree


def test_same_answers_as_the_database(city) -> None:
    """GridIndex (served) and the database (PostGIS ST_Covers / SQLite) agree, edges included."""
    store, client, headers, pid = city
    rng = np.random.default_rng(1)
    xy = [(float(a), float(b)) for a, b in rng.uniform(-50, 850, (300, 2)) * [1, 0.5]]
    xy += [(x, y) for x in range(0, 801, 100) for y in range(0, 401, 100)]  # every shared vertex
    pts = _points(xy)
    r = client.post("/locate/batch", json={"points": pts}, headers=headers("viewer"))
    served = [x["grid_code"] for x in r.json()["results"]]
    lon = np.array([p["lon"] for p in pts])
    lat = np.array([p["lat"] for p in pts])
    db = locate_sql(store, pid, lon, lat)
    assert served == list(db)
    assert sum(c is None for c in served) > 10  # some points outside
    corner = xy.index((200, 200))
    assert served[corner] == G1


def test_locate_in_a_draft_plan(published) -> None:
    import apidata

    from gridmap.db import load_plan, save_plan

    store, client, headers, pid = published
    plan = load_plan(store, pid)
    grids = plan.grids.copy()
    grids["grid_code"] = grids["grid_code"].str.replace("001001", "001009", regex=False)
    draft = save_plan(store, plan.replace(grids=grids, assignments=None), author="t", name="draft")
    r = _get(client, headers, "viewer", 50, 50, plan=draft.id)
    assert r.status_code == 200, r.text
    assert r.json()["grid"]["grid_code"] == apidata.G3.replace("001001", "001009")
    assert r.json()["grid"]["plan_id"] == draft.id
    assert _get(client, headers, "viewer", 50, 50).json()["grid"]["grid_code"] == apidata.G3
    spec = client.get("/openapi.json").json()["paths"]["/locate"]["get"]
    assert [p["name"] for p in spec["parameters"]] == ["lon", "lat", "crs", "plan", "radius"]


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"lon": 118.78, "lat": 32.05, "crs": "EPSG:5773"}, "is not a horizontal CRS"),
        ({"lon": 118.78, "lat": 32.05, "crs": "EPSG:4978"}, "is not a horizontal CRS"),
        ({"lon": 1e300, "lat": 1e300, "crs": "EPSG:4549"}, "outside the area EPSG:4549 can"),
        ({"lon": 30.0, "lat": 0.0}, "cannot be projected into the CRS of plan"),
    ],
)
def test_unusable_crs_and_unprojectable_points_are_400(city, params, match) -> None:
    _, client, headers, _ = city
    r = client.get("/locate", params=params, headers=headers("viewer"))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert match in r.json()["detail"]


def test_out_of_range_plan_ids_are_404_not_500(city) -> None:
    _, client, headers, _ = city
    for plan in (2**31, 2**70, 0, -1):
        r = _get(client, headers, "viewer", 50, 50, plan=plan)
        assert r.status_code == 404, r.text
        r = client.post(
            f"/locate/batch?plan={plan}", json={"points": _points()[:1]}, headers=headers("viewer")
        )
        assert r.status_code == 404, r.text


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_batch_header_only_csv_is_an_empty_answer(city, fmt) -> None:
    _, client, headers, _ = city
    r = client.post(
        f"/locate/batch?format={fmt}",
        content="id,lon,lat\n",
        headers={**headers("viewer"), "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    if fmt == "json":
        assert r.json()["count"] == 0 and r.json()["results"] == []
    else:
        assert r.text.splitlines()[0].startswith('"id","lon","lat","status"')
        assert len(r.text.splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "ctype", "match"),
    [
        ('{"points": [{"lon": true, "lat": 32.05}]}', "application/json", "lon at point 1 is True"),
        ("id;lon;lat\na;118.7;32.0\n", "text/csv", "separated by ';'"),
        (
            '{"points": [{"lon": 118.78, "lat": 32.05, "crs": 5}]}',
            "application/json",
            "unknown CRS '5'",
        ),
        ('{"crs": "EPSG:5773", "points": []}', "application/json", "not a horizontal CRS"),
    ],
)
def test_batch_more_malformed_bodies(city, content, ctype, match) -> None:
    _, client, headers, _ = city
    r = client.post(
        "/locate/batch", content=content, headers={**headers("viewer"), "Content-Type": ctype}
    )
    assert r.status_code == 400, r.text
    assert match in r.json()["detail"]


def test_batch_unprojectable_points(city) -> None:
    """A point half a world away from the plans: 400, or an error row with ?errors=report."""
    _, client, headers, _ = city
    pts = [*_points()[:2], {"id": "africa", "lon": 30.0, "lat": 0.0}]
    r = client.post("/locate/batch", json={"points": pts}, headers=headers("viewer"))
    assert r.status_code == 400 and "point 3 (id africa)" in r.json()["detail"]
    r = client.post("/locate/batch?errors=report", json={"points": pts}, headers=headers("viewer"))
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    assert [x["status"] for x in rows] == ["inside", "on_boundary", "error"]
    assert rows[2]["grid_code"] is None and rows[2]["nearest_grid"] is None
    assert rows[2]["plan_id"] is None and "cannot be projected" in rows[2]["error"]
    assert r.json()["errors"] == 1


def test_outside_answers_say_what_is_likely_wrong(city) -> None:
    _, client, headers, _ = city
    # a point of grid 5 as a phone gives it (GCJ-02), sent as WGS84: ~500 m off, outside
    lon, lat = lonlat(600, 200)
    glon, glat = (float(v) for v in transform(lon, lat, "wgs84", "gcj02"))
    r = client.get("/locate", params={"lon": glon, "lat": glat}, headers=headers("viewer"))
    body = r.json()
    assert body["status"] == "outside", body
    assert body["hint"].startswith("if these are GCJ02 coordinates, pass crs=gcj02")
    assert body["hint"].endswith(f"the point then lies in grid {G5}")
    # projected x/y swapped
    x, y = X0 + 100, Y0 + 100
    r = client.get(
        "/locate", params={"lon": y, "lat": x, "crs": "EPSG:4549"}, headers=headers("viewer")
    )
    assert r.status_code == 200 and r.json()["status"] == "outside"
    assert (
        r.json()["hint"]
        == f"lon/lat (x/y) look swapped: send lon (x) first: the point then lies in grid {G3}"
    )
    # degrees sent with a projected crs
    r = client.get(
        "/locate", params={"lon": lon, "lat": lat, "crs": "EPSG:4549"}, headers=headers("viewer")
    )
    assert "these look like degrees, not EPSG:4549 metres" in r.json()["hint"]
    # inside: no hint
    assert _get(client, headers, "viewer", 50, 50).json()["hint"] is None


def test_batch_pauses_the_garbage_collector_only_while_it_runs(city) -> None:
    import gc

    _, client, headers, _ = city
    assert gc.isenabled()
    r = client.post("/locate/batch", json={"points": _points()}, headers=headers("viewer"))
    assert r.status_code == 200 and gc.isenabled()
    r = client.post(
        "/locate/batch",
        content="id,lon\n",
        headers={**headers("viewer"), "Content-Type": "text/csv"},
    )
    assert r.status_code == 400 and gc.isenabled()  # also after a refused batch
    gc.disable()
    try:
        client.post("/locate/batch", json={"points": _points()}, headers=headers("viewer"))
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:32650", "EPSG:4490", "cgcs2000", "EPSG:4326"])
def test_every_crs_gives_the_same_grid_as_wgs84(city, crs) -> None:
    """Single and batch answers agree for points given in other CRSs, edges included.

    A shared vertex converted to another CRS and back moves by far less than the
    1 cm edge tolerance: it keeps its four candidates; its primary is the grid the
    round trip lands in, the same for /locate and /locate/batch.
    """
    _, client, headers, _ = city
    for xy, candidates in (((300, 300), [G2]), ((200, 200), [G1, G2, G3, G4])):
        lon, lat = lonlat(*xy)
        x, y = (float(v) for v in transform(lon, lat, "wgs84", crs))
        body = client.get(
            "/locate", params={"lon": x, "lat": y, "crs": crs}, headers=headers("viewer")
        ).json()
        assert [c["grid_code"] for c in body["candidates"]] == candidates, body
        assert body["grid"]["grid_code"] in candidates
        assert body["query"]["lon_wgs84"] == pytest.approx(lon, abs=1e-7)
        batch = client.post(
            "/locate/batch",
            json={"crs": crs, "points": [{"lon": x, "lat": y}]},
            headers=headers("viewer"),
        ).json()["results"][0]
        assert batch["grid_code"] == body["grid"]["grid_code"]
        assert batch["candidates"] == candidates


def test_batch_reads_what_chinese_excel_writes(city) -> None:
    """GBK CSV and XLSX with Chinese headers; a bad row is named by its spreadsheet line."""
    _, client, headers, _ = city
    rows = pd.DataFrame(
        {
            "工单编号": ["T1", "T2", "T3"],
            "经度": [lonlat(100, 100)[0], lonlat(300, 300)[0], lonlat(600, 200)[0]],
            "纬度": [lonlat(100, 100)[1], lonlat(300, 300)[1], lonlat(600, 200)[1]],
            "诉求内容": ["噪音扰民", "垃圾清运", "道路破损"],
        }
    )
    gbk = rows.to_csv(index=False).encode("gbk")
    xlsx = io.BytesIO()
    rows.to_excel(xlsx, index=False)
    for body in (gbk, b"\xef\xbb\xbf" + rows.to_csv(index=False).encode(), xlsx.getvalue()):
        r = client.post(
            "/locate/batch",
            content=body,
            headers={**headers("viewer"), "Content-Type": "text/csv"},
        )
        assert r.status_code == 200, r.text
        got = r.json()["results"]
        assert [x["id"] for x in got] == ["T1", "T2", "T3"]
        assert [x["grid_code"] for x in got] == [G3, G2, G5]
    bad = rows.astype(str)
    bad.loc[1, "纬度"] = "北纬32度"
    r = client.post(
        "/locate/batch",
        content=bad.to_csv(index=False).encode("gbk"),
        headers={**headers("viewer"), "Content-Type": "text/csv"},
    )
    assert r.status_code == 400
    assert "lat at line 3 is '北纬32度', not a number" in r.json()["detail"]


# ----------------------------------------------------------------------------- hot path

# (role, point, extra query): answers, refusals and errors of GET /locate
HOT_CASES = [
    ("dispatcher", (50, 50), {}),  # inside, with staff
    ("viewer", (50, 50), {}),  # inside, no staff
    ("viewer", (200, 200), {}),  # 4-grid corner
    ("viewer", (-500, 50), {}),  # outside, with the nearest grid
    ("dispatcher", (50, 50), {"radius": 30}),  # residents (audited)
    ("viewer", (50, 50), {"radius": 30}),  # 403
    (None, (50, 50), {}),  # 401 with WWW-Authenticate
    ("viewer", (50, 50), {"crs": "mars2000"}),  # 400
    ("viewer", (50, 50), {"plan": 999}),  # 404
    ("viewer", (50, 50), {"lon": "abc"}),  # 400
]


@pytest.mark.parametrize(("role", "xy", "extra"), HOT_CASES)
def test_hot_path_answers_as_the_full_stack(city, role, xy, extra) -> None:
    """GET /locate skips the middleware; a GET with a body goes through all of it: same answer."""
    store, client, headers, _ = city
    lon, lat = lonlat(*xy)
    params = {"lon": lon, "lat": lat, **extra}
    n0 = len(list_audit(store, entity="grid"))
    hot = client.get("/locate", params=params, headers=headers(role))
    full = client.get("/locate", params=params, headers={**headers(role), "Content-Length": "0"})
    assert hot.status_code == full.status_code
    assert hot.json() == full.json()
    for name in ("content-type", "x-content-type-options", "www-authenticate", "retry-after"):
        assert hot.headers.get(name) == full.headers.get(name), name
    assert hot.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in hot.headers
    if "radius" in extra and role == "dispatcher":
        assert hot.json()["nearby"]["n_households"] == 60
        assert len(list_audit(store, entity="grid")) == n0 + 2  # both reads audited


def test_hot_path_wrong_keys_are_limited(published) -> None:
    """Wrong keys on the hot path count towards the lockout (429 with Retry-After)."""
    _, client, headers, _ = published
    settings = client.app.state.settings  # type: ignore[attr-defined]
    lon, lat = lonlat(50, 50)
    statuses = [
        client.get(
            "/locate", params={"lon": lon, "lat": lat}, headers={"X-API-Key": f"gm_bad{i}_x"}
        ).status_code
        for i in range(settings.auth_failures_per_min + 1)
    ]
    assert statuses == [401] * settings.auth_failures_per_min + [429]
    r = client.get("/locate", params={"lon": lon, "lat": lat}, headers=headers("viewer"))
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 300
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.json()["type"] == "urn:gridmap:problem:too-many-requests"


class _BrokenLocator:
    """A locator with a bug whose message holds personal data."""

    areas: tuple[()] = ()
    phone = "13900000001"

    def locate_one(self, *args: object, **kwargs: object) -> dict:
        raise RuntimeError(f"phone {self.phone}")  # (the log shows this line, not the phone)


def test_hot_path_bug_is_a_logged_500_without_its_message(published, caplog) -> None:
    _, client, headers, _ = published
    state = client.app.state  # type: ignore[attr-defined]
    locator, state.locator = state.locator, _BrokenLocator()
    try:
        with caplog.at_level("ERROR", logger="gridmap.api.errors"):
            r = client.get(
                "/locate", params={"lon": 118.78, "lat": 32.05}, headers=headers("viewer")
            )
    finally:
        state.locator = locator
    assert r.status_code == 500 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"] == "urn:gridmap:problem:internal"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "RuntimeError" in caplog.text and "13900000001" not in caplog.text + r.text


def test_hot_path_keeps_cors(published) -> None:
    from fastapi.testclient import TestClient

    from gridmap.api import Settings, create_app

    store, _, headers, _ = published
    settings = Settings(database_url="sqlite://", cors_origins=["http://desk.example"])
    lon, lat = lonlat(50, 50)
    with TestClient(create_app(settings, store=store)) as client:
        r = client.get(
            "/locate",
            params={"lon": lon, "lat": lat},
            headers={**headers("viewer"), "Origin": "http://desk.example"},
        )
        assert r.status_code == 200 and r.json()["grid"]["grid_code"] == G3
        assert r.headers["access-control-allow-origin"] == "http://desk.example"
        r = client.get(
            "/locate",
            params={"lon": lon, "lat": lat},
            headers={**headers("viewer"), "Origin": "http://evil.example"},
        )
        assert "access-control-allow-origin" not in r.headers


def test_hot_path_is_in_front_of_fastapis_own_layers(published) -> None:
    """Without CORS the hot path answers before FastAPI's error, telemetry and body layers."""
    from gridmap.api.app import HotRoutesMiddleware

    _, client, headers, _ = published
    lon, lat = lonlat(50, 50)
    r = client.get("/locate", params={"lon": lon, "lat": lat}, headers=headers("viewer"))
    assert r.status_code == 200 and r.json()["grid"]["grid_code"] == G3
    stack = client.app.middleware_stack  # type: ignore[attr-defined]
    assert isinstance(stack, HotRoutesMiddleware)
    assert type(stack.app).__name__ == "ServerErrorMiddleware"
