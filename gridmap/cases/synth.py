"""A seeded synthetic year of case tickets, for tests, demos and benchmarks.

:func:`synth_cases` spreads tickets over the area of the given grids, with
category frequencies from the catalogue, a few spatial hotspots (a noisy night
market, a leaking estate), reception mostly in office hours on working days,
coordinates in GCJ-02 as phones give them, and simulated handling: most cases
are replied before their ``resolve`` deadline, some late. The same inputs and
seed give the same frame, byte for byte.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.cases.calendar import TZ, WorkCalendar, default_calendar
from gridmap.cases.catalogue import Catalogue, default_catalogue
from gridmap.cases.policies import Policies, default_policies
from gridmap.errors import CRSError, InputError, LayerError

__all__ = ["SYNTH_COLUMNS", "synth_cases"]

#: Columns of :func:`synth_cases` (the intake fields, then simulation truth).
SYNTH_COLUMNS: tuple[str, ...] = (
    "ticket_no",
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
    "received_at",
    "true_grid",
    "resolve_due",
    "replied_at",
    "late",
)

_SOURCES = (("hotline", 0.55), ("app", 0.15), ("patrol", 0.15), ("online", 0.10), ("walkin", 0.05))
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "noise": ("夜间施工噪音扰民", "广场舞音响声音过大", "楼上装修噪音", "商铺外放音响"),
    "garbage": ("垃圾桶满溢未清运", "楼道堆放垃圾", "建筑垃圾乱堆"),
    "road": ("人行道地砖破损", "路面坑洼", "窨井盖缺失"),
    "parking": ("车辆占用消防通道", "小区门口乱停车", "非机动车乱停放"),
    "dispute": ("邻里因漏水发生纠纷", "楼道占用引发矛盾", "宠物扰邻纠纷"),
    "elderly": ("独居老人多日未出门", "独居老人摔倒求助", "老人需要送餐帮助"),
    "water": ("楼上漏水", "小区停水无通知", "水管爆裂"),
    "fire": ("楼道电动车充电", "消防通道堵塞", "灭火器过期"),
    "rental": ("疑似群租房人员混杂", "隔断群租", "群租房噪音卫生问题"),
    "other": ("流浪犬出没", "路灯不亮", "其他问题反映"),
}
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


def _grids(grids_or_plan: Any) -> Any:
    grids = getattr(grids_or_plan, "grids", grids_or_plan)
    if not hasattr(grids, "geometry") or len(grids) == 0:
        raise LayerError("synth_cases needs a non-empty GeoDataFrame of grids or a Plan")
    if "grid_code" not in grids.columns:
        raise LayerError("the grids need a 'grid_code' column")
    if grids.crs is None or grids.crs.is_geographic:
        raise CRSError("the grids must be in a projected CRS (metres), as a Plan's grids are")
    return grids


def _points_in(area: Any, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``k`` uniform points inside ``area`` (rejection sampling, vectorised in batches)."""
    x0, y0, x1, y1 = area.bounds
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    have = 0
    while have < k:
        m = max(64, 2 * (k - have))
        x = rng.uniform(x0, x1, m)
        y = rng.uniform(y0, y1, m)
        inside = shapely.contains_xy(area, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        have += int(inside.sum())
    return np.concatenate(xs)[:k], np.concatenate(ys)[:k]


def synth_cases(
    grids_or_plan: Any,
    *,
    n: int = 5000,
    start: str = "2026-01-01",
    days: int = 365,
    seed: int | np.random.Generator | None = 0,
    calendar: WorkCalendar | None = None,
    catalogue: Catalogue | None = None,
    policies: Policies | None = None,
    crs: str = "gcj02",
    hotspots: int = 6,
    hotspot_share: float = 0.4,
    late_share: float = 0.12,
) -> pd.DataFrame:
    """Make ``n`` seeded synthetic tickets over ``days`` days from ``start``.

    Parameters
    ----------
    grids_or_plan : geopandas.GeoDataFrame or Plan
        Grid polygons (with ``grid_code``) in a projected CRS, or a plan.
    n : int, default 5000
    start : str, default "2026-01-01"
    days : int, default 365
    seed : int or numpy.random.Generator, optional
    calendar, catalogue, policies : optional
        Default: the shipped ones.
    crs : str, default "gcj02"
        CRS of ``lon``/``lat`` (phones give GCJ-02).
    hotspots : int, default 6
        Number of hotspots; ``hotspot_share`` of tickets fall near one (σ 60 m).
    late_share : float, default 0.12
        Share of tickets replied after their ``resolve`` deadline.

    Returns
    -------
    pandas.DataFrame
        :data:`SYNTH_COLUMNS`: the intake fields (``received_at`` aware,
        Asia/Shanghai), then ``true_grid``, ``resolve_due`` (by the policy and
        calendar), the simulated ``replied_at`` and ``late``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> grids = gpd.GeoDataFrame({"grid_code": ["G1", "G2"]},
    ...     geometry=[shapely.box(350000, 3460000, 350400, 3460400),
    ...               shapely.box(350400, 3460000, 350800, 3460400)], crs=32651)
    >>> df = synth_cases(grids, n=4, seed=1)
    >>> df["ticket_no"].tolist()
    ['GD20260226000001', 'GD20260708000002', 'GD20261214000003', 'GD20261215000004']
    >>> bool((df["received_at"].dt.year == 2026).all())
    True
    """
    from gridmap.crs import from_wgs84, parse_crs

    if n < 0:
        raise InputError(f"n must be 0 or more tickets, got {n}")
    if days < 1:
        raise InputError(f"days must be at least 1, got {days}")
    spec = parse_crs(crs)
    grids = _grids(grids_or_plan)
    cal = calendar or default_calendar()
    book = catalogue or default_catalogue()
    pols = policies or default_policies()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if n == 0:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in SYNTH_COLUMNS})

    # --- when: working days weigh 3× a weekend or holiday; office hours mostly
    first = pd.Timestamp(start).normalize()
    all_days = pd.date_range(first, periods=days, freq="D")
    work = np.array([cal.is_workday(d.date()) for d in all_days])
    w = np.where(work, 3.0, 1.0)
    day = rng.choice(days, size=n, p=w / w.sum())
    office = rng.random(n) < 0.8
    sec = np.where(
        office,
        rng.uniform(8.5 * 3600, 17.5 * 3600, n),
        rng.uniform(6 * 3600, 23 * 3600, n),
    ).astype(np.int64)
    stamps = np.sort(day.astype(np.int64) * 86400 + sec)
    received = (first + pd.to_timedelta(stamps, unit="s")).tz_localize(TZ)

    # --- what
    cats = book.categories
    shares = np.array([c.share if c.share > 0 else 0.01 for c in cats])
    ci = rng.choice(len(cats), size=n, p=shares / shares.sum())
    category = np.array([c.code for c in cats], dtype=object)[ci]
    default_urgent = np.array([c.urgency == "urgent" for c in cats])[ci]
    urgent = np.where(default_urgent, rng.random(n) < 0.7, rng.random(n) < 0.04)
    urgency = np.where(urgent, "urgent", "ordinary").astype(object)
    hard = rng.random(n) < 0.05
    si = rng.choice(len(_SOURCES), size=n, p=[s[1] for s in _SOURCES])
    source = np.array([s[0] for s in _SOURCES], dtype=object)[si]
    src_policy = {s: book.source(s).policy for s, _ in _SOURCES}
    cat_policy = {c.code: c.policy for c in cats}
    policy = np.array(
        [src_policy[s] or cat_policy[c] for s, c in zip(source, category, strict=True)],
        dtype=object,
    )
    tpl = np.array([rng.integers(0, len(_TEMPLATES.get(c, ("问题反映",)))) for c in category])
    building = rng.integers(1, 40, n)
    description = [
        f"{_TEMPLATES.get(c, ('问题反映',))[t]}（{b}号楼附近）"
        for c, t, b in zip(category, tpl, building, strict=True)
    ]

    # --- where: hotspots inside the grids, the rest uniform over them
    area = shapely.union_all(grids.geometry.to_numpy())
    hx, hy = _points_in(area, max(hotspots, 1), rng)
    near = rng.random(n) < hotspot_share
    hi = rng.integers(0, len(hx), n)
    x = hx[hi] + rng.normal(0, 60, n)
    y = hy[hi] + rng.normal(0, 60, n)
    ux, uy = _points_in(area, n, rng)
    ok = near & shapely.contains_xy(area, x, y)
    x = np.where(ok, x, ux)
    y = np.where(ok, y, uy)
    tree = shapely.STRtree(grids.geometry.to_numpy())
    pts = shapely.points(x, y)
    pi, gi = tree.query(pts, predicate="intersects")
    codes = grids["grid_code"].astype(str).to_numpy()
    true_grid = np.full(n, None, dtype=object)
    first_hit = np.unique(pi, return_index=True)
    true_grid[first_hit[0]] = codes[gi[first_hit[1]]]
    to_wgs = pyproj.Transformer.from_crs(grids.crs, 4326, always_xy=True)
    wlon, wlat = to_wgs.transform(x, y)
    lon, lat = from_wgs84(np.asarray(wlon), np.asarray(wlat), spec)

    # --- who
    sn = rng.integers(0, len(_SURNAMES), n)
    gn = rng.integers(0, len(_GIVEN), (n, 2))
    two = rng.random(n) < 0.6
    names = [
        _SURNAMES[s] + _GIVEN[g[0]] + (_GIVEN[g[1]] if t else "")
        for s, g, t in zip(sn, gn, two, strict=True)
    ]
    phones = [
        f"1{p}{q:09d}"
        for p, q in zip(rng.choice([3, 5, 7, 8, 9], n), rng.integers(0, 10**9, n), strict=True)
    ]
    stamp = received.strftime("%Y%m%d")
    ticket_no = [f"GD{s}{i + 1:06d}" for i, s in enumerate(stamp)]
    address = [f"{g or '辖区'}网格{b}号楼" for g, b in zip(true_grid, building, strict=True)]

    # --- handling: the resolve deadline by policy and calendar; most in time, some late
    wd = np.full(n, np.nan)
    hr = np.full(n, np.nan)
    combos = pd.DataFrame({"p": policy, "c": category, "u": urgency, "h": hard})
    groups: dict[Any, Any] = dict(combos.groupby(["p", "c", "u", "h"]).indices)
    for (p, c, u, h), rows in groups.items():
        lim = (
            pols.get(str(p))
            .clock("resolve")
            .limit_for(category=str(c), urgency=str(u), hard=bool(h))
        )
        if lim is None:
            continue
        if lim.working_days is not None:
            wd[rows] = lim.working_days
        else:
            hr[rows] = lim.hours
    dues = cal.due_array(received, working_days=wd, hours=hr)
    due = pd.DatetimeIndex(dues["due"])
    allowed = (due - received).total_seconds().to_numpy()
    late = rng.random(n) < late_share
    frac = np.where(late, rng.uniform(1.05, 3.0, n), rng.beta(2.0, 2.5, n) * 0.98)
    replied = received + pd.to_timedelta(np.round(allowed * frac), unit="s")
    late = replied > due

    return pd.DataFrame(
        {
            "ticket_no": ticket_no,
            "source": source,
            "category": category,
            "urgency": urgency,
            "hard": hard,
            "policy": policy,
            "description": description,
            "reporter_name": names,
            "reporter_phone": phones,
            "lon": np.asarray(lon, dtype=float),
            "lat": np.asarray(lat, dtype=float),
            "crs": spec.name,
            "address": address,
            "received_at": received,
            "true_grid": true_grid,
            "resolve_due": due,
            "replied_at": replied,
            "late": np.asarray(late, dtype=bool),
        },
        columns=list(SYNTH_COLUMNS),
    )
