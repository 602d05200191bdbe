"""The case record (事件工单) and intake: a ticket checked, located and given its deadlines.

A :class:`Case` is a frozen record. Everything that changes it goes through
:func:`gridmap.cases.states.apply`, which returns a new record (``version`` + 1)
and an immutable log entry; the store keeps both.

Intake (:func:`intake`) is pure: it validates the ticket (known category and
source, non-empty description, a usable coordinate or an address), converts the
coordinate to WGS84, asks the caller's ``locate`` callable for the grid (the
grid, community and sub-district are *frozen* on the case with the plan id and
version they came from), and computes the deadlines of the case's SLA policy on
the working-day calendar. A case without a coordinate, or whose point lies
outside every grid, is ``unlocated`` until a dispatcher places it.

Reporter name and phone are personal data: :meth:`Case.redacted` masks them for
roles that may not see them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gridmap.cases.calendar import Deadline, WorkCalendar, default_calendar, to_local
from gridmap.cases.catalogue import URGENCIES, Catalogue, default_catalogue
from gridmap.cases.policies import Policies, default_policies
from gridmap.errors import CaseError, ConflictError, CoordinateError

__all__ = [
    "UNIT_KINDS",
    "Placement",
    "Handler",
    "Summons",
    "Case",
    "Locator",
    "intake",
    "intake_many",
    "check_unique_tickets",
]

#: Kinds of org unit a handler or an API key can be bound to, bottom-up.
UNIT_KINDS: tuple[str, ...] = ("grid", "community", "subdistrict", "department")


@dataclass(frozen=True)
class Placement:
    """Where a case belongs, frozen at intake (or when a dispatcher places it).

    Attributes
    ----------
    grid_code, community_id, subdistrict : str
    plan_id : str or None
        The published plan the grid comes from.
    plan_version : int or None
    """

    grid_code: str
    community_id: str
    subdistrict: str
    plan_id: str | None = None
    plan_version: int | None = None


#: ``locate(lon, lat)`` in WGS84 → the placement, or None when no grid covers the point.
Locator = Callable[[float, float], Placement | None]


@dataclass(frozen=True)
class Handler:
    """A unit a case is dispatched to (双向派单): grid staff, a sub-district or a department.

    Attributes
    ----------
    unit : str
        The unit's code (grid code, community id, sub-district code, department code).
    kind : {"grid", "community", "subdistrict", "department"}
    lead : bool
        The lead handler (主办); others are co-handlers (协办).
    due : Deadline or None
        The handler's own deadline; None means the case's ``resolve`` deadline.
    person : str or None
        A named person (grid worker id …), when dispatched to one.
    """

    unit: str
    kind: str
    lead: bool = True
    due: Deadline | None = None
    person: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in UNIT_KINDS:
            raise CaseError(f"handler kind {self.kind!r} is not one of {list(UNIT_KINDS)}")
        if not str(self.unit).strip():
            raise CaseError("a handler needs a unit code")


@dataclass(frozen=True)
class Summons:
    """A department summoned by the sub-district (街巷吹哨、部门报到) and its sign-in.

    Attributes
    ----------
    department : str
    summoned_at : datetime.datetime
    due : Deadline
        The department's own deadline to sign in (报到).
    signed_in_at : datetime.datetime or None
    """

    department: str
    summoned_at: dt.datetime
    due: Deadline
    signed_in_at: dt.datetime | None = None


@dataclass(frozen=True)
class Case:
    """A case (事件工单): a frozen record.

    Attributes
    ----------
    id : str
        Our id.
    source : str
        Source code (``hotline``, ``app``, ``patrol``, ``online``, ``walkin``).
    ticket_no : str or None
        The external ticket number (工单编号), unique per source.
    category : str
        Category code.
    urgency : {"urgent", "ordinary"}
    description : str
    policy : str
        The SLA policy the deadlines come from.
    received_at : datetime.datetime
        Aware, Asia/Shanghai.
    status : str
        A state of :data:`gridmap.cases.states.STATES`.
    version : int
        Optimistic-locking version, +1 on every applied action.
    reporter_name, reporter_phone : str or None
        Personal data.
    lon_given, lat_given, crs_given : float, float, str or None
        The coordinate as reported, and its CRS.
    lon, lat : float or None
        WGS84.
    address : str or None
    grid_code, community_id, subdistrict, plan_id, plan_version :
        The placement, frozen at intake; None while unlocated.
    deadlines : dict of str to Deadline
        One per clock of the policy (``answer``, ``resolve`` …).
    hard : bool
        A difficult item (疑难), with a longer limit under some policies.
    level : {"grid", "community", "subdistrict"}
        The level the case is owned at (raised by escalation).
    handlers : tuple of Handler
    summons : tuple of Summons
    satisfaction : str or None
        Callback result: ``satisfied``, ``fairly_satisfied`` or ``unsatisfied``.
    merged_into : str or None
    reopened : int
        How often the case was reopened.
    """

    id: str
    source: str
    category: str
    urgency: str
    description: str
    policy: str
    received_at: dt.datetime
    status: str = "received"
    version: int = 1
    ticket_no: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    lon_given: float | None = None
    lat_given: float | None = None
    crs_given: str | None = None
    lon: float | None = None
    lat: float | None = None
    address: str | None = None
    grid_code: str | None = None
    community_id: str | None = None
    subdistrict: str | None = None
    plan_id: str | None = None
    plan_version: int | None = None
    deadlines: dict[str, Deadline] = field(default_factory=dict)
    hard: bool = False
    level: str = "grid"
    handlers: tuple[Handler, ...] = ()
    summons: tuple[Summons, ...] = ()
    satisfaction: str | None = None
    merged_into: str | None = None
    reopened: int = 0

    @property
    def located(self) -> bool:
        """Whether the case has a grid."""
        return self.grid_code is not None

    @property
    def lead(self) -> Handler | None:
        """The lead handler, if dispatched."""
        return next((h for h in self.handlers if h.lead), None)

    @property
    def provisional(self) -> bool:
        """Whether any deadline rests on a provisional calendar year."""
        return any(d.provisional for d in self.deadlines.values())

    def redacted(self) -> Case:
        """Return a copy with the reporter's name and phone masked (张** / 138****5678).

        Examples
        --------
        >>> c = Case("C1", "hotline", "noise", "ordinary", "吵", "12345",
        ...          to_local("2026-09-18 10:00"), reporter_name="张三",
        ...          reporter_phone="13812345678")
        >>> c.redacted().reporter_name, c.redacted().reporter_phone
        ('张*', '138****5678')
        """
        name = self.reporter_name
        phone = self.reporter_phone
        if name:
            name = name[0] + "*" * (len(name) - 1)
        if phone:
            phone = phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "*" * len(phone)
        return replace(self, reporter_name=name, reporter_phone=phone)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _number(value: Any, name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise CoordinateError(f"{name} {value!r} is not a number") from exc
    return None if math.isnan(out) else out


#: Text read as "yes" in a flag column (疑难 …); any other text, and empty cells, are "no".
_TRUE_TEXT = frozenset({"1", "true", "yes", "y", "t", "是", "疑难", "hard"})


def _flag(value: Any) -> bool:
    """Read a yes/no cell: bools and numbers as such, text by :data:`_TRUE_TEXT` ("否" is no)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_TEXT
    return bool(value)


