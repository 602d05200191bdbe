"""Building cells of a community, with the per-cell work done on arrays.

Drop-in replacements for the cell-building helpers of
:mod:`gridmap.partition.units` (same arguments, same land): the land of each
building inside a road block (:func:`_cells_of_block`), the outline seeds
(:func:`_seed_points`), the coverage clean-up (:func:`_clean_cells`,
:func:`_merge_crumbs`) and the shared edges with their road share
(:func:`_shared_edges_exact`, :func:`_near_guides`).

What changes is mostly how the work is issued, not what is computed:

* one ``voronoi_polygons`` call per block for all of its faces, every diagram
  closed by four far frame sites (:func:`_framed_sites`), so GEOS clips only
  their cells instead of every cell on the convex hull with an overlay;
* a diagram needed twice (faces without buildings of one block, which all take
  every seed of the block) drawn once and its cells shared
  (:func:`_same_diagram`);
* the Voronoi cells of every (face, building) pair dissolved by one
  ``coverage_union_all`` call over a padded array (``None`` pads are ignored,
  so every row is its own GEOS coverage union) *before* they are clipped to
  their face, in one ``intersection`` call for the land crossing the face's
  edge (land disjoint from its face, which the clip would empty, is skipped),
  and the face pieces of every building dissolved the same way, after one
  batched ``coverage_is_valid``;
* the cleaned coverage split into parts with one ``get_parts`` call;
* duplicate rows grouped with ``lexsort`` instead of ``numpy.unique(axis=0)``;
* the road share of shared edges computed without building a point geometry
  per sample: candidate road segments come from a k-d tree and the distance
  from the same point-to-segment formula GEOS uses, so the 5 m test gives the
  same answers (up to distances within a few ulps of 5 m exactly, where GEOS
  also applies an envelope pre-test).

Every function is pure (inputs are not changed, except that face polygons get
prepared, as before). The cells of :func:`_cells_of_block` are the same land as
those of the helpers of :mod:`gridmap.partition.units`, in group order, but not
the same vertices: a building's land dissolved before the clip has no vertex
where the cuts between its own Voronoi cells met the face's edge, and the frame
sites move the ends of the Voronoi edges outside the block (the parts of a
building's land that a face splits may also come in another order). Without
those vertices the pieces of one building's land in two faces can lie a few
ulps apart along the edge they share, so they are snapped together
(:func:`_snapped_union`) where the robust union would leave the land in two
parts. So that such vertices do not change what lies on a road, a shared edge is
sampled at three points on every piece of at most 10 m of a segment
(:func:`_shared_edges_exact`; the helper it replaced took three per segment,
however long). The other functions return exactly the geometries the helpers of
:mod:`gridmap.partition.units` return for the same input.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely import lib

__all__: list[str] = []

_MIN_EDGE = 0.01  # metres of shared boundary for two cells to be neighbours
_ROAD_TOLERANCE = 5.0  # a boundary within this distance of a road/barrier is "on" it
_POLYGON = 3
_MULTI = (4, 5, 6, 7)  # multi-part types and collections


# --------------------------------------------------------------------------- parts


def _polys(geom: Any) -> list[Any]:
    """Return the polygons of ``geom``, also those nested in a collection (make_valid).

    Examples
    --------
    >>> from shapely import box, MultiPolygon
    >>> [p.bounds for p in _polys(MultiPolygon([box(0, 0, 1, 1), box(2, 0, 3, 1)]))]
    [(0.0, 0.0, 1.0, 1.0), (2.0, 0.0, 3.0, 1.0)]
    """
    kind = shapely.get_type_id(geom)
    if kind == _POLYGON:
        return [geom] if shapely.area(geom) > 0 else []
    parts = shapely.get_parts(geom)
    while (nested := np.isin(shapely.get_type_id(parts), _MULTI)).any():
        parts = np.concatenate([parts[~nested], shapely.get_parts(parts[nested])])
    keep = (shapely.get_type_id(parts) == _POLYGON) & (shapely.area(parts) > 0)
    return list(parts[keep])


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal part of each geometry (empty when there is none).

    Examples
    --------
    >>> from shapely import GeometryCollection, LineString, box
    >>> gc = GeometryCollection([box(0, 0, 1, 1), LineString([(1, 0), (2, 0)])])
    >>> [(g.geom_type, g.area) for g in _polygonal(np.array([gc, LineString([(0, 0), (1, 1)])]))]
    [('Polygon', 1.0), ('Polygon', 0.0)]
    """
    kinds = shapely.get_type_id(geoms)
    out = geoms.copy()
    for i in np.flatnonzero((kinds != 3) & (kinds != 6)):
        polys = [p for p in shapely.get_parts(geoms[i]) if shapely.get_type_id(p) == 3]
        out[i] = shapely.union_all(polys) if polys else shapely.Polygon()
    return out


def _assign_parts(parts: list[tuple[Any, int]], g: int) -> list[tuple[Any, int]]:
    """Only the largest part of a multi-part cell keeps the group; others become empty.

    Examples
    --------
    >>> from shapely import box
    >>> [g for _, g in _assign_parts([(box(0, 0, 1, 1), 4), (box(2, 0, 5, 1), 4)], 4)]
    [-1, 4]
    """
    if len(parts) <= 1:
        return parts
    areas = shapely.area(np.array([p for p, _ in parts], dtype=object))
    big = int(np.argmax(areas))
    return [(p, g if i == big else -1) for i, (p, _) in enumerate(parts)]


