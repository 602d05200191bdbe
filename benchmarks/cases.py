"""Cases benchmark: import, sweep and the filtered list, against baselines in the same run.

    python benchmarks/cases.py                         # 100,000 cases on SQLite
    python benchmarks/cases.py --n 1000000 --postgis postgresql+psycopg://postgres@127.0.0.1/gridmap_bench
    python benchmarks/cases.py --n 20000 --out bench-out
    python benchmarks/cases.py --n 200000 --import-only  # section 1 alone

1. **import**: ``gridmap.db.cases.import_cases`` of N synthetic tickets (``synth_cases`` on
   the bundled sample plan: check, locate, time, search likely duplicates — always, at any
   N —, store with deadlines and the intake log) vs ``pandas.DataFrame.to_sql`` (its default
   method) of the same ticket rows (target: ≤ 2×); wall and CPU time of this process
   (wall times are noisy on a shared machine; on PostGIS the server's CPU is not counted).
2. **sweep**: ``sweep_cases`` over the N cases with ``--open-share`` (10 %) still open vs a
   plain SQL count of the overdue ones (target: < 10 s for 1 M cases / 100 k open).
3. **list**: ``GET /cases`` filtered by status and grid, 50 a page: p50/p99 over
   ``--requests`` calls (target p99 < 100 ms).
4. **stats** (``--stats``, or ``--stats-only`` to skip 1–3): N cases of a synthetic year
   written with the bulk path (``bulk_insert``: cases and a handled log of ~6 lines each),
   then the performance figures of one month by grid
   (``gridmap.db.case_stats.store_case_stats``: counts in SQL, working times per case
   vectorised) vs the same figures in plain pandas on frames in memory
   (``gridmap.cases.case_stats``), same run (target: < 2 s for 1 M stored cases). On
   PostgreSQL it is timed right after the bulk write and again after ``VACUUM ANALYZE``
   (what autovacuum does to insert-only tables). ``--keep`` reuses the stats store a
   previous run left (``<out>/stats.db``, schema ``bench_stats``) when it holds the same
   cases, so repeated runs skip the write::

       python benchmarks/cases.py --stats-only --cases 1000000 [--postgis URL] [--out DIR --keep]

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

STATS_MONTH = "2026-11"
STATS_NOW = "2026-12-10 09:00"

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
    t0, c0 = time.perf_counter(), time.process_time()
    res = import_cases(store, tickets, author="bench")
    out["import_s"] = time.perf_counter() - t0
    out["import_cpu_s"] = time.process_time() - c0  # this process only (not the PG server)
    assert len(res.created) == len(tickets)

    base_url = f"sqlite:///{folder / 'to_sql.db'}" if url is None else url
    eng = sa.create_engine(base_url)
    plain = tickets.copy()
    t0, c0 = time.perf_counter(), time.process_time()
    with eng.begin() as conn:
        schema = None if url is None else where
        plain.to_sql(
            "tickets_plain",
            conn,
            schema=schema,
            if_exists="replace",
            index=False,
            chunksize=20_000,  # pandas' default method (executemany; batched VALUES on PG)
        )
    out["to_sql_s"] = time.perf_counter() - t0
    out["to_sql_cpu_s"] = time.process_time() - c0
    eng.dispose()
    out["import_ratio"] = out["import_s"] / out["to_sql_s"]
    out["import_cpu_ratio"] = out["import_cpu_s"] / max(out["to_sql_cpu_s"], 1e-6)
    print(  # each figure as soon as it is measured (a later section may fail)
        f"[{name}] import {out['n']:,}: {out['import_s']:.2f} s vs to_sql "
        f"{out['to_sql_s']:.2f} s = {out['import_ratio']:.2f}x (target <= 2x); CPU of this "
        f"process {out['import_cpu_s']:.2f} s vs {out['to_sql_cpu_s']:.2f} s = "
        f"{out['import_cpu_ratio']:.2f}x",
        flush=True,
    )
    if args.import_only:
        store.close()
        return out

    # 90 % closed, the rest open
    keep = max(1, int(round(1 / args.open_share)))
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE cases SET status = 'closed' WHERE id % {keep} != 0"))
    # what autovacuum (PostgreSQL) would do after such a mass change, before the list is timed;
    # without it the planner keeps the import's statistics (every case "received")
    if store.backend == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE cases")
    else:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA analysis_limit = 0")  # full: sampling misleads
            conn.exec_driver_sql("ANALYZE cases")
    out["open"] = int(
        pd.read_sql("SELECT count(*) AS n FROM cases WHERE status <> 'closed'", store.engine)["n"][
            0
        ]
    )
    t0, c0 = time.perf_counter(), time.process_time()
    sw = sweep_cases(store, now=NOW)
    out["sweep_s"] = time.perf_counter() - t0
    out["sweep_cpu_s"] = time.process_time() - c0
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
    print(
        f"[{name}] sweep {out['open']:,} open: {out['sweep_s']:.2f} s "
        f"(CPU {out['sweep_cpu_s']:.2f} s) ({out['sweep_events']:,} events; again "
        f"{out['sweep_again_s']:.2f} s, 0 written) vs SQL count "
        f"{out['sql_count_s'] * 1000:.1f} ms = {out['sweep_ratio']:.0f}x (target < 10 s for "
        f"1M/100k open); overdue {out['overdue_list']:,} = SQL {out['overdue_sql']:,}",
        flush=True,
    )

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
    print(
        f"[{name}] GET /cases?status=received&grid={grid}&limit=50&offset=0..200 over "
        f"{out['n']:,} cases: p50 {out['list_p50_ms']:.1f} ms, p99 {out['list_p99_ms']:.1f} ms "
        "(target p99 < 100 ms)",
        flush=True,
    )
    store.close()
    return out


def simulate_handling(
    frame: pd.DataFrame, *, now: str, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give synthetic tickets a handled life: cases (store columns) and their log, vectorised.

    3 % rejected; the rest accepted 0.2–8 h after reception, dispatched and started an hour
    later, replied at the generator's ``replied_at``, called back a day later (80 % 满意,
    12 % 基本满意, 8 % 不满意: half of those reopened), closed the day after; each state
    only if its time is before ``now``.
    """
    from gridmap.cases import TZ

    rng = np.random.default_rng(seed)
    n = len(frame)
    t_now = pd.Timestamp(now, tz=TZ)
    rec = pd.DatetimeIndex(frame["received_at"])
    hour = pd.Timedelta(hours=1)
    rejected = rng.random(n) < 0.03
    accepted = rec + pd.to_timedelta(rng.uniform(0.2, 8.0, n), unit="h")
    started = accepted + hour
    replied = pd.DatetimeIndex(frame["replied_at"])
    callback = replied + pd.Timedelta(days=1)
    closed = callback + pd.Timedelta(days=1)
    u = rng.random(n)
    sat = np.where(u < 0.8, "satisfied", np.where(u < 0.92, "fairly_satisfied", "unsatisfied"))
    reopen = (sat == "unsatisfied") & (rng.random(n) < 0.5)
    steps = [
        ("received", rec, np.ones(n, bool)),
        ("rejected", rec + pd.Timedelta(minutes=30), rejected),
        ("accepted", accepted, ~rejected),
        ("dispatched", accepted + pd.Timedelta(minutes=20), ~rejected),
        ("in_progress", started, ~rejected),
        ("replied", replied, ~rejected),
        ("callback", callback, ~rejected),
        ("reopened", closed, ~rejected & reopen),
        ("closed", closed, ~rejected & ~reopen),
    ]
    status = np.full(n, "received", dtype=object)
    logs = []
    version = np.zeros(n, np.int64)
    ids = np.arange(1, n + 1)
    for state, when, mask in steps:
        happened = mask & np.asarray(when <= t_now)
        status[happened] = state
        version[happened] += 1
        logs.append(
            pd.DataFrame(
                {
                    "case_id": ids[happened],
                    "version": version[happened],
                    "at": when[happened],
                    "to_state": state,
                }
            )
        )
    called = np.isin(status, ["callback", "closed"])
    cases = pd.DataFrame(
        {
            "case_id": ids,
            "grid_code": frame["true_grid"].to_numpy(),
            "community_id": frame["true_grid"].str[:12].to_numpy(),
            "subdistrict": frame["true_grid"].str[:9].to_numpy(),
            "category": frame["category"].to_numpy(),
            "policy": frame["policy"].to_numpy(),
            "urgency": frame["urgency"].to_numpy(),
            "source": frame["source"].to_numpy(),
            "status": status,
            "received_at": rec,
            "due_at": pd.DatetimeIndex(frame["resolve_due"]),
            "satisfaction": np.where(called, sat, None),
            "reopened": (status == "reopened").astype(np.int64),
            "version": version,
        }
    )
    log = pd.concat(logs, ignore_index=True).sort_values(["case_id", "version"], kind="stable")
    return cases, log.reset_index(drop=True)


