"""Layers as a GeoParquet dataset partitioned by community (hive style).

A cluster worker that partitions community ``C0001`` reads only that
community's rows: :func:`write_partitioned` writes every layer as a GeoParquet
dataset with one folder per ``community_id`` (``buildings/community_id=C0001/
part-0.parquet``), the layout Spark, DuckDB, pyarrow and dask-geopandas read
as a partitioned dataset (``gpd.read_parquet("folder/buildings")``).

Which community a row belongs to:

* communities and buildings: their ``community_id`` column (moved into the
  folder name, as hive partitioning does);
* households and staff: the community of their building (``building_id``,
  ``home_building_id``; staff without a home building: the community holding
  their point);
* roads, barriers and compounds: every community they intersect (a road along
  two communities is in both folders), exactly the rows the partitioner
  gives each community.

Rows of no community go to ``community_id=__HIVE_DEFAULT_PARTITION__`` (hive's
null). Every row keeps its position in the layer (``_row``), and
``_gridmap.json`` records the community order, the CRS and the column types, so
:func:`read_partitioned` gives back the very layers that were written, and
:func:`read_community` one community's share of them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyproj
import shapely

from gridmap.errors import PartitionedDatasetError
from gridmap.layers import LAYER_NAMES, Layers
from gridmap.partition.precision import snap_geometries

__all__ = [
    "MANIFEST",
    "NULL_PARTITION",
    "PartitionedDataset",
    "open_partitioned",
    "read_community",
    "read_partitioned",
    "write_partitioned",
]

#: Name of the file describing a partitioned dataset.
MANIFEST = "_gridmap.json"
#: Folder value of rows that belong to no community (hive's null partition).
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_KEY = "community_id"
_ROW = "_row"
_FORMAT = "gridmap-partitioned-layers"

_HOW_TO = (
    "export one from the layers with `gridmap export LAYERS.gpkg --format parquet "
    "--partition-by community_id --out city.parquet` (Python: "
    "gridmap.scale.write_partitioned(layers, folder) on validated layers)"
)


def _folder_name(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return f"{_KEY}={NULL_PARTITION}"
    return f"{_KEY}={quote(str(value), safe='')}"


def _dtype_name(s: pd.Series) -> str:
    if isinstance(s.dtype, gpd.array.GeometryDtype):
        return "geometry"
    if s.dtype == object:  # text: keep whether missing values were None or NaN
        missing = s[s.isna()]
        if len(missing) and all(isinstance(v, float) for v in missing):
            return "object:nan"
    return str(s.dtype)


def _restore(frame: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """Give read columns back the types they were written with (object text stays object)."""
    for col, name in dtypes.items():
        if col not in frame.columns or name == "geometry":
            continue
        if name in ("object", "object:nan"):
            s = frame[col].astype(object)
            frame[col] = s.where(s.notna(), None if name == "object" else np.nan)
        elif name != _dtype_name(frame[col]):
            try:
                frame[col] = frame[col].astype(pd.api.types.pandas_dtype(name))
            except (TypeError, ValueError):  # pragma: no cover - a type parquet cannot hold
                pass
    return frame


def _owners(layers: Layers) -> dict[str, list[np.ndarray]]:
    """For every layer: per row, the community ids it belongs to (empty: none)."""
    comms = layers.communities
    cids = comms[_KEY].astype(str).to_numpy(dtype=object)
    # which rows a community gets is decided on the partitioner's normal form (coordinates
    # snapped to its millimetre grid): a street along a community edge then falls on the same
    # side as in a whole-city run (gridmap.partition.precision); the rows keep their coordinates
    cgeoms = snap_geometries(np.asarray(comms.geometry.array, dtype=object))
    tree = shapely.STRtree(cgeoms)
    out: dict[str, list[np.ndarray]] = {}
    none = np.empty(0, dtype=object)

    def one(values: pd.Series) -> list[np.ndarray]:
        v = values.astype(object).to_numpy()
        return [none if pd.isna(x) else np.array([str(x)], dtype=object) for x in v]

    b = layers.buildings
    b_cid = b[_KEY].astype(object).where(b[_KEY].notna(), None)
    out["communities"] = one(comms[_KEY])
    out["buildings"] = one(b_cid)
    of_building = dict(zip(b["building_id"].astype(str), b_cid, strict=True))
    for name, col in (("households", "building_id"), ("staff", "home_building_id")):
        frame = getattr(layers, name)
        if frame is None:
            continue
        if col in frame.columns:
            ref = frame[col].astype(object)
            owner = ref.map(lambda x: of_building.get(str(x)) if pd.notna(x) else None)
        else:
            owner = pd.Series([None] * len(frame), dtype=object)
        if name == "staff":  # no home building: the community holding the point
            pts = np.asarray(frame.geometry.array, dtype=object)
            lost = np.flatnonzero(owner.isna().to_numpy() & ~shapely.is_missing(pts))
            if len(lost):
                pi, ci = tree.query(pts[lost], predicate="intersects")
                first = pd.Series(ci).groupby(pi).min()
                owner.iloc[lost[first.index.to_numpy()]] = cids[first.to_numpy()]
        out[name] = one(owner)
    for name in ("roads", "barriers", "compounds"):
        frame = getattr(layers, name)
        if frame is None:
            continue
        g = snap_geometries(np.asarray(frame.geometry.array, dtype=object))
        rows: list[np.ndarray] = [none] * len(frame)
        # the partitioner's own query: lines and compounds intersecting the community
        ci, ri = tree.query(g, predicate="intersects")[::-1]
        if len(ri):
            order = np.lexsort((ci, ri))
            ri, ci = ri[order], ci[order]
            starts = np.flatnonzero(np.r_[True, ri[1:] != ri[:-1]])
            for s, e in zip(starts, np.r_[starts[1:], len(ri)], strict=True):
                rows[int(ri[s])] = cids[ci[s:e]]
        out[name] = rows
    return out


def write_partitioned(
    layers: Layers,
    folder: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Write layers as GeoParquet datasets partitioned by ``community_id`` (hive style).

    Parameters
    ----------
    layers : gridmap.layers.Layers
        Validated layers (:func:`gridmap.validation.validate_layers`).
    folder : path
        The dataset folder: ``<folder>/<layer>/community_id=<id>/part-0.parquet``
        for every layer, and ``<folder>/_gridmap.json``.
    overwrite : bool, default False
        Replace an existing dataset in ``folder``.

    Returns
    -------
    pathlib.Path
        ``folder``.

    Raises
    ------
    PartitionedDatasetError
        ``folder`` exists and is not empty (without ``overwrite``), or the
        layers lack ``community_id``.

    Examples
    --------
    >>> import tempfile
    >>> from gridmap.datasets import get_path
    >>> from gridmap.io import read_layers
    >>> from gridmap.validation import validate_layers
    >>> layers, _ = validate_layers(read_layers(get_path("sample")))
    >>> folder = write_partitioned(layers, tempfile.mkdtemp() + "/city")
    >>> sorted(p.name for p in (folder / "buildings").iterdir())[:2]
    ['_schema.parquet', 'community_id=C0001']
    >>> read_partitioned(folder).buildings.equals(layers.buildings)
    True
    """
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise PartitionedDatasetError(
                f"{folder} exists and is not empty; pick a new folder or pass overwrite=True"
            )
        if not (folder / MANIFEST).exists():
            raise PartitionedDatasetError(
                f"{folder} is not a gridmap dataset; refusing to overwrite it. Pick a new folder."
            )
        shutil.rmtree(folder)
    for name in ("communities", "buildings"):
        if _KEY not in getattr(layers, name).columns:
            raise PartitionedDatasetError(
                f"{name} has no {_KEY} column; validate the layers first "
                "(gridmap.validation.validate_layers)"
            )
    owners = _owners(layers)
    tmp = folder.with_name(folder.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    manifest: dict[str, Any] = {
        "format": _FORMAT,
        "version": 1,
        "partition_by": _KEY,
        "crs": pyproj.CRS(layers.crs).to_json_dict(),
        "communities": layers.communities[_KEY].astype(str).tolist(),
        "buildings_per_community": {},
        "layers": {},
    }
    for name, frame in layers.items():
        frame = frame.reset_index(drop=True)
        owner = owners[name]
        counts = np.fromiter((len(o) for o in owner), dtype=np.int64, count=len(owner))
        rows = np.repeat(np.arange(len(frame)), np.maximum(counts, 1))
        keys = np.concatenate([o if len(o) else np.array([None], dtype=object) for o in owner])
        if not len(owner):
            keys = np.empty(0, dtype=object)
        drop = [_KEY] if _KEY in frame.columns and name in ("communities", "buildings") else []
        data = frame.iloc[rows].drop(columns=drop).reset_index(drop=True)
        data.insert(0, _ROW, rows.astype(np.int64))
        data = gpd.GeoDataFrame(data, geometry=frame.geometry.name, crs=layers.crs)
        base = tmp / name
        base.mkdir()
        data.iloc[:0].to_parquet(base / "_schema.parquet", index=False)
        key_s = pd.Series(keys, dtype=object).map(lambda v: _folder_name(v))
        for part, idx in key_s.groupby(key_s, sort=True).indices.items():
            out = base / str(part)
            out.mkdir()
            data.iloc[np.sort(idx)].to_parquet(out / "part-0.parquet", index=False)
        manifest["layers"][name] = {
            "rows": len(frame),
            "columns": list(frame.columns),
            "geometry": frame.geometry.name,
            "dtypes": {c: _dtype_name(frame[c]) for c in frame.columns},
            "in_file": drop == [],
        }
    b = layers.buildings[_KEY].astype(str)
    manifest["buildings_per_community"] = {
        str(k): int(v) for k, v in b.value_counts(sort=False).items()
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
    if folder.exists():
        folder.rmdir()
    tmp.rename(folder)
    return folder


class PartitionedDataset:
    """An opened partitioned dataset: its folder and manifest.

    Parameters
    ----------
    folder : pathlib.Path
    manifest : dict
    """

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.crs = pyproj.CRS.from_json_dict(manifest["crs"])
        self.communities: list[str] = list(manifest["communities"])
        self.layer_names: list[str] = [n for n in LAYER_NAMES if n in manifest["layers"]]

    def buildings_of(self, community_id: str) -> int:
        """Return the number of buildings of a community."""
        return int(self.manifest["buildings_per_community"].get(community_id, 0))

    def _frame(self, name: str, table: pa.Table) -> gpd.GeoDataFrame:
        """Return the layer's rows in ``table`` as written: once each, in row order, typed."""
        info = self.manifest["layers"][name]
        geom = info["geometry"]
        # the rows first (a road crossing several communities is in each folder), then
        # decode: what geopandas.read_parquet does per file, done once for the layer
        rows = table.column(_ROW).to_numpy()
        order = np.argsort(rows, kind="stable")
        keep = order[np.r_[True, rows[order][1:] != rows[order][:-1]]] if len(rows) else order
        table = table.take(pa.array(keep, type=pa.int64()))
        data = table.drop_columns([geom, _ROW]).to_pandas()
        data[geom] = shapely.from_wkb(table.column(geom).to_numpy(zero_copy_only=False))
        data = _restore(data[info["columns"]].copy(), info["dtypes"])
        return gpd.GeoDataFrame(data, geometry=geom, crs=self.crs)

    def read_layer(self, name: str, community_ids: Iterable[str] | None = None) -> gpd.GeoDataFrame:
        """Read one layer: of some communities, or (default) every row of it."""
        import pyarrow.parquet as pq

        info = self.manifest["layers"][name]
        base = self.folder / name
        if community_ids is None:
            parts = [
                (p / "part-0.parquet", _key_of(p.name))
                for p in sorted(base.iterdir())
                if p.is_dir() and p.name.startswith(f"{_KEY}=")
            ]
        else:
            parts = [(base / _folder_name(c) / "part-0.parquet", c) for c in community_ids]
        # plain Arrow reads, decoded once for the layer below (geopandas.read_parquet per
        # file costs ~10 ms: communities x layers of them for a whole city)
        tables = []
        for path, key in parts:
            if not path.exists():
                continue
            t = pq.read_table(path)
            if not info["in_file"]:
                t = t.append_column(_KEY, pa.array([key] * len(t), type=pa.string()))
            tables.append(t)
        if not tables:
            t = pq.read_table(base / "_schema.parquet")
            if not info["in_file"]:
                t = t.append_column(_KEY, pa.array([], type=pa.string()))
            tables.append(t)
        # a column missing (all null) in one community's file is null-typed there
        table = pa.concat_tables(tables, promote_options="permissive")
        return self._frame(name, table)

    def layers(
        self, community_ids: Iterable[str] | None = None, *, names: Iterable[str] | None = None
    ) -> Layers:
        """Read the layers (``names``, default all) of some communities (default: all rows)."""
        ids = None if community_ids is None else list(community_ids)
        wanted = set(self.layer_names if names is None else names) | {"communities", "buildings"}
        out = {n: self.read_layer(n, ids) for n in self.layer_names if n in wanted}
        return Layers(**out, crs=self.crs)


def _key_of(folder_name: str) -> str | None:
    value = folder_name.split("=", 1)[1]
    return None if value == NULL_PARTITION else unquote(value)


def open_partitioned(folder: str | os.PathLike[str]) -> PartitionedDataset:
    """Open a dataset written by :func:`write_partitioned`.

    Raises
    ------
    PartitionedDatasetError
        ``folder`` is missing, a single file, or not partitioned by community.
    """
    path = Path(folder)
    if not path.exists():
        raise PartitionedDatasetError(f"{path} does not exist; {_HOW_TO}")
    if not path.is_dir() or not (path / MANIFEST).exists():
        what = "a single file" if path.is_file() else "a folder without _gridmap.json"
        raise PartitionedDatasetError(
            f"{path} is {what}, not a GeoParquet dataset partitioned by community_id "
            f"(<folder>/<layer>/community_id=<id>/…parquet); workers read one community "
            f"each from such a dataset: {_HOW_TO}"
        )
    try:
        manifest = json.loads((path / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise PartitionedDatasetError(
            f"{path / MANIFEST} cannot be read ({exc}); {_HOW_TO}"
        ) from None
    if manifest.get("format") != _FORMAT or manifest.get("partition_by") != _KEY:
        raise PartitionedDatasetError(
            f"{path} is partitioned by {manifest.get('partition_by')!r}, not by community_id; "
            f"{_HOW_TO}"
        )
    return PartitionedDataset(path, manifest)


def read_partitioned(folder: str | os.PathLike[str]) -> Layers:
    """Read every layer of a partitioned dataset back, rows in their original order.

    Parameters
    ----------
    folder : path
        Written by :func:`write_partitioned`.

    Returns
    -------
    gridmap.layers.Layers
        The layers that were written (same rows, order, columns and types).
    """
    return open_partitioned(folder).layers()


def read_community(folder: str | os.PathLike[str], community_id: str) -> Layers:
    """Read one community's share of every layer (what a cluster worker reads).

    Parameters
    ----------
    folder : path
        Written by :func:`write_partitioned`.
    community_id : str

    Returns
    -------
    gridmap.layers.Layers
        One community; its buildings, households and staff; the roads,
        barriers and compounds intersecting it.
    """
    return open_partitioned(folder).layers([community_id])
