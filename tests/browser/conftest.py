"""Browser fixtures: a real headless Chromium that opens generated maps without the internet.

Every request of a page is intercepted with ``page.route``; nothing reaches the
network:

* local pages and files (``file:``, ``data:``, ``blob:``, 127.0.0.1,
  localhost) load normally: the API's own ``/maps/static/`` files among them;
* a CDN URL that folium links (``assets="cdn"`` maps), or an image its
  stylesheets load, is answered with the file the product ships for it
  (:data:`gridmap.maps.assets.CDN_FILES`, in ``gridmap/static/vendor/``), so the
  pages run on the product's own copies;
* map tiles get a blank PNG;
* anything else is aborted and recorded in ``unexpected``.

With ``offline=True`` (``open_map``/``open_url``) every request to another host
than 127.0.0.1/localhost, tiles and CDNs included, is aborted and recorded in
``blocked``, as on an intranet without internet.

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
from urllib.parse import urlsplit

import pytest

from gridmap.errors import NotFoundError
from gridmap.maps.assets import CDN_FILES, vendored_file

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

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _cdn_roots() -> dict[str, str]:
    """CDN folder of each library → its vendored folder (for the images its CSS loads)."""
    roots = {}
    for url, rel in CDN_FILES.items():
        n = 0
        while n < min(len(url), len(rel)) and url[-1 - n] == rel[-1 - n]:
            n += 1
        tail = url[len(url) - n :]
        if "/" in tail:
            cut = tail.index("/")
            roots[url[: len(url) - n + cut + 1]] = rel[: len(rel) - n + cut + 1]
    return roots


CDN_ROOTS = _cdn_roots()


def cdn_file(url: str) -> str | None:
    """The vendored file (relative path) that answers a CDN URL, or None."""
    url = url.split("?")[0]
    if url in CDN_FILES:
        return CDN_FILES[url]
    for root, folder in CDN_ROOTS.items():
        if url.startswith(root):
            return folder + url[len(root) :]
    return None


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
    unexpected: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)


def _content_type(path: str) -> str:
    return CONTENT_TYPES.get(Path(path).suffix, "application/octet-stream")


def is_local(url: str) -> bool:
    """True for URLs that stay on this machine (file, data, blob, 127.0.0.1, localhost)."""
    parts = urlsplit(url)
    return parts.scheme in ("file", "data", "blob", "about") or parts.hostname in LOCAL_HOSTS


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


def _attach(page: Any, opened: OpenedMap, *, offline: bool = False) -> None:
    """Route every request of ``page`` off the network and record errors into ``opened``."""

    def handle(route: Any) -> None:
        url = route.request.url
        if is_local(url):
            opened.local.append(url)
            route.continue_()
            return
        if offline:
            opened.blocked.append(url)
            route.abort()
            return
        rel = cdn_file(url)
        if rel is not None:
            try:
                body = vendored_file(rel).read_bytes()
            except NotFoundError:
                pass
            else:
                opened.served.append(url)
                route.fulfill(status=200, body=body, content_type=_content_type(rel))
                return
        if TILE_HOSTS.search(url):
            route.fulfill(status=200, body=BLANK_PNG, content_type="image/png")
            return
        opened.unexpected.append(url)
        route.abort()

    page.route("**/*", handle)
    page.on("pageerror", lambda exc: opened.page_errors.append(str(exc)))

    def console(msg: Any) -> None:
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        if offline and msg.text.startswith("Failed to load resource") and where in opened.blocked:
            return  # a blocked request (tiles): recorded in ``blocked``
        opened.console_errors.append(msg.text)

    page.on("console", console)


FIND_MAP = "() => Object.keys(window).find(k => /^map_[0-9a-f]{32}$/.test(k)) || null"


@pytest.fixture
def open_map(chromium: Any, tmp_path: Path) -> Iterator[Callable[..., OpenedMap]]:
    """Open a folium map (saved to tmp_path) or an HTML file off the network.

    Returns an :class:`OpenedMap`; ``offline=True`` aborts every non-local request.
    """
    contexts: list[Any] = []

    def _open(
        m: Any,
        name: str = "map",
        *,
        width: int = 1100,
        height: int = 800,
        offline: bool = False,
    ) -> OpenedMap:
        if isinstance(m, Path):
            path, find = m, FIND_MAP
        else:
            path = tmp_path / f"{name}.html"
            path.write_text(m.get_root().render(), encoding="utf-8")
            find = f"() => typeof window.{m.get_name()} !== 'undefined' ? '{m.get_name()}' : null"
        context = chromium.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        opened = OpenedMap(page=page, map_name="", path=path)
        _attach(page, opened, offline=offline)
        page.goto(path.as_uri(), wait_until="load")
        # a selector wait, not a polled script: the pages' CSP forbids eval
        page.wait_for_selector(".leaflet-container", state="attached")
        page.wait_for_load_state("load")
        page.wait_for_function(f"({find})() !== null")
        opened.map_name = page.evaluate(find)
        page.wait_for_timeout(300)  # let fitBounds / label visibility settle
        return opened

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def open_url(chromium: Any) -> Iterator[Callable[..., OpenedMap]]:
    """Open a map page served over HTTP (the API), sending ``headers``; off the network."""
    contexts: list[Any] = []

    def _open(
        url: str,
        headers: dict[str, str] | None = None,
        *,
        width: int = 1100,
        height: int = 800,
        offline: bool = False,
    ) -> OpenedMap:
        context = chromium.new_context(
            viewport={"width": width, "height": height},
            locale="zh-CN",
            extra_http_headers=headers or {},
        )
        contexts.append(context)
        page = context.new_page()
        opened = OpenedMap(page=page, map_name="", path=Path(url))
        _attach(page, opened, offline=offline)
        response = page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, url
        # a selector wait, not a polled script: the pages' CSP forbids eval
        page.wait_for_selector(".leaflet-container", state="attached")
        page.wait_for_load_state("load")
        page.wait_for_function(f"({FIND_MAP})() !== null")
        opened.map_name = page.evaluate(FIND_MAP)
        page.wait_for_timeout(300)
        return opened

    yield _open
    for context in contexts:
        context.close()
