"""Prerequisite checks run before anything is created: kind, Docker, and the docker network (no Pulumi here).

The program runs :data:`SCRIPT` through pulumi-command's ``local.run`` invoke (it only reads:
``kind version``, ``docker version``, ``docker network inspect``), then :func:`check` turns the
report into a decision or a :class:`PreflightError` that says what to install or run.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import versions
from .settings import NAMESPACE, NetworkSettings

#: Label on the docker network this program creates, valued ``<project>/<stack>``.
LABEL_OWNER = "kind-registry-cache.owner"

SCRIPT = r"""
if command -v kind >/dev/null 2>&1; then echo "kind=$(kind version 2>&1 | head -n 1)"; else echo "kind=missing"; fi
if ! command -v docker >/dev/null 2>&1; then echo "docker=missing"; exit 0; fi
if out=$(docker version --format '{{.Server.Version}}' 2>&1); then
  echo "docker=$out"
else
  echo "docker=unreachable"
  echo "docker_error=$(printf '%s' "$out" | tr '\n' ' ')"
  exit 0
fi
echo "context_host=$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null)"
echo "host_os=$(uname -s 2>/dev/null)"
echo "engine_os=$(docker info --format '{{.OperatingSystem}}' 2>/dev/null | tr '\n' ' ')"
docker network ls -q | while read -r id; do
  echo "network=$(docker network inspect --format '{{json .}}' "$id" 2>/dev/null)"
done
exit 0
"""

_KIND_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)")

INSTALL_KIND = "install kind v0.27 or newer: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
INSTALL_DOCKER = "install Docker (Docker Engine, Docker Desktop or Colima): https://docs.docker.com/get-docker/"


class PreflightError(RuntimeError):
    """A prerequisite is missing or the machine's state blocks creation; the message says the fix."""


@dataclass(frozen=True)
class DockerNetwork:
    """The parts of ``docker network inspect`` the checks use."""

    name: str
    subnets: tuple[ipaddress.IPv4Network, ...]
    labels: dict[str, str] = field(default_factory=dict)
    containers: int = 0


@dataclass(frozen=True)
class Report:
    """What :data:`SCRIPT` printed, parsed."""

    kind: str
    docker: str
    docker_error: str = ""
    context_host: str = ""
    networks: tuple[DockerNetwork, ...] = ()
    #: ``uname -s`` of this machine (``Linux``, ``Darwin``, ``MINGW64_NT-...``).
    host_os: str = ""
    #: ``docker info``'s OperatingSystem: ``Docker Desktop`` for Docker Desktop, the VM's distribution for Colima.
    engine_os: str = ""


@dataclass(frozen=True)
class Decision:
    """How to proceed: create the network, or use (adopt) the one that exists."""

    adopt_network: bool
    docker_host: str | None
    notes: tuple[str, ...] = ()
    #: Whether this machine can reach container addresses on the kind network (MetalLB addresses included).
    kind_network_routable: bool = False
    #: The engine as the checks saw it, for messages (``Docker Engine on Linux at unix:///var/run/docker.sock``).
    engine: str = ""


def parse(stdout: str) -> Report:
    """Parse the ``key=value`` lines :data:`SCRIPT` prints."""
    values: dict[str, str] = {}
    networks: list[DockerNetwork] = []
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "network":
            network = _parse_network(value)
            if network is not None:
                networks.append(network)
        else:
            values[key] = value.strip()
    return Report(
        kind=values.get("kind", "missing"),
        docker=values.get("docker", "missing"),
        docker_error=values.get("docker_error", ""),
        context_host=values.get("context_host", ""),
        networks=tuple(networks),
        host_os=values.get("host_os", ""),
        engine_os=values.get("engine_os", ""),
    )


def _parse_network(text: str) -> DockerNetwork | None:
    try:
        data: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError:
        return None
    subnets = []
    for config in (data.get("IPAM") or {}).get("Config") or []:
        try:
            subnets.append(ipaddress.ip_network(config.get("Subnet", ""), strict=False))
        except ValueError:
            continue
    return DockerNetwork(
        name=str(data.get("Name", "")),
        subnets=tuple(s for s in subnets if isinstance(s, ipaddress.IPv4Network)),
        labels=dict(data.get("Labels") or {}),
        containers=len(data.get("Containers") or {}),
    )


