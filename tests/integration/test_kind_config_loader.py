"""kind's own config loader accepts every kind config the program generates (issue #17).

The real kind v0.32.0 (built from its Go module by tests/gotools.py; this test fails, never skips, without it) is
fed each config the program generates, under mocks, exactly as the cluster command feeds it
(``kind create cluster --name <name> --config -``), with a stand-in ``docker`` on PATH that answers kind's
questions and refuses the first container it is asked to run. kind loads, defaults and validates the whole config
before it runs any container (kind v0.32.0 pkg/cluster/internal/create/create.go:69-99: validateProvider,
fixupOptions (load and defaults), alreadyExists, ``Config.Validate()``, then ``Provision``; provision runs
``docker run`` per node only after ensureNodeImages and ensureNetwork, pkg/cluster/internal/providers/docker/
provider.go:62-91). So a run that reaches ``docker run`` passed kind's validation; an error before it is ours.
The ``docker run`` arguments also show how kind read the config: the node names, the published ports
(provision.go:363-405) and the certs folder's mount (provision.go:331-361).
"""
from __future__ import annotations

import ipaddress
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import gotools
from harness import HEALTHY_PREFLIGHT, run_program
from krc.render import kindconfig

pytestmark = pytest.mark.integration

STAND_IN_DOCKER = r'''#!{python}
"""A stand-in docker for kind: answers what kind asks before it creates containers, refuses `docker run`."""
import json, os, sys, time
args = sys.argv[1:]
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
if args == ["-v"]:
    print("Docker version 28.2.2, build stand-in")
elif args[:1] == ["info"]:
    if "{{{{json .}}}}" in args:
        print(json.dumps({{"CgroupDriver": "systemd", "CgroupVersion": "2", "MemoryLimit": True, "PidsLimit": True,
                          "CPUShares": True, "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"]}}))
    else:
        print('["name=seccomp,profile=builtin","name=cgroupns"]')
elif args[:1] == ["ps"]:
    pass  # no node of any cluster exists
elif args[:2] == ["inspect", "--type=image"]:
    pass  # the node image is present
elif args[:2] == ["network", "ls"]:
    print("0123456789ab")  # the network exists (the program creates it before kind runs)
elif args[:1] == ["run"]:
    # kind starts every node's `docker run` at once and stops at the first error: fail a moment later, so that
    # every container it would create is asked for (and logged) first.
    time.sleep(1)
    print("stand-in docker: refusing to run a container", file=sys.stderr)
    sys.exit(125)
else:
    print("stand-in docker: unexpected " + " ".join(args), file=sys.stderr)
    sys.exit(2)
'''

NO_ADDONS = {"cilium": {"enabled": False}, "metallb": {"enabled": False}, "ingressNginx": {"enabled": False}}

#: Every shape of kind config the program generates: topologies, add-ons (CNI off, kube-proxy off, node labels),
#: port mappings (none, the defaults, every protocol and address form, host port != container port) and the
#: Gateway's host ports (host-network mode publishes 8080/8443).
STACKS = {
    "dev-3cp-3w-all-addons": {},
    "one-node": {"cluster": {"controlPlanes": 1, "workers": 0}},
    "1cp-2w-no-addons": {"cluster": {"controlPlanes": 1, "workers": 2}, "addons": NO_ADDONS},
    "control-planes-only": {"cluster": {"controlPlanes": 3, "workers": 0}},
    "no-port-mappings": {"cluster": {"controlPlanes": 1, "workers": 1, "portMappings": []}},
    "every-port-mapping-form": {"cluster": {"controlPlanes": 1, "workers": 1, "portMappings": [
        {"containerPort": 80, "hostPort": 8081},
        {"containerPort": 443, "hostPort": 8444, "listenAddress": "0.0.0.0"},
        {"containerPort": 53, "hostPort": 5353, "protocol": "udp"},
        {"containerPort": 9000, "hostPort": 9000, "protocol": "SCTP"},
        {"containerPort": 30080, "hostPort": 30080, "listenAddress": "::1"},
        {"containerPort": 30080, "hostPort": 30080, "listenAddress": "127.0.0.1"},
    ]}},
    "gateway-host-network": {
        "cluster": {"controlPlanes": 1, "workers": 2, "portMappings": [
            {"containerPort": 80, "hostPort": 80}, {"containerPort": 443, "hostPort": 443},
            {"containerPort": 8080, "hostPort": 8080}, {"containerPort": 8443, "hostPort": 8443},
        ]},
        "addons": {"gatewayApi": {"enabled": True, "mode": "hostNetwork", "tlsSecret": "gw-tls"}},
    },
    "node-image-by-tag": {"cluster": {"controlPlanes": 1, "workers": 0, "nodeImage": "kindest/node:v1.35.1"}},
}


@pytest.fixture(scope="module")
def kind_binary() -> Path:
    try:
        built = gotools.load(names=("kind",))
    except gotools.GoToolsError as error:
        pytest.fail(str(error), pytrace=False)
    if "kind" not in built:
        pytest.fail(f"kind {gotools.KIND}@v0.32.0 is not built: run tests/integration/setup.sh (python3 tests/gotools.py "
                    "build) as root", pytrace=False)
    return built["kind"].path


