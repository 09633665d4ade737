"""``cachectl registry``: the local registries found by their labels, their size and repositories (a fake Docker
CLI; tests/integration/test_local_registry.py runs it against a real engine and registry)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from krc.commands import cachectl, localregistries
from krc.commands.dockercli import Result

DEV, CI = "kind-registry-cache/dev", "kind-registry-cache/ci"
SEP = localregistries._FIELD
SECTION = localregistries._SECTION


@dataclass
class FakeEngine:
    """``docker ps``/``volume ls`` filtered by label, exec of the probe in a running registry, throwaway containers."""

    #: name -> (owner, state or None for a volume alone, port label, KiB, repositories)
    registries: dict[str, tuple[str, str | None, str, int, list[str]]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, args: Sequence[str]) -> Result:
        args = list(args)
        self.calls.append(args)
        filters = [args[i + 1].removeprefix("label=") for i, a in enumerate(args) if a == "--filter"]
        owner = next((f.split("=", 1)[1] for f in filters if f.startswith("kind-registry-cache.stack=")), None)
        if args[:2] == ["ps", "-a"]:
            assert "kind-registry-cache.role=local-registry" in filters
            rows = [SEP.join([n, s, "registry:3", o, p]) for n, (o, s, p, _, _) in self.registries.items()
                    if s and owner in (None, o)]
            return Result(0, "".join(r + "\n" for r in rows).encode(), "")
        if args[:2] == ["volume", "ls"]:
            assert "kind-registry-cache.role=local-registry" in filters
            rows = [SEP.join([n, o]) for n, (o, *_) in self.registries.items() if owner in (None, o)]
            return Result(0, "".join(r + "\n" for r in rows).encode(), "")
        if args[0] == "exec":
            owner_, state, _, kib, repos = self.registries[args[1]]
            assert state == "running" and "/v2/_catalog?n=1000" in args[-1]
            catalog = json.dumps({"repositories": repos})
            return Result(0, f"{SECTION}disk\n{kib}\n{SECTION}catalog\n{catalog}\n".encode(), "")
        if args[0] == "run":
            assert ["--network", "none"] == args[args.index("--network"):args.index("--network") + 2]
            volume = next(a for a in args if a.endswith(":/var/lib/registry:ro")).split(":")[0]
            _, _, _, kib, repos = self.registries[volume]
            return Result(0, (f"{SECTION}disk\n{kib}\n{SECTION}stored\n" + "".join(r + "\n" for r in repos)).encode(), "")
        raise AssertionError(f"unexpected docker call {args}")


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine({
        "kcr-dev-local-registry": (DEV, "running", "5001", 2048, ["app", "acme/api"]),
        "kcr-ci-local-registry": (CI, None, "", 512, ["tool"]),  # after `pulumi destroy`: the volume alone
    })


def test_find_joins_container_and_volume_per_stack(engine):
    refs = localregistries.find(engine)
    assert [(r.owner, r.name, r.container, r.state, r.port, r.volume) for r in refs] == [
        (CI, "kcr-ci-local-registry", None, None, None, "kcr-ci-local-registry"),
        (DEV, "kcr-dev-local-registry", "kcr-dev-local-registry", "running", "5001", "kcr-dev-local-registry"),
    ]
    assert [r.owner for r in localregistries.find(engine, DEV)] == [DEV]


def test_a_running_registry_lists_its_catalog_and_size(engine):
    (ref,) = localregistries.find(engine, DEV)
    stats = localregistries.collect(engine, ref)
    assert (stats.disk_bytes, stats.repositories, stats.host_port) == (2048 * 1024, ["acme/api", "app"], 5001)
    assert not any(call[0] == "run" for call in engine.calls)


def test_a_volume_alone_is_read_by_a_throwaway_container(engine):
    (ref,) = localregistries.find(engine, CI)
    stats = localregistries.collect(engine, ref)
    assert (stats.state, stats.disk_bytes, stats.repositories) == ("no container", 512 * 1024, ["tool"])


def test_running_only_starts_nothing(engine):
    (ref,) = localregistries.find(engine, CI)
    stats = localregistries.collect(engine, ref, running_only=True)
    assert stats.repositories is None and "not running" in stats.notes[0]
    assert not any(call[0] == "run" for call in engine.calls)


def test_an_unreadable_catalog_is_a_note():
    def runner(args):
        if args[0] == "exec":
            return Result(1, f"{SECTION}disk\n8\n{SECTION}catalog\n".encode(), "wget: server returned error: HTTP/1.1 503")
        raise AssertionError(args)

    ref = localregistries.RegistryRef(DEV, "r", container="r", state="running", port="5001", volume="r")
    stats = localregistries.collect(runner, ref)
    assert stats.repositories is None and "503" in stats.notes[0] and stats.disk_bytes == 8192


def test_registry_command_table_and_json(engine, capsys):
    assert cachectl.main(["registry"], runner=engine) == 0
    table = capsys.readouterr().out
    assert "kcr-dev-local-registry" in table and "localhost:5001" in table and "2.0 MiB" in table
    assert "kcr-dev-local-registry: acme/api, app" in table
    assert cachectl.main(["registry", "--json", "--stack", "dev"], runner=engine) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {DEV: {"kcr-dev-local-registry": {
        "container": "kcr-dev-local-registry", "volume": "kcr-dev-local-registry", "state": "running",
        "hostPort": 5001, "pushUrl": "localhost:5001", "diskBytes": 2048 * 1024,
        "repositories": ["acme/api", "app"], "notes": [],
    }}}


def test_no_registry_says_so(capsys):
    assert cachectl.main(["registry"], runner=FakeEngine()) == 0
    assert "no local registry found" in capsys.readouterr().out


def test_caches_ignore_the_registry(engine):
    # `cachectl stats` and `purge` find caches by their upstream label, which the registry does not carry.
    from krc.commands import caches

    def runner(args):
        assert "label=kind-registry-cache.stack" in args[args.index("--filter") + 1]
        if args[0] == "ps":  # name, state, image, stack, upstream (none)
            return Result(0, b"kcr-dev-local-registry\x1frunning\x1fregistry:3\x1fkind-registry-cache/dev\x1f\n", "")
        return Result(0, b"kcr-dev-local-registry\x1fkind-registry-cache/dev\x1f\n", "")  # name, stack, upstream

    assert caches.find(runner) == []
