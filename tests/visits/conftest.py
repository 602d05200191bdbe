"""Fixtures of the visits store, API and CLI tests: the example stored on SQLite and on PostGIS.

``vstore`` is a migrated store (a SQLite file, or a PostgreSQL schema of this
test session, truncated between tests) holding :mod:`visitdata`'s layers and
published plan. ``vclient`` adds a ``TestClient`` over it and ``keys`` (role or
``staff:<grid>`` → ``X-API-Key`` header). PostGIS: ``GRIDMAP_TEST_POSTGIS_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test``); those
tests skip cleanly when no server answers.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from visitdata import G1, G2, store_example

from gridmap.db import Store, upgrade
from gridmap.db.models import Base

POSTGIS_URL = os.environ.get(
    "GRIDMAP_TEST_POSTGIS_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test"
)


def _postgis_reason(url: str) -> str | None:
    u = sa.make_url(url)
    admin = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": u.database}
            ).scalar():
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
def visits_pg_schema() -> Iterator[str]:
    reason = _postgis_reason(POSTGIS_URL)
    if reason:
        pytest.skip(reason)
    name = f"v_{uuid.uuid4().hex[:12]}"
    eng = sa.create_engine(POSTGIS_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    upgrade(POSTGIS_URL, schema=name)
    yield name
    with eng.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    eng.dispose()


@pytest.fixture(scope="session")
def visits_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("visits-template") / "template.db"
    store = Store.from_url(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def vstore(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on each backend holding the example, its plan published (id 1)."""
    if request.param == "sqlite":
        path = tmp_path / "gridmap.db"
        shutil.copy(request.getfixturevalue("visits_sqlite_template"), path)
        store = Store.from_url(f"sqlite:///{path}")
    else:
        store = Store.from_url(POSTGIS_URL, schema=request.getfixturevalue("visits_pg_schema"))
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    assert store_example(store) == 1
    yield store
    store.close()


@pytest.fixture
def vclient(vstore: Store) -> Iterator[tuple[Store, Any, dict[str, dict[str, str]]]]:
    """``(store, client, keys)``: keys by role, ``staff:1``/``staff:2`` bound to G1/G2."""
    from fastapi.testclient import TestClient

    from gridmap.api import Settings, create_app
    from gridmap.db.keys import create_key

    tokens = {
        role: create_key(vstore, name=f"t-{role}", role=role, author="pytest")[1]
        for role in ("viewer", "dispatcher", "admin")
    }
    for k, g in (("staff:1", G1), ("staff:2", G2)):
        tokens[k] = create_key(vstore, name=k, role="staff", author="pytest", scope=f"grid:{g}")[1]
    tokens["community"] = create_key(
        vstore, name="社区", role="staff", author="pytest", scope="community:C1"
    )[1]
    tokens["department"] = create_key(
        vstore, name="dept", role="staff", author="pytest", scope="department:城管"
    )[1]
    keys = {k: {"X-API-Key": v} for k, v in tokens.items()}
    app = create_app(Settings(database_url="sqlite://"), store=vstore)
    with TestClient(app) as client:
        yield vstore, client, keys
