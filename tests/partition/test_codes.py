from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from shapely import LineString, affinity, box

from gridmap.errors import CRSError, LayerError, PartitionError
from gridmap.partition.codes import assign_codes, boundary_descriptions, grid_sequence

CODE = "320508019044"


def _communities(code: str | None = CODE, name: str | None = "幸福社区") -> pd.DataFrame:
    return pd.DataFrame({"community_id": ["c1"], "code": [code], "name": [name]})


# jitter (dx, dy) per cell (row from north, col from west); |dy| < half the 100 m height
JITTER = {
    (0, 0): (7, -18), (0, 1): (-12, 19), (0, 2): (3, -9),
    (1, 0): (-4, 17), (1, 1): (15, -19), (1, 2): (-8, 11),
    (2, 0): (11, 14), (2, 1): (-3, -16), (2, 2): (6, 4),
}  # fmt: skip


def _jittered_lattice() -> gpd.GeoDataFrame:
    """3×3 lattice of 100 m cells, shuffled; ``cell`` holds the expected reading order."""
    cells = []
    for (row, col), (dx, dy) in JITTER.items():
        geom = affinity.translate(
            box(col * 100, (2 - row) * 100, col * 100 + 100, (3 - row) * 100), dx, dy
        )
        cells.append((row * 3 + col + 1, geom))
    order = [4, 8, 0, 6, 2, 5, 1, 7, 3]  # shuffled input order
    picked = [cells[k] for k in order]
    return gpd.GeoDataFrame(
        {"cell": [c for c, _ in picked], "community_id": ["c1"] * 9},
        geometry=[g for _, g in picked],
        crs=3857,
    )


def test_sequence_on_jittered_lattice() -> None:
    grids = _jittered_lattice()
    seq = grid_sequence(grids)
    assert seq.tolist() == grids["cell"].tolist()


def test_assign_codes_exact_sequence() -> None:
    grids = _jittered_lattice()
    out = assign_codes(grids, _communities())
    assert out.index.equals(grids.index)
    assert out["grid_code"].tolist() == [f"{CODE}{c:03d}" for c in grids["cell"]]
    assert out["name"].tolist() == [f"幸福社区第{c:03d}网格" for c in grids["cell"]]
    assert "grid_code" not in grids.columns  # input untouched


def test_fallback_without_code_or_name() -> None:
    grids = _jittered_lattice()
    out = assign_codes(grids, _communities(code=None, name=None))
    first = out.loc[out["cell"] == 1].iloc[0]
    assert first["grid_code"] == "c1-001"
    assert first["name"] == "c1第001网格"
    out = assign_codes(grids, pd.DataFrame({"community_id": ["c1"]}))
    assert sorted(out["grid_code"]) == [f"c1-{k:03d}" for k in range(1, 10)]


def test_numbering_is_per_community() -> None:
    grids = gpd.GeoDataFrame(
        {"community_id": ["b", "a", "b", "a"]},
        geometry=[
            box(100, 0, 200, 100),
            box(0, 0, 100, 100),
            box(0, 0, 100, 100),
            box(100, 0, 200, 100),
        ],
    )
    comms = pd.DataFrame(
        {"community_id": ["a", "b"], "code": ["111111111111", None], "name": ["甲", "乙"]}
    )
    out = assign_codes(grids, comms)
    assert out["grid_code"].tolist() == ["b-002", "111111111111001", "b-001", "111111111111002"]
    assert out["name"].tolist() == ["乙第002网格", "甲第001网格", "乙第001网格", "甲第002网格"]


def test_keep_codes_and_fill_lowest_free_numbers() -> None:
    grids = gpd.GeoDataFrame(
        {"community_id": ["c1"] * 4, "name": [None, None, "老网格", None]},
        geometry=[
            box(0, 0, 100, 100),
            box(100, 0, 200, 100),
            box(200, 0, 300, 100),
            box(300, 0, 400, 100),
        ],
    )
    # the westernmost grid is locked with number 002, the third keeps an old-style code
    keep = pd.Series({0: f"{CODE}002", 2: "OLD-7"})
    out = assign_codes(grids, _communities(), keep=keep)
    assert out["grid_code"].tolist() == [f"{CODE}002", f"{CODE}001", "OLD-7", f"{CODE}003"]
    assert out["name"].tolist() == [
        "幸福社区第002网格",
        "幸福社区第001网格",
        "老网格",
        "幸福社区第003网格",
    ]
    out = assign_codes(grids, _communities(), keep={3: f"{CODE}001"})
    assert out["grid_code"].tolist() == [f"{CODE}{k}" for k in ("002", "003", "004", "001")]


