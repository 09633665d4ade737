"""The whole program under Pulumi mocks with the Gateway API on: order, values, objects, platforms, refusals."""

from __future__ import annotations

import pulumi
import pytest
import yaml

from krc.render.warmup import Plan
from harness import HEALTHY_PREFLIGHT, Recording, Registered, run_program
from storefakes import fill_gateway_store, gateway_files, pin_gateway_files

RELEASE = "kubernetes:helm.sh/v3:Release"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"

ON = {"gatewayApi": {"enabled": True}}
#: What the preflight script prints on a Mac with Docker Desktop.
DOCKER_DESKTOP_PREFLIGHT = (
    HEALTHY_PREFLIGHT.replace("host_os=Linux", "host_os=Darwin")
    .replace("engine_os=Debian GNU/Linux 13 (trixie)", "engine_os=Docker Desktop")
    .replace("unix:///var/run/docker.sock", "unix:///Users/u/.docker/run/docker.sock")
)
GATEWAY_PORTS = [
    {"containerPort": 80, "hostPort": 80},
    {"containerPort": 443, "hostPort": 443},
    {"containerPort": 8080, "hostPort": 8080},
]


@pytest.fixture(scope="module", autouse=True)
def stored_release(tmp_path_factory):
    """A HOME whose artifact store holds the Gateway API release (stand-in files, pinned), as after an `up`."""
    home = tmp_path_factory.mktemp("home")
    files = gateway_files()
    with pytest.MonkeyPatch.context() as patch:
        pin_gateway_files(patch, files)
        patch.setenv("HOME", str(home))
        yield fill_gateway_store(home, files)


@pytest.fixture(scope="module")
def linux() -> Recording:
    """The dev stack on a Linux Docker Engine: the Gateway on a MetalLB address."""
    return run_program("dev", overrides={"addons": ON})


@pytest.fixture(scope="module")
def desktop() -> Recording:
    """Docker Desktop on a Mac, ingress-nginx too, a TLS secret: the Gateway on published node ports."""
    return run_program(
        "dev",
        overrides={
            "cluster": {"controlPlanes": 1, "workers": 1, "portMappings": [*GATEWAY_PORTS, {"containerPort": 8443}]},
            "addons": {"gatewayApi": {"enabled": True, "tlsSecret": "gw-tls"}},
        },
        preflight=DOCKER_DESKTOP_PREFLIGHT,
    )


def depends_on(rec: Recording, resource: Registered) -> set[str]:
    return {rec.by_urn(urn).name for urn in resource.dependencies}


def gateway_api_objects(rec: Recording) -> list[Registered]:
    return [r for r in rec.resources if r.name.startswith("addons-gateway-api-")]


# --- order ----------------------------------------------------------------------------------------


def test_cilium_waits_for_every_gateway_api_crd(linux):
    crds = {r.name for r in linux.of_type(CRD)}
    assert len(crds) == 10
    assert crds <= depends_on(linux, linux.named("addons-cilium"))


def test_crds_wait_for_nothing_but_the_artifact_store_and_the_cluster(linux):
    for crd in linux.of_type(CRD):
        assert depends_on(linux, crd) == {"store-fetch"}, crd.name
        assert crd.deleted_with == linux.named("kind-cluster").urn, crd.name


def test_crds_are_the_stored_files_objects(linux, stored_release):
    from krc.render import gateway

    stored = gateway.crd_objects("v1.6.1", stored_release)
    for crd in linux.of_type(CRD):
        (found,) = [o for o in stored if o["metadata"]["name"].split(".")[0] == crd.name.removeprefix("addons-gateway-api-")]
        assert (crd.inputs["metadata"], crd.inputs["spec"]) == (found["metadata"], found["spec"])


def test_the_safe_upgrades_policy_comes_after_the_crds(linux):
    policy = linux.named("addons-gateway-api-safe-upgrades-policy")
    assert {r.name for r in linux.of_type(CRD)} <= depends_on(linux, policy)
    binding = linux.named("addons-gateway-api-safe-upgrades-binding")
    assert "addons-gateway-api-safe-upgrades-policy" in depends_on(linux, binding)


def test_gateway_depends_on_cilium_and_goes_with_the_cluster(linux):
    gw = linux.named("addons-gateway")
    assert gw.type == GATEWAY
    assert {"addons-cilium", "addons-gateway-api-gateways", "addons-gateway-namespace"} <= depends_on(linux, gw)
    assert gw.deleted_with == linux.named("kind-cluster").urn
    assert gw.parent == linux.named("addons").urn
    (provider,) = linux.of_type("pulumi:providers:kubernetes")
    assert gw.provider.startswith(f"{provider.urn}::")


def test_gateway_class_comes_from_the_cilium_chart(linux):
    # The chart creates GatewayClass `cilium`: the program must not create a second one.
    assert [r for r in linux.resources if r.type.endswith(":GatewayClass")] == []
    values = linux.named("addons-cilium").inputs["values"]
    assert values["gatewayAPI"]["gatewayClass"] == {"create": "true"}
    assert linux.named("addons-gateway").inputs["spec"]["gatewayClassName"] == "cilium"


# --- Cilium values --------------------------------------------------------------------------------


def test_cilium_values_carry_the_documented_gateway_settings(linux):
    values = linux.named("addons-cilium").inputs["values"]
    assert values["kubeProxyReplacement"] is True
    assert values["l7Proxy"] is True
    # Merged with the program's own operator/envoy values, not replacing them.
    assert values["operator"]["replicas"] == 1 and values["operator"]["rollOutPods"] is True
    assert values["envoy"]["image"] == {"pullPolicy": "IfNotPresent"} and values["envoy"]["rollOutPods"] is True
    assert values["rollOutCiliumPods"] is True
    assert values["gatewayAPI"] == {"enabled": True, "gatewayClass": {"create": "true"}, "hostNetwork": {"enabled": False}}


