"""Moved to :mod:`krc.config` (pydantic models); this shim stays until imports are repointed."""

from krc.config import *  # noqa: F401,F403
from krc.config import __all__  # noqa: F401
from krc.config.cache import DOCKER_NAME as _DOCKER_NAME  # noqa: F401
from krc.config.errors import show as _show  # noqa: F401
from krc.config.fields import to_boolean  # noqa: F401
from krc.config.gateway import _Collector as _Problems  # noqa: F401
