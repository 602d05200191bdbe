"""The words of cases: their states, how far along the flow each is, roles, levels.

Kept apart from the state machine (:mod:`gridmap.cases.states`) so that the SLA
policies and the case record can name states and levels without importing the
machine: the imports of :mod:`gridmap.cases` run one way, vocabulary → policies →
model → states → clocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "STATES",
    "TERMINAL_STATES",
    "OPEN_STATES",
    "STAGE",
    "ROLES",
    "ORG_LEVELS",
    "SATISFACTION",
    "STATE_NAMES",
]

#: Every state a case can be in.
STATES: tuple[str, ...] = (
    "unlocated",
    "received",
    "accepted",
    "dispatched",
    "in_progress",
    "extension_requested",
    "returned",
    "replied",
    "callback",
    "closed",
    "reopened",
    "rejected",
    "merged",
)
#: States with no way out.
TERMINAL_STATES: tuple[str, ...] = ("rejected", "merged")
#: States in which clocks run (not closed, rejected or merged).
OPEN_STATES: tuple[str, ...] = tuple(s for s in STATES if s not in ("closed", *TERMINAL_STATES))

#: How far a state is along the flow; a clock whose ``stop`` state has stage k stops at
#: any state of stage ≥ k.
STAGE: Mapping[str, int] = MappingProxyType(
    {
        "unlocated": 0,
        "received": 0,
        "accepted": 1,
        "returned": 1,
        "reopened": 1,
        "dispatched": 2,
        "in_progress": 3,
        "extension_requested": 3,
        "replied": 4,
        "callback": 5,
        "closed": 6,
        "rejected": 6,
        "merged": 6,
    }
)

#: Roles from least to most powerful.
ROLES: tuple[str, ...] = (
    "viewer",
    "grid_worker",
    "grid_chief",
    "community",
    "subdistrict",
    "department",
    "dispatcher",
    "admin",
)
#: The escalation chain (小事不出网格、大事不出社区).
ORG_LEVELS: tuple[str, ...] = ("grid", "community", "subdistrict")
#: Callback results (回访): 满意, 基本满意, 不满意.
SATISFACTION: Mapping[str, str] = MappingProxyType(
    {"satisfied": "满意", "fairly_satisfied": "基本满意", "unsatisfied": "不满意"}
)

#: Every state in Chinese and in English words (maps, exports, Open311's ``status_notes``).
STATE_NAMES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "unlocated": ("待定位", "awaiting location by a dispatcher"),
        "received": ("已接收", "received"),
        "accepted": ("已受理", "accepted"),
        "dispatched": ("已派单", "dispatched"),
        "in_progress": ("办理中", "in progress"),
        "extension_requested": ("申请延期", "extension requested"),
        "returned": ("已回退", "returned to the dispatcher"),
        "replied": ("已办结", "replied, awaiting the callback"),
        "callback": ("已回访", "called back"),
        "closed": ("已结案", "closed"),
        "reopened": ("已重启", "reopened"),
        "rejected": ("不予受理", "rejected"),
        "merged": ("已合并", "merged as a duplicate"),
    }
)
