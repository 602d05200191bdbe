"""Fixtures of the storage tests: a ``store`` on SQLite and on a real PostGIS.

PostGIS: ``GRIDMAP_TEST_POSTGIS_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test``); the database is
created when missing, each test run gets its own schema (migrated once), and
tables are truncated between tests. Tests skip cleanly when the server is down.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from storefixtures import pg_schema, postgis_url_or_skip, sqlite_template
from storefixtures import postgis_store as _postgis_store
from storefixtures import sqlite_store as _sqlite_store

from gridmap.db import Store


@pytest.fixture(scope="session")
def postgis_url() -> str:
    return postgis_url_or_skip()


@pytest.fixture
def fresh_schema(postgis_url: str) -> Iterator[str]:
    """An empty PostgreSQL schema, dropped after the test."""
    with pg_schema(postgis_url, "t", migrate=False) as name:
        yield name


@pytest.fixture(scope="session")
def _pg_session_schema(postgis_url: str) -> Iterator[str]:
    with pg_schema(postgis_url, "s") as name:
        yield name


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def sqlite_store(tmp_path: Path, _sqlite_template: Path) -> Iterator[Store]:
    store = _sqlite_store(tmp_path, _sqlite_template)
    yield store
    store.close()


@pytest.fixture
def postgis_store(postgis_url: str, _pg_session_schema: str) -> Iterator[Store]:
    store = _postgis_store(postgis_url, _pg_session_schema)
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


@pytest.fixture(scope="module")
def sample() -> tuple[Any, Any]:
    """The bundled sample city's layers and its plan (``seed=0``)."""
    from gridmap.datasets import get_path
    from gridmap.io import read_layers
    from gridmap.partition import partition
    from gridmap.validation import validate_layers

    layers, _ = validate_layers(read_layers(get_path("sample")))
    return layers, partition(layers, seed=0)


@pytest.fixture
def city(store: Store, sample: tuple[Any, Any]) -> Store:
    """``store`` with the sample city's layers and its plan, published (for the case tests)."""
    from gridmap.db import save_layers, save_plan

    layers, plan = sample
    save_layers(store, layers, author="setup")
    save_plan(store, plan, author="setup", status="published")
    return store
