"""The certs folder: which paths are refused, and the create/update/delete scripts run for real in a sandbox HOME."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from krc import config as settings
from krc.config import certsdir
from krc.render import certs

OWNER = "kind-registry-cache/dev"
OTHER = "kind-registry-cache/staging"


class Certs:
    """One certs Command as pulumi-command runs it: create, updates with the previous stdout, delete."""

    def __init__(self, folder: Path, owner: str = OWNER, legacy_ok: bool = False) -> None:
        self.folder, self.owner, self.legacy_ok = folder, owner, legacy_ok
        self.stdout: str | None = None
        self.hosts: list[str] = []

    def up(self, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
        script = certs.write_script(str(self.folder), self.owner, files, legacy_ok=self.legacy_ok)
        result = run(script, self.stdout)
        if result.returncode == 0:
            self.stdout = result.stdout
            self.hosts = sorted({p.split("/")[0] for p in files})
        return result

    def destroy(self) -> subprocess.CompletedProcess[str]:
        return run(certs.remove_script(str(self.folder), self.owner, self.hosts), self.stdout)


def run(script: str, previous_stdout: str | None = None) -> subprocess.CompletedProcess[str]:
    assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0
    env = {"PATH": os.environ["PATH"]}
    if previous_stdout is not None:
        env["PULUMI_COMMAND_STDOUT"] = previous_stdout.rstrip("\n")
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (links not followed) -> its content, link target or 'dir'."""
    result = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            result[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            result[key] = "dir"
        else:
            result[key] = path.read_text()
    return result


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Path]:
    """A HOME with the user's own files, another stack's certs, and a folder outside HOME."""
    home = tmp_path / "home"
    (home / "notes").mkdir(parents=True)
    (home / "notes" / "todo.txt").write_text("mine")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("private key")
    outside = tmp_path / "outside"
    (outside / "docker.io").mkdir(parents=True)
    (outside / "docker.io" / "hosts.toml").write_text("not yours")
    (outside / "precious.txt").write_text("keep")
    return {"home": home, "outside": outside, "root": tmp_path}


def files(*hosts: str, tag: str = "") -> dict[str, str]:
    return {f"{h}/hosts.toml": f'server = "https://{h}"{tag}\n' for h in hosts}


# --- the scripts --------------------------------------------------------------------------


def test_create_update_delete_touch_only_recorded_files(sandbox):
    folder = sandbox["home"] / ".kind-registry-cache" / "dev" / "certs.d"
    certs = Certs(folder)
    assert certs.up(files("a.io", "b.io")).returncode == 0
    assert (folder / certsdir.OWNER_FILE).read_text() == "owner=kind-registry-cache/dev\n"
    inode = folder.stat().st_ino
    (folder / "user-notes").mkdir()
    (folder / "user-notes" / "hosts.toml").write_text("the user's own")
    (folder / "b.io" / "extra.pem").write_text("the user's cert")

    result = certs.up(files("b.io", "c.io", tag="#2"))
    assert result.returncode == 0, result.stderr
    assert folder.stat().st_ino == inode, "the mounted folder itself must survive an update"
    assert not (folder / "a.io").exists(), "a removed mirror's recorded file and its empty folder go"
    assert (folder / "b.io" / "hosts.toml").read_text().endswith("#2\n")
    assert (folder / "c.io" / "hosts.toml").exists()
    assert (folder / "user-notes" / "hosts.toml").read_text() == "the user's own", "never recorded, never removed"
    assert not list(folder.rglob("*.tmp"))

    result = certs.destroy()
    assert result.returncode == 0
    assert folder.is_dir(), "a folder holding files we did not write stays"
    assert snapshot(folder) == {
        certsdir.OWNER_FILE: "owner=kind-registry-cache/dev\n",
        "b.io": "dir",
        "b.io/extra.pem": "the user's cert",
        "user-notes": "dir",
        "user-notes/hosts.toml": "the user's own",
    }
    assert "kept" in result.stderr

    # Once the user's files are gone, the next destroy of a new stack removes the folder entirely.
    (folder / "b.io" / "extra.pem").unlink()
    (folder / "user-notes" / "hosts.toml").unlink()
    (folder / "user-notes").rmdir()
    again = Certs(folder)
    assert again.up(files("a.io", "b.io")).returncode == 0, "a folder with this stack's owner file is reused"
    assert again.destroy().returncode == 0
    assert not folder.exists()
    assert (sandbox["home"] / "notes" / "todo.txt").read_text() == "mine"


