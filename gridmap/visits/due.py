"""Due visits: who must be visited in a period, by whom, and whether it was done.

:func:`due_visits` lists, for every grid of a plan, the visits due in a window
(a month by default): one row per *target* (a household marked by a category's
flags, or an organisation's building), per *cadence period* overlapping the
window (a monthly category gives one row in a month, a weekly one a row per
week overlapping it), per responsible role. A household in several categories
of one cadence gets one row listing them all (``categories``); one visit in the
period serves every category.

Status, given a ``records`` frame (one row per visit made):

* ``done`` — a record for the target dated inside the period with an outcome
  that counts (see :data:`gridmap.visits.records.OUTCOMES`; ``not_home`` and
  ``refused`` are attempts, not visits);
* ``overdue`` — not done and the period ended before ``as_of``;
* ``due`` — not done, period still running.

Who is responsible comes from the plan's staffing (``plan.assignments``, see
:mod:`gridmap.staffing`): the grid chief for ``responsible: chief`` (the
default: 网格长 visits the 六必访 households), else one of the grid's workers.
Workers split their grid into compact runs of buildings (the grid's buildings
in Hilbert-curve order of their centroids, cut into equal household shares), so
that each worker walks one part of the grid. A worker post left vacant passes
its buildings to the remaining workers; a grid without workers falls back to
its chief; a vacant chief leaves ``staff_id`` null (the row is still listed).

When grids are redrawn, :func:`follow_redraw` moves existing due rows to the
households' new grids and staff; visit records stay attached to households, so
the status carries over.

Everything is vectorised (pandas/numpy): a 200,000-building city (about 3
million households) gives its month's due list in a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridmap.errors import InputError, LayerError
from gridmap.visits.rules import CADENCES, VisitCategory, VisitRules, default_rules

if TYPE_CHECKING:
    from gridmap.partition.plan import Plan

__all__ = [
    "DUE_COLUMNS",
    "STATUSES",
    "visit_window",
    "due_visits",
    "due_summary",
    "follow_redraw",
    "grid_of_households",
]

#: Columns of :func:`due_visits` (one row per target, cadence period and role).
DUE_COLUMNS: tuple[str, ...] = (
    "visit_id",  # "<h|b>:<target id>/<cadence>/<period start>", stable across runs
    "grid_code",
    "target_kind",  # 'household' | 'building' (an organisation)
    "household_id",  # null for a building target
    "building_id",
    "target_name",  # the building's name for an organisation, else null
    "categories",  # category codes joined by ';'
    "cadence",
    "period",  # e.g. '2026-09', '2026Q3', '2026-09-07/2026-09-13'
    "period_start",  # first day (datetime64, midnight)
    "period_end",  # last day, inclusive
    "role",  # 'chief' | 'worker': who actually holds the visit
    "staff_id",  # null when the post is vacant
    "staff_name",
    "status",  # 'done' | 'overdue' | 'due'
    "visited_at",  # date of the first counting visit in the period, else NaT
    "attempts",  # records in the period, counting or not
)

#: Values of the ``status`` column.
STATUSES: tuple[str, ...] = ("done", "overdue", "due")

_SEP = "\x1f"


# --------------------------------------------------------------------------- windows


def visit_window(period: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the first and last day (inclusive) of a period.

    Parameters
    ----------
    period : str, pandas.Period, datetime.date or (start, end)
        ``"2026-09"`` (a month), ``"2026Q3"``, ``"2026-09-18"`` (a day), a
        :class:`pandas.Period`, or two dates.

    Examples
    --------
    >>> [d.date().isoformat() for d in visit_window("2026-02")]
    ['2026-02-01', '2026-02-28']
    >>> [d.date().isoformat() for d in visit_window(("2026-09-07", "2026-09-20"))]
    ['2026-09-07', '2026-09-20']
    >>> visit_window("2026-13")
    Traceback (most recent call last):
    ...
    gridmap.errors.InputError: cannot read period '2026-13'; ...
    """
    try:
        if isinstance(period, tuple | list):
            if len(period) != 2:
                raise ValueError("expected two dates")
            start = pd.Timestamp(period[0]).normalize()
            end = pd.Timestamp(period[1]).normalize()
        else:
            p = period if isinstance(period, pd.Period) else pd.Period(period)
            start = p.start_time.normalize()
            end = p.end_time.normalize()
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"cannot read period {period!r}; use a month like '2026-09', a quarter '2026Q3', "
            "a day '2026-09-18' or (start, end) dates"
        ) from exc
    if start.tzinfo is not None or end.tzinfo is not None:
        start, end = start.tz_localize(None), end.tz_localize(None)
    if end < start:
        raise InputError(f"period ends ({end.date()}) before it starts ({start.date()})")
    return start, end


