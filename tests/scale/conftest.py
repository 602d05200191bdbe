"""A real Dask LocalCluster of two worker processes, shared by the cluster tests."""

from __future__ import annotations

import pytest

from gridmap.datasets import get_path
from gridmap.io import read_layers
from gridmap.validation import validate_layers


@pytest.fixture(scope="session")
def sample_layers():
    layers, _ = validate_layers(read_layers(get_path("sample")))
    return layers


@pytest.fixture(scope="session")
def sample_dataset(sample_layers, tmp_path_factory):
    from gridmap.scale.dataset import write_partitioned

    return write_partitioned(sample_layers, tmp_path_factory.mktemp("scale") / "sample")


@pytest.fixture(scope="session")
def local_plan(sample_layers):
    from gridmap.partition import partition

    return partition(sample_layers, min_households=200, max_households=500, seed=0)


@pytest.fixture(scope="session")
def cluster():
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask_geopandas")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as lc:
        yield lc


@pytest.fixture
def client(cluster):
    import distributed

    with distributed.Client(cluster) as c:
        yield c
