"""Bulk transfer between (Geo)DataFrames and the store.

Rows go in by ``COPY … FROM STDIN`` on PostgreSQL and ``executemany`` on SQLite,
with geometries encoded in one vectorised call (hex EWKB for PostGIS, WKB for
SQLite). Rows come out as plain tuples with geometries as WKB, decoded in one
vectorised :func:`shapely.from_wkb`. Column order and dtypes of a frame are kept
in a small JSON *schema* so that a stored frame comes back as it went in.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.partition.plan import jsonable

__all__ = [
    "jsonable",
    "dumps",
    "frame_schema",
    "restore_dtypes",
    "column_values",
    "extras_json",
    "encode_geoms",
    "encode_points",
    "decode_geoms",
    "geom_select",
    "bulk_insert",
    "bulk_insert_columns",
    "in_chunks",
    "rows_frame",
]


def dumps(value: Any) -> str:
    """Serialise :func:`jsonable` ``value`` to compact JSON text (Chinese kept as is).

    Examples
    --------
    >>> dumps({"name": "幸福社区"})
    '{"name":"幸福社区"}'
    """
    return json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"))


def frame_schema(frame: pd.DataFrame) -> list[list[str]]:
    """Return ``[[column, dtype], ...]`` of a frame, to restore it with :func:`restore_dtypes`.

    Examples
    --------
    >>> frame_schema(pd.DataFrame({"a": [1], "b": [0.5]}))
    [['a', 'int64'], ['b', 'float64']]
    """
    out = []
    for c, t in frame.dtypes.items():
        dtype = str(t)
        if dtype == "object":
            nulls = frame[c][frame[c].isna()]
            if len(nulls) and isinstance(nulls.iloc[0], float):
                dtype = "object[nan]"  # missing values were NaN, not None
        out.append([str(c), dtype])
    return out


def restore_dtypes(frame: pd.DataFrame, schema: Sequence[Sequence[str]]) -> pd.DataFrame:
    """Reorder ``frame`` to the columns of ``schema`` and cast each back to its dtype.

    Columns of the schema missing from the frame are added as nulls; a cast that
    fails keeps the column as it is (its values are still right).

    Examples
    --------
    >>> df = pd.DataFrame({"b": [1.0, None], "a": [1, 0]})
    >>> restore_dtypes(df, [["a", "bool"], ["b", "float64"]]).dtypes.tolist()
    [dtype('bool'), dtype('float64')]
    """
    out = {}
    for col, dtype in schema:
        s = frame[col] if col in frame.columns else pd.Series([None] * len(frame), dtype=object)
        if dtype == "object[nan]" or (dtype != "geometry" and str(s.dtype) != dtype):
            try:
                if dtype in ("object", "object[nan]"):
                    null = np.nan if dtype == "object[nan]" else None
                    s = s.astype(object).where(s.notna(), null)
                elif dtype.startswith("datetime64"):
                    s = pd.to_datetime(s).astype(dtype)  # type: ignore[call-overload]
                else:
                    s = s.astype(dtype)  # type: ignore[call-overload]
            except (TypeError, ValueError):
                pass
        out[col] = s.reset_index(drop=True)
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def column_values(frame: pd.DataFrame, column: str, kind: type | None = None) -> list[Any]:
    """Return a column as Python values with nulls as ``None`` (``[None]*n`` if absent).

    ``kind`` (``int``, ``float``, ``bool``, ``str``) coerces the non-null values.

    Examples
    --------
    >>> column_values(pd.DataFrame({"x": [1.5, float("nan")]}), "x")
    [1.5, None]
    >>> column_values(pd.DataFrame({"x": [1]}), "y")
    [None]
    """
    if column not in frame.columns:
        return [None] * len(frame)
    s = frame[column]
    values = s.astype(object).where(s.notna(), None).tolist()
    if kind is not None:
        values = [None if v is None else kind(v) for v in values]
    return values


def extras_json(frame: pd.DataFrame, columns: Sequence[str]) -> list[str | None]:
    """Return one JSON object per row with the values of ``columns`` (``None`` when empty).

    Examples
    --------
    >>> extras_json(pd.DataFrame({"floor_area": [120.0, None]}), ["floor_area"])
    ['{"floor_area":120.0}', None]
    """
    if not columns:
        return [None] * len(frame)
    records = frame[list(columns)].astype(object).to_dict(orient="records")
    out: list[str | None] = []
    for rec in records:
        clean = {k: jsonable(v) for k, v in rec.items()}
        clean = {k: v for k, v in clean.items() if v is not None}
        out.append(dumps(clean) if clean else None)
    return out


def encode_geoms(geoms: Any, backend: str) -> list[Any]:
    """Encode WGS84 geometries for :func:`bulk_insert` (hex EWKB on PostGIS, WKB on SQLite).

    Examples
    --------
    >>> encode_geoms([shapely.Point(1, 2)], "postgresql")[0][:18]
    '0101000020E6100000'
    """
    arr = np.asarray(geoms, dtype=object)
    if backend == "postgresql":
        out = shapely.to_wkb(shapely.set_srid(arr, 4326), hex=True, include_srid=True)
    else:
        out = shapely.to_wkb(arr)
    return out.tolist()


def encode_points(x: np.ndarray, y: np.ndarray, backend: str) -> list[Any]:
    """Encode WGS84 points given by finite coordinates as :func:`encode_geoms` does.

    The bytes of each point are laid out by numpy (byte order, type, SRID on PostGIS,
    then x and y, in the machine's byte order as shapely writes them) and cut into one
    value per point: no geometry object is created (shapely took a second for a million
    points, most of it in creating the objects).

    Examples
    --------
    >>> x, y = np.array([118.78, -0.0]), np.array([32.04, 0.0])
    >>> encode_points(x, y, "sqlite") == encode_geoms(shapely.points(x, y), "sqlite")
    True
    >>> encode_points(x, y, "postgresql") == encode_geoms(shapely.points(x, y), "postgresql")
    True
    """
    ewkb = backend == "postgresql"
    fields = [("order", "u1"), ("type", "=u4")]
    fields += [("srid", "=u4")] if ewkb else []
    rows = np.empty(len(x), dtype=[*fields, ("x", "=f8"), ("y", "=f8")])
    rows["order"] = 1 if sys.byteorder == "little" else 0
    rows["type"] = 0x20000001 if ewkb else 1  # a point (with an SRID)
    if ewkb:
        rows["srid"] = 4326
    rows["x"], rows["y"] = x, y
    size = rows.itemsize
    if ewkb:  # hex text, as shapely writes it (upper case)
        text = rows.tobytes().hex().upper()
        return [text[i : i + 2 * size] for i in range(0, len(text), 2 * size)]
    data = rows.tobytes()
    return [data[i : i + size] for i in range(0, len(data), size)]


def decode_geoms(values: Sequence[Any]) -> np.ndarray:
    """Decode WKB values (bytes, memoryview or hex text; ``None`` stays missing).

    Examples
    --------
    >>> decode_geoms([shapely.to_wkb(shapely.Point(1, 2)), None])[0].wkt
    'POINT (1 2)'
    """
    vals = [bytes(v) if isinstance(v, memoryview) else v for v in values]
    return shapely.from_wkb(np.asarray(vals, dtype=object))


def geom_select(column: Any, backend: str) -> Any:
    """Return a select expression yielding ``column`` as plain WKB on either backend.

    Examples
    --------
    >>> from gridmap.db.models import GridRow
    >>> str(geom_select(GridRow.__table__.c.geom, "postgresql"))
    'ST_AsBinary(grids.geom)'
    """
    if backend == "postgresql":
        return sa.func.ST_AsBinary(column, type_=sa.LargeBinary).label(column.name)
    return sa.type_coerce(column, sa.LargeBinary).label(column.name)


def rows_frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    """Build a DataFrame from result rows, column by column (fast for millions of rows).

    Examples
    --------
    >>> rows_frame([(1, "a"), (2, None)], ["n", "s"]).to_dict("list")
    {'n': [1, 2], 's': ['a', None]}
    """
    cols = list(zip(*rows, strict=True)) if len(rows) else [()] * len(columns)
    return pd.DataFrame(
        {c: pd.Series(v, dtype=object) for c, v in zip(columns, cols, strict=True)},
        index=pd.RangeIndex(len(rows)),
    )


def in_chunks(values: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    """Yield ``values`` in slices of ``size`` (for ``IN`` lists).

    Examples
    --------
    >>> [list(c) for c in in_chunks([1, 2, 3], 2)]
    [[1, 2], [3]]
    """
    for i in range(0, len(values), size):
        yield values[i : i + size]


def bulk_insert(
    session: Session,
    table: sa.Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    chunk_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert pre-encoded rows into ``table`` within the session's transaction.

    PostgreSQL uses ``COPY … FROM STDIN`` (text format; geometries as hex EWKB,
    JSON as text); SQLite uses ``executemany``. Values must already be plain
    Python (``None`` for nulls, JSON as text, geometries from :func:`encode_geoms`).

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        An open session; the rows join its transaction.
    table : sqlalchemy.Table
        Target table.
    columns : sequence of str
        Database column names, in the order of each row.
    rows : iterable of sequences
        The rows.
    chunk_size : int
        Rows per batch (and per ``progress`` call).
    progress : callable, optional
        Called with the number of rows written so far after each batch.

    Returns
    -------
    int
        Number of rows written.
    """
    conn = session.connection()
    backend = conn.dialect.name
    n = 0
    if backend == "postgresql":
        raw = conn.connection.driver_connection
        cols = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
                    if progress is not None and n % chunk_size == 0:
                        progress(n)
    else:
        cols = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        stmt = f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})'
        # one prepared statement (the driver caches it) fed slices of the rows; the slices
        # are cut in C (islice), not appended row by row
        it = iter(rows)
        while batch := list(islice(it, chunk_size)):
            conn.exec_driver_sql(stmt, batch)
            n += len(batch)
            if progress is not None and len(batch) == chunk_size:
                progress(n)
    if progress is not None:
        progress(n)
    return n


