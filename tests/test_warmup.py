"""The warm-up: which images, which cache warms each, and each blob fetched once (with a fake Docker)."""

from __future__ import annotations

import io
import ipaddress
import json

import pytest
from hypothesis import given, settings as hypothesis_settings
from hypothesis import strategies as st

from krc import config as settings
from krc.config import addons as addon_settings
from krc.config import WarmupSettings
from krc import versions
from krc.commands import cacheclient, warmup
from krc.render import warmup as warmup_plan
from krc.render.warmup import Plan, Target
from fakedocker import FakeDocker, FakeUpstream

SUBNET = ipaddress.IPv4Network("172.30.0.0/16")


def addons(raw=None):
    return addon_settings.parse(raw, subnet=SUBNET)


def cache_settings(stack="dev", **cache):
    return settings.parse(project="kind-registry-cache", stack=stack, home="/h", cache=cache or None).cache


def no_sleep(_seconds: float) -> None:
    pass


# --- which images ------------------------------------------------------------------------------


def test_default_images_are_the_enabled_addons_pinned_images():
    images, notes = warmup_plan.addon_images(addons())
    pinned = [i for i in (*versions.CILIUM_IMAGES, *versions.METALLB_IMAGES, *versions.INGRESS_NGINX_IMAGES)
              if ":" in i.rsplit("/", 1)[-1] or "@" in i]
    assert images == pinned
    # An image listed without a tag is never warmed as ':latest', and the log says so.
    unpinned = [i for i in versions.CILIUM_IMAGES if i not in pinned]
    assert [n for n in notes if "no pinned tag" in n] == [f"{i} has no pinned tag in krc/versions.py: not warmed" for i in unpinned]


@pytest.mark.parametrize(
    ("raw", "included", "excluded"),
    [
        pytest.param({"cilium": {"hubble": True}}, versions.CILIUM_HUBBLE_IMAGES, (), id="hubble-adds-relay"),
        pytest.param({"metallb": {"frr": True}}, versions.METALLB_FRR_IMAGES, (), id="frr-adds-frr"),
        pytest.param({"ingressNginx": {"enabled": False}}, (), versions.INGRESS_NGINX_IMAGES, id="disabled-addon"),
        pytest.param({}, (), versions.CILIUM_HUBBLE_IMAGES + versions.METALLB_FRR_IMAGES, id="optional-parts-off"),
    ],
)
def test_addon_switches_pick_their_images(raw, included, excluded):
    images, _ = warmup_plan.addon_images(addons(raw))
    assert set(included) <= set(images)
    assert not set(excluded) & set(images)


def test_a_chart_version_other_than_the_pinned_one_warms_none_of_its_images_and_says_so():
    images, notes = warmup_plan.addon_images(addons({"metallb": {"version": "0.15.2"}}))
    assert not set(versions.METALLB_IMAGES) & set(images)
    assert any(n.startswith("addons.metallb.version 0.15.2 is not the pinned") for n in notes)


def test_extra_images_extend_the_defaults_and_replace_drops_them():
    extra = WarmupSettings(images=("ghcr.io/acme/api:1.2", versions.METALLB_IMAGES[0]))
    images, _ = warmup_plan.images_to_warm(extra, addons())
    assert images[-1] == "ghcr.io/acme/api:1.2"
    assert images.count(versions.METALLB_IMAGES[0]) == 1
    only, notes = warmup_plan.images_to_warm(WarmupSettings(images=("ghcr.io/acme/api:1.2",), replace=True), addons())
    assert (only, notes) == (["ghcr.io/acme/api:1.2"], [])


# --- which cache warms an image ----------------------------------------------------------------


def test_plan_groups_images_onto_the_cache_of_their_registry():
    p = warmup_plan.plan(cache_settings(), WarmupSettings(), ["nginx:1", "quay.io/a/b:1", "docker.io/library/redis:7"])
    assert p.targets == (
        Target("docker.io", "kcr-dev-docker-io", ("nginx:1", "docker.io/library/redis:7")),
        Target("quay.io", "kcr-dev-quay-io", ("quay.io/a/b:1",)),
    )
    assert p.skipped == ()


def test_plan_skips_shared_urls_and_hosts_without_a_mirror_and_says_why():
    cache = cache_settings(mirrors={"quay.io": {"shared": "https://harbor.example/v2/quay"}})
    p = warmup_plan.plan(cache, WarmupSettings(), ["quay.io/a/b:1", "registry.example.com/x:1", "nginx:1"])
    assert [t.host for t in p.targets] == ["docker.io"]
    assert p.skipped == (
        ("quay.io/a/b:1", "quay.io is pulled through the shared cache https://harbor.example/v2/quay; warm it there"),
        ("registry.example.com/x:1", "no mirror for registry.example.com: nodes pull it from the upstream directly"),
    )


