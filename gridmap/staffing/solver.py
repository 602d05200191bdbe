"""Exact assignment of people to posts: sparse LAPJV, and staged HiGHS LPs as the fallback."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from gridmap.errors import StaffingError
from gridmap.staffing.roster import _CHIEF

__all__: list[str] = []

_EXACT = 2**53  # float64 represents every integer below this exactly


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
