"""The stack configuration model on pydantic v2 (pure: nothing here imports Pulumi).

``parse`` and ``addons.parse`` validate the raw values read from the stack into frozen settings;
``StackConfig`` is the model of ``Pulumi.<stack>.yaml``'s ``config:`` block, from which
``python -m krc.config.schema`` writes ``schema/stack-config.json``. Every problem reads
``kind-registry-cache:<key>: what is allowed; the fix`` (:mod:`krc.config.errors`).
"""

from __future__ import annotations

from krc.versions import NODE_IMAGE, REGISTRY_IMAGE  # noqa: F401

from . import addons, checks, localregistry  # noqa: F401
from . import cache as cache_models
from . import cluster as cluster_models
from . import credentials as credential_models
from . import docker as docker_models
from . import network as network_models
from . import warmup as warmup_models
from .addons import AddonSettings, CiliumSettings, IngressNginxSettings, MetalLBSettings
from .cache import (
    DEFAULT_MIRRORS,
    DEFAULT_TTL,
    CacheSettings,
    Mirror,
    container_url,
    default_name_prefix,
    normalize_host,
)
from .cluster import DEFAULT_PORT_MAPPINGS, ClusterSettings, PortMapping
from .credentials import credentials_for
from .docker import DockerSettings
from .errors import NAMESPACE, SettingsError, did_you_mean
from .gateway import GatewayApiSettings
from .localregistry import LOCAL_REGISTRY_KEYS, LocalRegistrySettings
from .network import DEFAULT_MTU, DEFAULT_SUBNET, NetworkSettings
from .settings import TOP_KEYS, Settings, StackConfig, parse
from .warmup import DEFAULT_WARMUP_PARALLEL, WarmupSettings

from .errors import allowed_keys as _allowed_keys

# The keys of each part, as the stack spells them (derived from the models).
CLUSTER_KEYS = _allowed_keys(cluster_models.ClusterConfig)
PORT_MAPPING_KEYS = _allowed_keys(cluster_models.PortMappingConfig)
NETWORK_KEYS = _allowed_keys(network_models.NetworkConfig)
CACHE_KEYS = _allowed_keys(cache_models.CacheConfig)
MIRROR_KEYS = _allowed_keys(cache_models.MirrorObject)
WARMUP_KEYS = _allowed_keys(warmup_models.WarmupConfig)
CREDENTIAL_KEYS = _allowed_keys(credential_models.CredentialConfig)
DOCKER_KEYS = _allowed_keys(docker_models.DockerConfig)

__all__ = [
    "CLUSTER_KEYS", "PORT_MAPPING_KEYS", "NETWORK_KEYS", "CACHE_KEYS", "MIRROR_KEYS", "WARMUP_KEYS", "CREDENTIAL_KEYS",
    "DOCKER_KEYS", "LOCAL_REGISTRY_KEYS", "LocalRegistrySettings",
    "DEFAULT_MIRRORS", "DEFAULT_MTU", "DEFAULT_PORT_MAPPINGS", "DEFAULT_SUBNET", "DEFAULT_TTL", "DEFAULT_WARMUP_PARALLEL",
    "NAMESPACE", "TOP_KEYS", "AddonSettings", "CacheSettings", "CiliumSettings", "ClusterSettings", "DockerSettings",
    "GatewayApiSettings", "IngressNginxSettings", "MetalLBSettings", "Mirror", "NetworkSettings", "PortMapping",
    "Settings", "SettingsError", "StackConfig", "WarmupSettings", "container_url", "credentials_for",
    "default_name_prefix", "did_you_mean", "normalize_host", "parse",
]  # fmt: skip
