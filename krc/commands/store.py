"""Fill the artifact store: ``python -m krc.commands.store`` with a stack's store plan (JSON) on stdin.

Run by a pulumi-command resource during ``up`` (never while the program merely runs). For each artifact of the plan
(krc/preflight/store.py says what they are and where they are kept):

- already stored and its sha256 is the pinned one (kind, Gateway API CRDs) or the one recorded at its first
  download (charts): used as it is, with no request at all;
- stored but different: refused, naming both digests; nothing is replaced;
- not stored: downloaded to a temporary file beside its place, checked, then renamed into place. A chart is
  checked against the digest its repository lists for that version (``index.yaml``, or the chart layer of an
  ``oci://`` manifest), which is recorded beside it; a failed or refused download leaves no file and names the
  URL and the setting that asked for it.

Then it writes the stack's record (``<state dir>/offline.json``: the plan and its generation token) and prints
``{path: sha256}``. Only paths under ``~/.kind-registry-cache`` are ever written, never through a symlink.
Hand-written on purpose: a Helm repository index and an OCI registry's anonymous token handshake are a few HTTP
requests, which the standard library does; no chart library checks the digest (Helm v3.20.2 does not either).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from krc.config import certsdir
from krc.preflight.store import (
    CHART,
    KIND,
    RECORD_NAME,
    Artifact,
    StoreError,
    StorePlan,
    changed_message,
    expected_digest,
    normalize_digest,
    read_record,
    regular_or_missing,
    root,
    sha256_of,
)

#: Helm's chart layer media types (Helm v3.20.2 pkg/registry/constants.go: ChartLayerMediaType, and the legacy one
#: its Pull still accepts).
CHART_LAYER_TYPES = ("application/vnd.cncf.helm.chart.content.v1.tar+gzip", "application/tar+gzip")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: Temporary files of a download that died with its process are swept after this long.
STALE_PART_SECONDS = 3600

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Fetcher:
    """HTTP(S) GETs with a timeout; ``context`` lets tests trust their own CA for a loopback https server."""

    def __init__(self, timeout: float = 60.0, context: ssl.SSLContext | None = None) -> None:
        self.timeout = timeout
        self.context = context

    def open(self, url: str, headers: dict[str, str] | None = None, auth: str | None = None) -> BinaryIO:
        request = urllib.request.Request(url, headers=headers or {})
        if auth:
            # Not sent again on a redirect: registries send blobs to a CDN that rejects a second credential.
            request.add_unredirected_header("Authorization", auth)
        return urllib.request.urlopen(request, timeout=self.timeout, context=self.context)  # noqa: S310

    def read(self, url: str, headers: dict[str, str] | None = None, auth: str | None = None) -> bytes:
        with self.open(url, headers, auth) as response:
            return response.read()


def _failed(artifact: Artifact, url: str, error: object) -> StoreError:
    if isinstance(error, urllib.error.HTTPError):
        why = f"HTTP {error.code} {error.reason}"
    elif isinstance(error, urllib.error.URLError):
        why = str(error.reason)
    else:
        why = str(error) or type(error).__name__
    return StoreError(
        f"downloading {artifact.name} from {url} failed ({why}); it is needed by {artifact.setting}. Nothing was "
        f"kept. Check the network and that URL, then run `pulumi up` again"
    )


# --- writing, only under the store and never through a symlink ---------------------------------------------


def _plain_folder(path: Path, store: Path) -> None:
    """Make ``path`` (under ``store``) a real folder, refusing a symlink anywhere below the store."""
    if store not in path.parents and path != store:
        raise StoreError(f"refusing to write {path}: the artifact store is {store}")
    store.mkdir(mode=0o755, parents=True, exist_ok=True)
    for folder in [*reversed(path.relative_to(store).parents), path.relative_to(store)][1:]:
        current = store / folder
        if os.path.islink(current):
            raise StoreError(f"{current} is a symlink; the artifact store keeps only its own folders. Remove it and run again")
        current.mkdir(mode=0o755, exist_ok=True)


def _sweep_stale_parts(path: str) -> None:
    folder, name = os.path.split(path)
    now = time.time()
    for entry in os.scandir(folder):
        if entry.name.startswith(f"{name}.part-") and entry.is_file(follow_symlinks=False):
            if now - entry.stat(follow_symlinks=False).st_mtime > STALE_PART_SECONDS:
                os.unlink(entry.path)


def _remove(path: str) -> None:
    if os.path.lexists(path) and not os.path.islink(path):
        os.unlink(path)


def _write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    part = f"{path}.part-{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(part, mode)
        os.replace(part, path)
    except BaseException:
        _remove(part)
        raise


def download(
    fetcher: Fetcher, artifact: Artifact, url: str, expected: str, source: str, auth: str | None = None
) -> str:
    """Download ``url`` to a temporary file beside ``artifact.path``; keep it only if its sha256 is ``expected``.

    :returns: the path of the checked temporary file (the caller renames it into place).
    """
    _sweep_stale_parts(artifact.path)
    part = f"{artifact.path}.part-{os.getpid()}-{secrets.token_hex(4)}"
    digest = hashlib.sha256()
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as out, fetcher.open(url, auth=auth) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except BaseException as error:
        _remove(part)
        if isinstance(error, Exception):
            raise _failed(artifact, url, error) from None
        raise
    found = digest.hexdigest()
    if found != expected:
        _remove(part)
        raise StoreError(
            f"{artifact.name} downloaded from {url} has sha256 {found}, but the sha256 {source} is {expected}; "
            f"the file was removed and nothing was kept. It is needed by {artifact.setting}; run `pulumi up` again "
            f"later, and if it persists the file at that URL is not the one that was pinned"
        )
    return part


# --- where a chart comes from ----------------------------------------------------------------------------------


def resolve_reference(base: str, ref: str) -> str:
    """Helm's ``repo.ResolveReferenceURL``: ``ref`` as it is when absolute, else relative to ``base`` + ``/``,
    keeping ``base``'s query (Helm v3.20.2 pkg/repo/chartrepo.go:287)."""
    if urllib.parse.urlsplit(ref).scheme:
        return ref
    parts = urllib.parse.urlsplit(base)
    folder = parts._replace(path=parts.path.rstrip("/") + "/", query="", fragment="")
    joined = urllib.parse.urlsplit(urllib.parse.urljoin(urllib.parse.urlunsplit(folder), ref))
    return urllib.parse.urlunsplit(joined._replace(query=parts.query))


