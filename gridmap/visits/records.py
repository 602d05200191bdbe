"""Visit records: checking what a worker enters, and turning a follow-up into a case ticket.

A record says who visited (``staff_id``), when (``visited_at``), whom
(``household_id``, or ``building_id`` for an organisation), the ``outcome``
(one of :data:`OUTCOMES`), ``notes``, and whether something needs following up
(``follow_up`` with ``follow_up_text``). :func:`check_record` validates one at
the door:

* the outcome is known, the date readable, a target given;
* the visit is not in the future (``now`` is passed in: the core reads no clock)
  and not before the household existed (its ``registered_at`` column, when the
  households frame has one);
* the household lies in a grid the recording person serves in the plan
  (``plan.assignments``) — otherwise :class:`~gridmap.errors.VisitScopeError`,
  a :class:`~gridmap.errors.PermissionDeniedError` the HTTP layer maps to 403.

:func:`check_records` does the same for a whole table and reports every bad
row by the line a spreadsheet shows. :func:`follow_up_ticket` turns a record
with a follow-up into a ticket for :func:`gridmap.cases.intake` (source
``patrol``, 巡查上报).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyproj
import shapely

from gridmap.errors import (
    GridmapError,
    LayerError,
    RowsError,
    VisitRecordError,
    VisitScopeError,
)

if TYPE_CHECKING:
    from gridmap.partition.plan import Plan

__all__ = [
    "OUTCOMES",
    "RECORD_FIELDS",
    "VisitRecord",
    "check_record",
    "check_records",
    "follow_up_ticket",
]

#: Outcome code → (Chinese label, English label, counts as a visit).
OUTCOMES: dict[str, tuple[str, str, bool]] = {
    "visited": ("已走访", "visited", True),
    "not_home": ("未遇", "nobody at home", False),
    "refused": ("拒访", "refused", False),
    "moved_out": ("已搬离", "moved out", True),
}

#: Fields of a record (the columns of :func:`check_records`' output).
RECORD_FIELDS: tuple[str, ...] = (
    "staff_id",
    "visited_at",
    "household_id",
    "building_id",
    "grid_code",
    "outcome",
    "notes",
    "follow_up",
    "follow_up_text",
)

_TRUE = {"1", "true", "yes", "y", "t", "是", "需要"}
_FALSE = {"0", "false", "no", "n", "f", "否", "不需要", ""}
_OUTCOME_ALIASES = {
    **{k: k for k in OUTCOMES},
    **{v[0]: k for k, v in OUTCOMES.items()},
    **{v[1]: k for k, v in OUTCOMES.items()},
    "不在家": "not_home",
    "搬离": "moved_out",
}


@dataclass(frozen=True)
class VisitRecord:
    """A checked visit record (see the module docstring).

    ``visited_at`` is an aware Asia/Shanghai datetime; ``grid_code`` is the
    target's grid in the plan the record was checked against.
    """

    staff_id: str
    visited_at: dt.datetime
    household_id: str | None
    building_id: str | None
    grid_code: str
    outcome: str = "visited"
    notes: str | None = None
    follow_up: bool = False
    follow_up_text: str | None = None

    @property
    def counts(self) -> bool:
        """Whether the outcome counts as a visit made."""
        return OUTCOMES[self.outcome][2]

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a plain dict (``visited_at`` stays a datetime)."""
        return asdict(self)


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    out = str(value).strip()
    return out or None


def _bool(value: Any, where: str) -> bool:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise VisitRecordError(f"{where}: read {value!r} as yes/no (是/否, true/false, 1/0)")


def _record_target_kind(records: pd.DataFrame) -> np.ndarray:
    """'household' where a household id is given, else 'building' (an organisation)."""
    if "household_id" in records.columns:
        has = records["household_id"].notna() & (records["household_id"].astype(str).str.len() > 0)
        return np.where(has.to_numpy(), "household", "building").astype(object)
    if "building_id" in records.columns:
        return np.full(len(records), "building", dtype=object)
    raise LayerError("records need a household_id (or building_id for an organisation) column")


