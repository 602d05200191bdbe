"""Web maps of plans, incidents, plan differences and quality, built with folium.

Every function here is pure: it takes a :class:`~gridmap.partition.plan.Plan`
(in any projected CRS) and returns a :class:`folium.Map`; saving the HTML is up
to the caller (``m.save(path)`` or :mod:`gridmap.io`).

* :func:`plan_map` — grids coloured by households against the band, labelled by
  code, with tooltips (code, name, households, grid chief), popups (四至 and the
  quality figures), community / sub-district boundaries, a buildings layer,
  legend, search by grid code, fullscreen and scale bar.
* :func:`incident_map` / :func:`incidents_map` — one incident with its grid,
  staff and neighbouring grids; many incidents clustered and coloured by grid.
* :func:`diff_map` — two plans overlaid, changed grids and moved buildings
  highlighted (:func:`plan_diff` and :func:`moved_buildings` give the tables).
* :func:`quality_map` — grids failing a check, with the reason
  (:func:`quality_flags` gives the table).
* :func:`cases_map` — cases (事件工单) clustered and coloured by status and overdue,
  filtered in the page, over a choropleth of cases per 1,000 households;
  :func:`nearby_cases_map` — a call's locate map with the open cases near it.

Large plans stay light: grid geometry is simplified as a coverage
(:func:`shapely.coverage_simplify`, shared edges stay shared), coordinates are
rounded to 6 decimals (~0.1 m) and features carry only the properties shown.

Base maps: OpenStreetMap by default; ``tiles=`` takes a preset name from
:data:`TILE_PRESETS` or any ``{z}/{x}/{y}`` URL template (with ``attr=``). AMap
and Tencent tiles are drawn in GCJ-02, so with them (or ``tiles_crs="gcj02"``)
every overlay vertex is shifted into GCJ-02 to line up with the streets.

Without internet (government intranets): ``assets="inline"`` embeds Leaflet,
jQuery and the plugins in the page, a URL prefix loads them from a server
(the HTTP API serves them at ``/maps/static/``); see :mod:`gridmap.maps.assets`.

Modules, one per map kind: :mod:`~gridmap.maps.plan`, :mod:`~gridmap.maps.incidents`,
:mod:`~gridmap.maps.diff`, :mod:`~gridmap.maps.quality`; shared by all of them:
:mod:`~gridmap.maps.page` (the folium page), :mod:`~gridmap.maps.style` (colours,
legends, labels), :mod:`~gridmap.maps.display` (geometry for display),
:mod:`~gridmap.maps.encoding` (compact GeoJSON), :mod:`~gridmap.maps.tiles` (base maps)
and :mod:`~gridmap.maps.assets` (Leaflet and plugins shipped for offline use).

Importing :mod:`gridmap.maps` is cheap: folium loads with the first map builder used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridmap.maps.cases import cases_map, nearby_cases, nearby_cases_map
    from gridmap.maps.diff import diff_map, moved_buildings, plan_diff
    from gridmap.maps.incidents import incident_map, incidents_map
    from gridmap.maps.plan import plan_map
    from gridmap.maps.quality import quality_flags, quality_map
    from gridmap.maps.tiles import TILE_PRESETS, TilePreset
    from gridmap.maps.visits import visit_route_map

__all__ = [
    "TILE_PRESETS",
    "TilePreset",
    "plan_map",
    "incident_map",
    "incidents_map",
    "diff_map",
    "quality_map",
    "plan_diff",
    "moved_buildings",
    "quality_flags",
    "visit_route_map",
    "cases_map",
    "nearby_cases",
    "nearby_cases_map",
]

_HOME = {
    "TILE_PRESETS": "tiles",
    "TilePreset": "tiles",
    "plan_map": "plan",
    "incident_map": "incidents",
    "incidents_map": "incidents",
    "diff_map": "diff",
    "plan_diff": "diff",
    "moved_buildings": "diff",
    "quality_map": "quality",
    "quality_flags": "quality",
    "visit_route_map": "visits",
    "cases_map": "cases",
    "nearby_cases": "cases",
    "nearby_cases_map": "cases",
}


def __getattr__(name: str) -> Any:
    """Load a map builder's module (and folium) when the builder is first asked for."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'gridmap.maps' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gridmap.maps.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
