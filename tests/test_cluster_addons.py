"""The whole program under Pulumi mocks for every add-on combination that changes the resource graph."""

from __future__ import annotations

import json
import sys

import pulumi
import pytest
import yaml

from harness import Recording, Registered, run_program

RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
POOL = "kubernetes:metallb.io/v1beta1:IPAddressPool"
L2 = "kubernetes:metallb.io/v1beta1:L2Advertisement"
PROVIDER = "pulumi:providers:kubernetes"

OFF = {"enabled": False}


@pytest.fixture(scope="module")
def all_on() -> Recording:
    """The dev stack: three control planes behind kind's load balancer, three workers, every add-on."""
    return run_program("dev")


@pytest.fixture(scope="module")
def all_off() -> Recording:
    # The local registry's ConfigMap is the one in-cluster object besides the add-ons (tests/test_local_registry.py).
    return run_program(
        "dev", overrides={"addons": {"cilium": OFF, "metallb": OFF, "ingressNginx": OFF}, "localRegistry": OFF}
    )


@pytest.fixture(scope="module")
def cilium_only() -> Recording:
    return run_program(
        "solo",
        overrides={
            "cluster": {"controlPlanes": 1, "workers": 0},
            "addons": {"cilium": {"hubble": True}, "metallb": OFF, "ingressNginx": OFF},
        },
    )


@pytest.fixture(scope="module")
def no_cilium() -> Recording:
    """kindnet and kube-proxy stay; MetalLB (own range, FRR on) and ingress-nginx on a /24 network."""
    return run_program(
        "lan",
        overrides={
            "network": {"subnet": "172.31.0.0/24"},
            "addons": {"cilium": OFF, "metallb": {"range": "172.31.0.160-172.31.0.175", "frr": True}},
        },
    )


def kubernetes_resources(rec: Recording) -> list[Registered]:
    return [r for r in rec.resources if r.type.startswith("kubernetes:")]


def releases(rec: Recording) -> dict[str, Registered]:
    return {r.name: r for r in rec.of_type(RELEASE)}


def kind_config(rec: Recording) -> dict:
    return yaml.safe_load(rec.named("kind-cluster").inputs["stdin"])


def depends_on(rec: Recording, resource: Registered) -> set[str]:
    return {rec.by_urn(urn).name for urn in resource.dependencies}


# --- all on (dev) ---------------------------------------------------------------------------------


def test_all_on_installs_three_pinned_releases(all_on):
    found = {
        name: tuple(r.inputs[k] for k in ("name", "chart", "version", "namespace")) + (r.inputs["repositoryOpts"]["repo"],)
        for name, r in releases(all_on).items()
    }
    assert found == {
        "addons-cilium": ("cilium", "cilium", "1.20.0", "kube-system", "https://helm.cilium.io/"),
        "addons-metallb": ("metallb", "metallb", "0.16.1", "metallb-system", "https://metallb.github.io/metallb"),
        "addons-ingress-nginx": (
            "ingress-nginx",
            "ingress-nginx",
            "4.15.1",
            "ingress-nginx",
            "https://kubernetes.github.io/ingress-nginx",
        ),
    }


def test_releases_wait_and_keep_a_failed_release_for_its_error(all_on):
    for release in all_on.of_type(RELEASE):
        inputs = release.inputs
        assert (inputs["skipAwait"], inputs["waitForJobs"], inputs["atomic"]) == (False, True, False), release.name
        assert inputs["timeout"] == 600, release.name


def test_kubernetes_provider_is_built_from_the_secret_kubeconfig(all_on):
    (provider,) = all_on.of_type(PROVIDER)
    assert provider.inputs["kubeconfig"].startswith("apiVersion: v1"), provider.name
    assert provider.secret_inputs == {"kubeconfig"}, provider.name
    assert all_on.named("kind-kubeconfig").urn in provider.dependencies, provider.name


def test_every_kubernetes_resource_uses_the_clusters_provider(all_on):
    (provider,) = all_on.of_type(PROVIDER)
    for r in kubernetes_resources(all_on):
        assert r.provider.startswith(f"{provider.urn}::"), r.name


