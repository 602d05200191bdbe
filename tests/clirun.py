"""Run the real ``gridmap`` entry point as a subprocess, as a user would type it."""

from __future__ import annotations

import subprocess
import sys
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
