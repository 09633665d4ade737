"""The command line of ``python -m benchmarks.run``: its options, the profiles and their defaults."""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass

from . import ROOT, imageset, shaping

#: Its own engine folder and subnet, so a benchmark never meets a test run's engine (/tmp/krc-dockerd,
#: 172.28.0.0/24) or the stack tests' 172.27.0.0/24.
DEFAULT_ENGINE_DIR = "/tmp/krc-bench-engine"
DEFAULT_SUBNET = "172.26.0.0/24"


@dataclass(frozen=True)
class Profile:
    """How much to measure."""

    name: str
    scale: float
    reps: int
    amp_reps: int
    node_counts: tuple[int, ...]
    program_runs: int
    #: added to every upstream round trip, tc units
    delay: str
    #: seconds each shaping probe downloads for
    probe_seconds: float
    #: repositories pulled (None: all seven)
    images: tuple[str, ...] | None = None


#: An eighth of the add-ons' real sizes (56 MiB per node): about seven minutes on 2 cores.
DEFAULT = Profile("default", scale=0.125, reps=3, amp_reps=2, node_counts=(1, 3, 6), program_runs=5, delay="40ms",
                  probe_seconds=2.0)
#: A check of the whole machinery in under a minute: one image per add-on at 2%, two runs, no added delay
#: unless --delay says so. Its numbers are dominated by fixed per-pull costs: not results.
QUICK = Profile("quick", scale=0.02, reps=2, amp_reps=1, node_counts=(1, 3), program_runs=2, delay="0",
                probe_seconds=0.25, images=imageset.ONE_PER_ADDON)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="What the caches buy and what they cost, as ratios measured in one run (see README: Benchmark).")
    parser.add_argument("--quick", action="store_true", help="small images, for a run under a minute")
    parser.add_argument("--rate", default="50mbit", help="the upstream link's rate (tc units; default 50mbit)")
    parser.add_argument("--second-rate", default="200mbit", help="a second rate for the speedup (default 200mbit)")
    parser.add_argument("--amp-rate", default=None,
                        help="rate while measuring upstream amplification (default: the second rate)")
    parser.add_argument("--delay", default=None,
                        help=f"added to every upstream round trip (default {DEFAULT.delay}; --quick: {QUICK.delay})")
    parser.add_argument("--scale", type=float, default=None,
                        help="layer size factor; 1 = the add-ons' real sizes, about 450 MiB "
                             f"(default {DEFAULT.scale}, --quick {QUICK.scale})")
    parser.add_argument("--reps", type=int, default=None,
                        help=f"timed runs per measure (default {DEFAULT.reps}, --quick {QUICK.reps})")
    parser.add_argument("--amp-reps", type=int, default=None,
                        help=f"runs per amplification case (default {DEFAULT.amp_reps}, --quick {QUICK.amp_reps})")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="results folder")
    parser.add_argument("--name", default=None, help="file name of the results (default latest, --quick: quick)")
    parser.add_argument("--engine-dir", default=os.environ.get("KRC_BENCH_DOCKERD_DIR", DEFAULT_ENGINE_DIR),
                        help=f"the private dockerd's folder (default {DEFAULT_ENGINE_DIR})")
    parser.add_argument("--subnet", default=os.environ.get("KRC_BENCH_SUBNET", DEFAULT_SUBNET),
                        help=f"subnet of the benchmark's docker network (default {DEFAULT_SUBNET})")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else DEFAULT
    args.profile = Profile(
        profile.name,
        scale=args.scale if args.scale is not None else profile.scale,
        reps=args.reps if args.reps is not None else profile.reps,
        amp_reps=args.amp_reps if args.amp_reps is not None else profile.amp_reps,
        node_counts=profile.node_counts,
        program_runs=profile.program_runs,
        delay=args.delay if args.delay is not None else profile.delay,
        probe_seconds=profile.probe_seconds,
        images=profile.images,
    )
    args.name = args.name or ("quick" if args.quick else "latest")
    args.rate_bits = shaping.parse_rate(args.rate)
    args.second_rate_bits = shaping.parse_rate(args.second_rate)
    args.amp_rate_bits = shaping.parse_rate(args.amp_rate) if args.amp_rate else args.second_rate_bits
    args.delay_seconds = shaping.parse_delay(args.profile.delay)
    if args.profile.reps < 1 or args.profile.amp_reps < 1:
        parser.error("--reps and --amp-reps must be at least 1")
    return args
