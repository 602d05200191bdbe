"""``gridmap assign``: staff a plan file or a stored plan, and print the shortfalls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gridmap.cli.app import ColumnOpt, CrsOpt, DbOpt, LayerOpt, PresetOpt, _run, app, console
from gridmap.cli.inputs import _layer_map

__all__: list[str] = []


@app.command()
def assign(
    plan_file: Annotated[
        Path | None,
        typer.Argument(help="Plan GeoPackage (from gridmap partition); or use --plan-id."),
    ] = None,
    staff: Annotated[
        Path | None,
        typer.Option("--staff", help="File with the staff layer (default with --plan-id: stored)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Plan to write (default: update PLAN_FILE).")
    ] = None,
    plan_id: Annotated[
        int | None, typer.Option("--plan-id", help="Staff a stored plan and save its posts.")
    ] = None,
    db: DbOpt = None,
    max_distance: Annotated[
        float, typer.Option(help="Nobody is posted further than this from home (m).")
    ] = 1500.0,
    workers: Annotated[int, typer.Option(help="Worker posts (网格员) per grid.")] = 2,
    workers_large: Annotated[
        int, typer.Option(help="Worker posts of a grid above --large-households.")
    ] = 3,
    large_households: Annotated[
        float, typer.Option(help="Households above which a grid gets --workers-large.")
    ] = 350,
    max_posts: Annotated[
        int, typer.Option(help="Posts per person when the roster has no max_posts column.")
    ] = 1,
    move_cost: Annotated[
        float, typer.Option(help="Cost (m) of moving someone already serving (stability).")
    ] = 20000.0,
    previous: Annotated[
        Path | None,
        typer.Option(
            help="Earlier staffed plan (e.g. before a re-partition) whose posts to keep; "
            "default: the plan's own assignments layer."
        ),
    ] = None,
    preset: PresetOpt = None,
    layer: LayerOpt = None,
    column: ColumnOpt = None,
    crs: CrsOpt = None,
) -> None:
    """Staff every grid: one resident grid chief (网格长) and 2–3 workers (网格员).

    Serving people keep their posts unless a rule forces a move; every move is printed.
    """

    def body() -> None:
        from gridmap.errors import InputError, LayerError
        from gridmap.io import parse_column_map, read_layers, read_plan, write_plan_assignments
        from gridmap.staffing import assign_staff

        if (plan_file is None) == (plan_id is None):
            raise InputError("give either a plan file or --plan-id N (a stored plan)")
        rules: dict[str, Any] = {
            "max_distance": max_distance,
            "workers": workers,
            "workers_large": workers_large,
            "large_households": large_households,
            "max_posts": max_posts,
            "move_cost": move_cost,
        }
        if previous is not None:
            before = read_plan(previous).assignments
            if before is None:
                raise InputError(
                    f"{previous} has no assignments layer; staff it first with "
                    f"`gridmap assign {previous} --staff FILE`"
                )
            rules["previous"] = before
        raw: dict[str, Any] = {}
        if staff is not None:
            source: Any = staff if staff.suffix.lower() == ".gpkg" else {"staff": staff}
            raw = read_layers(
                source,
                layer_map=_layer_map(layer),
                column_map=parse_column_map(column),
                preset=preset,
            )
            if "staff" not in raw:
                raise LayerError(
                    f"{staff.name} has no staff layer; name it 'staff' or map it with "
                    "--layer staff=YOUR_LAYER"
                )
        if plan_id is not None:
            from gridmap.db import Store, database_url, load_layers, load_plan, save_assignments
            from gridmap.validation import validate_staff

            with Store.from_url(database_url(db)) as store:
                plan = load_plan(store, plan_id)
                stored = load_layers(store, sorted(set(plan.grids["community_id"])), crs=plan.crs)
                if raw:
                    roster, _ = validate_staff(
                        raw["staff"], stored.buildings, crs=plan.crs, assume_crs=crs
                    )
                elif stored.staff is not None:
                    roster = stored.staff
                else:
                    raise LayerError(
                        f"the store has no staff for plan {plan_id}'s communities; import a "
                        "roster or pass --staff FILE"
                    )
                result = assign_staff(plan, roster, **rules)
                rec = save_assignments(store, plan_id, result.assignments, author="cli")
            _print_staffing(result)
            console.print(f"saved the posts of plan {rec.id} (version {rec.version})")
            return
        assert plan_file is not None
        if staff is None:
            raise InputError("--staff FILE is needed with a plan file")
        plan = read_plan(plan_file)
        staff_layer = _staff_layer(raw, plan_file, plan, crs)
        result = assign_staff(plan, staff_layer, **rules)
        dest = write_plan_assignments(plan_file, result.assignments, out=out)
        _print_staffing(result)
        console.print(f"wrote {dest} (assignments layer)")

    _run(body)


def _staff_layer(raw: dict[str, Any], plan_file: Path, plan: Any, crs: str | None) -> Any:
    """Validate a staff layer against the footprints stored in the plan file."""
    from gridmap.io import read_layer
    from gridmap.validation import validate_staff

    buildings = read_layer(plan_file, layer="buildings")
    staff, report = validate_staff(raw["staff"], buildings, crs=plan.crs, assume_crs=crs)
    for f in report.findings:
        if f.severity in ("rejected", "repaired", "warning"):
            console.print(f"[yellow]{f.severity}[/] staff: {f.message}", highlight=False)
    return staff


def _print_staffing(result: Any, *, limit: int = 12) -> None:
    """Print posts filled and the shortfalls (网格长 chief / 网格员 workers)."""
    s = result.summary
    console.print(
        f"staffing: {s.get('filled', 0):,}/{s.get('posts', 0):,} posts filled — chiefs 网格长 "
        f"{s.get('chiefs_filled', 0):,}, workers 网格员 {s.get('workers_filled', 0):,}; "
        f"{s.get('vacant', 0):,} vacant",
        highlight=False,
    )
    short = result.shortfalls
    if len(short):
        console.print(f"shortfalls 缺岗 ({len(short)} grid post(s) short):", highlight=False)
        for row in short.head(limit).itertuples():
            console.print(
                f"  {row.grid_code} {row.role} ×{row.missing}: {row.reason}\n"
                f"    → {row.suggestion}",
                highlight=False,
                soft_wrap=True,
            )
        if len(short) > limit:
            console.print(f"  … and {len(short) - limit} more (see the assignments layer)")
    if s.get("kept", 0) + s.get("moved", 0) + s.get("released", 0):  # there were posts before
        moves = result.moves
        moves = moves.iloc[moves["from_grid"].isna().argsort(kind="stable")]  # serving first
        console.print(
            f"moves 调整: kept {s.get('kept', 0):,} post(s); {s.get('moved', 0):,} moved, "
            f"{s.get('released', 0):,} released, {s.get('new', 0):,} newly assigned",
            highlight=False,
        )
        for m in moves.head(2 * limit).to_dict("records"):
            src, dst = (
                f"{m[f'{e}_role']} of {m[f'{e}_grid']}"
                if isinstance(m[f"{e}_grid"], str)
                else "no post"
                for e in ("from", "to")
            )
            console.print(
                f"  {m['staff_id']}: {src} → {dst}: {m['reason']}", highlight=False, soft_wrap=True
            )
        if len(moves) > 2 * limit:
            console.print(f"  … and {len(moves) - 2 * limit} more (see the changed posts)")
