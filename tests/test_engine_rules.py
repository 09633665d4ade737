"""What the real engine and providers do with the program's graph, encoded as rules on it (issue #17).

Mocks never plan a diff, a replace or a delete. Each rule below comes from the pinned sources, cited where it is
used (repository, version, path, line); where a source at the exact pin could not be read, the nearest readable
versions on both sides are named.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pulumi
import pytest
import yaml

from harness import HEALTHY_PREFLIGHT, ROOT, run_program
from test_program_drift import machine_after  # what the preflight prints once `up` made a recording

PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"
COMMAND = "command:local:Command"

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


@pytest.fixture(scope="module", autouse=True)
def home(tmp_path_factory):
    """This module's own HOME: `machine_after` leaves the artifact store there as `up` would."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        yield


@pytest.fixture(scope="module")
def dev():
    return run_program("dev")


# --- Pulumi.yaml's requiredPulumiVersion ---------------------------------------------------------------------


def _version(text: str) -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text.strip()).groups())
    return major, minor, patch


_COMPARATORS = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
    "!=": lambda a, b: a != b, "!": lambda a, b: a != b, "==": lambda a, b: a == b, "=": lambda a, b: a == b,
    "": lambda a, b: a == b,
}


def satisfies(version: str, version_range: str) -> bool:
    """blang/semver's ParseRange as the CLI applies it: ``||`` ORs, spaces AND, each ``<op><version>``.

    pulumi/pulumi sdk/v3 v3.272.0 go/common/resource/plugin/plugin.go:694-719 (``ValidatePulumiVersionRange``);
    the CLI calls it with Pulumi.yaml's ``requiredPulumiVersion`` before up/preview/refresh/destroy/import
    (pkg/v3 v3.274.0 pkg/cmd/pulumi/operations/up.go:637, preview.go:391, refresh.go:127, destroy.go:255,
    import.go:874; added in v3.219.0 by pulumi/pulumi#21627).
    """
    wanted = _version(version)
    for alternative in version_range.split("||"):
        terms = alternative.split()
        ok = bool(terms)
        for term in terms:
            op, bound = re.fullmatch(r"(>=|<=|!=|==|>|<|!|=)?\s*(v?\d+\.\d+\.\d+)", term).groups()
            ok = ok and _COMPARATORS[op or ""](wanted, _version(bound))
        if ok:
            return True
    return False


def test_the_range_reader_reads_blang_ranges():
    assert satisfies("3.5.0", ">=3.5.0 !3.7.7") and not satisfies("3.7.7", ">=3.5.0 !3.7.7")
    assert satisfies("3.3.0", "<3.4.0 || >3.8.0") and not satisfies("3.6.0", "<3.4.0 || >3.8.0")


def _pinned_sdk() -> str:
    (line,) = [l for l in (ROOT / "requirements.txt").read_text().splitlines() if l.startswith("pulumi==")]
    return line.split("==", 1)[1]


def test_pulumi_yaml_requires_a_cli_that_deletes_with_the_cluster():
    """A cluster replacement must not uninstall the releases one by one through the old cluster.

    Before pulumi/pulumi#23818 (first released in v3.260.0: pkg/v3 v3.260.0 pkg/resource/deploy/step_generator.go
    has ``findDependentCascadeReplacements``, v3.259.0 still ``findResourcesReplacedWith`` at :3366), a
    delete-before-replace never marked the replaced resource as deleted, so ``isDeletedWith`` (step.go:715-724)
    was false for its dependents and each Helm release was uninstalled through the old provider, failing on a
    cluster that is gone ("can't delete Helm Release with unreachable cluster", pulumi-kubernetes v4.32.0
    provider/pkg/provider/provider.go:2546-2553). From v3.260.0 the step generator sets ``sg.deletes[old.URN]``
    while it generates the steps, before the dependents' delete steps run (pkg/v3 v3.274.0 step_generator.go:2250-2252), and replaces
    every resource ``deletedWith`` the replaced one (step_generator.go:2173, :3560).
    """
    required = PROJECT.get("requiredPulumiVersion")
    assert required, "Pulumi.yaml states no requiredPulumiVersion"
    assert satisfies(_pinned_sdk(), required), "the pinned Pulumi is refused by Pulumi.yaml"
    assert satisfies("3.260.0", required)
    assert not satisfies("3.259.0", required), "a CLI without pulumi/pulumi#23818 is accepted"


