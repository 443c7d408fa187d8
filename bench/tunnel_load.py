"""The loopback tunnel under load: head-of-line blocking and many connections at once.

``bench.tunnel_bench`` exposes both as ``measure_hol()`` and ``measure_concurrency()`` (and as
``--mode hol`` / ``--mode concurrency``); this module holds the set-up they share with it: an
agent subprocess (the zipapp) with one route, its app, and a ``TunnelClient`` that claims the
route for a local server, all on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from innerloop.agent.zipapp import agent_bundle
from innerloop.tunnel.client import TunnelClient
from innerloop.tunnel.transport import TcpTransport

from tools.net import free_ports, port_open

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BACKLOG = 2048
STALL = b"STALL\n"  # to the local server: never read this connection again
FLOOD = b"FLOOD\n"  # to the local server: write to this connection until it stops taking bytes
MESSAGE = b"x" * 100


def raise_fd_limit() -> None:
    """A thousand connections need ~4,000 descriptors in this process (callers, the tunnel
    client's local sockets, the local server's)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def round_trips(port: int, count: int, request: bytes = MESSAGE,
                      answer: int = len(MESSAGE), rate: float | None = None) -> list[float]:
    """`count` round trips on one connection (`request` out, `answer` bytes back), back to back
    or, given a `rate`, one every 1/rate s (a steady load)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    loop = asyncio.get_running_loop()
    times, next_at = [], loop.time()
    for _ in range(count):
        if rate:
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        start = time.perf_counter()
        writer.write(request)
        await reader.readexactly(answer)
        times.append(time.perf_counter() - start)
    writer.close()
    return times


class Loopback:
    def __init__(self, app_port: int, local_port: int, route: int, client: TunnelClient,
                 proc: asyncio.subprocess.Process) -> None:
        self.app_port, self.local_port, self.route = app_port, local_port, route
        self.client, self.proc = client, proc


@contextlib.asynccontextmanager
async def loopback(serve_app: Handler, serve_local: Handler, *,
                   claim: bool = True) -> AsyncIterator[Loopback]:
    """The agent's route 'route' serves 'serve_app' unless the client claimed it for
    'serve_local' (``claim``)."""
    app = await asyncio.start_server(serve_app, "127.0.0.1", 0, backlog=BACKLOG)
    local = await asyncio.start_server(serve_local, "127.0.0.1", 0, backlog=BACKLOG)
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
            while not port_open(tunnel):  # the agent compiles from its zipapp: a loaded VM is slow
                await asyncio.sleep(0.05)
            client = TunnelClient(await TcpTransport.connect("127.0.0.1", tunnel), "bench")
            await client.start()
            if claim:
                await client.claim(route, local_port)
            yield Loopback(app_port, local_port, route, client, proc)
            await client.aclose()
        finally:
            proc.terminate()
            await proc.wait()
            app.close()
            local.close()


# -- head-of-line blocking ----------------------------------------------------------------------


class StallingEcho:
    """An echo server, except on the connections told to stall or to flood, which last until
    ``release()``."""

    def __init__(self) -> None:
        self._released = asyncio.Event()
        self.flooded = 0  # bytes the flooding connections have written so far

    def release(self) -> None:
        self._released.set()
        self._released = asyncio.Event()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.readexactly(len(STALL))
        if first == STALL:  # never read again: the tunnel stream towards us fills its window
            await self._released.wait()
        elif first == FLOOD:  # write until the caller, who never reads, stops taking bytes
            flood = asyncio.ensure_future(self._flood(writer))
            await self._released.wait()
            flood.cancel()
        else:
            writer.write(first)
            await echo(reader, writer)
            return
        writer.transport.abort()

    async def _flood(self, writer: asyncio.StreamWriter) -> None:
        chunk = bytes(65536)
        with contextlib.suppress(ConnectionError):
            while True:
                writer.write(chunk)
                self.flooded += len(chunk)
                await writer.drain()


async def _stall(route: int, local: StallingEcho) -> list[asyncio.StreamWriter]:
    """Two stalled streams through the tunnel: one whose laptop-side reader never reads (the
    caller floods it), one whose caller never reads (the laptop floods it). Returns once both
    stopped moving: their windows and socket buffers are full, only their credit waits."""
    _, stalled_in = await asyncio.open_connection("127.0.0.1", route)
    stalled_in.write(STALL)
    _, stalled_out = await asyncio.open_connection("127.0.0.1", route)
    stalled_out.write(FLOOD)
    chunk = bytes(65536)
    for _ in range(128):  # 8 MiB: far more than a stalled stream's window and socket buffers
        stalled_in.write(chunk)
    moved, still = None, 0
    for _ in range(100):  # at most 10 s on a very busy machine
        await asyncio.sleep(0.1)
        now = (stalled_in.transport.get_write_buffer_size(), local.flooded)
        still = still + 1 if now == moved else 0
        if still == 3:
            break
        moved = now
    return [stalled_in, stalled_out]


async def hol_ratio(samples: int = 1000, blocks: int = 10) -> float:
    """Keep-alive round-trip p50 of a stream while two others are stalled ÷ while none is.

    The two states alternate in ``blocks`` pairs of blocks, so drift of the machine hits both;
    the result is the median of the pairs' ratios, so one burst of another process's work
    moves one pair, not the answer."""
    pooled: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    local = StallingEcho()
    async with loopback(echo, local) as lb:
        await round_trips(lb.route, 50)  # warm up
        for _ in range(blocks):
            p50 = {}
            for stalled in (False, True):
                writers = await _stall(lb.route, local) if stalled else []
                times = await round_trips(lb.route, samples // (2 * blocks))
                for writer in writers:
                    writer.transport.abort()
                local.release()
                await asyncio.sleep(0.1)  # the resets pass before the next block
                pooled[stalled] += times
                p50[stalled] = statistics.median(times)
            ratios.append(p50[True] / p50[False])
    free, stalled_p50 = (statistics.median(pooled[s]) for s in (False, True))
    print(f"keep-alive round trip p50: {free * 1e3:.3f} ms, with two streams stalled "
          f"{stalled_p50 * 1e3:.3f} ms; ratio per pair of blocks "
          f"{' '.join(f'{r:.2f}' for r in ratios)}", file=sys.stderr)
    return statistics.median(ratios)


# -- many connections at once -------------------------------------------------------------------


async def _caller(port: int, count: int, timeout: float) -> int:
    """``count`` round trips on one connection; the number that failed."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port),
                                                timeout)
    except (OSError, asyncio.TimeoutError):
        return count
    done = 0
    try:
        for _ in range(count):
            writer.write(MESSAGE)
            if await asyncio.wait_for(reader.readexactly(len(MESSAGE)), timeout) != MESSAGE:
                break
            done += 1
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        pass
    writer.close()
    return count - done


