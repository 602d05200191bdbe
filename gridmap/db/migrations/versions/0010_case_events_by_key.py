"""case_events: keyed by the event key (no surrogate id)

An event is found by its key (``<case>|<clock>|<kind>|<level>``, unique: it is what makes
a sweep idempotent); nothing reads the surrogate ``id``. Keyed by ``key``, the table has
one index fewer to grow per event (a sweep writes up to seven per open case): on
PostgreSQL no sequence and no second B-tree; on SQLite the rows live in the key's B-tree
(``WITHOUT ROWID``) instead of beside it.

* upgrade: the key becomes the primary key and ``id`` goes (SQLite: the table is rebuilt
  ``WITHOUT ROWID``, rows copied in key order).
* downgrade: ``id`` comes back (numbered in key order) with the key unique again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
_COLS = "key, case_id, clock, kind, level, at, due, target, swept_at"


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _columns() -> list[sa.Column]:
    return [
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("clock", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("due", TS, nullable=False),
        sa.Column("target", sa.String(16), nullable=True),
        sa.Column("swept_at", TS, nullable=False),
    ]


def _rebuild_sqlite(*elements: Any, **options: Any) -> None:
    """Rebuild ``case_events`` on SQLite as ``elements`` say, its rows copied in key order."""
    op.create_table("_case_events_rebuilt", *elements, **options)
    op.execute(
        f"INSERT INTO _case_events_rebuilt ({_COLS}) SELECT {_COLS} FROM case_events ORDER BY key"
    )
    op.drop_index("ix_case_events_case_id", table_name="case_events")
    op.drop_table("case_events")
    op.rename_table("_case_events_rebuilt", "case_events")
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])


def upgrade() -> None:
    if _pg():
        op.drop_constraint("pk_case_events", "case_events", type_="primary")
        op.drop_constraint("uq_case_events_key", "case_events", type_="unique")
        op.drop_column("case_events", "id")
        op.create_primary_key("pk_case_events", "case_events", ["key"])
        return
    _rebuild_sqlite(
        *_columns(),
        sa.PrimaryKeyConstraint("key", name="pk_case_events"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    if _pg():
        op.drop_constraint("pk_case_events", "case_events", type_="primary")
        op.add_column("case_events", sa.Column("id", sa.Integer, nullable=True))
        op.execute("CREATE SEQUENCE case_events_id_seq OWNED BY case_events.id")
        op.execute(
            "UPDATE case_events AS e SET id = n.i FROM (SELECT key, "
            "row_number() OVER (ORDER BY key) AS i FROM case_events) AS n WHERE n.key = e.key"
        )
        op.execute(
            "SELECT setval('case_events_id_seq', coalesce((SELECT max(id) FROM case_events), 0)"
            " + 1, false)"
        )
        op.execute(
            "ALTER TABLE case_events ALTER COLUMN id SET DEFAULT nextval('case_events_id_seq'), "
            "ALTER COLUMN id SET NOT NULL"
        )
        op.create_primary_key("pk_case_events", "case_events", ["id"])
        op.create_unique_constraint("uq_case_events_key", "case_events", ["key"])
        return
    _rebuild_sqlite(
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *_columns(),
        sa.PrimaryKeyConstraint("id", name="pk_case_events"),
        sa.UniqueConstraint("key", name="uq_case_events_key"),
    )
