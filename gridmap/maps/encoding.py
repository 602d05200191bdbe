"""Compact GeoJSON for map pages: coordinates delta-encoded, decoded in the page by a script."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from gridmap.errors import InputError

if TYPE_CHECKING:
    pass

__all__: list[str] = []

_log = logging.getLogger(__name__)


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
