"""Fixtures of the API tests: the app over a store on SQLite (tmp file) and on PostGIS.

``store_and_client`` yields ``(store, client, headers)``: an empty migrated store,
a ``TestClient`` running the app lifespan over it, and ``headers(role)`` giving
the ``X-API-Key`` header of a key with that role (``headers(None)``: no key).

PostGIS: ``GRIDMAP_TEST_POSTGIS_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test``); one schema per test
session, tables truncated between tests; tests skip cleanly when the server is down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from storefixtures import (
    backend_store,
    pg_schema,
    postgis_url_or_skip,
    sqlite_template,
)

import gridmap.db.keys  # noqa: F401  (registers the api_keys table on Base.metadata)
from gridmap.api import Settings, create_app
from gridmap.db import Store
from gridmap.db.keys import ROLES, create_key


@pytest.fixture(scope="session")
def api_postgis_url() -> str:
    return postgis_url_or_skip()


@pytest.fixture(scope="session")
def api_pg_schema(api_postgis_url: str) -> Iterator[str]:
    with pg_schema(api_postgis_url, "api") as name:
        yield name


@pytest.fixture(scope="session")
def api_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_template(tmp_path_factory.mktemp("api-template"))


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def api_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on each backend."""
    store = backend_store(request, tmp_path, template="api_sqlite_template", schema="api_pg_schema")
    yield store
    store.close()


HeadersFn = Callable[[str | None], dict[str, str]]


def make_keys(store: Store) -> dict[str, str]:
    """One key per role; returns ``role -> token``."""
    return {
        role: create_key(store, name=f"test-{role}", role=role, author="pytest")[1]
        for role in ROLES
    }


def _headers_fn(tokens: dict[str, str]) -> HeadersFn:
    """``headers(role)``: the ``X-API-Key`` header of that role's token (``None``: no key)."""

    def headers(role: str | None) -> dict[str, str]:
        return {} if role is None else {"X-API-Key": tokens[role]}

    return headers


@pytest.fixture
def api_settings() -> Settings:
    return Settings(database_url="sqlite://", max_body_bytes=2 * 1024 * 1024)


@pytest.fixture
def store_and_client(
    api_store: Store, api_settings: Settings
) -> Iterator[tuple[Store, TestClient, HeadersFn]]:
    """``(store, client, headers)`` with one API key per role."""
    app = create_app(api_settings, store=api_store)
    with TestClient(app) as client:
        yield api_store, client, _headers_fn(make_keys(api_store))


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

    with ExitStack() as stack:
        if request.param == "sqlite":
            path = tmp_path_factory.mktemp("city") / "city.db"
            store = Store.from_url(f"sqlite:///{path}")
        else:
            url = request.getfixturevalue("api_postgis_url")
            store = Store.from_url(url, schema=stack.enter_context(pg_schema(url, "city")))
        layers = apidata.make_layers()
        save_layers(store, layers, author="setup")
        rec = save_plan(store, apidata.make_plan(layers), author="setup", status="published")
        headers = _headers_fn(make_keys(store))
        settings = Settings(database_url="sqlite://", max_body_bytes=2 * 1024 * 1024)
        with TestClient(create_app(settings, store=store)) as client:
            yield store, client, headers, rec.id
        store.close()
