"""The artifact store against a fake chart repository, a fake release server and a fake OCI registry on loopback:
``python -m krc.commands.store`` run as the pulumi-command resource runs it (its plan on stdin, in a sandbox HOME)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ROOT
from krc.commands import store as store_command
from krc.preflight import store
from storefakes import ChartRepo, OciRegistry, Server, Tls, sha256

FAKE_KIND = b"#!/bin/sh\necho fake-kind\n"


@pytest.fixture
def tls(tmp_path):
    return Tls(tmp_path)


@pytest.fixture
def server(tls):
    """One https server on loopback playing the chart repository and the release server."""
    srv = Server(tls.server_context)
    yield srv
    srv.stop()


@pytest.fixture
def repo(server):
    repository = ChartRepo(server)
    repository.add("cilium", "1.20.0")
    repository.add("metallb", "0.16.1")
    return repository


@pytest.fixture
def crds(server):
    """Stand-ins for the Gateway API release's files on the release server: file -> bytes."""
    files = {f"gateway.networking.k8s.io_kind{i}.yaml": f"kind: Kind{i}\n".encode() for i in range(3)}
    for file, data in files.items():
        server.serve(f"/gateway-api/v1.6.1/{file}", data)
    return files


def home_of(tmp_path: Path, stack: str = "dev") -> Path:
    home = tmp_path / "home"
    (home / ".kind-registry-cache" / stack).mkdir(parents=True, exist_ok=True)
    return home


def plan_for(home: Path, server: Server, repo: ChartRepo, crds: dict[str, bytes] | None = None, stack: str = "dev",
             charts=(("cilium", "1.20.0"), ("metallb", "0.16.1"))) -> store.StorePlan:
    """What the program plans for a stack: kind, the charts from ``repo``, the CRDs (pins of the stand-ins)."""
    kind = store.Artifact(
        kind=store.KIND, name="kind v0.32.0", path=str(home / ".kind-registry-cache/bin/kind-v0.32.0-linux-amd64"),
        url=f"{server.base}/kind/kind-linux-amd64", setting="no kind v0.27 or newer on PATH", sha256=sha256(FAKE_KIND),
    )
    server.serve("/kind/kind-linux-amd64", FAKE_KIND)
    artifacts = [kind] + [
        store.chart_artifact(str(home), name, version, repo.url, f"kind-registry-cache:addons.{name}.repository")
        for name, version in charts
    ]
    if crds:
        artifacts += [
            store.Artifact(kind=store.CRD, name=f"Gateway API v1.6.1 {file}",
                           path=str(store.crd_dir(str(home), "v1.6.1") / file),
                           url=f"{server.base}/gateway-api/v1.6.1/{file}", setting="kind-registry-cache:addons.gatewayApi",
                           sha256=sha256(data))
            for file, data in sorted(crds.items())
        ]
    return store.StorePlan(
        owner=f"kind-registry-cache/{stack}", artifacts=tuple(artifacts),
        record=str(home / ".kind-registry-cache" / stack / "offline.json"), generation=f"gen-{stack}",
    )


def run_store(home: Path, plan: store.StorePlan, tls: Tls) -> subprocess.CompletedProcess:
    """``python -m krc.commands.store`` as the Command runs it: the plan on stdin, the user's HOME; the test CA
    trusted through SSL_CERT_FILE (what OpenSSL's default verify paths read)."""
    env = {**os.environ, "HOME": str(home), "SSL_CERT_FILE": str(tls.ca_file)}
    return subprocess.run([sys.executable, "-m", "krc.commands.store"], cwd=ROOT, input=plan.to_json(), env=env,
                          capture_output=True, text=True, timeout=120)


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


# --- first up, second up ----------------------------------------------------------------------------------


def test_first_run_downloads_checks_and_records_everything(tmp_path, server, repo, crds, tls):
    home = home_of(tmp_path)
    plan = plan_for(home, server, repo, crds)
    done = run_store(home, plan, tls)
    assert done.returncode == 0, done.stderr
    for artifact in plan.artifacts:
        assert Path(artifact.path).is_file(), artifact.name
    cilium = next(a for a in plan.artifacts if a.chart == "cilium")
    assert Path(cilium.path).read_bytes() == repo.archives[("cilium", "1.20.0")]
    record = json.loads(Path(cilium.record_path).read_text())
    assert record["sha256"] == sha256(repo.archives[("cilium", "1.20.0")])
    assert record["url"] == f"{repo.url}cilium-1.20.0.tgz" and "index.yaml lists for cilium 1.20.0" in record["source"]
    assert os.access(plan.artifacts[0].path, os.X_OK)
    # The stack's record: its plan and generation, what `cachectl offline` and the next run read.
    assert store.StorePlan.from_json(Path(plan.record).read_text()) == plan
    assert json.loads(done.stdout)[cilium.path] == record["sha256"]
    # One request per file, the index once per chart; no temporary file left.
    assert sorted(server.paths()) == sorted(
        ["/kind/kind-linux-amd64", "/charts/index.yaml", "/charts/cilium-1.20.0.tgz", "/charts/index.yaml",
         "/charts/metallb-0.16.1.tgz"] + [f"/gateway-api/v1.6.1/{f}" for f in crds]
    )
    assert not [f for f in files_under(home) if ".part-" in f]