@pytest.mark.parametrize("target", ["home", "outside"])
def test_existing_foreign_folder_is_refused_and_left_untouched(sandbox, target):
    before = snapshot(sandbox["root"])
    certs = Certs(sandbox[target])
    result = certs.up(files("docker.io"))
    assert result.returncode != 0
    assert "not created by this stack" in result.stderr
    assert certs.destroy().returncode == 0
    assert snapshot(sandbox["root"]) == before


def test_another_stacks_folder_is_refused_and_survives_our_destroy(sandbox):
    folder = sandbox["home"] / "shared-certs"
    theirs = Certs(folder, owner=OTHER)
    assert theirs.up(files("docker.io", "quay.io")).returncode == 0
    before = snapshot(sandbox["root"])

    ours = Certs(folder)
    result = ours.up(files("docker.io"))
    assert result.returncode != 0 and "not created by this stack" in result.stderr
    ours.hosts = ["docker.io", "quay.io"]  # even a delete that names their hosts
    assert ours.destroy().returncode == 0
    assert snapshot(sandbox["root"]) == before


def test_symlinks_are_never_followed(sandbox):
    folder = sandbox["home"] / "certs.d"
    certs = Certs(folder)
    assert certs.up(files("a.io")).returncode == 0
    # A symlink planted where a recorded host folder was, pointing at a folder outside.
    (folder / "a.io" / "hosts.toml").unlink()
    (folder / "a.io").rmdir()
    (folder / "a.io").symlink_to(sandbox["outside"] / "docker.io")
    before = snapshot(sandbox["root"])
    assert certs.up(files("b.io")).returncode == 0, "removing a.io skips the link"
    assert certs.destroy().returncode == 0
    assert (sandbox["outside"] / "docker.io" / "hosts.toml").read_text() == "not yours"
    assert (folder / "a.io").is_symlink()
    del before

    # Writing through a planted link is refused.
    linked = Certs(sandbox["home"] / "certs2")
    assert linked.up(files("c.io")).returncode == 0
    (linked.folder / "c.io" / "hosts.toml").unlink()
    (linked.folder / "c.io").rmdir()
    (linked.folder / "c.io").symlink_to(sandbox["outside"])
    result = linked.up(files("c.io"))
    assert result.returncode != 0 and "symbolic link" in result.stderr
    assert snapshot(sandbox["outside"]) == {"docker.io": "dir", "docker.io/hosts.toml": "not yours", "precious.txt": "keep"}

    # The certs folder itself a link: refused, and destroy leaves it and its target alone.
    link = sandbox["home"] / "certs-link"
    link.symlink_to(sandbox["outside"])
    via_link = Certs(link)
    assert via_link.up(files("docker.io")).returncode != 0
    via_link.hosts = ["docker.io"]
    assert via_link.destroy().returncode == 0
    assert (sandbox["outside"] / "docker.io" / "hosts.toml").read_text() == "not yours"


def test_recorded_stdout_cannot_name_paths_outside_the_folder(sandbox):
    folder = sandbox["home"] / "certs.d"
    certs = Certs(folder)
    assert certs.up(files("a.io")).returncode == 0
    escape = os.path.relpath(sandbox["outside"], folder)
    certs.stdout += f"owned {escape}\nowned ../outside\nowned /\nowned .\n"
    assert certs.up(files("a.io")).returncode == 0
    assert (sandbox["outside"] / "docker.io" / "hosts.toml").exists()
    assert (sandbox["outside"] / "precious.txt").exists()


