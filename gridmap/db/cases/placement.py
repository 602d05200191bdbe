"""Placing cases on the published plans: the locator, and re-routing after a publish."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import OPEN_STATES, Placement
from gridmap.db.audit import write_audit
from gridmap.db.cases.records import _C, _CM, _P
from gridmap.db.session import Store, transaction
from gridmap.errors import NotFoundError

__all__ = ["CaseLocator", "case_locator", "reroute_cases"]

# ----------------------------------------------------------------------------- placement


class CaseLocator:
    """Point → :class:`~gridmap.cases.Placement` over the published plans (WGS84 in).

    Built by :func:`case_locator` (cached per set of published plan versions);
    only read afterwards, so it may be shared by threads (each
    :class:`~gridmap.locate.GridIndex` leases its prepared geometries per call,
    and a transformer is created per call because pyproj's are not thread-safe).
    """

    def __init__(self, parts: list[tuple[Any, dict[str, Placement]]], key: Any) -> None:
        self.parts = parts
        self.key = key

    def __len__(self) -> int:
        return sum(len(idx) for idx, _ in self.parts)

    def locate_many(
        self, lon: np.ndarray, lat: np.ndarray
    ) -> tuple[list[Placement | None], list[str | None]]:
        """Placement (or None) and nearest grid code of each WGS84 point."""
        import pyproj

        n = len(lon)
        found = np.full(n, None, dtype=object)
        nearest = np.full(n, None, dtype=object)
        best = np.full(n, np.inf)
        for index, places in self.parts:
            tf = pyproj.Transformer.from_crs(4326, index.crs, always_xy=True)
            x, y = tf.transform(np.asarray(lon, float), np.asarray(lat, float))
            # the grid and the nearest grid only: no distance to the boundary (a third faster)
            res = index.locate(np.asarray(x), np.asarray(y), boundary_distance=False)
            # each grid's placement looked up once (a batch has thousands of points per grid)
            codes, grids = pd.factorize(res["grid_code"], use_na_sentinel=True)
            table = np.full(len(grids) + 1, None, dtype=object)  # the last (code -1): None
            for k, g in enumerate(grids):  # one by one: a Placement is a tuple
                table[k] = places[str(g)]
            first = (found == None) & (codes >= 0)  # noqa: E711 (elementwise)
            found[first] = table[codes[first]]
            dist = np.nan_to_num(res["nearest_distance"].to_numpy(float), nan=np.inf)
            closer = dist < best
            if closer.any():
                near_codes, near_grids = pd.factorize(res["nearest_grid"], use_na_sentinel=True)
                near_table = np.array([*map(str, near_grids), None], dtype=object)
                best[closer] = dist[closer]
                nearest[closer] = near_table[near_codes[closer]]
        return found.tolist(), nearest.tolist()

    def locate(self, lon: float, lat: float) -> Placement | None:
        """Placement of one WGS84 point (the core's ``Locator``)."""
        return self.locate_many(np.array([lon]), np.array([lat]))[0][0]

    def placement(self, grid_code: str) -> Placement:
        """Placement of a grid by code (for a dispatcher's ``place``)."""
        for _, places in self.parts:
            if grid_code in places:
                return places[grid_code]
        raise NotFoundError(
            f"no published grid {grid_code!r}; GET /plans?status=published lists the plans"
        )


def case_locator(target: Store | Session) -> CaseLocator:
    """Return the locator of the published plans (cached on the store per plan versions)."""
    import geopandas as gpd

    from gridmap.db.plans import _grid_state
    from gridmap.locate import GridIndex

    with transaction(target) as s:
        pub = s.execute(
            sa.select(_P.c.id, _P.c.version, _P.c.crs)
            .where(_P.c.status == "published")
            .order_by(_P.c.id)
        ).all()
        key = ("case_locator", tuple((int(r.id), int(r.version)) for r in pub))
        cache = target._cache if isinstance(target, Store) else {}
        if key in cache:
            return cache[key]
        comm = {
            str(r.community_id): (r.street_code or (r.code[:9] if r.code else None) or "")
            for r in s.execute(sa.select(_CM.c.community_id, _CM.c.street_code, _CM.c.code))
        }
        parts = []
        for r in pub:
            df = _grid_state(s, r.id)
            if len(df) == 0:
                continue
            gdf = gpd.GeoDataFrame(
                {"grid_code": df["grid_code"].astype(str)}, geometry=df["geom"].tolist(), crs=4326
            ).to_crs(r.crs)
            places = {
                str(g): Placement(
                    str(g), str(c or ""), comm.get(str(c), ""), str(r.id), int(r.version)
                )
                for g, c in zip(df["grid_code"], df["community_id"], strict=True)
            }
            parts.append((GridIndex(gdf), places))
    loc = CaseLocator(parts, key)
    if isinstance(target, Store):
        stale = [k for k in target._cache if isinstance(k, tuple) and k[:1] == ("case_locator",)]
        for k in stale:
            del target._cache[k]
        target._cache[key] = loc
    return loc


# ----------------------------------------------------------------------------- re-route


def reroute_cases(target: Store | Session, *, author: str) -> int:
    """Flag open cases whose point another grid now covers (after a publish).

    The frozen placement stays; ``reroute_grid``/``reroute_plan_id`` name the
    grid that covers the point in the published plans now (cleared when it is
    the frozen one again). Returns how many cases are flagged.
    """
    with transaction(target, write=True) as s:
        loc = case_locator(s)
        rows = s.execute(
            sa.select(_C.c.id, _C.c.lon, _C.c.lat, _C.c.grid_code, _C.c.reroute_grid).where(
                _C.c.status.in_(list(OPEN_STATES)), _C.c.lon.is_not(None)
            )
        ).all()
        if not rows:
            return 0
        frame = pd.DataFrame(rows, columns=["id", "lon", "lat", "grid", "flag"])
        found, _ = loc.locate_many(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
        flagged = 0
        updates = []
        for (cid, grid, flag), place in zip(
            frame[["id", "grid", "flag"]].itertuples(index=False), found, strict=True
        ):
            now_grid = place.grid_code if place is not None else None
            want = now_grid if (grid is not None and now_grid != grid) else None
            if want is not None:
                flagged += 1
            if want != flag:
                updates.append(
                    {
                        "cid": int(cid),
                        "g": want,
                        "p": int(place.plan_id) if want and place and place.plan_id else None,
                    }
                )
        if updates:
            s.execute(
                _C.update()
                .where(_C.c.id == sa.bindparam("cid"))
                .values(reroute_grid=sa.bindparam("g"), reroute_plan_id=sa.bindparam("p")),
                updates,
            )
            write_audit(
                s,
                actor=author,
                action="reroute",
                entity="cases",
                entity_id=len(updates),
                after={"flagged": flagged, "changed": [u["cid"] for u in updates][:1000]},
            )
    return flagged
