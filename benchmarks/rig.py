"""``python -m benchmarks.run``: what the caches buy and what they cost, as ratios measured in one run.

On a private Docker engine (the integration tier's: tests/integration/engine.py), with the integration tier's
pieces imported, not copied:

- fake upstreams for quay.io and registry.k8s.io (plain distribution registries) seeded with generated images
  named and sized like the add-ons' (benchmarks/imageset.py), their link shaped with ``tbf`` in their own network
  namespace (and a delay added by benchmarks/delayproxy.py, since this kernel has no netem);
- the caches, their certs (hosts.toml) and the node containerd config exactly as the program records them under
  mocks (tests/integration/stack.py), the warm-up as the program's recorded command;
- containerd nodes pulling through hosts.toml (``ctr content fetch``), a plain local registry holding the same
  images, and a node pulling from the upstreams directly.

Every timing is repeated; ratios are taken per run (both sides measured in that run) and reported as median and
min–max. Results go to ``<out>/<name>.md``, ``.json`` and ``.png``. Not part of the test run. See README "Benchmark".
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import requests

from . import imageset, shaping
from .stats import paired_ratios, summarize

ROOT = Path(__file__).resolve().parent.parent

#: Its own engine folder and subnet, so a benchmark never meets a test run's engine (/tmp/krc-dockerd,
#: 172.28.0.0/24) or the stack tests' 172.27.0.0/24.
DEFAULT_ENGINE_DIR = "/tmp/krc-bench-engine"
DEFAULT_SUBNET = "172.26.0.0/24"
#: The real binaries beside a CI checkout (<ci>/p and <ci>/shared), as .ci/run uses them.
DEFAULT_THIRDPARTY = ROOT.parent / "shared" / "thirdparty"
#: The platform nodes pull (the images also hold linux/arm64).
PLATFORM = "linux/amd64"
#: The upstream hosts the add-ons' images come from; the other default mirrors are removed for the benchmark.
HOSTS = ("quay.io", "registry.k8s.io")
#: Port of the delay relay inside each upstream's network namespace (the registry itself listens on 5000).
DELAY_PORT = 5080
LOCAL_REGISTRY = "bench-local-registry"
#: A one-layer image on each upstream whose layer the shaping check downloads (a byte range of it).
PROBE_REPOSITORY = "bench/link-probe"
#: The caches' debug port (health, metrics), as krc/render/registry.py configures it.
DEBUG_PORT = 5001


class BypassError(RuntimeError):
    """A node's pull did not go through the cache: the run measured something else and is discarded."""


#: Attempts per run: a run whose pull bypassed a cache is done again, once.
ATTEMPTS = 2


def attempt(bench: "Bench", what: str, run):
    """``run()``, again once if a pull bypassed a cache (the discarded run is counted in the results)."""
    for number in range(1, ATTEMPTS + 1):
        try:
            return run()
        except BypassError as error:
            bench.discarded.append(f"{what}: {str(error).splitlines()[0]}")
            bench.discarded_details.append(f"{what}: {error}")
            log(f"  discarded ({what}): {str(error).splitlines()[0]}")
            if number == ATTEMPTS:
                raise


@dataclass(frozen=True)
class Profile:
    """How much to measure."""

    name: str
    scale: float
    reps: int
    amp_reps: int
    node_counts: tuple[int, ...]
    program_runs: int
    #: added to every upstream round trip, tc units
    delay: str
    #: seconds each shaping probe downloads for
    probe_seconds: float
    #: repositories pulled (None: all seven)
    images: tuple[str, ...] | None = None


#: An eighth of the add-ons' real sizes (56 MiB per node): about seven minutes on 2 cores.
DEFAULT = Profile("default", scale=0.125, reps=3, amp_reps=2, node_counts=(1, 3, 6), program_runs=5, delay="40ms",
                  probe_seconds=2.0)
