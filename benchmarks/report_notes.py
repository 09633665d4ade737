"""The report's notes: what the numbers mean and what they do not show, derived from the results."""
from __future__ import annotations

from typing import Any

from .report_format import MiB, fmt_mib, fmt_sec, fmt_x, summary_of, warm_requests
from .shaping import format_rate
from .stats import line_fit, summarize


def is_v3(results: dict[str, Any]) -> bool:
    return str(results["machine"].get("registry", "")).lstrip("v").startswith("3.")


def notes(results: dict[str, Any]) -> list[str]:
    """What the numbers mean and what they do not show."""
    settings, links = results["settings"], results["links"]
    first = links[0]
    cold_bytes = summary_of(first["cold_upstream_ratio"]).median
    out = [shaping_check(results)]
    if is_v3(results):
        out.append(
            f"The registry is distribution {results['machine']['registry']}, the binary of registry:3. On a miss it "
            "streams each blob from upstream once, teeing it to the node and to its storage (measured: "
            f"{fmt_x(cold_bytes)} the image bytes for one cold node), so a cold pull costs the upstream link's time "
            "plus the extra hop: ratio 1.")
    else:
        out.append(
            f"The registry here is distribution {results['machine']['registry']} (Debian's, the fallback stand-in "
            "for registry:3). On a miss it downloads each blob twice from upstream at the same time, once for the "
            f"client and once for its storage (measured: {fmt_x(cold_bytes)} the image bytes for one cold node), so on "
            "a bandwidth-bound link the client gets about half of it: that, not the extra hop, is ratio 1. "
            "registry:3 (v3) tees one download to client and storage. " + per_byte_estimate(results))
    out += [note for note in (request_overhead(results), speedup_bound(results)) if note]
    out += [
        "The registry does not merge concurrent requests for a blob (v3.1.1 registry/proxy/proxyblobstore.go: a "
        "request for a blob still downloading is streamed from upstream again): without the warm-up every node "
        "pulling at once streams its own copy from upstream. With the warm-up the nodes fetch nothing upstream; the "
        "total is what the warm-up cost (column \"warm-up: upstream ÷ what it fetched\": 1 per blob with v3, 2 with "
        "2.8).",
        "Pulls name images by digest, as the Cilium and ingress-nginx charts do: a warm cache then asks the upstream "
        f"nothing ({warm_requests(first)} upstream requests in a warm pull of {len(settings['images'])} images). By "
        f"tag (row 2b; MetalLB's chart names its images so) the cache asks the upstream for each tag "
        f"({warm_requests(first, 'tag_upstream_requests')} requests: {_tag_requests(first)}), no blob; each "
        "request pays "
        "the link's round trip"
        + (f" ({settings['delay_seconds'] * 1000:.0f} ms added here)" if settings["delay_seconds"] else "")
        + (f", {fmt_sec(summary_of(first['tag_lookup_seconds']).median)} in all per warm pull"
           if "tag_lookup_seconds" in first else "") + ".",
        "The time ratios compare image delivery only. The published 5.5× (19 min 33 s cold, 3 min 32 s warm) is a "
        "whole six-node kind cluster with Cilium, MetalLB and ingress-nginx coming up, where pulling images is one "
        "part among others (node boot, control plane, Helm, pods starting).",
    ]
    if settings["scale"] != 1:
        out.append(
            f"The layers are {settings['scale']:g}× the real sizes so the run fits in minutes on 2 cores; the "
            "transfer "
            f"time of {settings['scale']:g}× the bytes at {format_rate(first['rate_bits'])} equals that of the real "
            f"bytes at {format_rate(first['rate_bits'] / settings['scale'])}, while per-request costs (delay, "
            "manifests) do not shrink, which makes cold/warm smaller and overhead ratios larger than at full size. "
            "`--scale 1` runs the real sizes (tens of minutes).")
    if settings["delay_seconds"] > 0:
        out.append(
            "The delay is added per round trip by a TCP relay (benchmarks/delayproxy.py), not per packet: TCP slow "
            "start and window limits of a real long path are not reproduced.")
    around = [(c["count"], c["with_warmup"], v) for c in results["amplification"] if "around" in c
              for v in summary_of(c["around"]).values if v]
    if around:
        out.append("Some blob requests of nodes pulling at once failed at the cache, and containerd fetched those "
                   "blobs from the upstream itself (the next host in hosts.toml): "
                   + "; ".join(f"{n} node(s){' after the warm-up' if w else ''}: {v:.0f}" for n, w, v in around)
                   + " in a run. Their bytes are in the totals: that is upstream traffic the cache caused.")
    discarded = results.get("discarded") or []
    if discarded:
        out.append(f"{len(discarded)} run(s) were done again because a node's pull did not go through its cache "
                   "(containerd went to the upstream directly, so the run measured something else): "
                   + "; ".join(discarded) + ".")
    out.append(f"Upstream amplification is measured at {format_rate(settings['amp_rate_bits'])} to fit the time "
               "budget; a slower link keeps blobs in flight longer, so more concurrent requests overlap.")
    return out