def test_everything_in_the_cluster_goes_with_it_and_nothing_blocks_the_cascade(dev):
    """The graph options the recovery after `kind delete cluster` relies on (engine >= 3.260.0).

    The cluster is replaced delete-first; every resource the Kubernetes provider would delete (and the provider
    itself, and the MetalLB webhook wait) is ``deletedWith`` it, so the engine deletes none of them on its own;
    none is protected (a protected dependent stops the cascade with an error: pulumi/pulumi#23818's tests).
    """
    cluster = dev.named("kind-cluster")
    assert cluster.delete_before_replace
    provider = dev.of_type(PROVIDER)[0]
    in_cluster = [r for r in dev.resources if r.provider.startswith(f"{provider.urn}::")]
    assert {r.type for r in in_cluster} >= {RELEASE, "kubernetes:core/v1:Namespace"}
    for r in [*in_cluster, provider, dev.named("addons-metallb-webhook")]:
        assert r.deleted_with == cluster.urn, r.name
        assert not r.protect and not r.retain_on_delete, r.name


def test_the_kubernetes_provider_leaves_delete_unreachable_to_the_user(dev):
    """pulumi-kubernetes' ``deleteUnreachable`` is not set by the program.

    It does not cover deleting a Helm release (v4.32.0 provider.go:2546-2553 returns the error before the option is
    looked at; so does master of 2026-07-01; pulumi/pulumi-kubernetes#4593, opened 2026-09-09 to honour it there,
    was still open when v4.34.2 was prepared, #4614 of 2026-09-18), and in Read it drops every resource from the
    state when the cluster does not answer (provider.go:1918-1926), a stopped Docker included. The Python SDK
    4.34.2 fills it from PULUMI_K8S_DELETE_UNREACHABLE (pulumi_kubernetes/provider.py:115-118): that stays the
    user's deliberate choice for one refresh.
    """
    (provider,) = dev.of_type(PROVIDER)
    assert "deleteUnreachable" not in provider.inputs


# --- the docker network: changes Docker cannot apply, and what the provider reads back --------------------------

NETWORK = "docker:index/network:Network"


def _our_network(subnet: str = "172.30.0.0/16", mtu: str = "1500", containers: int = 7) -> str:
    inspect = {
        "Name": "kind",
        "IPAM": {"Config": [{"Subnet": subnet}]},
        "Labels": {"kind-registry-cache.owner": "kind-registry-cache/dev"},
        "Options": {"com.docker.network.bridge.enable_ip_masquerade": "true", "com.docker.network.driver.mtu": mtu},
        "Containers": {f"c{i}": {} for i in range(containers)},
    }
    return "\nnetwork=" + json.dumps(inspect)


@pytest.mark.parametrize(
    ("network", "says"),
    [
        pytest.param({"subnet": "172.31.0.0/16"}, "network.subnet 172.31.0.0/16 (it has 172.30.0.0/16)", id="subnet"),
        pytest.param({"mtu": 1400}, "network.mtu 1400 (it has 1500)", id="mtu"),
    ],
)
def test_a_network_change_docker_cannot_apply_is_refused_in_preview_with_what_to_run(network, says):
    """Every attribute of the network forces a replacement (terraform-provider-docker v4.5.0
    internal/provider/resource_docker_network.go: ForceNew on name, options, ipam_config and the rest), the engine
    creates the replacement before deleting the old one unless told otherwise, and Docker refuses a second network
    of the same name while the nodes and caches are on the first: `up` would fail half-way. The preflight refuses it
    before anything is created, and says what to run."""
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides={"network": {"name": "kind", **network}}, preflight=HEALTHY_PREFLIGHT + _our_network())
    message = str(info.value)
    assert says in message
    assert "`pulumi destroy`" in message and "`pulumi up`" in message
    assert "7 container(s)" in message


