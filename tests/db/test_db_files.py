"""Files ↔ store through the real command line, on both backends.

File → store → file gives the same attributes (values and types) and the same
geometries: every layer of an imported GeoPackage, and a plan exported to each
of the five formats (compared with exporting the plan straight from its file).
Geometries are stored in WGS84 and the layers work in a projected CRS, so
coordinates come back through one extra reprojection: they agree to 1e-12°
(0.1 µm), with the same geometry types and vertex counts. Every export is
checked with GDAL's ``ogrinfo -ro -al -so`` (GeoParquet, which the Debian GDAL
cannot read, through its ``geo`` metadata instead).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from dbfactories import make_layers, make_plan
from test_db_layers import snapshot
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.db import (
    Store,
    diff_plans,
    get_plan,
    list_plans,
    load_layers,
    load_plan,
    publish_plan,
    save_plan,
)
from gridmap.io import export_plan, read_plan, write_layers, write_plan
from gridmap.partition import partition
from gridmap.partition.edit import merge_grids
from gridmap.staffing import assign_staff
from gridmap.synth import synth_city
from gridmap.validation import validate_layers

#: Largest coordinate difference accepted after the WGS84 ↔ projected round trip (degrees).
TOL_DEG = 1e-12
FORMATS = ("gpkg", "geojson", "shp", "parquet", "csv")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small synthetic city as a canonical GeoPackage and a staffed plan file."""
    folder = tmp_path_factory.mktemp("city")
    layers, _ = validate_layers(synth_city(n_buildings=300, seed=5))
    plan = partition(layers)
    plan = assign_staff(plan, layers.staff).to_plan(plan)
    return {
        "layers": write_layers(layers, folder / "city.gpkg"),
        "plan": write_plan(plan, folder / "plan.gpkg", layers=layers),
    }


@pytest.fixture
def cli(store: Store, store_url, monkeypatch: pytest.MonkeyPatch):
    """Run ``gridmap ARGS --db <the store>`` in process; return the click result."""
    url, schema = store_url
    if schema:
        monkeypatch.setenv("GRIDMAP_DATABASE_SCHEMA", schema)
    runner = CliRunner()

    def run(*args: object, db: bool = True) -> object:
        argv = [str(a) for a in args] + (["--db", url] if db else [])
        return runner.invoke(app, argv, catch_exceptions=False)

    return run


def assert_same_geometries(a: np.ndarray, b: np.ndarray) -> None:
    assert len(a) == len(b)
    assert shapely.get_type_id(a).tolist() == shapely.get_type_id(b).tolist()
    ca, cb = shapely.get_coordinates(a), shapely.get_coordinates(b)
    assert shapely.get_num_coordinates(a).tolist() == shapely.get_num_coordinates(b).tolist()
    assert float(np.abs(ca - cb).max(initial=0.0)) < TOL_DEG


def assert_same_frames(a: pd.DataFrame, b: pd.DataFrame) -> None:
    if isinstance(a, gpd.GeoDataFrame) and a.geometry.name in a:
        assert_same_geometries(a.geometry.values, b.geometry.values)
        assert a.crs == b.crs
        a, b = a.drop(columns=a.geometry.name), b.drop(columns=b.geometry.name)
    pdt.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))


