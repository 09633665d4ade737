"""Every add-on workload can run on every topology the settings accept (program under mocks + a chart model).

kind leaves the control-plane NoSchedule taint on every control plane unless the cluster has one
node; with control planes only, a Deployment or Job without the toleration stays Pending and its
Helm release times out. The model in chart_scheduling.py renders each chart's defaults (read from
the pinned charts) merged with the values the program passes to Helm.
"""

from __future__ import annotations

import pytest

import chart_scheduling as model
from krc.render import addon_values
from krc.config import ClusterSettings
from harness import Recording, run_program

CHART_OF_RELEASE = {
    "addons-cilium": addon_values.CILIUM_CHART,
    "addons-metallb": addon_values.METALLB_CHART,
    "addons-ingress-nginx": addon_values.INGRESS_NGINX_CHART,
}

#: (control planes, workers): single node, one control plane with workers, control planes only, the seed.
TOPOLOGIES = [
    pytest.param((1, 0), id="1+0"),
    pytest.param((1, 2), id="1+2"),
    pytest.param((3, 0), id="3+0"),
    pytest.param((3, 3), id="3+3"),
]

#: Every optional workload the program's settings can switch on: Hubble relay, frr-k8s.
EVERYTHING_ON = {"cilium": {"hubble": True}, "metallb": {"frr": True}}


def _run(control_planes: int, workers: int, addons: dict) -> Recording:
    return run_program(
        "dev", overrides={"cluster": {"controlPlanes": control_planes, "workers": workers}, "addons": addons}
    )


def _nodes(control_planes: int, workers: int) -> list[model.Node]:
    return model.kind_nodes(ClusterSettings(name="dev", control_planes=control_planes, workers=workers), ingress=True)


@pytest.fixture(scope="module", params=TOPOLOGIES)
def topology(request) -> tuple[int, int, Recording]:
    control_planes, workers = request.param
    return control_planes, workers, _run(control_planes, workers, EVERYTHING_ON)


def test_every_release_comes_up_on_the_topology(topology):
    control_planes, workers, rec = topology
    nodes = _nodes(control_planes, workers)
    for release, chart in CHART_OF_RELEASE.items():
        values = rec.named(release).inputs["values"]
        assert model.problems(chart, values, nodes) == [], f"{release} on {control_planes}+{workers}"


def test_the_model_covers_every_workload_the_program_switches_on(topology):
    # Otherwise the test above could pass by not looking at relay, frr-k8s or the admission hooks.
    _, _, rec = topology
    workloads = {
        name
        for release, chart in CHART_OF_RELEASE.items()
        for name in model.enabled_workloads(chart, rec.named(release).inputs["values"])
    }
    assert workloads == {
        "cilium (agent)",
        "cilium-envoy",
        "cilium-operator",
        "hubble-relay",
        "metallb-controller",
        "metallb-speaker",
        "frr-k8s",
        "frr-k8s-statuscleaner",
        "ingress-nginx-controller",
        "ingress-nginx-admission-create (pre-install hook)",
        "ingress-nginx-admission-patch (post-install hook)",
    }


def test_ingress_controller_runs_only_on_the_node_with_the_port_mappings(topology):
    control_planes, workers, rec = topology
    nodes = _nodes(control_planes, workers)
    values = model.effective_values(
        addon_values.INGRESS_NGINX_CHART, rec.named("addons-ingress-nginx").inputs["values"]
    )
    (controller,) = [w for w in model.WORKLOADS if w.name == "ingress-nginx-controller"]
    placed = [n.name for n in nodes if model.fits(n, controller.tolerations(values), controller.node_selector(values))]
    assert placed == [nodes[0].name], f"{control_planes}+{workers}"
    first = rec.named("kind-cluster").inputs["stdin"]
    assert "extraPortMappings" in first.split("- role:")[1], "the first node carries the host ports"


def test_tolerations_are_added_only_when_every_node_is_a_tainted_control_plane(topology):
    control_planes, workers, rec = topology
    relay = rec.named("addons-cilium").inputs["values"]["hubble"]["relay"]
    controller = rec.named("addons-metallb").inputs["values"].get("controller", {})
    toleration = addon_values.CONTROL_PLANE_TOLERATION
    expected = control_planes > 1 and workers == 0
    assert (relay.get("tolerations") == [toleration]) is expected
    assert (controller.get("tolerations") == [toleration]) is expected


