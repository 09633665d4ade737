"""kind provisioning: the pinned table, the verified download from a fake release server on loopback, and
the program's choice between an installed kind and the download."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from krc import preflight, versions
from krc.commands import kind
from krc.preflight import kindrelease
from krc.render import kindconfig
from harness import ROOT, run_program

FAKE_KIND = b"#!/bin/sh\necho \"fake-kind $*\"\n"
TAMPERED = b"#!/bin/sh\necho evil\n"


class _Server:
    """A tiny release server on 127.0.0.1: serves ``files`` by name and counts requests."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.requests.append(self.path)
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{versions.KIND_VERSION}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = _Server({f"{versions.KIND_VERSION}/kind-linux-amd64": FAKE_KIND, f"{versions.KIND_VERSION}/kind-linux-arm64": TAMPERED})
    yield srv
    srv.close()


def fake_table() -> dict[tuple[str, str], str]:
    """The pins for the fake files: the genuine file's digest for both, so arm64 serves a tampered file."""
    digest = hashlib.sha256(FAKE_KIND).hexdigest()
    return {("linux", "amd64"): digest, ("linux", "arm64"): digest}


# --- the real pins ------------------------------------------------------------------------------------------


def test_real_table_pins_a_sha256_for_linux_and_darwin_on_amd64_and_arm64():
    assert set(versions.KIND_SHA256) == {(o, a) for o in ("linux", "darwin") for a in ("amd64", "arm64")}
    for digest in versions.KIND_SHA256.values():
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert len(set(versions.KIND_SHA256.values())) == 4
    assert versions.KIND_VERSION == "v0.32.0"


def test_real_asset_names_follow_kinds_release_names():
    target = kindrelease.asset("/home/dev", os_arch=("darwin", "arm64"))
    assert target.url == "https://github.com/kubernetes-sigs/kind/releases/download/v0.32.0/kind-darwin-arm64"
    assert target.path == "/home/dev/.kind-registry-cache/bin/kind-v0.32.0-darwin-arm64"
    assert target.sha256 == versions.KIND_SHA256[("darwin", "arm64")]


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [
        pytest.param("Linux", "x86_64", ("linux", "amd64"), id="linux-x86_64"),
        pytest.param("Linux", "aarch64", ("linux", "arm64"), id="linux-aarch64"),
        pytest.param("Darwin", "arm64", ("darwin", "arm64"), id="mac-apple-silicon"),
        pytest.param("Windows", "AMD64", ("windows", "amd64"), id="windows"),
    ],
)
def test_machine_platform_uses_kinds_names(system, machine, expected):
    assert kindrelease.machine_platform(system, machine) == expected


def test_a_platform_without_a_pin_is_refused_with_the_fix():
    with pytest.raises(kindrelease.KindReleaseError) as info:
        kindrelease.asset("/home/dev", os_arch=("linux", "riscv64"))
    assert "linux/riscv64" in str(info.value) and "install kind v0.27 or newer yourself" in str(info.value)


# --- the download ------------------------------------------------------------------------------------------


def test_good_checksum_is_downloaded_once_and_used(tmp_path, server):
    target = kindrelease.asset(str(tmp_path), base_url=server.url, os_arch=("linux", "amd64"), table=fake_table())
    assert kind.ensure(target) == "downloaded"
    assert Path(target.path).read_bytes() == FAKE_KIND
    assert os.access(target.path, os.X_OK)
    assert kind.ensure(target) == "present"
    assert server.requests == [f"/{versions.KIND_VERSION}/kind-linux-amd64"]
    assert sorted(p.name for p in Path(target.path).parent.iterdir()) == ["kind-v0.32.0-linux-amd64"]


def test_bad_checksum_is_refused_naming_both_digests_and_leaves_no_file(tmp_path, server):
    target = kindrelease.asset(str(tmp_path), base_url=server.url, os_arch=("linux", "arm64"), table=fake_table())
    with pytest.raises(kindrelease.KindReleaseError) as info:
        kind.ensure(target)
    message = str(info.value)
    assert hashlib.sha256(TAMPERED).hexdigest() in message
    assert hashlib.sha256(FAKE_KIND).hexdigest() in message
    assert list(Path(target.path).parent.iterdir()) == []


