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

Large plans stay light: grid geometry is simplified as a coverage
(:func:`shapely.coverage_simplify`, shared edges stay shared), coordinates are
rounded to 6 decimals (~0.1 m) and features carry only the properties shown.

Base maps: OpenStreetMap by default; ``tiles=`` takes a preset name from
:data:`TILE_PRESETS` or any ``{z}/{x}/{y}`` URL template (with ``attr=``). AMap
and Tencent tiles are drawn in GCJ-02, so with them (or ``tiles_crs="gcj02"``)
every overlay vertex is shifted into GCJ-02 to line up with the streets.

Without internet (government intranets): ``assets="inline"`` embeds Leaflet,
jQuery and the plugins in the page, a URL prefix loads them from a server
(the HTTP API serves them at ``/maps/static/``); see :mod:`gridmap.map_assets`.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from branca.element import Element, Figure, MacroElement
from folium.template import Template

from gridmap.crs import check_lonlat, transform
from gridmap.errors import CoordinateError, CRSError, InputError, LayerError, NotFoundError
from gridmap.map_assets import check_assets, use_assets

if TYPE_CHECKING:
    from gridmap.layers import Layers
    from gridmap.partition.plan import Plan

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
]

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- tiles


@dataclass(frozen=True)
class TilePreset:
    """A named base map.

    Attributes
    ----------
    url : str
        Leaflet URL template (``{s}``, ``{z}``, ``{x}``, ``{y}`` or ``{-y}``;
        ``{key}`` is replaced by ``tiles_key``).
    attr : str
        Attribution (HTML).
    crs : {"wgs84", "gcj02"}
        Datum the tiles are drawn in; overlays are shifted to it.
    subdomains : str
        Values of ``{s}``.
    max_zoom : int
        Deepest zoom the service has.
    needs_key : bool
        Whether ``tiles_key`` is required.
    labels_url : str or None
        An annotation overlay (street names) drawn on top, if the service
        splits them out.
    """

    url: str
    attr: str
    crs: str = "wgs84"
    subdomains: str = "abc"
    max_zoom: int = 19
    needs_key: bool = False
    labels_url: str | None = None


_TIANDITU = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}"
)

#: Named base maps for ``tiles=``. AMap and Tencent are GCJ-02; 天地图 Tianditu
#: is CGCS2000 (= WGS84 at map scale) and needs a key (``tiles_key=``).
TILE_PRESETS: dict[str, TilePreset] = {
    "osm": TilePreset(
        url="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        attr='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
        "contributors",
        subdomains="abc",
        max_zoom=19,
    ),
    "tianditu": TilePreset(
        url=_TIANDITU.replace("{layer}", "vec"),
        attr='&copy; <a href="https://www.tianditu.gov.cn/">天地图 Tianditu</a>',
        subdomains="01234567",
        max_zoom=18,
        needs_key=True,
        labels_url=_TIANDITU.replace("{layer}", "cva"),
    ),
    "tianditu_satellite": TilePreset(
        url=_TIANDITU.replace("{layer}", "img"),
        attr='&copy; <a href="https://www.tianditu.gov.cn/">天地图 Tianditu</a>',
        subdomains="01234567",
        max_zoom=18,
        needs_key=True,
        labels_url=_TIANDITU.replace("{layer}", "cia"),
    ),
    "amap": TilePreset(
        url="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
        "&x={x}&y={y}&z={z}",
        attr="&copy; 高德地图 AutoNavi",
        crs="gcj02",
        subdomains="1234",
        max_zoom=18,
    ),
    "amap_satellite": TilePreset(
        url="https://webst0{s}.is.autonavi.com/appmaptile?style=6&x={x}&y={y}&z={z}",
        attr="&copy; 高德地图 AutoNavi",
        crs="gcj02",
        subdomains="1234",
        max_zoom=18,
    ),
    "tencent": TilePreset(
        url="https://rt{s}.map.gtimg.com/realtimerender?z={z}&x={x}&y={-y}&type=vector&style=0",
        attr="&copy; 腾讯地图 Tencent",
        crs="gcj02",
        subdomains="0123",
        max_zoom=18,
    ),
}

_TILE_CRSS = ("wgs84", "gcj02")


@dataclass(frozen=True)
class _TileConfig:
    url: str | None
    attr: str | None
    crs: str
    subdomains: str
    max_zoom: int
    labels_url: str | None
    name: str

    @property
    def gcj(self) -> bool:
        return self.crs == "gcj02"


def _tile_config(
    tiles: str | None, attr: str | None, tiles_key: str | None, tiles_crs: str | None
) -> _TileConfig:
    if tiles_crs is not None and tiles_crs not in _TILE_CRSS:
        raise InputError(
            f"tiles_crs={tiles_crs!r} is not supported; use one of {list(_TILE_CRSS)} "
            "(BD-09 Baidu tiles use their own projection and cannot be overlaid)"
        )
    if tiles is None:
        return _TileConfig(None, None, tiles_crs or "wgs84", "abc", 20, None, "none")
    if not isinstance(tiles, str):
        raise InputError(
            f"tiles must be a preset name, a URL template or None, not {type(tiles).__name__}"
        )
    key = tiles.strip().lower()
    if key in TILE_PRESETS:
        p = TILE_PRESETS[key]
        url, labels = p.url, p.labels_url
        if p.needs_key:
            if not tiles_key:
                raise InputError(
                    f"tiles={tiles!r} needs an API key; pass tiles_key='...' "
                    "(get one at https://console.tianditu.gov.cn/)"
                )
            url = url.replace("{key}", quote(tiles_key, safe=""))
            labels = labels.replace("{key}", quote(tiles_key, safe="")) if labels else None
        return _TileConfig(
            url, attr or p.attr, tiles_crs or p.crs, p.subdomains, p.max_zoom, labels, key
        )
    if "{z}" in tiles and "{x}" in tiles and ("{y}" in tiles or "{-y}" in tiles):
        if not attr:
            raise InputError(
                "a custom tiles URL needs an attribution; pass attr='&copy; <provider>' "
                "(the tile provider's terms require it)"
            )
        return _TileConfig(tiles, attr, tiles_crs or "wgs84", "abc", 20, None, "custom")
    raise InputError(
        f"unknown tiles preset {tiles!r}; use one of {sorted(TILE_PRESETS)}, None, "
        "or a URL template such as 'https://{s}.example.com/{z}/{x}/{y}.png' with attr=..."
    )


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


