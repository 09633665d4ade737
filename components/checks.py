"""Moved to :mod:`krc.config.checks`; this name stays until imports are repointed."""

from krc.config.checks import *  # noqa: F401,F403
from krc.config.checks import HOSTNAME, Url, control_character, parse_url, port_problem, redact, text_problem  # noqa: F401
