"""Cases over HTTP on the hand-made city (:mod:`apidata`): a hotline ticket and staff keys.

Shared by the API tests of cases, case maps, case statistics and Open311.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apidata

from gridmap.db import Store
from gridmap.db.keys import create_key


def ticket(x: float = 100, y: float = 300, **kw: Any) -> dict[str, Any]:
    """A ``POST /cases`` body: a hotline noise complaint at ``(x, y)`` metres, ``kw`` over it."""
    lon, lat = apidata.lonlat(x, y)
    base = {
        "source": "hotline",
        "category": "噪音扰民",
        "description": "夜间施工",
        "lon": lon,
        "lat": lat,
        "crs": "wgs84",
        "reporter_name": "张三",
        "reporter_phone": "13812345678",
        "received_at": "2026-09-18 10:00",
    }
    return {**base, **kw}


def staff_tokens(store: Store, scopes: dict[str, str]) -> dict[str, str]:
    """One staff key per ``unit -> scope`` (``{"g1": "grid:…"}``); returns ``unit -> token``."""
    return {
        unit: create_key(store, name=f"s-{unit}", role="staff", author="t", scope=scope)[1]
        for unit, scope in scopes.items()
    }


def desk_headers(
    tokens: dict[str, str], headers: Callable[[str | None], dict[str, str]]
) -> Callable[..., dict[str, str]]:
    """``h(who, version=None)``: the key of a staff unit or a role; ``If-Match`` if versioned."""

    def h(who: str | None, version: int | None = None) -> dict[str, str]:
        out = {"X-API-Key": tokens[who]} if who in tokens else headers(who)
        if version is not None:
            out["If-Match"] = f'"{version}"'
        return out

    return h
