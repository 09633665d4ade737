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
INGRESS_NGINX_CHART = "4.15.1"
INGRESS_NGINX_REPOSITORY = "https://kubernetes.github.io/ingress-nginx"
INGRESS_NGINX_IMAGES = (
    "registry.k8s.io/ingress-nginx/controller:v1.15.1",
    "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9",
)
