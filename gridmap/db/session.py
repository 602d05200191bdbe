"""The :class:`Store` (engine + sessions) and the schema migrations.

A store is opened with :meth:`Store.from_url`; on an empty database opening it
runs the Alembic migrations (creating a store *is* migrating). Work happens in
transactions: ``with store.session() as s: ...`` commits on success and rolls
back on any error, so a failure (or a killed process) leaves the previous state.

SQLite is configured for that: WAL journal, foreign keys on, a busy timeout,
and real ``BEGIN`` statements (pysqlite's own transaction handling is bypassed so
that reads inside a transaction see one snapshot).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gridmap.db.settings import database_schema, database_url
from gridmap.errors import StorageError

if TYPE_CHECKING:  # alembic loads only when a migration runs (opening a store needs none)
    from alembic.config import Config

__all__ = [
    "Store",
    "transaction",
    "create_store_engine",
    "alembic_config",
    "upgrade",
    "downgrade",
    "current_revision",
    "head_revision",
]

_log = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _redact(url: str | sa.URL) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def create_store_engine(
    url: str | sa.URL | None = None, *, schema: str | None = None, **kwargs: Any
) -> sa.Engine:
    """Create an engine configured for the store (SQLite pragmas, PostgreSQL schema).

    Parameters
    ----------
    url : str or sqlalchemy.URL, optional
        Database URL; ``None`` resolves it with :func:`gridmap.db.settings.database_url`.
    schema : str, optional
        PostgreSQL only: keep the tables in this schema (``search_path`` is set
        to ``schema, public`` so PostGIS in ``public`` is found); ``None`` uses
        ``GRIDMAP_DATABASE_SCHEMA`` when set, else the server's ``search_path``.
    **kwargs
        Passed to :func:`sqlalchemy.create_engine`.

    Returns
    -------
    sqlalchemy.Engine

    Examples
    --------
    >>> engine = create_store_engine("sqlite://")
    >>> engine.dialect.name
    'sqlite'
    """
    u = sa.make_url(url if url is not None else database_url())
    backend = u.get_backend_name()
    schema = database_schema(schema)
    if backend == "sqlite":
        if u.database in (None, "", ":memory:"):
            kwargs.setdefault("poolclass", sa.pool.StaticPool)
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", 30.0)
        connect_args.setdefault("check_same_thread", False)
        engine = sa.create_engine(u, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        if schema:
            connect_args = dict(kwargs.pop("connect_args", {}))
            connect_args["options"] = f"-csearch_path={schema},public"
            kwargs["connect_args"] = connect_args
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(u, **kwargs)
    raise StorageError(
        f"unsupported database backend {backend!r} in {_redact(u)}; use "
        "postgresql+psycopg://user@host/db (PostGIS) or sqlite:///path/to/file.db"
    )


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("gridmap_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Store:
    """An open gridmap store: an engine and a session factory.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        An engine from :func:`create_store_engine`.

    Attributes
    ----------
    engine : sqlalchemy.Engine
    sessionmaker : sqlalchemy.orm.sessionmaker
    backend : str
        ``"postgresql"`` or ``"sqlite"``.

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> store.backend, current_revision(store.engine) == head_revision()
    ('sqlite', True)
    >>> with store.session() as s:
    ...     s.execute(sa.text("SELECT count(*) FROM plans")).scalar_one()
    0
    >>> store.close()
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker(bind=engine, expire_on_commit=False)
        self.backend = engine.dialect.name
        self._cache: dict[Any, Any] = {}

    @classmethod
    def from_url(
        cls,
        url: str | sa.URL | None = None,
        *,
        schema: str | None = None,
        create: bool = True,
        **engine_kwargs: Any,
    ) -> Store:
        """Open the store at ``url``, creating its tables on an empty database.

        Parameters
        ----------
        url : str or sqlalchemy.URL, optional
            Database URL (``None``: ``GRIDMAP_DATABASE_URL`` or ``sqlite:///gridmap.db``).
        schema : str, optional
            PostgreSQL schema holding the tables.
        create : bool
            Run the migrations when the database has no gridmap tables yet.
        **engine_kwargs
            Passed to :func:`sqlalchemy.create_engine`.

        Returns
        -------
        Store

        Raises
        ------
        StorageError
            The database cannot be reached, or its schema is older or newer than
            this version of gridmap (run ``gridmap db upgrade``).
        """
        schema = database_schema(schema)
        engine = create_store_engine(url, schema=schema, **engine_kwargs)
        try:
            with engine.connect() as conn:
                if schema and create and conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                    conn.commit()
                rev = _current_revision(conn)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise StorageError(
                f"cannot connect to the store at {_redact(engine.url)}: {exc.orig}; check "
                "GRIDMAP_DATABASE_URL and that the server is running"
            ) from exc
        head = head_revision()
        if rev is None and create:
            _log.info("creating a gridmap store at %s", _redact(engine.url))
            upgrade(engine)
        elif rev != head:
            engine.dispose()
            raise StorageError(
                f"the store at {_redact(engine.url)} has schema revision {rev!r}, this gridmap "
                f"needs {head!r}; run `gridmap db upgrade` (gridmap.db.upgrade(url))"
            )
        return cls(engine)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """Open a session in one transaction: commit on success, roll back on error.

        Parameters
        ----------
        write : bool
            Take the write lock at ``BEGIN`` (SQLite ``BEGIN IMMEDIATE``), so that
            a read-then-write transaction never fails on a stale snapshot.

        Yields
        ------
        sqlalchemy.orm.Session
        """
        with self.sessionmaker() as s:
            if write:
                s.connection(execution_options={"gridmap_write": True})
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def close(self) -> None:
        """Dispose of the engine's connections."""
        self._cache.clear()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({_redact(self.engine.url)!r})"