def test_second_run_with_the_servers_stopped_uses_the_store_and_asks_nothing(tmp_path, server, repo, crds, tls):
    home = home_of(tmp_path)
    plan = plan_for(home, server, repo, crds)
    assert run_store(home, plan, tls).returncode == 0
    kept = home / ".kind-registry-cache"
    before = {f: (kept / f).read_bytes() for f in files_under(kept) if not f.endswith("offline.json")}
    asked = len(server.requests)
    server.stop()
    done = run_store(home, plan, tls)
    assert done.returncode == 0, done.stderr
    assert len(server.requests) == asked
    assert "present:" in done.stderr and "downloaded" not in done.stderr
    after = {f: (kept / f).read_bytes() for f in files_under(kept) if not f.endswith("offline.json")}
    assert after == before
    # The program's own check (every preview and up) finds everything in place and verified, without the network.
    assert all(status.ok for status in store.inspect_all(plan.artifacts))


def test_two_stacks_share_one_download(tmp_path, server, repo, crds, tls):
    home = home_of(tmp_path, "dev")
    home_of(tmp_path, "staging")
    dev, staging = plan_for(home, server, repo, crds, "dev"), plan_for(home, server, repo, crds, "staging")
    assert [a.path for a in dev.artifacts] == [a.path for a in staging.artifacts]
    assert run_store(home, dev, tls).returncode == 0
    asked = len(server.requests)
    done = run_store(home, staging, tls)
    assert done.returncode == 0, done.stderr
    assert len(server.requests) == asked
    assert Path(dev.record).is_file() and Path(staging.record).is_file()


# --- refusals ---------------------------------------------------------------------------------------------


def test_a_tampered_archive_is_refused_naming_both_digests(tmp_path, server, repo, tls):
    home = home_of(tmp_path)
    plan = plan_for(home, server, repo)
    assert run_store(home, plan, tls).returncode == 0
    cilium = next(a for a in plan.artifacts if a.chart == "cilium")
    genuine = sha256(Path(cilium.path).read_bytes())
    Path(cilium.path).write_bytes(repo.archives[("metallb", "0.16.1")])  # swapped for another chart
    done = run_store(home, plan, tls)
    assert done.returncode == 1
    assert genuine in done.stderr and sha256(repo.archives[("metallb", "0.16.1")]) in done.stderr
    assert cilium.path in done.stderr and "Delete it and " in done.stderr and "Traceback" not in done.stderr
    assert Path(cilium.path).read_bytes() == repo.archives[("metallb", "0.16.1")]  # refused, not replaced
    # The program's read-only check refuses it too, before anything is created.
    status = store.inspect(cilium)
    assert status.state == "changed" and genuine in status.problem


def test_a_tampered_pinned_file_is_refused_naming_both_digests(tmp_path, server, repo, crds, tls):
    home = home_of(tmp_path)
    plan = plan_for(home, server, repo, crds)
    assert run_store(home, plan, tls).returncode == 0
    crd = next(a for a in plan.artifacts if a.kind == store.CRD)
    Path(crd.path).write_bytes(b"kind: Evil\n")
    done = run_store(home, plan, tls)
    assert done.returncode == 1
    assert crd.sha256 in done.stderr and sha256(b"kind: Evil\n") in done.stderr


def test_an_archive_that_is_not_what_the_index_lists_is_refused_and_not_kept(tmp_path, server, repo, tls):
    repo.add("cilium", "1.20.0", listed_digest="ab" * 32)
    home = home_of(tmp_path)
    plan = plan_for(home, server, repo, charts=(("cilium", "1.20.0"),))
    done = run_store(home, plan, tls)
    assert done.returncode == 1
    assert "ab" * 32 in done.stderr and sha256(repo.archives[("cilium", "1.20.0")]) in done.stderr
    assert not [f for f in files_under(home / ".kind-registry-cache") if "/charts/" in f or f.startswith("charts/")]


