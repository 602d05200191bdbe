from __future__ import annotations

import math
import types

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import gridmap.crs as C  # noqa: N812
from gridmap.errors import CoordinateError, CRSError, LayerError
from gridmap.locate import LOCATE_COLUMNS, GridIndex

# 3 x 3 lattice of 10 m cells; codes deliberately not in row order, so that "smallest
# code" differs from "first row"
#   y 20-30:  G7 G2 G9
#   y 10-20:  G4 G1 G6
#   y  0-10:  G8 G3 G5
LAYOUT = [["G7", "G2", "G9"], ["G4", "G1", "G6"], ["G8", "G3", "G5"]]


def lattice(crs=4549, x0=0.0, y0=0.0, size=10.0, order=None):
    codes, geoms = [], []
    for r, row in enumerate(LAYOUT):
        for c, code in enumerate(row):
            codes.append(code)
            y = y0 + (2 - r) * size
            geoms.append(shapely.box(x0 + c * size, y, x0 + (c + 1) * size, y + size))
    gdf = gpd.GeoDataFrame({"grid_code": codes, "households": 300}, geometry=geoms, crs=crs)
    if order is not None:
        gdf = gdf.iloc[order].reset_index(drop=True)
    return gdf


@pytest.fixture(scope="module")
def index():
    return GridIndex(lattice())


def test_columns_and_dtypes(index):
    df = index.locate([5.0, 50.0], [5.0, 5.0])
    assert tuple(df.columns) == LOCATE_COLUMNS
    assert list(df.index) == [0, 1]
    assert df["inside"].dtype == bool and df["on_boundary"].dtype == bool
    assert df["distance_to_boundary"].dtype == np.float64
    assert df["nearest_distance"].dtype == np.float64
    assert df["grid_code"].iloc[1] is None
    assert repr(index) == "GridIndex(9 grids, crs=EPSG:4549, tolerance=0.01 m)"
    assert len(index) == 9


def test_interior_points(index):
    df = index.locate([3.0, 15.0, 27.0, 12.5], [4.0, 15.0, 28.0, 21.0])
    assert df["grid_code"].tolist() == ["G8", "G1", "G9", "G2"]
    assert df["inside"].all() and not df["on_boundary"].any()
    assert df["candidates"].tolist() == [["G8"], ["G1"], ["G9"], ["G2"]]
    np.testing.assert_allclose(df["distance_to_boundary"], [3.0, 5.0, 2.0, 1.0])
    assert df["nearest_grid"].tolist() == ["G8", "G1", "G9", "G2"]
    assert (df["nearest_distance"] == 0.0).all()


def test_point_on_shared_edge(index):
    # edge between G8 (x 0-10) and G3 (x 10-20) at x = 10; between G1 and G3 at y = 10
    df = index.locate([10.0, 15.0, 0.0], [5.0, 10.0, 5.0])
    assert df["grid_code"].tolist() == ["G3", "G1", "G8"]
    assert df["candidates"].tolist() == [["G3", "G8"], ["G1", "G3"], ["G8"]]
    assert df["on_boundary"].tolist() == [True, True, False]  # x=0 is an outer edge only
    assert df["inside"].all()  # covers: a boundary point is inside its grid
    assert (df["distance_to_boundary"] == 0.0).all()


def test_point_on_four_grid_vertex(index):
    # (10, 10) is the corner of G8, G3, G4, G1; (20, 20) of G1, G6, G2, G9
    df = index.locate([10.0, 20.0], [10.0, 20.0])
    assert df["candidates"].tolist() == [["G1", "G3", "G4", "G8"], ["G1", "G2", "G6", "G9"]]
    assert df["grid_code"].tolist() == ["G1", "G1"]
    assert df["on_boundary"].all() and df["inside"].all()


def test_near_edge_within_tolerance(index):
    # 5 mm off the G8/G3 edge: inside G3 only, but within 1 cm of G8 too
    df = index.locate([10.005, 9.995, 10.02], [5.0, 5.0, 5.0])
    assert df["grid_code"].tolist() == ["G3", "G8", "G3"]  # the covering grid wins
    assert df["candidates"].tolist() == [["G3", "G8"], ["G3", "G8"], ["G3"]]
    assert df["on_boundary"].tolist() == [True, True, False]
    np.testing.assert_allclose(df["distance_to_boundary"], [0.005, 0.005, 0.02], atol=1e-12)


