"""Create docker networks, volumes and containers from pulumi-docker resource inputs, plus small exec helpers.

The program, run under Pulumi mocks, records the inputs of its ``docker.Network``, ``docker.Volume`` and
``docker.Container`` resources (camelCase wire names, numbers as floats). The functions here accept those
dicts (or the snake_case Python names) and create the same objects on the private engine, so the integration
tests run exactly what the program would ask the Docker provider for.
"""
from __future__ import annotations

import io
import re
import tarfile
import time
from collections.abc import Mapping
from typing import Any

import docker
from docker.models.containers import Container
from docker.models.networks import Network
from docker.models.volumes import Volume
from docker.types import Mount

__all__ = [
    "TEST_LABEL", "container_spec", "create_container_from_inputs", "create_network_from_inputs",
    "create_volume_from_inputs", "exec_ok", "ip_address", "normalize_inputs", "parse_duration", "published_port",
    "put_files", "wait_healthy",
]

#: Put on everything this tier creates (the engine is private anyway; this marks the origin when inspecting).
TEST_LABEL = "io.krc-tests.integration"

# Inputs that change nothing the tests can observe on a started container.
_IGNORED_CONTAINER_INPUTS = {"must_run", "attach", "logs", "remove_volumes", "rm", "destroy_grace_seconds"}
# Values whose keys are data (docker option names, label keys), not input names: never re-cased.
_OPAQUE_KEYS = {"options", "driver_opts", "sysctls", "log_opts", "storage_opts"}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def normalize_inputs(value: Any, _opaque: bool = False) -> Any:
    """Mock-recorded inputs in snake_case with whole floats as ints (``{"networksAdvanced": ..., 5000.0}``
    -> ``{"networks_advanced": ..., 5000}``). Keys inside option maps are left as they are.
    """
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            new_key = key if _opaque else _snake(key)
            out[new_key] = normalize_inputs(item, _opaque=new_key in _OPAQUE_KEYS)
        return out
    if isinstance(value, list | tuple):
        return [normalize_inputs(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration(text: str) -> int:
    """A Go duration (``"10s"``, ``"1m30s"``, ``"500ms"``, ``"0s"``) in nanoseconds, as Docker's API wants."""
    if text in ("0", ""):
        return 0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def _labels(items: list[dict] | None) -> dict[str, str]:
    return {item["label"]: item["value"] for item in items or []}


def _map_image(image: str, image_map: Mapping[str, str]) -> str:
    """``image_map`` looked up by the exact reference, then by repository (``registry`` matches
    ``registry:3``, ``docker.io/library/registry:3`` and ``registry:3@sha256:...``)."""
    if image in image_map:
        return image_map[image]
    repository = image.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if repository.startswith(prefix):
            repository = repository[len(prefix):]
            break
    return image_map.get(repository, image)


def container_spec(
    inputs: Mapping[str, Any], image_map: Mapping[str, str] | None = None, loopback_ports: bool = True,
) -> dict[str, Any]:
    """Translate pulumi-docker ``Container`` inputs into the pieces :func:`create_container_from_inputs` uses.

    Pure: no engine needed. Returns ``{"create": kwargs for APIClient.create_container minus host_config,
    "host_config": kwargs for APIClient.create_host_config, "networks": [(name, aliases, ipv4)], "start": bool,
    "wait": bool, "wait_timeout": seconds}``. Raises ValueError for inputs it does not know how to honour,
    so nothing the program asks for is dropped silently.

    :param image_map: replaces images this engine cannot have (``{"registry": "krc-test/registry:..."}``).
    :param loopback_ports: publish ports on 127.0.0.1 whatever ``ip`` says (pulumi-docker's default is 0.0.0.0).
    """
    spec = normalize_inputs(dict(inputs))
    handled = {
        "name", "image", "envs", "labels", "command", "entrypoints", "hostname", "user", "working_dir",
        "restart", "max_retry_count", "ports", "volumes", "mounts", "networks_advanced", "healthcheck",
        "capabilities", "start", "wait", "wait_timeout", "stop_signal", "stop_timeout", "network_mode", "privileged",
        "sysctls",
    }
    unknown = set(spec) - handled - _IGNORED_CONTAINER_INPUTS
    if unknown:
        raise ValueError(f"container {spec.get('name')!r}: inputs not supported by the test engine: {sorted(unknown)}")
    if spec.get("privileged"):
        raise ValueError("privileged containers cannot run in this sandbox")

    image = _map_image(spec["image"], image_map or {})
    labels = {**_labels(spec.get("labels")), TEST_LABEL: "true"}

    ports: dict[str, Any] = {}
    for port in spec.get("ports") or []:
        ip = "127.0.0.1" if loopback_ports else port.get("ip", "0.0.0.0")
        ports[f"{port['internal']}/{port.get('protocol', 'tcp')}"] = (ip, port.get("external"))

    mounts = []
    for vol in spec.get("volumes") or []:
        if vol.get("volume_name"):
            mounts.append(Mount(vol["container_path"], vol["volume_name"], type="volume",
                                read_only=bool(vol.get("read_only"))))
        elif vol.get("host_path"):
            mounts.append(Mount(vol["container_path"], vol["host_path"], type="bind",
                                read_only=bool(vol.get("read_only"))))
        else:
            raise ValueError(f"volume entry not supported: {vol}")
    for mount in spec.get("mounts") or []:
        mounts.append(Mount(mount["target"], mount.get("source"), type=mount.get("type", "volume"),
                            read_only=bool(mount.get("read_only"))))

    restart = spec.get("restart", "no")
    restart_policy = {"Name": "" if restart == "no" else restart}
    if restart == "on-failure":
        restart_policy["MaximumRetryCount"] = spec.get("max_retry_count", 0)

    healthcheck = None
    if spec.get("healthcheck"):
        hc = spec["healthcheck"]
        healthcheck = {
            "test": hc["tests"],
            "interval": parse_duration(hc.get("interval", "0s")),
            "timeout": parse_duration(hc.get("timeout", "0s")),
            "start_period": parse_duration(hc.get("start_period", "0s")),
            "retries": hc.get("retries", 0),
        }

    caps = spec.get("capabilities") or {}
    networks = [(n["name"], n.get("aliases") or [], n.get("ipv4_address")) for n in spec.get("networks_advanced") or []]
    host_config: dict[str, Any] = {
        "port_bindings": ports, "mounts": mounts, "restart_policy": restart_policy,
        "cap_add": caps.get("adds"), "cap_drop": caps.get("drops"), "sysctls": spec.get("sysctls"),
        "network_mode": networks[0][0] if networks else spec.get("network_mode", "none"),
    }
    create: dict[str, Any] = {
        "image": image, "name": spec["name"], "environment": spec.get("envs") or [], "labels": labels,
        "command": spec.get("command"), "entrypoint": spec.get("entrypoints"), "hostname": spec.get("hostname"),
        "user": spec.get("user"), "working_dir": spec.get("working_dir"), "healthcheck": healthcheck,
        "ports": [(int(k.split("/")[0]), k.split("/")[1]) for k in ports],
        "stop_signal": spec.get("stop_signal"), "stop_timeout": spec.get("stop_timeout"),
    }
    return {
        "create": create, "host_config": host_config, "networks": networks, "start": spec.get("start", True),
        "wait": bool(spec.get("wait")), "wait_timeout": spec.get("wait_timeout", 60),
    }


def create_container_from_inputs(
    client: docker.DockerClient, inputs: Mapping[str, Any], image_map: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None, loopback_ports: bool = True,
) -> Container:
    """Create (and, unless ``start`` is false, start) a container from pulumi-docker ``Container`` inputs.

    The container joins exactly the ``networks_advanced`` networks (the first at creation, the others
    right after), with their aliases. With ``wait`` set, returns once the container is healthy.

    :param inputs: ``name``, ``image``, ``envs`` (``["K=V"]``), ``networks_advanced`` (``[{name, aliases}]``),
        ``volumes`` (``[{volume_name | host_path, container_path, read_only}]``), ``mounts``, ``restart``,
        ``ports`` (``[{internal, external, ip, protocol}]``), ``healthcheck`` (``{tests, interval, timeout,
        start_period, retries}``), ``labels`` (``[{label, value}]``), ``command``, ``entrypoints``, ...
    :param image_map: see :func:`container_spec`.
    :param overrides: top-level inputs replaced before translation; a dict value is merged into the input's
        dict (``{"healthcheck": {"interval": "1s"}}`` keeps the test command but checks every second).
    """
    merged = normalize_inputs(dict(inputs))
    for key, value in normalize_inputs(dict(overrides or {})).items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    spec = container_spec(merged, image_map=image_map, loopback_ports=loopback_ports)
    api = client.api
    networking_config = None
    if spec["networks"]:
        name, aliases, ipv4 = spec["networks"][0]
        networking_config = api.create_networking_config(
            {name: api.create_endpoint_config(aliases=aliases or None, ipv4_address=ipv4)})
    created = api.create_container(
        **{k: v for k, v in spec["create"].items() if v is not None},
        host_config=api.create_host_config(**{k: v for k, v in spec["host_config"].items() if v is not None}),
        networking_config=networking_config,
    )
    for name, aliases, ipv4 in spec["networks"][1:]:
        api.connect_container_to_network(created["Id"], name, aliases=aliases or None, ipv4_address=ipv4)
    container = client.containers.get(created["Id"])
    if spec["start"]:
        container.start()
        if spec["wait"]:
            wait_healthy(container, timeout=spec["wait_timeout"])
    return container


def create_network_from_inputs(client: docker.DockerClient, inputs: Mapping[str, Any]) -> Network:
    """Create a network from pulumi-docker ``Network`` inputs (name, driver, options, ipam_configs, internal,
    attachable, ipv6, labels)."""
    spec = normalize_inputs(dict(inputs))
    unknown = set(spec) - {"name", "driver", "options", "ipam_configs", "ipam_driver", "internal", "attachable",
                           "ipv6", "labels", "check_duplicate"}
    if unknown:
        raise ValueError(f"network {spec.get('name')!r}: inputs not supported: {sorted(unknown)}")
    ipam = None
    if spec.get("ipam_configs"):
        ipam = docker.types.IPAMConfig(
            driver=spec.get("ipam_driver", "default"),
            pool_configs=[docker.types.IPAMPool(subnet=c.get("subnet"), gateway=c.get("gateway"),
                                                iprange=c.get("ip_range")) for c in spec["ipam_configs"]],
        )
    return client.networks.create(
        spec["name"], driver=spec.get("driver", "bridge"), options=spec.get("options"), ipam=ipam,
        internal=bool(spec.get("internal")), attachable=spec.get("attachable"),
        enable_ipv6=bool(spec.get("ipv6")), labels={**_labels(spec.get("labels")), TEST_LABEL: "true"},
    )


def create_volume_from_inputs(client: docker.DockerClient, inputs: Mapping[str, Any]) -> Volume:
    """Create a volume from pulumi-docker ``Volume`` inputs (name, driver, driver_opts, labels)."""
    spec = normalize_inputs(dict(inputs))
    unknown = set(spec) - {"name", "driver", "driver_opts", "labels"}
    if unknown:
        raise ValueError(f"volume {spec.get('name')!r}: inputs not supported: {sorted(unknown)}")
    return client.volumes.create(
        name=spec["name"], driver=spec.get("driver", "local"), driver_opts=spec.get("driver_opts"),
        labels={**_labels(spec.get("labels")), TEST_LABEL: "true"},
    )


def wait_healthy(container: Container, timeout: float = 60.0) -> None:
    """Return once Docker reports the container healthy; raise with its last health log otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        state = container.attrs["State"]
        health = state.get("Health", {})
        if health.get("Status") == "healthy":
            return
        if state["Status"] in ("exited", "dead") or time.monotonic() > deadline:
            log = health.get("Log", [])[-1:] or "(no health log)"
            raise TimeoutError(
                f"container {container.name} not healthy (state {state['Status']}, health {health.get('Status')}); "
                f"last check: {log}; logs:\n{container.logs(tail=20).decode(errors='replace')}")
        time.sleep(0.25)


def ip_address(container: Container, network: str) -> str:
    """The container's IPv4 address on ``network``."""
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def published_port(container: Container, port: str = "5000/tcp", timeout: float = 10.0) -> int:
    """The host port (on 127.0.0.1) that ``port`` of the container is published on."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(port)
        if bindings:
            return int(bindings[0]["HostPort"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"{container.name}: port {port} is not published")
        time.sleep(0.1)


def exec_ok(container: Container, cmd: list[str]) -> str:
    """Run ``cmd`` in the container; return stdout, raise with stderr on a non-zero exit."""
    result = container.exec_run(cmd, demux=True)
    stdout, stderr = (part.decode(errors="replace") if part else "" for part in result.output)
    if result.exit_code != 0:
        raise RuntimeError(f"{container.name}: {cmd} exited {result.exit_code}: {stderr or stdout}")
    return stdout


def put_files(container: Container, files: Mapping[str, bytes | str], mode: int = 0o644) -> None:
    """Write files (absolute path -> content) into a container, created or not yet started."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    if not container.put_archive("/", buf.getvalue()):
        raise RuntimeError(f"could not write {sorted(files)} into {container.name}")
