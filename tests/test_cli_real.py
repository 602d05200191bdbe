"""``--derive-communities`` through the real ``gridmap`` entry point, on the real OSM areas.

OpenStreetMap extracts have no community (社区) boundaries; with the option, ``validate``,
``partition``, ``run`` and ``import`` derive stand-in areas and say so in the report.
"""

from __future__ import annotations

import json

import geopandas as gpd
import pyogrio
import pytest
from cityfixtures import tiny_raw
from clirun import REAL, gridmap

from gridmap.io import write_layers

AREAS = {
    "nanjing": REAL / "nanjing-central" / "nanjing_central.gpkg",
    "shanghai": REAL / "shanghai-huangpu-lujiazui" / "shanghai_huangpu_lujiazui.gpkg",
}
needs_real = pytest.mark.skipif(
    not REAL.is_dir(),
    reason=f"the shared OpenStreetMap extracts are not at {REAL} (../shared/data/real beside "
    "the checkout)",
)


@needs_real
@pytest.mark.parametrize(("area", "n_derived"), [("nanjing", 7), ("shanghai", 2)])
def test_validate_real_area_with_derived_communities(area, n_derived):
    out = gridmap("validate", AREAS[area], "--preset", "osm", "--derive-communities")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"the {n_derived} communities are derived stand-ins" in out.stdout
    assert "valid —" in out.stdout and "NOT valid" not in out.stdout
    js = gridmap("validate", AREAS[area], "--preset", "osm", "--derive-communities", "--json")
    assert js.returncode == 0
    report = json.loads(js.stdout)
    assert report["ok"] is True
    derived = [f for f in report["findings"] if f["code"] == "derived_communities"]
    assert [(f["layer"], f["severity"], f["count"]) for f in derived] == [
        ("communities", "warning", n_derived)
    ]
    assert report["rows_out"]["communities"] == n_derived
    assert report["rows_out"]["buildings"] == report["rows_in"]["buildings"]  # none left out


@needs_real
def test_without_the_option_the_error_points_to_it():
    out = gridmap("validate", AREAS["shanghai"], "--preset", "osm", "--json")
    assert out.returncode == 1
    missing = next(f for f in json.loads(out.stdout)["findings"] if f["code"] == "missing_layer")
    assert missing["layer"] == "communities"
    assert "--derive-communities" in missing["message"]


@needs_real
@pytest.mark.slow
def test_partition_real_area_with_derived_communities(tmp_path):
    out = gridmap(
        "partition", AREAS["shanghai"], "--preset", "osm", "--derive-communities",
        "--out", "plan.gpkg", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "derived stand-ins" in out.stdout
    grids = gpd.read_file(tmp_path / "plan.gpkg", layer="grids")
    assert set(grids["community_id"]) == {"D001", "D002"}
    assert grids["grid_code"].str.fullmatch(r"D00[12]-\d{3}").all()
    assert set(grids["kind"]) <= {"residential", "dedicated"}
    residential = grids[grids["kind"] == "residential"]  # dedicated grids: outside the band
    assert residential["households"].between(200, 500).all()


@needs_real
@pytest.mark.slow
def test_run_and_import_real_area_with_derived_communities(tmp_path):
    db = f"sqlite:///{tmp_path / 'store.db'}"
    out = gridmap(
        "run", AREAS["shanghai"], "--preset", "osm", "--derive-communities", "--db", db,
        "--out-dir", "out", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "derived stand-ins" in out.stdout and "stored and published" in out.stdout
    assert (tmp_path / "out" / "plan.gpkg").exists() and (tmp_path / "out" / "plan.html").exists()
    imp = gridmap(
        "import", AREAS["shanghai"], "--preset", "osm", "--derive-communities", "--db", db
    )
    assert imp.returncode == 0, imp.stdout + imp.stderr
    assert "derived stand-ins" in imp.stdout and "2 communities" in imp.stdout


@needs_real  # Shanghai is not shipped (Nanjing is: data/osm/nanjing_central.gpkg)
def test_two_cities_derived_into_one_store_need_their_own_prefix(tmp_path):
    db = f"sqlite:///{tmp_path / 'store.db'}"
    osm = ("--preset", "osm", "--derive-communities", "--db", db)
    first = gridmap("import", AREAS["shanghai"], *osm)
    assert first.returncode == 0, first.stdout + first.stderr
    # Nanjing's derived areas are numbered D001… too: importing them would replace Shanghai's
    clash = gridmap("import", AREAS["nanjing"], *osm)
    assert clash.returncode == 1
    message = " ".join((clash.stdout + clash.stderr).split())
    assert "already stored for another place: D001, D002" in message
    assert "--derived-prefix" in message
    ok = gridmap("import", AREAS["nanjing"], *osm, "--derived-prefix", "NJ")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    from gridmap.db import Store, list_communities

    with Store.from_url(db) as store:
        ids = sorted(list_communities(store)["community_id"])
    assert ids == ["D001", "D002", *(f"NJ{k:03d}" for k in range(1, 8))]


def test_option_with_communities_present_derives_none(tmp_path):
    city = write_layers(tiny_raw(), tmp_path / "city.gpkg")
    out = gridmap("validate", city, "--derive-communities", "--json")
    assert out.returncode == 0, out.stdout
    report = json.loads(out.stdout)
    codes = {f["code"]: f for f in report["findings"]}
    assert codes["derive_not_needed"]["severity"] == "info"
    assert "derived_communities" not in codes
    assert report["rows_out"]["communities"] == 2


def test_option_on_a_file_that_cannot_be_derived_reports_why(tmp_path):
    raw = tiny_raw()
    roads_only = write_layers({"roads": raw["roads"]}, tmp_path / "roads.gpkg")
    out = gridmap("validate", roads_only, "--derive-communities", "--json")
    assert out.returncode == 1
    errors = {f["code"]: f for f in json.loads(out.stdout)["findings"] if f["severity"] == "error"}
    assert "needs a buildings layer" in errors["derive_failed"]["message"]
    assert errors["missing_layer"]["layer"] in ("communities", "buildings")
    assert {str(r[0]) for r in pyogrio.list_layers(roads_only)} == {"roads"}  # file untouched
