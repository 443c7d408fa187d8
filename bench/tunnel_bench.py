"""Tunnel latency and throughput on loopback: agent subprocess (zipapp) + TunnelClient.

    .venv/bin/python -m bench.tunnel_bench [--requests 2000]

Prints, for one-shot connections (connect, 100-byte request, answer, close) and for round trips
on one open connection: p50/p99 straight to the app vs through the agent + tunnel to the
"laptop"; then bulk throughput through the tunnel (median of three). bench/cluster_bench.py runs
it as part of its run on the testbed.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from innerloop.agent.zipapp import agent_bundle
from innerloop.tunnel.client import TunnelClient
from innerloop.tunnel.transport import TcpTransport

from tools.net import free_ports


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def one_shot(port: int) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"x" * 100)
    await reader.readexactly(100)
    writer.close()
    return time.perf_counter() - start


async def round_trips(port: int, count: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        writer.write(b"x" * 100)
        await reader.readexactly(100)
        times.append(time.perf_counter() - start)
    writer.close()
    return times


async def throughput(port: int, size: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.perf_counter()

    async def send() -> None:
        chunk = bytes(65536)
        for _ in range(size // len(chunk)):
            writer.write(chunk)
            await writer.drain()
        writer.write_eof()

    sender = asyncio.ensure_future(send())
    received = 0
    while data := await reader.read(1 << 20):
        received += len(data)
    await sender
    writer.close()
    return 2 * received / (time.perf_counter() - start) / 1e6


def summary(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return (f"{name:<36} p50 {statistics.median(ms):6.3f} ms   "
            f"p99 {ms[int(len(ms) * 0.99) - 1]:6.3f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    app = await asyncio.start_server(echo, "127.0.0.1", 0)
    local = await asyncio.start_server(echo, "127.0.0.1", 0)
    app_port, local_port = (s.sockets[0].getsockname()[1] for s in (app, local))
    route, tunnel, health = free_ports(3)
    with tempfile.TemporaryDirectory() as tmp:
        pyz = Path(tmp) / "agent.pyz"
        pyz.write_bytes(agent_bundle()[1])
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", str(pyz), "--tunnel-port", str(tunnel),
            "--health-port", str(health), "--route", f"{route}:{app_port}",
            stdout=asyncio.subprocess.DEVNULL)
        try:
            await asyncio.sleep(0.5)
            n = args.requests
            print(summary("one-shot, straight to the app", [await one_shot(app_port)
                                                            for _ in range(n)]))
            print(summary("one-shot, agent → app", [await one_shot(route) for _ in range(n)]))
            client = TunnelClient(await TcpTransport.connect("127.0.0.1", tunnel), "bench")
            await client.start()
            await client.claim(route, local_port)
            print(summary("one-shot, agent → tunnel → laptop", [await one_shot(route)
                                                                for _ in range(n)]))
            print(summary("round trip, straight to the app", await round_trips(app_port, n)))
            print(summary("round trip, agent → tunnel → laptop", await round_trips(route, n)))
            size = 64 * 1024 * 1024
            rates = [await throughput(route, size) for _ in range(3)]
            print(f"{'bulk echo through the tunnel':<36} {statistics.median(rates):6.0f} MB/s"
                  f" (64 MiB each way; median of {' '.join(f'{r:.0f}' for r in rates)})")
            await client.aclose()
        finally:
            proc.terminate()
            await proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
