"""Prerequisite checks: kind, Docker, and what to do about an existing network."""

from __future__ import annotations

import ipaddress
import json
import subprocess

import pytest

from krc.config import NetworkSettings
from krc import preflight
from krc.preflight import PreflightError, kindrelease

NET = NetworkSettings(name="kind", subnet=ipaddress.IPv4Network("172.30.0.0/16"))
OWNER = "kind-registry-cache/dev"



def _unsupported() -> str:
    """What the program passes when no kind is pinned for the machine (here: Windows)."""
    try:
        kindrelease.asset("/home/dev", os_arch=("windows", "amd64"))
    except kindrelease.KindReleaseError as error:
        return str(error)
    raise AssertionError("windows/amd64 has no pinned checksum")


UNSUPPORTED = _unsupported()
PINNED = kindrelease.asset("/home/dev", os_arch=("linux", "amd64"))


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
    args = {"configured_host": None, "env_host": None, "kind_download": PINNED} | kw
    return preflight.check(rep, NET, OWNER, **args)


def test_healthy_machine_creates_the_network():
    decision = check(report(network_line("bridge", "172.17.0.0/16")))
    assert decision.adopt_network is False
    assert decision.docker_host == "unix:///var/run/docker.sock"


@pytest.mark.parametrize(
    ("kind", "docker", "says"),
    [
        pytest.param(
            "missing", "28.2.2", "`kind` is not on PATH; no checksum of kind v0.32.0 is pinned for windows/amd64",
            id="no-kind-unsupported-platform",
        ),
        pytest.param("kind v0.20.0 go1.20 linux/amd64", "28.2.2", "kind is kind v0.20.0, older than v0.27.0", id="old-kind-unsupported"),
        pytest.param("kind v0.32.0", "missing", "the `docker` CLI is not on PATH: install Docker", id="no-docker"),
        pytest.param("kind v0.32.0", "unreachable", "does not answer", id="docker-down"),
    ],
)
def test_missing_prerequisites_say_what_to_install(kind, docker, says):
    with pytest.raises(PreflightError) as info:
        check(report(kind=kind, docker=docker), kind_download=UNSUPPORTED)
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
    assert "leave it in place" in decision.notes[-1]


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


# --- which kind ---------------------------------------------------------------------------------------------


def test_an_installed_kind_new_enough_is_used_as_it_is():
    rep = preflight.parse("kind=kind v0.27.0 go1.23 linux/amd64\nkind_path=/opt/bin/kind\ndocker=28.2.2")
    decision = check(rep)
    assert decision.kind == preflight.KindChoice(path="/opt/bin/kind")
    assert "kind: using /opt/bin/kind (v0.27.0) as it is" in decision.notes


@pytest.mark.parametrize(
    ("kind_line", "why"),
    [
        pytest.param("kind=missing", "`kind` is not on PATH", id="missing"),
        pytest.param("kind=kind v0.26.0 go1.23 linux/amd64\nkind_path=/usr/bin/kind", "/usr/bin/kind is kind v0.26.0, older", id="old"),
        pytest.param("kind=kind: cannot execute binary file", "cannot read the kind version", id="unreadable"),
    ],
)
def test_a_missing_or_old_kind_means_the_pinned_download(kind_line, why):
    decision = check(preflight.parse(f"{kind_line}\ndocker=28.2.2"))
    assert decision.kind == preflight.KindChoice(path=PINNED.path, download=PINNED)
    assert PINNED.path == "/home/dev/.kind-registry-cache/bin/kind-v0.32.0-linux-amd64"
    (note,) = [n for n in decision.notes if n.startswith("kind:")]
    assert why in note
    assert "downloaded by `pulumi up`" in note and "not put on your PATH" in note


def test_an_unsupported_platform_tells_the_user_to_install_kind():
    with pytest.raises(PreflightError) as info:
        check(preflight.parse("kind=missing\ndocker=28.2.2"), kind_download=UNSUPPORTED)
    message = str(info.value)
    assert "windows/amd64" in message
    assert "install kind v0.27 or newer yourself: https://kind.sigs.k8s.io/" in message


# --- what exists, and the generation tokens -----------------------------------------------------------------

CACHES = ["kcr-dev-docker-io", "kcr-dev-quay-io"]
NODES = ["dev-control-plane", "dev-worker"]


def _fresh():
    counter = iter(range(1, 100))
    return lambda: f"new{next(counter)}"


