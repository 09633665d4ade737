"""``certsDir``: which host folder may hold the certs, and who owns an existing one (no Pulumi here).

Kept hand-written (no validation library knows these rules): the path is judged by its text alone in
:func:`resolve` (the home folder, a folder above it, ``/``, top-level and system folders are refused, since
``destroy`` removes what the program wrote there), and :func:`ownership_problem` reads the file system
only, to refuse an existing folder this stack did not create. The sh scripts that write and remove the
folder are :mod:`krc.render.certs`.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from pathlib import PurePosixPath

from . import checks
from .errors import show

#: In the certs folder: ``owner=<project>/<stack>`` of the stack that created it.
OWNER_FILE = ".kind-registry-cache-owner"
#: The empty marker earlier versions wrote; accepted only in the stack's default folder.
LEGACY_MARKER = ".managed-by-kind-registry-cache"

#: Folders that hold the system and must never hold (or be) a certs folder. A path inside one of
#: them, or any top-level folder (``/tmp``, ``/home``, ``/opt`` ...), is refused.
SYSTEM_FOLDERS = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
    "/sys", "/usr", "/var", "/snap", "/System", "/Library", "/Applications", "/private", "/cores",
)  # fmt: skip



def default_path(project: str, stack: str) -> str:
    """The stack's own certs folder unless ``certsDir`` is set."""
    return f"~/.{project}/{stack}/certs.d"


def owner_line(owner: str) -> str:
    """The content of :data:`OWNER_FILE` for ``<project>/<stack>``."""
    return f"owner={owner}"


#: Linux's PATH_MAX (4096 bytes with the final NUL) and NAME_MAX (255 bytes per name): a longer path fails
#: only when the script writes it (linux include/uapi/linux/limits.h).
PATH_MAX = 4095
NAME_MAX = 255
#: The longest name the scripts write under the folder: ``<host>/hosts.toml.tmp`` with a 253-byte host name.
LONGEST_ENTRY = 253 + len("/hosts.toml.tmp")

_FIX = "set it to a folder of its own that does not exist yet, such as '~/.kind-registry-cache/<stack>/certs.d'"


def _shown(path: object) -> str:
    """A path inside a message: a URL-like part's userinfo removed (``//me:pw@host/x``), escaped if not plain."""
    text = checks.redact(str(path))
    return text if text.isascii() and text.isprintable() else checks.quoted(text) + checks.non_ascii_names(text)


def _normal(text: str) -> str:
    """``text`` with runs of '/' made one: ``//etc`` is ``/etc`` on Linux and macOS, and so judged."""
    return re.sub(r"/+", "/", text)


def resolve(raw: object, home: str) -> tuple[str, str | None]:
    """Expand ``~`` and check a ``certsDir`` value by its text alone; return (path, problem).

    Refused: a relative path, ``.``/``..`` parts, ``/``, the home folder or any folder above it, a
    top-level folder, and anything inside a system folder (:data:`SYSTEM_FOLDERS`). Repeated slashes are
    one (``//etc``), and the comparisons ignore case (``/ETC`` is ``/etc`` on a case-insensitive disk, and
    Docker Desktop's macOS and Windows disks are). A path too long to write is refused too.
    """
    if checks.text_problem(raw) is not None:
        return "", f"must be a folder path without control characters; got {show(raw)}; {_FIX}"
    assert isinstance(raw, str)
    text = raw
    if text == "~" or text.startswith("~/"):
        text = home + text[1:]
    if not text.startswith("/"):
        return "", f"must be an absolute path or start with '~/' (kind mounts it into nodes); got {show(raw)}"
    text = _normal(text)
    if any(part in (".", "..") for part in text.split("/")):
        return "", f"must not contain '.' or '..' parts; got {show(raw)}; {_FIX}"
    path = PurePosixPath(text)
    why = judge(path, PurePosixPath(_normal(home)))
    if why:
        return "", why
    too_long = next((p for p in path.parts[1:] if len(p.encode()) > NAME_MAX), None)
    if too_long is not None or len(str(path).encode()) + 1 + LONGEST_ENTRY > PATH_MAX:
        return "", (
            f"is too long to write ({len(str(path).encode())} bytes; a name may have {NAME_MAX} bytes and a path "
            f"{PATH_MAX}, with room for '<registry host>/hosts.toml' under it); {_FIX}"
        )
    return str(path), None


def judge(path: PurePosixPath, home: PurePosixPath) -> str | None:
    """Why the absolute, normal ``path`` may not be a certs folder (home or above it, top-level, system), or ``None``.

    Case is ignored, so ``/ETC/x`` is judged as ``/etc/x``.
    """
    folded, home_folded = PurePosixPath(str(path).casefold()), PurePosixPath(str(home).casefold())
    if folded == home_folded or home_folded.is_relative_to(folded):
        return f"is the home folder or a folder above it ({_shown(path)}); the program deletes what it writes there on destroy: {_FIX}"
    if folded.is_relative_to(home_folded):
        return None  # inside the user's own home, wherever that is (/var/home/<user> on Fedora Silverblue)
    if len(path.parts) <= 2:
        return f"is the top-level folder {_shown(path)}; {_FIX}"
    for system in SYSTEM_FOLDERS:
        if folded.is_relative_to(system.casefold()):
            return f"is inside the system folder {system} ({_shown(path)}); {_FIX}"
    return None


#: The program's folder under the home folder: downloaded tools (``bin``), Pulumi's state (``state``), one folder
#: per stack.
PROGRAM_FOLDER = ".kind-registry-cache"


