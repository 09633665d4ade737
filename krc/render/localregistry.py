"""The local registry for the user's own images: its settings, labels, and the KEP-1755 ConfigMap (no Pulumi here).

A plain CNCF distribution registry (no proxy settings): what is pushed stays, nothing goes upstream. It listens on
the same port as the caches inside its container and is published on the host's ``127.0.0.1:<port>``, the address
the developer pushes to (``localhost:<port>/app``); the nodes reach it by its container name through the
``certs.d/localhost:<port>/hosts.toml`` that :func:`krc.render.mirrors.local_registry_entry` writes, so one image
name works on the host and in pod specs (kind v0.32.0 site/content/docs/user/local-registry.md:38-56).
"""

from __future__ import annotations

import yaml

from krc.render import mirrors, registry

#: Docker label on the registry container and volume, next to :data:`registry.LABEL_STACK` (the owner, as on the
#: caches): what it is, so the preflight and ``cachectl registry`` find it and tell it from a cache.
LABEL_ROLE = "kind-registry-cache.role"
ROLE = "local-registry"
#: Docker label with the published host port, read by the preflight of a stack that shares it (``useStack``).
LABEL_PORT = "kind-registry-cache.port"

#: The ConfigMap of KEP-1755 (kubernetes/enhancements keps/sig-cluster-lifecycle/generic/
#: 1755-communicating-a-local-registry/README.md:360-362: name ``local-registry-hosting``, namespace ``kube-public``;
#: ``data`` holds ``localRegistryHosting.v<major>``, whose content is YAML, :365-366).
HOSTING_CONFIGMAP = "local-registry-hosting"
HOSTING_NAMESPACE = "kube-public"
HOSTING_KEY = "localRegistryHosting.v1"
#: What a tool shows when a push to the registry fails (KEP-1755 README.md:451-462, ``Help``): our page on it.
HELP_URL = "https://github.com/kind-registry-cache/kind-registry-cache/blob/main/docs/local-registry.md"


def push_host(port: int) -> str:
    """Where the developer pushes and what pod specs name: ``localhost:<port>``."""
    return f"localhost:{port}"


def cluster_host(container: str) -> str:
    """The registry as seen from pods (``<container>:5000``): kind lets pods resolve names on the kind network
    (kind v0.32.0 images/base/files/usr/local/bin/entrypoint:446-475, Docker's DNS made reachable from pods)."""
    return f"{container}:{mirrors.CACHE_PORT}"


def environment() -> dict[str, str]:
    """The registry's settings as ``REGISTRY_*`` variables: plain mode (no ``REGISTRY_PROXY_*``), deletes allowed
    so old tags can be cleaned up, the debug server for the health check and metrics, as the caches have."""
    return {
        "REGISTRY_HTTP_ADDR": f":{mirrors.CACHE_PORT}",
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": registry.DATA_DIR,
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        "REGISTRY_HTTP_DEBUG_ADDR": f":{registry.DEBUG_PORT}",
        "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true",
        "REGISTRY_LOG_LEVEL": "info",
    }


def labels(owner: str, port: int | None = None) -> dict[str, str]:
    """The labels of the registry container (with its ``port``) and volume (without)."""
    found = {registry.LABEL_STACK: owner, LABEL_ROLE: ROLE}
    if port is not None:
        found[LABEL_PORT] = str(port)
    return found


def hosting(port: int, container: str) -> dict[str, str]:
    """KEP-1755's LocalRegistryHosting v1 (README.md:423-463), as the ConfigMap's ``data``.

    - ``host``: where tools outside the cluster push, ``localhost:<port>``;
    - ``hostFromContainerRuntime``: the name pod specs use, the same ``localhost:<port>``, which the nodes'
      hosts.toml sends to the registry container (the point of this registry: one name everywhere);
    - ``hostFromClusterNetwork``: where tools running in pods push, the container on the kind network;
    - ``help``: :data:`HELP_URL`.
    """
    value = {
        "host": push_host(port),
        "hostFromContainerRuntime": push_host(port),
        "hostFromClusterNetwork": cluster_host(container),
        "help": HELP_URL,
    }
    return {HOSTING_KEY: yaml.safe_dump(value, sort_keys=False, default_flow_style=False)}


def summary(port: int, container: str, volume: str | None = None, stack: str | None = None) -> dict[str, object]:
    """The ``localRegistry`` stack output: the push URL and where it lives (``volume`` for this stack's own,
    ``stack`` for another stack's that this one uses)."""
    found: dict[str, object] = {
        "pushUrl": push_host(port),
        "hostPort": port,
        "container": container,
        "hostFromClusterNetwork": cluster_host(container),
    }
    if volume is not None:
        found["volume"] = volume
    if stack is not None:
        found["sharedFrom"] = stack
    return found
