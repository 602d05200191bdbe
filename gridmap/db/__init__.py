"""Storage: SQLAlchemy/GeoAlchemy2 models, sessions, repositories and migrations.

One repository API for both backends: PostgreSQL + PostGIS for shared
deployments and a SQLite file (``sqlite:///gridmap.db``) as the zero-setup
default. Open a store with :meth:`Store.from_url` (an empty database is
migrated on the spot), then call the keyword-only functions below with the
store (one transaction per call) or a session from ``store.session()`` (several
calls in one transaction).

Examples
--------
>>> from gridmap.db import Store, list_plans
>>> store = Store.from_url("sqlite://")
>>> list_plans(store)
[]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridmap.db.audit import list_audit, write_audit
    from gridmap.db.history import PlanDiff, diff_plans, plan_history, plan_lineage
    from gridmap.db.layers import (
        ImportRecord,
        list_communities,
        list_imports,
        load_layers,
        save_layers,
    )
    from gridmap.db.plans import (
        PlanRecord,
        archive_plan,
        area_key,
        get_plan,
        list_plans,
        load_plan,
        publish_plan,
        published_plan,
        save_assignments,
        save_plan,
        update_plan,
        update_plan_grids,
    )
    from gridmap.db.session import (
        Store,
        current_revision,
        downgrade,
        head_revision,
        transaction,
        upgrade,
    )
    from gridmap.db.settings import (
        StoreSettings,
        database_schema,
        database_url,
        get_store_settings,
    )
    from gridmap.db.spatial import locate_sql

__all__ = [
    "Store",
    "transaction",
    "upgrade",
    "downgrade",
    "current_revision",
    "head_revision",
    "StoreSettings",
    "database_url",
    "database_schema",
    "get_store_settings",
    "ImportRecord",
    "save_layers",
    "load_layers",
    "list_communities",
    "list_imports",
    "PlanRecord",
    "area_key",
    "save_plan",
    "load_plan",
    "get_plan",
    "list_plans",
    "published_plan",
    "publish_plan",
    "archive_plan",
    "update_plan",
    "update_plan_grids",
    "save_assignments",
    "locate_sql",
    "PlanDiff",
    "diff_plans",
    "plan_history",
    "plan_lineage",
    "write_audit",
    "list_audit",
]

_LAZY: dict[str, str] = {  # public name → the module defining it
    "Store": "session",
    "transaction": "session",
    "upgrade": "session",
    "downgrade": "session",
    "current_revision": "session",
    "head_revision": "session",
    "StoreSettings": "settings",
    "database_url": "settings",
    "database_schema": "settings",
    "get_store_settings": "settings",
    "ImportRecord": "layers",
    "save_layers": "layers",
    "load_layers": "layers",
    "list_communities": "layers",
    "list_imports": "layers",
    "PlanRecord": "plans",
    "area_key": "plans",
    "save_plan": "plans",
    "load_plan": "plans",
    "get_plan": "plans",
    "list_plans": "plans",
    "published_plan": "plans",
    "publish_plan": "plans",
    "archive_plan": "plans",
    "update_plan": "plans",
    "update_plan_grids": "plans",
    "save_assignments": "plans",
    "locate_sql": "spatial",
    "PlanDiff": "history",
    "diff_plans": "history",
    "plan_history": "history",
    "plan_lineage": "history",
    "write_audit": "audit",
    "list_audit": "audit",
}


def __getattr__(name: str) -> Any:
    # the modules load on first use, so that a command that only reads plans (gridmap locate)
    # does not import the history, the layer import or what they pull in
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
