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
import shapely
from cityfixtures import CRS, tiny_plan

from gridmap.crs import wgs84_to_gcj02
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
from gridmap.layers import LEFT_OUT_ATTR
from gridmap.validation import validate_layers

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
    with pytest.raises(InputError, match="single-layer file; say which layer it is.*--layer"):
        read_layers(tmp_path / "b.geojson")
    # a single file named after its layer, or mapped, is that layer
    assert list(read_layers(tmp_path / "b.geojson", layer_map={"buildings": "b"})) == ["buildings"]
    raw["communities"].to_file(tmp_path / "communities.shp", encoding="UTF-8")
    got = read_layers(tmp_path / "communities.shp")
    assert list(got) == ["communities"] and "community_id" in got["communities"]
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
    folder = tmp_path / "two"
    folder.mkdir()
    raw["buildings"].to_file(folder / "buildings.geojson")
    raw["buildings"].to_parquet(folder / "buildings.parquet")
    with pytest.raises(InputError, match="holds buildings.geojson and buildings.parquet for"):
        read_layers(folder)


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


def _osm_like(tmp_path, raw) -> Path:
    """A tiny OpenStreetMap-style extract: osm ids and tags, a tunnel, residential landuse."""
    blds = raw["buildings"].to_crs(4326)
    osm_b = gpd.GeoDataFrame(
        {
            "osm_id": np.arange(100, 100 + len(blds)),
            "osm_type": ["way"] * (len(blds) - 1) + ["relation"],
            "building": ["apartments", "yes", "office", "yes", "yes", "school", "yes", "house"],
            "levels": [6, None, 20, None, None, 3, None, 2],
            "landuse_kind": ["residential"] * 4 + [None] * 4,
        },
        geometry=blds.geometry.values,
        crs=4326,
    )
    road = raw["roads"].to_crs(4326).geometry.iloc[0]
    osm_r = gpd.GeoDataFrame(
        {"osm_id": [1, 2], "highway": ["primary", "primary"], "tunnel": [None, "yes"]},
        geometry=[road, road],
        crs=4326,
    )
    landuse = gpd.GeoDataFrame(
        {"osm_id": [7, 8], "landuse": ["residential", "grass"]},
        geometry=raw["communities"].to_crs(4326).geometry.values,
        crs=4326,
    )
    path = tmp_path / "osm.gpkg"
    for name, frame in (("buildings", osm_b), ("roads", osm_r), ("landuse", landuse)):
        frame.to_file(path, layer=name, engine="pyogrio")
    return path


def test_osm_preset_adapts_and_reports_what_it_leaves_out(tmp_path, raw):
    path = _osm_like(tmp_path, raw)
    got = read_layers(path, preset="osm")
    assert sorted(got) == ["buildings", "compounds", "roads"]
    b = got["buildings"]
    assert b["building_id"].tolist()[:2] == ["w100", "w101"] and b["building_id"].iloc[-1] == "r107"
    # apartments by tag, yes inside residential landuse, office/school by tag, house by tag
    assert b["use"].tolist() == ["residential", "residential", "commercial", "residential"] + [
        "other",
        "public",
        "other",
        "residential",
    ]
    assert got["compounds"]["compound_id"].tolist() == ["w7"]
    assert len(got["roads"]) == 1 and got["roads"]["class"].tolist() == ["primary"]
    assert got["roads"].attrs[LEFT_OUT_ATTR] == [
        (1, "tunnels (an underpass does not bound a grid at street level)")
    ]
    got["communities"] = raw["communities"]
    _, report = validate_layers(got, reproject=True)
    f = next(f for f in report.findings if f.code == "left_out_by_reader")
    assert (f.layer, f.count) == ("roads", 1)


def test_osm_preset_on_a_file_already_canonical(tmp_path, raw):
    # e.g. data/nanjing_xinjiekou.gpkg (made from OSM): the preset must not break it or
    # lose its compounds
    raw["compounds"] = gpd.GeoDataFrame(
        {"compound_id": ["Q1"], "name": ["幸福小区"]},
        geometry=[raw["communities"].geometry.iloc[0].buffer(-20)],
        crs=CRS,
    )
    path = write_layers(raw, tmp_path / "canonical.gpkg")
    plain = read_layers(path)
    osm = read_layers(path, preset="osm")
    assert sorted(osm) == sorted(plain)
    for name in plain:
        pd.testing.assert_frame_equal(pd.DataFrame(osm[name]), pd.DataFrame(plain[name]))


