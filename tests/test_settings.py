"""Stack settings: defaults, merging, and one clear error per invalid value."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krc import config as settings
from krc.config import SettingsError
from krc import versions


def parse(**raw):
    return settings.parse(project="kind-registry-cache", stack="dev", home="/home/dev", **raw)


def problems_of(**raw) -> list[str]:
    with pytest.raises(SettingsError) as info:
        parse(**raw)
    return info.value.problems


def test_defaults_follow_the_issue():
    s = parse()
    assert s.cluster.name == "dev"
    assert (s.cluster.control_planes, s.cluster.workers) == (1, 0)
    assert s.cluster.node_image == versions.NODE_IMAGE
    assert [(p.container_port, p.host_port, p.listen_address) for p in s.cluster.port_mappings] == [
        (80, 80, "127.0.0.1"),
        (443, 443, "127.0.0.1"),
    ]
    assert (s.network.name, str(s.network.subnet), s.network.mtu) == ("kind", "172.30.0.0/16", 1500)
    assert str(s.network.gateway) == "172.30.0.1"
    assert s.cache.image == "registry:3"
    assert s.cache.ttl == "0"
    assert {m.host: m.remote for m in s.cache.mirrors} == {
        "docker.io": "https://registry-1.docker.io",
        "quay.io": "https://quay.io",
        "ghcr.io": "https://ghcr.io",
        "registry.k8s.io": "https://registry.k8s.io",
        "gcr.io": "https://gcr.io",
        "k8s.gcr.io": "https://registry.k8s.io",
    }
    assert s.certs_dir == "/home/dev/.kind-registry-cache/dev/certs.d"
    assert s.docker.host is None


def test_adding_an_upstream_is_one_line_and_keeps_the_defaults():
    s = parse(cache={"mirrors": {"registry.example.com:5000": "https://registry.example.com:5000"}})
    hosts = [m.host for m in s.cache.mirrors]
    assert hosts[-1] == "registry.example.com:5000"
    assert len(hosts) == 7


def test_null_removes_a_default_upstream():
    s = parse(cache={"mirrors": {"gcr.io": None, "k8s.gcr.io": False}})
    assert "gcr.io" not in [m.host for m in s.cache.mirrors]
    assert "k8s.gcr.io" not in [m.host for m in s.cache.mirrors]


def test_names_derive_from_the_stack_so_stacks_do_not_collide():
    dev = parse()
    ci = settings.parse(project="kind-registry-cache", stack="ci", home="/h")
    docker_io = dev.cache.mirrors[0]
    assert dev.cache.container_name(docker_io) == "kcr-dev-docker-io"
    assert ci.cache.container_name(ci.cache.mirrors[0]) == "kcr-ci-docker-io"
    assert dev.cache.volume_name(docker_io) != ci.cache.volume_name(ci.cache.mirrors[0])


def test_host_ports_are_consecutive_when_publishing_is_on():
    s = parse(cache={"hostPortStart": 5100})
    assert [s.cache.host_port(m) for m in s.cache.mirrors] == [5100, 5101, 5102, 5103, 5104, 5105]
    assert parse().cache.host_port(parse().cache.mirrors[0]) is None


def test_numbers_set_on_the_cli_arrive_as_text_and_are_accepted():
    s = parse(cluster={"controlPlanes": "3", "workers": "2"})
    assert (s.cluster.control_planes, s.cluster.workers) == (3, 2)


def test_credentials_mark_only_their_mirror():
    s = parse(credentials={"docker.io": {"username": "u", "password": "p"}})
    assert {m.host: m.has_credentials for m in s.cache.mirrors}["docker.io"] is True
    assert sum(m.has_credentials for m in s.cache.mirrors) == 1
    assert settings.credentials_for({"Docker.IO": {"username": "u", "password": "p"}}, "docker.io") == ("u", "p")


def test_tilde_in_certs_dir_expands_to_home():
    assert parse(certs_dir="~/kind/certs").certs_dir == "/home/dev/kind/certs"


@pytest.mark.parametrize(
    ("raw", "key", "says"),
    [
        pytest.param({"network": {"subnet": "not-a-cidr"}}, "network.subnet", "CIDR", id="subnet-not-cidr"),
        pytest.param({"network": {"subnet": "172.30.0.1/16"}}, "network.subnet", "did you mean 172.30.0.0/16", id="subnet-host-bits"),
        pytest.param({"network": {"subnet": "172.30.0.0/28"}}, "network.subnet", "/8 to /24", id="subnet-too-small"),
        pytest.param({"network": {"subnet": "8.8.0.0/16"}}, "network.subnet", "private", id="subnet-public"),
        pytest.param({"network": {"mtu": 100}}, "network.mtu", "1280 to 9000", id="mtu-too-small"),
        pytest.param({"network": {"name": "bad name"}}, "network.name", "docker network name", id="network-name"),
        pytest.param({"cluster": {"controlPlanes": 0}}, "cluster.controlPlanes", "from 1 to 9", id="zero-control-planes"),
        pytest.param({"cluster": {"workers": -1}}, "cluster.workers", "from 0 to 64", id="negative-workers"),
        pytest.param({"cluster": {"workers": True}}, "cluster.workers", "integer", id="workers-bool"),
        pytest.param({"cluster": {"name": "Dev_Cluster"}}, "cluster.name", "a-z, 0-9", id="cluster-name"),
        pytest.param({"cluster": {"nodeImage": "bad image"}}, "cluster.nodeImage", "kindest/node", id="node-image"),
        pytest.param(
            {"cluster": {"portMappings": [{"containerPort": 80, "hostPort": 70000}]}},
            "cluster.portMappings[0].hostPort",
            "from 1 to 65535",
            id="port-out-of-range",
        ),
        pytest.param(
            {"cluster": {"portMappings": [{"containerPort": 80, "protocol": "HTTP"}]}},
            "cluster.portMappings[0].protocol",
            "TCP, UDP, SCTP",
            id="port-protocol",
        ),
        pytest.param(
            {"cluster": {"portMappings": [{"containerPort": 80, "listenAddress": "localhost"}]}},
            "cluster.portMappings[0].listenAddress",
            "IP address",
            id="port-listen-address",
        ),
        pytest.param(
            {"cluster": {"portMappings": [{"containerPort": 80}, {"containerPort": 8080, "hostPort": 80}]}},
            "cluster.portMappings[1].hostPort",
            "already used by cluster.portMappings[0]",
            id="port-twice",
        ),
        # kind v0.32.0 validatePortMappings (pkg/internal/apis/config/validate.go:144-207) refuses these too.
        pytest.param(
            {"cluster": {"portMappings": [{"containerPort": 80, "listenAddress": "0.0.0.0"}, {"containerPort": 81, "hostPort": 80}]}},
            "cluster.portMappings[1].hostPort",
            "cannot be bound together with cluster.portMappings[0]",
            id="port-wildcard-then-address",
        ),
        pytest.param(
            {"cluster": {"portMappings": [{"containerPort": 80, "listenAddress": "::1"}, {"containerPort": 81, "hostPort": 80, "listenAddress": "::"}]}},
            "cluster.portMappings[1].hostPort",
            "cannot be bound together with cluster.portMappings[0]",
            id="port-address-then-ipv6-wildcard",
        ),
        pytest.param({"cluster": {"wrkers": 1}}, "cluster.wrkers", "did you mean 'workers'", id="unknown-cluster-key"),
        pytest.param({"network": {"cidr": "10.0.0.0/16"}}, "network.cidr", "unknown key", id="unknown-network-key"),
        pytest.param({"cache": {"mirror": {}}}, "cache.mirror", "did you mean 'mirrors'", id="unknown-cache-key"),
        pytest.param({"cluster": []}, "cluster", "must be an object", id="cluster-not-object"),
        pytest.param({"cache": {"mirrors": {"quay.io": "ftp://quay.io"}}}, "cache.mirrors.quay.io", "http(s) URL", id="mirror-not-http"),
        pytest.param({"cache": {"mirrors": {"quay.io": "quay.io"}}}, "cache.mirrors.quay.io", "http(s) URL", id="mirror-no-scheme"),
        pytest.param(
            {"cache": {"mirrors": {"quay.io": "https://harbor.example/v2/quay"}}},
            "cache.mirrors.quay.io",
            "without a path",
            id="mirror-with-path",
        ),
        pytest.param(
            {"cache": {"mirrors": {"quay.io": "https://u:p@quay.io"}}},
            "cache.mirrors.quay.io",
            "--secret",
            id="mirror-with-credentials",
        ),
        pytest.param(
            {"cache": {"mirrors": {"Quay.io": "https://quay.io", "quay.io": "https://quay.io"}}},
            "cache.mirrors.quay.io",
            "same upstream as cache.mirrors.Quay.io",
            id="two-mirrors-one-host",
        ),
        pytest.param({"cache": {"mirrors": {"no spaces": "https://x.io"}}}, "cache.mirrors.no spaces", "registry host", id="mirror-host"),
        pytest.param(
            {"cache": {"mirrors": {h: None for h in settings.DEFAULT_MIRRORS}}},
            "cache.mirrors",
            "at least one",
            id="no-mirrors-left",
        ),
        pytest.param({"cache": {"ttl": "a week"}}, "cache.ttl", "Go duration", id="ttl"),
        pytest.param({"cache": {"hostPortStart": 80}}, "cache.hostPortStart", "from 1024", id="host-port-privileged"),
        pytest.param({"cache": {"hostPortStart": 65534}}, "cache.hostPortStart", "from 0 to", id="host-port-overflow"),
        pytest.param({"credentials": {"nope.io": {"username": "u", "password": "p"}}}, "credentials.nope.io", "no configured mirror", id="credentials-unknown-host"),
        pytest.param({"credentials": {"docker.io": {"username": "u"}}}, "credentials.docker.io", "needs a non-empty password", id="credentials-no-password"),
        pytest.param({"credentials": {"docker.io": {"user": "u", "username": "u", "password": "p"}}}, "credentials.docker.io.user", "did you mean 'username'", id="credentials-unknown-key"),
        pytest.param({"docker": {"host": "localhost:2375"}}, "docker.host", "tcp://", id="docker-host"),
        pytest.param({"certs_dir": "relative/dir"}, "certsDir", "absolute", id="certs-dir-relative"),
    ],
)
def test_invalid_value_is_named_with_what_is_allowed(raw, key, says):
    problems = problems_of(**raw)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"kind-registry-cache:{key}: "), problems[0]
    assert says in problems[0], problems[0]


def test_every_problem_is_reported_at_once_with_the_fix():
    with pytest.raises(SettingsError) as info:
        parse(cluster={"controlPlanes": 0, "workers": -2}, network={"subnet": "x"})
    message = str(info.value)
    assert "3 problems" in message
    assert "pulumi config set --path kind-registry-cache:<key>" in message
    assert "nothing was created" in message


def test_stack_name_that_is_no_valid_cluster_name_asks_for_cluster_name():
    with pytest.raises(SettingsError) as info:
        settings.parse(project="kind-registry-cache", stack="My_Stack", home="/h")
    assert any("set cluster.name" in p for p in info.value.problems)


@given(
    control_planes=st.integers(min_value=1, max_value=9),
    workers=st.integers(min_value=0, max_value=64),
    octet=st.integers(min_value=16, max_value=31),
    prefix=st.integers(min_value=12, max_value=24),
)
def test_valid_topologies_and_subnets_round_trip(control_planes, workers, octet, prefix):
    subnet = ipaddress.IPv4Network(f"172.{octet}.0.0/{prefix}", strict=False)
    s = parse(cluster={"controlPlanes": control_planes, "workers": workers}, network={"subnet": str(subnet)})
    assert (s.cluster.control_planes, s.cluster.workers) == (control_planes, workers)
    assert s.network.subnet == subnet
    assert s.network.gateway in subnet


@given(st.integers().filter(lambda n: not 1 <= n <= 9))
def test_out_of_range_control_planes_are_always_rejected(n):
    assert problems_of(cluster={"controlPlanes": n})[0].startswith("kind-registry-cache:cluster.controlPlanes")


# --- shared mirrors, another stack's caches, warm-up ------------------------------------------------


def mirror_of(s: settings.Settings, host: str) -> settings.Mirror:
    return next(m for m in s.cache.mirrors if m.host == host)


@pytest.mark.parametrize(
    ("value", "remote", "shared"),
    [
        pytest.param("https://quay.example", "https://quay.example", None, id="string-is-a-local-remote"),
        pytest.param({"remote": "https://quay.example/"}, "https://quay.example", None, id="object-local"),
        pytest.param(
            {"shared": "http://cache.team.example:5000"}, "https://quay.io", "http://cache.team.example:5000",
            id="shared-remote-defaults-to-the-builtin",
        ),
        pytest.param(
            {"shared": "https://harbor.example/v2/quay/", "remote": "https://quay.example"},
            "https://quay.example",
            "https://harbor.example/v2/quay",
            id="shared-with-path-and-remote",
        ),
    ],
)
def test_mirror_value_forms(value, remote, shared):
    m = mirror_of(parse(cache={"mirrors": {"quay.io": value}}), "quay.io")
    assert (m.remote, m.shared, m.is_local) == (remote, shared, shared is None)


def test_shared_mirror_of_an_unknown_host_falls_back_to_https_of_the_host():
    m = mirror_of(parse(cache={"mirrors": {"registry.example.com": {"shared": "http://team:5000"}}}), "registry.example.com")
    assert m.remote == "https://registry.example.com"


def test_local_and_shared_mirrors_mix_and_only_local_ones_get_names_and_ports():
    s = parse(cache={"hostPortStart": 5100, "mirrors": {"quay.io": {"shared": "http://team:5000"}}})
    assert [m.host for m in s.cache.local_mirrors] == ["docker.io", "ghcr.io", "registry.k8s.io", "gcr.io", "k8s.gcr.io"]
    assert [s.cache.host_port(m) for m in s.cache.mirrors] == [5100, None, 5101, 5102, 5103, 5104]


def test_use_stack_points_every_mirror_at_that_stacks_containers():
    s = settings.parse(project="kind-registry-cache", stack="ci", home="/h", cache={"useStack": "dev"})
    assert s.cache.use_stack == "dev"
    assert s.cache.local_mirrors == ()
    docker_io = mirror_of(s, "docker.io")
    assert docker_io.shared == "http://kcr-dev-docker-io:5000"
    assert docker_io.shared_container == "kcr-dev-docker-io"
    assert docker_io.remote == "https://registry-1.docker.io"


def test_use_stack_keeps_an_explicit_shared_mirror():
    s = settings.parse(
        project="kind-registry-cache", stack="ci", home="/h",
        cache={"useStack": "dev", "mirrors": {"quay.io": {"shared": "https://harbor.example/v2/quay"}}},
    )
    assert mirror_of(s, "quay.io").shared == "https://harbor.example/v2/quay"
    assert mirror_of(s, "quay.io").shared_container is None


def test_warmup_defaults():
    w = parse().warmup
    assert (w.enabled, w.images, w.replace, w.parallel, w.platform) == (True, (), False, 4, None)


def test_warmup_images_keep_their_order_without_duplicates():
    w = parse(warmup={"images": ["ghcr.io/acme/api:1.2", "nginx:1.27", "ghcr.io/acme/api:1.2"], "parallel": "8"}).warmup
    assert w.images == ("ghcr.io/acme/api:1.2", "nginx:1.27")
    assert w.parallel == 8


@pytest.mark.parametrize(
    ("raw", "key", "says"),
    [
        pytest.param({"cache": {"mirrors": {"quay.io": {"shared": "ftp://team"}}}}, "cache.mirrors.quay.io.shared", "http(s) URL", id="shared-not-http"),
        pytest.param({"cache": {"mirrors": {"quay.io": {"shared": "http://u:p@team"}}}}, "cache.mirrors.quay.io.shared", "credentials", id="shared-with-login"),
        pytest.param({"cache": {"mirrors": {"quay.io": {"shared": "http://team", "remote": "https://x/v2"}}}}, "cache.mirrors.quay.io.remote", "without a path", id="shared-remote-with-path"),
        pytest.param({"cache": {"mirrors": {"quay.io": {"shraed": "http://team"}}}}, "cache.mirrors.quay.io.shraed", "did you mean 'shared'", id="mirror-object-typo"),
        pytest.param({"cache": {"mirrors": {"quay.io": {}}}}, "cache.mirrors.quay.io", "needs remote", id="mirror-object-empty"),
        pytest.param({"cache": {"mirrors": {"quay.io": 5000}}}, "cache.mirrors.quay.io", "{shared: URL", id="mirror-number"),
        pytest.param({"cache": {"useStack": "dev"}}, "cache.useStack", "names this stack", id="use-own-stack"),
        pytest.param({"cache": {"useStack": "dev stack"}}, "cache.useStack", "another stack", id="use-stack-name"),
        pytest.param(
            {"cache": {"mirrors": {"docker.io": {"shared": "http://team:5000"}}}, "credentials": {"docker.io": {"username": "u", "password": "p"}}},
            "credentials.docker.io", "shared cache http://team:5000", id="credentials-for-shared",
        ),
        pytest.param({"warmup": {"images": "nginx:1"}}, "warmup.images", "list", id="warmup-images-not-list"),
        pytest.param({"warmup": {"images": ["Nginx:1"]}}, "warmup.images[0]", "lowercase", id="warmup-image-uppercase"),
        pytest.param({"warmup": {"images": ["ghcr.io/acme/api"]}}, "warmup.images[0]", "no tag or digest", id="warmup-image-unpinned"),
        pytest.param({"warmup": {"parallel": 0}}, "warmup.parallel", "from 1 to 32", id="warmup-parallel"),
        pytest.param({"warmup": {"enabled": "yes"}}, "warmup.enabled", "true or false", id="warmup-enabled"),
        pytest.param({"warmup": {"platform": "amd64"}}, "warmup.platform", "os/arch", id="warmup-platform"),
        pytest.param({"warmup": {"image": []}}, "warmup.image", "did you mean 'images'", id="warmup-typo"),
    ],
)
def test_invalid_cache_sharing_and_warmup_values_are_named(raw, key, says):
    problems = problems_of(**raw)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"kind-registry-cache:{key}: "), problems[0]
    assert says in problems[0], problems[0]
