"""The app factory, settings, health, problem+json everywhere and the CLI commands."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gridmap.api import Settings, create_app
from gridmap.api.errors import status_for
from gridmap.cli import app as cli
from gridmap.errors import (
    ConflictError,
    CoordinateError,
    CRSError,
    InfeasibleError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    ValidationError,
)


def test_settings_from_env(monkeypatch) -> None:
    monkeypatch.setenv("GRIDMAP_MAX_BATCH_POINTS", "123")
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("GRIDMAP_CORS_ORIGINS", '["http://localhost:3000"]')
    s = Settings()
    assert s.max_batch_points == 123 and s.database_url == "sqlite:///x.db"
    assert s.cors_origins == ["http://localhost:3000"]
    assert Settings().max_body_bytes == 20 * 1024 * 1024


def test_status_mapping() -> None:
    cases = {
        NotFoundError("x"): 404,
        ConflictError("x"): 409,
        CoordinateError("x"): 400,
        CRSError("x"): 400,
        InputError("x"): 400,
        ValidationError("x"): 422,
        InfeasibleError("x"): 422,
        PermissionDeniedError("x"): 403,
        StorageError("x"): 503,
    }
    assert {type(e).__name__: status_for(e)[0] for e in cases} == {
        type(e).__name__: s for e, s in cases.items()
    }


def test_app_over_its_own_store(tmp_path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'own.db'}"))
    with TestClient(app) as client:
        body = client.get("/health").json()
        assert body == {"status": "ok", "backend": "sqlite", "published_plans": [], "grids": 0}
        r = client.get("/nowhere")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
        r = client.delete("/conformance")
        assert r.status_code == 405 and r.json()["status"] == 405
        assert "/locate" in client.get("/openapi.json").json()["paths"]
    assert (tmp_path / "own.db").exists()


def test_oversize_body_on_any_route(city) -> None:
    _, client, headers, _ = city
    r = client.post("/keys", content=b"x" * (3 * 1024 * 1024), headers=headers("admin"))
    assert r.status_code == 413
    assert r.json()["limit"] == 2 * 1024 * 1024


def test_cli_keys_and_locate(tmp_path) -> None:
    import apidata

    from gridmap.db import Store, save_layers, save_plan

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with Store.from_url(url) as store:
        layers = apidata.make_layers()
        save_layers(store, layers, author="t")
        save_plan(store, apidata.make_plan(layers), author="t", status="published")
    runner = CliRunner()
    res = runner.invoke(
        cli, ["keys", "create", "--role", "dispatcher", "--name", "desk", "--db", url]
    )
    assert res.exit_code == 0, res.output
    token = res.stdout.strip().splitlines()[-1]
    assert token.startswith("gm_")
    res = runner.invoke(cli, ["keys", "list", "--db", url])
    assert "desk" in res.stdout and token not in res.stdout
    res = runner.invoke(cli, ["keys", "create", "--role", "root", "--db", url])
    assert res.exit_code == 1 and "unknown role" in res.output
    lon, lat = apidata.lonlat(200, 200)
    res = runner.invoke(cli, ["locate", repr(lon), repr(lat), "--db", url])
    assert res.exit_code == 0, res.output
    assert apidata.G1 in res.stdout and "on_boundary" in res.stdout
    pts = tmp_path / "pts.csv"
    pts.write_text(f"id,lon,lat\na,{lon!r},{lat!r}\nb,0,0\n")
    out = tmp_path / "out.csv"
    res = runner.invoke(cli, ["locate", "-i", str(pts), "-o", str(out), "--db", url])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert apidata.G1 in text and "outside" in text


def test_openapi_references_resolve() -> None:
    """Every ``$ref`` of /openapi.json points at a schema (e.g. the JSON batch body)."""
    app = create_app(Settings(database_url="sqlite://"))
    with TestClient(app) as client:
        doc = client.get("/openapi.json").json()
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    schemas = doc["components"]["schemas"]
    assert "#/components/schemas/BatchRequest" in refs
    missing = {r for r in refs if r.removeprefix("#/components/schemas/") not in schemas}
    assert missing == set()
    assert schemas["BatchRequest"]["properties"]["points"]["items"] == {
        "$ref": "#/components/schemas/BatchPoint"
    }


def test_serve_demo_prints_the_key_on_one_line(tmp_path) -> None:
    """On a narrow terminal the demo admin key must stay whole (copy-paste)."""
    import os
    import subprocess
    import sys

    import apidata

    from gridmap.db import Store, save_layers, save_plan

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with Store.from_url(url) as store:
        layers = apidata.make_layers()
        save_layers(store, layers, author="t")
        save_plan(store, apidata.make_plan(layers), author="t", status="published")
    # the real command, with uvicorn.run replaced by a no-op: only the start-up output matters
    script = (
        "import sys, uvicorn; uvicorn.run = lambda *a, **k: None; "
        "from gridmap.cli import main; sys.argv = ['gridmap', 'serve', '--demo', '--db', "
        f"{url!r}]; main()"
    )
    env = {**os.environ, "COLUMNS": "40", "TERM": "dumb"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if "demo admin key" in x)
    token = line.split(": ", 1)[1].strip()
    assert token.startswith("gm_") and len(token) > 40
    from gridmap.db.keys import verify_key

    with Store.from_url(url) as store:
        assert verify_key(store, token).role == "admin"


def test_oversize_streamed_body_is_413(city) -> None:
    """A chunked body (no Content-Length) is counted as it arrives."""
    _, client, headers, _ = city

    def chunks():
        for _ in range(5):
            yield b"x" * (1024 * 1024)

    r = client.post(
        "/locate/batch",
        content=chunks(),
        headers={**headers("viewer"), "Content-Type": "text/csv"},
    )
    assert r.status_code == 413, r.text
    assert "larger than the limit of 2097152 bytes" in r.json()["detail"]


def test_hot_routes_serve_only_a_bodiless_get_of_their_path() -> None:
    import asyncio

    from gridmap.api.app import HotRoutesMiddleware

    served: list[str] = []

    def app_named(name: str):
        async def app(scope, receive, send) -> None:
            served.append(name)

        return app

    hot = HotRoutesMiddleware(app_named("stack"), routes={"/locate": app_named("hot")})

    def call(method: str = "GET", path: str = "/locate", headers=(), **extra) -> str:
        scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
        asyncio.run(hot({**scope, **extra}, None, None))
        return served.pop()

    assert call() == "hot"
    assert call(headers=[(b"host", b"x"), (b"x-api-key", b"k")]) == "hot"
    assert call(method="HEAD") == "stack"
    assert call(method="POST") == "stack"
    assert call(path="/locate/") == "stack"
    assert call(path="/locate/batch") == "stack"
    assert call(headers=[(b"content-length", b"0")]) == "stack"
    assert call(headers=[(b"transfer-encoding", b"chunked")]) == "stack"
    assert call(root_path="/gridmap", path="/gridmap/locate") == "stack"
    assert call(type="websocket") == "stack"
