"""Where the store lives: settings read from the environment, never at import.

The connection string comes, in order, from an explicit argument, the
``GRIDMAP_DATABASE_URL`` environment variable (or a ``.env`` file), and finally
the zero-setup default ``sqlite:///gridmap.db`` (a file in the working directory).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridmap.db._store_settings import StoreSettings

__all__ = [
    "DEFAULT_DATABASE_URL",
    "StoreSettings",
    "get_store_settings",
    "database_url",
    "database_schema",
]

#: The zero-setup default: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///gridmap.db"

_DEFAULTS: dict[str, Any] = {"database_url": DEFAULT_DATABASE_URL, "database_schema": None}


def __getattr__(name: str) -> Any:
    # StoreSettings (pydantic-settings, ~70 ms to import) loads on first use
    if name == "StoreSettings":
        from gridmap.db._store_settings import StoreSettings

        return StoreSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _setting(name: str) -> Any:
    """One store setting as :class:`StoreSettings` reads it, read at call time.

    Without a ``.env`` file in the working directory, the ``GRIDMAP_<NAME>``
    variable is looked up here, in any case as pydantic-settings does, so that
    opening the store does not import pydantic; with one, the model reads both.
    """
    if os.path.exists(".env"):
        from gridmap.db._store_settings import StoreSettings

        return getattr(StoreSettings(), name)
    key = f"gridmap_{name}"
    for var, value in os.environ.items():
        if var.lower() == key:
            return value
    return _DEFAULTS[name]


@lru_cache(maxsize=1)
def get_store_settings() -> StoreSettings:
    """Return the settings from the environment (read once, then cached).

    Examples
    --------
    >>> type(get_store_settings()).__name__
    'StoreSettings'
    """
    from gridmap.db._store_settings import StoreSettings

    return StoreSettings()


def database_url(explicit: str | None = None) -> str:
    """Resolve the database URL: ``explicit``, else ``GRIDMAP_DATABASE_URL``, else the default.

    The environment is read at call time (not cached), so a CLI option or a
    changed variable always wins.

    Parameters
    ----------
    explicit : str, optional
        A URL given on the command line or by the caller.

    Returns
    -------
    str
        The SQLAlchemy URL to connect to.

    Examples
    --------
    >>> database_url("sqlite:///plans.db")
    'sqlite:///plans.db'
    """
    if explicit:
        return explicit
    return str(_setting("database_url"))


def database_schema(explicit: str | None = None) -> str | None:
    """Resolve the PostgreSQL schema: ``explicit``, else ``GRIDMAP_DATABASE_SCHEMA``, else None.

    Read at call time like :func:`database_url`, so that every command line
    tool and the HTTP service open the same tables.

    Parameters
    ----------
    explicit : str, optional
        A schema given by the caller.

    Returns
    -------
    str or None
        The schema, or ``None`` for the server's default ``search_path``.

    Examples
    --------
    >>> database_schema("planning")
    'planning'
    """
    if explicit:
        return explicit
    return _setting("database_schema") or None
