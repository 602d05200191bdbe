"""Fixtures of the visits store, API and CLI tests: the example stored on SQLite and on PostGIS.

``vstore`` is a migrated store (a SQLite file, or a PostgreSQL schema of this
test session, truncated between tests) holding :mod:`visitdata`'s layers and
published plan. ``vclient`` adds a ``TestClient`` over it and ``keys`` (role or
``staff:<grid>`` → ``X-API-Key`` header). PostGIS: ``GRIDMAP_TEST_POSTGIS_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test``); those
tests skip cleanly when no server answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from storefixtures import (
    backend_store,
    pg_schema,
    postgis_url_or_skip,
    sqlite_template,
)
from visitdata import G1, G2, store_example

from gridmap.db import Store


@pytest.fixture(scope="session")
def visits_pg_schema() -> Iterator[str]:
    with pg_schema(postgis_url_or_skip(), "v") as name:
        yield name


@pytest.fixture(scope="session")
def visits_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_template(tmp_path_factory.mktemp("visits-template"))


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def vstore(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on each backend holding the example, its plan published (id 1)."""
    store = backend_store(
        request, tmp_path, template="visits_sqlite_template", schema="visits_pg_schema"
    )
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