def from_index(fetcher: Fetcher, artifact: Artifact) -> tuple[str, str, str]:
    """The chart archive's URL and digest from the repository's ``index.yaml``; and where the digest came from.

    As Helm (v3.20.2 pkg/repo/chartrepo.go:225 ``FindChartInAuthAndTLSAndPassRepoURL``, :117
    ``DownloadIndexFile``): the index is ``<repository>/index.yaml``, the version's first URL is resolved against the
    repository, and an exact version string matches first (pkg/repo/index.go:183 ``IndexFile.Get``).
    """
    index_url = resolve_reference(artifact.url, "index.yaml")
    try:
        index = yaml.load(fetcher.read(index_url), Loader=_SAFE_LOADER)
    except yaml.YAMLError as error:
        raise StoreError(f"{index_url} is not a Helm repository index ({error}); check {artifact.setting}") from None
    except Exception as error:  # noqa: BLE001 - one message naming the URL and the setting
        raise _failed(artifact, index_url, error) from None
    entries = (index or {}).get("entries") or {} if isinstance(index, dict) else {}
    found = next((e for e in entries.get(artifact.chart) or () if isinstance(e, dict)
                  and str(e.get("version")) == artifact.version), None)
    if found is None:
        raise StoreError(
            f"{index_url} lists no chart {artifact.chart} version {artifact.version}; check {artifact.setting} and "
            f"the chart version"
        )
    urls = found.get("urls") or []
    digest = normalize_digest(found.get("digest"))
    if not urls or digest is None:
        missing = "no URL" if not urls else "no sha256 digest"
        raise StoreError(
            f"{index_url} lists {missing} for chart {artifact.chart} {artifact.version}, so it cannot be downloaded "
            f"and checked; use a repository whose index lists digests ({artifact.setting})"
        )
    return resolve_reference(artifact.url, str(urls[0])), digest, f"that {index_url} lists for {artifact.chart} {artifact.version}"


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def _registry_token(fetcher: Fetcher, challenge: str, artifact: Artifact) -> str:
    """An anonymous pull token from the registry's token service (the Docker registry token handshake)."""
    scheme, _, params = challenge.partition(" ")
    if scheme.lower() != "bearer":
        raise StoreError(
            f"{artifact.url} asks for {scheme or 'a'} login; the store pulls charts anonymously, so use a public "
            f"repository ({artifact.setting})"
        )
    fields = dict(_CHALLENGE.findall(params))
    realm = fields.pop("realm", "")
    if not realm:
        raise StoreError(f"{artifact.url}: the registry's login challenge names no token service: {challenge}")
    url = f"{realm}?{urllib.parse.urlencode(fields)}"
    try:
        answer = json.loads(fetcher.read(url))
    except Exception as error:  # noqa: BLE001
        raise _failed(artifact, url, error) from None
    token = answer.get("token") or answer.get("access_token")
    if not token:
        raise StoreError(f"{url} gave no token for an anonymous pull of {artifact.chart}")
    return f"Bearer {token}"


