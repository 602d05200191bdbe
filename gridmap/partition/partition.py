"""The partitioner: cut every community into household-balanced grids.

:func:`partition` is the public entry point. Per community (independently, so
in parallel with ``n_jobs`` worker processes) it builds the units of
:mod:`gridmap.partition.units`, solves the unit graph with
:mod:`gridmap.partition.solver`, and dissolves the cells of each grid into
one polygon. Codes, names and 四至 come from :mod:`gridmap.partition.codes`,
the quality figures from :mod:`gridmap.partition.quality`.
"""

from __future__ import annotations

import ctypes
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from gridmap.errors import CRSError, InfeasibleError, InputError, LayerError, NotFoundError
from gridmap.layers import Layers
from gridmap.partition.plan import GRID_COLUMNS, Plan
from gridmap.partition.precision import snap_layers
from gridmap.partition.quality import in_threads
from gridmap.partition.solver import Weights, balance_load, load_balance, solve
from gridmap.partition.units import build_units
from gridmap.partition.villages import keep_settlements_whole, open_land_weights

__all__ = ["partition"]


# --------------------------------------------------------------------------- guards


def _check_params(
    layers: Layers,
    min_households: int,
    max_households: int,
    target: float | None,
    n_grids: int | Mapping[str, int] | None,
    previous: Plan | None,
    locked: list[str],
    n_jobs: int,
) -> float:
    if min_households < 0 or max_households <= 0:
        raise InfeasibleError(
            f"min_households={min_households}, max_households={max_households}: the band needs "
            "0 <= min <= max and max > 0; use e.g. min_households=200, max_households=500."
        )
    if min_households > max_households:
        raise InfeasibleError(
            f"min_households={min_households} is above max_households={max_households}; no grid "
            "can satisfy that band. Swap the values or widen the band (e.g. 200-500)."
        )
    if target is None:
        target = (min_households + max_households) / 2
    if not (min_households <= target <= max_households) or target <= 0:
        raise InfeasibleError(
            f"target={target} lies outside the band {min_households}-{max_households}; pick a "
            "target inside it or leave target=None (the middle of the band)."
        )
    if layers.crs is None or not layers.crs.is_projected:
        raise CRSError(
            f"layers are in {getattr(layers.crs, 'name', None)!r}; the partitioner needs a "
            "projected CRS in metres: pass the output of gridmap.validation.validate_layers or "
            "layers.to_crs(<projected CRS>)."
        )
    ids = set(layers.communities["community_id"].astype(str))
    if isinstance(n_grids, Mapping):
        unknown = sorted(set(map(str, n_grids)) - ids)
        if unknown:
            raise LayerError(
                f"n_grids names unknown community id(s) {unknown[:5]}; use ids from "
                "layers.communities['community_id']."
            )
        values = list(n_grids.values())
    elif n_grids is not None:
        values = [n_grids]
    else:
        values = []
    bad = [v for v in values if not isinstance(v, int | np.integer) or v < 1]
    if bad:
        raise InputError(f"n_grids must be whole numbers >= 1, got {bad[:3]}; e.g. n_grids=12.")
    if locked and previous is None:
        raise InputError(
            f"locked={locked[:3]} needs the plan those grids come from: pass previous=<Plan>."
        )
    if locked and previous is not None:
        known = set(previous.grids["grid_code"].astype(str))
        missing = sorted(set(locked) - known)
        if missing:
            raise NotFoundError(
                f"locked grid code(s) {missing[:5]} are not in the previous plan; use codes from "
                "previous.grids['grid_code']."
            )
    if n_jobs < 1:
        raise InputError(f"n_jobs={n_jobs} must be >= 1 (worker processes).")
    return float(target)


# --------------------------------------------------------------------------- per community


def _polygon_parts(geom: Any) -> list[Any]:
    return [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) == 3 and p.area > 0]


def _union(cells: np.ndarray) -> Any:
    if len(cells) == 1:
        return cells[0]
    try:
        out = shapely.coverage_union_all(cells)
    except shapely.errors.GEOSException:
        out = shapely.union_all(cells)
    if not shapely.is_valid(out):
        out = shapely.make_valid(out)
    return out


def _grid_polygons(
    cells: np.ndarray, cell_label: np.ndarray, cell_hh: np.ndarray
) -> tuple[dict[int, Any], np.ndarray, int, int]:
    """Dissolve cells per grid and make every grid one Polygon.

    A grid whose cells dissolve into several polygons (pieces joined only at a
    point) keeps its heaviest piece; every other piece, with its cells and
    buildings, joins the grid sharing the longest boundary with it, or becomes
    a grid of its own when it shares none.
    """
    cell_label = cell_label.copy()
    labels = np.unique(cell_label)
    geoms: dict[int, Any] = {int(g): _union(cells[cell_label == g]) for g in labels}
    reps = shapely.point_on_surface(cells)
    nxt = int(labels.max()) + 1 if len(labels) else 0
    moved = split = 0
    for g in [int(x) for x in labels]:
        parts = _polygon_parts(geoms[g])
        if len(parts) <= 1:
            if parts:
                geoms[g] = parts[0]
            continue
        cg = np.flatnonzero(cell_label == g)
        inside = np.array([[shapely.intersects(p, r) for p in parts] for r in reps[cg]])
        which = np.argmax(inside, axis=1)
        weight = [(float(cell_hh[cg[which == k]].sum()), parts[k].area) for k in range(len(parts))]
        main = max(range(len(parts)), key=lambda k: weight[k])
        geoms[g] = parts[main]
        for k, piece in enumerate(parts):
            if k == main:
                continue
            mine = cg[which == k]
            best, best_len = -1, 0.01
            for h, other in geoms.items():
                if h == g:
                    continue
                ln = shapely.length(shapely.intersection(piece.boundary, other.boundary))
                if ln > best_len:
                    best, best_len = h, ln
            merged = _union(np.array([geoms[best], piece], dtype=object)) if best >= 0 else None
            if merged is not None and shapely.get_type_id(merged) == 3:
                cell_label[mine] = best
                geoms[best] = merged
                moved += 1
            else:
                cell_label[mine] = nxt
                geoms[nxt] = piece
                nxt += 1
                split += 1
    return geoms, cell_label, moved, split


