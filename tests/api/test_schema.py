"""Schema = server: schemathesis generates requests from /openapi.json against the running app.

Two phases, with an admin key, the hand-made city published:

* **per operation**: up to 25 generated requests each; operations that revoke or
  rotate the key the run uses are covered by tests/api/test_keys.py instead;
* **stateful**: schemathesis's state machine follows the document's OpenAPI links
  (:mod:`gridmap.api.openapi_links`): take in a case → read it, its log, act on it with
  its ``ETag`` as ``If-Match`` → act again …; an Open311 request → read it back; a key
  → rotate it → revoke it; OGC collections → items → one item. 60 scenarios of up to 8
  steps, on a store of its own. Request data is mostly drawn from realistic tickets,
  visits, actions and versions (hooks on this test's schema), so that the chains start.
  (The plan and visit chains are declared too, but schemathesis seldom starts them:
  their first requests name plan, community, staff and household ids that no
  operation of the run creates.)

No answer may be a 5xx, and every answer must match the document: status code
listed, content type, headers and body schema. Failures are collected, not shrunk
(bounded time), and reported together with a curl command each.
"""

from __future__ import annotations

import collections
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Flaky  # noqa: E402
from schemathesis import checks  # noqa: E402

TOKENS: dict[str, str] = {}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
ACT = "POST /cases/{case_id}/{action}"
SCENARIOS, STEPS = 60, 8  # stateful phase: scenarios, and steps in each
#: Operations on a resource made earlier in the scenario (reached through a link).
BY_LINK = {
    "GET /cases/{case_id}",
    "GET /cases/{case_id}/log",
    "GET /open311/v2/requests/{service_request_id}.{fmt}",
    "POST /keys/{key_id}/rotate",
    "DELETE /keys/{key_id}",
    "GET /collections/{collection_id}/items/{feature_id}",
}


def _serve(folder: Path) -> tuple[Any, Any]:
    """The app over a new store with the hand-made city published, and an admin key."""
    import apidata

    from gridmap.api import Settings, create_app
    from gridmap.db import Store, save_layers, save_plan
    from gridmap.db.keys import create_key

    store = Store.from_url(f"sqlite:///{folder / 'city.db'}")
    layers = apidata.make_layers()
    save_layers(store, layers, author="setup")
    save_plan(store, apidata.make_plan(layers), author="setup", status="published")
    TOKENS["admin"] = create_key(store, name="schemathesis", role="admin", author="setup")[1]
    app = create_app(
        Settings(database_url="sqlite://", cases_sweep_seconds=0, refresh_seconds=0), store=store
    )
    return store, app


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store, app = _serve(tmp_path_factory.mktemp("schema"))
    yield store, app
    store.close()


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_asgi("/openapi.json", served[1]).exclude(
        path_regex=r"^/keys/\{key_id\}"
    )


def _headers() -> dict[str, str]:
    return {"X-API-Key": TOKENS["admin"]}


