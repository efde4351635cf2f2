"""Suite-wide rules.

In CI (``CI=true``) a skipped test is a failed test: CI installs everything the suite
needs (``.ci/run``), so a skip there means a check silently stopped running.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


# The suite runs on two xdist workers (pyproject: -n 2 --dist loadfile): each test file
# goes whole to one worker, so module fixtures (the README tour) run once. The files that
# start or join a Ray instance form one unit instead, run one after another on one worker:
# two Ray instances at once on a 2-core machine lost a task's owner in a trial run.
RAY_TEST_FILES = frozenset({
    "tests/alfred/test_cluster_no_shared_disk.py",
    "tests/alfred/test_fuzz_scenarios.py",
    "tests/alfred/test_hostile_inputs.py",
    "tests/alfred/test_sweep.py",
    "tests/analysts/test_tuning_cluster.py",
    "tests/engine/executor/test_executor.py",
    "tests/engine/executor/test_shared.py",
})


def xdist_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or "ray" for the Ray files."""
    path = nodeid.split("::", 1)[0]
    return "ray" if path in RAY_TEST_FILES else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadFileScheduling

    class _Units(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(nodeid)

    return _Units(config, log)
