"""The artifact store in the whole program under mocks: a preview changes nothing and downloads nothing; `up` runs
the store step first (for real here, against fake servers on loopback) and installs kind's cluster, the releases
and the CRDs from the store's paths; the next run needs no server; a changed file stops the run before anything."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pulumi
import pytest

from harness import HEALTHY_PREFLIGHT, Recording, run_program
from krc import versions
from krc.preflight import kindrelease, store
from storefakes import ChartRepo, Server, Tls, gateway_files, pin_gateway_files, sha256

RELEASE = "kubernetes:helm.sh/v3:Release"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
FAKE_KIND = b"#!/bin/sh\necho fake-kind\n"
#: A machine without kind: `up` runs the pinned one from the store.
NO_KIND = HEALTHY_PREFLIGHT.replace("kind=kind v0.32.0 go1.24.2 linux/amd64\nkind_path=/usr/local/bin/kind", "kind=missing")


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """An empty HOME, and fake upstreams for everything the store holds: a chart repository with the three charts,
    the kind release and the Gateway API files (their stand-ins pinned in place of the real digests)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    tls = Tls(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    server = Server(tls.server_context)
    repo = ChartRepo(server)
    for chart, version in (("cilium", "1.20.0"), ("metallb", "0.16.1"), ("ingress-nginx", "4.15.1")):
        repo.add(chart, version)
    server.serve("/kind/kind-linux-amd64", FAKE_KIND)
    monkeypatch.setenv(kindrelease.BASE_URL_ENV, f"{server.base}/kind")
    monkeypatch.setattr(kindrelease, "machine_platform", lambda *a: ("linux", "amd64"))
    monkeypatch.setitem(versions.KIND_SHA256, ("linux", "amd64"), sha256(FAKE_KIND))
    files = gateway_files()
    pin_gateway_files(monkeypatch, files)
    for file, data in files.items():
        server.serve(f"/gateway-api/v1.6.1/{file}", data)
    monkeypatch.setenv(store.CRD_URL_ENV, f"{server.base}/gateway-api/{{version}}/{{file}}")
    overrides = {"addons": {name: {"repository": repo.url} for name in ("cilium", "metallb", "ingressNginx")}
                 | {"gatewayApi": {"enabled": True}}}
    yield home, server, overrides
    server.stop()


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the network fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access while the program ran: {args[:1]}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def unknown(value) -> bool:
    """A value the engine does not know yet (during a preview)."""
    return isinstance(value, pulumi.output.Unknown)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def plan_of(rec: Recording) -> store.StorePlan:
    return store.StorePlan.from_json(rec.named("store-fetch").inputs["stdin"])


def test_a_first_preview_writes_nothing_and_downloads_nothing(machine, offline):
    home, server, overrides = machine
    rec = run_program("dev", overrides=overrides, preflight=NO_KIND, preview=True)
    assert files_under(home) == [] and server.requests == []
    # The releases' charts and the CRDs' contents come from the store once `up` has filled it: unknown until then.
    for release in rec.of_type(RELEASE):
        assert unknown(release.inputs["chart"]), release.name
    for crd in rec.of_type(CRD):
        assert unknown(crd.inputs["spec"]), crd.name
    kinds = sorted({a.kind for a in plan_of(rec).artifacts})
    assert kinds == ["chart", "crd", "kind"] and len(plan_of(rec).artifacts) == 1 + 3 + 11


def test_up_fills_the_store_first_and_installs_from_it_then_needs_no_server(machine):
    home, server, overrides = machine
    up = run_program("dev", overrides=overrides, preflight=NO_KIND, execute=("store-fetch",))
    plan = plan_of(up)
    fetch = up.named("store-fetch")
    # The releases install the archives the store step left, verified against the repository's index digests.
    charts = {a.chart: a for a in plan.artifacts if a.kind == store.CHART}
    for release in up.of_type(RELEASE):
        artifact = charts[release.inputs["name"]]
        assert release.inputs["chart"] == artifact.path and "repositoryOpts" not in release.inputs
        assert json.loads(Path(artifact.record_path).read_text())["sha256"] == sha256(Path(artifact.path).read_bytes())
        assert fetch.urn in release.dependencies, release.name
    # The CRDs are the stored files' objects, and wait for the store step; so does the cluster (the pinned kind).
    for crd in up.of_type(CRD):
        assert fetch.urn in crd.dependencies and crd.inputs["spec"]["group"] == "gateway.networking.k8s.io", crd.name
    cluster = up.named("kind-cluster")
    assert fetch.urn in cluster.dependencies
    assert Path(cluster.inputs["environment"]["KRC_KIND"]).read_bytes() == FAKE_KIND
    assert Path(plan.record).is_file()

    # The next run (preview or up) with the servers gone: every value is known from the store, nothing is asked,
    # and the store step has no diff (its generation is the one its last run recorded).
    asked = len(server.requests)
    server.stop()
    again = run_program("dev", overrides=overrides, preflight=NO_KIND, preview=True)
    assert len(server.requests) == asked
    assert again.named("store-fetch").inputs == fetch.inputs
    assert {r.name: r.inputs["chart"] for r in again.of_type(RELEASE)} == {r.name: r.inputs["chart"] for r in up.of_type(RELEASE)}
    assert {r.name: r.inputs["spec"] for r in again.of_type(CRD)} == {r.name: r.inputs["spec"] for r in up.of_type(CRD)}


def test_a_changed_file_in_the_store_stops_the_run_before_anything_is_created(machine):
    home, server, overrides = machine
    run_program("dev", overrides=overrides, preflight=NO_KIND, execute=("store-fetch",))
    (archive,) = list(home.rglob("metallb-0.16.1.tgz"))
    genuine = sha256(archive.read_bytes())
    archive.write_bytes(b"not the chart")
    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", overrides=overrides, preflight=NO_KIND, preview=True)
    message = str(info.value)
    assert genuine in message and sha256(b"not the chart") in message and str(archive) in message


def test_an_artifact_deleted_since_is_downloaded_again_by_the_next_up(machine):
    home, server, overrides = machine
    first = run_program("dev", overrides=overrides, preflight=NO_KIND, execute=("store-fetch",))
    (archive,) = list(home.rglob("cilium-1.20.0.tgz"))
    archive.unlink()
    preview = run_program("dev", overrides=overrides, preflight=NO_KIND, preview=True)
    assert preview.named("store-fetch").inputs["triggers"] != first.named("store-fetch").inputs["triggers"]
    assert unknown(preview.named("addons-cilium").inputs["chart"])
    assert not archive.exists()
    run_program("dev", overrides=overrides, preflight=NO_KIND, execute=("store-fetch",))
    assert archive.is_file()


def test_without_add_ons_and_with_kind_installed_the_step_only_records_the_stack(machine):
    home, server, _ = machine
    off = {"enabled": False}
    rec = run_program("dev", overrides={"addons": {"cilium": off, "metallb": off, "ingressNginx": off}},
                      execute=("store-fetch",))
    plan = plan_of(rec)
    assert plan.artifacts == () and server.requests == []
    assert [p.name for p in files_under(home)] == ["offline.json"]
    assert plan.registry_image == "registry:3" and plan.node_image == versions.NODE_IMAGE
    assert plan.mirrors["docker.io"] == {
        "container": "kcr-dev-docker-io", "volume": "kcr-dev-docker-io", "shared": None, "what": "cache",
    }
    # The local registry for the user's own images is asked too (`cachectl offline`): its volume holds what was pushed.
    assert plan.mirrors["localhost:5001"] == {
        "container": "kcr-dev-local-registry", "volume": "kcr-dev-local-registry", "shared": None, "what": "local registry",
    }
