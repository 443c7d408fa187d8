"""Outbound streams over real loopback sockets: the laptop's connections dialled by the agent.

The agent runs as a real subprocess from the built zipapp (``python -I -S agent.pyz``), as in
test_tunnel.py; "the cluster" is a set of servers on 127.0.0.1 that the agent dials; the
"laptop" is a TunnelClient handed local TCP connections, as the forwarder will hand them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from innerloop.agent.zipapp import agent_bundle
from innerloop.core.frame_decoder import decode_all
from innerloop.core.frames import Goodbye, Hello, Welcome, encode
from innerloop.tunnel.client import TunnelClient
from innerloop.tunnel.errors import DialFailed, TunnelError
from innerloop.tunnel.transport import TcpTransport

from tools.net import free_ports
from tools.wait import wait_until

pytestmark = pytest.mark.integration
TIMEOUT = 20.0
AGENT_PYTHON = os.environ.get("INNERLOOP_AGENT_PYTHON", sys.executable)
MiB = 1024 * 1024
Pipe = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(256 * 1024):
        writer.write(data)
        await writer.drain()
    writer.write_eof()
    await writer.drain()
    writer.close()


async def count_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read(-1)  # returns only at the caller's FIN
    writer.write(f"got {len(data)} bytes".encode())
    await writer.drain()
    writer.close()


@dataclass
class Source:
    """A cluster server that writes ``size`` bytes as fast as its reader lets it."""

    size: int
    written: int = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chunk = bytes(64 * 1024)
        with contextlib.suppress(ConnectionError):  # the test ended early
            while self.written < self.size:
                writer.write(chunk)
                await writer.drain()
                self.written += len(chunk)
        writer.close()


@dataclass
class Cluster:
    """The agent subprocess and the servers it can reach."""

    tmp: Path
    route: int = 0
    tunnel: int = 0
    proc: asyncio.subprocess.Process | None = None
    servers: list[asyncio.Server] = field(default_factory=list)
    clients: list[TunnelClient] = field(default_factory=list)

    async def serve(self, handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def start_agent(self, app_port: int) -> None:
        self.route, self.tunnel, health = free_ports(3)
        pyz = self.tmp / "agent.pyz"
        pyz.write_bytes(agent_bundle()[1])
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                AGENT_PYTHON, "-I", "-S", str(pyz), "--tunnel-port", str(self.tunnel),
                "--health-port", str(health), "--route", f"{self.route}:{app_port}",
                env={"POD_NAME": "pod-7", "POD_NAMESPACE": "shop"}, stdout=log, stderr=log)
        await wait_until(lambda: "ready: " in self.log(), "the agent to start", 10)

    @property
    def log_path(self) -> Path:
        return self.tmp / "agent.log"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    async def client(self) -> TunnelClient:
        client = TunnelClient(await TcpTransport.connect("127.0.0.1", self.tunnel), "alice@lap:1",
                              name="pod-7")
        self.clients.append(client)
        await client.start()
        return client


@contextlib.asynccontextmanager
async def running_agent(tmp: Path) -> AsyncIterator[Cluster]:
    """One agent subprocess (a test may kill or stop it), its servers, its clients; its log
    must stay free of tracebacks and unretrieved errors."""
    tmp.mkdir(exist_ok=True)
    c = Cluster(tmp)
    await c.start_agent(await c.serve(echo))
    try:
        yield c
    finally:
        for client in c.clients:
            await client.aclose()
        assert c.proc is not None
        if c.proc.returncode is None:
            c.proc.terminate()
            await asyncio.wait_for(c.proc.wait(), TIMEOUT)
        for server in c.servers:
            server.close()
    for bad in ("Traceback", "never retrieved", "was destroyed", "ERROR"):
        assert bad not in c.log(), c.log()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_agent(tmp_path) as c:
        yield c


async def local_pair() -> tuple[Pipe, Pipe]:
    """(the local process's end, the forwarder's accepted end) of one loopback connection."""
    accepted: asyncio.Future[Pipe] = asyncio.get_running_loop().create_future()

    async def on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_accept, "127.0.0.1", 0)
    app = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    forwarder = await accepted
    server.close()
    return app, forwarder


async def dialled(client: TunnelClient, port: int, host: str = "127.0.0.1") -> Pipe:
    """A local connection that the agent has connected to ``host:port`` in "the cluster"."""
    app, forwarder = await local_pair()
    await client.dial(host, port, *forwarder)
    return app


async def round_trip(pipe: Pipe, payload: bytes) -> bytes:
    reader, writer = pipe
    writer.write(payload)
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(-1), TIMEOUT)
    writer.close()
    return answer


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def peak_growth(pids: list[int], work: Awaitable[None]) -> list[int]:
    """How far each process's resident memory rose above where it was, while ``work`` ran."""
    base = [rss(pid) for pid in pids]
    peak = list(base)
    task = asyncio.ensure_future(work)
    while not task.done():
        peak = [max(p, rss(pid)) for p, pid in zip(peak, pids)]
        await asyncio.wait([task], timeout=0.01)
    await task
    return [p - b for p, b in zip(peak, base)]


