"""The whole program under Pulumi mocks for each cache mode: warm-up, stats, shared mirrors, another stack's caches."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
import tomllib

import pytest
import yaml

from krc import config as settings_module
from krc import versions
from krc.render.warmup import Plan
from harness import HEALTHY_PREFLIGHT, ROOT, Recording, Registered, run_program, written_certs

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/remoteImage:RemoteImage"
RELEASE = "kubernetes:helm.sh/v3:Release"
COMMAND = "command:local:Command"

OFF = {"enabled": False}
HARBOR = "https://harbor.example/v2/dockerhub"


@pytest.fixture(scope="module")
def dev() -> Recording:
    return run_program("dev")


@pytest.fixture(scope="module")
def mixed() -> Recording:
    """docker.io through a team's Harbor project (a path), quay.io through a team cache at its root, the rest local."""
    return run_program(
        "dev",
        overrides={
            "cache": {"mirrors": {"docker.io": {"shared": HARBOR}, "quay.io": {"shared": "http://cache.team.example:5000"}}},
            "warmup": {"images": ["nginx:1.27", "ghcr.io/acme/api:1.4.2"]},
        },
    )


@pytest.fixture(scope="module")
def ci_on_dev() -> Recording:
    """A second stack on the same machine using the dev stack's caches."""
    return run_program(
        "ci",
        overrides={
            "cache": {"useStack": "dev"},
            "cluster": {"controlPlanes": 1, "workers": 0, "portMappings": []},
            "addons": {"metallb": {"range": "172.30.254.200-172.30.254.250"}},
            "localRegistry": {"useStack": "dev"},
        },
        use_stack_file=False,
        # dev's caches and local registry, as the preflight lists them.
        preflight=DEV_CACHES_UP + "\nlocal_registry=kcr-dev-local-registry|running|kind-registry-cache/dev|5001||kind",
    )


#: The dev stack is up on the engine: its six caches exist (cache.useStack needs them).
DEV_CACHES_UP = HEALTHY_PREFLIGHT + "".join(
    f"\ncontainer=id-{slug}|kcr-dev-{slug}|kind-registry-cache/dev|"
    for slug in ("docker-io", "quay-io", "ghcr-io", "registry-k8s-io", "gcr-io", "k8s-gcr-io")
)


def names(rec: Recording, type_: str) -> set[str]:
    """Names of the resources of ``type_``, the local registry's left out (tests/test_local_registry.py)."""
    return {r.name for r in rec.of_type(type_) if not r.parent.endswith("::local-registry")}


def depends_on(rec: Recording, resource: Registered) -> set[str]:
    return {rec.by_urn(urn).name for urn in resource.dependencies}


def ancestors(rec: Recording, resource: Registered) -> set[str]:
    """Every resource ``resource`` waits for, directly or through others (and through parents' children)."""
    seen: set[str] = set()
    todo = list(resource.dependencies)
    while todo:
        found = rec.by_urn(todo.pop())
        if found.name not in seen:
            seen.add(found.name)
            todo.extend(found.dependencies)
    return seen


def plan_of(rec: Recording) -> Plan:
    return Plan.from_json(rec.named("warmup-images").inputs["stdin"])


def hosts_toml(rec: Recording, host: str) -> dict:
    """The hosts.toml the recorded certs command writes for ``host`` (the script run for real)."""
    with tempfile.TemporaryDirectory() as folder:
        written = written_certs(rec, Path(folder) / "certs.d")
    assert f"{host}/hosts.toml" in written, f"no hosts.toml for {host} in the certs script"
    return tomllib.loads(written[f"{host}/hosts.toml"])


# --- warm-up -------------------------------------------------------------------------------------


def test_warmup_starts_with_the_caches_not_after_the_cluster(dev):
    warm = dev.named("warmup-images")
    assert names(dev, CONTAINER) <= depends_on(dev, warm)
    assert not {"kind-cluster", "kind-certs", "kind-kubeconfig"} & ancestors(dev, warm)
    assert "warmup-images" not in ancestors(dev, dev.named("kind-cluster")), "kind create must not wait for the warm-up"


def test_every_release_waits_for_the_warmup(dev):
    for release in dev.of_type(RELEASE):
        assert "warmup-images" in depends_on(dev, release), release.name


def test_warmup_plan_is_the_addons_pinned_images_on_their_caches(dev):
    plan = plan_of(dev)
    by_host = {t.host: t for t in plan.targets}
    assert by_host["quay.io"].container == "kcr-dev-quay-io"
    assert by_host["registry.k8s.io"].container == "kcr-dev-registry-k8s-io"
    expected = [i for i in (*versions.CILIUM_IMAGES, *versions.METALLB_IMAGES, *versions.INGRESS_NGINX_IMAGES)
                if ":" in i.rsplit("/", 1)[-1]]
    assert plan.images == expected
    assert (plan.platform, plan.parallel) == (None, 4)


