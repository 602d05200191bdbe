"""Cheap checks come before long work: an id clash stops ``gridmap import`` before validation."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from clirun import gridmap
from dbfactories import make_layers

from gridmap.db import Store, list_communities, save_layers
from gridmap.db.layers import check_community_ids
from gridmap.errors import LayerError
from gridmap.io import write_layers


def test_check_community_ids_names_the_clash_and_accepts_the_same_place(store: Store) -> None:
    stored = make_layers(nx=2, seed=1)
    save_layers(store, stored, author="t")
    check_community_ids(store, stored.communities)  # a re-import of the same places: fine
    moved = stored.communities.copy()
    moved["geometry"] = moved.geometry.translate(50_000, 0)  # same ids, 50 km away
    with pytest.raises(LayerError, match="already stored for another place: c0, c1"):
        check_community_ids(store, moved)
    no_crs = gpd.GeoDataFrame(moved.drop(columns="geometry"), geometry=moved.geometry.values)
    check_community_ids(store, no_crs.set_crs(None, allow_override=True))  # nothing to check yet


def test_import_refuses_a_clash_before_validating_the_buildings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with Store.from_url(url) as store:
        save_layers(store, make_layers(nx=2, seed=1), author="t")
        before = list_communities(store)
    other = make_layers(nx=2, seed=2, x0=450_000.0)  # same ids c0, c1, another city
    raw = {k: getattr(other, k) for k in ("communities", "buildings", "households")}
    broken = raw["buildings"].copy()
    broken.loc[3, "building_id"] = broken.loc[0, "building_id"]  # validation would refuse it
    raw["buildings"] = broken
    path = write_layers(raw, tmp_path / "other.gpkg")
    out = gridmap("import", path, "--db", url)
    assert out.returncode == 1
    message = " ".join((out.stdout + out.stderr).split())
    assert "already stored for another place: c0, c1" in message
    assert "did not pass validation" not in message  # the clash came first
    with Store.from_url(url) as store:
        assert list_communities(store).equals(before)  # nothing changed