def _solve_between_arterials(
    units: Any,
    *,
    min_households: int,
    max_households: int,
    target: float,
    n_grids: int | None,
    seed: int | None,
    initial: np.ndarray | None,
    dedicated_area: float | None = None,
    weights: Weights | None = None,
) -> tuple[np.ndarray, list[str], dict[int, str], set[int]]:
    """Solve with arterials as borders (:mod:`gridmap.partition.pieces`).

    Returns the labels, the notes and the grids that had to span a main road,
    with the reason.
    """
    from gridmap.partition.pieces import (
        DEAD_END_REASON,
        EMPTY_LAND_REASON,
        arterial_pieces,
        dedicated_grids,
        empty_land_grids,
        forced_grids,
        restrict,
    )

    pieces = (
        arterial_pieces(units, min_households=min_households, dedicated_area=dedicated_area)
        if n_grids is None
        else None
    )
    if pieces is None:
        labels, notes = solve(
            units,
            min_households=min_households,
            max_households=max_households,
            target=target,
            n_grids=n_grids,
            seed=seed,
            initial=initial,
            weights=weights,
        )
        return labels, notes, {}, set()
    before = len(np.unique(pieces.piece))
    labels, notes = solve(
        restrict(units, pieces.piece),
        min_households=min_households,
        max_households=max_households,
        target=target,
        seed=seed,
        initial=initial,
        weights=weights,
    )
    if pieces.n_original > 1:  # the pieces' own note below says it (not when only a dead end)
        notes = [n for n in notes if not n.startswith("community is in ")]
    lead = (
        [
            f"main roads cut the community into {pieces.n_original} pieces with households; "
            f"grids follow them ({before} partitioned on their own)"
        ]
        if pieces.n_original > 1
        else []
    )
    lead.extend(pieces.merged)
    # land without households across a main road: a candidate, named where the road runs
    # through the grid (:func:`_empty_land_reasons`); any other reason comes first
    forced = {**empty_land_grids(labels, pieces), **forced_grids(labels, pieces, units.households)}
    total = int(np.asarray(units.households).sum())
    if total < min_households and pieces.n_original > 1:
        forced = {
            int(g): f"the community holds only {total} households: one grid across its main roads"
            for g in np.unique(labels)
        }
    dedicated = dedicated_grids(labels, pieces)
    if dedicated:
        notes = [
            n
            for n in notes
            if not (n.startswith("only ") or (n.startswith("piece ") and "no households" in n))
        ]
        ded_hh = [int(np.asarray(units.households)[labels == g].sum()) for g in sorted(dedicated)]
        lead.append(
            f"{len(dedicated)} dedicated grid(s) 专属网格 for land between main roads without "
            f"households (at least 0.5 ha) or with few and at least "
            f"{(dedicated_area or 0.0) / 1e4:g} ha (households: "
            f"{', '.join(map(str, ded_hh))}); outside the band"
        )
        # a dedicated site is outside the band by design; a main road ending inside it, or
        # one between it and empty land it was given across that road, is named
        forced = {
            g: why
            for g, why in forced.items()
            if g not in dedicated or why.startswith((DEAD_END_REASON, EMPTY_LAND_REASON))
        }
    return labels, lead + notes, forced, dedicated


def _unit_load(units: Any, load_of: Mapping[str, float]) -> np.ndarray:
    """Workload per unit: its buildings' loads (a split building's parts by households)."""
    mem = units.members
    bid = mem["building_id"].astype(str)
    bl = bid.map(load_of).fillna(0.0).to_numpy(dtype=float)
    hh = mem["households"].to_numpy(dtype=float)
    tot = bid.map(pd.Series(hh).groupby(bid.to_numpy()).sum()).to_numpy(dtype=float)
    nparts = bid.map(bid.value_counts()).to_numpy(dtype=float)
    share = np.where(tot > 0, hh / np.where(tot > 0, tot, 1.0), 1.0 / nparts)
    unit = units.cell_unit[mem["cell"].to_numpy()]
    return np.bincount(unit, weights=bl * share, minlength=units.n)


def _balance_on_load(
    units: Any,
    labels: np.ndarray,
    load: np.ndarray,
    dedicated: set[int],
    *,
    min_households: int,
    max_households: int,
    target: float,
    seed: int | None,
) -> tuple[np.ndarray, list[float], str]:
    """Rebalance a community's grids on workload (:func:`~gridmap.partition.solver.balance_load`).

    Units do not move across a main road that does not already run inside a
    grid, nor in or out of dedicated grids. Returns the labels, the residential
    grids' loads before, and a note when units moved.
    """
    from gridmap.partition.pieces import restrict

    resid = np.array([g not in dedicated for g in range(int(labels.max()) + 1)], dtype=bool)
    per = np.bincount(labels, weights=load, minlength=len(resid))
    present = np.bincount(labels, minlength=len(resid)) > 0
    before = [float(v) for v in per[present & resid]]
    view = units
    frozen = ~resid[labels]
    art = getattr(units, "edge_arterial", None)
    e = np.asarray(units.edges, dtype=np.int64).reshape(-1, 2)
    if len(e):
        # no move across a main road between two grids, nor into a dedicated grid
        cut = frozen[e[:, 0]] | frozen[e[:, 1]]
        if art is not None:
            cut |= (np.asarray(art) > 0.5 * np.asarray(units.edge_length)) & (
                labels[e[:, 0]] != labels[e[:, 1]]
            )
        if cut.any():
            keep = ~cut
            graph = sparse.coo_matrix(
                (np.ones(int(keep.sum())), (e[keep, 0], e[keep, 1])), shape=(units.n, units.n)
            )
            view = restrict(units, connected_components(graph, directed=False)[1])
    out = balance_load(
        view,
        labels,
        load,
        min_households=min_households,
        max_households=max_households,
        target=target,
        seed=seed,
        frozen=frozen,
    )
    moved = int((out != labels).sum())
    note = ""
    if moved:
        cv0 = load_balance(labels[~frozen], load[~frozen])[0]
        cv1 = load_balance(out[~frozen], load[~frozen])[0]
        note = (
            f"balanced on workload: {moved} unit(s) moved between grids, CV of load "
            f"{cv0:.3f} -> {cv1:.3f}"
        )
    return out, before, note


def _out_of_band(units: Any, labels: np.ndarray, lo: int, hi: int) -> float:
    H = np.bincount(labels, weights=units.households)
    H = H[H > 0]
    return float(np.maximum(lo - H, 0).sum() + np.maximum(H - hi, 0).sum())


