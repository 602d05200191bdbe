"""OGC API – Features page size: how long GDAL, OWSLib and QGIS take to read every grid.

    python benchmarks/oapif.py [--buildings 45000] [--rounds 3] [--out-dir DIR]

Builds a synthetic city (``synth_city``; 45,000 buildings make about 3,000 grids),
partitions it, publishes the plan in a SQLite store and serves it with ``gridmap serve``.
Each client then reads the whole ``grids`` collection twice, alternating, ``--rounds``
times:

* **before** — 10 features a page, what the clients did when the API definition gave
  ``limit`` no default or maximum (GDAL's ``PAGE_SIZE=10``, OWSLib ``limit=10``, QGIS
  ``pageSize=10``);
* **after** — now that the definition documents ``limit`` (default 100, maximum 10,000):
  QGIS left to its own choice (it reads the documented maximum); OWSLib given the documented
  maximum (it has no default of its own); GDAL with ``-oo PAGE_SIZE=1000`` (the GDAL 3.6 of
  Debian 12 keeps its default of 10 whatever the definition says: the README tells GDAL users).

Reported per client: median seconds, requests made (from the server's access log) and
the ratio before/after. GDAL needs ``ogrinfo`` (gdal-bin); QGIS ``/usr/bin/python3`` with
``python3-qgis``; a client that is missing is skipped and said so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
QGIS_READ = HERE.parent / "tests" / "api" / "qgis_read.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_store(folder: Path, buildings: int) -> tuple[str, str, int]:
    """Return the store's URL, an admin key and the number of published grids."""
    from gridmap.db import Store, save_layers, save_plan
    from gridmap.db.keys import create_key
    from gridmap.partition import partition
    from gridmap.synth import synth_city
    from gridmap.validation import validate_layers

    url = f"sqlite:///{folder / 'oapif.db'}"
    layers, _ = validate_layers(synth_city(n_buildings=buildings, seed=3))
    plan = partition(layers, seed=0)
    with Store.from_url(url) as store:
        save_layers(store, layers, author="bench")
        save_plan(store, plan, author="bench", status="published")
        _, token = create_key(store, name="bench", role="admin", author="bench")
    return url, token, plan.n_grids


def serve(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridmap", "serve", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"gridmap serve did not start; see {log}")


def read_gdal(base: str, key: str, page: int | None) -> int:
    opts = ["-oo", f"PAGE_SIZE={page}"] if page else []
    out = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-q", *opts, f"OAPIF:{base}", "grids"]
        + ["--config", "GDAL_HTTP_HEADERS", f"X-API-Key: {key}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.count("OGRFeature(")


def read_owslib(base: str, key: str, page: int) -> int:
    from owslib.ogcapi.features import Features

    api = Features(base, headers={"X-API-Key": key})
    n, offset = 0, 0
    while True:
        got = api.collection_items("grids", limit=page, offset=offset)["features"]
        n += len(got)
        offset += len(got)
        if len(got) < page:
            return n


def read_qgis(base: str, key: str, page: int | None) -> int:
    out = subprocess.run(
        [SYSTEM_PYTHON, str(QGIS_READ), base, "grids", key, "basic", str(page or "")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1])["count"])


def requests_in(log: Path, since: int) -> tuple[int, int]:
    lines = log.read_bytes().splitlines()
    return sum(b"/collections/grids/items" in ln for ln in lines[since:]), len(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--buildings", type=int, default=45_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out-dir", type=Path, default=None)
    args = ap.parse_args()
    folder = args.out_dir or Path(tempfile.mkdtemp(prefix="gridmap-oapif-"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    url, key, n_grids = build_store(folder, args.buildings)
    print(f"{n_grids:,} grids published ({time.perf_counter() - t0:.0f} s to build)")
    port = free_port()
    log = folder / "serve.log"
    proc = serve(url, port, log)
    base = f"http://127.0.0.1:{port}/"
    clients: dict[str, tuple[object, object, object]] = {}
    if shutil.which("ogrinfo"):
        clients["GDAL ogrinfo"] = (read_gdal, 10, 1000)
    else:
        print("GDAL: skipped (no ogrinfo; Debian gdal-bin)")
    try:
        import owslib  # noqa: F401

        clients["OWSLib"] = (read_owslib, 10, 10_000)
    except ImportError:
        print("OWSLib: skipped (pip install OWSLib)")
    if (
        Path(SYSTEM_PYTHON).exists()
        and subprocess.run(
            [SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True
        ).returncode
        == 0
    ):
        clients["QGIS (PyQGIS)"] = (read_qgis, 10, None)
    else:
        print("QGIS: skipped (no python3-qgis)")
    try:
        seen = requests_in(log, 0)[1]
        head = ("client", "before s", "after s", "ratio", "req before", "req after")
        print(f"{head[0]:<16}" + "".join(f"{h:>11}" for h in head[1:]))
        for name, (read, before, after) in clients.items():
            times: dict[str, list[float]] = {"before": [], "after": []}
            reqs: dict[str, int] = {}
            for _ in range(args.rounds):
                for label, page in (("before", before), ("after", after)):
                    t = time.perf_counter()
                    n = read(base, key, page)  # type: ignore[operator]
                    times[label].append(time.perf_counter() - t)
                    assert n == n_grids, f"{name} read {n} of {n_grids} grids"
                    reqs[label], seen = requests_in(log, seen)
            b, a = float(np.median(times["before"])), float(np.median(times["after"]))
            row = (f"{b:.2f}", f"{a:.2f}", f"{b / a:.1f}", reqs["before"], reqs["after"])
            print(f"{name:<16}" + "".join(f"{v:>11}" for v in row))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if args.out_dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