#: A check of the whole machinery in under a minute: one image per add-on at 2%, two runs, no added delay
#: unless --delay says so. Its numbers are dominated by fixed per-pull costs: not results.
QUICK = Profile("quick", scale=0.02, reps=2, amp_reps=1, node_counts=(1, 3), program_runs=2, delay="0",
                probe_seconds=0.25, images=imageset.ONE_PER_ADDON)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="What the caches buy and what they cost, as ratios measured in one run (see README: Benchmark).")
    parser.add_argument("--quick", action="store_true", help="small images, for a run under a minute")
    parser.add_argument("--rate", default="50mbit", help="the upstream link's rate (tc units; default 50mbit)")
    parser.add_argument("--second-rate", default="200mbit", help="a second rate for the speedup (default 200mbit)")
    parser.add_argument("--amp-rate", default=None,
                        help="rate while measuring upstream amplification (default: the second rate)")
    parser.add_argument("--delay", default=None,
                        help=f"added to every upstream round trip (default {DEFAULT.delay}; --quick: {QUICK.delay})")
    parser.add_argument("--scale", type=float, default=None,
                        help="layer size factor; 1 = the add-ons' real sizes, about 450 MiB "
                             f"(default {DEFAULT.scale}, --quick {QUICK.scale})")
    parser.add_argument("--reps", type=int, default=None,
                        help=f"timed runs per measure (default {DEFAULT.reps}, --quick {QUICK.reps})")
    parser.add_argument("--amp-reps", type=int, default=None,
                        help=f"runs per amplification case (default {DEFAULT.amp_reps}, --quick {QUICK.amp_reps})")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="results folder")
    parser.add_argument("--name", default=None, help="file name of the results (default latest, --quick: quick)")
    parser.add_argument("--engine-dir", default=os.environ.get("KRC_BENCH_DOCKERD_DIR", DEFAULT_ENGINE_DIR),
                        help=f"the private dockerd's folder (default {DEFAULT_ENGINE_DIR})")
    parser.add_argument("--subnet", default=os.environ.get("KRC_BENCH_SUBNET", DEFAULT_SUBNET),
                        help=f"subnet of the benchmark's docker network (default {DEFAULT_SUBNET})")
    parser.add_argument("--thirdparty-dir", default=os.environ.get("KRC_THIRDPARTY_DIR") or (
                            str(DEFAULT_THIRDPARTY) if DEFAULT_THIRDPARTY.is_dir() else ""),
                        help="folder with the real registry v3 / containerd v2 binaries (as the integration tier's "
                             f"KRC_THIRDPARTY_DIR; default {DEFAULT_THIRDPARTY} when it exists; '' for the fallback)")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else DEFAULT
    args.profile = Profile(
        profile.name,
        scale=args.scale if args.scale is not None else profile.scale,
        reps=args.reps if args.reps is not None else profile.reps,
        amp_reps=args.amp_reps if args.amp_reps is not None else profile.amp_reps,
        node_counts=profile.node_counts,
        program_runs=profile.program_runs,
        delay=args.delay if args.delay is not None else profile.delay,
        probe_seconds=profile.probe_seconds,
        images=profile.images,
    )
    args.name = args.name or ("quick" if args.quick else "latest")
    args.rate_bits = shaping.parse_rate(args.rate)
    args.second_rate_bits = shaping.parse_rate(args.second_rate)
    args.amp_rate_bits = shaping.parse_rate(args.amp_rate) if args.amp_rate else args.second_rate_bits
    args.delay_seconds = shaping.parse_delay(args.profile.delay)
    if args.profile.reps < 1 or args.profile.amp_reps < 1:
        parser.error("--reps and --amp-reps must be at least 1")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def baseline_hosts_toml(url: str) -> str:
    """hosts.toml sending a node straight to ``url`` (the baselines: no cache in between)."""
    return f'server = "{url}"\n\n[host."{url}"]\n  capabilities = ["pull", "resolve"]\n'


# --- program evaluation ------------------------------------------------------------------------

_PROGRAM_SCRIPT = """
import json, sys, time
started = time.perf_counter()
sys.path[:0] = [{root!r}, {tests!r}]
from harness import run_program
imported = time.perf_counter() - started
runs = []
for _ in range({runs}):
    begin = time.perf_counter()
    recording = run_program("dev")
    runs.append(time.perf_counter() - begin)
print("KRC-BENCH " + json.dumps({{"import": imported, "runs": runs, "resources": len(recording.resources)}}))
"""


