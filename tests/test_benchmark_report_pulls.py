"""benchmarks/report_pulls.py: row 6 and its table from made-up counts."""
from __future__ import annotations

from benchmarks import report_pulls

COUNTERS = {"docker_pulls": 0, "manifest_get": 0, "manifest_head": 0, "index_get": 0, "tokens": 0}


def case(by: str, way: str, count: int, pulls: int, warmup: int | None = None) -> dict:
    nodes = {**COUNTERS, "docker_pulls": pulls - (warmup or 0), "manifest_get": 2 * (pulls - (warmup or 0))}
    found = {"by": by, "way": way, "count": count, "images": 7, "pulls": pulls, "nodes": nodes}
    if warmup is not None:
        found["warmup"] = {**COUNTERS, "docker_pulls": warmup, "manifest_get": 2 * warmup, "index_get": warmup}
    return found


def results(warm_pulls: int = 0) -> dict:
    cases = []
    for by in ("digest", "tag"):
        cases += [case(by, "direct", n, 7 * n) for n in (1, 3, 6)]
        cases += [case(by, "cold with warm-up", n, 7, warmup=7) for n in (1, 3, 6)]
        cases += [case(by, "warm", n, warm_pulls, warmup=0) for n in (1, 3, 6)]
    return {"hub_pulls": cases}


def test_row_6_per_way_with_the_targets():
    rows = report_pulls.headline_rows(results())
    assert rows[0] == ["6", "Docker Hub pulls per cluster recreation, direct, images by digest", "—",
                       "7 / 21 / 42 (1 / 3 / 6 nodes)", "—", "1", "—"]
    assert rows[1][3:] == ["7 / 7 / 7 (1 / 3 / 6 nodes)", "—", "1", "= 7 (one per image, any node count): met"]
    assert rows[2][6] == "= 0 (none, any node count): met"
    assert [r[1].rsplit(" ", 1)[-1] for r in rows] == ["digest"] * 3 + ["tag"] * 3


def test_a_warm_pull_that_costs_pulls_misses_its_target():
    assert report_pulls.headline_rows(results(warm_pulls=1))[2][6] == "= 0 (none, any node count): missed"


def test_the_table_splits_warm_up_and_nodes_and_counts_what_is_not_a_pull():
    text = "\n".join(report_pulls.section(results()))
    assert "| by digest | cold with warm-up | 3 | 7 | 7 | 0 | 14 | 7 | 0 | 0 |" in text
    assert "| by tag | direct | 6 | 42 | — | 42 | 84 | 0 | 0 | 0 |" in text
    assert report_pulls.section({}) == [] and report_pulls.headline_rows({}) == []