def _compounds_in_the_way(units: Any, labels: np.ndarray, lo: int, hi: int) -> set[str]:
    """Compounds (kept whole) in or next to out-of-band grids of a band-feasible community."""
    total = int(units.households.sum())
    if (
        units.compound is None
        or total < lo
        or not any(k * lo <= total <= k * hi for k in range(1, total // max(lo, 1) + 1))
    ):
        return set()
    H = np.bincount(labels, weights=units.households)
    bad = np.flatnonzero((H > 0) & ((H < lo) | (H > hi)))
    if len(bad) == 0:
        return set()
    e = units.edges
    near = set(bad.tolist())
    for a, b in e:
        if labels[a] in bad or labels[b] in bad:
            near.add(int(labels[a]))
            near.add(int(labels[b]))
    mask = np.isin(labels, list(near))
    return {str(c) for c in units.compound[mask] if c is not None}


def _warm_start(units: Any, prev_map: dict[str, str]) -> tuple[np.ndarray | None, list[str]]:
    """Previous grid per unit (index into the sorted previous codes; -1 new) and those codes.

    A unit takes the code holding most of its households (ties: the first code).
    """
    if not prev_map:
        return None, []
    mem = units.members
    pcode = mem["building_id"].map(prev_map)
    ok = pcode.notna().to_numpy()
    if not ok.any():
        return None, []
    prev_codes = sorted(set(pcode[ok]))
    code_idx = {c: i for i, c in enumerate(prev_codes)}
    unit_of = units.cell_unit[mem["cell"].to_numpy()]
    w = mem["households"].to_numpy(dtype=float) + 1e-3
    votes = pd.DataFrame(
        {"unit": unit_of[ok], "code": pcode[ok].map(code_idx).to_numpy(), "w": w[ok]}
    )
    best = (
        votes.groupby(["unit", "code"], sort=True)["w"]
        .sum()
        .reset_index()
        .sort_values(["unit", "w", "code"], ascending=[True, False, True])
        .drop_duplicates("unit")
    )
    initial = np.full(units.n, -1, dtype=np.int64)
    initial[best["unit"].to_numpy()] = best["code"].to_numpy()
    return initial, prev_codes


def _solve_community(task: dict[str, Any]) -> dict[str, Any]:
    """Partition one community; pure function of ``task`` (runs in worker processes)."""
    cid: str = task["community_id"]
    geom = task["geometry"]
    if not shapely.is_valid(geom):
        geom = shapely.make_valid(geom)
    blds: pd.DataFrame = task["buildings"]
    min_h, max_h, target = task["min"], task["max"], task["target"]
    notes: list[str] = []
    locked: list[dict[str, Any]] = task["locked"]
    grid_rows: list[dict[str, Any]] = []
    member_rows: list[pd.DataFrame] = []
    free = geom
    bid = blds["building_id"].astype(str)
    taken = np.zeros(len(blds), dtype=bool)
    if locked:
        lgeoms = np.array([lk["geometry"] for lk in locked], dtype=object)
        free = shapely.difference(geom, shapely.union_all(lgeoms))
        reps = shapely.point_on_surface(np.asarray(blds["geometry"], dtype=object))
        for lk in locked:
            mine = bid.isin(lk["members"]).to_numpy() | shapely.contains(lk["geometry"], reps)
            mine &= ~taken
            taken |= mine
            rows = lk["rows"]
            extra = blds.loc[mine & ~bid.isin(set(rows["building_id"])).to_numpy()]
            if len(extra):
                notes.append(
                    f"{len(extra)} new building(s) inside locked grid {lk['code']} joined it"
                )
                rows = pd.concat(
                    [
                        rows,
                        pd.DataFrame(
                            {
                                "building_id": extra["building_id"].astype(str),
                                "part": None,
                                "households": extra["households"].astype(np.int64),
                            }
                        ),
                    ],
                    ignore_index=True,
                )
            rows = rows[rows["building_id"].isin(set(bid))].copy()
            # whole buildings carry today's households; parts keep their split
            now = dict(zip(bid, blds["households"].astype(np.int64), strict=True))
            whole = rows["part"].isna()
            rows.loc[whole, "households"] = rows.loc[whole, "building_id"].map(now)
            member_rows.append(rows.assign(grid_key=lk["code"]))
            grid_rows.append(
                {
                    "key": lk["code"],
                    "geometry": lk["geometry"],
                    "locked": True,
                    "kind": lk.get("kind") or "residential",
                }
            )
        notes.append(f"{len(locked)} locked grid(s) kept as they were")
    free_b = blds.loc[~taken]
    hh_parts: dict[str, str] = {}
    load_before: list[float] = []
    if free is not None and not shapely.is_empty(free) and shapely.area(free) > 1.0:
        units = build_units(
            free,
            free_b,
            households=task["households"],
            roads=task["roads"],
            barriers=task["barriers"],
            compounds=task["compounds"],
            min_households=min_h,
            max_households=max_h,
            target=target,
            road_classes=task.get("road_classes"),
        )
        notes.extend(units.notes)
        # natural villages that fit the band become one unit (gridmap.partition.villages)
        units_unmerged = units
        units, village_notes = keep_settlements_whole(units, free_b, max_households=max_h)
        # villages among fields: borders along tracks before round grids
        weights = open_land_weights(units, free_b) if village_notes else None
        prev_map: dict[str, str] = task["previous"]
        initial, prev_codes = _warm_start(units, prev_map)

        def solve(u: Any, n_grids: Any, initial: np.ndarray | None) -> Any:
            return _solve_between_arterials(
                u,
                dedicated_area=task.get("dedicated_area"),
                min_households=min_h,
                max_households=max_h,
                target=target,
                n_grids=n_grids,
                seed=task["seed"],
                initial=initial,
                weights=weights,
            )

        labels, solver_notes, forced, dedicated = solve(units, task["n_grids"], initial)
        retry = (
            _compounds_in_the_way(units, labels, min_h, max_h) if task["n_grids"] is None else set()
        )
        if retry:
            units2 = build_units(
                free,
                free_b,
                households=task["households"],
                roads=task["roads"],
                barriers=task["barriers"],
                compounds=task["compounds"],
                min_households=min_h,
                max_households=max_h,
                target=target,
                split_compounds=retry,
                road_classes=task.get("road_classes"),
            )
            units2, _ = keep_settlements_whole(units2, free_b, max_households=max_h)
            if len(units2.cells) == len(units.cells):
                start = np.full(units2.n, -1, dtype=np.int64)
                start[units2.cell_unit] = labels[units.cell_unit]
                labels2, notes2, forced2, dedicated2 = solve(units2, None, start)
                if _out_of_band(units2, labels2, min_h, max_h) < _out_of_band(
                    units, labels, min_h, max_h
                ):
                    units, labels = units2, labels2
                    forced, dedicated = forced2, dedicated2
                    solver_notes = [
                        *notes2,
                        f"{len(retry)} compound(s) that fit the band were split to reach it",
                    ]
        if village_notes and _out_of_band(units, labels, min_h, max_h) > 0:
            # whole villages cannot all be grouped into the band: cut them where cheapest
            units3, village_notes3 = keep_settlements_whole(
                units_unmerged, free_b, max_households=max_h, merge=False
            )
            start3, _ = _warm_start(units3, prev_map)
            labels3, notes3, forced3, dedicated3 = solve(units3, task["n_grids"], start3)
            if _out_of_band(units3, labels3, min_h, max_h) < _out_of_band(
                units, labels, min_h, max_h
            ):
                units, labels, forced, dedicated = units3, labels3, forced3, dedicated3
                solver_notes, village_notes = notes3, village_notes3
        notes.extend(village_notes)
        notes.extend(solver_notes)
        if task.get("load") is not None:
            labels, load_before, load_note = _balance_on_load(
                units,
                labels,
                _unit_load(units, dict(zip(bid, task["load"], strict=True))),
                dedicated,
                min_households=min_h,
                max_households=max_h,
                target=target,
                seed=task["seed"],
            )
            if load_note:
                notes.append(load_note)
        mem = units.members
        cell_hh = np.bincount(
            mem["cell"].to_numpy(), weights=mem["households"], minlength=len(units.cells)
        )
        geom_of, cell_label, moved, split = _grid_polygons(
            units.cells, labels[units.cell_unit], cell_hh
        )
        # a grid keeps its "forced across a main road" reason when most of it stays
        forced_of = {
            int(g): why
            for g, why in forced.items()
            if np.any(cell_label[labels[units.cell_unit] == g] == g)
        }
        kind_of = {int(g): "dedicated" for g in dedicated}
        if moved:
            notes.append(f"{moved} detached piece(s) of land joined the neighbouring grid")
        if split:
            notes.append(
                f"{split} piece(s) touching the rest of their grid only at a point became "
                "grids of their own"
            )
        for g, poly in sorted(geom_of.items()):
            key = prev_codes[g] if g < len(prev_codes) else f"new-{g}"
            grid_rows.append(
                {
                    "key": key,
                    "geometry": poly,
                    "locked": False,
                    "forced": forced_of.get(g),
                    "kind": kind_of.get(g, "residential"),
                }
            )
        gl = cell_label[mem["cell"].to_numpy()]
        keys = np.array(
            [prev_codes[g] if g < len(prev_codes) else f"new-{g}" for g in gl], dtype=object
        )
        member_rows.append(
            pd.DataFrame(
                {
                    "building_id": mem["building_id"].to_numpy(),
                    "part": mem["part"].to_numpy(),
                    "households": mem["households"].to_numpy(),
                    "grid_key": keys,
                }
            )
        )
        hh_parts = {h: str(keys[row]) for h, row in units.household_parts.items()}
        part_label = {h: mem["part"].iloc[row] for h, row in units.household_parts.items()}
    else:
        part_label = {}
        if len(free_b):
            notes.append(f"{len(free_b)} building(s) outside every locked grid but no free land")
    members = (
        pd.concat(member_rows, ignore_index=True)
        if member_rows
        else pd.DataFrame(columns=["building_id", "part", "households", "grid_key"])
    )
    return {
        "community_id": cid,
        "grids": grid_rows,
        "members": members,
        "household_parts": hh_parts,
        "household_part_label": part_label,
        "load_before": load_before,
        "notes": notes,
    }


# --------------------------------------------------------------------------- assembly


def _near(
    tree: shapely.STRtree | None, values: np.ndarray, area: Any, geoms: np.ndarray | None = None
) -> np.ndarray:
    """Return the ``values`` whose line (``geoms``, default ``values``) enters ``area``.

    A line that only touches the community's edge from outside is left out: it cannot cut
    the community, and under snap-rounded noding its vertices would still nudge the lines
    inside by a fraction of a millimetre — so a community's grids would depend on whether
    its neighbours' streets were read with it (a whole city, or one community of a
    partitioned dataset on a cluster).
    """
    if tree is None:
        return np.empty(0, dtype=object)
    idx = np.sort(tree.query(area, predicate="intersects"))
    lines = (values if geoms is None else geoms)[idx]
    return values[idx[~shapely.touches(lines, area)]]


def _community_seed(seed: int | None, cid: str) -> int | None:
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed), zlib.crc32(cid.encode())]).generate_state(1)[0])


