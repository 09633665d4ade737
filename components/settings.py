"""Stack settings: parse and validate raw config values into frozen dataclasses (no Pulumi here)."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from . import certsdir, checks, versions
from .imageref import ReferenceError, parse_reference

#: The config namespace: every key is ``kind-registry-cache:<key>``.
NAMESPACE = "kind-registry-cache"

#: Upstream host -> remote URL of its pull-through cache. k8s.gcr.io is frozen since April 2023
#: and redirects to registry.k8s.io, so its cache is filled from registry.k8s.io directly.
DEFAULT_MIRRORS: dict[str, str] = {
    "docker.io": "https://registry-1.docker.io",
    "quay.io": "https://quay.io",
    "ghcr.io": "https://ghcr.io",
    "registry.k8s.io": "https://registry.k8s.io",
    "gcr.io": "https://gcr.io",
    "k8s.gcr.io": "https://registry.k8s.io",
}

DEFAULT_PORT_MAPPINGS: tuple[dict[str, Any], ...] = (
    {"containerPort": 80, "hostPort": 80, "listenAddress": "127.0.0.1", "protocol": "TCP"},
    {"containerPort": 443, "hostPort": 443, "listenAddress": "127.0.0.1", "protocol": "TCP"},
)

DEFAULT_SUBNET = "172.30.0.0/16"
DEFAULT_MTU = 1500
#: No expiry: distribution's expiry can break images that share blobs (distribution #2367, #4659, #4957).
DEFAULT_TTL = "0"

# kind accepts ^[a-z0-9.-]+$; the longest node name kind derives is "<name>-external-load-balancer",
# and container hostnames must stay within 63 characters.
# Every pattern is matched against the whole value (``re.fullmatch``) and is ASCII-only, except Go's
# "µs" unit; control characters are refused before any pattern is tried (checks.text_problem).
_CLUSTER_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,38}[a-z0-9])?", re.ASCII)
_DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}", re.ASCII)
_HOSTNAME = checks.HOSTNAME
# Go's time.ParseDuration units (distribution reads proxy.ttl with it); "µs" is U+00B5, "μs" U+03BC.
_GO_DURATION = re.compile(r"0|([0-9]+(\.[0-9]+)?(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+")
_IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9._/:@-]*[a-z0-9]", re.IGNORECASE | re.ASCII)
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_DOCKER_HOST_SCHEMES = ("unix", "tcp", "ssh", "npipe")
# Pulumi stack names: letters, digits, '_', '.', '-'.
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}", re.ASCII)
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)

#: The default for warmup.parallel: blob downloads at once, across all caches.
DEFAULT_WARMUP_PARALLEL = 4

#: The stack config keys (``kind-registry-cache:<key>``) the program reads.
TOP_KEYS = ("cluster", "network", "cache", "credentials", "docker", "certsDir", "warmup", "addons")
CLUSTER_KEYS = ("name", "controlPlanes", "workers", "nodeImage", "portMappings")
PORT_MAPPING_KEYS = ("containerPort", "hostPort", "listenAddress", "protocol")
NETWORK_KEYS = ("name", "subnet", "mtu")
CACHE_KEYS = ("image", "ttl", "hostPortStart", "mirrors", "namePrefix", "useStack")
MIRROR_KEYS = ("remote", "shared")
WARMUP_KEYS = ("enabled", "images", "replace", "parallel", "platform")
CREDENTIAL_KEYS = ("username", "password")
DOCKER_KEYS = ("host",)


class SettingsError(ValueError):
    """One or more stack settings are invalid; ``problems`` lists each with its key and the fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid stack configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n"
            f"{lines}\n"
            f"Fix each with `pulumi config set --path {NAMESPACE}:<key> <value>` "
            f"(or edit Pulumi.<stack>.yaml); nothing was created."
        )


@dataclass(frozen=True)
class PortMapping:
    """A host port of the first control-plane node (kind ``extraPortMappings``)."""

    container_port: int
    host_port: int
    listen_address: str = "127.0.0.1"
    protocol: str = "TCP"


@dataclass(frozen=True)
class ClusterSettings:
    """The kind cluster's topology."""

    name: str
    control_planes: int = 1
    workers: int = 0
    node_image: str = versions.NODE_IMAGE
    port_mappings: tuple[PortMapping, ...] = ()


