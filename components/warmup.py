"""Warm-up: pull images through the caches before the nodes ask for them, each blob once (no Pulumi here).

distribution's proxy does not merge concurrent requests: when several nodes pull the same cold blob at
once, each request is streamed from upstream again (and 2.8 fetches a cold blob twice even for one
client; see docs). Pulling every blob once, right after the caches start and while ``kind create``
runs, leaves the nodes nothing but cache hits.

The warm-up runs inside each cache container (``docker exec <cache> wget http://127.0.0.1:5000/...``)
through the Docker API, so it works wherever the program does, Docker Desktop included. The program runs
``python -m components.warmup`` with a JSON :class:`Plan` on stdin; :func:`warm` is the same thing with an
injectable :data:`dockercli.Runner` for tests.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from . import dockercli, registry, versions
from .addon_settings import AddonSettings
from .dockercli import Runner
from .imageref import ImageRef, parse_reference
from .mirrors import CACHE_PORT
from .settings import CacheSettings, WarmupSettings

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

Log = Callable[[str], None]


# --- what to warm ------------------------------------------------------------------------------


def addon_images(addons: AddonSettings) -> tuple[list[str], list[str]]:
    """The images the enabled add-ons pull, from the lists pinned next to their chart versions.

    :returns: ``(images, notes)``; a note names what is left out and why: an add-on whose chart version
        is not the pinned one (its images differ), and an image pinned without a tag.
    """
    images: list[str] = []
    notes: list[str] = []

    def add(name: str, enabled: bool, version: str, pinned: str, lists: Iterable[Sequence[str]]) -> None:
        if not enabled:
            return
        if version != pinned:
            notes.append(
                f"addons.{name}.version {version} is not the pinned {pinned}: its images are not warmed; "
                f"list them in warmup.images"
            )
            return
        for image in (i for group in lists for i in group):
            if parse_reference(image).pinned:
                images.append(image)
            else:
                notes.append(f"{image} has no pinned tag in components/versions.py: not warmed")

    add("cilium", addons.cilium.enabled, addons.cilium.version, versions.CILIUM_CHART,
        [versions.CILIUM_IMAGES, versions.CILIUM_HUBBLE_IMAGES if addons.cilium.hubble else ()])
    add("metallb", addons.metallb.enabled, addons.metallb.version, versions.METALLB_CHART,
        [versions.METALLB_IMAGES, versions.METALLB_FRR_IMAGES if addons.metallb.frr else ()])
    add("ingressNginx", addons.ingress_nginx.enabled, addons.ingress_nginx.version, versions.INGRESS_NGINX_CHART,
        [versions.INGRESS_NGINX_IMAGES])
    return images, notes


def images_to_warm(warmup: WarmupSettings, addons: AddonSettings) -> tuple[list[str], list[str]]:
    """The add-ons' images plus ``warmup.images`` (or only those with ``warmup.replace``), without repeats."""
    if warmup.replace:
        return list(warmup.images), []
    images, notes = addon_images(addons)
    return list(dict.fromkeys([*images, *warmup.images])), notes


@dataclass(frozen=True)
class Target:
    """The images one cache container warms: all from ``host``."""

    host: str
    container: str
    images: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """Everything the warm-up needs, as plain data (it crosses a process boundary as JSON)."""

    targets: tuple[Target, ...]
    #: ``os/arch[/variant]`` to pick from a multi-platform image; ``None`` for the engine's own.
    platform: str | None = None
    #: Blob downloads at once, across all caches.
    parallel: int = 4
    #: (image, why) for images no local cache serves.
    skipped: tuple[tuple[str, str], ...] = ()
    #: The registry's storage root inside the cache containers.
    data_dir: str = registry.DATA_DIR

    @property
    def images(self) -> list[str]:
        return [image for target in self.targets for image in target.images]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        return cls(
            targets=tuple(Target(t["host"], t["container"], tuple(t["images"])) for t in data["targets"]),
            platform=data.get("platform"),
            parallel=int(data.get("parallel", 4)),
            skipped=tuple((image, why) for image, why in data.get("skipped", ())),
            data_dir=data.get("data_dir", registry.DATA_DIR),
        )