def test_codes_guards() -> None:
    grids = _jittered_lattice()
    with pytest.raises(LayerError, match=r"lacks column\(s\) \['community_id'\]"):
        assign_codes(grids.drop(columns="community_id"), _communities())
    with pytest.raises(LayerError, match=r"unknown community id\(s\) \['zz'\]"):
        assign_codes(grids.assign(community_id="zz"), _communities())
    with pytest.raises(LayerError, match="not in grids"):
        assign_codes(grids, _communities(), keep={99: f"{CODE}001"})
    with pytest.raises(PartitionError, match="more than one grid"):
        assign_codes(grids, _communities(), keep={0: f"{CODE}001", 1: f"{CODE}001"})
    with pytest.raises(LayerError, match="no geometry"):
        assign_codes(grids.set_geometry([None] * 9, crs=3857), _communities())


def _road(name: str, coords: list[tuple[float, float]]) -> tuple[str, LineString]:
    return name, LineString(coords)


def _roads(items: list[tuple[str | None, LineString]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": [n for n, _ in items]}, geometry=[g for _, g in items], crs=3857
    )


def test_four_roads_around_a_square() -> None:
    grids = gpd.GeoDataFrame(
        {"name": ["幸福社区第001网格"]}, geometry=[box(0, 0, 100, 100)], crs=3857
    )
    roads = _roads(
        [
            ("东环路", LineString([(105, -50), (105, 150)])),
            ("南京路", LineString([(-50, -5), (150, -5)])),
            ("西环路", LineString([(-8, -50), (-8, 150)])),
            ("北京路", LineString([(-50, 100), (40, 100)])),
            ("北京路", LineString([(40, 100), (150, 100)])),  # same road in two pieces
            (None, LineString([(-50, 101), (150, 101)])),  # unnamed: ignored
        ]
    )
    desc = boundary_descriptions(grids, roads)
    assert desc.name == "boundary_desc"
    assert desc.tolist() == ["东至东环路，南至南京路，西至西环路，北至北京路"]


def test_neighbours_when_no_roads() -> None:
    names = ["A第001网格", "A第002网格", "A第003网格", "A第004网格"]
    grids = gpd.GeoDataFrame(
        {"name": names},
        geometry=[
            box(0, 100, 100, 200),
            box(100, 100, 200, 200),
            box(0, 0, 100, 100),
            box(100, 0, 200, 100),
        ],
        crs=3857,
    )
    desc = boundary_descriptions(grids)
    assert desc.tolist() == [
        "东至A第002网格，南至A第003网格，西至社区边界，北至社区边界",
        "东至社区边界，南至A第004网格，西至A第001网格，北至社区边界",
        "东至A第004网格，南至社区边界，西至社区边界，北至A第001网格",
        "东至社区边界，南至社区边界，西至A第003网格，北至A第002网格",
    ]


def test_crossing_road_does_not_name_a_side_and_roads_beat_neighbours() -> None:
    grids = gpd.GeoDataFrame(
        {"grid_code": ["g1", "g2"]}, geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)], crs=3857
    )
    roads = _roads(
        [
            ("Long Rd", LineString([(100, -20), (100, 120)])),  # along the shared edge
            ("Cross St", LineString([(-100, 50), (0, 50)])),  # ends at g1's west side
        ]
    )
    desc = boundary_descriptions(grids, roads)
    assert desc.tolist() == [
        "east to Long Rd, south to community boundary, west to community boundary, "
        "north to community boundary",
        "east to community boundary, south to community boundary, west to Long Rd, "
        "north to community boundary",
    ]
    assert (
        boundary_descriptions(grids, roads, lang="zh")
        .iloc[0]
        .startswith("东至Long Rd，南至社区边界")
    )


def test_far_road_is_ignored() -> None:
    grids = gpd.GeoDataFrame({"grid_code": ["g1"]}, geometry=[box(0, 0, 100, 100)], crs=3857)
    roads = _roads([("中山路", LineString([(140, -50), (140, 150)]))])
    assert (
        boundary_descriptions(grids, roads).iloc[0]
        == "东至社区边界，南至社区边界，西至社区边界，北至社区边界"
    )
    near = boundary_descriptions(grids, roads, search_distance=50)
    assert near.iloc[0].startswith("东至中山路，")


def test_boundary_guards() -> None:
    grids = gpd.GeoDataFrame({"grid_code": ["g1"]}, geometry=[box(0, 0, 100, 100)], crs=3857)
    with pytest.raises(LayerError, match=r"roads lacks column\(s\) \['name'\]"):
        boundary_descriptions(
            grids, gpd.GeoDataFrame(geometry=[LineString([(0, 0), (1, 1)])], crs=3857)
        )
    with pytest.raises(CRSError, match="to_crs"):
        boundary_descriptions(
            grids, _roads([("x", LineString([(0, 0), (1, 1)]))]).set_crs(32650, allow_override=True)
        )
    assert boundary_descriptions(grids.iloc[:0]).tolist() == []
