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
    assert "wrote plan.gpkg (12 grids)" in out.stdout  # 11 + 1.4 ha between main roads
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
