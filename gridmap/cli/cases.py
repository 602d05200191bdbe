"""``gridmap cases`` and ``gridmap calendar``: tickets in the store, from the command line.

The command line acts as an operator: an admin on cases (``--as``/``--unit`` act
as another role, e.g. a grid worker). Reads of personal data are audited like
the HTTP API's.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gridmap.cli.app import DbOpt, _fail, _run, app, console, err_console

__all__: list[str] = []

cases_app = typer.Typer(
    help="Cases (事件工单): import, list, show, act, sweep.", no_args_is_help=True
)
calendar_app = typer.Typer(
    help="The working-day calendar (State Council notices).", no_args_is_help=True
)
app.add_typer(cases_app, name="cases")
app.add_typer(calendar_app, name="calendar")

_AUTHOR = "gridmap cli"
AsOpt = Annotated[
    str,
    typer.Option("--as", help="Act as this case role (admin, dispatcher, grid_worker …)."),
]
UnitOpt = Annotated[
    str | None, typer.Option("--unit", help="The org unit of --as (a grid code, community id …).")
]


def _store(db: str | None) -> Any:
    from gridmap.db import Store, database_url

    return Store.from_url(database_url(db))


def _actor(role: str, unit: str | None) -> Any:
    from gridmap.cases import Actor

    return Actor(_AUTHOR, role, unit)


@cases_app.command("import")
def cases_import(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8/GBK) or XLSX of tickets.")],
    db: DbOpt = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Store the good rows; list the rejects.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Write the rejected rows (line, error) here.")
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option("--column", help="Map a column: CANONICAL=SOURCE (repeatable)."),
    ] = None,
) -> None:
    """Import tickets in one transaction (a bad row stores nothing unless --skip-bad)."""

    def body() -> None:
        from gridmap.db.cases import import_cases
        from gridmap.errors import RowsError

        with _store(db) as store:
            try:
                res = import_cases(
                    store, file, author=_AUTHOR, skip_bad=skip_bad, mapping=column, name=str(file)
                )
            except RowsError as exc:
                for line, msg in exc.rows[:50]:
                    err_console.print(f"line {line}: {msg}", highlight=False, soft_wrap=True)
                if len(exc.rows) > 50:
                    err_console.print(f"… and {len(exc.rows) - 50} more bad rows")
                raise _fail(
                    f"{len(exc.rows)} bad rows; nothing was stored. Fix them, or use --skip-bad"
                    + (" (ticket numbers reused with other content)" if exc.conflict else "")
                ) from None
        if rejects is not None:
            import pandas as pd

            pd.DataFrame(res.rejected, columns=["line", "error"]).to_csv(
                rejects, index=False, encoding="utf-8-sig"
            )
        for line, msg in res.rejected[:20]:
            err_console.print(f"rejected line {line}: {msg}", highlight=False, soft_wrap=True)
        console.print(res.summary(), highlight=False)

    _run(body)


@cases_app.command("list")
def cases_list(
    db: DbOpt = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="Only this status.")] = None,
    grid: Annotated[str | None, typer.Option("--grid", help="Only this grid code.")] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only cases past their resolve deadline.")
    ] = False,
    now: Annotated[str | None, typer.Option("--now", help="Count overdue at this time.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON records on stdout.")] = False,
) -> None:
    """List cases, newest first (no personal data)."""

    def body() -> None:
        from gridmap.db.cases import list_cases

        with _store(db) as store:
            rows, total = list_cases(
                store,
                status=status,
                grid=grid,
                overdue=True if overdue else None,
                now=now,
                limit=limit,
            )
        if as_json:
            typer.echo(json.dumps({"total": total, "data": rows}, ensure_ascii=False))
            return
        table = Table(title=f"cases ({len(rows)} of {total})")
        for col in ("id", "ticket", "status", "category", "grid", "received", "due", "overdue"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                str(r["id"]),
                r["ticket"] or "",
                r["status"],
                r["category"],
                r["grid_code"] or f"({r['suggested_grid'] or '-'})",
                r["received_at"][:16],
                (r["due_at"] or "")[:16] + (" *" if r["provisional"] else ""),
                "yes" if r["overdue"] else "",
            )
        console.print(table)

    _run(body)


@cases_app.command("show")
def cases_show(
    case_id: Annotated[int, typer.Argument(help="Case id.")],
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    as_role: AsOpt = "admin",
    unit: UnitOpt = None,
) -> None:
    """Show a case with its log (reading the reporter's data is audited)."""

    def body() -> None:
        from gridmap.db.cases import case_log, get_case

        actor = _actor(as_role, unit)
        with _store(db) as store:
            rec = get_case(store, case_id, actor=actor, author=_AUTHOR)
            log = case_log(store, case_id, actor=actor)
        data = {**rec.to_dict(), "log": log}
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
            return
        for key in (
            "id",
            "ticket",
            "status",
            "version",
            "category",
            "description",
            "grid_code",
            "received_at",
            "due_at",
            "provisional",
            "overdue",
            "reporter_name",
            "reporter_phone",
            "address",
        ):
            console.print(f"[bold]{key}[/]: {data[key]}", highlight=False)
        for e in log:
            console.print(
                f"  v{e['version']} {e['at'][:19]} {e['actor']} ({e['role']}) "
                f"{e['action']}: {e['from']} → {e['to']} {e['note'] or ''}",
                highlight=False,
            )

    _run(body)


@cases_app.command("act")
def cases_act(
    case_id: Annotated[int, typer.Argument(help="Case id.")],
    action: Annotated[str, typer.Argument(help="accept, dispatch, start, reply, callback …")],
    db: DbOpt = None,
    note: Annotated[str | None, typer.Option("--note", help="The result (reply).")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (reject, return …).")] = None,
    satisfaction: Annotated[
        str | None, typer.Option("--satisfaction", help="satisfied | fairly_satisfied | …")
    ] = None,
    handler: Annotated[
        str | None, typer.Option("--handler", help="KIND:UNIT, e.g. grid:320104001001001.")
    ] = None,
    co_handler: Annotated[
        list[str] | None, typer.Option("--co-handler", help="KIND:UNIT[@DUE] (repeatable).")
    ] = None,
    due: Annotated[str | None, typer.Option("--due", help="New or sign-in deadline.")] = None,
    department: Annotated[
        list[str] | None, typer.Option("--department", help="Summoned department (repeatable).")
    ] = None,
    grid: Annotated[str | None, typer.Option("--grid", help="place: the grid code.")] = None,
    into: Annotated[int | None, typer.Option("--into", help="merge: the case id.")] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="The version you read (default: current).")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="When (default: now).")] = None,
    as_role: AsOpt = "admin",
    unit: UnitOpt = None,
) -> None:
    """Apply an action of the state machine to a case."""

    def body() -> None:
        from gridmap.db.cases import act

        with _store(db) as store:
            rec = act(
                store,
                case_id,
                action,
                actor=_actor(as_role, unit),
                author=_AUTHOR,
                expected_version=version,
                at=at,
                note=note,
                reason=reason,
                satisfaction=satisfaction,
                handler=handler,
                co_handlers=co_handler or [],
                due=due,
                departments=department or [],
                grid=grid,
                into=into,
            )
        console.print(
            f"case {rec.id}: {action} → {rec.case.status} (version {rec.case.version})",
            highlight=False,
        )

    _run(body)


