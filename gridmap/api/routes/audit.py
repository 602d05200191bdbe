"""The audit log (审计日志) read back: ``GET /audit`` for auditors and admins.

A data-protection officer answers "who looked at this household, when, and why"
without SQL: ``/audit?household=H0042``, ``?grid=320104001001001``,
``?actor=key 7``, ``?kind=personal`` (every read or export of personal data),
``?since=2026-12-01&until=2026-12-31``, paged with ``limit``/``offset``, as JSON
or as CSV for Excel (``format=csv``: UTF-8 with BOM, Beijing time). Only the
``auditor`` and ``admin`` roles may read it (a viewer gets 403), and every
read of the log is itself written to it (``audit.read``). Nothing here writes
or deletes other rows: the table is append-only (see :mod:`gridmap.db.audit`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from gridmap.api.deps import AuditorDep, StoreDep
from gridmap.api.errors import PROBLEM_RESPONSES
from gridmap.db.audit import AUDIT_KINDS, AuditPage, audit_csv, query_audit, write_audit

__all__ = ["router", "AuditRow", "AuditPublic"]

router = APIRouter(tags=["audit"], responses=PROBLEM_RESPONSES)


class AuditRow(BaseModel):
    """One audit row: who did what, when, on what; the households a read disclosed."""

    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    grid_code: str | None = None
    households: list[str] = Field(default_factory=list)
    before: Any = None
    after: Any = None


class AuditPublic(BaseModel):
    """A page of audit rows, oldest first, and the number matching the filters."""

    data: list[AuditRow]
    count: int
    total: int
    limit: int
    offset: int


_KIND_HELP = (
    "a kind (" + ", ".join(AUDIT_KINDS) + "), an action (import, edit.lock, rotate …), "
    "an action group (edit) or an entity (plan, case, api_key)"
)


@router.get(
    "/audit",
    response_model=AuditPublic,
    summary="Read the audit log (auditor, admin): filters, paging, CSV",
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
            },
            "description": "the rows (JSON, or CSV with format=csv)",
        }
    },
)
def audit_route(
    store: StoreDep,
    auditor: AuditorDep,
    actor: Annotated[
        str | None, Query(max_length=200, description="part of the actor (key name, 'key 7')")
    ] = None,
    household: Annotated[
        str | None, Query(max_length=64, description="a household id: the reads disclosing it")
    ] = None,
    grid: Annotated[str | None, Query(max_length=64, description="a grid code")] = None,
    kind: Annotated[str | None, Query(max_length=64, description=_KIND_HELP)] = None,
    since: Annotated[
        str | None,
        Query(max_length=40, description="from this date or date-time (Beijing time if bare)"),
    ] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="up to this date (inclusive) or date-time")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2_000_000_000)] = 0,
    format: Annotated[Literal["json", "csv"], Query(description="answer format")] = "json",  # noqa: A002
) -> Any:
    """Audit rows matching every filter given, oldest first; ``total`` counts them all."""
    page: AuditPage = query_audit(
        store,
        actor=actor,
        household=household,
        grid=grid,
        kind=kind,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    filters = {
        k: v
        for k, v in {
            "actor": actor,
            "household": household,
            "grid": grid,
            "kind": kind,
            "since": since,
            "until": until,
        }.items()
        if v
    }
    with store.session(write=True) as s:
        write_audit(
            s,
            actor=auditor.actor,
            action="audit.read",
            entity="audit",
            entity_id="-",
            after={"filters": filters, "rows": len(page.rows), "format": format},
        )
    headers = {"X-Total-Count": str(page.total)}
    if format == "csv":
        return Response(
            audit_csv(page.rows),
            media_type="text/csv; charset=utf-8",
            headers={**headers, "Content-Disposition": 'attachment; filename="audit.csv"'},
        )
    body = AuditPublic(
        data=[AuditRow(**r) for r in page.rows],
        count=len(page.rows),
        total=page.total,
        limit=limit,
        offset=offset,
    )
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)
