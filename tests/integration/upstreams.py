"""Fake upstream registries on a test network, seeded with generated images through the registry HTTP API."""
from __future__ import annotations

import atexit
import base64
import functools
import gzip
import hashlib
import io
import json
import random
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import docker
import requests
from docker.models.containers import Container

from .containers import TEST_LABEL, published_port, put_files

__all__ = [
    "Blob", "DEFAULT_IMAGES", "FakeUpstream", "ImageSpec", "LayerSpec", "SeededImage", "TOKEN_ISSUER", "build_image",
    "default_images", "htpasswd_line", "issue_token", "start_upstream",
]

MiB = 1024 * 1024

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


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd line (distribution accepts only bcrypt), made with apache2-utils' htpasswd."""
    return subprocess.run(["htpasswd", "-nbB", username, password], capture_output=True, text=True,
                          check=True).stdout.strip() + "\n"


TOKEN_ISSUER = "krc-fake-token-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@functools.cache
def _signing_key() -> tuple[Path, bytes, bytes]:
    """An RSA key and self-signed certificate for the fake token server (key path, cert PEM, cert DER)."""
    folder = Path(tempfile.mkdtemp(prefix="krc-token-key-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "3650", "-subj", "/CN=krc-fake-token-issuer"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return key, cert.read_bytes(), der


def issue_token(service: str, repositories: Sequence[str], subject: str = "krc-tests", seconds: int = 86400) -> str:
    """A registry bearer token (RS256 JWT, certificate in ``x5c``) granting pull and push on ``repositories``,
    as a token server (auth.docker.io, ghcr.io/token) would issue it after checking a login."""
    key, _, der = _signing_key()
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    claims = {
        "iss": TOKEN_ISSUER, "sub": subject, "aud": service, "exp": now + seconds, "nbf": now - 60, "iat": now,
        "jti": _b64url(random.randbytes(12)),
        "access": [{"type": "repository", "name": r, "actions": ["pull", "push"]} for r in sorted(set(repositories))],
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)], input=signing_input.encode(),
                               check=True, capture_output=True).stdout
    return f"{signing_input}.{_b64url(signature)}"


@dataclass
class FakeUpstream:
    """A plain registry container (no proxy settings) playing an upstream registry.

    ``auth`` is ``"none"``, ``"token"`` (what Docker Hub, ghcr.io and quay.io do: a 401 with a Bearer challenge,
    a token server that checks the login, a JWT the registry verifies) or ``"basic"`` (htpasswd on the
    registry itself: distribution's proxy cannot log in to such an upstream, see README).
    """

    container: Container
    network: str
    #: http://127.0.0.1:<port>, for seeding from this process
    host_url: str
    auth: str = "none"
    username: str | None = None
    password: str | None = None
    #: the token server (busybox httpd checking the login and handing out a prepared token), for auth="token"
    token_server: Container | None = None
    seeded: dict[str, SeededImage] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def url(self) -> str:
        """How containers on the network reach it: ``http://<container name>:5000``."""
        return f"http://{self.name}:5000"

    def containers(self) -> list[Container]:
        return [c for c in (self.container, self.token_server) if c is not None]

    def remove(self) -> None:
        """Remove the registry (and token server) containers with their anonymous volumes."""
        for container in self.containers():
            container.remove(force=True, v=True)

    def _session(self, repositories: Sequence[str]) -> requests.Session:
        session = requests.Session()
        if self.auth == "basic":
            session.auth = (self.username or "", self.password or "")
        elif self.auth == "token":
            token = issue_token(self.name, repositories)
            # Proxies fetch it from the token server with the login; this process uses it directly.
            put_files(self.token_server, {"/www/token": json.dumps({"token": token, "access_token": token,
                                                                      "expires_in": 3600})})
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def seed(self, specs: Sequence[ImageSpec] = DEFAULT_IMAGES) -> list[SeededImage]:
        """Generate and push ``specs``; blobs already present are not uploaded again."""
        repositories = [i.spec.repository for i in self.seeded.values()] + [s.repository for s in specs]
        images = []
        with self._session(repositories) as session:
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
        base = f"{self.host_url}/v2/{repository}/blobs/"
        if session.head(base + blob.digest, timeout=30).status_code == 200:
            return
        started = session.post(base + "uploads/", timeout=30)
        started.raise_for_status()
        location = urljoin(self.host_url, started.headers["Location"])
        sep = "&" if "?" in location else "?"
        done = session.put(f"{location}{sep}digest={blob.digest}", data=blob.data,
                           headers={"Content-Type": "application/octet-stream"}, timeout=60)
        if done.status_code != 201:
            raise RuntimeError(f"blob upload {blob.digest} to {repository}: {done.status_code} {done.text}")

    def _put_manifest(self, session: requests.Session, repository: str, reference: str, data: bytes,
                      media_type: str) -> None:
        response = session.put(f"{self.host_url}/v2/{repository}/manifests/{reference}", data=data,
                               headers={"Content-Type": media_type}, timeout=30)
        if response.status_code != 201:
            raise RuntimeError(f"manifest {repository}:{reference}: {response.status_code} {response.text}")