def existing(*, caches=None, nodes=None, record="gen-c cp-id", certs="present") -> preflight.Report:
    lines = ["kind=kind v0.32.0", "docker=28.2.2", f"certs={certs}"]
    if record:
        lines.append(f"cluster_record={record}")
    for name, token in (caches if caches is not None else {"kcr-dev-docker-io": "gen-a", "kcr-dev-quay-io": "gen-b"}).items():
        lines.append(f"cache={name} {token}")
    for node_id, name in (nodes if nodes is not None else {"cp-id": "dev-control-plane", "w-id": "dev-worker"}).items():
        lines.append(f"node={node_id} {name}")
    return preflight.parse("\n".join(lines))


def test_everything_present_keeps_every_token():
    gens = preflight.generations(existing(), CACHES, NODES, fresh=_fresh())
    assert gens == preflight.Generations(caches={"kcr-dev-docker-io": "gen-a", "kcr-dev-quay-io": "gen-b"}, cluster="gen-c")


def test_a_removed_cache_container_alone_gets_a_new_token():
    rep = existing(caches={"kcr-dev-quay-io": "gen-b"})
    gens = preflight.generations(rep, CACHES, NODES, fresh=_fresh())
    assert gens.caches == {"kcr-dev-docker-io": "new1", "kcr-dev-quay-io": "gen-b"}
    assert gens.cluster == "gen-c"
    assert gens.missing == ("cache container kcr-dev-docker-io",)


def test_a_cache_container_without_a_token_is_kept_as_it_is():
    gens = preflight.generations(existing(caches={"kcr-dev-docker-io": "", "kcr-dev-quay-io": "gen-b"}), CACHES, NODES)
    assert gens.caches["kcr-dev-docker-io"] == ""


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        pytest.param({"nodes": {}}, "kind cluster", id="kind-delete-cluster"),
        pytest.param({"nodes": {"cp-id": "dev-control-plane"}}, "kind cluster", id="a-node-removed"),
        pytest.param({"nodes": {"other-id": "dev-control-plane", "w-id": "dev-worker"}}, "kind cluster", id="another-cluster-same-name"),
        pytest.param({"record": ""}, "kind cluster", id="no-record"),
        pytest.param({"certs": "missing"}, "certs folder", id="certs-deleted"),
    ],
)
def test_a_missing_cluster_or_certs_folder_gets_a_new_cluster_token(kw, why):
    gens = preflight.generations(existing(**kw), CACHES, NODES, fresh=_fresh())
    assert gens.cluster == "new1"
    assert gens.caches == {"kcr-dev-docker-io": "gen-a", "kcr-dev-quay-io": "gen-b"}
    assert any(why in m for m in gens.missing)


def test_fresh_tokens_differ():
    assert len({preflight.new_token() for _ in range(50)}) == 50


def test_script_reports_caches_nodes_record_and_certs(tmp_path):
    (tmp_path / "docker").write_text(
        "#!/bin/sh\n"
        'echo "$*" >> "$LOG"\n'
        'case "$1 $2" in\n'
        '  "version --format") echo 28.2.2 ;;\n'
        '  "ps -a")\n'
        '    case "$*" in\n'
        '      *kind-registry-cache.stack=kind-registry-cache/dev*) echo "kcr-dev-docker-io gen-a"; echo "kcr-dev-quay-io " ;;\n'
        '      *io.x-k8s.kind.cluster=dev*) echo "cp-id dev-control-plane" ;;\n'
        "    esac ;;\n"
        "esac\n"
    )
    (tmp_path / "docker").chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    (state / "kind-dev.generation").write_text("gen-c cp-id\n")
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "LOG": str(tmp_path / "log"),
        **preflight.environment(OWNER, "dev", str(state / "kind-dev.generation"), str(tmp_path / "certs.d")),
    }
    result = subprocess.run(["/bin/sh", "-c", preflight.SCRIPT], env=env, capture_output=True, text=True)
    rep = preflight.parse(result.stdout)
    assert rep.caches == {"kcr-dev-docker-io": "gen-a", "kcr-dev-quay-io": ""}
    assert rep.nodes == {"cp-id": "dev-control-plane"}
    assert rep.cluster_record == "gen-c cp-id"
    assert rep.certs == "missing"
    (tmp_path / "certs.d").mkdir()
    rep = preflight.parse(subprocess.run(["/bin/sh", "-c", preflight.SCRIPT], env=env, capture_output=True, text=True).stdout)
    assert rep.certs == "present"
    # Only reads: the docker commands it ran.
    ran = {" ".join(line.split()[:2]) for line in (tmp_path / "log").read_text().splitlines()}
    assert ran == {"version --format", "context inspect", "info --format", "network ls", "ps -a", "volume ls"}
    assert f'--filter label={preflight.KIND_CLUSTER_LABEL}=dev' in (tmp_path / "log").read_text()
