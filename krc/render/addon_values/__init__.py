"""Helm values, MetalLB objects and address ranges for the cluster add-ons (no Pulumi here), one module per chart.

- :mod:`.common`: chart names, namespaces, kind's options for the add-ons, merging stack values, stale values;
- :mod:`.cilium`, :mod:`.metallb` (and its address pool), :mod:`.ingress`: each chart's values and objects;
- :mod:`.scheduling`: tolerations for kind's tainted control planes.

The names below are the package's interface, so callers write ``addon_values.cilium_values(...)``.
"""

from .cilium import cilium_values
from .common import (
    API_SERVER_PORT,
    CILIUM_CHART,
    CILIUM_NAMESPACE,
    INGRESS_NGINX_CHART,
    INGRESS_NGINX_NAMESPACE,
    INGRESS_NODE_LABELS,
    METALLB_CHART,
    METALLB_NAMESPACE,
    PRIVILEGED_NAMESPACE_LABELS,
    kind_options,
    merge_values,
    stale_values,
)
from .ingress import ingress_nginx_values, ingress_url
from .metallb import (
    DOCKER_LOW_ADDRESSES,
    METALLB_API_VERSION,
    METALLB_POOL_NAME,
    PoolRange,
    default_pool_range,
    ip_address_pool,
    l2_advertisement,
    metallb_values,
    parse_pool_range,
    pool_range_problem,
)
from .scheduling import (
    CONTROL_PLANE_TAINT_KEY,
    CONTROL_PLANE_TOLERATION,
    control_planes_tainted,
    only_tainted_nodes,
    scheduling_values,
)

__all__ = [
    "API_SERVER_PORT", "CILIUM_CHART", "CILIUM_NAMESPACE", "INGRESS_NGINX_CHART", "INGRESS_NGINX_NAMESPACE",
    "INGRESS_NODE_LABELS", "METALLB_CHART", "METALLB_NAMESPACE", "PRIVILEGED_NAMESPACE_LABELS",
    "kind_options", "merge_values", "stale_values", "cilium_values", "ingress_nginx_values", "ingress_url",
    "DOCKER_LOW_ADDRESSES", "METALLB_API_VERSION", "METALLB_POOL_NAME", "PoolRange", "default_pool_range",
    "ip_address_pool", "l2_advertisement", "metallb_values", "parse_pool_range", "pool_range_problem",
    "CONTROL_PLANE_TAINT_KEY", "CONTROL_PLANE_TOLERATION", "control_planes_tainted", "only_tainted_nodes",
    "scheduling_values",
]
