"""``cachectl offline``: what a ``pulumi destroy`` + ``pulumi up`` without a network would miss, asked while you still
have one (no Pulumi here).

It reads what the stack's last ``up`` needed (``<state dir>/offline.json``, written by the artifact store step) and
looks at this machine:

- **images**: every image the add-ons pull and ``warmup.images`` list, plus every image on the running cluster's
  nodes (``ctr -n k8s.io images ls`` in each node: what its pods pulled, the hook Jobs' too). Images kind preloads
  into its node image carry the label ``io.cri-containerd.pinned=pinned`` (kind v0.32.0
  ``pkg/build/nodeimage/imageimporter.go``: ``ctr images import --label=io.cri-containerd.pinned=pinned``) and come
  back with the node image. Each other image is asked of the cache for its registry: the manifest its reference
  resolves to, the engine platform's manifest of an index, and every layer and config blob. No cache for a registry
  (``mcr.microsoft.com``, ``public.ecr.aws``), or only a team cache at a URL, means missing.
- **artifacts**: every file of the artifact store the stack uses, present and matching its pin or record.
- **the Docker engine**: kind's node image and the caches' registry image, which ``up`` would otherwise pull.

How a cache is asked: not the running cache itself. A pull-through registry answers a HEAD with the same handler
as a GET (distribution v3.1.1 ``registry/handlers/manifests.go``, ``blob.go``), and for content it lacks that
handler fetches from upstream: a manifest by GET, which Docker Hub counts (``registry/proxy/proxymanifeststore.go``
``Get``), a blob in full (``registry/proxy/proxyblobstore.go`` ``ServeBlob``). So each cache's volume is mounted
read-only into a throwaway container of the registry image (``--network none``) running the registry over that
data alone, with no proxy; existence checks (``wget --spider``) go to it through ``docker exec``. Nothing reaches an
upstream at all, and the answer is what the cache serves when its upstream cannot be reached: what it holds (a tag
from its own store, manifests and blobs by digest; registry/proxy/proxytagservice.go ``Get``,
proxymanifeststore.go ``Get``, proxyblobstore.go ``ServeBlob``, as krc/render/registry.py cites them).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from krc import versions
from krc.commands import dockercli
from krc.commands.cacheclient import Cache, FetchError, engine_platform, is_index, manifest_blobs, select_manifest
from krc.commands.dockercli import DockerError, Runner
from krc.config.imageref import ImageRef, ReferenceError, parse_reference
from krc.preflight import store
from krc.preflight.script import KIND_CLUSTER_LABEL
from krc.render import registry
from krc.render.mirrors import CACHE_PORT

#: Label of the throwaway registry containers this command starts (and always removes).
CHECK_LABEL = "kind-registry-cache.offline-check"
#: kind's label on the images its node image preloads (kind v0.32.0 pkg/build/nodeimage/imageimporter.go).
PINNED_FILTER = 'labels."io.cri-containerd.pinned"==pinned'
KIND_ROLE_LABEL = "io.x-k8s.kind.role"

HELD, IN_NODE_IMAGE, STORED, PRESENT, MISSING = "held", "in the node image", "stored", "present", "missing"

#: The viewing registry: the cache's own settings file, its data read-only, no proxy, no writes, no purging.
VIEW_ENV = {
    "REGISTRY_HTTP_ADDR": f"127.0.0.1:{CACHE_PORT}",
    "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": registry.DATA_DIR,
    "REGISTRY_STORAGE_MAINTENANCE_READONLY": '{"enabled": true}',
    "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING": '{"enabled": false}',
    "REGISTRY_LOG_LEVEL": "error",
    "OTEL_TRACES_EXPORTER": "none",
}
VIEW_COMMAND = 'exec registry serve "${KRC_REGISTRY_CONFIG:-/etc/distribution/config.yml}"'
VIEW_READY_SECONDS = 30.0


class OfflineError(RuntimeError):
    """The check itself cannot run (no record of the stack, no Docker engine); the message says what to do."""


@dataclass
class Item:
    """One thing a destroy + up offline needs, and whether it would be there."""

    kind: str
    name: str
    state: str
    #: Where it was found (or looked for).
    where: str = ""
    #: Why it would be missing, with the fix.
    why: str = ""
    #: Who needs it: ``add-ons / warmup.images``, ``node dev-worker``, ...
    sources: list[str] = field(default_factory=list)

    @property
    def missing(self) -> bool:
        return self.state == MISSING


@dataclass
class OfflineReport:
    owner: str
    platform: str
    items: list[Item]
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[Item]:
        return [i for i in self.items if i.missing]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.owner,
            "ready": not self.missing,
            "missing": len(self.missing),
            "platform": self.platform,
            "items": [asdict(i) for i in self.items],
            "notes": list(self.notes),
        }

    def table(self) -> str:
        count = len(self.missing)
        verdict = "nothing would be missing" if not count else f"{count} of {len(self.items)} would be missing"
        out = [f"stack {self.owner} ({self.platform or 'no platform'}): offline, {verdict}"]
        rows = [("what", "name", "state", "where / why")]
        for item in sorted(self.items, key=lambda i: (not i.missing, i.kind, i.name)):
            rows.append((item.kind, _short(item.name), item.state.upper() if item.missing else item.state,
                         item.why if item.missing else item.where))
        widths = [min(max(len(r[i]) for r in rows), cap) for i, cap in enumerate((12, 72, 17))]
        for row in rows:
            out.append("  " + "  ".join([*(c.ljust(w) for c, w in zip(row[:3], widths)), row[3]]).rstrip())
        out.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(out) + "\n"


def _short(name: str) -> str:
    """A digest cut to 12 hex digits for the table (the JSON keeps it whole)."""
    return re.sub(r"sha256:([0-9a-f]{12})[0-9a-f]{52}", r"sha256:\1…", name)


# --- the stack's record ------------------------------------------------------------------------------------


def find_plan(home: str, owner: str | None) -> store.StorePlan:
    """The plan the stack's last ``up`` recorded; the only stack's when ``owner`` is ``None``."""
    base = Path(home)
    if owner:
        project, _, stack = owner.partition("/")
        path = base / f".{project}" / stack / store.RECORD_NAME
        candidates = [path] if path.is_file() else []
        if not candidates:
            raise OfflineError(
                f"no record of stack {owner} at {path}: run `pulumi up` for it once with the network (the artifact "
                f"store step writes the record), then ask again"
            )
    else:
        candidates = sorted(p for p in (base / store.STORE_DIR).glob(f"*/{store.RECORD_NAME}") if p.is_file())
        if not candidates:
            raise OfflineError(f"no stack has a record under {base / store.STORE_DIR}: run `pulumi up` once with the network")
        if len(candidates) > 1:
            stacks = ", ".join(p.parent.name for p in candidates)
            raise OfflineError(f"several stacks have a record ({stacks}); say which with --stack")
    try:
        return store.StorePlan.from_json(candidates[0].read_text())
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise OfflineError(f"{candidates[0]} cannot be read ({error}); run `pulumi up` again to write it anew") from None


# --- what needs checking -----------------------------------------------------------------------------------


def node_images(runner: Runner, cluster: str) -> tuple[dict[str, list[str]], set[str], list[str]]:
    """Every image on the running cluster's nodes: ref -> nodes; the refs kind's node image preloaded; notes."""
    if not cluster:
        return {}, set(), []
    listing = dockercli.run_ok(runner, [
        "ps", "--filter", f"label={KIND_CLUSTER_LABEL}={cluster}", "--filter", "status=running",
        "--format", f'{{{{.Names}}}} {{{{.Label "{KIND_ROLE_LABEL}"}}}}',
    ])
    nodes = [line.split()[0] for line in listing.text.splitlines()
             if line.strip() and not line.strip().endswith("external-load-balancer")]
    if not nodes:
        return {}, set(), [f"no running node of cluster {cluster}: only the add-ons' and warmup.images' images are checked"]
    found: dict[str, list[str]] = {}
    pinned: set[str] = set()
    notes: list[str] = []
    script = f"ctr -n k8s.io images ls -q && echo --- && ctr -n k8s.io images ls -q '{PINNED_FILTER}'"
    for node in nodes:
        result = runner(dockercli.exec_args(node, ["sh", "-c", script]))
        if not result.ok:
            notes.append(f"{node}: its images could not be listed ({result.stderr.strip() or f'exit {result.code}'})")
            continue
        every, _, preloaded = result.text.partition("---")
        for ref in every.split():
            if not ref.startswith("sha256:"):
                found.setdefault(ref, []).append(node)
        pinned.update(preloaded.split())
    return found, pinned, notes


def _key(image: str) -> str:
    try:
        return str(parse_reference(image))
    except ReferenceError:
        return image


def images_to_check(plan: store.StorePlan, on_nodes: dict[str, list[str]]) -> dict[str, list[str]]:
    """image -> who needs it, one entry per image however it is written."""
    wanted: dict[str, list[str]] = {}
    for image in plan.images:
        wanted.setdefault(_key(image), []).append("add-ons / warmup.images")
    for image, nodes in on_nodes.items():
        wanted.setdefault(_key(image), []).extend(f"node {n}" for n in nodes)
    return wanted


# --- asking a cache's volume -----------------------------------------------------------------------------------


class View:
    """A throwaway, read-only registry without a proxy over one cache volume (see the module's docstring)."""

    def __init__(self, runner: Runner, volume: str, image: str, owner: str) -> None:
        self.runner = runner
        self.volume = volume
        self.image = image
        self.owner = owner
        self.name = f"krc-offline-check-{secrets.token_hex(4)}"

    def __enter__(self) -> Cache:
        env = [arg for key, value in VIEW_ENV.items() for arg in ("-e", f"{key}={value}")]
        dockercli.run_ok(self.runner, [
            "run", "-d", "--rm", "--pull", "never", "--network", "none", "--name", self.name,
            "--label", f"{CHECK_LABEL}={self.owner}", "-v", f"{self.volume}:{registry.DATA_DIR}:ro", *env,
            "--entrypoint", "/bin/sh", self.image, "-c", VIEW_COMMAND,
        ])
        deadline = time.monotonic() + VIEW_READY_SECONDS
        probe = ["wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{CACHE_PORT}/v2/"]
        while not (answer := self.runner(dockercli.exec_args(self.name, probe))).ok:
            gone = "No such container" in answer.stderr or "is not running" in answer.stderr
            if gone or time.monotonic() > deadline:
                logs = self.runner(["logs", "--tail", "5", self.name])
                self.__exit__()
                why = (logs.stderr or logs.text).strip() or answer.stderr.strip()
                raise DockerError(f"the registry over {self.volume} did not answer: {why}")
            time.sleep(0.2)
        return Cache(self.runner, self.name)

    def __exit__(self, *exc: object) -> None:
        self.runner(["rm", "-f", self.name])


def held(cache: Cache, ref: ImageRef, platform: str, label: str = "the cache") -> str:
    """Why ``cache`` (``label``, for the message) could not serve ``ref`` for ``platform`` on its own; ``""`` when it
    holds all of it."""
    try:
        document = json.loads(cache.manifest(ref.repository, ref.reference))
        if is_index(document):
            digest = select_manifest(document, platform)
            if digest is None:
                return f"its index has no {platform} image"
            document = json.loads(cache.manifest(ref.repository, digest))
    except FetchError as error:
        if error.status == 404:
            return f"not in {label} (never pulled through it or pushed to it, or purged)"
        return f"the content of {label} could not be read: {error}"
    except ValueError as error:
        return f"{label} holds no valid manifest for it ({error})"
    blobs = manifest_blobs(document)
    lacking = cache.unserved(ref.repository, blobs)
    if lacking:
        return f"{len(lacking)} of its {len(blobs)} blobs are not in {label} (a pull or push that never completed)"
    return ""


def _volume_of(runner: Runner, container: str) -> str | None:
    result = runner(["inspect", "--format", f'{{{{range .Mounts}}}}{{{{if eq .Destination "{registry.DATA_DIR}"}}}}'
                     f'{{{{.Name}}}}{{{{end}}}}{{{{end}}}}', container])
    return result.text.strip() or None if result.ok else None


def check_images(
    runner: Runner, plan: store.StorePlan, wanted: dict[str, list[str]], pinned: set[str], platform: str, image: str
) -> list[Item]:
    """One item per image: held by its cache, in the node image, or missing (and why)."""
    items: list[Item] = []
    by_volume: dict[tuple[str, str], list[tuple[str, ImageRef]]] = {}
    pinned_keys = {_key(p) for p in pinned}
    for name, sources in sorted(wanted.items()):
        item = Item("image", name, MISSING, sources=sources)
        items.append(item)
        if name in pinned_keys:
            item.state, item.where = IN_NODE_IMAGE, f"preloaded in {plan.node_image.split('@')[0]}"
            continue
        try:
            ref = parse_reference(name)
        except ReferenceError as error:
            item.why = f"not an image reference: {error}"
            continue
        mirror = plan.mirrors.get(ref.host)
        if mirror is None:
            item.why = (f"no cache for {ref.host} (cache.mirrors has none): nodes pull it from {ref.host} directly; "
                        f"add a mirror for {ref.host} and pull it once")
            continue
        container, volume = mirror.get("container"), mirror.get("volume")
        if not volume and container:
            volume = _volume_of(runner, container)
        if not volume:
            item.why = (f"pulled through the shared cache {mirror.get('shared')}, which needs the network"
                        if mirror.get("shared") else f"{container}'s volume was not found on this Docker engine")
            continue
        item.where = f"{mirror.get('what') or 'cache'} {container or volume}"
        by_volume.setdefault((volume, item.where), []).append((name, ref))
    found = {i.name: i for i in items}
    for (volume, label), refs in sorted(by_volume.items()):
        try:
            with View(runner, volume, image, plan.owner) as cache:
                for name, ref in refs:
                    why = held(cache, ref, platform, label)
                    found[name].state, found[name].why = (MISSING, why) if why else (HELD, "")
        except DockerError as error:
            for name, _ in refs:
                found[name].why = f"the cache volume {volume} could not be read: {error}"
    return items


# --- artifacts and engine images -------------------------------------------------------------------------------


def check_artifacts(plan: store.StorePlan) -> list[Item]:
    items = []
    for artifact in plan.artifacts:
        status = store.inspect(artifact)
        item = Item("artifact", artifact.name, STORED if status.ok else MISSING, where=artifact.path,
                    sources=[artifact.setting])
        if status.state == "missing":
            item.why = f"not in the store: `up` would download it from {artifact.url}"
        elif status.state == "unrecorded":
            item.why = f"stored but never checked against its repository: `up` would ask {artifact.url}"
        elif status.state == "changed":
            item.why = status.problem
        items.append(item)
    return items


def check_engine_images(runner: Runner, plan: store.StorePlan) -> list[Item]:
    items = []
    for name, role in ((plan.node_image, "kind's node image"), (plan.registry_image, "the caches' registry image")):
        if not name:
            continue
        found = runner(["image", "inspect", "--format", "{{.Id}}", name]).ok
        items.append(Item("engine image", name, PRESENT if found else MISSING, where="Docker engine",
                          why="" if found else f"{role} is not in the Docker engine: `up` would pull it (`docker pull {name}`)",
                          sources=[role]))
    return items


def collect(runner: Runner, plan: store.StorePlan, image: str | None = None) -> OfflineReport:
    """The whole report for one stack; ``image`` reads the cache volumes (default: the stack's registry image)."""
    platform = engine_platform(runner)
    on_nodes, pinned, notes = node_images(runner, plan.cluster)
    wanted = images_to_check(plan, on_nodes)
    image = image or plan.registry_image or versions.REGISTRY_IMAGE
    items = [
        *check_images(runner, plan, wanted, pinned, platform, image),
        *check_artifacts(plan),
        *check_engine_images(runner, plan),
    ]
    return OfflineReport(owner=plan.owner, platform=platform, items=items, notes=notes)


def run(runner: Runner, home: str, owner: str | None, as_json: bool, image: str | None = None) -> tuple[int, str]:
    """Exit code and output of ``cachectl offline``: 0 ready, 1 something would be missing, 2 cannot tell."""
    plan = find_plan(home, owner)
    report = collect(runner, plan, image)
    text = json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n" if as_json else report.table()
    return (1 if report.missing else 0), text