def from_oci(fetcher: Fetcher, artifact: Artifact) -> tuple[str, str, str, str | None]:
    """The chart layer's blob URL and digest in the manifest of ``<repository>/<chart>:<version>``.

    Helm tags a chart version with ``+`` written as ``_`` (OCI tags allow no ``+``).
    """
    reference = artifact.url.removeprefix("oci://").rstrip("/") + "/" + artifact.chart
    host, _, name = reference.partition("/")
    tag = artifact.version.replace("+", "_")
    manifest_url = f"https://{host}/v2/{name}/manifests/{tag}"
    headers = {"Accept": OCI_MANIFEST}
    auth: str | None = None
    try:
        try:
            body = fetcher.read(manifest_url, headers)
        except urllib.error.HTTPError as error:
            if error.code != 401:
                raise
            auth = _registry_token(fetcher, error.headers.get("WWW-Authenticate", ""), artifact)
            body = fetcher.read(manifest_url, headers, auth)
        manifest = json.loads(body)
    except StoreError:
        raise
    except Exception as error:  # noqa: BLE001
        raise _failed(artifact, manifest_url, error) from None
    layer = next((layer for layer in manifest.get("layers", []) if layer.get("mediaType") in CHART_LAYER_TYPES), None)
    digest = normalize_digest((layer or {}).get("digest"))
    if digest is None:
        raise StoreError(f"{manifest_url} has no Helm chart layer ({CHART_LAYER_TYPES[0]}); check {artifact.setting}")
    blob = f"https://{host}/v2/{name}/blobs/sha256:{digest}"
    return blob, digest, f"of the chart layer in {manifest_url}", auth


# --- one artifact ----------------------------------------------------------------------------------------------


def _check_ours(path: str) -> None:
    """Refuse to write, replace or use a file in a folder someone else could change, or a file that is not ours.

    What the store keeps runs (kind) or is installed (charts, CRDs) with the user's rights on every ``up``: the
    folder and every folder above it must be owned by root or the user and writable by no one else
    (krc.config.certsdir's rules), and an existing file the user's own (issue #18, class 1).
    """
    uid = os.geteuid()
    why = certsdir.unsafe_folders(path, uid, below=os.path.basename(path))
    if why:
        raise StoreError(f"{why}; nothing is downloaded or used there: fix the folder's owner or mode and run again")
    if os.path.lexists(path) and os.lstat(path).st_uid != uid:
        raise StoreError(
            f"{path} is owned by user id {os.lstat(path).st_uid}, not by you; it is neither used nor replaced: "
            "remove it yourself and run again"
        )