def test_every_kubernetes_resource_goes_with_the_cluster(all_on):
    cluster = all_on.named("kind-cluster")
    for r in kubernetes_resources(all_on) + all_on.of_type(PROVIDER):
        assert r.deleted_with == cluster.urn, r.name


def test_addon_resources_are_children_of_the_component(all_on):
    component = all_on.named("addons")
    assert component.type == "kind-registry-cache:index:ClusterAddons"
    for r in kubernetes_resources(all_on) + all_on.of_type(PROVIDER):
        assert r.parent == component.urn, r.name


def test_metallb_and_ingress_wait_for_cilium(all_on):
    for name in ("addons-metallb", "addons-ingress-nginx"):
        assert "addons-cilium" in depends_on(all_on, all_on.named(name)), name


def test_metallb_and_ingress_do_not_wait_for_each_other(all_on):
    assert "addons-ingress-nginx" not in depends_on(all_on, all_on.named("addons-metallb"))
    assert "addons-metallb" not in depends_on(all_on, all_on.named("addons-ingress-nginx"))


def test_releases_go_into_their_own_namespaces(all_on):
    assert "addons-metallb-namespace" in depends_on(all_on, all_on.named("addons-metallb"))
    assert "addons-ingress-nginx-namespace" in depends_on(all_on, all_on.named("addons-ingress-nginx"))


def test_metallb_namespace_allows_privileged_pods(all_on):
    namespace = all_on.named("addons-metallb-namespace")
    assert namespace.inputs["metadata"] == {
        "name": "metallb-system",
        "labels": {
            "pod-security.kubernetes.io/enforce": "privileged",
            "pod-security.kubernetes.io/audit": "privileged",
            "pod-security.kubernetes.io/warn": "privileged",
        },
    }, namespace.name


def test_metallb_objects_come_after_its_release(all_on):
    pool, l2 = all_on.named("addons-metallb-pool"), all_on.named("addons-metallb-l2")
    assert "addons-metallb" in depends_on(all_on, pool), pool.name
    assert {"addons-metallb", "addons-metallb-pool"} <= depends_on(all_on, l2), l2.name


def test_metallb_pool_is_the_default_range_and_announced_over_l2(all_on):
    (pool,) = all_on.of_type(POOL)
    (l2,) = all_on.of_type(L2)
    assert pool.inputs["metadata"] == {"name": "kind", "namespace": "metallb-system"}, pool.name
    assert pool.inputs["spec"] == {"addresses": ["172.30.255.200-172.30.255.250"]}, pool.name
    assert l2.inputs["spec"] == {"ipAddressPools": ["kind"]}, l2.name


def test_cilium_replaces_kube_proxy_through_the_load_balancer(all_on):
    values = all_on.named("addons-cilium").inputs["values"]
    assert values["kubeProxyReplacement"] is True
    assert (values["k8sServiceHost"], values["k8sServicePort"]) == ("dev-external-load-balancer", 6443)
    assert values["ipam"] == {"mode": "kubernetes"}
    assert values["image"]["pullPolicy"] == "IfNotPresent"
    assert not {"hostServices", "externalIPs", "hostPort", "nodePort"} & set(values)


def test_metallb_runs_without_frr_by_default(all_on):
    values = all_on.named("addons-metallb").inputs["values"]
    assert values["frrk8s"] == {"enabled": False}
    assert "configInline" not in values


def test_ingress_binds_host_ports_on_the_labelled_control_plane(all_on):
    controller = all_on.named("addons-ingress-nginx").inputs["values"]["controller"]
    assert controller["hostPort"]["enabled"] is True
    assert controller["nodeSelector"] == {"ingress-ready": "true"}
    assert {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"} in controller[
        "tolerations"
    ]
    assert controller["extraArgs"] == {"publish-status-address": "localhost"}
    first = kind_config(all_on)["nodes"][0]
    assert first["labels"] == {"ingress-ready": "true"}
    mapped = {(m["containerPort"], m["listenAddress"]) for m in first["extraPortMappings"]}
    assert mapped == {(80, "127.0.0.1"), (443, "127.0.0.1")}


def test_cilium_switches_off_kindnet_and_kube_proxy(all_on):
    assert kind_config(all_on)["networking"] == {"disableDefaultCNI": True, "kubeProxyMode": "none"}


