"""kind-registry-cache: network, pull-through caches, then the kind cluster pulling through them."""

import pulumi
import pulumi_docker as docker

from components import config, mirrors, prerequisites
from components.cache import RegistryCaches, RegistryCachesArgs
from components.cluster import KindCluster, KindClusterArgs
from components.kindconfig import KindOptions
from components.network import KindNetwork, KindNetworkArgs

stack_config = config.load()
settings = stack_config.settings
owner = f"{settings.project}/{settings.stack}"
decision = prerequisites.check(stack_config)

# The engine the Docker CLI uses: docker.host from stack config, DOCKER_HOST, or the current context.
engine = pulumi.ResourceOptions(providers=[docker.Provider("docker", host=decision.docker_host)])

network = KindNetwork(
    "network", KindNetworkArgs(settings=settings.network, owner=owner, adopt=decision.adopt_network), opts=engine
)

caches = RegistryCaches(
    "cache",
    RegistryCachesArgs(
        settings=settings.cache, network_name=network.name, owner=owner, credentials=stack_config.credentials
    ),
    opts=engine,
)

cluster = KindCluster(
    "kind",
    KindClusterArgs(
        settings=settings.cluster,
        options=KindOptions(certs_dir=settings.certs_dir),
        hosts_files=mirrors.hosts_files(mirrors.entries(settings.cache)),
        network_name=settings.network.name,
        docker_host=decision.docker_host,
        depends_on=[network, caches],
    ),
)

pulumi.export("clusterName", cluster.name)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("mirrors", caches.mirrors)
pulumi.export("networkName", network.name)
pulumi.export("networkSubnet", network.subnet)
