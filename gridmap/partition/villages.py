"""Settlements (natural villages 自然村): groups of buildings the partitioner keeps whole.

Where buildings form separate settlements separated by fields, grids should follow
them: a village is kept whole when it fits the band, small villages are grouped with
their neighbours, and a border never cuts through a village without need.

:func:`settlements` finds them: two buildings whose outlines lie within ``gap`` metres
of each other belong to the same settlement (a union of ``gap / 2`` buffers, as
DBSCAN with one point per building and ``min_samples=1``). In a built-up city every
building is near another and the whole community is one settlement far above the
band, so nothing changes there.

:func:`keep_settlements_whole` works on a community's unit graph
(:class:`gridmap.partition.units.Units`): the units of a settlement holding at most
``max_households`` are merged into one unit, so the solver cannot split it (it is
then grouped with neighbouring units, across the fields, to reach the band); a
settlement above the maximum but below ``3 × max_households`` keeps its units, but
cutting between them costs ``inside_cost`` times more, so borders run between
villages and through fields where they can. A larger settlement is a town or a
city, whose streets and compounds decide the grids: it is left as it is. Land
without buildings (fields) stays in units of its own, so the solver chooses which
village it joins — along tracks, roads or water, which are cheap to cut along.
Units are only merged across edges not lying on an arterial road, so a merged unit
never spans a main road.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from gridmap.errors import InputError
from gridmap.partition.solver import Weights

__all__ = ["SETTLEMENT_GAP", "settlements", "keep_settlements_whole", "open_land_weights"]

#: Buildings farther apart than this (metres, outline to outline) are in different
#: settlements unless other buildings link them.
SETTLEMENT_GAP = 80.0

#: A community at least this share of whose land lies outside its settlements is
#: villages among fields for :func:`open_land_weights`.
OPEN_LAND_SHARE = 0.5
#: The solver's compactness weight there (:class:`gridmap.partition.solver.Weights`).
OPEN_LAND_COMPACT = 1.0

_ON_ARTERIAL = 0.5  # as in gridmap.partition.pieces
_MID_FACTOR = 3  # settlements up to this many times the maximum get costlier inner cuts


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(m, directed=False)[1]


def settlements(geoms: Any, *, gap: float = SETTLEMENT_GAP) -> np.ndarray:
    """Label each building with its settlement: buildings within ``gap`` metres link up.

    Parameters
    ----------
    geoms : array-like of shapely geometries
        Building footprints in a projected CRS (metres).
    gap : float, default :data:`SETTLEMENT_GAP`
        Largest distance between two outlines of one settlement, in metres.

    Returns
    -------
    numpy.ndarray
        Settlement label per building, ``0 .. k-1``, numbered in order of each
        settlement's first building.

    Raises
    ------
    InputError
        If ``gap`` is not a positive number.

    Examples
    --------
    >>> import shapely
    >>> # two houses 10 m apart, a third 200 m away
    >>> houses = [shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10),
    ...           shapely.box(230, 0, 240, 10)]
    >>> settlements(houses, gap=60).tolist()
    [0, 0, 1]
    """
    if not (isinstance(gap, int | float) and np.isfinite(gap) and gap > 0):
        raise InputError(f"gap must be a positive number of metres, got {gap!r}")
    g = np.asarray(geoms, dtype=object)
    n = len(g)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    a, b = shapely.STRtree(g).query(g, predicate="dwithin", distance=float(gap))
    comp = _components(n, a, b)
    # number settlements by their first building, whatever scipy's order
    _, first = np.unique(comp, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[comp]


def _unit_settlement(units: Any, building_ids: pd.Series, label: np.ndarray) -> np.ndarray:
    """Settlement of each unit with households: the one holding most of its households."""
    mem = units.members
    lab_of = pd.Series(label, index=building_ids.astype(str).to_numpy())
    lab_of = lab_of[~lab_of.index.duplicated()]
    mlab = mem["building_id"].astype(str).map(lab_of)
    unit_of = np.asarray(units.cell_unit)[mem["cell"].to_numpy()]
    out = np.full(units.n, -1, dtype=np.int64)
    ok = mlab.notna().to_numpy() & (mem["households"].to_numpy() > 0)
    if not ok.any():
        return out
    votes = pd.DataFrame(
        {
            "unit": unit_of[ok],
            "lab": mlab[ok].astype(np.int64).to_numpy(),
            "w": mem["households"].to_numpy(dtype=float)[ok],
        }
    )
    best = (
        votes.groupby(["unit", "lab"], sort=True)["w"]
        .sum()
        .reset_index()
        .sort_values(["unit", "w", "lab"], ascending=[True, False, True])
        .drop_duplicates("unit")
    )
    out[best["unit"].to_numpy()] = best["lab"].to_numpy()
    return out


def _merge(units: Any, group: np.ndarray) -> Any:
    """Units merged by ``group`` (new unit index per old unit, ``0 .. k-1``)."""
    k = int(group.max()) + 1
    edges = np.asarray(units.edges, dtype=np.int64).reshape(-1, 2)
    ga, gb = group[edges[:, 0]], group[edges[:, 1]]
    inner = ga == gb
    length = np.asarray(units.edge_length, dtype=float)
    area = np.bincount(group, weights=units.area, minlength=k)
    cx = np.bincount(group, weights=units.area * units.cx, minlength=k) / np.maximum(area, 1e-9)
    cy = np.bincount(group, weights=units.area * units.cy, minlength=k) / np.maximum(area, 1e-9)
    perimeter = np.bincount(group, weights=units.perimeter, minlength=k) - 2 * np.bincount(
        ga[inner], weights=length[inner], minlength=k
    )
    a, b = np.minimum(ga, gb)[~inner], np.maximum(ga, gb)[~inner]
    key, inv = np.unique(a * k + b, return_inverse=True)

    def agg(values: Any) -> np.ndarray:
        return np.bincount(inv, weights=np.asarray(values, dtype=float)[~inner], minlength=len(key))

    first = np.full(k, -1, dtype=np.int64)
    first[group[::-1]] = np.arange(len(group))[::-1]  # first old unit of every new one
    compound = None
    if getattr(units, "compound", None) is not None:
        compound = np.asarray(units.compound, dtype=object)[first].copy()
        for old in range(len(group)):  # a merged unit keeps a compound if any part had one
            if compound[group[old]] is None and units.compound[old] is not None:
                compound[group[old]] = units.compound[old]
    changes: dict[str, Any] = {
        "cell_unit": group[np.asarray(units.cell_unit)],
        "households": np.bincount(group, weights=units.households, minlength=k)
        .round()
        .astype(np.int64),
        "area": area,
        "perimeter": perimeter,
        "exterior": np.bincount(group, weights=units.exterior, minlength=k),
        "cx": cx,
        "cy": cy,
        "edges": np.column_stack([key // k, key % k]).astype(np.int64).reshape(-1, 2),
        "edge_length": agg(length),
        "edge_cost": agg(units.edge_cost),
        "edge_road": agg(units.edge_road),
        "compound": compound,
    }
    if getattr(units, "edge_arterial", None) is not None:
        changes["edge_arterial"] = agg(units.edge_arterial)
    if getattr(units, "outer", None) is not None:
        changes["outer"] = np.bincount(group, weights=units.outer, minlength=k)
    if getattr(units, "block", None) is not None:
        changes["block"] = np.asarray(units.block)[first]
    return replace(units, **changes)


def keep_settlements_whole(
    units: Any,
    buildings: pd.DataFrame,
    *,
    max_households: int,
    gap: float = SETTLEMENT_GAP,
    inside_cost: float = 2.0,
    merge: bool = True,
) -> tuple[Any, list[str]]:
    """Merge the units of every settlement that fits under the maximum; protect the others.

    Parameters
    ----------
    units : Units
        The unit graph of one community (:func:`gridmap.partition.units.build_units`).
    buildings : pandas.DataFrame
        The community's buildings with ``building_id`` and ``geometry``
        (footprints in metres).
    max_households : int
        Upper end of the band: a settlement holding at most this many households
        becomes one unit.
    gap : float, default :data:`SETTLEMENT_GAP`
        See :func:`settlements`.
    inside_cost : float, default 2.0
        Factor on the cutting cost between units of one settlement above the
        maximum (up to three times it), so borders prefer the fields between villages.
    merge : bool, default True
        Merge the settlements that fit under the maximum. With False every
        settlement keeps its units and only gets the costlier inner cuts: the
        fallback when whole villages cannot all be grouped into the band (three
        villages of 150, 350 and 150 households: the middle one has to be cut).

    Returns
    -------
    (Units, list of str)
        The new unit graph (``units`` itself when there is at most one settlement
        with households) and notes for the report.

    Examples
    --------
    >>> import numpy as np, pandas as pd, shapely
    >>> from gridmap.partition.units import build_units
    >>> area = shapely.box(0, 0, 600, 100)
    >>> b = pd.DataFrame({"building_id": ["a", "b", "c", "d"], "households": [60] * 4,
    ...     "geometry": [shapely.box(x, 40, x + 12, 52) for x in (20, 50, 540, 570)]})
    >>> u = build_units(area, b)
    >>> u.n
    4
    >>> merged, notes = keep_settlements_whole(u, b, max_households=500)
    >>> merged.n, merged.households.tolist(), notes
    (2, [120, 120], ['2 settlements (natural villages) kept whole, each in one grid'])
    """
    if len(buildings) == 0 or units.n < 2:
        return units, []
    label = settlements(np.asarray(buildings["geometry"], dtype=object), gap=gap)
    hh = buildings["households"].to_numpy(dtype=float)
    sett_hh = np.bincount(label, weights=hh)
    if int((sett_hh > 0).sum()) < 2:
        return units, []
    useg = _unit_settlement(units, buildings["building_id"], label)
    # a settlement far above the band is a town or a city: its streets decide, not this
    village = (sett_hh > 0) & (sett_hh <= _MID_FACTOR * max_households)
    useg = np.where(useg >= 0, np.where(village[np.maximum(useg, 0)], useg, -1), -1)
    if not (useg >= 0).any():
        return units, []
    edges = np.asarray(units.edges, dtype=np.int64).reshape(-1, 2)
    length = np.asarray(units.edge_length, dtype=float)
    art = getattr(units, "edge_arterial", None)
    on_art = (
        np.asarray(art, dtype=float) >= _ON_ARTERIAL * np.maximum(length, 1e-9)
        if art is not None
        else np.zeros(len(edges), dtype=bool)
    )
    sa, sb = useg[edges[:, 0]], useg[edges[:, 1]]
    same = (sa >= 0) & (sa == sb) & ~on_art
    # connected parts of each settlement (never across an arterial)
    comp = _components(units.n, edges[same, 0], edges[same, 1])
    comp_hh = np.bincount(comp, weights=np.asarray(units.households, dtype=float))
    in_sett = useg >= 0
    merge_part = np.zeros(len(comp_hh), dtype=bool)
    merge_part[comp[in_sett]] = True
    merge_part &= comp_hh <= max_households
    if not merge:
        merge_part[:] = False
    size = np.bincount(comp, minlength=len(comp_hh))
    whole = merge_part & (size > 1)
    notes: list[str] = []
    out = units
    n_kept = int(merge_part.sum())
    mid = comp_hh > max_households if merge else np.ones(len(comp_hh), dtype=bool)
    mid[comp[~in_sett]] = False
    mid_edges = same & mid[comp[edges[:, 0]]]
    if mid_edges.any() and inside_cost != 1.0:
        cost = np.asarray(out.edge_cost, dtype=float).copy()
        cost[mid_edges] *= inside_cost
        out = replace(out, edge_cost=cost)
    if whole.any():
        group = np.where(whole[comp] & in_sett, units.n + comp, np.arange(units.n))
        _, group = np.unique(group, return_inverse=True)
        out = _merge(out, group.astype(np.int64))
    if n_kept:
        notes.append(
            f"{n_kept} settlement{'s' if n_kept > 1 else ''} (natural villages) kept whole, "
            "each in one grid"
        )
    n_mid = int(mid[np.unique(comp[in_sett])].sum())
    if n_mid and not merge:
        notes.append(
            f"{n_mid} settlement(s) could not all be kept whole in the band: cut where "
            "cutting them costs least"
        )
    elif n_mid:
        notes.append(
            f"{n_mid} settlement(s) above {max_households} households split where cutting "
            "them costs least"
        )
    return out, notes


def open_land_weights(
    units: Any, buildings: pd.DataFrame, *, gap: float = SETTLEMENT_GAP
) -> Weights | None:
    """Solver weights for villages among fields: borders on tracks before round grids.

    Between villages the grid outline is mostly fields, drawn by the community's
    edge and the tracks, so how round it is says little about how far its people
    live apart; a border across a field, on the other hand, is one nobody can
    find on the ground. Where at least :data:`OPEN_LAND_SHARE` of the community
    lies farther than ``gap / 2`` from every building (outside the settlements of
    :func:`settlements`), compactness weighs :data:`OPEN_LAND_COMPACT` instead of
    the default 4, so that a border along a track between two villages wins over
    a rounder one across the fields. Call it only for a community of several
    settlements (:func:`keep_settlements_whole` returned notes).

    Parameters
    ----------
    units : Units
        The community's unit graph (its ``area`` sums to the community's).
    buildings : pandas.DataFrame
        The community's buildings (``geometry``, footprints in metres).
    gap : float, default :data:`SETTLEMENT_GAP`
        As for :func:`settlements`.

    Returns
    -------
    Weights or None
        None (the defaults) where the community is mostly built on.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> village = pd.DataFrame({"geometry": [shapely.box(0, 0, 100, 100)]})
    >>> fields = SimpleNamespace(area=np.array([500.0 * 500.0]))  # 0.25 km², 0.04 built
    >>> open_land_weights(fields, village).compact
    1.0
    >>> town = SimpleNamespace(area=np.array([150.0 * 150.0]))
    >>> open_land_weights(town, village) is None
    True
    """
    total = float(np.asarray(units.area, dtype=float).sum())
    geoms = np.asarray(buildings["geometry"], dtype=object)
    if total <= 0 or len(geoms) == 0:
        return None
    settled = shapely.area(shapely.union_all(shapely.buffer(geoms, gap / 2.0, quad_segs=2)))
    if total - settled < OPEN_LAND_SHARE * total:
        return None
    return Weights(compact=OPEN_LAND_COMPACT)
