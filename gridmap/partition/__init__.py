"""Partitioning communities into grids, their quality report and codes."""

from __future__ import annotations

from gridmap.partition.partition import partition  # noqa: I001  (after plan: no cycle)
from gridmap.partition.plan import GRID_COLUMNS, Plan, QualityReport

__all__ = ["GRID_COLUMNS", "Plan", "QualityReport", "partition"]
