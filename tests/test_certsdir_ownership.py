"""Class 2 of issue #18: a certs folder is judged by who owns it and who can write it, and by where it resolves.

The program's read-only check (krc.config.certsdir, run in preview) and the scripts' own check when they run
(krc.render.certs) both refuse; the sandbox tests run the real scripts as root against folders of another user
(uid 65534), world- and group-writable folders, symlinked parents and system folders in disguise, and compare
every file before and after.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from krc import config as settings
from krc.config import certsdir
from test_certsdir import OWNER, OTHER, Certs, files, snapshot

HOME = "/home/dev"
NOBODY = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root (the test tiers run as root)")


def tree(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every path under ``root`` -> (content or kind, owner uid, mode): a snapshot that sees ownership too."""
    result = {}
    for path, content in snapshot(root).items():
        info = os.lstat(root / path)
        result[path] = (content, info.st_uid, stat.S_IMODE(info.st_mode))
    return result


# --- by the text -----------------------------------------------------------------------------------------------


def spelled(folder: str, draw_case: list[bool], slashes: list[int]) -> str:
    """``folder`` with its letters' case flipped where ``draw_case`` says and each '/' repeated."""
    chars = [c.swapcase() if flip and c.isalpha() else c for c, flip in zip(folder, draw_case + [False] * len(folder))]
    out = "".join(c * (1 + slashes[i % len(slashes)]) if c == "/" else c for i, c in enumerate(chars))
    return out


@hsettings(max_examples=200, deadline=None)
@given(
    system=st.sampled_from(certsdir.SYSTEM_FOLDERS),
    tail=st.lists(st.from_regex(r"[a-zA-Z0-9_-]{1,12}", fullmatch=True), min_size=1, max_size=3),
    flips=st.lists(st.booleans(), max_size=30),
    slashes=st.lists(st.integers(0, 3), min_size=1, max_size=5),
)
def test_a_system_folder_in_any_spelling_is_refused(system, tail, flips, slashes):
    raw = spelled(system + "/" + "/".join(tail), flips, slashes)
    with pytest.raises(settings.SettingsError) as error:
        settings.parse(project="kind-registry-cache", stack="dev", home=HOME, certs_dir=raw)
    assert any(p.startswith("kind-registry-cache:certsDir: ") and "system folder" in p for p in error.value.problems)


@pytest.mark.parametrize("raw", ["//etc/containerd/certs.d", "/ETC/containerd", "///usr//local/certs", "/Var/lib/x", "//home//dev"])
def test_lookalike_spellings_of_system_and_home_folders_are_refused(raw):
    with pytest.raises(settings.SettingsError):
        settings.parse(project="kind-registry-cache", stack="dev", home=HOME, certs_dir=raw)


def test_a_folder_inside_a_home_under_a_system_folder_is_the_users():
    """Fedora Silverblue's homes are /var/home/<user>; a CI user's may be /var/lib/jenkins."""
    s = settings.parse(project="kind-registry-cache", stack="dev", home="/var/home/dev")
    assert s.certs_dir == "/var/home/dev/.kind-registry-cache/dev/certs.d"


def test_the_programs_own_files_are_never_a_certs_folder():
    for raw in ("~/.kind-registry-cache/dev", "~/.kind-registry-cache", "~/.kind-registry-cache/bin", "~/.kind-registry-cache/state"):
        with pytest.raises(settings.SettingsError) as error:
            settings.parse(project="kind-registry-cache", stack="dev", home=HOME, certs_dir=raw)
        assert "certsDir" in error.value.problems[0]
    (problem,) = _problems(certs_dir="~/.kind-registry-cache/dev/kind-dev.generation")
    assert "the cluster's record" in problem


def test_a_path_too_long_to_write_is_refused():
    (problem,) = _problems(certs_dir="~/" + "/".join(["d" * 200] * 20))
    assert "too long" in problem
    (problem,) = _problems(certs_dir="~/" + "n" * 256)
    assert "too long" in problem


def _problems(**raw):
    with pytest.raises(settings.SettingsError) as error:
        settings.parse(project="kind-registry-cache", stack="dev", home=HOME, **raw)
    return error.value.problems


# --- by the file system: the program's check and the scripts' --------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Path:
    root = tmp_path / "world"
    root.mkdir()
    return root


def refused_everywhere(folder: Path, root: Path, says: str) -> None:
    """The program refuses, the create script refuses, the delete script leaves it: nothing under ``root`` changes."""
    before = tree(root)
    problem = certsdir.ownership_problem(str(folder), OWNER, home=str(root))
    assert problem is not None and says in problem, problem
    certs = Certs(folder)
    result = certs.up(files("docker.io"))
    assert result.returncode != 0, result.stdout
    certs.hosts = ["docker.io"]
    certs.stdout = "owned docker.io\n"
    assert certs.destroy().returncode == 0
    assert tree(root) == before


