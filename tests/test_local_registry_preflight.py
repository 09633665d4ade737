"""The local registry's preflight: what the read-only script prints, how it is parsed, and the decision (own
registry refused when its name or port is taken by anything else; another stack's found for ``useStack``)."""

from __future__ import annotations

import pytest

from krc import preflight
from krc.config.localregistry import LocalRegistrySettings
from krc.preflight import localregistry
from krc.preflight.report import Published

OWNER = "kind-registry-cache/dev"
OWN = LocalRegistrySettings(enabled=True, port=5001, name="kcr-dev-local-registry")
SHARED = LocalRegistrySettings(enabled=True, use_stack="dev")

OURS_RUNNING = "local_registry=kcr-dev-local-registry|running|kind-registry-cache/dev|5001|a1b2c3|kind"
OURS_PUBLISHED = "published=kcr-dev-local-registry|kind-registry-cache/dev|local-registry|127.0.0.1:5001->5000/tcp"


def plan(*lines: str, settings: LocalRegistrySettings = OWN, owner: str = OWNER, local_engine: bool = True):
    report = preflight.parse("\n".join(["docker=28.2.2", *lines]))
    return localregistry.plan(
        report, settings, project="kind-registry-cache", owner=owner, network="kind", local_engine=local_engine
    )


def refused(*lines: str, **kwargs) -> str:
    with pytest.raises(preflight.PreflightError) as info:
        plan(*lines, **kwargs)
    return str(info.value)


# --- the script and its report ----------------------------------------------------------------------


def test_script_only_reads():
    script = preflight.SCRIPT
    for verb in ("create", "rm", "run", "pull", "start", "stop", "network connect"):
        assert f"docker {verb}" not in script and f"docker container {verb}" not in script
    # The port probe connects; it never binds or listens.
    assert "connect(" in preflight.script.PORT_PROBE and "bind(" not in preflight.script.PORT_PROBE
    assert "listen(" not in preflight.script.PORT_PROBE


def test_environment_asks_about_the_name_and_port_of_an_own_registry_only():
    base = preflight.environment("o/s", "dev", "/r", "/c")
    assert "KRC_LOCAL_REGISTRY_PORT" not in base
    env = preflight.environment("o/s", "dev", "/r", "/c", local_registry=("kcr-dev-local-registry", 5001), python="/py")
    assert (env["KRC_LOCAL_REGISTRY_NAME"], env["KRC_LOCAL_REGISTRY_PORT"], env["KRC_PYTHON"]) == (
        "kcr-dev-local-registry", "5001", "/py"
    )
    assert env["PORT_PROBE"] == preflight.script.PORT_PROBE


def test_report_parses_registries_published_ports_name_and_probe():
    report = preflight.parse("\n".join([
        OURS_RUNNING,
        "local_registry=kcr-ci-local-registry|exited|kind-registry-cache/ci|5002||kind,other",
        "local_registry=odd|running|x/y|notaport||",
        "published=kind-registry|||0.0.0.0:5001->5000/tcp, :::5001->5000/tcp",
        "registry_container=running|kind-registry-cache/dev|local-registry",
        "registry_volume=|",
        "port_probe=listening 127.0.0.1",
        "port_process=docker-proxy (pid 812)",
    ]))
    ours, ci, odd = report.local_registries
    assert (ours.name, ours.state, ours.owner, ours.port, ours.generation, ours.networks) == (
        "kcr-dev-local-registry", "running", OWNER, 5001, "a1b2c3", ("kind",)
    )
    assert (ci.port, ci.networks) == (5002, ("kind", "other"))
    assert odd.port is None
    assert report.published == (Published("kind-registry", "", "", "0.0.0.0:5001->5000/tcp, :::5001->5000/tcp"),)
    assert report.registry_container == ("running", OWNER, "local-registry")
    assert report.registry_volume == ("", "")
    assert (report.port_probe, report.port_process) == ("listening 127.0.0.1", "docker-proxy (pid 812)")


