"""Cases (事件工单): 12345 hotline and other tickets, from intake to closing.

The pure core of the capability: the category catalogue and SLA policies (data
files with a schema), the mainland-China working-day calendar, the case record
and intake, the state machine as one table, the timers (warnings, 催办, 督办,
escalation), likely-duplicate search and a synthetic ticket generator. Storage
lives in ``gridmap.db``, routes in ``gridmap.api``; nothing here opens a store.

>>> from gridmap.cases import allowed_actions
>>> allowed_actions("replied")
('callback',)
"""

from __future__ import annotations

from gridmap.cases.batch import (
    CASE_FIELDS,
    TICKET_ALIASES,
    TICKET_FIELDS,
    case_row,
    frame_cases,
    intake_frame,
)
from gridmap.cases.calendar import (
    CALENDAR_COLUMNS,
    TZ,
    CalendarDay,
    Deadline,
    WorkCalendar,
    WorkingTime,
    default_calendar,
    load_year_csv,
    to_local,
)
from gridmap.cases.catalogue import (
    URGENCIES,
    Catalogue,
    Category,
    Source,
    default_catalogue,
    load_catalogue,
)
from gridmap.cases.clocks import (
    CLOCK_COLUMNS,
    EVENT_COLUMNS,
    EVENT_KINDS,
    clock_frame,
    event_key,
    sweep,
)
from gridmap.cases.duplicates import duplicate_pairs, find_duplicates
from gridmap.cases.model import (
    UNIT_KINDS,
    Case,
    Handler,
    Locator,
    Placement,
    Summons,
    check_unique_tickets,
    intake,
    intake_many,
)
from gridmap.cases.policies import (
    ClockRule,
    EscalationStep,
    FollowUp,
    Limit,
    Policies,
    Policy,
    default_policies,
    load_policies,
)
from gridmap.cases.states import (
    ACTIONS,
    OPEN_STATES,
    ORG_LEVELS,
    ROLES,
    SATISFACTION,
    STAGE,
    STATES,
    SYSTEM_ACTIONS,
    TERMINAL_STATES,
    TRANSITIONS,
    Actor,
    LogEntry,
    Transition,
    actions_for,
    allowed_actions,
    apply,
    can_see,
    replay,
)
from gridmap.cases.stats import (
    STATS_BY,
    STATS_COLUMNS,
    STATS_LABELS_ZH,
    WORKLOAD_COLUMNS,
    WORKLOAD_LABELS_ZH,
    case_facts,
    case_stats,
    label_columns,
    stats_period,
    workload,
)
from gridmap.cases.synth import SYNTH_COLUMNS, synth_cases

__all__ = [
    # calendar
    "TZ",
    "CALENDAR_COLUMNS",
    "CalendarDay",
    "Deadline",
    "WorkingTime",
    "WorkCalendar",
    "default_calendar",
    "load_year_csv",
    "to_local",
    # catalogue
    "URGENCIES",
    "Category",
    "Source",
    "Catalogue",
    "load_catalogue",
    "default_catalogue",
    # policies
    "Limit",
    "ClockRule",
    "FollowUp",
    "EscalationStep",
    "Policy",
    "Policies",
    "load_policies",
    "default_policies",
    # model
    "UNIT_KINDS",
    "Placement",
    "Handler",
    "Summons",
    "Case",
    "Locator",
    "intake",
    "intake_many",
    "check_unique_tickets",
    # batch intake
    "TICKET_FIELDS",
    "TICKET_ALIASES",
    "CASE_FIELDS",
    "intake_frame",
    "case_row",
    "frame_cases",
    # states
    "STATES",
    "OPEN_STATES",
    "TERMINAL_STATES",
    "STAGE",
    "ROLES",
    "ORG_LEVELS",
    "SATISFACTION",
    "ACTIONS",
    "Transition",
    "TRANSITIONS",
    "Actor",
    "LogEntry",
    "allowed_actions",
    "actions_for",
    "can_see",
    "apply",
    "replay",
    "SYSTEM_ACTIONS",
    # clocks
    "CLOCK_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "event_key",
    "clock_frame",
    "sweep",
    # duplicates, synth
    "find_duplicates",
    "duplicate_pairs",
    "SYNTH_COLUMNS",
    "synth_cases",
    # performance figures and workload
    "STATS_BY",
    "STATS_COLUMNS",
    "STATS_LABELS_ZH",
    "WORKLOAD_COLUMNS",
    "WORKLOAD_LABELS_ZH",
    "case_facts",
    "case_stats",
    "label_columns",
    "stats_period",
    "workload",
]