@pytest.mark.parametrize(
    ("control_planes", "workers", "pending"),
    [
        pytest.param(1, 0, set(), id="1+0"),
        pytest.param(1, 2, set(), id="1+2"),
        pytest.param(
            3,
            0,
            {
                "hubble-relay",
                "hubble-ui",
                "metallb-controller",
                "ingress-nginx-admission-create (pre-install hook)",
                "ingress-nginx-admission-patch (post-install hook)",
            },
            id="3+0",
        ),
        pytest.param(3, 3, set(), id="3+3"),
    ],
)
def test_without_the_topologys_values_exactly_these_would_stay_pending(control_planes, workers, pending):
    # The issue as filed, from the charts' defaults and our other values: the model sees the failure.
    nodes = _nodes(control_planes, workers)
    ours = {
        addon_values.CILIUM_CHART: addon_values.merge_values(
            addon_values.cilium_values("api", hubble=True), {"hubble": {"ui": {"enabled": True}}}
        ),
        addon_values.METALLB_CHART: addon_values.metallb_values(frr=True),
        addon_values.INGRESS_NGINX_CHART: addon_values.ingress_nginx_values(),
    }
    found = {name for chart, values in ours.items() for name in model.failures(chart, values, nodes)}
    assert found == pending


def test_hubble_ui_switched_on_by_stack_values_also_tolerates_control_planes():
    rec = _run(3, 0, {"cilium": {"hubble": True, "values": {"hubble": {"ui": {"enabled": True}}}}})
    values = rec.named("addons-cilium").inputs["values"]
    assert "hubble-ui" in model.enabled_workloads(addon_values.CILIUM_CHART, values)
    assert model.problems(addon_values.CILIUM_CHART, values, _nodes(3, 0)) == []


def test_stack_tolerations_replace_ours_and_the_model_says_what_breaks():
    # A stack value wins (lists replace); an empty list brings the Pending controller back.
    rec = _run(3, 0, {"metallb": {"values": {"controller": {"tolerations": []}}}})
    values = rec.named("addons-metallb").inputs["values"]
    (problem,) = model.problems(addon_values.METALLB_CHART, values, _nodes(3, 0))
    assert problem.startswith("metallb-controller (Deployment) stays Pending")


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        pytest.param({"operator": "Exists"}, model.CONTROL_PLANE_TAINT, True, id="exists-everything"),
        pytest.param(addon_values.CONTROL_PLANE_TOLERATION, model.CONTROL_PLANE_TAINT, True, id="ours"),
        pytest.param(  # ingress-nginx's own kind values: Equal with no value matches the empty value
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Equal", "effect": "NoSchedule"},
            model.CONTROL_PLANE_TAINT,
            True,
            id="equal-empty",
        ),
        pytest.param(
            {"key": "node-role.kubernetes.io/master", "operator": "Exists"},
            model.CONTROL_PLANE_TAINT,
            False,
            id="old-key",
        ),
        pytest.param(
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoExecute"},
            model.CONTROL_PLANE_TAINT,
            False,
            id="other-effect",
        ),
        pytest.param({"key": "", "operator": "Equal"}, model.CONTROL_PLANE_TAINT, False, id="empty-key-equal"),
    ],
)
def test_toleration_matching(toleration, taint, expected):
    assert model.tolerates(toleration, taint) is expected


@pytest.mark.parametrize(
    ("control_planes", "workers", "tainted"),
    [(1, 0, 0), (1, 2, 1), (3, 0, 3), (3, 3, 3)],
)
def test_kind_taints_every_control_plane_unless_single_node(control_planes, workers, tainted):
    nodes = _nodes(control_planes, workers)
    assert len(nodes) == control_planes + workers
    assert sum(1 for n in nodes if n.taints) == tainted
    assert addon_values.control_planes_tainted(ClusterSettings("x", control_planes, workers)) is (tainted > 0)
