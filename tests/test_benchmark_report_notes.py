"""benchmarks/report_notes.py: the notes' checks on a (made-up) benchmark result."""
from __future__ import annotations

from benchmarks import report_notes
from test_benchmark_report_markdown import results


def test_shaping_check_warns_when_a_probe_beats_the_rate():
    data = results()
    assert "WARNING" not in report_notes.shaping_check(data)
    data["links"][1]["probes"][0]["bits"] = 400_000_000
    text = report_notes.shaping_check(data)
    assert text.startswith("WARNING: 400 Mbit/s is faster than the configured 200 Mbit/s")


def test_per_byte_estimate_divides_each_cold_run_by_its_upstream_bytes():
    data = results()
    for link in data["links"]:
        link["cold_upstream_values"] = [2.0, 2.0, 2.0]
    # 50 Mbit/s: 42/2/20 = 1.05, 44/2/21 = 1.048, 41/2/22 = 0.93 -> median 1.05
    assert "a cold pull took 1.05× at 50 Mbit/s" in report_notes.per_byte_estimate(data)
    data["links"][0]["cold_upstream_values"] = []
    assert "50 Mbit/s" not in report_notes.per_byte_estimate(data)


def test_request_overhead_tells_tokens_from_pings():
    data = results()
    data["links"][0]["cold_requests_by_kind"] = [{"GET blobs": 28, "HEAD blobs": 28, "GET token": 70, "GET ping": 2}]
    text = report_notes.request_overhead(data)
    assert "fetches a new token for every upstream request (70 \"GET token\"" in text
    assert "(2 `/v2/` ping(s): each cache learns its upstream's challenge once" in text
    assert "before every upstream request (2" not in text and "kept its tokens would not pay it" in text
    data["links"][0]["cold_requests_by_kind"] = [{"GET blobs": 28, "GET ping": 72}]
    text = report_notes.request_overhead(data)
    assert "it pings `/v2/` before every upstream request (72" in text and "token" not in text


def test_a_cold_pull_faster_than_the_direct_one_is_said_so():
    data = results()
    data["links"][0]["times"]["cold"] = data["links"][0]["times"]["direct"]
    data["links"][0]["times"]["direct"] = {**data["links"][0]["times"]["direct"],
                                           "median": data["links"][0]["times"]["direct"]["median"] + 1.0}
    assert "and took 1.00 s less, at 50 Mbit/s" in report_notes.request_overhead(data)
