"""Batch positioning without the web: read a batch of points, answer one flat row each.

The table behind ``POST /locate/batch`` and ``gridmap locate -i points.csv``:
:func:`parse_batch` reads JSON, GeoJSON or CSV into ``id, lon, lat, crs`` columns and
:func:`locate_rows` locates them in a :class:`~gridmap.api.locator.Locator` and
shapes the answer (status, grid, candidates, distances, community, staff). Nothing
here imports the web stack, so the command line starts without FastAPI.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pandas as pd

from gridmap.api.locator import Area, api_crs, check_coordinates
from gridmap.errors import CoordinateError, CRSError, InputError

try:  # optional speed-up for 100 k-row bodies
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

__all__ = ["parse_batch", "locate_rows"]

_LON_NAMES = ("lon", "lng", "longitude", "x", "经度", "x坐标")
_LAT_NAMES = ("lat", "latitude", "y", "纬度", "y坐标")
_ID_NAMES = ("id", "ticket_no", "ticket", "工单编号", "编号", "序号")
_CRS_NAMES = ("crs", "坐标系")


def _where(points: pd.DataFrame, i: int) -> str:
    """How to name point ``i`` to a person: its spreadsheet line (CSV/XLSX) or 1-based number."""
    ident = points["id"].iat[i]
    if "line" in points.columns:
        line = points["line"].to_numpy()[i]
        return f"line {line} (id {ident})"
    return f"point {i + 1} (id {ident})"


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        if isinstance(value, float) and np.isnan(value):
            return None
    if value is pd.NA:
        return None
    return value


def _loads(body: bytes) -> Any:
    try:
        return _orjson.loads(body) if _orjson is not None else json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            f"the body is not valid JSON ({exc}); send JSON points, a GeoJSON FeatureCollection "
            "or CSV with Content-Type: text/csv"
        ) from None


def _from_records(points: Any, where: str) -> pd.DataFrame:
    if not isinstance(points, list):
        raise InputError(f'{where} must be a list of points like {{"lon": 118.78, "lat": 32.05}}')
    if points and not all(isinstance(p, dict) for p in points):
        bad = next(i for i, p in enumerate(points) if not isinstance(p, dict))
        raise InputError(
            f'{where}[{bad}] is not an object; every point is {{"id": …, "lon": …, "lat": …}}'
        )
    return _columns(pd.DataFrame.from_records(points) if points else pd.DataFrame(), where)


def _id_strings(col: pd.Series) -> np.ndarray:
    """Ids as Python str (None where missing); integer-valued floats without ``.0``."""
    if col.dtype.kind in "iu":
        return col.astype(str).to_numpy(object)
    if col.dtype.kind == "f":
        whole = col.notna() & (col == col.round())
        text = np.where(whole, col.fillna(0).astype(np.int64).astype(str), col.astype(str))
        return np.where(col.notna().to_numpy(), text, np.array(None)).astype(object)
    values = col.astype(object).to_numpy()
    missing = pd.isna(values)
    out = np.empty(len(values), dtype=object)  # writable, even for an empty column
    out[:] = [str(v) for v in values]
    out[missing] = None
    return out


def _columns(df: pd.DataFrame, where: str) -> pd.DataFrame:
    cols = {str(c).strip().lower(): c for c in df.columns}
    lon = next((cols[n] for n in _LON_NAMES if n in cols), None)
    lat = next((cols[n] for n in _LAT_NAMES if n in cols), None)
    if (len(df) or len(cols)) and (lon is None or lat is None):
        names = [str(c) for c in df.columns]
        sep = next((c for c in (";", "\t", "|") if len(names) == 1 and c in names[0]), None)
        raise InputError(
            f"{where} needs lon and lat columns (also accepted: lng/longitude/x/经度, "
            "latitude/y/纬度); "
            f"found {names[:10]}"
            + (f"; the lines look separated by {sep!r}: send comma-separated values" if sep else "")
        )
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for name, col in (("lon", lon), ("lat", lat)):
        values = pd.to_numeric(df[col], errors="coerce") if col is not None else pd.Series([])
        if col is not None:
            raw = df[col]
            bad = values.isna() & raw.notna()
            if raw.dtype.kind == "b":
                bad = raw.notna()
            elif raw.dtype == object:
                bad |= np.fromiter((isinstance(v, bool) for v in raw), bool, len(raw))
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                at = f"line {i + 2}" if where in ("CSV", "XLSX") else f"point {i + 1}"
                raise InputError(
                    f"{where}: {name} at {at} is {_clean(df[col].iat[i])!r}, not a number; "
                    f"fix that row ({int(bad.sum())} row(s) in all)"
                )
        out[name] = values.to_numpy(dtype=np.float64) if col is not None else []
    ids = next((cols[n] for n in _ID_NAMES if n in cols), None)
    out["id"] = (
        _id_strings(df[ids]) if ids is not None else np.arange(len(df)).astype(str).astype(object)
    )
    crs_col = next((cols[n] for n in _CRS_NAMES if n in cols), None)
    out["crs"] = _id_strings(df[crs_col]) if crs_col is not None else None
    return out


def _utf8(body: bytes) -> bytes:
    """Return the CSV as UTF-8 without a BOM: UTF-8 as it is, else GBK/GB18030 (Chinese Excel)."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return body.decode("gb18030").encode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                "the CSV is neither UTF-8 nor GBK/GB18030 text; save it from Excel as "
                "'CSV UTF-8' (or CSV on a Chinese Windows) and send it again"
            ) from None
    return body


