"""Prerequisite checks run before anything is created: kind, Docker, the docker network, and what exists (no Pulumi here).

The program runs :data:`SCRIPT` through pulumi-command's ``local.run`` invoke (it only reads:
``kind version``, ``docker version``, ``docker network inspect``, ``docker ps -a`` of this stack's caches
and cluster nodes, and whether the cluster's record and the certs folder exist), then :func:`check`
turns the report into a decision or a :class:`PreflightError` that says what to install or run, and
:func:`generations` into the tokens that make the next ``up`` recreate whatever was removed by hand.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import kindrelease, versions
from .settings import NAMESPACE, NetworkSettings

#: Label on the docker network this program creates, valued ``<project>/<stack>``.
LABEL_OWNER = "kind-registry-cache.owner"

#: Docker label on each cache container: the generation token it was created with (see :func:`generations`).
LABEL_GENERATION = "kind-registry-cache.generation"

#: Docker label kind puts on every node container, valued with the cluster name
#: (kind v0.32.0 pkg/cluster/internal/providers/docker/constants.go: clusterLabelKey; `kind get nodes` filters on it).
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"

# Read-only. What it looks at comes from the environment (see :func:`environment`): KRC_OWNER (this stack's
# cache containers carry it as a label), KRC_CLUSTER (the kind cluster name), KRC_CLUSTER_RECORD (the file the
# cluster's create script writes), KRC_CERTS_DIR (the hosts.toml folder mounted into the nodes).
SCRIPT = r"""
if command -v kind >/dev/null 2>&1; then
  echo "kind=$(kind version 2>&1 | head -n 1)"
  echo "kind_path=$(command -v kind)"
else
  echo "kind=missing"
fi
if [ -n "${KRC_CLUSTER_RECORD:-}" ] && [ -f "$KRC_CLUSTER_RECORD" ] && [ ! -L "$KRC_CLUSTER_RECORD" ]; then
  echo "cluster_record=$(head -n 1 "$KRC_CLUSTER_RECORD")"
fi
if [ -n "${KRC_CERTS_DIR:-}" ]; then
  if [ -d "$KRC_CERTS_DIR" ]; then echo "certs=present"; else echo "certs=missing"; fi
fi
if ! command -v docker >/dev/null 2>&1; then echo "docker=missing"; exit 0; fi
if out=$(docker version --format '{{.Server.Version}}' 2>&1); then
  echo "docker=$out"
else
  echo "docker=unreachable"
  echo "docker_error=$(printf '%s' "$out" | tr '\n' ' ')"
  exit 0
fi
echo "context_host=$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null)"
echo "host_os=$(uname -s 2>/dev/null)"
echo "engine_os=$(docker info --format '{{.OperatingSystem}}' 2>/dev/null | tr '\n' ' ')"
docker network ls -q | while read -r id; do
  echo "network=$(docker network inspect --format '{{json .}}' "$id" 2>/dev/null)"
done
if [ -n "${KRC_OWNER:-}" ]; then
  docker ps -a --filter "label=kind-registry-cache.stack=$KRC_OWNER" \
    --format '{{.Names}} {{.Label "kind-registry-cache.generation"}}' | while read -r line; do echo "cache=$line"; done
fi
if [ -n "${KRC_CLUSTER:-}" ]; then
  docker ps -a --no-trunc --filter "label=io.x-k8s.kind.cluster=$KRC_CLUSTER" \
    --format '{{.ID}} {{.Names}}' | while read -r line; do echo "node=$line"; done
fi
exit 0
"""

_KIND_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)")

INSTALL_DOCKER = "install Docker (Docker Engine, Docker Desktop or Colima): https://docs.docker.com/get-docker/"


class PreflightError(RuntimeError):
    """A prerequisite is missing or the machine's state blocks creation; the message says the fix."""


@dataclass(frozen=True)
class DockerNetwork:
    """The parts of ``docker network inspect`` the checks use."""

    name: str
    subnets: tuple[ipaddress.IPv4Network, ...]
    labels: dict[str, str] = field(default_factory=dict)
    containers: int = 0


