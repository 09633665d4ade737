"""The whole program under Pulumi mocks: the resource graph for dev and other configurations."""

from __future__ import annotations

import re
import tomllib

import pulumi
import pytest
import yaml

from krc.config import certsdir
from krc import config as settings_module
from krc import preflight
from krc.render import kindconfig
from harness import HEALTHY_PREFLIGHT, Recording, run_program, written_certs

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
COMMAND = "command:local:Command"
IMAGE = "docker:index/remoteImage:RemoteImage"

CREDENTIALS = {"docker.io": {"username": "dev-bot", "password": "s3cret-token"}}


@pytest.fixture(scope="module")
def dev() -> Recording:
    return run_program("dev")


@pytest.fixture(scope="module")
def single() -> Recording:
    return run_program(
        "single", overrides={"cluster": {"controlPlanes": 1, "workers": 0}, "network": {"subnet": "172.31.0.0/24"}}
    )


@pytest.fixture(scope="module")
def custom() -> Recording:
    """A team registry as an extra upstream, Docker Hub with a login, published cache ports."""
    return run_program(
        "custom",
        overrides={
            "cache": {
                "mirrors": {"registry.example.com": "https://registry.example.com", "gcr.io": None},
                "hostPortStart": 5100,
                "ttl": "168h",
            },
            "credentials": CREDENTIALS,
        },
        secret_keys=("credentials",),
    )


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def cache_resources(rec: Recording, type_: str) -> list:
    """The caches' resources of ``type_`` (the local registry's are tested in test_local_registry.py)."""
    return [r for r in rec.of_type(type_) if urn_name(r.parent) == "cache"]


def kind_config(rec: Recording) -> dict:
    return yaml.safe_load(rec.named("kind-cluster").inputs["stdin"])


# --- dev: the seed topology -------------------------------------------------------------------


def test_dev_has_one_cache_container_and_kept_volume_per_default_upstream(dev):
    containers = {r.inputs["name"] for r in cache_resources(dev, CONTAINER)}
    volumes = {r.inputs["name"] for r in cache_resources(dev, VOLUME)}
    expected = {f"kcr-dev-{h.replace('.', '-')}" for h in settings_module.DEFAULT_MIRRORS}
    assert containers == expected
    assert volumes == expected


def test_dev_kind_config_has_three_control_planes_and_three_workers(dev):
    roles = [n["role"] for n in kind_config(dev)["nodes"]]
    assert roles == ["control-plane"] * 3 + ["worker"] * 3


def test_cache_volumes_survive_destroy(dev):
    for volume in dev.of_type(VOLUME):
        assert volume.retain_on_delete, f"{volume.name} must be retain_on_delete"


def test_nothing_else_is_retained_on_destroy(dev):
    retained = {r.name for r in dev.resources if r.retain_on_delete}
    assert retained == {r.name for r in dev.of_type(VOLUME)}


def test_network_has_kinds_options_and_the_configured_subnet(dev):
    (network,) = dev.of_type(NETWORK)
    assert network.inputs["name"] == "kind"
    assert network.inputs["driver"] == "bridge"
    assert network.inputs["options"] == {
        "com.docker.network.bridge.enable_ip_masquerade": "true",
        "com.docker.network.driver.mtu": "1500",
    }
    assert network.inputs["ipamConfigs"] == [{"subnet": "172.30.0.0/16", "gateway": "172.30.0.1"}]
    assert network.inputs["labels"] == [{"label": "kind-registry-cache.owner", "value": "kind-registry-cache/dev"}]


def test_cache_container_runs_the_registry_in_proxy_mode_on_the_network(dev):
    container = dev.named("cache-quay-io")
    env = dict(e.split("=", 1) for e in container.inputs["envs"])
    assert env["REGISTRY_PROXY_REMOTEURL"] == "https://quay.io"
    assert env["REGISTRY_PROXY_TTL"] == "0"
    assert env["REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED"] == "true"
    assert container.inputs["networksAdvanced"] == [{"name": "kind", "aliases": ["kcr-dev-quay-io"]}]
    assert container.inputs["volumes"] == [{"volumeName": "kcr-dev-quay-io", "containerPath": "/var/lib/registry"}]
    assert container.inputs["restart"] == "unless-stopped"
    assert container.inputs["healthcheck"]["tests"][-1] == "http://127.0.0.1:5001/debug/health"


