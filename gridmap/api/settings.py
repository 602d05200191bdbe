"""Settings of the HTTP service, read from ``GRIDMAP_*`` environment variables.

Settings are never read at import: :func:`gridmap.api.app.create_app` takes a
:class:`Settings` (or calls :func:`get_settings`, cached, when given none).

================================  ======================  ==================================
variable                          default                 meaning
================================  ======================  ==================================
``GRIDMAP_DATABASE_URL``          sqlite:///gridmap.db    store (SQLite file or PostGIS URL)
``GRIDMAP_DATABASE_SCHEMA``       none                    PostgreSQL schema of the tables
``GRIDMAP_TITLE``                 gridmap                 OpenAPI / landing page title
``GRIDMAP_MAX_BODY_BYTES``        20971520 (20 MiB)       larger request bodies get 413
``GRIDMAP_MAX_BATCH_POINTS``      100000                  most points per /locate/batch
``GRIDMAP_MAX_RADIUS_M``          1000                    largest radius of /locate (m)
``GRIDMAP_LOCATE_TOLERANCE_M``    0.01                    edge tolerance of the index (m)
``GRIDMAP_FEATURES_LIMIT``        100                     default page size of /items
``GRIDMAP_FEATURES_MAX_LIMIT``    10000                   largest page size of /items
``GRIDMAP_CORS_ORIGINS``          []                      JSON list of allowed origins
``GRIDMAP_REFRESH_SECONDS``       5                       how often to look for newly
                                                          published plans (0: never)
``GRIDMAP_CASES_SWEEP_SECONDS``   60                      how often the case timers are
                                                          swept (0: never; safe with
                                                          several server processes)
``GRIDMAP_SESSION_HOURS``         8                       a browser session's absolute end
``GRIDMAP_SESSION_IDLE_MINUTES``  30                      …and its end after no use
``GRIDMAP_TRUSTED_PROXIES``       []                      JSON list of proxy addresses or
                                                          networks whose X-Forwarded-Proto
                                                          and X-Forwarded-For are honoured
``GRIDMAP_RATE_LIMIT``            true                    rate limits on (false: off)
``GRIDMAP_AUTH_FAILURES_PER_MIN`` 10                      wrong keys per address and per
                                                          key prefix per minute; the next
                                                          one gets 429 and a lockout
``GRIDMAP_AUTH_LOCKOUT_SECONDS``  300                     how long the lockout lasts
``GRIDMAP_BATCH_CALLS_PER_MIN``   60                      /locate/batch and /cases/import
                                                          calls per key per minute (0: no
                                                          limit)
``GRIDMAP_AUDIT_RETENTION_DAYS``  0                       audit rows older than this are
                                                          archived by ``gridmap audit
                                                          archive`` (0: kept for ever)
``GRIDMAP_DEMO``                  false                   demo mode (see gridmap serve)
================================  ======================  ==================================
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridmap.db.settings import DEFAULT_DATABASE_URL

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Settings of the HTTP service (env prefix ``GRIDMAP_``, optional ``.env`` file).

    Attributes
    ----------
    database_url : str
        SQLAlchemy URL of the store.
    database_schema : str or None
        PostgreSQL schema holding the tables.
    title : str
        Service title (OpenAPI, OGC landing page).
    max_body_bytes : int
        Largest request body accepted; larger bodies get ``413``.
    max_batch_points : int
        Most points accepted by ``POST /locate/batch``; more get ``413``.
    max_radius_m : float
        Largest search radius (metres) for residents/buildings near a point.
    locate_tolerance_m : float
        Distance (metres) within which a grid edge counts as touching a point.
    features_limit, features_max_limit : int
        Default and largest page size of the OGC API Features items.
    cors_origins : list of str
        Origins allowed by CORS (none by default).
    refresh_seconds : float
        Seconds between checks for plans published by another process (the
        CLI, another worker); the grid indexes are rebuilt when they changed.
        ``0`` turns the check off (a publish through this service still
        refreshes at once).
    session_hours : float
        A browser session (``/login``) ends this many hours after sign-in.
    session_idle_minutes : float
        …or after this many minutes without a request.
    trusted_proxies : list of str
        Addresses or networks (``10.0.0.0/8``) of reverse proxies: from them
        ``X-Forwarded-Proto`` (``Secure`` cookies) and ``X-Forwarded-For`` (the
        client address of the rate limits) are honoured; from anyone else never.
    rate_limit : bool
        Whether the rate limits below apply (state in the store: every server
        process counts the same events).
    auth_failures_per_min : int
        Wrong keys allowed per client address and per key prefix per minute; the
        next one gets ``429`` with ``Retry-After`` and starts a lockout.
    auth_lockout_seconds : float
        How long an address or key prefix stays locked out.
    batch_calls_per_min : int
        Calls of ``POST /locate/batch`` and ``POST /cases/import`` per key per
        minute (``0``: no limit).
    audit_retention_days : float
        Retention of the audit log in days for ``gridmap audit archive`` (``0``:
        rows are kept for ever).
    cases_sweep_seconds : float
        Seconds between sweeps of the case timers (warnings, overdue, 催办, 督办,
        escalation); ``0`` turns the background sweep off. Events have unique
        keys in the store, so several server processes may sweep at once.
    demo : bool
        Demo mode: ``gridmap serve --demo`` prints a generated admin key.

    Examples
    --------
    >>> Settings(database_url="sqlite://").max_batch_points
    100000
    """

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    database_schema: str | None = None
    title: str = "gridmap"
    max_body_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_batch_points: int = Field(default=100_000, gt=0)
    max_radius_m: float = Field(default=1000.0, gt=0)
    locate_tolerance_m: float = Field(default=0.01, ge=0)
    features_limit: int = Field(default=100, gt=0)
    features_max_limit: int = Field(default=10_000, gt=0)
    cors_origins: list[str] = Field(default_factory=list)
    refresh_seconds: float = Field(default=5.0, ge=0)
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
    session_idle_minutes: float = Field(default=30.0, gt=0)
    trusted_proxies: list[str] = Field(default_factory=list)
    rate_limit: bool = True
    auth_failures_per_min: int = Field(default=10, ge=1)
    auth_lockout_seconds: float = Field(default=300.0, ge=0)
    batch_calls_per_min: int = Field(default=60, ge=0)
    audit_retention_days: float = Field(default=0.0, ge=0)
    cases_sweep_seconds: float = Field(default=60.0, ge=0)
    demo: bool = False

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(str(item).strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"GRIDMAP_TRUSTED_PROXIES entry {item!r} is not an address or network; "
                    'give IP addresses or CIDR networks, e.g. ["127.0.0.1", "10.0.0.0/8"]'
                ) from None
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the settings from the environment (read once, then cached).

    Examples
    --------
    >>> isinstance(get_settings(), Settings)
    True
    """
    return Settings()
