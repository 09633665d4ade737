"""Download the pinned kind release, checksum-verified: ``python -m krc.commands.kind --path P --url U --sha256 S``.

It runs inside a ``command.local.Command`` (never while the program merely runs): it leaves the verified binary at
``P`` (under ``~/.kind-registry-cache/bin/``, never on the user's PATH), or fails naming both digests and leaves
nothing behind. Which asset to fetch is chosen in krc/preflight/kindrelease.py.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from krc import versions
from krc.config import certsdir
from krc.preflight.kindrelease import INSTALL_KIND, Asset, KindReleaseError, bin_dir


def sha256_of(path: str) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _regular_or_missing(path: str) -> bool:
    """True if ``path`` is a regular file, False if it does not exist; refuses anything else (a symlink)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISREG(info.st_mode):
        return True
    raise KindReleaseError(f"{path} exists and is not a regular file (a symlink?); remove it yourself and run again")


def _check_ours(folder: str, path: str) -> None:
    """Refuse to write, replace or delete in a folder someone else could change, or a file that is not ours.

    The binary runs with the user's rights on every ``up``: the folder and every folder above it must be owned
    by root or the user and writable by no one else (krc.config.certsdir's rules), and an existing binary the
    user's own; a stale copy is deleted only then.
    """
    uid = os.geteuid()
    why = certsdir.unsafe_folders(path, uid)
    if why:
        raise KindReleaseError(f"{why}; kind is not downloaded there: fix the folder's owner or mode and run again")
    if os.path.lexists(path) and os.lstat(path).st_uid != uid:
        raise KindReleaseError(
            f"{path} is owned by user id {os.lstat(path).st_uid}, not by you; it is neither run nor replaced: "
            "remove it yourself and run again"
        )


Opener = Callable[[str], BinaryIO]


def _open_url(url: str) -> BinaryIO:
    return urllib.request.urlopen(url, timeout=60)  # noqa: S310 - https (or the tests' loopback server)


def ensure(target: Asset, opener: Opener = _open_url) -> str:
    """Leave the verified binary at ``target.path``; ``"present"`` if it already was, else ``"downloaded"``.

    Only ``target.path`` and ``target.path + ".part"`` are ever written or deleted, never through a symlink.
    """
    folder = os.path.dirname(target.path)
    os.makedirs(folder, exist_ok=True)
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise KindReleaseError(f"{folder} is not a plain folder (a symlink?); remove it yourself and run again")
    _check_ours(folder, target.path)
    if _regular_or_missing(target.path):
        if sha256_of(target.path) == target.sha256:
            os.chmod(target.path, 0o755)
            return "present"
        os.unlink(target.path)  # a stale or damaged copy of our own file: fetched again below
    part = target.path + ".part"
    if _regular_or_missing(part):
        os.unlink(part)
    digest = hashlib.sha256()
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as out, opener(target.url) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except KindReleaseError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure leaves no partial file and one clear message
        _remove(part)
        raise KindReleaseError(f"downloading kind {versions.KIND_VERSION} from {target.url} failed: {error}") from None
    got = digest.hexdigest()
    if got != target.sha256:
        _remove(part)
        raise KindReleaseError(
            f"kind {versions.KIND_VERSION} downloaded from {target.url} has sha256 {got}, but the pinned sha256 is "
            f"{target.sha256}; the file was removed and nothing was installed. Run again later, or {INSTALL_KIND}"
        )
    os.chmod(part, 0o755)
    os.replace(part, target.path)
    return "downloaded"


def _remove(path: str) -> None:
    if os.path.lexists(path) and not os.path.islink(path):
        os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m krc.commands.kind", description=__doc__)
    parser.add_argument("--path", required=True, help="where the binary is kept (under ~/.kind-registry-cache/bin)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--sha256", required=True)
    args = parser.parse_args(argv)
    folder = bin_dir(str(Path.home()))
    path = Path(args.path)
    if path.parent != folder or not path.name.startswith("kind-"):
        print(f"kind-registry-cache: refusing to write {path}: kind is kept only as {folder}/kind-*", file=sys.stderr)
        return 2
    target = Asset(os="", arch="", url=args.url, sha256=args.sha256, path=str(path))
    try:
        outcome = ensure(target)
    except (KindReleaseError, OSError) as error:
        print(f"kind-registry-cache: {error}", file=sys.stderr)
        return 1
    print(f"kind {versions.KIND_VERSION} {outcome}: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
