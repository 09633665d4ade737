"""Add-on generators: chart values, MetalLB's pool and objects, the ingress URL and the values merge."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krc.config import PortMapping
from krc.render import addon_values
from krc.render.addon_values import PoolRange
from krc.render.kindconfig import KindOptions

CERTS = "/home/dev/.kind-registry-cache/dev/certs.d"
IP = ipaddress.IPv4Address
NET = ipaddress.IPv4Network


def _subnets(block: str) -> st.SearchStrategy[ipaddress.IPv4Network]:
    """Subnets of ``block`` from its own size down to /24 (what the settings accept)."""
    parent = NET(block)
    return st.integers(parent.prefixlen, 24).flatmap(
        lambda prefix: st.integers(0, 2 ** (prefix - parent.prefixlen) - 1).map(
            lambda index: NET((int(parent.network_address) + (index << (32 - prefix)), prefix))
        )
    )


#: Every private subnet the settings accept.
private_subnets = st.one_of(_subnets("10.0.0.0/8"), _subnets("172.16.0.0/12"), _subnets("192.168.0.0/16"))


def _pool(text: str) -> PoolRange:
    return addon_values.parse_pool_range(text)


# --- the pool range -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subnet", "expected"),
    [
        pytest.param("172.30.0.0/16", "172.30.255.200-172.30.255.250", id="default-16"),
        pytest.param("172.18.0.0/16", "172.18.255.200-172.18.255.250", id="docker-kind-16"),
        pytest.param("172.31.0.0/24", "172.31.0.200-172.31.0.250", id="24"),
        pytest.param("172.30.16.0/20", "172.30.31.200-172.30.31.250", id="20-last-24"),
        pytest.param("10.0.0.0/8", "10.255.255.200-10.255.255.250", id="8"),
        pytest.param("192.168.64.0/18", "192.168.127.200-192.168.127.250", id="18"),
    ],
)
def test_default_pool_range(subnet, expected):
    assert str(addon_values.default_pool_range(NET(subnet))) == expected


@given(private_subnets)
def test_default_pool_is_valid_in_every_accepted_subnet(subnet):
    pool = addon_values.default_pool_range(subnet)
    assert addon_values.pool_range_problem(subnet, pool) is None, f"{pool} in {subnet}"
    assert pool.size == 51


@given(private_subnets)
def test_default_pool_sits_in_the_subnets_last_24_at_200_to_250(subnet):
    pool = addon_values.default_pool_range(subnet)
    last_24 = NET(f"{subnet.broadcast_address}/24", strict=False)
    assert (int(pool.start) - int(last_24.network_address), int(pool.end) - int(last_24.network_address)) == (200, 250)


@given(private_subnets, st.data())
def test_any_range_above_dockers_addresses_and_below_broadcast_is_accepted(subnet, data):
    low = int(subnet.network_address) + addon_values.DOCKER_LOW_ADDRESSES
    high = int(subnet.broadcast_address) - 1
    start = data.draw(st.integers(low, high))
    end = data.draw(st.integers(start, high))
    assert addon_values.pool_range_problem(subnet, PoolRange(IP(start), IP(end))) is None


@given(private_subnets, st.data())
def test_a_range_reaching_the_gateway_or_dockers_first_addresses_is_refused(subnet, data):
    start = data.draw(st.integers(int(subnet.network_address), int(subnet.network_address) + 127))
    end = data.draw(st.integers(start, int(subnet.broadcast_address) - 1))
    problem = addon_values.pool_range_problem(subnet, PoolRange(IP(start), IP(end)))
    assert problem is not None and "Docker" in problem


@given(private_subnets, st.data())
def test_a_range_leaving_the_subnet_is_refused(subnet, data):
    outside = data.draw(
        st.integers(0, 2**32 - 1).filter(lambda n: not int(subnet.network_address) <= n <= int(subnet.broadcast_address))
    )
    inside = int(subnet.broadcast_address) - 1
    pool = PoolRange(IP(min(outside, inside)), IP(max(outside, inside)))
    problem = addon_values.pool_range_problem(subnet, pool)
    assert problem is not None and "not inside the kind network" in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("172.30.255.200-172.30.255.250", ("172.30.255.200", "172.30.255.250"), id="range"),
        pytest.param("172.30.255.200 - 172.30.255.250", ("172.30.255.200", "172.30.255.250"), id="spaces"),
        pytest.param("172.30.255.7-172.30.255.7", ("172.30.255.7", "172.30.255.7"), id="one-address"),
        pytest.param("172.30.255.192/27", ("172.30.255.192", "172.30.255.223"), id="cidr"),
    ],
)
def test_parse_pool_range(text, expected):
    pool = addon_values.parse_pool_range(text)
    assert (str(pool.start), str(pool.end)) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("172.30.255.250-172.30.255.200", id="backwards"),
        pytest.param("banana", id="not-an-address"),
        pytest.param("172.30.255.201/27", id="cidr-host-bits"),
        pytest.param("fd00::1-fd00::9", id="ipv6"),
        pytest.param("172.30.255.200-", id="open-ended"),
    ],
)
def test_parse_pool_range_refuses(text):
    with pytest.raises(ValueError):
        addon_values.parse_pool_range(text)


@pytest.mark.parametrize(
    ("pool", "says"),
    [
        pytest.param("172.30.255.200-172.30.255.250", None, id="default"),
        pytest.param("172.30.0.128-172.30.0.140", None, id="just-above-docker"),
        pytest.param("172.31.255.200-172.31.255.250", "not inside the kind network 172.30.0.0/16", id="other-subnet"),
        pytest.param("172.30.255.200-172.31.0.10", "not inside", id="runs-out"),
        pytest.param("172.30.255.200-172.30.255.255", "broadcast address 172.30.255.255", id="broadcast"),
        pytest.param("172.30.0.1-172.30.0.20", "172.30.0.0-172.30.0.127, where Docker puts the gateway", id="gateway"),
        pytest.param("172.30.0.100-172.30.0.150", "start it above 172.30.0.127", id="nodes"),
    ],
)
def test_pool_range_problem(pool, says):
    problem = addon_values.pool_range_problem(NET("172.30.0.0/16"), _pool(pool))
    if says is None:
        assert problem is None
    else:
        assert problem is not None and says in problem


# --- kind options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cilium", "ingress", "expected"),
    [
        pytest.param(True, True, KindOptions(CERTS, True, "none", {"ingress-ready": "true"}), id="all"),
        pytest.param(True, False, KindOptions(CERTS, True, "none", {}), id="cilium-only"),
        pytest.param(False, True, KindOptions(CERTS, False, None, {"ingress-ready": "true"}), id="ingress-only"),
        pytest.param(False, False, KindOptions(CERTS), id="none-keeps-kindnet-and-kube-proxy"),
    ],
)
def test_kind_options(cilium, ingress, expected):
    assert addon_values.kind_options(CERTS, cilium=cilium, ingress=ingress) == expected


# --- chart values -------------------------------------------------------------------------------


def test_cilium_values_exact():
    assert addon_values.cilium_values("dev-control-plane", hubble=False) == {
        "kubeProxyReplacement": True,
        "k8sServiceHost": "dev-control-plane",
        "k8sServicePort": 6443,
        "ipam": {"mode": "kubernetes"},
        "image": {"pullPolicy": "IfNotPresent"},
        "operator": {"replicas": 1, "image": {"pullPolicy": "IfNotPresent"}},
        "envoy": {"image": {"pullPolicy": "IfNotPresent"}},
        "hubble": {"relay": {"enabled": False}},
    }


def test_cilium_hubble_turns_on_the_relay():
    values = addon_values.cilium_values("dev-external-load-balancer", hubble=True)
    assert values["hubble"] == {"relay": {"enabled": True, "image": {"pullPolicy": "IfNotPresent"}}}


@given(host=st.from_regex(r"[a-z0-9]{1,20}-(control-plane|external-load-balancer)", fullmatch=True), hubble=st.booleans())
def test_cilium_values_carry_no_2022_keys(host, hubble):
    values = addon_values.cilium_values(host, hubble=hubble)
    assert addon_values.stale_values(addon_values.CILIUM_CHART, values) == []
    assert not {"hostServices", "externalIPs", "hostPort", "nodePort"} & set(values)
    assert values["kubeProxyReplacement"] is True


@pytest.mark.parametrize(
    ("frr", "expected"),
    [
        pytest.param(
            False,
            {"frrk8s": {"enabled": False}, "speaker": {"frr": {"enabled": False}, "ignoreExcludeLB": True}},
            id="l2-only",
        ),
        pytest.param(
            True,
            {"frrk8s": {"enabled": True}, "speaker": {"frr": {"enabled": False}, "ignoreExcludeLB": True}},
            id="frr-k8s",
        ),
    ],
)
def test_metallb_values(frr, expected):
    assert addon_values.metallb_values(frr=frr) == expected


def test_ip_address_pool_exact():
    assert addon_values.ip_address_pool(_pool("172.30.255.200-172.30.255.250")) == {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": "kind", "namespace": "metallb-system"},
        "spec": {"addresses": ["172.30.255.200-172.30.255.250"]},
    }


def test_l2_advertisement_announces_the_pool():
    assert addon_values.l2_advertisement() == {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "L2Advertisement",
        "metadata": {"name": "kind", "namespace": "metallb-system"},
        "spec": {"ipAddressPools": ["kind"]},
    }


def test_ingress_nginx_values_exact():
    assert addon_values.ingress_nginx_values() == {
        "controller": {
            "hostPort": {"enabled": True, "ports": {"http": 80, "https": 443}},
            "nodeSelector": {"ingress-ready": "true"},
            "tolerations": [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "service": {"type": "NodePort"},
            "publishService": {"enabled": False},
            "extraArgs": {"publish-status-address": "localhost"},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "terminationGracePeriodSeconds": 0,
            "watchIngressWithoutClass": True,
        }
    }


def test_ingress_selects_the_node_kind_labels():
    selector = addon_values.ingress_nginx_values()["controller"]["nodeSelector"]
    labels = addon_values.kind_options(CERTS, cilium=False, ingress=True).first_node_labels
    assert selector.items() <= labels.items()


@pytest.mark.parametrize(
    ("mappings", "expected"),
    [
        pytest.param([PortMapping(80, 80), PortMapping(443, 443)], "http://127.0.0.1", id="default"),
        pytest.param([PortMapping(80, 8080)], "http://127.0.0.1:8080", id="other-host-port"),
        pytest.param([PortMapping(443, 8443)], "https://127.0.0.1:8443", id="https-only"),
        pytest.param([PortMapping(443, 443), PortMapping(80, 80)], "http://127.0.0.1", id="http-preferred"),
        pytest.param([PortMapping(80, 80, "0.0.0.0")], "http://127.0.0.1", id="all-interfaces"),
        pytest.param([PortMapping(80, 80, "192.168.1.5")], "http://192.168.1.5", id="lan-address"),
        pytest.param([PortMapping(80, 80, "::1")], "http://[::1]", id="ipv6"),
        pytest.param([PortMapping(80, 80, protocol="UDP")], None, id="udp-only"),
        pytest.param([PortMapping(8080, 80)], None, id="no-ingress-port"),
        pytest.param([], None, id="no-mappings"),
    ],
)
def test_ingress_url(mappings, expected):
    assert addon_values.ingress_url(mappings) == expected


# --- merging stack values over ours ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        pytest.param({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}, {"a": {"b": 1, "c": 3}}, id="objects-merge"),
        pytest.param({"a": [1, 2]}, {"a": [3]}, {"a": [3]}, id="lists-replace"),
        pytest.param({"a": {"b": 1}}, {"a": "x"}, {"a": "x"}, id="scalar-replaces-object"),
        pytest.param({"a": "x"}, {"a": {"b": 1}}, {"a": {"b": 1}}, id="object-replaces-scalar"),
        pytest.param({"a": 1, "b": 2}, {"a": None}, {"b": 2}, id="null-removes"),
        pytest.param({"a": 1}, {"b": {"c": None, "d": 1}}, {"a": 1, "b": {"d": 1}}, id="null-in-new-object-dropped"),
        pytest.param({"a": {"b": 1}}, {}, {"a": {"b": 1}}, id="nothing-to-merge"),
    ],
)
def test_merge_values(ours, theirs, expected):
    assert addon_values.merge_values(ours, theirs) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=10,
)
value_trees = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


def _without_nulls(tree):
    if isinstance(tree, dict):
        return {k: _without_nulls(v) for k, v in tree.items() if v is not None}
    return tree


@given(ours=value_trees, theirs=value_trees)
def test_merge_leaves_both_inputs_unchanged(ours, theirs):
    before = (repr(ours), repr(theirs))
    addon_values.merge_values(ours, theirs)
    assert (repr(ours), repr(theirs)) == before


@given(ours=value_trees, theirs=value_trees)
def test_every_stack_leaf_wins(ours, theirs):
    merged = addon_values.merge_values(ours, theirs)
    for key, value in theirs.items():
        if value is None:
            assert key not in merged
        elif not isinstance(value, dict):
            assert merged[key] == value


@given(ours=value_trees)
def test_merging_nothing_or_itself_changes_nothing(ours):
    assert addon_values.merge_values(ours, {}) == ours
    assert addon_values.merge_values(_without_nulls(ours), _without_nulls(ours)) == _without_nulls(ours)


# --- stale values from 2022 recipes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("chart", "values", "paths"),
    [
        pytest.param("cilium", {"kubeProxyReplacement": "strict"}, ["kubeProxyReplacement"], id="kpr-strict"),
        pytest.param("cilium", {"kubeProxyReplacement": False}, ["kubeProxyReplacement"], id="kpr-off"),
        pytest.param("cilium", {"kubeProxyReplacement": "true"}, [], id="kpr-text-true"),
        pytest.param("cilium", {"hostServices": {"enabled": False}}, ["hostServices"], id="host-services"),
        pytest.param(
            "cilium",
            {"externalIPs": {"enabled": True}, "hostPort": {"enabled": True}, "nodePort": {"enabled": True}},
            ["externalIPs.enabled", "hostPort.enabled", "nodePort.enabled"],
            id="2022-recipe",
        ),
        pytest.param("cilium", {"nodePort": {"range": "30000,32767"}}, [], id="node-port-range-still-exists"),
        pytest.param("cilium", {"hubble": {"ui": {"enabled": True}}}, [], id="current-keys"),
        pytest.param("metallb", {"configInline": {"address-pools": []}}, ["configInline"], id="config-inline"),
        pytest.param("metallb", {"speaker": {"logLevel": "debug"}}, [], id="metallb-current"),
        pytest.param("ingress-nginx", {"controller": {"replicaCount": 2}}, [], id="ingress"),
    ],
)
def test_stale_values(chart, values, paths):
    assert [path for path, _ in addon_values.stale_values(chart, values)] == paths