def program_folders(home: str) -> tuple[str, str]:
    """The folders of the program's own files every stack shares: the downloaded kind, and the Pulumi state
    (Pulumi.yaml's ``backend.url``)."""
    root = PurePosixPath(home) / PROGRAM_FOLDER
    return str(root / "bin"), str(root / "state")


def program_paths_problem(path: str, *, record: str, own_folders: tuple[str, ...]) -> str | None:
    """Why ``path`` would hold (or be) the program's own files: the cluster's record, or one of ``own_folders``
    (the stack's state folder, the downloaded kind's folder). Their removal would follow the certs folder's."""
    target = PurePosixPath(path)
    for own in (record, *own_folders):
        own_path = PurePosixPath(own)
        if own_path == target or own_path.is_relative_to(target):
            what = "the cluster's record" if own == record else "the program's own folder"
            return f"{_shown(path)} is or holds {what} {_shown(own)}; {_FIX}"
    return None


def ownership_problem(path: str, owner: str, *, legacy_ok: bool = False, home: str | None = None) -> str | None:
    """Why the ``path`` may not be used by ``owner``, or ``None``. Reads the file system only.

    - The path is judged as it resolves (:func:`os.path.realpath`: a symbolic link in a parent is followed),
      against the same rules as its text (:func:`judge`).
    - Every existing folder on the way from ``/`` must be owned by root or the user running the program,
      and writable by no one else (a sticky world-writable folder such as ``/tmp`` is fine above it: others
      cannot rename what is ours there); otherwise another user could swap the folder the nodes mount.
    - An existing certs folder must be owned by the user, writable by no one else, hold nothing of another
      user, and carry :data:`OWNER_FILE` naming this stack — the file's text alone is not trusted.

    A folder that does not exist yet is fine (the create script makes it and writes the owner file).
    :param legacy_ok: accept the empty marker earlier versions wrote (only for the stack's default folder).
    :param home: the home folder, for judging the resolved path (``None``: the running user's).
    """
    fix = "set kind-registry-cache:certsDir to a folder that does not exist yet (the program creates it)"
    if os.path.islink(path):
        return f"{_shown(path)} is a symbolic link; the program never writes or deletes through one: {fix}"
    real = os.path.realpath(path)
    if real != _normal(path):
        why = judge(PurePosixPath(real), PurePosixPath(_normal(os.path.realpath(home or os.path.expanduser("~")))))
        if why:
            return f"{_shown(path)} resolves through a symbolic link to {_shown(real)}, which {why}"
    uid = os.geteuid()
    why = unsafe_folders(real, uid)
    if why:
        return f"{why}; another user could replace what the nodes mount: {fix}"
    if not os.path.lexists(path):
        return None
    if not os.path.isdir(path):
        return f"{_shown(path)} exists and is not a folder: {fix}"
    info = os.lstat(real)
    if info.st_uid != uid:
        return f"{_shown(path)} is owned by user id {info.st_uid}, not by you (user id {uid}): {fix}"
    if _others_can_write(info, uid):
        return f"{_shown(path)} is writable by other users (mode {stat.filemode(info.st_mode)}): {fix}"
    for entry in os.scandir(real):
        found = entry.stat(follow_symlinks=False)
        if found.st_uid not in (uid, 0) or (entry.is_dir(follow_symlinks=False) and _others_can_write(found, uid)):
            return f"{_shown(path)} holds {entry.name}, which another user owns or can write: {fix}"
    found_owner = _read_owner(os.path.join(path, OWNER_FILE))
    if found_owner == owner_line(owner):
        return None
    if found_owner is None and legacy_ok and _regular_file(os.path.join(path, LEGACY_MARKER)):
        return None
    if found_owner is None:
        return f"{_shown(path)} already exists and was not created by this stack (it has no {OWNER_FILE} file): {fix}"
    return f"{_shown(path)} belongs to another stack ({found_owner.removeprefix('owner=')}): {fix}"


def unsafe_folders(path: str, uid: int, below: str = "the certs folder") -> str | None:
    """Why an existing folder on the way to ``path`` (``path`` itself excluded) is not trusted, or ``None``.

    ``below`` names what ``path`` is, in the message (the artifact store uses these rules too).
    """
    current = os.path.dirname(path.rstrip("/")) or "/"
    while True:
        try:
            info = os.stat(current)
        except FileNotFoundError:
            info = None
        if info is not None:
            if info.st_uid not in (0, uid):
                return f"{_shown(current)}, above {below}, is owned by user id {info.st_uid} (neither root nor you)"
            if not info.st_mode & stat.S_ISVTX and _others_can_write(info, uid):
                return f"{_shown(current)}, above {below}, is writable by other users (mode {stat.filemode(info.st_mode)})"
        if current == "/":
            return None
        current = os.path.dirname(current)


def _others_can_write(info: os.stat_result, uid: int) -> bool:
    """Whether someone besides ``uid`` (and root) may write: world-writable, or group-writable by a group that
    is not the user's own (a group of the user alone, as user-private-group systems make, is fine)."""
    if info.st_mode & stat.S_IWOTH:
        return True
    return bool(info.st_mode & stat.S_IWGRP) and not _private_group(info.st_gid, uid)


def _private_group(gid: int, uid: int) -> bool:
    try:
        me = pwd.getpwuid(uid)
        group = grp.getgrgid(gid)
    except KeyError:
        return False
    if me.pw_gid != gid or any(member != me.pw_name for member in group.gr_mem):
        return False
    return not any(user.pw_gid == gid and user.pw_uid != uid for user in pwd.getpwall())


def _regular_file(path: str) -> bool:
    return os.path.isfile(path) and not os.path.islink(path)


def _read_owner(path: str) -> str | None:
    if not _regular_file(path):
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(512).strip()
    except OSError:
        return None
