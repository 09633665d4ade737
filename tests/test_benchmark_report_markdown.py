"""benchmarks/report_markdown.py: the markdown rendering of a (made-up) benchmark result."""
from __future__ import annotations

import json

from benchmarks import report_markdown
from benchmarks.stats import summarize

MiB = 1024 * 1024


def s(*values: float) -> dict:
    return summarize(values).to_dict()


def link(rate: int, direct: list[float], cold: list[float], warm: list[float], local: list[float] | None) -> dict:
    image_bits = 100 * MiB * 8
    measured_local = local or warm
    data = {
        "rate_bits": rate,
        "probes": [{"rate_bits": rate, "upstream": "up-quay-io", "bits": rate * 0.95, "bytes": 1, "qdisc": "tbf"}],
        "times": {"direct": s(*direct), "cold": s(*cold), "warm": s(*warm), "local": s(*measured_local)},
        "direct_throughput_bits": s(*(image_bits / t for t in direct)),
        "cold_upstream_ratio": s(2.0, 2.0, 2.0),
        "warm_upstream_requests": s(0, 0, 0),
        "upstream_requests": {"direct": s(30, 30, 30), "cold": s(72, 72, 72)},
        "cold_requests_by_kind": [{"GET blobs": 28, "HEAD blobs": 28, "GET manifests": 14, "other": 2}] * 3,
        "direct_requests_by_kind": [{"GET blobs": 28, "HEAD manifests": 2}] * 3,
        "warm_per_image": [[1 * MiB, 0.3], [11 * MiB, 0.4], [21 * MiB, 0.5]],
        "ratios": {
            "cold_over_direct": s(*(c / d for c, d in zip(cold, direct))),
            "warm_over_local": s(*(w / lo for w, lo in zip(warm, measured_local))),
            "cold_over_warm": s(*(c / w for c, w in zip(cold, warm))),
        },
    }
    if local is None:  # the local registry, and pulls by tag, are timed at the first link only
        del data["times"]["local"], data["ratios"]["warm_over_local"]
    else:
        tag = [w + 0.3 for w in warm]
        data["times"] |= {"warm_tag": s(*tag), "local_tag": s(*(lo + 0.02 for lo in local))}
        data["ratios"]["warm_tag_over_local_tag"] = s(*(t / (lo + 0.02) for t, lo in zip(tag, local)))
        data["tag_upstream_requests"] = s(7, 7, 7)
        data["tag_lookup_seconds"] = s(0.3, 0.3, 0.3)
    return data


def results(scale: float = 0.25, delay: float = 0.04) -> dict:
    amplification = []
    for count, no_warmup in ((1, 2.0), (3, 4.2), (6, 8.5)):
        amplification.append({"count": count, "with_warmup": False, "total": s(no_warmup), "node_pulls": s(no_warmup),
                              "seconds": s(10.0), "around": s(0)})
        amplification.append({"count": count, "with_warmup": True, "total": s(2.0), "node_pulls": s(0.0),
                              "warmup": s(2.0), "warmup_own": s(2.0), "seconds": s(3.0), "around": s(0)})
    return {
        "taken": "2026-11-28 04:00 UTC",
        "command": "python -m benchmarks.run ",
        "seconds": 300.0,
        "machine": {"cpus": 2, "cpu": "Test CPU", "memory_gib": 23.5, "kernel": "6.1.0", "os": "Debian 12",
                    "docker": "20.10.24", "registry": "3.1.1", "registry_source": "built from x/cmd/registry@v3.1.1 with go1.26.8",
                    "containerd": "v2.3.1", "containerd_source": "built from x/cmd/containerd@v2.3.1 with go1.26.8",
                    "python": "3.11.7", "pulumi": "3.272.0"},
        "settings": {"profile": "default", "scale": scale, "reps": 3, "amp_reps": 1, "rate_bits": 50_000_000,
                     "second_rate_bits": 200_000_000, "amp_rate_bits": 200_000_000, "delay_seconds": delay,
                     "netem": False, "netem_detail": "Error: Specified qdisc kind is unknown.",
                     "images": ["quay.io/cilium/cilium:v1.20.0"] * 7, "image_bytes": 100 * MiB,
                     "full_size_bytes": 449 * MiB, "platform": "linux/amd64",
                     "probe_seconds": 2.0, "amp_reused_cold_runs": True},
        "links": [link(50_000_000, [20.0, 21.0, 22.0], [42.0, 44.0, 41.0], [3.0, 3.1, 3.3], [2.0, 2.2, 2.1]),
                  link(200_000_000, [6.0, 6.5, 6.1], [12.0, 13.0, 12.5], [3.0, 3.2, 3.1], None)],
        "amplification": amplification,
        "program": {"import_seconds": 0.5, "first_seconds": 1.3, "seconds": s(0.2, 0.21, 0.19, 0.2),
                    "resources": 33},
    }


