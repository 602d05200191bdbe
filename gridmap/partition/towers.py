"""Buildings above the household maximum: split by entrance or floors, sliced geometrically.

A building whose households alone exceed ``max_households`` cannot fit in one
grid. It is split into parts — by unit/entrance (单元) when the household layer
has them, else by floor ranges — and its tessellation cell is sliced by
parallel lines into pieces whose areas are proportional to the parts'
households, so the grids still tile the community exactly.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import shapely

__all__: list[str] = []


def _natural_key(value: Any) -> tuple[Any, ...]:
    text = str(value)
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def _split_counts(total: int, n_parts: int) -> list[int]:
    base = [total // n_parts] * n_parts
    for i in range(total - sum(base)):
        base[i] += 1
    return base


def _tower_parts(
    hh_total: int,
    n_parts: int,
    rows: pd.DataFrame | None,
    levels: float,
) -> tuple[list[int], list[str], list[list[str]]]:
    """Households, label and household ids of each part of a split building."""
    if rows is not None and len(rows) > 0:
        ids = rows["household_id"].astype(str).to_numpy()
        ucol = rows["unit"] if "unit" in rows.columns else pd.Series([None] * len(rows))
        units = ucol.astype(object).where(ucol.notna(), None).to_numpy()
        distinct = sorted({u for u in units if u is not None and str(u) != ""}, key=_natural_key)
        if all(u is not None and str(u) != "" for u in units) and len(distinct) >= n_parts:
            counts = {u: int((units == u).sum()) for u in distinct}
            cum = np.cumsum([counts[u] for u in distinct])
            cuts = [int(np.argmin(np.abs(cum - hh_total * k / n_parts))) for k in range(1, n_parts)]
            cuts = sorted(
                set(min(max(c, i), len(distinct) - n_parts + i) for i, c in enumerate(cuts))
            )
            edges = [-1, *cuts, len(distinct) - 1]
            sizes, labels, members = [], [], []
            for a, b in zip(edges[:-1], edges[1:], strict=True):
                chunk = distinct[a + 1 : b + 1]
                mask = np.isin(units, chunk)
                sizes.append(int(mask.sum()))
                labels.append(
                    f"units {chunk[0]}-{chunk[-1]}" if len(chunk) > 1 else f"unit {chunk[0]}"
                )
                members.append(list(ids[mask]))
            return sizes, labels, members
        floors = rows["floor"].to_numpy(dtype=float) if "floor" in rows.columns else None
        if floors is None:
            floors = np.full(len(rows), np.nan)
        order = np.lexsort((ids, np.where(np.isnan(floors), np.inf, floors)))
        sizes = _split_counts(len(rows), n_parts)
        labels, members = [], []
        start = 0
        for k, s in enumerate(sizes):
            sel = order[start : start + s]
            start += s
            fl = floors[sel]
            fl = fl[~np.isnan(fl)]
            if len(fl):
                labels.append(f"floors {int(fl.min())}-{int(fl.max())}")
            else:
                labels.append(f"part {k + 1} of {n_parts}")
            members.append(list(ids[sel]))
        return sizes, labels, members
    sizes = _split_counts(hh_total, n_parts)
    labels = []
    if levels and not math.isnan(levels) and levels >= n_parts:
        per = levels / n_parts
        for k in range(n_parts):
            labels.append(f"floors {int(round(k * per)) + 1}-{int(round((k + 1) * per))}")
    else:
        labels = [f"part {k + 1} of {n_parts}" for k in range(n_parts)]
    return sizes, labels, [[] for _ in range(n_parts)]


def _slice_cell(cell: Any, fractions: list[float]) -> list[Any]:
    """Cut a polygon by parallel lines into pieces with the given area fractions."""
    rect = shapely.minimum_rotated_rectangle(cell)
    xy = shapely.get_coordinates(rect)[:4]
    e1, e2 = xy[1] - xy[0], xy[2] - xy[1]
    axis = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    theta = math.atan2(axis[1], axis[0])
    c, s = math.cos(theta), math.sin(theta)
    cx, cy = shapely.get_coordinates(shapely.centroid(cell))[0]

    def to_world(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.column_stack([cx + u * c - v * s, cy + u * s + v * c])

    pts = shapely.get_coordinates(cell) - [cx, cy]
    u = pts[:, 0] * c + pts[:, 1] * s
    v = -pts[:, 0] * s + pts[:, 1] * c
    u0, u1 = u.min() - 1.0, u.max() + 1.0
    v0, v1 = v.min() - 1.0, v.max() + 1.0
    total = shapely.area(cell)

    def strip(a: float, b: float) -> Any:
        return shapely.polygons(to_world(np.array([a, b, b, a]), np.array([v0, v0, v1, v1])))

    cuts = [u0]
    acc = 0.0
    for f in fractions[:-1]:
        acc += f
        lo, hi = cuts[-1], u1
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if shapely.area(shapely.intersection(cell, strip(u0, mid))) < acc * total:
                lo = mid
            else:
                hi = mid
        cuts.append(0.5 * (lo + hi))
    cuts.append(u1)
    return [
        shapely.intersection(cell, strip(a, b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]


def _n_parts(hh: int, min_h: int, max_h: int, target: float) -> int:
    lo = math.ceil(hh / max_h)
    hi = hh // min_h if min_h > 0 else lo
    if lo <= hi:
        return int(min(max(round(hh / target), lo), hi))
    return lo
