"""The artifact store: where everything `up` downloads that is not an image is kept, and how each file is checked
(no Pulumi, no network here; it only reads files).

One store per user, shared by all their stacks, under ``~/.kind-registry-cache``::

    bin/kind-<version>-<os>-<arch>                     the pinned kind (sha256 pinned in krc/versions.py)
    charts/<repository key>/<chart>-<version>.tgz      a chart archive exactly as its repository serves it
    charts/<repository key>/<chart>-<version>.tgz.json its record: the sha256 the repository listed for that version
                                                       when the archive was first downloaded
    gateway-api/<version>/<file>.yaml                  the Gateway API CRDs (sha256 pinned in krc/versions.py)

The download is ``python -m krc.commands.store``, run by a pulumi-command resource during ``up`` (never while the
program merely runs). Each stack's ``up`` also leaves ``<state dir>/offline.json``: the :class:`StorePlan` it ran
(what the stack needs besides the caches' images) and its generation token; ``cachectl offline`` reads it.

A chart's digest is the one its repository publishes: the ``digest`` of the chart version's entry in the
repository's ``index.yaml`` (Helm v3.20.2, the version pulumi-kubernetes vendors (its provider/go.mod:30):
``pkg/repo/index.go:273`` ``ChartVersion.Digest``, filled by ``IndexDirectory``/``MustAdd`` (:120) with
``provenance.DigestFile``, the hex sha256 of the .tgz, ``pkg/provenance/sign.go:409``), or for an ``oci://``
repository the digest of the chart layer (``application/vnd.cncf.helm.chart.content.v1.tar+gzip``,
``pkg/registry/constants.go:30``) in the manifest the version's tag resolves to: the blob Helm's own pull copies
with ``oras.Copy``, which checks each blob against its descriptor (``pkg/registry/client.go:495`` ``Pull``, :543,
:577). Helm itself checks neither on an https download (``pkg/downloader/chart_downloader.go:88`` ``DownloadTo``
verifies only provenance, and only when asked), which is why the store does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from krc import versions
from krc.config import NAMESPACE, Settings, checks
from krc.config.addons import AddonSettings
from krc.preflight.kindrelease import Asset
from krc.preflight.localregistry import LocalRegistryPlan
from krc.render import warmup

KIND = "kind"
CHART = "chart"
CRD = "crd"

#: The store's folder under the user's home (the pinned kind has always been kept in its ``bin/``).
STORE_DIR = ".kind-registry-cache"
#: Each stack's record of its last store step, in the stack's state folder.
RECORD_NAME = "offline.json"

#: Internal, for tests only: another URL template for the Gateway API CRDs (``{version}``, ``{file}``: a loopback server).
CRD_URL_ENV = "KRC_GATEWAY_API_CRD_URL"

_HEX64 = re.compile(r"[0-9a-f]{64}")


class StoreError(RuntimeError):
    """An artifact cannot be used: a failed download, a digest that does not match, a path that is not ours.

    Its message never shows the userinfo of a URL in it (a repository typed as ``https://user:token@host/``), as
    every message of the program (issue #18, class 5): krc.config.checks.redact_text.
    """

    def __init__(self, message: str) -> None:
        super().__init__(checks.redact_text(message))


@dataclass(frozen=True)
class Artifact:
    """One file of the store: what it is, where it is kept, where it comes from and how it is checked."""

    kind: str
    #: What it is, for messages: ``chart cilium 1.20.0``.
    name: str
    path: str
    #: kind and CRDs: the file's URL. Charts: the repository (``https://...`` or ``oci://...``).
    url: str
    #: The stack setting that asks for it (or why it is needed), named when it cannot be had.
    setting: str
    #: The pinned sha256 (kind, CRDs); empty for a chart, whose repository gives it (recorded at first download).
    sha256: str = ""
    chart: str = ""
    version: str = ""

    @property
    def record_path(self) -> str:
        """A chart's record (the digest its repository listed); empty for pinned files."""
        return f"{self.path}.json" if self.kind == CHART else ""


@dataclass(frozen=True)
class StorePlan:
    """What one stack's ``up`` needs besides the caches' content; crosses a process boundary as JSON."""

    owner: str
    artifacts: tuple[Artifact, ...] = ()
    #: The images the add-ons (and ``warmup.images``) pull, through the caches.
    images: tuple[str, ...] = ()
    node_image: str = versions.NODE_IMAGE
    #: The caches' image; empty when the stack runs no cache of its own.
    registry_image: str = ""
    cluster: str = ""
    #: Whose caches the nodes pull through (this stack's, or ``cache.useStack``'s).
    cache_owner: str = ""
    #: upstream host -> ``{"container": name or None, "volume": name or None, "shared": URL or None}``.
    mirrors: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    #: ``<state dir>/offline.json``.
    record: str = ""
    generation: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StorePlan:
        data = json.loads(text)
        return cls(
            owner=data["owner"],
            artifacts=tuple(Artifact(**a) for a in data.get("artifacts", ())),
            images=tuple(data.get("images", ())),
            node_image=data.get("node_image", versions.NODE_IMAGE),
            registry_image=data.get("registry_image", ""),
            cluster=data.get("cluster", ""),
            cache_owner=data.get("cache_owner", ""),
            mirrors={host: dict(entry) for host, entry in data.get("mirrors", {}).items()},
            record=data.get("record", ""),
            generation=data.get("generation", ""),
        )


# --- where things are kept ----------------------------------------------------------------------------------


def root(home: str) -> Path:
    """The store: ``~/.kind-registry-cache``."""
    return Path(home) / STORE_DIR


def record_path(state_dir: str) -> str:
    """A stack's record of its last store step."""
    return str(Path(state_dir) / RECORD_NAME)


def repository_key(repository: str) -> str:
    """A folder name per chart repository: readable, and distinct for distinct URLs (a short hash of the URL)."""
    normalized = repository.strip().rstrip("/")
    # The host and port only: a URL's userinfo (a token) must not become a folder name, shown in paths and outputs;
    # checks.redact cuts it up to the last '@', which a URL parser would not with a '/', '?' or '#' in a password.
    parts = urlsplit(checks.redact(normalized))
    try:
        where = f"{parts.hostname or ''}{f'-{parts.port}' if parts.port else ''}"
    except ValueError:  # a port that is not a number: the validated settings never get here with one
        where = ""
    label = re.sub(r"[^A-Za-z0-9.]+", "-", f"{where}{parts.path}").strip("-.")[:60] or "repository"
    if parts.scheme == "oci":
        label = f"oci-{label}"
    return f"{label}-{hashlib.sha256(normalized.encode()).hexdigest()[:8]}"


def chart_artifact(home: str, chart: str, version: str, repository: str, setting: str) -> Artifact:
    """A chart at an exact version from an https or oci repository."""
    folder = root(home) / "charts" / repository_key(repository)
    return Artifact(
        kind=CHART,
        name=f"chart {chart} {version}",
        path=str(folder / f"{chart}-{version}.tgz"),
        url=repository,
        setting=setting,
        chart=chart,
        version=version,
    )


def crd_dir(home: str, version: str) -> Path:
    return root(home) / "gateway-api" / version


def crd_artifacts(home: str, version: str, url: str = versions.GATEWAY_API_CRD_URL) -> list[Artifact]:
    """The Gateway API release's standard-channel files, each pinned by sha256."""
    return [
        Artifact(
            kind=CRD,
            name=f"Gateway API {version} {file}",
            path=str(crd_dir(home, version) / file),
            url=url.format(version=version, file=file),
            setting=f"{NAMESPACE}:addons.gatewayApi",
            sha256=digest,
        )
        for file, digest in sorted(versions.GATEWAY_API_CRD_SHA256[version].items())
    ]


def kind_artifact(asset: Asset) -> Artifact:
    return Artifact(
        kind=KIND,
        name=f"kind {versions.KIND_VERSION}",
        path=asset.path,
        url=asset.url,
        setting="no kind v0.27 or newer on PATH (install one to skip this download)",
        sha256=asset.sha256,
    )


def stack_artifacts(
    home: str, addons: AddonSettings, kind: Asset | None = None, crd_url: str = versions.GATEWAY_API_CRD_URL
) -> list[Artifact]:
    """What this stack's ``up`` downloads: the pinned kind when it runs that one, the enabled add-ons' charts,
    and the Gateway API CRDs when the Gateway is on."""
    found: list[Artifact] = [kind_artifact(kind)] if kind is not None else []
    for key, chart, settings in (
        ("cilium", "cilium", addons.cilium),
        ("metallb", "metallb", addons.metallb),
        ("ingressNginx", "ingress-nginx", addons.ingress_nginx),
    ):
        if settings.enabled:
            found.append(chart_artifact(home, chart, settings.version, settings.repository,
                                        f"{NAMESPACE}:addons.{key}.repository"))
    if addons.gateway_api.enabled:
        found.extend(crd_artifacts(home, addons.gateway_api.version, crd_url))
    return found


# --- reading and checking (read-only) -----------------------------------------------------------------------


def sha256_of(path: str) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def regular_or_missing(path: str) -> bool:
    """True if ``path`` is a regular file, False if nothing is there; :class:`StoreError` for anything else."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISREG(info.st_mode):
        return True
    raise StoreError(f"{path} exists and is not a regular file (a symlink?); remove it yourself and run again")


def normalize_digest(value: object) -> str | None:
    """``sha256:<hex>`` or ``<hex>`` (as Helm writes it) -> ``<hex>``; ``None`` when it is not a sha256."""
    if not isinstance(value, str):
        return None
    hex_digest = value.strip().lower().removeprefix("sha256:")
    return hex_digest if _HEX64.fullmatch(hex_digest) else None


def read_record(artifact: Artifact) -> dict | None:
    """A chart's record, or ``None`` when there is none (or it is unreadable: the chart is then checked anew)."""
    if not artifact.record_path or not regular_or_missing(artifact.record_path):
        return None
    try:
        data = json.loads(Path(artifact.record_path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or normalize_digest(data.get("sha256")) is None:
        return None
    return data


def expected_digest(artifact: Artifact) -> tuple[str | None, str]:
    """The digest the file must have and where it comes from (``the sha256 <source>``); ``None`` for a chart
    never recorded."""
    if artifact.sha256:
        return artifact.sha256, "pinned in krc/versions.py"
    record = read_record(artifact)
    if record is None:
        return None, ""
    return normalize_digest(record["sha256"]), (
        f"recorded in {artifact.record_path} when it was first downloaded from {record.get('url', artifact.url)}"
    )


def changed_message(artifact: Artifact, found: str, expected: str, source: str) -> str:
    """The refusal of a stored file whose digest is not the one it must have: both digests, the file, the fix."""
    record = f" and {artifact.record_path}" if artifact.record_path else ""
    return (
        f"{artifact.path} ({artifact.name}) has sha256 {found}, but the sha256 {source} is {expected}: the file "
        f"changed after it was stored, so it is not used. Delete it{record} and run `pulumi up` again to download it "
        f"anew from {artifact.url}"
    )


@dataclass(frozen=True)
class Status:
    """One artifact as found in the store."""

    artifact: Artifact
    #: ``ok``; ``missing``; ``unrecorded`` (a chart without its record: `up` checks it against its repository);
    #: ``changed`` (refused: ``problem`` says why).
    state: str
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def inspect(artifact: Artifact) -> Status:
    """Whether ``artifact`` is in the store and is what it must be (reads and hashes the file)."""
    try:
        if not regular_or_missing(artifact.path):
            return Status(artifact, "missing")
        expected, source = expected_digest(artifact)
    except StoreError as error:
        return Status(artifact, "changed", str(error))
    if expected is None:
        return Status(artifact, "unrecorded")
    found = sha256_of(artifact.path)
    if found != expected:
        return Status(artifact, "changed", changed_message(artifact, found, expected, source))
    return Status(artifact, "ok")


def inspect_all(artifacts: Sequence[Artifact]) -> list[Status]:
    return [inspect(a) for a in artifacts]


def generation(statuses: Sequence[Status], record: str, fresh: Callable[[], str]) -> str:
    """The store step's generation token: the one its last run recorded while every artifact is in place (no
    diff, nothing runs), a fresh one when something is missing or the stack has no record (the step runs)."""
    token = ""
    if record and os.path.isfile(record) and not os.path.islink(record):
        try:
            token = str(json.loads(Path(record).read_text()).get("generation", ""))
        except (OSError, ValueError, AttributeError):
            token = ""
    if token and all(s.ok for s in statuses):
        return token
    return fresh()


def stack_plan(
    settings: Settings,
    addons: AddonSettings,
    home: str,
    kind: Asset | None = None,
    crd_url: str = versions.GATEWAY_API_CRD_URL,
    local_registry: LocalRegistryPlan | None = None,
) -> StorePlan:
    """What this stack's ``up`` needs besides the caches' content (no generation yet: see :func:`generation`).

    :param kind: the pinned kind release when `up` runs that one instead of an installed kind.
    :param local_registry: the registry the nodes pull ``localhost:<port>/...`` from (its volume is named like its
        container, components/local_registry.py); another stack's is found by its container.
    """
    cache = settings.cache
    mirrors: dict[str, dict[str, str | None]] = {
        m.host: {
            "container": cache.container_name(m) if m.is_local else m.shared_container,
            "volume": cache.volume_name(m) if m.is_local else None,
            "shared": m.shared,
            "what": "cache",
        }
        for m in cache.mirrors
    }
    if local_registry is not None:
        mirrors[f"localhost:{local_registry.port}"] = {
            "container": local_registry.container,
            "volume": None if local_registry.shared else local_registry.container,
            "shared": None,
            "what": "local registry",
        }
    addon_images, _ = warmup.addon_images(addons)
    return StorePlan(
        owner=settings.owner,
        artifacts=tuple(stack_artifacts(home, addons, kind, crd_url)),
        images=tuple(dict.fromkeys([*addon_images, *settings.warmup.images])),
        node_image=settings.cluster.node_image,
        registry_image=cache.image if cache.local_mirrors or (local_registry and not local_registry.shared) else "",
        cluster=settings.cluster.name,
        cache_owner=f"{settings.project}/{cache.use_stack}" if cache.use_stack else settings.owner,
        mirrors=mirrors,
        record=record_path(settings.state_dir),
    )
