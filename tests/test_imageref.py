"""Image references split as containerd splits them: host, repository, tag, digest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krc.config.imageref import ImageRef, ReferenceError, parse_reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("nginx", ImageRef("docker.io", "library/nginx"), id="hub-short-name"),
        pytest.param("nginx:1.27", ImageRef("docker.io", "library/nginx", "1.27"), id="hub-short-name-tag"),
        pytest.param("bitnami/redis:7", ImageRef("docker.io", "bitnami/redis", "7"), id="hub-user-repo"),
        pytest.param("docker.io/nginx:1", ImageRef("docker.io", "library/nginx", "1"), id="hub-explicit"),
        pytest.param("index.docker.io/library/nginx:1", ImageRef("docker.io", "library/nginx", "1"), id="hub-index-alias"),
        pytest.param("quay.io/cilium/cilium:v1.20.0", ImageRef("quay.io", "cilium/cilium", "v1.20.0"), id="quay"),
        pytest.param(
            "registry.k8s.io/ingress-nginx/controller:v1.15.1@" + DIGEST,
            ImageRef("registry.k8s.io", "ingress-nginx/controller", "v1.15.1", DIGEST),
            id="tag-and-digest",
        ),
        pytest.param(f"ghcr.io/acme/api@{DIGEST}", ImageRef("ghcr.io", "acme/api", None, DIGEST), id="digest-only"),
        pytest.param("localhost:5000/app:dev", ImageRef("localhost:5000", "app", "dev"), id="host-with-port"),
        pytest.param("localhost/app", ImageRef("localhost", "app"), id="localhost"),
        pytest.param("Registry.Example.com/team/app:1", ImageRef("registry.example.com", "team/app", "1"), id="host-lowercased"),
    ],
)
def test_parse_reference(text, expected):
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("", "not an image reference", id="empty"),
        pytest.param(" nginx", "not an image reference", id="whitespace"),
        pytest.param("Nginx:1", "lowercase", id="uppercase-repo"),
        pytest.param("nginx:-1", "not a valid tag", id="bad-tag"),
        pytest.param("nginx@sha256:abc", "64 hex", id="short-digest"),
        pytest.param("quay.io//x:1", "component", id="empty-component"),
    ],
)
def test_invalid_references_say_why(text, says):
    with pytest.raises(ReferenceError, match=says):
        parse_reference(text)


def test_reference_prefers_the_digest_and_defaults_to_latest():
    assert parse_reference(f"nginx:1@{DIGEST}").reference == DIGEST
    assert parse_reference("nginx:1").reference == "1"
    assert parse_reference("nginx").reference == "latest"
    assert not parse_reference("nginx").pinned


components = st.from_regex(r"[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?", fullmatch=True)
registries = st.from_regex(r"[a-z][a-z0-9]{0,8}\.(io|com|example)(:[1-9][0-9]{3})?", fullmatch=True)


@given(
    host=registries,
    path=st.lists(components, min_size=1, max_size=3),
    tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}", fullmatch=True)),
)
def test_a_reference_round_trips_through_its_text(host, path, tag):
    text = f"{host}/{'/'.join(path)}" + (f":{tag}" if tag else "")
    ref = parse_reference(text)
    assert (ref.host, ref.repository, ref.tag) == (host, "/".join(path), tag)
    assert parse_reference(str(ref)) == ref
