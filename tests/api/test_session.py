"""Browser sign-in: a map page opened by its address, a cookie that only reads."""

from __future__ import annotations

from urllib.parse import quote

from apidata import G1, G2, lonlat

from gridmap.api.security import SESSION_COOKIE
from gridmap.db.keys import create_key

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def sign_in(client, key: str, next_path: str = "") -> object:
    body = f"key={quote(key, safe='')}&next={quote(next_path, safe='')}"
    return client.post("/login", content=body, headers=FORM, follow_redirects=False)


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
    assert page.status_code == 200 and 'name="key"' in page.text and "登录 Sign in" in page.text


def test_sign_in_keeps_the_key_for_reading_pages_only(published) -> None:
    store, client, headers, pid = published
    token = create_key(store, name="desk 12345", role="dispatcher", author="pytest")[1]
    r = sign_in(client, token, f"/maps/plans/{pid}")
    assert r.status_code == 303 and r.headers["location"] == f"/maps/plans/{pid}"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Max-Age=28800" in cookie
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
    # sign out forgets it
    assert client.get("/logout", follow_redirects=False).status_code == 405  # GET changes nothing
    assert client.get(f"/maps/plans/{pid}").status_code == 200
    r = client.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and f'{SESSION_COOKIE}=""' in r.headers["set-cookie"]
    assert client.get(f"/maps/plans/{pid}").status_code == 401


def test_wrong_or_revoked_key_and_foreign_next(published) -> None:
    store, client, headers, pid = published
    r = sign_in(client, "gm_nope_0000", f"/maps/plans/{pid}")
    assert r.status_code == 401 and "unknown or revoked" in r.text
    assert "set-cookie" not in r.headers
    assert sign_in(client, "").status_code == 400
    r = client.post("/login", content=b"key=" + b"x" * 5000, headers=FORM)
    assert r.status_code == 413 and "too large" in r.text and "set-cookie" not in r.headers
    r = client.post("/login", content=b"key=\xff\xfe", headers=FORM)
    assert r.status_code == 400 and "could not be read" in r.text
    # only paths of this service: no open redirect
    rec, token = create_key(store, name="v", role="viewer", author="pytest")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = sign_in(client, token, target)
        assert r.status_code == 303 and r.headers["location"] == "/login"
    # a kept key revoked since: the sign-in page asks again and drops the cookie
    assert sign_in(client, token).status_code == 303
    assert client.delete(f"/keys/{rec.id}", headers=headers("admin")).status_code == 200
    page = client.get("/login")
    assert page.status_code == 401 and "no longer valid" in page.text
    r = client.get(f"/maps/plans/{pid}", headers=BROWSER, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
