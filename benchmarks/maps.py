"""Benchmark the size and build time of plan_map HTML against a raw folium baseline.

    python benchmarks/maps.py [--sizes 100 1000 3000] [--per 100] [--buildings] [--seed 0]
    python benchmarks/maps.py --cases 100000

Plans are hand-made, seamless coverages of jagged grids (EPSG:4549 at Nanjing):
fine Voronoi cells (``--per`` per grid, ~25 m across) merged by nearest grid
site, so boundaries have the many vertices of real building-traced grids. Each
grid carries a realistic row: name, 四至 text, quality figures, a chief and two
workers.

Rows per size:

* ``baseline``  — ``folium.GeoJson(plan.grids.to_crs(4326))``: raw geometry,
  full float precision, every column as a property (what ``explore``-style code
  does); no tooltip/popup/labels;
* ``tol=0``     — :func:`gridmap.maps.plan_map` without simplification (rounded
  coordinates and minimal properties only), with every control;
* ``tol=2``     — the default (coverage simplification, 2 m);
* ``tol=5``     — stronger simplification.

With ``--buildings`` a 1,000-grid plan is also mapped with ~30 buildings per grid.
Size is the UTF-8 byte length of ``m.get_root().render()``; time covers building
the map and rendering it.

Case maps (``--cases 100000 [--out DIR]``): a seeded synthetic year of tickets
(:func:`gridmap.cases.synth_cases`) over a 400-grid plan, mapped with
:func:`gridmap.maps.cases_map` (``assets="inline"``: one offline file), for a viewer,
for a dispatcher as ``/maps/cases`` serves it (``personal=True, details="/cases/"``:
callers fetched on click, none in the page) and for a dispatcher's offline file
(``personal=True``: callers embedded). Each page is opened in headless Chromium with
the browser test harness (``tests/browser/conftest.py``: every request off the
network); "open s" runs from navigation to every case being in the cluster layer
(for the baseline, the plan map of the same grids, to its load event);
"main-thread s" is the page's busy time (CDP ``TaskDuration``) over the same span;
both are medians of ``--repeat`` openings (3), "best open s" the quickest.
"""

from __future__ import annotations

import argparse
import time

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.spatial import cKDTree

from gridmap.crs import transform
from gridmap.layers import Layers
from gridmap.maps import plan_map
from gridmap.partition.plan import Plan, QualityReport

CRS = "EPSG:4549"
X0, Y0 = transform(118.78, 32.05, "wgs84", CRS)


