"""Timing pulls at one upstream link rate: direct, cold and warm through the cache, and from a local registry."""
from __future__ import annotations

from collections import Counter
from typing import Any

from . import shaping
from .accesslogs import BypassError, attempt, request_kind
from .progress import log
from .rig import Bench
from .stats import paired_ratios, summarize


def measure_link(bench: Bench, bits: int, reps: int, local: bool = True) -> dict[str, Any]:
    """At one link rate: direct, cold through the cache, warm through the cache and (``local``) from the local
    registry, ``reps`` times."""
    log(f"link {shaping.format_rate(bits)}")
    probes = bench.set_rate(bits)
    times: dict[str, list[float]] = {"direct": [], "cold": [], "warm": [],
                                     **({"local": [], "warm_tag": [], "local_tag": []} if local else {})}
    cold_upstream: list[float] = []
    warm_requests: list[float] = []
    tag_requests: list[float] = []
    tag_by_kind: list[dict[str, int]] = []
    requests: dict[str, list[float]] = {"direct": [], "cold": []}
    cold_by_kind: list[dict[str, int]] = []
    warm_per_image: list[list[float]] = []
    direct_by_kind: list[dict[str, int]] = []
    for rep in range(reps):
        def one_run() -> dict[str, float]:
            got: dict[str, float] = {}

            def direct() -> None:
                marks = bench.logs.marks()
                got["direct"] = bench.pull_all(bench.direct_node)
                asked = bench.logs.upstream_requests(marks)
                got["direct_requests"] = len(asked)
                got["direct_requests_by_kind"] = dict(Counter(f"{e.method} {request_kind(e)}" for e in asked))

            def cold() -> None:
                bench.fresh_caches()
                marks = bench.logs.marks()
                got["cold"] = bench.pull_all(bench.nodes[0])
                bench.logs.check_through_caches(bench.nodes[0], {})
                bench.logs.wait_stored(bits)
                asked = bench.logs.upstream_requests(marks)
                got["cold_upstream"] = bench.m.observe.blob_bytes_served(asked) / bench.image_bytes
                # Upstream requests of a cold pull through the cache and of a direct one: each pays the round trip.
                got["cold_requests"] = len(asked)
                got["cold_requests_by_kind"] = dict(Counter(f"{e.method} {request_kind(e)}" for e in asked))

            # Alternate which goes first, so a drift of the machine does not favour one side.
            for step in ((direct, cold) if rep % 2 == 0 else (cold, direct)):
                step()
            marks, cache_marks = bench.logs.marks(), bench.logs.cache_marks()
            got["warm"] = bench.pull_all(bench.nodes[0])
            # Each image's warm pull: its bytes and seconds (what is per image and what per byte).
            got["warm_per_image"] = [[bench.ref_bytes[ref], result.seconds]
                                     for ref, result in bench.last_pulls[bench.nodes[0].name]]
            bench.logs.check_through_caches(bench.nodes[0], cache_marks)
            asked = bench.logs.upstream_requests(marks)
            if any(e.kind == "blobs" for e in asked):
                raise BypassError("a warm pull fetched blobs from upstream")
            # What a warm pull by digest still asks the upstream (nothing, if the cache holds the digests).
            got["warm_upstream_requests"] = len(asked)
            if local:
                got["local"] = bench.pull_all(bench.local_node)
                # The same by tag: the cache asks the upstream for each tag, paying the link's round trip.
                marks, cache_marks = bench.logs.marks(), bench.logs.cache_marks()
                got["warm_tag"] = bench.pull_all(bench.nodes[0], by="tag")
                bench.logs.check_through_caches(bench.nodes[0], cache_marks)
                asked = bench.logs.upstream_requests(marks)
                if any(e.kind == "blobs" for e in asked):
                    raise BypassError("a warm pull by tag fetched blobs from upstream")
                got["tag_upstream_requests"] = len(asked)
                got["tag_requests_by_kind"] = dict(Counter(f"{e.method} {request_kind(e)}" for e in asked))
                got["local_tag"] = bench.pull_all(bench.local_node, by="tag")
            return got

        got = attempt(bench, f"{shaping.format_rate(bits)} run {rep + 1}", one_run)
        for key in times:
            times[key].append(got[key])
        cold_upstream.append(got["cold_upstream"])
        warm_requests.append(got["warm_upstream_requests"])
        requests["direct"].append(got["direct_requests"])
        requests["cold"].append(got["cold_requests"])
        cold_by_kind.append(got["cold_requests_by_kind"])
        warm_per_image.extend(got["warm_per_image"])
        direct_by_kind.append(got["direct_requests_by_kind"])
        if local:
            tag_requests.append(got["tag_upstream_requests"])
            tag_by_kind.append(got["tag_requests_by_kind"])
        log(f"  run {rep + 1}/{reps}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
    image_bits = bench.image_bytes * 8
    return {
        "rate_bits": bits,
        "probes": probes,
        "times": {k: summarize(v).to_dict() for k, v in times.items()},
        "direct_throughput_bits": summarize([image_bits / t for t in times["direct"]]).to_dict(),
        "cold_upstream_ratio": summarize(cold_upstream).to_dict(),
        "cold_upstream_values": cold_upstream,
        "warm_upstream_requests": summarize(warm_requests).to_dict(),
        "upstream_requests": {k: summarize(v).to_dict() for k, v in requests.items()},
        "cold_requests_by_kind": cold_by_kind,
        "warm_per_image": warm_per_image,
        "direct_requests_by_kind": direct_by_kind,
        **({"tag_upstream_requests": summarize(tag_requests).to_dict(), "tag_requests_by_kind": tag_by_kind,
            # What naming images by tag adds to a warm pull through the cache, per run.
            "tag_lookup_seconds": summarize([t - d for t, d in zip(times["warm_tag"], times["warm"])]).to_dict()}
           if local else {}),
        "ratios": {
            "cold_over_direct": summarize(paired_ratios(times["cold"], times["direct"])).to_dict(),
            **({"warm_over_local": summarize(paired_ratios(times["warm"], times["local"])).to_dict(),
                "warm_tag_over_local_tag": summarize(paired_ratios(times["warm_tag"], times["local_tag"])).to_dict()}
               if local else {}),
            "cold_over_warm": summarize(paired_ratios(times["cold"], times["warm"])).to_dict(),
        },
    }
