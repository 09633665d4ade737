"""The kind config generator and the cluster commands."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from krc.config import ClusterSettings, PortMapping
from krc import versions
from krc.render import kindconfig, mirrors
from krc.render.kindconfig import KindOptions

CERTS = "/home/dev/.kind-registry-cache/dev/certs.d"


def cluster(**kw) -> ClusterSettings:
    base = {"name": "dev", "port_mappings": (PortMapping(80, 80), PortMapping(443, 443))}
    return ClusterSettings(**(base | kw))


def test_single_node_config_exact_text():
    text = kindconfig.render(cluster(port_mappings=(PortMapping(80, 8080),)), KindOptions(certs_dir=CERTS))
    assert text == (
        "kind: Cluster\n"
        "apiVersion: kind.x-k8s.io/v1alpha4\n"
        "name: dev\n"
        "nodes:\n"
        "- role: control-plane\n"
        f"  image: {versions.NODE_IMAGE}\n"
        "  extraMounts:\n"
        f"  - hostPath: {CERTS}\n"
        "    containerPath: /etc/containerd/certs.d\n"
        "    readOnly: true\n"
        "  extraPortMappings:\n"
        "  - containerPort: 80\n"
        "    hostPort: 8080\n"
        "    listenAddress: 127.0.0.1\n"
        "    protocol: TCP\n"
        "containerdConfigPatches:\n"
        "- |\n"
        '  [plugins."io.containerd.grpc.v1.cri".registry]\n'
        '  config_path = "/etc/containerd/certs.d"\n'
    )


def test_patch_has_no_version_line_and_no_legacy_mirrors_table():
    # kind skips, silently, a patch whose `version` differs from the node's config; and the legacy
    # registry.mirrors table stops the CRI plugin on containerd 2.2.
    config = kindconfig.kind_config(cluster(), KindOptions(certs_dir=CERTS))
    patches = config["containerdConfigPatches"]
    assert patches == [mirrors.containerd_patch()]
    assert "version" not in patches[0]
    assert "mirrors" not in patches[0]
    assert "endpoint" not in patches[0]


def test_every_node_mounts_the_certs_folder_read_only():
    config = kindconfig.kind_config(cluster(control_planes=3, workers=3), KindOptions(certs_dir=CERTS))
    for node in config["nodes"]:
        assert node["extraMounts"] == [{"hostPath": CERTS, "containerPath": "/etc/containerd/certs.d", "readOnly": True}]


def test_only_the_first_node_binds_host_ports():
    config = kindconfig.kind_config(cluster(control_planes=2, workers=2), KindOptions(certs_dir=CERTS))
    assert [("extraPortMappings" in n) for n in config["nodes"]] == [True, False, False, False]


def test_cni_and_kube_proxy_options_reach_networking():
    options = KindOptions(certs_dir=CERTS, disable_default_cni=True, kube_proxy_mode="none")
    config = kindconfig.kind_config(cluster(), options)
    assert config["networking"] == {"disableDefaultCNI": True, "kubeProxyMode": "none"}
    assert "networking" not in kindconfig.kind_config(cluster(), KindOptions(certs_dir=CERTS))


def test_first_node_labels():
    options = KindOptions(certs_dir=CERTS, first_node_labels={"ingress-ready": "true"})
    nodes = kindconfig.kind_config(cluster(workers=1), options)["nodes"]
    assert nodes[0]["labels"] == {"ingress-ready": "true"}
    assert "labels" not in nodes[1]


@pytest.mark.parametrize(
    ("control_planes", "workers", "endpoint", "names"),
    [
        pytest.param(1, 0, "dev-control-plane", ["dev-control-plane"], id="single"),
        pytest.param(
            3,
            2,
            "dev-external-load-balancer",
            ["dev-control-plane", "dev-control-plane2", "dev-control-plane3", "dev-worker", "dev-worker2"],
            id="ha",
        ),
    ],
)
def test_node_names_and_api_endpoint_follow_kind(control_planes, workers, endpoint, names):
    c = cluster(control_planes=control_planes, workers=workers)
    assert kindconfig.api_server_endpoint(c) == endpoint
    assert kindconfig.node_names(c) == names


@given(
    control_planes=st.integers(min_value=1, max_value=9),
    workers=st.integers(min_value=0, max_value=20),
    name=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True),
)
def test_rendered_config_is_valid_kind_yaml_and_round_trips(control_planes, workers, name):
    c = cluster(name=name, control_planes=control_planes, workers=workers)
    data = yaml.safe_load(kindconfig.render(c, KindOptions(certs_dir=CERTS)))
    assert data["kind"] == "Cluster"
    assert data["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert data["name"] == name
    roles = [n["role"] for n in data["nodes"]]
    assert roles == ["control-plane"] * control_planes + ["worker"] * workers
    assert all(n["image"] == versions.NODE_IMAGE for n in data["nodes"])


def _fake_tools(tmp_path):
    """A fake kind at its own path (not on PATH), and a fake docker that knows the control-plane container's id."""
    tools = tmp_path / "tools"
    tools.mkdir()
    kind = tools / "kind-chosen"
    kind.write_text('#!/bin/sh\nif [ "$1 $2" = "get clusters" ]; then echo dev; exit 0; fi\necho "$@" >> "$LOG"\n')
    docker = tools / "docker"
    docker.write_text('#!/bin/sh\necho "docker $*" >> "$LOG"\necho 0123abcd\n')
    for tool in (kind, docker):
        tool.chmod(0o755)
    record = tmp_path / "state" / "kind-other.generation"
    env = {
        "PATH": f"{tools}:/usr/bin:/bin",
        "LOG": str(tmp_path / "log"),
        "KRC_KIND": str(kind),
        "KRC_CLUSTER_GENERATION": "gen-1",
        "KRC_CLUSTER_RECORD": str(record),
    }
    return env, record


