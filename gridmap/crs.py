"""Coordinate systems: WGS84, GCJ-02, BD-09, CGCS2000 and any EPSG code.

Chinese apps report coordinates in **GCJ-02** (AMap/Gaode, Tencent, WeChat) or
**BD-09** (Baidu), 300–700 m away from WGS84 — more than a grid's width. This
module converts between them with the public formulas, treats **CGCS2000**
(EPSG:4490) as WGS84 (they agree to a few centimetres), hands every other EPSG
code to :mod:`pyproj`, validates lon/lat input and chooses a local metric CRS for
an area.

Conventions
-----------
* Longitude (or ``x``) always comes first.
* Forward offsets (WGS84 → GCJ-02 → BD-09) use the public formula: Krasovsky
  ellipsoid ``a = 6378245.0``, ``ee = 0.00669342162296594323``; BD-09 with
  ``x_pi = 3.14159265358979324 * 3000 / 180`` and the ``0.00002 * sin`` and
  ``0.000003 * cos`` terms.
* Inverses are exact by default (``method="iter"``: Newton's method until the
  error left is below 1e-12°, about 0.1 µm; two steps, 1.2–2 times the cost of
  the forward formula); ``method="onestep"`` gives the classic one-step
  approximation (metre-level error) that many libraries use.
* Points outside China get no offset. "China" is the usual rectangle
  lon 72.004–137.8347, lat 0.8293–55.8271 (:data:`CHINA_BOUNDS`), tested on the
  point given to the function (a GCJ-02 point for GCJ-02 → WGS84).
* Every function takes scalars or array-likes; scalars give Python floats back,
  arrays give float64 :class:`numpy.ndarray`.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyproj
import shapely

from gridmap.errors import CoordinateError, CRSError

__all__ = [
    "CHINA_BOUNDS",
    "CRSSpec",
    "parse_crs",
    "in_china",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "transform",
    "transformer",
    "transform_geometries",
    "to_wgs84",
    "from_wgs84",
    "check_lonlat",
    "local_crs",
    "gk_zone_epsg",
    "utm_zone_epsg",
]

#: (min lon, min lat, max lon, max lat) of the rectangle treated as China.
CHINA_BOUNDS: tuple[float, float, float, float] = (72.004, 0.8293, 137.8347, 55.8271)

_PI = math.pi
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = 3.14159265358979324 * 3000.0 / 180.0

_ITER_TOL_DEG = 1e-12
_ITER_MAX = 50

Method = Literal["iter", "onestep"]

# canonical name -> (kind, epsg)
_CANONICAL: dict[str, tuple[str, int | None]] = {
    "wgs84": ("wgs84", 4326),
    "cgcs2000": ("wgs84", 4490),
    "gcj02": ("gcj02", None),
    "bd09": ("bd09", None),
}
_ALIASES: dict[str, str] = {
    "wgs84": "wgs84",
    "wgs": "wgs84",
    "epsg4326": "wgs84",
    "4326": "wgs84",
    "gps": "wgs84",
    "cgcs2000": "cgcs2000",
    "cgcs": "cgcs2000",
    "epsg4490": "cgcs2000",
    "4490": "cgcs2000",
    "gcj02": "gcj02",
    "gcj": "gcj02",
    "amap": "gcj02",
    "gaode": "gcj02",
    "tencent": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
    "bd": "bd09",
    "baidu": "bd09",
}
_ACCEPTED = (
    "'wgs84', 'gcj02' (also 'gcj-02', 'amap', 'gaode', 'tencent'), 'bd09' (also 'bd-09', "
    "'baidu'), 'cgcs2000', an EPSG code ('EPSG:4326', 'epsg:4490', 4549) or a pyproj.CRS"
)
_EPSG_RE = re.compile(r"^\s*epsg\s*:\s*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class CRSSpec:
    """A normalised coordinate reference system, as returned by :func:`parse_crs`.

    Attributes
    ----------
    name : str
        ``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``, ``"bd09"`` or, for anything
        handled by pyproj, ``"EPSG:<code>"`` (or the CRS name when it has no
        EPSG code).
    kind : {"wgs84", "gcj02", "bd09", "pyproj"}
        How coordinates are converted: WGS84 and CGCS2000 are both ``"wgs84"``.
    epsg : int or None
        The EPSG code (``None`` for GCJ-02, BD-09 and CRSs without one).
    pyproj_crs : pyproj.CRS or None
        The pyproj CRS for ``kind == "pyproj"``, else ``None``.
    """

    name: str
    kind: str
    epsg: int | None = None
    pyproj_crs: pyproj.CRS | None = None

    @property
    def is_geographic(self) -> bool:
        """Whether coordinates are longitude/latitude in degrees."""
        if self.kind != "pyproj":
            return True
        assert self.pyproj_crs is not None
        return bool(self.pyproj_crs.is_geographic)

    @property
    def is_offset(self) -> bool:
        """Whether this is an obfuscated Chinese system (GCJ-02 or BD-09)."""
        return self.kind in ("gcj02", "bd09")

    def to_pyproj(self) -> pyproj.CRS:
        """Return the :class:`pyproj.CRS`.

        Raises
        ------
        CRSError
            For GCJ-02 and BD-09, which have no EPSG definition.
        """
        if self.pyproj_crs is not None:
            return self.pyproj_crs
        if self.epsg is not None:
            return _epsg_crs(self.epsg)
        raise CRSError(
            f"{self.name} has no EPSG/pyproj definition; convert the coordinates to WGS84 "
            "first with gridmap.crs.to_wgs84(lon, lat, crs)"
        )


@functools.lru_cache(maxsize=64)
def _epsg_crs(code: int) -> pyproj.CRS:
    return pyproj.CRS.from_epsg(code)


def _from_pyproj(crs: pyproj.CRS) -> CRSSpec:
    code = crs.to_epsg()
    if code == 4326:
        return CRSSpec("wgs84", "wgs84", 4326)
    if code == 4490:
        return CRSSpec("cgcs2000", "wgs84", 4490)
    name = f"EPSG:{code}" if code is not None else str(crs.name)
    return CRSSpec(name, "pyproj", code, crs)


def parse_crs(value: Any) -> CRSSpec:
    """Normalise a CRS given as a name, an EPSG code or a :class:`pyproj.CRS`.

    Parameters
    ----------
    value : str, int, pyproj.CRS or CRSSpec
        ``"wgs84"``, ``"gcj02"``, ``"bd09"``, ``"cgcs2000"`` (case-, hyphen-,
        underscore- and space-insensitive: ``"GCJ-02"``, ``"bd_09"``), app names
        ``"amap"``/``"gaode"``/``"tencent"`` (GCJ-02) and ``"baidu"`` (BD-09),
        ``"EPSG:<code>"``, an integer EPSG code, any string pyproj understands
        (WKT, PROJ) or a :class:`pyproj.CRS`. EPSG:4326 is ``wgs84`` and
        EPSG:4490 is ``cgcs2000``.

    Returns
    -------
    CRSSpec

    Raises
    ------
    CRSError
        If the value is not a known CRS; the message lists the accepted values.

    Examples
    --------
    >>> parse_crs("GCJ-02").name
    'gcj02'
    >>> parse_crs("epsg:4490")
    CRSSpec(name='cgcs2000', kind='wgs84', epsg=4490, pyproj_crs=None)
    >>> parse_crs(4549).name, parse_crs(4549).is_geographic
    ('EPSG:4549', False)
    """
    if isinstance(value, CRSSpec):
        return value
    if isinstance(value, pyproj.CRS):
        return _from_pyproj(value)
    if isinstance(value, bool):
        raise CRSError(f"unknown CRS {value!r}; use one of {_ACCEPTED}")
    if isinstance(value, int | np.integer):
        return _parse_epsg(int(value), value)
    if isinstance(value, str):
        key = re.sub(r"[\s_\-:]", "", value.lower())
        if key in _ALIASES:
            name = _ALIASES[key]
            kind, code = _CANONICAL[name]
            return CRSSpec(name, kind, code)
        m = _EPSG_RE.match(value)
        if m:
            return _parse_epsg(int(m.group(1)), value)
        if value.strip().startswith("+proj") or value.strip()[:6].isupper():
            try:
                return _from_pyproj(pyproj.CRS.from_user_input(value))
            except pyproj.exceptions.CRSError:
                pass
    raise CRSError(f"unknown CRS {value!r}; use one of {_ACCEPTED}")


def _parse_epsg(code: int, original: Any) -> CRSSpec:
    try:
        crs = _epsg_crs(code)
    except pyproj.exceptions.CRSError:
        raise CRSError(
            f"unknown EPSG code {original!r}; check the code (e.g. on epsg.io) or use one of "
            f"{_ACCEPTED}"
        ) from None
    return _from_pyproj(crs)


# ---------------------------------------------------------------------------
# array helpers


def _as_arrays(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if x.shape != y.shape:
        raise CoordinateError(
            f"lon and lat have different shapes {x.shape} and {y.shape}; pass one "
            "longitude per latitude"
        )
    return x, y, scalar


def _out(x: np.ndarray, y: np.ndarray, scalar: bool) -> tuple[Any, Any]:
    if scalar:
        return float(x), float(y)
    return x, y


def in_china(lon: Any, lat: Any) -> Any:
    """Return whether points lie in the China rectangle :data:`CHINA_BOUNDS`.

    Parameters
    ----------
    lon, lat : float or array-like
        Degrees.

    Returns
    -------
    bool or numpy.ndarray of bool

    Examples
    --------
    >>> in_china(121.47, 31.23), in_china(2.35, 48.85)
    (True, False)
    """
    x, y, scalar = _as_arrays(lon, lat)
    w, s, e, n = CHINA_BOUNDS
    inside = (x >= w) & (x <= e) & (y >= s) & (y <= n)
    return bool(inside) if scalar else inside


def _gcj_delta(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS84 point (x, y)."""
    lng = x - 105.0
    lat = y - 35.0
    sqrt_abs = np.sqrt(np.abs(lng))
    common = (20.0 * np.sin(6.0 * lng * _PI) + 20.0 * np.sin(2.0 * lng * _PI)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * lng + 3.0 * lat + 0.2 * lat * lat + 0.1 * lng * lat + 0.2 * sqrt_abs
    dlat = dlat + common
    dlat = dlat + (20.0 * np.sin(lat * _PI) + 40.0 * np.sin(lat / 3.0 * _PI)) * 2.0 / 3.0
    dlat = dlat + (160.0 * np.sin(lat / 12.0 * _PI) + 320 * np.sin(lat * _PI / 30.0)) * 2.0 / 3.0
    dlng = 300.0 + lng + 2.0 * lat + 0.1 * lng * lng + 0.1 * lng * lat + 0.1 * sqrt_abs
    dlng = dlng + common
    dlng = dlng + (20.0 * np.sin(lng * _PI) + 40.0 * np.sin(lng / 3.0 * _PI)) * 2.0 / 3.0
    dlng = dlng + (150.0 * np.sin(lng / 12.0 * _PI) + 300.0 * np.sin(lng / 30.0 * _PI)) * 2.0 / 3.0
    radlat = y / 180.0 * _PI
    magic = np.sin(radlat)
    magic = 1 - _EE * magic * magic
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * _PI)
    dlng = (dlng * 180.0) / (_A / sqrtmagic * np.cos(radlat) * _PI)
    return dlng, dlat