def alembic_config(url: str | sa.URL | None = None) -> Config:
    """Return an Alembic :class:`~alembic.config.Config` for the packaged migrations.

    Examples
    --------
    >>> alembic_config("sqlite://").get_main_option("script_location").endswith("migrations")
    True
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if url is not None:
        cfg.set_main_option(
            "sqlalchemy.url",
            sa.make_url(url).render_as_string(hide_password=False).replace("%", "%%"),
        )
    return cfg


def version_schema(conn: sa.Connection) -> str | None:
    """Return the schema holding ``alembic_version``: PostgreSQL's ``current_schema()``.

    Pinning it keeps a store in schema ``x`` (``search_path = x, public``) from
    reading the revision of another store in ``public``.
    """
    if conn.dialect.name != "postgresql":
        return None
    return conn.exec_driver_sql("SELECT current_schema()").scalar()


def _current_revision(conn: sa.Connection) -> str | None:
    """Read ``alembic_version`` with plain SQL (what Alembic's migration context reads)."""
    schema = version_schema(conn)
    if not sa.inspect(conn).has_table("alembic_version", schema=schema):
        return None
    version = sa.Table(
        "alembic_version", sa.MetaData(schema=schema), sa.Column("version_num", sa.String(32))
    )
    revs = conn.execute(sa.select(version.c.version_num)).scalars().all()
    if len(revs) > 1:
        raise StorageError(f"the store has several schema revisions {sorted(revs)}; fix it by hand")
    return revs[0] if revs else None


def _run(
    target: str | sa.URL | sa.Engine | sa.Connection | None,
    schema: str | None,
    fn: Any,
    revision: str,
) -> None:
    if isinstance(target, sa.Connection):
        cfg = alembic_config()
        cfg.attributes["connection"] = target
        fn(cfg, revision)
        return
    schema = database_schema(schema) if not isinstance(target, sa.Engine) else schema
    engine = target if isinstance(target, sa.Engine) else create_store_engine(target, schema=schema)
    try:
        with engine.begin() as conn:
            if schema and conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            fn(cfg, revision)
    finally:
        if not isinstance(target, sa.Engine):
            engine.dispose()


def upgrade(
    url: str | sa.URL | sa.Engine | sa.Connection | None = None,
    *,
    revision: str = "head",
    schema: str | None = None,
) -> None:
    """Migrate the store's schema up to ``revision`` (``gridmap db upgrade``).

    Idempotent: upgrading a store that is already at ``revision`` does nothing.
    On PostgreSQL it also runs ``CREATE EXTENSION IF NOT EXISTS postgis``.

    Parameters
    ----------
    url : str, sqlalchemy.URL, Engine or Connection, optional
        The database (``None``: :func:`gridmap.db.settings.database_url`).
    revision : str
        Target revision, ``"head"`` by default.
    schema : str, optional
        PostgreSQL schema holding the tables.

    Examples
    --------
    >>> engine = create_store_engine("sqlite://")
    >>> upgrade(engine)
    >>> {"plans", "grids", "audit_log"} <= set(sa.inspect(engine).get_table_names())
    True
    """
    from alembic import command

    _run(url, schema, command.upgrade, revision)


def downgrade(
    url: str | sa.URL | sa.Engine | sa.Connection | None = None,
    *,
    revision: str = "base",
    schema: str | None = None,
) -> None:
    """Migrate the store's schema down to ``revision`` (``"base"`` drops every table).

    Parameters
    ----------
    url : str, sqlalchemy.URL, Engine or Connection, optional
        The database.
    revision : str
        Target revision.
    schema : str, optional
        PostgreSQL schema holding the tables.

    Examples
    --------
    >>> engine = create_store_engine("sqlite://")
    >>> upgrade(engine); downgrade(engine)
    >>> sa.inspect(engine).get_table_names()
    ['alembic_version']
    """
    from alembic import command

    _run(url, schema, command.downgrade, revision)


def current_revision(engine: sa.Engine) -> str | None:
    """Return the store's schema revision (``None`` for an empty database).

    Examples
    --------
    >>> current_revision(create_store_engine("sqlite://")) is None
    True
    """
    with engine.connect() as conn:
        return _current_revision(conn)


def head_revision() -> str:
    """Return the newest schema revision this gridmap ships.

    Examples
    --------
    >>> head_revision() >= "0001"
    True
    """
    return _head_revision()


@functools.cache
def _head_revision() -> str:
    # the chain read from the migration files' ``revision``/``down_revision`` lines, so that
    # opening a store does not import Alembic (tests/db check it equals Alembic's own head)
    revisions, parents = set(), set()
    for path in (_MIGRATIONS / "versions").glob("[0-9]*.py"):
        text = path.read_text(encoding="utf-8")
        rev = re.search(r'^revision(?:: str)? = "([^"]+)"', text, re.M)
        down = re.search(r'^down_revision(?:: [^=]+)? = "([^"]+)"', text, re.M)
        if rev:
            revisions.add(rev[1])
        if down:
            parents.add(down[1])
    heads = revisions - parents
    if len(heads) != 1:
        raise StorageError(f"the packaged migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


@contextmanager
def transaction(target: Store | Session, *, write: bool = False) -> Iterator[Session]:
    """Yield a session for ``target``: a new transaction for a store, or the session itself.

    With a :class:`Store` the transaction commits when the block ends and rolls
    back on error. With a :class:`~sqlalchemy.orm.Session` the caller owns the
    transaction (several repository calls can then be one atomic unit).

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> with transaction(store) as s:
    ...     s.execute(sa.text("SELECT 1")).scalar_one()
    1
    """
    if isinstance(target, Session):
        yield target
        return
    if not isinstance(target, Store):
        raise TypeError(
            f"expected a gridmap.db.Store or a SQLAlchemy Session, got {type(target).__name__}; "
            "open one with Store.from_url(url)"
        )
    with target.session(write=write) as s:
        yield s
