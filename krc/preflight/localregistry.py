"""Whether this stack's local registry can have its name and host port, or which registry ``useStack`` means
(no Pulumi here).

From the preflight report (:mod:`krc.preflight.report`), before anything is created and during preview: a host port
held by anything that is not this stack's own registry is refused, naming the key and the holder (another stack's
registry, another container, a process on this machine); so is a container or volume of the registry's name that
this stack did not create. ``useStack`` finds the other stack's registry by its labels, with its port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from krc.config import NAMESPACE
from krc.config.localregistry import LocalRegistrySettings
from krc.preflight.decide import PreflightError
from krc.preflight.report import Published, Report
from krc.render import localregistry as render

_SET = f"pulumi config set --path {NAMESPACE}:localRegistry"


@dataclass(frozen=True)
class LocalRegistryPlan:
    """The registry the cluster pulls ``localhost:<port>/...`` from: this stack's own or another stack's."""

    #: Its container's name: its host name on the kind network.
    container: str
    #: The host port developers push to (``localhost:<port>``).
    port: int
    #: ``<project>/<stack>`` of the stack that runs it.
    owner: str
    #: Another stack's (``useStack``): this stack creates no container and no volume for it.
    shared: bool = False
    notes: tuple[str, ...] = ()


# One entry of Docker's Ports column: "127.0.0.1:5001->5000/tcp", "0.0.0.0:5000-5002->5000-5002/tcp",
# ":::5001->5000/tcp", "[::]:5001->5000/tcp"; an exposed-only port ("5000/tcp") has no "->".
_PORT = re.compile(r"(?P<ip>\[?[0-9A-Fa-f.:]*?\]?):(?P<first>[0-9]+)(?:-(?P<last>[0-9]+))?->[0-9-]+/(?P<proto>[a-z]+)")
#: Host addresses whose listener takes 127.0.0.1:<port> too (itself, or every address).
_LOOPBACK_CLASHES = {"127.0.0.1", "0.0.0.0", "::", "[::]", ""}


def holds_port(published: Published, port: int) -> str | None:
    """The entry of ``published``'s Ports that takes ``127.0.0.1:<port>``/tcp, or ``None``."""
    for entry in published.ports.split(","):
        match = _PORT.search(entry.strip())
        if match is None or match["proto"] != "tcp" or match["ip"] not in _LOOPBACK_CLASHES:
            continue
        first = int(match["first"])
        if first <= port <= int(match["last"] or first):
            return entry.strip()
    return None


def plan(
    report: Report,
    settings: LocalRegistrySettings,
    *,
    project: str,
    owner: str,
    network: str,
    local_engine: bool,
) -> LocalRegistryPlan | None:
    """The registry this stack's cluster uses, or ``None`` when ``localRegistry.enabled`` is false.

    :param owner: ``<project>/<stack>``, the owner label of this stack's registry.
    :param network: the kind network's name (a shared registry must be on it for the nodes to resolve it).
    :param local_engine: the engine publishes ports on this machine (a local socket: Docker Engine, Docker
        Desktop, Colima), so a process listening here blocks the port; for a remote engine that is only a note.
    :raises PreflightError: naming the key, what holds the name or port, and the fix.
    """
    if not settings.enabled:
        return None
    if settings.use_stack is not None:
        return _shared(report, settings.use_stack, project=project, network=network)
    problems: list[str] = []
    notes: list[str] = []
    _check_name(report, settings.name, owner, problems)
    _check_port(report, settings, owner, local_engine, problems, notes)
    if problems:
        raise PreflightError("the local registry cannot start as configured:\n" + "\n".join(f"  - {p}" for p in problems))
    return LocalRegistryPlan(container=settings.name, port=settings.port, owner=owner, notes=tuple(notes))


def _ours(owner_label: str, role: str, owner: str) -> bool:
    return owner_label == owner and role == render.ROLE


def _check_name(report: Report, name: str, owner: str, problems: list[str]) -> None:
    if report.registry_container is not None:
        status, owner_label, role = report.registry_container
        if not _ours(owner_label, role, owner):
            whose = f"stack {owner_label}'s {role or 'container'}" if owner_label else "not made by this program"
            problems.append(
                f"{NAMESPACE}:localRegistry.name: a container named {name!r} already exists on this Docker engine "
                f"({status}, {whose}); this stack will not take it over. Set another name (`{_SET}.name "
                f"{name}-2`), or remove that container if you no longer need it (`docker rm -f {name}`)"
            )
    if report.registry_volume is not None:
        owner_label, role = report.registry_volume
        if not _ours(owner_label, role, owner):
            whose = f"labelled for {owner_label}" if owner_label else "not made by this program"
            problems.append(
                f"{NAMESPACE}:localRegistry.name: a docker volume named {name!r} already exists ({whose}); the "
                f"registry would store your images in it. Set another name (`{_SET}.name {name}-2`)"
            )


