"""``gridmap visits``: the grid chief's round (六必访, 四清) from the command line.

``due`` lists a grid's visits for a month, ``record`` stores a visit (a
follow-up can open a case in the same step), ``route`` plans a worker's walk for
a day (``--map`` writes it as HTML), ``register`` prints or exports the 四清
register (``--csv`` for Excel), ``moved`` says which visits a redraw handed to
other grids or staff. The command line acts as an operator (admin); ``--as``
and ``--unit`` act as another role, e.g. ``--as grid_worker --unit <grid>``.
Reads of personal data are audited like the HTTP API's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gridmap.cli.app import AssetsOpt, DbOpt, _run, app, console

__all__: list[str] = []

visits_app = typer.Typer(
    help="Visits (走访): due lists, records, day routes, the 四清 register.", no_args_is_help=True
)
app.add_typer(visits_app, name="visits")

_AUTHOR = "gridmap cli"
AsOpt = Annotated[
    str, typer.Option("--as", help="Act as this role (admin, dispatcher, grid_worker …).")
]
UnitOpt = Annotated[
    str | None, typer.Option("--unit", help="The org unit of --as (a grid code, community id …).")
]
RulesOpt = Annotated[
    Path | None,
    typer.Option("--rules", help="Visit rules JSON merged over the shipped ones (categories …)."),
]


def _store(db: str | None) -> Any:
    from gridmap.db import Store, database_url

    return Store.from_url(database_url(db))


def _actor(role: str, unit: str | None) -> Any:
    from gridmap.cases import Actor

    return Actor(_AUTHOR, role, unit)


def _rules(path: Path | None) -> Any:
    from gridmap.visits import default_rules, load_rules

    return default_rules() if path is None else load_rules(path)


def _plain(frame: Any) -> list[dict[str, Any]]:
    out = frame.copy()
    for c in ("period_start", "period_end", "visited_at"):
        if c in out.columns:
            out[c] = out[c].dt.strftime("%Y-%m-%d").astype(object).where(out[c].notna(), None)
    out = out.astype(object).where(out.notna(), None)
    return [dict(r) for r in out.to_dict("records")]


@visits_app.command("due")
def visits_due(
    grid: Annotated[str, typer.Option("--grid", help="The grid code.")],
    month: Annotated[str, typer.Option("--month", help="The month, e.g. 2026-09.")],
    db: DbOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Judge overdue at this date (default: now).")
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Only this category (repeatable).")
    ] = None,
    rules: RulesOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON records on stdout.")] = False,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Write the list as CSV (UTF-8 with BOM).")
    ] = None,
    as_role: AsOpt = "admin",
    unit: UnitOpt = None,
) -> None:
    """List a grid's visits for a month: who, which categories, who holds it, status."""

    def body() -> None:
        from gridmap.db.visits import due_list

        book = _rules(rules)
        with _store(db) as store:
            due = due_list(
                store,
                grid=grid,
                month=month,
                author=_AUTHOR,
                actor=_actor(as_role, unit),
                as_of=as_of,
                rules=book,
                categories=category,
            )
        if csv is not None:
            due.to_csv(csv, index=False, encoding="utf-8-sig")
        if as_json:
            typer.echo(
                json.dumps(
                    {"grid_code": grid, "month": month, "data": _plain(due)}, ensure_ascii=False
                )
            )
            return
        table = Table(title=f"visits due, grid {grid}, {month} ({len(due)})")
        for col in ("target", "categories", "period", "staff", "status", "visited"):
            table.add_column(col)
        for r in _plain(due):
            table.add_row(
                r["household_id"] or f"{r['building_id']} {r['target_name'] or ''}",
                r["categories"],
                r["period"],
                f"{r['staff_id'] or '(vacant)'} {r['staff_name'] or ''} ({r['role']})",
                r["status"],
                r["visited_at"] or "",
            )
        console.print(table)
        counts = due["status"].value_counts().to_dict()
        console.print(
            ", ".join(f"{k} {counts.get(k, 0)}" for k in ("done", "overdue", "due")),
            highlight=False,
        )

    _run(body)


