"""``python -m krc.commands.cachectl``: what the caches hold and serve, and purging them (no Pulumi here).

``stats`` prints per upstream the hits, misses, bytes served from the cache and fetched from upstream,
and disk used; ``purge`` empties or removes caches, per upstream or all, without asking. Caches are
found by the labels every cache container and volume carries, through the Docker CLI, so both work
with the cluster down, after ``pulumi destroy`` (volumes only), and on Docker Desktop.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from krc.config import NAMESPACE
from krc import versions
from krc.commands import dockercli
from krc.commands.dockercli import DockerError, Runner
from krc.render import registry

Log = Callable[[str], None]


# --- finding the caches -------------------------------------------------------------------------


@dataclass
class CacheRef:
    """One stack's cache for one upstream: its container (if any) and its volume (if any)."""

    owner: str
    host: str
    container: str | None = None
    #: Docker's container state: ``running``, ``exited``, ``created``, ...
    state: str | None = None
    image: str | None = None
    volume: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"


def owner_of(stack: str) -> str:
    """The label value of a stack's caches: ``dev`` -> ``kind-registry-cache/dev``."""
    return stack if "/" in stack else f"{NAMESPACE}/{stack}"


_FIELD = "\x1f"


def find(runner: Runner, owner: str | None = None) -> list[CacheRef]:
    """Every cache container and volume on the engine (of ``owner`` only, if given), joined per upstream."""
    label = registry.LABEL_STACK + (f"={owner}" if owner else "")
    stack_label = f'{{{{.Label "{registry.LABEL_STACK}"}}}}'
    upstream_label = f'{{{{.Label "{registry.LABEL_UPSTREAM}"}}}}'
    containers = dockercli.run_ok(runner, [
        "ps", "-a", "--no-trunc", "--filter", f"label={label}",
        "--format", _FIELD.join(["{{.Names}}", "{{.State}}", "{{.Image}}", stack_label, upstream_label]),
    ])
    volumes = dockercli.run_ok(runner, [
        "volume", "ls", "--filter", f"label={label}",
        "--format", _FIELD.join(["{{.Name}}", stack_label, upstream_label]),
    ])
    refs: dict[tuple[str, str], CacheRef] = {}
    for line in containers.text.splitlines():
        name, state, image, stack, host = (line.split(_FIELD) + [""] * 5)[:5]
        if stack and host:
            refs[(stack, host)] = CacheRef(stack, host, container=name, state=state, image=image)
    for line in volumes.text.splitlines():
        name, stack, host = (line.split(_FIELD) + [""] * 3)[:3]
        if stack and host:
            refs.setdefault((stack, host), CacheRef(stack, host)).volume = name
    return sorted(refs.values(), key=lambda r: (r.owner, r.host))


# --- stats ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line) if line and not line.startswith("#") else None
        if match:
            try:
                value = float(match["value"])
            except ValueError:
                continue
            labels = {m["key"]: m["value"] for m in _LABEL.finditer(match["labels"] or "")}
            samples.append(Sample(match["name"], labels, value))
    return samples


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


@dataclass
class UpstreamStats:
    """One cache's numbers, as ``stats`` prints them."""

    owner: str
    host: str
    container: str | None
    volume: str | None
    state: str
    mode: str | None = None
    hits: int | None = None
    misses: int | None = None
    bytes_from_cache: int | None = None
    bytes_from_upstream: int | None = None
    disk_bytes: int | None = None
    stored_blobs: int | None = None
    source: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_output(self) -> dict[str, Any]:
        """camelCase, as in the stack output."""
        data = asdict(self)
        return {re.sub(r"_(\w)", lambda m: m[1].upper(), k): v for k, v in data.items() if k != "owner"}


_SECTION = "--- kind-registry-cache:"


def _probe_script(with_metrics: bool) -> str:
    data = registry.DATA_DIR
    lines = [
        f'echo "{_SECTION}disk"; du -sk {data} 2>/dev/null | {{ read -r kib _; echo "${{kib:-0}}"; }}',
        f'echo "{_SECTION}blobs"; find {data}/docker/registry/v2/blobs -name data -type f 2>/dev/null | wc -l',
    ]
    if with_metrics:
        debug = f"http://127.0.0.1:{registry.DEBUG_PORT}"
        lines = [
            f'echo "{_SECTION}mode"; cat {registry.MODE_FILE} 2>/dev/null',
            f'echo "{_SECTION}metrics"; wget -q -O - {debug}/metrics',
            f'echo "{_SECTION}vars"; wget -q -O - {debug}/debug/vars',
            *lines,
        ]
    return "\n".join(lines) + "\n"


