"""The front-end files of the maps (Leaflet, jQuery, plugins), shipped with gridmap.

folium links Leaflet, jQuery and the Leaflet plugins from public CDNs
(cdn.jsdelivr.net, cdnjs.cloudflare.com, code.jquery.com). Government
intranets (政务外网) cannot reach them and mainland China reaches them badly: the
map page is then blank. gridmap ships the exact files its maps use in
``gridmap/static/vendor/`` (versions, sources and licences in its
``README.md``) and :func:`use_assets` points a map at them:

* ``"cdn"`` — folium's CDN links: the smallest file, but the browser needs the
  internet;
* ``"inline"`` — the files embedded in the page (270–310 kB more, depending
  on the plugins the map uses): one HTML file that works offline;
* a URL prefix such as ``"/maps/static/"`` or
  ``"http://gis.intranet/gridmap-static/"`` — loaded from a server that serves
  ``gridmap/static/vendor/`` (the HTTP API does, at ``GET /maps/static/{path}``).

In every mode the files folium links but gridmap maps do not use (Bootstrap,
glyphicons, Font Awesome, awesome-markers) are left out, unless the map holds
an element that needs them (a :class:`folium.Icon`, a ``BeautifyIcon``, a
``FastMarkerCluster`` with its default markers). A link gridmap does not ship (a plugin an
analyst adds) stays on its CDN, with a warning.
"""

from __future__ import annotations

import base64
import re
import warnings
from collections.abc import Iterator
from functools import cache, lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import folium
from branca.element import CssLink, Element, Figure, JavascriptLink

from gridmap.errors import InputError, NotFoundError

__all__ = ["ASSET_MODES", "CDN_FILES", "VENDOR_DIR", "check_assets", "use_assets", "vendored_file"]

#: Folder of the vendored files (one folder per library and version).
VENDOR_DIR = Path(__file__).parents[1] / "static" / "vendor"

#: The named modes of ``assets=`` (anything else must be a URL prefix).
ASSET_MODES = ("cdn", "inline")

_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs/"

#: folium's CDN URL → the same file in :data:`VENDOR_DIR`.
CDN_FILES: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet-1.9.3/dist/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet-1.9.3/dist/leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/dist/jquery.min.js",
    "https://cdn.jsdelivr.net/npm/leaflet-search@2.9.7/dist/leaflet-search.min.js": (
        "leaflet-search-2.9.7/dist/leaflet-search.min.js"
    ),
    "https://cdn.jsdelivr.net/npm/leaflet-search@2.9.7/dist/leaflet-search.min.css": (
        "leaflet-search-2.9.7/dist/leaflet-search.min.css"
    ),
    # the npm package has no .min.js: jsdelivr minifies on the fly
    "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js": (
        "leaflet.fullscreen-3.0.0/Control.FullScreen.js"
    ),
    "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css": (
        "leaflet.fullscreen-3.0.0/Control.FullScreen.css"
    ),
    _CDNJS + "leaflet.markercluster/1.1.0/leaflet.markercluster.js": (
        "leaflet.markercluster-1.1.0/dist/leaflet.markercluster.js"
    ),
    _CDNJS + "leaflet.markercluster/1.1.0/MarkerCluster.css": (
        "leaflet.markercluster-1.1.0/dist/MarkerCluster.css"
    ),
    _CDNJS + "leaflet.markercluster/1.1.0/MarkerCluster.Default.css": (
        "leaflet.markercluster-1.1.0/dist/MarkerCluster.Default.css"
    ),
}

#: folium's links for awesome-markers icons (Bootstrap, glyphicons, Font Awesome): unused by
#: gridmap maps, kept only when the map holds a :class:`folium.Icon`.
_ICON_LINKS = re.compile(
    r"bootstrap|fontawesome|font-awesome|glyphicons|awesome-markers|awesome\.rotate", re.I
)

_MIME = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".js": "application/javascript",
    ".css": "text/css",
}

_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
_SOURCE_MAP = re.compile(r"^[ \t]*//# sourceMappingURL=\S*[ \t]*$", re.M)
_LEAFLET_JS = "leaflet-1.9.3/dist/leaflet.js"
_LEAFLET_IMAGES = "leaflet-1.9.3/dist/images/"

