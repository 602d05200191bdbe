"""Seeded synthetic towns with gated superblocks and an outskirts ring of natural villages.

A second generator, built differently from :func:`gridmap.synth.synth_city`, so that the
partitioner is not only measured on the cities of its own generator.
:func:`synth_rural_city` draws, in the CGCS2000 3-degree Gauss-Krüger zone of its centre:

* a **core** of superblocks on a rotated, jittered grid of arterials (``primary`` and
  ``secondary``; the core's edge is a ``secondary`` ring). Most superblocks hold one
  large gated compound (小区) with a wall and one dead-end ``service`` road inside —
  few internal roads for thousands of households, as in many new districts; some are
  split by a through ``residential`` street into two compounds; some are
  non-residential sites (schools, hospitals, offices) without households;
* an **outskirts ring of natural villages** (自然村): clusters of low-rise houses
  around a lane, separated by fields, linked to the core by ``unclassified`` country
  roads and to one another by ``track`` s; a canal (``water``) crosses the fields.
  Villages are grouped, two or three at a time, into village communities (村), whose
  borders run along field tracks.

The layers have the columns of :mod:`gridmap.layers` (``buildings`` also carries
``compound_id``), like :func:`gridmap.synth.synth_city`. Everything is drawn from one
:class:`numpy.random.Generator`: the same seed gives the same frames, byte for byte.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.errors import InputError
from gridmap.synth import _GIVEN, _SURNAMES, _Names, gauss_kruger_epsg

__all__ = ["synth_rural_city"]

_SETBACK = 14.0  # metres between a road centreline and a compound wall
_ROAD_CLEAR = 7.0  # no building closer than this to a road, track or canal
_SITE_NAMES = ("小学", "中学", "医院", "政务中心", "产业园", "商务中心", "体育公园")


def _rect(x: np.ndarray, y: np.ndarray, w: np.ndarray, d: np.ndarray, ang: np.ndarray) -> Any:
    """Rectangles centred on (x, y), ``w`` along the angle ``ang`` and ``d`` across it."""
    c, s = np.cos(ang), np.sin(ang)
    du = np.array([-0.5, 0.5, 0.5, -0.5, -0.5])
    dv = np.array([-0.5, -0.5, 0.5, 0.5, -0.5])
    px = x[:, None] + np.outer(w, du) * c[:, None] - np.outer(d, dv) * s[:, None]
    py = y[:, None] + np.outer(w, du) * s[:, None] + np.outer(d, dv) * c[:, None]
    return shapely.polygons(np.stack([px, py], axis=-1))


def _core(
    rng: np.random.Generator, nx: int, ny: int, size: float
) -> tuple[np.ndarray, np.ndarray, list[tuple[Any, str]]]:
    """Grid lines of the core (jittered) and its arterials as (line, class)."""
    xs = np.concatenate([[0.0], np.cumsum(size * rng.uniform(0.85, 1.15, nx))])
    ys = np.concatenate([[0.0], np.cumsum(size * rng.uniform(0.85, 1.15, ny))])
    xs -= xs[-1] / 2
    ys -= ys[-1] / 2
    roads: list[tuple[Any, str]] = []
    for k, x in enumerate(xs):
        edge = k in (0, nx)
        cls = "secondary" if edge or k % 2 == 0 else "primary"
        roads.append((shapely.LineString([(x, ys[0]), (x, ys[-1])]), cls))
    for k, y in enumerate(ys):
        edge = k in (0, ny)
        cls = "secondary" if edge or k % 2 == 1 else "primary"
        roads.append((shapely.LineString([(xs[0], y), (xs[-1], y)]), cls))
    return xs, ys, roads


def _rows(
    rng: np.random.Generator, box: tuple[float, float, float, float], tower: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Slab rows (行列式) or towers on a grid inside ``box``: x, y, w, d, levels."""
    x0, y0, x1, y1 = box
    sx, sy = (55.0, 60.0) if tower else (74.0, 38.0)
    gx = np.arange(x0 + sx / 2, x1 - sx / 2 + 1e-9, sx)
    gy = np.arange(y0 + sy / 2, y1 - sy / 2 + 1e-9, sy)
    if len(gx) == 0 or len(gy) == 0:
        z = np.zeros(0)
        return z, z, z, z, z
    x, y = (a.ravel() for a in np.meshgrid(gx, gy))
    n = len(x)
    if tower:
        w, d = rng.uniform(22.0, 30.0, n), rng.uniform(18.0, 24.0, n)
        levels = rng.integers(18, 34, n).astype(float)
    else:
        w, d = rng.uniform(48.0, 64.0, n), rng.uniform(11.0, 14.0, n)
        high = rng.random() < 0.35
        levels = (rng.integers(11, 19, n) if high else np.full(n, 6)).astype(float)
    return x, y, w, d, levels