def _tasks(
    layers: Layers,
    *,
    min_households: int,
    max_households: int,
    target: float,
    n_grids: int | Mapping[str, int] | None,
    seed: int | None,
    previous: Plan | None,
    locked: list[str],
) -> list[dict[str, Any]]:
    comms = layers.communities
    b = layers.buildings
    cols = [c for c in ("building_id", "households", "compound_id", "levels", "geometry") if c in b]
    bframe = pd.DataFrame({c: b[c].to_numpy() for c in cols if c != "geometry"})
    bframe["geometry"] = np.asarray(b.geometry.array, dtype=object)
    bframe["building_id"] = bframe["building_id"].astype(str).astype(object)
    bframe["households"] = pd.to_numeric(bframe["households"]).fillna(0).astype(np.int64)
    bcid = b["community_id"].astype(object).where(b["community_id"].notna(), None).to_numpy()
    by_comm = {
        str(k): v.index.to_numpy()
        for k, v in pd.Series(bcid)
        .dropna()
        .astype(str)
        .groupby(pd.Series(bcid).dropna().astype(str))
    }

    def lines(
        frame: gpd.GeoDataFrame | None, column: str
    ) -> tuple[shapely.STRtree | None, np.ndarray, np.ndarray]:
        if frame is None or len(frame) == 0:
            return None, np.empty(0, dtype=object), np.empty(0, dtype=object)
        g = np.asarray(frame.geometry.array, dtype=object)
        ok = ~shapely.is_missing(g) & ~shapely.is_empty(g)
        vals = (
            frame[column].astype(object).to_numpy()
            if column in frame.columns
            else np.full(len(frame), None, dtype=object)
        )
        return shapely.STRtree(g[ok]), g[ok], vals[ok]

    rtree, rgeoms, rclass = lines(layers.roads, "class")
    btree, bgeoms, _ = lines(layers.barriers, "kind")
    cp = layers.compounds
    if cp is not None and len(cp):
        cgeoms = np.asarray(cp.geometry.array, dtype=object)
        cids_arr = cp["compound_id"].astype(str).to_numpy(dtype=object)
        ctree: shapely.STRtree | None = shapely.STRtree(cgeoms)
    else:
        cgeoms = np.empty(0, dtype=object)
        cids_arr = np.empty(0, dtype=object)
        ctree = None
    hh = layers.households
    big_ids = set(bframe.loc[bframe["households"] > max_households, "building_id"])
    hh_big = None
    if hh is not None and len(hh) and big_ids:
        keep = [c for c in ("household_id", "building_id", "unit", "floor") if c in hh.columns]
        hh_big = pd.DataFrame({c: hh[c].to_numpy() for c in keep})
        hh_big["building_id"] = hh_big["building_id"].astype(str)
        hh_big["household_id"] = hh_big["household_id"].astype(str)
        hh_big = hh_big[hh_big["building_id"].isin(big_ids)]
    prev_map: dict[str, str] = {}
    locked_by_comm: dict[str, list[dict[str, Any]]] = {}
    if previous is not None:
        pb = previous.buildings
        pb = pb[pb["grid_code"].notna()].assign(
            building_id=lambda d: d["building_id"].astype(str),
            grid_code=lambda d: d["grid_code"].astype(str),
        )
        whole = (
            pb.sort_values(["building_id", "households"], ascending=[True, False], kind="stable")
            .drop_duplicates("building_id")
            .set_index("building_id")["grid_code"]
        )
        lockset = set(locked)
        prev_map = {str(k): str(v) for k, v in whole.items() if v not in lockset}
        pg = previous.grids
        for code in locked:
            row = pg[pg["grid_code"].astype(str) == code].iloc[0]
            rows = pb[pb["grid_code"] == code][["building_id", "part", "households"]]
            locked_by_comm.setdefault(str(row["community_id"]), []).append(
                {
                    "code": code,
                    "geometry": row.geometry,
                    "members": set(rows["building_id"]),
                    "kind": str(row["kind"]) if "kind" in pg.columns else "residential",
                    "rows": rows.reset_index(drop=True),
                }
            )
    tasks = []
    for i in range(len(comms)):
        cid = str(comms["community_id"].iloc[i])
        geom = comms.geometry.iloc[i]
        idx = by_comm.get(cid, np.empty(0, dtype=np.int64))
        sub = bframe.iloc[idx].reset_index(drop=True)
        comp = None
        if ctree is not None:
            ci = np.sort(ctree.query(geom, predicate="intersects"))
            comp = pd.DataFrame({"compound_id": cids_arr[ci], "geometry": cgeoms[ci]})
        k = n_grids.get(cid) if isinstance(n_grids, Mapping) else n_grids
        sub_hh = None
        if hh_big is not None:
            sub_hh = hh_big[hh_big["building_id"].isin(set(sub["building_id"]))]
        tasks.append(
            {
                "index": i,
                "community_id": cid,
                "geometry": geom,
                "buildings": sub,
                "households": sub_hh,
                "roads": _near(rtree, rgeoms, geom),
                "road_classes": _near(rtree, rclass, geom, rgeoms),
                "barriers": _near(btree, bgeoms, geom),
                "compounds": comp,
                "min": min_households,
                "max": max_households,
                "target": target,
                "n_grids": None if k is None else int(k),
                "seed": _community_seed(seed, cid),
                # in building_id order, as prev_map (a dict comprehension over prev_map
                # itself would cost communities x buildings)
                "previous": {b: prev_map[b] for b in sorted(sub["building_id"]) if b in prev_map},
                "locked": locked_by_comm.get(cid, []),
            }
        )
    return tasks