def test_the_same_network_is_kept_and_extra_engine_options_do_not_matter():
    extra = _our_network().replace('"Options": {', '"Options": {"com.docker.network.enable_ipv4": "true", ')
    rec = run_program("dev", preflight=HEALTHY_PREFLIGHT + extra)
    (network,) = rec.of_type(NETWORK)
    assert network.inputs["name"] == "kind"


def test_the_engines_own_network_options_never_replace_the_network(dev):
    """The provider reads the engine's options back (terraform-provider-docker v4.5.0
    resource_docker_network_funcs.go:192-193) into an Optional+Computed+ForceNew map (resource_docker_network.go:48-54):
    any extra key would plan a replacement. ``ignore_changes`` drops every ``options.*`` attribute from the bridge's
    diff (pulumi-terraform-bridge v3.133.0/v3.137.0 pkg/tfshim/sdk-v2/instance_diff.go:95-109, provider2.go:616-621);
    the MTU is compared by the preflight instead (above)."""
    (network,) = dev.of_type(NETWORK)
    assert network.ignore_changes == ["options"]
    assert network.inputs["options"] == {
        "com.docker.network.bridge.enable_ip_masquerade": "true",
        "com.docker.network.driver.mtu": "1500",
    }


# --- a remote Docker engine: the add-ons cannot reach the API server ------------------------------------------

ADDONS_OFF = {"cilium": {"enabled": False}, "metallb": {"enabled": False}, "ingressNginx": {"enabled": False}}


@pytest.mark.parametrize("host", ["ssh://dev@buildbox", "tcp://10.1.2.3:2376", "tcp://docker.example.com:2375"])
def test_addons_on_a_remote_engine_are_refused_in_preview_with_the_reason(host):
    """kind publishes the API server on 127.0.0.1 of the engine's machine (kind v0.32.0
    pkg/internal/apis/config/default.go:54-60; pkg/cluster/internal/providers/docker/provision.go:60-70, :274)
    and writes that address into the kubeconfig: from this machine the Kubernetes provider cannot reach it."""
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides={"docker": {"host": host}})
    message = str(info.value)
    assert "127.0.0.1 of that machine" in message
    assert "`pulumi config set --path kind-registry-cache:addons.cilium.enabled false`" in message
    assert "addons.metallb.enabled false" in message and "addons.ingressNginx.enabled false" in message


def test_a_remote_engine_without_addons_and_local_engines_with_them_are_accepted():
    rec = run_program("dev", overrides={"docker": {"host": "ssh://dev@buildbox"}, "addons": ADDONS_OFF})
    assert rec.of_type(PROVIDER) == []
    for host in ["unix:///Users/me/.colima/default/docker.sock", "tcp://127.0.0.1:2375", "ssh://me@localhost"]:
        assert run_program("dev", overrides={"docker": {"host": host}}).of_type(PROVIDER), host


# --- an unchanged cluster previews unchanged: the kubeconfig command, the provider's clusterIdentifier -----------


def engine_changes(before, after) -> set[str]:
    """Names of resources `up` would touch: inputs that differ outside the resource's ``ignore_changes`` (the engine
    sets ignored inputs back to their old values before it diffs: pulumi/pulumi pkg/v3 v3.274.0
    pkg/resource/deploy/step_generator.go, ``processIgnoreChanges``), plus resources that come or go."""
    old = {r.urn: r for r in before.resources if r.custom}
    new = {r.urn: r for r in after.resources if r.custom}
    touched = {urn for urn in old.keys() ^ new.keys()}
    for urn in old.keys() & new.keys():
        ignored = set(new[urn].ignore_changes)
        a = {k: v for k, v in old[urn].inputs.items() if k not in ignored}
        b = {k: v for k, v in new[urn].inputs.items() if k not in ignored}
        if a != b:
            touched.add(urn)
    return {urn.rsplit("::", 1)[-1] for urn in touched}


KIND_MISSING = HEALTHY_PREFLIGHT.replace("kind=kind v0.32.0 go1.24.2 linux/amd64", "kind=missing").replace(
    "kind_path=/usr/local/bin/kind\n", ""
)


