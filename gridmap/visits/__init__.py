"""Visits (走访): 六必访 must-visits, due lists, walking routes, records and the 四清 register.

The pure core of the capability (issue #18, Zhenjiang Jingkou: "进百家门、知百家情"):

* :mod:`~gridmap.visits.rules` — which households and organisations must be
  visited, how often (weekly / monthly / quarterly, team cadences) and by whom,
  as data (``visits/data/rules.json``, overridable by a file);
* :mod:`~gridmap.visits.due` — the visits due per grid and period, done or
  overdue given the records, with the responsible chief or worker from the
  plan's staffing; :func:`follow_redraw` moves them when grids are redrawn;
* :mod:`~gridmap.visits.network` and :mod:`~gridmap.visits.route` — a day's
  walking route over the road network (nearest neighbour + 2-opt + Or-opt);
* :mod:`~gridmap.visits.records` — checking visit records (scope, dates,
  outcomes) and turning follow-ups into case tickets;
* :mod:`~gridmap.visits.register` — the 四清 register per grid.

Storage lives in ``gridmap.db``, routes in ``gridmap.api``; nothing here opens a
store, reads a clock or writes a file. The map of a day's route is
:func:`gridmap.maps.visit_route_map`.

>>> from gridmap.visits import default_rules
>>> default_rules().codes[:2]
('hardship_disabled', 'elderly_alone')
"""

from __future__ import annotations

from gridmap.visits.due import (
    DUE_COLUMNS,
    STATUSES,
    due_summary,
    due_visits,
    follow_redraw,
    grid_of_households,
    visit_window,
)
from gridmap.visits.network import Distances, RoadNetwork
from gridmap.visits.records import (
    OUTCOMES,
    RECORD_FIELDS,
    VisitRecord,
    check_record,
    check_records,
    follow_up_ticket,
)
from gridmap.visits.register import REGISTER_LABELS, register_labels, visit_register
from gridmap.visits.route import Route, mst_bound, plan_route, route_stops, tour_length
from gridmap.visits.rules import (
    CADENCES,
    RESPONSIBLE,
    TARGETS,
    Team,
    VisitCategory,
    VisitRules,
    default_rules,
    load_rules,
)

__all__ = [
    # rules
    "CADENCES",
    "RESPONSIBLE",
    "TARGETS",
    "Team",
    "VisitCategory",
    "VisitRules",
    "load_rules",
    "default_rules",
    # due
    "DUE_COLUMNS",
    "STATUSES",
    "visit_window",
    "due_visits",
    "due_summary",
    "follow_redraw",
    "grid_of_households",
    # routes
    "RoadNetwork",
    "Distances",
    "Route",
    "plan_route",
    "route_stops",
    "tour_length",
    "mst_bound",
    # records
    "OUTCOMES",
    "RECORD_FIELDS",
    "VisitRecord",
    "check_record",
    "check_records",
    "follow_up_ticket",
    # register
    "REGISTER_LABELS",
    "register_labels",
    "visit_register",
]
