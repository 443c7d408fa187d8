"""Tunnel latency and throughput on loopback: agent subprocess (zipapp) + TunnelClient.

    .venv/bin/python -m bench.tunnel_bench [--requests 2000] [--mode http]

Prints, for one-shot connections (connect, 100-byte request, answer, close) and for round trips
on one open connection: p50/p99 straight to the app vs through the agent + tunnel to the
"laptop"; then bulk throughput through the tunnel (median of three). bench/cluster_bench.py runs
it as part of its run on the testbed.

``--mode http``: small HTTP/1.1 requests on one keep-alive connection, whole-connection routing
(a claim without a filter: the agent splices) against per-request routing (a claim with a
header filter: the agent parses every request and answer), to the laptop and to the app,
interleaved rounds, and the ratio of the p50s (issue 9's goal: at most 1.1).

``--mode cpu``: one line of key=value (round-trip p50, CPU per round trip at each end, bulk
echo MB/s, CPU per MB at each end), to compare two trees in alternated runs, e.g.
``PYTHONPATH=<tree>/server python -m bench.tunnel_bench --mode cpu --requests 3000``.
``--mode ws-receive``: the laptop's receive path from a port-forward (`tunnel_load.ws_receive`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

from innerloop.core.filters import HeaderMatch, RequestFilter
from innerloop.tunnel.client import TunnelClient

from bench.tunnel_load import (
    Loopback,
    concurrency_errors,
    echo,
    hol_ratio,
    loopback,
    raise_fd_limit,
    round_trips,
    ws_receive,
)


def measure_hol(samples: int = 1000) -> float:
    """One stream stalled (its reader paused, both directions) vs none: the other streams'
    keep-alive round-trip p50, as a ratio (the goal: at most 1.1)."""
    raise_fd_limit()
    return asyncio.run(hol_ratio(samples))


def measure_concurrency(conns: int = 1000, requests: int = 10000) -> int:
    """``conns`` caller connections at once through one tunnel, ``requests`` echo round trips
    in all: how many failed (the goal: 0)."""
    raise_fd_limit()
    return asyncio.run(concurrency_errors(conns, requests))


async def one_shot(port: int) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"x" * 100)
    await reader.readexactly(100)
    writer.close()
    return time.perf_counter() - start


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


HTTP_REQUEST = b"GET /api/orders HTTP/1.1\r\nhost: orders\r\nx-dev: bench\r\n\r\n"
HTTP_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def tiny_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A keep-alive HTTP/1.1 server for bodiless requests: the same cost behind either route."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(HTTP_ANSWER)
    writer.close()


async def http_round_trips(port: int, count: int, request: bytes = HTTP_REQUEST,
                           rate: float | None = None) -> list[float]:
    """Keep-alive HTTP round trips against `tiny_http` (see `round_trips`)."""
    return await round_trips(port, count, request, len(HTTP_ANSWER), rate)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def http_mode(client: TunnelClient, route: int, local_port: int, n: int,
                    agent_pid: int) -> None:
    """Whole-connection vs per-request routing, interleaved rounds, p50 of all of them, and the
    agent's CPU per request in each."""
    unmatched = HTTP_REQUEST.replace(b"x-dev: bench", b"x-dev: other")
    rows: dict[str, list[float]] = {}
    cpu: dict[str, float] = {}

    async def run(name: str, request: bytes = HTTP_REQUEST) -> None:
        before = cpu_seconds(agent_pid)
        rows.setdefault(name, []).extend(await http_round_trips(route, n // 5, request))
        cpu[name] = cpu.get(name, 0.0) + cpu_seconds(agent_pid) - before

    for _ in range(5):
        await client.claim(route, local_port)  # no filter: whole connections
        await run("laptop, whole-connection")
        await client.claim(route, local_port, RequestFilter(
            headers=(HeaderMatch("x-dev", "bench"),)))
        await run("laptop, per-request")
        await run("app, per-request (unmatched)", unmatched)
        await client.release(route)
        await run("app, no claim (spliced)", unmatched)
    for name, times in rows.items():
        print(f"{summary(f'keep-alive HTTP, {name}', times)}   "
              f"agent CPU {cpu[name] / len(times) * 1e6:4.0f} µs/request")
    p50 = {name: statistics.median(times) for name, times in rows.items()}
    print(f"per-request ÷ whole-connection p50, to the laptop: "
          f"{p50['laptop, per-request'] / p50['laptop, whole-connection']:.2f}x; to the app: "
          f"{p50['app, per-request (unmatched)'] / p50['app, no claim (spliced)']:.2f}x")


async def cpu_mode(lb: Loopback, n: int) -> None:
    """The tunnel's own CPU at each end, for alternated A/B runs of two trees: per keep-alive
    round trip (the laptop's minus the same round trips straight to the app) and per MB of
    three 64 MiB bulk echoes (the median's rate); one line of key=value."""
    await round_trips(lb.route, 200)  # warm up
    agent0, laptop0 = cpu_seconds(lb.proc.pid), time.process_time()
    times = await round_trips(lb.route, n)
    agent1, laptop1 = cpu_seconds(lb.proc.pid), time.process_time()
    await round_trips(lb.app_port, n)
    caller = time.process_time() - laptop1
    agent2, laptop2 = cpu_seconds(lb.proc.pid), time.process_time()
    size = 64 * 1024 * 1024
    rate = statistics.median([await throughput(lb.route, size) for _ in range(3)])
    agent3, laptop3 = cpu_seconds(lb.proc.pid), time.process_time()
    mb = 3 * 2 * size / 1e6
    print(f"rt_p50_ms={statistics.median(times) * 1e3:.3f} "
          f"agent_us_rt={(agent1 - agent0) / n * 1e6:.0f} "
          f"laptop_us_rt={(laptop1 - laptop0 - caller) / n * 1e6:.0f} bulk_MBps={rate:.0f} "
          f"agent_ms_per_MB={(agent3 - agent2) / mb * 1e3:.2f} "
          f"laptop_ms_per_MB={(laptop3 - laptop2) / mb * 1e3:.2f}")


def summary(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return (f"{name:<48} p50 {statistics.median(ms):6.3f} ms   "
            f"p99 {ms[int(len(ms) * 0.99) - 1]:6.3f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--mode", choices=["tunnel", "http", "hol", "concurrency", "cpu",
                                           "ws-receive"],
                        default="tunnel")
    parser.add_argument("--uvloop", action="store_true",
                        help="the laptop end (this process) on uvloop; the agent never is")
    args = parser.parse_args()
    n = args.requests
    if args.mode == "hol":
        print(f"hol_ratio {await hol_ratio():.3f}")
        return
    if args.mode == "concurrency":
        print(f"concurrency_errors {await concurrency_errors()}")
        return
    if args.mode == "ws-receive":
        rate, cpu = await ws_receive()
        print(f"ws_receive_MBps={rate:.0f} ws_receive_ms_per_MB={cpu:.2f}")
        return
    if args.mode == "cpu":
        async with loopback(echo, echo) as lb:
            await cpu_mode(lb, n)
        return
    serve = tiny_http if args.mode == "http" else echo
    async with loopback(serve, serve, claim=False) as lb:
        if args.mode == "http":
            await http_mode(lb.client, lb.route, lb.local_port, n, lb.proc.pid)
            return
        print(summary("one-shot, straight to the app", [await one_shot(lb.app_port)
                                                        for _ in range(n)]))
        print(summary("one-shot, agent → app", [await one_shot(lb.route) for _ in range(n)]))
        await lb.client.claim(lb.route, lb.local_port)
        print(summary("one-shot, agent → tunnel → laptop", [await one_shot(lb.route)
                                                            for _ in range(n)]))
        print(summary("round trip, straight to the app", await round_trips(lb.app_port, n)))
        print(summary("round trip, agent → tunnel → laptop", await round_trips(lb.route, n)))
        size = 64 * 1024 * 1024
        rates = [await throughput(lb.route, size) for _ in range(3)]
        print(f"{'bulk echo through the tunnel':<36} {statistics.median(rates):6.0f} MB/s"
              f" (64 MiB each way; median of {' '.join(f'{r:.0f}' for r in rates)})")


if __name__ == "__main__":
    raise_fd_limit()
    if "--uvloop" in sys.argv:
        from innerloop.tunnel.loop import run as loop_run
        from innerloop.tunnel.loop import uvloop_policy  # not in older trees (A/B)

        if uvloop_policy() is None:
            raise SystemExit("--uvloop: uvloop is not installed (pip install 'innerloop[fast]')")
        loop_run(main())
    else:
        asyncio.run(main())