def test_outside_points_nearest(index):
    df = index.locate([-3.0, 35.0, -5.0, 15.0], [-4.0, 5.0, 10.0, 31.0])
    assert df["grid_code"].isna().all()
    assert df["grid_code"].tolist() == [None] * 4
    assert not df["inside"].any() and not df["on_boundary"].any()
    assert df["candidates"].tolist() == [[], [], [], []]
    assert df["distance_to_boundary"].isna().all()
    # (-3, -4) -> corner (0, 0) of G8: 5 m; (35, 5) -> G5: 5 m; (15, 31) -> G2: 1 m
    # (-5, 10) is 5 m from both G8 and G4: the smaller code wins
    assert df["nearest_grid"].tolist() == ["G8", "G5", "G4", "G2"]
    np.testing.assert_allclose(df["nearest_distance"], [5.0, 5.0, 5.0, 1.0])


def test_outside_within_tolerance_snaps(index):
    df = index.locate([-0.004], [5.0])
    row = df.iloc[0]
    assert row.grid_code == "G8" and not row.inside and not row.on_boundary
    assert row.candidates == ["G8"]
    assert row.distance_to_boundary == pytest.approx(0.004)
    assert row.nearest_grid == "G8" and row.nearest_distance == pytest.approx(0.004)


def test_sliver_gap_between_grids():
    # two grids with a 1/128 m (7.8 mm) gap; a point in the gap is within tolerance of both
    # (dyadic numbers so that the middle of the gap is an exact tie)
    gap = 2.0**-7
    grids = gpd.GeoDataFrame(
        {"grid_code": ["B", "A"]},
        geometry=[shapely.box(8.0 + gap, 0, 16, 8), shapely.box(0, 0, 8, 8)],
        crs=4549,
    )
    x = 8.0 + np.array([1, 4, 7]) * gap / 8
    df = GridIndex(grids).locate(x, [4.0, 4.0, 4.0])
    assert df["candidates"].tolist() == [["A", "B"]] * 3
    assert df["on_boundary"].all() and not df["inside"].any()
    # nearest within tolerance; the exact middle is a tie -> smallest code
    assert df["grid_code"].tolist() == ["A", "A", "B"]
    np.testing.assert_allclose(df["nearest_distance"], np.array([1, 4, 1]) * gap / 8)


def test_tolerance_zero():
    idx = GridIndex(lattice(), tolerance=0.0)
    df = idx.locate([10.0, 10.005, -0.004], [5.0, 5.0, 5.0])
    assert df["candidates"].tolist() == [["G3", "G8"], ["G3"], []]
    assert df["grid_code"].tolist() == ["G3", "G3", None]
    assert df["nearest_grid"].iloc[2] == "G8"


def test_wider_tolerance():
    idx = GridIndex(lattice(), tolerance=0.5)
    df = idx.locate([10.3, 5.0], [5.0, -0.3])
    assert df["candidates"].tolist() == [["G3", "G8"], ["G8"]]
    assert df["grid_code"].tolist() == ["G3", "G8"]
    assert df["on_boundary"].tolist() == [True, False]


def test_row_order_does_not_matter():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-5, 35, 500), np.arange(0, 31, 5.0)])
    y = np.concatenate([rng.uniform(-5, 35, 500), np.arange(0, 31, 5.0)])
    a = GridIndex(lattice()).locate(x, y)
    b = GridIndex(lattice(order=[8, 3, 5, 0, 7, 1, 6, 2, 4])).locate(x, y)
    pd.testing.assert_frame_equal(a, b)
    # and repeated calls are identical
    pd.testing.assert_frame_equal(a, GridIndex(lattice()).locate(x, y))