def test_plan_for_another_stacks_caches_warms_its_containers():
    p = warmup_plan.plan(cache_settings(stack="ci", useStack="dev"), WarmupSettings(), ["nginx:1"])
    assert p.targets == (Target("docker.io", "kcr-dev-docker-io", ("nginx:1",)),)


def test_plan_carries_platform_and_parallelism_and_survives_json():
    p = warmup_plan.plan(cache_settings(), WarmupSettings(parallel=7, platform="linux/arm64"), ["nginx:1", "quay.io/a/b:1"])
    p = Plan(p.targets, p.platform, p.parallel, (("x:1", "why"),))
    assert Plan.from_json(p.to_json()) == p
    assert (p.platform, p.parallel) == ("linux/arm64", 7)


# --- manifests and platforms -------------------------------------------------------------------


INDEX = {
    "manifests": [
        {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:arm7", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "sha256:arm64", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": "sha256:att", "platform": {"os": "unknown", "architecture": "unknown"}},
    ]
}


@pytest.mark.parametrize(
    ("platform", "digest"),
    [
        pytest.param("linux/amd64", "sha256:amd", id="amd64"),
        pytest.param("linux/arm64", "sha256:arm64", id="arm64-matches-v8"),
        pytest.param("linux/arm/v7", "sha256:arm7", id="explicit-variant"),
        pytest.param("linux/arm/v6", None, id="missing-variant"),
        pytest.param("linux/s390x", None, id="missing-arch"),
    ],
)
def test_select_manifest_picks_the_platform_as_containerd_does(platform, digest):
    assert cacheclient.select_manifest(INDEX, platform) == digest


def test_manifest_blobs_are_config_and_distributable_layers():
    manifest = {
        "config": {"digest": "sha256:c", "size": 10},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:l1", "size": 100},
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": "sha256:win", "size": 1},
        ],
    }
    assert cacheclient.manifest_blobs(manifest) == {"sha256:c": 10, "sha256:l1": 100}


# --- the warm-up against fake caches -----------------------------------------------------------


@pytest.fixture
def hub() -> FakeUpstream:
    upstream = FakeUpstream()
    upstream.add_image("library/alpha", "1.0", [("base", 2000), ("alpha", 1000)])
    upstream.add_image("library/alpha", "1.1", [("base", 2000), ("alpha-1.1", 900)])
    upstream.add_image("library/beta", "1.0", [("base", 2000), ("beta", 500)], oci=True)
    upstream.add_image("library/multi", "1.0", [("multi", 700)], platforms=("linux/amd64", "linux/arm64/v8"))
    return upstream


def hub_plan(*images: str, parallel: int = 4, platform: str | None = None) -> Plan:
    return Plan((Target("docker.io", "kcr-dev-docker-io", images),), platform=platform, parallel=parallel)


ALL = ("docker.io/library/alpha:1.0", "docker.io/library/alpha:1.1", "docker.io/library/beta:1.0", "docker.io/library/multi:1.0")


def test_each_blob_is_fetched_once_per_repository_across_all_images(hub):
    docker = FakeDocker()
    cache = docker.add_cache("kcr-dev-docker-io", hub)
    report = warmup.warm(hub_plan(*ALL), runner=docker, log=lambda _: None, sleep=no_sleep)
    assert not report.failed
    wanted = {}
    for repository, tag in (("library/alpha", "1.0"), ("library/alpha", "1.1"), ("library/beta", "1.0"), ("library/multi", "1.0")):
        wanted |= {(repository, d): s for d, s in hub.platform_blobs(repository, tag).items()}
    assert dict(cache.blob_requests) == {key: 1 for key in wanted}
    # The base layer is fetched once for alpha's two tags, and again for beta: the cache links blobs per repository.
    assert report.fetched_bytes == sum(wanted.values())


def test_manifests_are_requested_with_every_type_containerd_accepts(hub):
    docker = FakeDocker()
    cache = docker.add_cache("kcr-dev-docker-io", hub)
    warmup.warm(hub_plan("docker.io/library/multi:1.0"), runner=docker, log=lambda _: None, sleep=no_sleep)
    index = json.loads(hub.manifests[hub.tags[("library/multi", "1.0")]])
    amd64 = next(e["digest"] for e in index["manifests"] if e["platform"]["architecture"] == "amd64")
    assert [(repo, ref) for repo, ref, _ in cache.manifest_requests] == [("library/multi", "1.0"), ("library/multi", amd64)]
    assert {accept for _, _, accept in cache.manifest_requests} == {f"Accept: {cacheclient.ACCEPT}"}


