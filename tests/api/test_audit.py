"""The audit log read back (GET /audit, gridmap audit), append-only, archived by retention."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from apidata import G3, lonlat

from gridmap.db import list_audit
from gridmap.db.audit import archive_audit, query_audit, write_audit
from gridmap.db.keys import create_key
from gridmap.db.models import utcnow
from gridmap.errors import InputError


def _auditor(store) -> dict[str, str]:
    return {"X-API-Key": create_key(store, name="DPO 数据保护", role="auditor", author="t")[1]}


def test_who_read_this_household(published) -> None:
    store, client, headers, pid = published
    lon, lat = lonlat(50, 50)
    r = client.get(f"/locate?lon={lon}&lat={lat}&radius=30", headers=headers("dispatcher"))
    assert r.status_code == 200 and r.json()["nearby"]["n_households"] == 60
    auditor = _auditor(store)
    # a viewer, a dispatcher, a planner may not read the log; no key is 401
    for role in ("viewer", "dispatcher", "planner"):
        r = client.get("/audit", headers=headers(role))
        assert r.status_code == 403 and "auditor" in r.json()["detail"]
    assert client.get("/audit").status_code == 401
    r = client.get("/audit?household=b00-h7", headers=auditor)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 1 and body["count"] == 1
    row = body["data"][0]
    assert row["actor"] == "test-dispatcher (key 2)" and row["action"] == "read_residents"
    assert row["grid_code"] == G3 and len(row["households"]) == 60
    assert "b00-h7" in row["households"] and row["after"]["radius_m"] == 30
    assert client.get("/audit?household=b10-h0", headers=auditor).json()["total"] == 0
    assert client.get(f"/audit?grid={G3}&kind=residents", headers=auditor).json()["total"] == 1
    r = client.get("/audit?actor=test-dispatcher&kind=personal", headers=headers("admin"))
    assert r.status_code == 200 and r.json()["total"] == 1
    # the audit reads are audited too
    assert client.get("/audit?kind=audit.read", headers=auditor).json()["total"] == 4


def test_kinds_periods_paging_and_csv(published) -> None:
    store, client, headers, pid = published
    auditor = _auditor(store)
    r = client.get("/keys", headers=headers("admin"))
    assert r.status_code == 200
    r = client.post("/keys", json={"name": "新窗口", "role": "viewer"}, headers=headers("admin"))
    created = r.json()
    assert client.post(f"/keys/{created['id']}/rotate", headers=headers("admin")).status_code == 200
    assert client.delete(f"/keys/{created['id']}", headers=headers("admin")).status_code == 200
    keys = client.get("/audit?kind=keys&limit=100", headers=auditor).json()
    # the fixture's 4 keys + the auditor + 新窗口: created; then rotated, revoked
    assert [d["action"] for d in keys["data"]] == ["create"] * 6 + ["rotate", "revoke"]
    assert keys["data"][-1]["before"]["prefix"] == keys["data"][-2]["after"]["prefix"]
    assert "token" not in json.dumps(keys)
    page = client.get("/audit?kind=keys&limit=3&offset=6", headers=auditor).json()
    assert page["total"] == 8 and [d["action"] for d in page["data"]] == ["rotate", "revoke"]
    r = client.get(f"/plans/{pid}/export?format=geojson", headers=headers("planner"))
    assert r.status_code == 200
    r = client.get(f"/plans/{pid}/export?format=geojson", headers=headers("viewer"))
    assert r.status_code == 200
    exports = client.get("/audit?kind=export", headers=auditor).json()["data"]
    assert [(d["action"], d["actor"]) for d in exports] == [
        ("export.personal", "test-planner (key 3)"),
        ("export", "test-viewer (key 1)"),
    ]
    today = utcnow().astimezone().date().isoformat()
    assert client.get("/audit?until=2000-01-01", headers=auditor).json()["total"] == 0
    tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()
    r = client.get(f"/audit?since=2000-01-01&until={tomorrow}&kind=export", headers=auditor)
    assert r.json()["total"] == 2
    r = client.get("/audit?since=2026-12-31&until=2026-01-01", headers=auditor)
    assert r.status_code == 400 and "swap" in r.json()["detail"]
    r = client.get("/audit?since=yesterday", headers=auditor)
    assert r.status_code == 400 and "2026-12-01" in r.json()["detail"]
    r = client.get("/audit?kind=export&format=csv", headers=auditor)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads the Chinese right
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "id,at,actor,action,entity,entity_id,grid_code,households,before,after"
    assert len(lines) == 3 and "+08:00" in lines[1] and r.headers["x-total-count"] == "2"
    assert today  # (the period filter ran on today's rows)


def test_no_route_or_command_deletes_and_the_database_refuses(api_store) -> None:
    with api_store.session() as s:
        write_audit(s, actor="li", action="note", entity="plan", entity_id=1, households=["h1"])
    for sql in (
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "UPDATE audit_households SET household_id = 'h2'",
        "DELETE FROM audit_households",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with api_store.engine.begin() as conn:
                conn.exec_driver_sql(sql)
    page = query_audit(api_store)
    assert (
        page.total == 1 and page.rows[0]["actor"] == "li" and page.rows[0]["households"] == ["h1"]
    )


def test_retention_archives_old_rows_to_a_file_first(api_store, tmp_path) -> None:
    now = utcnow()
    with api_store.session() as s:
        for days, hh in ((400, "h-old"), (300, "h-mid"), (10, "h-new")):
            write_audit(
                s,
                actor="desk (key 2)",
                action="read_residents",
                entity="grid",
                entity_id="G",
                households=[hh],
                at=now - timedelta(days=days),
            )
    with pytest.raises(InputError, match="shorter than 180 days"):
        archive_audit(api_store, tmp_path / "a.jsonl", older_than_days=30, actor="ops")
    out = tmp_path / "audit-2026.jsonl.gz"
    res = archive_audit(api_store, out, older_than_days=200, actor="ops", now=now)
    assert res.rows == 2 and res.upto_id == 2
    data = out.read_bytes()
    assert hashlib.sha256(data).hexdigest() == res.sha256
    rows = [json.loads(line) for line in gzip.decompress(data).decode().splitlines()]
    assert [r["households"] for r in rows] == [["h-old"], ["h-mid"]]
    left = query_audit(api_store)
    assert [r["action"] for r in left.rows] == ["read_residents", "archive"]
    assert left.rows[1]["after"]["sha256"] == res.sha256
    assert query_audit(api_store, household="h-old").total == 0
    with pytest.raises(InputError, match="exists already"):
        archive_audit(api_store, out, older_than_days=200, actor="ops", now=now)
    assert (
        archive_audit(api_store, tmp_path / "b.jsonl", older_than_days=200, actor="ops").rows == 0
    )
    # the archive record itself cannot be changed or removed
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with api_store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM audit_archives")
    # newer rows still cannot be deleted by hand
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with api_store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM audit_log")
    assert len(list_audit(api_store)) == 2
