"""``gridmap keys rotate|list`` and ``gridmap audit`` through the real entry point."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from clirun import gridmap

from gridmap.db import Store
from gridmap.db.audit import write_audit
from gridmap.db.keys import verify_key
from gridmap.db.models import utcnow


@pytest.mark.slow  # ~17 runs of the real entry point
def test_keys_expiry_rotation_and_the_audit_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    with Store.from_url(url) as store, store.session() as s:
        # rows are archived by id: ids follow time (the archive takes the oldest run of rows)
        write_audit(
            s,
            actor="desk (key 9)",
            action="read_residents",
            entity="grid",
            entity_id="G1",
            grid_code="G1",
            households=["H0042"],
            at=utcnow() - timedelta(days=400),
        )
    r = gridmap(
        "keys", "create", "--role", "auditor", "--name", "DPO", "--expires", "90d", "--db", url
    )
    assert r.returncode == 0, r.stderr
    old = r.stdout.strip()
    assert "expires" in r.stderr
    r = gridmap("keys", "create", "--role", "viewer", "--expires", "2001-01-01", "--db", url)
    assert r.returncode == 1 and "in the past" in r.stderr
    r = gridmap("keys", "rotate", "1", "--db", url)
    assert r.returncode == 0 and "new secret" in r.stderr
    new = r.stdout.strip()
    with Store.from_url(url) as store:
        assert verify_key(store, old) is None and verify_key(store, new).role == "auditor"
    r = gridmap("keys", "list", "--json", "--db", url)
    listed = json.loads(r.stdout)
    assert listed[0]["last_used_at"] is not None and listed[0]["expires_at"] is not None
    assert gridmap("keys", "rotate", "7", "--db", url).returncode == 1
    r = gridmap("audit", "--household", "H0042", "--json", "--db", url)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["data"]
    assert [(x["actor"], x["grid_code"]) for x in rows] == [("desk (key 9)", "G1")]
    out = tmp_path / "keys.csv"
    r = gridmap("audit", "--kind", "keys", "--csv", out, "--db", url)
    assert r.returncode == 0 and out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert len(out.read_text(encoding="utf-8-sig").splitlines()) == 3  # header, create, rotate
    assert gridmap("audit", "--since", "soon", "--db", url).returncode == 1
    r = gridmap("audit", "archive", "-o", tmp_path / "a.jsonl", "--db", url)
    assert r.returncode == 1 and "--older-than-days" in r.stderr
    r = gridmap(
        "audit", "archive", "-o", tmp_path / "a.jsonl", "--older-than-days", "30", "--db", url
    )
    assert r.returncode == 1 and "180" in r.stderr
    r = gridmap(
        "audit", "archive", "-o", tmp_path / "a.jsonl", "--older-than-days", "365", "--db", url
    )
    assert r.returncode == 0 and "1 audit rows" in r.stdout, r.stderr
    assert "H0042" in (tmp_path / "a.jsonl").read_text(encoding="utf-8")
    r = gridmap("audit", "--household", "H0042", "--json", "--db", url)
    assert json.loads(r.stdout)["total"] == 0


@pytest.mark.slow  # the real entry point, 5 runs
def test_keys_unlock_lifts_a_lockout_the_app_set(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from gridmap.api import Settings, create_app
    from gridmap.db.keys import create_key

    url = f"sqlite:///{tmp_path / 'g.db'}"
    store = Store.from_url(url)
    rec, token = create_key(store, name="desk", role="viewer", author="pytest")
    app = create_app(Settings(database_url="sqlite://", auth_lockout_seconds=300), store=store)

    def get(address: str, key: str) -> int:
        with TestClient(app, client=(address, 5000)) as client:
            return client.get("/collections", headers={"X-API-Key": key}).status_code

    # wrong secrets for the key's prefix, from eleven addresses (no address limit trips)
    codes = [get(f"192.0.2.{i + 1}", f"gm_{rec.prefix}_guess{i}") for i in range(11)]
    assert codes == [401] * 10 + [429]
    assert get("198.51.100.1", token) == 429  # the right key is locked out too
    r = gridmap("keys", "unlock", "--prefix", rec.prefix, "--db", url)
    assert r.returncode == 0, r.stderr
    assert f"unlocked key prefix {rec.prefix} (11 failures counted, was locked for" in r.stdout
    assert get("198.51.100.1", token) == 200
    # an address locked out by wrong keys, lifted by --client; the prefix is not counted again
    codes = [get("203.0.113.9", f"gm_{i:08x}_wrong") for i in range(11)]
    assert codes == [401] * 10 + [429] and get("203.0.113.9", token) == 429
    r = gridmap("keys", "unlock", "--client", "203.0.113.9", "--db", url)
    assert r.returncode == 0 and "unlocked address 203.0.113.9" in r.stdout, r.stderr
    assert get("203.0.113.9", token) == 200
    r = gridmap("keys", "unlock", "--prefix", rec.prefix, "--db", url)
    assert r.returncode == 0 and "nothing to unlock" in r.stdout
    r = gridmap("keys", "unlock", "--prefix", rec.prefix, "--all", "--db", url)
    assert r.returncode == 1 and "exactly one of" in r.stderr
    r = gridmap("audit", "--kind", "keys", "--json", "--db", url)
    rows = [x for x in json.loads(r.stdout)["data"] if x["action"] == "unlock"]
    assert sorted((x["actor"], x["entity_id"]) for x in rows) == [
        ("gridmap keys unlock", "address 203.0.113.9"),
        ("gridmap keys unlock", f"prefix {rec.prefix}"),
    ]
    store.close()
