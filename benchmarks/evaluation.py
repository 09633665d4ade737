"""Timing the program's evaluation under Pulumi mocks (the dev stack), in a fresh interpreter."""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from . import ROOT
from .stats import summarize

_PROGRAM_SCRIPT = """
import json, sys, time
started = time.perf_counter()
sys.path[:0] = [{root!r}, {tests!r}]
from harness import run_program
imported = time.perf_counter() - started
runs = []
for _ in range({runs}):
    begin = time.perf_counter()
    recording = run_program("dev")
    runs.append(time.perf_counter() - begin)
print("KRC-BENCH " + json.dumps({{"import": imported, "runs": runs, "resources": len(recording.resources)}}))
"""


def measure_program(runs: int) -> dict[str, Any]:
    """The whole program under mocks for the dev stack, in a fresh interpreter: the first evaluation (the
    components' imports included) and the following ones."""
    script = _PROGRAM_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), runs=runs + 1)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("KRC-BENCH ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"program evaluation failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    data = json.loads(lines[-1].split(" ", 1)[1])
    return {"import_seconds": data["import"], "first_seconds": data["runs"][0],
            "seconds": summarize(data["runs"][1:]).to_dict(), "resources": data["resources"]}
