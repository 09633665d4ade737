"""benchmarks/accesslogs.py without an engine: a run whose pull bypassed a cache is discarded and done again."""
from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks import accesslogs


def test_a_bypassed_run_is_done_again_once_and_told():
    bench = SimpleNamespace(discarded=[], discarded_details=[])
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise accesslogs.BypassError("bench-worker1 did not get 6 blob(s) from kcr-itest-quay-io\ndetails")
        return 42

    assert accesslogs.attempt(bench, "50 Mbit/s run 1", flaky) == 42
    assert bench.discarded == ["50 Mbit/s run 1: bench-worker1 did not get 6 blob(s) from kcr-itest-quay-io"]
    assert "details" in bench.discarded_details[0]


def test_a_run_that_keeps_bypassing_fails():
    bench = SimpleNamespace(discarded=[], discarded_details=[])

    def always():
        raise accesslogs.BypassError("went upstream")

    with pytest.raises(accesslogs.BypassError):
        accesslogs.attempt(bench, "3 cold nodes", always)
    assert len(bench.discarded) == accesslogs.ATTEMPTS


def test_accesslogs_knows_nothing_of_the_rig():
    # rig.py builds an AccessLogs; accesslogs.py must not import rig.py back (not even for type checking).
    tree = ast.parse((Path(accesslogs.__file__)).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {m for m in imported if m and m.split(".")[-1] == "rig"}, imported


@pytest.mark.parametrize(("path", "kind", "expected"), [
    ("/v2/cilium/cilium/blobs/sha256:ab", "blobs", "blobs"),
    ("/v2/cilium/cilium/manifests/v1", "manifests", "manifests"),
    ("/token", "other", "token"),
    ("/v2/", "other", "ping"),
    ("/v2/_catalog", "other", "other"),
])
def test_request_kind_tells_tokens_and_pings_apart(path, kind, expected):
    assert accesslogs.request_kind(SimpleNamespace(path=path, kind=kind)) == expected


def test_reads_go_through_the_given_reader_from_the_marks():
    logs = {"up-quay-io": [SimpleNamespace(kind="blobs", method="GET", status=200, size=10, reference="a", remote="n")] * 3}
    reader = accesslogs.AccessLogs(
        read=lambda source: logs[source], ip_of=lambda node: "n", upstreams={"quay.io": "up-quay-io"},
        caches={"quay.io": "up-quay-io"}, blobs={"quay.io": {"a": 10, "b": 5}},
        blob_bytes_served=lambda entries: sum(e.size for e in entries), wait_cached=lambda *a, **k: None)
    assert reader.marks() == {"quay.io": 3}
    assert reader.upstream_bytes({"quay.io": 1}) == 20
    assert reader.around_caches(SimpleNamespace(name="w"), {}) == {"quay.io": {"b"}}
    assert reader.image_bytes == 15
