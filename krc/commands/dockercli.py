"""The Docker CLI as the cache tools use it: one injectable function that runs ``docker <args>`` (no Pulumi here).

The warm-up and ``cachectl`` reach the caches through the Docker API (``docker exec``), never over the
network: Docker Desktop cannot route from the host to container addresses, and a cache publishes no port
by default. The CLI follows ``DOCKER_HOST`` and the current context, as kind and the program do;
that is why this is the CLI and not the Docker SDK, whose ``from_env()`` reads ``DOCKER_HOST`` but not the
current docker context (Docker Desktop and Colima select theirs by context).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """What one ``docker`` command did."""

    code: int
    stdout: bytes
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


#: Runs ``docker <args>`` and returns its result; tests pass a fake.
Runner = Callable[[Sequence[str]], Result]


class DockerError(RuntimeError):
    """A docker command failed; the message carries its stderr."""


def cli(args: Sequence[str], timeout: float = 900.0) -> Result:
    """Run the real Docker CLI (``DOCKER_HOST`` comes from the environment)."""
    try:
        done = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return Result(127, b"", "the docker CLI is not on PATH")
    except subprocess.TimeoutExpired:
        return Result(124, b"", f"docker {' '.join(args[:3])} ... did not finish within {timeout:.0f}s")
    return Result(done.returncode, done.stdout, done.stderr.decode(errors="replace"))


def run_ok(runner: Runner, args: Sequence[str]) -> Result:
    """Run ``docker <args>``; raise :class:`DockerError` when it fails."""
    result = runner(args)
    if not result.ok:
        raise DockerError(f"docker {' '.join(args)}: {result.stderr.strip() or f'exit {result.code}'}")
    return result


def exec_args(container: str, command: Sequence[str]) -> list[str]:
    """``docker exec`` arguments running ``command`` inside ``container``."""
    return ["exec", container, *command]
