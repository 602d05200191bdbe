"""Pydantic models of the HTTP API (``XBase`` / ``XCreate`` / ``XPublic`` families).

Personal data (staff names and phones, residents and their flags) only appear in
fields that are ``None`` for roles not allowed to see them; the routes fill them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AdminRef",
    "CommunityRef",
    "GridBase",
    "GridPublic",
    "StaffMember",
    "StaffPublic",
    "NearbyBuilding",
    "Resident",
    "NearbyPublic",
    "LocateQuery",
    "LocatePublic",
    "BatchPoint",
    "BatchRequest",
    "BatchRow",
    "BatchPublic",
    "ApiKeyBase",
    "ApiKeyCreate",
    "ApiKeyPublic",
    "ApiKeyCreated",
    "ApiKeysPublic",
    "Problem",
]

CRS_HELP = "wgs84 | gcj02 (AMap, Tencent, WeChat) | bd09 (Baidu) | cgcs2000 | EPSG:nnnn"


class Problem(BaseModel):
    """An RFC 7807 problem (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


class AdminRef(BaseModel):
    """A sub-district (街道) or district (区): code and name."""

    code: str | None = None
    name: str | None = None


class CommunityRef(BaseModel):
    """A community (社区) with its 12-digit code."""

    community_id: str
    code: str | None = None
    name: str | None = None


class GridBase(BaseModel):
    """A grid's identity."""

    grid_code: str = Field(description="15-digit grid code (community code + sequence)")
    name: str | None = None


class GridPublic(GridBase):
    """A grid as answered by ``/locate``: code, name, 四至 and its community."""

    community_id: str | None = None
    households: int | None = None
    boundary_desc: str | None = Field(default=None, description="四至: the four-side boundary")
    plan_id: int


class StaffMember(BaseModel):
    """A grid chief (网格长) or worker (网格员) with contact (dispatcher and up)."""

    staff_id: str
    role: str
    name: str | None = None
    phone: str | None = None


class StaffPublic(BaseModel):
    """The people responsible for a grid."""

    chief: StaffMember | None = None
    workers: list[StaffMember] = Field(default_factory=list)


class NearbyBuilding(BaseModel):
    """A building within the search radius."""

    building_id: str
    name: str | None = None
    use: str | None = None
    households: int | None = None
    grid_code: str | None = None
    distance_m: float


class Resident(BaseModel):
    """A household near the incident, with its sensitive flags (dispatcher and up; audited)."""

    model_config = ConfigDict(extra="allow")

    household_id: str
    building_id: str
    unit: str | None = None
    floor: float | None = None
    persons: float | None = None
    elderly_living_alone: bool | None = None
    disabled: bool | None = None
    on_assistance: bool | None = None
    floating_population: bool | None = None
    unemployed: bool | None = None


class NearbyPublic(BaseModel):
    """Buildings and residents within ``radius_m`` of the point."""

    radius_m: float
    buildings: list[NearbyBuilding]
    residents: list[Resident] | None = None
    n_households: int


class LocateQuery(BaseModel):
    """The point as given and in WGS84."""

    lon: float
    lat: float
    crs: str
    lon_wgs84: float
    lat_wgs84: float


class LocatePublic(BaseModel):
    """Answer of ``GET /locate``."""

    query: LocateQuery
    status: Literal["inside", "on_boundary", "outside"] = Field(
        description="inside one grid, on a shared edge (see candidates), or outside every grid"
    )
    grid: GridPublic | None = Field(
        default=None, description="the grid of the point (primary one on a shared edge)"
    )
    on_boundary: bool
    candidates: list[GridPublic] = Field(
        default_factory=list, description="every grid touching the point, by code"
    )
    distance_to_boundary_m: float | None = None
    outside: bool = Field(description="true when the point lies in no grid")
    nearest: GridPublic | None = Field(
        default=None, description="for a point outside every grid: the nearest grid"
    )
    nearest_distance_m: float | None = None
    community: CommunityRef | None = None
    street: AdminRef | None = None
    district: AdminRef | None = None
    staff: StaffPublic | None = Field(
        default=None, description="chief and workers (dispatcher and up; null for viewers)"
    )
    nearby: NearbyPublic | None = None
    hint: str | None = Field(
        default=None,
        description="for a point outside every grid: a likely mistake (lon/lat swapped, "
        "GCJ-02 or BD-09 coordinates sent as WGS84, degrees sent with a projected crs)",
    )


class BatchPoint(BaseModel):
    """One point of a JSON batch."""

    id: str | int | None = None
    lon: float
    lat: float
    crs: str | None = None


class BatchRequest(BaseModel):
    """A JSON batch: points, and the CRS of those without their own."""

    crs: str = "wgs84"
    points: list[BatchPoint]


class BatchRow(BaseModel):
    """One answer of ``POST /locate/batch`` (JSON)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    lon: float | None = None
    lat: float | None = None
    status: str
    grid_code: str | None = None
    grid_name: str | None = None
    plan_id: int | None = None
    on_boundary: bool = False
    candidates: list[str] = Field(default_factory=list)
    distance_to_boundary_m: float | None = None
    nearest_grid: str | None = None
    nearest_distance_m: float | None = None
    community_id: str | None = None
    community_name: str | None = None
    street: str | None = None
    district: str | None = None
    chief_name: str | None = None
    chief_phone: str | None = None
    workers: str | None = None
    error: str | None = None


class BatchPublic(BaseModel):
    """Answer of ``POST /locate/batch`` (JSON)."""

    count: int
    located: int
    on_boundary: int
    outside: int
    errors: int
    results: list[BatchRow]


class ApiKeyBase(BaseModel):
    """What every key has: a name and a role."""

    name: str = Field(min_length=1, max_length=200, description="who or what uses the key")
    role: Literal["viewer", "staff", "auditor", "dispatcher", "planner", "admin"]


class ApiKeyCreate(ApiKeyBase):
    """Body of ``POST /keys``."""

    scope: str | None = Field(
        default=None,
        description="org unit the key is bound to, LEVEL:CODE (grid:320104001001001, "
        "community:C0001, subdistrict:320104001, department:城管); required for staff",
    )
    expires_at: str | None = Field(
        default=None,
        max_length=40,
        description="when the key stops working: a date (2027-06-30, the end of that day, "
        "Beijing time), a date-time with offset, or a number of days (90d); never by default",
    )


class ApiKeyPublic(ApiKeyBase):
    """A key as listed (never the token nor its hash)."""

    id: int
    prefix: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None
    active: bool
    scope_level: str | None = None
    scope_code: str | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = Field(default=None, description="to the minute")
    rotated_at: datetime | None = None


class ApiKeyCreated(ApiKeyPublic):
    """A new key with its token, shown only in this answer."""

    token: str = Field(description="the API key; store it now, it is never shown again")


class ApiKeysPublic(BaseModel):
    """A list of keys."""

    data: list[ApiKeyPublic]
    count: int
