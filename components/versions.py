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
