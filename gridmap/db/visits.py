"""Visits (走访) in the store: records, due lists, a worker's day route, the 四清 register.

Everything is decided by the pure core (:mod:`gridmap.visits`); this module
feeds it from the store and keeps the records:

* **Due lists** (:func:`due_list`) come from the *published* plan holding the
  grid: its households and buildings (the layers' flags and uses), its staff
  posts and the stored records. Nothing about due visits is stored, so when a
  plan is republished the due lists follow the households to their new grids
  and staff at once; :func:`redraw_visits` reports which visits changed hands.
* **Records** (:func:`record_visit`) are checked by
  :func:`gridmap.visits.check_record` against the published plan (the staff
  member serves the household's grid; no visit in the future or before the
  household's ``registered_at``) and written in one transaction with their
  audit row; a follow-up can open a case (:func:`gridmap.db.cases.create_case`)
  in the same transaction — if the case cannot be taken in, nothing is stored.
* **Who may read**: households, their must-visit categories and visit notes are
  personal data. Only the grid's staff (a key bound to the grid), its community
  or sub-district, dispatchers and admins read them — never viewers or
  departments (:class:`~gridmap.errors.VisitScopeError`, HTTP 403) — and every
  such read writes an audit row (``read.personal``, entity ``grid``). The
  register holds counts only.

Scopes use the case roles (:class:`gridmap.cases.Actor`): ``grid_worker`` /
``grid_chief`` of a grid code, ``community`` of a community id, ``subdistrict``
of a street code, ``dispatcher`` and ``admin`` everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gridmap.cases import TZ, Actor, to_local
from gridmap.db.audit import write_audit
from gridmap.db.bulk import decode_geoms, geom_select, in_chunks, rows_frame
from gridmap.db.cases import _db_time, _from_db, create_case
from gridmap.db.models import (
    LAYER_TABLES,
    Assignment,
    CaseRow,
    GridRow,
    PlanBuilding,
    PlanHousehold,
    PlanRow,
    VisitRecordRow,
    table,
    utcnow,
)
from gridmap.db.plans import load_plan
from gridmap.db.session import Store, transaction
from gridmap.errors import InputError, NotFoundError, VisitRecordError, VisitScopeError
from gridmap.layers import SENSITIVE_FLAGS
from gridmap.partition.plan import Plan
from gridmap.visits import (
    OUTCOMES,
    Route,
    VisitRules,
    check_record,
    default_rules,
    due_visits,
    follow_redraw,
    follow_up_ticket,
    plan_route,
    route_stops,
    visit_register,
    visit_window,
)

__all__ = [
    "VISIT_COLUMNS",
    "PERSONAL_ROLES",
    "DayRoute",
    "visible_grids",
    "record_visit",
    "list_visits",
    "due_list",
    "day_route",
    "grid_register",
    "redraw_visits",
]

_V = table(VisitRecordRow)
_P = table(PlanRow)
_G = table(GridRow)
_PB = table(PlanBuilding)
_PH = table(PlanHousehold)
_A = table(Assignment)
_C = table(CaseRow)
_HH = table(LAYER_TABLES["households"])
_B = table(LAYER_TABLES["buildings"])
_S = table(LAYER_TABLES["staff"])
_R = table(LAYER_TABLES["roads"])
_CM = table(LAYER_TABLES["communities"])

#: Columns of a stored visit record (what :func:`list_visits` returns).
VISIT_COLUMNS: tuple[str, ...] = (
    "id",
    "staff_id",
    "visited_at",
    "household_id",
    "building_id",
    "grid_code",
    "plan_id",
    "outcome",
    "notes",
    "follow_up",
    "follow_up_text",
    "case_id",
    "author",
    "created_at",
)

#: Case roles that may read households, must-visit categories and visit notes (in scope).
PERSONAL_ROLES: frozenset[str] = frozenset(
    {"grid_worker", "grid_chief", "community", "subdistrict", "dispatcher", "admin"}
)


# ----------------------------------------------------------------------------- scope


def _published_grids(s: Session) -> pd.DataFrame:
    """grid_code, plan_id, community_id, subdistrict of every published grid."""
    rows = s.execute(
        sa.select(_G.c.grid_code, _G.c.plan_id, _G.c.community_id)
        .join(_P, _P.c.id == _G.c.plan_id)
        .where(_P.c.status == "published")
        .order_by(_G.c.grid_code)
    ).all()
    comm = {
        str(r.community_id): (r.street_code or (r.code[:9] if r.code else None) or "")
        for r in s.execute(sa.select(_CM.c.community_id, _CM.c.street_code, _CM.c.code))
    }
    out = rows_frame(rows, ["grid_code", "plan_id", "community_id"])
    out["subdistrict"] = [comm.get(str(c), "") for c in out["community_id"]]
    return out


def _in_scope(actor: Actor | None, grids: pd.DataFrame, *, personal: bool) -> np.ndarray:
    """Mask of ``grids`` rows the actor may read (personal data or counts only)."""
    n = len(grids)
    if actor is None or actor.role in ("dispatcher", "admin"):
        return np.ones(n, dtype=bool)
    if personal and actor.role not in PERSONAL_ROLES:
        raise VisitScopeError(
            f"households, must-visit categories and visit notes are personal data for the "
            f"grid's staff and up; role {actor.role!r} may not read them. Use a staff key "
            "bound to the grid (gridmap keys create --role staff --scope grid:<code>) or a "
            "dispatcher key"
        )
    kind = actor.unit_kind
    unit = actor.unit
    if actor.role == "viewer":
        if unit is None:
            return np.ones(n, dtype=bool)
        return (
            (grids["grid_code"] == unit)
            | (grids["community_id"] == unit)
            | (grids["subdistrict"] == unit)
        ).to_numpy(dtype=bool)
    col = {"grid": "grid_code", "community": "community_id", "subdistrict": "subdistrict"}.get(
        kind or ""
    )
    if col is None:  # a department sees no grid's round
        return np.zeros(n, dtype=bool)
    return (grids[col].astype(str) == str(unit)).to_numpy(dtype=bool)


def _scope_error(actor: Actor, grid: str) -> VisitScopeError:
    return VisitScopeError(
        f"grid {grid} is outside {actor.role} {actor.unit!r}'s unit; its visits are for the "
        "grid's own staff, its community and sub-district, dispatchers and admins"
    )


def visible_grids(
    target: Store | Session, actor: Actor | None = None, *, personal: bool = True
) -> list[str]:
    """Return the published grid codes ``actor`` may read visits of.

    Parameters
    ----------
    target : Store or Session
    actor : Actor, optional
        ``None``: everything (the operator at the command line).
    personal : bool, default True
        Personal data (due lists, records, routes) or counts only (the register).

    Raises
    ------
    VisitScopeError
        The role may not read personal data at all (viewer, department).

    Examples
    --------
    >>> visible_grids(Store.from_url("sqlite://"))
    []
    """
    with transaction(target) as s:
        grids = _published_grids(s)
    return grids.loc[_in_scope(actor, grids, personal=personal), "grid_code"].astype(str).tolist()


def _grid_plan(s: Session, grid: str) -> int:
    row = s.execute(
        sa.select(_G.c.plan_id)
        .join(_P, _P.c.id == _G.c.plan_id)
        .where(_P.c.status == "published", _G.c.grid_code == str(grid))
    ).first()
    if row is None:
        raise NotFoundError(
            f"grid {grid!r} is not a grid of a published plan; `gridmap plans` and "
            "GET /plans list the plans (publish one with `gridmap publish ID`)"
        )
    return int(row[0])


def _check_grids(s: Session, actor: Actor | None, grids: Sequence[str], *, personal: bool) -> None:
    pub = _published_grids(s)
    pub = pub[pub["grid_code"].astype(str).isin([str(g) for g in grids])]
    ok = _in_scope(actor, pub, personal=personal)
    if actor is not None and not ok.all():
        raise _scope_error(actor, str(pub["grid_code"].iloc[int(np.argmin(ok))]))


# ----------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Context:
    """What the core needs for some grids of one published plan."""

    plan_id: int
    plan: Plan  # every grid and post; buildings and households of ``grids`` only
    grids: tuple[str, ...]
    households: pd.DataFrame
    buildings: gpd.GeoDataFrame


def _plan(s: Session, target: Store | Session, plan_id: int) -> Plan:
    """Return the stored plan, cached on the store per (plan, version)."""
    version = s.execute(sa.select(_P.c.version).where(_P.c.id == int(plan_id))).scalar_one()
    key = ("visits_plan", int(plan_id), int(version))
    cache = target._cache if isinstance(target, Store) else {}
    hit = cache.get(key)
    if hit is None:
        hit = load_plan(s, plan_id)
        if isinstance(target, Store):
            for k in [k for k in cache if isinstance(k, tuple) and k[:2] == key[:2]]:
                del cache[k]
            cache[key] = hit
    return hit


def _bool(values: pd.Series) -> np.ndarray:
    return np.asarray([bool(v) if v is not None and v == v else False for v in values], bool)


def _context(
    s: Session, target: Store | Session, plan_id: int, grids: Sequence[str] | None
) -> _Context:
    backend = s.get_bind().dialect.name
    full = _plan(s, target, plan_id)
    codes = (
        tuple(sorted(full.grids["grid_code"].astype(str)))
        if grids is None
        else tuple(sorted({str(g) for g in grids}))
    )
    pb = full.buildings[full.buildings["grid_code"].astype(str).isin(codes)]
    ph = full.households
    if ph is not None:
        ph = ph[ph["grid_code"].astype(str).isin(codes)].reset_index(drop=True)
    plan = full.replace(buildings=pb.reset_index(drop=True), households=ph)
    crs = pyproj.CRS.from_user_input(full.crs)
    # the households layer: flags, persons, registered_at (an extra column, kept in attrs)
    hcols = [_HH.c.household_id, _HH.c.building_id, _HH.c.persons, _HH.c.attrs]
    hcols += [_HH.c[f] for f in SENSITIVE_FLAGS]
    in_grids = sa.select(_PH.c.household_id).where(
        _PH.c.plan_id == int(plan_id), _PH.c.grid_code.in_(sa.bindparam("codes", expanding=True))
    )
    hrows: list[Any] = []
    brows: list[Any] = []
    for chunk in in_chunks(list(codes)):
        hrows += s.execute(
            sa.select(*hcols, geom_select(_HH.c.geom, backend)).where(
                _HH.c.household_id.in_(in_grids)
            ),
            {"codes": list(chunk)},
        ).all()
        b_in = sa.select(_PB.c.building_id).where(
            _PB.c.plan_id == int(plan_id),
            _PB.c.grid_code.in_(sa.bindparam("codes", expanding=True)),
        )
        brows += s.execute(
            sa.select(
                _B.c.building_id,
                _B.c.use,
                _B.c.name,
                _B.c.households,
                _B.c.community_id,
                geom_select(_B.c.geom, backend),
            ).where(_B.c.building_id.in_(b_in)),
            {"codes": list(chunk)},
        ).all()
    hdf = rows_frame(hrows, [c.name for c in hcols] + ["geom"]).drop_duplicates("household_id")
    hdf = hdf.sort_values("household_id", kind="stable").reset_index(drop=True)
    households = pd.DataFrame(
        {
            "household_id": hdf["household_id"].astype(str),
            "building_id": hdf["building_id"].astype(object),
            "persons": pd.to_numeric(hdf["persons"], errors="coerce"),
            **{f: _bool(hdf[f]) for f in SENSITIVE_FLAGS},
        }
    )
    reg = [a.get("registered_at") if isinstance(a, dict) else None for a in hdf["attrs"]]
    households["registered_at"] = pd.to_datetime(pd.Series(reg, dtype=object), errors="coerce")
    geoms = gpd.GeoSeries(decode_geoms(hdf["geom"].tolist()), crs=4326).to_crs(crs)
    households = gpd.GeoDataFrame(households, geometry=geoms.values, crs=crs)
    bdf = rows_frame(brows, ["building_id", "use", "name", "households", "community_id", "geom"])
    bdf = bdf.drop_duplicates("building_id").sort_values("building_id", kind="stable")
    buildings = gpd.GeoDataFrame(
        {
            "building_id": bdf["building_id"].astype(str).to_numpy(),
            "use": bdf["use"].fillna("other").astype(str).to_numpy(),
            "name": bdf["name"].astype(object).to_numpy(),
            "households": pd.to_numeric(bdf["households"], errors="coerce").to_numpy(),
            "community_id": bdf["community_id"].astype(object).to_numpy(),
        },
        geometry=gpd.GeoSeries(decode_geoms(bdf["geom"].tolist()), crs=4326).to_crs(crs).values,
        crs=crs,
    )
    return _Context(int(plan_id), plan, codes, households, buildings)


def _records(
    s: Session, ctx: _Context, start: dt.datetime | None, end: dt.datetime | None
) -> pd.DataFrame:
    """Return the stored records of the context's households and buildings in [start, end)."""
    backend = s.get_bind().dialect.name
    hh = ctx.households["household_id"].astype(str).tolist()
    bl = ctx.buildings["building_id"].astype(str).tolist()
    cols = [_V.c.household_id, _V.c.building_id, _V.c.visited_at, _V.c.outcome]
    rows: list[Any] = []
    for key, ids in ((_V.c.household_id, hh), (_V.c.building_id, bl)):
        for chunk in in_chunks(ids, 2000):
            q = sa.select(*cols).where(key.in_(list(chunk)))
            if key is _V.c.building_id:
                q = q.where(_V.c.household_id.is_(None))
            if start is not None:
                q = q.where(_V.c.visited_at >= _db_time(start, backend))
            if end is not None:
                q = q.where(_V.c.visited_at < _db_time(end, backend))
            rows += s.execute(q).all()
    out = rows_frame(rows, ["household_id", "building_id", "visited_at", "outcome"])
    local = [_from_db(v) for v in out["visited_at"]]
    out["visited_at"] = pd.to_datetime(
        pd.Series([v.replace(tzinfo=None) if v is not None else None for v in local], dtype=object)
    )
    return out