@pytest.mark.slow
def test_every_answer_matches_the_document(api_schema) -> None:
    # hypothesis driven directly, one operation after another (not schemathesis's pytest
    # plugin, which depends on pytest internals that change between minor releases)
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 40, "the document lost its operations"
    for op in operations:

        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def call(case) -> None:
            case.call_and_validate(headers=_headers(), checks=CHECKS)

        try:
            call()
        except (Exception, BaseExceptionGroup) as exc:  # every failing operation is reported
            failures.append(f"{op.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_the_links_resolve_to_operations_and_parameters(served) -> None:
    """Every declared link is in the document and schemathesis can follow it."""
    from gridmap.api.openapi_links import LINKS

    doc = served[1].openapi()
    written = [
        (method, path, status, name)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        for status, answer in op.get("responses", {}).items()
        for name in answer.get("links", {})
    ]
    declared = [(*link.source, link.name) for link in LINKS]
    assert sorted(written) == sorted(declared)  # all routers served: none skipped
    etag = doc["paths"]["/cases/{case_id}"]["get"]["responses"]["200"]["headers"]["ETag"]
    assert etag["schema"] == {"type": "string"}
    act = doc["paths"]["/cases"]["post"]["responses"]["201"]["links"]["ActOnCase"]
    assert act["parameters"] == {
        "path.case_id": "$response.body#/id",
        "header.if-match": "$response.header.ETag",
    }
    schema = schemathesis.openapi.from_asgi("/openapi.json", served[1])
    schema.as_state_machine()  # raises on a link it cannot follow
    assert schema.statistic.transitions.total >= len(LINKS)
    # where GetPlanIfChanged leads: 304, documented
    read = schema["/plans/{plan_id}"]["GET"]
    first = read.Case(path_parameters={"plan_id": 1}).call(headers=_headers())
    again = read.Case(
        path_parameters={"plan_id": 1}, headers={"If-None-Match": first.headers["etag"][0]}
    )
    assert again.call_and_validate(headers=_headers(), checks=CHECKS).status_code == 304


def _realistic_bodies(lon: float, lat: float) -> dict[str, st.SearchStrategy[Any]]:
    """Request bodies the server takes, per operation (to start the chains)."""
    import apidata

    from gridmap.cases import TZ
    from gridmap.cases.catalogue import default_catalogue

    codes = list(default_catalogue().codes)
    words = st.text(alphabet="噪音扰民垃圾路灯坏了请处理abc 123", min_size=1, max_size=20)
    ticket = st.fixed_dictionaries(
        {
            "source": st.sampled_from(["hotline", "app", "patrol", "12345"]),
            "category": st.sampled_from(codes),
            "description": words,
            "lon": st.just(lon),
            "lat": st.just(lat),
            "crs": st.sampled_from(["wgs84", "EPSG:4326"]),
        },
        optional={
            "ticket_no": st.sampled_from(["T1", "T2", "T3"]),  # repeats: 200, already stored
            "reporter_name": st.just("张三"),
            "reporter_phone": st.just("13900001234"),
            "urgency": st.sampled_from(["urgent", "ordinary"]),
        },
    )
    request = st.fixed_dictionaries(
        {
            "service_code": st.sampled_from(codes),
            "description": words,
            "lat": st.just(str(lat)),
            "long": st.just(str(lon)),
        }
    )
    visit = st.fixed_dictionaries(
        {
            "staff_id": st.just("s1"),
            "household_id": st.sampled_from(["b00-h0", "b00-h1", "b00-h2"]),  # grid …003
            "visited_at": st.builds(lambda: datetime.now(TZ).isoformat(timespec="seconds")),
            "outcome": st.sampled_from(["visited", "not_home"]),
        },
        optional={"notes": words, "follow_up_text": words},
    )
    action = st.fixed_dictionaries(
        {},
        optional={
            "note": words,
            "reason": words,
            "handler": st.just(f"grid:{apidata.G3}"),
            "grid": st.just(apidata.G3),
            "satisfaction": st.sampled_from(["satisfied", "dissatisfied"]),
        },
    )
    return {
        "POST /cases": ticket,
        "POST /open311/v2/requests.{fmt}": request,
        "POST /visits": visit,
        ACT: action,
    }


def _declares(operation: Any, where: str, name: str) -> bool:
    kind = {"path_parameters": "path", "headers": "header"}[where]
    return any(p.location.value == kind and p.name == name for p in operation.iter_parameters())


def _mostly(realistic: st.SearchStrategy[Any], drawn: Any) -> st.SearchStrategy[Any]:
    """Four times in five the realistic value, else the one schemathesis drew."""
    return st.integers(0, 4).flatmap(lambda i: st.just(drawn) if i == 0 else realistic)


@pytest.mark.slow
def test_call_sequences_along_the_links_match_the_document(tmp_path: Path) -> None:
    import apidata

    from gridmap.api.openapi_links import LINKS
    from gridmap.cases import ACTIONS
    from gridmap.db.keys import create_key, verify_key

    store, app = _serve(tmp_path)  # its own store: the same sequences whatever ran before
    # the operations the links join (the per-operation test covers every one alone)
    linked = {f"{m.upper()} {p}" for link in LINKS for m, p in (link.source[:2], link.target)}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(name=sorted(linked))
    bodies = _realistic_bodies(*apidata.lonlat(100, 100))  # inside grid …003

    @schema.hook("flatmap_body")
    def _body(ctx: Any, body: Any) -> st.SearchStrategy[Any]:
        realistic = bodies.get(ctx.operation.label) if ctx.operation else None
        return st.just(body) if realistic is None else _mostly(realistic, body)

    # an action of the table, often one of the usual way a new case goes (received → closed)
    usual = st.sampled_from(["accept", "dispatch", "start", "reply", "callback", "close"])
    action = st.one_of(usual, st.sampled_from(ACTIONS))
    # the cases the scenarios create are numbered from 1: acting on one of the first few
    # reaches a real case more often than following the link alone (whose id is random
    # whenever the link is not taken)
    case_ids = st.sampled_from(["1", "2", "3"])
    paths = {"action": action, "fmt": st.sampled_from(["json", "xml"]), "case_id": case_ids}
    # a version a new case or plan has (the link's ETag is not always taken, as If-Match is
    # optional in the document: the server answers 428 without it)
    versions = {"if-match": st.sampled_from(['"1"', '"2"', '"3"'])}

    def _known(values: dict[str, st.SearchStrategy[str]], where: str) -> None:
        @schema.hook(f"flatmap_{where}")
        def _hook(ctx: Any, params: Any) -> st.SearchStrategy[Any]:
            names = [k for k in values if ctx.operation and _declares(ctx.operation, where, k)]
            if not names:
                return st.just(params)
            served = st.fixed_dictionaries({k: values[k] for k in names})
            return _mostly(served.map(lambda v: {**(params or {}), **v}), params)

    _known(paths, "path_parameters")
    _known(versions, "headers")

    seen: collections.Counter[tuple[str, int]] = collections.Counter()
    failures: dict[str, str] = {}
    scenarios, flaky = [0], [0]

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            scenarios[0] += 1
            # a scenario may rotate or revoke the run's own key (an inferred link or a random
            # key id may reach it): start each scenario with a working one
            if verify_key(store, TOKENS["admin"]) is None:
                _, TOKENS["admin"] = create_key(store, name="st", role="admin", author="setup")

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": _headers()}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            seen[(case.operation.label, response.status_code)] += 1
            try:
                case.validate_response(
                    response, checks=CHECKS, headers=_headers(), recorder=self.recorder
                )
            except (Exception, BaseExceptionGroup) as exc:  # all reported at the end
                first = str(exc).strip().splitlines()
                key = f"{case.operation.label}: {first[0] if first else type(exc).__name__}"
                failures.setdefault(key, f"{exc}\n    {case.as_curl_command()}")

    # The server keeps its state between scenarios, so a replayed prefix may meet another
    # answer (a case already acted on) and Hypothesis stops with Flaky; schemathesis's own
    # runner carries on then, and so does this test, until the scenarios are run.
    for attempt in range(4):
        try:
            Machine.run(
                settings=settings(
                    max_examples=SCENARIOS - scenarios[0],
                    stateful_step_count=STEPS,
                    deadline=None,
                    derandomize=attempt == 0,
                    database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
            )
            break
        except Flaky:
            flaky[0] += 1
            if scenarios[0] >= SCENARIOS:
                break
    store.close()
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    # the chains were followed: resources made in the run read back, rotated, revoked …
    # (operations random ids almost never reach), and cases acted on at their version
    ran = f"{scenarios[0]} scenarios ({flaky[0]} Flaky restarts): {dict(seen)}"
    reached = {label for (label, code) in seen if label in BY_LINK and 200 <= code < 300}
    assert seen[("POST /cases", 201)] and len(reached) >= 3, ran
    acted = {code for (label, code) in seen if label == ACT}
    assert acted & {200, 409, 412}, ran  # a real case and a real action, not only 404/428
