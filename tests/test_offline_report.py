"""``cachectl offline`` against a fake Docker CLI: what it asks, what it concludes, its table, JSON and exit code.
The real thing (real registry v3.1.1 caches and a containerd v2.3.1 node) is tests/integration/test_offline_report.py."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fakedocker import NOT_FOUND, FakeUpstream
from krc.commands import cachectl, offline
from krc.commands.dockercli import Result
from krc.preflight import store

PINNED = offline.PINNED_FILTER


@dataclass
class Volume:
    """What one cache volume holds: tags -> digest, manifests, blobs."""

    upstream: FakeUpstream
    tags: set[tuple[str, str]] = field(default_factory=set)
    blobs: set[str] = field(default_factory=set)

    def hold(self, repository: str, tag: str, all_blobs: bool = True) -> None:
        self.tags.add((repository, tag))
        blobs = list(self.upstream.platform_blobs(repository, tag))
        self.blobs.update(blobs if all_blobs else blobs[:1])


@dataclass
class Engine:
    """A fake ``docker`` CLI: kind nodes with image lists, cache volumes, images, throwaway views."""

    volumes: dict[str, Volume] = field(default_factory=dict)
    nodes: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    images: set[str] = field(default_factory=set)
    views: dict[str, str] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __call__(self, args: Sequence[str]) -> Result:
        args = list(args)
        self.calls.append(args)
        if args[:2] == ["version", "--format"]:
            return Result(0, b"linux/amd64\n", "")
        if args[0] == "ps":
            return Result(0, "".join(f"{n} worker\n" for n in self.nodes).encode(), "")
        if args[:2] == ["image", "inspect"]:
            return Result(0, b"sha256:x\n", "") if args[-1] in self.images else Result(1, b"", "No such image")
        if args[0] == "run":
            name = args[args.index("--name") + 1]
            if args[args.index("--entrypoint") + 2] not in self.images:
                return Result(125, b"", f"Unable to find image '{args[args.index('--entrypoint') + 2]}' locally")
            volume = next(a for a in args if a.endswith(":/var/lib/registry:ro")).split(":")[0]
            assert "--network" in args and args[args.index("--network") + 1] == "none"
            assert "REGISTRY_STORAGE_MAINTENANCE_READONLY={\"enabled\": true}" in args
            assert not any(a.startswith("REGISTRY_PROXY") for a in args)
            self.views[name] = volume
            return Result(0, b"id\n", "")
        if args[:2] == ["rm", "-f"]:
            self.removed.append(args[2])
            return Result(0, b"", "")
        if args[0] == "exec":
            return self._exec(args[1], args[2:])
        raise AssertionError(f"unexpected docker {shlex.join(args)}")

    def _exec(self, container: str, command: list[str]) -> Result:
        if container in self.nodes:
            every, pinned = self.nodes[container]
            assert PINNED in command[-1]
            return Result(0, ("\n".join(every) + "\n---\n" + "\n".join(pinned) + "\n").encode(), "")
        volume = self.volumes[self.views[container]]
        if command[0] == "wget" and command[-1].endswith("/v2/"):
            return Result(0, b"", "")
        if command[0] == "wget":
            path = command[-1].split(":5000", 1)[1]
            repository, _, reference = path.removeprefix("/v2/").partition("/manifests/")
            digest = reference if reference.startswith("sha256:") else (
                volume.upstream.tags.get((repository, reference)) if (repository, reference) in volume.tags else None)
            held = {d for r, t in volume.tags for d in self._closure(volume, r, t)}
            if digest is None or digest not in held:
                return Result(1, b"", NOT_FOUND)
            return Result(0, volume.upstream.manifests[digest], "")
        if command[:2] == ["sh", "-c"]:
            digests = command[5:]
            return Result(0, "".join(f"{d}\n" for d in digests if d not in volume.blobs).encode(), "")
        raise AssertionError(f"unexpected exec {command}")

    @staticmethod
    def _closure(volume: Volume, repository: str, tag: str) -> set[str]:
        top = volume.upstream.tags[(repository, tag)]
        document = json.loads(volume.upstream.manifests[top])
        return {top, *(e["digest"] for e in document.get("manifests", []))}


@pytest.fixture
def engine():
    quay, hub = FakeUpstream(), FakeUpstream()
    quay.add_image("cilium/cilium", "v1.20.0", [("base", 10), ("agent", 20)], platforms=("linux/amd64", "linux/arm64"))
    quay.add_image("metallb/speaker", "v0.16.1", [("speaker", 5)])
    hub.add_image("library/nginx", "1.27", [("nginx", 7)])
    fake = Engine(volumes={"kcr-dev-quay-io": Volume(quay), "kcr-dev-docker-io": Volume(hub)})
    fake.volumes["kcr-dev-quay-io"].hold("cilium/cilium", "v1.20.0")
    fake.volumes["kcr-dev-quay-io"].hold("metallb/speaker", "v0.16.1", all_blobs=False)
    fake.volumes["kcr-dev-docker-io"].hold("library/nginx", "1.27")
    fake.images = {"registry:3", "kindest/node:v1.36.1@sha256:" + "0" * 64}
    fake.nodes = {
        "dev-control-plane": (["registry.k8s.io/etcd:3.6.0", "docker.io/library/nginx:1.27", "sha256:" + "1" * 64],
                              ["registry.k8s.io/etcd:3.6.0"]),
    }
    return fake


def plan_in(home: Path, **changes) -> store.StorePlan:
    fields = dict(
        owner="kind-registry-cache/dev",
        images=("quay.io/cilium/cilium:v1.20.0", "quay.io/metallb/speaker:v0.16.1", "mcr.microsoft.com/dotnet/runtime:8.0",
                "ghcr.io/acme/api:1.0"),
        node_image="kindest/node:v1.36.1@sha256:" + "0" * 64,
        registry_image="registry:3",
        cluster="dev",
        cache_owner="kind-registry-cache/dev",
        mirrors={
            "quay.io": {"container": "kcr-dev-quay-io", "volume": "kcr-dev-quay-io", "shared": None},
            "docker.io": {"container": "kcr-dev-docker-io", "volume": "kcr-dev-docker-io", "shared": None},
            "registry.k8s.io": {"container": "kcr-dev-registry-k8s-io", "volume": "kcr-dev-registry-k8s-io", "shared": None},
            "ghcr.io": {"container": None, "volume": None, "shared": "https://cache.team.example"},
        },
        record=str(home / ".kind-registry-cache" / "dev" / "offline.json"),
    )
    plan = store.StorePlan(**(fields | changes))
    Path(plan.record).parent.mkdir(parents=True, exist_ok=True)
    Path(plan.record).write_text(plan.to_json())
    return plan


def states(report: offline.OfflineReport) -> dict[str, tuple[str, str]]:
    return {i.name: (i.state, i.why) for i in report.items}


def test_each_image_is_held_missing_or_in_the_node_image_and_why(engine, tmp_path):
    report = offline.collect(engine, plan_in(tmp_path))
    found = states(report)
    assert found["quay.io/cilium/cilium:v1.20.0"] == ("held", "")
    assert found["docker.io/library/nginx:1.27"] == ("held", "")
    assert found["registry.k8s.io/etcd:3.6.0"][0] == "in the node image"
    state, why = found["quay.io/metallb/speaker:v0.16.1"]
    assert state == "missing" and "1 of its 2 blobs are not in cache kcr-dev-quay-io" in why
    state, why = found["mcr.microsoft.com/dotnet/runtime:8.0"]
    assert state == "missing" and "no cache for mcr.microsoft.com" in why
    state, why = found["ghcr.io/acme/api:1.0"]
    assert state == "missing" and "shared cache https://cache.team.example" in why
    assert not any(name.startswith("sha256:") for name in found)
    # One throwaway read-only view per cache volume asked, each removed again.
    assert sorted(engine.views.values()) == ["kcr-dev-docker-io", "kcr-dev-quay-io"]
    assert sorted(engine.removed) == sorted(engine.views)


def test_artifacts_and_engine_images_are_checked(engine, tmp_path):
    home = tmp_path
    chart = store.chart_artifact(str(home), "cilium", "1.20.0", "https://helm.cilium.io/", "kind-registry-cache:addons.cilium.repository")
    kind = store.Artifact(kind=store.KIND, name="kind v0.32.0", path=str(home / "bin-kind"), url="https://x/kind",
                          setting="-", sha256="a" * 64)
    engine.images.discard("registry:3")
    report = offline.collect(engine, plan_in(home, artifacts=(chart, kind)))
    found = states(report)
    assert found["chart cilium 1.20.0"][0] == "missing" and "https://helm.cilium.io/" in found["chart cilium 1.20.0"][1]
    assert found["registry:3"][0] == "missing" and "docker pull registry:3" in found["registry:3"][1]
    assert found[engine_node_image()][0] == "present"


def engine_node_image() -> str:
    return "kindest/node:v1.36.1@sha256:" + "0" * 64


def test_cli_prints_a_table_and_exits_1_when_anything_would_be_missing(engine, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    plan_in(tmp_path)
    assert cachectl.main(["offline"], runner=engine) == 1
    out = capsys.readouterr().out
    assert out.startswith("stack kind-registry-cache/dev (linux/amd64): offline, 3 of 8 would be missing")
    lines = out.splitlines()
    assert "MISSING" in lines[2] and "held" in out


def test_cli_json_and_exit_0_when_everything_is_held(engine, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    plan_in(tmp_path, images=("quay.io/cilium/cilium:v1.20.0",))
    assert cachectl.main(["offline", "--stack", "dev", "--json"], runner=engine) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["stack"], data["ready"], data["missing"]) == ("kind-registry-cache/dev", True, 0)
    assert {i["name"]: i["state"] for i in data["items"]}["quay.io/cilium/cilium:v1.20.0"] == "held"


@pytest.mark.parametrize(
    ("stacks", "argv", "says"),
    [
        ([], ["offline"], "no stack has a record"),
        (["dev", "staging"], ["offline"], "several stacks have a record (dev, staging); say which with --stack"),
        (["dev"], ["offline", "--stack", "prod"], "no record of stack kind-registry-cache/prod"),
    ],
)
def test_without_a_record_to_go_by_it_says_so_and_exits_2(tmp_path, monkeypatch, capsys, stacks, argv, says):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in stacks:
        folder = tmp_path / ".kind-registry-cache" / name
        folder.mkdir(parents=True)
        (folder / "offline.json").write_text(store.StorePlan(owner=f"kind-registry-cache/{name}").to_json())
    assert cachectl.main(argv, runner=Engine()) == 2
    assert says in capsys.readouterr().err


def test_a_docker_failure_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    plan_in(tmp_path)
    assert cachectl.main(["offline"], runner=lambda args: Result(1, b"", "Cannot connect to the Docker daemon")) == 2
    assert "Cannot connect to the Docker daemon" in capsys.readouterr().err


def test_a_cache_that_cannot_be_read_counts_as_missing_and_says_why(engine, tmp_path):
    engine.images.discard("registry:3")
    found = states(offline.collect(engine, plan_in(tmp_path)))
    state, why = found["quay.io/cilium/cilium:v1.20.0"]
    assert state == "missing" and "kcr-dev-quay-io could not be read" in why and "Unable to find image" in why
    assert found["registry:3"][0] == "missing"


def test_images_from_the_local_registry_are_asked_of_its_volume(engine, tmp_path):
    own = FakeUpstream()
    own.add_image("app", "dev", [("app", 3)])
    own.add_image("api", "dev", [("api", 3)])
    engine.volumes["kcr-dev-local-registry"] = Volume(own)
    engine.volumes["kcr-dev-local-registry"].hold("app", "dev")
    engine.nodes["dev-worker"] = (["localhost:5001/app:dev", "localhost:5001/api:dev"], [])
    mirrors = {**plan_in(tmp_path).mirrors, "localhost:5001": {
        "container": "kcr-dev-local-registry", "volume": "kcr-dev-local-registry", "shared": None, "what": "local registry"}}
    found = {i.name: i for i in offline.collect(engine, plan_in(tmp_path, mirrors=mirrors)).items}
    assert (found["localhost:5001/app:dev"].state, found["localhost:5001/app:dev"].where) == (
        "held", "local registry kcr-dev-local-registry")
    assert found["localhost:5001/api:dev"].state == "missing"
    assert "not in local registry kcr-dev-local-registry" in found["localhost:5001/api:dev"].why
