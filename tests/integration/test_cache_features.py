"""Warm-up, stats, purge and a shared cache under a path, run for real: the program's recorded caches on the
private engine, ``python -m krc.commands.warmup`` / ``krc.commands.cachectl`` as the program and the README run
them, fake upstreams counting what they serve, and containerd nodes pulling through hosts.toml."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from krc.render.warmup import Plan
from harness import ROOT

from . import observe, stack
from .containers import create_container_from_inputs, ip_address, wait_healthy

pytestmark = pytest.mark.integration

PLATFORM = "linux/amd64"
OWNER = "kind-registry-cache/itest"
#: Every image seeded on the fake upstreams, by its usual name.
IMAGES = [ref for refs in stack.PULLS.values() for ref in refs]


def run(engine, command: list[str], stdin: str = "", cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """A program-run command on the test engine (``DOCKER_HOST``, as the program passes it)."""
    env = {**os.environ, "DOCKER_HOST": engine.base_url}
    return subprocess.run(command, cwd=cwd, input=stdin, env=env, capture_output=True, text=True, timeout=300)


def warm(engine, rec) -> subprocess.CompletedProcess:
    """The recorded warm-up command, run as pulumi-command runs it."""
    inputs = rec.named("warmup-images").inputs
    return run(engine, ["sh", "-c", inputs["create"]], stdin=inputs["stdin"], cwd=Path(inputs["dir"]))


def cachectl(engine, *args: str) -> subprocess.CompletedProcess:
    return run(engine, [sys.executable, "-m", "krc.commands.cachectl", *args])


def stats(engine, *args: str) -> dict:
    done = cachectl(engine, "stats", "--json", "--stack", "itest", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[OWNER]


def upstream_blob_gets(upstream, since: int = 0) -> Counter:
    """(repository, digest) -> successful blob downloads from the fake upstream."""
    entries = observe.access_log(upstream)[since:]
    return Counter((e.repository, e.reference) for e in entries if e.kind == "blobs" and e.method == "GET" and e.status == 200)


def wanted_blobs(upstreams) -> dict[str, dict[tuple[str, str], int]]:
    """Per upstream host: (repository, digest) -> size of every blob a linux/amd64 node pulls."""
    result: dict[str, dict[tuple[str, str], int]] = {}
    for host, upstream in upstreams.items():
        for image in upstream.seeded.values():
            for digest, size in image.blobs(PLATFORM).items():
                result.setdefault(host, {})[(image.spec.repository, digest)] = size
    return result


@pytest.fixture
def certs_dir(tmp_path):
    return tmp_path / "certs.d"


@pytest.fixture
def env(docker_client, built_images, certs_dir):
    """The program's caches for the test stack, the seeded fake upstreams, warm-up of every seeded image."""
    rec = stack.record(certs_dir, warmup={"images": IMAGES})
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry)
    deployed = stack.deploy(docker_client, rec, built_images.registry)
    marks = {host: len(observe.access_log(u)) for host, u in upstreams.items()}
    return rec, upstreams, deployed, marks


