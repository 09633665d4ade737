"""Scheduling the add-ons on kind's tainted control planes: the tolerations each chart needs (no Pulumi here)."""

from __future__ import annotations

import copy
from typing import Any

from krc.config import ClusterSettings

from .common import CILIUM_CHART, INGRESS_NGINX_CHART, METALLB_CHART

# kubeadm taints every control-plane node `node-role.kubernetes.io/control-plane:NoSchedule` (kind sets
# no taints of its own in its kubeadm config), and kind removes the taint only when the cluster has
# exactly one node: kind v0.32.0 pkg/cluster/internal/create/actions/kubeadminit/init.go,
# `if len(allNodes) == 1 { kubectl taint nodes --all node-role.kubernetes.io/control-plane- }`.
# So 1+0 has no taint, 1+N and 3+3 have tainted control planes next to untainted workers, and 3+0 has
# only tainted nodes: there a Deployment or Job without the toleration stays Pending and its Helm
# release times out. What each chart tolerates by default is written next to its pin in krc/versions.py.

#: The taint kubeadm puts on control planes (value empty), the only one kind leaves on a node for good.
CONTROL_PLANE_TAINT_KEY = "node-role.kubernetes.io/control-plane"
#: Tolerates exactly that taint (``Exists``: any value, as ingress-nginx's own kind values do with ``Equal ""``).
CONTROL_PLANE_TOLERATION: dict[str, str] = {
    "key": CONTROL_PLANE_TAINT_KEY,
    "operator": "Exists",
    "effect": "NoSchedule",
}


def control_planes_tainted(cluster: ClusterSettings) -> bool:
    """Whether kind leaves the control-plane taint on: every cluster but a single node."""
    return cluster.control_planes + cluster.workers > 1


def only_tainted_nodes(cluster: ClusterSettings) -> bool:
    """Whether every node is a tainted control plane (several control planes, no workers)."""
    return cluster.workers == 0 and control_planes_tainted(cluster)


def scheduling_values(chart: str, cluster: ClusterSettings) -> dict[str, Any]:
    """Helm values that let ``chart``'s Deployments and Jobs schedule on ``cluster``'s topology.

    Empty unless every node is a tainted control plane; then each workload whose chart default does
    not tolerate the taint gets :data:`CONTROL_PLANE_TOLERATION`. With workers they keep running
    there, as the charts intend. Merged under the stack's values, so a stack's own ``tolerations``
    list replaces ours.
    """
    if not only_tainted_nodes(cluster):
        return {}
    tolerate = {"tolerations": [dict(CONTROL_PLANE_TOLERATION)]}
    if chart == CILIUM_CHART:
        # The agent and cilium-envoy DaemonSets tolerate everything and the operator tolerates the
        # control plane by default; Hubble relay and UI and the cronJob certgen tolerate nothing.
        return {
            "hubble": {"relay": copy.deepcopy(tolerate), "ui": copy.deepcopy(tolerate)},
            "certgen": copy.deepcopy(tolerate),
        }
    if chart == METALLB_CHART:
        # The speaker (tolerateMaster) and frr-k8s (frrk8s.tolerateMaster) tolerate control planes;
        # the controller, which serves the webhook, tolerates nothing.
        return {"controller": copy.deepcopy(tolerate)}
    if chart == INGRESS_NGINX_CHART:
        # The controller tolerates control planes in ingress_nginx_values(); the admission webhook's
        # create (pre-install hook) and patch (post-install hook) Jobs tolerate nothing.
        return {"controller": {"admissionWebhooks": {"patch": copy.deepcopy(tolerate)}}}
    raise ValueError(f"unknown chart {chart!r}")
