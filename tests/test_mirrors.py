"""hosts.toml files, the containerd patch, and the script that writes the certs folder."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krc import config as settings
from krc.render import mirrors
from krc.render.mirrors import HostsEntry


def test_containerd_patch_exact_text():
    assert mirrors.containerd_patch() == (
        '[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "/etc/containerd/certs.d"\n'
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            HostsEntry("docker.io", "https://registry-1.docker.io", "http://kcr-dev-docker-io:5000"),
            'server = "https://registry-1.docker.io"\n\n'
            '[host."http://kcr-dev-docker-io:5000"]\n'
            'capabilities = [\n    "pull",\n    "resolve",\n]\n',
            id="docker-hub",
        ),
        pytest.param(
            HostsEntry("k8s.gcr.io", "https://registry.k8s.io", "http://kcr-dev-k8s-gcr-io:5000"),
            'server = "https://registry.k8s.io"\n\n'
            '[host."http://kcr-dev-k8s-gcr-io:5000"]\n'
            'capabilities = [\n    "pull",\n    "resolve",\n]\n',
            id="frozen-k8s-gcr-served-from-registry-k8s",
        ),
        pytest.param(
            HostsEntry("docker.io", "https://registry-1.docker.io", "http://cache.team.example:5000"),
            'server = "https://registry-1.docker.io"\n\n'
            '[host."http://cache.team.example:5000"]\n'
            'capabilities = [\n    "pull",\n    "resolve",\n]\n',
            id="shared-cache-at-the-root",
        ),
        pytest.param(
            HostsEntry("docker.io", "https://registry-1.docker.io", "https://harbor.example/v2/dockerhub", override_path=True),
            'server = "https://registry-1.docker.io"\n\n'
            '[host."https://harbor.example/v2/dockerhub"]\n'
            'capabilities = [\n    "pull",\n    "resolve",\n]\n'
            "override_path = true\n",
            id="shared-cache-under-a-path",
        ),
    ],
)
def test_hosts_toml_exact_text(entry, expected):
    assert mirrors.hosts_toml(entry) == expected


def test_one_file_per_default_upstream_through_its_own_cache():
    cache = settings.parse(project="p", stack="dev", home="/h").cache
    files = mirrors.hosts_files(mirrors.entries(cache))
    assert sorted(files) == sorted(f"{h}/hosts.toml" for h in settings.DEFAULT_MIRRORS)
    for host, remote in settings.DEFAULT_MIRRORS.items():
        data = tomllib.loads(files[f"{host}/hosts.toml"])
        assert data["server"] == remote
        slug = host.replace(".", "-")
        assert data["host"] == {f"http://kcr-dev-{slug}:5000": {"capabilities": ["pull", "resolve"]}}


@pytest.mark.parametrize(
    ("mirrors_config", "expected"),
    [
        pytest.param(
            {"quay.io": {"shared": "http://cache.team.example:5000"}},
            HostsEntry("quay.io", "https://quay.io", "http://cache.team.example:5000"),
            id="shared-root",
        ),
        pytest.param(
            {"quay.io": {"shared": "https://harbor.example/v2/quay/", "remote": "https://quay.example"}},
            HostsEntry("quay.io", "https://quay.example", "https://harbor.example/v2/quay", override_path=True),
            id="shared-path",
        ),
        pytest.param(
            {"quay.io": {"remote": "https://quay.example"}},
            HostsEntry("quay.io", "https://quay.example", "http://kcr-dev-quay-io:5000"),
            id="local-object",
        ),
    ],
)
def test_entries_of_local_and_shared_mirrors(mirrors_config, expected):
    cache = settings.parse(project="p", stack="dev", home="/h", cache={"mirrors": mirrors_config}).cache
    by_host = {e.host: e for e in mirrors.entries(cache)}
    assert by_host["quay.io"] == expected
    # The other upstreams keep their local caches.
    assert by_host["ghcr.io"] == HostsEntry("ghcr.io", "https://ghcr.io", "http://kcr-dev-ghcr-io:5000")


def test_use_stack_entries_point_at_the_other_stacks_containers():
    cache = settings.parse(project="p", stack="ci", home="/h", cache={"useStack": "dev"}).cache
    assert {e.mirror for e in mirrors.entries(cache)} == {
        f"http://kcr-dev-{h.replace('.', '-')}:5000" for h in settings.DEFAULT_MIRRORS
    }
    assert not any(e.override_path for e in mirrors.entries(cache))


hosts = st.from_regex(r"[a-z]([a-z0-9-]{0,9}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,9}[a-z0-9])?){0,2}(:[1-9][0-9]{2,3})?", fullmatch=True)


@given(host=hosts, remote_host=hosts, container=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))
def test_every_hosts_toml_parses_and_names_mirror_and_server(host, remote_host, container):
    entry = HostsEntry(host, f"https://{remote_host}", mirrors.mirror_url(container))
    data = tomllib.loads(mirrors.hosts_toml(entry))
    assert data["server"] == f"https://{remote_host}"
    assert list(data["host"]) == [f"http://{container}:5000"]
    assert data["host"][f"http://{container}:5000"]["capabilities"] == ["pull", "resolve"]


@given(
    host=hosts,
    path=st.lists(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True), max_size=3),
    trailing=st.booleans(),
)
def test_a_shared_url_gets_override_path_exactly_when_it_has_a_path(host, path, trailing):
    url = f"https://{host}" + "".join(f"/{p}" for p in path) + ("/" if trailing else "")
    cache = settings.parse(project="p", stack="dev", home="/h", cache={"mirrors": {"docker.io": {"shared": url}}}).cache
    (entry,) = [e for e in mirrors.entries(cache) if e.host == "docker.io"]
    data = tomllib.loads(mirrors.hosts_toml(entry))
    (mirror,) = data["host"]
    assert mirror == url.rstrip("/")
    assert data["host"][mirror].get("override_path", False) is bool(path)
