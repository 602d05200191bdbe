"""Case maps (gridmap.maps.cases): what the page holds, personal data by role, size at 100k."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyproj
import pytest
from maphtml import cases_data, external, features

from gridmap.cases import STATES
from gridmap.errors import CoordinateError, InputError, LayerError
from gridmap.maps import cases_map, nearby_cases, nearby_cases_map
from gridmap.maps.cases import OVERDUE_COLOUR, STATUS_COLOURS, STATUS_LABELS
from gridmap.maps.examples import _example_plan

G1, G2 = "320106001001001", "320106001001002"
NOW = "2026-11-05 12:00"


def example_cases() -> pd.DataFrame:
    """Six cases on the two-grid example plan (G1 west, G2 east; 200 and 400 households)."""
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "lon": [118.7805, 118.7806, 118.7825, 118.7830, None, 118.7828],
            "lat": [32.0495, 32.0494, 32.0495, 32.0494, None, 32.0496],
            "status": ["in_progress", "closed", "dispatched", "received", "unlocated", "replied"],
            "category": ["noise", "road", "noise", "garbage", "other", "noise"],
            "received_at": [
                "2026-11-02 09:00",
                "2026-10-20 10:00",
                "2026-11-04 15:30",
                "2026-11-05 08:00",
                "2026-11-05 09:00",
                "2026-10-30 11:00",
            ],
            "due_at": [
                "2026-11-03 23:59:59",  # passed, in progress: overdue
                "2026-10-27 23:59:59",  # passed but closed
                "2026-11-11 23:59:59",
                None,
                None,
                "2026-11-04 23:59:59",  # passed but replied
            ],
            "grid_code": [G1, G1, G2, G2, None, G2],
            "ticket": [f"GD2026110{k}" for k in range(1, 7)],
            "description": [
                "夜间施工噪音",
                "路面坑洼",
                "广场舞音响",
                "垃圾满溢",
                "无地址",
                "商铺外放",
            ],
            "address": ["幸福路1号", "幸福路2号", "和平路3号", "和平路4号", None, "和平路6号"],
            "reporter_name": ["张三", "李四", "王五", "赵六", "钱七", "孙八"],
            "reporter_phone": [f"1381234567{k}" for k in range(1, 7)],
        }
    )


@pytest.fixture(scope="module")
def plan():
    return _example_plan(households=[200, 400])


def test_page_holds_every_located_case_with_its_colour(plan) -> None:
    html = cases_map(example_cases(), plan, now=NOW, assets="inline").get_root().render()
    d = cases_data(html)
    assert d["n"] == 5 and d["ids"] == [1, 2, 3, 4, 6]  # case 5 has no location
    assert d["status"] == ["in_progress", "closed", "dispatched", "received", "replied"]
    assert d["o"] == [1, 0, 0, 0, 0]
    assert d["colour"] == [
        OVERDUE_COLOUR,
        STATUS_COLOURS["closed"],
        STATUS_COLOURS["dispatched"],
        STATUS_COLOURS["received"],
        STATUS_COLOURS["replied"],
    ]
    assert np.allclose(d["lon"], [118.7805, 118.7806, 118.7825, 118.7830, 118.7828], atol=1e-6)
    assert [d["G"][g] for g in d["g"]] == [G1, G1, G2, G2, G2]
    # received minutes and due offsets: 2026-11-02 09:00 +08:00 → due 11-03 23:59 is 2339 min on
    assert d["d"][0] == 60 * 24 + 14 * 60 + 59 and d["d"][3] is None
    # Chinese labels beside the English codes, counts in the filter panel and legend
    assert "办理中 in_progress · 1" in html and "已结案 closed · 1" in html
    assert "仅超期 Overdue only · 1" in html
    assert "无坐标未显示 Not drawn (no location): 1" in html
    assert "噪音扰民" in html and "事件 Cases: 5" in html


def test_grids_are_a_choropleth_of_cases_per_1000_households(plan) -> None:
    html = cases_map(example_cases(), plan, now=NOW, assets="inline").get_root().render()
    grids = {f["id"]: f["properties"] for f in features(html, "per_1000")}
    assert grids[G1]["cases"] == 2 and grids[G1]["per_1000"] == 10.0  # 2 / 200 households
    assert grids[G2]["cases"] == 3 and grids[G2]["per_1000"] == 7.5  # 3 / 400 households
    assert "千户事件数 Cases per 1,000 households" in html


def test_viewers_get_no_personal_data_dispatchers_do(plan) -> None:
    cases = example_cases()
    viewer = cases_map(cases, plan, now=NOW).get_root().render()
    for col in ("ticket", "description", "address", "reporter_name", "reporter_phone"):
        for value in cases[col].dropna():
            assert value not in viewer, (col, value)
    assert "p" not in cases_data(viewer)
    dispatcher = cases_map(cases, plan, now=NOW, personal=True).get_root().render()
    d = cases_data(dispatcher)
    names = d["p"][d["P"].index("来电人 Caller")]
    assert names == {"v": ["张三", "李四", "王五", "赵六", "孙八"]}  # all different: no table
    descs = pd.Series(["同一诉求"] * 6)
    repeated = cases_map(cases.assign(description=descs), plan, now=NOW, personal=True)
    col = cases_data(repeated.get_root().render())["p"][1]
    assert col == {"t": ["同一诉求"], "k": [0, 0, 0, 0, 0]}  # repeats: written once
    assert "13812345671" in dispatcher and "夜间施工噪音" in dispatcher


def test_offline_page_links_no_cdn(plan) -> None:
    html = cases_map(example_cases(), plan, now=NOW, assets="inline").get_root().render()
    assert external(html) == []
    assert "cdn" not in " ".join(re.findall(r"(?:src|href)=\"([^\"]+)\"", html))
    assert "L.MarkerClusterGroup" in html  # Leaflet.markercluster is inside the page


def test_python_filters_by_period_status_and_category(plan) -> None:
    cases = example_cases()

    def ids(**kw) -> list[int]:
        return cases_data(cases_map(cases, plan, now=NOW, **kw).get_root().render())["ids"]

    assert ids(period=("2026-11-01", "2026-11-04")) == [1, 3]  # both days included
    assert ids(status=["closed", "replied"]) == [2, 6]
    assert ids(category="噪音扰民") == [1, 3, 6]
    assert ids(category=["noise"], status="dispatched") == [3]


def test_overdue_column_wins_over_the_computation(plan) -> None:
    cases = example_cases().assign(overdue=[False, False, True, False, False, False])
    d = cases_data(cases_map(cases, plan).get_root().render())
    assert d["o"] == [0, 0, 1, 0, 0]


def test_without_plan_and_without_cases() -> None:
    d = cases_data(cases_map(example_cases(), now=NOW).get_root().render())
    assert d["n"] == 5 and d["G"] == [] and set(d["g"]) == {-1}
    empty = example_cases().iloc[:0]
    html = cases_map(empty, _example_plan(), now=NOW).get_root().render()
    assert cases_data(html)["n"] == 0 and "事件 Cases: 0" in html


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"drop": "status"}, LayerError, "lacks column"),
        ({"status": "finished"}, InputError, "unknown case status"),
        ({"lon": 218.0}, CoordinateError, "case ids [1]"),
    ],
)
def test_bad_cases_say_what_to_fix(plan, change, error, words) -> None:
    cases = example_cases()
    if "drop" in change:
        cases = cases.drop(columns=change["drop"])
    else:
        for col, value in change.items():
            cases.loc[0, col] = value
    with pytest.raises(error, match=re.escape(words)):
        cases_map(cases, plan)


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"status": "done"}, "unknown status filter"),
        ({"category": "外星人"}, "unknown category"),
        ({"period": ("2026-11-05", "2026-11-01")}, "before it starts"),
        ({"period": "2026-11"}, "must be (start, end)"),
        ({"period": ("yesterday", None)}, "not a date"),
    ],
)
def test_bad_filters_say_what_to_fix(plan, kw, words) -> None:
    with pytest.raises(InputError, match=re.escape(words)):
        cases_map(example_cases(), plan, **kw)


def test_every_state_has_a_chinese_label_and_a_colour() -> None:
    assert set(STATUS_LABELS) == set(STATES) == set(STATUS_COLOURS)
    assert OVERDUE_COLOUR not in STATUS_COLOURS.values()


def test_nearby_cases_lists_likely_duplicates_first() -> None:
    cases = example_cases()
    near = nearby_cases(cases, 118.7826, 32.0495, radius=100, category="noise", at=NOW)
    # open cases within 100 m: 3 (noise, 9 m), 6 (noise, replied: still open), 4 (garbage)
    assert near["id"].tolist() == [3, 6, 4]
    assert near["likely_duplicate"].tolist() == [True, True, False]
    geod = pyproj.Geod(ellps="WGS84")
    lon, lat = near["lon"].to_numpy(), near["lat"].to_numpy()
    exact = geod.inv(np.full(3, 118.7826), np.full(3, 32.0495), lon, lat)[2]
    assert exact == pytest.approx([9.4, 21.9, 39.4], abs=0.1)
    assert near["distance_m"].tolist() == pytest.approx(exact, abs=0.1)
    # without a category nothing is a duplicate and the order is by distance
    assert nearby_cases(cases, 118.7826, 32.0495, radius=100, at=NOW)["id"].tolist() == [3, 6, 4]
    # a week later, case 3 (received 11-04) is no longer a likely duplicate, 6 neither
    later = nearby_cases(cases, 118.7826, 32.0495, radius=100, category="noise", at="2026-11-20")
    assert later["likely_duplicate"].tolist() == [False, False, False]
    with pytest.raises(InputError, match="radius must be a positive"):
        nearby_cases(cases, 118.7826, 32.0495, radius=0)


def test_nearby_cases_map_shows_the_list_and_hides_callers_from_viewers(plan) -> None:
    cases = example_cases()
    viewer = nearby_cases_map(
        plan, 118.7826, 32.0495, cases, radius=100, category="noise", at=NOW, staff_visible=False
    )
    html = viewer.get_root().render()
    assert "附近未结事件 Open cases within 100 m: 3" in html
    assert "疑似重复 Likely duplicates: 2" in html
    assert html.index("<li>3 ·") < html.index("<li>6 ·") < html.index("<li>4 ·")
    assert "王五" not in html and "13812345673" not in html and "广场舞音响" not in html
    disp = (
        nearby_cases_map(
            plan, 118.7826, 32.0495, cases, radius=100, category="noise", at=NOW, personal=True
        )
        .get_root()
        .render()
    )
    assert "王五" in disp and "广场舞音响" in disp


def big_cases(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` cases spread over a 10 km square of Nanjing, with personal columns filled."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="Asia/Shanghai")
    received = start + pd.to_timedelta(np.sort(rng.integers(0, 365 * 24 * 60, n)), unit="min")
    states = ["received", "accepted", "dispatched", "in_progress", "replied", "callback", "closed"]
    cats = ["noise", "garbage", "road", "parking", "dispute", "elderly", "water", "fire", "other"]
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "lon": 118.70 + rng.uniform(0, 0.1, n),
            "lat": 32.00 + rng.uniform(0, 0.09, n),
            "status": rng.choice(states, n),
            "category": rng.choice(cats, n),
            "received_at": received,
            "due_at": received + pd.Timedelta(days=5),
            "grid_code": rng.choice([G1, G2], n),
            "description": ["楼上装修噪音扰民"] * n,
            "reporter_name": ["张三"] * n,
            "reporter_phone": ["13812345678"] * n,
        }
    )


@pytest.mark.slow
def test_a_map_of_100000_cases_is_under_5_mb(plan) -> None:
    html = cases_map(big_cases(100_000), plan, now="2026-12-31", assets="inline")
    text = html.get_root().render()
    size = len(text.encode("utf-8"))
    assert size < 5_000_000, size
    assert cases_data(text)["n"] == 100_000 and "13812345678" not in text
