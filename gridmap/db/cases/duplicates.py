"""Likely duplicates of new cases: open cases nearby, of the same category, within days.

At intake each new case keeps its ``limit`` nearest candidates (``duplicate_of``, nearest
first) and how many there are in all (``duplicate_count``): a year of tickets at the same
hotspots finds dozens per case, and storing every one of them made the import several
times slower than writing the tickets. The full list is computed again, by query, when
a dispatcher opens the case (:func:`all_duplicates`, called by
:func:`gridmap.db.cases.get_case`: ``GET /cases/{id}``, ``gridmap cases show``): the
same rule over the cases that were open when the case was taken in (their state then is
read from the log), so it holds the stored ones and the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import OPEN_STATES
from gridmap.db.cases.records import _C, _L, _db_time, _from_db

__all__ = ["DUPLICATE_LIMIT", "likely_duplicates", "duplicate_search", "all_duplicates"]

#: Likely duplicates stored per case (nearest first); the rest are counted, and listed
#: when the case is opened.
DUPLICATE_LIMIT = 5


def _projection(lon: float) -> Any:
    """Return a transformer from WGS84 to the UTM zone of ``lon`` (metres)."""
    import pyproj

    zone = int((float(lon) + 180) // 6) + 1
    return pyproj.Transformer.from_crs(4326, 32600 + zone, always_xy=True)


def likely_duplicates(
    s: Session,
    cases: pd.DataFrame,
    *,
    radius: float = 50.0,
    days: float = 7.0,
    limit: int | None = DUPLICATE_LIMIT,
) -> pd.DataFrame:
    """Return the likely duplicates of each new case: open cases (stored or in the batch) nearby.

    Runs for every import, whatever its size: the search is a space-time grid per
    category (:func:`gridmap.cases.duplicate_pairs`) whose pairs come out as arrays, so a
    year of tickets against itself costs seconds. A new case points only at cases
    received before it (the first case of a cluster stays clean).

    Parameters
    ----------
    s : Session
    cases : pandas.DataFrame
        The new cases (``id``, ``category``, ``received_at``, WGS84 ``lon``/``lat``).
    radius, days : float
        Metres and days of the rule.
    limit : int or None, default :data:`DUPLICATE_LIMIT`
        Candidates kept per case, nearest first (None: all).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``cases``: ``duplicate_of`` (the kept candidate ids as JSON text, e.g.
        ``'["12","7"]'``, or None) and ``duplicate_count`` (all candidates, 0 if none).
    """
    return duplicate_search(s, cases, radius=radius, days=days, limit=limit)()


def duplicate_search(
    s: Session,
    cases: pd.DataFrame,
    *,
    radius: float = 50.0,
    days: float = 7.0,
    limit: int | None = DUPLICATE_LIMIT,
) -> Callable[[], pd.DataFrame]:
    """Read the open cases the search of :func:`likely_duplicates` needs; return the search.

    The store is read now, in the caller's thread; the function returned only computes
    (it holds no session), so an import runs it in a worker thread while it prepares the
    rows to write: most of its time is spent in numpy (the pair search of
    :func:`gridmap.cases.duplicate_pairs`), which releases the GIL. Its result is what
    :func:`likely_duplicates` returns for the same arguments.
    """
    n = len(cases)
    out = pd.DataFrame(
        {"duplicate_of": np.full(n, None, dtype=object), "duplicate_count": np.zeros(n, np.int64)},
        index=cases.index,
    )
    lon_all = cases["lon"].to_numpy(float)
    has = np.isfinite(lon_all)
    if not has.any():
        return lambda: out
    new = cases[has]
    rec = pd.DatetimeIndex(pd.to_datetime(new["received_at"], utc=True))
    lo = rec.min() - pd.Timedelta(days=days)
    hi = rec.max() + pd.Timedelta(days=days)
    backend = s.get_bind().dialect.name
    stored = s.execute(
        sa.select(_C.c.id, _C.c.category, _C.c.received_at, _C.c.lon, _C.c.lat).where(
            _C.c.status.in_(OPEN_STATES),
            _C.c.lon.is_not(None),
            _C.c.received_at >= _db_time(lo.to_pydatetime(), backend),
            _C.c.received_at <= _db_time(hi.to_pydatetime(), backend),
        )
    ).all()

    def search() -> pd.DataFrame:
        return _search(out, new, has, rec, stored, radius=radius, days=days, limit=limit)

    return search


def _search(
    out: pd.DataFrame,
    new: pd.DataFrame,
    has: np.ndarray,
    rec: pd.DatetimeIndex,
    stored: Sequence[Any],
    *,
    radius: float,
    days: float,
    limit: int | None,
) -> pd.DataFrame:
    """Fill ``out`` with the duplicates of the ``new`` cases (rows ``has`` of the table).

    ``stored`` are the open cases read from the store (id, category, received_at, lon,
    lat); the new cases are searched against them and against each other.
    """
    from gridmap.cases import duplicate_pairs

    batch_ids = new["id"].astype(str).to_numpy(object)
    if stored:  # (a first import into an empty store reads none: no set of its ids)
        in_batch = set(batch_ids.tolist())
        stored = [r for r in stored if str(r[0]) not in in_batch]
    old_t = pd.to_datetime(
        pd.Series([r[2] for r in stored], dtype=object), utc=True, format="ISO8601"
    )
    ids = np.concatenate([np.array([str(r[0]) for r in stored], dtype=object), batch_ids])
    lon = np.concatenate([np.array([r[3] for r in stored], float), new["lon"].to_numpy(float)])
    lat = np.concatenate([np.array([r[4] for r in stored], float), new["lat"].to_numpy(float)])
    x, y = _projection(float(np.nanmean(new["lon"].to_numpy(float)))).transform(lon, lat)
    received = pd.concat(
        [old_t.dt.as_unit("ns"), pd.Series(rec.tz_convert("UTC").as_unit("ns"))],
        ignore_index=True,
    )
    pool = pd.DataFrame(
        {
            "id": ids,
            "category": np.concatenate(
                [np.array([r[1] for r in stored], dtype=object), new["category"].to_numpy(object)]
            ),
            "received_at": received,
            "x": np.asarray(x, float),
            "y": np.asarray(y, float),
        }
    )
    is_new = np.r_[np.zeros(len(stored), bool), np.ones(len(new), bool)]
    pairs = duplicate_pairs(pool, new=is_new, radius=radius, days=days, limit=limit)
    if len(pairs) == 0:
        return out
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = pairs["row"].to_numpy(np.int64)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    offsets = np.r_[starts, len(rows)].astype(np.int32)
    # the candidates' ids taken in Arrow (no Python string per pair)
    values = pa.array(ids, pa.string()).take(pa.array(pairs["candidate"].to_numpy(np.int64)))
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
    text = pc.binary_join_element_wise('["', pc.binary_join(lists, '","'), '"]', "")
    at = np.flatnonzero(has)[rows[starts] - len(stored)]
    dup = out["duplicate_of"].to_numpy(object, copy=True)
    dup[at] = np.asarray(text.to_pylist(), dtype=object)
    count = out["duplicate_count"].to_numpy(np.int64, copy=True)
    count[at] = pairs["total"].to_numpy(np.int64)[starts]
    out["duplicate_of"] = dup
    out["duplicate_count"] = count
    return out


def all_duplicates(
    s: Session,
    case_id: int,
    *,
    radius: float = 50.0,
    days: float = 7.0,
) -> list[str]:
    """Return every likely duplicate the intake found for a case, nearest first (ties: by id).

    The rule of :func:`likely_duplicates` evaluated again for one case: cases of the same
    category with a point within ``radius`` metres, received at most ``days`` days before
    it (at the same instant: with a smaller id, compared as text), that were open when
    the case was taken in — their state at that moment is the last line of their log
    written by then.
    """
    row = s.execute(
        sa.select(
            _C.c.id, _C.c.category, _C.c.received_at, _C.c.lon, _C.c.lat, _C.c.created_at
        ).where(_C.c.id == int(case_id))
    ).first()
    if row is None or row.lon is None or row.lat is None:
        return []
    backend = s.get_bind().dialect.name
    received = _from_db(row.received_at)
    created = _from_db(row.created_at)
    assert received is not None and created is not None
    # a box a little wider than the circle, in degrees
    dlat = radius / 111_000 * 1.5
    dlon = dlat / max(np.cos(np.radians(float(row.lat))), 0.1)
    near = s.execute(
        sa.select(_C.c.id, _C.c.received_at, _C.c.lon, _C.c.lat).where(
            _C.c.category == row.category,
            _C.c.id != row.id,
            _C.c.lon.between(row.lon - dlon, row.lon + dlon),
            _C.c.lat.between(row.lat - dlat, row.lat + dlat),
            _C.c.received_at >= _db_time(received - dt.timedelta(days=days), backend),
            _C.c.received_at <= _db_time(received, backend),
        )
    ).all()
    if not near:
        return []
    tf = _projection(float(row.lon))
    x0, y0 = tf.transform(float(row.lon), float(row.lat))
    me = str(row.id)
    found: dict[int, tuple[float, str]] = {}
    for r in near:
        t = _from_db(r.received_at)
        assert t is not None
        if t == received and not str(r.id) < me:
            continue
        x, y = tf.transform(float(r.lon), float(r.lat))
        d = float(np.hypot(x - x0, y - y0))
        if d <= radius:
            found[int(r.id)] = (d, str(r.id))
    if not found:
        return []
    # open when the case was taken in: the state of each candidate's last line by then
    state: dict[int, str] = {}
    ids = sorted(found)
    for k in range(0, len(ids), 500):
        chunk = ids[k : k + 500]
        for cid, to_state in s.execute(
            sa.select(_L.c.case_id, _L.c.to_state)
            .where(_L.c.case_id.in_(chunk), _L.c.at <= _db_time(created, backend))
            .order_by(_L.c.case_id, _L.c.version)
        ):
            state[int(cid)] = str(to_state)
    return [i for _, i in sorted(v for k, v in found.items() if state.get(k) in OPEN_STATES)]