def _safe_json(obj: Any) -> str:
    """Compact UTF-8 JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


#: Geometry type codes of the compact encoding (see :func:`_encode_collection`).
_GEOM_CODES = {
    "Point": "T",
    "LineString": "L",
    "MultiLineString": "N",
    "Polygon": "P",
    "MultiPolygon": "M",
}

#: Turns :func:`_encode_collection` output back into GeoJSON in the browser.
_DECODER_JS = """<script>
function gridmapDecode(c) {
    var x = 0, y = 0;
    function line(a, close) {
        var out = [];
        for (var i = 0; i < a.length; i += 2) {
            x += a[i]; y += a[i + 1];
            out.push([x / 1e6, y / 1e6]);
        }
        if (close && out.length) out.push(out[0].slice());
        return out;
    }
    function rings(r) { return r.map(function (a) { return line(a, true); }); }
    function lines(r) { return r.map(function (a) { return line(a, false); }); }
    var types = {T: "Point", L: "LineString", N: "MultiLineString", P: "Polygon",
                 M: "MultiPolygon"};
    function geom(g) {
        if (g === null) return null;
        var t = g[0], a = g[1], co;
        if (t === "T") co = line(a, false)[0];
        else if (t === "L") co = line(a, false);
        else if (t === "N") co = lines(a);
        else if (t === "P") co = rings(a);
        else co = a.map(rings);
        return {type: types[t], coordinates: co};
    }
    var feats = [];
    for (var i = 0; i < c.g.length; i++) {
        var row = c.p[i], props = {};
        for (var k = 0; k < c.k.length; k++) {
            var d = c.d[c.k[k]], v = row[k];
            props[c.k[k]] = (d && v !== null) ? d[v] : v;
        }
        var f = {type: "Feature", properties: props, geometry: geom(c.g[i])};
        if (c.i !== null) f.id = c.i === 1 ? i : c.i[i];
        feats.push(f);
    }
    return {type: "FeatureCollection", features: feats};
}
</script>"""


def _encode_collection(data: dict[str, Any]) -> dict[str, Any]:
    """Encode a feature collection (see :func:`_collection`) compactly for the page.

    Coordinates (lon/lat) become integer micro-degrees, each vertex written as
    the difference from the previous one across the whole collection, and the
    closing vertex of rings is dropped: a building's ring takes ~40 bytes
    instead of ~130. Properties become rows under one key list; string columns
    with many repeats (grid codes of buildings) are written once in a table.
    ``gridmapDecode`` in the page rebuilds the same GeoJSON (to 1e-6°).
    """
    feats = data["features"]
    keys: list[str] = []
    for f in feats:
        for k in f["properties"]:
            if k not in keys:
                keys.append(k)
    rows = [[f["properties"].get(k) for k in keys] for f in feats]
    tables: dict[str, list[Any]] = {}
    for j, k in enumerate(keys):
        values = [r[j] for r in rows]
        if not all(v is None or isinstance(v, str) for v in values):
            continue
        uniq = list(dict.fromkeys(v for v in values if v is not None))
        if len(feats) > 1 and len(uniq) <= len(feats) // 2:
            index = {v: n for n, v in enumerate(uniq)}
            for r in rows:
                r[j] = None if r[j] is None else index[r[j]]
            tables[k] = uniq
    ids: Any = None
    if any("id" in f for f in feats):
        ids = [f.get("id") for f in feats]
        if ids == list(range(len(feats))):
            ids = 1
    geoms = np.array([f["geometry"] for f in feats], dtype=object)
    return {"k": keys, "d": tables, "p": rows, "i": ids, "g": _encode_geometries(geoms)}


def _encode_geometries(geoms: np.ndarray) -> list[Any]:
    """Delta-encode geometries in micro-degrees, in one vectorised pass (see above)."""
    out: list[Any] = [None] * len(geoms)
    present = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    if not present.any():
        return out
    sel = np.flatnonzero(present)
    types = [geoms[i].geom_type for i in sel]
    bad = sorted(set(types) - set(_GEOM_CODES))
    if bad:
        raise InputError(f"cannot draw {bad} on the map; pass polygons, lines or points")
    parts, part_of = shapely.get_parts(geoms[sel], return_index=True)
    polygonal = shapely.get_type_id(parts) == 3
    # rings of polygon parts (exterior first), the part itself for lines and points
    poly_k, line_k = np.flatnonzero(polygonal), np.flatnonzero(~polygonal)
    prings, pidx = shapely.get_rings(parts[poly_k], return_index=True)
    ring_part = np.concatenate([poly_k[pidx], line_k])
    order = np.argsort(ring_part, kind="stable")
    rings = np.concatenate([np.asarray(prings, dtype=object), parts[line_k]])[order]
    ring_part = ring_part[order]
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    counts = np.bincount(ring_of, minlength=len(rings))
    closed = polygonal[ring_part]
    last = np.cumsum(counts) - 1
    keep = np.ones(len(coords), dtype=bool)
    keep[last[closed & (counts > 1)]] = False  # the closing vertex is implied
    ints = np.rint(coords[keep] * 1e6).astype(np.int64)
    delta = np.diff(ints, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    flat = delta.ravel().tolist()
    kept = counts - (closed & (counts > 1))
    bounds = np.concatenate([[0], np.cumsum(kept)]) * 2
    ring_deltas = [flat[bounds[r] : bounds[r + 1]] for r in range(len(rings))]
    # reassemble: rings → parts → features
    part_rings: list[list[list[int]]] = [[] for _ in range(len(parts))]
    for r, k in enumerate(ring_part.tolist()):
        part_rings[k].append(ring_deltas[r])
    feat_parts: list[list[Any]] = [[] for _ in range(len(sel))]
    for k, f in enumerate(part_of.tolist()):
        feat_parts[f].append(part_rings[k] if polygonal[k] else part_rings[k][0])
    for n, (i, t) in enumerate(zip(sel.tolist(), types, strict=True)):
        ps = feat_parts[n]
        enc = ps if t.startswith("Multi") else ps[0]
        out[i] = [_GEOM_CODES[t], enc]
    return out


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


class _Labels(folium.map.Layer):
    """Permanent grid labels, written as one compact array of rows.

    Hidden below ``min_zoom``; the 3-digit sequence up to ``min_zoom + 2``; the
    full code from there on.
    """

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
        self._name = "GridLabels"
        self.rows = rows
        self.rows_js = _safe_json(rows)
        self.map_name = map_name
        self.min_zoom = int(min_zoom)
        self.full_zoom = int(min_zoom) + 2


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


def _swatch(color: str, text: str, *, outline: bool = False) -> str:
    style = (
        f"border:2px solid {color};background:none" if outline else f"background:{color};opacity:.8"
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


# --------------------------------------------------------------------------- geometry


def _check_plan(plan: Plan, name: str = "plan") -> tuple[gpd.GeoDataFrame, pyproj.CRS]:
    grids = getattr(plan, "grids", None)
    if not isinstance(grids, gpd.GeoDataFrame):
        raise InputError(f"{name} must be a gridmap Plan with a GeoDataFrame of grids")
    crs = grids.crs if grids.crs is not None else getattr(plan, "crs", None)
    if crs is None:
        raise CRSError(
            f"{name} has no CRS; set it with plan.replace(grids=plan.grids.set_crs(...), "
            "crs=...) using the projected CRS the grids were made in (e.g. 'EPSG:4549')"
        )
    missing = [c for c in ("grid_code", "households") if c not in grids.columns]
    if missing:
        raise LayerError(f"{name}.grids lacks column(s) {missing}; it has {list(grids.columns)}")
    if grids["grid_code"].isna().any():
        raise LayerError(f"{name}.grids has grids without grid_code; assign codes first")
    if grids.crs is None:
        grids = grids.set_crs(crs)
    return grids, pyproj.CRS.from_user_input(crs)


def _band(plan: Plan, band: tuple[float, float] | None) -> tuple[float, float]:
    if band is None:
        params = getattr(plan, "params", None) or {}
        band = (params.get("min_households", 200), params.get("max_households", 500))
    lo, hi = float(band[0]), float(band[1])
    if not lo <= hi:
        raise InputError(f"household band min={lo:g} > max={hi:g}; pass band=(min, max)")
    return lo, hi


def _simplify(
    geoms: np.ndarray, crs: pyproj.CRS, tolerance: float, *, coverage: bool
) -> np.ndarray:
    """Simplify in the layer's own CRS (tolerance in metres, or converted for degrees).

    With ``coverage=True`` the grids are simplified together so that neighbours
    keep one shared edge. Grids that are *nearly* a coverage (vertices a few
    nanometres apart across an edge, T-junctions, zero-width slits or rings
    that collapsed, slivers of overlap) are first rebuilt as an exact one (see
    :func:`_as_coverage`); only grids that really overlap or leave real gaps are
    simplified one by one, which is logged (the quality report is where such a
    plan is flagged, not the map).
    """
    if not tolerance or tolerance <= 0 or len(geoms) == 0:
        return geoms
    tol = tolerance / 111_320.0 if crs.is_geographic else tolerance
    if coverage:
        polys = np.array([g.geom_type in ("Polygon", "MultiPolygon") for g in geoms])
        if polys.all():
            exact = _as_coverage(geoms, tol, grid_size=1e-8 if crs.is_geographic else 1e-3)
            if exact is not None:
                return np.asarray(shapely.coverage_simplify(exact, tol))
        _log.warning(
            "%d grids do not form a coverage (they overlap or leave gaps wider than the %g m "
            "display tolerance); each grid is simplified on its own, so shared edges may not "
            "line up exactly on the map — the plan's quality report gives the overlap and gap "
            "areas",
            len(geoms),
            tolerance,
        )
    return np.asarray(shapely.simplify(geoms, tol, preserve_topology=True))


def _as_coverage(geoms: np.ndarray, tolerance: float, *, grid_size: float) -> np.ndarray | None:
    """Return the grids as an exact polygonal coverage, or None if they are far from one.

    A valid coverage is returned unchanged. Otherwise every grid is made valid
    (keeping its area), all boundaries are noded together on a ``grid_size``
    grid and polygonized; each face goes to the lowest-numbered grid that holds
    it (faces in no grid, i.e. gaps, are dropped) and each grid becomes the
    union of its faces. Faces of one polygonization share their edges exactly,
    so the result is always a coverage. It is used only if no grid changed by
    more than ``tolerance`` on average along its boundary (area of the
    symmetric difference ≤ ``tolerance`` × perimeter): repairs of numerical
    noise are accepted, real overlaps and gaps are not hidden.
    """
    if bool(shapely.coverage_is_valid(geoms)) and bool(shapely.is_valid(geoms).all()):
        return geoms
    valid = np.asarray(shapely.make_valid(geoms, method="structure", keep_collapsed=False))
    valid = np.array(
        [g if g.geom_type in ("Polygon", "MultiPolygon") else _polygonal(g) for g in valid],
        dtype=object,
    )
    lines = shapely.union_all(shapely.boundary(valid), grid_size=grid_size)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))))
    if len(faces) == 0:
        return None
    tree = shapely.STRtree(valid)
    fi, gi = tree.query(shapely.point_on_surface(faces), predicate="intersects")
    owner = np.full(len(faces), len(valid), dtype=np.int64)
    np.minimum.at(owner, fi, gi)
    order = np.argsort(owner, kind="stable")
    starts = np.searchsorted(owner[order], np.arange(len(valid) + 1))
    rebuilt = np.empty(len(valid), dtype=object)
    for k in range(len(valid)):
        mine = faces[order[starts[k] : starts[k + 1]]]
        if len(mine) == 0:
            return None  # a grid thinner than grid_size: not something to repair silently
        rebuilt[k] = mine[0] if len(mine) == 1 else shapely.coverage_union_all(mine)
    moved = shapely.area(shapely.symmetric_difference(rebuilt, valid))
    if not bool((moved <= tolerance * shapely.length(valid) + grid_size).all()):
        return None
    if not bool(shapely.coverage_is_valid(rebuilt)):  # pragma: no cover - faces always tile
        return None
    _log.info(
        "grids were not an exact coverage (unmatched vertices, slits or slivers); "
        "their shared edges were rebuilt for display (largest change %.3g m²)",
        float(moved.max()),
    )
    return rebuilt


def _polygonal(geom: Any) -> Any:
    """Return the polygonal part of a geometry collection (an empty polygon if none)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _gcj_shift(geoms: np.ndarray) -> np.ndarray:
    def shift(coords: np.ndarray) -> np.ndarray:
        lon, lat = transform(coords[:, 0], coords[:, 1], "wgs84", "gcj02", validate=False)
        return np.column_stack([lon, lat])

    return np.asarray(shapely.transform(geoms, shift))


def _to_display(geoms: Any, crs: pyproj.CRS, *, gcj: bool, decimals: int = 6) -> np.ndarray:
    """Reproject to WGS84 (then GCJ-02 if asked) and round coordinates."""
    arr = np.asarray(gpd.GeoSeries(np.asarray(geoms), crs=crs).to_crs(4326).array, dtype=object)
    if gcj:
        arr = _gcj_shift(arr)
    arr = shapely.transform(arr, lambda c: np.round(c, decimals))
    return np.asarray(shapely.remove_repeated_points(arr, 0.0))


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not np.isfinite(value) else value
    return value