@dataclass(frozen=True)
class NetworkSettings:
    """The docker network kind's nodes and the caches share."""

    name: str = "kind"
    subnet: ipaddress.IPv4Network = ipaddress.IPv4Network(DEFAULT_SUBNET)
    mtu: int = DEFAULT_MTU

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The bridge's own address: the subnet's first host, as Docker picks by default."""
        return self.subnet.network_address + 1


@dataclass(frozen=True)
class Mirror:
    """One upstream registry and the pull-through cache nodes use for it: a local one, or a shared one."""

    host: str
    #: The real upstream: a local cache's remote, and hosts.toml's ``server`` (the fallback) either way.
    remote: str
    has_credentials: bool = False
    #: URL of an existing pull-through cache (Harbor, zot, distribution on a shared host, another stack's
    #: cache): nodes pull through it and no local container or volume is created for this upstream.
    shared: str | None = None
    #: The container behind ``shared`` when it runs on this Docker engine (``cache.useStack``).
    shared_container: str | None = None

    @property
    def is_local(self) -> bool:
        """Whether this program runs the cache (a container and a volume) for this upstream."""
        return self.shared is None

    @property
    def slug(self) -> str:
        """The host as a docker-name-safe suffix: ``registry.k8s.io`` -> ``registry-k8s-io``."""
        return re.sub(r"[^a-z0-9]+", "-", self.host.lower()).strip("-")


@dataclass(frozen=True)
class CacheSettings:
    """The pull-through caches: one registry container and volume per mirror."""

    name_prefix: str
    image: str = versions.REGISTRY_IMAGE
    ttl: str = DEFAULT_TTL
    host_port_start: int = 0
    mirrors: tuple[Mirror, ...] = ()
    #: Another stack whose caches every mirror uses (``cache.useStack``); ``None`` for this stack's own.
    use_stack: str | None = None

    @property
    def local_mirrors(self) -> tuple[Mirror, ...]:
        """The mirrors this stack runs a cache container and volume for."""
        return tuple(m for m in self.mirrors if m.is_local)

    def container_name(self, mirror: Mirror) -> str:
        """The cache container's name, which nodes resolve through Docker's embedded DNS."""
        return f"{self.name_prefix}-{mirror.slug}"

    def volume_name(self, mirror: Mirror) -> str:
        """The docker volume holding the cache's data; it outlives ``pulumi destroy``."""
        return f"{self.name_prefix}-{mirror.slug}"

    def host_port(self, mirror: Mirror) -> int | None:
        """The 127.0.0.1 port the cache's registry API is published on, if publishing is on."""
        if not self.host_port_start or not mirror.is_local:
            return None
        return self.host_port_start + self.local_mirrors.index(mirror)


@dataclass(frozen=True)
class WarmupSettings:
    """Pulling images through the caches while the cluster is created, so nodes find them cached."""

    enabled: bool = True
    #: Extra images (the team's workloads), added to the enabled add-ons' images.
    images: tuple[str, ...] = ()
    #: Warm only ``images``, not the add-ons' images.
    replace: bool = False
    #: Blob downloads at once, across all caches.
    parallel: int = DEFAULT_WARMUP_PARALLEL
    #: ``os/arch[/variant]`` picked from multi-platform images; ``None`` for the Docker engine's own.
    platform: str | None = None


@dataclass(frozen=True)
class DockerSettings:
    """Which Docker engine to use; ``None`` means what the Docker CLI uses."""

    host: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything one stack configures."""

    project: str
    stack: str
    cluster: ClusterSettings
    network: NetworkSettings
    cache: CacheSettings
    docker: DockerSettings = field(default_factory=DockerSettings)
    certs_dir: str = ""
    warmup: WarmupSettings = field(default_factory=WarmupSettings)
    #: ``certs_dir`` is the stack's default folder (where earlier versions wrote an unnamed marker).
    certs_dir_is_default: bool = False
    #: The stack's own folder, ``~/.kind-registry-cache/<stack>``: the cluster's record lives there.
    state_dir: str = ""

    @property
    def owner(self) -> str:
        """``<project>/<stack>``: what this stack's resources and host files are labelled with."""
        return f"{self.project}/{self.stack}"


