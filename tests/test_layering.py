"""The layers of the package point one way (STYLE.md, habit 3).

The core (gridmap and its capability packages: partition, staffing, maps, cases, …) never
imports the web or database stack; the DB layer never imports the web stack; importing the
package or running ``gridmap --help`` stays light; the input contract (``gridmap.layers``)
sits below the validator and never imports it.
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


#: The edges: the DB layer, the HTTP layer and the command line (with what runs it).
EDGES = ("gridmap.api", "gridmap.db", "gridmap.cli", "gridmap.__main__")


def core_modules() -> list[str]:
    """Every module of the package outside the edges, subpackages included."""
    names = [
        m.name
        for m in pkgutil.walk_packages(gridmap.__path__, "gridmap.", onerror=lambda _: None)
        if not any(m.name == e or m.name.startswith(e + ".") for e in EDGES)
    ]
    return sorted(names)


def imported_after(code: str) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def top(mods: set[str]) -> set[str]:
    return {m.split(".")[0] for m in mods}


def test_core_imports_no_web_or_db_stack():
    mods = core_modules()
    for expected in ("gridmap.layers", "gridmap.partition.plan", "gridmap.staffing.assign"):
        assert expected in mods
    assert "gridmap.maps.plan" in mods and "gridmap.maps.assets" in mods
    loaded = imported_after("\n".join(f"import {m}" for m in mods))
    leaked = top(loaded) & set(WEB + DB)
    assert not leaked, f"the core imports {sorted(leaked)}"
    assert not any(m.startswith(EDGES) for m in loaded)


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


def test_input_contract_sits_below_the_validator():
    loaded = imported_after("import gridmap.layers")
    assert "gridmap.validation" not in loaded


def test_partitioning_does_not_import_maps_or_the_cli():
    loaded = imported_after("import gridmap.partition, gridmap.partition.edit")
    assert not any(m.startswith(("gridmap.maps", "gridmap.cli")) for m in loaded)
    assert "folium" not in top(loaded)


def test_map_package_import_is_light_until_a_builder_is_used():
    assert "folium" not in top(imported_after("import gridmap.maps"))
    assert "folium" in top(imported_after("from gridmap.maps import plan_map"))
