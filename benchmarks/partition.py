"""Benchmark the partitioner against spopt and pymetis baselines, scored by one quality report.

Run::

    python benchmarks/partition.py                     # methods table + stability row
    python benchmarks/partition.py --seeds 1 2 3       # more synthetic cities
    python benchmarks/partition.py --cities            # + whole cities 10k/50k/200k buildings
    python benchmarks/partition.py --cities --sizes 10000 50000 --jobs 2
    python benchmarks/partition.py --no-methods --load   # grids balanced on workload
    python benchmarks/partition.py --no-methods --targets --seeds 1 2   # issue 14 targets
    python benchmarks/partition.py --no-methods --targets --generators rural --no-real

Every method cuts the *same* units (the building-cell tessellation of
:mod:`gridmap.partition.units`, with compounds merged) of seeded synthetic
communities of ~5,500 households (``gridmap.synth.synth_city`` with
``community_households=(5000, 6000)``), and every result is scored by
:func:`gridmap.partition.quality.quality_report`:

* ``gridmap``  — :func:`gridmap.partition.partition` (the product);
* ``maxp``     — spopt ``MaxPHeuristic`` (floor = min households; 10 construction
  iterations, 2 annealing rounds, to keep the run in minutes);
* ``skater``   — spopt ``Skater`` with k = round(total / target) (its ``floor`` counts
  units, not households, so it is left at 1);
* ``ward``     — spopt ``WardSpatial`` with the same k;
* ``metis``    — pymetis, contiguous, household vertex weights, road-weighted edges
  (cheap to cut along roads), k = round(total / target).

Baselines are benchmark-only dependencies (``pip install spopt pymetis libpysal``).
Columns: seconds, % grids in band, mean Polsby–Popper, % internal boundary on
roads/barriers (5 m), CV of households per grid. The stability row re-runs the
partitioner with ``previous=`` after +5 % households in one area of every
community and reports the share of households keeping their grid. ``--cities``
runs whole cities in child processes and reports partition time and peak RSS.

``--targets`` reports the figures of issue 14 for gridmap and METIS on the same units,
scored by the same report, on cities of *both* generators (``--generators``):
``gridmap`` (:func:`gridmap.synth.synth_city`) and ``rural``
(:func:`gridmap.synth_rural.synth_rural_city`: superblocks of gated compounds with one
dead-end road each, arterials, and an outskirts ring of natural villages), and on the
two shared OSM areas when ``../shared/data/real`` exists (``--no-real`` skips them):
% residential grids in band, dedicated grids, grids with > 50 m of arterial inside
(unnamed / forced), % internal boundary on vehicle streets (all; where blocks allow),
residential grids above 1 km², mean Polsby–Popper of all grids and of residential grids
(``PP res``: a dedicated grid's outline is the land between main roads it stands on) and
the ratio of the mean to METIS in the same run, and partition CPU seconds per 1,000
buildings. ``--out FILE.csv`` writes the table.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.layers import Layers
from gridmap.partition import partition
from gridmap.partition.partition import _tasks
from gridmap.partition.quality import quality_report
from gridmap.partition.units import build_units
from gridmap.synth import synth_city
from gridmap.synth_rural import synth_rural_city
from gridmap.validation import validate_layers

MIN, MAX, TARGET = 200, 500, 350


def make_layers(seed: int, n_buildings: int = 1800) -> Layers:
    raw = synth_city(n_buildings=n_buildings, seed=seed, community_households=(5000, 6000))
    layers, _ = validate_layers(raw)
    return layers


def community_units(layers: Layers) -> list[tuple[str, Any]]:
    tasks = _tasks(
        layers,
        min_households=MIN,
        max_households=MAX,
        target=TARGET,
        n_grids=None,
        seed=0,
        previous=None,
        locked=[],
    )
    out = []
    for t in tasks:
        u = build_units(
            t["geometry"],
            t["buildings"],
            households=t["households"],
            roads=t["roads"],
            barriers=t["barriers"],
            compounds=t["compounds"],
            min_households=MIN,
            max_households=MAX,
            target=TARGET,
            road_classes=t["road_classes"],
        )
        out.append((t["community_id"], u))
    return out


# ----------------------------------------------------------------------------- baselines


def _w(u: Any) -> Any:
    from libpysal.weights import W

    nb: dict[int, list[int]] = {i: [] for i in range(u.n)}
    for a, b in u.edges:
        nb[int(a)].append(int(b))
        nb[int(b)].append(int(a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return W(nb, silence_warnings=True)


def _unit_gdf(u: Any) -> gpd.GeoDataFrame:
    geoms = [shapely.union_all(u.cells[u.cell_unit == i]) for i in range(u.n)]
    return gpd.GeoDataFrame(
        {"households": u.households.astype(float), "cx": u.cx, "cy": u.cy}, geometry=geoms
    )


def _k(u: Any) -> int:
    return max(1, round(int(u.households.sum()) / TARGET))


def label_maxp(u: Any) -> np.ndarray:
    from spopt.region import MaxPHeuristic

    gdf = _unit_gdf(u)
    m = MaxPHeuristic(
        gdf,
        _w(u),
        ["cx", "cy"],
        "households",
        MIN,
        top_n=2,
        max_iterations_construction=10,
        max_iterations_sa=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.solve()
    return np.asarray(m.labels_)


def label_skater(u: Any) -> np.ndarray:
    from spopt.region import Skater

    gdf = _unit_gdf(u)
    m = Skater(gdf, _w(u), ["cx", "cy"], n_clusters=_k(u), floor=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.solve()
    return np.asarray(m.labels_)


def label_ward(u: Any) -> np.ndarray:
    from spopt.region import WardSpatial

    gdf = _unit_gdf(u)
    m = WardSpatial(gdf, _w(u), ["cx", "cy"], n_clusters=_k(u))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.solve()
    return np.asarray(m.labels_)


def label_metis(u: Any) -> np.ndarray:
    import pymetis

    n = u.n
    a = np.r_[u.edges[:, 0], u.edges[:, 1]]
    b = np.r_[u.edges[:, 1], u.edges[:, 0]]
    w = np.r_[u.edge_cost, u.edge_cost]
    order = np.lexsort((b, a))
    a, b, w = a[order], b[order], w[order]
    xadj = np.searchsorted(a, np.arange(n + 1))
    ew = np.maximum(1, np.rint(w)).astype(int)
    vw = np.maximum(1, u.households).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _, parts = pymetis.part_graph(
            _k(u),
            xadj=xadj.tolist(),
            adjncy=b.tolist(),
            vweights=vw.tolist(),
            eweights=ew.tolist(),
            contiguous=True,
        )
    return np.asarray(parts)


def score(layers: Layers, results: list[tuple[str, Any, np.ndarray]]) -> dict[str, float]:
    grids, rows = [], []
    for cid, u, lab in results:
        _, lab = np.unique(lab, return_inverse=True)
        cl = lab[u.cell_unit]
        for g in range(int(lab.max()) + 1):
            code = f"{cid}-{g:03d}"
            geom = shapely.union_all(u.cells[cl == g])
            grids.append({"grid_code": code, "community_id": cid, "geometry": geom})
        m = u.members
        for bid, hh, cell in zip(m["building_id"], m["households"], m["cell"], strict=True):
            rows.append((bid, f"{cid}-{lab[u.cell_unit[cell]]:03d}", hh))
    gdf = gpd.GeoDataFrame(grids, geometry="geometry", crs=layers.crs)
    bld = pd.DataFrame(rows, columns=["building_id", "grid_code", "households"])
    rep = quality_report(
        gdf, bld, layers, min_households=MIN, max_households=MAX, area_cap_m2=1_000_000.0
    )
    return rep.overall


def row_of(name: str, secs: float, o: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": name,
        "seconds": round(secs, 2),
        "grids": int(o["n_grids"]),
        "% in band": round(100 * o["share_in_band"], 1),
        "mean PP": round(o["mean_polsby_popper"], 3),
        "% bnd on roads": round(100 * o["share_boundary_on_roads"], 1),
        "CV": round(o["households_cv"], 3),
        "multipart": int(o["n_multipart"]),
        "enclaves": int(o["n_enclaves"]),
    }


def methods_table(seeds: list[int], skip: set[str]) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        layers = make_layers(seed)
        tot = layers.buildings.groupby("community_id")["households"].sum()
        print(
            f"seed {seed}: {len(layers.communities)} communities, households "
            f"{int(tot.min())}-{int(tot.max())}, {len(layers.buildings)} buildings"
        )
        t0 = time.perf_counter()
        plan = partition(layers, min_households=MIN, max_households=MAX)
        rows.append(
            {"seed": seed, **row_of("gridmap", time.perf_counter() - t0, plan.report.overall)}
        )
        units = community_units(layers)
        for name, fn in (
            ("metis", label_metis),
            ("ward", label_ward),
            ("skater", label_skater),
            ("maxp", label_maxp),
        ):
            if name in skip:
                continue
            t0 = time.perf_counter()
            try:
                res = [(cid, u, fn(u)) for cid, u in units]
            except Exception as exc:  # noqa: BLE001 - a baseline failing is a result
                print(f"  {name} failed: {exc!r}")
                continue
            secs = time.perf_counter() - t0
            rows.append({"seed": seed, **row_of(name, secs, score(layers, res))})
        # stability: +5 % households in one area of every community
        changed = grow_one_area(layers, seed)
        t0 = time.perf_counter()
        plan2 = partition(changed, min_households=MIN, max_households=MAX, previous=plan)
        secs = time.perf_counter() - t0
        o = plan2.report.overall
        r = row_of("gridmap re-run +5%", secs, o)
        r["stability"] = round(100 * o["stability"], 1)
        rows.append({"seed": seed, **r})
    return pd.DataFrame(rows)


def grow_one_area(layers: Layers, seed: int) -> Layers:
    """+5 % households per community, all in the buildings nearest one random point."""
    rng = np.random.default_rng(seed + 1000)
    b = layers.buildings.copy()
    hh = b["households"].to_numpy(dtype=float).copy()
    reps = shapely.get_coordinates(shapely.point_on_surface(np.asarray(b.geometry.array)))
    for _, idx in sorted(b.groupby("community_id").indices.items()):
        res = idx[hh[idx] > 0]
        if len(res) == 0:
            continue
        centre = reps[rng.choice(res)]
        d = np.hypot(*(reps[res] - centre).T)
        near = res[np.argsort(d, kind="stable")]
        extra = 0.05 * hh[idx].sum()
        cum = np.cumsum(hh[near])
        area = near[: int(np.searchsorted(cum, 4 * extra)) + 1]  # ~25 % growth there
        hh[area] *= 1 + extra / max(hh[area].sum(), 1)
    b["households"] = np.rint(hh).astype(np.int64)
    return layers.replace(buildings=b, households=None)


def city_child(n: int, jobs: int) -> None:
    t0 = time.perf_counter()
    raw = synth_city(n_buildings=n, seed=0, with_households=False)
    layers, _ = validate_layers(raw)
    del raw
    t1 = time.perf_counter()
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    plan = partition(layers, min_households=MIN, max_households=MAX, n_jobs=jobs)
    t2 = time.perf_counter()
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) + (
        k1.ru_utime + k1.ru_stime - k0.ru_utime - k0.ru_stime
    )
    o = plan.report.overall
    rss = c1.ru_maxrss / 1024
    rss_w = k1.ru_maxrss / 1024
    print(
        f"RESULT {n} {len(layers.buildings)} {int(o['households'])} {len(layers.communities)} "
        f"{o['n_grids']} {t1 - t0:.1f} {t2 - t1:.1f} {cpu:.1f} {rss:.0f} {rss_w:.0f} "
        f"{100 * o['share_in_band']:.1f} {o['mean_polsby_popper']:.3f} "
        f"{100 * o['share_boundary_on_roads']:.1f}"
    )


def cities(sizes: list[int], jobs: int) -> pd.DataFrame:
    rows = []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--city-child", str(n), "--jobs", str(jobs)],
            capture_output=True,
            text=True,
            check=False,
        )
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
        if not line:
            print(out.stdout[-2000:], out.stderr[-3000:])
            continue
        f = line[0].split()
        rows.append(
            {
                "buildings": int(f[2]),
                "households": int(f[3]),
                "communities": int(f[4]),
                "grids": int(f[5]),
                "synth+validate s": float(f[6]),
                "partition s": float(f[7]),
                "partition CPU s": float(f[8]),
                "peak RSS MB main": float(f[9]),
                "peak RSS MB worker": float(f[10]),
                "% in band": float(f[11]),
                "mean PP": float(f[12]),
                "% bnd on roads": float(f[13]),
            }
        )
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
REAL_AREAS = {
    "nanjing": REAL / "nanjing-central" / "nanjing_central.gpkg",
    "shanghai": REAL / "shanghai-huangpu-lujiazui" / "shanghai_huangpu_lujiazui.gpkg",
}


def year_of_cases(layers: Layers, seed: int, per_household: float = 0.5) -> pd.DataFrame:
    """A seeded year of cases per building: households × a lognormal "problem building" factor.

    Cases cluster: most buildings see few, some (old pipes, a market downstairs) many.
    Returned as one row per case with its ``building_id``.
    """
    rng = np.random.default_rng(seed)
    b = layers.buildings
    hh = b["households"].to_numpy(dtype=float)
    factor = rng.lognormal(mean=0.0, sigma=1.0, size=len(b))
    counts = rng.poisson(per_household * hh * factor / factor.mean())
    return pd.DataFrame({"building_id": np.repeat(b["building_id"].astype(str), counts)})


def load_table(seeds: list[int]) -> pd.DataFrame:
    """Grids balanced on workload: load CV and max/median before/after, and the time it costs.

    ``before`` is the households-only plan of the same run (what ``partition`` returns
    without ``load_weights``); the time ratio compares the two runs on the same layers.
    """
    from gridmap.areas import derive_communities
    from gridmap.io import read_layers

    areas: list[tuple[str, Layers, dict[str, float]]] = []
    synth_weights = {"households": 1.0, "cases": 0.2, "care": 2.0}
    for seed in seeds:
        areas.append((f"synthetic seed {seed}", make_layers(seed), synth_weights))
    for name, path in REAL_AREAS.items():
        if not path.exists():
            print(f"({name}: {path} is missing, skipped)")
            continue
        raw = read_layers(path, preset="osm")
        layers, _ = validate_layers({**raw, "communities": derive_communities(raw)})
        # OpenStreetMap has no households layer: no care term
        areas.append((f"OSM {name}", layers, {"households": 1.0, "cases": 0.2}))
    rows = []
    for name, layers, weights in areas:
        cases = year_of_cases(layers, seed=7)
        t0 = time.perf_counter()
        plain = partition(layers, min_households=MIN, max_households=MAX)
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        plan = partition(
            layers, min_households=MIN, max_households=MAX, load_weights=weights, cases=cases
        )
        t_load = time.perf_counter() - t0
        o, p = plan.report.overall, plain.report.overall
        rows.append(
            {
                "area": name,
                "terms": o["load_weights"],
                "cases": len(cases),
                "grids": o["n_grids"],
                "load CV before": round(o["load_cv_before"], 3),
                "load CV after": round(o["load_cv"], 3),
                "max/median before": round(o["load_max_median_before"], 3),
                "max/median after": round(o["load_max_median"], 3),
                "in band (res.) plain": p["share_residential_in_band"],
                "in band (res.) load": o["share_residential_in_band"],
                "PP plain": round(p["mean_polsby_popper"], 3),
                "PP load": round(o["mean_polsby_popper"], 3),
                "s plain": round(t_plain, 1),
                "s load": round(t_load, 1),
                "time ratio": round(t_load / t_plain, 2),
            }
        )
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def make_rural_layers(seed: int) -> Layers:
    """A town of the second generator: 3 × 3 superblocks and 8 natural villages."""
    raw = synth_rural_city(core_blocks=(3, 3), n_villages=8, seed=seed)
    layers, _ = validate_layers(raw)
    return layers


def _cpu() -> float:
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def target_row(area: str, method: str, secs: float, cpu: float, n_b: int, o: dict) -> dict:
    """The issue-14 figures of one scored plan."""

    def pct(v: Any) -> float:
        return round(100 * float(v), 1) if v is not None else float("nan")

    return {
        "area": area,
        "method": method,
        "buildings": n_b,
        "grids": int(o["n_grids"]),
        "dedicated": int(o.get("n_dedicated", 0)),
        "% res in band": pct(o.get("share_residential_in_band", o["share_in_band"])),
        "art>50m": int(o["n_grids_arterial_inside"]),
        "forced": int(o["n_grids_arterial_forced"]),
        "% on streets": pct(o["share_boundary_on_streets"]),
        "% streets allowed": pct(o["share_boundary_on_streets_allowed"]),
        "over 1km²": int(o.get("n_over_area_cap", 0)),
        "mean PP": round(o["mean_polsby_popper"], 3),
        "PP res": round(o.get("mean_polsby_popper_residential", o["mean_polsby_popper"]), 3),
        "wall s": round(secs, 2),
        "CPU s/1k bld": round(1000 * cpu / max(n_b, 1), 3),
    }


def _membership(results: list[tuple[str, Any, np.ndarray]]) -> pd.DataFrame:
    """building_id → grid_code of a baseline's labels (as :func:`score` codes them)."""
    rows = []
    for cid, u, lab in results:
        _, lab = np.unique(lab, return_inverse=True)
        m = u.members
        for bid, cell in zip(m["building_id"], m["cell"], strict=True):
            rows.append((bid, f"{cid}-{lab[u.cell_unit[cell]]:03d}"))
    return pd.DataFrame(rows, columns=["building_id", "grid_code"])


