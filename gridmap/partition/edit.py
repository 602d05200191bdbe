"""Redrawing a plan: move buildings, merge, split, lock, re-partition, re-staff.

Every function here is pure: it takes a :class:`~gridmap.partition.plan.Plan`
and the :class:`~gridmap.layers.Layers` it was made from, and returns an
:class:`EditResult` holding a **new** plan (the input is never mutated), the
violations the edit causes and the quality figures of the grids and
communities it touched.

Rules
-----
Every edit is validated on the grids and communities it touches:

=============  ==========  ==========================================================
check          severity    meaning
=============  ==========  ==========================================================
band           warning     a grid's households fall outside ``[min, max]`` (the
                           planner may accept it; communities below ``min`` exempt)
contiguity     error       a grid is not one connected polygon
enclave        error       a grid lies inside a hole of another grid
tiling         error       the community's grids leave a gap or overlap (> 1 m²)
community      error       a grid crosses its community boundary, or buildings are
                           moved into / merged with a grid of another community
locked         error       the edit touches a locked grid (unlock it first)
building_cut   error       a split line cuts through buildings (``cut="refuse"``)
building_cell  error       a moved building overlaps an unmoved one, so they share
                           one cell of land (move them together)
staffing       warning     posts left vacant after re-staffing; or posts an edit
                           left against the rules: two chiefs after a merge, a
                           chief whose home moved out, a new grid without posts
                           (re-staff to settle them)
=============  ==========  ==========================================================

The people serving a grid that an edit removes (a merge, a re-partition) pass
to the new grid covering most of its land, so re-staffing keeps or moves them
with a reason rather than taking them for newcomers.

An edit with an ``error`` is **refused**: with ``strict=True`` it raises
:class:`EditRefusedError` (an :class:`~gridmap.errors.InputError`), otherwise it
returns ``ok=False`` with the plan unchanged (``result.plan is plan``) and
the figures of the refused attempt. An error that the touched grids already
had before the edit is not held against it: it is reported as a warning
("already so before this edit"). Malformed requests (unknown building or
grid, a line that does not cross the grid) always raise.

Geometry
--------
A grid's polygon is the union of the tessellation cells of its buildings
(:func:`gridmap.partition.units.build_units`): the land nearest each
building, cut along roads, walls and compound outlines. The plan stores no
cells, so a move re-tessellates the **source grid** alone (its polygon and its
buildings) and hands the moved buildings' cells to the target grid: the
moved buildings carry their land, every other grid keeps its polygon exactly,
and source ∪ target is unchanged, so the tiling holds by construction. Land of
the source grid that no longer holds a building and only touches the target
(e.g. a yard behind the moved building) goes with it.

A split along a line is a polygon split (:func:`shapely.ops.split`); a
building belongs to the piece holding its representative point. A building the
line cuts through is refused by default (``cut="refuse"``, the message names
them) or goes to the piece holding the larger part of its footprint
(``cut="larger"``). Pieces without buildings join the neighbouring piece they
share most boundary with. The piece with most households keeps the grid's
code; new grids get the lowest free numbers of their community
(:func:`gridmap.partition.codes.assign_codes`); between pieces with as many
households, the first in reading order (north, then west) keeps it. A merge
keeps the code of the first grid named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.ops import split as _shapely_split

from gridmap.errors import CRSError, GridmapError, InputError, LayerError, NotFoundError
from gridmap.layers import Layers
from gridmap.partition.plan import GRID_COLUMNS, Plan, QualityReport

__all__ = [
    "EDIT_OPS",
    "HARD_CHECKS",
    "EditRefusedError",
    "EditResult",
    "move_buildings",
    "merge_grids",
    "split_grid",
    "lock_grids",
    "repartition",
    "restaff",
    "apply_edit",
]

#: Checks whose violation refuses an edit; every other check is a warning.
HARD_CHECKS: frozenset[str] = frozenset(
    {"contiguity", "enclave", "tiling", "community", "locked", "building_cut", "building_cell"}
)

#: Area (m²) below which gaps, overlaps and pieces are float noise.
_AREA_TOL = 1.0
#: Shared boundary (m) below which two polygons only touch.
_EDGE_TOL = 0.01
_NO_SPLIT = 10**12  # max_households for tessellation only: never slice a building


class EditRefusedError(InputError):
    """An edit that breaks a hard rule (contiguity, tiling, community, locked …).

    Parameters
    ----------
    message : str
        Which rules were broken and how to proceed.
    result : EditResult
        The refused result: ``violations`` and the figures of the attempt.
    """

    def __init__(self, message: str, result: EditResult) -> None:
        super().__init__(message)
        self.result = result

    @property
    def violations(self) -> list[dict[str, Any]]:
        """The violations (``grid_code, community_id, check, severity, message``)."""
        return self.result.violations


@dataclass(frozen=True)
class EditResult:
    """The outcome of one edit.

    Attributes
    ----------
    plan : Plan
        The edited plan; the input plan itself when the edit was refused.
    violations : list of dict
        ``{"grid_code", "community_id", "check", "severity", "message"}`` with
        ``severity`` ``"error"`` (refuses) or ``"warning"``.
    figures : QualityReport
        The quality figures of the touched grids and communities (and the
        plan-wide ``overall``), after the edit (or of the refused attempt).
    ok : bool
        False when the edit was refused.
    op : str
        The operation (``"move_buildings"``, ``"merge"`` …).
    affected : list of str
        Grid codes created or changed by the edit.
    removed : list of str
        Grid codes that no longer exist.
    notes : list of str
        What was done beyond the obvious (land that followed, posts released …).
    staffing : dict or None
        The staffing summary after :func:`restaff`.
    """

    plan: Plan
    violations: list[dict[str, Any]]
    figures: QualityReport
    ok: bool
    op: str
    affected: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    staffing: dict[str, Any] | None = None

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The violations that refuse the edit."""
        return [v for v in self.violations if v["severity"] == "error"]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """The violations a planner may accept."""
        return [v for v in self.violations if v["severity"] == "warning"]

    def to_dict(self) -> dict[str, Any]:
        """Return everything but the plan as JSON-compatible values."""
        return {
            "op": self.op,
            "ok": self.ok,
            "affected": list(self.affected),
            "removed": list(self.removed),
            "violations": [dict(v) for v in self.violations],
            "notes": list(self.notes),
            "figures": self.figures.to_dict(),
            "staffing": self.staffing,
        }


# ----------------------------------------------------------------------------- helpers


def _violation(
    check: str, message: str, *, grid_code: str | None = None, community_id: str | None = None
) -> dict[str, Any]:
    return {
        "grid_code": grid_code,
        "community_id": community_id,
        "check": check,
        "severity": "error" if check in HARD_CHECKS else "warning",
        "message": message,
    }


def _band(plan: Plan, min_households: int | None, max_households: int | None) -> tuple[int, int]:
    lo = plan.params.get("min_households", 200) if min_households is None else min_households
    hi = plan.params.get("max_households", 500) if max_households is None else max_households
    return int(lo), int(hi)


def _check_inputs(plan: Plan, layers: Layers) -> None:
    if not isinstance(plan, Plan):
        raise InputError(f"expected a gridmap Plan, got {type(plan).__name__}")
    if not isinstance(layers, Layers):
        raise InputError(
            f"expected gridmap.layers.Layers, got {type(layers).__name__}; pass the layers the "
            "plan was made from (gridmap.validation.validate_layers or gridmap.db.load_layers)"
        )
    if plan.grids.crs is None or not plan.grids.crs.equals(layers.crs):
        raise CRSError(
            f"the plan is in {getattr(plan.grids.crs, 'name', None)!r} but the layers in "
            f"{layers.crs.name!r}; load the layers in the plan's CRS "
            "(e.g. load_layers(store, ids, crs=plan.crs)) or reproject the layers"
        )


