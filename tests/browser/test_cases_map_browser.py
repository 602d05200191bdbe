"""Case maps in a real headless Chromium: clusters, colours, popups and the in-page filters."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridmap.maps import cases_map
from gridmap.maps.cases import OVERDUE_COLOUR, STATUS_COLOURS
from gridmap.maps.examples import _example_plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "maps"))
from test_cases_map import NOW, example_cases  # noqa: E402

pytestmark = pytest.mark.browser


def ready(opened) -> dict:
    """Wait until every shown case is in the cluster layer; return the page's case state."""
    name = opened.map_name
    opened.page.wait_for_function(f"() => window.{name}.gridmapCases.ready === true")
    return opened.evaluate(
        f"""() => {{
            var s = window.{name}.gridmapCases, c = s.cluster;
            return {{shown: s.shown, total: s.total, loads: s.loads,
                     inLayer: c._topClusterLevel.getChildCount(),
                     clusters: document.querySelectorAll(".marker-cluster").length,
                     lateBadges: document.querySelectorAll(".gridmap-cluster-od").length}};
        }}"""
    )


def clean(opened) -> None:
    assert opened.page_errors == [] and opened.console_errors == []
    assert opened.unexpected == []
    assert all("tile.openstreetmap.org" in u for u in opened.blocked)


def test_small_map_draws_each_case_with_its_colour_and_popup(open_map, artifacts) -> None:
    plan = _example_plan(households=[200, 400])
    opened = open_map(cases_map(example_cases(), plan, now=NOW, assets="inline"), offline=True)
    st = ready(opened)
    assert st["shown"] == st["total"] == st["inLayer"] == 5
    name = opened.map_name
    # the fill of each circle marker as drawn: the overdue one red, the others by status
    fills = opened.evaluate(
        f"""() => window.{name}.gridmapCases.cluster.getLayers()
                .sort(function (a, b) {{ return a._gm - b._gm; }})
                .map(function (l) {{ return l.options.fillColor; }})"""
    )
    assert fills == [
        OVERDUE_COLOUR,
        STATUS_COLOURS["closed"],
        STATUS_COLOURS["dispatched"],
        STATUS_COLOURS["received"],
        STATUS_COLOURS["replied"],
    ]
    # a click on the first case opens its popup (Chinese labels, no caller for a viewer map)
    text = opened.evaluate(
        f"""() => {{
            var c = window.{name}.gridmapCases.cluster;
            var l = c.getLayers().filter(function (m) {{ return m._gm === 0; }})[0];
            c.fire("click", {{layer: l, latlng: l.getLatLng()}});
            return document.querySelector(".leaflet-popup-content").textContent;
        }}"""
    )
    assert "事件 Case 1" in text and "办理中 in_progress" in text and "超期 Overdue" in text
    assert "噪音扰民" in text and "2026-11-02 09:00" in text and "2026-11-03 23:59" in text
    assert "张三" not in text
    opened.page.screenshot(path=str(artifacts / "cases_map_small.png"))
    clean(opened)


def test_filters_redraw_the_clusters_and_the_choropleth(open_map) -> None:
    plan = _example_plan(households=[200, 400])
    opened = open_map(cases_map(example_cases(), plan, now=NOW, assets="inline"), offline=True)
    ready(opened)
    page, name = opened.page, opened.map_name
    page.check("input[data-late]")
    st = ready(opened)
    assert st["shown"] == st["inLayer"] == 1 and st["loads"] == 2
    cases = opened.evaluate(
        f"""() => {{
            var out = {{}};
            window.{name}.eachLayer(function (l) {{
                if (l.feature && l.feature.properties && "per_1000" in l.feature.properties)
                    out[l.feature.properties.grid_code] = [l.feature.properties.cases,
                                                          l.feature.properties.per_1000];
            }});
            return out;
        }}"""
    )
    assert cases == {"320106001001001": [1, 5.0], "320106001001002": [0, 0.0]}
    page.uncheck("input[data-late]")
    page.fill("input[data-from]", "2026-11-04")
    page.dispatch_event("input[data-from]", "change")
    st = ready(opened)
    assert st["shown"] == st["inLayer"] == 2  # cases 3 and 4 were received on 11-04 and 11-05
    assert page.text_content(".gm-n") == "2"
    clean(opened)


