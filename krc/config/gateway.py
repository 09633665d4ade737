"""``addons.gatewayApi``: the Gateway API add-on's setting and its checks against the other add-ons (no Pulumi here).

pydantic checks the shape and each value (:class:`GatewayApiConfig`); the checks that need the other
add-ons (Cilium on, with kube-proxy replacement and its L7 proxy; MetalLB for loadBalancer mode) are
ours (:func:`cross_check`), with the Cilium documentation they come from in ``krc/render/gateway.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from krc import versions

from .base import ConfigModel
from .errors import fail, problem, show
from .fields import Boolean, text_check

GATEWAY_API_KEYS = ("enabled", "version", "mode", "tlsSecret")
AUTO = "auto"
LOAD_BALANCER = "loadBalancer"
HOST_NETWORK = "hostNetwork"
MODES = (AUTO, LOAD_BALANCER, HOST_NETWORK)
#: The namespace of the shared Gateway and of an HTTPS listener's TLS secret.
GATEWAY_NAMESPACE = "gateway"
#: Gateway API releases whose CRDs are pinned by sha256 (``krc/versions.py`` ``GATEWAY_API_CRD_SHA256``): the pinned Cilium's.
SUPPORTED_VERSIONS = (versions.GATEWAY_API_VERSION,)
# A Kubernetes Secret name (DNS subdomain).
SECRET_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", re.ASCII)


@dataclass(frozen=True)
class GatewayApiSettings:
    """The ``addons.gatewayApi`` setting: Gateway API CRDs, Cilium's Gateway controller and one shared Gateway."""

    enabled: bool = False
    #: The Gateway API release whose CRDs are installed; only what the pinned Cilium supports.
    version: str = versions.GATEWAY_API_VERSION
    #: ``auto`` (from the Docker engine), ``loadBalancer`` (MetalLB address) or ``hostNetwork`` (published node ports).
    mode: str = AUTO
    #: A ``kubernetes.io/tls`` Secret in namespace ``gateway``; adds an HTTPS listener.
    tls_secret: str | None = None


def _version(value: Any) -> str:
    if value not in SUPPORTED_VERSIONS:
        raise fail(
            f"Cilium {versions.CILIUM_CHART} supports Gateway API {', '.join(sorted(SUPPORTED_VERSIONS))} (the CRDs this "
            f"program pins by sha256 and checks); got {show(value)}. Remove the key or set it to {versions.GATEWAY_API_VERSION}"
        )
    return value


def _mode(value: Any) -> str:
    if value not in MODES:
        raise fail(
            f"must be one of {', '.join(MODES)} (auto: loadBalancer where the kind network is reachable from this "
            f"machine, i.e. a local Docker Engine on Linux, else hostNetwork); got {show(value)}"
        )
    return value


def _tls_secret(value: Any) -> str | None:
    if value in ("", None):
        return None
    return text_check(
        SECRET_NAME,
        f"the name of a kubernetes.io/tls Secret in namespace {GATEWAY_NAMESPACE} (lower-case letters, digits, '-' and '.')",
    )(value)


class GatewayApiConfig(ConfigModel):
    """Gateway API CRDs, Cilium's Gateway controller and one shared Gateway."""

    enabled: Boolean = False
    """Install the Gateway API (needs Cilium)."""
    version: Annotated[str, BeforeValidator(_version), WithJsonSchema({"type": "string", "enum": list(SUPPORTED_VERSIONS)})] = versions.GATEWAY_API_VERSION
    """The Gateway API release of the CRDs: the one the pinned Cilium supports."""
    mode: Annotated[str, BeforeValidator(_mode), WithJsonSchema({"type": "string", "enum": list(MODES)})] = AUTO
    """auto, loadBalancer (a MetalLB address) or hostNetwork (node ports 8080/8443 published by cluster.portMappings)."""
    tls_secret: Annotated[str | None, BeforeValidator(_tls_secret), WithJsonSchema({"type": "string", "pattern": f"^(?:{SECRET_NAME.pattern})$"})] = None
    """A TLS Secret in namespace gateway; adds HTTPS (default: none)."""

    def settings(self) -> GatewayApiSettings:
        return GatewayApiSettings(self.enabled, self.version, self.mode, self.tls_secret)


assert GATEWAY_API_KEYS == tuple(f.alias for f in GatewayApiConfig.model_fields.values())


class _Collector:
    """The ``problems.add`` interface :func:`cross_check` reports through."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(problem(key, message))


def cross_check(
    problems: Any,
    gateway: GatewayApiSettings,
    *,
    cilium_enabled: bool,
    cilium_values: Mapping[str, Any],
    metallb_enabled: bool,
) -> None:
    """Report (``problems.add(key, message)``) a Gateway the other add-on settings cannot serve: no Cilium,
    Cilium values that turn off what Cilium's Gateway API needs, LoadBalancer mode without MetalLB."""
    if not gateway.enabled:
        return
    key = "addons.gatewayApi.enabled"
    if not cilium_enabled:
        problems.add(
            key,
            "the Gateway is implemented by Cilium, which is off; turn it on (remove addons.cilium.enabled: false) "
            "or set addons.gatewayApi.enabled: false",
        )
        return
    kpr = cilium_values.get("kubeProxyReplacement", True)
    if kpr is not True and str(kpr).lower() != "true":
        problems.add(
            key,
            f"Cilium's Gateway API needs kube-proxy replacement (Cilium 1.20 docs, Gateway API prerequisites), but "
            f"addons.cilium.values.kubeProxyReplacement is {kpr!r}; remove that value (the program sets true)",
        )
    if cilium_values.get("l7Proxy", True) is False:
        problems.add(key, "Cilium's Gateway API runs in its L7 proxy, but addons.cilium.values.l7Proxy is false; remove that value")
    gateway_values = cilium_values.get("gatewayAPI")
    if isinstance(gateway_values, Mapping) and gateway_values.get("enabled") is False:
        problems.add(key, "addons.cilium.values.gatewayAPI.enabled is false; remove that value")
    if gateway.mode == LOAD_BALANCER and not metallb_enabled:
        problems.add(
            "addons.gatewayApi.mode",
            "loadBalancer needs MetalLB to give the Gateway an address, and addons.metallb is off; turn MetalLB on "
            "or set mode: hostNetwork",
        )