def test_k8s_gcr_io_is_served_from_registry_k8s_io(dev):
    env = dict(e.split("=", 1) for e in dev.named("cache-k8s-gcr-io").inputs["envs"])
    assert env["REGISTRY_PROXY_REMOTEURL"] == "https://registry.k8s.io"


def test_caches_publish_nothing_by_default(dev):
    for container in cache_resources(dev, CONTAINER):
        assert container.inputs.get("ports", []) == [], container.name


def test_registry_image_is_pulled_once_and_kept(dev):
    (image,) = dev.of_type(IMAGE)
    assert image.inputs == {"name": "registry:3", "keepLocally": True}
    for container in dev.of_type(CONTAINER):
        assert image.urn in container.dependencies, container.name


def test_containers_wait_for_their_volume_and_the_network(dev):
    network = dev.named("network-network")
    for container in cache_resources(dev, CONTAINER):
        slug = container.name.removeprefix("cache-")
        assert dev.named(f"cache-{slug}-volume").urn in container.dependencies, container.name
        assert network.urn in container.dependencies, container.name


def test_children_are_parented_to_their_component(dev):
    parents = {r.name: urn_name(r.parent) for r in dev.resources}
    for r in dev.of_type(CONTAINER) + dev.of_type(VOLUME) + dev.of_type(IMAGE):
        assert parents[r.name] in ("cache", "local-registry"), r.name
        assert (parents[r.name] == "local-registry") == r.name.startswith("local-registry-"), r.name
    assert parents["network-network"] == "network"
    for name in ("kind-certs", "kind-cluster", "kind-kubeconfig"):
        assert parents[name] == "kind", name


def test_components_have_package_tokens(dev):
    tokens = {r.name: r.type for r in dev.resources if not r.custom and not r.type.startswith("pulumi:providers")}
    assert tokens == {
        "network": "kind-registry-cache:index:KindNetwork",
        "cache": "kind-registry-cache:index:RegistryCaches",
        "kind": "kind-registry-cache:index:KindCluster",
        "addons": "kind-registry-cache:index:ClusterAddons",
        "warmup": "kind-registry-cache:index:CacheWarmup",
        "cache-stats": "kind-registry-cache:index:CacheStats",
        "local-registry": "kind-registry-cache:index:LocalRegistry",
        "store": "kind-registry-cache:index:ArtifactStore",
    }


def test_docker_resources_use_the_explicit_engine_provider(dev):
    (provider,) = dev.of_type("pulumi:providers:docker")
    assert provider.inputs.get("host") == "unix:///var/run/docker.sock"
    for r in dev.resources:
        if r.type.startswith("docker:"):
            assert r.provider.startswith(provider.urn), r.name


def test_cluster_waits_for_caches_network_and_certs(dev):
    deps = {urn_name(u) for u in dev.named("kind-cluster").dependencies}
    assert {"kind-certs", "network-network"} <= deps
    assert {r.name for r in cache_resources(dev, CONTAINER)} <= deps


def test_cluster_is_replaced_delete_first_when_its_config_changes(dev):
    cluster = dev.named("kind-cluster")
    assert cluster.delete_before_replace
    assert {key.split("[")[0] for key in cluster.replace_on_changes} == {"stdin", "triggers"}
    # The engine and the network recreate it; so does a new generation (it was removed by hand).
    assert cluster.inputs["triggers"][:2] == ["kind", "unix:///var/run/docker.sock"]


def test_a_new_kind_path_alone_is_an_update_that_runs_nothing(dev):
    cluster = dev.named("kind-cluster")
    assert "environment" not in cluster.replace_on_changes
    assert cluster.inputs["update"] == ":"


def test_certs_update_in_place_so_mirror_changes_keep_the_cluster(dev):
    certs = dev.named("kind-certs")
    assert "create" not in certs.replace_on_changes
    # Replaced only with a new cluster generation, and then delete first: both write the same folder.
    assert certs.inputs["triggers"][1] == dev.named("kind-cluster").inputs["triggers"][2]
    assert certs.delete_before_replace


