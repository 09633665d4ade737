"""The pinned kind release: which binary this machine needs, where it comes from and where it is kept (no I/O here).

The download itself is ``python -m krc.commands.kind`` (krc/commands/kind.py).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from krc import versions
from krc.config import certsdir

#: Where kind publishes release assets (``kind-<os>-<arch>`` and ``kind-<os>-<arch>.sha256sum``).
DEFAULT_BASE_URL = f"https://github.com/kubernetes-sigs/kind/releases/download/{versions.KIND_VERSION}"

#: Internal, for tests only: another base URL for the assets (a fake server on loopback).
BASE_URL_ENV = "KRC_KIND_DOWNLOAD_BASE"

INSTALL_KIND = "install kind v0.27 or newer yourself: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"

_OS = {"linux": "linux", "darwin": "darwin", "windows": "windows"}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class KindReleaseError(RuntimeError):
    """The pinned kind cannot be used here: unsupported platform, failed download, or checksum mismatch."""


@dataclass(frozen=True)
class Asset:
    """One release binary: where it comes from, its pinned digest, and where it is kept."""

    os: str
    arch: str
    url: str
    sha256: str
    path: str


def machine_platform(system: str | None = None, machine: str | None = None) -> tuple[str, str]:
    """This machine as kind names its assets: ``("linux", "amd64")``; unknown names are kept lower-cased."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    return _OS.get(system, system), _ARCH.get(machine, machine)


def bin_dir(home: str) -> Path:
    """The program's own folder for downloaded tools."""
    return Path(certsdir.program_folders(home)[0])


def asset(
    home: str,
    base_url: str | None = None,
    os_arch: tuple[str, str] | None = None,
    table: Mapping[tuple[str, str], str] = versions.KIND_SHA256,
) -> Asset:
    """The pinned kind for this machine (or ``os_arch``); :class:`KindReleaseError` when none is pinned."""
    os_name, arch = os_arch or machine_platform()
    digest = table.get((os_name, arch))
    if digest is None:
        supported = ", ".join(f"{o}/{a}" for o, a in sorted(table))
        raise KindReleaseError(
            f"no checksum of kind {versions.KIND_VERSION} is pinned for {os_name}/{arch} (pinned: {supported}), "
            f"so it is not downloaded: {INSTALL_KIND}"
        )
    name = f"kind-{os_name}-{arch}"
    return Asset(
        os=os_name,
        arch=arch,
        url=f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/{name}",
        sha256=digest,
        path=str(bin_dir(home) / f"kind-{versions.KIND_VERSION}-{os_name}-{arch}"),
    )
