"""The README's one-time set-up block, run as written in a sandbox HOME: afterwards `pulumi stack select --create`
finds the state folder Pulumi.yaml's ``backend.url`` names (issue #17, item 1).

Pulumi's file backend opens ``backend.url`` as a gocloud fileblob bucket and refuses a folder that does not exist:
pulumi/pulumi pkg/v3 v3.274.0 (the Go module nearest above our pinned 3.272.0; v3.259.0 is the same)
pkg/backend/diy/backend.go:283-287 (``blobmux.OpenBucket`` -> "unable to open ..."), and the CLI's own test
``TestLoginToNonExistingFolderFails`` (pkg/backend/diy/backend_test.go:741 there, :752 at v3.259.0). A leading ``~``
is expanded to the user's home folder (backend.go:656-667, ``user.Current().HomeDir``, which is ``$HOME`` on a
developer's machine; the sandbox below stands in for it).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import yaml

from harness import ROOT

README = ROOT / "README.md"
_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def setup_block() -> str:
    """The README's set-up block: the ``sh`` block that sets PULUMI_CONFIG_PASSPHRASE_FILE."""
    blocks = [b for b in _SH_BLOCK.findall(README.read_text()) if "PULUMI_CONFIG_PASSPHRASE_FILE" in b]
    assert len(blocks) == 1, "expected exactly one set-up block in README.md"
    return blocks[0]


def backend_folder(home: Path) -> Path:
    """The folder Pulumi.yaml's backend.url names, ``~`` expanded as the CLI does."""
    url = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["backend"]["url"]
    assert url.startswith("file://"), url
    path = url.removeprefix("file://").split("?", 1)[0]
    if path == "~" or path.startswith("~/"):
        path = str(home) + path[1:]
    return Path(path)


def run_setup(home: Path) -> subprocess.CompletedProcess:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(["sh", "-c", setup_block()], env=env, capture_output=True, text=True, cwd=home)


def test_readme_setup_creates_the_backend_folder_of_pulumi_yaml(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert not backend_folder(home).exists()
    result = run_setup(home)
    assert result.returncode == 0, result.stderr
    assert backend_folder(home).is_dir(), f"{backend_folder(home)} missing: `pulumi stack select --create` would fail"


def test_readme_setup_writes_a_private_passphrase_once(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert run_setup(home).returncode == 0
    passphrase = home / ".kind-registry-cache" / "passphrase"
    first = passphrase.read_text()
    assert len(first.strip()) == 48
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600, "the passphrase decrypts the stack's secrets"
    # Run again (a second machine set-up, or the README followed twice): the passphrase is kept.
    assert run_setup(home).returncode == 0
    assert passphrase.read_text() == first
