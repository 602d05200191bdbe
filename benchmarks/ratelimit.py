"""Benchmark the cost of the rate limits on the hot path: GET /locate with limits on vs off.

    python benchmarks/ratelimit.py [--buildings 2000] [--duration 10] [--connections 16]
                                   [--rounds 3] [--seed 0] [--port 0] [--off-port 0]
                                   [--out-dir DIR]

A short form of ``python benchmarks/api.py --rate-limits compare`` (which runs 60 s
at saturation by default): builds and publishes a synthetic city in a SQLite file,
then starts two gridmap processes over the same store with the same uvicorn
configuration: ``GRIDMAP_RATE_LIMIT=true`` (the default: wrong keys counted per
address and key prefix, batch calls per key, all in the store) and
``GRIDMAP_RATE_LIMIT=false``. ``wrk`` loads ``GET /locate`` with a valid viewer key on
each in turn, ``--rounds`` times, alternating, and the script prints the median
requests per second, server CPU per request and errors (non-2xx answers, socket
errors) of each, the throughput ratio on/off (target >= 0.95) and the ratio of
server CPU per request on/off.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import compare_rate_limits  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--buildings", type=int, default=2000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--port", type=int, default=0, help="the limits-on server's port (0: free)")
    ap.add_argument("--off-port", type=int, default=0, help="the limits-off server's port")
    ap.add_argument("--out-dir", type=Path, default=None, help="folder of the store")
    args = ap.parse_args()
    compare_rate_limits(**vars(args))


if __name__ == "__main__":
    main()