def _day(values: Any) -> np.ndarray:
    """Local calendar day numbers (days since 1970-01-01) of dates/datetimes (aware → Shanghai)."""
    s = pd.to_datetime(pd.Series(values), errors="coerce", format="mixed")
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    days = s.dt.normalize().to_numpy(dtype="datetime64[D]")
    out = days.astype("int64")
    out[np.isnat(days)] = np.iinfo(np.int64).min
    return out


def _as_of_day(as_of: Any, end: pd.Timestamp) -> int:
    if as_of is None:
        return int(end.to_datetime64().astype("datetime64[D]").astype(np.int64)) + 1
    d = _day([as_of])[0]
    if d == np.iinfo(np.int64).min:
        raise InputError(f"cannot read as_of {as_of!r} as a date")
    return int(d)


# --------------------------------------------------------------------------- plan lookups


def _take(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``values[pos]`` as an object array, None where ``pos`` is -1 (not found)."""
    out = np.full(len(pos), None, dtype=object)
    ok = pos >= 0
    out[ok] = values[pos[ok]]
    return out


def grid_of_households(plan: Plan, household_ids: Any) -> np.ndarray:
    """Return the grid code of each household in ``plan`` (object array, aligned).

    With a frame holding ``household_id`` and ``building_id``, a household in a
    building that the plan keeps whole takes that building's grid (fast, and a
    household registered after the plan was made is placed too); households in
    split buildings are looked up in ``plan.households``. With ids only, every
    household is looked up in ``plan.households``.

    Raises
    ------
    LayerError
        If a household cannot be placed (the message lists some and says what to do).

    Examples
    --------
    >>> from gridmap.visits.examples import _example
    >>> ex = _example()
    >>> grid_of_households(ex.plan, ["H01", "H09"]).tolist()
    ['320104001001001', '320104001001002']
    """
    frame = household_ids if isinstance(household_ids, pd.DataFrame) else None
    ids = (frame["household_id"] if frame is not None else pd.Series(household_ids)).astype(str)
    out = np.full(len(ids), None, dtype=object)
    todo = np.ones(len(ids), dtype=bool)
    if frame is not None and "building_id" in frame.columns:
        pb = plan.buildings[["building_id", "grid_code"]].astype(str).drop_duplicates()
        whole = pb[~pb["building_id"].duplicated(keep=False)]
        pos = pd.Index(whole["building_id"]).get_indexer(pd.Index(frame["building_id"].astype(str)))
        out = _take(whole["grid_code"].to_numpy(dtype=object), pos)
        todo = pos < 0
    ph = plan.households
    if todo.any() and ph is not None and len(ph):
        look = pd.Index(ph["household_id"].astype(str))
        pos = look.get_indexer(pd.Index(ids[todo]))
        out[todo] = _take(ph["grid_code"].astype(str).to_numpy(dtype=object), pos)
        todo[todo] = pos < 0
    if todo.any():
        some = ids[todo][:5].tolist()
        raise LayerError(
            f"{int(todo.sum())} household(s) cannot be placed in the plan (e.g. {some}): their "
            "building is not in the plan (or is split and the plan has no household table); "
            "pass the households the plan was made from, or re-partition after adding them"
        )
    return out


def _posts(plan: Plan) -> tuple[dict[str, tuple[str, str]], dict[str, list[tuple[str, str]]]]:
    """Chief (staff_id, name) and filled workers [(staff_id, name)] by slot, per grid."""
    a = plan.assignments
    chiefs: dict[str, tuple[str, str]] = {}
    workers: dict[str, list[tuple[str, str]]] = {}
    if a is None or len(a) == 0:
        return chiefs, workers
    missing = [c for c in ("grid_code", "role", "staff_id") if c not in a.columns]
    if missing:
        raise LayerError(f"plan.assignments lacks {missing}; staff the plan with assign_staff")
    t = a[a["staff_id"].notna()].copy()
    t["slot"] = pd.to_numeric(t["slot"], errors="coerce") if "slot" in t.columns else 1
    t["name"] = t["name"].astype(object) if "name" in t.columns else None
    t = t.sort_values(["grid_code", "role", "slot", "staff_id"], kind="stable")
    for g, r, s, n in zip(
        t["grid_code"].astype(str), t["role"], t["staff_id"].astype(str), t["name"], strict=True
    ):
        name = s if n is None or (isinstance(n, float) and np.isnan(n)) else str(n)
        if r == "chief":
            chiefs.setdefault(g, (s, name))
        elif r == "worker":
            workers.setdefault(g, []).append((s, name))
    return chiefs, workers


def _building_share(plan: Plan, buildings: gpd.GeoDataFrame | None) -> pd.DataFrame:
    """Each (building, grid) pair with its position in the grid: a share in [0, 1).

    Buildings are ordered along a Hilbert curve over the plan's extent (ties and
    buildings without geometry by id) and weighted by households.
    """
    pb = plan.buildings[["building_id", "grid_code", "households"]].copy()
    pb["building_id"] = pb["building_id"].astype(str)
    pb["grid_code"] = pb["grid_code"].astype(str)
    pb["households"] = pd.to_numeric(pb["households"], errors="coerce").fillna(0).clip(lower=0)
    pb = pb.groupby(["grid_code", "building_id"], sort=False, as_index=False).agg(
        households=("households", "sum")
    )
    key = np.full(len(pb), np.iinfo(np.int64).max, dtype=np.int64)
    if buildings is not None and len(buildings):
        cen = buildings.geometry.centroid
        bounds = plan.grids.total_bounds if len(plan.grids) else cen.total_bounds
        hd = gpd.GeoSeries(cen.to_numpy(), crs=buildings.crs).hilbert_distance(
            total_bounds=bounds, level=16
        )
        pos = pd.Index(buildings["building_id"].astype(str)).get_indexer(pb["building_id"])
        ok = pos >= 0
        key[ok] = hd.to_numpy()[pos[ok]]
    pb["_key"] = key
    pb = pb.sort_values(["grid_code", "_key", "building_id"], kind="stable")
    g = pb.groupby("grid_code", sort=False)
    tot = g["households"].transform("sum").to_numpy(dtype=float)
    cum = g["households"].cumsum().to_numpy(dtype=float)
    hh = pb["households"].to_numpy(dtype=float)
    rank = g.cumcount().to_numpy(dtype=float)
    cnt = g["households"].transform("size").to_numpy(dtype=float)
    share = np.where(tot > 0, (cum - hh / 2) / np.where(tot > 0, tot, 1), (rank + 0.5) / cnt)
    pb["share"] = np.clip(share, 0.0, np.nextafter(1.0, 0.0))
    return pb[["grid_code", "building_id", "share"]].reset_index(drop=True)


def _responsible(
    plan: Plan,
    grid: np.ndarray,
    building: np.ndarray,
    role: np.ndarray,
    shares: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(role, staff_id, staff_name) of each row, from the plan's posts (vectorised per grid)."""
    chiefs, workers = _posts(plan)
    n = len(grid)
    out_role = np.asarray(role, dtype=object).copy()
    sid = np.full(n, None, dtype=object)
    sname = np.full(n, None, dtype=object)
    gcodes, ginv = np.unique(np.asarray(grid, dtype=str), return_inverse=True)
    # chief rows and worker rows without workers
    chief_id = np.array([chiefs.get(g, (None, None))[0] for g in gcodes], dtype=object)
    chief_nm = np.array([chiefs.get(g, (None, None))[1] for g in gcodes], dtype=object)
    nwork = np.array([len(workers.get(g, [])) for g in gcodes], dtype=np.int64)
    is_worker = (out_role == "worker") & (nwork[ginv] > 0)
    out_role[(out_role == "worker") & ~is_worker] = "chief"
    sid[~is_worker] = chief_id[ginv[~is_worker]]
    sname[~is_worker] = chief_nm[ginv[~is_worker]]
    if is_worker.any():
        key = pd.MultiIndex.from_arrays([shares["grid_code"], shares["building_id"]])
        want = pd.MultiIndex.from_arrays(
            [np.asarray(grid, dtype=str)[is_worker], np.asarray(building, dtype=str)[is_worker]]
        )
        pos = key.get_indexer(want)
        share = np.where(pos >= 0, shares["share"].to_numpy()[np.maximum(pos, 0)], 0.0)
        k = np.floor(share * nwork[ginv[is_worker]]).astype(np.int64)
        flat_id = np.array([w[0] for g in gcodes for w in workers.get(g, [])], dtype=object)
        flat_nm = np.array([w[1] for g in gcodes for w in workers.get(g, [])], dtype=object)
        first = np.concatenate([[0], np.cumsum(nwork)[:-1]])
        idx = first[ginv[is_worker]] + k
        sid[is_worker] = flat_id[idx]
        sname[is_worker] = flat_nm[idx]
    return out_role, sid, sname


