"""cases: the resolve deadline lives on ``cases`` only (no duplicate ``case_deadlines`` row)

``cases.due_at`` always held the resolve deadline, and ``cases.provisional`` its
provisional flag (a case's other clock, ``answer``, counts a subset of the resolve
clock's days, so it is provisional only when resolve is); every case also had a
``case_deadlines`` row with the same values. An import wrote two rows per ticket for one
deadline. From this revision the readers (:func:`gridmap.db.cases.get_case`, the sweep's
clocks, the calendar's recompute) take the resolve deadline from ``cases`` unless a
``case_deadlines`` row for it is present, and the intake no longer writes that row.

* upgrade: delete the ``resolve`` rows that say exactly what ``cases`` says (same due
  time and flag); any other (none is expected) stays and still wins.
* downgrade: write a ``resolve`` row from ``cases`` for every case that has a resolve
  deadline and no such row, as revision 0008 expects.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM case_deadlines WHERE clock = 'resolve' AND EXISTS ("
        "SELECT 1 FROM cases AS c WHERE c.id = case_deadlines.case_id "
        "AND c.due_at = case_deadlines.due_at AND c.provisional = case_deadlines.provisional)"
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO case_deadlines (case_id, clock, due_at, provisional) "
        "SELECT c.id, 'resolve', c.due_at, c.provisional FROM cases AS c "
        "WHERE c.due_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM case_deadlines AS d "
        "WHERE d.case_id = c.id AND d.clock = 'resolve')"
    )