def test_cluster_commands(dev):
    cluster = dev.named("kind-cluster")
    assert '"$kind_bin" create cluster --name dev --config -' in cluster.inputs["create"]
    assert cluster.inputs["delete"] == kindconfig.delete_script("dev")  # by identity: tests/test_cluster_identity.py
    env = cluster.inputs["environment"]
    assert env["KIND_EXPERIMENTAL_DOCKER_NETWORK"] == "kind"
    assert env["DOCKER_HOST"] == "unix:///var/run/docker.sock"
    # The installed kind (v0.32.0 on PATH in the pretend machine) is used as it is: no download.
    assert env["KRC_KIND"] == "/usr/local/bin/kind"
    assert "KRC_KIND_SHA256" not in env
    assert env["KRC_CLUSTER_RECORD"].endswith("/.kind-registry-cache/dev/kind-dev.generation")
    assert env["KRC_CLUSTER_GENERATION"] == cluster.inputs["triggers"][2]
    assert dev.named("kind-kubeconfig").inputs["environment"]["KRC_KIND"] == "/usr/local/bin/kind"
    assert [r for r in dev.resources if r.name == "kind-binary"] == []


def test_kind_config_patch_is_unversioned_config_path_only(dev):
    (patch,) = kind_config(dev)["containerdConfigPatches"]
    assert tomllib.loads(patch) == {
        "plugins": {"io.containerd.grpc.v1.cri": {"registry": {"config_path": "/etc/containerd/certs.d"}}}
    }


def test_certs_command_writes_a_hosts_toml_per_mirror_into_the_mounted_folder(dev, tmp_path):
    script = dev.named("kind-certs").inputs["create"]
    mount = kind_config(dev)["nodes"][0]["extraMounts"][0]
    assert script.startswith(f"dir={mount['hostPath']}\n")
    written = written_certs(dev, tmp_path / "certs.d")
    assert set(written) == {f"{host}/hosts.toml" for host in settings_module.DEFAULT_MIRRORS} | {
        certsdir.OWNER_FILE, "localhost:5001/hosts.toml"
    }
    assert written[certsdir.OWNER_FILE] == "owner=kind-registry-cache/dev\n"
    assert 'server = "https://registry-1.docker.io"' in written["docker.io/hosts.toml"]
    assert '[host."http://kcr-dev-docker-io:5000"]' in written["docker.io/hosts.toml"]


def test_certs_delete_names_exactly_the_written_hosts_and_the_folder_is_a_trigger(dev):
    certs = dev.named("kind-certs")
    for host in settings_module.DEFAULT_MIRRORS:
        assert f"remove_host {host}\n" in certs.inputs["delete"]
    assert "rm -r" not in certs.inputs["delete"] and "rm -r" not in certs.inputs["create"]
    assert certs.inputs["update"] == certs.inputs["create"]
    assert certs.inputs["triggers"][0] == kind_config(dev)["nodes"][0]["extraMounts"][0]["hostPath"]


def test_kubeconfig_is_secret_and_never_logged(dev):
    kubeconfig = dev.named("kind-kubeconfig")
    assert kubeconfig.additional_secret_outputs == ["stdout"]
    assert kubeconfig.inputs["logging"] == "stderr"
    assert dev.named("kind-cluster").urn in kubeconfig.dependencies
    assert "kubeconfig" in dev.secret_outputs


def test_stack_outputs(dev):
    assert dev.outputs["clusterName"] == "dev"
    assert dev.outputs["networkSubnet"] == "172.30.0.0/16"
    assert dev.outputs["networkName"] == "kind"
    assert dev.outputs["mirrors"]["docker.io"] == {
        "container": "kcr-dev-docker-io",
        "url": "http://kcr-dev-docker-io:5000",
        "remote": "https://registry-1.docker.io",
        "volume": "kcr-dev-docker-io",
    }


def test_preflight_runs_first_as_a_read_only_invoke(dev):
    # Invokes run during preview too: only the preflight and the cache statistics, both read-only.
    assert [tok for tok, _ in dev.invokes] == ["command:local:run", "command:local:run"]
    assert dev.invoke_after[0] == 0, "the preflight runs before any resource is registered"
    script = dev.invokes[0][1]["command"]
    assert script == preflight.SCRIPT
    for verb in ("create", "rm", "run", "pull"):
        assert f"docker {verb}" not in script and f"kind {verb}" not in script


# --- single node --------------------------------------------------------------------------------


def test_single_node_cluster(single):
    nodes = kind_config(single)["nodes"]
    assert [n["role"] for n in nodes] == ["control-plane"]
    assert kind_config(single)["name"] == "single"


