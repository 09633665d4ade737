"""Medians, spreads and paired ratios of repeated measurements (pure; unit-tested)."""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["Summary", "paired_ratios", "summarize", "verdict"]


@dataclass(frozen=True)
class Summary:
    """Repeated values of one measure: the median and the spread (smallest and largest)."""

    median: float
    low: float
    high: float
    values: tuple[float, ...]

    @property
    def runs(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict:
        return {**asdict(self), "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: dict) -> Summary:
        return cls(data["median"], data["low"], data["high"], tuple(data["values"]))


def summarize(values: Sequence[float]) -> Summary:
    """The median and min–max of ``values`` (at least one)."""
    if not values:
        raise ValueError("no values to summarize")
    ordered = sorted(float(v) for v in values)
    return Summary(statistics.median(ordered), ordered[0], ordered[-1], tuple(float(v) for v in values))


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """``numerators[i] / denominators[i]``: each run's ratio of two things measured in that same run.

    Pairing per run keeps a slow moment of the machine from landing in one side of the ratio only.
    """
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators for {len(denominators)} denominators")
    if any(d <= 0 for d in denominators):
        raise ValueError("a denominator is not positive")
    return [n / d for n, d in zip(numerators, denominators)]


def verdict(summary: Summary, target: float | None, higher_is_better: bool = False) -> str:
    """``met``, ``missed`` or ``""`` (no target), judged on the median."""
    if target is None:
        return ""
    ok = summary.median >= target if higher_is_better else summary.median <= target
    return "met" if ok else "missed"


def line_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares ``y = intercept + slope * x`` through ``points``: (intercept, slope)."""
    if len(points) < 2:
        raise ValueError("a line needs at least two points")
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        raise ValueError("every point has the same x")
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - slope * mx, slope
