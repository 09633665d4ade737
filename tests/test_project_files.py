"""Pulumi.yaml and Pulumi.dev.yaml: what the Pulumi CLI accepts, and no drift from the program's defaults."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from components import addon_settings, settings
from harness import ROOT, run_program, stack_config

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
DEV = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())

# The CLI validates Pulumi.yaml against its project schema on every command (sdk/go/common/workspace/
# project.json): a config declaration may only carry these keys, and `type` only these values.
DECLARATION_KEYS = {"type", "items", "description", "secret", "default", "value"}
SIMPLE_TYPES = {"string", "integer", "boolean", "array"}


def test_project_names_runtime_and_local_backend():
    assert PROJECT["name"] == "kind-registry-cache"
    assert PROJECT["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    assert set(PROJECT["backend"]) == {"url"}
    assert PROJECT["backend"]["url"].startswith("file://"), "local state: no Pulumi account needed"


def test_config_declarations_fit_the_cli_schema():
    for key, declaration in PROJECT["config"].items():
        assert isinstance(declaration, dict), key
        assert set(declaration) <= DECLARATION_KEYS, f"{key}: {set(declaration) - DECLARATION_KEYS}"
        if "type" in declaration:
            assert declaration["type"] in SIMPLE_TYPES, f"{key}: type {declaration['type']!r} (object is rejected)"
            if declaration["type"] == "array":
                assert "items" in declaration, key
        assert declaration.get("description"), f"{key} needs a description"
        assert "default" in declaration, f"{key} needs a default (a key without one is required by the CLI)"


def test_every_key_the_program_reads_is_declared():
    source = (ROOT / "components" / "config.py").read_text()
    read = set(re.findall(r'_raw\("([A-Za-z]+)"\)', source))
    assert read == set(PROJECT["config"]), read ^ set(PROJECT["config"])


def test_project_defaults_mean_the_same_as_no_config():
    # Pulumi.yaml's defaults are what the CLI passes when a stack sets nothing: they must not drift from
    # the program's own defaults.
    defaults = {key: spec["default"] for key, spec in PROJECT["config"].items()}
    common = {"project": "kind-registry-cache", "stack": "dev", "home": "/home/u"}
    from_defaults = settings.parse(
        **common,
        cluster=defaults["cluster"],
        network=defaults["network"],
        cache=defaults["cache"],
        credentials=defaults["credentials"] or None,
        docker=defaults["docker"],
        certs_dir=defaults["certsDir"],
        warmup=defaults["warmup"],
    )
    assert from_defaults == settings.parse(**common)
    subnet = from_defaults.network.subnet
    assert addon_settings.parse(defaults["addons"], subnet=subnet) == addon_settings.parse(None, subnet=subnet)


def test_dev_stack_file_holds_values_only_namespaced_and_no_secret():
    config = DEV["config"]
    assert all(key.startswith("kind-registry-cache:") for key in config), list(config)
    assert "secure:" not in (ROOT / "Pulumi.dev.yaml").read_text(), "a committed stack file holds no secret"
    assert config["kind-registry-cache:cluster"] == {"controlPlanes": 3, "workers": 3}


def test_dev_stack_runs_under_mocks_as_the_cli_would_pass_it():
    assert stack_config("dev")["cluster"] == {"controlPlanes": 3, "workers": 3}
    assert run_program("dev").outputs["clusterName"] == "dev"


def test_ci_script_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "```sh\nbash tests/run.sh\n```" in readme
    assert ci.rstrip().endswith("exec bash tests/run.sh")
    assert Path(ROOT / "tests" / "run.sh").exists()
