"""A containerd "node" configured the way kind configures one, fetching images through hosts.toml mirrors.

kind writes the node's /etc/containerd/config.toml from a ``version = 2`` base merged with the cluster's
``containerdConfigPatches``, and the program delivers /etc/containerd/certs.d/<host>/hosts.toml through a
read-only extraMount. This node does the same inside an unprivileged container: it cannot mount, so it never
unpacks; ``pull`` fetches every blob of an image (``ctr content fetch``), which is all the cache sees of a pull.
"""
from __future__ import annotations

import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import tomli_w
from docker.models.containers import Container
from docker.types import Mount

from .containers import TEST_LABEL, exec_ok, put_files
from .images import CONTAINERD_16_CONFIG

__all__ = [
    "BASE_CONFIG", "CERTS_D", "CRI", "CRI_IMAGES", "Node", "NodeError", "PullResult", "base_config_of", "merge_patch",
    "patch_containerd_config", "start_node",
]

CERTS_D = "/etc/containerd/certs.d"
#: Where containerd keeps blob files (its default root), shared by all namespaces.
BLOBS_DIR = "/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256"
#: The CRI plugin of containerd 1.x, where kind's ``version = 2`` config (and the program's patch) puts
#: ``registry.config_path``.
CRI = "io.containerd.grpc.v1.cri"
#: containerd 2.x moved the image settings to this plugin; it migrates a ``version = 2`` file at start, so
#: ``config dump`` (``version = 3``) shows ``config_path`` here (containerd v2.3.1
#: internal/cri/config/config.go ``ImageConfig.Registry``; measured in ../shared/reference/real-versions.md).
CRI_IMAGES = "io.containerd.cri.v1.images"
#: A small ``version = 2`` base config of kind's shape (tests of the merge use it; nodes use their image's).
BASE_CONFIG = CONTAINERD_16_CONFIG.read_text()

_base_configs: dict[str, str] = {}


def base_config_of(client: docker.DockerClient, image: str) -> str:
    """The /etc/containerd/config.toml a node image ships (kind's base config for containerd 2.x nodes)."""
    if image not in _base_configs:
        out = client.containers.run(image, ["/etc/containerd/config.toml"], entrypoint=["cat"], remove=True,
                                    network_mode="none")
        _base_configs[image] = out.decode()
    return _base_configs[image]


