"""Connecting to a Dask cluster: local or remote, with a timeout and a version check.

``scheduler`` is one of

* ``"local:N"``: a :class:`distributed.LocalCluster` of ``N`` worker processes
  with one thread each, made here and closed when the work is done;
* ``"tcp://host:8786"`` (or ``tls://``): a running scheduler, reached within
  ``connect_timeout`` seconds or refused with :class:`SchedulerUnreachableError`;
* a :class:`distributed.Client` the caller already holds (left open).

Every worker must import the same gridmap version as the client; a worker
without gridmap or with another version is refused (:class:`WorkerVersionError`)
before any work is sent.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import gridmap
from gridmap.errors import ClusterError, InputError, SchedulerUnreachableError, WorkerVersionError

__all__ = [
    "LEAN_WORKER_CONFIG",
    "ClusterProgress",
    "check_worker_versions",
    "cluster_client",
    "import_distributed",
]

#: Dask settings for workers that run long, pure-Python/GEOS tasks (a community's solve,
#: a million points): no statistical profiler sampling the task's stack every 10 ms, no
#: GIL monitor, and the event loop's housekeeping once a second instead of every 20-100 ms.
#: On the same community tasks (a 20,000-building city, 2 workers) they cut the workers'
#: CPU from 25.5 s to 21.4 s, against 18.4 s in a process pool.
#: ``local:N`` clusters are made with them; for workers started by hand set them in the
#: environment (``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False`` …) or a dask config file.
LEAN_WORKER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@dataclass(frozen=True)
class ClusterProgress:
    """Progress of work on a cluster, passed to the ``progress`` callback.

    Attributes
    ----------
    done : int
        Units finished (communities, or point partitions).
    failed : int
        Units that failed for good (after their retries).
    retried : int
        Units run more than once (their worker was lost, or they raised and were retried).
    total : int
        Units in all.
    """

    done: int
    failed: int
    retried: int
    total: int


def import_distributed() -> Any:
    """Import :mod:`distributed`, or say how to install it."""
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise ClusterError(
            'running on a cluster needs Dask, which is not installed: pip install -e ".[scale]" '
            '(in a checkout) or pip install "gridmap[scale]" (dask[distributed], dask-geopandas)'
        ) from None


def check_worker_versions(client: Any, *, timeout: float = 30.0) -> dict[str, str]:
    """Refuse a cluster whose workers lack gridmap or run another version.

    Parameters
    ----------
    client : distributed.Client
    timeout : float, default 30
        Seconds to wait for at least one worker.

    Returns
    -------
    dict of str to str
        Worker address → gridmap version (all equal to ``gridmap.__version__``).

    Raises
    ------
    ClusterError
        No worker joined within ``timeout``.
    WorkerVersionError
        A worker without gridmap, or with another version.
    """
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError) as exc:
        raise ClusterError(
            f"no worker joined the scheduler {client.scheduler.address} within {timeout:g} s "
            f"({exc}); start workers with `dask worker {client.scheduler.address}`"
        ) from None

    def version() -> str | None:  # pragma: no cover - runs on the workers
        # nested, so sent by value: a worker without gridmap answers None instead of
        # failing to unpickle a reference to this module
        import importlib

        try:
            module = importlib.import_module("gridmap")
        except ImportError:
            return None
        return str(getattr(module, "__version__", "unknown"))

    found: dict[str, Any] = client.run(version, on_error="return")
    mine = gridmap.__version__
    bad = {
        addr: ("no gridmap" if v is None or isinstance(v, BaseException) else f"gridmap {v}")
        for addr, v in found.items()
        if v != mine
    }
    if bad:
        shown = ", ".join(f"{a} has {v}" for a, v in sorted(bad.items())[:5])
        raise WorkerVersionError(
            f"{len(bad)} of {len(found)} worker(s) do not run gridmap {mine} like this client: "
            f"{shown}; install gridmap {mine} on every worker "
            f'(pip install "gridmap[scale]=={mine}") and restart them'
        )
    return {str(a): str(v) for a, v in found.items()}


def _parse_local(scheduler: str) -> int:
    value = scheduler.split(":", 1)[1]
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(
            f"scheduler={scheduler!r}: give the number of worker processes, e.g. 'local:2'"
        )
    return n


@contextmanager
def cluster_client(
    scheduler: Any,
    *,
    connect_timeout: float = 10.0,
    worker_timeout: float = 30.0,
    check_versions: bool = True,
) -> Iterator[Any]:
    """Open a :class:`distributed.Client` for ``scheduler`` and close what was opened here.

    Parameters
    ----------
    scheduler : str or distributed.Client
        ``"local:N"``, ``"tcp://host:8786"`` or a client (used as is, not closed).
    connect_timeout : float, default 10
        Seconds to reach a remote scheduler.
    worker_timeout : float, default 30
        Seconds to wait for the first worker.
    check_versions : bool, default True
        Refuse workers without this gridmap version (:func:`check_worker_versions`).

    Yields
    ------
    distributed.Client

    Raises
    ------
    SchedulerUnreachableError
        Nothing answered at the address within ``connect_timeout``.
    WorkerVersionError
        See :func:`check_worker_versions`.
    """
    distributed = import_distributed()
    if isinstance(scheduler, distributed.Client):
        if check_versions:
            check_worker_versions(scheduler, timeout=worker_timeout)
        yield scheduler
        return
    if not isinstance(scheduler, str):
        raise InputError(
            f"scheduler must be 'local:N', 'tcp://host:port' or a distributed.Client, "
            f"not {type(scheduler).__name__}"
        )
    if scheduler.startswith("local:"):
        import dask

        n = _parse_local(scheduler)
        # the nannies hand the config in force to the worker processes they start
        with dask.config.set(LEAN_WORKER_CONFIG):
            cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: other runs may share the machine
                scheduler_port=0,
            )
        try:
            with distributed.Client(cluster) as client:
                if check_versions:
                    check_worker_versions(client, timeout=worker_timeout)
                yield client
        finally:
            cluster.close()
        return
    if "://" not in scheduler:
        raise InputError(
            f"scheduler={scheduler!r} is neither 'local:N' nor an address like "
            "'tcp://10.0.0.5:8786'"
        )
    try:
        client = distributed.Client(scheduler, timeout=connect_timeout)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachableError(
            f"no Dask scheduler answered at {scheduler} within {connect_timeout:g} s ({exc}); "
            "start one with `dask scheduler --port 8786` on that host, check the address and "
            "the firewall, or use scheduler='local:2' for this machine. Nothing was written."
        ) from None
    try:
        if check_versions:
            check_worker_versions(client, timeout=worker_timeout)
        yield client
    finally:
        client.close()


def attempts_on_scheduler(client: Any, keys: list[str], retries: int) -> dict[str, int]:
    """Return, per task key, how many times the scheduler ran it beyond the first.

    A task counts as re-run when its worker was lost while it ran (the scheduler's
    ``suspicious`` count) or when it raised and was retried (``retries`` used).
    """

    def count(dask_scheduler: Any, keys: list[str], retries: int) -> dict[str, int]:
        out = {}
        for k in keys:
            ts = dask_scheduler.tasks.get(k)
            if ts is not None:
                out[k] = int(getattr(ts, "suspicious", 0)) + max(
                    retries - int(getattr(ts, "retries", retries) or 0), 0
                )
        return out

    got: dict[str, int] = client.run_on_scheduler(count, keys=keys, retries=retries)
    return got
