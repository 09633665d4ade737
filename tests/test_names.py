"""Class 3 of issue #18: names that work — cache containers nodes can resolve, cluster and node names kubeadm takes,
and no name this stack takes that something else holds (kind's nodes, another stack's caches or cluster, Docker's
own networks)."""

from __future__ import annotations

import re

import pulumi
import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from harness import HEALTHY_PREFLIGHT, run_program
from krc import config as settings
from krc import preflight
from krc.config import SettingsError
from krc.config.cache import DNS_LABEL, dns_label
from krc.config.network import PREDEFINED_NETWORKS
from krc.render import mirrors

HOME = "/home/dev"
#: An RFC 1123 subdomain, as kubeadm checks a Node's name.
SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")

STACKS = st.from_regex(r"[A-Za-z0-9_.-]{1,100}", fullmatch=True)
LABELS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
HOSTS = st.lists(LABELS, min_size=2, max_size=12).map(".".join).filter(lambda h: len(h) <= 253 and any(c.isalpha() for c in h))


def parse(stack="dev", **raw):
    return settings.parse(project="kind-registry-cache", stack=stack, home=HOME, **raw)


@hsettings(max_examples=150, deadline=None)
@given(stack=STACKS, host=HOSTS, prefix=st.one_of(st.none(), st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}", fullmatch=True)))
def test_every_cache_container_name_is_a_dns_label_nodes_can_resolve(stack, host, prefix):
    cache = {"mirrors": {host: f"https://{host}"}} | ({"namePrefix": prefix} if prefix else {})
    try:
        s = parse(stack=stack, cache=cache, cluster={"name": "kind"})
    except SettingsError as error:
        if stack in (".", ".."):
            assert error.problems == [error.problems[0]] and error.problems[0].startswith(f"the stack name {stack!r} ")
            return
        # Only a clash with kind's own node names may refuse these (a prefix such as 'kind-control').
        assert all(p.startswith("kind-registry-cache:cache.namePrefix: ") for p in error.problems), error.problems
        return
    names = [s.cache.container_name(m) for m in s.cache.local_mirrors]
    assert all(DNS_LABEL.fullmatch(n) for n in names), names
    assert len(set(names)) == len(names)
    assert names == [s.cache.container_name(m) for m in parse(stack=stack, cache=cache, cluster={"name": "kind"}).cache.local_mirrors]
    for entry in mirrors.entries(s.cache):
        container = entry.mirror.removeprefix("http://").rsplit(":", 1)[0]
        assert DNS_LABEL.fullmatch(container) or entry.mirror.startswith("https://"), entry
    assert all(len(s.cache.volume_name(m)) <= 255 for m in s.cache.local_mirrors)


def test_a_valid_name_is_kept_and_a_long_one_shortened_deterministically():
    assert dns_label("kcr-dev-docker-io") == "kcr-dev-docker-io"
    long = "kcr-feature-" + "x" * 80 + "-docker-io"
    short = dns_label(long)
    assert len(short) <= 63 and DNS_LABEL.fullmatch(short) and short == dns_label(long)
    assert dns_label(long + "a") != short
    assert dns_label("kcr-Feature_X.1-quay-io").startswith("kcr-feature-x-1-quay-io-")


def test_a_ci_branch_as_stack_name_gets_working_cache_names():
    """The issue's example: a long stack name (a CI branch) used to give 80-character names nodes cannot resolve."""
    stack = "ci-renovate-update-dependency-kubernetes-sigs-kind-to-v0-33-0-with-extras"
    s = parse(stack=stack, cluster={"name": "ci"})
    for m in s.cache.local_mirrors:
        assert DNS_LABEL.fullmatch(s.cache.container_name(m))
        assert s.cache.volume_name(m) == f"kcr-{stack}-{m.slug}", "the volume keeps its name: the cache survives"


def test_an_ecr_host_gets_a_working_cache_name():
    host = "123456789012.dkr.ecr.eu-central-1.amazonaws.com"
    s = parse(stack="team-platform", cluster={"name": "team"}, cache={"mirrors": {host: f"https://{host}"}})
    mirror = next(m for m in s.cache.mirrors if m.host == host)
    assert len(f"kcr-team-platform-{mirror.slug}") > 63
    assert DNS_LABEL.fullmatch(s.cache.container_name(mirror))


@hsettings(max_examples=150, deadline=None)
@given(name=st.from_regex(r"[a-z0-9.-]{1,45}", fullmatch=True), control_planes=st.integers(1, 9), workers=st.integers(0, 64))
def test_accepted_cluster_names_give_node_names_kubeadm_accepts(name, control_planes, workers):
    try:
        s = parse(cluster={"name": name, "controlPlanes": control_planes, "workers": workers})
    except SettingsError as error:
        assert any(p.startswith("kind-registry-cache:cluster.name: ") for p in error.problems)
        return
    for node in s.cluster.container_names():
        assert SUBDOMAIN.fullmatch(node) and len(node.split(".")[-1]) <= 63 and len(node) <= 63, node


@pytest.mark.parametrize("name", ["a..b", "a.-b", "a-.b", ".a", "a.", "-a", "Dev", "x" * 41])
def test_cluster_names_kubeadm_would_refuse_are_refused(name):
    with pytest.raises(SettingsError):
        parse(cluster={"name": name})


def test_a_stack_name_that_is_no_cluster_name_gets_a_fix_that_works():
    with pytest.raises(SettingsError) as error:
        parse(stack="Feature_X")
    (problem,) = [p for p in error.value.problems if p.startswith("kind-registry-cache:cluster.name")]
    assert "`pulumi config set --path kind-registry-cache:cluster.name feature-x`" in problem
    parse(stack="Feature_X", cluster={"name": "feature-x"})


def test_a_cache_named_like_one_of_kinds_nodes_is_refused():
    with pytest.raises(SettingsError) as error:
        parse(cluster={"name": "dev", "workers": 1}, cache={"namePrefix": "dev", "mirrors": {"worker": "https://worker.example"}})
    assert any("a name kind gives a node" in p for p in error.value.problems)


@pytest.mark.parametrize("name", PREDEFINED_NETWORKS)
def test_dockers_predefined_networks_are_refused(name):
    with pytest.raises(SettingsError) as error:
        parse(network={"name": name})
    assert error.value.problems[0].startswith("kind-registry-cache:network.name: must not be one of Docker's predefined")


# --- names held on the engine (preview) ----------------------------------------------------------------------------


def report(*lines: str) -> preflight.Report:
    return preflight.parse("\n".join([HEALTHY_PREFLIGHT, *lines]))


def test_a_cache_name_held_by_another_stacks_container_is_refused_with_a_free_prefix():
    s = parse()
    found = preflight.conflicts(report("container=x|kcr-dev-docker-io|kind-registry-cache/other|"), s)
    (problem,) = found
    assert "a cache of stack kind-registry-cache/other" in problem
    assert "`pulumi config set --path kind-registry-cache:cache.namePrefix kcr-dev-2`" in problem


def test_a_volume_of_another_stack_or_of_no_one_is_never_adopted():
    s = parse()
    for label in ("kind-registry-cache/other", ""):
        (problem,) = preflight.conflicts(report(f"volume=kcr-dev-quay-io|{label}"), s)
        assert "the volume 'kcr-dev-quay-io'" in problem and "cache.namePrefix" in problem


def test_our_own_containers_and_volumes_are_ours():
    s = parse()
    lines = [f"container=id|kcr-dev-{slug}|kind-registry-cache/dev|" for slug in ("docker-io", "quay-io")]
    lines += ["volume=kcr-dev-docker-io|kind-registry-cache/dev", "cluster_record=g cp", "node=cp dev-control-plane",
              "container=cp|dev-control-plane||dev"]
    assert preflight.conflicts(report(*lines), s) == []


def test_a_container_named_like_a_node_but_not_of_the_cluster_is_refused():
    (problem,) = preflight.conflicts(report("container=x|dev-control-plane||"), parse())
    assert "cluster.name" in problem and "not made by this program or kind" in problem


def test_use_stack_needs_the_other_stacks_caches_on_the_engine():
    s = parse(stack="ci", cache={"useStack": "dev"}, cluster={"name": "ci"})
    (problem,) = preflight.conflicts(report(), s)
    assert problem.startswith("kind-registry-cache:cache.useStack: stack 'dev' has no cache on this Docker engine")
    assert "`pulumi up --stack dev`" in problem
    (problem,) = preflight.conflicts(report("container=x|kcr-dev-docker-io|kind-registry-cache/prod|"), s)[-1:]
    assert "not stack kind-registry-cache/dev's cache" in problem


def test_preview_fails_before_any_resource_when_a_name_is_taken():
    with pytest.raises(pulumi.RunError) as error:
        run_program("dev", preflight=HEALTHY_PREFLIGHT + "\ncontainer=x|kcr-dev-gcr-io|kind-registry-cache/prod|")
    assert "Nothing was created, changed or deleted." in str(error.value)


@pytest.mark.parametrize("stack", [".", ".."])
def test_a_stack_named_like_a_folder_reference_is_refused_before_any_path_derives_from_it(stack):
    """Pulumi accepts '.' and '..' as stack names; ~/.kind-registry-cache/.. would be the home folder itself."""
    with pytest.raises(SettingsError) as info:
        parse(stack=stack, cluster={"name": "kind"})
    assert len(info.value.problems) == 1
    message = info.value.problems[0]
    assert message.startswith(f"the stack name {stack!r} cannot name a folder") and "pulumi stack rename" in message


@pytest.mark.parametrize("stack", ["...", ".a", "a..b"])
def test_other_stack_names_with_dots_are_ordinary_folder_names(stack):
    assert parse(stack=stack, cluster={"name": "kind"}).state_dir == f"{HOME}/.kind-registry-cache/{stack}"