def _to_wgs84(lon: float, lat: float, crs: Any) -> tuple[float, float, str]:
    from gridmap.crs import check_lonlat, in_china, parse_crs, transform

    spec = parse_crs(crs)  # CRSError for an unknown CRS
    if spec.is_geographic:
        check_lonlat(lon, lat, expect_china=True)
    x, y = transform(lon, lat, spec, "wgs84", validate=False)
    check_lonlat(x, y)
    if not bool(in_china(x, y)):
        raise CoordinateError(
            f"point ({lon}, {lat}) in {spec.name} lies outside China (WGS84 {x:.5f}, {y:.5f}); "
            "check the coordinate and its CRS (lon first)"
        )
    return float(x), float(y), spec.name


def intake(
    ticket: Mapping[str, Any],
    *,
    case_id: str,
    locate: Locator | Placement | None = None,
    calendar: WorkCalendar | None = None,
    policies: Policies | None = None,
    catalogue: Catalogue | None = None,
    received_at: Any = None,
) -> Case:
    """Check a ticket, place it and compute its deadlines; return a new :class:`Case`.

    Parameters
    ----------
    ticket : mapping
        Keys: ``source``, ``category`` and ``description`` (required);
        ``ticket_no``, ``urgency`` (default: the category's), ``hard``,
        ``policy`` (default: the source's, else the category's),
        ``reporter_name``, ``reporter_phone``, ``lon``/``lat`` with ``crs``
        (required with a coordinate: phones give ``"gcj02"``), ``address``,
        ``received_at`` (naive = Asia/Shanghai).
    case_id : str
        Our id for the case (the store assigns it).
    locate : callable or Placement, optional
        ``locate(lon, lat)`` with WGS84 degrees returning a :class:`Placement`
        or None (e.g. a wrapper over :class:`gridmap.locate.GridIndex`), or a
        fixed placement. Without one, or when it returns None, the case is
        ``unlocated``.
    calendar, policies, catalogue : optional
        Default: the shipped ones.
    received_at : datetime, optional
        Overrides ``ticket["received_at"]``.

    Raises
    ------
    CaseError
        Unknown category/source/policy/urgency, empty description, neither a
        coordinate nor an address.
    CRSError
        Unknown CRS, or a coordinate without one.
    CoordinateError
        NaN, out of range, swapped lat/lon or outside China.

    Examples
    --------
    >>> place = Placement("320508019044001", "320508019044", "320508019", "plan-1", 3)
    >>> case = intake({"source": "12345", "category": "噪音扰民", "description": "夜间施工",
    ...                "lon": 120.62, "lat": 31.30, "crs": "gcj02",
    ...                "received_at": "2026-09-18 10:00"}, case_id="C1", locate=place)
    >>> case.status, case.grid_code, case.policy
    ('received', '320508019044001', '12345')
    >>> case.deadlines["resolve"].due.isoformat()
    '2026-09-22T23:59:59+08:00'
    """
    from gridmap.errors import CRSError

    cat_book = catalogue or default_catalogue()
    pol_book = policies or default_policies()
    cal = calendar or default_calendar()
    source = cat_book.source(ticket.get("source"))  # type: ignore[arg-type]
    category = cat_book.category(ticket.get("category"))  # type: ignore[arg-type]
    description = _text(ticket.get("description"))
    if description is None:
        raise CaseError("description is empty; say what happened (e.g. '楼下夜间施工噪音')")
    urgency = _text(ticket.get("urgency")) or category.urgency
    urgency = {"紧急": "urgent", "一般": "ordinary", "普通": "ordinary"}.get(urgency, urgency)
    if urgency not in URGENCIES:
        raise CaseError(f"urgency {urgency!r} is not one of {list(URGENCIES)}")
    policy_name = _text(ticket.get("policy")) or source.policy or category.policy
    policy = pol_book.get(policy_name)
    when = to_local(received_at if received_at is not None else ticket.get("received_at"))
    hard = _flag(ticket.get("hard"))

    lon = _number(ticket.get("lon"), "lon")
    lat = _number(ticket.get("lat"), "lat")
    address = _text(ticket.get("address"))
    crs_text = _text(ticket.get("crs"))
    wlon = wlat = None
    crs_name = None
    if (lon is None) != (lat is None):
        raise CoordinateError("give both lon and lat, or neither (then an address)")
    if lon is not None and lat is not None:
        if crs_text is None:
            raise CRSError(
                "the coordinate has no crs; say which system it is in (phones give 'gcj02', "
                "Baidu 'bd09', GPS 'wgs84')"
            )
        wlon, wlat, crs_name = _to_wgs84(lon, lat, crs_text)
    elif address is None:
        raise CaseError("the ticket has neither a coordinate (lon, lat, crs) nor an address")

    place: Placement | None = None
    if isinstance(locate, Placement):
        place = locate
    elif locate is not None and wlon is not None and wlat is not None:
        place = locate(wlon, wlat)
    deadlines = policy.deadlines(
        when, category=category.code, urgency=urgency, hard=hard, calendar=cal
    )
    return Case(
        id=str(case_id),
        source=source.code,
        category=category.code,
        urgency=urgency,
        description=description,
        policy=policy.name,
        received_at=when,
        status="received" if place is not None else "unlocated",
        ticket_no=_text(ticket.get("ticket_no")),
        reporter_name=_text(ticket.get("reporter_name")),
        reporter_phone=_text(ticket.get("reporter_phone")),
        lon_given=lon,
        lat_given=lat,
        crs_given=crs_name,
        lon=wlon,
        lat=wlat,
        address=address,
        grid_code=place.grid_code if place else None,
        community_id=place.community_id if place else None,
        subdistrict=place.subdistrict if place else None,
        plan_id=place.plan_id if place else None,
        plan_version=place.plan_version if place else None,
        deadlines=deadlines,
        hard=hard,
    )


