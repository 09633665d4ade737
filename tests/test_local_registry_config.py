"""``localRegistry``: the setting's model and its checks against the rest of the configuration; the hosts.toml and
KEP-1755 data rendered from it (pure: no Pulumi, no Docker)."""

from __future__ import annotations

import tomllib

import pytest
import yaml

from krc import config as settings_module
from krc.config import SettingsError, localregistry
from krc.render import localregistry as render
from krc.render import mirrors

COMMON = {"project": "kind-registry-cache", "stack": "dev", "home": "/home/u"}


def parse(raw, stack="dev", **rest):
    """``localRegistry`` parsed against a stack configured by ``rest`` (cache, cluster, ...)."""
    settings = settings_module.parse(**{**COMMON, "stack": stack}, **rest)
    return localregistry.parse(raw, stack=stack, used=localregistry.ports_in_use(settings.cache, settings.cluster))


def problems(raw, **kwargs) -> list[str]:
    with pytest.raises(SettingsError) as info:
        parse(raw, **kwargs)
    return info.value.problems


# --- the model --------------------------------------------------------------------------------------


def test_on_by_default_on_5001_named_after_the_stack():
    assert parse(None) == localregistry.LocalRegistrySettings(enabled=True, port=5001, name="kcr-dev-local-registry")
    assert parse(None).own


def test_values_as_pulumi_config_set_stores_them():
    assert parse({"enabled": "false"}) == localregistry.LocalRegistrySettings(enabled=False, port=5001)
    assert parse({"port": "5002", "name": "images"}).port == 5002


def test_off_checks_nothing_else():
    # An off registry takes no port: a cache published on 5001 is fine then.
    assert not parse({"enabled": False}, cache={"hostPortStart": 5000}).enabled


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        pytest.param({"port": 80}, "localRegistry.port: must be an integer from 1024 to 65535; got 80", id="low-port"),
        pytest.param({"port": 65536}, "localRegistry.port: must be an integer from 1024 to 65535", id="high-port"),
        pytest.param({"port": True}, "localRegistry.port: must be an integer", id="bool-port"),
        pytest.param({"enabled": "yes"}, "localRegistry.enabled: must be true or false; got 'yes'", id="yes"),
        pytest.param({"name": "My_Registry"}, "localRegistry.name: must be a DNS label", id="name-case"),
        pytest.param({"name": "a" * 64}, "localRegistry.name: must be a DNS label", id="name-long"),
        pytest.param({"nme": "x"}, "localRegistry.nme: unknown key (did you mean 'name'?)", id="typo"),
        pytest.param({"useStack": "a b"}, "localRegistry.useStack: must be the name of another stack", id="bad-stack"),
        pytest.param("yes", "localRegistry: must be an object with keys enabled, port, name, useStack", id="not-object"),
    ],
)
def test_invalid_values_name_the_key(raw, says):
    assert any(says in p for p in problems(raw)), problems(raw)


def alone(raw, stack: str) -> list[str]:
    """Problems of ``localRegistry`` alone (the stack's name also fails ``cluster.name`` in a whole parse)."""
    with pytest.raises(SettingsError) as info:
        localregistry.parse(raw, stack=stack)
    return info.value.problems


def test_a_stack_name_that_is_no_dns_label_asks_for_a_name():
    (found,) = alone(None, "Team_Dev")
    assert "localRegistry.name: the default 'kcr-Team_Dev-local-registry' (from the stack name) is not a DNS label" in found
    assert "localRegistry.name kcr-team-dev-local-registry" in found
    assert localregistry.parse({"name": "team-images"}, stack="Team_Dev").name == "team-images"


def test_a_long_stack_name_gets_a_suggestion_that_fits():
    (found,) = alone(None, "x" * 60)
    suggestion = found.split("localRegistry.name ")[-1].rstrip("`")
    assert localregistry.DNS_LABEL.fullmatch(suggestion), suggestion


# --- useStack -------------------------------------------------------------------------------------------


def test_use_stack_runs_none_here():
    found = parse({"useStack": "dev"}, stack="ci")
    assert (found.enabled, found.own, found.use_stack, found.name) == (True, False, "dev", "")


