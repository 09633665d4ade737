"""Offline resilience: a cache starts and serves what it holds when its upstream cannot be reached, and pulls
through again when it answers, without ever restarting."""
from __future__ import annotations

import re
import time

import pytest

from . import observe, stack
from .containers import create_container_from_inputs, ip_address

pytestmark = pytest.mark.integration

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


def test_offline_destroy_and_up_brings_the_caches_up_and_serves_everything(warm, docker_client, built_images):
    rec, _, deployed = warm
    stack.remove_caches(deployed)  # pulumi destroy
    caches = stack.deploy_caches(deployed)  # pulumi up, offline: every cache must become healthy
    for host, cache in caches.items():
        cache.reload()
        assert (cache.status, cache.attrs["RestartCount"]) == ("running", 0), host
        # A pull-through cache even now: nothing at start asked the upstream (proxy.exec, krc/render/registry.py).
        assert "Registry configured as a proxy cache" in cache.logs().decode(errors="replace"), host
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


def test_cache_started_offline_pulls_through_once_the_upstream_answers_without_a_restart(
        warm, docker_client, built_images):
    rec, upstreams, deployed = warm
    stack.remove_caches(deployed)
    caches = stack.deploy_caches(deployed)
    cache = caches["docker.io"]
    cache.reload()
    started = cache.attrs["State"]["StartedAt"]
    upstreams["docker.io"].start()

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
    # The same registry process served before and after: no restart, no mode change, no pull in flight lost.
    cache.reload()
    assert (cache.attrs["RestartCount"], cache.attrs["State"]["StartedAt"]) == (0, started)


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


def test_cache_refuses_writes(warm):
    _, _, deployed = warm
    stack.remove_caches(deployed)
    cache = stack.deploy_caches(deployed)["quay.io"]
    answer = cache.exec_run(
        ["wget", "-q", "-O", "-", "--post-data", "", "http://127.0.0.1:5000/v2/cilium/cilium/blobs/uploads/"]
    )
    assert answer.exit_code != 0
    assert b"405" in answer.output or b"Method Not Allowed" in answer.output, answer.output



def test_cache_started_offline_logs_in_once_its_upstream_answers(docker_client, built_images, tmp_path):
    # registry v3 with proxy.username/password would look for the token realm at start and panic offline; the
    # entrypoint's proxy.exec helper hands over the login whenever a realm asks, however late.
    login = ("krc-bot", 's3cret-"quoted"\\Token')
    rec = stack.record(tmp_path / "certs.d", credentials={"docker.io": {"username": login[0], "password": login[1]}},
                       secret_keys=("credentials",))
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry, logins={"docker.io": login})
    upstreams["docker.io"].stop()
    deployed = stack.deploy(docker_client, rec, built_images.registry)
    upstreams["docker.io"].start()
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    result = node.pull("docker.io/library/alpha:1.0")
    assert result.ok, result.stderr
    tokens = [e for e in observe.access_log(upstreams["docker.io"]) if e.path.endswith("/token")]
    assert tokens and {(e.status, e.user) for e in tokens} == {(200, login[0])}
    cache = deployed.caches["docker.io"]
    cache.reload()
    assert cache.attrs["RestartCount"] == 0
    assert login[1] not in cache.logs().decode(errors="replace")
