"""Finding a stack's caches on the Docker engine by their labels, and emptying or removing them (no Pulumi here).

Through the Docker CLI (:mod:`krc.commands.dockercli` says why not the Docker SDK), so it works with the
cluster down, after ``pulumi destroy`` (volumes only) and on Docker Desktop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from krc import versions
from krc.commands import dockercli
from krc.commands.dockercli import Runner
from krc.config import NAMESPACE
from krc.render import registry

Log = Callable[[str], None]


@dataclass
class CacheRef:
    """One stack's cache for one upstream: its container (if any) and its volume (if any)."""

    owner: str
    host: str
    container: str | None = None
    #: Docker's container state: ``running``, ``exited``, ``created``, ...
    state: str | None = None
    image: str | None = None
    volume: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"


def owner_of(stack: str) -> str:
    """The label value of a stack's caches: ``dev`` -> ``kind-registry-cache/dev``."""
    return stack if "/" in stack else f"{NAMESPACE}/{stack}"


_FIELD = "\x1f"


def find(runner: Runner, owner: str | None = None) -> list[CacheRef]:
    """Every cache container and volume on the engine (of ``owner`` only, if given), joined per upstream."""
    label = registry.LABEL_STACK + (f"={owner}" if owner else "")
    stack_label = f'{{{{.Label "{registry.LABEL_STACK}"}}}}'
    upstream_label = f'{{{{.Label "{registry.LABEL_UPSTREAM}"}}}}'
    containers = dockercli.run_ok(runner, [
        "ps", "-a", "--no-trunc", "--filter", f"label={label}",
        "--format", _FIELD.join(["{{.Names}}", "{{.State}}", "{{.Image}}", stack_label, upstream_label]),
    ])
    volumes = dockercli.run_ok(runner, [
        "volume", "ls", "--filter", f"label={label}",
        "--format", _FIELD.join(["{{.Name}}", stack_label, upstream_label]),
    ])
    refs: dict[tuple[str, str], CacheRef] = {}
    for line in containers.text.splitlines():
        name, state, image, stack, host = (line.split(_FIELD) + [""] * 5)[:5]
        if stack and host:
            refs[(stack, host)] = CacheRef(stack, host, container=name, state=state, image=image)
    for line in volumes.text.splitlines():
        name, stack, host = (line.split(_FIELD) + [""] * 3)[:3]
        if stack and host:
            refs.setdefault((stack, host), CacheRef(stack, host)).volume = name
    return sorted(refs.values(), key=lambda r: (r.owner, r.host))


#: Empties the registry's data folder (the volume's mount point stays).
_EMPTY = f'cd {registry.DATA_DIR} && rm -rf -- ./* ./.[!.]* ./..?*'


def purge(runner: Runner, refs: Sequence[CacheRef], image: str = versions.REGISTRY_IMAGE, dry_run: bool = False,
          log: Log = print) -> None:
    """Empty or remove each cache in ``refs``; nothing else is touched.

    A running cache is emptied through its own container and restarted (the registry keeps blob
    descriptors in memory); a stopped one is emptied by a throwaway container, so the container and
    the volume Pulumi created stay valid. A volume without a container (after ``pulumi destroy``) is removed.
    """
    for ref in refs:
        if ref.container and ref.volume:
            if ref.running:
                steps = [dockercli.exec_args(ref.container, ["sh", "-c", _EMPTY]), ["restart", ref.container]]
                what = f"emptied {ref.volume} through {ref.container} and restarted it"
            else:
                steps = [["run", "--rm", "--pull", "never", "--network", "none", "--entrypoint", "/bin/sh",
                          "-v", f"{ref.volume}:{registry.DATA_DIR}", ref.image or image, "-c", _EMPTY]]
                what = f"emptied {ref.volume} (its container {ref.container} is {ref.state})"
        elif ref.volume:
            steps = [["volume", "rm", ref.volume]]
            what = f"removed volume {ref.volume}"
        else:
            log(f"{ref.owner} {ref.host}: container {ref.container} has no cache volume; nothing to purge")
            continue
        if dry_run:
            log(f"would run: {' ; '.join('docker ' + ' '.join(step[:4]) + ' ...' for step in steps)}")
            continue
        for step in steps:
            dockercli.run_ok(runner, step)
        log(f"{ref.owner} {ref.host}: {what}")
