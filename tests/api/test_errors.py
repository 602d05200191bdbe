"""Unexpected errors: a 500 problem, logged with its traceback but never its message.

Messages may carry personal data (a phone, a household id, SQL parameters), so the
logs get the exception type and code locations only.
"""

from __future__ import annotations

import logging

from fastapi.testclient import TestClient

from gridmap.api import Settings, create_app
from gridmap.api.jobs import JobRunner

PHONE = "13900000001"


def test_unexpected_error_is_a_500_problem_logged_without_its_message(caplog) -> None:
    app = create_app(Settings(database_url="sqlite://"))

    secret = f"cannot parse phone {PHONE} of household h-17"

    def boom() -> None:
        raise ValueError(secret)  # the traceback shows this line, not the value

    app.add_api_route("/boom", boom)
    caplog.set_level(logging.DEBUG)
    # raise_server_exceptions: an error re-raised past the app (to be logged by the
    # server with its message) would fail the request here
    with TestClient(app, raise_server_exceptions=True) as client:
        r = client.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:gridmap:problem:internal" and r.json()["instance"] == "/boom"
    assert PHONE not in r.text
    assert "unhandled error on GET /boom (ValueError" in caplog.text
    assert "in boom" in caplog.text  # the traceback is there, to find the bug
    assert PHONE not in caplog.text and "h-17" not in caplog.text


def test_failed_job_is_logged_without_its_message(caplog) -> None:
    first, second = f"resident {PHONE}", f"staffing failed for {PHONE}"

    def work(progress):
        try:
            raise KeyError(first)
        except KeyError as exc:
            raise RuntimeError(second) from exc

    caplog.set_level(logging.DEBUG)
    runner = JobRunner()
    try:
        job = runner.submit(work, kind="demo", author="t")
        done = runner.wait(job.id, timeout=10)
    finally:
        runner.shutdown()
    assert done.status == "failed" and done.error["status"] == 500
    assert "(RuntimeError, caused by KeyError" in caplog.text
    assert PHONE not in caplog.text and PHONE not in str(done.error)


def test_personal_data_never_in_logs(city, caplog) -> None:
    """Dispatcher reads (staff, residents), batches and a failing request log no personal data."""
    import apidata

    _, client, headers, _ = city
    caplog.set_level(logging.DEBUG)
    lon, lat = apidata.lonlat(50, 50)
    r = client.get(
        "/locate", params={"lon": lon, "lat": lat, "radius": 100}, headers=headers("dispatcher")
    )
    assert r.status_code == 200 and r.json()["nearby"]["residents"]
    assert r.json()["staff"]["chief"]["phone"] == PHONE
    r = client.post(
        "/locate/batch",
        content=f"id,lon,lat\nt1,{lon!r},{lat!r}\n",
        headers={**headers("dispatcher"), "Content-Type": "text/csv", "Accept": "text/csv"},
    )
    assert PHONE in r.text
    client.get("/locate", params={"lon": "x", "lat": 1}, headers=headers("dispatcher"))
    logged = caplog.text
    for secret in (PHONE, "王网格", "b00-h1", "elderly_living_alone"):
        assert secret not in logged


def test_access_log_of_a_real_server_keeps_incident_coordinates_out(tmp_path) -> None:
    """uvicorn's access log gets ``/locate?…``: the path and status, not the place."""
    import socket
    import threading
    import time
    import urllib.error
    import urllib.request

    import uvicorn

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    keep = Keep()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'gridmap.db'}"))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        access.addHandler(keep)  # after uvicorn configured its loggers
        paths = (
            "/locate?lon=118.78051&lat=32.05003&crs=gcj02",
            "/plans?status=draft",
            "/collections/grids/items?limit=5&api_key=gm_secret_key_value",
        )
        for path in paths:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401  # no key: refused, and still logged
        while len(lines) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        access.removeHandler(keep)
        server.should_exit = True
        thread.join(timeout=30)
    text = "\n".join(lines)
    assert '"GET /locate?… HTTP/1.1" 401' in text, text
    assert "118.78051" not in text and "32.05003" not in text
    assert '"GET /plans?status=draft HTTP/1.1" 401' in text  # other query strings stay
    assert "gm_secret_key_value" not in text  # a key in the URL is masked
    assert "/collections/grids/items?limit=5&api_key=… HTTP/1.1" in text
