"""A program for the engine tier: the project's own secret handling under the real engine (issue #18, class 4).

It reads the config with ``program.config.load``, turns on ``program.secrets.protect`` as ``__main__`` does, then
registers a component (no provider plugin needed) whose outputs carry the add-ons' Helm values, and exports them
plain, as the program's outputs would be; ``protect_outputs`` runs last, as in ``__main__``."""
import pulumi

from program import config, secrets

loaded = config.load()
secrets.protect(loaded.secrets)


class Probe(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("kind-registry-cache:test:SecretProbe", name, None, None)
        self.values = dict(loaded.addons.cilium.values)
        self.register_outputs({"values": self.values, "workers": loaded.settings.cluster.workers})


probe = Probe("probe")
pulumi.export("ciliumValues", probe.values)
pulumi.export("secretKeys", sorted(key for key in pulumi.runtime.config.CONFIG.get() if pulumi.runtime.is_config_secret(key)))
secrets.protect_outputs(loaded.secrets)