@visits_app.command("record")
def visits_record(
    staff: Annotated[str, typer.Option("--staff", help="Who visited (staff id).")],
    at: Annotated[str, typer.Option("--at", help="When, e.g. '2026-09-10 10:00' (Beijing).")],
    household: Annotated[
        str | None, typer.Option("--household", help="The household visited.")
    ] = None,
    building: Annotated[
        str | None, typer.Option("--building", help="For an organisation: its building.")
    ] = None,
    outcome: Annotated[
        str, typer.Option("--outcome", help="visited | not_home | refused | moved_out (已走访 …).")
    ] = "visited",
    notes: Annotated[str | None, typer.Option("--notes", help="What was found.")] = None,
    follow_up: Annotated[
        str | None, typer.Option("--follow-up", help="What needs following up.")
    ] = None,
    open_case: Annotated[
        bool | None,
        typer.Option(
            "--open-case/--no-case",
            help="Open a case for the follow-up (default: when --follow-up is given).",
        ),
    ] = None,
    case_category: Annotated[
        str, typer.Option("--case-category", help="The case's category (noise, 消防隐患 …).")
    ] = "other",
    db: DbOpt = None,
    now: Annotated[
        str | None, typer.Option("--now", help="The current time (default: now).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The stored record as JSON.")] = False,
    as_role: AsOpt = "admin",
    unit: UnitOpt = None,
) -> None:
    """Record a visit (one transaction; a follow-up can open a case in the same step)."""

    def body() -> None:
        from gridmap.db.visits import record_visit

        record = {
            "staff_id": staff,
            "visited_at": at,
            "household_id": household,
            "building_id": building,
            "outcome": outcome,
            "notes": notes,
            "follow_up_text": follow_up,
        }
        with _store(db) as store:
            rec = record_visit(
                store,
                record,
                author=_AUTHOR,
                actor=_actor(as_role, unit),
                now=now,
                open_case=open_case,
                case_category=case_category,
            )
        if as_json:
            typer.echo(json.dumps(rec, ensure_ascii=False))
            return
        case = f"; case {rec['case_id']} opened" if rec["case_id"] is not None else ""
        console.print(
            f"visit {rec['id']} recorded: {rec['household_id'] or rec['building_id']} "
            f"{rec['outcome_zh']} by {rec['staff_id']} at {rec['visited_at'][:16]} "
            f"(grid {rec['grid_code']}){case}",
            highlight=False,
        )

    _run(body)


@visits_app.command("route")
def visits_route(
    staff: Annotated[str, typer.Option("--staff", help="The worker's staff id.")],
    date: Annotated[str, typer.Option("--date", help="The day, e.g. 2026-09-18.")],
    db: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many stops.")] = 20,
    map_file: Annotated[
        Path | None, typer.Option("--map", help="Write the route map (HTML) here.")
    ] = None,
    assets: AssetsOpt = "inline",
    rules: RulesOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    as_role: AsOpt = "admin",
    unit: UnitOpt = None,
) -> None:
    """Plan a worker's walk for a day through their open visits (overdue first)."""

    def body() -> None:
        import datetime as dt

        from gridmap.db.visits import day_route
        from gridmap.errors import InputError

        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise InputError(f"--date {date!r} is not a day; use YYYY-MM-DD") from None
        with _store(db) as store:
            res = day_route(
                store,
                staff_id=staff,
                date=day,
                author=_AUTHOR,
                actor=_actor(as_role, unit),
                limit=limit,
                rules=_rules(rules),
            )
        data = res.to_dict()
        if map_file is not None:
            from gridmap.maps import visit_route_map

            labels = [
                f"{b} {n or ''}".strip()
                for b, n in zip(res.stops["building_id"], res.stops["name"], strict=True)
            ]
            visit_route_map(
                res.route,
                plan=res.plan,
                grid_code=res.grids[0] if res.grids else None,
                title=f"{res.staff_name or res.staff_id} {day.isoformat()}",
                labels=labels,
                assets=assets,
            ).save(str(map_file))
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
            return
        if not data["stops"]:
            console.print(f"{staff}: nothing open on {day.isoformat()} (an empty route)")
            return
        for s in data["stops"]:
            console.print(
                f"{s['seq']:>3}. {s['building_id']} {s['name'] or ''}  "
                f"{', '.join(s['household_ids']) or '(organisation)'}  +{s['leg_m']:.0f} m",
                highlight=False,
            )
        console.print(
            f"walk {data['total_m']:.0f} m (list order {data['list_order_m']:.0f} m, "
            f"lower bound {data['lower_bound_m']:.0f} m)"
            + (f"; map: {map_file}" if map_file else ""),
            highlight=False,
        )

    _run(body)


