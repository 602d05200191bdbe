"""Reading cases: one case, its log, and the filtered list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import TZ, Actor, Case, Deadline, Handler, Summons, can_see, to_local
from gridmap.db.audit import write_audit
from gridmap.db.cases.duplicates import all_duplicates
from gridmap.db.cases.records import (
    _C,
    _D,
    _H,
    _L,
    _PERSONAL_ROLES,
    CASE_LIST_COLUMNS,
    CaseRecord,
    _db_time,
    _deadlines,
    _from_db,
    overdue_states,
)
from gridmap.db.session import Store, transaction
from gridmap.errors import NotFoundError, ScopeError

__all__ = ["get_case", "list_cases", "case_log"]

# ----------------------------------------------------------------------------- reading


def _load(s: Session, case_id: int, *, lock: bool = False) -> CaseRecord:
    q = sa.select(_C).where(_C.c.id == int(case_id))
    if lock and s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    row = s.execute(q).mappings().first()
    if row is None:
        raise NotFoundError(f"no case {case_id}; GET /cases (gridmap cases list) lists them")
    deadlines = _deadlines(
        s.execute(sa.select(_D).where(_D.c.case_id == int(case_id))),
        row["due_at"],
        row["provisional"],
    )
    handlers: list[Handler] = []
    summons: list[Summons] = []
    for h in s.execute(sa.select(_H).where(_H.c.case_id == int(case_id)).order_by(_H.c.id)):
        due = Deadline(_from_db(h.due_at), bool(h.due_provisional)) if h.due_at else None  # type: ignore[arg-type]
        if h.role == "summoned":
            summons.append(
                Summons(h.unit, _from_db(h.summoned_at), due, _from_db(h.signed_in_at))  # type: ignore[arg-type]
            )
        else:
            handlers.append(Handler(h.unit, h.kind, h.role == "lead", due, h.person))
    case = Case(
        id=str(row["id"]),
        source=row["source"],
        category=row["category"],
        urgency=row["urgency"],
        description=row["description"],
        policy=row["policy"],
        received_at=_from_db(row["received_at"]),  # type: ignore[arg-type]
        status=row["status"],
        version=int(row["version"]),
        ticket_no=row["ticket_no"],
        reporter_name=row["reporter_name"],
        reporter_phone=row["reporter_phone"],
        lon_given=row["lon_given"],
        lat_given=row["lat_given"],
        crs_given=row["crs_given"],
        lon=row["lon"],
        lat=row["lat"],
        address=row["address"],
        grid_code=row["grid_code"],
        community_id=row["community_id"],
        subdistrict=row["subdistrict"],
        plan_id=None if row["plan_id"] is None else str(row["plan_id"]),
        plan_version=row["plan_version"],
        deadlines=deadlines,
        hard=bool(row["hard"]),
        level=row["level"],
        handlers=tuple(handlers),
        summons=tuple(summons),
        satisfaction=row["satisfaction"],
        merged_into=row["merged_into"],
        reopened=int(row["reopened"]),
    )
    return CaseRecord(
        case,
        suggested_grid=row["suggested_grid"],
        reroute_grid=row["reroute_grid"],
        reroute_plan_id=row["reroute_plan_id"],
        duplicate_of=list(row["duplicate_of"] or []),
        duplicate_count=(
            len(row["duplicate_of"] or [])
            if row["duplicate_count"] is None
            else int(row["duplicate_count"])
        ),
        created_at=_from_db(row["created_at"]),
        updated_at=_from_db(row["updated_at"]),
    )


def _visible(actor: Actor | None, rec: CaseRecord, *, author: str, s: Session) -> CaseRecord:
    if actor is None:
        return rec
    if not can_see(actor, rec.case):
        raise ScopeError(
            f"case {rec.id} is outside {actor.role} {actor.unit!r}'s unit; ask a dispatcher "
            "or the unit in charge"
        )
    if actor.role not in _PERSONAL_ROLES:
        return replace(rec, case=rec.case.redacted(), personal=False)
    if rec.case.reporter_name or rec.case.reporter_phone:
        write_audit(
            s,
            actor=author,
            action="read.personal",
            entity="case",
            entity_id=rec.id,
            grid_code=rec.case.grid_code,
            after={"fields": ["reporter_name", "reporter_phone"], "role": actor.role},
        )
    return rec


def get_case(
    target: Store | Session, case_id: int, *, actor: Actor | None = None, author: str = "system"
) -> CaseRecord:
    """Return a stored case as ``actor`` may see it (reads of personal data are audited).

    ``duplicate_of`` lists every likely duplicate the intake found, nearest first (an
    import stores the nearest few; the rest are found again here, by query).

    Raises
    ------
    NotFoundError
        Unknown id.
    ScopeError
        The case is outside the actor's org unit.
    """
    with transaction(target, write=actor is not None) as s:
        rec = _visible(actor, _load(s, case_id), author=author, s=s)
        if rec.duplicate_count > len(rec.duplicate_of):  # the import stored the nearest few
            rec = replace(rec, duplicate_of=all_duplicates(s, rec.id))
        return rec


def _scope_clause(actor: Actor | None) -> Any:
    if actor is None or actor.role in ("dispatcher", "admin"):
        return sa.true()
    unit = actor.unit
    handled = sa.select(_H.c.case_id).where(_H.c.unit == unit)
    if actor.role == "viewer":
        if unit is None:
            return sa.true()
        return sa.or_(_C.c.grid_code == unit, _C.c.community_id == unit, _C.c.subdistrict == unit)
    kind = actor.unit_kind
    col = {"grid": _C.c.grid_code, "community": _C.c.community_id, "subdistrict": _C.c.subdistrict}
    if kind in col:
        return sa.or_(col[kind] == unit, _C.c.id.in_(handled))
    return _C.c.id.in_(handled)


def list_cases(
    target: Store | Session,
    *,
    actor: Actor | None = None,
    status: str | Sequence[str] | None = None,
    grid: str | None = None,
    community: str | None = None,
    subdistrict: str | None = None,
    category: str | None = None,
    source: str | None = None,
    overdue: bool | None = None,
    due_before: Any = None,
    received_from: Any = None,
    received_to: Any = None,
    now: Any = None,
    limit: int | None = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """List cases (no personal data), newest first, with the total matching count.

    Parameters
    ----------
    actor : Actor, optional
        Limits the list to the actor's org unit.
    status, grid, community, subdistrict, category, source : optional
        Filters (``status`` may be a list).
    overdue : bool, optional
        Only cases whose resolve deadline passed before ``now`` while not
        replied (or only the others, with False).
    due_before, received_from, received_to : datetime, optional
    now : datetime, optional
        Default: the current time.
    limit, offset : int
        Paging (``limit=None``: everything).

    Returns
    -------
    (list of dict, int)
        Records with :data:`CASE_LIST_COLUMNS`, and the total. ``duplicate_of`` holds the
        likely duplicates the import kept (the nearest few) and ``duplicate_count`` how
        many there are in all; :func:`get_case` lists every one.
    """
    when = to_local(now) if now is not None else dt.datetime.now(TZ)
    with transaction(target) as s:
        backend = s.get_bind().dialect.name
        now_db = _db_time(when, backend)
        conds = [_scope_clause(actor)]
        if status:
            sts = [status] if isinstance(status, str) else list(status)
            conds.append(_C.c.status.in_(sts))
        for colname, value in (
            ("grid_code", grid),
            ("community_id", community),
            ("subdistrict", subdistrict),
            ("category", category),
            ("source", source),
        ):
            if value:
                conds.append(_C.c[colname] == value)
        late = sa.and_(
            _C.c.status.in_(overdue_states()), _C.c.due_at.is_not(None), _C.c.due_at < now_db
        )
        if overdue is True:
            conds.append(late)
        elif overdue is False:
            conds.append(sa.not_(late))
        if due_before is not None:
            conds.append(_C.c.due_at < _db_time(due_before, backend))
        if received_from is not None:
            conds.append(_C.c.received_at >= _db_time(received_from, backend))
        if received_to is not None:
            conds.append(_C.c.received_at < _db_time(received_to, backend))
        where = sa.and_(*conds)
        cols = [
            _C.c.id,
            _C.c.ticket_no,
            _C.c.source,
            _C.c.category,
            _C.c.urgency,
            _C.c.status,
            _C.c.level,
            _C.c.version,
            _C.c.grid_code,
            _C.c.community_id,
            _C.c.subdistrict,
            _C.c.plan_id,
            _C.c.plan_version,
            _C.c.lon,
            _C.c.lat,
            _C.c.address,
            _C.c.received_at,
            _C.c.due_at,
            _C.c.provisional,
            sa.case((late, True), else_=False).label("overdue"),
            _C.c.suggested_grid,
            _C.c.reroute_grid,
            _C.c.duplicate_of,
            _C.c.duplicate_count,
        ]
        # the page reads its rows in index order and stops after them; the total is counted
        # apart (from the index alone where one covers the filters: grid + status), and
        # only when the page does not tell it (a full page, or an empty one past the start)
        q = sa.select(*cols).where(where)
        q = q.order_by(_C.c.received_at.desc(), _C.c.id.desc())
        if limit is not None:
            q = q.limit(int(limit))
        if offset:
            q = q.offset(int(offset))
        rows = s.execute(q).all()
        if rows and (limit is None or len(rows) < int(limit)):
            total = int(offset) + len(rows)
        elif not rows and not offset:
            total = 0
        else:
            total = s.execute(sa.select(sa.func.count()).select_from(_C).where(where)).scalar_one()
    out = []
    for r in rows:
        rec = dict(zip(CASE_LIST_COLUMNS, r, strict=True))
        rec["received_at"] = _from_db(rec["received_at"]).isoformat()  # type: ignore[union-attr]
        due = _from_db(rec["due_at"])
        rec["due_at"] = due.isoformat() if due else None
        rec["provisional"] = bool(rec["provisional"])
        rec["overdue"] = bool(rec["overdue"])
        rec["duplicate_of"] = list(rec["duplicate_of"] or [])
        if rec["duplicate_count"] is None:  # stored before the count: the list is complete
            rec["duplicate_count"] = len(rec["duplicate_of"])
        out.append(rec)
    return out, int(total)


def case_log(
    target: Store | Session, case_id: int, *, actor: Actor | None = None
) -> list[dict[str, Any]]:
    """Return the 办理轨迹 of a case, oldest first (who, role, when, from → to, note)."""
    with transaction(target) as s:
        rec = _load(s, case_id)
        if actor is not None and not can_see(actor, rec.case):
            raise ScopeError(f"case {case_id} is outside {actor.role} {actor.unit!r}'s unit")
        rows = s.execute(
            sa.select(_L).where(_L.c.case_id == int(case_id)).order_by(_L.c.version)
        ).mappings()
        out = []
        for r in rows:
            d = {k: r[k] for k in ("version", "actor", "role", "unit", "action", "note")}
            d["at"] = _from_db(r["at"]).isoformat()  # type: ignore[union-attr]
            d["from"] = r["from_state"]
            d["to"] = r["to_state"]
            d["data"] = r["data"] or {}
            out.append(d)
    return out
