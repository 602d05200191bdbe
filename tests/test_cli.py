"""The real command line, run as a subprocess (the entry point users run)."""

from __future__ import annotations

import json

import pyogrio
import pytest
from cityfixtures import tiny_raw
from clirun import REAL, SAMPLE, gridmap

from gridmap.io import write_layers


@pytest.fixture
def city(tmp_path):
    return write_layers(tiny_raw(), tmp_path / "city.gpkg")


def test_help_lists_commands():
    out = gridmap("--help")
    assert out.returncode == 0
    for cmd in ("synth", "validate", "partition", "assign", "run"):
        assert cmd in out.stdout


def test_validate_valid_file(city):
    out = gridmap("validate", city)
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout and "EPSG:4549" in out.stdout


def test_validate_broken_file(tmp_path):
    raw = tiny_raw()
    blds = raw["buildings"].copy()
    blds.loc[3, "building_id"] = blds.loc[0, "building_id"]  # duplicate id
    raw["buildings"] = blds
    hh = raw["households"].copy()
    hh.loc[0, "building_id"] = None
    hh.loc[0, "geometry"] = None  # no building, no point: rejected
    raw["households"] = hh
    path = write_layers(raw, tmp_path / "broken.gpkg")
    out = gridmap("validate", path)
    assert out.returncode == 1
    assert "duplicate" in out.stdout and "NOT valid" in out.stdout
    js = gridmap("validate", path, "--json")
    assert js.returncode == 1
    report = json.loads(js.stdout)
    assert report["ok"] is False
    assert {f["code"] for f in report["findings"] if f["severity"] == "error"} == {"duplicate_id"}


def test_validate_missing_file_is_one_clear_line(tmp_path):
    out = gridmap("validate", tmp_path / "nope.gpkg")
    assert out.returncode == 1
    assert "error: no such file or folder" in out.stderr
    assert "Traceback" not in out.stderr


def test_validate_column_mapping(tmp_path):
    raw = tiny_raw()
    raw["buildings"] = raw["buildings"].rename(columns={"building_id": "BM"})
    raw["households"] = raw["households"].rename(columns={"building_id": "BM"})
    path = write_layers(raw, tmp_path / "renamed.gpkg")
    assert gridmap("validate", path).returncode == 1
    out = gridmap(
        "validate",
        path,
        "--column",
        "buildings.building_id=BM",
        "--map",  # the alias
        "households.building_id=BM",
    )
    assert out.returncode == 0, out.stdout


@pytest.mark.skipif(not REAL.exists(), reason="shared real data not present")
@pytest.mark.parametrize(
    ("folder", "pairs", "estimated"),
    # nanjing: levels from height_m / 3 m where OSM has no building:levels (issue 14)
    [("nanjing-central", 24, 21180), ("shanghai-huangpu-lujiazui", 35, 5912)],
)
def test_validate_real_osm_extracts(folder, pairs, estimated):
    path = next((REAL / folder).glob("*.gpkg"))
    out = gridmap("validate", path, "--preset", "osm", "--json")
    report = json.loads(out.stdout)
    assert out.returncode == 1  # no community boundaries in an OSM extract
    codes = {f["code"]: f for f in report["findings"]}
    assert codes["missing_layer"]["layer"] == "communities"
    assert codes["overlapping_buildings"]["count"] == pairs
    assert f"{estimated} households in all" in codes["households_estimated"]["message"]


def test_synth_writes_every_layer(tmp_path):
    out = gridmap("synth", tmp_path / "s.gpkg", "--buildings", "600", "--seed", "3")
    assert out.returncode == 0, out.stderr
    layers = {str(r[0]) for r in pyogrio.list_layers(tmp_path / "s.gpkg")}
    assert layers == {
        "communities",
        "buildings",
        "households",
        "roads",
        "barriers",
        "compounds",
        "staff",
    }
    assert gridmap("validate", tmp_path / "s.gpkg").returncode == 0


