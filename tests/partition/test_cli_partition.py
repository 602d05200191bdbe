"""`gridmap partition … --out plan.gpkg --map plan.html`: the real entry point (issue 3)."""

from __future__ import annotations

import numpy as np
import pyogrio
import shapely
from clirun import SAMPLE, gridmap


def test_partition_writes_plan_and_map(tmp_path):
    out = gridmap(
        "partition", SAMPLE, "--community", "C0001", "--min", "200", "--max", "500",
        "--out", "plan.gpkg", "--map", "plan.html", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    # 11 + 1.4 ha between main roads (the 0.7 ha triangle north of it, open to the land
    # north across a street, joins that land's grid)
    assert "wrote plan.gpkg (12 grids)" in out.stdout
    assert "0 enclave(s)" in out.stdout
    assert "valid coverage" not in out.stderr  # the map simplifies the grids as one coverage
    assert (tmp_path / "plan.html").stat().st_size > 10_000
    names = {str(r[0]) for r in pyogrio.list_layers(tmp_path / "plan.gpkg")}
    assert {"grids", "buildings", "households"} <= names
    frames = {n: pyogrio.read_dataframe(tmp_path / "plan.gpkg", layer=n) for n in names}
    for n in ("grids", "buildings", "households"):
        assert frames[n].crs.to_epsg() == 4326, n
        assert frames[n]["grid_code"].notna().all(), n
    grids = frames["grids"]
    assert grids.loc[grids["kind"] == "residential", "households"].between(200, 500).all()
    assert grids["boundary_desc"].str.startswith("东至").all()
    geoms = np.asarray(grids.geometry.array, dtype=object)
    assert shapely.coverage_is_valid(geoms)
    assert (shapely.get_num_interior_rings(geoms) == 0).all()


def test_partition_bad_band_writes_nothing(tmp_path):
    out = gridmap("partition", SAMPLE, "--min", "600", "--max", "500", "--out", "p.gpkg",
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 1
    assert "min_households=600 is above max_households=500" in out.stderr
    assert not (tmp_path / "p.gpkg").exists()


def test_partition_reads_a_community_partitioned_dataset(tmp_path):
    # `export --partition-by community_id` writes the validated layers; `partition DATASET`
    # without --scheduler reads them back and gives the plan of the original file
    out = gridmap(
        "export", SAMPLE, "--format", "parquet", "--partition-by", "community_id",
        "--out", "city.parquet", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    runs = {
        "file": [SAMPLE],
        "dataset": [tmp_path / "city.parquet", "--jobs", "2"],  # the local process pool
    }
    for name, args in runs.items():
        out = gridmap(
            "partition", *args, "--community", "C0001", "--community", "C0003",
            "--out", f"{name}.gpkg", "--report", f"{name}.json", cwd=tmp_path,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "file.json").read_bytes() == (tmp_path / "dataset.json").read_bytes()
    for layer in ("grids", "buildings", "households"):
        a = pyogrio.read_dataframe(tmp_path / "file.gpkg", layer=layer)
        b = pyogrio.read_dataframe(tmp_path / "dataset.gpkg", layer=layer)
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry")), layer
        assert (shapely.to_wkb(a.geometry.array) == shapely.to_wkb(b.geometry.array)).all()
    grids = pyogrio.read_dataframe(tmp_path / "dataset.gpkg", layer="grids")
    assert set(grids["community_id"]) == {"C0001", "C0003"}
    assert grids["grid_code"].is_unique and grids["households"].sum() > 0


def test_partition_dataset_refuses_reading_options_and_unknown_ids(tmp_path):
    out = gridmap(
        "export", SAMPLE, "--format", "parquet", "--partition-by", "community_id",
        "--out", "city.parquet", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    out = gridmap("partition", "city.parquet", "--crs", "EPSG:4549", "--out", "p.gpkg",
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "--crs shape how a raw file is read" in " ".join(out.stderr.split())
    assert "gridmap export FILE --format parquet" in out.stderr
    out = gridmap("partition", "city.parquet", "--community", "C9999", "--out", "p.gpkg",
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "unknown community id(s) C9999; city.parquet has C0001, C0002" in out.stderr
    assert not (tmp_path / "p.gpkg").exists()