def _tag_requests(link: dict[str, Any]) -> str:
    """What a warm pull by tag asked the upstream, from its first run's requests by kind."""
    kinds = (link.get("tag_requests_by_kind") or [{}])[0]
    if not kinds:
        return "a HEAD of each tag, and with these upstreams the `/v2/` ping before it"
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items(), key=lambda item: -item[1])) + (
        " (a HEAD of each tag, and the token v3 fetches before every upstream request)"
        if kinds.get("GET token") else "")


def _kinds(counts: list[dict[str, int]]) -> str:
    """The first run's upstream requests by method and kind, e.g. "HEAD blobs 21, GET blobs 21"."""
    if not counts:
        return ""
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts[0].items(), key=lambda item: -item[1]))


def request_overhead(results: dict[str, Any]) -> str:
    """Ratio 1 explained by what the upstream logged: the cold pull's requests against the direct pull's, each
    paying the round trip (and the delay relay's per-connection delay)."""
    parts = []
    slower = False
    for link in results["links"]:
        if "upstream_requests" not in link:
            continue
        asked = link["upstream_requests"]
        cold, direct = summary_of(asked["cold"]).median, summary_of(asked["direct"]).median
        extra_seconds = summary_of(link["times"]["cold"]).median - summary_of(link["times"]["direct"]).median
        slower = slower or extra_seconds > 0
        took = (f"took {fmt_sec(extra_seconds)} longer" if extra_seconds >= 0
                else f"took {fmt_sec(-extra_seconds)} less")
        parts.append(f"{cold:.0f} upstream requests where the direct pull made {direct:.0f}, and {took}, at "
                     f"{format_rate(link['rate_bits'])}")
    if not parts:
        return ""
    first = results["links"][0]
    delay = results["settings"]["delay_seconds"]
    by_kind = first.get("cold_requests_by_kind", [{}])[0] if first.get("cold_requests_by_kind") else {}
    pings = by_kind.get("GET ping", 0) + by_kind.get("GET other", 0)
    tokens = by_kind.get("GET token", 0)
    direct_kinds = first.get("direct_requests_by_kind", [{}])[0] if first.get("direct_requests_by_kind") else {}
    if not slower:
        return (
            "Ratio 1 from the upstreams' access logs of the timed runs: a cold pull through the cache made "
            + "; ".join(parts) + ". By kind, cold: " + _kinds(first.get("cold_requests_by_kind", [])) + "; direct: "
            + _kinds(first.get("direct_requests_by_kind", []))
            + ". The cache asks more (v3.1.1 HEADs each blob before its GET, registry/proxy/proxyblobstore.go "
            "`copyContent`"
            + (f", and fetches a token for each upstream request, {tokens} \"GET token\": registry/proxy/"
               "proxyregistry.go `Repository`, lines 161-179, builds a new token handler for each request it serves"
               if tokens else "")
            + "), yet its pull was not slower: the direct pull pays for the upstream's challenge too"
            + (f" (containerd asks unauthenticated first and fetches a token after the upstream's 401: "
               f"{direct_kinds.get('GET token', 0)} token requests for {len(results['settings']['images'])} "
               "images)" if direct_kinds.get("GET token") else "")
            + ". The logs count requests, not why the direct pull's took longer; one candidate they cannot show is "
            "containerd opening more new connections, each paying the relay's per-connection delay."
            + (f" ({pings} `/v2/` ping(s) in all: each cache learns its upstream's challenge once, registry/proxy/"
               "proxyregistry.go `tryEstablishChallenges`.)" if pings else ""))
    return (
        "Where ratio 1's extra time goes (the upstreams' access logs of the timed runs): a cold pull through the "
        "cache made " + "; ".join(parts) + ". By kind, cold: "
        + _kinds(first.get("cold_requests_by_kind", [])) + "; direct: "
        + _kinds(first.get("direct_requests_by_kind", []))
        + ". v3.1.1 asks the upstream for a blob's descriptor with a HEAD before each GET (registry/proxy/"
        "proxyblobstore.go `copyContent`: `remoteStore.Stat`, then `Open`)"
        + (f", and fetches a new token for every upstream request ({tokens} \"GET token\"; registry/proxy/"
           "proxyregistry.go `Repository`, lines 161-179, builds a new token handler, with an empty token cache, for "
           "each request it serves), where containerd keeps its token for the whole pull" if tokens else "")
        + (f", and, because these upstreams answer `/v2/` without an auth challenge, it pings `/v2/` before every "
           f"upstream request ({pings} \"GET other\"; registry/proxy/proxyregistry.go `tryEstablishChallenges` keeps "
           "only a challenge, so an upstream that sends one, as Docker Hub, quay.io and ghcr.io do, is pinged once)"
           if pings and not tokens else "")
        + (f" ({pings} `/v2/` ping(s): each cache learns its upstream's challenge once, registry/proxy/"
           "proxyregistry.go `tryEstablishChallenges`)" if pings and tokens else "")
        + ". Each is a round trip"
        + (f" ({delay * 1000:.0f} ms here, another {delay * 1000:.0f} ms for each new connection)" if delay else "")
        + " that the direct pull does not make (containerd overlaps up to three layer downloads, so they do not add up "
        "one by one); the tee itself costs no upstream bytes. The cost is per request, not per byte: "
        + (f"at the real sizes ({1 / results['settings']['scale']:g}× the bytes, the same requests) the same seconds "
           "are that much smaller a share (an estimate, not measured here); " if results["settings"]["scale"] < 1
           else "")
        + "a registry that took the blob's size from the GET's own answer"
        + (" and kept its tokens" if tokens else " and remembered an upstream without a challenge")
        + " would not pay it.")


