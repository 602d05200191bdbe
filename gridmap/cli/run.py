"""``gridmap run``: the main job on the bundled sample or a file, optionally serving it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gridmap.cli.app import (
    AssetsOpt,
    DbOpt,
    DerivedPrefixOpt,
    DeriveOpt,
    PresetOpt,
    _run,
    app,
    console,
)
from gridmap.cli.inputs import _load_layers
from gridmap.cli.partition import _partition, _print_plan_summary, _write_plan_map
from gridmap.cli.service import serve
from gridmap.cli.staffing import _print_staffing

if TYPE_CHECKING:
    from gridmap.layers import Layers

__all__: list[str] = []


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
        from gridmap.staffing import assign_staff

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
