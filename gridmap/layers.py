"""The input contract: canonical layers, their columns, and validation.

gridmap works on seven canonical layers. ``communities`` and ``buildings`` are
required; the others are optional:

============  ==========  ================================================================
layer         geometry    columns (required first)
============  ==========  ================================================================
communities   Polygon     community_id; name, code, street, street_code, district, district_code
buildings     Polygon     building_id; households, levels, use, name, community_id
households    Point/none  household_id; building_id, unit, floor, persons, sensitive flags
roads         LineString  name, class
barriers      LineString  kind (wall, fence, water)
compounds     Polygon     compound_id, name
staff         Point/none  staff_id; name, phone, home_building_id, can_be_chief
============  ==========  ================================================================

:func:`~gridmap.validation.validate_layers` turns raw GeoDataFrames (as read by :mod:`gridmap.io`)
into a :class:`Layers` bundle in one projected CRS (metres), with every repair
and rejection listed in a :class:`~gridmap.validation.ValidationReport`. No row
is ever dropped without a line in that report.

This module is the contract only (names, columns, the :class:`Layers` bundle,
household estimation); :mod:`gridmap.validation` checks raw layers against it
and imports it, never the other way round.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from gridmap.errors import CRSError, LayerError

__all__ = [
    "LAYER_NAMES",
    "REQUIRED_LAYERS",
    "ID_COLUMNS",
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "GEOMETRY_TYPES",
    "SENSITIVE_FLAGS",
    "BUILDING_USES",
    "CONVERTED_ATTR",
    "DERIVED_ATTR",
    "LEFT_OUT_ATTR",
    "Layers",
    "estimate_households",
]

logger = logging.getLogger(__name__)

#: Canonical layer names, in dependency order.
LAYER_NAMES: tuple[str, ...] = (
    "communities",
    "buildings",
    "households",
    "roads",
    "barriers",
    "compounds",
    "staff",
)

#: Layers without which nothing can be partitioned.
REQUIRED_LAYERS: tuple[str, ...] = ("communities", "buildings")

#: The id column of each layer that has one (unique, stored as ``str``).
ID_COLUMNS: dict[str, str] = {
    "communities": "community_id",
    "buildings": "building_id",
    "households": "household_id",
    "compounds": "compound_id",
    "staff": "staff_id",
}

#: Columns that must be present in the raw input (after any column mapping).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "communities": ("community_id",),
    "buildings": ("building_id",),
    "households": ("household_id",),
    "roads": (),
    "barriers": (),
    "compounds": (),
    "staff": ("staff_id",),
}

#: Household flags that are personal data (the grid chief's must-visits).
SENSITIVE_FLAGS: tuple[str, ...] = (
    "elderly_living_alone",
    "disabled",
    "on_assistance",
    "floating_population",
    "unemployed",
)

#: Optional columns; after validation every one of them exists (filled with nulls
#: or defaults), so downstream code can rely on them.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "communities": ("name", "code", "street", "street_code", "district", "district_code"),
    "buildings": ("households", "levels", "use", "name", "community_id"),
    "households": ("building_id", "unit", "floor", "persons", *SENSITIVE_FLAGS),
    "roads": ("name", "class"),
    "barriers": ("kind",),
    "compounds": ("compound_id", "name"),
    "staff": ("name", "phone", "home_building_id", "can_be_chief"),
}

#: Accepted geometry types per layer (``None``: the layer may come without geometry).
GEOMETRY_TYPES: dict[str, tuple[str | None, ...]] = {
    "communities": ("Polygon", "MultiPolygon"),
    "buildings": ("Polygon", "MultiPolygon"),
    "households": ("Point", None),
    "roads": ("LineString", "MultiLineString"),
    "barriers": ("LineString", "MultiLineString", "Polygon", "MultiPolygon"),
    "compounds": ("Polygon", "MultiPolygon"),
    "staff": ("Point", None),
}

#: Key of ``GeoDataFrame.attrs`` where a reader lists rows it deliberately left out (e.g.
#: tunnels under the ``osm`` preset) as ``[(count, reason), …]``; validation reports them,
#: so that no row goes silently.
LEFT_OUT_ATTR = "gridmap_left_out"

#: Key of ``GeoDataFrame.attrs`` recording that a reader converted the layer from
#: ``"gcj02"`` or ``"bd09"`` to WGS84; validation reports it.
CONVERTED_ATTR = "gridmap_converted_from"

#: Key of ``GeoDataFrame.attrs`` flagging a communities layer as derived stand-ins (made by
#: :func:`gridmap.areas.derive_communities`, which records there what it did); validation
#: reports it as a warning.
DERIVED_ATTR = "gridmap_derived"

#: Values of ``buildings.use``; anything else is reported and kept as ``other``.
BUILDING_USES: tuple[str, ...] = (
    "residential",
    "commercial",
    "public",
    "industrial",
    "mixed",
    "other",
)


@dataclass(frozen=True)
class Layers:
    """Validated canonical layers, all in one projected CRS (metres).

    Produced by :func:`validate_layers`; everything downstream (partitioner,
    staffing, storage, maps) takes this bundle. After validation:

    * every frame has a fresh ``RangeIndex`` and every id column is ``str``;
    * ``buildings`` has ``households`` (int ≥ 0), ``households_estimated``
      (bool), ``levels`` (float, NaN when unknown), ``use`` (one of
      :data:`BUILDING_USES`), ``community_id`` (the community holding the
      building's representative point) and ``compound_id`` (or null);
    * ``households``, when given, has a Point for every row (the building's
      representative point when the input had none), a ``building_id`` that
      exists in ``buildings``, and a bool column per :data:`SENSITIVE_FLAGS`;
    * ``staff``, when given, has a home Point per row, ``can_be_chief`` (bool)
      and ``home_building_id`` (or null).

    Attributes
    ----------
    communities, buildings : geopandas.GeoDataFrame
        Required layers.
    households, roads, barriers, compounds, staff : geopandas.GeoDataFrame or None
        Optional layers.
    crs : pyproj.CRS
        The projected CRS every layer is in.
    """

    communities: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    households: gpd.GeoDataFrame | None = None
    roads: gpd.GeoDataFrame | None = None
    barriers: gpd.GeoDataFrame | None = None
    compounds: gpd.GeoDataFrame | None = None
    staff: gpd.GeoDataFrame | None = None
    crs: pyproj.CRS = field(default_factory=lambda: pyproj.CRS.from_epsg(3857))

    def items(self) -> list[tuple[str, gpd.GeoDataFrame]]:
        """Return ``(name, frame)`` for every layer that is present, in canonical order."""
        return [
            (f.name, getattr(self, f.name))
            for f in fields(self)
            if f.name in LAYER_NAMES and getattr(self, f.name) is not None
        ]

    def replace(self, **changes: Any) -> Layers:
        """Return a copy with some layers replaced (the original is unchanged)."""
        return replace(self, **changes)

    def to_crs(self, crs: Any) -> Layers:
        """Return every layer reprojected to ``crs``."""
        target = pyproj.CRS.from_user_input(crs)
        moved = {name: frame.to_crs(target) for name, frame in self.items()}
        return replace(self, crs=target, **moved)

    def subset(self, community_ids: list[str]) -> Layers:
        """Return the layers restricted to some communities.

        Buildings, households and staff are filtered by ``community_id`` (staff
        and households through their building); line and compound layers are
        kept whole, since they are context.
        """
        ids = set(map(str, community_ids))
        comms = self.communities[self.communities["community_id"].isin(ids)]
        blds = self.buildings[self.buildings["community_id"].isin(ids)]
        bids = set(blds["building_id"])
        hh = self.households
        if hh is not None:
            hh = hh[hh["building_id"].isin(bids)].reset_index(drop=True)
        return replace(
            self,
            communities=comms.reset_index(drop=True),
            buildings=blds.reset_index(drop=True),
            households=hh,
        )


# --------------------------------------------------------------------------- estimation


def estimate_households(
    buildings: gpd.GeoDataFrame,
    *,
    unit_area: float = 90.0,
    default_levels: float = 6.0,
) -> pd.Series:
    """Estimate households of residential buildings as levels × footprint / unit area.

    Non-residential buildings get 0. Buildings with unknown levels use
    ``default_levels``. The footprint is measured in the frame's CRS, which must
    be projected (metres).

    Parameters
    ----------
    buildings : geopandas.GeoDataFrame
        Buildings with ``use`` and ``levels`` columns, in a projected CRS.
    unit_area : float, default 90.0
        Gross floor area per household in m².
    default_levels : float, default 6.0
        Levels assumed where ``levels`` is unknown.

    Returns
    -------
    pandas.Series
        Integer household estimates, index-aligned with ``buildings``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> b = gpd.GeoDataFrame(
    ...     {"use": ["residential", "commercial"], "levels": [6, 20]},
    ...     geometry=[shapely.box(0, 0, 30, 15), shapely.box(50, 0, 80, 30)],
    ...     crs=4549,
    ... )
    >>> estimate_households(b).tolist()
    [30, 0]
    """
    if unit_area <= 0:
        raise LayerError(f"unit_area must be positive (m² per household), got {unit_area}")
    if buildings.crs is None or not buildings.crs.is_projected:
        raise CRSError(
            "estimate_households needs buildings in a projected CRS (metres); "
            "reproject first, e.g. buildings.to_crs(gridmap.crs.local_crs(buildings))"
        )
    levels = pd.to_numeric(buildings.get("levels"), errors="coerce")
    if levels is None:
        levels = pd.Series(np.nan, index=buildings.index)
    levels = levels.astype(float).where(lambda s: s > 0, np.nan).fillna(default_levels)
    area = buildings.geometry.area
    residential = buildings.get("use", pd.Series("residential", index=buildings.index))
    est = np.floor(levels * area / unit_area + 0.5)
    est = est.where(residential.astype(str) == "residential", 0.0)
    return est.astype(np.int64)
