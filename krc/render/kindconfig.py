"""The kind cluster config and the shell commands that create and delete the cluster (no Pulumi here)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from krc.config import ClusterSettings
from krc.render import mirrors

API_VERSION = "kind.x-k8s.io/v1alpha4"


@dataclass(frozen=True)
class KindOptions:
    """What other parts of the program need from kind's config beyond the node topology."""

    #: Host folder with one ``<host>/hosts.toml`` per mirror, mounted on every node at certs.d.
    certs_dir: str
    #: Turn off kind's CNI (kindnet) because another CNI is installed after creation.
    disable_default_cni: bool = False
    #: kube-proxy mode; ``none`` when the CNI replaces kube-proxy.
    kube_proxy_mode: str | None = None
    #: Extra labels for the first control-plane node (e.g. ``ingress-ready``).
    first_node_labels: dict[str, str] = field(default_factory=dict)


def node_names(cluster: ClusterSettings) -> list[str]:
    """The container names kind gives the nodes, in creation order."""
    names = []
    for index in range(cluster.control_planes):
        names.append(f"{cluster.name}-control-plane{'' if index == 0 else index + 1}")
    for index in range(cluster.workers):
        names.append(f"{cluster.name}-worker{'' if index == 0 else index + 1}")
    return names


def api_server_endpoint(cluster: ClusterSettings) -> str:
    """The API server as seen from inside the kind network (host, without the port 6443).

    With several control planes kind fronts them with a load-balancer container.
    """
    if cluster.control_planes > 1:
        return f"{cluster.name}-external-load-balancer"
    return f"{cluster.name}-control-plane"


def kind_config(cluster: ClusterSettings, options: KindOptions) -> dict[str, Any]:
    """The kind ``Cluster`` object as plain data."""
    mount = {"hostPath": options.certs_dir, "containerPath": mirrors.CERTS_D, "readOnly": True}
    nodes: list[dict[str, Any]] = []
    for index in range(cluster.control_planes + cluster.workers):
        node: dict[str, Any] = {
            "role": "control-plane" if index < cluster.control_planes else "worker",
            "image": cluster.node_image,
            "extraMounts": [dict(mount)],
        }
        if index == 0:
            if options.first_node_labels:
                node["labels"] = dict(options.first_node_labels)
            if cluster.port_mappings:
                # Host ports can be bound once, so only the first control-plane node carries them.
                node["extraPortMappings"] = [
                    {
                        "containerPort": p.container_port,
                        "hostPort": p.host_port,
                        "listenAddress": p.listen_address,
                        "protocol": p.protocol,
                    }
                    for p in cluster.port_mappings
                ]
        nodes.append(node)
    config: dict[str, Any] = {
        "kind": "Cluster",
        "apiVersion": API_VERSION,
        "name": cluster.name,
        "nodes": nodes,
        "containerdConfigPatches": [mirrors.containerd_patch()],
    }
    networking: dict[str, Any] = {}
    if options.disable_default_cni:
        networking["disableDefaultCNI"] = True
    if options.kube_proxy_mode:
        networking["kubeProxyMode"] = options.kube_proxy_mode
    if networking:
        config["networking"] = networking
    return config


class _LiteralDumper(yaml.SafeDumper):
    """Writes multi-line strings (the TOML patches) as readable ``|`` blocks."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_LiteralDumper.add_representer(str, _str_presenter)


def render(cluster: ClusterSettings, options: KindOptions) -> str:
    """The kind config as YAML, fed to ``kind create cluster --config -``."""
    return yaml.dump(kind_config(cluster, options), Dumper=_LiteralDumper, sort_keys=False, default_flow_style=False)


#: Run first by the create script: the kind binary to run is ``$KRC_KIND`` (an installed kind, or the pinned release
#: that the KindCluster's binary command fetches, verified, before any script here runs). Nothing in these scripts
#: names the checkout or its virtualenv: they run again on delete, from the state, wherever the checkout is then.
KIND_PRELUDE = (
    'kind_bin="${KRC_KIND:-kind}"\n'
    'if ! command -v "$kind_bin" >/dev/null 2>&1; then\n'
    '  echo "kind-registry-cache: the kind binary $kind_bin is missing; run \'pulumi up\' again: it fetches the pinned '
    'kind first" >&2\n'
    "  exit 1\n"
    "fi\n"
)

#: Run first by the scripts that delete the cluster or read its kubeconfig, for which any kind will do: ``$KRC_KIND``,
#: else the ``kind`` on PATH (a kind removed by hand since must not leave a cluster nobody can delete).
KIND_PRELUDE_ANY = (
    'kind_bin="${KRC_KIND:-kind}"\n'
    'if ! command -v "$kind_bin" >/dev/null 2>&1; then\n'
    "  if command -v kind >/dev/null 2>&1; then\n"
    "    kind_bin=kind\n"
    "  else\n"
    '    echo "kind-registry-cache: the kind binary $kind_bin is gone and no kind is on PATH: install kind (any version '
    "can delete a cluster), or run 'pulumi up' once (it fetches the pinned kind again), then run this again\" >&2\n"
    "    exit 1\n"
    "  fi\n"
    "fi\n"
)


def create_script(name: str) -> str:
    """Create the cluster from the config on stdin, refusing to touch a cluster we did not create.

    Then record ``$KRC_CLUSTER_GENERATION`` and the control-plane container's id in ``$KRC_CLUSTER_RECORD``:
    the preflight reads it back, so the next ``up`` knows this cluster is the one it created (see
    ``preflight.generations``). The record is written to a fresh temporary name and renamed over, never
    through a symlink.
    """
    quoted = shlex.quote(name)
    control_plane = f"{name}-control-plane"  # kind's first control-plane node (node_names()[0])
    return (
        "set -eu\n"
        + KIND_PRELUDE
        + f'if "$kind_bin" get clusters 2>/dev/null | grep -qx {quoted}; then\n'
        f"  echo \"kind-registry-cache: a kind cluster named '{name}' already exists and is not managed by this stack. \""
        f"\"Delete it with 'kind delete cluster --name {name}' or set kind-registry-cache:cluster.name to another name.\" >&2\n"
        "  exit 1\n"
        "fi\n"
        f'"$kind_bin" create cluster --name {quoted} --config -\n'
        f"node_id=$(docker inspect --format '{{{{.Id}}}}' {shlex.quote(control_plane)})\n"
        'record="$KRC_CLUSTER_RECORD"\n'
        'mkdir -p "$(dirname "$record")"\n'
        'rm -f -- "$record.tmp"\n'
        '(set -C; printf \'%s %s\\n\' "$KRC_CLUSTER_GENERATION" "$node_id" > "$record.tmp")\n'
        'mv -f -- "$record.tmp" "$record"\n'
    )


def delete_script(name: str) -> str:
    """Delete the cluster (kind succeeds when it is already gone) and its record (that exact file, not a symlink)."""
    return (
        KIND_PRELUDE_ANY
        + f'"$kind_bin" delete cluster --name {shlex.quote(name)}\n'
        + 'record="${KRC_CLUSTER_RECORD:-}"\n'
        + 'if [ -n "$record" ] && [ -f "$record" ] && [ ! -L "$record" ]; then rm -f -- "$record"; fi\n'
    )


def kubeconfig_script(name: str) -> str:
    """Print the cluster's kubeconfig for use from the host."""
    return KIND_PRELUDE_ANY + f'"$kind_bin" get kubeconfig --name {shlex.quote(name)}\n'
