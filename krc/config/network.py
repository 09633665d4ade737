"""``network``: the docker network kind's nodes and the caches share (no Pulumi here).

pydantic checks the shape, names and ranges (:class:`NetworkConfig`); the subnet is parsed with ``ipaddress``
(strict CIDR, IPv4, private, /8 to /24) in a validator of ours so that a subnet with host bits gets a
did-you-mean and a trailing newline or non-ASCII digit is refused (``ipaddress`` would strip or take them).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from . import checks
from .base import ConfigModel
from .errors import fail, show
from .fields import Integer, text_check

DEFAULT_SUBNET = "172.30.0.0/16"
DEFAULT_MTU = 1500
DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}", re.ASCII)


@dataclass(frozen=True)
class NetworkSettings:
    """The docker network kind's nodes and the caches share."""

    name: str = "kind"
    subnet: ipaddress.IPv4Network = ipaddress.IPv4Network(DEFAULT_SUBNET)
    mtu: int = DEFAULT_MTU

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The bridge's own address: the subnet's first host, as Docker picks by default."""
        return self.subnet.network_address + 1


def _subnet(value: Any) -> ipaddress.IPv4Network:
    if isinstance(value, ipaddress.IPv4Network):
        return value
    clean = isinstance(value, str) and checks.text_problem(value) is None and value.isascii()
    try:
        if not clean:
            raise ValueError("not clean")
        subnet = ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        detail = ""
        if clean and "has host bits set" in str(error):
            detail = f" (did you mean {ipaddress.IPv4Network(value, strict=False)}?)"
        raise fail(f"must be an IPv4 network in CIDR form such as {DEFAULT_SUBNET}; got {show(value)}{detail}") from None
    if not subnet.is_private:
        raise fail(f"must be a private range (e.g. 172.16.0.0/12 space); got {subnet}")
    if not 8 <= subnet.prefixlen <= 24:
        raise fail(f"must have a prefix length from /8 to /24 so nodes, caches and load-balancer addresses fit; got {subnet}")
    return subnet


Subnet = Annotated[
    ipaddress.IPv4Network,
    BeforeValidator(_subnet),
    WithJsonSchema({"type": "string", "format": "ipv4-network", "pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/([89]|1[0-9]|2[0-4])$"}),
]


#: Docker's own networks, which cannot be created and carry no subnet or aliases of ours: "bridge", "host",
#: "none" and "default" (moby/moby daemon/network/network_mode_unix.go, isPreDefined), "nat" on Windows
#: (network_mode_windows.go), and "container", reserved for ``--network container:<id>`` (network_mode.go,
#: IsReserved). The program would adopt such a network "as it is" and kind would fail on it.
PREDEFINED_NETWORKS = ("bridge", "host", "none", "default", "nat", "container")


def _network_name(value: Any) -> str:
    value = text_check(DOCKER_NAME, "a docker network name (letters, digits, '_', '.', '-')")(value)
    if value in PREDEFINED_NETWORKS:
        raise fail(
            f"must not be one of Docker's predefined networks ({', '.join(PREDEFINED_NETWORKS)}); got {show(value)}: "
            "use a network of its own, such as 'kind'"
        )
    return value


class NetworkConfig(ConfigModel):
    """The docker network of nodes and caches."""

    name: Annotated[
        str,
        BeforeValidator(_network_name),
        WithJsonSchema({"type": "string", "pattern": f"^(?:{DOCKER_NAME.pattern})$", "not": {"enum": list(PREDEFINED_NETWORKS)}}),
    ] = "kind"
    """The docker network's name."""
    subnet: Subnet = ipaddress.IPv4Network(DEFAULT_SUBNET)
    """A private IPv4 CIDR from /8 to /24."""
    mtu: Integer(1280, 9000) = DEFAULT_MTU
    """The network's MTU."""

    def settings(self) -> NetworkSettings:
        return NetworkSettings(self.name, self.subnet, self.mtu)
