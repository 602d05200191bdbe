"""The store's settings as a pydantic-settings model (loaded only where a ``.env`` file is).

:mod:`gridmap.db.settings` reads ``GRIDMAP_*`` variables itself when there is no
``.env`` file, so that a command that only opens the store (``gridmap locate``) does
not import pydantic; this model is the full reading, ``.env`` included.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from gridmap.db.settings import DEFAULT_DATABASE_URL

__all__ = ["StoreSettings"]


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
