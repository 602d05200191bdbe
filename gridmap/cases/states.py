"""The case state machine, as one table, and :func:`apply`.

:data:`TRANSITIONS` maps ``state → action → Transition(to, roles, requires)``.
The API, the CLI, the clocks and the tests all read it; nothing else decides
what may happen to a case.

Flow: received → accepted → dispatched → in_progress → replied (办结) →
callback (回访: satisfied / fairly_satisfied / unsatisfied) → closed, with

* ``reject`` (duplicate, not ours; reason required) and ``merge`` (into another
  case) before work starts;
* ``return`` (回退, reason required) by a handler, back to the dispatcher;
* ``request_extension`` (延期, before the deadline) and its
  ``approve_extension`` (new due date) / ``refuse_extension`` by the unit above;
* ``reopen`` after an unsatisfied callback, or of a closed case on a repeat
  report;
* ``unlocated``: a case with only an address, or a point outside every grid,
  until a dispatcher places it (``place``);
* ``summon`` (街巷吹哨) by the sub-district, ``report_in`` (部门报到) by each
  department, and manual ``escalate`` up grid → community → sub-district.

Roles and scope
---------------
Roles, low to high: viewer < grid_worker, grid_chief < community < subdistrict <
department < dispatcher < admin. An :class:`Actor` (an API key or a user) is
bound to an org unit: grid staff to a grid, community staff to a community,
sub-district staff to a sub-district, department staff to a department. An
actor sees a case in its unit (a department: a case it handles or was summoned
to); dispatchers and admins see every case. :func:`apply` checks the role
against the table, then the scope.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from gridmap.cases.calendar import Deadline, to_local
from gridmap.cases.model import UNIT_KINDS, Case, Handler, Placement, Summons
from gridmap.cases.vocabulary import (
    OPEN_STATES,
    ORG_LEVELS,
    ROLES,
    SATISFACTION,
    STAGE,
    STATES,
    TERMINAL_STATES,
)
from gridmap.errors import (
    CaseError,
    ConflictError,
    PermissionDeniedError,
    ScopeError,
    TransitionError,
)

__all__ = [
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
]

_ROLE_UNIT: Mapping[str, str | None] = MappingProxyType(
    {
        "viewer": None,
        "grid_worker": "grid",
        "grid_chief": "grid",
        "community": "community",
        "subdistrict": "subdistrict",
        "department": "department",
        "dispatcher": None,
        "admin": None,
    }
)
_RANK = {"grid": 0, "community": 1, "subdistrict": 2, "department": 2}
_ROLE_RANK = {"grid_worker": 0, "grid_chief": 0, "community": 1, "subdistrict": 2}

_D = frozenset({"dispatcher", "admin"})
_H = frozenset({"grid_worker", "grid_chief", "community", "subdistrict", "department", "admin"})
_ABOVE = frozenset({"community", "subdistrict", "dispatcher", "admin"})


@dataclass(frozen=True)
class Transition:
    """One row of the table: the next state, who may act, and the fields required."""

    to: str
    roles: frozenset[str]
    requires: tuple[str, ...] = ()
    label_zh: str = ""


def _t(to: str, roles: frozenset[str], *requires: str, zh: str = "") -> Transition:
    return Transition(to, roles, tuple(requires), zh)


_REJECT = _t("rejected", _D, "reason", zh="不予受理")
_MERGE = _t("merged", _D, "into", zh="合并")
_DISPATCH = _t("dispatched", _D, "handler", zh="派单")

#: The state machine: state → action → :class:`Transition`.
TRANSITIONS: Mapping[str, Mapping[str, Transition]] = MappingProxyType(
    {
        "unlocated": {
            "place": _t("received", _D, "placement", zh="定位落格"),
            "reject": _REJECT,
            "merge": _MERGE,
        },
        "received": {
            "accept": _t("accepted", _D, zh="受理"),
            "reject": _REJECT,
            "merge": _MERGE,
        },
        "accepted": {"dispatch": _DISPATCH, "reject": _REJECT, "merge": _MERGE},
        "dispatched": {
            "start": _t("in_progress", _H, zh="签收"),
            "return": _t("returned", _H, "reason", zh="回退"),
            "dispatch": _DISPATCH,
        },
        "in_progress": {
            "reply": _t("replied", _H, "note", zh="办结"),
            "request_extension": _t("extension_requested", _H, "reason", "due", zh="申请延期"),
            "return": _t("returned", _H, "reason", zh="回退"),
            "summon": _t(
                "in_progress", frozenset({"subdistrict", "admin"}), "departments", "due", zh="吹哨"
            ),
            "report_in": _t("in_progress", frozenset({"department", "admin"}), zh="报到"),
            "escalate": _t(
                "in_progress",
                frozenset({"grid_worker", "grid_chief", "community", "admin"}),
                "reason",
                zh="上报",
            ),
        },
        "extension_requested": {
            "approve_extension": _t("in_progress", _ABOVE, "due", zh="批准延期"),
            "refuse_extension": _t("in_progress", _ABOVE, "reason", zh="不予延期"),
            "reply": _t("replied", _H, "note", zh="办结"),
        },
        "returned": {"dispatch": _DISPATCH, "reject": _REJECT, "merge": _MERGE},
        "replied": {"callback": _t("callback", _D, "satisfaction", zh="回访")},
        "callback": {
            "close": _t("closed", _D, zh="结案"),
            "reopen": _t("reopened", _D, "reason", zh="重办"),
        },
        "closed": {"reopen": _t("reopened", _D, "reason", zh="重办")},
        "reopened": {"dispatch": _DISPATCH},
        "rejected": {},
        "merged": {},
    }
)

#: Every action of the table.
ACTIONS: tuple[str, ...] = tuple(
    dict.fromkeys(a for row in TRANSITIONS.values() for a in row).keys()
)


@dataclass(frozen=True)
class Actor:
    """Who acts: an id, a role and, for unit-bound roles, the org unit's code.

    Examples
    --------
    >>> Actor("w1", "grid_worker", "320508019044001").role
    'grid_worker'
    >>> Actor("w1", "grid_worker")
    Traceback (most recent call last):
    ...
    gridmap.errors.PermissionDeniedError: role 'grid_worker' is bound to a grid; ...
    """

    id: str
    role: str
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise PermissionDeniedError(f"unknown role {self.role!r}; roles: {list(ROLES)}")
        kind = _ROLE_UNIT[self.role]
        if kind is not None and not self.unit:
            raise PermissionDeniedError(
                f"role {self.role!r} is bound to a {kind}; give its code as unit=..."
            )

    @property
    def unit_kind(self) -> str | None:
        """The kind of org unit the actor is bound to (None: not bound)."""
        return _ROLE_UNIT[self.role]


@dataclass(frozen=True)
class LogEntry:
    """An immutable line of a case's append-only log.

    Attributes
    ----------
    case_id : str
    version : int
        The case version this entry produced (1 + the version acted on).
    at : datetime.datetime
    actor_id, role : str
    unit : str or None
    action, from_state, to_state : str
    note : str or None
    data : mapping
        The action's fields (reason, satisfaction, handler units, due …) as plain values.
    """

    case_id: str
    version: int
    at: dt.datetime
    actor_id: str
    role: str
    unit: str | None
    action: str
    from_state: str
    to_state: str
    note: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def allowed_actions(state: str, role: str | None = None) -> tuple[str, ...]:
    """Actions the table allows in ``state`` (for ``role``, when given).

    Examples
    --------
    >>> allowed_actions("received")
    ('accept', 'reject', 'merge')
    >>> allowed_actions("in_progress", "department")
    ('reply', 'request_extension', 'return', 'report_in')
    >>> allowed_actions("in_progress", "viewer")
    ()
    """
    if state not in TRANSITIONS:
        raise CaseError(f"unknown state {state!r}; states: {list(STATES)}")
    if role is not None and role not in ROLES:
        raise PermissionDeniedError(f"unknown role {role!r}; roles: {list(ROLES)}")
    row = TRANSITIONS[state]
    return tuple(a for a, t in row.items() if role is None or role in t.roles)


def can_see(actor: Actor, case: Case) -> bool:
    """Whether ``actor``'s scope covers ``case`` (一级录入、三级知晓).

    Examples
    --------
    >>> c = Case("C1", "hotline", "noise", "ordinary", "x", "12345",
    ...          to_local("2026-09-18"), grid_code="G1", community_id="C", subdistrict="S")
    >>> can_see(Actor("a", "community", "C"), c), can_see(Actor("b", "grid_chief", "G2"), c)
    (True, False)
    """
    kind = actor.unit_kind
    if actor.role in ("dispatcher", "admin"):
        return True
    unit = actor.unit
    handled = {h.unit for h in case.handlers} | {s.department for s in case.summons}
    if actor.role == "viewer":
        return unit is None or unit in {case.grid_code, case.community_id, case.subdistrict}
    if kind == "grid":
        return unit == case.grid_code or unit in handled
    if kind == "community":
        return unit == case.community_id or unit in handled
    if kind == "subdistrict":
        return unit == case.subdistrict or unit in handled
    return unit in handled  # department


def actions_for(case: Case, actor: Actor) -> tuple[str, ...]:
    """Actions ``actor`` may take on ``case`` now: the table for its role, within its scope.

    Examples
    --------
    >>> c = Case("C1", "hotline", "noise", "ordinary", "x", "12345",
    ...          to_local("2026-09-18"), grid_code="G1", community_id="C", subdistrict="S")
    >>> actions_for(c, Actor("d", "dispatcher")), actions_for(c, Actor("w", "grid_worker", "G1"))
    (('accept', 'reject', 'merge'), ())
    """
    if not can_see(actor, case):
        return ()
    return allowed_actions(case.status, actor.role)


def _handler(value: Any) -> Handler:
    if isinstance(value, Handler):
        return value
    if isinstance(value, tuple | list) and len(value) == 2:
        return Handler(unit=str(value[1]), kind=str(value[0]))
    raise CaseError(
        f"a handler is a Handler(unit, kind) or a (kind, unit) pair with kind in {list(UNIT_KINDS)}"
        f", got {value!r}"
    )


def _deadline(value: Any, name: str) -> Deadline:
    if isinstance(value, Deadline):
        return value
    try:
        return Deadline(to_local(value), False)
    except Exception as exc:
        raise CaseError(f"{name} must be a Deadline or a date-time, got {value!r}") from exc


def apply(
    case: Case,
    action: str,
    actor: Actor,
    *,
    at: Any,
    note: str | None = None,
    reason: str | None = None,
    satisfaction: str | None = None,
    handler: Handler | tuple[str, str] | None = None,
    co_handlers: Sequence[Handler | tuple[str, str]] = (),
    due: Any = None,
    departments: Sequence[str] = (),
    placement: Placement | None = None,
    into: str | None = None,
    deadlines: Mapping[str, Deadline] | None = None,
    expected_version: int | None = None,
) -> tuple[Case, LogEntry]:
    """Apply ``action`` to ``case`` as ``actor``; return the new case and its log entry.

    Parameters
    ----------
    case : Case
    action : str
        An action of :data:`TRANSITIONS` for the case's state.
    actor : Actor
    at : datetime
        When it happens (naive = Asia/Shanghai).
    note, reason : str, optional
        ``reason`` is required for reject, return, reopen, extension requests and
        refusals, escalation; ``note`` (the result) for reply.
    satisfaction : {"satisfied", "fairly_satisfied", "unsatisfied"}, optional
        Required for callback (also 满意/基本满意/不满意).
    handler, co_handlers : Handler or (kind, unit), optional
        The lead and co-handlers for dispatch (双向派单).
    due : Deadline or datetime, optional
        The requested/approved new deadline (extension), the sign-in deadline (summon).
    departments : sequence of str
        Departments summoned (吹哨).
    placement : Placement, optional
        For ``place``.
    into : str, optional
        For ``merge``: the case this one duplicates.
    deadlines : mapping, optional
        New deadlines (e.g. recomputed by the caller on ``reopen``).
    expected_version : int, optional
        Optimistic lock: the version the caller read.

    Raises
    ------
    TransitionError
        The action is not allowed in the state; lists the allowed ones.
    PermissionDeniedError, ScopeError
        The role may not take the action, or the case is outside the actor's unit.
    CaseError
        A required field is missing or invalid.
    ConflictError
        ``expected_version`` is stale.

    Examples
    --------
    >>> c = Case("C1", "hotline", "noise", "ordinary", "夜间施工", "12345",
    ...          to_local("2026-09-18 10:00"), grid_code="G1", community_id="C",
    ...          subdistrict="S")
    >>> d = Actor("d1", "dispatcher")
    >>> c2, log = apply(c, "accept", d, at="2026-09-18 10:05")
    >>> c2.status, c2.version, log.from_state, log.to_state
    ('accepted', 2, 'received', 'accepted')
    >>> apply(c2, "close", d, at="2026-09-18 10:06")
    Traceback (most recent call last):
    ...
    gridmap.errors.TransitionError: cannot 'close' a case in state 'accepted'; allowed: ...
    """
    state = case.status
    row = TRANSITIONS.get(state)
    if row is None:
        raise CaseError(f"case {case.id} has unknown state {state!r}")
    if action not in row:
        allowed = tuple(row)
        listing = ", ".join(allowed) if allowed else "none (the case is final)"
        raise TransitionError(
            f"cannot {action!r} a case in state {state!r}; allowed: {listing}",
            state=state,
            action=action,
            allowed=allowed,
        )
    trans = row[action]
    if actor.role not in trans.roles:
        mine = allowed_actions(state, actor.role)
        raise PermissionDeniedError(
            f"role {actor.role!r} may not {action!r} (allowed roles: {sorted(trans.roles)}); "
            f"in state {state!r} this role may: {', '.join(mine) if mine else 'nothing'}"
        )
    if not can_see(actor, case) and action != "report_in":
        raise ScopeError(
            f"case {case.id} is outside {actor.role} {actor.unit!r}'s unit; "
            "ask a dispatcher or the unit in charge"
        )
    if expected_version is not None and expected_version != case.version:
        raise ConflictError(
            f"case {case.id} is at version {case.version}, not {expected_version}; "
            "reload it and try again",
            current_version=case.version,
        )
    when = to_local(at)
    given = {
        "reason": reason,
        "note": note,
        "satisfaction": satisfaction,
        "handler": handler,
        "due": due,
        "departments": departments,
        "placement": placement,
        "into": into,
    }
    missing = [
        k
        for k in trans.requires
        if given[k] is None
        or (isinstance(given[k], str) and not str(given[k]).strip())
        or (k == "departments" and not departments)
    ]
    if missing:
        raise CaseError(f"{action!r} requires {', '.join(missing)}; e.g. {_EXAMPLES[missing[0]]}")

    changes: dict[str, Any] = {"status": trans.to, "version": case.version + 1}
    data: dict[str, Any] = {}
    if reason:
        data["reason"] = reason
    if deadlines is not None:
        changes["deadlines"] = dict(deadlines)

    if action == "place":
        assert placement is not None
        changes.update(
            grid_code=placement.grid_code,
            community_id=placement.community_id,
            subdistrict=placement.subdistrict,
            plan_id=placement.plan_id,
            plan_version=placement.plan_version,
        )
        data["grid_code"] = placement.grid_code
    elif action == "merge":
        if into == case.id:
            raise CaseError(f"case {case.id} cannot be merged into itself")
        changes["merged_into"] = into
        data["into"] = into
    elif action == "dispatch":
        lead = replace(_handler(handler), lead=True)
        co = tuple(replace(_handler(h), lead=False) for h in co_handlers)
        units = [h.unit for h in (lead, *co)]
        if len(set(units)) != len(units):
            raise CaseError(f"a unit appears twice among the handlers: {units}")
        changes["handlers"] = (lead, *co)
        data["handlers"] = units
    elif action == "callback":
        sat = {v: k for k, v in SATISFACTION.items()}.get(str(satisfaction), satisfaction)
        if sat not in SATISFACTION:
            raise CaseError(
                f"satisfaction {satisfaction!r} is not one of {list(SATISFACTION)} "
                "(满意/基本满意/不满意)"
            )
        changes["satisfaction"] = sat
        data["satisfaction"] = sat
    elif action == "close" and case.satisfaction == "unsatisfied" and not (reason or note):
        raise CaseError(
            "the callback was unsatisfied: reopen the case, or give a reason= for closing it anyway"
        )
    elif action == "reopen":
        if state == "callback" and case.satisfaction != "unsatisfied":
            raise CaseError(
                f"the callback was {case.satisfaction!r}: only an unsatisfied callback reopens "
                "a case; close it instead"
            )
        changes["reopened"] = case.reopened + 1
        changes["satisfaction"] = None
        changes["handlers"] = ()
    elif action == "request_extension":
        new_due = _deadline(due, "due")
        current = case.deadlines.get("resolve")
        if current is not None:
            if when >= current.due:
                raise CaseError(
                    f"an extension must be requested before the deadline "
                    f"{current.due.isoformat()}; the case is already overdue"
                )
            if new_due.due <= current.due:
                raise CaseError(
                    f"the requested due {new_due.due.isoformat()} is not after the current "
                    f"deadline {current.due.isoformat()}"
                )
        data["requested_due"] = new_due.due.isoformat()
    elif action == "approve_extension":
        lead_h = case.lead
        if lead_h is not None and actor.role in _ROLE_RANK and lead_h.kind in _RANK:
            if _ROLE_RANK[actor.role] <= _RANK[lead_h.kind]:
                raise PermissionDeniedError(
                    f"an extension for a {lead_h.kind} handler is approved by the unit above; "
                    f"{actor.role} is not above it"
                )
        new_due = _deadline(due, "due")
        dl = dict(changes.get("deadlines", case.deadlines))
        dl["resolve"] = new_due
        changes["deadlines"] = dl
        changes["handlers"] = tuple(replace(h, due=new_due) if h.lead else h for h in case.handlers)
        data["due"] = new_due.due.isoformat()
    elif action == "summon":
        sign_due = _deadline(due, "due")
        have = {s.department for s in case.summons}
        new = [d for d in departments if d not in have]
        if not new:
            raise CaseError(f"departments {list(departments)} are already summoned")
        changes["summons"] = case.summons + tuple(Summons(d, when, sign_due) for d in new)
        data["departments"] = new
    elif action == "report_in":
        pending = [s for s in case.summons if s.department == actor.unit]
        if actor.role == "department" and not pending:
            raise ScopeError(f"department {actor.unit!r} was not summoned to case {case.id}")
        if actor.role == "admin":
            pending = [s for s in case.summons if s.department in departments]
            if not pending:
                raise CaseError("an admin reporting in must name the departments=")
        if all(s.signed_in_at is not None for s in pending):
            raise CaseError(f"{[s.department for s in pending]} already reported in")
        signing = {s.department for s in pending}
        changes["summons"] = tuple(
            replace(s, signed_in_at=when)
            if s.department in signing and s.signed_in_at is None
            else s
            for s in case.summons
        )
        data["departments"] = sorted(signing)
    elif action == "escalate":
        level = ORG_LEVELS.index(case.level)
        if level + 1 >= len(ORG_LEVELS):
            raise CaseError(f"case {case.id} is already at the top level ({case.level})")
        changes["level"] = ORG_LEVELS[level + 1]
        data["level"] = ORG_LEVELS[level + 1]

    new_case = replace(case, **changes)
    entry = LogEntry(
        case_id=case.id,
        version=new_case.version,
        at=when,
        actor_id=actor.id,
        role=actor.role,
        unit=actor.unit,
        action=action,
        from_state=state,
        to_state=trans.to,
        note=note,
        data=MappingProxyType(data),
    )
    return new_case, entry


_EXAMPLES = {
    "reason": "reason='重复工单，已并入 C000123'",
    "note": "note='已清理，居民确认'",
    "satisfaction": "satisfaction='satisfied'",
    "handler": "handler=Handler('320508019044001', 'grid')",
    "due": "due='2026-10-20 23:59:59'",
    "departments": "departments=['城管']",
    "placement": "placement=Placement(grid_code, community_id, subdistrict)",
    "into": "into='C000123'",
}


#: Log lines the system writes without a transition: the case's state stays, its record changes.
#: ``auto_escalate`` raises the level that owns the case (the sweep's escalation, 超时升级);
#: ``recompute`` replaces provisional deadlines after an official calendar year is loaded.
SYSTEM_ACTIONS: Mapping[str, str] = MappingProxyType(
    {"auto_escalate": "超时升级", "recompute": "期限重算"}
)


def replay(entries: Iterable[LogEntry], *, initial: str = "received") -> str:
    """Derive the current state from a log, checking every step against the table.

    Examples
    --------
    >>> c = Case("C1", "hotline", "noise", "ordinary", "x", "12345", to_local("2026-09-18"))
    >>> c2, e1 = apply(c, "accept", Actor("d", "dispatcher"), at="2026-09-18 10:00")
    >>> replay([e1])
    'accepted'

    System lines (:data:`SYSTEM_ACTIONS`) keep the state:

    >>> from dataclasses import replace
    >>> e2 = replace(e1, version=2, action="auto_escalate", from_state="accepted", actor_id="sweep")
    >>> replay([e1, e2])
    'accepted'
    """
    state = initial
    for i, e in enumerate(entries):
        if e.from_state != state:
            raise CaseError(
                f"log entry {i} starts from {e.from_state!r}, but the case was {state!r}"
            )
        if e.action in SYSTEM_ACTIONS:
            if e.to_state != state:
                raise CaseError(f"log entry {i}: {e.action!r} may not change the state")
            continue
        trans = TRANSITIONS.get(state, {}).get(e.action)
        if trans is None or trans.to != e.to_state:
            raise CaseError(
                f"log entry {i}: {state!r} --{e.action}--> {e.to_state!r} is not in the table"
            )
        state = e.to_state
    return state