def test_a_republished_chart_is_refused_against_the_first_record(tmp_path, server, repo, tls):
    home = home_of(tmp_path)
    plan = plan_for(home, server, repo, charts=(("cilium", "1.20.0"),))
    assert run_store(home, plan, tls).returncode == 0
    cilium = next(a for a in plan.artifacts if a.chart == "cilium")
    first = sha256(Path(cilium.path).read_bytes())
    Path(cilium.path).unlink()
    republished = repo.add("cilium", "1.20.0", note="republished")
    done = run_store(home, plan, tls)
    assert done.returncode == 1
    assert first in done.stderr and sha256(republished) in done.stderr and "republished" in done.stderr
    assert not Path(cilium.path).exists()


def test_an_archive_without_its_record_is_checked_against_the_index_once(tmp_path, server, repo, tls):
    home = home_of(tmp_path)
    plan = plan_for(home, server, repo, charts=(("cilium", "1.20.0"),))
    cilium = next(a for a in plan.artifacts if a.chart == "cilium")
    Path(cilium.path).parent.mkdir(parents=True)
    Path(cilium.path).write_bytes(repo.archives[("cilium", "1.20.0")])
    assert store.inspect(cilium).state == "unrecorded"
    assert run_store(home, plan, tls).returncode == 0
    assert "/charts/cilium-1.20.0.tgz" not in server.paths() and "/charts/index.yaml" in server.paths()
    assert store.inspect(cilium).ok


@pytest.mark.parametrize("failure", ["http-500", "unreachable", "not-in-index"])
def test_a_failed_download_leaves_nothing_and_names_the_url_and_the_setting(tmp_path, server, repo, tls, failure):
    home = home_of(tmp_path)
    plan = plan_for(home, server, repo, charts=(("cilium", "1.20.0"),))
    chart = next(a for a in plan.artifacts if a.chart == "cilium")
    assert run_store(home, store.StorePlan(owner=plan.owner, artifacts=plan.artifacts[:1]), tls).returncode == 0
    if failure == "http-500":
        server.serve("/charts/cilium-1.20.0.tgz", b"oops", status=500)
        url = f"{repo.url}cilium-1.20.0.tgz"
    elif failure == "unreachable":
        server.stop()
        url = f"{repo.url}index.yaml"
    else:
        plan = plan_for(home, server, repo, charts=(("cilium", "9.9.9"),))
        chart = next(a for a in plan.artifacts if a.chart == "cilium")
        url = f"{repo.url}index.yaml"
    done = run_store(home, plan, tls)
    assert done.returncode == 1
    assert url in done.stderr and "kind-registry-cache:addons.cilium.repository" in done.stderr
    assert "Traceback" not in done.stderr
    assert not Path(chart.path).parent.exists() or list(Path(chart.path).parent.iterdir()) == []
    assert not Path(plan.record).exists()


def test_only_the_store_is_written(tmp_path, server, repo, tls):
    home = home_of(tmp_path)
    plan = plan_for(home, server, repo, charts=())
    outside = store.Artifact(kind=store.KIND, name="kind", path=str(tmp_path / "elsewhere" / "kind"),
                             url=f"{server.base}/kind/kind-linux-amd64", setting="-", sha256=sha256(FAKE_KIND))
    done = run_store(home, store.StorePlan(owner=plan.owner, artifacts=(outside,)), tls)
    assert done.returncode == 2 and "refusing to write" in done.stderr
    assert not (tmp_path / "elsewhere").exists() and server.requests == []


