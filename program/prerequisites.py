"""Runs the read-only preflight checks on this machine during preview and update."""

from __future__ import annotations

import dataclasses
import os
import sys

import pulumi
import pulumi_command as command

from krc import preflight
from krc.preflight import kindrelease, localregistry
from krc.render import gateway, kindconfig
from program.config import StackConfig


def cluster_record(config: StackConfig) -> str:
    """The file the cluster's create script writes: its generation and control-plane container id."""
    settings = config.settings
    return f"{settings.state_dir}/kind-{settings.cluster.name}.generation"


def check(config: StackConfig) -> tuple[preflight.Decision, preflight.Generations]:
    """Check kind, Docker and the docker network, and see what of this stack exists.

    Raises ``pulumi.RunError`` with the fix when a prerequisite is off.
    """
    settings = config.settings
    own_registry = config.local_registry if config.local_registry.own else None
    environment = preflight.environment(
        owner=f"{settings.project}/{settings.stack}",
        cluster=settings.cluster.name,
        cluster_record=cluster_record(config),
        certs_dir=settings.certs_dir,
        local_registry=(own_registry.name, own_registry.port) if own_registry else None,
        python=sys.executable,
    )
    if settings.docker.host:
        environment["DOCKER_HOST"] = settings.docker.host
    result = command.local.run(command=preflight.SCRIPT, environment=environment, logging=command.local.Logging.STDERR)
    report = preflight.parse(result.stdout)
    try:
        download: kindrelease.Asset | str = kindrelease.asset(config.home, base_url=config.kind_download_base)
    except kindrelease.KindReleaseError as error:
        download = str(error)
    try:
        decision = preflight.check(
            report,
            settings.network,
            owner=f"{settings.project}/{settings.stack}",
            configured_host=settings.docker.host,
            env_host=config.env_docker_host,
            kind_download=download,
        )
        addons = config.addons
        enabled = [key for key, on in (("addons.cilium", addons.cilium.enabled), ("addons.metallb", addons.metallb.enabled),
                                       ("addons.ingressNginx", addons.ingress_nginx.enabled)) if on]
        preflight.refuse_addons_on_remote_engine(decision, enabled)
        registry = localregistry.plan(
            report,
            config.local_registry,
            project=settings.project,
            owner=settings.owner,
            network=settings.network.name,
            local_engine=_local_engine(decision.docker_host or config.env_docker_host or report.context_host),
        )
    except preflight.PreflightError as error:
        raise pulumi.RunError(str(error)) from None
    remote = (
        ("local registry: no local-registry-hosting ConfigMap in the cluster; its API server is on the remote engine's "
         "machine, out of reach from here",) if registry and decision.remote_engine else ()
    )
    decision = dataclasses.replace(
        decision, local_registry=registry, notes=(*decision.notes, *(registry.notes if registry else ()), *remote)
    )
    if decision.kind.download is not None:
        # Read-only: is the pinned kind there now? If not, `up` fetches it again before any kind command.
        decision = dataclasses.replace(
            decision, kind=dataclasses.replace(decision.kind, present=os.access(decision.kind.path, os.X_OK))
        )
    generations = preflight.generations(
        report,
        cache_names=[settings.cache.container_name(m) for m in settings.cache.local_mirrors],
        node_names=kindconfig.node_names(settings.cluster),
        local_registry=own_registry.name if own_registry else None,
    )
    for note in decision.notes:
        pulumi.log.info(note)
    if generations.missing:
        pulumi.log.info("not found on the machine, so `up` (re)creates: " + "; ".join(generations.missing))
    return decision, generations


def _local_engine(docker_host: str | None) -> bool:
    """Whether the engine publishes ports on this machine: a local socket (Docker Engine, Docker Desktop and Colima
    forward theirs here), not ``tcp://`` or ``ssh://``."""
    return not docker_host or docker_host.startswith(("unix://", "npipe://"))


def gateway_plan(config: StackConfig, decision: preflight.Decision) -> gateway.GatewayPlan | None:
    """How the shared Gateway is exposed on this machine (``None`` without it); ``pulumi.RunError`` with the fix
    when the host could not reach it. Runs before any resource, like the checks above."""
    addons = config.addons
    if not addons.gateway_api.enabled:
        return None
    mode, reason = gateway.resolve_mode(
        addons.gateway_api,
        metallb_enabled=addons.metallb.enabled,
        kind_network_routable=decision.kind_network_routable,
        engine=decision.engine,
    )
    try:
        found = gateway.plan(
            addons.gateway_api,
            mode=mode,
            reason=reason,
            metallb_last_address=addons.metallb.range.end if addons.metallb.range else None,
            port_mappings=config.settings.cluster.port_mappings,
        )
    except gateway.GatewayError as error:
        raise pulumi.RunError(str(error)) from None
    pulumi.log.info(f"Gateway API: {found.mode} ({found.reason}); from this machine: {found.url}")
    return found