def test_custom_code_column_and_from_plan():
    gdf = lattice().rename(columns={"grid_code": "code"})
    idx = GridIndex(gdf, code_column="code")
    assert idx.locate_one(5.0, 5.0)["grid_code"] == "G8"
    plan = types.SimpleNamespace(grids=lattice())
    assert GridIndex.from_plan(plan).locate_one(5.0, 5.0)["grid_code"] == "G8"


def test_multipolygon_grid():
    mp = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(5, 5, 6, 6)])
    idx = GridIndex(gpd.GeoDataFrame({"grid_code": ["M"]}, geometry=[mp], crs=4549))
    assert idx.locate([0.5, 5.5, 3.0], [0.5, 5.5, 3.0])["grid_code"].tolist() == ["M", "M", None]


def test_locate_one(index):
    one = index.locate_one(10.0, 10.0)
    assert one == {
        "grid_code": "G1",
        "inside": True,
        "on_boundary": True,
        "candidates": ["G1", "G3", "G4", "G8"],
        "distance_to_boundary": 0.0,
        "nearest_grid": "G1",
        "nearest_distance": 0.0,
    }
    assert type(one["inside"]) is bool and type(one["nearest_distance"]) is float
    out = index.locate_one(-3.0, -4.0)
    assert out["grid_code"] is None and out["nearest_grid"] == "G8"
    assert out["nearest_distance"] == 5.0 and math.isnan(out["distance_to_boundary"])
    with pytest.raises(CoordinateError, match="one point"):
        index.locate_one([1.0, 2.0], [1.0, 2.0])


def test_empty_input(index):
    df = index.locate([], [])
    assert len(df) == 0 and tuple(df.columns) == LOCATE_COLUMNS


def test_scalar_input(index):
    df = index.locate(5.0, 5.0)
    assert df["grid_code"].tolist() == ["G8"]


# --------------------------------------------------------------------------- guards


def test_nan_guard(index):
    with pytest.raises(
        CoordinateError, match=r"1 point\(s\) have NaN or infinite.*\[1\] \(nan, 5.0\)"
    ):
        index.locate([5.0, np.nan], [5.0, 5.0])
    with pytest.raises(CoordinateError, match=r"\[0\] \(5.0, inf\)"):
        index.locate_one(5.0, np.inf)
    with pytest.raises(CoordinateError, match="same length"):
        index.locate([1.0, 2.0], [1.0])


def test_constructor_guards():
    g = lattice()
    with pytest.raises(CRSError, match=r"grids has no CRS; set the projected CRS"):
        GridIndex(g.set_crs(None, allow_override=True))
    with pytest.raises(CRSError, match=r"geographic CRS.*local_crs"):
        GridIndex(lattice(crs=4326, x0=118.0, y0=32.0, size=0.001))
    with pytest.raises(LayerError, match=r"no column 'code'; pass code_column="):
        GridIndex(g, code_column="code")
    dup = g.copy()
    dup.loc[1, "grid_code"] = "G7"
    with pytest.raises(LayerError, match=r"duplicate grid_code: \['G7'\]"):
        GridIndex(dup)
    missing = g.copy()
    missing["grid_code"] = missing["grid_code"].astype(object)
    missing.loc[2, "grid_code"] = None
    with pytest.raises(LayerError, match=r"missing grid_code at rows \[2\]"):
        GridIndex(missing)
    bad = g.copy()
    bad.loc[4, "geometry"] = shapely.Point(1, 1)
    with pytest.raises(LayerError, match=r"non-polygon geometries at rows \[4\]"):
        GridIndex(bad)
    with pytest.raises(LayerError, match="grids is empty"):
        GridIndex(g.iloc[:0])
    with pytest.raises(LayerError, match="must be a GeoDataFrame"):
        GridIndex(pd.DataFrame(g))
    with pytest.raises(ValueError, match="tolerance must be a finite distance"):
        GridIndex(g, tolerance=-1.0)


def test_grids_not_mutated():
    g = lattice()
    before = g.copy()
    GridIndex(g).locate([5.0], [5.0])
    pd.testing.assert_frame_equal(g, before)


# --------------------------------------------------------------------------- lon/lat