class _Problems:
    """Collects every problem so one run reports them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{NAMESPACE}:{key}: {message}")

    def mapping(self, key: str, value: Any, allowed: tuple[str, ...], *, secret: bool = False) -> Mapping[str, Any]:
        """Return ``value`` as a mapping with only ``allowed`` keys, reporting anything else.

        :param secret: the value may hold a credential: describe it by its type, never show it.
        """
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            got = type(value).__name__ if secret else _show(value)
            self.add(key, f"must be an object with keys {', '.join(allowed)}; got {got}")
            return {}
        for unknown in sorted(set(value) - set(allowed), key=str):
            self.add(f"{key}.{_show_key(unknown)}", f"unknown key{did_you_mean(unknown, allowed)}; allowed keys: {', '.join(allowed)}")
        return value

    def integer(self, key: str, value: Any, *, low: int, high: int) -> int | None:
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            value = int(value)  # `pulumi config set --path` stores numbers given on the CLI as text
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(key, f"must be an integer from {low} to {high}; got {_show(value)}")
            return None
        if not low <= value <= high:
            self.add(key, f"must be an integer from {low} to {high}; got {value}")
            return None
        return value

    def text(self, key: str, value: Any, pattern: re.Pattern[str], allowed: str) -> str | None:
        if checks.text_problem(value, pattern) is not None:
            self.add(key, f"must be {allowed}; got {_show(value)}")
            return None
        return value


def did_you_mean(word: Any, allowed: tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the allowed word closest to ``word``, or nothing."""
    close = difflib.get_close_matches(str(word), allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show_key(key: Any) -> str:
    # A key is shown inside a message: escape control characters, keep ordinary spellings readable.
    text = checks.redact(str(key))
    return text if checks.control_character(text) is None else repr(text)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(checks.redact(value))
    return repr(value) if not isinstance(value, (dict, list)) else type(value).__name__


def parse(
    *,
    project: str,
    stack: str,
    home: str,
    cluster: Any = None,
    network: Any = None,
    cache: Any = None,
    credentials: Any = None,
    docker: Any = None,
    certs_dir: Any = None,
    warmup: Any = None,
) -> Settings:
    """Validate raw config values (as read from the stack) and return :class:`Settings`.

    :param project: the Pulumi project name.
    :param stack: the stack name; the default cluster name and resource-name prefix.
    :param home: the user's home directory, for ``~`` in ``certsDir``.
    :param credentials: upstream host -> ``{username, password}``; only its shape is kept here.
    :raises SettingsError: naming every invalid key, what is allowed, and how to fix it.
    """
    problems = _Problems()
    cluster_settings = _parse_cluster(problems, stack, cluster)
    network_settings = _parse_network(problems, network)
    cache_settings = _parse_cache(problems, stack, cache, credentials)
    docker_settings = _parse_docker(problems, docker)
    certs, certs_default = _parse_certs_dir(problems, certs_dir, home, project, stack)
    warmup_settings = _parse_warmup(problems, warmup)
    if problems.items:
        raise SettingsError(problems.items)
    assert cluster_settings and network_settings and cache_settings
    return Settings(
        project=project,
        stack=stack,
        cluster=cluster_settings,
        network=network_settings,
        cache=cache_settings,
        docker=docker_settings,
        certs_dir=certs,
        warmup=warmup_settings,
        certs_dir_is_default=certs_default,
        state_dir=str(PurePosixPath(home) / f".{project}" / stack),
    )


def _parse_cluster(problems: _Problems, stack: str, raw: Any) -> ClusterSettings | None:
    value = problems.mapping("cluster", raw, CLUSTER_KEYS)
    name = value.get("name", stack)
    if checks.text_problem(name, _CLUSTER_NAME) is not None:
        source = "cluster.name" if "name" in value else "cluster.name (default: the stack name)"
        problems.add(
            source.split(" ")[0],
            f"must be 1-40 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit; "
            f"got {_show(name)}" + ("" if "name" in value else " from the stack name: set cluster.name"),
        )
        name = None
    control_planes = problems.integer("cluster.controlPlanes", value.get("controlPlanes", 1), low=1, high=9)
    workers = problems.integer("cluster.workers", value.get("workers", 0), low=0, high=64)
    image = problems.text(
        "cluster.nodeImage",
        value.get("nodeImage", versions.NODE_IMAGE),
        _IMAGE_REF,
        "a kindest/node image reference such as " + repr(versions.NODE_IMAGE.split("@")[0]),
    )
    mappings = _parse_port_mappings(problems, value.get("portMappings", list(DEFAULT_PORT_MAPPINGS)))
    if name is None or control_planes is None or workers is None or image is None or mappings is None:
        return None
    return ClusterSettings(
        name=name, control_planes=control_planes, workers=workers, node_image=image, port_mappings=mappings
    )


def _parse_port_mappings(problems: _Problems, raw: Any) -> tuple[PortMapping, ...] | None:
    if not isinstance(raw, list):
        problems.add("cluster.portMappings", f"must be a list of port mappings; got {_show(raw)}")
        return None
    result: list[PortMapping] = []
    seen: dict[tuple[str, int, str], int] = {}
    ok = True
    for index, item in enumerate(raw):
        key = f"cluster.portMappings[{index}]"
        value = problems.mapping(key, item, PORT_MAPPING_KEYS)
        if not isinstance(item, Mapping):
            ok = False
            continue
        container_port = problems.integer(f"{key}.containerPort", value.get("containerPort"), low=1, high=65535)
        host_port = problems.integer(
            f"{key}.hostPort", value.get("hostPort", value.get("containerPort")), low=1, high=65535
        )
        address = value.get("listenAddress", "127.0.0.1")
        try:
            if checks.text_problem(address) is not None:
                raise ValueError(address)  # ip_address also takes integers, which kind's YAML would not
            address = str(ipaddress.ip_address(address))
        except ValueError:
            problems.add(f"{key}.listenAddress", f"must be an IP address such as 127.0.0.1; got {_show(address)}")
            address = None
        protocol = value.get("protocol", "TCP")
        if not isinstance(protocol, str) or protocol.upper() not in _PROTOCOLS or not protocol.isascii():
            problems.add(f"{key}.protocol", f"must be one of {', '.join(_PROTOCOLS)}; got {_show(protocol)}")
            protocol = None
        if container_port is None or host_port is None or address is None or protocol is None:
            ok = False
            continue
        ident = (address, host_port, protocol.upper())
        if ident in seen:
            problems.add(
                f"{key}.hostPort",
                f"{address}:{host_port}/{protocol.upper()} is already used by cluster.portMappings[{seen[ident]}]",
            )
            ok = False
            continue
        seen[ident] = index
        result.append(PortMapping(container_port, host_port, address, protocol.upper()))
    return tuple(result) if ok else None


def _parse_network(problems: _Problems, raw: Any) -> NetworkSettings | None:
    value = problems.mapping("network", raw, NETWORK_KEYS)
    name = problems.text(
        "network.name",
        value.get("name", "kind"),
        _DOCKER_NAME,
        "a docker network name (letters, digits, '_', '.', '-')",
    )
    subnet_raw = value.get("subnet", DEFAULT_SUBNET)
    subnet: ipaddress.IPv4Network | None = None
    try:
        clean = isinstance(subnet_raw, str) and checks.text_problem(subnet_raw) is None and subnet_raw.isascii()
        subnet = ipaddress.IPv4Network(subnet_raw, strict=True) if clean else None
        if subnet is None:
            raise ValueError
    except ValueError as err:
        detail = ""
        if isinstance(subnet_raw, str) and "has host bits set" in str(err):
            detail = f" (did you mean {ipaddress.IPv4Network(subnet_raw, strict=False)}?)"
        problems.add(
            "network.subnet",
            f"must be an IPv4 network in CIDR form such as {DEFAULT_SUBNET}; got {_show(subnet_raw)}{detail}",
        )
        subnet = None
    if subnet is not None:
        if not subnet.is_private:
            problems.add("network.subnet", f"must be a private range (e.g. 172.16.0.0/12 space); got {subnet}")
            subnet = None
        elif not 8 <= subnet.prefixlen <= 24:
            problems.add(
                "network.subnet",
                f"must have a prefix length from /8 to /24 so nodes, caches and load-balancer addresses fit; got {subnet}",
            )
            subnet = None
    mtu = problems.integer("network.mtu", value.get("mtu", DEFAULT_MTU), low=1280, high=9000)
    if name is None or subnet is None or mtu is None:
        return None
    return NetworkSettings(name=name, subnet=subnet, mtu=mtu)


def normalize_host(host: str) -> str:
    """The canonical spelling of a registry host, as containerd names its certs.d folder."""
    return host.strip().lower().rstrip(".")


def default_name_prefix(stack: str) -> str:
    """The prefix of a stack's cache containers and volumes unless it sets ``cache.namePrefix``."""
    return f"kcr-{stack}"


def _parse_cache(problems: _Problems, stack: str, raw: Any, credentials: Any) -> CacheSettings | None:
    value = problems.mapping("cache", raw, CACHE_KEYS)
    prefix = problems.text(
        "cache.namePrefix",
        value.get("namePrefix", default_name_prefix(stack)),
        _DOCKER_NAME,
        "a docker-name-safe prefix (letters, digits, '_', '.', '-')" + ("" if "namePrefix" in value else " (set cache.namePrefix; the default derives from the stack name)"),
    )
    image = problems.text("cache.image", value.get("image", versions.REGISTRY_IMAGE), _IMAGE_REF, "an image reference such as 'registry:3'")
    ttl = value.get("ttl", DEFAULT_TTL)
    if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl == 0:
        ttl = "0"
    ttl = problems.text("cache.ttl", ttl, _GO_DURATION, "a Go duration such as '168h' or '0' for no expiry")
    use_stack = _parse_use_stack(problems, value.get("useStack"), stack)
    mirrors = _parse_mirrors(problems, value.get("mirrors"))
    if mirrors is not None and use_stack is not None:
        # The other stack's caches are containers on this engine, named as that stack names them.
        other = default_name_prefix(use_stack)
        mirrors = tuple(
            Mirror(m.host, m.remote, shared=_container_url(f"{other}-{m.slug}"), shared_container=f"{other}-{m.slug}")
            if m.is_local
            else m
            for m in mirrors
        )
    shared = {m.host: m.shared for m in mirrors or () if m.shared}
    creds = _parse_credentials(problems, credentials, {m.host for m in mirrors or ()}, shared)
    if mirrors is not None:
        mirrors = tuple(
            Mirror(m.host, m.remote, m.host in creds, shared=m.shared, shared_container=m.shared_container)
            for m in mirrors
        )
    count = len([m for m in mirrors or () if m.is_local])
    start = problems.integer("cache.hostPortStart", value.get("hostPortStart", 0), low=0, high=65535 - max(count, 1) + 1)
    if start is not None and 0 < start < 1024:
        problems.add("cache.hostPortStart", f"must be 0 (do not publish) or from 1024 to {65535 - count + 1}; got {start}")
        start = None
    if prefix is None or image is None or ttl is None or mirrors is None or start is None:
        return None
    return CacheSettings(
        name_prefix=prefix, image=image, ttl=ttl, host_port_start=start, mirrors=mirrors, use_stack=use_stack
    )


def _container_url(container: str) -> str:
    # The same URL mirrors.mirror_url gives a local cache (mirrors imports this module, not the reverse).
    return f"http://{container}:5000"


def _parse_use_stack(problems: _Problems, raw: Any, stack: str) -> str | None:
    if raw in (None, ""):
        return None
    if checks.text_problem(raw, _STACK_NAME) is not None:
        problems.add("cache.useStack", f"must be the name of another stack on this machine, such as 'dev'; got {_show(raw)}")
        return None
    if raw == stack:
        problems.add("cache.useStack", f"names this stack ({stack!r}); remove it to run this stack's own caches")
        return None
    return raw


def _parse_mirrors(problems: _Problems, raw: Any) -> tuple[Mirror, ...] | None:
    """Stack mirrors are merged over :data:`DEFAULT_MIRRORS`; ``null`` or ``false`` removes a default.

    A value is the remote URL of a local cache (``"https://quay.io"`` or ``{remote: ...}``), or
    ``{shared: URL}`` for an existing pull-through cache, optionally with the real upstream as ``remote``.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.add(
            "cache.mirrors", f"must be an object of upstream host -> remote URL or {{shared: URL}}; got {_show(raw)}"
        )
        return None
    merged: dict[str, Mirror | None] = {host: Mirror(host, remote) for host, remote in DEFAULT_MIRRORS.items()}
    spelled: dict[str, str] = {}
    ok = True
    for host_raw, entry in raw.items():
        key = f"cache.mirrors.{_show_key(host_raw)}"
        host = normalize_host(str(host_raw))
        if checks.text_problem(str(host_raw)) is not None or checks.text_problem(host, _HOSTNAME) is not None:
            problems.add(key, "the key must be a registry host such as 'docker.io' or 'registry.example.com:5000'")
            ok = False
            continue
        port_error = checks.port_problem(host)
        if port_error:
            problems.add(key, f"the key {port_error}")
            ok = False
            continue
        if host in spelled:
            problems.add(key, f"names the same upstream as cache.mirrors.{spelled[host]}: keep one of them")
            ok = False
            continue
        spelled[host] = str(host_raw)
        if entry is None or entry is False:
            merged[host] = None
            continue
        mirror = _parse_mirror(problems, key, host, entry)
        if mirror is None:
            ok = False
            continue
        merged[host] = mirror
    if not ok:
        return None
    mirrors = tuple(m for m in merged.values() if m is not None)
    if not mirrors:
        problems.add("cache.mirrors", "removes every upstream; keep at least one mirror")
        return None
    # Container and volume names derive from the host's slug: two hosts with one slug would be one cache.
    by_slug: dict[str, str] = {}
    for mirror in mirrors:
        if mirror.slug in by_slug:
            problems.add(
                "cache.mirrors",
                f"{by_slug[mirror.slug]!r} and {mirror.host!r} would share the cache container and volume "
                f"'<prefix>-{mirror.slug}'; keep one of them (remove the other with null)",
            )
            return None
        by_slug[mirror.slug] = mirror.host
    return mirrors


def _parse_mirror(problems: _Problems, key: str, host: str, entry: Any) -> Mirror | None:
    if isinstance(entry, str):
        error = _remote_url_error(entry)
        if error:
            problems.add(key, error)
            return None
        return Mirror(host, entry.rstrip("/"))
    if not isinstance(entry, Mapping):
        problems.add(
            key,
            "must be the upstream's URL ('https://quay.io'), {remote: URL} or {shared: URL of an existing "
            f"pull-through cache}}; got {_show(entry)}",
        )
        return None
    value = problems.mapping(key, entry, MIRROR_KEYS)
    if set(value) - set(MIRROR_KEYS):
        return None
    shared = value.get("shared")
    if shared is None and "remote" not in value:
        problems.add(key, "needs remote (the upstream a local cache fills from) or shared (an existing cache's URL)")
        return None
    remote = value.get("remote", DEFAULT_MIRRORS.get(host, f"https://{host}"))
    error = _remote_url_error(remote)
    if error:
        problems.add(f"{key}.remote", error)
        return None
    if shared is None:
        return Mirror(host, remote.rstrip("/"))
    error = _shared_url_error(shared)
    if error:
        problems.add(f"{key}.shared", error)
        return None
    return Mirror(host, remote.rstrip("/"), shared=shared.rstrip("/"))


def _remote_url_error(remote: Any) -> str | None:
    example = "an http(s) URL of the upstream registry such as 'https://quay.io'"
    url, problem = checks.parse_url(remote, ("http", "https"))
    if url is None:
        return f"must be {example}; the value {problem}" + ("" if "credentials" in (problem or "") else f": {_show(remote)}") + (
            "; put a login in kind-registry-cache:credentials (`pulumi config set --secret --path ...`)"
            if "credentials" in (problem or "")
            else ""
        )
    if url.parts.path.strip("/") or url.parts.query or url.parts.fragment:
        return (
            f"must be the upstream registry's root URL without a path (a pull-through cache proxies a whole "
            f"registry); got {_show(remote)}"
        )
    return None


def _shared_url_error(shared: Any) -> str | None:
    """A shared cache's URL may have a path (Harbor's ``/v2/<project>``); hosts.toml then sets ``override_path``."""
    example = "'http://cache.team.example:5000' or 'https://harbor.example/v2/dockerhub'"
    url, problem = checks.parse_url(shared, ("http", "https"))
    if url is None:
        if "credentials" in (problem or ""):
            return "must not carry credentials: nodes pull anonymously; give the shared cache its own upstream login"
        return f"must be the http(s) URL of an existing pull-through cache such as {example}; the value {problem}: {_show(shared)}"
    if url.parts.query or url.parts.fragment:
        return f"must not have a query or fragment; got {_show(shared)}"
    return None


def _parse_credentials(problems: _Problems, raw: Any, hosts: set[str], shared: Mapping[str, str]) -> set[str]:
    if raw is None:
        return set()
    if not isinstance(raw, Mapping):
        problems.add("credentials", "must be a secret object of upstream host -> {username, password}")
        return set()
    result: set[str] = set()
    for host_raw, entry in raw.items():
        host = normalize_host(str(host_raw))
        key = f"credentials.{_show_key(host_raw)}"
        if host not in hosts:
            problems.add(key, f"names no configured mirror; configured: {', '.join(sorted(hosts)) or 'none'}")
            continue
        if host in shared:
            problems.add(
                key,
                f"{host} is pulled through the shared cache {shared[host]}, which logs in to the upstream itself; "
                f"remove this login (`pulumi config rm --path '{NAMESPACE}:credentials[\"{host}\"]'`)",
            )
            continue
        value = problems.mapping(key, entry, CREDENTIAL_KEYS, secret=True)
        missing = [k for k in CREDENTIAL_KEYS if not isinstance(value.get(k), str) or not value.get(k)]
        if isinstance(entry, Mapping) and missing:
            problems.add(
                key,
                f"needs a non-empty {' and '.join(missing)}: "
                f"`pulumi config set --secret --path '{NAMESPACE}:credentials[\"{host}\"].{missing[0]}' <value>`",
            )
            continue
        if isinstance(entry, Mapping):
            result.add(host)
    return result


def credentials_for(raw: Any, host: str) -> tuple[str, str] | None:
    """The (username, password) configured for ``host``, already validated by :func:`parse`."""
    if not isinstance(raw, Mapping):
        return None
    for key, entry in raw.items():
        if normalize_host(str(key)) == host and isinstance(entry, Mapping):
            return str(entry["username"]), str(entry["password"])
    return None


def _parse_docker(problems: _Problems, raw: Any) -> DockerSettings:
    value = problems.mapping("docker", raw, DOCKER_KEYS)
    host = value.get("host")
    if host in (None, ""):
        return DockerSettings()
    # ssh://user@host is how Docker names a remote engine; a password never belongs in it.
    if isinstance(host, str) and host.startswith(("unix://", "npipe://")):
        problem = checks.text_problem(host)  # a socket path: no host to check
    else:
        problem = checks.parse_url(host, _DOCKER_HOST_SCHEMES, userinfo="user")[1]
    if problem:
        problems.add(
            "docker.host",
            f"must be a Docker endpoint URL ({', '.join(s + '://' for s in _DOCKER_HOST_SCHEMES)}); "
            f"the value {problem}: {_show(host)}",
        )
        return DockerSettings()
    return DockerSettings(host=host)


def _parse_certs_dir(problems: _Problems, raw: Any, home: str, project: str, stack: str) -> tuple[str, bool]:
    """The certs folder as an absolute path, and whether it is the stack's default one."""
    default, _ = certsdir.resolve(certsdir.default_path(project, stack), home)
    path, problem = certsdir.resolve(certsdir.default_path(project, stack) if raw in (None, "") else raw, home)
    if problem:
        problems.add("certsDir", problem + ("" if raw not in (None, "") else " (the default derives from the stack name: set certsDir)"))
        return "", False
    return path, path == default


