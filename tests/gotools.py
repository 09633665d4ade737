"""The Go programs the tests run, built from their Go modules at pinned versions: the one place they are pinned.

``python3 tests/gotools.py build`` (``tests/integration/setup.sh`` runs it as root) builds each program that is
missing or whose pin changed with ``go install <package>@<version>`` -- or, where upstream ``replace`` lines make
``go install`` refuse the module, with ``go build <package>`` inside a small pinned Go module of ours
(``tests/gomod/<name>/``: a ``go.mod`` that requires the upstream module at the pinned version, and its ``go.sum``;
no code) -- into a folder this file owns
(``KRC_GO_TOOLS_DIR``, default ``/var/cache/kind-registry-cache-tests/go``: ``bin/``, and the Go module and build
caches ``gomodcache/`` and ``gocache/``), and records what it built in ``bin/manifest.json``. A second run with the
same pins and the same Go finds every binary there with its recorded sha256 and builds nothing. Go's checksum
database (sum.golang.org, through the module proxy) verifies every module; nothing of this project's sources is
built, and nothing that ``fetch`` brought.

The tests read the binaries with :func:`load`, which re-checks each against its recorded sha256. Standard library
only: the setup runs it before the tests' virtualenv exists.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

DIR_ENV = "KRC_GO_TOOLS_DIR"
DEFAULT_DIR = Path("/var/cache/kind-registry-cache-tests/go")
MANIFEST = "manifest.json"

DISTRIBUTION = "github.com/distribution/distribution/v3"
CONTAINERD = "github.com/containerd/containerd/v2"
KIND = "sigs.k8s.io/kind"
PULUMI_PKG = "github.com/pulumi/pulumi/pkg/v3"
PULUMI_SDK = "github.com/pulumi/pulumi/sdk/v3"
#: Our own Go modules, one folder per program built through one (GoTool.gomod).
GOMOD_DIR = Path(__file__).resolve().parent / "gomod"

#: kind v0.32.0 builds its nodes' containerd with these tags (images/base/Dockerfile line 131, plus the
#: urfave_cli_no_docs that containerd v2.3.1's Makefile always adds). kind builds it with CGO_ENABLED=1 and links
#: glibc; we build it static (CGO_ENABLED=0) so the stand-in node needs no C library: the same Go code either way.
CONTAINERD_TAGS = ("no_aufs", "no_zfs", "no_btrfs", "no_devmapper", "urfave_cli_no_docs")


@dataclass(frozen=True)
class GoTool:
    """One program: its main package, the module it is in, and how that project's own release build links it."""

    name: str
    package: str
    module: str
    version: str
    tags: tuple[str, ...] = ()
    #: ``-ldflags`` of the project's release build; ``{version}`` (the tag), ``{bare}`` (the tag without its
    #: ``v``) and ``{revision}`` (the tag's commit, from the module proxy's origin record) are filled in.
    ldflags: str = "-s -w"
    why: str = ""
    #: The folder under tests/gomod/ of our Go module that requires ``module`` at ``version``, when upstream
    #: ``replace`` lines make ``go install package@version`` refuse it; empty: plain ``go install``.
    gomod: str = ""

    def stamp(self, go_version: str) -> str:
        """Everything the binary depends on besides the module's content (which the version pins)."""
        parts = [self.package, self.version, list(self.tags), self.ldflags, go_version]
        if self.gomod:
            folder = GOMOD_DIR / self.gomod
            parts.append(hashlib.sha256((folder / "go.mod").read_bytes() + (folder / "go.sum").read_bytes())
                         .hexdigest())
        return json.dumps(parts)