def ensure(artifact: Artifact, fetcher: Fetcher, store: Path) -> tuple[str, str]:
    """Leave ``artifact`` verified in the store; ``("present" | "downloaded", sha256)``."""
    _plain_folder(Path(artifact.path).parent, store)
    _check_ours(artifact.path)
    expected, source = expected_digest(artifact)
    if regular_or_missing(artifact.path):
        found = sha256_of(artifact.path)
        if expected is not None:
            if found != expected:
                raise StoreError(changed_message(artifact, found, expected, source))
            if artifact.kind == KIND:
                os.chmod(artifact.path, 0o755)  # our own verified binary: runnable
            return "present", found
        # A chart archive without its record: check it against its repository once, then record that.
        url, listed, source, _ = _chart_source(fetcher, artifact)
        if found != listed:
            raise StoreError(changed_message(artifact, found, listed, source))
        _record(artifact, url, listed, source)
        return "present", found
    if artifact.kind != CHART:
        assert expected is not None, "kind and the CRDs are pinned"
        part = download(fetcher, artifact, artifact.url, expected, source)
        os.chmod(part, 0o755 if artifact.kind == KIND else 0o644)
        os.replace(part, artifact.path)
        return "downloaded", expected
    url, listed, listed_source, auth = _chart_source(fetcher, artifact)
    if expected is not None and listed != expected:
        raise StoreError(
            f"{artifact.name}: its repository now lists sha256 {listed} (the sha256 {listed_source}), but the sha256 "
            f"{source} is {expected}; the chart was republished or the repository is not the one it was, so it is not "
            f"downloaded. If you trust the new one, delete {artifact.record_path} and run `pulumi up` again"
        )
    part = download(fetcher, artifact, url, listed, listed_source, auth)
    try:
        _record(artifact, url, listed, listed_source)
        os.chmod(part, 0o644)
        os.replace(part, artifact.path)
    except BaseException:
        _remove(part)
        raise
    return "downloaded", listed


def _chart_source(fetcher: Fetcher, artifact: Artifact) -> tuple[str, str, str, str | None]:
    if artifact.url.startswith("oci://"):
        return from_oci(fetcher, artifact)
    url, digest, source = from_index(fetcher, artifact)
    return url, digest, source, None


def _record(artifact: Artifact, url: str, digest: str, source: str) -> None:
    data = {
        "sha256": digest,
        "source": source,
        "url": url,
        "repository": artifact.url,
        "chart": artifact.chart,
        "version": artifact.version,
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    regular_or_missing(artifact.record_path)  # refuses a symlink in its place
    _write_atomic(artifact.record_path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def ensure_all(artifacts: Sequence[Artifact], fetcher: Fetcher, store: Path) -> dict[str, dict[str, Any]]:
    """Every artifact, in order; the first that cannot be had stops the run (:class:`StoreError`)."""
    return {a.path: dict(zip(("outcome", "sha256"), ensure(a, fetcher, store))) for a in artifacts}


def write_record(plan: StorePlan, home: Path) -> None:
    """The stack's record (its plan and generation token): ``<state dir>/offline.json`` under the home folder."""
    path = Path(plan.record)
    if not path.is_absolute() or path.name != RECORD_NAME or home not in path.parents:
        raise StoreError(f"refusing to write {path}: a stack's record is {RECORD_NAME} in its folder under {home}")
    if os.path.islink(path.parent):
        raise StoreError(f"{path.parent} is a symlink; remove it and run again")
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    regular_or_missing(str(path))  # refuses a symlink in its place
    _write_atomic(str(path), plan.to_json().encode())


def main(argv: Sequence[str] | None = None, fetcher: Fetcher | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m krc.commands.store", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    home = Path.home()
    store = root(str(home))
    try:
        plan = StorePlan.from_json(sys.stdin.read())
    except (ValueError, KeyError, TypeError) as error:
        print(f"kind-registry-cache: the store plan on stdin is not valid: {error}", file=sys.stderr)
        return 2
    outside = [a.path for a in plan.artifacts if store not in Path(a.path).parents]
    if outside:
        print(f"kind-registry-cache: refusing to write {', '.join(outside)}: the artifact store is {store}", file=sys.stderr)
        return 2
    try:
        results = ensure_all(plan.artifacts, fetcher or Fetcher(), store)
        if plan.record:
            write_record(plan, home)
    except (StoreError, OSError) as error:
        print(f"kind-registry-cache: {error}", file=sys.stderr)
        return 1
    for path, result in results.items():
        print(f"kind-registry-cache: {result['outcome']}: {path}", file=sys.stderr)
    print(json.dumps({path: result["sha256"] for path, result in results.items()}, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