# --------------------------------------------------------------------------- targets


def _flag(households: pd.DataFrame, col: str, where: str) -> np.ndarray:
    if col not in households.columns:
        raise LayerError(
            f"households lacks the flag column {col!r} used by {where}; add it (bool) or change "
            "the category's 'flags' in the visit rules"
        )
    s = households[col]
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s.fillna(False).astype(bool).to_numpy()
    raise LayerError(
        f"households[{col!r}] is {s.dtype}, not bool; validate the layers first "
        "(gridmap.validation.validate_layers reads 是/否, yes/no, 1/0)"
    )


def _building_mask(buildings: gpd.GeoDataFrame, cat: VisitCategory) -> np.ndarray:
    if "use" not in buildings.columns:
        raise LayerError(f"buildings lacks 'use', needed by visit category {cat.code!r}")
    mask = buildings["use"].astype(str).isin(cat.uses).to_numpy()
    if cat.name_pattern is not None:
        names = (
            buildings["name"]
            if "name" in buildings.columns
            else pd.Series("", index=buildings.index)
        )
        mask &= names.astype(str).str.contains(cat.name_pattern, regex=True, na=False).to_numpy()
    return mask


def _joined(bits: np.ndarray, codes: list[str]) -> np.ndarray:
    """Category codes joined by ';' for each bitmask (computed once per distinct mask)."""
    uniq, inv = np.unique(bits, return_inverse=True)
    text = np.array(
        [";".join(c for k, c in enumerate(codes) if (int(u) >> k) & 1) for u in uniq], dtype=object
    )
    return text[inv]