def _collection(geoms: np.ndarray, props: pd.DataFrame, id_col: str | None) -> dict[str, Any]:
    cols = list(props.columns)
    features = []
    for geom, row in zip(geoms, props.itertuples(index=False, name=None), strict=True):
        rec = {c: _clean(v) for c, v in zip(cols, row, strict=True)}
        for c, v in rec.items():
            if isinstance(v, str):
                rec[c] = html.escape(v, quote=False)  # tooltips/popups use innerHTML
        feat: dict[str, Any] = {"type": "Feature"}
        if id_col is not None:
            feat["id"] = rec[id_col]
        feat["properties"] = rec
        feat["geometry"] = geom  # a shapely geometry: encoded by _GeoJsonLayer
        features.append(feat)
    return {"type": "FeatureCollection", "features": features}


def _bounds(geoms: np.ndarray) -> list[list[float]]:
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


def _adjacency_colours(grids: gpd.GeoDataFrame) -> dict[str, str]:
    """Greedy colouring so that touching grids get different colours (deterministic)."""
    codes = grids["grid_code"].astype(str).to_numpy()
    order = np.argsort(codes, kind="stable")
    left, right = grids.sindex.query(grids.geometry.to_numpy(), predicate="intersects")
    neighbours: dict[int, set[int]] = {}
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i != j:
            neighbours.setdefault(i, set()).add(j)
    colour: dict[int, int] = {}
    for i in order.tolist():
        used = {colour[j] for j in neighbours.get(i, ()) if j in colour}
        colour[i] = next(k for k in range(len(_CATEGORICAL) + len(used) + 1) if k not in used)
    return {codes[i]: _CATEGORICAL[k % len(_CATEGORICAL)] for i, k in colour.items()}


# --------------------------------------------------------------------------- the map


def _new_map(
    cfg: _TileConfig,
    geoms: np.ndarray,
    *,
    title: str,
    prefer_canvas: bool = False,
    assets: str = "cdn",
) -> folium.Map:
    m = folium.Map(
        location=None,
        tiles=None,
        control_scale=True,
        prefer_canvas=prefer_canvas,
        max_zoom=max(cfg.max_zoom, 19),
    )
    use_assets(m, assets)
    root = m.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(Element(f"<title>{_esc(title)}</title>"), name="gridmap_title")
    root.header.add_child(Element(_CSS), name="gridmap_css")
    root.header.add_child(Element(_DECODER_JS), name="gridmap_decode")
    if cfg.url is not None:
        folium.TileLayer(
            tiles=cfg.url,
            attr=cfg.attr,
            name=f"底图 Base map ({cfg.name})",
            subdomains=cfg.subdomains,
            max_zoom=max(cfg.max_zoom, 19),
            max_native_zoom=cfg.max_zoom,
            overlay=False,
            control=True,
        ).add_to(m)
        if cfg.labels_url is not None:
            folium.TileLayer(
                tiles=cfg.labels_url,
                attr=cfg.attr,
                name="注记 Map labels",
                subdomains=cfg.subdomains,
                max_zoom=max(cfg.max_zoom, 19),
                max_native_zoom=cfg.max_zoom,
                overlay=True,
                control=True,
            ).add_to(m)
    if len(geoms):
        m.fit_bounds(_bounds(geoms))
    else:
        m.location = [0.0, 0.0]
    return m


def _finish(m: folium.Map, *, search_layer: folium.GeoJson | None = None) -> folium.Map:
    if search_layer is not None:
        folium.plugins.Search(
            layer=search_layer,
            search_label="grid_code",
            geom_type="Polygon",
            placeholder="网格编码 Grid code",
            collapsed=False,
            search_zoom=17,
            position="topright",
            color="#e31a1c",
            weight=4,
        ).add_to(m)
        _SearchPopup(search_layer.get_name()).add_to(m)
    folium.plugins.Fullscreen(
        position="topleft", title="全屏 Fullscreen", title_cancel="退出全屏 Exit fullscreen"
    ).add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    return m


def _staff_table(plan: Plan) -> pd.DataFrame:
    """Return assignments as rows grid_code, role, name, phone (empty when unstaffed)."""
    a = getattr(plan, "assignments", None)
    cols = ["grid_code", "role", "name", "phone"]
    if a is None or len(a) == 0 or "grid_code" not in a.columns or "role" not in a.columns:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    out = pd.DataFrame({"grid_code": a["grid_code"].astype(object), "role": a["role"]})
    if "name" in a.columns:
        names = a["name"].astype(object)
        if "staff_id" in a.columns:
            names = names.where(names.notna(), a["staff_id"].astype(object))
        out["name"] = names
    else:
        out["name"] = a["staff_id"].astype(object) if "staff_id" in a.columns else None
    out["phone"] = a["phone"].astype(object) if "phone" in a.columns else None
    return out


def _chiefs(plan: Plan) -> dict[str, str]:
    s = _staff_table(plan)
    s = s[(s["role"] == "chief") & s["grid_code"].notna()]
    names = s["name"].astype(object).where(s["name"].notna(), _VACANT)
    return {str(k): "、".join(map(str, v)) for k, v in names.groupby(s["grid_code"].astype(str))}


_VACANT = "空缺 Vacant"


#: Per-grid report figures shown in popups, in this order (others follow, up to 10 in all).
_REPORT_ALIASES = {
    "polsby_popper": "紧凑度 Compactness (Polsby–Popper)",
    "in_band": "户数在带内 In band",
    "band_exempt": "社区总户数不足 Community below band",
    "n_parts": "部分数 Parts",
    "is_enclave": "飞地 Enclave",
    "enclave": "飞地 Enclave",
    "share_boundary_on_roads": "沿路边界占比 Boundary on roads",
    "n_split_buildings": "拆分楼栋 Split buildings",
    "stability": "稳定性 Stability",
    "area_m2": "面积 Area (m²)",
    "persons": "人口 Persons",
    "n_buildings": "楼栋 Buildings",
    "perimeter_m": "周长 Perimeter (m)",
}
_MAX_FIGURES = 10


def _report_figures(plan: Plan, codes: pd.Series) -> pd.DataFrame:
    """Return the quality figures of each grid (plan.report.grids), rounded, aligned to codes."""
    report = getattr(plan, "report", None)
    rg = getattr(report, "grids", None)
    if rg is None or len(rg) == 0 or "grid_code" not in rg.columns:
        return pd.DataFrame(index=range(len(codes)))
    rg = rg.drop_duplicates("grid_code")
    rg = rg.set_axis(rg["grid_code"].astype(str).to_numpy(), axis=0)
    shown = [
        c
        for c in rg.columns
        if c not in ("grid_code", "community_id", "name", "households", "boundary_desc")
        and (pd.api.types.is_numeric_dtype(rg[c]) or pd.api.types.is_bool_dtype(rg[c]))
        and bool(rg[c].notna().any())  # a figure no grid has (stability of a first plan)
    ]
    rank = {c: k for k, c in enumerate(_REPORT_ALIASES)}
    keep = sorted(shown, key=lambda c: rank.get(c, len(rank)))[:_MAX_FIGURES]
    out = rg.reindex(codes.astype(str).to_numpy())[keep].reset_index(drop=True)
    for c in keep:
        if pd.api.types.is_float_dtype(out[c]):
            big = out[c].abs().max(skipna=True) >= 10
            out[c] = out[c].round(0 if big else 3)
        out[c] = out[c].astype(object)
    return out.rename(columns={c: f"q_{c}" for c in keep})


def _alias(col: str) -> str:
    return _REPORT_ALIASES.get(col, col.replace("_", " "))


# --------------------------------------------------------------------------- plan map


def _grid_layer_data(
    plan: Plan,
    *,
    simplify_tolerance: float,
    gcj: bool,
) -> tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray]:
    """Return (grids in plan CRS, simplified projected geoms, display geoms)."""
    grids, crs = _check_plan(plan)
    simple = _simplify(grids.geometry.to_numpy(), crs, simplify_tolerance, coverage=True)
    return grids, simple, _to_display(simple, crs, gcj=gcj)


def _community_layers(
    m: folium.Map,
    grids: gpd.GeoDataFrame,
    simple: np.ndarray,
    layers: Layers | None,
    *,
    simplify_tolerance: float,
    gcj: bool,
) -> dict[str, str]:
    """Add community (and sub-district) boundaries; return community_id → name."""
    names: dict[str, str] = {}
    comm = getattr(layers, "communities", None) if layers is not None else None
    if comm is not None and len(comm):
        if comm.crs is None:
            raise CRSError("layers.communities has no CRS; validate layers first")
        ccrs = pyproj.CRS.from_user_input(comm.crs)
        if "name" in comm.columns:
            names = {
                str(k): str(v)
                for k, v in zip(comm["community_id"], comm["name"], strict=True)
                if pd.notna(v)
            }
        cgeoms = _simplify(comm.geometry.to_numpy(), ccrs, simplify_tolerance, coverage=False)
        props = pd.DataFrame(
            {
                "community_id": comm["community_id"].astype(object).to_numpy(),
                "name": [names.get(str(c), str(c)) for c in comm["community_id"]],
            }
        )
        street = comm["street_code"] if "street_code" in comm.columns else None
        if street is not None and street.notna().any():
            sub = comm.loc[street.notna()]
            streets = sub.geometry.groupby(sub["street_code"].astype(str)).agg(shapely.union_all)
            sgeoms = _simplify(streets.to_numpy(), ccrs, simplify_tolerance, coverage=False)
            sname = (
                sub.groupby(sub["street_code"].astype(str))["street"].first()
                if "street" in sub.columns
                else pd.Series(dtype=object)
            )
            sprops = pd.DataFrame(
                {
                    "street_code": streets.index.to_numpy(dtype=object),
                    "street": [_clean(sname.get(c, c)) for c in streets.index],
                }
            )
            _GeoJsonLayer(
                _collection(_to_display(sgeoms, ccrs, gcj=gcj), sprops, None),
                name="街道边界 Sub-district boundaries",
                style_function=lambda f: {
                    "color": "#6a3d9a",
                    "weight": 4,
                    "fill": False,
                    "dashArray": "8 4",
                },
                tooltip=folium.GeoJsonTooltip(
                    ["street", "street_code"], aliases=["街道 Sub-district", "代码 Code"]
                ),
            ).add_to(m)
    else:
        crs = pyproj.CRS.from_user_input(grids.crs)
        cid = grids["community_id"].astype(str) if "community_id" in grids.columns else None
        if cid is None:
            return names
        merged = (
            pd.Series(list(simple), index=cid.to_numpy())
            .groupby(level=0)
            .agg(lambda s: shapely.union_all(np.asarray(list(s))))
        )
        cgeoms = merged.to_numpy()
        ccrs = crs
        props = pd.DataFrame(
            {
                "community_id": merged.index.to_numpy(dtype=object),
                "name": merged.index.to_numpy(dtype=object),
            }
        )
    _GeoJsonLayer(
        _collection(_to_display(cgeoms, ccrs, gcj=gcj), props, None),
        name="社区边界 Community boundaries",
        style_function=lambda f: {"color": "#000000", "weight": 2.5, "fill": False},
        interactive=False,
    ).add_to(m)
    return names


