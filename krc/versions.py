"""Every pinned image and chart version the program uses, and nothing else."""

from __future__ import annotations

# kind v0.32.0's default node image; kind's release notes say to use the digest so the image
# matches the kind release (https://github.com/kubernetes-sigs/kind/releases/tag/v0.32.0).
NODE_IMAGE = (
    "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
)

# CNCF distribution v3: the first release with REGISTRY_PROXY_TTL; registry v2 is end of life.
REGISTRY_IMAGE = "registry:3"

# Oldest kind whose node images ship containerd 2.x and that this program's config targets.
MIN_KIND_VERSION = (0, 27, 0)

# Add-on charts, each with its repository and the images it pulls, so a warm-up can fetch them
# through the caches before the nodes ask. Images carry the chart's own tags for that version.

# Cilium: agent, operator and the separate Envoy DaemonSet (https://helm.cilium.io/).
# Default tolerations (cilium/cilium install/kubernetes/cilium/values.yaml(.tmpl); the 1.20 tree, read from
# a stored snapshot because the whole mirror is too large to fetch): agent `tolerations: [{operator: Exists}]`,
# envoy `envoy.tolerations: [{operator: Exists}]` (both tolerate every taint); operator
# `operator.tolerations`: control-plane, master, not-ready, cloudprovider uninitialized (all Exists, any
# effect; the agent-not-ready toleration is always added); `hubble.relay.tolerations: []`,
# `hubble.ui.tolerations: []`, `certgen.tolerations: []` (certgen runs only with hubble.tls.auto.method=cronJob;
# the default is helm). Relay and UI are off by default; relay needs a cilium agent on its node (podAffinity).
CILIUM_CHART = "1.20.0"
CILIUM_REPOSITORY = "https://helm.cilium.io/"
CILIUM_IMAGES = (
    "quay.io/cilium/cilium:v1.20.0",
    "quay.io/cilium/operator-generic:v1.20.0",
    # The chart pins Envoy to a build tag (v1.<envoy>-<timestamp>-<commit>) not derived from the chart
    # version. This is the tag a public offline-bundle script checks against `helm template` of chart
    # 1.20.0; re-check with `helm show values cilium/cilium --version 1.20.0` (envoy.image.tag) when bumping.
    "quay.io/cilium/cilium-envoy:v1.37.5-1782911245-7cffc778c923f68a77954a53b1a98d6b5353f004",
)
#: Pulled only when Hubble relay is on.
CILIUM_HUBBLE_IMAGES = ("quay.io/cilium/hubble-relay:v1.20.0",)

# MetalLB: controller and speaker; the frr-k8s subchart only when FRR (BGP) is asked for.
# Default tolerations (metallb/metallb v0.16.1 charts/metallb/values.yaml and templates/): controller
# `controller.tolerations: []`, nodeSelector kubernetes.io/os=linux (templates/controller.yaml); speaker
# `speaker.tolerateMaster: true`, which templates/speaker.yaml renders as master and control-plane
# NoSchedule tolerations, plus `speaker.tolerations: []`. The frr-k8s 0.0.25 subchart (charts/frr-k8s-0.0.25.tgz):
# `frrk8s.tolerateMaster: true` renders the same two tolerations on its DaemonSet (templates/controller.yaml)
# and its status-cleaner Deployment (templates/status-cleaner.yaml). No Jobs or hooks.
METALLB_CHART = "0.16.1"
METALLB_REPOSITORY = "https://metallb.github.io/metallb"
METALLB_IMAGES = (
    "quay.io/metallb/controller:v0.16.1",
    "quay.io/metallb/speaker:v0.16.1",
)
METALLB_FRR_IMAGES = (
    "quay.io/metallb/frr-k8s:v0.0.25",
    "quay.io/frrouting/frr:10.4.3",
)

# ingress-nginx 4.15.1 (controller v1.15.1, March 2026) is the last release: the project is retired.
# Default tolerations (kubernetes/ingress-nginx helm-chart-4.15.1 charts/ingress-nginx/values.yaml and
# templates/): `controller.tolerations: []` (nodeSelector kubernetes.io/os=linux);
# `controller.admissionWebhooks.patch.tolerations: []` for both admission Jobs, job-createSecret.yaml
# (helm.sh/hook pre-install,pre-upgrade) and job-patchWebhook.yaml (post-install,post-upgrade), which run
# while admissionWebhooks.enabled and patch.enabled (both default true) and certManager is off;
# `defaultBackend.enabled: false` (its `tolerations: []`).
INGRESS_NGINX_CHART = "4.15.1"
INGRESS_NGINX_REPOSITORY = "https://kubernetes.github.io/ingress-nginx"
INGRESS_NGINX_IMAGES = (
    "registry.k8s.io/ingress-nginx/controller:v1.15.1",
    "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9",
)

