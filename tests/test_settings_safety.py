"""Validation that cannot be slipped: every string setting is refused with its key, or reaches every artefact intact.

One property over all string-valued settings (issue: safety): a value is either refused by a message
naming its key (never a traceback), or every artefact it reaches parses — the shell scripts (`sh -n`),
each hosts.toml (TOML), the kind config (YAML) — and carries the value literally.
"""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from krc import config as settings
from krc.config import addons as addon_settings
from krc.render import certs
from krc.config import SettingsError
from krc.render import addon_values, kindconfig, mirrors, registry

HOME = "/home/dev"
OWNER = "kind-registry-cache/dev"

NASTY = [
    "", " ", "x\n", "\nx", "a\rb", "a\x00b", "a\x1bb", "a\u200bb", "a\u2028b", "x\t", "'", '"', "\\", "$HOME", "$(id)",
    "`id`", "a;b", "a b", "a&&b", "--", "-x", "~", "..", "../..", "/", "é", "ı", "ＡＢＣ", "\u00b5s", "١٢٣", "x" * 300,
    "http://[::1", "http://h:99999", "http://h:0", "http://h:abc", "https://u:SECRET@h", "https://u@h", "https://h/path",
    "https://h?q", "https://h#f", "https://-h-", "https://h_h", "https://[::1]:5000", "https://127.0.0.1:5000",
    "registry:3\n", "dev\n", "168h\n", "7d", "0", "0s", "1.5h", "-1h", "172.30.0.0/16\n", "10.0.0.0/24",
    "linux/amd64\n", "quay.io/a/b:1\n", "1.20.0\n", "oci://h/charts\n", "10.0.255.200-10.0.255.250\n",
    "unix:///var/run/docker.sock", "ssh://me@host", "ssh://me:pw@host", "tcp://[::1", "tcp://h:2376\n",
]


def values() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(NASTY), st.text(max_size=40), st.from_regex(r"[a-z0-9][a-z0-9.:/_@-]{0,30}", fullmatch=True))


#: Key (as messages name it) -> raw stack config carrying the value there.
SETTINGS: dict[str, Callable[[str], dict[str, Any]]] = {
    "cluster.name": lambda v: {"cluster": {"name": v}},
    "cluster.nodeImage": lambda v: {"cluster": {"nodeImage": v}},
    "cluster.portMappings[0].listenAddress": lambda v: {"cluster": {"portMappings": [{"containerPort": 80, "listenAddress": v}]}},
    "cluster.portMappings[0].protocol": lambda v: {"cluster": {"portMappings": [{"containerPort": 80, "protocol": v}]}},
    "cluster.controlPlanes": lambda v: {"cluster": {"controlPlanes": v}},
    "cluster.portMappings[0].hostPort": lambda v: {"cluster": {"portMappings": [{"containerPort": 80, "hostPort": v}]}},
    "network.name": lambda v: {"network": {"name": v}},
    "network.subnet": lambda v: {"network": {"subnet": v}},
    "network.mtu": lambda v: {"network": {"mtu": v}},
    "cache.image": lambda v: {"cache": {"image": v}},
    "cache.ttl": lambda v: {"cache": {"ttl": v}},
    "cache.namePrefix": lambda v: {"cache": {"namePrefix": v}},
    "cache.useStack": lambda v: {"cache": {"useStack": v}},
    "cache.hostPortStart": lambda v: {"cache": {"hostPortStart": v}},
    "cache.mirrors": lambda v: {"cache": {"mirrors": {v: "https://registry.example.com"}}},
    "cache.mirrors.docker.io": lambda v: {"cache": {"mirrors": {"docker.io": v}}},
    "cache.mirrors.quay.io.shared": lambda v: {"cache": {"mirrors": {"quay.io": {"shared": v}}}},
    "docker.host": lambda v: {"docker": {"host": v}},
    "certsDir": lambda v: {"certs_dir": v},
    "warmup.images[0]": lambda v: {"warmup": {"images": [v]}},
    "warmup.platform": lambda v: {"warmup": {"platform": v}},
    "warmup.parallel": lambda v: {"warmup": {"parallel": v}},
}

ADDON_SETTINGS: dict[str, Callable[[str], dict[str, Any]]] = {
    "addons.cilium.version": lambda v: {"cilium": {"version": v}},
    "addons.cilium.repository": lambda v: {"cilium": {"repository": v}},
    "addons.metallb.range": lambda v: {"metallb": {"range": v}},
    "addons.ingressNginx.version": lambda v: {"ingressNginx": {"version": v}},
}


def sh_value(script: str, variable: str) -> str:
    """What ``variable`` holds after the script's first lines (its assignments), evaluated by sh."""
    assignments = "\n".join(line for line in script.splitlines()[:3] if line.startswith(f"{variable}="))
    return subprocess.run(["sh", "-c", f'{assignments}\nprintf %s "${variable}"'], capture_output=True, text=True, check=True).stdout


def sh_parses(script: str) -> bool:
    return subprocess.run(["sh", "-n", "-c", script]).returncode == 0


