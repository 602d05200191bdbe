"""Cases (事件工单) in the store: intake, bulk import, lists, actions, sweep, re-route, calendar.

Everything a case goes through is decided by the pure core (:mod:`gridmap.cases`):
intake checks and times a ticket, :func:`gridmap.cases.apply` applies an action
from the state-machine table, :func:`gridmap.cases.sweep` finds the timer events
due. This module keeps the results:

* **Placement**: points are located on the *published* plans with
  :class:`gridmap.locate.GridIndex` (one per published plan, cached per plan
  version); the grid, community and sub-district are frozen on the case with the
  plan id and version. A point outside every grid is ``unlocated`` with the
  nearest grid suggested (``suggested_grid``), never assigned silently.
* **Import** (:func:`import_cases`) is one transaction: a file with a bad row
  stores nothing and names every bad row by its spreadsheet line; with
  ``skip_bad=True`` the good rows go in and the rejects come back. Re-importing
  the same tickets changes nothing (and says so); the same ticket number with
  other content is a conflict.
* **Likely duplicates**: each new case keeps its nearest few candidates
  (``duplicate_of``, ``import_cases(duplicate_limit=5)``) and their count
  (``duplicate_count``); :func:`get_case` (``GET /cases/{id}``, ``gridmap cases show``)
  lists every one, found again by query among the cases open when it came in.
* **Actions** (:func:`act`) take the version the caller read: of two concurrent
  actions on a case exactly one wins, the other gets a
  :class:`~gridmap.errors.ConflictError`. The log (``case_log``) is append-only.
* **Sweep** (:func:`sweep_cases`) writes events with unique keys
  (``INSERT … ON CONFLICT DO NOTHING``): a second sweep — in this process or
  another — writes nothing.
* **Personal data**: the reporter's name and phone are returned only to roles
  that handle cases, and every such read writes an audit row.

The package has one module per job: :mod:`~gridmap.db.cases.records` (tables, times
as stored, result records), :mod:`~gridmap.db.cases.placement` (locator, re-route),
:mod:`~gridmap.db.cases.calendar_store`, :mod:`~gridmap.db.cases.intake` (one ticket
or a table), :mod:`~gridmap.db.cases.duplicates`, :mod:`~gridmap.db.cases.queries`
(one case, its log, the list), :mod:`~gridmap.db.cases.actions` and
:mod:`~gridmap.db.cases.sweep`. Everything is re-exported here.
"""

# ``x as x``: private helpers re-exported for the other store modules (case_stats,
# case_frames, open311, visits) and the benchmarks
from gridmap.db.cases.actions import act
from gridmap.db.cases.calendar_store import calendar_status, load_calendar, store_calendar
from gridmap.db.cases.intake import create_case, import_cases
from gridmap.db.cases.placement import CaseLocator, case_locator, reroute_cases
from gridmap.db.cases.queries import _scope_clause as _scope_clause
from gridmap.db.cases.queries import case_log, get_case, list_cases
from gridmap.db.cases.records import (
    CASE_LIST_COLUMNS,
    CaseRecord,
    ImportResult,
    SweepResult,
    overdue_states,
)
from gridmap.db.cases.records import _db_time as _db_time
from gridmap.db.cases.records import _from_db as _from_db
from gridmap.db.cases.records import _times_out as _times_out
from gridmap.db.cases.sweep import sweep_cases

__all__ = [
    "CASE_LIST_COLUMNS",
    "CaseRecord",
    "ImportResult",
    "SweepResult",
    "CaseLocator",
    "case_locator",
    "create_case",
    "import_cases",
    "get_case",
    "list_cases",
    "case_log",
    "act",
    "sweep_cases",
    "reroute_cases",
    "store_calendar",
    "load_calendar",
    "calendar_status",
    "overdue_states",
]
