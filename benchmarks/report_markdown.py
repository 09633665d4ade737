"""The benchmark's results as markdown, JSON and a PNG plot.

:func:`markdown` is pure (unit-tested on a made-up result); :func:`plot` imports matplotlib only when called,
so the rest works, and is tested, without it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .shaping import format_rate
from .stats import Summary, line_fit, summarize, verdict

__all__ = ["headline_rows", "markdown", "plot", "write"]

MiB = 1024 * 1024

TARGETS = {"cold_over_direct": 1.10, "warm_over_local": 1.10}
#: Targets where higher is better, per link rate in bits/s (the speedup at 50 Mbit/s).
MIN_TARGETS = {("cold_over_warm", 50_000_000): 10.0}
TARGET_WITH_WARMUP = 1.0
LABELS = {
    "cold_over_direct": "cold pull through the cache ÷ direct pull from the upstream",
    "warm_over_local": "warm pull through the cache ÷ pull from a plain local registry",
    "warm_tag_over_local_tag": "the same, images named by tag (a tag lookup upstream per image)",
    "cold_over_warm": "cold ÷ warm pull through the cache (speedup)",
}
NUMBERS = {"cold_over_direct": "1", "warm_over_local": "2", "warm_tag_over_local_tag": "2b", "cold_over_warm": "3"}


def _s(data: dict) -> Summary:
    return Summary.from_dict(data)


def _x(value: float) -> str:
    return f"{value:.2f}×" if value < 10 else f"{value:.1f}×"


def _spread(summary: Summary, fmt=_x) -> str:
    return f"{fmt(summary.low)}–{fmt(summary.high)}"


def _sec(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _mib(n: float) -> str:
    return f"{n / MiB:.0f} MiB" if n >= 10 * MiB else f"{n / MiB:.1f} MiB"


def _target(summary: Summary, target: float | None) -> str:
    if target is None:
        return "—"
    return f"≤ {target:.2f}: {verdict(summary, target)}"


def headline_rows(results: dict[str, Any]) -> list[list[str]]:
    """The main table: one row per measure (and link / node count)."""
    rows: list[list[str]] = []
    links = results["links"]
    for key in ("cold_over_direct", "warm_over_local", "warm_tag_over_local_tag", "cold_over_warm"):
        for link in links:
            if key not in link["ratios"]:
                continue
            summary = _s(link["ratios"][key])
            minimum = MIN_TARGETS.get((key, link["rate_bits"]))
            target = (f"≥ {minimum:g}: {verdict(summary, minimum, higher_is_better=True)}" if minimum
                      else _target(summary, TARGETS.get(key)))
            if key == "warm_tag_over_local_tag" and "tag_lookup_seconds" in link:
                target = f"— (the tags add {_sec(_s(link['tag_lookup_seconds']).median)} to a warm pull)"
            rows.append([NUMBERS[key], LABELS[key], format_rate(link["rate_bits"]), _x(summary.median),
                         _spread(summary), str(summary.runs), target])
    amp_rate = format_rate(results["settings"]["amp_rate_bits"])
    for case in results["amplification"]:
        total = _s(case["total"])
        nodes = f"{case['count']} node{'s' if case['count'] > 1 else ''}"
        if case["with_warmup"]:
            label = f"upstream bytes ÷ image bytes, {nodes} at once, after the warm-up (its bytes included)"
            own, pulls = _s(case["warmup_own"]), _s(case["node_pulls"])
            target = (f"≤ 1.00: {verdict(total, TARGET_WITH_WARMUP)} (nodes {_x(pulls.median)}; warm-up "
                      f"{_x(own.median)} per blob it fetched)")
        else:
            label = f"upstream bytes ÷ image bytes, {nodes} at once, cold, no warm-up"
            target = "—"
        rows.append(["4", label, amp_rate, _x(total.median), _spread(total), str(total.runs), target])
    program = results["program"]
    seconds = _s(program["seconds"])
    rows.append(["5", f"program evaluation under mocks, dev stack ({program['resources']} resources)", "—",
                 _sec(seconds.median), _spread(seconds, _sec), str(seconds.runs), "—"])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(machine: dict[str, Any]) -> str:
    return (f"{machine['cpus']} CPUs ({machine['cpu']}), {machine['memory_gib']} GiB memory, Linux "
            f"{machine['kernel']} ({machine['os']}); Docker engine {machine['docker']}; {registry_line(machine)}; "
            f"Python {machine['python']}, pulumi {machine['pulumi']}")


def registry_line(machine: dict[str, Any]) -> str:
    """Which registry and containerd ran, and from where (older results name only a version)."""
    def source(key: str) -> str:
        return f" from {machine[key]}" if machine.get(key) else ""
    return (f"registry {machine['registry']}{source('registry_source')} in the registry:3 layout; containerd "
            f"{machine['containerd']}{source('containerd_source')} with kind v0.32.0's config")


def is_v3(results: dict[str, Any]) -> bool:
    return str(results["machine"].get("registry", "")).lstrip("v").startswith("3.")


def markdown(results: dict[str, Any]) -> str:
    """The whole report: settings, the headline table, pull times, amplification details and notes."""
    settings, links = results["settings"], results["links"]
    rate, delay = format_rate(settings["rate_bits"]), settings["delay_seconds"]
    netem = "netem was available but not used" if settings["netem"] else "this kernel has no netem"
    delay_text = (f"plus {delay * 1000:.0f} ms per round trip and per new connection, added by a relay in the "
                  f"upstream's network namespace ({netem})" if delay > 0 else "no added delay")
    parts = [
        "# Benchmark: image delivery to nodes through the caches",
        "",
        f"Taken {results['taken']} with `{results['command'].strip()}` ({results['seconds']:.0f} s) on: "
        f"{machine_line(results['machine'])}.",
        "",
        f"Images: the {len(settings['images'])} images of Cilium 1.20, MetalLB 0.16 and ingress-nginx 4.15.1, "
        f"generated with layers at {settings['scale']:g}× their approximate real sizes: "
        f"{_mib(settings['image_bytes'])} per node ({settings['platform']}; the real set is about "
        f"{_mib(settings['full_size_bytes'])}). Upstream link: `tbf` at {rate} (second link speed: "
        f"{format_rate(settings['second_rate_bits'])}), {delay_text}. {settings['reps']} runs per timing; "
        f"ratios are taken per run and shown as median and min–max.",
        "",
        _table(["#", "measure", "link", "median", "min–max", "runs", "target"], headline_rows(results)),
        "",
        "## Pull times",
        "",
        "Every image on one node, one after the other, median (min–max) in seconds. \"direct\": the node pulls from "
        "the upstream itself; \"cold\"/\"warm\": through the program's cache, empty / holding everything; "
        "\"local\": from a plain registry on the node's network holding the same images (not behind the upstream "
        "link, so timed at the first link only). Images are named by digest (repository:tag@digest, as the Cilium "
        "and ingress-nginx charts pin them); \"by tag\": the same pulls naming repository:tag only (as MetalLB's "
        "chart does), timed at the first link.",
        "",
    ]
    rows = []
    for link in links:
        times = {k: _s(v) for k, v in link["times"].items()}
        throughput = _s(link["direct_throughput_bits"])
        rows.append([format_rate(link["rate_bits"])] + [f"{_sec(t.median)} ({_spread(t, _sec)})" if t else "—"
                                                        for t in (times["direct"], times["cold"], times["warm"],
                                                                  times.get("local"), times.get("warm_tag"),
                                                                  times.get("local_tag"))] +
                    [f"{format_rate(throughput.median)} ({throughput.median / link['rate_bits'] * 100:.0f}%)",
                     _x(_s(link["cold_upstream_ratio"]).median), warm_requests(link),
                     warm_requests(link, "tag_upstream_requests")])
    parts += [_table(["link", "direct", "cold via cache", "warm via cache", "local registry",
                      "warm via cache, by tag", "local registry, by tag",
                      "direct throughput (of the link)", "upstream bytes ÷ image bytes, cold",
                      "upstream requests in a warm pull", "the same by tag"], rows), ""]

    parts += [
        "## Upstream amplification",
        "",
        f"Blob bytes the upstreams sent (their access logs) ÷ the image bytes a node needs "
        f"({_mib(settings['image_bytes'])}), at {format_rate(settings['amp_rate_bits'])}, {settings['amp_reps']} "
        "run(s) per case. Without the warm-up, each case starts on empty caches"
        + (" (1 node: the cold runs of that link above)" if settings.get("amp_reused_cold_runs") else "")
        + ". With it, the caches are emptied, the program's recorded warm-up command runs, then 1, 3, … nodes pull "
        "in turn (hits change nothing in a cache, so each turn finds what the warm-up left); the totals include the "
        "warm-up's own upstream bytes.",
        "",
    ]
    rows = []
    for case in results["amplification"]:
        total, nodes, seconds = _s(case["total"]), _s(case["node_pulls"]), _s(case["seconds"])
        warm = _x(_s(case["warmup"]).median) if case["with_warmup"] else "—"
        own = _x(_s(case["warmup_own"]).median) if case["with_warmup"] else "—"
        around = ", ".join(f"{v:.0f}" for v in _s(case["around"]).values) if "around" in case else "—"
        rows.append([str(case["count"]), "yes" if case["with_warmup"] else "no", _x(total.median), warm, own,
                     _x(nodes.median), around, _sec(seconds.median)])
    parts += [_table(["nodes at once", "warm-up", "total ÷ image", "warm-up ÷ image",
                      "warm-up: upstream ÷ what it fetched", "nodes ÷ image",
                      "blobs the nodes fetched around the cache (per run)", "nodes' pull time"], rows), ""]

    program = results["program"]
    seconds = _s(program["seconds"])
    parts += [
        "## Program evaluation",
        "",
        f"`run_program(\"dev\")` (tests/harness.py: the whole program under Pulumi mocks, {program['resources']} "
        f"resources) in a fresh interpreter: importing pulumi and the harness {_sec(program['import_seconds'])}, "
        f"first evaluation {_sec(program['first_seconds'])} (the components' imports included), then "
        f"{_sec(seconds.median)} ({_spread(seconds, _sec)}) over {seconds.runs} runs.",
        "",
        "## Notes",
        "",
    ]
    parts += [f"- {note}" for note in notes(results)]
    if results.get("phases"):
        parts += ["", "Run time: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in
                                              results["phases"].items()) + "."]
    if results.get("load"):
        load = results["load"]
        parts += ["", f"1-minute load average before the run {load['before']:.2f}, after it {load['after']:.2f}"
                      + (f", at most {load['max']:.2f} during it" if "max" in load else "")
                      + " (other work on the machine shares its cores)."]
    return "\n".join(parts) + "\n"


def notes(results: dict[str, Any]) -> list[str]:
    """What the numbers mean and what they do not show."""
    settings, links = results["settings"], results["links"]
    first = links[0]
    cold_bytes = _s(first["cold_upstream_ratio"]).median
    out = [shaping_check(results)]
    if is_v3(results):
        out.append(
            f"The registry is distribution {results['machine']['registry']}, the binary of registry:3. On a miss it "
            "streams each blob from upstream once, teeing it to the node and to its storage (measured: "
            f"{_x(cold_bytes)} the image bytes for one cold node), so a cold pull costs the upstream link's time "
            "plus the extra hop: ratio 1.")
    else:
        out.append(
            f"The registry here is distribution {results['machine']['registry']} (Debian's, the fallback stand-in "
            "for registry:3). On a miss it downloads each blob twice from upstream at the same time, once for the "
            f"client and once for its storage (measured: {_x(cold_bytes)} the image bytes for one cold node), so on "
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
        f"({warm_requests(first, 'tag_upstream_requests')} requests: a HEAD of each tag, and with these upstreams "
        "the `/v2/` ping before it), no blob; each request pays "
        "the link's round trip"
        + (f" ({settings['delay_seconds'] * 1000:.0f} ms added here)" if settings["delay_seconds"] else "")
        + (f", {_sec(_s(first['tag_lookup_seconds']).median)} in all per warm pull" if "tag_lookup_seconds" in first
           else "") + ".",
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
              for v in _s(c["around"]).values if v]
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


def _kinds(counts: list[dict[str, int]]) -> str:
    """The first run's upstream requests by method and kind, e.g. "HEAD blobs 21, GET blobs 21"."""
    if not counts:
        return ""
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts[0].items(), key=lambda item: -item[1]))