def _staff_grids(plan: Plan) -> dict[str, set[str]]:
    a = plan.assignments
    if a is None or len(a) == 0:
        raise VisitScopeError(
            "the plan is not staffed, so nobody may record visits in it; staff it with "
            "gridmap.staffing.assign_staff(...).to_plan(plan)"
        )
    t = a[a["staff_id"].notna()]
    out: dict[str, set[str]] = {}
    for s, g in zip(t["staff_id"].astype(str), t["grid_code"].astype(str), strict=True):
        out.setdefault(s, set()).add(g)
    return out


def _target_grid(
    plan: Plan, household_id: str | None, building_id: str | None
) -> tuple[str, str | None]:
    """(grid code, building id) of the record's target in the plan."""
    if household_id is not None:
        ph = plan.households
        if ph is not None and len(ph):
            hit = ph[ph["household_id"].astype(str) == household_id]
            if len(hit):
                return str(hit["grid_code"].iloc[0]), _text(hit["building_id"].iloc[0])
        elif building_id is not None:
            return _building_grid(plan, building_id), building_id
        raise VisitRecordError(
            f"household {household_id!r} is not in the plan; check the id (or register the "
            "household and re-partition)"
        )
    if building_id is None:
        raise VisitRecordError("a record needs household_id (or building_id for an organisation)")
    return _building_grid(plan, building_id), building_id


def _building_grid(plan: Plan, building_id: str) -> str:
    hit = plan.buildings[plan.buildings["building_id"].astype(str) == building_id]
    if not len(hit):
        raise VisitRecordError(f"building {building_id!r} is not in the plan; check the id")
    return str(sorted(hit["grid_code"].astype(str))[0])


def _when(value: Any, where: str) -> dt.datetime:
    from gridmap.cases.calendar import to_local

    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        raise VisitRecordError(f"{where}: visited_at is empty; give the date and time of the visit")
    try:
        return to_local(value)
    except GridmapError as exc:
        raise VisitRecordError(f"{where}: {exc}") from exc


def check_record(
    record: Mapping[str, Any],
    *,
    plan: Plan,
    now: Any,
    households: pd.DataFrame | None = None,
    registered_column: str = "registered_at",
) -> VisitRecord:
    """Check one visit record against the plan and return it normalised.

    Parameters
    ----------
    record : mapping
        ``staff_id``, ``visited_at`` (naive = Asia/Shanghai), ``household_id``
        (or ``building_id`` for an organisation), ``outcome`` (code or Chinese
        label, default ``visited``), ``notes``, ``follow_up``, ``follow_up_text``.
    plan : Plan
        The published, staffed plan (``households``, ``buildings``, ``assignments``).
    now : datetime or str
        The current time (the core reads no clock); a visit after it is refused.
    households : pandas.DataFrame, optional
        The households layer; when it has ``registered_column`` (date the
        household was registered / moved in), a visit before that is refused.
    registered_column : str, default "registered_at"

    Returns
    -------
    VisitRecord

    Raises
    ------
    VisitScopeError
        The household is not in a grid the person serves (HTTP 403).
    VisitRecordError
        Unknown outcome or household, unreadable or future date, a visit before
        the household existed, a follow-up without text.

    Examples
    --------
    >>> from gridmap.visits.examples import _example
    >>> plan = _example().plan
    >>> r = check_record({"staff_id": "S1", "household_id": "H01",
    ...                   "visited_at": "2026-09-10 10:00", "outcome": "已走访"},
    ...                  plan=plan, now="2026-09-18 12:00")
    >>> r.grid_code, r.outcome, r.counts
    ('320104001001001', 'visited', True)
    >>> check_record({"staff_id": "S1", "household_id": "H09",
    ...               "visited_at": "2026-09-10 10:00"}, plan=plan, now="2026-09-18")
    Traceback (most recent call last):
    ...
    gridmap.errors.VisitScopeError: household 'H09' is in grid 320104001001002, ...
    >>> check_record({"staff_id": "S1", "household_id": "H01",
    ...               "visited_at": "2026-09-20 10:00"}, plan=plan, now="2026-09-18")
    Traceback (most recent call last):
    ...
    gridmap.errors.VisitRecordError: visited_at 2026-09-20 10:00 is in the future ...
    """
    from gridmap.cases.calendar import to_local

    staff_id = _text(record.get("staff_id"))
    if staff_id is None:
        raise VisitRecordError("staff_id is empty; say who made the visit")
    when = _when(record.get("visited_at"), "record")
    now_local = to_local(now)
    if when > now_local:
        raise VisitRecordError(
            f"visited_at {when:%Y-%m-%d %H:%M} is in the future (now {now_local:%Y-%m-%d %H:%M}); "
            "record visits once they are made"
        )
    outcome_raw = _text(record.get("outcome")) or "visited"
    outcome = _OUTCOME_ALIASES.get(outcome_raw, _OUTCOME_ALIASES.get(outcome_raw.lower()))
    if outcome is None:
        raise VisitRecordError(
            f"outcome {outcome_raw!r} is not one of {list(OUTCOMES)} "
            f"({'、'.join(v[0] for v in OUTCOMES.values())})"
        )
    household_id = _text(record.get("household_id"))
    building_id = _text(record.get("building_id"))
    grid, building_id = _target_grid(plan, household_id, building_id)
    serves = _staff_grids(plan).get(staff_id, set())
    if grid not in serves:
        who = f"household {household_id!r}" if household_id else f"building {building_id!r}"
        raise VisitScopeError(
            f"{who} is in grid {grid}, but staff {staff_id!r} serves "
            f"{sorted(serves) or 'no grid'}; a visit is recorded by the staff of the "
            "household's grid"
        )
    if (
        household_id is not None
        and households is not None
        and registered_column in households.columns
    ):
        hit = households.loc[households["household_id"].astype(str) == household_id]
        if len(hit) and pd.notna(hit[registered_column].iloc[0]):
            since = to_local(pd.Timestamp(hit[registered_column].iloc[0]))
            if when.date() < since.date():
                raise VisitRecordError(
                    f"visited_at {when:%Y-%m-%d} is before household {household_id!r} was "
                    f"registered ({since:%Y-%m-%d}); check the date or the household"
                )
    follow_up = _bool(record.get("follow_up"), "follow_up")
    follow_text = _text(record.get("follow_up_text"))
    if follow_up and follow_text is None:
        raise VisitRecordError(
            "follow_up is set but follow_up_text is empty; say what needs following up"
        )
    return VisitRecord(
        staff_id=staff_id,
        visited_at=when,
        household_id=household_id,
        building_id=building_id,
        grid_code=grid,
        outcome=outcome,
        notes=_text(record.get("notes")),
        follow_up=follow_up or follow_text is not None,
        follow_up_text=follow_text,
    )


