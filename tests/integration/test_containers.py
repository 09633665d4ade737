"""Translation of pulumi-docker resource inputs (as mocks record them) into Docker API calls."""
from __future__ import annotations

import pytest

from .containers import TEST_LABEL, container_spec, normalize_inputs, parse_duration

pytestmark = pytest.mark.integration

# The shape the program's mock run records for a cache container (camelCase, numbers as floats).
RECORDED = {
    "name": "cache-docker-io",
    "image": "sha256:" + "0" * 64,
    "envs": ["REGISTRY_PROXY_REMOTEURL=http://fake-docker-io:5000", "REGISTRY_PROXY_TTL=0"],
    "networksAdvanced": [{"name": "kind", "aliases": ["cache-docker-io"]}, {"name": "other", "aliases": []}],
    "volumes": [{"volumeName": "cache-docker-io", "containerPath": "/var/lib/registry"}],
    "restart": "unless-stopped",
    "ports": [{"internal": 5000.0, "external": 5101.0, "ip": "0.0.0.0"}],
    "healthcheck": {"tests": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5001/debug/health"],
                    "interval": "10s", "timeout": "3s", "retries": 3.0, "startPeriod": "5s"},
    "labels": [{"label": "kind-registry-cache.upstream", "value": "docker.io"}],
}


def test_normalize_inputs_snake_cases_names_but_not_option_keys():
    assert normalize_inputs({"networksAdvanced": [{"ipv4Address": "x"}], "options": {"com.docker.A": "1"},
                             "retries": 3.0, "ratio": 0.5}) == {
        "networks_advanced": [{"ipv4_address": "x"}], "options": {"com.docker.A": "1"}, "retries": 3, "ratio": 0.5}


@pytest.mark.parametrize(("text", "nanoseconds"), [
    ("10s", 10 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), ("0s", 0), ("0", 0), ("1h", 3600 * 10**9),
    ("1.5s", 15 * 10**8),
])
def test_parse_duration(text, nanoseconds):
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize("text", ["10", "ten seconds", "10s garbage"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_container_spec_translates_recorded_inputs():
    spec = container_spec(RECORDED, image_map={RECORDED["image"]: "krc-test/registry:abc"})
    create, host = spec["create"], spec["host_config"]
    assert create["image"] == "krc-test/registry:abc"
    assert create["environment"] == RECORDED["envs"]
    assert create["labels"] == {"kind-registry-cache.upstream": "docker.io", TEST_LABEL: "true"}
    assert create["healthcheck"] == {"test": RECORDED["healthcheck"]["tests"], "interval": 10 * 10**9,
                                     "timeout": 3 * 10**9, "start_period": 5 * 10**9, "retries": 3}
    assert create["ports"] == [(5000, "tcp")]
    # Published on loopback only, whatever the program asked for.
    assert host["port_bindings"] == {"5000/tcp": ("127.0.0.1", 5101)}
    assert host["restart_policy"] == {"Name": "unless-stopped"}
    assert host["network_mode"] == "kind"
    assert [(m["Type"], m["Source"], m["Target"], m["ReadOnly"]) for m in host["mounts"]] == [
        ("volume", "cache-docker-io", "/var/lib/registry", False)]
    assert spec["networks"] == [("kind", ["cache-docker-io"], None), ("other", [], None)]


@pytest.mark.parametrize(("image", "expected"), [
    ("registry:3", "stand-in"),
    ("docker.io/library/registry:3", "stand-in"),
    ("registry:3.0.0@sha256:" + "1" * 64, "stand-in"),
    ("registry", "stand-in"),
    ("myregistry:5000/registry:3", "myregistry:5000/registry:3"),
    ("other:1", "other:1"),
])
def test_image_map_matches_by_repository(image, expected):
    spec = container_spec({"name": "x", "image": image}, image_map={"registry": "stand-in"})
    assert spec["create"]["image"] == expected


def test_container_spec_refuses_unknown_inputs():
    with pytest.raises(ValueError, match="gpus"):
        container_spec({"name": "x", "image": "y", "gpus": "all"})