@needs_root
def test_another_users_folder_with_a_forged_owner_file_is_refused(world):
    """The issue's case: another local user pre-made the folder and wrote our owner line into it."""
    folder = world / "certs.d"
    (folder / "docker.io").mkdir(parents=True)
    (folder / certsdir.OWNER_FILE).write_text(certsdir.owner_line(OWNER) + "\n")
    (folder / "docker.io" / "hosts.toml").write_text('server = "https://evil.example"\n')
    for path in (folder, folder / "docker.io", folder / certsdir.OWNER_FILE, folder / "docker.io" / "hosts.toml"):
        os.chown(path, NOBODY, NOBODY)
    refused_everywhere(folder, world, "owned by user id 65534")


@needs_root
def test_a_folder_of_ours_holding_another_users_file_is_refused(world):
    folder = world / "certs.d"
    assert Certs(folder).up(files("quay.io")).returncode == 0
    (folder / "docker.io").mkdir()
    os.chown(folder / "docker.io", NOBODY, NOBODY)
    problem = certsdir.ownership_problem(str(folder), OWNER, home=str(world))
    assert problem is not None and "docker.io" in problem


@needs_root
@pytest.mark.parametrize("mode", [0o777, 0o775])
def test_a_parent_others_can_write_is_refused(world, mode):
    """Under a folder another user owns or can write (not sticky), ours could be swapped for theirs."""
    shared = world / "shared"
    shared.mkdir()
    shared.chmod(mode)
    os.chown(shared, 0, NOBODY)
    refused_everywhere(shared / "kind" / "certs.d", world, "writable by other users")


@needs_root
def test_a_parent_owned_by_another_user_is_refused(world):
    theirs = world / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    refused_everywhere(theirs / "certs.d", world, "owned by user id 65534")


@needs_root
def test_a_world_writable_certs_folder_of_ours_is_refused(world):
    folder = world / "certs.d"
    assert Certs(folder).up(files("quay.io")).returncode == 0
    folder.chmod(0o777)
    refused_everywhere(folder, world, "writable by other users")


def test_a_sticky_world_writable_parent_like_tmp_is_fine(world):
    sticky = world / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    folder = sticky / "certs.d"
    assert certsdir.ownership_problem(str(folder), OWNER, home=str(world)) is None
    certs = Certs(folder)
    assert certs.up(files("docker.io")).returncode == 0
    assert certs.destroy().returncode == 0
    assert not folder.exists()


def test_a_symlinked_parent_is_judged_where_it_leads(world, tmp_path):
    """`<dir>/link/certs.d` with link -> /etc is /etc/certs.d: refused by the program and by the script."""
    (world / "link").symlink_to("/etc")
    folder = world / "link" / "kind-registry-cache-test-certs.d"
    problem = certsdir.ownership_problem(str(folder), OWNER, home=str(world))
    assert problem is not None and "/etc" in problem and "system folder" in problem
    result = Certs(folder).up(files("docker.io"))
    assert result.returncode != 0 and "system folder" in result.stderr
    assert not Path("/etc/kind-registry-cache-test-certs.d").exists()


def test_a_symlinked_parent_to_a_folder_of_ours_is_fine(world):
    (world / "real").mkdir()
    (world / "link").symlink_to(world / "real")
    folder = world / "link" / "certs.d"
    assert certsdir.ownership_problem(str(folder), OWNER, home=str(world)) is None
    certs = Certs(folder)
    assert certs.up(files("docker.io")).returncode == 0
    assert (world / "real" / "certs.d" / "docker.io" / "hosts.toml").exists()
    assert certs.destroy().returncode == 0


def test_a_folder_of_another_stack_is_still_refused_by_its_owner_file(world):
    folder = world / "certs.d"
    assert Certs(folder, owner=OTHER).up(files("docker.io")).returncode == 0
    assert "belongs to another stack" in certsdir.ownership_problem(str(folder), OWNER, home=str(world))


@needs_root
def test_a_folder_writable_by_your_own_private_group_is_fine(world):
    """User-private-group systems make homes 0775 with a group of the user alone: no one else can write."""
    folder = world / "mine"
    folder.mkdir()
    folder.chmod(0o775)
    os.chown(folder, os.geteuid(), os.getegid())
    assert certsdir.ownership_problem(str(folder / "certs.d"), OWNER, home=str(world)) is None


@needs_root
@hsettings(max_examples=25, deadline=None)
@given(
    uid=st.sampled_from([0, NOBODY]),
    mode=st.sampled_from([0o755, 0o775, 0o777, 0o1777, 0o700]),
    depth=st.integers(0, 2),
)
def test_ownership_property_refused_unless_no_one_else_can_write(tmp_path_factory, uid, mode, depth):
    """Over owners and modes of the folder above: accepted exactly when no one but root and us can write there."""
    root = tmp_path_factory.mktemp("prop")
    above = root / "above"
    above.mkdir()
    above.chmod(mode)
    os.chown(above, uid, NOBODY)  # a group of others: group write lets them in
    folder = above.joinpath(*["sub"] * depth, "certs.d")
    problem = certsdir.ownership_problem(str(folder), OWNER, home=str(root))
    others_can_write = uid != 0 or (mode & 0o002 and not mode & 0o1000) or (mode & 0o020 and not mode & 0o1000)
    assert (problem is None) == (not others_can_write), (oct(mode), uid, problem)
    before = tree(root)
    result = Certs(folder).up(files("docker.io"))
    assert (result.returncode == 0) == (problem is None), result.stderr
    if problem is not None:
        assert tree(root) == before
