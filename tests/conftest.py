"""Shared test configuration: interop tests may not be skipped when the suite demands them."""

from __future__ import annotations

import os

import pytest

REQUIRE_INTEROP = os.environ.get("PYNETSTACK_REQUIRE_INTEROP") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_INTEROP and report.skipped and item.get_closest_marker("interop") is not None:
        report.outcome = "failed"
        report.longrepr = f"interop test skipped, but this run requires interop tests to run: {report.longrepr}"
