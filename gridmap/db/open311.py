"""Pages of cases read in bulk for the Open311 face (``GET /open311/v2/requests.json``).

:func:`gridmap.db.cases.get_case` reads one case in four queries, which is right for
one case and slow for the spec's pages of up to 1,000. :func:`case_summaries` reads
a page in two queries (the cases, then their handlers) and returns the fields that
:func:`gridmap.cases.open311.service_request` reads, under the names of
:meth:`gridmap.db.cases.CaseRecord.to_dict` — never the reporter's name or phone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import TZ, to_local
from gridmap.db.cases import _from_db, overdue_states
from gridmap.db.models import CaseHandler, CaseRow, table
from gridmap.db.session import Store, transaction

__all__ = ["SUMMARY_FIELDS", "case_summaries"]

_C = table(CaseRow)
_H = table(CaseHandler)

#: Keys of each :func:`case_summaries` record (no personal data).
SUMMARY_FIELDS: tuple[str, ...] = (
    "id",
    "status",
    "category",
    "description",
    "received_at",
    "updated_at",
    "due_at",
    "provisional",
    "overdue",
    "satisfaction",
    "merged_into",
    "grid_code",
    "address",
    "lon",
    "lat",
    "handlers",
)
_CHUNK = 500  # ids per IN (…) list


def case_summaries(
    target: Store | Session, ids: Sequence[int], *, now: Any = None
) -> list[dict[str, Any]]:
    """Return the cases ``ids`` in that order (unknown ids left out), without personal data.

    Parameters
    ----------
    target : Store or Session
    ids : sequence of int
        Case ids, e.g. a page of :func:`gridmap.db.cases.list_cases`.
    now : datetime, optional
        For ``overdue`` (default: the current time).

    Returns
    -------
    list of dict
        :data:`SUMMARY_FIELDS`; times as ISO 8601 in +08:00, ``handlers`` as
        ``{"kind", "unit", "lead"}`` (lead first, then co-handlers).

    Examples
    --------
    >>> store = Store.from_url("sqlite://")
    >>> case_summaries(store, [1, 2])
    []
    """
    when = to_local(now) if now is not None else dt.datetime.now(TZ)
    late = set(overdue_states())
    wanted = [int(i) for i in ids]
    rows: dict[int, dict[str, Any]] = {}
    cols = [
        _C.c.id,
        _C.c.status,
        _C.c.category,
        _C.c.description,
        _C.c.received_at,
        _C.c.updated_at,
        _C.c.due_at,
        _C.c.provisional,
        _C.c.satisfaction,
        _C.c.merged_into,
        _C.c.grid_code,
        _C.c.address,
        _C.c.lon,
        _C.c.lat,
    ]
    with transaction(target) as s:
        for k in range(0, len(wanted), _CHUNK):
            part = wanted[k : k + _CHUNK]
            for r in s.execute(sa.select(*cols).where(_C.c.id.in_(part))).mappings():
                due = _from_db(r["due_at"])
                received = _from_db(r["received_at"]) or when
                updated = _from_db(r["updated_at"]) or received
                rows[int(r["id"])] = {
                    "id": int(r["id"]),
                    "status": r["status"],
                    "category": r["category"],
                    "description": r["description"],
                    "received_at": received.isoformat(),
                    "updated_at": updated.isoformat(),
                    "due_at": due.isoformat() if due else None,
                    "provisional": bool(r["provisional"]),
                    "overdue": due is not None and r["status"] in late and due < when,
                    "satisfaction": r["satisfaction"],
                    "merged_into": r["merged_into"],
                    "grid_code": r["grid_code"],
                    "address": r["address"],
                    "lon": r["lon"],
                    "lat": r["lat"],
                    "handlers": [],
                }
            q = (
                sa.select(_H.c.case_id, _H.c.kind, _H.c.unit, _H.c.role)
                .where(_H.c.case_id.in_(part), _H.c.role != "summoned")
                .order_by(_H.c.case_id, _H.c.id)
            )
            for h in s.execute(q):
                rows[int(h.case_id)]["handlers"].append(
                    {"kind": h.kind, "unit": h.unit, "lead": h.role == "lead"}
                )
    return [rows[i] for i in wanted if i in rows]
