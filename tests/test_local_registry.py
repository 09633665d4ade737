"""The whole program under Pulumi mocks with the local registry: its container, volume, hosts.toml entry, the
KEP-1755 ConfigMap, the refusals in preview, another stack's registry, and the setting off."""

from __future__ import annotations

import sys
import tempfile
import tomllib
from pathlib import Path

import pulumi
import pytest
import yaml

from krc.render import localregistry as render
from harness import HEALTHY_PREFLIGHT, Recording, run_program, written_certs

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/remoteImage:RemoteImage"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
OFF = {"enabled": False}

#: The dev stack's registry as the preflight of another stack on the same engine sees it.
DEV_REGISTRY = "local_registry=kcr-dev-local-registry|running|kind-registry-cache/dev|5001|a1b2c3|kind"
DEV_PUBLISHES = "published=kcr-dev-local-registry|kind-registry-cache/dev|local-registry|127.0.0.1:5001->5000/tcp"


@pytest.fixture(scope="module")
def dev() -> Recording:
    return run_program("dev")


@pytest.fixture(scope="module")
def off() -> Recording:
    return run_program("dev", overrides={"localRegistry": OFF})


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def labels(resource) -> dict[str, str]:
    return {item["label"]: item["value"] for item in resource.inputs["labels"]}


def certs(rec: Recording) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as folder:
        return written_certs(rec, Path(folder) / "certs.d")


def hosting(rec: Recording) -> dict:
    (configmap,) = rec.of_type(CONFIGMAP)
    return configmap


# --- the registry itself --------------------------------------------------------------------------------


def test_registry_container_is_plain_registry_on_the_kind_network_published_on_loopback(dev):
    container = dev.named("local-registry-container")
    assert container.inputs["name"] == "kcr-dev-local-registry"
    env = dict(e.split("=", 1) for e in container.inputs["envs"])
    assert not [key for key in env if key.startswith("REGISTRY_PROXY")], "plain mode: nothing from upstream"
    assert env["REGISTRY_HTTP_ADDR"] == ":5000"
    assert "entrypoints" not in container.inputs, "the image's own entrypoint: no upstream to probe"
    assert container.inputs["networksAdvanced"] == [{"name": "kind", "aliases": ["kcr-dev-local-registry"]}]
    assert container.inputs["ports"] == [{"internal": 5000, "external": 5001, "ip": "127.0.0.1"}]
    assert container.inputs["restart"] == "unless-stopped"
    assert container.inputs["healthcheck"]["tests"][-1] == "http://127.0.0.1:5001/debug/health"


def test_registry_runs_the_caches_image_pulled_once(dev):
    (image,) = dev.of_type(IMAGE)
    assert image.inputs == {"name": "registry:3", "keepLocally": True}
    assert image.urn in dev.named("local-registry-container").dependencies


def test_without_local_caches_the_registry_pulls_and_keeps_the_image_itself():
    shared = {host: {"shared": "http://team.example:5000"} for host in ("docker.io", "quay.io", "ghcr.io", "registry.k8s.io", "gcr.io", "k8s.gcr.io")}
    rec = run_program("dev", overrides={"cache": {"mirrors": shared, "image": "mirror.example/registry:3.1.1"}})
    (image,) = rec.of_type(IMAGE)
    assert image.name == "local-registry-image" and urn_name(image.parent) == "local-registry"
    assert image.inputs == {"name": "mirror.example/registry:3.1.1", "keepLocally": True}


def test_registry_volume_is_kept_on_destroy_and_mounted(dev):
    volume = dev.named("local-registry-volume")
    assert volume.inputs["name"] == "kcr-dev-local-registry"
    assert volume.retain_on_delete
    assert dev.named("local-registry-container").inputs["volumes"] == [
        {"volumeName": "kcr-dev-local-registry", "containerPath": "/var/lib/registry"}
    ]
    assert volume.urn in dev.named("local-registry-container").dependencies


