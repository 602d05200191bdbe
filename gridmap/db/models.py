"""SQLAlchemy models of the gridmap store, identical on PostGIS and SQLite.

Every geometry is stored in WGS84 (SRID 4326). On PostgreSQL a :class:`Geom`
column is a GeoAlchemy2 ``geometry(<type>, 4326)`` with a GiST index (created by
the migration); on SQLite it is a WKB ``BLOB`` and spatial work happens in
shapely. In Python both sides see shapely geometries, so repository code is the
same for both backends.

Tables
------
``imports``                one row per layer import (author, projected CRS, column schema)
``admin_units``            districts (区) and sub-districts (街道): code, name, outline
``communities``            社区 with codes and names; the unit imports are keyed by
``buildings`` ``households`` ``staff`` ``roads`` ``barriers`` ``compounds``
                           layer rows; ``area_id`` is the community an import replaces them by
``plans``                  number, version (optimistic lock), status, params, report …
``plan_communities``       the communities a plan covers (its *area*)
``grids``                  one polygon per grid of a plan, with 四至 and figures
``plan_buildings`` ``plan_households``  membership building/household → grid
``assignments``            staff → grid with a role
``audit_log``              who did what when, with before/after JSON; append-only (triggers)
``audit_households``       the households an audited read disclosed
``audit_archives``         retention archives (file, SHA-256, rows up to an id)
``api_keys``               API keys: public prefix, SHA-256 of the token, role, scope, expiry
``sessions``               browser sessions (hash of the cookie's id, key, role, expiry)
``rate_limits``            counters and lockouts shared by every server process
``cases``                  事件工单: ticket, reporter (personal data), point, frozen placement,
                           status, version (optimistic lock), deadlines, flags
``case_deadlines``         one row per policy clock of a case (absolute due + provisional)
``case_handlers``          lead and co-handlers (双向派单) and summoned departments (吹哨/报到)
``case_log``               办理轨迹, append-only (triggers refuse UPDATE and DELETE)
``case_events``            what the sweep wrote (warning, overdue, 催办, 督办, escalation);
                           the event key is unique, so a second sweep writes nothing
``calendar_days``          the working-day calendar (State Council notices), by date
``visit_records``          走访记录: who visited which household (or organisation) when, the
                           outcome, notes (personal data), follow-up and the case it opened
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column

__all__ = [
    "SRID",
    "PLAN_STATUSES",
    "Geom",
    "JSONType",
    "Base",
    "Import",
    "AdminUnit",
    "Community",
    "Building",
    "Household",
    "Road",
    "Barrier",
    "Compound",
    "Staff",
    "PlanRow",
    "PlanCommunity",
    "GridRow",
    "PlanBuilding",
    "PlanHousehold",
    "Assignment",
    "AuditLog",
    "AuditHousehold",
    "AuditArchive",
    "ApiKey",
    "SessionRow",
    "RateLimitRow",
    "CaseRow",
    "CaseDeadline",
    "CaseHandler",
    "CaseLog",
    "CaseEvent",
    "CalendarDayRow",
    "VisitRecordRow",
    "LAYER_TABLES",
    "utcnow",
    "table",
]

#: SRID of every stored geometry (WGS84 longitude/latitude).
SRID = 4326

#: Plan life cycle.
PLAN_STATUSES: tuple[str, ...] = ("draft", "published", "archived")

#: JSON column: ``json`` on PostgreSQL (not ``jsonb``, which re-orders object keys: a
#: report or a plan's parameters must come back as they went in), JSON text on SQLite.
JSONType = sa.JSON()


def table(model: type[Base]) -> sa.Table:
    """Return the :class:`sqlalchemy.Table` of a model (typed for Core statements).

    Examples
    --------
    >>> table(PlanRow).name
    'plans'
    """
    return cast(sa.Table, model.__table__)


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Geom(sa.types.TypeDecorator[Any]):
    """A geometry column: GeoAlchemy2 ``Geometry`` on PostgreSQL, WKB ``BLOB`` on SQLite.

    Values are shapely geometries in WGS84 on both sides. Pre-encoded values
    (``bytes`` WKB on SQLite, hex EWKB ``str`` on PostgreSQL) pass through
    unchanged, which is what the bulk writers use.

    Parameters
    ----------
    geometry_type : str
        ``"GEOMETRY"``, ``"POINT"``, ``"POLYGON"`` … (PostGIS type modifier).

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> from sqlalchemy.dialects import postgresql, sqlite
    >>> Geom("POINT").load_dialect_impl(postgresql.dialect())
    Geometry(geometry_type='POINT', srid=4326, ...)
    >>> Geom("POINT").load_dialect_impl(sqlite.dialect())
    LargeBinary()
    """

    impl = sa.LargeBinary
    cache_ok = True

    def __init__(self, geometry_type: str = "GEOMETRY") -> None:
        super().__init__()
        self.geometry_type = geometry_type

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        """Return the backend column type."""
        if dialect.name == "postgresql":
            # GeoAlchemy2 (~70 ms to import) only where PostGIS is: a SQLite store never needs it
            from geoalchemy2 import Geometry

            return dialect.type_descriptor(
                Geometry(self.geometry_type, srid=SRID, spatial_index=False)
            )
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Encode a shapely geometry (hex EWKB on PostgreSQL, WKB bytes on SQLite)."""
        if value is None or isinstance(value, bytes | str):
            return value
        if dialect.name == "postgresql":
            return "SRID=4326;" + shapely.to_wkb(value, hex=True)
        return shapely.to_wkb(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Decode to a shapely geometry."""
        if value is None:
            return None
        data = getattr(value, "data", value)  # geoalchemy2 WKBElement on PostgreSQL
        if isinstance(data, str):
            return shapely.from_wkb(data)
        return shapely.from_wkb(bytes(data))


class Base(DeclarativeBase):
    """Declarative base of every gridmap table."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


_TS = sa.DateTime(timezone=True)


class Import(Base):
    """One import of layers: who, when, which communities, in which projected CRS."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    author: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    crs: Mapped[str] = mapped_column(sa.Text)  # "EPSG:4549" or WKT
    community_ids: Mapped[Any] = mapped_column(JSONType)
    schema: Mapped[Any] = mapped_column(JSONType)  # layer -> [[column, dtype], ...]
    counts: Mapped[Any] = mapped_column(JSONType)


class AdminUnit(Base):
    """A district (区) or sub-district (街道); its outline is the union of its communities."""

    __tablename__ = "admin_units"
    __table_args__ = (sa.UniqueConstraint("level", "code"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    level: Mapped[str] = mapped_column(sa.String(20))  # district | street
    code: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str | None] = mapped_column(sa.Text)
    parent_code: Mapped[str | None] = mapped_column(sa.String(32))
    geom: Mapped[Any] = mapped_column(Geom("GEOMETRY"), nullable=True)


class _LayerMixin:
    """Columns every stored layer row has."""

    area_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    import_id: Mapped[int] = mapped_column(sa.Integer)  # provenance; no FK (bulk speed)
    seq: Mapped[int] = mapped_column(sa.Integer)  # row order in its import
    attrs: Mapped[Any] = mapped_column(JSONType, nullable=True)  # non-canonical columns


class Community(Base):
    """A community (社区/村) polygon with its codes and names."""

    __tablename__ = "communities"

    community_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    import_id: Mapped[int] = mapped_column(sa.Integer)  # provenance; no FK (bulk speed)
    seq: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str | None] = mapped_column(sa.Text)
    code: Mapped[str | None] = mapped_column(sa.String(32))
    street: Mapped[str | None] = mapped_column(sa.Text)
    street_code: Mapped[str | None] = mapped_column(sa.String(32))
    district: Mapped[str | None] = mapped_column(sa.Text)
    district_code: Mapped[str | None] = mapped_column(sa.String(32))
    attrs: Mapped[Any] = mapped_column(JSONType, nullable=True)
    geom: Mapped[Any] = mapped_column(Geom("GEOMETRY"))


class Building(_LayerMixin, Base):
    """A building footprint with its household count."""

    __tablename__ = "buildings"

    building_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    community_id: Mapped[str | None] = mapped_column(sa.String(64))
    households: Mapped[int | None] = mapped_column(sa.Integer)
    households_estimated: Mapped[bool | None] = mapped_column(sa.Boolean)
    levels: Mapped[float | None] = mapped_column(sa.Float)
    use: Mapped[str | None] = mapped_column(sa.String(32))
    name: Mapped[str | None] = mapped_column(sa.Text)
    compound_id: Mapped[str | None] = mapped_column(sa.String(64))
    geom: Mapped[Any] = mapped_column(Geom("GEOMETRY"))


class Household(_LayerMixin, Base):
    """A household (personal data: the sensitive flags)."""

    __tablename__ = "households"

    household_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    building_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    unit: Mapped[str | None] = mapped_column(sa.String(64))
    floor: Mapped[float | None] = mapped_column(sa.Float)
    persons: Mapped[float | None] = mapped_column(sa.Float)
    elderly_living_alone: Mapped[bool | None] = mapped_column(sa.Boolean)
    disabled: Mapped[bool | None] = mapped_column(sa.Boolean)
    on_assistance: Mapped[bool | None] = mapped_column(sa.Boolean)
    floating_population: Mapped[bool | None] = mapped_column(sa.Boolean)
    unemployed: Mapped[bool | None] = mapped_column(sa.Boolean)
    geom: Mapped[Any] = mapped_column(Geom("POINT"), nullable=True)


class Road(_LayerMixin, Base):
    """A road centre line."""

    __tablename__ = "roads"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(sa.Text)
    road_class: Mapped[str | None] = mapped_column("class", sa.String(64))
    geom: Mapped[Any] = mapped_column(Geom("GEOMETRY"))


class Barrier(_LayerMixin, Base):
    """A wall, fence or water line."""

    __tablename__ = "barriers"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str | None] = mapped_column(sa.String(64))
    geom: Mapped[Any] = mapped_column(Geom("GEOMETRY"))


class Compound(_LayerMixin, Base):
    """A residential compound (小区)."""

    __tablename__ = "compounds"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    compound_id: Mapped[str | None] = mapped_column(sa.String(64))
    name: Mapped[str | None] = mapped_column(sa.Text)
    geom: Mapped[Any] = mapped_column(Geom("GEOMETRY"))


class Staff(_LayerMixin, Base):
    """A staff member (personal data: name, phone, home)."""

    __tablename__ = "staff"

    staff_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.Text)
    phone: Mapped[str | None] = mapped_column(sa.String(64))
    home_building_id: Mapped[str | None] = mapped_column(sa.String(64))
    can_be_chief: Mapped[bool | None] = mapped_column(sa.Boolean)
    max_posts: Mapped[int | None] = mapped_column(sa.Integer)
    current_grid: Mapped[str | None] = mapped_column(sa.String(64))
    current_role: Mapped[str | None] = mapped_column(sa.String(32))
    geom: Mapped[Any] = mapped_column(Geom("POINT"), nullable=True)


class PlanRow(Base):
    """A plan: its number within its area, edit version, status and parameters."""

    __tablename__ = "plans"
    __table_args__ = (
        sa.UniqueConstraint("area_key", "number"),
        sa.CheckConstraint("status IN ('draft', 'published', 'archived')", name="status"),
        sa.Index(
            "uq_plans_one_published_per_area",
            "area_key",
            unique=True,
            postgresql_where=sa.text("status = 'published'"),
            sqlite_where=sa.text("status = 'published'"),
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(sa.Integer)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    area_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    community_ids: Mapped[Any] = mapped_column(JSONType)
    name: Mapped[str | None] = mapped_column(sa.Text)
    params: Mapped[Any] = mapped_column(JSONType)
    crs: Mapped[str] = mapped_column(sa.Text)
    schema: Mapped[Any] = mapped_column(JSONType)
    report: Mapped[Any] = deferred(mapped_column(JSONType, nullable=True))
    n_grids: Mapped[int] = mapped_column(sa.Integer)
    households: Mapped[int] = mapped_column(sa.Integer)
    author: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(_TS)
    archived_at: Mapped[datetime | None] = mapped_column(_TS)
    parent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("plans.id", ondelete="SET NULL"), index=True
    )


class PlanCommunity(Base):
    """A community covered by a plan."""

    __tablename__ = "plan_communities"

    plan_id: Mapped[int] = mapped_column(
        sa.ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    community_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True, index=True)


class GridRow(Base):
    """A grid of a plan: polygon, code, name, 四至 and figures."""

    __tablename__ = "grids"
    __table_args__ = (sa.UniqueConstraint("plan_id", "grid_code"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(sa.Integer)
    grid_code: Mapped[str] = mapped_column(sa.String(64))
    community_id: Mapped[str | None] = mapped_column(sa.String(64))
    name: Mapped[str | None] = mapped_column(sa.Text)
    households: Mapped[int | None] = mapped_column(sa.Integer)
    persons: Mapped[float | None] = mapped_column(sa.Float)
    n_buildings: Mapped[int | None] = mapped_column(sa.Integer)
    boundary_desc: Mapped[str | None] = mapped_column(sa.Text)
    locked: Mapped[bool | None] = mapped_column(sa.Boolean)
    figures: Mapped[Any] = mapped_column(JSONType, nullable=True)
    geom: Mapped[Any] = mapped_column(Geom("GEOMETRY"))


class PlanBuilding(Base):
    """Building (or building part) → grid, per plan."""

    __tablename__ = "plan_buildings"
    __table_args__ = (sa.Index("ix_plan_buildings_plan_building", "plan_id", "building_id"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(sa.Integer)
    building_id: Mapped[str] = mapped_column(sa.String(64))
    grid_code: Mapped[str | None] = mapped_column(sa.String(64))
    households: Mapped[int | None] = mapped_column(sa.Integer)
    part: Mapped[str | None] = mapped_column(sa.String(128))
    attrs: Mapped[Any] = mapped_column(JSONType, nullable=True)


class PlanHousehold(Base):
    """Household → grid, per plan."""

    __tablename__ = "plan_households"

    plan_id: Mapped[int] = mapped_column(
        sa.ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    household_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.Integer)
    building_id: Mapped[str | None] = mapped_column(sa.String(64))
    grid_code: Mapped[str | None] = mapped_column(sa.String(64))
    attrs: Mapped[Any] = mapped_column(JSONType, nullable=True)


class Assignment(Base):
    """A staff post: staff → grid with a role (chief | worker …), per plan."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(sa.Integer)
    staff_id: Mapped[str | None] = mapped_column(sa.String(64))
    grid_code: Mapped[str | None] = mapped_column(sa.String(64))
    role: Mapped[str | None] = mapped_column(sa.String(32))
    attrs: Mapped[Any] = mapped_column(JSONType, nullable=True)


class AuditLog(Base):
    """Who did what, when, with the state before and after (JSON)."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(_TS, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(64))
    entity: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[str] = mapped_column(sa.String(64))
    before: Mapped[Any] = mapped_column(JSONType, nullable=True)
    after: Mapped[Any] = mapped_column(JSONType, nullable=True)
    grid_code: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)


class AuditHousehold(Base):
    """A household whose personal data an audited read disclosed (``audit_log`` row)."""

    __tablename__ = "audit_households"

    audit_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    household_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True, index=True)


class AuditArchive(Base):
    """A retention archive: audit rows up to ``upto_id`` written to ``path``, then deleted."""

    __tablename__ = "audit_archives"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    archived_at: Mapped[datetime] = mapped_column(_TS)
    actor: Mapped[str] = mapped_column(sa.String(200))
    upto_id: Mapped[int] = mapped_column(sa.Integer)
    cutoff: Mapped[datetime] = mapped_column(_TS)
    rows: Mapped[int] = mapped_column(sa.Integer)
    path: Mapped[str] = mapped_column(sa.Text)
    sha256: Mapped[str] = mapped_column(sa.String(64))


class ApiKey(Base):
    """An API key: public prefix, SHA-256 of the token, name and role (never the token)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        sa.CheckConstraint(
            "role IN ('viewer', 'staff', 'auditor', 'dispatcher', 'planner', 'admin')",
            name="role",
        ),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    scope_level: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    scope_code: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    rotated_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)


