from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

import gridmap.crs as C  # noqa: N812
from gridmap.errors import CoordinateError, CRSError, InputError

# Copies of the shared reference files live in tests/data (see its README), so that these
# tests run in any clone; the shared folder next to the checkout is only used to check them.
DATA = Path(__file__).resolve().parent / "data"
VECTORS = DATA / "coordref-vectors.json"
CITIES = DATA / "gcoord-china-cities.json"
SHARED = Path(__file__).resolve().parents[2] / "shared"

# every op string used in coordref-vectors.json -> function(lon, lat) -> (lon, lat)
OPS = {
    "wgs>gcj": C.wgs84_to_gcj02,
    "gcj>bd": C.gcj02_to_bd09,
    "wgs>bd": C.wgs84_to_bd09,
    "gcj>wgs:iter": lambda x, y: C.gcj02_to_wgs84(x, y, method="iter"),
    "gcj>wgs:onestep": lambda x, y: C.gcj02_to_wgs84(x, y, method="onestep"),
    "bd>gcj:iter": lambda x, y: C.bd09_to_gcj02(x, y, method="iter"),
    "bd>gcj:onestep": lambda x, y: C.bd09_to_gcj02(x, y, method="onestep"),
    "bd>wgs:iter": lambda x, y: C.bd09_to_wgs84(x, y, method="iter"),
    "bd>wgs:onestep": lambda x, y: C.bd09_to_wgs84(x, y, method="onestep"),
}
# the same ops through the generic transform()
TRANSFORM_OPS: dict[str, tuple[str, str, C.Method]] = {
    "wgs>gcj": ("wgs84", "gcj02", "iter"),
    "gcj>bd": ("gcj02", "bd09", "iter"),
    "wgs>bd": ("wgs84", "bd09", "iter"),
    "gcj>wgs:iter": ("gcj02", "wgs84", "iter"),
    "gcj>wgs:onestep": ("gcj02", "wgs84", "onestep"),
    "bd>gcj:iter": ("bd09", "gcj02", "iter"),
    "bd>gcj:onestep": ("bd09", "gcj02", "onestep"),
    "bd>wgs:iter": ("bd09", "wgs84", "iter"),
    "bd>wgs:onestep": ("bd09", "wgs84", "onestep"),
}

EARTH_R = 6_371_008.8


