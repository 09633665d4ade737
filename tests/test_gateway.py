"""The pure parts of the Gateway API add-on: setting, cross-checks, mode, ports and URL, values, the CRDs from the store."""

from __future__ import annotations

import hashlib
import ipaddress
import re

import pytest

from krc.config import addons as addon_settings
from krc.config import PortMapping, SettingsError
from krc.config.gateway import _Collector as _Problems
from krc import preflight, versions
from krc.config import gateway as gateway_settings
from krc.config.gateway import GatewayApiSettings
from krc.render import gateway
from krc.render.gateway import GatewayError
from storefakes import fill_gateway_store, gateway_files, pin_gateway_files

SUBNET = ipaddress.IPv4Network("172.30.0.0/16")
DEFAULT_MAPPINGS = (PortMapping(80, 80), PortMapping(443, 443))
GATEWAY_MAPPINGS = (*DEFAULT_MAPPINGS, PortMapping(8080, 8080), PortMapping(8443, 9443, "0.0.0.0"))


def parse(raw: dict) -> addon_settings.AddonSettings:
    return addon_settings.parse(raw, subnet=SUBNET)


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(SettingsError) as info:
        parse(raw)
    return info.value.problems


# --- the setting ----------------------------------------------------------------------------------


def test_gateway_is_off_by_default_and_pins_the_release_cilium_supports():
    assert parse({}).gateway_api == GatewayApiSettings(enabled=False, version="v1.6.1", mode="auto", tls_secret=None)
    assert versions.GATEWAY_API_VERSION == "v1.6.1"


def test_enabled_with_every_key():
    found = parse(
        {"gatewayApi": {"enabled": "true", "version": "v1.6.1", "mode": "hostNetwork", "tlsSecret": "gw-tls"}}
    ).gateway_api
    assert found == GatewayApiSettings(enabled=True, version="v1.6.1", mode="hostNetwork", tls_secret="gw-tls")


@pytest.mark.parametrize(
    "raw, key, says",
    [
        pytest.param({"version": "v1.2.0"}, "addons.gatewayApi.version", "supports Gateway API v1.6.1", id="old-version"),
        pytest.param({"version": "1.6.1"}, "addons.gatewayApi.version", "set it to v1.6.1", id="no-v"),
        pytest.param({"mode": "nodePort"}, "addons.gatewayApi.mode", "auto, loadBalancer, hostNetwork", id="mode"),
        pytest.param({"tlsSecret": "My_Secret"}, "addons.gatewayApi.tlsSecret", "namespace gateway", id="secret"),
        pytest.param({"tlsSecrets": "x"}, "addons.gatewayApi.tlsSecrets", "did you mean 'tlsSecret'", id="unknown-key"),
    ],
)
def test_bad_gateway_settings_name_the_key_and_the_fix(raw, key, says):
    problems = problems_of({"gatewayApi": {"enabled": True, **raw}})
    assert any(p.startswith(f"kind-registry-cache:{key}:") and says in p for p in problems), problems


def test_gateway_without_cilium_is_refused():
    problems = problems_of({"cilium": {"enabled": False}, "gatewayApi": {"enabled": True}})
    assert problems == [
        "kind-registry-cache:addons.gatewayApi.enabled: the Gateway is implemented by Cilium, which is off; turn it "
        "on (remove addons.cilium.enabled: false) or set addons.gatewayApi.enabled: false"
    ]


def test_gateway_with_kube_proxy_replacement_off_is_refused():
    problems = problems_of({"cilium": {"values": {"kubeProxyReplacement": False}}, "gatewayApi": {"enabled": True}})
    assert any(
        p.startswith("kind-registry-cache:addons.gatewayApi.enabled:") and "needs kube-proxy replacement" in p
        for p in problems
    ), problems


@pytest.mark.parametrize(
    "values, says",
    [
        pytest.param({"l7Proxy": False}, "l7Proxy is false", id="l7proxy"),
        pytest.param({"gatewayAPI": {"enabled": False}}, "gatewayAPI.enabled is false", id="gateway-values"),
    ],
)
def test_cilium_values_that_turn_the_gateway_off_are_refused(values, says):
    problems = problems_of({"cilium": {"values": values}, "gatewayApi": {"enabled": True}})
    assert any("addons.gatewayApi.enabled" in p and says in p for p in problems), problems


def test_load_balancer_mode_without_metallb_is_refused():
    problems = problems_of({"metallb": {"enabled": False}, "gatewayApi": {"enabled": True, "mode": "loadBalancer"}})
    assert any(p.startswith("kind-registry-cache:addons.gatewayApi.mode:") and "MetalLB" in p for p in problems)


def test_cross_checks_ignore_a_gateway_that_is_off():
    problems = _Problems()
    gateway_settings.cross_check(
        problems, GatewayApiSettings(), cilium_enabled=False, cilium_values={}, metallb_enabled=False
    )
    assert problems.items == []