def test_thousands_of_cases_cluster_with_overdue_badges(open_map, artifacts) -> None:
    rng = np.random.default_rng(3)
    n = 3000
    start = pd.Timestamp("2026-10-01", tz="Asia/Shanghai")
    cases = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "lon": 118.770 + rng.uniform(0, 0.03, n),
            "lat": 32.040 + rng.uniform(0, 0.02, n),
            "status": rng.choice(["dispatched", "in_progress", "closed"], n),
            "category": rng.choice(["noise", "road", "water"], n),
            "received_at": start + pd.to_timedelta(rng.integers(0, 40 * 24 * 60, n), unit="min"),
        }
    )
    cases["due_at"] = cases["received_at"] + pd.Timedelta(days=5)
    plan = _example_plan(households=[200, 400])
    opened = open_map(cases_map(cases, plan, now=NOW, assets="inline"), offline=True)
    st = ready(opened)
    assert st["shown"] == st["inLayer"] == n
    assert 0 < st["clusters"] < 200  # clustered, not 3,000 markers
    assert st["lateBadges"] > 0  # clusters holding overdue cases say how many
    opened.page.screenshot(path=str(artifacts / "cases_map_clusters.png"))
    clean(opened)


def test_locate_page_with_nearby_cases_runs_clean(open_map, artifacts) -> None:
    from gridmap.maps import nearby_cases_map

    plan = _example_plan(households=[200, 400])
    m = nearby_cases_map(
        plan,
        118.7826,
        32.0495,
        example_cases(),
        radius=100,
        category="noise",
        at=NOW,
        assets="inline",
    )
    opened = open_map(m, offline=True)
    panel = opened.page.locator(".gridmap-near").inner_text()
    assert "Open cases within 100 m: 3" in panel and "Likely duplicates: 2" in panel
    layers = opened.page.locator(".leaflet-control-layers-overlays").inner_text()
    assert "附近未结事件 Open cases within 100 m" in layers
    opened.page.screenshot(path=str(artifacts / "cases_nearby.png"))
    clean(opened)


def test_popup_of_a_saved_service_page_says_details_need_the_service(open_map) -> None:
    """``details=`` outside the service: nothing personal in the file, the popup says why."""
    plan = _example_plan(households=[200, 400])
    m = cases_map(example_cases(), plan, now=NOW, personal=True, details="/cases/", assets="inline")
    html = m.get_root().render()
    assert "张三" not in html and "13812345671" not in html and "夜间施工噪音" not in html
    opened = open_map(m, offline=True)
    ready(opened)
    name = opened.map_name
    opened.evaluate(
        f"""() => {{
            var c = window.{name}.gridmapCases.cluster;
            var l = c.getLayers().filter(function (m) {{ return m._gm === 0; }})[0];
            c.fire("click", {{layer: l, latlng: l.getLatLng()}});
        }}"""
    )
    popup = opened.page.locator(".leaflet-popup-content").filter(has_text="无法读取")
    popup.wait_for(timeout=15_000)
    text = popup.inner_text()
    assert "事件 Case 1" in text and "details come from the gridmap service" in text
    assert "张三" not in text
    assert any(u.startswith("file:") and u.endswith("/cases/1") for u in opened.local)


def test_offline_personal_page_embeds_the_caller(open_map) -> None:
    """Without ``details`` (Jupyter, CLI --personal) the callers are in the file's popups."""
    plan = _example_plan(households=[200, 400])
    opened = open_map(
        cases_map(example_cases(), plan, now=NOW, personal=True, assets="inline"), offline=True
    )
    ready(opened)
    name = opened.map_name
    text = opened.evaluate(
        f"""() => {{
            var c = window.{name}.gridmapCases.cluster;
            var l = c.getLayers().filter(function (m) {{ return m._gm === 0; }})[0];
            c.fire("click", {{layer: l, latlng: l.getLatLng()}});
            return document.querySelector(".leaflet-popup-content").textContent;
        }}"""
    )
    assert "张三" in text and "13812345671" in text and "夜间施工噪音" in text
    clean(opened)
