from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

from gridmap.cases import find_duplicates
from gridmap.errors import CRSError, LayerError

T = pd.Timestamp("2026-09-18 10:00", tz="Asia/Shanghai")
X0, Y0 = 350000.0, 3460000.0


def open_cases() -> pd.DataFrame:
    rows = [
        ("A", "noise", 0, 30.0, 0.0),  # 30 m, same day
        ("B", "noise", -6, 0.0, 49.9),  # 49.9 m, 6 days before
        ("C", "noise", 0, 50.1, 0.0),  # just outside 50 m
        ("D", "road", 0, 5.0, 0.0),  # other category
        ("E", "noise", -8, 10.0, 0.0),  # 8 days before
        ("F", "noise", 2, 0.0, -30.0),  # 30 m, ties A by distance: sorted by id
        ("N1", "noise", 0, 0.0, 0.0),  # the new case itself, already stored
    ]
    return pd.DataFrame(
        {
            "id": [r[0] for r in rows],
            "category": [r[1] for r in rows],
            "received_at": [T + pd.Timedelta(days=r[2]) for r in rows],
            "x": [X0 + r[3] for r in rows],
            "y": [Y0 + r[4] for r in rows],
        }
    )


def new_cases() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["N1", "N2", "N3"],
            "category": ["noise", "road", "water"],
            "received_at": [T, T, T],
            "x": [X0, X0 + 5.0, X0],
            "y": [Y0, Y0, Y0],
        },
        index=[10, 11, 12],
    )


def test_exact_candidates():
    out = find_duplicates(new_cases(), open_cases())
    assert out.index.tolist() == [10, 11, 12]
    assert out.tolist() == [["A", "F", "B"], ["D"], []]


def test_parameters():
    out = find_duplicates(new_cases(), open_cases(), radius=51, days=9)
    assert out.iloc[0] == ["E", "A", "F", "B", "C"]
    anyc = find_duplicates(new_cases(), open_cases(), same_category=False)
    assert anyc.iloc[0] == ["D", "A", "F", "B"]
    assert find_duplicates(new_cases(), open_cases(), days=1).iloc[0] == ["A"]
    assert find_duplicates(new_cases(), open_cases().iloc[:0]).tolist() == [[], [], []]


def test_naive_times_are_local():
    o = open_cases()
    o["received_at"] = o["received_at"].dt.tz_localize(None)
    assert find_duplicates(new_cases(), o).iloc[0] == ["A", "F", "B"]


def test_geodataframes_and_crs_guards():
    o, n = open_cases(), new_cases()
    og = gpd.GeoDataFrame(
        o.drop(columns=["x", "y"]), geometry=gpd.points_from_xy(o.x, o.y), crs=32651
    )
    ng = gpd.GeoDataFrame(
        n.drop(columns=["x", "y"]), geometry=gpd.points_from_xy(n.x, n.y), crs=32651
    )
    assert find_duplicates(ng, og).tolist() == [["A", "F", "B"], ["D"], []]
    with pytest.raises(CRSError, match="projected CRS"):
        find_duplicates(ng.to_crs(4326), og.to_crs(4326))
    with pytest.raises(CRSError, match="reproject one"):
        find_duplicates(ng, og.to_crs(32650))
    deg = n.assign(x=121.4, y=31.2)
    with pytest.raises(CRSError, match="look like degrees"):
        find_duplicates(deg, o)
    with pytest.raises(LayerError, match=r"lacks column\(s\) \['category'\]"):
        find_duplicates(n.drop(columns="category"), o)
    with pytest.raises(LayerError, match="missing or infinite"):
        find_duplicates(n.assign(x=float("nan")), o)
