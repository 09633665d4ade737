"""The containerd config merge the test node applies (kind's containerdConfigPatches semantics)."""
from __future__ import annotations

import tomllib

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .node import merge_patch, patch_containerd_config

pytestmark = pytest.mark.integration

BASE = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.10"\n'
CONFIG_PATH_PATCH = '[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "/etc/containerd/certs.d"\n'

BASE_OUT = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "registry.k8s.io/pause:3.10"\n'
WITH_CONFIG_PATH = BASE_OUT + '\n[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "/etc/containerd/certs.d"\n'


# RFC 7386 Appendix A, every example.
@pytest.mark.parametrize(("target", "patch", "expected"), [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_follows_rfc7386(target, patch, expected):
    assert merge_patch(target, patch) == expected


def test_merge_patch_leaves_its_arguments_alone():
    target, patch = {"a": {"b": 1}}, {"a": {"c": 2}}
    merge_patch(target, patch)
    assert target == {"a": {"b": 1}} and patch == {"a": {"c": 2}}


@pytest.mark.parametrize(("patches", "expected"), [
    pytest.param([], BASE_OUT, id="no-patch"),
    pytest.param([CONFIG_PATH_PATCH], WITH_CONFIG_PATH, id="config-path"),
    pytest.param(["version = 1\n" + CONFIG_PATH_PATCH], BASE_OUT, id="other-version-skipped"),
    pytest.param(["version = 2\n" + CONFIG_PATH_PATCH], WITH_CONFIG_PATH, id="same-version-applied"),
    pytest.param(["version = 3\n" + CONFIG_PATH_PATCH, CONFIG_PATH_PATCH], WITH_CONFIG_PATH,
                 id="skipped-patch-does-not-stop-the-next"),
    pytest.param([CONFIG_PATH_PATCH.replace("/etc/containerd/certs.d", "/old"), CONFIG_PATH_PATCH], WITH_CONFIG_PATH,
                 id="later-patch-wins"),
    pytest.param(['[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "pause:new"\n'],
                 BASE_OUT.replace("registry.k8s.io/pause:3.10", "pause:new"), id="sibling-keys-kept"),
])
def test_patch_containerd_config(patches, expected):
    assert patch_containerd_config(BASE, patches) == expected


def test_patch_containerd_config_needs_a_versioned_base():
    with pytest.raises(ValueError, match="version"):
        patch_containerd_config('[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "x"\n', [CONFIG_PATH_PATCH])


def test_patch_containerd_config_rejects_bad_toml():
    with pytest.raises(tomllib.TOMLDecodeError):
        patch_containerd_config(BASE, ["[plugins\n"])


_keys = st.sampled_from(["a", "b", "plugins", "io.containerd.grpc.v1.cri", "registry", "config_path"])
_leaves = st.one_of(st.integers(-5, 5), st.booleans(), st.text(max_size=5), st.lists(st.integers(0, 3), max_size=3))
_tables = st.recursive(st.dictionaries(_keys, _leaves, max_size=3),
                       lambda inner: st.dictionaries(_keys, st.one_of(_leaves, inner), max_size=3), max_leaves=12)


# Generating nested tables is slow on a loaded 2-core machine (the tier runs dockerd and containers beside it).
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(base=_tables, patch=_tables)
def test_patch_is_idempotent_and_its_values_win(base, patch):
    base_text = tomli_w.dumps({**base, "version": 2})
    patch_text = tomli_w.dumps({k: v for k, v in patch.items() if k != "version"})
    once = patch_containerd_config(base_text, [patch_text])
    assert patch_containerd_config(once, [patch_text]) == once
    merged = tomllib.loads(once)

    def contains(whole, part):
        return all(contains(whole[k], v) if isinstance(v, dict) else whole[k] == v for k, v in part.items())

    assert contains(merged, tomllib.loads(patch_text))