def measure_program(runs: int) -> dict[str, Any]:
    """The whole program under mocks for the dev stack, in a fresh interpreter: the first evaluation (the
    components' imports included) and the following ones."""
    script = _PROGRAM_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), runs=runs + 1)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("KRC-BENCH ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"program evaluation failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    data = json.loads(lines[-1].split(" ", 1)[1])
    return {"import_seconds": data["import"], "first_seconds": data["runs"][0],
            "seconds": summarize(data["runs"][1:]).to_dict(), "resources": data["resources"]}


# --- the setup on the private engine ----------------------------------------------------------


class Bench:
    """Everything the measurements use, on the private engine; :meth:`close` ends what it started."""

    def __init__(self, args: argparse.Namespace) -> None:
        # The integration tier reads KRC_TEST_SUBNET when it is imported: set it to the benchmark's own first.
        os.environ["KRC_TEST_SUBNET"] = args.subnet
        # Where the registry and containerd binaries come from (tests/integration/images.py).
        os.environ["KRC_THIRDPARTY_DIR"] = args.thirdparty_dir
        for path in (str(ROOT), str(ROOT / "tests")):
            if path not in sys.path:
                sys.path.insert(0, path)
        from integration import containers, engine, images, node, observe, stack, upstreams

        self.m = SimpleNamespace(containers=containers, engine=engine, images=images, node=node, observe=observe,
                                 stack=stack, upstreams=upstreams)
        self.args = args
        self.images = imageset.image_set(args.profile.scale, args.profile.images)
        self.proxies: list[subprocess.Popen] = []
        #: runs done again because a pull bypassed a cache, and why
        self.discarded: list[str] = []
        #: node name -> (image, ctr's result) of its last pull_all, for diagnostics
        self.last_pulls: dict[str, list] = {}
        self.discarded_details: list[str] = []
        #: the rate the upstreams are shaped to and its probes
        self.rate: tuple[int, list[dict[str, Any]]] | None = None
        self.engine = None
        self.work = Path(args.engine_dir) / "bench"

    # setup

    def start(self) -> None:
        m, args = self.m, self.args
        log(f"starting the private engine in {args.engine_dir} (network {args.subnet})")
        self.engine = m.engine.start_engine(root=Path(args.engine_dir))
        self.client = self.engine.client
        built = m.images.ensure_images(self.client)
        self.built = built
        self.registry_image, self.node_image = built.registry, built.node
        log(built.summary.replace("integration tier", "benchmark"))

        port = DELAY_PORT if args.delay_seconds > 0 else 5000
        self.upstream_urls = {host: f"http://{m.stack.UPSTREAMS[host]}:{port}" for host in HOSTS}
        removed = {host: None for host in [*m.stack.UPSTREAMS, *m.stack.SERVED_FROM] if host not in HOSTS}
        if self.work.exists():
            subprocess.run(["rm", "-rf", str(self.work)], check=True)
        self.work.mkdir(parents=True)
        certs = self.work / "certs.d"
        log("recording the program under mocks (caches, certs, kind config, warm-up)")
        self.rec = m.stack.record(
            certs, extra_mirrors={**self.upstream_urls, **removed},
            warmup={"images": [i.reference for i in self.images], "replace": True, "platform": PLATFORM},
        )
        m.stack.create_network(self.client, self.rec)

        log(f"seeding {len(self.images)} images ({self.image_bytes / imageset.MiB:.0f} MiB for "
            f"{PLATFORM}, scale {args.profile.scale}) on the upstreams and the local registry")
        specs = {host: self._specs(host) for host in HOSTS}
        names = {**{host: m.stack.UPSTREAMS[host] for host in HOSTS}, "local": LOCAL_REGISTRY}

        probe_bytes = int(max(args.rate_bits, args.second_rate_bits) / 8 * args.profile.probe_seconds) + 1024
        probe = m.upstreams.ImageSpec(PROBE_REPOSITORY, "1", (m.upstreams.LayerSpec("link-probe", probe_bytes),))

        def seeded(key: str):
            registry = m.upstreams.start_upstream(self.client, self.registry_image, m.stack.NETWORK, names[key])
            registry.seed([spec for host in HOSTS if key in (host, "local") for spec in specs[host]])
            if key != "local":
                registry.seed([probe])
            return registry

        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            started = dict(zip(names, pool.map(seeded, names)))
        self.local = started.pop("local")
        self.upstreams = started
        self.blobs = {host: {d: s for image in self.upstreams[host].seeded.values()
                             if image.spec.repository != PROBE_REPOSITORY
                             for d, s in image.blobs(PLATFORM).items()} for host in HOSTS}
        # How nodes name the images: by digest as the Cilium and ingress-nginx charts pin them
        # (repository:tag@digest of the index), or by tag alone (MetalLB's chart; README "Benchmark").
        digests = {(host, image.spec.repository): image.digest for host in HOSTS
                   for image in self.upstreams[host].seeded.values()}
        self.refs = {"digest": [f"{i.reference}@{digests[(i.host, i.repository)]}" for i in self.images],
                     "tag": [i.reference for i in self.images]}
        #: reference -> bytes of the blobs a node pulls for it (per-image pull times are fitted against these)
        self.ref_bytes = {}
        for host in HOSTS:
            for image in self.upstreams[host].seeded.values():
                for by in ("digest", "tag"):
                    for ref in self.refs[by]:
                        if ref.startswith(f"{host}/{image.spec.repository}:"):
                            self.ref_bytes[ref] = image.blob_bytes(PLATFORM)

        if args.delay_seconds > 0:
            for upstream in self.upstreams.values():
                self._start_delay(upstream)
        log("starting the caches and nodes")

        self.deployed = m.stack.Deployed(recording=self.rec, client=self.client, registry_image=self.registry_image)
        m.stack.deploy_caches(self.deployed)
        m.stack.write_certs(self.rec)

        patches = m.stack.kind_config(self.rec)["containerdConfigPatches"]
        direct_certs, local_certs = self.work / "direct.d", self.work / "local.d"
        local_url = f"http://{LOCAL_REGISTRY}:5000"
        for host in HOSTS:
            for folder, url in ((direct_certs, self.upstream_urls[host]), (local_certs, local_url)):
                (folder / host).mkdir(parents=True, exist_ok=True)
                (folder / host / "hosts.toml").write_text(baseline_hosts_toml(url))

        def baseline(name_and_certs):
            name, certs_dir = name_and_certs
            return m.node.start_node(self.client, self.node_image, m.stack.NETWORK, name, certs_dir, patches=patches)

        def worker(i: int):
            return m.stack.start_kind_node(self.client, self.rec, self.node_image, f"bench-worker{i}")

        with ThreadPoolExecutor(max_workers=4) as pool:
            baselines = pool.map(baseline, [("bench-direct", direct_certs), ("bench-local", local_certs)])
            workers = pool.map(worker, range(1, max(args.profile.node_counts) + 1))
            self.direct_node, self.local_node = baselines
            self.nodes = list(workers)

    def _specs(self, host: str):
        ImageSpec, LayerSpec = self.m.upstreams.ImageSpec, self.m.upstreams.LayerSpec
        return tuple(ImageSpec(i.repository, i.tag, tuple(LayerSpec(n, s) for n, s in i.layers),
                               platforms=imageset.PLATFORMS, oci=True) for i in self.images if i.host == host)

    @property
    def image_bytes(self) -> int:
        """Bytes of the config and layer blobs a node pulls (one platform, every image)."""
        if hasattr(self, "blobs"):
            return sum(sum(b.values()) for b in self.blobs.values())
        return sum(i.layer_bytes for i in self.images)

    def _start_delay(self, upstream) -> None:
        pid = self._pid(upstream.container)
        process = subprocess.Popen(
            ["nsenter", "-t", str(pid), "-n", sys.executable, "-m", "benchmarks.delayproxy",
             "--listen", f"0.0.0.0:{DELAY_PORT}", "--target", "127.0.0.1:5000",
             "--delay", str(self.args.delay_seconds)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.proxies.append(process)
        line = process.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"delay relay in {upstream.name} did not start: {line} {process.stderr.read()}")

    def _pid(self, container) -> int:
        container.reload()
        return int(container.attrs["State"]["Pid"])

    def set_rate(self, bits: int) -> list[dict[str, Any]]:
        """Shape every upstream's eth0 to ``bits``, then check it: a ranged download of the probe layer straight
        from each upstream (its published port, no delay relay) for about ``probe_seconds``."""
        if self.rate is not None and self.rate[0] == bits:
            return self.rate[1]
        probes = []
        for upstream in self.upstreams.values():
            qdisc = shaping.apply_rate(self._pid(upstream.container), bits)
            (image,) = [i for i in upstream.seeded.values() if i.spec.repository == PROBE_REPOSITORY]
            digest = max(image.blobs().items(), key=lambda item: item[1])[0]  # the layer, not the config
            size = int(bits / 8 * self.args.profile.probe_seconds)
            started = time.monotonic()
            with requests.get(f"{upstream.host_url}/v2/{PROBE_REPOSITORY}/blobs/{digest}", stream=True, timeout=120,
                              headers={"Range": f"bytes=0-{size - 1}"}) as response:
                response.raise_for_status()
                received = sum(len(chunk) for chunk in response.iter_content(256 * 1024))
            seconds = time.monotonic() - started
            probes.append({"rate_bits": bits, "upstream": upstream.name, "bits": received * 8 / seconds,
                           "bytes": received, "qdisc": qdisc})
            log(f"{upstream.name}: {qdisc}; probe {received / 1e6:.1f} MB at "
                f"{shaping.format_rate(received * 8 / seconds)}")
        self.rate = (bits, probes)
        return probes

    def close(self) -> None:
        """End the relays (by their process), remove the containers (in parallel), stop the engine."""
        if self.discarded:
            (self.work / "discarded.log").write_text("\n\n".join(self.discarded_details))
        for process in self.proxies:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        if self.engine is not None:
            log("stopping the private engine")
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda c: c.remove(force=True, v=True), self.client.containers.list(all=True)))
            self.m.engine.stop_engine(self.engine)

    # actions

    def fresh_caches(self) -> None:
        """Empty caches, as after a first `pulumi up`: containers and volumes recreated from the recording."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda c: c.remove(force=True, v=True), self.deployed.caches.values()))
        self.deployed.caches.clear()
        for volume in self.rec.of_type("docker:index/volume:Volume"):
            try:
                self.client.volumes.get(volume.inputs["name"]).remove(force=True)
            except Exception:  # noqa: BLE001 - absent already
                pass
        self.m.stack.deploy_caches(self.deployed, wait=False)
        for container in self.deployed.caches.values():
            self._wait_ready(container)

    def _wait_ready(self, container, timeout: float = 60.0) -> None:
        """Until the registry answers its health check (what Docker's check runs, without its 1 s interval) and
        its API: the debug port opens a moment before the API, and a node finding the API closed goes to the
        upstream directly (the ``server`` of hosts.toml) for that whole image."""
        deadline = time.monotonic() + timeout
        checks = [f"http://127.0.0.1:{DEBUG_PORT}/debug/health", "http://127.0.0.1:5000/v2/"]
        while any(container.exec_run(["wget", "-q", "-O", "/dev/null", url]).exit_code != 0 for url in checks):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{container.name} did not answer:\n{container.logs(tail=20).decode()}")
            time.sleep(0.1)

    def pull_all(self, node, by: str = "digest") -> float:
        """Every image on ``node``, one after the other (kubelet pulls serially by default), named by ``digest``
        (as the charts pin them) or ``tag``; seconds."""
        node.clear_content()
        started = time.monotonic()
        self.last_pulls[node.name] = []
        for ref in self.refs[by]:
            result = node.pull(ref, platform=PLATFORM)
            self.last_pulls[node.name].append((ref, result))
            if not result.ok:
                raise RuntimeError(f"{node.name}: pull {ref} failed: {result.stderr.strip()}")
        return time.monotonic() - started

    def entries(self, container) -> list:
        """Every request ``container``'s registry has logged, up to now (observe.access_log reads the log once a
        marker request shows in it: Docker copies log lines a moment late)."""
        return self.m.observe.access_log(container)

    def _logs(self, containers: dict[str, Any], since: dict[str, int] | None = None) -> dict[str, list]:
        """``entries`` of several registries at once (each read waits for its own marker), from ``since``."""
        with ThreadPoolExecutor(max_workers=len(containers) or 1) as pool:
            read = dict(zip(containers, pool.map(self.entries, containers.values())))
        return {key: entries[(since or {}).get(key, 0):] for key, entries in read.items()}

    def _upstream_containers(self) -> dict[str, Any]:
        return {host: u.container for host, u in self.upstreams.items()}

    def marks(self) -> dict[str, int]:
        return {host: len(entries) for host, entries in self._logs(self._upstream_containers()).items()}

    def cache_marks(self) -> dict[str, int]:
        return {host: len(entries) for host, entries in self._logs(self.deployed.caches).items()}

    def upstream_requests(self, since: dict[str, int]) -> list:
        """The requests the upstreams served since ``since``."""
        return [e for entries in self._logs(self._upstream_containers(), since).values() for e in entries]

    def upstream_bytes(self, since: dict[str, int]) -> int:
        """Blob bytes the upstreams sent since ``since`` (their access logs)."""
        return self.m.observe.blob_bytes_served(self.upstream_requests(since))

    def cache_blob_bytes(self, since: dict[str, int]) -> int:
        """Blob bytes the caches served since ``since`` (their access logs)."""
        return sum(self.m.observe.blob_bytes_served(entries)
                   for entries in self._logs(self.deployed.caches, since).values())

    def around_caches(self, node, since: dict[str, int]) -> dict[str, set[str]]:
        """Per upstream host, the blobs ``node`` holds but did not get from its cache since ``since``: containerd
        fetched them from the upstream itself (the next host in hosts.toml) after the cache did not answer."""
        ip = self.m.containers.ip_address(node.container, self.m.stack.NETWORK)
        logs = self._logs(self.deployed.caches, since)
        missing = {}
        for host in self.deployed.caches:
            served = {e.reference for e in logs[host]
                      if e.kind == "blobs" and e.method == "GET" and e.status == 200 and e.remote == ip}
            missing[host] = set(self.blobs[host]) - served
        return missing

    def check_through_caches(self, node, since: dict[str, int]) -> None:
        """Raise unless the caches served ``node`` every blob since ``since``: a timing of "through the cache"
        in which the node went around it measured something else."""
        for host, missing in self.around_caches(node, since).items():
            if missing:
                cache = self.deployed.caches[host]
                errors = [f"{e.method} {e.reference} {e.status}" for e in self._logs({host: cache}, since)[host]
                          if e.kind == "blobs" and e.status >= 400]
                pulls = "\n".join(f"{ref}: exit {r.exit_code}, {r.seconds:.2f}s\n{r.stdout[-1500:]}{r.stderr[-500:]}"
                                  for ref, r in self.last_pulls.get(node.name, []))
                raise BypassError(
                    f"{node.name} did not get {len(missing)} blob(s) from {cache.name} (its failed blob requests: "
                    f"{errors[-3:]})\nits pulls:\n{pulls}\nthe cache's log ends with:\n"
                    + cache.logs(tail=40).decode(errors="replace"))

    def wait_stored(self, bits: int) -> None:
        """Until the caches hold every blob (v3 stores a blob as it streams it; Debian's 2.8 fallback stores it
        with a second download that may outlast the client's)."""
        timeout = 60 + 3 * self.image_bytes * 8 / bits
        for host, cache in self.deployed.caches.items():
            self.m.observe.wait_cached(cache, self.blobs[host], timeout=timeout)

    def warm_up(self) -> str:
        """The program's recorded warm-up command, run as pulumi-command runs it."""
        inputs = self.rec.named("warmup-images").inputs
        done = subprocess.run(["sh", "-c", inputs["create"]], input=inputs["stdin"], cwd=inputs["dir"],
                              env={**os.environ, "DOCKER_HOST": self.engine.base_url},
                              capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"warm-up failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout


# --- measurements ------------------------------------------------------------------------------


def measure_link(bench: Bench, bits: int, reps: int, local: bool = True) -> dict[str, Any]:
    """At one link rate: direct, cold through the cache, warm through the cache and (``local``) from the local
    registry, ``reps`` times."""
    log(f"link {shaping.format_rate(bits)}")
    probes = bench.set_rate(bits)
    times: dict[str, list[float]] = {"direct": [], "cold": [], "warm": [],
                                     **({"local": [], "warm_tag": [], "local_tag": []} if local else {})}
    cold_upstream: list[float] = []
    warm_requests: list[float] = []
    tag_requests: list[float] = []
    requests: dict[str, list[float]] = {"direct": [], "cold": []}
    cold_by_kind: list[dict[str, int]] = []
    warm_per_image: list[list[float]] = []
    direct_by_kind: list[dict[str, int]] = []
    for rep in range(reps):
        def one_run() -> dict[str, float]:
            got: dict[str, float] = {}

            def direct() -> None:
                marks = bench.marks()
                got["direct"] = bench.pull_all(bench.direct_node)
                asked = bench.upstream_requests(marks)
                got["direct_requests"] = len(asked)
                got["direct_requests_by_kind"] = dict(Counter(f"{e.method} {e.kind}" for e in asked))

            def cold() -> None:
                bench.fresh_caches()
                marks = bench.marks()
                got["cold"] = bench.pull_all(bench.nodes[0])
                bench.check_through_caches(bench.nodes[0], {})
                bench.wait_stored(bits)
                asked = bench.upstream_requests(marks)
                got["cold_upstream"] = bench.m.observe.blob_bytes_served(asked) / bench.image_bytes
                # Upstream requests of a cold pull through the cache and of a direct one: each pays the round trip.
                got["cold_requests"] = len(asked)
                got["cold_requests_by_kind"] = dict(Counter(f"{e.method} {e.kind}" for e in asked))

            # Alternate which goes first, so a drift of the machine does not favour one side.
            for step in ((direct, cold) if rep % 2 == 0 else (cold, direct)):
                step()
            marks, cache_marks = bench.marks(), bench.cache_marks()
            got["warm"] = bench.pull_all(bench.nodes[0])
            # Each image's warm pull: its bytes and seconds (what is per image and what per byte).
            got["warm_per_image"] = [[bench.ref_bytes[ref], result.seconds]
                                     for ref, result in bench.last_pulls[bench.nodes[0].name]]
            bench.check_through_caches(bench.nodes[0], cache_marks)
            asked = bench.upstream_requests(marks)
            if any(e.kind == "blobs" for e in asked):
                raise BypassError("a warm pull fetched blobs from upstream")
            # What a warm pull by digest still asks the upstream (nothing, if the cache holds the digests).
            got["warm_upstream_requests"] = len(asked)
            if local:
                got["local"] = bench.pull_all(bench.local_node)
                # The same by tag: the cache asks the upstream for each tag, paying the link's round trip.
                marks, cache_marks = bench.marks(), bench.cache_marks()
                got["warm_tag"] = bench.pull_all(bench.nodes[0], by="tag")
                bench.check_through_caches(bench.nodes[0], cache_marks)
                asked = bench.upstream_requests(marks)
                if any(e.kind == "blobs" for e in asked):
                    raise BypassError("a warm pull by tag fetched blobs from upstream")
                got["tag_upstream_requests"] = len(asked)
                got["local_tag"] = bench.pull_all(bench.local_node, by="tag")
            return got

        got = attempt(bench, f"{shaping.format_rate(bits)} run {rep + 1}", one_run)
        for key in times:
            times[key].append(got[key])
        cold_upstream.append(got["cold_upstream"])
        warm_requests.append(got["warm_upstream_requests"])
        requests["direct"].append(got["direct_requests"])
        requests["cold"].append(got["cold_requests"])
        cold_by_kind.append(got["cold_requests_by_kind"])
        warm_per_image.extend(got["warm_per_image"])
        direct_by_kind.append(got["direct_requests_by_kind"])
        if local:
            tag_requests.append(got["tag_upstream_requests"])
        log(f"  run {rep + 1}/{reps}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
    image_bits = bench.image_bytes * 8
    return {
        "rate_bits": bits,
        "probes": probes,
        "times": {k: summarize(v).to_dict() for k, v in times.items()},
        "direct_throughput_bits": summarize([image_bits / t for t in times["direct"]]).to_dict(),
        "cold_upstream_ratio": summarize(cold_upstream).to_dict(),
        "cold_upstream_values": cold_upstream,
        "warm_upstream_requests": summarize(warm_requests).to_dict(),
        "upstream_requests": {k: summarize(v).to_dict() for k, v in requests.items()},
        "cold_requests_by_kind": cold_by_kind,
        "warm_per_image": warm_per_image,
        "direct_requests_by_kind": direct_by_kind,
        **({"tag_upstream_requests": summarize(tag_requests).to_dict(),
            # What naming images by tag adds to a warm pull through the cache, per run.
            "tag_lookup_seconds": summarize([t - d for t, d in zip(times["warm_tag"], times["warm"])]).to_dict()}
           if local else {}),
        "ratios": {
            "cold_over_direct": summarize(paired_ratios(times["cold"], times["direct"])).to_dict(),
            **({"warm_over_local": summarize(paired_ratios(times["warm"], times["local"])).to_dict(),
                "warm_tag_over_local_tag": summarize(paired_ratios(times["warm_tag"], times["local_tag"])).to_dict()}
               if local else {}),
            "cold_over_warm": summarize(paired_ratios(times["cold"], times["warm"])).to_dict(),
        },
    }


def _pull_at_once(bench: Bench, count: int) -> float:
    """``count`` nodes pull every image at the same moment; seconds until the last is done."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(bench.pull_all, bench.nodes[:count]))
    return time.monotonic() - started


def measure_amplification(bench: Bench, bits: int, counts: Sequence[int], reps: int,
                          one_cold_node: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Upstream blob bytes ÷ image bytes while ``n`` nodes pull everything at once, cold, without and with the
    program's warm-up first.

    Without warm-up each count starts from empty caches. With it, the caches are emptied, the recorded warm-up
    command runs, then 1, 3, ... nodes pull in turn: nodes served from a warm cache change nothing in it, so each
    turn starts from the state the warm-up left. ``one_cold_node`` (a link's cold runs at this rate) stands for
    the single node without warm-up instead of pulling it again.
    """
    log(f"amplification at {shaping.format_rate(bits)}")
    bench.set_rate(bits)
    cases: list[dict[str, Any]] = []
    image_bytes = bench.image_bytes

    def case(count: int, warm: bool, runs: dict[str, list[float]]) -> None:
        cases.append({"count": count, "with_warmup": warm,
                      **{k: summarize(v).to_dict() for k, v in runs.items() if v}})
        log(f"  {count} node(s) {'after the warm-up' if warm else 'cold, no warm-up'}: upstream "
            f"{cases[-1]['total']['median']:.2f}x the image bytes (the nodes' pulls "
            f"{cases[-1]['node_pulls']['median']:.2f}x)")

    for count in counts:
        if count == 1 and one_cold_node is not None:
            values = one_cold_node["cold_upstream_values"]
            case(1, False, {"total": values, "node_pulls": values, "around": [0] * len(values),
                            "seconds": one_cold_node["times"]["cold"]["values"]})
            continue
        runs: dict[str, list[float]] = {"total": [], "node_pulls": [], "seconds": [], "around": []}
        for _ in range(reps):
            bench.fresh_caches()
            marks = bench.marks()
            runs["seconds"].append(_pull_at_once(bench, count))
            # A blob the cache failed to serve is fetched by containerd from the upstream itself: real upstream
            # traffic of concurrent cold pulls, so it is counted (and told), not discarded.
            runs["around"].append(sum(len(m) for node in bench.nodes[:count]
                                      for m in bench.around_caches(node, {}).values()))
            try:
                bench.wait_stored(bits)
            except TimeoutError as error:  # every request for a blob failed: nothing stored it; bytes still count
                log(f"  {error}")
            ratio = bench.upstream_bytes(marks) / image_bytes
            runs["node_pulls"].append(ratio)
            runs["total"].append(ratio)
        case(count, False, runs)

    warm_runs = {count: {"total": [], "node_pulls": [], "warmup": [], "warmup_own": [], "seconds": [], "around": []}
                 for count in counts}
    for _ in range(reps):
        bench.fresh_caches()
        start, cache_start = bench.marks(), bench.cache_marks()
        bench.warm_up()
        bench.wait_stored(bits)
        warmup_upstream = bench.upstream_bytes(start)
        # What the warm-up itself asked its caches for: each (repository, blob) once.
        warmup_own = bench.cache_blob_bytes(cache_start)
        for count in counts:
            marks, cache_marks = bench.marks(), bench.cache_marks()
            seconds = _pull_at_once(bench, count)
            around = sum(len(m) for node in bench.nodes[:count]
                         for m in bench.around_caches(node, cache_marks).values())
            node_bytes = bench.upstream_bytes(marks)
            runs = warm_runs[count]
            runs["around"].append(around)
            runs["seconds"].append(seconds)
            runs["warmup"].append(warmup_upstream / image_bytes)
            runs["warmup_own"].append(warmup_upstream / warmup_own)
            runs["node_pulls"].append(node_bytes / image_bytes)
            runs["total"].append((warmup_upstream + node_bytes) / image_bytes)
    for count in counts:
        case(count, True, warm_runs[count])
    return sorted(cases, key=lambda c: (c["count"], c["with_warmup"]))


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine_info(client, built) -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return {
        "cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(), "os": _version(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "docker": client.version().get("Version", "unknown"),
        # What ran inside the images (registry --version, containerd --version there), and from where.
        "registry": built.registry_version, "registry_source": built.registry_source,
        "containerd": built.containerd_version, "containerd_source": built.containerd_source,
        "python": platform.python_version(), "pulumi": metadata.version("pulumi"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("the benchmark starts a private dockerd: run it as root", file=sys.stderr)
        return 2
    if importlib.util.find_spec("matplotlib") is None:
        print("matplotlib is missing: venv/bin/pip install -r benchmarks/requirements.txt", file=sys.stderr)
        return 2
    from . import report

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    load_samples: list[float] = []
    sampling = threading.Event()

    def sample_load() -> None:
        while not sampling.wait(5.0):
            load_samples.append(os.getloadavg()[0])

    threading.Thread(target=sample_load, name="krc-bench-load", daemon=True).start()
    profile = args.profile
    netem, netem_detail = shaping.netem_available()
    log(f"profile {profile.name}: scale {profile.scale}, {profile.reps} runs per timing, "
        f"nodes {profile.node_counts}; netem {'available' if netem else 'not available: ' + netem_detail}")

    phases: dict[str, float] = {}
    log(f"program evaluation under mocks (dev stack), {profile.program_runs} runs")
    mark = time.monotonic()
    program = measure_program(profile.program_runs)
    phases["program evaluation"] = time.monotonic() - mark

    bench = Bench(args)
    mark = time.monotonic()
    try:
        bench.start()
        machine = machine_info(bench.client, bench.built)
        phases["setup"] = time.monotonic() - mark
        links = []
        for bits in (args.rate_bits, args.second_rate_bits):
            mark = time.monotonic()
            # The local registry is not behind the upstream link: its pulls are timed once, at the first.
            links.append(measure_link(bench, bits, profile.reps, local=not links))
            phases[f"link {shaping.format_rate(bits)}"] = time.monotonic() - mark
        mark = time.monotonic()
        same_rate = [link for link in links if link["rate_bits"] == args.amp_rate_bits]
        amplification = measure_amplification(bench, args.amp_rate_bits, profile.node_counts, profile.amp_reps,
                                              one_cold_node=same_rate[-1] if same_rate else None)
        phases["amplification"] = time.monotonic() - mark
        image_bytes = bench.image_bytes
        mark = time.monotonic()
    finally:
        bench.close()
    phases["teardown"] = time.monotonic() - mark
    sampling.set()

    results = {
        "taken": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                                   else sys.argv[1:])),
        "seconds": time.monotonic() - started,
        "phases": phases,
        # Other work on the machine shares its cores with the benchmark: the 1-minute load around the run.
        "load": {"before": load_before, "after": os.getloadavg()[0], "max": max(load_samples, default=load_before)},
        "machine": machine,
        "settings": {
            "profile": profile.name, "scale": profile.scale, "reps": profile.reps, "amp_reps": profile.amp_reps,
            "rate_bits": args.rate_bits, "second_rate_bits": args.second_rate_bits, "amp_rate_bits": args.amp_rate_bits,
            "delay_seconds": args.delay_seconds, "netem": netem, "netem_detail": netem_detail,
            "images": [i.reference for i in bench.images], "image_bytes": image_bytes,
            "full_size_bytes": imageset.full_size_bytes(), "platform": PLATFORM,
            "probe_seconds": profile.probe_seconds,
            "amp_reused_cold_runs": bool(same_rate) and 1 in profile.node_counts,
        },
        "discarded": bench.discarded,
        "links": links,
        "amplification": amplification,
        "program": program,
    }
    paths = report.write(results, Path(args.out), args.name)
    log(f"done in {results['seconds']:.0f}s: " + ", ".join(str(p) for p in paths))
    print(report.markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