def bulk_insert_columns(
    session: Session,
    table: sa.Table,
    columns: Mapping[str, Sequence[Any]],
    *,
    chunk_size: int = 100_000,
) -> int:
    """Insert pre-encoded values given column by column, like :func:`bulk_insert`.

    On PostgreSQL the columns become one Arrow table written as CSV by Arrow's C++ writer
    (strings quoted, nulls empty and unquoted, as ``COPY … (FORMAT csv)`` reads them) and
    copied in blocks of ``chunk_size`` rows: no Python call per row, where
    :func:`bulk_insert` writes each row through psycopg. Columns Arrow cannot type (mixed
    kinds of values) go row by row through :func:`bulk_insert`. On SQLite the rows are
    zipped into tuples for its ``executemany``.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        An open session; the rows join its transaction.
    table : sqlalchemy.Table
        Target table.
    columns : mapping of str to sequence
        Database column name → its values (plain Python, as for :func:`bulk_insert`),
        all of the same length. On PostgreSQL they may also be numpy arrays, pandas
        Series (tz-aware times are written in UTC) or Arrow arrays.

    Returns
    -------
    int
        Number of rows written.

    Examples
    --------
    >>> from gridmap.db import Store
    >>> from gridmap.db.models import CalendarDayRow, table
    >>> import datetime as dt
    >>> store = Store.from_url("sqlite://")
    >>> with store.session(write=True) as s:
    ...     bulk_insert_columns(s, table(CalendarDayRow), {
    ...         "date": [dt.date(2026, 10, 1)], "is_workday": [False],
    ...         "name": ["国庆节"], "source": ["test"]})
    1
    """
    names = list(columns)
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return bulk_insert(session, table, names, zip(*columns.values(), strict=True))
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        arrow = (pa.Array, pa.ChunkedArray)
        data = pa.table(
            {
                c: columns[c]
                if isinstance(columns[c], arrow)
                else pa.array(columns[c], from_pandas=True)
                for c in names
            }
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return bulk_insert(session, table, names, zip(*columns.values(), strict=True))
    raw = conn.connection.driver_connection
    cols = ", ".join(f'"{c}"' for c in names)
    options = pacsv.WriteOptions(include_header=False)
    with raw.cursor() as cur:  # type: ignore[union-attr]
        with cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
            for start in range(0, data.num_rows, chunk_size):
                sink = pa.BufferOutputStream()
                pacsv.write_csv(data.slice(start, chunk_size), sink, write_options=options)
                copy.write(sink.getvalue().to_pybytes())
    return int(data.num_rows)