def speedup_bound(results: dict[str, Any]) -> str:
    """What bounds cold ÷ warm: the warm side is this machine's delivery, the cold side the link."""
    settings, first = results["settings"], results["links"][0]
    times = {k: summary_of(v).median for k, v in first["times"].items()}
    if "local" not in times:
        return ""
    mib = settings["image_bytes"] / MiB
    fit = ""
    if len(first.get("warm_per_image") or []) >= 2:
        try:
            fixed, per_byte = line_fit([(b, t) for b, t in first["warm_per_image"]])
        except ValueError:
            fixed, per_byte = 0.0, 0.0
        if per_byte > 0:
            count = len(settings["images"])
            fit = (f" (fitted over each image's warm pull in every run: {fmt_sec(fixed)} per image whatever its "
                   f"size, then {1 / per_byte / MiB:.0f} MiB/s; {count} images × {fmt_sec(fixed)} = "
                   f"{fmt_sec(count * fixed)} of the {fmt_sec(times['warm'])})")
    return (
        f"Ratio 3 is bound by the warm side, which is this machine's: the warm pull delivered "
        f"{fmt_mib(settings['image_bytes'])} in {fmt_sec(times['warm'])} ({mib / times['warm']:.0f} MiB/s) and the "
        f"plain local registry in {fmt_sec(times['local'])} ({mib / times['local']:.0f} MiB/s), on "
        f"{results['machine']['cpus']} cores shared by containerd, the registries and the other work on the machine; "
        f"the cold side is bound by the link ({fmt_sec(times['cold'])} at {format_rate(first['rate_bits'])}). 10× at "
        f"{format_rate(first['rate_bits'])} needs a warm pull of {fmt_sec(times['cold'] / 10)} here. Most of a warm "
        "pull here is a fixed cost per image (a ctr process, the resolve, the content commit)" + fit
        + ", which does not grow with the layers while the cold side does"
        + (f": with the real sizes ({1 / settings['scale']:g}× the bytes) the ratio would be higher (an estimate; "
           "`--scale 1` measures it)." if settings["scale"] < 1 else ".")
        + " A kubelet pull also unpacks, which this benchmark's nodes cannot do (no mount in an unprivileged "
        "container), on both sides alike.")


def per_byte_estimate(results: dict[str, Any]) -> str:
    """Ratio 1 with the cold pull's time divided by the upstream bytes it caused (2.8's double download): what a
    registry that downloads once might reach where the link is the bottleneck. Derived, per run."""
    parts = []
    for link in results["links"]:
        cold, direct = link["times"]["cold"]["values"], link["times"]["direct"]["values"]
        upstream = link.get("cold_upstream_values") or []
        if len(upstream) != len(cold) or not all(upstream):
            continue
        estimate = summarize([c / u / d for c, u, d in zip(cold, upstream, direct)])
        parts.append(f"{fmt_x(estimate.median)} at {format_rate(link['rate_bits'])}")
    if not parts:
        return ""
    return ("Divided by the upstream bytes it caused, a cold pull took " + " and ".join(parts) + " the direct "
            "pull's time per byte: an estimate, not a measurement, of ratio 1 for a registry that downloads once "
            "where the link is the bottleneck (the per-request costs are divided too, so it flatters).")


def shaping_check(results: dict[str, Any]) -> str:
    """Whether ``tbf`` held each upstream to its rate: the probes, and what whole direct pulls achieved."""
    parts, problems = [], []
    for link in results["links"]:
        rate = link["rate_bits"]
        measured = [p["bits"] for p in link.get("probes", [])]
        direct = summary_of(link["direct_throughput_bits"]).median
        if measured:
            parts.append(f"at {format_rate(rate)} the probes ran at "
                         + ", ".join(f"{format_rate(b)} ({b / rate * 100:.0f}%)" for b in measured)
                         + f" and whole direct pulls averaged {format_rate(direct)} ({direct / rate * 100:.0f}%)")
            problems += [f"{format_rate(b)} is faster than the configured {format_rate(rate)}: shaping did not hold"
                         for b in measured if b > rate * 1.05]
        else:
            parts.append(f"at {format_rate(rate)} whole direct pulls averaged {format_rate(direct)} "
                         f"({direct / rate * 100:.0f}%)")
    text = ("Shaping check (a ranged download of one blob straight from each upstream, no relay, about "
            f"{results['settings'].get('probe_seconds', 0):g} s): " + "; ".join(parts) + ". Whole pulls stay below "
            "the rate because of per-request round trips (and the added delay) between blobs.")
    if problems:
        text = "WARNING: " + "; ".join(problems) + ". " + text
    return text
