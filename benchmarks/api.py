"""Benchmark the HTTP API: single-point /locate throughput and a 100 k-point batch.

    python benchmarks/api.py [--buildings 2000] [--duration 10] [--connections 16]
                             [--rounds 3] [--points 100000] [--seed 0]
                             [--port 0] [--bare-port 0] [--out-dir DIR]
                             [--rate-limits on|off|compare] [--off-port 0]

Builds a synthetic city (``synth_city``), partitions it, stores and publishes the
plan in a SQLite file, then starts, with the same uvicorn configuration (one
process each, 127.0.0.1, access log off):

1. a bare FastAPI app whose only endpoint returns a constant (the baseline);
2. the gridmap app (``create_app``) over the store.

``wrk`` (Debian package ``wrk``) loads them in turn, ``--rounds`` times each
(alternating, so that both see the same background load), for ``--duration``
seconds with ``--connections`` connections: ``GET /const`` on the bare app,
``GET /locate`` of a point inside a grid (viewer key, WGS84) on gridmap. Reported:
the median requests per second and the median CPU time the server process spent
per request (from ``/proc``; less sensitive to other load on a shared machine).
The target is /locate at ≥ 80 % of the baseline, as the ratio of server CPU per
request (the throughput ratio of a CPU-bound server; req/s is printed too, and
each round's figures: on a shared machine the req/s of one round swing by 2×).
``--port``/``--bare-port`` pick the ports (0: free ones), ``--out-dir`` the folder of
the store (default: a temporary folder, removed at the end).

Then ``POST /locate/batch`` with ``--points`` random points (CSV in; CSV and JSON
out) is timed: the server time is the route's ``Server-Timing`` header (parse,
locate, serialise; wall and CPU time), the client time includes the transfer.
Target: < 1 s server time for 100 k points. On a shared machine the CPU time is
the better estimate of the wall time on an idle one.

``--rate-limits on|off`` sets ``GRIDMAP_RATE_LIMIT`` of the gridmap process above
(on by default, as a deployment runs). ``--rate-limits compare`` measures instead
what the rate limits cost on the hot path: two gridmap processes over the same
store, limits on (``--port``) and off (``--off-port``), loaded with ``GET /locate``
and a valid viewer key in turn, ``--rounds`` times alternating, for ``--duration``
seconds each (60 s by default in this mode: saturation, as issue #17 asks). It
prints each side's req/s, latency, errors (non-2xx answers and socket errors),
server CPU per request, and the on/off throughput ratio (target >= 0.95) and CPU
per request ratio. ``benchmarks/ratelimit.py`` is this mode with 10 s runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

_BARE = """
import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/const")
async def const():
    return {{"status": "ok", "grid_code": "320104001001001"}}


uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""