def kind_version(text: str) -> tuple[int, int, int] | None:
    """``kind v0.32.0 go1.24.2 linux/amd64`` -> ``(0, 32, 0)``."""
    match = _KIND_VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def check(
    report: Report,
    network: NetworkSettings,
    owner: str,
    configured_host: str | None,
    env_host: str | None,
) -> Decision:
    """Decide how to proceed, or raise :class:`PreflightError` with the fix.

    :param owner: ``<project>/<stack>``, the owner label of a network this stack created.
    :param configured_host: ``docker.host`` from stack config.
    :param env_host: ``DOCKER_HOST`` from the environment.
    """
    problems: list[str] = []
    minimum = ".".join(map(str, versions.MIN_KIND_VERSION))
    if report.kind == "missing":
        problems.append(f"`kind` is not on PATH: {INSTALL_KIND}")
    else:
        found = kind_version(report.kind)
        if found is None:
            problems.append(f"cannot read the kind version from {report.kind!r}: {INSTALL_KIND}")
        elif found < versions.MIN_KIND_VERSION:
            problems.append(
                f"kind v{'.'.join(map(str, found))} is older than v{minimum} (its nodes run containerd 1.x, "
                f"which this program's mirror config does not target): {INSTALL_KIND}"
            )
    if report.docker == "missing":
        problems.append(f"the `docker` CLI is not on PATH: {INSTALL_DOCKER}")
    elif report.docker == "unreachable":
        where = configured_host or env_host or report.context_host or "the current docker context"
        problems.append(
            f"the Docker engine at {where} does not answer ({report.docker_error.strip() or 'no detail'}): "
            f"start Docker (Docker Desktop, `colima start`, or `sudo systemctl start docker`), or point "
            f"{NAMESPACE}:docker.host or DOCKER_HOST at a running engine"
        )
    if problems:
        raise PreflightError("prerequisites missing:\n" + "\n".join(f"  - {p}" for p in problems))

    adopt, notes = _network_decision(report, network, owner)
    host = configured_host or (None if env_host else (report.context_host or None))
    routable, engine = kind_network_routable(report, configured_host or env_host or report.context_host)
    return Decision(
        adopt_network=adopt, docker_host=host, notes=notes, kind_network_routable=routable, engine=engine
    )


#: Socket folders of engines that run in a VM even on Linux (Colima, Lima, Rancher Desktop, Docker Desktop).
_VM_SOCKET_MARKERS = ("/.colima/", "/.lima/", "/.rd/", "/.docker/desktop/")


def kind_network_routable(report: Report, docker_host: str) -> tuple[bool, str]:
    """Whether this machine reaches the kind network's container addresses directly, and the engine described.

    Only a Docker Engine running on this Linux machine puts its bridge networks on this machine's routing
    table. Docker Desktop (macOS, Windows, Linux), Colima and Lima run the engine in a VM, and a ``tcp://`` or
    ``ssh://`` engine runs elsewhere: their container addresses are not reachable from here, only published ports.

    :param docker_host: the engine's address as used (``unix://...``; empty for the default socket).
    """
    where = docker_host or "unix:///var/run/docker.sock"
    engine = f"{report.engine_os.strip() or 'Docker'} at {where}, this machine {report.host_os or 'unknown'}"
    if report.host_os != "Linux":
        return False, engine
    if "docker desktop" in report.engine_os.lower():
        return False, engine
    if not where.startswith("unix://") or any(marker in where for marker in _VM_SOCKET_MARKERS):
        return False, engine
    return True, engine


def _network_decision(report: Report, network: NetworkSettings, owner: str) -> tuple[bool, tuple[str, ...]]:
    existing = next((n for n in report.networks if n.name == network.name), None)
    for other in report.networks:
        if other.name == network.name:
            continue
        clash = next((s for s in other.subnets if s.overlaps(network.subnet)), None)
        if clash is not None:
            raise PreflightError(
                f"{NAMESPACE}:network.subnet {network.subnet} overlaps docker network {other.name!r} ({clash}). "
                f"Pick a free range, e.g. `pulumi config set --path {NAMESPACE}:network.subnet "
                f"{_free_suggestion(report, network)}`"
            )
    if existing is None:
        return False, ()
    if existing.labels.get(LABEL_OWNER) == owner:
        return False, ()
    if network.subnet in existing.subnets:
        return True, (
            f"using the existing docker network {network.name!r} ({network.subnet}) as it is; "
            f"`pulumi destroy` will leave it in place",
        )
    found = ", ".join(map(str, existing.subnets)) or "no IPv4 subnet"
    raise PreflightError(
        f"docker network {network.name!r} already exists with {found}, not {NAMESPACE}:network.subnet "
        f"{network.subnet}, and this stack did not create it (kind creates it on first use). Either use it as it is: "
        f"`pulumi config set --path {NAMESPACE}:network.subnet {existing.subnets[0] if existing.subnets else '<cidr>'}`; "
        f"or remove it: `docker network rm {network.name}` (it has {existing.containers} container(s) attached; "
        f"delete their kind clusters first with `kind delete cluster --name <name>`); or use another network: "
        f"`pulumi config set --path {NAMESPACE}:network.name kind-{owner.split('/')[-1]}`"
    )


def _free_suggestion(report: Report, network: NetworkSettings) -> str:
    """A /16 (or the configured size) in 172.16.0.0/12 that no docker network uses."""
    used = [s for n in report.networks for s in n.subnets]
    size = max(network.subnet.prefixlen, 16)
    for candidate in ipaddress.IPv4Network("172.16.0.0/12").subnets(new_prefix=size):
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    return "<a free private /16>"
