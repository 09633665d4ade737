"""The benchmark's images: the add-ons' images by their real names, generated with layers of similar sizes (pure).

The sizes are approximations of the compressed linux/amd64 layers of recent releases of these images, rounded
(they were not measured here: this machine has no internet). They add up to about 450 MiB, the order of what the
three add-ons pull on every node. Each image is an OCI index for linux/amd64 and linux/arm64 (nodes pull the
amd64 one). No layer is shared between repositories: distribution links cached blobs per repository, so a shared
base would be fetched once per repository and blur the bytes ratios.

``scale`` multiplies every layer (the default run uses a fraction so it fits in a few minutes; see README).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ADDON_IMAGES", "BenchImage", "MiB", "ONE_PER_ADDON", "PLATFORMS", "full_size_bytes", "image_set"]

MiB = 1024 * 1024
#: Smallest generated layer: a few KiB, like a real config-only layer.
MIN_LAYER = 4 * 1024
PLATFORMS = ("linux/amd64", "linux/arm64/v8")


@dataclass(frozen=True)
class BenchImage:
    """One image: its registry host, repository, tag and (layer name, bytes) from base to top."""

    host: str
    repository: str
    tag: str
    layers: tuple[tuple[str, int], ...]

    @property
    def reference(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"

    @property
    def layer_bytes(self) -> int:
        return sum(size for _, size in self.layers)


#: (host, repository, tag, layers in MiB): the images of Cilium 1.20, MetalLB 0.16 and ingress-nginx 4.15.1.
ADDON_IMAGES: tuple[tuple[str, str, str, tuple[tuple[str, float], ...]], ...] = (
    ("quay.io", "cilium/cilium", "v1.20.0",
     (("cilium-os", 30), ("cilium-llvm", 60), ("cilium-bin", 70), ("cilium-tools", 8), ("cilium-cfg", 2))),
    ("quay.io", "cilium/operator-generic", "v1.20.0", (("operator-os", 2), ("operator-bin", 30))),
    # The chart pins Envoy to a build tag (see krc/versions.py); any tag does for generated layers.
    ("quay.io", "cilium/cilium-envoy", "v1.20.0",
     (("envoy-os", 30), ("envoy-bin", 25), ("envoy-libs", 3))),
    ("quay.io", "metallb/controller", "v0.16.1", (("mlb-controller-os", 2), ("mlb-controller-bin", 28))),
    ("quay.io", "metallb/speaker", "v0.16.1", (("mlb-speaker-os", 2), ("mlb-speaker-bin", 33))),
    ("registry.k8s.io", "ingress-nginx/controller", "v1.15.1",
     (("nginx-os", 4), ("nginx-modules", 45), ("nginx-luajit", 35), ("nginx-controller", 10), ("nginx-etc", 6))),
    ("registry.k8s.io", "ingress-nginx/kube-webhook-certgen", "v1.6.9", (("certgen-os", 2), ("certgen-bin", 22))),
)


#: The largest image of each add-on (what ``--quick`` pulls).
ONE_PER_ADDON = ("cilium/cilium", "metallb/speaker", "ingress-nginx/controller")


def image_set(scale: float = 1.0, only: tuple[str, ...] | None = None) -> tuple[BenchImage, ...]:
    """The add-on images with every layer scaled by ``scale`` (at least :data:`MIN_LAYER` bytes each);
    ``only`` keeps the named repositories."""
    if not 0 < scale <= 4:
        raise ValueError(f"scale must be in (0, 4], not {scale}")
    unknown = set(only or ()) - {repository for _, repository, _, _ in ADDON_IMAGES}
    if unknown:
        raise ValueError(f"not an add-on image: {sorted(unknown)}")
    return tuple(
        BenchImage(host, repository, tag,
                   tuple((name, max(MIN_LAYER, int(mib * MiB * scale))) for name, mib in layers))
        for host, repository, tag, layers in ADDON_IMAGES
        if only is None or repository in only
    )


def full_size_bytes() -> int:
    """Layer bytes of the whole set at scale 1 (one platform)."""
    return sum(image.layer_bytes for image in image_set(1.0))