def _codes(plan: Plan) -> pd.Series:
    return plan.grids["grid_code"].astype(str)


def _row_of(plan: Plan, code: str) -> int:
    hit = np.flatnonzero(_codes(plan).to_numpy() == str(code))
    if len(hit) == 0:
        known = ", ".join(_codes(plan).head(5))
        raise NotFoundError(
            f"the plan has no grid {code!r}; use a code from plan.grids['grid_code'] (e.g. {known})"
        )
    return int(hit[0])


def _is_locked(plan: Plan, i: int) -> bool:
    value = plan.grids["locked"].iloc[i] if "locked" in plan.grids.columns else False
    return bool(value) if not pd.isna(value) else False


def _locked_violations(plan: Plan, codes: Iterable[str]) -> list[dict[str, Any]]:
    out = []
    for code in codes:
        i = _row_of(plan, code)
        if _is_locked(plan, i):
            out.append(
                _violation(
                    "locked",
                    f"grid {code} is locked; unlock it first (op 'unlock') to change it",
                    grid_code=code,
                    community_id=str(plan.grids["community_id"].iloc[i]),
                )
            )
    return out


def _polys(geom: Any) -> list[Any]:
    """Polygon parts of ``geom`` larger than the noise area, largest first."""
    if geom is None or shapely.is_empty(geom):
        return []
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) == 3]
    parts = [p for p in parts if shapely.area(p) > _AREA_TOL]
    return sorted(parts, key=lambda p: -shapely.area(p))


def _clean(geom: Any) -> Any:
    """Drop noise parts and noise holes; a single part comes back as a Polygon."""
    if geom is None or shapely.is_empty(geom):
        return shapely.Polygon()
    if not shapely.is_valid(geom):
        geom = shapely.make_valid(geom)
    parts = []
    for p in _polys(geom):
        holes = [r for r in p.interiors if shapely.area(shapely.Polygon(r)) > _AREA_TOL]
        parts.append(shapely.Polygon(p.exterior, holes))
    if not parts:
        return shapely.Polygon()
    if len(parts) == 1:
        return parts[0]
    return shapely.MultiPolygon(parts)


def _union(geoms: Sequence[Any]) -> Any:
    geoms = [g for g in geoms if g is not None and not shapely.is_empty(g)]
    if not geoms:
        return shapely.Polygon()
    return _clean(shapely.union_all(np.asarray(geoms, dtype=object)))


def _shared(a: Any, b: Any) -> float:
    return float(shapely.length(shapely.intersection(shapely.boundary(a), shapely.boundary(b))))


def _footprints(layers: Layers, ids: Iterable[str]) -> dict[str, Any]:
    b = layers.buildings
    bid = b["building_id"].astype(str)
    want = set(map(str, ids))
    sub = b[bid.isin(want)]
    out = dict(zip(sub["building_id"].astype(str), sub.geometry, strict=True))
    missing = sorted(want - set(out))
    if missing:
        raise LayerError(
            f"building(s) {missing[:5]} of the plan are not in layers.buildings; pass the "
            "layers the plan was made from"
        )
    return out


def _near(frame: gpd.GeoDataFrame | None, area: Any) -> np.ndarray | None:
    if frame is None or len(frame) == 0:
        return None
    g = np.asarray(frame.geometry.array, dtype=object)
    idx = shapely.STRtree(g).query(area, predicate="intersects")
    return g[np.sort(idx)]


def _near_compounds(layers: Layers, area: Any) -> pd.DataFrame | None:
    cp = layers.compounds
    if cp is None or len(cp) == 0:
        return None
    g = np.asarray(cp.geometry.array, dtype=object)
    idx = np.sort(shapely.STRtree(g).query(area, predicate="intersects"))
    return pd.DataFrame(
        {"compound_id": cp["compound_id"].astype(str).to_numpy()[idx], "geometry": g[idx]}
    )


def _cells(layers: Layers, polygon: Any, rows: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
    """Tessellate ``polygon`` by the buildings in ``rows``: cells and building → cell."""
    from gridmap.partition.units import build_units

    per = rows.groupby("building_id", sort=True)["households"].sum()
    foot = _footprints(layers, per.index)
    frame = pd.DataFrame(
        {
            "building_id": per.index.astype(str).to_numpy(dtype=object),
            "households": per.to_numpy(dtype=np.int64),
            "geometry": [foot[b] for b in per.index],
        }
    )
    if "compound_id" in layers.buildings.columns:
        comp = layers.buildings.set_index(layers.buildings["building_id"].astype(str))
        frame["compound_id"] = comp["compound_id"].reindex(frame["building_id"]).to_numpy()
    units = build_units(
        polygon,
        frame,
        roads=_near(layers.roads, polygon),
        barriers=_near(layers.barriers, polygon),
        compounds=_near_compounds(layers, polygon),
        min_households=0,
        max_households=_NO_SPLIT,
        target=1,
    )
    mem = units.members
    return units.cells, dict(zip(mem["building_id"].astype(str), mem["cell"], strict=True))


def _rep_points(layers: Layers, ids: Iterable[str], within: Any | None = None) -> dict[str, Any]:
    foot = _footprints(layers, ids)
    out = {}
    for b, g in foot.items():
        if within is not None:
            clipped = shapely.intersection(g, within)
            if shapely.area(clipped) > 0:
                g = clipped
        out[b] = shapely.point_on_surface(g)
    return out


# ----------------------------------------------------------------------------- finishing


def _boundary_descs(grids: gpd.GeoDataFrame, layers: Layers, communities: set[str]) -> pd.Series:
    """四至 of the grids of ``communities`` and their neighbours, others unchanged."""
    from gridmap.partition.codes import boundary_descriptions

    out = (
        grids["boundary_desc"].copy()
        if "boundary_desc" in grids
        else pd.Series(None, index=grids.index)
    )
    mine = grids["community_id"].astype(str).isin(communities).to_numpy()
    if not mine.any():
        return out
    geoms = np.asarray(grids.geometry.array, dtype=object)
    tree = shapely.STRtree(geoms)
    ring1 = mine.copy()
    ring1[tree.query(geoms[mine], predicate="intersects")[1]] = True
    ring2 = ring1.copy()
    ring2[tree.query(geoms[ring1], predicate="intersects")[1]] = True
    ctx = grids[ring2]
    text = boundary_descriptions(ctx, layers.roads)
    upd = text[ring1[ring2]]
    out = out.astype(object)
    out.loc[upd.index] = upd.to_numpy()
    return out


def _assemble(
    before: Plan,
    layers: Layers,
    grids: gpd.GeoDataFrame,
    buildings: pd.DataFrame,
    households: pd.DataFrame | None,
    *,
    communities: set[str],
    min_households: int,
    max_households: int,
) -> Plan:
    """Recompute the per-grid columns, 四至 and the report of an edited plan."""
    from gridmap.partition.quality import quality_report

    grids = grids.reset_index(drop=True)
    code = grids["grid_code"].astype(str)
    hh_sum = buildings.groupby("grid_code")["households"].sum()
    nb = buildings.groupby("grid_code")["building_id"].nunique()
    grids["households"] = code.map(hh_sum).fillna(0).astype(np.int64).to_numpy()
    grids["n_buildings"] = code.map(nb).fillna(0).astype(np.int64).to_numpy()
    if (
        households is not None
        and layers.households is not None
        and "persons" in layers.households.columns
    ):
        p = pd.to_numeric(
            households["household_id"].map(
                layers.households.set_index(layers.households["household_id"].astype(str))[
                    "persons"
                ]
            ),
            errors="coerce",
        )
        persons = p.groupby(households["grid_code"].to_numpy()).sum(min_count=1)
        grids["persons"] = code.map(persons).astype(float).to_numpy()
    elif "persons" not in grids.columns:
        grids["persons"] = np.nan
    grids["locked"] = grids["locked"].fillna(False).astype(bool)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=before.crs)
    grids["boundary_desc"] = _boundary_descs(grids, layers, communities).to_numpy()
    grids = grids.sort_values(["community_id", "grid_code"], kind="stable").reset_index(drop=True)
    grids = gpd.GeoDataFrame(
        grids[[*GRID_COLUMNS, "geometry"]], geometry="geometry", crs=before.crs
    )
    buildings = buildings.sort_values(
        ["building_id", "part"], kind="stable", na_position="first"
    ).reset_index(drop=True)
    ids = sorted(set(grids["community_id"].astype(str)))
    sub = layers.subset(ids)
    old_notes: dict[str, str] = {}
    oc = before.report.communities if before.report is not None else None
    if oc is not None and "notes" in oc.columns and "community_id" in oc.columns:
        old_notes = {
            str(c): str(n)
            for c, n in zip(oc["community_id"], oc["notes"], strict=True)
            if str(c) not in communities and isinstance(n, str)
        }
    report = quality_report(
        grids,
        buildings,
        sub,
        min_households=min_households,
        max_households=max_households,
        households=households,
    )
    if old_notes and len(report.communities):
        rc = report.communities.copy()
        keep = rc["community_id"].astype(str).map(old_notes)
        rc["notes"] = keep.where(keep.notna(), rc["notes"])
        report = QualityReport(grids=report.grids, communities=rc, overall=report.overall)
    figures = report.grids.drop(
        columns=[c for c in report.grids.columns if c in grids.columns and c != "grid_code"]
    )
    merged = grids.merge(figures, on="grid_code", how="left", sort=False)
    grids = gpd.GeoDataFrame(merged, geometry="geometry", crs=before.crs)
    return before.replace(
        grids=grids,
        buildings=buildings,
        households=households,
        report=report,
        assignments=_carry_posts(before, grids),
    )


