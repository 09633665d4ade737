"""Turning the preflight report into a decision, or a :class:`PreflightError` that says what to install or run.

Which kind to run (an installed v0.27+ or the pinned release), whether to create or adopt the docker network,
and whether this machine can route to the kind network (no Pulumi here).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit
from typing import TYPE_CHECKING

from krc.config import NAMESPACE, NetworkSettings
from krc import versions
from krc.preflight import kindrelease
from krc.render import network as network_render
from krc.preflight.report import DockerNetwork, Report, kind_version
from krc.preflight.script import LABEL_OWNER

if TYPE_CHECKING:
    from krc.preflight.localregistry import LocalRegistryPlan

INSTALL_DOCKER = "install Docker (Docker Engine, Docker Desktop or Colima): https://docs.docker.com/get-docker/"


class PreflightError(RuntimeError):
    """A prerequisite is missing or the machine's state blocks creation; the message says the fix."""


@dataclass(frozen=True)
class KindChoice:
    """The kind binary every kind command runs: an installed one, or the pinned release downloaded by ``up``."""

    path: str
    #: The release to download into ``path``; ``None`` when an installed kind is used as it is.
    download: kindrelease.Asset | None = None
    #: Whether the downloaded release is at ``path`` now (``program.prerequisites`` looks); ``up`` fetches it if not.
    present: bool = True


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
    #: The engine runs on another machine (``tcp://`` or ``ssh://`` to a host that is not this one).
    remote_engine: bool = False
    #: The local registry the cluster pulls ``localhost:<port>/...`` from (:mod:`krc.preflight.localregistry`);
    #: ``None`` when it is off.
    local_registry: LocalRegistryPlan | None = None


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
        remote_engine=is_remote_engine(configured_host or env_host or report.context_host),
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


def is_remote_engine(docker_host: str | None) -> bool:
    """Whether the Docker engine runs on another machine: ``tcp://`` or ``ssh://`` to a host other than this one.

    A ``unix://`` or ``npipe://`` engine is on this machine, or in a VM of it (Docker Desktop, Colima, Lima, Rancher
    Desktop) that forwards published ports to this machine's 127.0.0.1.
    """
    if not docker_host or not docker_host.startswith(("tcp://", "ssh://")):
        return False
    host = (urlsplit(docker_host).hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def refuse_addons_on_remote_engine(decision: Decision, enabled: Sequence[str]) -> None:
    """The add-ons need the cluster's API server from this machine; a remote engine's kind cluster has it elsewhere.

    kind publishes the API server on ``networking.apiServerAddress``, 127.0.0.1 unless set (kind v0.32.0
    pkg/internal/apis/config/default.go:54-60), of the machine the engine runs on
    (pkg/cluster/internal/providers/docker/provision.go:60-70, :106, :274), and writes that address into the
    kubeconfig: from here the Kubernetes provider would reach this machine's 127.0.0.1, not the cluster.

    :param enabled: the config keys of the enabled add-ons (``addons.cilium`` ...).
    :raises PreflightError: with the reason and the two ways out.
    """
    if not decision.remote_engine or not enabled:
        return
    off = "; ".join(f"`pulumi config set --path {NAMESPACE}:{key}.enabled false`" for key in enabled)
    raise PreflightError(
        f"the add-ons ({', '.join(key.split('.', 1)[1] for key in enabled)}) are installed through the cluster's API "
        f"server, and with the remote Docker engine ({decision.engine}) kind publishes it on 127.0.0.1 of that "
        f"machine, which this machine cannot reach. Either use an engine on this machine (Docker Engine, Docker "
        f"Desktop, Colima), or create only the caches and the cluster here: {off}"
    )


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
        _refuse_a_changed_network(existing, network)
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


def _refuse_a_changed_network(existing: DockerNetwork, network: NetworkSettings) -> None:
    """This stack's network exists with another subnet or MTU than the settings ask: refuse before anything changes.

    Every attribute of the provider's network forces a replacement (terraform-provider-docker v4.5.0, the one
    pulumi-docker 5.1.0 and 5.2.0 build: internal/provider/resource_docker_network.go, ``ForceNew`` on name,
    options and ipam_config), the replacement is created before the old network is deleted (the engine's default),
    and Docker refuses a second network of the same name; nor can the old one go while kind's nodes and the caches
    are attached to it. So the change is applied by `pulumi destroy` (the cache volumes stay) and `pulumi up`.
    """
    changes = network_render.changes(network, existing.subnets, existing.options)
    if not changes:
        return
    asked = " and ".join(f"{NAMESPACE}:{key} {wanted} (it has {have})" for key, wanted, have in changes)
    keep = "; ".join(
        f"`pulumi config set --path {NAMESPACE}:{key} {have}`" for key, _, have in changes if "," not in have and " " not in have
    )
    raise PreflightError(
        f"this stack's docker network {network.name!r} cannot take {asked}: Docker cannot change a network in place, "
        f"and replacing it fails while the cluster's nodes and the caches are attached to it ({existing.containers} "
        f"container(s) now). Nothing was changed. To apply it, run `pulumi destroy` (the cache volumes are kept, so "
        f"the next `up` is warm) and then `pulumi up`." + (f" To keep the network as it is: {keep}" if keep else "")
    )


def _free_suggestion(report: Report, network: NetworkSettings) -> str:
    """A /16 (or the configured size) in 172.16.0.0/12 that no docker network uses."""
    used = [s for n in report.networks for s in n.subnets]
    size = max(network.subnet.prefixlen, 16)
    for candidate in ipaddress.IPv4Network("172.16.0.0/12").subnets(new_prefix=size):
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    return "<a free private /16>"
