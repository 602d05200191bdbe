"""Intake of a whole table of tickets at once: vectorised, row errors by line.

:func:`intake_frame` gives the same cases as :func:`gridmap.cases.model.intake`
called row by row (a test holds the two to it), but checks, converts, places
and times every ticket in a few array operations, so that a day's — or a
year's — tickets go in within seconds. Rows the vectorised checks flag are
passed to :func:`~gridmap.cases.model.intake` one by one, so their messages are
exactly the ones a single ticket gets.

:data:`TICKET_ALIASES` is the ticket table's header vocabulary (Chinese and
English) for :func:`gridmap.tables.read_table`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gridmap.cases.calendar import TZ, WorkCalendar, default_calendar
from gridmap.cases.catalogue import URGENCIES, Catalogue, default_catalogue
from gridmap.cases.model import Case, Placement, intake
from gridmap.cases.policies import Policies, default_policies
from gridmap.errors import CaseError, GridmapError

__all__ = [
    "TICKET_FIELDS",
    "TICKET_ALIASES",
    "CASE_FIELDS",
    "intake_frame",
    "frame_cases",
    "distinct_objects",
]

#: Canonical ticket columns (what :func:`gridmap.cases.model.intake` reads).
TICKET_FIELDS: tuple[str, ...] = (
    "ticket_no",
    "received_at",
    "source",
    "category",
    "urgency",
    "hard",
    "policy",
    "description",
    "reporter_name",
    "reporter_phone",
    "lon",
    "lat",
    "crs",
    "address",
)

#: Header aliases of a ticket table → canonical column.
TICKET_ALIASES: dict[str, str] = {
    **{f: f for f in TICKET_FIELDS},
    "工单编号": "ticket_no",
    "工单号": "ticket_no",
    "编号": "ticket_no",
    "ticket": "ticket_no",
    "ticket_id": "ticket_no",
    "来电时间": "received_at",
    "受理时间": "received_at",
    "接收时间": "received_at",
    "时间": "received_at",
    "received": "received_at",
    "time": "received_at",
    "来源": "source",
    "渠道": "source",
    "诉求类别": "category",
    "类别": "category",
    "事件类型": "category",
    "紧急程度": "urgency",
    "疑难": "hard",
    "时限标准": "policy",
    "诉求内容": "description",
    "内容": "description",
    "事件描述": "description",
    "联系人": "reporter_name",
    "来电人": "reporter_name",
    "姓名": "reporter_name",
    "name": "reporter_name",
    "联系电话": "reporter_phone",
    "电话": "reporter_phone",
    "phone": "reporter_phone",
    "经度": "lon",
    "lng": "lon",
    "longitude": "lon",
    "x": "lon",
    "纬度": "lat",
    "latitude": "lat",
    "y": "lat",
    "坐标系": "crs",
    "坐标系统": "crs",
    "地址": "address",
    "事发地址": "address",
}

#: Columns of the frame :func:`intake_frame` returns (then ``due:<clock>`` / ``prov:<clock>``).
CASE_FIELDS: tuple[str, ...] = (
    "id",
    "source",
    "category",
    "urgency",
    "description",
    "policy",
    "received_at",
    "status",
    "ticket_no",
    "reporter_name",
    "reporter_phone",
    "lon_given",
    "lat_given",
    "crs_given",
    "lon",
    "lat",
    "address",
    "grid_code",
    "community_id",
    "subdistrict",
    "plan_id",
    "plan_version",
    "hard",
    "nearest_grid",
)

#: ``locate_many(lon, lat)`` (WGS84 arrays) → per point a Placement or None, and the
#: nearest grid code of each point (for unlocated cases), or None.
LocateMany = Callable[[np.ndarray, np.ndarray], tuple[Sequence[Placement | None], Sequence[Any]]]

_URGENCY_ZH = {"紧急": "urgent", "一般": "ordinary", "普通": "ordinary"}


def distinct_objects(values: Any) -> np.ndarray:
    """Return the values as an object array holding one Python object per distinct value.

    Factorised, each distinct value becomes a Python object once (missing: None), and
    the rows share it: columns of a ticket table repeat a few values, and SQLite encodes
    a shared string to UTF-8 once (Python caches the encoding on the object).

    Examples
    --------
    >>> distinct_objects(pd.Series(["a", None, "a"])).tolist()
    ['a', None, 'a']
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.full(len(uniques) + 1, None, dtype=object)  # the last one (code -1): None
    table[:-1] = np.asarray(uniques, dtype=object)
    return table[codes]