@dataclass(frozen=True)
class Report:
    """What :data:`SCRIPT` printed, parsed."""

    kind: str
    docker: str
    docker_error: str = ""
    context_host: str = ""
    networks: tuple[DockerNetwork, ...] = ()
    #: ``uname -s`` of this machine (``Linux``, ``Darwin``, ``MINGW64_NT-...``).
    host_os: str = ""
    #: ``docker info``'s OperatingSystem: ``Docker Desktop`` for Docker Desktop, the VM's distribution for Colima.
    engine_os: str = ""
    #: Absolute path of the ``kind`` on PATH, when there is one.
    kind_path: str = ""
    #: This stack's cache containers (all states): name -> generation label ("" when it has none).
    caches: dict[str, str] = field(default_factory=dict)
    #: The cluster's node containers (all states): container id -> name.
    nodes: dict[str, str] = field(default_factory=dict)
    #: First line of the cluster record: ``<generation> <control-plane container id>``; "" when absent.
    cluster_record: str = ""
    #: Whether the certs folder exists: "present", "missing", or "" when not asked.
    certs: str = ""


@dataclass(frozen=True)
class KindChoice:
    """The kind binary every kind command runs: an installed one, or the pinned release downloaded by ``up``."""

    path: str
    #: The release to download into ``path``; ``None`` when an installed kind is used as it is.
    download: kindrelease.Asset | None = None


@dataclass(frozen=True)
class Decision:
    """How to proceed: create the network, or use (adopt) the one that exists; which kind to run."""

    adopt_network: bool
    docker_host: str | None
    notes: tuple[str, ...] = ()
    #: Whether this machine can reach container addresses on the kind network (MetalLB addresses included).
    kind_network_routable: bool = False
    #: The engine as the checks saw it, for messages (``Docker Engine on Linux at unix:///var/run/docker.sock``).
    engine: str = ""
    kind: KindChoice = KindChoice(path="kind")


def parse(stdout: str) -> Report:
    """Parse the ``key=value`` lines :data:`SCRIPT` prints."""
    values: dict[str, str] = {}
    networks: list[DockerNetwork] = []
    caches: dict[str, str] = {}
    nodes: dict[str, str] = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "network":
            network = _parse_network(value)
            if network is not None:
                networks.append(network)
        elif key == "cache":
            name, _, generation = value.strip().partition(" ")
            if name:
                caches[name] = generation.strip()
        elif key == "node":
            node_id, _, name = value.strip().partition(" ")
            if node_id and name:
                nodes[node_id] = name.strip()
        else:
            values[key] = value.strip()
    return Report(
        kind=values.get("kind", "missing"),
        docker=values.get("docker", "missing"),
        docker_error=values.get("docker_error", ""),
        context_host=values.get("context_host", ""),
        networks=tuple(networks),
        host_os=values.get("host_os", ""),
        engine_os=values.get("engine_os", ""),
        kind_path=values.get("kind_path", ""),
        caches=caches,
        nodes=nodes,
        cluster_record=values.get("cluster_record", ""),
        certs=values.get("certs", ""),
    )


def _parse_network(text: str) -> DockerNetwork | None:
    try:
        data: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError:
        return None
    subnets = []
    for config in (data.get("IPAM") or {}).get("Config") or []:
        try:
            subnets.append(ipaddress.ip_network(config.get("Subnet", ""), strict=False))
        except ValueError:
            continue
    return DockerNetwork(
        name=str(data.get("Name", "")),
        subnets=tuple(s for s in subnets if isinstance(s, ipaddress.IPv4Network)),
        labels=dict(data.get("Labels") or {}),
        containers=len(data.get("Containers") or {}),
    )


def kind_version(text: str) -> tuple[int, int, int] | None:
    """``kind v0.32.0 go1.24.2 linux/amd64`` -> ``(0, 32, 0)``."""
    match = _KIND_VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def check(
    report: Report,
    network: NetworkSettings,
    owner: str,
    configured_host: str | None,
    env_host: str | None,
    kind_download: kindrelease.Asset | str = "",
) -> Decision:
    """Decide how to proceed, or raise :class:`PreflightError` with the fix.

    :param owner: ``<project>/<stack>``, the owner label of a network this stack created.
    :param configured_host: ``docker.host`` from stack config.
    :param env_host: ``DOCKER_HOST`` from the environment.
    :param kind_download: the pinned kind release for this machine, or why there is none.
    """
    problems: list[str] = []
    notes: list[str] = []
    kind = _kind_choice(report, kind_download, problems, notes)
    if report.docker == "missing":
        problems.append(f"the `docker` CLI is not on PATH: {INSTALL_DOCKER}")
    elif report.docker == "unreachable":
        where = configured_host or env_host or report.context_host or "the current docker context"
        problems.append(
            f"the Docker engine at {where} does not answer ({report.docker_error.strip() or 'no detail'}): "
            f"start Docker (Docker Desktop, `colima start`, or `sudo systemctl start docker`), or point "
            f"{NAMESPACE}:docker.host or DOCKER_HOST at a running engine"
        )
    if problems:
        raise PreflightError("prerequisites missing:\n" + "\n".join(f"  - {p}" for p in problems))

    adopt, network_notes = _network_decision(report, network, owner)
    host = configured_host or (None if env_host else (report.context_host or None))
    routable, engine = kind_network_routable(report, configured_host or env_host or report.context_host)
    return Decision(
        adopt_network=adopt,
        docker_host=host,
        notes=(*notes, *network_notes),
        kind_network_routable=routable,
        engine=engine,
        kind=kind,
    )


