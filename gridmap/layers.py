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

:func:`validate_layers` turns raw GeoDataFrames (as read by :mod:`gridmap.io`)
into a :class:`Layers` bundle in one projected CRS (metres), with every repair
and rejection listed in a :class:`ValidationReport`. No row is ever dropped
without a line in that report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from gridmap.errors import CRSError, LayerError, ValidationError

if TYPE_CHECKING:
    from gridmap.validation import Finding, ValidationReport

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
    "Finding",
    "ValidationReport",
    "validate_layers",
    "validate_staff",
    "check_layers",
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


def check_layers(
    raw: Mapping[str, gpd.GeoDataFrame | None],
    *,
    assume_crs: Any = None,
    target_crs: Any = None,
    reproject: bool = False,
    unit_area: float = 90.0,
    default_levels: float = 6.0,
    snap_tolerance: float = 30.0,
    overlap_tolerance: float = 1.0,
) -> tuple[Layers | None, ValidationReport]:
    """Validate raw layers and return ``(layers or None, report)`` without raising.

    The same checks as :func:`validate_layers`; ``layers`` is None when the
    report has errors. Use this to show a report (``gridmap validate``).
    """
    from gridmap.validation import Validator

    v = Validator(
        raw,
        assume_crs=assume_crs,
        target_crs=target_crs,
        reproject=reproject,
        unit_area=unit_area,
        default_levels=default_levels,
        snap_tolerance=snap_tolerance,
        overlap_tolerance=overlap_tolerance,
    )
    layers = v.run()
    for f in v.report.findings:
        if f.severity in ("error", "rejected"):
            logger.info("validation %s: %s: %s", f.severity, f.layer, f.code)
    return layers, v.report


def validate_layers(
    raw: Mapping[str, gpd.GeoDataFrame | None],
    *,
    assume_crs: Any = None,
    target_crs: Any = None,
    reproject: bool = False,
    unit_area: float = 90.0,
    default_levels: float = 6.0,
    snap_tolerance: float = 30.0,
    overlap_tolerance: float = 1.0,
) -> tuple[Layers, ValidationReport]:
    """Validate and normalise raw canonical layers into a :class:`Layers` bundle.

    Every row is either kept (possibly repaired) or listed in the report as
    rejected; nothing is dropped silently. Layers are brought to one projected
    CRS: ``target_crs`` if given, else the CGCS2000 3° Gauss-Krüger zone of the
    area (see :func:`gridmap.crs.local_crs`).

    Parameters
    ----------
    raw : mapping of str to GeoDataFrame
        Layers by canonical name (see :data:`LAYER_NAMES`), as read by
        :func:`gridmap.io.read_layers`.
    assume_crs : CRS-like, optional
        CRS for layers that come without one. Without it, a layer without CRS
        is an error.
    target_crs : CRS-like, optional
        Projected CRS (metres) to bring the layers to.
    reproject : bool, default False
        Accept layers in different CRSs and reproject them (otherwise an error).
    unit_area : float, default 90.0
        m² of floor per household when households are estimated.
    default_levels : float, default 6.0
        Levels assumed for residential buildings without ``levels``.
    snap_tolerance : float, default 30.0
        Households outside every building join the nearest building within
        this many metres.
    overlap_tolerance : float, default 1.0
        Community overlaps up to this many m² are tolerated (digitising noise).

    Returns
    -------
    layers : Layers
    report : ValidationReport

    Raises
    ------
    ValidationError
        When a finding of severity ``error`` stops the layers from being used;
        ``exc.report`` holds the whole report.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> comms = gpd.GeoDataFrame({"community_id": ["C1"]},
    ...                          geometry=[shapely.box(0, 0, 100, 100)], crs=4549)
    >>> blds = gpd.GeoDataFrame({"building_id": [1, 2], "households": [120, None],
    ...                          "levels": [None, 6], "use": ["residential"] * 2},
    ...                         geometry=[shapely.box(10, 10, 40, 30),
    ...                                   shapely.box(60, 60, 90, 75)], crs=4549)
    >>> layers, report = validate_layers({"communities": comms, "buildings": blds})
    >>> layers.buildings[["building_id", "households", "households_estimated"]]
      building_id  households  households_estimated
    0           1         120                 False
    1           2          30                  True
    >>> report.ok
    True
    """
    layers, report = check_layers(
        raw,
        assume_crs=assume_crs,
        target_crs=target_crs,
        reproject=reproject,
        unit_area=unit_area,
        default_levels=default_levels,
        snap_tolerance=snap_tolerance,
        overlap_tolerance=overlap_tolerance,
    )
    if layers is None:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more errors)" if len(report.errors) > 1 else ""
        raise ValidationError(f"{first.layer}: {first.message}{more}", report=report)
    return layers, report


def validate_staff(
    staff: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    crs: Any,
    assume_crs: Any = None,
) -> tuple[gpd.GeoDataFrame, ValidationReport]:
    """Validate a staff roster on its own, against known buildings (e.g. a plan's).

    Parameters
    ----------
    staff : geopandas.GeoDataFrame
        Raw staff layer (``staff_id``; home as ``home_building_id`` or a point).
    buildings : geopandas.GeoDataFrame
        Buildings with ``building_id`` and footprints, to place homes given by id.
    crs : CRS-like
        Projected CRS to bring the staff to (the plan's).
    assume_crs : CRS-like, optional
        CRS of staff points that come without one.

    Returns
    -------
    staff : geopandas.GeoDataFrame
    report : ValidationReport

    Raises
    ------
    ValidationError
        When the roster cannot be used; ``exc.report`` holds every finding.
    """
    from gridmap.validation import Validator

    v = Validator(
        {"staff": staff},
        assume_crs=assume_crs,
        target_crs=crs,
        reproject=True,
        unit_area=90.0,
        default_levels=6.0,
        snap_tolerance=30.0,
        overlap_tolerance=1.0,
    )
    out = v.staff_only(buildings)
    if out is None:
        first = v.report.errors[0]
        raise ValidationError(f"{first.layer}: {first.message}", report=v.report)
    return out, v.report


def __getattr__(name: str) -> Any:
    """Re-export the report classes of :mod:`gridmap.validation` lazily (no import cycle)."""
    if name in ("Finding", "ValidationReport"):
        from gridmap import validation

        return getattr(validation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
