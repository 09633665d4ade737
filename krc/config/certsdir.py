"""``certsDir``: which host folder may hold the certs, and who owns an existing one (no Pulumi here).

Kept hand-written (no validation library knows these rules): the path is judged by its text alone in
:func:`resolve` (the home folder, a folder above it, ``/``, top-level and system folders are refused, since
``destroy`` removes what the program wrote there), and :func:`ownership_problem` reads the file system
only, to refuse an existing folder this stack did not create. The sh scripts that write and remove the
folder are :mod:`krc.render.certs`.
"""

from __future__ import annotations

import os
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


def resolve(raw: object, home: str) -> tuple[str, str | None]:
    """Expand ``~`` and check a ``certsDir`` value by its text alone; return (path, problem).

    Refused: a relative path, ``.``/``..`` parts, ``/``, the home folder or any folder above it, a
    top-level folder, and anything inside a system folder (:data:`SYSTEM_FOLDERS`).
    """
    fix = "set it to a folder of its own that does not exist yet, such as '~/.kind-registry-cache/<stack>/certs.d'"
    if checks.text_problem(raw) is not None:
        return "", f"must be a folder path without control characters; got {show(raw)}; {fix}"
    assert isinstance(raw, str)
    text = raw
    if text == "~" or text.startswith("~/"):
        text = home + text[1:]
    if not text.startswith("/"):
        return "", f"must be an absolute path or start with '~/' (kind mounts it into nodes); got {show(raw)}"
    if any(part in (".", "..") for part in text.split("/")):
        return "", f"must not contain '.' or '..' parts; got {show(raw)}; {fix}"
    path = PurePosixPath(text)
    home_path = PurePosixPath(home)
    if path == home_path or home_path.is_relative_to(path):
        return "", f"is the home folder or a folder above it ({path}); the program deletes what it writes there on destroy: {fix}"
    if len(path.parts) <= 2:
        return "", f"is the top-level folder {path}; {fix}"
    for system in SYSTEM_FOLDERS:
        if path.is_relative_to(system):
            return "", f"is inside the system folder {system} ({path}); {fix}"
    return str(path), None


def ownership_problem(path: str, owner: str, *, legacy_ok: bool = False) -> str | None:
    """Why the existing ``path`` may not be used by ``owner``, or ``None``. Reads the file system only.

    A folder that does not exist yet is fine (the create script makes it and writes the owner file).
    :param legacy_ok: accept the empty marker earlier versions wrote (only for the stack's default folder).
    """
    fix = "set kind-registry-cache:certsDir to a folder that does not exist yet (the program creates it)"
    if os.path.islink(path):
        return f"{path} is a symbolic link; the program never writes or deletes through one: {fix}"
    if not os.path.lexists(path):
        return None
    if not os.path.isdir(path):
        return f"{path} exists and is not a folder: {fix}"
    found = _read_owner(os.path.join(path, OWNER_FILE))
    if found == owner_line(owner):
        return None
    if found is None and legacy_ok and _regular_file(os.path.join(path, LEGACY_MARKER)):
        return None
    if found is None:
        return f"{path} already exists and was not created by this stack (it has no {OWNER_FILE} file): {fix}"
    return f"{path} belongs to another stack ({found.removeprefix('owner=')}): {fix}"


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
