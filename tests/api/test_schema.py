"""Schema = server: schemathesis generates requests from /openapi.json against the running app.

Every operation gets up to 25 generated requests (an admin key, the hand-made city
published); no answer may be a 5xx, and every answer must match the document:
status code listed, content type, headers and body schema. Operations that revoke or
rotate the key the run uses are covered by tests/api/test_keys.py instead.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
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


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_matches_the_document(case) -> None:
    case.call_and_validate(headers={"X-API-Key": TOKENS["admin"]}, checks=CHECKS)
