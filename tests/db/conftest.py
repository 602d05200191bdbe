"""Fixtures of the storage tests: a ``store`` on SQLite and on a real PostGIS.

PostGIS: ``GRIDMAP_TEST_POSTGIS_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test``); the database is
created when missing, each test run gets its own schema (migrated once), and
tables are truncated between tests. Tests skip cleanly when the server is down.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gridmap.db import Store, upgrade
from gridmap.db.models import Base

POSTGIS_URL = os.environ.get(
    "GRIDMAP_TEST_POSTGIS_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test"
)


def _ensure_postgis_db(url: str) -> str | None:
    """Create the test database (with PostGIS) if missing; return a skip reason or None."""
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
def postgis_url() -> str:
    reason = _ensure_postgis_db(POSTGIS_URL)
    if reason:
        pytest.skip(reason)
    return POSTGIS_URL


@pytest.fixture
def fresh_schema(postgis_url: str) -> Iterator[str]:
    """An empty PostgreSQL schema, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(postgis_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    yield name
    with eng.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    eng.dispose()


@pytest.fixture(scope="session")
def _pg_session_schema(postgis_url: str) -> Iterator[str]:
    name = f"s_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(postgis_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    upgrade(postgis_url, schema=name)
    yield name
    with eng.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    eng.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    store = Store.from_url(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


def _truncate_all(store: Store) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture
def sqlite_store(tmp_path: Path, _sqlite_template: Path) -> Iterator[Store]:
    path = tmp_path / "gridmap.db"
    shutil.copy(_sqlite_template, path)
    store = Store.from_url(f"sqlite:///{path}")
    yield store
    store.close()


@pytest.fixture
def postgis_store(postgis_url: str, _pg_session_schema: str) -> Iterator[Store]:
    store = Store.from_url(postgis_url, schema=_pg_session_schema)
    _truncate_all(store)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request: pytest.FixtureRequest) -> Store:
    """A migrated, empty store on each backend."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def store_url(request: pytest.FixtureRequest, store: Store) -> tuple[str, str | None]:
    """URL (and PostgreSQL schema) of ``store``, to open a second connection to it."""
    url = store.engine.url.render_as_string(hide_password=False)
    if store.backend == "postgresql":
        return url, request.getfixturevalue("_pg_session_schema")
    return url, None
