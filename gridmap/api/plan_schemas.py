"""Request and response models of the plan routes (``/plans``).

The edit body is a discriminated union on ``op``: one model per operation of
:mod:`gridmap.partition.edit`, so the OpenAPI document lists each one with
its own fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "PlanPublic",
    "PlansPublic",
    "PlanDetail",
    "PlanCreate",
    "JobProgress",
    "JobPublic",
    "MoveBuildingsEdit",
    "MergeEdit",
    "SplitEdit",
    "LockEdit",
    "UnlockEdit",
    "RepartitionEdit",
    "RestaffEdit",
    "PlanEdit",
    "Violation",
    "EditPublic",
    "PlanDiffPublic",
]


_ID_MAX = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
_MAX_HOUSEHOLDS = 10**7
#: A random seed (numpy takes non-negative integers).
Seed = Annotated[int, Field(ge=0, le=2**63 - 1)]
_GridCount = Annotated[int, Field(ge=1, le=100_000)]
#: Grids wanted: one number for every community, or one per community id.
NGrids = _GridCount | dict[str, _GridCount]


class PlanPublic(BaseModel):
    """A stored plan's metadata; ``version`` is also the ``ETag``."""

    id: int
    number: int
    version: int
    status: str
    community_ids: list[str]
    name: str | None = None
    author: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None = None
    archived_at: datetime | None = None
    parent_id: int | None = None
    n_grids: int
    households: int
    params: dict[str, Any] = Field(default_factory=dict)


class PlansPublic(BaseModel):
    """A list of plans."""

    data: list[PlanPublic]
    count: int


class PlanDetail(PlanPublic):
    """A plan with its quality figures (no personal data)."""

    overall: dict[str, Any] = Field(default_factory=dict)
    communities: list[dict[str, Any]] = Field(default_factory=list)
    grids: list[dict[str, Any]] = Field(default_factory=list)


class PlanCreate(BaseModel):
    """Run the partitioner on stored layers (a background job)."""

    model_config = ConfigDict(extra="forbid")

    community_ids: list[str] | None = Field(
        None,
        min_length=1,
        description="Communities to partition (default: every stored community).",
    )
    min_households: int = Field(200, ge=0, le=_MAX_HOUSEHOLDS)
    max_households: int = Field(500, gt=0, le=_MAX_HOUSEHOLDS)
    target: float | None = Field(None, gt=0, le=_MAX_HOUSEHOLDS, allow_inf_nan=False)
    n_grids: NGrids | None = None
    seed: Seed | None = 0
    name: str | None = Field(None, max_length=200)
    parent_id: int | None = Field(None, ge=1, le=_ID_MAX)

    @model_validator(mode="after")
    def _band(self) -> PlanCreate:
        if self.min_households > self.max_households:
            raise ValueError(
                f"min_households ({self.min_households}) is above max_households "
                f"({self.max_households}); the band is [min, max]"
            )
        return self


class JobProgress(BaseModel):
    """Units of work done (communities partitioned) out of ``total``."""

    done: int
    total: int


class JobPublic(BaseModel):
    """A background job: poll ``GET /plans/jobs/{id}`` until ``done`` or ``failed``."""

    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    progress: JobProgress
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MoveBuildingsEdit(_Edit):
    """Move buildings, with their land and households, to another grid of their community."""

    op: Literal["move_buildings"]
    building_ids: list[str] = Field(min_length=1)
    to_grid: str


class MergeEdit(_Edit):
    """Merge grids of one community into the first one named (it keeps its code)."""

    op: Literal["merge"]
    codes: list[str] = Field(min_length=2)


class SplitEdit(_Edit):
    """Split a grid along ``line`` (GeoJSON LineString, WGS84) or by re-partitioning it."""

    op: Literal["split"]
    code: str
    line: dict[str, Any] | None = Field(
        None,
        description="GeoJSON LineString in WGS84 lon/lat; without it the partitioner splits "
        "the grid into n_grids grids.",
    )
    n_grids: int | None = Field(None, ge=2, le=1000)
    cut: Literal["refuse", "larger"] = "refuse"
    seed: Seed | None = 0


class LockEdit(_Edit):
    """Lock grids: they refuse other edits and are kept by a re-partition."""

    op: Literal["lock"]
    codes: list[str] = Field(min_length=1)


class UnlockEdit(_Edit):
    """Unlock grids."""

    op: Literal["unlock"]
    codes: list[str] = Field(min_length=1)


class RepartitionEdit(_Edit):
    """Re-run the partitioner on the unlocked rest (locked grids kept exactly)."""

    op: Literal["repartition"]
    community_ids: list[str] | None = Field(None, min_length=1)
    locked: list[str] | None = Field(
        None, description="Grid codes to keep (default: the grids flagged locked)."
    )
    n_grids: NGrids | None = None
    seed: Seed | None = 0


class RestaffEdit(_Edit):
    """Re-run staffing on the stored roster, keeping serving people where possible."""

    op: Literal["restaff"]
    workers: int | None = Field(None, ge=0, le=50)
    workers_large: int | None = Field(None, ge=0, le=50)
    max_distance: float | None = Field(None, gt=0, allow_inf_nan=False)


PlanEdit = Annotated[
    MoveBuildingsEdit
    | MergeEdit
    | SplitEdit
    | LockEdit
    | UnlockEdit
    | RepartitionEdit
    | RestaffEdit,
    Field(discriminator="op"),
]


class Violation(BaseModel):
    """One broken rule: ``severity`` ``error`` refuses the edit, ``warning`` does not."""

    grid_code: str | None = None
    community_id: str | None = None
    check: str
    severity: Literal["error", "warning"]
    message: str


class EditPublic(BaseModel):
    """The outcome of an applied edit: the plan's new version and figures."""

    plan: PlanPublic
    op: str
    ok: bool
    affected: list[str]
    removed: list[str]
    violations: list[Violation]
    notes: list[str]
    figures: dict[str, Any]
    staffing: dict[str, Any] | None = None


class PlanDiffPublic(BaseModel):
    """What changed from plan ``a`` to plan ``b`` (buildings, no personal data)."""

    a: int
    b: int
    summary: dict[str, Any]
    grids_added: list[dict[str, Any]]
    grids_removed: list[dict[str, Any]]
    grids_changed: list[dict[str, Any]]
    moved_buildings: list[dict[str, Any]]
