"""A cache's hits, misses and bytes from its registry's ``/metrics`` and ``/debug/vars`` (no Pulumi here).

The Prometheus text is read with ``prometheus_client``'s parser. What remains hand-written is the arithmetic
of :func:`counts`: which of distribution's counters (v3's ``registry_proxy_*``, 2.8's ``/debug/vars``) mean a
hit, a miss or bytes from upstream is a fact of this registry's code, which no library knows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_prometheus(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition, read by ``prometheus_client``'s parser.

    Sample names are kept as exposed (``registry_proxy_requests_total``, ``..._sum``), label values unescaped.
    A text the parser rejects as a whole (an error message where the metrics should be, a truncated
    line) is read line by line and the lines it cannot read are left out, as a scrape that went wrong
    should give fewer numbers rather than none.
    """
    try:
        return _samples(text)
    except ValueError:
        samples: list[Sample] = []
        for line in text.splitlines():
            try:
                samples.extend(_samples(line + "\n"))
            except ValueError:
                continue
        return samples


def _samples(text: str) -> list[Sample]:
    return [
        Sample(sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _sum(samples: Iterable[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@dataclass(frozen=True)
class Counts:
    """Proxy traffic since the cache container started (the registry keeps its counters in memory)."""

    hits: int
    misses: int
    bytes_from_cache: int
    bytes_from_upstream: int
    #: Where the numbers come from.
    source: str


def _served(samples: list[Sample], handler: str) -> tuple[int, int]:
    """Successful GET/HEAD requests of one handler (``blob``, ``manifest``) and their response bytes."""
    count = sum(
        s.value for s in samples
        if s.name == "registry_http_requests_total" and s.labels.get("handler") == handler
        and s.labels.get("method", "").lower() in ("get", "head") and s.labels.get("code", "").startswith("2")
    )
    return int(count), int(_sum(samples, "registry_http_response_size_bytes_sum", handler=handler))


def counts(metrics: str, debug_vars: dict[str, Any] | None, mode: str = "proxy") -> Counts | None:
    """Hits, misses and bytes from a registry's ``/metrics`` and ``/debug/vars``.

    distribution v3 exports ``registry_proxy_{requests,hits,misses,pulled_bytes,pushed_bytes}_total`` by
    ``type`` (blob, manifest; registry/proxy/proxymetrics.go): a request served is a hit unless it was a
    miss, a miss pulls its bytes from upstream, and what was pushed beyond what was pulled came from the
    cache. 2.8 exports no proxy metrics and its ``/debug/vars`` proxy counters count every blob as a
    hit and nothing as pulled: there, each cold blob is copied into storage by a second upstream fetch,
    which the counters do see (Requests and BytesPushed beyond what the HTTP metrics served), so misses
    are those copies and upstream bytes are twice their size. In offline mode (no proxy: the entrypoint
    serves stored content alone) everything served is a hit.

    :returns: ``None`` when the text carries neither.
    """
    samples = parse_prometheus(metrics)
    if mode == "offline" and any(s.name == "registry_http_requests_total" for s in samples):
        served = [_served(samples, handler) for handler in ("blob", "manifest")]
        return Counts(sum(n for n, _ in served), 0, sum(b for _, b in served), 0, "HTTP metrics (offline mode)")
    if any(s.name == "registry_proxy_requests_total" for s in samples):
        hits = misses = from_cache = from_upstream = 0
        for kind in ("blob", "manifest"):
            requests = int(_sum(samples, "registry_proxy_requests_total", type=kind))
            missed = int(_sum(samples, "registry_proxy_misses_total", type=kind))
            pulled = int(_sum(samples, "registry_proxy_pulled_bytes_total", type=kind))
            pushed = int(_sum(samples, "registry_proxy_pushed_bytes_total", type=kind))
            hits += max(requests - missed, 0)
            misses += missed
            from_upstream += pulled
            from_cache += max(pushed - pulled, 0)
        return Counts(hits, misses, from_cache, from_upstream, "registry_proxy_* metrics")
    proxy = ((debug_vars or {}).get("registry") or {}).get("proxy")
    if not isinstance(proxy, dict):
        return None
    blobs, manifests = proxy.get("blobs") or {}, proxy.get("manifests") or {}
    served, served_bytes = _served(samples, "blob")
    copies = max(int(blobs.get("Requests", 0)) - served, 0)
    stored_bytes = max(int(blobs.get("BytesPushed", 0)) - served_bytes, 0)
    manifest_misses = int(manifests.get("Misses", 0))
    manifest_pulled = int(manifests.get("BytesPulled", 0))
    return Counts(
        hits=max(served - copies, 0) + max(int(manifests.get("Requests", 0)) - manifest_misses, 0),
        misses=copies + manifest_misses,
        bytes_from_cache=max(served_bytes - stored_bytes, 0) + max(int(manifests.get("BytesPushed", 0)) - manifest_pulled, 0),
        bytes_from_upstream=2 * stored_bytes + manifest_pulled,
        source="registry 2.8 /debug/vars and HTTP metrics",
    )
