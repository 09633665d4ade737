"""Cache container settings."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from krc.render import registry


def test_environment_exact():
    assert registry.environment("https://quay.io", "0") == {
        "REGISTRY_HTTP_ADDR": ":5000",
        "REGISTRY_PROXY_REMOTEURL": "https://quay.io",
        "REGISTRY_PROXY_TTL": "0",
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/var/lib/registry",
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        "REGISTRY_HTTP_DEBUG_ADDR": ":5001",
        "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true",
        "REGISTRY_LOG_LEVEL": "info",
    }


def test_credentials_are_separate_from_the_plain_settings():
    assert "REGISTRY_PROXY_PASSWORD" not in registry.environment("https://x", "0")
    assert registry.credential_environment("u", "p") == {"REGISTRY_PROXY_USERNAME": "u", "REGISTRY_PROXY_PASSWORD": "p"}


def test_env_list_is_sorted_key_value():
    assert registry.env_list({"B": "2", "A": "1=1"}) == ["A=1=1", "B=2"]


def test_healthcheck_uses_the_debug_health_endpoint():
    assert registry.healthcheck_command() == [
        "CMD",
        "wget",
        "-q",
        "-O",
        "/dev/null",
        "http://127.0.0.1:5001/debug/health",
    ]


def test_cache_container_bounds_connects_to_an_upstream_that_drops_packets():
    # Network-namespaced (Docker accepts net.* for a container with its own network): ~3 s per connect attempt,
    # ~13 s for a request on a connection whose peer went silent, instead of Go's 30 s and TCP's ~15 min.
    assert registry.SYSCTLS == {"net.ipv4.tcp_syn_retries": "1", "net.ipv4.tcp_retries2": "3"}


# --- the entrypoint, run by sh with a fake `registry` ------------------------------------------------

FAKE_REGISTRY = """#!/bin/sh
# Records how it was started and what the login helper answers, then serves until stopped.
echo "serve $* remote=${REGISTRY_PROXY_REMOTEURL:-none} exec=${REGISTRY_PROXY_EXEC_COMMAND:-none} pid=$$" >> "$RUNS"
if [ -n "${REGISTRY_PROXY_EXEC_COMMAND:-}" ]; then
  echo registry-1.docker.io | "$REGISTRY_PROXY_EXEC_COMMAND" get > "$RUNS.login"
fi
trap 'exit 0' TERM
while :; do sleep 0.1; done
"""


@pytest.fixture
def sandbox(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "registry").write_text(FAKE_REGISTRY)
    (bin_dir / "registry").chmod(0o755)
    return tmp_path


def start_entrypoint(sandbox, **env: str) -> subprocess.Popen:
    environment = {"PATH": f"{sandbox / 'bin'}:/usr/bin:/bin", "RUNS": str(sandbox / "runs"), **env}
    # The helper's path moves into the sandbox: the test writes nothing outside it.
    script = registry.entrypoint()[2].replace(registry.LOGIN_HELPER, str(sandbox / "login"))
    return subprocess.Popen(["/bin/sh", "-c", script], env=environment, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def runs(sandbox) -> list[str]:
    path = sandbox / "runs"
    return path.read_text().splitlines() if path.exists() else []


def login_answer(sandbox) -> dict | None:
    path = sandbox / "runs.login"
    return json.loads(path.read_text()) if path.exists() and path.read_text().endswith("\n") else None


@pytest.mark.parametrize(
    ("username", "password"),
    [("", ""), ("krc-bot", "s3cret"), ("krc-bot", 'a"quoted\\pass word$(x)`y`')],
    ids=["anonymous", "login", "quotes-and-backslashes"],
)
def test_entrypoint_runs_the_registry_as_a_pull_through_cache_with_the_login_from_a_helper(
        sandbox, username, password):
    env = {"REGISTRY_PROXY_REMOTEURL": "https://registry-1.docker.io"}
    if username:
        env |= {"REGISTRY_PROXY_USERNAME": username, "REGISTRY_PROXY_PASSWORD": password}
    proc = start_entrypoint(sandbox, **env)
    try:
        wait_for(lambda: login_answer(sandbox) is not None)
        (run,) = runs(sandbox)
        # exec: the registry is the container's process, once, with the helper as its proxy.exec command.
        assert run == f"serve serve /etc/distribution/config.yml remote=https://registry-1.docker.io exec={sandbox / 'login'} pid={proc.pid}"
        assert login_answer(sandbox) == {"Username": username, "Secret": password}
        # The helper holds no secret: it reads the container's environment when the registry runs it.
        helper = (sandbox / "login").read_text()
        assert (sandbox / "login").stat().st_mode & 0o777 == 0o700
        assert password not in helper or not password
    finally:
        proc.terminate()
        proc.wait(5)


def test_login_helper_answers_only_get(sandbox):
    proc = start_entrypoint(sandbox, REGISTRY_PROXY_REMOTEURL="https://quay.io")
    try:
        wait_for(lambda: (sandbox / "login").exists() and login_answer(sandbox) is not None)
        for action in ("store", "erase", "list"):
            done = subprocess.run([str(sandbox / "login"), action], input="quay.io\n", capture_output=True, text=True)
            assert done.returncode != 0 and done.stdout == "", action
    finally:
        proc.terminate()
        proc.wait(5)


def test_entrypoint_never_probes_or_restarts(sandbox):
    # Nothing in it contacts the upstream or waits to switch modes: the registry is exec'd at once.
    script = registry.entrypoint()[2]
    assert "wget" not in script and "sleep" not in script and "kill" not in script
    assert script.rstrip().endswith('exec registry serve "$config"')


def test_without_a_remote_the_registry_runs_as_is(sandbox):
    proc = start_entrypoint(sandbox)
    try:
        wait_for(lambda: runs(sandbox))
        assert runs(sandbox) == [f"serve serve /etc/distribution/config.yml remote=none exec=none pid={proc.pid}"]
        assert not (sandbox / "login").exists()
    finally:
        proc.terminate()
        proc.wait(5)