def test_only_the_engines_platform_is_warmed(hub):
    for platform in ("linux/amd64", "linux/arm64"):
        docker = FakeDocker(platform=platform)
        cache = docker.add_cache("kcr-dev-docker-io", hub)
        report = warmup.warm(hub_plan("docker.io/library/multi:1.0"), runner=docker, log=lambda _: None, sleep=no_sleep)
        node = "linux/arm64/v8" if platform == "linux/arm64" else platform
        assert report.platform == platform
        assert {d for _, d in cache.blob_requests} == set(hub.platform_blobs("library/multi", "1.0", node))


def test_a_warm_cache_fetches_nothing(hub):
    docker = FakeDocker()
    cache = docker.add_cache("kcr-dev-docker-io", hub)
    warmup.warm(hub_plan(*ALL), runner=docker, log=lambda _: None, sleep=no_sleep)
    requests_before = sum(cache.blob_requests.values())
    report = warmup.warm(hub_plan(*ALL), runner=docker, log=lambda _: None, sleep=no_sleep)
    assert not report.failed
    assert report.fetched == {}
    assert sum(cache.blob_requests.values()) == requests_before


def test_a_missing_image_fails_with_its_name_and_the_others_are_still_warmed(hub):
    docker = FakeDocker()
    cache = docker.add_cache("kcr-dev-docker-io", hub)
    report = warmup.warm(hub_plan("docker.io/library/nope:1", "docker.io/library/beta:1.0"), runner=docker,
                         log=lambda _: None, sleep=no_sleep)
    assert [r.error for r in report.failed] == [
        "docker.io/library/nope:1: not found (the cache kcr-dev-docker-io and its upstream do not have it)"
    ]
    assert {repo for repo, _ in cache.blob_requests} == {"library/beta"}


def test_an_image_without_the_platform_fails_naming_what_it_has(hub):
    docker = FakeDocker(platform="linux/s390x")
    docker.add_cache("kcr-dev-docker-io", hub)
    report = warmup.warm(hub_plan("docker.io/library/multi:1.0"), runner=docker, log=lambda _: None, sleep=no_sleep)
    assert report.failed[0].error == (
        "docker.io/library/multi:1.0: no linux/s390x image in its index (it has linux/amd64, linux/arm64/v8)"
    )


def test_a_missing_cache_container_fails_every_image_it_serves_by_name(hub):
    docker = FakeDocker()
    plan = Plan((Target("docker.io", "kcr-dev-docker-io", ("docker.io/library/beta:1.0",)),))
    report = warmup.warm(plan, runner=docker, log=lambda _: None, sleep=no_sleep)
    (failed,) = report.failed
    assert failed.error.startswith("docker.io/library/beta:1.0: cache container kcr-dev-docker-io not found")


def test_warmup_waits_for_a_starting_cache(hub):
    docker = FakeDocker()
    docker.add_cache("kcr-dev-docker-io", hub, healthy_after=3)
    report = warmup.warm(hub_plan("docker.io/library/beta:1.0"), runner=docker, log=lambda _: None, sleep=no_sleep)
    assert not report.failed


def test_warmup_returns_only_once_the_cache_has_stored_what_it_fetched(hub):
    docker = FakeDocker()
    cache = docker.add_cache("kcr-dev-docker-io", hub, store_after=3)
    report = warmup.warm(hub_plan(*ALL), runner=docker, log=lambda _: None, sleep=no_sleep)
    assert not report.failed
    assert set(cache.blob_requests) <= cache.stored
    # The base layer is shared by alpha and beta: beta's request waited for alpha's copy to be stored,
    # so it was not streamed past the store (which would have needed a second request).
    assert set(cache.blob_requests.values()) == {1}


def test_a_blob_the_cache_streamed_without_storing_is_asked_again(hub, monkeypatch):
    docker = FakeDocker()
    cache = docker.add_cache("kcr-dev-docker-io", hub)
    (base,) = set(hub.platform_blobs("library/alpha", "1.0")) & set(hub.platform_blobs("library/beta", "1.0"))
    # Another client's download of the base layer for alpha is still being stored.
    cache._pending[("library/alpha", base)] = 5
    monkeypatch.setattr(warmup, "STORE_GRACE_SECONDS", 0.0)
    report = warmup.warm(hub_plan("docker.io/library/beta:1.0"), runner=docker, log=lambda _: None, sleep=no_sleep)
    assert not report.failed
    assert cache.blob_requests[("library/beta", base)] == 2
    assert ("library/beta", base) in cache.stored