def _carry_posts(before: Plan, grids: gpd.GeoDataFrame) -> pd.DataFrame | None:
    """Return the plan's posts after an edit.

    The people serving a grid that no longer exists (merged, re-partitioned)
    pass to the new grid covering most of its land, so that re-staffing sees
    them as serving there and keeps or moves them with a reason, instead of
    taking them for newcomers. Vacant posts of such a grid are dropped.
    """
    a = before.assignments
    if a is None or "grid_code" not in a.columns or not len(a):
        return a
    code = a["grid_code"].astype("string")
    gone = (code.notna() & ~code.isin(set(grids["grid_code"].astype(str)))).to_numpy()
    if not gone.any():
        return a
    old = before.grids.drop_duplicates("grid_code")
    old_geom = dict(zip(old["grid_code"].astype(str), old.geometry, strict=True))
    new_geoms = np.asarray(grids.geometry.array, dtype=object)
    new_codes = grids["grid_code"].astype(str).to_numpy()
    tree = shapely.STRtree(new_geoms)
    successor: dict[str, str] = {}
    for c in sorted(set(code[gone])):
        geom = old_geom.get(c)
        if geom is None:
            continue
        idx = tree.query(geom, predicate="intersects")
        if len(idx):
            shared = shapely.area(shapely.intersection(new_geoms[idx], geom))
            k = int(np.argmax(shared))
            if shared[k] > 0:
                successor[c] = str(new_codes[idx[k]])
    mapped = code.map(successor)
    serving = (
        a["staff_id"].notna().to_numpy() if "staff_id" in a.columns else np.zeros(len(a), bool)
    )
    keep = ~gone | (mapped.notna().to_numpy() & serving)
    out = a.copy()
    out.loc[gone, "grid_code"] = mapped[gone].to_numpy()
    return out[keep].reset_index(drop=True)


def _staffing_checks(plan: Plan, layers: Layers, codes: set[str]) -> list[dict[str, Any]]:
    """Warnings for the posts of grids ``codes`` that an edit left against the staffing rules."""
    a = plan.assignments
    if a is None or not len(a) or not {"grid_code", "role", "staff_id"} <= set(a.columns):
        return []
    a = a[a["grid_code"].astype("string").isin(codes).fillna(False).to_numpy()]
    serving = a[a["staff_id"].notna()]
    chiefs_all = serving[serving["role"] == "chief"]
    homes: dict[str, set[str]] | None = None  # grids each chief lives in, when known
    if layers.staff is not None and len(chiefs_all):
        from gridmap.staffing import resident_grids

        wanted = set(chiefs_all["staff_id"].astype(str))
        roster = layers.staff[layers.staff["staff_id"].astype(str).isin(wanted)]
        try:
            homes = resident_grids(plan, roster, buildings=layers.buildings)
            for sid in roster["staff_id"].astype(str):  # on the roster, living in no grid
                homes.setdefault(sid, set())
        except GridmapError:  # a roster staffing cannot use: restaff will say why
            homes = None
    present = set(plan.grids["grid_code"].astype(str))
    out: list[dict[str, Any]] = []
    for code in sorted(codes & present):
        rows = a[a["grid_code"].astype(str) == code]
        mine = serving[serving["grid_code"].astype(str) == code]
        chiefs = sorted(mine.loc[mine["role"] == "chief", "staff_id"].astype(str))
        n_workers = int((mine["role"] == "worker").sum())
        problems = []
        if not len(rows):
            problems.append("it has no posts yet")
        if len(chiefs) > 1:
            problems.append(f"it has {len(chiefs)} chiefs 网格长 ({', '.join(chiefs)})")
        if n_workers > 3:
            problems.append(f"it has {n_workers} workers 网格员 (2 or 3 per grid)")
        for sid in chiefs:
            if homes is not None and sid in homes and code not in homes[sid]:
                problems.append(f"its chief {sid} no longer lives in it")
        if problems:
            out.append(
                _violation(
                    "staffing",
                    f"grid {code}: {'; '.join(problems)} after this edit; re-run staffing "
                    "(restaff) to settle its posts, keeping serving people where the rules allow",
                    grid_code=code,
                    community_id=_community_of(plan, code),
                )
            )
    return out


def _checks(plan: Plan, codes: set[str], communities: set[str]) -> list[dict[str, Any]]:
    """Violations of the grids ``codes`` and communities ``communities`` in ``plan``'s report."""
    out: list[dict[str, Any]] = []
    rep = plan.report
    if rep is None:
        return out
    g = rep.grids
    lo = plan.params.get("min_households")
    hi = plan.params.get("max_households")
    if len(g) and "grid_code" in g.columns:
        g = g[g["grid_code"].astype(str).isin(codes)]
        for r in g.to_dict("records"):
            code, cid = str(r["grid_code"]), str(r.get("community_id"))
            if r.get("n_parts") is not None and not pd.isna(r["n_parts"]) and r["n_parts"] > 1:
                out.append(
                    _violation(
                        "contiguity",
                        f"grid {code} would be in {int(r['n_parts'])} separate parts; a grid "
                        "must be one connected polygon (move the cut-off buildings too, or "
                        "to a grid they touch)",
                        grid_code=code,
                        community_id=cid,
                    )
                )
            if bool(r.get("is_enclave")) and not pd.isna(r.get("is_enclave")):
                out.append(
                    _violation(
                        "enclave",
                        f"grid {code} would lie inside grid {r.get('enclosed_by')}; merge them "
                        "or give the enclosed grid a way out",
                        grid_code=code,
                        community_id=cid,
                    )
                )
            in_band = r.get("in_band")
            exempt = bool(r.get("band_exempt")) if not pd.isna(r.get("band_exempt")) else False
            if in_band is not None and not pd.isna(in_band) and not in_band and not exempt:
                out.append(
                    _violation(
                        "band",
                        f"grid {code} holds {r.get('households')} households, outside the band "
                        f"{lo}-{hi}",
                        grid_code=code,
                        community_id=cid,
                    )
                )
    c = rep.communities
    if len(c) and "community_id" in c.columns:
        c = c[c["community_id"].astype(str).isin(communities)]
        for r in c.to_dict("records"):
            cid = str(r["community_id"])
            gap = float(r.get("gap_area_m2") or 0.0)
            over = float(r.get("overlap_area_m2") or 0.0)
            outside = float(r.get("outside_area_m2") or 0.0)
            if gap > _AREA_TOL or over > _AREA_TOL:
                out.append(
                    _violation(
                        "tiling",
                        f"the grids of community {cid} would leave a gap of {gap:.1f} m² and "
                        f"overlap by {over:.1f} m²; grids must cover the community seamlessly",
                        community_id=cid,
                    )
                )
            if outside > _AREA_TOL:
                out.append(
                    _violation(
                        "community",
                        f"grids of community {cid} would extend {outside:.1f} m² beyond it; a "
                        "grid must stay inside its community",
                        community_id=cid,
                    )
                )
    return out