def test_use_stack_is_not_this_stack():
    assert problems({"useStack": "dev"}) == [
        "kind-registry-cache:localRegistry.useStack: names this stack ('dev'); remove it to run this stack's own local registry"
    ]


def test_use_stack_leaves_port_and_name_to_the_other_stack():
    found = problems({"useStack": "dev", "port": 5002, "name": "x"}, stack="ci")
    assert [p.split(": ")[0] for p in found] == [
        "kind-registry-cache:localRegistry.name", "kind-registry-cache:localRegistry.port"
    ]
    assert all("remove localRegistry." in p for p in found)


def test_pulumi_yaml_default_with_use_stack_replaced_is_accepted():
    # Pulumi passes a stack's own value instead of the project default: {useStack} alone sets no port.
    assert parse({"useStack": "dev"}, stack="ci").use_stack == "dev"


# --- against the rest of the configuration ---------------------------------------------------------


def test_port_inside_the_caches_published_range_is_refused():
    (found,) = problems(None, cache={"hostPortStart": 5000})
    assert found.startswith("kind-registry-cache:localRegistry.port: 5001 is also a cache's published port")
    assert "5000-5005" in found
    assert parse(None, cache={"hostPortStart": 5002}).port == 5001


@pytest.mark.parametrize(
    ("mapping", "clashes"),
    [
        pytest.param({"containerPort": 80, "hostPort": 5001}, True, id="loopback"),
        pytest.param({"containerPort": 80, "hostPort": 5001, "listenAddress": "0.0.0.0"}, True, id="wildcard"),
        pytest.param({"containerPort": 80, "hostPort": 5001, "listenAddress": "::"}, True, id="v6-wildcard"),
        pytest.param({"containerPort": 80, "hostPort": 5001, "listenAddress": "192.168.1.5"}, False, id="other-address"),
        pytest.param({"containerPort": 80, "hostPort": 5001, "protocol": "UDP"}, False, id="udp"),
    ],
)
def test_port_of_a_cluster_port_mapping(mapping, clashes):
    cluster = {"portMappings": [{"containerPort": 443}, mapping]}
    if clashes:
        (found,) = problems(None, cluster=cluster)
        assert "localRegistry.port: 5001 is also cluster.portMappings[1]'s host port" in found
    else:
        assert parse(None, cluster=cluster).port == 5001


def test_a_mirror_named_like_the_registry_is_refused():
    (found,) = problems(None, cache={"mirrors": {"localhost:5001": "http://elsewhere:5000"}})
    assert "cache.mirrors has an upstream named localhost:5001" in found


def test_a_name_taken_by_a_cache_container_is_refused():
    (found,) = problems({"name": "kcr-dev-quay-io"})
    assert "localRegistry.name: 'kcr-dev-quay-io' is also a cache container's name" in found


def test_invalid_rest_of_the_configuration_skips_the_cross_checks():
    assert localregistry.parse(None, stack="dev", used=None).port == 5001


# --- what it renders ---------------------------------------------------------------------------------


def test_hosts_toml_serves_localhost_port_from_the_container_alone():
    files = mirrors.hosts_files([mirrors.local_registry_entry(5001, "kcr-dev-local-registry")])
    assert list(files) == ["localhost:5001/hosts.toml"]
    # The container is the server: no host entries, so no fallback to the node's own localhost.
    assert tomllib.loads(files["localhost:5001/hosts.toml"]) == {"server": "http://kcr-dev-local-registry:5000"}


def test_kep_1755_data_is_yaml_with_the_keps_field_names():
    data = render.hosting(5001, "kcr-dev-local-registry")
    assert list(data) == ["localRegistryHosting.v1"]
    assert yaml.safe_load(data["localRegistryHosting.v1"]) == {
        "host": "localhost:5001",
        "hostFromContainerRuntime": "localhost:5001",
        "hostFromClusterNetwork": "kcr-dev-local-registry:5000",
        "help": render.HELP_URL,
    }


def test_registry_environment_is_plain_mode():
    env = render.environment()
    assert not [key for key in env if key.startswith("REGISTRY_PROXY")]
    assert env["REGISTRY_HTTP_ADDR"] == ":5000"
    assert env["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] == "/var/lib/registry"