# --- mode -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, metallb, routable, expected",
    [
        pytest.param("auto", True, True, "loadBalancer", id="linux-engine"),
        pytest.param("auto", True, False, "hostNetwork", id="docker-desktop"),
        pytest.param("auto", False, True, "hostNetwork", id="no-metallb"),
        pytest.param("loadBalancer", True, False, "loadBalancer", id="explicit-lb"),
        pytest.param("hostNetwork", True, True, "hostNetwork", id="explicit-host"),
    ],
)
def test_mode_follows_the_setting_or_the_engine(mode, metallb, routable, expected):
    found, reason = gateway.resolve_mode(
        GatewayApiSettings(enabled=True, mode=mode), metallb_enabled=metallb, kind_network_routable=routable, engine="e"
    )
    assert found == expected, reason


@pytest.mark.parametrize(
    "host_os, engine_os, host, routable",
    [
        pytest.param("Linux", "Debian GNU/Linux 13 (trixie)", "unix:///var/run/docker.sock", True, id="linux"),
        pytest.param("Linux", "Ubuntu 24.04 LTS", "", True, id="linux-default-socket"),
        pytest.param("Darwin", "Docker Desktop", "unix:///Users/u/.docker/run/docker.sock", False, id="mac-desktop"),
        pytest.param("Darwin", "Ubuntu 24.04.2 LTS", "unix:///Users/u/.colima/default/docker.sock", False, id="mac-colima"),
        pytest.param("Linux", "Docker Desktop", "unix:///home/u/.docker/desktop/docker.sock", False, id="linux-desktop"),
        pytest.param("Linux", "Ubuntu 24.04 LTS", "unix:///home/u/.colima/default/docker.sock", False, id="linux-colima"),
        pytest.param("Linux", "Debian", "ssh://me@box", False, id="remote-ssh"),
        pytest.param("Linux", "Debian", "tcp://10.0.0.5:2376", False, id="remote-tcp"),
        pytest.param("MINGW64_NT-10.0", "Docker Desktop", "npipe:////./pipe/docker_engine", False, id="windows"),
    ],
)
def test_kind_network_is_routable_only_from_a_local_linux_engine(host_os, engine_os, host, routable):
    report = preflight.Report(kind="kind v0.32.0", docker="28.2.2", host_os=host_os, engine_os=engine_os)
    found, engine = preflight.kind_network_routable(report, host)
    assert found is routable, engine


# --- plan: ports, address, URL --------------------------------------------------------------------


def test_load_balancer_plan_asks_metallb_for_the_pools_last_address():
    found = gateway.plan(
        GatewayApiSettings(enabled=True, tls_secret="gw-tls"),
        mode="loadBalancer",
        reason="r",
        metallb_last_address=ipaddress.IPv4Address("172.30.255.250"),
        port_mappings=DEFAULT_MAPPINGS,
    )
    assert (found.http_port, found.https_port, found.address, found.url) == (80, 443, "172.30.255.250", "http://172.30.255.250")


def test_host_network_plan_uses_the_published_node_ports():
    found = gateway.plan(
        GatewayApiSettings(enabled=True, tls_secret="gw-tls"),
        mode="hostNetwork",
        reason="r",
        metallb_last_address=None,
        port_mappings=GATEWAY_MAPPINGS,
    )
    assert (found.http_port, found.https_port, found.address, found.url) == (8080, 8443, None, "http://127.0.0.1:8080")


def test_host_port_80_can_point_at_the_gateway_when_ingress_nginx_is_off():
    found = gateway.plan(
        GatewayApiSettings(enabled=True),
        mode="hostNetwork",
        reason="r",
        metallb_last_address=None,
        port_mappings=(PortMapping(8080, 80),),
    )
    assert found.url == "http://127.0.0.1"


@pytest.mark.parametrize(
    "tls, mappings, missing",
    [
        pytest.param(None, DEFAULT_MAPPINGS, "8080", id="http"),
        pytest.param("gw-tls", (*DEFAULT_MAPPINGS, PortMapping(8080, 8080)), "8443", id="https"),
        pytest.param(None, (PortMapping(8080, 8080, protocol="UDP"),), "8080", id="udp-only"),
    ],
)
def test_host_network_without_a_published_port_is_refused_with_the_mapping_to_add(tls, mappings, missing):
    with pytest.raises(GatewayError) as info:
        gateway.plan(
            GatewayApiSettings(enabled=True, tls_secret=tls),
            mode="hostNetwork",
            reason="auto: not routable",
            metallb_last_address=None,
            port_mappings=mappings,
        )
    message = str(info.value)
    assert message.startswith("kind-registry-cache:cluster.portMappings: the Gateway runs in host-network mode")
    assert f"- {{containerPort: {missing}, hostPort: {missing}}}" in message
    assert "mode: loadBalancer" in message


# --- what goes to the cluster ---------------------------------------------------------------------


