"""``python -m benchmarks.run``: what the caches buy and what they cost, as ratios measured in one run.

On a private Docker engine (the integration tier's: tests/integration/engine.py), with the integration tier's
pieces imported, not copied:

- fake upstreams for quay.io and registry.k8s.io (distribution registries behind tests/integration/fakeupstream.py:
  Bearer token auth, pulls counted as Docker Hub counts them) seeded with generated images
  named and sized like the add-ons' (benchmarks/imageset.py), their link shaped with ``tbf`` in their own network
  namespace (and a delay added by benchmarks/delayproxy.py, since this kernel has no netem);
- the caches, their certs (hosts.toml) and the node containerd config exactly as the program records them under
  mocks (tests/integration/stack.py), the warm-up as the program's recorded command;
- containerd nodes pulling through hosts.toml (``ctr content fetch``), a plain local registry holding the same
  images, and a node pulling from the upstreams directly.

Every timing is repeated; ratios are taken per run (both sides measured in that run) and reported as median and
min–max. Results go to ``<out>/<name>.md``, ``.json`` and ``.png``. Not part of the test run. See README "Benchmark".

This module runs the steps in order; the parts: options.py (the command line), rig.py (the setup on the private
engine; accesslogs.py reads its registries' logs), links.py (pull times per link rate), amplification.py (upstream
bytes of nodes pulling at once), hubpulls.py (Docker Hub pulls per cluster recreation), evaluation.py (the program under mocks), machine.py, and report.py (the files).
"""
from __future__ import annotations

import importlib.util
import os
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from . import imageset, shaping
from .amplification import measure_amplification
from .evaluation import measure_program
from .hubpulls import measure_hub_pulls
from .links import measure_link
from .machine import machine_info
from .options import parse_args
from .progress import log
from .rig import PLATFORM, Bench


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("the benchmark starts a private dockerd: run it as root", file=sys.stderr)
        return 2
    if importlib.util.find_spec("matplotlib") is None:
        print("matplotlib is missing: venv/bin/pip install -r benchmarks/requirements.txt", file=sys.stderr)
        return 2
    from . import report, report_markdown

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    load_samples: list[float] = []
    sampling = threading.Event()

    def sample_load() -> None:
        while not sampling.wait(5.0):
            load_samples.append(os.getloadavg()[0])

    threading.Thread(target=sample_load, name="krc-bench-load", daemon=True).start()
    profile = args.profile
    netem, netem_detail = shaping.netem_available()
    log(f"profile {profile.name}: scale {profile.scale}, {profile.reps} runs per timing, "
        f"nodes {profile.node_counts}; netem {'available' if netem else 'not available: ' + netem_detail}")

    phases: dict[str, float] = {}
    log(f"program evaluation under mocks (dev stack), {profile.program_runs} runs")
    mark = time.monotonic()
    program = measure_program(profile.program_runs)
    phases["program evaluation"] = time.monotonic() - mark

    bench = Bench(args)
    mark = time.monotonic()
    try:
        bench.start()
        machine = machine_info(bench.client, bench.built)
        phases["setup"] = time.monotonic() - mark
        links = []
        for bits in (args.rate_bits, args.second_rate_bits):
            mark = time.monotonic()
            # The local registry is not behind the upstream link: its pulls are timed once, at the first.
            links.append(measure_link(bench, bits, profile.reps, local=not links))
            phases[f"link {shaping.format_rate(bits)}"] = time.monotonic() - mark
        mark = time.monotonic()
        same_rate = [link for link in links if link["rate_bits"] == args.amp_rate_bits]
        amplification = measure_amplification(bench, args.amp_rate_bits, profile.node_counts, profile.amp_reps,
                                              one_cold_node=same_rate[-1] if same_rate else None)
        phases["amplification"] = time.monotonic() - mark
        mark = time.monotonic()
        hub_pulls = measure_hub_pulls(bench, profile.node_counts)
        phases["Docker Hub pulls"] = time.monotonic() - mark
        image_bytes = bench.image_bytes
        mark = time.monotonic()
    finally:
        bench.close()
    phases["teardown"] = time.monotonic() - mark
    sampling.set()

    results = {
        "taken": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                                   else sys.argv[1:])),
        "seconds": time.monotonic() - started,
        "phases": phases,
        # Other work on the machine shares its cores with the benchmark: the 1-minute load around the run.
        "load": {"before": load_before, "after": os.getloadavg()[0], "max": max(load_samples, default=load_before)},
        "machine": machine,
        "settings": {
            "profile": profile.name, "scale": profile.scale, "reps": profile.reps, "amp_reps": profile.amp_reps,
            "rate_bits": args.rate_bits, "second_rate_bits": args.second_rate_bits, "amp_rate_bits": args.amp_rate_bits,
            "delay_seconds": args.delay_seconds, "netem": netem, "netem_detail": netem_detail,
            "images": [i.reference for i in bench.images], "image_bytes": image_bytes,
            "full_size_bytes": imageset.full_size_bytes(), "platform": PLATFORM,
            "probe_seconds": profile.probe_seconds,
            "amp_reused_cold_runs": bool(same_rate) and 1 in profile.node_counts,
        },
        "discarded": bench.discarded,
        "links": links,
        "amplification": amplification,
        "hub_pulls": hub_pulls,
        "program": program,
    }
    paths = report.write(results, Path(args.out), args.name)
    log(f"done in {results['seconds']:.0f}s: " + ", ".join(str(p) for p in paths))
    print(report_markdown.markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
