"""Images the integration tier builds offline with `docker import`: a registry:3 stand-in and a containerd "node".

The binaries are the real ones users run, built from their Go modules by the tests' setup (``tests/gotools.py``,
pinned there: distribution v3.1.1, containerd v2.3.1) and re-checked against the sha256 recorded at build time.
The configs they start with are the upstream projects' own, read at test time from ``../shared/reference``
(``KRC_REFERENCE_DIR``): registry:3's ``/etc/distribution/config.yml`` and kind v0.32.0's base
``/etc/containerd/config.toml``; none of them is copied into this repository.

Only on a machine without Go (the setup says so loudly) the registry is the engine's own ``registry:3`` image when
it has one, else Debian's distribution 2.8, and the node runs Debian's containerd 1.6; each run's summary line then
starts with ``FALLBACK``. On a machine with Go, binaries that were not built fail the session: never a silent
fallback. :func:`ensure_images` says which versions it used and where they came from (:attr:`BuiltImages.summary`).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import docker

import gotools

__all__ = [
    "BuiltImages", "ImagesError", "NODE_IMAGE", "REGISTRY_IMAGE", "build_rootfs_tar", "ensure_images",
    "ensure_node_image", "ensure_registry_image", "library_paths", "real_binaries", "reference_file",
]

ROOT = Path(__file__).resolve().parent.parent.parent
IMAGES_DIR = ROOT / "tests" / "images"
REGISTRY_IMAGE = "krc-test/registry"  # stands in for registry:3
NODE_IMAGE = "krc-test/node"
#: The image users run; used as it is on a machine without Go when the engine has it.
OFFICIAL_REGISTRY = "registry:3"

#: The programs the images need from tests/gotools.py.
REAL_NAMES = ("registry", "containerd", "ctr")

DEBIAN_REGISTRY = Path("/usr/bin/docker-registry")  # Debian docker-registry: distribution 2.8
BUSYBOX = Path("/usr/bin/busybox")  # busybox-static
DEBIAN_CONTAINERD = (Path("/usr/bin/containerd"), Path("/usr/bin/ctr"))  # Debian containerd 1.6

#: The upstream projects' own files, kept outside this repository (shared/reference beside the checkout).
REFERENCE_ENV = "KRC_REFERENCE_DIR"
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference"
#: registry:3's config (distribution-library-image config-example.yml) and kind v0.32.0's base containerd config.
REGISTRY_CONFIG_V3 = Path("registry-3") / "config.yml"
KIND_CONTAINERD_CONFIG = Path("kind-v0.32.0") / "containerd-config.toml"
#: What this project wrote for the fallback: the same shapes for distribution 2.8 and containerd 1.6.
REGISTRY_CONFIG_28 = IMAGES_DIR / "registry" / "config-2.8.yml"
CONTAINERD_16_CONFIG = IMAGES_DIR / "node" / "containerd-1.6.toml"

# Bump when the recipe below changes in a way the hashed inputs do not show.
RECIPE_VERSION = "2"


class ImagesError(RuntimeError):
    """The real binaries or the reference files are missing or do not match what was recorded."""


@dataclass(frozen=True)
class BuiltImages:
    """Tags of the images built for this session and what is in them."""

    registry: str
    node: str
    #: ``registry --version`` / ``containerd --version`` run inside the images, e.g. "3.1.1", "v2.3.1"
    registry_version: str = ""
    containerd_version: str = ""
    #: where each came from: "built from github.com/...@v3.1.1 with go1.26.8", "the engine's registry:3 image", ...
    registry_source: str = ""
    containerd_source: str = ""
    #: True when the Debian / engine fallback ran (a machine without Go)
    fallback: bool = False

    @property
    def registry_v3(self) -> bool:
        return self.registry_version.lstrip("v").split(".")[0] == "3"

    @property
    def containerd_v2(self) -> bool:
        return int(self.containerd_version.lstrip("v").split(".")[0] or 0) >= 2

    @property
    def cold_fetches(self) -> int:
        """Upstream GETs per blob on one cold pull: v3 tees one download to client and storage
        (measured: ../shared/reference/real-versions.md); Debian's 2.8 downloads a cold blob twice."""
        return 1 if self.registry_v3 else 2

    @property
    def summary(self) -> str:
        """The one line every run prints."""
        line = (f"integration tier: registry {self.registry_version} ({self.registry_source}), "
                f"containerd {self.containerd_version} ({self.containerd_source})")
        if self.fallback:
            return f"FALLBACK (no Go on this machine: not the versions users run) {line}"
        return line


