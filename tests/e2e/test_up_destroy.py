"""Opt-in end-to-end test: real `pulumi up` / `destroy` / `up` of a small stack through the Automation API.

Needs the Pulumi CLI, a Docker engine and internet (kind is the program's own download when none is installed), and runs only with KRC_E2E=1 (it creates a real
cluster and pulls from real registries). Everywhere else it is reported as skipped with the reason, before
any network traffic.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STACK = "e2e"
#: A small image no add-on uses, so the cache's hits and misses are this test's own.
PROBE_IMAGE = "docker.io/library/busybox:1.37"
#: The e2e stack's local registry port.
LOCAL_REGISTRY_PORT = 15001


def _missing_prerequisites() -> str | None:
    if os.environ.get("KRC_E2E") != "1":
        return "opt-in: set KRC_E2E=1 on a machine with the Pulumi CLI, Docker and internet"
    for tool in ("pulumi", "docker"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "the Docker engine does not answer `docker info`"
    return None


def kind_binary() -> str:
    """The kind the program runs: the one on PATH, or its own download (kind v0.27+ either way after `up`)."""
    from krc.preflight import kindrelease

    return shutil.which("kind") or kindrelease.asset(str(Path.home())).path


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def node_exec(*args: str) -> str:
    return sh("docker", "exec", f"{STACK}-control-plane", *args)


def kubectl(*args: str) -> str:
    return node_exec("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", *args)


def proxy_counter(container: str, name: str) -> float:
    """Sum of a registry proxy counter (``registry_proxy_hits_total`` ...) from the cache's metrics."""
    text = sh("docker", "exec", container, "wget", "-qO-", "http://127.0.0.1:5001/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def wait_ready(timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
        ready = [
            any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]) for n in nodes
        ]
        if nodes and all(ready):
            return
        time.sleep(5)
    raise AssertionError(f"nodes not Ready after {timeout}s:\n{kubectl('get', 'nodes')}")


