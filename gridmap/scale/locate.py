"""Batch re-location: every point of a large file to its grid, partition by partition.

:func:`locate_dataset` cuts a GeoParquet (row groups) or CSV file (byte blocks
cut at line ends) into partitions, locates each partition with the rules of
:meth:`gridmap.locate.GridIndex.locate_lonlat` (covering grid, the smallest code
on shared edges, the nearest grid outside), and writes one GeoParquet file per
partition into a folder. On a Dask cluster the grids are sent once to every
worker and each worker process builds its :class:`~gridmap.locate.GridIndex`
once (cached by a digest of the grids); without a scheduler the same function
runs here, one partition after the other. A partition goes from Parquet to
Parquet through Arrow arrays (no pandas object columns, WKB points built from
the coordinates): beside :meth:`GridIndex.locate` itself, reading, checking and
writing cost about a tenth of the work.

A bad row (NaN, text, out of range, lat/lon swapped, not projectable) gets an
``error`` and no grid; the other rows are located. Rows are numbered as a
spreadsheet shows them: ``line`` is the CSV line (the header is line 1), or the
1-based row of a Parquet dataset.

CSV values that span several lines (quoted line breaks) are not supported: the
blocks are cut at line ends.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyproj
import shapely

from gridmap.crs import CRSSpec, parse_crs, to_wgs84, transform
from gridmap.errors import CRSError, InputError, LayerError
from gridmap.locate import LOCATE_COLUMNS, GridIndex
from gridmap.scale.cluster import ClusterProgress, attempts_on_scheduler, cluster_client
from gridmap.tables import normalise_header

__all__ = ["LocateSummary", "locate_dataset", "locate_partition"]

_LON_NAMES = ("lon", "lng", "longitude", "x", "经度")
_LAT_NAMES = ("lat", "latitude", "y", "纬度")
_OUT_EXTRA = ("line", "error")
_MAX_ERRORS = 1_000  # bad rows listed in the summary (every one is in the output)


@dataclass(frozen=True)
class _Piece:
    """One partition of the points: a Parquet file's row groups or a CSV byte range."""

    index: int
    path: str
    kind: str  # "parquet" | "csv"
    first_line: int  # line (CSV) or 1-based row (Parquet) of its first row
    row_groups: tuple[int, ...] = ()
    start: int = 0
    end: int = 0
    rows: int = 0


@dataclass(frozen=True)
class _Source:
    """What every partition needs to read its points."""

    kind: str
    lon: str | None  # coordinate columns; None: the GeoParquet geometry
    lat: str | None
    crs: str  # CRS of the coordinates (as parse_crs accepts it)
    header: tuple[str, ...] = ()  # CSV: column names
    encoding: str = "utf-8"
    geometry: str | None = None


@dataclass
class LocateSummary:
    """What :func:`locate_dataset` did.

    Attributes
    ----------
    out_path : pathlib.Path
        The folder of GeoParquet files (``part-00000.parquet``, …).
    points : int
        Rows read.
    inside : int
        Rows located in a grid (covering, or within the tolerance of one).
    outside : int
        Valid rows farther than the tolerance from every grid (``nearest_grid`` set).
    errors : int
        Bad rows (``error`` set, no grid).
    error_rows : list of (int, str)
        ``(line, message)`` of the first 1,000 bad rows, in line order.
    partitions : int
        Partitions (output files).
    retried : int
        Partitions run more than once on the cluster.
    """

    out_path: Path
    points: int = 0
    inside: int = 0
    outside: int = 0
    errors: int = 0
    error_rows: list[tuple[int, str]] = field(default_factory=list)
    partitions: int = 0
    retried: int = 0


# --------------------------------------------------------------------------- the index, once


_INDEXES: dict[str, GridIndex] = {}
_INDEX_LOCK = threading.Lock()


def _digest(grids: gpd.GeoDataFrame, tolerance: float) -> str:
    h = hashlib.sha256()
    h.update(pyproj.CRS(grids.crs).to_wkt().encode())
    h.update(repr(float(tolerance)).encode())
    h.update("\x00".join(grids["grid_code"].astype(str)).encode())
    for wkb in shapely.to_wkb(np.asarray(grids.geometry.array, dtype=object)):
        h.update(wkb)
    return h.hexdigest()


