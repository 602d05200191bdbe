"""The app factory: :func:`create_app` builds the FastAPI service over a store.

The store (engine and connection pool), the locator (grid indexes of the
published plans) and the key cache are created in the lifespan and kept on
``app.state``; nothing is opened at import. Routers live in
:mod:`gridmap.api.routes`, one module per resource.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gridmap.api.errors import (
    PROBLEM_RESPONSES,
    BodySizeLimitMiddleware,
    install_error_handlers,
    log_exception,
)
from gridmap.api.headers import (
    SecurityHeadersMiddleware,
    asset_sources,
    content_security_policy,
    tile_sources,
)
from gridmap.api.locator import Locator
from gridmap.api.security import Authenticator, BatchQuotaMiddleware, KeyCache
from gridmap.api.settings import Settings, get_settings
from gridmap.db import Store

__all__ = ["create_app", "OPTIONAL_ROUTERS", "HotRoutesMiddleware"]

_log = logging.getLogger(__name__)

#: Routers included when their module exists (written by other parts of gridmap).
OPTIONAL_ROUTERS: tuple[str, ...] = ("plans", "maps")
_ROUTERS: tuple[str, ...] = (
    "locate",  # hot routes first
    "health",
    "features",
    "keys",
    "session",
    "docs",
    "cases",
    "audit",
    "visits",
    "open311",
)

_DESCRIPTION = """\
Community grid (网格) service: coordinate positioning (坐标式定位), OGC API – Features
of the published plan, plans, cases (事件工单) and API keys.

Authenticate with an API key, sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
Roles: viewer < dispatcher < planner < admin. Errors are RFC 7807 `application/problem+json`.
"""


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """Build the gridmap HTTP service.

    Parameters
    ----------
    settings : Settings, optional
        Service settings; :func:`gridmap.api.settings.get_settings` (environment,
        ``GRIDMAP_*``) by default.
    store : Store, optional
        An open store to serve (it is then not closed at shutdown); by default the
        lifespan opens ``settings.database_url`` and closes it at shutdown.

    Returns
    -------
    fastapi.FastAPI

    Examples
    --------
    >>> from fastapi.testclient import TestClient
    >>> app = create_app(Settings(database_url="sqlite://"))
    >>> with TestClient(app) as client:
    ...     client.get("/health").json()["status"]
    'ok'
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact_access_log()
        own = store is None
        st = store or Store.from_url(settings.database_url, schema=settings.database_schema)
        app.state.settings = settings
        app.state.store = st
        app.state.key_cache = KeyCache()
        app.state.authenticator = Authenticator(st, app.state.key_cache, settings)
        app.state.locator = Locator(st, tolerance=settings.locate_tolerance_m)
        app.state.locator.refresh()
        watcher = (
            asyncio.create_task(_watch_published(app.state.locator, settings.refresh_seconds))
            if settings.refresh_seconds > 0
            else None
        )
        sweeper = (
            asyncio.create_task(_sweep_cases(st, settings.cases_sweep_seconds))
            if settings.cases_sweep_seconds > 0
            else None
        )
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            if sweeper is not None:
                sweeper.cancel()
            runner = getattr(app.state, "jobs", None)
            shutdown = getattr(runner, "shutdown", None)
            if callable(shutdown):
                try:
                    shutdown()
                except Exception:  # pragma: no cover - best effort at exit
                    _log.exception("job runner shutdown failed")
            app.state.locator = None
            app.state.store = None
            if own:
                st.close()

    app = _GridmapAPI(
        title=settings.title,
        description=_DESCRIPTION,
        version=_version(),
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
        docs_url=None,  # /docs and /redoc load their assets from this server (routes/docs.py)
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=lambda: settings.max_body_bytes)
    app.add_middleware(BatchQuotaMiddleware, settings=settings)
    app.add_middleware(SecurityHeadersMiddleware, csp=_page_policy())
    # the hot path: GET /locate answered in front of the middleware above and of FastAPI's
    # router (they cost as much as the locating), and of FastAPI's own error, exception
    # telemetry and body-limit layers (the hot app answers its errors itself and reads no
    # body; FastAPI's request telemetry, outside them, still sees it). CORS, when
    # configured, still wraps it: the hot path then sits among the middleware
    from gridmap.api.routes.locate import locate_asgi, locate_fast

    hot: dict[str, ASGIApp] = {"/locate": locate_asgi}
    if not settings.cors_origins:
        app.hot_routes = hot
    else:
        app.add_middleware(HotRoutesMiddleware, routes=hot)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "If-Match"],
            expose_headers=["ETag", "Location"],
        )
    for name in _ROUTERS + OPTIONAL_ROUTERS:
        module = f"gridmap.api.routes.{name}"
        if name in OPTIONAL_ROUTERS and importlib.util.find_spec(module) is None:
            continue
        app.include_router(importlib.import_module(module).router)
    # what the hot path passes on (HEAD, a GET with a body): a plain route in front of the
    # documented GET /locate (same checks and answer, without FastAPI's dependency solving)
    app.router.routes.insert(0, Route("/locate", locate_fast, methods=["GET"]))
    _add_schemas(app)
    return app


