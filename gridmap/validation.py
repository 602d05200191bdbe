"""Validation of raw layers: findings, the report, and the checks themselves.

The entry points are :func:`gridmap.validation.validate_layers` and
:func:`gridmap.validation.check_layers`; this module holds the machinery. Every
row is kept (possibly repaired) or listed as rejected — nothing is dropped
silently.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.errors import CRSError, LayerError, ValidationError
from gridmap.layers import (
    BUILDING_USES,
    CONVERTED_ATTR,
    DERIVED_ATTR,
    GEOMETRY_TYPES,
    ID_COLUMNS,
    LAYER_NAMES,
    LEFT_OUT_ATTR,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    REQUIRED_LAYERS,
    SENSITIVE_FLAGS,
    Layers,
    estimate_households,
)

__all__ = [
    "SEVERITIES",
    "Finding",
    "ValidationReport",
    "Validator",
    "check_layers",
    "validate_layers",
    "validate_staff",
]

logger = logging.getLogger(__name__)

Severity = Literal["error", "rejected", "repaired", "warning", "info"]

#: How serious each finding is. ``error`` stops validation from producing layers;
#: ``rejected`` rows were removed (and are listed); ``repaired`` rows were changed.
SEVERITIES: tuple[str, ...] = ("error", "rejected", "repaired", "warning", "info")

_MAX_LISTED_IDS = 20
_N = _MAX_LISTED_IDS  # (lists of ids for a finding are built this long, no longer)

#: pandas copies a column on write (always from pandas 3): a frame's copy can then share
#: its columns, and setting one in the copy never changes the caller's frame.
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3 or pd.options.mode.copy_on_write is True


def _copy(gdf: Any) -> Any:
    """Copy a frame to set columns in (shallowly where pandas copies on write)."""
    return gdf.copy(deep=not _COPY_ON_WRITE)


# Normalisation of common ``use`` values (OpenStreetMap building tags, Chinese terms).
_USE_ALIASES: dict[str, str] = {
    "residential": "residential",
    "apartments": "residential",
    "house": "residential",
    "detached": "residential",
    "terrace": "residential",
    "dormitory": "residential",
    "住宅": "residential",
    "居住": "residential",
    "commercial": "commercial",
    "retail": "commercial",
    "office": "commercial",
    "hotel": "commercial",
    "商业": "commercial",
    "办公": "commercial",
    "public": "public",
    "school": "public",
    "university": "public",
    "college": "public",
    "kindergarten": "public",
    "hospital": "public",
    "civic": "public",
    "government": "public",
    "公共": "public",
    "industrial": "industrial",
    "warehouse": "industrial",
    "工业": "industrial",
    "mixed": "mixed",
    "other": "other",
}

_TRUE_STRINGS = {"1", "true", "t", "yes", "y", "是", "真"}
_FALSE_STRINGS = {"0", "false", "f", "no", "n", "否", "假", ""}


@dataclass(frozen=True)
class Finding:
    """One thing validation found, repaired or rejected.

    Attributes
    ----------
    layer : str
        The layer it concerns.
    severity : str
        One of :data:`SEVERITIES`.
    code : str
        A stable machine-readable code, e.g. ``"duplicate_id"``.
    message : str
        What was found and what to do about it.
    count : int
        How many rows (or pairs) it concerns.
    ids : tuple of str
        Up to 20 of the ids concerned.
    """

    layer: str
    severity: Severity
    code: str
    message: str
    count: int = 0
    ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the finding as JSON-compatible data."""
        return {
            "layer": self.layer,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "count": int(self.count),
            "ids": list(self.ids),
        }


@dataclass
class ValidationReport:
    """Everything :func:`validate_layers` found, repaired or rejected.

    Attributes
    ----------
    findings : list of Finding
        In the order they were found.
    rows_in, rows_out : dict
        Rows per layer before and after validation.
    crs : str or None
        The projected CRS the layers were brought to.
    """

    findings: list[Finding] = field(default_factory=list)
    rows_in: dict[str, int] = field(default_factory=dict)
    rows_out: dict[str, int] = field(default_factory=dict)
    crs: str | None = None

    def add(
        self,
        layer: str,
        severity: Severity,
        code: str,
        message: str,
        *,
        count: int = 0,
        ids: Any = (),
    ) -> None:
        """Record a finding (ids are stringified and capped at 20)."""
        listed = tuple(str(i) for i in itertools.islice(ids, _MAX_LISTED_IDS))
        self.findings.append(Finding(layer, severity, code, message, int(count), listed))

    @property
    def ok(self) -> bool:
        """True when nothing stops the layers from being used."""
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity ``error``."""
        return [f for f in self.findings if f.severity == "error"]

    def by_severity(self, severity: str) -> list[Finding]:
        """Return the findings of one severity."""
        return [f for f in self.findings if f.severity == severity]

    def to_frame(self) -> pd.DataFrame:
        """Return the findings as a DataFrame (one row each)."""
        columns = ["layer", "severity", "code", "message", "count", "ids"]
        return pd.DataFrame([f.to_dict() for f in self.findings], columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-compatible data."""
        return {
            "ok": self.ok,
            "crs": self.crs,
            "rows_in": dict(self.rows_in),
            "rows_out": dict(self.rows_out),
            "findings": [f.to_dict() for f in self.findings],
        }

    def summary(self) -> str:
        """Return a one-paragraph plain-text summary."""
        counts = {s: len(self.by_severity(s)) for s in SEVERITIES}
        head = "valid" if self.ok else "NOT valid"
        parts = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        return f"layers are {head}: {parts or 'no findings'}"


# --------------------------------------------------------------------------- guards


def _as_bool(values: pd.Series, *, default: bool = False) -> tuple[pd.Series, int]:
    """Normalise a column to bool; return it and the number of unreadable values.

    Each distinct value is read once (a million rows of ``是``/``否`` read two).

    Examples
    --------
    >>> flags, bad = _as_bool(pd.Series(["是", "否", None, "yes", "maybe", 1, 0.0]))
    >>> flags.tolist(), bad
    ([True, False, False, True, False, True, False], 1)
    """
    if values.dtype == bool:
        return values, 0
    obj = values.to_numpy(dtype=object)
    distinct = _distinct(obj)
    if distinct is None:  # unhashable values: one by one
        read = [_bool_value(v, default) for v in obj.tolist()]
        out = np.array([b for b, _ in read], dtype=bool)
        return pd.Series(out, index=values.index, dtype=bool), sum(bad for _, bad in read)
    key, first = distinct
    read = [_bool_value(v, default) for v in obj[first].tolist()]
    answers = np.array([b for b, _ in read], dtype=bool)
    unreadable = np.array([bad for _, bad in read], dtype=bool)
    bad = int(np.bincount(key, minlength=len(read))[unreadable].sum())
    return pd.Series(answers[key], index=values.index, dtype=bool), bad


