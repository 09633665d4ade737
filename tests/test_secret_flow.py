"""Class 4 of issue #18: a value set with ``pulumi config set --secret`` under any key stays a secret wherever it flows.

The whole program runs under mocks twice with the key stored as a secret, each time with another value (drawn by
hypothesis). Whatever differs between the two runs derives from the secret value, so every resource input,
component output and stack output that differs must be a secret in both runs, and none that is plain may hold the
value. Pulumi reports secretness per top-level key only (krc/config/secrecy.py says why), so the test sets one key
at a time, whatever its name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from harness import Recording, run_program
from krc.config import TOP_KEYS
from krc.config.secrecy import Taint, leaves, taint

MARKERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=12).map(lambda s: f"zq{s}")


def _octet(marker: str) -> int:
    return 1 + hashlib.sha256(marker.encode()).digest()[0] % 200


#: A valid value of each top-level key carrying ``marker`` where the program uses it.
VALUES: dict[str, Callable[[str], Any]] = {
    "cluster": lambda m: {"name": f"c{m}", "controlPlanes": 1, "workers": 1},
    "network": lambda m: {"name": f"n{m}", "subnet": f"10.{_octet(m)}.0.0/16", "mtu": 1400},
    "cache": lambda m: {
        "namePrefix": f"p{m}",
        "ttl": "168h",
        "mirrors": {"quay.io": {"shared": f"http://s{m}.example:5000/v2/x"}, "registry.example.com": f"https://r{m}.example"},
    },
    "docker": lambda m: {"host": f"unix:///run/d{m}/docker.sock"},
    "certsDir": lambda m: f"~/c{m}/certs.d",
    "warmup": lambda m: {"images": [f"ghcr.io/acme/w{m}:1.0"], "platform": "linux/arm64"},
    "addons": lambda m: {"cilium": {"values": {"extra": {"token": f"t{m}", "deep": [{"x": f"u{m}"}]}}}},
    "localRegistry": lambda m: {"enabled": True, "name": f"r{m}"},
}
SECRET_KEYS = [k for k in TOP_KEYS if k != "credentials"]


def test_every_top_level_key_but_credentials_has_a_value_here():
    assert sorted(VALUES) == sorted(SECRET_KEYS)


def record(key: str, marker: str, secret: bool, monkeypatch) -> Recording:
    # Generation tokens are random per run; fixed here so that only the secret value differs between runs.
    monkeypatch.setattr("secrets.token_hex", lambda n=None: "0" * 12)
    return run_program("dev", overrides={key: VALUES[key](marker)}, secret_keys=(key,) if secret else ())


def plain_values(rec: Recording) -> list[tuple[str, Any]]:
    """(where, value) of every input, component output and stack output that is not a secret."""
    found = []
    for res in rec.resources:
        found += [(f"{res.name}.{k}", v) for k, v in res.inputs.items() if k not in res.secret_inputs]
    for urn, (values, secret) in rec.component_outputs.items():
        found += [(f"{urn}.{k}", v) for k, v in values.items() if k not in secret]
    found += [(f"output {k}", v) for k, v in rec.outputs.items() if k not in rec.secret_outputs]
    return found


def differing_but_plain(a: Recording, b: Recording) -> list[str]:
    """What differs between the two runs (so derives from the secret value) and is plain in either."""
    wrong = []
    by_urn_a, by_urn_b = {r.urn: r for r in a.resources}, {r.urn: r for r in b.resources}
    assert set(by_urn_a) == set(by_urn_b), "resource names must not carry the value"
    for urn, ra in by_urn_a.items():
        rb = by_urn_b[urn]
        for k in set(ra.inputs) | set(rb.inputs):
            if ra.inputs.get(k) != rb.inputs.get(k) and (k not in ra.secret_inputs or k not in rb.secret_inputs):
                wrong.append(f"{ra.type} {ra.name}.{k}")
    for urn in set(a.component_outputs) | set(b.component_outputs):
        (va, sa), (vb, sb) = a.component_outputs.get(urn, ({}, set())), b.component_outputs.get(urn, ({}, set()))
        for k in set(va) | set(vb):
            if va.get(k) != vb.get(k) and (k not in sa or k not in sb):
                wrong.append(f"{urn}.{k}")
    for k in set(a.outputs) | set(b.outputs):
        if a.outputs.get(k) != b.outputs.get(k) and (k not in a.secret_outputs or k not in b.secret_outputs):
            wrong.append(f"output {k}")
    return wrong


@pytest.mark.parametrize("key", SECRET_KEYS)
@hsettings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=MARKERS, second=MARKERS)
def test_a_secret_key_reaches_state_and_outputs_only_as_a_secret(key, first, second, monkeypatch):
    if first == second:
        return
    a, b = record(key, first, True, monkeypatch), record(key, second, True, monkeypatch)
    assert differing_but_plain(a, b) == []
    for rec, marker in ((a, first), (b, second)):
        leaked = [where for where, value in plain_values(rec) if marker in str(value)]
        assert leaked == [], leaked


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_without_secret_the_same_values_are_plain(key, monkeypatch):
    """The test above can fail: stored without --secret, each key's value does reach plain inputs."""
    rec = record(key, "zqplainvalue1", False, monkeypatch)
    assert any("zqplainvalue1" in str(value) for _, value in plain_values(rec))


def test_a_secret_helm_value_leaves_unrelated_resources_plain(monkeypatch):
    """Only what holds the value becomes secret: the caches, network and cluster stay readable."""
    rec = record("addons", "zqhelmtoken1", True, monkeypatch)
    cilium = rec.named("addons-cilium")
    assert "values" in cilium.secret_inputs
    assert all(not r.secret_inputs for r in rec.resources if r.type.startswith("docker:"))
    assert "clusterName" not in rec.secret_outputs


def test_credentials_still_reach_only_their_cache_as_secrets(monkeypatch):
    monkeypatch.setattr("secrets.token_hex", lambda n=None: "0" * 12)
    rec = run_program(
        "dev",
        overrides={"credentials": {"docker.io": {"username": "zquser1234", "password": "zqpass5678"}}},
        secret_keys=("credentials",),
    )
    leaked = [where for where, value in plain_values(rec) if "zqpass5678" in str(value) or "zquser1234" in str(value)]
    assert leaked == []


# --- the pure part ---------------------------------------------------------------------------------------------


def test_taint_matches_values_in_every_spelling_and_numbers_only_as_numbers():
    t = taint({"cache": {"mirrors": {"Quay.IO": {"shared": "HTTP://Cache.Example/ "}}, "hostPortStart": 5100}}, ["cache"])
    assert t.touches("server = 'http://cache.example/'") and t.touches({"x": ["HTTP://Cache.Example"]})
    assert t.touches(5100) and t.touches("127.0.0.1:5100") and not t.touches("port 51000") and not t.touches(15100)
    assert not t.touches("quay.io"), "a mapping key is no secret: the stack file shows it in plain text"
    assert not Taint()
    assert leaves({"a": [1, True, None, "x", {"b": 2.5}]}) == ({"x"}, {1, 2.5})
