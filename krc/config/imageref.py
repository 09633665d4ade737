"""Image references as containerd resolves them: registry host, repository, tag or digest (no Pulumi here)."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Docker Hub's name in image references; containerd's certs.d folder for it is ``docker.io``.
DOCKER_HUB = "docker.io"

# distribution/reference's grammar, simplified: lowercase path components joined by '/', a tag of up to
# 128 word characters, a sha256 digest.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", re.ASCII)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}", re.ASCII)
_HOST = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?", re.ASCII)


#: The longest repository path (without the registry host) distribution accepts: longer names are refused with
#: "repository name must not be more than 255 characters" (distribution v3.1.1, vendored
#: github.com/distribution/reference v0.6.0 reference.go:39 RepositoryNameTotalLengthMax, checked at :209 and :256;
#: the cache checks every request's name with reference.WithName, registry/handlers/app.go:743).
REPOSITORY_NAME_MAX = 255


class ReferenceError(ValueError):
    """The text is not an image reference; the message says why."""


@dataclass(frozen=True)
class ImageRef:
    """One image: ``host/repository`` plus a tag, a digest, or both (the digest wins when pulling)."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def pinned(self) -> bool:
        """Whether the reference names a version (a tag or a digest) rather than implying ``latest``."""
        return self.tag is not None or self.digest is not None

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> ImageRef:
    """Split an image reference the way containerd and Docker do.

    The first path component is a registry host when it contains ``.`` or ``:`` or is ``localhost``;
    otherwise the image is on Docker Hub, where a single-component name lives under ``library/``
    (``nginx`` -> ``docker.io/library/nginx``). ``index.docker.io`` is Docker Hub too.

    :raises ReferenceError: when ``text`` is not a reference.
    """
    if not isinstance(text, str) or not text or text != text.strip():
        raise ReferenceError("not an image reference (empty, not text, or surrounded by spaces)")
    name, _, digest = text.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise ReferenceError("the digest must be sha256: and 64 hex digits")
    tag = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ReferenceError(f"{tag!r} is not a valid tag")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        host, path = parts[0].lower(), parts[1:]
        if not _HOST.fullmatch(host):
            raise ReferenceError(f"{parts[0]!r} is not a registry host")
    else:
        host, path = DOCKER_HUB, parts
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = DOCKER_HUB
    if host == DOCKER_HUB and len(path) == 1:
        path = ["library", *path]
    for component in path:
        if not _COMPONENT.fullmatch(component):
            raise ReferenceError(f"{component!r} is not a valid repository name component (lowercase)")
    repository = "/".join(path)
    if len(repository) > REPOSITORY_NAME_MAX:
        raise ReferenceError(
            f"its repository name has {len(repository)} characters; registries (distribution) accept at most "
            f"{REPOSITORY_NAME_MAX}"
        )
    return ImageRef(host=host, repository=repository, tag=tag, digest=digest or None)


def repository_length_problem(text: str) -> str | None:
    """Why the image ``text`` names a repository longer than :data:`REPOSITORY_NAME_MAX`, or ``None``."""
    name = text.partition("@")[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    repository = "/".join(parts)
    if len(repository) > REPOSITORY_NAME_MAX:
        return (
            f"its repository name has {len(repository)} characters; registries (distribution) accept at most "
            f"{REPOSITORY_NAME_MAX}"
        )
    return None