def _empty_land_reasons(grids: pd.DataFrame, layers: Layers) -> pd.Series:
    """Each grid's ``forced`` reason, less "empty land across a main road" where that road is along.

    A grid given land without households across a main road (a verge, a median, the
    island between two roads forking at a junction) holds that road; the quality
    report counts it along the border (a median between carriageways) or through the
    grid. The reason is kept only where the report's measure
    (:func:`gridmap.partition.quality._arterials_inside`) finds more than
    :data:`~gridmap.partition.quality.ARTERIAL_LIMIT` metres through: elsewhere there
    is nothing to name.

    Examples
    --------
    >>> import shapely
    >>> from types import SimpleNamespace
    >>> from gridmap.partition.pieces import EMPTY_LAND_REASON
    >>> roads = gpd.GeoDataFrame({"class": ["primary"]},
    ...     geometry=[shapely.LineString([(100, -10), (100, 110)])])
    >>> g = pd.DataFrame({"community_id": ["c", "c"], "forced": [f"{EMPTY_LAND_REASON} (x)",
    ...     f"{EMPTY_LAND_REASON} (y)"], "geometry": [shapely.box(0, 0, 150, 100),
    ...     shapely.box(150, 0, 200, 100)]})
    >>> _empty_land_reasons(g, SimpleNamespace(roads=roads, barriers=None)).isna().tolist()
    [False, True]
    """
    from gridmap.partition.pieces import EMPTY_LAND_REASON
    from gridmap.partition.quality import (
        ARTERIAL_LIMIT,
        ROAD_TOLERANCE,
        _arterials_inside,
        _line_kinds,
    )

    forced = grids["forced"]
    cand = forced.map(lambda v: isinstance(v, str) and v.startswith(EMPTY_LAND_REASON))
    if not cand.any():
        return forced
    comm = grids["community_id"].to_numpy()
    mine = np.isin(comm, comm[cand.to_numpy()])  # their communities' edges count
    inside, _ = _arterials_inside(
        np.asarray(grids["geometry"], dtype=object)[mine],
        _line_kinds(layers)["arterials"],
        ROAD_TOLERANCE,
        comm[mine],
        only=cand.to_numpy()[mine],
    )
    through = np.zeros(len(grids))
    through[mine] = inside
    out = forced.astype(object).copy()
    for i in np.flatnonzero(cand.to_numpy()).tolist():
        # named with what the report measures through the grid, or not at all
        out.iloc[i] = (
            str(forced.iloc[i]).replace(
                EMPTY_LAND_REASON, f"{EMPTY_LAND_REASON} ({through[i]:.0f} m of it inside)", 1
            )
            if through[i] > ARTERIAL_LIMIT
            else None
        )
    return out


def _quality(
    grids: gpd.GeoDataFrame,
    brows: pd.DataFrame,
    layers: Layers,
    *,
    min_households: int,
    max_households: int,
    previous: Plan | None,
    households: pd.DataFrame | None,
    notes: dict[str, list[str]],
    area_cap_m2: float | None = None,
    load: pd.Series | None = None,
) -> Any:
    from gridmap.partition.quality import quality_report

    return quality_report(
        grids,
        brows,
        layers,
        min_households=min_households,
        max_households=max_households,
        previous=previous,
        households=households,
        notes=notes,
        area_cap_m2=area_cap_m2,
        load=load,
    )


