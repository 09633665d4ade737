"""What pulumi-docker reads back from the network the program creates, on the real engine, equals the inputs.

pulumi-docker 5.1.0 (and master through 2026-08-14, the newest source readable here; 5.2.0's tree is not) builds
terraform-provider-docker v4.5.0 (its ``upstream`` submodule at 5074970c, the v4.5.0 tag). Its network resource:

- creates the network with exactly the configured labels, driver, options, IPAM driver (default ``default``) and
  IPAM configs (internal/provider/resource_docker_network_funcs.go:26-76);
- reads back name, labels, driver, internal, attachable, ingress, ipv6, ipam_driver, ipam_options, scope,
  options and ipam_config (subnet, ip_range, gateway, aux_address when set) from ``NetworkInspect``
  (resource_docker_network_funcs.go:160-203; resource_docker_network_structures.go:11-37);
- and every one of those attributes is ``ForceNew`` (resource_docker_network.go), so a read-back value that
  differs from the program's input plans a replacement of the network on the next `up`.

This creates the network as the provider would from the program's recorded inputs and compares what the provider
would read back with those inputs, attribute by attribute. (The program also ignores changes to ``options``, in
case an engine adds its own keys there: tests/test_engine_rules.py.)
"""
from __future__ import annotations

import docker
import pytest

from . import stack
from .containers import normalize_inputs

pytestmark = pytest.mark.integration


def provider_create(client: docker.DockerClient, inputs: dict) -> str:
    """``resourceDockerNetworkCreate`` (v4.5.0 resource_docker_network_funcs.go:26-76) with the recorded inputs."""
    spec = normalize_inputs(inputs)
    ipam = docker.types.IPAMConfig(
        driver=spec.get("ipam_driver", "default"),  # the schema's Default (resource_docker_network.go)
        pool_configs=[
            docker.types.IPAMPool(subnet=c.get("subnet"), gateway=c.get("gateway"), iprange=c.get("ip_range"))
            for c in spec.get("ipam_configs", [])
        ],
    )
    created = client.api.create_network(
        spec["name"], driver=spec.get("driver"), options=spec.get("options"), ipam=ipam,
        internal=bool(spec.get("internal")), attachable=spec.get("attachable"),
        labels={item["label"]: item["value"] for item in spec.get("labels", [])},
    )
    return created["Id"]


def provider_read(client: docker.DockerClient, network_id: str) -> dict:
    """What ``resourceDockerNetworkReadRefreshFunc`` (v4.5.0 resource_docker_network_funcs.go:160-203) sets."""
    found = client.api.inspect_network(network_id)
    ipam = found.get("IPAM") or {}
    configs = []
    for config in ipam.get("Config") or []:  # flattenIpamConfigSpec: only the non-empty fields
        flat = {key: config[field] for key, field in
                (("subnet", "Subnet"), ("ip_range", "IPRange"), ("gateway", "Gateway")) if config.get(field)}
        if config.get("AuxiliaryAddresses"):
            flat["aux_address"] = dict(config["AuxiliaryAddresses"])
        configs.append(flat)
    return {
        "name": found["Name"],
        "labels": dict(found.get("Labels") or {}),
        "driver": found["Driver"],
        "internal": bool(found.get("Internal")),
        "attachable": bool(found.get("Attachable")),
        "ingress": bool(found.get("Ingress")),
        "ipv6": bool(found.get("EnableIPv6")),
        "ipam_driver": ipam.get("Driver"),
        "ipam_options": dict(ipam.get("Options") or {}),
        "options": dict(found.get("Options") or {}),
        "ipam_config": configs,
    }


@pytest.mark.parametrize("mtu", [1500, 1450])
def test_what_the_provider_reads_back_from_the_programs_network_equals_its_inputs(docker_client, tmp_path, mtu):
    rec = stack.record(tmp_path / "certs.d", network={"name": stack.NETWORK, "subnet": stack.SUBNET, "mtu": mtu})
    (network,) = rec.of_type("docker:index/network:Network")
    inputs = normalize_inputs(network.inputs)
    read = provider_read(docker_client, provider_create(docker_client, network.inputs))
    engine = docker_client.version()
    where = f"Docker Engine {engine.get('Version')} (API {engine.get('ApiVersion')})"

    # The one map the engine may add its own keys to: what the provider stores must be exactly the program's.
    assert read["options"] == inputs["options"], f"{where} reports driver options the program did not ask for"
    assert read["options"]["com.docker.network.driver.mtu"] == str(mtu)
    assert read["ipam_config"] == [{"subnet": c["subnet"], "gateway": c["gateway"]} for c in inputs["ipam_configs"]]
    assert read["labels"] == {item["label"]: item["value"] for item in inputs["labels"]}
    assert (read["name"], read["driver"]) == (inputs["name"], inputs["driver"])
    # Inputs the program leaves unset: the provider's zero values and schema default, which the engine keeps.
    assert (read["internal"], read["attachable"], read["ingress"], read["ipv6"]) == (False, False, False, False), where
    assert read["ipam_driver"] == "default"
    assert read["ipam_options"] == {}
    assert set(inputs) <= {"name", "driver", "options", "ipam_configs", "labels"}, "a new input: compare it here too"
