r"""One reader for every table a person hands us: CSV or XLSX, any Chinese encoding.

Tickets, rosters and point lists arrive as a CSV saved by Excel or WPS (UTF-8,
UTF-8 with a BOM, or GBK/GB18030) or as an ``.xlsx`` workbook, with Chinese or
English headers. :func:`read_table` detects the format and the encoding, maps
the headers onto canonical names through an alias table (``经度``/``lng``/``lon``
→ ``lon``) and an explicit ``mapping`` (``{"lon": "X坐标"}``), and keeps the
line number a spreadsheet shows for every row (the header is line 1), so that a
bad row is reported as "line 7" wherever it is found — by the CLI, the HTTP API
or the case import. Every value is read as text; the caller converts.

Examples
--------
>>> data = "工单编号,经度,纬度\nT1,118.78,32.04\n".encode("gbk")
>>> t = read_table(data, aliases={"工单编号": "ticket_no", "经度": "lon", "纬度": "lat"})
>>> t.frame.to_dict("records"), t.lines.tolist(), t.encoding
([{'ticket_no': 'T1', 'lon': '118.78', 'lat': '32.04'}], [2], 'gb18030')
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridmap.errors import InputError

__all__ = ["TableRead", "read_table", "normalise_header", "parse_mapping"]

_XLSX_MAGIC = b"PK\x03\x04"
_ENCODINGS = ("utf-8-sig", "gb18030")


@dataclass(frozen=True)
class TableRead:
    """A table as read: canonical columns (text), spreadsheet line numbers and provenance.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per data row; canonical column names where a header matched,
        the original header otherwise; every value a ``str`` or ``None``.
    lines : numpy.ndarray
        The line number a spreadsheet shows for each row (header = 1).
    format : {"csv", "xlsx"}
    encoding : str or None
        ``"utf-8-sig"`` (UTF-8, with or without BOM) or ``"gb18030"`` (GBK); None for XLSX.
    renamed : dict of str to str
        Original header → canonical name, for every header that was mapped.
    """

    frame: pd.DataFrame
    lines: np.ndarray
    format: str
    encoding: str | None
    renamed: dict[str, str]

    def line(self, row: int) -> int:
        """Return the spreadsheet line of row ``row`` (0-based position)."""
        return int(self.lines[row])


def normalise_header(name: Any) -> str:
    r"""Return a header as compared with the aliases: stripped, lower case, no BOM or spaces.

    Examples
    --------
    >>> normalise_header("\ufeff Lon ")
    'lon'
    """
    return str(name).replace("\ufeff", "").strip().lower().replace(" ", "_")


def parse_mapping(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``CANONICAL=SOURCE`` strings (``--column lon=X坐标``) into a mapping.

    Raises
    ------
    InputError
        For an item without ``=``.

    Examples
    --------
    >>> parse_mapping(["lon=X坐标", "lat = Y坐标"])
    {'lon': 'X坐标', 'lat': 'Y坐标'}
    """
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return {str(k).strip(): str(v).strip() for k, v in items.items()}
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(
                f"column mapping {item!r} is not CANONICAL=SOURCE; e.g. --column lon=X坐标"
            )
        out[key.strip()] = value.strip()
    return out


def _decode(raw: bytes, name: str) -> tuple[str, str]:
    for enc in _ENCODINGS:
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise InputError(  # pragma: no cover - gb18030 decodes nearly any byte string
        f"{name}: cannot decode the file; save it as UTF-8 (Excel: CSV UTF-8)"
    )


def _read_csv(raw: bytes, name: str) -> tuple[pd.DataFrame, np.ndarray, str]:
    text, enc = _decode(raw, name)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
        )
    except pd.errors.EmptyDataError:
        raise InputError(f"{name} is empty; the first line must hold the column names") from None
    except pd.errors.ParserError as exc:
        raise InputError(
            f"{name} is not a well-formed CSV ({exc}); a row has more fields than the header — "
            "quote values holding commas"
        ) from None
    lines = np.arange(len(frame), dtype=np.int64) + 2
    if "\n" in text.rstrip("\n") and any('"' in ln for ln in text.splitlines()):
        lines = _csv_lines(text, len(frame))
    return frame, lines, enc


def _csv_lines(text: str, n: int) -> np.ndarray:
    """Spreadsheet line of each record when quoted values span several lines."""
    import csv

    reader = csv.reader(io.StringIO(text))
    starts = []
    line = 1
    for _ in reader:
        starts.append(line)
        line = reader.line_num + 1
    return np.asarray(starts[1 : n + 1], dtype=np.int64)