def test_a_report_without_any_of_it_means_nothing_found():
    report = preflight.parse("docker=28.2.2")
    assert (report.local_registries, report.published, report.registry_container, report.registry_volume) == ((), (), None, None)
    assert report.port_probe == ""


@pytest.mark.parametrize(
    ("ports", "holds"),
    [
        pytest.param("127.0.0.1:5001->5000/tcp", "127.0.0.1:5001->5000/tcp", id="loopback"),
        pytest.param("0.0.0.0:5001->5000/tcp, :::5001->5000/tcp", "0.0.0.0:5001->5000/tcp", id="wildcard"),
        pytest.param(":::5001->5000/tcp", ":::5001->5000/tcp", id="v6-wildcard"),
        pytest.param("[::]:5001->5000/tcp", "[::]:5001->5000/tcp", id="v6-bracketed"),
        pytest.param("0.0.0.0:4990-5010->4990-5010/tcp", "0.0.0.0:4990-5010->4990-5010/tcp", id="range"),
        pytest.param("192.168.1.5:5001->5000/tcp", None, id="another-address"),
        pytest.param("0.0.0.0:5001->5000/udp", None, id="udp"),
        pytest.param("0.0.0.0:15001->5000/tcp", None, id="longer-number"),
        pytest.param("5001/tcp", None, id="exposed-only"),
    ],
)
def test_which_published_ports_take_loopback_5001(ports, holds):
    assert localregistry.holds_port(Published("c", "", "", ports), 5001) == holds


# --- this stack's own registry -----------------------------------------------------------------------


def test_nothing_in_the_way():
    found = plan("port_probe=free")
    assert found == localregistry.LocalRegistryPlan("kcr-dev-local-registry", 5001, OWNER)


def test_off_is_no_plan():
    assert plan(settings=LocalRegistrySettings(enabled=False)) is None


def test_our_own_running_registry_holds_the_port_as_it_should():
    # The second `up`: docker-proxy listens for our registry, which publishes the port.
    found = plan(OURS_RUNNING, OURS_PUBLISHED, "registry_container=running|kind-registry-cache/dev|local-registry",
                 "registry_volume=kind-registry-cache/dev|local-registry", "port_probe=listening 127.0.0.1",
                 "port_process=docker-proxy (pid 812)")
    assert found.port == 5001 and not found.shared


def test_another_container_publishing_the_port_is_refused_by_name():
    message = refused("published=kind-registry|||0.0.0.0:5001->5000/tcp", "port_probe=listening 127.0.0.1")
    assert "kind-registry-cache:localRegistry.port: 5001 on 127.0.0.1 is already published by container 'kind-registry'" in message
    assert "(0.0.0.0:5001->5000/tcp)" in message
    assert "localRegistry.port 5002" in message and "docker stop kind-registry" in message
    assert message.count("\n  - ") == 1, "one holder, one problem"


def test_a_process_on_this_machine_is_refused_with_its_name():
    message = refused("port_probe=listening 127.0.0.1", "port_process=python3 (pid 4242)")
    assert "localRegistry.port: 5001 is in use on this machine (127.0.0.1) by python3 (pid 4242)" in message


def test_an_unnamed_process_is_refused_with_how_to_find_it():
    message = refused("port_probe=listening ::1", "port_process=")
    assert "(::1) by a process that is not a container of this Docker engine (see `ss -ltnp` or `lsof -i`)" in message


def test_a_process_here_is_only_a_note_for_a_remote_engine():
    found = plan("port_probe=listening 127.0.0.1", "port_process=sshd (pid 7)", local_engine=False)
    (note,) = found.notes
    assert "remote Docker engine publishes the registry on its own machine" in note


def test_our_stopped_registry_does_not_excuse_a_process_on_its_port():
    message = refused(OURS_RUNNING.replace("|running|", "|exited|"), "port_probe=listening 127.0.0.1",
                      "port_process=nc (pid 9)")
    assert "by nc (pid 9)" in message


