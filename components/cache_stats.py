"""The ``cacheStats`` stack output: ``cachectl stats`` read at the end of every preview and ``pulumi up``."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.cache_warmup import PROJECT_ROOT
from krc.commands import cachereport

TOKEN = "kind-registry-cache:index:CacheStats"


@dataclass
class CacheStatsArgs:
    """Inputs of :class:`CacheStats`."""

    #: ``<project>/<stack>`` whose caches to report (another stack's with ``cache.useStack``).
    owner: str
    #: What has to happen before the numbers are read: the warm-up and the add-ons' pulls.
    depends_on: Sequence[pulumi.Resource]
    docker_host: str | None = None


class CacheStats(pulumi.ComponentResource):
    """Per upstream: hits, misses, bytes from cache and from upstream, disk used."""

    stats: pulumi.Output[dict]
    """upstream host -> {hits, misses, bytesFromCache, bytesFromUpstream, diskBytes, ...}."""

    def __init__(self, name: str, args: CacheStatsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        # A read-only invoke, not a resource: it adds no diff to every preview, and runs once what it
        # depends on is done (in a preview of changes to them it is skipped and the output is unknown).
        # It never fails the update: without readable caches the output is empty. `--running-only`: a
        # preview starts no container, not even a throwaway one to measure a stopped cache's volume.
        script = f"{shlex.quote(sys.executable)} -m krc.commands.cachectl stats --json --running-only --stack {shlex.quote(args.owner)}"
        result = command.local.run_output(
            command=f"{script} 2>/dev/null || echo '{{}}'",
            dir=str(PROJECT_ROOT),
            environment={"DOCKER_HOST": args.docker_host} if args.docker_host else None,
            logging=command.local.Logging.STDERR,
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.stats = result.stdout.apply(lambda text: cachereport.parse_output(text, args.owner))
        self.register_outputs({"stats": self.stats})
