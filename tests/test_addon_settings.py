"""The ``addons`` setting: defaults, switching each add-on off, and one clear error per invalid value."""

from __future__ import annotations

import ipaddress

import pytest

from krc.config import addons as addon_settings
from krc.config import SettingsError
from krc import versions

SUBNET = ipaddress.IPv4Network("172.30.0.0/16")


def parse(raw=None, subnet=SUBNET):
    return addon_settings.parse(raw, subnet=subnet)


def problems_of(raw, subnet=SUBNET) -> list[str]:
    with pytest.raises(SettingsError) as info:
        parse(raw, subnet)
    return info.value.problems


def test_defaults_install_all_three_at_the_pinned_versions():
    s = parse()
    assert (s.cilium.enabled, s.metallb.enabled, s.ingress_nginx.enabled) == (True, True, True)
    assert (s.cilium.version, s.cilium.repository) == (versions.CILIUM_CHART, "https://helm.cilium.io/")
    assert (s.metallb.version, s.metallb.repository) == (versions.METALLB_CHART, "https://metallb.github.io/metallb")
    assert (s.ingress_nginx.version, s.ingress_nginx.repository) == (
        versions.INGRESS_NGINX_CHART,
        "https://kubernetes.github.io/ingress-nginx",
    )
    assert (s.cilium.hubble, s.metallb.frr) == (False, False)
    assert str(s.metallb.range) == "172.30.255.200-172.30.255.250"
    assert (s.cilium.values, s.metallb.values, s.ingress_nginx.values) == ({}, {}, {})


def test_pulumi_yaml_default_object_parses_to_the_defaults():
    raw = {"cilium": {"enabled": True}, "metallb": {"enabled": True}, "ingressNginx": {"enabled": True}}
    assert parse(raw) == parse()


@pytest.mark.parametrize(
    ("raw", "enabled"),
    [
        pytest.param({"cilium": {"enabled": False}}, (False, True, True), id="no-cilium"),
        pytest.param({"metallb": {"enabled": "false"}}, (True, False, True), id="no-metallb-cli-text"),
        pytest.param({"ingressNginx": {"enabled": False}}, (True, True, False), id="no-ingress"),
        pytest.param(
            {"cilium": {"enabled": False}, "metallb": {"enabled": False}, "ingressNginx": {"enabled": False}},
            (False, False, False),
            id="none",
        ),
    ],
)
def test_each_addon_can_be_switched_off_alone(raw, enabled):
    s = parse(raw)
    assert (s.cilium.enabled, s.metallb.enabled, s.ingress_nginx.enabled) == enabled
    assert s.any_enabled == any(enabled)


def test_overrides_are_kept():
    s = parse(
        {
            "cilium": {"version": "1.20.3", "hubble": "true", "values": {"hubble": {"ui": {"enabled": True}}}},
            "metallb": {"range": "172.30.200.0/28", "frr": True, "repository": "oci://ghcr.io/acme/charts"},
            "ingressNginx": {"values": {"controller": {"replicaCount": 2}}},
        }
    )
    assert (s.cilium.version, s.cilium.hubble, s.cilium.values) == ("1.20.3", True, {"hubble": {"ui": {"enabled": True}}})
    assert (str(s.metallb.range), s.metallb.frr) == ("172.30.200.0-172.30.200.15", True)
    assert s.metallb.repository == "oci://ghcr.io/acme/charts"
    assert s.ingress_nginx.values == {"controller": {"replicaCount": 2}}


def test_default_range_follows_the_subnet():
    assert str(parse(subnet=ipaddress.IPv4Network("10.10.0.0/24")).metallb.range) == "10.10.0.200-10.10.0.250"


def test_range_is_not_checked_against_an_invalid_network():
    # settings.parse reports the network; the range's own syntax is still checked here.
    assert str(parse({"metallb": {"range": "10.0.0.200-10.0.0.210"}}, subnet=None).metallb.range) == (
        "10.0.0.200-10.0.0.210"
    )
    assert parse(subnet=None).metallb.range is None