def kind_create(kind: Path, config_yaml: str, name: str, environment: dict[str, str], tmp_path: Path):
    """Run kind as the cluster command does, with the stand-in docker; return (result, docker calls)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    docker = bindir / "docker"
    docker.write_text(STAND_IN_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    log = tmp_path / "docker.log"
    log.unlink(missing_ok=True)
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "kubeconfig"),
        "STAND_IN_LOG": str(log), **{k: v for k, v in environment.items() if k in ("KIND_EXPERIMENTAL_DOCKER_NETWORK",)},
    }
    result = subprocess.run([str(kind), "create", "cluster", "--name", name, "--config", "-"], input=config_yaml,
                            env=env, capture_output=True, text=True, timeout=120)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def _flag(args: list[str], prefix: str) -> list[str]:
    return [a.removeprefix(prefix) for a in args if a.startswith(prefix)]


@pytest.mark.parametrize("stack", list(STACKS))
def test_kind_v0_32_accepts_the_generated_config_and_reads_it_as_meant(stack, kind_binary, tmp_path):
    rec = run_program("dev", overrides=STACKS[stack], preflight=HEALTHY_PREFLIGHT)
    cluster = rec.named("kind-cluster")
    config_yaml = cluster.inputs["stdin"]
    config = yaml.safe_load(config_yaml)
    name = config["name"]
    assert f'"$kind_bin" create cluster --name {shlex.quote(name)} --config -' in cluster.inputs["create"]

    result, calls = kind_create(kind_binary, config_yaml, name, cluster.inputs["environment"], tmp_path)
    runs = [c for c in calls if c[:1] == ["run"]]
    assert runs, f"kind refused the config before creating any container (ours to fix):\n{result.stderr}"
    assert result.returncode != 0 and "refusing to run a container" in result.stderr, result.stderr

    # kind creates one container per node, and a load balancer in front of several control planes.
    nodes = [n["role"] for n in config["nodes"]]
    settings_nodes = kindconfig.node_names(type("C", (), {"name": name, "control_planes": nodes.count("control-plane"),
                                                           "workers": nodes.count("worker")})())
    expected = set(settings_nodes) | ({f"{name}-external-load-balancer"} if nodes.count("control-plane") > 1 else set())
    started = {run[run.index("--name") + 1] for run in runs}
    assert started == expected
    by_name = {run[run.index("--name") + 1]: run for run in runs}
    first = by_name[f"{name}-control-plane"]
    # The first control plane publishes exactly the configured ports, as configured.
    mappings = config["nodes"][0].get("extraPortMappings", [])
    published = [p for p in _flag(first, "--publish=") if not p.endswith(":6443/TCP")]
    want = []
    for m in mappings:
        host = f"[{m['listenAddress']}]" if ":" in m["listenAddress"] else m["listenAddress"]
        want.append(f"{host}:{m['hostPort']}:{m['containerPort']}/{m['protocol']}")
    assert sorted(published) == sorted(want)
    # Every node mounts the certs folder read-only at containerd's certs.d, from the node image configured.
    mount = config["nodes"][0]["extraMounts"][0]
    for node in settings_nodes:
        assert f"{mount['hostPath']}:/etc/containerd/certs.d:ro" in _flag(by_name[node], "--volume="), node
        assert config["nodes"][0]["image"] in by_name[node], node
    # The network the program made is the one kind joins (commonArgs: "--net", networkName; provision.go:141).
    assert first[first.index("--net") + 1] == cluster.inputs["environment"]["KIND_EXPERIMENTAL_DOCKER_NETWORK"]


ADDRESSES = ["127.0.0.1", "0.0.0.0", "::", "::1", "10.1.2.3"]


@pytest.mark.parametrize("first", ADDRESSES)
def test_two_mappings_of_one_host_port_are_refused_exactly_when_kind_refuses_them(first, kind_binary, tmp_path):
    """The program's settings refuse a pair of port mappings on one host port and protocol exactly when kind's
    loader does (kind v0.32.0 pkg/internal/apis/config/validate.go:144-207), so `pulumi preview` says it, naming the
    setting, instead of `kind create` failing half-way through `up`."""
    from krc import config as settings
    from krc.config import ClusterSettings, PortMapping, SettingsError
    from krc.render import addon_values

    for second in ADDRESSES:
        mappings = [{"containerPort": 80, "hostPort": 80, "listenAddress": first},
                    {"containerPort": 81, "hostPort": 80, "listenAddress": second}]
        try:
            cluster = settings.parse(project="kind-registry-cache", stack="pm", home=str(tmp_path),
                                     cluster={"portMappings": mappings}).cluster
            ours = True
        except SettingsError:
            cluster = ClusterSettings("pm", port_mappings=tuple(
                PortMapping(m["containerPort"], 80, str(ipaddress.ip_address(m["listenAddress"]))) for m in mappings))
            ours = False
        options = addon_values.kind_options(str(tmp_path / "certs.d"), cilium=False, ingress=False)
        result, calls = kind_create(kind_binary, kindconfig.render(cluster, options), "pm",
                                    {"KIND_EXPERIMENTAL_DOCKER_NETWORK": "kind"}, tmp_path)
        theirs = any(c[:1] == ["run"] for c in calls)
        assert ours == theirs, (first, second, ours, result.stderr)
