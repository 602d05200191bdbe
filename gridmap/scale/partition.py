"""Partitioning on a Dask cluster: one task per community (or per batch of small ones).

:func:`partition_on_cluster` sends each worker the *names* of its communities;
the worker reads their rows itself, from a GeoParquet dataset partitioned by
``community_id`` (:func:`gridmap.scale.dataset.write_partitioned`) or from the
store (PostGIS: only its communities' rows, and the context layers within a
bounding box of them, through :func:`gridmap.db.load_layers`), builds the
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
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd

from gridmap.errors import InputError
from gridmap.layers import Layers
from gridmap.partition.plan import Plan
from gridmap.scale.cluster import ClusterProgress, attempts_on_scheduler, cluster_client
from gridmap.scale.dataset import PartitionedDataset, open_partitioned

__all__ = ["partition_on_cluster", "solve_communities"]

log = logging.getLogger(__name__)

# the layers a community's task is built from (staff is not needed to partition)
_TASK_LAYERS = ("communities", "buildings", "households", "roads", "barriers", "compounds")


def _is_store_url(source: Any) -> bool:
    """Whether ``source`` names a database (``postgresql+psycopg://…``, ``sqlite:///…``)."""
    return isinstance(source, str) and "://" in source and not os.path.exists(source)


_STORES: dict[str, Any] = {}
_STORE_LOCK = threading.Lock()


def _worker_store(url: str) -> Any:
    """Return the worker process's store for ``url``, opened once (its pool is thread-safe)."""
    from gridmap.db import Store

    with _STORE_LOCK:
        store = _STORES.get(url)
        if store is None:
            store = Store.from_url(url, create=False)
            _STORES[url] = store
        return store


def _read_store(url: str, community_ids: list[str], crs: str) -> Layers:
    """One batch's layers from the store (what a worker reads), in the plan's CRS."""
    from gridmap.db import load_layers

    return load_layers(_worker_store(url), community_ids, crs=crs)


def solve_communities(
    source: str, community_ids: list[str], params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Partition some communities of a partitioned dataset or a store (runs on a worker).

    Reads the communities' rows, builds each task as
    :func:`gridmap.partition.partition` does and solves it with the same function.

    Parameters
    ----------
    source : str
        The dataset (a path every worker can read), or a store URL every worker
        can reach (``params["crs"]`` then names the plan's CRS).
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

    def tasks_of(layers: Layers) -> dict[str, dict[str, Any]]:
        return {
            t["community_id"]: t
            for t in _tasks(
                layers,
                min_households=params["min_households"],
                max_households=params["max_households"],
                target=params["target"],
                n_grids=params["n_grids"],
                seed=params["seed"],
                previous=None,
                locked=[],
            )
        }

    out = []
    if params.get("store"):
        # one query per layer for the batch: its communities' rows (area_id) and the
        # context lines within a bounding box of them, in the plan's CRS
        tasks = tasks_of(snap_layers(_read_store(source, list(community_ids), params["crs"])))
        for cid in community_ids:
            task = tasks[cid]
            task["dedicated_area"] = params["dedicated_area_m2"]
            out.append(_solve_community(task))
        return out
    # the batch's rows in one read per layer (its communities' folders): a community's task
    # holds the rows of its own folder only (its buildings, the lines and compounds
    # intersecting it), in layer order, as when read alone or within the whole city; the
    # same normal form as partition(): coordinates on the snapping grid (per coordinate)
    layers = open_partitioned(source).layers(community_ids, names=_TASK_LAYERS)
    tasks = tasks_of(
        snap_layers(layers.replace(households=None)).replace(households=layers.households)
    )
    for cid in community_ids:
        task = tasks[cid]
        task["dedicated_area"] = params["dedicated_area_m2"]
        out.append(_solve_community(task))
    return out


@dataclass
class _Source:
    """What the client knows of the input: communities, sizes and how workers read it."""

    address: str  # dataset folder or store URL, as workers reach it
    communities: list[str]
    buildings: dict[str, int]
    crs: Any
    store: bool
    dataset: PartitionedDataset | None = None
    layers: Layers | None = None  # store: read up front (the ids and CRS come from it)

    def buildings_of(self, community_id: str) -> int:
        return self.buildings.get(community_id, 0)

    def read_all(self) -> Layers:
        if self.layers is not None:
            return self.layers
        assert self.dataset is not None
        return self.dataset.layers()

    def load_store(self, communities: Sequence[str] | None) -> None:
        """Read the store's layers (the ids, sizes and CRS come from them)."""
        from gridmap.db import Store, load_layers

        with Store.from_url(self.address, create=False) as store:
            # the very call of a local run from the store (`gridmap partition --db URL`)
            layers = load_layers(store, None if communities is None else list(communities))
        counts = layers.buildings["community_id"].astype(str).value_counts(sort=False)
        self.communities = layers.communities["community_id"].astype(str).tolist()
        self.buildings = {str(k): int(v) for k, v in counts.items()}
        self.crs = layers.crs
        self.layers = layers


def _open_source(source: Any, communities: Sequence[str] | None) -> _Source:
    if _is_store_url(source):
        from gridmap.db import Store

        url = str(source)
        # reachable and migrated, now; its layers are read once the cluster answers
        Store.from_url(url, create=False).close()
        return _Source(address=url, communities=[], buildings={}, crs=None, store=True)
    if communities is not None:
        raise InputError(
            "--community (communities=) selects communities of a store; for a dataset, export "
            "only those (gridmap export FILE --community ID --format parquet --partition-by "
            "community_id)"
        )
    ds = open_partitioned(source)
    return _Source(
        address=str(ds.folder.resolve()),
        communities=list(ds.communities),
        buildings={c: ds.buildings_of(c) for c in ds.communities},
        crs=ds.crs,
        store=False,
        dataset=ds,
    )


def _batches(ds: PartitionedDataset | _Source, cap: int) -> list[list[str]]:
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
    communities: Sequence[str] | None = None,
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
    """Partition every community of a partitioned dataset or a store on a Dask cluster.

    Workers read their own communities from ``source``; the client reads the
    whole input once to assemble the plan (codes, quality report) with the
    partitioner's own assembly.

    Parameters
    ----------
    source : path or str
        A GeoParquet dataset partitioned by ``community_id``
        (:func:`gridmap.scale.write_partitioned`), on a file system every worker
        reads at the same path; or a store URL (``postgresql+psycopg://…``) every
        worker reaches: each worker then loads only its communities
        (:func:`gridmap.db.load_layers` with their ids: their buildings,
        households and staff, and the context layers within a bounding box).
    scheduler : str or distributed.Client, default "local:2"
        ``"local:N"`` (a local cluster of N processes, closed afterwards),
        ``"tcp://host:8786"`` or a client (see :func:`gridmap.scale.cluster_client`).
    communities : sequence of str, optional
        With a store: only these communities (as ``load_layers(store, communities)``).
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
        The plan :func:`gridmap.partition.partition` gives on the same layers
        (read from the dataset, or ``load_layers(store, communities)``).

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
    plan, _ = _partition_on_cluster(
        source,
        scheduler=scheduler,
        communities=communities,
        min_households=min_households,
        max_households=max_households,
        target=target,
        n_grids=n_grids,
        seed=seed,
        dedicated_area_m2=dedicated_area_m2,
        area_cap_m2=area_cap_m2,
        batch_buildings=batch_buildings,
        retries=retries,
        connect_timeout=connect_timeout,
        progress=progress,
    )
    return plan


def _partition_on_cluster(
    source: Any,
    *,
    scheduler: Any,
    communities: Sequence[str] | None = None,
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
) -> tuple[Plan, Layers]:
    """:func:`partition_on_cluster`, also returning the layers as read (for the plan file)."""
    from gridmap.partition.codes import assign_codes, boundary_descriptions
    from gridmap.partition.partition import _assemble, _check_params
    from gridmap.partition.precision import snap_layers

    if batch_buildings < 1 or retries < 0:
        raise InputError(
            f"batch_buildings={batch_buildings} must be >= 1 and retries={retries} >= 0"
        )
    src = _open_source(source, communities)

    def checked() -> tuple[float, dict[str, Any]]:
        """Run the partitioner's own parameter checks; return what every task is given."""
        if src.dataset is not None:
            comms = src.dataset.read_layer("communities")
        else:
            assert src.layers is not None
            comms = src.layers.communities
        empty = gpd.GeoDataFrame({"community_id": []}, geometry=gpd.GeoSeries([]), crs=src.crs)
        target_f = _check_params(
            Layers(communities=comms, buildings=empty, crs=src.crs),
            min_households,
            max_households,
            target,
            n_grids,
            None,
            [],
            1,
        )
        return target_f, {
            "min_households": min_households,
            "max_households": max_households,
            "target": target_f,
            "n_grids": dict(n_grids) if isinstance(n_grids, Mapping) else n_grids,
            "seed": seed,
            "dedicated_area_m2": dedicated_area_m2,
            "store": src.store,
            "crs": src.crs,
        }

    if not src.store:  # a dataset: checked before any cluster starts
        target_f, params = checked()
    with cluster_client(scheduler, connect_timeout=connect_timeout) as client:
        from distributed import as_completed

        if src.store:  # the store's layers, once the cluster answers
            src.load_store(communities)
            target_f, params = checked()
        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        total_b = sum(src.buildings_of(c) for c in src.communities)
        cap = max(1, min(batch_buildings, total_b // (4 * n_workers)))
        batches = _batches(src, cap)
        token = uuid.uuid4().hex[:12]
        futures = {
            client.submit(
                solve_communities,
                src.address,
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
            len(src.communities),
            len(batches),
            n_workers,
        )
        # the client reads the layers for the assembly while the workers solve
        layers = src.read_all()
        # partition()'s normal form: not the households' points (only their rows are read)
        snapped = snap_layers(layers.replace(households=None)).replace(households=layers.households)
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
                progress(ClusterProgress(done, failed, retried, len(src.communities)))
            fut.release()
    if errors:
        first = next(c for c in src.communities if c in errors)
        exc = errors[first]
        exc.add_note(
            f"community {first} failed on the cluster ({len(errors)} of "
            f"{len(src.communities)} communities failed; no plan was made)"
        )
        raise exc
    plan = _assemble(
        snapped,
        [results[c] for c in src.communities],
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
    return plan, layers