def test_osm_preset_says_what_it_needs(tmp_path, raw):
    blds = raw["buildings"].rename(columns={"building_id": "BM"})
    blds.to_file(tmp_path / "x.gpkg", layer="buildings", engine="pyogrio")
    with pytest.raises(LayerError, match="osm preset expects an OSM id column.*--column buildings"):
        read_layers(tmp_path / "x.gpkg", preset="osm")


def test_write_layers_is_reproducible_with_a_timestamp(tmp_path, raw):
    stamp = "2000-01-01T00:00:00Z"
    a = write_layers(raw, tmp_path / "a.gpkg", timestamp=stamp)
    b = write_layers(raw, tmp_path / "b.gpkg", timestamp=stamp)
    assert a.read_bytes() == b.read_bytes()
    c = write_layers(raw, tmp_path / "c.gpkg")  # the clock, as GDAL does by default
    assert c.read_bytes() != a.read_bytes()
    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None  # restored
    d = write_layers(raw, tmp_path / "d.gpkg", description="Data © OpenStreetMap contributors")
    for name in raw:  # QGIS shows it as the layer's description
        info = pyogrio.read_info(d, layer=name)
        assert info["layer_metadata"] == {"DESCRIPTION": "Data © OpenStreetMap contributors"}
    with pytest.raises(InputError, match="not a UTC time like 2024-01-01T00:00:00Z"):
        write_layers(raw, tmp_path / "d.gpkg", timestamp="yesterday")


def test_gcj02_files_are_converted_to_wgs84(tmp_path, raw):
    # a folder as exported from an AMap-based tool: every lon/lat is GCJ-02, ~500 m off WGS84
    def to_gcj(gdf):
        geoms = shapely.transform(
            gdf.to_crs(4326).geometry.values, lambda xy: np.column_stack(wgs84_to_gcj02(*xy.T))
        )
        return gdf.to_crs(4326).set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=4326))

    folder = tmp_path / "amap"
    folder.mkdir()
    to_gcj(raw["communities"]).to_file(folder / "communities.geojson")
    to_gcj(raw["buildings"]).to_file(folder / "buildings.geojson")
    hh = to_gcj(raw["households"])
    table = pd.DataFrame(hh.drop(columns="geometry"))
    table["lng"], table["lat"] = hh.geometry.x, hh.geometry.y
    table.to_csv(folder / "households.csv", index=False)

    got = read_layers(folder, coords="gcj02")
    for name in ("communities", "buildings", "households"):
        back = got[name].to_crs(CRS).geometry
        err = shapely.hausdorff_distance(back.values, raw[name].geometry.values)
        assert err.max() < 1e-3, name  # below a millimetre
    layers, report = validate_layers(got)
    assert report.ok and "far_from_building" not in {f.code for f in report.findings}
    converted = {f.layer: f for f in report.findings if f.code == "converted_to_wgs84"}
    assert sorted(converted) == ["buildings", "communities", "households"]
    assert converted["buildings"].message == (
        "buildings coordinates were read as GCJ-02 and converted to WGS84"
    )

    # only the households CSV is GCJ-02: the CSV's own CRS, or coords per layer
    raw["communities"].to_crs(4326).to_file(folder / "communities.geojson")
    raw["buildings"].to_crs(4326).to_file(folder / "buildings.geojson")
    one = read_layers(folder, coords={"households": "gcj02"})
    two = read_layers(folder, csv_crs="gcj-02")
    assert one["households"].geom_equals_exact(two["households"], tolerance=0).all()
    assert validate_layers(one)[1].ok
    # undeclared, the shift is caught: households ~500 m from their buildings
    _, report = validate_layers(read_layers(folder))
    far = next(f for f in report.findings if f.code == "far_from_building")
    assert far.count == 24 and "--coords gcj02" in far.message

    with pytest.raises(InputError, match="not an offset Chinese system"):
        read_layers(folder, coords="wgs84")
    with pytest.raises(InputError, match="unknown layer 'houses' in coords"):
        read_layers(folder, coords={"houses": "gcj02"})
    write_layers(raw, tmp_path / "projected.gpkg", crs=CRS)
    with pytest.raises(InputError, match="projected CRS .* declared GCJ02"):
        read_layers(tmp_path / "projected.gpkg", coords="gcj02")


