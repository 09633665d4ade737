"""What the program relies on in registry v3 and containerd 2.x, on the binaries users run (distribution v3.1.1,
containerd v2.3.1, built from their Go modules by tests/gotools.py): the proxy metrics `cachectl stats` reads, the
TTL values v3 takes, and the CRI config a kind v0.32 node loads from the program's patches. Under Debian's 2.8 / 1.6 fallback each test
checks what that version does instead, so the fallback stays honest about where it differs."""
from __future__ import annotations

import random
import re
import shlex

import pytest

from krc.config import goduration

from . import observe, stack
from .containers import ip_address
from .node import CRI, CRI_IMAGES, start_node

pytestmark = pytest.mark.integration

PLATFORM = "linux/amd64"
#: The 2022-era patch the program never emits (README "It never emits ..."): a mirror in the CRI config itself.
LEGACY_MIRRORS_PATCH = ('[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
                        'endpoint = ["http://kcr-itest-docker-io:5000"]\n')


def _go_ok(text: str) -> bool:
    try:
        goduration.parse(text)
        return True
    except ValueError:
        return False


def ours_accepts(ttl: str) -> bool:
    from krc import config as settings

    try:
        settings.parse(project="kind-registry-cache", stack="itest", home="/home/itest", cache={"ttl": ttl})
    except settings.SettingsError:
        return False
    return True


def registry_verdicts(container, values: list[str]) -> dict[str, bool]:
    """value -> whether the registry in ``container`` starts with ``REGISTRY_PROXY_TTL=<value>`` (its API
    answers) or stops at its configuration (it exits). Each value runs its own ``registry serve`` there, one after
    the other, on a port of its own, with the cache's proxy settings (the upstream answers)."""
    lines = []
    for i, value in enumerate(values):
        port = 6000 + i
        lines.append(
            f"REGISTRY_PROXY_TTL={shlex.quote(value)} REGISTRY_HTTP_ADDR=127.0.0.1:{port} "
            f"REGISTRY_HTTP_DEBUG_ADDR=127.0.0.1:{port + 1000} registry serve /etc/distribution/config.yml "
            f">/tmp/ttl-{i}.log 2>&1 & pid=$!\n"
            f"verdict=timeout; n=0\n"
            f"while [ $n -lt 200 ]; do\n"
            f"  if ! kill -0 $pid 2>/dev/null; then wait $pid; verdict=exit-$?; break; fi\n"
            f"  if wget -q -O /dev/null http://127.0.0.1:{port}/v2/ 2>/dev/null; then verdict=serves; break; fi\n"
            f"  n=$((n+1)); sleep 0.05\n"
            f"done\n"
            f"kill $pid 2>/dev/null; wait $pid 2>/dev/null\n"
            f"echo \"{i} $verdict\"\n")
    result = container.exec_run(["sh", "-c", "".join(lines)])
    out = result.output.decode(errors="replace")
    verdicts = dict(line.split(" ", 1) for line in out.splitlines() if line[:1].isdigit())
    assert len(verdicts) == len(values), out
    assert not [v for v in verdicts.values() if v not in ("serves", "exit-1")], out
    return {value: verdicts[str(i)] == "serves" for i, value in enumerate(values)}


#: Values around what users write, Go's own edge cases and YAML readings of the variable.
TTL_VALUES = [
    "168h", "0", "0s", "+0", "-0", "1h30m", "720h", "90m", "2562047h", "2562048h", "9999999999999h", ".5h", "1.h",
    "+1h", "-1h", "7d", "1w", "1 h", "1H", "1h ", "h", "1.5.h", "12µs", "12μs", "", "3600", "1e3", "0x10", "null",
    "~", "true", "1h-1m",
]
#: What v3 takes but the program refuses on purpose, and why: YAML reads these as something other than a Go
#: duration string (a number of nanoseconds, or "not set" = the 168h default), or a negative duration, which
#: v3 treats as no expiry while "0" says so plainly.
V3_ONLY = {"-0": "negative", "-1h": "negative", "": "YAML: not set", "3600": "YAML: 3600 ns", "1e3": "YAML: 1000 ns",
           "0x10": "YAML: 16 ns", "null": "YAML: not set", "~": "YAML: not set"}


def _random_ttls(count: int, seed: int = 12) -> list[str]:
    """Duration-like strings (seeded, so every run tries the same): numbers, dots, units, signs, blanks."""
    rng = random.Random(seed)
    parts = ["0", "1", "7", "24", "168", "9999999", ".", "h", "m", "s", "ms", "us", "ns", "d", "µs", "+", "-", " "]
    return ["".join(rng.choice(parts) for _ in range(rng.randint(1, 5))) for _ in range(count)]