def test_container_and_volume_are_labelled_with_the_owner_like_the_caches(dev):
    owner = {"kind-registry-cache.stack": "kind-registry-cache/dev", "kind-registry-cache.role": "local-registry"}
    assert labels(dev.named("local-registry-volume")) == owner
    container = labels(dev.named("local-registry-container"))
    assert {k: container[k] for k in owner} == owner
    assert container["kind-registry-cache.port"] == "5001"
    assert container["kind-registry-cache.generation"]


def test_a_replacement_removes_the_old_container_first(dev):
    # Its name is fixed: the new one could not be created beside the old.
    assert dev.named("local-registry-container").delete_before_replace


def test_a_component_of_its_own_on_the_explicit_engine(dev):
    component = dev.named("local-registry")
    assert component.type == "kind-registry-cache:index:LocalRegistry"
    (provider,) = dev.of_type("pulumi:providers:docker")
    for name in ("local-registry-container", "local-registry-volume"):
        assert urn_name(dev.named(name).parent) == "local-registry"
        assert dev.named(name).provider.startswith(provider.urn)
    assert dev.named("network-network").urn in dev.named("local-registry-container").dependencies


# --- the nodes pull localhost:<port> from it ---------------------------------------------------------------


def test_hosts_toml_sends_localhost_port_to_the_container(dev):
    written = certs(dev)
    assert tomllib.loads(written["localhost:5001/hosts.toml"]) == {"server": "http://kcr-dev-local-registry:5000"}
    assert "remove_host localhost:5001\n" in dev.named("kind-certs").inputs["delete"]


def test_another_port_moves_everything_to_it():
    rec = run_program("dev", overrides={"localRegistry": {"port": 5055}})
    assert rec.named("local-registry-container").inputs["ports"][0]["external"] == 5055
    assert "localhost:5055/hosts.toml" in certs(rec) and "localhost:5001/hosts.toml" not in certs(rec)
    assert yaml.safe_load(hosting(rec).inputs["data"]["localRegistryHosting.v1"])["host"] == "localhost:5055"
    assert rec.outputs["localRegistry"]["pushUrl"] == "localhost:5055"


def test_changing_the_registry_keeps_the_cluster(dev, off):
    # hosts.toml files are rewritten in place (containerd re-reads them on every pull): another port, or the
    # registry on or off, recreates no cluster.
    moved = run_program("dev", overrides={"localRegistry": {"port": 5055}})
    for rec in (moved, off):
        assert rec.named("kind-cluster").inputs["stdin"] == dev.named("kind-cluster").inputs["stdin"]
        assert rec.named("kind-certs").inputs["create"] != dev.named("kind-certs").inputs["create"]


# --- discovery: the KEP-1755 ConfigMap ------------------------------------------------------------------


def test_configmap_is_keps_local_registry_hosting_in_kube_public(dev):
    configmap = hosting(dev)
    assert configmap.name == "addons-local-registry-hosting"
    assert configmap.inputs["metadata"] == {"name": "local-registry-hosting", "namespace": "kube-public"}
    assert list(configmap.inputs["data"]) == ["localRegistryHosting.v1"]
    assert yaml.safe_load(configmap.inputs["data"]["localRegistryHosting.v1"]) == {
        "host": "localhost:5001",
        "hostFromContainerRuntime": "localhost:5001",
        "hostFromClusterNetwork": "kcr-dev-local-registry:5000",
        "help": "https://github.com/kind-registry-cache/kind-registry-cache/blob/main/docs/local-registry.md",
    }


def test_configmap_needs_only_the_api_server(dev):
    configmap = hosting(dev)
    (provider,) = dev.of_type("pulumi:providers:kubernetes")
    assert configmap.provider.startswith(provider.urn)
    assert urn_name(configmap.deleted_with) == "kind-cluster"
    # Not after Cilium or the warm-up: the API server answers before any CNI runs.
    assert {urn_name(u) for u in configmap.dependencies} <= {"addons-provider"}


