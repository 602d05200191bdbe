"""Styling shared by every map: fonts, colours of the household band, legends, labels, search."""

from __future__ import annotations

import html
import json
import logging
from typing import TYPE_CHECKING, Any

import folium
import folium.plugins
import numpy as np
import pandas as pd
from branca.element import MacroElement
from folium.template import Template

from gridmap.maps.encoding import _encode_collection, _safe_json

if TYPE_CHECKING:
    pass

__all__: list[str] = []

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- styling

_FONT = "'Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',sans-serif"

_CSS = f"""<style>
.leaflet-container {{ font-family: {_FONT}; }}
.gridmap-label {{ background: transparent; border: none; }}
.gridmap-label span {{ display: inline-block; transform: translate(-50%, -50%);
  white-space: nowrap; font: 600 11px {_FONT}; color: #222;
  text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 3px #fff; pointer-events: none; }}
.gridmap-label em {{ font-style: normal; }}
.gridmap-label .f, .gridmap-full-labels .gridmap-label .s {{ display: none; }}
.gridmap-full-labels .gridmap-label .f {{ display: inline; }}
.gridmap-hide-labels .gridmap-label {{ display: none; }}
.gridmap-place {{ background: transparent; border: none; }}
.gridmap-place span {{ display: inline-block; transform: translate(-50%, -170%);
  white-space: nowrap; font: 700 14px {_FONT}; color: #1a1a1a; letter-spacing: 1px;
  text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 4px #fff; pointer-events: none; }}
.gridmap-hide-places .gridmap-place {{ display: none; }}
.gridmap-panel {{ background: rgba(255,255,255,.92); padding: 6px 9px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.35); font: 12px/1.45 {_FONT}; color: #222;
  max-width: 300px; }}
.gridmap-panel h4 {{ margin: 0 0 4px; font-size: 13px; }}
.gridmap-panel i {{ display: inline-block; width: 14px; height: 11px; margin-right: 6px;
  vertical-align: middle; border: 1px solid rgba(0,0,0,.35); }}
.gridmap-panel table {{ border-collapse: collapse; }}
.gridmap-panel td {{ padding: 0 6px 0 0; vertical-align: top; }}
.leaflet-popup-content {{ max-height: 55vh; overflow-y: auto; }}
.leaflet-popup-content table {{ font-size: 12px; line-height: 1.3; }}
.leaflet-popup-content table th {{ font-weight: 600; padding-right: 8px; }}
</style>"""

#: Below band / in band (4 grades, light → dark as households near the maximum) / above.
_BELOW = "#4393c3"
_IN_BAND = ("#d9f0d3", "#a6dba0", "#5aae61", "#1b7837")
_ABOVE = "#d6604d"
_CATEGORICAL = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
_GREY = "#9e9e9e"
#: Buildings coloured by grid (neighbouring grids differ): hues kept away from the band's blue,
#: greens and red above (ΔE*76 ≥ 25 from each), so that a building's colour never reads as
#: "below/in/above band" — the band colours mean the band and nothing else.
_BUILDING_COLOURS = (
    "#ffd92f",
    "#8073ac",
    "#e08214",
    "#f1b6da",
    "#a6761d",
    "#542788",
    "#4d4d4d",
)
#: Outline of a grid without a grid chief (网格长) on the quality map (dashed).
_NO_CHIEF = "#e7298a"


