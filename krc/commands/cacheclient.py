"""Talking to one cache container: ``docker exec <cache> wget http://127.0.0.1:5000/...`` with the registry
image's busybox ``wget``, and reading the manifests it returns (no Pulumi here).

Hand-written on purpose: the requests run inside the cache container through the Docker CLI (so they work on
Docker Desktop, where the host cannot reach the kind network), which no registry client library does; the
manifest handling is the few fields of the OCI image index / manifest the warm-up needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from krc.commands import dockercli
from krc.commands.dockercli import Runner
from krc.render import registry
from krc.render.mirrors import CACHE_PORT

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
#: What containerd accepts; without it a registry may convert the manifest to the old schema 1.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
#: Seconds a cache gets to answer its health check before the warm-up gives up on it.
READY_SECONDS = 90.0
#: Seconds one blob may take, all requests included, until the cache has stored it.
BLOB_SECONDS = 600.0


class FetchError(RuntimeError):
    """A request to a cache failed; ``status`` is the HTTP status when the cache answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _status(stderr: str) -> int | None:
    # busybox wget: "wget: server returned error: HTTP/1.1 404 Not Found"
    marker = "server returned error: HTTP/"
    if marker not in stderr:
        return None
    try:
        return int(stderr.split(marker, 1)[1].split()[1])
    except (IndexError, ValueError):
        return None


@dataclass
class Cache:
    """One cache container, reached with ``docker exec`` and the image's busybox ``wget``."""

    runner: Runner
    container: str
    data_dir: str = registry.DATA_DIR

    def _wget(self, path: str, output: str, accept: str | None = None) -> bytes:
        command = ["wget", "-q", "-O", output]
        if accept:
            command += ["--header", f"Accept: {accept}"]
        command.append(f"http://127.0.0.1:{CACHE_PORT}{path}")
        result = self.runner(dockercli.exec_args(self.container, command))
        if not result.ok:
            raise FetchError(f"{self.container}: GET {path}: {result.stderr.strip() or f'exit {result.code}'}",
                             _status(result.stderr))
        return result.stdout

    def manifest(self, repository: str, reference: str) -> bytes:
        """The manifest or index the cache serves for ``repository:reference``."""
        return self._wget(f"/v2/{repository}/manifests/{reference}", "-", accept=ACCEPT)

    def fetch_blob(self, repository: str, digest: str) -> None:
        """Have the cache fetch a blob (from upstream when it is cold); the bytes stay in the container."""
        self._wget(f"/v2/{repository}/blobs/{digest}", "/dev/null")

    def unserved(self, repository: str, digests: Iterable[str]) -> set[str]:
        """The blobs of ``repository`` the registry does not serve, asked of it in one ``docker exec`` (busybox
        ``wget --spider``: the answer's headers, no body). Against a pull-through cache this would fetch the missing
        ones from upstream; :mod:`krc.commands.offline` asks a read-only registry without one."""
        wanted = sorted(set(digests))
        if not wanted:
            return set()
        script = (
            'repo=$1; shift\n'
            f'for d in "$@"; do wget -q --spider "http://127.0.0.1:{CACHE_PORT}/v2/$repo/blobs/$d" 2>/dev/null '
            '|| echo "$d"; done\n'
        )
        result = dockercli.run_ok(self.runner, dockercli.exec_args(self.container, ["sh", "-c", script, "sh", repository, *wanted]))
        return set(result.text.split())

    def missing(self, blobs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (repository, digest) pairs this cache does not hold yet.

        distribution links a cached blob to each repository it was pulled through and serves it only
        there: a blob held for one repository is still a miss (an upstream fetch) for another.
        """
        pairs = sorted(set(blobs))
        if not pairs:
            return set()
        script = (
            f'root={self.data_dir}/docker/registry/v2\n'
            'while [ "$#" -gt 1 ]; do\n'
            '  repo=$1; digest=$2; shift 2; hex=${digest#sha256:}; two=${hex%"${hex#??}"}\n'
            '  [ -f "$root/repositories/$repo/_layers/sha256/$hex/link" ] && [ -f "$root/blobs/sha256/$two/$hex/data" ] '
            '|| echo "$repo $digest"\n'
            'done\n'
        )
        args = [item for pair in pairs for item in pair]
        result = dockercli.run_ok(self.runner, dockercli.exec_args(self.container, ["sh", "-c", script, "sh", *args]))
        return {tuple(line.split(" ", 1)) for line in result.text.splitlines() if " " in line}  # type: ignore[misc]

    def wait_ready(self, timeout: float = READY_SECONDS, sleep: Callable[[float], None] = time.sleep) -> None:
        """Return once the registry answers its health check; raise :class:`FetchError` if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.runner(["inspect", "--format", "{{.State.Running}}", self.container])
            if not state.ok:
                raise FetchError(f"cache container {self.container} not found on this Docker engine "
                                 f"({state.stderr.strip()})")
            if state.text.strip() == "true":
                health = self.runner(dockercli.exec_args(
                    self.container,
                    ["wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{registry.DEBUG_PORT}/debug/health"]))
                if health.ok:
                    return
            if time.monotonic() > deadline:
                raise FetchError(f"cache container {self.container} did not become ready within {timeout:.0f}s; "
                                 f"see `docker logs {self.container}`")
            sleep(0.5)


def engine_platform(runner: Runner) -> str:
    """The Docker engine's ``os/arch``: the platform kind's nodes run, so the one they pull."""
    result = dockercli.run_ok(runner, ["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"])
    return result.text.strip()


def _platform_matches(entry: dict, wanted: str) -> tuple[bool, int]:
    """Whether an index entry's platform is ``wanted``; the rank orders several matches (lower is better)."""
    os_, arch, *variant = wanted.split("/")
    platform = entry.get("platform") or {}
    if platform.get("os") != os_ or platform.get("architecture") != arch:
        return False, 0
    have = platform.get("variant", "")
    if variant:
        return have == variant[0], 0
    # containerd's default for arm64 is v8, and an entry without a variant matches anything.
    if have in ("", "v8" if arch == "arm64" else ""):
        return True, 0 if have == "" else 1
    return True, 2


def select_manifest(index: dict, platform: str) -> str | None:
    """The digest of ``platform``'s manifest in an image index, as containerd would choose it."""
    best: tuple[int, str] | None = None
    for entry in index.get("manifests", []):
        ok, rank = _platform_matches(entry, platform)
        if ok and (best is None or rank < best[0]):
            best = (rank, entry["digest"])
    return best[1] if best else None


def is_index(document: dict) -> bool:
    return document.get("mediaType") in INDEX_TYPES or ("manifests" in document and "layers" not in document)


def manifest_blobs(manifest: dict) -> dict[str, int]:
    """digest -> size of a manifest's config and layers (foreign, non-distributable layers excluded)."""
    blobs: dict[str, int] = {}
    for descriptor in [manifest.get("config") or {}, *manifest.get("layers", [])]:
        media_type = descriptor.get("mediaType", "")
        if not descriptor.get("digest") or "foreign" in media_type or "nondistributable" in media_type:
            continue
        blobs[descriptor["digest"]] = int(descriptor.get("size", 0))
    return blobs
