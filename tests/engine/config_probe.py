"""A program for the engine tier: the project's own config reader (``program.config.load``) under the real
engine, exporting what it read. It registers no resource, so it needs no provider plugin."""
import json

import pulumi

from program import config

loaded = config.load()
settings = loaded.settings
pulumi.export("mirrors", [m.host for m in settings.cache.mirrors])
pulumi.export("workers", settings.cluster.workers)
pulumi.export("credentials", {host: {"username": user, "password": password}
                              for host, (user, password) in loaded.credentials.items()})
pulumi.export("secretKeys", sorted(key for key in pulumi.runtime.config.CONFIG.get()
                                   if pulumi.runtime.is_config_secret(key)))
# What the engine handed the program, non-secret keys only, as the mocks harness compares it.
pulumi.export("config", json.dumps({key: value for key, value in pulumi.runtime.config.CONFIG.get().items()
                                    if not pulumi.runtime.is_config_secret(key)}, sort_keys=True))
