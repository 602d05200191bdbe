"""cases (事件工单): cases, deadlines, handlers, append-only log, sweep events, calendar; key scopes

The case log is append-only: a trigger refuses every UPDATE and DELETE on both
backends. API keys get an org-unit scope (``scope_level``, ``scope_code``) and
the ``staff`` role.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
_MESSAGE = "case_log is append-only: the 办理轨迹 is never updated or deleted"
_OLD_ROLES = "role IN ('viewer', 'dispatcher', 'planner', 'admin')"
_NEW_ROLES = "role IN ('viewer', 'staff', 'dispatcher', 'planner', 'admin')"


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _geom(kind: str = "GEOMETRY"):
    if _pg():
        return Geometry(kind, srid=4326, spatial_index=False)
    return sa.LargeBinary()


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_no", sa.String(64), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("urgency", sa.String(16), nullable=False),
        sa.Column("hard", sa.Boolean, nullable=False),
        sa.Column("policy", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("reporter_name", sa.Text, nullable=True),
        sa.Column("reporter_phone", sa.String(64), nullable=True),
        sa.Column("lon_given", sa.Float, nullable=True),
        sa.Column("lat_given", sa.Float, nullable=True),
        sa.Column("crs_given", sa.String(32), nullable=True),
        sa.Column("lon", sa.Float, nullable=True),
        sa.Column("lat", sa.Float, nullable=True),
        sa.Column("geom", _geom("POINT"), nullable=True),
        sa.Column("address", sa.Text, nullable=True),
        sa.Column("grid_code", sa.String(64), nullable=True),
        sa.Column("community_id", sa.String(64), nullable=True),
        sa.Column("subdistrict", sa.String(64), nullable=True),
        sa.Column("plan_id", sa.Integer, nullable=True),
        sa.Column("plan_version", sa.Integer, nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("satisfaction", sa.String(24), nullable=True),
        sa.Column("merged_into", sa.String(32), nullable=True),
        sa.Column("reopened", sa.Integer, nullable=False),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("provisional", sa.Boolean, nullable=False),
        sa.Column("suggested_grid", sa.String(64), nullable=True),
        sa.Column("reroute_grid", sa.String(64), nullable=True),
        sa.Column("reroute_plan_id", sa.Integer, nullable=True),
        sa.Column("duplicate_of", sa.JSON(), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("source", "ticket_no", name="uq_cases_source_ticket_no"),
    )
    for col in ("category", "grid_code", "community_id", "subdistrict", "received_at"):
        op.create_index(f"ix_cases_{col}", "cases", [col])
    op.create_index("ix_cases_status_due", "cases", ["status", "due_at"])
    if _pg():
        op.create_index("ix_cases_geom", "cases", ["geom"], postgresql_using="gist")

    op.create_table(
        "case_deadlines",
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("clock", sa.String(32), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("provisional", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("case_id", "clock", name="pk_case_deadlines"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], ondelete="CASCADE", name="fk_case_deadlines_case_id_cases"
        ),
    )
    op.create_table(
        "case_handlers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("person", sa.String(64), nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("due_provisional", sa.Boolean, nullable=False),
        sa.Column("summoned_at", TS, nullable=True),
        sa.Column("signed_in_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_case_handlers"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], ondelete="CASCADE", name="fk_case_handlers_case_id_cases"
        ),
    )
    op.create_index("ix_case_handlers_case_id", "case_handlers", ["case_id"])
    op.create_index("ix_case_handlers_unit", "case_handlers", ["unit"])
    op.create_table(
        "case_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(24), nullable=True),
        sa.Column("to_state", sa.String(24), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_case_log"),
        sa.UniqueConstraint("case_id", "version", name="uq_case_log_case_id_version"),
    )
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("clock", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("due", TS, nullable=False),
        sa.Column("target", sa.String(16), nullable=True),
        sa.Column("swept_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_events"),
        sa.UniqueConstraint("key", name="uq_case_events_key"),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])
    op.create_table(
        "calendar_days",
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("is_workday", sa.Boolean, nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("date", name="pk_calendar_days"),
    )

    # the 办理轨迹 is append-only, whatever code path touches it
    if _pg():
        op.execute(
            "CREATE FUNCTION case_log_append_only() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{_MESSAGE}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER case_log_append_only BEFORE UPDATE OR DELETE ON case_log "
            "FOR EACH ROW EXECUTE FUNCTION case_log_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER case_log_no_{what.lower()} BEFORE {what} ON case_log "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
            )

    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("scope_level", sa.String(16), nullable=True))
        batch.add_column(sa.Column("scope_code", sa.String(64), nullable=True))
        batch.drop_constraint("ck_api_keys_role", type_="check")
        batch.create_check_constraint("ck_api_keys_role", _NEW_ROLES)


def downgrade() -> None:
    op.execute("DELETE FROM api_keys WHERE role = 'staff'")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("ck_api_keys_role", type_="check")
        batch.create_check_constraint("ck_api_keys_role", _OLD_ROLES)
        batch.drop_column("scope_code")
        batch.drop_column("scope_level")
    for name in ("calendar_days", "case_events", "case_log", "case_handlers", "case_deadlines"):
        op.drop_table(name)
    op.drop_table("cases")
    if _pg():
        op.execute("DROP FUNCTION IF EXISTS case_log_append_only()")
