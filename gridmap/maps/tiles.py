"""Base-map tiles: the presets (OpenStreetMap, AMap, Tencent, Tianditu) and GCJ-02 awareness."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from gridmap.errors import InputError

if TYPE_CHECKING:
    pass

__all__ = ["TILE_PRESETS", "TilePreset"]

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
