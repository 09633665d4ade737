"""Docker Hub pulls per cluster recreation: manifest GETs at the upstreams, counted as Docker Hub counts pulls.

Docker's definition (docs.docker.com, "Docker Hub pull usage and limits"; docker/docs
content/manuals/docker-hub/usage/pulls.md): a pull is a download of an image manifest (a GET); a multi-arch image
counts once for each architecture fetched, so its index GET is no pull of its own; a version check (HEAD) never
counts. The fake upstreams count so (tests/integration/fakeupstream.py), whichever registry they stand for.

A cluster recreation is ``pulumi destroy`` + ``pulumi up``: every node pulls every image again. Measured for 1, 3
and 6 nodes pulling at once, images named by digest and by tag, three ways:

- direct: the nodes pull from the upstreams themselves (no cache);
- cold with the warm-up: empty caches, the program's warm-up, then the nodes through the caches;
- warm: the caches hold everything; the warm-up runs again (its cache containers are new after a destroy, which
  triggers it) and the nodes pull through the caches.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .progress import log
from .rig import HOSTS, Bench, baseline_hosts_toml

WAYS = ("direct", "cold with warm-up", "warm")
#: The counters kept per case (their difference over the case).
COUNTERS = ("docker_pulls", "manifest_get", "manifest_head", "index_get", "tokens")


def hub_counts(bench: Bench) -> Counter:
    """The upstreams' counters summed over them and over the allowance buckets."""
    total: Counter = Counter()
    for upstream in bench.upstreams.values():
        for key, n in upstream.counts().items():
            total["docker_pulls" if key.startswith("docker_pulls:") else key] += n
    return total


@contextlib.contextmanager
def direct(bench: Bench):
    """The program's nodes pull from the upstreams themselves (containerd reads hosts.toml on every pull)."""
    certs = bench.work / "certs.d"
    saved = {host: (certs / host / "hosts.toml").read_text() for host in HOSTS}
    try:
        for host in HOSTS:
            (certs / host / "hosts.toml").write_text(baseline_hosts_toml(bench.upstream_urls[host]))
        yield
    finally:
        for host, text in saved.items():
            (certs / host / "hosts.toml").write_text(text)


def _delta(bench: Bench, before: Counter) -> dict[str, int]:
    after = hub_counts(bench)
    return {key: after[key] - before[key] for key in COUNTERS}


def measure_hub_pulls(bench: Bench, counts: Sequence[int]) -> list[dict[str, Any]]:
    """Per (by, way, node count): the upstreams' counters over one cluster recreation (one run each: the counts
    do not vary from run to run, which the three node counts show)."""
    log("Docker Hub pulls per cluster recreation")
    cases: list[dict[str, Any]] = []

    def case(by: str, way: str, count: int, **numbers: Any) -> None:
        cases.append({"by": by, "way": way, "count": count, "images": len(bench.images), **numbers})
        log(f"  by {by}, {way}, {count} node(s): {numbers['pulls']} pull(s)")

    for by in ("digest", "tag"):
        with direct(bench):
            for count in counts:
                before = hub_counts(bench)
                bench.pull_at_once(count, by)
                got = _delta(bench, before)
                case(by, "direct", count, pulls=got["docker_pulls"], nodes=got)
        bench.fresh_caches()
        for way in WAYS[1:]:
            before = hub_counts(bench)
            bench.warm_up(by)
            warmup = _delta(bench, before)
            for count in counts:
                before = hub_counts(bench)
                bench.pull_at_once(count, by)
                nodes = _delta(bench, before)
                case(by, way, count, pulls=warmup["docker_pulls"] + nodes["docker_pulls"], warmup=warmup, nodes=nodes)
    return cases