M = TypeVar("M", bound=folium.Map)


def check_assets(assets: str) -> str:
    """Return ``assets`` checked and normalised (a URL prefix gets a trailing ``/``).

    Parameters
    ----------
    assets : str
        ``"cdn"``, ``"inline"`` or a URL prefix (``"/maps/static/"``,
        ``"https://gis.intranet/gridmap-static/"``, ``"vendor/"``) under which
        the contents of :data:`VENDOR_DIR` are served.

    Returns
    -------
    str

    Raises
    ------
    InputError
        For anything else.

    Examples
    --------
    >>> check_assets("/maps/static")
    '/maps/static/'
    >>> check_assets("INLINE")
    'inline'
    """
    if not isinstance(assets, str) or not assets.strip():
        raise InputError(
            f"assets={assets!r} is not supported; use 'cdn', 'inline' or a URL prefix that "
            "serves gridmap/static/vendor/ (such as '/maps/static/')"
        )
    value = assets.strip()
    if value.lower() in ASSET_MODES:
        return value.lower()
    if "/" not in value or any(c in value for c in "\"'<> \t\n"):
        raise InputError(
            f"assets={assets!r} is neither 'cdn', 'inline' nor a URL prefix; pass 'inline' for "
            "a page that works offline, or the URL where gridmap/static/vendor/ is served "
            "(such as '/maps/static/' or 'http://gis.intranet/gridmap-static/')"
        )
    return value if value.endswith("/") else value + "/"


def use_assets(m: M, assets: str = "cdn") -> M:
    """Make a folium map load Leaflet, jQuery and the plugins as ``assets`` says.

    The links are rewritten when the page is rendered (``m.save``,
    ``m.get_root().render()``), so elements added to the map afterwards are
    covered too. The :mod:`gridmap.maps` builders call this with their
    ``assets=`` argument; it also works on any folium map (``gdf.explore()``).

    Parameters
    ----------
    m : folium.Map
        The map (changed in place: this is a rendering option, not data).
    assets : str, default "cdn"
        ``"cdn"``, ``"inline"`` or a URL prefix, see :func:`check_assets`.

    Returns
    -------
    folium.Map
        ``m``, for chaining.

    Warns
    -----
    UserWarning
        At rendering, with ``"inline"`` or a prefix, for a link gridmap does not
        ship (it stays on its CDN).

    Examples
    --------
    >>> import folium
    >>> html = use_assets(folium.Map(), "inline").get_root().render()
    >>> "cdn.jsdelivr.net" in html, "Leaflet 1.9.3" in html
    (False, True)
    >>> html = use_assets(folium.Map(), "/maps/static/").get_root().render()
    >>> '<script src="/maps/static/leaflet-1.9.3/dist/leaflet.js"></script>' in html
    True
    """
    mode = check_assets(assets)
    root = m.get_root()
    if not isinstance(root, Figure):
        raise InputError("use_assets needs a folium map inside a figure (folium.Map() has one)")
    root.add_child(_Assets(mode), name="gridmap_assets")
    return m


def vendored_file(path: str) -> Path:
    """Return the vendored file at ``path`` (relative to :data:`VENDOR_DIR`).

    Only the files shipped in :data:`VENDOR_DIR` are ever returned: a path
    that leaves the folder (``..``, absolute, back-slashes) is not found.

    Parameters
    ----------
    path : str
        For example ``"leaflet-1.9.3/dist/leaflet.js"``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    NotFoundError
        If no vendored file has that path.

    Examples
    --------
    >>> vendored_file("jquery-3.7.1/dist/jquery.min.js").name
    'jquery.min.js'
    """
    found = _vendored_files().get(path)
    if found is None:
        raise NotFoundError(
            f"no vendored map file {path!r}; the files are listed in "
            "gridmap/static/vendor/README.md (for example leaflet-1.9.3/dist/leaflet.js)"
        )
    return found


# --------------------------------------------------------------------------- internals


