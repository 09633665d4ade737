"""Everything containerd sees: the certs.d patch and one hosts.toml per mirrored upstream.

This module alone writes mirror configuration. It emits the hosts.toml layout that containerd 1.5+
and 2.x read, never the legacy ``registry.mirrors`` table, which stops the CRI plugin on containerd
2.2 (kind v0.31 node images) and is gone in 2.4.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import tomli_w

from krc.config import CacheSettings

#: Where a kind node's containerd looks for per-registry hosts.toml folders.
CERTS_D = "/etc/containerd/certs.d"

#: The port the registry serves its API on inside the cache container.
CACHE_PORT = 5000


@dataclass(frozen=True)
class HostsEntry:
    """One upstream as containerd should resolve it."""

    host: str
    server: str
    #: ``None``: no mirror, ``server`` alone serves the host (the local registry).
    mirror: str | None
    #: The mirror URL's path is the registry API root (``https://harbor.example/v2/dockerhub``):
    #: containerd must not append ``/v2`` to it.
    override_path: bool = False


def containerd_patch() -> str:
    """The ``containerdConfigPatches`` entry that points containerd's CRI registry at certs.d.

    kind merges each patch into the node's ``version = 2`` config as a JSON merge patch and skips,
    without a warning, any patch that declares another ``version``: so this patch declares none.
    containerd 2.2+ defaults to this path; 2.0/2.1 (kind v0.27-v0.30) need it, so it is always emitted.
    """
    return tomli_w.dumps({"plugins": {"io.containerd.grpc.v1.cri": {"registry": {"config_path": CERTS_D}}}})


def mirror_url(container_name: str) -> str:
    """The cache's URL as nodes reach it: its container name through Docker's embedded DNS."""
    return f"http://{container_name}:{CACHE_PORT}"


def hosts_toml(entry: HostsEntry) -> str:
    """The hosts.toml for one upstream: pull and resolve through the cache, then the real upstream.

    ``server`` is tried after the ``host`` entries, so a stopped cache degrades to a direct pull.
    """
    if entry.mirror is None:
        return tomli_w.dumps({"server": entry.server})
    host: dict[str, object] = {"capabilities": ["pull", "resolve"]}
    if entry.override_path:
        host["override_path"] = True
    return tomli_w.dumps({"server": entry.server, "host": {entry.mirror: host}})


def hosts_files(entries: Sequence[HostsEntry]) -> dict[str, str]:
    """Relative path under certs.d -> file content, one ``<host>/hosts.toml`` per entry."""
    return {f"{e.host}/hosts.toml": hosts_toml(e) for e in sorted(entries, key=lambda e: e.host)}


def has_path(url: str) -> bool:
    """Whether ``url`` has a path beyond ``/``, which makes it the API root (``override_path``)."""
    return bool(urlsplit(url).path.strip("/"))


def entries(cache: CacheSettings) -> list[HostsEntry]:
    """One entry per mirror: through its local cache container or its shared cache, falling back to its remote."""
    result = []
    for m in cache.mirrors:
        if m.is_local:
            result.append(HostsEntry(host=m.host, server=m.remote, mirror=mirror_url(cache.container_name(m))))
        else:
            assert m.shared is not None
            result.append(HostsEntry(host=m.host, server=m.remote, mirror=m.shared, override_path=has_path(m.shared)))
    return result


def local_registry_entry(port: int, container: str) -> HostsEntry:
    """``localhost:<port>`` (what the developer pushes to and pod specs name) served by the registry container.

    The container is the ``server`` itself, with no ``host`` entry: containerd then tries only it, with every
    capability (containerd v2.3.1 core/remotes/docker/config/hosts.go:414-419 appends the server last, and
    :469 gives a host without ``capabilities`` pull, resolve, push and referrers). With kind's recipe form, a
    ``[host."http://kind-registry:5000"]`` and no ``server`` (kind v0.32.0 site/static/examples/
    kind-with-registry.sh:57-59), containerd adds the default ``localhost:<port>`` after it (hosts.go:101-119),
    the node's own loopback, where nothing listens: a failed pull would report that instead of the registry.
    """
    return HostsEntry(host=f"localhost:{port}", server=f"http://{container}:{CACHE_PORT}", mirror=None)
