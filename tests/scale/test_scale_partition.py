"""Partitioning on a real Dask LocalCluster gives the plan of a local run, byte for byte."""

from __future__ import annotations

import socket
import time

import pandas as pd
import pytest
import shapely

from gridmap.errors import SchedulerUnreachableError, WorkerVersionError

pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def assert_same_plan(a, b):
    ga, gb = a.grids, b.grids
    assert ga["grid_code"].tolist() == gb["grid_code"].tolist()
    assert (shapely.to_wkb(ga.geometry.array) == shapely.to_wkb(gb.geometry.array)).all()
    pd.testing.assert_frame_equal(ga.drop(columns="geometry"), gb.drop(columns="geometry"))
    assert ga.crs == gb.crs
    pd.testing.assert_frame_equal(a.buildings, b.buildings)
    pd.testing.assert_frame_equal(a.households, b.households)
    assert a.report.to_json() == b.report.to_json()
    assert a.params == b.params


def test_local_cluster_gives_the_local_plan(sample_dataset, local_plan):
    from gridmap.scale import partition_on_cluster

    seen = []
    plan = partition_on_cluster(
        sample_dataset,
        scheduler="local:2",
        min_households=200,
        max_households=500,
        seed=0,
        progress=seen.append,
    )
    assert_same_plan(local_plan, plan)
    assert seen[-1].done == seen[-1].total == 5
    assert seen[-1].failed == 0


def test_a_worker_lost_mid_run_gives_the_same_plan(client, sample_dataset, local_plan, tmp_path):
    from distributed.diagnostics.plugin import WorkerPlugin

    from gridmap.scale import partition_on_cluster

    marker = str(tmp_path / "killed-once")

    def make_plugin():
        # defined here, so Dask sends the class by value to the worker processes
        class KillOnce(WorkerPlugin):
            name = "gridmap-test-kill-once"

            def __init__(self, marker):
                self.marker = marker

            def transition(self, key, start, finish, **kwargs):
                if finish == "executing" and str(key).startswith("gridmap-partition"):
                    import os

                    try:
                        fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                    except FileExistsError:
                        return
                    os.close(fd)
                    os._exit(1)  # the worker process dies while its task runs

        return KillOnce(marker)

    client.register_plugin(make_plugin())
    try:
        seen = []
        plan = partition_on_cluster(sample_dataset, scheduler=client, seed=0, progress=seen.append)
    finally:
        client.unregister_worker_plugin("gridmap-test-kill-once")
    assert (tmp_path / "killed-once").exists()
    assert_same_plan(local_plan, plan)
    assert seen[-1].retried >= 1 and seen[-1].done == 5 and seen[-1].failed == 0


def test_workers_with_another_version_are_refused(client, sample_dataset):
    from gridmap.scale import partition_on_cluster

    def pretend(version):
        import gridmap

        gridmap.__version__ = version

    client.run(pretend, "0.0.1-other")
    try:
        with pytest.raises(WorkerVersionError, match=r"0\.0\.1-other.*gridmap 0\.1\.0|0\.1\.0"):
            partition_on_cluster(sample_dataset, scheduler=client)
    finally:
        import gridmap

        client.run(pretend, gridmap.__version__)


def test_unreachable_scheduler_fails_fast_and_clearly(sample_dataset):
    from gridmap.scale import partition_on_cluster

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(SchedulerUnreachableError, match=f"127.0.0.1:{port}.*dask scheduler"):
        partition_on_cluster(sample_dataset, scheduler=f"tcp://127.0.0.1:{port}", connect_timeout=2)
    assert time.monotonic() - t0 < 15


def test_a_flat_file_is_refused_before_connecting(sample_layers, tmp_path):
    from gridmap.errors import PartitionedDatasetError
    from gridmap.scale import partition_on_cluster

    flat = tmp_path / "city.parquet"
    sample_layers.buildings.to_parquet(flat)
    with pytest.raises(PartitionedDatasetError, match="--partition-by community_id"):
        partition_on_cluster(flat, scheduler="tcp://127.0.0.1:1")
