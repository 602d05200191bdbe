"""Benchmark gridmap.scale: a Dask LocalCluster against the process pool, in one run.

    python benchmarks/scale.py [--buildings 20000] [--points 10000000] [--workers 2]
                               [--out bench-scale] [--scheduler-port 0] [--seed 0]
                               [--skip-partition] [--skip-locate] [--city PATH]
                               [--dask-defaults]

1. Partitioning: a synthetic city (``gridmap.synth.synth_city``) written as a
   community-partitioned GeoParquet dataset; ``partition(layers, n_jobs=W)`` (the
   process pool) against ``partition_on_cluster`` on a LocalCluster of W worker
   processes (started before the clock). The cluster's overhead is its extra wall
   time as a share of its wall time (target <= 15 %); its extra CPU (client and
   workers against the pool's parent and children) is printed beside it, as wall
   times are noisy on a shared machine. Both plans must be equal. ``--city PATH``
   keeps the synthetic city's dataset there and reuses it on the next run (the
   200,000-building city takes minutes to draw).
2. Re-locating ``--points`` lon/lat points from GeoParquet (``--buildings 200000`` and
   ``--points 100000000`` for the issue's figures): ``locate_dataset`` on the cluster
   (reading, locating, writing GeoParquet) against in-process ``GridIndex.locate_lonlat``
   on one thread over the same points held in memory: points/s per core and the ratio
   (target >= 0.8).
3. A projection, from the measured per-building and per-point costs and worker
   memory, for a province of 30 M buildings and 1 B points on 8, 32 and 128 workers.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _worker_rss(client) -> list[float]:
    return sorted(client.run(_rss_mb).values())


def _cpu_s() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def _worker_cpu(client) -> float:
    """CPU seconds used so far by all worker processes (user + system)."""
    return sum(client.run(_cpu_s).values())


def _children_cpu() -> float:
    """CPU seconds of this process's waited-for children (the process pool's workers)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buildings", type=int, default=20_000)
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="bench-scale")
    ap.add_argument("--scheduler-port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows-per-partition", type=int, default=1_000_000)
    ap.add_argument("--skip-partition", action="store_true")
    ap.add_argument("--skip-locate", action="store_true")
    ap.add_argument(
        "--dask-defaults",
        action="store_true",
        help="workers with Dask's default settings (profiler on) instead of LEAN_WORKER_CONFIG",
    )
    ap.add_argument(
        "--city",
        help="dataset folder of the city: read if it exists (--buildings, --seed ignored), "
        "else written there",
    )
    args = ap.parse_args()

    import dask
    import distributed
    from distributed import Client, LocalCluster

    from gridmap.crs import to_wgs84
    from gridmap.locate import GridIndex
    from gridmap.partition import partition
    from gridmap.scale import locate_dataset, partition_on_cluster, write_partitioned
    from gridmap.scale.cluster import LEAN_WORKER_CONFIG
    from gridmap.scale.dataset import MANIFEST, read_partitioned
    from gridmap.synth import synth_city
    from gridmap.validation import validate_layers

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    W = args.workers

    t = time.perf_counter()
    cached = Path(args.city) if args.city else None
    if cached is not None and (cached / MANIFEST).exists():
        dataset = cached
        layers = read_partitioned(dataset)
        how = f"read from {cached}"
    else:
        layers, _ = validate_layers(
            synth_city(n_buildings=args.buildings, seed=args.seed, with_households=False)
        )
        dataset = None
        how = "drawn"
    n_b, n_c = len(layers.buildings), len(layers.communities)
    print(f"city: {n_b} buildings, {n_c} communities, {how} ({time.perf_counter() - t:.1f} s)")
    if dataset is None:
        t = time.perf_counter()
        dataset = write_partitioned(layers, cached or out / "city")
        print(f"write_partitioned: {time.perf_counter() - t:.2f} s")

    t = time.perf_counter()
    # the worker settings `--scheduler local:N` uses (gridmap.scale.cluster.LEAN_WORKER_CONFIG)
    with dask.config.set({} if args.dask_defaults else LEAN_WORKER_CONFIG):
        cluster = LocalCluster(
            n_workers=W,
            threads_per_worker=1,
            processes=True,
            scheduler_port=args.scheduler_port,
            dashboard_address=":0",
        )
    client = Client(cluster)
    print(f"LocalCluster({W} workers) started in {time.perf_counter() - t:.1f} s (not timed below)")
    rss0 = _worker_rss(client)

    figures: dict[str, float] = {}
    plan = None
    if not args.skip_partition:
        t, c, k = time.perf_counter(), time.process_time(), _children_cpu()
        local = partition(layers, seed=args.seed, n_jobs=W)
        t_pool = time.perf_counter() - t
        cpu_pool = time.process_time() - c + _children_cpu() - k
        with distributed.get_task_stream(client) as ts:
            w, c = _worker_cpu(client), time.process_time()
            t = time.perf_counter()
            plan = partition_on_cluster(dataset, scheduler=client, seed=args.seed)
            t_cl = time.perf_counter() - t
            cpu_cl = time.process_time() - c + _worker_cpu(client) - w
        compute = sum(
            s["stop"] - s["start"]
            for task in ts.data
            for s in task.get("startstops", [])
            if s.get("action") == "compute"
        )
        last = max((s["stop"] for task in ts.data for s in task.get("startstops", [])), default=0.0)
        first = min(
            (s["start"] for task in ts.data for s in task.get("startstops", [])), default=0.0
        )
        same = (
            local.grids.drop(columns="geometry").equals(plan.grids.drop(columns="geometry"))
            and local.grids.geometry.geom_equals_exact(plan.grids.geometry, 0).all()
            and local.report.to_json() == plan.report.to_json()
        )
        rss1 = _worker_rss(client)
        overhead = (t_cl - t_pool) / t_cl
        print(
            f"\npartition: process pool (n_jobs={W}) {t_pool:.2f} s; cluster {t_cl:.2f} s; "
            f"overhead {100 * overhead:.1f} % of the cluster's wall time (target <= 15 %); "
            f"same plan: {same}"
        )
        print(
            f"  CPU: process pool (parent + children) {cpu_pool:.1f} s; cluster (client, "
            f"its scheduler, workers) {cpu_cl:.1f} s; extra CPU "
            f"{100 * (cpu_cl - cpu_pool) / cpu_cl:.1f} % of the cluster's"
        )
        print(
            f"  worker compute {compute:.1f} core-s over {n_c} communities "
            f"({1e3 * compute / n_b:.2f} ms per building, {compute / n_c:.2f} s per community); "
            f"solve span {last - first:.1f} s; client-side assembly and reading "
            f"~{max(t_cl - (last - first), 0):.1f} s"
        )
        print(
            f"  worker RSS before {rss0} MB, after {rss1} MB; client peak {_peak_mb():.0f} MB; "
            f"{plan.n_grids} grids"
        )
        figures.update(
            per_building=compute / n_b,
            assembly_per_building=max(t_cl - (last - first), 0) / n_b,
            worker_mb=max(rss1),
            grids_per_building=plan.n_grids / n_b,
        )
    if not args.skip_locate:
        if plan is None:
            plan = partition(layers, seed=args.seed, n_jobs=W)
        rng = np.random.default_rng(args.seed)
        x0, y0, x1, y1 = plan.grids.total_bounds
        n = args.points
        path = out / "points.parquet"
        t = time.perf_counter()
        writer = None
        chunk = args.rows_per_partition
        for s in range(0, n, chunk):
            m = min(chunk, n - s)
            lon, lat = to_wgs84(rng.uniform(x0, x1, m), rng.uniform(y0, y1, m), plan.crs)
            table = pa.table({"id": np.arange(s, s + m), "lon": lon, "lat": lat})
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=chunk)
        assert writer is not None
        writer.close()
        print(f"\n{n:,} points written to {path} ({time.perf_counter() - t:.1f} s)")

        # baseline: in-process GridIndex on one thread, points already in memory
        index = GridIndex(plan.grids)
        index.locate_lonlat([118.78], [32.05])
        pf = pq.ParquetFile(path)
        t_base = c_base = 0.0
        for rg in range(pf.metadata.num_row_groups):
            tb = pf.read_row_group(rg, columns=["lon", "lat"])
            lon = tb.column("lon").to_numpy()
            lat = tb.column("lat").to_numpy()
            t, c = time.perf_counter(), time.process_time()
            from gridmap.crs import transform

            px, py = transform(lon, lat, "wgs84", index.crs, validate=True)
            index.locate(px, py, threads=1)
            t_base += time.perf_counter() - t
            c_base += time.process_time() - c
        base_rate = n / t_base
        base_cpu_rate = n / c_base

        rss_a = _worker_rss(client)
        cpu_a, cc_a = _worker_cpu(client), time.process_time()
        t = time.perf_counter()
        summary = locate_dataset(
            path,
            plan,
            out / "located",
            scheduler=client,
            rows_per_partition=args.rows_per_partition,
        )
        t_loc = time.perf_counter() - t
        cpu_w, cpu_c = _worker_cpu(client) - cpu_a, time.process_time() - cc_a
        rss_b = _worker_rss(client)
        rate = n / t_loc / W
        cpu_rate = n / (cpu_w + cpu_c)
        print(
            f"locate: in-process GridIndex (1 thread, in memory) {base_rate:,.0f} points/s "
            f"({base_cpu_rate:,.0f} per CPU-s); cluster locate_dataset (read + locate + write "
            f"GeoParquet) {t_loc:.1f} s = {rate:,.0f} points/s per core; ratio "
            f"{rate / base_rate:.2f} (target >= 0.8)"
        )
        print(
            f"  CPU: workers {cpu_w:.1f} s + client {cpu_c:.1f} s = {cpu_rate:,.0f} points per "
            f"CPU-s; CPU ratio {cpu_rate / base_cpu_rate:.2f} (wall ratios are noisy on a "
            "shared machine; the CPU ratio is not)"
        )
        print(
            f"  {summary.partitions} partitions, inside {summary.inside:,}, outside "
            f"{summary.outside:,}, errors {summary.errors}; worker RSS {rss_a} -> {rss_b} MB"
        )
        figures.update(per_point=1 / rate, locate_worker_mb=max(rss_b))

    # ------------------------------------------------------------------ projection
    print("\nprojection (measured costs; solve and locate scale out, the client assembles):")
    B, P = 30_000_000, 1_000_000_000
    for w in (8, 32, 128):
        parts = []
        if "per_building" in figures:
            solve = B * figures["per_building"] / w
            asm = B * figures["assembly_per_building"]
            parts.append(
                f"partition 30 M buildings: solve {solve / 3600:.2f} h + client assembly "
                f"~{asm / 3600:.2f} h"
            )
        if "per_point" in figures:
            parts.append(f"locate 1 B points: {P * figures['per_point'] / w / 3600:.2f} h")
        print(f"  {w:>3} workers: " + "; ".join(parts))
    if "worker_mb" in figures:
        print(
            f"  memory per partition worker: ~{figures['worker_mb']:.0f} MB measured (one "
            "community at a time; communities stay ~1,500-8,000 households, so it does not "
            "grow with the province); the client holds every layer and the plan for assembly "
            f"(client peak this run: {_peak_mb():.0f} MB for {n_b} buildings, synthesis included; "
            "run one city or district per call"
        )
    if "locate_worker_mb" in figures and "grids_per_building" in figures:
        g = figures["grids_per_building"] * B
        print(
            f"  memory per locate worker: ~{figures['locate_worker_mb']:.0f} MB measured with "
            f"{plan.n_grids if plan is not None else 0} grids and "
            f"{args.rows_per_partition:,}-row partitions; a province has ~{g:,.0f} grids: "
            "add the index (about 10 kB per grid: polygons, boundaries, trees, prepared copies)"
            f" ~{g * 10e3 / 2**30:.1f} GB"
        )
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
