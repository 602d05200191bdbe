"""OpenAPI links: which answer feeds which next request (for clients and stateful tests).

An OpenAPI 3 *link* on a response says how a value of that response (``$response.body#/id``,
``$response.header.ETag``) or of its request (``$request.path.case_id``) fills a
parameter of another operation. Generated clients and the API docs show them; and
schemathesis's stateful phase follows them to build call sequences (take in a case,
read it, act on it with its ``ETag`` as ``If-Match``, read its log …) that random
independent requests never reach.

All links are declared here, in :data:`LINKS`, by method and path (not by the
operation ids FastAPI derives from function names), and :func:`add_links` writes them
into the generated document (``gridmap.api.app`` calls it once, when the document is
built). A link whose source or target operation is not served (an optional router
left out) is skipped; a link naming a parameter its target does not declare is a
programming error and raises.

Examples
--------
>>> doc = {"paths": {
...     "/things": {"post": {"responses": {"201": {"description": "made"}}}},
...     "/things/{thing_id}": {"get": {"operationId": "get_thing", "responses": {},
...         "parameters": [{"name": "thing_id", "in": "path", "required": True}]}}}}
>>> rule = Link("GetThing", ("post", "/things", "201"), ("get", "/things/{thing_id}"),
...             {"path.thing_id": "$response.body#/id"}, "the new thing")
>>> links = add_links(doc, (rule,))["paths"]["/things"]["post"]["responses"]["201"]["links"]
>>> links["GetThing"]["operationId"], links["GetThing"]["parameters"]
('get_thing', {'path.thing_id': '$response.body#/id'})
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Link", "LINKS", "add_links"]


@dataclass(frozen=True)
class Link:
    """One OpenAPI link: from a response of one operation to another operation.

    Attributes
    ----------
    name : str
        The link's name in the response's ``links`` (``GetCase`` …).
    source : tuple of str
        ``(method, path, status)`` of the response that carries the link.
    target : tuple of str
        ``(method, path)`` of the operation it leads to.
    parameters : dict
        ``"<in>.<name>"`` (``path.case_id``, ``header.If-Match``, ``query.grid``) to a
        runtime expression or a constant.
    description : str
        What following the link does.
    """

    name: str
    source: tuple[str, str, str]
    target: tuple[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    description: str = ""


_CASE = "/cases/{case_id}"
_ACT = "/cases/{case_id}/{action}"
_O311 = "/open311/v2"
_PLAN = "/plans/{plan_id}"
_ETAG = "$response.header.ETag"

#: Response headers the links read (documented on the responses that carry them).
_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": 'The version, e.g. "3": send it back as If-Match to change the resource',
        "schema": {"type": "string"},
    },
}

#: Every link of the service's document.
LINKS: tuple[Link, ...] = (
    # --- cases: take in → read, log, act (If-Match: the ETag) → read, act again …
    *(
        Link(name, ("post", "/cases", status), target, params, what)
        for status in ("201", "200")
        for name, target, params, what in (
            ("GetCase", ("get", _CASE), {"path.case_id": "$response.body#/id"}, "read the case"),
            (
                "GetCaseLog",
                ("get", f"{_CASE}/log"),
                {"path.case_id": "$response.body#/id"},
                "its 办理轨迹",
            ),
            (
                "ActOnCase",
                ("post", _ACT),
                {"path.case_id": "$response.body#/id", "header.If-Match": _ETAG},
                "act on the case, at the version just answered",
            ),
            (
                "GetServiceRequest",
                ("get", f"{_O311}/requests/{{service_request_id}}.{{fmt}}"),
                {"path.service_request_id": "$response.body#/id", "path.fmt": "json"},
                "the case as an Open311 service request",
            ),
        )
    ),
    Link(
        "GetCase",
        ("get", "/cases", "200"),
        ("get", _CASE),
        {"path.case_id": "$response.body#/data/0/id"},
        "the newest case of the page",
    ),
    Link(
        "GetCase",
        ("post", "/cases/import", "200"),
        ("get", _CASE),
        {"path.case_id": "$response.body#/ids/0"},
        "the first case the import created",
    ),
    Link(
        "ActOnCase",
        ("get", _CASE, "200"),
        ("post", _ACT),
        {"path.case_id": "$request.path.case_id", "header.If-Match": _ETAG},
        "act on the case at the version read",
    ),
    Link(
        "GetCaseLog",
        ("get", _CASE, "200"),
        ("get", f"{_CASE}/log"),
        {"path.case_id": "$request.path.case_id"},
        "its 办理轨迹",
    ),
    Link(
        "GetCase",
        ("post", _ACT, "200"),
        ("get", _CASE),
        {"path.case_id": "$request.path.case_id"},
        "read the case after the action",
    ),
    Link(
        "ActAgain",
        ("post", _ACT, "200"),
        ("post", _ACT),
        {"path.case_id": "$request.path.case_id", "header.If-Match": _ETAG},
        "the next action, at the new version",
    ),
    Link(
        "GetCaseLog",
        ("post", _ACT, "200"),
        ("get", f"{_CASE}/log"),
        {"path.case_id": "$request.path.case_id"},
        "the log with the action just taken",
    ),
    Link(
        "RetryAtCurrentVersion",
        ("post", _ACT, "412"),
        ("post", _ACT),
        {
            "path.case_id": "$request.path.case_id",
            "path.action": "$request.path.action",
            "header.If-Match": _ETAG,
        },
        "retry at the current version the 412 answer names",
    ),
    # --- Open311: a new request → read it back (as a request and as a case)
    Link(
        "GetServiceRequest",
        ("post", f"{_O311}/requests.{{fmt}}", "201"),
        ("get", f"{_O311}/requests/{{service_request_id}}.{{fmt}}"),
        {
            "path.service_request_id": "$response.body#/0/service_request_id",
            "path.fmt": "$request.path.fmt",
        },
        "the new request",
    ),
    Link(
        "GetCase",
        ("post", f"{_O311}/requests.{{fmt}}", "201"),
        ("get", _CASE),
        {"path.case_id": "$response.body#/0/service_request_id"},
        "the new request as a case",
    ),
    Link(
        "GetServiceRequest",
        ("get", f"{_O311}/requests.{{fmt}}", "200"),
        ("get", f"{_O311}/requests/{{service_request_id}}.{{fmt}}"),
        {
            "path.service_request_id": "$response.body#/0/service_request_id",
            "path.fmt": "$request.path.fmt",
        },
        "the newest request of the page",
    ),
    Link(
        "GetService",
        ("get", f"{_O311}/services.{{fmt}}", "200"),
        ("get", f"{_O311}/services/{{service_code}}.{{fmt}}"),
        {"path.service_code": "$response.body#/0/service_code", "path.fmt": "$request.path.fmt"},
        "the first service's definition",
    ),
    # --- visits: a record → the household's records, the grid's due list and register,
    # the worker's route, the case a follow-up opened
    *(
        Link(name, ("post", "/visits", "201"), target, params, what)
        for name, target, params, what in (
            (
                "ListHouseholdVisits",
                ("get", "/visits"),
                {"query.household": "$response.body#/household_id"},
                "the household's visits",
            ),
            (
                "VisitsDue",
                ("get", "/visits/due"),
                {"query.grid": "$response.body#/grid_code"},
                "the grid's visits due",
            ),
            (
                "Register",
                ("get", "/visits/register"),
                {"query.grid": "$response.body#/grid_code"},
                "the grid's 四清 register",
            ),
            (
                "StaffRoute",
                ("get", "/visits/route"),
                {"query.staff": "$response.body#/staff_id"},
                "the worker's route",
            ),
            (
                "FollowUpCase",
                ("get", _CASE),
                {"path.case_id": "$response.body#/case_id"},
                "the case the follow-up opened (when one was)",
            ),
        )
    ),
    Link(
        "VisitsDue",
        ("get", "/visits", "200"),
        ("get", "/visits/due"),
        {"query.grid": "$response.body#/data/0/grid_code"},
        "the newest record's grid: its visits due",
    ),
    # --- plans: a partition run → its job → the new plan → grids, export, edits, publish
    Link(
        "GetJob",
        ("post", "/plans", "202"),
        ("get", "/plans/jobs/{job_id}"),
        {"path.job_id": "$response.body#/id"},
        "poll the partition run",
    ),
    Link(
        "GetPlan",
        ("get", "/plans/jobs/{job_id}", "200"),
        ("get", _PLAN),
        {"path.plan_id": "$response.body#/result/plan_id"},
        "the plan the finished run stored",
    ),
    Link(
        "GetPlan",
        ("get", "/plans", "200"),
        ("get", _PLAN),
        {"path.plan_id": "$response.body#/data/0/id"},
        "the oldest plan of the list",
    ),
    *(
        Link(name, ("get", _PLAN, "200"), target, params, what)
        for name, target, params, what in (
            (
                "GetGrids",
                ("get", f"{_PLAN}/grids"),
                {"path.plan_id": "$request.path.plan_id"},
                "its grids",
            ),
            (
                "Export",
                ("get", f"{_PLAN}/export"),
                {"path.plan_id": "$request.path.plan_id"},
                "export it",
            ),
            (
                "Edit",
                ("post", f"{_PLAN}/edits"),
                {"path.plan_id": "$request.path.plan_id", "header.If-Match": _ETAG},
                "edit it at the version read",
            ),
            (
                "Publish",
                ("post", f"{_PLAN}/publish"),
                {"path.plan_id": "$request.path.plan_id", "header.If-Match": _ETAG},
                "publish it at the version read",
            ),
            (
                "GetPlanIfChanged",
                ("get", _PLAN),
                {"path.plan_id": "$request.path.plan_id", "header.If-None-Match": _ETAG},
                "read it again only if it changed (304 otherwise)",
            ),
            (
                "DiffFrom",
                ("get", "/plans/{a}/diff/{b}"),
                {"path.a": "$request.path.plan_id"},
                "compare it with another plan",
            ),
            (
                "Map",
                ("get", "/maps/plans/{plan_id}"),
                {"path.plan_id": "$request.path.plan_id"},
                "its map",
            ),
        )
    ),
    *(
        Link(name, (method, f"{_PLAN}/{what}", "200"), target, params, text)
        for method, what in (("post", "edits"), ("post", "publish"))
        for name, target, params, text in (
            ("GetPlan", ("get", _PLAN), {"path.plan_id": "$request.path.plan_id"}, "read it"),
            (
                "EditAgain",
                ("post", f"{_PLAN}/edits"),
                {"path.plan_id": "$request.path.plan_id", "header.If-Match": _ETAG},
                "edit it at the new version",
            ),
        )
    ),
    *(
        Link(
            "RetryAtCurrentVersion",
            ("post", f"{_PLAN}/{what}", "412"),
            ("post", f"{_PLAN}/{what}"),
            {"path.plan_id": "$request.path.plan_id", "header.If-Match": _ETAG},
            "retry at the current version the 412 answer names",
        )
        for what in ("edits", "publish")
    ),
    # --- keys: a new key → rotate it, revoke it
    Link(
        "Rotate",
        ("post", "/keys", "201"),
        ("post", "/keys/{key_id}/rotate"),
        {"path.key_id": "$response.body#/id"},
        "give the new key another secret",
    ),
    Link(
        "Revoke",
        ("post", "/keys", "201"),
        ("delete", "/keys/{key_id}"),
        {"path.key_id": "$response.body#/id"},
        "revoke the new key",
    ),
    Link(
        "Revoke",
        ("post", "/keys/{key_id}/rotate", "200"),
        ("delete", "/keys/{key_id}"),
        {"path.key_id": "$request.path.key_id"},
        "revoke the rotated key",
    ),
    # --- OGC API – Features: collections → a collection → its items → one item
    *(
        Link(name, ("get", "/collections", "200"), target, params, what)
        for name, target, params, what in (
            (
                "GetCollection",
                ("get", "/collections/{collection_id}"),
                {"path.collection_id": "$response.body#/collections/0/id"},
                "the first collection",
            ),
            (
                "GetItems",
                ("get", "/collections/{collection_id}/items"),
                {"path.collection_id": "$response.body#/collections/0/id"},
                "its features",
            ),
        )
    ),
    Link(
        "GetItem",
        ("get", "/collections/{collection_id}/items", "200"),
        ("get", "/collections/{collection_id}/items/{feature_id}"),
        {
            "path.collection_id": "$request.path.collection_id",
            "path.feature_id": "$response.body#/features/0/id",
        },
        "the first feature of the page",
    ),
)

_HEADER_EXPR = re.compile(r"^\$response\.header\.([A-Za-z0-9-]+)$")


def _operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    op = doc.get("paths", {}).get(path, {}).get(method)
    return op if isinstance(op, dict) else None


def _declared(target: dict[str, Any], where: str, name: str) -> str | None:
    """Return the target's own spelling of a parameter (header names ignore case)."""
    for p in target.get("parameters", []):
        if p.get("in") == where and (
            p.get("name") == name
            or (where == "header" and p.get("name", "").lower() == name.lower())
        ):
            return str(p["name"])
    return None


