"""Cases benchmark: import, sweep and the filtered list, against baselines in the same run.

    python benchmarks/cases.py                         # 100,000 cases on SQLite
    python benchmarks/cases.py --n 1000000 --postgis postgresql+psycopg://postgres@127.0.0.1/gridmap_bench
    python benchmarks/cases.py --n 20000 --out bench-out

1. **import**: ``gridmap.db.cases.import_cases`` of N synthetic tickets (``synth_cases`` on
   the bundled sample plan: check, locate, time, store with deadlines and the intake log)
   vs ``pandas.DataFrame.to_sql`` of the same ticket rows (target: ≤ 2×).
2. **sweep**: ``sweep_cases`` over the N cases with ``--open-share`` (10 %) still open vs a
   plain SQL count of the overdue ones (target: < 10 s for 1 M cases / 100 k open).
3. **list**: ``GET /cases`` filtered by status and grid, 50 a page: p50/p99 over
   ``--requests`` calls (target p99 < 100 ms).

Figures go to stdout and ``<out>/cases.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from gridmap.cases import synth_cases
from gridmap.db import Store, save_layers, save_plan
from gridmap.db.cases import import_cases, list_cases, overdue_states, sweep_cases

NOW = "2027-01-05 09:00"


def sample_plan():
    from gridmap.datasets import get_path
    from gridmap.io import read_layers
    from gridmap.partition import partition
    from gridmap.validation import validate_layers

    layers, _ = validate_layers(read_layers(get_path("sample")))
    return layers, partition(layers, seed=0)


def fresh_store(url: str | None, folder: Path, tag: str) -> tuple[Store, str]:
    if url is None:
        path = folder / f"{tag}.db"
        for old in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            old.unlink(missing_ok=True)
        u = f"sqlite:///{path}"
        return Store.from_url(u), u
    schema = f"bench_{tag}"
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    eng.dispose()
    return Store.from_url(url, schema=schema), schema


def bench_backend(name: str, url: str | None, args, layers, plan, tickets, folder: Path) -> dict:
    out: dict = {"backend": name, "n": len(tickets)}
    store, where = fresh_store(url, folder, "cases")
    save_layers(store, layers, author="bench")
    save_plan(store, plan, author="bench", status="published")
    t0 = time.perf_counter()
    res = import_cases(store, tickets, author="bench")
    out["import_s"] = time.perf_counter() - t0
    assert len(res.created) == len(tickets)

    base_url = f"sqlite:///{folder / 'to_sql.db'}" if url is None else url
    eng = sa.create_engine(base_url)
    plain = tickets.copy()
    t0 = time.perf_counter()
    with eng.begin() as conn:
        schema = None if url is None else where
        plain.to_sql(
            "tickets_plain",
            conn,
            schema=schema,
            if_exists="replace",
            index=False,
            chunksize=20_000,
            method="multi" if url is not None else None,
        )
    out["to_sql_s"] = time.perf_counter() - t0
    eng.dispose()
    out["import_ratio"] = out["import_s"] / out["to_sql_s"]

    # 90 % closed, the rest open
    keep = max(1, int(round(1 / args.open_share)))
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE cases SET status = 'closed' WHERE id % {keep} != 0"))
    out["open"] = int(
        pd.read_sql("SELECT count(*) AS n FROM cases WHERE status <> 'closed'", store.engine)["n"][
            0
        ]
    )
    t0 = time.perf_counter()
    sw = sweep_cases(store, now=NOW)
    out["sweep_s"] = time.perf_counter() - t0
    out["sweep_events"] = sw.written
    t0 = time.perf_counter()
    sw2 = sweep_cases(store, now=NOW)
    out["sweep_again_s"] = time.perf_counter() - t0
    assert sw2.written == 0
    states = ", ".join(f"'{s}'" for s in overdue_states())
    from gridmap.db.cases import _db_time

    t0 = time.perf_counter()
    with store.engine.connect() as conn:
        n_sql = conn.execute(
            sa.text(f"SELECT count(*) FROM cases WHERE status IN ({states}) AND due_at < :now"),
            {"now": _db_time(NOW, store.backend)},
        ).scalar_one()
    out["sql_count_s"] = time.perf_counter() - t0
    out["overdue_sql"] = int(n_sql)
    out["overdue_list"] = list_cases(store, overdue=True, now=NOW, limit=1)[1]
    out["sweep_ratio"] = out["sweep_s"] / max(out["sql_count_s"], 1e-6)

    # GET /cases filtered
    from fastapi.testclient import TestClient

    from gridmap.api import Settings, create_app
    from gridmap.db.keys import create_key

    _, token = create_key(store, name="bench", role="dispatcher", author="bench")
    grid = plan.grids["grid_code"].iloc[0]
    app = create_app(Settings(database_url="sqlite://", cases_sweep_seconds=0), store=store)
    times = []
    with TestClient(app) as client:
        for i in range(args.requests):
            q = f"/cases?status=received&grid={grid}&limit=50&offset={(i % 5) * 50}"
            t0 = time.perf_counter()
            r = client.get(q, headers={"X-API-Key": token})
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200
    ms = np.array(times) * 1000
    out["list_p50_ms"] = float(np.percentile(ms, 50))
    out["list_p99_ms"] = float(np.percentile(ms, 99))
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="cases (the issue's figure: 1000000)")
    ap.add_argument("--open-share", type=float, default=0.1, help="share of cases left open")
    ap.add_argument("--requests", type=int, default=200, help="GET /cases calls timed")
    ap.add_argument("--postgis", default=None, help="also run on this PostGIS URL")
    ap.add_argument("--out", default=None, help="folder for cases.json (and the SQLite files)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gridmap-cases-"))
    folder.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    layers, plan = sample_plan()
    frame = synth_cases(plan, n=args.n, start="2026-01-01", days=365, seed=args.seed)
    tickets = frame.drop(columns=["true_grid", "resolve_due", "replied_at", "late"])
    print(f"{args.n:,} synthetic tickets on the sample plan in {time.perf_counter() - t0:.1f} s")

    results = [bench_backend("sqlite", None, args, layers, plan, tickets, folder)]
    if args.postgis:
        results.append(bench_backend("postgis", args.postgis, args, layers, plan, tickets, folder))
    for r in results:
        print(
            f"[{r['backend']}] import {r['n']:,}: {r['import_s']:.2f} s vs to_sql "
            f"{r['to_sql_s']:.2f} s = {r['import_ratio']:.2f}x (target <= 2x)\n"
            f"[{r['backend']}] sweep {r['open']:,} open: {r['sweep_s']:.2f} s "
            f"({r['sweep_events']:,} events; again {r['sweep_again_s']:.2f} s, 0 written) vs "
            f"SQL count {r['sql_count_s'] * 1000:.1f} ms = {r['sweep_ratio']:.0f}x "
            f"(target < 10 s for 1M/100k open); overdue {r['overdue_list']:,} = SQL "
            f"{r['overdue_sql']:,}\n"
            f"[{r['backend']}] GET /cases filtered: p50 {r['list_p50_ms']:.1f} ms, "
            f"p99 {r['list_p99_ms']:.1f} ms (target p99 < 100 ms)"
        )
    (folder / "cases.json").write_text(json.dumps(results, indent=2))
    print(f"figures: {folder / 'cases.json'}")


if __name__ == "__main__":
    main()