def _dissolve(geoms: np.ndarray, *, check: bool = False) -> Any:
    """Union of polygons that form a coverage (fast path), robust union otherwise.

    ``check``: test first that ``geoms`` form a valid coverage, for pieces
    clipped from different faces, which carry different vertices along the edge
    they share (coverage union would keep the unmatched stretch as a zero-width
    spike). With ``check`` the robust union is :func:`_snapped_union`, also for a
    valid coverage whose union falls apart: pieces apart by a gap of no width
    along the edge they share pass as a coverage.

    Examples
    --------
    >>> from shapely import box
    >>> _dissolve(np.array([box(0, 0, 1, 1), box(1, 0, 2, 1)])).area
    2.0
    """
    if len(geoms) == 1:
        return geoms[0]
    join = _snapped_union if check else shapely.union_all
    if check and not shapely.coverage_is_valid(geoms):
        return join(geoms)
    try:
        out = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        return join(geoms)
    whole = float(shapely.area(geoms).sum())
    if abs(float(shapely.area(out)) - whole) > 1e-6 * max(whole, 1.0):
        return join(geoms)
    if shapely.get_type_id(out) in (6, 7):
        robust = join(geoms)
        if shapely.get_num_geometries(robust) < shapely.get_num_geometries(out):
            return robust
    return out


def _snapped_union(geoms: np.ndarray) -> Any:
    """Union of pieces clipped from different faces, snapped together first.

    Each clip computes its own points where the cuts meet the face's edge, and
    a point of one piece may lie a few ulps off the other piece's segment: the
    robust union then keeps the pieces apart along that edge (a gap of no
    width), one building's land in two parts. ``coverage_clean`` snaps them
    together first (within its default, tiny distance) for the coverage union;
    the robust union where GEOS fails.

    Examples
    --------
    >>> from shapely import Polygon, box
    >>> a = Polygon([(0, 0), (1, 0), (1 - 1e-12, 1), (1, 2), (0, 2)])  # a gap of no width
    >>> pieces = np.array([a, box(1, 0, 2, 2)])
    >>> shapely.union_all(pieces).geom_type, _snapped_union(pieces).geom_type
    ('MultiPolygon', 'Polygon')
    """
    try:
        return shapely.coverage_union_all(shapely.coverage_clean(geoms))
    except shapely.errors.GEOSException:
        return shapely.union_all(geoms)


def _dissolve_rows(
    geoms: np.ndarray, row: np.ndarray, n_rows: int, *, check: bool = False
) -> np.ndarray:
    """:func:`_dissolve` of the geometries of every row, in one batch.

    ``row`` (non-decreasing) gives the row of each geometry; the result holds one
    geometry per row (rows without geometries are not allowed). Rows of several
    geometries go through one ``coverage_is_valid`` (with ``check``) and one
    ``coverage_union_all`` over a ``None``-padded array, which GEOS sees as the
    same collections as one call per row.
    """
    counts = np.bincount(row, minlength=n_rows)
    starts = np.cumsum(counts) - counts
    out = np.empty(n_rows, dtype=object)
    single = counts == 1
    out[single] = geoms[starts[single]]
    several = counts > 1
    multi = np.flatnonzero(several)
    if len(multi) == 0:
        return out
    width = int(counts[multi].max())
    sel = several[row]
    rs = row[sel]
    r = (np.cumsum(several) - 1)[rs]  # rank of the row among the rows of several
    col = np.flatnonzero(sel) - starts[rs]
    pad = np.full((len(multi), width), None, dtype=object)
    gs = geoms[sel]
    pad[r, col] = gs
    area = np.zeros((len(multi), width))
    area[r, col] = shapely.area(gs)
    if check:
        # pieces of different faces: not a coverage -> snapped together (as _dissolve)
        # (shapely.coverage_is_valid ravels its input into one coverage; the ufunc
        # behind it takes one coverage per row)
        valid = np.asarray(lib.coverage_is_valid(pad, 0.0), dtype=bool)
        if not valid.all():
            for i in multi[~valid]:
                out[i] = _snapped_union(geoms[starts[i] : starts[i] + counts[i]])
            multi, pad, area = multi[valid], pad[valid], area[valid]
            if len(multi) == 0:
                return out
    try:
        union = np.asarray(shapely.coverage_union_all(pad, axis=1), dtype=object)
    except shapely.errors.GEOSException:
        for i in multi:
            out[i] = _dissolve(geoms[starts[i] : starts[i] + counts[i]], check=check)
        return out
    whole = area.sum(axis=1)
    got = shapely.area(union)
    tol = 1e-6 * np.maximum(whole, 1.0)
    lossy = np.abs(got - whole) > tol
    # the row sum above may differ from numpy's 1-d sum in the last bits: where the
    # test is that close to its threshold, redo it exactly as _dissolve does
    close = np.flatnonzero(np.abs(np.abs(got - whole) - tol) <= 1e-9 * np.maximum(whole, 1.0))
    for k in close:
        i = multi[k]
        w = float(shapely.area(geoms[starts[i] : starts[i] + counts[i]]).sum())
        lossy[k] = abs(float(got[k]) - w) > 1e-6 * max(w, 1.0)
    kinds = shapely.get_type_id(union)
    redo = lossy | (kinds == 6) | (kinds == 7)
    if redo.any():
        if check:
            robust = np.empty(int(redo.sum()), dtype=object)
            for j, i in enumerate(multi[redo]):
                robust[j] = _snapped_union(geoms[starts[i] : starts[i] + counts[i]])
        else:
            robust = np.asarray(shapely.union_all(pad[redo], axis=1), dtype=object)
        keep_cov = ~lossy[redo] & (
            shapely.get_num_geometries(robust) >= shapely.get_num_geometries(union[redo])
        )
        union[redo] = np.where(keep_cov, union[redo], robust)
    out[multi] = union
    return out