TOOLS: tuple[GoTool, ...] = (
    # registry:3 is distribution v3.1.1, built by its Dockerfile (v3.1.1 Dockerfile lines 21-39): CGO_ENABLED=0,
    # -trimpath, ldflags "-X version.version=${VERSION#v} -X version.revision=... -X version.mainpkg=... -s -w".
    GoTool("registry", f"{DISTRIBUTION}/cmd/registry", DISTRIBUTION, "v3.1.1",
           ldflags=(f"-s -w -X {DISTRIBUTION}/version.version={{bare}} -X {DISTRIBUTION}/version.revision={{revision}}"
                    f" -X {DISTRIBUTION}/version.mainpkg={DISTRIBUTION}"),
           why="what Docker Hub's registry:3 runs"),
    # containerd v2.3.1 Makefile lines 105-109: -X version.Version=$(VERSION) -X version.Revision -X version.Package.
    GoTool("containerd", f"{CONTAINERD}/cmd/containerd", CONTAINERD, "v2.3.1", tags=CONTAINERD_TAGS,
           ldflags=(f"-s -w -X {CONTAINERD}/version.Version={{version}} -X {CONTAINERD}/version.Revision={{revision}}"
                    f" -X {CONTAINERD}/version.Package={CONTAINERD}"),
           why="what kind v0.32.0 nodes run"),
    GoTool("ctr", f"{CONTAINERD}/cmd/ctr", CONTAINERD, "v2.3.1", tags=CONTAINERD_TAGS,
           ldflags=(f"-s -w -X {CONTAINERD}/version.Version={{version}} -X {CONTAINERD}/version.Revision={{revision}}"
                    f" -X {CONTAINERD}/version.Package={CONTAINERD}"),
           why="containerd's client, in kind's nodes beside it"),
    # kind v0.32.0 Makefile lines 57-62: -trimpath -ldflags="-buildid= -s -w -X .../version.gitCommit=...".
    GoTool("kind", KIND, KIND, "v0.32.0",
           ldflags=f"-buildid= -s -w -X={KIND}/pkg/cmd/kind/version.gitCommit={{revision}}",
           why="kind's own config loader, fed every config the program generates"),
    # The Pulumi CLI (the engine), for tests/engine/. Our pin is 3.272.0 (requirements.txt's SDK), but the Go module
    # proxy this project reaches refuses pkg/v3@v3.272.0 ("This module version is not available"); v3.274.0 is the
    # nearest release it serves (a CLI newer than the SDK is what users run). pkg/go.mod v3.274.0 line 5 replaces
    # the SDK with ../sdk, so go install refuses it: tests/gomod/pulumi requires pkg and sdk at the same release.
    # Release build (.goreleaser.yml, builds.pulumi): -trimpath, tags osusergo,grpcnotrace,
    # ldflags "-w -s -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v<version>".
    GoTool("pulumi", f"{PULUMI_PKG}/cmd/pulumi", PULUMI_PKG, "v3.274.0", tags=("osusergo", "grpcnotrace"),
           ldflags=f"-w -s -X {PULUMI_SDK}/go/common/version.Version={{version}}", gomod="pulumi",
           why="the Pulumi engine that runs the program in tests/engine/"),
)


class GoToolsError(RuntimeError):
    """A build failed, or a built binary is missing or no longer matches what was recorded."""


@dataclass(frozen=True)
class Built:
    """One built program as the manifest records it."""

    name: str
    path: Path
    package: str
    version: str
    revision: str
    sha256: str
    go: str
    seconds: float
    stamp: str = field(repr=False, default="")

    @property
    def source(self) -> str:
        """Where it came from, for the line each run prints."""
        return f"built from {self.package}@{self.version} with {self.go}"


def tools_dir() -> Path:
    value = os.environ.get(DIR_ENV, "").strip()
    return Path(value) if value else DEFAULT_DIR


def find_go() -> str | None:
    """The go command: on PATH, else where the official archive installs it (sudo may reset PATH)."""
    found = shutil.which("go")
    if found:
        return found
    fallback = Path("/usr/local/go/bin/go")
    return str(fallback) if fallback.is_file() else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_manifest(directory: Path) -> dict:
    path = directory / "bin" / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise GoToolsError(f"{path}: unreadable ({error}); remove it and run tests/integration/setup.sh") from error


def load(directory: Path | None = None, names: tuple[str, ...] | None = None) -> dict[str, Built]:
    """name -> the built program, each re-checked against its recorded sha256; empty when nothing was built.

    :raises GoToolsError: a recorded binary is missing or its bytes changed, or a pin changed since the build
        (run the setup again).
    """
    directory = directory or tools_dir()
    entries = _read_manifest(directory).get("tools", {})
    result: dict[str, Built] = {}
    for tool in TOOLS:
        if names is not None and tool.name not in names:
            continue
        entry = entries.get(tool.name)
        if entry is None:
            continue
        built = Built(**{**entry, "path": Path(entry["path"])})
        if built.version != tool.version or built.package != tool.package:
            raise GoToolsError(f"{built.path}: built from {built.package}@{built.version} but the pin is "
                               f"{tool.package}@{tool.version}: run tests/integration/setup.sh")
        if not built.path.is_file():
            raise GoToolsError(f"{built.path}: recorded in {directory / 'bin' / MANIFEST} but missing: "
                               "run tests/integration/setup.sh")
        actual = sha256_file(built.path)
        if actual != built.sha256:
            raise GoToolsError(f"{built.path}: sha256 {actual}, but {built.sha256} was recorded when it was built: "
                               "refusing to use it (remove it and run tests/integration/setup.sh)")
        result[tool.name] = built
    return result