def check_artefacts(s: settings.Settings, raw: dict[str, Any], key: str, value: str) -> None:
    options = addon_values.kind_options(s.certs_dir, cilium=True, ingress=True)
    kind = yaml.safe_load(kindconfig.render(s.cluster, options))
    files = mirrors.hosts_files(mirrors.entries(s.cache))
    for content in files.values():
        tomllib.loads(content)
    write = certs.write_script(s.certs_dir, s.owner, files)
    remove = certs.remove_script(s.certs_dir, s.owner, sorted({p.split("/")[0] for p in files}))
    for script in (write, remove, kindconfig.create_script(s.cluster.name), kindconfig.delete_script(s.cluster.name)):
        assert sh_parses(script), script
    assert sh_value(write, "dir") == s.certs_dir
    assert kind["nodes"][0]["extraMounts"][0]["hostPath"] == s.certs_dir
    for mirror in s.cache.local_mirrors:
        env = registry.environment(mirror.remote, s.cache.ttl)
        assert all("\n" not in v and "\r" not in v for v in env.values())
    # The value itself, where it lands.
    if key == "cluster.name":
        assert kind["name"] == value
    elif key == "cluster.nodeImage":
        assert {n["image"] for n in kind["nodes"]} == {value}
    elif key == "certsDir":
        # "" is "not set": the default folder.
        assert s.certs_dir == (value.replace("~", HOME, 1).rstrip("/") or f"{HOME}/.kind-registry-cache/dev/certs.d")
    elif key == "cache.ttl":
        assert s.cache.ttl == value
    elif key == "cache.mirrors.docker.io":
        assert tomllib.loads(files["docker.io/hosts.toml"])["server"] == value.rstrip("/")
    elif key == "cache.mirrors.quay.io.shared":
        assert list(tomllib.loads(files["quay.io/hosts.toml"])["host"]) == [value.rstrip("/")]
    elif key == "docker.host":
        assert s.docker.host == (value or None)


@pytest.mark.parametrize("key", sorted(SETTINGS))
@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values())
def test_every_string_setting_is_refused_by_key_or_reaches_artefacts_intact(key, value):
    refused_by_key_or_intact(key, value)


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_every_known_bad_value_in_every_string_setting(key):
    # The same property, exhaustively over the hand-picked values (hypothesis samples only some of them).
    for value in NASTY:
        refused_by_key_or_intact(key, value)


def refused_by_key_or_intact(key: str, value: str) -> None:
    raw = SETTINGS[key](value)
    try:
        s = settings.parse(project="kind-registry-cache", stack="dev", home=HOME, **raw)
    except SettingsError as error:
        section = key.split("[")[0].rsplit(".", 1)[0] if "." in key else key
        assert any(p.startswith(f"kind-registry-cache:{section}") for p in error.problems), (key, error.problems)
        assert "SECRET" not in str(error)
        return
    check_artefacts(s, raw, key, value)


@pytest.mark.parametrize("key", sorted(ADDON_SETTINGS))
@hsettings(max_examples=60, deadline=None)
@given(value=values())
def test_every_addon_string_is_refused_by_key_or_kept_clean(key, value):
    import ipaddress

    try:
        parsed = addon_settings.parse(ADDON_SETTINGS[key](value), subnet=ipaddress.IPv4Network("10.0.0.0/16"))
    except SettingsError as error:
        assert any(p.startswith(f"kind-registry-cache:{key}") for p in error.problems), (key, error.problems)
        return
    chart = {"cilium": parsed.cilium, "metallb": parsed.metallb, "ingressNginx": parsed.ingress_nginx}[key.split(".")[1]]
    for field in ("version", "repository"):
        assert "\n" not in getattr(chart, field)


# --- the cases the safety issue names -------------------------------------------------------


def problems_of(**raw: Any) -> list[str]:
    with pytest.raises(SettingsError) as info:
        settings.parse(project="kind-registry-cache", stack="dev", home=HOME, **raw)
    return info.value.problems


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        pytest.param({"cluster": {"name": "dev\n"}}, "cluster.name", id="cluster-name"),
        pytest.param({"cache": {"image": "registry:3\n"}}, "cache.image", id="cache-image"),
        pytest.param({"cache": {"useStack": "dev2\n"}}, "cache.useStack", id="use-stack"),
        pytest.param({"cache": {"ttl": "0\n"}}, "cache.ttl", id="ttl"),
        pytest.param({"network": {"name": "kind\n"}}, "network.name", id="network-name"),
        pytest.param({"cache": {"namePrefix": "kcr\n"}}, "cache.namePrefix", id="prefix"),
        pytest.param({"warmup": {"platform": "linux/amd64\n"}}, "warmup.platform", id="platform"),
        pytest.param({"cache": {"mirrors": {"docker.io\n": "https://r.example"}}}, "cache.mirrors.'docker.io\\n'", id="mirror-key"),
        pytest.param({"network": {"subnet": "10.1.0.0/16\n"}}, "network.subnet", id="subnet"),
    ],
)
def test_trailing_newlines_are_refused(raw, key):
    assert any(p.startswith(f"kind-registry-cache:{key}: ") for p in problems_of(**raw)), problems_of(**raw)