def _sections(text: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(_SECTION):
            current = line[len(_SECTION):].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def _fill_disk(stats: UpstreamStats, sections: dict[str, str]) -> None:
    try:
        stats.disk_bytes = int(sections.get("disk", "").strip()) * 1024
        stats.stored_blobs = int(sections.get("blobs", "").strip())
    except ValueError:
        stats.notes.append("disk use could not be read")


def collect(
    runner: Runner, ref: CacheRef, image: str = versions.REGISTRY_IMAGE, running_only: bool = False
) -> UpstreamStats:
    """The numbers of one cache: counters from its running registry, disk from its volume.

    Without a running container the volume is measured by a throwaway container of the registry image
    (``--pull never``, no network) that mounts it read-only, unless ``running_only``: then nothing is
    started (the stack output reads stats during `pulumi preview`, which must change nothing).
    """
    stats = UpstreamStats(ref.owner, ref.host, ref.container, ref.volume, ref.state or "no container")
    if ref.running:
        assert ref.container is not None
        result = runner(dockercli.exec_args(ref.container, ["sh", "-c", _probe_script(True)]))
        sections = _sections(result.text)
        stats.mode = sections.get("mode", "").strip() or None
        try:
            debug_vars = json.loads(sections.get("vars") or "null")
        except json.JSONDecodeError:
            debug_vars = None
        found = counts(sections.get("metrics", ""), debug_vars, stats.mode or "proxy")
        if found is None:
            stats.notes.append("the registry serves no metrics (REGISTRY_HTTP_DEBUG_* unset?)")
        else:
            stats.hits, stats.misses = found.hits, found.misses
            stats.bytes_from_cache, stats.bytes_from_upstream = found.bytes_from_cache, found.bytes_from_upstream
            stats.source = found.source
        _fill_disk(stats, sections)
        return stats
    stats.notes.append("counters need a running cache container")
    if ref.volume is None:
        return stats
    if running_only:
        stats.notes.append("disk use not read: the cache is not running")
        return stats
    result = runner([
        "run", "--rm", "--pull", "never", "--network", "none", "--entrypoint", "/bin/sh",
        "-v", f"{ref.volume}:{registry.DATA_DIR}:ro", ref.image or image, "-c", _probe_script(False),
    ])
    if result.ok:
        _fill_disk(stats, _sections(result.text))
    else:
        stats.notes.append(f"disk use not read: {result.stderr.strip()}")
    return stats


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def _number(n: int | None) -> str:
    return "-" if n is None else str(n)


def format_table(stats: Sequence[UpstreamStats]) -> str:
    """The human-readable report: one block per stack, one line per upstream."""
    if not stats:
        return "no caches found (no container or volume labelled kind-registry-cache.stack)\n"
    header = ("upstream", "cache", "state", "hits", "misses", "from cache", "from upstream", "disk")
    out: list[str] = []
    for owner in sorted({s.owner for s in stats}):
        rows = [header]
        for s in (s for s in stats if s.owner == owner):
            state = s.state + (f" ({s.mode})" if s.mode and s.mode != "proxy" else "")
            rows.append((s.host, s.container or s.volume or "-", state, _number(s.hits), _number(s.misses),
                         _size(s.bytes_from_cache), _size(s.bytes_from_upstream), _size(s.disk_bytes)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        out.append(f"stack {owner}")
        for row in rows:
            cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
            out.append("  " + "  ".join(cells).rstrip())
        for s in (s for s in stats if s.owner == owner):
            for note in s.notes:
                out.append(f"  {s.host}: {note}")
    sources = sorted({s.source for s in stats if s.source})
    out.append("hits and misses count requests since each cache container started" +
               (f" (from {'; '.join(sources)})" if sources else ""))
    return "\n".join(out) + "\n"


def to_json(stats: Sequence[UpstreamStats]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{owner: {upstream host: {hits, misses, bytesFromCache, bytesFromUpstream, diskBytes, ...}}}``."""
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for s in stats:
        result.setdefault(s.owner, {})[s.host] = s.as_output()
    return result


def parse_output(text: str, owner: str) -> dict[str, Any]:
    """One stack's entry of ``stats --json`` output; ``{}`` when the text is not such output."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {}
    return data.get(owner, {}) if isinstance(data, dict) else {}


# --- purge ---------------------------------------------------------------------------------------

#: Empties the registry's data folder (the volume's mount point stays).
_EMPTY = f'cd {registry.DATA_DIR} && rm -rf -- ./* ./.[!.]* ./..?*'


def purge(runner: Runner, refs: Sequence[CacheRef], image: str = versions.REGISTRY_IMAGE, dry_run: bool = False,
          log: Log = print) -> None:
    """Empty or remove each cache in ``refs``; nothing else is touched.

    A running cache is emptied through its own container and restarted (the registry keeps blob
    descriptors in memory); a stopped one is emptied by a throwaway container, so the container and
    the volume Pulumi created stay valid. A volume without a container (after ``pulumi destroy``) is removed.
    """
    for ref in refs:
        if ref.container and ref.volume:
            if ref.running:
                steps = [dockercli.exec_args(ref.container, ["sh", "-c", _EMPTY]), ["restart", ref.container]]
                what = f"emptied {ref.volume} through {ref.container} and restarted it"
            else:
                steps = [["run", "--rm", "--pull", "never", "--network", "none", "--entrypoint", "/bin/sh",
                          "-v", f"{ref.volume}:{registry.DATA_DIR}", ref.image or image, "-c", _EMPTY]]
                what = f"emptied {ref.volume} (its container {ref.container} is {ref.state})"
        elif ref.volume:
            steps = [["volume", "rm", ref.volume]]
            what = f"removed volume {ref.volume}"
        else:
            log(f"{ref.owner} {ref.host}: container {ref.container} has no cache volume; nothing to purge")
            continue
        if dry_run:
            log(f"would run: {' ; '.join('docker ' + ' '.join(step[:4]) + ' ...' for step in steps)}")
            continue
        for step in steps:
            dockercli.run_ok(runner, step)
        log(f"{ref.owner} {ref.host}: {what}")


# --- command line --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m krc.commands.cachectl", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    stats = commands.add_parser("stats", help="hits, misses, bytes and disk per upstream")
    stats.add_argument("--stack", help="only this stack's caches (default: every stack's)")
    stats.add_argument("--json", action="store_true", help="machine-readable: {stack: {upstream: {...}}}")
    stats.add_argument("--running-only", action="store_true",
                       help="read running caches only; start no throwaway container for stopped ones")
    purge_cmd = commands.add_parser("purge", help="empty or remove caches, without asking")
    purge_cmd.add_argument("--stack", help="whose caches (default: the only stack with caches on this engine)")
    which = purge_cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--upstream", action="append", metavar="HOST", help="an upstream host such as docker.io (repeatable)")
    which.add_argument("--all", action="store_true", help="every upstream of the stack")
    purge_cmd.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
    for sub in (stats, purge_cmd):
        sub.add_argument("--image", default=versions.REGISTRY_IMAGE,
                         help="registry image for reading or emptying a volume without a container (default %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None, runner: Runner | None = None) -> int:
    args = _parser().parse_args(argv)
    docker = runner or dockercli.cli
    try:
        if args.command == "stats":
            refs = find(docker, owner_of(args.stack) if args.stack else None)
            stats = [collect(docker, ref, args.image, running_only=args.running_only) for ref in refs]
            print(json.dumps(to_json(stats), indent=2, sort_keys=True) if args.json else format_table(stats), end="\n" if args.json else "")
            return 0
        return _purge(docker, args)
    except DockerError as error:
        print(f"cachectl: {error}", file=sys.stderr)
        return 1


def _purge(docker: Runner, args: argparse.Namespace) -> int:
    refs = find(docker, owner_of(args.stack) if args.stack else None)
    owners = sorted({r.owner for r in refs})
    if not refs:
        where = f"stack {owner_of(args.stack)}" if args.stack else "any stack"
        print(f"cachectl: no caches of {where} on this Docker engine; nothing to purge", file=sys.stderr)
        return 0
    if len(owners) > 1:
        print(f"cachectl: caches of several stacks are here ({', '.join(owners)}); say which with --stack",
              file=sys.stderr)
        return 2
    if not args.all:
        wanted = {h.strip().lower() for h in args.upstream}
        unknown = wanted - {r.host for r in refs}
        if unknown:
            print(f"cachectl: {owners[0]} has no cache for {', '.join(sorted(unknown))}; "
                  f"it has {', '.join(r.host for r in refs)}", file=sys.stderr)
            return 2
        refs = [r for r in refs if r.host in wanted]
    purge(docker, refs, args.image, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
