"""benchmarks/options.py: the benchmark's options and profiles, its own engine folder and subnet."""
from __future__ import annotations

import pytest

from benchmarks import options


def test_default_profile_and_its_own_engine_and_subnet(monkeypatch):
    monkeypatch.delenv("KRC_BENCH_DOCKERD_DIR", raising=False)
    monkeypatch.delenv("KRC_BENCH_SUBNET", raising=False)
    args = options.parse_args([])
    assert args.profile == options.DEFAULT
    assert (args.rate_bits, args.second_rate_bits, args.amp_rate_bits) == (50_000_000, 200_000_000, 200_000_000)
    assert args.delay_seconds == pytest.approx(0.04)
    assert args.name == "latest"
    # Never the integration tier's engine or subnets, so both can run at once.
    assert args.engine_dir == "/tmp/krc-bench-engine" and args.engine_dir != "/tmp/krc-dockerd"
    assert args.subnet == "172.26.0.0/24" and args.subnet not in ("172.28.0.0/24", "172.27.0.0/24")


def test_quick_profile_and_overrides():
    args = options.parse_args(["--quick"])
    assert args.profile.name == "quick" and args.name == "quick"
    assert args.profile.images == ("cilium/cilium", "metallb/speaker", "ingress-nginx/controller")
    assert args.delay_seconds == 0
    args = options.parse_args(["--quick", "--delay", "20ms", "--rate", "10mbit", "--amp-rate", "100mbit",
                               "--reps", "5", "--scale", "0.5", "--name", "mine"])
    assert args.delay_seconds == pytest.approx(0.02)
    assert (args.rate_bits, args.amp_rate_bits) == (10_000_000, 100_000_000)
    assert (args.profile.reps, args.profile.scale, args.name) == (5, 0.5, "mine")


@pytest.mark.parametrize("argv", [["--rate", "fast"], ["--delay", "soon"], ["--reps", "0"]])
def test_bad_options_are_refused(argv):
    with pytest.raises((SystemExit, ValueError)):
        options.parse_args(argv)
