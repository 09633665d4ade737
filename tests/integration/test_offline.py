"""Offline resilience: a cache starts and serves what it holds when its upstream cannot be reached."""
from __future__ import annotations

import re
import time

import pytest

from krc.render import registry

from . import observe, stack
from .containers import create_container_from_inputs, exec_ok, ip_address, wait_healthy

pytestmark = pytest.mark.integration

#: The entrypoint probes the upstream every KRC_PROBE_SECONDS (15 s in production); 1 s keeps the test short.
FAST_PROBE = ["KRC_PROBE_SECONDS=1"]


@pytest.fixture
def warm(docker_client, built_images, tmp_path):
    """The program's caches, warmed by one node pulling everything, then every fake upstream stopped."""
    rec = stack.record(tmp_path / "certs.d")
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry)
    deployed = stack.deploy(docker_client, rec, built_images.registry)
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    stack.pull_all(node)
    node.container.remove(force=True)
    for upstream in upstreams.values():
        upstream.stop()
    return rec, upstreams, deployed


def mode(container) -> str:
    return exec_ok(container, ["cat", registry.MODE_FILE]).strip()


def test_offline_destroy_and_up_brings_the_caches_up_and_serves_everything(warm, docker_client, built_images):
    rec, _, deployed = warm
    stack.remove_caches(deployed)  # pulumi destroy
    caches = stack.deploy_caches(deployed)  # pulumi up, offline: every cache must become healthy
    for host, cache in caches.items():
        cache.reload()
        assert (cache.status, cache.attrs["RestartCount"]) == ("running", 0), host
        assert mode(cache) == "offline", host
        assert "serving cached content read-only" in cache.logs().decode(errors="replace"), host
    fresh = stack.start_kind_node(docker_client, rec, built_images.node, "itest-worker")
    stack.pull_all(fresh)


def test_without_the_entrypoint_the_stock_registry_cannot_start_offline(warm, docker_client):
    # The control: the same recorded container with the image's own entrypoint panics and restarts.
    _, _, deployed = warm
    inputs = dict(deployed.cache_inputs()["docker.io"])
    inputs.pop("entrypoints")
    inputs["name"] = "stock-registry-docker-io"
    inputs["networksAdvanced"] = [{"name": stack.NETWORK, "aliases": ["stock-registry-docker-io"]}]
    stock = create_container_from_inputs(
        docker_client, inputs, image_map=stack.image_map(deployed.recording, deployed.registry_image)
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stock.reload()
        if stock.attrs["RestartCount"] > 0 or stock.status in ("exited", "restarting"):
            break
        time.sleep(0.2)
    logs = stock.logs().decode(errors="replace")
    assert "panic" in logs, logs[-1500:]


def test_cache_returns_to_proxy_mode_when_the_upstream_answers_again(warm, docker_client, built_images):
    rec, upstreams, deployed = warm
    stack.remove_caches(deployed)
    caches = stack.deploy_caches(deployed, extra_env=FAST_PROBE)
    cache = caches["docker.io"]
    assert mode(cache) == "offline"

    upstreams["docker.io"].start()
    deadline = time.monotonic() + 60  # a bound for the test, not a speed target: probes run every second
    while True:
        cache.reload()
        if cache.status == "running" and cache.attrs["RestartCount"] >= 1:
            try:
                if mode(cache) == "proxy":
                    break
            except RuntimeError:
                pass
        assert time.monotonic() < deadline, f"still not in proxy mode:\n{cache.logs(tail=20).decode()}"
        time.sleep(0.5)
    assert "answers again: restarting as a pull-through cache" in cache.logs().decode(errors="replace")
    wait_healthy(cache, timeout=30)

    # A new image, never cached, now comes through the cache from the upstream.
    upstream = upstreams["docker.io"]
    upstream.seed([stack.ImageSpec("library/gamma", "1.0", (stack.LayerSpec("gamma", 96 * stack.KiB),))])
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-worker")
    result = node.pull("docker.io/library/gamma:1.0")
    assert result.ok, result.stderr
    cache_ip = ip_address(cache, stack.NETWORK)
    gamma_gets = [
        e for e in observe.access_log(upstream)
        if e.repository == "library/gamma" and e.kind == "blobs" and e.method == "GET"
    ]
    assert gamma_gets and {e.remote for e in gamma_gets} == {cache_ip}


def test_uncached_image_while_offline_fails_fast_with_not_found(warm, docker_client, built_images):
    rec, _, deployed = warm
    stack.remove_caches(deployed)
    caches = stack.deploy_caches(deployed)
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-worker")
    result = node.pull("docker.io/library/never-cached:1.0")
    assert not result.ok
    # The cache answers 404 at once; containerd then tries the real upstream (server), unreachable too.
    # containerd 1.6: 'trying next host - response was http.StatusNotFound'; 2.x: 'trying next host after
    # status: 404 Not Found'; both then name the cache.
    assert re.search(r'(response was http\.StatusNotFound|after status: 404 Not Found)" host="kcr-itest-docker-io:5000"',
                     result.stderr), result.stderr
    # No hang: the cache answered the manifest request itself, with 404, instead of waiting on the upstream.
    statuses = [e.status for e in observe.access_log(caches["docker.io"]) if e.repository == "library/never-cached"]
    assert statuses and set(statuses) == {404}, statuses


def test_offline_cache_refuses_writes(warm):
    _, _, deployed = warm
    stack.remove_caches(deployed)
    cache = stack.deploy_caches(deployed)["quay.io"]
    answer = cache.exec_run(
        ["wget", "-q", "-O", "-", "--post-data", "", "http://127.0.0.1:5000/v2/cilium/cilium/blobs/uploads/"]
    )
    assert answer.exit_code != 0
    assert b"405" in answer.output or b"Method Not Allowed" in answer.output, answer.output

