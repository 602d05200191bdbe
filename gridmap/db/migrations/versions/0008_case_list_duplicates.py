"""cases: the list's index, and a bounded list of likely duplicates with their count

* ``ix_cases_grid_status_received`` on ``cases (grid_code, status, received_at)``
  replaces ``ix_cases_grid_code``: ``GET /cases?grid=…&status=…`` (newest first) reads
  its page straight from the index, and counts its matches from the index alone; a
  query on the grid alone uses its first column as before.
* ``cases.duplicate_count``: how many likely duplicates the intake found. The
  ``duplicate_of`` list keeps the nearest few (5 by default, nearest first); the full
  list is computed again when a case is opened (:func:`gridmap.db.cases.get_case`).
  NULL (every case stored before this revision): ``duplicate_of`` is the full list.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("duplicate_count", sa.Integer, nullable=True))
    op.create_index(
        "ix_cases_grid_status_received", "cases", ["grid_code", "status", "received_at"]
    )
    op.drop_index("ix_cases_grid_code", table_name="cases")


def downgrade() -> None:
    op.create_index("ix_cases_grid_code", "cases", ["grid_code"])
    op.drop_index("ix_cases_grid_status_received", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("duplicate_count")
