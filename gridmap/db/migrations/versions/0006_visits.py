"""visits (走访): visit records and the register kept by grid chiefs

One table, ``visit_records``: who visited which household (or organisation's
building) when, with the outcome, notes, follow-up and the case a follow-up
opened. Due lists and the 四清 register are computed from the published plan,
the layers and these records, so nothing else is stored.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "visit_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("staff_id", sa.String(64), nullable=False),
        sa.Column("visited_at", TS, nullable=False),
        sa.Column("household_id", sa.String(64), nullable=True),
        sa.Column("building_id", sa.String(64), nullable=True),
        sa.Column("grid_code", sa.String(64), nullable=True),
        sa.Column("plan_id", sa.Integer, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("notes", sa.Text, nullable=True),
        sa.Column("follow_up", sa.Boolean, nullable=False),
        sa.Column("follow_up_text", sa.Text, nullable=True),
        sa.Column("case_id", sa.Integer, nullable=True),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_visit_records"),
    )
    for name, cols in (
        ("household_at", ["household_id", "visited_at"]),
        ("building_at", ["building_id", "visited_at"]),
        ("grid_at", ["grid_code", "visited_at"]),
        ("staff_at", ["staff_id", "visited_at"]),
    ):
        op.create_index(f"ix_visit_records_{name}", "visit_records", cols)


def downgrade() -> None:
    op.drop_table("visit_records")