def test_warmup_runs_this_programs_python_from_the_project_on_the_programs_engine(dev):
    warm = dev.named("warmup-images")
    assert warm.inputs["create"] == f"{sys.executable} -m krc.commands.warmup"
    assert warm.inputs["dir"] == str(ROOT)
    assert warm.inputs["environment"] == {"DOCKER_HOST": "unix:///var/run/docker.sock"}
    assert warm.parent.endswith("::warmup")


def test_warmup_runs_again_when_a_cache_container_is_replaced(dev):
    assert sorted(dev.named("warmup-images").inputs["triggers"]) == sorted(f"{n}-id" for n in names(dev, CONTAINER))


def test_team_images_extend_the_list_and_can_replace_it():
    extended = plan_of(run_program("dev", overrides={"warmup": {"images": ["ghcr.io/acme/api:1.4.2"]}}))
    assert extended.images[-1] == "ghcr.io/acme/api:1.4.2"
    assert len(extended.images) > 1
    replaced = run_program("dev", overrides={"warmup": {"images": ["ghcr.io/acme/api:1.4.2"], "replace": True, "parallel": 2}})
    plan = plan_of(replaced)
    assert plan.images == ["ghcr.io/acme/api:1.4.2"]
    assert plan.parallel == 2


def test_warmup_off_leaves_no_command_and_releases_wait_only_for_the_cluster():
    rec = run_program("dev", overrides={"warmup": OFF})
    assert "warmup-images" not in {r.name for r in rec.resources}
    for release in rec.of_type(RELEASE):
        assert "warmup-images" not in depends_on(rec, release), release.name


def test_nothing_to_warm_leaves_no_command():
    rec = run_program("dev", overrides={"addons": {"cilium": OFF, "metallb": OFF, "ingressNginx": OFF}})
    assert "warmup-images" not in {r.name for r in rec.resources}
    assert "warmup" in {r.name for r in rec.resources}


# --- stats ---------------------------------------------------------------------------------------


def stats_invoke(rec):
    """(args, resources registered before it) of the read-only stats invoke."""
    found = [
        (args, after)
        for (token, args), after in zip(rec.invokes, rec.invoke_after)
        if token == "command:local:run" and "krc.commands.cachectl stats" in args["command"]
    ]
    assert len(found) == 1, found
    return found[0]


def test_cache_stats_are_read_after_the_warmup_and_the_addons_without_a_resource(dev):
    args, after = stats_invoke(dev)
    assert args["command"].startswith(f"{sys.executable} -m krc.commands.cachectl stats --json --running-only --stack kind-registry-cache/dev")
    assert args["dir"] == str(ROOT)
    # The invoke waits for what it depends on: every release and the warm-up were registered before it ran.
    before = {r.name for r in dev.resources[:after]}
    assert {"warmup-images", *names(dev, RELEASE)} <= before
    # No resource for it, so no permanent diff in every preview.
    assert not [r for r in dev.resources if r.type == COMMAND and "cachectl stats" in r.inputs.get("create", "")]


def test_cache_stats_is_a_stack_output(dev):
    # Under mocks the command prints no stats JSON: the output is then empty, never an error.
    assert dev.outputs["cacheStats"] == {}


# --- Docker Hub's allowance ----------------------------------------------------------------------

HUB_IMAGES = {"warmup": {"images": ["nginx:1.27", "docker.io/library/redis:7.4@sha256:" + "a" * 64]}}


def quota_invokes(rec: Recording) -> list[dict]:
    return [args for token, args in rec.invokes
            if token == "command:local:run" and "krc.commands.cachectl quota" in args["command"]]


def quota_json(remaining: int) -> str:
    return json.dumps({"limit": 100, "remaining": remaining, "windowSeconds": 21600, "source": "198.51.100.4",
                       "login": False, "error": None})


def test_preview_asks_docker_hub_what_is_left_when_the_warm_up_pulls_from_it(caplog):
    rec = run_program("dev", overrides=HUB_IMAGES, hub_quota=quota_json(1))
    (args,) = quota_invokes(rec)
    assert args["command"].startswith(f"{sys.executable} -m krc.commands.cachectl quota --json")
    assert args["environment"] == {"KRC_DOCKER_HUB_URL": "https://registry-1.docker.io"}
    # Two docker.io images, one pull left: the warning says so and how to fix it.
    warnings = [r.getMessage() for r in caplog.records if "cold warm-up pulls" in r.getMessage()]
    assert warnings == ["a cold warm-up pulls 2 image(s) from Docker Hub, and 1 of 100 pulls left per 6 h for "
                        "198.51.100.4 (this machine's address, anonymous): the pulls past that fail with 429 "
                        "toomanyrequests (docs/troubleshooting.md); log the docker.io cache in (credentials for "
                        "docker.io, see docs/configuration.md) or wait for the window to move on"]


def test_no_warning_when_the_pulls_fit_or_docker_hub_is_not_asked(caplog, dev):
    run_program("dev", overrides=HUB_IMAGES, hub_quota=quota_json(2))
    assert not [r for r in caplog.records if "cold warm-up pulls" in r.getMessage()]
    assert not quota_invokes(dev), "the dev stack's add-ons pull nothing from Docker Hub: no question asked"


