"""Per-request routing and mirror mode in the agent (issue 9), on loopback.

The agent runs in-process (its mirror counters are read directly; one test runs the zipapp);
each "laptop" is a TunnelClient over TCP with its own keep-alive HTTP/1.1 app that says who it
is. Callers keep their connections open across requests, so every test mixes destinations on
shared keep-alive connections.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import sys
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from innerloop.agent.lane import QuickLane
from innerloop.agent.server import Agent
from innerloop.agent.zipapp import agent_bundle
from innerloop.core.filters import HeaderMatch, Mode, RequestFilter, matches
from innerloop.core.request import WhilePaused
from innerloop.tunnel.client import TunnelClient
from innerloop.tunnel.transport import TcpTransport
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from tests.helpers.http_app import HttpApp
from tools.net import free_ports, port_open
from tools.wait import wait_until

pytestmark = pytest.mark.integration
TIMEOUT = 10.0
T = TypeVar("T")
AGENT_PYTHON = os.environ.get("INNERLOOP_AGENT_PYTHON", sys.executable)  # e.g. a python3.10


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dev(name: str, prefix: str = "/api") -> RequestFilter:
    return RequestFilter(headers=(HeaderMatch("x-dev", name),), path_prefix=prefix)


class KeepAliveApp(HttpApp):
    """Answers every request on a connection with "<who> <method> <path> <sha256 of body>",
    streaming the body into the hash; answers ``100 Continue`` when asked; records each request
    head; ``frozen`` set makes it stop reading (a debuggee stopped at a breakpoint), ``mute``
    makes it read requests but not answer them."""

    def __init__(self, who: str) -> None:
        super().__init__(who)
        self.seen: list[h11.Request] = []
        self.raw = bytearray()  # everything received, for the not-HTTP test
        self.frozen = asyncio.Event()
        self.mute = asyncio.Event()
        self.thaw = asyncio.Event()

    async def serve(self, conn: h11.Connection, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request, digest = await self._read_request(conn, reader, writer)
                if request is None:
                    return
                if self.mute.is_set():
                    await self.thaw.wait()
                body = f"{self.who} {request.method.decode()} {request.target.decode()} {digest}"
                writer.write(conn.send(h11.Response(status_code=200, headers=[
                    ("content-length", str(len(body)))])))
                writer.write(conn.send(h11.Data(data=body.encode())))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.RemoteProtocolError):
            pass

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> tuple[h11.Request | None, str]:
        request = None
        hasher = hashlib.sha256()
        while True:
            if self.frozen.is_set():
                await self.thaw.wait()
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                self.raw += data[:4096]
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
                self.seen.append(event)
                if conn.they_are_waiting_for_100_continue:
                    writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            elif isinstance(event, h11.Data):
                hasher.update(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return request, hasher.hexdigest()
            else:
                return None, ""


class Caller:
    """One keep-alive caller connection, spoken to with h11."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int) -> Caller:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, path: str, dev_name: str | None = None, body: bytes = b"",
                      method: str = "POST") -> str:
        headers = [("host", "orders"), ("content-length", str(len(body)))]
        if dev_name is not None:
            headers.append(("x-dev", dev_name))
        self.writer.write(self.conn.send(h11.Request(method=method, target=path,
                                                     headers=headers)))
        self.writer.write(self.conn.send(h11.Data(data=body)) or b"")
        self.writer.write(self.conn.send(h11.EndOfMessage()))
        return await asyncio.wait_for(self.answer(), TIMEOUT)

    async def answer(self) -> str:
        body = bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                assert event.status_code == 200, event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.conn.start_next_cycle()
                return body.decode()
            else:
                raise AssertionError(event)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Stack:
    agent: Agent
    route: int
    tunnel: int
    app: KeepAliveApp
    locals: dict[str, KeepAliveApp] = field(default_factory=dict)
    clients: dict[str, TunnelClient] = field(default_factory=dict)

    async def claim(self, name: str, flt: RequestFilter, mode: Mode = Mode.ROUTE,
                    local_port: int | None = None) -> TunnelClient:
        if local_port is None:
            local = self.locals[name] = KeepAliveApp(name)
            await local.start()
            local_port = local.port
        client = TunnelClient(await TcpTransport.connect("127.0.0.1", self.tunnel),
                              f"{name}@laptop:1", name=f"tunnel-{name}")
        self.clients[name] = client
        await client.start()
        await client.claim(self.route, local_port, flt, mode)
        return client

    def mirror_counts(self, name: str) -> tuple[int, int]:
        owner = next(t for t in self.agent._tunnels if t.client_id == f"{name}@laptop:1")
        counters = self.agent.mirror_book.get(self.route, owner)
        return (0, 0) if counters is None else (counters.copied, counters.dropped)


