"""The only reader of ``pulumi.Config``: stack settings, validated before anything is created."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from krc import config as settings_module
from krc.config import NAMESPACE, TOP_KEYS, Settings, SettingsError, certsdir
from krc.config import addons as addon_settings
from krc.config import localregistry
from krc.config import raw as raw_values
from krc.config import secrecy
from krc.config.addons import AddonSettings
from krc.preflight import kindrelease, store


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
    #: The values of config keys set with ``--secret`` (other than credentials), which must stay secret
    #: wherever they flow (program/secrets.py).
    secrets: secrecy.Taint = field(default_factory=secrecy.Taint)
    #: Tests only: where the Gateway API CRDs are downloaded from (``KRC_GATEWAY_API_CRD_URL``, a URL template).
    gateway_crd_url: str | None = None


def _raw(key: str, problems: list[str] | None = None) -> Any:
    """A config value as stored, secret or not, without logging it or warning about it.

    ``Config.get_secret_object`` would wrap the value in an Output, but validation must run
    synchronously, before any resource is registered; the value never leaves this module unwrapped.
    A value nested too deep or holding a number Pulumi cannot carry (:mod:`krc.config.raw`) is reported into
    ``problems`` and read as not set, so it reaches neither validation nor any resource.
    """
    text = pulumi.runtime.get_config(f"{NAMESPACE}:{key}")
    if text is None:
        return None
    value, found = raw_values.loads(text)
    if found:
        if problems is not None:
            problems.extend(f"{NAMESPACE}:{key}{'.' + path if path else ''}: {why}" for path, why in found)
        return None
    return value


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
    problems: list[str] = _unknown_keys()
    raw = {key: _raw(key, problems) for key in TOP_KEYS}
    raw_credentials = raw["credentials"]
    settings: Settings | None = None
    try:
        settings = _parse_settings(raw)
    except SettingsError as error:
        problems.extend(error.problems)
    if settings is not None:
        # Reads the file system only: an existing folder must be this stack's (certsdir's ownership rules).
        problem = certsdir.ownership_problem(
            settings.certs_dir, settings.owner, legacy_ok=settings.certs_dir_is_default, home=str(Path.home())
        )
        if problem:
            problems.append(f"{NAMESPACE}:certsDir: {problem}")
    # Parsed even when the rest is invalid, so one run reports every problem; MetalLB's range is
    # checked against the subnet only when the network settings are valid.
    try:
        addons = addon_settings.parse(raw["addons"], subnet=settings.network.subnet if settings else None)
    except SettingsError as error:
        problems.extend(error.problems)
    # Checked against the caches' and the cluster's host ports only when those settings are valid.
    try:
        local_registry = localregistry.parse(
            raw["localRegistry"],
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
        secrets=secrecy.taint(raw, secret_keys(), _parse_everything),
        gateway_crd_url=os.environ.get(store.CRD_URL_ENV) or None,
    )


def secret_keys() -> list[str]:
    """The top-level keys stored with ``--secret`` (any value inside them), credentials aside: those are handed
    over as secrets one by one above."""
    return [k for k in TOP_KEYS if k != "credentials" and pulumi.runtime.is_config_secret(f"{NAMESPACE}:{k}")]


def _parse_settings(raw: dict[str, Any]) -> Settings:
    return settings_module.parse(
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        home=str(Path.home()),
        cluster=raw.get("cluster"),
        network=raw.get("network"),
        cache=raw.get("cache"),
        credentials=raw.get("credentials"),
        docker=raw.get("docker"),
        certs_dir=raw.get("certsDir"),
        warmup=raw.get("warmup"),
    )


def _parse_everything(raw: Any) -> list[Any]:
    """Settings and add-ons of ``raw`` (pure: no file system), for the values a secret key derives."""
    settings = _parse_settings(dict(raw))
    return [
        settings,
        addon_settings.parse(raw.get("addons"), subnet=settings.network.subnet),
        localregistry.parse(raw.get("localRegistry"), stack=settings.stack),
    ]
