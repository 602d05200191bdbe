"""Store opening, settings, and the Alembic migrations on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gridmap.db import (
    Store,
    StoreSettings,
    current_revision,
    database_schema,
    database_url,
    downgrade,
    head_revision,
    upgrade,
)
from gridmap.db.models import Base
from gridmap.db.session import create_store_engine
from gridmap.errors import StorageError

TABLES = {t.name for t in Base.metadata.sorted_tables}
REPO = Path(__file__).resolve().parents[2]


def schema_diffs(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        from geoalchemy2 import alembic_helpers

        def include(obj, name, type_, reflected, compare_to):
            if type_ == "index" and name and name.endswith("_geom"):
                return engine.dialect.name == "postgresql" and alembic_helpers.include_object(
                    obj, name, type_, reflected, compare_to
                )
            if type_ == "table" and name == "spatial_ref_sys":
                return False
            return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)

        mc = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include}
        )
        return compare_metadata(mc, Base.metadata)


def check_migrations(url: str, schema: str | None = None) -> sa.Engine:
    engine = create_store_engine(url, schema=schema)
    assert current_revision(engine) is None
    upgrade(url, schema=schema)
    assert TABLES <= set(sa.inspect(engine).get_table_names())
    assert current_revision(engine) == head_revision()
    upgrade(url, schema=schema)  # idempotent
    assert current_revision(engine) == head_revision()
    assert schema_diffs(engine) == []
    downgrade(url, schema=schema)
    assert not (TABLES & set(sa.inspect(engine).get_table_names()))
    assert current_revision(engine) is None
    downgrade(url, schema=schema)  # idempotent too
    upgrade(url, schema=schema)
    assert TABLES <= set(sa.inspect(engine).get_table_names())
    assert schema_diffs(engine) == []
    return engine


def test_migrations_sqlite(tmp_path: Path) -> None:
    engine = check_migrations(f"sqlite:///{tmp_path / 'm.db'}")
    ix = {i["name"] for i in sa.inspect(engine).get_indexes("plans")}
    assert "uq_plans_one_published_per_area" in ix
    engine.dispose()


@pytest.mark.postgis
def test_migrations_postgis(postgis_url: str, fresh_schema: str) -> None:
    engine = check_migrations(postgis_url, fresh_schema)
    with engine.connect() as conn:
        gist = (
            conn.execute(
                sa.text(
                    "SELECT tablename FROM pg_indexes WHERE schemaname = :s "
                    "AND indexdef ILIKE '%USING gist%' ORDER BY tablename"
                ),
                {"s": fresh_schema},
            )
            .scalars()
            .all()
        )
        geom_type = conn.execute(
            sa.text(
                "SELECT type, srid FROM geometry_columns WHERE f_table_schema = :s "
                "AND f_table_name = 'households'"
            ),
            {"s": fresh_schema},
        ).one()
    assert gist == sorted(
        [
            "admin_units",
            "barriers",
            "buildings",
            "cases",
            "communities",
            "compounds",
            "grids",
            "households",
            "roads",
            "staff",
        ]
    )
    assert tuple(geom_type) == ("POINT", 4326)
    engine.dispose()


def test_alembic_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ini = REPO / "gridmap/db/migrations/alembic.ini"
    for args in (["upgrade", "head"], ["downgrade", "base"], ["upgrade", "head"]):
        subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"url={url}", *args],
            check=True,
            capture_output=True,
            cwd=REPO,
        )
    assert current_revision(create_store_engine(url)) == head_revision()


def test_store_creates_on_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with Store.from_url(url) as store:
        assert TABLES <= set(sa.inspect(store.engine).get_table_names())
        assert "sqlite" in repr(store)
    with pytest.raises(StorageError, match="run `gridmap db upgrade`"):
        Store.from_url(f"sqlite:///{tmp_path / 'empty.db'}", create=False)
    eng = create_store_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    eng.dispose()
    with pytest.raises(StorageError, match=f"revision '0099'.*needs '{head_revision()}'"):
        Store.from_url(url)


def test_unreachable_and_unsupported() -> None:
    with pytest.raises(StorageError, match="cannot connect to the store at .*:1/"):
        Store.from_url("postgresql+psycopg://postgres:secret@127.0.0.1:1/nope")
    with pytest.raises(StorageError, match="unsupported database backend 'mysql'"):
        Store.from_url("mysql://u@h/db")


def test_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("GRIDMAP_DATABASE_URL", raising=False)
    assert database_url() == "sqlite:///gridmap.db"
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("GRIDMAP_DATABASE_SCHEMA", "grids")
    assert database_url() == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert StoreSettings().database_schema == "grids"
    assert database_schema() == "grids"


def test_settings_in_any_case_and_from_a_dotenv_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Read without pydantic where no .env file is, the settings are what StoreSettings reads."""
    monkeypatch.chdir(tmp_path)
    for var in ("GRIDMAP_DATABASE_URL", "GRIDMAP_DATABASE_SCHEMA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("gridmap_database_url", "sqlite:///lower.db")
    assert database_url() == StoreSettings().database_url == "sqlite:///lower.db"
    assert database_schema() is None
    monkeypatch.delenv("gridmap_database_url")
    (tmp_path / ".env").write_text(
        "GRIDMAP_DATABASE_URL=sqlite:///from-dotenv.db\nGRIDMAP_DATABASE_SCHEMA=plans\n"
    )
    assert database_url() == "sqlite:///from-dotenv.db"
    assert database_schema() == "plans"
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", "sqlite:///env-wins.db")
    assert database_url() == "sqlite:///env-wins.db"  # as pydantic-settings: the variable first
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_opening_the_store_loads_neither_pydantic_nor_the_keys(tmp_path: Path) -> None:
    """``gridmap locate``'s path on SQLite: no settings model, keys module or GeoAlchemy2."""
    code = (
        "import sys; from gridmap.db import Store, database_url, list_plans; "
        "s = Store.from_url(database_url()); list_plans(s); "
        "bad = [m for m in ('pydantic', 'pydantic_settings', 'gridmap.db.keys', 'geoalchemy2') "
        "if m in sys.modules]; assert not bad, bad"
    )
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("GRIDMAP_")}
    Store.from_url(f"sqlite:///{tmp_path / 'gridmap.db'}").close()  # made (migrated) beforehand
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)


