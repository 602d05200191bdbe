"""The community-partitioned GeoParquet dataset (no Dask needed)."""

from __future__ import annotations

import pandas as pd
import pytest
import shapely

from gridmap.errors import PartitionedDatasetError
from gridmap.scale.dataset import (
    open_partitioned,
    read_community,
    read_partitioned,
    write_partitioned,
)


def test_round_trip_gives_the_same_layers(sample_layers, sample_dataset):
    back = read_partitioned(sample_dataset)
    assert back.crs == sample_layers.crs
    for name, frame in sample_layers.items():
        pd.testing.assert_frame_equal(getattr(back, name), frame, check_exact=True)


def test_hive_layout_one_folder_per_community(sample_layers, sample_dataset):
    ids = sorted(sample_layers.communities["community_id"])
    for layer in ("communities", "buildings", "roads"):
        folders = sorted(p.name for p in (sample_dataset / layer).iterdir() if p.is_dir())
        assert folders == [f"community_id={c}" for c in ids]
    # a standard hive reader sees one dataset per layer, community_id from the folders
    blds = pd.read_parquet(sample_dataset / "buildings")
    assert len(blds) == len(sample_layers.buildings)
    assert set(blds["community_id"].astype(str)) == set(ids)


def test_one_community_is_what_the_partitioner_gives_it(sample_layers, sample_dataset):
    one = read_community(sample_dataset, "C0002")
    assert one.communities["community_id"].tolist() == ["C0002"]
    b = sample_layers.buildings
    pd.testing.assert_frame_equal(
        one.buildings, b[b["community_id"] == "C0002"].reset_index(drop=True)
    )
    # the partitioner's query, on its normal form (coordinates snapped to its millimetre grid):
    # 虎踞路 runs along C0001's edge and crosses into C0002 by a fraction of a millimetre
    from gridmap.partition.precision import snap_geometries

    geom = snap_geometries(sample_layers.communities.set_index("community_id").geometry.values)[1]
    roads = snap_geometries(sample_layers.roads.geometry.values)
    assert len(one.roads) == int(shapely.intersects(roads, geom).sum()) == 30
    assert "虎踞路" in set(one.roads["name"])


def test_not_partitioned_says_how_to_export(sample_layers, tmp_path):
    flat = tmp_path / "buildings.parquet"
    sample_layers.buildings.to_parquet(flat)
    with pytest.raises(PartitionedDatasetError, match="partition-by community_id"):
        open_partitioned(flat)
    with pytest.raises(PartitionedDatasetError, match="write_partitioned"):
        open_partitioned(tmp_path)
    with pytest.raises(PartitionedDatasetError, match="does not exist"):
        open_partitioned(tmp_path / "nope")


def test_existing_folder_needs_overwrite(sample_layers, tmp_path):
    out = write_partitioned(sample_layers, tmp_path / "d")
    with pytest.raises(PartitionedDatasetError, match="overwrite=True"):
        write_partitioned(sample_layers, out)
    write_partitioned(sample_layers, out, overwrite=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(PartitionedDatasetError, match="not a gridmap dataset"):
        write_partitioned(sample_layers, tmp_path / "other", overwrite=True)


def test_a_column_empty_in_one_community_reads_back(tmp_path):
    # each community's file types its columns from its own rows: a column with no value in
    # one community is null-typed there; the layer is still read back with its values
    import geopandas as gpd
    from shapely import box

    from gridmap.layers import Layers

    comms = gpd.GeoDataFrame(
        {"community_id": ["c1", "c2"], "name": ["一", "二"]},
        geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)],
        crs=3857,
    )
    blds = gpd.GeoDataFrame(
        {
            "building_id": ["b1", "b2", "b3"],
            "households": [10, 20, 30],
            "community_id": ["c1", "c2", "c2"],
            "address": [None, "路1号", None],
            "levels": [float("nan"), 6.0, 7.0],
        },
        geometry=[box(10, 10, 20, 20), box(110, 10, 120, 20), box(150, 10, 160, 20)],
        crs=3857,
    )
    roads = gpd.GeoDataFrame(  # along the shared edge: in both folders, read once
        {"name": ["界路"], "class": ["primary"]},
        geometry=[shapely.LineString([(100, -10), (100, 110)])],
        crs=3857,
    )
    layers = Layers(communities=comms, buildings=blds, roads=roads, crs=comms.crs)
    folder = write_partitioned(layers, tmp_path / "d")
    back = read_partitioned(folder)
    for name in ("communities", "buildings", "roads"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(layers, name), check_exact=True)
    one = open_partitioned(folder).read_layer("buildings", ["c1"])
    pd.testing.assert_frame_equal(one, blds.iloc[:1], check_exact=True)
    none = open_partitioned(folder).read_layer("buildings", ["c9"])
    assert len(none) == 0 and list(none.columns) == list(blds.columns)