def test_a_blob_never_stored_fails_its_image(hub, monkeypatch):
    docker = FakeDocker()
    cache = docker.add_cache("kcr-dev-docker-io", hub)
    (base,) = set(hub.platform_blobs("library/alpha", "1.0")) & set(hub.platform_blobs("library/beta", "1.0"))
    cache._pending[("library/alpha", base)] = 10**9
    monkeypatch.setattr(warmup, "STORE_GRACE_SECONDS", 0.0)
    report = warmup.warm(hub_plan("docker.io/library/beta:1.0"), runner=docker, log=lambda _: None, sleep=no_sleep)
    (failed,) = report.failed
    assert failed.error == (
        f"docker.io/library/beta:1.0: 1 blob(s) could not be fetched: kcr-dev-docker-io did not store {base} "
        f"for library/beta after 3 requests"
    )


def test_blob_downloads_are_bounded_by_parallel(hub):
    docker = FakeDocker(fetch_seconds=0.02)
    docker.add_cache("kcr-dev-docker-io", hub)
    warmup.warm(hub_plan(*ALL, parallel=2), runner=docker, log=lambda _: None, sleep=no_sleep)
    assert docker.max_in_flight == 2


def test_caches_of_several_upstreams_are_warmed_in_one_run(hub):
    quay = FakeUpstream()
    quay.add_image("cilium/cilium", "v1", [("cilium", 3000)])
    docker = FakeDocker()
    hub_cache = docker.add_cache("kcr-dev-docker-io", hub)
    quay_cache = docker.add_cache("kcr-dev-quay-io", quay)
    plan = warmup_plan.plan(cache_settings(), WarmupSettings(), ["docker.io/library/beta:1.0", "quay.io/cilium/cilium:v1"])
    report = warmup.warm(plan, runner=docker, log=lambda _: None, sleep=no_sleep)
    assert not report.failed
    assert {repo for repo, _ in hub_cache.blob_requests} == {"library/beta"}
    assert {repo for repo, _ in quay_cache.blob_requests} == {"cilium/cilium"}


@hypothesis_settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(ALL), min_size=1, max_size=8), st.integers(min_value=1, max_value=5))
def test_any_image_list_fetches_every_needed_blob_exactly_once(images, parallel):
    hub = FakeUpstream()
    hub.add_image("library/alpha", "1.0", [("base", 2000), ("alpha", 1000)])
    hub.add_image("library/alpha", "1.1", [("base", 2000), ("alpha-1.1", 900)])
    hub.add_image("library/beta", "1.0", [("base", 2000), ("beta", 500)], oci=True)
    hub.add_image("library/multi", "1.0", [("multi", 700)], platforms=("linux/amd64", "linux/arm64/v8"))
    docker = FakeDocker()
    cache = docker.add_cache("kcr-dev-docker-io", hub)
    warmup.warm(hub_plan(*images, parallel=parallel), runner=docker, log=lambda _: None, sleep=no_sleep)
    needed = set()
    for image in set(images):
        repository, tag = image.removeprefix("docker.io/").rsplit(":", 1)
        needed |= {(repository, d) for d in hub.platform_blobs(repository, tag)}
    assert dict(cache.blob_requests) == {key: 1 for key in needed}


def test_main_reads_the_plan_on_stdin_and_exits_1_naming_failed_images(hub, monkeypatch, capsys):
    docker = FakeDocker()
    docker.add_cache("kcr-dev-docker-io", hub)
    monkeypatch.setattr(warmup.dockercli, "cli", docker)
    monkeypatch.setattr("sys.stdin", io.StringIO(hub_plan("docker.io/library/beta:1.0", "docker.io/library/gone:2").to_json()))
    assert warmup.main() == 1
    out, err = capsys.readouterr()
    assert "docker.io/library/beta:1.0: 3 blobs, 3 fetched" in out
    assert "  - docker.io/library/gone:2: not found" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(hub_plan("docker.io/library/beta:1.0").to_json()))
    assert warmup.main() == 0
    assert "3 already cached" in capsys.readouterr().out


def test_plan_json_is_what_the_command_gets():
    text = hub_plan("nginx:1").to_json()
    assert json.loads(text)["targets"] == [{"container": "kcr-dev-docker-io", "host": "docker.io", "images": ["nginx:1"]}]


def test_main_reports_an_unreachable_engine_in_one_line(monkeypatch, capsys):
    def down(args):
        return warmup.dockercli.Result(1, b"", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock\n")

    monkeypatch.setattr(warmup.dockercli, "cli", down)
    monkeypatch.setattr("sys.stdin", io.StringIO(hub_plan("docker.io/library/beta:1.0").to_json()))
    assert warmup.main() == 1
    assert "Cannot connect to the Docker daemon" in capsys.readouterr().err