def _conclude(
    op: str,
    before: Plan,
    after: Plan,
    *,
    affected: set[str],
    removed: set[str],
    communities: set[str],
    extra: list[dict[str, Any]],
    strict: bool,
    notes: list[str],
    staffing: dict[str, Any] | None = None,
    layers: Layers | None = None,
) -> EditResult:
    """Validate, downgrade pre-existing errors, build the result; refuse when needed."""
    violations = [*extra, *_checks(after, affected, communities)]
    if layers is not None and after is not before:
        violations += _staffing_checks(after, layers, affected)
    old = {
        (v["check"], v["grid_code"], v["community_id"])
        for v in _checks(before, affected | removed, communities)
        if v["severity"] == "error"
    }
    for v in violations:
        if v["severity"] == "error" and (v["check"], v["grid_code"], v["community_id"]) in old:
            v["severity"] = "warning"
            v["message"] += " (already so before this edit)"
    rep = after.report
    if rep is None:
        figures = QualityReport(pd.DataFrame(), pd.DataFrame(), {})
    else:
        gmask: Any = rep.grids["grid_code"].astype(str).isin(affected) if len(rep.grids) else []
        cmask: Any = (
            rep.communities["community_id"].astype(str).isin(communities)
            if len(rep.communities)
            else []
        )
        figures = QualityReport(
            grids=rep.grids[gmask].reset_index(drop=True),
            communities=rep.communities[cmask].reset_index(drop=True),
            overall=dict(rep.overall),
        )
    ok = not any(v["severity"] == "error" for v in violations)
    result = EditResult(
        plan=after if ok else before,
        violations=violations,
        figures=figures,
        ok=ok,
        op=op,
        affected=sorted(affected),
        removed=sorted(removed),
        notes=notes,
        staffing=staffing,
    )
    if not ok and strict:
        msgs = "; ".join(v["message"] for v in result.errors[:5])
        raise EditRefusedError(f"{op} refused: {msgs}", result)
    return result


def _refuse_early(
    op: str, plan: Plan, violations: list[dict[str, Any]], strict: bool, codes: set[str]
) -> EditResult:
    comms = {v["community_id"] for v in violations if v["community_id"]}
    return _conclude(
        op,
        plan,
        plan,
        affected=codes,
        removed=set(),
        communities=comms,
        extra=violations,
        strict=strict,
        notes=[],
    )


def _community_of(plan: Plan, code: str) -> str:
    return str(plan.grids["community_id"].iloc[_row_of(plan, code)])


def _hh_frame(plan: Plan) -> pd.DataFrame | None:
    return None if plan.households is None else plan.households.copy()


# ----------------------------------------------------------------------------- move


def move_buildings(
    plan: Plan,
    layers: Layers,
    building_ids: Iterable[str],
    to_grid: str,
    *,
    strict: bool = False,
    min_households: int | None = None,
    max_households: int | None = None,
) -> EditResult:
    """Move buildings (with their land and households) to another grid of their community.

    Every row of a moved building moves (all parts of a split tower). The
    source grids are re-tessellated with their own buildings and the moved
    buildings' cells join ``to_grid``; see the module docstring. A source grid
    left without buildings is dissolved into ``to_grid`` (its code is removed).

    Parameters
    ----------
    plan : Plan
        The plan to edit.
    layers : Layers
        The layers it was made from (building footprints, roads …), in its CRS.
    building_ids : iterable of str
        Buildings to move.
    to_grid : str
        Grid code of the destination.
    strict : bool, default False
        Raise :class:`EditRefusedError` instead of returning ``ok=False``.
    min_households, max_households : int, optional
        The band; default the plan's ``params``.

    Returns
    -------
    EditResult

    Raises
    ------
    NotFoundError
        Unknown building (not in the plan) or grid code.
    EditRefusedError
        With ``strict=True``, when a hard rule is broken.

    Examples
    --------
    >>> plan, layers = _example()
    >>> r = move_buildings(plan, layers, ["b3"], "320508019044002")
    >>> r.ok, r.plan.grids["households"].tolist()
    (True, [300, 500])
    >>> [round(a, -1) for a in r.plan.grids.area]
    [15000.0, 25000.0]
    """
    _check_inputs(plan, layers)
    lo, hi = _band(plan, min_households, max_households)
    ids = list(dict.fromkeys(str(b) for b in building_ids))
    if not ids:
        raise InputError("building_ids is empty; name at least one building to move")
    to_grid = str(to_grid)
    t = _row_of(plan, to_grid)
    pb = plan.buildings
    bid = pb["building_id"].astype(str)
    unknown = [b for b in ids if b not in set(bid)]
    if unknown:
        raise NotFoundError(
            f"building(s) {unknown[:5]} are in no grid of this plan; use ids from "
            "plan.buildings['building_id']"
        )
    moving = bid.isin(ids).to_numpy()
    gc = pb["grid_code"].astype(str)
    sources = sorted(set(gc[moving]) - {to_grid})
    target_cid = _community_of(plan, to_grid)
    early = _locked_violations(plan, [to_grid, *sources])
    for s in sources:
        cid = _community_of(plan, s)
        if cid != target_cid:
            names = sorted(set(bid[moving & (gc == s).to_numpy()]))
            early.append(
                _violation(
                    "community",
                    f"building(s) {names[:5]} lie in community {cid}, grid {to_grid} in "
                    f"{target_cid}; a grid never crosses a community boundary",
                    grid_code=s,
                    community_id=cid,
                )
            )
    if early:
        return _refuse_early("move_buildings", plan, early, strict, {to_grid, *sources})
    notes: list[str] = []
    if not sources:  # nothing to do: the plan is returned as it is
        rep = plan.report
        return EditResult(
            plan=plan,
            violations=[],
            figures=QualityReport(pd.DataFrame(), pd.DataFrame(), dict(rep.overall))
            if rep is not None
            else QualityReport(pd.DataFrame(), pd.DataFrame(), {}),
            ok=True,
            op="move_buildings",
            notes=[f"every named building is already in grid {to_grid}; nothing moved"],
        )
    geoms = list(plan.grids.geometry)
    extra: list[dict[str, Any]] = []
    removed: set[str] = set()
    target_geom = geoms[t]
    for s in sources:
        i = _row_of(plan, s)
        rows = pb[(gc == s).to_numpy()]
        cells, cell_of = _cells(layers, geoms[i], rows)
        moved_here = set(bid[moving & (gc == s).to_numpy()])
        stay_ids = set(rows["building_id"].astype(str)) - moved_here
        moved_cells = {cell_of[b] for b in moved_here}
        shared = sorted(b for b in stay_ids if cell_of[b] in moved_cells)
        if shared:
            extra.append(
                _violation(
                    "building_cell",
                    f"building(s) {shared[:5]} overlap moved building(s) and share their land; "
                    "move them together",
                    grid_code=s,
                    community_id=target_cid,
                )
            )
            continue
        land = _union([cells[c] for c in sorted(moved_cells)])
        rest = _clean(shapely.difference(geoms[i], land))
        if not stay_ids:
            target_geom = _union([target_geom, geoms[i]])
            removed.add(s)
            notes.append(f"grid {s} lost all its buildings and was dissolved into {to_grid}")
            continue
        target_geom = _union([target_geom, land])
        parts = _polys(rest)
        if len(parts) > 1:
            reps = _rep_points(layers, stay_ids, within=geoms[i])
            keep, give = [], []
            for p in parts:
                holds = any(shapely.covers(p, pt) for pt in reps.values())
                if not holds and _shared(p, target_geom) > _EDGE_TOL:
                    give.append(p)
                else:
                    keep.append(p)
            if give:
                target_geom = _union([target_geom, *give])
                notes.append(
                    f"{len(give)} piece(s) of land of grid {s} without buildings went with the "
                    f"moved buildings to {to_grid}"
                )
            rest = _union(keep)
        geoms[i] = rest
    if any(v["severity"] == "error" for v in extra):
        return _refuse_early("move_buildings", plan, extra, strict, {to_grid, *sources})
    geoms[t] = target_geom
    grids = plan.grids.copy()
    grids["geometry"] = gpd.GeoSeries(geoms, crs=plan.crs).to_numpy()
    grids = grids[~grids["grid_code"].astype(str).isin(removed)]
    buildings = pb.copy()
    buildings.loc[moving, "grid_code"] = to_grid
    buildings.loc[buildings["grid_code"].astype(str).isin(removed), "grid_code"] = to_grid
    households = _hh_frame(plan)
    if households is not None:
        hb = households["building_id"].astype(str)
        m = hb.isin(ids) | households["grid_code"].astype(str).isin(removed)
        households.loc[m.to_numpy(), "grid_code"] = to_grid
    after = _assemble(
        plan,
        layers,
        grids,
        buildings,
        households,
        communities={target_cid},
        min_households=lo,
        max_households=hi,
    )
    return _conclude(
        "move_buildings",
        plan,
        after,
        affected={to_grid, *sources} - removed,
        removed=removed,
        communities={target_cid},
        extra=extra,
        strict=strict,
        notes=notes,
        layers=layers,
    )


