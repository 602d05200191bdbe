"""File formats in and out: GeoPackage, GeoJSON, Shapefile, GeoParquet and CSV.

Reading gives *raw* canonical layers (``dict[str, GeoDataFrame]``) for
:func:`gridmap.validation.validate_layers`; nothing here checks the data beyond
what is needed to read it. Writing is atomic: a file is written next to its
destination and moved into place only when complete, so a failed run never
leaves a partial file behind.

Layer and column names of real data rarely match the canonical ones; pass
``layer_map`` (canonical → source layer) and ``column_map`` (per layer,
canonical column → source column), or a named ``preset`` such as ``"osm"``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from gridmap.errors import InputError, LayerError
from gridmap.layers import (
    CONVERTED_ATTR,
    LAYER_NAMES,
    LEFT_OUT_ATTR,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    Layers,
)
from gridmap.partition.plan import Plan, QualityReport

__all__ = [
    "PRESETS",
    "FORMATS",
    "read_layers",
    "read_layer",
    "write_layers",
    "write_plan",
    "read_plan",
    "read_plan_layers",
    "write_plan_assignments",
    "export_plan",
    "parse_column_map",
    "osm_ids",
    "OSM_BUILDING_USE",
]

PathLike = str | os.PathLike[str]

#: Export formats and their file suffixes.
FORMATS: dict[str, str] = {
    "gpkg": ".gpkg",
    "geojson": ".geojson",
    "shp": ".shp",
    "parquet": ".parquet",
    "csv": ".csv",
}

_SUFFIX_FORMAT = {
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".shp": "shp",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".csv": "csv",
}

_LON_NAMES = ("lon", "lng", "longitude", "x", "经度")
_LAT_NAMES = ("lat", "latitude", "y", "纬度")


_OSM_KINDS = {
    "w": "w",
    "way": "w",
    "r": "r",
    "rel": "r",
    "relation": "r",
    "n": "n",
    "node": "n",
    "a": "w",
    "area": "w",
}
_OSM_ID = re.compile(r"^\s*(?:([A-Za-z]+)\s*[/:_ ]?\s*)?(-?\d+)(?:\.0+)?\s*$")


def osm_ids(values: Any, kinds: Any = None, *, default: str = "w") -> tuple[pd.Series, list[Any]]:
    """Canonical OpenStreetMap ids (``w123``, ``r45``, ``n7``) from the forms exporters write.

    Accepts plain integers (the kind from ``kinds`` — ``way``/``relation``/``node`` or
    ``w``/``r``/``n`` — else ``default``), ``way/123`` (Overpass, osmtogeojson),
    ``w123`` (OSMnx, gridmap), ``relation/45``, ``r45``, ``node/7``; a negative
    integer is a relation (osmium's area convention). Returns the ids and the
    values that are none of these (their ids are missing).

    Examples
    --------
    >>> ids, bad = osm_ids(["way/123", "w124", "relation/45", 7, "r-9", "x y"], ["way"] * 6)
    >>> ids.tolist(), bad
    (['w123', 'w124', 'r45', 'w7', 'r9', None], ['x y'])
    """
    vals = pd.Series(list(values), dtype=object)
    kind_of = (
        pd.Series(list(kinds), dtype=object).map(
            lambda k: None if k is None or pd.isna(k) else _OSM_KINDS.get(str(k).strip().lower())
        )
        if kinds is not None
        else pd.Series([None] * len(vals), dtype=object)
    )
    out: list[str | None] = []
    bad: list[Any] = []
    for v, k in zip(vals, kind_of, strict=True):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
            bad.append(v)
            continue
        m = _OSM_ID.match(str(v))
        prefix = _OSM_KINDS.get(m.group(1).lower()) if m and m.group(1) else None
        if m is None or (m.group(1) and prefix is None):
            out.append(None)
            bad.append(v)
            continue
        number = int(m.group(2))
        kind = prefix or k or ("r" if number < 0 else default)
        out.append(f"{kind}{abs(number)}")
    index = values.index if isinstance(values, pd.Series) else None
    return pd.Series(out, index=index, dtype=object), bad


def _id_column(gdf: gpd.GeoDataFrame) -> tuple[Any, Any] | None:
    """Return the id (and kind) columns of an OSM extract (GDAL, Overpass, OSMnx, pyrosm)."""
    cols = set(gdf.columns)
    kinds = next(
        (gdf[c] for c in ("osm_type", "element_type", "element", "type") if c in cols), None
    )
    if "osm_way_id" in cols and "osm_id" in cols:  # GDAL's OSM driver (multipolygons)
        way = gdf["osm_way_id"]
        ids = gdf["osm_id"].where(way.isna(), way)
        k = pd.Series(np.where(way.notna(), "way", "relation"), index=gdf.index)
        return ids, k
    for c in ("osm_id", "osmid", "@id", "id"):
        if c in cols:
            return gdf[c], kinds
    return None


def _osm_ids(gdf: gpd.GeoDataFrame, layer: str, id_col: str) -> pd.Series | None:
    """Return the canonical ids of an OSM layer, or None when it already has ``id_col``."""
    found = _id_column(gdf)
    if found is None:
        if id_col in gdf:  # canonical already, or mapped by hand: OSM forms are normalised
            ids, bad = osm_ids(gdf[id_col])
            return None if bad else ids
        raise LayerError(
            f"the osm preset expects an OSM id column (osm_id, osmid, @id or id) in the {layer} "
            f"layer, which has "
            f"{', '.join(str(c) for c in gdf.columns if c != gdf.geometry.name) or '(no columns)'}"
            f"; drop --preset osm for files in gridmap's canonical format, or map the id with "
            f"--column {layer}.{id_col}=YOUR_COLUMN"
        )
    if id_col in gdf and "osm_id" not in gdf:
        found = (gdf[id_col], found[1])  # mapped by hand: read that column as OSM ids
    ids, bad = osm_ids(found[0], found[1])
    if bad:
        raise LayerError(
            f"{len(bad)} {layer} id(s) are not OpenStreetMap ids, e.g. "
            f"{', '.join(repr(v) for v in bad[:3])}; the osm preset reads 123, way/123, w123, "
            f"relation/45 or r45 — map another column with --column {layer}.{id_col}=COLUMN"
        )
    return ids


#: How the osm preset reads a building's ``building`` tag (DESIGN: households are
#: estimated for residential buildings only; ``yes`` counts as residential inside
#: residential landuse). Tags not listed are ``other`` (0 households).
OSM_BUILDING_USE: dict[str, str] = {
    "residential": "residential",
    "apartments": "residential",
    "house": "residential",
    "detached": "residential",
    "semidetached_house": "residential",
    "terrace": "residential",
    "dormitory": "residential",
    "bungalow": "residential",
    "farm": "residential",
    "commercial": "commercial",
    "office": "commercial",
    "retail": "commercial",
    "shop": "commercial",
    "mall": "commercial",
    "supermarket": "commercial",
    "hotel": "commercial",
    "bank": "commercial",
    "kiosk": "commercial",
    "school": "public",
    "university": "public",
    "college": "public",
    "kindergarten": "public",
    "hospital": "public",
    "civic": "public",
    "government": "public",
    "public": "public",
    "church": "public",
    "temple": "public",
    "mosque": "public",
    "place_of_worship": "public",
    "train_station": "public",
    "transportation": "public",
    "embassy": "public",
    "industrial": "industrial",
    "warehouse": "industrial",
    "factory": "industrial",
}


def _osm_buildings(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Bring an OpenStreetMap building extract to canonical columns.

    The ``use`` of a building follows :data:`OSM_BUILDING_USE`; ``levels`` comes
    from ``levels``/``building:levels``/``levels_est``, else ``height_m`` / 3 m.
    A column mapping given by hand is applied first and never turns this off.
    """
    ids = _osm_ids(gdf, "buildings", "building_id")
    out = gdf.copy()
    if ids is not None:
        out["building_id"] = ids.to_numpy()
    if "levels" not in out:
        for alt in ("building:levels", "building_levels", "levels_est"):
            if alt in out:
                out["levels"] = out[alt]
                break
    if "height_m" in out or "height" in out:
        height = pd.to_numeric(out.get("height_m", out.get("height")), errors="coerce")
        from_height = np.floor(height / 3.0).where(height >= 3.0)
        if "levels" in out:
            lv = pd.to_numeric(out["levels"], errors="coerce")
            out["levels"] = lv.where(lv > 0, from_height)
        else:
            out["levels"] = from_height
    if "use" in out and "building" not in out:
        return out  # mapped by hand to gridmap's own use values
    tag = out.get("building", pd.Series("yes", index=out.index)).fillna("yes").astype(str)
    use = tag.str.strip().str.lower().map(OSM_BUILDING_USE).fillna("other")
    if "is_residential" in out:
        use = use.where(~out["is_residential"].fillna(False).astype(bool), "residential")
    elif "landuse_kind" in out:
        in_res = out["landuse_kind"].astype(str).eq("residential") & tag.eq("yes")
        use = use.where(~in_res, "residential")
    out["use"] = use
    return out


def _osm_landuse_compounds(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Residential landuse polygons as compounds (小区)."""
    ids = _osm_ids(gdf, "compounds", "compound_id")
    if ids is None:
        return gdf
    gdf = gdf.assign(compound_id=ids.to_numpy())
    kind_col = "landuse" if "landuse" in gdf else "kind"
    if kind_col not in gdf:
        raise LayerError(
            "the osm preset reads residential compounds from a landuse layer with a landuse "
            "(or kind) column; this one has none — map the compounds layer with --layer"
        )
    return gdf[gdf[kind_col].astype(str) == "residential"].copy()


def _osm_roads(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = gdf.copy()
    if "class" not in out or "highway" in out:
        out["class"] = out["highway"] if "highway" in out else out.get("kind")
    tunnel = np.zeros(len(out), dtype=bool)
    if "tunnel" in out:
        tunnel |= out["tunnel"].astype(str).isin(["yes", "True", "true", "1"]).to_numpy()
    if "is_tunnel" in out:
        flag = out["is_tunnel"].astype(str).str.lower()
        tunnel |= flag.isin(["true", "1", "1.0", "yes"]).to_numpy()
    out = out[~tunnel]
    if tunnel.any():
        out.attrs[LEFT_OUT_ATTR] = [
            (int(tunnel.sum()), "tunnels (an underpass does not bound a grid at street level)")
        ]
    return out


def _osm_barriers(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = gdf.copy()
    if "kind" not in out and "barrier" in out:
        out["kind"] = out["barrier"]
    return out


def _osm_waterways(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Waterway lines as barriers of their kind (river, canal, stream …); culverts left out."""
    out = gdf.copy()
    tag = out["waterway"] if "waterway" in out else out.get("kind")
    out["kind"] = "water" if tag is None else tag.fillna("water").astype(str)
    tunnel = np.zeros(len(out), dtype=bool)
    if "tunnel" in out:
        tunnel = (
            out["tunnel"].notna().to_numpy()
            & ~out["tunnel"].astype(str).isin(["no", "None", ""]).to_numpy()
        )
    out = out[~tunnel]
    if tunnel.any():
        out.attrs[LEFT_OUT_ATTR] = [
            (int(tunnel.sum()), "waterways in culverts (underground water bounds nothing)")
        ]
    return out


def _osm_admin_lines(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Administrative boundary lines (e.g. district borders) as barriers of kind ``boundary``."""
    out = gdf.copy()
    out["kind"] = "boundary"
    return out


#: Named input presets: source layer names and per-layer adapters.
PRESETS: dict[str, dict[str, Any]] = {
    "osm": {
        "layers": {
            "buildings": "buildings",
            "roads": "roads",
            "barriers": "barriers",
            "compounds": "landuse",
        },
        "adapters": {
            "buildings": _osm_buildings,
            "roads": _osm_roads,
            "barriers": _osm_barriers,
            "compounds": _osm_landuse_compounds,
        },
        # further source layers added to a canonical layer when the file has them
        "extra": {
            "barriers": (
                ("waterways", _osm_waterways),
                ("admin", _osm_admin_lines),
                ("admin_boundaries", _osm_admin_lines),
            ),
        },
    },
}


def parse_column_map(items: list[str] | None) -> dict[str, dict[str, str]]:
    """Parse ``layer.canonical=source`` strings (the CLI's ``--map``) into a column map.

    Examples
    --------
    >>> parse_column_map(["buildings.building_id=osm_id", "buildings.levels=floors"])
    {'buildings': {'building_id': 'osm_id', 'levels': 'floors'}}
    """
    out: dict[str, dict[str, str]] = {}
    for item in items or []:
        key, sep, source = item.partition("=")
        layer, dot, column = key.partition(".")
        if not sep or not dot or not source or not column:
            raise InputError(
                f"cannot read the column mapping {item!r}; write LAYER.CANONICAL=SOURCE, "
                "e.g. buildings.building_id=osm_id"
            )
        if layer not in LAYER_NAMES:
            raise InputError(
                f"unknown layer {layer!r} in column mapping {item!r}; layers are "
                f"{', '.join(LAYER_NAMES)}"
            )
        out.setdefault(layer, {})[column] = source
    return out


_EXTRA_COLUMNS = (
    "households_estimated",
    "compound_id",
    "max_posts",
    "current_grid",
    "current_role",
)


def _restore_shapefile_names(name: str, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Undo the Shapefile 10-character truncation of canonical column names."""
    canonical = (*REQUIRED_COLUMNS[name], *OPTIONAL_COLUMNS[name], *_EXTRA_COLUMNS)
    renames = {
        c[:10]: c
        for c in canonical
        if len(c) > 10 and c[:10] in gdf.columns and c not in gdf.columns
    }
    return gdf.rename(columns=renames) if renames else gdf


def _format_of(path: Path, fmt: str | None = None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    found = _SUFFIX_FORMAT.get(path.suffix.lower())
    if found is None:
        raise InputError(
            f"cannot tell the format of {path.name} from its suffix; name it with one of "
            f"{', '.join(sorted(_SUFFIX_FORMAT))} (in Python, or `gridmap export --format`, "
            "the format can be given instead)"
        )
    return found


def _offset_kind(value: Any) -> str | None:
    """Return ``"gcj02"``/``"bd09"`` when ``value`` names an offset system, else None."""
    if value is None or isinstance(value, pyproj.CRS):
        return None
    from gridmap.crs import parse_crs

    try:
        spec = parse_crs(value)
    except InputError:
        return None
    return spec.kind if spec.is_offset else None


def _offset_to_wgs84(gdf: gpd.GeoDataFrame, kind: str, what: str) -> gpd.GeoDataFrame:
    """Convert a layer's GCJ-02/BD-09 lon/lat to WGS84 (exact inverse, < 1 mm)."""
    from gridmap.crs import bd09_to_wgs84, gcj02_to_wgs84

    if gdf.crs is not None and not gdf.crs.is_geographic:
        raise InputError(
            f"{what} is in the projected CRS {gdf.crs.name}, but was declared {kind.upper()}; "
            "GCJ-02 and BD-09 are longitude/latitude systems — drop the declaration"
        )
    inverse = gcj02_to_wgs84 if kind == "gcj02" else bd09_to_wgs84

    def convert(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(inverse(xy[:, 0], xy[:, 1]))

    geoms = shapely.transform(gdf.geometry.values, convert)
    out = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index), crs=4326)
    out.attrs[CONVERTED_ATTR] = kind
    return out


def _read_csv(
    path: Path, *, crs: Any = 4326, lonlat: tuple[str | None, str | None] = (None, None)
) -> gpd.GeoDataFrame:
    """Read a CSV; lon/lat columns (lon/lng/longitude/x, lat/latitude/y) become points.

    UTF-8 first (with or without BOM), then GB18030 (a superset of GBK, what Excel
    writes on Chinese Windows).
    """
    df = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            df = pd.read_csv(path, dtype_backend="numpy_nullable", encoding=encoding)
            break
        except UnicodeDecodeError:
            continue
        except pd.errors.ParserError as exc:
            raise InputError(f"cannot read {path.name} as CSV: {exc}") from exc
    if df is None:
        raise InputError(f"cannot read {path.name}: it is neither UTF-8 nor GBK/GB18030 text")
    lower = {str(c).strip().lower(): c for c in df.columns}
    for given in lonlat:
        if given is not None and given not in df.columns:
            raise LayerError(
                f"{path.name} has no column {given!r} for coordinates; it has "
                f"{', '.join(map(str, df.columns))}"
            )
    lon = lonlat[0] or next((lower[n] for n in _LON_NAMES if n in lower), None)
    lat = lonlat[1] or next((lower[n] for n in _LAT_NAMES if n in lower), None)
    df = df.astype(object).where(df.notna(), None)
    if lon is None or lat is None:
        return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([None] * len(df)), crs=crs)
    x = pd.to_numeric(df[lon], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(df[lat], errors="coerce").to_numpy(dtype=float)
    geom = gpd.points_from_xy(x, y)
    return gpd.GeoDataFrame(df.drop(columns=[lon, lat]), geometry=geom, crs=crs)


def read_layer(
    path: PathLike,
    *,
    layer: str | None = None,
    csv_crs: Any = 4326,
    csv_lonlat: tuple[str | None, str | None] = (None, None),
) -> gpd.GeoDataFrame:
    """Read one layer from a file of any supported format.

    Parameters
    ----------
    path : path-like
        GeoPackage, GeoJSON, Shapefile, GeoParquet or CSV.
    layer : str, optional
        Layer name inside a multi-layer file (GeoPackage).
    csv_crs : CRS-like, default EPSG:4326
        CRS of the lon/lat columns of a CSV; ``"gcj02"`` (AMap, Tencent, WeChat) and
        ``"bd09"`` (Baidu) are converted to WGS84.
    csv_lonlat : (str or None, str or None), optional
        Names of a CSV's longitude and latitude columns, when they are not one of
        lon/lng/longitude/x/经度 and lat/latitude/y/纬度.

    Returns
    -------
    geopandas.GeoDataFrame
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {p}")
    fmt = _format_of(p)
    try:
        if fmt == "csv":
            offset = _offset_kind(csv_crs)
            if offset is not None:
                table = _read_csv(p, crs=None, lonlat=csv_lonlat)
                return _offset_to_wgs84(table, offset, p.name)
            return _read_csv(p, crs=csv_crs, lonlat=csv_lonlat)
        if fmt == "parquet":
            return gpd.read_parquet(p)
        return gpd.read_file(p, layer=layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(
            f"cannot read {p.name}{f' layer {layer}' if layer else ''}: {exc}"
        ) from exc


def _parse_coords(coords: str | Mapping[str, str] | None) -> dict[str, str]:
    """Normalise ``coords`` to layer (or ``"*"``) → ``"gcj02"``/``"bd09"``."""
    if coords is None:
        return {}
    items = {"*": coords} if isinstance(coords, str) else dict(coords)
    out = {}
    for layer, value in items.items():
        if layer != "*" and layer not in LAYER_NAMES:
            raise InputError(
                f"unknown layer {layer!r} in coords; layers are {', '.join(LAYER_NAMES)}"
            )
        kind = _offset_kind(value)
        if kind is None:
            raise InputError(
                f"coords={value!r} is not an offset Chinese system; use 'gcj02' (AMap, "
                "Tencent, WeChat) or 'bd09' (Baidu) — other CRSs are read from the files"
            )
        out[layer] = kind
    return out


def _source_name_of_file(stem: str, lmap: Mapping[str, str]) -> str | None:
    """Return the canonical layer a single file stands for, by its name (``buildings.shp``)."""
    for name in LAYER_NAMES:
        if lmap.get(name, name) == stem:
            return name
    return stem if stem in LAYER_NAMES else None


def _source_name(
    name: str, available: set[str], lmap: Mapping[str, str], raw_layers: set[str]
) -> str | None:
    """Return the source layer (or file stem) that gives the canonical layer ``name``.

    The mapped name first (``layer_map`` or the preset); when a preset's source layer is
    absent but the canonical one is there (a file already in the canonical format), the
    canonical layer is read as it is. ``raw_layers`` collects the layers that need the
    preset's adapter.
    """
    mapped = lmap.get(name, name)
    if mapped in available:
        raw_layers.add(name)
        return mapped
    if name in available:
        return name
    return None


def read_layers(
    source: PathLike | Mapping[str, PathLike],
    *,
    layer_map: Mapping[str, str] | None = None,
    column_map: Mapping[str, Mapping[str, str]] | None = None,
    preset: str | None = None,
    csv_crs: Any = 4326,
    coords: str | Mapping[str, str] | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Read raw canonical layers from a GeoPackage, a folder, or one file per layer.

    Parameters
    ----------
    source : path-like or mapping
        A GeoPackage holding several layers; a folder holding files named after
        the layers (``buildings.geojson``, ``staff.csv`` …); or a mapping of
        canonical layer name → file.
    layer_map : mapping, optional
        Canonical layer name → layer name in the source (GeoPackage/folder).
    column_map : mapping, optional
        Per layer, canonical column → source column, e.g.
        ``{"buildings": {"building_id": "osm_id"}}``; for a CSV, ``lon`` and ``lat``
        name its coordinate columns (``{"households": {"lon": "X坐标", "lat": "Y坐标"}}``).
    preset : str, optional
        A named adaptation from :data:`PRESETS` (``"osm"`` for OpenStreetMap
        extracts).
    csv_crs : CRS-like, default EPSG:4326
        CRS of lon/lat columns in CSV files (``"gcj02"``/``"bd09"`` are converted).
    coords : {"gcj02", "bd09"} or mapping, optional
        The layers' longitudes/latitudes are really GCJ-02 (AMap, Tencent, WeChat) or
        BD-09 (Baidu), whatever their files say (GeoJSON always claims WGS84): they
        are converted to WGS84 (exact inverse, < 1 mm). One value for every layer, or
        a mapping layer → system for some. Without it, such data lies 300–700 m off.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        Only the canonical layers found; validate them with
        :func:`gridmap.validation.validate_layers`.

    Examples
    --------
    >>> from gridmap.datasets import get_path
    >>> raw = read_layers(get_path("sample"))
    >>> sorted(raw)[:3]
    ['barriers', 'buildings', 'communities']
    """
    if preset is not None and preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; presets are {', '.join(PRESETS)}")
    spec = PRESETS.get(preset or "", {})
    lmap: dict[str, str] = {**spec.get("layers", {}), **(layer_map or {})}
    unknown = sorted(set(lmap) - set(LAYER_NAMES))
    if unknown:
        raise InputError(
            f"layer_map names unknown layer(s) {', '.join(unknown)}; canonical layers are "
            f"{', '.join(LAYER_NAMES)}"
        )
    files: dict[str, tuple[Path, str | None]] = {}
    raw_layers: set[str] = set()  # layers read from the preset's source layer (adapted)
    others: dict[str, tuple[Path, str | None]] = {}  # every source layer, for preset extras
    if isinstance(source, Mapping):
        for name, path in source.items():
            if name not in LAYER_NAMES:
                raise InputError(
                    f"unknown layer {name!r}; canonical layers are {', '.join(LAYER_NAMES)}"
                )
            files[name] = (Path(path), None)
    else:
        src = Path(source)
        if not src.exists():
            raise InputError(f"no such file or folder: {src}")
        if src.is_dir():
            present: dict[str, list[Path]] = {}
            for p in sorted(src.iterdir()):
                if p.suffix.lower() in _SUFFIX_FORMAT:
                    present.setdefault(p.stem, []).append(p)
            others = {stem: (paths[0], None) for stem, paths in present.items() if len(paths) == 1}
            for name in LAYER_NAMES:
                stem = _source_name(name, set(present), lmap, raw_layers)
                if stem is None:
                    continue
                if len(present[stem]) > 1:
                    raise InputError(
                        f"{src.name} holds {' and '.join(p.name for p in present[stem])} for the "
                        f"{name} layer; keep one file per layer (move the others out)"
                    )
                files[name] = (present[stem][0], None)
        elif _format_of(src) == "gpkg":
            try:
                available = {str(row[0]) for row in pyogrio.list_layers(src)}
            except pyogrio.errors.DataSourceError as exc:
                raise InputError(f"cannot open {src.name} as a GeoPackage: {exc}") from exc
            others = {lname: (src, lname) for lname in available}
            for name in LAYER_NAMES:
                source_layer = _source_name(name, available, lmap, raw_layers)
                if source_layer is not None:
                    files[name] = (src, source_layer)
            if not files:
                raise LayerError(
                    f"{src.name} holds no canonical layer (it has {', '.join(sorted(available))}); "
                    f"name layers {', '.join(LAYER_NAMES)} or map them with layer_map / "
                    "--layer buildings=your_layer"
                )
        elif (single := _source_name_of_file(src.stem, lmap)) is not None:
            files[single] = (src, None)  # e.g. buildings.geojson on its own
            raw_layers.add(single)
        else:
            raise InputError(
                f"{src.name} is a single-layer file; say which layer it is: name it after its "
                f"layer (buildings{src.suffix}), map it (layer_map={{'buildings': '{src.stem}'}}; "
                f"CLI: --layer buildings={src.stem}) or pass read_layers({{'buildings': "
                f"'{src.name}'}}); for several layers put their files in one folder and pass it"
            )
    offsets = _parse_coords(coords)
    adapters: dict[str, Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame]] = spec.get("adapters", {})
    out: dict[str, gpd.GeoDataFrame] = {}
    problems: list[str] = []  # every mapping problem, reported together
    unmapped = sorted(set(column_map or {}) - set(files))
    if unmapped:
        problems.append(
            f"column mapping names layer(s) {', '.join(unmapped)} that "
            f"{Path(str(source)).name if not isinstance(source, Mapping) else 'the input'} "
            f"does not have; it has {', '.join(sorted(files)) or 'none'}"
        )
    for name, (path, lname) in files.items():
        offset = offsets.get(name, offsets.get("*"))
        cmap = dict((column_map or {}).get(name, {}))
        lonlat = (cmap.pop("lon", None), cmap.pop("lat", None))
        if any(lonlat) and path.suffix.lower() != ".csv":
            raise LayerError(
                f"column mapping {name}.lon/{name}.lat is for CSV files; {path.name} has geometry"
            )
        gdf = read_layer(path, layer=lname, csv_crs=None if offset else csv_crs, csv_lonlat=lonlat)
        if offset is not None:
            gdf = _offset_to_wgs84(gdf, offset, f"the {name} layer of {path.name}")
        if path.suffix.lower() == ".shp":
            gdf = _restore_shapefile_names(name, gdf)
        missing = [src_col for src_col in cmap.values() if src_col not in gdf.columns]
        if missing:
            problems.append(
                f"column mapping for {name} names column(s) {', '.join(missing)} that "
                f"{path.name} does not have; available: "
                f"{', '.join(str(c) for c in gdf.columns if c != gdf.geometry.name)}"
            )
            continue
        if cmap:
            gdf = gdf.drop(columns=[c for c in cmap if c in gdf.columns and c not in cmap.values()])
            gdf = gdf.rename(columns={v: k for k, v in cmap.items()})
        if name in adapters and (isinstance(source, Mapping) or name in raw_layers):
            try:
                gdf = adapters[name](gdf)
            except (LayerError, ValueError, TypeError, KeyError) as exc:
                problems.append(str(exc) if isinstance(exc, LayerError) else f"{name}: {exc!r}")
                continue
        out[name] = gdf
    if problems:
        raise LayerError(f"{len(problems)} problem(s) reading the layers: " + " | ".join(problems))
    for name, extra in spec.get("extra", {}).items():
        if name in (layer_map or {}) or (name in files and name not in raw_layers):
            continue  # mapped by hand, or already in the canonical format
        offset = offsets.get(name, offsets.get("*"))
        parts = [out[name]] if name in out else []
        for lname, adapter in extra:
            if lname not in others:
                continue
            path, layer_name = others[lname]
            part = read_layer(path, layer=layer_name, csv_crs=None if offset else csv_crs)
            if offset is not None:
                part = _offset_to_wgs84(part, offset, f"the {lname} layer of {path.name}")
            parts.append(adapter(part))
        if len(parts) > int(name in out):
            out[name] = _concat_layers(parts, name)
    return out


def _concat_layers(parts: list[gpd.GeoDataFrame], name: str) -> gpd.GeoDataFrame:
    """Join several source layers into one (brought to the first one's CRS)."""
    crs = parts[0].crs
    if crs is not None:
        if any(p.crs is None for p in parts):
            raise LayerError(
                f"some source layers of {name} have a CRS and some have none; set one with "
                "gdf.set_crs(...)"
            )
        parts = [p if p.crs == crs else p.to_crs(crs) for p in parts]
    left_out = [item for p in parts for item in p.attrs.get(LEFT_OUT_ATTR, ())]
    frame = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=crs)
    frame.attrs = {LEFT_OUT_ATTR: left_out} if left_out else {}
    return frame


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place on success only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if path.suffix.lower() == ".shp":
            for sidecar in tmp_path.parent.glob(tmp_path.stem + ".*"):
                os.replace(sidecar, path.with_suffix(sidecar.suffix))
        else:
            os.replace(tmp_path, path)
    finally:
        for leftover in tmp_path.parent.glob(tmp_path.stem + ".*"):
            leftover.unlink(missing_ok=True)


_SHP_NAMES = {
    "grid_code": "grid_code",
    "community_id": "comm_id",
    "households": "households",
    "n_buildings": "n_bldgs",
    "boundary_desc": "sizhi",
    "polsby_popper": "pp",
    "area_m2": "area_m2",
}


#: What each exported column means (the Shapefile field key, ``<name>.fields.csv``).
_FIELD_MEANINGS = {
    "grid_code": "网格编码：社区代码+3位序号 Grid code: community code + 3-digit sequence",
    "community_id": "社区标识 Community id",
    "name": "网格名称 Grid name",
    "households": "户数 Households",
    "persons": "人口 Persons (empty when unknown)",
    "n_buildings": "楼栋数 Buildings",
    "boundary_desc": "四至：东西南北边界 Boundaries to the east, south, west and north",
    "locked": "锁定（重新划分时不变） Locked: kept as is when re-partitioning (1 yes, 0 no)",
    "polsby_popper": "紧凑度 Compactness (Polsby–Popper 4πA/P²)",
    "area_m2": "面积 Area (m²)",
}


def _shapefile_names(gdf: gpd.GeoDataFrame) -> dict[str, str]:
    """Return column → its Shapefile field name (at most 10 characters, unique)."""
    taken: set[str] = set()
    names = {}
    for col in gdf.columns:
        if col == gdf.geometry.name:
            continue
        base = _SHP_NAMES.get(col, col)[:10]
        name, i = base, 1
        while name.lower() in taken:
            suffix = str(i)
            name = base[: 10 - len(suffix)] + suffix
            i += 1
        taken.add(name.lower())
        names[col] = name
    return names


def _shapefile_columns(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Shorten column names to the Shapefile limit of 10 characters, keeping them unique."""
    return gdf.rename(columns=_shapefile_names(gdf))


def _write_field_key(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write the key of a Shapefile's fields: DBF name, full column name, meaning.

    UTF-8 with a BOM, so that Excel shows the Chinese; written atomically.
    """
    rows = [
        (short, col, _FIELD_MEANINGS.get(col, "")) for col, short in _shapefile_names(gdf).items()
    ]
    key = pd.DataFrame(rows, columns=["字段 DBF field", "列名 Column", "含义 Meaning"])
    with _atomic_path(path) as tmp:
        key.to_csv(tmp, index=False, encoding="utf-8-sig")


def _for_file(gdf: gpd.GeoDataFrame | pd.DataFrame) -> gpd.GeoDataFrame | pd.DataFrame:
    """Make frames writable by OGR: bools as int, lists/dicts as JSON text."""
    out = gdf.copy()
    for col in out.columns:
        if isinstance(out, gpd.GeoDataFrame) and col == out.geometry.name:
            continue
        s = out[col]
        if s.dtype == object:
            sample = s.dropna()
            if len(sample) and isinstance(sample.iloc[0], list | dict | tuple):
                out[col] = s.map(
                    lambda v: None if v is None else json.dumps(v, ensure_ascii=False, default=str)
                )
    return out


_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")


@contextmanager
def _gpkg_timestamp(timestamp: str | None) -> Iterator[None]:
    """Make GDAL stamp GeoPackage contents with ``timestamp`` instead of the clock."""
    if timestamp is None:
        yield
        return
    if not _TIMESTAMP_RE.match(timestamp):
        raise InputError(f"timestamp {timestamp!r} is not a UTC time like 2024-01-01T00:00:00Z")
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": timestamp})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def write_layers(
    layers: Layers | Mapping[str, gpd.GeoDataFrame],
    path: PathLike,
    *,
    crs: Any = 4326,
    timestamp: str | None = None,
    description: str | None = None,
) -> Path:
    """Write canonical layers to one GeoPackage (atomically), by default in WGS84.

    Parameters
    ----------
    layers : Layers or mapping of str to GeoDataFrame
    path : path-like
        Destination ``.gpkg``; replaced whole when it exists.
    crs : CRS-like, default EPSG:4326
        CRS to write in.
    timestamp : str, optional
        UTC time (``"2000-01-01T00:00:00Z"``) to record as the layers' last change
        instead of the current time, so that the same layers give the same file,
        byte for byte (``gridmap synth`` uses it).
    description : str, optional
        Text stored as every layer's description in the GeoPackage (shown by QGIS),
        e.g. the attribution a licence requires.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridmap.synth import synth_community
    >>> town = synth_community(n_buildings=40, seed=1)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     a = write_layers(town, pathlib.Path(folder, "a.gpkg"), timestamp="2000-01-01T00:00:00Z")
    ...     b = write_layers(town, pathlib.Path(folder, "b.gpkg"), timestamp="2000-01-01T00:00:00Z")
    ...     same = a.read_bytes() == b.read_bytes()
    >>> same
    True
    """
    dest = Path(path)
    if _format_of(dest) != "gpkg":
        raise InputError(f"write_layers writes GeoPackage files (.gpkg), not {dest.suffix}")
    items = layers.items() if isinstance(layers, Layers) else list(layers.items())
    with _gpkg_timestamp(timestamp), _atomic_path(dest) as tmp:
        for name, gdf in items:
            frame = gdf.to_crs(crs) if gdf.crs is not None else gdf
            options = {"DESCRIPTION": description} if description else None
            pyogrio.write_dataframe(
                _for_file(frame),
                tmp,
                layer=name,
                driver="GPKG",
                layer_options=options,
                dataset_options=_GPKG_DATASET,
            )
    return dest


# GeoPackage 1.2: what GDAL < 3.7 (and so QGIS on Debian 12) reads without a warning;
# newer GDAL writes 1.4 by default, which adds nothing gridmap uses.
_GPKG_DATASET = {"VERSION": "1.2"}


def _plan_tables(plan: Plan, layers: Layers | None) -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """Return the tables of a plan file, with grids and geometries in WGS84."""
    grids = _for_file(plan.grids_wgs84())
    tables: dict[str, gpd.GeoDataFrame | pd.DataFrame] = {"grids": grids}
    members = plan.buildings
    if layers is not None:
        geo = layers.buildings[["building_id", "geometry"]]
        extra = [c for c in ("name", "use", "levels", "community_id") if c in layers.buildings]
        attrs = layers.buildings[["building_id", *extra]]
        b = members.merge(attrs, on="building_id", how="left")
        b = gpd.GeoDataFrame(b.merge(geo, on="building_id", how="left"), crs=layers.crs)
        tables["buildings"] = b.to_crs(4326)
    else:
        tables["buildings"] = members
    if layers is not None:
        tables["communities"] = _for_file(layers.communities.to_crs(4326))
    if plan.households is not None:
        hh = plan.households
        if layers is not None and layers.households is not None:
            pts = layers.households[["household_id", "unit", "floor", "persons", "geometry"]]
            hh = gpd.GeoDataFrame(hh.merge(pts, on="household_id", how="left"), crs=layers.crs)
            hh = hh.to_crs(4326)
        tables["households"] = hh
    if plan.assignments is not None:
        tables["assignments"] = _for_file(plan.assignments)
    meta = {
        "params": plan.params,
        "report": plan.report.to_dict(),
        "crs": plan.crs.to_wkt(),
        "format": "gridmap-plan/1",
    }
    tables["plan_meta"] = pd.DataFrame(
        {
            "key": list(meta),
            "value": [json.dumps(v, ensure_ascii=False, default=str) for v in meta.values()],
        }
    )
    return tables


def write_plan(plan: Plan, path: PathLike, *, layers: Layers | None = None) -> Path:
    """Write a plan to a GeoPackage (atomically) that opens cleanly in QGIS.

    Layers: ``grids`` (polygons, WGS84), ``buildings`` (footprints with their
    ``grid_code`` when ``layers`` is given, else a table), ``communities``
    (boundaries, when ``layers`` is given), ``households``
    (points with ``grid_code``), ``assignments`` (staff posts, when staffed) and
    ``plan_meta`` (parameters, quality report and CRS as JSON).

    Parameters
    ----------
    plan : Plan
    path : path-like
        Destination ``.gpkg``; replaced whole when it exists.
    layers : Layers, optional
        The layers the plan was made from, for building and household geometries.

    Returns
    -------
    pathlib.Path
    """
    dest = Path(path)
    if _format_of(dest) != "gpkg":
        raise InputError(
            f"plans are written as GeoPackage (.gpkg), not {dest.suffix}; use "
            "export_plan for GeoJSON/Shapefile/GeoParquet/CSV"
        )
    tables = _plan_tables(plan, layers)
    with _atomic_path(dest) as tmp:
        for name, frame in tables.items():
            pyogrio.write_dataframe(
                frame, tmp, layer=name, driver="GPKG", dataset_options=_GPKG_DATASET
            )
    return dest


def read_plan(path: PathLike) -> Plan:
    """Read a plan written by :func:`write_plan`.

    Grids come back in the plan's projected CRS.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    Plan
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such plan file: {p}")
    try:
        available = {str(row[0]) for row in pyogrio.list_layers(p)}
    except pyogrio.errors.DataSourceError as exc:
        raise InputError(f"cannot open {p.name} as a GeoPackage: {exc}") from exc
    if not {"grids", "plan_meta"} <= available:
        raise LayerError(
            f"{p.name} is not a gridmap plan (it lacks the grids/plan_meta layers); make one with "
            "`gridmap partition`"
        )
    meta_df = pyogrio.read_dataframe(p, layer="plan_meta")
    meta = {k: json.loads(v) for k, v in zip(meta_df["key"], meta_df["value"], strict=True)}
    crs = pyproj.CRS.from_wkt(meta["crs"])
    grids = gpd.read_file(p, layer="grids", engine="pyogrio").to_crs(crs)
    if "locked" in grids:
        grids["locked"] = grids["locked"].astype(bool)

    def table(name: str, columns: list[str]) -> pd.DataFrame | None:
        if name not in available:
            return None
        df = pyogrio.read_dataframe(p, layer=name, read_geometry=False)
        keep = [c for c in columns if c in df.columns] if columns else list(df.columns)
        df = df[keep]
        return df.astype(object).where(df.notna(), None) if columns else df

    buildings = table("buildings", ["building_id", "grid_code", "households", "part"])
    if buildings is not None and "households" in buildings:
        buildings["households"] = buildings["households"].astype(np.int64)
    households = table("households", ["household_id", "building_id", "grid_code"])
    assignments = table("assignments", [])
    return Plan(
        grids=grids,
        buildings=buildings if buildings is not None else pd.DataFrame(),
        households=households,
        report=QualityReport.from_dict(meta.get("report", {})),
        params=meta.get("params", {}),
        crs=crs,
        assignments=assignments,
    )


def write_plan_assignments(
    path: PathLike, assignments: pd.DataFrame, *, out: PathLike | None = None
) -> Path:
    """Put staff assignments into a plan file, keeping every other layer as it is.

    The file is copied, the ``assignments`` layer replaced in the copy, and the
    copy moved into place: a failure leaves the original untouched.

    Parameters
    ----------
    path : path-like
        A plan written by :func:`write_plan`.
    assignments : pandas.DataFrame
        One row per post (:attr:`gridmap.staffing.StaffingResult.assignments`).
    out : path-like, optional
        Where to write; by default ``path`` itself.

    Returns
    -------
    pathlib.Path
    """
    import shutil

    src = Path(path)
    read_plan(src)  # refuses files that are not plans
    dest = Path(out) if out is not None else src
    with _atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        pyogrio.write_dataframe(
            _for_file(assignments),
            tmp,
            layer="assignments",
            driver="GPKG",
            layer_options={"OVERWRITE": "YES"},
        )
    return dest


def read_plan_layers(path: PathLike) -> Layers | None:
    """Read the community boundaries and building footprints stored in a plan file.

    Enough context for maps (:func:`gridmap.maps.plan_map`); None when the
    plan was written without layers.

    Parameters
    ----------
    path : path-like
        A plan written by :func:`write_plan`.

    Returns
    -------
    Layers or None
        ``communities`` and ``buildings`` in the plan's projected CRS.
    """
    plan = read_plan(path)
    available = {str(row[0]) for row in pyogrio.list_layers(path)}
    if "communities" not in available:
        return None
    comms = gpd.read_file(path, layer="communities", engine="pyogrio").to_crs(plan.crs)
    blds = gpd.read_file(path, layer="buildings", engine="pyogrio")
    if blds.crs is None or blds.geometry.isna().all():
        return None
    blds = blds.to_crs(plan.crs).drop_duplicates("building_id").reset_index(drop=True)
    return Layers(communities=comms, buildings=blds, crs=plan.crs)


def export_plan(
    plan: Plan,
    path: PathLike,
    *,
    fmt: str | None = None,
    layers: Layers | None = None,
) -> Path:
    """Export a plan's grids (and, for GeoPackage, everything) to any format.

    GeoPackage gets the full plan (:func:`write_plan`); GeoJSON, Shapefile,
    GeoParquet get the grids layer in WGS84; CSV gets the grids with WKT
    geometry and a point inside each as lon/lat (UTF-8 with a BOM, for Excel),
    with ``.csvt`` (column types) and ``.prj`` (WGS84) sidecars that GDAL and
    QGIS read.

    Codes stay text: in the CSV every text cell is quoted and the ``.csvt``
    types the codes ``String``, so GDAL, QGIS and pandas with ``dtype=str``
    keep the 15 digits of a grid code. Excel, opening a CSV by double-click,
    guesses every digits-only cell as a number whatever the quotes (and shows
    3.20104E+14); there, use 数据 → 从文本/CSV (Data → From Text/CSV) and set
    the code columns to Text, or export a GeoPackage.

    A Shapefile cuts field names to 10 characters (``boundary_desc`` →
    ``sizhi``); ``<name>.fields.csv`` beside it (UTF-8 with a BOM) is the key:
    DBF field, full column name, meaning. Its ``.cpg`` says UTF-8, so QGIS and
    ArcGIS read the Chinese. Every sidecar is named after the file, so files
    exported to one folder keep theirs; a Shapefile and a CSV of the same name
    write the same ``.prj`` (WGS84 as WKT1 with its EPSG code, which GDAL's
    Shapefile and CSV drivers both identify), whichever comes last.

    Parameters
    ----------
    plan : Plan
    path : path-like
    fmt : str, optional
        One of :data:`FORMATS`; by default from the file suffix.
    layers : Layers, optional
        For building/household geometries in a GeoPackage.

    Returns
    -------
    pathlib.Path
    """
    dest = Path(path)
    kind = _format_of(dest, fmt)
    if kind == "gpkg":
        return write_plan(plan, dest, layers=layers)
    grids = _for_file(plan.grids_wgs84())
    with _atomic_path(dest) as tmp:
        if kind == "geojson":
            pyogrio.write_dataframe(grids, tmp, layer=dest.stem, driver="GeoJSON")
        elif kind == "shp":
            pyogrio.write_dataframe(
                _shapefile_columns(grids), tmp, driver="ESRI Shapefile", encoding="UTF-8"
            )
            tmp.with_suffix(".prj").write_text(_wgs84_prj(), encoding="utf-8")
            _write_field_key(grids, dest.with_name(f"{dest.stem}.fields.csv"))
        elif kind == "parquet":
            grids.to_parquet(tmp)
        else:
            centroids = plan.grids.geometry.representative_point().to_crs(4326)
            table = pd.DataFrame(grids.drop(columns="geometry"))
            table["lon"] = centroids.x.round(7).to_numpy()
            table["lat"] = centroids.y.round(7).to_numpy()
            table["wkt"] = grids.geometry.to_wkt(rounding_precision=7).to_numpy()
            # a BOM so that Excel opens the Chinese names right; GDAL and pandas skip it;
            # text cells quoted (the header is not), so codes are text to every reader that
            # honours quotes
            with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
                fh.write(",".join(map(str, table.columns)) + "\n")
                table.to_csv(
                    fh, index=False, header=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n"
                )
    if kind == "csv":  # sidecars for GDAL/QGIS: column types (wkt is the geometry) and CRS
        with _atomic_path(dest.with_suffix(".csvt")) as tmp:
            tmp.write_text(",".join(f'"{_csvt_type(table[c], c)}"' for c in table.columns) + "\n")
        with _atomic_path(dest.with_suffix(".prj")) as tmp:
            tmp.write_text(_wgs84_prj(), encoding="utf-8")
    return dest


def _wgs84_prj() -> str:
    """Return the ``.prj`` of every WGS84 export: WKT1 with the EPSG code.

    GDAL's Shapefile and CSV drivers both identify it as EPSG:4326 (an ESRI
    ``.prj`` is not identified by the CSV driver; WKT2 is not read by older
    ArcGIS), so a Shapefile and a CSV of the same name share one ``.prj``.
    """
    return pyproj.CRS.from_epsg(4326).to_wkt("WKT1_GDAL") + "\n"


def _csvt_type(col: pd.Series, name: str) -> str:
    """GDAL's CSV column type of ``col`` (for the ``.csvt`` sidecar)."""
    if name == "wkt":
        return "WKT"
    kind = col.dtype.kind
    if kind == "b":
        return "Integer(Boolean)"
    if kind in "iu":
        return "Integer64"
    if kind == "f":
        return "Real"
    return "String"
