"""``addons``: the Helm add-ons on the cluster, each optional (no Pulumi here).

pydantic checks the shape and each value (:class:`AddonsConfig`: exact SemVer chart versions, chart
repository URLs, booleans); MetalLB's range is checked against the kind network passed in the validation
context. Kept hand-written: stale Helm values (:func:`krc.config.helm.stale_values`, one problem per
value path) and the Gateway's checks against the other add-ons (:func:`krc.config.gateway.cross_check`).
Each add-on is validated on its own, so one run reports every add-on's problems in install order.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, WithJsonSchema

from krc import versions

from . import checks
from .base import ConfigModel
from .errors import SettingsError, allowed_keys, as_mapping, fail, problem, problems_from, show
from .fields import Boolean
from .gateway import GatewayApiConfig, GatewayApiSettings, _Collector, cross_check
from .helm import CILIUM_CHART, INGRESS_NGINX_CHART, METALLB_CHART, PoolRange, default_pool_range, parse_pool_range, pool_range_problem, stale_values

# An exact SemVer chart version: a stack installs what it pins, never "the newest 1.20".
CHART_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", re.ASCII)
REPOSITORY_SCHEMES = ("https", "http", "oci")


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
    #: Gateway API CRDs before Cilium, Cilium's Gateway controller, one shared Gateway (krc/render/gateway.py).
    gateway_api: GatewayApiSettings = field(default_factory=GatewayApiSettings)

    @property
    def any_enabled(self) -> bool:
        return self.cilium.enabled or self.metallb.enabled or self.ingress_nginx.enabled


def _version(value: Any) -> str:
    if checks.text_problem(value, CHART_VERSION) is None:
        return value
    hint = " (without the leading 'v')" if isinstance(value, str) and value.startswith("v") else ""
    raise fail(f"must be an exact chart version such as '1.2.3'{hint}; got {show(value)}")


def _repository(value: Any) -> str:
    url, why = checks.parse_url(value, REPOSITORY_SCHEMES)
    if url is None:
        raise fail(f"must be a Helm repository URL (https://, http://) or an OCI registry path (oci://); the value {why}: {show(value)}")
    return value


def _range(value: Any, info: ValidationInfo) -> PoolRange | None:
    if value in (None, ""):
        return None
    if checks.text_problem(value) is not None:
        raise fail(f"must be 'first-last' or a CIDR inside network.subnet; got {show(value)}")
    try:
        pool = parse_pool_range(value)
    except ValueError as error:
        raise fail(f"must be 'first-last' or a CIDR inside network.subnet ({error}); got {show(value)}") from None
    subnet = (info.context or {}).get("subnet")
    if subnet is not None:
        why = pool_range_problem(subnet, pool)
        if why:
            raise fail(why)
    return pool


def _values(chart: str):
    def check(value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise fail(f"must be an object of Helm values for the {chart} chart; got {show(value)}")
        return dict(value)

    return check


Version = Annotated[str, BeforeValidator(_version), WithJsonSchema({"type": "string", "pattern": f"^{CHART_VERSION.pattern}$"})]
Repository = Annotated[str, BeforeValidator(_repository), WithJsonSchema({"type": "string", "pattern": "^(https?|oci)://"})]
_VALUES_SCHEMA = WithJsonSchema({"type": "object", "description": "Helm values merged over the program's (null removes one)"})


class CiliumConfig(ConfigModel):
    """Cilium as the CNI, replacing kube-proxy."""

    enabled: Boolean = True
    """Install this add-on."""
    version: Version = versions.CILIUM_CHART
    """The exact chart version (default: the pinned one)."""
    repository: Repository = versions.CILIUM_REPOSITORY
    """The Helm repository (https://, http://) or OCI registry path (oci://) of the chart."""
    hubble: Boolean = False
    """Run Hubble relay."""
    values: Annotated[dict[str, Any], BeforeValidator(_values(CILIUM_CHART)), _VALUES_SCHEMA] = {}
    """Helm values merged over the program's (null removes one)."""


class MetalLBConfig(ConfigModel):
    """MetalLB in L2 mode with one address pool on the kind network."""

    enabled: Boolean = True
    """Install this add-on."""
    version: Version = versions.METALLB_CHART
    """The exact chart version (default: the pinned one)."""
    repository: Repository = versions.METALLB_REPOSITORY
    """The Helm repository (https://, http://) or OCI registry path (oci://) of the chart."""
    range: Annotated[
        PoolRange | None,
        BeforeValidator(_range),
        WithJsonSchema({"type": "string", "description": "first-last or a CIDR inside network.subnet (default .255.200-.255.250 of it)"}),
    ] = None
    """LoadBalancer addresses: first-last or a CIDR inside network.subnet (default .255.200-.255.250 of it)."""
    frr: Boolean = False
    """Keep the frr-k8s BGP backend."""
    values: Annotated[dict[str, Any], BeforeValidator(_values(METALLB_CHART)), _VALUES_SCHEMA] = {}
    """Helm values merged over the program's (null removes one)."""


class IngressNginxConfig(ConfigModel):
    """ingress-nginx on the host ports of the first control plane (retired upstream)."""

    enabled: Boolean = True
    """Install this add-on."""
    version: Version = versions.INGRESS_NGINX_CHART
    """The exact chart version (default: the pinned one)."""
    repository: Repository = versions.INGRESS_NGINX_REPOSITORY
    """The Helm repository (https://, http://) or OCI registry path (oci://) of the chart."""
    values: Annotated[dict[str, Any], BeforeValidator(_values(INGRESS_NGINX_CHART)), _VALUES_SCHEMA] = {}
    """Helm values merged over the program's (null removes one)."""


class AddonsConfig(ConfigModel):
    """Helm add-ons on the cluster, each optional."""

    cilium: CiliumConfig = Field(default_factory=CiliumConfig, description='Cilium as the CNI, replacing kube-proxy.')
    metallb: MetalLBConfig = Field(default_factory=MetalLBConfig, description='MetalLB in L2 mode with one address pool on the kind network.')
    ingress_nginx: IngressNginxConfig = Field(default_factory=IngressNginxConfig, description="ingress-nginx on the first control plane's host ports (retired upstream: the last release).")
    gateway_api: GatewayApiConfig = Field(default_factory=GatewayApiConfig, description="Gateway API through Cilium: CRDs, Cilium's Gateway controller, one shared Gateway.")


ADDON_KEYS = allowed_keys(AddonsConfig)
CILIUM_KEYS = allowed_keys(CiliumConfig)
METALLB_KEYS = allowed_keys(MetalLBConfig)
INGRESS_NGINX_KEYS = allowed_keys(IngressNginxConfig)
_MODELS = dict(zip(ADDON_KEYS, (CiliumConfig, MetalLBConfig, IngressNginxConfig, GatewayApiConfig)))
_CHARTS = {"cilium": CILIUM_CHART, "metallb": METALLB_CHART, "ingressNginx": INGRESS_NGINX_CHART}


def parse(raw: Any, *, subnet: ipaddress.IPv4Network | None) -> AddonSettings:
    """Validate the raw ``addons`` value and return :class:`AddonSettings`; every add-on defaults to on.

    :param subnet: the kind network's subnet, which holds MetalLB's range; ``None`` when the network
        settings are invalid (their problem is reported by :func:`krc.config.parse`), which skips that check.
    :raises SettingsError: naming every invalid key, what is allowed, and how to fix it.
    """
    raw = as_mapping(raw)
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        try:
            AddonsConfig.model_validate(raw)
        except ValidationError as error:
            raise SettingsError(problems_from(error, AddonsConfig, prefix="addons.")) from None
    parsed: dict[str, Any] = {}
    for key, model in _MODELS.items():
        value = as_mapping(raw.get(key))
        try:
            parsed[key] = model.model_validate(value, context={"subnet": subnet})
        except ValidationError as error:
            problems += problems_from(error, model, prefix=f"addons.{key}.")
        # Stale values are reported even when another key of the add-on is invalid: all problems at once.
        values = value.get("values") if isinstance(value, Mapping) else None
        if key in _CHARTS and isinstance(values, Mapping):
            problems += [problem(f"addons.{key}.values.{path}", why) for path, why in stale_values(_CHARTS[key], values)]
    unknown = {k: v for k, v in raw.items() if k not in _MODELS}
    if unknown:
        try:
            AddonsConfig.model_validate(unknown)
        except ValidationError as error:
            problems += problems_from(error, AddonsConfig, prefix="addons.")
    settings = _settings(parsed, subnet)
    collector = _Collector()
    cross_check(
        collector,
        settings.gateway_api,
        cilium_enabled=settings.cilium.enabled,
        cilium_values=settings.cilium.values,
        metallb_enabled=settings.metallb.enabled,
    )
    problems += collector.items
    if problems:
        raise SettingsError(problems)
    return settings


def _settings(parsed: dict[str, Any], subnet: ipaddress.IPv4Network | None) -> AddonSettings:
    cilium = parsed.get("cilium", CiliumConfig())
    metallb = parsed.get("metallb", MetalLBConfig())
    ingress = parsed.get("ingressNginx", IngressNginxConfig())
    gateway = parsed.get("gatewayApi", GatewayApiConfig())
    pool = metallb.range if metallb.range is not None else default_pool_range(subnet) if subnet is not None else None
    return AddonSettings(
        cilium=CiliumSettings(cilium.enabled, cilium.version, cilium.repository, cilium.hubble, cilium.values),
        metallb=MetalLBSettings(metallb.enabled, metallb.version, metallb.repository, pool, metallb.frr, metallb.values),
        ingress_nginx=IngressNginxSettings(ingress.enabled, ingress.version, ingress.repository, ingress.values),
        gateway_api=gateway.settings(),
    )
