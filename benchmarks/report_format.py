"""How the report writes numbers: summaries, ratios, seconds, sizes and request counts."""
from __future__ import annotations

from typing import Any

from .stats import Summary

MiB = 1024 * 1024


def summary_of(data: dict) -> Summary:
    return Summary.from_dict(data)


def fmt_x(value: float) -> str:
    return f"{value:.2f}×" if value < 10 else f"{value:.1f}×"


def fmt_spread(summary: Summary, fmt=fmt_x) -> str:
    return f"{fmt(summary.low)}–{fmt(summary.high)}"


def fmt_sec(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def fmt_mib(n: float) -> str:
    return f"{n / MiB:.0f} MiB" if n >= 10 * MiB else f"{n / MiB:.1f} MiB"


def warm_requests(link: dict[str, Any], key: str = "warm_upstream_requests") -> str:
    if key not in link:
        return "—"
    return f"{summary_of(link[key]).median:.0f}"
