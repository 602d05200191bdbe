"""The HTTP service: ``create_app(settings)`` (FastAPI) over the gridmap store.

Run it with ``gridmap serve`` (uvicorn). Nothing in gridmap imports this package
except the CLI, lazily. Importing it is cheap: FastAPI loads with the first of
``create_app``, ``Settings`` or ``get_settings`` asked for, so that commands using only
the non-web modules (``gridmap locate`` reads the store through
:mod:`gridmap.api.locator` and :mod:`gridmap.api.batch`) start without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridmap.api.app import create_app
    from gridmap.api.settings import Settings, get_settings

__all__ = ["create_app", "Settings", "get_settings"]

_HOME = {"create_app": "app", "Settings": "settings", "get_settings": "settings"}


def __getattr__(name: str) -> Any:
    """Load the module of ``create_app``/``Settings``/``get_settings`` when first asked for."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'gridmap.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gridmap.api.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
