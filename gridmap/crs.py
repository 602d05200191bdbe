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
* Inverses are exact by default (``method="iter"``: fixed-point iteration until
  the step is below 1e-12°, about 0.1 µm); ``method="onestep"`` gives the
  classic one-step approximation (metre-level error) that many libraries use.
* Points outside China get no offset. "China" is the usual rectangle
  lon 72.004–137.8347, lat 0.8293–55.8271 (:data:`CHINA_BOUNDS`), tested on the
  point given to the function (a GCJ-02 point for GCJ-02 → WGS84).
* Every function takes scalars or array-likes; scalars give Python floats back,
  arrays give float64 :class:`numpy.ndarray`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
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


def _invert(
    forward: Any, onestep: Any, tx: np.ndarray, ty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(x, y) == (tx, ty)`` by fixed-point iteration.

    A point stops moving once its step is below the tolerance, so its result
    does not depend on the other points of the batch (scalar == array form).
    """
    shape = tx.shape
    if tx.size == 1:  # one point (a dispatcher's query): numpy scalars, no masking
        return _invert_one(forward, onestep, tx.reshape(()), ty.reshape(()), shape)
    tx = tx.ravel()
    ty = ty.ravel()
    x, y = onestep(tx, ty)
    active = np.isfinite(x) & np.isfinite(y)
    for _ in range(_ITER_MAX):
        if not active.any():
            break
        ax, ay = x[active], y[active]
        fx, fy = forward(ax, ay)
        ex = fx - tx[active]
        ey = fy - ty[active]
        x[active] = ax - ex
        y[active] = ay - ey
        moving = (np.abs(ex) > _ITER_TOL_DEG) | (np.abs(ey) > _ITER_TOL_DEG)
        idx = np.flatnonzero(active)
        active[idx[~moving]] = False
    return x.reshape(shape), y.reshape(shape)


def _invert_one(
    forward: Any, onestep: Any, tx: np.ndarray, ty: np.ndarray, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_invert` for one point: the same operations on numpy scalars, 5x faster."""
    x0, y0 = tx[()], ty[()]
    x, y = onestep(x0, y0)
    if np.isfinite(x) and np.isfinite(y):
        for _ in range(_ITER_MAX):
            fx, fy = forward(x, y)
            ex, ey = fx - x0, fy - y0
            x, y = x - ex, y - ey
            if abs(ex) <= _ITER_TOL_DEG and abs(ey) <= _ITER_TOL_DEG:
                break
    return np.full(shape, x, dtype=np.float64), np.full(shape, y, dtype=np.float64)


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
    return _invert(_wgs_to_gcj, _gcj_to_wgs_onestep, x, y)


def _bd_to_gcj(x: np.ndarray, y: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    if method == "onestep":
        return _bd_to_gcj_onestep(x, y)
    return _invert(_gcj_to_bd, _bd_to_gcj_onestep, x, y)


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


@functools.lru_cache(maxsize=64)
def _transformer(src: pyproj.CRS, dst: pyproj.CRS) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


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
        rx, ry = _transformer(s.pyproj_crs, d.pyproj_crs).transform(x, y)
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
        wx, wy = _transformer(s.pyproj_crs, _epsg_crs(4326)).transform(x, y)
        wx, wy = np.asarray(wx, np.float64), np.asarray(wy, np.float64)
    else:
        wx, wy = _geo_to_wgs(s.kind, x, y, method)
    # from WGS84
    if d.kind == "pyproj":
        assert d.pyproj_crs is not None
        rx, ry = _transformer(_epsg_crs(4326), d.pyproj_crs).transform(wx, wy)
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
