"""Runs the read-only preflight checks on this machine during preview and update."""

from __future__ import annotations

import pulumi
import pulumi_command as command

from . import preflight
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