def villages_cut(layers: Layers, members: pd.DataFrame) -> str:
    """Natural villages cut into more grids than their households need, of all villages.

    Only the rural generator marks villages (``buildings.village``); "" elsewhere.
    """
    b = layers.buildings
    if "village" not in b.columns or b["village"].isna().all():
        return ""
    vil = b.set_index(b["building_id"].astype(str))
    grids = members.assign(village=members["building_id"].astype(str).map(vil["village"]))
    per = grids.dropna(subset=["village"]).groupby("village")["grid_code"].nunique()
    hh = vil.dropna(subset=["village"]).groupby("village")["households"].sum()
    need = np.maximum(np.ceil(hh / MAX), 1).reindex(per.index)
    return f"{int((per > need).sum())}/{len(per)}"


def targets_table(seeds: list[int], generators: list[str], real: bool) -> pd.DataFrame:
    """Issue 14's target figures: gridmap and METIS on both generators and the OSM areas."""
    areas: list[tuple[str, Any]] = []
    for gen in generators:
        for seed in seeds:
            if gen == "gridmap":
                areas.append((f"gridmap seed {seed}", lambda seed=seed: make_layers(seed)))
            elif gen == "rural":
                areas.append((f"rural seed {seed}", lambda seed=seed: make_rural_layers(seed)))
            else:
                raise SystemExit(f"unknown generator {gen!r}: use gridmap or rural")
    if real:
        from gridmap.areas import derive_communities
        from gridmap.io import read_layers

        for name, path in REAL_AREAS.items():
            if not path.exists():
                print(f"({name}: {path} is missing, skipped)")
                continue

            def load(path: Path = path) -> Layers:
                raw = read_layers(path, preset="osm")
                return validate_layers({**raw, "communities": derive_communities(raw)})[0]

            areas.append((f"OSM {name}", load))
    rows = []
    for name, load in areas:
        layers = load()
        n_b = len(layers.buildings)
        t0, c0 = time.perf_counter(), _cpu()
        plan = partition(layers, min_households=MIN, max_households=MAX)
        secs, cpu = time.perf_counter() - t0, _cpu() - c0
        g = target_row(name, "gridmap", secs, cpu, n_b, plan.report.overall)
        g["villages cut"] = villages_cut(layers, plan.buildings)
        t0, c0 = time.perf_counter(), _cpu()
        units = community_units(layers)
        res = [(cid, u, label_metis(u)) for cid, u in units]
        secs, cpu = time.perf_counter() - t0, _cpu() - c0
        m = target_row(name, "metis", secs, cpu, n_b, score(layers, res))
        m["villages cut"] = villages_cut(layers, _membership(res))
        g["PP / metis"] = round(g["mean PP"] / m["mean PP"], 3) if m["mean PP"] else float("nan")
        rows += [g, m]
        print(g, flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--skip", nargs="*", default=[])
    ap.add_argument("--cities", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 50_000, 200_000])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--city-child", type=int, default=0)
    ap.add_argument("--no-methods", action="store_true")
    ap.add_argument("--load", action="store_true", help="grids balanced on workload (issue 13)")
    ap.add_argument("--targets", action="store_true", help="issue 14 target figures")
    ap.add_argument("--generators", nargs="*", default=["gridmap", "rural"])
    ap.add_argument("--no-real", action="store_true", help="skip the shared OSM areas")
    ap.add_argument("--out", type=Path, default=None, help="write the --targets table as CSV")
    args = ap.parse_args()
    if args.city_child:
        city_child(args.city_child, args.jobs)
        return
    pd.set_option("display.width", 200)
    if not args.no_methods:
        table = methods_table(args.seeds, set(args.skip))
        print(table.to_string(index=False))
        mean = table.groupby("method", sort=False).mean(numeric_only=True).drop(columns="seed")
        print("\nmean over seeds:")
        print(mean.round(3).to_string())
    if args.cities:
        print(cities(args.sizes, args.jobs).to_string(index=False))
    if args.load:
        print(load_table(args.seeds).to_string(index=False))
    if args.targets:
        t = targets_table(args.seeds, args.generators, real=not args.no_real)
        print(t.to_string(index=False))
        if args.out is not None:
            t.to_csv(args.out, index=False)
            print(f"written to {args.out}")


if __name__ == "__main__":
    main()
