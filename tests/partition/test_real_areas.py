"""The partitioner on the real OpenStreetMap areas, with derived communities (issue 3).

Both extracts in ``../shared/data/real/`` (next to the checkout) are read with the ``osm``
preset; OpenStreetMap has no 社区 boundaries, so stand-in communities are derived from the
main roads, rivers and district borders (:func:`gridmap.areas.derive_communities`), and
households are estimated (levels × footprint / 90 m², residential buildings only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from invariants import assert_valid_plan, band_feasible

from gridmap.areas import DERIVED_ATTR, derive_communities
from gridmap.io import read_layers
from gridmap.partition import partition
from gridmap.validation import validate_layers

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
AREAS = {
    "nanjing": REAL / "nanjing-central" / "nanjing_central.gpkg",
    "shanghai": REAL / "shanghai-huangpu-lujiazui" / "shanghai_huangpu_lujiazui.gpkg",
}
MIN, MAX = 200, 500

pytestmark = pytest.mark.skipif(
    not REAL.is_dir(),
    reason=f"the shared OpenStreetMap extracts are not at {REAL} (../shared/data/real beside "
    "the checkout)",
)


@pytest.fixture(scope="module", params=sorted(AREAS))
def real(request):
    """(raw layers, derived communities, validated layers, report, plan) of one real area."""
    path = AREAS[request.param]
    if not path.exists():
        pytest.skip(f"{path} is missing")
    raw = read_layers(path, preset="osm")
    assert "communities" not in raw  # OpenStreetMap has no 社区 boundaries
    comms = derive_communities(raw)
    layers, report = validate_layers({**raw, "communities": comms})
    plan = partition(layers, min_households=MIN, max_households=MAX)
    return request.param, raw, comms, layers, report, plan


def test_derived_communities_are_valid_and_reported(real):
    name, raw, comms, layers, report, _ = real
    assert report.ok
    derived = [f for f in report.findings if f.code == "derived_communities"]
    assert len(derived) == 1 and derived[0].severity == "warning"
    assert "stand-ins" in derived[0].message
    assert comms["community_id"].str.fullmatch(r"D\d{3}").all()
    assert comms["code"].isna().all()
    assert (comms.geom_type == "Polygon").all()
    # every building is in a derived community (the default outline holds them all)
    assert len(layers.buildings) == len(raw["buildings"])
    assert layers.buildings["community_id"].notna().all()
    # the households validation counts per community are those the derivation used
    counted = layers.buildings.groupby("community_id")["households"].sum()
    assert (
        counted.reindex(comms["community_id"], fill_value=0).to_dict()
        == (comms.attrs[DERIVED_ATTR]["households"])
    )
    # no river or district border separates two parts of one community (a river or
    # border that ends inside a community, where the extract stops, separates nothing)
    barriers = raw["barriers"].to_crs(layers.crs)
    hard = barriers[barriers["kind"].isin(["river", "boundary"])]
    assert len(hard), f"{name}: the osm preset reads rivers / district borders as barriers"
    zone = shapely.buffer(shapely.union_all(hard.geometry.values), 0.5)
    for cid, geom in zip(
        layers.communities["community_id"], layers.communities.geometry, strict=True
    ):
        parts = shapely.get_parts(shapely.difference(geom, zone))
        assert (shapely.area(parts) > 1.0).sum() == 1, f"{name} {cid} spans a river/border"


def test_derivation_is_deterministic(real):
    _, raw, comms, *_ = real
    again = derive_communities(raw)
    assert again["community_id"].tolist() == comms["community_id"].tolist()
    assert again.attrs == comms.attrs
    assert shapely.equals_exact(again.geometry.values, comms.geometry.values, tolerance=0).all()


def test_plan_invariants(real):
    name, _, _, layers, _, plan = real
    assert_valid_plan(plan, layers, min=MIN, max=MAX)
    overall = plan.report.overall
    assert overall["n_multipart"] == 0 and overall["n_enclaves"] == 0
    assert (plan.grids.geom_type == "Polygon").all()


def test_every_grid_in_band_on_feasible_communities(real):
    name, _, _, _, _, plan = real
    grids = plan.grids[plan.grids["kind"] == "residential"]  # dedicated grids: outside the band
    totals = grids.groupby("community_id")["households"].sum()
    feasible = [c for c, t in totals.items() if band_feasible(int(t), MIN, MAX)]
    assert feasible, f"{name}: no community can be cut into {MIN}–{MAX} household grids"
    on = grids[grids["community_id"].isin(feasible)]["households"].to_numpy()
    share = float(np.mean((on >= MIN) & (on <= MAX)))
    assert share == 1.0, f"{name}: {share:.1%} of grids in band on feasible communities"
