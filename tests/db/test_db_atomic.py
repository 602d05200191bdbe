"""kill -9 in the middle of a real import leaves the store exactly as it was (both backends)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dbfactories import make_layers, make_plan
from test_db_layers import snapshot

from gridmap.db import Store, list_communities, save_layers, save_plan

HERE = Path(__file__).resolve().parent

WORKER = """
import sys
sys.path.insert(0, {here!r})
from pathlib import Path
from dbfactories import make_layers
from gridmap.db import Store, save_layers

layers = make_layers(nx=4, ny=4, side=24, seed=7)  # ~9k buildings, ~200k households
store = Store.from_url({url!r}, schema={schema!r})
marker = Path({marker!r})

def progress(done, total):
    if done > 0.3 * total and not marker.exists():
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(f"{{done}}/{{total}}")
        tmp.rename(marker)  # atomic: the test never reads a half-written marker

save_layers(store, layers, author="worker", progress=progress, chunk_size=5000)
Path({marker!r} + ".done").write_text("finished")
"""


def test_kill_9_mid_import(store: Store, store_url, tmp_path: Path) -> None:
    previous = make_layers(nx=4, ny=4, side=3, seed=1)  # same community ids as the worker's
    save_layers(store, previous, author="before")
    save_layers(store, make_layers(nx=1, prefix="other", x0=400_000.0), author="before")
    save_plan(store, make_plan(previous), author="before", status="published")
    before = snapshot(store)
    url, schema = store_url
    marker = tmp_path / "marker"
    code = WORKER.format(here=str(HERE), url=url, schema=schema, marker=str(marker))
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker ended early: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("worker never reached 30 % of its import")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    done, total = map(int, marker.read_text().split("/"))
    assert 0 < done < total  # killed mid-transaction, after the old rows were deleted
    assert not Path(str(marker) + ".done").exists()
    # a new connection sees exactly the previous state
    again = Store.from_url(url, schema=schema)
    try:
        assert snapshot(again) == before
        # and the store is still writable
        save_layers(again, make_layers(nx=1, prefix="after", x0=410_000.0), author="after")
        assert "afterc0" in set(list_communities(again)["community_id"])
    finally:
        again.close()
