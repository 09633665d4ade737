"""The kind cluster: hosts.toml files on the host, `kind create cluster`, and its kubeconfig."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from . import certsdir, kindconfig
from .settings import ClusterSettings

TOKEN = "kind-registry-cache:index:KindCluster"


@dataclass
class KindClusterArgs:
    """Inputs of :class:`KindCluster`."""

    settings: ClusterSettings
    options: kindconfig.KindOptions
    #: certs.d-relative path -> content: one ``<host>/hosts.toml`` per mirror.
    hosts_files: Mapping[str, str]
    #: ``<project>/<stack>``: the owner written into the certs folder (certsdir.OWNER_FILE).
    owner: str
    #: Adopt a certs folder holding the unnamed marker of earlier versions (only the stack's default folder).
    adopt_legacy_certs: bool = False
    #: The docker network kind puts the nodes on (``KIND_EXPERIMENTAL_DOCKER_NETWORK``).
    network_name: str = "kind"
    #: The Docker engine kind talks to; ``None`` for the Docker CLI's own choice.
    docker_host: str | None = None
    #: Resources the cluster waits for (the network and the caches).
    depends_on: Sequence[pulumi.Resource] = ()


class KindCluster(pulumi.ComponentResource):
    """A kind cluster whose containerd reads its mirrors from a host folder mounted on every node."""

    name: pulumi.Output[str]
    """The kind cluster's name."""
    kubeconfig: pulumi.Output[str]
    """The kubeconfig for reaching the cluster from the host (secret)."""
    config: pulumi.Output[str]
    """The kind config the cluster was created from."""

    def __init__(self, name: str, args: KindClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        cluster_name = args.settings.name
        config_yaml = kindconfig.render(args.settings, args.options)
        environment = {"KIND_EXPERIMENTAL_DOCKER_NETWORK": args.network_name}
        if args.docker_host:
            environment["DOCKER_HOST"] = args.docker_host

        # hosts.toml files live on the host and are mounted into every node (kind extraMounts).
        # containerd re-reads certs.d on every pull, so a mirror change is an in-place update of
        # these files and never recreates the cluster. The scripts touch only this stack's folder
        # and the exact files they recorded (certsdir); another folder means another resource.
        certs_dir = args.options.certs_dir
        write = certsdir.write_script(certs_dir, args.owner, args.hosts_files, legacy_ok=args.adopt_legacy_certs)
        certs = command.local.Command(
            f"{name}-certs",
            create=write,
            update=write,
            delete=certsdir.remove_script(certs_dir, args.owner, sorted({p.split("/", 1)[0] for p in args.hosts_files})),
            triggers=[certs_dir],
            opts=pulumi.ResourceOptions(parent=self),
        )

        # Any change to what kind is given means a different cluster: delete the old one first
        # (the name is reused), and never run `kind create` over an existing cluster.
        cluster = command.local.Command(
            f"{name}-cluster",
            create=kindconfig.create_script(cluster_name),
            delete=kindconfig.delete_script(cluster_name),
            stdin=config_yaml,
            environment=environment,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[certs, *args.depends_on],
                replace_on_changes=["create", "delete", "stdin", "environment"],
                delete_before_replace=True,
            ),
        )

        # The kubeconfig holds a client key: secret in state, and never echoed to the update log.
        kubeconfig = command.local.Command(
            f"{name}-kubeconfig",
            create=kindconfig.kubeconfig_script(cluster_name),
            environment=environment,
            triggers=[cluster.id],
            logging=command.local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster], additional_secret_outputs=["stdout"]),
        )

        self.name = cluster.id.apply(lambda _: cluster_name)
        self.kubeconfig = pulumi.Output.secret(kubeconfig.stdout)
        self.config = pulumi.Output.from_input(config_yaml)
        self.resource = cluster
        self.register_outputs({"name": self.name, "kubeconfig": self.kubeconfig, "config": self.config})
