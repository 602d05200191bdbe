from __future__ import annotations

import json
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from cityfixtures import BROKEN_FINDINGS, CRS, X0, Y0, box, broken_raw, tiny_raw

from gridmap.errors import CRSError, LayerError, ValidationError
from gridmap.io import write_layers
from gridmap.layers import (
    LEFT_OUT_ATTR,
    OPTIONAL_COLUMNS,
    SENSITIVE_FLAGS,
    Layers,
    estimate_households,
)
from gridmap.validation import check_layers, validate_layers, validate_staff


def row(frame, building_id):
    return int(np.flatnonzero(frame["building_id"].to_numpy() == building_id)[0])


def codes(report, severity=None):
    return [f.code for f in report.findings if severity is None or f.severity == severity]


def assert_nothing_lost(report):
    """Every input row is kept or counted in a 'rejected' finding of its layer."""
    for name, n_in in report.rows_in.items():
        rejected = sum(
            f.count for f in report.findings if f.layer == name and f.severity == "rejected"
        )
        assert report.rows_out.get(name, 0) + rejected == n_in, name


def test_valid_tiny_city(raw):
    layers, report = validate_layers(raw)
    assert report.ok
    assert isinstance(layers, Layers)
    assert layers.crs.to_epsg() == CRS  # already projected: kept
    assert layers.buildings["households"].tolist() == [3] * 8
    assert not layers.buildings["households_estimated"].any()
    assert set(layers.buildings["community_id"]) == {"C1", "C2"}
    assert layers.buildings.set_index("building_id").loc["C2-B3", "community_id"] == "C2"
    for name, frame in layers.items():
        assert list(frame.index) == list(range(len(frame))), name
        for col in OPTIONAL_COLUMNS[name]:
            assert col in frame.columns, (name, col)
    assert layers.households[list(SENSITIVE_FLAGS)].dtypes.eq(bool).all()
    assert layers.households["elderly_living_alone"].sum() == 8
    # staff homes placed at their building's representative point; 是/否 parsed
    staff = layers.staff.set_index("staff_id")
    assert staff["can_be_chief"].tolist() == [True, False]
    b0 = layers.buildings.set_index("building_id").loc["C1-B0", "geometry"]
    assert b0.contains(staff.loc["S1", "geometry"])
    assert_nothing_lost(report)


def test_wgs84_input_goes_to_local_gauss_kruger(raw):
    wgs = {k: v.to_crs(4326) for k, v in raw.items()}
    layers, report = validate_layers(wgs)
    assert layers.crs.to_epsg() == 4549
    assert report.crs.startswith("EPSG:4549")
    # areas survive the round trip within a square centimetre
    got = layers.communities.area.to_numpy()
    np.testing.assert_allclose(got, [40_000.0, 40_000.0], atol=0.5)


def test_target_crs_must_be_projected(raw):
    with pytest.raises(CRSError, match="projected CRS in metres"):
        validate_layers(raw, target_crs=4326)


def test_missing_crs_is_an_error_with_a_fix(raw):
    raw["buildings"] = raw["buildings"].set_crs(None, allow_override=True)
    with pytest.raises(ValidationError, match=r"buildings has no CRS; set one with gdf.set_crs"):
        validate_layers(raw)
    layers, report = validate_layers(raw, assume_crs=CRS)
    assert "assumed_crs" in codes(report, "info")


def test_mixed_crs_is_an_error_unless_reproject(raw):
    raw["roads"] = raw["roads"].to_crs(4326)
    with pytest.raises(ValidationError, match="different CRSs.*reproject=True"):
        validate_layers(raw)
    layers, _ = validate_layers(raw, reproject=True)
    x = layers.roads.geometry.iloc[0].coords[0][0]
    assert x == pytest.approx(X0 + 200, abs=1e-3)


def test_degrees_crs_with_metre_coordinates_is_caught(raw):
    raw["buildings"] = raw["buildings"].set_crs(4326, allow_override=True)
    _, report = check_layers(raw, reproject=True)
    assert "crs_mismatch" in codes(report, "error")
    assert "looks like metres" in report.errors[0].message


