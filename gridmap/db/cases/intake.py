"""Taking cases in: one ticket or a whole table, in one transaction."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import TZ, WorkCalendar, intake
from gridmap.cases.batch import TICKET_ALIASES, TICKET_FIELDS, distinct_objects, intake_frame
from gridmap.db.audit import write_audit
from gridmap.db.bulk import bulk_insert_columns, encode_points, in_chunks
from gridmap.db.cases.calendar_store import store_calendar
from gridmap.db.cases.duplicates import DUPLICATE_LIMIT, duplicate_search
from gridmap.db.cases.placement import case_locator
from gridmap.db.cases.queries import _load
from gridmap.db.cases.records import (
    _C,
    _D,
    _L,
    _LOG_COLS,
    _RESOLVE,
    CaseRecord,
    ImportResult,
    _large_cache,
    _times_out,
)
from gridmap.db.models import utcnow
from gridmap.db.session import Store, transaction
from gridmap.errors import CaseError, ConflictError, InputError, RowsError

__all__ = ["import_cases", "create_case"]

# ----------------------------------------------------------------------------- writing


_CASE_COLS = (
    "id",
    "ticket_no",
    "source",
    "category",
    "urgency",
    "hard",
    "policy",
    "description",
    "reporter_name",
    "reporter_phone",
    "lon_given",
    "lat_given",
    "crs_given",
    "lon",
    "lat",
    "geom",
    "address",
    "grid_code",
    "community_id",
    "subdistrict",
    "plan_id",
    "plan_version",
    "received_at",
    "status",
    "version",
    "level",
    "reopened",
    "due_at",
    "provisional",
    "suggested_grid",
    "duplicate_of",
    "duplicate_count",
    "content_hash",
    "created_at",
    "updated_at",
)


def _float_texts(values: np.ndarray) -> Any:
    """Return ``str(v)`` of each float as Arrow text (NaN: ``""``), as the content hash reads them.

    Arrow's cast gives the same shortest round-trip digits as Python; only its notation
    differs (``5`` for ``5.0``, exponents from 1e9 or below 1e-4), so the values in
    between that Arrow wrote with a decimal point are taken from it, the others (few:
    coordinates are in range) from Python.

    Examples
    --------
    >>> v = np.array([118.5, 5.0, float("nan"), 1e-7, 3.2e12, -0.0])
    >>> _float_texts(v).to_pylist()
    ['118.5', '5.0', '', '1e-07', '3200000000000.0', '-0.0']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values, pa.float64()).cast(pa.string())
    with np.errstate(invalid="ignore"):
        size = np.abs(values)
        in_range = (size >= 1e-4) & (size < 1e9)
    dotted = pc.and_(pc.match_substring(arr, "."), pc.invert(pc.match_substring(arr, "e")))
    ok = in_range & np.asarray(dotted.to_numpy(zero_copy_only=False), bool)
    if ok.all():
        return arr
    text = np.asarray(arr.to_pylist(), dtype=object)
    for i in np.flatnonzero(~ok):
        v = float(values[i])
        text[i] = "" if v != v else str(v)
    return pa.array(text.tolist(), pa.string())


