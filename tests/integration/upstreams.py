"""Fake upstream registries on a test network, seeded with generated images through the registry HTTP API."""
from __future__ import annotations

import gzip
import hashlib
import io
import ipaddress
import json
import random
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import docker
import requests
from docker.models.containers import Container

from .containers import TEST_LABEL, published_port

__all__ = [
    "BACKEND_PORT", "Blob", "DEFAULT_IMAGES", "FakeUpstream", "ImageSpec", "LayerSpec", "SeededImage", "build_image",
    "default_images", "start_upstream", "stop_fronts",
]

MiB = 1024 * 1024
#: The front in front of the registry (fakeupstream.py); the registry itself listens on BACKEND_PORT.
FRONT = Path(__file__).with_name("fakeupstream.py")
BACKEND_PORT = 5002
#: Where tokens come from with ``realm_host`` (``http://<name>-auth:8080/token``).
TOKEN_PORT = 8080

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class LayerSpec:
    """A layer holding one file of ``size`` random bytes; the same name (and platform) gives the same blob,
    so images that list the same layer share it."""

    name: str
    size: int


@dataclass(frozen=True)
class ImageSpec:
    """An image to generate: ``repository`` as in the registry (``library/alpha``), a tag, its layers, and
    its platforms: more than one makes an image index whose per-platform layers differ."""

    repository: str
    tag: str
    layers: tuple[LayerSpec, ...]
    platforms: tuple[str, ...] = ("linux/amd64",)
    oci: bool = False


@dataclass(frozen=True)
class Blob:
    digest: str
    media_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra) -> dict:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest, **extra}


def _blob(media_type: str, data: bytes) -> Blob:
    return Blob("sha256:" + hashlib.sha256(data).hexdigest(), media_type, data)


def _canonical(obj: dict) -> bytes:
    return json.dumps(obj, indent=3, sort_keys=False).encode()


@dataclass(frozen=True)
class SeededImage:
    """A generated image as pushed: what tests need to follow its bytes through a cache."""

    spec: ImageSpec
    #: digest of what the tag points at (the index for a multi-platform image)
    digest: str
    media_type: str
    #: platform -> (manifest digest, manifest bytes)
    manifests: dict[str, tuple[str, bytes]] = field(repr=False)
    #: platform -> the config and layer blobs of that platform's manifest
    platform_blobs: dict[str, tuple[Blob, ...]] = field(repr=False)
    #: the index (multi-platform) or the single manifest, as pushed under the tag
    top: bytes = field(repr=False)

    @property
    def reference(self) -> str:
        """``repository:tag`` on the registry (prefix a host to pull it: ``docker.io/library/alpha:1.0``)."""
        return f"{self.spec.repository}:{self.spec.tag}"

    @property
    def is_index(self) -> bool:
        return len(self.spec.platforms) > 1

    def blobs(self, platform: str | None = None) -> dict[str, int]:
        """digest -> size of the config and layer blobs (of one platform, or of all)."""
        platforms = [platform] if platform else list(self.platform_blobs)
        return {b.digest: b.size for p in platforms for b in self.platform_blobs[p]}

    def blob_bytes(self, platform: str | None = None) -> int:
        """Total bytes of the config and layer blobs (of one platform, or of all); manifests not included."""
        return sum(self.blobs(platform).values())

    def manifest_digests(self, platform: str | None = None) -> set[str]:
        """The tag's digest plus the platform manifest digest(s)."""
        platforms = [platform] if platform else list(self.manifests)
        return {self.digest} | {self.manifests[p][0] for p in platforms}


def _layer_blob(layer: LayerSpec, platform: str | None, oci: bool) -> tuple[Blob, str]:
    """A gzipped tar with one file of random bytes (seeded by name and platform); returns (blob, diff_id).

    Real tar+gzip, so the image could also be unpacked; compression level 0 keeps generation fast."""
    seed = f"{layer.name}@{platform}" if platform else layer.name
    payload = random.Random(seed).randbytes(layer.size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"{layer.name}.bin")
        info.size = len(payload)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    compressed = gzip.compress(tar_bytes, compresslevel=0, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    return _blob(OCI_LAYER if oci else DOCKER_LAYER, compressed), diff_id


def _platform_image(spec: ImageSpec, platform: str, per_platform: bool) -> tuple[Blob, tuple[Blob, ...]]:
    os_, arch, *variant = platform.split("/")
    layers = [_layer_blob(layer, platform if per_platform else None, spec.oci) for layer in spec.layers]
    config = {
        "architecture": arch, "os": os_, **({"variant": variant[0]} if variant else {}),
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/true"], "Labels": {"generated-by": "krc-tests", "image": spec.repository}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {layer.name}"} for layer in spec.layers],
    }
    config_blob = _blob(OCI_CONFIG if spec.oci else DOCKER_CONFIG, _canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if spec.oci else DOCKER_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [blob.descriptor() for blob, _ in layers],
    }
    manifest_blob = _blob(OCI_MANIFEST if spec.oci else DOCKER_MANIFEST, _canonical(manifest))
    return manifest_blob, (config_blob, *(blob for blob, _ in layers))


