from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cityfixtures import tiny_plan

from gridmap.crs import from_wgs84
from gridmap.errors import InputError, LayerError
from gridmap.incidents import locate_incidents, synth_incidents
from gridmap.validation import validate_layers


@pytest.fixture
def layers(raw):
    return validate_layers(raw)[0]


def test_synth_incidents_deterministic_and_in_gcj02(layers):
    a = synth_incidents(layers, n=200, seed=3)
    b = synth_incidents(layers, n=200, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 200 and a["id"].is_unique
    assert set(a["crs"]) == {"gcj02"}
    assert a["reported_at"].is_monotonic_increasing
    assert a["reported_at"].dt.date.astype(str).eq("2026-11-20").all()
    assert not synth_incidents(layers, n=200, seed=4)["lon"].equals(a["lon"])
    # GCJ-02 is hundreds of metres from WGS84: the located WGS84 points fall in the city
    located = locate_incidents(tiny_plan(layers), a)
    assert (located["grid_code"].notna() | (located["nearest_distance"] < 100)).all()
    assert located["inside"].mean() > 0.9


def test_locate_incidents_exact(layers):
    plan = tiny_plan(layers)
    pts = layers.communities.geometry.representative_point().to_crs(4326)
    lon, lat = from_wgs84(pts.x.to_numpy(), pts.y.to_numpy(), "gcj02")
    table = pd.DataFrame({"id": ["a", "b"], "lon": lon, "lat": lat, "crs": "gcj02"})
    out = locate_incidents(plan, table)
    assert out["grid_code"].tolist() == ["320104001001001", "320104001002001"]
    np.testing.assert_allclose(out["lon_wgs84"], pts.x, atol=1e-8)
    # the same coordinates read as WGS84 would be ~500 m off and land outside
    wrong = locate_incidents(plan, table, crs="wgs84")
    assert not wrong["inside"].any()


def test_locate_incidents_guards(layers):
    plan = tiny_plan(layers)
    with pytest.raises(LayerError, match="lack the column"):
        locate_incidents(plan, pd.DataFrame({"x": [1.0], "y": [2.0]}))
    mixed = pd.DataFrame({"lon": [120.0, 120.0], "lat": [32.0, 32.0], "crs": ["gcj02", "bd09"]})
    with pytest.raises(InputError, match="several CRSs"):
        locate_incidents(plan, mixed)
    with pytest.raises(InputError, match="n must be 0 or more"):
        synth_incidents(layers, n=-1)
