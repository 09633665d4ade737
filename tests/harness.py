"""Runs the whole Pulumi program under mocks and records every resource, option, invoke and stack output.

The CLI is not needed: config comes from Pulumi.yaml's defaults and Pulumi.<stack>.yaml, as the CLI
would merge them, plus per-test overrides. A ``MockMonitor`` subclass sees each RegisterResource
request, so resource options (parent, dependencies, retainOnDelete, ...) can be asserted too.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "kind-registry-cache"

#: What the preflight script prints on a healthy machine with no docker network of ours yet.
HEALTHY_PREFLIGHT = "\n".join(
    [
        "kind=kind v0.32.0 go1.24.2 linux/amd64",
        "kind_path=/usr/local/bin/kind",
        "docker=28.2.2",
        "context_host=unix:///var/run/docker.sock",
        "host_os=Linux",
        "engine_os=Debian GNU/Linux 13 (trixie)",
        'network={"Name":"bridge","IPAM":{"Config":[{"Subnet":"172.17.0.0/16"}]},"Labels":{},"Containers":{}}',
    ]
)

SECRET_SIG = rpc._special_secret_sig  # noqa: SLF001 - the wire marker of a secret value


@dataclass
class Registered:
    """One RegisterResource request, decoded."""

    type: str
    name: str
    urn: str
    custom: bool
    inputs: dict[str, Any]
    parent: str
    dependencies: list[str]
    provider: str
    retain_on_delete: bool
    deleted_with: str
    delete_before_replace: bool
    replace_on_changes: list[str]
    additional_secret_outputs: list[str]
    ignore_changes: list[str] = field(default_factory=list)
    protect: bool = False
    #: top-level input names whose value is (or contains) a secret
    secret_inputs: set[str] = field(default_factory=set)


@dataclass
class Recording:
    """Everything one program run registered."""

    resources: list[Registered]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    invokes: list[tuple[str, dict[str, Any]]]
    #: per invoke, how many resources had been registered when it ran
    invoke_after: list[int] = field(default_factory=list)
    #: component URN -> (its registered outputs, the names of those holding a secret)
    component_outputs: dict[str, tuple[dict[str, Any], set[str]]] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registered:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name!r}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)


def _contains_secret(value: Any) -> bool:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:  # noqa: SLF001
            return True
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, preflight_stdout: str, preview: bool = False, execute: tuple[str, ...] = (),
                 hub_quota: str = "{}") -> None:
        self.preflight_stdout = preflight_stdout
        self.preview = preview
        self.execute = execute
        self.hub_quota = hub_quota

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.typ == "command:local:Command" and args.name in self.execute:
            return f"{args.name}-id", {**args.inputs, **_run_command(args.inputs)}
        outputs = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = f"sha256:{'0' * 64}"
        # A Command's output exists once it ran: during a preview of a new stack it is unknown, as the engine says.
        if args.typ == "command:local:Command" and not self.preview:
            outputs["stdout"] = "apiVersion: v1\nkind: Config\n# fake kubeconfig\n"
            outputs["stderr"] = ""
        if args.typ == "kubernetes:helm.sh/v3:Release":
            # What the provider reports once Helm has installed the chart.
            outputs["status"] = {"name": args.inputs.get("name"), "version": args.inputs.get("version"), "status": "deployed"}
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "command:local:run" and "krc.commands.cachectl stats" in args.args.get("command", ""):
            return {"stdout": "{}", "stderr": ""}
        if args.token == "command:local:run" and "krc.commands.cachectl quota" in args.args.get("command", ""):
            return {"stdout": self.hub_quota, "stderr": ""}
        if args.token == "command:local:run":
            return {"stdout": self.preflight_stdout, "stderr": ""}
        raise AssertionError(f"unexpected invoke {args.token}")


def _run_command(inputs: dict[str, Any]) -> dict[str, str]:
    """Run a Command's ``create`` for real, as pulumi-command does on `up`: ``sh -c``, its dir, environment and
    stdin; a failure fails the registration (and so the program), as it fails `up`."""
    import os
    import subprocess

    done = subprocess.run(
        ["/bin/sh", "-c", inputs["create"]], cwd=inputs.get("dir"), input=inputs.get("stdin", ""),
        env={**os.environ, **(inputs.get("environment") or {})}, capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"command failed ({done.returncode}): {done.stderr}")
    return {"stdout": done.stdout.rstrip("\n"), "stderr": done.stderr.rstrip("\n")}


class _Monitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []
        self.invokes: list[tuple[str, dict[str, Any]]] = []
        self.invoke_after: list[int] = []
        self.stack_outputs: dict[str, Any] = {}
        self.stack_secret_outputs: set[str] = set()
        self.component_outputs: dict[str, tuple[dict[str, Any], set[str]]] = {}

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            wire = _struct_to_python(request.object)
            self.registered.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    custom=request.custom,
                    inputs=_unwrap(rpc.deserialize_properties(request.object)),
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                    retain_on_delete=request.retainOnDelete,
                    deleted_with=request.deletedWith,
                    delete_before_replace=request.deleteBeforeReplace,
                    replace_on_changes=list(request.replaceOnChanges),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    ignore_changes=list(request.ignoreChanges),
                    protect=request.protect,
                    secret_inputs={k for k, v in wire.items() if _contains_secret(v)},
                )
            )
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802 - gRPC method name
        if "::pulumi:pulumi:Stack::" in request.urn:
            wire = _struct_to_python(request.outputs)
            self.stack_secret_outputs = {k for k, v in wire.items() if _contains_secret(v)}
            self.stack_outputs = _unwrap(rpc.deserialize_properties(request.outputs))
        else:
            wire = _struct_to_python(request.outputs)
            self.component_outputs[request.urn] = (
                _unwrap(rpc.deserialize_properties(request.outputs)),
                {k for k, v in wire.items() if _contains_secret(v)},
            )
        return super().RegisterResourceOutputs(request)

    def Invoke(self, request):  # noqa: N802 - gRPC method name
        # With how many resources registered so far: the client holds an invoke until its depends_on are done.
        self.invokes.append((request.tok, rpc.deserialize_properties(request.args)))
        self.invoke_after.append(len(self.registered))
        return super().Invoke(request)


def _unwrap(value: Any) -> Any:
    """Replace wire-format secret markers by their values (secretness is recorded separately)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:  # noqa: SLF001
            return _unwrap(value["value"])
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _struct_to_python(struct: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    return json.loads(json_format.MessageToJson(struct)) if struct is not None else {}


def stack_config(stack: str) -> dict[str, Any]:
    """Config as the CLI would pass it: Pulumi.yaml defaults, then Pulumi.<stack>.yaml (short keys)."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    values = {key: spec["default"] for key, spec in project.get("config", {}).items() if "default" in spec}
    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    if stack_file.exists():
        for key, value in (yaml.safe_load(stack_file.read_text()) or {}).get("config", {}).items():
            values[key.split(":", 1)[1]] = value
    return values


def run_program(
    stack: str = "dev",
    overrides: dict[str, Any] | None = None,
    secret_keys: tuple[str, ...] = (),
    preflight: str = HEALTHY_PREFLIGHT,
    use_stack_file: bool = True,
    preview: bool = False,
    execute: tuple[str, ...] = (),
    hub_quota: str = "{}",
) -> Recording:
    """Run ``__main__.py`` under mocks and return what it registered.

    :param overrides: short config keys (``cluster``) replacing the stack's values.
    :param secret_keys: short keys stored as secrets (as ``pulumi config set --secret`` would).
    :param preflight: what the preflight script prints on the pretend machine.
    :param preview: a first ``pulumi preview``: nothing exists yet, so the Commands' outputs are unknown.
    :param execute: names of Commands to run for real when they are registered, as `up` runs them.
    :param hub_quota: what ``cachectl quota --json`` prints (Docker Hub's allowance) on the pretend machine.
    """
    values = stack_config(stack) if use_stack_file else stack_config("__none__")
    values.update(overrides or {})
    config = {f"{PROJECT}:{k}": (v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()}
    # A fresh event loop per run: an earlier asyncio.run() elsewhere in the session leaves none set.
    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = _Mocks(preflight, preview=preview, execute=execute, hub_quota=hub_quota)
    monitor = _Monitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    # set_mocks registers a root stack and closes it at once; start a fresh one so exports are recorded.
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_all_config(config, [f"{PROJECT}:{k}" for k in secret_keys])
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    _sync_await(run_in_stack(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")))
    return Recording(
        resources=list(monitor.registered),
        outputs=dict(monitor.stack_outputs),
        secret_outputs=set(monitor.stack_secret_outputs),
        invokes=list(monitor.invokes),
        invoke_after=list(monitor.invoke_after),
        component_outputs=dict(monitor.component_outputs),
    )


def written_certs(rec: Recording, into: Path) -> dict[str, str]:
    """Run the recorded certs Command's create script for real, into ``into`` instead of its certsDir.

    Returns every file it wrote there (path relative to the folder -> content), the owner file included.
    """
    import subprocess

    script = rec.named("kind-certs").inputs["create"]
    first, rest = script.split("\n", 1)
    assert first.startswith("dir="), first
    subprocess.run(["sh", "-c", f"dir={shlex.quote(str(into))}\n{rest}"], check=True, capture_output=True)
    return {str(p.relative_to(into)): p.read_text() for p in sorted(into.rglob("*")) if p.is_file()}
