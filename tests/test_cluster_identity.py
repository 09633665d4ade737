"""Class 1 of issue #18: the kind cluster is deleted only when it is provably this stack's.

The real generated create and delete scripts (krc.render.kindconfig, and the ones the program registers under
mocks) run in a sandbox with stand-in ``kind`` and ``docker`` over one engine state (tests/sandbox_tools.py).
A cluster of the same name that this stack did not create is never deleted: the engine's containers are
compared before and after.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from harness import HEALTHY_PREFLIGHT, run_program
from krc import preflight
from krc.render import kindconfig
from sandbox_tools import KIND_LABEL, Engine, install

CONFIG = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n"
HA_CONFIG = "kind: Cluster\nnodes:\n- role: control-plane\n- role: control-plane\n- role: worker\n"


class Sandbox:
    """An engine, the stand-ins, and this stack's record file; runs the cluster Command's scripts as pulumi-command would."""

    def __init__(self, root: Path, name: str = "dev", create: str | None = None, delete: str | None = None) -> None:
        self.engine = Engine(root / "engine.json")
        self.record = root / "home" / ".kind-registry-cache" / "dev" / f"kind-{name}.generation"
        self.env = install(root / "bin", root / "engine.json")
        self.name = name
        self.create_script = create or kindconfig.create_script(name)
        self.delete_script = delete or kindconfig.delete_script(name)

    def run(self, script: str, generation: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0
        environment = self.env | {"KRC_CLUSTER_GENERATION": generation, "KRC_CLUSTER_RECORD": str(self.record)} | env
        return subprocess.run(["sh", "-c", script], env=environment, input=stdin, capture_output=True, text=True)

    def create(self, generation: str, config: str = CONFIG) -> subprocess.CompletedProcess[str]:
        return self.run(self.create_script, generation, config)

    def delete(self, generation: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.delete_script, generation, **env)

    def foreign_cluster(self, config: str = CONFIG) -> None:
        """Someone else's `kind create cluster --name <the same name>`."""
        result = subprocess.run(
            ["kind", "create", "cluster", "--name", self.name, "--config", "-"],
            env=self.env, input=config, capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stderr

    def remove_by_hand(self) -> None:
        """The user's `docker rm -f` of every node of the cluster (or `kind delete cluster` outside the program)."""
        for container in self.engine.containers():
            if container["labels"].get(KIND_LABEL) == self.name:
                self.engine.remove(container["name"])

    def ours(self) -> set[str]:
        return {c["id"] for c in self.engine.containers() if c["labels"].get(KIND_LABEL) == self.name}


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def test_our_cluster_is_deleted_and_its_record_with_it(box):
    assert box.create("gen-a").returncode == 0
    lines = box.record.read_text().splitlines()
    cp = next(c["id"] for c in box.engine.containers() if c["name"] == "dev-control-plane")
    assert lines[0] == f"gen-a {cp}"
    assert sorted(lines[1:]) == sorted(f"node {c['id']} {c['name']}" for c in box.engine.containers())
    result = box.delete("gen-a")
    assert result.returncode == 0, result.stderr
    assert box.engine.containers() == [] and not box.record.exists()
    assert ["kind", "delete", "cluster", "--name", "dev"] in box.engine.calls()


def test_a_foreign_cluster_holding_the_name_is_never_deleted(box):
    """The issue's case: ours removed by hand, another cluster of the name made since; `up` draws a new
    generation, and the engine runs the recorded delete (delete-before-replace) before the create."""
    assert box.create("gen-a").returncode == 0
    box.remove_by_hand()
    box.foreign_cluster()
    before = box.engine.containers()

    deleted = box.delete("gen-a")
    assert deleted.returncode == 0, deleted.stderr  # our cluster is gone: nothing of ours to delete
    assert "left the kind cluster 'dev' alone" in deleted.stderr
    assert box.engine.containers() == before
    assert not any(call[:2] == ["kind", "delete"] for call in box.engine.calls())

    created = box.create("gen-b")
    assert created.returncode == 1 and "already exists and is not managed by this stack" in created.stderr
    assert box.engine.containers() == before


def test_a_foreign_container_carrying_our_clusters_label_stops_the_delete(box):
    """`kind delete cluster` removes every container with the label: one we did not make means we do not run it."""
    assert box.create("gen-a").returncode == 0
    box.engine.add("someone-elses", {KIND_LABEL: "dev"})
    before = box.engine.containers()
    result = box.delete("gen-a")
    assert result.returncode == 0 and "not the ones this stack created" in result.stderr
    assert box.engine.containers() == before
    assert box.record.exists(), "the record still proves which of these containers are ours"


@pytest.mark.parametrize("case", ["no-record", "other-generation", "symlinked-record", "empty-record"])
def test_without_a_record_of_ours_nothing_is_deleted(box, tmp_path, case):
    assert box.create("gen-a").returncode == 0
    text = box.record.read_text()
    box.record.unlink()
    if case == "other-generation":
        box.record.write_text(text.replace("gen-a", "gen-z", 1))
    elif case == "symlinked-record":
        (tmp_path / "elsewhere").write_text(text)
        box.record.symlink_to(tmp_path / "elsewhere")
    elif case == "empty-record":
        box.record.write_text("")
    before = box.engine.containers()
    result = box.delete("gen-a")
    assert result.returncode == 0 and "alone" in result.stderr
    assert box.engine.containers() == before
    if case == "symlinked-record":
        assert box.record.is_symlink() and (tmp_path / "elsewhere").read_text() == text


def test_a_record_written_before_node_lines_identifies_by_the_control_plane(box):
    assert box.create("gen-a").returncode == 0
    first = box.record.read_text().splitlines()[0]
    box.record.write_text(first + "\n")  # as the create script of the previous version wrote it
    assert box.delete("gen-a").returncode == 0
    assert box.engine.containers() == [] and not box.record.exists()

    assert box.create("gen-b").returncode == 0
    first = box.record.read_text().splitlines()[0]
    box.remove_by_hand()
    box.foreign_cluster()
    box.record.write_text(first + "\n")
    before = box.engine.containers()
    assert box.delete("gen-b").returncode == 0
    assert box.engine.containers() == before, "the recorded control plane is gone: the cluster is someone else's"


def test_a_cluster_already_gone_deletes_nothing_and_forgets_the_record(box):
    assert box.create("gen-a").returncode == 0
    box.remove_by_hand()
    box.engine.add("unrelated")
    before = box.engine.containers()
    assert box.delete("gen-a").returncode == 0
    assert box.engine.containers() == before and not box.record.exists()


def test_an_engine_that_does_not_answer_fails_the_delete_and_deletes_nothing(box):
    assert box.create("gen-a").returncode == 0
    before = box.engine.containers()
    result = box.delete("gen-a", KRC_SANDBOX_DOWN="1")
    assert result.returncode != 0
    assert box.engine.containers() == before and box.record.exists()


def test_several_control_planes_and_the_load_balancer_are_ours_too(box):
    assert box.create("gen-a", HA_CONFIG).returncode == 0
    assert {c["name"] for c in box.engine.containers()} == {
        "dev-control-plane", "dev-control-plane2", "dev-worker", "dev-external-load-balancer",
    }
    assert box.delete("gen-a").returncode == 0
    assert box.engine.containers() == []


# --- the scripts the program registers ---------------------------------------------------------------------------


def program_sandbox(root: Path) -> Sandbox:
    rec = run_program("dev")
    cluster = rec.named("kind-cluster").inputs
    box = Sandbox(root, name="dev", create=cluster["create"], delete=cluster["delete"])
    box.program_env = {k: v for k, v in cluster["environment"].items() if k not in ("KRC_KIND", "KRC_CLUSTER_RECORD", "KRC_CLUSTER_GENERATION")}
    box.generation = cluster["environment"]["KRC_CLUSTER_GENERATION"]
    box.stdin = cluster["stdin"]
    return box


def test_the_programs_own_scripts_never_delete_a_foreign_cluster(tmp_path):
    box = program_sandbox(tmp_path)
    assert box.run(box.create_script, box.generation, box.stdin, **box.program_env).returncode == 0
    assert len(box.ours()) == 7  # three control planes, three workers, the load balancer (Pulumi.dev.yaml)
    box.remove_by_hand()
    box.foreign_cluster()
    before = box.engine.containers()
    result = box.run(box.delete_script, box.generation, **box.program_env)
    assert result.returncode == 0 and "alone" in result.stderr
    assert box.engine.containers() == before

    # With its own cluster in place, the same delete removes exactly that cluster.
    box.remove_by_hand()
    assert box.run(box.create_script, box.generation, box.stdin, **box.program_env).returncode == 0
    stranger = box.engine.add("not-a-node")
    assert box.run(box.delete_script, box.generation, **box.program_env).returncode == 0
    assert [c["id"] for c in box.engine.containers()] == [stranger]


def test_preview_refuses_a_cluster_name_held_by_a_cluster_this_stack_did_not_create():
    lines = [
        HEALTHY_PREFLIGHT,
        "cluster_record=gen-a ours-cp-id",
        "node=theirs-cp dev-control-plane",
        "container=theirs-cp|dev-control-plane||dev",
    ]
    with pytest.raises(pulumi.RunError) as error:
        run_program("dev", preflight="\n".join(lines))
    message = str(error.value)
    assert "kind-registry-cache:cluster.name: a kind cluster named 'dev' exists and this stack did not create it" in message
    assert "pulumi config set --path kind-registry-cache:cluster.name dev-2" in message


def test_preview_accepts_the_cluster_its_record_names():
    lines = [HEALTHY_PREFLIGHT, "cluster_record=gen-a cp", "node=cp dev-control-plane", "container=cp|dev-control-plane||dev"]
    run_program("dev", preflight="\n".join(lines))


# --- the property --------------------------------------------------------------------------------------------------

STEPS = st.lists(
    st.sampled_from(["create", "remove-by-hand", "foreign-cluster", "foreign-labelled", "unrelated", "lose-record", "delete"]),
    max_size=7,
)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_no_sequence_of_events_lets_the_delete_remove_a_container_it_did_not_create(tmp_path_factory, steps):
    """Whatever happened on the engine in between, the delete script removes only containers its create made."""
    box = Sandbox(tmp_path_factory.mktemp("seq"))
    made_by_us: set[str] = set()
    generation = 0
    numbers = iter(range(1000))
    for step in steps:
        if step == "create":
            generation += 1
            before = {c["id"] for c in box.engine.containers()}
            if box.create(f"gen-{generation}").returncode == 0:
                made_by_us |= {c["id"] for c in box.engine.containers()} - before
        elif step == "remove-by-hand":
            box.remove_by_hand()
        elif step == "foreign-cluster" and not box.ours():
            box.foreign_cluster()
        elif step == "foreign-labelled":
            box.engine.add(f"x-{next(numbers)}", {KIND_LABEL: "dev"})
        elif step == "unrelated":
            box.engine.add(f"u-{next(numbers)}")
        elif step == "lose-record" and box.record.exists():
            box.record.unlink()
        elif step == "delete":
            before = {c["id"] for c in box.engine.containers()}
            result = box.delete(f"gen-{generation}")
            assert result.returncode == 0, result.stderr
            gone = before - {c["id"] for c in box.engine.containers()}
            assert gone <= made_by_us, (steps, result.stderr)


def test_the_preflight_record_line_stays_the_first_line(box):
    """The preflight reads `head -n 1` of the record: the generation and the control plane, as before."""
    assert box.create("gen-a").returncode == 0
    report = preflight.parse(f"cluster_record={box.record.read_text().splitlines()[0]}")
    token, _, control_plane = report.cluster_record.partition(" ")
    assert token == "gen-a"
    assert control_plane in box.ours()
    assert os.path.basename(box.record) == "kind-dev.generation"