def library_paths(binary: Path) -> list[Path]:
    """Shared libraries (and the loader) that ``ldd`` lists for ``binary``; empty for a static binary."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    paths = []
    for line in result.stdout.splitlines():
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        for token in line.replace("=>", " ").split():
            if token.startswith("/"):
                paths.append(Path(token))
    return paths


def reference_file(relative: Path) -> bytes:
    """An upstream project's file from ``../shared/reference`` (``KRC_REFERENCE_DIR``).

    :raises ImagesError: the file is not there (never replaced by a copy of our own).
    """
    value = os.environ.get(REFERENCE_ENV, "").strip()
    directory = Path(value) if value else DEFAULT_REFERENCE
    path = directory / relative
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImagesError(f"{path}: {error.strerror}: the integration tier reads the upstream projects' own "
                          f"configs from the shared reference folder beside the checkout ({REFERENCE_ENV} "
                          "moves it)") from error


def real_binaries() -> dict[str, gotools.Built] | None:
    """name -> the built registry, containerd and ctr; None on a machine without Go (the fallback).

    :raises ImagesError: Go is here but they were not built (or changed since): run the setup.
    """
    try:
        built = gotools.load(names=REAL_NAMES)
    except gotools.GoToolsError as error:
        raise ImagesError(str(error)) from error
    if len(built) == len(REAL_NAMES):
        return built
    if gotools.find_go() is None:
        return None
    missing = ", ".join(name for name in REAL_NAMES if name not in built)
    raise ImagesError(f"{missing} not built under {gotools.tools_dir()}: run tests/integration/setup.sh as root "
                      "(it builds them from their Go modules); the Debian fallback is only for a machine without Go")


def _add_dir(tar: tarfile.TarFile, path: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, path: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _add_symlink(tar: tarfile.TarFile, path: str, target: str) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def build_rootfs_tar(
    binaries: dict[str, Path], files: dict[str, tuple[bytes, int]], dirs: dict[str, int],
) -> bytes:
    """A root filesystem tar: ``binaries`` (image path -> host binary) with the libraries ``ldd`` lists,
    busybox with a symlink per applet in /bin, ``files`` (path -> (content, mode)) and ``dirs`` (path -> mode).
    """
    buf = io.BytesIO()
    made_dirs: set[str] = set()

    def ensure_parents(path: str) -> None:
        parts = Path(path).parent.parts[1:]
        for i in range(len(parts)):
            d = "/" + "/".join(parts[: i + 1])
            if d not in made_dirs:
                _add_dir(tar, d)
                made_dirs.add(d)

    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, mode in {"/bin": 0o755, "/etc": 0o755, "/tmp": 0o1777, "/var": 0o755, **dirs}.items():
            ensure_parents(path)
            _add_dir(tar, path, mode)
            made_dirs.add(path)
        libraries: set[Path] = set()
        for path, host in {**binaries, "/bin/busybox": BUSYBOX}.items():
            ensure_parents(path)
            _add_bytes(tar, path, host.read_bytes(), 0o755)
            libraries.update(library_paths(host))
        for lib in sorted(libraries):
            ensure_parents(str(lib))
            _add_bytes(tar, str(lib), lib.read_bytes(), 0o755)
        applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
        for applet in applets:
            if f"/bin/{applet}" not in binaries and applet != "busybox":
                _add_symlink(tar, f"/bin/{applet}", "busybox")
        for path, (content, mode) in files.items():
            ensure_parents(path)
            _add_bytes(tar, path, content, mode)
    return buf.getvalue()


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256(RECIPE_VERSION.encode())
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _ensure(client: docker.DockerClient, repository: str, tag: str, make_tar, changes: list[str]) -> str:
    ref = f"{repository}:{tag}"
    try:
        client.images.get(ref)
        return ref
    except docker.errors.ImageNotFound:
        pass
    client.api.import_image_from_data(make_tar(), repository=repository, tag=tag, changes=changes)
    client.images.get(ref)  # raises if the import did not produce the tag
    return ref


def _version_in(client: docker.DockerClient, image: str, binary: str) -> str:
    """The version ``<binary> --version`` prints inside ``image`` (its last word that looks like one)."""
    out = client.containers.run(image, ["--version"], entrypoint=[binary], remove=True, network_mode="none")
    words = out.decode(errors="replace").split()
    versions = [w for w in words if re.match(r"^v?\d+\.\d+", w)]
    if not versions:
        raise RuntimeError(f"{binary} --version in {image} printed no version: {out!r}")
    return versions[0]


def ensure_registry_image(client: docker.DockerClient, binaries: dict[str, gotools.Built] | None = None,
                          ) -> tuple[str, str]:
    """The registry:3 stand-in (built once per content) and where its registry binary came from.

    Layout as in Docker Hub's registry:3 (distribution-library-image Dockerfile): /bin/registry,
    /etc/distribution/config.yml, /entrypoint.sh with its dispatch, ``OTEL_TRACES_EXPORTER=none``, volume
    /var/lib/registry, port 5000, ``CMD ["/etc/distribution/config.yml"]``; busybox gives /bin/sh and wget as
    alpine's does. With ``binaries`` (tests/gotools.py) the registry is the real v3 binary with registry:3's own
    config; without (no Go), the engine's ``registry:3`` image is used if present, else Debian's distribution 2.8
    with a config of the same shape.
    """
    entrypoint = (IMAGES_DIR / "registry" / "entrypoint.sh").read_bytes()
    if binaries:
        built = binaries["registry"]
        binary, config, source = built.path, reference_file(REGISTRY_CONFIG_V3), built.source
    else:
        try:
            client.images.get(OFFICIAL_REGISTRY)
            return OFFICIAL_REGISTRY, f"the engine's {OFFICIAL_REGISTRY} image"
        except docker.errors.ImageNotFound:
            pass
        binary, config, source = DEBIAN_REGISTRY, REGISTRY_CONFIG_28.read_bytes(), "Debian docker-registry"
    tag = _digest(config, entrypoint, binary.read_bytes(), BUSYBOX.read_bytes())

    def make_tar() -> bytes:
        return build_rootfs_tar(
            binaries={"/bin/registry": binary},
            files={"/etc/distribution/config.yml": (config, 0o644), "/entrypoint.sh": (entrypoint, 0o755)},
            dirs={"/var/lib/registry": 0o755},
        )

    return _ensure(client, REGISTRY_IMAGE, tag, make_tar, [
        "ENV OTEL_TRACES_EXPORTER=none",
        "VOLUME /var/lib/registry",
        "EXPOSE 5000",
        'ENTRYPOINT ["/entrypoint.sh"]',
        'CMD ["/etc/distribution/config.yml"]',
    ]), source


def cri_base_spec(ctr: Path) -> bytes:
    """/etc/containerd/cri-base.json as kind v0.32.0 makes it (images/base/Dockerfile): ``ctr oci spec``, with a
    createContainer hook for /kind/bin/mount-product-files.sh added and ``process.rlimits`` removed. kind's base
    config points the CRI runtime's base_runtime_spec at it; without the file containerd 2.3 puts the CRI
    runtime and sandbox plugins in error ("failed to load base OCI spec")."""
    spec = json.loads(subprocess.run([str(ctr), "oci", "spec"], capture_output=True, check=True).stdout)
    hooks = spec.setdefault("hooks", {}).setdefault("createContainer", [])
    hooks.append({"path": "/kind/bin/mount-product-files.sh"})
    spec.get("process", {}).pop("rlimits", None)
    return json.dumps(spec, indent=2).encode()


def ensure_node_image(client: docker.DockerClient, binaries: dict[str, gotools.Built] | None = None,
                      ) -> tuple[str, str]:
    """The "node" image (built once per content) and where its containerd came from.

    With ``binaries``: containerd v2 and ctr in /usr/local/bin as in kind's base image, kind v0.32.0's
    /etc/containerd/config.toml and a cri-base.json made as kind makes it. Without: Debian's containerd 1.6
    with a ``version = 2`` config of kind's shape that 1.6 can load. node.py merges the patches onto the
    image's config.toml, as kind does, before containerd starts.
    """
    if binaries:
        exe = {"/usr/local/bin/containerd": binaries["containerd"].path, "/usr/local/bin/ctr": binaries["ctr"].path}
        config = reference_file(KIND_CONTAINERD_CONFIG)
        extra = {"/etc/containerd/cri-base.json": (cri_base_spec(binaries["ctr"].path), 0o644)}
        source = binaries["containerd"].source
    else:
        exe = {str(b): b for b in DEBIAN_CONTAINERD}
        config = CONTAINERD_16_CONFIG.read_bytes()
        extra = {}
        source = "Debian containerd"
    tag = _digest(config, BUSYBOX.read_bytes(), *(content for content, _ in extra.values()),
                  *(b.read_bytes() for b in exe.values()))

    def make_tar() -> bytes:
        return build_rootfs_tar(
            binaries=exe,
            files={"/etc/containerd/config.toml": (config, 0o644), **extra},
            dirs={"/etc/containerd/certs.d": 0o755, "/var/lib/containerd": 0o711, "/run/containerd": 0o711},
        )

    containerd = next(path for path in exe if path.endswith("/containerd"))
    return _ensure(client, NODE_IMAGE, tag, make_tar, [
        "ENV PATH=/usr/local/bin:/usr/bin:/bin", f'ENTRYPOINT ["{containerd}"]',
    ]), source


def ensure_images(client: docker.DockerClient) -> BuiltImages:
    """Both images, built only when their tag is missing, with the versions found inside them.

    :raises ImagesError: see :func:`real_binaries` and :func:`reference_file`.
    """
    binaries = real_binaries()
    registry, registry_source = ensure_registry_image(client, binaries)
    node, containerd_source = ensure_node_image(client, binaries)
    return BuiltImages(
        registry=registry, node=node,
        registry_version=_version_in(client, registry, "registry"),
        containerd_version=_version_in(client, node, "containerd"),
        registry_source=registry_source, containerd_source=containerd_source,
        fallback=binaries is None,
    )
