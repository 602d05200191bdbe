"""Security headers on every response, and a Content Security Policy on every HTML page.

The service's pages (maps, the sign-in form, ``/docs``, ``/redoc``) may load
scripts and styles only from this server — or from where the configured map
assets come from — and images only from this server and the tile servers a map
may use; nothing may frame them; no response may be sniffed into another type.

``Content-Security-Policy``, ``X-Frame-Options`` and ``Referrer-Policy`` go on
HTML responses; ``X-Content-Type-Options: nosniff`` on every response. The
policy allows inline scripts and styles because folium writes each map as an
inline script; everything a page *loads* is still restricted.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "NOSNIFF",
    "SecurityHeadersMiddleware",
    "asset_sources",
    "content_security_policy",
    "tile_sources",
]

#: The header every response carries (routes answered in front of the middleware add it).
NOSNIFF: tuple[bytes, bytes] = (b"x-content-type-options", b"nosniff")


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL or URL template (``{s}`` → ``*``), else None.

    Examples
    --------
    >>> _origin("https://webrd0{s}.is.autonavi.com/appmaptile?x={x}")
    'https://*.is.autonavi.com'
    >>> _origin("/maps/static/") is None
    True
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = parts.netloc.split("@")[-1]
    labels = host.split(".")
    if any("{" in label for label in labels):
        # a subdomain template: the CSP wildcard stands for the whole first label
        host = ".".join(["*", *labels[1:]]) if "{" in labels[0] else host
        host = host.replace("{s}", "*")
    return f"{parts.scheme}://{host}"


def tile_sources(template: str | None = None) -> list[str]:
    """Origins of every preset tile server, plus a configured ``{z}/{x}/{y}`` template's.

    Examples
    --------
    >>> "https://tile.openstreetmap.org" in tile_sources()
    True
    >>> tile_sources("http://tiles.intranet:8080/{z}/{x}/{y}.png")[-1]
    'http://tiles.intranet:8080'
    """
    from gridmap.maps.tiles import TILE_PRESETS

    urls: list[str] = []
    for preset in TILE_PRESETS.values():
        urls += [preset.url, *([preset.labels_url] if preset.labels_url else [])]
    if template:
        urls.append(template)
    out: list[str] = []
    for url in urls:
        origin = _origin(url)
        if origin and origin not in out:
            out.append(origin)
    return out


def asset_sources(assets: str) -> list[str]:
    """Where map pages load Leaflet and its plugins from, besides this server."""
    if assets == "cdn":
        from gridmap.maps.assets import CDN_FILES

        return sorted({o for o in map(_origin, CDN_FILES) if o})
    origin = _origin(assets)
    return [origin] if origin else []


def content_security_policy(*, tiles: Iterable[str] = (), assets: Iterable[str] = ()) -> str:
    """Return the policy of the service's HTML pages.

    Parameters
    ----------
    tiles : iterable of str
        Origins of tile servers (images).
    assets : iterable of str
        Origins that serve the map libraries (scripts, styles, their images).

    Examples
    --------
    >>> csp = content_security_policy(tiles=["https://tile.openstreetmap.org"])
    >>> "frame-ancestors 'none'" in csp and "img-src 'self' data: blob: https://tile" in csp
    True
    """
    a = " ".join(assets)
    t = " ".join(tiles)
    extra = f" {a}" if a else ""
    directives = [
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline'{extra}",
        f"style-src 'self' 'unsafe-inline'{extra}",
        f"img-src 'self' data: blob:{extra}{' ' + t if t else ''}",
        f"font-src 'self' data:{extra}",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


class SecurityHeadersMiddleware:
    """Add the security headers to responses (pure ASGI: no cost beyond the headers).

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    csp : str
        The Content Security Policy of HTML pages.
    """

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self._html = [
            (b"content-security-policy", csp.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if NOSNIFF[0] not in names:
                    headers.append(NOSNIFF)
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if ctype.startswith(b"text/html"):
                    headers += [(k, v) for k, v in self._html if k not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
