"""Partitioning on a Dask cluster: one task per community (or per batch of small ones).

:func:`partition_on_cluster` sends each worker the *names* of its communities;
the worker reads their rows from a GeoParquet dataset partitioned by
``community_id`` (:func:`gridmap.scale.dataset.write_partitioned`), builds the
same per-community task as :func:`gridmap.partition.partition` and solves it
with the same function. The client gathers the results and assembles them with
the partitioner's own assembly (codes, ordering, quality report), so the plan is
the one a local run gives, byte for byte, for the same seed.

Nothing here changes an answer: a community's seed derives from the plan seed
and its id only, and its inputs are the very rows a local run hands it.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import geopandas as gpd

from gridmap.layers import Layers
from gridmap.partition.plan import Plan
from gridmap.scale.cluster import ClusterProgress, attempts_on_scheduler, cluster_client
from gridmap.scale.dataset import PartitionedDataset, open_partitioned

__all__ = ["partition_on_cluster", "solve_communities"]

log = logging.getLogger(__name__)

# the layers a community's task is built from (staff is not needed to partition)
_TASK_LAYERS = ("communities", "buildings", "households", "roads", "barriers", "compounds")


def solve_communities(
    folder: str, community_ids: list[str], params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Partition some communities of a partitioned dataset (runs on a worker).

    Reads each community's rows, builds its task as
    :func:`gridmap.partition.partition` does and solves it with the same function.

    Parameters
    ----------
    folder : str
        The dataset (a path every worker can read).
    community_ids : list of str
    params : mapping
        ``min_households``, ``max_households``, ``target`` (checked), ``n_grids``,
        ``seed`` and ``dedicated_area_m2``.

    Returns
    -------
    list of dict
        One result per community, as the partitioner's per-community function returns.
    """
    from gridmap.partition.partition import _solve_community, _tasks
    from gridmap.partition.precision import snap_layers

    ds = open_partitioned(folder)
    out = []
    for cid in community_ids:
        # the same normal form as partition(): coordinates on the snapping grid (per
        # coordinate, so one community's layers snap as they do within the whole city)
        layers = snap_layers(ds.layers([cid], names=_TASK_LAYERS))
        (task,) = _tasks(
            layers,
            min_households=params["min_households"],
            max_households=params["max_households"],
            target=params["target"],
            n_grids=params["n_grids"],
            seed=params["seed"],
            previous=None,
            locked=[],
        )
        task["dedicated_area"] = params["dedicated_area_m2"]
        out.append(_solve_community(task))
    return out


def _batches(ds: PartitionedDataset, cap: int) -> list[list[str]]:
    """Communities, largest first; small ones grouped until a batch holds ``cap`` buildings."""
    order = sorted(ds.communities, key=lambda c: -ds.buildings_of(c))
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for cid in order:
        n = ds.buildings_of(cid)
        if n >= cap:
            out.append([cid])
            continue
        current.append(cid)
        size += n
        if size >= cap:
            out.append(current)
            current, size = [], 0
    if current:
        out.append(current)
    return out


