"""The artifact store step: the pinned kind, the add-ons' charts and the Gateway API CRDs, downloaded by `up` into
``~/.kind-registry-cache`` and verified, so that the cluster and its add-ons are installed from local files."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pulumi
import pulumi_command as command

from krc.preflight.store import CHART, CRD, StorePlan
from krc.render import gateway

TOKEN = "kind-registry-cache:index:ArtifactStore"

#: The project root: ``python -m krc.commands.store`` runs from here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Removes the stack's record of the step (that exact file, never through a symlink); the shared store stays.
FORGET = 'r="${KRC_STORE_RECORD:-}"; if [ -n "$r" ] && [ -f "$r" ] && [ ! -L "$r" ]; then rm -f -- "$r"; fi\n'

T = TypeVar("T")


@dataclass
class ArtifactStoreArgs:
    """Inputs of :class:`ArtifactStore`."""

    plan: StorePlan
    #: Paths found in the store, verified, while the program ran: their values are known during preview.
    ready: Collection[str] = field(default_factory=frozenset)


class ArtifactStore(pulumi.ComponentResource):
    """One Command, ``python -m krc.commands.store``, that leaves every artifact of the plan verified in the store.

    It runs when the stack is first brought up, when the plan changes, and when the program found an artifact
    missing (a new generation token in ``triggers``); otherwise nothing runs and no request is made. What it
    stored is used from the store's paths: :meth:`chart` and :meth:`crd_objects`.
    """

    done: list[pulumi.Resource]
    """What must wait for the store (the kind cluster, the Helm releases, the CRDs)."""

    def __init__(self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        self._plan = args.plan
        self._ready = frozenset(args.ready)
        fill = f"cd {shlex.quote(str(PROJECT_ROOT))} && exec {shlex.quote(sys.executable)} -m krc.commands.store"
        # Downloads happen here, during `up`, never while the program merely runs (preview changes nothing).
        # The store is shared by the user's stacks and kept on destroy, like the cache volumes; destroy removes
        # only this stack's record. Delete before replace: a new generation's record must outlive the old delete.
        # No `dir`, and the delete names neither the checkout nor its interpreter: pulumi-command runs a delete with
        # the `dir` and `environment` stored at create (v1.2.1 provider/pkg/provider/local/commandController.go:93-99),
        # and a checkout moved since must not fail `pulumi destroy`.
        self._fetch = command.local.Command(
            f"{name}-fetch",
            create=fill,
            update=fill,
            delete=FORGET,
            stdin=args.plan.to_json(),
            environment={"KRC_STORE_RECORD": args.plan.record},
            triggers=[args.plan.generation],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.done = [self._fetch]
        self.register_outputs({})

    def _once_stored(self, paths: Collection[str], produce: Callable[[], T]) -> pulumi.Input[T]:
        """``produce()`` now when ``paths`` were verified in the store while the program ran; else once `up` has
        stored them (unknown during a preview, so nothing reads a file that is not there yet)."""
        if paths and set(paths) <= self._ready:
            return produce()
        return self._fetch.stdout.apply(lambda _: produce())

    def charts(self) -> dict[str, pulumi.Input[str]]:
        """Chart name -> the local archive its Helm release installs (the enabled add-ons' charts)."""
        found: dict[str, pulumi.Input[str]] = {}
        for artifact in (a for a in self._plan.artifacts if a.kind == CHART):
            found[artifact.chart] = self._once_stored([artifact.path], lambda path=artifact.path: path)
        return found

    def gateway_crds(self) -> pulumi.Input[list[dict[str, Any]]] | None:
        """The Gateway API release's objects (:func:`gateway.crd_objects`, each file checked against its pin), read
        from the store; ``None`` when the plan has no CRDs."""
        paths = [a.path for a in self._plan.artifacts if a.kind == CRD]
        if not paths:
            return None
        folder = Path(paths[0]).parent
        return self._once_stored(paths, lambda: gateway.crd_objects(folder.name, folder))