def plan(cache: CacheSettings, warmup: WarmupSettings, images: Sequence[str]) -> Plan:
    """Group ``images`` by registry host onto the cache container that serves it.

    A local mirror's cache is this stack's container; a ``cache.useStack`` mirror's is the other stack's
    container on the same engine. A mirror shared at a URL has no container here, and a host without a
    mirror is pulled from its upstream directly: both are skipped, with the reason.
    """
    by_host = {m.host: m for m in cache.mirrors}
    grouped: dict[str, list[str]] = {}
    containers: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    for image in images:
        ref = parse_reference(image)
        mirror = by_host.get(ref.host)
        if mirror is None:
            skipped.append((image, f"no mirror for {ref.host}: nodes pull it from the upstream directly"))
            continue
        container = cache.container_name(mirror) if mirror.is_local else mirror.shared_container
        if container is None:
            skipped.append((image, f"{ref.host} is pulled through the shared cache {mirror.shared}; warm it there"))
            continue
        containers[ref.host] = container
        grouped.setdefault(ref.host, []).append(image)
    targets = tuple(Target(host, containers[host], tuple(dict.fromkeys(found))) for host, found in grouped.items())
    return Plan(targets=targets, platform=warmup.platform, parallel=warmup.parallel, skipped=tuple(skipped))


def stack_plan(cache: CacheSettings, warmup: WarmupSettings, addons: AddonSettings) -> tuple[Plan, list[str]]:
    """The stack's warm-up: :func:`images_to_warm` placed by :func:`plan`; plus notes for the log."""
    images, notes = images_to_warm(warmup, addons)
    return plan(cache, warmup, images), notes


# --- talking to a cache ------------------------------------------------------------------------


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


def _is_index(document: dict) -> bool:
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


# --- the warm-up -------------------------------------------------------------------------------


@dataclass
class ImageResult:
    """What the warm-up did for one image."""

    image: str
    container: str
    #: digest -> size of the config and layers the platform's manifest lists
    blobs: dict[str, int] = field(default_factory=dict)
    #: digests this run had the cache fetch (the others were cached already or fetched for another image)
    fetched: set[str] = field(default_factory=set)
    error: str | None = None


@dataclass
class Report:
    """The whole warm-up: per image, plus the totals the tests and the log use."""

    platform: str
    images: list[ImageResult]
    skipped: list[tuple[str, str]]
    #: (container, repository, digest) -> size of every blob fetched
    fetched: dict[tuple[str, str, str], int]
    seconds: float

    @property
    def failed(self) -> list[ImageResult]:
        return [i for i in self.images if i.error]

    @property
    def fetched_bytes(self) -> int:
        return sum(self.fetched.values())


def _resolve(cache: Cache, image: str, ref: ImageRef, platform: str) -> ImageResult:
    result = ImageResult(image=image, container=cache.container)
    try:
        body = cache.manifest(ref.repository, ref.reference)
        document = json.loads(body)
        if _is_index(document):
            digest = select_manifest(document, platform)
            if digest is None:
                found = sorted({"/".join(filter(None, (p.get("os"), p.get("architecture"), p.get("variant"))))
                                for p in (e.get("platform") or {} for e in document.get("manifests", []))})
                result.error = f"{image}: no {platform} image in its index (it has {', '.join(found) or 'none'})"
                return result
            document = json.loads(cache.manifest(ref.repository, digest))
        result.blobs = manifest_blobs(document)
    except FetchError as error:
        if error.status == 404:
            result.error = f"{image}: not found (the cache {cache.container} and its upstream do not have it)"
        else:
            result.error = f"{image}: {error}"
    except (ValueError, KeyError) as error:
        result.error = f"{image}: the cache {cache.container} answered with no valid manifest ({error})"
    return result


