"""The ``gridmap`` command line.

Heavy modules are imported inside the commands, so ``gridmap --help`` is fast.
Every gridmap error is shown as one clear line and exit code 1; usage errors
exit with 2.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from gridmap.layers import Layers, ValidationReport

__all__ = ["app", "main"]

app = typer.Typer(
    name="gridmap",
    help="Community grid (网格) management: partition, staff, locate, map.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

# --------------------------------------------------------------------------- shared options

InputFile = Annotated[
    Path,
    typer.Argument(help="GeoPackage with the canonical layers, or a folder of layer files."),
]
PresetOpt = Annotated[
    str | None,
    typer.Option("--preset", help="Input adaptation, e.g. 'osm' for OpenStreetMap extracts."),
]
LayerOpt = Annotated[
    list[str] | None,
    typer.Option("--layer", help="Map a layer: CANONICAL=SOURCE_LAYER (repeatable)."),
]
ColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        "--map",
        help="Map a column: LAYER.CANONICAL=SOURCE_COLUMN (repeatable; --map is an alias, "
        "except on partition where --map writes the HTML map).",
    ),
]
CrsOpt = Annotated[
    str | None,
    typer.Option("--crs", help="CRS to assume for layers without one, e.g. EPSG:4326."),
]
ReprojectOpt = Annotated[
    bool, typer.Option("--reproject", help="Accept layers in different CRSs and reproject them.")
]
UnitAreaOpt = Annotated[
    float, typer.Option("--unit-area", help="m² per household when estimating households.")
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: GRIDMAP_DATABASE_URL or sqlite:///gridmap.db)."
    ),
]
CommunityOpt = Annotated[
    list[str] | None,
    typer.Option("--community", help="Only these community ids (repeatable)."),
]


def _check_assets(value: str) -> str:
    from gridmap.map_assets import check_assets

    try:
        return check_assets(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


AssetsOpt = Annotated[
    str,
    typer.Option(
        "--assets",
        callback=_check_assets,
        help="Leaflet/jQuery/plugins of the HTML map: inline (embedded, ~300 kB more: the file "
        "works without internet), cdn (small file, loads them from public CDNs) or a URL "
        "prefix serving gridmap/static/vendor/ (e.g. http://gis.local/gridmap-static/).",
    ),
]
DeriveOpt = Annotated[
    bool,
    typer.Option(
        "--derive-communities",
        help="If the file has no communities (e.g. OpenStreetMap), derive stand-in areas from "
        "the main roads, water and district borders (>= 1,500 households each; reported).",
    ),
]
DerivedPrefixOpt = Annotated[
    str,
    typer.Option(
        "--derived-prefix",
        help="Id prefix of derived communities (D → D001, D002 …); give each data set its own "
        "(e.g. NJ, SH) when several go into one store.",
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _run(fn: Callable[[], Any]) -> Any:
    """Run a command body, turning gridmap errors into one clear line and exit 1."""
    from gridmap.errors import GridmapError

    try:
        return fn()
    except GridmapError as exc:
        raise _fail(str(exc)) from None


def _layer_map(items: list[str] | None) -> dict[str, str]:
    from gridmap.errors import InputError

    out = {}
    for item in items or []:
        canonical, sep, source = item.partition("=")
        if not sep or not canonical or not source:
            raise InputError(f"cannot read --layer {item!r}; write CANONICAL=SOURCE_LAYER")
        out[canonical] = source
    return out


def _check(
    file: Path,
    *,
    preset: str | None,
    layer: list[str] | None,
    column: list[str] | None,
    crs: str | None,
    reproject: bool,
    unit_area: float,
    coords: str | None = None,
    derive: bool = False,
    derived_prefix: str = "D",
) -> tuple[Layers | None, ValidationReport]:
    from gridmap.io import parse_column_map, read_layers
    from gridmap.layers import check_layers

    with console.status(f"reading {file.name}…"):
        raw = read_layers(
            file,
            layer_map=_layer_map(layer),
            column_map=parse_column_map(column),
            preset=preset,
            coords=coords,
        )
    note = _derive_communities(raw, unit_area=unit_area, prefix=derived_prefix) if derive else None
    with console.status("validating…"):
        layers, report = check_layers(raw, assume_crs=crs, reproject=reproject, unit_area=unit_area)
    if note is not None:
        report.add("communities", *note)
    return layers, report


def _derive_communities(
    raw: dict[str, Any], *, unit_area: float, prefix: str = "D"
) -> tuple[Any, str, str] | None:
    """Add derived communities to ``raw`` when it has none; return a finding to report, if any."""
    from gridmap.areas import derive_communities
    from gridmap.errors import InputError

    if "communities" in raw:
        return ("info", "derive_not_needed", "the file has communities; none were derived")
    try:
        with console.status("deriving community areas from the main roads…"):
            raw["communities"] = derive_communities(raw, unit_area=unit_area, prefix=prefix)
    except InputError as exc:
        return ("error", "derive_failed", f"cannot derive communities: {exc}")
    return None


def _print_validation(report: ValidationReport, *, title: str) -> None:
    table = Table(title=title, show_lines=False)
    table.add_column("layer")
    table.add_column("rows in", justify="right")
    table.add_column("rows kept", justify="right")
    for name, n in report.rows_in.items():
        kept = report.rows_out.get(name)
        table.add_row(name, f"{n:,}", "-" if kept is None else f"{kept:,}")
    console.print(table)
    styles = {
        "error": "bold red",
        "rejected": "red",
        "repaired": "yellow",
        "warning": "yellow",
        "info": "cyan",
    }
    for f in report.findings:
        ids = f" [dim]({', '.join(f.ids[:5])}{', …' if len(f.ids) > 5 else ''})[/]" if f.ids else ""
        console.print(
            f"[{styles[f.severity]}]{f.severity:>8}[/] {f.layer}: {f.message}{ids}",
            highlight=False,
            soft_wrap=True,
        )
    if report.crs:
        console.print(f"projected CRS: {report.crs}")
    verdict = "[bold green]valid[/]" if report.ok else "[bold red]NOT valid[/]"
    console.print(f"{verdict} — {report.summary()}")


def _load_layers(
    file: Path,
    *,
    preset: str | None,
    layer: list[str] | None,
    column: list[str] | None,
    crs: str | None,
    reproject: bool,
    unit_area: float,
    communities: list[str] | None = None,
    derive: bool = False,
    derived_prefix: str = "D",
) -> Layers:
    from gridmap.errors import NotFoundError

    layers, report = _check(
        file,
        preset=preset,
        layer=layer,
        column=column,
        crs=crs,
        reproject=reproject,
        unit_area=unit_area,
        derive=derive,
        derived_prefix=derived_prefix,
    )
    if layers is None:
        _print_validation(report, title=f"validation of {file.name}")
        raise _fail(f"{file.name} did not pass validation; fix the errors above")
    for f in report.findings:
        if f.code == "derived_communities":
            console.print(f"[yellow] warning[/] {f.layer}: {f.message}", highlight=False)
    problems = [f for f in report.findings if f.severity in ("rejected", "repaired")]
    if problems:
        console.print(
            f"[yellow]{len(problems)} validation findings[/] (run `gridmap validate "
            f"{file}` for the report)"
        )
    if communities:
        known = set(layers.communities["community_id"])
        unknown = sorted(set(communities) - known)
        if unknown:
            raise NotFoundError(
                f"unknown community id(s) {', '.join(unknown)}; {file.name} has "
                f"{', '.join(sorted(known)[:10])}{' …' if len(known) > 10 else ''}"
            )
        layers = layers.subset(communities)
    return layers


# --------------------------------------------------------------------------- commands


#: Fixed "last change" stamped into synthetic GeoPackages, so the same seed gives the same bytes.
SYNTH_TIMESTAMP = "2000-01-01T00:00:00Z"


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Destination GeoPackage.")],
    buildings: Annotated[
        int, typer.Option("--buildings", "-n", help="About how many buildings.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same city).")] = 0,
) -> None:
    """Generate a seeded synthetic city (all canonical layers) into a GeoPackage.

    The same seed and size give the same file, byte for byte.
    """

    def body() -> None:
        from gridmap.io import write_layers
        from gridmap.synth import synth_city

        with console.status(f"generating a city of ~{buildings:,} buildings…"):
            raw = synth_city(n_buildings=buildings, seed=seed)
        with console.status(f"writing {out}…"):
            write_layers(raw, out, timestamp=SYNTH_TIMESTAMP)
        counts = ", ".join(f"{len(g):,} {n}" for n, g in raw.items())
        console.print(f"wrote {out}: {counts}")

    _run(body)


@app.command()
def validate(
    file: InputFile,
    preset: PresetOpt = None,
    layer: LayerOpt = None,
    column: ColumnOpt = None,
    crs: CrsOpt = None,
    reproject: ReprojectOpt = False,
    unit_area: UnitAreaOpt = 90.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    coords: Annotated[
        str | None,
        typer.Option(
            "--coords",
            help="The files' lon/lat are really gcj02 (AMap/Tencent/WeChat) or bd09 (Baidu): "
            "convert them to WGS84.",
        ),
    ] = None,
    derive: DeriveOpt = False,
    derived_prefix: DerivedPrefixOpt = "D",
) -> None:
    """Validate input layers and print the report (exit code 0 when valid, 1 when not)."""

    def body() -> None:
        _, report = _check(
            file,
            preset=preset,
            layer=layer,
            column=column,
            crs=crs,
            reproject=reproject,
            unit_area=unit_area,
            coords=coords,
            derive=derive,
            derived_prefix=derived_prefix,
        )
        if as_json:
            sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
        else:
            _print_validation(report, title=f"validation of {file.name}")
        if not report.ok:
            raise typer.Exit(1)

    _run(body)


def _progress_bar(label: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        f"[progress.description]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _partition(
    layers: Layers,
    *,
    min_households: int,
    max_households: int,
    target: int | None,
    seed: int,
    jobs: int,
    previous: Any = None,
    locked: list[str] | None = None,
) -> Any:
    from gridmap.partition import partition

    with _progress_bar("partitioning communities") as bar:
        task = bar.add_task("partition", total=len(layers.communities))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return partition(
            layers,
            min_households=min_households,
            max_households=max_households,
            target=target,
            seed=seed,
            n_jobs=jobs,
            previous=previous,
            locked=locked,
            progress=progress,
        )


def _print_plan_summary(plan: Any) -> None:
    from gridmap.partition.quality import summary_text

    console.print(summary_text(plan.report), highlight=False, soft_wrap=True)


@app.command("partition")
def partition_cmd(
    file: Annotated[
        Path | None,
        typer.Argument(help="Input GeoPackage or folder; omit to read the layers from the store."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Plan GeoPackage to write (default plan.gpkg)."),
    ] = None,
    save: Annotated[bool, typer.Option("--save", help="Save the plan in the store as a draft.")] = (
        False
    ),
    db: DbOpt = None,
    min_households: Annotated[int, typer.Option("--min", help="Fewest households per grid.")] = 200,
    max_households: Annotated[int, typer.Option("--max", help="Most households per grid.")] = 500,
    target: Annotated[
        int | None, typer.Option(help="Households to aim for (default: middle of the band).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same grids).")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes.")] = 1,
    previous: Annotated[
        Path | None, typer.Option(help="Earlier plan to keep stable (and to take locks from).")
    ] = None,
    lock: Annotated[
        list[str] | None, typer.Option("--lock", help="Grid code of PREVIOUS to keep (repeatable).")
    ] = None,
    map_html: Annotated[
        Path | None, typer.Option("--map", help="Also write the plan map (HTML).")
    ] = None,
    assets: AssetsOpt = "inline",
    report_json: Annotated[
        Path | None, typer.Option("--report", help="Also write the quality report (JSON).")
    ] = None,
    community: CommunityOpt = None,
    preset: PresetOpt = None,
    layer: LayerOpt = None,
    column: Annotated[  # --map is the HTML map here (issue 3): no alias
        list[str] | None,
        typer.Option("--column", help="Map a column: LAYER.CANONICAL=SOURCE_COLUMN (repeatable)."),
    ] = None,
    crs: CrsOpt = None,
    reproject: ReprojectOpt = False,
    unit_area: UnitAreaOpt = 90.0,
    derive: DeriveOpt = False,
    derived_prefix: DerivedPrefixOpt = "D",
) -> None:
    """Partition communities into grids within a household band; write the plan."""

    def body() -> None:
        from gridmap.errors import InputError
        from gridmap.io import read_plan, write_plan

        if lock and previous is None:
            raise InputError("--lock needs --previous PLAN.gpkg (the plan the locked grids are in)")
        if file is not None:
            layers = _load_layers(
                file,
                preset=preset,
                layer=layer,
                column=column,
                crs=crs,
                reproject=reproject,
                unit_area=unit_area,
                communities=community,
                derive=derive,
                derived_prefix=derived_prefix,
            )
        else:
            from gridmap.db import Store, database_url, load_layers

            with Store.from_url(database_url(db)) as store:
                layers = load_layers(store, community)
        prev = read_plan(previous) if previous is not None else None
        plan = _partition(
            layers,
            min_households=min_households,
            max_households=max_households,
            target=target,
            seed=seed,
            jobs=jobs,
            previous=prev,
            locked=lock,
        )
        dest = out if out is not None or save else Path("plan.gpkg")
        if dest is not None:
            write_plan(plan, dest, layers=layers)
            console.print(f"wrote {dest} ({plan.n_grids} grids)")
        if save:
            from gridmap.db import Store, database_url, save_layers, save_plan

            with Store.from_url(database_url(db)) as store, store.session(write=True) as s:
                if file is not None:  # the plan's layers go in with it, in one transaction
                    imp = save_layers(s, layers, author="cli")
                    console.print(
                        f"stored the layers of {len(imp.community_ids)} communities (import "
                        f"{imp.id})"
                    )
                rec = save_plan(s, plan, author="cli")
            console.print(
                f"saved as draft plan {rec.id} (number {rec.number}); publish it with "
                f"`gridmap publish {rec.id}`"
            )
        if report_json is not None:
            report_json.write_text(plan.report.to_json(indent=2), encoding="utf-8")
            console.print(f"wrote {report_json}")
        if map_html is not None:
            _write_plan_map(plan, layers, map_html, assets=assets)
        _print_plan_summary(plan)

    _run(body)


def _write_plan_map(
    plan: Any, layers: Layers | None, path: Path, *, announce: bool = True, assets: str = "inline"
) -> Path:
    from gridmap.maps import plan_map

    with console.status("drawing the map…"):
        m = plan_map(plan, layers=layers, assets=assets)
        path.parent.mkdir(parents=True, exist_ok=True)
        m.save(str(path))
    if announce:
        console.print(f"wrote {path}")
    return path


@app.command("map")
def map_cmd(
    plan_file: Annotated[Path, typer.Argument(help="Plan GeoPackage (from gridmap partition).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "plan.html"
    ),
    kind: Annotated[
        str, typer.Option(help="plan (grids by households) or quality (failing checks).")
    ] = "plan",
    tiles: Annotated[
        str,
        typer.Option(
            help="Base map: osm, tianditu, amap, tencent, none, or a tile URL template "
            "such as http://tiles.local/{z}/{x}/{y}.png (with --attr)."
        ),
    ] = "osm",
    tiles_key: Annotated[
        str | None, typer.Option(help="Key for tile services that need one (Tianditu).")
    ] = None,
    attr: Annotated[
        str | None, typer.Option(help="Attribution of a tile URL template (required with one).")
    ] = None,
    tiles_crs: Annotated[
        str | None,
        typer.Option(help="Datum of a tile URL template: wgs84 (default) or gcj02 (AMap-like)."),
    ] = None,
    buildings: Annotated[
        bool, typer.Option("--buildings/--no-buildings", help="Add the buildings layer.")
    ] = True,
    assets: AssetsOpt = "inline",
) -> None:
    """Draw a plan as an interactive map (HTML) for planners and dispatchers."""

    def body() -> None:
        from gridmap.errors import InputError
        from gridmap.io import read_plan, read_plan_layers
        from gridmap.maps import plan_map, quality_map

        plan = read_plan(plan_file)
        base: dict[str, Any] = {
            "tiles": None if tiles.strip().lower() == "none" else tiles,
            "tiles_key": tiles_key,
            "attr": attr,
            "tiles_crs": tiles_crs,
            "assets": assets,
        }
        with console.status("drawing the map…"):
            if kind == "plan":
                context = read_plan_layers(plan_file)
                m = plan_map(
                    plan,
                    layers=context,
                    show_buildings=buildings and context is not None,
                    **base,
                )
            elif kind == "quality":
                m = quality_map(plan, **base)
            else:
                raise InputError(f"unknown map kind {kind!r}; choose plan or quality")
            out.parent.mkdir(parents=True, exist_ok=True)
            m.save(str(out))
        console.print(f"wrote {out} ({plan.n_grids} grids)")

    _run(body)


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
        from gridmap.partition.staffing import assign_staff

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
            from gridmap.layers import validate_staff

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
    from gridmap.layers import validate_staff

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


def _store_and_publish(layers: Layers, plan: Any, url: str | None) -> Any:
    """Import the layers and the plan into the store and publish the plan."""
    from types import SimpleNamespace

    from gridmap.db import Store, database_url, publish_plan, save_layers, save_plan

    resolved = database_url(url)
    where = resolved.split("@")[-1]  # never print a password
    with console.status(f"storing in {where}…"), Store.from_url(resolved) as store:
        save_layers(store, layers, author="gridmap run")
        saved = save_plan(store, plan, author="gridmap run")
        published = publish_plan(store, saved.id, author="gridmap run")
    return SimpleNamespace(id=published.id, url=where)


@app.command()
def run(
    file: Annotated[
        Path | None,
        typer.Argument(help="Input GeoPackage (default: the bundled sample city)."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where to write results.")] = Path(
        "gridmap-out"
    ),
    min_households: Annotated[int, typer.Option("--min", help="Fewest households per grid.")] = 200,
    max_households: Annotated[int, typer.Option("--max", help="Most households per grid.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes.")] = 2,
    db: DbOpt = None,
    serve_after: Annotated[
        bool, typer.Option("--serve", help="Then serve the HTTP API on the stored plan.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8000,
    preset: PresetOpt = None,
    derive: DeriveOpt = False,
    derived_prefix: DerivedPrefixOpt = "D",
    assets: AssetsOpt = "inline",
) -> None:
    """Run the whole job: validate, partition, staff, store, write the plan and its map."""

    def body() -> None:
        from gridmap.datasets import get_path
        from gridmap.io import write_plan
        from gridmap.partition.staffing import assign_staff

        src = file or get_path("sample")
        console.print(f"[bold]gridmap[/] main job on {src}")
        layers = _load_layers(
            src,
            preset=preset,
            layer=None,
            column=None,
            crs=None,
            reproject=False,
            unit_area=90.0,
            derive=derive,
            derived_prefix=derived_prefix,
        )
        console.print(
            f"{len(layers.communities)} communities, {len(layers.buildings):,} buildings, "
            f"{int(layers.buildings['households'].sum()):,} households"
        )
        plan = _partition(
            layers,
            min_households=min_households,
            max_households=max_households,
            target=None,
            seed=seed,
            jobs=jobs,
        )
        if layers.staff is not None:
            result = assign_staff(plan, layers.staff)
            plan = result.to_plan(plan)
            _print_staffing(result)
        out_dir.mkdir(parents=True, exist_ok=True)
        plan_path = write_plan(plan, out_dir / "plan.gpkg", layers=layers)
        record = _store_and_publish(layers, plan, db)
        map_path = _write_plan_map(
            plan, layers, out_dir / "plan.html", announce=False, assets=assets
        )
        _print_plan_summary(plan)
        console.print(f"plan: {plan_path} (open it in QGIS)")
        console.print(f"map: {map_path} (open it in a browser)")
        console.print(f"stored and published as plan {record.id} in {record.url}")
        if serve_after:
            console.print(
                f"the plan's map will be at http://127.0.0.1:{port}/maps/plans/{record.id}: "
                "open it in a browser and sign in with the key below (programs send it as "
                "X-API-Key)"
            )
            serve(host="127.0.0.1", port=port, db=db, workers=1, demo=True, log_level="info")

    _run(body)


# --------------------------------------------------------------------------- HTTP service

keys_app = typer.Typer(help="API keys of the HTTP service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    db: DbOpt = None,
    workers: Annotated[int, typer.Option(help="Worker processes (uvicorn).")] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="Create an admin key and print it at start-up.")
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs); settings from GRIDMAP_* variables."""

    def body() -> None:
        import os

        import uvicorn

        from gridmap.api import Settings, create_app
        from gridmap.db import Store, database_url
        from gridmap.db.keys import create_key

        url = database_url(db)
        if demo:
            from gridmap.db import list_plans, save_layers, save_plan

            with Store.from_url(url) as store:
                if not list_plans(store, status="published"):
                    from gridmap.layers import validate_layers
                    from gridmap.partition import partition
                    from gridmap.partition.staffing import assign_staff
                    from gridmap.synth import synth_city

                    with console.status("empty store: publishing a synthetic demo city…"):
                        layers, _ = validate_layers(synth_city(n_buildings=400, seed=0))
                        plan = partition(layers, seed=0)
                        if layers.staff is not None:
                            plan = assign_staff(plan, layers.staff).to_plan(plan)
                        save_layers(store, layers, author="gridmap serve --demo")
                        save_plan(store, plan, author="gridmap serve --demo", status="published")
                _, token = create_key(
                    store, name="demo admin", role="admin", author="gridmap serve"
                )
            console.print(f"[bold]demo admin key[/] (shown once): {token}", soft_wrap=True)
        console.print(
            f"serving {url.split('@')[-1]} on http://{host}:{port}/ (docs: /docs; maps in a "
            "browser: /login)"
        )
        if workers > 1:
            os.environ["GRIDMAP_DATABASE_URL"] = url
            uvicorn.run(
                "gridmap.api.app:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=log_level,
            )
            return
        uvicorn.run(
            create_app(Settings(database_url=url, demo=demo)),
            host=host,
            port=port,
            log_level=log_level,
        )

    _run(body)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer | dispatcher | planner | admin.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")] = "cli",
    db: DbOpt = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""

    def body() -> None:
        from gridmap.db import Store, database_url
        from gridmap.db.keys import create_key

        with Store.from_url(database_url(db)) as store:
            rec, token = create_key(store, name=name, role=role, author="gridmap keys create")
        err_console.print(
            f"key {rec.id} ({rec.role}, {rec.name!r}); store it now, it is not shown again:"
        )
        typer.echo(token)

    _run(body)


