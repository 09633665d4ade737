"""ingress-nginx: its Helm values for kind and where the host reaches it (no Pulumi here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from krc.config import PortMapping

from .common import INGRESS_NODE_LABELS, published_url


def ingress_nginx_values() -> dict[str, Any]:
    """ingress-nginx 4.15 for kind, after ingress-nginx's own kind values.

    Those live in the ingress-nginx repository at ``hack/manifest-templates/provider/kind/values.yaml``
    (tag controller-v1.15.1): ``hostPort.enabled``, control-plane tolerations, ``publishService``
    off, ``publish-status-address: localhost``, ``watchIngressWithoutClass``, ``maxUnavailable: 1``,
    ``terminationGracePeriodSeconds: 0``. kind's own ingress guide points to cloud-provider-kind
    since v0.32, so it is not the reference here. Two differences: their Service is a LoadBalancer
    (for cloud-provider-kind), ours stays NodePort (a LoadBalancer would wait for MetalLB); and they
    set no nodeSelector, while ours pins the controller to the node that carries kind's port
    mappings (the first control plane, labelled ``ingress-ready``), so the host reaches it on
    127.0.0.1 whatever the topology.
    """
    return {
        "controller": {
            "hostPort": {"enabled": True, "ports": {"http": 80, "https": 443}},
            "nodeSelector": dict(INGRESS_NODE_LABELS),
            # The labelled node is a control plane, tainted whenever the cluster has workers.
            "tolerations": [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "service": {"type": "NodePort"},
            "publishService": {"enabled": False},
            "extraArgs": {"publish-status-address": "localhost"},
            # The new pod needs the old one's host ports: let the old one go first.
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "terminationGracePeriodSeconds": 0,
            "watchIngressWithoutClass": True,
        }
    }


def ingress_url(port_mappings: Sequence[PortMapping]) -> str | None:
    """Where the host reaches ingress-nginx: the mapping of node port 80 (else 443), or ``None``."""
    return published_url(port_mappings, 80, "http") or published_url(port_mappings, 443, "https")
