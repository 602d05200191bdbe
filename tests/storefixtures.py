"""Migrated stores for the tests on both backends: a SQLite file and a PostGIS schema.

Shared by the ``conftest.py`` of ``tests/db``, ``tests/api`` and ``tests/visits``.
PostGIS: ``GRIDMAP_TEST_POSTGIS_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test``); the database is
created (with PostGIS) when missing, and :func:`postgis_url_or_skip` skips the
test cleanly when the server does not answer.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from gridmap.db import Store, upgrade
from gridmap.db.models import Base

POSTGIS_URL = os.environ.get(
    "GRIDMAP_TEST_POSTGIS_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test"
)


def ensure_postgis_db(url: str) -> str | None:
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


def postgis_url_or_skip(url: str = POSTGIS_URL) -> str:
    """``url`` once its database is ready; skips the calling test when it cannot be."""
    reason = ensure_postgis_db(url)
    if reason:
        pytest.skip(reason)
    return url


@contextmanager
def pg_schema(url: str, prefix: str, *, migrate: bool = True) -> Iterator[str]:
    """A new schema ``<prefix>_<random>`` (migrated unless ``migrate=False``), dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        if migrate:
            upgrade(url, schema=name)
        yield name
        with eng.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        eng.dispose()


def sqlite_template(directory: Path) -> Path:
    """A migrated SQLite file in ``directory``, checkpointed so that it can be copied."""
    path = directory / "template.db"
    store = Store.from_url(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


def sqlite_store(tmp_path: Path, template: Path) -> Store:
    """A store over a fresh copy of ``template`` in ``tmp_path``."""
    path = tmp_path / "gridmap.db"
    shutil.copy(template, path)
    return Store.from_url(f"sqlite:///{path}")


def truncate_all(store: Store) -> None:
    """Empty every table of ``Base.metadata`` in a PostgreSQL store, restarting the ids."""
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


def postgis_store(url: str, schema: str) -> Store:
    """A store over the migrated ``schema``, its tables emptied."""
    store = Store.from_url(url, schema=schema)
    truncate_all(store)
    return store


def backend_store(
    request: pytest.FixtureRequest, tmp_path: Path, *, template: str, schema: str
) -> Store:
    """A store on the backend ``request.param`` names (``"sqlite"`` or ``"postgis"``).

    ``template`` and ``schema`` name the session fixtures giving the SQLite template
    (:func:`sqlite_template`) and the migrated PostgreSQL schema (:func:`pg_schema`).
    """
    if request.param == "sqlite":
        return sqlite_store(tmp_path, request.getfixturevalue(template))
    return postgis_store(POSTGIS_URL, request.getfixturevalue(schema))
