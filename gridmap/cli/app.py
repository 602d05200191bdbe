"""The ``gridmap`` Typer app, its consoles, the options commands share, and error handling."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = ["app", "console", "err_console"]

app = typer.Typer(
    name="gridmap",
    help="Community grid (网格) management: partition, staff, locate, map.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from gridmap import __version__

        console.print(f"gridmap {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="More log lines: -v info, -vv debug."),
    ] = 0,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No log lines or warnings but errors (results still print)."
        ),
    ] = False,
) -> None:
    """Community grid (网格) management: partition, staff, locate, map."""
    import logging

    if quiet:
        import warnings

        level = logging.ERROR
        warnings.simplefilter("ignore")
    else:
        level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.getLogger().setLevel(level)


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
    # the option's callback runs on every call of a command that has it, map or not: the two
    # modes (and the default) are answered here, as check_assets would, without loading folium
    if isinstance(value, str) and value.strip().lower() in ("inline", "cdn"):
        return value.strip().lower()
    from gridmap.maps.assets import check_assets

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


JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON records instead of a table (for scripts).")
]


def _print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout: UTF-8 (Chinese as is), dates as ISO text."""
    import dataclasses
    import datetime as dt
    import json
    import sys

    def default(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if hasattr(value, "item"):  # numpy scalars
            return value.item()
        if isinstance(value, tuple | set | frozenset):
            return list(value)
        return str(value)

    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=default, indent=1) + "\n")


def _fail(message: str, code: int = 1) -> typer.Exit:
    from rich.markup import escape  # a message is text: `.[scale]` is not a style tag

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _run(fn: Callable[[], Any]) -> Any:
    """Run a command body, turning gridmap errors into one clear line and exit 1."""
    from gridmap.errors import GridmapError

    try:
        return fn()
    except GridmapError as exc:
        raise _fail(str(exc)) from None
    except FileNotFoundError as exc:
        raise _fail(f"no such file: {exc.filename}; check the path") from None
    except IsADirectoryError as exc:
        raise _fail(f"{exc.filename} is a folder; give a file") from None
    except PermissionError as exc:
        raise _fail(f"cannot read or write {exc.filename}: permission denied") from None