@pytest.fixture(autouse=True)
def nothing_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No traceback, no "exception was never retrieved", no ERROR from the agent (the test
    apps' handlers cancelled at teardown aside)."""
    yield
    bad = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
           and not (r.exc_info and isinstance(r.exc_info[1], asyncio.CancelledError))]
    assert bad == []


async def start_stack() -> Stack:
    app = KeepAliveApp("app")
    await app.start()
    route, tunnel, health = free_ports(3)
    agent = Agent({route: app.port}, tunnel_port=tunnel, health_port=health, name="pod-7",
                  listen_host="127.0.0.1")
    await agent.start()
    return Stack(agent, route, tunnel, app)


async def stop_stack(s: Stack) -> None:
    for client in s.clients.values():
        await client.aclose()
    await s.agent.close()
    for local in [s.app, *s.locals.values()]:
        local.thaw.set()
        local.close()


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    s = await start_stack()
    try:
        yield s
    finally:
        await stop_stack(s)


async def three_owners(stack: Stack) -> None:
    await stack.claim("alice", dev("alice"))
    await stack.claim("bob", dev("bob"))
    await stack.claim("carol", RequestFilter(path_prefix="/carol"))


def pick(rng: random.Random) -> tuple[str, str | None, str]:
    """(path, x-dev, who must answer) for one random request of the mixed traffic."""
    return rng.choice([("/api/orders", "alice", "alice"), ("/api/items?q=1", "bob", "bob"),
                       ("/carol/x", None, "carol"), ("/carol/y", "alice", "carol"),
                       ("/api/orders", None, "app"), ("/api/orders", "dave", "app"),
                       ("/other", "alice", "app"), ("/", None, "app")])


async def test_three_owners_and_unfiltered_traffic_share_keep_alive_connections(
        stack: Stack) -> None:
    await three_owners(stack)
    errors: list[str] = []

    async def caller(seed: int) -> None:
        rng = random.Random(seed)
        caller = await Caller.open(stack.route)
        for i in range(250):
            path, dev_name, who = pick(rng)
            body = rng.randbytes(rng.choice([0, 10, 3000]))
            answer = await caller.request(path, dev_name, body)
            if answer != f"{who} POST {path} {sha(body)}":
                errors.append(f"{seed}/{i}: {path} x-dev={dev_name}: {answer}")
        caller.close()

    await asyncio.gather(*(caller(seed) for seed in range(8)))
    assert errors == []
    for name, local in stack.locals.items():
        assert len(local.seen) > 100, name
        assert local.connections <= 8, "one stream per caller connection and owner"
    assert stack.app.connections <= 8, "one app connection per caller connection"


async def test_pipelined_requests_are_answered_in_order(stack: Stack) -> None:
    await three_owners(stack)
    rng = random.Random(7)
    wanted = [pick(rng) for _ in range(40)]
    raw = b"".join(
        f"GET {path} HTTP/1.1\r\nhost: orders\r\n{f'x-dev: {d}' + chr(13) + chr(10) if d else ''}"
        f"\r\n".encode() for path, d, _ in wanted)
    caller = await Caller.open(stack.route)
    caller.writer.write(raw)  # every request before any answer
    for path, _, who in wanted:
        caller.conn.send(h11.Request(method="GET", target=path, headers=[("host", "orders")]))
        caller.conn.send(h11.EndOfMessage())
        assert await asyncio.wait_for(caller.answer(), TIMEOUT) == f"{who} GET {path} {sha(b'')}"
    caller.close()


