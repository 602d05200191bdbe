"""Storage benchmark: import a synthetic city and save a plan, on SQLite and PostGIS.

    python benchmarks/storage.py                      # 200 k buildings, both backends
    python benchmarks/storage.py --n-buildings 20000 --backends sqlite

For each backend it times ``Store.from_url`` (migrations), ``save_layers``,
``save_plan``, ``load_layers``, ``load_plan`` and ``locate_sql`` on 10 000
points, and reports the database size. Baselines written in the same run with
the same frames (in WGS84): a GeoPackage via ``GeoDataFrame.to_file`` (pyogrio)
and PostGIS tables via ``GeoDataFrame.to_postgis``.

The plan is *faked* (buildings grouped into 400 m square cells per community):
the benchmark measures storage, not the partitioner.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import sqlalchemy as sa

from gridmap.db import (
    Store,
    load_layers,
    load_plan,
    locate_sql,
    save_layers,
    save_plan,
)
from gridmap.layers import Layers
from gridmap.partition.plan import Plan, QualityReport

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_bench"


def make_city(n_buildings: int, seed: int, with_households: bool) -> tuple[Layers, str]:
    try:
        from gridmap.synth import synth_city
        from gridmap.validation import validate_layers

        raw = synth_city(n_buildings=n_buildings, seed=seed, with_households=with_households)
        if not with_households:
            raw.pop("households", None)
        layers, _ = validate_layers(raw)
        return layers, "gridmap.synth.synth_city + validate_layers"
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "db"))
        from dbfactories import make_layers

        side = 30
        n_comm = max(1, round(n_buildings / side**2))
        nx = int(np.ceil(np.sqrt(n_comm)))
        layers = make_layers(
            nx=nx, ny=int(np.ceil(n_comm / nx)), side=side, seed=seed, households=with_households
        )
        return layers, "tests/db/dbfactories.make_layers (fallback)"


def fake_plan(layers: Layers, cell: float = 400.0) -> Plan:
    """Group buildings into square cells per community (not a real partition)."""
    b = layers.buildings
    pts = shapely.point_on_surface(b.geometry.values)
    ix = np.floor(shapely.get_x(pts) / cell).astype(int)
    iy = np.floor(shapely.get_y(pts) / cell).astype(int)
    key = pd.DataFrame({"community_id": b["community_id"].to_numpy(), "ix": ix, "iy": iy})
    cells = key.drop_duplicates().sort_values(
        ["community_id", "iy", "ix"], ascending=[True, False, True]
    )
    cells = cells.reset_index(drop=True)
    comm = layers.communities.set_index("community_id")
    codes, geoms = [], []
    seq: dict[str, int] = {}
    for cid, x, y in cells.itertuples(index=False):
        seq[cid] = seq.get(cid, 0) + 1
        code = f"{comm.loc[cid, 'code'] or cid}{seq[cid]:03d}"
        box = shapely.box(x * cell, y * cell, (x + 1) * cell, (y + 1) * cell)
        codes.append(code)
        geoms.append(comm.loc[cid, "geometry"].intersection(box))
    cells["grid_code"] = codes
    member = key.merge(cells, on=["community_id", "ix", "iy"], how="left")["grid_code"].to_numpy()
    buildings = pd.DataFrame(
        {
            "building_id": b["building_id"].to_numpy(),
            "grid_code": member,
            "households": b["households"].to_numpy(),
            "part": pd.Series([None] * len(b), dtype=object),
        }
    )
    hh = b["households"].groupby(member).sum()
    grids = gpd.GeoDataFrame(
        {
            "grid_code": codes,
            "community_id": cells["community_id"].to_numpy(),
            "name": [f"网格{c[-3:]}" for c in codes],
            "households": hh.reindex(codes).fillna(0).astype(int).to_numpy(),
            "persons": np.nan,
            "n_buildings": pd.Series(member)
            .value_counts()
            .reindex(codes)
            .fillna(0)
            .astype(int)
            .to_numpy(),
            "boundary_desc": "东至某路, 南至某街, 西至某巷, 北至某河",
            "locked": False,
        },
        geometry=geoms,
        crs=layers.crs,
    )
    households = None
    if layers.households is not None:
        bmap = pd.Series(member, index=b["building_id"].to_numpy())
        households = pd.DataFrame(
            {
                "household_id": layers.households["household_id"].to_numpy(),
                "building_id": layers.households["building_id"].to_numpy(),
                "grid_code": bmap.reindex(layers.households["building_id"]).to_numpy(),
            }
        )
    report = QualityReport(
        grids=grids[["grid_code", "households"]].copy(),
        communities=pd.DataFrame({"community_id": layers.communities["community_id"]}),
        overall={"n_grids": len(grids)},
    )
    return Plan(grids, buildings, households, report, {"fake": True, "cell_m": cell}, layers.crs)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _pg_fresh(url: str) -> None:
    u = sa.make_url(url)
    eng = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{u.database}"')
    eng.dispose()


def _pg_size(url: str) -> float:
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
    eng.dispose()
    return size / 1e6


def _frames(layers: Layers, plan: Plan) -> dict[str, pd.DataFrame]:
    frames: dict[str, pd.DataFrame] = {n: f.to_crs(4326) for n, f in layers.items()}
    frames["grids"] = plan.grids.to_crs(4326)
    frames["plan_buildings"] = plan.buildings
    if plan.households is not None:
        frames["plan_households"] = plan.households
    return frames


def bench_store(name: str, url: str, layers: Layers, plan: Plan, size) -> list[dict]:
    rows = []
    t, store = _timed(lambda: Store.from_url(url))
    rows.append({"backend": name, "step": "create store (migrate)", "s": t})
    n_layer_rows = sum(len(f) for _, f in layers.items())
    t, _ = _timed(lambda: save_layers(store, layers, author="bench"))
    rows.append({"backend": name, "step": "save_layers", "s": t, "rows": n_layer_rows})
    n_plan_rows = (
        len(plan.grids)
        + len(plan.buildings)
        + (0 if plan.households is None else len(plan.households))
    )
    t, rec = _timed(lambda: save_plan(store, plan, author="bench"))
    rows.append({"backend": name, "step": "save_plan", "s": t, "rows": n_plan_rows})
    if store.backend == "sqlite":
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    rows.append({"backend": name, "step": "database size", "MB": size()})
    t, _ = _timed(lambda: load_layers(store))
    rows.append({"backend": name, "step": "load_layers", "s": t, "rows": n_layer_rows})
    t, _ = _timed(lambda: load_plan(store, rec.id))
    rows.append({"backend": name, "step": "load_plan", "s": t, "rows": n_plan_rows})
    rng = np.random.default_rng(0)
    b = plan.grids.to_crs(4326).total_bounds
    xs = rng.uniform(b[0], b[2], 10_000)
    ys = rng.uniform(b[1], b[3], 10_000)
    locate_sql(store, rec.id, xs[:10], ys[:10])  # warm (SQLite builds its STRtree here)
    t, _ = _timed(lambda: locate_sql(store, rec.id, xs, ys))
    rows.append({"backend": name, "step": "locate_sql 10k points", "s": t, "rows": 10_000})
    store.close()
    return rows


def bench_gpkg(path: Path, frames: dict[str, pd.DataFrame]) -> list[dict]:
    def write() -> None:
        for n, f in frames.items():
            if isinstance(f, gpd.GeoDataFrame):
                f.to_file(path, layer=n, engine="pyogrio")
            else:  # attribute-only table
                pyogrio.write_dataframe(f, path, layer=n, driver="GPKG")

    t, _ = _timed(write)
    n = sum(len(f) for f in frames.values())
    return [
        {"backend": "baseline gpkg", "step": "to_file (all frames)", "s": t, "rows": n},
        {"backend": "baseline gpkg", "step": "database size", "MB": path.stat().st_size / 1e6},
    ]


def bench_to_postgis(url: str, frames: dict[str, pd.DataFrame]) -> list[dict]:
    _pg_fresh(url)
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")

    def write() -> None:
        for n, f in frames.items():
            if isinstance(f, gpd.GeoDataFrame):
                f.to_postgis(n, eng, if_exists="replace", index=False, chunksize=50_000)
            else:
                f.to_sql(n, eng, if_exists="replace", index=False, chunksize=50_000)

    t, _ = _timed(write)
    eng.dispose()
    n = sum(len(f) for f in frames.values())
    return [
        {
            "backend": "baseline to_postgis",
            "step": "to_postgis/to_sql (all frames)",
            "s": t,
            "rows": n,
        },
        {"backend": "baseline to_postgis", "step": "database size", "MB": _pg_size(url)},
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-buildings", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-households", action="store_true")
    ap.add_argument("--backends", default="sqlite,postgis")
    ap.add_argument(
        "--postgis-url", default=os.environ.get("GRIDMAP_BENCH_POSTGIS_URL", PG_DEFAULT)
    )
    ap.add_argument("--no-baselines", action="store_true")
    args = ap.parse_args()

    t, (layers, source) = _timed(
        lambda: make_city(args.n_buildings, args.seed, not args.no_households)
    )
    plan = fake_plan(layers)
    print(f"city: {source}, {t:.1f} s to generate")
    print(
        "rows:",
        {n: len(f) for n, f in layers.items()},
        f"grids: {len(plan.grids)} (fake 400 m cells)",
    )
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = args.backends.split(",")
        if "sqlite" in backends:
            path = Path(tmp) / "gridmap.db"
            rows += bench_store(
                "gridmap sqlite",
                f"sqlite:///{path}",
                layers,
                plan,
                lambda: path.stat().st_size / 1e6,
            )
        if "postgis" in backends:
            _pg_fresh(args.postgis_url)
            rows += bench_store(
                "gridmap postgis",
                args.postgis_url,
                layers,
                plan,
                lambda: _pg_size(args.postgis_url),
            )
        if not args.no_baselines:
            frames = _frames(layers, plan)
            rows += bench_gpkg(Path(tmp) / "baseline.gpkg", frames)
            if "postgis" in backends:
                rows += bench_to_postgis(args.postgis_url + "_baseline", frames)
    table = pd.DataFrame(rows)
    if "rows" in table:
        table["rows/s"] = (table["rows"] / table["s"]).round(0)
    pd.set_option("display.width", 160)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))

    def total(backend: str, steps: tuple[str, ...]) -> float:
        sel = table[(table["backend"] == backend) & table["step"].isin(steps)]
        return float(sel["s"].sum())

    ours = ("save_layers", "save_plan")
    base_gpkg = total("baseline gpkg", ("to_file (all frames)",))
    base_pg = total("baseline to_postgis", ("to_postgis/to_sql (all frames)",))
    print()
    for be in ("gridmap sqlite", "gridmap postgis"):
        s = total(be, ours)
        if s > 0:
            msg = f"{be}: import + plan {s:.1f} s"
            if base_gpkg:
                msg += f"; vs GeoPackage write {base_gpkg:.1f} s → ratio {s / base_gpkg:.2f}"
            if base_pg:
                msg += f"; vs to_postgis {base_pg:.1f} s → ratio {s / base_pg:.2f}"
            print(msg)


if __name__ == "__main__":
    main()
