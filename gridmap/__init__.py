"""gridmap: community grid (网格) management.

Partition communities (社区) into grids of a household band, staff every grid
with one resident grid chief (网格长) and two or three grid workers (网格员),
and locate incidents by coordinate.

The most used functions are re-exported here and imported on first use, so
``import gridmap`` (and ``gridmap --help``) stays fast:

>>> import gridmap
>>> gridmap.transform(116.404, 39.915, "wgs84", "gcj02")
(116.41024449916938, 39.91640428150164)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "read_layers": "gridmap.io",
    "write_layers": "gridmap.io",
    "read_plan": "gridmap.io",
    "write_plan": "gridmap.io",
    "export_plan": "gridmap.io",
    "Layers": "gridmap.layers",
    "validate_layers": "gridmap.validation",
    "check_layers": "gridmap.validation",
    "derive_communities": "gridmap.areas",
    "transform": "gridmap.crs",
    "to_wgs84": "gridmap.crs",
    "local_crs": "gridmap.crs",
    "GridIndex": "gridmap.locate",
    "synth_city": "gridmap.synth",
    "synth_rural_city": "gridmap.synth_rural",
    "synth_incidents": "gridmap.incidents",
    "locate_incidents": "gridmap.incidents",
    "Plan": "gridmap.partition.plan",
    "QualityReport": "gridmap.partition.plan",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import re-exported names on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gridmap' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
