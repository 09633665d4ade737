"""``cache``: the pull-through caches and their mirrors (no Pulumi here).

pydantic checks the shape and each value (:class:`CacheConfig`): a mirror is a URL, ``{remote, shared}``
or ``null``/``false`` (a tagged union, so each form gets its own message). Kept hand-written: the URL
checks (:func:`krc.config.checks.parse_url`, which never echoes userinfo and never rewrites the URL that
hosts.toml carries), and what only the whole value shows — merging over :data:`DEFAULT_MIRRORS`, two
spellings of one host, two hosts with one container name, ``hostPortStart`` against the number of caches,
``useStack`` against this stack (:func:`build`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Discriminator, Tag, WithJsonSchema, model_validator

from krc import versions

from . import checks, goduration
from .base import ConfigModel
from .errors import NAMESPACE, fail, problem, show, show_key
from .fields import short_repository, Integer, Text, text_check

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
#: No expiry: distribution's expiry can break images that share blobs (distribution #2367, #4659, #4957).
DEFAULT_TTL = "0"

# Go's time.ParseDuration syntax, not negative (distribution v3 reads proxy.ttl with it); "µs" is U+00B5,
# "μs" U+03BC. Its range is checked with krc.config.goduration (v3 refuses 2562048h: exit 1).
GO_DURATION = re.compile(r"\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)")
IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9._/:@-]*[a-z0-9]", re.IGNORECASE | re.ASCII)
DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}", re.ASCII)
#: The default prefix, ``kcr-<stack>``: any length.
DEFAULT_PREFIX = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", re.ASCII)
# Pulumi stack names: letters, digits, '_', '.', '-'.
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}", re.ASCII)
NAME_PREFIX_ALLOWED = "a docker-name-safe prefix (letters, digits, '_', '.', '-')"
#: A DNS label (RFC 1123): what a cache's container name must be for nodes to resolve it through Docker's
#: embedded DNS (hosts.toml names the cache ``http://<container>:5000``). Go's resolver refuses a label of over
#: 63 characters (go1.26 src/net/dnsclient.go, isDomainName), and a name with '.' is several labels.
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
#: A docker volume is a folder named after it (/var/lib/docker/volumes/<name>): NAME_MAX is 255 bytes.
VOLUME_NAME_MAX = 255


def _short_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:6]


def dns_label(name: str) -> str:
    """``name`` itself when it is a DNS label already; else a deterministic one that always resolves.

    Lower-cased, every run of other characters ('_', '.') made one '-', cut to 56 characters and followed by
    '-' and six hex digits of the SHA-256 of ``name``: ``kcr-Feature_X-docker-io`` ->
    ``kcr-feature-x-docker-io-<hash>``. The hash keeps two names that shorten alike apart, and the same name
    always gives the same label (the container keeps its name from one ``up`` to the next).
    """
    if DNS_LABEL.fullmatch(name):
        return name
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:56].rstrip("-")
    return f"{base or 'kcr'}-{_short_hash(name)}"


def volume_name_for(name: str) -> str:
    """``name`` when Docker can name a volume so (it always is below 256 characters); else shortened with a hash."""
    if len(name) <= VOLUME_NAME_MAX:
        return name
    return f"{name[:VOLUME_NAME_MAX - 7]}-{_short_hash(name)}"


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
        """The cache container's name, which nodes resolve through Docker's embedded DNS: always a DNS label
        (``<namePrefix>-<slug>``, or that name shortened by :func:`dns_label` when it is not one)."""
        return dns_label(f"{self.name_prefix}-{mirror.slug}")

    def volume_name(self, mirror: Mirror) -> str:
        """The docker volume holding the cache's data; it outlives ``pulumi destroy``. Never resolved by DNS, so
        it stays ``<namePrefix>-<slug>`` (shortened only past Docker's limit): a renamed container keeps its cache."""
        return volume_name_for(f"{self.name_prefix}-{mirror.slug}")

    def host_port(self, mirror: Mirror) -> int | None:
        """The 127.0.0.1 port the cache's registry API is published on, if publishing is on."""
        if not self.host_port_start or not mirror.is_local:
            return None
        return self.host_port_start + self.local_mirrors.index(mirror)


def normalize_host(host: str) -> str:
    """The canonical spelling of a registry host, as containerd names its certs.d folder."""
    return host.strip().lower().rstrip(".")


def default_name_prefix(stack: str) -> str:
    """The prefix of a stack's cache containers and volumes unless it sets ``cache.namePrefix``."""
    return f"kcr-{stack}"


def _remote_url(remote: Any) -> str:
    example = "an http(s) URL of the upstream registry such as 'https://quay.io'"
    url, why = checks.parse_url(remote, ("http", "https"))
    if url is None:
        if "credentials" in (why or ""):
            raise fail(
                f"must be {example}; the value {why}; put a login in {NAMESPACE}:credentials "
                "(`pulumi config set --secret --path ...`)"
            )
        raise fail(f"must be {example}; the value {why}: {show(remote)}")
    if url.parts.path.strip("/") or url.parts.query or url.parts.fragment:
        raise fail(
            "must be the upstream registry's root URL without a path (a pull-through cache proxies a whole "
            f"registry); got {show(remote)}"
        )
    return remote


def _shared_url(shared: Any) -> str:
    """A shared cache's URL may have a path (Harbor's ``/v2/<project>``); hosts.toml then sets ``override_path``."""
    example = "'http://cache.team.example:5000' or 'https://harbor.example/v2/dockerhub'"
    url, why = checks.parse_url(shared, ("http", "https"))
    if url is None:
        if "credentials" in (why or ""):
            raise fail("must not carry credentials: nodes pull anonymously; give the shared cache its own upstream login")
        raise fail(f"must be the http(s) URL of an existing pull-through cache such as {example}; the value {why}: {show(shared)}")
    if url.parts.query or url.parts.fragment:
        raise fail(f"must not have a query or fragment; got {show(shared)}")
    return shared


_URL_SCHEMA = {"type": "string", "pattern": "^https?://[^/@\\s]+/?$"}
RemoteUrl = Annotated[str, BeforeValidator(_remote_url), WithJsonSchema(_URL_SCHEMA | {"format": "uri"})]
SharedUrl = Annotated[str, BeforeValidator(_shared_url), WithJsonSchema({"type": "string", "format": "uri", "pattern": "^https?://[^@\\s]+$"})]


def _mirror_host(host: Any) -> str:
    if (
        not isinstance(host, str)
        or checks.text_problem(host) is not None
        or checks.text_problem(normalize_host(host), checks.HOSTNAME) is not None
        or not checks.go_resolvable(normalize_host(host))
    ):
        raise fail(
            "the key must be a registry host such as 'docker.io' or 'registry.example.com:5000' (a name needs a "
            "letter: Go's resolver looks up no name of digits and dots alone)"
        )
    why = checks.port_problem(normalize_host(host))
    if why:
        raise fail(f"the key {why}")
    return host


class MirrorObject(ConfigModel):
    """A mirror as an object: a local cache filled from ``remote``, or an existing cache at ``shared``."""

    remote: RemoteUrl | None = None
    """The upstream registry's root URL (default: the built-in one, else https://<host>)."""
    shared: SharedUrl | None = None
    """The URL of an existing pull-through cache (no local container); a path gives override_path."""

    @model_validator(mode="after")
    def _one_of(self) -> MirrorObject:
        if self.remote is None and self.shared is None:
            raise fail("needs remote (the upstream a local cache fills from) or shared (an existing cache's URL)")
        return self


def _mirror_form(value: Any) -> str:
    if isinstance(value, str):
        return "url"
    if value is None or value is False:
        return "remove"
    return "object" if isinstance(value, Mapping) else "invalid"


def _invalid_mirror(value: Any) -> Any:
    raise fail(
        "must be the upstream's URL ('https://quay.io'), {remote: URL} or {shared: URL of an existing "
        f"pull-through cache}}; got {show(value)}"
    )


MirrorValue = Annotated[
    Union[
        Annotated[RemoteUrl, Tag("url")],
        Annotated[Literal[False] | None, Tag("remove")],
        Annotated[MirrorObject, Tag("object")],
        Annotated[Any, BeforeValidator(_invalid_mirror), WithJsonSchema({"not": {}}), Tag("invalid")],
    ],
    Discriminator(_mirror_form),
]
MirrorHost = Annotated[str, BeforeValidator(_mirror_host)]


def _use_stack(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return text_check(STACK_NAME, "the name of another stack on this machine, such as 'dev'")(value)


def _ttl(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return "0"
    text = text_check(GO_DURATION, "a Go duration such as '168h' or '0' for no expiry")(value)
    try:
        goduration.parse(text)
    except ValueError:
        # registry v3 refuses it at start ("configuration error", exit 1): tests/integration/test_real_versions.py
        raise fail(f"must be at most 2562047h (Go's longest duration); got {show(text)}") from None
    return text


class CacheConfig(ConfigModel):
    """The pull-through caches."""

    image: Annotated[Text(IMAGE_REF, "an image reference such as 'registry:3'", schema_pattern=r"[a-zA-Z0-9][a-zA-Z0-9._/:@-]*[a-zA-Z0-9]"), AfterValidator(short_repository)] = versions.REGISTRY_IMAGE
    """The registry image of every local cache."""
    ttl: Annotated[str, BeforeValidator(_ttl), WithJsonSchema({"type": "string", "pattern": f"^(?:{GO_DURATION.pattern})$"})] = DEFAULT_TTL
    """How long a cached blob lives, as a Go duration; "0" never expires."""
    host_port_start: Integer(0, 65535) = 0
    """Publish cache N on 127.0.0.1:hostPortStart+N (1024 or above); 0 does not publish."""
    mirrors: dict[MirrorHost, MirrorValue] = {}
    """Upstream host -> remote URL, {remote}, {shared, remote}, or null to remove a default."""
    name_prefix: Text(DOCKER_NAME, NAME_PREFIX_ALLOWED) | None = None
    """Prefix of cache container and volume names (default: kcr-<stack>)."""
    use_stack: Annotated[str | None, BeforeValidator(_use_stack), WithJsonSchema({"type": "string", "pattern": f"^{STACK_NAME.pattern}$"})] = None
    """Another stack on this machine whose caches every mirror uses (no local caches)."""


def container_url(container: str) -> str:
    # The same URL mirrors.mirror_url gives a local cache (mirrors imports this module, not the reverse).
    return f"http://{container}:5000"


def merged_mirrors(config: CacheConfig) -> tuple[tuple[Mirror, ...] | None, list[str]]:
    """The stack's mirrors merged over :data:`DEFAULT_MIRRORS`; ``null``/``false`` removes a default."""
    problems: list[str] = []
    merged: dict[str, Mirror | None] = {host: Mirror(host, remote) for host, remote in DEFAULT_MIRRORS.items()}
    spelled: dict[str, str] = {}
    for host_raw, entry in config.mirrors.items():
        key = f"cache.mirrors.{show_key(host_raw)}"
        host = normalize_host(host_raw)
        if host in spelled:
            problems.append(problem(key, f"names the same upstream as cache.mirrors.{spelled[host]}: keep one of them"))
            continue
        spelled[host] = host_raw
        if entry is None or entry is False:
            merged[host] = None
        elif isinstance(entry, str):
            merged[host] = Mirror(host, entry.rstrip("/"))
        else:
            remote = (entry.remote or DEFAULT_MIRRORS.get(host, f"https://{host}")).rstrip("/")
            merged[host] = Mirror(host, remote, shared=entry.shared.rstrip("/") if entry.shared else None)
    if problems:
        return None, problems
    mirrors = tuple(m for m in merged.values() if m is not None)
    if not mirrors:
        return None, [problem("cache.mirrors", "removes every upstream; keep at least one mirror")]
    # Container and volume names derive from the host's slug: two hosts with one slug would be one cache.
    by_slug: dict[str, str] = {}
    for mirror in mirrors:
        if mirror.slug in by_slug:
            return None, [
                problem(
                    "cache.mirrors",
                    f"{by_slug[mirror.slug]!r} and {mirror.host!r} would share the cache container and volume "
                    f"'<prefix>-{mirror.slug}'; keep one of them (remove the other with null)",
                )
            ]
        by_slug[mirror.slug] = mirror.host
    return mirrors, []


def build(config: CacheConfig, stack: str) -> tuple[CacheSettings | None, list[str]]:
    """The cache settings (``has_credentials`` is set afterwards by :mod:`krc.config.credentials`)."""
    problems: list[str] = []
    prefix = config.name_prefix if config.name_prefix is not None else default_name_prefix(stack)
    # The default from a long stack name (a CI branch) is fine: container names are made DNS labels
    # (dns_label) and volume names shortened (volume_name_for) whatever the prefix's length.
    grammar = DOCKER_NAME if config.name_prefix is not None else DEFAULT_PREFIX
    if checks.text_problem(prefix, grammar) is not None:
        problems.append(problem("cache.namePrefix", f"must be {NAME_PREFIX_ALLOWED} (set cache.namePrefix; the default derives from the stack name); got {show(prefix)}"))
    use_stack = config.use_stack
    if use_stack is not None and use_stack == stack:
        problems.append(problem("cache.useStack", f"names this stack ({stack!r}); remove it to run this stack's own caches"))
        use_stack = None
    mirrors, mirror_problems = merged_mirrors(config)
    problems += mirror_problems
    if mirrors is not None and use_stack is not None:
        # The other stack's caches are containers on this engine, named as that stack names them.
        other = default_name_prefix(use_stack)
        mirrors = tuple(
            Mirror(
                m.host,
                m.remote,
                shared=container_url(dns_label(f"{other}-{m.slug}")),
                shared_container=dns_label(f"{other}-{m.slug}"),
            )
            if m.is_local
            else m
            for m in mirrors
        )
    count = len([m for m in mirrors or () if m.is_local])
    start, high = config.host_port_start, 65535 - max(count, 1) + 1
    if start > high:
        problems.append(problem("cache.hostPortStart", f"must be an integer from 0 to {high}; got {start}"))
    elif 0 < start < 1024:
        problems.append(problem("cache.hostPortStart", f"must be 0 (do not publish) or from 1024 to {65535 - count + 1}; got {start}"))
    if problems or mirrors is None:
        return None, problems
    return CacheSettings(prefix, config.image, config.ttl, start, mirrors, config.use_stack), []
