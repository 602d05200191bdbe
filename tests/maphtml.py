"""Read what gridmap.maps embeds in a page: the GeoJSON layers, decoded as the browser does.

Layers are written as ``layer.addData(gridmapDecode({...}))`` (see
``gridmap.maps.encoding._encode_collection``); :func:`collections` mirrors the page's
``gridmapDecode`` so that tests can check the features a browser gets. The
browser tests check that the real decoder gives the same coordinates.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import numpy as np

_TYPES = {
    "T": "Point",
    "L": "LineString",
    "N": "MultiLineString",
    "P": "Polygon",
    "M": "MultiPolygon",
}


def decode(c: dict[str, Any]) -> dict[str, Any]:
    """Return the FeatureCollection of one encoded layer."""
    cur = [0, 0]

    def line(a: list[int], close: bool) -> list[list[float]]:
        out = []
        for i in range(0, len(a), 2):
            cur[0] += a[i]
            cur[1] += a[i + 1]
            out.append([cur[0] / 1e6, cur[1] / 1e6])
        if close and out:
            out.append(list(out[0]))
        return out

    def geom(g: Any) -> Any:
        if g is None:
            return None
        t, a = g
        if t == "T":
            co: Any = line(a, False)[0]
        elif t == "L":
            co = line(a, False)
        elif t == "N":
            co = [line(x, False) for x in a]
        elif t == "P":
            co = [line(r, True) for r in a]
        else:
            co = [[line(r, True) for r in p] for p in a]
        return {"type": _TYPES[t], "coordinates": co}

    feats = []
    for i, (row, g) in enumerate(zip(c["p"], c["g"], strict=True)):
        props = {}
        for k, v in zip(c["k"], row, strict=True):
            table = c["d"].get(k)
            props[k] = table[v] if table is not None and v is not None else v
        f: dict[str, Any] = {"type": "Feature", "properties": props, "geometry": geom(g)}
        if c["i"] is not None:
            f["id"] = i if c["i"] == 1 else c["i"][i]
        feats.append(f)
    return {"type": "FeatureCollection", "features": feats}


def collections(html: str) -> list[dict[str, Any]]:
    """Every GeoJSON layer embedded in the page, decoded, in page order."""
    dec = json.JSONDecoder()
    return [
        decode(dec.raw_decode(html, m.end() - 1)[0])
        for m in re.finditer(r"\.addData\(gridmapDecode\(\{", html)
    ]


def features(html: str, key: str) -> list[dict[str, Any]]:
    """Features of every embedded layer whose features have property ``key``."""
    found = [
        f
        for c in collections(html)
        if c["features"] and key in c["features"][0]["properties"]
        for f in c["features"]
    ]
    assert found, f"no layer has property {key!r}"
    return found


_TAG = re.compile(
    r"<script\b[^>]*\bsrc=[\"']([^\"']+)|<link\b[^>]*\bhref=[\"']([^\"']+)", flags=re.I
)
_SCRIPT_BODY = re.compile(r"(<script\b[^>]*>).*?</script>", flags=re.I | re.S)
_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style>", flags=re.I | re.S)
_CSS_REF = re.compile(r"url\(\s*[\"']?([^\"')]+)|@import\s+[\"']([^\"']+)", flags=re.I)


def resources(html: str) -> list[str]:
    """Every script, stylesheet, CSS image and CSS @import the page loads.

    ``<script src>`` and ``<link href>`` first, then the ``url(...)`` and
    ``@import`` of its ``<style>`` blocks. Tile URLs are not among them:
    Leaflet builds those in JavaScript.
    """
    html = _SCRIPT_BODY.sub(r"\1</script>", html)  # inline code may spell "<link", "<style"
    tags = [a or b for a, b in _TAG.findall(html)]
    css = [a or b for style in _STYLE.findall(html) for a, b in _CSS_REF.findall(style)]
    return tags + css


def external(html: str) -> list[str]:
    """The :func:`resources` of the page that need the internet (http, https or //)."""
    return [u for u in resources(html) if re.match(r"(?:https?:)?//", u, flags=re.I)]


def _int_column(c: dict[str, Any] | None) -> list[int | None] | None:
    """Decode a typed column of a case map (base64 little-endian; differences; missing mark)."""
    if c is None:
        return None
    if "v" in c:
        return list(c["v"])
    kind = {"u1": "<u1", "i1": "<i1", "u2": "<u2", "i2": "<i2", "u4": "<u4", "i4": "<i4"}
    raw = np.frombuffer(base64.b64decode(c["b"]), dtype=kind[c["t"]]).astype(np.int64)
    if c.get("d"):
        raw = np.cumsum(raw)
    raw = raw + c.get("a", 0)
    mark = c.get("m")
    return [None if mark is not None and v == mark else int(v) for v in raw]


def cases_data(html: str) -> dict[str, Any]:
    """The compact case columns of a :func:`gridmap.maps.cases_map` page, ids and points decoded.

    Adds ``ids`` (the case ids), ``lon``/``lat`` (degrees), ``status`` (codes),
    ``colour`` (marker fill: the status colour, or the overdue red) as the page's
    script draws them.
    """
    m = re.search(r'\{"n":\d+,"q":\d+,"x0":', html)
    assert m, "no case layer in the page"
    d: dict[str, Any] = json.JSONDecoder().raw_decode(html, m.start())[0]
    for key in ("x", "y", "s", "o", "c", "g", "t", "d"):
        d[key] = _int_column(d[key])
    d["ids"] = list(d["i"]["s"]) if "s" in d["i"] else _int_column(d["i"])
    d["lon"] = [(d["x0"] + x) / d["q"] for x in d["x"]]
    d["lat"] = [(d["y0"] + y) / d["q"] for y in d["y"]]
    d["status"] = [d["S"][k][0] for k in d["s"]]
    overdue = re.search(r"var OD = (\"#[0-9a-f]{6}\")", html)
    red = json.loads(overdue.group(1)) if overdue else None
    d["colour"] = [red if o else d["S"][k][2] for k, o in zip(d["s"], d["o"], strict=True)]
    return d
