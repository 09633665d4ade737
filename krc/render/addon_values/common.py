"""What every add-on shares: chart names and namespaces, kind's options for the add-ons, merging stack values
over ours, and where a chart comes from (chart names and the values current charts reject are checked with
the settings, in krc/config/helm.py) (no Pulumi here)."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from krc.config.helm import CILIUM_CHART, INGRESS_NGINX_CHART, METALLB_CHART, stale_values  # noqa: F401 (re-exported)
from krc.config import PortMapping
from krc.render.kindconfig import KindOptions

#: The API server port inside the kind network, on the control plane or kind's load balancer.
API_SERVER_PORT = 6443

CILIUM_NAMESPACE = "kube-system"
METALLB_NAMESPACE = "metallb-system"
INGRESS_NGINX_NAMESPACE = "ingress-nginx"

#: MetalLB's speaker needs host networking and NET_RAW, which the `privileged` level allows.
PRIVILEGED_NAMESPACE_LABELS: dict[str, str] = {
    "pod-security.kubernetes.io/enforce": "privileged",
    "pod-security.kubernetes.io/audit": "privileged",
    "pod-security.kubernetes.io/warn": "privileged",
}

#: The label on the node that carries the host port mappings (the first control plane); the
#: ingress-nginx controller is pinned to it because only that node's ports 80/443 reach the host.
INGRESS_NODE_LABELS: dict[str, str] = {"ingress-ready": "true"}

def kind_options(certs_dir: str, *, cilium: bool, ingress: bool) -> KindOptions:
    """What the add-ons need from kind's config.

    :param cilium: Cilium replaces kindnet and kube-proxy, so kind installs neither.
    :param ingress: ingress-nginx runs on the first control plane, which carries the host port mappings.
    """
    return KindOptions(
        certs_dir=certs_dir,
        disable_default_cni=cilium,
        kube_proxy_mode="none" if cilium else None,
        first_node_labels=dict(INGRESS_NODE_LABELS) if ingress else {},
    )


def merge_values(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
    """Stack values over ours: objects merge key by key, lists and scalars replace, ``null`` removes ours.

    Neither argument is changed.
    """
    merged = copy.deepcopy(dict(ours))
    for key, value in theirs.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            base = merged.get(key)
            merged[key] = merge_values(base if isinstance(base, Mapping) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def published_url(port_mappings: Sequence[PortMapping], container_port: int, scheme: str) -> str | None:
    """``scheme://host[:port]`` of the first TCP mapping of ``container_port``, or ``None``."""
    for mapping in port_mappings:
        if mapping.container_port != container_port or mapping.protocol != "TCP":
            continue
        address = ipaddress.ip_address(mapping.listen_address)
        if address.is_unspecified:
            address = ipaddress.ip_address("127.0.0.1" if address.version == 4 else "::1")
        host = f"[{address}]" if address.version == 6 else str(address)
        default_port = 80 if scheme == "http" else 443
        port = "" if mapping.host_port == default_port else f":{mapping.host_port}"
        return f"{scheme}://{host}{port}"
    return None
