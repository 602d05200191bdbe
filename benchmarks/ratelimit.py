"""Benchmark the cost of the rate limits on the hot path: GET /locate with limits on vs off.

    python benchmarks/ratelimit.py [--buildings 2000] [--duration 10] [--connections 16]
                                   [--rounds 3] [--seed 0]

Builds and publishes a synthetic city in a SQLite file (as ``benchmarks/api.py``), then
starts two gridmap processes over the same store with the same uvicorn configuration:
``GRIDMAP_RATE_LIMIT=true`` (the default: wrong keys counted per address and key prefix,
batch calls per key, all in the store) and ``GRIDMAP_RATE_LIMIT=false``. ``wrk`` loads
``GET /locate`` with a valid viewer key on each in turn, ``--rounds`` times, alternating,
and the script prints the median requests per second, server CPU per request and
non-2xx answers of each, and the throughput ratio on/off (target >= 0.95).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import _free_port, _median, _setup, _start, _stop, _wrk  # noqa: E402

_APP = """
import uvicorn
from gridmap.api import Settings, create_app

app = create_app(Settings(database_url={url!r}, rate_limit={on!r}))
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--buildings", type=int, default=2000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        url, token, (lon, lat), n_grids = _setup(Path(tmp), args.buildings, args.seed)
        ports = {True: _free_port(), False: _free_port()}
        procs = {
            on: _start(_APP.format(url=url, on=on, port=p), p, "/health") for on, p in ports.items()
        }
        header = f"X-API-Key: {token}"
        load = {"duration": args.duration, "connections": args.connections, "header": header}
        runs: dict[bool, list[dict]] = {True: [], False: []}
        try:
            for p in ports.values():  # warm up
                _wrk(
                    f"http://127.0.0.1:{p}/locate?lon={lon!r}&lat={lat!r}",
                    duration=2,
                    connections=args.connections,
                    header=header,
                )
            for _ in range(args.rounds):
                for on in (False, True):
                    target = f"http://127.0.0.1:{ports[on]}/locate?lon={lon!r}&lat={lat!r}"
                    runs[on].append(_wrk(target, **load, pid=procs[on].pid))
        finally:
            for proc in procs.values():
                _stop(proc)
    off, on = _median(runs[False]), _median(runs[True])
    print(
        f"\nGET /locate, valid viewer key: wrk -t1 -c{args.connections} -d{args.duration}s, "
        f"one uvicorn process each, {n_grids} grids, median of {args.rounds} alternating rounds"
    )
    print(
        f"{'rate limits':<14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}"
        f"{'cpu us/req':>12}"
    )
    for name, r in (("off", off), ("on", on)):
        print(
            f"{name:<14}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            f"{r['errors']:>10.0f}{r['cpu_us']:>12.0f}"
        )
    print(f"throughput on/off: {on['rps'] / off['rps']:.3f} (target >= 0.95)")
    print(f"server CPU per request off/on: {off['cpu_us'] / on['cpu_us']:.3f}")
    for i, (a, b) in enumerate(zip(runs[False], runs[True], strict=True)):
        print(
            f"  round {i + 1}: off {a['rps']:.0f}, on {b['rps']:.0f} req/s "
            f"({b['rps'] / a['rps']:.3f})"
        )


if __name__ == "__main__":
    main()
