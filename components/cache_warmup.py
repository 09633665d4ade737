"""The warm-up step: pull the add-ons' (and the team's) images through the caches while kind creates the cluster."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command

from krc.commands import hubquota
from krc.render.warmup import Plan, docker_hub_pulls

TOKEN = "kind-registry-cache:index:CacheWarmup"

#: The project root: ``python -m krc.commands.warmup`` runs from here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CacheWarmupArgs:
    """Inputs of :class:`CacheWarmup`."""

    plan: Plan
    #: The cache containers the warm-up runs in; it starts once they exist, not after the cluster.
    caches: Sequence[pulumi.CustomResource]
    #: The Docker engine the caches run on; ``None`` for the Docker CLI's own choice.
    docker_host: str | None = None
    #: What the plan leaves out and why (logged on every run).
    notes: Sequence[str] = ()
    #: The docker.io cache's upstream, to read what is left of Docker Hub's allowance (None: do not read it).
    hub_url: str | None = None
    #: The docker.io login (secret), whose allowance applies when the cache logs in.
    hub_login: tuple[pulumi.Output[str], pulumi.Output[str]] | None = None


class CacheWarmup(pulumi.ComponentResource):
    """Runs ``python -m krc.commands.warmup`` with the plan on stdin; fails naming every image it could not pull.

    Warns, in preview too, when a cold warm-up would need more Docker Hub pulls than are left of the allowance.
    """

    done: list[pulumi.Resource]
    """What resources that need warm caches wait for (the Helm releases); empty when nothing is to warm."""

    def __init__(self, name: str, args: CacheWarmupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        for note in [*args.notes, *(f"not warmed: {image}: {why}" for image, why in args.plan.skipped)]:
            pulumi.log.info(note, resource=self)
        self.done = []
        self._check_hub_quota(args)
        if not args.plan.targets:
            self.register_outputs({})
            return
        # The interpreter running this program has the project's packages, which the warm-up imports;
        # it reaches the caches through the Docker CLI (docker exec), like kind reaches the engine.
        images = command.local.Command(
            f"{name}-images",
            create=f"{shlex.quote(sys.executable)} -m krc.commands.warmup",
            stdin=args.plan.to_json(),
            dir=str(PROJECT_ROOT),
            environment={"DOCKER_HOST": args.docker_host} if args.docker_host else None,
            # A replaced cache container may come with an emptied volume: warm it again. A changed image
            # list (stdin) is an in-place update, which runs the warm-up again too.
            triggers=[cache.id for cache in args.caches],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.caches)),
        )
        self.done = [images]
        self.register_outputs({})

    def _check_hub_quota(self, args: CacheWarmupArgs) -> None:
        """Ask Docker Hub what is left (a manifest HEAD, which spends no pull) and warn when the cold warm-up
        would not fit. A read-only invoke with no dependency, so it runs in every preview; offline it says nothing."""
        pulls = docker_hub_pulls(args.plan)
        if not pulls or not args.hub_url:
            return
        environment: dict[str, pulumi.Input[str]] = {hubquota.URL_ENV: args.hub_url}
        if args.hub_login is not None:
            # The login travels in the environment of that one process, never on its command line.
            environment |= {hubquota.USERNAME_ENV: args.hub_login[0], hubquota.PASSWORD_ENV: args.hub_login[1]}
        result = command.local.run_output(
            command=f"{shlex.quote(sys.executable)} -m krc.commands.cachectl quota --json 2>/dev/null || echo '{{}}'",
            dir=str(PROJECT_ROOT),
            environment=environment,
            logging=command.local.Logging.STDERR,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )

        def warn(text: str) -> None:
            try:
                quota = hubquota.Quota.from_output(json.loads(text or "{}"))
            except (json.JSONDecodeError, AttributeError):
                return
            warning = hubquota.warm_up_warning(pulls, quota)
            if warning:
                pulumi.log.warn(warning, resource=self)

        result.stdout.apply(warn)