def _content_hash(frame: pd.DataFrame) -> list[str]:
    """Return a digest of each ticket's intake fields (same content → same digest).

    The text hashed is ``field=value`` per field, joined by U+001F, built in one
    vectorised join; only the digests are computed row by row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = [c for c in TICKET_FIELDS if c in frame.columns]
    if not cols:
        return ["" for _ in range(len(frame))]
    pieces: list[Any] = []
    for k, c in enumerate(cols):
        s = frame[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            # as strftime("%Y-%m-%dT%H:%M:%S") in local time, by Arrow's cast (no call per value)
            local = s.dt.tz_convert(TZ).dt.tz_localize(None).dt.floor("s").dt.as_unit("s")
            iso = pa.array(local, from_pandas=True).cast(pa.string())
            text = pc.replace_substring(iso, " ", "T", max_replacements=1)
        elif isinstance(s.dtype, pd.StringDtype):  # Arrow text already: no conversion
            text = s.fillna("").str.strip()
        elif pd.api.types.is_string_dtype(s.dtype) and (
            s.dtype != object or pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")
        ):
            text = s.astype("string").fillna("").str.strip()
        elif s.dtype == np.float64:
            text = _float_texts(s.to_numpy())
        elif s.dtype == np.bool_:
            text = np.where(s.to_numpy(), "True", "False").tolist()
        else:
            text = s.astype(object).where(s.notna(), "").astype(str).str.strip()
        if c == "received_at" and not isinstance(s.dtype, pd.DatetimeTZDtype):
            text = text.str.replace(" ", "T", regex=False).str.replace(
                r"(\+08:00|\.0+)$", "", regex=True
            )
        pieces.append(("\x1f" if k else "") + c + "=")
        if isinstance(text, pa.Array):
            arr = text
        elif isinstance(text, list):
            arr = pa.array(text, pa.string())
        else:
            arr = pa.array(text, from_pandas=True)  # text columns: no copy through Python
        if not pa.types.is_string(arr.type):
            arr = arr.cast(pa.string())
        pieces.append(pc.fill_null(arr, "") if arr.null_count else arr)
    joined = pc.binary_join_element_wise(*pieces, "").cast(pa.binary()).to_pylist()
    return [hashlib.sha256(v).hexdigest() for v in joined]


#: Imports of at least this many cases refresh the planner's statistics of ``cases``.
_ANALYZE_AFTER = 10_000


def _refresh_statistics(s: Session) -> None:
    """Refresh the query planner's statistics of the case tables after a large import.

    Without them SQLite picks the ``(status, due_at)`` index for ``GET /cases?status=…
    &grid=…`` and reads every case of that status (a second at a million cases) instead of
    the far more selective grid index. SQLite reads the indexes in full (``analysis_limit``
    0: its sampling reads the *first* entries of an index, which all share one grid and
    make every grid look huge); a few seconds at a million cases. PostgreSQL samples (its
    autovacuum would get there too, a minute later).
    """
    if s.get_bind().dialect.name == "sqlite":
        s.execute(sa.text("PRAGMA analysis_limit = 0"))
    s.execute(sa.text("ANALYZE cases"))


@contextmanager
def _gc_paused(large: bool) -> Iterator[None]:
    """Pause Python's cyclic garbage collector during a large import.

    An import creates millions of objects that live until it ends (column values, row
    tuples) and no reference cycles; each of them counts towards the collector's
    thresholds, so it ran full collections over all of them again and again (about 7 % of
    the import's CPU time). Reference counting still frees everything as usual; the
    collector is switched back on (if it was on) when the import ends, whatever happens.
    """
    was = gc.isenabled()
    if large:
        gc.disable()
    try:
        yield
    finally:
        if large and was:
            gc.enable()


#: Pages of a new case on SQLite (KiB): the case, its log line and their index entries
#: take about 1 KiB.
_CACHE_KIB_PER_CASE = 1.5


@contextmanager
def _import_cache(s: Session, n: int) -> Iterator[None]:
    """Give an import of ``n`` cases a page cache for all it writes (SQLite, large imports).

    The 256 MB of :func:`_large_cache` hold the pages of a quarter of a million cases:
    beyond, the pages written spill to the WAL during the insert and are read back from
    it, page by page, by each index built afterwards, by the copy of the log lines and by
    ANALYZE (a tenth of a million-case import). The cache grows only as pages are used
    and is set back when the import's writes end (by :func:`_large_cache`).
    """
    large = n >= _ANALYZE_AFTER
    with _large_cache(s, large):
        if large and s.get_bind().dialect.name == "sqlite":
            kib = max(262_144, int(n * _CACHE_KIB_PER_CASE))
            s.execute(sa.text(f"PRAGMA cache_size = -{kib}"))
        yield


def _reserve_ids(s: Session, n: int) -> list[int]:
    if n == 0:
        return []
    if s.get_bind().dialect.name == "postgresql":
        return [
            int(v)
            for v in s.execute(
                sa.text(
                    "SELECT nextval(pg_get_serial_sequence('cases', 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": n},
            )
            .scalars()
            .all()  # one fetch, not a round of fetchone per id
        ]
    start = int(s.execute(sa.select(sa.func.coalesce(sa.func.max(_C.c.id), 0))).scalar_one())
    return list(range(start + 1, start + 1 + n))


def _texts(values: pd.Series) -> list[Any]:
    """Return a text column as Python strings (nulls as None), one object per distinct value.

    Examples
    --------
    >>> _texts(pd.Series(["a", None, "a"]))
    ['a', None, 'a']
    """
    return list(distinct_objects(values).tolist())


def _numbers(values: pd.Series, *, whole: bool) -> np.ndarray:
    """Return a column as floats, as ``pd.to_numeric(values, errors="coerce")`` gives them.

    Ids are text in the intake frame (a million of them took pandas 0.6 s to parse):
    whole numbers written as text are parsed by Arrow's cast instead. What it refuses
    (anything but a sign and digits, or a number a float cannot hold exactly) is left to
    pandas.

    Examples
    --------
    >>> _numbers(pd.Series(["12", None, "7"], dtype="str"), whole=True).tolist()
    [12.0, nan, 7.0]
    >>> _numbers(pd.Series(["1.5", "x"], dtype="str"), whole=True).tolist()
    [1.5, nan]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if whole and isinstance(values.dtype, pd.StringDtype):
        try:
            ints = pc.cast(pa.array(values, from_pandas=True), pa.int64())
            return np.asarray(pc.cast(ints, pa.float64()).to_numpy(zero_copy_only=False), float)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # not all whole numbers: pandas coerces them one by one
    return np.asarray(pd.to_numeric(values, errors="coerce").to_numpy(float), float)


def _flags(values: pd.Series) -> list[bool]:
    """Return a column as Python booleans (``bool`` of each value).

    Examples
    --------
    >>> _flags(pd.Series([True, False])), _flags(pd.Series([1, None], dtype=object))
    ([True, False], [True, False])
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        return list(values.to_numpy(bool).tolist())
    return [bool(v) for v in values]


def _distinct_texts(values: pd.Series) -> list[Any]:
    """Return a text column of (mostly) distinct values as Python objects (nulls as None).

    What :func:`_texts` returns, without factorising: ticket numbers and content hashes
    are distinct per case, so a table of distinct values would only repeat the column
    (and cost half a second per million values to build).

    Examples
    --------
    >>> _distinct_texts(pd.Series(["a", None, "b"], dtype="str"))
    ['a', None, 'b']
    >>> _distinct_texts(pd.Series(["a", None, float("nan")], dtype=object))
    ['a', None, None]
    """
    if values.dtype == object:
        return list(values.where(values.notna(), None).tolist())
    if isinstance(values.dtype, pd.StringDtype):
        import pyarrow as pa

        return list(pa.array(values, from_pandas=True).to_pylist())
    return _texts(values)


#: Columns of a new case that are the same for every case of an import (SQL literals).
_CASE_CONSTANTS = {"version": "1", "level": "'grid'", "reopened": "0"}


def _insert_sqlite(s: Session, columns: dict[str, list[Any]], now: str, *, author: str) -> None:
    """Insert new cases and their intake log lines on SQLite.

    The values common to every case (version, level, the creation time) are literals of the
    statement rather than bound once per case; the log lines are copied from the cases just
    written by one ``INSERT … SELECT`` (their ids are the range reserved by
    :func:`_reserve_ids` under the transaction's write lock), so no log value is bound
    per line at all.
    """
    stamp = "'" + now.replace("'", "''") + "'"
    consts = {**_CASE_CONSTANTS, "created_at": stamp, "updated_at": stamp}
    bound = [c for c in _CASE_COLS if c not in consts]
    names = ", ".join(f'"{c}"' for c in (*bound, *consts))
    marks = ", ".join(["?"] * len(bound) + list(consts.values()))
    conn = s.connection()
    ids = columns["id"]
    # a large import into a table smaller than it (the ids are reserved above the largest):
    # its plain indexes are dropped and built again afterwards, from sorted entries rather
    # than one random insert per case and index (a fifth of the write). In the transaction:
    # a failed import leaves them as they were; readers see the old ones until the commit.
    rebuild: list[tuple[str, str]] = []
    if len(ids) >= _ANALYZE_AFTER and min(ids) - 1 < len(ids):
        rebuild = [
            (str(name), str(sql))
            for name, sql in conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL",
                (_C.name,),
            )
            if not str(sql).lstrip().upper().startswith("CREATE UNIQUE")
        ]
    for name, _ in rebuild:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    stmt = f'INSERT INTO "{_C.name}" ({names}) VALUES ({marks})'
    rows = zip(*(columns[c] for c in bound), strict=True)
    while batch := list(islice(rows, 50_000)):
        conn.exec_driver_sql(stmt, batch)
    for _, sql in rebuild:
        conn.exec_driver_sql(sql)
    log_cols = ", ".join(f'"{c}"' for c in _LOG_COLS)
    conn.exec_driver_sql(
        f"INSERT INTO \"{_L.name}\" ({log_cols}) SELECT id, 1, created_at, ?, 'intake', NULL, "
        f"'intake', NULL, status, NULL, NULL FROM \"{_C.name}\" "
        "WHERE id BETWEEN ? AND ? AND created_at = ? ORDER BY id",
        (author, min(ids), max(ids), now),
    )


def _write_cases(
    s: Session,
    cases: pd.DataFrame,
    *,
    author: str,
    duplicate_limit: int | None = DUPLICATE_LIMIT,
) -> None:
    """Insert intake rows (from :func:`intake_frame`) with deadlines and the intake log line.

    The likely duplicates of the rows (:func:`~gridmap.db.cases.duplicates.duplicate_search`,
    ``duplicate_limit`` kept per case) are searched in a worker thread while this one
    converts the other columns; the store is read for them before anything is written.
    """
    n = len(cases)
    if n == 0:
        return
    with ThreadPoolExecutor(max_workers=1) as worker:
        searching = worker.submit(duplicate_search(s, cases, limit=duplicate_limit))
        columns, clocks, due_text = _case_columns(s, cases)
        dups = searching.result()
    dup = dups["duplicate_of"]
    columns["duplicate_of"] = dup.astype(object).where(dup.notna(), None).tolist()  # JSON text
    columns["duplicate_count"] = [int(k) if k else None for k in dups["duplicate_count"].tolist()]
    _insert_case_rows(s, cases, columns, clocks, due_text, author=author)


def _case_columns(
    s: Session, cases: pd.DataFrame
) -> tuple[dict[str, Any], list[str], dict[str, list[Any]]]:
    """Return the values of the new cases' columns but the duplicates, their clocks and dues."""
    backend = s.get_bind().dialect.name
    n = len(cases)
    now = utcnow()
    now_text = _times_out(pd.Series([now]), backend) * n  # formatted once
    lon = cases["lon"].to_numpy(float)
    lat = cases["lat"].to_numpy(float)
    has = np.isfinite(lon) & np.isfinite(lat)
    geoms = np.full(n, None, dtype=object)
    if has.any():
        enc = encode_points(lon[has], lat[has], backend)
        geoms[np.flatnonzero(has)] = np.asarray(enc + [None], dtype=object)[:-1]
    due_col = f"due:{_RESOLVE}"
    due = cases[due_col] if due_col in cases else pd.Series([pd.NaT] * n)
    prov_cols = [c for c in cases.columns if c.startswith("prov:")]
    prov = np.zeros(n, dtype=bool)
    if prov_cols:
        prov = np.asarray(cases[prov_cols].to_numpy(bool).any(axis=1), dtype=bool)

    import pyarrow as pa

    columnar = backend == "postgresql"  # COPY takes Arrow columns: no Python value per row

    def col(name: str, kind: type | None = None, *, distinct: bool = False) -> Any:
        s_ = cases[name]
        if kind is float or kind is int:  # numbers: converted in numpy, nulls → None
            num = _numbers(s_, whole=kind is int)
            if columnar and kind is float:
                return num  # NaN: null
            miss = np.isnan(num)
            out = (np.where(miss, 0, num).astype(np.int64) if kind is int else num).astype(object)
            out[miss] = None
            return list(out.tolist())
        if kind is None:
            if columnar:
                try:
                    arr = pa.array(s_, from_pandas=True)
                    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
                        return arr
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    pass  # mixed values: as Python text below
            return _distinct_texts(s_) if distinct else _texts(s_)
        vals = s_.astype(object).where(s_.notna(), None).tolist()
        return [None if v is None else kind(v) for v in vals]

    clocks = [c[4:] for c in cases.columns if c.startswith("due:")]
    due_text = {c: _times_out(cases[f"due:{c}"], backend) for c in clocks}

    columns = {
        "id": col("id", int),
        "ticket_no": col("ticket_no", distinct=True),
        "source": col("source"),
        "category": col("category"),
        "urgency": col("urgency"),
        "hard": _flags(cases["hard"]),
        "policy": col("policy"),
        "description": col("description"),
        "reporter_name": col("reporter_name"),
        "reporter_phone": col("reporter_phone"),
        "lon_given": col("lon_given", float),
        "lat_given": col("lat_given", float),
        "crs_given": col("crs_given"),
        "lon": col("lon", float),
        "lat": col("lat", float),
        "geom": geoms.tolist(),
        "address": col("address"),
        "grid_code": col("grid_code"),
        "community_id": col("community_id"),
        "subdistrict": col("subdistrict"),
        "plan_id": col("plan_id", int),
        "plan_version": col("plan_version", int),
        "received_at": _times_out(cases["received_at"], backend),
        "status": col("status"),
        "version": [1] * n,
        "level": ["grid"] * n,
        "reopened": [0] * n,
        "due_at": due_text[_RESOLVE] if _RESOLVE in due_text else _times_out(due, backend),
        "provisional": prov.tolist(),
        "suggested_grid": col("nearest_grid"),
        "content_hash": col("content_hash", distinct=True),
        "created_at": now_text,
        "updated_at": now_text,
    }
    return columns, clocks, due_text


def _insert_case_rows(
    s: Session,
    cases: pd.DataFrame,
    columns: dict[str, Any],
    clocks: list[str],
    due_text: dict[str, list[Any]],
    *,
    author: str,
) -> None:
    """Write the new cases' rows (``columns``), their other deadlines and intake log lines."""
    backend = s.get_bind().dialect.name
    n = len(cases)
    now_text = columns["created_at"]
    ids = columns["id"]
    if backend == "sqlite":
        _insert_sqlite(s, columns, now_text[0], author=str(author))
    else:
        bulk_insert_columns(s, _C, {c: columns[c] for c in _CASE_COLS})
    deadlines: dict[str, list[Any]] = {"case_id": [], "clock": [], "due_at": [], "provisional": []}
    for c in clocks:
        if c == _RESOLVE:  # the resolve deadline is the case's due_at (and provisional)
            continue
        dues = due_text[c]
        provs = cases[f"prov:{c}"].to_numpy(bool)
        has_due = [i for i, d in enumerate(dues) if d is not None]
        deadlines["case_id"] += [ids[i] for i in has_due]
        deadlines["clock"] += [c] * len(has_due)
        deadlines["due_at"] += [dues[i] for i in has_due]
        deadlines["provisional"] += provs[has_due].tolist()
    if deadlines["case_id"]:
        bulk_insert_columns(s, _D, deadlines)
    if backend == "sqlite":  # the log lines were copied from the cases by _insert_sqlite
        return
    log = {
        "case_id": ids,
        "version": [1] * n,
        "at": now_text,
        "actor": [str(author)] * n,
        "role": ["intake"] * n,
        "unit": [None] * n,
        "action": ["intake"] * n,
        "from_state": [None] * n,
        "to_state": columns["status"],
        "note": [None] * n,
        "data": [None] * n,
    }
    bulk_insert_columns(s, _L, {c: log[c] for c in _LOG_COLS})


def _existing(
    s: Session, sources: pd.Series, numbers: pd.Series
) -> dict[tuple[str, str], tuple[int, str]]:
    """Return the stored (source, ticket) → (id, content hash) of the given keys."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    if len(numbers) == 0:
        return out
    total = s.execute(sa.select(sa.func.count()).select_from(_C)).scalar_one()
    if total == 0:  # an empty store (a first import): nothing to look up
        return out
    keys = list(zip(sources.tolist(), numbers.tolist(), strict=True))
    tickets = sorted({t for _, t in keys})
    q = sa.select(_C.c.source, _C.c.ticket_no, _C.c.id, _C.c.content_hash).where(
        _C.c.ticket_no.is_not(None)
    )
    if len(tickets) > 20_000 or total < 50_000:
        rows = s.execute(q).all()
    else:
        rows = []
        for chunk in in_chunks(tickets, 1000):
            rows += s.execute(q.where(_C.c.ticket_no.in_(list(chunk)))).all()
    want = set(keys)
    for src, t, i, h in rows:
        if (src, t) in want:
            out[(src, t)] = (int(i), str(h))
    return out


def _prepare(
    s: Session,
    frame: pd.DataFrame,
    lines: np.ndarray,
    *,
    calendar: WorkCalendar | None,
) -> tuple[pd.DataFrame, list[tuple[int, str]], list[int], bool]:
    """Intake a table: (cases to write, rejects, ids unchanged, any conflict)."""
    n = len(frame)
    # the digests in a worker thread while this one takes the rows in: Arrow builds the
    # hashed texts without the GIL (half of the hash's time)
    with ThreadPoolExecutor(max_workers=1) as worker:
        hashing = worker.submit(_content_hash, frame)
        cal = calendar or store_calendar(s)
        loc = case_locator(s)
        ids = _reserve_ids(s, n)
        cases, errors = intake_frame(
            frame, ids=[str(i) for i in ids], locate_many=loc.locate_many, calendar=cal
        )
        hashes = np.asarray(hashing.result(), dtype=object)
    rejects = [(int(lines[r]), m) for r, m in errors]
    # kept as Python text (object): written as they are, not converted to Arrow and back
    cases["content_hash"] = pd.Series(
        hashes[cases["row"].to_numpy(int)], index=cases.index, dtype=object
    )
    unchanged: list[int] = []
    conflict = False
    keep = np.ones(len(cases), dtype=bool)
    keyed = np.flatnonzero(cases["ticket_no"].notna().to_numpy(bool))
    if len(keyed):
        # the key of each numbered ticket as one text, compared in bulk: (source, number),
        # joined in Arrow from the frame's columns (no Python string per ticket)
        src_k = cases["source"].iloc[keyed].astype("string").fillna("None")
        tick_k = cases["ticket_no"].iloc[keyed].astype("string")
        joined_k = (src_k + "\x1f" + tick_k).reset_index(drop=True)
        codes, _ = pd.factorize(joined_k)
        stored = _existing(s, src_k, tick_k)
        rows = cases["row"].to_numpy(int)
        content = cases["content_hash"].to_numpy(object)
        line_k = lines[rows[keyed]]
        is_stored = np.zeros(len(keyed), dtype=bool)
        if stored:
            joined = joined_k.to_numpy(object)
            by_text = {f"{k[0]}\x1f{k[1]}": v for k, v in stored.items()}
            is_stored = pd.Series(joined).isin(list(by_text)).to_numpy(bool)
            for j in np.flatnonzero(is_stored):
                i = keyed[j]
                cid, h = by_text[joined[j]]
                keep[i] = False
                if h == str(content[i]):
                    unchanged.append(cid)
                else:
                    conflict = True
                    rejects.append(
                        (
                            int(line_k[j]),
                            f"ticket {tick_k.iloc[j]!r} of source {src_k.iloc[j]!r} is already "
                            f"stored as case {cid} with other content; a ticket number is unique "
                            "per source — correct the number, or act on the stored case",
                        )
                    )
        # a number repeated in the table: the first line counts, the others are dropped
        # (rejected if their content differs)
        _, first_of_code = np.unique(codes, return_index=True)
        first = first_of_code[codes]
        again = np.flatnonzero((first != np.arange(len(keyed))) & ~is_stored)
        keep[keyed[again]] = False
        for j in again[content[keyed[again]] != content[keyed[first[again]]]]:
            conflict = True
            rejects.append(
                (
                    int(line_k[j]),
                    f"ticket {tick_k.iloc[j]!r} of source {src_k.iloc[j]!r} repeats line "
                    f"{int(line_k[first[j]])} with other content; a ticket number is unique "
                    "per source",
                )
            )
    rejects.sort()
    out = cases[keep].reset_index(drop=True)
    return out, rejects, unchanged, conflict


def import_cases(
    target: Store | Session,
    tickets: pd.DataFrame | str | Path | bytes,
    *,
    author: str,
    skip_bad: bool = False,
    mapping: Mapping[str, str] | Sequence[str] | None = None,
    calendar: WorkCalendar | None = None,
    name: str | None = None,
    duplicate_limit: int | None = DUPLICATE_LIMIT,
) -> ImportResult:
    """Import a table of tickets in one transaction.

    Parameters
    ----------
    target : Store or Session
    tickets : DataFrame, path or bytes
        Canonical columns (:data:`gridmap.cases.batch.TICKET_FIELDS`), or a
        CSV/XLSX file read with :func:`gridmap.tables.read_table` (Chinese or
        English headers, UTF-8/GBK).
    author : str
        Who imports (log and audit).
    skip_bad : bool, default False
        Store the good rows and return the rejects; by default any bad row
        stores nothing and raises.
    mapping : mapping or ``CANONICAL=SOURCE`` strings, optional
        Column mapping for files whose headers the aliases do not know.
    calendar : WorkCalendar, optional
        Default: the store's.
    name : str, optional
        The file's name in messages.
    duplicate_limit : int or None, default 5
        Likely duplicates stored per new case (``duplicate_of``, nearest first; None:
        all). Every one is counted (``duplicate_count``), and the full list is computed
        again when the case is opened (:func:`~gridmap.db.cases.get_case`).

    Returns
    -------
    ImportResult

    Raises
    ------
    RowsError
        Some rows are bad (every one listed by line) and ``skip_bad`` is False;
        ``conflict`` is True when a ticket number is reused with other content.

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> rows = pd.DataFrame({"ticket_no": ["T1"], "source": ["hotline"], "category": ["noise"],
    ...                      "description": ["夜间施工"], "address": ["幸福路1号"],
    ...                      "received_at": ["2026-09-18 10:00"]})
    >>> import_cases(store, rows, author="li").summary()
    '1 cases created; 1 of them unlocated (outside every grid or no point)'
    >>> import_cases(store, rows, author="li").summary()
    '0 cases created; 1 already stored with the same content (unchanged); nothing changed'
    """
    from gridmap.tables import read_table

    if isinstance(tickets, pd.DataFrame):
        frame = tickets.reset_index(drop=True)
        lines = np.arange(len(frame), dtype=np.int64) + 2
    else:
        read = read_table(tickets, aliases=TICKET_ALIASES, mapping=mapping, name=name)
        frame, lines = read.frame, read.lines
        unknown = [c for c in frame.columns if c not in TICKET_FIELDS]
        frame = frame.drop(columns=unknown)
    if len(frame) == 0:
        raise InputError(f"{name or 'the ticket table'} has no rows")
    with _gc_paused(len(frame) >= _ANALYZE_AFTER), transaction(target, write=True) as s:
        cases, rejects, unchanged, conflict = _prepare(s, frame, lines, calendar=calendar)
        if rejects and not skip_bad:
            shown = "; ".join(f"line {ln}: {m}" for ln, m in rejects[:5])
            more = f" (and {len(rejects) - 5} more)" if len(rejects) > 5 else ""
            raise RowsError(
                f"{len(rejects)} of {len(frame)} rows are bad; nothing was stored. {shown}{more}. "
                "Fix them, or import the good rows with skip_bad (--skip-bad)",
                rows=rejects,
                conflict=conflict,
            )
        with _import_cache(s, len(cases)):
            _write_cases(s, cases, author=author, duplicate_limit=duplicate_limit)
            if len(cases) >= _ANALYZE_AFTER:
                _refresh_statistics(s)
        created = pd.to_numeric(cases["id"]).astype("int64").tolist() if len(cases) else []
        if created or rejects:
            write_audit(
                s,
                actor=author,
                action="import",
                entity="cases",
                entity_id=f"{created[0]}-{created[-1]}" if created else "-",
                after={
                    "created": len(created),
                    "unchanged": len(unchanged),
                    "rejected": len(rejects),
                },
            )
    unlocated = int((cases["status"] == "unlocated").sum()) if len(cases) else 0
    return ImportResult(created, unchanged, rejects, unlocated)


def create_case(
    target: Store | Session,
    ticket: Mapping[str, Any],
    *,
    author: str,
    calendar: WorkCalendar | None = None,
) -> tuple[CaseRecord, bool]:
    """Take in one ticket; return the stored case and whether it is new.

    The same ticket (source + number, same content) sent again returns the
    stored case unchanged (``False``); other content under that number is a
    :class:`~gridmap.errors.ConflictError`.

    Raises
    ------
    CaseError, CRSError, CoordinateError
        The ticket cannot be taken in (the message says what to fix).
    ConflictError
        The ticket number is already stored with other content.
    """
    unknown = sorted(set(ticket) - set(TICKET_FIELDS))
    if unknown:
        raise CaseError(f"unknown ticket field(s) {unknown}; fields: {list(TICKET_FIELDS)}")
    frame = pd.DataFrame([{k: ticket.get(k) for k in TICKET_FIELDS}])
    with transaction(target, write=True) as s:
        cal = calendar or store_calendar(s)
        loc = case_locator(s)
        intake(ticket, case_id="0", locate=loc.locate, calendar=cal)  # typed errors
        cases, rejects, unchanged, conflict = _prepare(s, frame, np.array([1]), calendar=cal)
        if unchanged:
            return _load(s, unchanged[0]), False
        if rejects:
            if conflict:
                raise ConflictError(rejects[0][1])
            raise CaseError(rejects[0][1])
        _write_cases(s, cases, author=author)
        rec = _load(s, int(cases["id"].iloc[0]))
    return rec, True
