"""Shared fixtures, and skips that become failures under ``CI=true``.

A developer without ngspice, the compilers, chromium, aesim.simba or
``../shared`` gets skips (counted in the summary, with their reasons); a CI
run (``CI=true``) gets a failure for each, so a machine missing a tool can
never pass the suite by skipping the checks that need it.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from cli_helpers import REPO, SHARED


def ci_run() -> bool:
    """True when the suite runs as CI (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the tests read the seeds and the reference project from ../shared")
    return SHARED


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and ci_run():
        report.outcome = "failed"
        report.longrepr = (f"CI=true: this test was skipped ({_skip_reason(report)}); under CI a missing tool "
                           "or ../shared is a failure (make system-deps installs the tools)")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # A module skipped whole (pytest.importorskip at import) is a collection report, not a test's.
    outcome = yield
    report = outcome.get_result()
    if report.skipped and ci_run():
        report.outcome = "failed"
        report.longrepr = f"CI=true: {collector.nodeid} was skipped whole ({_skip_reason(report)}); a failure under CI"


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons = Counter(_skip_reason(r).removeprefix("Skipped: ") for r in skipped)
    terminalreporter.write_sep("-", f"{len(skipped)} tests skipped (each would fail under CI=true)")
    for reason, n in reasons.most_common():
        terminalreporter.write_line(f"{n:4d}  {reason}")
