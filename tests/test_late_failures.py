"""Class 6 of issue #18: no traceback for any value, and what used to fail only during `up` is refused in preview."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from harness import PROJECT, run_program
from krc import config as settings
from krc.config import TOP_KEYS, SettingsError
from krc.config.raw import MAX_DEPTH, MAX_SAFE_INTEGER, loads
from program import config as program_config

HOME = "/home/dev"


def load(values: dict[str, str], secret: tuple[str, ...] = ()) -> program_config.StackConfig:
    """``program.config.load()`` with raw config texts, as the engine hands them over (it registers nothing, so
    no mocked engine is needed: only the project and stack names)."""
    pulumi.runtime.set_all_config({f"{PROJECT}:{k}": v for k, v in values.items()}, [f"{PROJECT}:{k}" for k in secret])
    with mock.patch.object(pulumi, "get_project", lambda: PROJECT), mock.patch.object(pulumi, "get_stack", lambda: "dev"):
        return program_config.load()


def deep(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


JSON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.text(max_size=8),
        st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "9" * 5000]).map(lambda t: _Raw(t)),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12,
)


class _Raw(str):
    """A JSON literal written as it is (``NaN``, a 5000-digit number) rather than as a string."""


def to_json(value: Any) -> str:
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


PLACES = {
    "cluster": lambda v: {"cluster": v},
    "cluster.workers": lambda v: {"cluster": {"workers": v}},
    "network.mtu": lambda v: {"network": {"mtu": v}},
    "cache": lambda v: {"cache": v},
    "cache.hostPortStart": lambda v: {"cache": {"hostPortStart": v}},
    "cache.mirrors": lambda v: {"cache": {"mirrors": v}},
    "warmup.parallel": lambda v: {"warmup": {"parallel": v}},
    "addons.cilium.values": lambda v: {"addons": {"cilium": {"values": v}}},
    "addons.metallb.values.deep": lambda v: {"addons": {"metallb": {"values": {"deep": {"deeper": v}}}}},
    "credentials": lambda v: {"credentials": v},
    "docker": lambda v: {"docker": v},
    "certsDir": lambda v: {"certsDir": v},
    "localRegistry": lambda v: {"localRegistry": v},
    "localRegistry.port": lambda v: {"localRegistry": {"enabled": True, "port": v}},
}


@pytest.mark.parametrize("place", sorted(PLACES))
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON, depth=st.sampled_from([0, 0, 0, MAX_DEPTH + 1, 3000]))
def test_any_value_anywhere_is_read_or_refused_never_a_traceback(place, value, depth):
    (key, wrapped), = PLACES[place](value).items()
    text = to_json(wrapped)
    if depth:
        text = to_json(PLACES[place](_Raw(deep(depth)))[key])
    try:
        load({key: text}, secret=("credentials",) if key == "credentials" else ())
    except pulumi.RunError as error:
        assert "Traceback" not in str(error)
        assert f"kind-registry-cache:{key}" in str(error) or "kind-registry-cache:" in str(error)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param(deep(5000), "nested more than", id="deep-list"),
        pytest.param('{"values": ' + deep(MAX_DEPTH + 2, "{}") + "}", "nested more than", id="deep-just-over"),
        pytest.param('{"x": ' + "9" * 5000 + "}", "a number of 5000 digits", id="5000-digits"),
        pytest.param('{"x": 1e400}', "Pulumi cannot pass on unchanged", id="float-overflow"),
        pytest.param('{"x": NaN}', "'NaN'", id="nan"),
        pytest.param('{"x": %d}' % (MAX_SAFE_INTEGER + 1), "a number of 16 digits", id="past-2^53"),
    ],
)
def test_the_issues_values_are_refused_with_their_path(text, says):
    value, problems = loads(text)
    assert value is None or problems
    assert problems and says in problems[0][1], problems


def test_a_huge_number_in_helm_values_fails_preview_before_any_resource():
    """It used to pass validation and fail converting to a float while the Helm release was registered."""
    with pytest.raises(pulumi.RunError) as error:
        run_program("dev", overrides={"addons": '{"cilium": {"values": {"replicas": ' + "1" * 400 + "}}}"})
    assert "kind-registry-cache:addons.cilium.values.replicas: is a number of 400 digits" in str(error.value)


def test_a_long_digit_string_for_a_count_is_described_not_converted():
    with pytest.raises(SettingsError) as error:
        settings.parse(project=PROJECT, stack="dev", home=HOME, cluster={"workers": "9" * 5000})
    (problem,) = error.value.problems
    assert "a number of 5000 digits" in problem and len(problem) < 300


def test_a_very_long_value_is_cut_in_the_message():
    with pytest.raises(SettingsError) as error:
        settings.parse(project=PROJECT, stack="dev", home=HOME, cluster={"name": "x" * 100_000})
    assert len(str(error.value)) < 1000 and "(100000 characters)" in str(error.value)


# --- late failures now refused in preview ---------------------------------------------------------------------------


def problems(**raw: Any) -> list[str]:
    with pytest.raises(SettingsError) as error:
        settings.parse(project=PROJECT, stack="dev", home=HOME, **raw)
    return error.value.problems


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        pytest.param({"warmup": {"images": ["ghcr.io/acme/" + "a" * 251 + ":1"]}}, "warmup.images[0]", id="warmup-image"),
        pytest.param({"cache": {"image": "example.com/" + "r" * 256 + ":3"}}, "cache.image", id="cache-image"),
        pytest.param({"cluster": {"nodeImage": "kindest/" + "n" * 250 + ":v1"}}, "cluster.nodeImage", id="node-image"),
    ],
)
def test_repositories_over_distributions_limit_are_refused(raw, key):
    found = [p for p in problems(**raw) if p.startswith(f"kind-registry-cache:{key}: ")]
    assert found and "at most 255" in found[0], problems(**raw)


def test_a_repository_of_exactly_255_characters_is_fine():
    settings.parse(project=PROJECT, stack="dev", home=HOME, warmup={"images": ["ghcr.io/" + "a" * 255 + ":1"]})


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        pytest.param({"cache": {"mirrors": {"123.456": "https://r.example"}}}, "cache.mirrors.123.456", id="mirror-key"),
        pytest.param({"cache": {"mirrors": {"docker.io": "https://1.2.3"}}}, "cache.mirrors.docker.io", id="remote"),
        pytest.param({"cache": {"mirrors": {"quay.io": {"shared": "http://10.20:5000"}}}}, "cache.mirrors.quay.io.shared", id="shared"),
        pytest.param({"docker": {"host": "tcp://12.34:2376"}}, "docker.host", id="docker-host"),
    ],
)
def test_hosts_go_cannot_resolve_are_refused(raw, key):
    found = [p for p in problems(**raw) if p.startswith(f"kind-registry-cache:{key}: ")]
    assert found and "Go's resolver" in found[0], problems(**raw)


def test_an_ip_address_is_still_a_host():
    settings.parse(project=PROJECT, stack="dev", home=HOME, cache={"mirrors": {"docker.io": "http://10.0.0.5:5000"}})


def test_a_unix_socket_path_too_long_to_connect_is_refused():
    (problem,) = problems(docker={"host": "unix:///" + "s" * 120 + "/docker.sock"})
    assert problem.startswith("kind-registry-cache:docker.host: ") and "at most 107" in problem


def test_two_spellings_of_one_credentials_host_are_refused():
    found = problems(credentials={"docker.io": {"username": "a", "password": "b"}, "Docker.IO.": {"username": "c", "password": "d"}})
    (problem,) = found
    assert problem.startswith("kind-registry-cache:credentials.Docker.IO.: names the same upstream as credentials.docker.io")
    assert "pulumi config rm --path 'kind-registry-cache:credentials[\"Docker.IO.\"]'" in problem
    assert "'b'" not in problem and "'d'" not in problem  # no password shown


def test_use_stack_naming_this_stack_is_refused():
    (problem,) = problems(cache={"useStack": "dev"})
    assert problem.startswith("kind-registry-cache:cache.useStack: names this stack")


def test_a_certs_folder_that_is_the_clusters_record_is_refused():
    (problem,) = problems(certs_dir="~/.kind-registry-cache/dev/kind-dev.generation")
    assert problem.startswith("kind-registry-cache:certsDir: ") and "the cluster's record" in problem


def test_every_top_level_key_is_covered():
    assert {p.split(".")[0] for p in PLACES} == set(TOP_KEYS)
