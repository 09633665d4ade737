"""The cluster add-ons: Cilium, MetalLB and ingress-nginx as Helm releases on the kind cluster; the local registry's
KEP-1755 ConfigMap."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from krc.commands import metallbwebhook
from krc.config import ClusterSettings
from krc.config.addons import AddonSettings
from krc.render import addon_values, gateway, kindconfig, localregistry
from krc.render.gateway import GatewayPlan

TOKEN = "kind-registry-cache:index:ClusterAddons"

#: Per release: a cold cache pulls every image from upstream while Helm waits for the pods.
RELEASE_TIMEOUT_SECONDS = 600

#: The project root: ``python -m krc.commands.metallbwebhook`` runs from here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ClusterAddonsArgs:
    """Inputs of :class:`ClusterAddons`."""

    settings: AddonSettings
    #: The cluster's topology and port mappings (API endpoint for Cilium, ingress URL).
    cluster: ClusterSettings
    #: The kubeconfig for reaching the cluster from the host (secret).
    kubeconfig: pulumi.Input[str]
    #: The resource whose deletion takes the whole cluster with it (``KindCluster.resource``).
    cluster_resource: pulumi.Resource
    #: Changes exactly when that cluster is replaced (``KindCluster.identity``).
    cluster_identity: str = ""
    #: What the Helm releases wait for besides the cluster (the cache warm-up, so pods find their images cached).
    wait_for: Sequence[pulumi.Resource] = ()
    #: The shared Gateway's mode, ports and URL (``prerequisites.gateway_plan``); ``None`` without the Gateway.
    gateway: GatewayPlan | None = None
    #: The data of the ``local-registry-hosting`` ConfigMap (KEP-1755, ``krc.render.localregistry.hosting``);
    #: ``None`` without a local registry.
    local_registry_hosting: Mapping[str, str] | None = None


class ClusterAddons(pulumi.ComponentResource):
    """Cilium first (nodes stay NotReady without a CNI), then MetalLB with its pool, and ingress-nginx."""

    metallb_range: pulumi.Output[str | None]
    """The LoadBalancer addresses MetalLB hands out (``first-last``), or ``None`` without MetalLB."""
    ingress_url: pulumi.Output[str | None]
    """Where the host reaches ingress-nginx, or ``None`` without it or without a port mapping for it."""
    chart_versions: pulumi.Output[dict]
    """Chart name -> the chart version Helm installed."""
    gateway_url: pulumi.Output[str | None]
    """Where the host reaches the shared Gateway, or ``None`` without it."""
    gateway_class: pulumi.Output[str | None]
    """The GatewayClass of Cilium's Gateway controller, or ``None`` without the Gateway."""

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        settings = args.settings
        self._name = name
        self._cluster_resource = args.cluster_resource
        self._cluster = args.cluster
        self._wait_for = list(args.wait_for)
        self._releases: dict[str, k8s.helm.v3.Release] = {}

        if settings.any_enabled or args.local_registry_hosting:
            # Every in-cluster object goes when the cluster does: `pulumi destroy` deletes the kind
            # cluster without waiting on Helm uninstalls or namespace finalizers inside it.
            # With a clusterIdentifier the provider is replaced only when it changes; any other change of its
            # config, an unknown kubeconfig in preview included, is an update that keeps every in-cluster resource
            # (pulumi-kubernetes v4.32.0 provider/pkg/provider/provider.go:486-516, DiffConfig; the option is in
            # the 4.34.2 SDK, pulumi_kubernetes/provider.py:46). The identity changes exactly when the cluster
            # command is replaced, so a new cluster still gets a new provider.
            self._provider = k8s.Provider(
                f"{name}-provider",
                kubeconfig=args.kubeconfig,
                cluster_identifier=args.cluster_identity or None,
                opts=pulumi.ResourceOptions(parent=self, deleted_with=args.cluster_resource),
            )

        # Gateway API: the CRDs go in before Cilium, whose operator starts its Gateway controller only when
        # they exist (Cilium 1.20 docs, Gateway API prerequisites).
        gateway_crds = self._gateway_api_crds(settings.gateway_api.version) if args.gateway is not None else []
        # Pods other than host-network ones only start once the CNI runs.
        cilium = self._cilium(args, gateway_crds) if settings.cilium.enabled else []
        metallb_range, metallb_objects = self._metallb(args, cilium) if settings.metallb.enabled else (None, [])
        ingress_url = self._ingress_nginx(args, cilium) if settings.ingress_nginx.enabled else None
        if args.local_registry_hosting:
            self._local_registry_hosting(args.local_registry_hosting)
        gateway_url: str | None = None
        if args.gateway is not None:
            # Cilium's chart creates the GatewayClass; the Gateway's address comes from MetalLB's pool.
            self._shared_gateway(args.gateway, [*cilium, *gateway_crds, *metallb_objects])
            gateway_url = args.gateway.url

        self.metallb_range = pulumi.Output.from_input(metallb_range)
        self.gateway_url = pulumi.Output.from_input(gateway_url)
        self.gateway_class = pulumi.Output.from_input(gateway.GATEWAY_CLASS if args.gateway is not None else None)
        self.ingress_url = pulumi.Output.from_input(ingress_url)
        versions = {
            chart: release.status.apply(lambda status: status.version) for chart, release in self._releases.items()
        }
        self.chart_versions = pulumi.Output.all(**versions) if versions else pulumi.Output.from_input({})
        self.register_outputs(
            {
                "metallbRange": self.metallb_range,
                "ingressUrl": self.ingress_url,
                "chartVersions": self.chart_versions,
                "gatewayUrl": self.gateway_url,
                "gatewayClass": self.gateway_class,
            }
        )

    def _cilium(self, args: ClusterAddonsArgs, gateway_crds: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """Cilium's release (after the Gateway API CRDs, if any): what every other pod waits for."""
        chart = args.settings.cilium
        ours = addon_values.cilium_values(kindconfig.api_server_endpoint(args.cluster), hubble=chart.hubble)
        if args.gateway is not None:
            ours = addon_values.merge_values(ours, gateway.cilium_values(args.gateway.mode))
        release = self._release(
            "cilium",
            addon_values.CILIUM_CHART,
            chart.version,
            chart.repository,
            addon_values.CILIUM_NAMESPACE,
            self._values(addon_values.CILIUM_CHART, ours, chart.values),
            depends_on=gateway_crds,
        )
        self._releases[addon_values.CILIUM_CHART] = release
        return [release]

    def _metallb(self, args: ClusterAddonsArgs, cilium: list[pulumi.Resource]) -> tuple[str, list[pulumi.Resource]]:
        """MetalLB's namespace and release, then its pool and L2 advertisement once its webhook admits them.

        :returns: the pool's range (``first-last``) and the pool and advertisement resources.
        """
        chart = args.settings.metallb
        assert chart.range is not None, "validated by addon_settings.parse"
        namespace = self._namespace("metallb", addon_values.METALLB_NAMESPACE, addon_values.PRIVILEGED_NAMESPACE_LABELS)
        release = self._release(
            "metallb",
            addon_values.METALLB_CHART,
            chart.version,
            chart.repository,
            namespace.metadata.name,
            self._values(addon_values.METALLB_CHART, addon_values.metallb_values(frr=chart.frr), chart.values),
            depends_on=cilium,
        )
        self._releases[addon_values.METALLB_CHART] = release
        # The release's readiness does not cover the webhook that validates these objects: wait for it.
        pool_manifest = addon_values.ip_address_pool(chart.range)
        webhook = self._metallb_webhook_wait(args.kubeconfig, pool_manifest, release)
        pool = self._custom_resource("metallb-pool", pool_manifest, [release, webhook])
        l2 = self._custom_resource("metallb-l2", addon_values.l2_advertisement(), [release, webhook, pool])
        return str(chart.range), [pool, l2]

    def _ingress_nginx(self, args: ClusterAddonsArgs, cilium: list[pulumi.Resource]) -> str | None:
        """ingress-nginx's namespace and release; where the host reaches it (``None`` without a port mapping)."""
        chart = args.settings.ingress_nginx
        namespace = self._namespace("ingress-nginx", addon_values.INGRESS_NGINX_NAMESPACE, {})
        release = self._release(
            "ingress-nginx",
            addon_values.INGRESS_NGINX_CHART,
            chart.version,
            chart.repository,
            namespace.metadata.name,
            self._values(addon_values.INGRESS_NGINX_CHART, addon_values.ingress_nginx_values(), chart.values),
            depends_on=cilium,
        )
        self._releases[addon_values.INGRESS_NGINX_CHART] = release
        return addon_values.ingress_url(args.cluster.port_mappings)

    def _local_registry_hosting(self, data: Mapping[str, str]) -> None:
        """KEP-1755's ConfigMap, which Tilt, Skaffold and ctlptl read to find where to push. It needs only the API
        server, not the CNI or the warm-up: created as soon as the cluster answers, beside the releases."""
        k8s.core.v1.ConfigMap(
            f"{self._name}-local-registry-hosting",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=localregistry.HOSTING_CONFIGMAP, namespace=localregistry.HOSTING_NAMESPACE),
            data=dict(data),
            opts=self._options([]),
        )

    def _values(self, chart: str, ours: dict, theirs: dict) -> dict:
        # Ours, then what the topology needs (tolerations when every node is a tainted control plane),
        # then the stack's values over both.
        scheduling = addon_values.scheduling_values(chart, self._cluster)
        return addon_values.merge_values(addon_values.merge_values(ours, scheduling), theirs)

    def _metallb_webhook_wait(
        self, kubeconfig: pulumi.Input[str], pool: dict, release: k8s.helm.v3.Release
    ) -> command.local.Command:
        # The program's own interpreter (it has the project's packages; no kubectl needed) dry-runs the
        # pool until MetalLB's webhook admits it. The kubeconfig goes in on stdin, a secret input.
        # A new cluster brings a new kubeconfig and a changed pool a new manifest: either changes
        # stdin, which runs the wait again before the pool is touched.
        stdin = pulumi.Output.secret(
            pulumi.Output.from_input(kubeconfig).apply(
                lambda text: json.dumps(
                    {"kubeconfig": text, "manifest": pool, "timeout": metallbwebhook.DEFAULT_TIMEOUT_SECONDS}
                )
            )
        )
        # What it prints comes from a secret input, so it is kept secret too: pulumi-command's outputs take the
        # secretness of a same-named input only (pulumi-go-provider v1.3.0 infer/resource.go:754-806, default
        # secret flow), never stdout's from stdin. Nor does it get its previous output in PULUMI_COMMAND_STDOUT
        # (pulumi-command v1.2.1 provider/pkg/provider/local/commandOutputs.go:88-95).
        return command.local.Command(
            f"{self._name}-metallb-webhook",
            create=f"{shlex.quote(sys.executable)} -m krc.commands.metallbwebhook",
            stdin=stdin,
            dir=str(PROJECT_ROOT),
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[release],
                deleted_with=self._cluster_resource,
                additional_secret_outputs=["stdout", "stderr"],
            ),
        )

    def _options(self, depends_on: list[pulumi.Resource]) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self, provider=self._provider, deleted_with=self._cluster_resource, depends_on=depends_on
        )

    def _namespace(self, role: str, name: str, labels: dict[str, str]) -> k8s.core.v1.Namespace:
        return k8s.core.v1.Namespace(
            f"{self._name}-{role}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels=labels or None),
            opts=self._options([]),
        )

    def _release(
        self,
        role: str,
        chart: str,
        version: str,
        repository: str,
        namespace: pulumi.Input[str],
        values: dict,
        depends_on: list[pulumi.Resource],
    ) -> k8s.helm.v3.Release:
        # helm.v3.Release is a real Helm install: it runs hooks (ingress-nginx's admission webhook
        # needs them) and waits for the pods and jobs. Not atomic: a failed install stays in the
        # cluster, so `pulumi up` fails with Helm's own error ("Helm release ... failed to
        # initialize completely ... Error: <why>"), `helm status` and the pods' events show the
        # cause, and the next `pulumi up` upgrades the failed release in place. Atomic would
        # uninstall it and take that evidence along.
        source, repo = addon_values.chart_source(repository, chart)
        return k8s.helm.v3.Release(
            f"{self._name}-{role}",
            k8s.helm.v3.ReleaseArgs(
                name=chart,
                chart=source,
                version=version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None,
                namespace=namespace,
                values=values,
                skip_await=False,
                wait_for_jobs=True,
                atomic=False,
                timeout=RELEASE_TIMEOUT_SECONDS,
            ),
            opts=self._options([*self._wait_for, *depends_on]),
        )

    def _custom_resource(
        self, role: str, manifest: dict, depends_on: list[pulumi.Resource]
    ) -> k8s.apiextensions.CustomResource:
        # Created after the release, whose chart installs the CRDs these objects need.
        return k8s.apiextensions.CustomResource(
            f"{self._name}-{role}",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=self._options(depends_on),
        )

    def _gateway_api_crds(self, version: str) -> list[pulumi.Resource]:
        """The vendored standard channel, sha256-checked (``gateway.crd_files``), one resource per object.

        pulumi-kubernetes applies server-side by default, so the large CRDs (httproutes is 420 KB) do not hit
        the 256 KiB last-applied annotation limit of client-side ``kubectl apply``.
        """
        created: list[pulumi.Resource] = []
        for manifest in gateway.crd_objects(version):
            kind, metadata = manifest["kind"], manifest["metadata"]
            opts = self._options(list(created) if kind != "CustomResourceDefinition" else [])
            role = f"gateway-api-{metadata['name'].split('.')[0]}"
            if kind == "CustomResourceDefinition":
                resource: pulumi.Resource = k8s.apiextensions.v1.CustomResourceDefinition(
                    f"{self._name}-{role}", metadata=metadata, spec=manifest["spec"], opts=opts
                )
            elif kind == "ValidatingAdmissionPolicy":
                resource = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                    f"{self._name}-{role}-policy", metadata=metadata, spec=manifest["spec"], opts=opts
                )
            elif kind == "ValidatingAdmissionPolicyBinding":
                resource = k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                    f"{self._name}-{role}-binding", metadata=metadata, spec=manifest["spec"], opts=opts
                )
            else:
                raise ValueError(f"unexpected {kind} in the vendored Gateway API {version} files")
            created.append(resource)
        return created

    def _shared_gateway(self, plan: GatewayPlan, depends_on: list[pulumi.Resource]) -> None:
        namespace = gateway.namespace_manifest()
        ns = self._namespace("gateway", namespace["metadata"]["name"], {})
        manifest = gateway.gateway_manifest(plan)
        self._custom_resource("gateway", manifest, [*depends_on, ns])
