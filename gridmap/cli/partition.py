"""``gridmap synth``, ``validate``, ``partition``, ``map``: from layers to a plan and its maps."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gridmap.cli.app import (
    AssetsOpt,
    ColumnOpt,
    CommunityOpt,
    CrsOpt,
    DbOpt,
    DerivedPrefixOpt,
    DeriveOpt,
    InputFile,
    LayerOpt,
    PresetOpt,
    ReprojectOpt,
    UnitAreaOpt,
    _run,
    app,
    console,
)
from gridmap.cli.inputs import _check, _load_layers, _print_validation

if TYPE_CHECKING:
    from gridmap.layers import Layers

__all__: list[str] = []

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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        f"[progress.description]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        "ETA",
        TimeRemainingColumn(),
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
    load_weights: dict[str, float] | None = None,
    cases: Any = None,
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
            load_weights=load_weights,
            cases=cases,
        )


def _case_points(file: Path | None, db: str | None, since: str | None) -> Any:
    """Last year's cases as WGS84 points: from a tickets CSV/XLSX, else from the store.

    Cases received before ``since`` (default: 365 days before the newest case)
    are left out; a case without coordinates stays in, as a case near no building.
    """
    import datetime as dt

    import geopandas as gpd
    import numpy as np
    import pandas as pd

    from gridmap.crs import to_wgs84
    from gridmap.errors import InputError

    if file is not None:
        from gridmap.cases import TICKET_ALIASES
        from gridmap.tables import read_table

        table = read_table(file, aliases=TICKET_ALIASES, required=("lon", "lat"), name=file.name)
        f = table.frame
        lon = pd.to_numeric(f["lon"], errors="coerce").to_numpy(float, copy=True)
        lat = pd.to_numeric(f["lat"], errors="coerce").to_numpy(float, copy=True)
        bad = np.isnan(lon) | np.isnan(lat)
        if bad.any():
            raise InputError(
                f"{file.name}: line(s) {', '.join(map(str, table.lines[bad][:5]))} have no "
                "number in lon/lat (经度/纬度); fill them in or remove those rows"
            )
        crs = f["crs"].fillna("wgs84") if "crs" in f.columns else pd.Series("wgs84", index=f.index)
        for name in crs.unique():
            sel = (crs == name).to_numpy()
            lon[sel], lat[sel] = to_wgs84(lon[sel], lat[sel], str(name))
        when = (
            pd.to_datetime(f["received_at"], errors="coerce", format="mixed")
            if "received_at" in f.columns
            else pd.Series(pd.NaT, index=f.index)
        )
    else:
        from gridmap.db import Store, database_url
        from gridmap.db.case_frames import case_frame

        with Store.from_url(database_url(db)) as store:
            f = case_frame(store)
        lon = pd.to_numeric(f["lon"], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(f["lat"], errors="coerce").to_numpy(float)
        when = pd.to_datetime(f["received_at"], utc=True).dt.tz_convert("Asia/Shanghai")
        when = when.dt.tz_localize(None)
        if len(f) == 0:
            raise InputError(
                "--balance names cases, but the store holds none; import them with "
                "`gridmap cases import FILE` or pass --cases FILE"
            )
    cutoff: Any = None
    if since is not None:
        try:
            cutoff = pd.Timestamp(dt.date.fromisoformat(since))
        except ValueError:
            raise InputError(
                f"--cases-since {since!r} is not a date; write e.g. 2025-12-01"
            ) from None
    else:
        cutoff = when.max() - pd.Timedelta(days=365) if when.notna().any() else None
    keep = np.ones(len(lon), dtype=bool) if cutoff is None else (when >= cutoff).to_numpy()
    keep = keep | when.isna().to_numpy()
    pts = gpd.points_from_xy(lon[keep], lat[keep])
    out = gpd.GeoDataFrame(geometry=pts, crs=4326)
    out.attrs["since"] = None if cutoff is None else str(cutoff.date())
    return out


def _print_plan_summary(plan: Any) -> None:
    from gridmap.partition.quality import summary_text

    console.print(summary_text(plan.report), highlight=False, soft_wrap=True)


@app.command("partition")
def partition_cmd(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Input GeoPackage or folder, or a dataset from `gridmap export --format parquet "
            "--partition-by community_id`; omit to read the layers from the store."
        ),
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
    balance: Annotated[
        str | None,
        typer.Option(
            "--balance",
            help="Also balance grids on a workload, e.g. households,cases=0.2,care=2 (cases: "
            "last year's cases per building; care: households flagged elderly living alone, "
            "disabled or on assistance). The household band still holds.",
        ),
    ] = None,
    cases_file: Annotated[
        Path | None,
        typer.Option(
            "--cases",
            help="--balance with cases: the tickets CSV/XLSX (经度/纬度/坐标系/来电时间); "
            "default: the cases in the store.",
        ),
    ] = None,
    cases_since: Annotated[
        str | None,
        typer.Option(
            "--cases-since",
            help="Count cases received from this date (YYYY-MM-DD); default 365 days before "
            "the newest.",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Partition on a Dask cluster: tcp://HOST:8786, or local:N for N worker "
            "processes here. FILE is then a dataset from `gridmap export --format parquet "
            "--partition-by community_id`; without FILE the workers read the store (--db).",
        ),
    ] = None,
) -> None:
    """Partition communities into grids within a household band; write the plan."""

    def body() -> None:
        from gridmap.errors import InputError
        from gridmap.io import read_plan, write_plan

        if lock and previous is None:
            raise InputError("--lock needs --previous PLAN.gpkg (the plan the locked grids are in)")
        if scheduler is not None:
            _refuse_on_scheduler(
                file,
                previous=previous is not None,
                lock=bool(lock),
                balance=balance is not None or cases_file is not None or cases_since is not None,
                jobs=jobs != 1,
                reading=bool(preset or layer or column or crs or reproject or derive),
            )
        load_weights = None
        case_pts = None
        if balance is not None:
            from gridmap.partition.load import parse_balance

            load_weights = parse_balance(balance)
            if "cases" in load_weights:
                case_pts = _case_points(cases_file, db, cases_since)
                console.print(
                    f"balancing on workload: {len(case_pts):,} case(s)"
                    + (
                        f" received since {case_pts.attrs['since']}"
                        if case_pts.attrs["since"]
                        else ""
                    )
                )
        elif cases_file is not None or cases_since is not None:
            raise InputError(
                "--cases and --cases-since go with --balance, e.g. --balance households,cases=0.2"
            )
        if scheduler is not None:
            plan, layers = _partition_on_scheduler(
                scheduler,
                file,
                db=db,
                community=community,
                min_households=min_households,
                max_households=max_households,
                target=target,
                seed=seed,
            )
        elif file is not None:
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
        if scheduler is None:
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
                load_weights=load_weights,
                cases=case_pts,
            )
        dest = out if out is not None or save else Path("plan.gpkg")
        if dest is not None:
            with console.status(f"writing {dest} ({plan.n_grids:,} grids)…"):
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


def _refuse_on_scheduler(file: Path | None, **given: bool) -> None:
    """``partition --scheduler``: refuse options a cluster run does not take, saying why."""
    from gridmap.errors import InputError

    why = {
        "previous": "--previous/--lock (stable redraws run in one process: drop --scheduler)",
        "lock": "--previous/--lock (stable redraws run in one process: drop --scheduler)",
        "balance": "--balance/--cases (workload balancing runs in one process: drop --scheduler)",
        "jobs": "--jobs (the cluster's workers are the jobs: size them with local:N)",
        "reading": "--preset/--layer/--column/--crs/--reproject/--derive (they shape how a "
        "file is read: pass them to `gridmap export FILE --format parquet --partition-by "
        "community_id`, then partition the dataset it writes)",
    }
    for name, on in given.items():
        if on:
            raise InputError(f"--scheduler does not take {why[name]}")
    if file is not None and file.suffix.lower() in (".gpkg", ".geojson", ".shp", ".zip"):
        raise InputError(
            f"{file} is a single file; cluster workers read one community each from a GeoParquet "
            f"dataset partitioned by community_id: write one with `gridmap export {file} "
            "--format parquet --partition-by community_id --out city.parquet`, then "
            "`gridmap partition city.parquet --scheduler ...` (or import the layers into the "
            "store and omit FILE)"
        )


def _partition_on_scheduler(
    scheduler: str,
    file: Path | None,
    *,
    db: str | None,
    community: list[str] | None,
    min_households: int,
    max_households: int,
    target: int | None,
    seed: int,
) -> tuple[Any, Layers]:
    """Partition on a Dask cluster; workers read FILE (a partitioned dataset) or the store."""
    from gridmap.scale.cluster import import_distributed
    from gridmap.scale.partition import _partition_on_cluster

    import_distributed()  # the extra first: say how to install it before any reading
    source: Any = file
    if file is None:
        from gridmap.db import database_url

        source = database_url(db)
    with _progress_bar(f"partitioning on {scheduler}:" + " {task.description}") as bar:
        task = bar.add_task("starting the cluster…", total=None)

        def progress(p: Any) -> None:
            bar.update(
                task,
                completed=p.done + p.failed,
                total=p.total,
                description=f"{p.done} done, {p.failed} failed, {p.retried} retried",
            )

        plan, layers = _partition_on_cluster(
            source,
            scheduler=scheduler,
            communities=community,
            min_households=min_households,
            max_households=max_households,
            target=target,
            seed=seed,
            progress=progress,
        )
    return plan, layers


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
        str,
        typer.Option(
            help="plan (grids by households), quality (failing checks) or cases (事件工单 "
            "from the store, over the plan's grids)."
        ),
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
    db: DbOpt = None,
    month: Annotated[
        str | None, typer.Option("--month", help="--kind cases: received in YYYY-MM.")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="--kind cases: received from YYYY-MM-DD (included)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="--kind cases: received up to YYYY-MM-DD (included)."),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="--kind cases: only this state (repeatable)."),
    ] = None,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", help="--kind cases: only this category (repeatable)."),
    ] = None,
    personal: Annotated[
        bool,
        typer.Option(
            "--personal",
            help="--kind cases: put tickets, descriptions, addresses and callers in the "
            "popups (personal data: the read is audited; keep the file safe).",
        ),
    ] = False,
) -> None:
    """Draw a plan as an interactive map (HTML) for planners and dispatchers.

    With ``--kind cases`` the cases in the store (``--db``) are drawn over the
    plan's grids: clustered, coloured by status, red when overdue, with filters
    in the page and the grids shaded by cases per 1,000 households.
    """
    if kind == "cases":
        _run(
            lambda: _write_cases_map(
                plan_file,
                out,
                db=db,
                month=month,
                start=start,
                end=end,
                status=status,
                category=category,
                personal=personal,
                base={
                    "tiles": None if tiles.strip().lower() == "none" else tiles,
                    "tiles_key": tiles_key,
                    "attr": attr,
                    "tiles_crs": tiles_crs,
                    "assets": assets,
                },
            )
        )
        return

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
                raise InputError(f"unknown map kind {kind!r}; choose plan, quality or cases")
            out.parent.mkdir(parents=True, exist_ok=True)
            m.save(str(out))
        console.print(f"wrote {out} ({plan.n_grids} grids)")

    _run(body)


def _write_cases_map(
    plan_file: Path,
    out: Path,
    *,
    db: str | None,
    month: str | None,
    start: str | None,
    end: str | None,
    status: list[str] | None,
    category: list[str] | None,
    personal: bool,
    base: dict[str, Any],
) -> None:
    """``gridmap map --kind cases``: the store's cases over the plan's grids (as an operator)."""
    from gridmap.cases import stats_period
    from gridmap.db import Store, database_url
    from gridmap.db.case_frames import case_frame
    from gridmap.io import read_plan
    from gridmap.maps import cases_map

    lo, hi = stats_period(month=month, start=start, end=end)
    plan = read_plan(plan_file)
    with Store.from_url(database_url(db)) as store:
        frame = case_frame(
            store,
            author="gridmap cli",
            personal=personal,
            status=status,
            category=category,
            received_from=lo,
            received_to=hi,
        )
    with console.status("drawing the map…"):
        m = cases_map(frame, plan, personal=personal, **base)
        out.parent.mkdir(parents=True, exist_ok=True)
        m.save(str(out))
    drawn = int((frame["lon"].notna() & frame["lat"].notna()).sum())
    console.print(f"wrote {out} ({drawn} cases on {plan.n_grids} grids)")