def test_db_layer_never_imports_fastapi() -> None:
    code = "import sys, gridmap.db; assert 'fastapi' not in sys.modules, 'fastapi imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.postgis
def test_migration_0003_json_columns(postgis_url: str, fresh_schema: str) -> None:
    """0003 turns every jsonb column into json (key order kept) and back, keeping the data."""
    upgrade(postgis_url, schema=fresh_schema, revision="0002")
    engine = create_store_engine(postgis_url, schema=fresh_schema)

    def json_columns() -> dict[str, str]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT table_name || '.' || column_name, data_type "
                    "FROM information_schema.columns WHERE table_schema = :s "
                    "AND data_type IN ('json', 'jsonb')"
                ),
                {"s": fresh_schema},
            ).all()
        return dict(rows)  # type: ignore[arg-type]

    before = json_columns()
    assert len(before) == 20 and set(before.values()) == {"jsonb"}
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (at, actor, action, entity, entity_id, after) "
                "VALUES (now(), 'li', 'note', 'plan', '1', CAST(:j AS jsonb))"
            ),
            {"j": '{"zz": 1, "a": [1, 2]}'},
        )
    upgrade(postgis_url, schema=fresh_schema, revision="0003")
    after = json_columns()
    assert set(after) == set(before) and set(after.values()) == {"json"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT after FROM audit_log")).scalar_one() == {
            "a": [1, 2],
            "zz": 1,
        }
    downgrade(postgis_url, schema=fresh_schema, revision="0002")
    assert set(json_columns().values()) == {"jsonb"}
    assert current_revision(engine) == "0002"
    engine.dispose()


@pytest.mark.postgis
def test_schema_from_environment(
    monkeypatch: pytest.MonkeyPatch, postgis_url: str, fresh_schema: str
) -> None:
    """GRIDMAP_DATABASE_SCHEMA reaches every store opened without a schema (CLI, API)."""
    monkeypatch.setenv("GRIDMAP_DATABASE_SCHEMA", fresh_schema)
    assert database_schema() == fresh_schema
    assert database_schema("other") == "other"
    with Store.from_url(postgis_url) as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_schema()").scalar() == fresh_schema
    upgrade(postgis_url)  # idempotent, in the same schema
    eng = sa.create_engine(postgis_url)
    with eng.connect() as conn:
        tables = conn.execute(
            sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
            {"s": fresh_schema},
        ).scalars()
        assert TABLES <= set(tables)
    eng.dispose()
    monkeypatch.delenv("GRIDMAP_DATABASE_SCHEMA")
    assert database_schema() is None
