"""Shared fixtures and the CI rule that services must not be skipped."""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import pytest
from cityfixtures import tiny_raw


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (GRIDMAP_REQUIRE_SERVICES=1) a skipped PostGIS or browser test is a failure.

    Locally these tests skip cleanly when PostgreSQL or Chromium is missing; CI installs
    both, so a skip there would hide a broken set-up.
    """
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("GRIDMAP_REQUIRE_SERVICES") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")  # an expected failure ran: it is not a skip
        and any(item.get_closest_marker(m) for m in ("postgis", "browser", "qgis"))
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where services are required: {report.longrepr}"


@pytest.fixture
def raw() -> dict[str, gpd.GeoDataFrame]:
    return tiny_raw()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


#: Scripts run by tests under another Python (PyQGIS's), never imported by pytest itself.
collect_ignore = ["api/qgis_read.py"]