class SessionRow(Base):
    """A browser session: the SHA-256 of the cookie's random id, its key, role and expiry."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(_TS)
    last_seen_at: Mapped[datetime] = mapped_column(_TS)
    expires_at: Mapped[datetime] = mapped_column(_TS)
    ended_at: Mapped[datetime | None] = mapped_column(_TS)
    ended_why: Mapped[str | None] = mapped_column(sa.String(32))


class RateLimitRow(Base):
    """A fixed-window counter shared by every server process, with its lockout."""

    __tablename__ = "rate_limits"

    bucket: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(_TS)
    count: Mapped[int] = mapped_column(sa.Integer)
    locked_until: Mapped[datetime | None] = mapped_column(_TS)


class CaseRow(Base):
    """A case (事件工单); the placement is frozen at intake (grid, community, plan, version)."""

    __tablename__ = "cases"
    __table_args__ = (
        sa.UniqueConstraint("source", "ticket_no"),
        sa.Index("ix_cases_status_due", "status", "due_at"),
        # GET /cases?grid=…&status=…, newest first: the page and its count from the index
        sa.Index("ix_cases_grid_status_received", "grid_code", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    ticket_no: Mapped[str | None] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.String(32))
    category: Mapped[str] = mapped_column(sa.String(32), index=True)
    urgency: Mapped[str] = mapped_column(sa.String(16))
    hard: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    policy: Mapped[str] = mapped_column(sa.String(32))
    description: Mapped[str] = mapped_column(sa.Text)
    reporter_name: Mapped[str | None] = mapped_column(sa.Text)  # personal data
    reporter_phone: Mapped[str | None] = mapped_column(sa.String(64))  # personal data
    lon_given: Mapped[float | None] = mapped_column(sa.Float)
    lat_given: Mapped[float | None] = mapped_column(sa.Float)
    crs_given: Mapped[str | None] = mapped_column(sa.String(32))
    lon: Mapped[float | None] = mapped_column(sa.Float)
    lat: Mapped[float | None] = mapped_column(sa.Float)
    geom: Mapped[Any] = mapped_column(Geom("POINT"), nullable=True)
    address: Mapped[str | None] = mapped_column(sa.Text)
    grid_code: Mapped[str | None] = mapped_column(sa.String(64))  # ix_cases_grid_status_received
    community_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    subdistrict: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    plan_id: Mapped[int | None] = mapped_column(sa.Integer)
    plan_version: Mapped[int | None] = mapped_column(sa.Integer)
    received_at: Mapped[datetime] = mapped_column(_TS, index=True)
    status: Mapped[str] = mapped_column(sa.String(24))
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    level: Mapped[str] = mapped_column(sa.String(16), default="grid")
    satisfaction: Mapped[str | None] = mapped_column(sa.String(24))
    merged_into: Mapped[str | None] = mapped_column(sa.String(32))
    reopened: Mapped[int] = mapped_column(sa.Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column(_TS)  # the resolve deadline
    provisional: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    suggested_grid: Mapped[str | None] = mapped_column(sa.String(64))  # nearest, if unlocated
    reroute_grid: Mapped[str | None] = mapped_column(sa.String(64))  # covers it in a newer plan
    reroute_plan_id: Mapped[int | None] = mapped_column(sa.Integer)
    duplicate_of: Mapped[Any] = mapped_column(JSONType, nullable=True)  # nearest likely duplicates
    # all likely duplicates found at intake (NULL: duplicate_of is the full list)
    duplicate_count: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class CaseDeadline(Base):
    """A policy clock of a case: its absolute due time and whether the calendar is provisional."""

    __tablename__ = "case_deadlines"

    case_id: Mapped[int] = mapped_column(
        sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    clock: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(_TS)
    provisional: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class CaseHandler(Base):
    """A unit handling a case (lead or co-handler, own deadline) or a summoned department."""

    __tablename__ = "case_handlers"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # grid | community | subdistrict | department
    unit: Mapped[str] = mapped_column(sa.String(64), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))  # lead | co | summoned
    person: Mapped[str | None] = mapped_column(sa.String(64))
    due_at: Mapped[datetime | None] = mapped_column(_TS)
    due_provisional: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    summoned_at: Mapped[datetime | None] = mapped_column(_TS)
    signed_in_at: Mapped[datetime | None] = mapped_column(_TS)


class CaseLog(Base):
    """One line of a case's 办理轨迹; append-only (the database refuses UPDATE and DELETE)."""

    __tablename__ = "case_log"
    __table_args__ = (
        sa.UniqueConstraint("case_id", "version"),
        # performance figures: reply/answer times per case, read from the index alone
        sa.Index("ix_case_log_state", "case_id", "to_state", "at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(sa.Integer)  # no FK: the log outlives nothing
    version: Mapped[int] = mapped_column(sa.Integer)
    at: Mapped[datetime] = mapped_column(_TS)
    actor: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(24))
    unit: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(32))
    from_state: Mapped[str | None] = mapped_column(sa.String(24))
    to_state: Mapped[str] = mapped_column(sa.String(24))
    note: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[Any] = mapped_column(JSONType, nullable=True)