def _building_grids(pb: pd.DataFrame | None) -> pd.Series:
    """Return building_id → its grid code(s), comma-joined and sorted when split."""
    if pb is None or len(pb) == 0:
        return pd.Series(dtype=object)
    pairs = (
        pd.DataFrame(
            {
                "building_id": pb["building_id"].astype(str).to_numpy(dtype=object),
                "grid_code": pb["grid_code"].to_numpy(dtype=object),
            }
        )
        .dropna()
        .astype({"grid_code": str})
        .drop_duplicates()
        .sort_values(["building_id", "grid_code"], kind="stable")
    )
    split = pairs["building_id"].duplicated(keep=False).to_numpy()
    one = pairs[~split].set_index("building_id")["grid_code"]
    many = pairs[split].groupby("building_id")["grid_code"].agg(",".join)
    return pd.concat([one, many]).astype(object)


def _buildings_layer(
    m: folium.Map,
    plan: Plan,
    layers: Layers,
    colours: dict[str, str],
    *,
    simplify_tolerance: float,
    gcj: bool,
) -> int:
    """Add the buildings coloured by grid (canvas-drawn when there are many); return how many."""
    b = layers.buildings
    if b is None or len(b) == 0:
        return 0
    if b.crs is None:
        raise CRSError("layers.buildings has no CRS; validate layers first")
    bcrs = pyproj.CRS.from_user_input(b.crs)
    by_building = _building_grids(plan.buildings)
    bid = b["building_id"].astype(str)
    code = bid.map(by_building)
    props = pd.DataFrame(
        {
            "building_id": bid.to_numpy(dtype=object),
            "grid_code": code.astype(object).where(code.notna(), None).to_numpy(),
            "households": (
                b["households"].astype(object).to_numpy() if "households" in b.columns else None
            ),
        }
    )
    geoms = _simplify(b.geometry.to_numpy(), bcrs, simplify_tolerance / 2, coverage=False)
    data = _collection(_to_display(geoms, bcrs, gcj=gcj), props, None)

    def style(f: dict[str, Any]) -> dict[str, Any]:
        c = colours.get(f["properties"]["grid_code"] or "", _GREY)
        return {"color": "#333333", "weight": 0.6, "fillColor": c, "fillOpacity": 0.8}

    for i, f in enumerate(data["features"]):
        f["id"] = i
    _GeoJsonLayer(
        data,
        name="楼栋 Buildings",
        style_function=style,
        tooltip=folium.GeoJsonTooltip(
            ["building_id", "grid_code", "households"],
            aliases=["楼栋 Building", "网格 Grid", "户数 Households"],
        ),
        show=len(b) <= _HIDE_BUILDINGS_ABOVE,
    ).add_to(m)
    return len(b)


#: With more buildings than this the whole map is drawn on one canvas (SVG slows down past
#: ~10^4 paths; one shared canvas keeps the hit-testing order: a building over its grid).
_CANVAS_ABOVE = 3000
#: More buildings than this start switched off (the map opens fast; the layer control shows them).
_HIDE_BUILDINGS_ABOVE = 20_000


