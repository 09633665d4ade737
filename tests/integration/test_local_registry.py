"""The local registry for real: the program's recorded registry container and volume on the private engine, an
image built there and pushed to 127.0.0.1:<port>, a containerd node pulling localhost:<port>/... through the
generated hosts.toml, byte for byte; the registry recreated on its volume; the preflight script and `cachectl
registry` against the real engine."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import uuid

import pytest
import requests

from krc import preflight
from krc.config.localregistry import LocalRegistrySettings
from krc.preflight import localregistry

from . import observe, stack
from .containers import create_container_from_inputs, exec_ok, ip_address

pytestmark = pytest.mark.integration

OWNER = "kind-registry-cache/itest"
REGISTRY = "kcr-itest-local-registry"
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def free_port() -> int:
    """A TCP port nothing listens on now (sessions running at the same time share this machine's loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def env(docker_client, built_images, tmp_path):
    """The program's recording with a local registry on a free port; the network, the registry, the certs folder."""
    port = free_port()
    certs_dir = tmp_path / "certs.d"
    rec = stack.record(certs_dir, localRegistry={"port": port})
    stack.create_network(docker_client, rec)
    registry = stack.deploy_local_registry(docker_client, rec, built_images.registry)
    stack.write_certs(rec)
    return rec, registry, port


def build_image(client, marker: str) -> str:
    """A one-file image built on the test engine (FROM scratch: nothing to download); its id."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in {"Dockerfile": b"FROM scratch\nCOPY hello.txt /hello.txt\n", "hello.txt": marker.encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, rm=True)
    return image.id


def push(client, repository: str, tag: str) -> str:
    """``docker push`` by the engine; the manifest digest it reports."""
    digest = ""
    for event in client.images.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in event, event
        digest = (event.get("aux") or {}).get("Digest", digest)
    assert digest.startswith("sha256:"), "the push reported no digest"
    return digest


def manifest(port: int, repository: str, reference: str) -> tuple[str, bytes]:
    """The registry's manifest (digest, bytes), read from the host through the published port."""
    response = requests.get(f"http://127.0.0.1:{port}/v2/{repository}/manifests/{reference}",
                            headers={"Accept": ACCEPT}, timeout=10)
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"], response.content


def test_an_image_pushed_to_localhost_is_pulled_by_a_node_through_hosts_toml(env, docker_client, built_images):
    rec, registry, port = env
    marker = f"local-registry-{uuid.uuid4().hex}"
    repository = f"127.0.0.1:{port}/krc-test/app"
    image_id = build_image(docker_client, marker)
    docker_client.images.get(image_id).tag(repository, tag="1.0")
    pushed = push(docker_client, repository, "1.0")

    digest, body = manifest(port, "krc-test/app", "1.0")
    assert digest == pushed
    document = json.loads(body)
    blobs = {document["config"]["digest"], *(layer["digest"] for layer in document["layers"])}

    # The node names it as pod specs do, localhost:<port>; only the hosts.toml can send that to the registry.
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    ref = f"localhost:{port}/krc-test/app:1.0"
    result = node.pull(ref)
    assert result.ok, f"{ref}: {result.stderr}\n{registry.logs(tail=30).decode(errors='replace')}"
    assert {pushed, *blobs} <= node.content_digests()
    assert_same_bytes(node, pushed, body, blobs)
    (layer,) = document["layers"]
    unpack = "gunzip -c" if "gzip" in layer["mediaType"] else "cat"
    script = f"ctr -n k8s.io content get {layer['digest']} | {unpack} | tar -xOf - hello.txt"
    assert exec_ok(node.container, ["sh", "-c", script]) == marker, "the node holds the file built into the image"
    node_ip = ip_address(node.container, stack.NETWORK)
    served = [e for e in observe.access_log(registry) if e.remote == node_ip and e.kind == "manifests"]
    assert served and all(e.status == 200 for e in served), "the node's pull went to the registry container"

    # pulumi destroy + up: the container goes, the volume stays, a new container on it still serves the image.
    registry.remove(force=True)
    assert rec.named("local-registry-volume").inputs["name"] in {v.name for v in docker_client.volumes.list()}
    registry = stack.deploy_local_registry(docker_client, rec, built_images.registry)
    node.clear_content()
    result = node.pull(ref)
    assert result.ok, result.stderr
    assert_same_bytes(node, pushed, body, blobs)
    assert manifest(port, "krc-test/app", "1.0")[0] == pushed


def assert_same_bytes(node, pushed: str, body: bytes, blobs: set[str]) -> None:
    """The node's manifest is the pushed one, and each blob's bytes hash to its digest (computed in the node)."""
    assert node.ctr("content", "get", pushed).encode() == body
    for digest in sorted(blobs):
        out = exec_ok(node.container, ["sh", "-c", f"ctr -n k8s.io content get {digest} | sha256sum"])
        assert f"sha256:{out.split()[0]}" == digest


def test_cachectl_registry_reads_the_real_registry(env, docker_client, docker_engine, built_images):
    rec, registry, port = env
    image_id = build_image(docker_client, "cachectl")
    docker_client.images.get(image_id).tag(f"127.0.0.1:{port}/team/tool", tag="2")
    push(docker_client, f"127.0.0.1:{port}/team/tool", "2")
    environment = {**os.environ, "DOCKER_HOST": docker_engine.base_url}
    # The registry image for a volume without its container: the engine has the stand-in, not registry:3.
    run = [sys.executable, "-m", "krc.commands.cachectl", "registry", "--json", "--stack", "itest",
           "--image", built_images.registry]
    running = json.loads(subprocess.run(run, env=environment, capture_output=True, text=True, check=True).stdout)
    entry = running[OWNER][REGISTRY]
    assert (entry["state"], entry["hostPort"], entry["repositories"]) == ("running", port, ["team/tool"])
    assert entry["diskBytes"] > 0
    # After `pulumi destroy`: the volume alone, read by a throwaway container.
    registry.remove(force=True)
    left = json.loads(subprocess.run(run, env=environment, capture_output=True, text=True, check=True).stdout)
    assert (left[OWNER][REGISTRY]["state"], left[OWNER][REGISTRY]["repositories"]) == ("no container", ["team/tool"])
    table_run = [arg for arg in run if arg != "--json"]
    table = subprocess.run(table_run, env=environment, capture_output=True, text=True, check=True).stdout
    assert REGISTRY in table and "team/tool" in table
    print(table)


# --- the preflight script against the real engine ----------------------------------------------------------


def preflight_report(engine, name: str, port: int, owner: str) -> preflight.Report:
    env = {
        "PATH": os.environ["PATH"],
        "DOCKER_HOST": engine.base_url,
        **preflight.environment(owner, "itest", "/nonexistent", "/nonexistent", local_registry=(name, port), python=sys.executable),
    }
    out = subprocess.run(["/bin/sh", "-c", preflight.SCRIPT], env=env, capture_output=True, text=True, check=True).stdout
    return preflight.parse(out)


def decide(report: preflight.Report, name: str, port: int, owner: str):
    settings = LocalRegistrySettings(enabled=True, port=port, name=name)
    return localregistry.plan(report, settings, project="kind-registry-cache", owner=owner, network=stack.NETWORK,
                              local_engine=True)


def test_preflight_sees_our_registry_as_ours_and_refuses_it_to_another_stack(env, docker_engine):
    rec, registry, port = env
    report = preflight_report(docker_engine, REGISTRY, port, OWNER)
    (found,) = report.local_registries
    assert (found.name, found.state, found.owner, found.port, found.networks) == (REGISTRY, "running", OWNER, port, (stack.NETWORK,))
    assert report.registry_container == ("running", OWNER, "local-registry")
    assert report.registry_volume == (OWNER, "local-registry")
    assert report.port_probe.startswith("listening")  # docker-proxy, for our own registry
    assert decide(report, REGISTRY, port, OWNER).port == port  # the second `up`: no refusal
    assert REGISTRY in report.caches, "listed with the stack's containers: its generation token is read back"

    other = "kind-registry-cache/other"
    report = preflight_report(docker_engine, "kcr-other-local-registry", port, other)
    with pytest.raises(preflight.PreflightError) as info:
        decide(report, "kcr-other-local-registry", port, other)
    assert f"{port} is the port of stack {OWNER}'s local registry ({REGISTRY}, running)" in str(info.value)


def test_preflight_names_a_foreign_container_and_a_process_on_the_port(docker_client, built_images, docker_engine, test_network):
    port = free_port()
    foreign = create_container_from_inputs(docker_client, {
        "name": "kind-registry", "image": built_images.registry, "networksAdvanced": [{"name": test_network}],
        "ports": [{"internal": 5000, "external": port, "ip": "127.0.0.1"}],
    })
    report = preflight_report(docker_engine, REGISTRY, port, OWNER)
    with pytest.raises(preflight.PreflightError) as info:
        decide(report, REGISTRY, port, OWNER)
    assert f"{port} on 127.0.0.1 is already published by container 'kind-registry' (127.0.0.1:{port}->5000/tcp)" in str(info.value)
    foreign.remove(force=True)

    with listening() as busy:
        report = preflight_report(docker_engine, REGISTRY, busy, OWNER)
    assert report.port_probe == "listening 127.0.0.1"
    with pytest.raises(preflight.PreflightError) as info:
        decide(report, REGISTRY, busy, OWNER)
    # ss names the holder (this machine has ss; as root it sees every process's sockets).
    assert f"(pid {os.getpid()})" in report.port_process
    assert f"{busy} is in use on this machine (127.0.0.1) by {report.port_process}" in str(info.value)


class listening:
    """A TCP listener of this test process on a free loopback port."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()