def test_kind_installed_on_path_later_leaves_the_kubeconfig_provider_and_releases_unchanged():
    """The issue's case: the first `up` used the downloaded kind; then kind v0.27+ is installed on PATH.

    The cluster command's environment changes (an update that runs ``:``), nothing else of the cluster does. If
    the kubeconfig command were updated too, pulumi-go-provider v1.3.0 would make its ``stdout`` unknown in preview
    (infer/resource.go:565-587), the Kubernetes provider's kubeconfig with it, and without a clusterIdentifier the
    provider would plan a replacement for an unknown kubeconfig (pulumi-kubernetes v4.32.0 provider.go:504-516),
    showing every release as "replace". It ignores changes of its environment, and the provider carries a
    clusterIdentifier, which limits its replacements to a changed identifier (provider.go:486-502).
    """
    first = run_program("dev", preflight=KIND_MISSING + "\ncerts=missing")
    assert first.named("kind-cluster").inputs["environment"]["KRC_KIND"].endswith("kind-v0.32.0-linux-amd64")
    second = run_program("dev", preflight=machine_after(first))
    assert second.named("kind-cluster").inputs["environment"]["KRC_KIND"] == "/usr/local/bin/kind"
    # The cluster's env update (runs ":"); the artifact store step's plan no longer holds kind (an update that finds
    # everything else stored and downloads nothing).
    assert engine_changes(first, second) == {"kind-cluster", "store-fetch"}
    assert second.named("kind-kubeconfig").ignore_changes == ["environment"]
    (provider,) = second.of_type(PROVIDER)
    assert provider.inputs["clusterIdentifier"] == first.of_type(PROVIDER)[0].inputs["clusterIdentifier"]


def test_the_provider_is_replaced_exactly_when_the_cluster_is():
    """clusterIdentifier is a digest of exactly what replaces the cluster command (its ``replace_on_changes``):
    a change that keeps the cluster keeps the provider; one that recreates it changes the identifier."""
    first = run_program("dev", preflight=HEALTHY_PREFLIGHT + "\ncerts=missing")
    same = run_program("dev", preflight=machine_after(first))
    fewer_workers = run_program("dev", overrides={"cluster": {"controlPlanes": 3, "workers": 2}},
                                preflight=machine_after(first))
    mirrors_changed = run_program("dev", overrides={"cache": {"mirrors": {"gcr.io": None}}}, preflight=machine_after(first))

    def identifier(rec):
        return rec.of_type(PROVIDER)[0].inputs["clusterIdentifier"]

    cluster = first.named("kind-cluster")
    assert {key.split("[")[0] for key in cluster.replace_on_changes} == {"stdin", "triggers"}
    assert identifier(same) == identifier(first)
    assert identifier(mirrors_changed) == identifier(first), "a mirror change updates hosts.toml, not the cluster"
    assert fewer_workers.named("kind-cluster").inputs["stdin"] != cluster.inputs["stdin"]
    assert identifier(fewer_workers) != identifier(first)


def test_an_upgrade_that_rewrites_only_the_scripts_keeps_the_cluster_and_updates_its_delete(monkeypatch):
    """A new version of this program with other create and delete scripts (issue 18's identity-checked delete was
    one): the cluster command is updated in place (``update`` runs ``:``) and stores the new scripts, so the next
    delete runs the new one (pulumi-command v1.2.1 provider/pkg/provider/local/command.go ``Update``, lines 67-90;
    ``Delete``, lines 93-99). Not a replacement: that would delete the user's cluster on upgrade, with the old,
    stored delete script, and recreate it; and the provider, and with it every release, stays."""
    from krc.render import kindconfig

    first = run_program("dev", preflight=HEALTHY_PREFLIGHT + "\ncerts=missing")
    create, delete = kindconfig.create_script, kindconfig.delete_script
    monkeypatch.setattr(kindconfig, "create_script", lambda name: create(name) + "\n# a later version\n")
    monkeypatch.setattr(kindconfig, "delete_script", lambda name: delete(name) + "\n# a later version\n")
    upgraded = run_program("dev", preflight=machine_after(first))

    before, after = first.named("kind-cluster"), upgraded.named("kind-cluster")
    differing = {k for k in before.inputs.keys() | after.inputs.keys() if before.inputs.get(k) != after.inputs.get(k)}
    assert differing == {"create", "delete"}
    assert not differing & set(after.replace_on_changes), "a script's new text alone must not replace the cluster"
    assert after.inputs["update"] == ":"
    assert after.inputs["delete"].endswith("# a later version\n")
    assert engine_changes(first, upgraded) == {"kind-cluster"}
    assert upgraded.of_type(PROVIDER)[0].inputs["clusterIdentifier"] == first.of_type(PROVIDER)[0].inputs["clusterIdentifier"]