def partition_on_cluster(
    source: str | os.PathLike[str],
    *,
    scheduler: Any = "local:2",
    min_households: int = 200,
    max_households: int = 500,
    target: float | None = None,
    n_grids: int | Mapping[str, int] | None = None,
    seed: int | None = 0,
    dedicated_area_m2: float | None = 50_000.0,
    area_cap_m2: float | None = 1_000_000.0,
    batch_buildings: int = 2_000,
    retries: int = 2,
    connect_timeout: float = 10.0,
    progress: Callable[[ClusterProgress], None] | None = None,
) -> Plan:
    """Partition every community of a partitioned dataset on a Dask cluster.

    Workers read their own communities from ``source``; the client reads the
    whole dataset once to assemble the plan (codes, quality report) with the
    partitioner's own assembly, while the workers solve.

    Parameters
    ----------
    source : path
        A GeoParquet dataset partitioned by ``community_id``
        (:func:`gridmap.scale.write_partitioned`), on a file system every worker
        reads at the same path.
    scheduler : str or distributed.Client, default "local:2"
        ``"local:N"`` (a local cluster of N processes, closed afterwards),
        ``"tcp://host:8786"`` or a client (see :func:`gridmap.scale.cluster_client`).
    min_households, max_households, target, n_grids, seed, dedicated_area_m2, area_cap_m2
        As in :func:`gridmap.partition.partition`; the same values give the same plan.
    batch_buildings : int, default 2,000
        Communities with fewer buildings are sent together, up to about this
        many buildings per task (never fewer than four tasks per worker).
    retries : int, default 2
        Times a task that raised is run again (a task whose worker was lost is
        always re-run by the scheduler, up to ``distributed.scheduler.allowed-failures``).
    connect_timeout : float, default 10
        Seconds to reach a remote scheduler.
    progress : callable, optional
        Called with a :class:`ClusterProgress` (communities done, failed, retried,
        total) after every finished task.

    Returns
    -------
    Plan
        The plan :func:`gridmap.partition.partition` gives on the same layers.

    Raises
    ------
    PartitionedDatasetError
        ``source`` is not partitioned by community.
    SchedulerUnreachableError, WorkerVersionError
        See :func:`gridmap.scale.cluster_client`.
    GridmapError
        What the partitioner raises for a community (the first failed one, in
        community order), after every other task has ended.
    """
    from gridmap.partition.codes import assign_codes, boundary_descriptions
    from gridmap.partition.partition import _assemble, _check_params
    from gridmap.partition.precision import snap_layers

    ds = open_partitioned(source)
    folder = str(ds.folder.resolve())
    comms = ds.read_layer("communities")
    empty = gpd.GeoDataFrame({"community_id": []}, geometry=gpd.GeoSeries([]), crs=ds.crs)
    target_f = _check_params(
        Layers(communities=comms, buildings=empty, crs=ds.crs),
        min_households,
        max_households,
        target,
        n_grids,
        None,
        [],
        1,
    )
    if batch_buildings < 1 or retries < 0:
        raise ValueError(
            f"batch_buildings={batch_buildings} must be >= 1 and retries={retries} >= 0"
        )
    params = {
        "min_households": min_households,
        "max_households": max_households,
        "target": target_f,
        "n_grids": dict(n_grids) if isinstance(n_grids, Mapping) else n_grids,
        "seed": seed,
        "dedicated_area_m2": dedicated_area_m2,
    }
    with cluster_client(scheduler, connect_timeout=connect_timeout) as client:
        from distributed import as_completed

        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        total_b = sum(ds.buildings_of(c) for c in ds.communities)
        cap = max(1, min(batch_buildings, total_b // (4 * n_workers)))
        batches = _batches(ds, cap)
        token = uuid.uuid4().hex[:12]
        futures = {
            client.submit(
                solve_communities,
                folder,
                batch,
                params,
                key=f"gridmap-partition-{token}-{i}",
                retries=retries,
                pure=False,
                priority=len(batches) - i,  # largest first, as the local pool
            ): batch
            for i, batch in enumerate(batches)
        }
        log.info(
            "partitioning %d communities in %d task(s) on %d worker(s)",
            len(ds.communities),
            len(batches),
            n_workers,
        )
        # the client reads the layers for the assembly while the workers solve
        layers = snap_layers(ds.layers())
        results: dict[str, dict[str, Any]] = {}
        errors: dict[str, BaseException] = {}
        done = failed = retried = 0
        for fut in as_completed(list(futures)):
            batch = futures[fut]
            if fut.status == "error":
                exc = fut.exception()
                for cid in batch:
                    errors[cid] = exc
                failed += len(batch)
            else:
                for cid, res in zip(batch, fut.result(), strict=True):
                    results[cid] = res
                done += len(batch)
            if attempts_on_scheduler(client, [fut.key], retries).get(fut.key, 0):
                retried += len(batch)
            if progress is not None:
                progress(ClusterProgress(done, failed, retried, len(ds.communities)))
            fut.release()
    if errors:
        first = next(c for c in ds.communities if c in errors)
        exc = errors[first]
        exc.add_note(
            f"community {first} failed on the cluster ({len(errors)} of "
            f"{len(ds.communities)} communities failed; no plan was made)"
        )
        raise exc
    return _assemble(
        layers,
        [results[c] for c in ds.communities],
        min_households=min_households,
        max_households=max_households,
        target=target_f,
        n_grids=n_grids,
        seed=seed,
        previous=None,
        locked=[],
        assign_codes=assign_codes,
        boundary_descriptions=boundary_descriptions,
        area_cap_m2=area_cap_m2,
        dedicated_area_m2=dedicated_area_m2,
    )