def voronoi_plan(n: int, per: int, seed: int) -> Plan:
    rng = np.random.default_rng(seed)
    side = (n * 250.0 * 250.0) ** 0.5
    box = shapely.box(X0, Y0, X0 + side, Y0 + side)
    sites = np.column_stack([X0 + rng.uniform(0, side, n), Y0 + rng.uniform(0, side, n)])
    extra = np.column_stack(
        [X0 + rng.uniform(0, side, n * per), Y0 + rng.uniform(0, side, n * per)]
    )
    fine = np.vstack([sites, extra])
    cells = shapely.voronoi_polygons(shapely.multipoints(fine), extend_to=box)
    cells = shapely.intersection(np.asarray(shapely.get_parts(cells)), box)
    label = cKDTree(sites).query(shapely.get_coordinates(shapely.point_on_surface(cells)))[1]
    merged = (
        pd.Series(list(cells))
        .groupby(label)
        .agg(lambda g: shapely.coverage_union_all(np.asarray(list(g))))
    )
    geoms = list(merged.to_numpy())
    k = len(geoms)
    # communities of ~20 neighbouring grids (nearest of n/20 centres), codes numbered within each
    centres = sites[rng.choice(n, max(1, n // 20), replace=False)]
    reps = shapely.get_coordinates(shapely.point_on_surface(np.asarray(geoms)))
    comm_idx = cKDTree(centres).query(reps)[1]
    community = [f"320106{c // 100 + 1:03d}{c % 100 + 1:03d}" for c in comm_idx]
    seq = pd.Series(community).groupby(community).cumcount() + 1
    codes = [f"{c}{q:03d}" for c, q in zip(community, seq, strict=True)]
    hh = rng.integers(150, 560, k)
    grids = gpd.GeoDataFrame(
        {
            "grid_code": codes,
            "community_id": community,
            "name": [f"幸福社区第{c[-3:]}网格" for c in codes],
            "households": hh,
            "persons": hh * 2.6,
            "n_buildings": rng.integers(5, 40, k),
            "boundary_desc": [
                f"东至中山路{i}号楼，南至幸福社区第{(i + 1) % 999:03d}网格，西至建设路，北至长江路"
                for i in range(k)
            ],
            "locked": False,
        },
        geometry=geoms,
        crs=CRS,
    )
    area = grids.area.to_numpy()
    report = pd.DataFrame(
        {
            "grid_code": codes,
            "households": hh,
            "area_m2": area,
            "polsby_popper": 4 * np.pi * area / grids.length.to_numpy() ** 2,
            "in_band": (hh >= 200) & (hh <= 500),
            "n_parts": shapely.get_num_geometries(grids.geometry.to_numpy()),
            "split_buildings": 0,
            "boundary_on_roads": rng.uniform(0.3, 0.9, k),
        }
    )
    grids = grids.join(report.drop(columns=["grid_code", "households"]))
    staff = pd.DataFrame(
        [
            {
                "grid_code": c,
                "staff_id": f"s{i}-{r}",
                "name": f"网格{r}{i}",
                "role": "chief" if r == 0 else "worker",
                "phone": f"139{i:08d}",
            }
            for i, c in enumerate(codes)
            for r in range(3)
        ]
    )
    return Plan(
        grids=grids,
        buildings=pd.DataFrame({"building_id": [], "grid_code": [], "households": [], "part": []}),
        households=None,
        report=QualityReport(grids=report, communities=pd.DataFrame()),
        params={"min_households": 200, "max_households": 500, "seed": seed},
        crs=pyproj.CRS.from_user_input(CRS),
        assignments=staff,
    )


def with_buildings(plan: Plan, spacing: float = 45.0) -> tuple[Plan, Layers]:
    minx, miny, maxx, maxy = plan.grids.total_bounds
    gx, gy = np.meshgrid(np.arange(minx + 20, maxx, spacing), np.arange(miny + 20, maxy, spacing))
    x, y = gx.ravel(), gy.ravel()
    geoms = shapely.box(x - 12, y - 8, x + 12, y + 8)
    ids = [f"B{i}" for i in range(len(geoms))]
    blds = gpd.GeoDataFrame({"building_id": ids, "households": 12}, geometry=geoms, crs=CRS)
    pts = gpd.GeoDataFrame(geometry=shapely.points(x, y), crs=CRS)
    joined = gpd.sjoin(pts, plan.grids[["grid_code", "geometry"]], predicate="within")
    joined = joined[~joined.index.duplicated()]
    pb = pd.DataFrame(
        {
            "building_id": [ids[i] for i in joined.index],
            "grid_code": joined["grid_code"].to_numpy(),
            "households": 12,
            "part": None,
        }
    )
    comm = plan.grids.dissolve("community_id").reset_index()[["community_id", "geometry"]]
    layers = Layers(communities=comm, buildings=blds, crs=plan.crs)
    return plan.replace(buildings=pb), layers


def measure(build) -> tuple[int, float]:
    t0 = time.perf_counter()
    m = build()
    html = m.get_root().render()
    return len(html.encode("utf-8")), time.perf_counter() - t0


def baseline(plan: Plan) -> folium.Map:
    m = folium.Map(tiles="OpenStreetMap")
    gdf = plan.grids.to_crs(4326)
    gdf["locked"] = gdf["locked"].astype(bool)
    folium.GeoJson(gdf).add_to(m)
    return m


def synth_case_frame(plan: Plan, n: int, seed: int) -> pd.DataFrame:
    """Make ``n`` synthetic cases over the plan, with the columns of ``case_frame``."""
    from gridmap.cases import synth_cases

    t = synth_cases(plan, n=n, seed=seed, crs="wgs84")
    rng = np.random.default_rng(seed)
    states = ["received", "accepted", "dispatched", "in_progress", "replied", "callback", "closed"]
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "ticket": t["ticket_no"],
            "category": t["category"],
            "status": rng.choice(states, n, p=[0.03, 0.03, 0.06, 0.08, 0.1, 0.1, 0.6]),
            "grid_code": t["true_grid"],
            "lon": t["lon"],
            "lat": t["lat"],
            "received_at": t["received_at"],
            "due_at": t["resolve_due"],
            "description": t["description"],
            "address": t["address"],
            "reporter_name": t["reporter_name"],
            "reporter_phone": t["reporter_phone"],
        }
    )


def open_seconds(path, script: str | None) -> tuple[float, float]:
    """Open ``path`` in Chromium: seconds from navigation until ``script`` is true (else the
    load event), and the seconds the page's main thread was busy (CDP ``TaskDuration``:
    less sensitive to a loaded machine than the wall time)."""
    import sys
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))
    from conftest import CHROMIUM, CHROMIUM_ARGS, OpenedMap, _attach

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
        opened = OpenedMap(page=page, map_name="", path=path)
        _attach(page, opened, offline=True)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")

        def busy() -> float:
            metrics = cdp.send("Performance.getMetrics")["metrics"]
            return next(m["value"] for m in metrics if m["name"] == "TaskDuration")

        b0 = busy()
        t0 = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load")
        if script:
            page.wait_for_function(script, timeout=120_000)
        seconds = time.perf_counter() - t0
        main_thread = busy() - b0
        errors = opened.page_errors + opened.console_errors
        browser.close()
    if errors:
        raise RuntimeError(f"{path.name}: JavaScript errors {errors[:3]}")
    return seconds, main_thread


