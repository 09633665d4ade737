"""Pulumi.yaml and Pulumi.dev.yaml: what the Pulumi CLI accepts, and no drift from the program's defaults."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from krc import config as settings
from krc.config import addons as addon_settings
from krc.config import localregistry
from krc.config import StackConfig
from krc.config import schema as schema_module
from krc.config.credentials import CredentialConfig
from harness import ROOT, run_program, stack_config

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
DEV = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
SCHEMA_FILE = ROOT / "schema" / "stack-config.json"

# The CLI validates Pulumi.yaml against its project schema on every command (pulumi/pulumi sdk/v3 v3.272.0
# go/common/workspace/project.json, compiled in project.go:59-73 and applied by ValidateProject, project.go:578-605):
# a config declaration may only carry these keys ($defs.configTypeDeclaration, additionalProperties false), and
# `type` only these values ($defs.simpleConfigType). `object` is one of them since v3.186.0 (pulumi/pulumi#20129),
# and a value of such a key must then be a map (project.go:818-822); this project leaves `type` out of its
# map-valued declarations and validates them itself (krc.config), with messages that name the fix. Top-level keys
# are open (the schema's additionalProperties is true), and `requiredPulumiVersion` is a field of the CLI's Project
# (project.go:378) since v3.219.0.
DECLARATION_KEYS = {"type", "items", "description", "secret", "default", "value"}
SIMPLE_TYPES = {"string", "integer", "boolean", "array", "object"}


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
            assert declaration["type"] in SIMPLE_TYPES, f"{key}: type {declaration['type']!r} is not one the CLI knows"
            if declaration["type"] == "array":
                assert "items" in declaration, key
            # The CLI checks a typed key's value against its type (ValidateConfigValue, project.go:780-839): the default too.
            python = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}[declaration["type"]]
            assert isinstance(declaration["default"], python), f"{key}: default is not a {declaration['type']}"
        assert declaration.get("description"), f"{key} needs a description"
        assert "default" in declaration, f"{key} needs a default (a key without one is required by the CLI)"


def test_every_key_the_program_reads_is_declared():
    source = (ROOT / "program" / "config.py").read_text()
    # The program reads each top-level key of the model (TOP_KEYS) and no other.
    assert "{key: _raw(key, problems) for key in TOP_KEYS}" in source
    assert not re.findall(r'_raw\("([A-Za-z]+)"', source)
    from krc.config import TOP_KEYS

    assert set(TOP_KEYS) == set(PROJECT["config"]), set(TOP_KEYS) ^ set(PROJECT["config"])


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
    assert localregistry.parse(defaults["localRegistry"], stack="dev") == localregistry.parse(None, stack="dev")
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


# --- Pulumi.yaml and the committed JSON Schema against the configuration model (krc.config) ---------


def _aliases(model: type[BaseModel]) -> set[str]:
    """Every key a model accepts, nested models included."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        found.add(field.alias or name)
        for inner in _models_in(field.annotation):
            found |= _aliases(inner)
    return found


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


SECTION_MODELS = {key: _models_in(field.annotation) for key, field in StackConfig.model_fields.items()}


def test_pulumi_yaml_declares_exactly_the_model_keys():
    assert set(PROJECT["config"]) == set(settings.TOP_KEYS)
    assert set(settings.TOP_KEYS) == {f.alias for f in StackConfig.model_fields.values()}


@pytest.mark.parametrize("name", list(StackConfig.model_fields))
def test_pulumi_yaml_description_names_every_key_of_the_model(name):
    field = StackConfig.model_fields[name]
    description = PROJECT["config"][field.alias]["description"]
    keys = set().union(*(_aliases(m) for m in SECTION_MODELS[name])) if SECTION_MODELS[name] else set()
    if name == "credentials":
        keys = _aliases(CredentialConfig)
    missing = sorted(k for k in keys if not re.search(rf"\b{re.escape(k)}\b", description))
    assert not missing, f"Pulumi.yaml's {field.alias} description does not mention {missing}"


@pytest.mark.parametrize("name", list(StackConfig.model_fields))
def test_pulumi_yaml_defaults_are_the_model_defaults(name):
    field = StackConfig.model_fields[name]
    declared = PROJECT["config"][field.alias]["default"]
    if name == "credentials":
        assert declared == {} == field.get_default()
        return
    if not SECTION_MODELS[name]:
        assert declared == field.get_default()
        return
    (model,) = SECTION_MODELS[name]
    # What Pulumi.yaml passes when a stack sets nothing validates to the same model as nothing at all.
    assert model.model_validate(declared) == model()
    # ... and each value it names is the model's default for that key, not merely an accepted one.
    defaults = model().model_dump(by_alias=True, mode="json")
    for key, value in declared.items():
        if isinstance(value, dict) and isinstance(defaults[key], dict) and value:
            assert {k: defaults[key][k] for k in value} == value, (field.alias, key)
        elif not (isinstance(value, dict) and not value):
            assert defaults[key] == value, (field.alias, key)


def test_every_model_field_has_a_description_for_editors():
    schema = json.loads(SCHEMA_FILE.read_text())

    def described(prop: dict) -> bool:
        # A property that is a whole model may carry the model's own description, through its $ref.
        ref = prop.get("$ref", "").removeprefix("#/$defs/")
        return bool(prop.get("description") or (ref and schema["$defs"][ref].get("description")))

    for name, definition in schema["$defs"].items():
        for key, prop in definition.get("properties", {}).items():
            assert described(prop), f"{name}.{key} has no description"
    for key, prop in schema["properties"]["config"]["properties"].items():
        assert described(prop), key


def test_committed_json_schema_is_current():
    assert SCHEMA_FILE.read_text() == schema_module.render(), "run `python -m krc.config.schema` and commit schema/stack-config.json"
    assert subprocess.run([sys.executable, "-m", "krc.config.schema", "--check"], cwd=ROOT).returncode == 0


def test_json_schema_accepts_the_dev_stack_and_refuses_an_unknown_key():
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    assert list(validator.iter_errors(DEV)) == []
    secret = {"config": {"kind-registry-cache:credentials": {"docker.io": {"password": {"secure": "v1:abc"}}}}}
    assert list(validator.iter_errors(secret)) == []
    assert list(validator.iter_errors({"config": {"kind-registry-cache:clustr": {}}}))
    assert list(validator.iter_errors({"config": {"kind-registry-cache:cluster": {"wrkers": 1}}}))
    assert list(validator.iter_errors({"config": {"kind-registry-cache:cluster": {"workers": 65}}}))
    assert list(validator.iter_errors({"config": {"kubernetes:context": "kind-dev"}})) == []


def test_ci_runs_the_property_tests_on_fixed_examples_and_developers_on_new_ones():
    """.ci/run selects the derandomized hypothesis profile (tests/conftest.py), and tests/run.sh keeps it under sudo."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export KRC_HYPOTHESIS_PROFILE=ci" in ci and ci.index("KRC_HYPOTHESIS_PROFILE") < ci.index("tests/run.sh")
    assert "KRC_HYPOTHESIS_PROFILE" in (ROOT / "tests" / "run.sh").read_text().split("--preserve-env=")[1].split()[0]
    probe = "import conftest, hypothesis; print(hypothesis.settings().derandomize)"
    for profile, expected in (("ci", "True"), ("", "False")):
        env = {"PATH": "/usr/bin:/bin", "KRC_HYPOTHESIS_PROFILE": profile}
        out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT / "tests", env=env, capture_output=True, text=True)
        assert out.stdout.strip() == expected, out.stderr

