"""The program's own caches, hosts.toml and kind config, run for real: nodes pull through the caches."""
from __future__ import annotations

import json

import pytest

from . import observe, stack
from .containers import ip_address

pytestmark = pytest.mark.integration

PLATFORM = "linux/amd64"


@pytest.fixture
def certs_dir(tmp_path):
    return tmp_path / "certs.d"


@pytest.fixture
def env(docker_client, built_images, certs_dir):
    """Network, seeded fake upstreams, and the program's caches and certs for the test stack."""
    rec = stack.record(certs_dir)
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry)
    deployed = stack.deploy(docker_client, rec, built_images.registry)
    return rec, upstreams, deployed


def seeded(upstreams, host):
    return {image.reference: image for image in upstreams[host].seeded.values()}


def upstream_blob_gets(upstream):
    return observe.blob_gets(e for e in observe.access_log(upstream) if e.status == 200)


def upstream_blob_totals(upstreams):
    """upstream host -> blob downloads it served so far."""
    return {host: sum(upstream_blob_gets(u).values()) for host, u in upstreams.items()}


def test_node_pulls_by_usual_names_through_the_matching_cache(env, docker_client, built_images):
    rec, upstreams, deployed = env
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    for host, refs in stack.PULLS.items():
        cache = deployed.caches[host]
        cache_ip = ip_address(cache, stack.NETWORK)
        for ref in refs:
            result = node.pull(ref)
            assert result.ok, f"{ref}: {result.stderr}\nUPSTREAM LOG:\n{upstreams[host].container.logs(tail=60).decode()}"
            repository = ref.split("/", 1)[1].rsplit(":", 1)[0]
            cache_requests = [e for e in observe.access_log(cache) if e.repository == repository]
            assert cache_requests, f"{ref} did not go through {cache.name}"
        # Only the cache talks to the upstream, and it fetched each blob of the node's platform once (v3;
        # Debian's 2.8 fallback may fetch a cold blob twice), nothing of the other platform.
        entries = observe.access_log(upstreams[host])
        assert {e.remote for e in entries if e.kind == "blobs" and e.method == "GET"} == {cache_ip}, host
        gets = upstream_blob_gets(upstreams[host])
        wanted = {digest for image in upstreams[host].seeded.values() for digest in image.blobs(PLATFORM)}
        assert set(gets) == wanted, host
        assert all(1 <= n <= built_images.cold_fetches for n in gets.values()), gets


def test_second_node_gets_everything_from_the_cache_alone(env, docker_client, built_images):
    rec, upstreams, _ = env
    first = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    stack.pull_all(first)
    before = upstream_blob_totals(upstreams)
    second = stack.start_kind_node(docker_client, rec, built_images.node, "itest-worker")
    stack.pull_all(second)
    after = upstream_blob_totals(upstreams)
    assert after == before, "a warm cache fetched blobs from upstream again"


def test_warm_caches_serve_a_fresh_node_with_every_upstream_stopped(env, docker_client, built_images):
    rec, upstreams, _ = env
    warm = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    stack.pull_all(warm)
    for upstream in upstreams.values():
        for container in upstream.containers():
            container.stop(timeout=1)
    fresh = stack.start_kind_node(docker_client, rec, built_images.node, "itest-worker")
    stack.pull_all(fresh)


def test_cache_survives_destroy_and_up(env, docker_client, built_images):
    rec, upstreams, deployed = env
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    stack.pull_all(node)
    before = upstream_blob_totals(upstreams)

    # pulumi destroy: node and cache containers go, the retained volumes stay.
    node.container.remove(force=True)
    stack.remove_caches(deployed)
    volumes = {v.name for v in docker_client.volumes.list()}
    assert {inputs["volumes"][0]["volumeName"] for inputs in deployed.cache_inputs().values()} <= volumes

    # pulumi up: the same recorded inputs again.
    stack.deploy_caches(deployed)
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    stack.pull_all(node)
    after = upstream_blob_totals(upstreams)
    assert after == before, "the recreated caches went upstream for blobs they kept"


def test_stopped_cache_falls_back_to_the_upstream(env, docker_client, built_images):
    rec, upstreams, deployed = env
    deployed.caches["quay.io"].stop(timeout=1)
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    result = node.pull("quay.io/cilium/cilium:v1.20.0")
    assert result.ok, result.stderr
    node_ip = ip_address(node.container, stack.NETWORK)
    assert any(e.remote == node_ip and e.kind == "blobs" for e in observe.access_log(upstreams["quay.io"]))


def test_adding_a_mirror_reaches_a_running_node(env, docker_client, built_images, certs_dir):
    rec, upstreams, deployed = env
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    node_id = node.container.id
    extra = stack.start_upstream(docker_client, built_images.registry, stack.NETWORK, "up-team-registry")
    extra.seed([stack.ImageSpec("team/app", "2.0", (stack.LayerSpec("app", 64 * stack.KiB),))])

    changed = stack.record(certs_dir, extra_mirrors={"registry.team.test": "http://up-team-registry:5000"})
    assert changed.named("kind-cluster").inputs["stdin"] == rec.named("kind-cluster").inputs["stdin"], (
        "a mirror change must not change the kind config (that would recreate the cluster)"
    )
    deployed.recording = changed
    stack.deploy_caches(deployed, hosts=["registry.team.test"])
    stack.write_certs(changed)

    result = node.pull("registry.team.test/team/app:2.0")
    assert result.ok, result.stderr
    assert node.container.id == node_id
    assert any(e.repository == "team/app" for e in observe.access_log(deployed.caches["registry.team.test"]))


def test_credentials_log_in_upstream_and_never_show(docker_client, built_images, certs_dir):
    login = ("krc-bot", "s3cret-Token")
    rec = stack.record(
        certs_dir, credentials={"docker.io": {"username": login[0], "password": login[1]}}, secret_keys=("credentials",)
    )
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry, logins={"docker.io": login})
    deployed = stack.deploy(docker_client, rec, built_images.registry)
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")

    result = node.pull("docker.io/library/alpha:1.0")
    assert result.ok, result.stderr
    assert 200 in observe.token_requests(upstreams["docker.io"]), "the cache logged in"

    cache = deployed.caches["docker.io"]
    assert login[1] not in json.dumps(cache.attrs["Config"]["Labels"])
    assert login[1] not in cache.logs().decode(errors="replace")
    assert login[1] not in json.dumps(rec.outputs)
    assert rec.named("cache-docker-io").secret_inputs == {"envs"}


def test_wrong_password_fails_with_the_registrys_auth_error(docker_client, built_images, certs_dir):
    rec = stack.record(
        certs_dir, credentials={"docker.io": {"username": "krc-bot", "password": "wrong"}}, secret_keys=("credentials",)
    )
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry, logins={"docker.io": ("krc-bot", "right")})
    stack.deploy(docker_client, rec, built_images.registry)
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")

    result = node.pull("docker.io/library/alpha:1.0")
    assert not result.ok
    assert 401 in observe.token_requests(upstreams["docker.io"]), "the login was refused"
    assert "401" in result.stderr or "unauthorized" in result.stderr.lower(), result.stderr