def test_headline_table_has_every_measure_once_per_link_or_count():
    rows = report_markdown.headline_rows(results())
    numbers = [row[0] for row in rows]
    assert numbers == ["1", "1", "2", "2b", "3", "3", "4", "4", "4", "4", "4", "4", "5"]
    cold_direct_50 = rows[0]
    assert cold_direct_50[2] == "50 Mbit/s"
    assert cold_direct_50[3] == "2.10×"  # per-run ratios 2.1, 2.095…, 1.864
    assert cold_direct_50[4] == "1.86×–2.10×"
    assert cold_direct_50[6] == "≤ 1.10: missed"
    warm_local = rows[2]
    assert warm_local[2] == "50 Mbit/s" and warm_local[3] == "1.50×"
    by_tag = rows[3]
    assert by_tag[0] == "2b" and by_tag[6] == "— (the tags add 0.30 s to a warm pull)"
    speedup_50, speedup_200 = rows[4], rows[5]
    assert speedup_50[3] == "14.0×" and speedup_50[6] == "≥ 10: met"
    assert speedup_200[2] == "200 Mbit/s" and speedup_200[3] == "4.03×" and speedup_200[6] == "—"
    no_warmup_6 = rows[10]
    assert "6 nodes at once, cold" in no_warmup_6[1] and no_warmup_6[3] == "8.50×"
    with_warmup_6 = rows[11]
    assert "after the warm-up" in with_warmup_6[1] and with_warmup_6[3] == "2.00×"
    assert with_warmup_6[6] == "≤ 1.00: missed (nodes 0.00×; warm-up 2.00× per blob it fetched)"
    assert rows[-1][3] == "0.20 s" and rows[-1][5] == "4"


def test_markdown_tells_machine_settings_and_limits():
    text = report_markdown.markdown(results())
    assert text.startswith("# Benchmark")
    assert "2 CPUs (Test CPU), 23.5 GiB memory, Linux 6.1.0" in text
    assert "0.25× their approximate real sizes: 100 MiB per node" in text
    assert "this kernel has no netem" in text
    assert "| 6 | no | 8.50× | — | — | 8.50× | 0 |" in text
    assert "| 6 | yes | 2.00× | 2.00× | 2.00× | 0.00× | 0 |" in text
    assert "around the cache" in text and "containerd fetched those" not in text
    assert "Shaping check" in text and "47.5 Mbit/s" in text
    assert ("| 200 Mbit/s | 6.10 s (6.00 s–6.50 s) | 12.5 s (12.0 s–13.0 s) | 3.10 s (3.00 s–3.20 s) | — | — | — |"
            in text)
    assert "registry 3.1.1 (built from x/cmd/registry@v3.1.1 with go1.26.8) in the registry:3 layout; containerd v2.3.1" in text
    assert "asks the upstream nothing (0 upstream requests in a warm pull of 7 images)" in text
    assert "for each tag (7 requests: a HEAD of each tag, and with these upstreams the `/v2/` ping before it), no blob" in text and "(40 ms added here), 0.30 s" in text
    assert "streams each blob from upstream once" in text
    # Ratio 1 and ratio 3 explained by what was measured.
    assert "72 upstream requests where the direct pull made 30, and took 21.0 s longer, at 50 Mbit/s" in text
    assert "By kind, cold: GET blobs 28, HEAD blobs 28, GET manifests 14, other 2; direct: GET blobs 28" in text
    assert "the warm pull delivered 100 MiB in 3.10 s (32 MiB/s) and the plain local registry in 2.10 s" in text
    assert "0.29 s per image whatever its size, then 100 MiB/s; 7 images × 0.29 s = 2.03 s of the 3.10 s" in text
    assert "`--scale 1` runs the real sizes" in text
    # Every table row has as many cells as its header.
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if lines:
            assert len({line.count("|") for line in lines}) == 1, block


def test_markdown_without_delay_or_scaling_says_less():
    text = report_markdown.markdown(results(scale=1.0, delay=0.0))
    assert "no added delay" in text
    assert "--scale 1" not in text
    assert "TCP relay" not in text


def test_results_survive_json():
    data = results()
    assert report_markdown.markdown(json.loads(json.dumps(data))) == report_markdown.markdown(data)


def test_discarded_runs_are_told():
    data = results()
    assert "done again" not in report_markdown.markdown(data)
    data["discarded"] = ["50 Mbit/s run 2: bench-worker1 did not get 6 blob(s) from kcr-itest-quay-io"]
    assert "1 run(s) were done again" in report_markdown.markdown(data)


def test_load_around_the_run_is_told():
    data = results()
    data["load"] = {"before": 0.5, "after": 1.75}
    assert "1-minute load average before the run 0.50, after it 1.75 (other" in report_markdown.markdown(data)
    data["load"]["max"] = 3.0
    assert "after it 1.75, at most 3.00 during it" in report_markdown.markdown(data)


def test_blobs_fetched_around_the_cache_are_counted_and_told():
    data = results()
    data["amplification"][4]["around"] = s(1, 0)  # 6 nodes without warm-up: one blob in the first run
    text = report_markdown.markdown(data)
    assert "| 6 | no | 8.50× | — | — | 8.50× | 1, 0 |" in text
    assert "containerd fetched those blobs from the upstream itself" in text and "6 node(s): 1 in a run" in text