@pytest.fixture(scope="module")
def nanjing():
    """A 6 x 6 lattice of 200 m cells in EPSG:4549 around Nanjing's Xinjiekou."""
    x0, y0 = C.transform(118.78, 32.04, "wgs84", 4549)
    codes, geoms = [], []
    for r in range(6):
        for c in range(6):
            codes.append(f"320102001001{r * 6 + c:03d}")
            geoms.append(
                shapely.box(x0 + c * 200, y0 + r * 200, x0 + (c + 1) * 200, y0 + (r + 1) * 200)
            )
    grids = gpd.GeoDataFrame({"grid_code": codes}, geometry=geoms, crs=4549)
    return GridIndex(grids), (x0, y0)


def test_locate_lonlat_through_gcj02_and_bd09(nanjing):
    idx, (x0, y0) = nanjing
    rng = np.random.default_rng(11)
    # points at least 1 m from any cell edge, so the ~1e-9 m projection noise cannot matter
    cx = rng.integers(0, 6, 2000)
    cy = rng.integers(0, 6, 2000)
    px = x0 + cx * 200 + rng.uniform(1, 199, 2000)
    py = y0 + cy * 200 + rng.uniform(1, 199, 2000)
    lon, lat = C.transform(px, py, 4549, "wgs84")
    truth = idx.locate(px, py)["grid_code"]
    assert truth.notna().all()
    via_wgs = idx.locate_lonlat(lon, lat)["grid_code"]
    assert via_wgs.tolist() == truth.tolist()
    glon, glat = C.wgs84_to_gcj02(lon, lat)
    assert idx.locate_lonlat(glon, glat, "gcj02")["grid_code"].tolist() == truth.tolist()
    assert idx.locate_lonlat(glon, glat, crs="GCJ-02")["grid_code"].tolist() == truth.tolist()
    blon, blat = C.wgs84_to_bd09(lon, lat)
    assert idx.locate_lonlat(blon, blat, "bd09")["grid_code"].tolist() == truth.tolist()
    # CGCS2000 input is WGS84
    assert idx.locate_lonlat(lon, lat, 4490)["grid_code"].tolist() == truth.tolist()
    # GCJ-02 taken for WGS84 lands ~500 m off: mostly another grid or outside
    wrong = idx.locate_lonlat(glon, glat, "wgs84")["grid_code"]
    assert (wrong != truth).mean() > 0.9


def test_locate_lonlat_scalar_gcj(nanjing):
    idx, (x0, y0) = nanjing
    lon, lat = C.transform(x0 + 250.0, y0 + 450.0, 4549, "wgs84")  # cell row 2, col 1
    glon, glat = C.wgs84_to_gcj02(lon, lat)
    df = idx.locate_lonlat(glon, glat, "gcj02")
    assert df["grid_code"].tolist() == ["320102001001013"]
    assert df["distance_to_boundary"].iloc[0] == pytest.approx(50.0, abs=1e-6)
    onestep = idx.locate_lonlat(glon, glat, "gcj02", method="onestep")
    assert onestep["grid_code"].tolist() == ["320102001001013"]


def test_locate_lonlat_guards(nanjing):
    idx, _ = nanjing
    with pytest.raises(CoordinateError, match="looks like lat/lon are swapped; pass lon first"):
        idx.locate_lonlat([118.78, 32.05], [32.05, 118.78], "gcj02")
    with pytest.raises(CoordinateError, match=r"NaN or infinite: \[0\]"):
        idx.locate_lonlat([np.nan], [32.05])
    with pytest.raises(CRSError, match="unknown CRS 'gps84x'"):
        idx.locate_lonlat([118.78], [32.05], "gps84x")
    # projected input through locate_lonlat is not validated as degrees
    df = idx.locate_lonlat([0.0], [0.0], 4549)
    assert df["grid_code"].tolist() == [None]


# --------------------------------------------------------------------------- vs brute force