def request_overhead(results: dict[str, Any]) -> str:
    """Ratio 1 explained by what the upstream logged: the cold pull's requests against the direct pull's, each
    paying the round trip (and the delay relay's per-connection delay)."""
    parts = []
    for link in results["links"]:
        if "upstream_requests" not in link:
            continue
        cold, direct = _s(link["upstream_requests"]["cold"]).median, _s(link["upstream_requests"]["direct"]).median
        extra_seconds = _s(link["times"]["cold"]).median - _s(link["times"]["direct"]).median
        parts.append(f"{cold:.0f} upstream requests where the direct pull made {direct:.0f}, and took "
                     f"{_sec(extra_seconds)} longer, at {format_rate(link['rate_bits'])}")
    if not parts:
        return ""
    first = results["links"][0]
    delay = results["settings"]["delay_seconds"]
    by_kind = first.get("cold_requests_by_kind", [{}])[0] if first.get("cold_requests_by_kind") else {}
    pings = by_kind.get("GET other", 0)
    return (
        "Where ratio 1's extra time goes (the upstreams' access logs of the timed runs): a cold pull through the "
        "cache made " + "; ".join(parts) + ". By kind, cold: "
        + _kinds(first.get("cold_requests_by_kind", [])) + "; direct: " + _kinds(first.get("direct_requests_by_kind", []))
        + ". v3.1.1 asks the upstream for a blob's descriptor with a HEAD before each GET (registry/proxy/"
        "proxyblobstore.go `copyContent`: `remoteStore.Stat`, then `Open`)"
        + (f", and, because these upstreams answer `/v2/` without an auth challenge, it pings `/v2/` before every "
           f"upstream request ({pings} \"GET other\"; registry/proxy/proxyregistry.go `tryEstablishChallenges` keeps "
           "only a challenge, so an upstream that sends one, as Docker Hub, quay.io and ghcr.io do, is pinged once)"
           if pings else "")
        + ". Each is a round trip"
        + (f" ({delay * 1000:.0f} ms here, another {delay * 1000:.0f} ms for each new connection)" if delay else "")
        + " that the direct pull does not make (containerd overlaps up to three layer downloads, so they do not add up "
        "one by one); the tee itself costs no upstream bytes. The cost is per request, not per byte: "
        + (f"at the real sizes ({1 / results['settings']['scale']:g}× the bytes, the same requests) the same seconds "
           "are that much smaller a share (an estimate, not measured here); " if results["settings"]["scale"] < 1
           else "")
        + "a registry that took the blob's size from the GET's own answer and remembered an upstream without a "
        "challenge would not pay it.")


