"""Background jobs of the HTTP API (partition runs) with pollable progress.

A small in-process runner: a :class:`~concurrent.futures.ThreadPoolExecutor`
(one worker by default, so two partition runs never compete for the CPU)
and the state of every job in memory, on ``app.state.jobs``. A client submits
work, gets ``202 Accepted`` with ``Location: /plans/jobs/{id}`` and polls that
URL for ``status`` (``queued`` → ``running`` → ``done`` | ``failed``),
``progress`` (``done``/``total``), the ``result`` (e.g. the new plan's id) or
the ``error`` as an RFC 7807 problem.

Jobs do **not** survive a restart of the server: their state lives in the
process. A job that was queued or running when the process stopped is simply
gone (the plan it would have saved is never half-written: saving is one
transaction). Finished jobs are kept for ``keep`` jobs, oldest dropped first.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gridmap.api.errors import log_exception
from gridmap.errors import GridmapError, NotFoundError

__all__ = ["JOB_STATUSES", "Job", "JobRunner", "get_runner", "problem_of"]

_log = logging.getLogger(__name__)

#: The states a job goes through.
JOB_STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed")

ProgressFn = Callable[[int, int], None]


def _now() -> datetime:
    return datetime.now(UTC)


def problem_of(exc: BaseException) -> dict[str, Any]:
    """Return an RFC 7807 problem (as a dict) describing ``exc``.

    Domain errors keep their message (they say what to fix); anything else is
    an internal error whose details stay in the server log.

    Examples
    --------
    >>> from gridmap.errors import NotFoundError
    >>> problem_of(NotFoundError("no plan 3"))["status"]
    404
    >>> problem_of(RuntimeError("boom"))["detail"]
    'the job failed unexpectedly; see the server log'
    """
    from gridmap.api.errors import status_for

    status, slug, title = status_for(exc)
    if isinstance(exc, GridmapError) and status < 500:
        return {
            "type": f"urn:gridmap:problem:{slug}",
            "title": title,
            "status": status,
            "detail": str(exc),
        }
    return {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the job failed unexpectedly; see the server log",
    }


@dataclass
class Job:
    """The state of one background job.

    Attributes
    ----------
    id : str
        Opaque job id.
    kind : str
        What it does (``"partition"``).
    author : str
        Who submitted it.
    status : str
        One of :data:`JOB_STATUSES`.
    done, total : int
        Progress (units of work done of total; total 0 while unknown).
    result : dict or None
        What the job returned (when ``done``).
    error : dict or None
        RFC 7807 problem (when ``failed``).
    created_at, started_at, finished_at : datetime or None
        UTC times.
    """

    id: str
    kind: str
    author: str
    status: str = "queued"
    done: int = 0
    total: int = 0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the job as JSON-compatible values."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "progress": {"done": self.done, "total": self.total},
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
        }


class JobRunner:
    """Run callables in background threads and keep their state for polling.

    Parameters
    ----------
    max_workers : int, default 1
        Jobs running at once; the rest wait (``queued``).
    keep : int, default 200
        Finished jobs kept in memory (oldest forgotten first).

    Examples
    --------
    >>> runner = JobRunner()
    >>> job = runner.submit(lambda progress: {"answer": 42}, kind="demo", author="li")
    >>> runner.wait(job.id, timeout=5).result
    {'answer': 42}
    >>> runner.shutdown()
    """

    def __init__(self, max_workers: int = 1, keep: int = 200) -> None:
        # thread safety: a job builds its own layers, plan and indexes from the store and
        # shares none of them with requests until it hands the result back; `_jobs` and
        # `_events` are only touched under `_lock`
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="gridmap-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}
        self._keep = keep

    def submit(
        self,
        fn: Callable[[ProgressFn], dict[str, Any] | None],
        *,
        kind: str,
        author: str,
        total: int = 0,
    ) -> Job:
        """Queue ``fn(progress)``; return the job (status ``queued``).

        ``fn`` receives a ``progress(done, total)`` callback and returns the
        job's result (a JSON-compatible dict) or raises.
        """
        job = Job(id=uuid.uuid4().hex, kind=kind, author=author, total=total)
        with self._lock:
            self._jobs[job.id] = job
            self._events[job.id] = threading.Event()
            self._forget_old()
        self._pool.submit(self._run, job, fn)
        return job

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.status in ("done", "failed")]
        while len(self._jobs) > self._keep and finished:
            k = finished.pop(0)
            self._jobs.pop(k, None)
            self._events.pop(k, None)

    def _run(self, job: Job, fn: Callable[[ProgressFn], dict[str, Any] | None]) -> None:
        def progress(done: int, total: int) -> None:
            with self._lock:
                job.done, job.total = int(done), int(total)

        with self._lock:
            job.status = "running"
            job.started_at = _now()
        try:
            result = fn(progress)
        except Exception as exc:  # noqa: BLE001 - every failure is reported on the job
            problem = problem_of(exc)
            if problem["status"] >= 500:
                log_exception(_log, exc, "job %s (%s) failed", job.id, job.kind)
            with self._lock:
                job.status = "failed"
                job.error = problem
                job.finished_at = _now()
        else:
            with self._lock:
                job.status = "done"
                job.result = result
                if job.total and job.done < job.total:
                    job.done = job.total
                job.finished_at = _now()
        finally:
            event = self._events.get(job.id)
            if event is not None:
                event.set()

    def get(self, job_id: str) -> Job:
        """Return a copy of the job's current state.

        Raises
        ------
        NotFoundError
            Unknown (or forgotten) job id; jobs do not survive a restart.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFoundError(
                    f"no job {job_id!r}: it never existed, was forgotten, or the server restarted "
                    "(jobs live in memory); list the stored plans with GET /plans"
                )
            return Job(**vars(job))

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job finished (or ``timeout`` seconds passed); return its state."""
        event = self._events.get(job_id)
        if event is not None:
            event.wait(timeout)
        return self.get(job_id)

    def shutdown(self, wait: bool = False) -> None:
        """Stop accepting jobs; queued jobs are cancelled."""
        self._pool.shutdown(wait=wait, cancel_futures=True)


_RUNNER_LOCK = threading.Lock()


def get_runner(app: Any) -> JobRunner:
    """Return the app's job runner (``app.state.jobs``), creating it on first use."""
    runner = getattr(app.state, "jobs", None)
    if runner is None:
        with _RUNNER_LOCK:
            runner = getattr(app.state, "jobs", None)
            if runner is None:
                runner = JobRunner()
                app.state.jobs = runner
    return runner