def _give_back_freed_memory() -> None:
    """Return the C heap's free pages to the system (glibc ``malloc_trim``; elsewhere nothing).

    GEOS and Arrow free their temporaries, but glibc keeps freed heap pages mapped, so
    every such stage of a plan would otherwise add its peak to the process for good.
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            _MALLOC_TRIM = ctypes.CDLL(None).malloc_trim
        except (AttributeError, OSError, TypeError):  # not glibc (macOS, Windows)
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None


def _lookup(values: np.ndarray, keys: Any, answers: Any) -> np.ndarray:
    """Look each of ``values`` up among unique ``keys``: its answer, or None where none.

    What ``pd.Series(values).map(pd.Series(answers, index=keys))`` answers (with None
    for NaN), without turning the values into an Arrow-text index first.

    Examples
    --------
    >>> _lookup(np.array(["b", "x", "a"], dtype=object), ["a", "b"], ["A", "B"]).tolist()
    ['B', None, 'A']
    """
    index = pd.Index(np.asarray(keys, dtype=object), dtype=object)
    pos = index.get_indexer(pd.Index(values, dtype=object))
    table = np.concatenate([np.asarray(answers, dtype=object), np.array([None], dtype=object)])
    out = table[pos]  # -1 reads the None at the end
    out[pd.isna(out)] = None
    return out


def _grid_loads(bld: pd.DataFrame, bload: pd.DataFrame) -> pd.Series:
    """Workload per grid code from the membership rows (parts of a building by households)."""
    load_of = bload.set_index("building_id")["load"]
    bid = bld["building_id"].astype(str)
    hh = bld["households"].to_numpy(dtype=float)
    tot = bid.map(pd.Series(hh).groupby(bid.to_numpy()).sum()).to_numpy(dtype=float)
    nparts = bid.map(bid.value_counts()).to_numpy(dtype=float)
    share = np.where(tot > 0, hh / np.where(tot > 0, tot, 1.0), 1.0 / nparts)
    w = bid.map(load_of).fillna(0.0).to_numpy(dtype=float) * share
    return pd.Series(w).groupby(bld["grid_code"].astype(str).to_numpy()).sum()


def partition(
    layers: Layers,
    *,
    min_households: int = 200,
    max_households: int = 500,
    target: float | None = None,
    n_grids: int | Mapping[str, int] | None = None,
    seed: int | None = 0,
    previous: Plan | None = None,
    locked: Iterable[str] | None = None,
    n_jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
    dedicated_area_m2: float | None = 50_000.0,
    area_cap_m2: float | None = 1_000_000.0,
    load_weights: Mapping[str, float] | None = None,
    cases: pd.DataFrame | None = None,
) -> Plan:
    """Cut every community into contiguous, compact, household-balanced grids.

    Grids nest in communities, tile each community exactly (land without
    households joins an adjacent grid), never split a building unless it alone
    exceeds ``max_households`` (then by entrance or floors, reported), keep
    compounds (小区) whole when they fit, and prefer roads and barriers as
    boundaries.

    Parameters
    ----------
    layers : gridmap.layers.Layers
        Validated layers in a projected CRS (:func:`gridmap.validation.validate_layers`).
    min_households, max_households : int, default 200, 500
        The household band every grid should fall in.
    target : float, optional
        Households per grid to aim at (default: middle of the band); the number
        of grids per community is the band-feasible count nearest
        ``total / target``.
    n_grids : int or dict, optional
        Fix the number of grids (for every community, or per community id).
    seed : int or None, default 0
        Same seed, same grids (also with any ``n_jobs``).
    previous : Plan, optional
        An earlier plan: unlocked grids start from its membership and are only
        repaired where they break the band; codes of kept grids are kept.
    locked : iterable of str, optional
        Grid codes of ``previous`` kept exactly (geometry, code, members).
    n_jobs : int, default 1
        Worker processes; communities are solved in parallel.
    progress : callable, optional
        Called as ``progress(done_communities, total)``.
    dedicated_area_m2 : float or None, default 50,000
        Land between main roads (arterials) of at least this area holding fewer
        than ``min_households`` becomes a dedicated grid (专属网格, ``kind`` =
        ``"dedicated"``: offices, a campus, a park), outside the band, instead
        of joining a residential grid across a main road. None: never.
    area_cap_m2 : float or None, default 1,000,000
        Largest area of a residential grid; the report names the grids above
        it (``over_area_cap``). None: no cap.
    load_weights : dict of str to float, optional
        Balance the grids on a workload as well as on households, e.g.
        ``{"households": 1, "cases": 0.2, "care": 2}``
        (:func:`gridmap.partition.load.building_loads` lists the terms). The
        household band stays a hard constraint; the load is balanced second
        (boundary units move between neighbouring grids while that lowers the
        spread of load without leaving the band or costing much compactness).
        The report gives the load per grid and its CV and max/median, before
        (the households-only grids of the same run) and after.
    cases : pandas.DataFrame, optional
        Cases for the ``cases`` term: a GeoDataFrame of points (any CRS) or a
        frame with ``building_id``; each counts for the building it lies in, or
        the nearest within 100 m.

    Returns
    -------
    Plan
        Grids, building and household membership, the quality report (with a
        ``notes`` text per community) and the parameters.

    Raises
    ------
    InfeasibleError
        ``min_households > max_households`` or a target outside the band.
    CRSError
        Layers not in a projected CRS.
    NotFoundError
        A locked code that is not in ``previous``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> from gridmap.layers import Layers
    >>> comms = gpd.GeoDataFrame({"community_id": ["c1"], "name": ["幸福社区"],
    ...     "code": ["320508019044"]}, geometry=[box(0, 0, 400, 100)], crs=3857)
    >>> blds = gpd.GeoDataFrame({"building_id": [f"b{i}" for i in range(8)],
    ...     "households": [100] * 8, "community_id": ["c1"] * 8},
    ...     geometry=[box(10 + 50 * i, 30, 40 + 50 * i, 70) for i in range(8)], crs=3857)
    >>> plan = partition(Layers(communities=comms, buildings=blds, crs=comms.crs),
    ...                  min_households=200, max_households=500)
    >>> plan.grids[["grid_code", "households"]].values.tolist()
    [['320508019044001', 400], ['320508019044002', 400]]
    >>> round(plan.grids.area.sum())
    40000
    """
    from gridmap.partition.codes import assign_codes, boundary_descriptions

    locked_list = [str(c) for c in (locked or [])]
    target_f = _check_params(
        layers, min_households, max_households, target, n_grids, previous, locked_list, n_jobs
    )
    # one normal form: coordinates on a millimetre grid, so that layers read back from a
    # file or the store (nanometres off) give the same grids (gridmap.partition.precision)
    # (not the households' points: the partitioner reads only their rows, and a million
    # snapped copies of points cost ~250 MB)
    layers = snap_layers(layers.replace(households=None)).replace(households=layers.households)
    bload = None
    if load_weights is not None:
        from gridmap.partition.load import building_loads

        bload = building_loads(layers, dict(load_weights), cases=cases)
    tasks = _tasks(
        layers,
        min_households=min_households,
        max_households=max_households,
        target=target_f,
        n_grids=n_grids,
        seed=seed,
        previous=previous,
        locked=locked_list,
    )
    load_of = bload.set_index("building_id")["load"] if bload is not None else None
    for t in tasks:
        t["dedicated_area"] = dedicated_area_m2
        if load_of is not None:
            t["load"] = t["buildings"]["building_id"].map(load_of).fillna(0.0).to_numpy(float)
    total = len(tasks)
    results: list[dict[str, Any] | None] = [None] * total
    if n_jobs == 1 or total <= 1:
        for t in tasks:
            results[t["index"]] = _solve_community(t)
            if progress is not None:
                progress(t["index"] + 1, total)
    else:
        order = sorted(tasks, key=lambda t: -len(t["buildings"]))
        # processes, not threads: each worker gets its own copy of the layers it is sent,
        # so nothing (prepared geometries, trees, frames) is shared between them
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            futures = {pool.submit(_solve_community, t): t["index"] for t in order}
            for done, fut in enumerate(as_completed(futures), start=1):
                results[futures[fut]] = fut.result()
                if progress is not None:
                    progress(done, total)
        del order, futures
    tasks.clear()  # (their frames are not needed to assemble the plan: freed before its peak)
    return _assemble(
        layers,
        [r for r in results if r is not None],
        min_households=min_households,
        max_households=max_households,
        target=target_f,
        n_grids=n_grids,
        seed=seed,
        previous=previous,
        locked=locked_list,
        assign_codes=assign_codes,
        boundary_descriptions=boundary_descriptions,
        area_cap_m2=area_cap_m2,
        dedicated_area_m2=dedicated_area_m2,
        bload=bload,
        load_weights=load_weights,
    )


_GAP_WIDTH = 2e-3  # metres: hairline gaps between grids that _match_edges closes


def _vertex_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pair, the farthest any vertex of one outline lies from the other outline.

    Unlike the (discrete, vertex-to-vertex) Hausdorff distance this does not
    count a vertex that was dropped from a straight edge, or a micrometre-wide
    spike that was removed, as a move of the whole distance to the next vertex.

    Examples
    --------
    >>> from shapely import Polygon, box
    >>> a = np.array([Polygon([(0, 0), (5, 0), (10, 0), (10, 10), (0, 10)])])
    >>> _vertex_shift(a, np.array([box(0, 0, 10, 10)])).tolist()
    [0.0]
    """
    out = np.zeros(len(a))
    if len(a) == 0:
        return out
    for x, y in ((a, b), (b, a)):
        xy, idx = shapely.get_coordinates(x, return_index=True)
        edges = shapely.boundary(y)
        # vertices as points a slice at a time: the grids of a city have millions of
        # vertices, and a point object each (~100 bytes) would all be alive at once
        for lo in range(0, len(xy), _VERTEX_STEP):
            part = slice(lo, lo + _VERTEX_STEP)
            d = in_threads(shapely.distance, shapely.points(xy[part]), edges[idx[part]])
            np.maximum.at(out, idx[part], d)
    return out


