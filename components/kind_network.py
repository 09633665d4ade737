"""The docker network that kind's nodes and the caches share."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from krc.config import NetworkSettings
from krc.preflight import LABEL_OWNER
from krc.render import network as network_render

TOKEN = "kind-registry-cache:index:KindNetwork"


@dataclass
class KindNetworkArgs:
    """Inputs of :class:`KindNetwork`."""

    settings: NetworkSettings
    #: ``<project>/<stack>``: labels the network so a later run knows this stack created it.
    owner: str
    #: Use an existing network of that name as it is (kind made it) instead of creating one.
    adopt: bool = False


class KindNetwork(pulumi.ComponentResource):
    """A bridge network with kind's own options and a fixed subnet, or an adopted existing one."""

    name: pulumi.Output[str]
    """The docker network's name, for ``KIND_EXPERIMENTAL_DOCKER_NETWORK`` and the caches."""
    subnet: pulumi.Output[str]
    """The IPv4 subnet in CIDR form."""

    def __init__(self, name: str, args: KindNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        settings = args.settings
        if args.adopt:
            # The network exists with the configured subnet (preflight checked): use it, never delete it.
            self.name = pulumi.Output.from_input(settings.name)
        else:
            # kind creates its network with these options when it is missing; creating it ourselves
            # first pins the subnet, so addresses derived from it are deterministic.
            # The provider reads the engine's driver options back into `options` (terraform-provider-docker v4.5.0
            # internal/provider/resource_docker_network_funcs.go:192-193), an Optional+Computed+ForceNew map
            # (resource_docker_network.go:48-54): a key the engine adds by itself (Docker Desktop and newer engines
            # report defaults there, moby#49866, docker/cli#2899) would replace the network on every `up`.
            # ignore_changes drops every `options` attribute from the provider's diff (pulumi-terraform-bridge
            # v3.133.0 and v3.137.0, the ones pulumi-docker 5.1.0 and master build with: pkg/tfshim/sdk-v2/
            # instance_diff.go:95-109, applied in provider2.go:616-621). A changed network.mtu is caught before
            # that by the preflight, which refuses it with what to run (krc.preflight.decide); the integration
            # tier checks that what the provider reads back from the engine equals these inputs.
            network = docker.Network(
                f"{name}-network",
                name=settings.name,
                driver="bridge",
                options=network_render.options(settings),
                ipam_configs=[
                    docker.NetworkIpamConfigArgs(subnet=str(settings.subnet), gateway=str(settings.gateway))
                ],
                labels=[docker.NetworkLabelArgs(label=LABEL_OWNER, value=args.owner)],
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["options"]),
            )
            self.name = network.name
        self.subnet = pulumi.Output.from_input(str(settings.subnet))
        self.register_outputs({"name": self.name, "subnet": self.subnet})
