"""A fake ``docker`` CLI for the cache tools: cache containers that answer ``docker exec ... wget`` like a
pull-through registry over an in-memory upstream, and record what they were asked."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from krc.commands.cacheclient import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from krc.commands.dockercli import Result

NOT_FOUND = "wget: server returned error: HTTP/1.1 404 Not Found\n"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeUpstream:
    """Repositories with tags, manifests (by digest) and blob sizes."""

    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    manifests: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, int] = field(default_factory=dict)

    def add_image(
        self, repository: str, tag: str, layers: Sequence[tuple[str, int]], platforms: Sequence[str] = ("linux/amd64",),
        oci: bool = False,
    ) -> str:
        """Add an image whose layers are named blobs (the same name gives the same digest); its tag's digest."""
        per_platform = len(platforms) > 1
        entries = []
        for platform in platforms:
            config = json.dumps({"image": repository, "platform": platform}).encode()
            config_digest = digest_of(config)
            self.blobs[config_digest] = len(config)
            layer_descriptors = []
            for name, size in layers:
                layer_digest = digest_of(f"{name}@{platform if per_platform else ''}".encode())
                self.blobs[layer_digest] = size
                layer_descriptors.append({"mediaType": "layer", "digest": layer_digest, "size": size})
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
                "config": {"mediaType": "config", "digest": config_digest, "size": len(config)},
                "layers": layer_descriptors,
            }).encode()
            self.manifests[digest_of(manifest)] = manifest
            os_, arch, *variant = platform.split("/")
            entries.append({"mediaType": DOCKER_MANIFEST, "digest": digest_of(manifest), "size": len(manifest),
                            "platform": {"os": os_, "architecture": arch, **({"variant": variant[0]} if variant else {})}})
        if per_platform:
            top = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX if oci else DOCKER_LIST,
                              "manifests": entries}).encode()
            self.manifests[digest_of(top)] = top
            self.tags[(repository, tag)] = digest_of(top)
        else:
            self.tags[(repository, tag)] = entries[0]["digest"]
        return self.tags[(repository, tag)]

    def platform_blobs(self, repository: str, tag: str, platform: str = "linux/amd64") -> dict[str, int]:
        """digest -> size of the config and layers a node of ``platform`` pulls."""
        document = json.loads(self.manifests[self.tags[(repository, tag)]])
        if "manifests" in document:
            os_, arch, *variant = platform.split("/")
            entry = next(e for e in document["manifests"] if e["platform"]["os"] == os_
                         and e["platform"]["architecture"] == arch
                         and e["platform"].get("variant", "") == (variant[0] if variant else e["platform"].get("variant", "")))
            document = json.loads(self.manifests[entry["digest"]])
        return {d["digest"]: d["size"] for d in [document["config"], *document["layers"]]}


@dataclass
class FakeCache:
    """One cache container over an upstream; ``store_after`` checks pass before a fetched blob shows as stored
    (distribution 2.8 stores in the background)."""

    upstream: FakeUpstream
    running: bool = True
    healthy_after: int = 0
    store_after: int = 0
    stored: set[tuple[str, str]] = field(default_factory=set)
    #: (repository, digest) -> blob requests
    blob_requests: Counter = field(default_factory=Counter)
    #: (repository, digest) -> upstream fetches (requests when not stored)
    upstream_fetches: Counter = field(default_factory=Counter)
    manifest_requests: list[tuple[str, str, str]] = field(default_factory=list)
    _pending: dict[tuple[str, str], int] = field(default_factory=dict)


class FakeDocker:
    """Callable as a :data:`krc.commands.dockercli.Runner`."""

    def __init__(self, platform: str = "linux/amd64", fetch_seconds: float = 0.0) -> None:
        self.platform = platform
        self.fetch_seconds = fetch_seconds
        self.caches: dict[str, FakeCache] = {}
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0

    def add_cache(self, name: str, upstream: FakeUpstream, **options) -> FakeCache:
        self.caches[name] = FakeCache(upstream, **options)
        return self.caches[name]

    def __call__(self, args: Sequence[str]) -> Result:
        args = list(args)
        with self._lock:
            self.calls.append(args)
        if args[:1] == ["version"]:
            return Result(0, f"{self.platform}\n".encode(), "")
        if args[:1] == ["inspect"]:
            cache = self.caches.get(args[-1])
            if cache is None:
                return Result(1, b"", f"Error: No such object: {args[-1]}\n")
            return Result(0, b"true\n" if cache.running else b"false\n", "")
        if args[:1] == ["exec"]:
            cache = self.caches.get(args[1])
            if cache is None or not cache.running:
                return Result(1, b"", f"Error response from daemon: container {args[1]} is not running\n")
            return self._exec(cache, args[2:])
        raise AssertionError(f"unexpected docker call {args}")

    def _exec(self, cache: FakeCache, command: list[str]) -> Result:
        if command[0] == "wget":
            url = command[-1]
            path = url.split("://", 1)[1].split("/", 1)[1]
            if path.endswith("debug/health"):
                if cache.healthy_after > 0:
                    cache.healthy_after -= 1
                    return Result(1, b"", "wget: can't connect to remote host (127.0.0.1): Connection refused\n")
                return Result(0, b"", "")
            repository, kind, reference = path.removeprefix("v2/").rsplit("/", 2)
            if kind == "manifests":
                accept = command[command.index("--header") + 1] if "--header" in command else ""
                with self._lock:
                    cache.manifest_requests.append((repository, reference, accept))
                digest = cache.upstream.tags.get((repository, reference), reference)
                body = cache.upstream.manifests.get(digest)
                return Result(0, body, "") if body is not None else Result(1, b"", NOT_FOUND)
            return self._blob(cache, repository, reference)
        if command[:2] == ["sh", "-c"]:
            pairs = command[4:]
            missing = []
            with self._lock:
                # Each check lets time pass for every copy being stored.
                for key in list(cache._pending):
                    cache._pending[key] -= 1
                    if cache._pending[key] <= 0:
                        del cache._pending[key]
                        cache.stored.add(key)
                for repo, digest in zip(pairs[::2], pairs[1::2]):
                    key = (repo, digest)
                    if key not in cache.stored:
                        missing.append(f"{repo} {digest}\n")
            return Result(0, "".join(missing).encode(), "")
        raise AssertionError(f"unexpected exec {command}")

    def _blob(self, cache: FakeCache, repository: str, digest: str) -> Result:
        if digest not in cache.upstream.blobs:
            return Result(1, b"", NOT_FOUND)
        key = (repository, digest)
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            cache.blob_requests[key] += 1
            if key not in cache.stored:
                cache.upstream_fetches[key] += 1
                if any(d == digest for _, d in cache._pending):
                    # distribution: a blob already being stored (for any repository) is streamed, not stored.
                    pass
                elif cache.store_after:
                    cache._pending[key] = cache.store_after
                else:
                    cache.stored.add(key)
        if self.fetch_seconds:
            time.sleep(self.fetch_seconds)
        with self._lock:
            self._in_flight -= 1
        return Result(0, b"", "")
