"""Open311 benchmark: ``GET requests.json`` pages against ``GET /cases`` in the same run.

    python benchmarks/open311.py                     # 5,000 cases on SQLite, pages of 1,000
    python benchmarks/open311.py --n 20000 --postgis postgresql+psycopg://postgres@127.0.0.1/gridmap_bench

Both answer the same cases (dispatcher key, 60 days of synthetic tickets on the bundled
sample plan). ``GET /cases`` reads one list query; the Open311 list reads the same list
and then each case whole (description, handlers, update time), so the ratio is the price
of the spec's fields. Figures go to stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from cases import fresh_store, sample_plan  # noqa: E402

from gridmap.api import Settings, create_app  # noqa: E402
from gridmap.cases import synth_cases  # noqa: E402
from gridmap.db import save_layers, save_plan  # noqa: E402
from gridmap.db.cases import import_cases  # noqa: E402
from gridmap.db.keys import create_key  # noqa: E402


def _time(call, repeat: int) -> float:
    """Median seconds of ``repeat`` calls."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    return float(np.median(out))


def main() -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--page", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--postgis", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, _ = fresh_store(args.postgis, Path(tmp), "open311")
        layers, plan = sample_plan()
        save_layers(store, layers, author="bench")
        save_plan(store, plan, author="bench", status="published")
        tickets = synth_cases(plan, n=args.n, start="2026-09-01", days=60, seed=0)
        import_cases(store, tickets, author="bench", skip_bad=True)
        token = create_key(store, name="bench", role="dispatcher", author="bench")[1]
        h = {"X-API-Key": token}
        app = create_app(Settings(database_url="sqlite://", cases_sweep_seconds=0), store=store)
        with TestClient(app) as client:
            q = {"start_date": "2026-09-01T00:00:00+08:00", "end_date": "2026-10-30T23:59:59+08:00"}
            o = client.get(
                "/open311/v2/requests.json", params={**q, "page_size": args.page}, headers=h
            )
            b = client.get(
                "/cases",
                params={
                    "limit": args.page,
                    "received_from": q["start_date"],
                    "received_to": q["end_date"],
                },
                headers=h,
            )
            assert o.status_code == b.status_code == 200, (o.text, b.text)
            same = [r["service_request_id"] for r in o.json()] == [
                str(r["id"]) for r in b.json()["data"]
            ]
            base = _time(
                lambda: client.get(
                    "/cases",
                    params={
                        "limit": args.page,
                        "received_from": q["start_date"],
                        "received_to": q["end_date"],
                    },
                    headers=h,
                ),
                args.repeat,
            )
            o311 = _time(
                lambda: client.get(
                    "/open311/v2/requests.json", params={**q, "page_size": args.page}, headers=h
                ),
                args.repeat,
            )
        store.close()
    backend = "PostGIS" if args.postgis else "SQLite"
    lines = [
        f"{backend}, {args.n} cases, pages of {len(o.json())} (same cases in both: {same})",
        f"GET /cases?limit={args.page}                  {base * 1000:8.1f} ms",
        f"GET /open311/v2/requests.json page_size={args.page} {o311 * 1000:8.1f} ms",
        f"ratio open311 / cases: {o311 / base:.1f}x",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