def test_configmap_without_any_add_on_gets_the_provider_alone():
    rec = run_program("dev", overrides={"addons": {"cilium": OFF, "metallb": OFF, "ingressNginx": OFF}})
    kubernetes = [r for r in rec.resources if r.type.startswith("kubernetes:")]
    assert [r.type for r in kubernetes] == [CONFIGMAP]
    assert len(rec.of_type("pulumi:providers:kubernetes")) == 1


def test_stack_output(dev):
    assert dev.outputs["localRegistry"] == {
        "pushUrl": "localhost:5001",
        "hostPort": 5001,
        "container": "kcr-dev-local-registry",
        "hostFromClusterNetwork": "kcr-dev-local-registry:5000",
        "volume": "kcr-dev-local-registry",
    }


# --- the preflight ---------------------------------------------------------------------------------------


def test_preflight_asks_about_the_registrys_name_and_port(dev):
    environment = dev.invokes[0][1]["environment"]
    assert environment["KRC_LOCAL_REGISTRY_NAME"] == "kcr-dev-local-registry"
    assert environment["KRC_LOCAL_REGISTRY_PORT"] == "5001"
    assert environment["KRC_PYTHON"] == sys.executable


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        pytest.param(
            ["published=kind-registry|||0.0.0.0:5001->5000/tcp", "port_probe=listening 127.0.0.1"],
            "kind-registry-cache:localRegistry.port: 5001 on 127.0.0.1 is already published by container 'kind-registry'",
            id="kinds-recipe-registry",
        ),
        pytest.param(
            ["port_probe=listening 127.0.0.1", "port_process=python3 (pid 4242)"],
            "kind-registry-cache:localRegistry.port: 5001 is in use on this machine (127.0.0.1) by python3 (pid 4242)",
            id="a-process",
        ),
        pytest.param(
            ["registry_container=running||"],
            "kind-registry-cache:localRegistry.name: a container named 'kcr-dev-local-registry' already exists",
            id="a-container-of-that-name",
        ),
    ],
)
def test_a_busy_port_or_name_is_refused_before_anything_is_created(lines, says):
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", preflight="\n".join([HEALTHY_PREFLIGHT, *lines]))
    assert says in str(info.value)


def test_a_busy_port_is_no_problem_with_the_registry_off():
    rec = run_program("dev", overrides={"localRegistry": OFF},
                      preflight="\n".join([HEALTHY_PREFLIGHT, "published=kind-registry|||0.0.0.0:5001->5000/tcp"]))
    assert rec.outputs.get("localRegistry") is None


def test_a_process_here_is_no_refusal_for_a_remote_engine():
    # A remote engine takes no add-ons (issue #17: its API server is out of reach), nor the hosting ConfigMap.
    no_addons = {"cilium": {"enabled": False}, "metallb": {"enabled": False}, "ingressNginx": {"enabled": False}}
    rec = run_program("dev", overrides={"docker": {"host": "ssh://dev@buildbox"}, "addons": no_addons},
                      preflight="\n".join([HEALTHY_PREFLIGHT, "port_probe=listening 127.0.0.1", "port_process=ssh (pid 3)"]))
    assert rec.named("local-registry-container").inputs["ports"][0]["external"] == 5001
    assert rec.of_type("pulumi:providers:kubernetes") == []


# --- two stacks on one machine ------------------------------------------------------------------------------


def ci(local_registry: dict | None = None, **more) -> Recording:
    overrides = {
        "cluster": {"portMappings": [{"containerPort": 80, "hostPort": 8080}]},
        "addons": {"metallb": {"range": "172.30.254.200-172.30.254.250"}},
    }
    if local_registry is not None:
        overrides["localRegistry"] = local_registry
    return run_program("ci", overrides=overrides, use_stack_file=False, **more)


