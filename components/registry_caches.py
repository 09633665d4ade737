"""The pull-through caches: per upstream a registry container and a volume that outlives destroy."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from krc import preflight
from krc.config import CacheSettings, Mirror
from krc.render import mirrors, registry

TOKEN = "kind-registry-cache:index:RegistryCaches"


@dataclass
class RegistryCachesArgs:
    """Inputs of :class:`RegistryCaches`."""

    settings: CacheSettings
    #: The docker network nodes resolve the caches on.
    network_name: pulumi.Input[str]
    #: ``<project>/<stack>``, written as a label on every container and volume.
    owner: str
    #: upstream host -> (username, password), both secret.
    credentials: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]] = field(default_factory=dict)
    #: container name -> generation token (``preflight.generations``): the container's own while it exists,
    #: a fresh one when it was removed by hand, so the next `up` creates it again; "" adds no label.
    generations: dict[str, str] = field(default_factory=dict)


class RegistryCaches(pulumi.ComponentResource):
    """One registry in proxy mode per local upstream, attached to the kind network under a stable name.

    Shared mirrors (an existing cache elsewhere, or another stack's) get no container and no volume here.
    """

    mirrors: pulumi.Output[dict]
    """upstream host -> {container, url, remote, volume, hostPort} for a local cache, {url, remote, shared}
    for a shared one; no credentials."""
    containers: list[docker.Container]
    """The cache containers, for resources that must wait for them."""
    image_id: pulumi.Output[str] | None
    """The registry image's id when this component pulls it (no local cache: ``None``), for the local registry."""

    def __init__(self, name: str, args: RegistryCachesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        # Pulled once and kept on destroy: the next `pulumi up` must not download it again.
        image = (
            docker.RemoteImage(f"{name}-image", name=settings.image, keep_locally=True, opts=child)
            if settings.local_mirrors
            else None
        )
        self.image_id = image.image_id if image is not None else None

        self.containers = []
        table: dict[str, dict] = {}
        for mirror in settings.mirrors:
            if image is None or not mirror.is_local:
                table[mirror.host] = {"url": mirror.shared, "remote": mirror.remote, "shared": True}
                continue
            container = self._cache(name, args, mirror, image)
            self.containers.append(container)
            table[mirror.host] = {
                "container": settings.container_name(mirror),
                "url": mirrors.mirror_url(settings.container_name(mirror)),
                "remote": mirror.remote,
                "volume": settings.volume_name(mirror),
                "hostPort": settings.host_port(mirror),
            }
        self.mirrors = pulumi.Output.from_input(table)
        self.register_outputs({"mirrors": self.mirrors})

    def _cache(self, name: str, args: RegistryCachesArgs, mirror: Mirror, image: docker.RemoteImage) -> docker.Container:
        settings = args.settings
        labels = {registry.LABEL_STACK: args.owner, registry.LABEL_UPSTREAM: mirror.host}

        # The cache is the product: `pulumi destroy` leaves the volume (and its images) in place.
        volume = docker.Volume(
            f"{name}-{mirror.slug}-volume",
            name=settings.volume_name(mirror),
            labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in labels.items()],
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

        env: pulumi.Input[list[str]] = registry.env_list(registry.environment(mirror.remote, settings.ttl))
        login = args.credentials.get(mirror.host)
        if login is not None:
            env = pulumi.Output.all(login[0], login[1]).apply(
                lambda pair, base=registry.environment(mirror.remote, settings.ttl): registry.env_list(
                    base | registry.credential_environment(pair[0], pair[1])
                )
            )

        host_port = settings.host_port(mirror)
        ports = (
            [docker.ContainerPortArgs(internal=mirrors.CACHE_PORT, external=host_port, ip="127.0.0.1")]
            if host_port
            else []
        )
        container_name = settings.container_name(mirror)
        container_labels = dict(labels)
        if args.generations.get(container_name):
            # Labels force a new container (terraform-provider-docker resource_docker_container.go: "labels"
            # is ForceNew); deleting the vanished old one is a no-op ("No such container" is ignored in
            # resourceDockerContainerDelete, v3.0.2 through v4.5.0).
            container_labels[preflight.LABEL_GENERATION] = args.generations[container_name]
        return docker.Container(
            f"{name}-{mirror.slug}",
            name=container_name,
            image=image.image_id,
            # A pull-through cache from start to stop, reachable upstream or not (krc/render/registry.py).
            entrypoints=registry.entrypoint(),
            # A connect to an upstream that drops packets gives up in seconds, not Go's 30 s (registry.py).
            sysctls=registry.SYSCTLS,
            envs=env,
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=registry.DATA_DIR)],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[container_name])],
            restart="unless-stopped",
            ports=ports,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=registry.healthcheck_command(), interval="10s", timeout="3s", retries=3, start_period="5s"
            ),
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in container_labels.items()],
            opts=pulumi.ResourceOptions(parent=self),
        )