def speedup_bound(results: dict[str, Any]) -> str:
    """What bounds cold ÷ warm: the warm side is this machine's delivery, the cold side the link."""
    settings, first = results["settings"], results["links"][0]
    times = {k: _s(v).median for k, v in first["times"].items()}
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
            fit = (f" (fitted over each image's warm pull in every run: {_sec(fixed)} per image whatever its size, "
                   f"then {1 / per_byte / MiB:.0f} MiB/s; {count} images × {_sec(fixed)} = {_sec(count * fixed)} of "
                   f"the {_sec(times['warm'])})")
    return (
        f"Ratio 3 is bound by the warm side, which is this machine's: the warm pull delivered "
        f"{_mib(settings['image_bytes'])} in {_sec(times['warm'])} ({mib / times['warm']:.0f} MiB/s) and the plain "
        f"local registry in {_sec(times['local'])} ({mib / times['local']:.0f} MiB/s), on "
        f"{results['machine']['cpus']} cores shared by containerd, the registries and the other work on the machine; "
        f"the cold side is bound by the link ({_sec(times['cold'])} at {format_rate(first['rate_bits'])}). 10× at "
        f"{format_rate(first['rate_bits'])} needs a warm pull of {_sec(times['cold'] / 10)} here. Most of a warm "
        "pull here is a fixed cost per image (a ctr process, the resolve, the content commit)" + fit
        + ", which does not grow with the layers while the cold side does"
        + (f": with the real sizes ({1 / settings['scale']:g}× the bytes) the ratio would be higher (an estimate; "
           "`--scale 1` measures it)." if settings["scale"] < 1 else ".")
        + " A kubelet pull also unpacks, which this benchmark's nodes cannot do (no mount in an unprivileged "
        "container), on both sides alike.")