def synth_rural_city(
    *,
    core_blocks: tuple[int, int] = (3, 3),
    block_size: float = 380.0,
    n_villages: int = 8,
    seed: int | np.random.Generator | None = 0,
    center: tuple[float, float] = (118.95, 31.85),
    unit_area: float = 90.0,
    staff_per_households: float = 60.0,
    with_households: bool = True,
) -> dict[str, gpd.GeoDataFrame]:
    """Generate a town of gated superblocks ringed by natural villages, as raw layers.

    Parameters
    ----------
    core_blocks : (int, int), default (3, 3)
        Superblocks of the core along x and y (0 × 0: villages only).
    block_size : float, default 380.0
        Mean side of a superblock between arterial centrelines, in metres.
    n_villages : int, default 8
        Natural villages in the outskirts ring (0: no outskirts).
    seed : int, numpy.random.Generator or None, default 0
        Seed or generator; the same seed gives identical frames.
    center : (float, float), default (118.95, 31.85)
        Centre as (lon, lat) in degrees; picks the CGCS2000 Gauss-Krüger zone.
    unit_area : float, default 90.0
        Floor area per household in m² of flats (village houses: about 1.6 times that).
    staff_per_households : float, default 60.0
        About one staff candidate per this many households.
    with_households : bool, default True
        Also draw the ``households`` layer.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        Keys ``communities``, ``buildings``, ``households``, ``roads``, ``barriers``,
        ``compounds``, ``staff``, in one projected CRS (metres), with the canonical
        columns; ``buildings`` also carries ``compound_id`` and ``village`` (the
        natural village a house belongs to, None in the core).

    Raises
    ------
    InputError
        If a parameter is out of range.

    Examples
    --------
    >>> town = synth_rural_city(core_blocks=(2, 1), n_villages=4, seed=1)
    >>> sorted(town)
    ['barriers', 'buildings', 'communities', 'compounds', 'households', 'roads', 'staff']
    >>> sorted(set(town["roads"]["class"]))
    ['primary', 'residential', 'secondary', 'service', 'track', 'unclassified']
    >>> town["buildings"]["village"].nunique()
    4
    >>> int(town["buildings"]["households"].sum()) == len(town["households"])
    True
    """
    nx, ny = (int(v) for v in core_blocks)
    if nx < 0 or ny < 0 or (nx == 0) != (ny == 0):
        raise InputError(
            f"core_blocks must be two positive integers or (0, 0), got {core_blocks!r}"
        )
    if not isinstance(n_villages, int | np.integer) or n_villages < 0:
        raise InputError(f"n_villages must be an integer >= 0, got {n_villages!r}")
    if nx == 0 and n_villages == 0:
        raise InputError("nothing to draw: pass core_blocks > (0, 0) or n_villages > 0")
    if not (math.isfinite(block_size) and 200.0 <= block_size <= 2000.0):
        raise InputError(f"block_size must be between 200 and 2000 metres, got {block_size!r}")
    if not unit_area > 0 or not staff_per_households > 0:
        raise InputError("unit_area and staff_per_households must be positive numbers")
    lon, lat = float(center[0]), float(center[1])
    if not (math.isfinite(lat) and 3.0 <= lat <= 54.0):
        raise InputError(f"latitude {lat!r} is outside China (3–54°N); pass center=(lon, lat)")
    epsg = gauss_kruger_epsg(lon)
    crs = pyproj.CRS.from_epsg(epsg)
    ox, oy = pyproj.Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    theta = rng.uniform(-0.35, 0.35)  # the whole town is rotated: not axis-aligned

    roads: list[tuple[Any, str]] = []
    walls: list[Any] = []
    cols: dict[str, list[Any]] = {k: [] for k in ("x", "y", "w", "d", "ang", "lev", "use")}
    bcomp: list[Any] = []
    bvill: list[Any] = []
    bname: list[str] = []
    comp_geoms: list[Any] = []
    comm_geoms: list[Any] = []
    comm_kind: list[str] = []

    def add(*values: Any, comp: str | None, vill: str | None, names: list[str]) -> None:
        """Append buildings: x, y, w, d, angle, levels, use (arrays or scalars)."""
        n = len(values[0])
        for k, v in zip(("x", "y", "w", "d", "ang", "lev", "use"), values, strict=True):
            cols[k].append(np.broadcast_to(np.asarray(v), (n,)).copy())
        bcomp.extend([comp] * n)
        bvill.extend([vill] * n)
        bname.extend(names)

    # ---- core: superblocks between arterials
    core = shapely.Polygon()
    if nx:
        xs, ys, core_roads = _core(rng, nx, ny, block_size)
        roads.extend(core_roads)
        core = shapely.box(xs[0], ys[0], xs[-1], ys[-1])
        blocks = [(i, j) for j in range(ny) for i in range(nx)]
        kinds = rng.choice(3, size=len(blocks), p=[0.6, 0.25, 0.15])
        if not (kinds != 2).any():
            kinds[0] = 0
        for (i, j), kind in zip(blocks, kinds, strict=True):
            x0, x1, y0, y1 = xs[i], xs[i + 1], ys[j], ys[j + 1]
            inner = (x0 + _SETBACK, y0 + _SETBACK, x1 - _SETBACK, y1 - _SETBACK)
            if kind == 2:  # a non-residential site: a few large buildings
                walls.append(shapely.LineString(shapely.box(*inner).exterior.coords))
                n = int(rng.integers(2, 5))
                gx = np.linspace(inner[0], inner[2], n + 2)[1:-1]
                gy = (inner[1] + inner[3]) / 2 + rng.uniform(-0.2, 0.2, n) * (y1 - y0)
                site_use = "public" if rng.random() < 0.6 else "commercial"
                site = _SITE_NAMES[int(rng.integers(len(_SITE_NAMES)))]
                add(
                    gx,
                    gy,
                    rng.uniform(40, 70, n),
                    rng.uniform(25, 45, n),
                    0.0,
                    rng.integers(2, 8, n).astype(float),
                    site_use,
                    comp=None,
                    vill=None,
                    names=[f"{site}{k + 1}号楼" for k in range(n)],
                )
                continue
            halves = [inner]
            if kind == 1:  # a through residential street splits it into two compounds
                mx = (x0 + x1) / 2 + rng.uniform(-0.1, 0.1) * (x1 - x0)
                roads.append((shapely.LineString([(mx, y0), (mx, y1)]), "residential"))
                halves = [
                    (inner[0], inner[1], mx - _SETBACK, inner[3]),
                    (mx + _SETBACK, inner[1], inner[2], inner[3]),
                ]
            for box in halves:
                poly = shapely.box(*box)
                walls.append(shapely.LineString(poly.exterior.coords))
                cid = f"Q{len(comp_geoms) + 1:04d}"
                comp_geoms.append(poly)
                # one dead-end service road from the gate into the compound
                gxm = (box[0] + box[2]) / 2 + rng.uniform(-0.15, 0.15) * (box[2] - box[0])
                reach = box[1] + rng.uniform(0.45, 0.7) * (box[3] - box[1])
                road = shapely.LineString([(gxm, box[1] - _SETBACK), (gxm, reach)])
                roads.append((road, "service"))
                x, y, w, d, lev = _rows(
                    rng, (box[0] + 6, box[1] + 6, box[2] - 6, box[3] - 6), tower=rng.random() < 0.3
                )
                add(
                    x,
                    y,
                    w,
                    d,
                    0.0,
                    lev,
                    "residential",
                    comp=cid,
                    vill=None,
                    names=[f"{cid}-{k + 1}栋" for k in range(len(x))],
                )
        # communities of the core: superblocks two by two along rows
        starts = list(range(0, nx - 1, 2)) if nx > 1 else [0]
        for j in range(ny):
            for n_i, i in enumerate(starts):
                k = starts[n_i + 1] if n_i + 1 < len(starts) else nx
                comm_geoms.append(shapely.box(xs[i], ys[j], xs[k], ys[j + 1]))
                comm_kind.append("core")

    # ---- outskirts: natural villages separated by fields
    rc = float(shapely.minimum_bounding_radius(core)) if nx else 0.0
    if n_villages:
        step = 2 * math.pi / n_villages
        ang = np.arange(n_villages) * step + rng.uniform(-0.2, 0.2, n_villages) * step
        ang += rng.uniform(0, 2 * math.pi)
        dist = rc + rng.uniform(450.0, 900.0, n_villages) + (250.0 if not nx else 0.0)
        rad = rng.uniform(80.0, 250.0, n_villages)
        vx, vy = dist * np.cos(ang), dist * np.sin(ang)
        r_out = float((dist + rad).max()) + 350.0
        outer = shapely.box(-r_out, -r_out, r_out, r_out)
        # village communities: consecutive villages, two or three at a time
        groups: list[list[int]] = []
        k = 0
        while k < n_villages:
            take = int(rng.integers(2, 4))
            if n_villages - (k + take) == 1:
                take += 1
            groups.append(list(range(k, min(k + take, n_villages))))
            k += take
        cuts = [
            (ang[g[0]] + (ang[g[0] - 1] - (2 * math.pi if g[0] == 0 else 0.0))) / 2 for g in groups
        ]
        far = 4 * r_out
        for gi in range(len(groups)):
            a0 = cuts[gi]
            a1 = cuts[(gi + 1) % len(groups)] + (2 * math.pi if gi + 1 == len(groups) else 0.0)
            if len(groups) == 1:
                a1 = a0 + 2 * math.pi
            arc = np.linspace(a0, a1, 32)
            xy = np.column_stack([far * np.cos(arc), far * np.sin(arc)])
            # both rays end exactly where the neighbouring wedges' rays end (no sliver)
            nxt = cuts[(gi + 1) % len(groups)]
            xy[-1] = (far * math.cos(nxt), far * math.sin(nxt))
            wedge = shapely.Polygon([(0.0, 0.0), *map(tuple, xy)])
            comm_geoms.append(shapely.difference(shapely.intersection(wedge, outer), core))
            comm_kind.append("village")
            if len(groups) > 1:  # the border between village communities is a field track
                ray = shapely.LineString([(0, 0), (far * math.cos(a0), far * math.sin(a0))])
                track = shapely.difference(shapely.intersection(ray, outer), core)
                roads.append((shapely.line_merge(track), "track"))
        # country roads from each village to the core, tracks between neighbours
        for v in range(n_villages):
            end = (0.0, 0.0)
            if nx:
                p = shapely.Point(vx[v], vy[v])
                end = shapely.get_coordinates(shapely.shortest_line(core.exterior, p))[0]
            link = shapely.LineString([end, (vx[v], vy[v])])
            roads.append((link, "unclassified"))
            nxt = (v + 1) % n_villages
            if n_villages > 2 and rng.random() < 0.6:
                roads.append((shapely.LineString([(vx[v], vy[v]), (vx[nxt], vy[nxt])]), "track"))
        # field tracks (机耕路): a rotated, jittered grid across the fields, every
        # 250–400 m; a track that would run through a village is not drawn
        fa_ = rng.uniform(0, math.pi / 2)
        fu = np.array([math.cos(fa_), math.sin(fa_)])
        fv = np.array([-fu[1], fu[0]])
        for axis, normal in ((fu, fv), (fv, fu)):
            off = -r_out * 1.5 + rng.uniform(0, 300.0)
            while off < r_out * 1.5:
                base = normal * off
                line = shapely.LineString([base - axis * far, base + axis * far])
                piece = shapely.difference(shapely.intersection(line, outer), core)
                near = shapely.distance(line, shapely.points(vx, vy)) < rad + 30.0
                if not near.any() and not piece.is_empty:
                    for part in shapely.get_parts(shapely.line_merge(piece)):
                        if part.length > 50.0:
                            roads.append((part, "track"))
                off += rng.uniform(250.0, 400.0)
        # a canal across the fields between two villages
        ca = ang[0] + step / 2 + rng.uniform(-0.1, 0.1) * step
        canal = shapely.difference(
            shapely.LineString([(0, 0), (far * math.cos(ca), far * math.sin(ca))]), core
        )
        canal = shapely.intersection(canal, outer)
        # houses: a jittered grid in a disc, a lane through the middle
        pending: list[tuple[int, np.ndarray, np.ndarray, float]] = []
        for v in range(n_villages):
            va = rng.uniform(0, math.pi)
            lane_d = np.array([math.cos(va), math.sin(va)]) * (rad[v] + 15.0)
            lane = shapely.LineString(
                [(vx[v] - lane_d[0], vy[v] - lane_d[1]), (vx[v] + lane_d[0], vy[v] + lane_d[1])]
            )
            roads.append((lane, "residential"))
            g = np.arange(-rad[v], rad[v] + 1e-9, 21.0)
            u, t = (a.ravel() for a in np.meshgrid(g, g))
            keep = (np.hypot(u, t) <= rad[v]) & (rng.random(len(u)) < 0.8)
            u = u[keep] + rng.uniform(-3, 3, keep.sum())
            t = t[keep] + rng.uniform(-3, 3, keep.sum())
            x = vx[v] + u * math.cos(va) - t * math.sin(va)
            y = vy[v] + u * math.sin(va) + t * math.cos(va)
            pending.append((v, x, y, va))
        line_geoms = [g for g, _ in roads]
        clear = shapely.union_all(
            [
                *shapely.buffer(np.array(line_geoms, dtype=object), _ROAD_CLEAR + 8.0),
                shapely.buffer(canal, _ROAD_CLEAR + 8.0),
            ]
        )
        vnames = _Names(rng)
        village_names = [vnames.take()[0] + "村" for _ in range(n_villages)]
        for v, x, y, va in pending:
            ok = ~shapely.intersects(clear, shapely.points(x, y))
            x, y = x[ok], y[ok]
            n = len(x)
            v_use = np.where(rng.random(n) < 0.03, "public", "residential").astype(object)
            add(
                x,
                y,
                rng.uniform(10.0, 14.0, n),
                rng.uniform(8.0, 11.0, n),
                va,
                rng.integers(1, 4, n).astype(float),
                v_use,
                comp=None,
                vill=village_names[v],
                names=[f"{village_names[v]}{k + 1}号" for k in range(n)],
            )
    else:
        canal = None

    # ---- buildings
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}
    foot = _rect(cat["x"], cat["y"], cat["w"], cat["d"], cat["ang"])
    # no building on a road, a track, a wall or the canal
    lines = np.array(
        [g for g, _ in roads] + walls + ([canal] if canal is not None else []), dtype=object
    )
    hit = shapely.STRtree(shapely.buffer(lines, 3.0)).query(foot, predicate="intersects")[0]
    ok = np.ones(len(foot), dtype=bool)
    ok[hit] = False
    foot = foot[ok]
    cat = {k: v[ok] for k, v in cat.items()}
    bcomp = [c for c, k in zip(bcomp, ok, strict=True) if k]
    bvill = [c for c, k in zip(bvill, ok, strict=True) if k]
    bname = [c for c, k in zip(bname, ok, strict=True) if k]
    nb = len(foot)
    use = cat["use"].astype(object)
    levels = cat["lev"].astype(float)
    fa = shapely.area(foot)
    in_village = np.array([v is not None for v in bvill], dtype=bool)
    per = np.where(in_village, 1.6 * unit_area, unit_area)
    hh = np.round(fa * levels * rng.uniform(0.8, 1.05, nb) / per)
    hh = np.where(in_village, np.clip(hh, 1, 4), np.clip(hh, 1, 400))
    hh = np.where(use == "residential", hh, 0).astype(np.int64)

    # ---- to the world: rotate by theta about the origin, move to the centre
    def world(geoms: Any) -> Any:
        c, s = math.cos(theta), math.sin(theta)
        return shapely.transform(
            geoms,
            lambda xy: np.column_stack(
                [ox + xy[:, 0] * c - xy[:, 1] * s, oy + xy[:, 0] * s + xy[:, 1] * c]
            ),
        )

    foot = world(foot)
    comm_arr = world(np.array(comm_geoms, dtype=object))
    comm_arr = np.array(
        [
            g.geoms[0] if g.geom_type == "MultiPolygon" and len(g.geoms) == 1 else g
            for g in comm_arr
        ],
        dtype=object,
    )
    # communities and their codes
    nc = len(comm_arr)
    names = _Names(rng)
    street_core = names.take()[0] + "街道"
    town = names.take()[0] + "镇"
    rows = []
    seq = {"core": 0, "village": 0}
    for c in range(nc):
        kind = comm_kind[c]
        seq[kind] += 1
        st, st_code = (street_core, "320115001") if kind == "core" else (town, "320115101")
        rows.append(
            {
                "community_id": f"C{c + 1:04d}",
                "name": names.take()[0] + ("社区" if kind == "core" else "村"),
                "code": f"{st_code}{(200 if kind == 'village' else 0) + seq[kind]:03d}",
                "street": st,
                "street_code": st_code,
                "district": "江宁区",
                "district_code": "320115",
            }
        )
    communities = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=list(comm_arr), crs=crs)
    bi, ci = shapely.STRtree(comm_arr).query(shapely.point_on_surface(foot), predicate="within")
    owner = np.full(nb, -1)
    owner[bi] = ci
    inside = owner >= 0  # a house astride a community border is not drawn
    width = max(6, len(str(nb)))
    kept = np.flatnonzero(inside)
    bids = np.array([f"B{i + 1:0{width}d}" for i in range(len(kept))], dtype=object)
    foot, hh, levels, use = foot[kept], hh[kept], levels[kept], use[kept]
    buildings = gpd.GeoDataFrame(
        {
            "building_id": bids,
            "households": hh,
            "levels": levels,
            "use": use,
            "name": np.array(bname, dtype=object)[kept],
            "community_id": communities["community_id"].to_numpy()[owner[kept]],
            "compound_id": np.array(bcomp, dtype=object)[kept],
            "village": np.array(bvill, dtype=object)[kept],
        },
        geometry=foot,
        crs=crs,
    )

    # ---- roads, barriers, compounds
    rnames = _Names(rng)
    suffix = {
        "primary": "大道",
        "secondary": "路",
        "residential": "街",
        "service": "巷",
        "unclassified": "公路",
        "track": "机耕路",
    }
    road_geoms = world(np.array([g for g, _ in roads], dtype=object))
    roads_gdf = gpd.GeoDataFrame(
        {"name": [rnames.take()[0] + suffix[c] for _, c in roads], "class": [c for _, c in roads]},
        geometry=list(road_geoms),
        crs=crs,
    )
    bar = [*walls, *([canal] if canal is not None and not canal.is_empty else [])]
    barriers = gpd.GeoDataFrame(
        {"kind": ["wall"] * len(walls) + ["water"] * (len(bar) - len(walls))},
        geometry=list(world(np.array(bar, dtype=object))) if bar else [],
        crs=crs,
    )
    cnames = _Names(rng)
    compounds = gpd.GeoDataFrame(
        {
            "compound_id": [f"Q{i + 1:04d}" for i in range(len(comp_geoms))],
            "name": [cnames.take()[0] + "花园" for _ in comp_geoms],
        },
        geometry=list(world(np.array(comp_geoms, dtype=object))) if comp_geoms else [],
        crs=crs,
    )
    households, staff = _people(rng, buildings, staff_per_households)
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


