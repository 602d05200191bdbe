"""Plan history: lineage, edit log, and the difference between two plans.

:func:`diff_plans` compares two stored plans grid by grid (by grid code) and
unit by unit: households when both plans carry household memberships,
buildings (or building parts) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.db.audit import list_audit
from gridmap.db.bulk import decode_geoms, geom_select, rows_frame
from gridmap.db.models import GridRow, PlanBuilding, PlanHousehold, PlanRow, table
from gridmap.db.plans import PlanRecord, _record, _row
from gridmap.db.session import Store, transaction

__all__ = ["PlanDiff", "diff_plans", "plan_history", "plan_lineage"]

_P = table(PlanRow)
_G = table(GridRow)
_PB = table(PlanBuilding)
_PH = table(PlanHousehold)

#: Two grid outlines closer than this (degrees, ~1 mm) count as the same geometry.
GEOMETRY_TOLERANCE_DEG = 1e-8


@dataclass(frozen=True)
class PlanDiff:
    """What changed from plan ``a`` to plan ``b``.

    Attributes
    ----------
    a, b : int
        Plan ids compared.
    unit : str
        ``"households"`` or ``"buildings"``: what :attr:`moved` counts.
    grids_added : pandas.DataFrame
        Grids only in ``b``: ``grid_code, community_id, households``.
    grids_removed : pandas.DataFrame
        Grids only in ``a``: same columns.
    grids_changed : pandas.DataFrame
        Grids in both whose geometry or membership differ: ``grid_code,
        geometry_changed, membership_changed, households_a, households_b``.
    moved : pandas.DataFrame
        Units whose grid differs: ``unit_id, building_id, grid_a, grid_b``
        (``None`` when absent from one plan).
    """

    a: int
    b: int
    unit: str
    grids_added: pd.DataFrame
    grids_removed: pd.DataFrame
    grids_changed: pd.DataFrame
    moved: pd.DataFrame

    @property
    def unchanged(self) -> bool:
        """True when the two plans have the same grids and memberships."""
        return not (
            len(self.grids_added)
            or len(self.grids_removed)
            or len(self.grids_changed)
            or len(self.moved)
        )

    def summary(self) -> dict[str, Any]:
        """Return the counts (grids added/removed/changed, units moved)."""
        return {
            "a": self.a,
            "b": self.b,
            "unit": self.unit,
            "grids_added": len(self.grids_added),
            "grids_removed": len(self.grids_removed),
            "grids_changed": len(self.grids_changed),
            "moved": len(self.moved),
        }


def _grids(s: Session, plan_id: int) -> pd.DataFrame:
    backend = s.get_bind().dialect.name
    res = s.execute(
        sa.select(
            _G.c.grid_code, _G.c.community_id, _G.c.households, geom_select(_G.c.geom, backend)
        ).where(_G.c.plan_id == int(plan_id))
    )
    df = rows_frame(res.all(), list(res.keys()))
    df["geom"] = decode_geoms(df["geom"].tolist()) if len(df) else []
    return df.set_index("grid_code", drop=False)


def _members(s: Session, plan_id: int, unit: str) -> pd.DataFrame:
    if unit == "households":
        q = sa.select(
            _PH.c.household_id.label("unit_id"), _PH.c.building_id, _PH.c.grid_code
        ).where(_PH.c.plan_id == int(plan_id))
    else:
        q = sa.select(_PB.c.building_id, _PB.c.part, _PB.c.grid_code).where(
            _PB.c.plan_id == int(plan_id)
        )
    res = s.execute(q)
    df = rows_frame(res.all(), list(res.keys()))
    if unit != "households":
        part = df["part"].astype(object).where(df["part"].notna(), None)
        df["unit_id"] = [
            b if p is None else f"{b}#{p}" for b, p in zip(df["building_id"], part, strict=True)
        ]
        df = df.drop(columns="part")
    return df[["unit_id", "building_id", "grid_code"]]


def diff_plans(target: Store | Session, a: int, b: int) -> PlanDiff:
    """Compare two stored plans: grids added/removed/changed and units that change grid.

    Grids are matched by grid code. A grid *changed* when its outline differs
    (some vertex of one outline lies more than ~1 mm from the other; the same
    outline drawn with other vertices is not a change) or its set of buildings
    differs. Units are households when both plans have household memberships,
    else buildings (``id#part`` for parts of split buildings).

    Parameters
    ----------
    target : Store or Session
        The store.
    a, b : int
        Plan ids (``a`` the older one, usually).

    Returns
    -------
    PlanDiff

    Raises
    ------
    NotFoundError
        Either id is unknown.
    """
    with transaction(target) as s:
        _row(s, a)
        _row(s, b)
        has_h = [
            s.execute(sa.select(sa.func.count()).where(_PH.c.plan_id == int(p))).scalar_one() > 0
            for p in (a, b)
        ]
        unit = "households" if all(has_h) else "buildings"
        ga, gb = _grids(s, a), _grids(s, b)
        ma, mb = _members(s, a, unit), _members(s, b, unit)
        ba, bb = _members(s, a, "buildings"), _members(s, b, "buildings")
    cols = ["grid_code", "community_id", "households"]
    added = gb.loc[sorted(set(gb.index) - set(ga.index)), cols].reset_index(drop=True)
    removed = ga.loc[sorted(set(ga.index) - set(gb.index)), cols].reset_index(drop=True)
    common = sorted(set(ga.index) & set(gb.index))
    geo_a = ga.loc[common, "geom"].to_numpy()
    geo_b = gb.loc[common, "geom"].to_numpy()
    same_geom = shapely.equals_exact(
        shapely.normalize(geo_a), shapely.normalize(geo_b), tolerance=GEOMETRY_TOLERANCE_DEG
    ) | (shapely.equals(geo_a, geo_b) if len(common) else np.array([], bool))
    # Same outline drawn with other vertices (an extra point on a straight edge, nanometre
    # noise from a re-run on reprojected input): no vertex of either outline lies farther
    # than the tolerance from the other outline.
    other = np.flatnonzero(~np.asarray(same_geom, dtype=bool))
    if other.size:
        d = np.maximum(
            shapely.hausdorff_distance(geo_a[other], geo_b[other]),
            shapely.hausdorff_distance(geo_b[other], geo_a[other]),
        )
        same_geom = np.asarray(same_geom, dtype=bool).copy()
        same_geom[other] = d <= GEOMETRY_TOLERANCE_DEG
    sets_a = ba.groupby("grid_code")["unit_id"].agg(frozenset)
    sets_b = bb.groupby("grid_code")["unit_id"].agg(frozenset)
    empty: frozenset[str] = frozenset()
    same_members = np.array(
        [sets_a.get(c, empty) == sets_b.get(c, empty) for c in common], dtype=bool
    )
    changed_mask = ~np.asarray(same_geom, dtype=bool) | ~same_members
    changed = pd.DataFrame(
        {
            "grid_code": common,
            "geometry_changed": ~np.asarray(same_geom, dtype=bool),
            "membership_changed": ~same_members,
            "households_a": ga.loc[common, "households"].to_numpy(),
            "households_b": gb.loc[common, "households"].to_numpy(),
        }
    )[changed_mask].reset_index(drop=True)
    m = ma.merge(mb, on="unit_id", how="outer", suffixes=("_a", "_b"))
    ga_code = m["grid_code_a"].astype(object).where(m["grid_code_a"].notna(), None)
    gb_code = m["grid_code_b"].astype(object).where(m["grid_code_b"].notna(), None)
    diff = np.array([x != y for x, y in zip(ga_code, gb_code, strict=True)], dtype=bool)
    # a unit that only one plan places counts when the other plan covers its community (it was
    # left out or taken in); outside the other plan's communities it is not compared at all
    comm_a = ga["community_id"].astype(object)
    comm_b = gb["community_id"].astype(object)
    covered_a, covered_b = set(comm_a), set(comm_b)
    only_a = ga_code.notna() & gb_code.isna()
    only_b = gb_code.notna() & ga_code.isna()
    diff &= ~(only_a & ~ga_code.map(comm_a).isin(covered_b)).to_numpy()
    diff &= ~(only_b & ~gb_code.map(comm_b).isin(covered_a)).to_numpy()
    bid = m["building_id_a"].where(m["building_id_a"].notna(), m["building_id_b"])
    moved = (
        pd.DataFrame(
            {
                "unit_id": m["unit_id"].to_numpy(),
                "building_id": bid.to_numpy(),
                "grid_a": ga_code.to_numpy(),
                "grid_b": gb_code.to_numpy(),
            }
        )[diff]
        .sort_values("unit_id", kind="stable")
        .reset_index(drop=True)
    )
    return PlanDiff(
        a=int(a),
        b=int(b),
        unit=unit,
        grids_added=added,
        grids_removed=removed,
        grids_changed=changed,
        moved=moved,
    )


def plan_history(target: Store | Session, plan_id: int) -> pd.DataFrame:
    """Return the audit rows of a plan (create, update, publish, archive …), oldest first.

    Raises
    ------
    NotFoundError
        Unknown ``plan_id``.
    """
    with transaction(target) as s:
        _row(s, plan_id)
        return list_audit(s, entity="plan", entity_id=plan_id)


def plan_lineage(target: Store | Session, plan_id: int) -> list[PlanRecord]:
    """Return the plan and its ancestors (``parent_id`` chain), newest first.

    Raises
    ------
    NotFoundError
        Unknown ``plan_id``.
    """
    out: list[PlanRecord] = []
    seen: set[int] = set()
    with transaction(target) as s:
        pid: int | None = int(plan_id)
        while pid is not None and pid not in seen:
            seen.add(pid)
            rec = _record(_row(s, pid))
            out.append(rec)
            pid = rec.parent_id
    return out
