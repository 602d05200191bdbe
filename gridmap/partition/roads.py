"""Road hierarchy and line kinds: what a grid border may follow, and what it may not cross.

The partitioner and the quality report read the same table. A road's ``class``
(OpenStreetMap ``highway`` values, or the Chinese road grades of GB 50220 /
CJJ 37: 快速路, 主干路, 次干路, 支路) falls into one of four ranks:

======== =============================================================== ==================
rank     classes                                                         as a grid border
======== =============================================================== ==================
arterial motorway, trunk, primary, secondary, tertiary; 快速路, 主干路,     must be a border
         次干路; expressway, arterial, major, major_road                   (never inside)
street   residential, unclassified, living_street, service, track,       preferred border
         road, ``*_link``; 支路, 街, 巷; minor_road; unknown or missing
path     footway, cycleway, path, steps, pedestrian, bridleway,          acceptable border
         corridor, platform, pier; 步行道, 人行道, 绿道
other    subway, rail, light_rail, tram, funicular, monorail, ferry,     not a border
         construction, proposed, abandoned
======== =============================================================== ==================

Barrier lines (``kind``) are walls (wall, fence, city_wall, hedge, retaining_wall,
guard_rail, 围墙) or water (water, river, canal, stream, drain, ditch, riverbank,
水系, 河); any other kind (e.g. ``boundary``: a district border) is neither.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import shapely

__all__ = [
    "ARTERIAL_CLASSES",
    "PATH_CLASSES",
    "OTHER_CLASSES",
    "WALL_KINDS",
    "WATER_KINDS",
    "road_ranks",
    "barrier_groups",
    "length_near",
]

#: Road classes that must be grid borders (OpenStreetMap ``highway`` and Chinese grades).
ARTERIAL_CLASSES: frozenset[str] = frozenset(
    {
        "motorway",
        "trunk",
        "primary",
        "secondary",
        "tertiary",
        "expressway",
        "arterial",
        "major",
        "major_road",
        "快速路",
        "主干路",
        "次干路",
        "主干道",
        "次干道",
    }
)

#: Roads without motor traffic: a border may follow them, a vehicle street is better.
PATH_CLASSES: frozenset[str] = frozenset(
    {
        "footway",
        "cycleway",
        "path",
        "steps",
        "pedestrian",
        "bridleway",
        "corridor",
        "platform",
        "pier",
        "elevator",
        "path_way",
        "步行道",
        "人行道",
        "绿道",
    }
)

#: Lines in a roads layer that are not streets at ground level (rail, ferries, plans).
OTHER_CLASSES: frozenset[str] = frozenset(
    {
        "subway",
        "rail",
        "light_rail",
        "tram",
        "funicular",
        "monorail",
        "narrow_gauge",
        "ferry",
        "construction",
        "proposed",
        "abandoned",
        "razed",
        "raceway",
    }
)

#: Barrier kinds counted as walls and fences.
WALL_KINDS: frozenset[str] = frozenset(
    {"wall", "fence", "city_wall", "hedge", "retaining_wall", "guard_rail", "围墙", "栅栏"}
)

#: Barrier kinds counted as water.
WATER_KINDS: frozenset[str] = frozenset(
    {
        "water",
        "river",
        "canal",
        "stream",
        "drain",
        "ditch",
        "riverbank",
        "coastline",
        "水系",
        "河",
        "河流",
    }
)

#: Integer ranks (lower is a better border).
ARTERIAL, STREET, PATH, OTHER = 0, 1, 2, 3


def road_ranks(classes: Any) -> np.ndarray:
    """Rank of every road: 0 arterial, 1 street, 2 path (no motor traffic), 3 other.

    Missing or unknown classes count as streets (a road layer without classes
    is read as streets).

    Examples
    --------
    >>> road_ranks(["primary", "footway", None, "subway", "主干路", "trunk_link"]).tolist()
    [0, 2, 1, 3, 0, 1]
    """
    values = pd.Series(list(classes), dtype=object)
    norm = values.map(lambda v: "" if v is None or pd.isna(v) else str(v).strip().lower())
    out = np.full(len(norm), STREET, dtype=np.int64)
    out[norm.isin(ARTERIAL_CLASSES).to_numpy()] = ARTERIAL
    out[norm.isin(PATH_CLASSES).to_numpy()] = PATH
    out[norm.isin(OTHER_CLASSES).to_numpy()] = OTHER
    return out


def barrier_groups(kinds: Any) -> np.ndarray:
    """Group of every barrier line: ``"wall"``, ``"water"`` or ``"other"``.

    Examples
    --------
    >>> barrier_groups(["wall", "river", "boundary", None]).tolist()
    ['wall', 'water', 'other', 'other']
    """
    values = pd.Series(list(kinds), dtype=object)
    norm = values.map(lambda v: "" if v is None or pd.isna(v) else str(v).strip().lower())
    out = np.full(len(norm), "other", dtype=object)
    out[norm.isin(WALL_KINDS).to_numpy()] = "wall"
    out[norm.isin(WATER_KINDS).to_numpy()] = "water"
    return out


def length_near(
    parts: np.ndarray, lines: np.ndarray, tolerance: float, *, outside: bool = False
) -> Any:
    """Length of each linear geometry lying within ``tolerance`` of any of ``lines``.

    Measured against ONE merged buffer per geometry (the union of the buffers of
    the lines near it), so where buffers of several lines overlap (a crossing, a
    dual carriageway, a road along a wall) nothing is counted twice.

    Examples
    --------
    >>> from shapely import LineString
    >>> edge = np.array([LineString([(0, 0), (100, 0)])])
    >>> roads = np.array([LineString([(0, 2), (60, 2)]), LineString([(20, -1), (80, -1)])])
    >>> round(float(length_near(edge, roads, 5.0)[0]), 1)  # 0..84.9 once, not 64.6 + 69.8
    84.9
    """
    out = np.zeros(len(parts))
    rest = np.asarray(parts, dtype=object).copy()
    if len(parts) == 0 or len(lines) == 0:
        return (out, rest) if outside else out
    buffers = shapely.buffer(lines, tolerance, quad_segs=8)
    tree = shapely.STRtree(buffers)
    e_idx, r_idx = tree.query(parts, predicate="intersects")
    if len(e_idx) == 0:
        return (out, rest) if outside else out
    order = np.argsort(e_idx, kind="stable")
    e_idx, r_idx = e_idx[order], r_idx[order]
    starts = np.flatnonzero(np.r_[True, e_idx[1:] != e_idx[:-1]])
    ends = np.r_[starts[1:], len(e_idx)]
    zones = np.empty(len(starts), dtype=object)
    for k, (s, t) in enumerate(zip(starts, ends, strict=True)):
        zones[k] = buffers[r_idx[s]] if t - s == 1 else shapely.union_all(buffers[r_idx[s:t]])
    hit = e_idx[starts]
    out[hit] = shapely.length(shapely.intersection(parts[hit], zones))
    out = np.minimum(out, shapely.length(parts))
    if outside:
        rest[hit] = shapely.difference(parts[hit], zones)
        return out, rest
    return out