def _texts(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Return the stripped text of a column (object array; missing and blank cells: None).

    Text columns (and object columns holding only text) are stripped in one vectorised
    call; other values (numbers, dates) are turned to text one by one.
    """
    if col not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    s = frame[col]
    if pd.api.types.is_string_dtype(s.dtype) and (
        s.dtype != object or pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")
    ):
        # Arrow-backed text is stripped as it is (a conversion to "string" goes through Python)
        text = (s if isinstance(s.dtype, pd.StringDtype) else s.astype("string")).str.strip()
        text = text.mask(text.str.len() == 0)
        return distinct_objects(text)  # these columns repeat a few values
    s = s.astype(object).where(s.notna(), None)
    out = np.empty(len(s), dtype=object)
    for i, v in enumerate(s.tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out[i] = None
        else:
            t = str(v).strip()
            out[i] = t or None
    return out


#: pandas' default text dtype (Arrow-backed, NaN for missing): what a frame infers from text.
_ARROW_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)


def _text_column(frame: pd.DataFrame, col: str) -> tuple[Any, np.ndarray]:
    """Return a free-text column as the output frame takes it, and where it is missing.

    Arrow-backed text (what pandas reads and infers) stays Arrow: stripped and blanks
    made missing in Arrow, never turned into Python strings here and back into Arrow by
    the frame (the writer converts it once, or hands it to COPY as it is). Other columns
    go through :func:`_texts`; either way the frame gets the same values and dtype.
    """
    if col in frame.columns and frame[col].dtype == _ARROW_TEXT:
        text = frame[col].str.strip()
        text = text.mask(text.str.len() == 0)
        missing = text.isna().to_numpy(bool)
        if not missing.all():  # (all missing: None objects, as the frame would infer them)
            return text.array, missing
    values = _texts(frame, col)
    return values, values == None  # noqa: E711 - elementwise


def _coords(frame: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Return a coordinate column as floats (NaN where missing) and its non-number cells."""
    n = len(frame)
    if col not in frame.columns:
        return np.full(n, np.nan), np.zeros(n, dtype=bool)
    s = frame[col]
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(float, na_value=np.nan), np.zeros(n, dtype=bool)
    return _numbers(_texts(frame, col))


def _lookup(
    values: np.ndarray, fn: Callable[[Any], Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map each distinct value through ``fn``: (results, each row's result, bad rows).

    The results are one per distinct value (None where ``fn`` refused it: its rows are
    bad); each row's is given by its position in them (``results[codes]``, or an
    attribute of each by :func:`_pick`).

    Values are distinct by their text (``None`` and ``"None"`` are one value: the first
    row's is looked up). Hashed, not sorted, and spread back by one take per table; a
    column of text alone (the usual case) is hashed as it is, without a copy as fixed-width
    unicode (a third of a second per million rows).

    Examples
    --------
    >>> found, codes, bad = _lookup(np.array(["a", "b", "a"], dtype=object), str.upper)
    >>> found[codes].tolist(), bad.tolist()
    (['A', 'B', 'A'], [False, False, False])
    >>> found, codes, _ = _lookup(np.array([None, "None", 7], dtype=object), repr)
    >>> found[codes].tolist()
    ['None', 'None', '7']
    """
    codes, firsts = pd.factorize(values)  # each distinct value as it first occurs
    if (codes < 0).any() or not all(isinstance(v, str) for v in firsts):
        codes, _ = pd.factorize(values.astype(str))
        firsts = values[np.unique(codes, return_index=True)[1]]
    found = np.full(len(firsts), None, dtype=object)
    refused = np.zeros(len(firsts), dtype=bool)
    for code, value in enumerate(firsts):
        try:
            found[code] = fn(value)
        except GridmapError:
            refused[code] = True
    return found, codes, refused[codes]


def _replaced(values: np.ndarray, mapping: dict[Any, Any]) -> np.ndarray:
    """Return ``mapping.get(v, v)`` of each text (or None), one lookup per distinct value.

    Examples
    --------
    >>> _replaced(np.array(["紧急", None, "x"], dtype=object), _URGENCY_ZH).tolist()
    ['urgent', None, 'x']
    """
    codes, uniques = pd.factorize(values)  # (None: -1, the table's last entry)
    table = np.array([*(mapping.get(v, v) for v in uniques), None], dtype=object)
    return table[codes]


def _pick(found: np.ndarray, codes: np.ndarray, attr: str) -> np.ndarray:
    """Return ``attr`` of each row's result of :func:`_lookup` (None where there is none).

    One ``getattr`` per distinct value, not per row (a million rows: a fifth of a second
    per attribute).

    Examples
    --------
    >>> found, codes, _ = _lookup(np.array(["a", "b", "a"], dtype=object), str.upper)
    >>> _pick(found, codes, "__class__").tolist()
    [<class 'str'>, <class 'str'>, <class 'str'>]
    """
    table = np.full(len(found), None, dtype=object)
    for k, value in enumerate(found):
        if value is not None:
            table[k] = getattr(value, attr)
    return table[codes]


def _times(values: Any) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Read reception times as :func:`~gridmap.cases.calendar.to_local` does, vectorised.

    ISO text (naive = Asia/Shanghai, or with an offset), datetimes and
    timestamps; anything unreadable is flagged (and then read row by row).
    """
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    s = s.reset_index(drop=True)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        idx = pd.DatetimeIndex(s).tz_convert(TZ)
        return idx, np.asarray(idx.isna())
    n = len(s)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    items = s.astype(object).where(s.notna(), None).tolist()
    strings = np.array([isinstance(v, str) for v in items], dtype=bool)
    text = pd.Series([v if isinstance(v, str) else "" for v in items], dtype=object)
    offset = strings & text.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True).to_numpy(bool)
    naive = strings & ~offset
    if naive.any():
        got = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        loc = pd.DatetimeIndex(got).tz_localize(TZ, ambiguous="NaT", nonexistent="NaT")
        out[naive] = loc.tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]")
    if offset.any():
        got = pd.to_datetime(text[offset], format="ISO8601", errors="coerce", utc=True)
        out[offset] = pd.DatetimeIndex(got).tz_localize(None).to_numpy("datetime64[ns]")
    iso = text.str.match(r"^\d{4}-\d{2}-\d{2}(?:[T ]|$)").to_numpy(bool)
    out[strings & ~iso] = np.datetime64("NaT")  # not ISO: read row by row (as to_local does)
    for i in np.flatnonzero(~strings):
        v = items[i]
        if v is None:
            continue
        try:
            ts = pd.Timestamp(v)
            ts = ts.tz_localize(TZ) if ts.tzinfo is None else ts
            out[i] = ts.tz_convert("UTC").tz_localize(None).to_datetime64()
        except (TypeError, ValueError):
            pass
    idx = pd.DatetimeIndex(out).tz_localize("UTC").tz_convert(TZ)
    return idx, np.isnat(out)


def _numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
    given = np.array([v is not None for v in values], dtype=bool)
    return out, given & np.isnan(out)


def intake_frame(
    tickets: pd.DataFrame,
    *,
    ids: Sequence[str],
    locate_many: LocateMany | None = None,
    calendar: WorkCalendar | None = None,
    policies: Policies | None = None,
    catalogue: Catalogue | None = None,
) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Intake every row of a ticket table at once.

    Parameters
    ----------
    tickets : pandas.DataFrame
        Canonical ticket columns (:data:`TICKET_FIELDS`; text or typed values).
    ids : sequence of str
        Our id of each row's case.
    locate_many : callable, optional
        ``locate_many(lon, lat)`` with WGS84 arrays → ``(placements, nearest)``:
        a :class:`~gridmap.cases.model.Placement` or None per point, and the
        nearest grid's code per point (reported for unlocated cases).
    calendar, policies, catalogue : optional
        Default: the shipped ones.

    Returns
    -------
    cases : pandas.DataFrame
        The good rows' cases: :data:`CASE_FIELDS`, then ``due:<clock>`` and
        ``prov:<clock>`` per clock of any policy (NaT/False where a clock does
        not apply), plus ``row`` (the input position).
    errors : list of (int, str)
        ``(row position, message)`` of every bad row, in row order.

    Examples
    --------
    >>> rows = pd.DataFrame({"source": ["app", "app"], "category": ["noise", "nope"],
    ...                      "description": ["吵", "x"], "address": ["幸福路1号", "幸福路2号"],
    ...                      "received_at": ["2026-09-18 10:00", "2026-09-18 11:00"]})
    >>> cases, errors = intake_frame(rows, ids=["C1", "C2"])
    >>> cases["status"].tolist(), errors[0][0], errors[0][1][:26]
    (['unlocated'], 1, "unknown category 'nope'; u")
    """
    from gridmap.crs import in_china, parse_crs, transform

    cal = calendar or default_calendar()
    pols = policies or default_policies()
    book = catalogue or default_catalogue()
    frame = tickets.reset_index(drop=True)
    n = len(frame)
    ids_arr = np.asarray([str(i) for i in ids], dtype=object)
    if len(ids_arr) != n:
        raise CaseError(f"{len(ids_arr)} ids for {n} tickets")
    bad = np.zeros(n, dtype=bool)

    src_in = _texts(frame, "source")
    cat_in = _texts(frame, "category")
    source, src_codes, b = _lookup(src_in, book.source)
    bad |= b | (src_in == None)  # noqa: E711 - elementwise
    category, cat_codes, b = _lookup(cat_in, book.category)
    bad |= b | (cat_in == None)  # noqa: E711
    description, no_description = _text_column(frame, "description")
    bad |= no_description
    urg_in = _texts(frame, "urgency")
    cat_urg = _pick(category, cat_codes, "urgency")
    urgency = np.where(urg_in == None, cat_urg, urg_in)  # noqa: E711
    urgency = _replaced(urgency, _URGENCY_ZH)
    bad |= ~np.isin(urgency.astype(str), URGENCIES)
    pol_in = _texts(frame, "policy")
    src_pol = _pick(source, src_codes, "policy")  # the source's policy, or the category's
    pol_default = np.where(src_pol.astype(bool), src_pol, _pick(category, cat_codes, "policy"))
    pol_name = np.where(pol_in == None, pol_default, pol_in)  # noqa: E711
    policy, pol_codes, b = _lookup(pol_name, pols.get)
    bad |= b
    received, b = _times(frame["received_at"] if "received_at" in frame else [None] * n)
    bad |= b
    from gridmap.cases.model import _flag

    if "hard" in frame and pd.api.types.is_bool_dtype(frame["hard"].dtype):
        hard = frame["hard"].to_numpy(bool)
    else:
        hard_in = frame["hard"].tolist() if "hard" in frame else [None] * n
        hard = np.fromiter((_flag(v) for v in hard_in), dtype=bool, count=n)

    lon, b1 = _coords(frame, "lon")
    lat, b2 = _coords(frame, "lat")
    bad |= b1 | b2
    has_lon, has_lat = ~np.isnan(lon), ~np.isnan(lat)
    bad |= has_lon != has_lat
    coord = has_lon & has_lat
    address, no_address = _text_column(frame, "address")
    bad |= ~coord & no_address
    crs_in = _texts(frame, "crs")
    bad |= coord & (crs_in == None)  # noqa: E711
    wlon = np.full(n, np.nan)
    wlat = np.full(n, np.nan)
    crs_name = np.full(n, None, dtype=object)
    todo = coord & ~bad
    for text in sorted({str(c) for c in pd.unique(crs_in[todo])}):  # (texts: distinct once)
        rows = todo & (crs_in == text)
        try:
            spec = parse_crs(text)
        except GridmapError:
            bad |= rows
            continue
        x, y = lon[rows], lat[rows]
        ok = np.isfinite(x) & np.isfinite(y)
        if spec.is_geographic:
            ok &= (np.abs(x) <= 180) & (np.abs(y) <= 90) & np.asarray(in_china(x, y), bool)
        wx, wy = transform(x, y, spec, "wgs84", validate=False)
        wx, wy = np.asarray(wx, float), np.asarray(wy, float)
        ok &= np.isfinite(wx) & np.isfinite(wy) & np.asarray(in_china(wx, wy), bool)
        idx = np.flatnonzero(rows)
        wlon[idx], wlat[idx] = wx, wy
        crs_name[idx] = spec.name
        bad[idx[~ok]] = True

    good = ~bad
    place = np.full(n, None, dtype=object)
    nearest = np.full(n, None, dtype=object)
    loc_rows = np.flatnonzero(good & coord)
    if locate_many is not None and loc_rows.size:
        found, near = locate_many(wlon[loc_rows], wlat[loc_rows])
        place[loc_rows] = np.asarray(list(found) + [None], dtype=object)[:-1]
        nearest[loc_rows] = np.asarray(list(near) + [None], dtype=object)[:-1]

    out = pd.DataFrame(
        {
            "id": ids_arr,
            "source": _pick(source, src_codes, "code"),
            "category": _pick(category, cat_codes, "code"),
            "urgency": urgency,
            "description": description,
            "policy": _pick(policy, pol_codes, "name"),
            "received_at": received,
            # (pd.isna: no comparison of each placement with None, a Python call per row)
            "status": np.where(pd.isna(place), "unlocated", "received"),
            "ticket_no": _text_column(frame, "ticket_no")[0],
            "reporter_name": _text_column(frame, "reporter_name")[0],
            "reporter_phone": _text_column(frame, "reporter_phone")[0],
            "lon_given": np.where(coord, lon, np.nan),
            "lat_given": np.where(coord, lat, np.nan),
            "crs_given": crs_name,
            "lon": wlon,
            "lat": wlat,
            "address": address,
            "grid_code": [p.grid_code if p is not None else None for p in place],
            "community_id": [p.community_id if p is not None else None for p in place],
            "subdistrict": [p.subdistrict if p is not None else None for p in place],
            "plan_id": [p.plan_id if p is not None else None for p in place],
            "plan_version": [p.plan_version if p is not None else None for p in place],
            "hard": hard,
            "nearest_grid": [
                None if p is not None else g for p, g in zip(place, nearest, strict=True)
            ],
            "row": np.arange(n),
        }
    )
    _deadlines(out, good, pols, cal)
    errors: list[tuple[int, str]] = []
    extra: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = (
        [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")] if bad.any() else []
    )
    for i in np.flatnonzero(bad):
        try:  # the row-by-row intake gives the exact message (or, rarely, a case)
            c = intake(records[i], case_id=ids_arr[i], calendar=cal, policies=pols, catalogue=book)
        except (GridmapError, ValueError) as exc:
            errors.append((int(i), str(exc)))
            continue
        if c.lon is not None and locate_many is not None:
            found, near = locate_many(np.array([c.lon]), np.array([c.lat]))
            c = _placed(c, found[0])
            extra.append({**case_row(c), "nearest_grid": None if found[0] else near[0], "row": i})
        else:
            extra.append({**case_row(c), "nearest_grid": None, "row": int(i)})
    cases = out[good]
    if extra:
        more = pd.DataFrame(extra)
        cases = pd.concat([cases, more.reindex(columns=cases.columns)], ignore_index=True)
        cases = cases.sort_values("row", kind="stable")
    return cases.reset_index(drop=True), errors


def _placed(c: Case, place: Placement | None) -> Case:
    from dataclasses import replace

    if place is None:
        return replace(c, status="unlocated")
    return replace(
        c,
        status="received",
        grid_code=place.grid_code,
        community_id=place.community_id,
        subdistrict=place.subdistrict,
        plan_id=place.plan_id,
        plan_version=place.plan_version,
    )


def _clock_names(pols: Policies) -> list[str]:
    return list(dict.fromkeys(c.name for p in pols.values() for c in p.clocks))


def _deadlines(out: pd.DataFrame, good: np.ndarray, pols: Policies, cal: WorkCalendar) -> None:
    """Add the ``due:<clock>`` and ``prov:<clock>`` columns of the good rows.

    One limit lookup per distinct (policy, category, urgency, hard), then one vectorised
    calendar call per clock; times move as int64 nanoseconds (no Timestamp objects).
    """
    n = len(out)
    combos = pd.DataFrame(  # the columns as they are (no copy as Python strings and back)
        {
            "p": out["policy"].array,
            "c": out["category"].array,
            "u": out["urgency"].array,
            "h": out["hard"].to_numpy(bool),
        }
    )[good]
    at_good = combos.index.to_numpy()
    groups: dict[Any, Any] = dict(combos.groupby(["p", "c", "u", "h"]).indices)
    received = pd.DatetimeIndex(out["received_at"])
    for clock in _clock_names(pols):
        wd = np.full(n, np.nan)
        hr = np.full(n, np.nan)
        for (p, c, u, h), rows in groups.items():
            rule = next((r for r in pols[str(p)].clocks if r.name == clock), None)
            if rule is None:
                continue
            lim = rule.limit_for(category=str(c), urgency=str(u), hard=bool(h))
            if lim is None:
                continue
            at = at_good[rows]
            if lim.working_days is not None:
                wd[at] = lim.working_days
            else:
                hr[at] = lim.hours
        has = ~np.isnan(wd) | ~np.isnan(hr)
        due = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)  # NaT
        prov = np.zeros(n, dtype=bool)
        if has.any():
            got = cal.due_array(received[has], working_days=wd[has], hours=hr[has])
            due[has] = pd.DatetimeIndex(got["due"]).tz_convert("UTC").as_unit("ns").asi8
            prov[has] = got["provisional"].to_numpy(bool)
        out[f"due:{clock}"] = (
            pd.DatetimeIndex(due.view("datetime64[ns]")).tz_localize("UTC").tz_convert(TZ)
        )
        out[f"prov:{clock}"] = prov


def case_row(case: Case) -> dict[str, Any]:
    """Return a :class:`Case` as a row of the :func:`intake_frame` frame (without ``row``).

    Examples
    --------
    >>> from gridmap.cases.model import intake
    >>> c = intake({"source": "app", "category": "noise", "description": "吵",
    ...             "address": "幸福路1号", "received_at": "2026-09-18 10:00"}, case_id="C1")
    >>> row = case_row(c)
    >>> row["status"], str(row["due:resolve"])
    ('unlocated', '2026-09-22 23:59:59+08:00')
    """
    row: dict[str, Any] = {f: getattr(case, f) for f in CASE_FIELDS if hasattr(case, f)}
    row["received_at"] = pd.Timestamp(case.received_at)
    for name, dl in case.deadlines.items():
        row[f"due:{name}"] = pd.Timestamp(dl.due)
        row[f"prov:{name}"] = dl.provisional
    return row


def frame_cases(cases: pd.DataFrame) -> list[Case]:
    """Turn :func:`intake_frame` rows back into :class:`Case` records.

    Examples
    --------
    >>> rows = pd.DataFrame({"source": ["app"], "category": ["noise"], "description": ["吵"],
    ...                      "address": ["幸福路1号"], "received_at": ["2026-09-18 10:00"]})
    >>> frame_cases(intake_frame(rows, ids=["C1"])[0])[0].deadlines["resolve"].due.isoformat()
    '2026-09-22T23:59:59+08:00'
    """
    from gridmap.cases.calendar import Deadline

    clocks = [c[4:] for c in cases.columns if c.startswith("due:")]
    out = []
    for rec in cases.to_dict("records"):
        deadlines = {
            k: Deadline(rec[f"due:{k}"].to_pydatetime(), bool(rec[f"prov:{k}"]))
            for k in clocks
            if not pd.isna(rec[f"due:{k}"])
        }
        kw = {f: _none(rec.get(f)) for f in CASE_FIELDS if f not in ("nearest_grid",)}
        kw["received_at"] = rec["received_at"].to_pydatetime()
        kw["hard"] = bool(rec["hard"])
        out.append(Case(**kw, deadlines=deadlines))
    return out


def _none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
