"""Runs the read-only preflight checks on this machine during preview and update."""

from __future__ import annotations

import pulumi
import pulumi_command as command

from . import gateway, preflight
from .config import StackConfig


def check(config: StackConfig) -> preflight.Decision:
    """Check kind, Docker and the docker network; raise ``pulumi.RunError`` with the fix when one is off."""
    settings = config.settings
    environment = {"DOCKER_HOST": settings.docker.host} if settings.docker.host else None
    result = command.local.run(command=preflight.SCRIPT, environment=environment, logging=command.local.Logging.STDERR)
    report = preflight.parse(result.stdout)
    try:
        decision = preflight.check(
            report,
            settings.network,
            owner=f"{settings.project}/{settings.stack}",
            configured_host=settings.docker.host,
            env_host=config.env_docker_host,
        )
    except preflight.PreflightError as error:
        raise pulumi.RunError(str(error)) from None
    for note in decision.notes:
        pulumi.log.info(note)
    return decision


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
