"""The integration tier's own machinery works: engine, stand-in images, fake upstreams, cache, node."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from . import observe
from .containers import create_container_from_inputs, exec_ok, ip_address, published_port, wait_healthy
from .engine import FORWARDING_SYSCTLS
from .node import CERTS_D, NodeError, start_node
from .upstreams import DEFAULT_IMAGES, DOCKER_LIST, OCI_INDEX, start_upstream

pytestmark = pytest.mark.integration

NODE_PLATFORM = "linux/amd64"
# What the program patches into kind's containerd config (no `version` line: kind would skip it).
CONFIG_PATH_PATCH = f'[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "{CERTS_D}"\n'
HEALTHCHECK = ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5001/debug/health"]


def cache_inputs(name: str, network: str, upstream_url: str, login: tuple[str, str] | None = None) -> dict:
    """A cache container as the program's mock run records it (camelCase names, floats for numbers)."""
    envs = [
        "REGISTRY_HTTP_ADDR=:5000", f"REGISTRY_PROXY_REMOTEURL={upstream_url}", "REGISTRY_PROXY_TTL=0",
        "REGISTRY_HTTP_DEBUG_ADDR=:5001", "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED=true",
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/var/lib/registry", "REGISTRY_LOG_LEVEL=info",
    ]
    if login:
        envs += [f"REGISTRY_PROXY_USERNAME={login[0]}", f"REGISTRY_PROXY_PASSWORD={login[1]}"]
    return {
        "name": name, "image": "registry:3", "envs": envs, "restart": "unless-stopped",
        "networksAdvanced": [{"name": network, "aliases": [name]}],
        # The debug port on loopback, at a port Docker picks (the program publishes the API port the same way).
        "ports": [{"internal": 5001.0, "ip": "127.0.0.1"}],
        "volumes": [{"volumeName": name, "containerPath": "/var/lib/registry"}],
        "healthcheck": {"tests": HEALTHCHECK, "interval": "1s", "timeout": "3s", "retries": 3.0, "startPeriod": "0s"},
        "labels": [{"label": "kind-registry-cache.upstream", "value": "docker.io"}],
    }


def write_hosts_toml(certs_dir: Path, host: str, server: str, mirror: str) -> None:
    (certs_dir / host).mkdir(parents=True, exist_ok=True)
    (certs_dir / host / "hosts.toml").write_text(
        f'server = "{server}"\n\n[host."{mirror}"]\n  capabilities = ["pull", "resolve"]\n')


def test_engine_is_private_and_up(docker_engine, docker_client):
    assert docker_client.ping()
    assert docker_engine.socket.is_socket()
    info = docker_client.info()
    assert info["DockerRootDir"] == str(docker_engine.root / "data")
    assert docker_client.containers.list(all=True) == []
    if os.environ.get("KRC_KEEP_IP_FORWARD") != "1":
        # Nothing a container sends can be routed off this machine while the tier runs.
        assert all(p.read_text().strip() == "0" for p in FORWARDING_SYSCTLS if p.exists())


def test_registry_standin_runs_like_registry_3(docker_client, built_images, test_network):
    image = docker_client.images.get(built_images.registry)
    assert image.attrs["Config"]["Entrypoint"] == ["/entrypoint.sh"]
    assert image.attrs["Config"]["Cmd"] == ["/etc/distribution/config.yml"]
    container = docker_client.containers.run(
        built_images.registry, name="plain-registry", network=test_network, detach=True,
        environment=["REGISTRY_PROXY_TTL=0", "REGISTRY_HTTP_DEBUG_ADDR=:5001",
                     "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED=true"],
        healthcheck={"test": HEALTHCHECK, "interval": 10**9, "retries": 3},
    )
    wait_healthy(container, timeout=30)
    assert exec_ok(container, ["ps"]).count("registry serve /etc/distribution/config.yml") == 1
    log = container.logs().decode()
    if built_images.registry_v3:
        # v3 reads the TTL (tested further in test_real_versions.py) and says which version it is.
        assert "REGISTRY_PROXY_TTL" not in log
        assert f"version={built_images.registry_version}" in log
        assert exec_ok(container, ["registry", "--version"]).split()[-1] == built_images.registry_version
    else:
        # The Debian fallback: 2.8 must not fall over when the program passes this v3-only setting.
        assert "Ignoring unrecognized environment variable REGISTRY_PROXY_TTL" in log
        assert "version=2.8" in log
    assert observe.metric(observe.scrape_metrics(container), "registry_http_in_flight_requests") == 0


