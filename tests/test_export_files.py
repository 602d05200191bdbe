"""Exported files as Excel, QGIS and ArcGIS users open them: BOM, codes as text, field keys.

The tiny city's plan has two grids, 320104001001001 (幸福社区第001网格) and
320104001002001 (和平社区第001网格).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pyogrio
import pyproj
import pytest
from cityfixtures import tiny_plan
from typer.testing import CliRunner

from gridmap.cli import app
from gridmap.db import Store, save_plan
from gridmap.io import export_plan
from gridmap.validation import validate_layers

BOM = b"\xef\xbb\xbf"
CODES = ["320104001001001", "320104001002001"]
KEY = [
    ["字段 DBF field", "列名 Column", "含义 Meaning"],
    [
        "grid_code",
        "grid_code",
        "网格编码：社区代码+3位序号 Grid code: community code + 3-digit sequence",
    ],
    ["comm_id", "community_id", "社区标识 Community id"],
    ["name", "name", "网格名称 Grid name"],
    ["households", "households", "户数 Households"],
    ["persons", "persons", "人口 Persons (empty when unknown)"],
    ["n_bldgs", "n_buildings", "楼栋数 Buildings"],
    ["sizhi", "boundary_desc", "四至：东西南北边界 Boundaries to the east, south, west and north"],
    [
        "locked",
        "locked",
        "锁定（重新划分时不变） Locked: kept as is when re-partitioning (1 yes, 0 no)",
    ],
]


@pytest.fixture
def plan(raw):
    layers, _ = validate_layers(raw)
    return tiny_plan(layers)


def read_key(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.startswith(BOM)
    return list(csv.reader(data[3:].decode("utf-8").splitlines()))


def test_csv_has_a_bom_and_codes_as_quoted_text(tmp_path, plan):
    path = export_plan(plan, tmp_path / "grids.csv")
    data = path.read_bytes()
    assert data.startswith(BOM) and not data[3:].startswith(BOM)
    rows = data[3:].decode("utf-8").splitlines()
    assert rows[0].split(",")[:3] == ["grid_code", "community_id", "name"]
    assert rows[1].startswith('"320104001001001","C1","幸福社区第001网格",12,')
    assert rows[2].startswith('"320104001002001","C2","和平社区第001网格",12,')
    types = (tmp_path / "grids.csvt").read_text().strip().split(",")
    assert types[:4] == ['"String"', '"String"', '"String"', '"Integer64"']
    # GDAL (QGIS) reads the codes as text, all 15 digits, and the CRS from the .prj
    back = pyogrio.read_dataframe(path)
    assert back["grid_code"].tolist() == CODES
    assert back["name"].tolist() == ["幸福社区第001网格", "和平社区第001网格"]
    assert pyogrio.read_info(path)["crs"] is not None
    assert pd.read_csv(path, dtype={"grid_code": str})["grid_code"].tolist() == CODES


def test_shapefile_has_a_field_key_and_reads_chinese(tmp_path, plan):
    path = export_plan(plan, tmp_path / "grids.shp")
    assert read_key(tmp_path / "grids.fields.csv") == KEY
    assert (tmp_path / "grids.cpg").read_text().strip() == "UTF-8"
    fields = pyogrio.read_info(path)["fields"].tolist()
    assert fields == [row[0] for row in KEY[1:]]  # every DBF field has its line in the key
    back = pyogrio.read_dataframe(path)
    assert back["grid_code"].tolist() == CODES
    assert back["sizhi"].iloc[0] == "东至中山路，南至社区边界，西至社区边界，北至社区边界"


def test_exports_to_one_folder_keep_every_sidecar(tmp_path, plan):
    export_plan(plan, tmp_path / "grids.shp")
    shp_prj = (tmp_path / "grids.prj").read_bytes()
    export_plan(plan, tmp_path / "grids.csv")
    export_plan(plan, tmp_path / "copy.shp")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "copy.cpg",
        "copy.dbf",
        "copy.fields.csv",
        "copy.prj",
        "copy.shp",
        "copy.shx",
        "grids.cpg",
        "grids.csv",
        "grids.csvt",
        "grids.dbf",
        "grids.fields.csv",
        "grids.prj",
        "grids.shp",
        "grids.shx",
    ]
    # the CSV left the Shapefile's .prj (it says WGS84 too) and both read as WGS84
    assert (tmp_path / "grids.prj").read_bytes() == shp_prj
    for name in ("grids.shp", "grids.csv"):
        crs = pyproj.CRS.from_user_input(pyogrio.read_info(tmp_path / name)["crs"])
        assert crs.equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True), name
    # the field key is a file of its own, not the CSV export of the same name
    assert pyogrio.read_dataframe(tmp_path / "grids.csv")["grid_code"].tolist() == CODES
    assert read_key(tmp_path / "grids.fields.csv") == KEY == read_key(tmp_path / "copy.fields.csv")
    # a .prj that says something else is replaced by the CSV's own
    (tmp_path / "grids.prj").write_text(pyproj.CRS.from_epsg(4549).to_wkt())
    export_plan(plan, tmp_path / "grids.csv")
    crs = pyproj.CRS.from_user_input((tmp_path / "grids.prj").read_text())
    assert crs.equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True)


def test_cli_export_writes_the_key_and_excel_ready_csv(tmp_path, plan):
    url = f"sqlite:///{tmp_path / 'gridmap.db'}"
    store = Store.from_url(url)
    try:
        rec = save_plan(store, plan, author="li")
    finally:
        store.close()
    runner = CliRunner()
    out_dir = tmp_path / "out"
    for fmt in ("shp", "csv"):
        argv = ["export", "--plan", str(rec.id), "--format", fmt]
        argv += ["-o", str(out_dir / f"grids.{fmt}"), "--db", url]
        result = runner.invoke(app, argv, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "(2 grids)" in " ".join(result.output.split())
    assert read_key(out_dir / "grids.fields.csv") == KEY
    data = (out_dir / "grids.csv").read_bytes()
    assert data.startswith(BOM) and b'\n"320104001001001",' in data
    assert (out_dir / "grids.cpg").read_text().strip() == "UTF-8"