def _start_token_server(client: docker.DockerClient, image: str, network: str, name: str, username: str,
                        password: str) -> Container:
    if ":" in username or ":" in password or "\n" in username + password:
        raise ValueError("the fake token server (busybox httpd) cannot take ':' or newlines in a login")
    container = client.containers.create(
        image, name=name, network=network, entrypoint=["httpd"],
        # -vv logs each request with its status on stderr: tests count token fetches with it.
        command=["-f", "-vv", "-p", "8080", "-h", "/www", "-c", "/etc/httpd.conf", "-r", "fake-token-server"],
        labels={TEST_LABEL: "true", "io.krc-tests.role": "token-server"},
    )
    put_files(container, {"/etc/httpd.conf": f"/token:{username}:{password}\n", "/www/token": "{}"})
    container.start()
    return container


def start_upstream(
    client: docker.DockerClient, image: str, network: str, name: str,
    username: str | None = None, password: str | None = None, auth: str | None = None, timeout: float = 20.0,
) -> FakeUpstream:
    """Start a plain registry named ``name`` on ``network`` (reachable there as ``http://<name>:5000``), its
    API also published on 127.0.0.1 for seeding.

    :param username: with ``password``, require this login; ``auth`` says how (default ``"token"``: a token
        server ``<name>-auth`` on the same network checks it, as Docker Hub's does).
    :param auth: ``"token"`` or ``"basic"`` (htpasswd on the registry itself).
    """
    auth = auth or ("token" if username is not None else "none")
    if (auth == "none") != (username is None):
        raise ValueError("give username and password exactly when auth is 'token' or 'basic'")
    env = {"REGISTRY_LOG_LEVEL": "info", "REGISTRY_STORAGE_DELETE_ENABLED": "true"}
    files: dict[str, bytes | str] = {}
    token_server = None
    if auth == "basic":
        env |= {"REGISTRY_AUTH": "htpasswd", "REGISTRY_AUTH_HTPASSWD_REALM": "fake-upstream",
                "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd"}
        files["/auth/htpasswd"] = htpasswd_line(username, password or "")
    elif auth == "token":
        token_server = _start_token_server(client, image, network, f"{name}-auth", username, password or "")
        env |= {"REGISTRY_AUTH": "token", "REGISTRY_AUTH_TOKEN_REALM": f"http://{name}-auth:8080/token",
                "REGISTRY_AUTH_TOKEN_SERVICE": name, "REGISTRY_AUTH_TOKEN_ISSUER": TOKEN_ISSUER,
                "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE": "/auth/cert.pem"}
        files["/auth/cert.pem"] = _signing_key()[1]
    elif auth != "none":
        raise ValueError(f"unknown auth {auth!r}")
    container = client.containers.create(
        image, name=name, network=network, environment=env, ports={"5000/tcp": ("127.0.0.1", None)},
        labels={TEST_LABEL: "true", "io.krc-tests.role": "upstream"},
    )
    if files:
        put_files(container, files)
    container.start()
    upstream = FakeUpstream(container, network, f"http://127.0.0.1:{published_port(container, '5000/tcp')}",
                            auth, username, password, token_server)
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = requests.get(f"{upstream.host_url}/v2/", timeout=2).status_code
            if status in (200, 401):
                return upstream
        except requests.RequestException:
            pass
        container.reload()
        if container.status != "running" or time.monotonic() > deadline:
            raise RuntimeError(f"upstream {name} did not come up:\n{container.logs(tail=20).decode(errors='replace')}")
        time.sleep(0.1)