_GRIDMAP = """
import uvicorn
from gridmap.api import Settings, create_app

app = create_app(Settings(database_url={url!r}, rate_limit={on!r}))
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(code: str, port: int, probe: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process so far, from ``/proc`` (NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(
    url: str,
    *,
    duration: int,
    connections: int,
    header: str | None = None,
    pid: int | None = None,
) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if header:
        cmd += ["-H", header]
    cpu0 = _cpu_seconds(pid) if pid else float("nan")
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    cpu = (_cpu_seconds(pid) if pid else float("nan")) - cpu0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    n_requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)

    def ms(m: re.Match[str] | None) -> float:
        if m is None:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    return {
        "rps": rps,
        "p50_ms": ms(p50),
        "p99_ms": ms(p99),
        "errors": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(g) for g in sock.groups()) if sock else 0,
        "requests": n_requests,
        "cpu_us": cpu / max(n_requests, 1) * 1e6,
    }


def _median(runs: list[dict]) -> dict:
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}


def _setup(workdir: Path, n_buildings: int, seed: int) -> tuple[str, str, tuple[float, float], int]:
    from gridmap.db import Store, publish_plan, save_layers, save_plan
    from gridmap.db.keys import create_key
    from gridmap.partition import partition
    from gridmap.synth import synth_city
    from gridmap.validation import validate_layers

    t = time.perf_counter()
    layers, _ = validate_layers(synth_city(n_buildings=n_buildings, seed=seed))
    plan = partition(layers, seed=seed)
    url = f"sqlite:///{workdir / 'bench.db'}"
    with Store.from_url(url) as store:
        save_layers(store, layers, author="bench")
        rec = save_plan(store, plan, author="bench")
        publish_plan(store, rec.id, author="bench")
        _, token = create_key(store, name="bench", role="viewer", author="bench")
    g = plan.grids_wgs84()
    p = g.geometry.iloc[0].representative_point()
    print(
        f"setup: {len(layers.buildings):,} buildings, {plan.n_grids} grids, "
        f"{time.perf_counter() - t:.1f} s"
    )
    return url, token, (p.x, p.y), plan.n_grids


def _batch_points(url: str, n: int, seed: int) -> str:
    from gridmap.db import Store, list_plans, load_plan

    with Store.from_url(url) as store:
        plan = load_plan(store, list_plans(store, status="published")[0].id)
    x0, y0, x1, y1 = plan.grids_wgs84().total_bounds
    rng = np.random.default_rng(seed)
    pad = 0.05 * (x1 - x0)
    lon = rng.uniform(x0 - pad, x1 + pad, n)
    lat = rng.uniform(y0 - pad, y1 + pad, n)
    return pd.DataFrame({"id": np.arange(n), "lon": lon, "lat": lat}).to_csv(index=False)


def _time_batch(base: str, token: str, body: str, fmt: str, repeat: int = 3) -> dict:
    best_server = best_client = best_cpu = float("inf")
    size = 0
    with httpx.Client(timeout=120) as client:
        for _ in range(repeat):
            t = time.perf_counter()
            r = client.post(
                f"{base}/locate/batch?format={fmt}",
                content=body,
                headers={"X-API-Key": token, "Content-Type": "text/csv"},
            )
            wall = time.perf_counter() - t
            r.raise_for_status()
            header = r.headers.get("server-timing", "")
            timing = re.search(r"locate;dur=([\d.]+)", header)
            cpu = re.search(r"cpu;dur=([\d.]+)", header)
            server = float(timing.group(1)) / 1000 if timing else float("nan")
            best_server = min(best_server, server)
            best_cpu = min(best_cpu, float(cpu.group(1)) / 1000 if cpu else float("nan"))
            best_client = min(best_client, wall)
            size = len(r.content)
    return {"server_s": best_server, "cpu_s": best_cpu, "client_s": best_client, "bytes": size}


def compare_rate_limits(
    *,
    buildings: int = 2000,
    duration: int = 60,
    connections: int = 16,
    rounds: int = 1,
    seed: int = 0,
    port: int = 0,
    off_port: int = 0,
    out_dir: Path | None = None,
) -> dict[str, dict]:
    """Load GET /locate on two gridmap processes, rate limits on and off; print and return.

    Both serve the same store with the same uvicorn configuration; only
    ``GRIDMAP_RATE_LIMIT`` differs. Rounds alternate (off, on), so that both see
    the same background load. Returns the medians ``{"on": …, "off": …}``.
    """
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) if out_dir is None else out_dir
        folder.mkdir(parents=True, exist_ok=True)
        url, token, (lon, lat), n_grids = _setup(folder, buildings, seed)
        ports = {True: port or _free_port(), False: off_port or _free_port()}
        procs: dict[bool, subprocess.Popen[bytes]] = {}
        header = f"X-API-Key: {token}"
        runs: dict[bool, list[dict]] = {True: [], False: []}
        try:
            for on, p in ports.items():
                procs[on] = _start(_GRIDMAP.format(url=url, port=p, on=on), p, "/health")
            targets = {
                on: f"http://127.0.0.1:{p}/locate?lon={lon!r}&lat={lat!r}"
                for on, p in ports.items()
            }
            for target in targets.values():
                check = httpx.get(target, headers={"X-API-Key": token})
                assert check.status_code == 200 and check.json()["status"] == "inside", check.text
                _wrk(target, duration=2, connections=connections, header=header)  # warm up
            for _ in range(rounds):
                for on in (False, True):
                    runs[on].append(
                        _wrk(
                            targets[on],
                            duration=duration,
                            connections=connections,
                            header=header,
                            pid=procs[on].pid,
                        )
                    )
        finally:
            for proc in procs.values():
                _stop(proc)
    off, on = _median(runs[False]), _median(runs[True])
    print(
        f"\nGET /locate, valid viewer key: wrk -t1 -c{connections} -d{duration}s, one uvicorn "
        f"process each, {n_grids} grids, median of {rounds} alternating round(s)"
    )
    print(
        f"{'rate limits':<14}{'req/s':>10}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}{'sock err':>9}{'cpu us/req':>12}"
    )
    for name, r in (("off", off), ("on", on)):
        print(
            f"{name:<14}{r['rps']:>10.0f}{r['requests']:>10.0f}{r['p50_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['errors']:>9.0f}{r['socket_errors']:>9.0f}{r['cpu_us']:>12.0f}"
        )
    print(f"errors (non-2xx + socket) with limits on: {on['errors'] + on['socket_errors']:.0f}")
    print(f"throughput on/off: {on['rps'] / off['rps']:.3f} (target >= 0.95)")
    print(
        f"server CPU per request on/off: {on['cpu_us'] / off['cpu_us']:.3f} "
        "(<= 1.05 means the limits cost at most 5 % of a CPU-bound server)"
    )
    for i, (a, b) in enumerate(zip(runs[False], runs[True], strict=True)):
        print(
            f"  round {i + 1}: off {a['rps']:.0f}, on {b['rps']:.0f} req/s "
            f"({b['rps'] / a['rps']:.3f}); cpu us/req off {a['cpu_us']:.0f}, on {b['cpu_us']:.0f}"
        )
    return {"on": on, "off": off}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--buildings", type=int, default=2000)
    ap.add_argument(
        "--duration", type=int, default=None, help="seconds per run (10; 60 with compare)"
    )
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds (3; 1 compare)")
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--port", type=int, default=0, help="gridmap's port (0: a free one)")
    ap.add_argument("--bare-port", type=int, default=0, help="the bare app's port (0: free)")
    ap.add_argument(
        "--off-port", type=int, default=0, help="compare: the limits-off server's port (0: free)"
    )
    ap.add_argument("--out-dir", type=Path, default=None, help="folder of the store")
    ap.add_argument(
        "--rate-limits",
        choices=("on", "off", "compare"),
        default="on",
        help="gridmap's GRIDMAP_RATE_LIMIT, or compare: /locate with limits on vs off",
    )
    args = ap.parse_args()
    if args.rate_limits == "compare":
        compare_rate_limits(
            buildings=args.buildings,
            duration=args.duration or 60,
            connections=args.connections,
            rounds=args.rounds or 1,
            seed=args.seed,
            port=args.port,
            off_port=args.off_port,
            out_dir=args.out_dir,
        )
        return
    args.duration = args.duration or 10
    args.rounds = args.rounds or 3
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) if args.out_dir is None else args.out_dir
        folder.mkdir(parents=True, exist_ok=True)
        url, token, (lon, lat), n_grids = _setup(folder, args.buildings, args.seed)

        bare_port = args.bare_port or _free_port()
        port = args.port or _free_port()
        bare_proc = _start(_BARE.format(port=bare_port), bare_port, "/const")
        proc = _start(
            _GRIDMAP.format(url=url, port=port, on=args.rate_limits == "on"), port, "/health"
        )
        base = f"http://127.0.0.1:{port}"
        try:
            const = f"http://127.0.0.1:{bare_port}/const"
            target = f"{base}/locate?lon={lon!r}&lat={lat!r}"
            check = httpx.get(target, headers={"X-API-Key": token}).json()
            assert check["status"] == "inside", check
            header = f"X-API-Key: {token}"
            load = {"duration": args.duration, "connections": args.connections}
            _wrk(const, duration=2, connections=args.connections)  # warm up
            _wrk(target, duration=2, connections=args.connections, header=header)
            bare_runs, loc_runs = [], []
            for _ in range(args.rounds):  # alternate: both see the same background load
                bare_runs.append(_wrk(const, **load, pid=bare_proc.pid))
                loc_runs.append(_wrk(target, **load, header=header, pid=proc.pid))
            bare, loc = _median(bare_runs), _median(loc_runs)
            body = _batch_points(url, args.points, args.seed)
            batch_csv = _time_batch(base, token, body, "csv")
            batch_json = _time_batch(base, token, body, "json")
        finally:
            _stop(proc)
            _stop(bare_proc)

    ratio = loc["rps"] / bare["rps"]
    print()
    print(
        f"single point: wrk -t1 -c{args.connections} -d{args.duration}s, one uvicorn "
        f"process each, {n_grids} grids, median of {args.rounds} alternating rounds"
    )
    print(
        f"{'endpoint':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}"
        f"{'cpu us/req':>12}"
    )
    for name, r in (("bare FastAPI GET /const", bare), ("gridmap GET /locate", loc)):
        print(
            f"{name:<28}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            f"{r['errors']:>10.0f}{r['cpu_us']:>12.0f}"
        )
    print(f"/locate / baseline, req/s: {ratio:.0%}")
    print(
        f"/locate / baseline, server CPU per request: {bare['cpu_us'] / loc['cpu_us']:.0%} "
        "(the throughput ratio of a CPU-bound server; target >= 80 %)"
    )
    for i, (b, g) in enumerate(zip(bare_runs, loc_runs, strict=True)):
        print(
            f"  round {i + 1}: {b['rps']:.0f} vs {g['rps']:.0f} req/s ({g['rps'] / b['rps']:.0%}); "
            f"cpu us/req {b['cpu_us']:.0f} vs {g['cpu_us']:.0f} ({b['cpu_us'] / g['cpu_us']:.0%})"
        )
    print()
    print(f"batch: POST /locate/batch, {args.points:,} points as CSV (best of 3)")
    print(f"{'answer':<10}{'server s':>10}{'cpu s':>10}{'client s':>10}{'MB':>8}")
    for name, r in (("csv", batch_csv), ("json", batch_json)):
        print(
            f"{name:<10}{r['server_s']:>10.3f}{r['cpu_s']:>10.3f}{r['client_s']:>10.3f}"
            f"{r['bytes'] / 1e6:>8.1f}"
        )
    print("server s: wall time in the route (parse, locate, serialise); cpu s: CPU time of the")
    print("server process meanwhile (close to the wall time on an idle machine)")
    print("target: server time < 1 s for 100,000 points")


if __name__ == "__main__":
    main()
