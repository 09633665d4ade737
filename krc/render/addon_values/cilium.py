"""Cilium's Helm values as kind's CNI (no Pulumi here)."""

from __future__ import annotations

from typing import Any

from .common import API_SERVER_PORT


def cilium_values(api_host: str, *, hubble: bool) -> dict[str, Any]:
    """Cilium 1.20 as kind's CNI, replacing kube-proxy.

    Without kube-proxy nothing serves the ``kubernetes`` service before Cilium runs, so the agent
    reaches the API server by its name on the kind network. Since 1.16 ``kubeProxyReplacement`` is
    ``true``/``false`` only, and ``hostServices``, ``externalIPs.enabled``, ``hostPort.enabled`` and
    ``nodePort.enabled`` are gone (on with the replacement), so none of them is set.

    :param api_host: ``<cluster>-control-plane``, or ``<cluster>-external-load-balancer`` with several control planes.
    :param hubble: also run Hubble relay (and pull its image).
    """
    pull = {"pullPolicy": "IfNotPresent"}
    relay: dict[str, Any] = {"enabled": hubble}
    if hubble:
        relay["image"] = dict(pull)
    return {
        "kubeProxyReplacement": True,
        "k8sServiceHost": api_host,
        "k8sServicePort": API_SERVER_PORT,
        # kind's kube-controller-manager allocates the node pod CIDRs; Cilium uses them.
        "ipam": {"mode": "kubernetes"},
        "image": dict(pull),
        # One operator is enough locally; its required anti-affinity leaves a second one Pending
        # on a single-node cluster.
        "operator": {"replicas": 1, "image": dict(pull)},
        "envoy": {"image": dict(pull)},
        "hubble": {"relay": relay},
    }
