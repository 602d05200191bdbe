"""Fixtures of the API tests: the app over a store on SQLite (tmp file) and on PostGIS.

``store_and_client`` yields ``(store, client, headers)``: an empty migrated store,
a ``TestClient`` running the app lifespan over it, and ``headers(role)`` giving
the ``X-API-Key`` header of a key with that role (``headers(None)``: no key).

PostGIS: ``GRIDMAP_TEST_POSTGIS_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test``); one schema per test
session, tables truncated between tests; tests skip cleanly when the server is down.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import gridmap.db.keys  # noqa: F401  (registers the api_keys table on Base.metadata)
from gridmap.api import Settings, create_app
from gridmap.db import Store, upgrade
from gridmap.db.keys import ROLES, create_key
from gridmap.db.models import Base

POSTGIS_URL = os.environ.get(
    "GRIDMAP_TEST_POSTGIS_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test"
)


def _ensure_postgis_db(url: str) -> str | None:
    u = sa.make_url(url)
    admin = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": u.database}
            ).scalar()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{u.database}"')
    except sa.exc.OperationalError as exc:
        return f"PostGIS server unreachable at {u.render_as_string()}: {exc.orig}"
    except sa.exc.ProgrammingError:
        pass  # created concurrently by another test session
    finally:
        admin.dispose()
    eng = sa.create_engine(u, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    except sa.exc.DBAPIError as exc:
        return f"cannot enable PostGIS in {u.database}: {exc.orig}"
    finally:
        eng.dispose()
    return None


@pytest.fixture(scope="session")
def api_postgis_url() -> str:
    reason = _ensure_postgis_db(POSTGIS_URL)
    if reason:
        pytest.skip(reason)
    return POSTGIS_URL


@pytest.fixture(scope="session")
def api_pg_schema(api_postgis_url: str) -> Iterator[str]:
    name = f"api_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(api_postgis_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    upgrade(api_postgis_url, schema=name)
    yield name
    with eng.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    eng.dispose()


@pytest.fixture(scope="session")
def api_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api-template") / "template.db"
    store = Store.from_url(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


def _sqlite_store(tmp_path: Path, template: Path) -> Store:
    import shutil

    path = tmp_path / "gridmap.db"
    shutil.copy(template, path)
    return Store.from_url(f"sqlite:///{path}")


def _postgis_store(url: str, schema: str) -> Store:
    store = Store.from_url(url, schema=schema)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    return store


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def api_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on each backend."""
    if request.param == "sqlite":
        store = _sqlite_store(tmp_path, request.getfixturevalue("api_sqlite_template"))
    else:
        store = _postgis_store(
            request.getfixturevalue("api_postgis_url"), request.getfixturevalue("api_pg_schema")
        )
    yield store
    store.close()


HeadersFn = Callable[[str | None], dict[str, str]]


def make_keys(store: Store) -> dict[str, str]:
    """One key per role; returns ``role -> token``."""
    return {
        role: create_key(store, name=f"test-{role}", role=role, author="pytest")[1]
        for role in ROLES
    }


@pytest.fixture
def api_settings() -> Settings:
    return Settings(database_url="sqlite://", max_body_bytes=2 * 1024 * 1024)


@pytest.fixture
def store_and_client(
    api_store: Store, api_settings: Settings
) -> Iterator[tuple[Store, TestClient, HeadersFn]]:
    """``(store, client, headers)`` with one API key per role."""
    tokens = make_keys(api_store)

    def headers(role: str | None) -> dict[str, str]:
        return {} if role is None else {"X-API-Key": tokens[role]}

    app = create_app(api_settings, store=api_store)
    with TestClient(app) as client:
        yield api_store, client, headers


@pytest.fixture
def published(
    store_and_client: tuple[Store, TestClient, HeadersFn],
) -> tuple[Store, TestClient, HeadersFn, int]:
    """The hand-made city (:mod:`apidata`) stored and its plan published; adds the plan id."""
    import apidata

    from gridmap.db import save_layers, save_plan

    store, client, headers = store_and_client
    layers = apidata.make_layers()
    save_layers(store, layers, author="setup")
    rec = save_plan(store, apidata.make_plan(layers), author="setup", status="published")
    client.app.state.locator.refresh()  # type: ignore[attr-defined]
    return store, client, headers, rec.id


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)]
)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, TestClient, HeadersFn, int]]:
    """Like ``published`` but built once per module and backend (read-mostly tests).

    PostGIS gets its own schema, so function-scoped fixtures cannot truncate it.
    """
    import apidata

    from gridmap.db import save_layers, save_plan

    schema = None
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("city") / "city.db"
        store = Store.from_url(f"sqlite:///{path}")
    else:
        url = request.getfixturevalue("api_postgis_url")
        schema = f"city_{uuid.uuid4().hex[:12]}"
        eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        eng.dispose()
        upgrade(url, schema=schema)
        store = Store.from_url(url, schema=schema)
    layers = apidata.make_layers()
    save_layers(store, layers, author="setup")
    rec = save_plan(store, apidata.make_plan(layers), author="setup", status="published")
    tokens = make_keys(store)

    def headers(role: str | None) -> dict[str, str]:
        return {} if role is None else {"X-API-Key": tokens[role]}

    settings = Settings(database_url="sqlite://", max_body_bytes=2 * 1024 * 1024)
    with TestClient(create_app(settings, store=store)) as client:
        yield store, client, headers, rec.id
    store.close()
    if schema is not None:
        eng = sa.create_engine(
            request.getfixturevalue("api_postgis_url"), isolation_level="AUTOCOMMIT"
        )
        with eng.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        eng.dispose()
