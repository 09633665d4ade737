"""The whole stack configuration: :class:`StackConfig` (what ``Pulumi.<stack>.yaml`` holds) and :func:`parse`.

pydantic validates each top-level key against its model (shape, names, types, ranges; every error at
once); :func:`parse` then runs the checks only the whole configuration shows (defaults derived from the
project and stack names, mirrors merged over the defaults, logins against mirrors, the certs folder
against the home folder) and returns the frozen :class:`Settings` the program uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import Field, ValidationError, WithJsonSchema

from . import cache as cache_module
from . import certsdir, cluster as cluster_module, credentials as credentials_module
from .addons import AddonsConfig
from .base import ConfigModel
from .cache import CacheConfig, CacheSettings
from .cluster import ClusterConfig, ClusterSettings
from .credentials import CREDENTIAL_SCHEMA, SECURE_SCHEMA, CredentialConfig
from .docker import DockerConfig, DockerSettings
from .localregistry import LocalRegistryConfig
from .errors import SettingsError, as_mapping, problem, problems_from
from .network import NetworkConfig, NetworkSettings
from .warmup import WarmupConfig, WarmupSettings


class StackConfig(ConfigModel):
    """The stack configuration: each field is the stack key ``kind-registry-cache:<alias>``."""

    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description='The kind cluster: name, controlPlanes, workers, nodeImage, portMappings.')
    network: NetworkConfig = Field(default_factory=NetworkConfig, description='The docker network of nodes and caches: name, subnet, mtu.')
    cache: CacheConfig = Field(default_factory=CacheConfig, description='The pull-through caches: image, ttl, hostPortStart, namePrefix, mirrors, useStack.')
    credentials: Annotated[
        dict[str, CredentialConfig],
        WithJsonSchema({"anyOf": [{"type": "object", "additionalProperties": CREDENTIAL_SCHEMA}, SECURE_SCHEMA]}),
    ] = {}
    """Upstream logins, host -> {username, password}; set only with --secret."""
    docker: DockerConfig = Field(default_factory=DockerConfig, description='The Docker engine to use: host.')
    certs_dir: str = ""
    """Host folder of one <registry>/hosts.toml per mirror (default ~/.kind-registry-cache/<stack>/certs.d)."""
    warmup: WarmupConfig = Field(default_factory=WarmupConfig, description='Pulling images through the caches while the cluster is created.')
    addons: AddonsConfig = Field(default_factory=AddonsConfig, description='Helm add-ons on the cluster: cilium, metallb, ingressNginx, gatewayApi.')
    local_registry: LocalRegistryConfig = Field(default_factory=LocalRegistryConfig, description='A registry for your own images that the cluster pulls from: enabled, port, name, useStack.')


#: The stack config keys (``kind-registry-cache:<key>``) the program reads.
TOP_KEYS = tuple(f.alias or n for n, f in StackConfig.model_fields.items())


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


def _validate(model: type[ConfigModel], key: str, raw: Any, problems: list[str]) -> Any:
    try:
        return model.model_validate(as_mapping(raw))
    except ValidationError as error:
        problems.extend(problems_from(error, model, prefix=f"{key}."))
        return None


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
    problems: list[str] = []
    cluster_config = _validate(ClusterConfig, "cluster", cluster, problems)
    network_config = _validate(NetworkConfig, "network", network, problems)
    cache_config = _validate(CacheConfig, "cache", cache, problems)
    logins = _credentials(credentials, problems)
    docker_config = _validate(DockerConfig, "docker", docker, problems)
    warmup_config = _validate(WarmupConfig, "warmup", warmup, problems)

    cluster_settings = None
    if cluster_config is not None:
        cluster_settings, found = cluster_module.build(cluster_config, stack)
        problems += found
    cache_settings = None
    if cache_config is not None:
        cache_settings, found = cache_module.build(cache_config, stack)
        problems += found
    if cache_settings is not None and logins is not None:
        cache_settings, found = credentials_module.check(logins, cache_settings)
        problems += found
    certs, certs_default = _certs_dir(certs_dir, home, project, stack, problems)
    if problems:
        raise SettingsError(problems)
    assert cluster_settings and network_config and cache_settings and docker_config and warmup_config
    return Settings(
        project=project,
        stack=stack,
        cluster=cluster_settings,
        network=network_config.settings(),
        cache=cache_settings,
        docker=docker_config.settings(),
        certs_dir=certs,
        warmup=warmup_config.settings(),
        certs_dir_is_default=certs_default,
        state_dir=str(PurePosixPath(home) / f".{project}" / stack),
    )


def _credentials(raw: Any, problems: list[str]) -> Mapping[str, CredentialConfig] | None:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(problem("credentials", "must be a secret object of upstream host -> {username, password}"))
        return None
    found: dict[str, CredentialConfig] = {}
    for host, entry in raw.items():
        try:
            found[str(host)] = CredentialConfig.model_validate(entry)
        except ValidationError as error:
            problems.extend(problems_from(error, CredentialConfig, prefix=f"credentials.{_key(host)}."))
    return found


def _key(host: Any) -> str:
    from .errors import show_key

    return show_key(host)


def _certs_dir(raw: Any, home: str, project: str, stack: str, problems: list[str]) -> tuple[str, bool]:
    """The certs folder as an absolute path, and whether it is the stack's default one."""
    default, _ = certsdir.resolve(certsdir.default_path(project, stack), home)
    path, why = certsdir.resolve(certsdir.default_path(project, stack) if raw in (None, "") else raw, home)
    if why:
        problems.append(problem("certsDir", why + ("" if raw not in (None, "") else " (the default derives from the stack name: set certsDir)")))
        return "", False
    return path, path == default
