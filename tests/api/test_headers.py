"""Security headers: a Content Security Policy on every HTML page, nosniff on everything."""

from __future__ import annotations

import pytest

from gridmap.api.headers import asset_sources, content_security_policy, tile_sources


@pytest.mark.parametrize("path", ["/login", "/docs", "/redoc", "/docs/oauth2-redirect"])
def test_every_html_page_carries_the_policy(city, path) -> None:
    _, client, _, _ = city
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp and "form-action 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_map_pages_may_load_tiles_but_no_foreign_script(city) -> None:
    _, client, headers, pid = city
    r = client.get(f"/maps/plans/{pid}", headers=headers("viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self' 'unsafe-inline'"  # served assets: this server only
    assert "https://tile.openstreetmap.org" in csp["img-src"]
    assert "https://*.is.autonavi.com" in csp["img-src"]  # ?tiles=amap works too


def test_json_answers_are_not_sniffed_and_carry_no_page_policy(city) -> None:
    _, client, headers, _ = city
    for path in ("/health", "/collections", "/openapi.json"):
        r = client.get(path, headers=headers("viewer"))
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert "content-security-policy" not in r.headers, path
    r = client.get("/collections")  # an error answer too
    assert r.status_code == 401 and r.headers["x-content-type-options"] == "nosniff"


def test_policy_sources() -> None:
    assert tile_sources("http://10.1.2.3:8080/{z}/{x}/{y}.png")[-1] == "http://10.1.2.3:8080"
    assert "https://*.tianditu.gov.cn" in tile_sources()
    assert asset_sources("served") == [] and asset_sources("inline") == []
    assert asset_sources("https://mirror.example/gridmap/") == ["https://mirror.example"]
    assert "https://cdn.jsdelivr.net" in asset_sources("cdn")
    csp = content_security_policy(assets=["https://mirror.example"])
    assert "script-src 'self' 'unsafe-inline' https://mirror.example" in csp
