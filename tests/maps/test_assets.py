"""Tests for gridmap.maps.assets: the vendored Leaflet files and the three ways to load them."""

from __future__ import annotations

import re
import warnings

import folium
import folium.plugins
import pytest
from maphtml import external, resources

from gridmap.errors import InputError, NotFoundError
from gridmap.maps.assets import (
    CDN_FILES,
    VENDOR_DIR,
    _inline,
    _vendored_files,
    check_assets,
    use_assets,
    vendored_file,
)

LIBRARIES = {
    "leaflet-1.9.3": "LICENSE",
    "jquery-3.7.1": "LICENSE.txt",
    "leaflet-search-2.9.7": "license.txt",
    "leaflet.fullscreen-3.0.0": "LICENSE",
    "leaflet.markercluster-1.1.0": "MIT-LICENCE.txt",
}
#: The API documentation pages' tools (served by /docs and /redoc, never inlined in maps).
DOC_TOOLS = {"swagger-ui-dist-5.35.0": "LICENSE", "redoc-2.5.4": "LICENSE"}


def render(m: folium.Map) -> str:
    return m.get_root().render()


def test_every_library_ships_with_its_licence_and_is_listed_in_the_readme():
    folders = {p.name for p in VENDOR_DIR.iterdir() if p.is_dir()}
    assert folders == set(LIBRARIES) | set(DOC_TOOLS)
    readme = (VENDOR_DIR / "README.md").read_text(encoding="utf-8")
    for folder, licence in {**LIBRARIES, **DOC_TOOLS}.items():
        text = (VENDOR_DIR / folder / licence).read_text(encoding="utf-8")
        assert "Permission" in text or "Redistribution" in text, folder
        name, version = folder.rsplit("-", 1)
        row = f"| `{folder}/` | {name} | {version} | https://registry.npmjs.org/{name}/-/"
        assert row in readme and f"(`{licence}`)" in readme, folder
    # every CDN file folium links has its copy; the whole folder stays small
    assert all(vendored_file(rel).stat().st_size > 500 for rel in CDN_FILES.values())
    maps = [p for rel, p in _vendored_files().items() if rel.split("/")[0] in LIBRARIES]
    total = sum(p.stat().st_size for p in maps)
    assert 300_000 < total < 400_000, total  # 334 kB of map libraries


def test_vendored_file_refuses_anything_outside_the_folder():
    assert vendored_file("leaflet-1.9.3/dist/leaflet.js").read_bytes().startswith(b"/* @preserve")
    for bad in (
        "../map_assets.py",
        "leaflet-1.9.3/../../map_assets.py",
        "/etc/passwd",
        "leaflet-1.9.3\\..\\..\\map_assets.py",
        "leaflet-1.9.3/dist",
        "",
        "leaflet-1.9.3/dist/leaflet.js.map",
    ):
        with pytest.raises(NotFoundError, match="no vendored map file"):
            vendored_file(bad)


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("cdn", "cdn"),
        (" Inline ", "inline"),
        ("/maps/static", "/maps/static/"),
        ("http://gis.intranet/gridmap-static/", "http://gis.intranet/gridmap-static/"),
        ("vendor/", "vendor/"),
    ],
)
def test_check_assets(value, normalised):
    assert check_assets(value) == normalised


@pytest.mark.parametrize("bad", ["offline", "", "  ", '/x" onload="alert(1)', None])
def test_check_assets_guards(bad):
    with pytest.raises(InputError, match="'cdn', 'inline'"):
        check_assets(bad)


def test_inline_page_embeds_code_images_and_the_default_marker_icon():
    m = folium.Map(location=[32.05, 118.78], zoom_start=15)
    folium.Marker([32.05, 118.78]).add_to(m)
    html = render(use_assets(m, "inline"))
    assert external(html) == [] and "<script src=" not in html
    css_refs = [u for u in resources(html) if u != "#default#VML"]
    # leaflet.css's control icons and marker path, as data URIs
    assert len(css_refs) == 3 and all(u.startswith("data:image/png;base64,") for u in css_refs)
    assert "sourceMappingURL" not in html
    # Leaflet cannot guess its image folder without leaflet.css: the icon is set explicitly
    icon = re.search(r'L\.Icon\.Default\.imagePath="";Object\.assign\((.*?)\);</script>', html)
    assert icon is not None
    assert icon.group(1).count('"data:image/png;base64,') == 3
    # no library text ends the <script> element early
    for rel in CDN_FILES.values():
        body = _inline(rel).lower()
        n = 2 if rel.endswith("leaflet.js") else 1
        closers = body.count("</style>" if rel.endswith(".css") else "</script")
        assert closers == n and body.endswith(("</script>", "</style>")), rel
        assert "<!--" not in body, rel
    # rendering again gives the same <head> (folium itself repeats a tile-layer line)
    assert render(m).split("</head>")[0] == html.split("</head>")[0]


def test_links_for_awesome_markers_stay_when_a_map_uses_them():
    plain = render(use_assets(folium.Map(), "cdn"))
    assert "bootstrap" not in plain and "fontawesome" not in plain
    m = folium.Map()
    folium.Marker([32.05, 118.78], icon=folium.Icon(color="red", icon="info-sign")).add_to(m)
    assert external(render(use_assets(m, "cdn"))) == external(render(folium.Map()))
    with pytest.warns(UserWarning, match="does not ship .*awesome-markers"):
        html = render(use_assets(m, "/maps/static/"))
    assert "/maps/static/leaflet-1.9.3/dist/leaflet.js" in html
    assert "leaflet.awesome-markers.js" in html  # kept on its CDN: the page still works online
    # folium's FastMarkerCluster draws awesome-markers unless given a callback
    default = folium.Map()
    folium.plugins.FastMarkerCluster([[32.05, 118.78]]).add_to(default)
    assert "fontawesome" in render(use_assets(default, "cdn"))
    own = folium.Map()
    folium.plugins.FastMarkerCluster([[32.05, 118.78]], callback="f").add_to(own)
    assert "fontawesome" not in render(use_assets(own, "cdn"))


def test_an_unshipped_plugin_warns_and_keeps_its_cdn_link():
    m = folium.Map()
    folium.plugins.HeatMap([[32.05, 118.78]]).add_to(m)
    with pytest.warns(UserWarning, match=r"leaflet_heat\.min\.js.*assets='cdn'"):
        html = render(use_assets(m, "inline"))
    assert [u.rsplit("/", 1)[1] for u in external(html)] == ["leaflet_heat.min.js"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        render(use_assets(m, "cdn"))  # CDN mode: nothing to warn about


def test_use_assets_covers_elements_added_afterwards():
    m = use_assets(folium.Map(), "/static/")
    folium.plugins.MarkerCluster().add_to(m)
    html = render(m)
    assert external(html) == []
    assert (
        '<script src="/static/leaflet.markercluster-1.1.0/dist/leaflet.markercluster.js">' in html
    )