@keys_app.command("list")
def keys_list(db: DbOpt = None) -> None:
    """List API keys (never the tokens)."""

    def body() -> None:
        from gridmap.db import Store, database_url
        from gridmap.db.keys import list_keys

        with Store.from_url(database_url(db)) as store:
            recs = list_keys(store)
        table = Table(title="API keys")
        for col in ("id", "prefix", "name", "role", "created", "active"):
            table.add_column(col)
        for r in recs:
            table.add_row(
                str(r.id), r.prefix, r.name, r.role, f"{r.created_at:%Y-%m-%d %H:%M}", str(r.active)
            )
        console.print(table)

    _run(body)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="Key id.")], db: DbOpt = None) -> None:
    """Revoke an API key."""

    def body() -> None:
        from gridmap.db import Store, database_url
        from gridmap.db.keys import revoke_key

        with Store.from_url(database_url(db)) as store:
            rec = revoke_key(store, key_id, author="gridmap keys revoke")
        console.print(f"key {rec.id} ({rec.name!r}) revoked")

    _run(body)


@app.command("locate")
def locate_cmd(
    lon: Annotated[float | None, typer.Argument(help="Longitude (or x).")] = None,
    lat: Annotated[float | None, typer.Argument(help="Latitude (or y).")] = None,
    crs: Annotated[str, typer.Option(help="wgs84 | gcj02 | bd09 | cgcs2000 | EPSG:nnnn")] = "wgs84",
    plan: Annotated[int | None, typer.Option(help="Plan id (default: published).")] = None,
    input_csv: Annotated[
        Path | None, typer.Option("--input", "-i", help="CSV with lon,lat[,id,crs] columns.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the answers as CSV.")
    ] = None,
    map_out: Annotated[
        Path | None,
        typer.Option(
            "--map",
            help="Also draw the answer as an HTML map: the point, its grid and staff "
            "(or, with --input, every point clustered and coloured by grid).",
        ),
    ] = None,
    assets: AssetsOpt = "inline",
    db: DbOpt = None,
) -> None:
    """Locate a point (or a CSV of points) in the published plan(s) of the store."""

    def body() -> None:
        import pandas as pd

        from gridmap.api.locator import Locator
        from gridmap.api.routes.locate import locate_rows, parse_batch
        from gridmap.db import Store, database_url
        from gridmap.errors import InputError

        if input_csv is not None:
            points, _ = parse_batch(input_csv.read_bytes(), "text/csv")
        elif lon is not None and lat is not None:
            points = pd.DataFrame({"lon": [lon], "lat": [lat], "id": ["0"], "crs": [None]})
        else:
            raise InputError("give LON LAT, or --input points.csv")
        with Store.from_url(database_url(db)) as store:
            locator = Locator(store)
            locator.refresh()
            rows = locate_rows(
                locator, points, crs, plan_id=plan, see_staff=True, report_errors=True
            )
            if map_out is not None:
                _write_locate_map(locator, points, rows, crs, plan, map_out, assets=assets)
        rows = rows.assign(candidates=[";".join(c) for c in rows["candidates"]])
        if output is not None:
            rows.to_csv(output, index=False)
            console.print(f"wrote {len(rows):,} answers to {output}")
            return
        if len(rows) == 1:
            for key, value in rows.iloc[0].items():
                if key not in ("id", "error") and not pd.isna(value) and value != "":
                    console.print(f"{key}: {value}", highlight=False)
            return
        table = Table()
        shown = ["id", "status", "grid_code", "grid_name", "candidates", "community_name"]
        shown += ["distance_to_boundary_m", "nearest_grid", "nearest_distance_m", "chief_name"]
        for col in shown:
            table.add_column(col)
        for rec in rows.head(50).to_dict("records"):
            table.add_row(*["" if pd.isna(rec[c]) else str(rec[c]) for c in shown])
        console.print(table)

    _run(body)