def test_fake_upstream_serves_seeded_index(docker_client, built_images, test_network):
    upstream = start_upstream(docker_client, built_images.registry, test_network, "fake-docker-io", auth="none")
    images = {i.reference: i for i in upstream.seed()}
    after_seeding = len(observe.access_log(upstream))
    multi, multi_oci = images["library/multi:1.0"], images["library/multi-oci:1.0"]
    assert (multi.media_type, multi_oci.media_type) == (DOCKER_LIST, OCI_INDEX)
    # The shared base layer is one blob in both images.
    assert set(images["library/alpha:1.0"].blobs()) & set(images["library/beta:1.0"].blobs())
    # Platforms do not share layers, so a platform's pull can be told apart.
    assert not set(multi.blobs("linux/amd64")) & set(multi.blobs("linux/arm64/v8"))

    with requests.Session() as http:
        index = http.get(f"{upstream.host_url}/v2/library/multi/manifests/1.0", headers={"Accept": DOCKER_LIST})
        assert index.headers["Docker-Content-Digest"] == multi.digest
        assert {m["platform"]["architecture"] for m in index.json()["manifests"]} == {"amd64", "arm64"}
        for digest, size in multi.blobs().items():
            blob = http.get(f"{upstream.host_url}/v2/library/multi/blobs/{digest}")
            assert (blob.status_code, len(blob.content)) == (200, size)
    served = observe.access_log(upstream)[after_seeding:]
    assert observe.blob_gets(served) == {digest: 1 for digest in multi.blobs()}
    assert observe.blob_bytes_served(served) == multi.blob_bytes()


def test_token_upstream_checks_the_login(docker_client, built_images, test_network):
    # A private upstream: tokens only for the login; the token grants the scope asked for.
    upstream = start_upstream(docker_client, built_images.registry, test_network, "fake-ghcr-io",
                              username="robot", password="s3cret")
    upstream.seed()
    manifest = f"{upstream.host_url}/v2/library/alpha/manifests/1.0"
    anonymous = requests.get(manifest)
    assert anonymous.status_code == 401
    realm = f"{upstream.host_url}/token"
    assert anonymous.headers["WWW-Authenticate"] == (
        f'Bearer realm="{realm}",service="fake-ghcr-io",scope="repository:library/alpha:pull"')
    assert requests.get(f"{upstream.host_url}/v2/").headers["WWW-Authenticate"] == (
        f'Bearer realm="{realm}",service="fake-ghcr-io"')
    scope = {"service": "fake-ghcr-io", "scope": "repository:library/alpha:pull"}
    assert requests.get(realm, params=scope, auth=("robot", "wrong")).status_code == 401
    assert requests.get(realm, params=scope).status_code == 401  # no anonymous tokens on a private upstream
    token = requests.get(realm, params=scope, auth=("robot", "s3cret")).json()["token"]
    bearer = {"Authorization": f"Bearer {token}", "Accept": DOCKER_LIST}
    assert requests.get(manifest, headers=bearer).status_code == 200
    other = requests.get(f"{upstream.host_url}/v2/library/beta/manifests/1.0", headers=bearer)
    assert other.status_code == 401 and 'error="insufficient_scope"' in other.headers["WWW-Authenticate"]
    assert observe.token_requests(upstream) == {200: 1, 401: 2}