def test_all_on_outputs(all_on):
    assert all_on.outputs["metallbRange"] == "172.30.255.200-172.30.255.250"
    assert all_on.outputs["ingressUrl"] == "http://127.0.0.1"
    assert all_on.outputs["chartVersions"] == {"cilium": "1.20.0", "metallb": "0.16.1", "ingress-nginx": "4.15.1"}


def test_stack_values_are_merged_over_ours():
    rec = run_program(
        "dev",
        overrides={
            "addons": {
                "cilium": {"values": {"operator": {"replicas": 2}, "hubble": {"ui": {"enabled": True}}}},
                "ingressNginx": {"values": {"controller": {"tolerations": [], "extraArgs": None}}},
            }
        },
    )
    cilium = rec.named("addons-cilium").inputs["values"]
    assert cilium["operator"] == {"replicas": 2, "image": {"pullPolicy": "IfNotPresent"}}
    assert cilium["hubble"] == {"relay": {"enabled": False}, "ui": {"enabled": True}}
    assert cilium["k8sServiceHost"] == "dev-external-load-balancer"
    controller = rec.named("addons-ingress-nginx").inputs["values"]["controller"]
    assert controller["tolerations"] == []
    assert "extraArgs" not in controller
    assert controller["hostPort"]["enabled"] is True


def test_chart_version_and_repository_come_from_stack_config():
    rec = run_program(
        "dev", overrides={"addons": {"metallb": {"version": "0.16.2", "repository": "oci://ghcr.io/acme/charts"}}}
    )
    metallb = rec.named("addons-metallb").inputs
    assert (metallb["chart"], metallb["version"]) == ("oci://ghcr.io/acme/charts/metallb", "0.16.2")
    assert "repositoryOpts" not in metallb


# --- all off --------------------------------------------------------------------------------------


def test_all_off_creates_no_kubernetes_resource_or_provider(all_off):
    assert kubernetes_resources(all_off) == []
    assert all_off.of_type(PROVIDER) == []


def test_all_off_keeps_kinds_default_cni_and_no_labels(all_off):
    config = kind_config(all_off)
    assert "networking" not in config
    assert "labels" not in config["nodes"][0]


def test_all_off_outputs(all_off):
    assert all_off.outputs["chartVersions"] == {}
    assert all_off.outputs.get("metallbRange") is None
    assert all_off.outputs.get("ingressUrl") is None


# --- Cilium only ----------------------------------------------------------------------------------


def test_cilium_only_installs_one_release_and_no_namespace(cilium_only):
    assert set(releases(cilium_only)) == {"addons-cilium"}
    assert cilium_only.of_type(NAMESPACE) == []
    assert cilium_only.of_type(POOL) + cilium_only.of_type(L2) == []


def test_cilium_only_reaches_the_single_control_plane(cilium_only):
    values = cilium_only.named("addons-cilium").inputs["values"]
    assert values["k8sServiceHost"] == "solo-control-plane"


def test_cilium_only_runs_hubble_relay(cilium_only):
    values = cilium_only.named("addons-cilium").inputs["values"]
    assert values["hubble"]["relay"]["enabled"] is True


def test_cilium_only_kind_config_has_no_ingress_label(cilium_only):
    config = kind_config(cilium_only)
    assert config["networking"] == {"disableDefaultCNI": True, "kubeProxyMode": "none"}
    assert "labels" not in config["nodes"][0]


def test_cilium_only_outputs(cilium_only):
    assert cilium_only.outputs["chartVersions"] == {"cilium": "1.20.0"}
    assert cilium_only.outputs.get("metallbRange") is None
    assert cilium_only.outputs.get("ingressUrl") is None


def test_cilium_only_release_uses_provider_and_goes_with_the_cluster(cilium_only):
    (provider,) = cilium_only.of_type(PROVIDER)
    release = cilium_only.named("addons-cilium")
    assert release.provider.startswith(f"{provider.urn}::"), release.name
    assert release.deleted_with == cilium_only.named("kind-cluster").urn, release.name


# --- MetalLB and ingress-nginx without Cilium -----------------------------------------------------


def test_no_cilium_keeps_kindnet_and_kube_proxy(no_cilium):
    config = kind_config(no_cilium)
    assert "networking" not in config
    assert config["nodes"][0]["labels"] == {"ingress-ready": "true"}