async def test_quick_requests_take_the_lane_and_the_rest_still_route(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between requests, GETs of the common shape take the quick lane: one no claim can match
    goes straight to the app, a matching one, in any header case, to its owner; an odd one (a
    byte the quick reading leaves to h11) on the same connection is read by h11."""
    lane: list[bool] = []
    request = QuickLane._request

    def record(self: QuickLane, data: bytes) -> None:
        request(self, data)
        if (exchange := self._exchange) is not None:
            lane.append(exchange.upstream.destination.key == "app")

    monkeypatch.setattr(QuickLane, "_request", record)
    await three_owners(stack)
    rng = random.Random(11)
    caller = await Caller.open(stack.route)
    for i in range(300):
        path, dev_name, who = pick(rng)
        name = rng.choice(["x-dev", "X-Dev", "X-DEV"])
        odd = b"x-odd: a\x7fb\r\n" if i % 3 == 2 else b""  # h11 reads it, the lane does not
        caller.writer.write(f"GET {path} HTTP/1.1\r\nhost: orders\r\n".encode() + odd + (
            f"{name}: {dev_name}\r\n".encode() if dev_name else b"") + b"\r\n")
        caller.conn.send(h11.Request(method="GET", target=path, headers=[("host", "orders")]))
        caller.conn.send(h11.EndOfMessage())
        answer = await asyncio.wait_for(caller.answer(), TIMEOUT)
        assert answer == f"{who} GET {path} {sha(b'')}", (i, path, name, dev_name)
    caller.close()
    assert 50 < len(lane) < 200, "the lane takes the quick ones between requests"
    assert 15 < sum(lane) < len(lane), "only unmatched ones go straight to the app"


@pytest.mark.parametrize("head, parts", [
    ("content-length: 9", [b"hello\r\n\r\n"]),
    ("transfer-encoding: chunked", [b"b\r\nhello", b" world\r\n0\r\n\r\n"])])
async def test_the_end_of_an_owners_body_never_goes_to_the_app(
        stack: Stack, head: str, parts: list[bytes]) -> None:
    """A read inside a body can look like a whole head no claim matches: only bytes read
    between requests may take the quick lane."""
    await three_owners(stack)
    caller = await Caller.open(stack.route)
    assert (await caller.request("/api/warmup", "alice")).startswith("alice")
    caller.writer.write(f"POST /api/up HTTP/1.1\r\nhost: o\r\nx-dev: alice\r\n{head}\r\n\r\n"
                        .encode())
    for part in parts:
        await asyncio.sleep(0.1)  # each its own read
        caller.writer.write(part)
    caller.conn.send(h11.Request(method="POST", target="/api/up", headers=[
        ("host", "o"), ("transfer-encoding", "chunked")]))
    caller.conn.send(h11.EndOfMessage())
    answer = await asyncio.wait_for(caller.answer(), TIMEOUT)
    body = b"hello\r\n\r\n" if "length" in head else b"hello world"
    assert answer == f"alice POST /api/up {sha(body)}"
    caller.close()


@pytest.mark.parametrize("path, who", [("/api/upload", "alice"), ("/upload", "app")])
async def test_expect_100_continue_passes_through(stack: Stack, path: str, who: str) -> None:
    await three_owners(stack)
    caller = await Caller.open(stack.route)
    body = os.urandom(5000)
    caller.writer.write(f"PUT {path} HTTP/1.1\r\nhost: orders\r\nx-dev: alice\r\n"
                        f"expect: 100-continue\r\ncontent-length: {len(body)}\r\n\r\n".encode())
    interim = await asyncio.wait_for(caller.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    caller.writer.write(body)
    caller.conn.send(h11.Request(method="PUT", target=path, headers=[("host", "o")]))
    caller.conn.send(h11.EndOfMessage())
    assert await asyncio.wait_for(caller.answer(), TIMEOUT) == f"{who} PUT {path} {sha(body)}"


async def test_websocket_upgrade_through_a_filtered_claim_echoes_through_the_owner(
        stack: Stack) -> None:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(f"laptop: {message}")

    async with ws_serve(echo, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        await stack.claim("alice", dev("alice"), local_port=port)
        await stack.claim("bob", dev("bob"))
        async with ws_connect(f"ws://127.0.0.1:{stack.route}/api/ws",
                              additional_headers={"x-dev": "alice"}) as ws:
            for i in range(20):
                await ws.send(f"hello {i}")
                assert await asyncio.wait_for(ws.recv(), TIMEOUT) == f"laptop: hello {i}"
        caller = await Caller.open(stack.route)  # other requests are unaffected
        assert (await caller.request("/api/x", "bob")).startswith("bob POST /api/x")


async def test_a_50_mib_chunked_upload_arrives_intact_with_bounded_memory(stack: Stack) -> None:
    await three_owners(stack)
    size, chunk = 50 * 1024 * 1024, 256 * 1024
    block = os.urandom(chunk)
    caller = await Caller.open(stack.route)
    assert (await caller.request("/api/warmup", "alice")).startswith("alice")
    tracemalloc.start()
    try:
        caller.writer.write(caller.conn.send(h11.Request(method="POST", target="/api/up",
                                                         headers=[("host", "o"), ("x-dev", "alice"),
                                                                  ("transfer-encoding", "chunked")])))
        for _ in range(size // chunk):
            caller.writer.write(caller.conn.send(h11.Data(data=block)) or b"")
            await caller.writer.drain()
        caller.writer.write(caller.conn.send(h11.EndOfMessage()))
        answer = await asyncio.wait_for(caller.answer(), 60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.sha256(block * (size // chunk)).hexdigest()
    assert answer == f"alice POST /api/up {expected}"
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a 50 MiB body"


async def test_mirror_copies_every_matching_request_and_the_app_answers_them(
        stack: Stack) -> None:
    await stack.claim("mia", RequestFilter(path_prefix="/api"), Mode.MIRROR)
    await stack.claim("alice", dev("alice"))
    caller = await Caller.open(stack.route)
    for i in range(300):
        body = str(i).encode()
        assert await caller.request(f"/api/{i}", None, body) == f"app POST /api/{i} {sha(body)}"
        assert (await caller.request("/other", None)).startswith("app")  # not mirrored
    assert (await caller.request("/api/x", "alice")).startswith("alice")  # routed, mirrored
    await wait_until(lambda: len(stack.locals["mia"].seen) == 301, "301 copies", 5)
    assert [r.target for r in stack.locals["mia"].seen[:3]] == [b"/api/0", b"/api/1", b"/api/2"]
    assert stack.mirror_counts("mia") == (301, 0)


async def test_a_stalled_mirror_owner_never_stalls_the_app(stack: Stack) -> None:
    await stack.claim("mia", RequestFilter(path_prefix="/api"), Mode.MIRROR)
    stack.locals["mia"].frozen.set()  # stopped at a breakpoint: reads nothing more
    body = os.urandom(16 * 1024)
    callers = [await Caller.open(stack.route) for _ in range(4)]
    slowest = 0.0

    async def load(caller: Caller) -> None:
        nonlocal slowest
        for i in range(150):
            start = time.perf_counter()
            assert await caller.request(f"/api/{i}", None, body) == \
                f"app POST /api/{i} {sha(body)}"
            slowest = max(slowest, time.perf_counter() - start)

    await asyncio.gather(*(load(c) for c in callers))
    copied, dropped = stack.mirror_counts("mia")
    assert copied + dropped == 600 and dropped > 300, (copied, dropped)
    assert slowest < 1.0, f"the app path waited {slowest:.2f} s"


async def test_a_paused_mirror_owner_gets_no_copies_and_they_are_counted(stack: Stack) -> None:
    mia = await stack.claim("mia", RequestFilter(path_prefix="/api"), Mode.MIRROR)
    caller = await Caller.open(stack.route)
    assert (await caller.request("/api/1")).startswith("app")
    await mia.set_paused(True, WhilePaused.HOLD)  # hold applies to routes; a copy just drops
    for i in range(50):
        assert (await caller.request(f"/api/{i}")).startswith("app")
    assert stack.mirror_counts("mia") == (1, 50)
    await mia.set_paused(False)
    assert (await caller.request("/api/again")).startswith("app")
    assert stack.mirror_counts("mia") == (2, 50)


async def test_hold_waits_for_resume_and_only_for_the_paused_owners_requests(
        stack: Stack) -> None:
    alice = await stack.claim("alice", dev("alice"))
    await stack.claim("bob", dev("bob"))
    await alice.set_paused(True, WhilePaused.HOLD)
    caller = await Caller.open(stack.route)
    held = asyncio.ensure_future(caller.request("/api/held", "alice"))
    other = await Caller.open(stack.route)
    for _ in range(20):
        assert (await other.request("/api/x", "bob")).startswith("bob")
        assert (await other.request("/api/x")).startswith("app")
    await asyncio.sleep(0.5)
    assert not held.done()
    await alice.set_paused(False)
    assert (await held).startswith("alice POST /api/held")


async def test_a_vanished_owner_sends_the_next_requests_to_the_app(stack: Stack) -> None:
    alice = await stack.claim("alice", dev("alice"))
    caller = await Caller.open(stack.route)
    assert (await caller.request("/api/1", "alice")).startswith("alice")
    await alice.aclose()
    await wait_until(lambda: not stack.agent.table.listing(), "the claim gone", 5)
    assert (await caller.request("/api/2", "alice")).startswith("app")


async def test_an_owner_vanishing_mid_answer_resets_the_caller(stack: Stack) -> None:
    alice = await stack.claim("alice", dev("alice"))
    stack.locals["alice"].mute.set()
    caller = await Caller.open(stack.route)
    pending = asyncio.ensure_future(caller.request("/api/1", "alice"))
    await wait_until(lambda: stack.locals["alice"].seen, "the request at the laptop", 5)
    await alice.aclose()
    with pytest.raises((ConnectionError, h11.RemoteProtocolError)):
        await pending


async def test_bytes_that_are_not_http_go_to_the_app_as_they_are(stack: Stack) -> None:
    await three_owners(stack)
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"hello world\r\n\r\n",
                    b"GET /api/x HTTP/1.1\r\nx-dev: alice\r\nbad header\r\n\r\n"):
        stack.app.raw.clear()
        _, writer = await asyncio.open_connection("127.0.0.1", stack.route)
        writer.write(garbage)
        await wait_until(lambda g=garbage: bytes(stack.app.raw) == g, "the bytes at the app", 5)
        writer.close()
    assert stack.locals["alice"].seen == []


async def test_the_zipapp_agent_routes_by_header(tmp_path: Path) -> None:
    app = KeepAliveApp("app")
    await app.start()
    route, tunnel, health = free_ports(3)
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(agent_bundle()[1])
    proc = await asyncio.create_subprocess_exec(
        AGENT_PYTHON, "-I", "-S", str(pyz), "--tunnel-port", str(tunnel), "--health-port",
        str(health), "--route", f"{route}:{app.port}", stdout=asyncio.subprocess.DEVNULL)
    local = KeepAliveApp("alice")
    await local.start()
    client = None
    try:
        await wait_until(lambda: port_open(tunnel), "the agent listening", TIMEOUT)
        client = TunnelClient(await TcpTransport.connect("127.0.0.1", tunnel), "alice@laptop:1")
        await client.start()
        await client.claim(route, local.port, dev("alice"))
        caller = await Caller.open(route)
        for i in range(50):
            assert (await caller.request(f"/api/{i}", "alice")).startswith("alice")
            assert (await caller.request(f"/api/{i}", "bob")).startswith("app")
    finally:
        if client is not None:
            await client.aclose()
        proc.terminate()
        await proc.wait()
        app.close()
        local.close()


class LoopThread:
    """An event loop in a thread, so hypothesis (synchronous) can drive one long-lived stack."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()


@pytest.fixture
def threaded_stack() -> Iterator[tuple[LoopThread, Stack]]:
    lt = LoopThread()
    s = lt.run(start_stack())
    lt.run(three_owners(s))
    try:
        yield lt, s
    finally:
        lt.run(stop_stack(s))
        lt.stop()


TEMPLATES = [
    b"GET /api/x HTTP/1.1\r\nhost: o\r\nx-dev: alice\r\n\r\n",
    b"POST /api/y?q=1 HTTP/1.1\r\nhost: o\r\nx-dev: bob\r\ncontent-length: 5\r\n\r\nhello",
    (b"POST /carol/z HTTP/1.1\r\nhost: o\r\ntransfer-encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n"),
    b"GET /other HTTP/1.1\r\nhost: o\r\nx-dev: alice\r\n\r\n",
    b"GET /api/x HTTP/1.0\r\nx-dev: dave\r\n\r\n",
]
PIECES = [b"\r", b"\n", b"\r\n", b" ", b":", b"\x00", b"\xff", b"x-dev: bob\r\n",
          b"x-dev: alice\r\n", b"content-length: 3\r\n", b"transfer-encoding: chunked\r\n",
          b"upgrade: websocket\r\n", b"-1", b"zz", b"/carol", b"HTTP/2.0", b"\r\n\r\n",
          b"GET /api/q HTTP/1.1\r\nhost: o\r\nx-dev: bob\r\n\r\n"]
edits = st.lists(st.tuples(st.sampled_from(["insert", "delete", "replace"]),
                           st.integers(0, 200), st.integers(1, 8),
                           st.one_of(st.sampled_from(PIECES), st.binary(min_size=1, max_size=6))),
                 max_size=4)


def mutate(data: bytes, ops: list[tuple[str, int, int, bytes]]) -> bytes:
    for op, at, length, piece in ops:
        at %= len(data) + 1
        if op == "insert":
            data = data[:at] + piece + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + length:]
        else:
            data = data[:at] + piece + data[at + length:]
    return data