# ----------------------------------------------------------------------------- merge


def merge_grids(
    plan: Plan,
    layers: Layers,
    codes: Sequence[str],
    *,
    strict: bool = False,
    min_households: int | None = None,
    max_households: int | None = None,
) -> EditResult:
    """Merge grids of one community into the first one named (it keeps its code).

    Parameters
    ----------
    plan : Plan
        The plan to edit.
    layers : Layers
        The layers it was made from.
    codes : sequence of str
        Two or more grid codes; the first keeps its code and name.
    strict : bool, default False
        Raise :class:`EditRefusedError` instead of returning ``ok=False``.
    min_households, max_households : int, optional
        The band; default the plan's ``params``.

    Returns
    -------
    EditResult

    Examples
    --------
    >>> plan, layers = _example()
    >>> r = merge_grids(plan, layers, ["320508019044001", "320508019044002"])
    >>> r.ok, r.plan.grids["grid_code"].tolist(), r.removed
    (True, ['320508019044001'], ['320508019044002'])
    >>> r.violations[0]["check"], r.violations[0]["severity"]  # 800 > 500: a warning
    ('band', 'warning')
    """
    _check_inputs(plan, layers)
    lo, hi = _band(plan, min_households, max_households)
    codes = list(dict.fromkeys(str(c) for c in codes))
    if len(codes) < 2:
        raise InputError(f"merge needs two or more distinct grid codes, got {codes}")
    rows = [_row_of(plan, c) for c in codes]
    keep = codes[0]
    cid = _community_of(plan, keep)
    early = _locked_violations(plan, codes)
    for c in codes[1:]:
        other = _community_of(plan, c)
        if other != cid:
            early.append(
                _violation(
                    "community",
                    f"grid {c} is in community {other}, grid {keep} in {cid}; only grids of "
                    "one community can be merged",
                    grid_code=c,
                    community_id=other,
                )
            )
    if early:
        return _refuse_early("merge", plan, early, strict, set(codes))
    geom = _union([plan.grids.geometry.iloc[i] for i in rows])
    grids = plan.grids.copy()
    geoms = list(grids.geometry)
    geoms[rows[0]] = geom
    grids["geometry"] = gpd.GeoSeries(geoms, crs=plan.crs).to_numpy()
    removed = set(codes[1:])
    grids = grids[~grids["grid_code"].astype(str).isin(removed)]
    buildings = plan.buildings.copy()
    buildings.loc[buildings["grid_code"].astype(str).isin(removed).to_numpy(), "grid_code"] = keep
    households = _hh_frame(plan)
    if households is not None:
        m = households["grid_code"].astype(str).isin(removed).to_numpy()
        households.loc[m, "grid_code"] = keep
    after = _assemble(
        plan,
        layers,
        grids,
        buildings,
        households,
        communities={cid},
        min_households=lo,
        max_households=hi,
    )
    notes = [f"grid(s) {', '.join(sorted(removed))} merged into {keep}"]
    return _conclude(
        "merge",
        plan,
        after,
        affected={keep},
        removed=removed,
        communities={cid},
        extra=[],
        strict=strict,
        notes=notes,
        layers=layers,
    )


# ----------------------------------------------------------------------------- split


def _line_pieces(
    plan: Plan,
    layers: Layers,
    code: str,
    line: Any,
    rows: pd.DataFrame,
    cut: str,
) -> tuple[list[Any], dict[str, int], list[dict[str, Any]], list[str]]:
    """Pieces of a grid cut by ``line`` and the piece of each building."""
    i = _row_of(plan, code)
    poly = plan.grids.geometry.iloc[i]
    cid = _community_of(plan, code)
    if isinstance(line, str):
        line = shapely.from_wkt(line)
    if line is None or shapely.get_type_id(line) not in (1, 5):
        raise InputError(
            "a split line must be a LineString (or MultiLineString) in the plan's CRS, "
            f"e.g. 'LINESTRING (x0 y0, x1 y1)'; got {getattr(line, 'geom_type', line)!r}"
        )
    pieces = _polys(_shapely_split(poly, line))
    if len(pieces) < 2:
        raise InputError(
            f"the line does not cut grid {code} in two: draw it across the grid from one edge "
            "to the other (it must cross the boundary twice)"
        )
    ids = sorted(set(rows["building_id"].astype(str)))
    foot = _footprints(layers, ids)
    reps = _rep_points(layers, ids, within=poly)
    piece_of: dict[str, int] = {}
    cut_ids: list[str] = []
    for b in ids:
        fp = shapely.intersection(foot[b], poly)
        if shapely.area(fp) <= 0:
            fp = foot[b]
        shares = np.array([shapely.area(shapely.intersection(fp, p)) for p in pieces])
        crossed = int((shares > 0.01).sum()) > 1
        if crossed:
            cut_ids.append(b)
        if crossed and cut == "larger":
            piece_of[b] = int(np.argmax(shares))
            continue
        hit = [k for k, p in enumerate(pieces) if shapely.covers(p, reps[b])]
        piece_of[b] = hit[0] if hit else int(np.argmax(shares))
    violations: list[dict[str, Any]] = []
    notes: list[str] = []
    if cut_ids and cut == "refuse":
        violations.append(
            _violation(
                "building_cut",
                f"the line cuts through building(s) {', '.join(cut_ids[:10])}; draw it around "
                "them or pass cut='larger' to give each to the side holding most of it",
                grid_code=code,
                community_id=cid,
            )
        )
    elif cut_ids:
        notes.append(
            f"building(s) {', '.join(cut_ids[:10])} cut by the line went to the larger side"
        )
    if violations:
        return pieces, piece_of, violations, notes
    # pieces without buildings join the neighbouring piece sharing most boundary
    alive = [k for k in range(len(pieces)) if k in set(piece_of.values())]
    if not alive or len(alive) < 2:
        raise InputError(
            f"the line leaves every building of grid {code} on one side; draw it between "
            "buildings so that each side holds some"
        )
    geoms = {k: pieces[k] for k in alive}
    for k in range(len(pieces)):
        if k in geoms:
            continue
        best = max(alive, key=lambda a: _shared(pieces[k], geoms[a]))
        geoms[best] = _union([geoms[best], pieces[k]])
        notes.append("a piece of land without buildings joined the neighbouring side")
    order = {k: n for n, k in enumerate(alive)}
    return (
        [geoms[k] for k in alive],
        {b: order[k] for b, k in piece_of.items()},
        violations,
        notes,
    )


