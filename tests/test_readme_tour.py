"""The README's five-minute tour runs as written, command by command, in a fresh folder.

After the README's first command (``gridmap run``), every ``bash`` and ``python`` block under
"A five-minute tour" is run in order, in one empty folder holding only a link to the
repository's ``data/``, as a new user would run them. A command
succeeds (exit 0) unless its comment says otherwise (``# exit 1: …``). ``export``/``unset`` lines
carry over to the next commands, as in a shell. ``gridmap serve`` runs in the background until the
tour ends; the admin key it prints becomes ``$KEY`` for the commands after it.

This is the README's promise: a change that breaks a command in the tour breaks this test.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clirun import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

pytestmark = pytest.mark.slow

_BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)
_EXIT = re.compile(r"#.*?\bexit (\d+)\b")
_KEY = re.compile(r"key\W*\(shown once\):\s*(\S+)")


def tour_blocks(text: str) -> list[tuple[str, str]]:
    """Return the (language, code) blocks of the README's tour section, in order.

    >>> text = "## A five-minute tour\\n```bash\\necho hi\\n```\\n## Next\\n```bash\\nno\\n```\\n"
    >>> tour_blocks(text)
    [('bash', 'echo hi\\n')]
    """
    start = text.index("## A five-minute tour")
    end = text.find("\n## ", start + 3)
    section = text[start : end if end > 0 else len(text)]
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(section)]


def commands(code: str) -> list[str]:
    """Split a bash block into commands: continuation lines joined, comment-only lines dropped.

    >>> commands("a x  # one\\n#   note\\nb \\\\\\n  y\\n")
    ['a x  # one', 'b y']
    """
    out: list[str] = []
    pending = ""
    for line in code.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].rstrip() + " "
            continue
        out.append(pending + line.strip())
        pending = ""
    return out


def expected_exit(command: str) -> int:
    """The exit status the tour's comment promises (0 unless it says ``exit N``).

    >>> expected_exit("gridmap validate x.gpkg  # exit 1: OSM has no 社区")
    1
    >>> expected_exit("gridmap validate city.gpkg  # what was repaired; exit 0 valid, 1 not")
    0
    >>> expected_exit("gridmap plans")
    0
    """
    m = _EXIT.search(command)
    return int(m.group(1)) if m else 0


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gridmap serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("gridmap serve did not answer /health in time")


def _bin_dir() -> str:
    """The folder holding this interpreter's ``gridmap`` script (first on PATH for the tour)."""
    return str(Path(sys.executable).parent)


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    blocks = tour_blocks(README.read_text(encoding="utf-8"))
    assert [lang for lang, _ in blocks].count("bash") >= 4, "the tour lost its command blocks"
    (tmp_path / "data").symlink_to(ROOT / "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    env["PATH"] = _bin_dir() + os.pathsep + env.get("PATH", "")
    env["COLUMNS"] = "200"
    server: subprocess.Popen | None = None
    # the tour comes after the README's first command, as a new user runs them
    first = subprocess.run(
        ["gridmap", "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    ran: list[str] = ["gridmap run"]
    try:
        for lang, code in blocks:
            if lang == "python":
                done = subprocess.run(
                    [sys.executable, "-c", code],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                assert done.returncode == 0, f"python block failed:\n{code}\n{done.stderr[-3000:]}"
                ran.append("python block")
                continue
            for command in commands(code):
                words = shlex.split(command, comments=True)
                if words[0] == "export":
                    name, _, value = words[1].partition("=")
                    env[name] = value
                    continue
                if words[0] == "unset":
                    env.pop(words[1], None)
                    continue
                if words[:2] == ["gridmap", "serve"]:
                    port = free_port()
                    log = (tmp_path / "serve.log").open("w")
                    server = subprocess.Popen(
                        [*words, "--port", str(port)],
                        cwd=tmp_path,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                    _wait_ready(port, server)
                    found = _KEY.search((tmp_path / "serve.log").read_text(encoding="utf-8"))
                    assert found, "gridmap serve --demo printed no admin key"
                    env["KEY"] = found.group(1)
                    env["GRIDMAP_TOUR_PORT"] = str(port)
                    ran.append(command)
                    continue
                if words[0] == "ogrinfo" and shutil.which("ogrinfo") is None:
                    continue  # GDAL's command-line tools are optional (gdal-bin); CI has them
                if words[0] == "curl":  # an HTTP error is a failed step, as with `curl -f`
                    command = "curl --fail-with-body --silent --show-error" + command[4:]
                if server is not None:  # the tour's addresses name the default port
                    command = command.replace(
                        "127.0.0.1:8000", "127.0.0.1:" + env["GRIDMAP_TOUR_PORT"]
                    )
                done = subprocess.run(
                    ["bash", "-c", command],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                want = expected_exit(command)
                assert done.returncode == want, (
                    f"`{command}` exited {done.returncode}, the README promises {want}:\n"
                    f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
                )
                ran.append(command)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    assert server is not None, "the tour never started the service"
    assert any(c.startswith("curl") for c in ran)
    for name in ("city.gpkg", "plan.gpkg", "plan.html", "report.json", "incident.html"):
        assert (tmp_path / name).is_file(), f"the tour promised {name}"
