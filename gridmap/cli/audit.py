"""``gridmap audit``: read the audit log (审计日志) and archive old rows.

``gridmap audit --household H0042`` answers "who looked at this household, when,
and why"; ``--grid``, ``--actor``, ``--kind`` (personal, residents, export, keys,
sessions, publish, or an action/entity) and ``--since``/``--until`` narrow it;
``--csv FILE`` writes the rows for Excel (UTF-8 with BOM), ``--json`` prints them.
``gridmap audit archive`` moves rows older than the retention
(``GRIDMAP_AUDIT_RETENTION_DAYS`` or ``--older-than-days``) to a file — the only
way rows ever leave the log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridmap.cli.app import DbOpt, JsonOpt, _fail, _print_json, _run, app, console, err_console

__all__: list[str] = []

audit_app = typer.Typer(
    help="Read the audit log (who read or changed what, when) and archive old rows.",
)
app.add_typer(audit_app, name="audit")


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    actor: Annotated[
        str | None, typer.Option(help="Part of the actor: a key name or 'key 7'.")
    ] = None,
    household: Annotated[
        str | None, typer.Option(help="A household id: the reads that disclosed it.")
    ] = None,
    grid: Annotated[str | None, typer.Option(help="A grid code.")] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="personal, residents, export, keys, sessions, publish, or an action "
            "(import, edit.lock …) or entity (plan, case)."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this date or date-time (Beijing time).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to this date (inclusive).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most rows shown.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Rows skipped.")] = 0,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Write the rows to this CSV file (Excel-ready).")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show audit rows matching every filter given, oldest first."""
    if ctx.invoked_subcommand is not None:
        return

    def body() -> None:
        from gridmap.db import Store, database_url
        from gridmap.db.audit import audit_csv, query_audit

        with Store.from_url(database_url(db)) as store:
            page = query_audit(
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
        if csv is not None:
            csv.write_bytes(audit_csv(page.rows))
            err_console.print(f"{len(page.rows)} of {page.total} rows written to {csv}")
            return
        if as_json:
            _print_json({"data": page.rows, "count": len(page.rows), "total": page.total})
            return
        table = Table(title=f"audit log: {len(page.rows)} of {page.total} rows (Beijing time)")
        for col in ("id", "at", "actor", "action", "entity", "grid", "households"):
            table.add_column(col)
        from datetime import timedelta, timezone

        bj = timezone(timedelta(hours=8))
        for r in page.rows:
            hh = r["households"]
            shown = " ".join(hh[:5]) + (f" … (+{len(hh) - 5})" if len(hh) > 5 else "")
            table.add_row(
                str(r["id"]),
                f"{r['at'].astimezone(bj):%Y-%m-%d %H:%M:%S}",
                r["actor"],
                r["action"],
                f"{r['entity']} {r['entity_id']}",
                r["grid_code"] or "",
                shown,
            )
        console.print(table)

    _run(body)


@audit_app.command("archive")
def archive(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="The archive file (JSON Lines; gzip if it ends in .gz); new."
        ),
    ],
    older_than_days: Annotated[
        float | None,
        typer.Option(
            "--older-than-days",
            help="Retention in days (at least 180); default GRIDMAP_AUDIT_RETENTION_DAYS.",
        ),
    ] = None,
    db: DbOpt = None,
) -> None:
    """Move audit rows older than the retention to a file, then out of the store."""

    def body() -> None:
        from gridmap.api.settings import Settings
        from gridmap.db import Store, database_url
        from gridmap.db.audit import archive_audit

        days = older_than_days if older_than_days is not None else Settings().audit_retention_days
        if not days:
            raise _fail(
                "no retention set: pass --older-than-days N (180 or more) or set "
                "GRIDMAP_AUDIT_RETENTION_DAYS"
            )
        with Store.from_url(database_url(db)) as store:
            res = archive_audit(store, out, older_than_days=days, actor="gridmap audit archive")
        if res.rows == 0:
            console.print(f"no audit row is older than {days:g} days; nothing archived")
            return
        console.print(
            f"{res.rows} audit rows (up to id {res.upto_id}) archived to {res.path} "
            f"(sha256 {res.sha256}) and removed from the store"
        )

    _run(body)