def check_records(
    records: pd.DataFrame,
    *,
    plan: Plan,
    now: Any,
    households: pd.DataFrame | None = None,
    first_line: int = 2,
) -> pd.DataFrame:
    """Check a table of visit records; return them normalised or report every bad row.

    Parameters
    ----------
    records : pandas.DataFrame
        One row per record (columns as in :func:`check_record`).
    plan, now, households
        As in :func:`check_record`.
    first_line : int, default 2
        The spreadsheet line of the first row (2: below a header line).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RECORD_FIELDS`, ready for :func:`gridmap.visits.due.due_visits`.

    Raises
    ------
    VisitScopeError
        Some rows record households outside the person's grids (all listed).
    RowsError
        Other bad rows, as ``(line, message)`` in ``rows``.

    Examples
    --------
    >>> import pandas as pd
    >>> from gridmap.visits.examples import _example
    >>> df = pd.DataFrame({"staff_id": ["S1", "S1"], "household_id": ["H01", "H02"],
    ...                    "visited_at": ["2026-09-10 10:00", "2026-09-31"]})
    >>> check_records(df, plan=_example().plan, now="2026-09-30")
    Traceback (most recent call last):
    ...
    gridmap.errors.RowsError: 1 bad visit record(s): line 3: ...
    """
    out: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    scope: list[tuple[int, str]] = []
    for i, rec in enumerate(records.to_dict("records")):
        line = first_line + i
        try:
            out.append(
                check_record(
                    {str(k): v for k, v in rec.items()}, plan=plan, now=now, households=households
                ).to_dict()
            )
        except VisitScopeError as exc:
            scope.append((line, str(exc)))
        except (VisitRecordError, GridmapError) as exc:
            bad.append((line, str(exc)))
    if scope:
        text = "; ".join(f"line {n}: {m}" for n, m in scope[:5])
        raise VisitScopeError(f"{len(scope)} record(s) outside the recorder's grids: {text}")
    if bad:
        text = "; ".join(f"line {n}: {m}" for n, m in bad[:5])
        raise RowsError(f"{len(bad)} bad visit record(s): {text}", rows=bad)
    frame = pd.DataFrame(out, columns=list(RECORD_FIELDS))
    frame["visited_at"] = pd.to_datetime(frame["visited_at"])
    return frame