class CaseEvent(Base):
    """An event of the timer sweep, keyed by its ``key``: sweeps are idempotent.

    No surrogate id (revision 0010): one index fewer to grow per event; on SQLite the
    rows live in the key's B-tree (``WITHOUT ROWID``).
    """

    __tablename__ = "case_events"
    __table_args__ = {"sqlite_with_rowid": False}

    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    clock: Mapped[str] = mapped_column(sa.String(80))
    kind: Mapped[str] = mapped_column(sa.String(16))
    level: Mapped[int] = mapped_column(sa.Integer)
    at: Mapped[datetime] = mapped_column(_TS)
    due: Mapped[datetime] = mapped_column(_TS)
    target: Mapped[str | None] = mapped_column(sa.String(16))
    swept_at: Mapped[datetime] = mapped_column(_TS)


class CalendarDayRow(Base):
    """A day of the working-day calendar that differs from Monday–Friday (or is named)."""

    __tablename__ = "calendar_days"

    date: Mapped[Any] = mapped_column(sa.Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(sa.Boolean)
    name: Mapped[str | None] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(32))


class VisitRecordRow(Base):
    """A visit record (走访记录): who, when, which household or organisation, outcome, follow-up.

    ``grid_code`` and ``plan_id`` say where the target was when the visit was
    recorded; due lists follow the household (``household_id``), so a redrawn
    plan keeps the visits made. ``case_id`` is the case a follow-up opened.
    """

    __tablename__ = "visit_records"
    __table_args__ = (
        sa.Index("ix_visit_records_household_at", "household_id", "visited_at"),
        sa.Index("ix_visit_records_building_at", "building_id", "visited_at"),
        sa.Index("ix_visit_records_grid_at", "grid_code", "visited_at"),
        sa.Index("ix_visit_records_staff_at", "staff_id", "visited_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[str] = mapped_column(sa.String(64))
    visited_at: Mapped[datetime] = mapped_column(_TS)
    household_id: Mapped[str | None] = mapped_column(sa.String(64))
    building_id: Mapped[str | None] = mapped_column(sa.String(64))
    grid_code: Mapped[str | None] = mapped_column(sa.String(64))
    plan_id: Mapped[int | None] = mapped_column(sa.Integer)
    outcome: Mapped[str] = mapped_column(sa.String(16))
    notes: Mapped[str | None] = mapped_column(sa.Text)  # personal data
    follow_up: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    follow_up_text: Mapped[str | None] = mapped_column(sa.Text)  # personal data
    case_id: Mapped[int | None] = mapped_column(sa.Integer)  # no FK: cases are never deleted
    author: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


#: Stored layer name → its model (canonical order; communities first).
LAYER_TABLES: dict[str, type[Base]] = {
    "communities": Community,
    "buildings": Building,
    "households": Household,
    "roads": Road,
    "barriers": Barrier,
    "compounds": Compound,
    "staff": Staff,
}

# GiST indexes on every geometry column, PostgreSQL only (SQLite keeps WKB blobs and
# indexes in memory with shapely's STRtree).
_SPATIAL: list[type[Base]] = [*LAYER_TABLES.values(), AdminUnit, GridRow, CaseRow]
for _model in _SPATIAL:
    _table = table(_model)
    sa.Index(f"ix_{_table.name}_geom", _table.c.geom, postgresql_using="gist").ddl_if(
        dialect="postgresql"
    )
del _model, _table