def _people(
    rng: np.random.Generator, buildings: gpd.GeoDataFrame, staff_per: float
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Households as points inside their building, and a staff roster drawn among them."""
    crs = buildings.crs
    hh = buildings["households"].to_numpy(dtype=np.int64)
    geoms = np.asarray(buildings.geometry.array, dtype=object)
    bi = np.repeat(np.arange(len(hh)), hh)
    nh = len(bi)
    # a point inside the (convex) footprint: a random mix of its corners
    ring = shapely.get_coordinates(shapely.get_exterior_ring(geoms)).reshape(len(hh), 5, 2)[:, :4]
    wts = rng.dirichlet(np.ones(4), nh) if nh else np.zeros((0, 4))
    xy = np.einsum("nk,nkd->nd", wts, ring[bi]) if nh else np.zeros((0, 2))
    levels = np.maximum(buildings["levels"].to_numpy(dtype=float), 1)[bi]
    floor = np.floor(rng.random(nh) * levels) + 1
    persons = rng.choice(np.arange(1, 6), size=nh, p=[0.2, 0.32, 0.27, 0.14, 0.07])
    flags = rng.random((nh, 5)) < np.array([0.06, 0.02, 0.02, 0.08, 0.03])
    persons = np.where(flags[:, 0], 1, persons)
    bids = buildings["building_id"].to_numpy(dtype=object)
    hwidth = max(7, len(str(nh)))
    households = gpd.GeoDataFrame(
        {
            "household_id": "H" + pd.Series(np.arange(1, nh + 1)).astype(str).str.zfill(hwidth),
            "building_id": bids[bi],
            "unit": np.full(nh, None, dtype=object),
            "floor": floor,
            "persons": persons.astype(np.int64),
            "elderly_living_alone": flags[:, 0],
            "disabled": flags[:, 1],
            "on_assistance": flags[:, 2],
            "floating_population": flags[:, 3],
            "unemployed": flags[:, 4],
        },
        geometry=shapely.points(xy[:, 0], xy[:, 1]) if nh else [],
        crs=crs,
    )
    n_staff = min(int(round(nh / staff_per)), nh)
    pick = np.sort(rng.choice(nh, size=n_staff, replace=False)) if n_staff else np.zeros(0, int)
    sur = np.array(list(_SURNAMES), dtype=object)[rng.integers(0, len(_SURNAMES), n_staff)]
    giv = np.array(list(_GIVEN), dtype=object)[rng.integers(0, len(_GIVEN), n_staff)]
    phone = 13_000_000_000 + rng.integers(0, 1_000_000_000, n_staff)
    staff = gpd.GeoDataFrame(
        {
            "staff_id": [f"S{i + 1:05d}" for i in range(n_staff)],
            "name": [a + b for a, b in zip(sur, giv, strict=True)],
            "phone": [str(p) for p in phone],
            "home_building_id": bids[bi[pick]],
            "can_be_chief": rng.random(n_staff) < 0.4,
        },
        geometry=list(households.geometry.array[pick]) if n_staff else [],
        crs=crs,
    )
    return households, staff
