"""Writing the benchmark's results: ``<name>.json``, ``.md`` and ``.png`` side by side."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .report_markdown import markdown
from .report_plot import plot

__all__ = ["write"]


def write(results: dict[str, Any], folder: Path, name: str) -> list[Path]:
    """``<name>.json``, ``<name>.md`` and ``<name>.png`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.json", folder / f"{name}.md", folder / f"{name}.png"]
    paths[0].write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    paths[1].write_text(markdown(results))
    plot(results, paths[2])
    return paths