def _bool_value(v: Any, default: bool) -> tuple[bool, bool]:
    """One value as bool, and whether it was unreadable (then ``default``)."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return default, False
    if isinstance(v, bool | int | float | np.bool_ | np.integer | np.floating):
        return bool(v), False
    text = str(v).strip().lower()
    if text in _TRUE_STRINGS:
        return True, False
    if text in _FALSE_STRINGS:
        return False, False
    return default, True


def _as_str_or_none(values: pd.Series, *, repeated: bool = False) -> pd.Series:
    """Return a column as object dtype holding ``str`` or ``None``.

    ``repeated``: the column repeats few values (a reference to another layer's ids):
    equal values then share one ``str`` object (less memory for a million rows).
    """
    return pd.Series(_id_strings(values, repeated=repeated), index=values.index, dtype=object)


def _id_strings(values: pd.Series, *, repeated: bool = False) -> np.ndarray:
    """:func:`_id_str` of every value, vectorised; ``None`` where missing.

    Integer and boolean columns are converted in one call, integer-valued floats
    through int64; only text (and odd values) is stripped value by value.

    Examples
    --------
    >>> _id_strings(pd.Series([12.0, 1.5, None])).tolist()
    ['12', '1.5', None]
    >>> _id_strings(pd.Series([" a ", 7, None], dtype=object)).tolist()
    ['a', '7', None]
    >>> _id_strings(pd.Series(["\u3000b ", None, "c"], dtype="string[pyarrow]")).tolist()
    ['b', None, 'c']
    """
    n = len(values)
    out = np.full(n, None, dtype=object)
    missing = values.isna().to_numpy(dtype=bool)
    kind = values.dtype.kind
    if kind in "iub":
        present = np.flatnonzero(~missing)
        texts = values.iloc[present].astype(str).to_numpy(dtype=object)
        out[present] = texts
        return out
    if kind == "f" and getattr(values.dtype, "itemsize", 0) == 8:  # float32 prints otherwise
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = ~missing & np.isfinite(v) & (v == np.floor(v)) & (np.abs(v) < 2.0**63)
        rows = np.flatnonzero(whole)
        out[rows] = v[rows].astype(np.int64).astype(str).astype(object)
        rows = np.flatnonzero(~whole & ~missing)
        out[rows] = [_id_str(x) for x in v[rows].tolist()]
        return out
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return _arrow_id_strings(values, repeated=repeated)
    obj = values.to_numpy(dtype=object)
    rows = np.flatnonzero(~missing)
    sub = obj[rows] if len(rows) < n else obj
    out[rows] = [x.strip() if x.__class__ is str else _id_str(x) for x in sub.tolist()]
    return out


#: Every character ``str.strip()`` removes (``str.isspace``; none lies above U+3000).
_SPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


def _arrow_id_strings(values: pd.Series, *, repeated: bool = False) -> np.ndarray:
    # text held by Arrow: stripped and converted in one call each. Repeated values
    # (references such as a household's building_id) become one str object each, shared by
    # their rows.
    if repeated and len(values):
        codes, texts = _arrow_id_codes(values)
        return _with_none(texts)[codes]
    return np.asarray(_arrow_trimmed(values).to_numpy(zero_copy_only=False), dtype=object)


def _arrow_trimmed(values: pd.Series) -> Any:
    """Return the Arrow text of ``values`` stripped as ``str.strip`` strips (nulls kept)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values)
    if not isinstance(arr, pa.ChunkedArray):
        arr = pa.chunked_array([arr], type=arr.type)
    return pc.utf8_trim(arr, _SPACE)


def _arrow_id_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    # the distinct raw texts (dictionary-encoded by Arrow), stripped; codes -1 where missing
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values)
    if not isinstance(arr, pa.ChunkedArray):
        arr = pa.chunked_array([arr], type=arr.type)
    coded = pc.dictionary_encode(arr).combine_chunks()
    texts = _arrow_id_strings(pd.Series(pd.arrays.ArrowStringArray(coded.dictionary)))
    codes = np.asarray(coded.indices.fill_null(-1), dtype=np.int64)
    return codes, np.asarray(texts, dtype=object)


def _id_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Ids as codes into their texts: ``texts[codes]`` is :func:`_id_strings` of ``values``.

    Codes are -1 where a value is missing. Text held by Arrow is dictionary-encoded (a
    column of references repeats few values: each text is made once); other columns give
    one text per row.

    Examples
    --------
    >>> codes, texts = _id_codes(pd.Series(["b", " a", None, "b"], dtype="string[pyarrow]"))
    >>> codes.tolist(), texts.tolist()
    ([0, 1, -1, 0], ['b', 'a'])
    >>> codes, texts = _id_codes(pd.Series([3.0, None]))
    >>> codes.tolist(), texts[codes[0]]
    ([0, -1], '3')
    """
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return _arrow_id_codes(values)
    texts = _id_strings(values)
    codes = np.arange(len(texts), dtype=np.int64)
    codes[pd.isna(texts)] = -1
    return codes, texts


def _with_none(texts: np.ndarray) -> np.ndarray:
    """``texts`` with a ``None`` appended: index it with codes (-1 reads the ``None``)."""
    return np.concatenate([texts, np.array([None], dtype=object)])


def _positions(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position in ``keys`` (unique text ids) of each of ``values``; -1 where absent.

    What ``pd.Index(keys).get_indexer(values)`` answers, hashed by Arrow (~6x faster
    on a million household rows).

    Examples
    --------
    >>> keys = np.array(["a", "b"], dtype=object)
    >>> _positions(np.array(["b", None, "x", "a"], dtype=object), keys)
    array([ 1, -1, -1,  0])
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        found = pc.index_in(
            pa.array(values, type=pa.string(), from_pandas=True),
            value_set=pa.array(keys, type=pa.string(), from_pandas=True),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: let pandas compare them
        return pd.Index(keys).get_indexer(values)
    return np.asarray(found.fill_null(-1), dtype=np.int64)


def _beyond(
    pts: np.ndarray,
    geoms: np.ndarray,
    host: np.ndarray,
    tol: float,
    *,
    bounds: np.ndarray | None = None,
) -> np.ndarray:
    """Whether each point lies farther than ``tol`` from its host geometry ``geoms[host]``.

    ``bounds``: ``shapely.bounds(geoms)`` when the caller has it.

    Examples
    --------
    >>> geoms = np.array([shapely.box(0, 0, 10, 10)])
    >>> pts = shapely.points([(5, 5), (13, 5), (25, 5)])
    >>> _beyond(pts, geoms, np.zeros(3, dtype=int), 5.0).tolist()
    [False, False, True]
    """
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    bb = (shapely.bounds(geoms) if bounds is None else bounds)[host]
    # Outside the building's box grown by the tolerance: certainly too far.
    near = (
        (x >= bb[:, 0] - tol)
        & (x <= bb[:, 2] + tol)
        & (y >= bb[:, 1] - tol)
        & (y <= bb[:, 3] + tol)
    )
    # The building touches each side of its box: the farthest a point can be from it is its
    # distance to the farther end of the nearest side. Within the tolerance (with a margin
    # for rounding): certainly near. Else: measure.
    ax, bx = np.abs(x - bb[:, 0]), np.abs(x - bb[:, 2])
    ay, by = np.abs(y - bb[:, 1]), np.abs(y - bb[:, 3])
    bound = np.minimum(
        np.hypot(np.minimum(ax, bx), np.maximum(ay, by)),
        np.hypot(np.maximum(ax, bx), np.minimum(ay, by)),
    )
    measure = near & ~(bound < tol * (1 - 1e-9))
    dist = np.where(near, 0.0, np.inf)
    dist[measure] = shapely.distance(pts[measure], geoms[host[measure]])
    return dist > tol


def _id_str(value: Any) -> str:
    """Stringify an id so that ``12``, ``12.0`` and ``"12"`` agree."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _check_crs(
    name: str, gdf: gpd.GeoDataFrame, assume_crs: pyproj.CRS | None, report: ValidationReport
) -> gpd.GeoDataFrame | None:
    """Make sure a layer has a plausible CRS; return it (possibly with assumed CRS)."""
    if gdf.crs is None:
        if assume_crs is None:
            report.add(
                name,
                "error",
                "missing_crs",
                f"{name} has no CRS; set one with gdf.set_crs(4326) (or the CRS the data is "
                "really in), or pass assume_crs=... (CLI: --crs EPSG:4326)",
            )
            return None
        report.add(name, "info", "assumed_crs", f"{name} had no CRS; assumed {assume_crs.name}")
        gdf = gdf.set_crs(assume_crs)
    if gdf.crs.is_geographic and len(gdf):
        xy = shapely.get_coordinates(gdf.geometry.values)
        if len(xy) and (np.nanmax(np.abs(xy[:, 0])) > 180 or np.nanmax(np.abs(xy[:, 1])) > 90):
            report.add(
                name,
                "error",
                "crs_mismatch",
                f"{name} says its CRS is {gdf.crs.name} (degrees) but its coordinates reach "
                f"{np.nanmax(np.abs(xy)):.0f}, which looks like metres; set the real CRS with "
                "gdf.set_crs(..., allow_override=True)",
            )
            return None
    return gdf