#: Socket folders of engines that run in a VM even on Linux (Colima, Lima, Rancher Desktop, Docker Desktop).
_VM_SOCKET_MARKERS = ("/.colima/", "/.lima/", "/.rd/", "/.docker/desktop/")


def kind_network_routable(report: Report, docker_host: str) -> tuple[bool, str]:
    """Whether this machine reaches the kind network's container addresses directly, and the engine described.

    Only a Docker Engine running on this Linux machine puts its bridge networks on this machine's routing
    table. Docker Desktop (macOS, Windows, Linux), Colima and Lima run the engine in a VM, and a ``tcp://`` or
    ``ssh://`` engine runs elsewhere: their container addresses are not reachable from here, only published ports.

    :param docker_host: the engine's address as used (``unix://...``; empty for the default socket).
    """
    where = docker_host or "unix:///var/run/docker.sock"
    engine = f"{report.engine_os.strip() or 'Docker'} at {where}, this machine {report.host_os or 'unknown'}"
    if report.host_os != "Linux":
        return False, engine
    if "docker desktop" in report.engine_os.lower():
        return False, engine
    if not where.startswith("unix://") or any(marker in where for marker in _VM_SOCKET_MARKERS):
        return False, engine
    return True, engine


def _kind_choice(
    report: Report, download: kindrelease.Asset | str, problems: list[str], notes: list[str]
) -> KindChoice:
    """An installed kind v0.27+ as it is; otherwise the pinned release, downloaded by `up` (never now)."""
    minimum = ".".join(map(str, versions.MIN_KIND_VERSION))
    if report.kind == "missing":
        why = "`kind` is not on PATH"
    else:
        found = kind_version(report.kind)
        where = report.kind_path or "kind"
        if found is not None and found >= versions.MIN_KIND_VERSION:
            notes.append(f"kind: using {where} (v{'.'.join(map(str, found))}) as it is")
            return KindChoice(path=report.kind_path or "kind")
        why = (
            f"cannot read the kind version of {where} from {report.kind!r}"
            if found is None
            else f"{where} is kind v{'.'.join(map(str, found))}, older than v{minimum} (its nodes run containerd "
            f"1.x, which this program's mirror config does not target)"
        )
    if isinstance(download, str):
        problems.append(f"{why}; {download or kindrelease.INSTALL_KIND}")
        return KindChoice(path="kind")
    notes.append(
        f"kind: {why}; using kind {versions.KIND_VERSION} ({download.os}/{download.arch}) at {download.path}, "
        f"downloaded by `pulumi up` from {download.url} if it is not there yet and checked against the pinned "
        f"sha256 {download.sha256[:12]}…; it is not put on your PATH"
    )
    return KindChoice(path=download.path, download=download)


