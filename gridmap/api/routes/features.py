"""OGC API – Features, Part 1 (Core + GeoJSON) and Part 2 (CRS) over the published plans.

So QGIS, GDAL (``ogrinfo OAPIF:http://host/``) and OWSLib can read the grids
directly. Collections: ``grids``, ``communities`` and ``buildings`` of the
published plan(s), GeoJSON in CRS84 (WGS84 lon/lat) or, with
``crs=http://www.opengis.net/def/crs/EPSG/0/4490``, in CGCS2000 (lat/lon axis
order, as EPSG defines it). No personal data is served here (no staff, no
households). Grids and communities are kept per snapshot; buildings are paged from
the store, one query per page (a city's buildings are never held).

Part 1 rules kept: ``limit`` has a default and a maximum in the API definition
and a larger value is clamped, not refused; ``numberMatched``/``numberReturned``
on every page; an unknown query parameter is a 400 naming the known ones;
``/collections/{id}/queryables`` lists the properties that can filter items by
equality (``?community_id=c1``). The OpenAPI document is 3.1, so the ``oas30``
conformance class is not claimed.

The landing page (``/``) and ``/conformance`` are open; the collections need a
viewer key (``X-API-Key`` or ``Authorization: Bearer``; with GDAL:
``--config GDAL_HTTP_HEADERS "X-API-Key: <key>"``).
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from gridmap.api.deps import LocatorDep, SettingsDep, ViewerDep
from gridmap.api.errors import PROBLEM_RESPONSES
from gridmap.api.locator import Area, Locator
from gridmap.db.spatial import building_features, buildings_extent
from gridmap.errors import InputError, NotFoundError

__all__ = ["router", "COLLECTIONS", "CONFORMANCE"]

router = APIRouter(tags=["OGC API Features"], responses=PROBLEM_RESPONSES)

GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"

#: CRSs served: URI -> whether coordinates are written latitude first (EPSG axis order).
CRSS: dict[str, bool] = {CRS84: False, CGCS2000: True}

#: Conformance classes implemented.
CONFORMANCE: tuple[str, ...] = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
)

#: Page size when ``limit`` is not given, and the largest page (larger limits are clamped).
#: The API definition shows the settings' defaults; GRIDMAP_FEATURES_LIMIT/_MAX_LIMIT change them.
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000

#: Query parameters of the items operation (anything else but a queryable is a 400).
ITEM_PARAMS = ("bbox", "bbox-crs", "crs", "datetime", "limit", "offset", "f", "api_key")

#: id -> (title, description, id column, properties served)
COLLECTIONS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "grids": (
        "Grids (网格)",
        "Grids of the published plan(s): code, name, community, households, 四至.",
        "grid_code",
        (
            "grid_code",
            "name",
            "community_id",
            "households",
            "n_buildings",
            "boundary_desc",
            "plan_id",
        ),
    ),
    "communities": (
        "Communities (社区)",
        "Communities covered by the published plan(s), with their codes.",
        "community_id",
        ("community_id", "name", "code", "street", "street_code", "district", "district_code"),
    ),
    "buildings": (
        "Buildings (楼栋)",
        "Buildings of the published plan(s) with their grid.",
        "building_id",
        ("building_id", "name", "use", "households", "levels", "community_id", "grid_code"),
    ),
}


class _Collection:
    """Features of grids or communities across the served areas (WGS84), with a bbox index.

    Both are small (a few per thousand households) and kept per snapshot; the
    buildings are not (:class:`_StoreBuildings`).
    """

    def __init__(self, cid: str, areas: tuple[Area, ...]) -> None:
        _, _, id_col, props = COLLECTIONS[cid]
        frames = []
        for a in areas:
            if cid == "grids":
                g = a.grids_wgs84.assign(plan_id=a.plan_id)
            else:  # communities (buildings are paged from the store: _StoreBuildings)
                g = a.communities
            if g is not None and len(g):
                cols = [c for c in props if c in g.columns]
                frames.append(
                    pd.DataFrame(g[cols]).assign(_geom=np.asarray(g.geometry.values, dtype=object))
                )
        if frames:
            df = pd.concat(frames, ignore_index=True)
            df = df.drop_duplicates(id_col).sort_values(id_col, kind="stable")
            df = df.reset_index(drop=True)
        else:
            df = pd.DataFrame(columns=[*props, "_geom"])
        self.id_col = id_col
        self.props = [c for c in props if c in df.columns]
        self.ids = df[id_col].astype(str).to_numpy(object) if len(df) else np.array([], object)
        self.geoms = df["_geom"].to_numpy(object)
        self.records = [
            {k: _json_value(v) for k, v in r.items()} for r in df[self.props].to_dict("records")
        ]
        self.tree = shapely.STRtree(self.geoms) if len(self.geoms) else None
        self.extent = (
            [float(v) for v in shapely.total_bounds(self.geoms)] if len(self.geoms) else None
        )
        self._pos = {k: i for i, k in enumerate(self.ids)}
        self.types = {c: _json_type(df[c]) for c in self.props}
        self._text = {
            c: df[c].astype(str).where(df[c].notna(), None).to_numpy(object) for c in self.props
        }

    def filter(self, rows: np.ndarray, equals: dict[str, str]) -> np.ndarray:
        """Keep the rows whose properties equal the given values (compared as text)."""
        for col, value in equals.items():
            rows = rows[self._text[col][rows] == value]
        return rows

    def feature(self, i: int, *, lat_first: bool = False) -> dict[str, Any]:
        geom = self.geoms[i]
        if geom is not None and lat_first:
            geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
        return {
            "type": "Feature",
            "id": self.ids[i],
            "geometry": None if geom is None else shapely.geometry.mapping(geom),
            "properties": self.records[i],
        }

    def position(self, fid: str) -> int | None:
        return self._pos.get(fid)

    def select(self, bbox: tuple[float, float, float, float] | None) -> np.ndarray:
        if bbox is None or self.tree is None:
            return np.arange(len(self.ids))
        return np.sort(self.tree.query(shapely.box(*bbox), predicate="intersects"))

    def page(
        self,
        bbox: tuple[float, float, float, float] | None,
        equals: dict[str, str],
        offset: int,
        limit: int,
        *,
        lat_first: bool,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Return the number matched and one page of features."""
        sel = self.filter(self.select(bbox), equals)
        rows = sel[offset : offset + limit]
        return len(sel), [self.feature(int(i), lat_first=lat_first) for i in rows]

    def one(self, fid: str, *, lat_first: bool) -> dict[str, Any] | None:
        """Return one feature by id (None: no such feature)."""
        pos = self.position(fid)
        return None if pos is None else self.feature(pos, lat_first=lat_first)