def test_single_uses_its_own_subnet_and_names(single):
    (network,) = single.of_type(NETWORK)
    assert network.inputs["ipamConfigs"] == [{"subnet": "172.31.0.0/24", "gateway": "172.31.0.1"}]
    assert {r.inputs["name"] for r in single.of_type(CONTAINER)} >= {"kcr-single-docker-io"}


# --- custom upstream with credentials -------------------------------------------------------------


def test_custom_mirror_set(custom):
    hosts = {r.name.removeprefix("cache-") for r in custom.of_type(CONTAINER)}
    assert "registry-example-com" in hosts
    assert "gcr-io" not in hosts
    assert set(custom.outputs["mirrors"]) == {
        "docker.io",
        "quay.io",
        "ghcr.io",
        "registry.k8s.io",
        "k8s.gcr.io",
        "registry.example.com",
    }


def test_credentials_reach_only_their_cache_container_and_stay_secret(custom):
    docker_io = custom.named("cache-docker-io")
    assert docker_io.secret_inputs == {"envs"}
    env = dict(e.split("=", 1) for e in docker_io.inputs["envs"])
    assert (env["REGISTRY_PROXY_USERNAME"], env["REGISTRY_PROXY_PASSWORD"]) == ("dev-bot", "s3cret-token")
    for r in custom.resources:
        if r.name != "cache-docker-io":
            assert "s3cret-token" not in repr(r.inputs), r.name
            # The only other secret input is the cluster's kubeconfig, handed to the Kubernetes provider
            # and, on stdin, to the wait for MetalLB's webhook.
            expected = {"kubeconfig"} if r.type == "pulumi:providers:kubernetes" else set()
            if r.name == "addons-metallb-webhook":
                expected = {"stdin"}
            assert r.secret_inputs == expected, r.name


def test_credentials_never_reach_stack_outputs(custom):
    assert "s3cret-token" not in repr(custom.outputs)
    assert "dev-bot" not in repr(custom.outputs)


def test_custom_ttl_and_published_ports(custom):
    env = dict(e.split("=", 1) for e in custom.named("cache-quay-io").inputs["envs"])
    assert env["REGISTRY_PROXY_TTL"] == "168h"
    ports = {r.name: r.inputs["ports"] for r in custom.of_type(CONTAINER)}
    assert ports["cache-docker-io"] == [{"internal": 5000, "external": 5100, "ip": "127.0.0.1", "protocol": "tcp"}] or ports[
        "cache-docker-io"
    ] == [{"internal": 5000, "external": 5100, "ip": "127.0.0.1"}]
    for name, published in ports.items():
        assert all(p["ip"] == "127.0.0.1" for p in published), name
    assert custom.outputs["mirrors"]["docker.io"]["hostPort"] == 5100


def test_extra_mirror_gets_a_hosts_toml(custom, tmp_path):
    written = written_certs(custom, tmp_path / "certs.d")
    assert "registry.example.com/hosts.toml" in written
    assert "gcr.io/hosts.toml" not in written


def test_mirror_change_leaves_the_kind_config_unchanged(dev):
    changed = run_program("dev", overrides={"cache": {"mirrors": {"registry.example.com": "https://registry.example.com"}}})
    assert changed.named("kind-cluster").inputs["stdin"] == dev.named("kind-cluster").inputs["stdin"]
    assert changed.named("kind-certs").inputs["create"] != dev.named("kind-certs").inputs["create"]


# --- errors before anything is created ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        pytest.param({"network": {"subnet": "banana"}}, "network.subnet", id="bad-subnet"),
        pytest.param({"cluster": {"controlPlanes": 0}}, "cluster.controlPlanes", id="zero-control-planes"),
        pytest.param({"cluster": {"workers": -1}}, "cluster.workers", id="negative-workers"),
        pytest.param({"cache": {"mirrors": {"quay.io": "quay.io"}}}, "cache.mirrors.quay.io", id="bad-remote"),
        pytest.param({"cluster": {"portMappings": [{"containerPort": 0}]}}, "containerPort", id="bad-port"),
        pytest.param({"cache": {"colour": "blue"}}, "cache.colour", id="unknown-key"),
    ],
)
def test_invalid_config_fails_before_any_resource(overrides, says):
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides=overrides)
    assert says in str(info.value)


def test_plain_text_credentials_are_refused():
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides={"credentials": CREDENTIALS})
    assert "--secret" in str(info.value)
    assert "s3cret-token" not in str(info.value)