def _targets(
    plan: Plan,
    households: pd.DataFrame | None,
    buildings: gpd.GeoDataFrame,
    cats: tuple[VisitCategory, ...],
) -> list[dict[str, Any]]:
    """One block of targets per (cadence, role, kind): arrays of ids, grid, categories."""
    blocks: list[dict[str, Any]] = []
    hh_cats = [c for c in cats if c.target == "household"]
    b_cats = [c for c in cats if c.target == "building"]
    if hh_cats:
        if households is None:
            raise LayerError(
                "visit categories "
                f"{[c.code for c in hh_cats]} mark households, but no households were given"
            )
        if "household_id" not in households.columns:
            raise LayerError("households lacks 'household_id'")
        marks = {c.code: np.zeros(len(households), dtype=bool) for c in hh_cats}
        for c in hh_cats:
            for f in c.flags:
                marks[c.code] |= _flag(households, f, f"visit category {c.code!r}")
        anyflag = np.logical_or.reduce([marks[c.code] for c in hh_cats])
        sel = np.flatnonzero(anyflag)
        cols = [c for c in ("household_id", "building_id") if c in households.columns]
        sub = pd.DataFrame({c: households[c].iloc[sel].to_numpy(dtype=object) for c in cols})
        grid = grid_of_households(plan, sub)
        if "building_id" in sub.columns:
            bid = sub["building_id"].astype(str).to_numpy(dtype=object)
        else:
            ph = plan.households
            assert ph is not None  # grid_of_households needs one without building_id
            pos = pd.Index(ph["household_id"].astype(str)).get_indexer(
                pd.Index(sub["household_id"].astype(str))
            )
            bid = ph["building_id"].astype(str).to_numpy(dtype=object)[pos]
        hid = sub["household_id"].astype(str).to_numpy(dtype=object)
        for (cad, role), group in _groups(hh_cats).items():
            codes = [c.code for c in group]
            bits = np.zeros(len(sel), dtype=np.int64)
            for k, c in enumerate(group):
                bits |= marks[c.code][sel].astype(np.int64) << k
            keep = bits > 0
            blocks.append(
                {
                    "cadence": cad,
                    "role": role,
                    "kind": "household",
                    "pos": sel[keep],
                    "household_id": hid[keep],
                    "building_id": bid[keep],
                    "grid_code": grid[keep],
                    "target_name": np.full(int(keep.sum()), None, dtype=object),
                    "categories": _joined(bits[keep], codes),
                }
            )
    n_hh = 0 if households is None else len(households)
    if b_cats:
        if "building_id" not in buildings.columns:
            raise LayerError("buildings lacks 'building_id'")
        pb = plan.buildings.sort_values(["building_id", "grid_code"], kind="stable")
        pb = pb.drop_duplicates("building_id")  # a split building: its first grid by code
        pos = pd.Index(pb["building_id"].astype(str)).get_indexer(
            buildings["building_id"].astype(str)
        )
        in_plan = pos >= 0
        bgrid = _take(pb["grid_code"].astype(object).to_numpy(), pos)
        names = (
            buildings["name"].astype(object).to_numpy()
            if "name" in buildings.columns
            else np.full(len(buildings), None, dtype=object)
        )
        bids = buildings["building_id"].astype(str).to_numpy(dtype=object)
        masks = {c.code: _building_mask(buildings, c) for c in b_cats}
        outside = np.logical_or.reduce(list(masks.values())) & ~in_plan
        if outside.any():
            raise LayerError(
                f"{int(outside.sum())} organisation building(s) are not in the plan "
                f"(e.g. {bids[outside][:5].tolist()}); pass the buildings the plan was made from"
            )
        for (cad, role), group in _groups(b_cats).items():
            codes = [c.code for c in group]
            bits = np.zeros(len(buildings), dtype=np.int64)
            for k, c in enumerate(group):
                bits |= masks[c.code].astype(np.int64) << k
            keep = bits > 0
            blocks.append(
                {
                    "cadence": cad,
                    "role": role,
                    "kind": "building",
                    "pos": n_hh + np.flatnonzero(keep),
                    "household_id": np.full(int(keep.sum()), None, dtype=object),
                    "building_id": bids[keep],
                    "grid_code": bgrid[keep],
                    "target_name": names[keep],
                    "categories": _joined(bits[keep], codes),
                }
            )
    return blocks