def _index(grids: gpd.GeoDataFrame, digest: str, tolerance: float) -> GridIndex:
    """Return the process's index of these grids, built at the first partition needing it.

    Thread safety: built under a lock, then only queried; :class:`GridIndex`
    leases prepared polygons per call, so worker threads may share it.
    """
    with _INDEX_LOCK:
        index = _INDEXES.get(digest)
        if index is None:
            if len(_INDEXES) >= 2:  # a long-lived worker keeps the latest plans only
                _INDEXES.clear()
            index = GridIndex(grids, tolerance=tolerance)
            _INDEXES[digest] = index
        return index


# --------------------------------------------------------------------------- reading


def _find(columns: list[str], wanted: str, aliases: tuple[str, ...]) -> str | None:
    if wanted in columns:
        return wanted
    norm = {normalise_header(c): c for c in columns}
    for name in (wanted, *aliases):
        hit = norm.get(normalise_header(name))
        if hit is not None:
            return hit
    return None


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(
        p
        for p in path.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(path).parts)
    )
    if not files:
        raise InputError(f"{path} holds no .parquet files; pass a GeoParquet file, folder or CSV")
    return files


def _plan(
    path: Path, *, crs: Any, lon: str, lat: str, rows_per_partition: int, block_bytes: int
) -> tuple[_Source, list[_Piece]]:
    """Cut the points into partitions (reads only metadata, or counts CSV lines)."""
    if not path.exists():
        raise InputError(f"{path} does not exist; pass a GeoParquet file or folder, or a CSV")
    is_csv = path.is_file() and path.suffix.lower() in (".csv", ".txt")
    if is_csv:
        return _plan_csv(path, crs=crs, lon=lon, lat=lat, block_bytes=block_bytes)
    files = _parquet_files(path)
    first = pq.ParquetFile(files[0])
    columns = list(first.schema_arrow.names)
    lon_c, lat_c = _find(columns, lon, _LON_NAMES), _find(columns, lat, _LAT_NAMES)
    geom_col = None
    src_crs = parse_crs(crs)
    if lon_c is None or lat_c is None:
        meta = first.schema_arrow.metadata or {}
        geo = meta.get(b"geo")
        if geo is None:
            raise LayerError(
                f"{path} has no {lon!r}/{lat!r} columns and no GeoParquet geometry; its "
                f"columns: {columns}. Name the coordinate columns with lon=..., lat=..."
            )
        import json

        info = json.loads(geo)
        geom_col = info["primary_column"]
        col = info["columns"][geom_col]
        file_crs = pyproj.CRS.from_user_input(col["crs"]) if col.get("crs") else None
        if file_crs is None:
            file_crs = pyproj.CRS.from_epsg(4326)
        if not file_crs.is_geographic:
            # projected points: their own CRS; a different explicit one is a mismatch
            if (
                not (src_crs.is_geographic and src_crs.kind == "pyproj")
                and pyproj.CRS(src_crs.to_pyproj()) != file_crs
            ):
                raise CRSError(
                    f"{path} holds points in {file_crs.name} but crs={crs!r} was given; "
                    "leave crs at its default or pass the file's CRS"
                )
            crs = f"EPSG:{file_crs.to_epsg()}" if file_crs.to_epsg() else file_crs.to_wkt()
        # geographic files: GCJ-02/BD-09 lon/lat are stored as EPSG:4326; `crs` says which
    source = _Source(
        kind="parquet",
        lon=None if geom_col else lon_c,
        lat=None if geom_col else lat_c,
        crs=_crs_text(crs),
        geometry=geom_col,
    )
    pieces: list[_Piece] = []
    offset = 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        group: list[int] = []
        rows = 0
        first_row = offset
        for rg in range(meta.num_row_groups):
            n = meta.row_group(rg).num_rows
            group.append(rg)
            rows += n
            offset += n
            if rows >= rows_per_partition:
                pieces.append(_Piece(len(pieces), str(f), "parquet", first_row + 1, tuple(group)))
                group, rows, first_row = [], 0, offset
        if group:
            pieces.append(_Piece(len(pieces), str(f), "parquet", first_row + 1, tuple(group)))
    return source, pieces


def _crs_text(crs: Any) -> str:
    spec = parse_crs(crs)
    if spec.kind == "pyproj":
        p = spec.to_pyproj()
        return f"EPSG:{p.to_epsg()}" if p.to_epsg() else p.to_wkt()
    return spec.kind