class NodeError(RuntimeError):
    """The node container did not come up as configured."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of ``patch`` onto ``target`` (neither is modified)."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def patch_containerd_config(base: str, patches: Sequence[str]) -> str:
    """kind's ``containerdConfigPatches``: each TOML patch merged onto ``base`` as a JSON merge patch.

    As in kind (pkg/internal/patch/toml.go), the base must declare a ``version``, and a patch that declares
    a different ``version`` is skipped without a word. Comments and key order of the base are not kept.
    """
    config = tomllib.loads(base)
    version = config.get("version", 0)
    if not version:
        raise ValueError("failed to detect containerd config version")
    for patch in patches:
        parsed = tomllib.loads(patch)
        if parsed.get("version", 0) not in (0, version):
            continue
        config = merge_patch(config, parsed)
    return tomli_w.dumps(config)


@dataclass(frozen=True)
class PullResult:
    """What ``ctr content fetch`` did."""

    ok: bool
    exit_code: int
    stdout: str
    stderr: str
    seconds: float


@dataclass
class Node:
    """A started node container with containerd running."""

    container: Container
    #: /etc/containerd/config.toml as written into the node
    config_toml: str
    #: ``containerd config dump``, parsed
    dumped: dict[str, Any]

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def config_path_plugin(self) -> str | None:
        """The plugin whose ``registry.config_path`` containerd loaded (:data:`CRI_IMAGES` on 2.x, :data:`CRI`
        on 1.x), None when there is none."""
        plugins = self.dumped.get("plugins", {})
        for plugin in (CRI_IMAGES, CRI):
            if plugins.get(plugin, {}).get("registry", {}).get("config_path"):
                return plugin
        return None

    @property
    def hosts_dir(self) -> str:
        """The CRI registry ``config_path`` containerd loaded ("" when the config has none)."""
        plugin = self.config_path_plugin
        return self.dumped["plugins"][plugin]["registry"]["config_path"] if plugin else ""

    def plugin_status(self) -> dict[str, str]:
        """``ctr plugins ls``: "<type>.<id>" -> status (``ok``, ``skip``, ``error``)."""
        result = {}
        for line in exec_ok(self.container, ["ctr", "plugins", "ls"]).splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 4:
                result[f"{fields[0]}.{fields[1]}"] = fields[-1]
        return result

    def ctr(self, *args: str) -> str:
        """Run ``ctr -n k8s.io ARGS`` (the namespace kubelet's images live in); stdout, raise on failure."""
        return exec_ok(self.container, ["ctr", "-n", "k8s.io", *args])

    def pull(self, ref: str, platform: str | None = None) -> PullResult:
        """Fetch all blobs of ``ref`` (for an index: the manifest of ``platform``, default the node's own)
        through the hosts.toml files under the config's ``config_path``, as the CRI plugin would.

        ctr does not read the CRI config_path itself (1.6 and 2.x alike): it gets ``--hosts-dir``. With no config_path
        the pull is refused here instead of letting ctr go to the real upstream.
        """
        if not self.hosts_dir:
            return PullResult(False, -1, "", f"no CRI registry config_path in {self.name}'s config", 0.0)
        cmd = ["ctr", "-n", "k8s.io", "content", "fetch", "--hosts-dir", self.hosts_dir]
        if self.dumped.get("version", 2) >= 3:
            # containerd 2.x's ctr fetches every platform's manifest and config unless told not to
            # (v2.3.1 cmd/ctr/commands/content/fetch.go: AllMetadata without --skip-metadata); a kubelet
            # pull, like 1.6's ctr, asks only for the node's platform.
            cmd.append("--skip-metadata")
        if platform:
            cmd += ["--platform", platform]
        started = time.monotonic()
        result = self.container.exec_run([*cmd, ref], demux=True)
        seconds = time.monotonic() - started
        stdout, stderr = (part.decode(errors="replace") if part else "" for part in result.output)
        return PullResult(result.exit_code == 0, result.exit_code, stdout, stderr, seconds)

    def content_digests(self) -> set[str]:
        """Digests of the blobs in the node's content store."""
        lines = self.ctr("content", "ls", "-q").split()
        return {line for line in lines if line.startswith("sha256:")}

    def clear_content(self, timeout: float = 30.0) -> None:
        """Delete every blob, so the next pull fetches everything again.

        ``content rm`` only drops the namespace's records; the files go at containerd's next garbage collection,
        and until then containerd's shared content policy lets a fetch of the same digest re-adopt the file
        without downloading anything. So a lease is deleted with ``--sync`` (a synchronous collection), and this
        waits until no blob file is left.
        """
        # One exec: the records, a synchronous collection, then what files are left.
        script = (
            'set -e; ctr="ctr -n k8s.io"; digests=$($ctr content ls -q)\n'
            '[ -z "$digests" ] || $ctr content rm $digests\n'
            'lease=$($ctr leases create | awk \'{print $1; exit}\'); $ctr leases delete --sync "$lease"\n'
            f'ls {BLOBS_DIR} 2>/dev/null || true\n'
        )
        left = exec_ok(self.container, ["sh", "-c", script]).split()
        deadline = time.monotonic() + timeout
        while left:
            if time.monotonic() > deadline:
                raise NodeError(f"{self.name}: {len(left)} blob file(s) still in {BLOBS_DIR} after content rm")
            time.sleep(0.05)
            left = exec_ok(self.container, ["sh", "-c", f"ls {BLOBS_DIR} 2>/dev/null || true"]).split()


def _wait_ready(container: Container, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = container.exec_run(["ctr", "version"])
        if result.exit_code == 0:
            return
        container.reload()
        if container.status != "running" or time.monotonic() > deadline:
            raise NodeError(f"containerd in {container.name} did not come up ({container.status}):\n"
                            f"{container.logs(tail=30).decode(errors='replace')}")
        time.sleep(0.1)


def start_node(
    client: docker.DockerClient, image: str, network: str, name: str, certs_dir: Path | None,
    patches: Sequence[str] = (), base_config: str | None = None, require_config_path: bool = True,
    timeout: float = 30.0, labels: Mapping[str, str] | None = None,
) -> Node:
    """Start a node container on ``network`` with containerd configured from ``base_config`` + ``patches``.

    :param certs_dir: host folder bind-mounted read-only at /etc/containerd/certs.d (kind extraMounts);
        None leaves the image's empty folder.
    :param patches: containerdConfigPatches, merged with :func:`patch_containerd_config`.
    :param base_config: the config the patches are merged onto; default the image's own (kind's base config).
    :param require_config_path: raise NodeError unless ``containerd config dump`` shows the CRI registry
        ``config_path = "/etc/containerd/certs.d"``.
    :param labels: more container labels (kind's ``io.x-k8s.kind.cluster``, to be found as a cluster's node).
    """
    if base_config is None:
        base_config = base_config_of(client, image)
    config = patch_containerd_config(base_config, patches)
    mounts = [Mount(CERTS_D, str(certs_dir), type="bind", read_only=True)] if certs_dir is not None else []
    container = client.containers.create(
        image, name=name, hostname=name, network=network, mounts=mounts,
        labels={TEST_LABEL: "true", "io.krc-tests.role": "node", **(labels or {})},
    )
    try:
        put_files(container, {"/etc/containerd/config.toml": config})
        container.start()
        _wait_ready(container, timeout)
        dumped = tomllib.loads(exec_ok(container, ["containerd", "config", "dump"]))
        node = Node(container=container, config_toml=config, dumped=dumped)
        if require_config_path and node.hosts_dir != CERTS_D:
            raise NodeError(f"{name}: containerd config dump has CRI registry config_path={node.hosts_dir!r}, "
                            f"not {CERTS_D!r}; config.toml was:\n{config}")
        return node
    except Exception:
        container.remove(force=True)
        raise
