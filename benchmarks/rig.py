"""The measuring rig on the private engine: upstreams, caches and nodes, the link's shaping, and pulls."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import requests

from . import ROOT, imageset, shaping
from .accesslogs import AccessLogs
from .progress import log

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


def baseline_hosts_toml(url: str) -> str:
    """hosts.toml sending a node straight to ``url`` (the baselines: no cache in between)."""
    return f'server = "{url}"\n\n[host."{url}"]\n  capabilities = ["pull", "resolve"]\n'


class Bench:
    """Everything the measurements use, on the private engine; :meth:`close` ends what it started."""

    def __init__(self, args: argparse.Namespace) -> None:
        # The integration tier reads KRC_TEST_SUBNET when it is imported: set it to the benchmark's own first.
        os.environ["KRC_TEST_SUBNET"] = args.subnet
        # The registry and containerd are the integration tier's: built from their Go modules by
        # tests/integration/setup.sh (tests/gotools.py), or its no-Go fallback (tests/integration/images.py).
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
            # The upstreams ask for tokens as Docker Hub, quay.io and ghcr.io do; the local registry is a plain one.
            registry = m.upstreams.start_upstream(self.client, self.registry_image, m.stack.NETWORK, names[key],
                                                  auth="none" if key == "local" else "token")
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
        #: what the registries' logs and storage say (the caches' mapping is the deployed one, refilled by
        #: fresh_caches)
        self.logs = AccessLogs(
            read=m.observe.access_log, ip_of=lambda node: m.containers.ip_address(node.container, m.stack.NETWORK),
            upstreams=self.upstreams, caches=self.deployed.caches, blobs=self.blobs,
            blob_bytes_served=m.observe.blob_bytes_served, wait_cached=m.observe.wait_cached,
            last_pulls=self.last_pulls)
        m.stack.deploy_caches(self.deployed)
        m.stack.write_certs(self.rec)

        patches = m.stack.kind_config(self.rec)["containerdConfigPatches"]
        direct_certs, local_certs = self.work / "direct.d", self.work / "local.d"
        # Straight to the registry, not through the fake upstream's front: a plain local registry.
        local_url = f"http://{LOCAL_REGISTRY}:{m.upstreams.BACKEND_PORT}"
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
            # The registry behind the fake upstream's front (no token, no delay): the link alone.
            with requests.get(f"{upstream.backend_url}/v2/{PROBE_REPOSITORY}/blobs/{digest}", stream=True, timeout=120,
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
            self.m.upstreams.stop_fronts()
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

    def pull_at_once(self, count: int, by: str = "digest") -> float:
        """``count`` nodes pull every image at the same moment; seconds until the last is done."""
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(lambda node: self.pull_all(node, by), self.nodes[:count]))
        return time.monotonic() - started

    def warm_up(self, by: str = "tag") -> str:
        """The program's recorded warm-up command, run as pulumi-command runs it; ``by="digest"`` names the
        images as the charts pin them (repository:tag@digest) instead of the plan's tags."""
        inputs = self.rec.named("warmup-images").inputs
        plan = inputs["stdin"]
        if by == "digest":
            pinned = dict(zip(self.refs["tag"], self.refs["digest"]))
            data = json.loads(plan)
            for target in data["targets"]:
                target["images"] = [pinned.get(f"{image}", image) for image in target["images"]]
            plan = json.dumps(data)
        done = subprocess.run(["sh", "-c", inputs["create"]], input=plan, cwd=inputs["dir"],
                              env={**os.environ, "DOCKER_HOST": self.engine.base_url},
                              capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"warm-up failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout
