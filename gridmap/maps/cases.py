"""Case maps (事件工单地图): many cases clustered over the grids, and the open cases near a call.

* :func:`cases_map` — every case as a point, clustered when many, coloured by
  status (状态) and red when overdue (超期); a panel filters by period, status,
  category and overdue in the page; the grids beneath are a choropleth of cases
  per 1,000 households (千户事件数) that follows the filters.
* :func:`nearby_cases` / :func:`nearby_cases_map` — for the dispatcher's locate
  page: the open cases within a radius of a new call, likely duplicates first
  (same category, recent: :func:`gridmap.cases.find_duplicates`).

Personal data: popups hold the case id, category, status, times and grid. The
ticket number, the description (诉求), the address and the caller's name and
phone are shown only with ``personal=True`` (dispatchers and up); with the
default ``personal=False`` none of them is in the HTML at all. With
``personal=True`` and ``details="/cases/"`` (how ``/maps/cases`` serves
dispatchers) they are not in the page either: a popup fetches its case from the
service when opened, where the read is checked and audited. Only an offline
page (``personal=True`` without ``details``: Jupyter, ``gridmap map --personal``)
embeds them.

Scale: the cases are not folium markers. They are written once as compact typed
columns (base64 little-endian arrays of 1e-5 degree offsets, small integer codes,
minutes; see :func:`_int_column`) and turned into canvas circle markers of a
``Leaflet.markercluster`` layer (chunked loading) by a small script; popups are
built when clicked. 100,000 cases make a page of 2.35 MB that is on the map in a
headless Chromium in under 2 s on a loaded two-core machine
(``benchmarks/maps.py --cases 100000``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import folium
import folium.plugins
import numpy as np
import pandas as pd
import pyproj
from branca.element import Element, Figure
from folium.template import Template

from gridmap.cases.vocabulary import OPEN_STATES, STAGE, STATE_NAMES, STATES
from gridmap.crs import check_lonlat, transform
from gridmap.errors import CaseError, CoordinateError, InputError, LayerError
from gridmap.maps.assets import check_assets
from gridmap.maps.display import _check_plan, _collection, _simplify, _to_display
from gridmap.maps.encoding import _safe_json
from gridmap.maps.page import _finish, _new_map
from gridmap.maps.style import _GREY, _esc, _GeoJsonLayer, _HtmlControl, _swatch
from gridmap.maps.tiles import _tile_config

if TYPE_CHECKING:
    from gridmap.cases.catalogue import Catalogue
    from gridmap.partition.plan import Plan

__all__ = [
    "STATUS_LABELS",
    "STATUS_COLOURS",
    "OVERDUE_COLOUR",
    "cases_map",
    "add_nearby_cases",
    "nearby_cases",
    "nearby_cases_map",
]

_log = logging.getLogger(__name__)

#: Chinese name of each case state (shown beside the English code).
STATUS_LABELS: dict[str, str] = {k: zh for k, (zh, _) in STATE_NAMES.items()}

#: Marker colour of each state: oranges waiting for the dispatcher, blues in the
#: handlers' hands, greens done, greys set aside. Overdue cases are red instead.
STATUS_COLOURS: dict[str, str] = {
    "unlocated": "#8073ac",
    "received": "#fdb863",
    "accepted": "#e08214",
    "returned": "#b35806",
    "reopened": "#7f3b08",
    "dispatched": "#92c5de",
    "in_progress": "#4393c3",
    "extension_requested": "#2166ac",
    "replied": "#a6dba0",
    "callback": "#5aae61",
    "closed": "#1b7837",
    "rejected": "#bababa",
    "merged": "#878787",
}

#: Fill of an overdue case (its outline is darker and thicker).
OVERDUE_COLOUR = "#d7191c"
_OVERDUE_LINE = "#67001f"

#: Choropleth of cases per 1,000 households (light → dark).
_RATE_COLOURS = ("#edf8fb", "#b3cde3", "#8c96c6", "#8856a7", "#810f7c")

#: States in which a passed resolve deadline makes a case overdue (not yet replied).
_LATE_STATES = frozenset(s for s in OPEN_STATES if STAGE[s] < STAGE["replied"])

#: Personal fields: only with ``personal=True`` (label, column).
_PERSONAL = (
    ("工单编号 Ticket", "ticket"),
    ("诉求 Description", "description"),
    ("地址 Address", "address"),
    ("来电人 Caller", "reporter_name"),
    ("电话 Phone", "reporter_phone"),
)

_CASES_CSS = """<style>
.gridmap-cases-filter { max-height: 60vh; overflow-y: auto; min-width: 210px; }
.gridmap-cases-filter details { margin: 3px 0; }
.gridmap-cases-filter summary { cursor: pointer; font-weight: 600; }
.gridmap-cases-filter label { display: block; white-space: nowrap; }
.gridmap-cases-filter input[type=date] { width: 8.6em; font-size: 11px; }
.gridmap-cases-filter .gm-n { font-weight: 600; }
.gridmap-cluster-od { position: absolute; top: -4px; right: -6px; min-width: 14px; height: 14px;
  padding: 0 3px; border-radius: 7px; background: #d7191c; color: #fff;
  font: 700 10px/14px sans-serif; text-align: center; box-shadow: 0 0 0 1px #fff; }
.gridmap-case-popup td { padding: 0 6px 1px 0; vertical-align: top; }
.gridmap-case-popup .od { color: #d7191c; font-weight: 700; }
.gridmap-near li { margin: 2px 0; }
.gridmap-near ol { margin: 2px 0 0 18px; padding: 0; }
</style>"""


# --------------------------------------------------------------------------- input


def _as_local(values: pd.Series) -> pd.Series:
    """Return times as Asia/Shanghai (naive values are local time, as in gridmap.cases)."""
    s = pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("Asia/Shanghai")
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s.dt.tz_localize("Asia/Shanghai")
    try:
        parsed = pd.to_datetime(s, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):  # mixed offsets, or aware and naive together: one by one
        parsed = pd.Series(
            [pd.NaT if pd.isna(v) else _when(v) for v in s], index=s.index, dtype=object
        )
        return pd.to_datetime(parsed, utc=True).dt.tz_convert("Asia/Shanghai")
    return _as_local(parsed)


def _minutes(times: pd.Series) -> np.ndarray:
    """Whole minutes since the Unix epoch of aware times (float, NaN where missing)."""
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    return ((times - epoch) / pd.Timedelta(minutes=1)).to_numpy(dtype=float)


def _when(value: Any, *, end: bool = False) -> pd.Timestamp:
    """Return a bound of a period: a date means its whole day (an end date: to its midnight)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        day_only = True
    else:
        day_only = isinstance(value, str) and len(value.strip()) <= 10
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"period bound {value!r} is not a date or time; give e.g. '2026-11-01' or "
            "'2026-11-01 08:00'"
        ) from exc
    if t is pd.NaT:
        raise InputError(f"period bound {value!r} is empty; give a date such as '2026-11-01'")
    t = t.tz_localize("Asia/Shanghai") if t.tzinfo is None else t.tz_convert("Asia/Shanghai")
    if end and day_only:
        t = t.normalize() + pd.Timedelta(days=1)
    return t


def _period(period: Any) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    if period is None:
        return None, None
    if isinstance(period, str) or not isinstance(period, Sequence) or len(period) != 2:
        raise InputError(
            f"period={period!r} must be (start, end), e.g. ('2026-11-01', '2026-11-30'): both "
            "days included; None on either side leaves it open"
        )
    start = None if period[0] is None else _when(period[0])
    end = None if period[1] is None else _when(period[1], end=True)
    if start is not None and end is not None and end <= start:
        raise InputError(
            f"period ends ({period[1]}) before it starts ({period[0]}); swap the dates"
        )
    return start, end


def _values(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _prepare(
    cases: pd.DataFrame,
    *,
    now: Any,
    period: Any,
    status: str | Sequence[str] | None,
    category: str | Sequence[str] | None,
    book: Catalogue,
) -> pd.DataFrame:
    """Check the cases frame and return it filtered, with ``overdue`` and aware times."""
    if not isinstance(cases, pd.DataFrame):
        raise InputError(
            "cases must be a DataFrame with id, lon, lat, status and category columns "
            "(e.g. from gridmap.db.case_frames.case_frame)"
        )
    missing = [c for c in ("id", "lon", "lat", "status", "category") if c not in cases.columns]
    if missing:
        raise LayerError(
            f"cases lacks column(s) {missing}; it has {list(cases.columns)}. Pass id, lon, lat "
            "(WGS84), status, category and optionally received_at, due_at, overdue, grid_code"
        )
    df = cases.reset_index(drop=True).copy()
    df["status"] = df["status"].astype(str)
    bad = sorted(set(df["status"]) - set(STATES))
    if bad:
        raise InputError(f"unknown case status {bad}; the states are {list(STATES)}")
    df["category"] = df["category"].astype(str)
    for col in ("received_at", "due_at"):
        df[col] = (
            _as_local(df[col])
            if col in df.columns
            else pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, Asia/Shanghai]")
        )
    if "received_at" in cases.columns and df["received_at"].isna().any():
        rows = df.loc[df["received_at"].isna(), "id"].head(5).tolist()
        raise InputError(f"received_at is missing or not a time for case ids {rows}")
    when = pd.Timestamp.now(tz="Asia/Shanghai") if now is None else _when(now)
    if "overdue" in df.columns:
        df["overdue"] = df["overdue"].fillna(False).astype(bool)
    else:
        df["overdue"] = (
            df["status"].isin(_LATE_STATES).to_numpy()
            & df["due_at"].notna().to_numpy()
            & (df["due_at"] < when).fillna(False).to_numpy()
        )
    keep = np.ones(len(df), dtype=bool)
    sts = _values(status)
    if sts is not None:
        unknown = sorted(set(sts) - set(STATES))
        if unknown:
            raise InputError(f"unknown status filter {unknown}; the states are {list(STATES)}")
        keep &= df["status"].isin(sts).to_numpy()
    cats = _values(category)
    if cats is not None:
        codes = []
        for c in cats:
            try:
                codes.append(book.category(c).code)
            except CaseError as exc:  # unknown category: say which ones exist
                raise InputError(
                    f"unknown category {c!r}; categories: {', '.join(book.codes)} "
                    "(Chinese names such as 噪音扰民 work too)"
                ) from exc
        keep &= df["category"].isin(codes).to_numpy()
    start, end = _period(period)
    if (start is not None or end is not None) and "received_at" not in cases.columns:
        raise LayerError("period= needs a received_at column in cases")
    if start is not None:
        keep &= (df["received_at"] >= start).to_numpy()
    if end is not None:
        keep &= (df["received_at"] < end).to_numpy()
    df = df.loc[keep].reset_index(drop=True)
    df["lon"] = pd.to_numeric(df["lon"], errors="coerce").astype(float)
    df["lat"] = pd.to_numeric(df["lat"], errors="coerce").astype(float)
    here = df["lon"].notna() & df["lat"].notna()
    try:
        check_lonlat(df.loc[here, "lon"].to_numpy(), df.loc[here, "lat"].to_numpy())
    except CoordinateError as exc:
        lon, lat = df["lon"].to_numpy(), df["lat"].to_numpy()
        out = here.to_numpy() & ((np.abs(lon) > 180) | (np.abs(lat) > 90) | ~np.isfinite(lon))
        ids = df.loc[out, "id"].head(5).tolist()
        raise CoordinateError(f"cases: {exc} (case ids {ids})") from exc
    return df


# --------------------------------------------------------------------------- encoding


def _codes(values: pd.Series, order: Sequence[str]) -> tuple[list[int], list[str]]:
    """Integer codes of ``values`` into a table (``order`` first, then others sorted)."""
    uniques = pd.unique(values.astype(object).to_numpy())
    present = set(uniques.tolist())
    table = [v for v in order if v in present]
    table += sorted(present - set(table))
    index = pd.Index(table)
    return index.get_indexer(pd.Index(values.astype(object))).tolist(), table


#: Typed-array kinds a column may be written as, smallest first (little-endian).
_INT_KINDS = (
    ("u1", np.dtype("<u1")),
    ("i1", np.dtype("<i1")),
    ("u2", np.dtype("<u2")),
    ("i2", np.dtype("<i2")),
    ("u4", np.dtype("<u4")),
    ("i4", np.dtype("<i4")),
)

#: Coordinates are written in units of 1e-5 degree (about 1 m): plenty for a case's point.
_COORD_SCALE = 100_000


def _int_column(values: np.ndarray, *, missing: np.ndarray | None = None) -> dict[str, Any]:
    """Write integers as a base64 typed array, the smallest that holds them.

    ``{"t": kind, "b": base64}`` (kinds of :data:`_INT_KINDS`) plus ``"a"``, a number
    added to every value (when not 0). ``"d": 1`` when the values are written as
    differences from the one before (the page sums them back, from ``a``), chosen when
    that needs a smaller type (ids, times in order). ``"m"`` is the stored value that
    stands for a missing one (``missing`` true; no ``a`` then). Integers no type holds
    stay a JSON list ``{"v": [...]}``. The page reads a typed array without parsing
    text: 100,000 values of two bytes are 267 kB of base64 instead of ~700 kB of digits.

    Examples
    --------
    >>> _int_column(np.array([-1, 4, 6]))
    {'t': 'i1', 'b': '/wQG'}
    >>> _int_column(np.array([100000, 100001, 100003]))
    {'t': 'u1', 'b': 'AAED', 'a': 100000}
    >>> _int_column(np.array([100000, 140000, 180000, 220000]))
    {'t': 'u2', 'b': 'AABAnECcQJw=', 'a': 100000, 'd': 1}
    >>> _int_column(np.array([5, 0]), missing=np.array([False, True]))
    {'t': 'u1', 'b': 'Bf8=', 'm': 255}
    """
    import base64

    v = np.asarray(values, dtype=np.int64)
    gone = np.zeros(len(v), dtype=bool) if missing is None else np.asarray(missing, dtype=bool)
    has_gone = bool(gone.any())
    # (stored values, added, as differences)
    candidates: list[tuple[np.ndarray, int, bool]] = []
    if has_gone:
        candidates.append((np.where(gone, 0, v), 0, False))
    else:
        base = int(v.min()) if len(v) else 0
        base = base if base > 0 else 0  # small codes and -1 (none) are kept as they are
        candidates.append((v - base, base, False))
        if len(v) > 2:
            candidates.append((np.diff(v, prepend=v[0]), int(v[0]), True))
    best: tuple[np.dtype, str, np.ndarray, int, bool] | None = None
    for data, add, delta in candidates:
        lo = int(data.min()) if len(data) else 0
        hi = int(data.max()) if len(data) else 0
        for kind, dtype in _INT_KINDS:
            info = np.iinfo(dtype)
            top = info.max - 1 if has_gone else info.max  # room for the missing mark
            if info.min <= lo and hi <= top:
                if best is None or dtype.itemsize < best[0].itemsize:
                    best = (dtype, kind, data, add, delta)
                break
    if best is None:
        return {"v": [None if g else int(x) for x, g in zip(v, gone, strict=True)]}
    dtype, kind, data, add, delta = best
    mark = int(np.iinfo(dtype).max)
    stored = np.where(gone, mark, data) if has_gone else data
    out: dict[str, Any] = {
        "t": kind,
        "b": base64.b64encode(stored.astype(dtype).tobytes()).decode("ascii"),
    }
    if add:
        out["a"] = add
    if delta:
        out["d"] = 1
    if has_gone:
        out["m"] = mark
    return out


def _ids(ids: pd.Series) -> dict[str, Any]:
    """Integer ids as a typed column (differences when in order); anything else as strings."""
    num = pd.to_numeric(ids, errors="coerce")
    if len(ids) and num.notna().all() and bool((num == np.round(num)).all()):
        return _int_column(num.to_numpy(dtype=np.int64))
    return {"s": ids.astype(str).tolist()}


def _encode_cases(
    df: pd.DataFrame,
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    grid_codes: list[str],
    book: Catalogue,
    personal: bool,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Return the cases as compact columns for the page, and the codes as arrays.

    ``x``/``y`` are 1e-5 degree offsets from ``x0``/``y0`` (``q`` = 100,000 per degree),
    ``s``/``c``/``g`` indexes into the status, category and grid tables ``S``/``C``/``G``
    (``g`` -1: no grid on the map), ``o`` 1 for overdue, ``t`` minutes after ``t0``
    (received) and ``d`` the resolve deadline in minutes after reception: each a typed
    column of :func:`_int_column`. The arrays (``s``, ``o``, ``c``, ``g``) count the
    panel's and the legend's figures.
    """
    x = np.rint(lon * _COORD_SCALE).astype(np.int64)
    y = np.rint(lat * _COORD_SCALE).astype(np.int64)
    x0 = int(x.min()) if len(x) else 0
    y0 = int(y.min()) if len(y) else 0
    s_list, s_table = _codes(df["status"], STATES)
    c_order = [c.code for c in book.categories]
    c_list, c_table = _codes(df["category"], c_order)
    arrays = {
        "s": np.asarray(s_list, dtype=np.int64),
        "o": df["overdue"].to_numpy(dtype=np.int64),
        "c": np.asarray(c_list, dtype=np.int64),
    }
    if "grid_code" in df.columns and grid_codes:
        codes = df["grid_code"].astype(object)
        codes = codes.where(codes.isna(), codes.astype(str))
        gidx = pd.Series(range(len(grid_codes)), index=grid_codes)
        gidx = gidx[~gidx.index.duplicated()]
        g = codes.map(gidx).fillna(-1).astype(np.int64).to_numpy()  # -1: no grid on the map
    else:
        g = np.full(len(df), -1, dtype=np.int64)
    arrays["g"] = g
    received = df["received_at"]
    has_t = bool(received.notna().any())
    t0 = 0
    t: dict[str, Any] | None = None
    d: dict[str, Any] | None = None
    if has_t:
        minutes = np.floor(_minutes(received)).astype(np.int64)
        t0 = int(minutes.min())
        t = _int_column(minutes - t0)
        due = np.floor(_minutes(df["due_at"]))
        none = np.isnan(due)
        d = _int_column(np.where(none, 0, due).astype(np.int64) - minutes, missing=none)

    def category_label(code: str) -> str:
        try:
            return book.category(code).name_zh
        except CaseError:  # a code the catalogue does not know: shown as is
            return code

    out: dict[str, Any] = {
        "n": len(df),
        "q": _COORD_SCALE,
        "x0": x0,
        "y0": y0,
        "x": _int_column(x - x0),
        "y": _int_column(y - y0),
        "i": _ids(df["id"]),
        "s": _int_column(arrays["s"]),
        "o": _int_column(arrays["o"]),
        "c": _int_column(arrays["c"]),
        "g": _int_column(g),
        "t0": t0,
        "t": t,
        "d": d,
        "S": [[s, STATUS_LABELS.get(s, s), STATUS_COLOURS.get(s, _GREY)] for s in s_table],
        "C": [[c, category_label(c)] for c in c_table],
        "G": grid_codes,
    }
    if personal:
        out["p"] = [_text_column(df[c]) if c in df.columns else None for _, c in _PERSONAL]
        out["P"] = [label for label, _ in _PERSONAL]
    return out, arrays


def _text_column(values: pd.Series) -> dict[str, Any]:
    """Encode text as ``{"v": [...]}``, or ``{"t": table, "k": [...]}`` when values repeat."""
    obj = values.astype(object)
    obj = obj.where(obj.notna(), None)
    codes, uniques = pd.factorize(obj, use_na_sentinel=True)
    if len(uniques) <= len(obj) // 2:
        return {"t": [str(u) for u in uniques], "k": codes.tolist()}
    return {"v": [None if v is None else str(v) for v in obj.tolist()]}


# --------------------------------------------------------------------------- page


class _CaseLayer(folium.plugins.MarkerCluster):
    """The cases as one cluster layer built in the page from compact columns, with the filters."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <div id="{{ this.get_name() }}_filter" class="gridmap-panel gridmap-cases-filter"
             style="display:none">{{ this.panel }}</div>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function (map, D, grids, R, details) {
            var OD = {{ this.overdue_js }}, ODL = {{ this.overdue_line_js }};
            var KINDS = {u1: Uint8Array, i1: Int8Array, u2: Uint16Array, i2: Int16Array,
                         u4: Uint32Array, i4: Int32Array};
            function col(c) {  // a typed column (base64, little-endian; "d": differences)
                if (!c) return null;
                if (c.v) return c.v;
                var s = atob(c.b), k = s.length, u = new Uint8Array(k);
                for (var j = 0; j < k; j++) u[j] = s.charCodeAt(j);
                var a = new KINDS[c.t](u.buffer), add = c.a || 0;
                if (!c.d && !add) return a;
                var out = new Float64Array(a.length), acc = add;
                if (c.d) for (var j = 0; j < a.length; j++) { acc += a[j]; out[j] = acc; }
                else for (var j = 0; j < a.length; j++) out[j] = a[j] + add;
                return out;
            }
            var n = D.n, X = col(D.x), Y = col(D.y), Sx = col(D.s), Ox = col(D.o),
                Cx = col(D.c), Gx = col(D.g), Tx = col(D.t), Dx = col(D.d),
                DM = D.d && "m" in D.d ? D.d.m : null;
            var ids = D.i.s ? D.i.s : col(D.i);
            function pad(v) { return v < 10 ? "0" + v : "" + v; }
            function fmt(min) {  // minutes since the epoch (UTC) -> Asia/Shanghai text
                var t = new Date(min * 60000 + 8 * 3600000);
                return t.getUTCFullYear() + "-" + pad(t.getUTCMonth() + 1) + "-" +
                    pad(t.getUTCDate()) + " " + pad(t.getUTCHours()) + ":" + pad(t.getUTCMinutes());
            }
            function row(tb, label, text, cls) {
                var tr = document.createElement("tr"), th = document.createElement("th"),
                    td = document.createElement("td");
                th.textContent = label; td.textContent = text;
                if (cls) td.className = cls;
                tr.appendChild(th); tr.appendChild(td); tb.appendChild(tr);
                return td;
            }
            var PERSONAL = {{ this.personal_js }};
            function fetchDetails(i, tb, pop) {  // personal data: read (and audited) per click
                var td = row(tb, "详情 Details", "读取中 loading…");
                fetch(details + encodeURIComponent(ids[i]), {
                    credentials: "same-origin", headers: {"Accept": "application/json"}
                }).then(function (r) {
                    if (!r.ok) throw new Error(r.status === 401 || r.status === 403
                        ? "需登录调度员账号 sign in with a dispatcher key (" + r.status + ")"
                        : "服务返回 the service answered " + r.status);
                    return r.json();
                }).then(function (c) {
                    tb.removeChild(td.parentNode);
                    for (var k = 0; k < PERSONAL.length; k++) {
                        var v = c[PERSONAL[k][1]];
                        if (v) row(tb, PERSONAL[k][0], v);
                    }
                    pop.update();
                }, function (e) {
                    td.textContent = "无法读取 unavailable: " +
                        (e && e.message && e.message.indexOf("sign in") >= 0 ? e.message
                         : "详情需从服务读取 details come from the gridmap service");
                    td.className = "od";
                    pop.update();
                });
            }
            function popup(i, pop) {
                var box = document.createElement("div"), tb = document.createElement("table");
                box.className = "gridmap-case-popup";
                var h = document.createElement("b");
                h.textContent = "事件 Case " + ids[i];
                box.appendChild(h); box.appendChild(tb);
                var st = D.S[Sx[i]], ca = D.C[Cx[i]];
                row(tb, "类别 Category", ca[1] + " (" + ca[0] + ")");
                row(tb, "状态 Status", st[1] + " " + st[0]);
                if (Ox[i]) row(tb, "超期 Overdue", "是 yes", "od");
                if (Tx) {
                    row(tb, "受理 Received", fmt(D.t0 + Tx[i]));
                    if (Dx[i] !== DM) row(tb, "时限 Due", fmt(D.t0 + Tx[i] + Dx[i]));
                }
                if (Gx[i] >= 0) row(tb, "网格 Grid", D.G[Gx[i]]);
                if (D.p) {
                    for (var k = 0; k < D.P.length; k++) {
                        var c = D.p[k], v = null;
                        if (c && c.v) v = c.v[i];
                        else if (c && c.k[i] >= 0) v = c.t[c.k[i]];
                        if (v) row(tb, D.P[k], v);
                    }
                } else if (details) {
                    fetchDetails(i, tb, pop);
                }
                return box;
            }
            // one marker class per status and overdue, its style on the prototype: a marker
            // then costs one small object, not a copy of its options (3x faster at 100,000)
            var styles = {};
            function styled(s, od) {
                var k = 2 * s + od;
                if (!styles[k]) styles[k] = L.CircleMarker.extend({options: {
                    radius: od ? 7 : 6, weight: od ? 2 : 1, color: od ? ODL : "#333",
                    fillColor: od ? OD : D.S[s][2], fillOpacity: 0.9}});
                return styles[k];
            }
            var markers = new Array(n);
            for (var i = 0; i < n; i++) {
                var Mk = styled(Sx[i], Ox[i] === 1 ? 1 : 0);
                var mk = new Mk(new L.LatLng((D.y0 + Y[i]) / D.q, (D.x0 + X[i]) / D.q));
                mk._gm = i;
                markers[i] = mk;
            }
            var cluster = L.markerClusterGroup({
                chunkedLoading: true, chunkInterval: 250, chunkDelay: 1,
                showCoverageOnHover: false, maxClusterRadius: 60, spiderfyOnMaxZoom: true,
                disableClusteringAtZoom: 18,
                chunkProgress: function (done, total) {
                    if (done < total || total !== state.expect) return;
                    setTimeout(function () { state.ready = true; state.loads += 1; }, 0);
                },
                iconCreateFunction: function (c) {
                    var kids = c.getAllChildMarkers(), late = 0;
                    for (var k = 0; k < kids.length; k++) late += Ox[kids[k]._gm];
                    var count = kids.length;
                    var size = count < 10 ? "small" : count < 100 ? "medium" : "large";
                    var html = "<div><span>" + count + "</span></div>" +
                        (late ? "<b class='gridmap-cluster-od' title='超期 overdue'>" + late +
                                "</b>" : "");
                    return L.divIcon({html: html, iconSize: new L.Point(40, 40),
                        className: "marker-cluster marker-cluster-" + size});
                }
            });
            // ready: every shown case is in the cluster layer (loaded in chunks, the page
            // stays responsive); loads counts the loads, a filter change is one more
            var state = {ready: false, loads: 0, shown: 0, expect: n, total: n, cluster: cluster};
            cluster.on("click", function (e) {  // the popup is built when clicked
                var pop = L.popup({maxWidth: 360}).setLatLng(e.layer.getLatLng());
                pop.setContent(popup(e.layer._gm, pop)).openOn(map);
            });
            // the grid choropleth (cases per 1,000 households) follows the filters
            var gIndex = {};
            for (var k = 0; k < D.G.length; k++) gIndex[D.G[k]] = k;
            function rateColour(r) {
                if (r === null) return R.none;
                var k = 0;
                while (k < R.breaks.length && r >= R.breaks[k]) k++;
                return R.colours[k];
            }
            function restyle(counts) {
                if (!grids) return;
                grids.eachLayer(function (l) {
                    var p = l.feature.properties, k = gIndex[p.grid_code];
                    var c = k === undefined ? 0 : counts[k];
                    p.cases = c;
                    p.per_1000 = p.households > 0 ? Math.round(c / p.households * 10000) / 10
                                                   : null;
                    l.setStyle({fillColor: rateColour(p.per_1000)});
                });
            }
            // filters
            var panel = document.getElementById({{ (this.get_name() ~ "_filter")|tojson }});
            function checked(kind) {
                var on = {};
                panel.querySelectorAll("input[data-" + kind + "]").forEach(function (el) {
                    if (el.checked) on[+el.getAttribute("data-" + kind)] = true;
                });
                return on;
            }
            function dayMinutes(value, plusDay) {  // a yyyy-mm-dd in Asia/Shanghai -> minutes
                if (!value) return null;
                var p = value.split("-");
                var ms = Date.UTC(+p[0], +p[1] - 1, +p[2] + (plusDay ? 1 : 0)) - 8 * 3600000;
                return ms / 60000 - D.t0;
            }
            function apply() {
                var S = checked("s"), C = checked("c");
                var lateOnly = panel.querySelector("input[data-late]");
                lateOnly = lateOnly && lateOnly.checked;
                var from = panel.querySelector("input[data-from]");
                var to = panel.querySelector("input[data-to]");
                var a = from ? dayMinutes(from.value, false) : null;
                var b = to ? dayMinutes(to.value, true) : null;
                var keep = [], counts = new Array(D.G.length).fill(0);
                for (var i = 0; i < n; i++) {
                    if (!S[Sx[i]] || !C[Cx[i]]) continue;
                    if (lateOnly && !Ox[i]) continue;
                    if (a !== null && Tx[i] < a) continue;
                    if (b !== null && Tx[i] >= b) continue;
                    keep.push(markers[i]);
                    if (Gx[i] >= 0) counts[Gx[i]] += 1;
                }
                state.ready = false;
                state.shown = state.expect = keep.length;
                panel.querySelector(".gm-n").textContent = keep.length.toLocaleString();
                cluster.clearLayers();
                if (keep.length) cluster.addLayers(keep);
                else { state.ready = true; state.loads += 1; }
                restyle(counts);
            }
            state.apply = apply;
            var ctl = L.control({position: "bottomleft"});
            ctl.onAdd = function () {
                panel.style.display = "block";
                L.DomEvent.disableClickPropagation(panel);
                L.DomEvent.disableScrollPropagation(panel);
                return panel;
            };
            ctl.addTo(map);
            panel.addEventListener("change", apply);
            state.shown = n;
            map.gridmapCases = state;
            // on the map first: markercluster's addLayers off the map is quadratic
            cluster.addTo(map);
            if (n) cluster.addLayers(markers); else { state.ready = true; state.loads += 1; }
            return cluster;
        })({{ this._parent.get_name() }}, {{ this.data_js }}, {{ this.grids_name }},
           {{ this.rates_js }}, {{ this.details_js }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        data: dict[str, Any],
        *,
        panel: str,
        grids_name: str | None,
        rates: dict[str, Any],
        name: str,
        details: str | None = None,
    ) -> None:
        super().__init__(name=name, overlay=True, control=True)
        self._name = "GridmapCases"
        self.data_js = _safe_json(data)
        self.panel = panel
        self.grids_name = grids_name or "null"
        self.rates_js = _safe_json(rates)
        self.overdue_js = _safe_json(OVERDUE_COLOUR)
        self.overdue_line_js = _safe_json(_OVERDUE_LINE)
        self.details_js = _safe_json(details)
        self.personal_js = _safe_json([list(p) for p in _PERSONAL])


def _filter_panel(
    df: pd.DataFrame, data: dict[str, Any], codes: dict[str, np.ndarray], *, n_unlocated: int
) -> str:
    """Return the filter panel: period, status, overdue only, category (with counts)."""
    parts = ["<h4>事件 Cases · 筛选 Filters</h4>"]
    received = df["received_at"]
    if data["t"] is not None:
        lo = received.min().strftime("%Y-%m-%d")
        hi = received.max().strftime("%Y-%m-%d")
        parts.append(
            "<div>时段 Period: "
            f'<input type="date" data-from min="{lo}" max="{hi}" title="从 from">–'
            f'<input type="date" data-to min="{lo}" max="{hi}" title="至 to (included)"></div>'
        )
    s_counts = np.bincount(codes["s"], minlength=len(data["S"]))
    rows = []
    for k, (code, zh, colour) in enumerate(data["S"]):
        rows.append(
            f'<label><input type="checkbox" data-s="{k}" checked> '
            f'<i style="background:{colour};opacity:.9"></i>{_esc(zh)} {_esc(code)} · '
            f"{int(s_counts[k])}</label>"
        )
    parts.append("<details open><summary>状态 Status</summary>" + "".join(rows) + "</details>")
    n_late = int(np.sum(codes["o"]))
    parts.append(
        '<label><input type="checkbox" data-late> '
        f'<i style="background:{OVERDUE_COLOUR};border-color:{_OVERDUE_LINE}"></i>'
        f"仅超期 Overdue only · {n_late}</label>"
    )
    c_counts = np.bincount(codes["c"], minlength=len(data["C"]))
    rows = [
        f'<label><input type="checkbox" data-c="{k}" checked> {_esc(zh)} '
        f'<span style="color:#666">{_esc(code)}</span> · {int(c_counts[k])}</label>'
        for k, (code, zh) in enumerate(data["C"])
    ]
    parts.append("<details><summary>类别 Category</summary>" + "".join(rows) + "</details>")
    parts.append(f'<div>显示 Showing <span class="gm-n">{data["n"]:,}</span> / {data["n"]:,}</div>')
    if n_unlocated:
        parts.append(f"<div>无坐标未显示 Not drawn (no location): {n_unlocated:,}</div>")
    return "".join(parts)


def _rate_breaks(rates: np.ndarray) -> list[float]:
    """Return 4 class breaks of cases per 1,000 households (quantiles, 2 significant digits)."""
    r = rates[np.isfinite(rates) & (rates > 0)]
    if len(r) == 0:
        return []
    qs = np.quantile(r, [0.2, 0.4, 0.6, 0.8])
    out: list[float] = []
    for q in qs:
        q = float(q)
        if q <= 0:
            continue
        digits = 1 - int(np.floor(np.log10(q)))
        v = float(round(q, digits))
        if v > 0 and (not out or v > out[-1]):
            out.append(v)
    return out


def _rate_colour(rate: float | None, breaks: list[float]) -> str:
    if rate is None or not np.isfinite(rate):
        return _GREY
    k = int(np.searchsorted(np.asarray(breaks, dtype=float), rate, side="right"))
    return _RATE_COLOURS[min(k, len(_RATE_COLOURS) - 1)]


def _grid_frames(plans: Sequence[Plan], *, simplify_tolerance: float, gcj: bool) -> Any:
    """Display geometry and properties of the grids of every plan, concatenated."""
    geoms: list[np.ndarray] = []
    props: list[pd.DataFrame] = []
    for plan in plans:
        grids, crs = _check_plan(plan)
        simple = _simplify(grids.geometry.to_numpy(), crs, simplify_tolerance, coverage=True)
        geoms.append(_to_display(simple, crs, gcj=gcj))
        hh = pd.to_numeric(grids["households"], errors="coerce").to_numpy(dtype=float)
        props.append(
            pd.DataFrame(
                {
                    "grid_code": grids["grid_code"].astype(str).to_numpy(dtype=object),
                    "name": (
                        grids["name"].astype(object).to_numpy() if "name" in grids.columns else None
                    ),
                    "households": [int(h) if np.isfinite(h) else None for h in hh],
                }
            )
        )
    return np.concatenate(geoms), pd.concat(props, ignore_index=True)


def cases_map(
    cases: pd.DataFrame,
    plan: Plan | Sequence[Plan] | None = None,
    *,
    personal: bool = False,
    now: Any = None,
    period: tuple[Any, Any] | None = None,
    status: str | Sequence[str] | None = None,
    category: str | Sequence[str] | None = None,
    catalogue: Catalogue | None = None,
    title: str | None = None,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    simplify_tolerance: float = 2.0,
    assets: str = "cdn",
    details: str | None = None,
) -> folium.Map:
    """Map cases (事件工单): clustered points coloured by status and overdue, over the grids.

    Parameters
    ----------
    cases : pandas.DataFrame
        One row per case: ``id``, ``lon``, ``lat`` (WGS84 degrees; empty for
        unlocated cases, which are counted but not drawn), ``status`` (a state
        of :data:`gridmap.cases.STATES`), ``category`` (a catalogue code) and
        optionally ``received_at``, ``due_at`` (the resolve deadline),
        ``overdue`` (else computed from ``due_at`` at ``now``), ``grid_code``;
        with ``personal=True`` also ``ticket``, ``description``, ``address``,
        ``reporter_name``, ``reporter_phone``. :func:`gridmap.db.case_frames.case_frame`
        gives this frame from a store.
    plan : Plan or list of Plan, optional
        Grids drawn beneath as a choropleth of cases per 1,000 households
        (counting the drawn cases by their ``grid_code``).
    personal : bool, default False
        Show the ticket number, description, address and the caller's name and
        phone in the popups. Only for dispatchers and up: with False none of
        them is written into the HTML. Without ``details`` they are written into
        the page (an offline or Jupyter map: keep the file safe); with it, they
        are not.
    details : str, optional
        With ``personal=True``: the URL prefix of the service's case record
        (``"/cases/"``: the page fetches ``GET /cases/{id}`` when a popup opens,
        with the browser's session, so each read is checked and audited there).
        No personal data is then written into the page; opened outside the
        service, the popup says that the details come from it.
    now : datetime, optional
        When ``overdue`` is computed (default: now). Ignored when ``cases``
        has an ``overdue`` column.
    period : (start, end), optional
        Only cases received in it; dates include their whole day, so
        ``("2026-11-01", "2026-11-30")`` is November.
    status, category : str or list of str, optional
        Only these states / categories (codes or Chinese names: 噪音扰民).
        The page filters further (period, status, category, overdue only).
    catalogue : Catalogue, optional
        Category names (default: the shipped catalogue).
    title : str, optional
        Page title (default 事件分布 Cases).
    tiles, attr, tiles_key, tiles_crs, simplify_tolerance
        As in :func:`gridmap.maps.plan_map`.
    assets : str, default "cdn"
        ``"cdn"``, ``"inline"`` (works offline) or a URL prefix serving
        ``gridmap/static/vendor/`` (see :func:`gridmap.maps.assets.use_assets`).

    Returns
    -------
    folium.Map

    Raises
    ------
    LayerError
        A required column is missing.
    InputError
        An unknown status or category, a bad period.
    CoordinateError
        A coordinate out of range (the message names the case ids).

    Examples
    --------
    >>> import pandas as pd
    >>> from gridmap.maps.examples import _example_plan
    >>> df = pd.DataFrame({"id": [1, 2], "lon": [118.7805, 118.781], "lat": [32.0495, 32.0496],
    ...                    "status": ["in_progress", "closed"], "category": ["noise", "road"],
    ...                    "received_at": ["2026-11-02 09:00", "2026-11-03 10:30"],
    ...                    "due_at": ["2026-11-03 23:59:59", "2026-11-10 23:59:59"],
    ...                    "grid_code": ["320106001001001", "320106001001001"]})
    >>> m = cases_map(df, _example_plan(), now="2026-11-05", assets="inline")
    >>> html = m.get_root().render()
    >>> "办理中 in_progress · 1" in html, "仅超期 Overdue only · 1" in html
    (True, True)
    """
    from gridmap.cases.catalogue import default_catalogue

    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    assets = check_assets(assets)
    book = catalogue or default_catalogue()
    df = _prepare(cases, now=now, period=period, status=status, category=category, book=book)
    here = (df["lon"].notna() & df["lat"].notna()).to_numpy()
    n_unlocated = int((~here).sum())
    df = df.loc[here].reset_index(drop=True)
    lon = df["lon"].to_numpy(dtype=float)
    lat = df["lat"].to_numpy(dtype=float)
    if cfg.gcj and len(df):
        lon, lat = transform(lon, lat, "wgs84", "gcj02", validate=False)
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)

    plans: list[Plan] = []
    if plan is not None:
        plans = [plan] if hasattr(plan, "grids") else list(plan)  # type: ignore[list-item]
    if plans:
        disp, gprops = _grid_frames(plans, simplify_tolerance=simplify_tolerance, gcj=cfg.gcj)
    else:
        disp, gprops = np.zeros(0, dtype=object), pd.DataFrame({"grid_code": []})
    grid_codes = gprops["grid_code"].astype(str).tolist()
    data, codes = _encode_cases(
        df, lon, lat, grid_codes=grid_codes, book=book, personal=personal and details is None
    )

    import shapely

    pts = shapely.points(lon, lat) if len(df) else np.zeros(0, dtype=object)
    m = _new_map(
        cfg,
        np.concatenate([disp, pts]) if len(disp) or len(pts) else disp,
        title=title or "事件分布 Cases",
        prefer_canvas=True,
        assets=assets,
    )
    root = m.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(Element(_CASES_CSS), name="gridmap_cases_css")
    if len(pts):
        # markercluster builds one level per zoom from the map's minimum: stopping a few
        # levels above the city's own zoom halves the work of loading 100,000 cases
        m.options["min_zoom"] = _min_zoom(np.asarray(lon), np.asarray(lat))

    grids_name = None
    breaks: list[float] = []
    if plans:
        counts = np.bincount(codes["g"][codes["g"] >= 0], minlength=len(grid_codes))
        hh = gprops["households"]
        rate = [
            round(int(c) / float(h) * 1000, 1) if h is not None and h > 0 else None
            for c, h in zip(counts, hh, strict=True)
        ]
        gprops["cases"] = counts.astype(object)
        gprops["per_1000"] = rate
        breaks = _rate_breaks(np.asarray([np.nan if r is None else r for r in rate], dtype=float))
        colour = {c: _rate_colour(r, breaks) for c, r in zip(grid_codes, rate, strict=True)}
        layer = _GeoJsonLayer(
            _collection(disp, gprops, "grid_code"),
            name="网格 Grids · 千户事件数 cases per 1,000 households",
            style_function=lambda f: {
                "color": "#555555",
                "weight": 1.2,
                "fillColor": colour[f["id"]],
                "fillOpacity": 0.45,
            },
            tooltip=folium.GeoJsonTooltip(
                ["grid_code", "name", "households", "cases", "per_1000"],
                aliases=[
                    "网格编码 Grid code",
                    "名称 Name",
                    "户数 Households",
                    "事件 Cases",
                    "千户事件数 Per 1,000 households",
                ],
                sticky=True,
            ),
        )
        layer.add_to(m)
        grids_name = layer.get_name()

    rates = {"breaks": breaks, "colours": list(_RATE_COLOURS), "none": _GREY}
    _CaseLayer(
        data,
        panel=_filter_panel(df, data, codes, n_unlocated=n_unlocated),
        grids_name=grids_name,
        rates=rates,
        name=f"事件 Cases ({len(df):,})",
        details=details if personal else None,
    ).add_to(m)
    _HtmlControl(
        _legend(data, codes, breaks if plans else None), css_class="gridmap-legend"
    ).add_to(m)
    return _finish(m)


def _min_zoom(lon: np.ndarray, lat: np.ndarray, *, below: int = 4) -> int:
    """Return the zoom ``below`` levels under the one that fits the points in ~1,000 pixels.

    Examples
    --------
    >>> _min_zoom(np.array([118.76, 118.86]), np.array([32.04, 32.10]))
    9
    """
    mid = float(np.radians(np.clip(np.mean(lat), -85, 85)))
    span = max(float(np.ptp(lon)), float(np.ptp(lat)) / max(np.cos(mid), 0.01), 1e-4)
    fit = int(np.floor(np.log2(360.0 / span * 1000.0 / 256.0)))
    return int(np.clip(fit - below, 0, 14))


def _legend(data: dict[str, Any], codes: dict[str, np.ndarray], breaks: list[float] | None) -> str:
    rows = [f"<h4>事件 Cases: {data['n']:,}</h4>"]
    present = {code for code, _, _ in data["S"]}
    for code in STATES:
        if code in present:
            rows.append(_swatch(STATUS_COLOURS[code], f"{STATUS_LABELS[code]} {code}"))
    rows.append(_swatch(OVERDUE_COLOUR, f"超期 Overdue · {int(np.sum(codes['o'])):,}"))
    if breaks is not None:
        rows.append("<h4>千户事件数 Cases per 1,000 households</h4>")
        if not breaks:
            rows.append(_swatch(_RATE_COLOURS[0], "0 (无事件 no cases in grids)"))
        edges = [0.0, *breaks] if breaks else []
        for k, lo in enumerate(edges):
            hi = edges[k + 1] if k + 1 < len(edges) else None
            label = f"{lo:g}–{hi:g}" if hi is not None else f"≥ {lo:g}"
            rows.append(_swatch(_RATE_COLOURS[min(k, len(_RATE_COLOURS) - 1)], label))
        rows.append(_swatch(_GREY, "无户数 No households"))
    return "".join(rows)


# --------------------------------------------------------------------------- near a call


def nearby_cases(
    cases: pd.DataFrame,
    lon: float,
    lat: float,
    *,
    radius: float = 300.0,
    category: str | None = None,
    at: Any = None,
    days: float = 7.0,
    limit: int | None = 50,
    catalogue: Catalogue | None = None,
) -> pd.DataFrame:
    """Open cases within ``radius`` metres of a point, likely duplicates first.

    A likely duplicate has the call's ``category`` and was received within
    ``days`` of ``at`` (the rule of :func:`gridmap.cases.find_duplicates`); the
    rest follow by distance. Closed, rejected and merged cases are left out.

    Parameters
    ----------
    cases : pandas.DataFrame
        ``id``, ``lon``, ``lat`` (WGS84), ``status``, ``category``,
        ``received_at`` and any other columns (kept).
    lon, lat : float
        The call's point, WGS84.
    radius : float, default 300
        Metres.
    category : str, optional
        The call's category (code or Chinese name); without it no case is a
        likely duplicate.
    at : datetime, optional
        When the call came in (default: now).
    days : float, default 7
    limit : int or None, default 50
        At most this many rows (duplicates are never cut before others).
    catalogue : Catalogue, optional

    Returns
    -------
    pandas.DataFrame
        The matching rows with ``distance_m`` and ``likely_duplicate``, sorted
        duplicates first, then by distance (ties: by id).

    Examples
    --------
    >>> df = pd.DataFrame({"id": [1, 2, 3], "lon": [118.7800, 118.7810, 118.7800],
    ...     "lat": [32.0500, 32.0500, 32.0600], "status": ["in_progress", "received", "closed"],
    ...     "category": ["road", "noise", "noise"],
    ...     "received_at": ["2026-11-02 09:00"] * 3})
    >>> near = nearby_cases(df, 118.7801, 32.05, category="噪音扰民", at="2026-11-03")
    >>> near[["id", "likely_duplicate"]].values.tolist()
    [[2, True], [1, False]]
    >>> near["distance_m"].round(0).tolist()
    [85.0, 9.0]
    """
    from gridmap.cases.catalogue import default_catalogue
    from gridmap.cases.duplicates import find_duplicates
    from gridmap.crs import local_crs

    book = catalogue or default_catalogue()
    if not radius or radius <= 0 or not np.isfinite(radius):
        raise InputError(f"radius must be a positive number of metres, got {radius!r}")
    if days < 0:
        raise InputError(f"days must be 0 or more, got {days!r}")
    check_lonlat(lon, lat)
    df = _prepare(cases, now=at, period=None, status=None, category=None, book=book)
    df = df.loc[df["status"].isin(OPEN_STATES) & df["lon"].notna() & df["lat"].notna()]
    crs = local_crs((float(lon), float(lat)))
    tr = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    x0, y0 = tr.transform(float(lon), float(lat))
    x, y = tr.transform(df["lon"].to_numpy(dtype=float), df["lat"].to_numpy(dtype=float))
    dist = np.hypot(np.asarray(x) - x0, np.asarray(y) - y0)
    inside = dist <= radius
    df = df.loc[inside].copy()
    df["distance_m"] = np.round(dist[inside], 1)
    df["x"], df["y"] = np.asarray(x)[inside], np.asarray(y)[inside]
    dup: set[str] = set()
    if category is not None and len(df):
        try:
            code = book.category(category).code
        except CaseError as exc:
            raise InputError(
                f"unknown category {category!r}; categories: {', '.join(book.codes)}"
            ) from exc
        when = pd.Timestamp.now(tz="Asia/Shanghai") if at is None else _when(at)
        new = pd.DataFrame(
            {"id": ["__call__"], "category": [code], "received_at": [when], "x": [x0], "y": [y0]}
        )
        found = find_duplicates(
            new, df[["id", "category", "received_at", "x", "y"]], radius=radius, days=days
        )
        dup = set(found.iloc[0])
    df["likely_duplicate"] = df["id"].astype(str).isin(dup)
    df["_id"] = df["id"].astype(str)
    df = df.sort_values(
        ["likely_duplicate", "distance_m", "_id"], ascending=[False, True, True], kind="stable"
    ).drop(columns=["x", "y", "_id"])
    if limit is not None:
        df = df.head(max(int(limit), int(df["likely_duplicate"].sum())))
    return df.reset_index(drop=True)


def nearby_cases_map(
    plan: Plan,
    lon: float,
    lat: float,
    cases: pd.DataFrame,
    *,
    radius: float = 300.0,
    category: str | None = None,
    at: Any = None,
    days: float = 7.0,
    personal: bool = False,
    staff_visible: bool = True,
    coord_system: str = "wgs84",
    grid_code: str | None = None,
    incident_id: str | None = None,
    tiles: str | None = "osm",
    attr: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str | None = None,
    assets: str = "cdn",
) -> folium.Map:
    """Map a call as :func:`gridmap.maps.incident_map` does, with the open cases near it.

    The open cases within ``radius`` metres are drawn as numbered markers
    (likely duplicates ringed in red) and listed in a panel, likely
    duplicates first (:func:`nearby_cases`).

    Parameters
    ----------
    plan, lon, lat, staff_visible, coord_system, grid_code, incident_id
        As in :func:`gridmap.maps.incident_map` (``lon``/``lat`` in ``coord_system``).
    cases : pandas.DataFrame
        Cases as for :func:`cases_map` (the open ones are searched).
    radius, category, at, days
        As in :func:`nearby_cases`.
    personal : bool, default False
        List the description and the caller (dispatchers and up only).
    tiles, attr, tiles_key, tiles_crs, assets
        As in :func:`cases_map`.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> from gridmap.maps.examples import _example_plan
    >>> df = pd.DataFrame({"id": [7], "lon": [118.7812], "lat": [32.0496],
    ...     "status": ["dispatched"], "category": ["noise"], "received_at": ["2026-11-02"]})
    >>> m = nearby_cases_map(_example_plan(), 118.781, 32.0495, df, category="noise",
    ...                      at="2026-11-03")
    >>> "疑似重复 Likely duplicate" in m.get_root().render()
    True
    """
    from gridmap.maps.incidents import incident_map

    cfg = _tile_config(tiles, attr, tiles_key, tiles_crs)
    wlon, wlat = transform(float(lon), float(lat), coord_system, "wgs84")
    near = nearby_cases(
        cases, float(wlon), float(wlat), radius=radius, category=category, at=at, days=days
    )
    m = incident_map(
        plan,
        lon,
        lat,
        grid_code=grid_code,
        staff_visible=staff_visible,
        coord_system=coord_system,
        incident_id=incident_id,
        tiles=tiles,
        attr=attr,
        tiles_key=tiles_key,
        tiles_crs=tiles_crs,
        assets=assets,
    )
    root = m.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(Element(_CASES_CSS), name="gridmap_cases_css")
    add_nearby_cases(m, near, radius=radius, personal=personal, gcj=cfg.gcj)
    return m


def add_nearby_cases(
    m: folium.Map,
    near: pd.DataFrame,
    *,
    radius: float,
    personal: bool = False,
    gcj: bool = False,
) -> folium.Map:
    """Draw the rows of :func:`nearby_cases` on ``m``: numbered markers and a list panel."""
    from gridmap.cases.catalogue import default_catalogue

    book = default_catalogue()
    group = folium.FeatureGroup(name=f"附近未结事件 Open cases within {radius:g} m").add_to(m)
    lon = near["lon"].to_numpy(dtype=float)
    lat = near["lat"].to_numpy(dtype=float)
    if gcj and len(near):
        lon, lat = transform(lon, lat, "wgs84", "gcj02", validate=False)
    items = []
    n_dup = int(near["likely_duplicate"].sum()) if len(near) else 0
    for k, rec in enumerate(near.to_dict("records"), start=1):
        try:
            cat = book.category(str(rec["category"])).name_zh
        except CaseError:
            cat = str(rec["category"])
        st = str(rec["status"])
        dup = bool(rec["likely_duplicate"])
        late = bool(rec.get("overdue", False))
        lines = [
            f"<b>{k}. 事件 Case {_esc(rec['id'])}</b>",
            f"{_esc(cat)} · {_esc(STATUS_LABELS.get(st, st))} {_esc(st)}",
            f"距离 Distance: {float(rec['distance_m']):,.0f} m",
        ]
        if dup:
            lines.append("<b style='color:#d7191c'>疑似重复 Likely duplicate</b>")
        if late:
            lines.append("<span style='color:#d7191c'>超期 Overdue</span>")
        if pd.notna(rec.get("received_at")):
            lines.append(f"受理 Received: {pd.Timestamp(rec['received_at']):%Y-%m-%d %H:%M}")
        if personal:
            for label, col in _PERSONAL:
                v = rec.get(col)
                if v is not None and not (isinstance(v, float) and np.isnan(v)) and str(v):
                    lines.append(f"{label}: {_esc(v)}")
        html = "<br>".join(lines)
        fill = OVERDUE_COLOUR if late else STATUS_COLOURS.get(st, _GREY)
        folium.CircleMarker(
            [float(lat[k - 1]), float(lon[k - 1])],
            radius=9 if dup else 7,
            color=OVERDUE_COLOUR if dup else "#333333",
            weight=3 if dup else 1,
            fill=True,
            fill_color=fill,
            fill_opacity=0.9,
            tooltip=f"{k}. {_esc(cat)} · {_esc(STATUS_LABELS.get(st, st))}",
            popup=folium.Popup(html, max_width=320),
        ).add_to(group)
        tag = " <b style='color:#d7191c'>疑似重复 Likely duplicate</b>" if dup else ""
        items.append(
            f"<li>{_esc(rec['id'])} · {_esc(cat)} · {_esc(STATUS_LABELS.get(st, st))} · "
            f"{float(rec['distance_m']):,.0f} m{tag}</li>"
        )
    head = (
        f"<h4>附近未结事件 Open cases within {radius:g} m: {len(near)}</h4>"
        f"<div>疑似重复 Likely duplicates: {n_dup}</div>"
    )
    body = f"<ol>{''.join(items)}</ol>" if items else "<div>无 None</div>"
    _HtmlControl(head + body, position="topright", css_class="gridmap-near").add_to(m)
    # the layer control must come after every layer it lists (its script names them)
    for key, child in list(m._children.items()):
        if isinstance(child, folium.LayerControl):
            del m._children[key]
            m.add_child(child, name=key)
    return m