def test_warmup_fetches_each_blob_once_then_three_nodes_at_once_fetch_nothing_upstream(
    env, docker_engine, docker_client, built_images,
):
    rec, upstreams, deployed, marks = env
    plan = Plan.from_json(rec.named("warmup-images").inputs["stdin"])
    assert sorted(plan.images) == sorted(IMAGES)

    started = time.monotonic()
    done = warm(docker_engine, rec)
    cold_seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr

    wanted = wanted_blobs(upstreams)
    upstream_bytes = sum(wanted[h][key] * n for h, u in upstreams.items() for key, n in upstream_blob_gets(u, marks[h]).items())
    print(f"warm-up: {upstream_bytes / sum(sum(b.values()) for b in wanted.values()):.2f}x the images' bytes upstream")
    for host, blobs in wanted.items():
        cache = deployed.caches[host]
        # The warm-up asked its cache for each (repository, blob) exactly once, and for no other platform's.
        asked = Counter((e.repository, e.reference) for e in observe.access_log(cache) if e.kind == "blobs")
        assert asked == {key: 1 for key in blobs}, host
        # Only the cache went upstream, once per blob (v3; Debian's 2.8 fallback downloads a cold blob twice).
        fetched = upstream_blob_gets(upstreams[host], marks[host])
        assert set(fetched) == set(blobs), host
        assert all(n <= built_images.cold_fetches for n in fetched.values()), fetched
        assert {e.remote for e in observe.access_log(upstreams[host])[marks[host]:] if e.kind == "blobs"} == {
            ip_address(cache, stack.NETWORK)}
        observe.wait_cached(cache, {d for _, d in blobs})
    after_warmup = {host: len(observe.access_log(u)) for host, u in upstreams.items()}

    # Three nodes pull every image at the same moment: all from the caches.
    nodes = [stack.start_kind_node(docker_client, rec, built_images.node, f"itest-worker{i}") for i in (1, 2, 3)]
    with ThreadPoolExecutor(max_workers=len(nodes) * len(IMAGES)) as pool:
        results = list(pool.map(lambda job: (job[1], job[0].pull(job[1])), [(n, ref) for n in nodes for ref in IMAGES]))
    for ref, result in results:
        assert result.ok, f"{ref}: {result.stderr}"
    for host, upstream in upstreams.items():
        assert upstream_blob_gets(upstream, after_warmup[host]) == {}, f"{host}: a node's pull went upstream for blobs"
    for node in nodes:
        assert {d for blobs in wanted.values() for _, d in blobs} <= node.content_digests(), node.name

    # Warm-up again, on warm caches: no blob is requested at all, and it takes seconds.
    requests_before = {host: len(observe.access_log(c)) for host, c in deployed.caches.items()}
    upstream_before = {host: len(observe.access_log(u)) for host, u in upstreams.items()}
    started = time.monotonic()
    again = warm(docker_engine, rec)
    warm_seconds = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert "0 blobs fetched" in again.stdout
    for host, cache in deployed.caches.items():
        assert not [e for e in observe.access_log(cache)[requests_before[host]:] if e.kind == "blobs"], host
    for host, upstream in upstreams.items():
        # Upstream saw tag checks (HEAD) at most: no manifest or blob was downloaded.
        downloads = [e for e in observe.access_log(upstream)[upstream_before[host]:]
                     if e.method == "GET" and e.kind != "other"]
        assert downloads == [], host
    print(f"warm-up: cold {cold_seconds:.1f}s, warm {warm_seconds:.1f}s")


def test_a_missing_image_fails_the_warmup_with_its_name(docker_engine, docker_client, built_images, certs_dir):
    rec = stack.record(certs_dir, warmup={"images": ["docker.io/library/alpha:1.0", "docker.io/library/nope:9.9"]})
    stack.create_network(docker_client, rec)
    stack.start_upstreams(docker_client, built_images.registry)
    stack.deploy(docker_client, rec, built_images.registry)
    done = warm(docker_engine, rec)
    assert done.returncode == 1
    assert "docker.io/library/nope:9.9: not found" in done.stderr
    assert "docker.io/library/alpha:1.0" not in done.stderr
    assert "docker.io/library/alpha:1.0: 3 blobs, 3 fetched" in done.stdout


