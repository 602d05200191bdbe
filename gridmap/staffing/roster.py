"""The roster: who may hold which post — residency, distances, availability, current posts."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.errors import CRSError, LayerError, StaffingError
from gridmap.partition.plan import Plan

__all__ = ["ROLES", "resident_grids"]


#: Post roles, in priority order.
ROLES: tuple[str, str] = ("chief", "worker")

_CHIEF, _WORKER = 0, 1  # post kinds, as indexes into ROLES
_TRUE = {"true", "t", "yes", "y", "1", "是"}
_FALSE = {"false", "f", "no", "n", "0", "否", ""}


def _as_bool(values: pd.Series, column: str, default: bool) -> np.ndarray:
    """Read a flag column (bool, 0/1 or yes/no text); nulls become ``default``."""
    out = np.full(len(values), default, dtype=bool)
    bad: list[Any] = []
    for k, v in enumerate(values.tolist()):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            continue
        if isinstance(v, bool | np.bool_):
            out[k] = bool(v)
        elif isinstance(v, int | np.integer) and v in (0, 1):
            out[k] = bool(v)
        elif isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            out[k] = v.strip().lower() in _TRUE
        else:
            bad.append(v)
    if bad:
        raise StaffingError(
            f"staff column {column!r} has values that are not true/false: {bad[:5]}; "
            "use booleans (True/False, 1/0 or yes/no)"
        )
    return out


def _null_str(values: pd.Series) -> np.ndarray:
    """Return an object array of ``str`` or ``None`` (nulls and blanks become None)."""
    out = np.empty(len(values), dtype=object)
    for k, v in enumerate(values.tolist()):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            out[k] = None
        else:
            s = str(v).strip()
            out[k] = s if s else None
    return out


def _same_crs(a: Any, b: Any) -> bool:
    return pyproj.CRS.from_user_input(a).equals(
        pyproj.CRS.from_user_input(b), ignore_axis_order=True
    )


def _check_params(**params: float) -> None:
    for name, value in params.items():
        if value is None or not np.isfinite(value) or value < 0:
            raise StaffingError(
                f"{name} must be a finite number >= 0, got {value!r}; pass e.g. {name}=0"
            )


def _grids(plan: Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid codes (sorted), polygons and households of the plan, in code order."""
    grids = plan.grids
    for col in ("grid_code", "households"):
        if col not in grids.columns:
            raise LayerError(
                f"plan.grids has no {col!r} column; build the plan with gridmap.partition"
            )
    codes = _null_str(grids["grid_code"])
    if any(c is None for c in codes):
        raise LayerError("plan.grids has grids without grid_code; assign codes before staffing")
    if len(set(codes)) != len(codes):
        dup = sorted(pd.Series(codes).loc[pd.Series(codes).duplicated()].unique())
        raise LayerError(f"plan.grids has duplicate grid_code {dup[:5]}; codes must be unique")
    order = np.argsort(codes.astype(str), kind="stable")
    geoms = np.asarray(grids.geometry.array, dtype=object)[order]
    hh = pd.to_numeric(grids["households"], errors="coerce").fillna(0).to_numpy(float)[order]
    return codes[order].astype(str), geoms, hh