def add_links(doc: dict[str, Any], links: tuple[Link, ...] = LINKS) -> dict[str, Any]:
    """Write ``links`` into an OpenAPI document (in place) and return it.

    A link whose source response or target operation the document lacks is skipped
    (an optional router not served). Response headers a link reads
    (``$response.header.ETag``) are documented on its source response.

    Parameters
    ----------
    doc : dict
        The OpenAPI document (``app.openapi()``).
    links : tuple of Link, default LINKS
        The links to write.

    Returns
    -------
    dict
        ``doc``, with ``links`` on the source responses.

    Raises
    ------
    ValueError
        A link's target has no operationId, or does not declare a parameter the link
        fills.
    """
    for link in links:
        method, path, status = link.source
        source = _operation(doc, method, path)
        target = _operation(doc, *link.target)
        response = (source or {}).get("responses", {}).get(status)
        if source is None or target is None or response is None:
            continue
        if "operationId" not in target:
            raise ValueError(f"link {link.name}: {link.target} has no operationId")
        params: dict[str, str] = {}
        for key, expression in link.parameters.items():
            where, _, name = key.partition(".")
            declared = _declared(target, where, name)
            if declared is None:
                raise ValueError(
                    f"link {link.name} of {method.upper()} {path} {status}: "
                    f"{link.target[0].upper()} {link.target[1]} has no {where} parameter {name!r}"
                )
            params[f"{where}.{declared}"] = expression
            header = _HEADER_EXPR.match(expression)
            if header and header.group(1) in _HEADERS:
                response.setdefault("headers", {}).setdefault(
                    header.group(1), dict(_HEADERS[header.group(1)])
                )
        entry: dict[str, Any] = {"operationId": target["operationId"], "parameters": params}
        if link.description:
            entry["description"] = link.description
        response.setdefault("links", {})[link.name] = entry
    return doc