@cases_app.command("sweep")
def cases_sweep(
    db: DbOpt = None,
    now: Annotated[str | None, typer.Option("--now", help="Sweep at this time (ISO).")] = None,
) -> None:
    """Write the timer events due now (idempotent: a second sweep writes nothing)."""

    def body() -> None:
        from gridmap.db.cases import sweep_cases

        with _store(db) as store:
            res = sweep_cases(store, now=now)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(res.counts().items())) or "none due"
        console.print(
            f"swept at {res.now.isoformat()}: {res.written} new events ({counts})",
            highlight=False,
        )

    _run(body)


@cases_app.command("reroute")
def cases_reroute(db: DbOpt = None) -> None:
    """Flag open cases whose point another published grid covers now."""

    def body() -> None:
        from gridmap.db.cases import reroute_cases

        with _store(db) as store:
            n = reroute_cases(store, author=_AUTHOR)
        console.print(f"{n} open cases flagged for re-routing")

    _run(body)


@calendar_app.command("status")
def calendar_status_cmd(
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Which years follow a State Council notice (the others are provisional)."""

    def body() -> None:
        from gridmap.db.cases import calendar_status

        with _store(db) as store:
            st = calendar_status(store)
        rows = [
            {"year": int(y), "official": bool(o), "source": str(s)}
            for y, o, s in st[["year", "official", "source"]].itertuples(index=False)
        ]
        if as_json:
            typer.echo(json.dumps({"years": rows, **st.attrs}, ensure_ascii=False))
            return
        for r in rows:
            kind = "official" if r["official"] else "PROVISIONAL"
            console.print(f"{r['year']}: {kind} ({r['source']})", highlight=False)
        console.print(f"open cases with provisional deadlines: {st.attrs['open_provisional']}")

    _run(body)


@calendar_app.command("load")
def calendar_load(
    file: Annotated[Path, typer.Argument(help="CSV of a year's notice: 日期,类型[,名称].")],
    db: DbOpt = None,
    year: Annotated[
        int | None, typer.Option("--year", help="The year (default: the file's).")
    ] = None,
) -> None:
    """Load a year's holidays and make-up workdays; recompute provisional deadlines."""

    def body() -> None:
        from gridmap.db.cases import load_calendar

        with _store(db) as store:
            out = load_calendar(store, file, author=_AUTHOR, year=year)
        console.print(
            f"{out['year']} loaded ({out['days']} days); {out['recomputed']} open cases got "
            "recomputed deadlines",
            highlight=False,
        )

    _run(body)


def _fmt(value: Any, col: str) -> str:
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if col.endswith("_rate") or col == "ratio":
        return f"{value:.0%}" if col.endswith("_rate") else f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)


