"""Open311 GeoReport v2 words for cases (事件工单): services, statuses, requests, XML.

The pure half of the Open311 face (the routes are in :mod:`gridmap.api.routes.open311`):

* the category catalogue (:mod:`gridmap.cases.catalogue`) as the spec's *services*
  (``service_code`` = our category code, names in Chinese and English, the aliases
  as ``keywords``, the default urgency as ``group``; no attributes, so
  ``metadata`` is ``false``);
* our detailed states as the spec's ``open`` / ``closed``, with the detailed state
  in Chinese and English in ``status_notes``;
* a stored case (:meth:`gridmap.db.cases.CaseRecord.to_dict`) as a *service request*;
* the parameters of ``POST requests`` as a ticket for
  :func:`gridmap.db.cases.create_case`, checked with messages that say what to fix;
* the spec's XML shape (``<services><service>…``, ``<errors><error>…``).

Times are ISO 8601 with the +08:00 offset (Asia/Shanghai), as the spec requires a
time-zone designator.

>>> open311_status("in_progress"), open311_status("merged")
('open', 'closed')
>>> services(default_catalogue())[0]["service_name"]
'噪音扰民 (noise)'
"""

from __future__ import annotations

import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from gridmap.cases.calendar import TZ
from gridmap.cases.catalogue import Catalogue, Category, default_catalogue
from gridmap.cases.vocabulary import SATISFACTION, STATE_NAMES, STATES
from gridmap.errors import CaseError, CoordinateError, NotFoundError

__all__ = [
    "SPEC_URL",
    "FORMATS",
    "MEDIA_TYPES",
    "STATUS_LABELS",
    "CLOSED_STATES",
    "POST_FIELDS",
    "open311_status",
    "states_for",
    "status_notes",
    "service_name",
    "services",
    "service_definition",
    "find_service",
    "agency_responsible",
    "join_media",
    "split_media",
    "service_request",
    "service_notice",
    "ticket_from_request",
    "reporter_name",
    "parse_datetime",
    "w3c",
    "error_list",
    "to_xml",
]

