"""A small model of where the add-on charts' pods may run on a kind cluster (tests only).

It renders, per workload, the tolerations and nodeSelector the chart's templates give the pod from
the chart's default values merged with ours (Helm's coalesce: maps merge, lists and scalars replace,
``null`` removes), and the nodes and taints kind creates for a topology. Sources, at the pinned versions
(summarised next to the pins in krc/versions.py):

- kind v0.32.0 pkg/cluster/internal/create/actions/kubeadminit/init.go: the control-plane taint is
  removed only when the cluster has exactly one node. kubeadm labels control planes
  ``node-role.kubernetes.io/control-plane`` and taints them ``node-role.kubernetes.io/control-plane:NoSchedule``.
- Cilium 1.20 install/kubernetes/cilium/values.yaml(.tmpl).
- MetalLB v0.16.1 charts/metallb/values.yaml, templates/controller.yaml, templates/speaker.yaml, and the
  frr-k8s 0.0.25 subchart's values.yaml, templates/controller.yaml, templates/status-cleaner.yaml.
- ingress-nginx helm-chart-4.15.1 charts/ingress-nginx/values.yaml, templates/controller-deployment.yaml,
  templates/admission-webhooks/job-patch/job-createSecret.yaml and job-patchWebhook.yaml,
  templates/default-backend-deployment.yaml.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from krc.render import addon_values, kindconfig
from krc.config import ClusterSettings

CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "value": "", "effect": "NoSchedule"}
_MASTER_AND_CONTROL_PLANE = [
    {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule", "operator": "Exists"},
    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule", "operator": "Exists"},
]
_LINUX = {"kubernetes.io/os": "linux"}

#: The chart defaults the templates below read (only those keys), copied from the values files above.
CHART_DEFAULTS: dict[str, dict[str, Any]] = {
    addon_values.CILIUM_CHART: {
        "agent": True,
        "nodeSelector": dict(_LINUX),
        "tolerations": [{"operator": "Exists"}],
        "envoy": {"enabled": None, "nodeSelector": dict(_LINUX), "tolerations": [{"operator": "Exists"}]},
        "operator": {
            "enabled": True,
            "nodeSelector": dict(_LINUX),
            "tolerations": [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
                {"key": "node-role.kubernetes.io/master", "operator": "Exists"},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
                {"key": "node.cloudprovider.kubernetes.io/uninitialized", "operator": "Exists"},
            ],
        },
        "certgen": {"nodeSelector": {}, "tolerations": []},
        "hubble": {
            "enabled": True,
            "tls": {"enabled": True, "auto": {"enabled": True, "method": "helm"}},
            "relay": {"enabled": False, "nodeSelector": dict(_LINUX), "tolerations": []},
            "ui": {"enabled": False, "nodeSelector": dict(_LINUX), "tolerations": []},
        },
    },
    addon_values.METALLB_CHART: {
        "controller": {"enabled": True, "nodeSelector": {}, "tolerations": []},
        "speaker": {"enabled": True, "tolerateMaster": True, "nodeSelector": {}, "tolerations": []},
        "frrk8s": {"enabled": True, "external": False},
        "frr-k8s": {"frrk8s": {"tolerateMaster": True, "nodeSelector": {}, "tolerations": []}},
    },
    addon_values.INGRESS_NGINX_CHART: {
        "controller": {
            "kind": "Deployment",
            "nodeSelector": dict(_LINUX),
            "tolerations": [],
            "admissionWebhooks": {
                "enabled": True,
                "certManager": {"enabled": False},
                "patch": {"enabled": True, "nodeSelector": dict(_LINUX), "tolerations": []},
            },
        },
        "defaultBackend": {"enabled": False, "nodeSelector": dict(_LINUX), "tolerations": []},
    },
}


@dataclass(frozen=True)
class Node:
    name: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, str], ...]


@dataclass(frozen=True)
class Workload:
    """One pod template of a chart: where it runs and whether the release waits for it to run."""

    chart: str
    name: str
    #: ``Deployment`` and ``Job`` pods need one node; a ``DaemonSet`` must cover every node it selects.
    kind: str
    enabled: Callable[[Mapping[str, Any]], bool]
    tolerations: Callable[[Mapping[str, Any]], list[Mapping[str, Any]]]
    node_selector: Callable[[Mapping[str, Any]], Mapping[str, str]]
    #: A DaemonSet the add-on needs on every node (the CNI, the L2 speaker), not only where it fits.
    everywhere: bool = field(default=False)


def _get(values: Mapping[str, Any], *path: str) -> Any:
    node: Any = values
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _list(values: Mapping[str, Any], *path: str) -> list[Mapping[str, Any]]:
    return list(_get(values, *path) or [])


def _map(values: Mapping[str, Any], *path: str) -> dict[str, str]:
    return dict(_get(values, *path) or {})


def _metallb_speaker_tolerations(values: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # templates/speaker.yaml: tolerateMaster adds master and control-plane NoSchedule, then speaker.tolerations.
    own = _list(values, "speaker", "tolerations")
    return (list(_MASTER_AND_CONTROL_PLANE) if _get(values, "speaker", "tolerateMaster") else []) + own


def _frr_tolerations(values: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    sub = _get(values, "frr-k8s") or {}
    own = _list(sub, "frrk8s", "tolerations")
    return (list(_MASTER_AND_CONTROL_PLANE) if _get(sub, "frrk8s", "tolerateMaster") else []) + own


def _admission_jobs_on(values: Mapping[str, Any]) -> bool:
    hooks = _get(values, "controller", "admissionWebhooks") or {}
    return bool(
        _get(hooks, "enabled") and _get(hooks, "patch", "enabled") and not _get(hooks, "certManager", "enabled")
    )


WORKLOADS: tuple[Workload, ...] = (
    # --- Cilium ---
    Workload(
        addon_values.CILIUM_CHART,
        "cilium (agent)",
        "DaemonSet",
        lambda v: bool(_get(v, "agent")),
        lambda v: _list(v, "tolerations"),
        lambda v: _map(v, "nodeSelector"),
        everywhere=True,
    ),
    Workload(
        # envoy.enabled: ~ means on for new installs (separate Envoy DaemonSet since 1.16).
        addon_values.CILIUM_CHART,
        "cilium-envoy",
        "DaemonSet",
        lambda v: _get(v, "envoy", "enabled") is not False,
        lambda v: _list(v, "envoy", "tolerations"),
        lambda v: _map(v, "envoy", "nodeSelector"),
        everywhere=True,
    ),
    Workload(
        # The chart always adds the agent-not-ready toleration, which kind never leaves on a node.
        addon_values.CILIUM_CHART,
        "cilium-operator",
        "Deployment",
        lambda v: bool(_get(v, "operator", "enabled")),
        lambda v: _list(v, "operator", "tolerations"),
        lambda v: _map(v, "operator", "nodeSelector"),
    ),
    Workload(
        addon_values.CILIUM_CHART,
        "hubble-relay",
        "Deployment",
        lambda v: bool(_get(v, "hubble", "enabled") and _get(v, "hubble", "relay", "enabled")),
        lambda v: _list(v, "hubble", "relay", "tolerations"),
        lambda v: _map(v, "hubble", "relay", "nodeSelector"),
    ),
    Workload(
        addon_values.CILIUM_CHART,
        "hubble-ui",
        "Deployment",
        lambda v: bool(_get(v, "hubble", "enabled") and _get(v, "hubble", "ui", "enabled")),
        lambda v: _list(v, "hubble", "ui", "tolerations"),
        lambda v: _map(v, "hubble", "ui", "nodeSelector"),
    ),
    Workload(
        addon_values.CILIUM_CHART,
        "hubble-generate-certs",
        "Job",
        lambda v: bool(_get(v, "hubble", "enabled") and _get(v, "hubble", "tls", "auto", "method") == "cronJob"),
        lambda v: _list(v, "certgen", "tolerations"),
        lambda v: _map(v, "certgen", "nodeSelector"),
    ),
    # --- MetalLB ---
    Workload(
        # templates/controller.yaml: nodeSelector is kubernetes.io/os=linux plus controller.nodeSelector.
        addon_values.METALLB_CHART,
        "metallb-controller",
        "Deployment",
        lambda v: bool(_get(v, "controller", "enabled")),
        lambda v: _list(v, "controller", "tolerations"),
        lambda v: {**_LINUX, **_map(v, "controller", "nodeSelector")},
    ),
    Workload(
        addon_values.METALLB_CHART,
        "metallb-speaker",
        "DaemonSet",
        lambda v: bool(_get(v, "speaker", "enabled")),
        _metallb_speaker_tolerations,
        lambda v: {**_LINUX, **_map(v, "speaker", "nodeSelector")},
        everywhere=True,
    ),
    Workload(
        addon_values.METALLB_CHART,
        "frr-k8s",
        "DaemonSet",
        lambda v: bool(_get(v, "frrk8s", "enabled") and not _get(v, "frrk8s", "external")),
        _frr_tolerations,
        lambda v: {**_LINUX, **_map(v, "frr-k8s", "frrk8s", "nodeSelector")},
        everywhere=True,
    ),
    Workload(
        addon_values.METALLB_CHART,
        "frr-k8s-statuscleaner",
        "Deployment",
        lambda v: bool(_get(v, "frrk8s", "enabled") and not _get(v, "frrk8s", "external")),
        _frr_tolerations,
        lambda v: {**_LINUX, **_map(v, "frr-k8s", "frrk8s", "nodeSelector")},
    ),
    # --- ingress-nginx ---
    Workload(
        addon_values.INGRESS_NGINX_CHART,
        "ingress-nginx-controller",
        "Deployment",
        lambda v: _get(v, "controller", "kind") != "DaemonSet",
        lambda v: _list(v, "controller", "tolerations"),
        lambda v: _map(v, "controller", "nodeSelector"),
    ),
    Workload(
        addon_values.INGRESS_NGINX_CHART,
        "ingress-nginx-admission-create (pre-install hook)",
        "Job",
        _admission_jobs_on,
        lambda v: _list(v, "controller", "admissionWebhooks", "patch", "tolerations"),
        lambda v: _map(v, "controller", "admissionWebhooks", "patch", "nodeSelector"),
    ),
    Workload(
        addon_values.INGRESS_NGINX_CHART,
        "ingress-nginx-admission-patch (post-install hook)",
        "Job",
        _admission_jobs_on,
        lambda v: _list(v, "controller", "admissionWebhooks", "patch", "tolerations"),
        lambda v: _map(v, "controller", "admissionWebhooks", "patch", "nodeSelector"),
    ),
    Workload(
        addon_values.INGRESS_NGINX_CHART,
        "ingress-nginx-defaultbackend",
        "Deployment",
        lambda v: bool(_get(v, "defaultBackend", "enabled")),
        lambda v: _list(v, "defaultBackend", "tolerations"),
        lambda v: _map(v, "defaultBackend", "nodeSelector"),
    ),
)


def kind_nodes(cluster: ClusterSettings, *, ingress: bool) -> list[Node]:
    """The nodes kind creates, with kubeadm's and the kind config's labels and the taints kind leaves."""
    config = kindconfig.kind_config(cluster, addon_values.kind_options("/certs", cilium=True, ingress=ingress))
    single = len(config["nodes"]) == 1
    nodes = []
    for index, spec in enumerate(config["nodes"]):
        control_plane = spec["role"] == "control-plane"
        labels = {"kubernetes.io/os": "linux", **(spec.get("labels") or {})}
        if control_plane:
            labels["node-role.kubernetes.io/control-plane"] = ""
        taints = (CONTROL_PLANE_TAINT,) if control_plane and not single else ()
        nodes.append(Node(f"{spec['role']}-{index}", labels, taints))
    return nodes


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, str]) -> bool:
    """Kubernetes' rule (k8s.io/api core/v1 Toleration.ToleratesTaint)."""
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    operator = toleration.get("operator", "Equal")
    if not toleration.get("key"):
        return operator == "Exists"
    if toleration["key"] != taint["key"]:
        return False
    if operator == "Exists":
        return True
    return operator == "Equal" and toleration.get("value", "") == taint.get("value", "")