# --------------------------------------------------------------------------- seeds


def _seed_points(geoms: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points along building outlines, nudged inwards, with their group index.

    Examples
    --------
    >>> from shapely import box
    >>> xy, g = _seed_points(np.array([box(0, 0, 12, 12)]), np.array([7]))
    >>> len(xy), sorted(set(g.tolist()))
    (12, [7])
    """
    parts, pidx = shapely.get_parts(geoms, return_index=True)
    rings = shapely.get_exterior_ring(parts)
    per = shapely.length(rings)
    step = np.clip(per / 12.0, 1.0, 12.0)
    dense = shapely.segmentize(rings, step)
    xy, idx = shapely.get_coordinates(dense, return_index=True)
    cen = shapely.get_coordinates(shapely.centroid(parts))[idx]
    vec = cen - xy
    dist = np.hypot(vec[:, 0], vec[:, 1])
    move = np.minimum(0.3, dist * 0.4) / np.where(dist > 0, dist, 1.0)
    xy = xy + vec * move[:, None]
    g = group[pidx[idx]]
    # drop duplicates (closing vertices, touching buildings): keep the first
    first = _first_of_rows(np.round(xy, 3))
    xy = xy[first]
    # a fixed, tiny jitter breaks co-circular points (Voronoi degeneracies)
    xy = xy + np.random.default_rng(12345).uniform(-5e-3, 5e-3, size=xy.shape)
    return xy, g[first]


def _row_groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lexicographic order of the rows of ``key`` and each sorted row's group number.

    Groups are numbered in sorted order and rows of one group keep their input
    order: the grouping of ``numpy.unique(key, axis=0)``, without its slow
    structured-array sort.
    """
    if len(key) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.lexsort(key.T[::-1])
    k = key[order]
    new = np.empty(len(k), dtype=bool)
    new[0] = True
    new[1:] = (k[1:] != k[:-1]).any(axis=1)
    return order, np.cumsum(new) - 1


def _first_of_rows(key: np.ndarray) -> np.ndarray:
    """Return the index of the first occurrence of every distinct row of ``key``, ascending."""
    order, gid = _row_groups(key)
    if len(order) == 0:
        return order
    head = np.empty(len(gid), dtype=bool)
    head[0] = True
    head[1:] = gid[1:] != gid[:-1]
    return np.sort(order[head])


# --------------------------------------------------------------------------- cells


def _cells_of_block(
    block: Any,
    faces: np.ndarray,
    seeds: np.ndarray,
    seed_group: np.ndarray,
    seed_face: np.ndarray,
    face_compound: np.ndarray | None = None,
) -> list[tuple[Any, int]]:
    """Cells of the groups in one road block: list of (polygon, group or -1).

    ``faces`` are the block cut by walls and compound outlines; ``seed_face``
    the face index of each seed. A face inside a compound (``face_compound``)
    is shared by its own buildings. Land outside the compounds goes to the
    nearest building of its face and of the compounds it borders, so the strip
    between a compound wall and the road joins the compound next to it rather
    than forming one ring-shaped cell around it (a grid wrapping others); a face
    without buildings (a walled park) goes to the nearest building of the block.

    Parameters
    ----------
    block : shapely.Polygon
        The road block.
    faces : numpy.ndarray
        Polygons tiling ``block`` (walls and compound outlines cut it).
    seeds : numpy.ndarray
        ``(n, 2)`` seed coordinates (:func:`_seed_points`).
    seed_group, seed_face : numpy.ndarray
        Group (building or overlap group) and face index of every seed.
    face_compound : numpy.ndarray, optional
        Whether each face lies inside a compound.

    Returns
    -------
    list of (shapely.Polygon, int)
        Cells in group order; a group's extra parts, and land of a block
        without seeds, carry group -1.

    Examples
    --------
    >>> from shapely import box
    >>> blk = box(0, 0, 20, 10)
    >>> seeds = np.array([[2.0, 5.0], [4.0, 5.0], [16.0, 5.0], [18.0, 5.0]])
    >>> out = _cells_of_block(blk, np.array([blk]), seeds, np.array([0, 0, 1, 1]),
    ...                       np.zeros(4, dtype=int))
    >>> [(round(p.area, 6), g) for p, g in out]
    [(100.0, 0), (100.0, 1)]
    """
    faces = np.asarray(faces, dtype=object)
    nf = len(faces)
    compound = (
        np.zeros(nf, dtype=bool) if face_compound is None else np.asarray(face_compound, bool)
    )
    seed_group = np.asarray(seed_group)
    seed_face = np.asarray(seed_face)
    groups = np.unique(seed_group)
    if len(groups) == 0:
        return [(p, -1) for p in _polys(block)]
    if len(groups) == 1:
        return _assign_parts([(p, int(groups[0])) for p in _polys(block)], int(groups[0]))
    # faces as seen by the seeds: an index outside 0..nf-1 matches no face
    sf = np.where((seed_face >= 0) & (seed_face < nf), seed_face, nf)
    owns = np.bincount(sf, minlength=nf + 1)[:nf] > 0
    touch: dict[int, np.ndarray] = {}
    if compound.any():
        rel = np.flatnonzero(owns & ~compound)
        cfi = np.flatnonzero(compound)
        if len(rel):
            hit = shapely.intersects(faces[cfi][None, :], faces[rel][:, None])
            for k, rf in enumerate(rel):
                touch[int(rf)] = cfi[hit[k] & (cfi != rf)]
    all_seeds = np.arange(len(seed_group))
    whole: list[int] = []  # faces of one group, their own piece
    whole_g: list[int] = []
    job_face: list[int] = []
    job_use: list[np.ndarray] = []
    for fi in range(nf):
        if not owns[fi]:
            use = all_seeds
        elif fi in touch:
            mark = np.zeros(nf + 1, dtype=bool)
            mark[fi] = True
            mark[touch[fi]] = True
            use = np.flatnonzero(mark[sf])
        else:
            use = np.flatnonzero(sf == fi)
        gs = seed_group[use]
        if gs.min() == gs.max():
            whole.append(fi)
            whole_g.append(int(gs[0]))
            continue
        job_face.append(fi)
        job_use.append(use)
    p_face = np.asarray(whole, dtype=np.int64)
    p_group = np.asarray(whole_g, dtype=np.int64)
    pieces = faces[p_face]
    if job_face:
        vf, vg, vp = _voronoi_pieces(faces, seeds, seed_group, job_face, job_use)
        p_face = np.concatenate([p_face, vf])
        p_group = np.concatenate([p_group, vg])
        pieces = np.concatenate([pieces, vp])
    # (face, group) pairs are distinct: by group, then face
    order = np.lexsort((p_face, p_group))
    fg = p_group[order]
    head = np.ones(len(fg), dtype=bool)
    head[1:] = fg[1:] != fg[:-1]
    ug = fg[head]
    geoms = _dissolve_rows(pieces[order], np.cumsum(head) - 1, len(ug), check=True)
    empty = shapely.is_empty(geoms)
    bad = ~empty & ~shapely.is_valid(geoms)
    if bad.any():
        geoms[bad] = shapely.make_valid(geoms[bad])
    kinds = shapely.get_type_id(geoms)
    area = shapely.area(geoms)
    plain = kinds == _POLYGON
    if (plain | empty).all():
        keep = ~empty & (area > 0)
        return list(zip(geoms[keep].tolist(), ug[keep].tolist(), strict=True))
    result: list[tuple[Any, int]] = []
    for k in np.flatnonzero(~empty).tolist():
        g = int(ug[k])
        if plain[k]:
            if area[k] > 0:
                result.append((geoms[k], g))
            continue
        result.extend(_assign_parts([(p, g) for p in _polys(geoms[k])], g))
    return result


def _voronoi_pieces(
    faces: np.ndarray,
    seeds: np.ndarray,
    seed_group: np.ndarray,
    job_face: list[int],
    job_use: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voronoi land of each group in each face: faces, groups and dissolved pieces.

    One ``voronoi_polygons`` call for all faces (a diagram that two faces share,
    :func:`_same_diagram`, drawn once), one coverage union of every group's cells
    per diagram, one ``intersection`` for the group land crossing its face's edge.
    """
    counts = np.array([len(u) for u in job_use], dtype=np.int64)
    use = np.concatenate(job_use)
    job = np.repeat(np.arange(len(job_face)), counts)
    jf = faces[np.asarray(job_face, dtype=np.int64)]
    same = _same_diagram(job_use)
    own = same == np.arange(len(job_face))
    todo = np.flatnonzero(own)
    # the diagrams of the jobs computed once each, in job order, closed by frame
    # sites; the sites as one line per job where GEOS gives the cells of a line in
    # vertex order (no point geometry built per seed)
    once = own[job]
    fb = shapely.bounds(faces)
    xy, site_of, real = _framed_sites(
        seeds[use[once]], counts[todo], np.nanmin(fb[:, :2], axis=0), np.nanmax(fb[:, 2:], axis=0)
    )
    sites = shapely.linestrings if _lines_keep_order() else shapely.multipoints
    vor = shapely.voronoi_polygons(sites(xy, indices=site_of), ordered=True)
    computed, pj = shapely.get_parts(vor, return_index=True)
    if len(computed) != len(xy) or not np.array_equal(pj, site_of):
        raise IndexError("Voronoi parts do not match their seeds; seeds must be distinct")
    computed = computed[real]
    # the cells of one diagram tile its envelope, so a group's land is dissolved by a
    # cheap coverage union before it is clipped: one clip per group and face instead
    # of one per seed (the same land; the clip draws fewer vertices on the face edge)
    sg = seed_group[use]
    cj, cg = job[once], sg[once]
    order = np.lexsort((cg, cj))
    key_job, key_g = cj[order], cg[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (key_job[1:] != key_job[:-1]) | (key_g[1:] != key_g[:-1])
    row = np.cumsum(new) - 1
    parts = computed[order]
    # GEOS draws convex cells; the rare invalid one (a collapsed sliver) shows in its
    # group's land, which is then dissolved again from the cells made valid (testing
    # the dissolved land is cheaper than testing every cell)
    try:
        land = _dissolve_rows(parts, row, int(row[-1]) + 1)
        bad = ~shapely.is_valid(land)
    except shapely.errors.GEOSException:
        land = np.empty(int(row[-1]) + 1, dtype=object)
        bad = np.ones(len(land), dtype=bool)
    if bad.any():
        redo = bad[row]
        fixed = parts[redo]
        wrong = ~shapely.is_valid(fixed)
        fixed[wrong] = shapely.make_valid(fixed[wrong])
        again = _dissolve_rows(fixed, (np.cumsum(bad) - 1)[row[redo]], int(bad.sum()))
        land[bad] = _polygonal(shapely.make_valid(again))  # valid input to the clip
    row_job, row_g = key_job[new], key_g[new]
    if len(todo) == len(job_face):
        rows, pj = np.arange(len(land)), row_job
    else:  # a job with the diagram of an earlier one takes its groups' land
        n_of = np.bincount(row_job, minlength=len(job_face))
        n_take = n_of[same]
        pj = np.repeat(np.arange(len(job_face)), n_take)
        rows = np.repeat((np.cumsum(n_of) - n_of)[same] - (np.cumsum(n_take) - n_take), n_take)
        rows += np.arange(len(rows))
    pieces = land[rows]
    shapely.prepare(jf)
    face_of = jf[pj]
    cut = np.flatnonzero(~shapely.contains_properly(face_of, pieces))
    gone = np.zeros(len(pieces), dtype=bool)
    if len(cut):
        meet = shapely.intersects(face_of[cut], pieces[cut])
        gone[cut[~meet]] = True  # the clip would leave nothing
        cm = cut[meet]
        if len(cm):
            pieces[cm] = _polygonal(shapely.intersection(pieces[cm], face_of[cm]))
    keep = ~gone & ~shapely.is_empty(pieces)
    return np.asarray(job_face, dtype=np.int64)[pj[keep]], row_g[rows][keep], pieces[keep]


@functools.cache
def _lines_keep_order() -> bool:
    """Whether GEOS gives the Voronoi cells of a line's vertices in vertex order.

    GEOS 3.12+ orders the cells of any geometry's vertices when asked; a version
    that orders only multipoints would give the cells of a line in its own order,
    so this is checked once on scrambled sites.

    Examples
    --------
    >>> _lines_keep_order() in (True, False)
    True
    """
    xy = np.array([[3.0, 1.0], [0.0, 0.0], [4.0, 4.0], [1.0, 3.0], [2.0, 2.0], [0.5, 4.5]])
    try:
        vor = shapely.voronoi_polygons(shapely.linestrings(xy), ordered=True)
    except (shapely.errors.GEOSException, shapely.errors.UnsupportedGEOSVersionError):
        return False
    cells = shapely.get_parts(vor)
    return len(cells) == len(xy) and bool(shapely.contains_xy(cells, xy[:, 0], xy[:, 1]).all())


def _same_diagram(job_use: list[np.ndarray]) -> np.ndarray:
    """For every Voronoi job, the first job with the same sites (itself if none).

    A diagram depends only on its sites and the block (:func:`_framed_sites`), so
    jobs with the same sites, in the same order, get the same diagram, cell for
    cell. Faces without buildings are shared by all seeds of their block: a block
    with several such faces draws that diagram once.

    Examples
    --------
    >>> _same_diagram([np.arange(3), np.array([0, 1]), np.arange(3)]).tolist()
    [0, 1, 0]
    """
    same = np.arange(len(job_use))
    seen: dict[bytes, int] = {}
    for k, u in enumerate(job_use):
        key = np.ascontiguousarray(u, dtype=np.int64).tobytes()
        same[k] = seen.setdefault(key, k)
    return same


def _framed_sites(
    xy: np.ndarray, counts: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sites of every diagram followed by four far sites that close all of its cells.

    GEOS clips every cell that reaches out of the diagram's envelope with an
    overlay: the cells of the sites on the convex hull, which run out to the
    triangulation frame, one overlay each. Four frame sites 3 ``L`` from the
    centre of the envelope of the sites and of the block (``lo``, ``hi``; ``L``
    its larger side plus one) close every real cell within 3 ``L`` of that
    centre, well inside the envelope GEOS clips to (the sites' envelope grown by
    its larger side), so only the frame sites' own cells are clipped. A point of
    the block lies within √2 ``L`` of every site and at least 2.5 ``L`` from the
    frame sites: the real cells give the block the same land as without them.

    ``xy`` holds the sites of the diagrams one after the other (``counts`` each,
    at least one). Returns the coordinates with the frame sites after each
    diagram's sites, the diagram of every coordinate and which are real sites.

    Examples
    --------
    >>> xy, of, real = _framed_sites(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([2]),
    ...                              np.array([0.0, -1.0]), np.array([2.0, 1.0]))
    >>> xy[2:].tolist()
    [[10.0, 0.0], [1.0, 9.0], [-8.0, 0.0], [1.0, -9.0]]
    >>> of.tolist(), real.tolist()
    ([0, 0, 0, 0, 0, 0], [True, True, False, False, False, False])
    """
    starts = np.cumsum(counts) - counts
    lo = np.minimum(np.minimum.reduceat(xy, starts), lo)
    hi = np.maximum(np.maximum.reduceat(xy, starts), hi)
    far = 3.0 * ((hi - lo).max(axis=1) + 1.0)
    ring = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    frame = (lo + hi)[:, None, :] / 2 + far[:, None, None] * ring
    n = len(counts)
    out = np.empty((len(xy) + 4 * n, 2))
    real = np.zeros(len(out), dtype=bool)
    real[np.arange(len(xy)) + 4 * np.repeat(np.arange(n), counts)] = True
    out[real] = xy
    out[~real] = frame.reshape(-1, 2)
    return out, np.repeat(np.arange(n), counts + 4), real


def _empty_block_cells(block: Any, points: np.ndarray) -> list[Any]:
    """Split a block without buildings by the Voronoi cells of nearby buildings.

    Examples
    --------
    >>> from shapely import box
    >>> out = _empty_block_cells(box(0, 0, 10, 10), np.array([[-1.0, 5.0], [11.0, 5.0]]))
    >>> sorted(round(p.area) for p in out)
    [50, 50]
    """
    pts = points + np.random.default_rng(54321).uniform(-1e-3, 1e-3, size=points.shape)
    vor = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=block))
    bad = ~shapely.is_valid(vor)
    if bad.any():
        vor[bad] = shapely.make_valid(vor[bad])
    pieces = _polygonal(shapely.intersection(vor, block))
    out = [p for g in pieces for p in _polys(g)]
    total = sum(p.area for p in out)
    if not out or abs(total - shapely.area(block)) > 1e-6 * shapely.area(block) + 0.01:
        return _polys(block)
    return out