def _repartition_pieces(
    plan: Plan,
    layers: Layers,
    code: str,
    rows: pd.DataFrame,
    *,
    n_grids: int | None,
    seed: int | None,
    lo: int,
    hi: int,
) -> tuple[list[Any], pd.DataFrame, pd.DataFrame | None]:
    """Run the partitioner on one grid: pieces, building rows (``piece``), household rows."""
    from gridmap.partition import partition

    i = _row_of(plan, code)
    poly = plan.grids.geometry.iloc[i]
    cid = _community_of(plan, code)
    comm = layers.communities[layers.communities["community_id"].astype(str) == cid]
    comm = comm.iloc[:1].copy()
    comm["geometry"] = gpd.GeoSeries([poly], crs=layers.crs, index=comm.index)
    comm = gpd.GeoDataFrame(comm, geometry="geometry", crs=layers.crs)
    per = rows.groupby("building_id", sort=True)["households"].sum()
    lb = layers.buildings
    sub_b = lb[lb["building_id"].astype(str).isin(set(per.index.astype(str)))].copy()
    sub_b["households"] = (
        sub_b["building_id"].astype(str).map(per).fillna(0).astype(np.int64).to_numpy()
    )
    sub_b["community_id"] = cid
    sub_h = None
    if layers.households is not None:
        lh = layers.households
        if plan.households is not None:
            mine = set(
                plan.households.loc[
                    plan.households["grid_code"].astype(str) == code, "household_id"
                ].astype(str)
            )
            sub_h = lh[lh["household_id"].astype(str).isin(mine)]
        else:
            sub_h = lh[lh["building_id"].astype(str).isin(set(sub_b["building_id"].astype(str)))]
        sub_h = sub_h.reset_index(drop=True)
    sub = layers.replace(
        communities=comm.reset_index(drop=True),
        buildings=sub_b.reset_index(drop=True),
        households=sub_h,
    )
    part = partition(
        sub, min_households=lo, max_households=hi, n_grids=n_grids, seed=seed, n_jobs=1
    )
    codes = part.grids["grid_code"].astype(str).tolist()
    if len(codes) < 2:
        raise InputError(
            f"the partitioner keeps grid {code} ({int(per.sum())} households) whole for the band "
            f"{lo}-{hi}; ask for n_grids=2 (or more) or split it along a line"
        )
    k_of = {c: k for k, c in enumerate(codes)}
    brows = part.buildings.assign(piece=part.buildings["grid_code"].astype(str).map(k_of))
    hrows = None
    if part.households is not None:
        hrows = part.households.assign(piece=part.households["grid_code"].astype(str).map(k_of))
    return list(part.grids.geometry), brows, hrows


def split_grid(
    plan: Plan,
    layers: Layers,
    code: str,
    *,
    line: Any = None,
    n_grids: int | None = None,
    cut: str = "refuse",
    seed: int | None = 0,
    strict: bool = False,
    min_households: int | None = None,
    max_households: int | None = None,
) -> EditResult:
    """Split a grid along a drawn line, or by re-running the partitioner on it alone.

    Parameters
    ----------
    plan : Plan
        The plan to edit.
    layers : Layers
        The layers it was made from.
    code : str
        The grid to split.
    line : shapely LineString or WKT str, optional
        The cut, in the plan's CRS. Without it the partitioner splits the grid
        (restricted to its polygon and buildings) into ``n_grids`` grids.
    n_grids : int, optional
        Number of grids for the partitioner (default: what the band asks for).
    cut : {"refuse", "larger"}, default "refuse"
        What to do with buildings the line cuts through (see module docstring).
    seed : int or None, default 0
        Seed of the partitioner.
    strict : bool, default False
        Raise :class:`EditRefusedError` instead of returning ``ok=False``.
    min_households, max_households : int, optional
        The band; default the plan's ``params``.

    Returns
    -------
    EditResult
        The piece with most households keeps ``code``; the others get new codes.

    Examples
    --------
    >>> plan, layers = _example()
    >>> x = 500_000 + 100  # between buildings b1 and b2
    >>> r = split_grid(plan, layers, "320508019044001",
    ...                line=f"LINESTRING ({x} 3544990, {x} 3545110)")
    >>> r.plan.grids[["grid_code", "households"]].values.tolist()
    [['320508019044001', 200], ['320508019044002', 400], ['320508019044003', 200]]
    >>> r.ok, [v["check"] for v in r.violations]
    (True, [])
    """
    _check_inputs(plan, layers)
    lo, hi = _band(plan, min_households, max_households)
    if cut not in ("refuse", "larger"):
        raise InputError(f"cut must be 'refuse' or 'larger', got {cut!r}")
    code = str(code)
    cid = _community_of(plan, code)
    early = _locked_violations(plan, [code])
    if early:
        return _refuse_early("split", plan, early, strict, {code})
    pb = plan.buildings
    in_grid = (pb["grid_code"].astype(str) == code).to_numpy()
    rows = pb[in_grid]
    if rows["building_id"].nunique() < 2:
        raise InputError(
            f"grid {code} holds {rows['building_id'].nunique()} building(s); a split needs at "
            "least two buildings (one on each side)"
        )
    notes: list[str] = []
    extra: list[dict[str, Any]] = []
    households = _hh_frame(plan)
    if line is not None:
        pieces, piece_of, extra, notes = _line_pieces(plan, layers, code, line, rows, cut)
        if extra:
            return _refuse_early("split", plan, extra, strict, {code})
        new_rows = rows.assign(piece=rows["building_id"].astype(str).map(piece_of).to_numpy())
        hh_piece = None
        if households is not None:
            hh_piece = (
                households.loc[
                    (households["grid_code"].astype(str) == code).to_numpy(), "building_id"
                ]
                .astype(str)
                .map(piece_of)
            )
    else:
        pieces, new_rows, hrows = _repartition_pieces(
            plan, layers, code, rows, n_grids=n_grids, seed=seed, lo=lo, hi=hi
        )
        notes.append(f"grid {code} re-partitioned into {len(pieces)} grids")
        hh_piece = None
        if households is not None:
            mine = households.loc[(households["grid_code"].astype(str) == code).to_numpy()]
            if hrows is not None:
                hp = dict(zip(hrows["household_id"].astype(str), hrows["piece"], strict=True))
                hh_piece = mine["household_id"].astype(str).map(hp)
            else:
                first = new_rows.drop_duplicates("building_id").set_index("building_id")["piece"]
                hh_piece = mine["building_id"].astype(str).map(first)
    hh_by_piece = new_rows.groupby("piece")["households"].sum()
    # most households keeps the code; ties: the first piece in reading order (north, then west)
    centres = [shapely.centroid(p) for p in pieces]
    main = min(
        range(len(pieces)),
        key=lambda k: (
            -float(hh_by_piece.get(k, 0)),
            -round(centres[k].y, 1),
            round(centres[k].x, 1),
        ),
    )
    i = _row_of(plan, code)
    base = plan.grids.iloc[[i]]
    others = plan.grids.drop(index=plan.grids.index[i])
    new = gpd.GeoDataFrame(
        pd.concat([base] * len(pieces), ignore_index=True), geometry="geometry", crs=plan.crs
    )
    new["geometry"] = gpd.GeoSeries(pieces, crs=plan.crs).to_numpy()
    new["locked"] = False
    tmp_codes = [code if k == main else f"\x00new{k}" for k in range(len(pieces))]
    new["grid_code"] = tmp_codes
    grids = gpd.GeoDataFrame(
        pd.concat([others, new], ignore_index=True), geometry="geometry", crs=plan.crs
    )
    final = _recode(grids, layers, cid)
    code_of = {t: final[t] for t in tmp_codes}
    piece_code = [code_of[t] for t in tmp_codes]
    grids["grid_code"] = grids["grid_code"].map(lambda c: final.get(c, c))
    grids["name"] = grids["grid_code"].map(final.names).fillna(grids["name"])
    new_rows = new_rows.assign(grid_code=[piece_code[int(k)] for k in new_rows["piece"]])
    buildings = pd.concat(
        [pb[~in_grid], new_rows[["building_id", "grid_code", "households", "part"]]],
        ignore_index=True,
    )
    buildings = (
        buildings[list(pb.columns)] if set(pb.columns) <= set(buildings.columns) else buildings
    )
    if households is not None and hh_piece is not None:
        m = (households["grid_code"].astype(str) == code).to_numpy()
        households.loc[m, "grid_code"] = [
            code if pd.isna(k) else piece_code[int(k)] for k in hh_piece
        ]
    after = _assemble(
        plan,
        layers,
        grids,
        buildings,
        households,
        communities={cid},
        min_households=lo,
        max_households=hi,
    )
    new_codes = [c for c in piece_code if c != code]
    notes.append(f"grid {code} split; new grid(s) {', '.join(new_codes)}")
    return _conclude(
        "split",
        plan,
        after,
        affected=set(piece_code),
        removed=set(),
        communities={cid},
        extra=extra,
        strict=strict,
        notes=notes,
        layers=layers,
    )