def build_image(spec: ImageSpec) -> tuple[SeededImage, list[Blob]]:
    """Generate ``spec`` in memory: the image description and every blob to upload (deduplicated)."""
    multi = len(spec.platforms) > 1
    manifests: dict[str, Blob] = {}
    platform_blobs: dict[str, tuple[Blob, ...]] = {}
    for platform in spec.platforms:
        manifests[platform], platform_blobs[platform] = _platform_image(spec, platform, per_platform=multi)
    if multi:
        entries = []
        for platform, manifest in manifests.items():
            os_, arch, *variant = platform.split("/")
            entries.append(manifest.descriptor(platform={
                "architecture": arch, "os": os_, **({"variant": variant[0]} if variant else {})}))
        index_type = OCI_INDEX if spec.oci else DOCKER_LIST
        top = _blob(index_type, _canonical({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}))
    else:
        top = manifests[spec.platforms[0]]
    image = SeededImage(
        spec=spec, digest=top.digest, media_type=top.media_type,
        manifests={p: (m.digest, m.data) for p, m in manifests.items()},
        platform_blobs=platform_blobs, top=top.data,
    )
    unique = {b.digest: b for blobs in platform_blobs.values() for b in blobs}
    return image, list(unique.values())


def default_images(unit: int = MiB) -> tuple[ImageSpec, ...]:
    """Four images, about 9 ``unit`` in all: two single-platform images sharing a base layer (one Docker
    schema 2, one OCI), a Docker manifest list and an OCI index, each for linux/amd64 and linux/arm64."""
    base = LayerSpec("base", 2 * unit)
    return (
        ImageSpec("library/alpha", "1.0", (base, LayerSpec("alpha", unit), LayerSpec("alpha-app", unit // 4))),
        ImageSpec("library/beta", "1.0", (base, LayerSpec("beta", unit // 2)), oci=True),
        ImageSpec("library/multi", "1.0", (LayerSpec("multi", unit), LayerSpec("multi-app", unit // 4)),
                  platforms=("linux/amd64", "linux/arm64/v8")),
        ImageSpec("library/multi-oci", "1.0", (LayerSpec("mo", unit // 2), LayerSpec("mo-app", unit // 8)),
                  platforms=("linux/amd64", "linux/arm64/v8"), oci=True),
    )


DEFAULT_IMAGES = default_images()


@dataclass(eq=False)
class FakeUpstream:
    """An upstream registry as users meet it: a real registry (no proxy settings) behind
    :mod:`fakeupstream`, which adds token auth, Docker Hub's rate limit and faults on demand.

    The registry listens on :data:`BACKEND_PORT` inside the container; the front, a process of this machine in
    the container's network namespace, on port 5000, where caches and nodes reach it as ``http://<name>:5000``.
    ``auth`` is ``"token"`` (what Docker Hub, ghcr.io and quay.io do: a 401 with a Bearer challenge, a token
    endpoint giving tokens anonymously and to a login), ``"basic"`` (HTTP basic auth on the registry's own API)
    or ``"none"``. The faults: :meth:`fail`, :meth:`truncate_blobs`, :meth:`corrupt_blobs`, :meth:`refuse`,
    :meth:`cut`, :meth:`blackhole`, :meth:`unresolvable`, :meth:`slow`; :meth:`heal` ends them all.
    """

    container: Container
    network: str
    client: docker.DockerClient = field(repr=False)
    #: the front as this process reaches it (``http://127.0.0.1:<published 5000>``): what clients see
    host_url: str = ""
    #: the registry itself, no auth, no faults (``http://127.0.0.1:<published BACKEND_PORT>``): for seeding
    backend_url: str = ""
    auth: str = "token"
    username: str | None = None
    password: str | None = None
    #: tokens from another host name (``<name>-auth:8080``, as Docker Hub's come from auth.docker.io)
    realm_host: bool = False
    anonymous: bool = True
    #: pulls per window per bucket ("anonymous" or a username) at start
    limits: dict[str, int] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="krc-fake-upstream-")))
    process: subprocess.Popen | None = field(default=None, repr=False)
    seeded: dict[str, SeededImage] = field(default_factory=dict)
    #: faults set from outside the front (routes, network, qdisc), undone by heal()
    _outside: set[str] = field(default_factory=set, repr=False)

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def url(self) -> str:
        """How containers on the network reach it: ``http://<container name>:5000``."""
        return f"http://{self.name}:5000"

    @property
    def service(self) -> str:
        return self.name

    @property
    def log_path(self) -> Path:
        return self.workdir / "access.log"

    def containers(self) -> list[Container]:
        return [self.container]

    # the front process

    def _pid(self) -> int:
        self.container.reload()
        return int(self.container.attrs["State"]["Pid"])

    def start_front(self, timeout: float = 20.0) -> None:
        """Start the front in the container's network namespace and wait until it listens."""
        args = [
            "nsenter", "-t", str(self._pid()), "-n", sys.executable, str(FRONT), "--port", "5000",
            "--backend", str(BACKEND_PORT), "--auth", self.auth, "--service", self.service,
            "--log", str(self.log_path), "--control", str(self.workdir / "control.sock"),
        ]
        if self.realm_host:
            args += ["--realm", f"http://{self.name}-auth:{TOKEN_PORT}/token", "--token-port", str(TOKEN_PORT)]
        if self.username is not None:
            args += ["--user", f"{self.username}:{self.password or ''}"]
        if not self.anonymous:
            args.append("--no-anonymous")
        args += [f"--limit={bucket}={n}" for bucket, n in self.limits.items()]
        (self.workdir / "control.sock").unlink(missing_ok=True)
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _FRONTS.add(self)
        line = self.process.stdout.readline().strip()
        if line != "ready":
            self.stop_front()
            raise RuntimeError(f"fake upstream front for {self.name} did not start: {line}")

    def stop_front(self) -> None:
        """End the front process (ours, by its handle)."""
        process, self.process = self.process, None
        _FRONTS.discard(self)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def control(self, op: str, **fields) -> dict:
        """Send one command to the front (see fakeupstream._apply); its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(self.workdir / "control.sock"))
            with sock.makefile("rw") as stream:
                stream.write(json.dumps({"op": op, **fields}) + "\n")
                stream.flush()
                answer = json.loads(stream.readline())
        if "error" in answer:
            raise RuntimeError(f"{self.name} front: {answer['error']}")
        return answer

    def counts(self) -> dict[str, int]:
        """The front's counters: ``docker_pulls:<bucket>`` (pulls as Docker counts them), ``manifest_get``,
        ``manifest_head``, ``index_get``, ``image_manifest_get``, ``too_many_requests``, ``tokens``, ..."""
        return self.control("stats")["counts"]

    def docker_pulls(self) -> int:
        """Pulls as Docker Hub counts them, every bucket: GETs of image manifests (an index GET is not one)."""
        return sum(n for key, n in self.counts().items() if key.startswith("docker_pulls:"))

    def set_limits(self, limits: dict[str, int]) -> None:
        """Docker Hub's allowance per bucket ("anonymous" or a username), counting from zero again."""
        self.control("limits", limits=limits)

    def remove(self) -> None:
        """End the front and remove the registry container with its anonymous volumes."""
        self.stop_front()
        self.container.remove(force=True, v=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def stop(self) -> None:
        """The upstream goes away entirely (container stopped: its name and address are gone)."""
        self.stop_front()
        self.container.stop(timeout=1)

    def start(self) -> None:
        """Back after :meth:`stop`: registry and front (published ports may change)."""
        self.container.start()
        self._wait_up()

    # faults inside the front

    def fail(self, code: int = 503, match: str = "all", methods: Sequence[str] = ("GET", "HEAD"),
             times: int | None = None) -> None:
        """Answer ``code`` to requests of ``match`` (``all``, ``manifests``, ``blobs``, ``tokens``), ``times``
        times (always when None)."""
        self._faults({"status": {"code": code, "match": match, "methods": list(methods), "times": times}})

    def truncate_blobs(self, times: int | None = None) -> None:
        """Blob GETs send their full Content-Length but only half the bytes, then the connection closes."""
        self._faults({"truncate_blobs": {"times": times}})

    def corrupt_blobs(self, times: int | None = None) -> None:
        """Blob GETs send bytes that do not match their digest (one byte flipped half-way)."""
        self._faults({"corrupt_blobs": {"times": times}})

    def _faults(self, faults: dict) -> None:
        current = getattr(self, "_current_faults", {})
        self._current_faults = {**current, **faults}
        self.control("faults", faults=self._current_faults)

    def refuse(self) -> None:
        """Nothing listens any more: connects fail at once with "connection refused"."""
        self.control("refuse", on=True)

    def cut(self) -> None:
        """Every open connection is closed now (a pull in flight breaks)."""
        self.control("cut")

    # faults from outside the front

    def blackhole(self) -> None:
        """Packets to this upstream are dropped: a connect never completes, an open connection stalls.

        Blackhole routes in the upstream's own namespace swallow every answer to the network's addresses (SYN-ACKs
        included): from the caches' and nodes' side the address is there, but nothing comes back, as when a laptop's
        network dies. (The same route on the client's side would fail its connect() at once, which is not this.)
        """
        for half in self._halves():
            self._netns(["ip", "route", "replace", "blackhole", half])
        self._outside.add("blackhole")

    def unresolvable(self) -> None:
        """The name no longer resolves: the container leaves the network (Docker's DNS forgets it)."""
        self.client.networks.get(self.network).disconnect(self.container)
        self._outside.add("unresolvable")

    def slow(self, bits_per_second: int) -> None:
        """Shape what the upstream sends to ``bits_per_second`` (tbf; this kernel has no netem)."""
        burst = max(64 * 1024, bits_per_second // 8 // 100)
        self._netns(["tc", "qdisc", "replace", "dev", self._device(), "root", "tbf", "rate", f"{bits_per_second}bit",
                     "burst", str(burst), "latency", "100ms"])
        self._outside.add("slow")

    def heal(self) -> None:
        """Every fault ended: listening, reachable, resolvable, full speed, answers intact."""
        if "unresolvable" in self._outside:
            self.client.api.connect_container_to_network(self.container.id, self.network, aliases=self._aliases())
            self._refresh_ports()
        if "blackhole" in self._outside:
            for half in self._halves():
                self._netns(["ip", "route", "del", "blackhole", half], check=False)
        if "slow" in self._outside:
            self._netns(["tc", "qdisc", "del", "dev", self._device(), "root"], check=False)
        self._outside.clear()
        self._current_faults = {}
        self.control("faults", faults={})
        self.control("refuse", on=False)

    def _aliases(self) -> list[str]:
        return [self.name] + ([f"{self.name}-auth"] if self.realm_host else [])

    def _halves(self) -> list[str]:
        """The network's subnet as two halves: more specific than its own route, so they win."""
        network = self.client.networks.get(self.network)
        subnet = ipaddress.ip_network(network.attrs["IPAM"]["Config"][0]["Subnet"])
        return [str(half) for half in subnet.subnets(prefixlen_diff=1)]

    def _netns(self, argv: list[str], check: bool = True) -> str:
        done = subprocess.run(["nsenter", "-t", str(self._pid()), "-n", *argv], capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv)}: {done.stderr.strip()}")
        return done.stdout

    def _device(self) -> str:
        """The container's interface on the network (eth0 at first; another name after a reconnect)."""
        network = self.client.networks.get(self.network)
        subnet = network.attrs["IPAM"]["Config"][0]["Subnet"]
        fields = self._netns(["ip", "-o", "route", "show", subnet]).split()
        return fields[fields.index("dev") + 1]

    def _refresh_ports(self) -> None:
        self.host_url = f"http://127.0.0.1:{published_port(self.container, '5000/tcp')}"
        self.backend_url = f"http://127.0.0.1:{published_port(self.container, f'{BACKEND_PORT}/tcp')}"

    def _wait_up(self, timeout: float = 20.0) -> None:
        """Front started, published ports read, the registry answering through it."""
        self.start_front()
        self._refresh_ports()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.backend_url}/v2/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            self.container.reload()
            if self.container.status != "running" or time.monotonic() > deadline:
                raise RuntimeError(
                    f"upstream {self.name} did not come up:\n{self.container.logs(tail=20).decode(errors='replace')}")
            time.sleep(0.1)

    # what it served

    def access_log(self, timeout: float = 10.0) -> list:
        """Every request the front has answered so far (observe.AccessEntry), with the clients' own addresses.

        As with a registry's log (observe.access_log), a marker request is sent first and the log read once
        it shows, so requests answered before it are in; while the upstream cannot be reached (refused,
        blackholed) the log is read as it is.
        """
        from .observe import LOG_MARKER, parse_access_log

        marker = f"{LOG_MARKER}={uuid.uuid4().hex}"
        try:
            requests.get(f"{self.host_url}/v2/?{marker}", timeout=2)
        except requests.RequestException:
            marker = ""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            if not marker or marker in text or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return [e for e in parse_access_log(text) if LOG_MARKER not in e.query]

    def token_requests(self) -> Counter[int]:
        """Status code -> token requests the front answered."""
        return Counter(e.status for e in self.access_log() if e.path.endswith("/token"))

    # seeding, straight into the registry

    def seed(self, specs: Sequence[ImageSpec] = DEFAULT_IMAGES) -> list[SeededImage]:
        """Generate and push ``specs``; blobs already present are not uploaded again."""
        images = []
        with requests.Session() as session:
            for spec in specs:
                image, blobs = build_image(spec)
                for blob in blobs:
                    self._push_blob(session, spec.repository, blob)
                if image.is_index:
                    for platform, (digest, data) in image.manifests.items():
                        media_type = OCI_MANIFEST if spec.oci else DOCKER_MANIFEST
                        self._put_manifest(session, spec.repository, digest, data, media_type)
                self._put_manifest(session, spec.repository, spec.tag, image.top, image.media_type)
                self.seeded[image.reference] = image
                images.append(image)
        return images

    def _push_blob(self, session: requests.Session, repository: str, blob: Blob) -> None:
        base = f"{self.backend_url}/v2/{repository}/blobs/"
        if session.head(base + blob.digest, timeout=30).status_code == 200:
            return
        started = session.post(base + "uploads/", timeout=30)
        started.raise_for_status()
        location = urljoin(self.backend_url, started.headers["Location"])
        sep = "&" if "?" in location else "?"
        done = session.put(f"{location}{sep}digest={blob.digest}", data=blob.data,
                           headers={"Content-Type": "application/octet-stream"}, timeout=60)
        if done.status_code != 201:
            raise RuntimeError(f"blob upload {blob.digest} to {repository}: {done.status_code} {done.text}")

    def _put_manifest(self, session: requests.Session, repository: str, reference: str, data: bytes,
                      media_type: str) -> None:
        response = session.put(f"{self.backend_url}/v2/{repository}/manifests/{reference}", data=data,
                               headers={"Content-Type": media_type}, timeout=30)
        if response.status_code != 201:
            raise RuntimeError(f"manifest {repository}:{reference}: {response.status_code} {response.text}")


#: The fronts running now: stop_fronts() ends those a test left (their containers are gone with the test).
_FRONTS: set[FakeUpstream] = set()


def stop_fronts() -> None:
    """End every front process this session started and has not ended yet."""
    for upstream in list(_FRONTS):
        upstream.stop_front()
        shutil.rmtree(upstream.workdir, ignore_errors=True)


def start_upstream(
    client: docker.DockerClient, image: str, network: str, name: str,
    username: str | None = None, password: str | None = None, auth: str | None = None, timeout: float = 20.0,
    realm_host: bool = False, anonymous: bool | None = None, limits: dict[str, int] | None = None,
) -> FakeUpstream:
    """Start a fake upstream named ``name`` on ``network``: reachable there as ``http://<name>:5000``, its front and
    its registry also published on 127.0.0.1 (``host_url``, ``backend_url``).

    :param username: with ``password``, a login the upstream accepts.
    :param auth: ``"token"`` (default), ``"basic"`` or ``"none"``.
    :param realm_host: hand out tokens from ``http://<name>-auth:8080/token`` (another host, as Docker Hub's
        auth.docker.io) instead of ``/token`` on the upstream's own host (as ghcr.io and quay.io).
    :param anonymous: whether tokens are given without a login (default: when no ``username`` is set, as for
        public images; with one, the upstream is private).
    :param limits: Docker Hub's allowance per bucket, e.g. ``{"anonymous": 100}``; none: no rate limit.
    """
    auth = auth or "token"
    if auth not in ("none", "token", "basic"):
        raise ValueError(f"unknown auth {auth!r}")
    if auth == "basic" and username is None:
        raise ValueError("auth='basic' needs a username and password")
    env = {"REGISTRY_LOG_LEVEL": "info", "REGISTRY_STORAGE_DELETE_ENABLED": "true",
           "REGISTRY_HTTP_ADDR": f":{BACKEND_PORT}"}
    upstream = FakeUpstream(
        container=None, network=network, client=client, auth=auth, username=username, password=password,
        realm_host=realm_host, anonymous=username is None if anonymous is None else anonymous, limits=dict(limits or {}),
    )
    upstream.container = client.containers.create(
        image, name=name, environment=env, network=network,
        networking_config={network: client.api.create_endpoint_config(
            aliases=[name] + ([f"{name}-auth"] if realm_host else []))},
        ports={"5000/tcp": ("127.0.0.1", None), f"{BACKEND_PORT}/tcp": ("127.0.0.1", None)},
        labels={TEST_LABEL: "true", "io.krc-tests.role": "upstream"},
    )
    upstream.container.start()
    upstream._wait_up(timeout)
    return upstream