def plan_map(
    plan: Plan,
    *,
    layers: Layers | None = None,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    show_buildings: bool = True,
    simplify_tolerance: float = 2.0,
    label_min_zoom: int = 15,
    band: tuple[float, float] | None = None,
    prefer_canvas: bool = False,
    staff_visible: bool = True,
    assets: str = "cdn",
) -> folium.Map:
    """Map a plan: grids coloured by households against the band, with labels and tooltips.

    Parameters
    ----------
    plan : Plan
        The plan, in any projected CRS.
    layers : Layers, optional
        Validated layers; gives community and sub-district (``street_code``)
        boundaries and the buildings layer. Without it, community boundaries are
        the union of each community's grids.
    tiles : str or None, default "osm"
        A preset of :data:`TILE_PRESETS`, a ``{z}/{x}/{y}`` URL template (needs
        ``attr``) or None for no base map.
    attr : str, optional
        Attribution of a custom tile URL (overrides a preset's).
    tiles_key : str, optional
        API key for presets that need one (天地图 Tianditu).
    tiles_crs : {"wgs84", "gcj02"}, optional
        Datum of the tiles; defaults to the preset's (GCJ-02 for AMap and
        Tencent, WGS84 otherwise). With GCJ-02 every overlay is shifted.
    show_buildings : bool, default True
        Add the (simplified) buildings of ``layers``, coloured by grid, as a
        layer that can be switched off. Above 3,000 buildings the map is
        drawn on a canvas; above 20,000 the layer starts switched off (the
        legend says so), so that a city-wide map opens and zooms quickly.
    simplify_tolerance : float, default 2.0
        Display simplification in metres (0 keeps every vertex). Grids are
        simplified as a coverage so neighbours keep their shared edges.
    label_min_zoom : int, default 15
        Grid-code labels show from this zoom level on.
    band : (float, float), optional
        Household band; defaults to ``plan.params`` min/max_households.
    prefer_canvas : bool, default False
        Draw with a canvas instead of SVG (automatic above 3,000 buildings).
    staff_visible : bool, default True
        Name the grid chief in tooltips. Pass False for roles that may not
        see staff: then no staff name is in the HTML.

    assets : str, default "cdn"
        Where the page gets Leaflet, jQuery and the plugins: ``"cdn"`` (public
        CDNs: small, needs the internet), ``"inline"`` (embedded, 270–310 kB
        more: the file works offline) or a URL prefix serving
        ``gridmap/static/vendor/`` (see :func:`gridmap.map_assets.use_assets`).

    Returns
    -------
    folium.Map

    Raises
    ------
    CRSError
        If the plan has no CRS.
    InputError
        For an unknown tile preset or a bad band.

    Examples
    --------
    >>> from gridmap.maps import _example_plan
    >>> m = plan_map(_example_plan())
    >>> "户数 Households" in m.get_root().render()
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    lo, hi = _band(plan, band)
    grids, simple, disp = _grid_layer_data(plan, simplify_tolerance=simplify_tolerance, gcj=cfg.gcj)
    blds = getattr(layers, "buildings", None) if show_buildings and layers is not None else None
    many = blds is not None and len(blds) > _CANVAS_ABOVE
    m = _new_map(
        cfg, disp, title="网格方案 Grid plan", prefer_canvas=prefer_canvas or many, assets=assets
    )

    codes = grids["grid_code"].astype(str)
    hh = pd.to_numeric(grids["households"], errors="coerce").to_numpy(dtype=float)
    fill = pd.Series([_band_colour(h, lo, hi) for h in hh])
    chiefs = _chiefs(plan) if staff_visible else {}
    props = pd.DataFrame(
        {
            "grid_code": codes.to_numpy(dtype=object),
            "name": (grids["name"].astype(object).to_numpy() if "name" in grids.columns else None),
            "households": [None if not np.isfinite(h) else int(h) for h in hh],
            "chief": [chiefs.get(c, "—") for c in codes] if staff_visible else None,
            "boundary_desc": (
                grids["boundary_desc"].astype(object).fillna("—").to_numpy()
                if "boundary_desc" in grids.columns
                else "—"
            ),
        }
    )
    props["_c"] = fill.to_numpy(dtype=object)
    figures = _report_figures(plan, codes)
    props = pd.concat([props, figures], axis=1)

    community_names = _community_layers(
        m, grids, simple, layers, simplify_tolerance=simplify_tolerance, gcj=cfg.gcj
    )
    if community_names and "community_id" in grids.columns:
        props.insert(
            2,
            "community",
            [community_names.get(str(c), str(c)) for c in grids["community_id"]],
        )
    data = _collection(disp, props, "grid_code")
    for f in data["features"]:
        del f["properties"]["_c"]
        if not staff_visible:
            del f["properties"]["chief"]
    colour_of = dict(zip(codes, fill, strict=True))

    tip_fields = ["grid_code", "name", "households"]
    tip_alias = ["网格编码 Grid code", "名称 Name", "户数 Households"]
    if staff_visible:
        tip_fields.append("chief")
        tip_alias.append("网格长 Grid chief")
    if "community" in props.columns:
        tip_fields.insert(2, "community")
        tip_alias.insert(2, "社区 Community")
    pop_fields = ["grid_code", "name", "households", "boundary_desc", *figures.columns]
    pop_alias = [
        "网格编码 Grid code",
        "名称 Name",
        "户数 Households",
        "四至 Boundaries",
        *(_alias(c[2:]) for c in figures.columns),
    ]
    grid_layer = _GeoJsonLayer(
        data,
        name="网格 Grids",
        style_function=lambda f: {
            "color": "#444444",
            "weight": 1.2,
            "fillColor": colour_of[f["id"]],
            "fillOpacity": 0.55,
        },
        highlight_function=lambda f: {"weight": 3, "color": "#000000", "fillOpacity": 0.7},
        tooltip=folium.GeoJsonTooltip(tip_fields, aliases=tip_alias, sticky=True),
        popup=folium.GeoJsonPopup(pop_fields, aliases=pop_alias, max_width=360),
    )
    grid_layer.add_to(m)
    n_buildings = 0
    if show_buildings and layers is not None and getattr(layers, "buildings", None) is not None:
        n_buildings = _buildings_layer(
            m,
            plan,
            layers,
            _adjacency_colours(grids),
            simplify_tolerance=simplify_tolerance,
            gcj=cfg.gcj,
        )
    _add_labels(
        m, grids, codes, plan_crs=_check_plan(plan)[1], gcj=cfg.gcj, min_zoom=label_min_zoom
    )
    counts = fill.value_counts()
    legend = _band_legend(lo, hi, counts)
    if n_buildings:
        legend += f"<div>楼栋按网格着色 Buildings coloured by grid · {n_buildings:,}</div>"
        if n_buildings > _HIDE_BUILDINGS_ABOVE:
            legend += "<div>（楼栋图层默认关闭 switch buildings on in the layer control）</div>"
    _HtmlControl(legend, css_class="gridmap-legend").add_to(m)
    return _finish(m, search_layer=grid_layer)


def _add_labels(
    m: folium.Map,
    grids: gpd.GeoDataFrame,
    codes: pd.Series,
    *,
    plan_crs: pyproj.CRS,
    gcj: bool,
    min_zoom: int,
    name: str = "网格编码 Grid codes",
) -> None:
    pts = _to_display(
        shapely.point_on_surface(grids.geometry.to_numpy()), plan_crs, gcj=gcj, decimals=6
    )
    rows = [
        [float(shapely.get_y(p)), float(shapely.get_x(p)), c, c[-3:] if len(c) > 6 else c]
        for p, c in zip(pts, codes.astype(str), strict=True)
    ]
    _Labels(rows, map_name=m.get_name(), min_zoom=min_zoom, name=name).add_to(m)


# --------------------------------------------------------------------------- incidents


def _locate(grids: gpd.GeoDataFrame, crs: pyproj.CRS, lon: np.ndarray, lat: np.ndarray) -> list:
    """Grid code holding each WGS84 point (smallest code on shared boundaries), or None."""
    tr = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    x, y = tr.transform(lon, lat)
    pts = shapely.points(np.asarray(x, float), np.asarray(y, float))
    qi, ti = grids.sindex.query(pts, predicate="intersects")
    codes = grids["grid_code"].astype(str).to_numpy()
    out: list[str | None] = [None] * len(pts)
    for i, j in zip(qi.tolist(), ti.tolist(), strict=True):
        c = codes[j]
        if out[i] is None or c < out[i]:
            out[i] = c
    return out


def _present(value: Any) -> bool:
    return value is not None and bool(pd.notna(value))


def _staff_html(rows: pd.DataFrame) -> str:
    if len(rows) == 0:
        return "<tr><td colspan=2>未配备人员 No staff assigned</td></tr>"
    out = []
    order = {"chief": 0, "worker": 1}
    rows = rows.assign(_o=rows["role"].map(order).fillna(2)).sort_values(
        ["_o", "name"], na_position="last"
    )
    for r in rows.itertuples(index=False):
        role = {"chief": "网格长 Grid chief", "worker": "网格员 Grid worker"}.get(
            str(r.role), _esc(r.role)
        )
        phone = f" ☎ {_esc(r.phone)}" if _present(r.phone) else ""
        name = _esc(r.name) if _present(r.name) else _VACANT
        out.append(f"<tr><td>{role}</td><td><b>{name}</b>{phone}</td></tr>")
    return "".join(out)


def incident_map(
    plan: Plan,
    lon: float,
    lat: float,
    *,
    grid_code: str | None = None,
    staff_visible: bool = True,
    coord_system: str = "wgs84",
    incident_id: str | None = None,
    description: str | None = None,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    simplify_tolerance: float = 2.0,
    assets: str = "cdn",
) -> folium.Map:
    """Map one incident: the marker, its grid with chief and workers, and the neighbouring grids.

    Parameters
    ----------
    plan : Plan
        The plan, in any projected CRS.
    lon, lat : float
        Incident position in ``coord_system`` (WGS84 by default).
    grid_code : str, optional
        The incident's grid, if already located; else found by point-in-polygon
        (the smallest code wins on a shared boundary).
    staff_visible : bool, default True
        Show the grid chief and workers with phone numbers. Pass False for
        roles that may not see staff: then no name or phone is in the HTML.
    coord_system : str, default "wgs84"
        CRS of ``lon``/``lat`` ("wgs84", "gcj02", "bd09", an EPSG code …).
    incident_id, description : str, optional
        Shown in the marker popup.
    tiles, attr, tiles_key, tiles_crs, simplify_tolerance
        As in :func:`plan_map`.

    assets : str, default "cdn"
        Where the page gets Leaflet, jQuery and the plugins: ``"cdn"`` (public
        CDNs: small, needs the internet), ``"inline"`` (embedded, 270–310 kB
        more: the file works offline) or a URL prefix serving
        ``gridmap/static/vendor/`` (see :func:`gridmap.map_assets.use_assets`).

    Returns
    -------
    folium.Map

    Raises
    ------
    CoordinateError
        If ``lon``/``lat`` are NaN, infinite or out of range.
    NotFoundError
        If ``grid_code`` is not a grid of the plan.

    Examples
    --------
    >>> from gridmap.maps import _example_plan
    >>> m = incident_map(_example_plan(), 118.781, 32.0495)
    >>> "网格 Grid: <b>320106001001001</b>" in m.get_root().render()
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    grids, crs = _check_plan(plan)
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError) as exc:
        raise CoordinateError(
            f"incident coordinate must be numbers, got lon={lon!r}, lat={lat!r}"
        ) from exc
    if not (np.isfinite(lon_f) and np.isfinite(lat_f)):
        raise CoordinateError(
            f"incident coordinate is not finite (lon={lon_f}, lat={lat_f}); pass the incident's "
            "longitude and latitude in degrees (WGS84 unless coord_system= says otherwise)"
        )
    wlon, wlat = transform(lon_f, lat_f, coord_system, "wgs84")
    check_lonlat(wlon, wlat)
    codes = grids["grid_code"].astype(str)
    if grid_code is None:
        grid_code = _locate(grids, crs, np.array([wlon]), np.array([wlat]))[0]
    elif str(grid_code) not in set(codes):
        raise NotFoundError(
            f"grid_code {grid_code!r} is not a grid of this plan; pass one of its grid codes "
            "or grid_code=None to locate the incident by coordinate"
        )
    grid_code = None if grid_code is None else str(grid_code)

    # the incident grid and its neighbours (sharing a boundary, within 1 m)
    if grid_code is not None:
        idx = int(np.flatnonzero(codes.to_numpy() == grid_code)[0])
        near = grids.sindex.query(grids.geometry.iloc[idx], predicate="dwithin", distance=1.0)
        near = sorted(set(near.tolist()) - {idx})
    else:
        idx = -1
        tr = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
        pt = shapely.Point(*tr.transform(wlon, wlat))
        near = sorted(grids.sindex.query(pt, predicate="dwithin", distance=500.0).tolist())
    keep = ([idx] if idx >= 0 else []) + near
    sub = grids.iloc[keep]
    simple = _simplify(sub.geometry.to_numpy(), crs, simplify_tolerance, coverage=True)
    disp = _to_display(simple, crs, gcj=cfg.gcj)
    ilon, ilat = (
        transform(wlon, wlat, "wgs84", "gcj02", validate=False) if cfg.gcj else (wlon, wlat)
    )
    ilon, ilat = round(float(ilon), 6), round(float(ilat), 6)
    marker_geom = np.array([shapely.Point(ilon, ilat)])
    m = _new_map(
        cfg,
        np.concatenate([disp, marker_geom]) if len(disp) else marker_geom,
        title="事件定位 Incident",
        assets=assets,
    )

    staff = _staff_table(plan)
    sub_codes = sub["grid_code"].astype(str)
    props = pd.DataFrame(
        {
            "grid_code": sub_codes.to_numpy(dtype=object),
            "name": sub["name"].astype(object).to_numpy() if "name" in sub.columns else None,
            "households": pd.to_numeric(sub["households"], errors="coerce")
            .astype(object)
            .to_numpy(),
        }
    )
    fields = ["grid_code", "name", "households"]
    aliases = ["网格编码 Grid code", "名称 Name", "户数 Households"]
    if staff_visible:
        chiefs = _chiefs(plan)
        props["chief"] = [chiefs.get(c, "—") for c in sub_codes]
        fields.append("chief")
        aliases.append("网格长 Grid chief")
    if "boundary_desc" in sub.columns:
        props["boundary_desc"] = sub["boundary_desc"].astype(object).fillna("—").to_numpy()
        fields.append("boundary_desc")
        aliases.append("四至 Boundaries")
    n_main = 1 if idx >= 0 else 0
    if n_main:
        _GeoJsonLayer(
            _collection(disp[:1], props.iloc[:1], "grid_code"),
            name="事发网格 Incident grid",
            style_function=lambda f: {
                "color": "#b2182b",
                "weight": 4,
                "fillColor": "#ef8a62",
                "fillOpacity": 0.35,
            },
            tooltip=folium.GeoJsonTooltip(fields, aliases=aliases, sticky=True),
            popup=folium.GeoJsonPopup(fields, aliases=aliases, max_width=360),
        ).add_to(m)
    if len(keep) > n_main:
        _GeoJsonLayer(
            _collection(disp[n_main:], props.iloc[n_main:], "grid_code"),
            name="相邻网格 Neighbouring grids",
            style_function=lambda f: {
                "color": "#2166ac",
                "weight": 1.5,
                "dashArray": "5 4",
                "fillColor": "#d1e5f0",
                "fillOpacity": 0.25,
            },
            tooltip=folium.GeoJsonTooltip(fields, aliases=aliases, sticky=True),
            popup=folium.GeoJsonPopup(fields, aliases=aliases, max_width=360),
        ).add_to(m)
    if len(keep):
        _add_labels(m, sub, sub_codes, plan_crs=crs, gcj=cfg.gcj, min_zoom=0)

    # incident marker and info panel
    head = "<h4>事件 Incident" + (f" {_esc(incident_id)}" if incident_id else "") + "</h4>"
    lines = [head]
    if description:
        lines.append(f"<div>{_esc(description)}</div>")
    lines.append(f"<div>经纬度 Lon/lat (WGS84): {wlon:.6f}, {wlat:.6f}</div>")
    if grid_code is None:
        lines.append("<div><b>不在任何网格内 Outside every grid</b></div>")
    else:
        gname = grids["name"].iloc[idx] if "name" in grids.columns else None
        lines.append(
            f"<div>网格 Grid: <b>{_esc(grid_code)}</b> {_esc(gname if pd.notna(gname) else '')}"
            "</div>"
        )
        if staff_visible:
            rows = staff[staff["grid_code"].astype(str) == grid_code]
            lines.append(f"<table>{_staff_html(rows)}</table>")
        else:
            lines.append("<div><i></i>人员信息不可见 Staff hidden for your role</div>")
    info = "".join(lines)
    folium.Marker(
        [ilat, ilon],
        popup=folium.Popup(info, max_width=360),
        tooltip="事件 Incident",
    ).add_to(m)
    _HtmlControl(info, position="bottomright", css_class="gridmap-info").add_to(m)
    return _finish(m)