def _emit(
    frame: Any,
    *,
    title: str,
    shown: tuple[str, ...],
    as_json: bool,
    csv: Path | None,
    meta: dict[str, Any],
) -> None:
    from gridmap.cases import label_columns

    if csv is not None:
        label_columns(frame).to_csv(csv, index=False, encoding="utf-8-sig")
        console.print(f"{len(frame)} rows written to {csv} (UTF-8 with BOM, Chinese headers)")
        return
    if as_json:
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        typer.echo(json.dumps({**meta, "data": records}, ensure_ascii=False, default=str))
        return
    table = Table(title=title)
    for col in shown:
        table.add_column(col, justify="left" if col in ("unit", "grid_code") else "right")
    for rec in frame.to_dict("records"):
        table.add_row(*(_fmt(rec[c], c) for c in shown))
    console.print(table)


#: The inclusive last day of a period is the day before its exclusive end.
_DAY = timedelta(days=1)
PeriodMonth = Annotated[str | None, typer.Option("--month", help="YYYY-MM (default: this month).")]
PeriodFrom = Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")]
PeriodTo = Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (inclusive).")]
CsvOpt = Annotated[
    Path | None, typer.Option("--csv", help="Write a CSV (UTF-8 with BOM, Chinese headers).")
]


def _period(month: str | None, start: str | None, end: str | None) -> Any:
    import datetime as dt

    from gridmap.cases import TZ, stats_period

    if month is None and not start and not end:
        month = dt.datetime.now(TZ).strftime("%Y-%m")
    return stats_period(month=month, start=start, end=end)


@cases_app.command("stats")
def cases_stats(
    db: DbOpt = None,
    by: Annotated[
        str, typer.Option("--by", help="grid | community | subdistrict | department | staff.")
    ] = "grid",
    month: PeriodMonth = None,
    start: PeriodFrom = None,
    end: PeriodTo = None,
    category: Annotated[str | None, typer.Option("--category", help="Only this category.")] = None,
    now: Annotated[str | None, typer.Option("--now", help="Judge overdue at this time.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    csv: CsvOpt = None,
) -> None:
    """Show the performance figures (按时办结率, times, 满意率) of the cases of a period."""

    def body() -> None:
        from gridmap.cases.stats import check_by
        from gridmap.db.case_stats import store_case_stats

        check_by(by)
        lo, hi = _period(month, start, end)
        with _store(db) as store:
            frame = store_case_stats(store, by=by, start=lo, end=hi, category=category, now=now)
        meta = {
            "by": by,
            "from": frame.attrs["start"],
            "to": frame.attrs["end"],
            "now": frame.attrs["now"],
            "category": category,
        }
        shown = (
            "unit",
            "received",
            "open",
            "overdue",
            "due",
            "on_time_rate",
            "answer_hours_median",
            "resolve_days_median",
            "resolve_days_p90",
            "satisfaction_rate",
            "reopen_rate",
            "per_1000_households",
        )
        period = f"{lo:%Y-%m-%d} – {(hi - _DAY):%Y-%m-%d}" if lo and hi else "all"
        _emit(
            frame,
            title=f"cases by {by}, received {period}",
            shown=shown,
            as_json=as_json,
            csv=csv,
            meta=meta,
        )

    _run(body)


@cases_app.command("workload")
def cases_workload(
    db: DbOpt = None,
    month: PeriodMonth = None,
    start: PeriodFrom = None,
    end: PeriodTo = None,
    community: Annotated[
        str | None, typer.Option("--community", help="Only this community's grids.")
    ] = None,
    factor: Annotated[
        float, typer.Option("--factor", help="Far above: more than FACTOR × community median.")
    ] = 1.5,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    csv: CsvOpt = None,
) -> None:
    """Cases per worker per month by grid; names the grids far above their community's median."""

    def body() -> None:
        from gridmap.db.case_stats import store_workload

        lo, hi = _period(month, start, end)
        with _store(db) as store:
            frame = store_workload(store, start=lo, end=hi, community=community, factor=factor)
        far = frame.loc[frame["far_above"], "grid_code"].tolist()
        meta = {"from": lo.isoformat(), "to": hi.isoformat(), "factor": factor, "far_above": far}
        shown = (
            "grid_code",
            "community_id",
            "cases",
            "workers",
            "cases_per_worker_month",
            "community_median",
            "ratio",
            "far_above",
        )
        _emit(
            frame,
            title=f"workload {lo:%Y-%m-%d} – {(hi - _DAY):%Y-%m-%d}",
            shown=shown,
            as_json=as_json,
            csv=csv,
            meta=meta,
        )
        if not as_json and csv is None:
            console.print(
                f"far above (> {factor:g}× the community median): {', '.join(far) or 'none'}",
                highlight=False,
            )

    _run(body)
