"""kill -9 in the middle of a real import or plan save leaves the store exactly as it was.

Both backends. Before the kill the test checks, from outside the worker, that the
worker really is inside an open write transaction that has written rows: on
SQLite nobody else can take the write lock; on PostgreSQL the worker's backend
has a transaction id (it wrote) and is still running. The worker itself reports
how far it got (between 30 % and 100 % of its rows).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from dbfactories import make_layers, make_plan
from test_db_layers import snapshot

from gridmap.db import Store, list_communities, list_plans, save_layers, save_plan

HERE = Path(__file__).resolve().parent
APP = "gridmap-kill-worker"

WORKER = """
import sys
sys.path.insert(0, {here!r})
from pathlib import Path
from dbfactories import make_layers, make_plan
from gridmap.db import Store, save_layers, save_plan

layers = make_layers(nx=4, ny=4, side=24, seed=7)  # ~9k buildings, ~200k households
plan = make_plan(layers) if {what!r} == "save_plan" else None
store = Store.from_url({url!r}, schema={schema!r}, connect_args={connect!r})
marker = Path({marker!r})

def progress(done, total):
    if done > 0.3 * total and not marker.exists():
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(f"{{done}}/{{total}}")
        tmp.rename(marker)  # atomic: the test never reads a half-written marker

if plan is None:
    save_layers(store, layers, author="worker", progress=progress, chunk_size=5000)
else:
    save_plan(store, plan, author="worker", status="published", progress=progress)
Path({marker!r} + ".done").write_text("finished")
"""


def _in_open_write_transaction(store: Store, url: str) -> bool:
    """True when another process holds an open write transaction that has written rows."""
    if store.backend == "sqlite":
        conn = sqlite3.connect(sa.make_url(url).database, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc)
        else:
            conn.execute("ROLLBACK")
            return False
        finally:
            conn.close()
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT state, backend_xid IS NOT NULL FROM pg_stat_activity "
                "WHERE application_name = :app"
            ),
            {"app": APP},
        ).first()
    return row is not None and row[0] in ("active", "idle in transaction") and bool(row[1])


@pytest.mark.parametrize("what", ["import", "save_plan"])
def test_kill_9_midway(store: Store, store_url, tmp_path: Path, what: str) -> None:
    previous = make_layers(nx=4, ny=4, side=3, seed=1)  # same community ids as the worker's
    save_layers(store, previous, author="before")
    save_layers(store, make_layers(nx=1, prefix="other", x0=400_000.0), author="before")
    published = save_plan(store, make_plan(previous), author="before", status="published")
    before = snapshot(store)
    url, schema = store_url
    marker = tmp_path / "marker"
    connect = {"application_name": APP} if store.backend == "postgresql" else {}
    code = WORKER.format(
        here=str(HERE), url=url, schema=schema, marker=str(marker), what=what, connect=connect
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker ended early: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("worker never reached 30 % of its rows")
        time.sleep(0.01)
    midway = _in_open_write_transaction(store, url)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert midway  # the kill hit an open transaction that had written rows
    done, total = map(int, marker.read_text().split("/"))
    assert 0.3 * total < done < total
    assert not Path(str(marker) + ".done").exists()
    # the dead worker's transaction goes away (PostgreSQL notices the closed socket)
    gone = time.monotonic() + 30
    while _in_open_write_transaction(store, url):
        assert time.monotonic() < gone, "the killed worker's transaction is still open"
        time.sleep(0.1)
    # a new connection sees exactly the previous state
    again = Store.from_url(url, schema=schema)
    try:
        assert snapshot(again) == before
        assert [p.id for p in list_plans(again, status="published")] == [published.id]
        # and the store is still writable
        save_layers(again, make_layers(nx=1, prefix="after", x0=410_000.0), author="after")
        assert "afterc0" in set(list_communities(again)["community_id"])
    finally:
        again.close()