@visits_app.command("register")
def visits_register(
    db: DbOpt = None,
    grid: Annotated[
        list[str] | None, typer.Option("--grid", help="Only this grid (repeatable).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The register date (default: now).")
    ] = None,
    window_days: Annotated[
        int, typer.Option("--window-days", help="Visits within this many days count.")
    ] = 30,
    rules: RulesOpt = None,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="Write an Excel-ready CSV (UTF-8 with BOM, Chinese headers)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON records on stdout.")] = False,
    as_role: AsOpt = "admin",
    unit: UnitOpt = None,
) -> None:
    """Show the 四清 register per grid: households by kind, buildings, open hazards, visits."""

    def body() -> None:
        from gridmap.db.visits import grid_register

        with _store(db) as store:
            reg = grid_register(
                store,
                actor=_actor(as_role, unit),
                grids=grid,
                as_of=as_of,
                window_days=window_days,
                rules=_rules(rules),
                header="code",
            )
        if csv is not None:
            from gridmap.visits import register_labels

            labels = register_labels(_rules(rules))
            reg.rename(columns={c: f"{labels[c][0]} {labels[c][1]}" for c in reg.columns}).to_csv(
                csv, index=False, encoding="utf-8-sig"
            )
            console.print(f"register of {len(reg)} grids written to {csv}", highlight=False)
        if as_json:
            typer.echo(json.dumps(_plain(reg), ensure_ascii=False))
            return
        if csv is not None:
            return
        table = Table(title=f"四清 register ({len(reg)} grids)")
        for col in (
            "grid",
            "households",
            "must-visit",
            "organisations",
            "hazards",
            "disputes",
            "visited",
        ):
            table.add_column(col)
        for r in _plain(reg):
            table.add_row(
                r["grid_code"],
                str(r["households"]),
                str(r["must_visit"]),
                str(r.get("n_organisation", "")),
                str(r["open_hazards"]),
                str(r["open_disputes"]),
                f"{r['visited']} ({r['share_visited']:.0%})"
                if r["share_visited"] is not None
                else str(r["visited"]),
            )
        console.print(table)

    _run(body)


@visits_app.command("moved")
def visits_moved(
    old_plan: Annotated[int, typer.Argument(help="The plan the visits were planned on.")],
    new_plan: Annotated[int, typer.Argument(help="The redrawn (republished) plan.")],
    month: Annotated[str, typer.Option("--month", help="The month, e.g. 2026-09.")],
    db: DbOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Judge overdue at this date.")
    ] = None,
    rules: RulesOpt = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Write the moved visits here.")] = None,
) -> None:
    """After a redraw: which of the month's visits moved to another grid or staff member."""

    def body() -> None:
        from gridmap.db.visits import redraw_visits

        with _store(db) as store:
            out = redraw_visits(
                store,
                old_plan_id=old_plan,
                new_plan_id=new_plan,
                month=month,
                author=_AUTHOR,
                as_of=as_of,
                rules=_rules(rules),
            )
        moved = out[out["moved"] | (out["previous_staff_id"] != out["staff_id"])]
        if csv is not None:
            moved.to_csv(csv, index=False, encoding="utf-8-sig")
        console.print(
            f"{len(out)} visits in {month}: {int(out['moved'].sum())} moved to another grid, "
            f"{len(moved)} to another grid or staff member",
            highlight=False,
        )

    _run(body)
