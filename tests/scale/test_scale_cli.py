"""The cluster commands through the real ``gridmap`` entry point, on a LocalCluster of 2 workers.

``partition --scheduler local:2`` on a dataset from ``export --partition-by
community_id`` writes the plan of a local run; ``locate --input points.parquet``
gives the answers of :class:`gridmap.locate.GridIndex`, here and on the cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from clirun import ENV, SAMPLE, free_port, gridmap

from gridmap.crs import to_wgs84
from gridmap.io import read_plan
from gridmap.locate import LOCATE_COLUMNS, GridIndex

pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _refused(r: subprocess.CompletedProcess[str], *words: str) -> str:
    text = r.stdout + r.stderr
    assert r.returncode == 1, text
    assert "Traceback" not in text, text
    for w in words:
        assert w in " ".join(text.split()), text
    return text


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A local run, an export and a cluster run of the sample city (run once)."""
    d = tmp_path_factory.mktemp("cli-scale")
    local = _ok(gridmap("partition", SAMPLE, "--out", d / "local.gpkg", "--report", d / "l.json"))
    export = _ok(
        gridmap(
            "export",
            SAMPLE,
            "--format",
            "parquet",
            "--partition-by",
            "community_id",
            "--out",
            d / "city.parquet",
        )
    )
    cluster = _ok(
        gridmap(
            "partition",
            d / "city.parquet",
            "--scheduler",
            "local:2",
            "--out",
            d / "cluster.gpkg",
            "--report",
            d / "c.json",
        )
    )
    return d, local, export, cluster


def test_cluster_partition_writes_the_local_plan(runs):
    d, local, export, cluster = runs
    assert "community_id" in export and (d / "city.parquet" / "_gridmap.json").exists()
    # progress: communities done, failed, retried
    assert "5 done, 0 failed, 0 retried" in cluster
    assert (d / "l.json").read_bytes() == (d / "c.json").read_bytes()
    a, b = read_plan(d / "local.gpkg"), read_plan(d / "cluster.gpkg")
    assert a.grids["grid_code"].tolist() == b.grids["grid_code"].tolist()
    assert (shapely.to_wkb(a.grids.geometry.array) == shapely.to_wkb(b.grids.geometry.array)).all()
    assert a.grids.drop(columns="geometry").equals(b.grids.drop(columns="geometry"))
    assert a.buildings.equals(b.buildings)
    # the same plan file, table by table (the GeoPackage's own timestamps aside)
    for layer in ("grids", "buildings"):
        fa = gpd.read_file(d / "local.gpkg", layer=layer)
        assert fa.equals(gpd.read_file(d / "cluster.gpkg", layer=layer)), layer


def test_a_single_file_is_refused_with_how_to_export(tmp_path):
    r = gridmap("partition", SAMPLE, "--scheduler", "local:2", "--out", tmp_path / "p.gpkg")
    _refused(r, "partitioned by community_id", "gridmap export", "--partition-by community_id")
    flat = tmp_path / "flat.parquet"
    flat.mkdir()
    r = gridmap("partition", flat, "--scheduler", "local:2", "--out", tmp_path / "p.gpkg")
    _refused(r, "not a GeoParquet dataset partitioned by community_id", "--partition-by")
    assert not (tmp_path / "p.gpkg").exists()


def test_options_a_cluster_run_does_not_take(runs, tmp_path):
    d = runs[0]
    r = gridmap("partition", d / "city.parquet", "--scheduler", "local:2", "--jobs", "2")
    _refused(r, "--scheduler does not take --jobs")
    r = gridmap("partition", d / "city.parquet", "--scheduler", "local:0")
    _refused(r, "local:2")


def test_unreachable_scheduler_fails_fast_and_writes_nothing(runs, tmp_path):
    d = runs[0]
    port = free_port()
    t0 = time.monotonic()
    r = gridmap(
        "partition",
        d / "city.parquet",
        "--scheduler",
        f"tcp://127.0.0.1:{port}",
        "--out",
        tmp_path / "p.gpkg",
        cwd=tmp_path,
    )
    took = time.monotonic() - t0
    _refused(r, f"127.0.0.1:{port}", "Nothing was written")
    assert took < 40  # a 10 s connect timeout, plus the interpreter's start
    assert list(tmp_path.iterdir()) == []


