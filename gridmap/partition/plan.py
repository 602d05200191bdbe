"""The partitioner's result: a :class:`Plan` of grids with its quality report.

A plan is plain data — GeoDataFrames and DataFrames in one projected CRS — so
that staffing, storage, maps and analysts can all work on it without the
partitioner. Reading and writing plan files lives in :mod:`gridmap.io`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

__all__ = ["GRID_COLUMNS", "QualityReport", "Plan", "jsonable"]

#: Columns every ``Plan.grids`` frame carries (plus ``geometry``).
GRID_COLUMNS: tuple[str, ...] = (
    "grid_code",  # community code + 3-digit sequence (west→east, north→south)
    "community_id",
    "name",  # readable name, e.g. "幸福社区第003网格"
    "households",
    "persons",  # NaN when unknown
    "n_buildings",
    "boundary_desc",  # 四至: "东至…路, 南至…, 西至…, 北至…"
    "locked",
)


def jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers to JSON-compatible Python values.

    NaN, infinities, ``pd.NA`` and ``NaT`` become ``None``; timestamps become
    ISO strings; shapely geometries become WKT. Used by the report, the store
    and the HTTP API alike.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"a": np.int64(3), "b": [np.float64("nan"), np.bool_(True)]})
    {'a': 3, 'b': [None, True]}
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray | pd.Index | pd.Series):
        return [jsonable(v) for v in value]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, shapely.Geometry):
        return value.wkt
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class QualityReport:
    """Quality figures of a plan (``DESIGN.md`` §4), per grid, per community, overall.

    Attributes
    ----------
    grids : pandas.DataFrame
        One row per grid, with a ``grid_code`` column and the per-grid figures.
    communities : pandas.DataFrame
        One row per community, with a ``community_id`` column, its figures and
        a ``notes`` column saying why a community could not meet the band.
    overall : dict
        Plan-wide figures (``share_in_band``, ``mean_polsby_popper`` …).
    """

    grids: pd.DataFrame
    communities: pd.DataFrame
    overall: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the whole report as JSON-compatible Python objects."""
        return {
            "overall": jsonable(self.overall),
            "communities": jsonable(self.communities.to_dict(orient="records")),
            "grids": jsonable(self.grids.to_dict(orient="records")),
        }

    def to_json(self, **kwargs: Any) -> str:
        """Return :meth:`to_dict` as a JSON string (UTF-8 text, Chinese kept as is)."""
        kwargs.setdefault("ensure_ascii", False)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        """Rebuild a report from :meth:`to_dict` output."""
        return cls(
            grids=pd.DataFrame(data.get("grids", [])),
            communities=pd.DataFrame(data.get("communities", [])),
            overall=dict(data.get("overall", {})),
        )


@dataclass(frozen=True)
class Plan:
    """A partition of communities into grids.

    Attributes
    ----------
    grids : geopandas.GeoDataFrame
        One Polygon per grid with the columns in :data:`GRID_COLUMNS` (and any
        per-grid quality figures), in ``crs``.
    buildings : pandas.DataFrame
        Building → grid: ``building_id``, ``grid_code``, ``households`` and
        ``part`` (null for a whole building; for a building split because it
        alone exceeds the maximum, one row per part, labelled e.g.
        ``"units 1-2"`` or ``"floors 1-12"``).
    households : pandas.DataFrame or None
        Household → grid: ``household_id``, ``building_id``, ``grid_code``;
        None when the input had no household layer.
    report : QualityReport
        The quality figures.
    params : dict
        The parameters the plan was made with (``min_households``, ``seed`` …).
    crs : pyproj.CRS
        Projected CRS of ``grids``.
    assignments : pandas.DataFrame or None
        Staff posts (from :mod:`gridmap.staffing`), when staffed.
    """

    grids: gpd.GeoDataFrame
    buildings: pd.DataFrame
    households: pd.DataFrame | None
    report: QualityReport
    params: dict[str, Any]
    crs: pyproj.CRS
    assignments: pd.DataFrame | None = None

    @property
    def n_grids(self) -> int:
        """Number of grids."""
        return len(self.grids)

    def replace(self, **changes: Any) -> Plan:
        """Return a copy with some fields replaced (the original is unchanged)."""
        return replace(self, **changes)

    def grids_wgs84(self) -> gpd.GeoDataFrame:
        """Return the grids in WGS84 (EPSG:4326), e.g. for web maps and export."""
        return self.grids.to_crs(4326)