def _fix_geometries(
    name: str, gdf: gpd.GeoDataFrame, id_col: str | None, report: ValidationReport
) -> gpd.GeoDataFrame:
    """Repair invalid geometries, reject empty or wrongly typed ones (reported)."""
    allowed = GEOMETRY_TYPES[name]
    geoms = gdf.geometry.values
    ids = gdf[id_col] if id_col and id_col in gdf else pd.Series(gdf.index, index=gdf.index)
    missing = np.asarray(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if None in allowed and missing.all():
        return gdf  # a layer given without geometry (households/staff by building id)
    if name in ("households", "staff"):
        coords_ok = np.ones(len(gdf), dtype=bool)
        pts = ~missing
        if pts.any():
            xy = shapely.get_coordinates(geoms[pts])
            if len(xy) == pts.sum():
                coords_ok[pts] = np.isfinite(xy).all(axis=1)
        # Rows without a usable point are placed at their building later.
        if (~coords_ok).any():
            report.add(
                name,
                "repaired",
                "nan_coordinates",
                f"{int((~coords_ok).sum())} {name} have NaN/infinite coordinates; they are placed "
                "at their building instead (give valid coordinates or a building id)",
                count=int((~coords_ok).sum()),
                ids=ids[~coords_ok],
            )
            gdf = _copy(gdf)
            gdf.loc[~coords_ok, gdf.geometry.name] = None
        return gdf
    keep = ~missing
    if missing.any():
        report.add(
            name,
            "rejected",
            "empty_geometry",
            f"{int(missing.sum())} {name} have no or empty geometry and were left out; give them "
            "a geometry to include them",
            count=int(missing.sum()),
            ids=ids[missing],
        )
    invalid = keep & ~np.asarray(shapely.is_valid(geoms))
    if invalid.any():
        repaired = shapely.make_valid(geoms[invalid])
        if "Polygon" in allowed:
            repaired = _polygonal_part(repaired)
        geoms = geoms.copy()
        geoms[invalid] = repaired
        report.add(
            name,
            "repaired",
            "invalid_geometry",
            f"{int(invalid.sum())} invalid {name} geometries were repaired with make_valid",
            count=int(invalid.sum()),
            ids=ids[invalid],
        )
        now_empty = invalid & np.asarray(shapely.is_empty(geoms) | shapely.is_missing(geoms))
        if now_empty.any():
            report.add(
                name,
                "rejected",
                "degenerate_geometry",
                f"{int(now_empty.sum())} {name} geometries were degenerate (no area/length left "
                "after repair) and were left out; redraw them",
                count=int(now_empty.sum()),
                ids=ids[now_empty],
            )
            keep &= ~now_empty
    if "Polygon" in allowed:
        collection = keep & (np.asarray(shapely.get_type_id(geoms)) == 7)
        if collection.any():
            geoms = geoms.copy()
            geoms[collection] = _polygonal_part(geoms[collection])
            report.add(
                name,
                "repaired",
                "collection_to_polygon",
                f"{int(collection.sum())} {name} geometries were collections (e.g. a polygon with "
                "a stray line); their polygonal part was kept",
                count=int(collection.sum()),
                ids=ids[collection],
            )
    types = np.asarray(shapely.get_type_id(geoms))
    names = np.array(
        [
            "Point",
            "LineString",
            "LinearRing",
            "Polygon",
            "MultiPoint",
            "MultiLineString",
            "MultiPolygon",
            "GeometryCollection",
        ]
    )
    type_names = np.where(types >= 0, names[np.clip(types, 0, 7)], "")
    wrong = keep & ~np.isin(type_names, [t for t in allowed if t is not None])
    if wrong.any():
        found = sorted(set(type_names[wrong]))
        report.add(
            name,
            "rejected",
            "wrong_geometry_type",
            f"{int(wrong.sum())} {name} have geometry type {', '.join(found)} where "
            f"{' or '.join(t for t in allowed if t)} is expected; they were left out",
            count=int(wrong.sum()),
            ids=ids[wrong],
        )
        keep &= ~wrong
    out = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))
    return out[keep]


def _polygonal_part(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of (repaired) geometries."""
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        if g is None:
            out[i] = None
        elif g.geom_type in ("Polygon", "MultiPolygon"):
            out[i] = g
        else:
            polys = [
                p for p in getattr(g, "geoms", []) if p.geom_type in ("Polygon", "MultiPolygon")
            ]
            out[i] = shapely.union_all(polys) if polys else shapely.Polygon()
    return out


def _use_value(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return _USE_ALIASES.get(str(v).strip().lower())


def _use_values(values: pd.Series) -> pd.Series:
    """:data:`_USE_ALIASES` of each value (None where unknown or missing), once per value.

    Examples
    --------
    >>> _use_values(pd.Series(["住宅", " Office", None, "house", "住宅"])).tolist()
    ['residential', 'commercial', None, 'residential', 'residential']
    """
    obj = values.to_numpy(dtype=object)
    distinct = _distinct(obj)
    if distinct is None:  # unhashable values: one by one
        return pd.Series([_use_value(v) for v in obj], index=values.index, dtype=object)
    key, first = distinct
    answers = np.array([_use_value(v) for v in obj[first].tolist()], dtype=object)
    return pd.Series(answers[key], index=values.index, dtype=object)


def _distinct(obj: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Group values that are of one type and equal: ``(group of each value, first of each)``.

    A rule applied to the first value of each group holds for the whole group (the type
    apart, ``1``, ``1.0``, ``True`` and ``"1"`` would be grouped by pandas). None when a
    value cannot be hashed.

    Examples
    --------
    >>> key, first = _distinct(np.array(["a", 1, "a", 1.0, None, "a"], dtype=object))
    >>> key.tolist(), first.tolist()
    ([0, 1, 0, 2, 3, 0], [0, 1, 3, 4])
    """
    try:
        codes, _ = pd.factorize(obj, use_na_sentinel=False)
        kinds, _ = pd.factorize(np.fromiter(map(type, obj), dtype=object, count=len(obj)))
    except TypeError:
        return None
    key, _ = pd.factorize(codes.astype(np.int64) * (int(kinds.max(initial=0)) + 1) + kinds)
    first = np.unique(key, return_index=True)[1]  # (groups count from 0 in order of appearance)
    return key, first


def _require_columns(name: str, gdf: gpd.GeoDataFrame, report: ValidationReport) -> bool:
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in gdf.columns]
    if missing:
        available = ", ".join(str(c) for c in gdf.columns if c != gdf.geometry.name)
        report.add(
            name,
            "error",
            "missing_column",
            f"{name} lacks the required column(s) {', '.join(missing)}; available columns: "
            f"{available or '(none)'}. Rename them in the file or map them, e.g. "
            f"column_map={{'{name}': {{'{missing[0]}': 'your_column'}}}} "
            f"(CLI: --column {name}.{missing[0]}=your_column)",
        )
        return False
    return True


def _normalise_ids(name: str, gdf: gpd.GeoDataFrame, report: ValidationReport) -> gpd.GeoDataFrame:
    """Make the id column ``str``; reject null ids; flag duplicates as an error."""
    col = ID_COLUMNS[name]
    ids = _id_strings(gdf[col])
    null = gdf[col].isna().to_numpy() | (ids == "")  # (blank ids: "" once stripped)
    if null.any():
        report.add(
            name,
            "rejected",
            "missing_id",
            f"{int(null.sum())} {name} have no {col} and were left out; give every row an id",
            count=int(null.sum()),
            ids=[f"row {i}" for i in np.flatnonzero(null)[:_MAX_LISTED_IDS]],
        )
        gdf = gdf[~null]
        ids = ids[~null]
    gdf = _copy(gdf)
    gdf[col] = pd.Series(ids, index=gdf.index, dtype=object)
    if _repeats(ids):
        dup = gdf[col].duplicated(keep=False)
        dup_ids = gdf.loc[dup, col].unique()
        report.add(
            name,
            "error",
            "duplicate_id",
            f"{len(dup_ids)} {col} values occur more than once in {name}; ids must be unique "
            "(deduplicate the rows or give them distinct ids)",
            count=len(dup_ids),
            ids=dup_ids,
        )
    return gdf


def _repeats(ids: np.ndarray) -> bool:
    """Whether any of ``ids`` (``str``, none missing) occurs more than once.

    Ids listed in increasing order (as exports from a database usually are) are
    distinct: one comparison per neighbour pair answers, without hashing a million ids.

    Examples
    --------
    >>> _repeats(np.array(["a", "b", "c"], dtype=object))
    False
    >>> _repeats(np.array(["b", "a", "b"], dtype=object))
    True
    """
    if len(ids) < 2:
        return False
    if bool(np.all(ids[1:] > ids[:-1])):
        return False
    return len(set(ids.tolist())) < len(ids)  # (a set is cheaper than duplicated())