def _plan_csv(
    path: Path, *, crs: Any, lon: str, lat: str, block_bytes: int
) -> tuple[_Source, list[_Piece]]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.readline()
        enc, text = "gb18030", ""
        for name in ("utf-8-sig", "gb18030"):
            try:
                text, enc = head.decode(name), name
                break
            except UnicodeDecodeError:
                continue
        if not text.strip():
            raise InputError(f"{path} is empty; the first line must hold the column names")
        columns = [str(c) for c in pd.read_csv(io.StringIO(text), nrows=0).columns]
        lon_c, lat_c = _find(columns, lon, _LON_NAMES), _find(columns, lat, _LAT_NAMES)
        if lon_c is None or lat_c is None:
            raise LayerError(
                f"{path} has no lon/lat columns (looked for {lon!r}, {lat!r}, "
                f"{'/'.join(_LON_NAMES)}, {'/'.join(_LAT_NAMES)}); its columns: {columns}. "
                "Pass lon=..., lat=..."
            )
        pieces: list[_Piece] = []
        start = fh.tell()
        line = 2  # the first data line
        while start < size:
            fh.seek(min(start + block_bytes, size))
            if fh.tell() < size:
                fh.readline()  # to the end of the line
            end = min(fh.tell(), size)
            fh.seek(start)
            n_lines = _count_lines(fh, end - start)
            pieces.append(_Piece(len(pieces), str(path), "csv", line, (), start, end, n_lines))
            line += n_lines
            start = end
    enc_name = "utf-8" if enc == "utf-8-sig" else enc
    return (
        _Source("csv", lon_c, lat_c, _crs_text(crs), tuple(map(str, columns)), enc_name),
        pieces,
    )


def _count_lines(fh: Any, n: int) -> int:
    count = 0
    last = b"\n"
    while n > 0:
        chunk = fh.read(min(n, 1 << 24))
        if not chunk:
            break
        count += chunk.count(b"\n")
        last = chunk[-1:]
        n -= len(chunk)
    return count + (0 if last == b"\n" else 1)


def _numbers(column: Any) -> np.ndarray:
    """Return a column as float64, NaN where missing or not a number (text is parsed)."""
    if isinstance(column, pa.ChunkedArray | pa.Array):
        if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
            filled = pc.fill_null(pc.cast(column, pa.float64()), np.nan)
            return np.asarray(filled.to_numpy(), dtype=np.float64)
        column = column.to_pandas()
    return np.asarray(pd.to_numeric(column, errors="coerce"), dtype=np.float64)


_WKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