def fits(node: Node, tolerations: list[Mapping[str, Any]], node_selector: Mapping[str, str]) -> bool:
    if any(node.labels.get(k) != str(v) for k, v in node_selector.items()):
        return False
    blocking = [t for t in node.taints if t["effect"] in ("NoSchedule", "NoExecute")]
    return all(any(tolerates(tol, taint) for tol in tolerations) for taint in blocking)


def effective_values(chart: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The chart's defaults with ``values`` over them, as Helm coalesces them."""
    return addon_values.merge_values(CHART_DEFAULTS[chart], values)


def failures(chart: str, values: Mapping[str, Any], nodes: list[Node]) -> dict[str, str]:
    """Workload name -> why it would not come up when ``chart`` is installed with ``values`` on ``nodes``."""
    merged = effective_values(chart, values)
    found = {}
    for workload in WORKLOADS:
        if workload.chart != chart or not workload.enabled(merged):
            continue
        tolerations, selector = workload.tolerations(merged), workload.node_selector(merged)
        placed = [node.name for node in nodes if fits(node, tolerations, selector)]
        if workload.kind == "DaemonSet" and workload.everywhere:
            missing = [node.name for node in nodes if node.name not in placed]
            if missing:
                found[workload.name] = f"{workload.name} ({workload.kind}) cannot run on {', '.join(missing)}"
        elif not placed:
            found[workload.name] = (
                f"{workload.name} ({workload.kind}) stays Pending: no node fits {selector} with {tolerations}"
            )
    return found


def problems(chart: str, values: Mapping[str, Any], nodes: list[Node]) -> list[str]:
    """Why ``chart`` installed with ``values`` would not come up on ``nodes`` (empty when it would)."""
    return list(failures(chart, values, nodes).values())


def enabled_workloads(chart: str, values: Mapping[str, Any]) -> list[str]:
    merged = effective_values(chart, values)
    return [w.name for w in WORKLOADS if w.chart == chart and w.enabled(merged)]
