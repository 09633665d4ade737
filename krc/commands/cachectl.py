"""``python -m krc.commands.cachectl``: what the caches hold and serve, and purging them (no Pulumi here).

``stats`` prints per upstream the hits, misses, bytes served from the cache and fetched from upstream,
disk used, whether the cache logs in, and for docker.io what is left of Docker Hub's pull allowance;
``quota`` prints that allowance alone; ``purge`` empties or removes caches, per upstream or all, without
asking; ``registry`` shows the local registries for the user's own images (:mod:`krc.commands.localregistries`):
size and repositories; ``offline`` says what a ``pulumi destroy`` + ``pulumi up`` without a network would miss
(:mod:`krc.commands.offline`). Caches are
found by the labels every cache container and volume carries, through the Docker CLI, so both work
with the cluster down, after ``pulumi destroy`` (volumes only), and on Docker Desktop.

Finding and purging the caches is in :mod:`krc.commands.caches`, reading their numbers in
:mod:`krc.commands.cachereport` and :mod:`krc.commands.cachemetrics`; this module is the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from krc import versions
from krc.commands import dockercli, hubquota, localregistries, offline
from krc.commands.cachereport import collect, format_table, to_json
from krc.commands.caches import find, owner_of, purge
from krc.commands.dockercli import DockerError, Runner
from krc.commands.offline import OfflineError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m krc.commands.cachectl", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    stats = commands.add_parser("stats", help="hits, misses, bytes and disk per upstream")
    stats.add_argument("--stack", help="only this stack's caches (default: every stack's)")
    stats.add_argument("--json", action="store_true", help="machine-readable: {stack: {upstream: {...}}}")
    stats.add_argument("--running-only", action="store_true",
                       help="read running caches only; start no throwaway container for stopped ones")
    stats.add_argument("--no-hub", action="store_true", help="do not ask Docker Hub what is left of its allowance")
    quota = commands.add_parser("quota", help="what is left of Docker Hub's pull allowance (a HEAD: spends no pull)")
    quota.add_argument("--json", action="store_true", help="machine-readable: {limit, remaining, windowSeconds, ...}")
    for sub in (stats, quota):
        sub.add_argument("--hub-url", default=None,
                         help=f"the registry to ask (default ${hubquota.URL_ENV} or {hubquota.HUB_URL}); a login "
                              f"only from ${hubquota.USERNAME_ENV} / ${hubquota.PASSWORD_ENV}")
    purge_cmd = commands.add_parser("purge", help="empty or remove caches, without asking")
    purge_cmd.add_argument("--stack", help="whose caches (default: the only stack with caches on this engine)")
    which = purge_cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--upstream", action="append", metavar="HOST", help="an upstream host such as docker.io (repeatable)")
    which.add_argument("--all", action="store_true", help="every upstream of the stack")
    purge_cmd.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
    registry_cmd = commands.add_parser("registry", help="the local registries for your own images: size, repositories")
    registry_cmd.add_argument("--stack", help="only this stack's (default: every stack's)")
    registry_cmd.add_argument("--json", action="store_true", help="machine-readable: {stack: {registry: {...}}}")
    registry_cmd.add_argument("--running-only", action="store_true",
                              help="read running registries only; start no throwaway container for stopped ones")
    for sub in (stats, purge_cmd, registry_cmd):
        sub.add_argument("--image", default=versions.REGISTRY_IMAGE,
                         help="registry image for reading or emptying a volume without a container (default %(default)s)")
    offline_cmd = commands.add_parser(
        "offline", help="what a destroy + up without a network would miss; exits 1 if anything, 2 if it cannot tell")
    offline_cmd.add_argument("--stack", help="which stack (default: the only one whose `up` left a record here)")
    offline_cmd.add_argument("--json", action="store_true", help="machine-readable: {stack, ready, missing, items}")
    offline_cmd.add_argument("--image", help="registry image that reads the cache volumes (default: the stack's cache.image)")
    return parser


def main(argv: Sequence[str] | None = None, runner: Runner | None = None,
         http: hubquota.Http = hubquota.urllib_http) -> int:
    args = _parser().parse_args(argv)
    docker = runner or dockercli.cli
    if args.command == "offline":
        return _offline(docker, args)
    if args.command == "quota":
        quota = hubquota.read_from_environment(args.hub_url, http=http)
        print(json.dumps(quota.as_output(), sort_keys=True) if args.json else f"Docker Hub: {quota.describe()}")
        return 0
    try:
        if args.command == "stats":
            refs = find(docker, owner_of(args.stack) if args.stack else None)
            stats = [collect(docker, ref, args.image, running_only=args.running_only) for ref in refs]
            hub = [s for s in stats if s.host == "docker.io"]
            if hub and not args.no_hub:
                # Once for all: anonymous pulls are counted per address, the same for every stack here.
                quota = hubquota.read_from_environment(args.hub_url, http=http).as_output()
                for entry in hub:
                    entry.docker_hub = quota
            print(json.dumps(to_json(stats), indent=2, sort_keys=True) if args.json else format_table(stats), end="\n" if args.json else "")
            return 0
        if args.command == "registry":
            found = localregistries.find(docker, owner_of(args.stack) if args.stack else None)
            report = [localregistries.collect(docker, ref, args.image, running_only=args.running_only) for ref in found]
            print(json.dumps(localregistries.to_json(report), indent=2, sort_keys=True) if args.json
                  else localregistries.format_table(report), end="\n" if args.json else "")
            return 0
        return _purge(docker, args)
    except DockerError as error:
        print(f"cachectl: {error}", file=sys.stderr)
        return 1


def _offline(docker: Runner, args: argparse.Namespace) -> int:
    try:
        code, text = offline.run(docker, str(Path.home()), owner_of(args.stack) if args.stack else None, args.json, args.image)
    except (OfflineError, DockerError) as error:
        print(f"cachectl: {error}", file=sys.stderr)
        return 2
    print(text, end="")
    return code


def _purge(docker: Runner, args: argparse.Namespace) -> int:
    refs = find(docker, owner_of(args.stack) if args.stack else None)
    owners = sorted({r.owner for r in refs})
    if not refs:
        where = f"stack {owner_of(args.stack)}" if args.stack else "any stack"
        print(f"cachectl: no caches of {where} on this Docker engine; nothing to purge", file=sys.stderr)
        return 0
    if len(owners) > 1:
        print(f"cachectl: caches of several stacks are here ({', '.join(owners)}); say which with --stack",
              file=sys.stderr)
        return 2
    if not args.all:
        wanted = {h.strip().lower() for h in args.upstream}
        unknown = wanted - {r.host for r in refs}
        if unknown:
            print(f"cachectl: {owners[0]} has no cache for {', '.join(sorted(unknown))}; "
                  f"it has {', '.join(r.host for r in refs)}", file=sys.stderr)
            return 2
        refs = [r for r in refs if r.host in wanted]
    purge(docker, refs, args.image, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
