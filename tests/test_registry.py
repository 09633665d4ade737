"""Cache container settings."""

from __future__ import annotations

import signal
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


# --- the offline-aware entrypoint, run by sh with fake `wget` and `registry` ------------------------

FAKE_WGET = """#!/bin/sh
# Answers like busybox wget, as the state file says: up (401 like Docker Hub), down, or crash.
case "$(cat "$STATE")" in
  up) echo "wget: server returned error: HTTP/1.1 401 Unauthorized" >&2; exit 1 ;;
  down) echo "wget: can't connect to remote host (10.0.0.1): Connection refused" >&2; exit 1 ;;
  dns) echo "wget: bad address 'registry-1.docker.io'" >&2; exit 1 ;;
  crash) echo "Segmentation fault" >&2; exit 139 ;;
esac
"""

FAKE_REGISTRY = """#!/bin/sh
# Records the proxy settings it was started with, then serves until stopped.
echo "serve remote=${REGISTRY_PROXY_REMOTEURL:-none} password=${REGISTRY_PROXY_PASSWORD:-none} readonly=${REGISTRY_STORAGE_MAINTENANCE_READONLY:-none}" >> "$RUNS"
trap 'exit 0' TERM
while :; do sleep 0.1; done
"""


@pytest.fixture
def sandbox(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("wget", FAKE_WGET), ("registry", FAKE_REGISTRY)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (bin_dir / "timeout").write_text('#!/bin/sh\nshift\nexec "$@"\n')
    (bin_dir / "timeout").chmod(0o755)
    return tmp_path


def start_entrypoint(sandbox, state: str, probe_seconds: str = "0.2") -> subprocess.Popen:
    (sandbox / "state").write_text(state)
    env = {
        "PATH": f"{sandbox / 'bin'}:/usr/bin:/bin",
        "STATE": str(sandbox / "state"),
        "RUNS": str(sandbox / "runs"),
        "KRC_PROBE_SECONDS": probe_seconds,
        "REGISTRY_PROXY_REMOTEURL": "https://registry-1.docker.io",
        "REGISTRY_PROXY_PASSWORD": "pw",
    }
    script = registry.entrypoint()[2].replace(registry.MODE_FILE, str(sandbox / "mode"))
    return subprocess.Popen(["/bin/sh", "-c", script], env=env, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def runs(sandbox) -> list[str]:
    path = sandbox / "runs"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("state", ["up", "crash"], ids=["upstream-answers-401", "probe-broken-keeps-proxy"])
def test_entrypoint_starts_in_proxy_mode_unless_the_network_fails(sandbox, state):
    proc = start_entrypoint(sandbox, state, probe_seconds="30")
    try:
        wait_for(lambda: runs(sandbox))
        assert runs(sandbox) == ["serve remote=https://registry-1.docker.io password=pw readonly=none"]
        assert (sandbox / "mode").read_text().strip() == "proxy"
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize("state", ["down", "dns"])
def test_entrypoint_serves_read_only_without_proxy_settings_when_offline(sandbox, state):
    proc = start_entrypoint(sandbox, state, probe_seconds="30")
    try:
        wait_for(lambda: runs(sandbox))
        assert runs(sandbox) == ['serve remote=none password=none readonly={"enabled": true}']
        assert (sandbox / "mode").read_text().strip() == "offline"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=5)
    assert "cannot be reached: serving cached content read-only" in stderr


def test_entrypoint_exits_for_a_restart_when_the_upstream_comes_back(sandbox):
    proc = start_entrypoint(sandbox, "down")
    wait_for(lambda: runs(sandbox))
    (sandbox / "state").write_text("up")
    assert proc.wait(timeout=10) == 0
    assert "answers again: restarting as a pull-through cache" in proc.stderr.read()


def test_entrypoint_leaves_proxy_mode_only_after_repeated_failures(sandbox):
    proc = start_entrypoint(sandbox, "up")
    wait_for(lambda: runs(sandbox))
    (sandbox / "state").write_text("down")
    assert proc.wait(timeout=10) == 0
    # It gave up after OFFLINE_AFTER failed probes, not the first one.
    assert f"has not answered {registry.OFFLINE_AFTER} probes" in proc.stderr.read()


def test_entrypoint_stops_the_registry_on_docker_stop(sandbox):
    proc = start_entrypoint(sandbox, "up", probe_seconds="30")
    wait_for(lambda: runs(sandbox))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0


def test_without_a_remote_the_registry_runs_as_is(sandbox):
    env = {"PATH": f"{sandbox / 'bin'}:/usr/bin:/bin", "RUNS": str(sandbox / "runs")}
    proc = subprocess.Popen(["/bin/sh", "-c", registry.entrypoint()[2]], env=env)
    try:
        wait_for(lambda: runs(sandbox))
        assert runs(sandbox) == ["serve remote=none password=none readonly=none"]
    finally:
        proc.terminate()
        proc.wait(5)
