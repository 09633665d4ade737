"""The local registry for the user's own images: a plain registry container and a volume that outlives destroy."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from krc import preflight
from krc.render import localregistry, mirrors, registry

TOKEN = "kind-registry-cache:index:LocalRegistry"


@dataclass
class LocalRegistryArgs:
    """Inputs of :class:`LocalRegistry`."""

    #: The container's and the volume's name; the container's host name on the kind network.
    name: str
    #: The host port on 127.0.0.1 developers push to (``localhost:<port>``).
    port: int
    #: The docker network the nodes resolve the registry on.
    network_name: pulumi.Input[str]
    #: ``<project>/<stack>``, written as a label on the container and the volume.
    owner: str
    #: The registry image, pulled and kept by this component when ``image_id`` is not given.
    image: str
    #: The id of that image when another resource already pulls it (the caches' ``RemoteImage``).
    image_id: pulumi.Input[str] | None = None
    #: Generation token (``preflight.generations``): a new one recreates a container removed by hand; "" adds none.
    generation: str = ""


class LocalRegistry(pulumi.ComponentResource):
    """A registry in plain mode (what is pushed stays; nothing is fetched upstream), published on 127.0.0.1."""

    container: docker.Container
    """The registry container, for resources that must wait for it."""
    info: pulumi.Output[dict]
    """The ``localRegistry`` stack output: pushUrl, hostPort, container, hostFromClusterNetwork, volume."""

    def __init__(self, name: str, args: LocalRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        image_id = args.image_id
        if image_id is None:
            # Pulled once and kept on destroy, like the caches' image.
            image_id = docker.RemoteImage(
                f"{name}-image", name=args.image, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
            ).image_id

        # The user's images are in here: `pulumi destroy` leaves the volume, as it leaves the caches'.
        volume = docker.Volume(
            f"{name}-volume",
            name=args.name,
            labels=_labels(localregistry.labels(args.owner), docker.VolumeLabelArgs),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        container_labels = localregistry.labels(args.owner, args.port)
        if args.generation:
            # A ForceNew label: a container removed by hand is created again (see RegistryCaches).
            container_labels[preflight.LABEL_GENERATION] = args.generation
        self.container = docker.Container(
            f"{name}-container",
            name=args.name,
            image=image_id,
            envs=registry.env_list(localregistry.environment()),
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=registry.DATA_DIR)],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[args.name])],
            restart="unless-stopped",
            # Loopback only: a registry without authentication is not for the network.
            ports=[docker.ContainerPortArgs(internal=mirrors.CACHE_PORT, external=args.port, ip="127.0.0.1")],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=registry.healthcheck_command(), interval="10s", timeout="3s", retries=3, start_period="5s"
            ),
            labels=_labels(container_labels, docker.ContainerLabelArgs),
            # Its name is fixed: a replacement (another port, a new generation) must remove the old one first.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.info = pulumi.Output.from_input(localregistry.summary(args.port, args.name, volume=args.name))
        self.register_outputs({"info": self.info})


def _labels(labels: dict[str, str], kind: type) -> list:
    return [kind(label=key, value=value) for key, value in labels.items()]
