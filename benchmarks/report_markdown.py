"""The benchmark's results as markdown: settings, the headline table, pull times, amplification and program.

:func:`markdown` is pure (unit-tested on a made-up result); the notes under it come from benchmarks/report_notes.py.
"""
from __future__ import annotations

from typing import Any

from .report_format import fmt_mib, fmt_sec, fmt_spread, fmt_x, summary_of, warm_requests
from .report_notes import notes
from .report_pulls import headline_rows as pull_rows
from .report_pulls import section as pull_section
from .shaping import format_rate
from .stats import Summary, verdict

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
            summary = summary_of(link["ratios"][key])
            minimum = MIN_TARGETS.get((key, link["rate_bits"]))
            target = (f"≥ {minimum:g}: {verdict(summary, minimum, higher_is_better=True)}" if minimum
                      else _target(summary, TARGETS.get(key)))
            if key == "warm_tag_over_local_tag" and "tag_lookup_seconds" in link:
                target = f"— (the tags add {fmt_sec(summary_of(link['tag_lookup_seconds']).median)} to a warm pull)"
            rows.append([NUMBERS[key], LABELS[key], format_rate(link["rate_bits"]), fmt_x(summary.median),
                         fmt_spread(summary), str(summary.runs), target])
    amp_rate = format_rate(results["settings"]["amp_rate_bits"])
    for case in results["amplification"]:
        total = summary_of(case["total"])
        nodes = f"{case['count']} node{'s' if case['count'] > 1 else ''}"
        if case["with_warmup"]:
            label = f"upstream bytes ÷ image bytes, {nodes} at once, after the warm-up (its bytes included)"
            own, pulls = summary_of(case["warmup_own"]), summary_of(case["node_pulls"])
            target = (f"≤ 1.00: {verdict(total, TARGET_WITH_WARMUP)} (nodes {fmt_x(pulls.median)}; warm-up "
                      f"{fmt_x(own.median)} per blob it fetched)")
        else:
            label = f"upstream bytes ÷ image bytes, {nodes} at once, cold, no warm-up"
            target = "—"
        rows.append(["4", label, amp_rate, fmt_x(total.median), fmt_spread(total), str(total.runs), target])
    program = results["program"]
    seconds = summary_of(program["seconds"])
    rows.append(["5", f"program evaluation under mocks, dev stack ({program['resources']} resources)", "—",
                 fmt_sec(seconds.median), fmt_spread(seconds, fmt_sec), str(seconds.runs), "—"])
    return rows + pull_rows(results)


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
        return f" ({machine[key]})" if machine.get(key) else ""
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
        f"{fmt_mib(settings['image_bytes'])} per node ({settings['platform']}; the real set is about "
        f"{fmt_mib(settings['full_size_bytes'])}). Upstream link: `tbf` at {rate} (second link speed: "
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
        times = {k: summary_of(v) for k, v in link["times"].items()}
        throughput = summary_of(link["direct_throughput_bits"])
        rows.append([format_rate(link["rate_bits"])] +
                    [f"{fmt_sec(t.median)} ({fmt_spread(t, fmt_sec)})" if t else "—"
                     for t in (times["direct"], times["cold"], times["warm"], times.get("local"),
                               times.get("warm_tag"), times.get("local_tag"))] +
                    [f"{format_rate(throughput.median)} ({throughput.median / link['rate_bits'] * 100:.0f}%)",
                     fmt_x(summary_of(link["cold_upstream_ratio"]).median), warm_requests(link),
                     warm_requests(link, "tag_upstream_requests")])
    parts += [_table(["link", "direct", "cold via cache", "warm via cache", "local registry",
                      "warm via cache, by tag", "local registry, by tag",
                      "direct throughput (of the link)", "upstream bytes ÷ image bytes, cold",
                      "upstream requests in a warm pull", "the same by tag"], rows), ""]

    parts += [
        "## Upstream amplification",
        "",
        f"Blob bytes the upstreams sent (their access logs) ÷ the image bytes a node needs "
        f"({fmt_mib(settings['image_bytes'])}), at {format_rate(settings['amp_rate_bits'])}, {settings['amp_reps']} "
        "run(s) per case. Without the warm-up, each case starts on empty caches"
        + (" (1 node: the cold runs of that link above)" if settings.get("amp_reused_cold_runs") else "")
        + ". With it, the caches are emptied, the program's recorded warm-up command runs, then 1, 3, … nodes pull "
        "in turn (hits change nothing in a cache, so each turn finds what the warm-up left); the totals include the "
        "warm-up's own upstream bytes.",
        "",
    ]
    rows = []
    for case in results["amplification"]:
        total, nodes, seconds = summary_of(case["total"]), summary_of(case["node_pulls"]), summary_of(case["seconds"])
        warm = fmt_x(summary_of(case["warmup"]).median) if case["with_warmup"] else "—"
        own = fmt_x(summary_of(case["warmup_own"]).median) if case["with_warmup"] else "—"
        around = ", ".join(f"{v:.0f}" for v in summary_of(case["around"]).values) if "around" in case else "—"
        rows.append([str(case["count"]), "yes" if case["with_warmup"] else "no", fmt_x(total.median), warm, own,
                     fmt_x(nodes.median), around, fmt_sec(seconds.median)])
    parts += [_table(["nodes at once", "warm-up", "total ÷ image", "warm-up ÷ image",
                      "warm-up: upstream ÷ what it fetched", "nodes ÷ image",
                      "blobs the nodes fetched around the cache (per run)", "nodes' pull time"], rows), ""]

    parts += pull_section(results)
    program = results["program"]
    seconds = summary_of(program["seconds"])
    parts += [
        "## Program evaluation",
        "",
        f"`run_program(\"dev\")` (tests/harness.py: the whole program under Pulumi mocks, {program['resources']} "
        f"resources) in a fresh interpreter: importing pulumi and the harness {fmt_sec(program['import_seconds'])}, "
        f"first evaluation {fmt_sec(program['first_seconds'])} (the components' imports included), then "
        f"{fmt_sec(seconds.median)} ({fmt_spread(seconds, fmt_sec)}) over {seconds.runs} runs.",
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
