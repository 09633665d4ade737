"""Settings of one registry (CNCF distribution) pull-through cache container (no Pulumi here)."""

from __future__ import annotations

from . import mirrors

#: Where distribution keeps its data; the cache's named volume is mounted here.
DATA_DIR = "/var/lib/registry"

#: The debug server: /metrics (Prometheus, including proxy hits and misses) and /debug/health.
DEBUG_PORT = 5001

#: Label keys every cache container and volume carries, so tools can find a stack's caches.
LABEL_STACK = "kind-registry-cache.stack"
LABEL_UPSTREAM = "kind-registry-cache.upstream"


def environment(remote: str, ttl: str) -> dict[str, str]:
    """The registry's settings as ``REGISTRY_*`` environment variables (credentials excluded).

    :param remote: the upstream registry's root URL.
    :param ttl: how long cached content lives, as a Go duration; ``0`` disables expiry (registry v3).
    """
    return {
        "REGISTRY_HTTP_ADDR": f":{mirrors.CACHE_PORT}",
        "REGISTRY_PROXY_REMOTEURL": remote,
        "REGISTRY_PROXY_TTL": ttl,
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": DATA_DIR,
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        "REGISTRY_HTTP_DEBUG_ADDR": f":{DEBUG_PORT}",
        "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true",
        "REGISTRY_LOG_LEVEL": "info",
    }


def credential_environment(username: str, password: str) -> dict[str, str]:
    """The upstream login; the caller keeps these values secret."""
    return {"REGISTRY_PROXY_USERNAME": username, "REGISTRY_PROXY_PASSWORD": password}


def env_list(env: dict[str, str]) -> list[str]:
    """Docker's ``KEY=value`` form, in a stable order so unchanged settings show no diff."""
    return [f"{key}={value}" for key, value in sorted(env.items())]


def healthcheck_command() -> list[str]:
    """Docker health check: the registry's own health endpoint, with the image's busybox wget."""
    return ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{DEBUG_PORT}/debug/health"]
