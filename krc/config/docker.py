"""``docker``: which Docker engine to use (no Pulumi here).

pydantic checks the shape; the endpoint URL is checked by :func:`krc.config.checks.parse_url` (kept
hand-written: ``ssh://user@host`` may name a user but never a password, and the value is never echoed
with its userinfo).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from . import checks
from .base import ConfigModel
from .errors import fail, show

DOCKER_HOST_SCHEMES = ("unix", "tcp", "ssh", "npipe")
#: sockaddr_un's sun_path holds 108 bytes on Linux with the final NUL (man 7 unix); macOS has 104.
SOCKET_PATH_MAX = 107


@dataclass(frozen=True)
class DockerSettings:
    """Which Docker engine to use; ``None`` means what the Docker CLI uses."""

    host: str | None = None


def _docker_host(host: Any) -> str | None:
    if host in (None, ""):
        return None
    # ssh://user@host is how Docker names a remote engine; a password never belongs in it.
    if isinstance(host, str) and host.startswith(("unix://", "npipe://")):
        why = checks.text_problem(host)  # a socket path: no host to check
        path = host.split("://", 1)[1]
        if why is None and host.startswith("unix://") and len(path.encode()) > SOCKET_PATH_MAX:
            why = (
                f"has a socket path of {len(path.encode())} bytes; a Unix socket's path has at most {SOCKET_PATH_MAX} "
                "(connecting fails only when `up` runs): use a shorter path or a symbolic link to the socket"
            )
    else:
        why = checks.parse_url(host, DOCKER_HOST_SCHEMES, userinfo="user")[1]
    if why:
        raise fail(
            f"must be a Docker endpoint URL ({', '.join(s + '://' for s in DOCKER_HOST_SCHEMES)}); the value {why}: {show(host)}"
        )
    return host


class DockerConfig(ConfigModel):
    """The Docker engine."""

    host: Annotated[
        str | None,
        BeforeValidator(_docker_host),
        WithJsonSchema({"type": "string", "pattern": "^(unix|tcp|ssh|npipe)://"}),
    ] = None
    """The engine's endpoint (default: DOCKER_HOST, else the Docker CLI's current context)."""

    def settings(self) -> DockerSettings:
        return DockerSettings(self.host)
