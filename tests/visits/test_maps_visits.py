import pytest

from gridmap.errors import NotFoundError
from gridmap.maps import visit_route_map
from gridmap.visits import due_visits, plan_route, route_stops
from gridmap.visits.examples import G1, _example


def test_route_map_offline_with_numbered_stops():
    ex = _example()
    due = due_visits(ex.plan, ex.households, ex.buildings, period="2026-09")
    stops = route_stops(due, ex.buildings, staff_id="S1")
    r = plan_route(stops, ex.roads, home=ex.staff.geometry.iloc[0])
    html = (
        visit_route_map(r, plan=ex.plan, grid_code=G1, title="张伟 2026-09-18", assets="inline")
        .get_root()
        .render()
    )
    assert "unpkg.com" not in html and "cdn.jsdelivr" not in html
    for k in range(1, len(stops) + 1):
        assert f"\\u003cspan\\u003e{k}\\u003c/span\\u003e" in html
    assert "张伟 2026-09-18" in html and "走访路线 Visit route" in html
    with pytest.raises(NotFoundError):
        visit_route_map(r, plan=ex.plan, grid_code="nope")


def test_empty_route_map():
    ex = _example()
    r = plan_route(
        route_stops(
            due_visits(ex.plan, ex.households, ex.buildings, period="2026-09"),
            ex.buildings,
            staff_id="S2",
        )
    )
    assert r.n_stops == 0
    html = visit_route_map(r, plan=ex.plan).get_root().render()
    assert "今日无待访" in html
