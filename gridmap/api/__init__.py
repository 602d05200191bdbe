"""The HTTP service: ``create_app(settings)`` (FastAPI) over the gridmap store.

Run it with ``gridmap serve`` (uvicorn). Nothing in gridmap imports this package
except the CLI, lazily.
"""

from __future__ import annotations

from gridmap.api.app import create_app
from gridmap.api.settings import Settings, get_settings

__all__ = ["create_app", "Settings", "get_settings"]
