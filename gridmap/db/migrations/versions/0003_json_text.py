"""JSON columns as json, not jsonb, on PostgreSQL: documents come back as they went in

jsonb re-orders object keys (shortest first), so on PostGIS a plan's parameters,
its quality report (whose per-grid table takes its column order from the keys)
and the audit log's before/after came back in another order than on SQLite.
``json`` keeps the text as written. Nothing queries inside these columns, so
nothing is lost. SQLite stores JSON as text already: no change there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Every JSON column of revision 0002, by table.
COLUMNS: dict[str, tuple[str, ...]] = {
    "imports": ("community_ids", "schema", "counts"),
    "communities": ("attrs",),
    "buildings": ("attrs",),
    "households": ("attrs",),
    "roads": ("attrs",),
    "barriers": ("attrs",),
    "compounds": ("attrs",),
    "staff": ("attrs",),
    "plans": ("community_ids", "params", "schema", "report"),
    "grids": ("figures",),
    "plan_buildings": ("attrs",),
    "plan_households": ("attrs",),
    "assignments": ("attrs",),
    "audit_log": ("before", "after"),
}


def _alter(cast: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():  # one ALTER per table: one rewrite
        changes = ", ".join(f'ALTER COLUMN "{c}" TYPE {cast} USING "{c}"::{cast}' for c in columns)
        op.execute(f'ALTER TABLE "{table}" {changes}')


def upgrade() -> None:
    _alter("json")


def downgrade() -> None:
    _alter("jsonb")
