"""Browser sign-in: server-side sessions, a cookie that only reads, login CSRF, sign-out."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from apidata import G1, G2, lonlat
from fastapi.testclient import TestClient

from gridmap.api import Settings, create_app
from gridmap.api.security import CSRF_COOKIE, SESSION_COOKIE
from gridmap.db import list_audit
from gridmap.db.keys import create_key, revoke_key, rotate_key
from gridmap.db.sessions import create_session, resolve_session

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form_token(client) -> str:
    """Open the sign-in form as a browser does: the token is in the page and in a cookie."""
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.cookies.get(CSRF_COOKIE) == token
    return token


def sign_in(client, key: str, next_path: str = "", csrf: str | None = None, **headers):
    token = form_token(client) if csrf is None else csrf
    body = f"key={quote(key, safe='')}&next={quote(next_path, safe='')}&csrf={quote(token)}"
    return client.post("/login", content=body, headers={**FORM, **headers}, follow_redirects=False)


def test_map_page_without_a_key_sends_a_browser_to_the_sign_in_form(published) -> None:
    _, client, _, pid = published
    r = client.get(f"/maps/plans/{pid}?kind=quality", headers=BROWSER, follow_redirects=False)
    assert r.status_code == 303
    assert (
        r.headers["location"] == f"/login?next={quote(f'/maps/plans/{pid}?kind=quality', safe='')}"
    )
    # a program (curl, a script) still gets the 401 problem it can read
    r = client.get(f"/maps/plans/{pid}", follow_redirects=False)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    page = client.get(f"/login?next=/maps/plans/{pid}")
    assert page.status_code == 200 and f'value="/maps/plans/{pid}"' in page.text
    assert 'name="key"' in page.text and "登录 Sign in" in page.text
    assert 'name="csrf"' in page.text
    csrf = page.headers["set-cookie"]
    assert csrf.startswith(f"{CSRF_COOKIE}=") and "HttpOnly" in csrf and "SameSite=strict" in csrf


def test_the_cookie_holds_a_session_id_that_only_reads(published) -> None:
    store, client, headers, pid = published
    token = create_key(store, name="desk 12345", role="dispatcher", author="pytest")[1]
    r = sign_in(client, token, f"/maps/plans/{pid}")
    assert r.status_code == 303 and r.headers["location"] == f"/maps/plans/{pid}"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Max-Age=28800" in cookie and "Secure" not in cookie
    sid = client.cookies.get(SESSION_COOKIE)
    assert sid and token not in cookie and len(sid) >= 40  # a random id, not the key
    # the browser now opens pages and reads data with the cookie alone
    page = client.get(f"/maps/plans/{pid}", headers=BROWSER)
    assert page.status_code == 200 and G1 in page.text
    lon, lat = lonlat(300, 300)
    r = client.get(f"/locate?lon={lon}&lat={lat}")
    assert r.status_code == 200 and r.json()["grid"]["grid_code"] == G2
    home = client.get("/login")
    assert "desk 12345" in home.text and "dispatcher" in home.text
    assert f'href="/maps/plans/{pid}"' in home.text and 'action="/maps/locate"' in home.text
    # …but nothing that changes data: an edit or a publish needs the key in a header
    r = client.post(f"/plans/{pid}/publish", headers={"If-Match": '"1"'})
    assert r.status_code == 401
    r = client.post(f"/plans/{pid}/edits", json={"op": "lock", "codes": [G1]})
    assert r.status_code == 401
    assert list_audit(store, entity="session")["action"].tolist() == ["sign_in"]


def test_a_stolen_cookie_replayed_after_sign_out_fails(published) -> None:
    store, client, _, pid = published
    token = create_key(store, name="desk", role="viewer", author="pytest")[1]
    assert sign_in(client, token).status_code == 303
    stolen = client.cookies.get(SESSION_COOKIE)
    assert client.get(f"/maps/plans/{pid}").status_code == 200
    assert client.get("/logout", follow_redirects=False).status_code == 405  # GET changes nothing
    assert client.get(f"/maps/plans/{pid}").status_code == 200
    r = client.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert f'{SESSION_COOKIE}=""' in r.headers["set-cookie"]
    assert client.get(f"/maps/plans/{pid}").status_code == 401
    # the attacker replays the cookie taken before the sign-out: the session is over
    thief = TestClient(client.app)
    thief.cookies.set(SESSION_COOKIE, stolen)
    r = thief.get(f"/maps/plans/{pid}")
    assert r.status_code == 401 and "sign-in has ended" in r.json()["detail"]
    assert thief.get("/login").status_code == 401
    assert list_audit(store, entity="session")["action"].tolist() == ["sign_in", "sign_out"]


def test_login_csrf_a_cross_site_form_fails(published) -> None:
    store, client, _, _ = published
    token = create_key(store, name="v", role="viewer", author="pytest")[1]
    # a page elsewhere posts the form: SameSite=Strict keeps the token cookie away
    attacker = TestClient(client.app)
    body = f"key={quote(token, safe='')}&next=&csrf=forged"
    r = attacker.post("/login", content=body, headers=FORM, follow_redirects=False)
    assert r.status_code == 403 and "another site" in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    # a token that does not match the browser's cookie
    form_token(client)
    assert sign_in(client, token, csrf="x" * 43).status_code == 403
    # the browser says the form came from another origin
    r = sign_in(client, token, Origin="https://evil.example")
    assert r.status_code == 403
    r = sign_in(client, token, **{"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # the same form from this site signs in
    assert sign_in(client, token, Origin="http://testserver").status_code == 303
    assert list_audit(store, entity="session")["action"].tolist() == ["sign_in"]


def test_wrong_or_revoked_key_and_foreign_next(published) -> None:
    store, client, headers, pid = published
    r = sign_in(client, "gm_nope_0000", f"/maps/plans/{pid}")
    assert r.status_code == 401 and "unknown or revoked (or expired)" in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert sign_in(client, "").status_code == 400
    r = client.post("/login", content=b"key=" + b"x" * 5000, headers=FORM)
    assert r.status_code == 413 and "too large" in r.text
    r = client.post("/login", content=b"key=\xff\xfe", headers=FORM)
    assert r.status_code == 400 and "could not be read" in r.text
    # only paths of this service: no open redirect
    rec, token = create_key(store, name="v", role="viewer", author="pytest")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = sign_in(client, token, target)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        client.post("/logout")
    # a key revoked since: its session ends, the sign-in page asks again and drops the cookie
    assert sign_in(client, token).status_code == 303
    assert client.delete(f"/keys/{rec.id}", headers=headers("admin")).status_code == 200
    page = client.get("/login")
    assert page.status_code == 401 and "no longer valid" in page.text
    r = client.get(f"/maps/plans/{pid}", headers=BROWSER, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_sessions_are_shared_by_two_app_instances_on_one_store(published) -> None:
    store, client, _, pid = published
    token = create_key(store, name="desk", role="viewer", author="pytest")[1]
    settings = Settings(database_url="sqlite://")
    with TestClient(create_app(settings, store=store)) as other:
        assert sign_in(client, token).status_code == 303  # signed in on instance A
        other.cookies.set(SESSION_COOKIE, client.cookies.get(SESSION_COOKIE))
        assert other.get(f"/maps/plans/{pid}").status_code == 200  # …works on B
        r = other.post("/logout", follow_redirects=False)  # signed out on B
        assert r.status_code == 303
        assert client.get(f"/maps/plans/{pid}").status_code == 401  # …ended on A at once


def test_secure_cookie_only_over_https_or_from_a_trusted_proxy(api_store) -> None:
    token = create_key(api_store, name="v", role="viewer", author="pytest")[1]
    cases = [
        ([], "10.0.0.1", False),  # no proxy configured: the header is anyone's claim
        (["10.0.0.0/8"], "192.0.2.7", False),  # not from the proxy
        (["10.0.0.0/8"], "10.0.0.1", True),  # from the proxy: HTTPS at the browser
    ]
    for trusted, peer, secure in cases:
        settings = Settings(database_url="sqlite://", trusted_proxies=trusted)
        with TestClient(create_app(settings, store=api_store), client=(peer, 5000)) as client:
            r = sign_in(client, token, **{"X-Forwarded-Proto": "https"})
            assert r.status_code == 303 and ("Secure" in r.headers["set-cookie"]) is secure
    with pytest.raises(ValueError, match="not an address or network"):
        Settings(database_url="sqlite://", trusted_proxies=["proxy.example"])
    settings = Settings(database_url="sqlite://")
    with TestClient(create_app(settings, store=api_store), base_url="https://testserver") as c:
        r = sign_in(c, token)
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_session_idle_absolute_and_key_changes(api_store) -> None:
    rec, token = create_key(api_store, name="desk", role="viewer", author="pytest")
    t0 = rec.created_at
    sid = create_session(api_store, rec, absolute_s=3600, now=t0)
    assert resolve_session(api_store, sid, idle_s=600, now=t0 + timedelta(seconds=599)).role == (
        "viewer"
    )
    # used at +599 s but last_seen is written at most once a minute: it was written
    assert resolve_session(api_store, sid, idle_s=600, now=t0 + timedelta(seconds=1100))
    assert resolve_session(api_store, sid, idle_s=600, now=t0 + timedelta(seconds=1800)) is None
    assert resolve_session(api_store, sid, idle_s=600, now=t0 + timedelta(seconds=1200)) is None
    # absolute end whatever the use
    sid = create_session(api_store, rec, absolute_s=100, now=t0)
    assert resolve_session(api_store, sid, idle_s=600, now=t0 + timedelta(seconds=99))
    assert resolve_session(api_store, sid, idle_s=600, now=t0 + timedelta(seconds=101)) is None
    # rotating or revoking the key ends its sessions
    sid = create_session(api_store, rec, absolute_s=3600)
    rotate_key(api_store, rec.id, author="pytest")
    assert resolve_session(api_store, sid, idle_s=600) is None
    sid = create_session(api_store, rec, absolute_s=3600)
    revoke_key(api_store, rec.id, author="pytest")
    assert resolve_session(api_store, sid, idle_s=600) is None
    assert resolve_session(api_store, "not-a-session", idle_s=600) is None


@pytest.mark.parametrize("path", ["/login", "/docs", "/redoc"])
def test_openapi_documents_the_pages_as_html(city, path) -> None:
    _, client, _, _ = city
    spec = client.get("/openapi.json").json()
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))  # no duplicate operation id
    login = spec["paths"]["/login"]
    assert set(login) == {"get", "post"} and set(spec["paths"]["/logout"]) == {"post"}
    for code in ("200", "401"):
        assert set(login["get"]["responses"][code]["content"]) == {"text/html"}
    for code in ("400", "401", "403", "413", "429"):
        assert set(login["post"]["responses"][code]["content"]) == {"text/html"}
    form = login["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert form["schema"]["required"] == ["key", "csrf"]
    r = client.get(path)
    assert "default-src 'self'" in r.headers["content-security-policy"]
