"""``warmup``: pulling images through the caches while the cluster is created (no Pulumi here).

pydantic checks the shape, booleans and the download count; each image is parsed as containerd would
(:func:`krc.config.imageref.parse_reference`) and must name a version, so a warm-up is reproducible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from krc.config.imageref import ReferenceError, parse_reference

from .base import ConfigModel
from .errors import fail, show
from .fields import Boolean, Integer, Text

#: The default for warmup.parallel: blob downloads at once, across all caches.
DEFAULT_WARMUP_PARALLEL = 4
PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?", re.ASCII)


@dataclass(frozen=True)
class WarmupSettings:
    """Pulling images through the caches while the cluster is created, so nodes find them cached."""

    enabled: bool = True
    #: Extra images (the team's workloads), added to the enabled add-ons' images.
    images: tuple[str, ...] = ()
    #: Warm only ``images``, not the add-ons' images.
    replace: bool = False
    #: Blob downloads at once, across all caches.
    parallel: int = DEFAULT_WARMUP_PARALLEL
    #: ``os/arch[/variant]`` picked from multi-platform images; ``None`` for the Docker engine's own.
    platform: str | None = None


def _image(image: Any) -> str:
    try:
        ref = parse_reference(image)
    except ReferenceError as error:
        raise fail(f"{show(image)} is not an image reference: {error}; write it as 'registry/repository:tag'") from None
    if not ref.pinned:
        raise fail(f"{image!r} has no tag or digest; name the version the cluster runs, e.g. '{image}:1.0.0'")
    return image


def _image_list(value: Any) -> Any:
    if not isinstance(value, list):
        raise fail(f"must be a list of image references such as 'ghcr.io/acme/api:1.4.2'; got {show(value)}")
    return value


Image = Annotated[str, BeforeValidator(_image), WithJsonSchema({"type": "string", "pattern": "^[^\\s]+[:@][^\\s/]+$"})]


class WarmupConfig(ConfigModel):
    """Pulling images through the caches while the cluster is created."""

    enabled: Boolean = True
    """Warm the caches while the cluster is created."""
    images: Annotated[list[Image], BeforeValidator(_image_list)] = []
    """More images to warm, each with a tag or digest."""
    replace: Boolean = False
    """Warm only images, not the enabled add-ons' pinned images."""
    parallel: Integer(1, 32) = DEFAULT_WARMUP_PARALLEL
    """Blob downloads at once."""
    platform: Text(PLATFORM, "os/arch[/variant] such as 'linux/amd64' or 'linux/arm64'") | None = None
    """os/arch[/variant] picked from multi-platform images (default: the Docker engine's)."""

    def settings(self) -> WarmupSettings:
        return WarmupSettings(self.enabled, tuple(dict.fromkeys(self.images)), self.replace, self.parallel, self.platform)