def test_csv_from_excel_in_gbk_with_named_coordinate_columns(tmp_path, raw):
    # what a street office exports from Excel on Chinese Windows: GBK text, Chinese headers
    hh = raw["households"].to_crs(4326)
    table = pd.DataFrame(
        {
            "户编号": hh["household_id"],
            "楼栋编号": hh["building_id"],
            "X坐标": hh.geometry.x.round(9),
            "Y坐标": hh.geometry.y.round(9),
        }
    )
    table.to_csv(tmp_path / "households.csv", index=False, encoding="gbk")
    cmap = parse_column_map(
        [
            "households.household_id=户编号",
            "households.building_id=楼栋编号",
            "households.lon=X坐标",
            "households.lat=Y坐标",
        ]
    )
    got = read_layers({"households": tmp_path / "households.csv"}, column_map=cmap)["households"]
    assert got["household_id"].tolist() == hh["household_id"].tolist()
    assert got.crs.to_epsg() == 4326 and "X坐标" not in got
    err = shapely.distance(got.to_crs(CRS).geometry.values, raw["households"].geometry.values)
    assert err.max() < 1e-3
    with pytest.raises(LayerError, match="has no column 'lng' for coordinates"):
        read_layers(
            {"households": tmp_path / "households.csv"},
            column_map={"households": {"lon": "lng", "lat": "Y坐标"}},
        )
    raw["buildings"].to_file(tmp_path / "b.geojson")
    with pytest.raises(LayerError, match="buildings.lon/buildings.lat is for CSV files"):
        read_layers({"buildings": tmp_path / "b.geojson"}, column_map={"buildings": {"lon": "x"}})
    (tmp_path / "bin.csv").write_bytes(b"a,b\n\xff\xfe\xff,\x81\n")
    with pytest.raises(InputError, match="neither UTF-8 nor GBK/GB18030"):
        read_layer(tmp_path / "bin.csv")