def write_bulk(store: Store, cases: pd.DataFrame, log: pd.DataFrame) -> None:
    """Write simulated cases and their log with the bulk path (COPY on PostgreSQL)."""
    from gridmap.db.bulk import bulk_insert
    from gridmap.db.cases import _times_out
    from gridmap.db.models import CaseLog, CaseRow, table

    backend = store.backend
    n = len(cases)
    stamp = _times_out(pd.Series([pd.Timestamp("2027-01-01", tz="UTC")] * n), backend)
    cols = {
        "id": cases["case_id"].tolist(),
        "source": cases["source"].tolist(),
        "category": cases["category"].tolist(),
        "urgency": cases["urgency"].tolist(),
        "hard": [False] * n,
        "policy": cases["policy"].tolist(),
        "description": ["synthetic"] * n,
        "grid_code": cases["grid_code"].tolist(),
        "community_id": cases["community_id"].tolist(),
        "subdistrict": cases["subdistrict"].tolist(),
        "received_at": _times_out(cases["received_at"], backend),
        "status": cases["status"].tolist(),
        "version": cases["version"].tolist(),
        "level": ["grid"] * n,
        "reopened": cases["reopened"].tolist(),
        # NaN → None: COPY would write the text 'nan' (SQLite stores a NaN float as NULL)
        "satisfaction": cases["satisfaction"]
        .astype(object)
        .where(cases["satisfaction"].notna(), None)
        .tolist(),
        "due_at": _times_out(cases["due_at"], backend),
        "provisional": [False] * n,
        "content_hash": ["-"] * n,
        "created_at": stamp,
        "updated_at": stamp,
    }
    names = list(cols)
    lcols = {
        "case_id": log["case_id"].tolist(),
        "version": log["version"].tolist(),
        "at": _times_out(log["at"], backend),
        "actor": ["bench"] * len(log),
        "role": ["admin"] * len(log),
        "action": log["to_state"].tolist(),
        "to_state": log["to_state"].tolist(),
    }
    with store.session(write=True) as s:
        bulk_insert(s, table(CaseRow), names, zip(*(cols[c] for c in names), strict=True))
        bulk_insert(s, table(CaseLog), list(lcols), zip(*lcols.values(), strict=True))
    if backend == "postgresql":
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE cases")
            conn.exec_driver_sql("ANALYZE case_log")
            conn.commit()
    else:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def kept_stats_store(
    url: str | None, folder: Path, cases: pd.DataFrame, n_log: int
) -> Store | None:
    """Return the stats store a previous ``--keep`` run left, or None.

    Kept only if it holds the same numbers of cases and log lines and the same cases per grid
    in the timed month (a generator or partitioner changed since gives other cases or grid
    codes: write them anew).
    """
    from gridmap.cases import stats_period
    from gridmap.db.cases import _db_time

    n = len(cases)
    lo, hi = stats_period(month=STATS_MONTH)
    rec = pd.DatetimeIndex(cases["received_at"])
    in_month = cases.loc[(rec >= lo) & (rec < hi)]
    month = {
        str(g): (int(len(k)), int(k.sum())) for g, k in in_month.groupby("grid_code")["case_id"]
    }
    if url is None:
        path = folder / "stats.db"
        if not path.exists():
            return None
        store = Store.from_url(f"sqlite:///{path}")
    else:
        eng = sa.create_engine(url)
        with eng.connect() as conn:
            there = conn.exec_driver_sql(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = 'bench_stats' AND table_name = 'case_log'"
            ).first()
        eng.dispose()
        if there is None:
            return None
        store = Store.from_url(url, schema="bench_stats")
    try:
        with store.engine.connect() as conn:
            have = conn.exec_driver_sql("SELECT count(*) FROM cases").scalar_one()
            have_log = conn.exec_driver_sql("SELECT count(*) FROM case_log").scalar_one()
            got = {
                str(g): (int(k), int(i))
                for g, k, i in conn.execute(
                    sa.text(
                        "SELECT grid_code, count(*), sum(id) FROM cases "
                        "WHERE received_at >= :lo AND received_at < :hi GROUP BY grid_code"
                    ),
                    {"lo": _db_time(lo, store.backend), "hi": _db_time(hi, store.backend)},
                )
            }
    except sa.exc.DBAPIError:
        have = have_log = -1
        got = {}
    if (have, have_log, got) != (n, n_log, month):
        store.close()
        return None
    return store


