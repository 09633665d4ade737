"""What the upstreams' and caches' access logs say about the pulls, and runs that bypassed a cache.

Knows nothing of the rig: :class:`AccessLogs` is handed the registries it reads and how to read them
(benchmarks/rig.py builds one once its upstreams and caches run), and :func:`attempt` anything that keeps the
list of discarded runs.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from .progress import log


class BypassError(RuntimeError):
    """A node's pull did not go through the cache: the run measured something else and is discarded."""


#: Attempts per run: a run whose pull bypassed a cache is done again, once.
ATTEMPTS = 2


class Discards(Protocol):
    #: one line per discarded run, for the results
    discarded: list[str]
    #: the whole story of each, for a log file
    discarded_details: list[str]


def attempt(discards: Discards, what: str, run):
    """``run()``, again once if a pull bypassed a cache (the discarded run is counted in the results)."""
    for number in range(1, ATTEMPTS + 1):
        try:
            return run()
        except BypassError as error:
            discards.discarded.append(f"{what}: {str(error).splitlines()[0]}")
            discards.discarded_details.append(f"{what}: {error}")
            log(f"  discarded ({what}): {str(error).splitlines()[0]}")
            if number == ATTEMPTS:
                raise


def request_kind(entry) -> str:
    """``blobs``, ``manifests``, ``token`` (a token request), ``ping`` (``/v2/``) or ``other``."""
    if entry.kind != "other":
        return entry.kind
    if entry.path.endswith("/token"):
        return "token"
    return "ping" if entry.path in ("/v2/", "/v2") else "other"


@dataclass
class AccessLogs:
    """Reads of the registries' logs and storage: the upstreams (fake upstreams, whose fronts log every request
    with the client's address) and the caches (distribution's own access log)."""

    #: source (a container or a fake upstream) -> every request it logged so far (tests/integration/observe.py)
    read: Callable[[Any], list]
    #: a node -> its address on the caches' network
    ip_of: Callable[[Any], str]
    #: upstream host -> its fake upstream
    upstreams: Mapping[str, Any]
    #: upstream host -> its cache container (the rig's live mapping: emptied caches are new containers)
    caches: Mapping[str, Any]
    #: upstream host -> digest -> size of every blob a node pulls
    blobs: Mapping[str, Mapping[str, int]]
    #: sum of the body bytes of successful blob downloads among some entries
    blob_bytes_served: Callable[[Iterable], int]
    #: (cache, digests, timeout) -> once the cache stores every digest
    wait_cached: Callable[..., None]
    #: node name -> (image, ctr's result) of its last pulls, for diagnostics
    last_pulls: Mapping[str, list] = field(default_factory=dict)

    @property
    def image_bytes(self) -> int:
        return sum(sum(b.values()) for b in self.blobs.values())

    def _logs(self, sources: Mapping[str, Any], since: Mapping[str, int] | None = None) -> dict[str, list]:
        """``read`` of several registries at once (each read waits for its own marker), from ``since``."""
        with ThreadPoolExecutor(max_workers=len(sources) or 1) as pool:
            read = dict(zip(sources, pool.map(self.read, sources.values())))
        return {key: entries[(since or {}).get(key, 0):] for key, entries in read.items()}

    def marks(self) -> dict[str, int]:
        return {host: len(entries) for host, entries in self._logs(self.upstreams).items()}

    def cache_marks(self) -> dict[str, int]:
        return {host: len(entries) for host, entries in self._logs(self.caches).items()}

    def upstream_requests(self, since: Mapping[str, int]) -> list:
        """The requests the upstreams served since ``since``."""
        return [e for entries in self._logs(self.upstreams, since).values() for e in entries]

    def upstream_bytes(self, since: Mapping[str, int]) -> int:
        """Blob bytes the upstreams sent since ``since`` (their access logs)."""
        return self.blob_bytes_served(self.upstream_requests(since))

    def cache_blob_bytes(self, since: Mapping[str, int]) -> int:
        """Blob bytes the caches served since ``since`` (their access logs)."""
        return sum(self.blob_bytes_served(entries) for entries in self._logs(self.caches, since).values())

    def around_caches(self, node, since: Mapping[str, int]) -> dict[str, set[str]]:
        """Per upstream host, the blobs ``node`` holds but did not get from its cache since ``since``: containerd
        fetched them from the upstream itself (the next host in hosts.toml) after the cache did not answer."""
        ip = self.ip_of(node)
        logs = self._logs(self.caches, since)
        missing = {}
        for host in self.caches:
            served = {e.reference for e in logs[host]
                      if e.kind == "blobs" and e.method == "GET" and e.status == 200 and e.remote == ip}
            missing[host] = set(self.blobs[host]) - served
        return missing

    def check_through_caches(self, node, since: Mapping[str, int]) -> None:
        """Raise unless the caches served ``node`` every blob since ``since``: a timing of "through the cache"
        in which the node went around it measured something else."""
        for host, missing in self.around_caches(node, since).items():
            if missing:
                cache = self.caches[host]
                errors = [f"{e.method} {e.reference} {e.status}" for e in self._logs({host: cache}, since)[host]
                          if e.kind == "blobs" and e.status >= 400]
                pulls = "\n".join(f"{ref}: exit {r.exit_code}, {r.seconds:.2f}s\n{r.stdout[-1500:]}{r.stderr[-500:]}"
                                  for ref, r in self.last_pulls.get(node.name, []))
                raise BypassError(
                    f"{node.name} did not get {len(missing)} blob(s) from {cache.name} (its failed blob requests: "
                    f"{errors[-3:]})\nits pulls:\n{pulls}\nthe cache's log ends with:\n"
                    + cache.logs(tail=40).decode(errors="replace"))

    def wait_stored(self, bits: int) -> None:
        """Until the caches hold every blob (v3 stores a blob as it streams it; Debian's 2.8 fallback stores it
        with a second download that may outlast the client's)."""
        timeout = 60 + 3 * self.image_bytes * 8 / bits
        for host, cache in self.caches.items():
            self.wait_cached(cache, self.blobs[host], timeout=timeout)
