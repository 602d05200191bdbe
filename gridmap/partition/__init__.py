"""Partitioning communities into grids, their quality report and codes.

:func:`partition` (and the solver, SciPy and the rest of the partitioner behind it)
loads on first use, so that reading a stored :class:`Plan` (the store, the locator,
``gridmap locate``) does not pay for the partitioner.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from gridmap.partition.plan import GRID_COLUMNS, Plan, QualityReport

if TYPE_CHECKING:
    from gridmap.partition.partition import partition

__all__ = ["GRID_COLUMNS", "Plan", "QualityReport", "partition"]


class _Package(types.ModuleType):
    # ``gridmap.partition.partition`` is both a module and the function this package exports:
    # importing the module (``from gridmap.partition.partition import _tasks``) sets the
    # package's attribute to the module, so keep the function there instead
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "partition" and isinstance(value, types.ModuleType):
            value = value.partition
        super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:
        if name == "partition":
            from gridmap.partition.partition import partition as fn

            return fn  # the import above has set it on the package (see __setattr__)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = _Package