def bench_stats(name: str, url: str | None, args, layers, plan, frame, folder: Path) -> dict:
    from gridmap.cases import case_facts, case_stats
    from gridmap.db.case_stats import store_case_stats

    out: dict = {"backend": name, "n": len(frame)}
    cases, log = simulate_handling(frame, now=STATS_NOW, seed=args.seed)
    out["log_rows"] = len(log)
    store = kept_stats_store(url, folder, cases, len(log)) if args.keep else None
    out["write_s"] = float("nan")
    if store is None:
        store, _ = fresh_store(url, folder, "stats")
        save_layers(store, layers, author="bench")
        save_plan(store, plan, author="bench", status="published")
        t0 = time.perf_counter()
        write_bulk(store, cases, log)
        out["write_s"] = time.perf_counter() - t0
    store_case_stats(store, by="grid", month="2026-01", now=STATS_NOW)  # warm the caches once
    times = []
    for _ in range(args.stats_repeat):
        t0 = time.perf_counter()
        sql = store_case_stats(store, by="grid", month=STATS_MONTH, now=STATS_NOW)
        times.append(time.perf_counter() - t0)
    out["sql_s"] = float(np.median(times))
    out["sql_vacuumed_s"] = out["sql_s"]
    if store.backend == "postgresql":
        # right after a bulk COPY the visibility map is empty: an index-only scan of the log
        # still reads the heap. Autovacuum sets it for insert-only tables (PostgreSQL 13+);
        # time the figures again as they are once it has run
        with store.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ANALYZE cases")
            conn.exec_driver_sql("VACUUM ANALYZE case_log")
        times = []
        for _ in range(args.stats_repeat):
            t0 = time.perf_counter()
            store_case_stats(store, by="grid", month=STATS_MONTH, now=STATS_NOW)
            times.append(time.perf_counter() - t0)
        out["sql_vacuumed_s"] = float(np.median(times))
    # plain pandas on a frame in memory: one row per case, answer/reply times joined from the log
    facts = case_facts(cases, log)
    times = []
    for _ in range(args.stats_repeat):
        t0 = time.perf_counter()
        mem = case_stats(facts, by="grid", month=STATS_MONTH, now=STATS_NOW, calendar=None)
        times.append(time.perf_counter() - t0)
    out["pandas_s"] = float(np.median(times))
    out["pandas_from_log_s"] = float("nan")
    if len(cases) <= 200_000:  # the per-case join of the raw log in pandas (slow: skipped at 1 M)
        t0 = time.perf_counter()
        case_stats(cases, log, by="grid", month=STATS_MONTH, now=STATS_NOW)
        out["pandas_from_log_s"] = time.perf_counter() - t0
    out["month_cases"] = int(sql["received"].sum())
    out["grids"] = len(sql)
    cmp = ["received", "open", "overdue", "due", "on_time", "answered", "resolved", "rated"]
    out["same_figures"] = bool(
        (
            sql[cmp].to_numpy()
            == mem.drop(columns="households").set_index("unit").reindex(sql["unit"])[cmp].to_numpy()
        ).all()
    )
    out["ratio"] = out["sql_s"] / max(out["pandas_s"], 1e-9)
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--n",
        "--cases",
        dest="n",
        type=int,
        default=100_000,
        help="cases (the issue's figure: 1000000)",
    )
    ap.add_argument("--stats", action="store_true", help="also run the stats section (4)")
    ap.add_argument("--stats-only", action="store_true", help="run only the stats section (4)")
    ap.add_argument("--stats-repeat", type=int, default=3, help="timed runs (median)")
    ap.add_argument("--open-share", type=float, default=0.1, help="share of cases left open")
    ap.add_argument("--requests", type=int, default=200, help="GET /cases calls timed")
    ap.add_argument("--postgis", default=None, help="also run on this PostGIS URL")
    ap.add_argument("--skip-sqlite", action="store_true", help="sections 1-3: PostGIS only")
    ap.add_argument("--import-only", action="store_true", help="run only the import section (1)")
    ap.add_argument("--out", default=None, help="folder for cases.json (and the SQLite files)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--keep",
        action="store_true",
        help="stats: reuse the stats store a previous run left in --out (SQLite) or the "
        "bench_stats schema (PostGIS) if it holds the same cases; otherwise write it anew",
    )
    args = ap.parse_args()
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gridmap-cases-"))
    folder.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    layers, plan = sample_plan()
    frame = synth_cases(plan, n=args.n, start="2026-01-01", days=365, seed=args.seed)
    tickets = frame.drop(columns=["true_grid", "resolve_due", "replied_at", "late"])
    print(f"{args.n:,} synthetic tickets on the sample plan in {time.perf_counter() - t0:.1f} s")
    if args.stats or args.stats_only:
        stats = [bench_stats("sqlite", None, args, layers, plan, frame, folder)]
        if args.postgis:
            stats.append(bench_stats("postgis", args.postgis, args, layers, plan, frame, folder))
        for r in stats:
            print(
                f"[{r['backend']}] stats, {STATS_MONTH} by grid over {r['n']:,} stored cases "
                f"({r['log_rows']:,} log lines, bulk-written in {r['write_s']:.1f} s; nan: kept): "
                f"SQL {r['sql_s']:.3f} s (after VACUUM {r['sql_vacuumed_s']:.3f} s) vs pandas "
                f"in memory {r['pandas_s']:.3f} s = {r['ratio']:.2f}x (target < 2 s); "
                "pandas from the raw log "
                f"{r['pandas_from_log_s']:.2f} s; {r['month_cases']:,} cases in "
                f"{r['grids']} grids, same figures: {r['same_figures']}"
            )
        (folder / "cases_stats.json").write_text(json.dumps(stats, indent=2))
        if args.stats_only:
            print(f"figures: {folder / 'cases_stats.json'}")
            return

    runs = [] if args.skip_sqlite else [("sqlite", None)]
    if args.postgis:
        runs.append(("postgis", args.postgis))
    results = []
    for backend, url in runs:  # print each backend's figures as soon as they are measured
        r = bench_backend(backend, url, args, layers, plan, tickets, folder)
        results.append(r)
        (folder / "cases.json").write_text(json.dumps(results, indent=2))
    (folder / "cases.json").write_text(json.dumps(results, indent=2))
    print(f"figures: {folder / 'cases.json'}")


if __name__ == "__main__":
    main()
