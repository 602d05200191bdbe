"""Reading and checking input layers for the commands: presets, layer and column maps, reports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from gridmap.cli.app import _fail, console

if TYPE_CHECKING:
    from gridmap.layers import Layers
    from gridmap.validation import ValidationReport

__all__: list[str] = []


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
    precheck: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Layers | None, ValidationReport]:
    from gridmap.io import parse_column_map, read_layers
    from gridmap.validation import check_layers

    with console.status(f"reading {file.name}…"):
        raw = read_layers(
            file,
            layer_map=_layer_map(layer),
            column_map=parse_column_map(column),
            preset=preset,
            coords=coords,
        )
    note = _derive_communities(raw, unit_area=unit_area, prefix=derived_prefix) if derive else None
    if precheck is not None:  # cheap checks (id clashes …) before the long validation
        precheck(raw)
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
    precheck: Callable[[dict[str, Any]], None] | None = None,
) -> Layers:
    from gridmap.errors import NotFoundError

    exported = _is_partitioned_dataset(file)
    if not exported and file.is_dir() and any(file.glob("*/*=*/")):
        # a hive-partitioned folder written by another tool: not layers gridmap can read
        from gridmap.scale.dataset import open_partitioned

        open_partitioned(file)  # raises, saying how to export a dataset partitioned by community
    if exported:
        return _read_dataset(
            file,
            communities=communities,
            reading={
                "--preset": preset,
                "--layer": layer,
                "--column": column,
                "--crs": crs,
                "--reproject": reproject,
                "--derive-communities": derive,
            },
        )
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
        precheck=precheck,
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


def _is_partitioned_dataset(file: Path) -> bool:
    """Whether ``file`` is a dataset of ``gridmap export --format parquet --partition-by``."""
    from gridmap.scale.dataset import MANIFEST

    return file.is_dir() and (file / MANIFEST).is_file()


def _read_dataset(file: Path, *, communities: list[str] | None, reading: dict[str, Any]) -> Layers:
    """Read a community-partitioned GeoParquet dataset: the validated layers it was written from.

    ``gridmap export --format parquet --partition-by community_id`` validated the layers
    before writing them, so they are read back as they were (rows, order, types) and not
    validated again; options that shape how a raw file is read do not apply.
    """
    from gridmap.errors import InputError, NotFoundError
    from gridmap.scale.dataset import open_partitioned

    given = [name for name, value in reading.items() if value]
    if given:
        raise InputError(
            f"{file.name} is a dataset of validated layers (gridmap export --partition-by "
            f"community_id); {'/'.join(given)} shape how a raw file is read: pass them to "
            f"`gridmap export FILE --format parquet --partition-by community_id` instead"
        )
    dataset = open_partitioned(file)
    if communities:
        unknown = sorted(set(communities) - set(dataset.communities))
        if unknown:
            known = sorted(dataset.communities)
            raise NotFoundError(
                f"unknown community id(s) {', '.join(unknown)}; {file.name} has "
                f"{', '.join(known[:10])}{' …' if len(known) > 10 else ''}"
            )
    with console.status(f"reading {file.name} ({len(dataset.communities):,} communities)…"):
        layers = dataset.layers()
    if communities:
        layers = layers.subset(communities)
    return layers
