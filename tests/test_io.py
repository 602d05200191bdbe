from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from cityfixtures import CRS, tiny_plan

from gridmap.errors import InputError, LayerError
from gridmap.io import (
    export_plan,
    parse_column_map,
    read_layer,
    read_layers,
    read_plan,
    write_layers,
    write_plan,
)
from gridmap.layers import validate_layers

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def test_geopackage_round_trip(tmp_path, raw):
    path = write_layers(raw, tmp_path / "city.gpkg")
    back = read_layers(path)
    assert sorted(back) == sorted(raw)
    assert back["buildings"].crs.to_epsg() == 4326
    b = back["buildings"].to_crs(CRS)
    np.testing.assert_allclose(b.area.to_numpy(), raw["buildings"].area.to_numpy(), rtol=1e-6)
    assert back["communities"]["name"].tolist() == ["幸福社区", "和平社区"]
    layers, report = validate_layers(back)
    assert report.ok and layers.buildings["households"].sum() == 24


def test_folder_of_files_with_csv(tmp_path, raw):
    folder = tmp_path / "city"
    folder.mkdir()
    raw["communities"].to_file(folder / "communities.shp", encoding="UTF-8")
    raw["buildings"].to_crs(4326).to_file(folder / "buildings.geojson")
    hh = raw["households"].to_crs(4326)
    pd.DataFrame(
        {
            "household_id": hh["household_id"],
            "building_id": hh["building_id"],
            "lon": hh.geometry.x,
            "lat": hh.geometry.y,
        }
    ).to_csv(folder / "households.csv", index=False)
    staff = raw["staff"]
    pd.DataFrame(staff.drop(columns="geometry")).to_csv(folder / "staff.csv", index=False)
    back = read_layers(folder)
    assert sorted(back) == ["buildings", "communities", "households", "staff"]
    assert back["households"].geometry.geom_type.eq("Point").all()
    assert back["staff"].geometry.isna().all()
    layers, report = validate_layers(back, reproject=True)
    assert report.ok
    assert layers.staff["can_be_chief"].tolist() == [True, False]
    assert layers.buildings["households"].tolist() == [3] * 8


def test_mapping_source_column_and_layer_map(tmp_path, raw):
    blds = raw["buildings"].rename(columns={"building_id": "楼栋编号"})
    blds.to_file(tmp_path / "b.geojson")
    raw["communities"].to_file(tmp_path / "c.gpkg", layer="shequ")
    out = read_layers(
        {"buildings": tmp_path / "b.geojson"},
        column_map={"buildings": {"building_id": "楼栋编号"}},
    )
    assert "building_id" in out["buildings"]
    out = read_layers(tmp_path / "c.gpkg", layer_map={"communities": "shequ"})
    assert list(out) == ["communities"]
    with pytest.raises(LayerError, match="names column.*that b.geojson does not have"):
        read_layers(
            {"buildings": tmp_path / "b.geojson"}, column_map={"buildings": {"building_id": "bid"}}
        )