def incidents_map(
    plan: Plan,
    incidents: pd.DataFrame,
    *,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    simplify_tolerance: float = 2.0,
    assets: str = "cdn",
) -> folium.Map:
    """Map many incidents, clustered and coloured by grid, over the plan's grids.

    Parameters
    ----------
    plan : Plan
        The plan, in any projected CRS.
    incidents : pandas.DataFrame
        Columns ``id``, ``lon``, ``lat`` (WGS84 degrees) and ``grid_code``
        (null for incidents outside every grid; located here when the column
        is missing). Every row is drawn.
    tiles, attr, tiles_key, tiles_crs, simplify_tolerance
        As in :func:`plan_map`.

    assets : str, default "cdn"
        Where the page gets Leaflet, jQuery and the plugins: ``"cdn"`` (public
        CDNs: small, needs the internet), ``"inline"`` (embedded, 270–310 kB
        more: the file works offline) or a URL prefix serving
        ``gridmap/static/vendor/`` (see :func:`gridmap.map_assets.use_assets`).

    Returns
    -------
    folium.Map

    Raises
    ------
    LayerError
        If a column is missing.
    CoordinateError
        If any ``lon``/``lat`` is NaN or out of range (the message lists rows).

    Examples
    --------
    >>> import pandas as pd
    >>> from gridmap.maps import _example_plan
    >>> df = pd.DataFrame({"id": ["a", "b"], "lon": [118.7805, 118.781], "lat": [32.0505, 32.05]})
    >>> m = incidents_map(_example_plan(), df)
    >>> "事件 Incidents" in m.get_root().render()
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    grids, crs = _check_plan(plan)
    missing = [c for c in ("id", "lon", "lat") if c not in incidents.columns]
    if missing:
        raise LayerError(
            f"incidents lacks column(s) {missing}; it has {list(incidents.columns)}. "
            "Pass a DataFrame with id, lon, lat (WGS84) and grid_code"
        )
    lon = pd.to_numeric(incidents["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(incidents["lat"], errors="coerce").to_numpy(dtype=float)
    try:
        check_lonlat(lon, lat)
    except CoordinateError as exc:
        bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
        ids = incidents["id"].iloc[np.flatnonzero(bad)[:5]].tolist()
        raise CoordinateError(f"incidents: {exc} (incident ids {ids})") from exc
    if "grid_code" in incidents.columns:
        inc_codes = [None if pd.isna(c) else str(c) for c in incidents["grid_code"]]
    else:
        inc_codes = _locate(grids, crs, lon, lat)
    codes = grids["grid_code"].astype(str)
    colours = _adjacency_colours(grids)
    counts = pd.Series([c for c in inc_codes if c is not None], dtype=object).value_counts()

    simple = _simplify(grids.geometry.to_numpy(), crs, simplify_tolerance, coverage=True)
    disp = _to_display(simple, crs, gcj=cfg.gcj)
    if cfg.gcj:
        plon, plat = transform(lon, lat, "wgs84", "gcj02", validate=False)
    else:
        plon, plat = lon, lat
    plon, plat = np.round(plon, 6), np.round(plat, 6)
    pts = shapely.points(plon, plat)
    m = _new_map(cfg, np.concatenate([disp, pts]), title="事件分布 Incidents", assets=assets)

    props = pd.DataFrame(
        {
            "grid_code": codes.to_numpy(dtype=object),
            "name": grids["name"].astype(object).to_numpy() if "name" in grids.columns else None,
            "incidents": [int(counts.get(c, 0)) for c in codes],
        }
    )
    _GeoJsonLayer(
        _collection(disp, props, "grid_code"),
        name="网格 Grids",
        style_function=lambda f: {
            "color": colours.get(f["id"], _GREY),
            "weight": 2,
            "fillColor": colours.get(f["id"], _GREY),
            "fillOpacity": 0.12,
        },
        tooltip=folium.GeoJsonTooltip(
            ["grid_code", "name", "incidents"],
            aliases=["网格编码 Grid code", "名称 Name", "事件数 Incidents"],
        ),
    ).add_to(m)
    rows = [
        [float(y), float(x), colours.get(c, _GREY) if c else _GREY, str(i), c or "—"]
        for y, x, c, i in zip(plat, plon, inc_codes, incidents["id"], strict=True)
    ]
    callback = """function (row) {
        var m = L.circleMarker(new L.LatLng(row[0], row[1]), {
            radius: 7, color: "#222", weight: 1, fillColor: row[2], fillOpacity: 0.9});
        var box = document.createElement("div");
        var a = document.createElement("b"); a.textContent = "事件 Incident " + row[3];
        var b = document.createElement("div"); b.textContent = "网格 Grid: " + row[4];
        box.appendChild(a); box.appendChild(b);
        m.bindPopup(box);
        m.feature = {properties: {id: row[3], grid_code: row[4]}};
        return m;
    }"""
    folium.plugins.FastMarkerCluster(rows, callback=callback, name="事件 Incidents").add_to(m)
    _add_labels(m, grids, codes, plan_crs=crs, gcj=cfg.gcj, min_zoom=15)
    n_out = sum(c is None for c in inc_codes)
    legend = (
        f"<h4>事件 Incidents: {len(rows)}</h4>"
        f"<div>按网格着色 Coloured by grid · 涉及网格 Grids: {int((counts > 0).sum())}</div>"
        + (_swatch(_GREY, f"不在网格内 Outside every grid · {n_out}") if n_out else "")
    )
    _HtmlControl(legend, css_class="gridmap-legend").add_to(m)
    return _finish(m)


# --------------------------------------------------------------------------- diff


def plan_diff(plan_a: Plan, plan_b: Plan, *, area_tolerance: float = 1.0) -> pd.DataFrame:
    """Compare two plans grid by grid.

    Parameters
    ----------
    plan_a, plan_b : Plan
        The old and the new plan (any projected CRSs; ``plan_b`` is compared in
        ``plan_a``'s CRS).
    area_tolerance : float, default 1.0
        A grid's geometry counts as changed when the area of the symmetric
        difference exceeds this many square metres.

    Returns
    -------
    pandas.DataFrame
        One row per grid code in either plan, sorted by code: ``grid_code``,
        ``status`` ("added", "removed", "changed", "unchanged"),
        ``geometry_changed``, ``households_changed`` (bool),
        ``households_a``, ``households_b`` and ``changed_area_m2``.

    Examples
    --------
    >>> from gridmap.maps import _example_plan
    >>> a = _example_plan()
    >>> plan_diff(a, a)["status"].tolist()
    ['unchanged', 'unchanged']
    """
    ga, crs_a = _check_plan(plan_a, "plan_a")
    gb, _ = _check_plan(plan_b, "plan_b")
    gb = gb.to_crs(crs_a)
    a = ga.set_index(ga["grid_code"].astype(str))
    b = gb.set_index(gb["grid_code"].astype(str))
    for name, frame in (("plan_a", a), ("plan_b", b)):
        if frame.index.has_duplicates:
            dup = frame.index[frame.index.duplicated()].unique().tolist()[:5]
            raise LayerError(f"{name} has duplicate grid codes {dup}; codes must be unique")
    all_codes = sorted(set(a.index) | set(b.index))
    rows = []
    for code in all_codes:
        in_a, in_b = code in a.index, code in b.index
        ha = _clean(a.at[code, "households"]) if in_a else None
        hb = _clean(b.at[code, "households"]) if in_b else None
        if in_a and in_b:
            ga_, gb_ = a.at[code, "geometry"], b.at[code, "geometry"]
            area = float(shapely.area(shapely.symmetric_difference(ga_, gb_)))
            geo = area > area_tolerance
            hh = ha != hb
            status = "changed" if geo or hh else "unchanged"
        else:
            area = float((a.at[code, "geometry"] if in_a else b.at[code, "geometry"]).area)
            geo, hh = True, True
            status = "removed" if in_a else "added"
        rows.append(
            {
                "grid_code": code,
                "status": status,
                "geometry_changed": geo,
                "households_changed": hh,
                "households_a": ha,
                "households_b": hb,
                "changed_area_m2": round(area, 1),
            }
        )
    cols = [
        "grid_code",
        "status",
        "geometry_changed",
        "households_changed",
        "households_a",
        "households_b",
        "changed_area_m2",
    ]
    out = pd.DataFrame(rows, columns=cols)
    for c in ("households_a", "households_b"):
        vals = pd.to_numeric(out[c], errors="coerce")
        if bool(((vals.dropna() % 1) == 0).all()):
            out[c] = vals.astype("Int64")
    return out


def moved_buildings(plan_a: Plan, plan_b: Plan) -> pd.DataFrame:
    """List the buildings whose grid differs between two plans.

    A building split over several grids is compared by its set of grids; a
    building present in only one plan counts as moved (to or from nothing).

    Parameters
    ----------
    plan_a, plan_b : Plan
        The old and the new plan.

    Returns
    -------
    pandas.DataFrame
        ``building_id``, ``grid_a``, ``grid_b`` (comma-joined codes, None when
        absent), sorted by building id.

    Examples
    --------
    >>> from gridmap.maps import _example_plan
    >>> a = _example_plan()
    >>> len(moved_buildings(a, a))
    0
    """
    sa, sb = _building_grids(plan_a.buildings), _building_grids(plan_b.buildings)
    ids = sorted(set(sa.index) | set(sb.index))
    rows = []
    for bid in ids:
        ca, cb = sa.get(bid), sb.get(bid)
        if ca != cb:
            rows.append({"building_id": bid, "grid_a": ca, "grid_b": cb})
    return pd.DataFrame(rows, columns=["building_id", "grid_a", "grid_b"])


_STATUS_STYLE = {
    "added": ("#1a9850", "新增 Added"),
    "removed": ("#d73027", "删除 Removed"),
    "changed": ("#fdae61", "改变 Changed"),
    "unchanged": ("#e0e0e0", "未变 Unchanged"),
}


def diff_map(
    plan_a: Plan,
    plan_b: Plan,
    *,
    layers: Layers | None = None,
    area_tolerance: float = 1.0,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    simplify_tolerance: float = 2.0,
    assets: str = "cdn",
) -> folium.Map:
    """Overlay two plans, highlighting changed grids and moved buildings.

    Grids of ``plan_b`` are coloured by status (added, changed, unchanged);
    grids only in ``plan_a`` are drawn as removed; ``plan_a``'s boundaries are
    a dashed overlay. Moved buildings (:func:`moved_buildings`) are drawn from
    ``layers.buildings`` when given; otherwise each grid's tooltip counts the
    buildings that moved in and out.

    Parameters
    ----------
    plan_a, plan_b : Plan
        The old and the new plan.
    layers : Layers, optional
        For the building footprints of moved buildings.
    area_tolerance : float, default 1.0
        See :func:`plan_diff`.
    tiles, attr, tiles_key, tiles_crs, simplify_tolerance
        As in :func:`plan_map`.

    assets : str, default "cdn"
        Where the page gets Leaflet, jQuery and the plugins: ``"cdn"`` (public
        CDNs: small, needs the internet), ``"inline"`` (embedded, 270–310 kB
        more: the file works offline) or a URL prefix serving
        ``gridmap/static/vendor/`` (see :func:`gridmap.map_assets.use_assets`).

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> from gridmap.maps import _example_plan
    >>> m = diff_map(_example_plan(), _example_plan())
    >>> "未变 Unchanged" in m.get_root().render()
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    diff = plan_diff(plan_a, plan_b, area_tolerance=area_tolerance).set_index("grid_code")
    moved = moved_buildings(plan_a, plan_b)
    ga, crs_a = _check_plan(plan_a, "plan_a")
    gb, crs_b = _check_plan(plan_b, "plan_b")
    disp_a = _to_display(
        _simplify(ga.geometry.to_numpy(), crs_a, simplify_tolerance, coverage=True),
        crs_a,
        gcj=cfg.gcj,
    )
    disp_b = _to_display(
        _simplify(gb.geometry.to_numpy(), crs_b, simplify_tolerance, coverage=True),
        crs_b,
        gcj=cfg.gcj,
    )
    m = _new_map(
        cfg, np.concatenate([disp_a, disp_b]), title="方案对比 Plan comparison", assets=assets
    )

    def count(col: str) -> pd.Series:
        parts = moved[col].dropna().str.split(",").explode()
        return parts.value_counts()

    moved_out, moved_in = count("grid_a"), count("grid_b")

    def props_for(grids: gpd.GeoDataFrame) -> pd.DataFrame:
        codes = grids["grid_code"].astype(str)
        d = diff.loc[codes.to_numpy()]
        reasons = []
        for r in d.itertuples():
            if r.status in ("added", "removed"):
                reasons.append(_STATUS_STYLE[r.status][1])
                continue
            bits = []
            if r.geometry_changed:
                bits.append(f"边界 Boundary (Δ {r.changed_area_m2:g} m²)")
            if r.households_changed:
                bits.append(f"户数 Households {r.households_a} → {r.households_b}")
            reasons.append("; ".join(bits) or "—")
        return pd.DataFrame(
            {
                "grid_code": codes.to_numpy(dtype=object),
                "status": d["status"].to_numpy(dtype=object),
                "change": reasons,
                "households_a": d["households_a"].astype(object).to_numpy(),
                "households_b": d["households_b"].astype(object).to_numpy(),
                "moved_in": [int(moved_in.get(c, 0)) for c in codes],
                "moved_out": [int(moved_out.get(c, 0)) for c in codes],
            }
        )

    fields = [
        "grid_code",
        "status",
        "change",
        "households_a",
        "households_b",
        "moved_in",
        "moved_out",
    ]
    aliases = [
        "网格编码 Grid code",
        "状态 Status",
        "变化 Change",
        "原户数 Households (A)",
        "新户数 Households (B)",
        "迁入楼栋 Buildings in",
        "迁出楼栋 Buildings out",
    ]

    def style(f: dict[str, Any]) -> dict[str, Any]:
        colour = _STATUS_STYLE[f["properties"]["status"]][0]
        return {"color": "#555555", "weight": 1, "fillColor": colour, "fillOpacity": 0.6}

    pb = props_for(gb)
    _GeoJsonLayer(
        _collection(disp_b, pb, "grid_code"),
        name="方案B网格 Plan B grids",
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields, aliases=aliases, sticky=True),
        popup=folium.GeoJsonPopup(fields, aliases=aliases),
    ).add_to(m)
    removed = diff.index[diff["status"] == "removed"]
    if len(removed):
        mask = ga["grid_code"].astype(str).isin(removed).to_numpy()
        _GeoJsonLayer(
            _collection(disp_a[mask], props_for(ga[mask]), "grid_code"),
            name="删除的网格 Removed grids",
            style_function=lambda f: {
                "color": "#d73027",
                "weight": 2,
                "dashArray": "4 3",
                "fillColor": "#d73027",
                "fillOpacity": 0.35,
            },
            tooltip=folium.GeoJsonTooltip(fields, aliases=aliases, sticky=True),
        ).add_to(m)
    _GeoJsonLayer(
        _collection(
            disp_a,
            pd.DataFrame({"grid_code": ga["grid_code"].astype(str).to_numpy(dtype=object)}),
            None,
        ),
        name="方案A边界 Plan A boundaries",
        style_function=lambda f: {
            "color": "#000000",
            "weight": 1.5,
            "dashArray": "6 4",
            "fill": False,
        },
        interactive=False,
    ).add_to(m)
    n_moved_drawn = 0
    bl = getattr(layers, "buildings", None) if layers is not None else None
    if bl is not None and len(moved):
        if bl.crs is None:
            raise CRSError("layers.buildings has no CRS; validate layers first")
        bcrs = pyproj.CRS.from_user_input(bl.crs)
        sel = bl[bl["building_id"].astype(str).isin(moved["building_id"])]
        if len(sel):
            mv = moved.set_index("building_id")
            bids = sel["building_id"].astype(str)
            props = pd.DataFrame(
                {
                    "building_id": bids.to_numpy(dtype=object),
                    "grid_a": mv.loc[bids.to_numpy(), "grid_a"].fillna("—").to_numpy(dtype=object),
                    "grid_b": mv.loc[bids.to_numpy(), "grid_b"].fillna("—").to_numpy(dtype=object),
                }
            )
            geoms = _simplify(sel.geometry.to_numpy(), bcrs, simplify_tolerance / 2, coverage=False)
            _GeoJsonLayer(
                _collection(_to_display(geoms, bcrs, gcj=cfg.gcj), props, None),
                name="迁移楼栋 Moved buildings",
                style_function=lambda f: {
                    "color": "#40004b",
                    "weight": 1.5,
                    "fillColor": "#9970ab",
                    "fillOpacity": 0.9,
                },
                tooltip=folium.GeoJsonTooltip(
                    ["building_id", "grid_a", "grid_b"],
                    aliases=["楼栋 Building", "原网格 Grid (A)", "新网格 Grid (B)"],
                ),
            ).add_to(m)
            n_moved_drawn = len(sel)
    _add_labels(m, gb, gb["grid_code"].astype(str), plan_crs=crs_b, gcj=cfg.gcj, min_zoom=15)
    counts = diff["status"].value_counts()
    legend = ["<h4>方案对比 Plan A → B</h4>"]
    for key, (colour, label) in _STATUS_STYLE.items():
        legend.append(_swatch(colour, f"{label} · {int(counts.get(key, 0))}"))
    legend.append(_swatch("#000000", "方案A边界 Plan A boundaries", outline=True))
    legend.append(
        _swatch("#9970ab", f"迁移楼栋 Moved buildings · {len(moved)}")
        + (
            ""
            if n_moved_drawn == len(moved)
            else f"<div>(地图上 drawn: {n_moved_drawn}; 其余见网格提示 rest counted per grid)</div>"
        )
    )
    _HtmlControl("".join(legend), css_class="gridmap-legend").add_to(m)
    return _finish(m)


# --------------------------------------------------------------------------- quality


def _enclosing(grids: gpd.GeoDataFrame) -> list[str | None]:
    """Code of the grid that encloses each grid (lies in one of its holes), or None."""
    geoms = grids.geometry.to_numpy()
    codes = grids["grid_code"].astype(str).to_numpy()
    filled = np.array(
        [
            shapely.Polygon(g.exterior)
            if g.geom_type == "Polygon"
            else shapely.MultiPolygon([shapely.Polygon(p.exterior) for p in g.geoms])
            if g.geom_type == "MultiPolygon"
            else g
            for g in geoms
        ],
        dtype=object,
    )
    tree = shapely.STRtree(filled)
    qi, ti = tree.query(geoms, predicate="within")
    out: list[str | None] = [None] * len(geoms)
    for i, j in zip(qi.tolist(), ti.tolist(), strict=True):
        if i != j and geoms[j].geom_type in ("Polygon", "MultiPolygon"):
            holes = (
                shapely.get_num_interior_rings(geoms[j]) if geoms[j].geom_type == "Polygon" else 1
            )
            if holes and (out[i] is None or codes[j] < out[i]):
                out[i] = codes[j]
    return out


def _band_exempt(plan: Plan) -> set[str]:
    """Return the codes of grids the report marks ``band_exempt`` (community below the band)."""
    rg = getattr(getattr(plan, "report", None), "grids", None)
    if rg is None or "band_exempt" not in rg.columns or "grid_code" not in rg.columns:
        return set()
    flag = rg["band_exempt"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return set(rg.loc[flag, "grid_code"].astype(str))


def quality_flags(
    plan: Plan, *, min_compactness: float = 0.3, band: tuple[float, float] | None = None
) -> pd.DataFrame:
    """Check every grid: household band, contiguity (parts, enclave) and compactness.

    Figures are computed from the grid geometry in the plan's CRS, so the
    flags hold for any plan, with or without a quality report.

    Parameters
    ----------
    plan : Plan
        The plan.
    min_compactness : float, default 0.3
        Polsby–Popper 4πA/P² below this fails.
    band : (float, float), optional
        Household band; defaults to ``plan.params`` min/max_households.

    Returns
    -------
    pandas.DataFrame
        One row per grid in plan order: ``grid_code``, ``households``,
        ``n_parts``, ``enclosed_by``, ``polsby_popper``, bool columns
        ``below_band``, ``above_band``, ``not_contiguous``, ``enclave``,
        ``not_compact``, ``failed`` and ``reasons`` (bilingual text, "" when
        the grid passes).

    Examples
    --------
    >>> from gridmap.maps import _example_plan
    >>> quality_flags(_example_plan())["failed"].tolist()
    [False, False]
    """
    grids, crs = _check_plan(plan)
    if crs.is_geographic:
        raise CRSError(
            f"plan CRS {crs.name!r} is geographic; quality figures need metres — "
            "reproject the plan to a projected CRS (gridmap.crs.local_crs)"
        )
    lo, hi = _band(plan, band)
    geoms = grids.geometry.to_numpy()
    hh = pd.to_numeric(grids["households"], errors="coerce").to_numpy(dtype=float)
    n_parts = np.asarray(shapely.get_num_geometries(geoms), dtype=int)
    perim = np.asarray(shapely.length(geoms), dtype=float)
    area = np.asarray(shapely.area(geoms), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perim > 0, 4 * np.pi * area / perim**2, 0.0)
    enc = _enclosing(grids)
    below = ~(hh >= lo)
    above = hh > hi
    split = n_parts > 1
    enclave = np.array([e is not None for e in enc])
    loose = pp < min_compactness
    exempt = _band_exempt(plan)
    codes = grids["grid_code"].astype(str).to_numpy()
    reasons = []
    for i in range(len(grids)):
        r = []
        if below[i]:
            note = "; 社区总户数不足 whole community below band" if codes[i] in exempt else ""
            r.append(f"户数低于下限 Below band ({hh[i]:g} < {lo:g}{note})")
        if above[i]:
            r.append(f"户数超过上限 Above band ({hh[i]:g} > {hi:g})")
        if split[i]:
            r.append(f"不连续 Not contiguous ({n_parts[i]} parts)")
        if enclave[i]:
            r.append(f"飞地 Enclave (inside {enc[i]})")
        if loose[i]:
            r.append(f"不紧凑 Not compact (PP {pp[i]:.2f} < {min_compactness:g})")
        reasons.append("; ".join(r))
    return pd.DataFrame(
        {
            "grid_code": codes.astype(object),
            "households": hh,
            "n_parts": n_parts,
            "enclosed_by": pd.Series(enc, dtype=object).to_numpy(),
            "polsby_popper": np.round(pp, 4),
            "below_band": below,
            "above_band": above,
            "not_contiguous": split,
            "enclave": enclave,
            "not_compact": loose,
            "failed": below | above | split | enclave | loose,
            "reasons": reasons,
        }
    )


_QUALITY_STYLE = (
    ("below_band", _BELOW, "户数低于下限 Below band"),
    ("above_band", _ABOVE, "户数超过上限 Above band"),
    ("not_contiguous", "#762a83", "不连续 Not contiguous"),
    ("enclave", "#c51b7d", "飞地 Enclave"),
    ("not_compact", "#fdb863", "不紧凑 Not compact"),
)


def quality_map(
    plan: Plan,
    *,
    min_compactness: float = 0.3,
    band: tuple[float, float] | None = None,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    simplify_tolerance: float = 2.0,
    assets: str = "cdn",
) -> folium.Map:
    """Map the grids that fail a quality check, with the reason.

    Checks are those of :func:`quality_flags`; a failing grid is coloured by
    its first failed check (band, contiguity, enclave, compactness) and lists
    every reason in its tooltip and popup. Passing grids are light grey.

    Parameters
    ----------
    plan : Plan
        The plan.
    min_compactness : float, default 0.3
        Polsby–Popper threshold.
    band : (float, float), optional
        Household band; defaults to ``plan.params``.
    tiles, attr, tiles_key, tiles_crs, simplify_tolerance
        As in :func:`plan_map`.

    assets : str, default "cdn"
        Where the page gets Leaflet, jQuery and the plugins: ``"cdn"`` (public
        CDNs: small, needs the internet), ``"inline"`` (embedded, 270–310 kB
        more: the file works offline) or a URL prefix serving
        ``gridmap/static/vendor/`` (see :func:`gridmap.map_assets.use_assets`).

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> from gridmap.maps import _example_plan
    >>> m = quality_map(_example_plan())
    >>> "通过 Passed · 2" in m.get_root().render()
    True
    """
    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    flags = quality_flags(plan, min_compactness=min_compactness, band=band)
    grids, simple, disp = _grid_layer_data(plan, simplify_tolerance=simplify_tolerance, gcj=cfg.gcj)
    m = _new_map(cfg, disp, title="网格质量 Grid quality", assets=assets)
    colour = []
    for r in flags.itertuples(index=False):
        c = next((col for key, col, _ in _QUALITY_STYLE if getattr(r, key)), "#f0f0f0")
        colour.append(c)
    colour_of = dict(zip(flags["grid_code"], colour, strict=True))
    props = pd.DataFrame(
        {
            "grid_code": flags["grid_code"].to_numpy(dtype=object),
            "name": grids["name"].astype(object).to_numpy() if "name" in grids.columns else None,
            "households": [None if not np.isfinite(h) else int(h) for h in flags["households"]],
            "polsby_popper": flags["polsby_popper"].round(3).to_numpy(dtype=object),
            "failed": flags["failed"].to_numpy(dtype=object),
            "reasons": [r or "通过 Passed" for r in flags["reasons"]],
        }
    )
    fields = ["grid_code", "name", "households", "polsby_popper", "reasons"]
    aliases = [
        "网格编码 Grid code",
        "名称 Name",
        "户数 Households",
        "紧凑度 Compactness (Polsby–Popper)",
        "问题 Problems",
    ]
    layer = _GeoJsonLayer(
        _collection(disp, props, "grid_code"),
        name="网格质量 Grid quality",
        style_function=lambda f: {
            "color": "#444444",
            "weight": 2.5 if f["properties"]["failed"] else 0.8,
            "fillColor": colour_of[f["id"]],
            "fillOpacity": 0.7 if f["properties"]["failed"] else 0.3,
        },
        tooltip=folium.GeoJsonTooltip(fields, aliases=aliases, sticky=True),
        popup=folium.GeoJsonPopup(fields, aliases=aliases, max_width=360),
    )
    layer.add_to(m)
    _add_labels(
        m, grids, flags["grid_code"], plan_crs=_check_plan(plan)[1], gcj=cfg.gcj, min_zoom=15
    )
    lo, hi = _band(plan, band)
    legend = [f"<h4>质量检查 Quality checks</h4><div>户数带 Band {lo:g}–{hi:g}</div>"]
    for key, col, label in _QUALITY_STYLE:
        legend.append(_swatch(col, f"{label} · {int(flags[key].sum())}"))
    legend.append(_swatch("#f0f0f0", f"通过 Passed · {int((~flags['failed']).sum())}"))
    _HtmlControl("".join(legend), css_class="gridmap-legend").add_to(m)
    return _finish(m, search_layer=layer)


# --------------------------------------------------------------------------- doctest data


def _example_plan(
    nx: int = 2, ny: int = 1, size: float = 200.0, households: Sequence[int] | None = None
) -> Plan:
    """Return a tiny hand-made plan (a box lattice in EPSG:4549 at Nanjing) for examples."""
    from gridmap.partition.plan import Plan, QualityReport

    x0, y0 = transform(118.78, 32.05, "wgs84", "EPSG:4549")
    boxes: list[shapely.Polygon] = []
    codes: list[str] = []
    for j in range(ny):
        for i in range(nx):
            boxes.append(
                shapely.box(x0 + i * size, y0 - (j + 1) * size, x0 + (i + 1) * size, y0 - j * size)
            )
            codes.append(f"320106001001{len(codes) + 1:03d}")
    n = len(boxes)
    hh = list(households) if households is not None else [300] * n
    grids = gpd.GeoDataFrame(
        {
            "grid_code": codes,
            "community_id": ["c1"] * n,
            "name": [f"幸福社区第{k + 1:03d}网格" for k in range(n)],
            "households": hh,
            "persons": [float("nan")] * n,
            "n_buildings": [1] * n,
            "boundary_desc": ["东至中山路，南至社区边界，西至建设路，北至社区边界"] * n,
            "locked": [False] * n,
        },
        geometry=boxes,
        crs="EPSG:4549",
    )
    buildings = pd.DataFrame(
        {
            "building_id": [f"b{k}" for k in range(n)],
            "grid_code": codes,
            "households": hh,
            "part": [None] * n,
        }
    )
    report = QualityReport(
        grids=pd.DataFrame({"grid_code": codes, "polsby_popper": [0.785] * n}),
        communities=pd.DataFrame({"community_id": ["c1"]}),
    )
    return Plan(
        grids=grids,
        buildings=buildings,
        households=None,
        report=report,
        params={"min_households": 200, "max_households": 500},
        crs=pyproj.CRS.from_epsg(4549),
    )