def voronoi_tiling(n=120, seed=5, size=1000.0):
    rng = np.random.default_rng(seed)
    frame = shapely.box(0, 0, size, size)
    seeds = shapely.multipoints(rng.uniform(0, size, (n, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame))
    cells = shapely.intersection(cells, frame)
    codes = [f"C{i:03d}" for i in rng.permutation(len(cells))]
    return gpd.GeoDataFrame({"grid_code": codes}, geometry=cells, crs=32650)


def brute_force(grids, x, y, tol):
    polys = np.asarray(grids.geometry.values)
    codes = np.asarray(grids["grid_code"], dtype=object)
    out = []
    for px, py in zip(x, y, strict=True):
        p = shapely.Point(px, py)
        cov = np.array([poly.covers(p) for poly in polys])
        dist = shapely.distance(polys, p)
        near = dist <= tol
        cands = sorted(codes[near | cov])
        if cov.any():
            primary = min(codes[cov])
        elif near.any():
            dmin = dist[near].min()
            primary = min(codes[near & (dist == dmin)])
        else:
            primary = None
        dmin_all = dist.min()
        nearest = primary if primary is not None else min(codes[dist == dmin_all])
        out.append((primary, bool(cov.any()), cands, nearest, 0.0 if cov.any() else dmin_all))
    return out


@pytest.fixture(scope="module")
def random_case():
    grids = voronoi_tiling()
    rng = np.random.default_rng(99)
    n_rand = 9_000
    x = list(rng.uniform(-50, 1050, n_rand))
    y = list(rng.uniform(-50, 1050, n_rand))
    # points on edges and at vertices of the cells
    bounds = shapely.boundary(np.asarray(grids.geometry.values))
    verts = shapely.get_coordinates(bounds)
    pick = rng.choice(len(verts), 500, replace=False)
    x += list(verts[pick, 0])
    y += list(verts[pick, 1])
    lines = rng.choice(bounds, 500)
    on_edge = shapely.line_interpolate_point(lines, rng.uniform(0, 1, 500), normalized=True)
    x += list(shapely.get_x(on_edge))
    y += list(shapely.get_y(on_edge))
    return grids, np.array(x), np.array(y)


def test_vectorised_matches_brute_force_on_10k_points(random_case):
    grids, x, y = random_case
    assert len(x) == 10_000
    idx = GridIndex(grids)
    df = idx.locate(x, y)
    expected = brute_force(grids, x, y, idx.tolerance)
    assert df["grid_code"].tolist() == [e[0] for e in expected]
    assert df["inside"].tolist() == [e[1] for e in expected]
    assert df["candidates"].tolist() == [e[2] for e in expected]
    assert df["on_boundary"].tolist() == [len(e[2]) > 1 for e in expected]
    assert df["nearest_grid"].tolist() == [e[3] for e in expected]
    np.testing.assert_allclose(df["nearest_distance"], [e[4] for e in expected], atol=1e-9)
    # the sample really exercises every case
    assert df["on_boundary"].sum() > 400
    assert (df["candidates"].map(len) >= 3).sum() > 100  # Voronoi vertices: 3 cells
    assert df["grid_code"].isna().sum() > 300
    # distance to the grid's own boundary
    located = df["grid_code"].notna().to_numpy()
    geom_by_code = dict(zip(grids["grid_code"], grids.geometry, strict=True))
    sub = np.flatnonzero(located)[:2000]
    want = [
        geom_by_code[df["grid_code"].iat[i]].boundary.distance(shapely.Point(x[i], y[i]))
        for i in sub
    ]
    np.testing.assert_allclose(df["distance_to_boundary"].to_numpy()[sub], want, atol=1e-9)


def test_scalar_matches_vectorised(random_case):
    grids, x, y = random_case
    idx = GridIndex(grids)
    df = idx.locate(x, y)
    for i in range(0, len(x), 37):
        one = idx.locate_one(x[i], y[i])
        row = df.iloc[i]
        for col in LOCATE_COLUMNS:
            a, b = one[col], row[col]
            if isinstance(a, float) and math.isnan(a):
                assert math.isnan(b)
            else:
                assert a == b, (i, col, a, b)


def test_nearest_grid_on_many_vertex_boundaries_and_holes():
    """Outside points: the nearest grid over long rings (split in pieces) and holes."""
    ring = shapely.Point(0, 0).buffer(300, quad_segs=64)  # 257 vertices
    lake = shapely.Point(0, 0).buffer(100, quad_segs=16)
    grids = gpd.GeoDataFrame(
        {"grid_code": ["R", "E", "W"]},
        geometry=[
            shapely.Polygon(ring.exterior.coords, [lake.exterior.coords]),
            shapely.box(320, -50, 420, 50),
            shapely.box(-420, -50, -320, 50),
        ],
        crs=32650,
    )
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-500, 500, 3000), [0.0, 310.0, 0.0]])
    y = np.concatenate([rng.uniform(-500, 500, 3000), [0.0, 0.0, 400.0]])
    df = GridIndex(grids).locate(x, y)
    expected = brute_force(grids, x, y, 0.01)
    lost = df["grid_code"].isna().to_numpy()
    assert lost.sum() > 1000
    assert df["nearest_grid"].tolist() == [e[3] for e in expected]
    np.testing.assert_allclose(df["nearest_distance"], [e[4] for e in expected], atol=1e-9)
    # the lake's centre is ~100 m from R's inner ring (chords: a bit less); midway
    # between R's outer vertex (300, 0) and E: a tie, to the smaller code "E"
    assert df["nearest_grid"].iat[-3] == "R" and 99.8 < df["nearest_distance"].iat[-3] <= 100
    assert df["nearest_grid"].iat[-2] == "E" and df["nearest_distance"].iat[-2] == 10.0


