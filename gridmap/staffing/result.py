"""The staffing result: posts, shortfalls with suggestions, moves, and their summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gridmap.partition.plan import Plan
from gridmap.staffing.roster import _CHIEF, _WORKER, ROLES

__all__ = ["ASSIGNMENT_COLUMNS", "SHORTFALL_COLUMNS", "MOVE_COLUMNS", "StaffingResult"]

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
        >>> from gridmap.staffing import assign_staff
        >>> from gridmap.staffing.roster import _example
        >>> plan, staff = _example()
        >>> assign_staff(plan, staff).to_plan(plan).assignments["role"].tolist()
        ['chief', 'worker', 'worker']
        """
        return plan.replace(assignments=self.assignments.copy())


# ----------------------------------------------------------------------------- input


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
