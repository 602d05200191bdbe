"""One normal form of the layers before partitioning: coordinates on a millimetre grid.

Layers that went through a file or the store come back with the last bits of
their coordinates changed (the WGS84 ↔ projected round trip moves vertices by
nanometres). The partitioner's geometry — polygonize of road linework, Voronoi
cells, coverage cleaning, shared-edge matching — is exact arithmetic on those
coordinates, so nanometres could change which cells exist and, through them,
which grid a building joins. :func:`snap_layers` rounds every coordinate to
:data:`SNAP_GRID_M` (about 1 mm in the projected CRS) once, on entry, so that the same
layers read back from anywhere give the same input bits, and so the same grids.

The rounding is a plain per-coordinate ``round`` to a multiple of 2⁻¹⁰ m (vertex
count and order kept). It attaches no GEOS precision model (``shapely.set_precision``
would, and later overlays would then snap-round their results differently from the rest); a
polygon that rounding makes invalid (a sliver collapsing) is repaired with
``make_valid`` and keeps its polygonal part.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from gridmap.layers import Layers

__all__ = ["SNAP_GRID_M", "snap_geometries", "snap_layers"]

#: Grid (metres, projected CRS) that every input coordinate is rounded to before
#: partitioning: 2⁻¹⁰ m (0.98 mm). A power of two, so that rounding is exact in binary
#: floating point, and so that no decimal coordinate (x.xxx5, as data rounded to 0.1 mm
#: has) lies half-way between two grid points, where nanometres of noise would round it
#: one way or the other.
SNAP_GRID_M = 2.0**-10

_SCALE = 2.0**10


def _polygonal_part(geom: Any) -> Any:
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    if not parts:
        return geom
    out = shapely.union_all(parts)
    return out


def snap_geometries(geoms: np.ndarray) -> np.ndarray:
    """Round every coordinate to :data:`SNAP_GRID_M`, keeping geometries valid.

    Parameters
    ----------
    geoms : numpy.ndarray of shapely geometries
        Geometries in a projected CRS (metres); None and empty ones pass through.

    Returns
    -------
    numpy.ndarray
        New geometries; polygons stay polygonal and valid.

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import Point
    >>> snap_geometries(np.array([Point(1.5, 2.0000004)]))[0].wkt
    'POINT (1.5 2)'
    >>> snap_geometries(np.array([Point(0.1, 0)]))[0].x  # 102 / 1024
    0.099609375
    """
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    ok = ~shapely.is_missing(geoms)
    if not ok.any():
        return out
    out[ok] = shapely.transform(geoms[ok], lambda xy: np.round(xy * _SCALE) / _SCALE)
    kinds = shapely.get_type_id(out)
    bad = np.flatnonzero(ok & np.isin(kinds, (3, 6)) & ~shapely.is_valid(out))
    for i in bad:
        fixed = _polygonal_part(shapely.make_valid(out[i]))
        out[i] = fixed if shapely.area(fixed) > 0 else geoms[i]
    return out


def snap_layers(layers: Layers) -> Layers:
    """Return the layers with every coordinate rounded to :data:`SNAP_GRID_M`.

    The partitioner calls this on entry, and its quality report measures the
    grids against these snapped layers (the grids tile the snapped communities
    exactly; they differ from the input polygons by less than a millimetre).
    Snapping twice changes nothing.

    Parameters
    ----------
    layers : gridmap.layers.Layers
        Layers in a projected CRS (metres).

    Returns
    -------
    gridmap.layers.Layers
        New layers; attributes and the input are unchanged.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> comms = gpd.GeoDataFrame({"community_id": ["c1"]},
    ...     geometry=[box(0, 0, 100.0000000004, 50)], crs=3857)
    >>> blds = gpd.GeoDataFrame({"building_id": ["b"], "households": [10]},
    ...     geometry=[box(10, 10, 20.00049, 20)], crs=3857)
    >>> out = snap_layers(Layers(communities=comms, buildings=blds, crs=comms.crs))
    >>> out.communities.geometry[0].bounds, out.buildings.geometry[0].bounds
    ((0.0, 0.0, 100.0, 50.0), (10.0, 10.0, 20.0, 20.0))
    """
    changes: dict[str, gpd.GeoDataFrame] = {}
    for name, frame in layers.items():
        if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
            continue
        geoms = np.asarray(frame.geometry.array, dtype=object)
        snapped = snap_geometries(geoms)
        out = frame.copy()
        out[frame.geometry.name] = gpd.GeoSeries(snapped, index=frame.index, crs=frame.crs)
        out.attrs = dict(frame.attrs)
        changes[name] = out
    return layers.replace(**changes)
