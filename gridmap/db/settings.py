"""Where the store lives: settings read from the environment, never at import.

The connection string comes, in order, from an explicit argument, the
``GRIDMAP_DATABASE_URL`` environment variable (or a ``.env`` file), and finally
the zero-setup default ``sqlite:///gridmap.db`` (a file in the working directory).
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEFAULT_DATABASE_URL",
    "StoreSettings",
    "get_store_settings",
    "database_url",
    "database_schema",
]

#: The zero-setup default: a SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///gridmap.db"


class StoreSettings(BaseSettings):
    """Storage settings, read from ``GRIDMAP_*`` environment variables.

    Attributes
    ----------
    database_url : str
        SQLAlchemy URL, e.g. ``postgresql+psycopg://user@host:5432/gridmap`` or
        ``sqlite:///path/to/gridmap.db`` (env ``GRIDMAP_DATABASE_URL``).
    database_schema : str or None
        PostgreSQL schema to keep the tables in (env ``GRIDMAP_DATABASE_SCHEMA``);
        ``None`` uses the server's default ``search_path``.
    database_echo : bool
        Log every SQL statement (env ``GRIDMAP_DATABASE_ECHO``); off by default.

    Examples
    --------
    >>> StoreSettings(database_url="sqlite:///x.db").database_url
    'sqlite:///x.db'
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    database_schema: str | None = None
    database_echo: bool = False


@lru_cache(maxsize=1)
def get_store_settings() -> StoreSettings:
    """Return the settings from the environment (read once, then cached).

    Examples
    --------
    >>> isinstance(get_store_settings(), StoreSettings)
    True
    """
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
    return StoreSettings().database_url


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
    return StoreSettings().database_schema or None