def _check_port(
    report: Report, settings: LocalRegistrySettings, owner: str, local_engine: bool,
    problems: list[str], notes: list[str],
) -> None:
    port = settings.port
    key = f"{NAMESPACE}:localRegistry.port"
    free = f"pick a free port (`{_SET}.port {port + 1}`)"
    clashing = set()
    # Another stack's registry on this port, running or not: both would publish 127.0.0.1:<port>.
    for found in report.local_registries:
        if found.owner != owner and found.port == port:
            clashing.add(found.name)
            stack = found.owner.rsplit("/", 1)[-1]
            problems.append(
                f"{key}: {port} is the port of stack {found.owner}'s local registry ({found.name}, {found.state}). "
                f"Share it: `{_SET}.useStack {stack}` (and remove localRegistry.port); or give this stack its own "
                f"registry: {free}"
            )
    ours_publishes = others_publish = False
    for published in report.published:
        entry = holds_port(published, port)
        if entry is None:
            continue
        if _ours(published.owner, published.role, owner):
            ours_publishes = True
            continue
        others_publish = True
        if published.name in clashing:
            continue
        problems.append(
            f"{key}: {port} on 127.0.0.1 is already published by container {published.name!r} ({entry}), which is "
            f"not this stack's local registry; {free}, or stop that container (`docker stop {published.name}`)"
        )
    # A listener on the port is then that container's (docker-proxy), already named, or ours.
    if ours_publishes or others_publish or clashing or not report.port_probe.startswith("listening"):
        return
    holder = report.port_process or "a process that is not a container of this Docker engine (see `ss -ltnp` or `lsof -i`)"
    where = report.port_probe.removeprefix("listening").strip() or "127.0.0.1"
    if local_engine:
        problems.append(
            f"{key}: {port} is in use on this machine ({where}) by {holder}: Docker could not publish the registry "
            f"there, or pushes to localhost:{port} would reach that instead. {free[0].upper()}{free[1:]}, or stop it"
        )
    else:
        notes.append(
            f"localRegistry: {port} is in use on this machine by {holder}; the remote Docker engine publishes the "
            f"registry on its own machine, where `docker push localhost:{port}/...` (run by that engine) reaches it; "
            f"tools that push from this machine need a tunnel on another local port"
        )


def _shared(report: Report, stack: str, *, project: str, network: str) -> LocalRegistryPlan:
    other = f"{project}/{stack}"
    key = f"{NAMESPACE}:localRegistry.useStack"
    found = [r for r in report.local_registries if r.owner == other]
    if not found:
        raise PreflightError(
            f"{key}: stack {other} has no local registry on this Docker engine (no container labelled "
            f"{render.LABEL_ROLE}={render.ROLE} and kind-registry-cache.stack={other}). Bring it up first "
            f"(`pulumi up --stack {stack}` with its localRegistry enabled), or remove localRegistry.useStack to "
            f"run this stack's own"
        )
    registry = found[0]
    if registry.port is None:
        raise PreflightError(
            f"{key}: stack {other}'s local registry {registry.name} carries no {render.LABEL_PORT} label (made by an "
            f"older version?); run `pulumi up --stack {stack}` once to recreate it, then this stack"
        )
    if network not in registry.networks:
        raise PreflightError(
            f"{key}: stack {other}'s local registry {registry.name} is on docker network(s) "
            f"{', '.join(registry.networks) or 'none'}, not on this stack's {network!r}: the nodes could not resolve "
            f"it. Use the same network.name as stack {stack}, or remove localRegistry.useStack"
        )
    notes = [
        f"localRegistry: using stack {other}'s registry {registry.name} at localhost:{registry.port}; this stack "
        f"creates none and its destroy leaves it (destroying {stack} removes its container, not your images)"
    ]
    if registry.state != "running":
        notes.append(f"localRegistry: {registry.name} is {registry.state}; start it (`docker start {registry.name}`)")
    return LocalRegistryPlan(container=registry.name, port=registry.port, owner=other, shared=True, notes=tuple(notes))