@pytest.mark.parametrize(
    ("raw", "key", "says"),
    [
        pytest.param({"cache": {"mirrors": {"docker.io": "http://[::1"}}}, "cache.mirrors.docker.io", "not a valid URL", id="bad-ipv6"),
        pytest.param({"cache": {"mirrors": {"docker.io": "http://h.example:99999"}}}, "cache.mirrors.docker.io", "valid URL", id="port-high"),
        pytest.param({"cache": {"mirrors": {"docker.io": "http://h.example:0"}}}, "cache.mirrors.docker.io", "port 0", id="port-zero"),
        pytest.param({"cache": {"mirrors": {"docker.io": "http://h.example:ab"}}}, "cache.mirrors.docker.io", "valid URL", id="port-text"),
        pytest.param({"cache": {"mirrors": {"docker.io": "https://bad_host"}}}, "cache.mirrors.docker.io", "neither a DNS name", id="host"),
        pytest.param({"cache": {"mirrors": {"docker.io": {"shared": "http://[::1"}}}}, "cache.mirrors.docker.io.shared", "valid URL", id="shared"),
        pytest.param({"cache": {"mirrors": {"r.example:70000": "https://r.example"}}}, "cache.mirrors.r.example:70000", "port", id="key-port"),
        pytest.param({"docker": {"host": "tcp://[::1"}}, "docker.host", "valid URL", id="docker-host"),
        pytest.param({"cluster": {"controlPlanes": "three"}}, "cluster.controlPlanes", "integer", id="count-text"),
        pytest.param({"cluster": {"workers": "٣"}}, "cluster.workers", "integer", id="count-arabic-digit"),
        pytest.param({"cluster": {"portMappings": [{"containerPort": "80x"}]}}, "cluster.portMappings[0].containerPort", "integer", id="port-mapping"),
        pytest.param({"cluster": {"portMappings": [{"containerPort": 80, "listenAddress": 2130706433}]}}, "cluster.portMappings[0].listenAddress", "IP address", id="listen-int"),
        pytest.param({"network": {"mtu": 1500.5}}, "network.mtu", "integer", id="mtu-float"),
    ],
)
def test_malformed_values_get_a_message_not_a_traceback(raw, key, says):
    found = [p for p in problems_of(**raw) if p.startswith(f"kind-registry-cache:{key}: ")]
    assert found and says in found[0], problems_of(**raw)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"credentials": {"docker.io": "dckr_pat_SECRET"}}, id="credential-as-string"),
        pytest.param({"credentials": {"docker.io": ["dckr_pat_SECRET"]}}, id="credential-as-list"),
        pytest.param({"credentials": {"docker.io": {"username": "me", "pasword": "dckr_pat_SECRET"}}}, id="misspelt"),
        pytest.param({"cache": {"mirrors": {"docker.io": "https://me:dckr_pat_SECRET@registry-1.docker.io"}}}, id="url"),
        pytest.param({"cache": {"mirrors": {"docker.io": "https://me:dckr_pat_SECRET@registry-1.docker.io/v2/x"}}}, id="url-path"),
        pytest.param({"cache": {"mirrors": {"docker.io": {"shared": "https://me:dckr_pat_SECRET@cache.example"}}}}, id="shared"),
        pytest.param({"docker": {"host": "ssh://me:dckr_pat_SECRET@builder"}}, id="docker-host"),
    ],
)
def test_secrets_are_never_echoed(raw):
    problems = problems_of(**raw)
    assert problems and all("SECRET" not in p for p in problems), problems
    assert any(("credentials" in p) or ("pasword" in p) for p in problems), problems


def test_userinfo_in_a_url_is_refused_pointing_at_credentials():
    (problem,) = problems_of(cache={"mirrors": {"docker.io": "https://me:tok@registry-1.docker.io"}})
    assert problem.startswith("kind-registry-cache:cache.mirrors.docker.io: ")
    assert "kind-registry-cache:credentials" in problem


def test_two_hosts_with_one_cache_name_are_refused_naming_cache_mirrors():
    (problem,) = problems_of(cache={"mirrors": {"registry-k8s.io": "https://r.example"}})
    assert problem.startswith("kind-registry-cache:cache.mirrors: ")
    assert "'registry.k8s.io' and 'registry-k8s.io'" in problem


def test_all_problems_are_reported_at_once():
    problems = problems_of(
        cluster={"name": "Bad Name", "workers": "x"}, network={"subnet": "8.8.8.0/24"}, cache={"ttl": "7d"}, certs_dir="~"
    )
    keys = {p.split(": ", 1)[0] for p in problems}
    assert keys == {
        "kind-registry-cache:cluster.name",
        "kind-registry-cache:cluster.workers",
        "kind-registry-cache:network.subnet",
        "kind-registry-cache:cache.ttl",
        "kind-registry-cache:certsDir",
    }
