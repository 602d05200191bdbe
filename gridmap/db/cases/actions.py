"""Acting on a stored case with the state machine's table (one action, one log line)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import TZ, Actor, Case, Deadline, Handler, apply, default_policies, to_local
from gridmap.db.cases.calendar_store import store_calendar
from gridmap.db.cases.placement import case_locator
from gridmap.db.cases.queries import _load, _visible
from gridmap.db.cases.records import _C, _D, _H, _L, _RESOLVE, CaseRecord, _db_time
from gridmap.db.models import utcnow
from gridmap.db.session import Store, transaction
from gridmap.errors import CaseError, ConflictError

__all__ = ["act"]

# ----------------------------------------------------------------------------- acting


def _handler(value: Any) -> Handler:
    if isinstance(value, Handler):
        return value
    text = str(value)
    due = None
    if "@" in text:
        text, _, when = text.partition("@")
        due = Deadline(to_local(when), False)
    kind, sep, unit = text.partition(":")
    if not sep:
        raise CaseError(f"a handler is KIND:UNIT (e.g. grid:320104001001001), got {value!r}")
    return Handler(unit.strip(), kind.strip(), due=due)


def _save(s: Session, old: CaseRecord, new: Case, entry: Any) -> None:
    backend = s.get_bind().dialect.name
    resolve = new.deadlines.get(_RESOLVE)
    res = s.execute(
        _C.update()
        .where(_C.c.id == old.id, _C.c.version == old.case.version)
        .values(
            status=new.status,
            version=new.version,
            level=new.level,
            satisfaction=new.satisfaction,
            merged_into=new.merged_into,
            reopened=new.reopened,
            grid_code=new.grid_code,
            community_id=new.community_id,
            subdistrict=new.subdistrict,
            plan_id=None if new.plan_id is None else int(new.plan_id),
            plan_version=new.plan_version,
            due_at=_db_time(resolve.due, backend) if resolve else None,
            provisional=new.provisional,
            updated_at=utcnow(),
        )
    )
    if getattr(res, "rowcount", 1) != 1:
        raise ConflictError(
            f"case {old.id} changed while you acted on it; reload it and try again",
            current_version=None,
        )
    if new.deadlines != old.case.deadlines:
        # the resolve clock lives on cases.due_at/provisional (migration 0009), set above;
        # case_deadlines holds the other clocks (a resolve row left from before goes too)
        s.execute(_D.delete().where(_D.c.case_id == old.id))
        clocks = [
            {
                "case_id": old.id,
                "clock": k,
                "due_at": _db_time(d.due, backend),
                "provisional": d.provisional,
            }
            for k, d in new.deadlines.items()
            if k != _RESOLVE
        ]
        if clocks:
            s.execute(_D.insert(), clocks)
    if new.handlers != old.case.handlers or new.summons != old.case.summons:
        s.execute(_H.delete().where(_H.c.case_id == old.id))
        rows = [
            {
                "case_id": old.id,
                "kind": h.kind,
                "unit": h.unit,
                "role": "lead" if h.lead else "co",
                "person": h.person,
                "due_at": _db_time(h.due.due, backend) if h.due else None,
                "due_provisional": bool(h.due.provisional) if h.due else False,
                "summoned_at": None,
                "signed_in_at": None,
            }
            for h in new.handlers
        ] + [
            {
                "case_id": old.id,
                "kind": "department",
                "unit": m.department,
                "role": "summoned",
                "person": None,
                "due_at": _db_time(m.due.due, backend),
                "due_provisional": bool(m.due.provisional),
                "summoned_at": _db_time(m.summoned_at, backend),
                "signed_in_at": _db_time(m.signed_in_at, backend) if m.signed_in_at else None,
            }
            for m in new.summons
        ]
        if rows:
            s.execute(_H.insert(), rows)
    try:
        with s.begin_nested():
            s.execute(
                _L.insert().values(
                    case_id=old.id,
                    version=entry.version,
                    at=_db_time(entry.at, backend),
                    actor=entry.actor_id,
                    role=entry.role,
                    unit=entry.unit,
                    action=entry.action,
                    from_state=entry.from_state,
                    to_state=entry.to_state,
                    note=entry.note,
                    data=dict(entry.data) or None,
                )
            )
    except sa.exc.IntegrityError:
        raise ConflictError(
            f"case {old.id} was changed by someone else at the same moment; reload and retry"
        ) from None


def act(
    target: Store | Session,
    case_id: int,
    action: str,
    *,
    actor: Actor,
    author: str,
    expected_version: int | None,
    at: Any = None,
    note: str | None = None,
    reason: str | None = None,
    satisfaction: str | None = None,
    handler: Any = None,
    co_handlers: Sequence[Any] = (),
    due: Any = None,
    departments: Sequence[str] = (),
    grid: str | None = None,
    into: int | str | None = None,
) -> CaseRecord:
    """Apply an action of the state machine to a stored case.

    Parameters
    ----------
    case_id, action : int, str
    actor : Actor
        Who acts (role and org unit).
    author : str
        How the actor is named in the log.
    expected_version : int or None
        The version the caller read (``None``: no check — the CLI's ``--force``).
    at : datetime, optional
        Default: now.
    note, reason, satisfaction, due, departments :
        As :func:`gridmap.cases.apply`.
    handler, co_handlers : str or Handler
        ``"KIND:UNIT"`` (``grid:320104001001001``), optionally ``@DUE`` for a
        co-handler's own deadline.
    grid : str, optional
        For ``place``: the published grid to put the case in.
    into : int, optional
        For ``merge``.

    Raises
    ------
    TransitionError, PermissionDeniedError, ScopeError, CaseError
        From the core's table (see :func:`gridmap.cases.apply`).
    ConflictError
        The case moved on since ``expected_version`` (or concurrently).
    """
    when = to_local(at) if at is not None else dt.datetime.now(TZ)
    with transaction(target, write=True) as s:
        rec = _load(s, case_id, lock=True)
        if expected_version is not None and expected_version != rec.case.version:
            raise ConflictError(  # stale first: whatever the action, the caller must reload
                f"case {case_id} is at version {rec.case.version}, not {expected_version}: "
                "someone acted on it since you loaded it; reload it and try again",
                current_version=rec.case.version,
            )
        placement = None
        if action == "place" and grid:
            placement = case_locator(s).placement(grid)
        if into is not None:
            _load(s, int(into))
        deadlines = None
        if action == "reopen":
            c = rec.case
            deadlines = (
                default_policies()
                .get(c.policy)
                .deadlines(
                    when,
                    category=c.category,
                    urgency=c.urgency,
                    hard=c.hard,
                    calendar=store_calendar(s),
                )
            )
        new, entry = apply(
            rec.case,
            action,
            replace(actor, id=author),
            at=when,
            note=note,
            reason=reason,
            satisfaction=satisfaction,
            handler=_handler(handler) if handler is not None else None,
            co_handlers=[_handler(h) for h in co_handlers],
            due=due,
            departments=list(departments),
            placement=placement,
            into=str(into) if into is not None else None,
            deadlines=deadlines,
            expected_version=expected_version,
        )
        _save(s, rec, new, entry)
        return _visible(actor, _load(s, case_id), author=author, s=s)
