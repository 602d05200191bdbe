"""Layers ↔ store: round trips, replacement by community, atomicity, guards (both backends)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
import shapely
import sqlalchemy as sa
from dbfactories import make_layers

from gridmap.db import (
    Store,
    list_audit,
    list_communities,
    list_imports,
    load_layers,
    save_layers,
)
from gridmap.db import bulk as bulk_mod
from gridmap.db.bulk import decode_geoms, geom_select
from gridmap.db.models import AdminUnit, Base
from gridmap.errors import CRSError, LayerError, NotFoundError


def snapshot(store: Store) -> dict[str, str]:
    """A digest of every table's content (geometry as WKB), to compare whole store states."""
    out = {}
    with store.engine.connect() as conn:
        for t in Base.metadata.sorted_tables:
            cols = [geom_select(c, store.backend) if c.name == "geom" else c for c in t.c]
            pk = list(t.primary_key.columns)
            rows = conn.execute(sa.select(*cols).order_by(*pk)).all()
            h = hashlib.sha1()
            for r in rows:
                h.update(
                    repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)).encode()
                )
            out[t.name] = f"{len(rows)}:{h.hexdigest()}"
    return out


def assert_layers_equal(a, b, *, tol_m: float = 0.01) -> None:
    assert a.crs.equals(b.crs)
    assert [n for n, _ in a.items()] == [n for n, _ in b.items()]
    for name, fa in a.items():
        fb = getattr(b, name)
        assert fb.geometry.name == fa.geometry.name
        pdt.assert_frame_equal(
            pd.DataFrame(fa.drop(columns=fa.geometry.name)).reset_index(drop=True),
            pd.DataFrame(fb.drop(columns=fb.geometry.name)),
        )
        d = shapely.hausdorff_distance(fa.geometry.values, fb.geometry.values)
        assert float(np.max(d)) < tol_m, name


def test_roundtrip_identical(store: Store) -> None:
    layers = make_layers(nx=2, ny=2)
    rec = save_layers(store, layers, author="planner")
    assert rec.counts["buildings"] == 144
    assert rec.counts["households"] == len(layers.households)
    assert rec.crs == "EPSG:4549"
    back = load_layers(store)
    assert_layers_equal(layers, back)
    # extra columns survive (kept as JSON)
    assert back.roads["lanes"].tolist() == [2, 3, 4, 5, 6, 7]


def test_stored_in_wgs84(store: Store) -> None:
    layers = make_layers()
    save_layers(store, layers, author="planner")
    t = Base.metadata.tables["buildings"]
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.building_id, geom_select(t.c.geom, store.backend)).order_by(t.c.seq)
        ).all()
    stored = decode_geoms([r[1] for r in rows])
    expected = layers.buildings.geometry.to_crs(4326).values
    assert float(np.max(shapely.hausdorff_distance(stored, expected))) < 1e-7
    x0, y0, _, _ = shapely.total_bounds(stored)
    assert 118.7 < x0 < 118.9 and 32.0 < y0 < 32.1


def test_load_subset_and_crs(store: Store) -> None:
    layers = make_layers(nx=3)
    save_layers(store, layers, author="planner")
    sub = load_layers(store, ["c1"])
    assert sub.communities["community_id"].tolist() == ["c1"]
    assert set(sub.buildings["community_id"]) == {"c1"}
    assert len(sub.buildings) == 36
    expected_hh = layers.households[layers.households["building_id"].str.startswith("c1-")]
    assert sub.households["household_id"].tolist() == expected_hh["household_id"].tolist()
    # context lines near c1 come along: the verticals at x=600 and 1200 and the horizontals
    assert len(sub.roads) == 4
    reprojected = load_layers(store, ["c1"], crs=32650)
    assert reprojected.crs.to_epsg() == 32650


def test_reimport_replaces_only_its_communities(store: Store) -> None:
    a = make_layers(nx=2, seed=1)
    b = make_layers(nx=1, prefix="far", y0=3_560_000.0, seed=2)
    save_layers(store, a, author="a")
    save_layers(store, b, author="b")
    # re-import community c0 alone, with fewer buildings and new household counts
    c0 = a.subset(["c0"])
    keep = c0.buildings.iloc[:10].reset_index(drop=True)
    keep["households"] = 7
    hh = c0.households[c0.households["building_id"].isin(set(keep["building_id"]))]
    hh = hh.groupby("building_id").head(7).reset_index(drop=True)
    staff = a.staff[a.staff["home_building_id"].isin(set(keep["building_id"]))]
    new = c0.replace(buildings=keep, households=hh, staff=staff.reset_index(drop=True))
    rec = save_layers(store, new, author="a2")
    assert rec.replaced["buildings"] == 36
    back = load_layers(store)
    counts = back.buildings.groupby("community_id").size().to_dict()
    assert counts == {"c0": 10, "c1": 36, "farc0": 36}
    assert back.buildings.loc[back.buildings["community_id"] == "c0", "households"].eq(7).all()
    assert_layers_equal(load_layers(store, ["farc0"]).replace(roads=None), b.replace(roads=None))
    only_c1 = load_layers(store, ["c1"])
    pdt.assert_frame_equal(
        pd.DataFrame(only_c1.buildings.drop(columns="geometry")),
        pd.DataFrame(a.subset(["c1"]).buildings.drop(columns="geometry")),
    )
    assert list_imports(store)["author"].tolist() == ["a", "b", "a2"]
    lc = list_communities(store)
    assert dict(zip(lc["community_id"], lc["n_buildings"], strict=True)) == {
        "c0": 10,
        "c1": 36,
        "farc0": 36,
    }
    audit = list_audit(store, entity="import")
    assert audit["action"].tolist() == ["import"] * 3
    assert audit["after"].iloc[2]["counts"]["buildings"] == 10


