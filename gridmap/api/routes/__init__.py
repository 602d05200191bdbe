"""Routers of the HTTP service, one module per resource (``router`` in each)."""

from __future__ import annotations

__all__: list[str] = []
