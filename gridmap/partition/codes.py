"""Grid codes, names and four-side boundary descriptions (四至).

Codes
-----
A grid code is the 12-digit statistical code of its community followed by a
3-digit sequence, as in Beijing's 15-digit unit-grid code: ``320508019044``
+ ``003`` → ``320508019044003``. Grids are numbered **north → south in rows,
west → east within a row** (:func:`assign_codes` defines the rows precisely).
A community without a code falls back to ``<community_id>-NNN``.

四至
----
:func:`boundary_descriptions` writes, for each grid, what lies on its east,
south, west and north sides: the named road running along that side, else the
neighbouring grid, else the community boundary — "东至中山路，南至幸福社区第002网格，
西至建设路，北至社区边界".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.errors import LayerError, PartitionError

__all__ = [
    "SIDES",
    "COMMUNITY_BOUNDARY",
    "grid_sequence",
    "assign_codes",
    "boundary_descriptions",
]

#: The four sides in the order 四至 lists them: (key, Chinese, English, outward angle in degrees).
SIDES: tuple[tuple[str, str, str, float], ...] = (
    ("east", "东", "east", 0.0),
    ("south", "南", "south", 270.0),
    ("west", "西", "west", 180.0),
    ("north", "北", "north", 90.0),
)

#: Label of a side that faces neither a named road nor another grid.
COMMUNITY_BOUNDARY: dict[str, str] = {"zh": "社区边界", "en": "community boundary"}

#: Two grids are neighbours along a side when their boundaries are this close (metres).
_EDGE_TOLERANCE = 0.01

_MAX_SEQUENCE = 999


def _require_columns(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LayerError(
            f"{name} lacks column(s) {missing}; it has {list(frame.columns)}. "
            f"Add them (e.g. frame['{missing[0]}'] = ...) before calling this function."
        )


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def grid_sequence(grids: gpd.GeoDataFrame, *, by: str | None = "community_id") -> pd.Series:
    """Return the reading order of grids: rows north → south, west → east within a row.

    Each grid is represented by its representative point
    (:func:`shapely.point_on_surface`). Within each group (community), grids
    are sorted by that point's ``y`` descending; a grid joins the current row
    while its point lies less than **half the median grid height** (median of
    the grids' bounding-box heights in the group) below the *first* — the
    northernmost — point of the row; otherwise it starts a new row. Within a
    row grids are sorted by ``x`` ascending, then ``y`` descending, then
    their position in ``grids``. The result is deterministic.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        Grid polygons (any CRS whose ``y`` grows northwards, e.g. a projected
        CRS or WGS84).
    by : str or None, default "community_id"
        Column to number within; ``None`` numbers all grids together.

    Returns
    -------
    pandas.Series
        1-based sequence number (int) per grid, aligned with ``grids``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> g = gpd.GeoDataFrame(geometry=[box(1, 0, 2, 1), box(0, 0, 1, 1), box(0, 1, 2, 2)])
    >>> grid_sequence(g, by=None).tolist()
    [3, 2, 1]
    """
    if by is not None:
        _require_columns(grids, "grids", (by,))
    n = len(grids)
    result = np.zeros(n, dtype=np.int64)
    if n == 0:
        return pd.Series(result, index=grids.index, name="sequence")
    geoms = np.asarray(grids.geometry.array, dtype=object)
    if shapely.is_missing(geoms).any() or shapely.is_empty(geoms).any():
        bad = grids.index[shapely.is_missing(geoms) | shapely.is_empty(geoms)].tolist()
        raise LayerError(
            f"grids {bad[:5]} have no geometry; give every grid a polygon before numbering."
        )
    points = shapely.point_on_surface(geoms)
    xs = shapely.get_x(points)
    ys = shapely.get_y(points)
    bounds = shapely.bounds(geoms)
    heights = bounds[:, 3] - bounds[:, 1]
    if by is None:
        groups: list[np.ndarray] = [np.arange(n)]
    else:
        codes, _ = pd.factorize(grids[by].astype(object), sort=False, use_na_sentinel=False)
        order = np.argsort(codes, kind="stable")
        bounds_idx = np.flatnonzero(np.diff(codes[order])) + 1
        groups = np.split(order, bounds_idx)
    for members in groups:
        half = float(np.median(heights[members])) / 2.0
        by_y = members[np.lexsort((members, xs[members], -ys[members]))]
        row = np.empty(len(by_y), dtype=np.int64)
        current, anchor = 0, ys[by_y[0]]
        for k, i in enumerate(by_y):
            if anchor - ys[i] >= half and k > 0:
                current += 1
                anchor = ys[i]
            row[k] = current
        final = by_y[np.lexsort((by_y, -ys[by_y], xs[by_y], row))]
        result[final] = np.arange(1, len(final) + 1)
    return pd.Series(result, index=grids.index, name="sequence")


def _community_lookup(communities: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Map community_id → (code prefix, display name)."""
    _require_columns(communities, "communities", ("community_id",))
    lookup: dict[str, tuple[str, str]] = {}
    codes = communities["code"] if "code" in communities.columns else [None] * len(communities)
    names = communities["name"] if "name" in communities.columns else [None] * len(communities)
    for cid, code, name in zip(communities["community_id"], codes, names, strict=True):
        cid = str(cid)
        prefix = f"{cid}-" if _is_missing(code) else str(code).strip()
        label = cid if _is_missing(name) else str(name).strip()
        lookup[cid] = (prefix, label)
    return lookup


def assign_codes(
    grids: gpd.GeoDataFrame,
    communities: pd.DataFrame,
    *,
    keep: Mapping[Any, str] | pd.Series | None = None,
) -> gpd.GeoDataFrame:
    """Give every grid a code and a readable name.

    ``grid_code`` is the community's ``code`` (12-digit statistical code) plus
    a 3-digit sequence (``"001"`` …) in the order of :func:`grid_sequence`
    (rows north → south, west → east within a row). A community without a code
    uses ``community_id + "-" + NNN`` instead (e.g. ``"C7-002"``). ``name`` is
    the community name plus ``"第NNN网格"`` (e.g. ``"幸福社区第003网格"``), or the
    community id when the community has no name.

    Kept codes (re-runs with locked grids): ``keep`` maps index labels of
    ``grids`` to the code that grid must keep. A kept code that ends in the
    community's prefix + 3 digits reserves that number; the other grids of the
    community take the lowest free numbers in reading order. A kept grid's
    name is rebuilt from its number, or, when its code does not follow the
    community's pattern, taken from an existing ``name`` column (else the code).

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        Grid polygons with a ``community_id`` column.
    communities : pandas.DataFrame
        ``community_id`` plus optional ``code`` and ``name`` columns.
    keep : mapping or pandas.Series, optional
        Index label of ``grids`` → code to keep, e.g.
        ``grids.loc[grids["locked"], "grid_code"]``.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``grids`` (same index and row order) with ``grid_code`` and
        ``name`` set.

    Raises
    ------
    LayerError
        Missing columns, a grid of an unknown community, or an empty geometry.
    PartitionError
        Duplicate kept codes, or more than 999 grids in one community.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely import box
    >>> comms = pd.DataFrame({"community_id": ["c1"], "code": ["320508019044"],
    ...                       "name": ["幸福社区"]})
    >>> g = gpd.GeoDataFrame({"community_id": ["c1", "c1"]},
    ...                      geometry=[box(1, 0, 2, 1), box(0, 0, 1, 1)])
    >>> assign_codes(g, comms)[["grid_code", "name"]].values.tolist()
    [['320508019044002', '幸福社区第002网格'], ['320508019044001', '幸福社区第001网格']]
    """
    _require_columns(grids, "grids", ("community_id",))
    lookup = _community_lookup(communities)
    cids = grids["community_id"].astype(object).map(lambda v: None if _is_missing(v) else str(v))
    unknown = sorted({c for c in cids if c is None or c not in lookup}, key=str)
    if unknown:
        raise LayerError(
            f"grids refer to unknown community id(s) {unknown[:5]}; every grid needs a "
            "community_id present in communities.community_id."
        )
    kept: dict[Any, str] = {}
    if keep is not None:
        items = keep.items()
        for label, code in items:
            if label not in grids.index:
                raise LayerError(
                    f"keep refers to grid index {label!r}, which is not in grids; "
                    "pass index labels of grids (e.g. grids.loc[grids.locked, 'grid_code'])."
                )
            if _is_missing(code):
                continue
            kept[label] = str(code)
        dup = pd.Series(list(kept.values())).duplicated(keep=False)
        if dup.any():
            codes_dup = sorted(set(pd.Series(list(kept.values()))[dup]))
            raise PartitionError(
                f"kept codes {codes_dup[:5]} are used by more than one grid; "
                "each kept grid needs its own code."
            )
    seq = grid_sequence(grids.assign(community_id=cids.to_numpy()))
    old_names = grids["name"] if "name" in grids.columns else None
    out_codes: dict[Any, str] = {}
    out_names: dict[Any, str] = {}
    frame = pd.DataFrame({"cid": cids.to_numpy(), "seq": seq.to_numpy()}, index=grids.index)
    for cid, part in frame.groupby("cid", sort=True):
        prefix, label = lookup[str(cid)]
        pattern = re.compile(re.escape(prefix) + r"(\d{3})")
        taken: set[int] = set()
        for idx in part.index:
            if idx in kept:
                m = pattern.fullmatch(kept[idx])
                if m:
                    taken.add(int(m.group(1)))
        if len(part) > _MAX_SEQUENCE:
            raise PartitionError(
                f"community {cid} has {len(part)} grids; a grid code has room for "
                f"{_MAX_SEQUENCE}. Use a larger household band or split the community."
            )
        free = (k for k in range(1, _MAX_SEQUENCE + 1) if k not in taken)
        for idx in part.sort_values("seq", kind="stable").index:
            if idx in kept:
                code = kept[idx]
                m = pattern.fullmatch(code)
                out_codes[idx] = code
                if m:
                    out_names[idx] = f"{label}第{m.group(1)}网格"
                elif old_names is not None and not _is_missing(old_names.loc[idx]):
                    out_names[idx] = str(old_names.loc[idx])
                else:
                    out_names[idx] = code
                continue
            k = next(free)
            out_codes[idx] = f"{prefix}{k:03d}"
            out_names[idx] = f"{label}第{k:03d}网格"
    result = grids.copy()
    result["grid_code"] = pd.Series(out_codes).reindex(grids.index).to_numpy()
    result["name"] = pd.Series(out_names).reindex(grids.index).to_numpy()
    dup = result["grid_code"].duplicated(keep=False)
    if dup.any():
        raise PartitionError(
            f"grid codes {sorted(set(result.loc[dup, 'grid_code']))[:5]} would be used twice "
            "(a kept code collides with a new one); check the kept codes."
        )
    return result


def _wedges(points: np.ndarray, radius: np.ndarray, angle_deg: float) -> np.ndarray:
    """Triangles from each point opening ±45° around ``angle_deg``, reaching ``radius``."""
    x = shapely.get_x(points)
    y = shapely.get_y(points)
    a0 = np.deg2rad(angle_deg - 45.0)
    a1 = np.deg2rad(angle_deg + 45.0)
    coords = np.stack(
        [
            np.stack([x, y], axis=1),
            np.stack([x + radius * np.cos(a0), y + radius * np.sin(a0)], axis=1),
            np.stack([x + radius * np.cos(a1), y + radius * np.sin(a1)], axis=1),
            np.stack([x, y], axis=1),
        ],
        axis=1,
    )
    return shapely.polygons(coords)


def _is_ascii(text: str) -> bool:
    return all(ord(ch) < 128 for ch in text)


def _grid_labels(grids: pd.DataFrame) -> list[str]:
    """Return how to call each grid: its ``name``, else its ``grid_code``, else its index label."""
    n = len(grids)
    names = grids["name"].astype(object).tolist() if "name" in grids.columns else [None] * n
    codes = (
        grids["grid_code"].astype(object).tolist() if "grid_code" in grids.columns else [None] * n
    )
    out: list[str] = []
    for name, code, ix in zip(names, codes, grids.index, strict=True):
        if not _is_missing(name):
            out.append(str(name))
        elif not _is_missing(code):
            out.append(str(code))
        else:
            out.append(str(ix))
    return out


def boundary_descriptions(
    grids: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None = None,
    *,
    search_distance: float = 30.0,
    min_extent_share: float = 0.3,
    lang: Literal["auto", "zh", "en"] = "auto",
) -> pd.Series:
    """Describe each grid's four sides (四至): what lies east, south, west and north.

    **Sides.** From the grid's representative point four 90° wedges open
    towards east, south, west and north (bisected at ±45°); a side is the part
    of the grid's boundary inside its wedge. For a rectangle the sides are its
    four edges.

    **What lies on a side**, in this order of preference:

    1. the named road running along it: of the roads within
       ``search_distance`` of the side, the pieces of each road *name* lying
       within that distance are measured along the side's direction (north–south
       extent for east/west sides, east–west extent for north/south sides); the
       name with the largest extent wins (ties: nearer road, then name) if
       that extent is at least ``min_extent_share`` of the side's own extent.
       A road that merely crosses or ends at the side has ~0 extent along it;
    2. the neighbouring grid sharing the longest stretch of that side (its
       ``name``, else its ``grid_code``, else its index label), any community;
    3. the community boundary (``"社区边界"``).

    **Language.** ``lang="auto"`` writes English (``"east to Main St, south to
    …"``, ASCII ``", "``) when every road name and grid name that could appear is
    ASCII, and Chinese (``"东至中山路，南至…"``, full-width ``"，"``) otherwise.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        Grid polygons in a projected CRS (metres); ``name``/``grid_code``
        columns are used for neighbours when present.
    roads : geopandas.GeoDataFrame, optional
        Road lines with a ``name`` column (unnamed roads are ignored); must be
        in the CRS of ``grids``.
    search_distance : float, default 30.0
        How far from a side (metres) a road may run.
    min_extent_share : float, default 0.3
        Share of the side's extent a road must run along to name the side.
    lang : {"auto", "zh", "en"}, default "auto"
        Language of the text.

    Returns
    -------
    pandas.Series
        One string per grid, aligned with ``grids``, named ``boundary_desc``.

    Raises
    ------
    LayerError
        A road layer without a ``name`` column.
    CRSError
        Roads in another CRS than the grids.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box, LineString
    >>> g = gpd.GeoDataFrame({"name": ["A第001网格", "A第002网格"]},
    ...                      geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)],
    ...                      crs=3857)
    >>> r = gpd.GeoDataFrame({"name": ["中山路"]},
    ...                      geometry=[LineString([(-5, -50), (-5, 150)])], crs=3857)
    >>> boundary_descriptions(g, r).iloc[0]
    '东至A第002网格，南至社区边界，西至中山路，北至社区边界'
    """
    from gridmap.errors import CRSError

    n = len(grids)
    if n == 0:
        return pd.Series([], index=grids.index, dtype=object, name="boundary_desc")
    if roads is not None:
        _require_columns(roads, "roads", ("name",))
        if grids.crs is not None and roads.crs is not None and roads.crs != grids.crs:
            raise CRSError(
                f"roads are in {roads.crs.name!r} but grids in {grids.crs.name!r}; "
                "reproject with roads.to_crs(grids.crs)."
            )
    geoms = np.asarray(grids.geometry.array, dtype=object)
    if shapely.is_missing(geoms).any() or shapely.is_empty(geoms).any():
        raise LayerError("some grids have no geometry; give every grid a polygon.")
    labels = _grid_labels(grids)

    road_geoms = np.empty(0, dtype=object)
    road_names: list[str] = []
    if roads is not None and len(roads):
        named = (
            roads["name"].astype(object).map(lambda v: None if _is_missing(v) else str(v).strip())
        )
        mask = named.notna().to_numpy() & ~shapely.is_empty(np.asarray(roads.geometry.array))
        mask &= ~shapely.is_missing(np.asarray(roads.geometry.array))
        road_geoms = np.asarray(roads.geometry.array, dtype=object)[mask]
        road_names = named[mask].tolist()
    if lang == "auto":
        lang = "en" if all(_is_ascii(t) for t in [*road_names, *labels]) else "zh"

    boundaries = shapely.boundary(geoms)
    points = shapely.point_on_surface(geoms)
    b = shapely.bounds(geoms)
    radius = 4.0 * np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) + 1.0

    # side lines: 4n, ordered side-major (side k of grid i at k*n + i)
    sides = np.concatenate(
        [shapely.intersection(boundaries, _wedges(points, radius, ang)) for *_, ang in SIDES]
    )
    owner = np.tile(np.arange(n), 4)
    side_no = np.repeat(np.arange(4), n)
    vertical = np.isin(side_no, [0, 2])  # east/west sides run north–south
    sb = shapely.bounds(sides)
    side_extent = np.where(vertical, sb[:, 3] - sb[:, 1], sb[:, 2] - sb[:, 0])
    side_extent = np.nan_to_num(side_extent, nan=0.0)
    valid_side = ~shapely.is_empty(sides) & (shapely.length(sides) > 0)

    chosen: list[str | None] = [None] * (4 * n)

    # 1. roads
    if len(road_geoms):
        tree = shapely.STRtree(road_geoms)
        s_idx, r_idx = tree.query(sides, predicate="dwithin", distance=search_distance)
        keep_pairs = valid_side[s_idx]
        s_idx, r_idx = s_idx[keep_pairs], r_idx[keep_pairs]
        if len(s_idx):
            uniq_s, inv = np.unique(s_idx, return_inverse=True)
            buffered = shapely.buffer(sides[uniq_s], search_distance, quad_segs=4)
            pieces = shapely.intersection(road_geoms[r_idx], buffered[inv])
            pb = shapely.bounds(pieces)
            dist = shapely.distance(road_geoms[r_idx], sides[s_idx])
            df = pd.DataFrame(
                {
                    "side": s_idx,
                    "road": np.asarray(road_names, dtype=object)[r_idx],
                    "minx": pb[:, 0],
                    "miny": pb[:, 1],
                    "maxx": pb[:, 2],
                    "maxy": pb[:, 3],
                    "dist": dist,
                }
            ).dropna(subset=["minx"])
            agg = df.groupby(["side", "road"], sort=True).agg(
                minx=("minx", "min"),
                miny=("miny", "min"),
                maxx=("maxx", "max"),
                maxy=("maxy", "max"),
                dist=("dist", "min"),
            )
            agg = agg.reset_index()
            vert = vertical[agg["side"].to_numpy()]
            agg["extent"] = np.where(vert, agg["maxy"] - agg["miny"], agg["maxx"] - agg["minx"])
            agg["need"] = min_extent_share * side_extent[agg["side"].to_numpy()]
            agg = agg[(agg["extent"] >= agg["need"]) & (agg["extent"] > 0)]
            agg = agg.sort_values(
                ["side", "extent", "dist", "road"],
                ascending=[True, False, True, True],
                kind="stable",
            )
            best = agg.drop_duplicates("side", keep="first")
            for s, road in zip(best["side"].to_numpy(), best["road"].tolist(), strict=True):
                chosen[int(s)] = road

    # 2. neighbouring grids
    todo = np.flatnonzero(valid_side & np.array([c is None for c in chosen]))
    if len(todo) and n > 1:
        gtree = shapely.STRtree(geoms)
        s_idx, g_idx = gtree.query(sides[todo], predicate="dwithin", distance=_EDGE_TOLERANCE)
        s_idx = todo[s_idx]
        other = g_idx != owner[s_idx]
        s_idx, g_idx = s_idx[other], g_idx[other]
        if len(s_idx):
            uniq_g, inv = np.unique(g_idx, return_inverse=True)
            grown = shapely.buffer(geoms[uniq_g], _EDGE_TOLERANCE, quad_segs=2)
            shared = shapely.length(shapely.intersection(sides[s_idx], grown[inv]))
            df = pd.DataFrame({"side": s_idx, "grid": g_idx, "shared": shared})
            df = df[df["shared"] > 10 * _EDGE_TOLERANCE]
            df = df.sort_values(
                ["side", "shared", "grid"], ascending=[True, False, True], kind="stable"
            )
            best = df.drop_duplicates("side", keep="first")
            for s, g in zip(best["side"].to_numpy(), best["grid"].to_numpy(), strict=True):
                chosen[int(s)] = labels[int(g)]

    fallback = COMMUNITY_BOUNDARY[lang]
    out: list[str] = []
    for i in range(n):
        parts = []
        for k, (_, zh, en, _) in enumerate(SIDES):
            target = chosen[k * n + i] or fallback
            parts.append(f"{en} to {target}" if lang == "en" else f"{zh}至{target}")
        out.append(", ".join(parts) if lang == "en" else "，".join(parts))
    return pd.Series(out, index=grids.index, dtype=object, name="boundary_desc")