async def concurrency_errors(conns: int = 1000, requests: int = 10000,
                             timeout: float = 60.0) -> int:
    """``conns`` caller connections at once through one tunnel, ``requests`` round trips in
    all; returns how many failed. Connections the laptop did not accept in time and the app
    served instead are reported, not counted as failed (nothing failed for their caller)."""
    served_by_app = 0

    async def counting_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served_by_app
        served_by_app += 1
        await echo(reader, writer)

    async with loopback(counting_echo, echo) as lb:
        loop = asyncio.get_running_loop()
        start = loop.time()
        # the callers are pods in the cluster: another process, not this one's event loop
        callers = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.tunnel_load", str(lb.route), str(conns), str(requests),
            str(timeout), stdout=asyncio.subprocess.PIPE)
        out, _ = await callers.communicate()
        failed = int(out) if callers.returncode == 0 else requests
        took = loop.time() - start
    print(f"{conns} connections, {requests} requests in {took:.2f} s: {failed} failed, "
          f"{served_by_app} connections served by the app (not accepted in time)",
          file=sys.stderr)
    return failed


async def _callers(port: int, conns: int, requests: int, timeout: float) -> int:
    counts = [requests // conns + (i < requests % conns) for i in range(conns)]
    return sum(await asyncio.gather(*(_caller(port, c, timeout) for c in counts)))


# -- the laptop's receive path from the port-forward ----------------------------------------------

WS_MESSAGE = 32 * 1024  # what the API server's port-forward delivers at most per message


async def ws_receive(mib: int = 256) -> tuple[float, float]:
    """Bulk cluster → laptop without a cluster: a loopback WebSocket "pod" (another process,
    `websockets`, the v4.channel.k8s.io framing) sends one stream's DATA frames in messages of
    32 KiB, as the API server does; this process takes them as the CLI does (`PortForward` →
    `ClientConnection`). Returns (MB/s, this process's CPU ms per MB)."""
    from innerloop.core.mux import MAX_CREDIT
    from innerloop.core.mux_client import ClientConnection
    from innerloop.core.mux_events import DataReceived, StreamOpened
    from innerloop.k8s.portforward import SUBPROTOCOL, PortForward, PortForwardConnection
    from websockets.asyncio.client import connect

    pod = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.tunnel_load", "ws-pod", str(mib),
        stdout=asyncio.subprocess.PIPE)
    assert pod.stdout is not None
    port = int(await pod.stdout.readline())
    loop = asyncio.get_running_loop()
    conn = ClientConnection("bench", now=loop.time(), window=MAX_CREDIT)  # no credit needed
    done: asyncio.Future[None] = loop.create_future()
    received = 0

    class Count:
        def on_bytes(self, data: bytes | memoryview) -> None:
            nonlocal received
            for event in conn.receive_data(data, loop.time()):
                if isinstance(event, StreamOpened):
                    conn.accept(event.stream_id)
                elif isinstance(event, DataReceived):
                    received += len(event.data)
            if received >= mib * 1024 * 1024 and not done.done():
                done.set_result(None)

        def on_end(self, error: Exception | None) -> None:
            if not done.done():
                done.set_exception(error or EOFError("the pod ended early"))

    ws = await connect(f"ws://127.0.0.1:{port}/", subprotocols=[SUBPROTOCOL],
                       compression=None, max_size=1024 * 1024,
                       create_connection=PortForwardConnection)
    assert isinstance(ws, PortForwardConnection)
    forward = PortForward(ws, "pod/bench:8080", 8080)
    start, cpu = time.perf_counter(), time.process_time()
    forward.start_receiving(Count())
    await done
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    await forward.close()
    await pod.wait()
    mb = received / 1e6
    return mb / took, cpu / mb * 1e3


