"""What the benchmark ran on: the machine, and the registry and containerd inside the images."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine_info(client, built) -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return {
        "cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(), "os": _version(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "docker": client.version().get("Version", "unknown"),
        # What ran inside the images (registry --version, containerd --version there), and from where.
        "registry": built.registry_version, "registry_source": built.registry_source,
        "containerd": built.containerd_version, "containerd_source": built.containerd_source,
        "python": platform.python_version(), "pulumi": metadata.version("pulumi"),
    }
