"""``cluster``: the kind cluster's topology and host ports (no Pulumi here).

pydantic checks the shape, the key names and each value's type and range (:class:`ClusterConfig`); kept
hand-written: the cluster name's default from the stack name (checked with the same grammar), IP addresses
given as integers refused (``ipaddress`` takes them, kind's YAML would not), and one host port used twice.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from krc import versions

from . import checks
from .base import ConfigModel
from .errors import fail, problem, show
from .fields import Integer, Text

DEFAULT_PORT_MAPPINGS: tuple[dict[str, Any], ...] = (
    {"containerPort": 80, "hostPort": 80, "listenAddress": "127.0.0.1", "protocol": "TCP"},
    {"containerPort": 443, "hostPort": 443, "listenAddress": "127.0.0.1", "protocol": "TCP"},
)
PROTOCOLS = ("TCP", "UDP", "SCTP")

# kind accepts ^[a-z0-9.-]+$; the longest node name kind derives is "<name>-external-load-balancer",
# and container hostnames must stay within 63 characters.
CLUSTER_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,38}[a-z0-9])?", re.ASCII)
CLUSTER_NAME_ALLOWED = "1-40 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9._/:@-]*[a-z0-9]", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class PortMapping:
    """A host port of the first control-plane node (kind ``extraPortMappings``)."""

    container_port: int
    host_port: int
    listen_address: str = "127.0.0.1"
    protocol: str = "TCP"


@dataclass(frozen=True)
class ClusterSettings:
    """The kind cluster's topology."""

    name: str
    control_planes: int = 1
    workers: int = 0
    node_image: str = versions.NODE_IMAGE
    port_mappings: tuple[PortMapping, ...] = ()


def _ip_address(value: Any) -> str:
    if checks.text_problem(value) is not None:  # ip_address also takes integers, which kind's YAML would not
        raise fail(f"must be an IP address such as 127.0.0.1; got {show(value)}")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise fail(f"must be an IP address such as 127.0.0.1; got {show(value)}") from None


def _protocol(value: Any) -> str:
    if not isinstance(value, str) or not value.isascii() or value.upper() not in PROTOCOLS:
        raise fail(f"must be one of {', '.join(PROTOCOLS)}; got {show(value)}")
    return value.upper()


Port = Integer(1, 65535)


class PortMappingConfig(ConfigModel):
    """A host port of the first control-plane node."""

    container_port: Port
    """The port inside the node."""
    host_port: Port | None = None
    """The port on the host (default: containerPort)."""
    listen_address: Annotated[
        str, BeforeValidator(_ip_address), WithJsonSchema({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
    ] = "127.0.0.1"
    """The host address the port listens on."""
    protocol: Annotated[
        str, BeforeValidator(_protocol), WithJsonSchema({"type": "string", "enum": [*PROTOCOLS, *(p.lower() for p in PROTOCOLS)]})
    ] = "TCP"
    """TCP, UDP or SCTP."""


class ClusterConfig(ConfigModel):
    """The kind cluster."""

    name: Text(CLUSTER_NAME, CLUSTER_NAME_ALLOWED) | None = None
    """The cluster's name (default: the stack name)."""
    control_planes: Integer(1, 9) = 1
    """Control-plane nodes."""
    workers: Integer(0, 64) = 0
    """Worker nodes."""
    node_image: Text(IMAGE_REF, "a kindest/node image reference such as " + repr(versions.NODE_IMAGE.split("@")[0]), schema_pattern=r"[a-zA-Z0-9][a-zA-Z0-9._/:@-]*[a-zA-Z0-9]") = versions.NODE_IMAGE
    """The kindest/node image (default: the pinned kind release's, by digest)."""
    port_mappings: list[PortMappingConfig] = Field(default_factory=lambda: [PortMappingConfig.model_validate(m) for m in DEFAULT_PORT_MAPPINGS])
    """Host ports of the first control-plane node (default: 80 and 443 on 127.0.0.1)."""


_WILDCARD = "0.0.0.0"


def _kind_address(text: str) -> str:
    """The address as kind compares it: Go's ``net.IP.String()``, with ``::`` counted as ``0.0.0.0``."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return _WILDCARD if address.is_unspecified else str(address)


def build(config: ClusterConfig, stack: str) -> tuple[ClusterSettings | None, list[str]]:
    """The cluster settings, and the problems only the whole value shows (the name's default, ports used twice)."""
    problems: list[str] = []
    name = config.name if config.name is not None else stack
    if checks.text_problem(name, CLUSTER_NAME) is not None:
        problems.append(
            problem(
                "cluster.name",
                f"must be {CLUSTER_NAME_ALLOWED}; got {show(name)}"
                + ("" if config.name is not None else " from the stack name: set cluster.name"),
            )
        )
    mappings: list[PortMapping] = []
    # kind's own rule (v0.32.0 pkg/internal/apis/config/validate.go:144-207, validatePortMappings): per host port
    # and protocol, an address may be bound once, and an address that listens on every address (0.0.0.0, or ::,
    # which kind counts as 0.0.0.0) excludes any other; kind refuses the whole config otherwise.
    bound: dict[tuple[int, str], dict[str, int]] = {}
    for index, item in enumerate(config.port_mappings):
        host_port = item.host_port if item.host_port is not None else item.container_port
        address = _kind_address(item.listen_address)
        taken = bound.setdefault((host_port, item.protocol), {})
        clash = taken.get(address, taken.get(_WILDCARD))
        if clash is None and address == _WILDCARD and taken:
            clash = next(iter(taken.values()))
        if clash is not None:
            why = "is already used by" if address in taken else "cannot be bound together with"
            problems.append(
                problem(
                    f"cluster.portMappings[{index}].hostPort",
                    f"{item.listen_address}:{host_port}/{item.protocol} {why} cluster.portMappings[{clash}] "
                    f"(kind refuses a host port and protocol bound twice, or bound on 0.0.0.0 or :: and another "
                    f"address)",
                )
            )
            continue
        taken[address] = index
        mappings.append(PortMapping(item.container_port, host_port, item.listen_address, item.protocol))
    if problems:
        return None, problems
    return ClusterSettings(name, config.control_planes, config.workers, config.node_image, tuple(mappings)), []