def _numeric(
    name: str,
    gdf: gpd.GeoDataFrame,
    col: str,
    id_col: str | None,
    report: ValidationReport,
    *,
    negative: Literal["error", "missing"] = "error",
) -> gpd.GeoDataFrame:
    """Coerce a count column to float; unreadable → NaN (reported); negatives per policy."""
    if col not in gdf.columns:
        gdf = _copy(gdf)
        gdf[col] = np.nan
        return gdf
    raw = gdf[col]
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    ids = gdf[id_col] if id_col else pd.Series(gdf.index, index=gdf.index)
    unreadable = values.isna() & raw.notna()
    if unreadable.any():
        report.add(
            name,
            "repaired",
            f"unreadable_{col}",
            f"{int(unreadable.sum())} {name}.{col} values are not numbers and were treated as "
            "unknown",
            count=int(unreadable.sum()),
            ids=ids[unreadable],
        )
    infinite = np.isinf(values)
    if infinite.any():
        values[infinite] = np.nan
        report.add(
            name,
            "repaired",
            f"infinite_{col}",
            f"{int(infinite.sum())} {name}.{col} values are infinite and were treated as unknown",
            count=int(infinite.sum()),
            ids=ids[infinite],
        )
    neg = values < 0
    if neg.any():
        if negative == "error":
            report.add(
                name,
                "error",
                f"negative_{col}",
                f"{int(neg.sum())} {name} have a negative {col}; counts must be 0 or more "
                "(fix the values, or clear them to have them estimated)",
                count=int(neg.sum()),
                ids=ids[neg],
            )
        else:
            values[neg] = np.nan
            report.add(
                name,
                "repaired",
                f"negative_{col}",
                f"{int(neg.sum())} {name} have a negative {col}; treated as unknown",
                count=int(neg.sum()),
                ids=ids[neg],
            )
    gdf = _copy(gdf)
    gdf[col] = values
    return gdf


