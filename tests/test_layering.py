"""The layers of the package point one way (STYLE.md, habit 3).

The core (gridmap, gridmap.partition) never imports the web or database stack; the DB layer
never imports the web stack; importing the package or running ``gridmap --help`` stays light.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import gridmap
import gridmap.partition

WEB = ("fastapi", "starlette", "uvicorn")
DB = ("sqlalchemy", "geoalchemy2", "alembic", "psycopg")


def core_modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(gridmap.__path__, "gridmap.")]
    sub = gridmap.partition.__path__
    names += [m.name for m in pkgutil.iter_modules(sub, "gridmap.partition.")]
    skip = {"gridmap.api", "gridmap.db", "gridmap.cli", "gridmap.__main__"}
    return sorted(n for n in names if n not in skip)


def imported_after(code: str) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def top(mods: set[str]) -> set[str]:
    return {m.split(".")[0] for m in mods}


def test_core_imports_no_web_or_db_stack():
    mods = core_modules()
    assert "gridmap.layers" in mods and "gridmap.partition.plan" in mods
    loaded = imported_after("\n".join(f"import {m}" for m in mods))
    leaked = top(loaded) & set(WEB + DB)
    assert not leaked, f"the core imports {sorted(leaked)}"
    assert not any(m.startswith("gridmap.api") or m.startswith("gridmap.db") for m in loaded)


def test_db_layer_imports_no_web_stack():
    loaded = imported_after("import gridmap.db")
    assert not (top(loaded) & set(WEB))
    assert not any(m.startswith("gridmap.api") for m in loaded)


def test_package_import_and_cli_help_are_light():
    loaded = imported_after("import gridmap, gridmap.cli")
    heavy = top(loaded) & {"geopandas", "shapely", "pandas", *WEB, *DB}
    assert not heavy, f"import gridmap / gridmap.cli loads {sorted(heavy)}"


def test_lazy_top_level_exports():
    import gridmap as g

    for name in g.__all__:
        assert getattr(g, name) is not None, name
