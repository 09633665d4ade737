"""Fixtures of the engine tier: the real Pulumi CLI (built by tests/gotools.py), a copy of the checkout in a
temporary folder with a local file backend, and a stack made and configured by that CLI."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import gotools

ROOT = Path(__file__).resolve().parents[2]
INLINE = Path(__file__).resolve().parent / "inline.py"
#: What the tier's CI log says ran (filled by the session fixture).
_ran: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engine: the real Pulumi CLI runs the program (needs tests/gotools.py's pulumi build)")
    # Also marked integration (needs what tests/integration/setup.sh builds), so `-m "not integration"` leaves it out.
    config.addinivalue_line(
        "markers", "integration: runs real dockerd/registry/containerd (needs root and tests/integration/setup.sh)")


@pytest.fixture(scope="session")
def pulumi_cli() -> Path:
    """The real CLI. Fails (never skips) when the setup did not build it or it changed since."""
    try:
        built = gotools.load(names=("pulumi",))
    except gotools.GoToolsError as error:
        pytest.fail(str(error), pytrace=False)
    if "pulumi" not in built:
        pytest.fail(f"the Pulumi CLI is not built under {gotools.tools_dir()}: run tests/integration/setup.sh "
                    "as root (it runs python3 tests/gotools.py build)", pytrace=False)
    cli = built["pulumi"]
    version = subprocess.run([str(cli.path), "version"], capture_output=True, text=True, check=True).stdout.strip()
    from importlib.metadata import version as dist_version
    _ran.append(f"engine tier: pulumi CLI {version} ({cli.source}), Python SDK pulumi {dist_version('pulumi')}; "
                "resource plugins: none (docs/testing.md, 'The engine tier')")
    return cli.path


def pytest_terminal_summary(terminalreporter) -> None:
    for line in _ran[:1]:
        terminalreporter.write_line(line)


def checkout_files(root: Path = ROOT) -> list[str]:
    """The checkout's files as git sees them (tracked, and untracked ones .gitignore does not exclude)."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout
    return [name for name in listed.split("\0") if name and (root / name).is_file()]


@dataclass
class Project:
    """A copy of the checkout with its own Pulumi home, state folder and user home, all under one temp folder."""

    folder: Path
    base: Path
    env: dict[str, str]

    @property
    def state(self) -> Path:
        """The file backend: Pulumi.yaml's ``backend.url`` (``file://~/.kind-registry-cache/state``) under HOME."""
        return self.base / "home" / ".kind-registry-cache" / "state"

    def pulumi(self, *args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(["pulumi", *args], cwd=cwd or self.folder, env=self.env, capture_output=True,
                                text=True, timeout=300)
        if check and result.returncode != 0:
            pytest.fail(f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}",
                        pytrace=False)
        return result

    def run(self, operation: str, stack: str, program: Path | None = None, folder: Path | None = None,
            verbose: bool = False) -> subprocess.CompletedProcess:
        """``preview``/``up``/``destroy`` by the real engine (tests/engine/inline.py); never raises. ``verbose``:
        the engine's own logs at ``-v=9`` with debug output go to stderr too."""
        folder = folder or self.folder
        program = program or folder / "__main__.py"
        env = {**self.env, "KRC_ENGINE_VERBOSE": "1" if verbose else "0"}
        return subprocess.run([sys.executable, str(INLINE), str(folder), stack, operation, str(program)],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=600)

    def files(self) -> dict[str, int]:
        """Every file under the temp folder but the Pulumi home and the backend, with its size."""
        skip = (self.base / "pulumi-home", self.state)
        return {str(p.relative_to(self.base)): p.stat().st_size for p in self.base.rglob("*")
                if p.is_file() and not any(p.is_relative_to(s) for s in skip) and "__pycache__" not in p.parts}


def readme_setup_block(root: Path = ROOT) -> str:
    """The README's once-per-machine block (the first ``sh`` block under "Bring up the dev stack")."""
    text = (root / "README.md").read_text()
    section = text.split("## Bring up the dev stack", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def project(tmp_path: Path, pulumi_cli: Path) -> Iterator[Project]:
    base = tmp_path
    folder = base / "checkout"
    for name in checkout_files():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    bindir = base / "bin"
    bindir.mkdir()
    (bindir / "pulumi").symlink_to(pulumi_cli)  # the CLI alone on PATH: no other built program rides along
    for name in ("pulumi-home", "home"):
        (base / name).mkdir()
    home = base / "home"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PULUMI_", "DOCKER_"))}
    env.update({
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "PULUMI_HOME": str(base / "pulumi-home"),
        # Pulumi.yaml's backend, file://~/.kind-registry-cache/state, with ~ as this HOME: the CLI resolves ~ from
        # the user database, not HOME (pkg/v3 v3.274.0 backend/diy/backend.go lines 657-667), and the tests
        # must not write under the real user's home.
        "PULUMI_BACKEND_URL": f"file://{home}/.kind-registry-cache/state",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        # Nothing is downloaded: a missing plugin is an error, not a fetch from the internet.
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    # The README's set-up, as a user types it: the state folder and the passphrase file the CLI reads.
    setup = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_setup_block()], env=env, capture_output=True,
                           text=True, timeout=60)
    assert setup.returncode == 0, setup.stderr
    env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(home / ".kind-registry-cache" / "passphrase")
    yield Project(folder=folder, base=base, env=env)