def _window(month: Any) -> tuple[dt.datetime, dt.datetime, pd.Timestamp, pd.Timestamp]:
    start, end = visit_window(month)
    lo = dt.datetime.combine(start.date(), dt.time(), TZ) - dt.timedelta(days=7)
    hi = dt.datetime.combine(end.date(), dt.time(), TZ) + dt.timedelta(days=8)
    return lo, hi, start, end


def _audit_read(
    s: Session, *, author: str, actor: Actor | None, grids: Sequence[str], what: str, **extra: Any
) -> None:
    for g in grids:
        write_audit(
            s,
            actor=author,
            action="read.personal",
            entity="grid",
            entity_id=g,
            after={"what": what, "role": actor.role if actor else "operator", **extra},
        )


# ----------------------------------------------------------------------------- due lists


def _due_json(due: pd.DataFrame) -> pd.DataFrame:
    out = due.copy()
    for c in ("period_start", "period_end", "visited_at"):
        out[c] = out[c].dt.strftime("%Y-%m-%d").astype(object).where(out[c].notna(), None)
    out["attempts"] = out["attempts"].astype(int)
    return out.astype(object).where(out.notna(), None)


def due_list(
    target: Store | Session,
    *,
    grid: str,
    month: Any,
    author: str,
    actor: Actor | None = None,
    as_of: Any = None,
    rules: VisitRules | None = None,
    categories: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return the visits due in a grid for a month: who, by whom, done / overdue / due.

    Parameters
    ----------
    target : Store or Session
    grid : str
        A grid code of a published plan.
    month : str
        ``"2026-09"`` (or any period :func:`gridmap.visits.visit_window` reads).
    author : str
        Who reads (audit log).
    actor : Actor, optional
        Whose scope applies (``None``: the operator, everything).
    as_of : datetime, optional
        "Today" for ``overdue`` (default: now).
    rules : VisitRules, optional
        Default: the shipped rules.
    categories : sequence of str, optional
        Only these categories (unknown ones raise :class:`~gridmap.errors.VisitRulesError`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`gridmap.visits.DUE_COLUMNS`.

    Raises
    ------
    NotFoundError
        The grid is not in a published plan.
    VisitScopeError
        The actor may not read the grid's households.
    """
    book = rules or default_rules()
    book.select(categories)  # unknown categories fail before any read
    today = to_local(as_of) if as_of is not None else dt.datetime.now(TZ)
    lo, hi, _, _ = _window(month)
    with transaction(target, write=True) as s:
        plan_id = _grid_plan(s, grid)
        _check_grids(s, actor, [grid], personal=True)
        ctx = _context(s, target, plan_id, [grid])
        records = _records(s, ctx, lo, hi)
        due = due_visits(
            ctx.plan,
            ctx.households,
            ctx.buildings,
            period=month,
            rules=book,
            categories=categories,
            records=records,
            as_of=today.replace(tzinfo=None),
        )
        due = due[due["grid_code"] == str(grid)].reset_index(drop=True)
        _audit_read(
            s,
            author=author,
            actor=actor,
            grids=[grid],
            what="visits.due",
            month=str(month),
            rows=len(due),
        )
    return due


# ----------------------------------------------------------------------------- records


def _target_plan(s: Session, household_id: str | None, building_id: str | None) -> tuple[int, str]:
    if household_id is not None:
        q = (
            sa.select(_PH.c.plan_id, _PH.c.grid_code)
            .join(_P, _P.c.id == _PH.c.plan_id)
            .where(_P.c.status == "published", _PH.c.household_id == household_id)
        )
        what = f"household {household_id!r}"
    elif building_id is not None:
        q = (
            sa.select(_PB.c.plan_id, _PB.c.grid_code)
            .join(_P, _P.c.id == _PB.c.plan_id)
            .where(_P.c.status == "published", _PB.c.building_id == building_id)
            .order_by(_PB.c.grid_code)
        )
        what = f"building {building_id!r}"
    else:
        raise VisitRecordError("a record needs household_id (or building_id for an organisation)")
    row = s.execute(q).first()
    if row is None:
        raise VisitRecordError(
            f"{what} is not in a published plan; check the id (GET /visits/due lists the "
            "grid's households)"
        )
    return int(row[0]), str(row[1])


def _text(value: Any) -> str | None:
    if value is None:
        return None
    out = str(value).strip()
    return out or None


def _visit_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = {c: row[c] for c in VISIT_COLUMNS}
    for c in ("visited_at", "created_at"):
        t = _from_db(out[c])
        out[c] = t.isoformat() if t is not None else None
    out["follow_up"] = bool(out["follow_up"])
    out["outcome_zh"] = OUTCOMES[str(out["outcome"])][0]
    return out


def record_visit(
    target: Store | Session,
    record: Mapping[str, Any],
    *,
    author: str,
    actor: Actor | None = None,
    now: Any = None,
    open_case: bool | None = None,
    case_category: str = "other",
) -> dict[str, Any]:
    """Check and store one visit record (one transaction, with its audit row).

    Parameters
    ----------
    target : Store or Session
    record : mapping
        ``staff_id``, ``visited_at`` (naive = Beijing time), ``household_id``
        (or ``building_id`` for an organisation), ``outcome`` (``visited``,
        ``not_home``, ``refused``, ``moved_out`` or 已走访/未遇/拒访/已搬离),
        ``notes``, ``follow_up``, ``follow_up_text``.
    author : str
        Who records (audit log; the case's author too).
    actor : Actor, optional
        Whose scope applies: the household must be in a grid of its unit.
    now : datetime, optional
        The current time (default: the clock); a visit after it is refused.
    open_case : bool, optional
        Open a case (事件工单, source ``patrol``) for the follow-up in the same
        transaction. Default: when the record has a follow-up text.
    case_category : str, default "other"
        The case's category (code or Chinese name of the case catalogue).

    Returns
    -------
    dict
        The stored record (:data:`VISIT_COLUMNS` and ``outcome_zh``), with
        ``case_id`` set when a case was opened.

    Raises
    ------
    VisitScopeError
        The household is outside the actor's unit, or the staff member does not
        serve its grid (HTTP 403).
    VisitRecordError
        Unknown household or outcome, a visit in the future or before the
        household was registered, a follow-up without text, a case requested
        without a follow-up (HTTP 422).
    CaseError
        The follow-up's case cannot be taken in (nothing is stored).
    """
    rec_in = dict(record)
    now_local = to_local(now) if now is not None else dt.datetime.now(TZ)
    with transaction(target, write=True) as s:
        plan_id, grid = _target_plan(
            s, _text(rec_in.get("household_id")), _text(rec_in.get("building_id"))
        )
        _check_grids(s, actor, [grid], personal=True)
        ctx = _context(s, target, plan_id, [grid])
        rec = check_record(rec_in, plan=ctx.plan, now=now_local, households=ctx.households)
        want_case = rec.follow_up if open_case is None else bool(open_case)
        case_id = None
        if want_case:
            if not rec.follow_up:
                raise VisitRecordError(
                    "open_case needs a follow-up: give follow_up_text (what needs doing)"
                )
            row: dict[str, Any] = {}
            if rec.household_id is not None:
                hit = ctx.households[ctx.households["household_id"] == rec.household_id]
                if len(hit) and hit.geometry.iloc[0] is not None:
                    row = {"geometry": hit.geometry.iloc[0]}
            if not row and rec.building_id is not None:
                b = ctx.buildings[ctx.buildings["building_id"] == rec.building_id]
                if len(b):
                    row = {"geometry": b.geometry.iloc[0], "name": b["name"].iloc[0]}
            ticket = follow_up_ticket(rec, row, crs=ctx.buildings.crs, category=case_category)
            case, _new = create_case(s, ticket, author=author)
            case_id = int(case.id)
        backend = s.get_bind().dialect.name
        values = {
            "staff_id": rec.staff_id,
            "visited_at": _db_time(rec.visited_at, backend),
            "household_id": rec.household_id,
            "building_id": rec.building_id,
            "grid_code": rec.grid_code,
            "plan_id": plan_id,
            "outcome": rec.outcome,
            "notes": rec.notes,
            "follow_up": rec.follow_up,
            "follow_up_text": rec.follow_up_text,
            "case_id": case_id,
            "author": author,
            "created_at": utcnow(),
        }
        new_id = s.execute(_V.insert().values(**values).returning(_V.c.id)).scalar_one()
        stored = s.execute(sa.select(_V).where(_V.c.id == new_id)).mappings().one()
        out = _visit_dict(stored)
        write_audit(
            s, actor=author, action="visit.record", entity="visit", entity_id=new_id, after=out
        )
    return out


def list_visits(
    target: Store | Session,
    *,
    author: str,
    actor: Actor | None = None,
    grid: str | None = None,
    staff_id: str | None = None,
    household_id: str | None = None,
    since: Any = None,
    until: Any = None,
    limit: int | None = 100,
) -> list[dict[str, Any]]:
    """Return stored visit records, newest first (a personal-data read: audited per grid).

    Records are filtered to the grids the actor may read (the grid at the time
    of the visit).

    Raises
    ------
    VisitScopeError
        The actor may not read visit records (viewer, department), or ``grid``
        is outside its unit.
    """
    with transaction(target, write=True) as s:
        pub = _published_grids(s)
        allowed = set(pub.loc[_in_scope(actor, pub, personal=True), "grid_code"].astype(str))
        if grid is not None and actor is not None and str(grid) not in allowed:
            raise _scope_error(actor, str(grid))
        backend = s.get_bind().dialect.name
        q = sa.select(_V)
        if grid is not None:
            q = q.where(_V.c.grid_code == str(grid))
        elif actor is not None and actor.role not in ("dispatcher", "admin"):
            q = q.where(_V.c.grid_code.in_(sorted(allowed)))
        if staff_id is not None:
            q = q.where(_V.c.staff_id == str(staff_id))
        if household_id is not None:
            q = q.where(_V.c.household_id == str(household_id))
        if since is not None:
            q = q.where(_V.c.visited_at >= _db_time(since, backend))
        if until is not None:
            q = q.where(_V.c.visited_at < _db_time(until, backend))
        q = q.order_by(_V.c.visited_at.desc(), _V.c.id.desc())
        if limit is not None:
            q = q.limit(int(limit))
        rows = [_visit_dict(r) for r in s.execute(q).mappings()]
        grids = sorted({str(r["grid_code"]) for r in rows})
        _audit_read(
            s, author=author, actor=actor, grids=grids, what="visits.records", rows=len(rows)
        )
    return rows


# ----------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class DayRoute:
    """One worker's walking route for a day.

    Attributes
    ----------
    staff_id, staff_name : str
    date : datetime.date
    route : Route
        From :func:`gridmap.visits.plan_route` (in the plan's CRS).
    stops : geopandas.GeoDataFrame
        The stops in visiting order: ``seq``, ``building_id``, ``name``,
        ``visits``, ``household_ids``, ``visit_ids``, ``leg_m``, ``cum_m``,
        ``lon``/``lat`` (WGS84).
    grids : tuple of str
        The worker's grids.
    plan : Plan
        The published plan (for the map).
    """

    staff_id: str
    staff_name: str | None
    date: dt.date
    route: Route
    stops: gpd.GeoDataFrame
    grids: tuple[str, ...]
    plan: Plan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the ordered stops and the walk's length against its yardsticks."""
        cols = ["seq", "building_id", "name", "visits", "household_ids", "visit_ids"]
        stops = []
        for r in self.stops[[*cols, "leg_m", "cum_m", "lon", "lat"]].to_dict("records"):
            stops.append(
                {
                    **{k: (None if v is None or v != v else v) for k, v in r.items()},
                    "seq": int(r["seq"]),
                    "visits": int(r["visits"]),
                    "household_ids": [h for h in str(r["household_ids"] or "").split(";") if h],
                    "visit_ids": [v for v in str(r["visit_ids"] or "").split(";") if v],
                    "leg_m": round(float(r["leg_m"]), 1),
                    "cum_m": round(float(r["cum_m"]), 1),
                }
            )
        return {
            "staff_id": self.staff_id,
            "staff_name": self.staff_name,
            "date": self.date.isoformat(),
            "grids": list(self.grids),
            "home": self.route.home,
            **self.route.summary(),
            "stops": stops,
        }


def _home(s: Session, staff_id: str, ctx: _Context) -> tuple[Any, str | None]:
    backend = s.get_bind().dialect.name
    row = s.execute(
        sa.select(_S.c.name, _S.c.home_building_id, geom_select(_S.c.geom, backend)).where(
            _S.c.staff_id == staff_id
        )
    ).first()
    if row is None:
        return None, None
    name = row[0]
    if row[2] is not None:
        pt = gpd.GeoSeries(decode_geoms([row[2]]), crs=4326).to_crs(ctx.buildings.crs).iloc[0]
        if pt is not None and not pt.is_empty:
            return pt, name
    if row[1] is not None:
        b = s.execute(
            sa.select(geom_select(_B.c.geom, backend)).where(_B.c.building_id == row[1])
        ).first()
        if b is not None and b[0] is not None:
            g = gpd.GeoSeries(decode_geoms([b[0]]), crs=4326).to_crs(ctx.buildings.crs).iloc[0]
            return g.centroid, name
    return None, name


def _roads(s: Session, bounds: tuple[float, float, float, float], crs: Any) -> gpd.GeoDataFrame:
    """Roads within ``bounds`` (plan CRS), in the plan's CRS."""
    backend = s.get_bind().dialect.name
    box = gpd.GeoSeries([shapely.box(*bounds)], crs=crs).to_crs(4326).iloc[0]
    q = sa.select(geom_select(_R.c.geom, backend))
    if backend == "postgresql":
        q = q.where(_R.c.geom.op("&&")(sa.func.ST_MakeEnvelope(*box.bounds, 4326)))
    geoms = decode_geoms([r[0] for r in s.execute(q)])
    if len(geoms):
        geoms = geoms[shapely.intersects(geoms, box)]
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries(geoms, crs=4326).to_crs(crs).values, crs=crs)


def day_route(
    target: Store | Session,
    *,
    staff_id: str,
    date: Any,
    author: str,
    actor: Actor | None = None,
    limit: int = 20,
    rules: VisitRules | None = None,
    margin: float = 500.0,
) -> DayRoute:
    """Plan one worker's walk for a day through their open visits of that month.

    The stops are the buildings of the worker's ``due`` and ``overdue`` visits
    (overdue first, then by period end; at most ``limit``), ordered into a short
    closed walk from the worker's home on the stored roads (straight lines where
    there are none). A worker with nothing open gets an empty route.

    Raises
    ------
    NotFoundError
        The staff member holds no post in a published plan.
    VisitScopeError
        The worker's grids are outside the actor's unit.
    InputError
        ``limit`` below 1 or an unreadable date.
    """
    if not isinstance(limit, int) or limit < 1:
        raise InputError(f"limit must be a whole number ≥ 1, got {limit!r}")
    day = to_local(date).date() if not isinstance(date, dt.date) else date
    if isinstance(day, dt.datetime):
        day = day.date()
    month = pd.Period(day, freq="M")
    lo, hi, _, _ = _window(month)
    with transaction(target, write=True) as s:
        posts = s.execute(
            sa.select(_A.c.plan_id, _A.c.grid_code)
            .join(_P, _P.c.id == _A.c.plan_id)
            .where(_P.c.status == "published", _A.c.staff_id == str(staff_id))
            .order_by(_A.c.grid_code)
        ).all()
        if not posts:
            raise NotFoundError(
                f"staff {staff_id!r} holds no post in a published plan; check the id "
                "(the plan's assignments list who serves where)"
            )
        plan_id = int(posts[0][0])
        grids = sorted({str(g) for p, g in posts if int(p) == plan_id and g is not None})
        _check_grids(s, actor, grids, personal=True)
        ctx = _context(s, target, plan_id, grids)
        records = _records(s, ctx, lo, hi)
        due = due_visits(
            ctx.plan,
            ctx.households,
            ctx.buildings,
            period=str(month),
            rules=rules,
            records=records,
            as_of=pd.Timestamp(day),
        )
        stops = route_stops(due, ctx.buildings, staff_id=str(staff_id), limit=limit)
        home, name = _home(s, str(staff_id), ctx)
        pts = list(stops.geometry) + ([home] if home is not None else [])
        roads = None
        if len(stops):
            x0, y0, x1, y1 = shapely.total_bounds(np.asarray(pts, dtype=object))
            roads = _roads(s, (x0 - margin, y0 - margin, x1 + margin, y1 + margin), ctx.plan.crs)
        route = plan_route(
            stops,
            roads if roads is not None and len(roads) else None,
            home=home if len(stops) else None,
            ids=stops["stop_id"].tolist(),
        )
        _audit_read(
            s,
            author=author,
            actor=actor,
            grids=grids,
            what="visits.route",
            staff_id=str(staff_id),
            date=day.isoformat(),
            stops=route.n_stops,
        )
    ordered = stops.iloc[route.order].reset_index(drop=True) if len(stops) else stops
    names = ctx.buildings.set_index("building_id")["name"]
    wgs = ordered.to_crs(4326) if len(ordered) else ordered
    frame = gpd.GeoDataFrame(
        {
            "seq": np.arange(1, len(ordered) + 1),
            "building_id": ordered["stop_id"].astype(str).to_numpy(),
            "name": names.reindex(ordered["stop_id"].astype(str)).to_numpy(dtype=object),
            "visits": ordered["visits"].to_numpy(),
            "household_ids": ordered["household_ids"].to_numpy(dtype=object),
            "visit_ids": ordered["visit_ids"].to_numpy(dtype=object),
            "leg_m": route.stops["leg_m"].to_numpy(),
            "cum_m": route.stops["cum_m"].to_numpy(),
            "lon": np.round(wgs.geometry.x.to_numpy(), 7) if len(wgs) else [],
            "lat": np.round(wgs.geometry.y.to_numpy(), 7) if len(wgs) else [],
        },
        geometry=ordered.geometry.to_numpy() if len(ordered) else [],
        crs=ctx.plan.crs,
    )
    return DayRoute(str(staff_id), name, day, route, frame, tuple(grids), ctx.plan)


# ----------------------------------------------------------------------------- register


def grid_register(
    target: Store | Session,
    *,
    actor: Actor | None = None,
    grids: Sequence[str] | None = None,
    as_of: Any = None,
    window_days: int = 30,
    rules: VisitRules | None = None,
    header: str = "both",
) -> pd.DataFrame:
    """Return the 四清 register of published grids (counts only, no personal data).

    Parameters
    ----------
    actor : Actor, optional
        Limits the register to the grids of its unit.
    grids : sequence of str, optional
        These grids (default: every grid the actor may read).
    as_of : datetime, optional
        The register date (default: now): visits in the ``window_days`` up to it count.
    header : {"code", "zh", "en", "both"}
        Column names (see :func:`gridmap.visits.visit_register`).

    Raises
    ------
    NotFoundError
        A grid is not in a published plan, or there is none.
    VisitScopeError
        A grid is outside the actor's unit.
    """
    when = to_local(as_of) if as_of is not None else dt.datetime.now(TZ)
    frames = []
    with transaction(target) as s:
        pub = _published_grids(s)
        if grids is None:
            pub = pub[_in_scope(actor, pub, personal=False)]
            if not len(pub):
                raise NotFoundError(
                    "no published grid to report on (in your unit); publish a plan first"
                )
            wanted = pub
        else:
            for g in grids:
                _grid_plan(s, g)
            _check_grids(s, actor, grids, personal=False)
            wanted = pub[pub["grid_code"].astype(str).isin([str(g) for g in grids])]
        for plan_id, part in wanted.groupby("plan_id", sort=True):
            codes = part["grid_code"].astype(str).tolist()
            ctx = _context(s, target, int(str(plan_id)), codes)
            records = _records(
                s, ctx, when - dt.timedelta(days=window_days + 1), when + dt.timedelta(days=1)
            )
            crows: list[Any] = []
            for chunk in in_chunks(codes):
                crows += s.execute(
                    sa.select(_C.c.grid_code, _C.c.category, _C.c.status).where(
                        _C.c.grid_code.in_(list(chunk))
                    )
                ).all()
            cases = rows_frame(crows, ["grid_code", "category", "status"])
            reg = visit_register(
                ctx.plan,
                ctx.households,
                ctx.buildings,
                rules=rules,
                cases=cases,
                records=records,
                as_of=when.replace(tzinfo=None),
                window_days=window_days,
                header="code",
            )
            frames.append(reg[reg["grid_code"].isin(codes)])
    out = pd.concat(frames, ignore_index=True).sort_values("grid_code", kind="stable")
    out = out.reset_index(drop=True)
    if header == "code":
        return out
    from gridmap.visits import register_labels

    if header not in ("zh", "en", "both"):
        raise InputError(f"header must be 'code', 'zh', 'en' or 'both', got {header!r}")
    labels = register_labels(rules)
    pick = {"zh": lambda z, e: z, "en": lambda z, e: e, "both": lambda z, e: f"{z} {e}"}[header]
    return out.rename(columns={c: pick(*labels[c]) for c in out.columns if c in labels})


# ----------------------------------------------------------------------------- redraws


def redraw_visits(
    target: Store | Session,
    *,
    old_plan_id: int,
    new_plan_id: int,
    month: Any,
    author: str,
    as_of: Any = None,
    rules: VisitRules | None = None,
) -> pd.DataFrame:
    """Return a month's due visits of ``old_plan_id`` moved to the grids and staff of the new plan.

    Due lists always come from the published plan, so after a republish they
    already follow the households; this says who hands which visits to whom
    (``previous_grid_code``, ``previous_staff_id``, ``moved``), with the status
    recomputed from the stored records. Writes one audit row (counts only).

    Raises
    ------
    NotFoundError
        Unknown plan id.
    LayerError
        A household or organisation of the old plan is not in the new one.
    """
    today = to_local(as_of) if as_of is not None else dt.datetime.now(TZ)
    lo, hi, _, _ = _window(month)
    with transaction(target, write=True) as s:
        old = _context(s, target, int(old_plan_id), None)
        new_plan = _plan(s, target, int(new_plan_id))
        records = _records(s, old, lo, hi)
        due = due_visits(
            old.plan,
            old.households,
            old.buildings,
            period=month,
            rules=rules,
            records=records,
            as_of=today.replace(tzinfo=None),
        )
        moved = follow_redraw(
            due,
            new_plan,
            old.buildings,
            rules=rules,
            records=records,
            as_of=today.replace(tzinfo=None),
        )
        write_audit(
            s,
            actor=author,
            action="visits.redraw",
            entity="plan",
            entity_id=int(new_plan_id),
            after={
                "from_plan": int(old_plan_id),
                "month": str(month),
                "rows": len(moved),
                "moved": int(moved["moved"].sum()) if len(moved) else 0,
            },
        )
    return moved
