"""Upstream amplification: upstream blob bytes ÷ image bytes while nodes pull at once, with and without warm-up."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import shaping
from .progress import log
from .rig import Bench
from .stats import summarize


def measure_amplification(bench: Bench, bits: int, counts: Sequence[int], reps: int,
                          one_cold_node: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Upstream blob bytes ÷ image bytes while ``n`` nodes pull everything at once, cold, without and with the
    program's warm-up first.

    Without warm-up each count starts from empty caches. With it, the caches are emptied, the recorded warm-up
    command runs, then 1, 3, ... nodes pull in turn: nodes served from a warm cache change nothing in it, so each
    turn starts from the state the warm-up left. ``one_cold_node`` (a link's cold runs at this rate) stands for
    the single node without warm-up instead of pulling it again.
    """
    log(f"amplification at {shaping.format_rate(bits)}")
    bench.set_rate(bits)
    cases: list[dict[str, Any]] = []
    image_bytes = bench.image_bytes

    def case(count: int, warm: bool, runs: dict[str, list[float]]) -> None:
        cases.append({"count": count, "with_warmup": warm,
                      **{k: summarize(v).to_dict() for k, v in runs.items() if v}})
        log(f"  {count} node(s) {'after the warm-up' if warm else 'cold, no warm-up'}: upstream "
            f"{cases[-1]['total']['median']:.2f}x the image bytes (the nodes' pulls "
            f"{cases[-1]['node_pulls']['median']:.2f}x)")

    for count in counts:
        if count == 1 and one_cold_node is not None:
            values = one_cold_node["cold_upstream_values"]
            case(1, False, {"total": values, "node_pulls": values, "around": [0] * len(values),
                            "seconds": one_cold_node["times"]["cold"]["values"]})
            continue
        runs: dict[str, list[float]] = {"total": [], "node_pulls": [], "seconds": [], "around": []}
        for _ in range(reps):
            bench.fresh_caches()
            marks = bench.logs.marks()
            runs["seconds"].append(bench.pull_at_once(count))
            # A blob the cache failed to serve is fetched by containerd from the upstream itself: real upstream
            # traffic of concurrent cold pulls, so it is counted (and told), not discarded.
            runs["around"].append(sum(len(m) for node in bench.nodes[:count]
                                      for m in bench.logs.around_caches(node, {}).values()))
            try:
                bench.logs.wait_stored(bits)
            except TimeoutError as error:  # every request for a blob failed: nothing stored it; bytes still count
                log(f"  {error}")
            ratio = bench.logs.upstream_bytes(marks) / image_bytes
            runs["node_pulls"].append(ratio)
            runs["total"].append(ratio)
        case(count, False, runs)

    warm_runs = {count: {"total": [], "node_pulls": [], "warmup": [], "warmup_own": [], "seconds": [], "around": []}
                 for count in counts}
    for _ in range(reps):
        bench.fresh_caches()
        start, cache_start = bench.logs.marks(), bench.logs.cache_marks()
        bench.warm_up()
        bench.logs.wait_stored(bits)
        warmup_upstream = bench.logs.upstream_bytes(start)
        # What the warm-up itself asked its caches for: each (repository, blob) once.
        warmup_own = bench.logs.cache_blob_bytes(cache_start)
        for count in counts:
            marks, cache_marks = bench.logs.marks(), bench.logs.cache_marks()
            seconds = bench.pull_at_once(count)
            around = sum(len(m) for node in bench.nodes[:count]
                         for m in bench.logs.around_caches(node, cache_marks).values())
            node_bytes = bench.logs.upstream_bytes(marks)
            runs = warm_runs[count]
            runs["around"].append(around)
            runs["seconds"].append(seconds)
            runs["warmup"].append(warmup_upstream / image_bytes)
            runs["warmup_own"].append(warmup_upstream / warmup_own)
            runs["node_pulls"].append(node_bytes / image_bytes)
            runs["total"].append((warmup_upstream + node_bytes) / image_bytes)
    for count in counts:
        case(count, True, warm_runs[count])
    return sorted(cases, key=lambda c: (c["count"], c["with_warmup"]))