def _go_env(directory: Path, gobin: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GO")}
    env.update({
        "GOBIN": str(gobin),
        "GOMODCACHE": str(directory / "gomodcache"),
        "GOCACHE": str(directory / "gocache"),
        "GOPATH": str(directory / "gopath"),
        "CGO_ENABLED": "0",
        # The project release builds use -trimpath; a machine-wide GOFLAGS (this one sets -buildvcs=false) must
        # not change what is built.
        "GOFLAGS": "-trimpath",
        # Every module is verified against Go's checksum database; nothing is exempt.
        "GOSUMDB": "sum.golang.org",
        "GONOSUMDB": "", "GONOSUMCHECK": "", "GOPRIVATE": "", "GOINSECURE": "",
        "GOPROXY": os.environ.get("GOPROXY", "https://proxy.golang.org,direct"),
    })
    return env


def _go(go: str, env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    result = subprocess.run([go, *args], env=env, capture_output=True, text=True, cwd=cwd or env["GOPATH"])
    if result.returncode != 0:
        raise GoToolsError(f"go {' '.join(args)} failed (exit {result.returncode}):\n{result.stderr.strip()}")
    return result.stdout


def _revision(go: str, env: dict[str, str], tool: GoTool) -> str:
    """The commit of the tag, as the module proxy's origin record gives it (what the release build bakes in)."""
    info = json.loads(_go(go, env, "list", "-m", "-json", f"{tool.module}@{tool.version}"))
    return info.get("Origin", {}).get("Hash", "")


def _build_one(go: str, go_version: str, directory: Path, tool: GoTool, log) -> Built:
    started = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=f".{tool.name}-", dir=directory / "bin"))
    try:
        env = _go_env(directory, staging)
        revision = _revision(go, env, tool)
        ldflags = tool.ldflags.format(version=tool.version, bare=tool.version.lstrip("v"), revision=revision)
        flags = [f"-ldflags={ldflags}"]
        if tool.tags:
            flags.append(f"-tags={','.join(tool.tags)}")
        if tool.gomod:
            # Our module's go.mod and go.sum decide every version; -mod=readonly refuses to change them.
            produced = staging / tool.name
            _go(go, env, "build", "-mod=readonly", *flags, "-o", str(produced), tool.package,
                cwd=GOMOD_DIR / tool.gomod)
        else:
            _go(go, env, "install", *flags, f"{tool.package}@{tool.version}")
            produced = staging / tool.package.rsplit("/", 1)[-1]
        target = directory / "bin" / tool.name
        os.replace(produced, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = round(time.monotonic() - started, 1)
    built = Built(name=tool.name, path=target, package=tool.package, version=tool.version, revision=revision,
                  sha256=sha256_file(target), go=go_version, seconds=seconds, stamp=tool.stamp(go_version))
    commit = revision[:12] or "not in the proxy's record"
    log(f"gotools: built {tool.name} from {tool.package}@{tool.version} (commit {commit}) in {seconds} s")
    return built


def _entry(built: Built) -> dict:
    return {**asdict(built), "path": str(built.path)}


def _write_manifest(directory: Path, entries: dict[str, dict]) -> None:
    path = directory / "bin" / MANIFEST
    data = {"tools": entries}
    partial = path.with_suffix(f".{os.getpid()}.part")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)


def build(directory: Path | None = None, log=print) -> dict[str, Built]:
    """Builds each pinned program that is missing, changed, or pinned differently; returns them all.

    :raises GoToolsError: no Go, or a build failed (the message holds go's own error).
    """
    directory = directory or tools_dir()
    go = find_go()
    if go is None:
        raise GoToolsError("no go command (PATH, /usr/local/go/bin)")
    (directory / "bin").mkdir(parents=True, exist_ok=True)
    (directory / "gopath").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two setups at once build once
        go_version = _go(go, _go_env(directory, directory / "bin"), "env", "GOVERSION").strip()
        entries = _read_manifest(directory).get("tools", {})
        result: dict[str, Built] = {}
        for tool in TOOLS:
            entry = entries.get(tool.name)
            if entry and entry.get("stamp") == tool.stamp(go_version):
                path = Path(entry["path"])
                if path.is_file() and sha256_file(path) == entry["sha256"]:
                    result[tool.name] = Built(**{**entry, "path": path})
                    log(f"gotools: {tool.name} {tool.version} already built ({path})")
                    continue
            result[tool.name] = _build_one(go, go_version, directory, tool, log)
            entries[tool.name] = _entry(result[tool.name])
            _write_manifest(directory, entries)  # each build recorded as soon as it is done
        # Drop entries of programs no longer pinned.
        _write_manifest(directory, {name: _entry(built) for name, built in result.items()})
    log(f"gotools: {len(result)} programs ready in {round(time.monotonic() - started, 1)} s under {directory}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 tests/gotools.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("build", "show"))
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
        else:
            for built in load().values():
                print(f"{built.name}\t{built.version}\t{built.path}\t{built.source}")
    except GoToolsError as error:
        print(f"gotools: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