def test_read_guards(tmp_path, raw):
    with pytest.raises(InputError, match="no such file or folder"):
        read_layers(tmp_path / "missing.gpkg")
    raw["buildings"].to_file(tmp_path / "b.geojson")
    with pytest.raises(InputError, match="single-layer file; say which layer it is"):
        read_layers(tmp_path / "b.geojson")
    (tmp_path / "x.dxf").write_text("0")
    with pytest.raises(InputError, match="cannot tell the format"):
        read_layer(tmp_path / "x.dxf")
    raw["buildings"].to_file(tmp_path / "other.gpkg", layer="houses")
    with pytest.raises(LayerError, match="holds no canonical layer.*houses"):
        read_layers(tmp_path / "other.gpkg")
    (tmp_path / "bad.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(InputError, match="cannot open bad.gpkg"):
        read_layers(tmp_path / "bad.gpkg")
    with pytest.raises(InputError, match="unknown preset 'x'; presets are osm"):
        read_layers(tmp_path / "other.gpkg", preset="x")


def test_parse_column_map_guards():
    with pytest.raises(InputError, match="write LAYER.CANONICAL=SOURCE"):
        parse_column_map(["buildings.building_id"])
    with pytest.raises(InputError, match="unknown layer 'houses'"):
        parse_column_map(["houses.building_id=id"])


def test_failed_write_leaves_existing_file_untouched(tmp_path, raw, monkeypatch):
    path = write_layers(raw, tmp_path / "city.gpkg")
    before = path.read_bytes()
    real_write = pyogrio.write_dataframe
    calls = []

    def disk_full_on_third_layer(*args, **kwargs):
        calls.append(kwargs.get("layer"))
        if len(calls) == 3:
            raise OSError("No space left on device")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(pyogrio, "write_dataframe", disk_full_on_third_layer)
    with pytest.raises(OSError, match="No space left"):
        write_layers(raw, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["city.gpkg"]


def test_plan_round_trip(tmp_path, raw):
    layers, _ = validate_layers(raw)
    plan = tiny_plan(layers)
    path = write_plan(plan, tmp_path / "plan.gpkg", layers=layers)
    names = [str(r[0]) for r in pyogrio.list_layers(path)]
    assert names == ["grids", "buildings", "communities", "households", "plan_meta"]
    b = gpd.read_file(path, layer="buildings")
    assert b.crs.to_epsg() == 4326 and b.geometry.notna().all() and "grid_code" in b
    back = read_plan(path)
    assert back.crs.equals(plan.crs)
    assert back.grids["grid_code"].tolist() == plan.grids["grid_code"].tolist()
    assert back.grids["boundary_desc"].iloc[0].startswith("东至中山路")
    assert back.grids["locked"].tolist() == [False, True]
    np.testing.assert_allclose(back.grids.area.to_numpy(), [40_000.0, 40_000.0], atol=0.01)
    pd.testing.assert_frame_equal(
        back.buildings.sort_values("building_id").reset_index(drop=True),
        plan.buildings.sort_values("building_id").reset_index(drop=True),
        check_dtype=False,
    )
    assert back.households["grid_code"].tolist() == plan.households["grid_code"].tolist()
    assert back.params == plan.params
    assert back.report.communities["notes"].tolist() == ["", "单一网格"]
    assert back.report.overall == {"share_in_band": 0.0, "n_grids": 2}


def test_plan_file_carries_map_context(tmp_path, raw):
    from gridmap.io import read_plan_layers

    layers, _ = validate_layers(raw)
    path = write_plan(tiny_plan(layers), tmp_path / "plan.gpkg", layers=layers)
    ctx = read_plan_layers(path)
    assert ctx.crs.equals(layers.crs)
    assert ctx.communities["community_id"].tolist() == ["C1", "C2"]
    assert sorted(ctx.buildings["building_id"]) == sorted(layers.buildings["building_id"])
    bare = write_plan(tiny_plan(layers), tmp_path / "bare.gpkg")
    assert read_plan_layers(bare) is None


def test_read_plan_guards(tmp_path, raw):
    write_layers(raw, tmp_path / "city.gpkg")
    with pytest.raises(LayerError, match="is not a gridmap plan"):
        read_plan(tmp_path / "city.gpkg")
    with pytest.raises(InputError, match="no such plan file"):
        read_plan(tmp_path / "none.gpkg")


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "shp", "parquet", "csv"])
def test_export_every_format(tmp_path, raw, fmt):
    layers, _ = validate_layers(raw)
    plan = tiny_plan(layers)
    suffix = {
        "gpkg": ".gpkg",
        "geojson": ".geojson",
        "shp": ".shp",
        "parquet": ".parquet",
        "csv": ".csv",
    }[fmt]
    path = export_plan(plan, tmp_path / f"grids{suffix}", layers=layers)
    if fmt == "csv":
        table = pd.read_csv(path)
        assert table["grid_code"].astype(str).tolist() == plan.grids["grid_code"].tolist()
        assert table["wkt"].str.startswith("POLYGON").all()
        assert table["lon"].between(119, 121).all()
    elif fmt == "parquet":
        back = gpd.read_parquet(path)
        assert len(back) == 2 and back.crs.to_epsg() == 4326
    else:
        back = gpd.read_file(path, layer="grids" if fmt == "gpkg" else None)
        assert len(back) == 2 and back.crs.to_epsg() == 4326
        desc = "sizhi" if fmt == "shp" else "boundary_desc"
        assert back[desc].iloc[0].startswith("东至中山路")
    if fmt != "csv" and fmt != "parquet" and shutil.which("ogrinfo"):
        out = subprocess.run(
            ["ogrinfo", "-ro", "-al", "-so", str(path)], capture_output=True, text=True, check=True
        )
        assert "Feature Count: 2" in out.stdout


def test_export_unknown_format(tmp_path, raw):
    layers, _ = validate_layers(raw)
    with pytest.raises(InputError, match="unknown format 'kml'"):
        export_plan(tiny_plan(layers), tmp_path / "x.kml", fmt="kml")


@pytest.mark.skipif(not REAL.exists(), reason="shared real data not present")
def test_osm_preset_on_real_nanjing():
    raw = read_layers(REAL / "nanjing-central" / "nanjing_central.gpkg", preset="osm")
    b = raw["buildings"]
    assert b["building_id"].str.match(r"^[wr]-?\d+$").all()
    assert b["building_id"].is_unique
    assert (b["use"] == "residential").sum() == 518  # as documented for the extract
    assert "communities" not in raw
    assert json.dumps(sorted(raw)) == json.dumps(["barriers", "buildings", "compounds", "roads"])