class _StoreBuildings:
    """The buildings collection, paged from the store (a city's buildings are not kept).

    Each page is a query (:func:`~gridmap.db.spatial.building_features`: PostGIS's
    GiST index for a bbox; on SQLite the areas' bounding-box arrays name the
    candidates); only the extent is kept, read once per snapshot.
    """

    id_col = "building_id"
    #: JSON types of the properties (the columns of the buildings table).
    types = {
        "building_id": "string",
        "name": "string",
        "use": "string",
        "households": "integer",
        "levels": "number",
        "community_id": "string",
        "grid_code": "string",
    }

    def __init__(self, areas: tuple[Area, ...]) -> None:
        self.areas = tuple(a for a in areas if a.store is not None)
        self.plan_ids = [a.plan_id for a in self.areas]
        self._extent: list[float] | None | bool = False
        self._lock = threading.Lock()

    @property
    def store(self) -> Any:
        return self.areas[0].store if self.areas else None

    @property
    def extent(self) -> list[float] | None:
        """WGS84 extent of the buildings (read once)."""
        with self._lock:
            if self._extent is False:
                if self.store is None:
                    ext = None
                elif self.store.backend == "postgresql":
                    ext = buildings_extent(self.store, self.plan_ids)
                else:
                    boxes = [
                        b
                        for b in (a.boxes.extent for a in self.areas if a.boxes is not None)
                        if b is not None
                    ]
                    ext = (
                        (
                            min(b[0] for b in boxes),
                            min(b[1] for b in boxes),
                            max(b[2] for b in boxes),
                            max(b[3] for b in boxes),
                        )
                        if boxes
                        else None
                    )
                self._extent = None if ext is None else [float(v) for v in ext]
            return self._extent  # type: ignore[return-value]

    def _query(self, **kwargs: Any) -> tuple[int, pd.DataFrame]:
        return building_features(self.store, self.plan_ids, **kwargs)

    def page(
        self,
        bbox: tuple[float, float, float, float] | None,
        equals: dict[str, str],
        offset: int,
        limit: int,
        *,
        lat_first: bool,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Return the number matched and one page of features, read from the store."""
        if self.store is None:
            return 0, []
        candidates = None
        if bbox is not None and self.store.backend != "postgresql":
            inside: list[str] = []
            edge: list[str] = []
            for a in self.areas:
                if a.boxes is not None:
                    i, e = a.boxes.split(bbox)
                    inside += i.tolist()
                    edge += e.tolist()
            candidates = (inside, edge)
        matched, df = self._query(
            box=bbox, candidates=candidates, equals=equals, limit=limit, offset=offset
        )
        return matched, self._features(df, lat_first)

    def one(self, fid: str, *, lat_first: bool) -> dict[str, Any] | None:
        """Return one building by id (None: not a building of the published plans)."""
        if self.store is None:
            return None
        _, df = self._query(building_id=fid, limit=1)
        feats = self._features(df, lat_first)
        return feats[0] if feats else None

    def _features(self, df: pd.DataFrame, lat_first: bool) -> list[dict[str, Any]]:
        props = list(self.types)
        out = []
        for rec, geom in zip(df[props].to_dict("records"), df["geom"], strict=True):
            if geom is not None and lat_first:
                geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
            out.append(
                {
                    "type": "Feature",
                    "id": str(rec["building_id"]),
                    "geometry": None if geom is None else shapely.geometry.mapping(geom),
                    "properties": {k: _json_value(v) for k, v in rec.items()},
                }
            )
        return out


def _json_type(col: pd.Series) -> str:
    """JSON Schema type of a column (for ``/queryables``)."""
    kind = col.dropna().infer_objects().dtype.kind if col.notna().any() else "O"
    return {"i": "integer", "u": "integer", "f": "number", "b": "boolean"}.get(kind, "string")


def _json_value(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def _collections(request: Request, locator: Locator) -> dict[str, Any]:
    """Return the collections of the current snapshot (cached until a refresh)."""
    areas = locator.areas
    key = tuple((a.plan_id, a.record.version) for a in areas)
    cache = getattr(request.app.state, "ogc_cache", None)
    if cache is None or cache[0] != key or cache[1] is not areas:
        colls: dict[str, Any] = {
            cid: _Collection(cid, areas) for cid in COLLECTIONS if cid != "buildings"
        }
        colls["buildings"] = _StoreBuildings(areas)
        cache = (key, areas, colls)
        request.app.state.ogc_cache = cache
    return cache[2]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def _collection_doc(base: str, cid: str, coll: Any) -> dict[str, Any]:
    title, description, _, _ = COLLECTIONS[cid]
    doc: dict[str, Any] = {
        "id": cid,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": list(CRSS),
        "storageCrs": CRS84,
        "links": [
            _link(f"{base}/collections/{cid}", "self", "application/json", title),
            _link(f"{base}/collections/{cid}/items", "items", GEOJSON, f"{title} items"),
            _link(
                f"{base}/collections/{cid}/queryables",
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "application/schema+json",
                "properties to filter items by",
            ),
        ],
    }
    if coll is not None and coll.extent is not None:
        doc["extent"] = {"spatial": {"bbox": [coll.extent], "crs": CRS84}}
    return doc


@router.get("/", summary="Landing page (OGC API Features; open)")
def landing(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """Links to the API definition, the conformance classes and the collections."""
    base = _base(request)
    return {
        "title": settings.title,
        "description": "Community grids (网格) of the published plans, as OGC API Features. "
        "Collections need an API key (viewer role and up).",
        "links": [
            _link(f"{base}/", "self", "application/json", "this document"),
            _link(
                f"{base}/openapi.json",
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.1",
                "the API definition",
            ),
            _link(f"{base}/docs", "service-doc", "text/html", "the API documentation"),
            _link(f"{base}/conformance", "conformance", "application/json", "conformance"),
            _link(f"{base}/collections", "data", "application/json", "collections"),
            _link(f"{base}/login", "alternate", "text/html", "maps in a browser (sign in)"),
        ],
    }


@router.get("/conformance", summary="Conformance classes (open)")
def conformance() -> dict[str, Any]:
    """List the OGC API Features conformance classes this service implements."""
    return {"conformsTo": list(CONFORMANCE)}


@router.get("/collections", summary="Feature collections (viewer)")
def collections(request: Request, locator: LocatorDep, _viewer: ViewerDep) -> dict[str, Any]:
    """``grids``, ``communities`` and ``buildings`` of the published plan(s)."""
    base = _base(request)
    colls = _collections(request, locator)
    return {
        "links": [_link(f"{base}/collections", "self", "application/json", "collections")],
        "collections": [_collection_doc(base, cid, colls[cid]) for cid in COLLECTIONS],
    }


def _get(request: Request, locator: Locator, cid: str) -> Any:
    if cid not in COLLECTIONS:
        raise NotFoundError(
            f"no collection {cid!r}; the collections are {', '.join(COLLECTIONS)} "
            "(GET /collections)"
        )
    return _collections(request, locator)[cid]


@router.get("/collections/{collection_id}", summary="One collection (viewer)")
def collection(
    collection_id: str, request: Request, locator: LocatorDep, _viewer: ViewerDep
) -> dict[str, Any]:
    """Metadata of a collection, with its extent."""
    coll = _get(request, locator, collection_id)
    return _collection_doc(_base(request), collection_id, coll)


def _parse_bbox(
    bbox: str | None, *, lat_first: bool = False
) -> tuple[float, float, float, float] | None:
    if bbox is None or not bbox.strip():
        return None
    try:
        vals = [float(v) for v in bbox.split(",")]
    except ValueError:
        raise InputError(
            f"bbox {bbox!r} is not 4 numbers; write bbox=minlon,minlat,maxlon,maxlat (CRS84)"
        ) from None
    if len(vals) == 6:
        vals = [vals[0], vals[1], vals[3], vals[4]]
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise InputError(
            f"bbox {bbox!r} needs 4 (or 6) finite numbers: minlon,minlat,maxlon,maxlat (CRS84)"
        )
    if lat_first:  # EPSG:4490 orders latitude first
        vals = [vals[1], vals[0], vals[3], vals[2]]
    x0, y0, x1, y1 = vals
    if y0 > y1:
        raise InputError(
            f"bbox {bbox!r}: minlat is above maxlat; write minlon,minlat,maxlon,maxlat"
        )
    if abs(y0) > 90 or abs(y1) > 90:
        raise InputError(
            f"bbox {bbox!r}: latitude out of [-90, 90]; looks like lat/lon are swapped: pass lon "
            "first (minlon,minlat,maxlon,maxlat)"
        )
    return x0, y0, x1, y1


def _parse_crs(value: str | None, name: str) -> str:
    if value is None or not value.strip():
        return CRS84
    uri = value.strip().strip("<>")
    aliases = {"EPSG:4490": CGCS2000, "EPSG:4326": None, "CRS84": CRS84, "OGC:CRS84": CRS84}
    if uri in aliases and aliases[uri] is not None:
        return str(aliases[uri])
    if uri not in CRSS:
        raise InputError(
            f"{name} {value!r} is not served; use {CRS84} (WGS84 lon/lat) or {CGCS2000} "
            "(CGCS2000, lat/lon)"
        )
    return uri


def _check_params(request: Request, coll: Any) -> dict[str, str]:
    """Refuse unknown query parameters (OGC API Features Part 1); return property filters."""
    equals: dict[str, str] = {}
    unknown = []
    for key, value in request.query_params.multi_items():
        if key in ITEM_PARAMS:
            continue
        if key in coll.types:
            equals[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise InputError(
            f"unknown query parameter(s) {', '.join(sorted(set(unknown)))}; the items of this "
            f"collection take {', '.join(ITEM_PARAMS)} and the queryable properties "
            f"{', '.join(coll.types)} (GET /collections/{{id}}/queryables)"
        )
    return equals


@router.get(
    "/collections/{collection_id}/queryables",
    summary="Properties that filter a collection's items (viewer)",
    response_class=JSONResponse,
    responses={200: {"content": {"application/schema+json": {"schema": {"type": "object"}}}}},
)
def queryables(
    collection_id: str, request: Request, locator: LocatorDep, _viewer: ViewerDep
) -> JSONResponse:
    """Return a JSON Schema of the properties usable as ``?name=value`` item filters."""
    coll = _get(request, locator, collection_id)
    base = _base(request)
    body = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/{collection_id}/queryables",
        "type": "object",
        "title": COLLECTIONS[collection_id][0],
        "properties": {c: {"title": c, "type": t} for c, t in coll.types.items()},
        "additionalProperties": False,
    }
    return JSONResponse(body, media_type="application/schema+json")


@router.get(
    "/collections/{collection_id}/items",
    summary="Features of a collection (viewer; bbox, limit, offset, crs, property filters)",
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}}}},
)
def items(
    collection_id: str,
    request: Request,
    locator: LocatorDep,
    settings: SettingsDep,
    _viewer: ViewerDep,
    bbox: Annotated[
        str | None, Query(description="minlon,minlat,maxlon,maxlat (in bbox-crs; CRS84)")
    ] = None,
    bbox_crs: Annotated[
        str | None, Query(alias="bbox-crs", description=f"CRS of bbox: {CRS84} or {CGCS2000}")
    ] = None,
    crs: Annotated[
        str | None, Query(description=f"CRS of the answer: {CRS84} (default) or {CGCS2000}")
    ] = None,
    datetime_: Annotated[
        str | None,
        Query(alias="datetime", description="accepted; the features have no time, so all match"),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            description="page size; a value above the maximum is served as the maximum",
            json_schema_extra={"maximum": MAX_LIMIT},
        ),
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description="features to skip (next links)")] = 0,
    f: Annotated[str | None, Query(description="format: json (GeoJSON)")] = None,
) -> JSONResponse:
    """Return a page of features (GeoJSON FeatureCollection with ``next``/``prev`` links).

    Any queryable property (``GET /collections/{id}/queryables``) filters by equality.
    """
    coll = _get(request, locator, collection_id)
    equals = _check_params(request, coll)
    if f is not None and f.lower() not in ("json", "geojson"):
        raise InputError(f"f={f!r} is not served; the items are GeoJSON (f=json)")
    out_crs = _parse_crs(crs, "crs")
    box = _parse_bbox(bbox, lat_first=CRSS[_parse_crs(bbox_crs, "bbox-crs")])
    given = "limit" in request.query_params
    n_limit = min(limit if given else settings.features_limit, settings.features_max_limit)
    lat_first = CRSS[out_crs]
    matched, features = coll.page(box, equals, offset, n_limit, lat_first=lat_first)
    base = _base(request)
    url = f"{base}/collections/{collection_id}/items"

    def href(off: int) -> str:
        q = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "offset")]
        q += [("limit", str(n_limit)), ("offset", str(off))]
        return f"{url}?{urlencode(q)}"

    links = [
        _link(href(offset), "self", GEOJSON, "this page"),
        _link(f"{base}/collections/{collection_id}", "collection", "application/json"),
    ]
    if offset + n_limit < matched:
        links.append(_link(href(offset + n_limit), "next", GEOJSON, "next page"))
    if offset > 0:
        links.append(_link(href(max(0, offset - n_limit)), "prev", GEOJSON, "previous page"))
    body = {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "links": links,
    }
    return JSONResponse(body, media_type=GEOJSON, headers={"Content-Crs": f"<{out_crs}>"})


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One feature (viewer)",
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}}}},
)
def item(
    collection_id: str,
    feature_id: str,
    request: Request,
    locator: LocatorDep,
    _viewer: ViewerDep,
    crs: Annotated[
        str | None, Query(description=f"CRS of the answer: {CRS84} (default) or {CGCS2000}")
    ] = None,
    f: Annotated[str | None, Query(description="format: json (GeoJSON)")] = None,
) -> JSONResponse:
    """One feature by id (grid code, community id or building id)."""
    coll = _get(request, locator, collection_id)
    unknown = sorted(set(request.query_params) - {"crs", "f", "api_key"})
    if unknown:
        raise InputError(f"unknown query parameter(s) {', '.join(unknown)}; a feature takes crs, f")
    out_crs = _parse_crs(crs, "crs")
    feat = coll.one(feature_id, lat_first=CRSS[out_crs])
    if feat is None:
        raise NotFoundError(
            f"no feature {feature_id!r} in {collection_id}; list them with "
            f"GET /collections/{collection_id}/items"
        )
    base = _base(request)
    feat["links"] = [
        _link(f"{base}/collections/{collection_id}/items/{feature_id}", "self", GEOJSON),
        _link(f"{base}/collections/{collection_id}", "collection", "application/json"),
    ]
    return JSONResponse(feat, media_type=GEOJSON, headers={"Content-Crs": f"<{out_crs}>"})
