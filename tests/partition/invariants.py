"""Invariants every partition must satisfy; reusable by any test that makes a plan.

``assert_valid_plan(plan, layers, min=..., max=...)`` checks membership, band,
single polygons, a valid polygonal coverage, enclaves and exact tiling;
``assert_same_plan`` checks that two plans are identical (determinism).
Tiling is measured against the snapped communities
(:func:`gridmap.partition.precision.snap_layers`), which the grids tile exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from gridmap.partition.precision import snap_layers
from gridmap.partition.quality import area_tolerance

__all__ = ["assert_valid_plan", "assert_same_plan", "band_feasible"]

TILE_TOLERANCE = 1.0  # m² of gap or overlap allowed per community (the least; see below)


def band_feasible(total: int, lo: int, hi: int) -> bool:
    """Some number of grids k has k*lo <= total <= k*hi."""
    if total < lo:
        return False
    return any(k * lo <= total <= k * hi for k in range(1, total // max(lo, 1) + 2))


def assert_valid_plan(
    plan,
    layers,
    *,
    min: int,  # noqa: A002 - mirrors the band's name
    max: int,  # noqa: A002
    strict_band: bool = True,
    allow_enclaves: bool = False,
    tile_tolerance: float | None = None,
) -> None:
    grids = plan.grids
    codes = grids["grid_code"].astype(str)
    assert codes.is_unique, "grid codes must be unique"
    geoms = np.asarray(grids.geometry.array, dtype=object)
    # every grid one valid Polygon
    kinds = shapely.get_type_id(geoms)
    assert (kinds == 3).all(), f"not Polygons: {codes[kinds != 3].tolist()[:5]}"
    assert shapely.is_valid(geoms).all(), "invalid grid polygon"
    # grids form one valid polygonal coverage (shared edges vertex for vertex),
    # also in WGS84; locked grids keep their exact geometry, so they are left out
    free = ~grids["locked"].to_numpy(dtype=bool) if "locked" in grids else np.ones(len(geoms), bool)
    assert shapely.coverage_is_valid(geoms[free]), "grids are not a valid coverage"
    wgs = np.asarray(grids[free].to_crs(4326).geometry.array, dtype=object)
    assert shapely.coverage_is_valid(wgs), "grids are not a valid coverage in WGS84"
    # every building exactly once (parts only for buildings above max)
    b = plan.buildings
    lb = layers.buildings
    inside = lb[lb["community_id"].notna()]
    assert set(b["building_id"]) == set(inside["building_id"].astype(str)), "building missing"
    assert set(b["grid_code"]) <= set(codes), "building in unknown grid"
    parts = b.groupby("building_id")["grid_code"].nunique()
    hh = inside.set_index(inside["building_id"].astype(str))["households"]
    split = parts[parts > 1].index
    assert (hh.reindex(split) > max).all(), f"buildings split without need: {list(split)[:5]}"
    got = b.groupby("building_id")["households"].sum()
    assert (got.reindex(hh.index).to_numpy() == hh.to_numpy()).all(), "households lost"
    # households: each exactly once, in its building's grid
    if layers.households is not None and plan.households is not None:
        h = plan.households
        assert h["household_id"].is_unique
        assert len(h) == len(layers.households)
        assert h["grid_code"].notna().all()
        whole = b[b["part"].isna()].set_index("building_id")["grid_code"]
        hw = h[h["building_id"].isin(whole.index)]
        assert (hw["grid_code"].to_numpy() == whole.reindex(hw["building_id"]).to_numpy()).all()
    # grid households = sum of members
    per = b.groupby("grid_code")["households"].sum()
    assert (grids.set_index("grid_code")["households"] == per.reindex(codes).fillna(0)).all()
    # band where feasible; tiling is checked against the layers as the partitioner sees them,
    # every coordinate on its ~1 mm grid (gridmap.partition.precision), so that nothing but
    # the partitioner's own gaps and overlaps counts
    snapped = snap_layers(layers).communities
    comms = snapped.set_index(snapped["community_id"].astype(str))
    for cid, part in grids.groupby("community_id"):
        # dedicated grids (专属网格: offices, campuses, parks) are outside the band
        res = part[part["kind"] != "dedicated"] if "kind" in part.columns else part
        total = int(res["households"].sum())
        if strict_band and band_feasible(total, min, max):
            out = res[(res["households"] < min) | (res["households"] > max)]
            assert out.empty, f"{cid}: grids outside band {out['households'].tolist()}"
        # tiling: union equals community, no overlaps, grids within community
        cgeom = comms.geometry[cid]
        g = np.asarray(part.geometry.array, dtype=object)
        union = shapely.union_all(g)
        gap = shapely.area(shapely.difference(cgeom, union))
        overlap = shapely.area(g).sum() - shapely.area(union)
        outside = shapely.area(shapely.difference(union, cgeom))
        # what the millimetre grid alone leaves along the edge (as the report): 1 m² in a
        # town, ~6 m² round a village community of 12 km
        tol = tile_tolerance or area_tolerance(shapely.length(cgeom))  # at least TILE_TOLERANCE
        assert gap < tol, f"{cid}: gap {gap:.3f} m²"
        assert overlap < tol, f"{cid}: overlap {overlap:.3f} m²"
        assert outside < tol, f"{cid}: outside {outside:.3f} m²"
        # no enclave: no grid inside another's filled outline
        if not allow_enclaves and len(g) > 1:
            filled = shapely.polygons(shapely.get_exterior_ring(g))
            kinds = part["kind"].to_numpy() if "kind" in part.columns else ["residential"] * len(g)
            for i in range(len(g)):
                if kinds[i] == "dedicated":
                    continue  # a campus ringed by main roads may lie inside one grid
                for j in range(len(g)):
                    if i != j and shapely.area(shapely.difference(g[i], filled[j])) < 1e-3:
                        pytest_fail = f"{cid}: grid {i} enclosed by grid {j}"
                        raise AssertionError(pytest_fail)
    assert set(grids["community_id"]) <= set(comms.index)


def assert_same_plan(a, b) -> None:
    assert a.grids["grid_code"].tolist() == b.grids["grid_code"].tolist()
    assert a.grids["households"].tolist() == b.grids["households"].tolist()
    ga = np.asarray(a.grids.geometry.array, dtype=object)
    gb = np.asarray(b.grids.geometry.array, dtype=object)
    assert shapely.equals_exact(ga, gb, tolerance=1e-9).all()
    pd.testing.assert_frame_equal(
        a.buildings.reset_index(drop=True), b.buildings.reset_index(drop=True)
    )
