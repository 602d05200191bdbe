"""Run the real ``gridmap`` entry point as a subprocess, as a user would type it."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: The bundled sample city and the shared OpenStreetMap extracts beside the checkout.
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_city.gpkg"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"

#: A clean environment: wide terminal, no inherited GRIDMAP_* settings.
ENV = {
    "COLUMNS": "200",
    "PATH": "/usr/bin:/bin",
    "HOME": str(Path.home()),
    "PYTHONUNBUFFERED": "1",
}


def gridmap(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m gridmap ARGS`` in ``cwd`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "gridmap", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=600,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Job:
    """A running ``gridmap run --serve``: its folder, output, port and demo key."""

    folder: Path
    stdout: str
    stderr: list[str]
    port: int
    key: str

    def get(self, path: str) -> tuple[int, str]:
        return self.request(path)

    def request(
        self, path: str, data: bytes | None = None, content_type: str = "text/csv"
    ) -> tuple[int, str]:
        headers = {"X-API-Key": self.key}
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8")


@contextmanager
def run_and_serve(folder: Path) -> Iterator[Job]:
    """``gridmap run --serve`` in ``folder``; yields once the API answers, stops it after."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridmap", "run", "--serve", "--port", str(port)],
        cwd=folder,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)
    reader.start()
    lines: list[str] = []
    key = None
    try:
        deadline = time.monotonic() + 600
        while key is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"demo admin key.*: (\S+)", line)
            key = found.group(1) if found else None
        assert key, "".join(lines) + "".join(stderr)
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        yield Job(folder, "".join(lines), stderr, port, key)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
