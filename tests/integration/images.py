"""Images the integration tier builds offline with `docker import`: a registry:3 stand-in and a containerd "node".

Where the binaries come from is one setting, ``KRC_THIRDPARTY_DIR`` (``.ci/run`` points it at ``../shared/thirdparty``):
a folder with ``bin/{registry,containerd,ctr}.xz`` and ``SHA256SUMS`` (the real distribution v3.1.1 and
containerd v2.3.1 release tags, static; see that folder's README). Every binary is checked against SHA256SUMS
before use; a mismatch or a missing file fails the session. Without the setting the registry is the engine's own
``registry:3`` image when it has one, else Debian's distribution 2.8 (``docker-registry``), and the node runs
Debian's containerd 1.6. :func:`ensure_images` says which versions it used (:attr:`BuiltImages.summary`).
"""
from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker

__all__ = [
    "BuiltImages", "NODE_IMAGE", "REGISTRY_IMAGE", "THIRDPARTY_ENV", "ThirdPartyError", "build_rootfs_tar",
    "ensure_images", "ensure_node_image", "ensure_registry_image", "library_paths", "thirdparty_binaries",
]

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
REGISTRY_IMAGE = "krc-test/registry"  # stands in for registry:3
NODE_IMAGE = "krc-test/node"
#: The image users run; used as it is when the engine has it and no third-party binaries are given.
OFFICIAL_REGISTRY = "registry:3"

#: The one setting: a folder with the real binaries (bin/<name>.xz) and their SHA256SUMS.
THIRDPARTY_ENV = "KRC_THIRDPARTY_DIR"
THIRDPARTY_NAMES = ("registry", "containerd", "ctr")

DEBIAN_REGISTRY = Path("/usr/bin/docker-registry")  # Debian docker-registry: distribution 2.8
BUSYBOX = Path("/usr/bin/busybox")  # busybox-static
DEBIAN_CONTAINERD = (Path("/usr/bin/containerd"), Path("/usr/bin/ctr"))  # Debian containerd 1.6

#: registry:3's own config (distribution-library-image config-example.yml) and the 2.8 fallback's.
REGISTRY_CONFIG_V3 = IMAGES_DIR / "registry" / "config-v3.yml"
REGISTRY_CONFIG_28 = IMAGES_DIR / "registry" / "config-2.8.yml"
#: kind v0.32.0's base /etc/containerd/config.toml (containerd 2.x nodes) and the 1.6 fallback's.
KIND_CONTAINERD_CONFIG = IMAGES_DIR / "node" / "kind-v0.32.0-config.toml"
CONTAINERD_16_CONFIG = IMAGES_DIR / "node" / "containerd-1.6.toml"

# Bump when the recipe below changes in a way the hashed inputs do not show.
RECIPE_VERSION = "2"


class ThirdPartyError(RuntimeError):
    """KRC_THIRDPARTY_DIR is set but its binaries are missing or do not match SHA256SUMS."""


