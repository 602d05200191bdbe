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

Everything is vectorised (pandas/numpy): ids travel as object arrays and
integer codes (never through pandas' string dtype) and the frame is built once,
in its final order. A 200,000-building city (4.3 million households, 0.9 million
due rows) gives its month's due list in about 3 s of CPU
(``python benchmarks/visits.py --buildings 200000``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

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
            if p is pd.NaT:
                raise ValueError("an empty period")
            start = p.start_time.normalize()
            end = p.end_time.normalize()
        if start is pd.NaT or end is pd.NaT:
            raise ValueError("an empty date")
    except (ValueError, TypeError, AttributeError) as exc:
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


def _obj(values: Any) -> np.ndarray:
    """Ids as an object array of ``str`` (missing → None), never through pandas' string dtype."""
    if isinstance(values, pd.Series | pd.Index):
        arr = values.to_numpy(dtype=object, na_value=cast(Any, None))
    else:
        arr = np.asarray(values, dtype=object)
        if arr.ndim != 1:
            arr = np.asarray(list(values), dtype=object)
    if len(arr) and pd.api.types.infer_dtype(arr, skipna=True) not in ("string", "empty"):
        arr = np.array([None if _missing(v) else str(v) for v in arr], dtype=object)
    return arr


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _index(values: np.ndarray) -> pd.Index:
    return pd.Index(values, dtype=object, copy=False)


def _grid_of(plan: Plan, hid: np.ndarray, bid: np.ndarray | None) -> np.ndarray:
    """Grid code of each household (object arrays in, object array out); see grid_of_households."""
    out = np.full(len(hid), None, dtype=object)
    todo = np.ones(len(hid), dtype=bool)
    if bid is not None:
        pbid = _obj(plan.buildings["building_id"])
        pgrid = _obj(plan.buildings["grid_code"])
        codes, uniq = pd.factorize(pbid)
        # a building in several grids (split) is not "whole": look its households up
        pairs = pd.unique(codes.astype(np.int64) * (1 << 32) + pd.factorize(pgrid)[0])
        split = np.bincount((pairs >> 32).astype(np.int64), minlength=len(uniq)) > 1
        first = np.unique(codes, return_index=True)[1]  # the first row of each building
        bgrid = pgrid[first].astype(object)
        bgrid[split] = None
        pos = _index(np.asarray(uniq, dtype=object)).get_indexer(_index(bid))
        out = _take(bgrid, pos)
        todo = np.asarray(pd.isna(out), dtype=bool)
    ph = plan.households
    if todo.any() and ph is not None and len(ph):
        look = _index(_obj(ph["household_id"]))
        pos = look.get_indexer(_index(hid[todo]))
        out[todo] = _take(_obj(ph["grid_code"]), pos)
        todo[todo] = pos < 0
    if todo.any():
        some = hid[todo][:5].tolist()
        raise LayerError(
            f"{int(todo.sum())} household(s) cannot be placed in the plan (e.g. {some}): their "
            "building is not in the plan (or is split and the plan has no household table); "
            "pass the households the plan was made from, or re-partition after adding them"
        )
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
    hid = _obj(frame["household_id"] if frame is not None else household_ids)
    bid = (
        _obj(frame["building_id"]) if frame is not None and "building_id" in frame.columns else None
    )
    return _grid_of(plan, hid, bid)


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
    gidx: np.ndarray,
    gcodes: np.ndarray,
    building: np.ndarray,
    role: np.ndarray,
    shares: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(role, staff_id, staff_name, staff rank) of each row from the plan's posts.

    ``gidx`` indexes ``gcodes`` (the rows' grid codes); the rank orders staff ids
    (vacant posts last). Vectorised: Python touches each grid and post once.
    """
    chiefs, workers = _posts(plan)
    out_role = np.asarray(role, dtype=object).copy()
    people = sorted({c[0] for c in chiefs.values()} | {w[0] for ws in workers.values() for w in ws})
    rank_of = {p: k for k, p in enumerate(people)}
    vacant = len(people)
    chief_id = np.array([chiefs.get(g, (None, None))[0] for g in gcodes], dtype=object)
    chief_nm = np.array([chiefs.get(g, (None, None))[1] for g in gcodes], dtype=object)
    chief_rk = np.array([rank_of.get(i, vacant) for i in chief_id], dtype=np.int64)
    nwork = np.array([len(workers.get(g, [])) for g in gcodes], dtype=np.int64)
    is_worker = (out_role == "worker") & (nwork[gidx] > 0)
    out_role[(out_role == "worker") & ~is_worker] = "chief"
    sid = chief_id[gidx]
    sname = chief_nm[gidx]
    srank = chief_rk[gidx]
    if is_worker.any():
        key = pd.MultiIndex.from_arrays([shares["grid_code"], shares["building_id"]])
        want = pd.MultiIndex.from_arrays(
            [_index(gcodes[gidx[is_worker]]), _index(np.asarray(building, dtype=object)[is_worker])]
        )
        pos = key.get_indexer(want)
        share = np.where(pos >= 0, shares["share"].to_numpy()[np.maximum(pos, 0)], 0.0)
        k = np.floor(share * nwork[gidx[is_worker]]).astype(np.int64)
        flat = [w for g in gcodes for w in workers.get(g, [])]
        flat_id = np.array([w[0] for w in flat], dtype=object)
        flat_nm = np.array([w[1] for w in flat], dtype=object)
        flat_rk = np.array([rank_of[w[0]] for w in flat], dtype=np.int64)
        first = np.concatenate([[0], np.cumsum(nwork)[:-1]])
        idx = first[gidx[is_worker]] + k
        sid[is_worker] = flat_id[idx]
        sname[is_worker] = flat_nm[idx]
        srank[is_worker] = flat_rk[idx]
    return out_role, sid, sname, srank


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
        hid = _obj(households["household_id"].iloc[sel])
        if "building_id" in households.columns:
            bid = _obj(households["building_id"].iloc[sel])
            grid = _grid_of(plan, hid, bid)
        else:
            grid = _grid_of(plan, hid, None)
            ph = plan.households
            assert ph is not None  # _grid_of needs one without building_id
            pos = _index(_obj(ph["household_id"])).get_indexer(_index(hid))
            bid = _obj(ph["building_id"])[pos]
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
        bids = _obj(buildings["building_id"])
        pos = _index(_obj(pb["building_id"])).get_indexer(_index(bids))
        in_plan = pos >= 0
        bgrid = _take(_obj(pb["grid_code"]), pos)
        names = (
            buildings["name"].to_numpy(dtype=object, na_value=None)
            if "name" in buildings.columns
            else np.full(len(buildings), None, dtype=object)
        )
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
    kind: np.ndarray,
    hid: np.ndarray,
    bid: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    records: pd.DataFrame | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(done count, first done day, all-records count) per due row, vectorised.

    Targets are matched by integer codes (households by id, organisations by
    building id), never by building key strings.
    """
    from gridmap.visits.records import OUTCOMES

    zero = np.zeros(len(kind), dtype=np.int64)
    nat = np.full(len(kind), np.iinfo(np.int64).min, dtype=np.int64)
    if records is None or len(records) == 0:
        return zero, nat, zero
    if "visited_at" not in records.columns:
        raise LayerError("records lacks 'visited_at' (when the visit was made)")
    from gridmap.visits.records import _record_target_kind

    n = len(kind)
    hh = np.asarray(kind == "household")
    rkind = _record_target_kind(records)
    rh = rkind == "household"
    codes = np.empty(n, dtype=np.int64)
    rpos = np.full(len(records), -1, dtype=np.int64)
    offset = 0
    for rows, recs, col in ((hh, rh, "household_id"), (~hh, ~rh, "building_id")):
        # one hash pass over the rows' ids and the records' ids together
        ids = (hid if col == "household_id" else bid)[rows]
        rids = _obj(records[col])[recs] if col in records.columns else np.zeros(0, dtype=object)
        both, uniq = pd.factorize(np.concatenate([ids, rids]))
        known = int(both[: len(ids)].max()) + 1 if len(ids) else 0
        codes[rows] = offset + both[: len(ids)]
        rc = both[len(ids) :]
        if len(rc) == int(recs.sum()):
            rpos[recs] = np.where((rc >= 0) & (rc < known), offset + rc, -1)
        offset += max(known, 0)
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
    parts: list[dict[str, np.ndarray]] = []
    for b in blocks:
        n = len(b["building_id"])
        if n == 0:
            continue
        periods = pd.period_range(start, end, freq=CADENCES[b["cadence"]])
        p = len(periods)
        ps = periods.start_time.normalize().to_numpy(dtype="datetime64[D]")
        pe = periods.end_time.normalize().to_numpy(dtype="datetime64[D]")
        parts.append(
            {
                "grid_code": np.tile(b["grid_code"], p),
                "target_kind": np.full(n * p, b["kind"], dtype=object),
                "household_id": np.tile(b["household_id"], p),
                "building_id": np.tile(b["building_id"], p),
                "target_name": np.tile(b["target_name"], p),
                "categories": np.tile(b["categories"], p),
                "cadence": np.full(n * p, b["cadence"], dtype=object),
                "period": np.repeat(np.array([str(x) for x in periods], dtype=object), n),
                "period_start": np.repeat(ps, n),
                "period_end": np.repeat(pe, n),
                "role": np.full(n * p, b["role"], dtype=object),
                "_pos": np.tile(b["pos"], p),
            }
        )
    if not parts:
        return _empty()
    cols = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    return _finish(plan, buildings, cols, records, today)


def _empty() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series([], dtype=object) for c in DUE_COLUMNS})
    for c in ("period_start", "period_end", "visited_at"):
        out[c] = pd.Series([], dtype="datetime64[ns]")
    out["attempts"] = pd.Series([], dtype=np.int64)
    return out


def _finish(
    plan: Plan,
    buildings: gpd.GeoDataFrame | None,
    cols: dict[str, np.ndarray],
    records: pd.DataFrame | None,
    today: int,
) -> pd.DataFrame:
    """Staff, status, ids and order of due rows (shared by due_visits and follow_redraw).

    ``cols`` holds one array per column (object arrays for text); the frame is
    built once, in its final order, with object columns (no string-dtype round trips).
    """
    kind = np.asarray(cols["target_kind"], dtype=object)
    gidx, gcodes = pd.factorize(_obj(cols["grid_code"]), sort=True)
    gcodes = np.asarray(gcodes, dtype=object)
    hid = _obj(cols["household_id"])
    bld = _obj(cols["building_id"])
    role_in = np.asarray(cols["role"], dtype=object)
    need_shares = bool((role_in == "worker").any())
    shares = (
        _building_share(plan, buildings)
        if need_shares
        else pd.DataFrame({"grid_code": [], "building_id": [], "share": []})
    )
    role, sid, sname, srank = _responsible(plan, gidx, gcodes, bld, role_in, shares)
    start = np.asarray(cols["period_start"], dtype="datetime64[D]").astype(np.int64)
    end = np.asarray(cols["period_end"], dtype="datetime64[D]").astype(np.int64)
    n_done, first, n_all = _match_records(kind, hid, bld, start, end, records)
    status = np.where(n_done > 0, "done", np.where(end < today, "overdue", "due")).astype(object)
    visited = first.astype("datetime64[D]").astype("datetime64[ns]")
    visited[first == np.iinfo(np.int64).min] = np.datetime64("NaT")
    cadence = np.asarray(cols["cadence"], dtype=object)
    cad_code, cad_uniq = pd.factorize(cadence)
    pcode, puniq = pd.factorize(cad_code.astype(np.int64) * (1 << 32) + (start + (1 << 31)))
    suffix = np.array(
        [
            f"/{cad_uniq[int(u) >> 32]}/{np.datetime64(int(u & 0xFFFFFFFF) - (1 << 31), 'D')}"
            for u in puniq
        ],
        dtype=object,
    )
    hh = kind == "household"
    target = np.where(hh, hid, bld).astype(object)
    prefix = np.where(hh, "h:", "b:").astype(object)
    pos = np.asarray(cols.get("_pos", np.arange(len(kind))), dtype=np.int64)
    order = np.lexsort((pos, start, srank, role != "chief", gidx))
    text = {
        "visit_id": (prefix + target + suffix[pcode])[order],
        "grid_code": gcodes[gidx[order]],
        "target_kind": kind[order],
        "household_id": hid[order],
        "building_id": bld[order],
        "target_name": np.asarray(cols["target_name"], dtype=object)[order],
        "categories": np.asarray(cols["categories"], dtype=object)[order],
        "cadence": cadence[order],
        "period": np.asarray(cols["period"], dtype=object)[order],
        "role": role[order],
        "staff_id": sid[order],
        "staff_name": sname[order],
        "status": status[order],
    }
    data: dict[str, Any] = {k: pd.Series(v, dtype=object, copy=False) for k, v in text.items()}
    data["period_start"] = start[order].astype("datetime64[D]").astype("datetime64[ns]")
    data["period_end"] = end[order].astype("datetime64[D]").astype("datetime64[ns]")
    data["visited_at"] = visited[order]
    data["attempts"] = n_all[order].astype(np.int64)
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(order)), copy=False)
    return frame[list(DUE_COLUMNS)]


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
    cols = {c: base[c].to_numpy(dtype=object) for c in base.columns if not c.startswith("period_")}
    cols["period_start"] = base["period_start"].to_numpy(dtype="datetime64[ns]")
    cols["period_end"] = base["period_end"].to_numpy(dtype="datetime64[ns]")
    cols["_pos"] = np.arange(len(base), dtype=np.int64)
    if records is not None:
        end = pd.Timestamp(due["period_end"].max())
        today = _as_of_day(as_of, end)
        out = _finish(plan, buildings, cols, records, today)
    else:
        out = _finish(plan, buildings, cols, None, 0)
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
