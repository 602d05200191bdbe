"""Run gridmap beyond one machine: partitioning and batch locating on a Dask cluster.

An optional extra (``pip install "gridmap[scale]"``). The engine only decides
where the core's functions run; the answers are those of the core:

* :func:`write_partitioned` writes layers as a GeoParquet dataset partitioned by
  ``community_id``, from which every worker reads its own communities;
* :func:`partition_on_cluster` partitions that dataset on a cluster and returns
  the same :class:`~gridmap.partition.plan.Plan` as
  :func:`gridmap.partition.partition` in one process;
* :func:`locate_dataset` locates a GeoParquet or CSV file of points, partition
  by partition, with the rules of :class:`gridmap.locate.GridIndex`.

Dask is imported only when a cluster is used; ``import gridmap`` never imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "write_partitioned": "gridmap.scale.dataset",
    "read_partitioned": "gridmap.scale.dataset",
    "read_community": "gridmap.scale.dataset",
    "open_partitioned": "gridmap.scale.dataset",
    "partition_on_cluster": "gridmap.scale.partition",
    "ClusterProgress": "gridmap.scale.cluster",
    "cluster_client": "gridmap.scale.cluster",
    "locate_dataset": "gridmap.scale.locate",
    "LocateSummary": "gridmap.scale.locate",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import re-exported names on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gridmap.scale' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
