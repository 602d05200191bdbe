"""Spatial queries on stored plans: which grid covers a point.

PostGIS answers in SQL (``ST_Covers`` on the GiST index); SQLite, which has no
spatial functions without SpatiaLite, answers with a shapely ``STRtree`` over the
plan's grids. Both count boundaries as covered and break ties the same way, so
they give the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.db.plans import _P, _grid_state, _row
from gridmap.db.session import Store, transaction
from gridmap.errors import InputError

__all__ = ["locate_sql"]


def _grid_tree(store_or_s: Store | Session, s: Session, plan_id: int) -> tuple[Any, np.ndarray]:
    version = s.execute(sa.select(_P.c.version).where(_P.c.id == int(plan_id))).scalar()
    cache = store_or_s._cache if isinstance(store_or_s, Store) else {}
    key = ("grids", int(plan_id), version)
    if key not in cache:
        for k in [k for k in cache if k[:2] == ("grids", int(plan_id))]:
            del cache[k]
        df = _grid_state(s, plan_id)
        cache[key] = (shapely.STRtree(df["geom"].to_numpy()), df["grid_code"].to_numpy(object))
    return cache[key]


def locate_sql(
    target: Store | Session,
    plan_id: int,
    lon: float | Sequence[float] | np.ndarray,
    lat: float | Sequence[float] | np.ndarray,
) -> str | None | np.ndarray:
    """Return the grid code covering each WGS84 point (boundaries included), in the database.

    PostGIS answers with ``ST_Covers`` on the GiST index; SQLite with a shapely
    ``STRtree`` over the plan's grids (cached per plan version). A point on a
    boundary shared by several grids gets the smallest grid code of them, so
    both backends give the same answers.

    Parameters
    ----------
    target : Store or Session
        The store.
    plan_id : int
        The plan.
    lon, lat : float or array-like
        WGS84 longitude and latitude.

    Returns
    -------
    str or None, or numpy.ndarray of object
        Grid code(s); ``None`` outside every grid.

    Raises
    ------
    NotFoundError
        Unknown plan.
    """
    scalar = np.ndim(lon) == 0
    xs = np.atleast_1d(np.asarray(lon, dtype=float))
    ys = np.atleast_1d(np.asarray(lat, dtype=float))
    if xs.shape != ys.shape:
        raise InputError(f"lon and lat differ in length ({xs.size} vs {ys.size})")
    out = np.full(xs.size, None, dtype=object)
    with transaction(target) as s:
        _row(s, plan_id)
        if s.get_bind().dialect.name == "postgresql":
            # GiST only: "+ 0" keeps the planner off the (plan_id, grid_code) b-tree, which
            # it would otherwise AND with the spatial index for every point.
            pts = sa.text(
                """
                SELECT p.i, min(g.grid_code)
                FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[]))
                     WITH ORDINALITY AS p(x, y, i)
                LEFT JOIN grids g
                  ON (g.plan_id + 0) = :pid
                 AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))
                GROUP BY p.i
                """
            )
            s.execute(sa.text("SET LOCAL jit = off"))  # compiling costs more than it saves
            for i, code in s.execute(
                pts, {"pid": int(plan_id), "xs": xs.tolist(), "ys": ys.tolist()}
            ):
                out[int(i) - 1] = code
        else:
            tree, codes = _grid_tree(target, s, plan_id)
            ip, ig = tree.query(shapely.points(xs, ys), predicate="intersects")
            if ip.size:
                hit = pd.Series(codes[ig]).groupby(ip).min()
                out[hit.index.to_numpy()] = hit.to_numpy()
    return out[0] if scalar else out
