"""The store: ``gridmap db``, ``import``, ``plans``, ``diff``, ``publish`` and ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gridmap.cli.app import (
    ColumnOpt,
    CommunityOpt,
    CrsOpt,
    DbOpt,
    DerivedPrefixOpt,
    DeriveOpt,
    InputFile,
    JsonOpt,
    LayerOpt,
    PresetOpt,
    ReprojectOpt,
    UnitAreaOpt,
    _print_json,
    _run,
    app,
    console,
)
from gridmap.cli.inputs import _load_layers
from gridmap.cli.partition import _progress_bar

__all__: list[str] = []


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

        url = database_url(db)

        def clashes(raw: dict[str, Any]) -> None:  # seconds, not the minutes validation takes
            from gridmap.db.layers import check_community_ids

            communities = raw.get("communities")
            if communities is None:
                return
            if communities.crs is None and crs:
                communities = communities.set_crs(crs)
            with Store.from_url(url) as store:
                check_community_ids(store, communities)

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
            precheck=clashes,
        )
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
    as_json: JsonOpt = False,
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
        if as_json:
            if history is not None:
                entries = log.to_dict("records") if hasattr(log, "to_dict") else log
                _print_json({"lineage": lineage, "log": entries})
            else:
                _print_json(records)
            return
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
    as_json: JsonOpt = False,
) -> None:
    """Compare two stored plans: grids added, removed, changed; households that change grid."""

    def body() -> None:
        from gridmap.db import Store, database_url, diff_plans

        with Store.from_url(database_url(db)) as store:
            d = diff_plans(store, a, b)
        if as_json:

            def records(frame: Any) -> list[dict[str, Any]]:
                cols = [c for c in frame.columns if c != "geometry"]
                return frame[cols].to_dict("records")

            _print_json(
                {
                    "a": a,
                    "b": b,
                    "unit": d.unit,
                    "unchanged": d.unchanged,
                    "grids_added": records(d.grids_added),
                    "grids_removed": records(d.grids_removed),
                    "grids_changed": records(d.grids_changed),
                    "moved": len(d.moved),
                }
            )
            if out is not None:
                d.moved.to_csv(out, index=False, encoding="utf-8-sig")  # BOM: Excel
            return
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
            d.moved.to_csv(out, index=False, encoding="utf-8-sig")  # BOM: Excel
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
    file: Annotated[
        Path | None,
        typer.Argument(
            help="With --partition-by: the layers file (GeoPackage or folder); omit it to "
            "export the layers of the store."
        ),
    ] = None,
    plan_id: Annotated[
        int | None, typer.Option("--plan", help="Plan id (see gridmap plans).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write.")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="gpkg, geojson, shp, parquet or csv.")
    ] = None,
    partition_by: Annotated[
        str | None,
        typer.Option(
            "--partition-by",
            help="community_id: export the layers (not a plan) as a GeoParquet dataset "
            "partitioned by community, which `gridmap partition --scheduler` workers read.",
        ),
    ] = None,
    community: CommunityOpt = None,
    preset: PresetOpt = None,
    layer: LayerOpt = None,
    column: ColumnOpt = None,
    crs: CrsOpt = None,
    reproject: ReprojectOpt = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing dataset at --out.")
    ] = False,
    db: DbOpt = None,
) -> None:
    """Export a stored plan to GeoPackage, GeoJSON, Shapefile, GeoParquet or CSV (WGS84).

    With ``--format parquet --partition-by community_id`` the layers (of FILE, or
    of the store) are written instead as a GeoParquet dataset with one folder
    per community, from which cluster workers read their own communities.
    """

    def body() -> None:
        from gridmap.errors import InputError

        if partition_by is not None:
            _export_partitioned(
                file,
                out,
                fmt=fmt,
                partition_by=partition_by,
                community=community,
                reading={
                    "preset": preset,
                    "layer": layer,
                    "column": column,
                    "crs": crs,
                    "reproject": reproject,
                },
                overwrite=overwrite,
                db=db,
            )
            return
        if plan_id is None or out is None:
            raise InputError(
                "give --plan ID --out FILE to export a stored plan, or --format parquet "
                "--partition-by community_id --out FOLDER to export layers for cluster workers"
            )
        if file is not None or community:
            raise InputError(
                "FILE and --community go with --partition-by community_id (layers); a plan is "
                "exported whole with --plan ID"
            )
        _export_plan(plan_id, out, fmt=fmt, db=db)

    _run(body)


def _export_plan(plan_id: int, out: Path, *, fmt: str | None, db: str | None) -> None:
    from gridmap.db import Store, database_url, load_layers, load_plan
    from gridmap.db.audit import audit_export
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
        personal = plan.assignments is not None or plan.households is not None
        audit_export(
            store,
            actor="gridmap export (cli)",
            entity="plan",
            entity_id=plan_id,
            fmt=path.suffix.lstrip("."),
            personal=personal,
        )
    console.print(f"wrote {path} ({plan.n_grids} grids)")


def _export_partitioned(
    file: Path | None,
    out: Path | None,
    *,
    fmt: str | None,
    partition_by: str,
    community: list[str] | None,
    reading: dict[str, Any],
    overwrite: bool,
    db: str | None,
) -> None:
    """``export --format parquet --partition-by community_id``: layers for cluster workers."""
    from gridmap.errors import InputError
    from gridmap.scale.dataset import write_partitioned

    if partition_by != "community_id":
        raise InputError(
            f"--partition-by {partition_by}: cluster workers read one community each; "
            "use --partition-by community_id"
        )
    if fmt is not None and fmt.lower() not in ("parquet", "geoparquet"):
        raise InputError(f"--partition-by writes GeoParquet; use --format parquet, not {fmt}")
    if out is None:
        raise InputError("give --out FOLDER for the dataset, e.g. --out city.parquet")
    if file is not None:
        with console.status(f"reading and validating {file}…"):
            layers = _load_layers(file, unit_area=90.0, communities=community, **reading)
    else:
        if any(v for v in reading.values()):
            raise InputError(
                "--preset/--layer/--column/--crs/--reproject shape how FILE is read; the "
                "store's layers are already validated"
            )
        from gridmap.db import Store, database_url, load_layers
        from gridmap.db.audit import audit_export

        with Store.from_url(database_url(db)) as store:
            layers = load_layers(store, community)
            audit_export(
                store,
                actor="gridmap export (cli)",
                entity="layers",
                entity_id=",".join(layers.communities["community_id"].astype(str))[:200],
                fmt="parquet",
                personal=layers.households is not None or layers.staff is not None,
                rows=sum(len(f) for _, f in layers.items()),
            )
    with console.status(f"writing {out}…"):
        path = write_partitioned(layers, out, overwrite=overwrite)
    counts = ", ".join(f"{len(g):,} {n}" for n, g in layers.items())
    console.print(
        f"wrote {path}: {len(layers.communities)} communities ({counts}), one folder per "
        f"community_id; partition it with `gridmap partition {path} --scheduler local:2`"
    )
