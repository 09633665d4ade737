"""Gateway API through Cilium: the CRDs from the artifact store, Cilium's values and the shared Gateway (no Pulumi here).

The ``addons.gatewayApi`` setting itself is part of the stack configuration model (``krc/config/gateway.py``).

Facts from the pinned upstream sources this module relies on:

- Cilium v1.20.0 passes the Gateway API conformance suite at **v1.6.1** (kubernetes-sigs/gateway-api,
  ``conformance/reports/v1.6/cilium/standard-v1.20.0-default-report.yaml``: ``gatewayAPIVersion: v1.6.1``,
  ``implementation.version: v1.20.0``; supported features include ``GatewayInfrastructurePropagation``).
- Cilium's Gateway API prerequisites (``Documentation/network/servicemesh/gateway-api/installation.rst``):
  ``kubeProxyReplacement=true``, ``l7Proxy=true`` (the default), the Gateway API CRDs installed *before* Cilium
  (the operator starts its Gateway controller only if they exist when it starts), then ``gatewayAPI.enabled=true``.
  From Gateway API v1.5 on, TLSRoute is in the standard channel; in v1.6.1 ``config/crd/standard/`` also holds
  TCPRoute, UDPRoute and ListenerSet, so nothing comes from the experimental channel.
- Chart 1.20 values: ``gatewayAPI.gatewayClass.create`` is ``"auto"`` (create the ``cilium`` GatewayClass, controller
  ``io.cilium/gateway-controller``, when the GatewayClass CRD exists), ``"true"`` or ``"false"``;
  ``gatewayAPI.hostNetwork.enabled`` (default false) exposes the Envoy listeners on the nodes' host network
  instead of a LoadBalancer Service; an empty ``hostNetwork.nodes.matchLabels`` means every node.
- Host network mode (``Documentation/network/servicemesh/gateway-api/host-network-mode.rst``): the listener's
  ``spec.listeners.port`` is bound on every selected node on all interfaces; Envoy has no capabilities by default,
  so ports up to 1023 need ``keepCapNetBindService`` and ``NET_BIND_SERVICE``. The program uses 8080/8443 instead.
- LoadBalancer mode: Cilium copies ``spec.infrastructure.annotations`` of the Gateway onto the Service it creates
  (GatewayInfrastructurePropagation); MetalLB 0.16 assigns the address a Service asks for with the
  ``metallb.io/loadBalancerIPs`` annotation.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from krc import versions
from krc.config.gateway import AUTO, GATEWAY_NAMESPACE, HOST_NETWORK, LOAD_BALANCER, SUPPORTED_VERSIONS, GatewayApiSettings
from krc.config import NAMESPACE, PortMapping
from krc.render.addon_values.common import published_url


#: The GatewayClass Cilium's chart creates (``templates/cilium-gateway-api-class.yaml``).
GATEWAY_CLASS = "cilium"
GATEWAY_CONTROLLER = "io.cilium/gateway-controller"
GATEWAY_API_GROUP_VERSION = "gateway.networking.k8s.io/v1"
#: The one shared Gateway, and the namespace it (and an HTTPS listener's TLS secret) lives in.
GATEWAY_NAME = "shared"

#: Listener ports on the MetalLB address (LoadBalancer mode).
LOAD_BALANCER_PORTS = (80, 443)
#: Listener ports on the nodes (host-network mode): above 1023, so Envoy needs no extra capability, and clear
#: of ingress-nginx's host ports 80/443, so both can run at once. ``cluster.portMappings`` publishes them.
HOST_NETWORK_PORTS = (8080, 8443)

#: MetalLB's per-Service address request (metallb/metallb, e2etest/pkg/service: ``WithSpecificIPs``).
METALLB_IPS_ANNOTATION = "metallb.io/loadBalancerIPs"

CRD = "CustomResourceDefinition"

#: Gateway API release -> file -> the objects it holds (kind, metadata.name), as the files are at the release's tag
#: (their sha256 is pinned in krc/versions.py). The program names one resource per object from this table before
#: `up` has downloaded the files into the artifact store, and refuses files that hold anything else.
CRD_OBJECTS: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "v1.6.1": {
        f"gateway.networking.k8s.io_{plural}.yaml": ((CRD, f"{plural}.gateway.networking.k8s.io"),)
        for plural in (
            "backendtlspolicies", "gatewayclasses", "gateways", "grpcroutes", "httproutes", "listenersets",
            "referencegrants", "tcproutes", "tlsroutes", "udproutes",
        )
    }
    | {
        "gateway.networking.k8s.io_vap_safeupgrades.yaml": (
            ("ValidatingAdmissionPolicy", "safe-upgrades.gateway.networking.k8s.io"),
            ("ValidatingAdmissionPolicyBinding", "safe-upgrades.gateway.networking.k8s.io"),
        ),
    },
}
assert set(SUPPORTED_VERSIONS) == set(versions.GATEWAY_API_CRD_SHA256) == set(CRD_OBJECTS), (
    "the Gateway API releases the settings accept must be pinned"
)
assert all(set(CRD_OBJECTS[v]) == set(versions.GATEWAY_API_CRD_SHA256[v]) for v in CRD_OBJECTS)


@dataclass(frozen=True)
class CrdObject:
    """One object of a Gateway API release's standard channel."""

    file: str
    kind: str
    name: str


