"""Rate limits against the running app: wrong keys, lockouts, batch calls; shared by processes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gridmap.api import Settings, create_app
from gridmap.db.keys import create_key
from gridmap.db.ratelimit import Limit, blocked, clear, hit

WRONG = "gm_deadbeef_not-the-secret"


def _app(store, **kw):
    return create_app(Settings(database_url="sqlite://", **kw), store=store)


def test_the_11th_wrong_key_in_a_minute_gets_429_then_a_lockout(api_store) -> None:
    rec, token = create_key(api_store, name="desk", role="viewer", author="pytest")
    with TestClient(_app(api_store, auth_lockout_seconds=300)) as client:
        codes = [
            client.get("/collections", headers={"X-API-Key": f"gm_{i:08x}_wrong"}).status_code
            for i in range(10)
        ]
        assert codes == [401] * 10
        r = client.get("/collections", headers={"X-API-Key": "gm_0000000b_wrong"})
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert 295 <= int(r.headers["retry-after"]) <= 300
        assert r.json()["retry_after"] == int(r.headers["retry-after"])
        assert "wait" in r.json()["detail"]
        # locked out: even the right key, not yet verified here, is refused from this address
        assert client.get("/collections", headers={"X-API-Key": token}).status_code == 429
        assert client.get("/health").status_code == 200  # open routes stay open
    # another address is not locked; the lockout lives in the store, not in the process
    with TestClient(_app(api_store), client=("192.0.2.8", 5000)) as other:
        assert other.get("/collections", headers={"X-API-Key": token}).status_code == 200
    with TestClient(_app(api_store)) as again:  # a second process, same address
        assert again.get("/collections", headers={"X-API-Key": token}).status_code == 429


def test_wrong_secrets_for_one_key_prefix_lock_that_prefix(api_store) -> None:
    rec, token = create_key(api_store, name="desk", role="viewer", author="pytest")
    guess = f"gm_{rec.prefix}_guess"
    codes = []
    for i in range(11):  # from eleven addresses: the per-address limit never trips
        with TestClient(_app(api_store), client=(f"192.0.2.{i + 1}", 5000)) as c:
            codes.append(c.get("/collections", headers={"X-API-Key": guess}).status_code)
    assert codes == [401] * 10 + [429]
    with TestClient(_app(api_store), client=("198.51.100.1", 5000)) as c:
        assert c.get("/collections", headers={"X-API-Key": token}).status_code == 429
    clear(api_store, f"auth-fail:prefix:{rec.prefix}")  # an admin lifts it
    with TestClient(_app(api_store), client=("198.51.100.1", 5000)) as c:
        assert c.get("/collections", headers={"X-API-Key": token}).status_code == 200


def test_wrong_keys_at_the_sign_in_form_count_too(api_store) -> None:
    from test_session import sign_in

    with TestClient(_app(api_store, auth_failures_per_min=3)) as client:
        codes = [sign_in(client, f"gm_{i:08x}_wrong").status_code for i in range(4)]
        assert codes == [401, 401, 401, 429]
        r = sign_in(client, WRONG)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "text/html" in r.headers["content-type"] and "wait" in r.text


def test_rate_limit_off_never_answers_429(api_store) -> None:
    with TestClient(_app(api_store, rate_limit=False)) as client:
        codes = {
            client.get("/collections", headers={"X-API-Key": WRONG}).status_code for _ in range(15)
        }
        assert codes == {401}


def test_batch_calls_per_key(api_store) -> None:
    _, token = create_key(api_store, name="desk", role="dispatcher", author="pytest")
    _, other = create_key(api_store, name="desk 2", role="dispatcher", author="pytest")
    body = {"points": [{"lon": 118.78, "lat": 32.05}]}
    with TestClient(_app(api_store, batch_calls_per_min=3)) as client:
        codes = [
            client.post("/locate/batch", json=body, headers={"X-API-Key": token}).status_code
            for _ in range(4)
        ]
        assert codes[:3] != [429] * 3 and codes[3] == 429
        r = client.post("/cases/import", content=b"x", headers={"X-API-Key": token})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert "GRIDMAP_BATCH_CALLS_PER_MIN" in r.json()["detail"]
        # another key has its own quota; single-point /locate is not limited
        r = client.post("/locate/batch", json=body, headers={"X-API-Key": other})
        assert r.status_code != 429
        r = client.get("/locate?lon=118.78&lat=32.05", headers={"X-API-Key": token})
        assert r.status_code != 429


def test_counters_are_atomic_and_expire_with_their_window(api_store) -> None:
    from datetime import timedelta

    from gridmap.db.models import utcnow

    t0 = utcnow()
    rule = Limit(per_window=2, window_s=60)
    waits = [hit(api_store, "b", rule, now=t0 + timedelta(seconds=s)) for s in (0, 1, 2)]
    assert waits[:2] == [0.0, 0.0] and 57 <= waits[2] <= 58  # until the window ends
    assert hit(api_store, "b", rule, now=t0 + timedelta(seconds=61)) == 0.0  # a new window
    lock = Limit(per_window=1, window_s=60, lockout_s=120)
    assert [hit(api_store, "c", lock, now=t0) for _ in range(2)] == [0.0, 120.0]
    assert blocked(api_store, "c", now=t0 + timedelta(seconds=100)) == 20.0
    assert blocked(api_store, "c", now=t0 + timedelta(seconds=121)) == 0.0