# --------------------------------------------------------------------------- fast path


def overlapping_case():
    """Voronoi cells, two of them grown into their neighbours, one bow-tie (invalid)."""
    grids = voronoi_tiling()
    geoms = np.asarray(grids.geometry.values).copy()
    geoms[3] = shapely.buffer(geoms[3], 4.0)  # overlaps every neighbour by 4 m
    geoms[7] = shapely.union(geoms[7], shapely.buffer(shapely.centroid(geoms[8]), 3.0))
    x0, y0, x1, y1 = shapely.bounds(geoms[11])
    geoms[11] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # bow-tie
    return grids.set_geometry(geoms, crs=grids.crs)


@pytest.mark.parametrize("tolerance", [0.0, 0.01, 2.0])
def test_boundary_distance_off_changes_nothing_else(random_case, tolerance):
    grids, x, y = random_case
    for frame in (grids, overlapping_case()):
        idx = GridIndex(frame, tolerance=tolerance)
        full = idx.locate(x, y)
        fast = idx.locate(x, y, boundary_distance=False)
        others = [c for c in LOCATE_COLUMNS if c != "distance_to_boundary"]
        assert fast[others].equals(full[others])
        got = fast["distance_to_boundary"].to_numpy()
        want = full["distance_to_boundary"].to_numpy()
        measured = ~np.isnan(got)
        assert (got[measured] == want[measured]).all()
        # left out only for located points clear of every edge by more than the tolerance
        left_out = ~measured & ~np.isnan(want)
        assert (want[left_out] > tolerance).all()
        assert fast["inside"].to_numpy()[left_out].all()
        if tolerance > 0:
            assert left_out.mean() > 0.5


def test_overlapping_and_invalid_grids_match_brute_force(random_case):
    _, x, y = random_case
    grids = overlapping_case()
    idx = GridIndex(grids)
    df = idx.locate(x, y)
    expected = brute_force(grids, x, y, idx.tolerance)
    assert df["grid_code"].tolist() == [e[0] for e in expected]
    assert df["inside"].tolist() == [e[1] for e in expected]
    assert df["nearest_grid"].tolist() == [e[3] for e in expected]
    # deep inside an overlapping grid, an edge of the other grid within the tolerance is
    # not searched for (the rule of the exact path too): candidates are a subset
    for got, want in zip(df["candidates"], expected, strict=True):
        assert set(got) <= set(want[2]) and (want[0] is None or want[0] in got)
    assert (df["candidates"].map(len) > 1).sum() > 100
    # the same answers one point at a time
    for i in range(0, len(x), 97):
        one = idx.locate_one(x[i], y[i])
        assert one["grid_code"] == df["grid_code"].iat[i]
        assert one["candidates"] == df["candidates"].iat[i]
