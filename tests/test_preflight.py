"""Prerequisite checks: kind, Docker, and what to do about an existing network."""

from __future__ import annotations

import ipaddress
import json
import subprocess

import pytest

from components import preflight
from components.preflight import PreflightError
from components.settings import NetworkSettings

NET = NetworkSettings(name="kind", subnet=ipaddress.IPv4Network("172.30.0.0/16"))
OWNER = "kind-registry-cache/dev"


def network_line(name: str, subnet: str, labels: dict | None = None, containers: int = 0) -> str:
    data = {
        "Name": name,
        "IPAM": {"Config": [{"Subnet": subnet}]},
        "Labels": labels or {},
        "Containers": {str(i): {} for i in range(containers)},
    }
    return "network=" + json.dumps(data)


def report(*lines: str, kind: str = "kind v0.32.0 go1.24.2 linux/amd64", docker: str = "28.2.2") -> preflight.Report:
    return preflight.parse("\n".join([f"kind={kind}", f"docker={docker}", "context_host=unix:///var/run/docker.sock", *lines]))


def check(rep: preflight.Report, **kw) -> preflight.Decision:
    args = {"configured_host": None, "env_host": None} | kw
    return preflight.check(rep, NET, OWNER, **args)


def test_healthy_machine_creates_the_network():
    decision = check(report(network_line("bridge", "172.17.0.0/16")))
    assert decision.adopt_network is False
    assert decision.docker_host == "unix:///var/run/docker.sock"


@pytest.mark.parametrize(
    ("kind", "docker", "says"),
    [
        pytest.param("missing", "28.2.2", "`kind` is not on PATH: install kind v0.27", id="no-kind"),
        pytest.param("kind v0.20.0 go1.20 linux/amd64", "28.2.2", "kind v0.20.0 is older than v0.27.0", id="old-kind"),
        pytest.param("kind v0.32.0", "missing", "the `docker` CLI is not on PATH: install Docker", id="no-docker"),
        pytest.param("kind v0.32.0", "unreachable", "does not answer", id="docker-down"),
    ],
)
def test_missing_prerequisites_say_what_to_install(kind, docker, says):
    with pytest.raises(PreflightError) as info:
        check(report(kind=kind, docker=docker))
    assert says in str(info.value)


def test_kind_version_parsing():
    assert preflight.kind_version("kind v0.27.0 go1.23.6 linux/arm64") == (0, 27, 0)
    assert preflight.kind_version("kind version 0.x") is None


def test_our_own_network_is_managed_as_before():
    decision = check(report(network_line("kind", "172.30.0.0/16", {preflight.LABEL_OWNER: OWNER})))
    assert decision.adopt_network is False


def test_kinds_network_with_the_same_subnet_is_adopted():
    decision = check(report(network_line("kind", "172.30.0.0/16", containers=2)))
    assert decision.adopt_network is True
    assert "leave it in place" in decision.notes[0]


def test_kinds_network_with_another_subnet_names_each_fix():
    with pytest.raises(PreflightError) as info:
        check(report(network_line("kind", "172.18.0.0/16", containers=3)))
    message = str(info.value)
    assert "pulumi config set --path kind-registry-cache:network.subnet 172.18.0.0/16" in message
    assert "docker network rm kind" in message
    assert "3 container(s)" in message
    assert "kind-registry-cache:network.name kind-dev" in message


def test_subnet_clash_with_another_network_suggests_a_free_range():
    with pytest.raises(PreflightError) as info:
        check(report(network_line("bridge", "172.16.0.0/16"), network_line("compose_default", "172.30.0.0/20")))
    message = str(info.value)
    assert "overlaps docker network 'compose_default'" in message
    assert "network.subnet 172.17.0.0/16" in message


def test_configured_host_wins_and_env_host_is_left_to_the_provider():
    rep = report()
    assert check(rep, configured_host="ssh://me@box").docker_host == "ssh://me@box"
    assert check(rep, env_host="tcp://127.0.0.1:2375").docker_host is None


def test_script_reports_missing_tools_without_failing(tmp_path):
    # An empty PATH apart from sh's own tools: neither kind nor docker exists.
    result = subprocess.run(
        ["/bin/sh", "-c", preflight.SCRIPT], env={"PATH": str(tmp_path)}, capture_output=True, text=True
    )
    assert result.returncode == 0
    rep = preflight.parse(result.stdout)
    assert (rep.kind, rep.docker) == ("missing", "missing")


def test_script_reads_versions_and_networks_from_the_clis(tmp_path):
    (tmp_path / "kind").write_text("#!/bin/sh\necho 'kind v0.32.0 go1.24.2 linux/amd64'\n")
    (tmp_path / "docker").write_text(
        "#!/bin/sh\n"
        'case "$1 $2" in\n'
        '  "version --format") echo 28.2.2 ;;\n'
        '  "context inspect") echo unix:///run/user/docker.sock ;;\n'
        '  "info --format") echo Docker Desktop ;;\n'
        '  "network ls") echo abc ;;\n'
        '  "network inspect") echo \'{"Name":"kind","IPAM":{"Config":[{"Subnet":"172.30.0.0/16"},{"Subnet":"fc00::/64"}]}}\' ;;\n'
        "esac\n"
    )
    for tool in ("kind", "docker"):
        (tmp_path / tool).chmod(0o755)
    result = subprocess.run(
        ["/bin/sh", "-c", preflight.SCRIPT], env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, capture_output=True, text=True
    )
    rep = preflight.parse(result.stdout)
    assert rep.kind.startswith("kind v0.32.0")
    assert rep.docker == "28.2.2"
    assert rep.context_host == "unix:///run/user/docker.sock"
    assert rep.engine_os.strip() == "Docker Desktop"
    assert rep.host_os == subprocess.run(["uname", "-s"], capture_output=True, text=True).stdout.strip()
    assert [(n.name, [str(s) for s in n.subnets]) for n in rep.networks] == [("kind", ["172.30.0.0/16"])]
