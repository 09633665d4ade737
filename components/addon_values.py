"""Helm values, MetalLB objects and address ranges for the cluster add-ons (no Pulumi here)."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from krc.config.helm import (  # noqa: F401  (the settings model checks these; re-exported for the renderers)
    CILIUM_CHART,
    DOCKER_LOW_ADDRESSES,
    INGRESS_NGINX_CHART,
    METALLB_CHART,
    PoolRange,
    default_pool_range,
    parse_pool_range,
    pool_range_problem,
    stale_values,
)

from .kindconfig import KindOptions
from .settings import ClusterSettings, PortMapping

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

METALLB_API_VERSION = "metallb.io/v1beta1"
#: Name of the IPAddressPool and the L2Advertisement that announces it.
METALLB_POOL_NAME = "kind"

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
    for container_port, scheme in ((80, "http"), (443, "https")):
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


# --- scheduling on kind's tainted control planes --------------------------------------------------
#
# kubeadm taints every control-plane node `node-role.kubernetes.io/control-plane:NoSchedule` (kind sets
# no taints of its own in its kubeadm config), and kind removes the taint only when the cluster has
# exactly one node: kind v0.32.0 pkg/cluster/internal/create/actions/kubeadminit/init.go,
# `if len(allNodes) == 1 { kubectl taint nodes --all node-role.kubernetes.io/control-plane- }`.
# So 1+0 has no taint, 1+N and 3+3 have tainted control planes next to untainted workers, and 3+0 has
# only tainted nodes: there a Deployment or Job without the toleration stays Pending and its Helm
# release times out. What each chart tolerates by default is written next to its pin in versions.py.

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


def chart_source(repository: str, chart: str) -> tuple[str, str | None]:
    """The Release's ``chart`` and repository URL: an ``oci://`` repository names the chart itself."""
    if repository.startswith("oci://"):
        return f"{repository.rstrip('/')}/{chart}", None
    return chart, repository