def _read_xlsx(raw: bytes, name: str, sheet: str | int | None) -> tuple[pd.DataFrame, np.ndarray]:
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - a dependency
        raise InputError("reading .xlsx needs openpyxl; pip install openpyxl") from exc
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means an unreadable workbook
        raise InputError(
            f"{name} is not a readable .xlsx workbook ({type(exc).__name__})"
        ) from None
    try:
        ws = (
            book.worksheets[0]
            if sheet is None
            else (book.worksheets[sheet] if isinstance(sheet, int) else book[sheet])
        )
    except (KeyError, IndexError):
        raise InputError(f"{name} has no sheet {sheet!r}; sheets: {book.sheetnames}") from None
    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        raise InputError(f"{name} is empty; the first row must hold the column names")
    cols = [("" if h is None else str(h)) for h in header]
    data: list[list[Any]] = []
    lines: list[int] = []
    for i, row in enumerate(rows, start=2):
        vals = [_cell(v) for v in row[: len(cols)]]
        if all(v == "" for v in vals):
            continue
        vals += [""] * (len(cols) - len(vals))
        data.append(vals)
        lines.append(i)
    book.close()
    return pd.DataFrame(data, columns=cols, dtype=object), np.asarray(lines, dtype=np.int64)


def _cell(value: Any) -> str:
    import datetime as dt

    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def read_table(
    source: str | Path | bytes,
    *,
    aliases: Mapping[str, str] | None = None,
    mapping: Mapping[str, str] | Iterable[str] | None = None,
    required: Iterable[str] = (),
    name: str | None = None,
    sheet: str | int | None = None,
) -> TableRead:
    r"""Read a CSV or XLSX table into canonical text columns with spreadsheet line numbers.

    Parameters
    ----------
    source : path or bytes
        The file, or its content (an upload). XLSX is recognised by its content.
    aliases : mapping, optional
        Header alias → canonical name (compared case-, space- and BOM-insensitively).
    mapping : mapping or iterable of ``"CANONICAL=SOURCE"``, optional
        Explicit choices that win over the aliases (``{"lon": "X坐标"}``).
    required : iterable of str
        Canonical columns that must be present.
    name : str, optional
        How to call the file in messages (default: its path, or "the table").
    sheet : str or int, optional
        XLSX sheet (default: the first).

    Returns
    -------
    TableRead

    Raises
    ------
    InputError
        Missing file, empty or malformed table, a mapped column that is not in
        the file, two headers mapping to the same name, a required column missing.

    Examples
    --------
    >>> t = read_table(b"lng,LAT\n1,2\n", aliases={"lng": "lon", "lat": "lat"})
    >>> list(t.frame.columns), t.renamed
    (['lon', 'lat'], {'lng': 'lon', 'LAT': 'lat'})
    """
    if isinstance(source, bytes | bytearray):
        raw = bytes(source)
        label = name or "the table"
    else:
        path = Path(source)
        label = name or str(path)
        if not path.exists():
            raise InputError(f"{label} does not exist")
        raw = path.read_bytes()
    if raw.startswith(_XLSX_MAGIC):
        frame, lines = _read_xlsx(raw, label, sheet)
        fmt, enc = "xlsx", None
    else:
        frame, lines, enc = _read_csv(raw, label)
        fmt = "csv"
        keep = ~(frame == "").all(axis=1).to_numpy() if len(frame.columns) else np.ones(0, bool)
        frame, lines = frame[keep].reset_index(drop=True), lines[keep]

    explicit = parse_mapping(mapping)
    headers = [str(c) for c in frame.columns]
    by_norm = {normalise_header(h): h for h in headers}
    renamed: dict[str, str] = {}
    for canon, src in explicit.items():
        hit = src if src in headers else by_norm.get(normalise_header(src))
        if hit is None:
            raise InputError(
                f"{label} has no column {src!r} (mapped to {canon!r}); its columns: {headers}"
            )
        renamed[hit] = canon
    alias_norm = {normalise_header(k): v for k, v in (aliases or {}).items()}
    taken = set(renamed.values())
    for h in headers:
        if h in renamed:
            continue
        alias = alias_norm.get(normalise_header(h))
        if alias is None or alias in taken:
            if alias is not None:
                canon = alias
                first = next(k for k, v in renamed.items() if v == canon)
                raise InputError(
                    f"{label}: columns {first!r} and {h!r} both mean {canon!r}; drop one or "
                    f"say which to use with a mapping ({canon}=<column>)"
                )
            continue
        renamed[h] = alias
        taken.add(alias)
    frame = frame.rename(columns=renamed)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(
            f"{label} lacks column(s) {missing}; its columns are {headers}. Rename them or map "
            "them (e.g. --column ticket_no=编号)"
        )
    frame = pd.DataFrame(
        {c: _clean(frame.iloc[:, i]) for i, c in enumerate(frame.columns)},
        index=pd.RangeIndex(len(frame)),
    )
    return TableRead(frame.reset_index(drop=True), np.asarray(lines), fmt, enc, renamed)


def _clean(values: pd.Series) -> pd.Series:
    """Strip text; empty cells become None (vectorised)."""
    s = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    return s.astype(object).where(s != "", None)