class _Codes(dict[str, str]):
    """Temporary code → final code, with ``names`` final code → name."""

    names: dict[str, str]


def _recode(grids: gpd.GeoDataFrame, layers: Layers, cid: str) -> _Codes:
    """Give final codes to the grids of ``cid`` whose code is temporary (starts with NUL)."""
    from gridmap.partition.codes import assign_codes

    mine = grids[grids["community_id"].astype(str) == cid]
    codes = mine["grid_code"].astype(str)
    keep = {idx: c for idx, c in codes.items() if not c.startswith("\x00")}
    coded = assign_codes(mine, layers.communities, keep=keep)
    out = _Codes()
    out.names = {}
    for idx, c in codes.items():
        final = str(coded.loc[idx, "grid_code"])
        if c.startswith("\x00"):
            out[c] = final
            out.names[final] = str(coded.loc[idx, "name"])
        else:
            out[c] = c
    return out


# ----------------------------------------------------------------------------- lock


def lock_grids(
    plan: Plan,
    layers: Layers,
    codes: Iterable[str],
    *,
    locked: bool = True,
) -> EditResult:
    """Lock (or, with ``locked=False``, unlock) grids: locked grids refuse every other edit.

    A locked grid is kept exactly by :func:`repartition` (geometry, code,
    members). Locking changes no figure.

    Parameters
    ----------
    plan : Plan
        The plan to edit.
    layers : Layers
        The layers it was made from (only checked for the CRS).
    codes : iterable of str
        Grid codes.
    locked : bool, default True
        The new flag.

    Returns
    -------
    EditResult

    Examples
    --------
    >>> plan, layers = _example()
    >>> r = lock_grids(plan, layers, ["320508019044001"])
    >>> r.plan.grids["locked"].tolist()
    [True, False]
    >>> move_buildings(r.plan, layers, ["b3"], "320508019044002").violations[0]["check"]
    'locked'
    """
    _check_inputs(plan, layers)
    codes = list(dict.fromkeys(str(c) for c in codes))
    if not codes:
        raise InputError("name at least one grid code to lock or unlock")
    rows = [_row_of(plan, c) for c in codes]
    grids = plan.grids.copy()
    flags = grids["locked"].fillna(False).astype(bool).to_numpy().copy()
    op = "lock" if locked else "unlock"
    same = [c for c, i in zip(codes, rows, strict=True) if flags[i] == bool(locked)]
    codes = [c for c in codes if c not in same]
    notes = [f"{len(same)} grid(s) already {op}ed: {', '.join(same[:5])}"] if same else []
    flags[rows] = bool(locked)
    grids["locked"] = flags
    after = plan.replace(grids=grids) if codes else plan
    rep = plan.report
    figures = (
        QualityReport(
            grids=rep.grids[rep.grids["grid_code"].astype(str).isin(codes)].reset_index(drop=True)
            if len(rep.grids)
            else rep.grids,
            communities=rep.communities.iloc[0:0],
            overall=dict(rep.overall),
        )
        if rep is not None
        else QualityReport(pd.DataFrame(), pd.DataFrame(), {})
    )
    return EditResult(
        plan=after,
        violations=[],
        figures=figures,
        ok=True,
        op=op,
        affected=sorted(codes),
        notes=[f"{len(codes)} grid(s) {op}ed", *notes],
    )


# ----------------------------------------------------------------------------- re-run