def test_required_layers_and_columns():
    _, report = check_layers({"buildings": tiny_raw()["buildings"]})
    assert "missing_layer" in codes(report, "error")
    raw = tiny_raw()
    raw["buildings"] = raw["buildings"].rename(columns={"building_id": "bid"})
    with pytest.raises(ValidationError, match=r"lacks the required column\(s\) building_id.*bid"):
        validate_layers(raw)


def test_unknown_layer_name():
    with pytest.raises(LayerError, match="unknown layer name.*canonical layers are"):
        check_layers({"houses": tiny_raw()["buildings"]})


def test_empty_layers(raw):
    raw["roads"] = raw["roads"].iloc[0:0]
    layers, report = validate_layers(raw)
    assert layers.roads is None
    assert "empty_layer" in codes(report, "warning")
    raw["buildings"] = raw["buildings"].iloc[0:0]
    with pytest.raises(ValidationError, match="buildings is empty"):
        validate_layers(raw)


def test_invalid_geometry_repaired_and_empty_rejected(raw):
    blds = raw["buildings"].copy()
    bowtie = shapely.Polygon(
        [(X0 + 20, Y0 + 20), (X0 + 70, Y0 + 50), (X0 + 70, Y0 + 20), (X0 + 20, Y0 + 50)]
    )
    geoms = blds.geometry.values.copy()
    geoms[row(blds, "C1-B0")] = bowtie
    geoms[row(blds, "C1-B1")] = shapely.Polygon()
    blds = blds.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    raw["buildings"] = blds
    layers, report = validate_layers(raw)
    repaired = [f for f in report.findings if f.code == "invalid_geometry"]
    assert repaired[0].count == 1 and repaired[0].ids == ("C1-B0",)
    assert layers.buildings.geometry.is_valid.all()
    rejected = [f for f in report.findings if f.code == "empty_geometry"]
    assert rejected[0].ids == ("C1-B1",)
    # the households of the left-out building are left out with it, and counted
    orphans = [f for f in report.findings if f.code == "building_left_out"]
    assert orphans[0].count == 3
    assert len(layers.buildings) == 7 and len(layers.households) == 21
    assert_nothing_lost(report)


def test_wrong_geometry_type_rejected(raw):
    blds = raw["buildings"].copy()
    geoms = blds.geometry.values.copy()
    geoms[row(blds, "C1-B2")] = shapely.Point(X0 + 30, Y0 + 130)
    raw["buildings"] = blds.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    layers, report = validate_layers(raw)
    f = next(f for f in report.findings if f.code == "wrong_geometry_type")
    assert f.count == 1 and "Point" in f.message
    assert_nothing_lost(report)


def test_duplicate_ids_are_an_error(raw):
    blds = raw["buildings"].copy()
    blds.loc[row(blds, "C1-B1"), "building_id"] = "C1-B0"
    raw["buildings"] = blds
    with pytest.raises(ValidationError, match="building_id values occur more than once") as exc:
        validate_layers(raw)
    assert exc.value.report.errors[0].ids == ("C1-B0",)


def test_numeric_ids_become_strings(raw):
    ids = {b: float(i) for i, b in enumerate(raw["buildings"]["building_id"])}
    raw["buildings"]["building_id"] = raw["buildings"]["building_id"].map(ids)
    raw["households"]["building_id"] = raw["households"]["building_id"].map(ids)
    raw["staff"]["home_building_id"] = ["0", "5"]
    layers, report = validate_layers(raw)
    assert layers.buildings["building_id"].tolist() == [str(i) for i in range(8)]
    assert layers.buildings["households"].tolist() == [3] * 8


def test_households_matched_by_location_snapped_or_rejected(raw):
    hh = raw["households"].copy()
    hh["building_id"] = hh["building_id"].astype(object)
    geoms = hh.geometry.values.copy()
    hh.loc[0, "building_id"] = None  # inside C1-B0: matched by containment
    hh.loc[1, "building_id"] = "nope"  # unknown id, point 10 m outside C1-B0: snapped
    geoms[1] = shapely.Point(X0 + 20 + 25, Y0 + 20 - 10)
    hh.loc[2, "building_id"] = None  # far from everything: rejected
    geoms[2] = shapely.Point(X0 + 95, Y0 + 90)
    raw["households"] = hh.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    layers, report = validate_layers(raw, snap_tolerance=15)
    got = layers.households.set_index("household_id")["building_id"]
    assert got["C1-B0-H0"] == "C1-B0"
    assert got["C1-B0-H1"] == "C1-B0"
    assert "C1-B0-H2" not in got.index
    assert next(f for f in report.findings if f.code == "snapped_to_building").count == 1
    assert next(f for f in report.findings if f.code == "no_building").ids == ("C1-B0-H2",)
    assert next(f for f in report.findings if f.code == "unknown_building").count == 1
    assert layers.buildings.set_index("building_id").loc["C1-B0", "households"] == 2
    assert_nothing_lost(report)


