"""The partitioner does not see nanometres: one normal form of the input (issue 14's defect).

Layers that went through a GeoPackage or the store come back with the last bits of
their coordinates changed. Here every input coordinate is jittered, as a function of
its own value (so shared vertices stay shared and rings stay closed, as after a
reprojection), and the grids must be the same: same households per grid, same
building membership.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from invariants import assert_valid_plan
from shapely import LineString, Point, box

from gridmap.partition import partition
from gridmap.partition.precision import SNAP_GRID_M, snap_geometries, snap_layers
from gridmap.partition.units import _snap_ends


def _noise(xy: np.ndarray) -> np.ndarray:
    """A value in [-1, 1) per coordinate, a function of its bits (a hash)."""
    bits = np.ascontiguousarray(xy, dtype=np.float64).view(np.uint64)
    h = (bits * np.uint64(0x9E3779B97F4A7C15)) ^ (bits >> np.uint64(29))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    return (h >> np.uint64(11)).astype(np.float64) / 2.0**53 * 2 - 1


def _jitter(layers, relative: float, via_wgs84: bool):
    out = {}
    for name, frame in layers.items():
        f = frame.to_crs(4326) if via_wgs84 else frame
        g = np.asarray(f.geometry.array, dtype=object)
        with np.errstate(over="ignore"):
            g = shapely.transform(g, lambda xy: xy * (1 + relative * _noise(xy)))
        f = f.assign(**{f.geometry.name: g})
        f = f.set_crs(4326 if via_wgs84 else layers.crs, allow_override=True)
        out[name] = f.to_crs(layers.crs) if via_wgs84 else f
    return layers.replace(**out)


@pytest.fixture(scope="module")
def city():
    from gridmap.synth import synth_city
    from gridmap.validation import validate_layers

    layers = validate_layers(synth_city(n_buildings=300, seed=5))[0]
    return layers, partition(layers)


@pytest.mark.parametrize(
    ("relative", "via_wgs84"),
    [(1e-15, False), (1e-13, True)],
    ids=["nanometres-projected", "micrometres-through-wgs84"],
)
def test_jittered_coordinates_give_the_same_grids(city, relative, via_wgs84) -> None:
    layers, plan = city
    moved = _jitter(layers, relative, via_wgs84)
    a = shapely.get_coordinates(layers.buildings.geometry.values)
    b = shapely.get_coordinates(moved.buildings.geometry.values)
    assert 0 < float(np.abs(a - b).max()) < 1e-5  # every layer really moved, by < 10 µm
    again = partition(moved)
    assert_valid_plan(again, moved, min=200, max=500)
    assert again.grids["grid_code"].tolist() == plan.grids["grid_code"].tolist()
    assert again.grids["households"].tolist() == plan.grids["households"].tolist()
    key = ["building_id", "part", "grid_code", "households"]
    assert again.buildings[key].equals(plan.buildings[key])
    assert again.households["grid_code"].tolist() == plan.households["grid_code"].tolist()


def test_snapping_rounds_to_the_grid_and_is_idempotent(city) -> None:
    layers, _ = city
    once = snap_layers(layers)
    xy = shapely.get_coordinates(once.buildings.geometry.values) / SNAP_GRID_M
    assert np.array_equal(xy, np.round(xy))
    assert shapely.is_valid(once.buildings.geometry.values).all()
    twice = snap_layers(once)
    for name, frame in once.items():
        other = getattr(twice, name)
        assert shapely.equals_exact(frame.geometry.values, other.geometry.values, 0.0).all()
    # the input is not touched and attributes are kept
    assert not np.array_equal(
        shapely.get_coordinates(layers.buildings.geometry.values),
        shapely.get_coordinates(once.buildings.geometry.values),
    )
    assert once.buildings.drop(columns="geometry").equals(layers.buildings.drop(columns="geometry"))


def test_snapping_keeps_polygons_valid_and_points_exact() -> None:
    # a sliver 0.1 mm wide collapses on the grid: repaired, never dropped
    sliver = shapely.Polygon([(0, 0), (10, 0), (10, 1e-4), (5, 2e-4), (0, 1e-4)])
    out = snap_geometries(np.array([sliver, Point(0.5, 0.25), None], dtype=object))
    assert shapely.is_valid(out[0]) and shapely.get_type_id(out[0]) in (3, 6)
    assert out[1].equals(Point(0.5, 0.25)) and out[2] is None


def test_a_street_ending_a_hair_short_of_another_still_meets_it() -> None:
    main = LineString([(0, 0), (100, 0)])
    short = LineString([(50, 0.0007), (50, 60)])  # 0.7 mm short: a T junction after rounding
    over = LineString([(80, -0.0004), (80, 60)])  # 0.4 mm beyond: crosses
    far = LineString([(20, 0.5), (20, 60)])  # half a metre off: a real dead end
    snapped = _snap_ends(np.array([main, short, over, far]), np.empty(0, dtype=object), 5e-3)
    assert snapped[1].coords[0] == (50.0, 0.0)
    assert snapped[2].coords[0] == (80.0, 0.0)
    assert snapped[3].equals(far) and snapped[0].equals(main)
    # so the block between the two streets closes, with or without the hair
    from gridmap.partition.units import _blocks

    blocks = _blocks(box(0, -10, 100, 60), np.array([main, short, over, far]))
    assert len(blocks) == 4  # below the main street, and three faces above it
    assert abs(shapely.area(blocks).sum() - 7000) < 1e-6