def test_stats_match_what_was_pulled_and_survive_the_caches_going_down(env, docker_engine, docker_client, built_images):
    rec, upstreams, deployed, marks = env
    # The fake docker.io counts pulls as Docker Hub does and serves the image Docker checks the limit with.
    upstreams["docker.io"].seed([stack.ImageSpec("ratelimitpreview/test", "latest", (stack.LayerSpec("rl", 1024),))])
    upstreams["docker.io"].seeded.pop("ratelimitpreview/test:latest")  # only ever HEADed: not among what nodes pull
    upstreams["docker.io"].set_limits({"anonymous": 100})
    assert warm(docker_engine, rec).returncode == 0
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    for ref in stack.PULLS["docker.io"]:
        assert node.pull(ref).ok
    cache, upstream = deployed.caches["docker.io"], upstreams["docker.io"]
    node_ip = ip_address(node.container, stack.NETWORK)

    counted = upstream.counts()
    numbers = stats(docker_engine, "--hub-url", upstream.host_url)["docker.io"]
    # What is left of the allowance, read with a HEAD that spends none: the warm-up's two docker.io images
    # (one manifest GET each through the cache) are the only pulls counted.
    assert numbers["dockerHub"] == {"limit": 100, "remaining": 98, "windowSeconds": 21600,
                                    "source": numbers["dockerHub"]["source"], "login": False, "error": None}
    after = upstream.counts()
    assert after.get("docker_pulls:anonymous") == counted.get("docker_pulls:anonymous") == 2
    assert after["manifest_head"] == counted.get("manifest_head", 0) + 1
    # v3 exports registry_proxy_*, which cachectl reads; Debian's 2.8 fallback only /debug/vars.
    assert numbers["source"] == ("registry_proxy_* metrics" if built_images.registry_v3
                                 else "registry 2.8 /debug/vars and HTTP metrics")
    fetched = [e for e in observe.access_log(upstream)[marks["docker.io"]:] if e.method == "GET" and e.status == 200]
    # Misses: each (repository, blob) and each manifest the cache had to download; bytes: what the upstream sent.
    blob_misses = len({(e.repository, e.reference) for e in fetched if e.kind == "blobs"})
    manifest_misses = len({(e.repository, e.reference) for e in fetched if e.kind == "manifests"})
    assert numbers["misses"] == blob_misses + manifest_misses
    assert numbers["bytesFromUpstream"] == sum(e.size for e in fetched if e.kind in ("blobs", "manifests"))
    # Hits: every blob the node pulled came from the cache, with its bytes.
    served = [e for e in observe.access_log(cache) if e.remote == node_ip and e.kind == "blobs" and e.status == 200]
    assert numbers["hits"] >= len(served) > 0
    node_bytes = sum(e.size for e in served)
    assert node_bytes <= numbers["bytesFromCache"] <= node_bytes + sum(
        e.size for e in observe.access_log(cache) if e.kind == "manifests")
    # Disk: what the volume holds.
    stored = observe.cached_blobs(cache)
    assert numbers["storedBlobs"] == len(stored)
    sizes = {d: size for (_, d), size in wanted_blobs(upstreams)["docker.io"].items()}
    assert numbers["diskBytes"] >= sum(sizes.values()) and set(sizes) <= stored
    assert numbers["state"] == "running" and numbers["login"] is False

    # The cluster and the caches down: the volume is still measured.
    cache.stop(timeout=1)
    stopped = stats(docker_engine)["docker.io"]
    assert (stopped["state"], stopped["diskBytes"], stopped["hits"]) == ("exited", numbers["diskBytes"], None)
    stack.remove_caches(deployed)  # what `pulumi destroy` does to them
    gone = stats(docker_engine, "--image", built_images.registry)["docker.io"]
    assert (gone["container"], gone["volume"], gone["diskBytes"]) == (None, "kcr-itest-docker-io", numbers["diskBytes"])

    table = cachectl(docker_engine, "stats", "--stack", "itest", "--image", built_images.registry)
    assert table.returncode == 0 and "docker.io" in table.stdout and "no container" in table.stdout