def _wgs_to_gcj(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dx, dy = _gcj_delta(x, y)
    return x + dx, y + dy


def _gcj_to_bd(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_onestep(bx: np.ndarray, by: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = bx - 0.0065
    y = by - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _gcj_to_wgs_onestep(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mx, my = _wgs_to_gcj(x, y)
    return x * 2 - mx, y * 2 - my


# ---------------------------------------------------------------------------
# exact inverses
#
# Both inverses solve ``forward(x, y) == (tx, ty)`` point by point with Newton's method and the
# analytic Jacobian, starting at the target. After a Newton step ``s`` the error left is at most
# ``M / 2 * |s|**2`` (``M`` bounds the second derivatives of the offset), so a point stops as
# soon as that bound, or the step itself, is below ``_ITER_TOL_DEG``: two steps for GCJ-02 and
# BD-09 alike. Sines and cosines dominate the cost (20-30 times a multiplication on the large
# arguments of the formulas), so the GCJ-02 inverse takes every sine of the offset from three
# small angles by multiple-angle formulas (6 calls, where the forward formula makes 12), and the
# BD-09 inverse evaluates its two sines and cosines once, at the target, and rotates them by the
# small angle each iterate has moved (:func:`_rotate`), which costs only arithmetic.

_RAD = _PI / 180.0
_GCJ_LNG_SCALE = 180.0 / (_A * _PI)  # dlng = tlng * scale * sqrt(magic) / cos(lat)
_GCJ_LAT_SCALE = 180.0 / (_A * (1.0 - _EE) * _PI)  # dlat = tlat * scale * magic**1.5
# Second derivatives of the GCJ-02 offset, deg/deg**2: at most 0.09 from the sines (the
# 6*pi*lon term: 40/3 * 40 pi**2 * 1.6e-5 at lat 55.8), plus 5e-7 * |lon - 105|**-1.5 from the
# sqrt(|lon - 105|) terms, whose slope is capped at its value 1e-9 deg away from 105 deg E.
_GCJ_CURVATURE = 0.1
_GCJ_CUSP_CURVATURE = 5e-7
_GCJ_CUSP_FLOOR_DEG = 1e-9
# Second derivatives of the BD-09 fixed-point map: 3e-6 * x_pi**2 * 149 (the angle term at the
# largest radius in China) + 2e-5 * x_pi**2, with a margin.
_BD_CURVATURE = 1.4
_BLOCK = 16_384  # points per block of the Newton iteration (see _solve)


def _double(s: Any, c: Any) -> tuple[Any, Any]:
    return 2.0 * s * c, 1.0 - 2.0 * s * s


def _triple(s: Any, c: Any) -> tuple[Any, Any]:
    return s * (3.0 - 4.0 * s * s), c * (4.0 * c * c - 3.0)


def _quintuple(s: Any, c: Any) -> tuple[Any, Any]:
    s2 = s * s
    c2 = c * c
    return s * ((16.0 * s2 - 20.0) * s2 + 5.0), c * ((16.0 * c2 - 20.0) * c2 + 5.0)


def _rotate(s: Any, c: Any, d: Any) -> tuple[Any, Any]:
    """``(sin, cos)`` of ``a + d`` from ``(sin, cos)`` of ``a``, for a small ``d`` (radians).

    Taylor series for the small angle; the error is below ``|d|**6 / 720``, 3e-13 at the
    0.024 rad the BD-09 inverse needs (times its 2e-5 deg coefficient).
    """
    d2 = d * d
    sd = d * (1.0 - d2 / 6.0 * (1.0 - d2 / 20.0))
    cd = 1.0 - d2 / 2.0 * (1.0 - d2 / 12.0)
    return s * cd + c * sd, c * cd - s * sd


def _newton_step(rx: Any, ry: Any, jxx: Any, jxy: Any, jyx: Any, jyy: Any) -> tuple[Any, Any]:
    """Solve ``J @ (sx, sy) = (rx, ry)`` for a 2x2 Jacobian per point."""
    inv = 1.0 / (jxx * jyy - jxy * jyx)
    return (jyy * rx - jxy * ry) * inv, (jxx * ry - jyx * rx) * inv


def _gcj_newton(tx: Any, ty: Any, x: Any, y: Any) -> tuple[Any, Any, Any]:
    """Newton step of ``wgs84_to_gcj02(x, y) == (tx, ty)`` and a bound on the error it leaves.

    The offset is :func:`_gcj_delta`'s formula, with every sine taken from ``pi*u/60``,
    ``pi*v/60`` (``u = x - 105``, ``v = y - 35``; at most 1.8 rad) by multiple-angle formulas,
    which lose at most ~400 ulp, far below 1e-12 deg.
    """
    u = x - 105.0
    v = y - 35.0
    a = u * (_PI / 60.0)
    b = v * (_PI / 60.0)
    sa, ca = np.sin(a), np.cos(a)
    sb, cb = np.sin(b), np.cos(b)
    su30, cu30 = _double(sa, ca)  # pi*u/30
    su12, cu12 = _quintuple(sa, ca)  # pi*u/12
    su3, cu3 = _double(*_double(su12, cu12))  # pi*u/3
    su1, cu1 = _triple(su3, cu3)  # pi*u
    su2, cu2 = _double(su1, cu1)  # 2*pi*u
    su6, cu6 = _triple(su2, cu2)  # 6*pi*u
    sv30, cv30 = _double(sb, cb)
    sv12, cv12 = _quintuple(sb, cb)
    sv3, cv3 = _double(*_double(sv12, cv12))
    sv1, cv1 = _triple(sv3, cv3)
    absu = np.abs(u)
    root = np.sqrt(absu)
    droot = np.sign(u) / np.sqrt(np.maximum(absu, _GCJ_CUSP_FLOOR_DEG))  # 2 * d(root)/du
    common = (20.0 * su6 + 20.0 * su2) * (2.0 / 3.0)
    dcommon = (120.0 * cu6 + 40.0 * cu2) * (2.0 / 3.0 * _PI)
    uv = 0.1 * u * v
    tlat = -100.0 + 2.0 * u + 3.0 * v + 0.2 * v * v + uv + 0.2 * root + common
    tlat += (20.0 * sv1 + 40.0 * sv3 + 160.0 * sv12 + 320.0 * sv30) * (2.0 / 3.0)
    tlng = 300.0 + u + 2.0 * v + 0.1 * u * u + uv + 0.1 * root + common
    tlng += (20.0 * su1 + 40.0 * su3 + 150.0 * su12 + 300.0 * su30) * (2.0 / 3.0)
    # partial derivatives of tlat, tlng in u and v
    tlat_u = 2.0 + 0.1 * v + 0.1 * droot + dcommon
    tlat_v = 3.0 + 0.4 * v + 0.1 * u
    tlat_v += (20.0 * cv1 + 40.0 / 3.0 * cv3 + 160.0 / 12.0 * cv12 + 32.0 / 3.0 * cv30) * (
        2.0 / 3.0 * _PI
    )
    tlng_u = 1.0 + 0.2 * u + 0.1 * v + 0.05 * droot + dcommon
    tlng_u += (20.0 * cu1 + 40.0 / 3.0 * cu3 + 12.5 * cu12 + 10.0 * cu30) * (2.0 / 3.0 * _PI)
    tlng_v = 2.0 + 0.1 * u
    sy = np.sin(y * _RAD)
    cy = np.cos(y * _RAD)
    magic = 1.0 - _EE * sy * sy
    sqrtmagic = np.sqrt(magic)
    glng = _GCJ_LNG_SCALE * sqrtmagic / cy
    glat = _GCJ_LAT_SCALE * magic * sqrtmagic
    dlng = tlng * glng
    dlat = tlat * glat
    # d log(glng) / dy = (tan(lat) - ee_sc) * _RAD, d log(glat) / dy = -3 * ee_sc * _RAD
    ee_sc = _EE * sy * cy / magic
    sx, sy_ = _newton_step(
        x + dlng - tx,
        y + dlat - ty,
        1.0 + glng * tlng_u,
        glng * tlng_v + dlng * (sy / cy - ee_sc) * _RAD,
        glat * tlat_u,
        1.0 + glat * tlat_v - dlat * (3.0 * ee_sc * _RAD),
    )
    step = np.abs(sx) + np.abs(sy_)
    # closest approach to 105 deg E; within the slope's floor the curvature is unbounded, so
    # the bound fails there and the point goes on until its step is below the tolerance
    near = absu - step
    near = np.where(near > _GCJ_CUSP_FLOOR_DEG, near, 1e-30)
    curvature = _GCJ_CURVATURE + _GCJ_CUSP_CURVATURE / (near * np.sqrt(near))
    return sx, sy_, 0.5 * curvature * step * step


def _bd_start(tx: Any, ty: Any) -> tuple[Any, ...]:
    """Polar form of the BD-09 target less its shift, and the sines and cosines there."""
    x = tx - 0.0065
    y = ty - 0.006
    z = np.sqrt(x * x + y * y)
    ky = y * _X_PI
    kx = x * _X_PI
    return z, x / z, y / z, np.sin(ky), np.cos(ky), np.sin(kx), np.cos(kx)


def _bd_newton(tx: Any, ty: Any, x: Any, y: Any, base: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    """Newton step of ``gcj02_to_bd09(x, y) == (tx, ty)`` and a bound on the error it leaves.

    BD-09 is GCJ-02 in polar form with the radius moved by ``p = 2e-5 sin(y k)`` and the angle
    by ``q = 3e-6 cos(x k)``, so the solution is the fixed point of ``Phi``: the target's radius
    less ``p`` at the target's angle less ``q``. Newton solves ``(x, y) - Phi(x, y) = 0``; the
    sines and cosines of ``y k`` and ``x k`` are those at the target (``base``) rotated.
    """
    z, ct, st, sky0, cky0, skx0, ckx0 = base
    sky, cky = _rotate(sky0, cky0, (y - (ty - 0.006)) * _X_PI)
    skx, ckx = _rotate(skx0, ckx0, (x - (tx - 0.0065)) * _X_PI)
    p = 0.00002 * sky
    dp = 0.00002 * _X_PI * cky  # dp/dy
    q = 0.000003 * ckx
    dq = -0.000003 * _X_PI * skx  # dq/dx
    sq = q * (1.0 - q * q / 6.0)  # |q| <= 3e-6: exact
    cq = 1.0 - q * q / 2.0
    ca = ct * cq + st * sq  # cos and sin of (target angle - q)
    sa = st * cq - ct * sq
    r = z - p
    px = r * ca
    py = r * sa
    sx, sy = _newton_step(x - px, y - py, 1.0 - py * dq, dp * ca, px * dq, 1.0 + dp * sa)
    step = np.abs(sx) + np.abs(sy)
    return sx, sy, (0.5 * _BD_CURVATURE) * step * step


_Start = Callable[[Any, Any], tuple[Any, ...]]
_Newton = Callable[[Any, Any, Any, Any, tuple[Any, ...]], tuple[Any, Any, Any]]


def _solve(
    newton: _Newton, start: _Start, tx: np.ndarray, ty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(x, y) == (tx, ty)`` by Newton steps from ``(tx, ty)``.

    ``newton(tx, ty, x, y, start(tx, ty))`` gives the step and a bound on the error left after
    it. A point stops once the bound or the step is below ``_ITER_TOL_DEG``, so its result does
    not depend on the other points of the batch (scalar == array form); only the points still
    moving are carried to the next step. NaN gives a NaN step, which stops at once. Points go
    through in blocks of ``_BLOCK``, so that the temporaries of a step stay in the CPU cache
    (2-3 times faster than whole arrays of a million points).
    """
    shape = tx.shape
    if tx.size == 1:  # one point (a dispatcher's query): numpy scalars, no masking
        x1, y1 = _solve_one(newton, start, tx.reshape(())[()], ty.reshape(())[()])
        return np.full(shape, x1, dtype=np.float64), np.full(shape, y1, dtype=np.float64)
    tx = tx.ravel()
    ty = ty.ravel()
    out_x = np.empty_like(tx)
    out_y = np.empty_like(ty)
    for i in range(0, tx.size, _BLOCK):
        block = slice(i, i + _BLOCK)
        _solve_block(newton, start, tx[block], ty[block], out_x[block], out_y[block])
    return out_x.reshape(shape), out_y.reshape(shape)


def _solve_block(
    newton: _Newton,
    start: _Start,
    tx: np.ndarray,
    ty: np.ndarray,
    out_x: np.ndarray,
    out_y: np.ndarray,
) -> None:
    """:func:`_solve` for one block of points, written into ``out_x``, ``out_y``."""
    base = start(tx, ty)
    x, y = tx, ty
    todo = np.arange(tx.size)
    for _ in range(_ITER_MAX):
        sx, sy, err = newton(tx, ty, x, y, base)
        x = x - sx
        y = y - sy
        big = (np.abs(sx) > _ITER_TOL_DEG) | (np.abs(sy) > _ITER_TOL_DEG)
        moving = (err > _ITER_TOL_DEG) & big
        if moving.all():
            continue
        done = ~moving
        out_x[todo[done]] = x[done]
        out_y[todo[done]] = y[done]
        if not moving.any():
            return
        todo, tx, ty, x, y = todo[moving], tx[moving], ty[moving], x[moving], y[moving]
        base = tuple(b[moving] for b in base)
    out_x[todo] = x  # not converged in _ITER_MAX steps (none known): the last iterate
    out_y[todo] = y


def _solve_one(newton: _Newton, start: _Start, tx: Any, ty: Any) -> tuple[Any, Any]:
    """:func:`_solve` for one point: the same operations on numpy scalars."""
    base = start(tx, ty)
    x, y = tx, ty
    for _ in range(_ITER_MAX):
        sx, sy, err = newton(tx, ty, x, y, base)
        x = x - sx
        y = y - sy
        if not (err > _ITER_TOL_DEG and (abs(sx) > _ITER_TOL_DEG or abs(sy) > _ITER_TOL_DEG)):
            break
    return x, y


def _no_start(tx: Any, ty: Any) -> tuple[Any, ...]:
    return ()


def _gcj_step(tx: Any, ty: Any, x: Any, y: Any, base: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    return _gcj_newton(tx, ty, x, y)


def _masked(fn: Any, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``fn`` to points inside China; leave the others unchanged."""
    mask = in_china(x, y)
    if np.all(mask):
        return fn(x, y)
    ox = x.copy()
    oy = y.copy()
    if np.any(mask):
        rx, ry = fn(x[mask], y[mask])
        ox[mask] = rx
        oy[mask] = ry
    return ox, oy


def _check_method(method: str) -> None:
    if method not in ("iter", "onestep"):
        raise ValueError(f"method must be 'iter' or 'onestep', not {method!r}")


def _gcj_to_wgs(x: np.ndarray, y: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    if method == "onestep":
        return _gcj_to_wgs_onestep(x, y)
    return _solve(_gcj_step, _no_start, x, y)


def _bd_to_gcj(x: np.ndarray, y: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    if method == "onestep":
        return _bd_to_gcj_onestep(x, y)
    return _solve(_bd_newton, _bd_start, x, y)


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Convert WGS84 to GCJ-02 (public formula; no offset outside China).

    Parameters
    ----------
    lon, lat : float or array-like
        WGS84 degrees.

    Returns
    -------
    tuple
        ``(lon, lat)`` in GCJ-02, floats or arrays like the input.

    Examples
    --------
    >>> wgs84_to_gcj02(116.404, 39.915)
    (116.41024449916938, 39.91640428150164)
    """
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_masked(_wgs_to_gcj, x, y), scalar)


def gcj02_to_wgs84(lon: Any, lat: Any, *, method: Method = "iter") -> tuple[Any, Any]:
    """Convert GCJ-02 to WGS84.

    Parameters
    ----------
    lon, lat : float or array-like
        GCJ-02 degrees.
    method : {"iter", "onestep"}
        ``"iter"`` (default) inverts the forward formula to below 1e-12°;
        ``"onestep"`` is the common approximation (error up to a few metres).

    Returns
    -------
    tuple
        ``(lon, lat)`` in WGS84.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(116.41024449916938, 39.91640428150164)
    >>> round(lon, 9), round(lat, 9)
    (116.404, 39.915)
    >>> gcj02_to_wgs84(116.404, 39.915, method="onestep")
    (116.39775550083061, 39.91359571849836)
    """
    _check_method(method)
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_masked(lambda a, b: _gcj_to_wgs(a, b, method), x, y), scalar)


def gcj02_to_bd09(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Convert GCJ-02 to BD-09 (Baidu's public formula; no offset outside China).

    Parameters
    ----------
    lon, lat : float or array-like
        GCJ-02 degrees.

    Returns
    -------
    tuple
        ``(lon, lat)`` in BD-09.

    Examples
    --------
    >>> gcj02_to_bd09(116.404, 39.915)
    (116.41036949371029, 39.92133699351021)
    """
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_masked(_gcj_to_bd, x, y), scalar)


def bd09_to_gcj02(lon: Any, lat: Any, *, method: Method = "iter") -> tuple[Any, Any]:
    """Convert BD-09 to GCJ-02.

    Parameters
    ----------
    lon, lat : float or array-like
        BD-09 degrees.
    method : {"iter", "onestep"}
        Exact iterative inverse (default) or the common one-step formula.

    Returns
    -------
    tuple
        ``(lon, lat)`` in GCJ-02.

    Examples
    --------
    >>> bd09_to_gcj02(116.404, 39.915, method="onestep")
    (116.39762729119315, 39.90865673957631)
    """
    _check_method(method)
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_masked(lambda a, b: _bd_to_gcj(a, b, method), x, y), scalar)


def wgs84_to_bd09(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Convert WGS84 to BD-09 (through GCJ-02).

    Parameters
    ----------
    lon, lat : float or array-like
        WGS84 degrees.

    Returns
    -------
    tuple
        ``(lon, lat)`` in BD-09.

    Examples
    --------
    >>> wgs84_to_bd09(116.404, 39.915)
    (116.41662724378733, 39.922699552216216)
    """
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_masked(lambda a, b: _gcj_to_bd(*_wgs_to_gcj(a, b)), x, y), scalar)


def bd09_to_wgs84(lon: Any, lat: Any, *, method: Method = "iter") -> tuple[Any, Any]:
    """Convert BD-09 to WGS84 (through GCJ-02).

    Parameters
    ----------
    lon, lat : float or array-like
        BD-09 degrees.
    method : {"iter", "onestep"}
        Exact iterative inverses (default) or the two chained one-step formulas.

    Returns
    -------
    tuple
        ``(lon, lat)`` in WGS84.

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(116.41662724378733, 39.922699552216216)
    >>> round(lon, 9), round(lat, 9)
    (116.404, 39.915)
    """
    _check_method(method)
    x, y, scalar = _as_arrays(lon, lat)

    def fn(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _gcj_to_wgs(*_bd_to_gcj(a, b, method), method)

    return _out(*_masked(fn, x, y), scalar)


# ---------------------------------------------------------------------------
# generic transform


_CGCS2000_DATUM = 1043  # EPSG code of the China Geodetic Coordinate System 2000 datum
_WGS84_CRS = pyproj.CRS.from_epsg(4326)

#: (source, target) → transformer, made once per process.
_TRANSFORMERS: dict[tuple[pyproj.CRS, pyproj.CRS], pyproj.Transformer] = {}
os.register_at_fork(after_in_child=_TRANSFORMERS.clear)  # PROJ state is not shared by forks


def _as_pyproj(crs: Any) -> pyproj.CRS:
    if isinstance(crs, pyproj.CRS):
        return crs
    if isinstance(crs, int):
        return _epsg_crs(crs)
    return pyproj.CRS.from_user_input(crs)


def transformer(src: Any, dst: Any) -> pyproj.Transformer:
    """Return the transformer from ``src`` to ``dst`` (``always_xy``), made once per process.

    Making one is what costs: between WGS84 and a CGCS2000 CRS (the Gauss–Krüger
    zones of Chinese plans) PROJ searches its database for a datum shift, finds
    none and applies none, in about 50 ms; gridmap goes from the CGCS2000 CRS's
    own geographic CRS instead (the same coordinates to the bit, in under 1 ms).
    Transformers are thread-safe (pyproj ≥ 3.1); a forked process makes its own.

    Parameters
    ----------
    src, dst : pyproj.CRS, int or str
        The CRSs (an int is an EPSG code; a str anything pyproj reads).

    Returns
    -------
    pyproj.Transformer

    Examples
    --------
    >>> x, y = transformer(4326, 4549).transform(118.78, 32.05)
    >>> round(x), round(y)
    (384777, 3548048)
    >>> [round(v, 9) for v in transformer(4549, 4326).transform(x, y)]
    [118.78, 32.05]
    """
    s, d = _as_pyproj(src), _as_pyproj(dst)
    found = _TRANSFORMERS.get((s, d))
    if found is None:
        found = pyproj.Transformer.from_crs(
            _cgcs_for_wgs(s, d), _cgcs_for_wgs(d, s), always_xy=True
        )
        _TRANSFORMERS[(s, d)] = found
    return found


def _is_cgcs2000(crs: pyproj.CRS) -> bool:
    datum = crs.datum
    if datum is None:
        return False
    ident = (datum.to_json_dict().get("id") or {}).get("code")
    return ident == _CGCS2000_DATUM or datum.name == "China 2000"


def _cgcs_for_wgs(crs: pyproj.CRS, other: pyproj.CRS) -> pyproj.CRS:
    """WGS84 → CGCS2000 where ``other`` is on CGCS2000: gridmap treats them as one.

    PROJ has no shift between the two and, after searching its database for one
    (~50 ms), applies none ("ballpark geographic offset"); going from ``other``'s own
    geographic CRS instead gives the same coordinates to the bit, without the search.
    """
    if crs == _WGS84_CRS and _is_cgcs2000(other):
        geodetic = other.geodetic_crs
        if geodetic is not None:
            return geodetic
    return crs


def transform_geometries(geoms: Any, src: Any, dst: Any) -> np.ndarray:
    """Return the geometries transformed from ``src`` to ``dst`` with :func:`transformer`.

    What ``GeoSeries.to_crs`` does, without making a new PROJ operation on each call.

    Examples
    --------
    >>> [g] = transform_geometries([shapely.Point(118.78, 32.05)], 4326, 4549)
    >>> round(g.x), round(g.y)
    (384777, 3548048)
    """
    tr = transformer(src, dst)

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), fn)


def _geo_to_wgs(kind: str, x: np.ndarray, y: np.ndarray, method: str) -> tuple[Any, Any]:
    if kind == "gcj02":
        return _masked(lambda a, b: _gcj_to_wgs(a, b, method), x, y)
    if kind == "bd09":
        return _masked(lambda a, b: _gcj_to_wgs(*_bd_to_gcj(a, b, method), method), x, y)
    return x, y


def _wgs_to_geo(kind: str, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    if kind == "gcj02":
        return _masked(_wgs_to_gcj, x, y)
    if kind == "bd09":
        return _masked(lambda a, b: _gcj_to_bd(*_wgs_to_gcj(a, b)), x, y)
    return x, y


def transform(
    lon: Any,
    lat: Any,
    src: Any,
    dst: Any,
    *,
    method: Method = "iter",
    validate: bool = True,
) -> tuple[Any, Any]:
    """Transform coordinates between any two CRSs :func:`parse_crs` accepts.

    GCJ-02 ↔ BD-09 is converted directly; every other pair goes through WGS84
    (CGCS2000 is treated as WGS84). EPSG codes go through pyproj with
    ``always_xy=True``, so for projected CRSs ``lon``/``lat`` are ``x``/``y``.

    Parameters
    ----------
    lon, lat : float or array-like
        Coordinates in ``src`` (longitude/``x`` first).
    src, dst : str, int, pyproj.CRS or CRSSpec
        Source and target CRS.
    method : {"iter", "onestep"}
        Inverse used for GCJ-02/BD-09 → WGS84 and BD-09 → GCJ-02.
    validate : bool, default True
        Check geographic input with :func:`check_lonlat` (NaN, range, swapped).

    Returns
    -------
    tuple
        ``(lon, lat)`` (or ``(x, y)``) in ``dst``; floats for scalar input.

    Raises
    ------
    CRSError
        For an unknown CRS.
    CoordinateError
        For invalid geographic coordinates when ``validate`` is true.

    Examples
    --------
    >>> transform(116.404, 39.915, "wgs84", "bd-09")
    (116.41662724378733, 39.922699552216216)
    >>> x, y = transform(118.78, 32.05, "gcj02", "EPSG:4549")
    >>> round(x), round(y)
    (384287, 3548280)
    """
    _check_method(method)
    s = parse_crs(src)
    d = parse_crs(dst)
    x, y, scalar = _as_arrays(lon, lat)
    if validate and s.is_geographic:
        check_lonlat(x, y)
    if s.kind == "pyproj" and d.kind == "pyproj":
        assert s.pyproj_crs is not None and d.pyproj_crs is not None
        rx, ry = transformer(s.pyproj_crs, d.pyproj_crs).transform(x, y)
        return _out(np.asarray(rx, np.float64), np.asarray(ry, np.float64), scalar)
    if {s.kind, d.kind} == {"gcj02", "bd09"}:
        if s.kind == "gcj02":
            return _out(*_masked(_gcj_to_bd, x, y), scalar)
        return _out(*_masked(lambda a, b: _bd_to_gcj(a, b, method), x, y), scalar)
    if s.kind == d.kind and s.kind != "pyproj":
        return _out(x.copy(), y.copy(), scalar)
    # to WGS84
    if s.kind == "pyproj":
        assert s.pyproj_crs is not None
        wx, wy = transformer(s.pyproj_crs, 4326).transform(x, y)
        wx, wy = np.asarray(wx, np.float64), np.asarray(wy, np.float64)
    else:
        wx, wy = _geo_to_wgs(s.kind, x, y, method)
    # from WGS84
    if d.kind == "pyproj":
        assert d.pyproj_crs is not None
        rx, ry = transformer(4326, d.pyproj_crs).transform(wx, wy)
        return _out(np.asarray(rx, np.float64), np.asarray(ry, np.float64), scalar)
    return _out(*_wgs_to_geo(d.kind, wx, wy), scalar)


def to_wgs84(lon: Any, lat: Any, crs: Any, *, method: Method = "iter") -> tuple[Any, Any]:
    """Transform coordinates in ``crs`` to WGS84 lon/lat.

    Parameters
    ----------
    lon, lat : float or array-like
        Coordinates in ``crs``.
    crs : str, int, pyproj.CRS or CRSSpec
        Their CRS.
    method : {"iter", "onestep"}
        Inverse for GCJ-02 and BD-09.

    Returns
    -------
    tuple
        WGS84 ``(lon, lat)``.

    Examples
    --------
    >>> lon, lat = to_wgs84(116.41662724378733, 39.922699552216216, "baidu")
    >>> round(lon, 6), round(lat, 6)
    (116.404, 39.915)
    """
    return transform(lon, lat, crs, "wgs84", method=method)


def from_wgs84(lon: Any, lat: Any, crs: Any) -> tuple[Any, Any]:
    """Transform WGS84 lon/lat to ``crs``.

    Parameters
    ----------
    lon, lat : float or array-like
        WGS84 degrees.
    crs : str, int, pyproj.CRS or CRSSpec
        Target CRS.

    Returns
    -------
    tuple
        ``(lon, lat)`` or ``(x, y)`` in ``crs``.

    Examples
    --------
    >>> from_wgs84(116.404, 39.915, "gcj02")
    (116.41024449916938, 39.91640428150164)
    """
    return transform(lon, lat, "wgs84", crs)


# ---------------------------------------------------------------------------
# validation


def _listing(idx: np.ndarray, x: np.ndarray, y: np.ndarray, limit: int = 3) -> str:
    parts = [f"[{i}] (lon={float(x[i])!r}, lat={float(y[i])!r})" for i in idx[:limit]]
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return ", ".join(parts) + more


def check_lonlat(lon: Any, lat: Any, *, expect_china: bool = False) -> None:
    """Validate longitude/latitude values, raising a helpful error.

    Parameters
    ----------
    lon, lat : float or array-like
        Degrees, longitude first.
    expect_china : bool, default False
        Also flag pairs that lie outside China but inside it once swapped
        (e.g. ``lon=31.2, lat=80.0``). Off by default because such pairs are
        valid elsewhere (Svalbard is at lon 15, lat 78).

    Raises
    ------
    CoordinateError
        For NaN/infinite values, a longitude outside [-180, 180] or a latitude
        outside [-90, 90]; the message gives the index and values of the first
        offenders and says "looks like lat/lon are swapped; pass lon first" when
        swapping would give valid coordinates.

    Examples
    --------
    >>> check_lonlat([121.47, 118.78], [31.23, 32.05])
    >>> check_lonlat(31.2, 121.5)
    Traceback (most recent call last):
    ...
    gridmap.errors.CoordinateError: latitude ...; looks like lat/lon are swapped; pass lon first
    """
    x, y, _ = _as_arrays(lon, lat)
    x = x.ravel()
    y = y.ravel()
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        idx = np.flatnonzero(bad)
        raise CoordinateError(
            f"{len(idx)} coordinate(s) are NaN or infinite: {_listing(idx, x, y)}; "
            "drop or fix those rows before locating"
        )
    lon_bad = np.abs(x) > 180
    lat_bad = np.abs(y) > 90
    if lon_bad.any() or lat_bad.any():
        idx = np.flatnonzero(lon_bad | lat_bad)
        swappable = (np.abs(x[idx]) <= 90) & (np.abs(y[idx]) <= 180)
        what = "latitude out of [-90, 90]" if lat_bad.any() else "longitude out of [-180, 180]"
        if lat_bad.any() and lon_bad.any():
            what = "longitude/latitude out of range"
        msg = f"{what} at index {_listing(idx, x, y)}"
        if swappable.all():
            msg += "; looks like lat/lon are swapped; pass lon first"
        else:
            msg += "; longitude must be in [-180, 180] and latitude in [-90, 90] degrees"
            msg += " (are these projected metres? then pass the projected CRS, not lon/lat)"
        raise CoordinateError(msg)
    if expect_china:
        swapped = ~in_china(x, y) & in_china(y, x)
        if swapped.any():
            idx = np.flatnonzero(swapped)
            raise CoordinateError(
                f"coordinates outside China at index {_listing(idx, x, y)} would be in China "
                "with lon and lat exchanged; looks like lat/lon are swapped; pass lon first"
            )


# ---------------------------------------------------------------------------
# local metric CRS


def gk_zone_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss–Krüger CM zone for a longitude.

    Zones are half-open, ``[CM - 1.5°, CM + 1.5°)``: a longitude exactly half-way
    between two central meridians (e.g. 121.5°E) belongs to the eastern zone,
    as in the 3° zone numbering ``n = floor((lon + 1.5) / 3)``. Central meridians
    are clamped to the EPSG range 75°E (EPSG:4534) … 135°E (EPSG:4554).

    Parameters
    ----------
    lon : float
        Longitude in degrees.

    Returns
    -------
    int

    Examples
    --------
    >>> gk_zone_epsg(118.78), gk_zone_epsg(121.47), gk_zone_epsg(121.5)
    (4549, 4549, 4550)
    """
    cm = math.floor((lon + 1.5) / 3.0) * 3
    cm = min(max(cm, 75), 135)
    return 4534 + (cm - 75) // 3


def utm_zone_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone (326xx north, 327xx south) for a point.

    Zones are ``floor((lon + 180) / 6) + 1`` (a zone edge belongs to the
    eastern zone); the Norway/Svalbard exceptions are not applied.

    Parameters
    ----------
    lon, lat : float
        Degrees.

    Returns
    -------
    int

    Examples
    --------
    >>> utm_zone_epsg(2.35, 48.86), utm_zone_epsg(151.2, -33.9)
    (32631, 32756)
    """
    zone = int(math.floor((lon + 180.0) / 6.0)) + 1
    zone = min(max(zone, 1), 60)
    return (32600 if lat >= 0 else 32700) + zone


def _centroid_of(geoms: np.ndarray) -> tuple[float, float]:
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if len(geoms) == 0:
        raise CRSError("cannot choose a local CRS for an empty area; pass some geometries")
    cents = shapely.centroid(geoms)
    cx = shapely.get_x(cents)
    cy = shapely.get_y(cents)
    w = shapely.area(geoms)
    if not w.sum() > 0:
        w = shapely.length(geoms)
    if not w.sum() > 0:
        w = np.ones(len(geoms))
    return float(np.average(cx, weights=w)), float(np.average(cy, weights=w))


def local_crs(area: Any, *, crs: Any = None) -> pyproj.CRS:
    """Choose a projected metric CRS for an area.

    Inside China (:data:`CHINA_BOUNDS`) this is the CGCS2000 3-degree
    Gauss–Krüger CM zone whose central meridian is nearest the area's centroid
    longitude (EPSG:4534 = CM 75°E … EPSG:4554 = CM 135°E; ties go east, see
    :func:`gk_zone_epsg`); elsewhere the WGS84 UTM zone (:func:`utm_zone_epsg`).

    The centroid is the area-weighted mean of the geometries' centroids (length-
    weighted for lines, plain mean for points), computed in the input CRS and
    transformed to WGS84.

    Parameters
    ----------
    area : GeoDataFrame, GeoSeries, shapely geometry, (lon, lat) or bounds
        A GeoDataFrame/GeoSeries (with a CRS), a shapely geometry, a
        ``(lon, lat)`` pair or ``(minx, miny, maxx, maxy)`` bounds.
    crs : optional
        CRS of ``area`` when it is not a GeoDataFrame/GeoSeries (default WGS84;
        GCJ-02 and BD-09 are accepted). Ignored for frames that carry a CRS.

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    CRSError
        If a GeoDataFrame/GeoSeries has no CRS or the area is empty.

    Examples
    --------
    >>> local_crs((118.78, 32.05)).to_epsg()
    4549
    >>> local_crs((2.29, 48.81, 2.42, 48.90)).to_epsg()
    32631
    """
    src = crs
    if hasattr(area, "geometry") and hasattr(area, "crs"):
        geo = area.geometry
        if geo.crs is None and crs is None:
            raise CRSError("the area has no CRS; set one with gdf.set_crs(4326) or pass crs=...")
        src = geo.crs if geo.crs is not None else crs
        cx, cy = _centroid_of(np.asarray(geo.values, dtype=object))
    elif isinstance(area, shapely.Geometry):
        cx, cy = _centroid_of(np.array([area], dtype=object))
    elif isinstance(area, Sequence | np.ndarray) and len(area) in (2, 4):
        vals = [float(v) for v in area]
        if len(vals) == 2:
            cx, cy = vals
        else:
            cx, cy = (vals[0] + vals[2]) / 2.0, (vals[1] + vals[3]) / 2.0
    else:
        raise CRSError(
            f"cannot read an area from {type(area).__name__}; pass a GeoDataFrame, a GeoSeries, "
            "a shapely geometry, (lon, lat) or (minx, miny, maxx, maxy)"
        )
    lon, lat = transform(cx, cy, src if src is not None else "wgs84", "wgs84")
    if in_china(lon, lat):
        return _epsg_crs(gk_zone_epsg(lon))
    return _epsg_crs(utm_zone_epsg(lon, lat))