def follow_up_ticket(
    record: VisitRecord | Mapping[str, Any],
    household: Mapping[str, Any] | None = None,
    *,
    crs: Any = None,
    category: str = "other",
    address: str | None = None,
    reporter_name: str | None = None,
) -> dict[str, Any]:
    """Turn a visit's follow-up into a ticket for :func:`gridmap.cases.intake`.

    Parameters
    ----------
    record : VisitRecord or mapping
        The (checked) record; it must have a follow-up text.
    household : mapping, optional
        The household (or building) row: its ``geometry`` Point (in ``crs``)
        gives the ticket's coordinate; ``name``/``address`` the address.
    crs : CRS-like, optional
        CRS of ``household["geometry"]`` (the plan's projected CRS).
    category : str, default "other"
        Case category (code, Chinese name or alias of the case catalogue).
    address : str, optional
        Address text (default: the household row's ``address`` or ``name``).
    reporter_name : str, optional
        Default: the recording staff id.

    Returns
    -------
    dict
        Keys ``ticket_no``, ``source`` (``patrol``), ``category``,
        ``description``, ``received_at``, ``reporter_name``, ``lon``/``lat``/
        ``crs`` (WGS84) when the household has a point, ``address``.

    Raises
    ------
    VisitRecordError
        The record has no follow-up text, or a point comes without ``crs``.
    CaseError
        Unknown case category.

    Examples
    --------
    >>> from gridmap.cases import intake
    >>> from gridmap.visits.examples import _example
    >>> ex = _example()
    >>> r = check_record({"staff_id": "S1", "household_id": "H01",
    ...                   "visited_at": "2026-09-10 10:00",
    ...                   "follow_up_text": "楼道堆放杂物，消防通道堵塞"},
    ...                  plan=ex.plan, now="2026-09-18")
    >>> t = follow_up_ticket(r, ex.households.iloc[0], crs=ex.households.crs, category="消防隐患")
    >>> t["source"], t["category"], t["ticket_no"]
    ('patrol', 'fire', 'V-S1-H01-20260910T1000')
    >>> intake(t, case_id="C1").status
    'unlocated'
    """
    from gridmap.cases.catalogue import default_catalogue

    rec = record.to_dict() if isinstance(record, VisitRecord) else dict(record)
    text = _text(rec.get("follow_up_text"))
    if text is None:
        raise VisitRecordError("the record has no follow_up_text; nothing to open a case for")
    when = _when(rec.get("visited_at"), "record")
    cat = default_catalogue().category(category).code
    target = _text(rec.get("household_id")) or _text(rec.get("building_id")) or "?"
    staff = _text(rec.get("staff_id")) or "?"
    ticket: dict[str, Any] = {
        "ticket_no": f"V-{staff}-{target}-{when:%Y%m%dT%H%M}",
        "source": "patrol",
        "category": cat,
        "description": f"走访发现 ({target}): {text}",
        "received_at": when.isoformat(),
        "reporter_name": reporter_name or staff,
    }
    row = dict(household) if household is not None else {}
    geom = row.get("geometry")
    if isinstance(geom, shapely.Geometry) and not geom.is_empty:
        if crs is None:
            raise VisitRecordError(
                "the household has a point but no crs was given; pass crs=households.crs"
            )
        pt = geom if geom.geom_type == "Point" else geom.representative_point()
        tr = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
        lon, lat = tr.transform(pt.x, pt.y)
        ticket.update(lon=round(float(lon), 7), lat=round(float(lat), 7), crs="wgs84")
    addr = address or _text(row.get("address")) or _text(row.get("name"))
    if addr is not None:
        ticket["address"] = addr
    elif "lon" not in ticket:
        ticket["address"] = f"{rec.get('grid_code') or ''} {target}".strip()
    return ticket