def test_fake_upstream_counts_pulls_as_docker_hub_does(docker_client, built_images, test_network):
    # Docker Hub: a manifest GET is a pull, a HEAD is not; a multi-arch image counts once per architecture
    # (docker/docs content/manuals/docker-hub/usage/pulls.md); 429 TOOMANYREQUESTS once none is left.
    upstream = start_upstream(docker_client, built_images.registry, test_network, "fake-docker-io",
                              limits={"anonymous": 2})
    upstream.seed()
    multi = {i.reference: i for i in upstream.seeded.values()}["library/multi:1.0"]
    realm = f"{upstream.host_url}/token"
    token = requests.get(realm, params={"service": "fake-docker-io", "scope": "repository:library/multi:pull"}).json()
    headers = {"Authorization": f"Bearer {token['token']}", "Accept": f"{DOCKER_LIST}, {OCI_INDEX}"}
    base = f"{upstream.host_url}/v2/library/multi/manifests"
    head = requests.head(f"{base}/1.0", headers=headers)
    assert (head.status_code, head.headers["ratelimit-limit"], head.headers["ratelimit-remaining"]) == (
        200, "2;w=21600", "2;w=21600")
    assert requests.get(f"{base}/1.0", headers=headers).headers["ratelimit-remaining"] == "2;w=21600"  # the index
    amd64, arm64 = (multi.manifests[p][0] for p in ("linux/amd64", "linux/arm64/v8"))
    assert requests.get(f"{base}/{amd64}", headers=headers).headers["ratelimit-remaining"] == "1;w=21600"
    assert requests.get(f"{base}/{arm64}", headers=headers).headers["ratelimit-remaining"] == "0;w=21600"
    refused = requests.get(f"{base}/{amd64}", headers=headers)
    assert refused.status_code == 429 and refused.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert requests.head(f"{base}/1.0", headers=headers).status_code == 200  # a version check still answers
    counts = upstream.counts()
    assert (upstream.docker_pulls(), counts["too_many_requests"], counts["manifest_head"]) == (2, 1, 2)


@pytest.mark.parametrize("login", [None, ("robot", "s3cret")], ids=["anonymous", "token-login"])
def test_node_pulls_through_cache_and_upstream_serves_bytes_once(
    docker_client, built_images, test_network, tmp_path, login,
):
    # With the login, tokens come from another host, as Docker Hub's come from auth.docker.io.
    upstream = start_upstream(docker_client, built_images.registry, test_network, "fake-docker-io",
                              *(login or (None, None)), realm_host=login is not None)
    images = {i.reference: i for i in upstream.seed()}
    after_seeding = len(observe.access_log(upstream))
    cache = create_container_from_inputs(
        docker_client, cache_inputs("cache-docker-io", test_network, upstream.url, login),
        image_map={"registry": built_images.registry})
    wait_healthy(cache, timeout=30)
    write_hosts_toml(tmp_path / "certs.d", "docker.io", upstream.url, "http://cache-docker-io:5000")

    first = start_node(docker_client, built_images.node, test_network, "node-1", tmp_path / "certs.d",
                       patches=[CONFIG_PATH_PATCH])
    wanted = [images["library/multi:1.0"], images["library/alpha:1.0"]]
    for image in wanted:
        result = first.pull(f"docker.io/{image.reference}")
        assert result.ok, result.stderr

    amd64 = {d: s for image in wanted for d, s in image.blobs(NODE_PLATFORM).items()}
    arm64 = set(images["library/multi:1.0"].blobs("linux/arm64/v8"))
    # The node holds the index, the amd64 manifest and every amd64 blob; nothing of arm64.
    content = first.content_digests()
    assert set(amd64) | {d for image in wanted for d in image.manifest_digests(NODE_PLATFORM)} <= content
    assert not arm64 & content

    cache_ip, node_ip = ip_address(cache, test_network), ip_address(first.container, test_network)
    cache_log = observe.access_log(cache)
    assert {e.user_agent.split("/")[0] for e in cache_log if e.remote == node_ip} == {"containerd"}
    assert set(observe.blob_gets(e for e in cache_log if e.remote == node_ip)) == set(amd64)

    pulls = observe.access_log(upstream)[after_seeding:]
    # Only the cache talked to the upstream: the node never fell back to `server`.
    assert {e.remote for e in pulls} == {cache_ip}
    cold = observe.blob_gets(pulls)
    assert set(cold) == set(amd64)  # each amd64 blob went upstream, no arm64 blob did
    # v3 tees one download to the client and its storage; Debian's 2.8 fallback downloads a cold blob twice.
    assert all(1 <= n <= built_images.cold_fetches for n in cold.values()), cold
    if login:
        assert observe.token_requests(upstream)[200] >= 1

    observe.wait_cached(cache, amd64)
    upstream_before = len(observe.access_log(upstream))
    blob_gets_before = observe.metric(observe.scrape_metrics(cache), "registry_http_requests_total",
                                      handler="blob", method="get", code="200")

    # A second node pulls the same images: every byte comes from the cache, none from upstream.
    second = start_node(docker_client, built_images.node, test_network, "node-2", tmp_path / "certs.d",
                        patches=[CONFIG_PATH_PATCH])
    for image in wanted:
        result = second.pull(f"docker.io/{image.reference}")
        assert result.ok, result.stderr
    assert set(amd64) <= second.content_digests()
    warm = observe.access_log(upstream)[upstream_before:]
    assert observe.blob_gets(warm) == {}, "warm pull downloaded blobs from upstream"
    assert {e.kind for e in warm} <= {"manifests", "other"}  # tag freshness checks only
    blob_gets_after = observe.metric(observe.scrape_metrics(cache), "registry_http_requests_total",
                                     handler="blob", method="get", code="200")
    assert blob_gets_after - blob_gets_before == len(amd64)
    published = observe.scrape_metrics_url(f"http://127.0.0.1:{published_port(cache, '5001/tcp')}/metrics")
    assert observe.metric(published, "registry_http_requests_total", handler="blob", method="get",
                          code="200") == blob_gets_after


