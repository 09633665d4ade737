"""``localRegistry``: a registry for the user's own images, which the cluster pulls from (no Pulumi here).

pydantic checks the shape and each value (:class:`LocalRegistryConfig`). :func:`parse` adds what only the whole
configuration shows: the container name derived from the stack, ``useStack`` against this stack and against
``port``/``name`` set beside it, and the host port against the caches' published ports, the cluster's port
mappings and a mirror of the same ``localhost:<port>`` name. Whether the port is free on this machine is the
preflight's question (:mod:`krc.preflight.localregistry`), not a setting's.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationError, WithJsonSchema

from .base import ConfigModel
from .cache import CacheSettings
from .cluster import ClusterSettings
from .errors import SettingsError, as_mapping, problem, problems_from
from .fields import Boolean, Integer, Text, text_check

#: The host port of kind's own local-registry recipe (kind v0.32.0 site/static/examples/kind-with-registry.sh:20,
#: ``reg_port='5001'``): 5000 is taken by the AirPlay receiver on macOS. What tutorials and users type.
DEFAULT_PORT = 5001

#: The container's name is its host name on the kind network (nodes' hosts.toml, pods' ``hostFromClusterNetwork``):
#: one DNS label, so lower case, digits and '-', at most 63 characters.
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
NAME_ALLOWED = "a DNS label (1-63 of a-z, 0-9 and '-', starting and ending with a letter or digit)"
# Pulumi stack names: letters, digits, '_', '.', '-' (as cache.useStack).
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}", re.ASCII)


def default_name(stack: str) -> str:
    """The registry container's and volume's name unless ``localRegistry.name`` says otherwise."""
    return f"kcr-{stack}-local-registry"


@dataclass(frozen=True)
class LocalRegistrySettings:
    """A plain registry (no proxy) on the kind network, published on ``127.0.0.1:port``, or another stack's."""

    enabled: bool = True
    #: The host port the user pushes to (``localhost:<port>``); with ``use_stack``, the other stack's decides.
    port: int = DEFAULT_PORT
    #: The container's and volume's name; "" with ``use_stack`` (the preflight finds the other stack's).
    name: str = ""
    #: Another stack on this machine whose local registry this stack's cluster pulls from (it creates none).
    use_stack: str | None = None

    @property
    def own(self) -> bool:
        """Whether this stack runs the registry (a container and a volume)."""
        return self.enabled and self.use_stack is None