def test_a_second_stack_on_the_first_ones_port_is_refused_with_both_ways_out():
    with pytest.raises(pulumi.RunError) as info:
        ci(preflight="\n".join([HEALTHY_PREFLIGHT, DEV_REGISTRY, DEV_PUBLISHES, "port_probe=listening 127.0.0.1"]))
    message = str(info.value)
    assert "5001 is the port of stack kind-registry-cache/dev's local registry (kcr-dev-local-registry, running)" in message
    assert "localRegistry.useStack dev" in message and "localRegistry.port 5002" in message


def test_a_second_stack_on_its_own_port_gets_a_registry_of_its_own(dev):
    rec = ci({"port": 5002}, preflight="\n".join([HEALTHY_PREFLIGHT, DEV_REGISTRY, DEV_PUBLISHES, "port_probe=free"]))
    ours, theirs = dev.named("local-registry-container").inputs, rec.named("local-registry-container").inputs
    assert theirs["name"] == "kcr-ci-local-registry" != ours["name"]
    assert rec.named("local-registry-volume").inputs["name"] == "kcr-ci-local-registry"
    assert theirs["ports"][0]["external"] == 5002
    assert labels(rec.named("local-registry-volume"))["kind-registry-cache.stack"] == "kind-registry-cache/ci"


def test_a_second_stack_sharing_the_first_ones_registry_creates_none_of_it():
    rec = ci({"useStack": "dev"}, preflight="\n".join([HEALTHY_PREFLIGHT, DEV_REGISTRY.replace("|5001|", "|5005|")]))
    assert [r for r in rec.resources if r.name.startswith("local-registry")] == []
    assert tomllib.loads(certs(rec)["localhost:5005/hosts.toml"]) == {"server": "http://kcr-dev-local-registry:5000"}
    assert yaml.safe_load(hosting(rec).inputs["data"]["localRegistryHosting.v1"])["hostFromClusterNetwork"] == (
        "kcr-dev-local-registry:5000"
    )
    assert rec.outputs["localRegistry"]["sharedFrom"] == "kind-registry-cache/dev"
    assert "volume" not in rec.outputs["localRegistry"]
    # Its preflight asks about no name or port of its own.
    assert "KRC_LOCAL_REGISTRY_PORT" not in rec.invokes[0][1]["environment"]


def test_sharing_a_registry_that_is_not_there_is_refused():
    with pytest.raises(pulumi.RunError) as info:
        ci({"useStack": "dev"})
    assert "kind-registry-cache:localRegistry.useStack: stack kind-registry-cache/dev has no local registry" in str(info.value)


# --- invalid settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        pytest.param({"localRegistry": {"port": 80}}, "localRegistry.port: must be an integer from 1024 to 65535", id="low"),
        pytest.param({"localRegistry": {"port": 5101}, "cache": {"hostPortStart": 5100}}, "also a cache's published port", id="cache-port"),
        pytest.param({"localRegistry": {"useStack": "dev"}}, "localRegistry.useStack: names this stack", id="itself"),
        pytest.param({"localRegistry": {"colour": "red"}}, "localRegistry.colour: unknown key", id="unknown"),
    ],
)
def test_invalid_settings_fail_before_any_resource(overrides, says):
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides=overrides)
    assert says in str(info.value)


# --- off ----------------------------------------------------------------------------------------------------


def test_off_creates_none_of_it(off):
    assert [r for r in off.resources if "local-registry" in r.name] == []
    assert off.of_type(CONFIGMAP) == []
    assert not [path for path in certs(off) if path.startswith("localhost:")]
    assert off.outputs.get("localRegistry") is None
    assert "KRC_LOCAL_REGISTRY_PORT" not in off.invokes[0][1]["environment"]
    # The caches are as they were.
    assert {r.inputs["name"] for r in off.of_type(CONTAINER)} == {
        r.inputs["name"] for r in run_program("dev").of_type(CONTAINER)
    } - {"kcr-dev-local-registry"}

