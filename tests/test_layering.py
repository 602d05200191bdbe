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
import gridmap.db
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
    mods = [
        m.name
        for m in pkgutil.walk_packages(gridmap.db.__path__, "gridmap.db.")
        if ".migrations" not in m.name
    ]
    assert "gridmap.db.cases" in mods and "gridmap.db.spatial" in mods
    loaded = imported_after("import gridmap.db\n" + "\n".join(f"import {m}" for m in mods))
    assert not (top(loaded) & set(WEB))
    assert not any(m.startswith("gridmap.api") for m in loaded)


def test_package_import_and_cli_help_are_light():
    loaded = imported_after("import gridmap, gridmap.cli")
    heavy = top(loaded) & {"geopandas", "shapely", "pandas", *WEB, *DB}
    assert not heavy, f"import gridmap / gridmap.cli loads {sorted(heavy)}"


def test_locate_command_loads_neither_migrations_maps_web_nor_partitioner(tmp_path):
    """``gridmap locate`` on a stored plan: what it runs, not only what it imports, stays light."""
    from cityfixtures import tiny_raw

    from gridmap.db import Store, publish_plan, save_plan
    from gridmap.partition import partition
    from gridmap.validation import validate_layers

    url = f"sqlite:///{tmp_path / 'gridmap.db'}"
    with Store.from_url(url) as store:  # created (migrated) here, so locate only opens it
        plan = partition(validate_layers(tiny_raw())[0], seed=0)
        publish_plan(store, save_plan(store, plan, name="p", author="t").id, author="t")
    code = (
        "from gridmap.cli import app\n"
        f"app(['locate', '120.0011', '32.0293', '--crs', 'cgcs2000', '--db', {url!r}],"
        " standalone_mode=False)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"{code}import json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "grid_code: C1" in out or "grid_code: 3201" in out, out  # it ran and found the grid
    loaded = set(json.loads(out.splitlines()[-1]))
    assert "gridmap.api.locator" in loaded and "gridmap.partition.plan" in loaded
    heavy = top(loaded) & {"alembic", "folium", "fastapi", "starlette", "scipy"}
    assert not heavy, f"gridmap locate loads {sorted(heavy)}"
    assert not loaded & {"gridmap.partition.partition", "gridmap.partition.solver"}
    assert not any(m.startswith("gridmap.maps.") for m in loaded)


def test_store_reads_the_schema_revision_as_alembic_does(tmp_path):
    """Opening a store reads its revision without Alembic; the answers are Alembic's."""
    import pytest
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from gridmap.db.session import (
        alembic_config,
        create_store_engine,
        current_revision,
        downgrade,
        head_revision,
        upgrade,
    )
    from gridmap.errors import StorageError

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head_revision() == head and head >= "0007"
    engine = create_store_engine(f"sqlite:///{tmp_path / 's.db'}")
    assert current_revision(engine) is None
    for rev in ("0003", head):
        upgrade(engine, revision=rev)
        with engine.connect() as conn:
            alembic_rev = MigrationContext.configure(conn).get_current_revision()
        assert current_revision(engine) == alembic_rev
        assert current_revision(engine) == rev
    downgrade(engine)
    assert current_revision(engine) is None
    with engine.begin() as conn:  # a broken version table is an error, not a guess
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0001'), ('0002')"))
    with pytest.raises(StorageError, match="several schema revisions"):
        current_revision(engine)
    engine.dispose()


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