def warm(
    warmup_plan: Plan,
    runner: Runner = dockercli.cli,
    log: Log = print,
    sleep: Callable[[float], None] = time.sleep,
    blob_timeout: float = BLOB_SECONDS,
) -> Report:
    """Pull every image of ``warmup_plan`` through its cache: manifests first, then each missing blob once.

    Blobs are deduplicated across all images (a layer shared by two tags of one repository, or listed
    twice, is fetched once) and downloaded ``parallel`` at a time; blobs the cache holds already are not
    requested at all, so a warm cache costs one manifest request per image.
    """
    started = time.monotonic()
    caches = {t.container: Cache(runner, t.container, warmup_plan.data_dir) for t in warmup_plan.targets}
    for image, why in warmup_plan.skipped:
        log(f"skipped {image}: {why}")
    results: list[ImageResult] = []
    broken: dict[str, str] = {}
    for container, cache in caches.items():
        try:
            cache.wait_ready(sleep=sleep)
        except FetchError as error:
            broken[container] = str(error)
    platform = warmup_plan.platform or (engine_platform(runner) if warmup_plan.targets else "")

    jobs = [(t, image) for t in warmup_plan.targets for image in t.images]
    with ThreadPoolExecutor(max_workers=max(1, warmup_plan.parallel)) as pool:
        def resolve(job: tuple[Target, str]) -> ImageResult:
            target, image = job
            if target.container in broken:
                return ImageResult(image, target.container, error=f"{image}: {broken[target.container]}")
            return _resolve(caches[target.container], image, parse_reference(image), platform)

        results = list(pool.map(resolve, jobs))

        # Each (cache, repository, blob) once, across all images.
        wanted: dict[tuple[str, str, str], int] = {}
        for result in results:
            repository = parse_reference(result.image).repository
            for digest, size in result.blobs.items():
                wanted.setdefault((result.container, repository, digest), size)
        missing: set[tuple[str, str, str]] = set()
        for container, cache in caches.items():
            pairs = [(repo, digest) for (c, repo, digest) in wanted if c == container]
            if container not in broken and pairs:
                missing |= {(container, repo, digest) for repo, digest in cache.missing(pairs)}

        # One task per blob: its repositories in turn, each fetched and then waited for until stored.
        # distribution streams a blob that is being stored (for any repository) without storing it
        # again, so a second repository's request must wait for the first one's copy to land.
        groups: dict[tuple[str, str], list[str]] = {}
        for container, repository, digest in sorted(missing, key=lambda k: -wanted[k]):
            groups.setdefault((container, digest), []).append(repository)
        failures: dict[tuple[str, str, str], str] = {}

        def fetch(group: tuple[tuple[str, str], list[str]]) -> None:
            (container, digest), repositories = group
            for repository in repositories:
                error = _fetch_stored(caches[container], repository, digest, wanted[(container, repository, digest)],
                                      sleep, blob_timeout)
                if error:
                    failures[(container, repository, digest)] = error

        list(pool.map(fetch, groups.items()))

    fetched = {key: wanted[key] for key in missing if key not in failures}
    for result in results:
        repository = parse_reference(result.image).repository
        keys = {(result.container, repository, d) for d in result.blobs}
        errors = [failures[k] for k in keys if k in failures]
        if errors and not result.error:
            result.error = f"{result.image}: {len(errors)} blob(s) could not be fetched: {errors[0]}"
        result.fetched = {k[2] for k in keys if k in fetched}
    report = Report(platform=platform, images=results, skipped=list(warmup_plan.skipped), fetched=fetched,
                    seconds=time.monotonic() - started)
    _log_report(report, log)
    return report


#: Attempts per blob: a request that arrives while the same blob is being stored is served without
#: storing it (distribution keeps one download in flight per digest), so it is asked again.
ATTEMPTS = 3
#: How long to wait for a fetched blob to be stored before asking again: a base plus a slow rate.
STORE_GRACE_SECONDS = 5.0
STORE_RATE = 2 * 1024 * 1024


def _fetch_stored(
    cache: Cache, repository: str, digest: str, size: int, sleep: Callable[[float], None], timeout: float,
) -> str | None:
    """Have ``cache`` fetch one blob for ``repository`` and return once it is stored; the error, if any.

    The cache may store a blob after it has served it (2.8 copies it with a second download): a node
    asking in between would make it stream the blob from upstream once more.
    """
    deadline = time.monotonic() + timeout
    for _attempt in range(ATTEMPTS):
        try:
            cache.fetch_blob(repository, digest)
        except FetchError as error:
            return str(error)
        wait_until = min(deadline, time.monotonic() + STORE_GRACE_SECONDS + size / STORE_RATE)
        while True:
            if not cache.missing([(repository, digest)]):
                return None
            if time.monotonic() > wait_until:
                break
            sleep(0.2)
        if time.monotonic() > deadline:
            break
    return f"{cache.container} did not store {digest} for {repository} after {ATTEMPTS} requests"


def _size(n: float) -> str:
    unit = "B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            break
        n /= 1024
    return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"


def _log_report(report: Report, log: Log) -> None:
    for result in report.images:
        if result.error:
            log(f"FAILED {result.error}")
            continue
        fetched = sum(result.blobs[d] for d in result.fetched)
        log(f"{result.image}: {len(result.blobs)} blobs, {len(result.fetched)} fetched ({_size(fetched)}), "
            f"{len(result.blobs) - len(result.fetched)} already cached")
    log(f"warm-up for {report.platform or 'no platform'}: {len(report.images) - len(report.failed)}/"
        f"{len(report.images)} images, {len(report.fetched)} blobs fetched ({_size(report.fetched_bytes)}) "
        f"in {report.seconds:.1f}s")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m components.warmup < plan.json``: warm the caches; exit 1 naming every image that failed."""
    del argv
    warmup_plan = Plan.from_json(sys.stdin.read())
    try:
        report = warm(warmup_plan, runner=dockercli.cli, log=lambda line: print(line, flush=True))
    except dockercli.DockerError as error:
        print(f"warm-up failed: {error}", file=sys.stderr)
        return 1
    if report.failed:
        print(f"warm-up failed for {len(report.failed)} image(s):", file=sys.stderr)
        for result in report.failed:
            print(f"  - {result.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
