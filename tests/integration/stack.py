"""Deploy what the program records under mocks onto the private engine, the way `pulumi up` would.

The program runs under Pulumi mocks with a test stack config that points every mirror's remote at a fake
upstream. Its recorded docker Network, Volume and Container inputs are created here exactly (only the image
is swapped for the offline registry:3 stand-in, and the health check runs every second instead of ten);
its certs Command script runs for real into a temporary certs folder; and node containers start with the
recorded kind config's containerdConfigPatches and that folder mounted read-only at certs.d.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml
from docker.models.containers import Container

from harness import Recording, run_program

from .containers import wait_healthy, create_container_from_inputs, create_network_from_inputs, create_volume_from_inputs
from .engine import TEST_SUBNET
from .node import Node, start_node
from .upstreams import FakeUpstream, ImageSpec, LayerSpec, start_upstream

KiB = 1024

#: The program's cache network for these tests (a test-created bridge on the private engine).
NETWORK = "krc-stack"
SUBNET = TEST_SUBNET

#: Fake upstream container per upstream host; k8s.gcr.io is served from registry.k8s.io, as in production.
UPSTREAMS = {
    "docker.io": "up-docker-io",
    "quay.io": "up-quay-io",
    "ghcr.io": "up-ghcr-io",
    "registry.k8s.io": "up-registry-k8s-io",
    "gcr.io": "up-gcr-io",
}
SERVED_FROM = {"k8s.gcr.io": "registry.k8s.io"}

#: Images seeded per upstream: layers shared between images, an index with two platforms, both formats.
IMAGES: dict[str, tuple[ImageSpec, ...]] = {
    "docker.io": (
        ImageSpec("library/alpha", "1.0", (LayerSpec("base", 512 * KiB), LayerSpec("alpha", 256 * KiB))),
        ImageSpec("library/beta", "1.0", (LayerSpec("base", 512 * KiB), LayerSpec("beta", 128 * KiB)), oci=True),
    ),
    "quay.io": (
        ImageSpec(
            "cilium/cilium",
            "v1.20.0",
            (LayerSpec("cilium-base", 384 * KiB), LayerSpec("cilium", 256 * KiB)),
            platforms=("linux/amd64", "linux/arm64/v8"),
            oci=True,
        ),
    ),
    "registry.k8s.io": (
        ImageSpec(
            "ingress-nginx/controller",
            "v1.15.1",
            (LayerSpec("nginx-base", 256 * KiB), LayerSpec("controller", 192 * KiB)),
            platforms=("linux/amd64", "linux/arm64/v8"),
        ),
    ),
}

#: How each seeded image is pulled by its usual name on a node.
PULLS = {
    "docker.io": ["docker.io/library/alpha:1.0", "docker.io/library/beta:1.0"],
    "quay.io": ["quay.io/cilium/cilium:v1.20.0"],
    "registry.k8s.io": ["registry.k8s.io/ingress-nginx/controller:v1.15.1"],
}


def pull_all(node: Node) -> None:
    """Pull every seeded image on ``node`` by its usual name; fail with the first one that does not come."""
    for refs in PULLS.values():
        for ref in refs:
            result = node.pull(ref)
            assert result.ok, f"{node.name}: {ref}: {result.stderr}"


def remote(host: str) -> str:
    return f"http://{UPSTREAMS[SERVED_FROM.get(host, host)]}:5000"


def test_overrides(certs_dir: Path, extra_mirrors: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    """Stack config for the tests: every remote at a fake upstream, the test network, no add-ons, and no local
    registry unless a test asks for one (``localRegistry={"port": ...}``): its port is on this machine's loopback,
    which sessions running at the same time share."""
    mirrors = {host: remote(host) for host in [*UPSTREAMS, *SERVED_FROM]}
    mirrors.update(extra_mirrors or {})
    return {
        "network": {"name": NETWORK, "subnet": SUBNET},
        "cache": {"mirrors": mirrors},
        "certsDir": str(certs_dir),
        "addons": {"cilium": {"enabled": False}, "metallb": {"enabled": False}, "ingressNginx": {"enabled": False}},
        "localRegistry": {"enabled": False},
        **more,
    }


def record(certs_dir: Path, extra_mirrors: dict[str, Any] | None = None, secret_keys: tuple[str, ...] = (), **more: Any) -> Recording:
    """Run the program under mocks for the test stack and return what it registered."""
    return run_program(
        "itest", overrides=test_overrides(certs_dir, extra_mirrors, **more), secret_keys=secret_keys, use_stack_file=False
    )


@dataclass
class Deployed:
    """What the tests created from one recording."""

    recording: Recording
    client: docker.DockerClient
    registry_image: str
    caches: dict[str, Container] = field(default_factory=dict)

    def cache_inputs(self) -> dict[str, dict[str, Any]]:
        """Upstream host -> the recorded inputs of its cache container."""
        result = {}
        for r in self.recording.of_type("docker:index/container:Container"):
            labels = {item["label"]: item["value"] for item in r.inputs.get("labels", [])}
            if "kind-registry-cache.upstream" in labels:  # not the local registry
                result[labels["kind-registry-cache.upstream"]] = r.inputs
        return result


def create_network(client: docker.DockerClient, rec: Recording) -> None:
    (network,) = rec.of_type("docker:index/network:Network")
    create_network_from_inputs(client, network.inputs)


def start_upstreams(client: docker.DockerClient, image: str, logins: dict[str, tuple[str, str]] | None = None) -> dict[str, FakeUpstream]:
    """Start and seed the fake upstreams on the program's network; ``logins`` make one require a login."""
    upstreams = {}
    for host, name in UPSTREAMS.items():
        username, password = (logins or {}).get(host, (None, None))
        upstream = start_upstream(client, image, NETWORK, name, username=username, password=password)
        if host in IMAGES:
            upstream.seed(IMAGES[host])
        upstreams[host] = upstream
    return upstreams


