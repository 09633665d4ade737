"""kind-registry-cache: network, pull-through caches, a local registry, the kind cluster pulling through them, its add-ons."""

import pulumi
import pulumi_docker as docker

from components.artifact_store import ArtifactStore, ArtifactStoreArgs
from components.cache_stats import CacheStats, CacheStatsArgs
from components.cache_warmup import CacheWarmup, CacheWarmupArgs
from components.cluster_addons import ClusterAddons, ClusterAddonsArgs
from components.kind_cluster import KindCluster, KindClusterArgs
from components.kind_network import KindNetwork, KindNetworkArgs
from components.local_registry import LocalRegistry, LocalRegistryArgs
from components.registry_caches import RegistryCaches, RegistryCachesArgs
from krc.render import addon_values, localregistry, mirrors, warmup
from program import config, prerequisites, secrets

stack_config = config.load()
# Values set with --secret stay secrets in every resource and output (before the first resource is created).
secrets.protect(stack_config.secrets)
settings = stack_config.settings
addons = stack_config.addons
owner = settings.owner
decision, generations = prerequisites.check(stack_config)
# The Gateway's mode (MetalLB address or published node ports) follows from the Docker engine the checks saw.
gateway_plan = prerequisites.gateway_plan(stack_config, decision)
# What `up` downloads that is not an image (the pinned kind, the charts, the Gateway API CRDs), kept and verified
# under ~/.kind-registry-cache; the cluster and the add-ons are installed from there.
store_plan, stored = prerequisites.artifact_store(stack_config, decision)
artifacts = ArtifactStore("store", ArtifactStoreArgs(plan=store_plan, ready=stored))

# The engine the Docker CLI uses: docker.host from stack config, DOCKER_HOST, or the current context.
engine = pulumi.ResourceOptions(providers=[docker.Provider("docker", host=decision.docker_host)])

network = KindNetwork(
    "network", KindNetworkArgs(settings=settings.network, owner=owner, adopt=decision.adopt_network), opts=engine
)

caches = RegistryCaches(
    "cache",
    RegistryCachesArgs(
        settings=settings.cache,
        network_name=network.name,
        owner=owner,
        credentials=stack_config.credentials,
        generations=generations.caches,
    ),
    opts=engine,
)

# The registry for the user's own images: this stack's own, or another stack's (localRegistry.useStack).
registry = decision.local_registry
registry_info: pulumi.Input[dict] | None = None
if registry is not None and not registry.shared:
    registry_info = LocalRegistry(
        "local-registry",
        LocalRegistryArgs(
            name=registry.container,
            port=registry.port,
            network_name=network.name,
            owner=owner,
            image=settings.cache.image,
            image_id=caches.image_id,
            generation=generations.local_registry,
        ),
        opts=engine,
    ).info
elif registry is not None:
    registry_info = localregistry.summary(registry.port, registry.container, stack=registry.owner)
registry_hosts = [mirrors.local_registry_entry(registry.port, registry.container)] if registry else []

# Warm-up: the add-ons' images through the caches, while `kind create` runs (it waits for the caches only).
warm_caches: list[pulumi.Resource] = []
if settings.warmup.enabled:
    plan, notes = warmup.stack_plan(settings.cache, settings.warmup, addons)
    warm_caches = CacheWarmup(
        "warmup",
        CacheWarmupArgs(plan=plan, caches=caches.containers, docker_host=decision.docker_host, notes=notes,
                        hub_url=warmup.docker_hub_remote(settings.cache),
                        hub_login=stack_config.credentials.get(warmup.DOCKER_HUB)),
    ).done

cluster = KindCluster(
    "kind",
    KindClusterArgs(
        settings=settings.cluster,
        options=addon_values.kind_options(
            settings.certs_dir, cilium=addons.cilium.enabled, ingress=addons.ingress_nginx.enabled
        ),
        hosts_files=mirrors.hosts_files([*mirrors.entries(settings.cache), *registry_hosts]),
        owner=owner,
        adopt_legacy_certs=settings.certs_dir_is_default,
        network_name=settings.network.name,
        docker_host=decision.docker_host,
        depends_on=[network, caches, *artifacts.done],
        kind=decision.kind,
        generation=generations.cluster,
        record=prerequisites.cluster_record(stack_config),
    ),
)

cluster_addons = ClusterAddons(
    "addons",
    ClusterAddonsArgs(
        settings=addons,
        cluster=settings.cluster,
        kubeconfig=cluster.kubeconfig,
        cluster_resource=cluster.resource,
        cluster_identity=cluster.identity,
        wait_for=warm_caches,
        gateway=gateway_plan,
        # On a remote engine the API server is out of reach (preflight.refuse_addons_on_remote_engine): no ConfigMap.
        local_registry_hosting=(
            localregistry.hosting(registry.port, registry.container) if registry and not decision.remote_engine else None
        ),
        charts=artifacts.charts(),
        gateway_crds=artifacts.gateway_crds(),
        artifacts=artifacts.done,
    ),
)

# Cache statistics at the end of every `pulumi up`: this stack's caches, or those of cache.useStack.
cache_owner = f"{settings.project}/{settings.cache.use_stack}" if settings.cache.use_stack else owner
cache_stats = CacheStats(
    "cache-stats",
    CacheStatsArgs(
        owner=cache_owner,
        depends_on=[*caches.containers, *warm_caches, cluster_addons],
        docker_host=decision.docker_host,
    ),
)

pulumi.export("clusterName", cluster.name)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("mirrors", caches.mirrors)
pulumi.export("cacheStats", cache_stats.stats)
pulumi.export("networkName", network.name)
pulumi.export("networkSubnet", network.subnet)
pulumi.export("metallbRange", cluster_addons.metallb_range)
pulumi.export("ingressUrl", cluster_addons.ingress_url)
pulumi.export("chartVersions", cluster_addons.chart_versions)
pulumi.export("gatewayUrl", cluster_addons.gateway_url)
pulumi.export("gatewayClass", cluster_addons.gateway_class)
pulumi.export("localRegistry", registry_info)
# Last: stack outputs holding a value set with --secret are stored as secrets.
secrets.protect_outputs(stack_config.secrets)
