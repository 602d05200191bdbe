"""The audit log: who did what, when, with the state before and after.

Every change the repository makes writes its audit row in the same transaction
as the change itself, so the log never claims an edit that did not happen (and
never misses one that did). Audit rows are read with :func:`list_audit`; they
are never written to :mod:`logging`, since before/after may hold personal data.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.db.bulk import jsonable
from gridmap.db.models import AuditLog, table, utcnow
from gridmap.db.session import Store, transaction

__all__ = ["write_audit", "list_audit"]

_AUDIT = table(AuditLog)


def write_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int,
    before: Any = None,
    after: Any = None,
) -> None:
    """Append an audit row inside the caller's transaction.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        The session doing the change.
    actor : str
        Who (user name, service name).
    action : str
        What (``import``, ``create``, ``update``, ``publish``, ``archive`` …).
    entity, entity_id : str
        On what (``plan``/``12``, ``import``/``3`` …).
    before, after : object, optional
        JSON-compatible state before and after the change.

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> with store.session() as s:
    ...     write_audit(s, actor="li", action="note", entity="plan", entity_id=1, after={"x": 1})
    >>> list_audit(store)[["actor", "action", "entity_id", "after"]].to_dict("records")
    [{'actor': 'li', 'action': 'note', 'entity_id': '1', 'after': {'x': 1}}]
    """
    if not actor or not str(actor).strip():
        raise ValueError("every change needs an author; pass author='<user name>'")
    session.execute(
        _AUDIT.insert().values(
            at=utcnow(),
            actor=str(actor),
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            before=jsonable(before),
            after=jsonable(after),
        )
    )


def list_audit(
    target: Store | Session,
    *,
    entity: str | None = None,
    entity_id: str | int | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Return audit rows, oldest first, as a DataFrame.

    Parameters
    ----------
    target : Store or Session
        The store.
    entity, entity_id, actor : optional
        Filters.
    limit : int, optional
        Return at most the newest ``limit`` rows.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, at, actor, action, entity, entity_id, before, after``.

    Examples
    --------
    >>> list_audit(Store.from_url("sqlite://")).columns.tolist()
    ['id', 'at', 'actor', 'action', 'entity', 'entity_id', 'before', 'after']
    """
    q = sa.select(_AUDIT)
    if entity is not None:
        q = q.where(_AUDIT.c.entity == entity)
    if entity_id is not None:
        q = q.where(_AUDIT.c.entity_id == str(entity_id))
    if actor is not None:
        q = q.where(_AUDIT.c.actor == actor)
    q = q.order_by(_AUDIT.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    with transaction(target) as s:
        rows = s.execute(q).mappings().all()
    cols = ["id", "at", "actor", "action", "entity", "entity_id", "before", "after"]
    frame = pd.DataFrame([dict(r) for r in reversed(rows)], columns=cols)
    return frame.astype({"before": object, "after": object})
