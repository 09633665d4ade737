"""Upstreams as they really behave (token auth, rate limits, outages, broken answers): a node pulling cached
images never fails, never-cached images fail fast, and nothing bad is ever stored."""
from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from . import observe, stack
from .containers import ip_address
from .pullloop import REPORT, PullLoop, summarize

pytestmark = pytest.mark.integration

#: What a cached pull may never take, whatever the upstream does: containerd gives a host 30 s to answer
#: before it tries the next (containerd v2.3.1 core/remotes/docker/registry.go DefaultHTTPTransport,
#: ResponseHeaderTimeout), and the next host is the upstream itself.
CACHED_BOUND = 30.0
#: What a pull of a never-cached image may take to fail while the upstreams cannot be reached: the cache answers
#: 404 once its request upstream fails (at once when refused or unresolvable; ~3 s when packets are dropped,
#: registry.SYSCTLS; up to 15 s, v3's token request timeout, on a connection opened before the network died:
#: distribution v3.1.1 internal/client/auth/session.go line 246), then containerd tries the upstream itself
#: (hosts.toml ``server``) and gives that connect 30 s (containerd v2.3.1 core/remotes/docker/registry.go line 258).
UNCACHED_BOUND = 50.0
NEVER_CACHED = "docker.io/library/never-cached:1.0"


@pytest.fixture
def warm(docker_client, built_images, tmp_path):
    """The program's caches, warm for every seeded image (a node pulled them), a second node to pull with,
    and the refs it pulls: every image by tag and by digest."""
    rec = stack.record(tmp_path / "certs.d")
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry)
    deployed = stack.deploy(docker_client, rec, built_images.registry)
    first = stack.start_kind_node(docker_client, rec, built_images.node, "itest-control-plane")
    stack.pull_all(first)
    digests = {f"{host}/{image.reference}": image.digest for host, upstream in upstreams.items()
               for image in upstream.seeded.values()}
    refs = [ref for refs in stack.PULLS.values() for ref in refs]
    refs += [f"{ref}@{digests[ref]}" for ref in refs]
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-worker")
    return rec, upstreams, deployed, node, refs, first


def _everywhere(upstreams, fault: str, *args) -> None:
    for upstream in upstreams.values():
        getattr(upstream, fault)(*args)


def _heal(upstreams) -> None:
    for upstream in upstreams.values():
        upstream.heal()


#: (phase, what every upstream does, seconds): each fault, then the upstreams good again.
FAULTS = (
    ("refused", ("refuse",), 20),
    ("blackholed", ("blackhole",), 45),
    ("unresolvable", ("unresolvable",), 20),
    ("5xx", ("fail", 503), 15),
    ("slow link (64 kbit/s)", ("slow", 64_000), 15),
)


def test_cached_pulls_never_fail_whatever_the_upstreams_do(warm):
    rec, upstreams, deployed, node, refs, other = warm
    uncached: dict[str, tuple[bool, float, str]] = {}
    with PullLoop(node, refs) as loop, _reported(loop, uncached):
        loop.hold("good", 8)
        for phase, (fault, *args), seconds in FAULTS:
            _everywhere(upstreams, fault, *args)
            loop.phase = phase
            started = time.monotonic()
            result = other.pull(NEVER_CACHED)
            uncached[phase] = (result.ok, result.seconds, (result.stderr.strip().splitlines() or ["?"])[-1])
            time.sleep(max(0.0, seconds - (time.monotonic() - started)))
            _heal(upstreams)
            loop.hold(f"after {phase}", 8)
        # Docker Hub's allowance used up: tags are checked with HEAD (never counted), so nothing changes.
        upstreams["docker.io"].set_limits({"anonymous": 0})
        loop.hold("rate-limited (429)", 12)
        upstreams["docker.io"].set_limits({})
        # Gone entirely (containers stopped: address and name gone), then back.
        _everywhere(upstreams, "stop")
        loop.hold("upstreams stopped", 20)
        _everywhere(upstreams, "start")
        loop.hold("after upstreams stopped", 10)


    failed = [r for r in loop.records if not r.ok]
    assert not failed, "\n".join(f"{r.phase}: {r.ref}: {r.error}" for r in failed[:10])
    assert all(r.seconds < CACHED_BOUND for r in loop.records)
    # Every pull came from the caches: no upstream ever saw the pulling node (containerd's fallback to `server`).
    node_ip = ip_address(node.container, stack.NETWORK)
    assert not [e for u in upstreams.values() for e in observe.access_log(u) if e.remote == node_ip]
    assert all(not ok and seconds < UNCACHED_BOUND for ok, seconds, _ in uncached.values()), uncached