def test_a_symlinked_store_folder_is_refused_and_its_target_untouched(tmp_path, server, repo, tls):
    home = home_of(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (home / ".kind-registry-cache" / "charts").symlink_to(victim)
    done = run_store(home, plan_for(home, server, repo, charts=(("cilium", "1.20.0"),)), tls)
    assert done.returncode == 1 and "is a symlink" in done.stderr
    assert list(victim.iterdir()) == []


NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root (the test tiers run as root)")
@pytest.mark.parametrize("case", ["foreign-file", "foreign-folder", "world-writable-folder"])
def test_another_users_file_or_folder_is_neither_used_nor_replaced(tmp_path, server, repo, tls, case):
    """Issue #18 class 1, for every artifact: a chart (installed with the user's rights) in a folder someone else
    could change, or a file that is not the user's, is refused before anything is downloaded, read or replaced."""
    home = home_of(tmp_path)
    plan = plan_for(home, server, repo, charts=(("cilium", "1.20.0"),))
    cilium = next(a for a in plan.artifacts if a.chart == "cilium")
    assert run_store(home, plan, tls).returncode == 0
    asked = len(server.requests)
    folder = Path(cilium.path).parent
    if case == "foreign-file":
        os.chown(cilium.path, NOBODY, NOBODY)
    elif case == "foreign-folder":
        os.chown(folder, NOBODY, NOBODY)
    else:
        folder.chmod(0o777)
    before = Path(cilium.path).read_bytes()
    done = run_store(home, plan, tls)
    assert done.returncode == 1, done.stderr
    assert "owned by user id 65534" in done.stderr or "writable by other users" in done.stderr
    assert "Traceback" not in done.stderr
    assert Path(cilium.path).read_bytes() == before and len(server.requests) == asked


# --- oci:// ------------------------------------------------------------------------------------------------


def test_an_oci_chart_is_pulled_anonymously_checked_against_its_layer_digest_and_kept(tmp_path, tls):
    registry = OciRegistry(Server(tls.server_context))
    try:
        data, _ = registry.push("acme/charts", "metallb", "0.16.2")
        repository = f"oci://127.0.0.1:{registry.server.port}/acme/charts"
        home = home_of(tmp_path)
        chart = store.chart_artifact(str(home), "metallb", "0.16.2", repository, "kind-registry-cache:addons.metallb.repository")
        plan = store.StorePlan(owner="kind-registry-cache/dev", artifacts=(chart,))
        done = run_store(home, plan, tls)
        assert done.returncode == 0, done.stderr
        assert Path(chart.path).read_bytes() == data
        record = json.loads(Path(chart.record_path).read_text())
        assert record["sha256"] == sha256(data) and "chart layer in" in record["source"]
        # The token went to the registry, not to the CDN it redirected the blob to.
        cdn = [r for r in registry.server.requests if r.path.startswith("/cdn/")]
        assert cdn and all(r.authorization is None for r in cdn)
        asked = len(registry.server.requests)
        assert run_store(home, plan, tls).returncode == 0
        assert len(registry.server.requests) == asked
    finally:
        registry.server.stop()


def test_an_oci_manifest_whose_layer_is_not_the_blob_is_refused(tmp_path, tls):
    registry = OciRegistry(Server(tls.server_context))
    try:
        data, _ = registry.push("acme/charts", "metallb", "0.16.2")
        registry.server.serve(f"/cdn/{sha256(data)}", data + b"extra")
        repository = f"oci://127.0.0.1:{registry.server.port}/acme/charts"
        home = home_of(tmp_path)
        chart = store.chart_artifact(str(home), "metallb", "0.16.2", repository, "kind-registry-cache:addons.metallb.repository")
        done = run_store(home, store.StorePlan(owner="kind-registry-cache/dev", artifacts=(chart,)), tls)
        assert done.returncode == 1
        assert sha256(data) in done.stderr and sha256(data + b"extra") in done.stderr
        assert not Path(chart.path).exists() and not Path(chart.record_path).exists()
    finally:
        registry.server.stop()


# --- the pure parts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "ref", "expected"),
    [
        ("https://helm.cilium.io/", "cilium-1.20.0.tgz", "https://helm.cilium.io/cilium-1.20.0.tgz"),
        ("https://metallb.github.io/metallb", "metallb-0.16.1.tgz", "https://metallb.github.io/metallb/metallb-0.16.1.tgz"),
        ("https://x.example/charts?token=1", "a/b-1.tgz", "https://x.example/charts/a/b-1.tgz?token=1"),
        ("https://x.example/charts", "https://cdn.example/b-1.tgz", "https://cdn.example/b-1.tgz"),
    ],
)
def test_chart_urls_resolve_as_helm_resolves_them(base, ref, expected):
    assert store_command.resolve_reference(base, ref) == expected


def test_distinct_repositories_get_distinct_folders():
    keys = {store.repository_key(u) for u in ("https://a.example/charts", "https://a.example/charts/", "oci://a.example/charts",
                                              "https://a.example/charts2")}
    assert len(keys) == 3
    assert store.repository_key("https://helm.cilium.io/").startswith("helm.cilium.io-")


@pytest.mark.parametrize(("value", "expected"), [("sha256:" + "A" * 64, "a" * 64), ("b" * 64, "b" * 64), ("md5:x", None), (None, None)])
def test_digests_are_read_as_helm_writes_them(value, expected):
    assert store.normalize_digest(value) == expected


def test_a_repository_urls_userinfo_shows_in_no_path_and_no_message(tmp_path):
    """Issue #18 class 5 for the store: a repository typed with a login (``https://user:token@host/``) names its
    folder by host and path only, and a refusal that quotes the URL shows no userinfo."""
    secret = "s3cret/?#tok"
    url = f"https://robot:{secret}@charts.example.com:8443/stable"
    artifact = store.chart_artifact(str(tmp_path), "cilium", "1.20.0", url, "kind-registry-cache:addons.cilium.repository")
    assert "s3cret" not in artifact.path and "robot" not in artifact.path
    assert "charts.example.com-8443-stable-" in artifact.path
    assert store.repository_key(url) != store.repository_key("https://charts.example.com:8443/stable")
    error = store_command._failed(artifact, f"{url}/index.yaml", OSError("connection refused"))
    assert "s3cret" not in str(error) and "robot" not in str(error) and "charts.example.com:8443/stable/index.yaml" in str(error)