def _ensure_columns(name: str, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    missing = [c for c in OPTIONAL_COLUMNS[name] if c not in gdf.columns]
    if missing:
        gdf = _copy(gdf)
        for c in missing:
            gdf[c] = None
    return gdf


# --------------------------------------------------------------------------- validation


class Validator:
    """Holds the state of one validation run (one report)."""

    def __init__(
        self,
        raw: Mapping[str, gpd.GeoDataFrame | None],
        *,
        assume_crs: Any,
        target_crs: Any,
        reproject: bool,
        unit_area: float,
        default_levels: float,
        snap_tolerance: float,
        overlap_tolerance: float,
    ) -> None:
        unknown = sorted(set(raw) - set(LAYER_NAMES))
        if unknown:
            raise LayerError(
                f"unknown layer name(s) {', '.join(unknown)}; canonical layers are "
                f"{', '.join(LAYER_NAMES)} (map other names with layer_map=...)"
            )
        self.raw = {k: v for k, v in raw.items() if v is not None}
        self.assume_crs = pyproj.CRS.from_user_input(assume_crs) if assume_crs is not None else None
        self.target_crs = pyproj.CRS.from_user_input(target_crs) if target_crs is not None else None
        if self.target_crs is not None and not self.target_crs.is_projected:
            raise CRSError(
                f"target_crs must be a projected CRS in metres, got {self.target_crs.name}; "
                "leave it unset to use the local CGCS2000 Gauss-Krüger zone"
            )
        self.reproject = reproject
        self.unit_area = unit_area
        self.default_levels = default_levels
        self.snap_tolerance = snap_tolerance
        self.overlap_tolerance = overlap_tolerance
        self.report = ValidationReport()

    # -- stage 1: per-layer shape checks, in the input CRS
    def run(self) -> Layers | None:
        """Validate every layer; return the bundle, or None when there are errors."""
        r = self.report
        for name, gdf in self.raw.items():
            r.rows_in[name] = len(gdf)
            if not isinstance(gdf, gpd.GeoDataFrame):
                raise LayerError(
                    f"{name} must be a GeoDataFrame, got {type(gdf).__name__}; read files with "
                    "gridmap.io.read_layers"
                )
            if gdf.attrs.get(CONVERTED_ATTR):
                system = {"gcj02": "GCJ-02", "bd09": "BD-09"}.get(gdf.attrs[CONVERTED_ATTR])
                r.add(
                    name,
                    "info",
                    "converted_to_wgs84",
                    f"{name} coordinates were read as {system} and converted to WGS84",
                    count=len(gdf),
                )
            if name == "communities" and gdf.attrs.get(DERIVED_ATTR):
                ids = gdf["community_id"] if "community_id" in gdf else ()
                msg = _derived_message(gdf)
                r.add(name, "warning", "derived_communities", msg, count=len(gdf), ids=ids)
            for count, reason in gdf.attrs.get(LEFT_OUT_ATTR, ()):
                r.add(
                    name,
                    "info",
                    "left_out_by_reader",
                    f"{count} {name} were left out when reading: {reason}",
                    count=count,
                )
        for name in REQUIRED_LAYERS:
            if name not in self.raw:
                hint = (
                    "give polygons with a community_id column (a 社区 boundary layer), e.g. "
                    "from the street office, or draw them in QGIS. OpenStreetMap extracts have "
                    "none: derive stand-in areas from the main roads with --derive-communities "
                    "(CLI) or gridmap.areas.derive_communities (Python)"
                    if name == "communities"
                    else "give building footprints (Polygon) with a building_id column"
                )
                msg = f"the required layer {name} is missing; {hint}"
                r.add(name, "error", "missing_layer", msg)
        layers: dict[str, gpd.GeoDataFrame] = {}
        for name in LAYER_NAMES:
            gdf = self.raw.get(name)
            if gdf is None:
                continue
            if len(gdf) == 0:
                sev: Severity = "error" if name in REQUIRED_LAYERS else "warning"
                r.add(
                    name,
                    sev,
                    "empty_layer",
                    f"the layer {name} is empty (0 rows)"
                    + ("; it is required" if sev == "error" else "; it is ignored"),
                )
                continue
            if not _require_columns(name, gdf, r):
                continue
            checked = _check_crs(name, gdf, self.assume_crs, r)
            if checked is None:
                continue
            id_col = ID_COLUMNS.get(name)
            if id_col and id_col in REQUIRED_COLUMNS[name]:
                checked = _normalise_ids(name, checked, r)
            checked = _fix_geometries(name, checked, id_col, r)
            if name in REQUIRED_LAYERS and len(checked) == 0:
                r.add(
                    name,
                    "error",
                    "no_usable_rows",
                    f"none of the {len(gdf)} {name} has a usable geometry (see the findings "
                    f"above); the layer {name} is required",
                )
                continue
            layers[name] = _ensure_columns(name, checked)
        crs_set = {
            n: g.crs for n, g in layers.items() if not shapely.is_missing(g.geometry.values).all()
        }
        distinct = {c.to_wkt() for c in crs_set.values()}
        if len(distinct) > 1 and not self.reproject:
            listing = ", ".join(f"{n}: {_crs_label(c)}" for n, c in crs_set.items())
            r.add(
                "*",
                "error",
                "mixed_crs",
                f"the layers are in different CRSs ({listing}); bring them to one CRS "
                "(gdf.to_crs(...)) or pass reproject=True (CLI: --reproject) to reproject them",
            )
        if not r.ok:
            self._diagnose(layers)
            return None
        return self._combine(layers)

    def _diagnose(self, layers: dict[str, gpd.GeoDataFrame]) -> None:
        """Run the checks that can still run when errors stop validation.

        So that one run reports everything: for this pass only, repeated ids are made
        unique (``B7``, ``B7#2`` …; every row stays in the geometric checks) and mixed
        CRSs are reprojected, and the cross-layer checks run; without communities, the
        building checks that do not need them. The layers themselves are not returned.
        """
        usable = {}
        for name, gdf in layers.items():
            id_col = ID_COLUMNS.get(name)
            if id_col and id_col in REQUIRED_COLUMNS[name] and gdf[id_col].duplicated().any():
                gdf = _copy(gdf)
                nth = gdf.groupby(id_col).cumcount().to_numpy()
                ids = gdf[id_col].to_numpy(dtype=object)
                gdf[id_col] = [
                    i if k == 0 else f"{i}#{k + 1}" for i, k in zip(ids, nth, strict=True)
                ]
            usable[name] = gdf
        if "communities" in usable and "buildings" in usable:
            self._combine(usable)
            return
        blds = usable.get("buildings")
        if blds is None:
            return
        target = self.target_crs or _choose_crs({"buildings": blds})
        blds = self._building_attributes(blds.to_crs(target))
        blds = self._overlaps(blds)
        self._fill_households(blds)

    # -- stage 2: cross-layer checks, in the target CRS
    def _combine(self, layers: dict[str, gpd.GeoDataFrame]) -> Layers | None:
        r = self.report
        target = self.target_crs or _choose_crs(layers)
        r.crs = _crs_label(target)
        projected = {}
        for name, gdf in layers.items():
            if shapely.is_missing(gdf.geometry.values).all():
                projected[name] = gdf.set_crs(target, allow_override=True)
            else:
                projected[name] = gdf.to_crs(target)
        comms = self._communities(projected["communities"])
        blds = self._buildings(projected["buildings"], comms, projected.get("compounds"))
        hh = None
        if "households" in projected:
            hh, host = self._households(projected["households"], blds)
            blds = self._counts_from_households(blds, hh, host)
        blds = self._fill_households(blds)
        staff = self._staff(projected["staff"], blds) if "staff" in projected else None
        lines = {n: self._lines(n, projected[n]) for n in ("roads", "barriers") if n in projected}
        compounds = projected.get("compounds")
        if compounds is not None:
            compounds = _copy(compounds)
            compounds["compound_id"] = _as_str_or_none(compounds["compound_id"])
            no_id = compounds["compound_id"].isna()
            compounds.loc[no_id, "compound_id"] = [f"compound-{i}" for i in np.flatnonzero(no_id)]
        if not r.ok:
            return None
        out = Layers(
            communities=comms.reset_index(drop=True),
            buildings=blds.reset_index(drop=True),
            households=None if hh is None else hh.reset_index(drop=True),
            roads=lines.get("roads"),
            barriers=lines.get("barriers"),
            compounds=None if compounds is None else compounds.reset_index(drop=True),
            staff=None if staff is None else staff.reset_index(drop=True),
            crs=target,
        )
        for name, gdf in out.items():
            r.rows_out[name] = len(gdf)
        return out

    def staff_only(self, buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame | None:
        """Validate the staff layer alone against known buildings (in the target CRS)."""
        r = self.report
        staff = self.raw.get("staff")
        if staff is None or len(staff) == 0:
            r.add("staff", "error", "empty_layer", "the staff layer is missing or empty")
            return None
        r.rows_in["staff"] = len(staff)
        if not _require_columns("staff", staff, r):
            return None
        checked = _check_crs("staff", staff, self.assume_crs, r)
        if checked is None:
            return None
        checked = _normalise_ids("staff", checked, r)
        checked = _fix_geometries("staff", checked, "staff_id", r)
        checked = _ensure_columns("staff", checked)
        assert self.target_crs is not None
        if shapely.is_missing(checked.geometry.values).all():
            checked = checked.set_crs(self.target_crs, allow_override=True)
        else:
            checked = checked.to_crs(self.target_crs)
        out = self._staff(checked, buildings.to_crs(self.target_crs))
        r.rows_out["staff"] = len(out)
        return out.reset_index(drop=True) if r.ok else None

    def _communities(self, comms: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        r = self.report
        comms = _copy(comms)
        for col in ("name", "code", "street", "street_code", "district", "district_code"):
            comms[col] = _as_str_or_none(comms[col])
        bad_code = comms["code"].notna() & ~comms["code"].astype(str).str.fullmatch(r"\d{12}")
        if bad_code.any():
            r.add(
                "communities",
                "warning",
                "bad_code",
                f"{int(bad_code.sum())} community codes are not 12-digit statistical codes; grid "
                "codes fall back to community_id for them",
                count=int(bad_code.sum()),
                ids=comms.loc[bad_code, "community_id"],
            )
            comms.loc[bad_code, "code"] = None
        geoms = comms.geometry.values
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        pairs = left < right
        left, right = left[pairs], right[pairs]
        if len(left):
            areas = shapely.area(shapely.intersection(geoms[left], geoms[right]))
            over = areas > self.overlap_tolerance
            if over.any():
                ids = comms["community_id"].to_numpy()
                listed = [
                    f"{ids[a]}/{ids[b]} ({ar:.0f} m²)"
                    for a, b, ar in zip(
                        left[over][:_N], right[over][:_N], areas[over][:_N], strict=True
                    )
                ]
                r.add(
                    "communities",
                    "error",
                    "overlapping_communities",
                    f"{int(over.sum())} pairs of communities overlap "
                    f"(total {areas[over].sum():.0f} m²); community polygons must not overlap — "
                    "fix the shared boundaries in the source (e.g. QGIS 'Fix topology' or "
                    "snap to a common edge)",
                    count=int(over.sum()),
                    ids=listed,
                )
        return comms

    def _buildings(
        self,
        blds: gpd.GeoDataFrame,
        comms: gpd.GeoDataFrame,
        compounds: gpd.GeoDataFrame | None,
    ) -> gpd.GeoDataFrame:
        blds = self._building_attributes(blds)
        return self._building_membership(blds, comms, compounds)

    def _building_attributes(self, blds: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        r = self.report
        blds = _numeric("buildings", blds, "households", "building_id", r, negative="error")
        blds = _numeric("buildings", blds, "levels", "building_id", r, negative="missing")
        blds = _copy(blds)
        blds["name"] = _as_str_or_none(blds["name"])
        use_raw = blds["use"]
        if use_raw.isna().all():
            if blds["households"].isna().any():
                r.add(
                    "buildings",
                    "warning",
                    "no_use",
                    "buildings have no 'use' column: every building is taken as residential for "
                    "household estimation (give use=residential/commercial/… to exclude offices)",
                )
            blds["use"] = "residential"
        else:
            norm = _use_values(use_raw)
            unknown = norm.isna() & use_raw.notna()
            if unknown.any():
                values = sorted({str(v) for v in use_raw[unknown]})[:10]
                r.add(
                    "buildings",
                    "warning",
                    "unknown_use",
                    f"{int(unknown.sum())} buildings have a use not in {', '.join(BUILDING_USES)} "
                    f"({', '.join(values)}); they are kept as 'other' (no households estimated)",
                    count=int(unknown.sum()),
                    ids=blds.loc[unknown, "building_id"],
                )
            blds["use"] = norm.fillna("other").where(use_raw.notna(), "other").astype(object)
        return blds

    def _building_membership(
        self,
        blds: gpd.GeoDataFrame,
        comms: gpd.GeoDataFrame,
        compounds: gpd.GeoDataFrame | None,
    ) -> gpd.GeoDataFrame:
        r = self.report
        # Community by representative point; straddling buildings reported.
        rep = blds.geometry.representative_point()
        cgeoms = comms.geometry.values
        ctree = shapely.STRtree(cgeoms)
        bi, ci = ctree.query(rep.values, predicate="within")
        order = np.lexsort((ci, bi))
        bi, ci = bi[order], ci[order]
        first = np.unique(bi, return_index=True)[1]
        assigned = np.full(len(blds), -1)
        assigned[bi[first]] = ci[first]
        cids = comms["community_id"].to_numpy()
        given = _as_str_or_none(blds["community_id"]).to_numpy()
        derived = np.where(assigned >= 0, cids[np.clip(assigned, 0, None)], None)
        outside = assigned < 0
        if outside.any():
            r.add(
                "buildings",
                "rejected",
                "outside_communities",
                f"{int(outside.sum())} buildings lie outside every community and were left out "
                "(with their households); extend the community polygons to include them",
                count=int(outside.sum()),
                ids=blds.loc[outside, "building_id"],
            )
        mismatch = (~outside) & pd.notna(given) & (given != derived)
        if mismatch.any():
            r.add(
                "buildings",
                "repaired",
                "community_mismatch",
                f"{int(mismatch.sum())} buildings name a community_id that does not contain them; "
                "the community containing them was used",
                count=int(mismatch.sum()),
                ids=blds.loc[mismatch, "building_id"],
            )
        blds["community_id"] = derived
        # Straddling: the building crosses its community's boundary by more than 1 m².
        inside = ~outside
        if inside.any():
            # Only a building its community does not contain can have area outside it: test
            # containment on prepared copies of the communities (the caller's geometries stay
            # unprepared), measure the rest.
            prepared = shapely.transform(np.asarray(cgeoms), lambda xy: xy)
            shapely.prepare(prepared)
            own = prepared[assigned[inside]]
            bgeoms = np.asarray(blds.geometry.values[inside])
            outside_area = np.zeros(len(bgeoms))
            crossing = np.flatnonzero(~shapely.contains(own, bgeoms))
            outside_area[crossing] = shapely.area(
                shapely.difference(bgeoms[crossing], own[crossing])
            )
            straddle = np.zeros(len(blds), dtype=bool)
            straddle[np.flatnonzero(inside)] = outside_area > 1.0
            if straddle.any():
                r.add(
                    "buildings",
                    "warning",
                    "straddles_communities",
                    f"{int(straddle.sum())} buildings cross their community boundary; each belongs "
                    "to the community holding its representative point",
                    count=int(straddle.sum()),
                    ids=blds.loc[straddle, "building_id"],
                )
        blds = blds[inside]
        blds = self._overlaps(blds)
        blds["compound_id"] = None
        if compounds is not None and len(compounds):
            ctr = shapely.STRtree(compounds.geometry.values)
            b2, k2 = ctr.query(blds.geometry.representative_point().values, predicate="within")
            order = np.lexsort((k2, b2))
            b2, k2 = b2[order], k2[order]
            first = np.unique(b2, return_index=True)[1]
            kid = _as_str_or_none(compounds["compound_id"]).to_numpy()
            col = np.full(len(blds), None, dtype=object)
            col[b2[first]] = kid[k2[first]]
            blds["compound_id"] = col
        blds["compound_id"] = blds["compound_id"].astype(object)
        return blds

    def _overlaps(self, blds: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Report overlapping footprints; mark likely duplicates (> half the smaller)."""
        r = self.report
        geoms = blds.geometry.values
        tree = shapely.STRtree(geoms)
        a, b = tree.query(geoms, predicate="intersects")
        keep = a < b
        a, b = a[keep], b[keep]
        blds = _copy(blds)
        blds["duplicate_of"] = None
        blds["nested_in"] = None
        if not len(a):
            return blds
        inter = shapely.area(shapely.intersection(geoms[a], geoms[b]))
        real = inter > 1.0
        a, b, inter = a[real], b[real], inter[real]
        if not len(a):
            return blds
        ids = blds["building_id"].to_numpy()
        area_all = shapely.area(geoms)
        small = np.where(area_all[a] <= area_all[b], a, b)
        large = np.where(small == a, b, a)
        # Most of the smaller footprint is covered: either the same building drawn twice
        # (the overlap is also most of the larger one) or a small footprint on a much
        # larger one (a tower on its podium, a building part drawn over its building).
        covered = inter > 0.5 * area_all[small]
        dup = covered & (inter > 0.5 * area_all[large])
        nested = covered & ~dup
        r.add(
            "buildings",
            "warning",
            "overlapping_buildings",
            f"{len(a)} pairs of buildings overlap ({inter.sum():.0f} m² in all)",
            count=len(a),
            ids=[f"{ids[i]}/{ids[j]}" for i, j in zip(a[:_N], b[:_N], strict=True)],
        )
        if dup.any():
            dup_col = blds["duplicate_of"].to_numpy(dtype=object, copy=True)
            dup_col[small[dup]] = ids[large[dup]]
            blds["duplicate_of"] = dup_col
            r.add(
                "buildings",
                "warning",
                "duplicate_buildings",
                f"{int(dup.sum())} overlapping pairs cover more than half of both footprints "
                "and look like one building drawn twice; the smaller one gets no estimated "
                "households (so nobody is counted twice) — delete it in the source if it is a copy",
                count=int(dup.sum()),
                ids=[
                    f"{ids[i]}≈{ids[j]}"
                    for i, j in zip(small[dup][:_N], large[dup][:_N], strict=True)
                ],
            )
        if nested.any():
            order = np.argsort(inter[nested], kind="stable")  # the largest overlap wins
            rows, hosts = small[nested][order], large[nested][order]
            nest_col = blds["nested_in"].to_numpy(dtype=object, copy=True)
            nest_col[rows] = ids[hosts]
            blds["nested_in"] = nest_col
            r.add(
                "buildings",
                "warning",
                "nested_buildings",
                f"{int(nested.sum())} buildings lie mostly on a much larger footprint (a tower on "
                "its podium, or a building part drawn over its building); where households are "
                "estimated, such a building counts only its levels above the larger one (so its "
                "floor area is not counted twice)",
                count=int(nested.sum()),
                ids=[f"{ids[i]}⊂{ids[j]}" for i, j in zip(rows[:_N], hosts[:_N], strict=True)],
            )
        return blds

    def _households(
        self, hh: gpd.GeoDataFrame, blds: gpd.GeoDataFrame
    ) -> tuple[gpd.GeoDataFrame, np.ndarray]:
        """Check the households against the buildings.

        Returns the households and, per row, the position of its building in ``blds``.
        """
        r = self.report
        hh = _copy(hh)
        # building ids as codes into their distinct texts: every per-row question (left
        # out? which building?) is asked once per building and read through the codes
        codes, texts = _id_codes(hh["building_id"])
        hh["building_id"] = pd.Series(_with_none(texts)[codes], index=hh.index, dtype=object)
        bids = blds["building_id"].to_numpy()
        raw_blds = self.raw.get("buildings")
        left_out = (
            set(_id_strings(raw_blds["building_id"].dropna()).tolist()) - set(bids.tolist())
            if raw_blds is not None and "building_id" in raw_blds
            else set()
        )
        if left_out:
            gone = np.fromiter((t in left_out for t in texts.tolist()), bool, len(texts))
            orphan = np.append(gone, False)[codes]
        else:
            orphan = np.zeros(len(hh), dtype=bool)
        if orphan.any():
            r.add(
                "households",
                "rejected",
                "building_left_out",
                f"{int(orphan.sum())} households belong to buildings that were left out (see the "
                "buildings findings) and were left out with them",
                count=int(orphan.sum()),
                ids=hh["household_id"].to_numpy()[orphan][:_MAX_LISTED_IDS],
            )
            hh = hh[~orphan]
            codes = codes[~orphan]
        host = np.append(_positions(texts, bids), -1)[codes]
        has_bid = host >= 0
        named_known = has_bid.copy()
        named_unknown = (codes >= 0) & ~has_bid
        has_point = ~np.asarray(shapely.is_missing(hh.geometry.values))
        # Households without a known building: the building containing them, else the nearest
        # within snap_tolerance.
        need = ~has_bid
        bgeoms = blds.geometry.values
        if (need & has_point).any():
            rows = np.flatnonzero(need & has_point)
            tree = shapely.STRtree(bgeoms)
            pts = hh.geometry.values[rows]
            pi, bi = tree.query(pts, predicate="within")
            order = np.lexsort((bi, pi))
            pi, bi = pi[order], bi[order]
            first = np.unique(pi, return_index=True)[1]
            found = np.full(len(rows), -1)
            found[pi[first]] = bi[first]
            contained = found >= 0
            snap = ~contained
            if snap.any():
                si, sb = tree.query_nearest(
                    pts[snap],
                    max_distance=self.snap_tolerance,
                    return_distance=False,
                    all_matches=False,
                )
                snapped = np.full(int(snap.sum()), -1)
                snapped[si] = sb
                found[np.flatnonzero(snap)] = snapped
                n_snapped = int((snapped >= 0).sum())
                if n_snapped:
                    r.add(
                        "households",
                        "repaired",
                        "snapped_to_building",
                        f"{n_snapped} households lie outside every building; each was given the "
                        f"nearest building within {self.snap_tolerance:g} m",
                        count=n_snapped,
                        ids=hh["household_id"].to_numpy()[rows[snap][snapped >= 0]],
                    )
            ok_rows = rows[found >= 0]
            col = hh["building_id"].to_numpy(dtype=object, copy=True)
            col[ok_rows] = bids[found[found >= 0]]
            hh["building_id"] = pd.Series(col, index=hh.index, dtype=object)
            host[ok_rows] = found[found >= 0]
            has_bid[ok_rows] = True
        if named_unknown.any():
            r.add(
                "households",
                "warning",
                "unknown_building",
                f"{int(named_unknown.sum())} households name a building_id that is not among the "
                "buildings; where they have a point, they were matched to a building by location",
                count=int(named_unknown.sum()),
                ids=hh.loc[named_unknown, "household_id"],
            )
        far = named_known & has_point
        n_far = 0
        if far.any():
            far[far] = self._far_from_building(
                np.asarray(hh.geometry.values)[far],
                np.asarray(bgeoms),
                host[far],
                hh["household_id"].to_numpy()[far],
            )
            n_far = int(far.sum())
            if n_far:
                hh = _copy(hh)
                geoms = hh.geometry.values.copy()
                geoms[far] = None  # placed at their building below
                hh = hh.set_geometry(gpd.GeoSeries(geoms, index=hh.index, crs=hh.crs))
        lost = ~has_bid
        if lost.any():
            r.add(
                "households",
                "rejected",
                "no_building",
                f"{int(lost.sum())} households match no building (no known building_id and no "
                f"building within {self.snap_tolerance:g} m) and were left out; fix their "
                "building_id or coordinates, or raise snap_tolerance",
                count=int(lost.sum()),
                ids=hh["household_id"].to_numpy()[lost][:_MAX_LISTED_IDS],
            )
            hh = hh[~lost]
            host = host[~lost]
        # Place households without a point at their building.
        missing_pt = np.asarray(shapely.is_missing(hh.geometry.values))
        if missing_pt.any():
            rep = shapely.point_on_surface(np.asarray(bgeoms))  # (representative_point)
            geoms = hh.geometry.values.copy()
            geoms[missing_pt] = rep[host[missing_pt]]
            hh = hh.set_geometry(gpd.GeoSeries(geoms, index=hh.index, crs=hh.crs))
            if missing_pt.sum() > n_far:
                r.add(
                    "households",
                    "info",
                    "placed_at_building",
                    f"{int(missing_pt.sum()) - n_far} households have no point of their own and "
                    "are placed at their building",
                    count=int(missing_pt.sum()) - n_far,
                )
        hh = _numeric("households", hh, "floor", "household_id", r, negative="missing")
        hh = _numeric("households", hh, "persons", "household_id", r, negative="error")
        hh["unit"] = _as_str_or_none(hh["unit"], repeated=True)
        for flag in SENSITIVE_FLAGS:
            hh[flag], bad = _as_bool(hh[flag])
            if bad:
                r.add(
                    "households",
                    "warning",
                    f"unreadable_{flag}",
                    f"{bad} households have an unreadable {flag} value; taken as False",
                    count=bad,
                )
        return hh, host

    def _far_from_building(
        self, pts: np.ndarray, geoms: np.ndarray, host: np.ndarray, ids: np.ndarray
    ) -> np.ndarray:
        """Flag (and report) households lying farther than the tolerance from their building.

        ``pts`` are the households' points, ``geoms[host]`` their buildings (one per point)
        and ``ids`` their household ids.
        """
        tol = self.snap_tolerance
        bounds = shapely.bounds(geoms)  # once per building, read per point through host
        far = np.zeros(len(pts), dtype=bool)
        step = 1 << 17  # in slices: a million households need no million-row temporaries
        for lo in range(0, len(pts), step):
            part = slice(lo, lo + step)
            far[part] = _beyond(pts[part], geoms, host[part], tol, bounds=bounds)
        if far.any():
            centre = shapely.centroid(geoms[host[far]])
            gap = np.hypot(
                shapely.get_x(pts[far]) - shapely.get_x(centre),
                shapely.get_y(pts[far]) - shapely.get_y(centre),
            )
            self.report.add(
                "households",
                "repaired",
                "far_from_building",
                f"{int(far.sum())} households lie more than {tol:g} m from the building their "
                f"building_id names (median {np.median(gap):.0f} m from its centre); they were "
                "placed at that building (raise snap_tolerance to keep points that far out). "
                "Check the coordinates: app coordinates in GCJ-02 "
                "(AMap, Tencent, WeChat) or BD-09 (Baidu) lie 300–700 m from WGS84 — read them "
                "with read_layers(..., coords='gcj02') (CLI: --coords gcj02)",
                count=int(far.sum()),
                ids=ids[far],
            )
        return far

    def _counts_from_households(
        self, blds: gpd.GeoDataFrame, hh: gpd.GeoDataFrame, host: np.ndarray | None = None
    ) -> gpd.GeoDataFrame:
        """Count the households per building (``host``: each one's building position)."""
        r = self.report
        if host is None:
            host = _positions(hh["building_id"].to_numpy(), blds["building_id"].to_numpy())
        counts = np.bincount(host[host >= 0], minlength=len(blds)).astype(np.int64)
        observed = pd.Series(counts, index=blds.index, name="building_id")
        given = blds["households"]
        differs = given.notna() & (given != observed)
        if differs.any():
            r.add(
                "buildings",
                "repaired",
                "households_count_mismatch",
                f"{int(differs.sum())} buildings give a households count that differs from the "
                "household layer; the household layer's count is used",
                count=int(differs.sum()),
                ids=blds.loc[differs, "building_id"],
            )
        blds = _copy(blds)
        blds["households"] = observed
        blds["households_estimated"] = False
        return blds

    def _fill_households(self, blds: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        r = self.report
        blds = _copy(blds)
        helpers = ["duplicate_of", "nested_in"]
        if "households_estimated" in blds and blds["households_estimated"].dtype == bool:
            blds["households"] = blds["households"].astype(np.int64)
            return blds.drop(columns=helpers)
        given = blds["households"].to_numpy(dtype=float)
        fractional = np.isfinite(given) & (given != np.round(given))
        if fractional.any():
            blds.loc[fractional, "households"] = np.round(given[fractional])
            r.add(
                "buildings",
                "repaired",
                "fractional_households",
                f"{int(fractional.sum())} buildings give a households count that is not a whole "
                "number; it was rounded",
                count=int(fractional.sum()),
                ids=blds.loc[fractional, "building_id"],
            )
        missing = blds["households"].isna().to_numpy()
        blds["households_estimated"] = missing
        if missing.any():
            sub = blds[missing]
            est = np.array(
                estimate_households(
                    sub, unit_area=self.unit_area, default_levels=self.default_levels
                ),
                dtype=float,
            )
            nested = sub["nested_in"].notna().to_numpy()
            if nested.any():
                est[nested] = self._estimate_above_host(sub[nested], blds)
            est[sub["duplicate_of"].notna().to_numpy()] = 0
            blds.loc[missing, "households"] = est
            no_levels = (
                missing
                & blds["levels"].isna().to_numpy()
                & (blds["use"].to_numpy() == "residential")
            )
            r.add(
                "buildings",
                "info",
                "households_estimated",
                f"households of {int(missing.sum())} buildings were estimated as levels × "
                f"footprint / {self.unit_area:g} m² (residential buildings only; others 0): "
                f"{int(est.sum())} households in all (flagged households_estimated)",
                count=int(missing.sum()),
            )
            if no_levels.any():
                r.add(
                    "buildings",
                    "warning",
                    "levels_assumed",
                    f"{int(no_levels.sum())} residential buildings have no levels; "
                    f"{self.default_levels:g} levels were assumed for the estimate (give levels "
                    "for better numbers)",
                    count=int(no_levels.sum()),
                    ids=blds.loc[no_levels, "building_id"],
                )
        blds["households"] = blds["households"].astype(np.int64)
        return blds.drop(columns=helpers)

    def _estimate_above_host(self, nested: gpd.GeoDataFrame, blds: gpd.GeoDataFrame) -> np.ndarray:
        """Households of buildings standing on a larger one: only their levels above it count."""

        def levels(frame: gpd.GeoDataFrame) -> np.ndarray:
            lv = pd.to_numeric(frame["levels"], errors="coerce").to_numpy(dtype=float)
            return np.where(lv > 0, lv, self.default_levels)

        host = pd.Index(blds["building_id"]).get_indexer(nested["nested_in"].to_numpy())
        above = np.clip(levels(nested) - levels(blds)[host], 0.0, None)
        est = np.floor(above * nested.geometry.area.to_numpy() / self.unit_area + 0.5)
        return np.where(nested["use"].to_numpy() == "residential", est, 0.0)

    def _staff(self, staff: gpd.GeoDataFrame, blds: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        r = self.report
        staff = _copy(staff)
        for col in ("name", "phone", "home_building_id"):
            staff[col] = _as_str_or_none(staff[col])
        staff["can_be_chief"], bad = _as_bool(staff["can_be_chief"])
        if bad:
            r.add(
                "staff",
                "warning",
                "unreadable_can_be_chief",
                f"{bad} staff have an unreadable can_be_chief value; taken as False",
                count=bad,
            )
        if "max_posts" in staff:
            staff = _numeric("staff", staff, "max_posts", "staff_id", r, negative="missing")
            staff["max_posts"] = staff["max_posts"].fillna(1).astype(np.int64)
        else:
            staff["max_posts"] = np.int64(1)
        for col in ("current_grid", "current_role"):
            staff[col] = _as_str_or_none(staff[col]) if col in staff else None
        role = staff["current_role"]
        bad_role = role.notna() & ~role.isin(["chief", "worker"])
        if bad_role.any():
            r.add(
                "staff",
                "repaired",
                "unknown_role",
                f"{int(bad_role.sum())} staff have a current_role other than chief/worker; "
                "treated as not serving",
                count=int(bad_role.sum()),
                ids=staff.loc[bad_role, "staff_id"],
            )
            staff.loc[bad_role, "current_role"] = None
        known = staff["home_building_id"].isin(set(blds["building_id"])).to_numpy()
        named = staff["home_building_id"].notna().to_numpy()
        has_point = ~np.asarray(shapely.is_missing(staff.geometry.values))
        unknown = named & ~known
        if unknown.any():
            r.add(
                "staff",
                "warning",
                "unknown_home_building",
                f"{int(unknown.sum())} staff name a home_building_id that is not among the "
                "buildings" + ("; their home point is used" if has_point[unknown].all() else ""),
                count=int(unknown.sum()),
                ids=staff.loc[unknown, "staff_id"],
            )
            staff.loc[unknown, "home_building_id"] = None
        placeable = known & ~has_point
        if placeable.any():
            rep = pd.Series(blds.geometry.representative_point().values, index=blds["building_id"])
            geoms = staff.geometry.values.copy()
            geoms[placeable] = rep.loc[staff["home_building_id"].to_numpy()[placeable]].to_numpy()
            staff = staff.set_geometry(gpd.GeoSeries(geoms, index=staff.index, crs=staff.crs))
        homeless = ~known & ~has_point
        if homeless.any():
            r.add(
                "staff",
                "rejected",
                "no_home",
                f"{int(homeless.sum())} staff have neither a known home building nor a home point "
                "and were left out (the chief must live in the grid); give home_building_id or "
                "coordinates",
                count=int(homeless.sum()),
                ids=staff.loc[homeless, "staff_id"],
            )
            staff = staff[~homeless]
        return staff

    def _lines(self, name: str, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        gdf = _copy(gdf)
        for col in OPTIONAL_COLUMNS[name]:
            gdf[col] = _as_str_or_none(gdf[col])
        polys = np.isin(shapely.get_type_id(gdf.geometry.values), [3, 6])
        if polys.any():
            geoms = gdf.geometry.values.copy()
            geoms[polys] = shapely.boundary(geoms[polys])
            gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))
            self.report.add(
                name,
                "info",
                "polygon_outlines",
                f"{int(polys.sum())} {name} polygons are used by their outlines",
                count=int(polys.sum()),
            )
        return gdf.reset_index(drop=True)


def _derived_message(comms: gpd.GeoDataFrame) -> str:
    """Word the warning for communities made by :func:`gridmap.areas.derive_communities`."""
    info = comms.attrs.get(DERIVED_ATTR)
    info = info if isinstance(info, dict) else {}
    what = (
        "the community is a derived stand-in"
        if len(comms) == 1
        else f"the {len(comms)} communities are derived stand-ins"
    )
    text = (
        f"{what}, not official 社区 boundaries: blocks cut by the main roads and barriers, merged"
    )
    floor = info.get("min_households")
    households = list((info.get("households") or {}).values())
    if floor is not None:
        text += f" until each holds at least {int(floor):,} households"
    if households:
        text += f" ({min(households):,}–{max(households):,} households each"
        below = sum(1 for h in households if floor is not None and h < floor)
        if below:
            text += f"; {below} below it, cut off by water, a district border or the area's edge"
        text += ")"
    return (
        text + "; grid codes fall back to their ids. Replace them with the real boundaries "
        "from the street office when you have them"
    )


def _crs_label(crs: pyproj.CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} ({crs.name})" if epsg else crs.name


def _choose_crs(layers: Mapping[str, gpd.GeoDataFrame]) -> pyproj.CRS:
    """Pick the local projected CRS for the area of the communities (else buildings)."""
    from gridmap.crs import local_crs

    for name in ("communities", "buildings"):
        gdf = layers.get(name)
        if gdf is not None and len(gdf):
            if gdf.crs.is_projected:
                return gdf.crs
            return local_crs(gdf)
    raise LayerError("no layer with geometry to choose a CRS from")


def check_layers(
    raw: Mapping[str, gpd.GeoDataFrame | None],
    *,
    assume_crs: Any = None,
    target_crs: Any = None,
    reproject: bool = False,
    unit_area: float = 90.0,
    default_levels: float = 6.0,
    snap_tolerance: float = 30.0,
    overlap_tolerance: float = 1.0,
) -> tuple[Layers | None, ValidationReport]:
    """Validate raw layers and return ``(layers or None, report)`` without raising.

    The same checks as :func:`validate_layers`; ``layers`` is None when the
    report has errors. Use this to show a report (``gridmap validate``).
    """
    v = Validator(
        raw,
        assume_crs=assume_crs,
        target_crs=target_crs,
        reproject=reproject,
        unit_area=unit_area,
        default_levels=default_levels,
        snap_tolerance=snap_tolerance,
        overlap_tolerance=overlap_tolerance,
    )
    layers = v.run()
    for f in v.report.findings:
        if f.severity in ("error", "rejected"):
            logger.info("validation %s: %s: %s", f.severity, f.layer, f.code)
    return layers, v.report


def validate_layers(
    raw: Mapping[str, gpd.GeoDataFrame | None],
    *,
    assume_crs: Any = None,
    target_crs: Any = None,
    reproject: bool = False,
    unit_area: float = 90.0,
    default_levels: float = 6.0,
    snap_tolerance: float = 30.0,
    overlap_tolerance: float = 1.0,
) -> tuple[Layers, ValidationReport]:
    """Validate and normalise raw canonical layers into a :class:`Layers` bundle.

    Every row is either kept (possibly repaired) or listed in the report as
    rejected; nothing is dropped silently. Layers are brought to one projected
    CRS: ``target_crs`` if given, else the CGCS2000 3° Gauss-Krüger zone of the
    area (see :func:`gridmap.crs.local_crs`).

    Parameters
    ----------
    raw : mapping of str to GeoDataFrame
        Layers by canonical name (see :data:`LAYER_NAMES`), as read by
        :func:`gridmap.io.read_layers`.
    assume_crs : CRS-like, optional
        CRS for layers that come without one. Without it, a layer without CRS
        is an error.
    target_crs : CRS-like, optional
        Projected CRS (metres) to bring the layers to.
    reproject : bool, default False
        Accept layers in different CRSs and reproject them (otherwise an error).
    unit_area : float, default 90.0
        m² of floor per household when households are estimated.
    default_levels : float, default 6.0
        Levels assumed for residential buildings without ``levels``.
    snap_tolerance : float, default 30.0
        Households outside every building join the nearest building within
        this many metres.
    overlap_tolerance : float, default 1.0
        Community overlaps up to this many m² are tolerated (digitising noise).

    Returns
    -------
    layers : Layers
    report : ValidationReport

    Raises
    ------
    ValidationError
        When a finding of severity ``error`` stops the layers from being used;
        ``exc.report`` holds the whole report.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> comms = gpd.GeoDataFrame({"community_id": ["C1"]},
    ...                          geometry=[shapely.box(0, 0, 100, 100)], crs=4549)
    >>> blds = gpd.GeoDataFrame({"building_id": [1, 2], "households": [120, None],
    ...                          "levels": [None, 6], "use": ["residential"] * 2},
    ...                         geometry=[shapely.box(10, 10, 40, 30),
    ...                                   shapely.box(60, 60, 90, 75)], crs=4549)
    >>> layers, report = validate_layers({"communities": comms, "buildings": blds})
    >>> layers.buildings[["building_id", "households", "households_estimated"]]
      building_id  households  households_estimated
    0           1         120                 False
    1           2          30                  True
    >>> report.ok
    True
    """
    layers, report = check_layers(
        raw,
        assume_crs=assume_crs,
        target_crs=target_crs,
        reproject=reproject,
        unit_area=unit_area,
        default_levels=default_levels,
        snap_tolerance=snap_tolerance,
        overlap_tolerance=overlap_tolerance,
    )
    if layers is None:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more errors)" if len(report.errors) > 1 else ""
        raise ValidationError(f"{first.layer}: {first.message}{more}", report=report)
    return layers, report


def validate_staff(
    staff: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    crs: Any,
    assume_crs: Any = None,
) -> tuple[gpd.GeoDataFrame, ValidationReport]:
    """Validate a staff roster on its own, against known buildings (e.g. a plan's).

    Parameters
    ----------
    staff : geopandas.GeoDataFrame
        Raw staff layer (``staff_id``; home as ``home_building_id`` or a point).
    buildings : geopandas.GeoDataFrame
        Buildings with ``building_id`` and footprints, to place homes given by id.
    crs : CRS-like
        Projected CRS to bring the staff to (the plan's).
    assume_crs : CRS-like, optional
        CRS of staff points that come without one.

    Returns
    -------
    staff : geopandas.GeoDataFrame
    report : ValidationReport

    Raises
    ------
    ValidationError
        When the roster cannot be used; ``exc.report`` holds every finding.
    """
    v = Validator(
        {"staff": staff},
        assume_crs=assume_crs,
        target_crs=crs,
        reproject=True,
        unit_area=90.0,
        default_levels=6.0,
        snap_tolerance=30.0,
        overlap_tolerance=1.0,
    )
    out = v.staff_only(buildings)
    if out is None:
        first = v.report.errors[0]
        raise ValidationError(f"{first.layer}: {first.message}", report=v.report)
    return out, v.report