def test_text_flags_uses_and_blank_ids_as_a_spreadsheet_gives_them(raw):
    # a CSV read gives object columns: each distinct value is read once, rows counted each
    hh = raw["households"].copy()
    n = len(hh)  # 24 households, 3 per building
    assert n == 24
    hh["disabled"] = pd.Series(["是", "否", None, "maybe"] * 6, dtype=object)
    hh["unemployed"] = pd.Series([1, 0.0, True, "no"] * 6, dtype=object)
    hh["unit"] = pd.Series([" 1", "1", 2, None] * 6, dtype=object)
    hh["household_id"] = hh["household_id"].astype(object)
    hh.loc[5, "household_id"] = "   "  # blank once stripped: no id
    raw["households"] = hh
    b = raw["buildings"].copy()
    uses = ["住宅", " Office", None, 3, "spaceship", "house", "住宅", 3]
    b["use"] = pd.Series(uses, dtype=object)
    raw["buildings"] = b
    layers, report = check_layers(raw)
    out = layers.households
    kept = np.delete(np.arange(n), 5)
    assert out["disabled"].tolist() == np.array([True, False, False, False] * 6)[kept].tolist()
    assert next(f for f in report.findings if f.code == "unreadable_disabled").count == 6
    assert out["unemployed"].tolist() == np.array([True, False, True, False] * 6)[kept].tolist()
    assert "unreadable_unemployed" not in codes(report)
    assert out["unit"].tolist()[:4] == ["1", "1", "2", None]
    missing = next(f for f in report.findings if f.code == "missing_id")
    assert (missing.count, missing.ids) == (1, ("row 5",))
    use = layers.buildings.set_index("building_id")["use"]
    assert use.tolist() == [
        "residential", "commercial", "other", "other", "other", "residential", "residential",
        "other",
    ]  # fmt: skip
    unknown = next(f for f in report.findings if f.code == "unknown_use")
    assert unknown.count == 3
    assert "(3, spaceship)" in unknown.message
    assert_nothing_lost(report)


def test_households_without_points_are_placed_at_their_building(raw):
    hh = raw["households"].copy()
    hh = hh.set_geometry(gpd.GeoSeries([None] * len(hh), crs=CRS))
    raw["households"] = hh
    layers, report = validate_layers(raw)
    assert not layers.households.geometry.is_empty.any()
    assert "placed_at_building" in codes(report, "info")


def test_nan_coordinates_are_placed_at_building(raw):
    hh = raw["households"].copy()
    geoms = hh.geometry.values.copy()
    geoms[4] = shapely.Point(np.nan, np.nan)
    raw["households"] = hh.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    layers, report = validate_layers(raw)
    assert "nan_coordinates" in codes(report, "repaired")
    assert np.isfinite(shapely.get_coordinates(layers.households.geometry.values)).all()


def test_buildings_outside_or_straddling_communities(raw):
    blds = raw["buildings"].copy()
    geoms = blds.geometry.values.copy()
    geoms[row(blds, "C1-B0")] = box(500, 500, 540, 530)  # outside both communities
    # straddles C1/C2, representative point in C2
    geoms[row(blds, "C1-B2")] = box(180, 120, 240, 150)
    raw["buildings"] = blds.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    layers, report = validate_layers(raw)
    outside = next(f for f in report.findings if f.code == "outside_communities")
    assert outside.ids == ("C1-B0",) and outside.severity == "rejected"
    straddle = next(f for f in report.findings if f.code == "straddles_communities")
    assert straddle.ids == ("C1-B2",)
    b = layers.buildings.set_index("building_id")
    assert b.loc["C1-B2", "community_id"] == "C2"
    assert_nothing_lost(report)