def test_legacy_marker_is_adopted_only_when_allowed(sandbox):
    folder = sandbox["home"] / ".kind-registry-cache" / "dev" / "certs.d"
    folder.mkdir(parents=True)
    (folder / certsdir.LEGACY_MARKER).write_text("")
    assert Certs(folder).up(files("a.io")).returncode != 0
    adopted = Certs(folder, legacy_ok=True)
    assert adopted.up(files("a.io")).returncode == 0
    assert (folder / certsdir.OWNER_FILE).read_text() == "owner=kind-registry-cache/dev\n"
    assert not (folder / certsdir.LEGACY_MARKER).exists()
    assert adopted.destroy().returncode == 0
    assert not folder.exists()


def test_paths_with_spaces_and_quotes(tmp_path):
    folder = tmp_path / "with space" / "it's $HOME" / "certs.d"
    certs = Certs(folder)
    assert certs.up(files("a.io")).returncode == 0
    assert (folder / "a.io" / "hosts.toml").read_text() == 'server = "https://a.io"\n'
    assert certs.destroy().returncode == 0
    assert not folder.exists()


def test_only_host_folders_with_hosts_toml_can_be_written():
    with pytest.raises(ValueError):
        certs.write_script("/x/certs", OWNER, {"../evil/hosts.toml": ""})
    with pytest.raises(ValueError):
        certs.write_script("/x/certs", OWNER, {"a.io/other": ""})


# --- which folders the settings accept ---------------------------------------------------

HOME = "/home/dev"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("~", id="home"),
        pytest.param("~/", id="home-slash"),
        pytest.param("/", id="root"),
        pytest.param("~/..", id="above-home"),
        pytest.param("/home", id="parent-of-home"),
        pytest.param("/home/dev/../other", id="dotdot"),
        pytest.param("/etc/containerd/certs.d", id="system-etc"),
        pytest.param("/usr/local/certs", id="system-usr"),
        pytest.param("/var/lib/certs", id="system-var"),
        pytest.param("/tmp", id="top-level"),
        pytest.param("relative/certs", id="relative"),
        pytest.param("~/certs\n", id="newline"),
        pytest.param("~other/certs", id="other-users-home"),
    ],
)
def test_dangerous_certs_dirs_are_refused(raw):
    with pytest.raises(settings.SettingsError) as error:
        settings.parse(project="kind-registry-cache", stack="dev", home=HOME, certs_dir=raw)
    assert error.value.problems[0].startswith("kind-registry-cache:certsDir: ")


def test_default_and_own_folders_are_accepted():
    s = settings.parse(project="kind-registry-cache", stack="dev", home=HOME)
    assert (s.certs_dir, s.certs_dir_is_default) == ("/home/dev/.kind-registry-cache/dev/certs.d", True)
    s = settings.parse(project="kind-registry-cache", stack="dev", home=HOME, certs_dir="~/kind/certs")
    assert (s.certs_dir, s.certs_dir_is_default) == ("/home/dev/kind/certs", False)


def test_ownership_of_existing_folders(sandbox):
    home = sandbox["home"]
    assert certsdir.ownership_problem(str(home / "new" / "certs"), OWNER) is None
    assert "not created by this stack" in certsdir.ownership_problem(str(home / "notes"), OWNER)
    assert "not a folder" in certsdir.ownership_problem(str(home / "notes" / "todo.txt"), OWNER)
    (home / "link").symlink_to(sandbox["outside"])
    assert "symbolic link" in certsdir.ownership_problem(str(home / "link"), OWNER)
    folder = home / "certs"
    Certs(folder, owner=OTHER).up(files("a.io"))
    assert "belongs to another stack (kind-registry-cache/staging)" in certsdir.ownership_problem(str(folder), OWNER)
    assert certsdir.ownership_problem(str(folder), OTHER) is None
