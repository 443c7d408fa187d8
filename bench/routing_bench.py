"""Per-request routing cost against whole-connection routing (issue 9), on loopback.

    .venv/bin/python -m bench.routing_bench [--requests 4000] [--rounds 5] [--profile]
                                            [--mirror] [--rate 200] [--app-work 0.3]
                                            [--strace] [--laptop-only] [--py-spy FILE]

The agent runs as a subprocess (the zipapp, as in a pod); the bench process holds the caller,
the app, the "laptop" (a TunnelClient and its local app). Small keep-alive requests on one
connection, in interleaved rounds:

- laptop, whole-connection: a claim without a filter (the agent splices);
- laptop, per-request: a claim with a header filter that the request matches;
- app, per-request: the same claim, a request that does not match;
- app, spliced: no claim.

It prints each one's p50/p99, the agent's CPU per request (/proc), and the two ratios the issue
bounds (per-request ÷ whole-connection p50, at most 1.1): of all requests pooled, and the
median of the rounds' own ratios (each round is an A/B block: on a shared VM the load drifts
between blocks, less within one). ``--mirror`` adds rounds where a mirror claim of another
client copies the requests the app answers (bound: at most 1.1x the p50 without it;
``--mirror-only``: just those two; ``--laptop-only``: just the laptop's two), and
``--profile`` runs the agent from the source tree under cProfile and prints where its time
went in the per-request rounds (``--py-spy FILE``: samples them, the zipapp agent, into FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from innerloop.agent.zipapp import agent_bundle
from innerloop.core.filters import HeaderMatch, Mode, RequestFilter
from innerloop.tunnel.client import TunnelClient
from innerloop.tunnel.transport import TcpTransport

from bench.tunnel_bench import (
    HTTP_ANSWER,
    HTTP_REQUEST,
    cpu_seconds,
    http_round_trips,
    summary,
    tiny_http,
)
from tools.net import free_ports, port_open

SERVER = Path(__file__).resolve().parent.parent / "server"
MATCHED = RequestFilter(headers=(HeaderMatch("x-dev", "bench"),))
UNMATCHED = HTTP_REQUEST.replace(b"x-dev: bench", b"x-dev: other")
COPIED = RequestFilter(headers=(HeaderMatch("x-dev", "other"),))


async def start_agent(route: int, app_port: int, tunnel: int, health: int, tmp: Path,
                      profile: Path | None) -> asyncio.subprocess.Process:
    args = ["--tunnel-port", str(tunnel), "--health-port", str(health),
            "--route", f"{route}:{app_port}"]
    if profile is None:
        pyz = tmp / "agent.pyz"
        pyz.write_bytes(agent_bundle()[1])
        command = [sys.executable, "-I", "-S", str(pyz), *args]
        env = None
    else:  # from the sources: cProfile dumps its statistics when the agent stops (SIGINT)
        code = ("import cProfile, sys; from innerloop.agent.main import main; "
                f"cProfile.run({f'main({args!r})'!r}, {str(profile)!r})")
        command = [sys.executable, "-c", code]
        env = {**os.environ, "PYTHONPATH": str(SERVER)}
    proc = await asyncio.create_subprocess_exec(*command, env=env,
                                                stdout=asyncio.subprocess.DEVNULL)
    while not port_open(tunnel):
        if proc.returncode is not None:
            raise SystemExit(f"the agent exited ({proc.returncode})")
        await asyncio.sleep(0.05)
    return proc


def working_app(work: float) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                         Awaitable[None]]:
    """`tiny_http` that spends ``work`` seconds of CPU on each request first, as a real app
    does (the bench's app otherwise answers at once: nothing can overlap with it)."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while await reader.readuntil(b"\r\n\r\n"):
                until = time.perf_counter() + work
                while time.perf_counter() < until:
                    pass
                writer.write(HTTP_ANSWER)
        writer.close()
    return serve


class MirrorProcess:
    """The mirror's laptop (a TunnelClient and the app its copies go to) in a process of its
    own: in the bench's process, its work on each copy would delay the caller's next read,
    which a real caller (another machine) never sees."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, tunnel: int) -> MirrorProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.routing_bench", "--mirror-laptop", str(tunnel),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return cls(proc)

    async def ask(self, command: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{command}\n".encode())
        assert (await self.proc.stdout.readline()).strip() == b"ok", command

    async def claim(self, route: int) -> None:
        await self.ask(f"claim {route}")

    async def release(self, route: int) -> None:
        await self.ask(f"release {route}")

    async def aclose(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.wait()


async def mirror_laptop(tunnel: int) -> None:
    """``--mirror-laptop``: claim / release as stdin says, answering "ok" to each."""
    sink = await asyncio.start_server(tiny_http, "127.0.0.1", 0)
    client = TunnelClient(await TcpTransport.connect("127.0.0.1", tunnel), "bench-mirror")
    await client.start()
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        verb, route = line.split()
        if verb == "claim":
            await client.claim(int(route), sink.sockets[0].getsockname()[1], COPIED, Mode.MIRROR)
        else:
            await client.release(int(route))
        print("ok", flush=True)
    await client.aclose()


def ratios(blocks: list[dict[str, list[float]]], pairs: dict[str, tuple[str, str]]) -> None:
    """Each ratio of p50s: of all rounds pooled, and the median of the rounds' own."""
    pooled: dict[str, list[float]] = {}
    for block in blocks:
        for name, times in block.items():
            pooled.setdefault(name, []).extend(times)
    for label, (a, b) in pairs.items():
        if a not in pooled or b not in pooled:
            continue
        each = sorted(statistics.median(block[a]) / statistics.median(block[b])
                      for block in blocks)
        print(f"{label}: {statistics.median(pooled[a]) / statistics.median(pooled[b]):.2f}x "
              f"pooled, {statistics.median(each):.2f}x median of {len(each)} rounds "
              f"({each[0]:.2f}-{each[-1]:.2f})")


async def measure(route: int, tunnel: int, local_port: int, n: int, rounds: int,
                  agent_pid: int, mirrored: bool, per_request_only: bool,
                  rate: float | None, mirror_only: bool = False,
                  laptop_only: bool = False) -> None:
    client = TunnelClient(await TcpTransport.connect("127.0.0.1", tunnel), "bench")
    await client.start()
    mirror = await MirrorProcess.start(tunnel) if mirrored else None
    rows: dict[str, list[float]] = {}
    cpu: dict[str, float] = {}
    blocks: list[dict[str, list[float]]] = []

    async def run(name: str, request: bytes = HTTP_REQUEST) -> None:
        before = cpu_seconds(agent_pid)
        times = await http_round_trips(route, n // rounds, request, rate)
        cpu[name] = cpu.get(name, 0.0) + cpu_seconds(agent_pid) - before
        rows.setdefault(name, []).extend(times)
        blocks[-1][name] = times

    per_request_only = per_request_only or mirror_only
    for _ in range(rounds):
        blocks.append({})
        if not per_request_only:
            await client.claim(route, local_port)  # no filter: whole connections
            await run("laptop, whole-connection")
        await client.claim(route, local_port, MATCHED)
        if not mirror_only:
            await run("laptop, per-request")
        if laptop_only:
            continue
        await run("app, per-request (unmatched)", UNMATCHED)
        if mirror is not None:
            await mirror.claim(route)
            await run("app, per-request, mirrored", UNMATCHED)
            await mirror.release(route)
        await client.release(route)
        if not per_request_only:
            await run("app, no claim (spliced)", UNMATCHED)
    for name, times in rows.items():
        print(f"{summary(f'keep-alive HTTP, {name}', times)}   "
              f"agent CPU {cpu[name] / len(times) * 1e6:4.0f} µs/request")
    ratios(blocks, {
        "per-request ÷ whole-connection p50, to the laptop":
            ("laptop, per-request", "laptop, whole-connection"),
        "per-request ÷ whole-connection p50, to the app":
            ("app, per-request (unmatched)", "app, no claim (spliced)"),
        "mirrored ÷ not mirrored p50, answered by the app":
            ("app, per-request, mirrored", "app, per-request (unmatched)")})
    for c in (client, mirror):
        if c is not None:
            await c.aclose()


async def forward_delay(route: int, tunnel: int, local_port: int, agent_pid: int,
                        n: int) -> None:
    """``--strace``: how long the agent takes from reading an unmatched request to writing it to
    the app (its recvfrom and sendto under strace, which adds its own ~50 µs): the agent's
    part of the app's path."""
    client = TunnelClient(await TcpTransport.connect("127.0.0.1", tunnel), "bench")
    await client.start()
    await client.claim(route, local_port, MATCHED)
    await http_round_trips(route, 50, UNMATCHED)
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        tracer = await asyncio.create_subprocess_exec(
            "strace", "-f", "-ttt", "-e", "trace=recvfrom,sendto", "-s", "20", "-o", out.name,
            "-p", str(agent_pid), stderr=asyncio.subprocess.DEVNULL)
        await asyncio.sleep(1.0)  # attached
        await http_round_trips(route, n, UNMATCHED)
        tracer.terminate()
        await tracer.wait()
        read_at, delays = None, []
        for line in out.read().splitlines():
            found = re.match(r"\d+\s+([\d.]+) (recvfrom|sendto)\(\d+, \"GET /api", line)
            if found and found.group(2) == "recvfrom":
                read_at = float(found.group(1))
            elif found and read_at is not None:
                delays.append((float(found.group(1)) - read_at) * 1e6)
                read_at = None
    delays.sort()
    print(f"unmatched request read → written to the app: median {statistics.median(delays):.0f}"
          f" µs, p90 {delays[int(len(delays) * 0.9)]:.0f} µs ({len(delays)} requests, strace)")
    await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the agent (per-request rounds only)")
    parser.add_argument("--mirror", action="store_true",
                        help="a mirror claim gets a copy of every matched request")
    parser.add_argument("--mirror-only", action="store_true",
                        help="only the app's rounds with and without a mirror claim")
    parser.add_argument("--laptop-only", action="store_true",
                        help="only the laptop's rounds, whole-connection and per-request")
    parser.add_argument("--rate", type=float, help="requests a second (default: back to back)")
    parser.add_argument("--app-work", type=float, default=0.0, metavar="MS",
                        help="CPU the app spends on each request (default 0: answers at once)")
    parser.add_argument("--strace", action="store_true",
                        help="the agent's delay before forwarding an unmatched request")
    parser.add_argument("--py-spy", metavar="FILE",
                        help="py-spy the agent (per-request rounds only): collapsed stacks")
    parser.add_argument("--mirror-laptop", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mirror_laptop:
        await mirror_laptop(args.mirror_laptop)
        return
    app = await asyncio.start_server(working_app(args.app_work / 1000) if args.app_work
                                     else tiny_http, "127.0.0.1", 0)
    local = await asyncio.start_server(tiny_http, "127.0.0.1", 0)
    app_port, local_port = (s.sockets[0].getsockname()[1] for s in (app, local))
    route, tunnel, health = free_ports(3)
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "agent.prof" if args.profile else None
        proc = await start_agent(route, app_port, tunnel, health, Path(tmp), profile)
        try:
            if args.strace:
                return await forward_delay(route, tunnel, local_port, proc.pid, args.requests)
            spy = None if args.py_spy is None else await asyncio.create_subprocess_exec(
                shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(proc.pid), "--format", "raw", "--rate", "1000",
                "--output", args.py_spy, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
            await measure(route, tunnel, local_port, args.requests, args.rounds, proc.pid,
                          args.mirror or args.mirror_only, args.profile or spy is not None,
                          args.rate, args.mirror_only, args.laptop_only)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
        finally:
            proc.send_signal(signal.SIGINT)
            await proc.wait()
        if profile is not None:
            stats = pstats.Stats(str(profile))
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    asyncio.run(main())