def test_no_cilium_releases_wait_only_for_their_namespace_and_the_cache_warmup(no_cilium):
    assert set(releases(no_cilium)) == {"addons-metallb", "addons-ingress-nginx"}
    assert depends_on(no_cilium, no_cilium.named("addons-metallb")) == {"addons-metallb-namespace", "warmup-images"}
    assert depends_on(no_cilium, no_cilium.named("addons-ingress-nginx")) == {
        "addons-ingress-nginx-namespace",
        "warmup-images",
    }


def test_no_cilium_uses_the_configured_range_and_frr(no_cilium):
    (pool,) = no_cilium.of_type(POOL)
    assert pool.inputs["spec"] == {"addresses": ["172.31.0.160-172.31.0.175"]}, pool.name
    assert no_cilium.named("addons-metallb").inputs["values"]["frrk8s"] == {"enabled": True}
    assert no_cilium.outputs["metallbRange"] == "172.31.0.160-172.31.0.175"


def test_no_cilium_resources_use_provider_and_go_with_the_cluster(no_cilium):
    (provider,) = no_cilium.of_type(PROVIDER)
    cluster = no_cilium.named("kind-cluster")
    for r in kubernetes_resources(no_cilium):
        assert r.provider.startswith(f"{provider.urn}::"), r.name
        assert r.deleted_with == cluster.urn, r.name


def test_no_cilium_outputs(no_cilium):
    assert no_cilium.outputs["chartVersions"] == {"metallb": "0.16.1", "ingress-nginx": "4.15.1"}
    assert no_cilium.outputs["ingressUrl"] == "http://127.0.0.1"


# --- config errors before anything is created -------------------------------------------------------


def test_range_outside_the_network_fails_before_any_resource():
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides={"addons": {"metallb": {"range": "172.18.255.200-172.18.255.250"}}})
    assert "addons.metallb.range" in str(info.value)
    assert "not inside the kind network 172.30.0.0/16" in str(info.value)


def test_addon_problems_are_reported_with_the_other_settings():
    with pytest.raises(pulumi.RunError) as info:
        run_program(
            "dev",
            overrides={"cluster": {"workers": -1}, "addons": {"cilium": {"values": {"kubeProxyReplacement": "strict"}}}},
        )
    assert "cluster.workers" in str(info.value)
    assert "addons.cilium.values.kubeProxyReplacement" in str(info.value)
    assert "2 problems" in str(info.value)


# --- MetalLB's webhook wait -----------------------------------------------------------------------

COMMAND = "command:local:Command"


def test_metallb_pool_and_l2_wait_for_the_webhook_wait(all_on):
    wait = all_on.named("addons-metallb-webhook")
    assert "addons-metallb" in depends_on(all_on, wait), wait.name
    for name in ("addons-metallb-pool", "addons-metallb-l2"):
        assert "addons-metallb-webhook" in depends_on(all_on, all_on.named(name)), name


def test_metallb_webhook_wait_runs_the_programs_python_with_the_secret_kubeconfig_on_stdin(all_on):
    wait = all_on.named("addons-metallb-webhook")
    assert wait.type == COMMAND
    assert wait.inputs["create"].endswith(" -m krc.commands.metallbwebhook"), wait.name
    assert wait.inputs["create"].startswith(sys.executable), wait.name
    assert wait.secret_inputs == {"stdin"}, wait.name
    job = json.loads(wait.inputs["stdin"])
    assert job["kubeconfig"].startswith("apiVersion: v1"), wait.name
    (pool,) = all_on.of_type(POOL)
    assert job["manifest"]["spec"] == pool.inputs["spec"], wait.name
    assert job["manifest"]["kind"] == "IPAddressPool", wait.name
    assert "environment" not in wait.inputs, wait.name


def test_metallb_webhook_wait_is_a_child_that_goes_with_the_cluster(all_on):
    wait = all_on.named("addons-metallb-webhook")
    assert wait.parent == all_on.named("addons").urn, wait.name
    assert wait.deleted_with == all_on.named("kind-cluster").urn, wait.name


def test_no_webhook_wait_without_metallb(cilium_only):
    assert [r.name for r in cilium_only.of_type(COMMAND) if r.name.startswith("addons-")] == []