def _parse_warmup(problems: _Problems, raw: Any) -> WarmupSettings:
    value = problems.mapping("warmup", raw, WARMUP_KEYS)
    enabled = _boolean(problems, "warmup.enabled", value.get("enabled", True))
    replace = _boolean(problems, "warmup.replace", value.get("replace", False))
    parallel = problems.integer("warmup.parallel", value.get("parallel", DEFAULT_WARMUP_PARALLEL), low=1, high=32)
    images_raw = value.get("images", [])
    images: list[str] = []
    if not isinstance(images_raw, list):
        problems.add("warmup.images", f"must be a list of image references such as 'ghcr.io/acme/api:1.4.2'; got {_show(images_raw)}")
    else:
        for index, image in enumerate(images_raw):
            try:
                ref = parse_reference(image)
            except ReferenceError as error:
                problems.add(f"warmup.images[{index}]", f"{_show(image)} is not an image reference: {error}; write it as 'registry/repository:tag'")
                continue
            if not ref.pinned:
                problems.add(
                    f"warmup.images[{index}]",
                    f"{image!r} has no tag or digest; name the version the cluster runs, e.g. '{image}:1.0.0'",
                )
                continue
            images.append(image)
    platform = value.get("platform")
    if platform is not None and checks.text_problem(platform, _PLATFORM) is not None:
        problems.add("warmup.platform", f"must be os/arch[/variant] such as 'linux/amd64' or 'linux/arm64'; got {_show(platform)}")
        platform = None
    return WarmupSettings(
        enabled=enabled,
        images=tuple(dict.fromkeys(images)),
        replace=replace,
        parallel=parallel or DEFAULT_WARMUP_PARALLEL,
        platform=platform,
    )


def _boolean(problems: _Problems, key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"  # `pulumi config set --path` stores CLI values as text
    problems.add(key, f"must be true or false; got {_show(value)}")
    return False
