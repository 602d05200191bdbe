"""Fill every post of a plan by one joint optimisation (see :mod:`gridmap.staffing`)."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from gridmap.errors import StaffingError
from gridmap.partition.plan import Plan
from gridmap.staffing.result import StaffingResult, _result
from gridmap.staffing.roster import (
    _CHIEF,
    _WORKER,
    ROLES,
    _check_params,
    _current_posts,
    _grids,
    _pairs,
    _staff_table,
)
from gridmap.staffing.solver import _EXACT, _solve_lap, _solve_lap_pairs, _solve_staged

__all__ = ["assign_staff"]


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
    >>> from gridmap.staffing.roster import _example
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
