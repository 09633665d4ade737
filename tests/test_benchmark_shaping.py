"""benchmarks/shaping.py (rates, delays, tc commands) and the delay relay of benchmarks/delayproxy.py."""
from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import delayproxy
from benchmarks.shaping import format_rate, parse_delay, parse_rate, tbf_burst_bytes, tbf_commands


@pytest.mark.parametrize(("text", "bits"), [
    ("50mbit", 50_000_000), ("200Mbit", 200_000_000), ("1gbit", 1_000_000_000), ("512kbit", 512_000),
    ("2.5mbit", 2_500_000), ("6250kbps", 50_000_000), ("1mbps", 8_000_000), ("100000", 100_000),
])
def test_parse_rate_uses_tc_units(text, bits):
    assert parse_rate(text) == bits


@pytest.mark.parametrize("text", ["", "fast", "50 mb", "-1mbit", "10bit", "50mbit/s"])
def test_parse_rate_refuses(text):
    with pytest.raises(ValueError):
        parse_rate(text)


def test_format_rate():
    assert format_rate(50_000_000) == "50 Mbit/s"
    assert format_rate(2_500_000_000) == "2.5 Gbit/s"
    assert format_rate(19_234_567) == "19.2 Mbit/s"
    assert format_rate(512_000) == "512 kbit/s"


@pytest.mark.parametrize(("text", "seconds"), [("40ms", 0.04), ("0", 0.0), ("1.5s", 1.5), ("250us", 0.00025),
                                               ("40", 0.04)])
def test_parse_delay(text, seconds):
    assert parse_delay(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "-4ms", "11s", "40 min"])
def test_parse_delay_refuses(text):
    with pytest.raises(ValueError):
        parse_delay(text)


def test_tbf_command_shapes_the_device_egress():
    assert tbf_commands("eth0", 50_000_000) == [[
        "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", "50000000bit", "burst", "65536",
        "latency", "100ms",
    ]]


@given(st.integers(min_value=8000, max_value=10**11))
def test_tbf_burst_holds_a_gso_segment_and_ten_ms(bits):
    burst = tbf_burst_bytes(bits)
    assert burst >= 64 * 1024
    assert burst >= bits // 8 // 100


@pytest.mark.parametrize("device", ["", "eth0; reboot", "a" * 16, "eth 0"])
def test_tbf_command_refuses_odd_device_names(device):
    with pytest.raises(ValueError):
        tbf_commands(device, 1_000_000)


def test_delay_relay_passes_both_directions_intact():
    """A loopback echo server behind the relay: every byte comes back, in order (no timing asserted)."""
    payload = bytes(range(256)) * 2000  # 512 KB: several chunks

    async def scenario() -> bytes:
        async def echo(reader, writer):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        target = server.sockets[0].getsockname()[:2]
        relay = await delayproxy.serve(("127.0.0.1", 0), target, delay=0.01)
        host, port = relay.sockets[0].getsockname()[:2]
        reader, writer = await asyncio.open_connection(host, port)

        async def send():
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        sending = asyncio.create_task(send())
        received = await asyncio.wait_for(reader.read(-1), timeout=30)
        await sending
        writer.close()
        relay.close()
        server.close()
        return received

    assert asyncio.run(scenario()) == payload
