"""Operational commands, each run as ``python -m krc.commands.<name>``, and the docker CLI helper they share."""
