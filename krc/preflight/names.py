"""The names this stack would take on the Docker engine, against what already holds them (no Pulumi here).

A name is this stack's to use when nothing holds it, or when what holds it is provably this stack's: a cache
container or volume labelled ``kind-registry-cache.stack=<project>/<stack>``, a kind cluster whose
control-plane container is the one the cluster's record names. Anything else holding a name is someone
else's — another stack's caches or cluster, a container the user made — and is refused during preview, with
a free name to use instead, never taken over, replaced or deleted (issue #18). ``cache.useStack`` is checked
the other way round: the other stack's caches must be there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from krc.config import NAMESPACE, Settings, checks, cluster_models
from krc.preflight.report import Report


def conflicts(report: Report, settings: Settings) -> list[str]:
    """Each name this stack needs that something else holds (or, for ``cache.useStack``, that is missing)."""
    problems: list[str] = []
    problems += _cluster(report, settings)
    problems += _caches(report, settings)
    problems += _use_stack(report, settings)
    return problems


def message(problems: list[str]) -> str:
    """The preview's error for :func:`conflicts`: each problem with its key and fix (lookalikes escaped)."""
    lines = "\n".join(f"  - {checks.escape_non_ascii(p)}" for p in problems)
    return (
        f"this stack's names on the Docker engine are not free ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n"
        f"{lines}\nNothing was created, changed or deleted."
    )


def recorded_control_plane(report: Report) -> str:
    """The control-plane container id the cluster's record names ("" without a record)."""
    return report.cluster_record.partition(" ")[2].strip()


def _cluster(report: Report, settings: Settings) -> list[str]:
    cluster = settings.cluster
    taken = {c.cluster for c in report.containers.values() if c.cluster}
    free = _free(cluster.name, lambda n: n not in taken and not _names_taken(report, n), cluster_models.suggested_name)
    rename = f"set another name: `pulumi config set --path {NAMESPACE}:cluster.name {free}`"
    problems: list[str] = []
    if report.nodes and recorded_control_plane(report) not in report.nodes:
        where = settings.cluster_record
        problems.append(
            f"{NAMESPACE}:cluster.name: a kind cluster named {cluster.name!r} exists and this stack did not create it "
            f"(its record {where} names none of its nodes), so `up` will neither use nor delete it. If it is yours "
            f"and you want it gone, `kind delete cluster --name {cluster.name}`; otherwise {rename}"
        )
    for name in cluster.container_names():
        holder = report.containers.get(name)
        if holder is not None and holder.cluster != cluster.name:
            problems.append(
                f"{NAMESPACE}:cluster.name: the container {name!r}, a name kind gives a node of cluster "
                f"{cluster.name!r}, exists and is {_whose(holder)}; {rename}"
            )
    return problems


def _names_taken(report: Report, cluster_name: str) -> bool:
    probe = cluster_models.ClusterSettings(cluster_name)
    return any(n in report.containers for n in probe.container_names())


def _caches(report: Report, settings: Settings) -> list[str]:
    cache, owner = settings.cache, settings.owner
    mirrors = cache.local_mirrors
    problems: list[str] = []
    clashes: list[str] = []
    for mirror in mirrors:
        name, volume = cache.container_name(mirror), cache.volume_name(mirror)
        holder = report.containers.get(name)
        if holder is not None and holder.stack != owner:
            clashes.append(f"the container {name!r} exists and is {_whose(holder)}")
        if volume in report.volumes and report.volumes[volume] != owner:
            label = report.volumes[volume]
            whose = f"stack {label}'s" if label else "not made by this program"
            clashes.append(f"the volume {volume!r} exists and is {whose} (the cache would write into it)")
    if clashes:
        def fits(prefix: str) -> bool:
            other = dataclasses.replace(cache, name_prefix=prefix)
            names = [n for m in mirrors for n in (other.container_name(m), other.volume_name(m))]
            return not any(n in report.containers or n in report.volumes for n in names)

        free = _free(cache.name_prefix, fits, lambda text: text)
        problems.append(
            f"{NAMESPACE}:cache.namePrefix: {'; '.join(clashes)}; this stack takes no name that is not its own: "
            f"set a prefix of its own, e.g. `pulumi config set --path {NAMESPACE}:cache.namePrefix {free}`"
        )
    return problems


def _use_stack(report: Report, settings: Settings) -> list[str]:
    cache = settings.cache
    if cache.use_stack is None:
        return []
    other = f"{settings.project}/{cache.use_stack}"
    missing, foreign = [], []
    for mirror in cache.mirrors:
        if mirror.shared_container is None:
            continue
        holder = report.containers.get(mirror.shared_container)
        if holder is None:
            missing.append(mirror.shared_container)
        elif holder.stack != other:
            foreign.append(f"{mirror.shared_container!r} is {_whose(holder)}")
    problems = []
    if missing:
        problems.append(
            f"{NAMESPACE}:cache.useStack: stack {cache.use_stack!r} has no cache on this Docker engine "
            f"({', '.join(missing)} not found): bring it up first (`pulumi up --stack {cache.use_stack}`), or run "
            f"this stack's own caches (`pulumi config rm --path {NAMESPACE}:cache.useStack`)"
        )
    if foreign:
        problems.append(
            f"{NAMESPACE}:cache.useStack: {'; '.join(foreign)}, not stack {other}'s cache; "
            f"remove cache.useStack (`pulumi config rm --path {NAMESPACE}:cache.useStack`)"
        )
    return problems


def _whose(container) -> str:
    if container.stack:
        return f"a cache of stack {container.stack}"
    if container.cluster:
        return f"a node of kind cluster {container.cluster!r}"
    return "not made by this program or kind"


def _free(base: str, ok: Callable[[str], bool], clean: Callable[[str], str]) -> str:
    """``base-2``, ``base-3`` ... (made valid by ``clean``): the first that ``ok`` accepts."""
    for number in range(2, 1000):
        suffix = f"-{number}"
        candidate = clean(f"{base[: 40 - len(suffix)]}{suffix}")
        if ok(candidate):
            return candidate
    return clean(f"{base[:30]}-new")
