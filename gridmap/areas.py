"""Stand-in community areas for data without community (社区) boundaries.

OpenStreetMap and most open data have buildings and streets but no 社区
boundaries, which every plan nests in. :func:`derive_communities` derives
stand-in areas the way a planner would sketch them: the study area is cut into
blocks by the main roads and by barrier lines (a river, a wall, a district
border), and neighbouring blocks are merged — the block with the fewest
households first, into the neighbour it shares the longest edge with — until
each area holds at least a household floor. Households are counted exactly as
:func:`gridmap.validation.validate_layers` counts or estimates them. No merge
crosses water or an administrative boundary, so a river never runs through a
derived area.

The result is a canonical ``communities`` layer flagged as derived (see
:data:`DERIVED_ATTR`): validation reports it as a warning, so nobody mistakes
the areas for official boundaries.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.errors import CRSError, InputError, LayerError, ValidationError
from gridmap.layers import DERIVED_ATTR

__all__ = [
    "MAIN_ROAD_CLASSES",
    "HARD_BARRIER_KINDS",
    "DERIVED_ATTR",
    "derive_communities",
]

#: Road classes that bound derived areas by default (OpenStreetMap ``highway`` values).
MAIN_ROAD_CLASSES: tuple[str, ...] = ("trunk", "primary", "secondary", "tertiary")

#: Barrier kinds no derived area straddles (merges never cross them): water, and
#: administrative boundaries (a 社区 never crosses a district border).
HARD_BARRIER_KINDS: tuple[str, ...] = (
    "water",
    "river",
    "riverbank",
    "canal",
    "stream",
    "drain",
    "ditch",
    "moat",
    "boundary",
)

_EDGE_TOLERANCE = 0.5  # m: a shared edge this close to a hard line runs along it
_MIN_SHARED = 0.01  # m: blocks meeting at a point (or less) are not neighbours


def derive_communities(
    layers: Mapping[str, gpd.GeoDataFrame | None],
    *,
    outline: Any = None,
    min_households: int = 1500,
    road_classes: Collection[str] | None = MAIN_ROAD_CLASSES,
    barrier_kinds: Collection[str] | None = None,
    hard_kinds: Collection[str] = HARD_BARRIER_KINDS,
    margin: float = 50.0,
    reach: float = 150.0,
    unit_area: float = 90.0,
    default_levels: float = 6.0,
    prefix: str = "D",
) -> gpd.GeoDataFrame:
    """Derive stand-in community areas from buildings, main roads and barriers.

    1. The study area is ``outline``, or by default the convex hull of the
       buildings grown by ``margin`` metres.
    2. It is cut into blocks by the roads whose ``class`` is in ``road_classes``
       and by the ``barriers`` lines whose ``kind`` is in ``barrier_kinds`` or
       ``hard_kinds``. A line that stops less than ``reach`` short of the area's
       edge (extracts are cut at a box or at tiles) is carried on to the edge.
    3. Households are counted per block (a building belongs to the block holding
       its representative point), as validation counts them: the household
       layer, else the ``households`` column, else the estimate levels ×
       footprint / ``unit_area`` for residential buildings (duplicates not
       counted twice).
    4. While some area holds fewer than ``min_households``, the one with the
       fewest households (then the smallest) is merged into the neighbour it
       shares the longest edge with. Edges along water or a district border
       (barrier kinds in ``hard_kinds``) do not count: no area straddles them.
       An area with no neighbour left keeps fewer households than the floor;
       one without any building (a river bank beyond the water) is left out.
    5. Areas are numbered in rows north → south, west → east: ``D001``, ``D002`` …

    Parameters
    ----------
    layers : mapping of str to GeoDataFrame
        Raw canonical layers (as :func:`gridmap.io.read_layers` returns them):
        ``buildings`` is required; ``households``, ``roads`` and ``barriers`` are
        used when present; a ``communities`` layer, if any, is ignored.
    outline : GeoDataFrame, GeoSeries or shapely geometry, optional
        The study area (e.g. an extract's coverage or query box). Frames are
        unioned and must carry a CRS; a bare geometry is taken to be in the
        buildings' CRS. Buildings outside it belong to no derived area.
    min_households : int, default 1500
        Household floor of an area.
    road_classes : collection of str or None, default :data:`MAIN_ROAD_CLASSES`
        Values of ``roads["class"]`` that cut the area; ``None`` cuts by every
        road.
    barrier_kinds : collection of str or None, optional
        Values of ``barriers["kind"]`` that cut the area; ``None`` (the default)
        cuts by every barrier line. Walls and fences only cut: areas may merge
        across them.
    hard_kinds : collection of str, default :data:`HARD_BARRIER_KINDS`
        Barrier kinds that cut the area and that areas never merge across
        (water; ``boundary``, the kind the ``osm`` preset gives district borders).
    margin : float, default 50.0
        Metres added around the buildings' hull when ``outline`` is not given.
    reach : float, default 150.0
        Lines ending inside the area at most this many metres from its edge are
        carried on to the edge (0 turns this off).
    unit_area : float, default 90.0
        m² of floor per household when households are estimated.
    default_levels : float, default 6.0
        Levels assumed for residential buildings without ``levels``.
    prefix : str, default "D"
        Start of the community ids.

    Returns
    -------
    geopandas.GeoDataFrame
        The canonical communities layer — ``community_id`` (``D001`` …),
        ``name`` (``派生片区 D001 (derived area)``), ``code`` (null: no
        statistical code) and one Polygon each — in the buildings' CRS, so it can
        join the other raw layers. ``attrs[DERIVED_ATTR]`` flags it as derived and
        records the floor, the number of blocks and each area's households.

    Raises
    ------
    LayerError
        No buildings, no building inside ``outline``, or roads without a
        ``class`` column while ``road_classes`` is given.
    CRSError
        A layer or ``outline`` without CRS.
    ValidationError
        The buildings (or households) fail validation, so households cannot be
        counted; ``exc.report`` says why.

    Examples
    --------
    >>> from gridmap.datasets import get_path
    >>> from gridmap.io import read_layers
    >>> from gridmap.validation import validate_layers
    >>> raw = read_layers(get_path("nanjing"))      # OpenStreetMap, central Nanjing
    >>> del raw["communities"]
    >>> comms = derive_communities(raw, min_households=3000)
    >>> comms["community_id"].tolist()[:3]
    ['D001', 'D002', 'D003']
    >>> comms["name"].iloc[0]
    '派生片区 D001 (derived area)'
    >>> layers, report = validate_layers({**raw, "communities": comms})
    >>> per_area = layers.buildings.groupby("community_id")["households"].sum()
    >>> bool((per_area >= 3000).all())
    True
    >>> "derived_communities" in {f.code for f in report.findings}
    True
    """
    if min_households < 0:
        raise InputError(f"min_households must be 0 or more, got {min_households}")
    if margin < 0 or reach < 0:
        raise InputError(f"margin and reach must be 0 or more metres, got {margin}, {reach}")
    buildings = layers.get("buildings")
    if buildings is None or len(buildings) == 0:
        raise LayerError(
            "derive_communities needs a buildings layer (footprints with a building_id); "
            "the layers given have " + ("an empty one" if buildings is not None else "none")
        )
    if buildings.crs is None:
        raise CRSError(
            "buildings has no CRS; set one with gdf.set_crs(4326) (or the CRS the data is "
            "really in) before deriving communities"
        )
    crs = buildings.crs if buildings.crs.is_projected else _local_crs(buildings)
    area = _study_area(outline, buildings, crs, margin)
    blds = _counted_buildings(layers, area, crs, unit_area, default_levels)
    roads = _lines(layers.get("roads"), "roads", "class", road_classes, crs)
    barriers = _lines(layers.get("barriers"), "barriers", "kind", barrier_kinds, crs)
    hard = _lines(layers.get("barriers"), "barriers", "kind", tuple(hard_kinds), crs)

    blocks = _blocks(area, [*roads, *barriers, *hard], reach=reach)
    rep = shapely.point_on_surface(blds.geometry.values)
    bi, ki = shapely.STRtree(blocks).query(rep, predicate="within")
    # as validation does: the block strictly containing the point (blocks do not overlap)
    first = np.unique(bi, return_index=True)[1]
    households = np.bincount(
        ki[first],
        weights=blds["households"].to_numpy(dtype=float)[bi[first]],
        minlength=len(blocks),
    ).astype(np.int64)
    n_buildings = np.bincount(ki[first], minlength=len(blocks))
    shared = _shared_edges(blocks, hard)
    merged = _merge(households, shapely.area(blocks), shared, min_households)
    groups = [g for g in merged if n_buildings[g].sum() > 0]
    if not groups:
        raise LayerError(
            "no building lies inside the study area; give an outline that covers the buildings"
        )

    geoms = [shapely.union_all(blocks[members]) for members in groups]
    totals = [int(households[members].sum()) for members in groups]
    order = _reading_order(geoms)
    ids = [f"{prefix}{k + 1:03d}" for k in range(len(order))]
    out = gpd.GeoDataFrame(
        {
            "community_id": ids,
            "name": [f"派生片区 {i} (derived area)" for i in ids],
            "code": pd.Series([None] * len(ids), dtype=object),
        },
        geometry=[shapely.make_valid(geoms[k]) for k in order],
        crs=crs,
    )
    if not pyproj.CRS(buildings.crs).equals(crs):
        out = out.to_crs(buildings.crs)
    out.attrs[DERIVED_ATTR] = {
        "method": "main roads and barriers, blocks merged to a household floor",
        "min_households": int(min_households),
        "blocks": len(blocks),
        "road_classes": None if road_classes is None else sorted(road_classes),
        "hard_lines": len(hard),
        "left_out_empty": len(merged) - len(groups),
        "households": dict(zip(ids, [totals[k] for k in order], strict=True)),
    }
    return out


# --------------------------------------------------------------------------- steps


def _local_crs(frame: gpd.GeoDataFrame) -> pyproj.CRS:
    from gridmap.crs import local_crs

    return local_crs(frame)


def _study_area(outline: Any, buildings: gpd.GeoDataFrame, crs: Any, margin: float) -> Any:
    """Return the study area as one (Multi)Polygon in ``crs``."""
    if outline is None:
        footprints = buildings.geometry.to_crs(crs).values
        footprints = footprints[~(shapely.is_missing(footprints) | shapely.is_empty(footprints))]
        if not len(footprints):
            raise LayerError("derive_communities: no building has a geometry")
        hull = shapely.convex_hull(shapely.union_all(shapely.convex_hull(footprints)))
        return shapely.buffer(hull, margin) if margin > 0 else hull
    if isinstance(outline, gpd.GeoDataFrame | gpd.GeoSeries):
        if outline.crs is None:
            raise CRSError(
                "outline has no CRS; set one with outline.set_crs(4326) (or its real CRS)"
            )
        geoms = outline.geometry.to_crs(crs).values
    elif isinstance(outline, shapely.Geometry):
        geoms = gpd.GeoSeries([outline], crs=buildings.crs).to_crs(crs).values
    else:
        raise InputError(
            f"outline must be a GeoDataFrame, a GeoSeries or a shapely polygon, got "
            f"{type(outline).__name__}"
        )
    geoms = shapely.make_valid(geoms[~shapely.is_missing(geoms)])
    area = shapely.union_all(_polygonal(geoms))
    if area.is_empty or area.area <= 0:
        raise LayerError("outline has no area; give the study area as polygons")
    return area


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    parts = shapely.get_parts(geoms)
    return parts[np.isin(shapely.get_type_id(parts), [3, 6])]


def _counted_buildings(
    layers: Mapping[str, gpd.GeoDataFrame | None],
    area: Any,
    crs: Any,
    unit_area: float,
    default_levels: float,
) -> gpd.GeoDataFrame:
    """Return the buildings inside ``area``, households counted as validation counts them.

    Validation itself does the counting, with the study area as the one community,
    so the figures are exactly those of the final validation.
    """
    from gridmap.validation import check_layers

    stand_in = gpd.GeoDataFrame({"community_id": ["area"]}, geometry=[area], crs=crs)
    raw = {"communities": stand_in, "buildings": layers["buildings"]}
    if layers.get("households") is not None:
        raw["households"] = layers["households"]
    checked, report = check_layers(
        raw,
        target_crs=crs,
        reproject=True,
        unit_area=unit_area,
        default_levels=default_levels,
    )
    if checked is None:
        errors = [f for f in report.errors if f.layer != "communities"] or report.errors
        raise ValidationError(
            f"cannot count households to derive communities: {errors[0].layer}: "
            f"{errors[0].message}",
            report=report,
        )
    blds = checked.buildings
    if not len(blds):
        raise LayerError(
            "no building lies inside the outline given to derive_communities; check that the "
            "outline covers the buildings (and is in the CRS it claims)"
        )
    return blds


def _lines(
    frame: gpd.GeoDataFrame | None,
    name: str,
    column: str,
    values: Collection[str] | None,
    crs: Any,
) -> list[Any]:
    """Return the lines of a layer whose ``column`` is in ``values`` (None: all), in ``crs``."""
    if frame is None or len(frame) == 0:
        return []
    if frame.crs is None:
        raise CRSError(f"{name} has no CRS; set one with gdf.set_crs(4326) (or its real CRS)")
    if values is not None:
        if column not in frame.columns:
            raise LayerError(
                f"{name} has no {column!r} column to pick the lines that bound derived "
                f"communities; map one (CLI: --column {name}.{column}=YOUR_COLUMN, e.g. highway) "
                f"or pass {'road_classes' if name == 'roads' else 'barrier_kinds'}=None to use "
                f"every line"
            )
        keep = frame[column].astype(str).isin({str(v) for v in values}).to_numpy()
        frame = frame[keep]
    geoms = frame.geometry.to_crs(crs).values
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    polys = np.isin(shapely.get_type_id(geoms), [3, 6])
    geoms = np.where(polys, shapely.boundary(geoms), geoms)  # polygons by their outlines
    return [g for g in shapely.get_parts(geoms) if not g.is_empty]


def _blocks(area: Any, lines: list[Any], *, reach: float) -> np.ndarray:
    """Return the faces of the area cut by the lines, in a canonical order.

    Lines are clipped to the area grown by 1 m, so that those crossing its edge are
    noded with it robustly; a line ending inside the area within ``reach`` of its edge
    is carried on to the edge.
    """
    edge = shapely.boundary(area)
    cut = shapely.intersection(np.array(lines, dtype=object), shapely.buffer(area, 1.0))
    cut = cut[~shapely.is_empty(cut)] if len(cut) else cut
    linework = shapely.union_all([edge, *cut])
    segments = shapely.get_parts(linework)
    ends = np.concatenate([shapely.get_point(segments, 0), shapely.get_point(segments, -1)])
    xy = shapely.get_coordinates(ends)
    _, first, count = np.unique(xy, axis=0, return_index=True, return_counts=True)
    loose = ends[first[count == 1]]  # ends no other segment meets
    loose = loose[shapely.contains(area, loose)]
    loose = loose[shapely.distance(loose, edge) <= reach]
    if len(loose):
        bridges = shapely.shortest_line(loose, edge)
        linework = shapely.union_all([linework, *bridges])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(linework)))
    inside = shapely.within(shapely.point_on_surface(faces), area)
    faces = faces[inside & (shapely.area(faces) > 0)]
    rep = shapely.point_on_surface(faces)
    order = np.lexsort((shapely.get_x(rep).round(3), -shapely.get_y(rep).round(3)))
    return faces[order]


def _shared_edges(blocks: np.ndarray, hard: list[Any]) -> dict[tuple[int, int], float]:
    """Return the edge length each pair of neighbouring blocks shares, hard edges left out."""
    left, right = shapely.STRtree(blocks).query(blocks, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    edges = shapely.intersection(shapely.boundary(blocks[left]), shapely.boundary(blocks[right]))
    if hard:
        zone = shapely.buffer(shapely.union_all(hard), _EDGE_TOLERANCE)
        edges = shapely.difference(edges, zone)
    length = shapely.length(edges)
    return {
        (int(a), int(b)): float(n)
        for a, b, n in zip(left, right, length, strict=True)
        if n > _MIN_SHARED
    }


def _merge(
    households: np.ndarray,
    areas: np.ndarray,
    shared: dict[tuple[int, int], float],
    floor: int,
) -> list[np.ndarray]:
    """Merge blocks, fewest households first, into the longest-edge neighbour."""
    n = len(households)
    hh = households.astype(np.int64).tolist()
    ar = areas.tolist()
    members: list[list[int]] = [[i] for i in range(n)]
    adj: list[dict[int, float]] = [{} for _ in range(n)]
    for (a, b), length in shared.items():
        adj[a][b] = adj[a].get(b, 0.0) + length
        adj[b][a] = adj[b].get(a, 0.0) + length
    alive = [True] * n
    heap = [(hh[i], ar[i], i) for i in range(n) if hh[i] < floor]
    heapq.heapify(heap)
    while heap:
        h, a, g = heapq.heappop(heap)
        if not alive[g] or (h, a) != (hh[g], ar[g]) or hh[g] >= floor:
            continue  # stale entry
        if not adj[g]:
            continue  # isolated (by hard lines or the edge): stays below the floor
        best = min(adj[g], key=lambda k: (-adj[g][k], k))
        for other, length in adj[g].items():
            if other == best:
                continue
            adj[best][other] = adj[best].get(other, 0.0) + length
            adj[other][best] = adj[other].get(best, 0.0) + length
            del adj[other][g]
        del adj[best][g]
        adj[g] = {}
        alive[g] = False
        hh[best] += hh[g]
        ar[best] += ar[g]
        members[best].extend(members[g])
        if hh[best] < floor:
            heapq.heappush(heap, (hh[best], ar[best], best))
    return [np.array(sorted(members[i])) for i in range(n) if alive[i]]


def _reading_order(geoms: list[Any]) -> list[int]:
    """Return the areas' indices in rows north → south, west → east (as grids are numbered)."""
    from gridmap.partition.codes import grid_sequence

    seq = grid_sequence(gpd.GeoDataFrame(geometry=geoms), by=None).to_numpy()
    return [int(i) for i in np.argsort(seq, kind="stable")]
