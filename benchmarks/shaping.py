"""Shaping the fake upstream's link: rates and delays as `tc` spells them, and the commands that apply them.

The pure part (parsing, command construction) is unit-tested; :func:`apply_rate` and :func:`qdisc_kinds` run
``tc`` inside a container's network namespace with ``nsenter`` (root only).

This machine's kernel has the ``tbf`` and ``htb`` qdiscs but not ``netem``: bandwidth is shaped with ``tbf`` on the
upstream container's own ``eth0`` (its egress: everything it sends to caches and nodes), and a delay, when one is
asked for, is added by :mod:`benchmarks.delayproxy` instead (see there for what that does and does not emulate).
"""
from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

__all__ = [
    "format_rate", "netem_available", "parse_delay", "parse_rate", "qdisc_show", "tbf_burst_bytes", "tbf_commands",
    "apply_rate",
]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)?\s*$", re.IGNORECASE)
#: tc's units: "bit" suffixes are bits per second, "bps" suffixes BYTES per second (as in tc(8)).
_RATE_FACTORS = {
    "bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9,
    "bps": 8, "kbps": 8 * 10**3, "mbps": 8 * 10**6, "gbps": 8 * 10**9,
}
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s)?\s*$", re.IGNORECASE)
_DELAY_FACTORS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_rate(text: str) -> int:
    """A tc rate (``50mbit``, ``200Mbit``, ``1gbit``, ``6250kbps``) in bits per second. A bare number is bits/s.

    >>> parse_rate("50mbit")
    50000000
    """
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"not a rate: {text!r} (use tc units: 50mbit, 200mbit, 1gbit)")
    bits = float(match[1]) * _RATE_FACTORS[(match[2] or "bit").lower()]
    if bits < 8000:
        raise ValueError(f"rate {text!r} is below 8kbit: too slow to pull anything")
    return int(round(bits))


def format_rate(bits_per_second: float) -> str:
    """``50000000`` -> ``50 Mbit/s`` (decimal units, as tc and link speeds use them)."""
    for factor, unit in ((10**9, "Gbit/s"), (10**6, "Mbit/s"), (10**3, "kbit/s")):
        if bits_per_second >= factor:
            value = bits_per_second / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.3g} {unit}"
    return f"{bits_per_second:.0f} bit/s"


def parse_delay(text: str) -> float:
    """A tc time (``40ms``, ``0``, ``1.5s``, ``250us``) in seconds; a bare number is milliseconds."""
    match = _DELAY.match(text)
    if not match:
        raise ValueError(f"not a delay: {text!r} (use 40ms, 0, 1s)")
    unit = (match[2] or "ms").lower()
    seconds = float(match[1]) * _DELAY_FACTORS[unit]
    if seconds > 10:
        raise ValueError(f"delay {text!r} is over 10s")
    return seconds


def tbf_burst_bytes(bits_per_second: int) -> int:
    """The token bucket's size: 10 ms of the rate, at least 64 KiB.

    tbf needs a bucket of at least one timer tick's worth of bytes to reach its rate, and the veth of a
    container hands it segments of up to 64 KiB (GSO), which a smaller bucket would drop.
    """
    return max(64 * 1024, bits_per_second // 8 // 100)


def tbf_commands(device: str, bits_per_second: int, latency_ms: int = 100) -> list[list[str]]:
    """``tc`` argv that (re)places a tbf qdisc limiting ``device``'s egress to ``bits_per_second``.

    ``replace`` makes it idempotent, so a second call changes the rate in place. ``latency`` bounds how long a
    packet may wait in the queue (the queue length tbf derives from it); beyond that packets drop and TCP backs
    off, as on a real bottleneck link.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,15}", device):
        raise ValueError(f"not a network device name: {device!r}")
    if bits_per_second <= 0 or latency_ms <= 0:
        raise ValueError("rate and latency must be positive")
    return [[
        "tc", "qdisc", "replace", "dev", device, "root", "tbf",
        "rate", f"{bits_per_second}bit", "burst", str(tbf_burst_bytes(bits_per_second)), "latency", f"{latency_ms}ms",
    ]]


def _in_netns(pid: int, argv: Sequence[str]) -> list[str]:
    return ["nsenter", "-t", str(pid), "-n", *argv]


def apply_rate(pid: int, bits_per_second: int, device: str = "eth0") -> str:
    """Shape ``device`` in the network namespace of process ``pid`` (a container's); returns ``tc qdisc show``."""
    for argv in tbf_commands(device, bits_per_second):
        subprocess.run(_in_netns(pid, argv), check=True, capture_output=True, text=True)
    return qdisc_show(pid, device)


def qdisc_show(pid: int, device: str = "eth0") -> str:
    return subprocess.run(_in_netns(pid, ["tc", "qdisc", "show", "dev", device]), check=True, capture_output=True,
                          text=True).stdout.strip()


def netem_available() -> tuple[bool, str]:
    """Whether this kernel can add a netem qdisc, tried in a throwaway network namespace (never on a real link)."""
    script = "ip link set lo up && tc qdisc add dev lo root netem delay 1ms"
    try:
        done = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired) as error:
        return False, str(error)
    return done.returncode == 0, (done.stderr.strip() or "ok")
