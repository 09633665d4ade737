"""The pure parts of the Gateway API add-on: setting, cross-checks, mode, ports and URL, values, vendored CRDs."""

from __future__ import annotations

import hashlib
import ipaddress
import shutil

import pytest

from krc.config import addons as addon_settings
from krc.config import PortMapping, SettingsError
from krc.config.gateway import _Collector as _Problems
from krc import preflight, versions
from krc.config import gateway as gateway_settings
from krc.config.gateway import GatewayApiSettings
from krc.render import gateway
from krc.render.gateway import GatewayError

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


# --- the vendored CRDs ----------------------------------------------------------------------------


def test_vendored_files_match_the_pinned_upstream_sha256():
    folder = gateway.VENDOR_DIR / versions.GATEWAY_API_VERSION
    for name, digest in gateway.CRD_SHA256[versions.GATEWAY_API_VERSION].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    # SHA256SUMS (written when vendoring) and the pins in code say the same.
    sums = dict(reversed(line.split()) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert sums == gateway.CRD_SHA256[versions.GATEWAY_API_VERSION]
    assert (folder / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_vendored_objects_are_the_standard_channel_of_the_pinned_release():
    objects = gateway.crd_objects(versions.GATEWAY_API_VERSION)
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert {o["spec"]["names"]["kind"] for o in crds} == {
        "GatewayClass", "Gateway", "HTTPRoute", "GRPCRoute", "ReferenceGrant", "BackendTLSPolicy",
        "TLSRoute", "TCPRoute", "UDPRoute", "ListenerSet",
    }
    for crd in crds:
        annotations = crd["metadata"]["annotations"]
        assert annotations["gateway.networking.k8s.io/bundle-version"] == "v1.6.1", crd["metadata"]["name"]
        assert annotations["gateway.networking.k8s.io/channel"] == "standard", crd["metadata"]["name"]
    assert [o["kind"] for o in objects[len(crds):]] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]


def test_an_edited_vendored_file_is_refused(tmp_path):
    folder = tmp_path / "v1.6.1"
    shutil.copytree(gateway.VENDOR_DIR / "v1.6.1", folder)
    target = folder / "gateway.networking.k8s.io_httproutes.yaml"
    target.write_bytes(target.read_bytes().replace(b"maxItems: 16", b"maxItems: 64", 1))
    with pytest.raises(GatewayError, match="httproutes.yaml: sha256 .* is not the pinned"):
        gateway.crd_objects("v1.6.1", tmp_path)


def test_a_missing_or_extra_vendored_file_is_refused(tmp_path):
    folder = tmp_path / "v1.6.1"
    shutil.copytree(gateway.VENDOR_DIR / "v1.6.1", folder)
    (folder / "gateway.networking.k8s.io_tlsroutes.yaml").unlink()
    with pytest.raises(GatewayError, match="expected exactly the files"):
        gateway.crd_files("v1.6.1", tmp_path)
