"""Browser fixtures: a real headless Chromium that opens generated maps offline.

folium pages load Leaflet and its plugins from CDNs. Tests must not touch the
network, so every request is intercepted with ``page.route``:

* CDN files are served from ``tests/browser/assets/`` (vendored copies of
  leaflet 1.9.3, jquery 3.7.1, leaflet-search 2.9.7, leaflet.fullscreen 3.0.0 and
  leaflet.markercluster 1.1.0, taken from the npm registry with ``npm pack``;
  their licences sit next to them);
* styling-only CDN files the maps do not use (bootstrap, font-awesome,
  awesome-markers) are answered with an empty body;
* map tiles get a blank PNG;
* anything else is aborted and recorded, so a test can assert that nothing
  unexpected was requested.

Screenshots go to ``$GRIDMAP_ARTIFACTS`` or ``tests/browser/artifacts/``
(ignored by git).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ASSETS = Path(__file__).parent / "assets"
CHROMIUM = os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: CDN URL pattern → local file (``{0}`` is the first group of the pattern).
CDN_FILES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"https://cdn\.jsdelivr\.net/npm/leaflet@[\d.]+/dist/([\w./-]+)$"), "leaflet/{0}"),
    (re.compile(r"https://code\.jquery\.com/jquery-[\d.]+\.min\.js$"), "jquery/jquery.min.js"),
    (
        re.compile(
            r"https://cdn\.jsdelivr\.net/npm/leaflet-search@[\d.]+/((?:dist|images)/[\w./-]+)$"
        ),
        "leaflet-search/{0}",
    ),
    (
        re.compile(
            r"https://cdn\.jsdelivr\.net/npm/leaflet\.fullscreen@[\d.]+/Control\.FullScreen(?:\.min)?\.js$"
        ),
        "leaflet.fullscreen/Control.FullScreen.js",
    ),
    (
        re.compile(r"https://cdn\.jsdelivr\.net/npm/leaflet\.fullscreen@[\d.]+/([\w./-]+)$"),
        "leaflet.fullscreen/{0}",
    ),
    (
        re.compile(
            r"https://cdnjs\.cloudflare\.com/ajax/libs/leaflet\.markercluster/[\d.]+/([\w./-]+)$"
        ),
        "leaflet.markercluster/{0}",
    ),
]

#: CDN files folium always links but our maps do not need (answered empty).
CDN_STUBS = re.compile(
    r"bootstrap|fontawesome|font-awesome|glyphicons|awesome-markers|leaflet\.awesome\.rotate"
)

#: Hosts of the tile presets (and the custom test URL): answered with a blank PNG.
TILE_HOSTS = re.compile(
    r"tile\.openstreetmap\.org|autonavi\.com|map\.gtimg\.com|tianditu\.gov\.cn|tiles\.example"
)


def _png(rgb: tuple[int, int, int], size: int = 1) -> bytes:
    """A solid-colour PNG (size × size), built with zlib."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * size
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


#: What every tile request gets: a plain land-coloured tile (like OSM's background).
BLANK_PNG = _png((242, 239, 233))

CONTENT_TYPES = {
    ".js": "application/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
}


@dataclass
class OpenedMap:
    """A map page opened in Chromium, with what went wrong while loading it."""

    page: Any
    map_name: str
    path: Path
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    served: list[str] = field(default_factory=list)
    stubbed: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)


def _content_type(path: str) -> str:
    return CONTENT_TYPES.get(Path(path).suffix, "application/octet-stream")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's), or skip when it or playwright is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not exe:
        pytest.skip(f"no Chromium at {CHROMIUM} (set GRIDMAP_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # pragma: no cover - depends on the machine
            pytest.skip(f"Chromium at {exe} does not start: {exc}")
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    """Folder for screenshots: $GRIDMAP_ARTIFACTS or tests/browser/artifacts/."""
    out = Path(os.environ.get("GRIDMAP_ARTIFACTS", Path(__file__).parent / "artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _attach(page: Any, opened: OpenedMap, *, local: tuple[str, ...] = ()) -> None:
    """Route every request of ``page`` offline and record errors into ``opened``."""

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", *local)):
            route.continue_()
            return
        for pattern, target in CDN_FILES:
            mt = pattern.match(url.split("?")[0])
            if mt:
                path = ASSETS / target.format(*mt.groups())
                if path.is_file():
                    opened.served.append(url)
                    route.fulfill(
                        status=200,
                        body=path.read_bytes(),
                        content_type=_content_type(str(path)),
                    )
                    return
        if CDN_STUBS.search(url):
            opened.stubbed.append(url)
            route.fulfill(status=200, body="", content_type=_content_type(url.split("?")[0]))
            return
        if TILE_HOSTS.search(url):
            route.fulfill(status=200, body=BLANK_PNG, content_type="image/png")
            return
        opened.unexpected.append(url)
        route.abort()

    page.route("**/*", handle)
    page.on("pageerror", lambda exc: opened.page_errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: opened.console_errors.append(msg.text) if msg.type == "error" else None,
    )


FIND_MAP = "() => Object.keys(window).find(k => /^map_[0-9a-f]{32}$/.test(k)) || null"


@pytest.fixture
def open_map(chromium: Any, tmp_path: Path) -> Iterator[Callable[..., OpenedMap]]:
    """Save a folium map to tmp_path and open it offline; returns an :class:`OpenedMap`."""
    contexts: list[Any] = []

    def _open(m: Any, name: str = "map", *, width: int = 1100, height: int = 800) -> OpenedMap:
        path = tmp_path / f"{name}.html"
        path.write_text(m.get_root().render(), encoding="utf-8")
        context = chromium.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        opened = OpenedMap(page=page, map_name=m.get_name(), path=path)
        _attach(page, opened)
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function(f"() => typeof window.{opened.map_name} !== 'undefined'")
        page.wait_for_timeout(300)  # let fitBounds / label visibility settle
        return opened

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def open_url(chromium: Any) -> Iterator[Callable[..., OpenedMap]]:
    """Open a map page served over HTTP (the API), sending ``headers``; CDN files offline."""
    contexts: list[Any] = []

    def _open(
        url: str, headers: dict[str, str] | None = None, *, width: int = 1100, height: int = 800
    ) -> OpenedMap:
        context = chromium.new_context(
            viewport={"width": width, "height": height},
            locale="zh-CN",
            extra_http_headers=headers or {},
        )
        contexts.append(context)
        page = context.new_page()
        opened = OpenedMap(page=page, map_name="", path=Path(url))
        origin = "/".join(url.split("/")[:3])
        _attach(page, opened, local=(origin,))
        response = page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, url
        page.wait_for_function(f"({FIND_MAP})() !== null")
        opened.map_name = page.evaluate(FIND_MAP)
        page.wait_for_timeout(300)
        return opened

    yield _open
    for context in contexts:
        context.close()
