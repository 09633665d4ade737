"""The ``addons`` setting: parse and validate it into frozen dataclasses (no Pulumi here)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import addon_values, checks, gateway, versions
from .addon_values import PoolRange
from .gateway import GatewayApiSettings
from .settings import SettingsError, _boolean, _Problems, _show

ADDON_KEYS = ("cilium", "metallb", "ingressNginx", "gatewayApi")
CILIUM_KEYS = ("enabled", "version", "repository", "hubble", "values")
METALLB_KEYS = ("enabled", "version", "repository", "range", "frr", "values")
INGRESS_NGINX_KEYS = ("enabled", "version", "repository", "values")

# An exact SemVer chart version: a stack installs what it pins, never "the newest 1.20".
_CHART_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", re.ASCII)
_REPOSITORY_SCHEMES = ("https", "http", "oci")


@dataclass(frozen=True)
class CiliumSettings:
    """Cilium as the CNI, replacing kube-proxy."""

    enabled: bool = True
    version: str = versions.CILIUM_CHART
    repository: str = versions.CILIUM_REPOSITORY
    #: Run Hubble relay.
    hubble: bool = False
    #: Helm values merged over the program's.
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetalLBSettings:
    """MetalLB in L2 mode with one address pool on the kind network."""

    enabled: bool = True
    version: str = versions.METALLB_CHART
    repository: str = versions.METALLB_REPOSITORY
    #: LoadBalancer addresses; ``None`` only when the network settings were invalid.
    range: PoolRange | None = None
    #: Keep the frr-k8s BGP backend.
    frr: bool = False
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngressNginxSettings:
    """ingress-nginx on the host ports of the first control plane (retired upstream)."""

    enabled: bool = True
    version: str = versions.INGRESS_NGINX_CHART
    repository: str = versions.INGRESS_NGINX_REPOSITORY
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AddonSettings:
    """The add-ons installed on the cluster, in install order."""

    cilium: CiliumSettings = field(default_factory=CiliumSettings)
    metallb: MetalLBSettings = field(default_factory=MetalLBSettings)
    ingress_nginx: IngressNginxSettings = field(default_factory=IngressNginxSettings)
    #: Gateway API CRDs before Cilium, Cilium's Gateway controller, one shared Gateway (components/gateway.py).
    gateway_api: GatewayApiSettings = field(default_factory=GatewayApiSettings)

    @property
    def any_enabled(self) -> bool:
        return self.cilium.enabled or self.metallb.enabled or self.ingress_nginx.enabled


def parse(raw: Any, *, subnet: ipaddress.IPv4Network | None) -> AddonSettings:
    """Validate the raw ``addons`` value and return :class:`AddonSettings`; every add-on defaults to on.

    :param subnet: the kind network's subnet, which holds MetalLB's range; ``None`` when the network
        settings are invalid (their problem is reported by :func:`settings.parse`), which skips that check.
    :raises SettingsError: naming every invalid key, what is allowed, and how to fix it.
    """
    problems = _Problems()
    value = problems.mapping("addons", raw, ADDON_KEYS)
    cilium = _parse_cilium(problems, value.get("cilium"))
    metallb = _parse_metallb(problems, value.get("metallb"), subnet)
    ingress = _parse_ingress_nginx(problems, value.get("ingressNginx"))
    gateway_api = gateway.parse_settings(problems, value.get("gatewayApi"))
    gateway.cross_check(
        problems,
        gateway_api,
        cilium_enabled=cilium.enabled,
        cilium_values=cilium.values,
        metallb_enabled=metallb.enabled,
    )
    if problems.items:
        raise SettingsError(problems.items)
    return AddonSettings(cilium=cilium, metallb=metallb, ingress_nginx=ingress, gateway_api=gateway_api)


def _parse_cilium(problems: _Problems, raw: Any) -> CiliumSettings:
    key = "addons.cilium"
    value = problems.mapping(key, raw, CILIUM_KEYS)
    return CiliumSettings(
        enabled=_boolean(problems, f"{key}.enabled", value.get("enabled", True)),
        version=_version(problems, f"{key}.version", value.get("version", versions.CILIUM_CHART)),
        repository=_repository(problems, f"{key}.repository", value.get("repository", versions.CILIUM_REPOSITORY)),
        hubble=_boolean(problems, f"{key}.hubble", value.get("hubble", False)),
        values=_values(problems, f"{key}.values", value.get("values"), addon_values.CILIUM_CHART),
    )


def _parse_metallb(problems: _Problems, raw: Any, subnet: ipaddress.IPv4Network | None) -> MetalLBSettings:
    key = "addons.metallb"
    value = problems.mapping(key, raw, METALLB_KEYS)
    return MetalLBSettings(
        enabled=_boolean(problems, f"{key}.enabled", value.get("enabled", True)),
        version=_version(problems, f"{key}.version", value.get("version", versions.METALLB_CHART)),
        repository=_repository(problems, f"{key}.repository", value.get("repository", versions.METALLB_REPOSITORY)),
        range=_range(problems, f"{key}.range", value.get("range"), subnet),
        frr=_boolean(problems, f"{key}.frr", value.get("frr", False)),
        values=_values(problems, f"{key}.values", value.get("values"), addon_values.METALLB_CHART),
    )


def _parse_ingress_nginx(problems: _Problems, raw: Any) -> IngressNginxSettings:
    key = "addons.ingressNginx"
    value = problems.mapping(key, raw, INGRESS_NGINX_KEYS)
    return IngressNginxSettings(
        enabled=_boolean(problems, f"{key}.enabled", value.get("enabled", True)),
        version=_version(problems, f"{key}.version", value.get("version", versions.INGRESS_NGINX_CHART)),
        repository=_repository(
            problems, f"{key}.repository", value.get("repository", versions.INGRESS_NGINX_REPOSITORY)
        ),
        values=_values(problems, f"{key}.values", value.get("values"), addon_values.INGRESS_NGINX_CHART),
    )


def _version(problems: _Problems, key: str, value: Any) -> str:
    if checks.text_problem(value, _CHART_VERSION) is None:
        return value
    hint = " (without the leading 'v')" if isinstance(value, str) and value.startswith("v") else ""
    problems.add(key, f"must be an exact chart version such as '1.2.3'{hint}; got {_show(value)}")
    return ""


def _repository(problems: _Problems, key: str, value: Any) -> str:
    url, problem = checks.parse_url(value, _REPOSITORY_SCHEMES)
    if url is None:
        problems.add(
            key,
            f"must be a Helm repository URL (https://, http://) or an OCI registry path (oci://); "
            f"the value {problem}: {_show(value)}",
        )
        return ""
    return value


def _range(
    problems: _Problems, key: str, value: Any, subnet: ipaddress.IPv4Network | None
) -> PoolRange | None:
    if value in (None, ""):
        return addon_values.default_pool_range(subnet) if subnet is not None else None
    if checks.text_problem(value) is not None:
        problems.add(key, f"must be 'first-last' or a CIDR inside network.subnet; got {_show(value)}")
        return None
    try:
        pool = addon_values.parse_pool_range(value)
    except ValueError as error:
        problems.add(key, f"must be 'first-last' or a CIDR inside network.subnet ({error}); got {_show(value)}")
        return None
    if subnet is not None:
        problem = addon_values.pool_range_problem(subnet, pool)
        if problem:
            problems.add(key, problem)
            return None
    return pool


def _values(problems: _Problems, key: str, value: Any, chart: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(key, f"must be an object of Helm values for the {chart} chart; got {_show(value)}")
        return {}
    for path, why in addon_values.stale_values(chart, value):
        problems.add(f"{key}.{path}", why)
    return dict(value)
