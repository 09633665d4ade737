"""Parsing what the preflight :data:`~krc.preflight.script.SCRIPT` printed into a :class:`Report` (no Pulumi here).

Hand-written on purpose: the script prints its own ``key=value`` lines (one JSON document per docker network),
a format of this project that no library reads.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

_KIND_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class DockerNetwork:
    """The parts of ``docker network inspect`` the checks use."""

    name: str
    subnets: tuple[ipaddress.IPv4Network, ...]
    labels: dict[str, str] = field(default_factory=dict)
    containers: int = 0
    #: The driver options (``com.docker.network.driver.mtu`` ...).
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FoundRegistry:
    """A local registry container on the engine (any stack's, any state), from its labels."""

    name: str
    state: str
    #: ``<project>/<stack>`` of the stack that created it.
    owner: str
    #: The host port it is published on (its label); ``None`` when the label is missing or not a number.
    port: int | None
    generation: str = ""
    #: The docker networks it is attached to.
    networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Published:
    """A running container publishing host ports: its name, owner and role labels, and Docker's ``Ports`` text."""

    name: str
    owner: str
    role: str
    ports: str


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
    #: Absolute path of the ``kind`` on PATH, when there is one.
    kind_path: str = ""
    #: This stack's cache containers (all states): name -> generation label ("" when it has none).
    caches: dict[str, str] = field(default_factory=dict)
    #: The cluster's node containers (all states): container id -> name.
    nodes: dict[str, str] = field(default_factory=dict)
    #: First line of the cluster record: ``<generation> <control-plane container id>``; "" when absent.
    cluster_record: str = ""
    #: Whether the certs folder exists: "present", "missing", or "" when not asked.
    certs: str = ""
    #: Every local registry container on the engine, of any stack.
    local_registries: tuple[FoundRegistry, ...] = ()
    #: Running containers that publish a port (asked only for this stack's own local registry).
    published: tuple[Published, ...] = ()
    #: The container named as this stack's local registry: ``(status, owner label, role label)``; ``None``: none.
    registry_container: tuple[str, str, str] | None = None
    #: The volume of that name: ``(owner label, role label)``; ``None``: none.
    registry_volume: tuple[str, str] | None = None
    #: The port probe on this machine: ``free``, ``listening <addresses>``, or "" when it did not run.
    port_probe: str = ""
    #: The process listening on that port, as ``ss``/``lsof`` name it (``name (pid N)``); "" when unknown.
    port_process: str = ""


def parse(stdout: str) -> Report:
    """Parse the ``key=value`` lines :data:`SCRIPT` prints."""
    values: dict[str, str] = {}
    networks: list[DockerNetwork] = []
    caches: dict[str, str] = {}
    nodes: dict[str, str] = {}
    registries: list[FoundRegistry] = []
    published: list[Published] = []
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "network":
            network = _parse_network(value)
            if network is not None:
                networks.append(network)
        elif key == "cache":
            name, _, generation = value.strip().partition(" ")
            if name:
                caches[name] = generation.strip()
        elif key == "node":
            node_id, _, name = value.strip().partition(" ")
            if node_id and name:
                nodes[node_id] = name.strip()
        elif key == "local_registry":
            found = _parse_registry(value)
            if found is not None:
                registries.append(found)
        elif key == "published":
            name, owner, role, ports = (value.strip().split("|", 3) + [""] * 4)[:4]
            if name:
                published.append(Published(name, owner, role, ports))
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
        kind_path=values.get("kind_path", ""),
        caches=caches,
        nodes=nodes,
        cluster_record=values.get("cluster_record", ""),
        certs=values.get("certs", ""),
        local_registries=tuple(registries),
        published=tuple(published),
        registry_container=_fields(values, "registry_container", 3),  # type: ignore[arg-type]
        registry_volume=_fields(values, "registry_volume", 2),  # type: ignore[arg-type]
        port_probe=values.get("port_probe", ""),
        port_process=values.get("port_process", ""),
    )


def _fields(values: dict[str, str], key: str, count: int) -> tuple[str, ...] | None:
    """``a|b|c`` as a tuple of ``count`` strings; ``None`` when the line was not printed."""
    if key not in values:
        return None
    return tuple((values[key].split("|") + [""] * count)[:count])


def _parse_registry(text: str) -> FoundRegistry | None:
    name, state, owner, port, generation, networks = (text.strip().split("|") + [""] * 6)[:6]
    if not name:
        return None
    return FoundRegistry(
        name=name,
        state=state,
        owner=owner,
        port=int(port) if re.fullmatch(r"[0-9]{1,5}", port) else None,
        generation=generation,
        networks=tuple(n for n in networks.split(",") if n),
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
        options={str(k): str(v) for k, v in (data.get("Options") or {}).items()},
    )


def kind_version(text: str) -> tuple[int, int, int] | None:
    """``kind v0.32.0 go1.24.2 linux/amd64`` -> ``(0, 32, 0)``."""
    match = _KIND_VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None