def crd_object_list(version: str) -> list[CrdObject]:
    """The release's objects in install order: the CRDs, then the safe-upgrades admission policy and its binding."""
    found = [CrdObject(file, kind, name) for file, objects in sorted(CRD_OBJECTS[version].items()) for kind, name in objects]
    # CRDs first: the admission policy is the release's own guard against later downgrades.
    return sorted(found, key=lambda o: o.kind != CRD)


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class GatewayPlan:
    """How the shared Gateway is exposed on this machine, decided once the Docker engine is known."""

    mode: str
    http_port: int
    #: ``None`` without a TLS secret.
    https_port: int | None
    tls_secret: str | None
    #: The MetalLB address the Gateway's Service asks for (LoadBalancer mode).
    address: str | None
    #: What to curl from the host.
    url: str
    #: Why this mode, for the log.
    reason: str


class GatewayError(ValueError):
    """The Gateway cannot be reached from the host as configured; the message names the key and the fix."""


def resolve_mode(gateway: GatewayApiSettings, *, metallb_enabled: bool, kind_network_routable: bool, engine: str) -> tuple[str, str]:
    """The mode to use and why. ``auto`` picks loadBalancer only when MetalLB runs and this machine can route
    to the kind network (a local Docker Engine on Linux); Docker Desktop, Colima and remote engines keep the
    network inside a VM or another machine, so the Gateway goes on the first control plane's published ports.

    :param engine: a short description of the Docker engine, for the reason.
    """
    if gateway.mode != AUTO:
        return gateway.mode, f"addons.gatewayApi.mode is {gateway.mode}"
    if not metallb_enabled:
        return HOST_NETWORK, "auto: MetalLB is off, so no LoadBalancer address"
    if kind_network_routable:
        return LOAD_BALANCER, f"auto: the kind network is routable from this machine ({engine})"
    return HOST_NETWORK, f"auto: the kind network is not routable from this machine ({engine})"


def plan(
    gateway: GatewayApiSettings,
    *,
    mode: str,
    reason: str,
    metallb_last_address: ipaddress.IPv4Address | None,
    port_mappings: Sequence[PortMapping],
) -> GatewayPlan:
    """Ports, address and URL of the shared Gateway in ``mode``.

    :param metallb_last_address: the last address of MetalLB's pool, which the Gateway asks for (LoadBalancer mode).
    :raises GatewayError: in host-network mode, when ``cluster.portMappings`` does not publish the Gateway's
        node port (and the HTTPS one when a TLS secret is given).
    """
    if mode == LOAD_BALANCER:
        if metallb_last_address is None:
            raise GatewayError(f"{NAMESPACE}:addons.gatewayApi.mode: loadBalancer needs MetalLB's address range")
        http, https = LOAD_BALANCER_PORTS
        address = str(metallb_last_address)
        return GatewayPlan(
            mode=mode,
            http_port=http,
            https_port=https if gateway.tls_secret else None,
            tls_secret=gateway.tls_secret,
            address=address,
            url=f"http://{address}",
            reason=reason,
        )
    http, https = HOST_NETWORK_PORTS
    wanted = [(http, "http")] + ([(https, "https")] if gateway.tls_secret else [])
    urls: dict[int, str] = {}
    missing: list[int] = []
    for port, scheme in wanted:
        url = published_url(port_mappings, port, scheme)
        if url is None:
            missing.append(port)
        else:
            urls[port] = url
    if missing:
        entries = "\n".join(
            f"            - {{containerPort: {port}, hostPort: {port}}}" for port in missing
        )
        raise GatewayError(
            f"{NAMESPACE}:cluster.portMappings: the Gateway runs in host-network mode ({reason}) on node port(s) "
            f"{', '.join(map(str, missing))} of the first control plane, which no TCP mapping publishes, so the host "
            f"could not reach it. Add the mapping(s) to the list (keep the ones you have; the default list is 80 and "
            f"443), e.g. in Pulumi.<stack>.yaml:\n"
            f"        {NAMESPACE}:cluster:\n"
            f"          portMappings:\n"
            f"            - {{containerPort: 80, hostPort: 80}}\n"
            f"            - {{containerPort: 443, hostPort: 443}}\n"
            f"{entries}\n"
            f"      (with addons.ingressNginx off, hostPort 80/443 can point at {http}/{https} instead), "
            f"or set addons.gatewayApi.mode: loadBalancer on a Linux Docker Engine"
        )
    return GatewayPlan(
        mode=mode,
        http_port=http,
        https_port=https if gateway.tls_secret else None,
        tls_secret=gateway.tls_secret,
        address=None,
        url=urls[http],
        reason=reason,
    )


