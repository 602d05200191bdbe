"""Domain exceptions of gridmap.

Every error gridmap raises on purpose is a :class:`GridmapError`. Errors caused by
bad input also subclass :class:`ValueError` (or :class:`LookupError` for unknown
ids) so that generic callers can catch them the usual way. The HTTP layer maps
these classes to status codes in one place (``gridmap.api.errors``); the core
never knows about HTTP.

Messages say what is wrong *and* how to fix it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GridmapError",
    "InputError",
    "CRSError",
    "LayerError",
    "ValidationError",
    "CoordinateError",
    "PartitionError",
    "InfeasibleError",
    "StaffingError",
    "NotFoundError",
    "ConflictError",
    "StorageError",
    "PermissionDeniedError",
    "CaseError",
    "PolicyError",
    "CalendarError",
    "TransitionError",
    "ScopeError",
    "RowsError",
    "VisitRulesError",
    "VisitRecordError",
    "VisitScopeError",
    "PartitionedDatasetError",
    "ClusterError",
    "SchedulerUnreachableError",
    "WorkerVersionError",
]


class GridmapError(Exception):
    """Base class of every error raised by gridmap on purpose."""


class InputError(GridmapError, ValueError):
    """Input that gridmap cannot use as given (bad value, bad file, bad parameter)."""


class CRSError(InputError):
    """A layer or coordinate has no CRS, an unknown CRS, or CRSs that do not match."""


class LayerError(InputError):
    """A layer is missing, empty, of the wrong geometry type or lacks a required column."""


class ValidationError(InputError):
    """Layers failed validation; ``report`` carries every finding.

    Parameters
    ----------
    message : str
        What failed and how to fix it.
    report : object, optional
        The :class:`gridmap.validation.ValidationReport` with every finding.
    """

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class CoordinateError(InputError):
    """A coordinate is NaN, infinite or out of range for its CRS."""


class PartitionError(GridmapError):
    """The partitioner could not produce a plan."""


class InfeasibleError(PartitionError, ValueError):
    """Parameters or locks that no partition can satisfy (e.g. ``min > max``)."""


class StaffingError(GridmapError, ValueError):
    """Staffing input that cannot be used (e.g. a roster with unknown home buildings)."""


class NotFoundError(GridmapError, LookupError):
    """An id (plan, grid, building, key …) that does not exist."""


class ConflictError(GridmapError):
    """A stale or conflicting edit: the stored version moved on.

    Parameters
    ----------
    message : str
        What conflicted and how to proceed.
    current_version : int, optional
        The version currently stored, so the caller can reload and retry.
    """

    def __init__(self, message: str, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class StorageError(GridmapError):
    """The store cannot be reached or is not in the expected state."""


class PermissionDeniedError(GridmapError):
    """The caller's role does not allow the requested action."""


class CaseError(InputError):
    """A case (事件工单) or its rules cannot be used as given (bad ticket, bad catalogue row)."""


class PolicyError(InputError):
    """An SLA policy file or entry with an unknown key or a bad value."""


class CalendarError(InputError):
    """A working-day calendar table (State Council notice) that cannot be used."""


class TransitionError(GridmapError, ValueError):
    """An action that the case's state does not allow.

    Parameters
    ----------
    message : str
        What was refused and what is allowed instead.
    state : str, optional
        The case's current state.
    action : str, optional
        The refused action.
    allowed : tuple of str, optional
        The actions the state allows (for the caller's role, when known).
    """

    def __init__(
        self,
        message: str,
        state: str | None = None,
        action: str | None = None,
        allowed: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.state = state
        self.action = action
        self.allowed = allowed


class ScopeError(PermissionDeniedError):
    """The caller's key is bound to an org unit that does not cover the case."""


class RowsError(InputError):
    """Rows of a table that cannot be used, each named by the line a spreadsheet shows.

    Parameters
    ----------
    message : str
        What failed and how to fix it.
    rows : list of (int, str)
        ``(line, message)`` of every bad row.
    conflict : bool
        Whether some rows conflict with stored data (e.g. a ticket number reused).
    """

    def __init__(
        self, message: str, rows: list[tuple[int, str]] | None = None, conflict: bool = False
    ) -> None:
        super().__init__(message)
        self.rows = list(rows or [])
        self.conflict = conflict


class VisitRulesError(InputError):
    """A visit rules file or entry (六必访 categories, cadences, teams) that cannot be used."""


class VisitRecordError(InputError):
    """A visit record that cannot be accepted (future date, unknown outcome, no household …)."""


class VisitScopeError(PermissionDeniedError):
    """A visit recorded by a worker for a household outside the grids the worker serves."""


class PartitionedDatasetError(InputError):
    """A dataset that cluster workers cannot read one community at a time.

    Not a GeoParquet dataset partitioned by ``community_id`` (write one with
    ``gridmap.scale.write_partitioned``), or a folder that would be overwritten.
    """


class ClusterError(GridmapError):
    """A compute cluster (Dask) that cannot run gridmap's work as asked."""


class SchedulerUnreachableError(ClusterError):
    """No scheduler answered at the given address within the connect timeout."""


class WorkerVersionError(ClusterError):
    """Cluster workers without gridmap, or with another gridmap version than the client."""
