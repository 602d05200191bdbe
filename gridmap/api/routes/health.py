"""Health check: is the service up, can it reach the store, how many plans it serves."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter

from gridmap.api.deps import LocatorDep, StoreDep
from gridmap.errors import StorageError

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health", summary="Health check (open)")
def health(store: StoreDep, locator: LocatorDep) -> dict[str, Any]:
    """Return ``ok`` with the store backend and the number of published plans served.

    Answers 503 (problem+json) when the store cannot be reached.
    """
    try:
        with store.session() as s:
            s.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        raise StorageError(
            f"the store does not answer ({type(exc).__name__}); check GRIDMAP_DATABASE_URL "
            "and the database server"
        ) from exc
    return {
        "status": "ok",
        "backend": store.backend,
        "published_plans": [a.plan_id for a in locator.areas],
        "grids": sum(len(a.grids) for a in locator.areas),
    }
