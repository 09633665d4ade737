"""The cluster's delete on a real engine with the real kind v0.32.0: a cluster of the same name this stack did not
create is left alone (issue #18, class 1).

Real kind cannot create clusters here (no privileged containers), but its `get clusters` and `delete cluster` need
only the Docker CLI: they list containers by kind's label and remove them (kind v0.32.0
pkg/cluster/internal/providers/docker/provider.go ListClusters/ListNodes, pkg/cluster/internal/delete/delete.go). So
the scripts run with the real docker CLI against the private engine and the real kind for everything but `create`,
which a stand-in does with `docker create` of labelled containers named as kind names nodes.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker
import pytest

import gotools
from krc.render import kindconfig

from . import stack

pytestmark = pytest.mark.integration

LABEL = kindconfig.KIND_CLUSTER_LABEL
CONFIG = "kind: Cluster\nnodes:\n- role: control-plane\n- role: worker\n"


@pytest.fixture
def tools(tmp_path: Path, docker_engine, built_images) -> dict[str, str]:
    """The environment of the cluster Command: the real docker and kind, a stand-in only for `kind create`."""
    real_kind = gotools.load(names=("kind",))["kind"].path
    folder = tmp_path / "bin"
    folder.mkdir()
    kind = folder / "kind"
    kind.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2" = "create cluster" ]; then\n'
        '  name=$4; cat >/dev/null\n'
        f'  docker create --label {LABEL}="$name" --name "$name-control-plane" {built_images.registry} >/dev/null\n'
        f'  docker create --label {LABEL}="$name" --name "$name-worker" {built_images.registry} >/dev/null\n'
        "  exit 0\n"
        "fi\n"
        f'exec {real_kind} "$@"\n'
    )
    kind.chmod(0o755)
    return {
        "PATH": f"{folder}:{os.environ['PATH']}",
        "DOCKER_HOST": docker_engine.base_url,
        "KRC_KIND": str(kind),
        "KRC_CLUSTER_RECORD": str(tmp_path / "state" / "kind-itest.generation"),
        "HOME": str(tmp_path),
    }


def run(script: str, env: dict[str, str], generation: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", script], env=env | {"KRC_CLUSTER_GENERATION": generation}, input=stdin, capture_output=True, text=True
    )


def engine(client: docker.DockerClient) -> list[tuple[str, str, str]]:
    return sorted((c.id, c.name, c.labels.get(LABEL, "")) for c in client.containers.list(all=True))


def foreign_cluster(client: docker.DockerClient, image: str, name: str = "itest") -> None:
    """Someone else's cluster of the same name: containers carrying kind's label for it."""
    for role in ("control-plane", "worker", "worker2"):
        client.containers.create(image, name=f"{name}-{role}", labels={LABEL: name})


def test_the_real_kind_deletes_our_cluster_and_never_a_foreign_one(docker_client, built_images, tools):
    create, delete = kindconfig.create_script("itest"), kindconfig.delete_script("itest")
    assert run(create, tools, "gen-a", CONFIG).returncode == 0
    record = Path(tools["KRC_CLUSTER_RECORD"]).read_text().splitlines()
    ours = {c.id for c in docker_client.containers.list(all=True, filters={"label": f"{LABEL}=itest"})}
    assert {line.split()[1] for line in record[1:]} == ours and len(ours) == 2

    # Ours removed by hand, a foreign cluster of the name made since: the delete leaves it, the create refuses.
    for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL}=itest"}):
        container.remove(force=True)
    foreign_cluster(docker_client, built_images.registry)
    docker_client.containers.create(built_images.registry, name="unrelated")
    before = engine(docker_client)
    result = run(delete, tools, "gen-a")
    assert result.returncode == 0 and "left the kind cluster 'itest' alone" in result.stderr
    assert engine(docker_client) == before
    created = run(create, tools, "gen-b", CONFIG)
    assert created.returncode == 1 and "already exists and is not managed by this stack" in created.stderr
    assert engine(docker_client) == before

    # With our own cluster back, the real kind deletes exactly its containers.
    for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL}=itest"}):
        container.remove(force=True)
    assert run(create, tools, "gen-c", CONFIG).returncode == 0
    result = run(delete, tools, "gen-c")
    assert result.returncode == 0, result.stderr
    assert [name for _, name, _ in engine(docker_client)] == ["unrelated"]
    assert not Path(tools["KRC_CLUSTER_RECORD"]).exists()


def test_the_programs_recorded_scripts_on_a_real_engine(docker_client, built_images, tools, tmp_path):
    """The create and delete the program registers (under mocks) for the integration stack, run for real."""
    rec = stack.record(tmp_path / "certs.d")
    cluster = rec.named("kind-cluster").inputs
    env = tools | {k: v for k, v in cluster["environment"].items() if k.startswith("KIND_")}
    name = cluster["create"].split("create cluster --name ", 1)[1].split()[0]
    assert run(cluster["create"], env, "gen-a", cluster["stdin"]).returncode == 0
    for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL}={name}"}):
        container.remove(force=True)
    foreign_cluster(docker_client, built_images.registry, name)
    before = engine(docker_client)
    result = run(cluster["delete"], env, "gen-a")
    assert result.returncode == 0 and "alone" in result.stderr
    assert engine(docker_client) == before
