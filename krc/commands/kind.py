"""Download the pinned kind release, checksum-verified: ``python -m krc.commands.kind --path P --url U --sha256 S``.

The artifact store (``python -m krc.commands.store``, run by a pulumi-command resource during ``up``) keeps the
pinned kind with the charts and the CRDs; this command is what the cluster's scripts run when that binary was
deleted since (``kindconfig.KIND_PRELUDE``). Both leave the verified binary at ``P`` (under
``~/.kind-registry-cache/bin/``, never on the user's PATH), refuse a stored copy whose sha256 is not the pinned one
(naming both digests), or fail and leave nothing behind. Which asset to fetch is chosen in
krc/preflight/kindrelease.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from krc import versions
from krc.commands import store as store_command
from krc.preflight import store
from krc.preflight.kindrelease import Asset, KindReleaseError, bin_dir


def ensure(target: Asset, fetcher: store_command.Fetcher | None = None) -> str:
    """Leave the verified binary at ``target.path``; ``"present"`` if it already was, else ``"downloaded"``.

    Only ``target.path`` and temporary files beside it are ever written or deleted, never through a symlink.
    """
    folder = Path(target.path).parent
    try:
        outcome, _ = store_command.ensure(store.kind_artifact(target), fetcher or store_command.Fetcher(), folder.parent)
    except store.StoreError as error:
        raise KindReleaseError(str(error)) from None
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m krc.commands.kind", description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", required=True, help="where the binary is kept (under ~/.kind-registry-cache/bin)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--sha256", required=True)
    args = parser.parse_args(argv)
    folder = bin_dir(str(Path.home()))
    path = Path(args.path)
    if path.parent != folder or not path.name.startswith("kind-"):
        print(f"kind-registry-cache: refusing to write {path}: kind is kept only as {folder}/kind-*", file=sys.stderr)
        return 2
    target = Asset(os="", arch="", url=args.url, sha256=args.sha256, path=str(path))
    try:
        outcome = ensure(target)
    except (KindReleaseError, OSError) as error:
        print(f"kind-registry-cache: {error}", file=sys.stderr)
        return 1
    print(f"kind {versions.KIND_VERSION} {outcome}: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
