"""Incidents (事件): 12345 hotline and app tickets located to their grids.

A ticket table has one row per incident with ``id``, ``lon``, ``lat`` (in the
CRS the report came in — usually GCJ-02 from a phone app), ``reported_at``,
``category`` and ``urgency``. :func:`locate_incidents` finds each one's grid;
:func:`synth_incidents` makes a seeded day of tickets for demos, notebooks and
benchmarks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridmap.errors import InputError, LayerError

if TYPE_CHECKING:
    from gridmap.layers import Layers
    from gridmap.partition.plan import Plan

__all__ = ["CATEGORIES", "synth_incidents", "locate_incidents"]

#: Ticket categories (Chinese, English) with their share of tickets and urgent share.
CATEGORIES: tuple[tuple[str, str, float, float], ...] = (
    ("噪音扰民", "noise", 0.18, 0.05),
    ("垃圾清运", "rubbish collection", 0.16, 0.02),
    ("道路破损", "damaged road", 0.10, 0.10),
    ("违章停车", "illegal parking", 0.12, 0.05),
    ("邻里纠纷", "neighbour dispute", 0.10, 0.10),
    ("独居老人求助", "elderly living alone needs help", 0.06, 0.60),
    ("漏水停水", "water leak or cut", 0.10, 0.30),
    ("消防隐患", "fire hazard", 0.04, 0.80),
    ("群租房", "overcrowded rental", 0.06, 0.05),
    ("其他", "other", 0.08, 0.05),
)


def synth_incidents(
    layers: Layers,
    *,
    n: int = 300,
    seed: int | np.random.Generator | None = 0,
    crs: str = "gcj02",
    date: str = "2026-11-20",
    scatter: float = 25.0,
) -> pd.DataFrame:
    """Make a seeded day of hotline tickets around the residential buildings.

    Incidents fall near buildings in proportion to their households (scattered
    by ``scatter`` metres), at times following a day's call pattern, and are
    given in ``crs`` as a phone app would report them.

    Parameters
    ----------
    layers : Layers
        Validated layers (buildings with households, in a projected CRS).
    n : int, default 300
        Number of tickets.
    seed : int or numpy.random.Generator, optional
        Same seed, same tickets.
    crs : str, default "gcj02"
        Coordinate system of the reported lon/lat (see :func:`gridmap.crs.parse_crs`).
    date : str, default "2026-11-20"
        The day of the tickets.
    scatter : float, default 25.0
        Standard deviation of the distance from the building, in metres.

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``lon``, ``lat``, ``crs``, ``reported_at``, ``category``,
        ``category_en``, ``urgent``.

    Examples
    --------
    >>> from gridmap.datasets import get_path
    >>> from gridmap.io import read_layers
    >>> from gridmap.validation import validate_layers
    >>> layers, _ = validate_layers(read_layers(get_path("sample")))
    >>> tickets = synth_incidents(layers, n=5, seed=1)
    >>> tickets.columns.tolist()
    ['id', 'lon', 'lat', 'crs', 'reported_at', 'category', 'category_en', 'urgent']
    >>> tickets["id"].tolist()
    ['T20261120-0001', 'T20261120-0002', 'T20261120-0003', 'T20261120-0004', 'T20261120-0005']
    """
    from gridmap.crs import from_wgs84, parse_crs

    if n < 0:
        raise InputError(f"n must be 0 or more tickets, got {n}")
    spec = parse_crs(crs)
    blds = layers.buildings
    weights = blds["households"].to_numpy(dtype=float)
    if weights.sum() <= 0:
        raise LayerError("no building has households; incidents are placed by households")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    pick = rng.choice(len(blds), size=n, p=weights / weights.sum())
    rep = blds.geometry.representative_point().to_numpy()[pick]
    angle = rng.uniform(0, 2 * np.pi, n)
    dist = np.abs(rng.normal(0, scatter, n))
    x = np.array([p.x for p in rep]) + dist * np.cos(angle)
    y = np.array([p.y for p in rep]) + dist * np.sin(angle)
    pts = pd.DataFrame({"x": x, "y": y})
    import geopandas as gpd

    wgs = gpd.GeoSeries(gpd.points_from_xy(pts["x"], pts["y"]), crs=layers.crs).to_crs(4326)
    lon, lat = from_wgs84(wgs.x.to_numpy(), wgs.y.to_numpy(), spec)
    shares = np.array([c[2] for c in CATEGORIES])
    cat = rng.choice(len(CATEGORIES), size=n, p=shares / shares.sum())
    urgent = rng.random(n) < np.array([c[3] for c in CATEGORIES])[cat]
    # calls peak in the morning and early evening
    hours = np.concatenate([rng.normal(10, 2, n), rng.normal(19, 2, n)])
    hours = hours[(hours >= 0) & (hours < 24)][:n]
    if len(hours) < n:
        hours = np.concatenate([hours, rng.uniform(0, 24, n - len(hours))])
    seconds = np.sort((hours * 3600).astype(np.int64))
    day = pd.Timestamp(date)
    stamp = day.strftime("%Y%m%d")
    return pd.DataFrame(
        {
            "id": [f"T{stamp}-{i + 1:04d}" for i in range(n)],
            "lon": np.round(lon, 7),
            "lat": np.round(lat, 7),
            "crs": spec.name,
            "reported_at": day + pd.to_timedelta(seconds, unit="s"),
            "category": [CATEGORIES[c][0] for c in cat],
            "category_en": [CATEGORIES[c][1] for c in cat],
            "urgent": urgent,
        }
    )


def locate_incidents(
    plan: Plan,
    incidents: pd.DataFrame,
    *,
    crs: str | None = None,
    lon: str = "lon",
    lat: str = "lat",
) -> pd.DataFrame:
    """Locate every incident to its grid (坐标式定位, in batch).

    Parameters
    ----------
    plan : Plan
        The plan whose grids to locate in.
    incidents : pandas.DataFrame
        One row per incident with lon/lat columns.
    crs : str, optional
        CRS of the coordinates; by default the table's ``crs`` column (one value)
        or WGS84.
    lon, lat : str
        Names of the coordinate columns.

    Returns
    -------
    pandas.DataFrame
        ``incidents`` with ``grid_code``, ``inside``, ``on_boundary``,
        ``distance_to_boundary``, ``nearest_grid`` and ``nearest_distance`` added,
        plus ``lon_wgs84``/``lat_wgs84`` for maps.
    """
    from gridmap.crs import to_wgs84
    from gridmap.locate import GridIndex

    missing = [c for c in (lon, lat) if c not in incidents.columns]
    if missing:
        raise LayerError(
            f"incidents lack the column(s) {', '.join(missing)}; name them lon/lat or pass "
            "lon=..., lat=..."
        )
    if crs is None:
        crs_values: list[Any] = (
            list(incidents["crs"].dropna().unique()) if "crs" in incidents else []
        )
        if len(crs_values) > 1:
            raise InputError(
                f"incidents come in several CRSs ({', '.join(map(str, crs_values))}); locate "
                "each group separately with crs=..."
            )
        crs = str(crs_values[0]) if len(crs_values) else "wgs84"
    x = pd.to_numeric(incidents[lon], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(incidents[lat], errors="coerce").to_numpy(dtype=float)
    index = GridIndex(plan.grids)
    found = index.locate_lonlat(x, y, crs=crs)
    wlon, wlat = to_wgs84(x, y, crs)
    out = incidents.reset_index(drop=True).copy()
    keep: dict[str, Any] = {
        c: found[c].to_numpy()
        for c in (
            "grid_code",
            "inside",
            "on_boundary",
            "distance_to_boundary",
            "nearest_grid",
            "nearest_distance",
        )
        if c in found
    }
    for c, v in keep.items():
        out[c] = v
    out["lon_wgs84"] = wlon
    out["lat_wgs84"] = wlat
    return out