def metres(lon1, lat1, lon2, lat2):
    """Haversine distance in metres (accurate to far below a millimetre at these offsets)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_R * np.arcsin(np.sqrt(a))


def _load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", [VECTORS, CITIES], ids=lambda p: p.name)
def test_reference_copies_are_in_the_repo_and_match_the_shared_ones(path):
    assert path.is_file(), f"{path} is part of the repository; restore it from tests/data"
    assert path.name in (DATA / "README.md").read_text(encoding="utf-8")
    shared = SHARED / path.name
    if not shared.exists():
        pytest.skip("no shared folder next to the checkout to compare the copy with")
    assert path.read_bytes() == shared.read_bytes()


@pytest.fixture(scope="module")
def vectors():
    data = _load(VECTORS)
    assert set(data) == {"must_match", "must_not_match"}, set(data)
    return data


@pytest.fixture(scope="module")
def cities():
    data = _load(CITIES)
    wgs = np.array([c["coords"]["WGS84"] for c in data])
    gcj = np.array([c["coords"]["GCJ02"] for c in data])
    bd = np.array([c["coords"]["BD09"] for c in data])
    return wgs, gcj, bd


# --------------------------------------------------------------------------- vectors


def test_vectors_file_structure_and_ops_are_all_mapped(vectors):
    assert len(vectors["must_match"]) == 21
    assert len(vectors["must_not_match"]) == 3
    ops = {v["op"] for section in vectors.values() for v in section}
    assert ops <= set(OPS), ops - set(OPS)
    for section in vectors.values():
        for v in section:
            assert {"id", "op", "input_lonlat", "expected_lonlat", "tol_deg"} <= set(v)


def test_every_must_match_vector(vectors):
    for v in vectors["must_match"]:
        got = OPS[v["op"]](*v["input_lonlat"])
        err = np.abs(np.subtract(got, v["expected_lonlat"])).max()
        assert err <= v["tol_deg"], (v["id"], v["op"], got, v["expected_lonlat"], err)
        # array form gives the same numbers as the scalar form
        arr = OPS[v["op"]](np.array([v["input_lonlat"][0]]), np.array([v["input_lonlat"][1]]))
        assert (arr[0][0], arr[1][0]) == got


def test_every_must_match_vector_through_transform(vectors):
    for v in vectors["must_match"]:
        src, dst, method = TRANSFORM_OPS[v["op"]]
        lon, lat = v["input_lonlat"]
        # G4 is at lon 183 (outside China, returned unchanged): not a valid lon/lat for
        # the validating transform(), so skip validation there
        got = C.transform(lon, lat, src, dst, method=method, validate=abs(lon) <= 180)
        err = np.abs(np.subtract(got, v["expected_lonlat"])).max()
        assert err <= v["tol_deg"], (v["id"], v["op"], got, err)


def test_strict_vectors_match_to_float_precision(vectors):
    # the wandergis / hutool / eviltransform vectors use the same formula: 1e-12 deg agreement
    strict = [v for v in vectors["must_match"] if v["tol_deg"] == 1e-9]
    assert len(strict) == 13
    for v in strict:
        got = OPS[v["op"]](*v["input_lonlat"])
        assert np.abs(np.subtract(got, v["expected_lonlat"])).max() < 1e-12, v["id"]


def test_every_must_not_match_vector_differs(vectors):
    for v in vectors["must_not_match"]:
        got = OPS[v["op"]](*v["input_lonlat"])
        err = np.abs(np.subtract(got, v["expected_lonlat"])).max()
        assert err > v["tol_deg"], (v["id"], v["note"], err)
    x1 = next(v for v in vectors["must_not_match"] if v["id"] == "X1")
    got = C.wgs84_to_gcj02(*x1["input_lonlat"])
    # "longitude ~7.6 m off": latitude equal, longitude about 7.6 m away
    assert got[1] == pytest.approx(x1["expected_lonlat"][1], abs=1e-12)
    d = metres(got[0], got[1], x1["expected_lonlat"][0], got[1])
    assert 7.0 < d < 8.0


def test_g4_outside_china_unchanged(vectors):
    g4 = next(v for v in vectors["must_match"] if v["id"] == "G4")
    assert C.gcj02_to_wgs84(*g4["input_lonlat"]) == tuple(g4["expected_lonlat"])


# --------------------------------------------------------------------------- cities


def test_cities_wgs_to_gcj_and_gcj_to_bd(cities):
    wgs, gcj, bd = cities
    assert len(wgs) == 664
    got = np.column_stack(C.wgs84_to_gcj02(wgs[:, 0], wgs[:, 1]))
    assert np.abs(got - gcj).max() < 1e-5
    got = np.column_stack(C.gcj02_to_bd09(gcj[:, 0], gcj[:, 1]))
    assert np.abs(got - bd).max() < 1e-5
    # README: BD09 equals the formula applied to the GCJ02 column to within rounding
    assert np.abs(got - bd).max() <= 1.5e-7
    got = np.column_stack(C.wgs84_to_bd09(wgs[:, 0], wgs[:, 1]))
    assert np.abs(got - bd).max() < 1e-5


def test_cities_gcj_column_constant_offset(cities):
    # README: the GCJ02 column and the formula differ by a near-constant 0.48 m east-west and
    # 0.47 m north-south (sd 0.015 m), |d| ~ 0.67 m. Measured: the column lies 0.48 m east and
    # 0.47 m north of the formula (the README's "-0.48 m east, -0.47 m north" is formula minus
    # column).
    wgs, gcj, _ = cities
    fx, fy = C.wgs84_to_gcj02(wgs[:, 0], wgs[:, 1])
    east = metres(fx, gcj[:, 1], gcj[:, 0], gcj[:, 1]) * np.sign(gcj[:, 0] - fx)
    north = metres(gcj[:, 0], fy, gcj[:, 0], gcj[:, 1]) * np.sign(gcj[:, 1] - fy)
    assert east.mean() == pytest.approx(0.48, abs=0.01)
    assert north.mean() == pytest.approx(0.47, abs=0.01)
    assert east.std() < 0.02 and north.std() < 0.02
    assert np.hypot(east, north).mean() == pytest.approx(0.67, abs=0.01)


def test_cities_inverse(cities):
    wgs, gcj, bd = cities
    got = np.column_stack(C.gcj02_to_wgs84(gcj[:, 0], gcj[:, 1]))
    assert np.abs(got - wgs).max() < 1e-5
    got = np.column_stack(C.bd09_to_gcj02(bd[:, 0], bd[:, 1]))
    assert np.abs(got - gcj).max() < 1e-5
    got = np.column_stack(C.bd09_to_wgs84(bd[:, 0], bd[:, 1]))
    assert np.abs(got - wgs).max() < 1e-5
    got = np.column_stack(C.transform(bd[:, 0], bd[:, 1], "baidu", "wgs84"))
    assert np.abs(got - wgs).max() < 1e-5


# --------------------------------------------------------------------------- round trips


@pytest.fixture(scope="module")
def china_points():
    rng = np.random.default_rng(20261122)
    n = 100_000
    # inside the China rectangle with a 0.05 deg margin, so that the offset point
    # (at most ~0.01 deg away) stays on the same side of the rectangle edge
    lon = rng.uniform(72.004 + 0.05, 137.8347 - 0.05, n)
    lat = rng.uniform(0.8293 + 0.05, 55.8271 - 0.05, n)
    return lon, lat


@pytest.mark.parametrize(
    ("forward", "inverse"),
    [
        (C.wgs84_to_gcj02, C.gcj02_to_wgs84),
        (C.wgs84_to_bd09, C.bd09_to_wgs84),
        (C.gcj02_to_bd09, C.bd09_to_gcj02),
    ],
    ids=["wgs-gcj-wgs", "wgs-bd-wgs", "gcj-bd-gcj"],
)
def test_round_trip_below_a_millimetre(china_points, forward, inverse):
    lon, lat = china_points
    fx, fy = forward(lon, lat)
    assert metres(lon, lat, fx, fy).min() > 1.0  # really offset
    bx, by = inverse(fx, fy)
    err = metres(lon, lat, bx, by)
    assert err.max() < 1e-3
    assert err.max() < 1e-6  # in fact far below (iteration to 1e-12 deg)


def test_exact_inverses_below_a_millimetre_on_100k_points(china_points):
    # Newton's method: round trips through GCJ-02 and BD-09 come back to far below a millimetre
    lon, lat = china_points
    gx, gy = C.wgs84_to_gcj02(lon, lat)
    wx, wy = C.gcj02_to_wgs84(gx, gy)
    assert metres(lon, lat, wx, wy).max() < 1e-3
    assert metres(lon, lat, wx, wy).max() < 1e-6
    bx, by = C.wgs84_to_bd09(lon, lat)
    wx, wy = C.bd09_to_wgs84(bx, by)
    assert metres(lon, lat, wx, wy).max() < 1e-6
    # and the forward formula at the result gives the target back to 1e-12 deg
    fx, fy = C.wgs84_to_gcj02(*C.gcj02_to_wgs84(gx, gy))
    assert max(np.abs(fx - gx).max(), np.abs(fy - gy).max()) < 1e-12


def test_newton_error_bound_holds(china_points):
    # a point stops when the bound on the error a Newton step leaves is below 1e-12 deg: the
    # bound must exceed the true error, checked after each of the first two steps
    lon, lat = china_points[0][:20_000], china_points[1][:20_000]
    gx, gy = C.wgs84_to_gcj02(lon, lat)
    x, y = gx, gy
    for _ in range(2):
        sx, sy, bound = C._gcj_newton(gx, gy, x, y)
        x, y = x - sx, y - sy
        err = np.maximum(np.abs(x - lon), np.abs(y - lat))
        assert (err <= bound + 1e-13).all()
    assert np.mean(bound < 1e-12) > 0.9  # two steps are enough for almost every point


@pytest.mark.parametrize("offset", [0.0, 1e-15, 1e-13, -1e-12, 1e-10, -1e-8, 1e-6, 1e-3])
def test_gcj_inverse_worst_case_at_105_east(offset):
    # the offset has a sqrt(|lon - 105|) term, whose slope is unbounded at 105 deg E: Newton's
    # quadratic convergence fails there, and the iteration must still end, at the old accuracy
    lat = np.linspace(0.9, 55.7, 501)
    lon = np.full_like(lat, 105.0 + offset)
    gx, gy = C.wgs84_to_gcj02(lon, lat)
    wx, wy = C.gcj02_to_wgs84(gx, gy)
    assert np.abs(wx - lon).max() < 1e-11 and np.abs(wy - lat).max() < 1e-11
    assert metres(lon, lat, wx, wy).max() < 1e-6
    sx, sy = C.gcj02_to_wgs84(gx[250], gy[250])
    assert (sx, sy) == (wx[250], wy[250])


def test_inverses_worst_case_corners_and_largest_offsets():
    # the rectangle's corners and a dense grid: the largest offsets (~0.011 deg) and slopes
    w, s, e, n = C.CHINA_BOUNDS
    glon, glat = np.meshgrid(
        np.linspace(w + 0.02, e - 0.02, 400), np.linspace(s + 0.02, n - 0.02, 300)
    )
    lon, lat = glon.ravel(), glat.ravel()
    gx, gy = C.wgs84_to_gcj02(lon, lat)
    assert np.hypot(gx - lon, gy - lat).max() > 0.01
    wx, wy = C.gcj02_to_wgs84(gx, gy)
    assert np.abs(wx - lon).max() < 1e-12 and np.abs(wy - lat).max() < 1e-12
    bx, by = C.gcj02_to_bd09(gx, gy)
    cx, cy = C.bd09_to_gcj02(bx, by)
    assert np.abs(cx - gx).max() < 1e-12 and np.abs(cy - gy).max() < 1e-12


def test_inverse_scalar_path():
    # one point takes the scalar path: Python floats out, the same numbers as in a batch
    # (which goes through in blocks), for 0-d arrays too, and shapes kept for 1-element arrays
    rng = np.random.default_rng(11)
    lon = rng.uniform(73, 135, 40_000)
    lat = rng.uniform(18, 53, 40_000)
    gx, gy = C.wgs84_to_gcj02(lon, lat)
    bx, by = C.wgs84_to_bd09(lon, lat)
    ax, ay = C.gcj02_to_wgs84(gx, gy)
    cx, cy = C.bd09_to_wgs84(bx, by)
    for i in [0, 1, 16_383, 16_384, 39_999]:
        got = C.gcj02_to_wgs84(gx[i], gy[i])
        assert all(isinstance(v, float) for v in got)
        assert got == (ax[i], ay[i])
        assert C.gcj02_to_wgs84(np.float64(gx[i]), np.asarray(gy[i])) == got
        assert C.bd09_to_wgs84(float(bx[i]), float(by[i])) == (cx[i], cy[i])
        assert metres(lon[i], lat[i], *got) < 1e-6
    x, y = C.gcj02_to_wgs84(gx[:1].reshape(1, 1), gy[:1].reshape(1, 1))
    assert x.shape == (1, 1) and (x[0, 0], y[0, 0]) == (ax[0], ay[0])


def test_inverse_nan_in_a_batch():
    gx = np.array([116.41, np.nan, 121.5, 116.41])
    gy = np.array([39.91, 39.9, 31.2, np.inf])
    for fn in (C._gcj_to_wgs, C._bd_to_gcj):
        with np.errstate(invalid="ignore"):  # sin(inf)
            x, y = fn(gx, gy, "iter")
        assert np.isfinite(x[[0, 2]]).all() and np.isnan(x[[1, 3]]).all()
        assert np.isnan(y[[1, 3]]).all()


def test_round_trip_reverse_direction(china_points):
    lon, lat = china_points
    # GCJ -> WGS -> GCJ and BD -> GCJ -> BD
    wx, wy = C.gcj02_to_wgs84(lon, lat)
    gx, gy = C.wgs84_to_gcj02(wx, wy)
    assert metres(lon, lat, gx, gy).max() < 1e-3
    cx, cy = C.bd09_to_gcj02(lon, lat)
    bx, by = C.gcj02_to_bd09(cx, cy)
    assert metres(lon, lat, bx, by).max() < 1e-3


def test_onestep_inverse_is_metre_level(china_points):
    lon, lat = china_points[0][:20_000], china_points[1][:20_000]
    gx, gy = C.wgs84_to_gcj02(lon, lat)
    ox, oy = C.gcj02_to_wgs84(gx, gy, method="onestep")
    err = metres(lon, lat, ox, oy)
    assert 0.1 < err.max() < 20.0


def test_transform_agrees_with_direct_functions(china_points):
    lon, lat = china_points[0][:5000], china_points[1][:5000]
    for src, dst, fn in [
        ("wgs84", "gcj02", C.wgs84_to_gcj02),
        ("wgs84", "bd09", C.wgs84_to_bd09),
        ("gcj02", "wgs84", C.gcj02_to_wgs84),
        ("bd09", "wgs84", C.bd09_to_wgs84),
        ("gcj02", "bd09", C.gcj02_to_bd09),
        ("bd09", "gcj02", C.bd09_to_gcj02),
    ]:
        a = C.transform(lon, lat, src, dst)
        b = fn(lon, lat)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # CGCS2000 is WGS84
    a = C.transform(lon, lat, "cgcs2000", "gcj02")
    np.testing.assert_array_equal(a[0], C.wgs84_to_gcj02(lon, lat)[0])
    assert C.transform(121.5, 31.2, "EPSG:4490", "wgs84") == (121.5, 31.2)


def test_outside_china_unchanged():
    lon = np.array([2.35, -74.0, 139.69, 72.0, 137.9, 100.0, 100.0, 183.0])
    lat = np.array([48.85, 40.7, 35.68, 30.0, 40.0, 0.5, 56.0, 45.0])
    assert not C.in_china(lon, lat).any()
    for fn in OPS.values():
        x, y = fn(lon, lat)
        np.testing.assert_array_equal(x, lon)
        np.testing.assert_array_equal(y, lat)
    for src in ("wgs84", "gcj02", "bd09"):
        for dst in ("wgs84", "gcj02", "bd09"):
            x, y = C.transform(lon[:-1], lat[:-1], src, dst)
            np.testing.assert_array_equal(x, lon[:-1])
            np.testing.assert_array_equal(y, lat[:-1])


def test_mixed_inside_and_outside():
    lon = np.array([116.404, 2.35, 121.5])
    lat = np.array([39.915, 48.85, 31.2])
    x, y = C.wgs84_to_gcj02(lon, lat)
    assert (x[1], y[1]) == (2.35, 48.85)
    assert (x[0], y[0]) == C.wgs84_to_gcj02(116.404, 39.915)
    assert (x[2], y[2]) == C.wgs84_to_gcj02(121.5, 31.2)


def test_china_rectangle_edges_inclusive():
    assert C.in_china(72.004, 0.8293) and C.in_china(137.8347, 55.8271)
    assert not C.in_china(72.0039, 30) and not C.in_china(100, 55.8272)


def test_scalar_and_array_forms_agree():
    rng = np.random.default_rng(7)
    lon = rng.uniform(100, 125, 200)
    lat = rng.uniform(20, 45, 200)
    for fn in OPS.values():
        ax, ay = fn(lon, lat)
        assert isinstance(ax, np.ndarray) and ax.shape == (200,)
        for i in range(0, 200, 17):
            sx, sy = fn(lon[i], lat[i])
            assert isinstance(sx, float) and isinstance(sy, float)
            assert (sx, sy) == (ax[i], ay[i])
    # lists and 2-d arrays keep their shape
    x, _ = C.wgs84_to_gcj02([[116.4, 121.5]], [[39.9, 31.2]])
    assert x.shape == (1, 2)


def test_inputs_not_mutated():
    lon = np.array([116.404, 2.35])
    lat = np.array([39.915, 48.85])
    before = lon.copy(), lat.copy()
    C.gcj02_to_wgs84(lon, lat)
    C.transform(lon, lat, "gcj02", "bd09")
    np.testing.assert_array_equal(lon, before[0])
    np.testing.assert_array_equal(lat, before[1])


def test_nan_propagates_in_low_level_functions():
    x, y = C.gcj02_to_wgs84(np.array([np.nan, 116.4]), np.array([39.9, 39.9]))
    assert math.isnan(x[0]) and math.isfinite(x[1])


# --------------------------------------------------------------------------- pyproj


def test_transform_epsg_through_pyproj():
    x, y = C.transform(121.5, 31.2, "wgs84", "EPSG:3857")
    ref = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(121.5, 31.2)
    assert (x, y) == pytest.approx(ref, abs=1e-6)
    lon, lat = C.transform(x, y, 3857, "wgs84")
    assert (lon, lat) == pytest.approx((121.5, 31.2), abs=1e-9)
    # GCJ-02 straight into a projected CRS goes through WGS84
    gx, gy = C.wgs84_to_gcj02(118.78, 32.05)
    px, py = C.transform(gx, gy, "gcj-02", 4549)
    ref = pyproj.Transformer.from_crs(4326, 4549, always_xy=True).transform(118.78, 32.05)
    assert (px, py) == pytest.approx(ref, abs=1e-4)
    # projected -> projected
    qx, qy = C.transform(px, py, 4549, "EPSG:3857")
    rx, ry = C.transform(118.78, 32.05, "wgs84", 3857)
    assert (qx, qy) == pytest.approx((rx, ry), abs=1e-4)
    # projected -> BD-09
    bx, by = C.transform(px, py, 4549, "bd09")
    assert (bx, by) == pytest.approx(C.wgs84_to_bd09(118.78, 32.05), abs=1e-9)
    # projected input is not validated as lon/lat
    C.transform(np.array([384287.0]), np.array([3548280.0]), 4549, "wgs84")


def test_to_and_from_wgs84():
    g = C.from_wgs84(116.404, 39.915, "gcj02")
    assert g == C.wgs84_to_gcj02(116.404, 39.915)
    w = C.to_wgs84(*g, "gcj02")
    assert w == pytest.approx((116.404, 39.915), abs=1e-11)
    w1 = C.to_wgs84(*g, "gcj02", method="onestep")
    assert metres(116.404, 39.915, *w1) > 0.1


# --------------------------------------------------------------------------- parse_crs


@pytest.mark.parametrize(
    ("value", "name", "kind", "epsg"),
    [
        ("wgs84", "wgs84", "wgs84", 4326),
        ("WGS-84", "wgs84", "wgs84", 4326),
        ("EPSG:4326", "wgs84", "wgs84", 4326),
        ("epsg:4326", "wgs84", "wgs84", 4326),
        (4326, "wgs84", "wgs84", 4326),
        ("gcj02", "gcj02", "gcj02", None),
        ("GCJ-02", "gcj02", "gcj02", None),
        ("gcj_02", "gcj02", "gcj02", None),
        ("AMap", "gcj02", "gcj02", None),
        ("bd09", "bd09", "bd09", None),
        ("BD-09", "bd09", "bd09", None),
        ("baidu", "bd09", "bd09", None),
        ("cgcs2000", "cgcs2000", "wgs84", 4490),
        ("CGCS-2000", "cgcs2000", "wgs84", 4490),
        ("epsg:4490", "cgcs2000", "wgs84", 4490),
        (4490, "cgcs2000", "wgs84", 4490),
        (pyproj.CRS.from_epsg(4490), "cgcs2000", "wgs84", 4490),
        (pyproj.CRS.from_epsg(4326), "wgs84", "wgs84", 4326),
        ("EPSG:4549", "EPSG:4549", "pyproj", 4549),
        (np.int64(32631), "EPSG:32631", "pyproj", 32631),
        (pyproj.CRS.from_epsg(3857), "EPSG:3857", "pyproj", 3857),
    ],
)
def test_parse_crs(value, name, kind, epsg):
    spec = C.parse_crs(value)
    assert (spec.name, spec.kind, spec.epsg) == (name, kind, epsg)
    assert C.parse_crs(spec) is spec


def test_parse_crs_descriptor():
    assert C.parse_crs("gcj02").is_offset and C.parse_crs("gcj02").is_geographic
    assert not C.parse_crs("cgcs2000").is_offset
    assert not C.parse_crs(4549).is_geographic
    assert C.parse_crs("cgcs2000").to_pyproj().to_epsg() == 4490
    assert C.parse_crs("gcj02") == C.parse_crs("GCJ-02")
    with pytest.raises(CRSError, match="no EPSG/pyproj definition.*to_wgs84"):
        C.parse_crs("bd09").to_pyproj()


@pytest.mark.parametrize("value", ["gjc02", "mars", "", "bd09mc", None, 3.5, True, [4326]])
def test_parse_crs_unknown(value):
    with pytest.raises(CRSError, match=r"unknown CRS .*'wgs84', 'gcj02'.*'bd09'.*'cgcs2000'"):
        C.parse_crs(value)


def test_parse_crs_unknown_epsg():
    with pytest.raises(CRSError, match="unknown EPSG code 'EPSG:999999'.*epsg.io"):
        C.parse_crs("EPSG:999999")
    with pytest.raises(CRSError, match="unknown EPSG code 1"):
        C.parse_crs(1)
    assert issubclass(CRSError, InputError) and issubclass(CRSError, ValueError)


def test_transform_unknown_crs():
    with pytest.raises(CRSError, match="unknown CRS 'wgs 1984x'; use one of"):
        C.transform(121.5, 31.2, "wgs84", "wgs 1984x")
    with pytest.raises(ValueError, match="method must be 'iter' or 'onestep'"):
        C.transform(121.5, 31.2, "gcj02", "wgs84", method="exact")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- guards


def test_check_lonlat_ok():
    C.check_lonlat([121.5, -180, 180, 0], [31.2, -90, 90, 0])
    C.check_lonlat(121.5, 31.2)


@pytest.mark.parametrize(
    ("lon", "lat", "match"),
    [
        ([121.5, np.nan], [31.2, 31.2], r"NaN or infinite: \[1\] \(lon=nan, lat=31.2\)"),
        ([121.5, 121.5], [31.2, np.inf], r"NaN or infinite: \[1\]"),
        (31.2, 121.5, r"\[0\] \(lon=31.2, lat=121.5\); looks like lat/lon are swapped; pass lon"),
        ([121.5, 39.9], [31.2, 116.4], r"latitude out of \[-90, 90\] at index \[1\].*swapped"),
        (200.0, 10.0, r"longitude out of \[-180, 180\] at index \[0\].*projected metres"),
        (10.0, 95.0, r"looks like lat/lon are swapped"),
        (384287.0, 3548280.0, r"out of range.*projected metres\? then pass the projected CRS"),
    ],
)
def test_check_lonlat_guards(lon, lat, match):
    with pytest.raises(CoordinateError, match=match):
        C.check_lonlat(lon, lat)


def test_check_lonlat_lists_several_and_counts():
    lon = np.full(10, 121.5)
    lat = np.full(10, 31.2)
    lat[[2, 4, 6, 8, 9]] = np.nan
    with pytest.raises(
        CoordinateError, match=r"5 coordinate\(s\).*\[2\].*\[4\].*\[6\].* and 2 more"
    ):
        C.check_lonlat(lon, lat)


def test_check_lonlat_expect_china():
    # Kashgar (75.99E, 39.47N) given reversed is a valid point in the Arctic sea
    C.check_lonlat(39.47, 75.99)
    with pytest.raises(CoordinateError, match="looks like lat/lon are swapped; pass lon first"):
        C.check_lonlat(39.47, 75.99, expect_china=True)
    C.check_lonlat(75.99, 39.47, expect_china=True)


def test_shape_mismatch():
    with pytest.raises(CoordinateError, match="different shapes"):
        C.wgs84_to_gcj02([1.0, 2.0], [1.0])


def test_transform_validates_geographic_input():
    with pytest.raises(CoordinateError, match="swapped"):
        C.transform(31.2, 121.5, "gcj02", "wgs84")
    with pytest.raises(CoordinateError, match="NaN"):
        C.to_wgs84([np.nan], [31.0], "bd09")
    x, _ = C.transform([np.nan], [31.0], "gcj02", "wgs84", validate=False)
    assert math.isnan(x[0])


# --------------------------------------------------------------------------- local_crs


def test_gk_zone_table():
    assert C.gk_zone_epsg(75.0) == 4534
    assert C.gk_zone_epsg(135.0) == 4554
    for k, cm in enumerate(range(75, 136, 3)):
        code = 4534 + k
        assert C.gk_zone_epsg(cm) == code
        assert C.gk_zone_epsg(cm - 1.49) == code and C.gk_zone_epsg(cm + 1.49) == code
        crs = pyproj.CRS.from_epsg(code)
        assert f"CM {cm}E" in crs.name and "CGCS2000" in crs.name
    assert C.gk_zone_epsg(72.01) == 4534  # clamped
    assert C.gk_zone_epsg(137.8) == 4554


def test_local_crs_china():
    assert C.local_crs((118.78, 32.05)).to_epsg() == 4549  # Nanjing: CM 120 (1.22 deg) < CM 117
    assert C.local_crs((121.4737, 31.2304)).to_epsg() == 4549  # People's Square, Shanghai
    assert C.local_crs((116.40, 39.90)).to_epsg() == 4548  # Beijing: CM 117
    assert C.local_crs((87.6, 43.8)).to_epsg() == 4538  # Urumqi: CM 87


def test_local_crs_tie_goes_east():
    # 121.5E is exactly between CM 120 and CM 123: zones are half-open [CM-1.5, CM+1.5),
    # so the tie goes to the eastern zone, CM 123 (EPSG:4550)
    assert C.gk_zone_epsg(121.5) == 4550
    assert C.gk_zone_epsg(np.nextafter(121.5, 0)) == 4549
    assert C.local_crs((121.5, 31.2)).to_epsg() == 4550
    # same rule as UTM zone edges
    assert C.utm_zone_epsg(6.0, 45.0) == 32632
    assert C.utm_zone_epsg(5.999999, 45.0) == 32631


def test_local_crs_elsewhere_utm():
    assert C.local_crs((2.35, 48.86)).to_epsg() == 32631  # Paris
    assert C.local_crs((-74.0, 40.7)).to_epsg() == 32618  # New York
    assert C.local_crs((151.2, -33.9)).to_epsg() == 32756  # Sydney
    assert C.local_crs((139.69, 35.68)).to_epsg() == 32654  # Tokyo: east of the rectangle
    assert C.utm_zone_epsg(180.0, 0) == 32660 and C.utm_zone_epsg(-180.0, -1) == 32701


def test_local_crs_frames_bounds_and_other_crs():
    nanjing = gpd.GeoDataFrame(
        geometry=[
            shapely.box(118.75, 32.02, 118.80, 32.07),
            shapely.box(118.80, 32.02, 118.81, 32.03),
        ],
        crs=4326,
    )
    assert C.local_crs(nanjing).to_epsg() == 4549
    assert C.local_crs(nanjing.geometry).to_epsg() == 4549
    assert C.local_crs(nanjing.to_crs(3857)).to_epsg() == 4549
    assert C.local_crs(nanjing.to_crs(4549)).to_epsg() == 4549
    assert C.local_crs(tuple(nanjing.total_bounds)).to_epsg() == 4549
    assert C.local_crs(nanjing.geometry.iloc[0]).to_epsg() == 4549
    assert C.local_crs(np.array([118.78, 32.05])).to_epsg() == 4549
    # area-weighted: a big block at CM 117 outweighs a tiny one at CM 120
    mixed = gpd.GeoDataFrame(
        geometry=[shapely.box(116.9, 32.0, 117.5, 32.5), shapely.box(121.0, 32.0, 121.01, 32.01)],
        crs=4326,
    )
    assert C.local_crs(mixed).to_epsg() == 4548
    # points (no area) use the plain mean
    pts = gpd.GeoSeries(gpd.points_from_xy([118.0, 119.6], [32.0, 32.1]), crs=4326)
    assert C.local_crs(pts).to_epsg() == 4549
    # a GCJ-02 (lon, lat) is de-offset before choosing
    assert C.local_crs((121.4737, 31.2304), crs="gcj02").to_epsg() == 4549
    x, y = C.transform(2.35, 48.86, "wgs84", 2154)
    assert C.local_crs((x, y), crs=2154).to_epsg() == 32631


def test_local_crs_deterministic():
    a = C.local_crs((118.78, 32.05))
    b = C.local_crs((118.78, 32.05))
    assert a == b and a.to_epsg() == b.to_epsg()


def test_local_crs_guards():
    with pytest.raises(CRSError, match=r"no CRS; set one with gdf.set_crs\(4326\)"):
        C.local_crs(gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)]))
    with pytest.raises(CRSError, match="empty area"):
        C.local_crs(gpd.GeoSeries([], crs=4326))
    with pytest.raises(CRSError, match="cannot read an area from str"):
        C.local_crs("Nanjing")
    with pytest.raises(CoordinateError, match="swapped"):
        C.local_crs((32.05, 118.78))


# ---------------------------------------------------------------------------
# cached transformers (one PROJ operation per pair and process)


@pytest.mark.parametrize("epsg", [4549, 4547, 32650, 3857])
def test_cached_transformer_gives_a_fresh_ones_coordinates_to_the_bit(epsg: int) -> None:
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(118.6, 121.4, 5_000), rng.uniform(25.0, 40.0, 5_000)
    forward = C.transformer(4326, epsg)
    assert C.transformer(4326, epsg) is forward  # made once
    assert C.transformer(pyproj.CRS.from_epsg(4326), f"EPSG:{epsg}") is forward
    fresh = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
    x, y = forward.transform(lon, lat)
    fx, fy = fresh.transform(lon, lat)
    # CGCS2000 Gauss-Krüger from CGCS2000's own geographic CRS: PROJ's ballpark, to the bit
    assert np.array_equal(x, fx) and np.array_equal(y, fy)
    bx, by = C.transformer(epsg, 4326).transform(x, y)
    rx, ry = pyproj.Transformer.from_crs(epsg, 4326, always_xy=True).transform(x, y)
    assert np.array_equal(bx, rx) and np.array_equal(by, ry)
    assert np.abs(bx - lon).max() < 1e-9 and np.abs(by - lat).max() < 1e-9


def test_transform_geometries_is_to_crs() -> None:
    polys = gpd.GeoSeries(
        [shapely.box(118.7, 32.0, 118.8, 32.1), None, shapely.Point(118.75, 32.05)], crs=4326
    )
    got = C.transform_geometries(polys.values, 4326, 4549)
    want = polys.to_crs(4549).values
    assert got[1] is None
    ok = [
        shapely.equals_exact(g, w, tolerance=1e-6)
        for g, w in zip(got, want, strict=True)
        if g is not None
    ]
    assert ok == [True, True]


def test_a_forked_process_makes_its_own_transformers() -> None:
    import multiprocessing

    C.transformer(4326, 4549)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_cache_size) == 0
    assert _cache_size() > 0


def _cache_size() -> int:
    return len(C._TRANSFORMERS)