def _point_xy(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Return x and y of a WKB point column (NaN for missing or empty points)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    if pa.types.is_binary(arr.type) and arr.null_count == 0 and n:
        # fast path: little-endian 2-D points only, read straight from the buffers
        offsets = np.frombuffer(
            arr.buffers()[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4
        )
        if (np.diff(offsets) == _WKB_POINT.itemsize).all():
            raw = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
            rec = raw[offsets[0] : offsets[-1]].view(_WKB_POINT)
            if (rec["order"] == 1).all() and (rec["type"] == 1).all():
                return rec["x"].astype(np.float64), rec["y"].astype(np.float64)
    geo = shapely.from_wkb(arr.to_numpy(zero_copy_only=False))
    empty = shapely.is_missing(geo) | shapely.is_empty(geo)
    x = np.where(empty, np.nan, shapely.get_x(np.where(empty, None, geo)))
    y = np.where(empty, np.nan, shapely.get_y(np.where(empty, None, geo)))
    return x.astype(np.float64), y.astype(np.float64)


def _read(piece: _Piece, source: _Source) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    """Return a partition's other columns, its x/lon and y/lat (NaN where unreadable), lines."""
    if piece.kind == "parquet":
        table = pq.ParquetFile(piece.path).read_row_groups(list(piece.row_groups))
        if source.geometry is not None:
            x, y = _point_xy(table.column(source.geometry))
            table = table.drop_columns([source.geometry])
        else:
            x, y = _numbers(table.column(source.lon)), _numbers(table.column(source.lat))
        table = table.replace_schema_metadata(None)
        lines = piece.first_line + np.arange(table.num_rows, dtype=np.int64)
        return table, x, y, lines
    with open(piece.path, "rb") as fh:
        fh.seek(piece.start)
        raw = fh.read(piece.end - piece.start)
    kw: dict[str, Any] = {
        "header": None,
        "names": list(source.header),
        "encoding": source.encoding,
        "skip_blank_lines": False,
        "keep_default_na": False,
        "index_col": False,
    }
    try:  # fast path: numbers where they should be
        dtypes = {c: str for c in source.header}
        dtypes.update({source.lon: np.float64, source.lat: np.float64})  # type: ignore[dict-item]
        frame = pd.read_csv(io.BytesIO(raw), dtype=dtypes, na_values=[""], **kw)
    except (ValueError, TypeError):
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, **kw)
    lines = piece.first_line + np.arange(len(frame), dtype=np.int64)
    blank = frame.isna().all(axis=1).to_numpy() | (frame == "").all(axis=1).to_numpy()
    if blank.any():  # empty lines are not rows (as the table reader)
        frame, lines = frame[~blank].reset_index(drop=True), lines[~blank]
    x, y = _numbers(frame[source.lon]), _numbers(frame[source.lat])
    table = pa.table(
        {c: pa.array(frame[c].astype(object).to_numpy(), from_pandas=True) for c in frame.columns}
    )
    return table, x, y, lines


# --------------------------------------------------------------------------- answering


def _row_errors(x: np.ndarray, y: np.ndarray, spec: CRSSpec) -> np.ndarray:
    """One message per row (None when valid): NaN or text, out of range, swapped."""
    out = np.full(len(x), None, dtype=object)
    finite = np.isfinite(x) & np.isfinite(y)
    out[~finite] = "coordinate is missing, not a number or infinite; give numbers for lon and lat"
    if spec.is_geographic:
        with np.errstate(invalid="ignore"):
            lat_bad = finite & (np.abs(y) > 90)
            lon_bad = finite & (np.abs(x) > 180) & ~lat_bad
            swappable = (np.abs(x) <= 90) & (np.abs(y) <= 180)
        for i in np.flatnonzero(lat_bad):
            out[i] = f"latitude {float(y[i])!r} is out of [-90, 90]" + (
                "; looks like lat/lon are swapped: put lon first"
                if swappable[i]
                else "; are these projected metres? then pass their EPSG code as crs"
            )
        for i in np.flatnonzero(lon_bad):
            out[i] = (
                f"longitude {float(x[i])!r} is out of [-180, 180]; are these projected metres? "
                "then pass their EPSG code as crs"
            )
    return out


def locate_partition(
    piece: _Piece,
    source: _Source,
    grids: gpd.GeoDataFrame,
    digest: str,
    tolerance: float,
    out_dir: str,
    threads: int = 1,
) -> dict[str, Any]:
    """Locate one partition and write its GeoParquet file (runs on a worker).

    Returns
    -------
    dict
        ``points``, ``inside``, ``outside``, ``errors`` and the first bad rows.
    """
    index = _index(grids, digest, tolerance)
    spec = parse_crs(source.crs)
    table, x, y, lines = _read(piece, source)
    n = table.num_rows
    error = _row_errors(x, y, spec)
    valid = pd.isna(error)
    ok = np.flatnonzero(valid)
    # what GridIndex.locate_lonlat does, on the valid rows: to WGS84 (GCJ-02/BD-09
    # de-offset), then to the grids' CRS, then GridIndex.locate
    if len(ok) == n:  # the common case: every row valid, no copies
        px, py = transform(x, y, spec, index.crs, validate=False)
        px, py = np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)
        if spec.kind in ("wgs84", "cgcs2000"):
            wx, wy = x, y
        else:
            wx, wy = (np.asarray(v, dtype=np.float64) for v in to_wgs84(x, y, spec))
    else:
        wx, wy = np.full(n, np.nan), np.full(n, np.nan)
        px, py = np.full(n, np.nan), np.full(n, np.nan)
        if len(ok):
            px[ok], py[ok] = transform(x[ok], y[ok], spec, index.crs, validate=False)
            if spec.kind in ("wgs84", "cgcs2000"):
                wx[ok], wy[ok] = x[ok], y[ok]
            else:
                wx[ok], wy[ok] = to_wgs84(x[ok], y[ok], spec)
    projected = np.isfinite(px) & np.isfinite(py)
    lost = ok[~projected[ok]]
    if len(lost):
        error[lost] = (
            f"cannot be projected into the grids' CRS ({index.crs.name}); check the "
            "coordinates and crs"
        )
        valid = pd.isna(error)
        ok = np.flatnonzero(valid)
    ans = (
        index.locate(px, py, threads=threads)
        if len(ok) == n
        else index.locate(px[ok], py[ok], threads=threads)
        if len(ok)
        else None
    )
    cols = _answer_arrays(ans, ok, n)
    names = table.column_names
    arrays: list[Any] = [pa.array(lines, type=pa.int64())]
    fields = ["line"]
    for c in names:
        fields.append(f"input_{c}" if c in LOCATE_COLUMNS or c in _OUT_EXTRA + ("geometry",) else c)
        # coordinates as numbers in every file (NaN where the row had none)
        if c == source.lon:
            arrays.append(pa.array(x, type=pa.float64()))
        elif c == source.lat:
            arrays.append(pa.array(y, type=pa.float64()))
        else:
            arrays.append(table.column(c))
    for c in LOCATE_COLUMNS:
        fields.append(c)
        arrays.append(cols[c])
    fields.append("error")
    arrays.append(pa.array(error, type=pa.string(), from_pandas=True))
    geometry, bbox = _wkb_points(wx, wy)
    fields.append("geometry")
    arrays.append(geometry)
    out = pa.table(arrays, names=fields)
    out = out.replace_schema_metadata({b"geo": _geo_metadata(bbox)})
    path = Path(out_dir) / f"part-{piece.index:05d}.parquet"
    # dictionary pages only where values repeat (grid codes, messages): trying them on
    # coordinates and distances costs time for nothing
    pq.write_table(_typed(out), path, use_dictionary=_DICTIONARY, write_statistics=_STATISTICS)
    n_in = n - cols["grid_code"].null_count
    bad = np.flatnonzero(~valid)
    return {
        "points": n,
        "inside": n_in,
        "outside": len(ok) - n_in,
        "errors": len(bad),
        "error_rows": [(int(lines[i]), str(error[i])) for i in bad[:_MAX_ERRORS]],
    }