def check_unique_tickets(cases: Iterable[Case]) -> None:
    """Raise :class:`~gridmap.errors.ConflictError` if a ticket number repeats within a source.

    Examples
    --------
    >>> a = Case("C1", "hotline", "noise", "ordinary", "x", "12345",
    ...          to_local("2026-09-18"), ticket_no="T1")
    >>> check_unique_tickets([a, replace(a, id="C2", source="app")])
    >>> check_unique_tickets([a, replace(a, id="C2")])
    Traceback (most recent call last):
    ...
    gridmap.errors.ConflictError: ticket number 'T1' of source 'hotline' is used by cases C1 and ...
    """
    seen: dict[tuple[str, str], str] = {}
    for c in cases:
        if c.ticket_no is None:
            continue
        key = (c.source, c.ticket_no)
        if key in seen:
            raise ConflictError(
                f"ticket number {c.ticket_no!r} of source {c.source!r} is used by cases "
                f"{seen[key]} and {c.id}; a ticket number is unique per source — merge the "
                "duplicate or correct the number"
            )
        seen[key] = c.id


def intake_many(
    tickets: Any,
    *,
    ids: Iterable[str] | None = None,
    locate: Locator | None = None,
    calendar: WorkCalendar | None = None,
    policies: Policies | None = None,
    catalogue: Catalogue | None = None,
) -> list[Case]:
    """:func:`intake` every row of a DataFrame (or iterable of mappings).

    Errors name the row: ``"ticket row 3: unknown category ..."``. Ticket
    numbers must be unique per source within the batch.

    Examples
    --------
    >>> rows = [{"source": "app", "category": "noise", "description": "吵",
    ...          "address": "幸福路1号", "received_at": "2026-09-18 10:00"}]
    >>> [c.status for c in intake_many(rows)]
    ['unlocated']
    """
    records = tickets.to_dict("records") if hasattr(tickets, "to_dict") else list(tickets)
    id_list = list(ids) if ids is not None else [f"C{i + 1:06d}" for i in range(len(records))]
    if len(id_list) != len(records):
        raise CaseError(f"{len(id_list)} ids for {len(records)} tickets")

    cal = calendar or default_calendar()
    pol = policies or default_policies()
    cat = catalogue or default_catalogue()
    out = []
    for i, (cid, rec) in enumerate(zip(id_list, records, strict=True)):
        try:
            out.append(
                intake(rec, case_id=cid, locate=locate, calendar=cal, policies=pol, catalogue=cat)
            )
        except (CaseError, CoordinateError, ValueError) as exc:
            raise type(exc)(f"ticket row {i}: {exc}") from exc
    check_unique_tickets(out)
    return out
