"""``cachectl registry``: the local registries on the Docker engine, their size and repositories (no Pulumi here).

Found by the labels the program puts on each registry container and volume (``kind-registry-cache.role``), through
the Docker CLI like the caches (:mod:`krc.commands.caches`), so it works with the cluster down and after ``pulumi
destroy`` (the volume alone). A running registry lists its repositories through its own API (``/v2/_catalog``,
read inside the container with busybox ``wget``: the host may not reach it on Docker Desktop); a stopped one is
measured read-only by a throwaway container of the registry image, which lists the repositories stored in the volume.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from krc import versions
from krc.commands import dockercli
from krc.commands.dockercli import Runner
from krc.render import localregistry, mirrors, registry

_FIELD = "\x1f"
_SECTION = "--- kind-registry-cache-registry:"
#: distribution answers at most this many repositories per /v2/_catalog page (``catalog.maxentries``' default).
CATALOG_PAGE = 1000


@dataclass
class RegistryRef:
    """One stack's local registry: its container (if any) and its volume (if any), which share one name."""

    owner: str
    name: str
    container: str | None = None
    state: str | None = None
    image: str | None = None
    #: The published host port (its label), as text.
    port: str | None = None
    volume: str | None = None


@dataclass
class RegistryStats:
    """What ``cachectl registry`` prints for one registry."""

    owner: str
    name: str
    container: str | None
    volume: str | None
    state: str
    host_port: int | None = None
    disk_bytes: int | None = None
    #: Repository names (``acme/api``); ``None`` when they could not be read.
    repositories: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def as_output(self) -> dict[str, Any]:
        return {
            "container": self.container, "volume": self.volume, "state": self.state,
            "hostPort": self.host_port, "pushUrl": localregistry.push_host(self.host_port) if self.host_port else None,
            "diskBytes": self.disk_bytes, "repositories": self.repositories, "notes": self.notes,
        }


def find(runner: Runner, owner: str | None = None) -> list[RegistryRef]:
    """Every local registry container and volume on the engine (of ``owner`` only, if given)."""
    filters = ["--filter", f"label={localregistry.LABEL_ROLE}={localregistry.ROLE}"]
    if owner:
        filters += ["--filter", f"label={registry.LABEL_STACK}={owner}"]
    stack_label = f'{{{{.Label "{registry.LABEL_STACK}"}}}}'
    port_label = f'{{{{.Label "{localregistry.LABEL_PORT}"}}}}'
    containers = dockercli.run_ok(runner, [
        "ps", "-a", "--no-trunc", *filters,
        "--format", _FIELD.join(["{{.Names}}", "{{.State}}", "{{.Image}}", stack_label, port_label]),
    ])
    volumes = dockercli.run_ok(runner, ["volume", "ls", *filters, "--format", _FIELD.join(["{{.Name}}", stack_label])])
    refs: dict[tuple[str, str], RegistryRef] = {}
    for line in containers.text.splitlines():
        name, state, image, stack, port = (line.split(_FIELD) + [""] * 5)[:5]
        if name and stack:
            refs[(stack, name)] = RegistryRef(stack, name, container=name, state=state, image=image, port=port or None)
    for line in volumes.text.splitlines():
        name, stack = (line.split(_FIELD) + [""] * 2)[:2]
        if name and stack:
            refs.setdefault((stack, name), RegistryRef(stack, name)).volume = name
    return sorted(refs.values(), key=lambda r: (r.owner, r.name))


def _probe_script(running: bool) -> str:
    data = registry.DATA_DIR
    lines = [f'echo "{_SECTION}disk"; du -sk {data} 2>/dev/null | {{ read -r kib _; echo "${{kib:-0}}"; }}']
    if running:
        url = f"http://127.0.0.1:{mirrors.CACHE_PORT}/v2/_catalog?n={CATALOG_PAGE}"
        lines.append(f'echo "{_SECTION}catalog"; wget -q -O - "{url}"')
    else:
        # Without the registry: each repository is a folder holding _manifests (distribution's storage layout).
        root = f"{data}/docker/registry/v2/repositories"
        lines.append(
            f'echo "{_SECTION}stored"; cd {root} 2>/dev/null && find . -type d -name _manifests | '
            "sed -e 's|^\\./||' -e 's|/_manifests$||' | sort"
        )
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


def collect(runner: Runner, ref: RegistryRef, image: str = versions.REGISTRY_IMAGE, running_only: bool = False) -> RegistryStats:
    """Size and repositories of one registry: through its running container, else from its volume read-only
    (unless ``running_only``: then nothing is started)."""
    stats = RegistryStats(ref.owner, ref.name, ref.container, ref.volume, ref.state or "no container",
                          host_port=int(ref.port) if ref.port and ref.port.isascii() and ref.port.isdigit() else None)
    if ref.state == "running" and ref.container:
        result = runner(dockercli.exec_args(ref.container, ["sh", "-c", _probe_script(True)]))
        sections = _sections(result.text)
        _fill_disk(stats, sections)
        try:
            stats.repositories = sorted(json.loads(sections.get("catalog") or "null")["repositories"] or [])
        except (json.JSONDecodeError, TypeError, KeyError):
            stats.notes.append(f"its /v2/_catalog could not be read ({result.stderr.strip() or 'no answer'})")
        else:
            if len(stats.repositories) >= CATALOG_PAGE:
                stats.notes.append(f"only the first {CATALOG_PAGE} repositories are listed")
        return stats
    if ref.volume is None:
        stats.notes.append("no volume")
        return stats
    if running_only:
        stats.notes.append("not running: size and repositories not read")
        return stats
    result = runner([
        "run", "--rm", "--pull", "never", "--network", "none", "--entrypoint", "/bin/sh",
        "-v", f"{ref.volume}:{registry.DATA_DIR}:ro", ref.image or image, "-c", _probe_script(False),
    ])
    if not result.ok:
        stats.notes.append(f"volume not read: {result.stderr.strip()}")
        return stats
    sections = _sections(result.text)
    _fill_disk(stats, sections)
    stats.repositories = [line for line in sections.get("stored", "").splitlines() if line]
    return stats


def _fill_disk(stats: RegistryStats, sections: dict[str, str]) -> None:
    try:
        stats.disk_bytes = int(sections.get("disk", "").strip()) * 1024
    except ValueError:
        stats.notes.append("disk use could not be read")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def format_table(stats: Sequence[RegistryStats]) -> str:
    """One line per registry, then its repositories."""
    if not stats:
        return f"no local registry found (no container or volume labelled {localregistry.LABEL_ROLE}={localregistry.ROLE})\n"
    header = ("stack", "registry", "state", "push to", "disk", "repositories")
    rows = [header]
    for s in stats:
        rows.append((s.owner, s.name, s.state, localregistry.push_host(s.host_port) if s.host_port else "-",
                     _size(s.disk_bytes), "-" if s.repositories is None else str(len(s.repositories))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    out = ["  ".join(c.rjust(w) if i >= 4 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
           for row in rows]
    for s in stats:
        if s.repositories:
            out.append(f"{s.name}: {', '.join(s.repositories)}")
        out.extend(f"{s.name}: {note}" for note in s.notes)
    return "\n".join(out) + "\n"


def to_json(stats: Sequence[RegistryStats]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{owner: {registry name: {container, volume, state, hostPort, pushUrl, diskBytes, repositories, notes}}}``."""
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for s in stats:
        result.setdefault(s.owner, {})[s.name] = s.as_output()
    return result
