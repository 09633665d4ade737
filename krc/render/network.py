"""The docker network's driver options, and how an existing network differs from the settings (no Pulumi here)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from krc.config import NetworkSettings

#: The bridge driver's MTU and IP-masquerade options, as ``docker network create -o`` and ``docker network inspect``
#: name them (kind creates its own network with both).
MTU_OPTION = "com.docker.network.driver.mtu"
MASQUERADE_OPTION = "com.docker.network.bridge.enable_ip_masquerade"


def options(settings: NetworkSettings) -> dict[str, str]:
    """The driver options the program creates the network with (and nothing else)."""
    return {MASQUERADE_OPTION: "true", MTU_OPTION: str(settings.mtu)}


def changes(
    settings: NetworkSettings, subnets: Sequence[ipaddress.IPv4Network], existing_options: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """What the settings ask for that the existing network does not have, as ``(setting, wanted, it has)``:
    ``("network.subnet", "172.31.0.0/16", "172.30.0.0/16")``; empty when it matches. An MTU the network does not
    report is not compared."""
    found: list[tuple[str, str, str]] = []
    if settings.subnet not in subnets:
        found.append(("network.subnet", str(settings.subnet), ", ".join(map(str, subnets)) or "no IPv4 subnet"))
    mtu = existing_options.get(MTU_OPTION)
    if mtu is not None and mtu.strip() != str(settings.mtu):
        found.append(("network.mtu", str(settings.mtu), mtu.strip()))
    return found