def _answer_arrays(ans: pd.DataFrame | None, ok: np.ndarray, n: int) -> dict[str, pa.Array]:
    """Return the :meth:`GridIndex.locate` columns as Arrow arrays (bad rows: empty answers)."""
    out: dict[str, pa.Array] = {}
    if ans is not None and len(ok) == n:  # every row answered: no scatter
        for c in LOCATE_COLUMNS:
            out[c] = pa.array(ans[c].to_numpy(), type=_TYPES[c], from_pandas=True)
        return out
    cols = {
        "grid_code": np.full(n, None, dtype=object),
        "inside": np.zeros(n, dtype=bool),
        "on_boundary": np.zeros(n, dtype=bool),
        "candidates": np.empty(n, dtype=object),
        "distance_to_boundary": np.full(n, np.nan),
        "nearest_grid": np.full(n, None, dtype=object),
        "nearest_distance": np.full(n, np.nan),
    }
    if ans is not None:
        for c in LOCATE_COLUMNS:
            cols[c][ok] = ans[c].to_numpy()
    mask = np.ones(n, dtype=bool)
    mask[ok] = False
    bad = np.flatnonzero(mask)
    if len(bad):
        cols["candidates"][bad] = [[] for _ in range(len(bad))]
    for c in LOCATE_COLUMNS:
        out[c] = pa.array(cols[c], type=_TYPES[c], from_pandas=True)
    return out


def _wkb_points(x: np.ndarray, y: np.ndarray) -> tuple[pa.Array, list[float]]:
    """Little-endian WKB points as an Arrow binary array (null where x or y is not finite).

    Written from the coordinate arrays directly (no shapely objects): a point's
    WKB is 21 bytes, byte order, type 1, x, y. Also returns the bounding box.
    """
    n = len(x)
    rec = np.empty(n, dtype=_WKB_POINT)
    rec["order"] = 1
    rec["type"] = 1
    rec["x"] = x
    rec["y"] = y
    finite = np.isfinite(x) & np.isfinite(y)
    offsets = np.arange(0, _WKB_POINT.itemsize * (n + 1), _WKB_POINT.itemsize, dtype=np.int32)
    if finite.all():
        validity = None
        nulls = 0
    else:
        validity = pa.py_buffer(np.packbits(finite, bitorder="little"))
        nulls = int(n - finite.sum())
    arr = pa.BinaryArray.from_buffers(
        pa.binary(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(rec)], null_count=nulls
    )
    if finite.any():
        fx, fy = x[finite], y[finite]
        bbox = [float(fx.min()), float(fy.min()), float(fx.max()), float(fy.max())]
    else:
        bbox = []
    return arr, bbox