async def test_a_dialled_connection_reaches_the_cluster_server_and_back(cluster: Cluster) -> None:
    client = await cluster.client()
    port = await cluster.serve(echo)
    assert await round_trip(await dialled(client, port), b"hello from the laptop") == (
        b"hello from the laptop")


async def test_32_mib_each_way_with_bounded_memory(cluster: Cluster) -> None:
    """Both ends hold at most about a window per direction, not what is in transit."""
    client = await cluster.client()
    reader, writer = await dialled(client, await cluster.serve(echo))
    assert cluster.proc is not None
    chunk = bytes(range(256)) * 256  # 64 KiB, written 512 times
    sent, received = hashlib.sha256(), hashlib.sha256()

    async def upload() -> None:
        for _ in range(32 * MiB // len(chunk)):
            writer.write(chunk)
            sent.update(chunk)
            await writer.drain()
        writer.write_eof()

    async def download() -> None:
        total = 0
        while data := await reader.read(256 * 1024):
            received.update(data)
            total += len(data)
        assert total == 32 * MiB

    started = time.monotonic()
    growth = await peak_growth([cluster.proc.pid, os.getpid()],
                               asyncio.wait_for(asyncio.gather(upload(), download()), 120))
    elapsed = time.monotonic() - started
    assert sent.digest() == received.digest()
    print(f"\n{64 * MiB / elapsed / 1e6:.0f} MB/s dialled through the tunnel; memory growth "
          f"agent {growth[0] / MiB:.1f} MiB, laptop {growth[1] / MiB:.1f} MiB")
    assert growth[0] < 16 * MiB and growth[1] < 16 * MiB
    writer.close()


async def test_half_close_both_ways(cluster: Cluster) -> None:
    """The local side shuts down its sending half and still receives the whole answer."""
    client = await cluster.client()
    reader, writer = await dialled(client, await cluster.serve(count_until_eof))
    writer.write(b"a" * 100_000)
    await writer.drain()
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(-1), TIMEOUT) == b"got 100000 bytes"
    writer.close()


async def test_a_refused_port_raises_with_the_agents_reason_and_leaves_the_socket(
        cluster: Cluster) -> None:
    client = await cluster.client()
    (closed,) = free_ports(1)
    (app_reader, app_writer), forwarder = await local_pair()
    with pytest.raises(DialFailed) as refused:
        await client.dial("127.0.0.1", closed, *forwarder)
    assert str(refused.value) == f"agent pod-7 cannot reach 127.0.0.1:{closed}: connection refused"
    assert isinstance(refused.value, TunnelError) and refused.value.reason == "connection refused"
    forwarder[1].write(b"still mine")  # untouched: the caller decides how to fail it
    forwarder[1].close()
    assert await asyncio.wait_for(app_reader.read(-1), TIMEOUT) == b"still mine"
    app_writer.close()
    await wait_until(lambda: f"to 127.0.0.1:{closed}: connection refused" in cluster.log(),
                     "the agent to log the refusal", 5)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0.0.0.0", "127.0.0.2"])
async def test_the_agents_own_tunnel_port_is_refused(cluster: Cluster, host: str) -> None:
    client = await cluster.client()
    with pytest.raises(DialFailed, match="is the agent's own tunnel port"):
        await client.dial(host, cluster.tunnel, *(await local_pair())[1])
    assert await round_trip(await dialled(client, await cluster.serve(echo)), b"ok") == b"ok"


