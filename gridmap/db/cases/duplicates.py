"""Likely duplicates of new cases: open cases nearby, of the same category, within days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import OPEN_STATES
from gridmap.db.cases.records import _C, _db_time

__all__ = ["likely_duplicates"]


def likely_duplicates(
    s: Session, cases: pd.DataFrame, *, radius: float = 50.0, days: float = 7.0
) -> pd.Series:
    """Return the likely duplicates of each new case: open cases (stored or in the batch) nearby.

    Runs for every import, whatever its size: the search is a space-time tree per
    category (:func:`gridmap.cases.find_duplicates`), so a year of tickets against
    itself costs seconds. A new case points only at cases received before it (the
    first case of a cluster stays clean).
    """
    import pyproj

    from gridmap.cases import find_duplicates

    out: pd.Series = pd.Series([[] for _ in range(len(cases))], index=cases.index, dtype=object)
    has = np.isfinite(cases["lon"].to_numpy(float))
    if not has.any():
        return out
    new = cases[has]
    lo = pd.Timestamp(new["received_at"].min()) - pd.Timedelta(days=days)
    hi = pd.Timestamp(new["received_at"].max()) + pd.Timedelta(days=days)
    backend = s.get_bind().dialect.name
    stored = s.execute(
        sa.select(_C.c.id, _C.c.category, _C.c.received_at, _C.c.lon, _C.c.lat).where(
            _C.c.status.in_(OPEN_STATES),
            _C.c.lon.is_not(None),
            _C.c.received_at >= _db_time(lo.to_pydatetime(), backend),
            _C.c.received_at <= _db_time(hi.to_pydatetime(), backend),
        )
    ).all()
    old = pd.DataFrame(stored, columns=["id", "category", "received_at", "lon", "lat"])
    old["received_at"] = pd.to_datetime(old["received_at"], utc=True, format="ISO8601")
    batch = new[["id", "category", "received_at", "lon", "lat"]].copy()
    batch["received_at"] = pd.to_datetime(batch["received_at"], utc=True)
    pool = pd.concat([old.astype({"id": str}), batch.astype({"id": str})], ignore_index=True)
    zone = int((float(np.nanmean(new["lon"])) + 180) // 6) + 1
    tf = pyproj.Transformer.from_crs(4326, 32600 + zone, always_xy=True)
    for frame in (pool, batch):
        frame["x"], frame["y"] = tf.transform(
            frame["lon"].to_numpy(float), frame["lat"].to_numpy(float)
        )
    batch = batch.astype({"id": str})
    found = find_duplicates(batch, pool, radius=radius, days=days, earlier_only=True)
    lists = out.tolist()
    for pos, cands in zip(np.flatnonzero(has), found.tolist(), strict=True):
        lists[pos] = cands
    return pd.Series(lists, index=cases.index, dtype=object)
