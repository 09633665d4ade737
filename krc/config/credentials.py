"""``credentials``: upstream logins, host -> {username, password}, set only as Pulumi secrets (no Pulumi here).

pydantic checks the shape (:class:`CredentialConfig`, unknown keys refused with did-you-mean); the messages
never show a value under ``credentials`` (:func:`krc.config.errors.problems_from` describes it by type).
Kept hand-written: which hosts may have a login (a configured mirror, not one pulled through a shared
cache) and the fix naming the exact ``pulumi config set --secret`` command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import WithJsonSchema

from .base import ConfigModel
from .cache import CacheSettings, normalize_host
from .errors import NAMESPACE, problem, show_key

#: How Pulumi stores a secret in Pulumi.<stack>.yaml.
SECURE_SCHEMA = {
    "type": "object",
    "properties": {"secure": {"type": "string", "description": "the value, encrypted by `pulumi config set --secret`"}},
    "required": ["secure"],
    "additionalProperties": False,
}
_SECRET_TEXT_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1}, SECURE_SCHEMA]}
_SECRET_TEXT = WithJsonSchema(_SECRET_TEXT_SCHEMA)
#: One host's login as it appears in Pulumi.<stack>.yaml (each value a secret).
CREDENTIAL_SCHEMA = {
    "type": "object",
    "description": "A login to one upstream registry; set each value with --secret.",
    "properties": {"username": _SECRET_TEXT_SCHEMA, "password": _SECRET_TEXT_SCHEMA},
    "additionalProperties": False,
}


class CredentialConfig(ConfigModel):
    """A login to one upstream registry."""

    username: Annotated[str, _SECRET_TEXT] | None = None
    """The user name (set with --secret)."""
    password: Annotated[str, _SECRET_TEXT] | None = None
    """The password or access token (set with --secret)."""


def check(credentials: Mapping[str, CredentialConfig], cache: CacheSettings) -> tuple[CacheSettings, list[str]]:
    """``cache`` with ``has_credentials`` set, and a problem for each login no mirror can use or that is incomplete."""
    hosts = {m.host for m in cache.mirrors}
    shared = {m.host: m.shared for m in cache.mirrors if m.shared}
    problems: list[str] = []
    logins: set[str] = set()
    spelled: dict[str, str] = {}
    for host_raw, entry in credentials.items():
        host = normalize_host(str(host_raw))
        key = f"credentials.{show_key(host_raw)}"
        if host in spelled:
            # Two spellings of one host (docker.io, Docker.IO): which login the cache used would be chance.
            problems.append(
                problem(
                    key,
                    f"names the same upstream as credentials.{show_key(spelled[host])}: keep one login "
                    f"(`pulumi config rm --path '{NAMESPACE}:credentials[\"{_quoted(host_raw)}\"]'`)",
                )
            )
            continue
        spelled[host] = str(host_raw)
        if host not in hosts:
            problems.append(problem(key, f"names no configured mirror; configured: {', '.join(sorted(hosts)) or 'none'}"))
            continue
        if host in shared:
            problems.append(
                problem(
                    key,
                    f"{host} is pulled through the shared cache {shared[host]}, which logs in to the upstream itself; "
                    f"remove this login (`pulumi config rm --path '{NAMESPACE}:credentials[\"{host}\"]'`)",
                )
            )
            continue
        missing = [k for k in ("username", "password") if not getattr(entry, k)]
        if missing:
            problems.append(
                problem(
                    key,
                    f"needs a non-empty {' and '.join(missing)}: "
                    f"`pulumi config set --secret --path '{NAMESPACE}:credentials[\"{host}\"].{missing[0]}' <value>`",
                )
            )
            continue
        logins.add(host)
    mirrors = tuple(dataclasses.replace(m, has_credentials=m.host in logins) for m in cache.mirrors)
    return dataclasses.replace(cache, mirrors=mirrors), problems


def _quoted(host: Any) -> str:
    """``host`` as it goes between the double quotes of a ``--path`` key (a control character makes it unusable)."""
    return str(host).replace("\\", "\\\\").replace('"', '\\"')


def credentials_for(raw: Any, host: str) -> tuple[str, str] | None:
    """The (username, password) configured for ``host``, already validated by :func:`krc.config.parse`."""
    if not isinstance(raw, Mapping):
        return None
    for key, entry in raw.items():
        if normalize_host(str(key)) == host and isinstance(entry, Mapping):
            return str(entry["username"]), str(entry["password"])
    return None