def test_main_job_on_bundled_sample(tmp_path):
    out = gridmap("run", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Households in band" in out.stdout
    assert "stored and published as plan 1 in sqlite:///gridmap.db" in out.stdout
    assert (tmp_path / "gridmap.db").stat().st_size > 0
    grids = pyogrio.read_dataframe(tmp_path / "gridmap-out" / "plan.gpkg", layer="grids")
    assert len(grids) >= 40 and grids["grid_code"].str.fullmatch(r"\d{15}").all()
    assignments = pyogrio.read_dataframe(
        tmp_path / "gridmap-out" / "plan.gpkg", layer="assignments"
    )
    assert set(assignments["role"]) == {"chief", "worker"}
    vacant = assignments[assignments["staff_id"].isna()]
    # every vacant post is printed with its reason and a suggestion naming a person or a remedy
    for code in vacant["grid_code"].unique()[:12]:
        line = next(ln for ln in out.stdout.splitlines() if ln.strip().startswith(code))
        assert ": " in line and "→ " in out.stdout.split(line, 1)[1].splitlines()[1]
    html = (tmp_path / "gridmap-out" / "plan.html").read_text(encoding="utf-8")
    assert "grid_code" in html and "户数" in html
    again = gridmap("run", cwd=tmp_path)  # a re-run publishes plan 2 and archives plan 1
    assert again.returncode == 0 and "published as plan 2" in again.stdout


def test_partition_assign_map_on_one_community(tmp_path):
    plan = tmp_path / "plan.gpkg"
    out = gridmap(
        "partition",
        SAMPLE,
        "--community",
        "C0005",
        "--out",
        plan,
        "--report",
        tmp_path / "report.json",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["overall"]["n_communities"] == 1
    blds = pyogrio.read_dataframe(SAMPLE, layer="buildings", read_geometry=False)
    in_c0005 = blds.loc[blds["community_id"] == "C0005", "households"].sum()
    assert report["overall"]["households"] == in_c0005
    out = gridmap("assign", plan, "--staff", SAMPLE)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "posts filled" in out.stdout
    assert "assignments" in {str(r[0]) for r in pyogrio.list_layers(plan)}
    out = gridmap("map", plan, "-o", tmp_path / "plan.html")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "plan.html").stat().st_size > 10_000


def test_partition_refuses_bad_input_and_writes_nothing(tmp_path):
    raw = tiny_raw()  # without its buildings layer: not valid
    bad = write_layers({k: v for k, v in raw.items() if k != "buildings"}, tmp_path / "bad.gpkg")
    out = gridmap("partition", bad, "--out", tmp_path / "plan.gpkg")
    assert out.returncode == 1
    assert "did not pass validation" in out.stderr
    assert not (tmp_path / "plan.gpkg").exists()
    out = gridmap("partition", SAMPLE, "--lock", "320104001001001", "--out", tmp_path / "p.gpkg")
    assert out.returncode == 1 and "--lock needs --previous" in out.stderr
    out = gridmap("partition", SAMPLE, "--community", "NOPE", "--out", tmp_path / "p.gpkg")
    assert out.returncode == 1 and "unknown community id(s) NOPE" in out.stderr
    assert not (tmp_path / "p.gpkg").exists()


def test_store_commands_round_trip(tmp_path):
    db = f"sqlite:///{tmp_path / 'store.db'}"
    out = gridmap("db", "upgrade", "--db", db)
    assert out.returncode == 0 and "revision" in out.stdout, out.stderr
    out = gridmap("import", SAMPLE, "--db", db)
    assert out.returncode == 0, out.stderr
    assert "21,770 households" in out.stdout
    out = gridmap("partition", "--db", db, "--community", "C0005", "--save")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "saved as draft plan 1" in out.stdout
    assert not (tmp_path / "plan.gpkg").exists()
    out = gridmap("assign", "--plan-id", "1", "--db", db)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "saved the posts of plan 1" in out.stdout
    out = gridmap("publish", "1", "--db", db, "--expected-version", "7")
    assert out.returncode == 1 and "version" in out.stderr  # stale: refused, nothing changes
    out = gridmap("plans", "--db", db)
    assert out.returncode == 0 and "draft" in out.stdout
    out = gridmap("publish", "1", "--db", db)
    assert out.returncode == 0 and "is published" in out.stdout
    for fmt in ("gpkg", "geojson", "shp", "parquet", "csv"):
        dest = tmp_path / f"plan.{fmt}"
        out = gridmap("export", "--plan", "1", "--format", fmt, "-o", dest, "--db", db)
        assert out.returncode == 0, out.stderr
        assert dest.exists()
    layers = {str(r[0]) for r in pyogrio.list_layers(tmp_path / "plan.gpkg")}
    assert {"grids", "buildings", "communities", "assignments"} <= layers
    out = gridmap("export", "--plan", "99", "-o", tmp_path / "x.gpkg", "--db", db)
    assert out.returncode == 1 and "99" in out.stderr and not (tmp_path / "x.gpkg").exists()


def test_assign_keeps_the_plan_file_whole(tmp_path):
    plan = tmp_path / "plan.gpkg"
    assert gridmap("partition", SAMPLE, "--community", "C0005", "--out", plan).returncode == 0
    before = {str(r[0]) for r in pyogrio.list_layers(plan)}
    assert gridmap("assign", plan, "--staff", SAMPLE).returncode == 0
    after = {str(r[0]) for r in pyogrio.list_layers(plan)}
    assert after == before | {"assignments"}
    buildings = pyogrio.read_dataframe(plan, layer="buildings")
    assert buildings.geometry.notna().all()
    out = gridmap("assign", plan)
    assert out.returncode == 1 and "--staff FILE is needed" in out.stderr


def test_version_verbosity_and_completion_flags(tmp_path) -> None:
    from gridmap import __version__

    r = gridmap("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"gridmap {__version__}"
    r = gridmap("--help")
    assert "--verbose" in r.stdout and "--quiet" in r.stdout and "--install-completion" in r.stdout
    # -v shows the log lines of the work (here: the store's migrations), -q hides them
    loud = gridmap("-v", "db", "upgrade", "--db", f"sqlite:///{tmp_path / 'a.db'}")
    assert loud.returncode == 0 and "INFO alembic" in loud.stderr
    quiet = gridmap("-q", "db", "upgrade", "--db", f"sqlite:///{tmp_path / 'b.db'}")
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr
