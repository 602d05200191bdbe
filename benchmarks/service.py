"""Benchmark the service on whole cities: memory per process, time to ready, /locate latency.

    python benchmarks/service.py [--buildings 20000 60000] [--backends sqlite postgis]
                                 [--requests 300] [--seed 1] [--baseline /tmp/baseline]
                                 [--cache-dir /tmp/gridmap-service-bench] [--build-only]
                                 [--no-refresh] [--workers N]

A 200,000-building city takes half an hour or more to make and store: make it once
in the background (``--build-only``, kept in ``--cache-dir``), then measure as often
as needed with the same ``--cache-dir`` (cities and stores are reused, never rebuilt).
``--workers N`` serves with ``gridmap serve --workers N`` and reports each worker's
RSS and PSS (shared pages split between the processes) and their sums with the
parent's PSS; this checkout is measured both ways, its workers forked from a parent
that loaded the snapshot (``new``) and started afresh (``--no-preload``,
``new-spawn``), and the ratio of their PSS sums is printed.

For each city size a synthetic city (``synth_city``, every building with its
household rows) is validated, partitioned and staffed once, and cached as a pickle
in ``--cache-dir``; it is then stored and published in one store per backend
(a SQLite file; a PostGIS database ``gridmap_svcbench_<n>_<code>`` on
``--postgis-url``), by each code measured: this checkout (``new``) and, with
``--baseline DIR`` (e.g. ``git worktree add /tmp/baseline HEAD``), the code in DIR
(``base``), each writing its own schema. Stores are kept in the cache for the next
run.

Then, one at a time (so that the processes do not compete for the two cores),
``python -m gridmap serve`` is started over each store and measured:

* **ready s**: from the process start to the first ``200`` of ``/health``, and the
  CPU seconds the process spent until then (less sensitive to a loaded machine); the
  same over an empty store is printed first (interpreter and imports alone);
* **RSS MB**: resident memory of the serving process (``/proc/PID/status``
  ``VmRSS``) after the requests below, and **peak MB** (``VmHWM``) since start;
* ``GET /locate`` (dispatcher key: grid, staff) of ``--requests`` points, one at a
  time on a kept-alive connection: **p50/p99 ms** as the client sees them;
* ``GET /locate?radius=100`` (buildings and residents within 100 m, audited) of
  the same points: p50/p99 ms;
* **refresh**: a draft copy of the plan is published through the API
  (``POST /plans/{id}/publish``: the published plan is archived and the route
  rebuilds the snapshot), then the original is published back; reported: the
  seconds of that request and the peak resident memory during it above the RSS
  before it (``VmHWM`` reset through ``/proc/PID/clear_refs``); and apart, the same
  peak for the ``GET /plans/{id}`` read just before it (for the ``ETag``).

Targets (issue #20): ≤ 1.5 GB per process and ready in ≤ 10 s for a
200,000-building city; ``/locate`` no slower than the baseline; residents-near p99
≤ 50 ms on PostGIS. Memory per 100,000 households is printed from the two sizes
(the slope of RSS against households).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

_FILL = r"""
import json, pickle, sys
from gridmap.db import Store, upgrade, save_layers, save_plan
from gridmap.db.keys import create_key

url, path = sys.argv[1], sys.argv[2]
upgrade(url)
with open(path, "rb") as f:
    layers, plan = pickle.load(f)
with Store.from_url(url) as store:
    save_layers(store, layers, author="bench")
    rec = save_plan(store, plan, author="bench", status="published")
    draft = save_plan(store, plan, author="bench")  # published by the refresh measurement
    _, token = create_key(store, name="bench", role="dispatcher", author="bench")
    _, planner = create_key(store, name="bench planner", role="planner", author="bench")
print(json.dumps({"token": token, "planner": planner, "plan_id": rec.id, "draft_id": draft.id}))
"""

_PYCACHE = Path("/tmp/gridmap-service-bench/pycache")

_UPGRADE = "import sys; from gridmap.db import upgrade; upgrade(sys.argv[1])"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(code_dir: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    if code_dir is not None:
        env["PYTHONPATH"] = str(code_dir)
    # compiled modules cached as on an installed system (one cache per code measured)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE / ("base" if code_dir is not None else "new"))
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- cities


def _city(n: int, seed: int, cache: Path) -> tuple[Path, dict[str, Any]]:
    """Return the pickled (layers, plan) of a city and its facts (built once, then cached)."""
    pkl = cache / f"city-{n}-s{seed}.pkl"
    facts_file = pkl.with_suffix(".json")
    if pkl.exists() and facts_file.exists():
        return pkl, json.loads(facts_file.read_text())
    from gridmap.partition import partition
    from gridmap.staffing import assign_staff
    from gridmap.synth import synth_city
    from gridmap.validation import validate_layers

    t = time.perf_counter()
    layers, _ = validate_layers(synth_city(n_buildings=n, seed=seed))
    t_synth = time.perf_counter() - t
    plan = partition(layers, seed=seed, n_jobs=2)
    t_part = time.perf_counter() - t - t_synth
    if layers.staff is not None:
        plan = assign_staff(plan, layers.staff).to_plan(plan)
    # query points: a sample of buildings (where incidents happen), in WGS84
    rng = np.random.default_rng(seed)
    b = layers.buildings
    pick = rng.choice(len(b), size=min(2000, len(b)), replace=False)
    pts = b.geometry.iloc[pick].representative_point().to_crs(4326)
    facts = {
        "buildings": len(b),
        "households": 0 if layers.households is None else len(layers.households),
        "communities": len(layers.communities),
        "grids": plan.n_grids,
        "synth_s": round(t_synth, 1),
        "partition_s": round(t_part, 1),
        "points": [[float(p.x), float(p.y)] for p in pts],
    }
    tmp = pkl.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump((layers, plan), f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(pkl)
    facts_file.write_text(json.dumps(facts))
    print(
        f"city {n}: {facts['buildings']:,} buildings, {facts['households']:,} households, "
        f"{facts['grids']:,} grids (synth {t_synth:.0f} s, partition {t_part:.0f} s)",
        flush=True,
    )
    return pkl, facts


def _pg_create(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(_pg_db(admin_url, name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def _pg_db(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _store(
    n: int, seed: int, backend: str, code: str, code_dir: Path | None, args: argparse.Namespace
) -> dict[str, Any]:
    """Return ``{url, token, plan_id}`` of a filled store (made once, kept in the cache)."""
    name = f"svcbench_{n}_s{seed}_{code}"
    marker = args.cache_dir / f"{backend}-{name}.json"
    if backend == "sqlite":
        path = args.cache_dir / f"{name}.db"
        url = f"sqlite:///{path}"
    else:
        admin = args.postgis_url.replace("postgresql+psycopg://", "postgresql://")
        url = _pg_db(args.postgis_url, f"gridmap_{name}")
    if marker.exists():
        info = json.loads(marker.read_text())
        # the code may have gained migrations since: upgrade is idempotent
        subprocess.run(
            [sys.executable, "-c", _UPGRADE, url], env=_env(code_dir), check=True, cwd="/"
        )
        return info
    pkl, _ = _city(n, seed, args.cache_dir)
    if backend == "sqlite":
        path.unlink(missing_ok=True)
    else:
        _pg_create(admin, f"gridmap_{name}")
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _FILL, url, str(pkl)],
        env=_env(code_dir),
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
    ).stdout
    info = {"url": url, **json.loads(out.strip().splitlines()[-1])}
    marker.write_text(json.dumps(info))
    print(f"  stored {name} on {backend} in {time.perf_counter() - t:.0f} s", flush=True)
    return info


# ----------------------------------------------------------------------------- serving


def _status(pid: int) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` of a process in MB (``/proc/PID/status``)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process so far, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """Child process ids (uvicorn's workers; its multiprocessing helper too)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(c) for c in text)
    return out


def _workers(pid: int) -> list[int]:
    """The serving processes: ``pid`` itself, or its workers (those holding a snapshot)."""
    kids = [c for c in _children(pid) if "gridmap" in _cmdline(c) or "spawn" in _cmdline(c)]
    return kids or [pid]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _tree_cpu_seconds(pid: int) -> float:
    total = _cpu_seconds(pid)
    for c in _children(pid):
        try:
            total += _cpu_seconds(c)
        except OSError:
            pass
    return total


def _all_ready(pid: int, workers: int) -> bool:
    """Whether ``workers`` worker processes have started and each holds its snapshot.

    A worker loads its snapshot before it accepts connections (the lifespan), so N
    live workers whose CPU time stopped growing are taken as ready: the first /health
    proves one; the others are given until their RSS stops growing.
    """
    kids = _workers(pid)
    if len(kids) < workers:
        return False
    before = [_status(k)["VmRSS"] for k in kids]
    time.sleep(1.0)
    after = [_status(k)["VmRSS"] for k in kids]
    return all(abs(a - b) < 2 for a, b in zip(after, before, strict=True))


def _pss(pid: int) -> float:
    """Proportional set size in MB (shared pages split between the processes sharing them)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _serve(
    url: str, code_dir: Path | None, port: int, workers: int = 1, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], float, float]:
    """Start ``python -m gridmap serve`` over ``url``: the process, wall and CPU s to ready.

    With ``workers > 1`` ready means every worker answers (each loads its own snapshot).
    """
    env = _env(code_dir, GRIDMAP_REFRESH_SECONDS="0.5", GRIDMAP_CASES_SWEEP_SECONDS="0")
    cmd = [sys.executable, "-m", "gridmap", "serve", "--db", url, "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers), *extra]
    t = time.perf_counter()
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning"],
        env=env,
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    while True:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            if r.status_code == 200 and (workers == 1 or _all_ready(proc.pid, workers)):
                return proc, time.perf_counter() - t, _tree_cpu_seconds(proc.pid)
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"gridmap serve exited with {proc.returncode}: {err[-2000:]}")
        if time.perf_counter() - t > 900:
            proc.kill()
            raise RuntimeError("gridmap serve was not ready within 900 s")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _latencies(
    client: httpx.Client, base: str, token: str, points: list[list[float]], radius: float | None
) -> tuple[np.ndarray, int]:
    """Milliseconds per ``GET /locate`` (one at a time) and the households seen near."""
    headers = {"X-API-Key": token}
    out = []
    seen = 0
    for lon, lat in points:
        params: dict[str, Any] = {"lon": repr(lon), "lat": repr(lat)}
        if radius is not None:
            params["radius"] = radius
        t = time.perf_counter()
        r = client.get(f"{base}/locate", params=params, headers=headers)
        out.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"/locate answered {r.status_code}: {r.text[:500]}")
        if radius is not None:
            seen += r.json()["nearby"]["n_households"]
    return np.array(out), seen


def _republish(
    client: httpx.Client, base: str, planner: str, plan_id: int, pid: int
) -> dict[str, float]:
    """Publish ``plan_id`` through the API (the route refreshes the snapshot): time and peaks.

    The plan is read first (``GET /plans/{id}``, for its ``ETag``) and that read's peak
    is reported apart (``read_peak_mb``) from the publish and swap's (``refresh_peak_mb``).
    """
    headers = {"X-API-Key": planner}
    rss0 = _status(pid)["VmRSS"]
    reset = _reset_peak(pid)
    version = client.get(f"{base}/plans/{plan_id}", headers=headers).headers.get("etag", "")
    read_peak = (_status(pid)["VmHWM"] - rss0) if reset else float("nan")
    rss0 = _status(pid)["VmRSS"]
    reset = _reset_peak(pid)
    t = time.perf_counter()
    r = client.post(
        f"{base}/plans/{plan_id}/publish", headers={**headers, "If-Match": version}, timeout=900
    )
    seconds = time.perf_counter() - t
    if r.status_code != 200:
        raise RuntimeError(f"publish answered {r.status_code}: {r.text[:500]}")
    st = _status(pid)
    return {
        "refresh_s": seconds,
        "refresh_peak_mb": (st["VmHWM"] - rss0) if reset else float("nan"),
        "read_peak_mb": read_peak,
        "rss_after_mb": st["VmRSS"],
    }


def _measure(
    info: dict[str, Any],
    code_dir: Path | None,
    points: list[list[float]],
    requests: int,
    *,
    refresh: bool = True,
    workers: int = 1,
    extra: tuple[str, ...] = (),
) -> dict[str, float]:
    port = _free_port()
    proc, ready, ready_cpu = _serve(info["url"], code_dir, port, workers, extra)
    base = f"http://127.0.0.1:{port}"
    nan = float("nan")
    republished = {
        "refresh_s": nan,
        "refresh_peak_mb": nan,
        "read_peak_mb": nan,
        "rss_after_mb": nan,
    }
    try:
        with httpx.Client(timeout=120) as client:
            for radius in (None, 100.0):  # warm up: first requests load caches
                _latencies(client, base, info["token"], points[:20], radius)
            loc, _ = _latencies(client, base, info["token"], points[:requests], None)
            near, seen = _latencies(client, base, info["token"], points[:requests], 100.0)
            pids = _workers(proc.pid)
            sts = [_status(p) for p in pids]
            pss = [_pss(p) for p in pids]
            # the parent of forked workers holds the pages they share; uvicorn's a supervisor
            parent = _pss(proc.pid) if pids != [proc.pid] else 0.0
            if refresh and workers == 1:
                republished = _republish(client, base, info["planner"], info["draft_id"], proc.pid)
                # put the store back as it was for the next run
                _republish(client, base, info["planner"], info["plan_id"], proc.pid)
    finally:
        _stop(proc)
    return {
        "ready_s": ready,
        "ready_cpu_s": ready_cpu,
        "rss_mb": max(st["VmRSS"] for st in sts),
        "peak_mb": max(st["VmHWM"] for st in sts),
        "pss_mb": max(pss),
        "workers": len(pids),
        "rss_total_mb": sum(st["VmRSS"] for st in sts),
        "pss_total_mb": sum(pss) + parent,
        "pss_parent_mb": parent,
        "locate_p50": float(np.percentile(loc, 50)),
        "locate_p99": float(np.percentile(loc, 99)),
        "near_p50": float(np.percentile(near, 50)),
        "near_p99": float(np.percentile(near, 99)),
        "near_households": seen / max(len(near), 1),
        **republished,
    }


def _empty(code_dir: Path | None, code: str, args: argparse.Namespace) -> dict[str, float]:
    """Ready time and RSS of the service over an empty SQLite store (the interpreter, imports)."""
    path = args.cache_dir / f"empty-{code}.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    subprocess.run([sys.executable, "-c", _UPGRADE, url], env=_env(code_dir), check=True, cwd="/")
    proc, ready, cpu = _serve(url, code_dir, _free_port())
    try:
        rss = _status(proc.pid)["VmRSS"]
    finally:
        _stop(proc)
    return {"ready_s": ready, "ready_cpu_s": cpu, "rss_mb": rss}


def _row(label: str, r: dict[str, float]) -> str:
    return (
        f"{label:<30}{r['ready_s']:>8.1f}{r['ready_cpu_s']:>8.1f}{r['rss_mb']:>8.0f}"
        f"{r['peak_mb']:>8.0f}"
        f"{r['locate_p50']:>8.2f}{r['locate_p99']:>8.2f}{r['near_p50']:>8.2f}"
        f"{r['near_p99']:>8.2f}{r['near_households']:>7.0f}{r['refresh_s']:>8.1f}"
        f"{r['refresh_peak_mb']:>8.0f}{r['read_peak_mb']:>8.0f}"
    )


_HEAD = (
    f"{'city / backend / code':<30}{'ready s':>8}{'cpu s':>8}{'RSS MB':>8}{'peak MB':>8}"
    f"{'loc p50':>8}{'loc p99':>8}{'r100p50':>8}{'r100p99':>8}{'hh/q':>7}{'refr s':>8}"
    f"{'refr+MB':>8}{'read+MB':>8}"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--buildings", type=int, nargs="+", default=[20_000, 60_000])
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgis"])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--baseline", type=Path, default=None, help="folder of the code to compare")
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/gridmap-service-bench"))
    ap.add_argument(
        "--postgis-url",
        default=os.environ.get(
            "GRIDMAP_BENCH_POSTGIS_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a database on the server where the benchmark creates its own",
    )
    ap.add_argument("--build-only", action="store_true", help="make the cities and stores only")
    ap.add_argument(
        "--no-refresh", action="store_true", help="skip the publish/refresh measurement"
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="serve with `gridmap serve --workers N` and report each worker's RSS and PSS",
    )
    args = ap.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    codes: list[tuple[str, Path | None]] = [("new", None)]
    if args.baseline is not None:
        codes.insert(0, ("base", args.baseline.resolve()))
    results: dict[tuple[int, str, str], dict[str, float]] = {}
    facts: dict[int, dict[str, Any]] = {}
    empty: dict[str, dict[str, float]] = {}
    if not args.build_only:
        for code, code_dir in codes:
            empty[code] = _empty(code_dir, code, args)
            e = empty[code]
            print(
                f"empty store, {code}: ready {e['ready_s']:.1f} s ({e['ready_cpu_s']:.1f} s CPU), "
                f"RSS {e['rss_mb']:.0f} MB",
                flush=True,
            )
    for n in args.buildings:
        _, facts[n] = _city(n, args.seed, args.cache_dir)
        for backend in args.backends:
            for code, code_dir in codes:
                info = _store(n, args.seed, backend, code, code_dir, args)
                if args.build_only:
                    continue
                variants: list[tuple[str, tuple[str, ...]]] = [(code, ())]
                if args.workers > 1 and code == "new":  # forked from a loaded parent, or not
                    variants.append(("new-spawn", ("--no-preload",)))
                for label, extra in variants:
                    r = _measure(
                        info,
                        code_dir,
                        facts[n]["points"],
                        args.requests,
                        refresh=not args.no_refresh,
                        workers=args.workers,
                        extra=extra,
                    )
                    results[(n, backend, label)] = r
                    print(_row(f"{n:,} {backend} {label}", r), flush=True)
    if args.build_only:
        return
    print()
    print(
        f"one `python -m gridmap serve` process at a time; {args.requests} sequential requests "
        "each (dispatcher key, kept-alive connection); latencies in ms as the client sees them"
    )
    print(_HEAD)
    for (n, backend, code), r in results.items():
        print(_row(f"{n:,} {backend} {code}", r))
    for code, e in empty.items():
        print(
            f"empty store, {code}: ready {e['ready_s']:.1f} s ({e['ready_cpu_s']:.1f} s CPU: "
            f"interpreter and imports), RSS {e['rss_mb']:.0f} MB"
        )
    for (n, backend, code), r in results.items():
        print(
            f"{n:,} {backend} {code}: {r['workers']:.0f} serving process(es); per process RSS "
            f"{r['rss_mb']:.0f} MB, PSS {r['pss_mb']:.0f} MB; all together RSS "
            f"{r['rss_total_mb']:.0f} MB, PSS {r['pss_total_mb']:.0f} MB (parent "
            f"{r['pss_parent_mb']:.0f} MB)"
        )
    if args.workers > 1:
        for (n, backend, code), r in results.items():
            b = results.get((n, backend, "new-spawn"))
            if code == "new" and b is not None:
                print(
                    f"{n:,} {backend}: {args.workers} workers forked from a loaded parent / "
                    f"started afresh (--no-preload), same run: PSS of all the processes "
                    f"{r['pss_total_mb'] / b['pss_total_mb']:.2f}x "
                    f"({r['pss_total_mb']:.0f} / {b['pss_total_mb']:.0f} MB), ready "
                    f"{r['ready_s'] / b['ready_s']:.2f}x "
                    f"(CPU {r['ready_cpu_s'] / b['ready_cpu_s']:.2f}x)"
                )
    print(
        "hh/q: households answered per radius=100 query; refr s / refr+MB: seconds of "
        "POST /plans/{id}/publish (which rebuilds the snapshot) and the peak RSS above the RSS "
        "before it; read+MB: the same peak for the GET /plans/{id} read before it (its ETag)"
    )
    for n in args.buildings:
        f = facts[n]
        print(
            f"city {n:,}: {f['buildings']:,} buildings, {f['households']:,} households, "
            f"{f['communities']} communities, {f['grids']:,} grids"
        )
    for backend in args.backends:
        for code, _ in codes:
            pts = [
                (facts[n]["households"], results[(n, backend, code)]["rss_mb"])
                for n in args.buildings
                if (n, backend, code) in results
            ]
            if len(pts) >= 2:
                (h0, m0), (h1, m1) = pts[0], pts[-1]
                slope = (m1 - m0) / (h1 - h0) * 100_000
                print(
                    f"{backend} {code}: {slope:.0f} MB per 100,000 households "
                    f"(RSS slope between the cities), {m0 - slope * h0 / 100_000:.0f} MB at none"
                )
    if args.baseline is not None:
        print("\nnew / base (same run):")
        for (n, backend, code), r in results.items():
            b = results.get((n, backend, "base"))
            if code != "new" or b is None:
                continue
            print(
                f"  {n:,} {backend}: RSS {r['rss_mb'] / b['rss_mb']:.2f}x, ready "
                f"{r['ready_s'] / b['ready_s']:.2f}x "
                f"(CPU {r['ready_cpu_s'] / b['ready_cpu_s']:.2f}x), /locate p50 "
                f"{r['locate_p50'] / b['locate_p50']:.2f}x p99 "
                f"{r['locate_p99'] / b['locate_p99']:.2f}x, radius=100 p50 "
                f"{r['near_p50'] / b['near_p50']:.2f}x p99 {r['near_p99'] / b['near_p99']:.2f}x"
            )


if __name__ == "__main__":
    main()
