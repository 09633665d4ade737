"""Drift: what exists, and the generation tokens that make ``up`` recreate what does not (no Pulumi here)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from krc.preflight.report import Report

# pulumi-command Commands and pulumi-docker containers do not look at the machine without `--refresh`, so a
# cluster deleted by hand or a cache container removed by hand would stay "created" in the state. Each of
# them gets a generation token as an input that forces replacement (a cache container's label, the cluster
# Command's triggers). The token is read back from the thing itself: the cache container's label, the record
# the cluster's create script writes next to the stack (with the control-plane container id, so a record
# outliving its cluster does not count). While the thing exists its token is unchanged: no diff. Once it is
# gone a fresh token is drawn: replacement, i.e. it is created again.


@dataclass(frozen=True)
class Generations:
    """Per object, the generation token the program gives it, and what is missing."""

    #: cache container name -> token; "" keeps a container that carries no token (made before tokens) as it is.
    caches: dict[str, str]
    #: the kind cluster's token (also the certs folder's: they are made together).
    cluster: str
    #: What was not found on the machine and is (re)created by the next `up`.
    missing: tuple[str, ...] = ()
    #: This stack's local registry container's token ("" without one, or for one made before tokens).
    local_registry: str = ""


def new_token() -> str:
    return secrets.token_hex(6)


def generations(
    report: Report,
    cache_names: Sequence[str],
    node_names: Sequence[str],
    fresh: Callable[[], str] = new_token,
    local_registry: str | None = None,
) -> Generations:
    """The tokens for this run: each existing object's own, a fresh one for each missing object.

    :param cache_names: this stack's local cache container names.
    :param node_names: the kind node container names, the first being the control plane the record names.
    :param local_registry: this stack's own local registry container name (it carries the stack's label, so the
        report lists it with the caches).
    """
    missing: list[str] = []
    caches: dict[str, str] = {}
    for name in cache_names:
        if name in report.caches:
            caches[name] = report.caches[name]
        else:
            caches[name] = fresh()
            missing.append(f"cache container {name}")
    registry_token = ""
    if local_registry is not None:
        if local_registry in report.caches:
            registry_token = report.caches[local_registry]
        else:
            registry_token = fresh()
            missing.append(f"local registry container {local_registry}")
    token, _, control_plane_id = report.cluster_record.partition(" ")
    nodes_present = set(report.nodes.values())
    cluster_ok = (
        bool(token)
        and report.nodes.get(control_plane_id.strip()) == (node_names[0] if node_names else None)
        and all(n in nodes_present for n in node_names)
    )
    if report.certs == "missing":
        # The folder is bind-mounted into every node: a new folder at the same path is not what running
        # nodes see (they keep the deleted one), so the folder and the cluster are made again together.
        missing.append("certs folder (so the cluster too: its nodes mount the folder)")
        cluster_ok = False
    elif not cluster_ok:
        missing.append("kind cluster (or one of its nodes)")
    return Generations(
        caches=caches, cluster=token if cluster_ok else fresh(), missing=tuple(missing), local_registry=registry_token
    )