def _read_csv(body: bytes) -> pd.DataFrame:
    """Read a CSV body with pyarrow (fast); ids and CRS names stay text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    text_cols = {n: pa.string() for n in ("id", "ID", "Id", "crs", "CRS", *_ID_NAMES[1:])}
    text_cols.update({n: pa.string() for n in _CRS_NAMES})
    try:
        table = pacsv.read_csv(
            io.BytesIO(_utf8(body)),
            convert_options=pacsv.ConvertOptions(column_types=text_cols, strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the CSV body ({str(exc).strip()[:200]}); send UTF-8 or GBK text with a "
            "header line lon,lat (or 经度,纬度; optional id, crs) and one point per line"
        ) from None
    return table.to_pandas()


def _read_xlsx(body: bytes) -> pd.DataFrame:
    """Read the first sheet of an XLSX body (the one table reader of :mod:`gridmap.tables`)."""
    from gridmap.tables import read_table

    return read_table(body, name="the XLSX body").frame


def parse_batch(body: bytes, content_type: str) -> tuple[pd.DataFrame, str | None]:
    """Read a batch body into ``id, lon, lat, crs`` columns; return it and a body-level CRS.

    Parameters
    ----------
    body : bytes
        JSON (``{"crs", "points"}`` or a list), GeoJSON FeatureCollection or CSV.
    content_type : str
        The request's ``Content-Type``.

    Returns
    -------
    tuple
        ``(frame, crs)``.

    Raises
    ------
    InputError
        Malformed body, missing columns, non-numeric coordinates.
    """
    ct = content_type.split(";")[0].strip().lower()
    if ct in ("text/csv", "application/csv", "text/plain") or (
        ct not in ("application/json", "application/geo+json")
        and body.lstrip()[:1] not in (b"{", b"[")
    ):
        if not body.strip():
            raise InputError("the CSV body is empty; send a header line `id,lon,lat` and rows")
        kind = "XLSX" if body[:4] == b"PK\x03\x04" else "CSV"
        df = _read_xlsx(body) if kind == "XLSX" else _read_csv(body)
        points = _columns(df, kind)
        points["line"] = np.arange(2, len(points) + 2)  # as a spreadsheet shows them
        return points, None
    data = _loads(body)
    if isinstance(data, list):
        return _from_records(data, "points"), None
    if not isinstance(data, dict):
        raise InputError('the JSON body must be an object {"points": [...]} or a list of points')
    if data.get("type") == "FeatureCollection":
        feats = data.get("features")
        if not isinstance(feats, list):
            raise InputError('the GeoJSON FeatureCollection has no "features" list')
        lon = np.empty(len(feats))
        lat = np.empty(len(feats))
        ids: list[str | None] = []
        for i, f in enumerate(feats):
            geom = f.get("geometry") if isinstance(f, dict) else None
            coords = geom.get("coordinates") if isinstance(geom, dict) else None
            if (
                not isinstance(geom, dict)
                or geom.get("type") != "Point"
                or not isinstance(coords, list)
                or len(coords) < 2
            ):
                raise InputError(
                    f"GeoJSON feature {i} is not a Point with [lon, lat] coordinates; only Point "
                    "features can be located"
                )
            try:
                lon[i], lat[i] = float(coords[0]), float(coords[1])
            except (TypeError, ValueError):
                raise InputError(f"GeoJSON feature {i} has non-numeric coordinates") from None
            fid = f.get("id")
            if fid is None and isinstance(f.get("properties"), dict):
                fid = f["properties"].get("id")
            ids.append(str(i) if fid is None else str(fid))
        df = pd.DataFrame({"lon": lon, "lat": lat, "id": np.array(ids, dtype=object)})
        df["crs"] = None
        crs = data.get("crs")
        if isinstance(crs, dict):  # old-style GeoJSON "crs" member
            crs = (crs.get("properties") or {}).get("name")
        return df, crs if isinstance(crs, str) else None
    if "points" not in data:
        raise InputError('the JSON body needs a "points" list, e.g. {"points": [{"lon": …}]}')
    crs = data.get("crs")
    return _from_records(data["points"], "points"), crs if isinstance(crs, str) else None


def _area_columns(area: Area, see_staff: bool) -> dict[str, np.ndarray]:
    """Per-grid-row arrays of the batch columns (cached on the area)."""
    key = "_batch_cols_staff" if see_staff else "_batch_cols"
    cached = getattr(area, key, None)
    if cached is not None:
        return cached
    g = area.grids
    comm = g["community_id"].astype(object).to_numpy() if "community_id" in g else None
    infos = [area.community_info(c) for c in (comm if comm is not None else [None] * len(g))]
    cols: dict[str, np.ndarray] = {
        "grid_name": g["name"].astype(object).to_numpy() if "name" in g else np.full(len(g), None),
        "community_id": comm if comm is not None else np.full(len(g), None),
        "community_name": np.array([i.get("name") for i in infos], dtype=object),
        "street": np.array([i.get("street") for i in infos], dtype=object),
        "district": np.array([i.get("district") for i in infos], dtype=object),
    }
    if see_staff:
        chief_n, chief_p, workers = [], [], []
        for code in area.index.codes:
            posts = area.staff.get(str(code), [])
            chief = next((p for p in posts if p["role"] == "chief"), None)
            chief_n.append(None if chief is None else chief["name"])
            chief_p.append(None if chief is None else chief["phone"])
            ws = [
                f"{p['name'] or p['staff_id']} {p['phone'] or ''}".strip()
                for p in posts
                if p is not chief
            ]
            workers.append("; ".join(ws) if ws else None)
        cols["chief_name"] = np.array(chief_n, dtype=object)
        cols["chief_phone"] = np.array(chief_p, dtype=object)
        cols["workers"] = np.array(workers, dtype=object)
    for name, arr in cols.items():
        cols[name] = np.append(arr.astype(object), [None])  # row -1 -> None
    setattr(area, key, cols)
    return cols


def locate_rows(
    locator: Any,
    points: pd.DataFrame,
    default_crs: str,
    *,
    plan_id: int | None,
    see_staff: bool,
    report_errors: bool,
) -> pd.DataFrame:
    """Locate a batch; return one flat row per point (the batch answer).

    Raises
    ------
    CoordinateError, CRSError
        Bad points (unless ``report_errors``: then per-row ``error``).
    """
    n = len(points)
    status = np.full(n, "error", dtype=object)
    error = np.full(n, None, dtype=object)
    out: dict[str, np.ndarray] = {
        "grid_code": np.full(n, None, dtype=object),
        "plan_id": np.full(n, None, dtype=object),
        "on_boundary": np.zeros(n, dtype=bool),
        "candidates": np.empty(n, dtype=object),
        "distance_to_boundary_m": np.full(n, np.nan),
        "nearest_grid": np.full(n, None, dtype=object),
        "nearest_distance_m": np.full(n, np.nan),
    }
    extra: dict[str, np.ndarray] = {}
    crs_values = points["crs"].to_numpy(object)
    crs_keys = np.where(pd.isna(crs_values), default_crs, crs_values).astype(str)
    lon = points["lon"].to_numpy(np.float64)
    lat = points["lat"].to_numpy(np.float64)
    for crs_name in pd.unique(crs_keys):
        sel = np.flatnonzero(crs_keys == crs_name)
        try:
            spec = api_crs(str(crs_name))
        except CRSError as exc:
            if not report_errors:
                raise CRSError(f"{_where(points, sel[0])}: {exc}") from None
            error[sel] = str(exc)
            continue
        msgs = check_coordinates(lon[sel], lat[sel], spec)
        bad = msgs != ""
        if bad.any():
            if not report_errors:
                idx = sel[np.flatnonzero(bad)]
                shown = "; ".join(
                    f"{_where(points, i)}: {m}"
                    for i, m in zip(idx[:3], msgs[bad][:3], strict=False)
                )
                raise CoordinateError(
                    f"{len(idx)} bad point(s): {shown}"
                    f"{' …' if len(idx) > 3 else ''}; fix them, or send ?errors=report to get "
                    "an error per row and the other points located"
                )
            error[sel[bad]] = msgs[bad]
            sel = sel[~bad]
        if not len(sel):
            continue
        df = locator.locate(lon[sel], lat[sel], spec, plan_id=plan_id)
        areas = locator.select(plan_id)
        found = df["grid_code"].notna().to_numpy()
        out["grid_code"][sel] = df["grid_code"].to_numpy(object)
        out["plan_id"][sel] = df["plan_id"].to_numpy().tolist()
        out["on_boundary"][sel] = df["on_boundary"].to_numpy(bool)
        out["candidates"][sel] = df["candidates"].to_numpy(object)
        out["distance_to_boundary_m"][sel] = np.round(df["distance_to_boundary"].to_numpy(float), 3)
        out["nearest_grid"][sel] = np.where(found, None, df["nearest_grid"].to_numpy(object))
        out["nearest_distance_m"][sel] = np.where(
            found, np.nan, np.round(df["nearest_distance"].to_numpy(float), 3)
        )
        status[sel] = np.where(
            found, np.where(df["on_boundary"].to_numpy(bool), "on_boundary", "inside"), "outside"
        )
        lost = df["error"].notna().to_numpy()
        if lost.any():  # too far from the plans to be projected into their CRS
            idx = sel[lost]
            if not report_errors:
                shown = "; ".join(_where(points, i) for i in idx[:3])
                raise CoordinateError(
                    f"{len(idx)} point(s) cannot be projected into the CRS of the plan(s), they "
                    f"are too far from their area: {shown}{' …' if len(idx) > 3 else ''}; check "
                    "their coordinates and crs, or send ?errors=report"
                )
            status[idx] = "error"
            error[idx] = df["error"].to_numpy(object)[lost]
            out["plan_id"][idx] = None
        rows = np.where(found, df["row"].to_numpy(), -1)
        area_idx = df["area"].to_numpy()
        for k, a in enumerate(areas):
            ks = np.flatnonzero(area_idx == k)
            if not len(ks):
                continue
            cols = _area_columns(a, see_staff)
            for name, arr in cols.items():
                if name not in extra:
                    extra[name] = np.full(n, None, dtype=object)
                extra[name][sel[ks]] = arr[rows[ks]]
    empty = np.flatnonzero(pd.isna(out["candidates"]))
    if len(empty):  # error rows
        out["candidates"][empty] = [[] for _ in range(len(empty))]
    columns = {
        "id": points["id"].to_numpy(object),
        "lon": lon,
        "lat": lat,
        "status": status,
        "grid_code": out["grid_code"],
        "grid_name": extra.get("grid_name", np.full(n, None, dtype=object)),
        "plan_id": out["plan_id"],
        "on_boundary": out["on_boundary"],
        "candidates": out["candidates"],
        "distance_to_boundary_m": out["distance_to_boundary_m"],
        "nearest_grid": out["nearest_grid"],
        "nearest_distance_m": out["nearest_distance_m"],
        **{
            k: extra.get(k, np.full(n, None, dtype=object))
            for k in ("community_id", "community_name", "street", "district")
        },
        **(
            {
                k: extra.get(k, np.full(n, None, dtype=object))
                for k in ("chief_name", "chief_phone", "workers")
            }
            if see_staff
            else {}
        ),
        "error": error,
    }
    # object columns stay object (pandas 3 would convert strings to Arrow: slow, not needed)
    frame = pd.DataFrame(
        {k: pd.Series(v, dtype=object) if v.dtype == object else v for k, v in columns.items()}
    )
    return frame