def cilium_values(mode: str) -> dict[str, Any]:
    """What Cilium 1.20 documents for its Gateway API, merged over :func:`addon_values.cilium_values`.

    The chart creates the ``cilium`` GatewayClass; ``"true"`` rather than its ``"auto"`` so the result does
    not depend on what Helm's capabilities report during the install.
    """
    return {
        "kubeProxyReplacement": True,
        "l7Proxy": True,
        # Cilium's docs restart the operator and the agents after turning the Gateway API on; these chart values
        # roll them whenever the config changes, so turning the Gateway on (or changing its mode) on a running
        # cluster takes effect without a manual `kubectl rollout restart`.
        "rollOutCiliumPods": True,
        "operator": {"rollOutPods": True},
        "envoy": {"rollOutPods": True},
        "gatewayAPI": {
            "enabled": True,
            "gatewayClass": {"create": "true"},
            # Every node: only the first control plane's ports are published, the others are not reachable.
            "hostNetwork": {"enabled": mode == HOST_NETWORK},
        },
    }


def namespace_manifest() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NAMESPACE}}


def gateway_manifest(gateway_plan: GatewayPlan) -> dict[str, Any]:
    """The shared Gateway: HTTP, plus HTTPS terminating with the TLS secret; routes from every namespace attach."""
    every_namespace = {"namespaces": {"from": "All"}}
    listeners: list[dict[str, Any]] = [
        {"name": "http", "protocol": "HTTP", "port": gateway_plan.http_port, "allowedRoutes": every_namespace}
    ]
    if gateway_plan.tls_secret and gateway_plan.https_port:
        listeners.append(
            {
                "name": "https",
                "protocol": "HTTPS",
                "port": gateway_plan.https_port,
                "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": gateway_plan.tls_secret}]},
                "allowedRoutes": every_namespace,
            }
        )
    spec: dict[str, Any] = {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners}
    if gateway_plan.address:
        spec["infrastructure"] = {"annotations": {METALLB_IPS_ANNOTATION: gateway_plan.address}}
    return {
        "apiVersion": GATEWAY_API_GROUP_VERSION,
        "kind": "Gateway",
        "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
        "spec": spec,
    }


def crd_files(version: str, folder: Path) -> dict[str, bytes]:
    """The release's files in ``folder`` (the artifact store's ``gateway-api/<version>``), each checked against its
    pinned sha256.

    :raises GatewayError: when a file is missing or differs from the upstream release (both digests named).
    """
    files: dict[str, bytes] = {}
    for name, digest in sorted(versions.GATEWAY_API_CRD_SHA256[version].items()):
        path = folder / name
        if path.is_symlink() or not path.is_file():
            raise GatewayError(
                f"{path} is not in the artifact store (or is not a regular file): `pulumi up` downloads Gateway API "
                f"{version} before it installs the CRDs"
            )
        data = path.read_bytes()
        found = hashlib.sha256(data).hexdigest()
        if found != digest:
            raise GatewayError(
                f"{path}: sha256 {found} is not the pinned {digest} of Gateway API {version} (krc/versions.py); the "
                f"file changed after it was stored, so it is not applied. Delete it and run `pulumi up` again to "
                f"download it anew"
            )
        files[name] = data
    return files


def crd_objects(version: str, folder: Path) -> list[dict[str, Any]]:
    """Every object of the release's standard channel from the store, in :func:`crd_object_list`'s order.

    :raises GatewayError: when a file is not the pinned one, or holds other objects than :data:`CRD_OBJECTS` says.
    """
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for file, data in crd_files(version, folder).items():
        # libyaml's loader when PyYAML has it: the pure-Python one takes seconds for these 1.2 MB.
        docs = [doc for doc in yaml.load_all(data, Loader=_SAFE_LOADER) if doc]
        held = tuple((doc.get("kind"), (doc.get("metadata") or {}).get("name")) for doc in docs)
        if held != CRD_OBJECTS[version][file]:
            raise GatewayError(f"{folder / file} holds {held}, not the {CRD_OBJECTS[version][file]} of Gateway API {version}")
        by_key.update({(file, kind, name): doc for doc, (kind, name) in zip(docs, held)})
    return [by_key[(o.file, o.kind, o.name)] for o in crd_object_list(version)]