def _groups(cats: Iterable[VisitCategory]) -> dict[tuple[str, str], list[VisitCategory]]:
    out: dict[tuple[str, str], list[VisitCategory]] = {}
    for c in cats:
        out.setdefault((c.cadence, c.responsible), []).append(c)
    return out


# --------------------------------------------------------------------------- records


def _target_keys(kind: np.ndarray, household: np.ndarray, building: np.ndarray) -> pd.Series:
    out = np.empty(len(kind), dtype=object)
    hh = np.asarray(kind == "household")
    if hh.any():
        out[hh] = ("h:" + pd.Series(household[hh], dtype=object).astype(str)).to_numpy(object)
    if (~hh).any():
        out[~hh] = ("b:" + pd.Series(building[~hh], dtype=object).astype(str)).to_numpy(object)
    return pd.Series(out, dtype=object)


def _record_keys(records: pd.DataFrame) -> pd.Series:
    from gridmap.visits.records import _record_target_kind

    kind = _record_target_kind(records)
    hh = records["household_id"] if "household_id" in records.columns else None
    bd = records["building_id"] if "building_id" in records.columns else None
    empty = np.full(len(records), None, dtype=object)
    return _target_keys(
        kind,
        hh.to_numpy(dtype=object) if hh is not None else empty,
        bd.to_numpy(dtype=object) if bd is not None else empty,
    )


