"""``gridmap locate``: a point or a CSV of points to their grids, optionally on a map.

A large file (GeoParquet, or a CSV written out as GeoParquet) is re-located in
batch, partition by partition, through :func:`gridmap.scale.locate_dataset`,
here or on a Dask cluster (``--scheduler``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gridmap.cli.app import AssetsOpt, DbOpt, JsonOpt, _print_json, _run, app, console

__all__: list[str] = []


@app.command("locate")
def locate_cmd(
    lon: Annotated[float | None, typer.Argument(help="Longitude (or x).")] = None,
    lat: Annotated[float | None, typer.Argument(help="Latitude (or y).")] = None,
    crs: Annotated[str, typer.Option(help="wgs84 | gcj02 | bd09 | cgcs2000 | EPSG:nnnn")] = "wgs84",
    plan: Annotated[int | None, typer.Option(help="Plan id (default: published).")] = None,
    input_csv: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="CSV/XLSX with lon,lat[,id,crs] columns; or a GeoParquet file or folder "
            "(Point geometry or lon/lat columns), located in batch.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the answers as CSV; or, for name.parquet, as a partitioned "
            "GeoParquet folder (batch).",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Batch: locate on a Dask cluster, tcp://HOST:8786 or local:N (N worker "
            "processes here).",
        ),
    ] = None,
    plan_file: Annotated[
        Path | None,
        typer.Option(
            "--plan-file", help="Batch: the grids of this plan GeoPackage instead of the store."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Batch: replace an existing --output folder.")
    ] = False,
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
    as_json: JsonOpt = False,
) -> None:
    """Locate a point (or a CSV of points) in the published plan(s) of the store."""

    def body() -> None:
        import pandas as pd

        from gridmap.api.batch import locate_rows, parse_batch
        from gridmap.api.locator import Locator
        from gridmap.db import Store, database_url
        from gridmap.errors import InputError

        if _is_batch(input_csv, output, scheduler, plan_file):
            _locate_batch(
                input_csv,
                output,
                crs=crs,
                plan_id=plan,
                plan_file=plan_file,
                scheduler=scheduler,
                overwrite=overwrite,
                map_out=map_out,
                db=db,
                as_json=as_json,
            )
            return
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
        if len(rows) == 1 and rows["status"].iat[0] == "error":
            raise InputError(str(rows["error"].iat[0]))  # one point: its reason, exit 1
        if as_json:
            clean = rows.astype(object).where(rows.notna(), None)
            _print_json(clean.to_dict("records"))
            return
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


_PARQUET = (".parquet", ".geoparquet", ".pq")


def _is_batch(
    input_file: Path | None, output: Path | None, scheduler: str | None, plan_file: Path | None
) -> bool:
    """Whether ``locate`` runs in batch (GeoParquet in or out, a cluster, or a plan file)."""
    if scheduler is not None or plan_file is not None:
        return True
    if input_file is not None and (input_file.suffix.lower() in _PARQUET or input_file.is_dir()):
        return True
    return output is not None and output.suffix.lower() in _PARQUET


def _batch_grids(plan_id: int | None, plan_file: Path | None, db: str | None) -> Any:
    """Return the plan to answer against: a plan file, a stored plan, or the one published."""
    from gridmap.errors import InputError

    if plan_file is not None:
        if plan_id is not None:
            raise InputError("give --plan ID (a stored plan) or --plan-file PLAN.gpkg, not both")
        from gridmap.io import read_plan

        return read_plan(plan_file)
    from gridmap.db import Store, database_url, list_plans, load_plan

    with Store.from_url(database_url(db)) as store:
        if plan_id is None:
            published = list_plans(store, status="published")
            if len(published) != 1:
                raise InputError(
                    f"the store has {len(published)} published plans; batch re-location "
                    "answers against one plan's grids: pick one with --plan ID (see "
                    "`gridmap plans`) or pass --plan-file PLAN.gpkg"
                )
            plan_id = published[0].id
        return load_plan(store, plan_id)


def _locate_batch(
    input_file: Path | None,
    output: Path | None,
    *,
    crs: str,
    plan_id: int | None,
    plan_file: Path | None,
    scheduler: str | None,
    overwrite: bool,
    map_out: Path | None,
    db: str | None,
    as_json: bool,
) -> None:
    """``locate --input points.parquet --output located.parquet [--scheduler …]``."""
    from gridmap.errors import InputError

    if input_file is None or output is None:
        raise InputError(
            "batch re-location needs --input POINTS (GeoParquet or CSV) and --output "
            "located.parquet (a folder of GeoParquet files)"
        )
    if output.suffix.lower() not in _PARQUET:
        raise InputError(
            f"batch re-location writes partitioned GeoParquet, not {output.suffix or 'a bare name'}"
            f": use --output {output.with_suffix('.parquet').name}"
        )
    if input_file.suffix.lower() in (".xlsx", ".xls"):
        raise InputError(
            f"{input_file.name}: batch re-location reads GeoParquet or CSV; save the sheet as CSV "
            "(UTF-8 or GBK) or locate it without --output .parquet/--scheduler"
        )
    if map_out is not None:
        raise InputError("--map draws a handful of points; batch re-location writes GeoParquet")
    if scheduler is not None:
        from gridmap.scale.cluster import import_distributed

        import_distributed()  # say how to install the extra before reading anything
    if not input_file.exists():
        raise InputError(f"no such file: {input_file}; check the path")
    from gridmap.scale.locate import locate_dataset

    plan = _batch_grids(plan_id, plan_file, db)
    from gridmap.cli.partition import _progress_bar

    where = scheduler or "this machine"
    with _progress_bar(f"locating on {where}:" + " {task.description}") as bar:
        task = bar.add_task("reading…", total=None)

        def progress(p: Any) -> None:
            bar.update(
                task,
                completed=p.done + p.failed,
                total=p.total,
                description=f"{p.done} partitions done, {p.failed} failed, {p.retried} retried",
            )

        summary = locate_dataset(
            input_file,
            plan,
            output,
            scheduler=scheduler,
            crs=crs,
            overwrite=overwrite,
            progress=progress,
        )
    if as_json:
        _print_json(
            {
                "output": str(summary.out_path),
                "points": summary.points,
                "inside": summary.inside,
                "outside": summary.outside,
                "errors": summary.errors,
                "error_rows": [{"line": ln, "error": m} for ln, m in summary.error_rows],
                "partitions": summary.partitions,
                "retried": summary.retried,
            }
        )
        return
    console.print(
        f"wrote {summary.out_path} ({summary.partitions} partition file(s)): "
        f"{summary.points:,} points, {summary.inside:,} in a grid, {summary.outside:,} outside "
        f"every grid, {summary.errors:,} bad row(s)",
        highlight=False,
    )
    from rich.markup import escape

    for line, message in summary.error_rows[:10]:
        console.print(f"  line {line}: {escape(message)}", highlight=False)
    if summary.errors > 10:
        console.print(
            f"  … {summary.errors - 10:,} more; every bad row has its `error` in the output",
            highlight=False,
        )


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
