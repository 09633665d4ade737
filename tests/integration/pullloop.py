"""A node pulling cached images over and over while something else happens, and what each pull took."""
from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .node import Node

__all__ = ["PullLoop", "PullRecord", "REPORT", "summarize"]

#: Lines the terminal summary prints after the tier (conftest.pytest_terminal_summary).
REPORT: list[str] = []


@dataclass(frozen=True)
class PullRecord:
    """One pull: during which phase it started, of what, whether it worked, how long it took."""

    phase: str
    ref: str
    ok: bool
    seconds: float
    error: str = ""


class PullLoop:
    """``node`` pulls every ref in turn, again and again, each round from an empty content store (so every
    blob is asked of the cache), until :meth:`stop`; :attr:`phase` labels the pulls that start after it is set."""

    def __init__(self, node: Node, refs: Sequence[str], gap: float = 0.5) -> None:
        self.node, self.refs, self.gap = node, list(refs), gap
        self.phase = "start"
        self.records: list[PullRecord] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pull-loop-{node.name}", daemon=True)

    def __enter__(self) -> PullLoop:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.node.clear_content()
            for ref in self.refs:
                if self._stop.is_set():
                    return
                phase = self.phase
                result = self.node.pull(ref)
                error = "" if result.ok else (result.stderr.strip().splitlines() or ["?"])[-1]
                self.records.append(PullRecord(phase, ref, result.ok, result.seconds, error))
            self._stop.wait(self.gap)

    def hold(self, phase: str, seconds: float) -> None:
        """Label the pulls from now on ``phase`` and let them run for ``seconds``."""
        self.phase = phase
        time.sleep(seconds)

    def of(self, phase: str) -> list[PullRecord]:
        return [r for r in self.records if r.phase == phase]


def summarize(records: Sequence[PullRecord]) -> str:
    """``n pulls, f failed, median m s, max x s`` of some records."""
    if not records:
        return "no pulls"
    seconds = [r.seconds for r in records]
    failed = sum(not r.ok for r in records)
    return (f"{len(records)} pulls, {failed} failed, median {statistics.median(seconds):.2f} s, "
            f"max {max(seconds):.2f} s")