# --- what runs on delete does not depend on where the checkout and its virtualenv are -------------------------


def _run_from(monkeypatch, checkout: str, python: str, preflight: str):
    import sys

    from components import artifact_store, cache_warmup, cluster_addons

    for module in (artifact_store, cluster_addons, cache_warmup):
        monkeypatch.setattr(module, "PROJECT_ROOT", Path(checkout))
    monkeypatch.setattr(sys, "executable", python)
    return run_program("dev", preflight=preflight)


def test_what_runs_on_delete_is_the_same_from_a_moved_checkout_and_names_neither(monkeypatch):
    """pulumi-command v1.2.1 runs a delete with the stored inputs: the ``delete`` script in the stored ``dir``,
    ``environment`` and ``interpreter`` (provider/pkg/provider/local/commandController.go:93-99,
    commandOutputs.go:40-86; a ``dir`` that no longer exists fails the command). So none of them may hold the
    checkout's path or its virtualenv's interpreter."""
    machine = machine_after(run_program("dev", preflight=KIND_MISSING)).replace(HEALTHY_PREFLIGHT, KIND_MISSING)
    old = _run_from(monkeypatch, "/home/u/src/krc", "/home/u/src/krc/venv/bin/python", machine)
    new = _run_from(monkeypatch, "/home/u/work/krc2", "/home/u/work/krc2/.venv/bin/python3", machine)
    with_delete = [r for r in old.of_type(COMMAND) if r.inputs.get("delete")]
    assert {r.name for r in with_delete} == {"kind-certs", "kind-cluster", "store-fetch"}
    for r in with_delete:
        runs_on_delete = {k: r.inputs.get(k) for k in ("delete", "dir", "environment", "interpreter")}
        assert runs_on_delete == {k: new.named(r.name).inputs.get(k) for k in runs_on_delete}, r.name
        text = json.dumps(runs_on_delete)
        assert "/home/u/src/krc" not in text and "venv" not in text, r.name


# --- secrets: what comes from a secret stays secret, and no script gets a secret it does not need -------------


def test_commands_keep_secret_what_comes_from_a_secret_and_get_no_previous_secret_output():
    """pulumi-command's outputs take the secretness of a same-named input only (pulumi-go-provider v1.3.0
    infer/resource.go:754-806, the default flow pulumi-command v1.2.1 keeps: local/commandController.go:59-64), so a
    secret ``stdin`` leaves ``stdout``/``stderr`` in plain text unless asked. And every create, update and delete runs
    with the previous ``stdout``/``stderr`` in PULUMI_COMMAND_STDOUT/STDERR unless ``addPreviousOutputInEnv`` is false
    (commandOutputs.go:88-95): a secret output would be handed to the next run's environment."""
    rec = run_program("dev", overrides={"credentials": {"docker.io": {"username": "u", "password": "p"}}},
                      secret_keys=("credentials",))
    secret_commands = 0
    for r in rec.of_type(COMMAND):
        if r.secret_inputs:
            assert {"stdout", "stderr"} <= set(r.additional_secret_outputs), r.name
        if r.secret_inputs or r.additional_secret_outputs:
            secret_commands += 1
            assert r.inputs.get("addPreviousOutputInEnv") is False, r.name
    assert secret_commands == 2  # the kubeconfig and the MetalLB webhook wait
