"""Moved to :mod:`krc.config.addons` (pydantic models); this shim stays until imports are repointed."""

from krc.config.addons import (  # noqa: F401
    ADDON_KEYS,
    CILIUM_KEYS,
    INGRESS_NGINX_KEYS,
    METALLB_KEYS,
    AddonSettings,
    AddonsConfig,
    CiliumSettings,
    IngressNginxSettings,
    MetalLBSettings,
    parse,
)
from krc.config.errors import SettingsError  # noqa: F401
from krc.config.gateway import GatewayApiSettings  # noqa: F401
