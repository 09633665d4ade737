"""Warm-up: pull images through the caches before the nodes ask for them, each blob once (no Pulumi here).

distribution's proxy does not merge concurrent requests: when several nodes pull the same cold blob at
once, each request is streamed from upstream again (and 2.8 fetches a cold blob twice even for one
client; see docs). Pulling every blob once, right after the caches start and while ``kind create``
runs, leaves the nodes nothing but cache hits.

The warm-up runs inside each cache container (``docker exec <cache> wget http://127.0.0.1:5000/...``)
through the Docker API, so it works wherever the program does, Docker Desktop included. The program runs
``python -m krc.commands.warmup`` with a JSON :class:`Plan` on stdin; :func:`warm` is the same thing with an
injectable :data:`dockercli.Runner` for tests.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from krc.commands import dockercli
from krc.commands.cacheclient import (
    BLOB_SECONDS,
    Cache,
    FetchError,
    engine_platform,
    is_index,
    manifest_blobs,
    select_manifest,
)
from krc.commands.dockercli import Runner
from krc.config.imageref import ImageRef, parse_reference
from krc.render.warmup import Plan, Target

Log = Callable[[str], None]



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
        if is_index(document):
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
    """``python -m krc.commands.warmup < plan.json``: warm the caches; exit 1 naming every image that failed."""
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
