"""gridmap.areas.derive_communities on tiny hand-made areas with exact answers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from cityfixtures import CRS, X0, Y0, box

from gridmap.areas import DERIVED_ATTR, HARD_BARRIER_KINDS, MAIN_ROAD_CLASSES, derive_communities
from gridmap.errors import CRSError, InputError, LayerError, ValidationError
from gridmap.validation import validate_layers


def line(*points: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in points])


def buildings(spec: list[tuple[float, float, int]], **columns) -> gpd.GeoDataFrame:
    """10 m × 10 m residential buildings centred on (x, y) with a households count."""
    return gpd.GeoDataFrame(
        {
            "building_id": [f"B{i}" for i in range(len(spec))],
            "households": [h for *_, h in spec],
            "use": "residential",
            **columns,
        },
        geometry=[box(x - 5, y - 5, x + 5, y + 5) for x, y, _ in spec],
        crs=CRS,
    )


def roads(*lines: shapely.LineString, cls: str = "primary") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": [f"R{i}" for i in range(len(lines))], "class": cls}, geometry=list(lines), crs=CRS
    )


def barriers(*lines: shapely.LineString, kind: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"kind": [kind] * len(lines)}, geometry=list(lines), crs=CRS)


OUTLINE = gpd.GeoDataFrame(geometry=[box(0, 0, 200, 200)], crs=CRS)
VERTICAL = line((120, -10), (120, 210))  # west blocks 120 m wide, east blocks 80 m
HORIZONTAL = line((-10, 100), (210, 100))  # north and south blocks 100 m tall
NW, NE, SW, SE = (60, 150), (160, 150), (60, 50), (160, 50)


def households_of(comms: gpd.GeoDataFrame) -> dict[str, int]:
    return comms.attrs[DERIVED_ATTR]["households"]


def area_at(comms: gpd.GeoDataFrame, x: float, y: float) -> str:
    point = shapely.Point(X0 + x, Y0 + y)
    return str(comms.loc[comms.contains(point), "community_id"].item())


def test_cross_of_main_roads_merges_smallest_first_along_longest_edge():
    # four blocks; edges: NW–SW 120 m, NE–SE 80 m, NW–NE 100 m, SW–SE 100 m
    blds = buildings([(*NW, 1300), (*NE, 300), (*SW, 200), (*SE, 1600)])
    comms = derive_communities(
        {"buildings": blds, "roads": roads(VERTICAL, HORIZONTAL)}, outline=OUTLINE
    )
    # SW (200, the fewest) joins NW (120 m > 100 m to SE): 1,500; then NE (300) joins
    # that area (100 m > 80 m to SE): 1,800; SE (1,600) is above the floor on its own
    assert comms["community_id"].tolist() == ["D001", "D002"]
    assert households_of(comms) == {"D001": 1800, "D002": 1600}
    assert comms.geometry.iloc[1].equals(box(120, 0, 200, 100))
    assert comms.geometry.iloc[0].equals(box(0, 0, 200, 200).difference(box(120, 0, 200, 100)))
    assert comms["name"].tolist() == [
        "派生片区 D001 (derived area)",
        "派生片区 D002 (derived area)",
    ]
    assert comms["code"].isna().all()
    assert comms.crs.to_epsg() == CRS
    assert comms.geom_type.tolist() == ["Polygon", "Polygon"]
    info = comms.attrs[DERIVED_ATTR]
    assert info["blocks"] == 4 and info["min_households"] == 1500
    assert info["road_classes"] == sorted(MAIN_ROAD_CLASSES)


def test_floor_is_a_parameter():
    blds = buildings([(*NW, 1300), (*NE, 300), (*SW, 200), (*SE, 1600)])
    raw = {"buildings": blds, "roads": roads(VERTICAL, HORIZONTAL)}
    assert len(derive_communities(raw, outline=OUTLINE, min_households=100)) == 4
    assert households_of(derive_communities(raw, outline=OUTLINE, min_households=5000)) == {
        "D001": 3400
    }


def test_minor_roads_do_not_cut_unless_asked():
    blds = buildings([(*NW, 1300), (*NE, 300), (*SW, 200), (*SE, 1600)])
    raw = {"buildings": blds, "roads": roads(VERTICAL, HORIZONTAL, cls="residential")}
    one = derive_communities(raw, outline=OUTLINE, min_households=100)
    assert one.attrs[DERIVED_ATTR]["blocks"] == 1 and len(one) == 1
    every = derive_communities(raw, outline=OUTLINE, min_households=100, road_classes=None)
    assert len(every) == 4
    chosen = derive_communities(
        raw, outline=OUTLINE, min_households=100, road_classes=["residential"]
    )
    assert len(chosen) == 4


def test_a_river_splits_where_a_road_would_not():
    blds = buildings([(*NW, 1000), (*NE, 1000), (*SW, 1000), (*SE, 1000)])
    # a road at x = 120: NE (the smaller area) joins NW (100 m > 80 m), SE then joins SW
    by_road = derive_communities(
        {"buildings": blds, "roads": roads(VERTICAL, HORIZONTAL)}, outline=OUTLINE
    )
    assert area_at(by_road, *NW) == area_at(by_road, *NE) != area_at(by_road, *SW)
    assert area_at(by_road, *SW) == area_at(by_road, *SE)
    # a river at x = 120 instead: no merge crosses it, so the areas are west and east
    by_river = derive_communities(
        {
            "buildings": blds,
            "roads": roads(HORIZONTAL),
            "barriers": barriers(VERTICAL, kind="river"),
        },
        outline=OUTLINE,
    )
    assert households_of(by_river) == {"D001": 2000, "D002": 2000}
    assert area_at(by_river, *NW) == area_at(by_river, *SW) != area_at(by_river, *NE)
    assert area_at(by_river, *NE) == area_at(by_river, *SE)
    river = VERTICAL.intersection(box(0, 0, 200, 200))
    for geom in by_river.geometry:  # the river runs along areas, never through one
        assert shapely.intersection(river, geom.buffer(-0.01)).length == 0


def test_district_border_is_hard_and_walls_are_not():
    blds = buildings([(*NW, 1000), (*NE, 1000), (*SW, 1000), (*SE, 1000)])
    base = {"buildings": blds, "roads": roads(HORIZONTAL)}
    border = derive_communities(
        {**base, "barriers": barriers(VERTICAL, kind="boundary")}, outline=OUTLINE
    )
    assert area_at(border, *NW) == area_at(border, *SW) != area_at(border, *NE)
    wall = derive_communities(
        {**base, "barriers": barriers(VERTICAL, kind="wall")}, outline=OUTLINE
    )
    assert wall.attrs[DERIVED_ATTR]["blocks"] == 4  # a wall cuts …
    assert area_at(wall, *NW) == area_at(wall, *NE)  # … but areas merge across it
    assert "boundary" in HARD_BARRIER_KINDS and "wall" not in HARD_BARRIER_KINDS


def test_cut_off_by_water_stays_below_the_floor_and_is_reported():
    blds = buildings([(*NW, 300), (*NE, 1000), (*SE, 1000)])
    raw = {"buildings": blds, "barriers": barriers(VERTICAL, kind="river")}
    comms = derive_communities(raw, outline=OUTLINE)
    assert households_of(comms) == {"D001": 300, "D002": 2000}
    layers, report = validate_layers({**raw, "communities": comms})
    finding = next(f for f in report.findings if f.code == "derived_communities")
    assert finding.severity == "warning" and finding.count == 2
    assert "stand-ins" in finding.message and "1 below it" in finding.message
    assert layers.buildings.groupby("community_id")["households"].sum().to_dict() == {
        "D001": 300,
        "D002": 2000,
    }


def test_land_beyond_the_water_without_buildings_is_left_out():
    blds = buildings([(*NW, 1000), (*SW, 1000)])
    river = line((180, -10), (180, 210))
    comms = derive_communities(
        {"buildings": blds, "barriers": barriers(river, kind="river")}, outline=OUTLINE
    )
    assert len(comms) == 1 and comms.attrs[DERIVED_ATTR]["left_out_empty"] == 1
    assert comms.geometry.iloc[0].equals(box(0, 0, 180, 200))


def test_line_stopping_short_of_the_edge_is_carried_on():
    blds = buildings([(100, 150, 1600), (100, 50, 1600)])
    short = roads(line((-10, 100), (170, 100)))  # stops 30 m before the east edge
    raw = {"buildings": blds, "roads": short}
    assert len(derive_communities(raw, outline=OUTLINE)) == 2
    assert len(derive_communities(raw, outline=OUTLINE, reach=10)) == 1


def test_default_outline_is_the_buffered_hull_of_the_buildings():
    blds = buildings([(*NW, 1000), (*SE, 1000)])
    comms = derive_communities({"buildings": blds}, margin=20)
    assert len(comms) == 1
    hull = shapely.convex_hull(shapely.union_all(blds.geometry.values))
    assert comms.geometry.iloc[0].covers(hull.buffer(19.9))
    assert comms.geometry.iloc[0].within(hull.buffer(20.01))


def test_households_are_counted_as_validation_counts_them():
    # no households column: levels × footprint / 90 m², the smaller of two duplicates
    # counts 0, offices 0, and a household layer wins over counts
    spec = [(*NW, 0), (*NW, 0), (*SE, 0), (*SW, 0)]
    blds = buildings(spec).drop(columns="households")
    blds["levels"] = [9, 9, 18, 9]  # 100 m² footprints: 10, 10 (duplicate), 20, 10
    blds["use"] = ["residential", "residential", "residential", "commercial"]
    blds.loc[1, "geometry"] = box(NW[0] - 5, NW[1] - 5, NW[0] + 5, NW[1] + 4.5)
    raw = {"buildings": blds, "roads": roads(VERTICAL, HORIZONTAL)}
    comms = derive_communities(raw, outline=OUTLINE, min_households=0)
    assert sorted(households_of(comms).values()) == [0, 10, 20]
    layers, _ = validate_layers({**raw, "communities": comms})
    counted = layers.buildings.groupby("community_id")["households"].sum().to_dict()
    assert counted == households_of(comms)
    # unit_area is the same parameter as validation's
    half = derive_communities(raw, outline=OUTLINE, min_households=0, unit_area=45)
    assert sorted(households_of(half).values()) == [0, 20, 40]
    hh = gpd.GeoDataFrame(
        {"household_id": [f"H{i}" for i in range(7)], "building_id": ["B3"] * 7},
        geometry=[None] * 7,
        crs=CRS,
    )
    with_hh = derive_communities({**raw, "households": hh}, outline=OUTLINE, min_households=0)
    assert sorted(households_of(with_hh).values()) == [0, 0, 7]


def test_buildings_in_wgs84_give_communities_in_wgs84():
    blds = buildings([(*NW, 1300), (*NE, 300), (*SW, 200), (*SE, 1600)])
    raw = {"buildings": blds.to_crs(4326), "roads": roads(VERTICAL, HORIZONTAL).to_crs(4326)}
    comms = derive_communities(raw, outline=OUTLINE)
    assert comms.crs.to_epsg() == 4326
    assert households_of(comms) == {"D001": 1800, "D002": 1600}
    layers, report = validate_layers({**raw, "communities": comms})
    assert report.ok and len(layers.communities) == 2


def test_deterministic_and_independent_of_row_order():
    rng = np.random.default_rng(5)
    xs, ys, hh = rng.uniform(10, 190, 60), rng.uniform(10, 190, 60), rng.integers(0, 120, 60)
    spec = [(float(x), float(y), int(h)) for x, y, h in zip(xs, ys, hh, strict=True)]
    grid = [line((x, -10), (x, 210)) for x in (50, 100, 150)]
    grid += [line((-10, y), (210, y)) for y in (40, 90, 140)]
    raw = {"buildings": buildings(spec), "roads": roads(*grid)}
    a = derive_communities(raw, outline=OUTLINE, min_households=400)
    b = derive_communities(raw, outline=OUTLINE, min_households=400)
    assert len(a) > 3
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0).all()
    assert a.attrs == b.attrs
    shuffled = {
        "buildings": raw["buildings"].sample(frac=1, random_state=1),
        "roads": raw["roads"].iloc[::-1],
    }
    c = derive_communities(shuffled, outline=OUTLINE, min_households=400)
    assert a["community_id"].tolist() == c["community_id"].tolist()
    assert households_of(a) == households_of(c)
    assert shapely.equals(a.geometry.values, c.geometry.values).all()


def test_inputs_are_not_mutated():
    blds = buildings([(*NW, 1300), (*SE, 1600)])
    before = blds.copy()
    raw = {"buildings": blds, "roads": roads(VERTICAL)}
    derive_communities(raw, outline=OUTLINE)
    assert sorted(raw) == ["buildings", "roads"]
    assert blds.equals(before)


# ----------------------------------------------------------------------------- errors


def test_no_buildings():
    with pytest.raises(LayerError, match="needs a buildings layer"):
        derive_communities({"roads": roads(VERTICAL)})
    with pytest.raises(LayerError, match="an empty one"):
        derive_communities({"buildings": buildings([]).iloc[:0]})


def test_no_building_inside_the_outline():
    blds = buildings([(500, 500, 100)])
    with pytest.raises(LayerError, match="no building lies inside the outline"):
        derive_communities({"buildings": blds}, outline=OUTLINE)


def test_missing_crs():
    blds = buildings([(*NW, 100)]).set_crs(None, allow_override=True)
    with pytest.raises(CRSError, match="buildings has no CRS; set one with gdf.set_crs"):
        derive_communities({"buildings": blds})
    bare = gpd.GeoDataFrame(geometry=[box(0, 0, 200, 200)])
    with pytest.raises(CRSError, match="outline has no CRS"):
        derive_communities({"buildings": buildings([(*NW, 100)])}, outline=bare)


def test_roads_without_class():
    no_class = roads(VERTICAL).drop(columns="class")
    raw = {"buildings": buildings([(*NW, 100)]), "roads": no_class}
    with pytest.raises(LayerError, match=r"roads has no 'class' column.*--column roads.class="):
        derive_communities(raw)
    assert len(derive_communities(raw, road_classes=None)) == 1


def test_bad_parameters():
    raw = {"buildings": buildings([(*NW, 100)])}
    with pytest.raises(InputError, match="min_households must be 0 or more, got -1"):
        derive_communities(raw, min_households=-1)
    with pytest.raises(InputError, match="margin and reach must be 0 or more"):
        derive_communities(raw, margin=-5)
    with pytest.raises(InputError, match="outline must be a GeoDataFrame"):
        derive_communities(raw, outline="coverage")


def test_buildings_that_fail_validation():
    blds = buildings([(*NW, 100), (*SE, 100)])
    blds.loc[1, "building_id"] = "B0"
    with pytest.raises(ValidationError, match="cannot count households.*B0|building_id values"):
        derive_communities({"buildings": blds})
