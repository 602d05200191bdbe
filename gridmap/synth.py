"""Seeded synthetic cities: the canonical raw layers for tests, demos and benchmarks.

:func:`synth_city` draws a plausible Chinese city in its CGCS2000 3-degree
Gauss-Krüger zone (metres):

* an irregular street network (jittered arterials, diagonals, a ring-road arc,
  local streets cut across every arterial cell) with unique Chinese names;
* blocks = the faces of the noded network (plus a river and the city edge), so
  blocks tile the city; communities (社区) are unions of whole adjacent blocks
  with 1,500–8,000 households, grouped into sub-districts (街道) and districts
  (区) with well-formed 6/9/12-digit codes;
* walled compounds (小区) inside blocks, their walls as ``barriers``;
* towers, slabs, old low-rise courtyard houses and non-residential buildings,
  set back from every road centreline and never overlapping;
* households as points inside their building (entrance, floor, persons and the
  sensitive flags) and a staff roster of about one candidate per 60 households.

Everything is drawn from one :class:`numpy.random.Generator`, so the same seed
gives the same frames, byte for byte. Geometry work is vectorised (shapely 2
arrays); a 200,000-building city takes well under three minutes.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.crs import gk_zone_epsg
from gridmap.errors import InputError

__all__ = ["synth_city", "synth_community", "gauss_kruger_epsg"]

# --------------------------------------------------------------------------------------------
# name material
# --------------------------------------------------------------------------------------------

_CHARS = (
    "安宁和平兴华新民康乐福寿长春永昌光明文德仁义礼智信忠孝贤秀丽嘉祥瑞泰丰盛荣鼎金银玉翠"
    "青云霞龙凤鹤松竹梅兰菊桂柳枫桃李杏江河湖海山石泉溪阳朝晖景润泽清逸锦绣"
)
_FAMOUS_ROADS = (
    "中山 建设 解放 人民 和平 胜利 友谊 长江 黄河 新华 光明 青年 文化 朝阳 东风 红旗 民主 团结 "
    "振兴 繁荣 汉中 虎踞 龙蟠 北京 上海 广州 太平 中华 集庆 升州 洪武 应天 雨花 江东 凤台 幸福"
).split()
_STREET_OFFICES = (
    "朝天宫 夫子庙 秦虹 大光路 双塘 中华门 红花 洪武路 五老村 月牙湖 瑞金路 光华路 新街口 "
    "华侨路 湖南路 宁海路 挹江门 江东 凤凰 热河南 阅江楼 建宁路 宝塔桥 小市 玄武门 梅园新村"
).split()
_DISTRICTS = (
    ("320104", "秦淮区"),
    ("320102", "玄武区"),
    ("320105", "建邺区"),
    ("320106", "鼓楼区"),
    ("320114", "雨花台区"),
    ("320113", "栖霞区"),
    ("320111", "浦口区"),
    ("320115", "江宁区"),
    ("320116", "六合区"),
    ("320117", "溧水区"),
    ("320118", "高淳区"),
)
_COMPOUND_SUFFIXES = ("小区", "花园", "新村", "苑", "家园", "公寓", "嘉园", "名苑")
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵"
)
_GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍鹏辉建国红梅"
    "春燕志文斌海凤玲晶宇浩然涵欣怡轩彤"
)
_AMENITY_NAMES = {
    "commercial": ("超市", "商厦", "菜市场", "大厦", "酒店", "商业中心"),
    "public": ("小学", "中学", "幼儿园", "社区卫生服务中心", "文化站", "派出所"),
    "industrial": ("厂", "仓库"),
}
_DIRECTIONS = ("", "东", "西", "南", "北", "中")

# building kinds (internal)
_TOWER, _SLAB, _LOWRISE, _NONRES = 0, 1, 2, 3
# slot size (x, y) in metres and footprint ranges (w along x, d along y)
_SLOT = {_TOWER: (52.0, 58.0), _SLAB: (72.0, 34.0), _LOWRISE: (16.0, 16.0), _NONRES: (46.0, 46.0)}
_FOOT_W = {_TOWER: (20.0, 30.0), _SLAB: (40.0, 64.0), _LOWRISE: (9.0, 13.0), _NONRES: (15.0, 38.0)}
_FOOT_D = {_TOWER: (18.0, 26.0), _SLAB: (11.0, 15.0), _LOWRISE: (8.0, 12.0), _NONRES: (12.0, 34.0)}
#: buildings per km² of city, measured (used to size the city before thinning)
_DENSITY = 420.0


def gauss_kruger_epsg(lon: float) -> int:
    """Return the EPSG code of the CGCS2000 3-degree Gauss-Krüger zone for a longitude.

    The zones without a zone-number prefix on the easting (EPSG:4534–4554,
    central meridians 75°E–135°E) are used, with the same zone edges as
    :func:`gridmap.crs.gk_zone_epsg` (a longitude half-way between two central
    meridians belongs to the eastern zone), so a synthetic city lies in the zone
    validation would choose for it.

    Parameters
    ----------
    lon : float
        Longitude in degrees east (China: 73.5–135.5).

    Returns
    -------
    int
        EPSG code, e.g. 4549 (central meridian 120°E) for Nanjing.

    Raises
    ------
    InputError
        If the longitude lies outside the CGCS2000 3-degree zones of China.

    Examples
    --------
    >>> gauss_kruger_epsg(118.78)
    4549
    >>> gauss_kruger_epsg(121.47)  # Shanghai
    4549
    >>> gauss_kruger_epsg(116.40)  # Beijing, central meridian 117°E
    4548
    """
    if not (math.isfinite(lon) and 73.5 <= lon <= 136.5):
        raise InputError(
            f"longitude {lon!r} is outside the CGCS2000 3-degree Gauss-Krüger zones (73.5–136.5°E);"
            " pass a centre inside China as (lon, lat) in degrees"
        )
    return gk_zone_epsg(lon)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


class _Names:
    """Unique names from two-character stems drawn in a seeded order."""

    def __init__(self, rng: np.random.Generator, first: Sequence[str] = ()) -> None:
        chars = list(dict.fromkeys(_CHARS))
        stems = [a + b for a in chars for b in chars if a != b]
        order = rng.permutation(len(stems))
        fixed = [first[i] for i in rng.permutation(len(first))] if first else []
        seen = set(fixed)
        self._stems = fixed + [stems[i] for i in order if stems[i] not in seen]
        self._k = 0

    def take(self) -> tuple[str, int]:
        """Return the next stem and the round (0 on the first pass through the stems)."""
        k = self._k
        self._k += 1
        return self._stems[k % len(self._stems)], k // len(self._stems)


def _rotate(geoms: np.ndarray, theta: np.ndarray, cx: np.ndarray, cy: np.ndarray, *, inverse: bool):
    """Rotate each geometry by its own angle about its own origin (vectorised).

    ``inverse=False`` maps world to local (rotate by ``-theta`` about ``(cx, cy)``
    and translate the origin to 0); ``inverse=True`` maps local back to world.
    """
    out = np.array(geoms, dtype=object, copy=True)
    xy, idx = shapely.get_coordinates(out, return_index=True)
    if len(xy) == 0:
        return out
    c, s = np.cos(theta[idx]), np.sin(theta[idx])
    if inverse:
        x = cx[idx] + xy[:, 0] * c - xy[:, 1] * s
        y = cy[idx] + xy[:, 0] * s + xy[:, 1] * c
    else:
        dx, dy = xy[:, 0] - cx[idx], xy[:, 1] - cy[idx]
        x = dx * c + dy * s
        y = -dx * s + dy * c
    return shapely.set_coordinates(out, np.column_stack([x, y]))


def _wobbly(rng: np.random.Generator, a: float, b: float, step: float, amp: float) -> tuple:
    """Positions along [a, b] every ``step`` with a smooth bounded lateral offset."""
    t = np.arange(a, b + step, step)
    walk = np.cumsum(rng.normal(0.0, amp / 3.0, len(t)))
    return t, np.clip(walk - walk.mean(), -amp, amp)


def _extend(line: shapely.LineString, by: float) -> shapely.LineString:
    """Extend a line by ``by`` metres at both ends along its end directions."""
    xy = shapely.get_coordinates(line)
    d0 = xy[0] - xy[1]
    d1 = xy[-1] - xy[-2]
    xy = xy.copy()
    xy[0] = xy[0] + d0 / max(np.hypot(*d0), 1e-9) * by
    xy[-1] = xy[-1] + d1 / max(np.hypot(*d1), 1e-9) * by
    return shapely.linestrings(xy)


# --------------------------------------------------------------------------------------------
# street network and blocks
# --------------------------------------------------------------------------------------------


def _network(
    rng: np.random.Generator, half_w: float, half_h: float, cx: float, cy: float
) -> tuple[list, list, list, shapely.Polygon, list]:
    """Draw roads (geometry, name, class), the city polygon and water lines."""
    names = _Names(rng, _FAMOUS_ROADS)
    city = shapely.box(cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    geoms: list = []
    classes: list[str] = []
    pad = 400.0

    def arterial(vertical: bool) -> None:
        half_a, half_b = (half_w, half_h) if vertical else (half_h, half_w)
        spacing = rng.uniform(850.0, 1250.0)
        pos = -half_a + spacing * rng.uniform(0.55, 1.0)
        while pos < half_a - 0.45 * spacing:
            t, off = _wobbly(rng, -half_b - pad, half_b + pad, 250.0, 70.0)
            a = pos + off
            xy = np.column_stack([a, t]) if vertical else np.column_stack([t, a])
            geoms.append(shapely.linestrings(xy + [cx, cy]))
            classes.append("primary" if rng.random() < 0.4 else "secondary")
            pos += spacing * rng.uniform(0.8, 1.2)

    arterial(True)
    arterial(False)
    size = min(half_w, half_h)
    diag = math.hypot(half_w, half_h) + pad
    for _ in range(1 if size < 2500 else 2):
        ang = rng.uniform(0.45, 1.1) * (1 if rng.random() < 0.5 else -1)
        px, py = rng.uniform(-0.3, 0.3) * half_w, rng.uniform(-0.3, 0.3) * half_h
        d = np.array([math.cos(ang), math.sin(ang)]) * diag
        ends = [[cx + px - d[0], cy + py - d[1]], [cx + px + d[0], cy + py + d[1]]]
        geoms.append(shapely.linestrings(ends))
        classes.append("primary")
    if size > 1200:  # a ring-road arc
        r = rng.uniform(0.45, 0.7) * size
        a0 = rng.uniform(0, 2 * math.pi)
        a = np.linspace(a0, a0 + rng.uniform(2.0, 3.6), 48)
        rad = np.concatenate([[diag * 1.5], np.full(len(a), r), [diag * 1.5]])
        a = np.concatenate([a[:1], a, a[-1:]])  # leave the city radially at both ends
        geoms.append(
            shapely.linestrings(np.column_stack([cx + rad * np.cos(a), cy + rad * np.sin(a)]))
        )
        classes.append("primary")
    water: list = []
    if size > 1500:  # a river across the city
        t = np.arange(-half_w - pad, half_w + pad + 1, 60.0)
        y0 = rng.uniform(-0.35, 0.35) * half_h
        lam = rng.uniform(1.5, 3.0) * size
        y = y0 + 0.12 * size * np.sin(2 * math.pi * t / lam + rng.uniform(0, 6.3))
        water.append(shapely.linestrings(np.column_stack([t + cx, y + cy])))

    ring = shapely.linestrings(shapely.get_coordinates(city.exterior))
    frame = shapely.union_all([*geoms, *water, ring])
    cells = [
        c
        for c in shapely.get_parts(shapely.polygonize(shapely.get_parts(frame)))
        if city.contains(c.representative_point()) and c.area > 1.0
    ]
    local: list = []
    local_cls: list[str] = []
    for cell in cells:
        env = np.asarray(shapely.get_coordinates(shapely.oriented_envelope(cell)))
        if len(env) < 4:
            continue
        e1, e2 = env[1] - env[0], env[2] - env[1]
        if np.hypot(*e1) < np.hypot(*e2):
            e1, e2 = e2, e1
        ux = e1 / np.hypot(*e1)
        uy = np.array([-ux[1], ux[0]])
        lens = (np.hypot(*e1), np.hypot(*e2))
        ctr = env[:4].mean(axis=0)
        for axis, (lo, hi) in enumerate(((150.0, 260.0), (120.0, 220.0))):
            length = lens[axis]
            n = max(0, int(round(length / rng.uniform(lo, hi))) - 1)
            if n == 0:
                continue
            step = length / (n + 1)
            along, across = (ux, uy) if axis == 0 else (uy, ux)
            reach = max(lens) + 100.0
            for k in range(n):
                p = -length / 2 + step * (k + 1 + rng.uniform(-0.18, 0.18))
                tilt = rng.uniform(-0.1, 0.1)
                dirv = across + along * tilt
                base = ctr + along * p
                if rng.random() < 0.2:  # curved local street
                    bend = rng.uniform(-0.15, 0.15) * step
                    s = np.linspace(-reach, reach, 9)
                    pts = base + np.outer(s, dirv) + np.outer(bend * (1 - (s / reach) ** 2), along)
                else:
                    pts = np.array([base - dirv * reach, base + dirv * reach])
                piece = shapely.intersection(cell, shapely.linestrings(pts))
                for part in shapely.get_parts(shapely.line_merge(piece)):
                    if part.geom_type == "LineString" and part.length > 30.0:
                        local.append(_extend(part, 0.5))
                        local_cls.append("service" if rng.random() < 0.15 else "residential")

    # block faces of the whole network
    noded = shapely.union_all([*geoms, *water, ring, *local])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    inside = shapely.contains(city, shapely.point_on_surface(faces)) & (shapely.area(faces) > 0.5)
    blocks = list(faces[inside])

    # output roads: arterials clipped to the city, the ring, local streets
    out_geoms = [*(shapely.intersection(g, city) for g in geoms), ring, *local]
    out_cls = [*classes, "primary", *local_cls]
    out_names = []
    for cls in out_cls:
        stem, rnd = names.take()
        suffix = {
            "primary": "大道" if rng.random() < 0.3 else "路",
            "secondary": "路",
            "residential": "街" if rng.random() < 0.5 else "路",
            "service": "巷",
        }[cls]
        out_names.append(stem + _DIRECTIONS[rnd % len(_DIRECTIONS)] + suffix)
    out_names[len(geoms)] = "环城路"
    roads = [
        (g, n, c)
        for g, n, c in zip(out_geoms, out_names, out_cls, strict=True)
        if not shapely.is_empty(g)
    ]
    water = [shapely.intersection(w, city) for w in water]
    return roads, blocks, water, city, cells


# --------------------------------------------------------------------------------------------
# compounds and buildings
# --------------------------------------------------------------------------------------------


def _layout(rng: np.random.Generator, blocks: np.ndarray, cx: float, cy: float, radius: float):
    """Split blocks into parts, parts into compounds, and fill parts with building footprints."""
    n = len(blocks)
    area = shapely.area(blocks)
    env = shapely.oriented_envelope(blocks)
    theta = np.zeros(n)
    ok = shapely.get_type_id(env) == 3
    xy, idx = shapely.get_coordinates(env[ok], return_index=True)
    first = np.searchsorted(idx, np.arange(ok.sum()))
    if len(first):
        p0, p1, p2 = xy[first], xy[first + 1], xy[first + 2]
        e1, e2 = p1 - p0, p2 - p1
        long1 = np.hypot(*e1.T) >= np.hypot(*e2.T)
        e = np.where(long1[:, None], e1, e2)
        theta[ok] = np.arctan2(e[:, 1], e[:, 0])
    cen = shapely.centroid(blocks)
    bx, by = shapely.get_x(cen), shapely.get_y(cen)
    local = _rotate(blocks, theta, bx, by, inverse=False)
    setback = rng.uniform(8.0, 14.0, n)
    usable = area > 2500.0
    inset = np.full(n, None, dtype=object)
    inset[usable] = shapely.buffer(local[usable], -setback[usable], join_style="mitre")
    inset[usable & shapely.is_empty(inset)] = None
    has = ~shapely.is_missing(inset)
    bidx = np.flatnonzero(has)
    bnd = shapely.bounds(inset[bidx])
    lx = bnd[:, 2] - bnd[:, 0]
    k = np.clip((lx / rng.uniform(110.0, 190.0, len(bidx))).astype(int), 1, 4)
    k = np.where(rng.random(len(bidx)) < 0.35, 1, k)  # many blocks are one compound
    pb = np.repeat(bidx, k)
    j = np.arange(len(pb)) - np.repeat(np.cumsum(k) - k, k)
    kk = np.repeat(k, k).astype(float)
    b0 = np.repeat(bnd, k, axis=0)
    w = (b0[:, 2] - b0[:, 0]) / kk
    cut = rng.uniform(-0.12, 0.12, len(pb)) * w
    x_lo = b0[:, 0] + j * w + np.where(j > 0, cut + 4.0, -1.0)
    cut_next = np.roll(cut, -1)
    x_hi = b0[:, 0] + (j + 1) * w + np.where(j < kk - 1, cut_next - 4.0, 1.0)
    boxes = shapely.box(x_lo, b0[:, 1] - 1, x_hi, b0[:, 3] + 1)
    parts = shapely.intersection(inset[pb], boxes)
    parts, pi = shapely.get_parts(parts, return_index=True)
    pb = pb[pi]
    good = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 900.0)
    parts, pb = parts[good], pb[good]
    m = len(parts)

    # kind of each part, by distance from the centre (old town in the middle)
    pc = shapely.centroid(_rotate(parts, theta[pb], bx[pb], by[pb], inverse=True))
    r = np.clip(np.hypot(shapely.get_x(pc) - cx, shapely.get_y(pc) - cy) / radius, 0, 1)
    weights = np.column_stack(
        [
            0.10 + 0.22 * r,  # towers toward the edge
            np.full(m, 0.42),  # slabs everywhere
            0.04 + 0.40 * np.clip(1 - 1.5 * r, 0, 1),  # old low-rise near the centre
            np.full(m, 0.2),  # non-residential
        ]
    )
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    kind = (rng.random(m)[:, None] > cum).sum(axis=1).clip(0, 3)
    walled = (kind == _TOWER) | (kind == _SLAB)
    fill = shapely.buffer(parts, np.where(walled, -4.0, -1.5), join_style="mitre")
    shapely.prepare(fill)

    # slot grid per part
    slot = np.array([_SLOT[t] for t in range(4)])[kind] * rng.uniform(0.95, 1.15, m)[:, None]
    fb = shapely.bounds(fill)
    fb = np.where(np.isnan(fb), 0.0, fb)
    nx = np.floor((fb[:, 2] - fb[:, 0]) / slot[:, 0]).astype(int).clip(0)
    ny = np.floor((fb[:, 3] - fb[:, 1]) / slot[:, 1]).astype(int).clip(0)
    cnt = nx * ny
    sp = np.repeat(np.arange(m), cnt)
    q = np.arange(len(sp)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    ix, iy = q % nx[sp], q // nx[sp]
    sx, sy = slot[sp, 0], slot[sp, 1]
    x0 = fb[sp, 0] + (fb[sp, 2] - fb[sp, 0] - nx[sp] * sx) / 2 + ix * sx
    y0 = fb[sp, 1] + (fb[sp, 3] - fb[sp, 1] - ny[sp] * sy) / 2 + iy * sy
    sk = kind[sp]
    lo_w = np.array([_FOOT_W[t][0] for t in range(4)])[sk]
    hi_w = np.array([_FOOT_W[t][1] for t in range(4)])[sk]
    lo_d = np.array([_FOOT_D[t][0] for t in range(4)])[sk]
    hi_d = np.array([_FOOT_D[t][1] for t in range(4)])[sk]
    ns = len(sp)
    fw = np.minimum(rng.uniform(lo_w, hi_w), sx - 3.0)
    fd = np.minimum(rng.uniform(lo_d, hi_d), sy - 3.0)
    ox = x0 + sx / 2 + rng.uniform(-0.5, 0.5, ns) * (sx - fw - 3.0)
    oy = y0 + sy / 2 + rng.uniform(-0.5, 0.5, ns) * (sy - fd - 3.0)
    foot = shapely.box(ox - fw / 2, oy - fd / 2, ox + fw / 2, oy + fd / 2)
    ell = (sk == _LOWRISE) & (rng.random(ns) < 0.35)  # courtyard houses: L-shaped
    foot[ell] = shapely.difference(
        foot[ell],
        shapely.box(
            ox[ell] + 0.05 * fw[ell], oy[ell] + 0.05 * fd[ell], ox[ell] + fw[ell], oy[ell] + fd[ell]
        ),
    )
    inside = shapely.contains(fill[sp], foot)
    keep = np.flatnonzero(inside)
    return {
        "theta": theta,
        "bx": bx,
        "by": by,
        "parts": parts,
        "part_block": pb,
        "part_kind": kind,
        "walled": walled,
        "foot": foot[keep],
        "part": sp[keep],
        "ox": ox[keep],
        "oy": oy[keep],
        "fw": fw[keep],
        "fd": fd[keep],
        "ell": ell[keep],
    }


# --------------------------------------------------------------------------------------------
# regions (communities, streets, districts)
# --------------------------------------------------------------------------------------------


def _adjacency(polys: np.ndarray) -> list[np.ndarray]:
    """Neighbours of each polygon: those sharing more than 1 m of boundary."""
    tree = shapely.STRtree(polys)
    a, b = tree.query(polys, predicate="intersects")
    sel = a < b
    a, b = a[sel], b[sel]
    shared = shapely.length(
        shapely.intersection(shapely.boundary(polys[a]), shapely.boundary(polys[b]))
    )
    sel = shared > 1.0
    a, b = a[sel], b[sel]
    return _neighbour_lists(len(polys), a, b)


def _neighbour_lists(n: int, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    starts = np.searchsorted(src, np.arange(n + 1))
    return [np.unique(dst[starts[i] : starts[i + 1]]) for i in range(n)]


def _grow(
    weight: np.ndarray,
    nbrs: list[np.ndarray],
    xy: np.ndarray,
    *,
    lo: float,
    hi: float,
    target: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Group adjacent nodes into connected regions of total weight in ``[lo, hi]``.

    Regions grow from seeds taken in a north-to-south, west-to-east sweep, by
    distance to the seed, up to a random target; undersized regions are then
    dissolved into their smallest neighbours.
    """
    n = len(weight)
    labels = np.full(n, -1)
    band = max(float(np.sqrt(max(np.ptp(xy[:, 0]) * np.ptp(xy[:, 1]), 1.0) / max(n, 1))) * 4, 1.0)
    row = np.floor((xy[:, 1].max() - xy[:, 1]) / band)
    order = np.lexsort((np.where(row % 2 == 0, xy[:, 0], -xy[:, 0]), row))
    totals: list[float] = []
    for s in order:
        if labels[s] >= 0:
            continue
        lab = len(totals)
        goal = rng.uniform(*target)
        labels[s] = lab
        tot = float(weight[s])
        heap = [(float(np.hypot(*(xy[j] - xy[s]))), int(j)) for j in nbrs[s] if labels[j] < 0]
        heapq.heapify(heap)
        while heap and tot < goal:
            _, j = heapq.heappop(heap)
            if labels[j] >= 0 or tot + weight[j] > hi:
                continue
            labels[j] = lab
            tot += float(weight[j])
            for q in nbrs[j]:
                if labels[q] < 0:
                    heapq.heappush(heap, (float(np.hypot(*(xy[q] - xy[s]))), int(q)))
        totals.append(tot)
    tot_arr = np.array(totals)
    small = tot_arr < lo
    if small.all():
        return np.zeros(n, dtype=np.int64)
    if not small.any():
        return _relabel(labels)
    labels[small[labels]] = -1
    sums = np.where(small, 0.0, tot_arr)
    pending = np.flatnonzero(labels < 0)
    while len(pending):
        progress = False
        for i in pending:
            labs = {int(labels[j]) for j in nbrs[i] if labels[j] >= 0}
            if not labs:
                continue
            fits = [lab for lab in labs if sums[lab] + weight[i] <= hi]
            pick = min(fits or labs, key=lambda lab: (sums[lab], lab))
            labels[i] = pick
            sums[pick] += weight[i]
            progress = True
        pending = np.flatnonzero(labels < 0)
        if not progress:  # disconnected leftovers: a region of their own
            labels[pending] = labels.max() + 1
            break
    return _relabel(labels)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive labels 0..k-1 keeping the order of the original labels."""
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


# --------------------------------------------------------------------------------------------
# the public generator
# --------------------------------------------------------------------------------------------


def synth_city(
    *,
    n_buildings: int = 2000,
    seed: int | np.random.Generator | None = 0,
    center: tuple[float, float] = (118.78, 32.05),
    unit_area: float = 90.0,
    community_households: tuple[int, int] = (1500, 8000),
    staff_per_households: float = 60.0,
    with_households: bool = True,
) -> dict[str, gpd.GeoDataFrame]:
    """Generate a synthetic Chinese city as the seven canonical raw layers.

    Parameters
    ----------
    n_buildings : int, default 2000
        Number of buildings to draw (honoured within a few percent; the city is
        sized for it).
    seed : int, numpy.random.Generator or None, default 0
        Seed or generator; the same seed gives identical frames.
    center : (float, float), default (118.78, 32.05)
        City centre as (lon, lat) in degrees (CGCS2000/WGS84). It picks the
        CGCS2000 3-degree Gauss-Krüger zone of every layer (see
        :func:`gauss_kruger_epsg`).
    unit_area : float, default 90.0
        Floor area per household in m²: a residential building holds about
        ``footprint × levels / unit_area`` households (so estimates from
        footprints agree with the drawn counts), except old courtyard houses,
        shared by 1–12 households (大杂院), which estimates undercount.
    community_households : (int, int), default (1500, 8000)
        Household band of a community (社区); communities are unions of whole
        adjacent blocks grown to a random size inside the band.
    staff_per_households : float, default 60.0
        About one staff candidate per this many households (fewer in a few
        communities, so that some grids end up short).
    with_households : bool, default True
        Also draw the ``households`` layer (the largest one); when False the
        layer is an empty frame with the canonical columns.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        Keys ``communities``, ``buildings``, ``households``, ``roads``,
        ``barriers``, ``compounds``, ``staff``, all in the same projected CRS
        (metres) with the canonical columns of :mod:`gridmap.layers`
        (``buildings`` also carries ``compound_id``).

    Raises
    ------
    InputError
        If a parameter is out of range (e.g. ``n_buildings < 1``).

    Examples
    --------
    >>> city = synth_city(n_buildings=300, seed=1)
    >>> sorted(city)
    ['barriers', 'buildings', 'communities', 'compounds', 'households', 'roads', 'staff']
    >>> city["buildings"].crs.to_epsg()
    4549
    >>> abs(len(city["buildings"]) - 300) <= 30
    True
    >>> int(city["buildings"]["households"].sum()) == len(city["households"])
    True
    """
    if not isinstance(n_buildings, int | np.integer) or n_buildings < 1:
        raise InputError(f"n_buildings must be a positive integer, got {n_buildings!r}")
    lo, hi = community_households
    if not 0 < lo < hi:
        raise InputError(
            "community_households must be (low, high) with 0 < low < high,"
            f" got {community_households!r}"
        )
    if not unit_area > 0 or not staff_per_households > 0:
        raise InputError("unit_area and staff_per_households must be positive numbers")
    lon, lat = float(center[0]), float(center[1])
    if not (math.isfinite(lat) and 3.0 <= lat <= 54.0):
        raise InputError(
            f"latitude {lat!r} is outside China (3–54°N); pass center=(lon, lat) in degrees"
        )
    epsg = gauss_kruger_epsg(lon)
    crs = pyproj.CRS.from_epsg(epsg)
    cx, cy = pyproj.Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    area_km2 = n_buildings / _DENSITY * 1.15
    for _attempt in range(6):
        aspect = rng.uniform(0.75, 1.33)
        side = math.sqrt(area_km2 * 1e6)
        half_w, half_h = side * math.sqrt(aspect) / 2, side / math.sqrt(aspect) / 2
        roads, blocks_list, water, city, _cells = _network(rng, half_w, half_h, cx, cy)
        blocks = np.array(blocks_list, dtype=object)
        lay = _layout(rng, blocks, cx, cy, math.hypot(half_w, half_h))
        got = len(lay["foot"])
        if got >= n_buildings:
            break
        area_km2 *= max(n_buildings / max(got, 1), 1.5) * 1.1
    keep = np.sort(rng.choice(got, size=min(n_buildings, got), replace=False))
    return _assemble(
        rng,
        lay,
        keep,
        blocks,
        roads,
        water,
        crs,
        cx,
        cy,
        unit_area,
        lo,
        hi,
        staff_per_households,
        with_households,
    )


def _assemble(
    rng: np.random.Generator,
    lay: dict[str, Any],
    keep: np.ndarray,
    blocks: np.ndarray,
    roads: list,
    water: list,
    crs: pyproj.CRS,
    cx: float,
    cy: float,
    unit_area: float,
    lo: float,
    hi: float,
    staff_per: float,
    with_households: bool,
) -> dict[str, gpd.GeoDataFrame]:
    theta, bx, by = lay["theta"], lay["bx"], lay["by"]
    part = lay["part"][keep]
    pblock = lay["part_block"]
    blk = pblock[part]
    kind = lay["part_kind"][part]
    nb = len(keep)
    foot = _rotate(lay["foot"][keep], theta[blk], bx[blk], by[blk], inverse=True)
    fw, fd = lay["fw"][keep], lay["fd"][keep]
    fa = shapely.area(foot)

    # compounds: walled parts that kept at least one building
    walled = lay["walled"]
    used = np.zeros(len(walled), bool)
    used[part] = True
    cparts = np.flatnonzero(walled & used)
    comp_of_part = np.full(len(walled), -1)
    comp_of_part[cparts] = np.arange(len(cparts))
    cgeom = _rotate(
        lay["parts"][cparts],
        theta[pblock[cparts]],
        bx[pblock[cparts]],
        by[pblock[cparts]],
        inverse=True,
    )
    cnames_pool = _Names(rng)
    cnames = []
    for _ in range(len(cparts)):
        stem, rnd = cnames_pool.take()
        suffix = _COMPOUND_SUFFIXES[int(rng.integers(len(_COMPOUND_SUFFIXES)))]
        cnames.append(stem + suffix + ("" if rnd == 0 else f"{rnd + 1}期"))
    cids = [f"Q{i + 1:05d}" for i in range(len(cparts))]

    # building attributes
    u = rng.random(nb)
    levels = np.zeros(nb)
    use = np.full(nb, "residential", dtype=object)
    t = kind == _TOWER
    levels[t] = rng.integers(18, 34, t.sum())
    s = kind == _SLAB
    levels[s] = np.where(
        rng.random(s.sum()) < 0.6, rng.integers(5, 8, s.sum()), rng.integers(11, 18, s.sum())
    )
    lr = kind == _LOWRISE
    levels[lr] = np.where(rng.random(lr.sum()) < 0.7, 1, 2)
    nr = kind == _NONRES
    levels[nr] = rng.integers(1, 13, nr.sum())
    # amenities inside residential parts and shops among the low-rise houses
    amen = (t | s) & (u < 0.04)
    shop = lr & (u < 0.10)
    kind_nonres = nr | amen | shop
    levels[amen] = rng.integers(1, 4, amen.sum())
    cat = rng.random(nb)
    use[kind_nonres] = np.where(
        cat[kind_nonres] < 0.55,
        "commercial",
        np.where(cat[kind_nonres] < 0.93, "public", "industrial"),
    )
    use[shop] = "commercial"
    mixed = s & ~amen & (u > 0.95)
    use[mixed] = "mixed"
    res = ~kind_nonres
    floors_res = np.where(mixed, levels - 1, levels)
    # floor area per household: flats about ``unit_area``; an old courtyard (大杂院)
    # is shared by one family or, room by room, by up to a dozen
    per_hh = np.where(
        lr, np.exp(rng.uniform(np.log(unit_area / 7.5), np.log(1.1 * unit_area), nb)), unit_area
    )
    hh = np.round(fa * floors_res * rng.uniform(0.8, 1.05, nb) / per_hh)
    bounds_lo = np.select([t, s, lr], [80, 24, 1], 0)
    bounds_hi = np.select([t, s, lr], [400, 120, 12], 0)
    hh = np.where(res, np.clip(hh, bounds_lo, bounds_hi), 0).astype(np.int64)
    units = np.where(
        t, np.clip(np.round(fa / 260.0), 1, 3), np.where(s, np.clip(np.round(fw / 14.0), 2, 6), 0)
    )
    units = np.where(res, units, 0).astype(np.int64)
    width = max(6, len(str(nb)))
    bids = np.array([f"B{i + 1:0{width}d}" for i in range(nb)], dtype=object)

    # communities from blocks
    block_hh = np.bincount(blk, weights=hh, minlength=len(blocks))
    nbrs = _adjacency(blocks)
    cen = shapely.centroid(blocks)
    bxy = np.column_stack([shapely.get_x(cen), shapely.get_y(cen)])
    t_lo, t_hi = lo + 0.25 * (hi - lo), lo + 0.55 * (hi - lo)
    comm = _grow(block_hh, nbrs, bxy, lo=lo, hi=hi, target=(t_lo, t_hi), rng=rng)
    nc = int(comm.max()) + 1
    order = np.argsort(comm, kind="stable")
    splits = np.split(order, np.cumsum(np.bincount(comm, minlength=nc))[:-1])
    cgeoms = np.array([shapely.coverage_union_all(blocks[ix]) for ix in splits], dtype=object)
    cgeoms = np.array(
        [g.geoms[0] if g.geom_type == "MultiPolygon" and len(g.geoms) == 1 else g for g in cgeoms],
        dtype=object,
    )
    # streets (街道) and districts (区)
    ca, cb = [], []
    for i, ns in enumerate(nbrs):
        for j in ns:
            if comm[i] != comm[j]:
                ca.append(comm[i])
                cb.append(comm[j])
    pairs = (
        np.unique(np.column_stack([ca, cb]).astype(int).reshape(-1, 2), axis=0)
        if ca
        else np.zeros((0, 2), int)
    )
    pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    cnb = _neighbour_lists(nc, pairs[:, 0], pairs[:, 1])
    ccen = shapely.centroid(cgeoms)
    cxy = np.column_stack([shapely.get_x(ccen), shapely.get_y(ccen)])
    street = _grow(np.ones(nc), cnb, cxy, lo=5, hi=25, target=(8, 16), rng=rng)
    nst = int(street.max()) + 1
    sa = street[pairs[:, 0]]
    sb = street[pairs[:, 1]]
    sel = sa != sb
    spairs = np.unique(np.column_stack([np.minimum(sa, sb), np.maximum(sa, sb)])[sel], axis=0)
    snb = _neighbour_lists(nst, spairs[:, 0], spairs[:, 1])
    sxy = np.array([cxy[street == k].mean(axis=0) for k in range(nst)])
    district = _grow(np.ones(nst), snb, sxy, lo=4, hi=60, target=(6, 12), rng=rng)
    ndist = int(district.max()) + 1
    dnames = _Names(rng)
    dists = list(_DISTRICTS[:ndist])
    while len(dists) < ndist:
        stem, _ = dnames.take()
        dists.append((str(320119 + len(dists) - len(_DISTRICTS)), stem + "区"))
    snames_pool = _Names(rng, _STREET_OFFICES)
    st_name = [snames_pool.take()[0] + "街道" for _ in range(nst)]
    st_code = [""] * nst
    seq = np.zeros(ndist, int)
    for k in range(nst):
        d = district[k]
        seq[d] += 1
        st_code[k] = f"{dists[d][0]}{seq[d]:03d}"
    cm_pool = _Names(rng)
    cseq = np.zeros(nst, int)
    crow = []
    for c in range(nc):
        k = street[c]
        cseq[k] += 1
        stem, rnd = cm_pool.take()
        d = district[k]
        crow.append(
            {
                "community_id": f"C{c + 1:04d}",
                "name": stem + ("" if rnd == 0 else str(rnd + 1)) + "社区",
                "code": f"{st_code[k]}{cseq[k]:03d}",
                "street": st_name[k],
                "street_code": st_code[k],
                "district": dists[d][1],
                "district_code": dists[d][0],
            }
        )
    communities = gpd.GeoDataFrame(pd.DataFrame(crow), geometry=list(cgeoms), crs=crs)
    comm_ids = communities["community_id"].to_numpy(dtype=object)
    b_comm = comm_ids[comm[blk]]

    # roads and building names
    rgeoms = [r[0] for r in roads]
    road_names = np.array([r[1] for r in roads], dtype=object)
    roads_gdf = gpd.GeoDataFrame(
        {"name": list(road_names), "class": [r[2] for r in roads]}, geometry=rgeoms, crs=crs
    )
    bcomp = comp_of_part[part]
    names = np.empty(nb, dtype=object)
    in_comp = bcomp >= 0
    cnames_arr = np.array(cnames, dtype=object)
    seqno = pd.Series(bcomp).groupby(bcomp).cumcount().to_numpy() + 1
    names[in_comp] = [
        f"{a}{b}栋" for a, b in zip(cnames_arr[bcomp[in_comp]], seqno[in_comp], strict=True)
    ]
    out = ~in_comp
    if out.any():
        tree = shapely.STRtree(np.array(rgeoms, dtype=object))
        _, near = tree.query_nearest(
            shapely.centroid(foot[out]), return_distance=False, all_matches=False
        )
        rn = road_names[near]
        num = pd.Series(near).groupby(near).cumcount().to_numpy() + 1
        ukinds = use[out]
        pick = rng.integers(0, 6, out.sum())
        names[out] = [
            f"{r}{n}号"
            if uk in ("residential", "mixed")
            else r + _AMENITY_NAMES[uk][p % len(_AMENITY_NAMES[uk])]
            for r, n, uk, p in zip(rn, num, ukinds, pick, strict=True)
        ]
    comp_col = np.full(nb, None, dtype=object)
    comp_col[in_comp] = np.array(cids, dtype=object)[bcomp[in_comp]]
    buildings = gpd.GeoDataFrame(
        {
            "building_id": bids,
            "households": hh,
            "levels": levels.astype(float),
            "use": use,
            "name": names,
            "community_id": b_comm,
            "compound_id": comp_col,
        },
        geometry=foot,
        crs=crs,
    )
    compounds = gpd.GeoDataFrame(
        {"compound_id": cids, "name": cnames}, geometry=list(cgeom), crs=crs
    )
    wxy, widx = shapely.get_coordinates(shapely.get_exterior_ring(cgeom), return_index=True)
    walls = list(shapely.linestrings(wxy, indices=widx)) if len(cgeom) else []
    barriers = gpd.GeoDataFrame(
        {"kind": ["wall"] * len(walls) + ["water"] * len(water)},
        geometry=[*walls, *water],
        crs=crs,
    )

    # households
    bi = np.repeat(np.arange(nb), hh)
    nh = len(bi)
    kin = np.arange(nh) - np.repeat(np.cumsum(hh) - hh, hh)
    ux = np.where(lay["ell"][keep][bi], rng.uniform(-0.4, 0.0, nh), rng.uniform(-0.4, 0.4, nh))
    lx = lay["ox"][keep][bi] + ux * fw[bi]
    ly = lay["oy"][keep][bi] + rng.uniform(-0.4, 0.4, nh) * fd[bi]
    th = theta[blk[bi]]
    c_, s_ = np.cos(th), np.sin(th)
    hx = bx[blk[bi]] + lx * c_ - ly * s_
    hy = by[blk[bi]] + lx * s_ + ly * c_
    ub = units[bi]
    has_unit = ub > 0
    per = np.ceil(hh / np.maximum(units * np.maximum(floors_res, 1), 1)).astype(np.int64)
    pos = kin // np.maximum(ub, 1)
    floor = np.where(
        has_unit,
        np.minimum(pos // np.maximum(per[bi], 1) + 1, floors_res[bi]),
        np.minimum(rng.integers(1, 3, nh), levels[bi]),
    ) + np.where(mixed[bi], 1, 0)
    unit_labels = np.array([None, "1", "2", "3", "4", "5", "6"], dtype=object)
    unit = unit_labels[np.where(has_unit, kin % np.maximum(ub, 1) + 1, 0)]
    persons = rng.choice(np.arange(1, 6), size=nh, p=[0.2, 0.32, 0.27, 0.14, 0.07])
    flags = rng.random((nh, 5)) < np.array([0.05, 0.02, 0.02, 0.10, 0.03])
    persons = np.where(flags[:, 0], 1, persons)
    hwidth = max(7, len(str(nh)))
    hid = "H" + pd.Series(np.arange(1, nh + 1)).astype(str).str.zfill(hwidth)
    households = gpd.GeoDataFrame(
        {
            "household_id": hid,
            "building_id": bids[bi],
            "unit": unit,
            "floor": floor.astype(float),
            "persons": persons.astype(np.int64),
            "elderly_living_alone": flags[:, 0],
            "disabled": flags[:, 1],
            "on_assistance": flags[:, 2],
            "floating_population": flags[:, 3],
            "unemployed": flags[:, 4],
        },
        geometry=shapely.points(hx, hy),
        crs=crs,
    )

    # staff: homes drawn among households, thinner in a few communities
    n_staff = int(round(nh / staff_per))
    short = rng.random(nc) < 0.15
    wgt = np.where(short[comm[blk[bi]]], 0.15, 1.0)
    keys = rng.exponential(size=nh) / wgt
    if 0 < n_staff < nh:
        pick = np.sort(np.argpartition(keys, n_staff)[:n_staff])
    else:
        pick = np.arange(min(n_staff, nh))
    ns_ = len(pick)
    sur = np.array(list(_SURNAMES), dtype=object)[rng.integers(0, len(_SURNAMES), ns_)]
    giv = np.array(list(_GIVEN), dtype=object)
    g1 = giv[rng.integers(0, len(giv), ns_)]
    g2 = np.where(rng.random(ns_) < 0.7, giv[rng.integers(0, len(giv), ns_)], "")
    phone = 13_000_000_000 + rng.integers(0, 1_000_000_000, ns_)
    staff = gpd.GeoDataFrame(
        {
            "staff_id": [f"S{i + 1:05d}" for i in range(ns_)],
            "name": [a + b + c for a, b, c in zip(sur, g1, g2, strict=True)],
            "phone": [str(p) for p in phone],
            "home_building_id": bids[bi[pick]],
            "can_be_chief": rng.random(ns_) < 0.4,
        },
        geometry=shapely.points(hx[pick], hy[pick]),
        crs=crs,
    )
    if not with_households:
        households = households.iloc[:0].copy()
    return {
        "communities": communities,
        "buildings": buildings,
        "households": households,
        "roads": roads_gdf,
        "barriers": barriers,
        "compounds": compounds,
        "staff": staff,
    }


def synth_community(
    *, n_buildings: int = 150, seed: int | np.random.Generator | None = 0, **kwargs: Any
) -> dict[str, gpd.GeoDataFrame]:
    """Generate a small town that forms a single community (社区).

    A convenience for tests: :func:`synth_city` with a community band wide
    enough that every block falls into one community.

    Parameters
    ----------
    n_buildings : int, default 150
        Number of buildings.
    seed : int, numpy.random.Generator or None, default 0
        Seed or generator.
    **kwargs
        Passed on to :func:`synth_city` (``center``, ``unit_area`` …).

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        The canonical raw layers, with exactly one community.

    Examples
    --------
    >>> town = synth_community(n_buildings=80, seed=3)
    >>> len(town["communities"])
    1
    >>> set(town["buildings"]["community_id"]) == {"C0001"}
    True
    """
    kwargs.setdefault("community_households", (1, 10**9))
    return synth_city(n_buildings=n_buildings, seed=seed, **kwargs)