@contextlib.contextmanager
def _reported(loop: PullLoop, uncached: dict[str, tuple[bool, float, str]]):
    """On the way out (failed or not), what each phase's pulls took goes to the tier's summary."""
    try:
        yield
    finally:
        REPORT.append("cached pulls (a node pulling 4 cached images by tag and by digest, over and over):")
        for phase in dict.fromkeys(r.phase for r in loop.records):
            records = loop.of(phase)
            REPORT.append(f"  {phase}: {summarize(records)}")
            REPORT.extend(f"    failed: {r.ref}: {r.error[-200:]}" for r in records if not r.ok)
        REPORT.append(f"never-cached {NEVER_CACHED} during each fault:")
        for phase, (ok, seconds, error) in uncached.items():
            REPORT.append(f"  {phase}: {'pulled?!' if ok else 'failed'} after {seconds:.1f} s: {error[-200:]}")


def _stored_ok(cache, digests) -> dict[str, bool]:
    """digest -> whether the cache stores it with bytes that hash to it ({} entries for what it does not store)."""
    stored = observe.cached_blobs(cache) if digests else set()
    result = {}
    for digest in set(digests) & stored:
        hex_ = digest.split(":", 1)[1]
        out = cache.exec_run(["sha256sum", f"/var/lib/registry/docker/registry/v2/blobs/sha256/{hex_[:2]}/{hex_}/data"])
        result[digest] = out.output.decode().split()[0] == hex_
    return result


BROKEN = {
    # fault -> (image, what the upstream does to it)
    "truncated": ("library/truncated", "truncate_blobs"),
    "corrupt": ("library/corrupt", "corrupt_blobs"),
    "cut mid-pull": ("library/cut", "cut"),
    "rate-limited (429)": ("library/limited", "limit"),
}


def test_broken_upstream_blobs_are_never_stored_and_the_next_pull_works(docker_client, built_images, tmp_path):
    rec = stack.record(tmp_path / "certs.d")
    stack.create_network(docker_client, rec)
    upstreams = stack.start_upstreams(docker_client, built_images.registry)
    upstream = upstreams["docker.io"]
    images = {i.spec.repository: i for i in upstream.seed([
        stack.ImageSpec(repository, "1.0", (stack.LayerSpec(repository, 4 * 1024 * 1024),))
        for repository, _ in BROKEN.values()])}
    deployed = stack.deploy(docker_client, rec, built_images.registry)
    cache = deployed.caches["docker.io"]
    node = stack.start_kind_node(docker_client, rec, built_images.node, "itest-worker")
    for what, (repository, fault) in BROKEN.items():
        image, ref = images[repository], f"docker.io/{repository}:1.0"
        layer = max(image.blobs(), key=image.blobs().get)
        if fault == "cut":
            # The connection closes while the 4 MiB layer streams at 4 Mbit/s (~8 s): an outage mid-pull.
            upstream.slow(4_000_000)
            with ThreadPoolExecutor(max_workers=1) as pool:
                pulling = pool.submit(node.pull, ref)
                time.sleep(3)  # manifests and config take well under a second; the layer streams for ~8 s
                upstream.cut()
                upstream.refuse()
                result = pulling.result()
        elif fault == "limit":
            upstream.set_limits({"anonymous": 0})
            result = node.pull(ref)
            upstream.set_limits({})
            # What the user sees is containerd's "unknown error"; the cache's log says why.
            said = [line for line in cache.logs().decode(errors="replace").splitlines() if "toomanyrequests" in line]
            REPORT.append(f"rate-limited cold pull, containerd: {result.stderr.strip()[-300:]}")
            at = said[-1].find("toomanyrequests") if said else 0
            REPORT.append(f"rate-limited cold pull, the cache's log: {said[-1][max(0, at - 120):at + 200] if said else '-'}")
            assert said, "the cache's log names the rate limit"
        else:
            getattr(upstream, fault)()
            result = node.pull(ref)
        REPORT.append(f"{what} upstream blob: the pull {'worked?!' if result.ok else 'failed'} after "
                      f"{result.seconds:.1f} s: {(result.stderr.strip().splitlines() or ['?'])[-1][-200:]}")
        assert not result.ok, what
        # Nothing of it stored, so nothing of it served later: the next request goes upstream again.
        assert layer not in _stored_ok(cache, [layer]), what
        upstream.heal()
        node.clear_content()
        again = node.pull(ref)
        assert again.ok, f"{what}: {again.stderr}"
        observe.wait_cached(cache, image.blobs())
        assert _stored_ok(cache, image.blobs()) == {d: True for d in image.blobs()}, what
