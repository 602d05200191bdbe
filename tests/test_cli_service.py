"""``gridmap serve --workers N``: N worker processes over one store.

By default the workers are forked from a parent that loaded the published plans (they
share that memory); with ``--no-preload`` uvicorn starts each afresh (each loads its
own snapshot).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from clirun import ENV, free_port


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _get(url: str, key: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except OSError:  # not listening yet
        return 0, {}


def _is_worker(pid: int, parent: int, preload: bool) -> bool:
    """A uvicorn worker (spawned), or a copy of the parent (forked: same command line)."""
    line = Path(f"/proc/{pid}/cmdline").read_text()
    return line == Path(f"/proc/{parent}/cmdline").read_text() if preload else "spawn" in line


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("preload", [True, False], ids=["forked", "spawned"])
def test_serve_with_two_workers_answers_from_each(tmp_path: Path, preload: bool) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "gridmap", "serve", "--db", f"sqlite:///{tmp_path / 'g.db'}"]
    cmd += ["--port", str(port), "--workers", "2", "--demo", "--log-level", "warning"]
    cmd += [] if preload else ["--no-preload"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        key = None
        assert proc.stdout is not None
        for line in proc.stdout:  # the demo key is printed before the workers start
            found = re.search(r"demo admin key.*: (\S+)", line)
            if found:
                key = found.group(1)
                break
        assert key, "no demo key printed"
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        workers: list[int] = []
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            workers = [c for c in _children(proc.pid) if _is_worker(c, proc.pid, preload)]
            if len(workers) == 2 and _get(f"{base}/health")[0] == 200:
                break
            time.sleep(0.5)
        assert len(workers) == 2
        # each worker loads the published plan itself: every answer locates the same point
        status, health = _get(f"{base}/health")
        assert status == 200 and len(health["published_plans"]) == 1 and health["grids"] > 0
        grids = {
            _get(f"{base}/collections/grids/items?limit=1", key)[1]["numberMatched"]
            for _ in range(6)
        }
        assert len(grids) == 1 and grids.pop() > 0
        assert all(_alive(w) for w in workers)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    deadline = time.monotonic() + 30  # the workers stop with their parent: no orphan left
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