def test_cache_ttl_validation_matches_what_the_registry_takes(docker_client, built_images, test_network):
    upstream = stack.start_upstream(docker_client, built_images.registry, test_network, "up-ttl")
    container = docker_client.containers.run(
        built_images.registry, ["sleep", "600"], entrypoint=[], name="ttl-check", network=test_network, detach=True,
        environment=[f"REGISTRY_PROXY_REMOTEURL={upstream.url}", "REGISTRY_LOG_LEVEL=info"],
    )
    values = list(dict.fromkeys(TTL_VALUES + _random_ttls(30)))
    verdicts = registry_verdicts(container, values)
    if not built_images.registry_v3:
        # Debian's 2.8 fallback has no proxy TTL: it ignores the variable, whatever it says.
        assert all(verdicts.values()), verdicts
        return
    # The values the issue names, on the real v3.
    assert (verdicts["7d"], verdicts["168h"], verdicts["0"], verdicts["0s"]) == (False, True, True, True)
    for value, v3 in verdicts.items():
        ours = ours_accepts(value)
        # Everything the program accepts, v3 starts with; everything v3 refuses, the program refuses.
        assert not (ours and not v3), f"cache.ttl {value!r}: accepted by the program, refused by registry v3"
        if v3 and not ours:
            assert value in V3_ONLY or not _go_ok(value) and value.strip() != value, (
                f"cache.ttl {value!r}: v3 starts with it, the program refuses it")
    # The deliberate differences are real: v3 does start with each of them.
    assert all(verdicts[value] for value in V3_ONLY)


def test_proxy_metrics_match_the_upstream_access_log(docker_client, built_images, tmp_path):
    """`cachectl stats` reads registry_proxy_* (v3): misses are the upstream's downloads, pulled bytes what it
    sent, requests what the cache served, hits the rest."""
    rec = stack.record(tmp_path / "certs.d")
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry)
    marks = {host: len(observe.access_log(u)) for host, u in upstreams.items()}
    deployed = stack.deploy(docker_client, rec, built_images.registry)
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    stack.pull_all(node)  # cold
    for host in stack.PULLS:
        observe.wait_cached(deployed.caches[host],
                            {d for i in upstreams[host].seeded.values() for d in i.blobs(PLATFORM)})
    node.clear_content()
    stack.pull_all(node)  # warm

    for host in stack.PULLS:
        cache, upstream = deployed.caches[host], upstreams[host]
        samples = observe.scrape_metrics(cache)
        if not built_images.registry_v3:
            # 2.8 has no proxy families: cachectl falls back to /debug/vars (components/cachectl.py).
            assert not [s for s in samples if s.name.startswith("registry_proxy_")]
            assert observe.debug_vars(cache)["registry"]["proxy"]["blobs"]["Requests"] > 0
            continue
        sent = [e for e in observe.access_log(upstream)[marks[host]:] if e.method == "GET" and e.status == 200]
        node_ip = ip_address(node.container, stack.NETWORK)
        # What the node asked (HEAD and GET: containerd resolves a tag with a HEAD of the manifest).
        served = [e for e in observe.access_log(cache)
                  if e.remote == node_ip and e.method in ("GET", "HEAD") and e.status == 200]
        payload = {}
        for image in upstream.seeded.values():
            repo = image.spec.repository
            payload[(repo, image.spec.tag)] = payload[(repo, image.digest)] = len(image.top)
            for digest, body in image.manifests.values():
                payload[(repo, digest)] = len(body)
        for kind, type_ in (("blobs", "blob"), ("manifests", "manifest")):
            up = [e for e in sent if e.kind == kind]
            down = [e for e in served if e.kind == kind]
            got = {name: observe.metric(samples, f"registry_proxy_{name}_total", type=type_)
                   for name in ("requests", "hits", "misses", "pulled_bytes", "pushed_bytes")}
            assert got["misses"] == len(up), (host, kind, got, len(up))
            assert got["pulled_bytes"] == sum(e.size for e in up), (host, kind, got)
            assert got["requests"] == len(down), (host, kind, got, len(down))
            assert got["hits"] == got["requests"] - got["misses"], (host, kind, got)
            if kind == "blobs":
                assert got["pushed_bytes"] == sum(e.size for e in down), (host, kind, got)
            else:
                # A HEAD of a manifest counts its payload as pushed too (v3.1.1 registry/handlers/manifests.go
                # serves HEAD through GetManifest, and proxymanifeststore.go Get calls ManifestPush), although
                # the access log shows no body for it.
                assert got["pushed_bytes"] == sum(payload[(e.repository, e.reference)] for e in down), (host, got)
        blobs = [e for e in sent if e.kind == "blobs"]
        # One cold pull and one warm pull: each blob came from upstream once (v3 tees it to client and storage).
        assert len(blobs) == len({e.reference for e in blobs}) > 0, host