def test_same_community_id_for_another_place_is_refused_and_changes_nothing(
    store: Store,
) -> None:
    # two data sets both calling their first community c0 (as derived areas D001 of two
    # cities would): replacing would drop the first city's c0 and its buildings
    a = make_layers(nx=2, seed=1)
    save_layers(store, a, author="a")
    elsewhere = make_layers(nx=1, y0=3_560_000.0, seed=2)
    with pytest.raises(LayerError, match=r"stored for another place: c0 .*--derived-prefix"):
        save_layers(store, elsewhere, author="b")
    assert_layers_equal(load_layers(store).replace(roads=None), a.replace(roads=None))
    assert list_imports(store)["author"].tolist() == ["a"]
    # the same place with corrected boundaries is a re-import, as before
    moved = a.subset(["c0"])
    comms = moved.communities.copy()
    comms["geometry"] = comms.geometry.buffer(5.0, join_style="mitre")
    staff = a.staff[a.staff["home_building_id"].isin(set(moved.buildings["building_id"]))]
    moved = moved.replace(communities=comms, staff=staff.reset_index(drop=True))
    rec = save_layers(store, moved, author="a2")
    assert rec.replaced["communities"] == 1


def test_failure_midway_keeps_previous_state(store: Store, monkeypatch) -> None:
    save_layers(store, make_layers(seed=1), author="a")
    before = snapshot(store)
    # a building id already stored for c1, in an import that only holds a new community
    other = make_layers(nx=1, prefix="z", x0=390_000.0)
    blds = other.buildings.copy()
    blds.loc[5, "building_id"] = "c1-b3"
    with pytest.raises(LayerError, match="already stored for a community the import does not"):
        save_layers(store, other.replace(households=None, staff=None, buildings=blds), author="z")
    assert snapshot(store) == before
    # a crash in the middle of the households, after communities and buildings were replaced
    calls = {"n": 0}
    real = bulk_mod.bulk_insert

    def crashing(session, table, *args, **kwargs):
        calls["n"] += 1
        if table.name == "households":
            raise RuntimeError("disk on fire")
        return real(session, table, *args, **kwargs)

    monkeypatch.setattr("gridmap.db.layers.bulk_insert", crashing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_layers(store, make_layers(seed=9), author="b")
    assert calls["n"] == 3
    assert snapshot(store) == before


def test_admin_units(store: Store) -> None:
    layers = make_layers(nx=3, ny=2)  # 6 communities in 2 streets, 1 district
    save_layers(store, layers, author="a")
    t = AdminUnit.__table__
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.level, t.c.code, t.c.name, t.c.parent_code, t.c.geom).order_by(t.c.id)
        ).all()
    assert [(r.level, r.code, r.name, r.parent_code) for r in rows] == [
        ("district", "320104", "秦淮区", None),
        ("street", "320104001", "街道0", "320104"),
        ("street", "320104002", "街道1", "320104"),
    ]
    district = shapely.union_all(layers.communities.to_crs(4326).geometry.values)
    assert rows[0].geom.symmetric_difference(district).area < 1e-12


def test_guards(store: Store) -> None:
    with pytest.raises(NotFoundError, match="holds no layers yet"):
        load_layers(store)
    layers = make_layers()
    save_layers(store, layers, author="a")
    with pytest.raises(NotFoundError, match="unknown community id.*nope"):
        load_layers(store, ["c0", "nope"])
    with pytest.raises(CRSError, match="not a projected CRS"):
        save_layers(store, layers.to_crs(4326), author="a")
    dup = layers.buildings.copy()
    dup.loc[1, "building_id"] = dup.loc[0, "building_id"]
    with pytest.raises(LayerError, match="duplicate ids"):
        save_layers(store, layers.replace(buildings=dup), author="a")


def test_progress_and_session_transaction(store: Store) -> None:
    layers = make_layers()
    seen: list[tuple[int, int]] = []
    with store.session() as s:
        save_layers(s, layers, author="a", progress=lambda d, t: seen.append((d, t)), chunk_size=50)
        # same transaction: visible inside, then rolled back by the error below
        assert load_layers(s).buildings.shape[0] == 72
    total = sum(len(f) for _, f in layers.items())
    assert seen[-1] == (total, total)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    with pytest.raises(ZeroDivisionError):
        with store.session() as s:
            save_layers(s, make_layers(prefix="q"), author="a")
            1 / 0  # noqa: B018
    assert sorted(list_communities(store)["community_id"]) == ["c0", "c1"]