@pytest.mark.parametrize("mode, host_network", [("loadBalancer", False), ("hostNetwork", True)])
def test_cilium_values_are_the_documented_gateway_settings(mode, host_network):
    assert gateway.cilium_values(mode) == {
        "kubeProxyReplacement": True,
        "l7Proxy": True,
        "rollOutCiliumPods": True,
        "operator": {"rollOutPods": True},
        "envoy": {"rollOutPods": True},
        "gatewayAPI": {"enabled": True, "gatewayClass": {"create": "true"}, "hostNetwork": {"enabled": host_network}},
    }


def test_gateway_manifest_with_https_on_a_metallb_address():
    plan = gateway.GatewayPlan("loadBalancer", 80, 443, "gw-tls", "172.30.255.250", "http://172.30.255.250", "r")
    every = {"namespaces": {"from": "All"}}
    assert gateway.gateway_manifest(plan) == {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "shared", "namespace": "gateway"},
        "spec": {
            "gatewayClassName": "cilium",
            "listeners": [
                {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": every},
                {
                    "name": "https",
                    "protocol": "HTTPS",
                    "port": 443,
                    "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "gw-tls"}]},
                    "allowedRoutes": every,
                },
            ],
            "infrastructure": {"annotations": {"metallb.io/loadBalancerIPs": "172.30.255.250"}},
        },
    }


def test_gateway_manifest_in_host_network_mode_has_no_address_and_no_https_without_a_secret():
    plan = gateway.GatewayPlan("hostNetwork", 8080, None, None, None, "http://127.0.0.1:8080", "r")
    spec = gateway.gateway_manifest(plan)["spec"]
    assert "infrastructure" not in spec
    assert [(lst["name"], lst["port"]) for lst in spec["listeners"]] == [("http", 8080)]


# --- the CRDs, from the artifact store ----------------------------------------------------------


def test_the_pinned_release_has_a_sha256_per_file_and_a_table_of_its_objects():
    pins = versions.GATEWAY_API_CRD_SHA256[versions.GATEWAY_API_VERSION]
    assert len(pins) == 11 and all(re.fullmatch(r"[0-9a-f]{64}", d) for d in pins.values())
    assert set(gateway.CRD_OBJECTS[versions.GATEWAY_API_VERSION]) == set(pins)
    assert versions.GATEWAY_API_CRD_URL.format(version="v1.6.1", file="x.yaml") == (
        "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/v1.6.1/config/crd/standard/x.yaml"
    )
    # The ten kinds of the standard channel (TLSRoute, TCPRoute, UDPRoute and ListenerSet moved there in v1.5/v1.6),
    # then the safe-upgrades admission policy and its binding.
    objects = gateway.crd_object_list(versions.GATEWAY_API_VERSION)
    assert [o.name.split(".")[0] for o in objects[:10]] == [
        "backendtlspolicies", "gatewayclasses", "gateways", "grpcroutes", "httproutes", "listenersets",
        "referencegrants", "tcproutes", "tlsroutes", "udproutes",
    ]
    assert [o.kind for o in objects[10:]] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """The release's (stand-in) files in a store, pinned."""
    files = gateway_files()
    pin_gateway_files(monkeypatch, files)
    return fill_gateway_store(tmp_path, files)


def test_objects_are_read_from_the_store_in_install_order(stored):
    objects = gateway.crd_objects("v1.6.1", stored)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        (o.kind, o.name) for o in gateway.crd_object_list("v1.6.1")
    ]
    assert objects[2]["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == "v1.6.1"


def test_a_changed_file_is_refused_naming_both_digests(stored):
    target = stored / "gateway.networking.k8s.io_httproutes.yaml"
    pinned = hashlib.sha256(target.read_bytes()).hexdigest()
    target.write_bytes(target.read_bytes().replace(b"Namespaced", b"Cluster", 1))
    with pytest.raises(GatewayError) as info:
        gateway.crd_objects("v1.6.1", stored)
    message = str(info.value)
    assert hashlib.sha256(target.read_bytes()).hexdigest() in message and pinned in message
    assert "httproutes.yaml" in message and "run `pulumi up` again" in message


def test_a_missing_file_is_refused(stored):
    (stored / "gateway.networking.k8s.io_tlsroutes.yaml").unlink()
    with pytest.raises(GatewayError, match="tlsroutes.yaml is not in the artifact store"):
        gateway.crd_files("v1.6.1", stored)


def test_a_file_holding_other_objects_is_refused(tmp_path, monkeypatch):
    files = gateway_files()
    files["gateway.networking.k8s.io_gateways.yaml"] = files["gateway.networking.k8s.io_httproutes.yaml"]
    pin_gateway_files(monkeypatch, files)
    folder = fill_gateway_store(tmp_path, files)
    with pytest.raises(GatewayError, match="gateways.yaml holds .*httproutes"):
        gateway.crd_objects("v1.6.1", folder)
