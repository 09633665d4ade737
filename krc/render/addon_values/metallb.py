"""MetalLB: its Helm values, its address pool on the kind network and the objects that announce it (no Pulumi here)."""

from __future__ import annotations

from typing import Any

from krc.config.helm import (  # noqa: F401 (the settings check the pool; re-exported for the renderers)
    DOCKER_LOW_ADDRESSES,
    PoolRange,
    default_pool_range,
    parse_pool_range,
    pool_range_problem,
)

from .common import METALLB_NAMESPACE

METALLB_API_VERSION = "metallb.io/v1beta1"
#: Name of the IPAddressPool and the L2Advertisement that announces it.
METALLB_POOL_NAME = "kind"


def metallb_values(*, frr: bool) -> dict[str, Any]:
    """MetalLB 0.16 in L2 mode; ``frr`` keeps the frr-k8s BGP backend the chart enables by default."""
    return {
        # 0.16 turns the frr-k8s subchart on by default; L2 announcements do not need it.
        "frrk8s": {"enabled": frr},
        "speaker": {
            # The older FRR sidecar mode is deprecated; frr-k8s replaces it.
            "frr": {"enabled": False},
            # kubeadm labels control planes exclude-from-external-load-balancers and MetalLB honours it
            # since 0.14; kind drops the label only on single-node clusters (metallb#2274, kind#3506),
            # so a control-plane-only cluster would announce nothing.
            "ignoreExcludeLB": True,
        },
    }


def ip_address_pool(pool: PoolRange) -> dict[str, Any]:
    """The ``IPAddressPool`` MetalLB assigns LoadBalancer addresses from (``configInline`` ended in 0.13)."""
    return {
        "apiVersion": METALLB_API_VERSION,
        "kind": "IPAddressPool",
        "metadata": {"name": METALLB_POOL_NAME, "namespace": METALLB_NAMESPACE},
        "spec": {"addresses": [str(pool)]},
    }


def l2_advertisement() -> dict[str, Any]:
    """The ``L2Advertisement`` that answers ARP for the pool's addresses on the kind network."""
    return {
        "apiVersion": METALLB_API_VERSION,
        "kind": "L2Advertisement",
        "metadata": {"name": METALLB_POOL_NAME, "namespace": METALLB_NAMESPACE},
        "spec": {"ipAddressPools": [METALLB_POOL_NAME]},
    }