def ogrinfo(path: Path) -> str:
    exe = shutil.which("ogrinfo")
    if exe is None:
        pytest.skip("GDAL's ogrinfo is not installed (apt-get install gdal-bin)")
    out = subprocess.run([exe, "-ro", "-al", "-so", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "FAILURE" not in out.stdout + out.stderr
    assert "Warning" not in out.stderr, out.stderr  # e.g. a GeoPackage version GDAL 3.6 can't read
    return out.stdout


def read_any(path: Path, fmt: str, layer: str | None = None) -> pd.DataFrame:
    if fmt == "parquet":
        return gpd.read_parquet(path)
    if fmt == "csv":
        return pd.read_csv(path)
    return pyogrio.read_dataframe(path, layer=layer)


def test_layers_file_store_file(store: Store, cli, city, tmp_path: Path) -> None:
    out = cli("import", city["layers"])
    assert out.exit_code == 0, out.output
    assert "imported into" in out.stdout and "replaced" not in out.stdout  # nothing was there
    back = write_layers(load_layers(store), tmp_path / "back.gpkg")
    names = pyogrio.list_layers(city["layers"])[:, 0].tolist()
    assert pyogrio.list_layers(back)[:, 0].tolist() == names
    assert names == ["communities", "buildings", "households", "roads", "barriers"] + [
        "compounds",
        "staff",
    ]
    for name in names:
        assert_same_frames(
            pyogrio.read_dataframe(city["layers"], layer=name),
            pyogrio.read_dataframe(back, layer=name),
        )
    # importing the same file again replaces the communities' rows: same store content
    again = cli("import", city["layers"])
    assert again.exit_code == 0 and "replaced what was stored" in again.stdout
    assert "buildings" in again.stdout.split("replaced", 1)[1]
    again_back = write_layers(load_layers(store), tmp_path / "again.gpkg")
    for name in names:
        assert_same_frames(
            pyogrio.read_dataframe(back, layer=name),
            pyogrio.read_dataframe(again_back, layer=name),
        )


def test_plan_file_store_every_format(store: Store, cli, city, tmp_path: Path) -> None:
    assert cli("import", city["layers"]).exit_code == 0
    plan = read_plan(city["plan"])
    rec = save_plan(store, plan, author="planner")
    for fmt in FORMATS:
        # the plan file itself for GeoPackage (plan and layers); else the plan exported directly
        direct = city["plan"] if fmt == "gpkg" else export_plan(plan, tmp_path / f"direct.{fmt}")
        dest = tmp_path / "stored" / f"plan.{fmt}"
        out = cli("export", "--plan", rec.id, "--format", fmt, "-o", dest)
        assert out.exit_code == 0, out.output
        assert f"wrote {dest}" in out.stdout.replace("\n", "")
        if fmt == "parquet":  # Debian's GDAL has no Parquet driver: check GeoParquet metadata
            geo = json.loads(pq.read_schema(dest).metadata[b"geo"])
            assert geo["primary_column"] == "geometry"
            column = geo["columns"]["geometry"]
            assert column["encoding"] == "WKB" and "Polygon" in column["geometry_types"]
            assert column["crs"]["id"] == {"authority": "EPSG", "code": 4326}
        else:
            info = ogrinfo(dest)
            assert f"Feature Count: {plan.n_grids}" in info
            assert 'ID["EPSG",4326]' in info  # CSV: from its .prj sidecar
            if fmt == "csv":  # typed columns from the .csvt, the wkt column as polygons
                assert "households: Integer64" in info and "polsby_popper: Real" in info
                assert "Geometry Column = geom_wkt" in info
                assert dest.read_bytes().startswith(b"\xef\xbb\xbfgrid_code,")  # BOM for Excel
            if fmt == "geojson":  # QGIS shows the layer name: the file's, not a temporary one
                assert "Layer name: plan\n" in info
        layers = pyogrio.list_layers(direct)[:, 0].tolist() if fmt == "gpkg" else [None]
        if fmt == "gpkg":
            assert pyogrio.list_layers(dest)[:, 0].tolist() == layers
            assert {"grids", "buildings", "households", "assignments", "plan_meta"} <= set(layers)
        for layer in layers:
            assert_same_frames(read_any(direct, fmt, layer), read_any(dest, fmt, layer))


def test_store_commands(store: Store, cli, city, tmp_path: Path) -> None:
    assert cli("import", city["layers"]).exit_code == 0
    plan = read_plan(city["plan"])
    p1 = save_plan(store, plan, author="li")
    # a planner merges two neighbouring grids and saves the result as a new plan
    g = plan.grids
    keep, gone = next(
        (a, b)
        for a, ga in zip(g["grid_code"], g.geometry, strict=True)
        for b, gb, cb in zip(g["grid_code"], g.geometry, g["community_id"], strict=True)
        if a < b
        and cb == g.loc[g["grid_code"] == a, "community_id"].iloc[0]
        and ga.intersection(gb).length > 1.0
    )
    merged = merge_grids(plan, load_layers(store), [keep, gone], max_households=5000, strict=True)
    edited = merged.plan
    p2 = save_plan(store, edited, author="wang", parent_id=p1.id)
    out = cli("plans")
    assert out.exit_code == 0
    lines = out.stdout.splitlines()
    assert "2 plan(s)" in lines[0]
    assert lines[1].split() == "id no. ver status grids households area from author created".split()
    assert lines[2].split()[:5] == [str(p1.id), "1", "1", "draft", str(plan.n_grids)]
    assert lines[3].split()[:5] == [str(p2.id), "2", "1", "draft", str(edited.n_grids)]
    assert str(p1.id) in lines[3].split()[6:]  # parent
    out = cli("publish", p1.id)
    assert out.exit_code == 0 and f"plan {p1.id} (number 1, version 2) is published" in out.stdout
    out = cli("publish", p2.id, "--expected-version", "5")
    assert out.exit_code == 1
    assert f"plan {p2.id} is at version 1, not 5" in out.stderr
    out = cli("publish", p2.id, "--expected-version", "1")
    assert out.exit_code == 0
    assert f"archived plan {p1.id} (number 1), which it replaces" in out.stdout
    assert "warning" not in out.stdout
    out = cli("publish", p2.id)
    assert out.exit_code == 0 and f"plan {p2.id} is already published (version 2)" in out.stdout
    assert [(p.id, p.status) for p in list_plans(store)] == [
        (p1.id, "archived"),
        (p2.id, "published"),
    ]
    out = cli("plans", "--status", "published")
    assert out.exit_code == 0 and "1 plan(s)" in out.stdout
    out = cli("plans", "--history", p1.id)
    assert out.exit_code == 0
    text = " ".join(out.stdout.split())
    assert f"plan {p1.id}: number 1, version 3, archived" in text
    assert "li create 1" in text and "cli publish 1→2" in text
    assert f"cli archive 2→3 superseded by plan {p2.id}" in text
    out = cli("plans", "--history", p2.id)
    assert f"derived from: {p2.id} (published) ← {p1.id} (archived)" in out.stdout
    moved = tmp_path / "moved.csv"
    out = cli("diff", p1.id, p2.id, "-o", moved)
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert f"plan {p1.id} → plan {p2.id}: 0 grids added, 1 removed, 1 changed" in text
    lost = plan.households[plan.households["grid_code"] == gone]
    assert f"{len(lost):,} households change grid" in text
    n_keep = int(g.loc[g["grid_code"] == keep, "households"].iloc[0])
    n_gone = int(g.loc[g["grid_code"] == gone, "households"].iloc[0])
    assert f"removed {gone} {n_gone}" in text
    assert f"outline + buildings {keep} {n_keep} {n_keep + n_gone}" in text
    table = pd.read_csv(moved, dtype=str, keep_default_na=False)
    assert table.columns.tolist() == ["unit_id", "building_id", "grid_a", "grid_b"]
    assert sorted(table["unit_id"]) == sorted(lost["household_id"])
    assert set(table["grid_a"]) == {gone} and set(table["grid_b"]) == {keep}


def test_bad_input_changes_nothing(store: Store, cli, city, tmp_path: Path) -> None:
    assert cli("import", city["layers"]).exit_code == 0
    rec = save_plan(store, read_plan(city["plan"]), author="li")
    publish_plan(store, rec.id, author="li")
    before = snapshot(store)
    junk = tmp_path / "junk.gpkg"
    junk.write_text("not a GeoPackage")
    no_buildings = tmp_path / "no_buildings.gpkg"
    comms = pyogrio.read_dataframe(city["layers"], layer="communities")
    pyogrio.write_dataframe(comms, no_buildings, layer="communities")
    clash = tmp_path / "clash.gpkg"  # a new community whose building ids are already stored
    blds = pyogrio.read_dataframe(city["layers"], layer="buildings").iloc[:5].copy()
    other = comms.iloc[:1].copy()
    other["community_id"] = "NEW1"
    other["geometry"] = other.translate(xoff=0.05).geometry
    blds["community_id"] = "NEW1"
    blds["geometry"] = blds.translate(xoff=0.05).geometry
    pyogrio.write_dataframe(other, clash, layer="communities")
    pyogrio.write_dataframe(blds, clash, layer="buildings")
    for args, message in (
        (("import", tmp_path / "missing.gpkg"), "no such file"),
        (("import", junk), "cannot open junk.gpkg"),
        (("import", no_buildings), "did not pass validation"),
        (("import", clash), "already stored for a community the import does not contain"),
        (("publish", 999), "no plan with id 999"),
        (("export", "--plan", 999, "-o", tmp_path / "x.gpkg"), "no plan with id 999"),
        (("export", "--plan", rec.id, "--format", "kml", "-o", tmp_path / "x.kml"), "format"),
        (("diff", rec.id, 999), "no plan with id 999"),
        (("plans", "--history", 999), "no plan with id 999"),
        (("plans", "--status", "live"), "unknown plan status 'live'"),
    ):
        out = cli(*args)
        assert out.exit_code == 1, (args, out.output)
        assert message in " ".join(out.stderr.split()), (args, out.stderr)
        assert snapshot(store) == before, args
    assert not (tmp_path / "x.gpkg").exists() and not (tmp_path / "x.kml").exists()


def test_partition_and_assign_through_the_store(store: Store, cli, city, tmp_path: Path) -> None:
    """`partition FILE --save` stores the plan with its layers; `assign --plan-id` staffs it."""
    out = cli("partition", city["layers"], "--save")
    assert out.exit_code == 0, out.output
    assert "stored the layers of 1 communities" in out.stdout
    assert "saved as draft plan 1 (number 1)" in out.stdout
    stored = load_layers(store)
    assert len(stored.buildings) == len(pyogrio.read_dataframe(city["layers"], layer="buildings"))
    out = cli("assign", "--plan-id", "1")
    assert out.exit_code == 0, out.output
    assert "saved the posts of plan 1 (version 2)" in out.stdout
    posts = load_plan(store, 1).assignments
    assert set(posts["role"]) >= {"chief", "worker"}
    out = cli("export", "--plan", "1", "-o", tmp_path / "plan.gpkg")
    assert out.exit_code == 0, out.output
    b = pyogrio.read_dataframe(tmp_path / "plan.gpkg", layer="buildings")
    assert len(b) == len(stored.buildings) and b.geometry.notna().all()
    a = pyogrio.read_dataframe(tmp_path / "plan.gpkg", layer="assignments")
    key = ["staff_id", "grid_code", "role"]
    pdt.assert_frame_equal(pd.DataFrame(a)[key], posts[key], check_dtype=False)


def test_partitioning_again_from_the_store_gives_the_same_grids(store: Store, cli, city) -> None:
    out = cli("partition", city["layers"], "--save")
    assert out.exit_code == 0, out.output
    out = cli("partition", "--save")
    assert out.exit_code == 0 and "saved as draft plan 2 (number 2)" in out.stdout
    assert diff_plans(store, 1, 2).unchanged


def test_export_without_stored_layers(store: Store, cli, city, tmp_path: Path) -> None:
    """A plan saved without its layers still exports: grids and memberships, no footprints."""
    plan = read_plan(city["plan"])
    rec = save_plan(store, plan, author="li")
    out = cli("export", "--plan", rec.id, "-o", tmp_path / "plan.gpkg")
    assert out.exit_code == 0, out.output
    assert "no layers for this plan's communities" in " ".join(out.stdout.split())
    layers = set(pyogrio.list_layers(tmp_path / "plan.gpkg")[:, 0])
    assert {"grids", "buildings", "households", "plan_meta"} <= layers
    assert "communities" not in layers
    grids = pyogrio.read_dataframe(tmp_path / "plan.gpkg", layer="grids")
    assert len(grids) == plan.n_grids


def test_publish_refuses_then_warns_about_communities_left_without_a_plan(
    store: Store, cli
) -> None:
    layers = make_layers(nx=3, ny=1)  # c0, c1, c2
    whole = save_plan(store, make_plan(layers), author="li", status="published")
    part = save_plan(store, make_plan(layers.subset(["c1"])), author="li")
    out = cli("publish", part.id)
    assert out.exit_code == 1
    text = " ".join(out.output.split())
    assert "leaving 2 communities outside plan" in text and "c0, c2" in text
    assert "--allow-uncovered" in text
    assert get_plan(store, whole.id).status == "published"
    assert get_plan(store, part.id).status == "draft"
    out = cli("publish", part.id, "--allow-uncovered")
    assert out.exit_code == 0
    text = " ".join(out.stdout.split())
    assert f"archived plan {whole.id} (number 1), which it replaces" in text
    assert (
        f"warning: plan {whole.id} also covered 2 communities outside plan {part.id}, which now "
        "have no published plan: c0, c2" in text
    )