def test_overlapping_communities_are_an_error(raw):
    comms = raw["communities"].copy()
    geoms = comms.geometry.values.copy()
    geoms[1] = box(190, 0, 400, 200)
    raw["communities"] = comms.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    with pytest.raises(ValidationError, match=r"1 pairs of communities overlap \(total 2000 m²\)"):
        validate_layers(raw)


def test_negative_counts_are_an_error(raw):
    raw.pop("households")
    raw["buildings"]["households"] = [10, 20, -5, 10, 10, 10, 10, 10]  # C2-B1 negative
    with pytest.raises(ValidationError, match="negative households; counts must be 0 or more"):
        validate_layers(raw)


def test_households_estimated_when_unknown(raw):
    raw.pop("households")
    blds = raw["buildings"]
    order = ["C1-B0", "C1-B1", "C1-B2", "C1-B3"]
    blds["households"] = 5.0
    blds["use"] = "residential"
    blds["levels"] = 6.0
    for bid, hh, use, lv in zip(
        order,
        [100, None, None, None],
        ["residential", "residential", "commercial", "residential"],
        [6, 6, 6, None],
        strict=True,
    ):
        i = row(blds, bid)
        blds.loc[i, "households"] = hh
        blds.loc[i, "use"] = use
        blds.loc[i, "levels"] = lv
    layers, report = validate_layers(raw, unit_area=90, default_levels=3)
    b = layers.buildings.set_index("building_id")
    # 50 m × 30 m = 1,500 m²; 6 levels → 9,000 m² / 90 = 100; 3 assumed levels → 50
    assert b.loc["C1-B0", "households"] == 100 and not b.loc["C1-B0", "households_estimated"]
    assert b.loc["C1-B1", "households"] == 100 and b.loc["C1-B1", "households_estimated"]
    assert b.loc["C1-B2", "households"] == 0  # commercial
    assert b.loc["C1-B3", "households"] == 50  # default levels
    assert "levels_assumed" in codes(report, "warning")


def test_duplicate_footprints_not_counted_twice(raw):
    raw.pop("households")
    blds = raw["buildings"].copy()
    copy = blds.iloc[[0]].copy()
    copy["building_id"] = "C1-B0-copy"
    copy = copy.set_geometry(gpd.GeoSeries([box(21, 21, 70, 50)], index=copy.index, crs=CRS))
    raw["buildings"] = gpd.GeoDataFrame(gpd.pd.concat([blds, copy], ignore_index=True), crs=CRS)
    layers, report = validate_layers(raw)
    b = layers.buildings.set_index("building_id")
    assert b.loc["C1-B0", "households"] == 100
    assert b.loc["C1-B0-copy", "households"] == 0
    dup = next(f for f in report.findings if f.code == "duplicate_buildings")
    assert dup.ids == ("C1-B0-copy≈C1-B0",)


def test_report_serialises(raw):
    _, report = validate_layers(raw)
    data = report.to_dict()
    assert data["ok"] is True and data["rows_in"]["buildings"] == 8
    assert report.to_frame().columns.tolist() == [
        "layer",
        "severity",
        "code",
        "message",
        "count",
        "ids",
    ]


def test_estimate_households_guards():
    b = gpd.GeoDataFrame({"use": ["residential"]}, geometry=[shapely.box(0, 0, 10, 10)], crs=4326)
    with pytest.raises(CRSError, match="projected CRS"):
        estimate_households(b)
    with pytest.raises(LayerError, match="unit_area must be positive"):
        estimate_households(b.set_crs(CRS, allow_override=True), unit_area=0)


def test_validate_staff_against_plan_buildings(raw):
    staff = raw["staff"].copy()
    staff.loc[1, "home_building_id"] = "unknown"
    out, report = validate_staff(staff, raw["buildings"], crs=CRS)
    assert out["staff_id"].tolist() == ["S1"]
    assert "no_home" in codes(report, "rejected")
    with pytest.raises(ValidationError, match="lacks the required column"):
        validate_staff(staff.drop(columns="staff_id"), raw["buildings"], crs=CRS)


def test_subset_keeps_communities(raw):
    layers, _ = validate_layers(raw)
    sub = layers.subset(["C2"])
    assert sub.communities["community_id"].tolist() == ["C2"]
    assert set(sub.buildings["community_id"]) == {"C2"}
    assert len(sub.households) == 12


