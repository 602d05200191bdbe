import numpy as np
import pytest
import shapely

from gridmap.errors import CRSError
from gridmap.visits.examples import X0, Y0, _lattice
from gridmap.visits.network import RoadNetwork
from gridmap.visits.route import mst_bound, plan_route, tour_length


@pytest.fixture(scope="module")
def roads3():
    return _lattice(n=3, step=100.0)  # 3×3 street lattice, 200 m × 200 m


def test_lattice_network_is_noded():
    net = RoadNetwork.from_roads(_lattice(n=3))
    assert len(net.nodes) == 9 and len(net.edges) == 12
    assert net.lengths.sum() == pytest.approx(1200.0)


def test_known_optimal_route_on_3x3_lattice(roads3):
    # the 8 outer lattice nodes, given in a bad order; the home at the centre node
    ring = [(0, 0), (100, 0), (200, 0), (200, 100), (200, 200), (100, 200), (0, 200), (0, 100)]
    shuffled = [ring[k] for k in (0, 4, 2, 6, 1, 5, 3, 7)]
    stops = [(X0 + x, Y0 + y) for x, y in shuffled]
    r = plan_route(stops, roads3, home=(X0 + 100, Y0 + 100), direct_within=0)
    # optimum: centre → a side midpoint (100) → around the ring (700) → back (100)
    assert r.total_m == pytest.approx(1000.0)
    assert r.list_order_m > r.total_m
    assert r.lower_bound_m <= r.total_m
    assert len(r.legs_m) == 9 and r.home
    seq = [shuffled[i] for i in r.order]
    steps = [abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in zip(seq, seq[1:], strict=False)]
    assert steps == [100] * 7  # walks the ring
    assert r.geometry.geom_type == "MultiLineString"
    assert r.geometry.length == pytest.approx(1000.0)


def test_network_beats_straight_lines_through_blocks(roads3):
    # two stops across a block: straight 141 m, on the streets 200 m
    r = plan_route([(X0 + 0, Y0 + 0), (X0 + 100, Y0 + 100)], roads3, direct_within=0)
    assert r.total_m == pytest.approx(400.0)
    straight = plan_route([(X0 + 0, Y0 + 0), (X0 + 100, Y0 + 100)])
    assert straight.total_m == pytest.approx(2 * np.hypot(100, 100))


def test_connectors_and_close_stops(roads3):
    # 10 m off a street, two households of one building walk straight
    pts = [(X0 + 50, Y0 + 10), (X0 + 52, Y0 + 10), (X0 + 150, Y0 + 190)]
    r = plan_route(pts, roads3)
    d = r.legs_m
    assert sorted(np.round(d, 6).tolist())[0] == pytest.approx(2.0)


def test_empty_and_single():
    r = plan_route([])
    assert r.n_stops == 0 and r.total_m == 0.0 and r.geometry.is_empty and len(r.stops) == 0
    one = plan_route([(X0, Y0)])
    assert one.order.tolist() == [0] and one.total_m == 0.0


@pytest.mark.parametrize("seed", range(8))
def test_never_longer_than_list_nor_shorter_than_mst(seed):
    rng = np.random.default_rng(seed)
    roads = _lattice(n=6, step=80.0)
    n = int(rng.integers(5, 35))
    pts = np.column_stack([X0 + rng.uniform(-30, 430, n), Y0 + rng.uniform(-30, 430, n)])
    home = (X0 + float(rng.uniform(0, 400)), Y0 + float(rng.uniform(0, 400)))
    r = plan_route(pts, roads, home=home)
    assert r.total_m <= r.list_order_m + 1e-6
    assert r.total_m >= r.lower_bound_m - 1e-6
    assert sorted(r.order.tolist()) == list(range(n))
    again = plan_route(pts, roads, home=home)
    assert again.order.tolist() == r.order.tolist() and again.total_m == r.total_m
    net = RoadNetwork.from_roads(roads)
    assert plan_route(pts, net, home=home).total_m == pytest.approx(r.total_m)


def test_tour_helpers():
    d = np.array([[0, 3, 4], [3, 0, 5], [4, 5, 0]], dtype=float)
    assert tour_length(d, [0, 1, 2]) == 12.0
    assert mst_bound(d) == 7.0
    assert mst_bound(np.zeros((2, 2))) == pytest.approx(0.0, abs=1e-9)


def test_crs_guards(roads3):
    import geopandas as gpd

    pts = gpd.GeoSeries([shapely.Point(X0, Y0)], crs=3857)
    with pytest.raises(CRSError, match="reproject"):
        plan_route(pts, roads3)
    with pytest.raises(CRSError, match="degrees"):
        RoadNetwork.from_roads(roads3.to_crs(4326))