def _match_records(
    keys: pd.Series, start: np.ndarray, end: np.ndarray, records: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(done count, first done day, all-records count) per due row, vectorised."""
    from gridmap.visits.records import OUTCOMES

    n = len(keys)
    zero = np.zeros(n, dtype=np.int64)
    nat = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    if records is None or len(records) == 0:
        return zero, nat, zero
    if "visited_at" not in records.columns:
        raise LayerError("records lacks 'visited_at' (when the visit was made)")
    rkeys = _record_keys(records)
    rday = _day(records["visited_at"].to_numpy())
    if "outcome" in records.columns:
        outcome = records["outcome"].fillna("visited").astype(str)
        bad = ~outcome.isin(list(OUTCOMES))
        if bad.any():
            raise LayerError(
                f"records: unknown outcome(s) {sorted(set(outcome[bad]))[:5]}; "
                f"use one of {list(OUTCOMES)}"
            )
        counts = outcome.map({k: v[2] for k, v in OUTCOMES.items()}).to_numpy(dtype=bool)
    else:
        counts = np.ones(len(records), dtype=bool)
    codes, uniq = pd.factorize(keys, sort=False)
    rpos = pd.Index(uniq).get_indexer(rkeys)
    ok = (rpos >= 0) & (rday != np.iinfo(np.int64).min)
    shift = np.int64(1 << 22)
    base = np.int64(1 << 21)  # days are offset so that they stay positive

    def combined(k: np.ndarray, d: np.ndarray) -> np.ndarray:
        return k.astype(np.int64) * shift + (d.astype(np.int64) + base)

    allr = np.sort(combined(rpos[ok], rday[ok]))
    good = ok & counts
    doner = np.sort(combined(rpos[good], rday[good]))
    lo = combined(codes, start)
    hi = combined(codes, end)
    n_all = np.searchsorted(allr, hi, "right") - np.searchsorted(allr, lo, "left")
    left = np.searchsorted(doner, lo, "left")
    n_done = np.searchsorted(doner, hi, "right") - left
    first = (
        np.where(n_done > 0, doner[np.minimum(left, max(len(doner) - 1, 0))] % shift - base, nat)
        if len(doner)
        else nat
    )
    return n_done.astype(np.int64), first.astype(np.int64), n_all.astype(np.int64)


# --------------------------------------------------------------------------- due visits


def due_visits(
    plan: Plan,
    households: pd.DataFrame | None,
    buildings: gpd.GeoDataFrame,
    *,
    period: Any,
    rules: VisitRules | None = None,
    categories: Iterable[str] | None = None,
    records: pd.DataFrame | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """List the visits due in a period for every grid, with the responsible staff and status.

    Parameters
    ----------
    plan : Plan
        The plan (``buildings``, ``households`` and, when staffed,
        ``assignments`` from :mod:`gridmap.staffing`).
    households : pandas.DataFrame or None
        The households layer: ``household_id``, ``building_id`` and the flag
        columns the rules name (:data:`gridmap.layers.SENSITIVE_FLAGS`).
    buildings : geopandas.GeoDataFrame
        The buildings layer (``building_id``, ``use``, ``name``, footprints):
        organisations are buildings, and workers split their grid by building.
    period : str, pandas.Period or (start, end)
        The window, see :func:`visit_window` (``"2026-09"`` for September).
    rules : VisitRules, optional
        Default: :func:`gridmap.visits.rules.default_rules`.
    categories : iterable of str, optional
        Only these categories (default: every enabled one).
    records : pandas.DataFrame, optional
        Visits made: ``household_id`` (or ``building_id`` for an organisation),
        ``visited_at`` and optionally ``outcome`` (default ``visited``).
    as_of : date, optional
        "Today", for ``overdue``: a period that ended before it and is not done
        is overdue. Default: the day after the window (the window judged closed).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DUE_COLUMNS`, ordered by grid, role, staff, period and
        building. Empty (with the columns) when nothing is due.

    Raises
    ------
    LayerError
        A flag column is missing, a household or organisation is not in the plan.
    VisitRulesError
        An unknown category in ``categories``.
    InputError
        An unreadable ``period`` or ``as_of``.

    Examples
    --------
    >>> from gridmap.visits.examples import _example
    >>> ex = _example()
    >>> due = due_visits(ex.plan, ex.households, ex.buildings, period="2026-09",
    ...                  records=ex.records)
    >>> due.groupby(["grid_code", "status"]).size().to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {('320104001001001', 'done'): 1, ('320104001001001', 'overdue'): 3,
     ('320104001001002', 'overdue'): 3}
    >>> due.loc[0, ["household_id", "categories", "role", "staff_id"]].tolist()
    ['H01', 'elderly_alone', 'chief', 'S1']
    """
    book = rules or default_rules()
    cats = book.select(categories)
    start, end = visit_window(period)
    today = _as_of_day(as_of, end)
    blocks = _targets(plan, households, buildings, cats)
    parts: list[pd.DataFrame] = []
    for b in blocks:
        n = len(b["building_id"])
        if n == 0:
            continue
        periods = pd.period_range(start, end, freq=CADENCES[b["cadence"]])
        p = len(periods)
        ps = periods.start_time.normalize().to_numpy(dtype="datetime64[D]")
        pe = periods.end_time.normalize().to_numpy(dtype="datetime64[D]")
        frame = pd.DataFrame(
            {
                "grid_code": np.tile(b["grid_code"], p),
                "target_kind": b["kind"],
                "household_id": np.tile(b["household_id"], p),
                "building_id": np.tile(b["building_id"], p),
                "target_name": np.tile(b["target_name"], p),
                "categories": np.tile(b["categories"], p),
                "cadence": b["cadence"],
                "period": np.repeat(np.array([str(x) for x in periods], dtype=object), n),
                "period_start": np.repeat(ps, n),
                "period_end": np.repeat(pe, n),
                "role": b["role"],
                "_pos": np.tile(b["pos"], p),
            }
        )
        parts.append(frame)
    if not parts:
        return _empty()
    due = pd.concat(parts, ignore_index=True)
    return _finish(plan, buildings, due, records, today)


def _empty() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series([], dtype=object) for c in DUE_COLUMNS})
    for c in ("period_start", "period_end", "visited_at"):
        out[c] = pd.Series([], dtype="datetime64[ns]")
    out["attempts"] = pd.Series([], dtype=np.int64)
    return out


def _finish(
    plan: Plan,
    buildings: gpd.GeoDataFrame | None,
    due: pd.DataFrame,
    records: pd.DataFrame | None,
    today: int,
) -> pd.DataFrame:
    """Staff, status, ids and order of a due frame (shared by due_visits and follow_redraw)."""
    kind = due["target_kind"].to_numpy(dtype=object)
    grid = due["grid_code"].astype(str).to_numpy(dtype=object)
    bld = due["building_id"].astype(str).to_numpy(dtype=object)
    need_shares = bool((due["role"] == "worker").any())
    shares = (
        _building_share(plan, buildings)
        if need_shares
        else pd.DataFrame({"grid_code": [], "building_id": [], "share": []})
    )
    role, sid, sname = _responsible(plan, grid, bld, due["role"].to_numpy(dtype=object), shares)
    keys = _target_keys(kind, due["household_id"].to_numpy(dtype=object), bld)
    start = due["period_start"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    end = due["period_end"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    n_done, first, n_all = _match_records(keys, start, end, records)
    status = np.where(n_done > 0, "done", np.where(end < today, "overdue", "due")).astype(object)
    visited = first.astype("datetime64[D]").astype("datetime64[ns]")
    visited[first == np.iinfo(np.int64).min] = np.datetime64("NaT")
    out = due.assign(
        grid_code=grid,
        role=role,
        staff_id=sid,
        staff_name=sname,
        status=status,
        visited_at=visited,
        attempts=n_all,
        period_start=due["period_start"].astype("datetime64[ns]"),
        period_end=due["period_end"].astype("datetime64[ns]"),
    )
    cad_code, cad_uniq = pd.factorize(out["cadence"])
    pcode, puniq = pd.factorize(cad_code.astype(np.int64) * (1 << 32) + (start + (1 << 31)))
    suffix = np.array(
        [
            f"/{cad_uniq[int(u) >> 32]}/{np.datetime64(int(u & 0xFFFFFFFF) - (1 << 31), 'D')}"
            for u in puniq
        ],
        dtype=object,
    )
    out["visit_id"] = keys.to_numpy(dtype=object) + suffix[pcode]
    pos = (
        out["_pos"].to_numpy(dtype=np.int64)
        if "_pos" in out.columns
        else np.arange(len(out), dtype=np.int64)
    )
    order = np.lexsort(
        (
            pos,
            start,
            pd.factorize(out["staff_id"].fillna("\uffff"), sort=True)[0],
            (out["role"] != "chief").to_numpy(),
            pd.factorize(out["grid_code"], sort=True)[0],
        )
    )
    return out.iloc[order][list(DUE_COLUMNS)].reset_index(drop=True)


def due_summary(due: pd.DataFrame, by: str | list[str] = "grid_code") -> pd.DataFrame:
    """Count due rows by status per grid (or per staff, per category …).

    Parameters
    ----------
    due : pandas.DataFrame
        Output of :func:`due_visits`.
    by : str or list of str, default "grid_code"
        Grouping columns (``["grid_code", "staff_id"]`` for the staff view).

    Returns
    -------
    pandas.DataFrame
        One row per group: ``total``, ``done``, ``overdue``, ``due`` and
        ``share_done`` (done / total).

    Examples
    --------
    >>> from gridmap.visits.examples import _example
    >>> ex = _example()
    >>> due = due_visits(ex.plan, ex.households, ex.buildings, period="2026-09",
    ...                  records=ex.records)
    >>> due_summary(due)[["grid_code", "total", "done", "overdue"]].values.tolist()
    [['320104001001001', 4, 1, 3], ['320104001001002', 3, 0, 3]]
    """
    cols = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*cols, "status"] if c not in due.columns]
    if missing:
        raise LayerError(f"due lacks {missing}; pass the output of due_visits")
    counts = pd.crosstab([due[c].fillna("—") for c in cols], due["status"]).reindex(
        columns=list(STATUSES), fill_value=0
    )
    counts.columns.name = None
    out = counts.reset_index()
    out["total"] = out[list(STATUSES)].sum(axis=1)
    out["share_done"] = out["done"] / out["total"].where(out["total"] > 0)
    return out[[*cols, "total", "done", "overdue", "due", "share_done"]]


def follow_redraw(
    due: pd.DataFrame,
    plan: Plan,
    buildings: gpd.GeoDataFrame,
    *,
    rules: VisitRules | None = None,
    records: pd.DataFrame | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """Move due visits to the households' grids and staff in a redrawn (re-staffed) plan.

    Parameters
    ----------
    due : pandas.DataFrame
        Output of :func:`due_visits` on the old plan.
    plan : Plan
        The new plan, staffed (``plan.assignments``).
    buildings : geopandas.GeoDataFrame
        The buildings layer (for the workers' split of each grid).
    rules : VisitRules, optional
        The rules ``due`` was made with (which categories workers visit).
    records : pandas.DataFrame, optional
        Visit records, to recompute the status (default: keep each row's status,
        ``visited_at`` and ``attempts``).
    as_of : date, optional
        "Today" when ``records`` is given (see :func:`due_visits`).

    Returns
    -------
    pandas.DataFrame
        The same rows with new ``grid_code``, ``role``, ``staff_id`` and
        ``staff_name``, plus ``previous_grid_code``, ``previous_staff_id`` and
        ``moved`` (the grid changed).

    Raises
    ------
    LayerError
        A household or building of ``due`` is not in the new plan.

    Examples
    --------
    >>> from gridmap.visits.examples import _example
    >>> ex = _example()
    >>> due = due_visits(ex.plan, ex.households, ex.buildings, period="2026-09")
    >>> def to_g2(d):  # building B2 moves to grid 002
    ...     return d.assign(grid_code=d["grid_code"].where(d["building_id"] != "B2", G2))
    >>> G2 = "320104001001002"
    >>> new = ex.plan.replace(buildings=to_g2(ex.plan.buildings),
    ...                       households=to_g2(ex.plan.households))
    >>> moved = follow_redraw(due, new, ex.buildings)
    >>> moved.loc[moved["moved"], ["household_id", "grid_code", "staff_id"]].values.tolist()
    [['H05', '320104001001002', 'S4']]
    """
    missing = [c for c in DUE_COLUMNS if c not in due.columns]
    if missing:
        raise LayerError(f"due lacks {missing}; pass the output of due_visits")
    if len(due) == 0:
        return due.assign(previous_grid_code=[], previous_staff_id=[], moved=[])
    kind = due["target_kind"].to_numpy(dtype=object)
    grid = np.empty(len(due), dtype=object)
    hh = kind == "household"
    if hh.any():
        grid[hh] = grid_of_households(plan, due.loc[hh, ["household_id", "building_id"]])
    if (~hh).any():
        pb = plan.buildings.sort_values(["building_id", "grid_code"], kind="stable")
        pb = pb.drop_duplicates("building_id")
        ids = due.loc[~hh, "building_id"].astype(str)
        pos = pd.Index(pb["building_id"].astype(str)).get_indexer(ids)
        if (pos < 0).any():
            raise LayerError(
                f"building(s) {ids[pos < 0].unique()[:5].tolist()} are not in the new plan"
            )
        grid[~hh] = pb["grid_code"].astype(object).to_numpy()[pos]
    base = due.drop(columns=["staff_id", "staff_name", "status", "visited_at", "attempts"])
    base = base.assign(grid_code=grid)
    # the category's role, not the fallback the old plan needed
    base["role"] = _rule_roles(due, rules or default_rules())
    if records is not None:
        end = pd.Timestamp(due["period_end"].max())
        today = _as_of_day(as_of, end)
        out = _finish(plan, buildings, base, records, today)
    else:
        out = _finish(plan, buildings, base, None, 0)
        prev = due.set_index("visit_id")
        for c in ("status", "visited_at", "attempts"):
            out[c] = prev[c].reindex(out["visit_id"]).to_numpy()
    prev = due.set_index("visit_id")
    out["previous_grid_code"] = prev["grid_code"].reindex(out["visit_id"]).to_numpy()
    out["previous_staff_id"] = prev["staff_id"].reindex(out["visit_id"]).to_numpy()
    out["moved"] = out["previous_grid_code"].astype(str) != out["grid_code"].astype(str)
    return out


def _rule_roles(due: pd.DataFrame, rules: VisitRules) -> np.ndarray:
    """Return the role the rules ask for: 'worker' if any category of the row is a worker one."""
    worker = {c.code for c in rules.categories if c.responsible == "worker"}
    role = due["role"].to_numpy(dtype=object).copy()
    if worker:
        cats = due["categories"].astype(str).str.split(";")
        role[cats.map(lambda cs: any(c in worker for c in cs)).to_numpy(dtype=bool)] = "worker"
    return role