# Gateway API release whose CRDs are installed with addons.gatewayApi: the one Cilium v1.20.0 is conformant with
# (kubernetes-sigs/gateway-api conformance/reports/v1.6/cilium/standard-v1.20.0-default-report.yaml). Cilium's
# Gateway runs in the cilium-envoy DaemonSet (CILIUM_IMAGES): Gateway mode pulls no other image.
GATEWAY_API_VERSION = "v1.6.1"

# Where `up` downloads the Gateway API CRDs into the artifact store: every file of the release tag's
# `config/crd/standard/` folder (the files upstream's `standard-install.yaml` release asset is assembled from).
GATEWAY_API_CRD_URL = "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/{version}/config/crd/standard/{file}"

# Gateway API release -> file -> sha256 of that file at the tag (kubernetes-sigs/gateway-api, tag v1.6.1 = commit
# 8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3, `config/crd/standard/`, Apache-2.0). A downloaded file is kept only if
# its sha256 is this one. Only releases the pinned Cilium supports are here.
GATEWAY_API_CRD_SHA256 = {
    "v1.6.1": {
        "gateway.networking.k8s.io_backendtlspolicies.yaml": "0d48c9e4b53dd9510cf615b9b1192d9d7afb07a1cc0498c9515627cb1c075419",
        "gateway.networking.k8s.io_gatewayclasses.yaml": "53710048ba26f8620eed59d5e51b157ecf040daf5c6eef31a4b991e0808c4be5",
        "gateway.networking.k8s.io_gateways.yaml": "25b885f5870b8fff1ae82efa2628b2761cef3745900c2aecf8fb76629a01255a",
        "gateway.networking.k8s.io_grpcroutes.yaml": "53a8d029da8f07e55d3fa58a5cf6de5950dab19fbb8d6a8082fb5e51ca5ef6fc",
        "gateway.networking.k8s.io_httproutes.yaml": "a424a0d6c953b162e71d1d97bb7e75012d8f1ac264e7274f2763d1b96ab39852",
        "gateway.networking.k8s.io_listenersets.yaml": "bf4d4b02564999b2558b96e31465129895db9b3a8adfb90adb9c80eac52a3a70",
        "gateway.networking.k8s.io_referencegrants.yaml": "8c645e9333cfa67790cc2a53e0c00076f88b2bd4230d2b49688c78bc34f9b2c3",
        "gateway.networking.k8s.io_tcproutes.yaml": "d5104d0cf30e924f5e3c9e2e76abd46876401c34ca33b9e79321523eee78c7f6",
        "gateway.networking.k8s.io_tlsroutes.yaml": "bb8b67926e5d9652cbfd2e19063b7c1d9e78806c9dd671608f57baef2f2e3bbb",
        "gateway.networking.k8s.io_udproutes.yaml": "4b80684c2bf8ef4b0a2a3ab45164ac9f96258fc69912645ff50ced595b0aa6de",
        "gateway.networking.k8s.io_vap_safeupgrades.yaml": "afb0ea1b3cc2e9344d93b0926fbe741aeb48ab4439f9f7b4b77b9ac94faf6c2e",
    },
}

# kind itself, downloaded when `kind` is missing from PATH or older than MIN_KIND_VERSION. The digests are
# those of the release's own `kind-<os>-<arch>.sha256sum` assets of v0.32.0, as pinned by several public
# projects that verify them (agreeing on all four); no sha256 of `kind-windows-amd64` v0.32.0 was found to
# pin, so Windows is left to the user (the program's scripts need a POSIX shell there anyway: WSL2 is linux).
KIND_VERSION = "v0.32.0"
KIND_SHA256 = {
    ("linux", "amd64"): "50030de23cf40a18505f20426f6a8506bedf13c6e509244bd1fa9463721b0f54",
    ("linux", "arm64"): "b92cd615e97585de8ddade28ed5cd7feb4248d717c233eea5b03c37298900f5d",
    ("darwin", "amd64"): "295ac6d0d634c9819c9907df45e3017d1f13166bd13c3404c45e79f7faa47498",
    ("darwin", "arm64"): "dca67911095a110c2b5c36e26df6cac860c602033e456c0db47be498cdef1ebb",
}
