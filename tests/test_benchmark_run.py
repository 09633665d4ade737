"""benchmarks/run.py without an engine: options and profiles, baseline hosts.toml, discarding a bypassed run."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks import run


def test_default_profile_and_its_own_engine_and_subnet(monkeypatch):
    monkeypatch.delenv("KRC_BENCH_DOCKERD_DIR", raising=False)
    monkeypatch.delenv("KRC_BENCH_SUBNET", raising=False)
    args = run.parse_args([])
    assert args.profile == run.DEFAULT
    assert (args.rate_bits, args.second_rate_bits, args.amp_rate_bits) == (50_000_000, 200_000_000, 200_000_000)
    assert args.delay_seconds == pytest.approx(0.04)
    assert args.name == "latest"
    # Never the integration tier's engine or subnets, so both can run at once.
    assert args.engine_dir == "/tmp/krc-bench-engine" and args.engine_dir != "/tmp/krc-dockerd"
    assert args.subnet == "172.26.0.0/24" and args.subnet not in ("172.28.0.0/24", "172.27.0.0/24")


def test_quick_profile_and_overrides():
    args = run.parse_args(["--quick"])
    assert args.profile.name == "quick" and args.name == "quick"
    assert args.profile.images == ("cilium/cilium", "metallb/speaker", "ingress-nginx/controller")
    assert args.delay_seconds == 0
    args = run.parse_args(["--quick", "--delay", "20ms", "--rate", "10mbit", "--amp-rate", "100mbit", "--reps", "5",
                           "--scale", "0.5", "--name", "mine"])
    assert args.delay_seconds == pytest.approx(0.02)
    assert (args.rate_bits, args.amp_rate_bits) == (10_000_000, 100_000_000)
    assert (args.profile.reps, args.profile.scale, args.name) == (5, 0.5, "mine")


@pytest.mark.parametrize("argv", [["--rate", "fast"], ["--delay", "soon"], ["--reps", "0"]])
def test_bad_options_are_refused(argv):
    with pytest.raises((SystemExit, ValueError)):
        run.parse_args(argv)


def test_baseline_hosts_toml_sends_the_node_straight_to_the_url():
    assert run.baseline_hosts_toml("http://up-quay-io:5080") == (
        'server = "http://up-quay-io:5080"\n\n[host."http://up-quay-io:5080"]\n  capabilities = ["pull", "resolve"]\n')


def test_a_bypassed_run_is_done_again_once_and_told():
    bench = SimpleNamespace(discarded=[], discarded_details=[])
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise run.BypassError("bench-worker1 did not get 6 blob(s) from kcr-itest-quay-io\ndetails")
        return 42

    assert run.attempt(bench, "50 Mbit/s run 1", flaky) == 42
    assert bench.discarded == ["50 Mbit/s run 1: bench-worker1 did not get 6 blob(s) from kcr-itest-quay-io"]
    assert "details" in bench.discarded_details[0]


def test_a_run_that_keeps_bypassing_fails():
    bench = SimpleNamespace(discarded=[], discarded_details=[])

    def always():
        raise run.BypassError("went upstream")

    with pytest.raises(run.BypassError):
        run.attempt(bench, "3 cold nodes", always)
    assert len(bench.discarded) == run.ATTEMPTS