@lru_cache(maxsize=1)
def _vendored_files() -> dict[str, Path]:
    """Every shipped file, by its POSIX path relative to :data:`VENDOR_DIR`."""
    return {
        p.relative_to(VENDOR_DIR).as_posix(): p
        for p in sorted(VENDOR_DIR.rglob("*"))
        if p.is_file()
    }


def _data_uri(rel: str) -> str:
    data = base64.b64encode(vendored_file(rel).read_bytes()).decode("ascii")
    return f"data:{_MIME[PurePosixPath(rel).suffix]};base64,{data}"


def _css_with_data_uris(rel: str) -> str:
    """Return the stylesheet with its relative ``url(...)`` images embedded as data URIs."""
    base = PurePosixPath(rel).parent
    css = vendored_file(rel).read_text(encoding="utf-8")

    def embed(mt: re.Match[str]) -> str:
        target = mt.group(2)
        if target.startswith(("data:", "#", "http:", "https:", "//")):
            return mt.group(0)
        parts: list[str] = []
        for part in (base / target).parts:
            if part == "..":
                parts.pop()
            elif part != ".":
                parts.append(part)
        return f'url("{_data_uri("/".join(parts))}")'

    return _CSS_URL.sub(embed, css)


@cache
def _inline(rel: str) -> str:
    """Return the HTML that embeds one vendored file (cached: the files never change)."""
    if rel.endswith(".css"):
        return f"<style>\n{_css_with_data_uris(rel)}\n</style>"
    code = _SOURCE_MAP.sub("", vendored_file(rel).read_text(encoding="utf-8"))
    code = re.sub(r"</(script)", r"<\\/\1", code, flags=re.I)
    html = f"<script>\n{code}\n</script>"
    if rel == _LEAFLET_JS:
        # Leaflet finds its marker images next to leaflet.css; inline, there is no such file
        icons = {
            "iconUrl": _data_uri(_LEAFLET_IMAGES + "marker-icon.png"),
            "iconRetinaUrl": _data_uri(_LEAFLET_IMAGES + "marker-icon-2x.png"),
            "shadowUrl": _data_uri(_LEAFLET_IMAGES + "marker-shadow.png"),
        }
        opts = ",".join(f'{k}:"{v}"' for k, v in icons.items())
        html += (
            '<script>L.Icon.Default.imagePath="";'
            f"Object.assign(L.Icon.Default.prototype.options,{{{opts}}});</script>"
        )
    return html


class _Raw(Element):
    """Header HTML written as is (not a Jinja template: the libraries hold ``{{``)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "GridmapAsset"
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


def _walk(el: Any) -> Iterator[Any]:
    yield el
    for child in list(getattr(el, "_children", {}).values()):
        yield from _walk(child)


def _uses_icons(figure: Figure) -> bool:
    """Whether an element needs awesome-markers / Font Awesome (none of gridmap's own do)."""
    for e in _walk(figure):
        if isinstance(e, folium.Icon) or type(e).__name__ == "BeautifyIcon":
            return True
        if "L.AwesomeMarkers" in str(getattr(e, "callback", "")):  # FastMarkerCluster's default
            return True
    return False


class _Assets(Element):
    """Rewrites the figure's header links; rendered after the map, once every link is in."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self._name = "GridmapAssets"
        self.mode = mode

    def render(self, **kwargs: Any) -> str:
        figure = self.get_root()
        assert isinstance(figure, Figure)
        links = figure.header._children
        icons = _uses_icons(figure)
        missing = []
        for name, link in list(links.items()):
            if not isinstance(link, JavascriptLink | CssLink):
                continue
            if not icons and _ICON_LINKS.search(link.url):
                del links[name]
                continue
            if self.mode == "cdn":
                continue
            rel = CDN_FILES.get(link.url)
            if rel is None:
                missing.append(link.url)
            elif self.mode == "inline":
                links[name] = _Raw(_inline(rel))
            else:
                links[name] = type(link)(self.mode + rel)
        if missing:
            warnings.warn(
                f"gridmap does not ship {missing}: the page still loads them from the internet. "
                "Drop the element that needs them, or use assets='cdn'",
                UserWarning,
                stacklevel=2,
            )
        return ""
