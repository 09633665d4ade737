"""The ``cacheStats`` stack output: ``cachectl stats`` run at the end of every ``pulumi up``."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from . import cachectl
from .cachewarmup import PROJECT_ROOT

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
        stats = command.local.Command(
            f"{name}-read",
            create=f"{shlex.quote(sys.executable)} -m components.cachectl stats --json --stack {shlex.quote(args.owner)}",
            dir=str(PROJECT_ROOT),
            environment={"DOCKER_HOST": args.docker_host} if args.docker_host else None,
            # Counters change with every pull: read them on every `pulumi up` (previews show this one replace).
            triggers=[str(time.time_ns())],
            logging=command.local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.stats = stats.stdout.apply(lambda text: cachectl.parse_output(text, args.owner))
        self.register_outputs({"stats": self.stats})