def test_stack_values_still_merge_over_the_gateway_values():
    rec = run_program("dev", overrides={"addons": {**ON, "cilium": {"values": {"gatewayAPI": {"secretsNamespace": {"sync": False}}}}}})
    gateway_values = rec.named("addons-cilium").inputs["values"]["gatewayAPI"]
    assert gateway_values["enabled"] is True
    assert gateway_values["secretsNamespace"] == {"sync": False}


# --- per platform ---------------------------------------------------------------------------------


def test_linux_gateway_sits_on_the_last_metallb_address(linux):
    spec = linux.named("addons-gateway").inputs["spec"]
    assert spec["infrastructure"] == {"annotations": {"metallb.io/loadBalancerIPs": "172.30.255.250"}}
    assert [(lst["name"], lst["port"]) for lst in spec["listeners"]] == [("http", 80)]
    assert {"addons-metallb-pool", "addons-metallb-l2"} <= depends_on(linux, linux.named("addons-gateway"))
    assert linux.outputs["gatewayUrl"] == "http://172.30.255.250"
    assert linux.outputs["gatewayClass"] == "cilium"


def test_docker_desktop_gateway_uses_host_network_on_the_published_ports(desktop):
    assert desktop.named("addons-cilium").inputs["values"]["gatewayAPI"]["hostNetwork"] == {"enabled": True}
    spec = desktop.named("addons-gateway").inputs["spec"]
    assert "infrastructure" not in spec
    assert [(lst["name"], lst["port"]) for lst in spec["listeners"]] == [("http", 8080), ("https", 8443)]
    assert spec["listeners"][1]["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "gw-tls"}]
    assert desktop.outputs["gatewayUrl"] == "http://127.0.0.1:8080"


def test_docker_desktop_publishes_the_gateway_ports_next_to_ingress_nginxs(desktop):
    # ingress-nginx keeps host ports 80/443 on the node; the Gateway's listeners are on 8080/8443: no clash.
    first = yaml.safe_load(desktop.named("kind-cluster").inputs["stdin"])["nodes"][0]
    ports = {(m["containerPort"], m["hostPort"]) for m in first["extraPortMappings"]}
    assert {(80, 80), (443, 443), (8080, 8080), (8443, 8443)} <= ports
    assert "addons-ingress-nginx" in {r.name for r in desktop.of_type(RELEASE)}


def test_docker_desktop_without_the_mapping_is_refused_before_anything_is_created():
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides={"addons": ON}, preflight=DOCKER_DESKTOP_PREFLIGHT)
    message = str(info.value)
    assert message.startswith("kind-registry-cache:cluster.portMappings: the Gateway runs in host-network mode")
    assert "Docker Desktop" in message
    assert "{containerPort: 8080, hostPort: 8080}" in message


def test_explicit_host_network_mode_on_linux():
    rec = run_program(
        "dev", overrides={"cluster": {"portMappings": GATEWAY_PORTS}, "addons": {"gatewayApi": {"enabled": True, "mode": "hostNetwork"}}}
    )
    assert rec.named("addons-cilium").inputs["values"]["gatewayAPI"]["hostNetwork"] == {"enabled": True}
    assert rec.outputs["gatewayUrl"] == "http://127.0.0.1:8080"


def test_without_metallb_auto_mode_uses_host_network():
    rec = run_program(
        "dev", overrides={"cluster": {"portMappings": GATEWAY_PORTS}, "addons": {"metallb": {"enabled": False}, **ON}}
    )
    assert "infrastructure" not in rec.named("addons-gateway").inputs["spec"]
    assert rec.outputs["gatewayUrl"] == "http://127.0.0.1:8080"


# --- off, refusals, warm-up -----------------------------------------------------------------------


def test_gateway_off_by_default_adds_nothing():
    rec = run_program("dev")
    assert gateway_api_objects(rec) == [] and rec.of_type(GATEWAY) == []
    assert "gatewayAPI" not in rec.named("addons-cilium").inputs["values"]
    assert rec.outputs.get("gatewayUrl") is None and rec.outputs.get("gatewayClass") is None


@pytest.mark.parametrize(
    "addons, says",
    [
        pytest.param({"cilium": {"enabled": False}, **ON}, "addons.gatewayApi.enabled: the Gateway is implemented by Cilium", id="no-cilium"),
        pytest.param(
            {"cilium": {"values": {"kubeProxyReplacement": False}}, **ON},
            "addons.gatewayApi.enabled: Cilium's Gateway API needs kube-proxy replacement",
            id="kpr-off",
        ),
        pytest.param({"gatewayApi": {"enabled": True, "version": "v1.3.0"}}, "addons.gatewayApi.version: Cilium 1.20.0 supports Gateway API v1.6.1", id="version"),
    ],
)
def test_refusals_name_the_key_before_anything_is_created(addons, says):
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides={"addons": addons})
    assert f"kind-registry-cache:{says}" in str(info.value)


def test_warmup_pulls_the_envoy_image_the_gateway_runs_in(linux):
    plan = Plan.from_json(linux.named("warmup-images").inputs["stdin"])
    images = set(plan.images)
    assert any(i.startswith("quay.io/cilium/cilium-envoy:v1.") for i in images), images
    assert {"quay.io/cilium/cilium:v1.20.0", "quay.io/cilium/operator-generic:v1.20.0"} <= images
