"""Drift on a real engine: a cache container removed by hand is seen by the preflight's `docker ps`, and the
program run with that report asks for that container, and only it, again (on its kept volume)."""
from __future__ import annotations

import os
import subprocess

import pytest

from krc import preflight
from harness import run_program

from . import stack
from .containers import create_container_from_inputs, wait_healthy

pytestmark = pytest.mark.integration


def _preflight_stdout(engine, certs_dir, tmp_path) -> str:
    """The program's own preflight script against the private engine, as the read-only invoke runs it."""
    env = {
        "PATH": os.environ["PATH"],
        "DOCKER_HOST": engine.base_url,
        **preflight.environment("kind-registry-cache/itest", "itest", str(tmp_path / "kind-itest.generation"), str(certs_dir)),
    }
    return subprocess.run(["/bin/sh", "-c", preflight.SCRIPT], env=env, capture_output=True, text=True, check=True).stdout


def _caches(rec):
    return {r.inputs["name"]: r.inputs for r in rec.of_type("docker:index/container:Container")}


def test_a_cache_removed_by_hand_is_reported_and_recreated_alone_on_its_volume(
    docker_engine, docker_client, built_images, tmp_path
):
    certs_dir = tmp_path / "certs.d"
    first = stack.record(certs_dir)  # the first `up`: nothing of the stack exists yet
    stack.create_network(docker_client, first)
    deployed = stack.deploy(docker_client, first, built_images.registry)

    # Second run with nothing changed: every cache keeps the inputs it was created with (no diff).
    out = _preflight_stdout(docker_engine, certs_dir, tmp_path)
    assert set(preflight.parse(out).caches) == set(_caches(first))
    second = run_program("itest", overrides=stack.test_overrides(certs_dir), use_stack_file=False, preflight=out)
    assert _caches(second) == _caches(first)

    # `docker rm -f` of one cache: the report no longer lists it, and the program asks for it alone again.
    removed = deployed.caches["quay.io"]
    name = removed.name
    removed.remove(force=True)
    out = _preflight_stdout(docker_engine, certs_dir, tmp_path)
    assert name not in preflight.parse(out).caches
    third = run_program("itest", overrides=stack.test_overrides(certs_dir), use_stack_file=False, preflight=out)
    changed = {n for n, inputs in _caches(third).items() if inputs != _caches(first)[n]}
    assert changed == {name}
    old_label = {i["label"]: i["value"] for i in _caches(first)[name]["labels"]}[preflight.LABEL_GENERATION]
    new_label = {i["label"]: i["value"] for i in _caches(third)[name]["labels"]}[preflight.LABEL_GENERATION]
    assert new_label != old_label  # a ForceNew label: the provider creates the container again

    # Created again as the provider would from those inputs: the same kept volume, and the next report has it.
    container = create_container_from_inputs(
        docker_client, _caches(third)[name], image_map=stack.image_map(third, built_images.registry),
        overrides={"healthcheck": {"interval": "1s"}},
    )
    wait_healthy(container, timeout=60)
    assert [m["Name"] for m in container.attrs["Mounts"] if m["Type"] == "volume"] == [name]
    out = _preflight_stdout(docker_engine, certs_dir, tmp_path)
    assert preflight.parse(out).caches[name] == new_label
    fourth = run_program("itest", overrides=stack.test_overrides(certs_dir), use_stack_file=False, preflight=out)
    assert _caches(fourth) == _caches(third)