_WGS84_PROJJSON: dict[str, Any] = {}


def _geo_metadata(bbox: list[float]) -> bytes:
    """GeoParquet 1.1 metadata of the WGS84 point column (as geopandas writes it)."""
    import json

    if not _WGS84_PROJJSON:
        _WGS84_PROJJSON.update(pyproj.CRS.from_epsg(4326).to_json_dict())
    column: dict[str, Any] = {
        "encoding": "WKB",
        "crs": _WGS84_PROJJSON,
        "geometry_types": ["Point"],
    }
    if bbox:
        column["bbox"] = bbox
    meta = {"primary_column": "geometry", "columns": {"geometry": column}, "version": "1.1.0"}
    return json.dumps(meta).encode()


_DICTIONARY = ["grid_code", "nearest_grid", "candidates", "error"]
_STATISTICS = ["line", "grid_code", "nearest_grid", "distance_to_boundary", "nearest_distance"]

_TYPES = {
    "line": pa.int64(),
    "grid_code": pa.string(),
    "inside": pa.bool_(),
    "on_boundary": pa.bool_(),
    "candidates": pa.list_(pa.string()),
    "distance_to_boundary": pa.float64(),
    "nearest_grid": pa.string(),
    "nearest_distance": pa.float64(),
    "error": pa.string(),
}


def _typed(table: pa.Table) -> pa.Table:
    """Give the answer columns one type in every file (a file of only bad rows has no codes)."""
    fields = []
    for f in table.schema:
        t = _TYPES.get(f.name)
        if t is None and pa.types.is_null(f.type):
            t = pa.string()
        if t is None and pa.types.is_large_string(f.type):
            t = pa.string()
        fields.append(f.with_type(t) if t is not None else f)
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


# --------------------------------------------------------------------------- entry point


def _grids_of(plan_or_grids: Any) -> gpd.GeoDataFrame:
    if isinstance(plan_or_grids, str | os.PathLike):
        from gridmap.io import read_plan

        plan_or_grids = read_plan(plan_or_grids)
    grids = getattr(plan_or_grids, "grids", plan_or_grids)
    if not isinstance(grids, gpd.GeoDataFrame) or "grid_code" not in grids.columns:
        raise LayerError(
            "plan_or_grids must be a Plan, a grids GeoDataFrame with grid_code, or a plan file"
        )
    # only what the index needs travels to the workers
    return gpd.GeoDataFrame(
        {"grid_code": grids["grid_code"].to_numpy()},
        geometry=np.asarray(grids.geometry.array, dtype=object),
        crs=grids.crs,
    )


