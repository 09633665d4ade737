"""``cachectl offline`` for real: the program's recorded caches (registry v3.1.1) on the private engine, a containerd
v2.3.1 node of the stack's cluster that pulled through them, the stack's record written by the recorded artifact
store step, and the command run as a user runs it. It must tell held from missing without asking anyone upstream."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ROOT
from krc.preflight import script as preflight_script

from . import observe, stack

pytestmark = pytest.mark.integration

HELD = "docker.io/library/alpha:1.0"
NEVER_PULLED = "docker.io/library/beta:1.0"
NO_CACHE = "mcr.microsoft.com/dotnet/runtime:8.0"
#: An image record on the node labelled as kind labels the images its node image preloads.
PRELOADED = "registry.k8s.io/pause:3.10"


def run(engine, home: Path, command: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": engine.base_url, "HOME": str(home)}
    return subprocess.run(command, cwd=ROOT, input=stdin, env=env, capture_output=True, text=True, timeout=300)


def store_step(engine, home: Path, rec) -> None:
    """The recorded artifact store Command, run as pulumi-command runs it: it writes the stack's record."""
    fetch = rec.named("store-fetch")
    done = run(engine, home, ["sh", "-c", fetch.inputs["create"]], stdin=fetch.inputs["stdin"])
    assert done.returncode == 0, done.stderr


def offline(engine, home: Path, *args: str) -> subprocess.CompletedProcess:
    return run(engine, home, [sys.executable, "-m", "krc.commands.cachectl", "offline", "--stack", "itest", *args])


def requests_seen(containers) -> int:
    return sum(len(observe.access_log(c)) for c in containers)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The user's HOME: the program under mocks and the commands see the same one."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def test_offline_report_tells_held_from_missing_and_asks_no_upstream(docker_engine, docker_client, built_images, home, tmp_path):
    certs = tmp_path / "certs.d"
    rec = stack.record(certs, warmup={"images": [HELD, NEVER_PULLED, NO_CACHE]})
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry)
    deployed = stack.deploy(docker_client, rec, built_images.registry)
    store_step(docker_engine, home, rec)
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane",
                                 labels={preflight_script.KIND_CLUSTER_LABEL: "itest"})
    assert node.pull(HELD).ok
    node.ctr("images", "tag", HELD, PRELOADED)
    node.ctr("images", "label", PRELOADED, "io.cri-containerd.pinned=pinned")

    watched = [c for u in upstreams.values() for c in u.containers()] + list(deployed.caches.values())
    before = requests_seen(watched)
    done = offline(docker_engine, home, "--json", "--image", built_images.registry)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    items = {i["name"]: i for i in report["items"]}
    assert items[HELD]["state"] == "held" and items[HELD]["where"] == "cache kcr-itest-docker-io"
    assert sorted(items[HELD]["sources"]) == ["add-ons / warmup.images", "node itest-control-plane"]
    assert items[NEVER_PULLED]["state"] == "missing" and "not in cache kcr-itest-docker-io" in items[NEVER_PULLED]["why"]
    assert items[NO_CACHE]["state"] == "missing" and "no cache for mcr.microsoft.com" in items[NO_CACHE]["why"]
    assert items[PRELOADED]["state"] == "in the node image"
    # The stand-in images of this engine are not kind's node image nor registry:3: a real `up` would pull those.
    engine_images = {i["name"]: i["state"] for i in report["items"] if i["kind"] == "engine image"}
    assert set(engine_images.values()) == {"missing"} and "registry:3" in engine_images
    assert report["ready"] is False and report["missing"] == 4
    # Nothing asked any upstream, nor the running caches: the throwaway read-only registries answered, and are gone.
    assert requests_seen(watched) == before
    assert docker_client.containers.list(all=True, filters={"label": "kind-registry-cache.offline-check"}) == []

    table = offline(docker_engine, home, "--image", built_images.registry)
    assert table.returncode == 1
    assert table.stdout.startswith("stack kind-registry-cache/itest (linux/")
    assert "offline, 4 of 6 would be missing" in table.stdout.splitlines()[0]


def test_offline_report_exits_0_when_everything_is_there(docker_engine, docker_client, built_images, home, tmp_path):
    certs = tmp_path / "certs.d"
    # The engine's own images stand in for the node image and registry:3, so everything can be present.
    rec = stack.record(certs, warmup={"images": [HELD]}, cluster={"nodeImage": built_images.node})
    stack.create_network(docker_client, rec)
    stack.start_upstreams(docker_client, built_images.registry)
    stack.deploy(docker_client, rec, built_images.registry)
    store_step(docker_engine, home, rec)
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane",
                                 labels={preflight_script.KIND_CLUSTER_LABEL: "itest"})
    assert node.pull(HELD).ok
    docker_client.images.get(built_images.registry).tag("registry", "3")
    try:
        done = offline(docker_engine, home, "--json")
    finally:
        docker_client.images.remove("registry:3", noprune=True)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ready"] is True and report["missing"] == 0
    assert {i["name"]: i["state"] for i in report["items"]}[HELD] == "held"
