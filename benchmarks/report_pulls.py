"""The report's Docker Hub pulls per cluster recreation: the headline rows with their targets, and the table."""
from __future__ import annotations

from typing import Any

#: What each way should cost, per image: warm nothing, cold with the warm-up one pull whatever the node count.
TARGETS = {"cold with warm-up": 1, "warm": 0}


def _cases(results: dict[str, Any]) -> list[dict[str, Any]]:
    return results.get("hub_pulls") or []


def _target(way: str, cases: list[dict[str, Any]]) -> str:
    if way not in TARGETS:
        return "—"
    images = cases[0]["images"]
    wanted = TARGETS[way] * images
    met = all(case["pulls"] == wanted for case in cases)
    per = "one per image" if TARGETS[way] else "none"
    return f"= {wanted} ({per}, any node count): {'met' if met else 'missed'}"


def headline_rows(results: dict[str, Any]) -> list[list[str]]:
    """Row 6: per way and naming, the pulls for each node count (one run each: counts do not vary)."""
    rows = []
    cases = _cases(results)
    for by in ("digest", "tag"):
        for way in ("direct", "cold with warm-up", "warm"):
            found = sorted((c for c in cases if c["by"] == by and c["way"] == way), key=lambda c: c["count"])
            if not found:
                continue
            pulls = " / ".join(str(c["pulls"]) for c in found)
            nodes = " / ".join(str(c["count"]) for c in found)
            rows.append(["6", f"Docker Hub pulls per cluster recreation, {way}, images by {by}", "—",
                         f"{pulls} ({nodes} nodes)", "—", "1", _target(way, found)])
    return rows


def section(results: dict[str, Any]) -> list[str]:
    """The table behind row 6, with the upstream requests that are not pulls."""
    cases = _cases(results)
    if not cases:
        return []
    rows = []
    for case in cases:
        nodes, warmup = case["nodes"], case.get("warmup") or {}
        rows.append([f"by {case['by']}", case["way"], str(case["count"]), str(case["pulls"]),
                     str(warmup.get("docker_pulls", "—")), str(nodes["docker_pulls"]),
                     str(warmup.get("manifest_get", 0) + nodes["manifest_get"]),
                     str(warmup.get("index_get", 0) + nodes["index_get"]),
                     str(warmup.get("manifest_head", 0) + nodes["manifest_head"]),
                     str(warmup.get("tokens", 0) + nodes["tokens"])])
    header = ["images", "way", "nodes", "pulls", "of them the warm-up's", "of them the nodes'", "manifest GETs",
              "of them index GETs", "manifest HEADs", "token requests"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [
        "## Docker Hub pulls per cluster recreation",
        "",
        f"Every node pulls all {cases[0]['images']} images (one platform) at once, as after `pulumi destroy` + "
        "`pulumi up`. Counted at the upstreams as Docker Hub counts pulls (docs.docker.com, \"Docker Hub pull usage "
        "and limits\"): a GET of an image manifest is a pull, a multi-arch image counts once per architecture "
        "fetched (its index GET is none of its own), a HEAD is a version check and never counts. \"direct\": the "
        "nodes pull from the upstreams; \"cold with warm-up\": empty caches, the program's warm-up, then the nodes; "
        "\"warm\": the caches hold everything, the warm-up runs again (new cache containers after a destroy trigger "
        "it), then the nodes. One run per case: the counts do not vary from run to run.",
        "",
        *lines,
        "",
    ]
