"""Look into registries the tests run: access logs, Prometheus metrics, expvar counters, stored blobs."""
from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import requests
from docker.models.containers import Container

from krc.commands.cachemetrics import Sample, parse_prometheus

from .containers import exec_ok

__all__ = [
    "AccessEntry", "Sample", "access_log", "blob_gets", "blob_bytes_served", "cached_blobs", "debug_vars",
    "metric", "parse_access_log", "parse_prometheus", "scrape_metrics", "scrape_metrics_url", "token_requests", "wait_cached",
]

# distribution logs every request in Apache combined format on stdout:
# 172.17.0.4 - - [28/Nov/2026:02:26:29 +0000] "GET /v2/library/alpha/blobs/sha256:.. HTTP/1.1" 200 133153 "" "Go-http-client/1.1"
_COMBINED = re.compile(
    r'^(?P<remote>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<target>\S+) [^"]*" '
    r'(?P<status>\d{3}) (?P<size>\d+|-) "[^"]*" "(?P<agent>[^"]*)"$'
)
_API_PATH = re.compile(r"^/v2/(?P<repository>.+)/(?P<kind>blobs|manifests)/(?P<reference>[^/]+)$")


@dataclass(frozen=True)
class AccessEntry:
    """One request a registry served."""

    remote: str
    user: str
    method: str
    path: str
    query: str
    status: int
    #: response body bytes (0 for HEAD)
    size: int
    user_agent: str

    @property
    def kind(self) -> str:
        """``blobs``, ``manifests`` or ``other`` (``/v2/``, uploads, catalog)."""
        match = _API_PATH.match(self.path)
        return match["kind"] if match else "other"

    @property
    def repository(self) -> str | None:
        match = _API_PATH.match(self.path)
        return match["repository"] if match else None

    @property
    def reference(self) -> str | None:
        """The tag or digest of a blob or manifest request."""
        match = _API_PATH.match(self.path)
        return match["reference"] if match else None


def parse_access_log(text: str) -> list[AccessEntry]:
    """The access-log lines of a registry's output (other log lines are skipped)."""
    entries = []
    for line in text.splitlines():
        match = _COMBINED.match(line.strip())
        if not match:
            continue
        path, _, query = match["target"].partition("?")
        entries.append(AccessEntry(
            remote=match["remote"], user=match["user"], method=match["method"], path=path, query=query,
            status=int(match["status"]), size=0 if match["size"] == "-" else int(match["size"]),
            user_agent=match["agent"],
        ))
    return entries


#: Query of the requests :func:`access_log` sends itself; they are left out of what it returns.
LOG_MARKER = "krc-log-marker"


def access_log(container, timeout: float = 10.0) -> list[AccessEntry]:
    """Every request the registry in ``container`` has logged so far; for a fake upstream (upstreams.FakeUpstream),
    every request its front answered (FakeUpstream.access_log).

    Docker copies a container's output into its log a moment after the registry writes it, so a log read
    right after a request can miss that request. A running registry is first sent a marker request for its
    base endpoint (``/v2/``: answered locally even in proxy mode, never forwarded upstream, no blob or
    manifest counter moves) and the log is read once the marker shows; everything before it is complete.
    """
    if hasattr(container, "access_log"):
        return container.access_log(timeout)
    container.reload()
    marker = ""
    if container.status == "running":
        marker = f"{LOG_MARKER}={uuid.uuid4().hex}"
        container.exec_run(["wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:5000/v2/?{marker}"])
    deadline = time.monotonic() + timeout
    while True:
        text = container.logs(stdout=True, stderr=True).decode(errors="replace")
        if not marker or marker in text or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return [e for e in parse_access_log(text) if LOG_MARKER not in e.query]


def blob_gets(entries: Iterable[AccessEntry]) -> Counter[str]:
    """digest -> number of successful blob downloads (GET 200)."""
    return Counter(e.reference for e in entries if e.kind == "blobs" and e.method == "GET" and e.status == 200)


def blob_bytes_served(entries: Iterable[AccessEntry]) -> int:
    """Body bytes of all successful blob downloads."""
    return sum(e.size for e in entries if e.kind == "blobs" and e.method == "GET" and e.status == 200)


def metric(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels`` (0 when there is none)."""
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _debug_get(container: Container, path: str, port: int) -> str:
    # The image's busybox wget, from inside: no port needs publishing and nothing leaves the container.
    return exec_ok(container, ["wget", "-q", "-O", "-", f"http://127.0.0.1:{port}{path}"])


def scrape_metrics(container: Container, port: int = 5001) -> list[Sample]:
    """The registry's ``/metrics`` on its debug port (REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED=true), read from
    inside the container; :func:`scrape_metrics_url` reads a debug port published on 127.0.0.1.

    distribution 2.8 exports ``registry_http_*`` (requests by handler/method/code, response bytes) and
    ``registry_storage_*``; the proxy hit/miss counters are only in :func:`debug_vars` there (v3 exports them here).
    """
    return parse_prometheus(_debug_get(container, "/metrics", port))


def scrape_metrics_url(url: str) -> list[Sample]:
    """``/metrics`` from a published debug port, e.g. ``http://127.0.0.1:<port>/metrics``."""
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return parse_prometheus(response.text)


def debug_vars(container: Container, port: int = 5001) -> dict:
    """The registry's expvar JSON (``/debug/vars``); 2.8 keeps proxy counters under
    ``["registry"]["proxy"]["blobs" | "manifests"]`` (Requests, Hits, Misses, BytesPulled, BytesPushed).

    Those 2.8 counters do not tell hits from misses (measured here: a cold pull of 7 blobs gives blobs
    Requests=14, Hits=14, Misses=0, BytesPulled=0, BytesPushed=2x the blob bytes): prove cache behaviour
    with the access logs instead.
    """
    return json.loads(_debug_get(container, "/debug/vars", port))


def cached_blobs(container: Container, root: str = "/var/lib/registry") -> set[str]:
    """Digests of the blobs stored in the registry's filesystem storage."""
    out = exec_ok(container, ["find", f"{root}/docker/registry/v2/blobs", "-name", "data", "-type", "f"])
    # .../blobs/sha256/ab/abcdef.../data
    return {f"sha256:{line.rsplit('/', 2)[-2]}" for line in out.split()}


def wait_cached(container: Container, digests: Iterable[str], timeout: float = 30.0) -> None:
    """Wait until every digest is stored by the cache (a proxy stores a blob after serving it)."""
    wanted = set(digests)
    deadline = time.monotonic() + timeout
    while True:
        try:
            missing = wanted - cached_blobs(container)
        except RuntimeError:  # the blobs folder does not exist before the first blob is stored
            missing = wanted
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{container.name} has not stored {sorted(missing)}")
        time.sleep(0.1)


def token_requests(upstream) -> Counter[int]:
    """Status code -> number of token requests a fake upstream (upstreams.FakeUpstream) answered."""
    return upstream.token_requests()