async def _ws_pod(mib: int) -> None:
    from innerloop.core.frames import DATA_CODE, HEADER, VERSION, Open, Welcome, encode
    from innerloop.k8s.portforward import SUBPROTOCOL
    from websockets.asyncio.server import ServerConnection, serve

    port_header = (8080).to_bytes(2, "little")
    frame = HEADER.pack(65536, DATA_CODE, 1) + bytes(65536)
    finished = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"\x00" + port_header)
        await ws.send(b"\x01" + port_header)
        pending = bytearray(encode(Welcome(VERSION, "pod", 2**31 - 1)) + encode(Open(1, 80, "p")))
        for _ in range(mib * 16):
            pending += frame
            while len(pending) >= WS_MESSAGE:
                await ws.send(b"\x00" + pending[:WS_MESSAGE])
                del pending[:WS_MESSAGE]
        await ws.send(b"\x00" + pending)
        await ws.wait_closed()
        finished.set()

    async with serve(handler, "127.0.0.1", 0, compression=None,
                     subprotocols=[SUBPROTOCOL]) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await finished.wait()


if __name__ == "__main__":  # the callers of concurrency_errors, or the pod of ws_receive
    raise_fd_limit()
    if sys.argv[1] == "ws-pod":
        asyncio.run(_ws_pod(int(sys.argv[2])))
    else:
        port, conns, requests = map(int, sys.argv[1:4])
        print(asyncio.run(_callers(port, conns, requests, float(sys.argv[4]))))
