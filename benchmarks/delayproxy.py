"""A TCP relay that adds a fixed delay to what a server sends: per-request latency without netem.

This machine's kernel has no ``netem`` qdisc, so a link delay cannot be added to packets. The benchmark runs this
relay inside the fake upstream's network namespace (``nsenter -t <pid> -n``), listening next to the registry and
forwarding to it over the namespace's loopback; caches and nodes reach the upstream through it. Every chunk the
registry sends is held back ``delay`` seconds from the moment it was read (order kept), and a new connection waits
``delay`` before its first byte is relayed, so a request/response round trip and a TCP handshake each cost ``delay``
more, as with ``netem delay`` on the upstream's egress. Its output still leaves through the upstream's ``eth0``,
where ``tbf`` limits the rate.

What it does NOT emulate: TCP's own reaction to a long path (slow start ramping over several round trips, the
window limiting throughput to window ÷ RTT): the TCP connections themselves stay local and fast. So it models
the request latency a pull pays, not a real 40 ms path's throughput dynamics.

``python -m benchmarks.delayproxy --listen 0.0.0.0:5080 --target 127.0.0.1:5000 --delay 0.04`` prints ``ready``
once it listens and runs until it is terminated.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

__all__ = ["CHUNK", "QUEUE_CHUNKS", "relay", "serve"]

#: Bytes read at once; the queue holds QUEUE_CHUNKS of them per direction (4 MiB: one delay's worth of data at
#: up to ~800 Mbit/s with a 40 ms delay), which bounds memory and pushes back on the registry beyond that.
CHUNK = 64 * 1024
QUEUE_CHUNKS = 64


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk written ``delay`` seconds after it was read; half-close at EOF."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=QUEUE_CHUNKS)

    async def read() -> None:
        try:
            while data := await reader.read(CHUNK):
                await queue.put((loop.time() + delay, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put((loop.time() + delay, b""))

    reading = asyncio.create_task(read())
    try:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
    finally:
        reading.cancel()


async def relay(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, target: tuple[str, int], delay: float,
) -> None:
    """Serve one client connection: connect to ``target`` and relay both ways, the server's side delayed."""
    upstream_writer = None
    try:
        if delay > 0:
            await asyncio.sleep(delay)  # the handshake's round trip
        upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        await asyncio.gather(_pipe(client_reader, upstream_writer, 0.0),
                             _pipe(upstream_reader, client_writer, delay))
    except (ConnectionError, OSError):
        pass
    finally:
        for writer in (client_writer, upstream_writer):
            if writer is not None:
                writer.close()


async def serve(listen: tuple[str, int], target: tuple[str, int], delay: float,
                ready: asyncio.Event | None = None) -> asyncio.Server:
    """Start listening on ``listen``; returns the server (``async with`` it, or close it)."""
    server = await asyncio.start_server(lambda r, w: relay(r, w, target, delay), *listen, reuse_address=True)
    if ready is not None:
        ready.set()
    return server


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="address:port to listen on")
    parser.add_argument("--target", required=True, help="address:port of the server")
    parser.add_argument("--delay", type=float, required=True, help="seconds added to the server's side")
    args = parser.parse_args(argv)

    async def run() -> None:
        server = await serve(_address(args.listen), _address(args.target), args.delay)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        print("ready", flush=True)
        async with server:
            await stop.wait()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
