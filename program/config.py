"""The only reader of ``pulumi.Config``: stack settings, validated before anything is created."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from krc import config as settings_module
from krc.config import NAMESPACE, TOP_KEYS, Settings, SettingsError, certsdir
from krc.config import addons as addon_settings
from krc.config import localregistry
from krc.config.addons import AddonSettings
from krc.preflight import kindrelease


@dataclass(frozen=True)
class StackConfig:
    """Validated settings plus the upstream logins, which exist only as Pulumi secrets."""

    settings: Settings
    #: upstream host -> (username, password) as secret outputs.
    credentials: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]]
    #: ``DOCKER_HOST`` from the environment, if set.
    env_docker_host: str | None
    #: The Helm add-ons installed on the cluster.
    addons: AddonSettings = field(default_factory=AddonSettings)
    #: The user's home directory (the pinned kind is kept under ``~/.kind-registry-cache/bin``).
    home: str = ""
    #: Tests only: where the pinned kind is downloaded from instead of kind's releases (``KRC_KIND_DOWNLOAD_BASE``).
    kind_download_base: str | None = None
    #: The registry for the user's own images (``localRegistry``).
    local_registry: localregistry.LocalRegistrySettings = field(
        default_factory=lambda: localregistry.LocalRegistrySettings(enabled=False)
    )


def _raw(key: str) -> Any:
    """A config value as stored, secret or not, without logging it or warning about it.

    ``Config.get_secret_object`` would wrap the value in an Output, but validation must run
    synchronously, before any resource is registered; the value never leaves this module unwrapped.
    """
    text = pulumi.runtime.get_config(f"{NAMESPACE}:{key}")
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _unknown_keys() -> list[str]:
    """A problem for each ``kind-registry-cache:<key>`` the program does not read (a typo would be ignored)."""
    prefix = f"{NAMESPACE}:"
    keys = [key[len(prefix):] for key in pulumi.runtime.config.CONFIG.get() if key.startswith(prefix)]
    return [
        f"{NAMESPACE}:{key}: unknown key{settings_module.did_you_mean(key, TOP_KEYS)}; allowed keys: {', '.join(TOP_KEYS)}"
        for key in sorted(set(keys) - set(TOP_KEYS))
    ]


def load() -> StackConfig:
    """Read and validate the stack's config; raise ``pulumi.RunError`` (no traceback) when it is invalid."""
    raw_credentials = _raw("credentials")
    problems: list[str] = _unknown_keys()
    settings: Settings | None = None
    try:
        settings = settings_module.parse(
            project=pulumi.get_project(),
            stack=pulumi.get_stack(),
            home=str(Path.home()),
            cluster=_raw("cluster"),
            network=_raw("network"),
            cache=_raw("cache"),
            credentials=raw_credentials,
            docker=_raw("docker"),
            certs_dir=_raw("certsDir"),
            warmup=_raw("warmup"),
        )
    except SettingsError as error:
        problems.extend(error.problems)
    if settings is not None:
        # Reads the file system only: an existing folder must be this stack's (certsdir's ownership rules).
        problem = certsdir.ownership_problem(
            settings.certs_dir, settings.owner, legacy_ok=settings.certs_dir_is_default
        )
        if problem:
            problems.append(f"{NAMESPACE}:certsDir: {problem}")
    # Parsed even when the rest is invalid, so one run reports every problem; MetalLB's range is
    # checked against the subnet only when the network settings are valid.
    try:
        addons = addon_settings.parse(_raw("addons"), subnet=settings.network.subnet if settings else None)
    except SettingsError as error:
        problems.extend(error.problems)
    # Checked against the caches' and the cluster's host ports only when those settings are valid.
    try:
        local_registry = localregistry.parse(
            _raw("localRegistry"),
            stack=pulumi.get_stack(),
            used=localregistry.ports_in_use(settings.cache, settings.cluster) if settings else None,
        )
    except SettingsError as error:
        problems.extend(error.problems)
    if problems:
        raise pulumi.RunError(str(SettingsError(problems))) from None
    assert settings is not None

    if raw_credentials and not pulumi.runtime.is_config_secret(f"{NAMESPACE}:credentials"):
        # Every step for every configured host (valid hosts: parse passed), so one more run passes.
        hosts = sorted(str(host) for host in raw_credentials) if isinstance(raw_credentials, dict) else ["docker.io"]
        steps = ", ".join(
            f"`pulumi config set --secret --path '{NAMESPACE}:credentials[\"{host}\"].{part}' <{part}>`"
            for host in hosts
            for part in ("username", "password")
        )
        raise pulumi.RunError(
            f"{NAMESPACE}:credentials is stored in plain text in Pulumi.{pulumi.get_stack()}.yaml. "
            f"Remove it (`pulumi config rm {NAMESPACE}:credentials`) and set each login again with --secret: {steps}"
        )

    credentials = {}
    for mirror in settings.cache.mirrors:
        login = settings_module.credentials_for(raw_credentials, mirror.host)
        if login is not None:
            credentials[mirror.host] = (pulumi.Output.secret(login[0]), pulumi.Output.secret(login[1]))
    return StackConfig(
        settings=settings,
        credentials=credentials,
        env_docker_host=os.environ.get("DOCKER_HOST"),
        addons=addons,
        home=str(Path.home()),
        kind_download_base=os.environ.get(kindrelease.BASE_URL_ENV) or None,
        local_registry=local_registry,
    )