#: The specification this face follows (the discovery document names it).
SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
#: Output formats, by the suffix of the resource (``requests.json``).
FORMATS: tuple[str, ...] = ("json", "xml")
#: Content type of each format (UTF-8, as the spec requires).
MEDIA_TYPES: Mapping[str, str] = MappingProxyType(
    {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
)

#: Every state in Chinese and English (what ``status_notes`` says).
STATUS_LABELS: Mapping[str, tuple[str, str]] = STATE_NAMES
#: States that Open311 calls ``closed`` (every other state is ``open``).
CLOSED_STATES: tuple[str, ...] = ("closed", "rejected", "merged")
#: Parameters of ``POST requests`` that are read (others are refused by name).
POST_FIELDS: tuple[str, ...] = (
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
    "crs",
)
_UNIT_LABELS = {"grid": "网格", "community": "社区", "subdistrict": "街道", "department": "部门"}
_MEDIA = "\n[media_url] "
_CJK = re.compile(r"[\u3400-\u9fff]")
_MAX_DESCRIPTION = 4000
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


# ----------------------------------------------------------------------------- statuses


def open311_status(state: str) -> str:
    """Return the Open311 status (``open`` or ``closed``) of one of our states.

    Examples
    --------
    >>> [open311_status(s) for s in ("received", "replied", "closed", "rejected")]
    ['open', 'open', 'closed', 'closed']
    """
    if state not in STATUS_LABELS:
        raise CaseError(f"unknown case state {state!r}; states: {list(STATES)}")
    return "closed" if state in CLOSED_STATES else "open"


def states_for(status: str | None) -> list[str] | None:
    """Return our states matching the spec's ``status`` filter (``open``, ``closed`` or both).

    Parameters
    ----------
    status : str or None
        Comma-separated ``open`` / ``closed``; None or empty: no filter.

    Raises
    ------
    CaseError
        Another value.

    Examples
    --------
    >>> states_for("closed")
    ['closed', 'rejected', 'merged']
    >>> len(states_for("open")), states_for(None)
    (10, None)
    """
    if status is None or not status.strip():
        return None
    wanted = {s.strip().lower() for s in status.split(",") if s.strip()}
    bad = sorted(wanted - {"open", "closed"})
    if bad:
        raise CaseError(
            f"status {', '.join(bad)!s} is not open or closed; use status=open, "
            "status=closed or status=open,closed"
        )
    return [s for s in STATES if open311_status(s) in wanted]


def status_notes(case: Mapping[str, Any]) -> str:
    """Return the detailed state of a case in Chinese and English (the spec's ``status_notes``).

    Parameters
    ----------
    case : mapping
        ``status`` and optionally ``satisfaction``, ``merged_into``, ``overdue``,
        ``provisional`` (as :meth:`gridmap.db.cases.CaseRecord.to_dict` gives them).

    Examples
    --------
    >>> status_notes({"status": "in_progress", "overdue": True})
    '办理中 in progress; 已超期 overdue'
    >>> status_notes({"status": "merged", "merged_into": "7"})
    '已合并 merged as a duplicate; 并入 merged into 7'
    >>> status_notes({"status": "callback", "satisfaction": "fairly_satisfied"})
    '已回访 called back; 回访 callback: 基本满意 fairly satisfied'
    """
    state = str(case["status"])
    zh, en = STATUS_LABELS.get(state, (state, state))
    parts = [f"{zh} {en}"]
    sat = case.get("satisfaction")
    if sat:
        parts.append(f"回访 callback: {SATISFACTION.get(sat, sat)} {str(sat).replace('_', ' ')}")
    if case.get("merged_into"):
        parts.append(f"并入 merged into {case['merged_into']}")
    if case.get("overdue"):
        parts.append("已超期 overdue")
    if case.get("provisional") and state not in CLOSED_STATES:
        parts.append("时限暂定 provisional deadline (holidays not yet published)")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- services


def service_name(category: Category) -> str:
    """Return the Chinese and English name of a category.

    Examples
    --------
    >>> service_name(default_catalogue().category("fire"))
    '消防隐患 (fire hazard)'
    """
    if category.name_en and category.name_en != category.name_zh:
        return f"{category.name_zh} ({category.name_en})"
    return category.name_zh


def _service_description(category: Category) -> str:
    urgent = category.urgency == "urgent"
    how = (
        "紧急事项，当天反馈 urgent: first feedback the same day" if urgent else "一般事项 ordinary"
    )
    return (
        f"{category.name_zh}: {category.name_en}. {how}; 时限标准 SLA policy {category.policy} "
        "(working days follow the State Council holiday notice)"
    )


def services(catalogue: Catalogue | None = None) -> list[dict[str, Any]]:
    """Return the catalogue as the spec's service list (``GET services``).

    Examples
    --------
    >>> s = services()
    >>> [x["service_code"] for x in s][:3], s[0]["metadata"], s[0]["type"]
    (['noise', 'garbage', 'road'], False, 'realtime')
    >>> s[0]["keywords"], s[5]["group"]
    ('噪音扰民,noise,噪音,扰民', '紧急 urgent')
    """
    cat = catalogue or default_catalogue()
    return [
        {
            "service_code": c.code,
            "service_name": service_name(c),
            "description": _service_description(c),
            "metadata": False,
            "type": "realtime",
            "keywords": ",".join(dict.fromkeys((c.name_zh, c.name_en, *c.aliases))),
            "group": "紧急 urgent" if c.urgency == "urgent" else "一般 ordinary",
        }
        for c in cat.categories
    ]


def find_service(catalogue: Catalogue | None, code: str | None) -> Category:
    """Return the category of a ``service_code`` (its code, or a Chinese/English name).

    Raises
    ------
    CaseError
        Missing or unknown code; the message lists the codes.

    Examples
    --------
    >>> find_service(None, "noise").name_zh, find_service(None, "垃圾清运").code
    ('噪音扰民', 'garbage')
    >>> find_service(None, "ufo")
    Traceback (most recent call last):
    ...
    gridmap.errors.CaseError: unknown service_code 'ufo'; use one of noise, garbage, ...
    """
    cat = catalogue or default_catalogue()
    known = ", ".join(cat.codes)
    text = (code or "").strip()
    if not text:
        raise CaseError(f"service_code is missing; use one of {known} (GET services.json)")
    for c in cat.categories:
        if c.code == text:
            return c
    try:
        return cat.category(text)
    except CaseError:
        raise CaseError(
            f"unknown service_code {text!r}; use one of {known} (GET services.json lists them)"
        ) from None


def service_definition(catalogue: Catalogue | None, code: str) -> dict[str, Any]:
    """Return the spec's service definition of a code: no attributes (``metadata`` is false).

    Our categories ask nothing beyond the request's own fields (urgency and hard
    items are decided by the dispatcher), so ``attributes`` is empty.

    Raises
    ------
    NotFoundError
        Unknown code.

    Examples
    --------
    >>> service_definition(None, "road")
    {'service_code': 'road', 'attributes': []}
    """
    try:
        c = find_service(catalogue, code)
    except CaseError as exc:
        raise NotFoundError(str(exc)) from None
    return {"service_code": c.code, "attributes": []}


# ----------------------------------------------------------------------------- requests


def w3c(value: Any) -> str | None:
    """Return a time as ISO 8601 in Asia/Shanghai to the second (``…+08:00``).

    Examples
    --------
    >>> w3c("2026-09-18T02:00:00+00:00"), w3c(None)
    ('2026-09-18T10:00:00+08:00', None)
    """
    if value is None or value == "":
        return None
    t = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if t.tzinfo is None:
        t = t.replace(tzinfo=TZ)
    return t.astimezone(TZ).isoformat(timespec="seconds")


def parse_datetime(text: str, *, name: str) -> dt.datetime:
    """Parse a W3C date-time (``2026-09-18T10:00:00+08:00``, ``…Z``, a date); naive = +08:00.

    Raises
    ------
    CaseError
        Not a date-time; the message names the parameter and shows the format.

    Examples
    --------
    >>> parse_datetime("2026-09-18T02:00:00Z", name="start_date").isoformat()
    '2026-09-18T10:00:00+08:00'
    >>> parse_datetime("2026-09-18", name="end_date").isoformat()
    '2026-09-18T00:00:00+08:00'
    """
    raw = (text or "").strip()
    try:
        t = dt.datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise CaseError(
            f"{name} {text!r} is not a W3C date-time; write it like 2026-09-18T10:00:00+08:00 "
            "or 2026-09-18T02:00:00Z"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=TZ)
    return t.astimezone(TZ)


def agency_responsible(case: Mapping[str, Any]) -> str:
    """Return who handles a case: the lead handler, else the grid at intake, else dispatch.

    Examples
    --------
    >>> agency_responsible({"handlers": [{"kind": "department", "unit": "城管局", "lead": True}]})
    '部门 城管局'
    >>> agency_responsible({"handlers": [], "grid_code": "320104001001001"})
    '网格 320104001001001'
    >>> agency_responsible({"handlers": []})
    '调度中心 dispatch centre'
    """
    handlers = list(case.get("handlers") or [])
    lead = next((h for h in handlers if h.get("lead")), handlers[0] if handlers else None)
    if lead is not None:
        return f"{_UNIT_LABELS.get(lead['kind'], lead['kind'])} {lead['unit']}"
    if case.get("grid_code"):
        return f"网格 {case['grid_code']}"
    return "调度中心 dispatch centre"


def join_media(description: str, media_url: str | None) -> str:
    r"""Return a description with a media URL kept on its last line (see :func:`split_media`).

    Examples
    --------
    >>> join_media("井盖缺失", "https://x.cn/1.jpg")
    '井盖缺失\n[media_url] https://x.cn/1.jpg'
    """
    return description if not media_url else f"{description}{_MEDIA}{media_url}"


def split_media(description: str | None) -> tuple[str | None, str | None]:
    """Return ``(description, media_url)`` of a stored description.

    Examples
    --------
    >>> split_media(join_media("井盖缺失", "https://x.cn/1.jpg"))
    ('井盖缺失', 'https://x.cn/1.jpg')
    >>> split_media("井盖缺失")
    ('井盖缺失', None)
    """
    if description is None or _MEDIA not in description:
        return description, None
    text, _, url = description.rpartition(_MEDIA)
    return text, url.strip() or None


def service_notice(case: Mapping[str, Any]) -> str | None:
    """Return what the requester should expect (the spec's ``service_notice``).

    Examples
    --------
    >>> service_notice({"status": "received", "due_at": "2026-09-22T23:59:59+08:00"})
    '办结时限 to be resolved by 2026-09-22T23:59:59+08:00'
    >>> service_notice({"status": "unlocated", "due_at": None})
    '待调度员定位后派单 a dispatcher will place it on the map and dispatch it'
    """
    state = case.get("status")
    if state == "unlocated":
        return "待调度员定位后派单 a dispatcher will place it on the map and dispatch it"
    if state in CLOSED_STATES:
        return None
    due = w3c(case.get("due_at"))
    if due is None:
        return None
    extra = " (provisional)" if case.get("provisional") else ""
    return f"办结时限 to be resolved by {due}{extra}"


def service_request(
    case: Mapping[str, Any],
    catalogue: Catalogue | None = None,
    *,
    personal: bool = False,
) -> dict[str, Any]:
    """Return a stored case as the spec's service request.

    Parameters
    ----------
    case : mapping
        :meth:`gridmap.db.cases.CaseRecord.to_dict` of the case.
    catalogue : Catalogue, optional
        For the service name (default: the shipped one).
    personal : bool, default False
        Add the reporter's name and contact (``reporter_name``,
        ``reporter_phone``, extensions of the spec) — only for roles that may
        see them.

    Examples
    --------
    >>> r = service_request({"id": 3, "status": "dispatched", "category": "noise",
    ...     "description": "夜间施工", "received_at": "2026-09-18T10:00:00+08:00",
    ...     "updated_at": "2026-09-18T11:00:00+08:00", "due_at": "2026-09-24T23:59:59+08:00",
    ...     "handlers": [{"kind": "grid", "unit": "G1", "lead": True}],
    ...     "lon": 118.8, "lat": 32.05, "address": None})
    >>> r["service_request_id"], r["status"], r["status_notes"], r["agency_responsible"]
    ('3', 'open', '已派单 dispatched', '网格 G1')
    >>> r["expected_datetime"], r["long"], "reporter_name" in r
    ('2026-09-24T23:59:59+08:00', 118.8, False)
    """
    cat = catalogue or default_catalogue()
    try:
        name: str | None = service_name(cat.category(case["category"]))
    except CaseError:  # a category since removed from the catalogue
        name = None
    text, media = split_media(case.get("description"))
    out: dict[str, Any] = {
        "service_request_id": str(case["id"]),
        "status": open311_status(case["status"]),
        "status_notes": status_notes(case),
        "service_name": name,
        "service_code": case["category"],
        "description": text,
        "agency_responsible": agency_responsible(case),
        "service_notice": service_notice(case),
        "requested_datetime": w3c(case.get("received_at")),
        "updated_datetime": w3c(case.get("updated_at") or case.get("received_at")),
        "expected_datetime": w3c(case.get("due_at")),
        "address": case.get("address"),
        "address_id": None,
        "zipcode": None,
        "lat": case.get("lat"),
        "long": case.get("lon"),
        "media_url": media,
    }
    if personal:
        out["reporter_name"] = case.get("reporter_name")
        out["reporter_phone"] = case.get("reporter_phone")
    return out


def reporter_name(first: str | None, last: str | None) -> str | None:
    """Return one name from the spec's ``first_name`` and ``last_name``.

    Chinese names are family name first without a space (张 + 三 → 张三).

    Examples
    --------
    >>> reporter_name("三", "张"), reporter_name("Li", "Wang"), reporter_name(None, None)
    ('张三', 'Li Wang', None)
    """
    f, la = (first or "").strip(), (last or "").strip()
    if not f and not la:
        return None
    if _CJK.search(f + la):
        return la + f
    return " ".join(p for p in (f, la) if p)


def _number(params: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    raw = params.get(key)
    if raw is None or str(raw).strip() == "":
        return None
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise CoordinateError(
            f"{key} {raw!r} is not a number; send decimal degrees, e.g. lat=32.0415&long=118.7849"
        ) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise CoordinateError(f"{key} {raw!r} is outside [{low}, {high}] degrees")
    return value


def ticket_from_request(
    params: Mapping[str, Any],
    *,
    catalogue: Catalogue | None = None,
    source: str = "app",
) -> dict[str, Any]:
    """Check the parameters of ``POST requests`` and return a ticket for ``create_case``.

    ``lat``/``long`` are WGS84 (the spec) unless the extension parameter ``crs``
    says otherwise (``gcj02`` from a WeChat or AMap client). ``first_name`` and
    ``last_name`` become the reporter's name; ``phone`` and ``email`` its contact
    (``phone / email`` when both); ``media_url`` is kept with the description.
    ``address_id``, ``device_id`` and ``account_id`` are accepted and not stored.

    Raises
    ------
    CaseError
        Unknown parameter, unknown ``service_code``, no description, neither a
        location nor an address, a bad e-mail or media URL.
    CoordinateError
        ``lat``/``long`` not numbers, out of range, or only one of them.

    Examples
    --------
    >>> t = ticket_from_request({"service_code": "road", "lat": "32.04", "long": "118.78",
    ...                          "description": "路面塌陷", "first_name": "三",
    ...                          "last_name": "张", "phone": "13812345678"})
    >>> t["category"], t["lon"], t["lat"], t["crs"], t["reporter_name"], t["source"]
    ('road', 118.78, 32.04, 'wgs84', '张三', 'app')
    >>> ticket_from_request({"service_code": "road", "description": "x"})
    Traceback (most recent call last):
    ...
    gridmap.errors.CaseError: the request has no location: send lat and long ...
    """
    unknown = sorted(
        k for k in params if k not in POST_FIELDS and not str(k).startswith("attribute[")
    )
    if unknown:
        raise CaseError(
            f"unknown parameter(s) {unknown}; GeoReport v2 POST requests takes "
            f"{', '.join(POST_FIELDS)}"
        )

    def text(key: str) -> str | None:
        value = params.get(key)
        return str(value).strip() or None if value is not None else None

    category = find_service(catalogue, text("service_code"))
    description = text("description")
    if description is None:
        raise CaseError(
            "description is missing; say what happened (e.g. description=楼下夜间施工噪音)"
        )
    if len(description) > _MAX_DESCRIPTION:
        raise CaseError(
            f"description has {len(description)} characters; the spec allows {_MAX_DESCRIPTION}"
        )
    media = text("media_url")
    if media is not None and not _URL.match(media):
        raise CaseError(f"media_url {media!r} is not an http(s) URL of the picture")
    lat = _number(params, "lat", -90.0, 90.0)
    lon = _number(params, "long", -180.0, 180.0)
    if (lat is None) != (lon is None):
        raise CoordinateError("send both lat and long (WGS84 decimal degrees), or neither")
    address = text("address_string")
    if lat is None and address is None:
        raise CaseError("the request has no location: send lat and long (WGS84), or address_string")
    email, phone = text("email"), text("phone")
    if email is not None and "@" not in email:
        raise CaseError(f"email {email!r} is not an e-mail address")
    contact = " / ".join(v for v in (phone, email) if v) or None
    ticket: dict[str, Any] = {
        "source": source,
        "category": category.code,
        "description": join_media(description, media),
        "reporter_name": reporter_name(text("first_name"), text("last_name")),
        "reporter_phone": contact,
        "address": address,
    }
    if lat is not None and lon is not None:
        ticket.update(lon=lon, lat=lat, crs=text("crs") or "wgs84")
    return {k: v for k, v in ticket.items() if v is not None}


# ----------------------------------------------------------------------------- encoding


def error_list(code: int, description: str) -> list[dict[str, Any]]:
    """Return the spec's error body: a list of ``{code, description}``.

    Examples
    --------
    >>> error_list(404, "no request 9")
    [{'code': 404, 'description': 'no request 9'}]
    """
    return [{"code": int(code), "description": str(description)}]


_SINGULAR = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}


def _fill(elem: ET.Element, value: Any) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _fill(ET.SubElement(elem, str(k)), v)
    elif isinstance(value, list | tuple):
        child = _SINGULAR.get(elem.tag, "item")
        for v in value:
            _fill(ET.SubElement(elem, child), v)
    elif isinstance(value, bool):
        elem.text = "true" if value else "false"
    elif value is not None:
        elem.text = str(value)


def to_xml(root: str, value: Mapping[str, Any] | Sequence[Any] | Iterable[Any]) -> bytes:
    """Encode a response in the spec's XML shape (UTF-8, with the XML declaration).

    Lists become repeated children named by the singular of their parent
    (``services`` → ``service``, ``service_requests`` → ``request``, ``errors`` →
    ``error``); booleans are ``true``/``false``; None is an empty element.

    Examples
    --------
    >>> print(to_xml("errors", error_list(400, "bad lat")).decode())
    <?xml version='1.0' encoding='utf-8'?>
    <errors><error><code>400</code><description>bad lat</description></error></errors>
    """
    elem = ET.Element(root)
    _fill(elem, value if isinstance(value, Mapping) else list(value))
    return ET.tostring(elem, encoding="utf-8", xml_declaration=True)
