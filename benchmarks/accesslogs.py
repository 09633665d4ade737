"""What the upstreams' and caches' access logs say about the pulls, and runs that bypassed a cache."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .progress import log

if TYPE_CHECKING:
    from .rig import Bench


class BypassError(RuntimeError):
    """A node's pull did not go through the cache: the run measured something else and is discarded."""


#: Attempts per run: a run whose pull bypassed a cache is done again, once.
ATTEMPTS = 2


def attempt(bench: Bench, what: str, run):
    """``run()``, again once if a pull bypassed a cache (the discarded run is counted in the results)."""
    for number in range(1, ATTEMPTS + 1):
        try:
            return run()
        except BypassError as error:
            bench.discarded.append(f"{what}: {str(error).splitlines()[0]}")
            bench.discarded_details.append(f"{what}: {error}")
            log(f"  discarded ({what}): {str(error).splitlines()[0]}")
            if number == ATTEMPTS:
                raise


class AccessLogs:
    """The :class:`~benchmarks.rig.Bench`'s reads of its registries' logs and storage (``self.m``, ``upstreams``,
    ``deployed``, ``blobs``, ``last_pulls`` and ``image_bytes`` are the bench's)."""

    def entries(self, container) -> list:
        """Every request ``container``'s registry has logged, up to now (observe.access_log reads the log once a
        marker request shows in it: Docker copies log lines a moment late)."""
        return self.m.observe.access_log(container)

    def _logs(self, containers: dict[str, Any], since: dict[str, int] | None = None) -> dict[str, list]:
        """``entries`` of several registries at once (each read waits for its own marker), from ``since``."""
        with ThreadPoolExecutor(max_workers=len(containers) or 1) as pool:
            read = dict(zip(containers, pool.map(self.entries, containers.values())))
        return {key: entries[(since or {}).get(key, 0):] for key, entries in read.items()}

    def _upstream_containers(self) -> dict[str, Any]:
        return {host: u.container for host, u in self.upstreams.items()}

    def marks(self) -> dict[str, int]:
        return {host: len(entries) for host, entries in self._logs(self._upstream_containers()).items()}

    def cache_marks(self) -> dict[str, int]:
        return {host: len(entries) for host, entries in self._logs(self.deployed.caches).items()}

    def upstream_requests(self, since: dict[str, int]) -> list:
        """The requests the upstreams served since ``since``."""
        return [e for entries in self._logs(self._upstream_containers(), since).values() for e in entries]

    def upstream_bytes(self, since: dict[str, int]) -> int:
        """Blob bytes the upstreams sent since ``since`` (their access logs)."""
        return self.m.observe.blob_bytes_served(self.upstream_requests(since))

    def cache_blob_bytes(self, since: dict[str, int]) -> int:
        """Blob bytes the caches served since ``since`` (their access logs)."""
        return sum(self.m.observe.blob_bytes_served(entries)
                   for entries in self._logs(self.deployed.caches, since).values())

    def around_caches(self, node, since: dict[str, int]) -> dict[str, set[str]]:
        """Per upstream host, the blobs ``node`` holds but did not get from its cache since ``since``: containerd
        fetched them from the upstream itself (the next host in hosts.toml) after the cache did not answer."""
        ip = self.m.containers.ip_address(node.container, self.m.stack.NETWORK)
        logs = self._logs(self.deployed.caches, since)
        missing = {}
        for host in self.deployed.caches:
            served = {e.reference for e in logs[host]
                      if e.kind == "blobs" and e.method == "GET" and e.status == 200 and e.remote == ip}
            missing[host] = set(self.blobs[host]) - served
        return missing

    def check_through_caches(self, node, since: dict[str, int]) -> None:
        """Raise unless the caches served ``node`` every blob since ``since``: a timing of "through the cache"
        in which the node went around it measured something else."""
        for host, missing in self.around_caches(node, since).items():
            if missing:
                cache = self.deployed.caches[host]
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
        for host, cache in self.deployed.caches.items():
            self.m.observe.wait_cached(cache, self.blobs[host], timeout=timeout)