@pytest.mark.parametrize(
    ("raw", "key", "says"),
    [
        pytest.param("yes", "addons", "must be an object", id="not-an-object"),
        pytest.param({"calico": {}}, "addons.calico", "allowed keys: cilium, metallb, ingressNginx", id="unknown-addon"),
        pytest.param({"ingressnginx": {}}, "addons.ingressnginx", "did you mean 'ingressNginx'", id="misspelt"),
        pytest.param({"cilium": {"enable": False}}, "addons.cilium.enable", "did you mean 'enabled'", id="unknown-key"),
        pytest.param({"cilium": {"enabled": "no"}}, "addons.cilium.enabled", "true or false", id="enabled-not-bool"),
        pytest.param({"cilium": {"version": "v1.20.0"}}, "addons.cilium.version", "without the leading 'v'", id="v-prefix"),
        pytest.param({"cilium": {"version": "~1.20"}}, "addons.cilium.version", "exact chart version", id="range"),
        pytest.param({"metallb": {"version": 0.16}}, "addons.metallb.version", "exact chart version", id="number"),
        pytest.param(
            {"metallb": {"repository": "metallb.github.io/metallb"}},
            "addons.metallb.repository",
            "Helm repository URL",
            id="repository-without-scheme",
        ),
        pytest.param({"cilium": {"hubble": 1}}, "addons.cilium.hubble", "true or false", id="hubble-not-bool"),
        pytest.param(
            {"metallb": {"range": "172.18.255.200-172.18.255.250"}},
            "addons.metallb.range",
            "not inside the kind network 172.30.0.0/16",
            id="range-outside-subnet",
        ),
        pytest.param(
            {"metallb": {"range": "172.30.0.2-172.30.0.50"}},
            "addons.metallb.range",
            "where Docker puts the gateway",
            id="range-over-nodes",
        ),
        pytest.param({"metallb": {"range": "lots"}}, "addons.metallb.range", "'first-last' or a CIDR", id="range-text"),
        pytest.param({"metallb": {"range": 200}}, "addons.metallb.range", "'first-last' or a CIDR", id="range-number"),
        pytest.param({"metallb": {"frr": "bgp"}}, "addons.metallb.frr", "true or false", id="frr-not-bool"),
        pytest.param(
            {"ingressNginx": {"values": ["x"]}}, "addons.ingressNginx.values", "object of Helm values", id="values-list"
        ),
        pytest.param(
            {"cilium": {"values": {"kubeProxyReplacement": "strict"}}},
            "addons.cilium.values.kubeProxyReplacement",
            "must stay true",
            id="kpr-strict",
        ),
        pytest.param(
            {"cilium": {"values": {"hostServices": {"enabled": False}}}},
            "addons.cilium.values.hostServices",
            "removed in Cilium 1.16",
            id="host-services",
        ),
        pytest.param(
            {"metallb": {"values": {"configInline": {}}}},
            "addons.metallb.values.configInline",
            "set addons.metallb.range",
            id="config-inline",
        ),
    ],
)
def test_invalid_value_names_its_key_and_the_fix(raw, key, says):
    (problem,) = problems_of(raw)
    assert problem.startswith(f"kind-registry-cache:{key}: "), problem
    assert says in problem, problem


def test_every_problem_is_reported_at_once():
    problems = problems_of(
        {
            "cilium": {"version": "latest", "values": {"nodePort": {"enabled": True}}},
            "metallb": {"range": "10.0.0.1-10.0.0.9"},
            "ingressNginx": {"enabled": "maybe"},
        }
    )
    keys = [p.split(": ", 1)[0].removeprefix("kind-registry-cache:") for p in problems]
    assert keys == [
        "addons.cilium.version",
        "addons.cilium.values.nodePort.enabled",
        "addons.metallb.range",
        "addons.ingressNginx.enabled",
    ]


def test_error_message_says_how_to_fix():
    with pytest.raises(SettingsError) as info:
        parse({"cilium": {"enabled": "no"}})
    assert "pulumi config set --path kind-registry-cache:<key>" in str(info.value)
