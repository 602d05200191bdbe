"""Alembic environment of the gridmap store.

Run programmatically through :func:`gridmap.db.upgrade` (``gridmap db upgrade``),
or with the ``alembic`` command and ``-x url=...``. A caller may hand over an
open connection in ``config.attributes["connection"]`` (used for in-memory
SQLite and by the tests).
"""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from gridmap.db.models import Base  # every table is declared there
from gridmap.db.session import version_schema
from gridmap.db.settings import database_url

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    x = context.get_x_argument(as_dictionary=True)
    return x.get("url") or config.get_main_option("sqlalchemy.url") or database_url()


def include_object(obj, name, type_, reflected, compare_to):
    """Skip the PostgreSQL-only GiST indexes when comparing a SQLite database."""
    if (
        type_ == "index"
        and name is not None
        and name.endswith("_geom")
        and context.get_context().dialect.name != "postgresql"
    ):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def _configure(**kwargs):
    context.configure(
        target_metadata=target_metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        render_as_batch=True,  # SQLite cannot ALTER most things in place
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection, version_table_schema=version_schema(connection))
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(connection=conn, version_table_schema=version_schema(conn))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
