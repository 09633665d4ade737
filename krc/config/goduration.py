"""Go's ``time.ParseDuration``, as the registry reads ``REGISTRY_PROXY_TTL`` (pure, no Pulumi here).

distribution v3.1.1 parses the variable as YAML into a ``*time.Duration`` (configuration/parser.go with
gopkg.in/yaml.v2, which calls ``time.ParseDuration`` for a string), so a value the registry refuses stops the
cache with "configuration error" (exit 1). Ported from Go's src/time/format.go (``ParseDuration``,
``leadingInt``, ``leadingFraction``), byte for byte in what it accepts, including the overflow limit
(2562047h47m16.854775807s).
"""

from __future__ import annotations

__all__ = ["MAX_NANOSECONDS", "parse"]

MAX_NANOSECONDS = (1 << 63) - 1

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # U+00B5 micro sign
    "\u03bcs": 1_000,  # U+03BC Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def _is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def _leading_int(s: str) -> tuple[int, str]:
    x, i = 0, 0
    while i < len(s) and _is_digit(s[i]):
        if x > (1 << 63) // 10:
            raise ValueError("bad [0-9]*")
        x = x * 10 + ord(s[i]) - ord("0")
        if x > 1 << 63:
            raise ValueError("bad [0-9]*")
        i += 1
    return x, s[i:]


def _leading_fraction(s: str) -> tuple[int, float, str]:
    x, scale, i, overflow = 0, 1.0, 0, False
    while i < len(s) and _is_digit(s[i]):
        if not overflow:
            if x > MAX_NANOSECONDS // 10:
                overflow = True
            else:
                y = x * 10 + ord(s[i]) - ord("0")
                if y > 1 << 63:
                    overflow = True
                else:
                    x, scale = y, scale * 10
        i += 1
    return x, scale, s[i:]


def parse(text: str) -> int:
    """Nanoseconds of the Go duration ``text`` (``168h``, ``1h30m``, ``0``, ``.5s``, ``-1m``).

    :raises ValueError: where Go's ``time.ParseDuration`` returns an error.
    """
    orig, s, total, negative = text, text, 0, False
    if s and s[0] in "+-":
        negative, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {orig!r}")
    while s:
        if not (s[0] == "." or _is_digit(s[0])):
            raise ValueError(f"invalid duration {orig!r}")
        before = len(s)
        value, s = _leading_int(s)
        pre = before != len(s)
        fraction, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            before = len(s)
            fraction, scale, s = _leading_fraction(s)
            post = before != len(s)
        if not pre and not post:
            raise ValueError(f"invalid duration {orig!r}")
        i = 0
        while i < len(s) and not (s[i] == "." or _is_digit(s[i])):
            i += 1
        if i == 0:
            raise ValueError(f"missing unit in duration {orig!r}")
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise ValueError(f"unknown unit {unit_name!r} in duration {orig!r}")
        if value > (1 << 63) // unit:
            raise ValueError(f"invalid duration {orig!r}")
        value *= unit
        if fraction > 0:
            # As Go: float64 arithmetic, truncated to an integer.
            value += int(float(fraction) * (float(unit) / scale))
            if value > 1 << 63:
                raise ValueError(f"invalid duration {orig!r}")
        total += value
        if total > 1 << 63:
            raise ValueError(f"invalid duration {orig!r}")
    if negative:
        return -total
    if total > MAX_NANOSECONDS:
        raise ValueError(f"invalid duration {orig!r}")
    return total
