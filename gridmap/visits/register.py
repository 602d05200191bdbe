"""The 四清 register: what each grid chief must know about the grid, one row per grid.

四清 — family situations, kinds of residents, facilities, hazards and disputes
known (家庭情况清、人员类别清、设施设备清、隐患矛盾清). :func:`visit_register`
counts, per grid of a plan:

* households and persons; households of each household visit category (独居老人,
  流动人员 …) and those in any (``must_visit``);
* buildings by use, and organisations (the building categories);
* open hazards and disputes, from a cases frame (case categories listed in the
  rules' ``register`` block, statuses in :data:`gridmap.cases.states.OPEN_STATES`);
* households visited in the ``window_days`` up to ``as_of`` (a counting
  outcome), and their share of all households and of must-visit households.

The frame is Excel-ready: with ``header="both"`` the columns read
``"独居老人 Elderly living alone"``. Writing it is the I/O layer's job; for Excel
to read the Chinese, write UTF-8 with a BOM::

    frame.to_csv(path, index=False, encoding="utf-8-sig")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from gridmap.errors import InputError, LayerError
from gridmap.layers import BUILDING_USES
from gridmap.visits.due import _day, _flag, _record_keys, grid_of_households
from gridmap.visits.rules import VisitRules, default_rules

if TYPE_CHECKING:
    from gridmap.partition.plan import Plan

__all__ = ["REGISTER_LABELS", "visit_register", "register_labels"]

#: Fixed register columns → (Chinese, English) header.
REGISTER_LABELS: dict[str, tuple[str, str]] = {
    "grid_code": ("网格编码", "Grid code"),
    "grid_name": ("网格名称", "Grid name"),
    "community_id": ("社区", "Community"),
    "households": ("户数", "Households"),
    "persons": ("人口", "Persons"),
    "must_visit": ("六必访户数", "Must-visit households"),
    **{
        f"use_{u}": (z, f"{u.capitalize()} buildings")
        for u, z in zip(
            BUILDING_USES,
            ("住宅楼栋", "商业楼栋", "公共设施", "工业楼栋", "混合楼栋", "其他楼栋"),
            strict=True,
        )
    },
    "open_hazards": ("未结隐患", "Open hazards"),
    "open_disputes": ("未结矛盾纠纷", "Open disputes"),
    "visited": ("近期已走访户数", "Households visited"),
    "share_visited": ("走访覆盖率", "Share visited"),
    "share_must_visit_visited": ("六必访覆盖率", "Share of must-visit visited"),
}


def register_labels(rules: VisitRules | None = None) -> dict[str, tuple[str, str]]:
    """Column → (Chinese, English) header for every register column under ``rules``.

    Examples
    --------
    >>> register_labels()["n_elderly_alone"]
    ('独居老人', 'Elderly living alone')
    """
    book = rules or default_rules()
    out = dict(REGISTER_LABELS)
    for c in book.categories:
        en = c.label_en[:1].upper() + c.label_en[1:]
        out[f"n_{c.code}"] = (c.label_zh, en)
    return out


def visit_register(
    plan: Plan,
    households: pd.DataFrame | None,
    buildings: gpd.GeoDataFrame,
    *,
    rules: VisitRules | None = None,
    cases: pd.DataFrame | None = None,
    records: pd.DataFrame | None = None,
    as_of: Any = None,
    window_days: int = 30,
    header: Literal["code", "zh", "en", "both"] = "both",
) -> pd.DataFrame:
    """Build the 四清 register of every grid (see the module docstring).

    Parameters
    ----------
    plan : Plan
        The plan (``grids``, ``buildings``, ``households``).
    households : pandas.DataFrame or None
        The households layer with ``household_id``, ``persons`` and the flags.
    buildings : geopandas.GeoDataFrame
        The buildings layer (``building_id``, ``use``, ``name``).
    rules : VisitRules, optional
        Default: the shipped rules.
    cases : pandas.DataFrame, optional
        Cases with ``grid_code``, ``category`` (code) and ``status``
        (e.g. :func:`gridmap.cases.frame_cases`); without it the hazard and
        dispute columns are empty (NA), not zero.
    records : pandas.DataFrame, optional
        Visit records (``household_id``, ``visited_at``, ``outcome``); needs ``as_of``.
    as_of : date, optional
        The register date: visits in the ``window_days`` days up to it count.
    window_days : int, default 30
    header : {"code", "zh", "en", "both"}, default "both"
        Column names: machine codes, Chinese, English, or ``"中文 English"``.

    Returns
    -------
    pandas.DataFrame
        One row per grid, in grid-code order.

    Raises
    ------
    InputError
        ``records`` without ``as_of``, a bad ``header`` or ``window_days``.
    LayerError
        A column is missing.

    Examples
    --------
    >>> from gridmap.visits.examples import _example
    >>> ex = _example()
    >>> reg = visit_register(ex.plan, ex.households, ex.buildings, records=ex.records,
    ...                      as_of="2026-09-30", header="code")
    >>> reg[["grid_code", "households", "must_visit", "n_organisation", "visited"]].values.tolist()
    [['320104001001001', 8, 3, 1, 1], ['320104001001002', 6, 3, 0, 0]]
    >>> list(visit_register(ex.plan, ex.households, ex.buildings).columns[:2])
    ['网格编码 Grid code', '网格名称 Grid name']
    """
    if header not in ("code", "zh", "en", "both"):
        raise InputError(f"header must be 'code', 'zh', 'en' or 'both', got {header!r}")
    if records is not None and as_of is None:
        raise InputError("records need as_of (the register date) to count recent visits")
    if not isinstance(window_days, int) or window_days < 1:
        raise InputError(f"window_days must be a whole number ≥ 1, got {window_days!r}")
    book = rules or default_rules()
    grids = plan.grids
    codes = pd.Index(sorted(grids["grid_code"].astype(str)))
    gidx = grids.set_axis(grids["grid_code"].astype(str).to_numpy()).reindex(codes)
    out = pd.DataFrame({"grid_code": codes.to_numpy(dtype=object)})
    out["grid_name"] = gidx["name"].to_numpy() if "name" in gidx.columns else None
    out["community_id"] = gidx["community_id"].to_numpy() if "community_id" in gidx else None

    def per_grid(keys: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        pos = codes.get_indexer(pd.Index(np.asarray(keys, dtype=str)))
        ok = pos >= 0
        w = None if weights is None else np.asarray(weights, dtype=float)[ok]
        return np.bincount(pos[ok], weights=w, minlength=len(codes))

    must = np.zeros(0, dtype=bool)
    hh_grid = np.zeros(0, dtype=object)
    hh_cats = [c for c in book.categories if c.target == "household" and c.enabled]
    if households is not None and len(households):
        hh_grid = grid_of_households(
            plan,
            households[["household_id", "building_id"]]
            if "building_id" in households.columns
            else households["household_id"],
        )
        out["households"] = per_grid(hh_grid).astype(np.int64)
        if "persons" in households.columns:
            persons = pd.to_numeric(households["persons"], errors="coerce")
            out["persons"] = per_grid(hh_grid, persons.fillna(0).to_numpy()).astype(np.int64)
        else:
            out["persons"] = pd.NA
        must = np.zeros(len(households), dtype=bool)
        for c in hh_cats:
            mark = np.logical_or.reduce(
                [_flag(households, f, f"visit category {c.code!r}") for f in c.flags]
            )
            must |= mark
            out[f"n_{c.code}"] = per_grid(hh_grid[mark]).astype(np.int64)
        out["must_visit"] = per_grid(hh_grid[must]).astype(np.int64)
    else:
        hh = plan.grids.set_axis(plan.grids["grid_code"].astype(str).to_numpy())["households"]
        out["households"] = hh.reindex(codes).fillna(0).astype(np.int64).to_numpy()
        out["persons"] = pd.NA
        for c in hh_cats:
            out[f"n_{c.code}"] = pd.NA
        out["must_visit"] = pd.NA

    # buildings: by use and organisations (a split building counts in its first grid)
    pb = plan.buildings.sort_values(["building_id", "grid_code"], kind="stable")
    pb = pb.drop_duplicates("building_id")
    bpos = pd.Index(pb["building_id"].astype(str)).get_indexer(buildings["building_id"].astype(str))
    bgrid = np.where(bpos >= 0, pb["grid_code"].astype(str).to_numpy()[np.maximum(bpos, 0)], "")
    use = (
        buildings["use"].astype(str).to_numpy()
        if "use" in buildings.columns
        else np.full(len(buildings), "other")
    )
    for u in BUILDING_USES:
        out[f"use_{u}"] = per_grid(bgrid[use == u]).astype(np.int64)
    from gridmap.visits.due import _building_mask

    for c in book.categories:
        if c.target == "building" and c.enabled:
            out[f"n_{c.code}"] = per_grid(bgrid[_building_mask(buildings, c)]).astype(np.int64)

    # hazards and disputes (隐患矛盾)
    if cases is not None:
        missing = [k for k in ("grid_code", "category", "status") if k not in cases.columns]
        if missing:
            raise LayerError(f"cases lacks {missing}; pass gridmap.cases.frame_cases(...) output")
        from gridmap.cases.states import OPEN_STATES

        open_ = cases["status"].isin(list(OPEN_STATES)) & cases["grid_code"].notna()
        cat = cases["category"].astype(str)
        for col, kinds in (
            ("open_hazards", book.hazard_categories),
            ("open_disputes", book.dispute_categories),
        ):
            sel = open_ & cat.isin(list(kinds))
            out[col] = per_grid(cases.loc[sel, "grid_code"].to_numpy()).astype(np.int64)
    else:
        out["open_hazards"] = pd.NA
        out["open_disputes"] = pd.NA

    # visits in the window
    if records is not None and households is not None and len(households):
        from gridmap.visits.records import OUTCOMES

        today = int(_day([as_of])[0])
        rday = _day(records["visited_at"].to_numpy())
        inwin = (rday > today - window_days) & (rday <= today)
        if "outcome" in records.columns:
            oc = records["outcome"].fillna("visited").astype(str)
            inwin &= oc.map({k: v[2] for k, v in OUTCOMES.items()}).fillna(False).to_numpy(bool)
        seen = set(_record_keys(records)[inwin])
        hkeys = "h:" + households["household_id"].astype(str)
        visited = hkeys.isin(seen).to_numpy()
        out["visited"] = per_grid(hh_grid[visited]).astype(np.int64)
        must_n = per_grid(hh_grid[must])
        must_v = per_grid(hh_grid[must & visited])
        tot = out["households"].to_numpy(dtype=float)
        out["share_visited"] = np.where(tot > 0, out["visited"] / np.where(tot > 0, tot, 1), np.nan)
        out["share_must_visit_visited"] = np.where(
            must_n > 0, must_v / np.where(must_n > 0, must_n, 1), np.nan
        )
    else:
        out["visited"] = pd.NA
        out["share_visited"] = np.nan
        out["share_must_visit_visited"] = np.nan
    for col in ("share_visited", "share_must_visit_visited"):
        out[col] = pd.to_numeric(out[col], errors="coerce").round(4)

    labels = register_labels(book)
    order = [
        "grid_code",
        "grid_name",
        "community_id",
        "households",
        "persons",
        "must_visit",
        *[f"n_{c.code}" for c in book.categories if c.enabled and c.target == "household"],
        *[f"n_{c.code}" for c in book.categories if c.enabled and c.target == "building"],
        *[f"use_{u}" for u in BUILDING_USES],
        "open_hazards",
        "open_disputes",
        "visited",
        "share_visited",
        "share_must_visit_visited",
    ]
    out = out[order]
    if header == "code":
        return out
    pick = {"zh": lambda z, e: z, "en": lambda z, e: e, "both": lambda z, e: f"{z} {e}"}[header]
    return out.rename(columns={c: pick(*labels[c]) for c in order})
