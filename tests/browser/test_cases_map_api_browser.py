"""The API's case map (``/maps/cases``) in a real Chromium: no caller in the page, on click only.

A small synthetic city with 24 cases (each with a caller's name and phone) is served by a
real uvicorn; a dispatcher signs in at ``/login`` (session cookie), opens the map, clicks a
case: the popup reads ``GET /cases/{id}`` and shows the caller — and that read is audited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from clirun import free_port
from conftest import FIND_MAP, OpenedMap, _attach

pytestmark = pytest.mark.browser

READY = "() => {{ var m = window[{name!r}]; return !!(m.gridmapCases && m.gridmapCases.ready); }}"

CLICK = """([name, k]) => {
    var c = window[name].gridmapCases.cluster;
    var l = c.getLayers().filter(function (m) { return m._gm === k; })[0];
    c.fire("click", {layer: l, latlng: l.getLatLng()});
    return true;
}"""


@dataclass
class Service:
    base: str
    keys: dict[str, str]
    store: object
    cases: pd.DataFrame  # id, reporter_name, reporter_phone as stored


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    uvicorn = pytest.importorskip("uvicorn")
    from gridmap.api import Settings, create_app
    from gridmap.cases import synth_cases
    from gridmap.db import Store, save_layers, save_plan
    from gridmap.db.cases import get_case, import_cases
    from gridmap.db.keys import create_key
    from gridmap.partition import partition
    from gridmap.synth import synth_city
    from gridmap.validation import validate_layers

    layers, _ = validate_layers(synth_city(n_buildings=300, seed=2))
    plan = partition(layers, seed=0)
    url = f"sqlite:///{tmp_path_factory.mktemp('cases-api') / 'gridmap.db'}"
    store = Store.from_url(url)
    save_layers(store, layers, author="pytest")
    save_plan(store, plan, author="pytest", status="published")
    tickets = synth_cases(plan, n=24, start="2026-11-01", days=10, seed=4)
    tickets = tickets.drop(columns=["true_grid", "resolve_due", "replied_at", "late"])
    created = import_cases(store, tickets, author="pytest").created
    stored = [get_case(store, cid).case for cid in created]
    cases = pd.DataFrame(
        {
            "id": [int(c.id) for c in stored],
            "reporter_name": [c.reporter_name for c in stored],
            "reporter_phone": [c.reporter_phone for c in stored],
        }
    )
    keys = {
        r: create_key(store, name=r, role=r, author="pytest")[1] for r in ("viewer", "dispatcher")
    }
    port = free_port()
    app = create_app(Settings(database_url=url, cases_sweep_seconds=0), store=store)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "uvicorn did not start"
    try:
        yield Service(base=f"http://127.0.0.1:{port}", keys=keys, store=store, cases=cases)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()


def _signed_in_map(chromium, service: Service, role: str) -> tuple[OpenedMap, str, object]:
    """Sign in with ``role``'s key (session cookie), open /maps/cases; return page and its HTML."""
    context = chromium.new_context(viewport={"width": 1100, "height": 800}, locale="zh-CN")
    page = context.new_page()
    opened = OpenedMap(page=page, map_name="", path=Path(service.base))
    _attach(page, opened, offline=True)
    page.goto(f"{service.base}/login", wait_until="load")
    page.fill("#key", service.keys[role])
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    response = page.goto(f"{service.base}/maps/cases", wait_until="load")
    assert response is not None and response.status == 200
    html = response.text()
    # a selector wait, not a polled script: the pages' CSP forbids eval
    page.wait_for_selector(".leaflet-container", state="attached")
    page.wait_for_function(f"({FIND_MAP})() !== null")
    opened.map_name = page.evaluate(FIND_MAP)
    deadline = time.monotonic() + 60
    while not page.evaluate(READY.format(name=opened.map_name)):
        assert time.monotonic() < deadline, "the cases never reached the cluster layer"
        page.wait_for_timeout(100)
    return opened, html, context


def _popup_after_click(opened: OpenedMap, k: int, wait_for: str | None) -> str:
    opened.evaluate(CLICK, [opened.map_name, k])
    popup = opened.page.locator(".leaflet-popup-content")
    if wait_for:
        popup.filter(has_text=wait_for).wait_for(timeout=15_000)
    else:
        popup.wait_for(timeout=15_000)
    return popup.inner_text()


def test_dispatcher_page_has_no_phone_yet_the_popup_shows_the_caller(
    service: Service, chromium, artifacts: Path
) -> None:
    from gridmap.db import list_audit

    opened, html, context = _signed_in_map(chromium, service, "dispatcher")
    try:
        n_cases = opened.evaluate(f"() => window.{opened.map_name}.gridmapCases.total")
        assert n_cases == len(service.cases) == 24
        for name, phone in zip(
            service.cases["reporter_name"], service.cases["reporter_phone"], strict=True
        ):
            assert phone and phone not in html and name not in html
        before = len(list_audit(service.store, entity="case"))
        # a click on the third case: its popup reads the case from the service
        text = _popup_after_click(opened, 2, "来电人 Caller")
        case_id = int(text.split("事件 Case ")[1].split()[0])
        row = service.cases.set_index("id").loc[case_id]
        assert row["reporter_name"] in text and row["reporter_phone"] in text
        assert "电话 Phone" in text and "读取中" not in text
        opened.page.screenshot(path=str(artifacts / "api_cases_map_caller_popup.png"))
        audit = list_audit(service.store, entity="case")
        assert len(audit) == before + 1  # the click's read, and only it
        assert audit.iloc[-1]["action"] == "read.personal"
        assert str(audit.iloc[-1]["entity_id"]) == str(case_id)
        assert opened.page_errors == [] and opened.console_errors == []
        assert opened.unexpected == []
    finally:
        context.close()


def test_viewer_popup_fetches_nothing(service: Service, chromium) -> None:
    opened, html, context = _signed_in_map(chromium, service, "viewer")
    try:
        assert not any(p in html for p in service.cases["reporter_phone"])
        text = _popup_after_click(opened, 0, "类别 Category")
        assert "来电人" not in text and "详情 Details" not in text and "电话" not in text
        assert not any("/cases/" in u for u in opened.local)  # no request for a case
        assert opened.page_errors == [] and opened.console_errors == []
    finally:
        context.close()
