"""``cachectl stats``: one cache's numbers read inside its container, as a table or JSON (no Pulumi here).

The probe is a few shell lines run in the cache container (``du``, ``find``, the registry's own debug port
through busybox ``wget``), since the host may not reach the container (Docker Desktop); the table is plain
formatting. Neither is something a library does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from krc import versions
from krc.commands import dockercli
from krc.commands.cachemetrics import counts
from krc.commands.caches import CacheRef
from krc.commands.dockercli import Runner
from krc.commands.hubquota import Quota
from krc.render import registry


@dataclass
class UpstreamStats:
    """One cache's numbers, as ``stats`` prints them."""

    owner: str
    host: str
    container: str | None
    volume: str | None
    state: str
    #: whether the cache logs in to its upstream (REGISTRY_PROXY_USERNAME set); None when not running
    login: bool | None = None
    hits: int | None = None
    misses: int | None = None
    bytes_from_cache: int | None = None
    bytes_from_upstream: int | None = None
    disk_bytes: int | None = None
    stored_blobs: int | None = None
    source: str | None = None
    notes: list[str] = field(default_factory=list)
    #: for docker.io: what is left of Docker Hub's allowance (krc.commands.hubquota.Quota.as_output)
    docker_hub: dict[str, Any] | None = None

    def as_output(self) -> dict[str, Any]:
        """camelCase, as in the stack output."""
        data = asdict(self)
        return {re.sub(r"_(\w)", lambda m: m[1].upper(), k): v for k, v in data.items()
                if k != "owner" and not (k == "docker_hub" and v is None)}


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
            # Whether it logs in, never the login itself.
            f'echo "{_SECTION}login"; [ -n "${{REGISTRY_PROXY_USERNAME:-}}" ] && echo yes || echo no',
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
        login = sections.get("login", "").strip()
        stats.login = {"yes": True, "no": False}.get(login)
        try:
            debug_vars = json.loads(sections.get("vars") or "null")
        except json.JSONDecodeError:
            debug_vars = None
        found = counts(sections.get("metrics", ""), debug_vars, "proxy")
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
    header = ("upstream", "cache", "state", "login", "hits", "misses", "from cache", "from upstream", "disk")
    out: list[str] = []
    for owner in sorted({s.owner for s in stats}):
        rows = [header]
        for s in (s for s in stats if s.owner == owner):
            login = {True: "yes", False: "no", None: "-"}[s.login]
            rows.append((s.host, s.container or s.volume or "-", s.state, login, _number(s.hits), _number(s.misses),
                         _size(s.bytes_from_cache), _size(s.bytes_from_upstream), _size(s.disk_bytes)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        out.append(f"stack {owner}")
        for row in rows:
            cells = [c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
            out.append("  " + "  ".join(cells).rstrip())
        for s in (s for s in stats if s.owner == owner):
            for note in s.notes:
                out.append(f"  {s.host}: {note}")
            if s.docker_hub is not None:
                out.append(f"  {s.host}: Docker Hub allowance: {_hub_line(s)}")
    sources = sorted({s.source for s in stats if s.source})
    out.append("hits and misses count requests since each cache container started" +
               (f" (from {'; '.join(sources)})" if sources else ""))
    return "\n".join(out) + "\n"


def _hub_line(s: UpstreamStats) -> str:
    quota = Quota.from_output(s.docker_hub or {})
    line = quota.describe()
    if s.login and not quota.login:
        line += "; this cache logs in, so its pulls count against the account's allowance instead"
    return line


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
