"""krc.config.goduration against the cases of Go's own time package tests (src/time/time_test.go)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from krc.config import goduration

S, MS, US, M, H = 10**9, 10**6, 10**3, 60 * 10**9, 3600 * 10**9


@pytest.mark.parametrize(("text", "ns"), [
    ("0", 0), ("5s", 5 * S), ("30s", 30 * S), ("1478s", 1478 * S), ("-5s", -5 * S), ("+5s", 5 * S),
    ("-0", 0), ("+0", 0), ("5.0s", 5 * S), ("5.6s", 5 * S + 600 * MS), ("5.s", 5 * S), (".5s", 500 * MS),
    ("1.0s", S), ("1.00s", S), ("1.004s", S + 4 * MS), ("1.0040s", S + 4 * MS), ("100.00100s", 100 * S + MS),
    ("10ns", 10), ("11us", 11 * US), ("12µs", 12 * US), ("12μs", 12 * US), ("13ms", 13 * MS), ("14s", 14 * S),
    ("15m", 15 * M), ("16h", 16 * H), ("3h30m", 3 * H + 30 * M), ("10.5s4m", 4 * M + 10 * S + 500 * MS),
    ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)), ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5 * US + 6),
    ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS), ("52763797000ns", 52763797000),
    ("0.3333333333333333333h", 20 * M), ("9007199254740993ns", (1 << 53) + 1),
    ("9223372036854775807ns", (1 << 63) - 1), ("9223372036854775.807us", (1 << 63) - 1),
    ("9223372036s854ms775us807ns", (1 << 63) - 1), ("-9223372036854775808ns", -(1 << 63)),
    ("-9223372036854775.808us", -(1 << 63)), ("-9223372036s854ms775us808ns", -(1 << 63)),
    ("0.100000000000000000000h", 6 * M), ("0.830103483285477580700h", 49 * M + 48 * S + 372539827),
    ("168h", 168 * H), ("2562047h", 2562047 * H),
])
def test_go_accepts(text, ns):
    assert goduration.parse(text) == ns


@pytest.mark.parametrize("text", [
    "", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "7d", "\x85\x85", "\xffff", "hello \xffff world",
    "9223372036854775808ns", "9223372036854775.808us", "9223372036854ms775us808ns", "-9223372036854775809ns",
    "2562048h", "9999999999999h", "1 h", "1H", " 1h", "1h ", "3600", "1e3", "0x10", "null",
])
def test_go_refuses(text):
    with pytest.raises(ValueError):
        goduration.parse(text)


@given(st.integers(0, 10**6), st.sampled_from(["ns", "us", "ms", "s", "m", "h"]))
def test_whole_units_multiply(n, unit):
    assert goduration.parse(f"{n}{unit}") == n * goduration._UNITS[unit]


def _ttl_problems(ttl: str) -> list[str]:
    from krc import config as settings

    try:
        settings.parse(project="kind-registry-cache", stack="dev", home="/home/dev", cache={"ttl": ttl})
    except settings.SettingsError as error:
        return error.problems
    return []


@pytest.mark.parametrize("ttl", ["168h", "0", "0s", "+0", "1h30m", ".5h", "1.h", "+1h", "2562047h", "12µs", "12μs"])
def test_cache_ttl_accepts_non_negative_go_durations(ttl):
    assert _ttl_problems(ttl) == []


@pytest.mark.parametrize(("ttl", "says"), [
    ("7d", "Go duration"), ("-1h", "Go duration"), ("3600", "Go duration"), ("", "Go duration"),
    ("2562048h", "at most 2562047h"), ("9999999999999h", "at most 2562047h"),
])
def test_cache_ttl_refuses_what_the_registry_refuses_or_misreads(ttl, says):
    (problem,) = _ttl_problems(ttl)
    assert problem.startswith("kind-registry-cache:cache.ttl: ") and says in problem