class _GridmapAPI(FastAPI):
    """FastAPI with :class:`HotRoutesMiddleware` in front of its whole middleware stack."""

    hot_routes: dict[str, ASGIApp] = {}  # noqa: RUF012 - replaced, never mutated

    def build_middleware_stack(self) -> ASGIApp:
        """Return FastAPI's stack, behind the hot routes when there are any."""
        stack = super().build_middleware_stack()
        return HotRoutesMiddleware(stack, self.hot_routes) if self.hot_routes else stack


class HotRoutesMiddleware:
    """Answer ``GET <path>`` of a few hot routes with their own ASGI app, before the rest.

    A hot route's app does itself what the middleware it skips would do (see
    :func:`gridmap.api.routes.locate.locate_asgi`). Requests with a body (a
    ``Content-Length`` or ``Transfer-Encoding`` header), other methods, other
    paths and apps mounted under a ``root_path`` go on through the whole stack,
    as before.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    routes : dict
        Exact path → ASGI app serving ``GET`` on it.
    """

    def __init__(self, app: ASGIApp, routes: dict[str, ASGIApp]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a hot ``GET`` directly; pass everything else on."""
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            hot = self.routes.get(scope["path"])
            if hot is not None and not any(
                name in _BODY_HEADERS for name, _ in scope.get("headers", ())
            ):
                await hot(scope, receive, send)
                return
        await self.app(scope, receive, send)


_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})


def _page_policy() -> str:
    """Return the HTML pages' Content Security Policy, from the map settings (tiles, assets)."""
    from gridmap.api.routes.maps import get_map_settings

    maps = get_map_settings()
    template = maps.tiles if "{z}" in maps.tiles else None
    assets = "" if maps.assets in ("served", "inline") else maps.assets
    return content_security_policy(tiles=tile_sources(template), assets=asset_sources(assets))


class _RedactLocation(logging.Filter):
    """Drop places and keys from the server's access log.

    ``/locate?lon=…&lat=…`` is where an incident (often a caller's home) is; the
    access log needs the path and status, not the place. An ``api_key=`` in any
    URL (clients that cannot send headers) is masked too.
    """

    _PREFIXES = ("/locate", "/maps/locate")
    _KEY = re.compile(r"(?i)(^|&)(api_key=)[^&]*")

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, sep, query = args[2].partition("?")
            if sep and path.startswith(self._PREFIXES):
                record.args = (*args[:2], f"{path}?…", *args[3:])
            elif sep and "api_key=" in query.lower():
                masked = self._KEY.sub(r"\1\2…", query)
                record.args = (*args[:2], f"{path}?{masked}", *args[3:])
        return True


def redact_access_log(logger: str = "uvicorn.access") -> None:
    """Install the filter that keeps incident coordinates out of the access log (idempotent).

    Parameters
    ----------
    logger : str, default "uvicorn.access"
        The access logger of the server.
    """
    target = logging.getLogger(logger)
    if not any(isinstance(f, _RedactLocation) for f in target.filters):
        target.addFilter(_RedactLocation())


def _add_schemas(app: FastAPI) -> None:
    """Add to the OpenAPI components the request models of routes that read raw bodies.

    ``POST /locate/batch`` parses its body itself (JSON, GeoJSON or CSV), so FastAPI
    does not see its JSON model; its documented ``$ref`` must still resolve. The
    document's links (:mod:`gridmap.api.openapi_links`) are added here too.
    """
    from pydantic.json_schema import models_json_schema

    from gridmap.api.openapi_links import add_links
    from gridmap.api.schemas import BatchRequest

    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _, defs = models_json_schema(
                [(BatchRequest, "validation")], ref_template="#/components/schemas/{model}"
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                defs.get("$defs", {})
            )
            app.openapi_schema = add_links(schema)  # which answer feeds which request
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _watch_published(locator: Locator, every: float) -> None:
    """Rebuild the locator when another process publishes a plan (polls every ``every`` s)."""
    from starlette.concurrency import run_in_threadpool

    while True:
        await asyncio.sleep(every)
        try:
            if await run_in_threadpool(locator.refresh_if_changed):
                _log.info("published plans changed: grid indexes rebuilt")
        except Exception as exc:  # noqa: BLE001 - keep watching; the store may come back
            log_exception(_log, exc, "cannot check the published plans")


async def _sweep_cases(store: Store, every: float) -> None:
    """Sweep the case timers every ``every`` s (idempotent keys: safe with several processes)."""
    from starlette.concurrency import run_in_threadpool

    from gridmap.db.cases import sweep_cases

    while True:
        await asyncio.sleep(every)
        try:
            result = await run_in_threadpool(sweep_cases, store)
            if result.written:
                _log.info("case sweep: %d new events", result.written)
        except Exception as exc:  # noqa: BLE001 - keep sweeping; the store may come back
            log_exception(_log, exc, "case sweep failed")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("gridmap")
    except Exception:  # pragma: no cover - not installed
        return "0"
