"""What the ``addons`` settings refer to: MetalLB address ranges and stale Helm values (no Pulumi here).

Kept hand-written: a MetalLB range is checked against the kind network (inside it, clear of the
addresses Docker hands out, not the broadcast address) with ``ipaddress``, and ``values`` are checked
against the keys the current charts removed — facts about these charts, which no schema library holds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CILIUM_CHART = "cilium"
METALLB_CHART = "metallb"
INGRESS_NGINX_CHART = "ingress-nginx"


#: Docker hands out container addresses from the bottom of the subnet in order: the gateway, then
#: the nodes, kind's load balancer and the caches. The pool stays clear of this many low addresses,
#: more than the largest topology the settings allow (9 control planes, 64 workers, the caches).
DOCKER_LOW_ADDRESSES = 128

# The usual kind pool: .200-.250 of the subnet's last /24.
_POOL_FIRST_OFFSET = 200
_POOL_LAST_OFFSET = 250


@dataclass(frozen=True)
class PoolRange:
    """An inclusive range of IPv4 addresses MetalLB hands to LoadBalancer services."""

    start: ipaddress.IPv4Address
    end: ipaddress.IPv4Address

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"

    @property
    def size(self) -> int:
        return int(self.end) - int(self.start) + 1


def default_pool_range(subnet: ipaddress.IPv4Network) -> PoolRange:
    """``.200-.250`` of the subnet's last /24: ``x.y.255.200-x.y.255.250`` for a /16.

    :param subnet: the kind network, /8 to /24 (what the settings accept).
    """
    last_24 = int(subnet.broadcast_address) & ~0xFF
    return PoolRange(
        ipaddress.IPv4Address(last_24 + _POOL_FIRST_OFFSET), ipaddress.IPv4Address(last_24 + _POOL_LAST_OFFSET)
    )


def parse_pool_range(text: str) -> PoolRange:
    """Read ``first-last`` (MetalLB's range form) or a CIDR such as ``172.30.255.192/27``.

    :raises ValueError: when ``text`` is neither, or the range runs backwards.
    """
    if "-" in text:
        first, _, last = text.partition("-")
        start, end = ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address(last.strip())
    else:
        network = ipaddress.IPv4Network(text.strip(), strict=True)
        start, end = network.network_address, network.broadcast_address
    if end < start:
        raise ValueError(f"the range runs backwards: {start} is after {end}")
    return PoolRange(start, end)


def pool_range_problem(subnet: ipaddress.IPv4Network, pool: PoolRange) -> str | None:
    """Why ``pool`` cannot serve LoadBalancer addresses on ``subnet``, or ``None`` when it can."""
    if pool.start not in subnet or pool.end not in subnet:
        return f"{pool} is not inside the kind network {subnet}; the default is {default_pool_range(subnet)}"
    if pool.end == subnet.broadcast_address:
        return f"{pool} includes the broadcast address {subnet.broadcast_address}; end it one address lower"
    low_end = subnet.network_address + DOCKER_LOW_ADDRESSES - 1
    if pool.start <= low_end:
        return (
            f"{pool} overlaps {subnet.network_address}-{low_end}, where Docker puts the gateway, the nodes and "
            f"the caches; start it above {low_end} (the default is {default_pool_range(subnet)})"
        )
    return None


#: Values of the 2022 recipes that current charts reject or ignore: chart -> [(path, why)].
_STALE_VALUES: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    CILIUM_CHART: (
        (("hostServices",), "was removed in Cilium 1.16 (socket load-balancing is part of kubeProxyReplacement)"),
        (("externalIPs", "enabled"), "was removed in Cilium 1.16 (on with kubeProxyReplacement)"),
        (("hostPort", "enabled"), "was removed in Cilium 1.16 (on with kubeProxyReplacement)"),
        (("nodePort", "enabled"), "was removed in Cilium 1.16 (on with kubeProxyReplacement)"),
    ),
    METALLB_CHART: (
        (("configInline",), "was removed in MetalLB 0.13; set addons.metallb.range (an IPAddressPool) instead"),
    ),
    INGRESS_NGINX_CHART: (),
}


def stale_values(chart: str, values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Keys in stack ``values`` that the current ``chart`` rejects or silently ignores.

    :returns: ``(dotted path, why)`` pairs, in a fixed order.
    """
    found: list[tuple[str, str]] = []
    for path, why in _STALE_VALUES[chart]:
        node: Any = values
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            found.append((".".join(path), f"{why}; remove it"))
    if chart == CILIUM_CHART and "kubeProxyReplacement" in values:
        mode = values["kubeProxyReplacement"]
        if mode is not True and str(mode).lower() != "true":
            found.append(
                (
                    "kubeProxyReplacement",
                    f"must stay true: with Cilium on, kind runs without kube-proxy, so Cilium has to replace it "
                    f"('strict', 'partial' and 'probe' ended in Cilium 1.16); got {mode!r}",
                )
            )
    return found