def warm_requests(link: dict[str, Any], key: str = "warm_upstream_requests") -> str:
    if key not in link:
        return "—"
    return f"{_s(link[key]).median:.0f}"


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
        parts.append(f"{_x(estimate.median)} at {format_rate(link['rate_bits'])}")
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
        direct = _s(link["direct_throughput_bits"]).median
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


def plot(results: dict[str, Any], path: Path) -> None:
    """Three panels: overhead ratios (targets dashed), speedup per link, amplification per node count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    links = results["links"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), gridspec_kw={"width_ratios": [1.3, 0.8, 1.2]})

    def bars(ax, positions, summaries, color, label):
        medians = [s.median for s in summaries]
        errors = [[s.median - s.low for s in summaries], [s.high - s.median for s in summaries]]
        ax.bar(positions, medians, width=0.35, color=color, label=label, yerr=errors, capsize=4)
        for x, s in zip(positions, summaries):
            ax.annotate(_x(s.median), (x, s.high), textcoords="offset points", xytext=(0, 3), ha="center",
                        fontsize=8)

    ax = axes[0]
    labelled: set[int] = set()
    for j, key in enumerate(("cold_over_direct", "warm_over_local")):
        having = [i for i, link in enumerate(links) if key in link["ratios"]]
        for n, i in enumerate(having):
            bars(ax, [j + (n - (len(having) - 1) / 2) * 0.37], [_s(links[i]["ratios"][key])], f"C{i}",
                 None if i in labelled else format_rate(links[i]["rate_bits"]))
            labelled.add(i)
    ax.axhline(1.10, color="black", linestyle="--", linewidth=1, label="target 1.10")
    ax.set_xticks([0, 1], ["(1) cold via cache\n÷ direct", "(2) warm via cache\n÷ local registry"])
    ax.set_ylabel("time ratio (lower is better)")
    ax.set_title("Cache overhead")
    ax.legend(fontsize=8)

    ax = axes[1]
    summaries = [_s(link["ratios"]["cold_over_warm"]) for link in links]
    bars(ax, list(range(len(links))), summaries, "C2", None)
    ax.set_xticks(list(range(len(links))), [format_rate(link["rate_bits"]) for link in links])
    ax.set_ylabel("cold ÷ warm (higher is better)")
    ax.set_title("(3) Speedup of a warm cache")

    ax = axes[2]
    counts = sorted({c["count"] for c in results["amplification"]})
    for i, warm in enumerate((False, True)):
        cases = {c["count"]: c for c in results["amplification"] if c["with_warmup"] == warm}
        summaries = [_s(cases[n]["total"]) for n in counts if n in cases]
        bars(ax, [j + (i - 0.5) * 0.37 for j, n in enumerate(counts) if n in cases], summaries, f"C{3 + i}",
             "after the warm-up (its cost included)" if warm else "no warm-up")
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="1.0 = each byte once")
    ax.set_xticks(list(range(len(counts))), [f"{n} node{'s' if n > 1 else ''}" for n in counts])
    ax.set_ylabel("upstream bytes ÷ image bytes")
    ax.set_title(f"(4) Upstream amplification at {format_rate(results['settings']['amp_rate_bits'])}")
    ax.legend(fontsize=8)

    settings = results["settings"]
    delay = settings["delay_seconds"]
    fig.suptitle(f"Image delivery through the caches: {_mib(settings['image_bytes'])} of images per node, upstream "
                 f"{format_rate(settings['rate_bits'])}{f' + {delay * 1000:.0f} ms' if delay else ', no added delay'}, "
                 f"registry {results['machine']['registry']}, containerd {results['machine']['containerd']}, "
                 f"{results['machine']['cpus']} CPUs — {results['taken']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict[str, Any], folder: Path, name: str) -> list[Path]:
    """``<name>.json``, ``<name>.md`` and ``<name>.png`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.json", folder / f"{name}.md", folder / f"{name}.png"]
    paths[0].write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    paths[1].write_text(markdown(results))
    plot(results, paths[2])
    return paths
