"""Drift under mocks: the preflight's report of what exists decides the generation tokens, so a second `up`
with nothing changed has no diff, and whatever was removed by hand, and only that, is replaced."""

from __future__ import annotations

import pytest

from krc.config import DEFAULT_MIRRORS
from krc import preflight
from harness import HEALTHY_PREFLIGHT, Recording, run_program

CACHE_NAMES = [f"kcr-dev-{host.replace('.', '-')}" for host in DEFAULT_MIRRORS]
#: The local registry carries the stack's label too: the preflight lists it with the caches.
REGISTRY = "kcr-dev-local-registry"
#: kind's node container names for dev (3+3); were one wrong, the no-diff test would fail.
DEV_NODES = ["dev-control-plane", "dev-control-plane2", "dev-control-plane3", "dev-worker", "dev-worker2", "dev-worker3"]


def labels(rec: Recording, container: str) -> dict[str, str]:
    (found,) = [r for r in rec.resources if r.type == "docker:index/container:Container" and r.inputs["name"] == container]
    return {item["label"]: item["value"] for item in found.inputs["labels"]}


def machine_after(rec: Recording, *, drop_caches=(), drop_nodes=(), certs="present") -> str:
    """What the preflight prints once `up` has made what ``rec`` describes, less what was removed by hand."""
    lines = [HEALTHY_PREFLIGHT, f"certs={certs}"]
    for name in [*CACHE_NAMES, REGISTRY]:
        if name not in drop_caches:
            lines.append(f"cache={name} {labels(rec, name)[preflight.LABEL_GENERATION]}")
    for index, name in enumerate(DEV_NODES):
        if name not in drop_nodes:
            lines.append(f"node=id{index} {name}")
    lines.append(f"cluster_record={rec.named('kind-cluster').inputs['environment']['KRC_CLUSTER_GENERATION']} id0")
    return "\n".join(lines)


def changed(before: Recording, after: Recording) -> set[str]:
    """Names of resources whose inputs differ: what `pulumi up` would update or replace."""
    old = {r.urn: r.inputs for r in before.resources}
    new = {r.urn: r.inputs for r in after.resources}
    assert old.keys() == new.keys()
    return {urn.rsplit("::", 1)[-1] for urn in old if old[urn] != new[urn]}


@pytest.fixture(scope="module")
def first_up() -> Recording:
    """The first `up` on a machine where nothing of the stack exists yet."""
    return run_program("dev", preflight=HEALTHY_PREFLIGHT + "\ncerts=missing")


def test_first_up_gives_every_cache_and_the_cluster_a_token(first_up):
    tokens = [labels(first_up, name)[preflight.LABEL_GENERATION] for name in CACHE_NAMES]
    cluster = first_up.named("kind-cluster")
    assert all(tokens) and len(set(tokens)) == len(tokens)
    assert cluster.inputs["environment"]["KRC_CLUSTER_GENERATION"] == cluster.inputs["triggers"][2] != ""


def test_second_up_with_nothing_changed_has_no_diff(first_up):
    second = run_program("dev", preflight=machine_after(first_up))
    assert changed(first_up, second) == set()


def test_a_cache_container_removed_by_hand_is_replaced_and_nothing_else(first_up):
    second = run_program("dev", preflight=machine_after(first_up, drop_caches=["kcr-dev-quay-io"]))
    assert changed(first_up, second) == {"cache-quay-io"}
    # Its volume is the same resource, kept: the new container finds the cached content.
    assert second.named("cache-quay-io").inputs["volumes"] == first_up.named("cache-quay-io").inputs["volumes"]


def test_the_local_registry_removed_by_hand_is_replaced_on_its_volume_and_nothing_else(first_up):
    second = run_program("dev", preflight=machine_after(first_up, drop_caches=[REGISTRY]))
    assert changed(first_up, second) == {"local-registry-container"}
    assert labels(second, REGISTRY)[preflight.LABEL_GENERATION] != labels(first_up, REGISTRY)[preflight.LABEL_GENERATION]
    assert second.named("local-registry-container").inputs["volumes"] == first_up.named("local-registry-container").inputs["volumes"]


@pytest.mark.parametrize(
    "drift",
    [
        pytest.param({"drop_nodes": DEV_NODES}, id="kind-delete-cluster"),
        pytest.param({"drop_nodes": ["dev-worker2"]}, id="one-node-removed"),
        pytest.param({"certs": "missing"}, id="certs-folder-deleted"),
    ],
)
def test_a_cluster_or_certs_folder_removed_by_hand_recreates_both_and_nothing_else(first_up, drift):
    second = run_program("dev", preflight=machine_after(first_up, **drift))
    assert changed(first_up, second) == {"kind-certs", "kind-cluster", "addons-provider"}
    # Both through `triggers`, which replace (delete first): the certs folder is written again before the
    # cluster that mounts it is created again; the add-ons follow the new kubeconfig.
    for name in ("kind-certs", "kind-cluster"):
        assert second.named(name).delete_before_replace
        assert second.named(name).inputs["triggers"] != first_up.named(name).inputs["triggers"]
    # The Kubernetes provider's clusterIdentifier follows the cluster: a new cluster, a new provider.
    old, new = first_up.named("addons-provider").inputs, second.named("addons-provider").inputs
    assert {k for k in old if old[k] != new[k]} == {"clusterIdentifier"}


def test_a_cache_container_made_before_tokens_is_kept_as_it_is():
    legacy = HEALTHY_PREFLIGHT + "\ncache=kcr-dev-docker-io "
    rec = run_program("dev", preflight=legacy)
    assert preflight.LABEL_GENERATION not in labels(rec, "kcr-dev-docker-io")
