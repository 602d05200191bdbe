"""Staffing grids: one resident grid chief (网格长) and two or three grid workers (网格员).

:func:`assign_staff` fills every post of a :class:`~gridmap.partition.plan.Plan`
from a staff roster by solving **one joint optimisation** over all posts
(chief and worker posts of every grid) and all people, not greedily.

The problem
-----------
*Posts*: every grid has one chief post and ``workers`` worker posts
(``workers_large`` when the grid has more than ``large_households``
households).

*Who may fill a post* (hard rules; a pair that breaks one is never an edge):

* the person is available (``available``/``availability`` not false) and has
  ``max_posts >= 1``;
* chief post of grid *g*: the person is chief-eligible (``can_be_chief``) and
  **resident** in *g*;
* worker post of grid *g*: the person is resident in *g* or lives within
  ``max_distance`` metres of the grid polygon;
* a person holds at most ``max_posts`` posts, and never two posts of the same
  grid.

A person is *resident* in grid *g* when their ``home_building_id`` belongs to
*g* in ``plan.buildings`` (a building split across grids makes its residents
resident in each of them); for a person whose home building is not in the plan,
when their home point is covered by the polygon of *g*. *Distance* is the
straight-line distance from the home point to the grid polygon (0 inside; 0
for residents).

*Objective*, lexicographic:

1. maximise the number of filled posts;
2. then maximise the number of filled chief posts;
3. then minimise the **cost**, in metres::

       cost = Σ distance_m (rounded to whole metres)
            + resident_bonus × (worker posts held by non-residents)
            + move_cost      × (current posts not kept)

A *current post* is a (grid, role) a person holds before the run: from
``previous``, else ``plan.assignments``, else the roster's ``current_grid`` /
``current_role``. With the defaults (``resident_bonus`` 5,000 m >
``max_distance`` 1,500 m and ``move_cost`` 20,000 m > ``resident_bonus`` +
``max_distance``) this means: for any single post a resident always beats a
non-resident, however close; one more resident worker anywhere is worth up to
5,000 m of extra distance elsewhere; and keeping a serving person in their
post always beats replacing them by anyone, resident or not. A serving person
is therefore only moved when a hard rule forces it or when moving them fills
more posts (tiers 1–2); every such move is listed in
:attr:`StaffingResult.moves` with its reason.

Tiers 1–2 are encoded exactly with per-component big-M weights (vacancy
columns in the assignment matrix), so they hold strictly, not approximately.
The weights only need to order single alternating paths: every post row is
always matched (to a person or to its own vacancy column), so two
assignments differ by paths and cycles whose ends are columns, and one such
path changes the filled posts by at most one, the filled chief posts by at
most one and the distance cost by at most ``S`` = posts × the largest edge
cost. A chief vacancy weight of ``S + 1`` and a vacancy weight of
``2·S + 2`` on top therefore make the weighted optimum lexicographically
optimal (were some path lexicographically better, it would lower the weight).
These stay exact in float64 up to a few hundred thousand posts in one
connected component; a larger one is solved with the staged LPs below.

Solvers
-------
With ``max_posts`` = 1 for everybody (the default) the problem is a
rectangular assignment of posts to people, solved per connected component with
:func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching` (LAPJVsp) on a
sparse matrix holding only the candidate pairs (found with an STRtree
``dwithin`` query, never a dense grids × people matrix). When somebody may
hold several posts, the same assignment is solved with one column per post
a person may hold, which relaxes "never two posts of one grid"; the
(person, grid) pairs where the rule could bind (home grids) or where the
relaxed optimum breaks it get an exact pair gadget (a pair row and a pair
column, see :func:`_solve_lap_pairs`) and the assignment is solved again until
no pair breaks it — each round is exact for a relaxation, so the first answer
that obeys the rule is optimal (2–3 rounds for a 2,000-grid city). A
component too large for exact big-M weights is solved as three staged linear
programs with :func:`scipy.optimize.linprog` (HiGHS dual simplex; the
constraint matrix is totally unimodular, so the optimal vertices are
integral — much slower). Inputs are sorted by ``grid_code`` and ``staff_id``
so equal-cost optima are resolved the same way on every run.

Phone numbers and homes are personal data: they are carried, never logged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

from gridmap.errors import CRSError, LayerError, StaffingError
from gridmap.partition.plan import Plan

__all__ = [
    "ROLES",
    "ASSIGNMENT_COLUMNS",
    "SHORTFALL_COLUMNS",
    "MOVE_COLUMNS",
    "StaffingResult",
    "assign_staff",
    "resident_grids",
]

#: Post roles, in priority order.
ROLES: tuple[str, str] = ("chief", "worker")

#: Columns of :attr:`StaffingResult.assignments` (one row per post, vacant ones too).
ASSIGNMENT_COLUMNS: tuple[str, ...] = (
    "grid_code",
    "role",  # 'chief' | 'worker'
    "slot",  # 1 for the chief, 1..n for the workers
    "staff_id",  # null for a vacant post
    "name",
    "phone",
    "distance_m",  # home → grid polygon, 0 inside; NaN when vacant
    "resident",  # home inside the grid; NA when vacant
    "changed",  # holder differs from the current/previous holder
    "reason",  # why it changed (null when unchanged)
)

#: Columns of :attr:`StaffingResult.shortfalls` (one row per grid and role short of people).
SHORTFALL_COLUMNS: tuple[str, ...] = ("grid_code", "role", "missing", "reason", "suggestion")

#: Columns of :attr:`StaffingResult.moves` (one row per person whose posts changed).
MOVE_COLUMNS: tuple[str, ...] = (
    "staff_id",
    "name",
    "from_grid",
    "from_role",
    "to_grid",
    "to_role",
    "reason",
)

_CHIEF, _WORKER = 0, 1
_EXACT = 2**53  # float64 represents every integer below this exactly
_TRUE = {"true", "t", "yes", "y", "1", "是"}
_FALSE = {"false", "f", "no", "n", "0", "否", ""}


@dataclass(frozen=True)
class StaffingResult:
    """The staffing of a plan: posts, shortfalls, moves and summary counts.

    Attributes
    ----------
    assignments : pandas.DataFrame
        One row per post (vacant posts included, ``staff_id`` null), columns
        :data:`ASSIGNMENT_COLUMNS`, ordered by grid code, chief first.
    shortfalls : pandas.DataFrame
        One row per grid and role with vacant posts: ``missing`` count, the
        ``reason`` and a ``suggestion`` naming the nearest possible person.
        Columns :data:`SHORTFALL_COLUMNS`.
    moves : pandas.DataFrame
        Every person whose posts changed against the current/previous
        assignment (new, moved or released), with the reason. Columns
        :data:`MOVE_COLUMNS`; ``from_*``/``to_*`` are null for none.
    summary : dict
        Counts (``posts``, ``filled``, ``vacant``, ``chiefs_filled``,
        ``workers_filled``, ``resident_workers``, ``kept``, ``moved``, ``new``,
        ``released``), ``total_distance_m``, ``cost`` (the objective's third
        tier, metres) and solver facts (``components``, ``solver``,
        ``solver_rounds``: re-solves for people holding several posts).
    params : dict
        The parameters used.
    """

    assignments: pd.DataFrame
    shortfalls: pd.DataFrame
    moves: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def to_plan(self, plan: Plan) -> Plan:
        """Return ``plan`` with :attr:`assignments` attached (the original is unchanged).

        Parameters
        ----------
        plan : Plan
            The plan that was staffed.

        Returns
        -------
        Plan
            ``plan.replace(assignments=self.assignments)``.

        Examples
        --------
        >>> plan, staff = _example()
        >>> assign_staff(plan, staff).to_plan(plan).assignments["role"].tolist()
        ['chief', 'worker', 'worker']
        """
        return plan.replace(assignments=self.assignments.copy())


# ----------------------------------------------------------------------------- input


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


def _solve_lap(
    e_p: np.ndarray,
    e_grp: np.ndarray,
    e_w: np.ndarray,
    slots: np.ndarray,
    vac: np.ndarray,
) -> list[tuple[int, int]]:
    """Solve the one-post-per-person case; return (edge index, slot) pairs."""
    groups, g_loc = np.unique(e_grp, return_inverse=True)
    people, p_loc = np.unique(e_p, return_inverse=True)
    n_slots = slots[groups]
    row0 = np.concatenate([[0], np.cumsum(n_slots)[:-1]])
    n_rows = int(n_slots.sum())
    rep = n_slots[g_loc]
    e_idx = np.repeat(np.arange(len(e_p)), rep)
    slot = np.arange(len(e_idx)) - np.repeat(np.cumsum(rep) - rep, rep)
    rows = row0[g_loc][e_idx] + slot
    cols = p_loc[e_idx]
    row_group = np.repeat(np.arange(len(groups)), n_slots)
    rr = np.arange(n_rows)
    data = np.concatenate([e_w[e_idx], vac[groups][row_group]]).astype(float)
    mat = coo_array(
        (data, (np.concatenate([rows, rr]), np.concatenate([cols, len(people) + rr]))),
        shape=(n_rows, len(people) + n_rows),
    ).tocsr()
    r_ind, c_ind = min_weight_full_bipartite_matching(mat)
    real = c_ind < len(people)
    keys = rows.astype(np.int64) * len(people) + cols
    order = np.argsort(keys, kind="stable")
    pos = order[
        np.searchsorted(
            keys, r_ind[real].astype(np.int64) * len(people) + c_ind[real], sorter=order
        )
    ]
    return list(zip(e_idx[pos].tolist(), slot[pos].tolist(), strict=True))


def _solve_lap_pairs(
    e_p: np.ndarray,
    e_grp: np.ndarray,
    e_w: np.ndarray,
    slots: np.ndarray,
    vac: np.ndarray,
    rep: np.ndarray,
    paired: np.ndarray,
) -> list[tuple[int, int]]:
    """Solve the several-posts-per-person case as one sparse assignment.

    ``rep[k]`` is how many posts the person of edge ``k`` may hold. Rows are
    the posts (one vacancy column each) and columns the people, ``rep``
    *copy columns* per person: a person holds at most ``rep`` posts. An edge
    that is not ``paired`` links its posts to every copy of its person: that
    relaxes "never two posts in one grid". A ``paired`` (person, grid) is
    exact: it gets a *pair column*, which the posts of the grid link to, and
    a *pair row*, which links to its own pair column (weight 1: unused) and
    to the person's copies (weight 1: used, one post spent). Every pair row
    is matched, so the pair column takes a post only when its pair row takes
    a copy: at most one post in that grid. Pair rows add the same constant to
    every matching. Return (edge index, slot) pairs.
    """
    n_grid = len(slots) // 2
    groups, g_loc = np.unique(e_grp, return_inverse=True)
    n_slots = slots[groups]
    row0 = np.concatenate([[0], np.cumsum(n_slots)[:-1]])
    n_rows = int(n_slots.sum())
    width = int(rep.max()) + 1
    # Column keys: 3·(person·width + copy) for copies, 3·pair + 1 for pair columns.
    pair = e_p * n_grid + e_grp // 2
    n_cols_e = np.where(paired, 1, rep)
    ec = np.repeat(np.arange(len(e_p)), n_cols_e)
    copy = np.arange(len(ec)) - np.repeat(np.cumsum(n_cols_e) - n_cols_e, n_cols_e)
    ec_key = np.where(paired[ec], 3 * pair[ec] + 1, 3 * (e_p[ec] * width + copy))
    pairs, first = np.unique(pair[paired], return_index=True)
    p_rep = rep[paired][first]
    c_pair = np.repeat(np.arange(len(pairs)), p_rep)
    c_copy = np.arange(len(c_pair)) - np.repeat(np.cumsum(p_rep) - p_rep, p_rep)
    c_key = 3 * ((pairs // n_grid)[c_pair] * width + c_copy)
    keys = np.unique(np.concatenate([ec_key, c_key]))
    n_cols = len(keys)
    # Post rows × columns: one entry per slot of the edge's group and column of the edge.
    n_rep = n_slots[g_loc[ec]]
    e_idx = np.repeat(ec, n_rep)
    slot = np.arange(len(e_idx)) - np.repeat(np.cumsum(n_rep) - n_rep, n_rep)
    rows = row0[g_loc][e_idx] + slot
    cols = np.searchsorted(keys, np.repeat(ec_key, n_rep))
    # Pair rows: own pair column and the person's copy columns, weight 1.
    x_rows = n_rows + np.concatenate([np.arange(len(pairs)), c_pair])
    x_cols = np.searchsorted(keys, np.concatenate([3 * pairs + 1, c_key]))
    row_group = np.repeat(np.arange(len(groups)), n_slots)
    rr = np.arange(n_rows)
    data = np.concatenate([e_w[e_idx], np.ones(len(x_rows)), vac[groups][row_group]])
    mat = coo_array(
        (
            data.astype(float),
            (np.concatenate([rows, x_rows, rr]), np.concatenate([cols, x_cols, n_cols + rr])),
        ),
        shape=(n_rows + len(pairs), n_cols + n_rows),
    ).tocsr()
    r_ind, c_ind = min_weight_full_bipartite_matching(mat)
    real = (r_ind < n_rows) & (c_ind < n_cols)
    lookup = rows.astype(np.int64) * n_cols + cols
    order = np.argsort(lookup, kind="stable")
    pos = order[
        np.searchsorted(lookup, r_ind[real].astype(np.int64) * n_cols + c_ind[real], sorter=order)
    ]
    return list(zip(e_idx[pos].tolist(), slot[pos].tolist(), strict=True))


def _solve_staged(
    e_p: np.ndarray,
    e_grp: np.ndarray,
    e_cost: np.ndarray,
    slots: np.ndarray,
    cap: np.ndarray,
) -> list[tuple[int, int]]:
    """Solve the several-posts-per-person case as three staged linear programs.

    Rows are people (``<= max_posts``), person–grid pairs (``<= 1``: never two
    posts in one grid) and post groups (``<= slots``). People and pairs form
    one laminar family, post groups another, so the matrix is totally
    unimodular — also with the stage rows "all posts" (⊃ people) and "chief
    posts" (⊃ chief groups) — so the vertex HiGHS' dual simplex returns for
    each stage LP is integral (checked).
    Stages: max filled posts, then max chief posts, then min cost.
    """
    from scipy.optimize import linprog
    from scipy.sparse import vstack

    n = len(e_p)
    people, p_row = np.unique(e_p, return_inverse=True)
    pairs, pair_row = np.unique(e_p * (len(slots) // 2) + e_grp // 2, return_inverse=True)
    groups, g_row = np.unique(e_grp, return_inverse=True)
    is_chief = (e_grp % 2 == _CHIEF).astype(float)
    row = np.concatenate([p_row, len(people) + pair_row, len(people) + len(pairs) + g_row])
    a_mat = coo_array(
        (np.ones(3 * n), (row, np.tile(np.arange(n), 3))),
        shape=(len(people) + len(pairs) + len(groups), n),
    ).tocsr()
    ub = np.concatenate([cap[people], np.ones(len(pairs)), slots[groups]]).astype(float)
    # Stage rows as "<=": -Σx <= -F*, -Σchief <= -C*.
    stage_rows = coo_array(np.vstack([-np.ones(n), -is_chief])).tocsr()

    def run(c: np.ndarray, n_stage: int, rhs: list[float]) -> np.ndarray:
        mat = vstack([a_mat, stage_rows[:n_stage]]).tocsr() if n_stage else a_mat
        res = linprog(
            c,
            A_ub=mat,
            b_ub=np.concatenate([ub, rhs]),
            bounds=(0, 1),
            method="highs-ds",
        )
        x = np.asarray(res.x) if res.success else None
        if x is None or np.abs(x - np.round(x)).max() > 1e-6:  # pragma: no cover
            raise StaffingError(f"staffing solver failed ({res.message}); please report this")
        return np.round(x)

    x = run(-np.ones(n), 0, [])
    f_star = float(x.sum())
    x = run(-is_chief, 1, [-f_star])
    c_star = float(is_chief @ x)
    x = run(e_cost.astype(float), 2, [-f_star, -c_star])
    used: dict[int, int] = {}
    out = []
    for k in np.flatnonzero(x > 0.5).tolist():
        q = int(e_grp[k])
        used[q] = used.get(q, 0) + 1
        out.append((k, used[q] - 1))
    return out


# ----------------------------------------------------------------------------- main


def assign_staff(
    plan: Plan,
    staff: pd.DataFrame,
    *,
    buildings: gpd.GeoDataFrame | None = None,
    previous: pd.DataFrame | None = None,
    workers: int = 2,
    workers_large: int = 3,
    large_households: float = 350,
    max_distance: float = 1500.0,
    max_posts: int = 1,
    resident_bonus: float = 5000.0,
    move_cost: float = 20000.0,
) -> StaffingResult:
    """Staff every grid with one resident chief and two or three workers, jointly optimal.

    See the module docstring for the exact rules and objective.

    Parameters
    ----------
    plan : Plan
        The grids (``grid_code``, ``households``, polygon) and
        ``plan.buildings`` (building → grid).
    staff : geopandas.GeoDataFrame or pandas.DataFrame
        The roster: ``staff_id``, ``can_be_chief`` and optionally ``name``,
        ``phone``, ``home_building_id``, home Point geometry (in the plan's
        CRS), ``max_posts``, ``available`` (or ``availability``),
        ``current_grid`` and ``current_role``.
    buildings : geopandas.GeoDataFrame, optional
        Building footprints (``building_id``, polygon, plan CRS) used as the
        home point of people who have a ``home_building_id`` but no geometry.
        People with neither a point nor a footprint can only serve the grid of
        their home building (a warning says how many).
    previous : pandas.DataFrame, optional
        Assignments before this run (``grid_code``, ``role``, ``staff_id``),
        e.g. an earlier :attr:`StaffingResult.assignments`. Default:
        ``plan.assignments`` if set, else the roster's ``current_grid`` /
        ``current_role``.
    workers : int, default 2
        Worker posts per grid.
    workers_large : int, default 3
        Worker posts of a grid with more than ``large_households`` households.
    large_households : float, default 350
        Household threshold for ``workers_large``.
    max_distance : float, default 1500.0
        Nobody works for a grid whose polygon is farther than this (metres)
        from their home.
    max_posts : int, default 1
        Posts per person when the roster has no ``max_posts`` value.
    resident_bonus : float, default 5000.0
        Extra cost (metres) of a worker post held by a non-resident.
    move_cost : float, default 20000.0
        Cost (metres) of every current post that is not kept.

    Returns
    -------
    StaffingResult
        Posts, shortfalls, moves and summary; ``result.to_plan(plan)``
        attaches the assignments to the plan.

    Raises
    ------
    LayerError
        Missing ``staff_id``/``can_be_chief`` column, non-Point homes, bad
        ``previous`` frame or plan grids.
    StaffingError
        Missing or duplicate ``staff_id``, homes that cannot be placed,
        invalid flags/roles/``max_posts``, negative parameters.
    CRSError
        Staff (or buildings) without a CRS or in a CRS other than the plan's.

    Examples
    --------
    >>> plan, staff = _example()
    >>> result = assign_staff(plan, staff)
    >>> result.assignments[["grid_code", "role", "staff_id", "distance_m", "resident"]]
      grid_code    role staff_id  distance_m  resident
    0        G1   chief       S1         0.0      True
    1        G1  worker       S2         0.0      True
    2        G1  worker       S3        50.0     False
    >>> result.summary["filled"], result.summary["vacant"]
    (3, 0)
    """
    _check_params(
        workers=workers,
        workers_large=workers_large,
        large_households=large_households,
        max_distance=max_distance,
        max_posts=max_posts,
        resident_bonus=resident_bonus,
        move_cost=move_cost,
    )
    if (
        int(workers) != workers
        or int(workers_large) != workers_large
        or int(max_posts) != max_posts
    ):
        raise StaffingError("workers, workers_large and max_posts must be whole numbers")
    params = {
        "workers": int(workers),
        "workers_large": int(workers_large),
        "large_households": large_households,
        "max_distance": float(max_distance),
        "max_posts": int(max_posts),
        "resident_bonus": float(resident_bonus),
        "move_cost": float(move_cost),
    }
    codes, geoms, hh = _grids(plan)
    t, points = _staff_table(plan, staff, buildings, int(max_posts))
    current = _current_posts(t, previous, plan)
    n_g, n_p = len(codes), len(t)
    unlocated = np.array([p is None for p in points], dtype=bool)
    if unlocated.any():
        warnings.warn(
            f"{int(unlocated.sum())} staff member(s) have no home point, only a home building; "
            "they can serve only the grid of that building (pass buildings= to locate them)",
            UserWarning,
            stacklevel=2,
        )

    # Posts: group q = 2 * grid + role.
    slots = np.zeros(2 * n_g, dtype=np.int64)
    slots[0::2] = 1
    slots[1::2] = np.where(hh > large_households, int(workers_large), int(workers))

    # Candidate edges.
    pp, pg, pd_, pr = _pairs(t, points, plan, codes, geoms, float(max_distance))
    active = t["available"].to_numpy(bool) & (t["max_posts"].to_numpy() > 0)
    eligible = t["can_be_chief"].to_numpy(bool)
    chief_ok = pr & active[pp] & eligible[pp]
    worker_ok = active[pp] & (pr | (pd_ <= max_distance))
    e_p = np.concatenate([pp[chief_ok], pp[worker_ok]])
    e_g = np.concatenate([pg[chief_ok], pg[worker_ok]])
    e_role = np.concatenate(
        [np.full(int(chief_ok.sum()), _CHIEF), np.full(int(worker_ok.sum()), _WORKER)]
    )
    e_d = np.concatenate([pd_[chief_ok], pd_[worker_ok]])
    e_res = np.concatenate([pr[chief_ok], pr[worker_ok]])
    e_grp = 2 * e_g + e_role
    sid_pos = pd.Series(np.arange(n_p), index=t["staff_id"].to_numpy(dtype=str))
    gpos = pd.Series(np.arange(n_g), index=codes)
    cur_keys = np.array(
        [
            sid_pos[s] * 2 * n_g + 2 * gpos[g] + ROLES.index(r)
            for s, g, r in current
            if s in sid_pos.index and g in gpos.index
        ],
        dtype=np.int64,
    )
    e_cur = np.isin(e_p * 2 * n_g + e_grp, cur_keys)
    bonus, move = round(resident_bonus), round(move_cost)
    e_cost = np.rint(e_d).astype(np.int64) + bonus * ((e_role == _WORKER) & ~e_res) - move * e_cur
    e_w = e_cost + move + 1  # >= 1: sparse matrices need non-zero weights

    # Connected components of people and post groups; solve each exactly.
    assigned: list[tuple[int, int]] = []  # (edge, slot)
    n_comp = 0
    solvers: set[str] = set()
    rounds = 0  # re-solves of the several-posts relaxation
    if len(e_p):
        adj = coo_array(
            (np.ones(len(e_p)), (e_p, n_p + e_grp)), shape=(n_p + 2 * n_g, n_p + 2 * n_g)
        )
        _, label = connected_components(adj, directed=False)
        comp = label[e_p]
        order = np.argsort(comp, kind="stable")
        bounds = np.flatnonzero(np.diff(comp[order])) + 1
        cap = t["max_posts"].to_numpy()
        n_reach = np.bincount(np.unique(e_p * n_g + e_g) // n_g, minlength=n_p)
        for chunk in np.split(order, bounds):
            n_comp += 1
            groups = np.unique(e_grp[chunk])
            n_rows = int(slots[groups].sum())
            s_bound = n_rows * int(e_w[chunk].max())
            c_tier = s_bound + 1  # one chief more beats any path's distance change
            f_tier = c_tier + s_bound + 1  # one post more beats a chief and a distance change
            # Posts a person may hold here: never more than the grids they can reach.
            rep = np.minimum(cap, n_reach)[e_p[chunk]]
            exact = n_rows * (f_tier + c_tier) + len(chunk) < _EXACT
            if exact:
                vac = np.zeros(2 * n_g, dtype=np.int64)
                vac[groups] = f_tier + np.where(groups % 2 == _CHIEF, c_tier, 0)
                if rep.max() <= 1:
                    got = _solve_lap(e_p[chunk], e_grp[chunk], e_w[chunk], slots, vac)
                else:
                    # Relax "never two posts in one grid" (copies only); make the
                    # (person, grid) pairs that break it exact and solve again, until none
                    # does: each round solves a relaxation exactly, so the first answer
                    # that obeys the rule is optimal.
                    pair_e = e_p[chunk] * n_g + e_grp[chunk] // 2
                    # Start exact where breaches are likely: home grids cost 0 per post.
                    paired = (rep > 1) & e_res[chunk]
                    while True:
                        got = _solve_lap_pairs(
                            e_p[chunk], e_grp[chunk], e_w[chunk], slots, vac, rep, paired
                        )
                        held_pg = pair_e[np.array([x for x, _ in got], dtype=np.int64)]
                        uniq, n_held = np.unique(held_pg, return_counts=True)
                        twice = np.isin(pair_e, uniq[n_held > 1])
                        if not twice.any():
                            break
                        paired |= twice
                        rounds += 1
                solvers.add("lapjvsp")
            else:
                got = _solve_staged(e_p[chunk], e_grp[chunk], e_cost[chunk], slots, cap)
                solvers.add("highs")
            assigned.extend((int(chunk[k]), s) for k, s in got)

    return _result(
        t=t,
        points=points,
        codes=codes,
        geoms=geoms,
        hh=hh,
        slots=slots,
        current=current,
        assigned=assigned,
        edges=(e_p, e_grp, e_d, e_res, e_cost),
        pairs=(pp, pg, pd_, pr),
        params=params,
        extra={
            "components": int(n_comp),
            "solver": "+".join(sorted(solvers)) or "none",
            "solver_rounds": rounds,
        },
    )


# ----------------------------------------------------------------------------- reporting


def _pad(posts: list[tuple[str, str]], i: int) -> tuple[str | None, str | None]:
    return posts[i] if i < len(posts) else (None, None)


def _fmt_m(d: float) -> str:
    return f"{d:,.0f} m"


def _result(
    *,
    t: pd.DataFrame,
    points: np.ndarray,
    codes: np.ndarray,
    geoms: np.ndarray,
    hh: np.ndarray,
    slots: np.ndarray,
    current: list[tuple[str, str, str]],
    assigned: list[tuple[int, int]],
    edges: tuple[np.ndarray, ...],
    pairs: tuple[np.ndarray, ...],
    params: dict[str, Any],
    extra: dict[str, Any],
) -> StaffingResult:
    e_p, e_grp, e_d, e_res, e_cost = edges
    pp, pg, pd_, pr = pairs
    n_g = len(codes)
    max_distance = params["max_distance"]
    sids = t["staff_id"].to_numpy(dtype=object)
    names = t["name"].to_numpy(dtype=object)
    phones = t["phone"].to_numpy(dtype=object)
    gpos = pd.Series(np.arange(n_g), index=codes)

    # Who holds what, now and before.
    held: dict[int, list[tuple[int, int]]] = {}  # group -> [(person, edge)]
    new_posts: dict[str, list[tuple[str, str]]] = {}
    for k, _ in assigned:
        held.setdefault(int(e_grp[k]), []).append((int(e_p[k]), k))
        new_posts.setdefault(sids[e_p[k]], []).append((codes[e_grp[k] // 2], ROLES[e_grp[k] % 2]))
    old_posts: dict[str, list[tuple[str, str]]] = {}
    for s, g, r in current:
        old_posts.setdefault(s, []).append((g, r))
    holders_before: dict[tuple[str, str], int] = {}
    for _, g, r in current:
        holders_before[(g, r)] = holders_before.get((g, r), 0) + 1

    resident_of: dict[int, list[int]] = {}
    for p, g in zip(pp[pr].tolist(), pg[pr].tolist(), strict=True):
        resident_of.setdefault(p, []).append(g)
    pair_d = pd.Series(pd_, index=pp * n_g + pg)
    sid_pos = {s: k for k, s in enumerate(sids)}

    def dist(p: int, g: int) -> float:
        key = p * n_g + g
        if key in pair_d.index:
            return float(pair_d[key])
        if points[p] is None:
            return float("nan")
        return float(shapely.distance(points[p], geoms[g]))

    def why_left(s: str, g: str, r: str) -> str:
        """Why person ``s`` no longer holds current post (g, r)."""
        if s not in sid_pos:
            return "no longer on the staff roster"
        p = sid_pos[s]
        row = t.iloc[p]
        if g not in gpos.index:
            return f"grid {g} no longer exists in the plan"
        gi = int(gpos[g])
        if not row["available"]:
            return "not available"
        if row["max_posts"] == 0:
            return "max_posts is 0"
        if r == "chief" and not row["can_be_chief"]:
            return "not chief-eligible (can_be_chief is false)"
        resident = gi in resident_of.get(p, [])
        if r == "chief" and not resident:
            return f"home no longer inside grid {g} (a grid chief must live in the grid)"
        d = dist(p, gi)
        if r == "worker" and not resident and not d <= max_distance:
            return f"home is {_fmt_m(d)} from grid {g}, beyond max_distance {_fmt_m(max_distance)}"
        n_slots = int(slots[2 * gi + ROLES.index(r)])
        if holders_before.get((g, r), 0) > n_slots:
            return f"grid {g} now has {n_slots} {r} post(s) for {holders_before[(g, r)]} holders"
        if len(old_posts.get(s, [])) > row["max_posts"]:
            return f"held {len(old_posts[s])} posts, max_posts is {row['max_posts']}"
        return "moved by the joint optimum so that more posts (or chief posts) are filled"

    # Assignment rows.
    rows: list[dict[str, Any]] = []
    filled_d: list[float] = []
    for gi in range(n_g):
        g = codes[gi]
        for ri, r in enumerate(ROLES):
            q = 2 * gi + ri
            mine = sorted(held.get(q, []), key=lambda pe: (e_d[pe[1]], sids[pe[0]]))
            for slot in range(int(slots[q])):
                if slot < len(mine):
                    p, k = mine[slot]
                    s = sids[p]
                    was = (g, r) in old_posts.get(s, [])
                    reason = None
                    if not was:
                        src = [x for x in old_posts.get(s, []) if x not in new_posts.get(s, [])]
                        if src:
                            fg, fr = src[0]
                            reason = f"moved from {fr} of {fg}: {why_left(s, fg, fr)}"
                        else:
                            reason = "newly assigned"
                    rows.append(
                        {
                            "grid_code": g,
                            "role": r,
                            "slot": slot + 1,
                            "staff_id": s,
                            "name": names[p],
                            "phone": phones[p],
                            "distance_m": float(e_d[k]),
                            "resident": bool(e_res[k]),
                            "changed": not was,
                            "reason": reason,
                        }
                    )
                    filled_d.append(float(e_d[k]))
                else:
                    rows.append(
                        {
                            "grid_code": g,
                            "role": r,
                            "slot": slot + 1,
                            "staff_id": None,
                            "name": None,
                            "phone": None,
                            "distance_m": float("nan"),
                            "resident": pd.NA,
                            "changed": slot < holders_before.get((g, r), 0),
                            "reason": "vacant: see shortfalls",
                        }
                    )
    assignments = pd.DataFrame(rows, columns=list(ASSIGNMENT_COLUMNS))
    assignments["slot"] = assignments["slot"].astype("int64")
    assignments["distance_m"] = assignments["distance_m"].astype(float)
    assignments["resident"] = assignments["resident"].astype("boolean")
    assignments["changed"] = assignments["changed"].astype(bool)

    # Moves.
    move_rows: list[dict[str, Any]] = []
    for s in sorted(set(old_posts) | set(new_posts)):
        before, after = old_posts.get(s, []), new_posts.get(s, [])
        lost = [x for x in before if x not in after]
        gained = [x for x in after if x not in before]
        name = names[sid_pos[s]] if s in sid_pos else None
        for i in range(max(len(lost), len(gained))):
            mg, mr = _pad(lost, i)
            tg, tr = _pad(gained, i)
            if mg is None:
                reason = "newly assigned"
            else:
                reason = why_left(s, str(mg), str(mr))
            move_rows.append(
                {
                    "staff_id": s,
                    "name": name,
                    "from_grid": mg,
                    "from_role": mr,
                    "to_grid": tg,
                    "to_role": tr,
                    "reason": reason,
                }
            )
    moves = pd.DataFrame(move_rows, columns=list(MOVE_COLUMNS))

    shortfalls = _shortfalls(
        t=t,
        points=points,
        codes=codes,
        geoms=geoms,
        slots=slots,
        held=held,
        edges=(e_p, e_grp),
        resident_of=resident_of,
        new_posts=new_posts,
        max_distance=max_distance,
    )

    # Summary.
    posts = int(slots.sum())
    filled = len(assigned)
    chiefs_filled = sum(len(v) for q, v in held.items() if q % 2 == _CHIEF)
    res_workers = sum(bool(e_res[k]) for q, v in held.items() if q % 2 == _WORKER for _, k in v)
    kept = sum(1 for s, g, r in current if (g, r) in new_posts.get(s, []))
    people_before = {s for s, _, _ in current}
    moved_people = {s for s in people_before if set(old_posts[s]) != set(new_posts.get(s, []))}
    n_cur = len(current)
    cost = int(sum(int(e_cost[k]) for k, _ in assigned)) + round(params["move_cost"]) * n_cur
    summary: dict[str, Any] = {
        "grids": n_g,
        "staff": len(t),
        "posts": posts,
        "filled": filled,
        "vacant": posts - filled,
        "chiefs": n_g,
        "chiefs_filled": chiefs_filled,
        "workers": posts - n_g,
        "workers_filled": filled - chiefs_filled,
        "resident_workers": res_workers,
        "kept": kept,
        "moved": len(moved_people & set(new_posts)),
        "released": len(moved_people - set(new_posts)),
        "new": len(set(new_posts) - people_before),
        "total_distance_m": float(sum(filled_d)),
        "cost": cost,
        **extra,
    }
    return StaffingResult(
        assignments=assignments,
        shortfalls=shortfalls,
        moves=moves,
        summary=summary,
        params=params,
    )


def _shortfalls(
    *,
    t: pd.DataFrame,
    points: np.ndarray,
    codes: np.ndarray,
    geoms: np.ndarray,
    slots: np.ndarray,
    held: dict[int, list[tuple[int, int]]],
    edges: tuple[np.ndarray, np.ndarray],
    resident_of: dict[int, list[int]],
    new_posts: dict[str, list[tuple[str, str]]],
    max_distance: float,
) -> pd.DataFrame:
    e_p, e_grp = edges
    sids = t["staff_id"].to_numpy(dtype=object)
    short = [q for q in range(len(slots)) if len(held.get(q, [])) < slots[q]]
    if not short:
        return pd.DataFrame(columns=list(SHORTFALL_COLUMNS)).astype({"missing": "int64"})
    cand: dict[int, set[int]] = {}
    on_short = np.isin(e_grp, short)  # only the edges of short posts, not the whole city's
    for p, q in zip(e_p[on_short].tolist(), e_grp[on_short].tolist(), strict=True):
        cand.setdefault(q, set()).add(p)
    located = np.array([p is not None for p in points], dtype=bool)
    active = t["available"].to_numpy(bool) & (t["max_posts"].to_numpy() > 0)
    eligible = t["can_be_chief"].to_numpy(bool)

    def posts_of(p: int) -> str:
        got = new_posts.get(sids[p], [])
        return ", ".join(f"{r} of {g}" for g, r in got) if got else "no post"

    def home_grid(p: int) -> str:
        gs = resident_of.get(p, [])
        return f"lives in grid {codes[gs[0]]}" if gs else "lives outside every grid"

    def nearest(mask: np.ndarray, qs: list[int]) -> dict[int, tuple[int, float]]:
        """Nearest person in ``mask`` to each grid of ``qs`` (grid → (person, distance))."""
        idx = np.flatnonzero(mask & located)
        if not len(idx) or not qs:
            return {}
        gi = np.array(sorted({q // 2 for q in qs}))
        tree = shapely.STRtree(points[idx])
        (a, b), d = tree.query_nearest(geoms[gi], return_distance=True, all_matches=False)
        return {int(gi[x]): (int(idx[y]), float(z)) for x, y, z in zip(a, b, d, strict=True)}

    living_in: dict[int, list[int]] = {}
    for p, gs in resident_of.items():
        for gi in gs:
            living_in.setdefault(gi, []).append(p)
    free = active & np.array([s not in new_posts for s in sids], dtype=bool)
    near_chief = nearest(active & eligible, [q for q in short if q % 2 == _CHIEF])
    near_free = nearest(free, [q for q in short if q % 2 == _WORKER])
    rows = []
    for q in short:
        gi, ri = q // 2, q % 2
        g, r = codes[gi], ROLES[ri]
        have = len(held.get(q, []))
        missing = int(slots[q]) - have
        c = sorted(cand.get(q, set()), key=lambda p: sids[p])
        elsewhere = [p for p in c if p not in {pp for pp, _ in held.get(q, [])}]
        if ri == _CHIEF:
            residents = living_in.get(gi, [])
            if not c:
                n_el = sum(bool(eligible[p]) for p in residents)
                n_off = sum(bool(eligible[p]) and not active[p] for p in residents)
                reason = (
                    f"no available chief-eligible resident in grid {g} ({len(residents)} "
                    f"resident(s) on the roster, {n_el} chief-eligible, "
                    f"{n_off} of those unavailable)"
                )
            else:
                reason = (
                    f"every chief-eligible resident of grid {g} holds another post: "
                    + "; ".join(f"{sids[p]} ({posts_of(p)})" for p in elsewhere[:5])
                )
            if gi in near_chief:
                p, d = near_chief[gi]
                where = "inside" if d == 0 else f"{_fmt_m(d)} outside"
                suggestion = (
                    f"nearest eligible: {sids[p]}, {where}, {home_grid(p)} ({posts_of(p)}); "
                    f"recruit a chief-eligible resident of grid {g}"
                )
            else:
                suggestion = (
                    f"no chief-eligible person on the roster; recruit a resident of grid {g}"
                )
        else:
            reason = f"only {len(c)} worker candidate(s) within {_fmt_m(max_distance)} of grid {g}"
            if elsewhere:
                reason += f", {len(elsewhere)} of them needed for other posts"
            if gi in near_free:
                p, d = near_free[gi]
                suggestion = (
                    f"nearest unassigned person: {sids[p]}, {_fmt_m(d)} away; raise max_distance "
                    f"or recruit residents of grid {g}"
                )
            else:
                suggestion = f"nobody on the roster is unassigned; recruit residents of grid {g}"
        rows.append(
            {
                "grid_code": g,
                "role": r,
                "missing": missing,
                "reason": reason,
                "suggestion": suggestion,
            }
        )
    out = pd.DataFrame(rows, columns=list(SHORTFALL_COLUMNS))
    out["missing"] = out["missing"].astype("int64")
    return out


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
