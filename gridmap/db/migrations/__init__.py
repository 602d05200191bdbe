"""Alembic migrations of the gridmap store (run with :func:`gridmap.db.upgrade`)."""
