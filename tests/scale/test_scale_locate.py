"""Batch re-location: same answers as GridIndex.locate, here and on a real LocalCluster."""

from __future__ import annotations

import socket

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from gridmap.crs import to_wgs84, transform
from gridmap.errors import SchedulerUnreachableError
from gridmap.locate import LOCATE_COLUMNS, GridIndex
from gridmap.scale.locate import locate_dataset


def _points(plan, n, seed=0):
    """Random lon/lat over the plan (some outside), plus grid vertices (edges, ties)."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = plan.grids.total_bounds
    pad = 300.0
    x = rng.uniform(x0 - pad, x1 + pad, n)
    y = rng.uniform(y0 - pad, y1 + pad, n)
    corners = shapely.get_coordinates(plan.grids.geometry.array)[: n // 10]
    x[: len(corners)], y[: len(corners)] = corners[:, 0], corners[:, 1]
    lon, lat = to_wgs84(x, y, plan.crs)
    return np.asarray(lon), np.asarray(lat)


def _expected(plan, lon, lat, crs="wgs84"):
    return GridIndex(plan.grids).locate_lonlat(lon, lat, crs)


def _same(found: pd.DataFrame, expected: pd.DataFrame):
    for c in LOCATE_COLUMNS:
        a, b = found[c].to_numpy(), expected[c].to_numpy()
        if c == "candidates":
            assert [list(v) for v in a] == [list(v) for v in b]
        elif a.dtype.kind == "f" or b.dtype.kind == "f":
            np.testing.assert_array_equal(a.astype(float), b.astype(float))
        else:
            assert [None if pd.isna(v) else v for v in a] == [
                None if pd.isna(v) else v for v in b
            ], c


def test_in_process_csv_with_bad_rows(local_plan, tmp_path):
    lon, lat = _points(local_plan, 50)
    pairs = enumerate(zip(lon.tolist(), lat.tolist(), strict=True))
    rows = [f"P{i},{a!r},{b!r}" for i, (a, b) in pairs]
    rows[3] = "P3,,32.0"  # missing lon -> line 5
    rows[7] = f"P7,{float(lat[7])!r},{float(lon[7])!r}"  # swapped -> line 9
    rows[11] = "P11,abc,32.0"  # text -> line 13
    rows.insert(20, "")  # a blank line: not a row, but it counts as a line
    text = "编号,经度,纬度\n" + "\n".join(rows) + "\n"
    path = tmp_path / "points.csv"
    path.write_bytes(text.encode("gbk"))
    summary = locate_dataset(path, local_plan, tmp_path / "out", block_bytes=300)
    assert summary.partitions > 3
    assert summary.points == 50 and summary.errors == 3
    assert [ln for ln, _ in summary.error_rows] == [5, 9, 13]
    assert "swapped" in summary.error_rows[1][1]
    out = gpd.read_parquet(tmp_path / "out")
    assert out["line"].tolist() == [i + 2 if i < 20 else i + 3 for i in range(50)]
    assert out["编号"].tolist() == [f"P{i}" for i in range(50)]
    good = out["error"].isna().to_numpy()
    _same(out[good].reset_index(drop=True), _expected(local_plan, lon[good], lat[good]))
    assert summary.inside + summary.outside + summary.errors == 50


def test_gcj02_geoparquet_points(local_plan, tmp_path):
    from gridmap.crs import transform as tr

    lon, lat = _points(local_plan, 3_000, seed=2)
    glon, glat = tr(lon, lat, "wgs84", "gcj02")
    pts = gpd.GeoDataFrame({"id": np.arange(3_000)}, geometry=shapely.points(glon, glat), crs=4326)
    pts.to_parquet(tmp_path / "p.parquet", row_group_size=1_000)
    s = locate_dataset(
        tmp_path / "p.parquet", local_plan, tmp_path / "out", crs="gcj02", rows_per_partition=1
    )
    assert s.partitions == 3 and s.errors == 0
    out = gpd.read_parquet(tmp_path / "out")
    assert out["line"].tolist() == list(range(1, 3_001))
    _same(out, _expected(local_plan, glon, glat, "gcj02"))


def test_refuses_an_existing_output(local_plan, tmp_path):
    from gridmap.errors import InputError

    (tmp_path / "p.csv").write_text("lon,lat\n118.8,32.0\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    with pytest.raises(InputError, match="overwrite=True"):
        locate_dataset(tmp_path / "p.csv", local_plan, tmp_path / "out")


@pytest.mark.slow
def test_cluster_gives_the_answers_of_grid_index(client, local_plan, tmp_path):
    pytest.importorskip("distributed")
    n = 200_000
    lon, lat = _points(local_plan, n, seed=1)
    table = pa.table({"id": np.arange(n), "lon": lon, "lat": lat})
    pq.write_table(table, tmp_path / "points.parquet", row_group_size=25_000)
    seen = []
    s = locate_dataset(
        tmp_path / "points.parquet",
        local_plan,
        tmp_path / "out",
        scheduler=client,
        rows_per_partition=25_000,
        progress=seen.append,
    )
    assert s.partitions == 8 and s.points == n and s.errors == 0
    assert seen[-1].done == 8
    out = gpd.read_parquet(tmp_path / "out")
    assert out["id"].tolist() == list(range(n))
    expected = _expected(local_plan, lon, lat)
    _same(out, expected)
    assert s.inside == int(expected["grid_code"].notna().sum())
    # the index was built once per worker process, not once per partition
    counts = client.run(lambda: len(__import__("gridmap.scale.locate").scale.locate._INDEXES))
    assert set(counts.values()) == {1}


@pytest.mark.slow
def test_unreachable_scheduler_writes_nothing(local_plan, tmp_path):
    pytest.importorskip("distributed")
    (tmp_path / "p.csv").write_text("lon,lat\n118.8,32.0\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SchedulerUnreachableError, match="Nothing was written"):
        locate_dataset(
            tmp_path / "p.csv",
            local_plan,
            tmp_path / "out",
            scheduler=f"tcp://127.0.0.1:{port}",
            connect_timeout=1,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


def test_projection_is_the_index_rule(local_plan):
    # locate_dataset projects exactly as locate_lonlat does
    x, y = transform(118.78, 32.05, "gcj02", local_plan.crs, validate=False)
    assert np.isfinite([x, y]).all()


def test_input_columns_named_like_answers_are_kept_apart(local_plan, tmp_path):
    lon, lat = _points(local_plan, 20, seed=4)
    wkb = shapely.to_wkb(shapely.points(np.zeros(20), np.zeros(20)))
    table = pa.table(
        {"lon": lon, "lat": lat, "grid_code": ["old"] * 20, "geometry": pa.array(wkb, pa.binary())}
    )
    pq.write_table(table, tmp_path / "p.parquet")
    locate_dataset(tmp_path / "p.parquet", local_plan, tmp_path / "out")
    out = gpd.read_parquet(tmp_path / "out")
    assert out["input_grid_code"].tolist() == ["old"] * 20
    assert (out["input_geometry"] == wkb).all()
    np.testing.assert_array_equal(out.geometry.x.to_numpy(), lon)
    _same(out, _expected(local_plan, lon, lat))