def test_a_damaged_copy_is_fetched_again(tmp_path, server):
    target = kindrelease.asset(str(tmp_path), base_url=server.url, os_arch=("linux", "amd64"), table=fake_table())
    Path(target.path).parent.mkdir(parents=True)
    Path(target.path).write_bytes(b"truncated")
    assert kind.ensure(target) == "downloaded"
    assert Path(target.path).read_bytes() == FAKE_KIND


def test_a_failed_download_leaves_no_file(tmp_path, server):
    target = kindrelease.asset(str(tmp_path), base_url=server.url, os_arch=("darwin", "amd64"), table={("darwin", "amd64"): "0" * 64})
    with pytest.raises(kindrelease.KindReleaseError) as info:
        kind.ensure(target)
    assert "404" in str(info.value)
    assert list(Path(target.path).parent.iterdir()) == []


def test_a_symlink_in_our_place_is_refused_and_its_target_untouched(tmp_path, server):
    target = kindrelease.asset(str(tmp_path), base_url=server.url, os_arch=("linux", "amd64"), table=fake_table())
    Path(target.path).parent.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    Path(target.path).symlink_to(victim)
    with pytest.raises(kindrelease.KindReleaseError, match="not a regular file"):
        kind.ensure(target)
    assert victim.read_bytes() == b"keep"
    assert server.requests == []


def _cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "krc.commands.kind", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_cli_writes_only_under_the_programs_bin_folder(tmp_path, server):
    outside = tmp_path / "elsewhere" / "kind-v0.32.0-linux-amd64"
    result = _cli(tmp_path, "--path", str(outside), "--url", f"{server.url}/kind-linux-amd64", "--sha256", "0" * 64)
    assert result.returncode == 2 and "refusing to write" in result.stderr
    assert not outside.parent.exists() and server.requests == []


def test_cli_reports_a_mismatch_without_a_traceback(tmp_path, server):
    path = kindrelease.bin_dir(str(tmp_path)) / "kind-v0.32.0-linux-arm64"
    result = _cli(tmp_path, "--path", str(path), "--url", f"{server.url}/kind-linux-arm64", "--sha256", "a" * 64)
    assert result.returncode == 1
    assert result.stderr.startswith("kind-registry-cache: kind v0.32.0 downloaded from")
    assert "Traceback" not in result.stderr


# --- the program's choice, run as `up` would run it ---------------------------------------------------------


def _machine(tmp_path: Path, kind_version: str | None) -> dict[str, str]:
    """PATH with a fake docker and, if given, a fake installed kind of that version."""
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    (tools / "docker").write_text('#!/bin/sh\ncase "$1 $2" in "version --format") echo 28.2.2 ;; esac\n')
    if kind_version:
        (tools / "kind").write_text(f"#!/bin/sh\necho 'kind {kind_version} go1.24 linux/amd64'\n")
    for tool in tools.iterdir():
        tool.chmod(0o755)
    return {"PATH": f"{tools}:/usr/bin:/bin"}


@pytest.fixture
def up(tmp_path, server, monkeypatch):
    """Run the preflight script on a pretend machine, the program under mocks with its report, then the
    kind-binary Command's create as `pulumi up` would; return the recording."""

    def run(kind_version: str | None):
        env = _machine(tmp_path, kind_version)
        stdout = subprocess.run(["/bin/sh", "-c", preflight.SCRIPT], env=env, capture_output=True, text=True).stdout
        home = tmp_path / "home"
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv(kindrelease.BASE_URL_ENV, server.url)
        monkeypatch.setattr(kindrelease, "machine_platform", lambda *a: ("linux", "amd64"))
        monkeypatch.setitem(versions.KIND_SHA256, ("linux", "amd64"), fake_table()[("linux", "amd64")])
        rec = run_program("dev", preflight=stdout)
        for binary in [r for r in rec.resources if r.name == "kind-binary"]:
            subprocess.run(["/bin/sh", "-c", binary.inputs["create"]], cwd=binary.inputs["dir"], env={**os.environ}, check=True)
        return rec, home

    return run