def repartition(
    plan: Plan,
    layers: Layers,
    *,
    community_ids: Iterable[str] | None = None,
    locked: Iterable[str] | None = None,
    n_grids: int | Mapping[str, int] | None = None,
    seed: int | None = 0,
    strict: bool = False,
    min_households: int | None = None,
    max_households: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EditResult:
    """Re-run the partitioner on the unlocked rest of some communities.

    ``partition(..., previous=plan, locked=...)``: locked grids are kept
    exactly, the other grids start from their current membership (so most
    households keep their grid) and are repaired where they break the band.

    Parameters
    ----------
    plan : Plan
        The plan to edit.
    layers : Layers
        The layers it was made from (may hold changed data).
    community_ids : iterable of str, optional
        Communities to re-run (default: every community of the plan).
    locked : iterable of str, optional
        Grid codes to keep (default: the grids flagged ``locked``).
    n_grids : int or dict, optional
        Passed to the partitioner.
    seed : int or None, default 0
        Seed of the partitioner.
    strict : bool, default False
        Raise :class:`EditRefusedError` instead of returning ``ok=False``.
    min_households, max_households : int, optional
        The band; default the plan's ``params``.
    progress : callable, optional
        ``progress(done, total)`` per community.

    Returns
    -------
    EditResult

    Examples
    --------
    >>> plan, layers = _example()
    >>> r = repartition(lock_grids(plan, layers, ["320508019044002"]).plan, layers)
    >>> r.ok, r.plan.grids["households"].tolist(), r.plan.grids["locked"].tolist()
    (True, [400, 400], [False, True])
    """
    from gridmap.partition import partition

    _check_inputs(plan, layers)
    lo, hi = _band(plan, min_households, max_households)
    plan_comms = sorted(set(plan.grids["community_id"].astype(str)))
    ids = plan_comms if community_ids is None else sorted({str(c) for c in community_ids})
    unknown = sorted(set(ids) - set(plan_comms))
    if unknown:
        raise NotFoundError(
            f"community id(s) {unknown[:5]} have no grids in this plan; use ids from "
            "plan.grids['community_id']"
        )
    in_ids = plan.grids["community_id"].astype(str).isin(ids).to_numpy()
    if locked is None:
        flags = plan.grids["locked"].fillna(False).astype(bool).to_numpy()
        lock = plan.grids.loc[in_ids & flags, "grid_code"].astype(str).tolist()
    else:
        lock = [str(c) for c in locked]
        for c in lock:
            _row_of(plan, c)
        lock = [c for c in lock if _community_of(plan, c) in ids]
    sub = layers.subset(ids)
    part = partition(
        sub,
        min_households=lo,
        max_households=hi,
        n_grids=n_grids,
        seed=seed,
        previous=plan,
        locked=lock,
        n_jobs=1,
        progress=progress,
    )
    keep_grids = plan.grids[~in_ids]
    grids = gpd.GeoDataFrame(
        pd.concat(
            [keep_grids[[*GRID_COLUMNS, "geometry"]], part.grids[[*GRID_COLUMNS, "geometry"]]],
            ignore_index=True,
        ),
        geometry="geometry",
        crs=plan.crs,
    )
    old_codes = set(plan.grids.loc[in_ids, "grid_code"].astype(str))
    pb = plan.buildings
    keep_b = pb[~pb["grid_code"].astype(str).isin(old_codes)]
    buildings = pd.concat([keep_b, part.buildings[list(pb.columns)]], ignore_index=True)
    households = None
    if plan.households is not None and part.households is not None:
        ph = plan.households
        households = pd.concat(
            [ph[~ph["grid_code"].astype(str).isin(old_codes)], part.households[list(ph.columns)]],
            ignore_index=True,
        )
    elif part.households is not None:
        households = part.households
    after = _assemble(
        plan,
        layers,
        grids,
        buildings,
        households,
        communities=set(ids),
        min_households=lo,
        max_households=hi,
    )
    new_codes = set(part.grids["grid_code"].astype(str))
    moved = 0
    if plan.households is not None and households is not None:
        a = plan.households.set_index(plan.households["household_id"].astype(str))["grid_code"]
        b = households.set_index(households["household_id"].astype(str))["grid_code"]
        common = a.index.intersection(b.index)
        moved = int((a[common].astype(str) != b[common].astype(str)).sum())
    notes = [
        f"{len(ids)} communit(ies) re-partitioned with {len(lock)} locked grid(s); "
        f"{len(new_codes)} grids now, {moved} household(s) changed grid"
    ]
    return _conclude(
        "repartition",
        plan,
        after,
        affected=new_codes,
        removed=old_codes - new_codes,
        communities=set(ids),
        extra=[],
        strict=strict,
        notes=notes,
        layers=layers,
    )


# ----------------------------------------------------------------------------- staffing


def restaff(
    plan: Plan,
    layers: Layers,
    *,
    staff: pd.DataFrame | None = None,
    **options: Any,
) -> EditResult:
    """Re-run staffing, keeping serving people in their posts where the rules allow.

    :func:`gridmap.staffing.assign_staff` with the plan's current
    assignments as ``previous`` (stability). Vacant posts are warnings.

    Parameters
    ----------
    plan : Plan
        The plan to staff.
    layers : Layers
        The layers (``staff`` roster and building footprints).
    staff : DataFrame, optional
        A roster to use instead of ``layers.staff``.
    **options
        Passed to ``assign_staff`` (``workers``, ``max_distance`` …).

    Returns
    -------
    EditResult
        ``staffing`` holds the summary; the grids are unchanged.
    """
    from gridmap.staffing import assign_staff

    _check_inputs(plan, layers)
    roster = staff if staff is not None else layers.staff
    if roster is None or len(roster) == 0:
        raise LayerError(
            "no staff roster: import a staff layer with the layers, or pass staff=<GeoDataFrame>"
        )
    options.setdefault("previous", plan.assignments)
    res = assign_staff(plan, roster, buildings=layers.buildings, **options)
    after = res.to_plan(plan)
    violations = [
        _violation(
            "staffing",
            f"grid {r['grid_code']}: {int(r['missing'])} {r['role']} post(s) vacant: {r['reason']}",
            grid_code=str(r["grid_code"]),
        )
        for r in res.shortfalls.to_dict("records")
    ]
    rep = plan.report
    return EditResult(
        plan=after,
        violations=violations,
        figures=rep if rep is not None else QualityReport(pd.DataFrame(), pd.DataFrame(), {}),
        ok=True,
        op="restaff",
        affected=sorted(set(res.assignments["grid_code"].astype(str))),
        notes=[f"{len(res.moves)} person(s) changed post"],
        staffing=dict(res.summary),
    )


# ----------------------------------------------------------------------------- dispatch

#: Operation name → function, for :func:`apply_edit` (and the HTTP API).
EDIT_OPS: dict[str, Callable[..., EditResult]] = {
    "move_buildings": move_buildings,
    "merge": merge_grids,
    "split": split_grid,
    "lock": lock_grids,
    "unlock": lambda plan, layers, codes, **kw: lock_grids(plan, layers, codes, locked=False),
    "repartition": repartition,
    "restaff": restaff,
}


def apply_edit(plan: Plan, layers: Layers, op: str, **params: Any) -> EditResult:
    """Apply one edit by name: ``op`` is a key of :data:`EDIT_OPS`, ``params`` its arguments.

    Parameters
    ----------
    plan : Plan
        The plan to edit.
    layers : Layers
        The layers it was made from.
    op : str
        ``move_buildings`` (``building_ids``, ``to_grid``), ``merge`` (``codes``),
        ``split`` (``code``, ``line`` or ``n_grids``, ``cut``), ``lock`` /
        ``unlock`` (``codes``), ``repartition`` (``community_ids``, ``locked``,
        ``n_grids``, ``seed``) or ``restaff`` (options of ``assign_staff``).
    **params
        The operation's arguments (plus ``strict`` where it applies).

    Returns
    -------
    EditResult

    Examples
    --------
    >>> plan, layers = _example()
    >>> apply_edit(plan, layers, "lock", codes=["320508019044002"]).plan.grids["locked"].tolist()
    [False, True]
    >>> apply_edit(plan, layers, "paint")
    Traceback (most recent call last):
    ...
    gridmap.errors.InputError: unknown edit op 'paint'; use one of move_buildings, merge, ...
    """
    fn = EDIT_OPS.get(op)
    if fn is None:
        raise InputError(f"unknown edit op {op!r}; use one of {', '.join(EDIT_OPS)}")
    try:
        return fn(plan, layers, **params)
    except TypeError as exc:
        if "argument" not in str(exc):
            raise
        raise InputError(f"bad parameters for edit op {op!r}: {exc}") from exc


def _example() -> tuple[Plan, Layers]:
    """Return a 400 m × 100 m community of 8 buildings × 100 households in two grids."""
    from shapely import box

    from gridmap.partition import partition

    x0, y0 = 500_000.0, 3_545_000.0
    comms = gpd.GeoDataFrame(
        {"community_id": ["c1"], "name": ["幸福社区"], "code": ["320508019044"]},
        geometry=[box(x0, y0, x0 + 400, y0 + 100)],
        crs=4549,
    )
    blds = gpd.GeoDataFrame(
        {
            "building_id": [f"b{i}" for i in range(8)],
            "households": [100] * 8,
            "community_id": ["c1"] * 8,
        },
        geometry=[box(x0 + 10 + 50 * i, y0 + 30, x0 + 40 + 50 * i, y0 + 70) for i in range(8)],
        crs=4549,
    )
    layers = Layers(communities=comms, buildings=blds, crs=comms.crs)
    return partition(layers, min_households=200, max_households=500), layers