def test_create_script_refuses_an_existing_cluster_and_reads_config_from_stdin(tmp_path):
    env, _ = _fake_tools(tmp_path)
    script = kindconfig.create_script("dev")
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "kind delete cluster --name dev" in result.stderr
    assert not (tmp_path / "log").exists()


def test_create_script_runs_the_chosen_kind_and_records_the_generation(tmp_path):
    env, record = _fake_tools(tmp_path)
    script = kindconfig.create_script("other")
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, input="kind: Cluster\n")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "log").read_text() == (
        "create cluster --name other --config -\ndocker inspect --format {{.Id}} other-control-plane\n"
        "docker ps -a --no-trunc --filter label=io.x-k8s.kind.cluster=other --format {{.ID}} {{.Names}}\n"
    )
    assert record.read_text() == "gen-1 0123abcd\n"


def test_create_script_replaces_a_symlinked_record_without_writing_through_it(tmp_path):
    env, record = _fake_tools(tmp_path)
    record.parent.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    record.symlink_to(victim)
    script = kindconfig.create_script("other")
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, input="kind: Cluster\n")
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "keep"
    assert not record.is_symlink() and record.read_text() == "gen-1 0123abcd\n"


def test_delete_script_removes_the_cluster_and_its_record_only(tmp_path):
    env, record = _fake_tools(tmp_path)
    record.parent.mkdir()
    record.write_text("gen-1 0123abcd\n")
    (record.parent / "other-file").write_text("x")
    result = subprocess.run(["sh", "-c", kindconfig.delete_script("other")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "log").read_text() == (
        "docker ps -a --no-trunc --filter label=io.x-k8s.kind.cluster=other --format {{.ID}}\ndelete cluster --name other\n"
    )
    assert not record.exists()
    assert (record.parent / "other-file").exists()


def test_delete_script_leaves_a_symlinked_record_alone(tmp_path):
    env, record = _fake_tools(tmp_path)
    record.parent.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    record.symlink_to(victim)
    subprocess.run(["sh", "-c", kindconfig.delete_script("other")], env=env, check=True)
    assert record.is_symlink() and victim.read_text() == "keep"


def test_commands_quote_the_name_and_run_the_chosen_kind():
    assert 'name=dev\n' in kindconfig.delete_script("dev")
    assert '"$kind_bin" delete cluster --name "$name"\n' in kindconfig.delete_script("dev")
    assert "name='a b'\n" in kindconfig.delete_script("a b")
    assert kindconfig.kubeconfig_script("a b").endswith('"$kind_bin" get kubeconfig --name \'a b\'\n')