@pytest.mark.parametrize("patches", [[], ["version = 1\n" + CONFIG_PATH_PATCH]], ids=["no-patch", "v1-patch"])
def test_node_without_config_path_refuses_to_pull(docker_client, built_images, test_network, tmp_path, patches):
    (tmp_path / "certs.d").mkdir()
    with pytest.raises(NodeError, match="config_path"):
        start_node(docker_client, built_images.node, test_network, "node-strict", tmp_path / "certs.d", patches)
    node = start_node(docker_client, built_images.node, test_network, "node-lax", tmp_path / "certs.d", patches,
                      require_config_path=False)
    assert node.hosts_dir == ""
    result = node.pull("docker.io/library/alpha:1.0")
    assert not result.ok and "config_path" in result.stderr


def test_cache_login_to_a_basic_auth_upstream(docker_client, built_images, test_network, tmp_path):
    """An upstream that asks for HTTP basic auth itself (no token server). registry v3.1.1 answers a basic
    challenge with REGISTRY_PROXY_USERNAME/PASSWORD (registry/proxy/proxyregistry.go: ``auth.NewBasicHandler`` on
    the login from proxyauth.go ``configureAuth``), so the pull works; Debian's 2.8 fallback hands the login only
    to Bearer token realms, so its pull fails with the upstream's 401."""
    upstream = start_upstream(docker_client, built_images.registry, test_network, "fake-basic",
                              username="robot", password="s3cret", auth="basic")
    upstream.seed(DEFAULT_IMAGES[:1])
    cache = create_container_from_inputs(
        docker_client, cache_inputs("cache-basic", test_network, upstream.url, ("robot", "s3cret")),
        image_map={"registry": built_images.registry})
    wait_healthy(cache, timeout=30)
    write_hosts_toml(tmp_path / "certs.d", "docker.io", "http://cache-basic:5000", "http://cache-basic:5000")
    node = start_node(docker_client, built_images.node, test_network, "node-1", tmp_path / "certs.d",
                      patches=[CONFIG_PATH_PATCH])
    result = node.pull("docker.io/library/alpha:1.0")
    cache_ip = ip_address(cache, test_network)
    statuses = {e.status for e in observe.access_log(upstream) if e.remote == cache_ip and e.kind != "other"}
    if built_images.registry_v3:
        assert result.ok, result.stderr
        assert 200 in statuses  # the upstream answers nothing but 401 without the login
    else:
        assert not result.ok
        assert statuses == {401}
