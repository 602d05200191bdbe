"""API keys: storage (hashed), migration 0002, the /keys routes and the role matrix."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from apidata import lonlat

from gridmap.db import Store, downgrade, list_audit, upgrade
from gridmap.db.keys import create_key, hash_token, list_keys, revoke_key, role_rank, verify_key
from gridmap.db.session import create_store_engine, current_revision
from gridmap.errors import InputError, NotFoundError

ROLES = [None, "viewer", "dispatcher", "planner", "admin"]


def test_keys_are_stored_hashed(api_store: Store) -> None:
    rec, token = create_key(api_store, name="desk 3", role="dispatcher", author="ops")
    assert token.startswith(f"gm_{rec.prefix}_") and len(token) > 40
    with api_store.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM api_keys")).mappings().one()
    assert token not in {str(v) for v in row.values()}
    assert row["key_hash"] == hash_token(token)
    assert verify_key(api_store, token).name == "desk 3"
    assert verify_key(api_store, token + "x") is None
    assert verify_key(api_store, "not-a-key") is None
    assert verify_key(api_store, f"gm_{rec.prefix}_wrong") is None
    assert revoke_key(api_store, rec.id, author="ops").active is False
    assert verify_key(api_store, token) is None
    assert revoke_key(api_store, rec.id, author="ops").active is False  # idempotent
    audit = list_audit(api_store, entity="api_key")
    assert audit["action"].tolist() == ["create", "revoke"]
    assert token not in str(audit.to_dict("records"))


def test_key_guards(api_store: Store) -> None:
    with pytest.raises(InputError, match="unknown role 'root'; use one of viewer"):
        create_key(api_store, name="x", role="root", author="ops")
    with pytest.raises(InputError, match="needs a name"):
        create_key(api_store, name=" ", role="viewer", author="ops")
    with pytest.raises(NotFoundError, match="no API key with id 42"):
        revoke_key(api_store, 42, author="ops")
    assert [role_rank(r) for r in ("viewer", "dispatcher", "planner", "admin")] == [0, 1, 2, 3]


def test_migration_0002_up_and_down(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, revision="0001")
    engine = create_store_engine(url)
    assert "api_keys" not in sa.inspect(engine).get_table_names()
    upgrade(url, revision="0002")
    assert current_revision(engine) == "0002"
    assert "api_keys" in sa.inspect(engine).get_table_names()
    downgrade(url, revision="0001")
    assert "api_keys" not in sa.inspect(engine).get_table_names()
    assert current_revision(engine) == "0001"
    engine.dispose()


def test_keys_routes(store_and_client) -> None:
    store, client, headers = store_and_client
    r = client.post(
        "/keys", json={"name": "new desk", "role": "dispatcher"}, headers=headers("admin")
    )
    assert r.status_code == 201, r.text
    created = r.json()
    token = created["token"]
    assert created["role"] == "dispatcher" and created["active"] is True
    assert created["created_by"].startswith("test-admin")
    lon, lat = lonlat(50, 50)
    listed = client.get("/keys", headers=headers("admin")).json()
    assert listed["count"] == 5
    assert all("token" not in k and "key_hash" not in k for k in listed["data"])
    r = client.delete(f"/keys/{created['id']}", headers=headers("admin"))
    assert r.status_code == 200 and r.json()["active"] is False
    r = client.get("/collections", headers={"X-API-Key": token})
    assert r.status_code == 401  # revoked at once (the key cache is cleared)
    assert client.get("/keys?include_revoked=false", headers=headers("admin")).json()["count"] == 4
    r = client.delete("/keys/999", headers=headers("admin"))
    assert r.status_code == 404
    r = client.post("/keys", json={"name": "x", "role": "root"}, headers=headers("admin"))
    assert r.status_code == 422
    assert len(list_keys(store)) == 5


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(city, role) -> None:
    """Who may do what: open, viewer, dispatcher (contacts, residents), admin (keys)."""
    _, client, headers, _ = city
    h = headers(role)
    lon, lat = lonlat(50, 50)
    rank = -1 if role is None else ROLES.index(role) - 1
    expect = {
        ("GET", "/", None): 200,
        ("GET", "/conformance", None): 200,
        ("GET", "/health", None): 200,
        ("GET", "/docs", None): 200,
        ("GET", "/collections", None): 200 if rank >= 0 else 401,
        ("GET", "/collections/grids/items", None): 200 if rank >= 0 else 401,
        ("GET", "/locate", None): 200 if rank >= 0 else 401,
        ("GET", "/locate", 50.0): (401 if rank < 0 else 403 if rank < 1 else 200),
        ("GET", "/keys", None): 401 if rank < 0 else 403 if rank < 3 else 200,
        ("POST", "/locate/batch", None): 200 if rank >= 0 else 401,
    }
    for (method, path, radius), status in expect.items():
        params = {"lon": lon, "lat": lat} if path == "/locate" else {}
        if radius is not None:
            params["radius"] = radius
        if method == "GET":
            r = client.get(path, params=params, headers=h)
        else:
            r = client.post(path, json={"points": [{"lon": lon, "lat": lat}]}, headers=h)
        assert r.status_code == status, (method, path, radius, r.text[:200])
        if status == 401:
            assert "www-authenticate" in r.headers
    if rank >= 0:
        body = client.get("/locate", params={"lon": lon, "lat": lat}, headers=h).json()
        assert (body["staff"] is not None) == (rank >= 1)


def test_expiry_last_used_and_rotation(api_store) -> None:
    from datetime import timedelta

    from gridmap.db.keys import get_key, parse_expiry, rotate_key, touch_key
    from gridmap.db.models import utcnow
    from gridmap.errors import ConflictError

    rec, token = create_key(api_store, name="temp", role="viewer", author="ops", expires_at="30d")
    assert 29.9 < (rec.expires_at - utcnow()).total_seconds() / 86400 <= 30
    assert rec.last_used_at is None
    t0 = utcnow()
    assert verify_key(api_store, token).id == rec.id
    used = get_key(api_store, rec.id).last_used_at
    assert used is not None and used >= t0 - timedelta(seconds=1)
    assert touch_key(api_store, rec.id, now=used + timedelta(seconds=30)) is False  # < 1 min
    assert touch_key(api_store, rec.id, now=used + timedelta(seconds=61)) is True
    with pytest.raises(InputError, match="in the past"):
        create_key(api_store, name="x", role="viewer", author="ops", expires_at="2001-01-01")
    with pytest.raises(InputError, match="not a date"):
        parse_expiry("next week")
    with pytest.raises(InputError, match="auditor key cannot be scoped"):
        create_key(api_store, name="x", role="auditor", author="ops", scope="grid:1")
    # an expired key stops working (the expiry is checked at every verification)
    with api_store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE api_keys SET expires_at = :t WHERE id = :i"),
            {"t": utcnow() - timedelta(seconds=1), "i": rec.id},
        )
    assert verify_key(api_store, token) is None and get_key(api_store, rec.id).active is False
    # rotation: same id, role and scope; a new secret; the old one ends
    staff, old = create_key(
        api_store, name="网格员", role="staff", author="ops", scope="grid:320104001001001"
    )
    new_rec, new = rotate_key(api_store, staff.id, author="ops")
    assert (new_rec.id, new_rec.role, new_rec.scope) == (staff.id, "staff", staff.scope)
    assert new_rec.prefix != staff.prefix and new_rec.rotated_at is not None
    assert verify_key(api_store, old) is None and verify_key(api_store, new).id == staff.id
    revoke_key(api_store, staff.id, author="ops")
    with pytest.raises(ConflictError, match="revoked; a revoked key is not rotated"):
        rotate_key(api_store, staff.id, author="ops")
    actions = list_audit(api_store, entity="api_key")["action"].tolist()
    assert actions == ["create", "create", "rotate", "revoke"]


def test_keys_rotate_route_and_expiry(store_and_client) -> None:
    store, client, headers = store_and_client
    r = client.post(
        "/keys",
        json={"name": "DPO", "role": "auditor", "expires_at": "2099-06-30"},
        headers=headers("admin"),
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["role"] == "auditor" and made["expires_at"].startswith("2099-06-30T15:59:59")
    r = client.get("/keys", headers=headers("admin")).json()["data"]
    assert {"expires_at", "last_used_at", "rotated_at"} <= set(r[0])
    used = {k["name"]: k["last_used_at"] for k in r}
    assert used["test-admin"] is not None and used["test-viewer"] is None
    r = client.post(f"/keys/{made['id']}/rotate", headers=headers("admin"))
    assert r.status_code == 200 and r.json()["token"] != made["token"]
    assert r.json()["id"] == made["id"] and r.json()["role"] == "auditor"
    assert client.get("/audit", headers={"X-API-Key": made["token"]}).status_code == 401
    assert client.get("/audit", headers={"X-API-Key": r.json()["token"]}).status_code == 200
    assert client.post("/keys/999/rotate", headers=headers("admin")).status_code == 404
    assert client.post(f"/keys/{made['id']}/rotate", headers=headers("viewer")).status_code == 403
    client.delete(f"/keys/{made['id']}", headers=headers("admin"))
    assert client.post(f"/keys/{made['id']}/rotate", headers=headers("admin")).status_code == 409
    r = client.post(
        "/keys",
        json={"name": "x", "role": "viewer", "expires_at": "soon"},
        headers=headers("admin"),
    )
    assert r.status_code == 400 and "90d" in r.json()["detail"]


def test_migration_0005_up_and_down_keeps_keys(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, revision="0004")
    engine = create_store_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_keys (prefix, key_hash, name, role, created_by, created_at) "
                "VALUES ('abcd', 'h', 'old', 'viewer', 'ops', '2026-01-01 00:00:00')"
            )
        )
    upgrade(url, revision="0005")
    cols = {c["name"] for c in sa.inspect(engine).get_columns("api_keys")}
    assert {"expires_at", "last_used_at", "rotated_at"} <= cols
    assert {"sessions", "rate_limits", "audit_archives"} <= set(
        sa.inspect(engine).get_table_names()
    )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_keys (prefix, key_hash, name, role, created_by, created_at) "
                "VALUES ('ef01', 'h', 'dpo', 'auditor', 'ops', '2026-01-01 00:00:00')"
            )
        )
    downgrade(url, revision="0004")
    with engine.connect() as conn:
        names = conn.execute(sa.text("SELECT name FROM api_keys ORDER BY id")).scalars().all()
    assert names == ["old"] and "sessions" not in sa.inspect(engine).get_table_names()
    assert current_revision(engine) == "0004"
    engine.dispose()
