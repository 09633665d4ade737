"""benchmarks/accesslogs.py without an engine: a run whose pull bypassed a cache is discarded and done again."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks import accesslogs


def test_a_bypassed_run_is_done_again_once_and_told():
    bench = SimpleNamespace(discarded=[], discarded_details=[])
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise accesslogs.BypassError("bench-worker1 did not get 6 blob(s) from kcr-itest-quay-io\ndetails")
        return 42

    assert accesslogs.attempt(bench, "50 Mbit/s run 1", flaky) == 42
    assert bench.discarded == ["50 Mbit/s run 1: bench-worker1 did not get 6 blob(s) from kcr-itest-quay-io"]
    assert "details" in bench.discarded_details[0]


def test_a_run_that_keeps_bypassing_fails():
    bench = SimpleNamespace(discarded=[], discarded_details=[])

    def always():
        raise accesslogs.BypassError("went upstream")

    with pytest.raises(accesslogs.BypassError):
        accesslogs.attempt(bench, "3 cold nodes", always)
    assert len(bench.discarded) == accesslogs.ATTEMPTS