def _use_stack(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return text_check(STACK_NAME, "the name of another stack on this machine, such as 'dev'")(value)


class LocalRegistryConfig(ConfigModel):
    """The local registry for your own images."""

    enabled: Boolean = True
    """Run a registry you push your own images to, which the cluster pulls from."""
    port: Integer(1024, 65535) = DEFAULT_PORT
    """Host port on 127.0.0.1: push to localhost:<port>/<image>, name it so in pod specs."""
    name: Text(DNS_LABEL, NAME_ALLOWED) | None = None
    """Container and volume name, its host name on the kind network (default kcr-<stack>-local-registry)."""
    use_stack: Annotated[str | None, BeforeValidator(_use_stack), WithJsonSchema({"type": "string", "pattern": f"^{STACK_NAME.pattern}$"})] = None
    """Another stack on this machine whose local registry this cluster uses (none created here)."""


#: The keys of ``localRegistry``, as the stack spells them.
LOCAL_REGISTRY_KEYS = tuple(field.alias or name for name, field in LocalRegistryConfig.model_fields.items())


@dataclass(frozen=True)
class PortsInUse:
    """What else of this stack's configuration takes a host port (from settings already validated)."""

    #: ``(first, last)`` of the caches' published ports, ``None`` when they publish none.
    cache_ports: tuple[int, int] | None = None
    #: ``(index, listen address, host port, protocol)`` of each cluster port mapping.
    port_mappings: tuple[tuple[int, str, int, str], ...] = ()
    #: Mirrored upstream hosts (``cache.mirrors``' keys, normalized).
    mirror_hosts: tuple[str, ...] = ()
    #: The cache containers' names.
    cache_containers: tuple[str, ...] = ()


def _overlaps_loopback(address: str) -> bool:
    """Whether a listener on ``address`` takes the port on 127.0.0.1 too (itself or a wildcard)."""
    ip = ipaddress.ip_address(address)
    return ip.is_unspecified or ip == ipaddress.IPv4Address("127.0.0.1")


def parse(raw: Any, *, stack: str, used: PortsInUse | None = None) -> LocalRegistrySettings:
    """Validate the raw ``localRegistry`` value and return :class:`LocalRegistrySettings` (on by default).

    :param used: the host ports, hosts and names the rest of the configuration takes; ``None`` when those
        settings are invalid (their problems are reported elsewhere), which skips the checks against them.
    :raises SettingsError: naming every invalid key, what is allowed, and how to fix it.
    """
    try:
        config = LocalRegistryConfig.model_validate(as_mapping(raw))
    except ValidationError as error:
        raise SettingsError(problems_from(error, LocalRegistryConfig, prefix="localRegistry.")) from None
    if not config.enabled:
        return LocalRegistrySettings(enabled=False, port=config.port)
    problems: list[str] = []
    if config.use_stack is not None:
        if config.use_stack == stack:
            raise SettingsError([problem("localRegistry.useStack", f"names this stack ({stack!r}); remove it to run this stack's own local registry")])
        for key in sorted({"port", "name"} & config.model_fields_set):
            problems.append(problem(
                f"localRegistry.{key}",
                f"is the other stack's to choose: with localRegistry.useStack the registry of stack {config.use_stack!r} "
                f"is used as it is; remove localRegistry.{key}",
            ))
        if problems:
            raise SettingsError(problems)
        return LocalRegistrySettings(enabled=True, port=config.port, use_stack=config.use_stack)

    name = config.name or default_name(stack)
    if config.name is None and not DNS_LABEL.fullmatch(name):
        problems.append(problem(
            "localRegistry.name",
            f"the default {name!r} (from the stack name) is not {NAME_ALLOWED}; set localRegistry.name, e.g. "
            f"`pulumi config set --path kind-registry-cache:localRegistry.name {_suggest(stack)}`",
        ))
    if used is not None:
        problems += _collisions(config.port, name, used)
    if problems:
        raise SettingsError(problems)
    return LocalRegistrySettings(enabled=True, port=config.port, name=name)


def _suggest(stack: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", stack.lower())[: 63 - len(default_name(""))].strip("-") or "my"
    return default_name(label)


def _collisions(port: int, name: str, used: PortsInUse) -> list[str]:
    found: list[str] = []
    fix = "pick another, e.g. `pulumi config set --path kind-registry-cache:localRegistry.port <free port>`"
    if used.cache_ports is not None and used.cache_ports[0] <= port <= used.cache_ports[1]:
        first, last = used.cache_ports
        found.append(problem(
            "localRegistry.port",
            f"{port} is also a cache's published port (cache.hostPortStart publishes {first}-{last}); {fix}",
        ))
    for index, address, host_port, protocol in used.port_mappings:
        if host_port == port and protocol == "TCP" and _overlaps_loopback(address):
            found.append(problem(
                "localRegistry.port",
                f"{port} is also cluster.portMappings[{index}]'s host port ({address}:{host_port}); {fix}",
            ))
    if f"localhost:{port}" in used.mirror_hosts:
        found.append(problem(
            "localRegistry.port",
            f"cache.mirrors has an upstream named localhost:{port}, the name the cluster pulls the local registry's "
            f"images by; remove that mirror or {fix}",
        ))
    if name in used.cache_containers:
        found.append(problem(
            "localRegistry.name",
            f"{name!r} is also a cache container's name; set another, e.g. "
            f"`pulumi config set --path kind-registry-cache:localRegistry.name {name}-images`",
        ))
    return found


def ports_in_use(cache: CacheSettings, cluster: ClusterSettings) -> PortsInUse:
    """:class:`PortsInUse` from the validated cache and cluster settings."""
    local = [m for m in cache.mirrors if m.is_local]
    cache_ports = None
    if cache.host_port_start and local:
        cache_ports = (cache.host_port_start, cache.host_port_start + len(local) - 1)
    mappings = tuple(
        (index, m.listen_address, m.host_port, m.protocol) for index, m in enumerate(cluster.port_mappings)
    )
    return PortsInUse(
        cache_ports=cache_ports,
        port_mappings=mappings,
        mirror_hosts=tuple(m.host for m in cache.mirrors),
        cache_containers=tuple(cache.container_name(m) for m in local),
    )