_CASES_READY = (
    "() => { var k = Object.keys(window).find(k => /^map_[0-9a-f]{32}$/.test(k));"
    " return !!(k && window[k].gridmapCases && window[k].gridmapCases.ready); }"
)


def bench_cases(n: int, seed: int, out: str | None = None, repeat: int = 3) -> None:
    import tempfile
    from pathlib import Path

    from gridmap.maps import cases_map

    plan = voronoi_plan(400, 20, seed)
    frame = synth_case_frame(plan, n, seed)
    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="gridmap-bench-cases-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, build, ready in (
        ("plan map (baseline)", lambda: plan_map(plan, assets="inline"), None),
        (
            f"cases {n:,} viewer",
            lambda: cases_map(frame, plan, now="2026-12-31", assets="inline"),
            _CASES_READY,
        ),
        (
            # as /maps/cases serves it: callers fetched from GET /cases/{id} on click
            f"cases {n:,} dispatcher",
            lambda: cases_map(
                frame, plan, now="2026-12-31", personal=True, details="/cases/", assets="inline"
            ),
            _CASES_READY,
        ),
        (
            # offline / Jupyter: callers embedded in the file
            f"cases {n:,} disp. embedded",
            lambda: cases_map(frame, plan, now="2026-12-31", personal=True, assets="inline"),
            _CASES_READY,
        ),
    ):
        t0 = time.perf_counter()
        html = build().get_root().render()
        built = time.perf_counter() - t0
        path = folder / f"{len(rows)}.html"
        path.write_text(html, encoding="utf-8")
        runs = [open_seconds(path, ready) for _ in range(repeat)]
        opened = float(np.median([r[0] for r in runs]))
        busy = float(np.median([r[1] for r in runs]))
        best = min(r[0] for r in runs)
        rows.append((label, len(html.encode("utf-8")), built, opened, busy, best))
    base_mb, base_open = rows[0][1] / 1e6, rows[0][3]
    print(
        f"\n{'case map':<30} {'MB':>7} {'× base':>7} {'build s':>8} {'open s':>7} "
        f"{'× base':>7} {'main-thread s':>14} {'best open s':>12}"
    )
    for label, size, built, opened, busy, best in rows:
        mb = size / 1e6
        print(
            f"{label:<30} {mb:>7.2f} {mb / base_mb:>7.2f} {built:>8.2f} {opened:>7.2f} "
            f"{opened / base_open:>7.2f} {busy:>14.2f} {best:>12.2f}"
        )
    print(f"open s and main-thread s: medians of {repeat} openings each")
    print(f"pages: {folder}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    ap.add_argument("--per", type=int, default=100, help="fine cells per grid")
    ap.add_argument("--buildings", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--cases", type=int, default=0, help="only the case maps, with this many cases (100000)"
    )
    ap.add_argument("--out", default=None, help="folder for the case map pages (default: a temp)")
    ap.add_argument("--repeat", type=int, default=3, help="openings of each case map (median)")
    args = ap.parse_args()
    if args.cases:
        bench_cases(args.cases, args.seed, args.out, args.repeat)
        return

    print(f"{'grids':>6} {'variant':<18} {'vertices':>9} {'MB':>7} {'× base':>7} {'build s':>8}")
    for n in args.sizes:
        plan = voronoi_plan(n, args.per, args.seed)
        verts = int(shapely.get_num_coordinates(plan.grids.geometry.to_numpy()).sum())
        base_size, base_t = measure(lambda plan=plan: baseline(plan))
        mb = base_size / 1e6
        print(f"{n:>6} {'baseline (raw)':<18} {verts:>9} {mb:>7.2f} {1.0:>7.2f} {base_t:>8.2f}")
        for tol in (0.0, 2.0, 5.0):
            size, t = measure(lambda plan=plan, tol=tol: plan_map(plan, simplify_tolerance=tol))
            label = f"plan_map tol={tol:g}"
            ratio = size / base_size
            print(f"{n:>6} {label:<18} {'':>9} {size / 1e6:>7.2f} {ratio:>7.2f} {t:>8.2f}")
    if args.buildings:
        plan, layers = with_buildings(voronoi_plan(1000, args.per, args.seed))
        nb = len(layers.buildings)
        size, t = measure(lambda: plan_map(plan, layers=layers))
        size0, t0 = measure(lambda: plan_map(plan))
        print(f"{1000:>6} {'no buildings':<18} {'':>9} {size0 / 1e6:>7.2f} {'':>7} {t0:>8.2f}")
        label = f"+{nb} buildings"
        print(f"{1000:>6} {label:<18} {'':>9} {size / 1e6:>7.2f} {'':>7} {t:>8.2f}")


if __name__ == "__main__":
    main()