def test_without_dask_says_how_to_install(runs, tmp_path):
    # a `distributed` that cannot be imported, ahead of the real one on the path
    fake = tmp_path / "nodask" / "distributed"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no dask here')\n")
    env = {**ENV, "PYTHONPATH": str(tmp_path / "nodask")}
    for args in (
        ["partition", runs[0] / "city.parquet", "--scheduler", "local:2", "--out", tmp_path / "p"],
        [
            "locate",
            "--input",
            tmp_path / "p.parquet",
            "--output",
            tmp_path / "o.parquet",
            "--scheduler",
            "local:2",
        ],
    ):
        r = subprocess.run(
            [sys.executable, "-m", "gridmap", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        _refused(r, 'pip install -e ".[scale]"')
    assert not (tmp_path / "p").exists() and not (tmp_path / "o.parquet").exists()


def test_export_refuses_another_partition_key(tmp_path):
    r = gridmap(
        "export", SAMPLE, "--format", "parquet", "--partition-by", "street", "--out", tmp_path / "x"
    )
    _refused(r, "--partition-by community_id")
    r = gridmap("export", "--out", tmp_path / "x")
    _refused(r, "--plan ID", "--partition-by community_id")


def _points(plan, n, seed=0):
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = plan.grids.total_bounds
    x = rng.uniform(x0 - 300, x1 + 300, n)
    y = rng.uniform(y0 - 300, y1 + 300, n)
    corners = shapely.get_coordinates(plan.grids.geometry.array)[: n // 10]
    x[: len(corners)], y[: len(corners)] = corners[:, 0], corners[:, 1]
    lon, lat = to_wgs84(x, y, plan.crs)
    return np.asarray(lon), np.asarray(lat)


def test_locate_parquet_here_and_on_the_cluster(runs, tmp_path):
    d = runs[0]
    plan = read_plan(d / "local.gpkg")
    n = 40_000
    lon, lat = _points(plan, n, seed=3)
    lon[5], lat[9] = np.nan, 200.0  # two bad rows: rows 6 and 10
    table = pa.table({"编号": [f"P{i}" for i in range(n)], "lon": lon, "lat": lat})
    pq.write_table(table, tmp_path / "points.parquet", row_group_size=10_000)
    here = _ok(
        gridmap(
            "locate",
            "--input",
            tmp_path / "points.parquet",
            "--output",
            tmp_path / "a.parquet",
            "--plan-file",
            d / "local.gpkg",
        )
    )
    there = gridmap(
        "locate",
        "--input",
        tmp_path / "points.parquet",
        "--output",
        tmp_path / "b.parquet",
        "--plan-file",
        d / "local.gpkg",
        "--scheduler",
        "local:2",
        "--json",
    )
    summary = json.loads(_ok(there)[_ok(there).index("{") :])
    assert summary["points"] == n and summary["errors"] == 2
    assert [e["line"] for e in summary["error_rows"]] == [6, 10]
    assert "line 6:" in here and "line 10:" in here
    a, b = gpd.read_parquet(tmp_path / "a.parquet"), gpd.read_parquet(tmp_path / "b.parquet")
    assert a.equals(b)
    assert a["编号"].tolist() == [f"P{i}" for i in range(n)]
    good = a["error"].isna().to_numpy()
    expected = GridIndex(plan.grids).locate_lonlat(lon[good], lat[good])
    got = a[good].reset_index(drop=True)
    for c in LOCATE_COLUMNS:
        if c == "candidates":
            assert [list(v) for v in got[c]] == [list(v) for v in expected[c]]
        else:
            x, y = got[c].to_numpy(), expected[c].to_numpy()
            assert [None if v is None or v != v else v for v in x] == [
                None if v is None or v != v else v for v in y
            ], c
    assert summary["inside"] == int(expected["grid_code"].notna().sum())


def test_locate_batch_needs_one_plan(tmp_path):
    (tmp_path / "p.csv").write_text("lon,lat\n118.78,32.05\n")
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    r = gridmap(
        "locate", "--input", tmp_path / "p.csv", "--output", tmp_path / "o.parquet", "--db", db
    )
    _refused(r, "0 published plans", "--plan-file")
    r = gridmap(
        "locate",
        "--input",
        tmp_path / "p.csv",
        "--output",
        tmp_path / "o.csv",
        "--scheduler",
        "local:2",
        "--db",
        db,
    )
    _refused(r, "--output o.parquet")


def test_partition_from_the_store_on_the_cluster(tmp_path):
    # workers read their communities from the store (here a SQLite file every local worker
    # opens; PostGIS in tests/scale/test_scale_postgis.py)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    _ok(gridmap("import", SAMPLE, "--db", db))
    _ok(
        gridmap(
            "partition", "--db", db, "--out", tmp_path / "a.gpkg", "--report", tmp_path / "a.json"
        )
    )
    out = _ok(
        gridmap(
            "partition",
            "--db",
            db,
            "--scheduler",
            "local:2",
            "--out",
            tmp_path / "b.gpkg",
            "--report",
            tmp_path / "b.json",
        )
    )
    assert "5 done, 0 failed" in out
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    a, b = read_plan(tmp_path / "a.gpkg"), read_plan(tmp_path / "b.gpkg")
    assert (shapely.to_wkb(a.grids.geometry.array) == shapely.to_wkb(b.grids.geometry.array)).all()
    assert a.buildings.equals(b.buildings)