async def test_many_concurrent_dials(cluster: Cluster) -> None:
    client = await cluster.client()
    port = await cluster.serve(echo)

    async def one(i: int) -> bytes:
        return await round_trip(await dialled(client, port), b"%d " % i * (i + 1))

    answers = await asyncio.gather(*(one(i) for i in range(200)))
    assert answers == [b"%d " % i * (i + 1) for i in range(200)]


async def test_a_stalled_local_reader_stalls_only_its_own_stream(cluster: Cluster) -> None:
    client = await cluster.client()
    source = Source(64 * MiB)
    stalled_reader, stalled_writer = await dialled(client, await cluster.serve(source))
    await asyncio.sleep(1.0)  # the source fills a window and every socket buffer, then waits
    held_back = source.written
    assert held_back < 32 * MiB  # backpressure reached the cluster server's socket
    port = await cluster.serve(echo)
    started = time.monotonic()

    async def one(i: int) -> bytes:
        return await round_trip(await dialled(client, port), b"x" * i)

    answers = await asyncio.gather(*(one(i) for i in range(50)))
    assert answers == [b"x" * i for i in range(50)]
    assert time.monotonic() - started < 5
    assert source.written <= held_back + 1 * MiB
    total = 0
    while data := await asyncio.wait_for(stalled_reader.read(1 << 20), TIMEOUT):
        total += len(data)
    assert total == 64 * MiB
    stalled_writer.close()


async def test_inbound_and_outbound_streams_share_one_tunnel(cluster: Cluster) -> None:
    client = await cluster.client()
    local_port = await cluster.serve(echo)  # the local process that serves intercepted callers
    await client.claim(cluster.route, local_port)
    cluster_port = await cluster.serve(echo)

    async def inbound(i: int) -> bytes:
        pipe = await asyncio.open_connection("127.0.0.1", cluster.route)
        return await round_trip(pipe, b"in%d" % i * 1000)

    async def outbound(i: int) -> bytes:
        return await round_trip(await dialled(client, cluster_port), b"out%d" % i * 1000)

    answers = await asyncio.gather(*(f(i) for i in range(40) for f in (inbound, outbound)))
    assert answers == [p % i * 1000 for i in range(40) for p in (b"in%d", b"out%d")]
    await client.release(cluster.route)
    assert await client.drain(1.0)


async def test_a_version_1_client_is_refused_with_a_clear_goodbye(cluster: Cluster) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", cluster.tunnel)
    writer.write(encode(Hello(1, "old-laptop", 65536)))
    answer = await asyncio.wait_for(reader.read(-1), TIMEOUT)
    assert decode_all(answer) == [Goodbye("unsupported protocol version 1; this agent speaks 3")]
    writer.close()
    assert await round_trip(await dialled(await cluster.client(), await cluster.serve(echo)),
                            b"still serving") == b"still serving"


@pytest.mark.parametrize(("answer", "message"), [
    (Goodbye("unsupported protocol version 3; this agent speaks 2"),
     "the agent closed the tunnel: unsupported protocol version 3; this agent speaks 2"),
    (Welcome(1, "old-agent", 65536),
     "protocol error: the agent answered with protocol version 1, not 3"),
])
async def test_a_version_1_agent_is_refused(answer: Goodbye | Welcome, message: str) -> None:
    heard: list[bytes] = []

    async def old_agent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heard.append(await reader.read(65536))
        writer.write(encode(answer))
        heard.append(await reader.read(-1))
        writer.close()

    server = await asyncio.start_server(old_agent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = TunnelClient(await TcpTransport.connect("127.0.0.1", port), "c", name="old-pod")
    with pytest.raises(TunnelError, match=f"tunnel to old-pod failed: {message}"):
        await client.start()
    assert isinstance(decode_all(heard[0])[0], Hello)
    if isinstance(answer, Welcome):  # the client says why it leaves
        await wait_until(lambda: len(heard) == 2, "the client to hang up", 5)
        assert decode_all(heard[1]) == [Goodbye(message)]
    server.close()
