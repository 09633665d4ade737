"""The warm-up plan: which images the stack warms, through which cache container (no Pulumi, no I/O here).

``python -m krc.commands.warmup`` runs a :class:`Plan` (JSON on stdin); the program builds it here from the settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from krc.config.addons import AddonSettings
from krc.config import CacheSettings, WarmupSettings
from krc import versions
from krc.render import registry
from krc.config.imageref import parse_reference


def addon_images(addons: AddonSettings) -> tuple[list[str], list[str]]:
    """The images the enabled add-ons pull, from the lists pinned next to their chart versions.

    :returns: ``(images, notes)``; a note names what is left out and why: an add-on whose chart version
        is not the pinned one (its images differ), and an image pinned without a tag.
    """
    images: list[str] = []
    notes: list[str] = []

    def add(name: str, enabled: bool, version: str, pinned: str, lists: Iterable[Sequence[str]]) -> None:
        if not enabled:
            return
        if version != pinned:
            notes.append(
                f"addons.{name}.version {version} is not the pinned {pinned}: its images are not warmed; "
                f"list them in warmup.images"
            )
            return
        for image in (i for group in lists for i in group):
            if parse_reference(image).pinned:
                images.append(image)
            else:
                notes.append(f"{image} has no pinned tag in krc/versions.py: not warmed")

    add("cilium", addons.cilium.enabled, addons.cilium.version, versions.CILIUM_CHART,
        [versions.CILIUM_IMAGES, versions.CILIUM_HUBBLE_IMAGES if addons.cilium.hubble else ()])
    add("metallb", addons.metallb.enabled, addons.metallb.version, versions.METALLB_CHART,
        [versions.METALLB_IMAGES, versions.METALLB_FRR_IMAGES if addons.metallb.frr else ()])
    add("ingressNginx", addons.ingress_nginx.enabled, addons.ingress_nginx.version, versions.INGRESS_NGINX_CHART,
        [versions.INGRESS_NGINX_IMAGES])
    return images, notes


def images_to_warm(warmup: WarmupSettings, addons: AddonSettings) -> tuple[list[str], list[str]]:
    """The add-ons' images plus ``warmup.images`` (or only those with ``warmup.replace``), without repeats."""
    if warmup.replace:
        return list(warmup.images), []
    images, notes = addon_images(addons)
    return list(dict.fromkeys([*images, *warmup.images])), notes


@dataclass(frozen=True)
class Target:
    """The images one cache container warms: all from ``host``."""

    host: str
    container: str
    images: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """Everything the warm-up needs, as plain data (it crosses a process boundary as JSON)."""

    targets: tuple[Target, ...]
    #: ``os/arch[/variant]`` to pick from a multi-platform image; ``None`` for the engine's own.
    platform: str | None = None
    #: Blob downloads at once, across all caches.
    parallel: int = 4
    #: (image, why) for images no local cache serves.
    skipped: tuple[tuple[str, str], ...] = ()
    #: The registry's storage root inside the cache containers.
    data_dir: str = registry.DATA_DIR

    @property
    def images(self) -> list[str]:
        return [image for target in self.targets for image in target.images]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        return cls(
            targets=tuple(Target(t["host"], t["container"], tuple(t["images"])) for t in data["targets"]),
            platform=data.get("platform"),
            parallel=int(data.get("parallel", 4)),
            skipped=tuple((image, why) for image, why in data.get("skipped", ())),
            data_dir=data.get("data_dir", registry.DATA_DIR),
        )


def plan(cache: CacheSettings, warmup: WarmupSettings, images: Sequence[str]) -> Plan:
    """Group ``images`` by registry host onto the cache container that serves it.

    A local mirror's cache is this stack's container; a ``cache.useStack`` mirror's is the other stack's
    container on the same engine. A mirror shared at a URL has no container here, and a host without a
    mirror is pulled from its upstream directly: both are skipped, with the reason.
    """
    by_host = {m.host: m for m in cache.mirrors}
    grouped: dict[str, list[str]] = {}
    containers: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    for image in images:
        ref = parse_reference(image)
        mirror = by_host.get(ref.host)
        if mirror is None:
            skipped.append((image, f"no mirror for {ref.host}: nodes pull it from the upstream directly"))
            continue
        container = cache.container_name(mirror) if mirror.is_local else mirror.shared_container
        if container is None:
            skipped.append((image, f"{ref.host} is pulled through the shared cache {mirror.shared}; warm it there"))
            continue
        containers[ref.host] = container
        grouped.setdefault(ref.host, []).append(image)
    targets = tuple(Target(host, containers[host], tuple(dict.fromkeys(found))) for host, found in grouped.items())
    return Plan(targets=targets, platform=warmup.platform, parallel=warmup.parallel, skipped=tuple(skipped))


#: The registry host whose pulls Docker Hub counts against an allowance.
DOCKER_HUB = "docker.io"


def docker_hub_pulls(warmup_plan: Plan) -> int:
    """Docker Hub pulls a cold warm-up of ``warmup_plan`` costs, as Docker counts them: one per image (the warm-up
    fetches one platform's manifest of each; an index GET is not a pull of its own, a HEAD never counts)."""
    return sum(len(t.images) for t in warmup_plan.targets if t.host == DOCKER_HUB)


def docker_hub_remote(cache: CacheSettings) -> str | None:
    """The upstream the docker.io mirror pulls from (where Docker Hub's allowance is read); None without one."""
    return next((m.remote for m in cache.mirrors if m.host == DOCKER_HUB), None)


def stack_plan(cache: CacheSettings, warmup: WarmupSettings, addons: AddonSettings) -> tuple[Plan, list[str]]:
    """The stack's warm-up: :func:`images_to_warm` placed by :func:`plan`; plus notes for the log."""
    images, notes = images_to_warm(warmup, addons)
    return plan(cache, warmup, images), notes
