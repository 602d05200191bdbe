"""Layers in the store: import (replace by community) and load.

An import is keyed by the communities it contains: :func:`save_layers` deletes
every stored row of those communities (buildings, households, staff, and the
context lines and compounds attached to them) and writes the new rows, all in
one transaction. Other communities are untouched. Geometries are stored in
WGS84; :func:`load_layers` returns them in the projected CRS of the import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.crs import transform_geometries
from gridmap.db.audit import write_audit
from gridmap.db.bulk import (
    bulk_insert,
    column_values,
    decode_geoms,
    encode_geoms,
    extras_json,
    frame_schema,
    geom_select,
    in_chunks,
    restore_dtypes,
    rows_frame,
)
from gridmap.db.models import LAYER_TABLES, AdminUnit, Import, table, utcnow
from gridmap.db.session import Store, transaction
from gridmap.errors import CRSError, LayerError, NotFoundError
from gridmap.layers import ID_COLUMNS, LAYER_NAMES, Layers

__all__ = [
    "ImportRecord",
    "save_layers",
    "load_layers",
    "list_communities",
    "list_imports",
    "check_community_ids",
]

_log = logging.getLogger(__name__)

#: frame column → (database column, Python kind) of every canonical column.
_NATIVE: dict[str, dict[str, tuple[str, type]]] = {
    "communities": {
        "community_id": ("community_id", str),
        "name": ("name", str),
        "code": ("code", str),
        "street": ("street", str),
        "street_code": ("street_code", str),
        "district": ("district", str),
        "district_code": ("district_code", str),
    },
    "buildings": {
        "building_id": ("building_id", str),
        "community_id": ("community_id", str),
        "households": ("households", int),
        "households_estimated": ("households_estimated", bool),
        "levels": ("levels", float),
        "use": ("use", str),
        "name": ("name", str),
        "compound_id": ("compound_id", str),
    },
    "households": {
        "household_id": ("household_id", str),
        "building_id": ("building_id", str),
        "unit": ("unit", str),
        "floor": ("floor", float),
        "persons": ("persons", float),
        "elderly_living_alone": ("elderly_living_alone", bool),
        "disabled": ("disabled", bool),
        "on_assistance": ("on_assistance", bool),
        "floating_population": ("floating_population", bool),
        "unemployed": ("unemployed", bool),
    },
    "roads": {"name": ("name", str), "class": ("class", str)},
    "barriers": {"kind": ("kind", str)},
    "compounds": {"compound_id": ("compound_id", str), "name": ("name", str)},
    "staff": {
        "staff_id": ("staff_id", str),
        "name": ("name", str),
        "phone": ("phone", str),
        "home_building_id": ("home_building_id", str),
        "can_be_chief": ("can_be_chief", bool),
        "max_posts": ("max_posts", int),
        "current_grid": ("current_grid", str),
        "current_role": ("current_role", str),
    },
}

#: Layers loaded whole around the selected communities (context for boundaries).
_CONTEXT = ("roads", "barriers", "compounds")
#: Margin around the selected communities when loading context layers (degrees, ~200 m).
_CONTEXT_MARGIN_DEG = 0.002


@dataclass(frozen=True)
class ImportRecord:
    """What one :func:`save_layers` call stored.

    Attributes
    ----------
    id : int
        Import id.
    author : str
        Who imported.
    created_at : datetime
        When.
    crs : str
        Projected CRS of the imported layers (``"EPSG:4549"`` or WKT).
    community_ids : tuple of str
        Communities replaced by this import.
    counts : dict
        Rows written per layer.
    replaced : dict
        Rows deleted per layer (the previous state of those communities).
    """

    id: int
    author: str
    created_at: datetime
    crs: str
    community_ids: tuple[str, ...]
    counts: dict[str, int]
    replaced: dict[str, int] = field(default_factory=dict)


def _crs_text(crs: pyproj.CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def _check(layers: Layers) -> None:
    if not isinstance(layers, Layers):
        raise LayerError(
            f"save_layers needs a validated gridmap.layers.Layers, got {type(layers).__name__}; "
            "run gridmap.validation.validate_layers(raw) first"
        )
    crs = pyproj.CRS.from_user_input(layers.crs)
    if not crs.is_projected:
        raise CRSError(
            f"layers are in {crs.name}, not a projected CRS; validate them with "
            "validate_layers(raw) or reproject with layers.to_crs(<local projected CRS>)"
        )
    if len(layers.communities) == 0:
        raise LayerError("communities is empty; an import is keyed by its communities")
    for name, frame in layers.items():
        if frame.crs is None or not pyproj.CRS.from_user_input(frame.crs).equals(crs):
            raise CRSError(
                f"layer {name!r} is in {frame.crs!r}, not in layers.crs ({crs.name}); "
                "reproject it with layers.to_crs(layers.crs)"
            )
        idc = ID_COLUMNS.get(name)
        if idc is not None and idc in frame.columns and name != "compounds":
            ids = frame[idc]
            if ids.isna().any():
                raise LayerError(f"{name}.{idc} has {int(ids.isna().sum())} empty ids; fill them")
            dup = ids[ids.duplicated()]
            if len(dup):
                raise LayerError(
                    f"{name}.{idc} has duplicate ids ({', '.join(map(str, dup.unique()[:5]))}); "
                    "make them unique before importing"
                )


def _owner(frame: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> np.ndarray:
    """Community id owning each row: containing its representative point, else the nearest."""
    out = np.full(len(frame), None, dtype=object)
    geoms = frame.geometry.values
    has = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not has.any():
        return out
    pts = shapely.point_on_surface(geoms[has])
    tree = shapely.STRtree(communities.geometry.values)
    idx_pt, idx_c = tree.query_nearest(pts, all_matches=True)
    first = pd.Series(idx_c).groupby(idx_pt).min()  # ties: the first community
    ids = communities["community_id"].to_numpy(dtype=object)
    sel = np.flatnonzero(has)
    out[sel[first.index.to_numpy()]] = ids[first.to_numpy()]
    return out


def _areas(layers: Layers) -> dict[str, np.ndarray]:
    comms = layers.communities
    cids = set(comms["community_id"])
    areas: dict[str, np.ndarray] = {"communities": comms["community_id"].to_numpy(dtype=object)}
    b = layers.buildings
    barea = np.asarray(column_values(b, "community_id"), dtype=object)
    bad = np.array([a is None or a not in cids for a in barea], dtype=bool)
    if bad.any():
        barea[bad] = _owner(b[bad], comms)
    areas["buildings"] = barea
    by_building = dict(zip(b["building_id"], barea, strict=True))
    if layers.households is not None:
        h = layers.households
        harea = np.array([by_building.get(x) for x in column_values(h, "building_id")], object)
        missing = np.array([a is None for a in harea], dtype=bool)
        if missing.any():
            harea[missing] = _owner(h[missing], comms)
        if any(a is None for a in harea):
            raise LayerError(
                "some households have neither a known building_id nor a location; "
                "validate the layers with gridmap.validation.validate_layers"
            )
        areas["households"] = harea
    if layers.staff is not None:
        st = layers.staff
        sarea = np.array(
            [by_building.get(x) for x in column_values(st, "home_building_id")], object
        )
        missing = np.array([a is None for a in sarea], dtype=bool)
        if missing.any():
            sarea[missing] = _owner(st[missing], comms)
        if any(a is None for a in sarea):
            raise LayerError(
                "some staff have neither a known home_building_id nor a home location; "
                "give each one of them"
            )
        areas["staff"] = sarea
    for name in _CONTEXT:
        frame = getattr(layers, name)
        if frame is not None:
            areas[name] = _owner(frame, comms)
    return areas


def _layer_rows(
    name: str,
    frame: gpd.GeoDataFrame,
    area: np.ndarray,
    import_id: int,
    backend: str,
) -> tuple[list[str], Iterator[tuple[Any, ...]], list[str]]:
    """Database columns and rows (streamed: millions of households need no row list)."""
    native = _NATIVE[name]
    gcol = frame.geometry.name
    extras = [c for c in frame.columns if c not in native and c != gcol]
    cols: list[str] = []
    values: list[list[Any]] = []
    for fcol, (dbcol, kind) in native.items():
        cols.append(dbcol)
        values.append(column_values(frame, fcol, kind))
    n = len(frame)
    if name != "communities":
        cols.append("area_id")
        values.append(area.tolist())
    cols += ["import_id", "seq", "attrs", "geom"]
    values += [
        [import_id] * n,
        list(range(n)),
        extras_json(frame, extras),
        encode_geoms(frame.geometry.to_crs(4326).values, backend),
    ]
    return cols, zip(*values, strict=True), extras


def check_community_ids(target: Store | Session, communities: gpd.GeoDataFrame) -> None:
    """Refuse, before any long work, communities whose ids the store holds for another place.

    The same check :func:`save_layers` makes, on the communities alone (read only), so
    that an import can stop at once instead of after validating every building.
    ``communities`` needs ``community_id``, polygons and a CRS; without them there is
    nothing to check yet (validation will say what is missing).

    Raises
    ------
    LayerError
        Some ids are stored for polygons that hardly overlap the given ones.

    Examples
    --------
    >>> from shapely import box
    >>> store = Store.from_url("sqlite://")
    >>> check_community_ids(store, gpd.GeoDataFrame(
    ...     {"community_id": ["C1"]}, geometry=[box(118.7, 32.0, 118.71, 32.01)], crs=4326))
    """
    if "community_id" not in communities.columns or communities.crs is None or not len(communities):
        return
    frame = communities[communities.geometry.notna() & communities["community_id"].notna()]
    with transaction(target) as s:
        _check_same_places(s, frame)


def _check_same_places(s: Session, communities: gpd.GeoDataFrame) -> None:
    """Refuse to replace a stored community by one of the same id somewhere else.

    Re-importing a community (corrected boundaries, new buildings) replaces it;
    but the same id for a polygon that does not overlap the stored one is a
    clash between two data sets (``D001`` derived for two cities), and replacing
    would silently drop the first one's buildings.
    """
    t = table(LAYER_TABLES["communities"])
    backend = s.get_bind().dialect.name
    ids = [str(c) for c in communities["community_id"]]
    stored: dict[str, Any] = {}
    for chunk in in_chunks(ids):
        rows = s.execute(
            sa.select(t.c.community_id, geom_select(t.c.geom, backend)).where(
                t.c.community_id.in_(chunk)
            )
        ).all()
        geoms = decode_geoms([r[1] for r in rows])
        stored.update(zip((str(r[0]) for r in rows), geoms, strict=True))
    if not stored:
        return
    new = communities.to_crs(4326)
    clash = []
    for cid, geom in zip(new["community_id"].astype(str), new.geometry, strict=True):
        old = stored.get(cid)
        if old is None or geom is None or shapely.is_empty(old):
            continue
        smaller = min(old.area, geom.area)
        if smaller > 0 and shapely.intersection(old, geom).area < 0.1 * smaller:
            clash.append(cid)
    if clash:
        raise LayerError(
            f"{len(clash)} community id(s) are already stored for another place: "
            f"{', '.join(clash[:10])} (the stored polygon and the imported one hardly "
            "overlap). Importing would replace those communities and drop their buildings. "
            "Community ids must be unique across imports: give these communities other ids "
            "(for areas derived from OpenStreetMap, `--derived-prefix`), or, if the stored "
            "ones are obsolete, re-import them corrected"
        )


def _delete_areas(s: Session, ids: Sequence[str]) -> dict[str, int]:
    deleted: dict[str, int] = {}
    order = ("households", "staff", "buildings", "roads", "barriers", "compounds")
    for name in order:
        t = table(LAYER_TABLES[name])
        n = 0
        for chunk in in_chunks(list(ids)):
            n += s.execute(sa.delete(t).where(t.c.area_id.in_(chunk))).rowcount or 0  # type: ignore[attr-defined]
        deleted[name] = n
    t = table(LAYER_TABLES["communities"])
    n = 0
    for chunk in in_chunks(list(ids)):
        n += s.execute(sa.delete(t).where(t.c.community_id.in_(chunk))).rowcount or 0  # type: ignore[attr-defined]
    deleted["communities"] = n
    return deleted


def _update_admin_units(s: Session, communities: gpd.GeoDataFrame) -> None:
    """Upsert districts and sub-districts touched by an import, with unioned outlines."""
    ct = table(LAYER_TABLES["communities"])
    at = table(AdminUnit)
    backend = s.get_bind().dialect.name
    for level, code_col, name_col, parent_col in (
        ("district", "district_code", "district", None),
        ("street", "street_code", "street", "district_code"),
    ):
        if code_col not in communities.columns:
            continue
        codes = sorted({c for c in column_values(communities, code_col, str) if c})
        for code in codes:
            rows = s.execute(
                sa.select(ct.c[name_col], geom_select(ct.c.geom, backend)).where(
                    ct.c[code_col] == code
                )
            ).all()
            geom = shapely.union_all(decode_geoms([r[1] for r in rows])) if rows else None
            name = next((r[0] for r in rows if r[0]), None)
            parent = None
            if parent_col is not None:
                sel = communities[communities[code_col] == code]
                parent = next((p for p in column_values(sel, parent_col, str) if p), None)
            s.execute(sa.delete(at).where(at.c.level == level, at.c.code == code))
            s.execute(
                at.insert().values(level=level, code=code, name=name, parent_code=parent, geom=geom)
            )


def save_layers(
    target: Store | Session,
    layers: Layers,
    *,
    author: str,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = 20_000,
) -> ImportRecord:
    """Store validated layers, replacing everything stored for their communities.

    One transaction: the rows of the imported communities are deleted and the
    new rows written; on any failure (or a killed process) the store keeps its
    previous state exactly. Geometries are stored in WGS84; the projected CRS
    of ``layers`` is recorded so that :func:`load_layers` returns the same
    coordinates. Columns beyond the canonical ones are kept (as JSON).

    Parameters
    ----------
    target : Store or Session
        The store (one new transaction) or a session (the caller's transaction).
    layers : gridmap.layers.Layers
        Validated layers in a projected CRS.
    author : str
        Who imports (written to the audit log).
    progress : callable, optional
        ``progress(rows_done, rows_total)`` after each batch.
    chunk_size : int
        Rows per batch.

    Returns
    -------
    ImportRecord

    Raises
    ------
    LayerError
        Duplicate ids in the input, or a building/household/staff id already
        stored for a community this import does not contain.
    CRSError
        Layers not in one projected CRS.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> comms = gpd.GeoDataFrame({"community_id": ["c1"]},
    ...     geometry=[shapely.box(5e5, 3.5e6, 5e5 + 500, 3.5e6 + 500)], crs=4549)
    >>> blds = gpd.GeoDataFrame({"building_id": ["b1"], "community_id": ["c1"],
    ...     "households": [40]}, geometry=[shapely.box(5e5 + 10, 3.5e6 + 10,
    ...     5e5 + 40, 3.5e6 + 30)], crs=4549)
    >>> store = Store.from_url("sqlite://")
    >>> rec = save_layers(store, Layers(comms, blds, crs=comms.crs), author="li")
    >>> rec.counts
    {'communities': 1, 'buildings': 1}
    >>> load_layers(store).buildings.geometry.iloc[0].bounds  # doctest: +NUMBER
    (500010.0, 3500010.0, 500040.0, 3500030.0)
    """
    _check(layers)
    crs = pyproj.CRS.from_user_input(layers.crs)
    present = layers.items()
    ids = [str(c) for c in layers.communities["community_id"]]
    areas = _areas(layers)
    total = sum(len(f) for _, f in present)
    done = 0
    counts = {name: len(frame) for name, frame in present}
    schema = {name: frame_schema(frame) for name, frame in present}
    schema["_geometry"] = {name: frame.geometry.name for name, frame in present}  # type: ignore[assignment]
    with transaction(target, write=True) as s:
        backend = s.get_bind().dialect.name
        now = utcnow()
        import_id = s.execute(
            table(Import)
            .insert()
            .values(
                author=author,
                created_at=now,
                crs=_crs_text(crs),
                community_ids=ids,
                schema=schema,
                counts=counts,
            )
            .returning(table(Import).c.id)
        ).scalar_one()
        _check_same_places(s, layers.communities)
        replaced = _delete_areas(s, ids)
        for name, frame in present:
            cols, rows, _ = _layer_rows(name, frame, areas[name], import_id, backend)
            base = done

            def _tick(n: int, base: int = base) -> None:
                if progress is not None:
                    progress(base + n, total)

            try:
                bulk_insert(
                    s,
                    table(LAYER_TABLES[name]),
                    cols,
                    rows,
                    chunk_size=chunk_size,
                    progress=_tick,
                )
            except sa.exc.IntegrityError as exc:
                raise LayerError(
                    f"cannot store {name}: {str(exc.orig).splitlines()[0]}. An id in this import "
                    "is already stored for a community the import does not contain; include "
                    "that community in the import or give the row a new id"
                ) from exc
            except Exception as exc:  # psycopg raises UniqueViolation from COPY directly
                if type(exc).__name__ in ("UniqueViolation", "ForeignKeyViolation"):
                    raise LayerError(
                        f"cannot store {name}: {str(exc).splitlines()[0]}. An id in this import "
                        "is already stored for a community the import does not contain; include "
                        "that community in the import or give the row a new id"
                    ) from exc
                raise
            done += len(frame)
        _update_admin_units(s, layers.communities)
        write_audit(
            s,
            actor=author,
            action="import",
            entity="import",
            entity_id=import_id,
            before={"replaced": replaced},
            after={"community_ids": ids, "counts": counts, "crs": _crs_text(crs)},
        )
    _log.info("import %s: %s rows in %d communities", import_id, total, len(ids))
    return ImportRecord(
        id=int(import_id),
        author=author,
        created_at=now,
        crs=_crs_text(crs),
        community_ids=tuple(ids),
        counts=counts,
        replaced=replaced,
    )


def _select_layer(
    s: Session, name: str, ids: list[str] | None, envelope: tuple[float, ...] | None
) -> pd.DataFrame:
    t = table(LAYER_TABLES[name])
    backend = s.get_bind().dialect.name
    cols = [c for c in t.c if c.name not in ("geom",)]
    q = sa.select(*cols, geom_select(t.c.geom, backend))
    key = t.c.community_id if name == "communities" else t.c.area_id
    frames = []
    if ids is None:
        frames.append(rows_frame(s.execute(q).all(), [*[c.name for c in cols], "geom"]))
    else:
        for chunk in in_chunks(ids):
            cond: sa.ColumnElement[bool] = key.in_(chunk)
            if envelope is not None and backend == "postgresql" and name in _CONTEXT:
                cond = sa.or_(cond, t.c.geom.op("&&")(sa.func.ST_MakeEnvelope(*envelope, 4326)))
            rows = s.execute(q.where(cond)).all()
            frames.append(rows_frame(rows, [*[c.name for c in cols], "geom"]))
        if envelope is not None and backend != "postgresql" and name in _CONTEXT:
            rows = s.execute(q).all()  # SQLite: filter the (small) context layers in shapely
            frames.append(rows_frame(rows, [*[c.name for c in cols], "geom"]))
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    pk = "id" if "id" in df.columns else ID_COLUMNS.get(name, "id")
    if len(frames) > 1:
        df = df.drop_duplicates(subset=[pk])
    if len(df) and envelope is not None and name in _CONTEXT:
        g = decode_geoms(df["geom"].tolist())
        keep = df["area_id"].isin(ids or []) | shapely.intersects(g, shapely.box(*envelope))
        df = df[np.asarray(keep)]
    return df.sort_values(["import_id", "seq"], kind="stable").reset_index(drop=True)


def _to_frame(
    name: str, df: pd.DataFrame, schema: list[list[str]], gname: str, crs: pyproj.CRS
) -> gpd.GeoDataFrame:
    native = _NATIVE[name]
    data: dict[str, Any] = {fcol: df[dbcol] for fcol, (dbcol, _) in native.items()}
    wanted = [c for c, _ in schema]
    extras = [c for c in wanted if c not in native and c != gname]
    if extras:
        attrs = [a if isinstance(a, dict) else {} for a in df["attrs"]]
        for c in extras:
            data[c] = pd.Series([a.get(c) for a in attrs], dtype=object)
    frame = pd.DataFrame({k: pd.Series(v).reset_index(drop=True) for k, v in data.items()})
    frame = restore_dtypes(frame, [[c, t] for c, t in schema if c != gname])
    frame[gname] = transform_geometries(decode_geoms(df["geom"].tolist()), 4326, crs)
    order = wanted if gname in wanted else [*wanted, gname]
    return gpd.GeoDataFrame(frame[order], geometry=gname, crs=crs)


def _merged_schema(imports: list[Any], name: str) -> tuple[list[list[str]], str] | None:
    merged: list[list[str]] = []
    seen: set[str] = set()
    gname = "geometry"
    found = False
    for imp in imports:  # newest last: its dtypes win
        sch = imp.schema.get(name)
        if sch is None:
            continue
        found = True
        gname = imp.schema.get("_geometry", {}).get(name, gname)
        for c, t in sch:
            if c in seen:
                merged = [[cc, t if cc == c else tt] for cc, tt in merged]
            else:
                merged.append([c, t])
                seen.add(c)
    return (merged, gname) if found else None


def load_layers(
    target: Store | Session,
    community_ids: Sequence[str] | None = None,
    *,
    crs: Any = None,
) -> Layers:
    """Load stored layers, reprojected to the projected CRS they were imported in.

    Parameters
    ----------
    target : Store or Session
        The store.
    community_ids : sequence of str, optional
        Load only these communities (their buildings, households and staff,
        and the roads, barriers and compounds within ~200 m of them); all by default.
    crs : optional
        Target projected CRS. By default the CRS of the import(s); when the
        communities come from imports in different CRSs, a local CRS for their
        extent (:func:`gridmap.crs.local_crs`) or else the newest import's CRS.

    Returns
    -------
    gridmap.layers.Layers

    Raises
    ------
    NotFoundError
        The store holds no layers, or an id in ``community_ids`` is unknown.

    Examples
    --------
    >>> load_layers(Store.from_url("sqlite://"))
    Traceback (most recent call last):
    ...
    gridmap.errors.NotFoundError: the store holds no layers yet; import some ...
    """
    ct = table(LAYER_TABLES["communities"])
    it = table(Import)
    ids = None if community_ids is None else [str(c) for c in community_ids]
    with transaction(target) as s:
        backend = s.get_bind().dialect.name
        if ids is None:
            imp_ids = s.execute(sa.select(ct.c.import_id).distinct()).scalars().all()
            if not imp_ids:
                raise NotFoundError(
                    "the store holds no layers yet; import some with save_layers(store, layers, "
                    "author=...) or `gridmap import`"
                )
        else:
            found: dict[str, int] = {}
            for chunk in in_chunks(ids):
                q = sa.select(ct.c.community_id, ct.c.import_id).where(ct.c.community_id.in_(chunk))
                found.update({r[0]: r[1] for r in s.execute(q)})
            unknown = [c for c in ids if c not in found]
            if unknown:
                raise NotFoundError(
                    f"unknown community id(s): {', '.join(unknown[:10])}; list the stored ones "
                    "with gridmap.db.list_communities(store)"
                )
            imp_ids = sorted(set(found.values()))
        imports = s.execute(sa.select(it).where(it.c.id.in_(imp_ids)).order_by(it.c.id)).all()
        envelope = None
        frames: dict[str, pd.DataFrame] = {}
        frames["communities"] = _select_layer(s, "communities", ids, None)
        if ids is not None:
            g = decode_geoms(frames["communities"]["geom"].tolist())
            x0, y0, x1, y1 = shapely.total_bounds(g)
            m = _CONTEXT_MARGIN_DEG
            envelope = (x0 - m, y0 - m, x1 + m, y1 + m)
        for name in LAYER_NAMES[1:]:
            if _merged_schema(list(imports), name) is not None:
                frames[name] = _select_layer(s, name, ids, envelope)
    target_crs = _choose_crs(crs, imports, frames["communities"])
    out: dict[str, Any] = {}
    for name, df in frames.items():
        merged = _merged_schema(list(imports), name)
        if merged is None:
            continue
        schema, gname = merged
        out[name] = _to_frame(name, df, schema, gname, target_crs)
    del backend
    return Layers(crs=target_crs, **out)


def _choose_crs(crs: Any, imports: Sequence[Any], communities: pd.DataFrame) -> pyproj.CRS:
    if crs is not None:
        return pyproj.CRS.from_user_input(crs)
    texts = {imp.crs for imp in imports}
    if len(texts) == 1:
        return pyproj.CRS.from_user_input(next(iter(texts)))
    try:
        from gridmap.crs import local_crs  # written in parallel; optional here

        g = decode_geoms(communities["geom"].tolist())
        return pyproj.CRS.from_user_input(local_crs(tuple(shapely.total_bounds(g))))
    except (ImportError, AttributeError, TypeError, ValueError):
        return pyproj.CRS.from_user_input(imports[-1].crs)


def list_communities(target: Store | Session) -> pd.DataFrame:
    """Return the stored communities (no geometry) with their import and building count.

    Examples
    --------
    >>> list_communities(Store.from_url("sqlite://")).columns.tolist()[:3]
    ['community_id', 'name', 'code']
    """
    ct = table(LAYER_TABLES["communities"])
    bt = table(LAYER_TABLES["buildings"])
    nb = (
        sa.select(bt.c.area_id, sa.func.count().label("n_buildings"))
        .group_by(bt.c.area_id)
        .subquery()
    )
    q = (
        sa.select(
            ct.c.community_id,
            ct.c.name,
            ct.c.code,
            ct.c.street,
            ct.c.district,
            ct.c.import_id,
            sa.func.coalesce(nb.c.n_buildings, 0).label("n_buildings"),
        )
        .outerjoin(nb, nb.c.area_id == ct.c.community_id)
        .order_by(ct.c.import_id, ct.c.seq)
    )
    with transaction(target) as s:
        res = s.execute(q)
        return rows_frame(res.all(), list(res.keys()))


def list_imports(target: Store | Session) -> pd.DataFrame:
    """Return every import (id, author, created_at, crs, community_ids, counts), oldest first.

    Examples
    --------
    >>> len(list_imports(Store.from_url("sqlite://")))
    0
    """
    it = table(Import)
    q = sa.select(
        it.c.id, it.c.author, it.c.created_at, it.c.crs, it.c.community_ids, it.c.counts
    ).order_by(it.c.id)
    with transaction(target) as s:
        res = s.execute(q)
        return rows_frame(res.all(), list(res.keys()))
