"""Shared test setup: import path, markers, and CI's rule that no tier may be skipped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

#: Hypothesis profiles. ``ci`` (set by .ci/run): the same examples on every run, so whether main is green does not
#: depend on the draw; a failure prints the blob that reproduces it. Any other run (``bash tests/run.sh`` on a
#: developer's machine) draws new examples each time: that is where new cases turn up (the stack named '..' did).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("KRC_HYPOTHESIS_PROFILE") or "default")

#: Only these markers may skip in CI: their prerequisites (Pulumi CLI, kind, internet) are not here.
MAY_SKIP = {"e2e"}

_skipped: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs the Pulumi CLI, kind, Docker and internet; skipped where missing")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not MAY_SKIP & set(report.keywords):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI sets KRC_FORBID_SKIPS=1: a skipped unit, program or integration test means a tier did not run.
    if os.environ.get("KRC_FORBID_SKIPS") == "1" and _skipped:
        print(f"\nKRC_FORBID_SKIPS: {len(_skipped)} test(s) skipped outside the e2e tier:", file=sys.stderr)
        for nodeid in _skipped:
            print(f"  {nodeid}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
