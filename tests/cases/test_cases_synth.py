"""Tests of gridmap/cases/synth.py (named apart from tests/test_synth.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from casefixtures import grids, locator

from gridmap.cases import SYNTH_COLUMNS, TZ, default_calendar, intake_many, synth_cases
from gridmap.crs import gcj02_to_wgs84
from gridmap.errors import CRSError, InputError


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    return synth_cases(grids(), n=3000, start="2026-01-01", days=365, seed=4)


def test_deterministic_for_a_seed(year):
    again = synth_cases(grids(), n=3000, start="2026-01-01", days=365, seed=4)
    assert year.to_csv().encode() == again.to_csv().encode()
    other = synth_cases(grids(), n=3000, start="2026-01-01", days=365, seed=5)
    assert not year["ticket_no"].equals(other["ticket_no"]) or not year["lon"].equals(other["lon"])


def test_shape_and_realism(year):
    assert year.columns.tolist() == list(SYNTH_COLUMNS)
    assert year["ticket_no"].is_unique and year["received_at"].is_monotonic_increasing
    assert (year["received_at"].dt.year == 2026).all()
    hours = year["received_at"].dt.hour
    assert ((hours >= 8) & (hours < 18)).mean() > 0.75  # mostly office hours
    cal = default_calendar()
    work = np.array([cal.is_workday(d) for d in year["received_at"].dt.date])
    assert work.mean() > 0.8
    counts = year["category"].value_counts()
    assert counts["noise"] > counts["fire"] and set(counts.index) >= {"noise", "other", "fire"}
    assert 0.08 < year["late"].mean() < 0.18
    assert (year["late"] == (year["replied_at"] > year["resolve_due"])).all()
    assert year["reporter_phone"].str.fullmatch(r"1[35789]\d{9}").all()
    assert (year["crs"] == "gcj02").all()


def test_points_lie_in_the_grids_and_are_gcj02(year):
    g = grids()
    lon, lat = gcj02_to_wgs84(year["lon"].to_numpy(), year["lat"].to_numpy())
    x, y = pyproj.Transformer.from_crs(4326, g.crs, always_xy=True).transform(lon, lat)
    area = shapely.union_all(g.geometry.to_numpy())
    assert shapely.covers(shapely.buffer(area, 0.01), shapely.points(x, y)).all()
    assert year["true_grid"].notna().all()
    # hotspots: the busiest 50 m cell holds far more than a uniform share
    cells = pd.Series(list(zip((x // 50).astype(int), (y // 50).astype(int), strict=True)))
    assert cells.value_counts().iloc[0] > 3 * len(year) / (area.area / 2500)


def test_ready_for_intake(year):
    sample = year.iloc[:200]
    cases = intake_many(sample, locate=locator())
    assert [c.grid_code for c in cases] == sample["true_grid"].tolist()
    due = [c.deadlines["resolve"].due for c in cases]
    assert due == [t.to_pydatetime() for t in sample["resolve_due"]]
    assert all(c.received_at.tzinfo is not None for c in cases)
    assert str(sample["received_at"].dt.tz) == str(TZ)


def test_guards():
    with pytest.raises(InputError, match="n must be 0 or more"):
        synth_cases(grids(), n=-1)
    with pytest.raises(CRSError, match="projected CRS"):
        synth_cases(grids().to_crs(4326), n=1)
    assert len(synth_cases(grids(), n=0)) == 0