class _HtmlControl(MacroElement):
    """A block of HTML (legend, info panel) shown as a Leaflet control.

    The HTML is written literally into the page (UTF-8, readable in the source)
    and moved into the control when the map starts, so it also shows in
    fullscreen.
    """

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div id="{{ this.get_name() }}" class="gridmap-panel {{ this.css_class }}"
             style="display:none">{{ this.content }}</div>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function (map) {
            var ctl = L.control({position: {{ this.position|tojson }}});
            ctl.onAdd = function () {
                var div = document.getElementById({{ this.get_name()|tojson }});
                div.style.display = "block";
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            ctl.addTo(map);
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, content: str, *, position: str = "bottomright", css_class: str = "") -> None:
        super().__init__()
        self._name = "GridmapControl"
        self.content = content
        self.position = position
        self.css_class = css_class


class _GeoJsonLayer(folium.GeoJson):
    """A :class:`folium.GeoJson` that embeds its data compactly.

    Styles are evaluated in Python and stored once in a small table (features
    carry an index ``_s``); the data is written with :func:`_encode_collection`
    as UTF-8 JSON without spaces, so Chinese text takes 3 bytes a character
    instead of 6 and coordinates a third of their GeoJSON size. Tooltips,
    popups, the layer control and the search plugin work as with
    ``folium.GeoJson`` (the page decodes the data before adding it).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }}_styles = {{ this.styles_js }};
        var {{ this.get_name() }} = L.geoJson(null, {
            style: function (f) { return {{ this.get_name() }}_styles[f.properties._s || 0]; },
            {%- if this.highlight_js %}
            onEachFeature: function (f, layer) {
                layer.on({
                    mouseover: function (e) { e.target.setStyle({{ this.highlight_js }}); },
                    mouseout: function (e) { {{ this.get_name() }}.resetStyle(e.target); }
                });
            },
            {%- endif %}
            interactive: {{ this.interactive_js }}
        });
        {{ this.get_name() }}.addData(gridmapDecode({{ this.data_js }}));
        {% endmacro %}
        """
    )

    def __init__(
        self,
        data: dict[str, Any],
        *,
        name: str,
        style_function: Any = None,
        highlight_function: Any = None,
        interactive: bool = True,
        tooltip: Any = None,
        popup: Any = None,
        show: bool = True,
    ) -> None:
        feats = data["features"]
        table: list[dict[str, Any]] = []
        index: dict[str, int] = {}
        keys = []
        for f in feats:
            style = style_function(f) if style_function is not None else {}
            key = json.dumps(style, sort_keys=True)
            if key not in index:
                index[key] = len(table)
                table.append(style)
            keys.append(index[key])
        if len(table) > 1:
            for f, k in zip(feats, keys, strict=True):
                f["properties"]["_s"] = k
        self.data_js = _safe_json(_encode_collection(data))
        # folium only reads the properties and geometry types (tooltip/popup checks)
        stub = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": f["properties"],
                    "geometry": None
                    if f["geometry"] is None
                    else {"type": f["geometry"].geom_type},
                }
                for f in feats
            ],
        }
        super().__init__(stub, name=name, tooltip=tooltip, popup=popup, show=show)
        self.styles_js = _safe_json(table or [{}])
        self.highlight_js = (
            _safe_json(highlight_function(feats[0])) if highlight_function and feats else ""
        )
        self.interactive_js = "true" if interactive else "false"


class _RowLabels(folium.map.Layer):
    """Permanent labels drawn by the page from one compact array of rows (``rows_js``).

    Subclasses give the template and the element name (``_kind``); hidden below ``min_zoom``.
    """

    _kind = "RowLabels"

    def __init__(
        self,
        rows: list[list[Any]],
        *,
        map_name: str,
        min_zoom: int,
        name: str,
        show: bool = True,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = self._kind
        self.rows = rows
        self.rows_js = _safe_json(rows)
        self.map_name = map_name
        self.min_zoom = int(min_zoom)


class _Labels(_RowLabels):
    """Permanent grid labels, written as one compact array of rows.

    Hidden below ``min_zoom``; the 3-digit sequence up to ``min_zoom + 2``; the
    full code from there on.
    """

    _kind = "GridLabels"

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.layerGroup();
        (function (group, rows, map, minZoom, fullZoom) {
            rows.forEach(function (r) {
                var el = document.createElement("span");
                var short = document.createElement("em");
                var full = document.createElement("em");
                short.className = "s";
                short.textContent = r[3];
                full.className = "f";
                full.textContent = r[2];
                el.appendChild(short);
                el.appendChild(full);
                L.marker([r[0], r[1]], {
                    interactive: false, keyboard: false,
                    icon: L.divIcon({className: "gridmap-label", html: el, iconSize: null})
                }).addTo(group);
            });
            function update() {
                var c = map.getContainer(), z = map.getZoom();
                c.classList.toggle("gridmap-hide-labels", z < minZoom);
                c.classList.toggle("gridmap-full-labels", z >= fullZoom);
            }
            map.on("zoomend", update);
            map.whenReady(update);
        })({{ this.get_name() }}, {{ this.rows_js }}, {{ this.map_name }},
           {{ this.min_zoom|tojson }}, {{ this.full_zoom|tojson }});
        {% endmacro %}
        """
    )

    @property
    def full_zoom(self) -> int:
        """The zoom from which the full grid code shows."""
        return self.min_zoom + 2


class _PlaceLabels(_RowLabels):
    """Permanent place names (community names, 社区名称), one compact array of rows.

    Rows are ``[lat, lon, text]``; hidden below ``min_zoom``. Drawn a line above
    the point, so that a grid label at the same spot stays readable.
    """

    _kind = "PlaceLabels"

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.layerGroup();
        (function (group, rows, map, minZoom) {
            rows.forEach(function (r) {
                var el = document.createElement("span");
                el.textContent = r[2];
                L.marker([r[0], r[1]], {
                    interactive: false, keyboard: false,
                    icon: L.divIcon({className: "gridmap-place", html: el, iconSize: null})
                }).addTo(group);
            });
            function update() {
                map.getContainer().classList.toggle("gridmap-hide-places", map.getZoom() < minZoom);
            }
            map.on("zoomend", update);
            map.whenReady(update);
        })({{ this.get_name() }}, {{ this.rows_js }}, {{ this.map_name }},
           {{ this.min_zoom|tojson }});
        {% endmacro %}
        """
    )