_VERTEX_STEP = 1 << 18


def _match_edges(geoms: np.ndarray, locked: np.ndarray) -> np.ndarray:
    """Make the grids of the whole plan one valid polygonal coverage.

    Each community is tessellated on its own, so where a grid boundary meets
    the community edge it leaves a vertex that the grid across the edge (in the
    neighbouring community) does not have, and the plan is not a valid coverage
    (``shapely.coverage_is_valid``) although nothing overlaps. ``coverage_clean``
    nodes those shared edges. It is applied only when it moves no vertex by more
    than a millimetre off the other outline (:func:`_vertex_shift`), changes no
    grid's area by more than a millimetre along its perimeter and keeps every
    grid one polygon; locked grids keep their geometry exactly.
    """
    if len(geoms) < 2 or bool(shapely.coverage_is_valid(geoms)):
        return geoms
    try:
        cleaned = np.asarray(shapely.coverage_clean(geoms), dtype=object)
        if not shapely.coverage_is_valid(cleaned, gap_width=_GAP_WIDTH):
            # hairline gaps where one community's streets kinked its edge by part of a
            # grid step when noded (gridmap.partition.units._blocks): closed, nothing snapped
            closed = np.asarray(
                shapely.coverage_clean(cleaned, gap_width=_GAP_WIDTH, snapping_distance=0.0),
                dtype=object,
            )
            if _acceptable(closed, geoms):
                cleaned = closed
    except shapely.errors.GEOSException:  # pragma: no cover - overlapping communities
        return geoms
    if not _acceptable(cleaned, geoms):
        return geoms
    return np.where(locked, geoms, cleaned)


def _acceptable(cleaned: np.ndarray, geoms: np.ndarray) -> bool:
    """Whether cleaning moved no vertex by a millimetre and kept every grid one polygon."""
    moved = np.flatnonzero(~shapely.equals_exact(cleaned, geoms, tolerance=0.0))
    ok = (
        (shapely.get_type_id(cleaned[moved]) == 3)
        & (_vertex_shift(cleaned[moved], geoms[moved]) < 1e-3)
        & (
            np.abs(shapely.area(cleaned[moved]) - shapely.area(geoms[moved]))
            < 1e-3 * np.maximum(shapely.length(geoms[moved]), 1.0)
        )
    )
    return bool(ok.all())


