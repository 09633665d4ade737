"""tests/gotools.py: the pins, what a build asks of go, that a second run builds nothing, and that a changed or
missing binary is refused. A stand-in ``go`` on PATH records its calls and writes a binary per install."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import gotools

FAKE_GO = r"""#!/usr/bin/env python3
import json, os, sys
from pathlib import Path
with open(os.environ["FAKE_GO_LOG"], "a") as log:
    log.write(json.dumps({"args": sys.argv[1:], "cwd": os.getcwd(), "env": {k: v for k, v in os.environ.items() if k.startswith(("GO", "CGO"))}}) + "\n")
args = sys.argv[1:]
if args[:2] == ["env", "GOVERSION"]:
    print(os.environ.get("FAKE_GO_VERSION", "go1.26.8"))
elif args[:3] == ["list", "-m", "-json"]:
    print(json.dumps({"Path": args[3].split("@")[0], "Origin": {"Hash": "c0ffee" * 6 + "abcd"}}))
elif args[0] in ("install", "build"):
    if os.environ.get("FAKE_GO_FAIL"):
        print("go: module lookup disabled by the test", file=sys.stderr)
        sys.exit(1)
    package = args[-1].split("@")[0]
    if args[0] == "build":
        out = Path(args[args.index("-o") + 1])
    else:
        out = Path(os.environ["GOBIN"]) / package.rsplit("/", 1)[-1]
    out.write_text("binary of " + args[-1] + " " + " ".join(args[1:-1]))
    out.chmod(0o755)
else:
    sys.exit(2)