def _errors(status: dict[str, str], built_images) -> set[str]:
    """Plugins in error. Debian's containerd 1.6 also reports its unconfigured devmapper snapshotter in error,
    whatever the config; on 2.x (kind's build tags leave devmapper out) nothing may be."""
    return {k for k, v in status.items()
            if v == "error" and (built_images.containerd_v2 or ".snapshotter." not in k)}


def test_node_config_dump_has_config_path_under_the_cri_images_plugin(docker_client, built_images, tmp_path):
    rec = stack.record(tmp_path / "certs.d")
    stack.create_network(docker_client, rec)
    stack.write_certs(rec)
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    dump = node.container.exec_run(["containerd", "config", "dump"]).output.decode()
    status = node.plugin_status()
    if built_images.containerd_v2:
        # containerd 2.x migrates kind's `version = 2` file: the program's patch on io.containerd.grpc.v1.cri
        # lands in io.containerd.cri.v1.images (what `config dump` of a kind v0.32 node shows).
        assert node.dumped["version"] >= 3  # 2.3.1 dumps version = 4
        assert node.config_path_plugin == CRI_IMAGES
        assert re.search(r"\[plugins\.'io\.containerd\.cri\.v1\.images'\.registry\]\s+config_path = '/etc/containerd/certs\.d'",
                         dump), dump
        assert status[CRI_IMAGES] == status[CRI] == "ok"
        assert status["io.containerd.cri.v1.runtime"] == "ok"  # kind's cri-base.json is in the image
    else:
        assert node.config_path_plugin == CRI and status[CRI] == "ok"
    assert not _errors(status, built_images), _errors(status, built_images)


def test_legacy_mirrors_patch_with_config_path_breaks_the_cri_plugin(docker_client, built_images, tmp_path):
    """Why the program never emits the 2022 recipe: next to config_path (which the program and containerd 2.x
    set) the CRI plugin refuses to load, so a kind node's kubelet would never come up."""
    rec = stack.record(tmp_path / "certs.d")
    stack.create_network(docker_client, rec)
    stack.write_certs(rec)
    patches = [*stack.kind_config(rec)["containerdConfigPatches"], LEGACY_MIRRORS_PATCH]
    (mount,) = stack.kind_config(rec)["nodes"][0]["extraMounts"]
    node = start_node(docker_client, built_images.node, stack.NETWORK, "itest-legacy", tmp_path / "certs.d",
                      patches=patches)
    status = node.plugin_status()
    logs = node.container.logs().decode(errors="replace")
    assert "`mirrors` cannot be set when `config_path` is provided" in logs
    if built_images.containerd_v2:
        assert (status[CRI_IMAGES], status[CRI]) == ("error", "error"), status
    else:
        assert status[CRI] == "error", status

    # The control: the legacy patch alone still loads (deprecated; containerd 2.4 removes it).
    alone = start_node(docker_client, built_images.node, stack.NETWORK, "itest-legacy-alone", None,
                       patches=[LEGACY_MIRRORS_PATCH], require_config_path=False)
    assert not _errors(alone.plugin_status(), built_images)
    assert mount["containerPath"] == "/etc/containerd/certs.d"


def test_stock_registry_panics_offline_and_the_program_entrypoint_starts(docker_client, built_images, tmp_path):
    """The offline start on the registry in use: with its upstream unreachable the image's own entrypoint panics
    (v3.1.1 registry/handlers/app.go, via configureAuth in registry/proxy/proxyauth.go), the program's entrypoint
    (the login through proxy.exec: nothing asked upstream at start) runs it as a pull-through cache."""
    rec = stack.record(tmp_path / "certs.d")
    stack.create_network(docker_client, rec)
    deployed = stack.Deployed(recording=rec, client=docker_client, registry_image=built_images.registry)
    # No upstream is started: every remote is a name nobody answers to.
    caches = stack.deploy_caches(deployed, hosts=["docker.io"])
    cache = caches["docker.io"]
    assert cache.exec_run(["wget", "-q", "-O", "-", "http://127.0.0.1:5000/v2/"]).exit_code == 0
    cache.reload()
    assert cache.attrs["RestartCount"] == 0
    if built_images.registry_v3:
        assert "Registry configured as a proxy cache" in cache.logs().decode(errors="replace")

    inputs = dict(deployed.cache_inputs()["docker.io"])
    inputs.pop("entrypoints")
    inputs |= {"name": "stock-docker-io", "networksAdvanced": [{"name": stack.NETWORK}], "restart": "no"}
    from .containers import create_container_from_inputs

    stock = create_container_from_inputs(docker_client, inputs, image_map=stack.image_map(rec, built_images.registry))
    stock.wait(timeout=60)
    logs = stock.logs().decode(errors="replace")
    assert "panic" in logs, logs[-2000:]
    if built_images.registry_v3:
        assert "registry/handlers/app.go" in logs or "handlers.NewApp" in logs, logs[-2000:]
