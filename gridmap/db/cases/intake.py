"""Taking cases in: one ticket or a whole table, in one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import TZ, WorkCalendar, intake
from gridmap.cases.batch import TICKET_ALIASES, TICKET_FIELDS, intake_frame
from gridmap.db.audit import write_audit
from gridmap.db.bulk import bulk_insert_columns, encode_geoms, in_chunks
from gridmap.db.cases.calendar_store import store_calendar
from gridmap.db.cases.duplicates import DUPLICATE_LIMIT, likely_duplicates
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
        else:
            text = s.astype(object).where(s.notna(), "").astype(str).str.strip()
        if c == "received_at" and not isinstance(s.dtype, pd.DatetimeTZDtype):
            text = text.str.replace(" ", "T", regex=False).str.replace(
                r"(\+08:00|\.0+)$", "", regex=True
            )
        pieces.append(("\x1f" if k else "") + c + "=")
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


def _write_cases(s: Session, cases: pd.DataFrame, *, author: str) -> None:
    """Insert intake rows (from :func:`intake_frame`) with deadlines and the intake log line."""
    backend = s.get_bind().dialect.name
    n = len(cases)
    if n == 0:
        return
    now = utcnow()
    now_text = _times_out(pd.Series([now]), backend) * n  # formatted once
    lon = cases["lon"].to_numpy(float)
    lat = cases["lat"].to_numpy(float)
    has = np.isfinite(lon) & np.isfinite(lat)
    import shapely

    geoms = np.full(n, None, dtype=object)
    if has.any():
        enc = encode_geoms(shapely.points(lon[has], lat[has]), backend)
        geoms[np.flatnonzero(has)] = np.asarray(enc + [None], dtype=object)[:-1]
    due_col = f"due:{_RESOLVE}"
    due = cases[due_col] if due_col in cases else pd.Series([pd.NaT] * n)
    prov_cols = [c for c in cases.columns if c.startswith("prov:")]
    prov = np.zeros(n, dtype=bool)
    if prov_cols:
        prov = np.asarray(cases[prov_cols].to_numpy(bool).any(axis=1), dtype=bool)

    def col(name: str, kind: type | None = None) -> list[Any]:
        s_ = cases[name]
        if kind is float or kind is int:  # numbers: converted in numpy, nulls → None
            num = pd.to_numeric(s_, errors="coerce").to_numpy(float)
            miss = np.isnan(num)
            out = (np.where(miss, 0, num).astype(np.int64) if kind is int else num).astype(object)
            out[miss] = None
            return list(out.tolist())
        vals = s_.astype(object).where(s_.notna(), None).tolist()
        return vals if kind is None else [None if v is None else kind(v) for v in vals]

    clocks = [c[4:] for c in cases.columns if c.startswith("due:")]
    due_text = {c: _times_out(cases[f"due:{c}"], backend) for c in clocks}

    dup = cases["duplicate_of"] if "duplicate_of" in cases else pd.Series([None] * n)
    dup_n = cases["duplicate_count"] if "duplicate_count" in cases else pd.Series([0] * n)
    columns = {
        "id": col("id", int),
        "ticket_no": col("ticket_no"),
        "source": col("source"),
        "category": col("category"),
        "urgency": col("urgency"),
        "hard": [bool(v) for v in cases["hard"]],
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
        "provisional": [bool(v) for v in prov],
        "suggested_grid": col("nearest_grid"),
        "duplicate_of": dup.astype(object).where(dup.notna(), None).tolist(),  # JSON text
        "duplicate_count": [int(k) if k else None for k in dup_n.tolist()],
        "content_hash": col("content_hash"),
        "created_at": now_text,
        "updated_at": now_text,
    }
    bulk_insert_columns(s, _C, {c: columns[c] for c in _CASE_COLS})
    ids = columns["id"]
    deadlines: dict[str, list[Any]] = {"case_id": [], "clock": [], "due_at": [], "provisional": []}
    for c in clocks:
        dues = due_text[c]
        provs = cases[f"prov:{c}"].to_numpy(bool)
        has_due = [i for i, d in enumerate(dues) if d is not None]
        deadlines["case_id"] += [ids[i] for i in has_due]
        deadlines["clock"] += [c] * len(has_due)
        deadlines["due_at"] += [dues[i] for i in has_due]
        deadlines["provisional"] += provs[has_due].tolist()
    bulk_insert_columns(s, _D, deadlines)
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
    s: Session, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, str]]:
    """Return the stored (source, ticket) → (id, content hash)."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    tickets = sorted({t for _, t in keys})
    if not tickets:
        return out
    total = s.execute(sa.select(sa.func.count()).select_from(_C)).scalar_one()
    q = sa.select(_C.c.source, _C.c.ticket_no, _C.c.id, _C.c.content_hash).where(
        _C.c.ticket_no.is_not(None)
    )
    if len(tickets) > 20_000 or total < 50_000:
        if total == 0:
            return out
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
    duplicate_limit: int | None = DUPLICATE_LIMIT,
) -> tuple[pd.DataFrame, list[tuple[int, str]], list[int], bool]:
    """Intake a table: (cases to write, rejects, ids unchanged, any conflict)."""
    n = len(frame)
    hashes = np.asarray(_content_hash(frame), dtype=object)
    cal = calendar or store_calendar(s)
    loc = case_locator(s)
    ids = _reserve_ids(s, n)
    cases, errors = intake_frame(
        frame, ids=[str(i) for i in ids], locate_many=loc.locate_many, calendar=cal
    )
    rejects = [(int(lines[r]), m) for r, m in errors]
    cases["content_hash"] = hashes[cases["row"].to_numpy(int)]
    unchanged: list[int] = []
    conflict = False
    keep = np.ones(len(cases), dtype=bool)
    tick = cases["ticket_no"].to_numpy(object)
    src = cases["source"].to_numpy(object)
    keyed = np.flatnonzero(pd.notna(tick))
    keys = [(str(src[i]), str(tick[i])) for i in keyed]
    stored = _existing(s, keys)
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    rows = cases["row"].to_numpy(int)
    content = cases["content_hash"].to_numpy(object)
    for i, k in zip(keyed, keys, strict=True):
        h = str(content[i])
        line = int(lines[rows[i]])
        if k in stored:
            keep[i] = False
            if stored[k][1] == h:
                unchanged.append(stored[k][0])
            else:
                conflict = True
                rejects.append(
                    (
                        line,
                        f"ticket {k[1]!r} of source {k[0]!r} is already stored as case "
                        f"{stored[k][0]} with other content; a ticket number is unique per "
                        "source — correct the number, or act on the stored case",
                    )
                )
        elif k in seen:
            keep[i] = False
            if seen[k][1] != h:
                conflict = True
                rejects.append(
                    (
                        line,
                        f"ticket {k[1]!r} of source {k[0]!r} repeats line {seen[k][0]} with other "
                        "content; a ticket number is unique per source",
                    )
                )
        else:
            seen[k] = (line, h)
    rejects.sort()
    out = cases[keep].reset_index(drop=True)
    if len(out):
        dups = likely_duplicates(s, out, limit=duplicate_limit)
        out["duplicate_of"] = dups["duplicate_of"].to_numpy(object)
        out["duplicate_count"] = dups["duplicate_count"].to_numpy(np.int64)
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
    with transaction(target, write=True) as s:
        cases, rejects, unchanged, conflict = _prepare(
            s, frame, lines, calendar=calendar, duplicate_limit=duplicate_limit
        )
        if rejects and not skip_bad:
            shown = "; ".join(f"line {ln}: {m}" for ln, m in rejects[:5])
            more = f" (and {len(rejects) - 5} more)" if len(rejects) > 5 else ""
            raise RowsError(
                f"{len(rejects)} of {len(frame)} rows are bad; nothing was stored. {shown}{more}. "
                "Fix them, or import the good rows with skip_bad (--skip-bad)",
                rows=rejects,
                conflict=conflict,
            )
        with _large_cache(s, len(cases) >= _ANALYZE_AFTER):
            _write_cases(s, cases, author=author)
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