async def send_and_read_to_eof(port: int, data: bytes) -> None:
    """The caller sends ``data`` and half-closes: the agent must end the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        writer.write_eof()
        while await asyncio.wait_for(reader.read(65536), 5):
            pass
    except ConnectionError:
        pass  # a reset is a fine answer to garbage
    finally:
        writer.close()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(first=st.sampled_from(TEMPLATES), second=st.sampled_from([b"", *TEMPLATES]), ops=edits,
       second_ops=edits)
def test_malformed_requests_never_reach_an_owner_whose_filter_they_do_not_match(
        threaded_stack: tuple[LoopThread, Stack], first: bytes, second: bytes,
        ops: list[tuple[str, int, int, bytes]], second_ops: list[tuple[str, int, int, bytes]],
) -> None:
    lt, s = threaded_stack
    lt.run(send_and_read_to_eof(s.route, mutate(first, ops) + mutate(second, second_ops)))
    filters = {"alice": dev("alice"), "bob": dev("bob"),
               "carol": RequestFilter(path_prefix="/carol")}
    for name, flt in filters.items():
        for request in s.locals[name].seen:
            assert matches(flt, request.method, request.target, request.headers.raw_items()), \
                (name, request)
    answer = lt.run(_one_request(s.route))  # the agent still serves
    assert answer.startswith("bob POST /api/still")


async def after_a_good_request(port: int, data: bytes) -> None:
    """One request answered on the connection first (so ``data`` is read between requests,
    where the quick lane may take it), then ``data``, then a half-close."""
    caller = await Caller.open(port)
    try:
        assert (await caller.request("/api/first", "alice")).startswith("alice")
        caller.writer.write(data)
        caller.writer.write_eof()
        while await asyncio.wait_for(caller.reader.read(65536), 5):
            pass
    except ConnectionError:
        pass
    finally:
        caller.close()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(second=st.sampled_from(TEMPLATES), ops=edits)
def test_mangled_requests_after_a_good_one_reach_neither_the_wrong_owner_nor_the_app_wrongly(
        threaded_stack: tuple[LoopThread, Stack], second: bytes,
        ops: list[tuple[str, int, int, bytes]]) -> None:
    """The quick lane judges exactly these bytes: whatever h11 makes of them, an owner gets
    only requests its filter matches, and the app none that a filter matches."""
    lt, s = threaded_stack
    lt.run(after_a_good_request(s.route, mutate(second, ops)))
    filters = {"alice": dev("alice"), "bob": dev("bob"),
               "carol": RequestFilter(path_prefix="/carol")}
    for name, flt in filters.items():
        for request in s.locals[name].seen:
            assert matches(flt, request.method, request.target, request.headers.raw_items()), \
                (name, request)
    for request in s.app.seen:
        assert not any(matches(flt, request.method, request.target, request.headers.raw_items())
                       for flt in filters.values()), request


async def _one_request(port: int) -> str:
    caller = await Caller.open(port)
    try:
        return await caller.request("/api/still", "bob")
    finally:
        caller.close()


async def test_an_owner_whose_local_process_refuses_leaves_its_requests_to_the_app(
        stack: Stack) -> None:
    [closed] = free_ports(1)
    await stack.claim("alice", dev("alice"), local_port=closed)
    caller = await Caller.open(stack.route)
    for i in range(3):
        assert (await caller.request(f"/api/{i}", "alice")).startswith(f"app POST /api/{i}")
    assert (await caller.request("/api/body", "alice", b"x" * 1000)).startswith("app")


async def test_an_answer_refusing_100_continue_ends_the_exchange_and_the_connection(
        stack: Stack) -> None:
    """The app answers at once without ``100 Continue``: the caller gets that answer and, its
    body never read, the connection closes (it cannot be kept in step)."""
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 417 Expectation Failed\r\ncontent-length: 0\r\n\r\n")
        await reader.read()  # keeps the connection open, as a keep-alive server would
        writer.close()

    await stack.claim("alice", dev("alice"))
    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    stack.agent.table.routes[stack.route] = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.route)
        writer.write(b"PUT /api/x HTTP/1.1\r\nhost: o\r\nexpect: 100-continue\r\n"
                     b"content-length: 10\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)  # then EOF
        assert answer.startswith(b"HTTP/1.1 417 "), answer
        writer.close()
    finally:
        server.close()