def test_installed_kind_new_enough_is_used_and_nothing_is_downloaded(tmp_path, up, server):
    rec, home = up("v0.27.0")
    assert rec.named("kind-cluster").inputs["environment"]["KRC_KIND"] == str(tmp_path / "tools" / "kind")
    assert [r for r in rec.resources if r.name == "kind-binary"] == []
    assert server.requests == []
    assert not (home / ".kind-registry-cache").exists()


@pytest.mark.parametrize("installed", [pytest.param(None, id="no-kind"), pytest.param("v0.26.0", id="kind-too-old")])
def test_missing_or_old_kind_is_downloaded_by_up_and_the_cluster_waits_for_it(up, server, installed):
    rec, home = up(installed)
    binary = rec.named("kind-binary")
    cluster = rec.named("kind-cluster")
    path = home / ".kind-registry-cache" / "bin" / "kind-v0.32.0-linux-amd64"
    assert cluster.inputs["environment"]["KRC_KIND"] == str(path)
    assert binary.urn in cluster.dependencies
    assert f"--url {server.url}/kind-linux-amd64" in binary.inputs["create"]
    assert path.read_bytes() == FAKE_KIND
    assert server.requests == [f"/{versions.KIND_VERSION}/kind-linux-amd64"]
    # While it is there, nothing about the binary command is compared: no update, whatever the checkout's path.
    again, _ = up(installed)
    assert again.named("kind-binary").ignore_changes == ["create", "dir", "environment"]
    assert len(server.requests) == 1
    # Removed by hand since: the next `up` sees it missing and runs the binary command again (a fresh token,
    # nothing ignored), before the cluster commands that depend on it.
    path.unlink()
    healed, _ = up(installed)
    binary = healed.named("kind-binary")
    assert binary.ignore_changes == [] and binary.inputs["environment"]["KRC_KIND_FETCH"]
    assert binary.urn in healed.named("kind-cluster").dependencies
    assert path.read_bytes() == FAKE_KIND
    assert len(server.requests) == 2


@pytest.mark.parametrize("installed", [pytest.param(None, id="no-kind"), pytest.param("v0.26.0", id="kind-too-old")])
def test_the_cluster_scripts_never_fetch_kind_and_delete_with_any_kind(tmp_path, up, installed):
    """What runs on delete must not need the checkout or its virtualenv (the stored `dir` and `environment` are what
    pulumi-command runs a delete with): the scripts only run ``$KRC_KIND``. Deleting a cluster and reading its
    kubeconfig work with any kind, so a removed download falls back to the kind on PATH, else says what to do."""
    rec, home = up(installed)
    cluster = rec.named("kind-cluster")
    env = {**os.environ, **cluster.inputs["environment"], "KRC_CLUSTER_RECORD": str(tmp_path / "record")}
    assert not {"KRC_PYTHON", "KRC_KIND_URL", "KRC_KIND_SHA256"} & set(cluster.inputs["environment"])
    Path(cluster.inputs["environment"]["KRC_KIND"]).unlink()
    elsewhere = tmp_path / "not-the-checkout"
    elsewhere.mkdir()
    tools = tmp_path / "tools"
    for script in (cluster.inputs["delete"], kindconfig.kubeconfig_script("dev")):
        result = subprocess.run(["/bin/sh", "-c", script], cwd=elsewhere, env={**env, "PATH": f"{tools}:/usr/bin:/bin"},
                                capture_output=True, text=True)
        if installed:  # the old kind on PATH is enough to delete the cluster and read its kubeconfig
            assert result.returncode == 0, result.stderr
        else:
            assert result.returncode == 1
            assert "no kind is on PATH: install kind" in result.stderr
    created = subprocess.run(["/bin/sh", "-c", cluster.inputs["create"]], cwd=elsewhere, env=env, input="",
                             capture_output=True, text=True)
    assert created.returncode == 1
    assert "is missing; run 'pulumi up' again" in created.stderr