# The message names the commands for the hosts configured, username and password both: typed with the real CLI
# (tests/engine/), the next run passes (before, it named docker.io's password only, whatever the host).
def test_plain_text_credentials_message_gives_every_command_for_the_configured_hosts():
    logins = {"quay.io": {"username": "bot", "password": "s3cret-token"}}
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides={"credentials": logins})
    commands = re.findall(r"`(pulumi config [^`]+)`", str(info.value))
    assert commands == [
        "pulumi config rm kind-registry-cache:credentials",
        "pulumi config set --secret --path 'kind-registry-cache:credentials[\"quay.io\"].username' <username>",
        "pulumi config set --secret --path 'kind-registry-cache:credentials[\"quay.io\"].password' <password>",
    ]


@pytest.mark.parametrize(
    ("preflight", "says"),
    [
        pytest.param("kind=kind v0.32.0\ndocker=unreachable\ndocker_error=Cannot connect", "start Docker", id="docker-down"),
        pytest.param(
            HEALTHY_PREFLIGHT + '\nnetwork={"Name":"kind","IPAM":{"Config":[{"Subnet":"172.18.0.0/16"}]}}',
            "docker network rm kind",
            id="foreign-network",
        ),
    ],
)
def test_missing_prerequisites_fail_with_the_fix(preflight, says):
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", preflight=preflight)
    assert says in str(info.value)


def test_existing_kind_network_with_our_subnet_is_adopted_not_created():
    rec = run_program(
        "dev", preflight=HEALTHY_PREFLIGHT + '\nnetwork={"Name":"kind","IPAM":{"Config":[{"Subnet":"172.30.0.0/16"}]}}'
    )
    assert rec.of_type(NETWORK) == []
    assert rec.named("cache-docker-io").inputs["networksAdvanced"][0]["name"] == "kind"
    assert rec.outputs["networkName"] == "kind"


def test_docker_host_from_stack_config_reaches_provider_and_kind():
    # A remote engine takes the caches and the cluster only (the add-ons are refused there: test_engine_rules.py).
    no_addons = {"cilium": {"enabled": False}, "metallb": {"enabled": False}, "ingressNginx": {"enabled": False}}
    rec = run_program("dev", overrides={"docker": {"host": "ssh://dev@buildbox"}, "addons": no_addons})
    (provider,) = rec.of_type("pulumi:providers:docker")
    assert provider.inputs["host"] == "ssh://dev@buildbox"
    assert rec.named("kind-cluster").inputs["environment"]["DOCKER_HOST"] == "ssh://dev@buildbox"
    assert rec.invokes[0][1]["environment"]["DOCKER_HOST"] == "ssh://dev@buildbox"


def test_caches_run_the_never_restarting_entrypoint_with_bounded_upstream_connects(dev):
    from krc.render import registry

    for container in cache_resources(dev, CONTAINER):
        assert container.inputs["entrypoints"] == registry.entrypoint(), container.name
        assert container.inputs["sysctls"] == registry.SYSCTLS, container.name


def test_unknown_top_level_keys_are_refused_with_did_you_mean():
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides={"clustr": {"workers": 2}, "certDir": "~/x"})
    assert "kind-registry-cache:clustr: unknown key (did you mean 'cluster'?)" in str(info.value)
    assert "kind-registry-cache:certDir: unknown key (did you mean 'certsDir'?)" in str(info.value)


def test_an_existing_folder_not_created_by_this_stack_is_refused_before_anything(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("the user's")
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides={"certsDir": str(foreign)})
    assert f"kind-registry-cache:certsDir: {foreign} already exists and was not created by this stack" in str(info.value)
    assert (foreign / "notes.txt").read_text() == "the user's"


def test_a_certs_folder_this_stack_wrote_is_used_again(tmp_path, dev):
    folder = tmp_path / "certs.d"
    first = run_program("dev", overrides={"certsDir": str(folder)})
    written_certs_in_place(first)
    again = run_program("dev", overrides={"certsDir": str(folder)})
    assert again.named("kind-certs").inputs["create"] == first.named("kind-certs").inputs["create"]
    with pytest.raises(pulumi.RunError) as info:
        run_program("staging", overrides={"certsDir": str(folder)})
    assert "belongs to another stack (kind-registry-cache/dev)" in str(info.value)


def written_certs_in_place(rec: Recording) -> None:
    import subprocess

    subprocess.run(["sh", "-c", rec.named("kind-certs").inputs["create"]], check=True, capture_output=True)