def test_osm_preset_reads_waterways_and_district_borders_as_barriers(tmp_path, raw):
    path = _osm_like(tmp_path, raw)
    x0, y0, x1, y1 = raw["communities"].to_crs(4326).total_bounds
    across = shapely.LineString([(x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)])
    down = shapely.LineString([((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)])
    frames = {
        "barriers": gpd.GeoDataFrame(
            {"osm_id": [1], "barrier": ["wall"]}, geometry=[across], crs=4326
        ),
        "waterways": gpd.GeoDataFrame(
            {"osm_id": [2, 3], "waterway": ["river", "canal"], "tunnel": [None, "culvert"]},
            geometry=[down, across],
            crs=4326,
        ),
        "admin": gpd.GeoDataFrame(
            {"osm_id": [4], "boundary": ["administrative"], "name": ["玄武区|鼓楼区"]},
            geometry=[down],
            crs=4326,
        ),
    }
    for name, frame in frames.items():
        frame.to_file(path, layer=name, engine="pyogrio")
    got = read_layers(path, preset="osm")["barriers"]
    assert got["kind"].tolist() == ["wall", "river", "boundary"]
    assert got.attrs[LEFT_OUT_ATTR] == [
        (1, "waterways in culverts (underground water bounds nothing)")
    ]
    # mapped by hand, or without the preset, the barriers layer is read as it is
    mapped = read_layers(path, preset="osm", layer_map={"barriers": "barriers"})["barriers"]
    assert len(mapped) == 1
    assert len(read_layers(path)["barriers"]) == 1


@pytest.mark.skipif(not REAL.exists(), reason="shared real data not present")
def test_osm_preset_barriers_of_the_real_areas():
    nanjing = read_layers(REAL / "nanjing-central" / "nanjing_central.gpkg", preset="osm")
    assert nanjing["barriers"]["kind"].value_counts().to_dict() == {
        "boundary": 5,
        "river": 4,
        "city_wall": 1,
    }
    shanghai = REAL / "shanghai-huangpu-lujiazui" / "shanghai_huangpu_lujiazui.gpkg"
    kinds = read_layers(shanghai, preset="osm")["barriers"]["kind"].value_counts()
    assert kinds["boundary"] == 3 and kinds["wall"] == 23 and kinds.sum() == 40


# ----------------------------------------------------------------------------- OSM ids (#14)


@pytest.mark.parametrize(
    ("values", "kinds", "expected"),
    [
        ([123, 45], ["way", "relation"], ["w123", "r45"]),  # GDAL / pyrosm: id + type
        (["way/123", "relation/45", "node/7"], None, ["w123", "r45", "n7"]),  # Overpass
        (["w123", "r45", "n7"], None, ["w123", "r45", "n7"]),  # OSMnx, gridmap
        ([123.0, "123"], None, ["w123", "w123"]),  # plain numbers: ways
        ([-6651434], ["relation"], ["r6651434"]),  # osmium's negative relation ids
        (["W 12", "Relation:3"], None, ["w12", "r3"]),
    ],
)
def test_osm_ids_in_every_form(values, kinds, expected):
    from gridmap.io import osm_ids

    ids, bad = osm_ids(values, kinds)
    assert ids.tolist() == expected and bad == []


def test_osm_ids_name_what_they_cannot_read():
    from gridmap.io import osm_ids

    ids, bad = osm_ids(["way/1", "abc", None, "x/2"])
    assert ids.tolist() == ["w1", None, None, None]
    assert bad == ["abc", None, "x/2"]


def _osm_buildings_file(tmp_path, raw, ids, extra=None) -> Path:
    blds = (
        raw["buildings"]
        .head(len(ids))
        .drop(columns=["building_id", "use", "households"], errors="ignore")
    )
    blds = blds.assign(building=["apartments"] + ["office"] * (len(ids) - 1), **(extra or {}))
    blds["@id"] = ids
    path = tmp_path / "osm.gpkg"
    blds.to_file(path, layer="buildings", engine="pyogrio")
    return path


def test_osm_preset_reads_overpass_ids_and_keeps_the_tags_with_a_column_map(tmp_path, raw):
    path = _osm_buildings_file(tmp_path, raw, ["way/11", "w12", "relation/13"])
    got = read_layers(path, preset="osm")["buildings"]
    assert got["building_id"].tolist() == ["w11", "w12", "r13"]
    assert got["use"].tolist() == ["residential", "commercial", "commercial"]
    # mapping the id by hand keeps the preset on: uses from tags, ids normalised
    got = read_layers(path, preset="osm", column_map={"buildings": {"osm_id": "@id"}})["buildings"]
    assert got["building_id"].tolist() == ["w11", "w12", "r13"]
    assert got["use"].tolist() == ["residential", "commercial", "commercial"]
    got = read_layers(path, preset="osm", column_map={"buildings": {"building_id": "@id"}})
    assert got["buildings"]["building_id"].tolist() == ["w11", "w12", "r13"]
    assert got["buildings"]["use"].tolist() == ["residential", "commercial", "commercial"]


def test_osm_preset_levels_from_height(tmp_path, raw):
    path = _osm_buildings_file(
        tmp_path, raw, [1, 2], extra={"height_m": [31.0, 2.0], "levels": [np.nan, np.nan]}
    )
    got = read_layers(path, preset="osm")["buildings"]
    assert got["levels"].iloc[0] == 10 and np.isnan(got["levels"].iloc[1])


def test_osm_preset_bad_ids_are_an_error_not_a_traceback(tmp_path, raw):
    path = _osm_buildings_file(tmp_path, raw, ["way/1", "not an id"])
    with pytest.raises(LayerError, match=r"not OpenStreetMap ids, e\.g\. 'not an id'"):
        read_layers(path, preset="osm", column_map={"buildings": {"osm_id": "@id"}})


def test_every_mapping_problem_in_one_run(tmp_path, raw):
    path = tmp_path / "c.gpkg"
    write_layers(raw, path)
    cmap = {
        "buildings": {"levels": "floors"},
        "roads": {"class": "grade"},
        "staff": {"name": "xm"} if "staff" in raw else {"x": "y"},
    }
    with pytest.raises(LayerError, match=r"problem\(s\).*floors.*grade") as exc:
        read_layers(path, column_map=cmap)
    assert str(exc.value).count("does not have") >= 2
