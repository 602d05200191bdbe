"""Map pages: a plan, an incident (staff only for dispatchers), a diff."""

from __future__ import annotations

from apidata import G1, G3, lonlat


def test_plan_and_diff_maps(city) -> None:
    _, client, headers, pid = city
    r = client.get(f"/maps/plans/{pid}", headers=headers("viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert G1 in r.text and "13900000001" not in r.text
    r = client.get(f"/maps/diff/{pid}/{pid}", headers=headers("viewer"))
    assert r.status_code == 200
    assert client.get(f"/maps/plans/{pid}").status_code == 401
    assert client.get("/maps/plans/999", headers=headers("viewer")).status_code == 404


def test_incident_map_staff_by_role(city) -> None:
    _, client, headers, _ = city
    lon, lat = lonlat(50, 50)
    params = {"lon": lon, "lat": lat, "incident_id": "T-1"}
    r = client.get("/maps/incident", params=params, headers=headers("dispatcher"))
    assert r.status_code == 200, r.text
    assert G3 in r.text and "13900000001" in r.text
    r = client.get("/maps/incident", params=params, headers=headers("viewer"))
    assert G3 in r.text and "13900000001" not in r.text and "王网格" not in r.text
    r = client.get("/maps/incident", params={"lon": lat, "lat": lon}, headers=headers("viewer"))
    assert r.status_code == 400 and "swapped" in r.json()["detail"]