@dataclass(frozen=True)
class BuiltImages:
    """Tags of the images built for this session and what is in them."""

    registry: str
    node: str
    #: ``registry --version`` / ``containerd --version`` run inside the images, e.g. "3.1.1", "v2.3.1"
    registry_version: str = ""
    containerd_version: str = ""
    #: where each came from: "KRC_THIRDPARTY_DIR=<dir>", "the engine's registry:3 image", "Debian docker-registry", ...
    registry_source: str = ""
    containerd_source: str = ""

    @property
    def registry_v3(self) -> bool:
        return self.registry_version.lstrip("v").split(".")[0] == "3"

    @property
    def containerd_v2(self) -> bool:
        return int(self.containerd_version.lstrip("v").split(".")[0] or 0) >= 2

    @property
    def cold_fetches(self) -> int:
        """Upstream GETs per blob on one cold pull: v3 tees one download to client and storage
        (measured: ../shared/thirdparty/README.md); Debian's 2.8 downloads a cold blob twice."""
        return 1 if self.registry_v3 else 2

    @property
    def summary(self) -> str:
        """The one line every run prints."""
        return (f"integration tier: registry {self.registry_version} ({self.registry_source}), "
                f"containerd {self.containerd_version} ({self.containerd_source})")


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


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def thirdparty_binaries(directory: Path, cache: Path | None = None) -> dict[str, Path]:
    """name -> a checked executable for each of registry, containerd and ctr from ``directory``.

    ``bin/<name>.xz`` is decompressed once into ``cache`` (a folder per checksum) and the result is checked
    against ``SHA256SUMS`` every time it is used.

    :raises ThirdPartyError: a file is missing or a checksum does not match (never falls back silently).
    """
    sums_path = directory / "SHA256SUMS"
    if not sums_path.is_file():
        raise ThirdPartyError(f"{THIRDPARTY_ENV}={directory}: no SHA256SUMS there (expected the shared/thirdparty "
                              "folder with bin/registry.xz, bin/containerd.xz, bin/ctr.xz and SHA256SUMS)")
    sums: dict[str, str] = {}
    for line in sums_path.read_text().splitlines():
        match = re.match(r"^([0-9a-f]{64})\s+\*?(\S+)$", line.strip())
        if match:
            sums[Path(match[2]).name] = match[1]
    cache = cache or Path(tempfile.gettempdir()) / "krc-thirdparty"
    result = {}
    for name in THIRDPARTY_NAMES:
        expected = sums.get(name)
        if expected is None:
            raise ThirdPartyError(f"{THIRDPARTY_ENV}={directory}: SHA256SUMS has no line for {name}")
        packed = directory / "bin" / f"{name}.xz"
        target = cache / expected[:16] / name
        if not target.is_file():
            if not packed.is_file():
                raise ThirdPartyError(f"{THIRDPARTY_ENV}={directory}: {packed} is missing")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(f".{os.getpid()}.part")
            try:
                with lzma.open(packed) as source, partial.open("wb") as out:
                    for chunk in iter(lambda: source.read(1 << 20), b""):
                        out.write(chunk)
            except lzma.LZMAError as error:
                partial.unlink(missing_ok=True)
                raise ThirdPartyError(f"{THIRDPARTY_ENV}={directory}: {packed} is not valid xz: {error}") from error
            partial.chmod(0o755)
            partial.rename(target)
        actual = _sha256_file(target)
        if actual != expected:
            target.unlink(missing_ok=True)  # a bad copy is not kept for the next run
            raise ThirdPartyError(f"{THIRDPARTY_ENV}={directory}: {packed} gives a {name} with sha256 {actual}, "
                                  f"but SHA256SUMS says {expected}: refusing to use it")
        result[name] = target
    return result


def _thirdparty_dir() -> Path | None:
    value = os.environ.get(THIRDPARTY_ENV, "").strip()
    return Path(value).resolve() if value else None


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


def ensure_registry_image(client: docker.DockerClient, binaries: dict[str, Path] | None = None) -> tuple[str, str]:
    """The registry:3 stand-in (built once per content) and where its registry binary came from.

    Layout as in Docker Hub's registry:3 (distribution-library-image Dockerfile): /bin/registry,
    /etc/distribution/config.yml, /entrypoint.sh with its dispatch, ``OTEL_TRACES_EXPORTER=none``, volume
    /var/lib/registry, port 5000, ``CMD ["/etc/distribution/config.yml"]``; busybox gives /bin/sh and wget as
    alpine's does. With ``binaries`` (KRC_THIRDPARTY_DIR) the registry is the real v3 binary with registry:3's own
    config; without, the engine's ``registry:3`` image is used if present, else Debian's distribution 2.8
    with a config of the same shape.
    """
    entrypoint = (IMAGES_DIR / "registry" / "entrypoint.sh").read_bytes()
    if binaries:
        binary, config, source = binaries["registry"], REGISTRY_CONFIG_V3.read_bytes(), f"{THIRDPARTY_ENV}"
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


def ensure_node_image(client: docker.DockerClient, binaries: dict[str, Path] | None = None) -> tuple[str, str]:
    """The "node" image (built once per content) and where its containerd came from.

    With ``binaries``: containerd v2 and ctr in /usr/local/bin as in kind's base image, kind v0.32.0's
    /etc/containerd/config.toml and a cri-base.json made as kind makes it. Without: Debian's containerd 1.6
    with a ``version = 2`` config of kind's shape that 1.6 can load. node.py merges the patches onto the
    image's config.toml, as kind does, before containerd starts.
    """
    if binaries:
        exe = {"/usr/local/bin/containerd": binaries["containerd"], "/usr/local/bin/ctr": binaries["ctr"]}
        config = KIND_CONTAINERD_CONFIG.read_bytes()
        extra = {"/etc/containerd/cri-base.json": (cri_base_spec(binaries["ctr"]), 0o644)}
        source = THIRDPARTY_ENV
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
    """Both images, built only when their tag is missing, with the versions found inside them."""
    directory = _thirdparty_dir()
    binaries = thirdparty_binaries(directory) if directory else None
    registry, registry_source = ensure_registry_image(client, binaries)
    node, containerd_source = ensure_node_image(client, binaries)
    if directory:
        registry_source = containerd_source = f"{THIRDPARTY_ENV}={directory}"
    return BuiltImages(
        registry=registry, node=node,
        registry_version=_version_in(client, registry, "registry"),
        containerd_version=_version_in(client, node, "containerd"),
        registry_source=registry_source, containerd_source=containerd_source,
    )
