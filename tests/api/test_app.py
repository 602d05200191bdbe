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
