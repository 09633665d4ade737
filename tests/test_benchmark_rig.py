"""benchmarks/rig.py without an engine: the baselines' hosts.toml."""
from __future__ import annotations

from benchmarks import rig


def test_baseline_hosts_toml_sends_the_node_straight_to_the_url():
    assert rig.baseline_hosts_toml("http://up-quay-io:5080") == (
        'server = "http://up-quay-io:5080"\n\n[host."http://up-quay-io:5080"]\n  capabilities = ["pull", "resolve"]\n')