"""


@pytest.fixture
def fake_go(tmp_path, monkeypatch):
    bindir = tmp_path / "path"
    bindir.mkdir()
    go = bindir / "go"
    go.write_text(FAKE_GO)
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "go.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GO_LOG", str(log))
    monkeypatch.setenv("GOFLAGS", "-buildvcs=false -insecure")  # a machine's own settings must not leak in
    monkeypatch.setenv("GONOSUMDB", "*")

    def calls() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return calls


def installs(calls: list[dict]) -> list[list[str]]:
    """Every build, ``go install package@version`` or ``go build package`` in one of our modules."""
    return [c["args"] for c in calls if c["args"][0] in ("install", "build")]


def target(args: list[str]) -> str:
    """package@version of one build; a build in our module names the version its go.mod requires."""
    if args[0] == "install":
        return args[-1]
    tool = next(t for t in gotools.TOOLS if t.package == args[-1])
    return f"{tool.package}@{tool.version}"


# The pins are the versions users run: registry:3 (v3.1.1), kind v0.32.0 nodes' containerd (v2.3.1), kind v0.32.0.
def test_pins_are_the_versions_users_run():
    pins = {t.name: f"{t.package}@{t.version}" for t in gotools.TOOLS}
    assert pins == {
        "registry": "github.com/distribution/distribution/v3/cmd/registry@v3.1.1",
        "containerd": "github.com/containerd/containerd/v2/cmd/containerd@v2.3.1",
        "ctr": "github.com/containerd/containerd/v2/cmd/ctr@v2.3.1",
        "kind": "sigs.k8s.io/kind@v0.32.0",
        # 3.272.0 (our SDK pin) is refused by the module proxy; 3.274.0 is the nearest release it serves.
        "pulumi": "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v3.274.0",
    }


# A program built in our own module: that module requires the upstream module (and its SDK) at exactly the pin,
# replaces nothing with a folder, and has no code of its own; the build runs in it and may not change go.mod.
@pytest.mark.parametrize("tool", [t for t in gotools.TOOLS if t.gomod], ids=lambda t: t.name)
def test_our_go_modules_require_the_pinned_release_and_replace_only_with_registry_versions(tool):
    folder = gotools.GOMOD_DIR / tool.gomod
    assert sorted(p.name for p in folder.iterdir()) == ["go.mod", "go.sum"]
    lines = [line.split("//")[0].strip() for line in (folder / "go.mod").read_text().splitlines()]
    assert f"{tool.module} {tool.version}" in lines
    assert f"tool {tool.package}" in lines
    if tool.module == gotools.PULUMI_PKG:
        assert f"{gotools.PULUMI_SDK} {tool.version}" in lines
    for line in (line for line in lines if line.startswith("replace ")):
        target_ = line.split("=>")[1].split()
        assert len(target_) == 2 and not target_[0].startswith((".", "/")), line


def test_a_build_in_our_module_runs_there_read_only(tmp_path, fake_go):
    gotools.build(tmp_path / "tools", log=lambda line: None)
    pulumi = next(c for c in fake_go() if c["args"][0] == "build")
    assert pulumi["cwd"] == str(gotools.GOMOD_DIR / "pulumi")
    assert pulumi["args"][:2] == ["build", "-mod=readonly"] and pulumi["args"][-1] == f"{gotools.PULUMI_PKG}/cmd/pulumi"
    assert "-tags=osusergo,grpcnotrace" in pulumi["args"]
    assert "version.Version=v3.274.0" in next(a for a in pulumi["args"] if a.startswith("-ldflags="))
    assert pulumi["env"]["GOSUMDB"] == "sum.golang.org" and pulumi["env"]["CGO_ENABLED"] == "0"


# First build: one go install per program, static, checked by sum.golang.org, with the release's tags and ldflags.
def test_a_first_build_installs_each_pinned_program_verified_and_static(tmp_path, fake_go):
    built = gotools.build(tmp_path / "tools", log=lambda line: None)
    assert set(built) == {"registry", "containerd", "ctr", "kind", "pulumi"}
    done = installs(fake_go())
    assert [target(args) for args in done] == [f"{t.package}@{t.version}" for t in gotools.TOOLS]
    for call in (c for c in fake_go() if c["args"][0] in ("install", "build")):
        env = call["env"]
        assert env["CGO_ENABLED"] == "0" and env["GOSUMDB"] == "sum.golang.org"
        assert env["GONOSUMDB"] == "" and env["GOFLAGS"] == "-trimpath"
        assert env["GOMODCACHE"] == str(tmp_path / "tools" / "gomodcache")
    containerd = next(args for args in done if "cmd/containerd@" in args[-1])
    assert "-tags=no_aufs,no_zfs,no_btrfs,no_devmapper,urfave_cli_no_docs" in containerd
    ldflags = next(a for a in containerd if a.startswith("-ldflags="))
    assert "version.Version=v2.3.1" in ldflags and "version.Revision=c0ffee" in ldflags
    registry = next(args for args in done if "cmd/registry@" in args[-1])
    assert "version.version=3.1.1 " in next(a for a in registry if a.startswith("-ldflags="))
    assert (tmp_path / "tools" / "bin" / "registry").read_text().startswith("binary of github.com/distribution")
    assert gotools.load(tmp_path / "tools") == built


# A second run with the same pins and Go builds nothing.
def test_a_second_run_builds_nothing(tmp_path, fake_go):
    gotools.build(tmp_path / "tools", log=lambda line: None)
    before = len(installs(fake_go()))
    again = gotools.build(tmp_path / "tools", log=lambda line: None)
    assert len(installs(fake_go())) == before == len(gotools.TOOLS)
    assert again == gotools.load(tmp_path / "tools")


# Another Go version, a changed pin or a changed binary rebuilds exactly what it touches.
def test_a_changed_go_pin_or_binary_rebuilds(tmp_path, fake_go, monkeypatch):
    gotools.build(tmp_path / "tools", log=lambda line: None)
    (tmp_path / "tools" / "bin" / "ctr").write_text("tampered")
    gotools.build(tmp_path / "tools", log=lambda line: None)
    assert [target(args).split("/")[-1] for args in installs(fake_go())[len(gotools.TOOLS):]] == ["ctr@v2.3.1"]
    bumped = tuple(gotools.GoTool(t.name, t.package, t.module, "v0.33.0") if t.name == "kind" else t
                   for t in gotools.TOOLS)
    monkeypatch.setattr(gotools, "TOOLS", bumped)
    gotools.build(tmp_path / "tools", log=lambda line: None)
    assert installs(fake_go())[-1][-1] == "sigs.k8s.io/kind@v0.33.0"
    monkeypatch.setenv("FAKE_GO_VERSION", "go1.27.3")
    gotools.build(tmp_path / "tools", log=lambda line: None)
    assert len(installs(fake_go())) == len(gotools.TOOLS) + 2 + len(gotools.TOOLS)


# A binary whose bytes changed after the build, or that is gone, is refused when the tests load it.
@pytest.mark.parametrize("damage", ["changed", "missing"])
def test_load_refuses_a_binary_that_is_not_what_was_built(tmp_path, fake_go, damage):
    gotools.build(tmp_path / "tools", log=lambda line: None)
    registry = tmp_path / "tools" / "bin" / "registry"
    if damage == "changed":
        registry.write_text("something else")
    else:
        registry.unlink()
    with pytest.raises(gotools.GoToolsError, match="registry") as raised:
        gotools.load(tmp_path / "tools")
    assert "setup.sh" in str(raised.value)


# A pin changed since the build: the old binary is not used as if it were the new version.
def test_load_refuses_a_binary_built_for_another_pin(tmp_path, fake_go, monkeypatch):
    gotools.build(tmp_path / "tools", log=lambda line: None)
    bumped = tuple(gotools.GoTool(t.name, t.package, t.module, "v3.2.0") if t.name == "registry" else t
                   for t in gotools.TOOLS)
    monkeypatch.setattr(gotools, "TOOLS", bumped)
    with pytest.raises(gotools.GoToolsError, match="v3.1.1 but the pin is .*v3.2.0"):
        gotools.load(tmp_path / "tools")


# A failed go install fails the build with go's own words, keeps what was built before, leaves no stray file.
def test_a_failed_build_says_why_and_leaves_nothing_half_made(tmp_path, fake_go, monkeypatch):
    monkeypatch.setenv("FAKE_GO_FAIL", "1")
    with pytest.raises(gotools.GoToolsError, match="module lookup disabled by the test"):
        gotools.build(tmp_path / "tools", log=lambda line: None)
    assert sorted(p.name for p in (tmp_path / "tools" / "bin").iterdir()) == []
    assert gotools.load(tmp_path / "tools") == {}


def test_the_cli_reports_a_failure_without_a_traceback(tmp_path, fake_go, monkeypatch, capsys):
    monkeypatch.setenv(gotools.DIR_ENV, str(tmp_path / "tools"))
    monkeypatch.setenv("FAKE_GO_FAIL", "1")
    assert gotools.main(["build"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gotools: go ") and "Traceback" not in err


def test_the_default_folder_is_outside_the_checkout():
    assert not gotools.DEFAULT_DIR.is_relative_to(Path(gotools.__file__).resolve().parent.parent)