def _network_decision(report: Report, network: NetworkSettings, owner: str) -> tuple[bool, tuple[str, ...]]:
    existing = next((n for n in report.networks if n.name == network.name), None)
    for other in report.networks:
        if other.name == network.name:
            continue
        clash = next((s for s in other.subnets if s.overlaps(network.subnet)), None)
        if clash is not None:
            raise PreflightError(
                f"{NAMESPACE}:network.subnet {network.subnet} overlaps docker network {other.name!r} ({clash}). "
                f"Pick a free range, e.g. `pulumi config set --path {NAMESPACE}:network.subnet "
                f"{_free_suggestion(report, network)}`"
            )
    if existing is None:
        return False, ()
    if existing.labels.get(LABEL_OWNER) == owner:
        return False, ()
    if network.subnet in existing.subnets:
        return True, (
            f"using the existing docker network {network.name!r} ({network.subnet}) as it is; "
            f"`pulumi destroy` will leave it in place",
        )
    found = ", ".join(map(str, existing.subnets)) or "no IPv4 subnet"
    raise PreflightError(
        f"docker network {network.name!r} already exists with {found}, not {NAMESPACE}:network.subnet "
        f"{network.subnet}, and this stack did not create it (kind creates it on first use). Either use it as it is: "
        f"`pulumi config set --path {NAMESPACE}:network.subnet {existing.subnets[0] if existing.subnets else '<cidr>'}`; "
        f"or remove it: `docker network rm {network.name}` (it has {existing.containers} container(s) attached; "
        f"delete their kind clusters first with `kind delete cluster --name <name>`); or use another network: "
        f"`pulumi config set --path {NAMESPACE}:network.name kind-{owner.split('/')[-1]}`"
    )


def _free_suggestion(report: Report, network: NetworkSettings) -> str:
    """A /16 (or the configured size) in 172.16.0.0/12 that no docker network uses."""
    used = [s for n in report.networks for s in n.subnets]
    size = max(network.subnet.prefixlen, 16)
    for candidate in ipaddress.IPv4Network("172.16.0.0/12").subnets(new_prefix=size):
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    return "<a free private /16>"


# --- drift: what exists, and the generation tokens that make `up` recreate what does not ---------------------
#
# pulumi-command Commands and pulumi-docker containers do not look at the machine without `--refresh`, so a
# cluster deleted by hand or a cache container removed by hand would stay "created" in the state. Each of
# them gets a generation token as an input that forces replacement (a cache container's label, the cluster
# Command's triggers). The token is read back from the thing itself: the cache container's label, the record
# the cluster's create script writes next to the stack (with the control-plane container id, so a record
# outliving its cluster does not count). While the thing exists its token is unchanged: no diff. Once it is
# gone a fresh token is drawn: replacement, i.e. it is created again.


@dataclass(frozen=True)
class Generations:
    """Per object, the generation token the program gives it, and what is missing."""

    #: cache container name -> token; "" keeps a container that carries no token (made before tokens) as it is.
    caches: dict[str, str]
    #: the kind cluster's token (also the certs folder's: they are made together).
    cluster: str
    #: What was not found on the machine and is (re)created by the next `up`.
    missing: tuple[str, ...] = ()


def environment(owner: str, cluster: str, cluster_record: str, certs_dir: str) -> dict[str, str]:
    """What :data:`SCRIPT` looks at (besides kind, Docker and the networks)."""
    return {
        "KRC_OWNER": owner,
        "KRC_CLUSTER": cluster,
        "KRC_CLUSTER_RECORD": cluster_record,
        "KRC_CERTS_DIR": certs_dir,
    }


def new_token() -> str:
    return secrets.token_hex(6)


def generations(
    report: Report,
    cache_names: Sequence[str],
    node_names: Sequence[str],
    fresh: Callable[[], str] = new_token,
) -> Generations:
    """The tokens for this run: each existing object's own, a fresh one for each missing object.

    :param cache_names: this stack's local cache container names.
    :param node_names: the kind node container names, the first being the control plane the record names.
    """
    missing: list[str] = []
    caches: dict[str, str] = {}
    for name in cache_names:
        if name in report.caches:
            caches[name] = report.caches[name]
        else:
            caches[name] = fresh()
            missing.append(f"cache container {name}")
    token, _, control_plane_id = report.cluster_record.partition(" ")
    nodes_present = set(report.nodes.values())
    cluster_ok = (
        bool(token)
        and report.nodes.get(control_plane_id.strip()) == (node_names[0] if node_names else None)
        and all(n in nodes_present for n in node_names)
    )
    if report.certs == "missing":
        # The folder is bind-mounted into every node: a new folder at the same path is not what running
        # nodes see (they keep the deleted one), so the folder and the cluster are made again together.
        missing.append("certs folder (so the cluster too: its nodes mount the folder)")
        cluster_ok = False
    elif not cluster_ok:
        missing.append("kind cluster (or one of its nodes)")
    return Generations(caches=caches, cluster=token if cluster_ok else fresh(), missing=tuple(missing))