def test_purge_removes_only_what_was_asked(env, docker_engine, docker_client, built_images):
    rec, upstreams, deployed, _ = env
    assert warm(docker_engine, rec).returncode == 0
    other = docker_client.volumes.create("kcr-other-docker-io", labels={
        "kind-registry-cache.stack": "kind-registry-cache/other", "kind-registry-cache.upstream": "docker.io"})
    quay_before = observe.cached_blobs(deployed.caches["quay.io"])
    assert quay_before and observe.cached_blobs(deployed.caches["docker.io"])

    done = cachectl(docker_engine, "purge", "--stack", "itest", "--upstream", "docker.io")
    assert done.returncode == 0, done.stderr
    hub = deployed.caches["docker.io"]
    wait_healthy(hub, timeout=60)
    with pytest.raises(RuntimeError):
        observe.cached_blobs(hub)  # nothing stored any more
    assert observe.cached_blobs(deployed.caches["quay.io"]) == quay_before

    # The emptied cache fills again from upstream on the next pull, which it serves.
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    mark = len(observe.access_log(upstreams["docker.io"]))
    assert node.pull("docker.io/library/alpha:1.0").ok
    assert upstream_blob_gets(upstreams["docker.io"], mark)

    # After `pulumi destroy` (containers gone), purging all of the stack removes its volumes and nothing else.
    stack.remove_caches(deployed)
    done = cachectl(docker_engine, "purge", "--stack", "itest", "--all", "--image", built_images.registry)
    assert done.returncode == 0, done.stderr
    left = {v.name for v in docker_client.volumes.list()}
    assert not {v for v in left if v.startswith("kcr-itest-")}
    assert other.name in left


def test_shared_cache_behind_a_path_prefix(docker_engine, docker_client, built_images, certs_dir):
    """A team's pull-through cache whose API sits under /team/v2 (as Harbor's under /v2/<project>): nodes pull
    through it with override_path, no local cache is created for that upstream, and the warm-up leaves it alone."""
    shared = "http://team-cache:5000/team/v2"
    rec = stack.record(
        certs_dir, extra_mirrors={"docker.io": {"shared": shared, "remote": stack.remote("docker.io")}},
        warmup={"images": IMAGES},
    )
    assert "cache-docker-io" not in {r.name for r in rec.resources}
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry)
    seeded = len(observe.access_log(upstreams["docker.io"]))
    deployed = stack.deploy(docker_client, rec, built_images.registry)
    assert "docker.io" not in deployed.caches

    # The team's cache: a registry in proxy mode serving its API under the /team/ prefix.
    team_inputs = dict(deployed.cache_inputs()["quay.io"])
    envs = [e for e in team_inputs["envs"] if not e.startswith("REGISTRY_PROXY_REMOTEURL=")]
    team_inputs |= {
        "name": "team-cache", "envs": [*envs, f"REGISTRY_PROXY_REMOTEURL={stack.remote('docker.io')}", "REGISTRY_HTTP_PREFIX=/team/"],
        "networksAdvanced": [{"name": stack.NETWORK, "aliases": ["team-cache"]}], "volumes": [], "labels": [],
        "healthcheck": {**team_inputs["healthcheck"], "interval": "1s"},
    }
    team = create_container_from_inputs(docker_client, team_inputs, image_map=stack.image_map(rec, built_images.registry))
    wait_healthy(team, timeout=60)

    hosts_toml = (certs_dir / "docker.io" / "hosts.toml").read_text()
    assert f'[host."{shared}"]' in hosts_toml and "override_path = true" in hosts_toml

    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    for ref in stack.PULLS["docker.io"]:
        result = node.pull(ref)
        assert result.ok, f"{ref}: {result.stderr}"
    node_ip, team_ip = ip_address(node.container, stack.NETWORK), ip_address(team, stack.NETWORK)
    through_team = [e for e in observe.access_log(team) if e.remote == node_ip]
    assert through_team and all(e.path.startswith("/team/v2/") for e in through_team)
    # The node never fell back to the real upstream: only the team cache talked to it.
    pulled = observe.access_log(upstreams["docker.io"])[seeded:]
    assert {e.remote for e in pulled if e.kind == "blobs"} == {team_ip}

    # The warm-up skips the shared upstream (it is the team's to warm) and still warms the local caches.
    done = warm(docker_engine, rec)
    assert done.returncode == 0, done.stderr
    assert f"skipped docker.io/library/alpha:1.0: docker.io is pulled through the shared cache {shared}" in done.stdout
    assert observe.cached_blobs(deployed.caches["quay.io"])