def run_probe_pod(name: str) -> None:
    kubectl("run", name, f"--image={PROBE_IMAGE}", "--restart=Never", "--image-pull-policy=Always", "--", "true")
    kubectl("wait", f"pod/{name}", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=300s")


@pytest.fixture(scope="module")
def stack():
    reason = _missing_prerequisites()
    if reason:
        pytest.skip(reason)
    from pulumi import automation as auto

    os.environ.setdefault("PULUMI_CONFIG_PASSPHRASE", "kind-registry-cache-e2e")
    workspace_stack = auto.create_or_select_stack(stack_name=STACK, work_dir=str(ROOT))
    # The Gateway on too, with node port 8080 published for host-network mode (Docker Desktop, Colima); on a Linux
    # Docker Engine it sits on a MetalLB address instead. Host port 18080 keeps clear of whatever the machine runs.
    mappings = [{"containerPort": 80}, {"containerPort": 443}, {"containerPort": 8080, "hostPort": 18080}]
    workspace_stack.set_config(
        "kind-registry-cache:cluster", auto.ConfigValue(json.dumps({"workers": 1, "portMappings": mappings}))
    )
    workspace_stack.set_config(
        "kind-registry-cache:addons", auto.ConfigValue(json.dumps({"gatewayApi": {"enabled": True}}))
    )
    workspace_stack.set_config("kind-registry-cache:network", auto.ConfigValue(json.dumps({"name": "kind-e2e", "subnet": "172.29.0.0/16"})))
    # Clear of a dev stack's local registry on the default 5001 (a second stack on it would be refused).
    workspace_stack.set_config("kind-registry-cache:localRegistry", auto.ConfigValue(json.dumps({"port": LOCAL_REGISTRY_PORT})))
    yield workspace_stack
    workspace_stack.destroy(on_output=print)
    sh("sh", "-c", "docker volume ls -q --filter label=kind-registry-cache.stack=kind-registry-cache/e2e | xargs -r docker volume rm")
    workspace_stack.workspace.remove_stack(STACK)


def test_up_destroy_up_serves_the_second_pull_from_the_cache(stack):
    result = stack.up(on_output=print)
    assert result.outputs["clusterName"].value == STACK
    assert result.outputs["kubeconfig"].secret
    wait_ready()
    run_probe_pod("probe-1")
    cache = result.outputs["mirrors"].value["docker.io"]["container"]
    assert proxy_counter(cache, "registry_proxy_misses_total") > 0, "the first pull went through the cache"

    stack.destroy(on_output=print)
    assert subprocess.run(["docker", "volume", "inspect", cache], capture_output=True).returncode == 0, "cache kept"

    stack.up(on_output=print)
    wait_ready()
    run_probe_pod("probe-2")
    assert proxy_counter(cache, "registry_proxy_hits_total") > 0, "the second cluster's pull was served from the cache"


#: The HTTPRoute of docs/addons.md, to a Service in front of a tiny HTTP server that answers with its marker.
ECHO = """
apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: default, labels: {app: echo}}
spec:
  containers:
    - name: echo
      image: docker.io/library/busybox:1.37
      command: ["sh", "-c", "mkdir -p /www && echo gateway-e2e-ok > /www/index.html && httpd -f -p 8080 -h /www"]
      ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: default}
spec:
  parentRefs: [{name: shared, namespace: gateway}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs: [{name: echo, port: 80}]
"""


def test_gateway_answers_an_httproute_at_gateway_url_from_the_host(stack):
    import urllib.request

    result = stack.up(on_output=print)
    assert result.outputs["gatewayClass"].value == "cilium"
    url = result.outputs["gatewayUrl"].value
    wait_ready()
    subprocess.run(
        ["docker", "exec", "-i", f"{STACK}-control-plane", "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf",
         "apply", "-f", "-"],
        input=ECHO, text=True, check=True, capture_output=True,
    )
    kubectl("wait", "pod/echo", "--for=condition=Ready", "--timeout=300s")
    kubectl("wait", "-n", "gateway", "gateway/shared", "--for=condition=Programmed", "--timeout=300s")
    deadline, last = time.monotonic() + 120, ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/", timeout=5) as response:  # from the host, as a user would
                body = response.read().decode()
            if "gateway-e2e-ok" in body:
                return
            last = body
        except OSError as error:
            last = str(error)
        time.sleep(3)
    raise AssertionError(f"{url} did not answer through the Gateway: {last}\n{kubectl('get', 'gateway,httproute', '-A')}")


def test_up_after_kind_delete_cluster_brings_cluster_and_addons_back_warm(stack):
    result = stack.up(on_output=print)
    wait_ready()
    run_probe_pod("probe-3")
    cache = result.outputs["mirrors"].value["docker.io"]["container"]

    sh(kind_binary(), "delete", "cluster", "--name", STACK)
    assert subprocess.run(["docker", "inspect", f"{STACK}-control-plane"], capture_output=True).returncode != 0
    preview = stack.preview(on_output=print)
    assert preview.change_summary.get("replace", 0) >= 2, f"the cluster and its certs are replaced: {preview.change_summary}"

    hits_before = proxy_counter(cache, "registry_proxy_hits_total")
    result = stack.up(on_output=print)
    wait_ready()
    # The add-ons are installed again on the new cluster.
    for namespace in ("metallb-system", "ingress-nginx"):
        pods = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
        assert pods, f"no pods in {namespace} after the cluster came back"
    run_probe_pod("probe-4")
    assert proxy_counter(cache, "registry_proxy_hits_total") > hits_before, "the new cluster pulled from the warm cache"

    # Nothing changed since: no diff.
    preview = stack.preview(on_output=print)
    assert set(preview.change_summary) <= {"same"}, preview.change_summary


def test_an_image_pushed_to_the_local_registry_runs_in_the_cluster(stack):
    import yaml

    result = stack.up(on_output=print)
    push = result.outputs["localRegistry"].value["pushUrl"]
    assert push == f"localhost:{LOCAL_REGISTRY_PORT}"
    wait_ready()
    # The inner loop of docs/local-registry.md: build, push to localhost:<port>, run it by that same name.
    image = f"{push}/krc-e2e/hello:1"
    dockerfile = f"FROM {PROBE_IMAGE}\nRUN echo local-registry-e2e-ok > /hello\n"
    subprocess.run(["docker", "build", "-t", image, "-"], input=dockerfile, text=True, check=True, capture_output=True)
    sh("docker", "push", image)
    kubectl("run", "hello", f"--image={image}", "--restart=Never", "--image-pull-policy=Always", "--", "cat", "/hello")
    kubectl("wait", "pod/hello", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=300s")
    assert "local-registry-e2e-ok" in kubectl("logs", "hello")
    # KEP-1755: what Tilt, Skaffold and ctlptl read.
    configmap = json.loads(kubectl("get", "configmap", "-n", "kube-public", "local-registry-hosting", "-o", "json"))
    hosting = yaml.safe_load(configmap["data"]["localRegistryHosting.v1"])
    assert (hosting["host"], hosting["hostFromContainerRuntime"]) == (push, push)
