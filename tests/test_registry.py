"""Cache container settings."""

from __future__ import annotations

from components import registry


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
