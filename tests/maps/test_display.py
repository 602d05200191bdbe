"""Display geometry: reprojection and rounding never fail on rings that rounding collapses."""

from __future__ import annotations

import pyproj
import shapely

from gridmap.maps.display import _to_display

CGCS = pyproj.CRS.from_epsg(4549)  # CGCS2000 / 3-degree Gauss-Kruger CM 120E (metres)


def test_a_hole_smaller_than_the_rounding_is_dropped_not_an_error() -> None:
    x0, y0 = 385_000.0, 3_545_000.0  # Nanjing, in EPSG:4549
    shell = [(x0, y0), (x0 + 200, y0), (x0 + 200, y0 + 200), (x0, y0 + 200)]
    # a 3 cm × 3 cm hole: at 6 decimals of a degree (~0.1 m) its corners round together
    hole = [(x0 + 100, y0 + 100), (x0 + 100.03, y0 + 100), (x0 + 100.03, y0 + 100.03)]
    grid = shapely.Polygon(shell, [hole])
    plain = shapely.box(x0 + 300, y0, x0 + 500, y0 + 200)
    out = _to_display([grid, plain], CGCS, gcj=False)
    assert len(out) == 2
    assert all(g.is_valid and not g.is_empty for g in out)
    assert len(out[0].interiors) == 0  # the collapsed hole is gone, the grid is kept
    assert len(out[1].exterior.coords) == 5  # an ordinary grid goes the fast way, unchanged
    # the grid keeps its place and size (about 200 m × 200 m, in degrees)
    assert abs(out[0].area / out[1].area - 1) < 0.01


def test_a_ring_rounded_to_one_point_does_not_crash_the_map() -> None:
    # the crash seen in the README tour: GEOS refused a ring left with 2 points after rounding
    x0, y0 = 385_000.0, 3_545_000.0
    shell = [(x0, y0), (x0 + 200, y0), (x0 + 200, y0 + 200), (x0, y0 + 200)]
    hole = [(x0 + 50, y0 + 50), (x0 + 50.001, y0 + 50), (x0 + 50.001, y0 + 50.001)]
    out = _to_display([shapely.Polygon(shell, [hole])], CGCS, gcj=True)
    assert out[0].is_valid and len(out[0].interiors) == 0