def locate_dataset(
    points_path: str | os.PathLike[str],
    plan_or_grids: Any,
    out_path: str | os.PathLike[str],
    *,
    scheduler: Any = None,
    crs: Any = "wgs84",
    lon: str = "lon",
    lat: str = "lat",
    tolerance: float = 0.01,
    rows_per_partition: int = 1_000_000,
    block_bytes: int = 64 << 20,
    overwrite: bool = False,
    retries: int = 2,
    connect_timeout: float = 10.0,
    progress: Callable[[ClusterProgress], None] | None = None,
) -> LocateSummary:
    r"""Locate every point of a GeoParquet or CSV file and write the answers as GeoParquet.

    Parameters
    ----------
    points_path : path
        A GeoParquet/Parquet file or folder (lon/lat columns, or Point geometry),
        or a CSV (UTF-8 or GBK; headers lon/lng/经度…, lat/纬度…).
    plan_or_grids : Plan, GeoDataFrame or path
        The grids (``grid_code`` and polygons in a projected CRS), a plan, or a plan file.
    out_path : path
        A new folder; one ``part-NNNNN.parquet`` per partition, rows in input order:
        ``line``, the input's columns, the :meth:`GridIndex.locate` columns,
        ``error`` (None for located rows) and the point in WGS84.
    scheduler : str or distributed.Client, optional
        ``"local:N"``, ``"tcp://host:8786"`` or a client; None runs here.
    crs : str, int or pyproj.CRS, default "wgs84"
        CRS of the coordinates (``"gcj02"``, ``"bd09"``, ``"cgcs2000"``, EPSG
        codes). Projected GeoParquet points use their own CRS.
    lon, lat : str
        Coordinate columns (aliases such as 经度/纬度 are found too).
    tolerance : float, default 0.01
        As in :class:`GridIndex`.
    rows_per_partition : int, default 1,000,000
        Parquet row groups are grouped up to about this many rows per partition.
    block_bytes : int, default 64 MiB
        CSV partition size.
    overwrite : bool, default False
        Replace ``out_path`` if it exists.
    retries : int, default 2
        Times a failed partition is run again on the cluster.
    connect_timeout : float, default 10
        Seconds to reach a remote scheduler.
    progress : callable, optional
        Called with a :class:`ClusterProgress` (partitions) after each partition.

    Returns
    -------
    LocateSummary

    Raises
    ------
    InputError
        Missing file, no coordinate columns, ``out_path`` exists.
    SchedulerUnreachableError, WorkerVersionError
        See :func:`gridmap.scale.cluster_client` (nothing is written).

    Examples
    --------
    >>> import tempfile, geopandas as gpd, shapely
    >>> from gridmap.crs import from_wgs84
    >>> x0, y0 = from_wgs84(118.78, 32.05, 4549)
    >>> grids = gpd.GeoDataFrame({"grid_code": ["N1"]},
    ...     geometry=[shapely.box(x0, y0, x0 + 500, y0 + 500)], crs=4549)
    >>> d = tempfile.mkdtemp()
    >>> _ = open(d + "/p.csv", "w").write("id,经度,纬度\na,118.781,32.051\nb,32.05,118.78\n")
    >>> s = locate_dataset(d + "/p.csv", grids, d + "/out")
    >>> s.inside, s.error_rows[0][0], s.error_rows[0][1][-34:]
    (1, 3, 'lat/lon are swapped: put lon first')
    >>> gpd.read_parquet(d + "/out")[["line", "id", "grid_code"]].values.tolist()
    [[2, 'a', 'N1'], [3, 'b', nan]]
    """
    if rows_per_partition < 1 or block_bytes < 1:
        raise InputError("rows_per_partition and block_bytes must be >= 1")
    grids = _grids_of(plan_or_grids)
    GridIndex(grids.iloc[:1], tolerance=tolerance)  # the index's own guards, here and now
    source, pieces = _plan(
        Path(points_path),
        crs=crs,
        lon=lon,
        lat=lat,
        rows_per_partition=rows_per_partition,
        block_bytes=block_bytes,
    )
    out = Path(out_path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise InputError(f"{out} exists; pick a new folder or pass overwrite=True")
    digest = _digest(grids, tolerance)
    summary = LocateSummary(out_path=out, partitions=len(pieces))
    results: dict[int, dict[str, Any]] = {}

    def prepare() -> Path:
        tmp = out.with_name(f"{out.name}.partial-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        return tmp

    if scheduler is None:
        tmp = prepare()
        try:
            for k, piece in enumerate(pieces, start=1):
                results[piece.index] = locate_partition(
                    piece, source, grids, digest, tolerance, str(tmp), threads=2
                )
                if progress is not None:
                    progress(ClusterProgress(k, 0, 0, len(pieces)))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    else:
        with cluster_client(scheduler, connect_timeout=connect_timeout) as client:
            from distributed import as_completed

            tmp = prepare()
            try:
                shared = client.scatter(grids, broadcast=True, hash=False)
                token = uuid.uuid4().hex[:12]
                futures = {
                    client.submit(
                        locate_partition,
                        piece,
                        source,
                        shared,
                        digest,
                        tolerance,
                        str(tmp.resolve()),
                        key=f"gridmap-locate-{token}-{piece.index}",
                        retries=retries,
                        pure=False,
                    ): piece.index
                    for piece in pieces
                }
                done = retried = 0
                for fut in as_completed(list(futures)):
                    if fut.status == "error":
                        for f in futures:
                            f.cancel()
                        raise fut.exception()
                    results[futures[fut]] = fut.result()
                    done += 1
                    if attempts_on_scheduler(client, [fut.key], retries).get(fut.key, 0):
                        retried += 1
                    fut.release()
                    if progress is not None:
                        progress(ClusterProgress(done, 0, retried, len(pieces)))
                summary.retried = retried
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    for i in sorted(results):
        r = results[i]
        summary.points += r["points"]
        summary.inside += r["inside"]
        summary.outside += r["outside"]
        summary.errors += r["errors"]
        room = _MAX_ERRORS - len(summary.error_rows)
        if room > 0:
            summary.error_rows.extend(r["error_rows"][:room])
    return summary