def test_geometry_collection_keeps_polygonal_part(raw):
    comms = raw["communities"].copy()
    geoms = comms.geometry.values.copy()
    geoms[0] = shapely.GeometryCollection(
        [geoms[0], shapely.LineString([(X0 - 10, Y0), (X0 - 5, Y0 + 5)])]
    )
    raw["communities"] = comms.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    layers, report = validate_layers(raw)
    f = next(f for f in report.findings if f.code == "collection_to_polygon")
    assert f.ids == ("C1",) and f.severity == "repaired"
    assert layers.communities.geometry.iloc[0].geom_type == "Polygon"
    assert layers.communities.area.iloc[0] == pytest.approx(40_000.0)


@pytest.mark.parametrize("name", ["sample", "nanjing"])
def test_bundled_datasets_validate(name):
    from gridmap.datasets import attribution, get_path
    from gridmap.io import read_layers

    layers, report = validate_layers(read_layers(get_path(name)))
    assert report.ok
    assert layers.crs.to_epsg() == 4549
    assert not report.by_severity("rejected")
    if name == "sample":
        assert len(layers.communities) == 5 and len(layers.households) == 21_770
        assert layers.buildings["households"].sum() == 21_770
        assert len(report.findings) == 0
    else:
        assert "OpenStreetMap contributors, ODbL 1.0" in attribution(name)
        assert len(layers.communities) == 4 and len(layers.buildings) == 1_244
        assert layers.buildings["households_estimated"].all()
        assert 18_000 < layers.buildings["households"].sum() < 19_000


def test_a_required_layer_with_no_usable_row_is_an_error(raw):
    comms = raw["communities"]
    line = shapely.Polygon([(X0, Y0), (X0 + 1, Y0 + 1), (X0 + 2, Y0 + 2), (X0, Y0)])
    raw["communities"] = comms.set_geometry(gpd.GeoSeries([line, line], crs=CRS))
    layers, report = check_layers(raw)
    assert layers is None
    f = next(f for f in report.findings if f.code == "no_usable_rows")
    assert (f.layer, f.severity) == ("communities", "error")
    assert "degenerate_geometry" in codes(report, "rejected")
    raw = tiny_raw()
    raw["buildings"] = raw["buildings"].set_geometry(gpd.GeoSeries([None] * 8, crs=CRS))
    with pytest.raises(ValidationError, match="none of the 8 buildings has a usable geometry"):
        validate_layers(raw)


