"""Workload per building, for grids balanced on load as well as households (issue 13).

A grid's work is not only its households: last year's cases (事件工单) located in
its buildings and the households the grid chief must visit each month (六必访:
elderly living alone 独居老人, disabled 残疾, on assistance 低保) weigh more.
:func:`building_loads` turns the layers (and a table of cases) into one number per
building, a weighted sum of terms named in ``weights``:

==============  ==================================================================
term            per building
==============  ==================================================================
``households``  its households (``buildings.households``)
``cases``       cases located in it: a case point inside the building's outline,
                else the nearest building within ``max_distance`` metres; cases
                farther than that are counted as unlocated (reported, not used)
``care``        households with a care flag (:data:`CARE_FLAGS`) in the
                households layer
``persons``     persons of its households (``households.persons``)
any column      a numeric column of ``buildings``
==============  ==================================================================

:func:`parse_balance` reads the command line's ``households,cases=0.2,care=2``.
:func:`gridmap.partition.partition` balances grids on the load (``load_weights=``)
with the household band still a hard constraint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.errors import InputError
from gridmap.layers import Layers

__all__ = ["CARE_FLAGS", "LOAD_TERMS", "building_loads", "parse_balance"]

#: Household flags that make a household a care household (the grid chief's monthly visits).
CARE_FLAGS: tuple[str, ...] = ("elderly_living_alone", "disabled", "on_assistance")

#: Terms with a meaning of their own (any numeric buildings column is a term too).
LOAD_TERMS: tuple[str, ...] = ("households", "cases", "care", "persons")

_TERM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_balance(text: str) -> dict[str, float]:
    """Read ``"households,cases=0.2,care=2"`` into term weights (a bare term weighs 1).

    Examples
    --------
    >>> parse_balance("households,cases=0.2,care=2")
    {'households': 1.0, 'cases': 0.2, 'care': 2.0}
    >>> parse_balance("cases=abc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridmap.errors.InputError: --balance: weight 'abc' of 'cases' is not a number; ...
    """
    out: dict[str, float] = {}
    for raw in str(text).split(","):
        item = raw.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        name = name.strip()
        if not _TERM.match(name):
            raise InputError(
                f"--balance: {item!r} is not a term; write TERM or TERM=WEIGHT separated by "
                "commas, e.g. households,cases=0.2,care=2"
            )
        if name in out:
            raise InputError(f"--balance: {name!r} is given twice; name each term once")
        weight = 1.0
        if value.strip():
            try:
                weight = float(value)
            except ValueError:
                raise InputError(
                    f"--balance: weight {value.strip()!r} of {name!r} is not a number; write "
                    f"e.g. {name}=0.2"
                ) from None
        if not math.isfinite(weight) or weight < 0:
            raise InputError(
                f"--balance: weight {weight:g} of {name!r} must be a number >= 0, e.g. {name}=0.2"
            )
        out[name] = weight
    if not out:
        raise InputError(
            "--balance is empty; name at least one term, e.g. households,cases=0.2,care=2"
        )
    return out


def _locate_cases(
    buildings: gpd.GeoDataFrame, cases: pd.DataFrame, crs: Any, max_distance: float
) -> tuple[np.ndarray, int]:
    """Return the building row of each case (-1: none within reach) and how many had none."""
    if "building_id" in cases.columns and not isinstance(cases, gpd.GeoDataFrame):
        pos = pd.Series(np.arange(len(buildings)), index=buildings["building_id"].astype(str))
        found = cases["building_id"].astype(str).map(pos)
        rows = found.fillna(-1).to_numpy(dtype=np.int64)
        return rows, int((rows < 0).sum())
    if not isinstance(cases, gpd.GeoDataFrame) or cases.crs is None:
        raise InputError(
            "cases need point geometry with a CRS (a GeoDataFrame, e.g. from lon/lat with "
            "crs=4326) or a building_id column"
        )
    pts = np.asarray(cases.to_crs(crs).geometry.array, dtype=object)
    ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    rows = np.full(len(pts), -1, dtype=np.int64)
    bgeom = np.asarray(buildings.geometry.array, dtype=object)
    if len(bgeom) and ok.any():
        tree = shapely.STRtree(bgeom)
        idx = np.flatnonzero(ok)
        hit_p, hit_b = tree.query(pts[idx], predicate="within")
        inside = np.full(len(idx), -1, dtype=np.int64)
        # overlapping buildings: the first (lowest row) holding the point
        order = np.lexsort((hit_b, hit_p))
        first = np.r_[True, hit_p[order][1:] != hit_p[order][:-1]] if len(order) else order
        inside[hit_p[order][first]] = hit_b[order][first]
        rest = inside < 0
        if rest.any():
            near_p, near_b = tree.query_nearest(
                pts[idx[rest]], max_distance=max_distance, all_matches=False
            )
            got = np.full(int(rest.sum()), -1, dtype=np.int64)
            got[near_p] = near_b
            inside[rest] = got
        rows[idx] = inside
    return rows, int((rows < 0).sum())


def building_loads(
    layers: Layers,
    weights: Mapping[str, float],
    *,
    cases: pd.DataFrame | None = None,
    max_distance: float = 100.0,
) -> pd.DataFrame:
    """Workload of every building: a weighted sum of the terms in ``weights``.

    Parameters
    ----------
    layers : gridmap.layers.Layers
        Validated layers (projected CRS).
    weights : mapping of str to float
        Term → weight, e.g. ``{"households": 1, "cases": 0.2, "care": 2}``
        (:data:`LOAD_TERMS` or any numeric column of ``buildings``).
    cases : pandas.DataFrame, optional
        Cases to count (required when ``cases`` is a term): a GeoDataFrame of
        points with a CRS, or a frame with a ``building_id`` column.
    max_distance : float, default 100
        A case outside every building counts for the nearest building within
        this many metres.

    Returns
    -------
    pandas.DataFrame
        ``building_id``, one column per term (the raw counts) and ``load``, in
        the order of ``layers.buildings``; ``attrs["unlocated_cases"]`` counts
        the cases that are in no building and near none.

    Raises
    ------
    InputError
        An unknown term, a negative weight, ``cases`` named without a table, a
        ``care`` term without a households layer.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point, box
    >>> comms = gpd.GeoDataFrame({"community_id": ["c"]}, geometry=[box(0, 0, 100, 50)],
    ...                          crs=3857)
    >>> blds = gpd.GeoDataFrame({"building_id": ["a", "b"], "households": [10, 20]},
    ...     geometry=[box(10, 10, 30, 30), box(60, 10, 80, 30)], crs=3857)
    >>> cases = gpd.GeoDataFrame(geometry=[Point(20, 20), Point(38, 20), Point(70, 45),
    ...                                    Point(500, 20)], crs=3857)
    >>> out = building_loads(Layers(communities=comms, buildings=blds, crs=comms.crs),
    ...                      {"households": 1, "cases": 0.5}, cases=cases)
    >>> out[["building_id", "cases", "load"]].values.tolist()
    [['a', 2.0, 11.0], ['b', 1.0, 20.5]]
    >>> out.attrs["unlocated_cases"]  # 430 m from the nearest building
    1
    """
    b = layers.buildings
    n = len(b)
    if not weights:
        raise InputError("load weights are empty; e.g. {'households': 1, 'cases': 0.2}")
    out = pd.DataFrame({"building_id": b["building_id"].astype(str).to_numpy()})
    bid = out["building_id"]
    hh = layers.households
    for term, weight in weights.items():
        if not isinstance(weight, int | float | np.integer | np.floating) or not (
            math.isfinite(float(weight)) and float(weight) >= 0
        ):
            raise InputError(f"load weight of {term!r} must be a number >= 0, got {weight!r}")
        if term == "households":
            vals = pd.to_numeric(b["households"], errors="coerce").fillna(0).to_numpy(float)
        elif term == "cases":
            if cases is None:
                raise InputError(
                    "the load names 'cases' but no cases were given; pass cases=<frame> "
                    "(gridmap partition --cases FILE, or cases stored with `gridmap cases import`)"
                )
            rows, lost = _locate_cases(b, cases, layers.crs, max_distance)
            vals = np.bincount(rows[rows >= 0], minlength=n).astype(float)
            out.attrs["unlocated_cases"] = lost
            out.attrs["n_cases"] = len(rows)
        elif term in ("care", "persons"):
            if hh is None:
                raise InputError(
                    f"the load names {term!r} but there is no households layer; add one (with "
                    f"{', '.join(CARE_FLAGS) if term == 'care' else 'persons'}) or drop the term"
                )
            if term == "care":
                flags = [c for c in CARE_FLAGS if c in hh.columns]
                if not flags:
                    raise InputError(
                        f"the households layer has none of the care flags {list(CARE_FLAGS)}; "
                        "add them or drop the 'care' term"
                    )
                per_h = hh[flags].fillna(False).astype(bool).any(axis=1).astype(float)
            else:
                per_h = pd.to_numeric(hh.get("persons"), errors="coerce").fillna(0.0)
            sums = per_h.groupby(hh["building_id"].astype(str).to_numpy()).sum()
            vals = bid.map(sums).fillna(0.0).to_numpy(float)
        elif term in b.columns and pd.api.types.is_numeric_dtype(b[term]):
            vals = pd.to_numeric(b[term], errors="coerce").fillna(0).to_numpy(float)
        else:
            numeric = [
                c
                for c in b.columns
                if c not in ("geometry", "households") and pd.api.types.is_numeric_dtype(b[c])
            ]
            raise InputError(
                f"unknown load term {term!r}; use {', '.join(LOAD_TERMS)} or a numeric column "
                f"of buildings ({', '.join(numeric) or 'none'})"
            )
        out[term] = vals
    out["load"] = sum(float(w) * out[t].to_numpy(float) for t, w in weights.items())
    out.attrs.setdefault("unlocated_cases", 0)
    return out
