"""case stats: an index for the performance figures (工单绩效)

``ix_case_log_state`` on ``case_log (case_id, to_state, at)``: the figures read,
per case, the first answer and the last reply from the log; with this index
each is one index seek that never touches the table
(:mod:`gridmap.db.case_stats`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_case_log_state", "case_log", ["case_id", "to_state", "at"])


def downgrade() -> None:
    op.drop_index("ix_case_log_state", table_name="case_log")