def _staff_table(
    plan: Plan,
    staff: pd.DataFrame,
    buildings: gpd.GeoDataFrame | None,
    max_posts: int,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Validate and normalise the roster; return it sorted by id with home points."""
    if not isinstance(staff, pd.DataFrame):
        raise LayerError(f"staff must be a (Geo)DataFrame, got {type(staff).__name__}")
    if "staff_id" not in staff.columns:
        raise LayerError(
            "staff has no 'staff_id' column; rename your id column, "
            "e.g. staff.rename(columns={'id': 'staff_id'})"
        )
    if "can_be_chief" not in staff.columns:
        raise LayerError(
            "staff has no 'can_be_chief' column; add a bool column that is True for "
            "people who may serve as grid chief (网格长)"
        )
    ids = _null_str(staff["staff_id"])
    missing = np.flatnonzero(pd.isna(pd.Series(ids)).to_numpy())
    if len(missing):
        raise StaffingError(
            f"staff has {len(missing)} row(s) without staff_id (rows {missing[:5].tolist()}); "
            "give every person a unique staff_id"
        )
    sid = pd.Series(ids, dtype=object)
    dup = sorted(sid[sid.duplicated()].unique())
    if dup:
        raise StaffingError(
            f"duplicate staff_id {dup[:10]} in staff; every person must appear once "
            "(merge the rows or give them distinct ids)"
        )
    n = len(staff)

    def col(name: str) -> pd.Series:
        return staff[name] if name in staff.columns else pd.Series([None] * n, index=staff.index)

    t = pd.DataFrame(
        {
            "staff_id": ids,
            "name": _null_str(col("name")),
            "phone": _null_str(col("phone")),
            "home_building_id": _null_str(col("home_building_id")),
            "can_be_chief": _as_bool(staff["can_be_chief"], "can_be_chief", False),
            "current_grid": _null_str(col("current_grid")),
            "current_role": _null_str(col("current_role")),
        }
    )
    avail_col = next((c for c in ("available", "availability") if c in staff.columns), None)
    t["available"] = _as_bool(col(avail_col), avail_col, True) if avail_col else True
    mp = pd.to_numeric(col("max_posts"), errors="coerce")
    raw_mp = col("max_posts")
    bad = raw_mp.notna() & (mp.isna() | (mp < 0) | (mp != mp.round()))
    if bad.any():
        raise StaffingError(
            "staff max_posts must be a whole number >= 0; bad for "
            f"{sid[bad.to_numpy()].tolist()[:5]}"
        )
    t["max_posts"] = mp.fillna(max_posts).astype(int).to_numpy()
    roles = t["current_role"]
    bad_role = roles.notna() & ~roles.isin(ROLES)
    if bad_role.any():
        raise StaffingError(
            "staff current_role must be 'chief', 'worker' or empty; got "
            f"{sorted(set(roles[bad_role]))} for {t.loc[bad_role, 'staff_id'].tolist()[:5]}"
        )
    half = t["current_grid"].notna() != roles.notna()
    if half.any():
        raise StaffingError(
            "staff current_grid and current_role must be given together; only one is set for "
            f"{t.loc[half, 'staff_id'].tolist()[:5]}"
        )

    # Home points.
    points = np.full(n, None, dtype=object)
    if isinstance(staff, gpd.GeoDataFrame) and staff._geometry_column_name in staff.columns:
        geoms = np.asarray(staff.geometry.array, dtype=object)
        present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        if present.any():
            if staff.crs is None:
                raise CRSError(
                    "staff has no CRS; set the CRS its coordinates are in with staff.set_crs(...) "
                    "and reproject to the plan's with staff.to_crs(plan.crs)"
                )
            if not _same_crs(staff.crs, plan.crs):
                raise CRSError(
                    f"staff CRS ({pyproj.CRS(staff.crs).name}) differs from the plan's "
                    f"({pyproj.CRS(plan.crs).name}); reproject with staff.to_crs(plan.crs)"
                )
            kinds = shapely.get_type_id(geoms[present])
            if (kinds != 0).any():
                raise LayerError(
                    "staff homes must be Points; convert with staff.geometry.representative_point()"
                )
            points[present] = geoms[present]
    plan_blds = set(_null_str(plan.buildings["building_id"]).tolist())
    hb = t["home_building_id"].to_numpy(dtype=object)
    if buildings is not None:
        need = np.array(
            [p is None and b is not None for p, b in zip(points, hb, strict=True)], dtype=bool
        )
        if need.any():
            if buildings.crs is None or not _same_crs(buildings.crs, plan.crs):
                raise CRSError(
                    "buildings must be in the plan's CRS; reproject with buildings.to_crs(plan.crs)"
                )
            b = buildings.assign(building_id=_null_str(buildings["building_id"]))
            b = b.drop_duplicates("building_id").set_index("building_id")
            rep = b.geometry.representative_point()
            for k in np.flatnonzero(need):
                if hb[k] in rep.index:
                    points[k] = rep.loc[hb[k]]
    in_plan = np.array([b in plan_blds for b in hb], dtype=bool)
    lost = np.array([p is None for p in points], dtype=bool) & ~in_plan
    if lost.any():
        ids_lost = t.loc[lost, "staff_id"].tolist()
        raise StaffingError(
            f"{len(ids_lost)} staff member(s) have a home_building_id unknown in the plan and no "
            f"home point: {ids_lost[:10]}; give each a home Point (geometry) or a building_id that "
            "is in plan.buildings (check for typos, or re-partition with the current buildings)"
        )
    t["home_in_plan"] = in_plan
    order = np.argsort(t["staff_id"].to_numpy(dtype=str), kind="stable")
    t = t.iloc[order].reset_index(drop=True)
    return t, points[order]


def _current_posts(
    t: pd.DataFrame, previous: pd.DataFrame | None, plan: Plan
) -> list[tuple[str, str, str]]:
    """(staff_id, grid_code, role) of every post held before this run."""
    prev = previous if previous is not None else plan.assignments
    if prev is not None:
        for c in ("grid_code", "role", "staff_id"):
            if c not in prev.columns:
                raise LayerError(
                    f"previous assignments have no {c!r} column; pass StaffingResult.assignments "
                    "or a frame with grid_code, role, staff_id"
                )
        sid, grid, role = (_null_str(prev[c]) for c in ("staff_id", "grid_code", "role"))
        rows = [(s, g, r) for s, g, r in zip(sid, grid, role, strict=True) if s is not None]
        bad = sorted({r for _, _, r in rows if r not in ROLES}, key=str)
        if bad:
            raise StaffingError(f"previous assignments have roles {bad}; use 'chief' or 'worker'")
        if any(g is None for _, g, _ in rows):
            raise StaffingError("previous assignments have rows with a staff_id but no grid_code")
        return sorted(set(rows))
    have = t["current_grid"].notna()
    return sorted(
        zip(
            t.loc[have, "staff_id"],
            t.loc[have, "current_grid"],
            t.loc[have, "current_role"],
            strict=True,
        )
    )


# ----------------------------------------------------------------------------- candidates


def _pairs(
    t: pd.DataFrame,
    points: np.ndarray,
    plan: Plan,
    codes: np.ndarray,
    geoms: np.ndarray,
    max_distance: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Person–grid pairs within ``max_distance`` or resident: (person, grid, dist, resident)."""
    located = np.flatnonzero(np.array([p is not None for p in points], dtype=bool))
    tree = shapely.STRtree(geoms)
    if len(located):
        q_p, q_g = tree.query(points[located], predicate="dwithin", distance=max_distance)
        p1 = located[q_p]
        d1 = shapely.distance(points[p1], geoms[q_g])
        keep = d1 <= max_distance
        p1, g1, d1 = p1[keep], q_g[keep], d1[keep]
    else:
        p1 = g1 = np.zeros(0, dtype=np.int64)
        d1 = np.zeros(0)
    in_plan = t["home_in_plan"].to_numpy()
    r1 = (d1 == 0) & ~in_plan[p1]
    # Residents through plan.buildings.
    pb = plan.buildings[["building_id", "grid_code"]].copy()
    pb["building_id"] = _null_str(pb["building_id"])
    pb["grid_code"] = _null_str(pb["grid_code"])
    homes = pd.DataFrame({"p": np.arange(len(t)), "building_id": t["home_building_id"]})
    m = homes.dropna().merge(pb.dropna().drop_duplicates(), on="building_id")
    gpos = pd.Series(np.arange(len(codes)), index=codes)
    m = m[m["grid_code"].isin(gpos.index)]
    p2 = m["p"].to_numpy(np.int64)
    g2 = gpos.loc[m["grid_code"]].to_numpy(np.int64)
    p = np.concatenate([p2, p1]).astype(np.int64)
    g = np.concatenate([g2, g1]).astype(np.int64)
    d = np.concatenate([np.zeros(len(p2)), d1])
    r = np.concatenate([np.ones(len(p2), bool), r1])
    key = p * len(codes) + g
    order = np.lexsort((~r, key))
    key, p, g, d, r = key[order], p[order], g[order], d[order], r[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    return p[first], g[first], d[first], r[first]


def resident_grids(
    plan: Plan, staff: pd.DataFrame, *, buildings: gpd.GeoDataFrame | None = None
) -> dict[str, set[str]]:
    """Return the grid codes each person of ``staff`` lives in, by the staffing rule.

    Resident as :func:`assign_staff` counts it: the home building's grid(s) in
    ``plan.buildings``, else the grid covering the home point (``buildings``
    gives home points of people with only a ``home_building_id``). People
    living in no grid of the plan are left out.

    Raises
    ------
    LayerError, StaffingError, CRSError
        As :func:`assign_staff`, for a roster it cannot use.

    Examples
    --------
    >>> plan, staff = _example()
    >>> resident_grids(plan, staff)  # S3 and S4 live outside both grids
    {'S1': {'G1'}, 'S2': {'G1'}}
    """
    codes, geoms, _ = _grids(plan)
    t, points = _staff_table(plan, staff, buildings, 1)
    p, g, _, r = _pairs(t, points, plan, codes, geoms, 0.0)
    out: dict[str, set[str]] = {}
    for person, grid in zip(p[r], g[r], strict=True):
        out.setdefault(str(t["staff_id"].iloc[person]), set()).add(str(codes[grid]))
    return out


# ----------------------------------------------------------------------------- solving


def _example() -> tuple[Plan, gpd.GeoDataFrame]:
    """Return a one-grid plan and a four-person roster for the doctests."""
    from shapely.geometry import Point, box

    from gridmap.partition.plan import QualityReport

    grids = gpd.GeoDataFrame(
        {"grid_code": ["G1"], "households": [300]},
        geometry=[box(0, 0, 100, 100)],
        crs=32650,
    )
    buildings = pd.DataFrame(
        {"building_id": ["B1"], "grid_code": ["G1"], "households": [300], "part": [None]}
    )
    plan = Plan(
        grids=grids,
        buildings=buildings,
        households=None,
        report=QualityReport(pd.DataFrame(), pd.DataFrame()),
        params={},
        crs=grids.crs,
    )
    staff = gpd.GeoDataFrame(
        {
            "staff_id": ["S1", "S2", "S3", "S4"],
            "home_building_id": ["B1", "B1", None, None],
            "can_be_chief": [True, False, True, False],
        },
        geometry=[Point(50, 50), Point(60, 50), Point(150, 50), Point(3000, 0)],
        crs=32650,
    )
    return plan, staff
