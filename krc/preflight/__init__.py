"""Preflight: the read-only script, parsing its report and the decisions drawn from it; the kind release choice.

- :mod:`.script`: the script the program runs (read-only) and the labels it looks for;
- :mod:`.report`: its output parsed;
- :mod:`.decide`: the decision (kind, network, routability) or a :class:`PreflightError` with the fix;
- :mod:`.drift`: the generation tokens that make ``up`` recreate what was removed by hand;
- :mod:`.localregistry`: whether this stack's local registry can have its name and port, or whose it uses;
- :mod:`.kindrelease`: which pinned kind binary this machine needs.

The names below are the package's interface, so callers write ``preflight.check(...)``.
"""

from .decide import (
    INSTALL_DOCKER, Decision, KindChoice, PreflightError, check, is_remote_engine, kind_network_routable,
    refuse_addons_on_remote_engine,
)
from .drift import Generations, generations, new_token
from .localregistry import LocalRegistryPlan
from .report import DockerNetwork, Report, kind_version, parse
from .script import KIND_CLUSTER_LABEL, LABEL_GENERATION, LABEL_OWNER, SCRIPT, environment

__all__ = [
    "INSTALL_DOCKER", "Decision", "KindChoice", "PreflightError", "check", "is_remote_engine", "kind_network_routable",
    "refuse_addons_on_remote_engine",
    "Generations", "generations", "new_token", "LocalRegistryPlan", "DockerNetwork", "Report", "kind_version", "parse",
    "KIND_CLUSTER_LABEL", "LABEL_GENERATION", "LABEL_OWNER", "SCRIPT", "environment",
]
