"""initial schema: layers, plans, grids, memberships, assignments, audit log

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LAYERS = ("communities", "buildings", "households", "roads", "barriers", "compounds", "staff")
SPATIAL = (*LAYERS, "admin_units", "grids")


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _geom(kind: str = "GEOMETRY"):
    if _pg():
        return Geometry(kind, srid=4326, spatial_index=False)
    return sa.LargeBinary()


def _json():
    return JSONB() if _pg() else sa.JSON()


TS = sa.DateTime(timezone=True)


def _layer_cols() -> list[sa.Column]:
    return [
        sa.Column("area_id", sa.String(64), nullable=False),
        sa.Column("import_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("attrs", _json(), nullable=True),
    ]


def _layer_constraints(table: str) -> list:
    # import_id is provenance only: no foreign key, whose per-row trigger slows bulk imports
    return []


def upgrade() -> None:
    if _pg():
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    op.create_table(
        "imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("crs", sa.Text, nullable=False),
        sa.Column("community_ids", _json(), nullable=False),
        sa.Column("schema", _json(), nullable=False),
        sa.Column("counts", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imports"),
    )
    op.create_table(
        "admin_units",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("parent_code", sa.String(32)),
        sa.Column("geom", _geom(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_admin_units"),
        sa.UniqueConstraint("level", "code", name="uq_admin_units_level_code"),
    )
    op.create_table(
        "communities",
        sa.Column("community_id", sa.String(64), nullable=False),
        sa.Column("import_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("code", sa.String(32)),
        sa.Column("street", sa.Text),
        sa.Column("street_code", sa.String(32)),
        sa.Column("district", sa.Text),
        sa.Column("district_code", sa.String(32)),
        sa.Column("attrs", _json(), nullable=True),
        sa.Column("geom", _geom(), nullable=False),
        sa.PrimaryKeyConstraint("community_id", name="pk_communities"),
        *_layer_constraints("communities"),
    )
    op.create_table(
        "buildings",
        sa.Column("building_id", sa.String(64), nullable=False),
        *_layer_cols(),
        sa.Column("community_id", sa.String(64)),
        sa.Column("households", sa.Integer),
        sa.Column("households_estimated", sa.Boolean),
        sa.Column("levels", sa.Float),
        sa.Column("use", sa.String(32)),
        sa.Column("name", sa.Text),
        sa.Column("compound_id", sa.String(64)),
        sa.Column("geom", _geom(), nullable=False),
        sa.PrimaryKeyConstraint("building_id", name="pk_buildings"),
        *_layer_constraints("buildings"),
    )
    op.create_table(
        "households",
        sa.Column("household_id", sa.String(64), nullable=False),
        *_layer_cols(),
        sa.Column("building_id", sa.String(64)),
        sa.Column("unit", sa.String(64)),
        sa.Column("floor", sa.Float),
        sa.Column("persons", sa.Float),
        sa.Column("elderly_living_alone", sa.Boolean),
        sa.Column("disabled", sa.Boolean),
        sa.Column("on_assistance", sa.Boolean),
        sa.Column("floating_population", sa.Boolean),
        sa.Column("unemployed", sa.Boolean),
        sa.Column("geom", _geom("POINT"), nullable=True),
        sa.PrimaryKeyConstraint("household_id", name="pk_households"),
        *_layer_constraints("households"),
    )
    op.create_index("ix_households_building_id", "households", ["building_id"])
    op.create_table(
        "roads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *_layer_cols(),
        sa.Column("name", sa.Text),
        sa.Column("class", sa.String(64)),
        sa.Column("geom", _geom(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roads"),
        *_layer_constraints("roads"),
    )
    op.create_table(
        "barriers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *_layer_cols(),
        sa.Column("kind", sa.String(64)),
        sa.Column("geom", _geom(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_barriers"),
        *_layer_constraints("barriers"),
    )
    op.create_table(
        "compounds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *_layer_cols(),
        sa.Column("compound_id", sa.String(64)),
        sa.Column("name", sa.Text),
        sa.Column("geom", _geom(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_compounds"),
        *_layer_constraints("compounds"),
    )
    op.create_table(
        "staff",
        sa.Column("staff_id", sa.String(64), nullable=False),
        *_layer_cols(),
        sa.Column("name", sa.Text),
        sa.Column("phone", sa.String(64)),
        sa.Column("home_building_id", sa.String(64)),
        sa.Column("can_be_chief", sa.Boolean),
        sa.Column("max_posts", sa.Integer),
        sa.Column("current_grid", sa.String(64)),
        sa.Column("current_role", sa.String(32)),
        sa.Column("geom", _geom("POINT"), nullable=True),
        sa.PrimaryKeyConstraint("staff_id", name="pk_staff"),
        *_layer_constraints("staff"),
    )
    for layer in LAYERS[1:]:
        op.create_index(f"ix_{layer}_area_id", layer, ["area_id"])

    op.create_table(
        "plans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("area_key", sa.String(64), nullable=False),
        sa.Column("community_ids", _json(), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("params", _json(), nullable=False),
        sa.Column("crs", sa.Text, nullable=False),
        sa.Column("schema", _json(), nullable=False),
        sa.Column("report", _json(), nullable=True),
        sa.Column("n_grids", sa.Integer, nullable=False),
        sa.Column("households", sa.Integer, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("published_at", TS),
        sa.Column("archived_at", TS),
        sa.Column("parent_id", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["plans.id"], name="fk_plans_parent_id_plans", ondelete="SET NULL"
        ),
        sa.UniqueConstraint("area_key", "number", name="uq_plans_area_key_number"),
        sa.CheckConstraint("status IN ('draft', 'published', 'archived')", name="ck_plans_status"),
    )
    op.create_index("ix_plans_area_key", "plans", ["area_key"])
    op.create_index("ix_plans_parent_id", "plans", ["parent_id"])
    # Exactly one published plan per area, enforced by the database on both backends.
    op.create_index(
        "uq_plans_one_published_per_area",
        "plans",
        ["area_key"],
        unique=True,
        postgresql_where=sa.text("status = 'published'"),
        sqlite_where=sa.text("status = 'published'"),
    )
    op.create_table(
        "plan_communities",
        sa.Column("plan_id", sa.Integer, nullable=False),
        sa.Column("community_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "community_id", name="pk_plan_communities"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_plan_communities_plan_id_plans", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_plan_communities_community_id", "plan_communities", ["community_id"])
    op.create_table(
        "grids",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("grid_code", sa.String(64), nullable=False),
        sa.Column("community_id", sa.String(64)),
        sa.Column("name", sa.Text),
        sa.Column("households", sa.Integer),
        sa.Column("persons", sa.Float),
        sa.Column("n_buildings", sa.Integer),
        sa.Column("boundary_desc", sa.Text),
        sa.Column("locked", sa.Boolean),
        sa.Column("figures", _json(), nullable=True),
        sa.Column("geom", _geom(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_grids"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_grids_plan_id_plans", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("plan_id", "grid_code", name="uq_grids_plan_id_grid_code"),
    )
    op.create_table(
        "plan_buildings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("building_id", sa.String(64), nullable=False),
        sa.Column("grid_code", sa.String(64)),
        sa.Column("households", sa.Integer),
        sa.Column("part", sa.String(128)),
        sa.Column("attrs", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_plan_buildings"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_plan_buildings_plan_id_plans", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_plan_buildings_plan_building", "plan_buildings", ["plan_id", "building_id"])
    op.create_table(
        "plan_households",
        sa.Column("plan_id", sa.Integer, nullable=False),
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("building_id", sa.String(64)),
        sa.Column("grid_code", sa.String(64)),
        sa.Column("attrs", _json(), nullable=True),
        sa.PrimaryKeyConstraint("plan_id", "household_id", name="pk_plan_households"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_plan_households_plan_id_plans", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("staff_id", sa.String(64)),
        sa.Column("grid_code", sa.String(64)),
        sa.Column("role", sa.String(32)),
        sa.Column("attrs", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_assignments"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_assignments_plan_id_plans", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_assignments_plan_id", "assignments", ["plan_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("before", _json(), nullable=True),
        sa.Column("after", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id"])

    if _pg():  # GiST indexes; SQLite indexes geometry in memory with shapely.STRtree
        for table in SPATIAL:
            op.create_index(f"ix_{table}_geom", table, ["geom"], postgresql_using="gist")


def downgrade() -> None:
    for table in (
        "audit_log",
        "assignments",
        "plan_households",
        "plan_buildings",
        "grids",
        "plan_communities",
        "plans",
        "staff",
        "compounds",
        "barriers",
        "roads",
        "households",
        "buildings",
        "communities",
        "admin_units",
        "imports",
    ):
        op.drop_table(table)
