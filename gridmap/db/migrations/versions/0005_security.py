"""security: sessions, rate limits, key expiry and last use, the auditor role, append-only audit

* ``api_keys`` gets ``expires_at``, ``last_used_at`` and ``rotated_at``, and the
  ``auditor`` role (reads the audit log, nothing else above a viewer).
* ``sessions``: browser sessions (the cookie holds a random id; the table holds
  its SHA-256), tied to a key and its role, with idle and absolute expiry.
* ``rate_limits``: fixed-window counters shared by every server process (failed
  authentications per address and key prefix, batch calls per key) and lockouts.
* ``audit_log`` gets ``grid_code`` (the grid a row is about) and an index on
  ``at``; ``audit_households`` names the households a read disclosed;
  ``audit_archives`` records every retention archive (file, SHA-256, rows).
* The audit log is append-only: triggers refuse every UPDATE, and every DELETE
  of a row that no archive record covers (``id <= upto_id``); archive records
  themselves are never updated or deleted. So rows leave the table only through
  ``gridmap audit archive``, which first writes them to a file.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
_OLD_ROLES = "role IN ('viewer', 'staff', 'dispatcher', 'planner', 'admin')"
_NEW_ROLES = "role IN ('viewer', 'staff', 'auditor', 'dispatcher', 'planner', 'admin')"
_APPEND_ONLY = (
    "{table} is append-only: rows leave it only through `gridmap audit archive`, "
    "which writes them to a file first"
)
_ARCHIVED = "(SELECT COALESCE(MAX(upto_id), 0) FROM audit_archives)"
# table -> its id column compared with the archived range
_GUARDED = {"audit_log": "id", "audit_households": "audit_id"}


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", TS, nullable=True))
        batch.add_column(sa.Column("last_used_at", TS, nullable=True))
        batch.add_column(sa.Column("rotated_at", TS, nullable=True))
        batch.drop_constraint("ck_api_keys_role", type_="check")
        batch.create_check_constraint("ck_api_keys_role", _NEW_ROLES)

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("ended_why", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_key_id", "sessions", ["key_id"])
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.String(200), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("bucket", name="pk_rate_limits"),
    )

    op.add_column("audit_log", sa.Column("grid_code", sa.String(64), nullable=True))
    op.create_index("ix_audit_log_grid_code", "audit_log", ["grid_code"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "audit_households",
        sa.Column("audit_id", sa.Integer, nullable=False),
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", "household_id", name="pk_audit_households"),
    )
    op.create_index("ix_audit_households_household_id", "audit_households", ["household_id"])
    op.create_table(
        "audit_archives",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("archived_at", TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("upto_id", sa.Integer, nullable=False),
        sa.Column("cutoff", TS, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_archives"),
    )
    _create_triggers()


def _create_triggers() -> None:
    archives = _APPEND_ONLY.format(table="audit_archives")
    if _pg():
        for table, col in _GUARDED.items():
            message = _APPEND_ONLY.format(table=table)
            op.execute(
                f"CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$ BEGIN "
                f"IF TG_OP = 'DELETE' AND OLD.{col} <= {_ARCHIVED} THEN RETURN OLD; END IF; "
                f"RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql"
            )
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
            )
        op.execute(
            "CREATE FUNCTION audit_archives_append_only() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{archives}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_archives_append_only BEFORE UPDATE OR DELETE ON "
            "audit_archives FOR EACH ROW EXECUTE FUNCTION audit_archives_append_only()"
        )
        return
    for table, col in _GUARDED.items():
        message = _APPEND_ONLY.format(table=table)
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"WHEN OLD.{col} > {_ARCHIVED} BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
    for what in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_archives_no_{what.lower()} BEFORE {what} ON audit_archives "
            f"BEGIN SELECT RAISE(ABORT, '{archives}'); END"
        )


def _drop_triggers() -> None:
    if _pg():
        for table in (*_GUARDED, "audit_archives"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
        return
    for table in (*_GUARDED, "audit_archives"):
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{what}")


def downgrade() -> None:
    _drop_triggers()
    op.drop_table("audit_archives")
    op.drop_index("ix_audit_households_household_id", table_name="audit_households")
    op.drop_table("audit_households")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_grid_code", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("grid_code")
    op.drop_table("rate_limits")
    op.drop_index("ix_sessions_key_id", table_name="sessions")
    op.drop_table("sessions")
    op.execute("DELETE FROM api_keys WHERE role = 'auditor'")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("ck_api_keys_role", type_="check")
        batch.create_check_constraint("ck_api_keys_role", _OLD_ROLES)
        batch.drop_column("rotated_at")
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
