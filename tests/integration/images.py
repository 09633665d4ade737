"""Images the integration tier builds offline with `docker import`: a registry:3 stand-in and a containerd "node"."""
from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import docker

__all__ = [
    "BuiltImages", "NODE_IMAGE", "REGISTRY_IMAGE", "build_rootfs_tar", "ensure_images", "ensure_node_image",
    "ensure_registry_image", "library_paths",
]

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
REGISTRY_IMAGE = "krc-test/registry"  # stands in for registry:3
NODE_IMAGE = "krc-test/node"

REGISTRY_BINARY = Path("/usr/bin/docker-registry")  # Debian docker-registry: distribution 2.8
BUSYBOX = Path("/usr/bin/busybox")  # busybox-static
CONTAINERD_BINARIES = (Path("/usr/bin/containerd"), Path("/usr/bin/ctr"))  # Debian containerd 1.6

# Bump when the recipe below changes in a way the hashed inputs do not show.
RECIPE_VERSION = "1"


@dataclass(frozen=True)
class BuiltImages:
    """Tags of the images built for this session."""

    registry: str
    node: str


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


def ensure_registry_image(client: docker.DockerClient) -> str:
    """Build (once per content) the registry:3 stand-in and return its tag.

    Layout as in registry:3: /bin/registry, /etc/distribution/config.yml, /entrypoint.sh, volume
    /var/lib/registry, port 5000; entrypoint + cmd make it run ``registry serve /etc/distribution/config.yml``.
    REGISTRY_* environment variables override the config. distribution 2.8 has no proxy TTL: it logs
    ``Ignoring unrecognized environment variable REGISTRY_PROXY_TTL`` and starts normally.
    """
    config = (IMAGES_DIR / "registry" / "config.yml").read_bytes()
    entrypoint = (IMAGES_DIR / "registry" / "entrypoint.sh").read_bytes()
    tag = _digest(config, entrypoint, REGISTRY_BINARY.read_bytes(), BUSYBOX.read_bytes())

    def make_tar() -> bytes:
        return build_rootfs_tar(
            binaries={"/bin/registry": REGISTRY_BINARY},
            files={"/etc/distribution/config.yml": (config, 0o644), "/entrypoint.sh": (entrypoint, 0o755)},
            dirs={"/var/lib/registry": 0o755},
        )

    return _ensure(client, REGISTRY_IMAGE, tag, make_tar, [
        "VOLUME /var/lib/registry",
        "EXPOSE 5000",
        'ENTRYPOINT ["/entrypoint.sh"]',
        'CMD ["/etc/distribution/config.yml"]',
    ])


def ensure_node_image(client: docker.DockerClient) -> str:
    """Build (once per content) the "node" image: containerd, ctr and busybox; entrypoint ``containerd``.

    node.py writes /etc/containerd/config.toml into the container before it starts.
    """
    base_config = (IMAGES_DIR / "node" / "config.toml").read_bytes()
    tag = _digest(base_config, BUSYBOX.read_bytes(), *(b.read_bytes() for b in CONTAINERD_BINARIES))

    def make_tar() -> bytes:
        return build_rootfs_tar(
            binaries={str(b): b for b in CONTAINERD_BINARIES},
            files={"/etc/containerd/config.toml": (base_config, 0o644)},
            dirs={"/etc/containerd/certs.d": 0o755, "/var/lib/containerd": 0o711, "/run/containerd": 0o711},
        )

    return _ensure(client, NODE_IMAGE, tag, make_tar, ['ENTRYPOINT ["/usr/bin/containerd"]'])


def ensure_images(client: docker.DockerClient) -> BuiltImages:
    """Both images, built only when their tag is missing."""
    return BuiltImages(registry=ensure_registry_image(client), node=ensure_node_image(client))