def test_the_login_reaches_the_quota_check_as_a_secret_in_its_environment():
    rec = run_program("dev", overrides={**HUB_IMAGES, "credentials": {"docker.io": {"username": "me", "password": "pw"}}},
                      secret_keys=("credentials",))
    (args,) = quota_invokes(rec)
    assert set(args["environment"]) == {"KRC_DOCKER_HUB_URL", "KRC_DOCKER_HUB_USERNAME", "KRC_DOCKER_HUB_PASSWORD"}
    assert "pw" not in args["command"]


# --- shared and mixed mirrors --------------------------------------------------------------------


def test_shared_mirrors_get_no_container_and_no_volume(mixed):
    assert names(mixed, CONTAINER) == {"cache-ghcr-io", "cache-registry-k8s-io", "cache-gcr-io", "cache-k8s-gcr-io"}
    assert {r.inputs["name"] for r in mixed.of_type(VOLUME) if r.name in names(mixed, VOLUME)} == {
        "kcr-dev-ghcr-io", "kcr-dev-registry-k8s-io", "kcr-dev-gcr-io", "kcr-dev-k8s-gcr-io"
    }


def test_hosts_toml_points_at_the_shared_url_with_override_path_only_for_a_path(mixed):
    assert hosts_toml(mixed, "docker.io") == {
        "server": "https://registry-1.docker.io",
        "host": {HARBOR: {"capabilities": ["pull", "resolve"], "override_path": True}},
    }
    assert hosts_toml(mixed, "quay.io") == {
        "server": "https://quay.io",
        "host": {"http://cache.team.example:5000": {"capabilities": ["pull", "resolve"]}},
    }
    assert hosts_toml(mixed, "ghcr.io")["host"] == {"http://kcr-dev-ghcr-io:5000": {"capabilities": ["pull", "resolve"]}}


def test_mirrors_output_tells_shared_from_local(mixed):
    assert mixed.outputs["mirrors"]["docker.io"] == {"url": HARBOR, "remote": "https://registry-1.docker.io", "shared": True}
    assert mixed.outputs["mirrors"]["ghcr.io"]["container"] == "kcr-dev-ghcr-io"


def test_warmup_skips_images_of_shared_mirrors_and_warms_the_local_ones(mixed):
    plan = plan_of(mixed)
    skipped = dict(plan.skipped)
    assert skipped["nginx:1.27"] == f"docker.io is pulled through the shared cache {HARBOR}; warm it there"
    assert all(image in skipped for image in versions.CILIUM_IMAGES if ":" in image.rsplit("/", 1)[-1])
    assert {t.host: t.images for t in plan.targets}["ghcr.io"] == ("ghcr.io/acme/api:1.4.2",)


def test_all_mirrors_shared_needs_no_registry_image():
    shared = {host: {"shared": f"http://team.example:5000/{host}/v2"} for host in settings_module.DEFAULT_MIRRORS}
    rec = run_program("dev", overrides={"cache": {"mirrors": shared}, "localRegistry": OFF})
    assert rec.of_type(IMAGE) == [] and rec.of_type(CONTAINER) == [] and rec.of_type(VOLUME) == []
    assert hosts_toml(rec, "gcr.io")["host"]["http://team.example:5000/gcr.io/v2"]["override_path"] is True


# --- several stacks on one machine -----------------------------------------------------------------


def test_a_stack_on_another_stacks_caches_creates_none_and_points_at_them(ci_on_dev):
    assert ci_on_dev.of_type(CONTAINER) == [] and ci_on_dev.of_type(VOLUME) == [] and ci_on_dev.of_type(IMAGE) == []
    assert hosts_toml(ci_on_dev, "quay.io")["host"] == {"http://kcr-dev-quay-io:5000": {"capabilities": ["pull", "resolve"]}}
    assert {t.container for t in plan_of(ci_on_dev).targets} == {"kcr-dev-quay-io", "kcr-dev-registry-k8s-io"}
    assert "--stack kind-registry-cache/dev" in stats_invoke(ci_on_dev)[0]["command"]


def test_two_stacks_with_own_caches_share_no_name(dev):
    ci = run_program(
        "ci",
        overrides={"cluster": {"portMappings": [{"containerPort": 80, "hostPort": 8080}]},
                   "addons": {"metallb": {"range": "172.30.254.200-172.30.254.250"}}},
        use_stack_file=False,
    )
    for type_ in (CONTAINER, VOLUME):
        ours = {r.inputs["name"] for r in dev.of_type(type_)}
        theirs = {r.inputs["name"] for r in ci.of_type(type_)}
        assert ours and theirs and not ours & theirs, type_
    assert dev.outputs["clusterName"] != ci.outputs["clusterName"]
    dev_mount = hosts_mount(dev)
    assert dev_mount != hosts_mount(ci)
    # Both use the `kind` network: the first stack creates it, the second finds it and uses it as it is.
    assert dev.outputs["networkName"] == ci.outputs["networkName"] == "kind"


def hosts_mount(rec: Recording) -> str:
    return yaml.safe_load(rec.named("kind-cluster").inputs["stdin"])["nodes"][0]["extraMounts"][0]["hostPath"]