# --------------------------------------------------------------------------- clean-up


def _largest_first(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygon parts (area > 0) of every geometry, largest first per geometry.

    Returns the parts and the index of the geometry each comes from, grouped by
    geometry in input order; ties in area keep :func:`_polys` order.
    """
    kinds = shapely.get_type_id(geoms)
    area = shapely.area(geoms)
    simple = np.flatnonzero((kinds == _POLYGON) & (area > 0))
    multi = np.flatnonzero(kinds == 6)
    mparts, mi = shapely.get_parts(geoms[multi], return_index=True)
    ok = shapely.area(mparts) > 0  # parts of a MultiPolygon are polygons
    parts_l = [geoms[simple], mparts[ok]]
    owner_l = [simple, multi[mi[ok]]]
    for i in np.flatnonzero((kinds != _POLYGON) & (kinds != 6)):
        ps = _polys(geoms[i])
        if ps:
            parts_l.append(np.asarray(ps + [None], dtype=object)[:-1])
            owner_l.append(np.full(len(ps), i, dtype=np.int64))
    parts = np.concatenate(parts_l)
    owner = np.concatenate(owner_l).astype(np.int64)
    seq = np.arange(len(parts))  # within one owner, _polys order
    order = np.lexsort((seq, -shapely.area(parts), owner))
    return parts[order], owner[order]


def _clean_cells(
    cells: np.ndarray, cblock: np.ndarray, mem_cell: list[int]
) -> tuple[np.ndarray, np.ndarray, list[int], bool]:
    """Turn the cells into a valid polygonal coverage (shared edges vertex for vertex).

    Cells of different blocks and faces are clipped apart, so their shared edges
    rarely carry the same vertices. ``coverage_clean`` nodes them; a cell it
    leaves in several pieces keeps its largest piece (with its buildings) and
    every other piece becomes an empty cell of the same block, and crumbs
    (< 1 m², no building) join the neighbour sharing most of their edge.

    Returns the cells, their block, the cell of every member and whether the
    cells form a valid coverage.

    Examples
    --------
    >>> from shapely import box
    >>> cells = np.array([box(0, 0, 1, 1), box(1, 0, 2, 1)])
    >>> out, blk, mem, ok = _clean_cells(cells, np.array([0, 1]), [0, 1])
    >>> len(out), blk.tolist(), mem, ok
    (2, [0, 1], [0, 1], True)
    """
    nc = len(cells)
    mem = np.asarray(mem_cell, dtype=np.int64)
    try:
        cleaned = np.asarray(shapely.coverage_clean(cells), dtype=object)
    except (shapely.errors.GEOSException, TypeError):  # pragma: no cover - GEOS edge cases
        return cells, cblock, mem_cell, bool(shapely.coverage_is_valid(cells))
    used = np.zeros(nc, dtype=bool)
    used[mem] = True
    lost = shapely.is_empty(cleaned) | (shapely.area(cleaned) <= 0)
    if (lost & used).any():  # pragma: no cover - a building's cell swallowed by its neighbours
        return cells, cblock, mem_cell, bool(shapely.coverage_is_valid(cells))
    live = np.flatnonzero(~lost)
    parts, owner = _largest_first(cleaned[live])
    owner = live[owner]
    head = np.ones(len(owner), dtype=bool)
    head[1:] = owner[1:] != owner[:-1]
    remap = np.full(nc, -1, dtype=np.int64)
    remap[owner[head]] = np.arange(int(head.sum()))
    if (remap[mem] < 0).any():  # pragma: no cover - a building's cell without area
        return cells, cblock, mem_cell, bool(shapely.coverage_is_valid(cells))
    cb = np.asarray(cblock, dtype=np.int64)
    new_cells = np.concatenate([parts[head], parts[~head]])
    new_block = np.concatenate([cb[owner[head]], cb[owner[~head]]])
    new_mem = remap[mem]
    new_cells, new_block, new_mem = _merge_crumbs(new_cells, new_block, new_mem)
    return new_cells, new_block, new_mem.tolist(), bool(shapely.coverage_is_valid(new_cells))


def _merge_crumbs(
    cells: np.ndarray, cblock: np.ndarray, mem: np.ndarray, crumb_area: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crumbs (tiny cells without buildings) join the neighbour sharing most of their edge.

    A crumb that shares no edge with any cell (touching only at points) stays a
    cell of its own, so the cells still tile the community. Crumbs are taken in
    index order and a merge is seen by the crumbs after it.

    Examples
    --------
    >>> from shapely import box
    >>> cells = np.array([box(0, 0, 10, 10), box(10, 0, 10.5, 1), box(20, 0, 30, 10)])
    >>> out, blk, mem = _merge_crumbs(cells, np.array([0, 0, 1]), np.array([0, 2]))
    >>> [round(c.area, 2) for c in out], blk.tolist(), mem.tolist()
    ([100.5, 100.0], [0, 1], [0, 1])
    """
    nc = len(cells)
    used = np.zeros(nc, dtype=bool)
    used[mem] = True
    crumbs = np.flatnonzero(~used & (shapely.area(cells) < crumb_area))
    if len(crumbs) == 0 or nc == len(crumbs):
        return cells, cblock, mem
    original = cells
    cells = cells.copy()
    alive = np.ones(nc, dtype=bool)
    tree = shapely.STRtree(original)
    qi, qj = tree.query(original[crumbs], predicate="intersects")
    found = np.split(qj, np.searchsorted(qi, np.arange(1, len(crumbs))))
    for k, ic in enumerate(crumbs):
        cand = (
            found[k] if cells[ic] is original[ic] else tree.query(cells[ic], predicate="intersects")
        )
        near = cand[(cand != ic) & alive[cand]]
        if len(near) == 0:
            continue
        ln = shapely.length(
            shapely.intersection(shapely.boundary(cells[ic]), shapely.boundary(cells[near]))
        )
        j = int(near[int(np.argmax(ln))])
        if ln.max() <= _MIN_EDGE:
            continue
        merged = _dissolve(np.array([cells[j], cells[ic]], dtype=object))
        if shapely.get_type_id(merged) == 3:
            cells[j] = merged
            alive[ic] = False
    remap = np.cumsum(alive) - 1
    return cells[alive], cblock[alive], remap[mem]


# --------------------------------------------------------------------------- shared edges


def _guide_segments(guides: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Segments ``(a, b)`` of the guide lines and the guide of each; None if not lines.

    A point guide gives one segment of zero length. None when a guide is of
    another type (polygons, collections), whose distance is not the distance to
    its segments.
    """
    kinds = shapely.get_type_id(guides)
    if not np.isin(kinds, (0, 1, 2, 4, 5)).all():
        return None
    parts, pg = shapely.get_parts(guides, return_index=True)
    xy, pi = shapely.get_coordinates(parts, return_index=True)
    same = pi[:-1] == pi[1:]
    a, b, owner = xy[:-1][same], xy[1:][same], pg[pi[:-1][same]]
    single = np.flatnonzero(np.bincount(pi, minlength=len(parts)) == 1)  # points
    if len(single):
        first = np.searchsorted(pi, single)
        a = np.concatenate([a, xy[first]])
        b = np.concatenate([b, xy[first]])
        owner = np.concatenate([owner, pg[single]])
    return a, b, owner


def _point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points to segments, with the operations of GEOS ``pointToSegment``."""
    dx, dy = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
    pax, pay = p[:, 0] - a[:, 0], p[:, 1] - a[:, 1]
    pbx, pby = p[:, 0] - b[:, 0], p[:, 1] - b[:, 1]
    da = np.sqrt(pax * pax + pay * pay)
    db = np.sqrt(pbx * pbx + pby * pby)
    len2 = dx * dx + dy * dy
    point = (a[:, 0] == b[:, 0]) & (a[:, 1] == b[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (pax * dx + pay * dy) / len2
        s = ((a[:, 1] - p[:, 1]) * dx - (a[:, 0] - p[:, 0]) * dy) / len2
        perp = np.abs(s) * np.sqrt(len2)
    return np.where(point | (r <= 0.0), da, np.where(r >= 1.0, db, perp))


def _near_guides_xy(
    xy: np.ndarray, guides: np.ndarray, gcost: np.ndarray, gart: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`_near_guides` of points given as coordinates (None: guides not lines)."""
    n = len(xy)
    hit = np.zeros(n, dtype=bool)
    cost = np.full(n, np.inf)
    art = np.zeros(n, dtype=bool)
    if n == 0 or len(guides) == 0:
        return hit, np.where(hit, cost, 0.0), art
    segs = _guide_segments(guides)
    if segs is None:
        return None
    a, b, owner = segs
    # candidates: a point within the tolerance of a segment lies within
    # tolerance + step/2 of one of the samples taken every `step` along it
    step = _ROAD_TOLERANCE
    seg_len = np.hypot(b[:, 0] - a[:, 0], b[:, 1] - a[:, 1])
    k = np.ceil(seg_len / step).astype(np.int64) + 1
    si = np.repeat(np.arange(len(a)), k)
    t = (np.arange(len(si)) - np.repeat(np.cumsum(k) - k, k)) / np.repeat(k - 1, k).clip(1)
    samples = a[si] + t[:, None] * (b[si] - a[si])
    reach = _ROAD_TOLERANCE + step / 2 + 1e-6 * (1.0 + np.abs(xy).max())
    # unbalanced trees build faster and give the same pairs (all within ``reach``)
    pairs = cKDTree(xy, balanced_tree=False, compact_nodes=False).sparse_distance_matrix(
        cKDTree(samples, balanced_tree=False, compact_nodes=False), reach, output_type="ndarray"
    )
    if len(pairs) == 0:
        return hit, np.where(hit, cost, 0.0), art
    key = np.unique(pairs["i"].astype(np.int64) * len(a) + si[pairs["j"]])
    q, s = key // len(a), key % len(a)
    within = _point_segment_distance(xy[q], a[s], b[s]) <= _ROAD_TOLERANCE
    q, g = q[within], owner[s[within]]
    hit[q] = True
    np.minimum.at(cost, q, gcost[g])
    art[q[gart[g]]] = True
    return hit, np.where(hit, cost, 0.0), art


def _near_guides(
    points: np.ndarray, guides: np.ndarray, gcost: np.ndarray, gart: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: near a road or barrier, the cheapest cost per metre of one, on an arterial.

    Examples
    --------
    >>> from shapely import LineString, points
    >>> pts = points([[0, 4], [0, 6], [20, 1]])
    >>> roads = np.array([LineString([(-10, 0), (10, 0)]), LineString([(20, -5), (20, 5)])])
    >>> hit, cost, art = _near_guides(pts, roads, np.array([0.15, 0.05]), np.array([False, True]))
    >>> hit.tolist(), cost.tolist(), art.tolist()
    ([True, False, True], [0.15, 0.0, 0.05], [False, False, True])
    """
    points = np.asarray(points, dtype=object)
    if (
        len(points)
        and (shapely.get_type_id(points) == 0).all()
        and not shapely.is_empty(points).any()
    ):
        out = _near_guides_xy(shapely.get_coordinates(points), guides, gcost, gart)
        if out is not None:
            return out
    hit = np.zeros(len(points), dtype=bool)
    cost = np.full(len(points), np.inf)
    art = np.zeros(len(points), dtype=bool)
    if len(points) and len(guides):
        q, g = shapely.STRtree(guides).query(points, predicate="dwithin", distance=_ROAD_TOLERANCE)
        hit[q] = True
        np.minimum.at(cost, q, gcost[g])
        art[q[gart[g]]] = True
    return hit, np.where(hit, cost, 0.0), art


#: Shared edges are sampled at three points on every piece of at most this many metres.
_SAMPLE_STEP = 10.0


def _shared_edges_exact(
    cells: np.ndarray, guides: np.ndarray, gcost: np.ndarray, gart: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Shared boundary of a clean coverage by matching identical ring segments.

    Returns cell pairs ``i < j``, shared length, the length lying on a road or
    barrier, its cost (length × cost per metre of the cheapest line there) and
    the length lying on an arterial (sampled at three points on every piece of at
    most :data:`_SAMPLE_STEP` metres of a segment).

    Examples
    --------
    >>> from shapely import LineString, box
    >>> cells = np.array([box(0, 0, 10, 10), box(10, 0, 20, 10)])
    >>> road = np.array([LineString([(10, -5), (10, 3)])])
    >>> i, j, length, on_road, cost, art = _shared_edges_exact(
    ...     cells, road, np.array([0.15]), np.array([False]))
    >>> i.tolist(), j.tolist(), length.tolist(), round(float(on_road[0]), 4)
    ([0], [1], [10.0], 6.6667)
    """
    rings, ring_cell = shapely.get_rings(cells, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[:-1] == ring[1:]
    a, b = xy[:-1][same], xy[1:][same]
    cell = ring_cell[ring[:-1][same]]
    ka, kb = np.round(a, 6), np.round(b, 6)
    swap = (ka[:, 0] > kb[:, 0]) | ((ka[:, 0] == kb[:, 0]) & (ka[:, 1] > kb[:, 1]))
    lo = np.where(swap[:, None], kb, ka)
    hi = np.where(swap[:, None], ka, kb)
    order, gid = _row_groups(np.column_stack([lo, hi]))
    counts = np.bincount(gid) if len(gid) else np.empty(0, dtype=np.int64)
    order = order[counts[gid] == 2] if len(gid) else order
    first, second = order[0::2], order[1::2]
    ci, cj = cell[first], cell[second]
    keep = ci != cj
    first, ci, cj = first[keep], ci[keep], cj[keep]
    seg_len = np.hypot(*(b[first] - a[first]).T)
    # three points on every piece of at most _SAMPLE_STEP metres: what lies on a road
    # does not depend on how many vertices the cells happen to carry along an edge
    pieces = np.maximum(np.ceil(seg_len / _SAMPLE_STEP), 1).astype(np.int64)
    seg = np.repeat(np.arange(len(first)), pieces)
    k = np.arange(len(seg)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    fr = np.array([0.1, 0.5, 0.9])
    t = (k[None, :] + fr[:, None]) / pieces[seg][None, :]
    d = (b[first] - a[first])[seg]
    pts = (a[first][seg][None, :, :] + t[:, :, None] * d[None, :, :]).reshape(-1, 2)
    near = _near_guides_xy(pts, guides, gcost, gart)
    if near is None:
        near = _near_guides(shapely.points(pts), guides, gcost, gart)
    hit, cost, art = near
    share = np.bincount(seg, minlength=len(first)).astype(float)
    on = np.bincount(seg, weights=hit.reshape(3, -1).mean(axis=0), minlength=len(first)) / share
    won = np.bincount(seg, weights=cost.reshape(3, -1).mean(axis=0), minlength=len(first)) / share
    aon = np.bincount(seg, weights=art.reshape(3, -1).mean(axis=0), minlength=len(first)) / share
    i, j = np.minimum(ci, cj), np.maximum(ci, cj)
    n = len(cells)
    pair = i.astype(np.int64) * n + j
    up, pinv = np.unique(pair, return_inverse=True)
    length = np.bincount(pinv, weights=seg_len)
    road = np.bincount(pinv, weights=seg_len * on)
    rcost = np.bincount(pinv, weights=seg_len * won)
    arterial = np.bincount(pinv, weights=seg_len * aon)
    ok = length > _MIN_EDGE
    return up[ok] // n, up[ok] % n, length[ok], road[ok], rcost[ok], arterial[ok]
