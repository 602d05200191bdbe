"""Schema = server: schemathesis generates requests from /openapi.json against the running app.

Every operation gets up to 25 generated requests (an admin key, the hand-made city
published); no answer may be a 5xx, and every answer must match the document:
status code listed, content type, headers and body schema. Operations that revoke or
rotate the key the run uses are covered by tests/api/test_keys.py instead.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

TOKENS: dict[str, str] = {}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):
    import apidata

    from gridmap.api import Settings, create_app
    from gridmap.db import Store, save_layers, save_plan
    from gridmap.db.keys import create_key

    store = Store.from_url(f"sqlite:///{tmp_path_factory.mktemp('schema') / 'city.db'}")
    layers = apidata.make_layers()
    save_layers(store, layers, author="setup")
    save_plan(store, apidata.make_plan(layers), author="setup", status="published")
    TOKENS["admin"] = create_key(store, name="schemathesis", role="admin", author="setup")[1]
    app = create_app(
        Settings(database_url="sqlite://", cases_sweep_seconds=0, refresh_seconds=0), store=store
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app).exclude(
        path_regex=r"^/keys/\{key_id\}"
    )


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
            case.call_and_validate(headers={"X-API-Key": TOKENS["admin"]}, checks=CHECKS)

        try:
            call()
        except (Exception, BaseExceptionGroup) as exc:  # every failing operation is reported
            failures.append(f"{op.label}: {exc}")
    assert not failures, "\n\n".join(failures)