def _write_locate_map(
    locator: Any,
    points: Any,
    rows: Any,
    crs: str,
    plan_id: int | None,
    path: Path,
    *,
    assets: str = "inline",
) -> None:
    """Draw located points: one incident with its grid and staff, or many by grid."""
    import pandas as pd

    from gridmap.api.routes.maps import staffed_plan
    from gridmap.crs import transform
    from gridmap.errors import InputError
    from gridmap.maps import incident_map, incidents_map

    ok = rows["status"].to_numpy() != "error"
    if not ok.any():
        raise InputError(f"no point could be located, so {path} was not written")
    point_crs = points["crs"].where(points["crs"].notna(), crs).astype(str).to_numpy()
    if len(rows) == 1:
        r = locator.locate_one(
            float(rows["lon"].iat[0]), float(rows["lat"].iat[0]), point_crs[0], plan_id=plan_id
        )
        area = r["area"]
        m = incident_map(
            staffed_plan(area, see_staff=True),
            float(rows["lon"].iat[0]),
            float(rows["lat"].iat[0]),
            grid_code=str(area.index.codes[r["row"]]) if r["found"] else None,
            coord_system=point_crs[0],
            incident_id=str(rows["id"].iat[0]),
            assets=assets,
        )
    else:
        located = rows[ok].assign(crs=point_crs[ok])
        ids = located["plan_id"].dropna()
        area = locator.area(int(ids.mode().iat[0])) if len(ids) else locator.select(plan_id)[0]
        parts = []
        for name, grp in located.groupby("crs", sort=False):
            lon, lat = transform(grp["lon"].to_numpy(), grp["lat"].to_numpy(), name, "wgs84")
            parts.append(grp.assign(lon=lon, lat=lat))
        df = pd.concat(parts).sort_index()
        other = df["plan_id"].notna() & (df["plan_id"] != area.plan_id)
        df["grid_code"] = df["grid_code"].where(~other, None)
        m = incidents_map(
            staffed_plan(area, see_staff=False),
            df[["id", "lon", "lat", "grid_code"]],
            assets=assets,
        )
        if other.any():
            console.print(f"{int(other.sum())} point(s) in other plans are drawn outside the grids")
    path.parent.mkdir(parents=True, exist_ok=True)
    m.save(str(path))
    console.print(f"wrote map {path}")