class _SearchPopup(MacroElement):
    """Open the popup of the grid a search found (folium binds popups on the layer group)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this.layer_name }}searchControl.on("search:locationfound", function (e) {
            if (e.layer._popup || !e.layer.getBounds) return;
            var map = {{ this.layer_name }}searchControl._map, done = false;
            function open() {  // once the search has zoomed there, so the popup pans into view
                if (done) return;
                done = true;
                e.layer.fire("click", {latlng: e.layer.getBounds().getCenter()}, true);
            }
            map.once("moveend", open);
            setTimeout(open, 700);
        });
        {% endmacro %}
        """
    )

    def __init__(self, layer_name: str) -> None:
        super().__init__()
        self._name = "SearchPopup"
        self.layer_name = layer_name


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _swatch(color: str, text: str, *, outline: bool = False, dashed: bool = False) -> str:
    line = "dashed" if dashed else "solid"
    style = (
        f"border:2px {line} {color};background:none"
        if outline
        else f"background:{color};opacity:.8"
    )
    return f'<i style="{style}"></i>{text}<br>'


def _band_colour(h: float, lo: float, hi: float) -> str:
    if not np.isfinite(h) or h < lo:
        return _BELOW
    if h > hi:
        return _ABOVE
    span = max(hi - lo, 1e-9)
    k = min(int((h - lo) / span * len(_IN_BAND)), len(_IN_BAND) - 1)
    return _IN_BAND[k]


def _band_legend(lo: float, hi: float, counts: pd.Series) -> str:
    edges = np.linspace(lo, hi, len(_IN_BAND) + 1)
    rows = [
        "<h4>户数 Households</h4>",
        _swatch(_BELOW, f"低于下限 Below band (&lt; {lo:g}) · {counts.get(_BELOW, 0)}"),
    ]
    n_in = sum(int(counts.get(c, 0)) for c in _IN_BAND)
    for i, c in enumerate(_IN_BAND):
        label = f"{edges[i]:.0f}–{edges[i + 1]:.0f}"
        suffix = f" · 带内 In band {n_in}" if i == len(_IN_BAND) - 1 else ""
        rows.append(_swatch(c, label + suffix))
    rows.append(_swatch(_ABOVE, f"超过上限 Above band (&gt; {hi:g}) · {counts.get(_ABOVE, 0)}"))
    return "".join(rows)


# --------------------------------------------------------------------------- popup values

#: Report figures that are shares (0–1), shown as percentages.
_SHARE_FIGURES = frozenset({"share_boundary_on_roads", "stability", "share_in_band"})
#: Report figures that are yes/no, shown as 是/否 even when a store gave them as 0/1.
_YES_NO_FIGURES = frozenset({"in_band", "band_exempt", "is_enclave", "enclave", "locked"})


def _fmt_number(value: Any) -> str:
    """Format a count or measure for people: thousands separators, 3 decimals below 10.

    Examples
    --------
    >>> _fmt_number(40000.0), _fmt_number(1234), _fmt_number(0.7854), _fmt_number(0.5)
    ('40,000', '1,234', '0.785', '0.5')
    """
    v = float(value)
    if v.is_integer() or abs(v) >= 10:
        return f"{v:,.0f}"
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _fmt_figure(name: str, value: Any) -> str:
    """Format one per-grid figure for a popup: 是/否, percentages for shares, separators.

    Missing values are "—".

    Examples
    --------
    >>> _fmt_figure("in_band", True), _fmt_figure("band_exempt", 0)
    ('是', '否')
    >>> _fmt_figure("share_boundary_on_roads", 0.725), _fmt_figure("stability", 1.0)
    ('72.5%', '100.0%')
    >>> _fmt_figure("area_m2", 40000.0), _fmt_figure("polsby_popper", None)
    ('40,000', '—')
    """
    if (
        value is None
        or value is pd.NA
        or (isinstance(value, float | np.floating) and not np.isfinite(value))
    ):
        return "—"
    if isinstance(value, bool | np.bool_) or name in _YES_NO_FIGURES:
        return "是" if bool(value) else "否"
    if isinstance(value, int | float | np.integer | np.floating):
        if name in _SHARE_FIGURES or name.startswith("share_"):
            return f"{float(value):.1%}"
        return _fmt_number(value)
    return str(value)
