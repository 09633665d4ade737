"""Stand-in ``docker`` and ``kind`` executables over one small engine state, for running the generated scripts.

The state is a JSON file of containers (id, name, labels) and volumes (name, labels). The stand-ins implement the
few commands the scripts use, as the real CLIs answer them:

- ``docker ps -a --no-trunc [--filter label=K=V] --format FMT`` (``{{.ID}}``, ``{{.Names}}``, ``{{.Label "k"}}``),
  ``docker inspect --format '{{.Id}}' NAME``, ``docker volume ls --format FMT``;
- ``kind get clusters`` (the distinct ``io.x-k8s.kind.cluster`` labels), ``kind create cluster --name N --config -``
  (one container per node of the config on stdin, plus the load balancer of several control planes; refuses a
  name in use), ``kind delete cluster --name N`` (every container labelled N, whoever made it: kind v0.32.0
  pkg/cluster/internal/delete/delete.go lists nodes by the label and deletes them), ``kind get kubeconfig``.

Every call is appended to the state's ``calls`` list. ``KRC_SANDBOX_DOWN=1`` makes docker fail like an engine that
does not answer. Used by tests/test_cluster_identity.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

KIND_LABEL = "io.x-k8s.kind.cluster"


class Engine:
    """The engine state file: load, change, save."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            path.write_text(json.dumps({"containers": [], "volumes": [], "calls": []}))

    def load(self) -> dict[str, Any]:
        return json.loads(self.path.read_text())

    def save(self, state: dict[str, Any]) -> None:
        self.path.write_text(json.dumps(state, indent=1, sort_keys=True))

    def add(self, name: str, labels: dict[str, str] | None = None) -> str:
        """A container made outside the scripts (another stack, the user, another tool); its id."""
        state = self.load()
        if any(c["name"] == name for c in state["containers"]):
            raise ValueError(f"name in use: {name}")
        container_id = secrets.token_hex(32)
        state["containers"].append({"id": container_id, "name": name, "labels": labels or {}})
        self.save(state)
        return container_id

    def remove(self, name: str) -> None:
        state = self.load()
        state["containers"] = [c for c in state["containers"] if c["name"] != name]
        self.save(state)

    def containers(self) -> list[dict[str, Any]]:
        """Every container, without the call log: what a snapshot compares."""
        return sorted(self.load()["containers"], key=lambda c: c["name"])

    def calls(self) -> list[list[str]]:
        return self.load()["calls"]


def install(folder: Path, engine: Path) -> dict[str, str]:
    """Write ``docker`` and ``kind`` stand-ins into ``folder``; the environment that makes the scripts use them."""
    folder.mkdir(parents=True, exist_ok=True)
    for tool in ("docker", "kind"):
        script = folder / tool
        script.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} {tool} "$@"\n')
        script.chmod(0o755)
    return {"PATH": f"{folder}:/usr/bin:/bin", "KRC_SANDBOX_ENGINE": str(engine), "KRC_KIND": str(folder / "kind")}


def _format(template: str, container: dict[str, Any]) -> str:
    text = template.replace("{{.ID}}", container["id"]).replace("{{.Id}}", container["id"])
    text = text.replace("{{.Names}}", container["name"]).replace("{{.Name}}", container["name"])
    return re.sub(r'\{\{\.Label "([^"]+)"\}\}', lambda m: container["labels"].get(m.group(1), ""), text)


def _option(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def docker(args: list[str], state: dict[str, Any]) -> int:
    if os.environ.get("KRC_SANDBOX_DOWN") == "1":
        print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock", file=sys.stderr)
        return 1
    if args[:1] == ["ps"]:
        selected = state["containers"]
        wanted = _option(args, "--filter")
        if wanted is not None:
            key, _, value = wanted.removeprefix("label=").partition("=")
            selected = [c for c in selected if key in c["labels"] and (not value or c["labels"][key] == value)]
        template = _option(args, "--format") or "{{.ID}}"
        for container in selected:
            print(_format(template, container))
        return 0
    if args[:1] == ["inspect"]:
        found = next((c for c in state["containers"] if c["name"] == args[-1] or c["id"] == args[-1]), None)
        if found is None:
            print(f"Error: No such object: {args[-1]}", file=sys.stderr)
            return 1
        print(_format(_option(args, "--format") or "{{.Id}}", found))
        return 0
    if args[:2] == ["volume", "ls"]:
        template = _option(args, "--format") or "{{.Name}}"
        for volume in state["volumes"]:
            print(_format(template.replace("{{.Name}}", volume["name"]), {"id": "", "name": volume["name"], "labels": volume["labels"]}))
        return 0
    print(f"sandbox docker: unsupported {args}", file=sys.stderr)
    return 2


def kind(args: list[str], state: dict[str, Any]) -> int:
    clusters = sorted({c["labels"][KIND_LABEL] for c in state["containers"] if KIND_LABEL in c["labels"]})
    if args[:2] == ["get", "clusters"]:
        print("\n".join(clusters)) if clusters else print("No kind clusters found.", file=sys.stderr)
        return 0
    name = _option(args, "--name") or "kind"
    if args[:2] == ["create", "cluster"]:
        if name in clusters:
            print(f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"', file=sys.stderr)
            return 1
        import yaml  # only here: every other call starts faster without it

        config = yaml.safe_load(sys.stdin.read()) or {}
        roles = [n.get("role", "control-plane") for n in config.get("nodes", [{"role": "control-plane"}])]
        counts: dict[str, int] = {}
        names = []
        for role in roles + (["external-load-balancer"] if roles.count("control-plane") > 1 else []):
            counts[role] = counts.get(role, 0) + 1
            names.append(f"{name}-{role}{'' if counts[role] == 1 else counts[role]}")
        taken = [n for n in names if any(c["name"] == n for c in state["containers"])]
        if taken:
            print(f"ERROR: failed to create cluster: docker run error: Conflict. The container name \"/{taken[0]}\" is already in use", file=sys.stderr)
            return 1
        for node in names:
            state["containers"].append({"id": secrets.token_hex(32), "name": node, "labels": {KIND_LABEL: name}})
        return 0
    if args[:2] == ["delete", "cluster"]:
        state["containers"] = [c for c in state["containers"] if c["labels"].get(KIND_LABEL) != name]
        return 0
    if args[:2] == ["get", "kubeconfig"]:
        print(f"apiVersion: v1\nkind: Config\n# {name}")
        return 0
    print(f"sandbox kind: unsupported {args}", file=sys.stderr)
    return 2


def main() -> int:
    tool, args = sys.argv[1], sys.argv[2:]
    engine = Engine(Path(os.environ["KRC_SANDBOX_ENGINE"]))
    state = engine.load()
    state["calls"].append([tool, *args])
    code = (docker if tool == "docker" else kind)(args, state)
    engine.save(state)
    return code


if __name__ == "__main__":
    sys.exit(main())
