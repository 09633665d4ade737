"""The kind cluster: hosts.toml files on the host, `kind create cluster`, and its kubeconfig."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from krc.config import ClusterSettings
from krc.preflight import KindChoice
from krc.render import certs as certs_scripts
from krc.render import kindconfig

TOKEN = "kind-registry-cache:index:KindCluster"


@dataclass
class KindClusterArgs:
    """Inputs of :class:`KindCluster`."""

    settings: ClusterSettings
    options: kindconfig.KindOptions
    #: certs.d-relative path -> content: one ``<host>/hosts.toml`` per mirror.
    hosts_files: Mapping[str, str]
    #: ``<project>/<stack>``: the owner written into the certs folder (krc.config.certsdir.OWNER_FILE).
    owner: str
    #: Adopt a certs folder holding the unnamed marker of earlier versions (only the stack's default folder).
    adopt_legacy_certs: bool = False
    #: The docker network kind puts the nodes on (``KIND_EXPERIMENTAL_DOCKER_NETWORK``).
    network_name: str = "kind"
    #: The Docker engine kind talks to; ``None`` for the Docker CLI's own choice.
    docker_host: str | None = None
    #: Resources the cluster waits for (the network, the caches and the artifact store with the pinned kind).
    depends_on: Sequence[pulumi.Resource] = ()
    #: The kind binary to run, and the pinned release (in the artifact store) when it is not an installed kind.
    kind: KindChoice = KindChoice(path="kind")
    #: Generation token of the cluster (and its certs folder): a new one recreates both (``preflight.generations``).
    generation: str = ""
    #: The file the create script records the generation in, read back by the preflight.
    record: str = ""


class KindCluster(pulumi.ComponentResource):
    """A kind cluster whose containerd reads its mirrors from a host folder mounted on every node."""

    name: pulumi.Output[str]
    """The kind cluster's name."""
    kubeconfig: pulumi.Output[str]
    """The kubeconfig for reaching the cluster from the host (secret)."""
    config: pulumi.Output[str]
    """The kind config the cluster was created from."""
    identity: str
    """Changes exactly when the cluster is replaced: the Kubernetes provider's ``clusterIdentifier``."""

    def __init__(self, name: str, args: KindClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        cluster_name = args.settings.name
        config_yaml = kindconfig.render(args.settings, args.options)
        # Which kind runs: an installed one (its path), or the pinned release kept under ~/.kind-registry-cache/bin.
        # Only that path goes into the commands' environment: what runs on delete must not depend on where the
        # checkout or its virtualenv was (pulumi-command v1.2.1 runs a delete with the `dir` and `environment`
        # stored at create: provider/pkg/provider/local/commandController.go:93-99, commandOutputs.go:73-86).
        # A pinned kind (``args.kind.download``) is downloaded by `up` into the artifact store (components/
        # artifact_store.py: checked on every run, fetched again when missing), which the cluster waits for through
        # `depends_on`, never while the program merely runs; the create script refuses to run without it
        # (kindconfig.KIND_PRELUDE).
        kind_env = {"KRC_KIND": args.kind.path}
        environment = {"KIND_EXPERIMENTAL_DOCKER_NETWORK": args.network_name, **kind_env}
        if args.docker_host:
            environment["DOCKER_HOST"] = args.docker_host

        # hosts.toml files live on the host and are mounted into every node (kind extraMounts).
        # containerd re-reads certs.d on every pull, so a mirror change is an in-place update of
        # these files and never recreates the cluster. The scripts touch only this stack's folder
        # and the exact files they recorded (krc.render.certs); another folder means another resource.
        # A new cluster generation (the cluster or this folder was removed by hand) writes the folder
        # afresh, delete first, before the cluster is created again: nodes keep seeing a deleted
        # folder's old inode, so the two are made again together.
        certs_dir = args.options.certs_dir
        write = certs_scripts.write_script(certs_dir, args.owner, args.hosts_files, legacy_ok=args.adopt_legacy_certs)
        certs = command.local.Command(
            f"{name}-certs",
            create=write,
            update=write,
            delete=certs_scripts.remove_script(certs_dir, args.owner, sorted({p.split("/", 1)[0] for p in args.hosts_files})),
            triggers=[certs_dir, args.generation],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )

        # Any change to what kind is given (`stdin`, the kind config) means a different cluster: delete the old one
        # first (the name is reused), and never run `kind create` over an existing cluster. What else must recreate
        # it is in `triggers` (the engine, the network, the generation). Everything else is an in-place update that
        # runs nothing (`update`) and stores the new inputs, so the next delete runs with them: a new kind binary
        # path, and new text of the scripts themselves. The scripts are the program's, not the cluster's: an upgrade
        # of this program that rewrites them must not delete and recreate every user's cluster (and a replacement
        # would run the *old* delete script, stored at create, which is exactly what an upgrade may be fixing).
        # pulumi-command v1.2.1 provider/pkg/provider/local/command.go `Update` (lines 67-90): state = the new
        # inputs, then runs `update`; `Delete` (lines 93-99) runs the stored `delete`. Only `triggers` is
        # replace-on-change in its schema (provider/pkg/provider/common/inputs.go line 10).
        # No `dir`: the scripts use absolute paths only, and a stored folder that was moved would fail the delete.
        create, delete = kindconfig.create_script(cluster_name), kindconfig.delete_script(cluster_name)
        triggers = [args.network_name, args.docker_host or "", args.generation]
        cluster = command.local.Command(
            f"{name}-cluster",
            create=create,
            delete=delete,
            update=":",
            stdin=config_yaml,
            environment=environment | {"KRC_CLUSTER_GENERATION": args.generation, "KRC_CLUSTER_RECORD": args.record},
            triggers=triggers,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[certs, *args.depends_on],
                replace_on_changes=["stdin", "triggers"],
                delete_before_replace=True,
            ),
        )

        # The kubeconfig holds a client key: secret in state, and never echoed to the update log; nor is the previous
        # one handed to the script (pulumi-command v1.2.1 puts the last stdout in PULUMI_COMMAND_STDOUT unless told
        # not to: provider/pkg/provider/local/commandOutputs.go:88-95).
        # It is read again only when the cluster is new (`triggers`). A change of `environment` alone (kind installed
        # on PATH, so another KRC_KIND) is ignored: otherwise the update would make `stdout` unknown in preview
        # (pulumi-go-provider v1.3.0 infer/resource.go:565-587: an output is computed when an input changed), and
        # with it the Kubernetes provider's kubeconfig. A replacement still runs with the current environment: the
        # engine checks a replaced resource's inputs afresh, without ignore_changes (pulumi/pulumi pkg/v3 v3.274.0
        # pkg/resource/deploy/step_generator.go:2102-2121; v3.259.0 :2003-2023).
        kubeconfig = command.local.Command(
            f"{name}-kubeconfig",
            create=kindconfig.kubeconfig_script(cluster_name),
            environment=environment,
            triggers=[cluster.id],
            logging=command.local.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[cluster], additional_secret_outputs=["stdout"], ignore_changes=["environment"]
            ),
        )

        # What makes this a different cluster: exactly the inputs that replace the cluster command (and its name).
        # The Kubernetes provider is replaced only when it changes (`clusterIdentifier`).
        self.identity = hashlib.sha256(json.dumps([cluster_name, config_yaml, triggers]).encode()).hexdigest()[:16]
        self.name = cluster.id.apply(lambda _: cluster_name)
        self.kubeconfig = pulumi.Output.secret(kubeconfig.stdout)
        self.config = pulumi.Output.from_input(config_yaml)
        self.resource = cluster
        self.register_outputs({"name": self.name, "kubeconfig": self.kubeconfig, "config": self.config})