def _assemble(
    layers: Layers,
    results: list[dict[str, Any]],
    *,
    min_households: int,
    max_households: int,
    target: float,
    n_grids: Any,
    seed: int | None,
    previous: Plan | None,
    locked: list[str],
    assign_codes: Callable[..., gpd.GeoDataFrame],
    boundary_descriptions: Callable[..., pd.Series],
    area_cap_m2: float | None = None,
    dedicated_area_m2: float | None = None,
    bload: pd.DataFrame | None = None,
    load_weights: Mapping[str, float] | None = None,
) -> Plan:
    grid_records = []
    member_frames = []
    notes: dict[str, list[str]] = {}
    hh_grid: dict[str, str] = {}
    for r in results:
        cid = r["community_id"]
        notes[cid] = r["notes"]
        for g in r["grids"]:
            uid = f"{cid}\x00{g['key']}"
            grid_records.append(
                {
                    "uid": uid,
                    "community_id": cid,
                    "key": g["key"],
                    "locked": g["locked"],
                    "forced": g.get("forced"),
                    "kind": g.get("kind", "residential"),
                }
            )
            grid_records[-1]["geometry"] = g["geometry"]
        m = r["members"]
        if len(m):
            member_frames.append(m.assign(uid=cid + "\x00" + m["grid_key"].astype(str)))
        for h, key in r["household_parts"].items():
            hh_grid[h] = f"{cid}\x00{key}"
    grids = gpd.GeoDataFrame(
        pd.DataFrame(
            grid_records,
            columns=["uid", "community_id", "key", "locked", "forced", "kind", "geometry"],
        ),
        geometry="geometry",
        crs=layers.crs,
    )
    grids["geometry"] = _match_edges(
        np.asarray(grids.geometry.array, dtype=object), grids["locked"].to_numpy(dtype=bool)
    )
    _give_back_freed_memory()  # (GEOS noded every grid edge: ~150 MB for a 50,000-building city)
    members = (
        pd.concat(member_frames, ignore_index=True)
        if member_frames
        else pd.DataFrame(columns=["building_id", "part", "households", "grid_key", "uid"])
    )
    # codes: previous codes kept for locked and matched grids
    keep: dict[Any, str] = {}
    if previous is not None:
        known = set(previous.grids["grid_code"].astype(str))
        used: set[str] = set()  # a code claimed twice (buildings moved) stays with one grid
        for idx, key, is_locked in zip(grids.index, grids["key"], grids["locked"], strict=True):
            if key in known and (is_locked or key not in used):
                keep[idx] = key
                used.add(key)
    grids["grid_code"] = None
    grids["name"] = None
    if previous is not None and len(keep):
        pnames = previous.grids.set_index(previous.grids["grid_code"].astype(str))["name"]
        for idx, code in keep.items():
            grids.loc[idx, "name"] = pnames.get(code)
    coded = assign_codes(grids, layers.communities, keep=keep)
    grids["grid_code"] = coded["grid_code"].to_numpy()
    grids["name"] = coded["name"].to_numpy()
    code_of = dict(zip(grids["uid"], grids["grid_code"], strict=True))
    members["grid_code"] = members["uid"].map(code_of)
    bld = pd.DataFrame(
        {
            "building_id": members["building_id"].astype(str).to_numpy(),
            "grid_code": members["grid_code"].astype(str).to_numpy(),
            "households": members["households"].astype(np.int64).to_numpy(),
            "part": members["part"].astype(object).to_numpy(),
        }
    )
    hh_rows = None
    persons = pd.Series(np.nan, index=grids["grid_code"])
    if layers.households is not None:
        hh = layers.households
        whole = bld[bld["part"].isna()].drop_duplicates("building_id")
        # validated layers hold these as str already: no second copy of a million ids
        hids, hb = (
            c.to_numpy()
            if c.dtype == object and pd.api.types.infer_dtype(c, skipna=False) == "string"
            else c.astype(str).to_numpy(dtype=object)
            for c in (hh["household_id"], hh["building_id"])
        )
        # grids looked up by position (object indexes: a million ids are neither copied
        # into Arrow text nor hashed twice); the same answers as Series.map
        gc = _lookup(hb, whole["building_id"], whole["grid_code"])
        if hh_grid:
            split = _lookup(hids, list(hh_grid), [code_of.get(u) for u in hh_grid.values()])
            gc = np.where(pd.isna(split), gc, split)
        # households of split buildings without a part row: first part's grid
        missing = pd.isna(gc)
        if missing.any():
            first = bld.drop_duplicates("building_id")
            gc = np.where(missing, _lookup(hb, first["building_id"], first["grid_code"]), gc)
        hh_rows = pd.DataFrame({"household_id": hids, "building_id": hb, "grid_code": gc})
        _give_back_freed_memory()
        if "persons" in hh.columns:
            p = pd.to_numeric(hh["persons"], errors="coerce")
            persons = p.groupby(gc).sum(min_count=1)
    hh_sum = bld.groupby("grid_code")["households"].sum()
    nb = bld.groupby("grid_code")["building_id"].nunique()
    grids["households"] = grids["grid_code"].map(hh_sum).fillna(0).astype(np.int64)
    grids["persons"] = grids["grid_code"].map(persons).astype(float)
    grids["n_buildings"] = grids["grid_code"].map(nb).fillna(0).astype(np.int64)
    grids["locked"] = grids["locked"].astype(bool)
    grids = grids.drop(columns=["uid", "key"])
    grids = grids.sort_values(["community_id", "grid_code"], kind="stable").reset_index(drop=True)
    grids["boundary_desc"] = boundary_descriptions(grids, layers.roads).to_numpy()
    _give_back_freed_memory()  # (the sides' buffers)
    grids["forced"] = _empty_land_reasons(grids, layers)
    for cid, code, why in zip(
        grids["community_id"], grids["grid_code"], grids["forced"], strict=True
    ):
        if isinstance(why, str):
            notes.setdefault(cid, []).append(f"grid {code} {why}")
    extra = grids[["kind", "forced"]]
    grids = gpd.GeoDataFrame(
        grids[[*GRID_COLUMNS, "geometry"]], geometry="geometry", crs=layers.crs
    )
    grids.insert(len(GRID_COLUMNS), "kind", extra["kind"].fillna("residential").to_numpy())
    grids.insert(
        len(GRID_COLUMNS) + 1,
        "arterial_forced",
        extra["forced"].map(lambda v: isinstance(v, str)).to_numpy(dtype=bool),
    )
    bld = bld.sort_values(["building_id", "part"], kind="stable", na_position="first")
    bld = bld.reset_index(drop=True)
    load = None
    if bload is not None:
        load = _grid_loads(bld, bload)
        load.attrs["before"] = [v for r in results for v in r.get("load_before", [])]
        load.attrs["weights"] = dict(load_weights or {})
        load.attrs["unlocated_cases"] = int(bload.attrs.get("unlocated_cases", 0))
    report = _quality(
        grids,
        bld,
        layers,
        min_households=min_households,
        max_households=max_households,
        previous=previous,
        households=hh_rows,
        notes={k: v for k, v in notes.items() if v},
        area_cap_m2=area_cap_m2,
        load=load,
    )
    figures = report.grids.drop(
        columns=[c for c in report.grids.columns if c in grids.columns and c != "grid_code"]
    )
    grids = grids.merge(figures, on="grid_code", how="left", sort=False)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=layers.crs)
    params = {
        "min_households": min_households,
        "max_households": max_households,
        "target": target,
        "seed": seed,
        "n_grids": dict(n_grids) if isinstance(n_grids, Mapping) else n_grids,
        "locked": locked,
        "previous": previous is not None,
        "dedicated_area_m2": dedicated_area_m2,
        "area_cap_m2": area_cap_m2,
        "load_weights": dict(load_weights) if load_weights is not None else None,
    }
    return Plan(
        grids=grids,
        buildings=bld,
        households=hh_rows,
        report=report,
        params=params,
        crs=layers.crs,
    )