# --------------------------------------------------------------------------- the store

db_app = typer.Typer(help="The database (SQLite file or PostGIS).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None) -> None:
    """Create or migrate the store's tables to this version of gridmap."""

    def body() -> None:
        from gridmap.db import current_revision, database_url, upgrade
        from gridmap.db.session import create_store_engine

        url = database_url(db)
        upgrade(url)
        engine = create_store_engine(url)
        try:
            console.print(f"{url.split('@')[-1]} is at revision {current_revision(engine)}")
        finally:
            engine.dispose()

    _run(body)


@app.command("import")
def import_cmd(
    file: InputFile,
    db: DbOpt = None,
    author: Annotated[str, typer.Option(help="Who imports (audit log).")] = "cli",
    preset: PresetOpt = None,
    layer: LayerOpt = None,
    column: ColumnOpt = None,
    crs: CrsOpt = None,
    reproject: ReprojectOpt = False,
    unit_area: UnitAreaOpt = 90.0,
    derive: DeriveOpt = False,
    derived_prefix: DerivedPrefixOpt = "D",
) -> None:
    """Validate layers and import them into the store (one transaction, per community)."""

    def body() -> None:
        from gridmap.db import Store, database_url, save_layers

        layers = _load_layers(
            file,
            preset=preset,
            layer=layer,
            column=column,
            crs=crs,
            reproject=reproject,
            unit_area=unit_area,
            derive=derive,
            derived_prefix=derived_prefix,
        )
        url = database_url(db)
        with Store.from_url(url) as store, _progress_bar("importing rows") as bar:
            task = bar.add_task("import", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            rec = save_layers(store, layers, author=author, progress=progress)
        counts = ", ".join(f"{n:,} {k}" for k, n in rec.counts.items())
        console.print(f"imported into {url.split('@')[-1]} (import {rec.id}): {counts}")
        replaced = ", ".join(f"{n:,} {k}" for k, n in rec.replaced.items() if n)
        if replaced:
            console.print(f"replaced what was stored for these communities: {replaced}")

    _run(body)


@app.command("plans")
def plans_cmd(
    db: DbOpt = None,
    status: Annotated[
        str | None, typer.Option(help="Only plans with this status (draft/published/archived).")
    ] = None,
    community: Annotated[
        str | None, typer.Option(help="Only plans covering this community.")
    ] = None,
    history: Annotated[
        int | None,
        typer.Option("--history", help="Show this plan's lineage and edit log instead."),
    ] = None,
) -> None:
    """List the stored plans and their versions (or one plan's history)."""

    def body() -> None:
        from gridmap.db import Store, database_url, list_plans, plan_history, plan_lineage

        with Store.from_url(database_url(db)) as store:
            if history is not None:
                lineage = plan_lineage(store, history)
                log = plan_history(store, history)
            else:
                records = list_plans(store, status=status, community_id=community)
        if history is not None:
            _print_history(lineage, log)
            return
        table = Table(title=f"{len(records)} plan(s)", box=None, pad_edge=False)
        for col in ("id", "no.", "ver", "status", "grids", "households", "area", "from"):
            table.add_column(col, no_wrap=True)
        table.add_column("author")
        table.add_column("created", no_wrap=True)
        for r in records:
            ids = r.community_ids
            area = ids[0] if len(ids) == 1 else f"{ids[0]} +{len(ids) - 1}" if ids else ""
            table.add_row(
                str(r.id),
                str(r.number),
                str(r.version),
                r.status,
                str(r.n_grids),
                f"{r.households:,}",
                area,
                "" if r.parent_id is None else str(r.parent_id),
                r.author,
                f"{r.created_at:%Y-%m-%d}",
            )
        console.print(table)
        if records:
            console.print(
                "[dim]no. = number within its area, ver = edit version, from = parent plan[/]"
            )

    _run(body)


def _audit_detail(action: str, before: Any, after: Any) -> str:
    """One line saying what an audit row of a plan changed."""
    before, after = before or {}, after or {}
    if action == "create":
        return f"number {after.get('number')}, {after.get('n_grids')} grids"
    if action == "publish" and after.get("archived"):
        return "archived plan(s) " + ", ".join(map(str, after["archived"]))
    if action == "archive" and after.get("superseded_by") is not None:
        return f"superseded by plan {after['superseded_by']}"
    if "grids" in after or "grids" in before:
        codes = sorted(set(after.get("grids", {})) | set(before.get("grids", {})))
        return f"{len(codes)} grid(s): {', '.join(codes[:4])}{' …' if len(codes) > 4 else ''}"
    if "assignments" in after:
        return f"{len(after['assignments'])} staff posts"
    return ""


def _print_history(lineage: list[Any], log: Any) -> None:
    """Print a plan's ancestors and its audit rows, oldest first."""
    head = lineage[0]
    console.print(
        f"plan {head.id}: number {head.number}, version {head.version}, {head.status}; "
        f"{head.n_grids} grids in {len(head.community_ids)} community(ies)",
        highlight=False,
    )
    if len(lineage) > 1:
        chain = " ← ".join(f"{r.id} ({r.status})" for r in lineage)
        console.print(f"derived from: {chain}", highlight=False)
    table = Table(title=f"{len(log)} change(s)", box=None, pad_edge=False)
    for col in ("when (UTC)", "who", "action", "version", "what"):
        table.add_column(col, no_wrap=col != "what")
    for row in log.to_dict("records"):
        before, after = row["before"] or {}, row["after"] or {}
        v0, v1 = before.get("version"), after.get("version")
        version = f"{v0}→{v1}" if v0 is not None else "" if v1 is None else str(v1)
        table.add_row(
            f"{row['at']:%Y-%m-%d %H:%M:%S}",
            str(row["actor"]),
            str(row["action"]),
            version,
            _audit_detail(row["action"], before, after),
        )
    console.print(table)


@app.command("diff")
def diff_cmd(
    a: Annotated[int, typer.Argument(help="Plan id to compare from (the older one).")],
    b: Annotated[int, typer.Argument(help="Plan id to compare to.")],
    db: DbOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write every unit that changes grid to this CSV."),
    ] = None,
) -> None:
    """Compare two stored plans: grids added, removed, changed; households that change grid."""

    def body() -> None:
        from gridmap.db import Store, database_url, diff_plans

        with Store.from_url(database_url(db)) as store:
            d = diff_plans(store, a, b)
        console.print(
            f"plan {a} → plan {b}: {len(d.grids_added)} grids added, {len(d.grids_removed)} "
            f"removed, {len(d.grids_changed)} changed; {len(d.moved):,} {d.unit} change grid",
            highlight=False,
        )
        rows: list[tuple[str, str, str, str]] = []
        for r in d.grids_added.itertuples():
            rows.append(("added", str(r.grid_code), "", str(r.households)))
        for r in d.grids_removed.itertuples():
            rows.append(("removed", str(r.grid_code), str(r.households), ""))
        for r in d.grids_changed.itertuples():
            what = [
                k
                for k, on in (("outline", r.geometry_changed), ("buildings", r.membership_changed))
                if on
            ]
            rows.append(
                (" + ".join(what), str(r.grid_code), str(r.households_a), str(r.households_b))
            )
        if rows:
            table = Table(box=None, title=f"grids that differ (households in {a} → {b})")
            for col in ("change", "grid", f"plan {a}", f"plan {b}"):
                table.add_column(col, no_wrap=True)
            for row in rows[:30]:
                table.add_row(*row)
            console.print(table)
            if len(rows) > 30:
                console.print(f"… and {len(rows) - 30} more")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            d.moved.to_csv(out, index=False, encoding="utf-8")
            console.print(f"wrote {out} ({len(d.moved):,} {d.unit} that change grid)")

    _run(body)


@app.command("publish")
def publish_cmd(
    plan_id: Annotated[int, typer.Argument(help="Plan id (see gridmap plans).")],
    db: DbOpt = None,
    author: Annotated[str, typer.Option(help="Who publishes (audit log).")] = "cli",
    expected_version: Annotated[
        int | None, typer.Option(help="Refuse unless the plan is still at this version.")
    ] = None,
    allow_uncovered: Annotated[
        bool,
        typer.Option(
            help="Publish even if communities of the plan it replaces are left without "
            "published grids (refused otherwise)."
        ),
    ] = False,
) -> None:
    """Publish a plan; the previously published plan of the same area is archived."""

    def body() -> None:
        from gridmap.db import Store, database_url, get_plan, list_audit, list_plans, publish_plan

        with Store.from_url(database_url(db)) as store, store.session(write=True) as s:
            was = get_plan(s, plan_id)
            rec = publish_plan(
                s,
                plan_id,
                author=author,
                expected_version=expected_version,
                allow_uncovered=allow_uncovered,
            )
            archived = []
            if was.status != "published":
                last = list_audit(s, entity="plan", entity_id=plan_id, limit=1)
                archived = [get_plan(s, i) for i in last["after"].iloc[-1].get("archived", [])]
            covered = {c for p in list_plans(s, status="published") for c in p.community_ids}
        if was.status == "published":
            console.print(f"plan {rec.id} is already published (version {rec.version}); no change")
            return
        console.print(f"plan {rec.id} (number {rec.number}, version {rec.version}) is published")
        for old in archived:
            console.print(f"archived plan {old.id} (number {old.number}), which it replaces")
            bare = sorted(set(old.community_ids) - covered)
            if bare:
                console.print(
                    f"[yellow]warning:[/] plan {old.id} also covered {len(bare)} communities "
                    f"outside plan {rec.id}, which now have no published plan: "
                    f"{', '.join(bare[:8])}{' …' if len(bare) > 8 else ''}; publish a plan that "
                    "covers them",
                    highlight=False,
                    soft_wrap=True,
                )

    _run(body)


@app.command("export")
def export_cmd(
    plan_id: Annotated[int, typer.Option("--plan", help="Plan id (see gridmap plans).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="gpkg, geojson, shp, parquet or csv.")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Export a stored plan to GeoPackage, GeoJSON, Shapefile, GeoParquet or CSV (WGS84)."""

    def body() -> None:
        from gridmap.db import Store, database_url, load_layers, load_plan
        from gridmap.errors import NotFoundError
        from gridmap.io import export_plan

        with Store.from_url(database_url(db)) as store:
            plan = load_plan(store, plan_id)
            layers = None
            if (fmt or out.suffix.lstrip(".")).lower() == "gpkg":
                communities = sorted(set(plan.grids["community_id"]))
                try:
                    layers = load_layers(store, communities, crs=plan.crs)
                except NotFoundError:
                    console.print(
                        "[yellow]the store has no layers for this plan's communities: writing "
                        "grids and memberships without building footprints[/] (import the "
                        "layers with `gridmap import` to include them)"
                    )
        path = export_plan(plan, out, fmt=fmt, layers=layers)
        console.print(f"wrote {path} ({plan.n_grids} grids)")

    _run(body)


def main() -> None:
    """Entry point of the ``gridmap`` script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
