"""Likely duplicate cases: the same category, close in space and time.

Several residents often report the same noise or the same burst pipe. A new
case is a likely duplicate of an open case of the same category within
``radius`` metres and ``days`` days (both parameters). A dispatcher then
merges it (action ``merge`` of :data:`gridmap.cases.states.TRANSITIONS`); nothing is merged
automatically.

Coordinates must be projected (metres): pass frames with ``x``/``y`` columns or
GeoDataFrames of points in a projected CRS (e.g. from
:func:`gridmap.crs.local_crs`). The search uses a :class:`scipy.spatial.cKDTree`
per category over space *and* time (a box of ``radius`` metres by ``days`` days,
then the exact distance), so its cost grows with the cases that really are close
— a year of a district's tickets (a million, many at the same hotspots) against
itself takes seconds, not the square of a hotspot's size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from gridmap.errors import CRSError, LayerError

__all__ = ["find_duplicates"]

_COLUMNS = ("id", "category", "received_at")


def _xy(frame: pd.DataFrame, name: str) -> np.ndarray:
    geom = getattr(frame, "geometry", None) if "geometry" in frame.columns else None
    if geom is not None and not {"x", "y"} <= set(frame.columns):
        crs = getattr(frame, "crs", None)
        if crs is None or crs.is_geographic:
            raise CRSError(
                f"{name} must be in a projected CRS (metres); reproject with "
                "frame.to_crs(gridmap.crs.local_crs(frame)) first"
            )
        return np.column_stack([geom.x.to_numpy(), geom.y.to_numpy()])
    missing = [c for c in ("x", "y") if c not in frame.columns]
    if missing:
        raise LayerError(f"{name} lacks {missing}: give projected x/y in metres or point geometry")
    xy = frame[["x", "y"]].to_numpy(dtype=float)
    if not np.isfinite(xy).all():
        bad = np.flatnonzero(~np.isfinite(xy).all(axis=1))[:5].tolist()
        raise LayerError(f"{name} has missing or infinite x/y at rows {bad}; drop unlocated cases")
    if len(xy) and np.abs(xy).max() <= 180:
        raise CRSError(
            f"{name} x/y look like degrees; project them to metres (gridmap.crs.local_crs) first"
        )
    return xy


def _utc(values: pd.Series) -> np.ndarray:
    """Return times as UTC datetime64[ns]; naive values are Asia/Shanghai local time."""
    s = pd.to_datetime(values)
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize("Asia/Shanghai")
    return s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


def find_duplicates(
    new: pd.DataFrame,
    open_cases: pd.DataFrame,
    *,
    radius: float = 50.0,
    days: float = 7.0,
    same_category: bool = True,
    earlier_only: bool = False,
) -> pd.Series:
    """Candidate duplicates of each new case among open cases.

    Parameters
    ----------
    new, open_cases : pandas.DataFrame or geopandas.GeoDataFrame
        Columns ``id``, ``category``, ``received_at`` and projected ``x``/``y``
        (or point geometry in a projected CRS; both frames in the same CRS).
    radius : float, default 50
        Metres.
    days : float, default 7
        The open case was received at most this many days before or after.
    same_category : bool, default True
    earlier_only : bool, default False
        Keep only open cases received before the new one (at the same instant: with a
        smaller id), so that the first case of a cluster has no candidates — what an
        import of a batch that is its own pool needs.

    Returns
    -------
    pandas.Series
        Indexed like ``new``; each value the list of candidate ids, nearest
        first (ties: by id). A case is never its own candidate.

    Examples
    --------
    >>> t = pd.Timestamp("2026-09-18 10:00")
    >>> open_ = pd.DataFrame({"id": ["A", "B", "C"], "category": ["noise", "noise", "road"],
    ...                       "received_at": [t, t - pd.Timedelta(days=9), t],
    ...                       "x": [1000.0, 1010.0, 1000.0], "y": [5000.0, 5000.0, 5000.0]})
    >>> new = pd.DataFrame({"id": ["N"], "category": ["noise"], "received_at": [t],
    ...                     "x": [1020.0], "y": [5000.0]})
    >>> find_duplicates(new, open_).tolist()
    [['A']]
    """
    if radius <= 0 or days < 0:
        raise ValueError(f"radius must be > 0 and days ≥ 0, got radius={radius}, days={days}")
    for name, frame in (("new", new), ("open_cases", open_cases)):
        missing = [c for c in _COLUMNS if c not in frame.columns]
        if missing:
            raise LayerError(f"{name} lacks column(s) {missing}")
    crs_a, crs_b = getattr(new, "crs", None), getattr(open_cases, "crs", None)
    if crs_a is not None and crs_b is not None and crs_a != crs_b:
        raise CRSError(f"new is in {crs_a} but open_cases in {crs_b}; reproject one of them")
    result: pd.Series = pd.Series([[] for _ in range(len(new))], index=new.index, dtype=object)
    if len(new) == 0 or len(open_cases) == 0:
        return result
    xy_new, xy_open = _xy(new, "new"), _xy(open_cases, "open_cases")
    t_new, t_open = _utc(new["received_at"]), _utc(open_cases["received_at"])
    ids_new = new["id"].astype(str).to_numpy(object)
    ids_open = open_cases["id"].astype(str).to_numpy(object)
    i, j = _pairs(
        xy_new,
        xy_open,
        t_new,
        t_open,
        radius=radius,
        days=days,
        groups=(
            (new["category"].astype(str).to_numpy(object), open_cases["category"].astype(str))
            if same_category
            else None
        ),
    )
    ok = ids_new[i] != ids_open[j]
    if earlier_only:
        ok &= (t_open[j] < t_new[i]) | ((t_open[j] == t_new[i]) & (ids_open[j] < ids_new[i]))
    i, j = i[ok], j[ok]
    if len(i) == 0:
        return result
    dist = np.hypot(*(xy_new[i] - xy_open[j]).T)
    order = np.lexsort((ids_open[j], dist, i))
    i, j = i[order], j[order]
    lists = result.to_list()
    for row, cand in zip(i.tolist(), ids_open[j].tolist(), strict=True):
        lists[row].append(cand)
    return pd.Series(lists, index=new.index, dtype=object)


def _pairs(
    xy_new: np.ndarray,
    xy_open: np.ndarray,
    t_new: np.ndarray,
    t_open: np.ndarray,
    *,
    radius: float,
    days: float,
    groups: tuple[np.ndarray, pd.Series] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)`` within ``radius`` metres and ``days`` days (same group if given).

    Time is scaled so that ``days`` spans ``radius``; a Chebyshev ball of the tree is
    then the box |dx|, |dy| ≤ radius, |dt| ≤ days, refined by the exact tests.
    """
    window = max(days * 86400.0, 1e-3)  # seconds; days=0 still needs a (tiny) box
    scale = radius / window
    t0 = min(t_new.min(), t_open.min()) if len(t_new) and len(t_open) else np.datetime64(0, "ns")
    s_new = (t_new - t0).astype("timedelta64[ns]").astype(np.float64) / 1e9 * scale
    s_open = (t_open - t0).astype("timedelta64[ns]").astype(np.float64) / 1e9 * scale
    p_new = np.column_stack([xy_new, s_new])
    p_open = np.column_stack([xy_open, s_open])
    if groups is None:
        sets = [(np.arange(len(p_new)), np.arange(len(p_open)))]
    else:
        g_new, g_open = groups
        by_open = pd.Series(np.arange(len(p_open))).groupby(g_open.to_numpy(object)).indices
        by_new = pd.Series(np.arange(len(p_new))).groupby(g_new).indices
        sets = [
            (np.asarray(rows), np.asarray(by_open[g])) for g, rows in by_new.items() if g in by_open
        ]
    out_i: list[np.ndarray] = []
    out_j: list[np.ndarray] = []
    for rows_new, rows_open in sets:
        tree = cKDTree(p_open[rows_open])
        hits = tree.query_ball_point(p_new[rows_new], r=radius * (1 + 1e-9), p=np.inf)
        counts = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        if counts.sum() == 0:
            continue
        out_i.append(np.repeat(rows_new, counts))
        out_j.append(rows_open[np.concatenate([np.asarray(h, np.int64) for h in hits if len(h)])])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, j = np.concatenate(out_i), np.concatenate(out_j)
    dist = np.hypot(*(xy_new[i] - xy_open[j]).T)
    ok = (dist <= radius) & (np.abs(t_new[i] - t_open[j]) <= np.timedelta64(int(days * 86400), "s"))
    return i[ok], j[ok]
