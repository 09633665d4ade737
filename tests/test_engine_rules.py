"""What the real engine and providers do with the program's graph, encoded as rules on it (issue #17).

Mocks never plan a diff, a replace or a delete. Each rule below comes from the pinned sources, cited where it is
used (repository, version, path, line); where a source at the exact pin could not be read, the nearest readable
versions on both sides are named.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness import ROOT, run_program

PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"
COMMAND = "command:local:Command"

PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


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