def test_a_second_stack_on_the_same_port_is_refused_with_both_ways_out():
    # ci's preflight while dev's registry is on 5001 (running or not).
    for state in ("running", "exited"):
        message = refused(
            OURS_RUNNING.replace("|running|", f"|{state}|"), OURS_PUBLISHED if state == "running" else "",
            "port_probe=listening 127.0.0.1" if state == "running" else "port_probe=free",
            settings=LocalRegistrySettings(enabled=True, port=5001, name="kcr-ci-local-registry"),
            owner="kind-registry-cache/ci",
        )
        assert (
            f"5001 is the port of stack kind-registry-cache/dev's local registry (kcr-dev-local-registry, {state})"
            in message
        )
        assert "localRegistry.useStack dev" in message and "localRegistry.port 5002" in message
        assert message.count("\n  - ") == 1, message


def test_a_second_stack_on_another_port_goes_ahead():
    found = plan(OURS_RUNNING, OURS_PUBLISHED, "port_probe=free",
                 settings=LocalRegistrySettings(enabled=True, port=5002, name="kcr-ci-local-registry"),
                 owner="kind-registry-cache/ci")
    assert (found.container, found.port) == ("kcr-ci-local-registry", 5002)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        pytest.param("registry_container=running||", "a container named 'kcr-dev-local-registry' already exists", id="foreign-container"),
        pytest.param("registry_container=exited|kind-registry-cache/other|local-registry", "stack kind-registry-cache/other's", id="other-owner"),
        pytest.param("registry_volume=|", "a docker volume named 'kcr-dev-local-registry' already exists (not made by this program)", id="foreign-volume"),
    ],
)
def test_a_name_this_stack_did_not_create_is_refused(line, says):
    message = refused(line, "port_probe=free")
    assert "kind-registry-cache:localRegistry.name:" in message and says in message


# --- useStack ------------------------------------------------------------------------------------------


def test_use_stack_takes_the_other_stacks_registry_and_port():
    found = plan(OURS_RUNNING.replace("|5001|", "|5005|"), settings=SHARED, owner="kind-registry-cache/ci")
    assert (found.container, found.port, found.owner, found.shared) == (
        "kcr-dev-local-registry", 5005, OWNER, True
    )
    assert "this stack creates none and its destroy leaves it" in found.notes[0]


def test_use_stack_notes_a_stopped_registry():
    found = plan(OURS_RUNNING.replace("|running|", "|exited|"), settings=SHARED, owner="kind-registry-cache/ci")
    assert "docker start kcr-dev-local-registry" in found.notes[-1]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        pytest.param("", "stack kind-registry-cache/dev has no local registry on this Docker engine", id="missing"),
        pytest.param(OURS_RUNNING.replace("|5001|", "||"), "carries no kind-registry-cache.port label", id="no-port"),
        pytest.param(OURS_RUNNING.rsplit("|", 1)[0] + "|other", "is on docker network(s) other, not on this stack's 'kind'", id="network"),
    ],
)
def test_use_stack_refusals(line, says):
    message = refused(line, settings=SHARED, owner="kind-registry-cache/ci")
    assert message.startswith("kind-registry-cache:localRegistry.useStack: ") and says in message


# --- drift --------------------------------------------------------------------------------------------


def test_the_registry_keeps_its_token_while_it_exists_and_gets_a_new_one_once_gone():
    present = preflight.parse("cache=kcr-dev-local-registry a1b2c3")
    assert preflight.generations(present, [], [], local_registry="kcr-dev-local-registry").local_registry == "a1b2c3"
    gone = preflight.generations(preflight.parse(""), [], [], fresh=lambda: "fresh1", local_registry="kcr-dev-local-registry")
    assert gone.local_registry == "fresh1"
    assert "local registry container kcr-dev-local-registry" in gone.missing
    assert preflight.generations(present, [], []).local_registry == ""