def test_one_run_reports_every_problem_of_a_broken_file(tmp_path):
    # errors (duplicate ids, negative counts, overlapping communities) do not hide the rest:
    # one run lists everything, as a planner fixing a file needs
    raw = broken_raw()
    layers, report = check_layers(raw)
    assert layers is None and not report.ok
    assert {f.code: (f.severity, f.count) for f in report.findings} == BROKEN_FINDINGS
    by = {f.code: f for f in report.findings}
    assert by["duplicate_id"].ids == ("C2-B3",)
    assert by["overlapping_communities"].ids == ("C1/C2 (1000 m²)",)
    assert by["outside_communities"].ids == ("C1-B1",)
    assert by["straddles_communities"].ids == ("C1-B2",)
    assert by["snapped_to_building"].ids == ("C1-B0-H1",)
    assert by["no_building"].ids == ("C1-B0-H2",)
    assert by["negative_persons"].ids == ("C2-B0-H0",)
    assert report.rows_out == {}  # nothing is handed on from an invalid input
    with pytest.raises(ValidationError, match=r"buildings: 1 building_id values .* \(and 3 more"):
        validate_layers(raw)
    # the same report from the command line, on a GeoPackage (exit code 1)
    path = write_layers(raw, tmp_path / "broken.gpkg")
    out = subprocess.run(
        [sys.executable, "-m", "gridmap", "validate", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1, out.stderr
    found = json.loads(out.stdout)["findings"]
    assert {f["code"]: (f["severity"], f["count"]) for f in found} == BROKEN_FINDINGS


def test_households_far_from_their_building_are_placed_at_it(raw):
    # the households of C1-B0 carry coordinates ~520 m off (as GCJ-02 points would be);
    # one household of C1-B1 lies 20 m outside its building, within the tolerance
    hh = raw["households"].copy()
    geoms = hh.geometry.values.copy()
    far = np.flatnonzero(hh["building_id"].to_numpy() == "C1-B0")
    geoms[far] = shapely.transform(geoms[far], lambda xy: xy + [480.0, -230.0])
    near = np.flatnonzero(hh["building_id"].to_numpy() == "C1-B1")[0]
    geoms[near] = shapely.Point(X0 + 145, Y0 + 70)
    raw["households"] = hh.set_geometry(gpd.GeoSeries(geoms, crs=CRS))
    layers, report = validate_layers(raw)
    f = next(f for f in report.findings if f.code == "far_from_building")
    assert f.severity == "repaired" and f.count == 3
    assert f.ids == ("C1-B0-H0", "C1-B0-H1", "C1-B0-H2")
    assert "median 522 m from its centre" in f.message and "GCJ-02" in f.message
    assert "placed_at_building" not in codes(report)  # they had points: not reported twice
    out = layers.households.set_index("household_id")
    b = layers.buildings.set_index("building_id").geometry
    assert out.loc[["C1-B0-H0", "C1-B0-H1", "C1-B0-H2"]].within(b["C1-B0"]).all()
    assert out.loc[hh["household_id"][near], "geometry"].equals(geoms[near])  # kept
    assert out["building_id"].value_counts().to_dict() == dict.fromkeys(b.index, 3)
    assert_nothing_lost(report)


def test_tower_on_a_podium_counts_only_its_levels_above_it(raw):
    raw.pop("households")
    blds = raw["buildings"]
    blds.loc[row(blds, "C1-B0"), ["use", "levels"]] = ["commercial", 4.0]  # a 50 × 30 m podium
    extra = gpd.GeoDataFrame(
        {
            "building_id": ["T1", "C1-B1-copy"],
            "use": ["residential", "residential"],
            "levels": [30.0, 6.0],
        },
        # a 20 × 15 m tower on the podium; C1-B1 drawn a second time, 1 m off
        geometry=[box(25, 25, 45, 40), box(121, 21, 170, 50)],
        crs=CRS,
    )
    raw["buildings"] = gpd.GeoDataFrame(pd.concat([blds, extra], ignore_index=True), crs=CRS)
    layers, report = validate_layers(raw)
    hh = layers.buildings.set_index("building_id")["households"]
    assert hh["C1-B0"] == 0  # commercial
    assert hh["T1"] == 87  # (30 - 4) levels × 300 m² / 90 m², not 100 (all 30 levels)
    assert hh["C1-B1"] == 100 and hh["C1-B1-copy"] == 0  # a copy is not counted twice
    by = {f.code: f for f in report.findings}
    assert by["nested_buildings"].ids == ("T1⊂C1-B0",)
    assert by["duplicate_buildings"].ids == ("C1-B1-copy≈C1-B1",)
    assert by["overlapping_buildings"].count == 2
    # on a residential podium of unknown levels (6 assumed) the tower adds 24 levels
    raw["buildings"].loc[0, ["use", "levels"]] = ["residential", None]
    layers, _ = validate_layers(raw)
    hh = layers.buildings.set_index("building_id")["households"]
    assert hh["C1-B0"] == 100 and hh["T1"] == 80


def test_fractional_household_counts_are_rounded_and_reported(raw):
    raw.pop("households")
    raw["buildings"]["households"] = [10.4, 20, 2.5, 10, 10, 10, 10, 10.6]
    layers, report = validate_layers(raw)
    assert layers.buildings["households"].tolist() == [10, 20, 2, 10, 10, 10, 10, 11]
    f = next(f for f in report.findings if f.code == "fractional_households")
    assert f.severity == "repaired" and f.ids == ("C1-B0", "C1-B1", "C2-B3")


def test_reader_left_out_rows_are_reported(raw):
    roads = raw["roads"]
    roads.attrs[LEFT_OUT_ATTR] = [(48, "tunnels")]
    _, report = validate_layers(raw)
    f = next(f for f in report.findings if f.code == "left_out_by_reader")
    assert (f.layer, f.severity, f.count) == ("roads", "info", 48)
    assert f.message == "48 roads were left out when reading: tunnels"