def image_map(rec: Recording, registry_image: str) -> dict[str, str]:
    """The RemoteImage id the mocks give the cache containers -> the stand-in image."""
    (remote_image,) = rec.of_type("docker:index/remoteImage:RemoteImage")
    return {"sha256:" + "0" * 64: registry_image, remote_image.inputs["name"]: registry_image}


def deploy_caches(
    deployed: Deployed, hosts: list[str] | None = None, extra_env: list[str] = (), wait: bool = True
) -> dict[str, Container]:
    """Create the recorded volumes (if missing) and cache containers, as the Docker provider would.

    :param extra_env: appended to the recorded environment (e.g. a shorter upstream probe interval).
    :param wait: wait until Docker reports every cache healthy.
    """
    rec, client = deployed.recording, deployed.client
    existing = {v.name for v in client.volumes.list()}
    for volume in rec.of_type("docker:index/volume:Volume"):
        if volume.inputs["name"] not in existing:
            create_volume_from_inputs(client, volume.inputs)
    for host, inputs in deployed.cache_inputs().items():
        if hosts is not None and host not in hosts:
            continue
        deployed.caches[host] = create_container_from_inputs(
            client,
            inputs,
            image_map=image_map(rec, deployed.registry_image),
            overrides={"healthcheck": {"interval": "1s"}, "envs": [*inputs["envs"], *extra_env]},
        )
    # Started together, then waited for together (as the provider does them in parallel).
    for container in deployed.caches.values():
        if wait:
            wait_healthy(container, timeout=60)
    return deployed.caches


def remove_caches(deployed: Deployed) -> None:
    """What `pulumi destroy` does to the caches: containers go, volumes stay (retain_on_delete)."""
    for container in deployed.caches.values():
        container.remove(force=True)
    deployed.caches.clear()


def deploy_local_registry(client: docker.DockerClient, rec: Recording, registry_image: str) -> Container:
    """The recorded local registry's volume (if missing) and container, as the Docker provider would create them."""
    volume = rec.named("local-registry-volume").inputs
    if volume["name"] not in {v.name for v in client.volumes.list()}:
        create_volume_from_inputs(client, volume)
    container = create_container_from_inputs(
        client, rec.named("local-registry-container").inputs, image_map=image_map(rec, registry_image),
        overrides={"healthcheck": {"interval": "1s"}},
    )
    wait_healthy(container, timeout=60)
    return container


def write_certs(rec: Recording) -> None:
    """Run the recorded certs Command's create script, as pulumi-command would."""
    script = rec.named("kind-certs").inputs["create"]
    subprocess.run(["sh", "-c", script], check=True)


def kind_config(rec: Recording) -> dict[str, Any]:
    return yaml.safe_load(rec.named("kind-cluster").inputs["stdin"])


def start_kind_node(client: docker.DockerClient, rec: Recording, node_image: str, name: str) -> Node:
    """A node configured from the recorded kind config: its containerd patches and its certs.d mount."""
    config = kind_config(rec)
    (mount,) = config["nodes"][0]["extraMounts"]
    assert mount["containerPath"] == "/etc/containerd/certs.d" and mount["readOnly"] is True
    return start_node(
        client, node_image, NETWORK, name, Path(mount["hostPath"]), patches=config["containerdConfigPatches"]
    )


def deploy(client: docker.DockerClient, rec: Recording, registry_image: str) -> Deployed:
    """Network is expected to exist (upstreams start on it first); create caches and certs."""
    deployed = Deployed(recording=rec, client=client, registry_image=registry_image)
    deploy_caches(deployed)
    write_certs(rec)
    return deployed
